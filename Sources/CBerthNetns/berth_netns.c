#define _GNU_SOURCE
#include "berth_netns.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int fail(const char **failed_call, const char *call) {
    *failed_call = call;
    return -1;
}

/// Back to the namespace the thread came from. A thread that cannot go back would open every later socket, and
/// start every later thread, in the app's namespace: that is not a state to go on in.
static void return_to(int host_fd) {
    if (setns(host_fd, CLONE_NEWNET) != 0) {
        int error = errno;
        fprintf(stderr, "berth: setns(CLONE_NEWNET) back to the sidecar's own network namespace failed: %s\n",
                strerror(error));
        abort();
    }
}

static int loopback_up(const char **failed_call) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return fail(failed_call, "socket(AF_INET, SOCK_DGRAM)");
    struct ifreq request;
    memset(&request, 0, sizeof request);
    strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
    if (ioctl(fd, SIOCGIFFLAGS, &request) != 0) {
        int error = errno;
        close(fd);
        errno = error;
        return fail(failed_call, "ioctl(lo, SIOCGIFFLAGS)");
    }
    request.ifr_flags |= IFF_UP;
    if (ioctl(fd, SIOCSIFFLAGS, &request) != 0) {
        int error = errno;
        close(fd);
        errno = error;
        return fail(failed_call, "ioctl(lo, SIOCSIFFLAGS)");
    }
    close(fd);
    return 0;
}

int berth_netns_create(int *app_fd, int *host_fd, const char **failed_call) {
    int host = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (host < 0) return fail(failed_call, "open(/proc/thread-self/ns/net)");
    if (unshare(CLONE_NEWNET) != 0) {
        int error = errno;
        close(host);
        errno = error;
        return fail(failed_call, "unshare(CLONE_NEWNET)");
    }
    const char *call = NULL;
    int app = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (app < 0) call = "open(/proc/thread-self/ns/net) in the new namespace";
    int error = errno;
    if (app >= 0 && loopback_up(&call) != 0) error = errno;
    return_to(host);
    if (call) {
        if (app >= 0) close(app);
        close(host);
        errno = error;
        return fail(failed_call, call);
    }
    *app_fd = app;
    *host_fd = host;
    return 0;
}

int berth_netns_socket(int app_fd, int host_fd, int domain, int type, int protocol, const char **failed_call) {
    if (setns(app_fd, CLONE_NEWNET) != 0) return fail(failed_call, "setns(CLONE_NEWNET)");
    int fd = socket(domain, type, protocol);
    int error = errno;
    return_to(host_fd);
    if (fd < 0) {
        errno = error;
        return fail(failed_call, "socket");
    }
    return fd;
}
