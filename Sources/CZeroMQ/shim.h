#include <zmq.h>
// The bus loop wakes its poll through an eventfd.
#include <sys/eventfd.h>
// The bus loop names its thread (shown by top -H and perf) without Foundation.
#include <sys/prctl.h>
static inline void berth_name_thread(const char *name) { prctl(PR_SET_NAME, name, 0, 0, 0); }

// The bus loop hands freed memory back to the system once big messages stop (malloc_trim).
#include <malloc.h>

// The bus loop keeps the plain descriptors its body drives (client and app connections) in an epoll set.
#include <sys/epoll.h>
