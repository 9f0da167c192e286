/*
 * bootstrap_bench.c - kccl-bench-bootstrap: how long N processes on one host
 * take to form a kccl bootstrap (init + one barrier).
 *
 * The protocol is the "Bootstrap" one of BENCHMARKS.md, the same that
 * measured MSCCL++: N ranks are N processes forked once; every iteration
 * rank 0 creates a fresh unique id, which reaches the others through shared
 * memory outside the timed region; then every rank times
 * kccl_bootstrap_create() + kccl_bootstrap_barrier(), and the iteration's
 * figure is the largest of the N durations. Teardown happens between shared
 * barriers, outside the timed region. Authentication is on: the parent draws
 * a random group secret before fork.
 *
 * The processes meet on a barrier in a MAP_SHARED page that sleeps on a futex
 * (no spinning: with 1,024 ranks on a few cores, spinning waiters would eat
 * the CPU the bootstrap needs and distort the figure). Every wait on it has a
 * deadline; the parent sleeps in sigtimedwait(), reaps, and kills everything
 * at --timeout, so the benchmark never hangs; children die with the parent
 * (PR_SET_PDEATHSIG). Depends on libc, pthreads and libkccl only.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kccl/kccl_bootstrap.h"
#include "kccl/kccl_status.h"

#define REC_PENDING   INT32_MAX /* the rank has not finished this iteration */
#define REC_NO_ID     (-1000)   /* rank 0 could not create the id */
#define BAR_BROKEN    0x80000000u
#define EXIT_BARRIER  3 /* a child left because the shared barrier broke */
#define KILL_GRACE_NS (5 * 1000000000LL)

/* One rank's result for one iteration. Times are CLOCK_MONOTONIC ns, which
 * is one clock for all processes of the host. */
typedef struct {
    int64_t t0, t1;
    int32_t status; /* REC_PENDING, KCCL_OK, a kccl error or REC_NO_ID */
    int32_t pad;
} rec_t;

/* Sense-reversing barrier for processes: `word` holds the generation in its
 * low 31 bits and BAR_BROKEN in bit 31; waiters sleep on it with FUTEX_WAIT.
 * Breaking sets the bit, which changes the word, so no waiter can miss it. */
typedef struct {
    _Atomic uint32_t count;
    _Atomic uint32_t word;
    uint32_t n;
} shbar_t;

/* The MAP_SHARED area; recs[iters * nranks] follows it. */
typedef struct {
    shbar_t bar;
    _Atomic int id_ok; /* rank 0 published a valid id for this iteration */
    kccl_unique_id_t id;
    rec_t recs[];
} shm_t;

typedef struct {
    int nranks, iters, warmup;
    const char *json_path, *cpus, *label;
    double timeout_s;
    kccl_bootstrap_opts_t opts;
    int64_t bar_timeout_ns;
    pid_t parent;
    shm_t *shm;
    size_t shm_bytes;
    int cpus_allowed;
} bench_t;

typedef struct {
    size_t nsamples, failures, finished, started;
    double min, median, mean, p99, max, span_median;
    double *samples; /* kept, successful iterations, in iteration order */
} stats_t;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static rec_t *rec_at(const bench_t *b, int it, int rank)
{
    return &b->shm->recs[(size_t)it * (size_t)b->nranks + (size_t)rank];
}

/* write(2) in one piece so lines from 1,024 processes do not interleave. */
static void say(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(int fd, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1;
    ssize_t w = write(fd, buf, len);
    (void)w;
}

/* ---- the shared barrier ------------------------------------------------ */

static void futex_wake_all(_Atomic uint32_t *addr)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static void shbar_break(shbar_t *bar)
{
    atomic_fetch_or(&bar->word, BAR_BROKEN);
    futex_wake_all(&bar->word);
}

/* 0 when all n arrived; -1 when the barrier is broken; -2 when this waiter
 * hit its deadline (and broke the barrier, so the others leave too). */
static int shbar_wait(shbar_t *bar, int64_t deadline_ns)
{
    uint32_t gen = atomic_load(&bar->word);
    if (gen & BAR_BROKEN)
        return -1;
    if (atomic_fetch_add(&bar->count, 1) + 1 == bar->n) {
        atomic_store(&bar->count, 0);
        uint32_t old = atomic_load(&bar->word);
        while (!atomic_compare_exchange_weak(&bar->word, &old,
                                             (old & BAR_BROKEN) | ((old + 1) & ~BAR_BROKEN)))
            ;
        futex_wake_all(&bar->word);
        return 0;
    }
    for (;;) {
        uint32_t w = atomic_load(&bar->word);
        if (w & BAR_BROKEN)
            return -1;
        if (w != gen)
            return 0;
        int64_t left = deadline_ns - now_ns();
        if (left <= 0) {
            shbar_break(bar);
            return -2;
        }
        struct timespec ts = {.tv_sec = left / 1000000000LL, .tv_nsec = left % 1000000000LL};
        syscall(SYS_futex, (uint32_t *)&bar->word, FUTEX_WAIT, gen, &ts, NULL, 0);
    }
}

/* ---- one rank ------------------------------------------------------------ */

static int rank_barrier(const bench_t *b, int rank, int it, const char *where)
{
    int r = shbar_wait(&b->shm->bar, now_ns() + b->bar_timeout_ns);
    if (r == -2)
        say(2, "rank %d iteration %d: shared barrier '%s' timed out after %.0f s; aborting\n", rank,
            it, where, (double)b->bar_timeout_ns / 1e9);
    return r;
}

/* Rank 0, before the iteration: a fresh id whose root listener this process
 * holds; the others read it after the first shared barrier. */
static void publish_id(bench_t *b, int it)
{
    kccl_unique_id_t id;
    kccl_status_t st = kccl_unique_id_create(&b->opts, &id);
    if (st != KCCL_OK) {
        say(2, "rank 0 iteration %d: %s: %s\n", it, kccl_status_str(st), kccl_last_error());
        atomic_store(&b->shm->id_ok, 0);
        return;
    }
    b->shm->id = id;
    atomic_store(&b->shm->id_ok, 1);
}

/* The timed region: init + one barrier. */
static kccl_status_t timed_bootstrap(const bench_t *b, const kccl_unique_id_t *id, int rank,
                                     rec_t *r, kccl_bootstrap_t *bs)
{
    int64_t t0 = now_ns();
    kccl_status_t st = kccl_bootstrap_create(id, rank, b->nranks, &b->opts, bs);
    if (st == KCCL_OK)
        st = kccl_bootstrap_barrier(*bs);
    int64_t t1 = now_ns();
    r->t0 = t0;
    r->t1 = t1;
    return st;
}

static int rank_iteration(bench_t *b, int rank, int it)
{
    rec_t *r = rec_at(b, it, rank);
    kccl_bootstrap_t bs = NULL;
    kccl_unique_id_t id;
    int st;

    if (rank == 0)
        publish_id(b, it);
    if (rank_barrier(b, rank, it, "id published") != 0)
        return -1;
    int have_id = atomic_load(&b->shm->id_ok);
    if (!have_id) {
        st = REC_NO_ID;
    } else {
        id = b->shm->id;
        st = timed_bootstrap(b, &id, rank, r, &bs);
        if (st != KCCL_OK)
            say(2, "rank %d iteration %d: %s: %s\n", rank, it, kccl_status_str(st),
                kccl_last_error());
    }
    r->status = st;
    if (rank_barrier(b, rank, it, "measured") != 0)
        return -1;
    kccl_bootstrap_destroy(bs);
    if (rank == 0 && have_id && st != KCCL_OK)
        kccl_unique_id_release(&id);
    if (rank_barrier(b, rank, it, "torn down") != 0)
        return -1;
    return 0;
}

static int rank_main(bench_t *b, int rank, const sigset_t *oldmask)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != b->parent)
        return 4;
    sigprocmask(SIG_SETMASK, oldmask, NULL);
    for (int it = 0; it < b->iters; it++)
        if (rank_iteration(b, rank, it) != 0)
            return EXIT_BARRIER;
    return 0;
}

/* ---- the parent: spawn, supervise, reap ------------------------------------ */

typedef struct {
    pid_t *pids;
    int alive;
    int killed;        /* SIGKILL sent to everyone left */
    int64_t kill_at;   /* after a rank died abnormally: the others' grace ends */
    const char *abort; /* why the run stopped early, or NULL */
} supervisor_t;

static void kill_all(const bench_t *b, supervisor_t *sv)
{
    shbar_break(&b->shm->bar);
    for (int r = 0; r < b->nranks; r++)
        if (sv->pids[r] > 0)
            kill(sv->pids[r], SIGKILL);
    sv->killed = 1;
}

static void reap_one(const bench_t *b, supervisor_t *sv, pid_t pid, int status)
{
    int rank = -1;
    for (int r = 0; r < b->nranks; r++)
        if (sv->pids[r] == pid)
            rank = r;
    if (rank < 0)
        return;
    sv->pids[rank] = 0;
    sv->alive--;
    int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (clean || sv->killed)
        return;
    if (WIFSIGNALED(status))
        say(2, "rank %d: killed by signal %d (%s)\n", rank, WTERMSIG(status),
            strsignal(WTERMSIG(status)));
    else if (WEXITSTATUS(status) != EXIT_BARRIER)
        say(2, "rank %d: exited with status %d\n", rank, WEXITSTATUS(status));
    if (!sv->abort)
        sv->abort = "a rank stopped early";
    shbar_break(&b->shm->bar); /* the others leave at their next shared barrier */
    if (sv->kill_at == 0)
        sv->kill_at = now_ns() + KILL_GRACE_NS;
}

static void supervise(const bench_t *b, supervisor_t *sv, const sigset_t *set)
{
    int64_t deadline = now_ns() + (int64_t)(b->timeout_s * 1e9);
    while (sv->alive > 0) {
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
            reap_one(b, sv, pid, status);
        if (sv->alive == 0)
            break;
        if (sv->killed) {
            if ((pid = waitpid(-1, &status, 0)) > 0)
                reap_one(b, sv, pid, status);
            continue;
        }
        int64_t now = now_ns();
        int64_t until = deadline;
        if (sv->kill_at && sv->kill_at < until)
            until = sv->kill_at;
        if (now >= until) {
            if (now >= deadline) {
                say(2, "global timeout (%.0f s): killing %d ranks\n", b->timeout_s, sv->alive);
                sv->abort = "global timeout";
            } else {
                say(2, "killing the %d ranks still running %lld s after the first one stopped\n",
                    sv->alive, (long long)(KILL_GRACE_NS / 1000000000LL));
            }
            kill_all(b, sv);
            continue;
        }
        int64_t left = until - now;
        struct timespec ts = {.tv_sec = left / 1000000000LL, .tv_nsec = left % 1000000000LL};
        int sig = sigtimedwait(set, NULL, &ts);
        if (sig == SIGINT || sig == SIGTERM) {
            say(2, "interrupted (%s): killing %d ranks\n", strsignal(sig), sv->alive);
            sv->abort = "interrupted";
            kill_all(b, sv);
        }
    }
}

/* Forks the ranks and waits for them. 0 when every rank finished cleanly. */
static int run_ranks(bench_t *b)
{
    sigset_t set, oldmask;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, &oldmask);

    supervisor_t sv = {.pids = calloc((size_t)b->nranks, sizeof(pid_t))};
    if (sv.pids == NULL) {
        perror("calloc");
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    for (int r = 0; r < b->nranks; r++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(rank_main(b, r, &oldmask));
        if (pid < 0) {
            say(2, "fork of rank %d failed: %s (raise ulimit -u?)\n", r, strerror(errno));
            sv.abort = "fork failed";
            kill_all(b, &sv);
            break;
        }
        sv.pids[r] = pid;
        sv.alive++;
    }
    supervise(b, &sv, &set);
    sigprocmask(SIG_SETMASK, &oldmask, NULL);
    free(sv.pids);
    if (sv.abort)
        say(2, "run aborted: %s\n", sv.abort);
    return sv.abort ? -1 : 0;
}

/* ---- statistics ---------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The iteration's figure: the slowest rank's duration. Also the span, from
 * the first rank's start to the last rank's end (includes wake-up skew). *
 * Returns 1 when all ranks succeeded, 0 when it failed, -1 when unfinished,
 * -2 when it never started. */
static int iteration_figure(const bench_t *b, int it, double *ms, double *span_ms)
{
    int64_t worst = 0, first = INT64_MAX, last = INT64_MIN;
    int pending = 0, failed = 0;
    for (int r = 0; r < b->nranks; r++) {
        const rec_t *x = rec_at(b, it, r);
        if (x->status == REC_PENDING) {
            pending++;
            continue;
        }
        if (x->status != KCCL_OK) {
            failed = 1;
            continue;
        }
        if (x->t1 - x->t0 > worst)
            worst = x->t1 - x->t0;
        first = x->t0 < first ? x->t0 : first;
        last = x->t1 > last ? x->t1 : last;
    }
    if (pending == b->nranks)
        return -2;
    if (failed)
        return 0;
    if (pending)
        return -1;
    *ms = (double)worst / 1e6;
    *span_ms = (double)(last - first) / 1e6;
    return 1;
}

static double median_of(double *v, size_t n)
{
    qsort(v, n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

/* Failures count every iteration that failed, warm-up included; an
 * iteration cut short by an abort counts as failed too. */
static int compute_stats(const bench_t *b, stats_t *s)
{
    memset(s, 0, sizeof(*s));
    s->samples = calloc((size_t)b->iters, sizeof(double));
    double *spans = calloc((size_t)b->iters, sizeof(double));
    double *sorted = calloc((size_t)b->iters, sizeof(double));
    if (!s->samples || !spans || !sorted) {
        free(s->samples);
        free(spans);
        free(sorted);
        s->samples = NULL;
        return -1;
    }
    for (int it = 0; it < b->iters; it++) {
        double ms = 0, span = 0;
        int f = iteration_figure(b, it, &ms, &span);
        if (f != -2)
            s->started++;
        if (f == 1 || f == 0)
            s->finished++;
        if (f == 0 || f == -1)
            s->failures++;
        if (f == 1 && it >= b->warmup) {
            spans[s->nsamples] = span;
            s->samples[s->nsamples++] = ms;
        }
    }
    size_t n = s->nsamples;
    if (n > 0) {
        memcpy(sorted, s->samples, n * sizeof(double));
        s->median = median_of(sorted, n);
        s->min = sorted[0];
        s->max = sorted[n - 1];
        s->p99 = sorted[(99 * n + 99) / 100 - 1]; /* nearest rank: ceil(0.99 n) */
        for (size_t i = 0; i < n; i++)
            s->mean += sorted[i] / (double)n;
        s->span_median = median_of(spans, n);
    }
    free(spans);
    free(sorted);
    return 0;
}

/* ---- machine facts and output ------------------------------------------------ */

typedef struct {
    char hostname[256], cpu_model[256], kernel[512], date[64];
    double load1; /* 1-minute load average before the run: a busy box skews the figures */
    long tw_before, tw_after; /* TCP sockets in TIME_WAIT: many make binds slow, then fail */
    long nproc;
} machine_t;

static void read_cpu_model(char *out, size_t len)
{
    snprintf(out, len, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f == NULL)
        return;
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "model name", 10) != 0 && strncmp(line, "Processor", 9) != 0)
            continue;
        char *v = strchr(line, ':');
        if (v == NULL)
            continue;
        v++;
        while (*v == ' ' || *v == '\t')
            v++;
        v[strcspn(v, "\n")] = '\0';
        snprintf(out, len, "%s", v);
        break;
    }
    fclose(f);
}

/* This network namespace's TIME_WAIT count ("tw" in /proc/net/sockstat), or -1. */
static long time_wait_count(void)
{
    long tw = -1;
    char line[256];
    FILE *f = fopen("/proc/net/sockstat", "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        const char *p = strncmp(line, "TCP:", 4) == 0 ? strstr(line, " tw ") : NULL;
        if (p != NULL)
            tw = strtol(p + 4, NULL, 10);
    }
    fclose(f);
    return tw;
}

static void machine_facts(machine_t *m)
{
    struct utsname u;
    if (gethostname(m->hostname, sizeof(m->hostname)) != 0)
        snprintf(m->hostname, sizeof(m->hostname), "unknown");
    m->hostname[sizeof(m->hostname) - 1] = '\0';
    m->nproc = sysconf(_SC_NPROCESSORS_ONLN);
    read_cpu_model(m->cpu_model, sizeof(m->cpu_model));
    if (uname(&u) == 0)
        snprintf(m->kernel, sizeof(m->kernel), "%s %s %s", u.sysname, u.release, u.machine);
    else
        snprintf(m->kernel, sizeof(m->kernel), "unknown");
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(m->date, sizeof(m->date), "%Y-%m-%dT%H:%M:%SZ", &tm);
    double load[1];
    m->load1 = getloadavg(load, 1) == 1 ? load[0] : -1.0;
    m->tw_before = time_wait_count();
}

static void print_header(const bench_t *b, const machine_t *m)
{
    printf("# kccl-bench-bootstrap: init + one barrier, %d processes on one host\n", b->nranks);
    printf("# host %s, nproc %ld, cpus allowed %d%s%s%s, cpu %s\n", m->hostname, m->nproc,
           b->cpus_allowed, b->cpus ? " (pinned to " : "", b->cpus ? b->cpus : "",
           b->cpus ? ")" : "", m->cpu_model);
    printf("# kernel %s, date %s, load average %.2f, TCP TIME_WAIT %ld\n", m->kernel, m->date,
           m->load1, m->tw_before);
    printf("# %d iterations, first %d excluded; ifname %s; authenticated (random group secret); "
           "timeout %.1f s per blocking call\n",
           b->iters, b->warmup, b->opts.ifname, (double)b->opts.timeout_ms / 1e3);
    if (b->label)
        printf("# label: %s\n", b->label);
}

static void print_result(const bench_t *b, const stats_t *s)
{
    printf("%5s %5s %9s %10s %9s %9s %9s %9s\n", "ranks", "iters", "min_ms", "median_ms", "mean_ms",
           "p99_ms", "max_ms", "failures");
    if (s->nsamples == 0) {
        printf("%5d %5zu %9s %10s %9s %9s %9s %9zu\n", b->nranks, s->nsamples, "-", "-", "-", "-",
               "-", s->failures);
        return;
    }
    printf("%5d %5zu %9.3f %10.3f %9.3f %9.3f %9.3f %9zu\n", b->nranks, s->nsamples, s->min,
           s->median, s->mean, s->p99, s->max, s->failures);
    if (s->finished < (size_t)b->iters)
        printf("# incomplete: %zu of %d iterations finished\n", s->finished, b->iters);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void json_num(FILE *f, const char *key, double v, int valid)
{
    if (valid)
        fprintf(f, "  \"%s\": %.6f,\n", key, v);
    else
        fprintf(f, "  \"%s\": null,\n", key);
}

static int write_json(const bench_t *b, const stats_t *s, const machine_t *m, int complete)
{
    FILE *f = fopen(b->json_path, "w");
    if (f == NULL) {
        say(2, "cannot write %s: %s\n", b->json_path, strerror(errno));
        return -1;
    }
    int ok = s->nsamples > 0;
    fprintf(f, "{\n  \"benchmark\": \"bootstrap\",\n  \"ranks\": %d,\n", b->nranks);
    fprintf(f, "  \"iterations\": %zu,\n  \"warmup\": %d,\n", s->nsamples, b->warmup);
    fprintf(f, "  \"iterations_requested\": %d,\n", b->iters);
    json_num(f, "min_ms", s->min, ok);
    json_num(f, "median_ms", s->median, ok);
    json_num(f, "mean_ms", s->mean, ok);
    json_num(f, "p99_ms", s->p99, ok);
    json_num(f, "max_ms", s->max, ok);
    json_num(f, "span_median_ms", s->span_median, ok);
    fprintf(f, "  \"failures\": %zu,\n  \"complete\": %s,\n", s->failures,
            complete ? "true" : "false");
    fprintf(f, "  \"samples_ms\": [");
    for (size_t i = 0; i < s->nsamples; i++)
        fprintf(f, "%s%.6f", i ? ", " : "", s->samples[i]);
    fprintf(f, "],\n  \"machine\": {\"hostname\": ");
    json_str(f, m->hostname);
    fprintf(f, ", \"cpus\": %ld, \"cpus_allowed\": %d, \"cpu_list\": ", m->nproc, b->cpus_allowed);
    json_str(f, b->cpus ? b->cpus : "");
    fprintf(f, ", \"cpu_model\": ");
    json_str(f, m->cpu_model);
    fprintf(f, ", \"kernel\": ");
    json_str(f, m->kernel);
    fprintf(f, ", \"loadavg\": %.2f},\n", m->load1);
    fprintf(f,
            "  \"time_wait_before\": %ld,\n  \"time_wait_after\": %ld,\n  \"date\": ", m->tw_before,
            m->tw_after);
    json_str(f, m->date);
    fprintf(f, ",\n  \"timeout_ms\": %lld,\n  \"label\": ", (long long)b->opts.timeout_ms);
    json_str(f, b->label ? b->label : "");
    fprintf(f, "\n}\n");
    if (fclose(f) != 0) {
        say(2, "cannot write %s: %s\n", b->json_path, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- set-up ------------------------------------------------------------------- */

/* "0-3,8,10-11" -> set. */
static int parse_cpus(const char *text, cpu_set_t *set)
{
    CPU_ZERO(set);
    const char *p = text;
    while (*p) {
        char *end;
        errno = 0;
        long lo = strtol(p, &end, 10), hi = lo;
        if (end == p || errno)
            return -1;
        p = end;
        if (*p == '-') {
            p++;
            hi = strtol(p, &end, 10);
            if (end == p || errno)
                return -1;
            p = end;
        }
        if (lo < 0 || hi < lo || hi >= CPU_SETSIZE)
            return -1;
        for (long c = lo; c <= hi; c++)
            CPU_SET((int)c, set);
        if (*p == ',')
            p++;
        else if (*p)
            return -1;
    }
    return CPU_COUNT(set) > 0 ? 0 : -1;
}

static void raise_nofile(int nranks)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            say(2, "warning: cannot raise RLIMIT_NOFILE to %llu: %s\n", (unsigned long long)want,
                strerror(errno));
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)nranks + 64)
        say(2, "warning: RLIMIT_NOFILE is %llu; %d ranks may run out of descriptors\n",
            (unsigned long long)rl.rlim_cur, nranks);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kccl-bench-bootstrap -n RANKS [-i ITERS] [-w WARMUP] [--json FILE]\n"
            "                            [--cpus LIST] [--timeout SECONDS] [--label TEXT]\n"
            "  -n RANKS          processes (ranks) on this host (required)\n"
            "  -i ITERS          iterations, warm-up included (default 101)\n"
            "  -w WARMUP         first iterations left out of the figures (default 1)\n"
            "  --json FILE       also write the results as JSON\n"
            "  --cpus LIST       pin every rank to these cpus, e.g. 0-1 or 0,2,4-7\n"
            "  --timeout SECONDS kill everything after this long (default 600)\n"
            "  --label TEXT      free text recorded in the JSON\n"
            "Environment: KCCL_SOCKET_IFNAME (default here: lo), KCCL_BOOTSTRAP_TIMEOUT, the\n"
            "other KCCL_* bootstrap variables; the group secret is always a fresh random one.\n");
}

static int parse_int(const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_args(bench_t *b, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", required_argument, NULL, 'j'},    {"cpus", required_argument, NULL, 'c'},
        {"timeout", required_argument, NULL, 't'}, {"label", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    int c;
    char *end;
    b->iters = 101;
    b->warmup = 1;
    b->timeout_s = 600;
    while ((c = getopt_long(argc, argv, "n:i:w:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (parse_int(optarg, 1, 1 << 20, &b->nranks))
                return -1;
            break;
        case 'i':
            if (parse_int(optarg, 1, 1 << 24, &b->iters))
                return -1;
            break;
        case 'w':
            if (parse_int(optarg, 0, 1 << 24, &b->warmup))
                return -1;
            break;
        case 'j': b->json_path = optarg; break;
        case 'c': b->cpus = optarg; break;
        case 'l': b->label = optarg; break;
        case 't':
            b->timeout_s = strtod(optarg, &end);
            if (end == optarg || *end || !(b->timeout_s > 0))
                return -1;
            break;
        case 'h': usage(stdout); exit(0);
        default: return -1;
        }
    }
    if (optind != argc || b->nranks < 1 || b->warmup >= b->iters)
        return -1;
    return 0;
}

/* Options from the environment, then what the protocol fixes: an
 * authenticated run with a fresh random secret, on lo unless told. */
static int setup_opts(bench_t *b)
{
    kccl_bootstrap_opts_t *o = &b->opts;
    memset(o, 0, sizeof(*o));
    kccl_status_t st = kccl_bootstrap_opts_from_env(o);
    if (st != KCCL_OK) {
        say(2, "bootstrap options: %s: %s\n", kccl_status_str(st), kccl_last_error());
        return -1;
    }
    o->insecure = 0;
    o->has_secret = 1;
    if (getrandom(o->secret, sizeof(o->secret), 0) != (ssize_t)sizeof(o->secret)) {
        say(2, "getrandom: %s\n", strerror(errno));
        return -1;
    }
    if (o->ifname[0] == '\0')
        snprintf(o->ifname, sizeof(o->ifname), "lo");
    if (o->timeout_ms <= 0)
        o->timeout_ms = 30000;
    /* create + barrier, or destroy, of the slowest rank, with room to spare */
    b->bar_timeout_ns = 3 * o->timeout_ms * 1000000LL + 5000000000LL;
    return 0;
}

static int setup_shm(bench_t *b)
{
    b->shm_bytes = sizeof(shm_t) + (size_t)b->iters * (size_t)b->nranks * sizeof(rec_t);
    void *p = mmap(NULL, b->shm_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        say(2, "mmap of %zu bytes: %s\n", b->shm_bytes, strerror(errno));
        return -1;
    }
    b->shm = p;
    b->shm->bar.n = (uint32_t)b->nranks;
    for (size_t i = 0; i < (size_t)b->iters * (size_t)b->nranks; i++)
        b->shm->recs[i].status = REC_PENDING;
    return 0;
}

static int setup_cpus(bench_t *b, long nproc)
{
    cpu_set_t set;
    if (b->cpus) {
        if (parse_cpus(b->cpus, &set) != 0) {
            say(2, "--cpus: cannot parse '%s' (e.g. 0-1 or 0,2,4-7)\n", b->cpus);
            return -1;
        }
        if (sched_setaffinity(0, sizeof(set), &set) != 0) {
            say(2, "--cpus %s: sched_setaffinity: %s\n", b->cpus, strerror(errno));
            return -1;
        }
    }
    b->cpus_allowed = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : (int)nproc;
    if (b->nranks > b->cpus_allowed)
        say(2, "warning: %d ranks on %d cpus: ranks share cores\n", b->nranks, b->cpus_allowed);
    return 0;
}

int main(int argc, char **argv)
{
    bench_t b = {0};
    machine_t m;
    stats_t s;
    if (parse_args(&b, argc, argv) != 0) {
        usage(stderr);
        return 2;
    }
    b.parent = getpid();
    machine_facts(&m);
    if (setup_opts(&b) != 0 || setup_cpus(&b, m.nproc) != 0 || setup_shm(&b) != 0)
        return 2;
    raise_nofile(b.nranks);
    print_header(&b, &m);
    int run = run_ranks(&b);
    if (compute_stats(&b, &s) != 0) {
        say(2, "out of memory\n");
        return 1;
    }
    m.tw_after = time_wait_count();
    print_result(&b, &s);
    printf("# TCP TIME_WAIT after the run: %ld\n", m.tw_after);
    int complete = run == 0 && s.finished == (size_t)b.iters;
    int json_failed = b.json_path && write_json(&b, &s, &m, complete) != 0;
    free(s.samples);
    munmap(b.shm, b.shm_bytes);
    return complete && s.failures == 0 && !json_failed ? 0 : 1;
}
