/*
 * kccl_run_spawn.c - starts one rank of kccl-run: fork, then in the child
 * wire stdout/stderr to the launcher's pipes, put the rank in its own
 * process group, ask the kernel to SIGKILL it if the launcher dies, set the
 * per-rank environment and exec the program.
 *
 * The group-wide keys (KCCL_WORLD_SIZE, KCCL_UNIQUE_ID,
 * KCCL_GROUP_SECRET_FILE, KCCL_SOCKET_IFNAME) are already in the launcher's
 * environment; only KCCL_RANK and, for rank 0, KCCL_BOOTSTRAP_ROOT_FD differ
 * per child. The launcher is single-threaded, so setenv() between fork and
 * exec is safe. The root listener is close-on-exec everywhere except in
 * rank 0's child, which clears the flag before exec.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "tools/kccl_run.h"

/* Writes a message to fd 2 without stdio (we are between fork and exec). */
static void child_fail(const char *what, const char *arg, int err)
{
    char buf[512];
    int n = snprintf(buf, sizeof(buf), KR_NAME ": %s '%s': %s\n", what, arg, strerror(err));
    if (n > 0)
        (void)!write(2, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static void child_setup_signals(pid_t launcher)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL); /* the launcher blocks signals for its signalfd */
    signal(SIGPIPE, SIG_DFL);              /* the launcher ignores it */
    setpgid(0, 0);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != launcher)
        _exit(KR_EXIT_NOEXEC); /* the launcher is already gone: do not start an orphan */
}

static void child_setup_fds(const kr_state_t *s, int rank, int out_w, int err_w)
{
    if (dup2(out_w, 1) < 0 || dup2(err_w, 2) < 0)
        _exit(KR_EXIT_NOEXEC);
    if (rank != 0) { /* stdin goes to rank 0 only */
        int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (nul >= 0 && nul != 0) {
            dup2(nul, 0);
            close(nul);
        }
    }
    if (rank == 0 && s->root_fd >= 0) {
        int fl = fcntl(s->root_fd, F_GETFD);
        if (fl < 0 || fcntl(s->root_fd, F_SETFD, fl & ~FD_CLOEXEC) < 0) {
            child_fail("cannot pass the root listener", "KCCL_BOOTSTRAP_ROOT_FD", errno);
            _exit(KR_EXIT_NOEXEC);
        }
    }
}

static void child_setup_env(const kr_state_t *s, int rank)
{
    char num[32];
    snprintf(num, sizeof(num), "%d", rank);
    if (setenv("KCCL_RANK", num, 1) != 0)
        _exit(KR_EXIT_NOEXEC);
    if (rank == 0 && s->root_fd >= 0) {
        snprintf(num, sizeof(num), "%d", s->root_fd);
        if (setenv("KCCL_BOOTSTRAP_ROOT_FD", num, 1) != 0)
            _exit(KR_EXIT_NOEXEC);
    } else {
        unsetenv("KCCL_BOOTSTRAP_ROOT_FD");
    }
}

static void child_main(const kr_state_t *s, int rank, int out_w, int err_w)
{
    child_setup_signals(s->launcher_pid);
    child_setup_fds(s, rank, out_w, err_w);
    child_setup_env(s, rank);
    if (s->nofile_raised) /* a raised soft limit can break select() users */
        setrlimit(RLIMIT_NOFILE, &s->orig_nofile);
    execvp(s->argv[0], s->argv);
    child_fail("cannot execute", s->argv[0], errno);
    _exit(KR_EXIT_NOEXEC);
}

static int make_pipe(int fds[2])
{
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    int fl = fcntl(fds[0], F_GETFL);
    if (fl >= 0)
        fcntl(fds[0], F_SETFL, fl | O_NONBLOCK); /* only the launcher's read end */
    return 0;
}

int kr_spawn(kr_state_t *s, kr_child_t *c)
{
    int out[2], err[2];
    if (make_pipe(out) != 0) {
        kr_msg("cannot create a pipe for rank %d: %s", c->rank, strerror(errno));
        return -1;
    }
    if (make_pipe(err) != 0) {
        kr_msg("cannot create a pipe for rank %d: %s", c->rank, strerror(errno));
        goto err_close_out;
    }
    fflush(NULL); /* no stdio buffer may be inherited twice */
    pid_t pid = fork();
    if (pid < 0) {
        kr_msg("cannot start rank %d: fork failed: %s%s", c->rank, strerror(errno),
               errno == EAGAIN ? " (raise the process limit, ulimit -u, or use fewer ranks)" : "");
        goto err_close_err;
    }
    if (pid == 0)
        child_main(s, c->rank, out[1], err[1]);
    setpgid(pid, pid); /* also done in the child: whichever runs first wins, both agree */
    close(out[1]);
    close(err[1]);
    c->pid = pid;
    c->out.fd = out[0];
    c->err.fd = err[0];
    return 0;

err_close_err:
    close(err[0]);
    close(err[1]);
err_close_out:
    close(out[0]);
    close(out[1]);
    return -1;
}
