#include "berth_memory.h"
#include <malloc.h>

static int applied = 0;

// How glibc keeps the memory of 1 MiB bodies. Called by Berth's own executables first thing in main, before any
// second thread: glibc fixes its number of heaps the first time a second thread allocates, and a later
// mallopt(M_ARENA_MAX) changes nothing. Never from a constructor: a user's own Worker executable links Berth's
// libraries too, and its malloc is its own business. Why each setting: FreedMemoryTrimmer in BerthBus.
int berth_memory_apply_policy(void) {
    applied = mallopt(M_ARENA_MAX, 1) && mallopt(M_MMAP_THRESHOLD, 64 << 20) && mallopt(M_TRIM_THRESHOLD, 8 << 20);
    return applied;
}

int berth_memory_policy_applied(void) { return applied; }
