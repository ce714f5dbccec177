#ifndef BERTH_SPAWN_H
#define BERTH_SPAWN_H

#include <sys/types.h>

/// Starts `argv[0]` (looked up in PATH when it has no slash) with `envp`, in `cwd` (NULL: inherit), with the given
/// descriptors as its stdin, stdout and stderr. The child gets default signal dispositions and an empty signal mask
/// (a parent that ignores SIGTERM, as signal-handling libraries do, must not pass that on), its own process group
/// when `new_process_group` is set, and `parent_death_signal` (0: none) when the calling thread's process dies.
/// With `network_namespace_fd` >= 0 (a descriptor of a network namespace), the child joins that namespace
/// (setns(CLONE_NEWNET)) before exec.
///
/// Returns the child's pid, or -1 with `*error_number` set when fork or exec failed (exec errors are reported
/// from the child through a close-on-exec pipe, so "no such file" is an error here, not an exit code later), and
/// `*failed_step` saying which part of the start failed.
pid_t berth_spawn(const char *const argv[], const char *const envp[], const char *cwd,
                  int stdin_fd, int stdout_fd, int stderr_fd,
                  int new_process_group, int parent_death_signal, int network_namespace_fd,
                  int *error_number, int *failed_step);

/// What `berth_spawn` reports in `*failed_step`.
enum {
    /// fork, the child's set-up, or exec.
    BERTH_SPAWN_STEP_START = 0,
    /// setns(network_namespace_fd, CLONE_NEWNET) in the child.
    BERTH_SPAWN_STEP_NETWORK_NAMESPACE = 1,
};

/// pipe2(fds, O_CLOEXEC), which Swift's Glibc module does not export.
int berth_pipe_cloexec(int fds[2]);

#endif
