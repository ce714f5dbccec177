#pragma once

/// Sets the process's malloc policy (see memory.c); true when every setting took. Call before a second thread.
int berth_memory_apply_policy(void);

/// True once `berth_memory_apply_policy` has set the policy.
int berth_memory_policy_applied(void);
