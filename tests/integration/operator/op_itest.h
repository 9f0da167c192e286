/*
 * op_itest.h - helpers for kccl-operator's control-plane tests and its
 * benchmark: pods created through the API as a user or a workload controller
 * would, their status PATCHed through pods/status as a kubelet reports it
 * (phase, the kccl-sidecar init container's readiness, a container's exit
 * code), rank 0's annotations as its sidecar publishes them, the operator run
 * as a child process, and polling with deadlines.
 *
 * All calls go through the admin client of libkccl_kube; the operator under
 * test is a separate process with its own client. Functions return 0 or -1
 * after printing "op_itest: ..." to stderr.
 */
#ifndef KCCL_OP_ITEST_H
#define KCCL_OP_ITEST_H

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kccl/kube.h"

static inline int64_t opit_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void opit_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static inline int opit_fail(const char *what, kccl_status_t st, const kccl_kube_result_t *res)
{
    fprintf(stderr, "op_itest: %s: %s (%d %s: %s)\n", what, kccl_status_str(st), res->http_status,
            res->reason, res->message);
    return -1;
}

/* POST a pod of group `group` (label and annotation) with rank and world size; ws < 0 omits
 * kccl.io/world-size. */
static inline int opit_pod_create(kccl_kube_client_t kc, const char *ns, const char *name,
                                  const char *group, int rank, int ws)
{
    char path[256], text[2048], wsa[64] = "";
    kccl_kube_result_t res;
    if (ws >= 0)
        snprintf(wsa, sizeof(wsa), ",\"kccl.io/world-size\":\"%d\"", ws);
    snprintf(text, sizeof(text),
             "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\","
             "\"labels\":{\"kccl.io/group\":\"%s\",\"kccl.io/rank\":\"%d\"},"
             "\"annotations\":{\"kccl.io/group\":\"%s\"%s}},"
             "\"spec\":{\"containers\":[{\"name\":\"main\",\"image\":\"kccl/test:none\"}]}}",
             name, group, rank, group, wsa);
    cJSON *pod = cJSON_Parse(text);
    kccl_kube_path(path, sizeof(path), "v1", ns, "pods", NULL, NULL);
    kccl_status_t st = kccl_kube_create(kc, path, pod, NULL, NULL, &res);
    cJSON_Delete(pod);
    return st == KCCL_OK ? 0 : opit_fail("creating a pod", st, &res);
}

/*
 * PATCH pods/status as a kubelet: phase, the sidecar's readiness, and the app container
 * running (exit_code < 0) or terminated with exit_code, after `restarts` restarts; a
 * last_exit >= 0 is its lastState.terminated (a run the kubelet restarted in place).
 */
static inline int opit_pod_status_last(kccl_kube_client_t kc, const char *ns, const char *name,
                                       const char *phase, int sidecar_ready, int exit_code,
                                       int restarts, int last_exit, const char *ip)
{
    char path[320], text[2048], state[96], last[96] = "{}";
    kccl_kube_result_t res;
    if (exit_code < 0)
        snprintf(state, sizeof(state), "{\"running\":{\"startedAt\":\"2026-01-01T00:00:00Z\"}}");
    else
        snprintf(state, sizeof(state), "{\"terminated\":{\"exitCode\":%d}}", exit_code);
    if (last_exit >= 0)
        snprintf(last, sizeof(last), "{\"terminated\":{\"exitCode\":%d}}", last_exit);
    snprintf(text, sizeof(text),
             "{\"status\":{\"phase\":\"%s\",\"podIP\":\"%s\",\"podIPs\":[{\"ip\":\"%s\"}],"
             "\"initContainerStatuses\":[{\"name\":\"kccl-sidecar\",\"ready\":%s,"
             "\"restartCount\":0,\"image\":\"x\",\"imageID\":\"\",\"started\":true,"
             "\"state\":{\"running\":{\"startedAt\":\"2026-01-01T00:00:00Z\"}}}],"
             "\"containerStatuses\":[{\"name\":\"main\",\"ready\":%s,\"restartCount\":%d,"
             "\"image\":\"x\",\"imageID\":\"\",\"state\":%s,\"lastState\":%s}]}}",
             phase, ip, ip, sidecar_ready ? "true" : "false", exit_code < 0 ? "true" : "false",
             restarts, state, last);
    kccl_kube_path(path, sizeof(path), "v1", ns, "pods", name, "status");
    kccl_status_t st = kccl_kube_patch(kc, path, KCCL_KUBE_PATCH_MERGE, text, NULL, NULL, &res);
    return st == KCCL_OK ? 0 : opit_fail("patching pods/status", st, &res);
}

static inline int opit_pod_status(kccl_kube_client_t kc, const char *ns, const char *name,
                                  const char *phase, int sidecar_ready, int exit_code, int restarts,
                                  const char *ip)
{
    return opit_pod_status_last(kc, ns, name, phase, sidecar_ready, exit_code, restarts, -1, ip);
}

/* Merge-patch metadata.annotations (JSON object text). */
static inline int opit_annotate(kccl_kube_client_t kc, const char *ns, const char *name,
                                const char *annotations)
{
    char path[320], text[2048];
    kccl_kube_result_t res;
    snprintf(text, sizeof(text), "{\"metadata\":{\"annotations\":%s}}", annotations);
    kccl_kube_path(path, sizeof(path), "v1", ns, "pods", name, NULL);
    kccl_status_t st = kccl_kube_patch(kc, path, KCCL_KUBE_PATCH_MERGE, text, NULL, NULL, &res);
    return st == KCCL_OK ? 0 : opit_fail("annotating a pod", st, &res);
}

/* What a rank-0 sidecar publishes for `epoch`. */
static inline int opit_publish_root(kccl_kube_client_t kc, const char *ns, const char *name,
                                    const char *ip, int epoch)
{
    char ann[512];
    snprintf(ann, sizeof(ann),
             "{\"kccl.io/unique-id\":\"ID-%s-%d\",\"kccl.io/unique-id-epoch\":\"%d\","
             "\"kccl.io/endpoint\":\"%s:29500\"}",
             ip, epoch, epoch, ip);
    return opit_annotate(kc, ns, name, ann);
}

/* POST a CommGroup. */
static inline int opit_cg_create(kccl_kube_client_t kc, const char *ns, const char *name, int ws,
                                 const char *policy)
{
    char path[256], text[512];
    kccl_kube_result_t res;
    snprintf(text, sizeof(text),
             "{\"apiVersion\":\"kccl.io/v1alpha1\",\"kind\":\"CommGroup\",\"metadata\":{"
             "\"name\":\"%s\"},\"spec\":{\"worldSize\":%d,\"failurePolicy\":\"%s\"}}",
             name, ws, policy ? policy : "Restart");
    cJSON *cg = cJSON_Parse(text);
    kccl_kube_path(path, sizeof(path), "kccl.io/v1alpha1", ns, "commgroups", NULL, NULL);
    kccl_status_t st = kccl_kube_create(kc, path, cg, NULL, NULL, &res);
    cJSON_Delete(cg);
    return st == KCCL_OK ? 0 : opit_fail("creating a CommGroup", st, &res);
}

/* GET an object (NULL when absent or on error; caller frees). */
static inline cJSON *opit_get(kccl_kube_client_t kc, const char *gv, const char *ns,
                              const char *resource, const char *name)
{
    char path[320];
    cJSON *out = NULL;
    kccl_kube_opts_t o = {.timeout_ms = 10000};
    kccl_kube_path(path, sizeof(path), gv, ns, resource, name, NULL);
    if (kccl_kube_get(kc, path, &o, &out, NULL) != KCCL_OK)
        return NULL;
    return out;
}

static inline const cJSON *opit_at(const cJSON *obj, const char *a, const char *b, const char *c)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(obj, a);
    if (b)
        x = cJSON_GetObjectItemCaseSensitive(x, b);
    if (c)
        x = cJSON_GetObjectItemCaseSensitive(x, c);
    return x;
}

static inline const char *opit_str(const cJSON *obj, const char *a, const char *b, const char *c)
{
    const cJSON *x = opit_at(obj, a, b, c);
    return cJSON_IsString(x) ? x->valuestring : "";
}

static inline long opit_num(const cJSON *obj, const char *a, const char *b, const char *c)
{
    const cJSON *x = opit_at(obj, a, b, c);
    return cJSON_IsNumber(x) ? (long)x->valuedouble : -1;
}

/* The condition of that type in a CommGroup's status (NULL if none). */
static inline const cJSON *opit_cond(const cJSON *cg, const char *type)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, opit_at(cg, "status", "conditions", NULL))
    {
        if (!strcmp(opit_str(c, "type", NULL, NULL), type))
            return c;
    }
    return NULL;
}

/* Every operator this program started, so that a failed test leaves none running. */
static pid_t opit_started[16];
static int opit_nstarted;

/* SIGKILLs and reaps every operator started here that is still running. */
static inline void opit_kill_all(void)
{
    for (int i = 0; i < opit_nstarted; i++)
        if (opit_started[i] > 0 && kill(opit_started[i], SIGKILL) == 0)
            waitpid(opit_started[i], NULL, 0);
    opit_nstarted = 0;
}

/* Starts the operator; argv is NULL-terminated (argv[0] the binary). Output to log. */
static inline pid_t opit_operator_start(char *const argv[], const char *log, const char *pod_name)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        if (pod_name)
            setenv("POD_NAME", pod_name, 1);
        execv(argv[0], argv);
        _exit(127);
    }
    if (pid > 0 && opit_nstarted < (int)(sizeof(opit_started) / sizeof(opit_started[0])))
        opit_started[opit_nstarted++] = pid;
    return pid;
}

/* Sends sig, waits up to timeout_ms; the exit status (128+n for a signal), or -1. */
static inline int opit_stop(pid_t pid, int sig, int timeout_ms)
{
    if (pid <= 0)
        return -1;
    kill(pid, sig);
    int64_t end = opit_now_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (opit_now_ms() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        opit_sleep_ms(20);
    }
}

/* Counts lines of a file containing needle. */
static inline int opit_count_in_file(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    int n = 0;
    while (f && fgets(line, sizeof(line), f))
        n += strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return n;
}

#endif
