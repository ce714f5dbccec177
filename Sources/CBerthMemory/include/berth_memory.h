#pragma once

/// True once the process's malloc policy is set (see memory.c); Swift asks, so the linker keeps memory.c.
int berth_memory_policy_applied(void);
