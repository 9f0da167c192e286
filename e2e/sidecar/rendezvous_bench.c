/*
 * rendezvous_bench.c - kccl-bench-rendezvous: BENCHMARKS.md "Rendezvous on
 * Kubernetes" on the REAL local control plane (e2e/controlplane/cp.sh).
 *
 * N pods (podkit: API objects, one netns each, pod-bound tokens of the
 * kccl-sidecar ServiceAccount under deploy/rbac as shipped). Each run:
 *   untimed  every pod but the last gets a fresh group (annotations reset by an
 *            admin patch), its sidecar starts, and the run waits until each of
 *            them has its watch open (audit log); the last pod is a new Pod
 *            object, not Running yet; with --bootstrap every pod's kccl-demo is
 *            already waiting for its handoff;
 *   timed    t0; the last pod's status becomes Running (pods/status PATCH, as
 *            the kubelet reports it); then its sidecar starts. A real kubelet
 *            starts the sidecar before it reports Running, so this order makes
 *            the figure an upper bound;
 *   figure   last handoff written (file mtime, CLOCK_REALTIME) - t0; with
 *            --bootstrap also the last kccl-demo's exit - t0 (bootstrap +
 *            all-gather + barrier done everywhere).
 * The last pod is rank 0 (--last root, the worst case: nobody can finish
 * before it) or rank N-1 (--last member). After each run: API requests and
 * watches per pod from the audit log (by the pod-name claim of each pod's
 * token), open pod watches from the apiserver's metrics, and every sidecar's
 * VmRSS after 1 s of steady state.
 *
 * Output: one row per run, a summary (p50 / p99 / max), and JSON (--json).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "podkit.h"

typedef struct {
    int pods, runs, bootstrap, last_root, settle_ms;
    const char *json;
    const char *sidecar; /* the binary under test */
} opts_t;

typedef struct {
    double handoff_ms; /* last handoff - t0 */
    double first_ms;   /* first handoff of the run - t0 */
    double boot_ms;    /* last demo exit - t0, or -1 */
    int req_max, watch_max, watch_min;
    double req_mean;
    int gets, lists, patches, creates;
    long rss_max, rss_med, anon_max, file_max;
    double open_watches;
    int bad_exits;
    int nsamples; /* per-pod samples this run recorded */
} run_t;

static pk_t kit;
static volatile sig_atomic_t g_interrupted;

static void on_signal(int sig)
{
    (void)sig;
    g_interrupted = 1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of n sorted values. */
static double pct(const double *v, int n, double p)
{
    if (n == 0)
        return -1;
    int i = (int)(p / 100.0 * n + 0.999999) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static double mtime_s(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    return (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec / 1e9;
}

static void status_rss(pid_t pid, long *rss, long *anon, long *file)
{
    char path[64], line[256];
    *rss = *anon = *file = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            *rss = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "RssAnon:", 8) == 0)
            *anon = strtol(line + 8, NULL, 10);
        else if (strncmp(line, "RssFile:", 8) == 0)
            *file = strtol(line + 8, NULL, 10);
    }
    if (f)
        fclose(f);
}

/* Sum of apiserver_longrunning_requests for namespaced pod WATCHes (everyone's). */
static double open_pod_watches(void)
{
    char out[256];
    int rc =
        pk_sh(&kit, out, sizeof(out),
              "kubectl get --raw /metrics 2>/dev/null | grep '^apiserver_longrunning_requests{' "
              "| grep 'resource=\"pods\"' | grep 'scope=\"namespace\"' | grep 'verb=\"WATCH\"' "
              "| awk '{s+=$NF} END {print s+0}'");
    return rc == 0 ? strtod(out, NULL) : -1;
}

static int reset_pod(pk_pod_t *p, const char *group)
{
    char path[400], patch[512];
    kccl_kube_result_t res;
    kccl_kube_path(path, sizeof(path), "v1", kit.ns, "pods", p->name, NULL);
    snprintf(patch, sizeof(patch),
             "{\"metadata\":{\"labels\":{\"kccl.io/group\":null,\"kccl.io/rank\":null},"
             "\"annotations\":{\"kccl.io/group\":\"%s\",\"kccl.io/endpoint\":null,"
             "\"kccl.io/unique-id\":null,\"kccl.io/unique-id-epoch\":null}}}",
             group);
    unlink(p->handoff);
    if (kccl_kube_patch(kit.admin, path, KCCL_KUBE_PATCH_MERGE, patch, NULL, NULL, &res) !=
        KCCL_OK) {
        fprintf(stderr, "bench: reset %s: %s\n", p->name, res.message);
        return -1;
    }
    return 0;
}

static pk_pod_t *make_pod(const char *name, const char *group, int rank, int world,
                          const char *secret, int running)
{
    char ann[256], node[32];
    snprintf(ann, sizeof(ann),
             "{\"kccl.io/group\":\"%s\",\"kccl.io/rank\":\"%d\",\"kccl.io/world-size\":\"%d\"}",
             group, rank, world);
    snprintf(node, sizeof(node), "node-%d", rank / 8);
    pk_pod_t *p = pk_pod_create(&kit, name, ann, NULL, secret, node);
    if (p == NULL || pk_pod_ready_files(&kit, p, secret) != 0 ||
        (running && pk_pod_running(&kit, p) != 0))
        return NULL;
    return p;
}

/* Waits until every listed pod's token has opened a watch since mark. */
static int wait_watching(pk_pod_t **pods, int n, long mark, int timeout_ms)
{
    pk_audit_t *a = calloc(PK_MAX_PODS, sizeof(*a));
    int64_t end = pk_now_ms() + timeout_ms;
    int ok = 0;
    while (!ok && !g_interrupted && pk_now_ms() < end) {
        pk_sleep_ms(100);
        if (pk_audit_count_from(&kit, mark, a) != 0)
            break;
        ok = 1;
        for (int i = 0; i < n && ok; i++)
            ok = a[pods[i]->index].watches >= 1;
    }
    free(a);
    return ok ? 0 : -1;
}

/* Polls until every pod has a handoff (or the deadline); records each file's mtime. */
static int wait_handoffs(pk_pod_t **pods, int n, double *mt, int timeout_ms)
{
    int64_t end = pk_now_ms() + timeout_ms;
    int have = 0;
    for (int i = 0; i < n; i++)
        mt[i] = -1;
    while (have < n && !g_interrupted && pk_now_ms() < end) {
        for (int i = 0; i < n; i++)
            if (mt[i] < 0 && (mt[i] = mtime_s(pods[i]->handoff)) >= 0)
                have++;
        if (have < n)
            pk_sleep_ms(2);
    }
    return have == n ? 0 : -1;
}

/* Waits for every demo; returns the wall time of the last exit, or -1. */
static double wait_demos(pk_pod_t **pods, int n, int timeout_ms)
{
    int64_t end = pk_now_ms() + timeout_ms;
    int left = n, failed = 0;
    double last = -1;
    while (left > 0 && pk_now_ms() < end && !g_interrupted) {
        for (int i = 0; i < n; i++) {
            if (pods[i]->demo <= 0)
                continue;
            int rc = pk_wait(pods[i]->demo, 0);
            if (rc == -1)
                continue;
            last = pk_wall_s();
            pods[i]->demo = 0;
            left--;
            if (rc != 0) {
                char tail[1024] = "";
                pk_sh(&kit, tail, sizeof(tail), "tail -2 '%s/demo.log'", pods[i]->dir);
                fprintf(stderr, "bench: kccl-demo of %s exited %d: %s\n", pods[i]->name, rc, tail);
                failed++;
            }
        }
        if (left > 0)
            pk_sleep_ms(2);
    }
    return left == 0 && failed == 0 ? last : -1;
}

static void measure_after(pk_pod_t **pods, int n, long mark, run_t *r)
{
    long *rss = calloc((size_t)n, sizeof(long));
    pk_audit_t *a = calloc(PK_MAX_PODS, sizeof(*a));
    pk_sleep_ms(1000); /* steady state; the audit log has caught up */
    r->rss_max = r->anon_max = r->file_max = 0;
    for (int i = 0; i < n; i++) {
        long v, an, fi;
        status_rss(pods[i]->sidecar, &v, &an, &fi);
        rss[i] = v;
        r->rss_max = v > r->rss_max ? v : r->rss_max;
        r->anon_max = an > r->anon_max ? an : r->anon_max;
        r->file_max = fi > r->file_max ? fi : r->file_max;
    }
    qsort(rss, (size_t)n, sizeof(long), cmp_long);
    r->rss_med = rss[n / 2];
    r->open_watches = open_pod_watches();
    pk_audit_count_from(&kit, mark, a);
    long sum = 0;
    r->req_max = r->watch_max = 0;
    r->watch_min = 1 << 30;
    for (int i = 0; i < n; i++) {
        const pk_audit_t *x = &a[pods[i]->index];
        sum += x->requests;
        r->req_max = x->requests > r->req_max ? x->requests : r->req_max;
        r->watch_max = x->watches > r->watch_max ? x->watches : r->watch_max;
        r->watch_min = x->watches < r->watch_min ? x->watches : r->watch_min;
        r->gets += x->gets;
        r->lists += x->lists;
        r->patches += x->patches;
        r->creates += x->creates;
    }
    r->req_mean = (double)sum / n;
    free(rss);
    free(a);
}

/* One run; pods[] are the persistent pods (all but the last), *lastp the last one's slot. */
static int one_run(const opts_t *o, int run, pk_pod_t **pods, run_t *r, double *per_pod)
{
    char group[32], name[64];
    int n = o->pods, last = o->last_root ? 0 : n - 1;
    snprintf(group, sizeof(group), "bench-%d", run);
    memset(r, 0, sizeof(*r));
    r->boot_ms = -1;
    for (int i = 0; i < n; i++)
        if (i != last && reset_pod(pods[i], group) != 0)
            return -1;
    snprintf(name, sizeof(name), "last-%d", run);
    pods[last] = make_pod(name, group, last, n, "bench-secret", 0);
    if (pods[last] == NULL)
        return -1;
    long mark = pk_audit_mark(&kit);
    pk_pod_t *others[PK_MAX_PODS];
    int no = 0;
    for (int i = 0; i < n; i++)
        if (i != last) {
            others[no++] = pods[i];
            if (pk_sidecar_start(&kit, pods[i], NULL) <= 0)
                return -1;
        }
    if (wait_watching(others, no, mark, 60000) != 0) {
        fprintf(stderr, "bench: run %d: not every sidecar opened its watch\n", run);
        return -1;
    }
    if (o->bootstrap)
        for (int i = 0; i < n; i++)
            if (pk_demo_start(&kit, pods[i], NULL) <= 0)
                return -1;
    pk_sleep_ms(o->settle_ms);
    double t0 = pk_wall_s();
    if (pk_pod_running(&kit, pods[last]) != 0 || pk_sidecar_start(&kit, pods[last], NULL) <= 0)
        return -1;
    double *mt = calloc((size_t)n, sizeof(double));
    int rc = wait_handoffs(pods, n, mt, 30000);
    if (rc == 0) {
        double lo = 1e300, hi = 0;
        for (int i = 0; i < n; i++) {
            lo = mt[i] < lo ? mt[i] : lo;
            hi = mt[i] > hi ? mt[i] : hi;
        }
        /* each pod's wait for the id: all of them when rank 0 is last; else only the last
         * pod's (the others had theirs before t0) */
        r->nsamples = o->last_root ? n : 1;
        for (int i = 0; i < r->nsamples; i++)
            per_pod[i] = (mt[o->last_root ? i : last] - t0) * 1e3;
        r->handoff_ms = (hi - t0) * 1e3;
        r->first_ms = (lo - t0) * 1e3;
    } else {
        fprintf(stderr, "bench: run %d: not every handoff appeared within 30 s\n", run);
    }
    free(mt);
    if (rc == 0 && o->bootstrap) {
        double tb = wait_demos(pods, n, 60000);
        r->boot_ms = tb > 0 ? (tb - t0) * 1e3 : -1;
    }
    if (rc == 0)
        measure_after(pods, n, mark, r);
    for (int i = 0; i < n; i++) {
        if (pods[i]->demo > 0)
            pk_stop(pods[i]->demo, SIGKILL, 2000), pods[i]->demo = 0;
        if (pods[i]->sidecar > 0 && pk_sidecar_stop(pods[i], SIGTERM, 5000) != 0)
            r->bad_exits++;
    }
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: kccl-bench-rendezvous [-n PODS] [-r RUNS] [--last root|member] "
               "[--bootstrap] [--settle MS] [--json FILE]\n"
               "  -n PODS      pods in the group (default 64)\n"
               "  -r RUNS      runs (default 10)\n"
               "  --last       which pod comes last: rank 0 (default) or rank N-1\n"
               "  --bootstrap  also run kccl-demo in every pod; time to the last demo's exit\n"
               "  --settle MS  pause before each timed step (default 500)\n"
               "  --sidecar BIN  the sidecar binary (default: this build's kccl-sidecar)\n"
               "Needs root and the local control plane (e2e/controlplane/cp.sh up).\n");
}

static int parse(int argc, char **argv, opts_t *o)
{
    static const struct option lo[] = {{"last", required_argument, 0, 'l'},
                                       {"bootstrap", no_argument, 0, 'b'},
                                       {"settle", required_argument, 0, 's'},
                                       {"json", required_argument, 0, 'j'},
                                       {"sidecar", required_argument, 0, 'S'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    *o = (opts_t){
        .pods = 64, .runs = 10, .last_root = 1, .settle_ms = 500, .sidecar = KCCL_SIDECAR_BIN};
    int c;
    while ((c = getopt_long(argc, argv, "n:r:h", lo, NULL)) != -1) {
        switch (c) {
        case 'n': o->pods = (int)strtol(optarg, NULL, 10); break;
        case 'r': o->runs = (int)strtol(optarg, NULL, 10); break;
        case 'l': o->last_root = strcmp(optarg, "member") != 0; break;
        case 'b': o->bootstrap = 1; break;
        case 's': o->settle_ms = (int)strtol(optarg, NULL, 10); break;
        case 'j': o->json = optarg; break;
        case 'S': o->sidecar = optarg; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (o->pods < 2 || o->pods + o->runs > PK_MAX_PODS || o->runs < 1) {
        fprintf(stderr, "bench: need 2 <= PODS and PODS + RUNS <= %d\n", PK_MAX_PODS);
        return -1;
    }
    return 0;
}

typedef struct {
    double p50, p99, max;
} sum_t;

static sum_t summarize(double *v, int n)
{
    sum_t s = {-1, -1, -1};
    if (n == 0)
        return s;
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    s.p50 = pct(v, n, 50);
    s.p99 = pct(v, n, 99);
    s.max = v[n - 1];
    return s;
}

static void json_sum(FILE *f, const char *key, sum_t s, const double *samples, int n, int last)
{
    fprintf(f, "  \"%s\": {\"p50\": %.3f, \"p99\": %.3f, \"max\": %.3f, \"n\": %d", key, s.p50,
            s.p99, s.max, n);
    if (samples) {
        fprintf(f, ", \"samples\": [");
        for (int i = 0; i < n; i++)
            fprintf(f, "%s%.3f", i ? ", " : "", samples[i]);
        fprintf(f, "]");
    }
    fprintf(f, "}%s\n", last ? "" : ",");
}

static void machine(char *buf, size_t len)
{
    struct utsname u;
    char load[64] = "?";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fgets(load, sizeof(load), f) == NULL)
            load[0] = '\0';
        fclose(f);
        load[strcspn(load, " ")] = '\0';
    }
    uname(&u);
    snprintf(buf, len, "%s %s, %ld cpus, load %s", u.nodename, u.release,
             sysconf(_SC_NPROCESSORS_ONLN), load);
}

static int write_json(const opts_t *o, const run_t *runs, int nr, double *hand, double *perpod,
                      int npp, double *boot, int nb, const char *mach)
{
    FILE *f = fopen(o->json, "w");
    if (f == NULL) {
        fprintf(stderr, "bench: cannot write %s: %s\n", o->json, strerror(errno));
        return -1;
    }
    int req_max = 0, watch_max = 0, watch_min = 1 << 30, bad = 0;
    long rss_max = 0, anon_max = 0, file_max = 0;
    double req_mean = 0, open_max = 0;
    double *rss_med = calloc((size_t)nr + 1, sizeof(double));
    for (int i = 0; i < nr; i++) {
        req_max = runs[i].req_max > req_max ? runs[i].req_max : req_max;
        watch_max = runs[i].watch_max > watch_max ? runs[i].watch_max : watch_max;
        watch_min = runs[i].watch_min < watch_min ? runs[i].watch_min : watch_min;
        rss_max = runs[i].rss_max > rss_max ? runs[i].rss_max : rss_max;
        anon_max = runs[i].anon_max > anon_max ? runs[i].anon_max : anon_max;
        file_max = runs[i].file_max > file_max ? runs[i].file_max : file_max;
        open_max = runs[i].open_watches > open_max ? runs[i].open_watches : open_max;
        req_mean += runs[i].req_mean / nr;
        rss_med[i] = (double)runs[i].rss_med;
        bad += runs[i].bad_exits;
    }
    sum_t rm = summarize(rss_med, nr);
    fprintf(f, "{\n  \"benchmark\": \"rendezvous\",\n  \"pods\": %d,\n  \"runs\": %d,\n", o->pods,
            nr);
    fprintf(f,
            "  \"last\": \"%s\",\n  \"machine\": \"%s\",\n  \"control_plane\": \"%s\",\n"
            "  \"sidecar\": \"%s\",\n",
            o->last_root ? "rank0" : "member", mach, kit.apiserver, o->sidecar);
    json_sum(f, "last_running_to_all_handoffs_ms", summarize(hand, nr), hand, nr, 0);
    json_sum(f, "last_running_to_each_handoff_ms", summarize(perpod, npp), NULL, npp, 0);
    if (o->bootstrap)
        json_sum(f, "last_running_to_bootstrap_done_ms", summarize(boot, nb), boot, nb, 0);
    fprintf(f,
            "  \"api_requests_per_pod\": {\"max\": %d, \"mean\": %.2f},\n"
            "  \"watches_per_pod\": {\"min\": %d, \"max\": %d},\n"
            "  \"open_namespaced_pod_watches_metric_max\": %.0f,\n"
            "  \"sidecar_rss_kib\": {\"max\": %ld, \"median_of_run_medians\": %.0f, "
            "\"rss_anon_max\": %ld, \"rss_file_max\": %ld},\n"
            "  \"sidecar_nonzero_exits\": %d\n}\n",
            req_max, req_mean, watch_min, watch_max, open_max, rss_max, rm.p50, anon_max, file_max,
            bad);
    free(rss_med);
    return fclose(f);
}

int main(int argc, char **argv)
{
    opts_t o;
    char mach[256];
    if (parse(argc, argv, &o) != 0)
        return 2;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    int rc = pk_init(&kit, "bench", KCCL_SOURCE_DIR, o.sidecar, KCCL_DEMO_BIN, o.pods + o.runs);
    if (rc != 0) {
        fprintf(stderr, "bench: %s\n",
                rc == PK_SKIP ? "the control plane is not up (e2e/controlplane/cp.sh up)"
                              : "setup failed");
        pk_fini(&kit);
        return rc == PK_SKIP ? PK_SKIP : 1;
    }
    pk_pod_t **pods = calloc((size_t)o.pods, sizeof(*pods));
    run_t *runs = calloc((size_t)o.runs, sizeof(run_t));
    double *hand = calloc((size_t)o.runs, sizeof(double)), *boot = calloc((size_t)o.runs, 8);
    double *perpod = calloc((size_t)o.runs * (size_t)o.pods, sizeof(double));
    int last = o.last_root ? 0 : o.pods - 1, nr = 0, nb = 0, npp = 0;
    rc = pk_secret_create(&kit, "bench-secret");
    for (int i = 0; rc == 0 && i < o.pods; i++) {
        char name[32];
        snprintf(name, sizeof(name), "pod-%d", i);
        if (i != last &&
            (pods[i] = make_pod(name, "bench-0", i, o.pods, "bench-secret", 1)) == NULL)
            rc = -1;
    }
    machine(mach, sizeof(mach));
    printf("# kccl-bench-rendezvous: %d pods, last pod = %s, %d runs%s\n# %s; apiserver %s\n"
           "# sidecar %s\n",
           o.pods, o.last_root ? "rank 0" : "rank N-1", o.runs,
           o.bootstrap ? ", with kccl-demo bootstrap" : "", mach, kit.apiserver, o.sidecar);
    printf("# %4s %12s %12s %12s %9s %9s %9s %9s %9s %9s\n", "run", "all_hand_ms", "first_ms",
           "boot_ms", "req/pod", "req_mean", "watch/pod", "open_w", "rss_kib", "rss_med");
    for (int r = 0; rc == 0 && r < o.runs && !g_interrupted; r++) {
        run_t *x = &runs[nr];
        if (one_run(&o, r + 1, pods, x, perpod + npp) != 0) {
            rc = -1;
            break;
        }
        printf("  %4d %12.1f %12.1f %12.1f %9d %9.2f %9d %9.0f %9ld %9ld\n", r + 1, x->handoff_ms,
               x->first_ms, x->boot_ms, x->req_max, x->req_mean, x->watch_max, x->open_watches,
               x->rss_max, x->rss_med);
        fflush(stdout);
        hand[nr++] = x->handoff_ms;
        npp += x->nsamples;
        if (x->boot_ms >= 0)
            boot[nb++] = x->boot_ms;
    }
    if (nr > 0) {
        double *h = calloc((size_t)nr, sizeof(double)), *pp = calloc((size_t)npp, sizeof(double));
        memcpy(h, hand, sizeof(double) * (size_t)nr);
        memcpy(pp, perpod, sizeof(double) * (size_t)npp);
        sum_t sh = summarize(h, nr), sp = summarize(pp, npp);
        printf("# last Running -> every handoff: p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d runs)\n",
               sh.p50, sh.p99, sh.max, nr);
        printf("# last Running -> %s: p50 %.1f ms, p99 %.1f ms (%d samples)\n",
               o.last_root ? "each pod's handoff" : "its own handoff", sp.p50, sp.p99, npp);
        if (nb > 0) {
            double *b = calloc((size_t)nb, sizeof(double));
            memcpy(b, boot, sizeof(double) * (size_t)nb);
            sum_t sb = summarize(b, nb);
            printf("# last Running -> bootstrap done everywhere: p50 %.1f ms, p99 %.1f ms\n",
                   sb.p50, sb.p99);
            free(b);
        }
        free(h);
        free(pp);
        if (o.json && write_json(&o, runs, nr, hand, perpod, npp, boot, nb, mach) == 0)
            printf("# JSON: %s\n", o.json);
    }
    pk_fini(&kit);
    free(pods);
    free(runs);
    free(hand);
    free(boot);
    free(perpod);
    return rc == 0 && !g_interrupted ? 0 : 1;
}
