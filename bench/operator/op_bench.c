/*
 * op_bench.c - kccl-bench-operator: kccl-operator's cost with one large group
 * on the REAL local control plane. It starts the operator (restricted to a
 * fresh namespace), creates a CommGroup of N ranks and N pods through the API,
 * reports them Running with a ready kccl-sidecar through pods/status as a
 * kubelet would, publishes rank 0's id, waits for the group to be Ready, then
 * fails one member and waits for the epoch bump. It samples the operator's
 * RSS (VmRSS, VmHWM) and CPU time (/proc/<pid>/stat) at each stage, and
 * reads the operator's own counters (API calls, status writes, reconciles)
 * from the line it logs when it stops. Prints a table and one JSON line.
 *
 *   eval "$(e2e/controlplane/cp.sh env)"   # KUBECONFIG of the control plane
 *   kccl-bench-operator --operator build/operator/kccl-operator [--pods 1000]
 *
 * bench/operator/run_op_bench.sh does both. Exit 77 without KUBECONFIG.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kccl/kube.h"
#include "op_itest.h"

typedef struct {
    double rss_mib, hwm_mib, cpu_s;
} sample_t;

static sample_t sample(pid_t pid)
{
    sample_t s = {0};
    char path[64], line[512];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "VmRSS:", 6))
            s.rss_mib = strtod(line + 6, NULL) / 1024.0;
        if (!strncmp(line, "VmHWM:", 6))
            s.hwm_mib = strtod(line + 6, NULL) / 1024.0;
    }
    if (f)
        fclose(f);
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (f && fgets(line, sizeof(line), f)) {
        char *p = strrchr(line, ')'); /* fields after the command name: utime is the 14th */
        for (int field = 0; p && field < 12; field++)
            p = strchr(p + 1, ' ');
        if (p) {
            char *end;
            unsigned long ut = strtoul(p + 1, &end, 10), st = strtoul(end, NULL, 10);
            s.cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
        }
    }
    if (f)
        fclose(f);
    return s;
}

typedef struct {
    kccl_kube_client_t kc;
    const char *ns;
    int from, to, step; /* ranks from, from+step, ... < to */
    int status;         /* 0: create the pod, 1: report it Running and ready */
    atomic_int *errors;
} work_t;

static void *worker(void *arg)
{
    work_t *w = arg;
    for (int r = w->from; r < w->to; r += w->step) {
        char name[64], ip[32];
        snprintf(name, sizeof(name), "big-%d", r);
        snprintf(ip, sizeof(ip), "10.200.%d.%d", r / 250, r % 250 + 1);
        int rc = w->status ? opit_pod_status(w->kc, w->ns, name, "Running", 1, -1, 0, ip)
                           : opit_pod_create(w->kc, w->ns, name, "big", r, w->to);
        if (rc != 0)
            atomic_fetch_add(w->errors, 1);
    }
    return NULL;
}

/* Runs the pod creations (status 0) or status reports (1) on 4 threads; seconds taken. */
static double fan_out(kccl_kube_client_t kc, const char *ns, int n, int status)
{
    enum { T = 4 };
    pthread_t th[T];
    work_t w[T];
    atomic_int errors = 0;
    int64_t t0 = opit_now_ms();
    for (int i = 0; i < T; i++) {
        w[i] = (work_t){kc, ns, i, n, T, status, &errors};
        pthread_create(&th[i], NULL, worker, &w[i]);
    }
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    if (errors)
        fprintf(stderr, "bench: %d API calls failed\n", (int)errors);
    return (double)(opit_now_ms() - t0) / 1000.0;
}

/* Waits until the CommGroup's status field equals want; seconds, or -1 after timeout_s. */
static double wait_status(kccl_kube_client_t kc, const char *ns, const char *field, long want,
                          const char *phase, int timeout_s)
{
    int64_t t0 = opit_now_ms();
    while (opit_now_ms() - t0 < (int64_t)timeout_s * 1000) {
        cJSON *cg = opit_get(kc, "kccl.io/v1alpha1", ns, "commgroups", "big");
        int ok = cg && opit_num(cg, "status", field, NULL) == want &&
                 (!phase || !strcmp(opit_str(cg, "status", "phase", NULL), phase));
        cJSON_Delete(cg);
        if (ok)
            return (double)(opit_now_ms() - t0) / 1000.0;
        opit_sleep_ms(100);
    }
    return -1;
}

static long stat_of(const char *log, const char *key)
{
    FILE *f = fopen(log, "r");
    char line[4096], pat[64];
    long v = -1;
    snprintf(pat, sizeof(pat), " %s ", key);
    while (f && fgets(line, sizeof(line), f)) {
        const char *p = strstr(line, "stats:") ? strstr(line, pat) : NULL;
        if (p)
            v = strtol(p + strlen(pat), NULL, 10);
    }
    if (f)
        fclose(f);
    return v;
}

/* How many pods changed between two LISTs (resourceVersion by name). */
static int pods_changed(kccl_kube_client_t kc, const char *ns, cJSON *before)
{
    char path[256];
    cJSON *after = NULL;
    int changed = 0;
    kccl_kube_path(path, sizeof(path), "v1", ns, "pods", NULL, NULL);
    if (kccl_kube_list(kc, path, NULL, NULL, &after, NULL) != KCCL_OK)
        return -1;
    const cJSON *a, *b;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(after, "items"))
    {
        const char *name = opit_str(a, "metadata", "name", NULL);
        cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(before, "items"))
        {
            if (!strcmp(name, opit_str(b, "metadata", "name", NULL))) {
                changed += strcmp(opit_str(a, "metadata", "resourceVersion", NULL),
                                  opit_str(b, "metadata", "resourceVersion", NULL)) != 0;
                break;
            }
        }
    }
    cJSON_Delete(after);
    return changed;
}

static int ns_create(kccl_kube_client_t kc, const char *ns)
{
    char text[256];
    snprintf(text, sizeof(text),
             "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":"
             "{\"name\":\"%s\"}}",
             ns);
    cJSON *o = cJSON_Parse(text);
    kccl_kube_result_t res;
    kccl_status_t st = kccl_kube_create(kc, "/api/v1/namespaces", o, NULL, NULL, &res);
    cJSON_Delete(o);
    return st == KCCL_OK ? 0 : opit_fail("creating the namespace", st, &res);
}

int main(int argc, char **argv)
{
    const char *op = NULL;
    int n = 1000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--operator"))
            op = argv[i + 1];
        else if (!strcmp(argv[i], "--pods"))
            n = (int)strtol(argv[i + 1], NULL, 10);
    }
    if (op == NULL || n < 2 || n > 20000) {
        fprintf(stderr, "usage: %s --operator PATH [--pods N (2..20000, default 1000)]\n", argv[0]);
        return 2;
    }
    const char *kcfg = getenv("KUBECONFIG");
    if (kcfg == NULL || !*kcfg) {
        printf("SKIP: KUBECONFIG is not set (eval \"$(e2e/controlplane/cp.sh env)\")\n");
        return 77;
    }
    kccl_kube_config_t cfg;
    kccl_kube_client_t kc;
    if (kccl_kube_config_load_kubeconfig(kcfg, NULL, &cfg) != KCCL_OK ||
        kccl_kube_client_create(cfg, &kc) != KCCL_OK) {
        fprintf(stderr, "bench: %s\n", kccl_last_error());
        return 1;
    }
    char ns[64], log[128];
    snprintf(ns, sizeof(ns), "kccl-opbench-%d", (int)getpid());
    snprintf(log, sizeof(log), "/tmp/%s.log", ns);
    if (ns_create(kc, ns) != 0)
        return 1;
    char *oargv[] = {(char *)op, "--kubeconfig", (char *)kcfg, "--namespace", ns, "--health-addr",
                     "0",        "--log-level",  "info",       NULL};
    pid_t pid = opit_operator_start(oargv, log, NULL);
    opit_sleep_ms(2000);
    sample_t idle = sample(pid);
    opit_cg_create(kc, ns, "big", n, "Restart");
    double t_create = fan_out(kc, ns, n, 0);
    sample_t created = sample(pid);
    double t_status = fan_out(kc, ns, n, 1);
    opit_publish_root(kc, ns, "big-0", "10.200.0.1", 0);
    double t_ready = wait_status(kc, ns, "readyMembers", n, "Ready", 120);
    sample_t ready = sample(pid);
    char lpath[256];
    cJSON *before = NULL;
    kccl_kube_path(lpath, sizeof(lpath), "v1", ns, "pods", NULL, NULL);
    kccl_kube_list(kc, lpath, NULL, NULL, &before, NULL);
    opit_sleep_ms(10000);
    sample_t quiet = sample(pid);
    int idle_changed = pods_changed(kc, ns, before);
    cJSON_Delete(before);
    opit_pod_status(kc, ns, "big-5", "Running", 1, 1, 0, "10.200.0.6");
    double t_epoch = wait_status(kc, ns, "epoch", 1, NULL, 60);
    sample_t failed = sample(pid);
    int rc = opit_stop(pid, SIGTERM, 10000);
    opit_kill_all();
    long pev = stat_of(log, "pod_events"), calls = stat_of(log, "api_calls"),
         writes = stat_of(log, "status_writes"), recs = stat_of(log, "reconciles"),
         conflicts = stat_of(log, "conflicts");
    printf("# kccl-operator with one group of %d pods (namespace %s, log %s)\n", n, ns, log);
    printf("%-34s %10s %10s %10s\n", "stage", "RSS MiB", "HWM MiB", "CPU s");
    const char *names[] = {"synced, empty", "after creating the pods", "group Ready",
                           "10 s later (idle)", "after a failure (epoch bump)"};
    sample_t all[] = {idle, created, ready, quiet, failed};
    for (int i = 0; i < 5; i++)
        printf("%-34s %10.2f %10.2f %10.2f\n", names[i], all[i].rss_mib, all[i].hwm_mib,
               all[i].cpu_s);
    printf("pods created in %.2f s, reported Running in %.2f s (4 client threads)\n", t_create,
           t_status);
    printf("Ready %.2f s after the last status report; epoch bumped %.2f s after a failure\n",
           t_ready, t_epoch);
    printf("pods written by others (the scheduler) during the idle 10 s: %d\n", idle_changed);
    printf("operator: %ld pod events, %ld reconciles, %ld API calls (%.3f per pod event), %ld "
           "status writes, %ld conflicts; idle CPU over 10 s: %.3f s; exit %d\n",
           pev, recs, calls, pev > 0 ? (double)calls / (double)pev : 0.0, writes, conflicts,
           quiet.cpu_s - ready.cpu_s, rc);
    printf("{\"bench\":\"operator\",\"pods\":%d,\"rss_mib_idle\":%.2f,\"rss_mib_ready\":%.2f,"
           "\"hwm_mib\":%.2f,\"cpu_s_total\":%.2f,\"cpu_s_idle_10s\":%.3f,\"ready_s\":%.2f,"
           "\"epoch_s\":%.2f,\"pod_events\":%ld,\"reconciles\":%ld,\"api_calls\":%ld,"
           "\"status_writes\":%ld,\"conflicts\":%ld,\"pods_changed_idle\":%d}\n",
           n, idle.rss_mib, ready.rss_mib, failed.hwm_mib, failed.cpu_s, quiet.cpu_s - ready.cpu_s,
           t_ready, t_epoch, pev, recs, calls, writes, conflicts, idle_changed);
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s", ns);
    kccl_kube_delete(kc, path, NULL, NULL, NULL);
    kccl_kube_client_destroy(kc);
    return t_ready < 0 || t_epoch < 0 ? 1 : 0;
}
