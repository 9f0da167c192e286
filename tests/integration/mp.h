/*
 * mp.h - a tiny multi-process harness for the integration tests: fork N
 * processes ("procs") that each run one function, share a small mmap'ed
 * block with the parent (per-proc results, progress counters, flags), and
 * bound everything in time.
 *
 * Contract:
 * - The parent (the CMocka runner) is single-threaded; procs are forked from
 *   it with PR_SET_PDEATHSIG(SIGKILL) and an alarm() watchdog, so no proc
 *   outlives its test or the runner. mp_wait_all() kills whatever is still
 *   running at the group's deadline; mp_cleanup_all() (every test's teardown)
 *   kills and reaps anything a failed assertion left behind.
 * - Procs never use CMocka asserts (a longjmp in a child would resume the
 *   runner there). They check with MP_CHECK*, which records "file:line: what"
 *   in the proc's slot and returns 1 from the proc function; the parent then
 *   reports it with mp_assert_all_ok().
 * - Each proc logs to its own file (KCCL_LOG_FILE=<dir>/p<proc>.log, level
 *   from mp_opts_t.log_level), so the parent can check what was logged and
 *   print the log of a failed proc. The directory is under $TMPDIR.
 * - Procs end with exit() (not _exit) so LeakSanitizer checks each of them;
 *   a leak turns into a non-zero exit status the parent reports.
 *
 * The kccl part: mp_opts_t.ids names unique ids created (listener held) in
 * the parent before the fork. The parent drops its copies of those listeners
 * right after forking and every proc except root_proc drops its copy first
 * thing, so only the root rank holds the root's port.
 */
#ifndef KCCL_ITEST_MP_H
#define KCCL_ITEST_MP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "kccl/kccl_bootstrap.h"

#define MP_MAX_PROCS 1024
#define MP_FLAGS     16
#define MP_TEXT      256
#define MP_MSG       512

/* What one proc reports; written by the proc, read by the parent. */
typedef struct {
    int started;        /* the proc function began */
    int finished;       /* the proc function returned (exit follows) */
    int rc;             /* its return value: 0 = every check passed */
    int status;         /* a kccl_status_t the proc chose to report */
    int64_t elapsed_ms; /* a duration the proc chose to report */
    int64_t when_ms;    /* a moment (mp_now_ms, comparable across procs) it chose to report */
    int64_t progress;   /* a counter the parent may wait on */
    char err[MP_MSG];   /* a kccl_last_error() the proc chose to report */
    char fail[MP_MSG];  /* the first failed check, "file:line: ..." */
    char text[MP_TEXT]; /* anything else to publish (e.g. a peer address) */
} mp_slot_t;

typedef struct mp mp_t;

/* Runs in proc number `proc` (0..nprocs-1); returns 0 when all its checks passed. */
typedef int (*mp_fn)(mp_t *mp, int proc, void *arg);

typedef struct {
    const char *name; /* for messages and the log directory */
    int nprocs;
    int64_t deadline_ms; /* whole-group bound, from mp_start() */
    mp_fn fn;
    void *arg;
    const kccl_unique_id_t *ids; /* held ids (see above); may be NULL */
    int nids;
    int root_proc;         /* the proc that keeps the listeners (rank 0) */
    const char *log_level; /* KCCL_LOG_LEVEL in the procs; NULL = "warn" */
} mp_opts_t;

/* Forks every proc. Never returns NULL (fails the current test instead). */
mp_t *mp_start(const mp_opts_t *o);

int mp_nprocs(const mp_t *mp);
pid_t mp_pid(const mp_t *mp, int proc);
mp_slot_t *mp_slot(mp_t *mp, int proc);
/* The proc's log file path (exists once the proc logged something). */
const char *mp_log_path(const mp_t *mp, int proc, char *buf, size_t len);
/* The group's private directory under $TMPDIR. */
const char *mp_dir(const mp_t *mp);

/* Shared flags: the parent sets, procs wait (or the other way round). */
void mp_flag_set(mp_t *mp, int flag, int value);
int mp_flag_get(mp_t *mp, int flag);
/* Polls until flag >= value; 0 when it got there, -1 at the timeout. */
int mp_flag_wait(mp_t *mp, int flag, int value, int64_t timeout_ms);
/* Polls (parent side) until the proc's progress >= value; 0 or -1. */
int mp_progress_wait(mp_t *mp, int proc, int64_t value, int64_t timeout_ms);

/* Parent: SIGKILL one proc and reap it. */
void mp_kill(mp_t *mp, int proc);
/* Parent: waits for one proc to exit; 0 when it did, -1 at the timeout. */
int mp_wait_proc(mp_t *mp, int proc, int64_t timeout_ms);
/* Parent: waits for all (killing the rest at the deadline); returns how many
 * procs did not exit with status 0 (procs mp_kill'ed excepted). */
int mp_wait_all(mp_t *mp);
/* After the wait: 1 if the proc exited with status 0. */
int mp_proc_ok(const mp_t *mp, int proc);
/* "exit 0", "exit 1", "killed by signal 9 (by the test)", "running". */
const char *mp_proc_state(const mp_t *mp, int proc, char *buf, size_t len);
/* Fails the current test (after printing every bad proc, its slot and log
 * tail) unless every proc that was not mp_kill'ed exited 0. */
void mp_assert_all_ok(mp_t *mp);
/* Prints one proc's slot and the tail of its log (debugging aid). */
void mp_report_proc(mp_t *mp, int proc);

/* Kills and reaps any live proc, unmaps, frees. NULL is fine. */
void mp_free(mp_t *mp);
/* Teardown for every test: frees whatever group is still live. */
int mp_cleanup_all(void **state);

/* ---- inside a proc ---- */

/* The slot of the calling proc. */
mp_slot_t *mp_self(void);
int mp_self_proc(void);
/* Records the first failure of the calling proc (printf-style). */
void mp_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define MP_CHECK(cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            mp_fail_at(__FILE__, __LINE__, __VA_ARGS__);                                           \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

/* A kccl call that must succeed; records kccl_last_error() otherwise. */
#define MP_CHECK_OK(call)                                                                          \
    do {                                                                                           \
        kccl_status_t mp_st_ = (call);                                                             \
        if (mp_st_ != KCCL_OK) {                                                                   \
            mp_fail_at(__FILE__, __LINE__, "%s -> %s: %s", #call, kccl_status_name(mp_st_),        \
                       kccl_last_error());                                                         \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

/* ---- time and small helpers shared by both sides ---- */

int64_t mp_now_ms(void);
void mp_sleep_ms(int64_t ms);
/* The integer in environment variable name, clamped to [lo, hi]; def if unset or bad. */
long mp_env_long(const char *name, long def, long lo, long hi);
/* Reads a whole (small) file into a malloc'ed NUL-terminated string; "" if missing. */
char *mp_read_file(const char *path);

/* ---- kccl helpers ---- */

/* The group secret every test group shares, and one that differs from it. */
extern const uint8_t mp_test_secret[KCCL_GROUP_SECRET_BYTES];
extern const uint8_t mp_other_secret[KCCL_GROUP_SECRET_BYTES];

/* Options for a loopback test group: ifname "lo", IPv4, the test secret,
 * timeout_ms, host id "itest-host", AUTO algorithm. Fails the test on error
 * (parent side only). */
void mp_test_opts(kccl_bootstrap_opts_t *o, int64_t timeout_ms);
/* kccl_unique_id_create with o; fails the test on error (parent side). */
void mp_make_id(const kccl_bootstrap_opts_t *o, kccl_unique_id_t *id);

#endif
