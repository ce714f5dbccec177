#define _GNU_SOURCE
#include "berth_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/// Tells the parent what failed, and how: the error number and the step (BERTH_SPAWN_STEP_*).
static void report_step_and_exit(int fd, int error, int step) {
    int report[2] = {error, step};
    ssize_t ignored = write(fd, report, sizeof report);
    (void)ignored;
    _exit(127);
}

static void report_and_exit(int fd, int error) {
    report_step_and_exit(fd, error, BERTH_SPAWN_STEP_START);
}

pid_t berth_spawn(const char *const argv[], const char *const envp[], const char *cwd,
                  int stdin_fd, int stdout_fd, int stderr_fd,
                  int new_process_group, int parent_death_signal, int network_namespace_fd,
                  int *error_number, int *failed_step) {
    *failed_step = BERTH_SPAWN_STEP_START;
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
        *error_number = errno;
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        *error_number = errno;
        close(report[0]);
        close(report[1]);
        return -1;
    }
    if (pid == 0) {
        // Only async-signal-safe calls from here on.
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int signal_number = 1; signal_number < NSIG; signal_number++) {
            if (signal_number != SIGKILL && signal_number != SIGSTOP) signal(signal_number, SIG_DFL);
        }
        if (new_process_group && setpgid(0, 0) != 0) report_and_exit(report[1], errno);
        if (parent_death_signal) {
            if (prctl(PR_SET_PDEATHSIG, parent_death_signal) != 0) report_and_exit(report[1], errno);
            // The parent may have died before prctl: then nobody will send the signal.
            if (getppid() != parent) _exit(127);
        }
        if (stdin_fd >= 0 && dup2(stdin_fd, 0) < 0) report_and_exit(report[1], errno);
        if (stdout_fd >= 0 && dup2(stdout_fd, 1) < 0) report_and_exit(report[1], errno);
        if (stderr_fd >= 0 && dup2(stderr_fd, 2) < 0) report_and_exit(report[1], errno);
        if (cwd && chdir(cwd) != 0) report_and_exit(report[1], errno);
        // Before the descriptors are closed: this one goes with them.
        if (network_namespace_fd >= 0 && setns(network_namespace_fd, CLONE_NEWNET) != 0) {
            report_step_and_exit(report[1], errno, BERTH_SPAWN_STEP_NETWORK_NAMESPACE);
        }
        // Nothing of the parent's leaks into the app: a descriptor it inherited could keep a pipe or socket
        // of ours open for as long as it lives. The report pipe is close-on-exec and stays until exec.
        int keep = report[1];
        if ((keep > 3 && close_range(3, keep - 1, 0) != 0) || close_range(keep + 1, ~0U, 0) != 0) {
            for (int fd = 3; fd < 65536; fd++) {
                if (fd != keep) close(fd);
            }
        }
        execvpe(argv[0], (char *const *)argv, (char *const *)envp);
        report_and_exit(report[1], errno);
    }
    close(report[1]);
    int child_report[2] = {0, 0};
    ssize_t got;
    do {
        got = read(report[0], child_report, sizeof child_report);
    } while (got < 0 && errno == EINTR);
    close(report[0]);
    if (got == sizeof child_report) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        *error_number = child_report[0];
        *failed_step = child_report[1];
        return -1;
    }
    return pid;
}

int berth_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}
