/*
 * kccl_run_loop.c - kccl-run's supervisor: one poll() loop over a signalfd
 * and every rank's stdout/stderr pipe, until every rank is reaped.
 *
 * Policy, in the order things can happen:
 *  - SIGINT, SIGTERM, SIGHUP, SIGQUIT to the launcher are forwarded to every
 *    rank's process group, and the group gets --grace seconds to end before
 *    SIGKILL; a second such signal sends SIGKILL at once.
 *  - The first rank that exits non-zero or dies by a signal is reported, the
 *    others get SIGTERM, then SIGKILL after the grace period. The launcher
 *    exits with that rank's status (128+signal for a signal).
 *  - --timeout: when it expires the launcher says which ranks were still
 *    running, stops them the same way and exits 124.
 * A rank's pipes are drained as soon as it is reaped, so its last lines are
 * printed before any message about how it ended. Once every rank is reaped,
 * pipes still held open by stray grandchildren get KR_DRAIN_MS more, then
 * are closed.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tools/kccl_run.h"

#define KR_DRAIN_MS 1000
#define KR_LIST_MAX 8 /* ranks named in a message before "..." */

typedef struct {
    pid_t pid;
    int idx;
} kr_pidref_t;

typedef struct {
    kr_state_t *s;
    int sigfd;
    kr_pidref_t *pids; /* sorted by pid, for reaping */
    int npids;
    struct pollfd *pfd;
    int *ref;            /* pfd[i] (i >= 1) is stream ref[i] / 2 of child, stdout when even */
    int64_t deadline_ms; /* --timeout, or INT64_MAX */
    int64_t drain_until; /* once all are reaped */
} kr_loop_t;

static int cmp_pid(const void *a, const void *b)
{
    pid_t x = ((const kr_pidref_t *)a)->pid, y = ((const kr_pidref_t *)b)->pid;
    return (x > y) - (x < y);
}

void kr_signal_all(kr_state_t *s, int sig)
{
    for (int i = 0; i < s->started; i++) {
        kr_child_t *c = &s->child[i];
        if (c->pid <= 0 || c->reaped)
            continue;
        /* The whole group, so a shell's own children go too; the pid alone if the
         * rank left its group. */
        if (kill(-c->pid, sig) != 0 && errno == ESRCH)
            kill(c->pid, sig);
    }
}

static void describe_status(int st, char *buf, size_t len)
{
    if (WIFEXITED(st))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, len, "killed by signal %d (%s)%s", WTERMSIG(st), strsignal(WTERMSIG(st)),
                 WCOREDUMP(st) ? ", core dumped" : "");
    else
        snprintf(buf, len, "ended with wait status 0x%x", (unsigned)st);
}

/* "ranks 0, 2, 5" for the first few ranks still running. */
static void list_live(const kr_state_t *s, char *buf, size_t len)
{
    size_t off = 0;
    int shown = 0;
    buf[0] = '\0';
    for (int i = 0; i < s->started && off < len; i++) {
        if (s->child[i].reaped)
            continue;
        if (shown == KR_LIST_MAX) {
            snprintf(buf + off, len - off, ", ...");
            return;
        }
        int n = snprintf(buf + off, len - off, "%s%d", shown ? ", " : "", s->child[i].rank);
        off += n > 0 ? (size_t)n : 0;
        shown++;
    }
}

static void stop_all(kr_state_t *s)
{
    if (s->stopping)
        return;
    s->stopping = 1;
    s->kill_at_ms = kr_now_ms() + s->grace_ms;
    kr_signal_all(s, SIGTERM);
}

static void on_child_end(kr_loop_t *L, kr_child_t *c, int st)
{
    kr_state_t *s = L->s;
    c->reaped = 1;
    c->status = st;
    s->live--;
    kr_io_drain(c->rank, &c->out, 1);
    kr_io_drain(c->rank, &c->err, 2);
    if (s->live == 0)
        L->drain_until = kr_now_ms() + KR_DRAIN_MS;
    int failed = !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    if (!failed || s->first_fail_rank >= 0 || s->timed_out || s->spawn_failed)
        return;
    char how[128];
    describe_status(st, how, sizeof(how));
    s->first_fail_rank = c->rank;
    s->first_fail_status = st;
    kr_msg("rank %d %s", c->rank, how);
    if (s->live > 0 && !s->stopping) {
        kr_msg("stopping the other %d rank%s (SIGTERM, SIGKILL after %.3g s)", s->live,
               s->live == 1 ? "" : "s", (double)s->grace_ms / 1000.0);
        stop_all(s);
    }
}

static void reap(kr_loop_t *L)
{
    for (;;) {
        int st;
        pid_t pid = waitpid(-1, &st, WNOHANG);
        if (pid <= 0)
            return;
        kr_pidref_t key = {.pid = pid};
        kr_pidref_t *hit = bsearch(&key, L->pids, (size_t)L->npids, sizeof(key), cmp_pid);
        if (hit != NULL && !L->s->child[hit->idx].reaped)
            on_child_end(L, &L->s->child[hit->idx], st);
    }
}

static void on_forwarded_signal(kr_state_t *s, int sig)
{
    if (s->live == 0)
        return;
    if (s->last_signal != 0) {
        kr_msg("got SIG%s again: killing %d rank%s now (SIGKILL)", sigabbrev_np(sig), s->live,
               s->live == 1 ? "" : "s");
        kr_signal_all(s, SIGKILL);
        s->killed = 1;
        return;
    }
    s->last_signal = sig;
    kr_msg("got SIG%s: forwarding it to %d rank%s (SIGKILL after %.3g s; send it again to kill "
           "them now)",
           sigabbrev_np(sig), s->live, s->live == 1 ? "" : "s", (double)s->grace_ms / 1000.0);
    kr_signal_all(s, sig);
    if (!s->stopping) {
        s->stopping = 1;
        s->kill_at_ms = kr_now_ms() + s->grace_ms;
    }
}

static void read_signals(kr_loop_t *L)
{
    struct signalfd_siginfo si;
    int got_chld = 0;
    while (read(L->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGCHLD)
            got_chld = 1;
        else
            on_forwarded_signal(L->s, (int)si.ssi_signo);
    }
    if (got_chld)
        reap(L);
}

static void check_deadlines(kr_loop_t *L)
{
    kr_state_t *s = L->s;
    int64_t now = kr_now_ms();
    if (s->live > 0 && !s->timed_out && now >= L->deadline_ms) {
        char ranks[256];
        list_live(s, ranks, sizeof(ranks));
        s->timed_out = 1;
        kr_msg("timed out after %.3g s (--timeout) with %d of %d rank%s still running (ranks %s); "
               "stopping them",
               (double)s->timeout_ms / 1000.0, s->live, s->nranks, s->nranks == 1 ? "" : "s",
               ranks);
        stop_all(s);
    }
    if (s->live > 0 && s->stopping && !s->killed && now >= s->kill_at_ms) {
        kr_msg("%d rank%s still running %.3g s after being told to stop: sending SIGKILL", s->live,
               s->live == 1 ? "" : "s", (double)s->grace_ms / 1000.0);
        kr_signal_all(s, SIGKILL);
        s->killed = 1;
    }
}

/* Fills pfd[1..] with every open stream; returns how many pollfds are in use. */
static int build_pollset(kr_loop_t *L)
{
    int n = 1;
    for (int i = 0; i < L->s->started; i++) {
        kr_child_t *c = &L->s->child[i];
        if (c->out.fd >= 0) {
            L->pfd[n] = (struct pollfd){.fd = c->out.fd, .events = POLLIN};
            L->ref[n++] = 2 * i;
        }
        if (c->err.fd >= 0) {
            L->pfd[n] = (struct pollfd){.fd = c->err.fd, .events = POLLIN};
            L->ref[n++] = 2 * i + 1;
        }
    }
    return n;
}

static int next_timeout(const kr_loop_t *L)
{
    const kr_state_t *s = L->s;
    int64_t until = INT64_MAX, now = kr_now_ms();
    if (s->live > 0 && !s->timed_out)
        until = L->deadline_ms;
    if (s->live > 0 && s->stopping && !s->killed && s->kill_at_ms < until)
        until = s->kill_at_ms;
    if (s->live == 0 && L->drain_until < until)
        until = L->drain_until;
    if (until == INT64_MAX)
        return -1;
    return until <= now ? 0 : (until - now > 60000 ? 60000 : (int)(until - now));
}

static void pump_ready(kr_loop_t *L, int n)
{
    for (int i = 1; i < n; i++) {
        if (L->pfd[i].revents == 0)
            continue;
        kr_child_t *c = &L->s->child[L->ref[i] / 2];
        if (L->ref[i] % 2 == 0)
            kr_io_pump(c->rank, &c->out, 1);
        else
            kr_io_pump(c->rank, &c->err, 2);
    }
}

static void close_all_streams(kr_state_t *s)
{
    for (int i = 0; i < s->started; i++) {
        kr_io_close(s->child[i].rank, &s->child[i].out, 1);
        kr_io_close(s->child[i].rank, &s->child[i].err, 2);
    }
}

static int exit_code(const kr_state_t *s)
{
    if (s->timed_out)
        return KR_EXIT_TIMEOUT;
    if (s->first_fail_rank < 0)
        return 0;
    int st = s->first_fail_status;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return 1;
}

/* Last resort when the loop itself cannot go on: SIGKILL everyone, wait for all of them. */
static void kill_and_reap(kr_loop_t *L)
{
    kr_signal_all(L->s, SIGKILL);
    L->s->killed = 1;
    for (int i = 0; i < L->s->started; i++) {
        kr_child_t *c = &L->s->child[i];
        while (!c->reaped && c->pid > 0 && waitpid(c->pid, &c->status, 0) < 0 && errno == EINTR)
            ;
        c->reaped = 1;
    }
    L->s->live = 0;
}

static int loop_init(kr_loop_t *L, kr_state_t *s, int sigfd)
{
    memset(L, 0, sizeof(*L));
    L->s = s;
    L->sigfd = sigfd;
    L->deadline_ms = s->timeout_ms > 0 ? kr_now_ms() + s->timeout_ms : INT64_MAX;
    L->drain_until = INT64_MAX;
    L->pids = calloc((size_t)s->started + 1, sizeof(*L->pids));
    L->pfd = calloc(2 * (size_t)s->started + 1, sizeof(*L->pfd));
    L->ref = calloc(2 * (size_t)s->started + 1, sizeof(*L->ref));
    if (L->pids == NULL || L->pfd == NULL || L->ref == NULL)
        return -1;
    for (int i = 0; i < s->started; i++)
        L->pids[L->npids++] = (kr_pidref_t){.pid = s->child[i].pid, .idx = i};
    qsort(L->pids, (size_t)L->npids, sizeof(*L->pids), cmp_pid);
    return 0;
}

/* The loop proper; returns 0, or -1 when it cannot go on (everyone was killed). */
static int run_loop(kr_loop_t *L)
{
    kr_state_t *s = L->s;
    read_signals(L); /* anything that arrived while ranks were being started */
    for (;;) {
        check_deadlines(L);
        int n = build_pollset(L);
        if (s->live == 0 && (n == 1 || kr_now_ms() >= L->drain_until))
            return 0;
        L->pfd[0] = (struct pollfd){.fd = L->sigfd, .events = POLLIN};
        int r = poll(L->pfd, (nfds_t)n, next_timeout(L));
        if (r < 0 && errno != EINTR) {
            kr_msg("poll failed: %s; killing all ranks", strerror(errno));
            kill_and_reap(L);
            return -1;
        }
        if (r > 0)
            pump_ready(L, n);
        if (r > 0 && L->pfd[0].revents)
            read_signals(L);
    }
}

int kr_supervise(kr_state_t *s, int sigfd)
{
    kr_loop_t L;
    int rc;
    if (loop_init(&L, s, sigfd) != 0) {
        kr_msg("out of memory supervising %d ranks; killing them", s->started);
        kill_and_reap(&L);
        rc = 1;
    } else {
        rc = run_loop(&L) == 0 ? exit_code(s) : 1;
    }
    close_all_streams(s);
    free(L.pids);
    free(L.pfd);
    free(L.ref);
    return rc;
}
