#pragma once

/// True once the process's malloc policy is set (see memory.c): a test checks it is in force.
int berth_memory_policy_applied(void);
