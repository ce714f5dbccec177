#include "berth_memory.h"
#include <malloc.h>

static int applied = 0;

// How glibc keeps the memory of 1 MiB bodies, set before main so that it holds for every thread: glibc fixes its
// number of heaps the first time a second thread allocates, and a later mallopt(M_ARENA_MAX) changes nothing.
// Why each setting: FreedMemoryTrimmer in BerthBus.
__attribute__((constructor)) static void berth_memory_policy(void) {
    applied = mallopt(M_ARENA_MAX, 1) && mallopt(M_MMAP_THRESHOLD, 64 << 20) && mallopt(M_TRIM_THRESHOLD, 8 << 20);
}

int berth_memory_policy_applied(void) { return applied; }
