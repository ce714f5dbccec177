#ifndef BERTH_NETNS_H
#define BERTH_NETNS_H

// Linux network namespaces for an app the sidecar owns. The sidecar stays in its own namespace; the app and the
// sockets the sidecar opens towards it live in a fresh one. A socket belongs to the namespace of the thread that
// called socket(), so each function here switches only the calling thread, and switches it back before it returns.
//
// Every function returns -1 on failure with errno set and `*failed_call` naming the call that failed (a static
// string such as "unshare(CLONE_NEWNET)").

/// Makes a new network namespace with its loopback interface up, without moving the calling thread into it.
/// On success `*app_fd` refers to the new namespace and `*host_fd` to the calling thread's own; both are
/// close-on-exec and keep their namespace alive while open.
int berth_netns_create(int *app_fd, int *host_fd, const char **failed_call);

/// socket(domain, type, protocol) inside the namespace `app_fd`; the calling thread goes back to `host_fd`.
int berth_netns_socket(int app_fd, int host_fd, int domain, int type, int protocol, const char **failed_call);

#endif
