/*
 * kccl_run.h - shared state of kccl-run, the local launcher.
 *
 * kccl-run plays the Kubernetes sidecar's part on one machine: it makes the
 * group secret and the unique id (binding the root listener before anything
 * is handed out), starts N ranks with the handoff keys in their environment,
 * relays their output line by line with a rank prefix, forwards signals, and
 * tears the whole group down on the first failure. The code is split by
 * responsibility:
 *   kccl_run.c        options, secret file, unique id, exit
 *   kccl_run_spawn.c  fork + exec of one rank
 *   kccl_run_io.c     line-buffered output relay
 *   kccl_run_loop.c   the poll loop: signals, reaping, deadlines, teardown
 * Single-threaded throughout; signals arrive through a signalfd.
 */
#ifndef KCCL_TOOLS_RUN_H
#define KCCL_TOOLS_RUN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#define KR_NAME         "kccl-run"
#define KR_MAX_RANKS    65536
#define KR_EXIT_USAGE   2
#define KR_EXIT_TIMEOUT 124
#define KR_EXIT_NOEXEC  127

/* One captured output stream of a rank (stdout or stderr). */
typedef struct {
    int fd;     /* read end of the pipe, -1 once closed */
    char *pend; /* the unfinished last line, not yet printed */
    size_t len; /* bytes in pend */
    size_t cap; /* allocated size of pend */
} kr_stream_t;

typedef struct {
    int rank;
    pid_t pid; /* also its process group id; 0 if never started */
    int reaped;
    int status; /* wait status once reaped */
    kr_stream_t out, err;
} kr_child_t;

typedef struct {
    /* options */
    int nranks;
    int64_t timeout_ms; /* 0 = none */
    int64_t grace_ms;
    int prefix;
    const char *ifname; /* --ifname, or NULL */
    char **argv;        /* the program and its arguments */

    /* set up by the launcher */
    char secret_dir[4096];
    char secret_path[4200];
    char uid_text[256];
    int root_fd;
    struct rlimit orig_nofile; /* restored in children when nofile_raised */
    int nofile_raised;
    pid_t launcher_pid;

    /* the group */
    kr_child_t *child;
    int started; /* children forked so far */
    int spawn_failed;
    int live; /* forked and not yet reaped */

    /* teardown state */
    int first_fail_rank;   /* -1 = none */
    int first_fail_status; /* wait status */
    int timed_out;
    int stopping; /* SIGTERM sent; SIGKILL at kill_at_ms */
    int killed;   /* SIGKILL sent */
    int64_t kill_at_ms;
    int last_signal; /* last forwarded signal, 0 if none */
} kr_state_t;

/* kccl_run.c */
int64_t kr_now_ms(void);
void kr_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* kccl_run_spawn.c: forks rank c->rank; returns 0 or -1 (message printed). */
int kr_spawn(kr_state_t *s, kr_child_t *c);

/* kccl_run_io.c */
void kr_io_set_prefix(int on);
/* Reads what is available on st (non-blocking fd). Returns 0, or 1 at EOF/error (fd closed). */
int kr_io_pump(int rank, kr_stream_t *st, int to_fd);
/* Reads st until it would block or ends (used right after the child is reaped). */
void kr_io_drain(int rank, kr_stream_t *st, int to_fd);
/* Prints the unfinished line (if any) with a newline, closes fd, frees the buffer. */
void kr_io_close(int rank, kr_stream_t *st, int to_fd);

/* kccl_run_loop.c: runs the group to the end; returns the launcher's exit code. */
int kr_supervise(kr_state_t *s, int sigfd);
/* Signals every process group still alive (and not yet reaped). */
void kr_signal_all(kr_state_t *s, int sig);

#endif
