/*
 * podkit_run.c - see podkit.h: the processes of a pod (kccl-sidecar and kccl-demo
 * inside its network namespace, with the kubelet's environment) and what tests
 * observe (handoff files, Events, the audit log, RSS, access reviews).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kube_util.h"
#include "podkit.h"
#include "podkit_int.h"

#define PK_SA "kccl-sidecar"

/* ------------------------------------------------------------------ processes */

static pid_t spawn_in_pod(const pk_pod_t *p, const char *bin, char *const argv[], char **envp,
                          const char *log)
{
    char nspath[256];
    snprintf(nspath, sizeof(nspath), "/var/run/netns/%s", p->netns);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    int nsfd = open(nspath, O_RDONLY | O_CLOEXEC);
    if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) != 0) {
        fprintf(stderr, "podkit: setns %s: %s\n", nspath, strerror(errno));
        _exit(126);
    }
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0)
        dup2(devnull, 0);
    setpgid(0, 0);
    execve(bin, argv, envp);
    fprintf(stderr, "podkit: exec %s: %s\n", bin, strerror(errno));
    _exit(127);
}

typedef struct {
    char *v[64];
    int n;
} env_t;

static void env_put(env_t *e, const char *key, const char *val)
{
    size_t klen = strlen(key);
    for (int i = 0; i < e->n; i++) {
        if (strncmp(e->v[i], key, klen) == 0 && e->v[i][klen] == '=') {
            free(e->v[i]);
            e->v[i] = e->v[--e->n];
            break;
        }
    }
    if (val == NULL || e->n >= 63)
        return;
    size_t n = klen + strlen(val) + 2;
    char *s = malloc(n);
    if (s == NULL)
        return;
    snprintf(s, n, "%s=%s", key, val);
    e->v[e->n++] = s;
    e->v[e->n] = NULL;
}

static void env_extra(env_t *e, const char *const *extra)
{
    for (; extra && *extra; extra++) {
        char key[128];
        const char *eq = strchr(*extra, '=');
        if (eq == NULL || (size_t)(eq - *extra) >= sizeof(key))
            continue;
        snprintf(key, sizeof(key), "%.*s", (int)(eq - *extra), *extra);
        env_put(e, key, eq[1] ? eq + 1 : NULL); /* "KEY=" unsets */
    }
}

static void env_free(env_t *e)
{
    for (int i = 0; i < e->n; i++)
        free(e->v[i]);
    e->n = 0;
}

pid_t pk_sidecar_start(pk_t *k, pk_pod_t *p, const char *const *extra)
{
    env_t e = {{0}, 0};
    char sa[700], log[700];
    snprintf(sa, sizeof(sa), "%s/sa", p->dir);
    snprintf(log, sizeof(log), "%s/sidecar.log", p->dir);
    env_put(&e, "PATH", "/usr/bin:/bin");
    env_put(&e, "POD_NAME", p->name);
    env_put(&e, "POD_NAMESPACE", k->ns);
    env_put(&e, "POD_UID", p->uid);
    env_put(&e, "POD_IP", p->ip);
    if (p->node[0])
        env_put(&e, "NODE_NAME", p->node);
    env_put(&e, "KCCL_BOOTSTRAP_FILE", p->handoff);
    if (p->secret_file[0])
        env_put(&e, "KCCL_GROUP_SECRET_FILE", p->secret_file);
    env_put(&e, "KUBERNETES_SERVICE_HOST", k->bridge_ip);
    env_put(&e, "KUBERNETES_SERVICE_PORT", k->port);
    env_put(&e, "KCCL_KUBE_SA_DIR", sa);
    const char *level = getenv("KCCL_PODKIT_LOG_LEVEL"); /* debugging a test: debug, trace */
    if (level && *level)
        env_put(&e, "KCCL_LOG_LEVEL", level);
    env_extra(&e, extra);
    char *argv[] = {k->sidecar_bin, NULL};
    pid_t pid = spawn_in_pod(p, k->sidecar_bin, argv, e.v, log);
    env_free(&e);
    if (pid > 0)
        p->sidecar = pid;
    return pid;
}

pid_t pk_demo_start(pk_t *k, pk_pod_t *p, const char *const *extra)
{
    env_t e = {{0}, 0};
    char log[700];
    snprintf(log, sizeof(log), "%s/demo.log", p->dir);
    env_put(&e, "PATH", "/usr/bin:/bin");
    env_put(&e, "KCCL_BOOTSTRAP_FILE", p->handoff);
    env_put(&e, "KCCL_SOCKET_IFNAME", "=eth0");
    env_put(&e, "KCCL_BOOTSTRAP_TIMEOUT", "30");
    env_extra(&e, extra);
    char *argv[] = {k->demo_bin, NULL};
    pid_t pid = spawn_in_pod(p, k->demo_bin, argv, e.v, log);
    env_free(&e);
    if (pid > 0)
        p->demo = pid;
    return pid;
}

static int status_code(int st)
{
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int pk_wait(pid_t pid, int timeout_ms)
{
    int64_t end = pk_now_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return status_code(st);
        if (r < 0)
            return -2; /* not our child any more */
        if (pk_now_ms() >= end)
            return -1;
        pk_sleep_ms(5);
    }
}

int pk_stop(pid_t pid, int sig, int timeout_ms)
{
    if (pid <= 0)
        return -2;
    kill(pid, sig);
    int rc = pk_wait(pid, timeout_ms);
    if (rc == -1) {
        kill(pid, SIGKILL);
        pk_wait(pid, 5000);
    }
    return rc;
}

int pk_sidecar_stop(pk_pod_t *p, int sig, int timeout_ms)
{
    int rc = pk_stop(p->sidecar, sig, timeout_ms);
    p->sidecar = 0;
    return rc;
}

/* ------------------------------------------------------------------ observations */

int pk_handoff_exists(const pk_pod_t *p)
{
    return access(p->handoff, F_OK) == 0;
}

static int handoff_read(const pk_pod_t *p, kccl_handoff_t *out)
{
    char buf[8192], why[256];
    int fd = open(p->handoff, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    return kccl_handoff_parse(buf, (size_t)n, out, why, sizeof(why)) == KCCL_OK ? 0 : -1;
}

int pk_handoff_wait(const pk_pod_t *p, int timeout_ms, kccl_handoff_t *out)
{
    int64_t end = pk_now_ms() + timeout_ms;
    for (;;) {
        if (handoff_read(p, out) == 0)
            return 0;
        if (pk_now_ms() >= end)
            return -1;
        pk_sleep_ms(5);
    }
}

int pk_events(pk_t *k, const pk_pod_t *p, const char *reason, char *msg, size_t msglen)
{
    char path[320], sel[128];
    kccl_kube_result_t res;
    cJSON *list = NULL;
    kccl_kube_path(path, sizeof(path), "v1", k->ns, "events", NULL, NULL);
    snprintf(sel, sizeof(sel), "involvedObject.name=%s", p->name);
    kccl_kube_list_opts_t lo = {.field_selector = sel};
    if (kccl_kube_list(k->admin, path, &lo, NULL, &list, &res) != KCCL_OK)
        return -1;
    int count = 0;
    const cJSON *ev;
    cJSON_ArrayForEach(ev, cJSON_GetObjectItemCaseSensitive(list, "items"))
    {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(ev, "reason");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(ev, "message");
        if (reason && (!cJSON_IsString(r) || strcmp(r->valuestring, reason) != 0))
            continue;
        count++;
        if (msg && cJSON_IsString(m))
            snprintf(msg, msglen, "%s", m->valuestring);
    }
    cJSON_Delete(list);
    return count;
}

int pk_event_wait(pk_t *k, const pk_pod_t *p, const char *reason, int timeout_ms, char *msg,
                  size_t msglen)
{
    int64_t end = pk_now_ms() + timeout_ms;
    for (;;) {
        if (pk_events(k, p, reason, msg, msglen) > 0)
            return 0;
        if (pk_now_ms() >= end)
            return -1;
        pk_sleep_ms(50);
    }
}

static const char *jstr(const cJSON *o, const char *a, const char *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b)
        x = cJSON_GetObjectItemCaseSensitive(x, b);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

/* One audit event: which pod's token made it (via user.extra), and what it was. */
static void audit_line(pk_t *k, const char *line, pk_audit_t *out)
{
    char user[160];
    snprintf(user, sizeof(user), "system:serviceaccount:%s:" PK_SA, k->ns);
    if (strstr(line, user) == NULL)
        return;
    cJSON *ev = cJSON_Parse(line);
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(ev, "user");
    const cJSON *extra = cJSON_GetObjectItemCaseSensitive(u, "extra");
    const cJSON *pods =
        cJSON_GetObjectItemCaseSensitive(extra, "authentication.kubernetes.io/pod-name");
    const char *stage = jstr(ev, "stage", NULL), *verb = jstr(ev, "verb", NULL);
    const char *name = cJSON_IsArray(pods) && cJSON_IsString(cJSON_GetArrayItem(pods, 0))
                           ? cJSON_GetArrayItem(pods, 0)->valuestring
                           : NULL;
    const char *uname = jstr(ev, "user", "username");
    if (ev && name && stage && verb && uname && strcmp(uname, user) == 0) {
        for (int i = 0; i < k->npods; i++) {
            if (strcmp(k->pods[i].name, name) != 0)
                continue;
            pk_audit_t *a = &out[i];
            if (!strcmp(verb, "watch") && !strcmp(stage, "ResponseStarted")) {
                a->watches++;
            } else if (strcmp(verb, "watch") != 0 && !strcmp(stage, "ResponseComplete")) {
                a->requests++;
                a->gets += !strcmp(verb, "get");
                a->lists += !strcmp(verb, "list");
                a->patches += !strcmp(verb, "patch");
                a->creates += !strcmp(verb, "create");
            }
            break;
        }
    }
    cJSON_Delete(ev);
}

long pk_audit_mark(const pk_t *k)
{
    struct stat st;
    return stat(k->audit_log, &st) == 0 ? (long)st.st_size : 0;
}

int pk_audit_count_from(pk_t *k, long offset, pk_audit_t *out)
{
    memset(out, 0, sizeof(*out) * (size_t)k->npods);
    FILE *f = fopen(k->audit_log, "r");
    if (f == NULL) {
        pk_err("cannot open the audit log %s: %s", k->audit_log, strerror(errno));
        return -1;
    }
    if (offset > 0 && fseek(f, offset, SEEK_SET) != 0) {
        fclose(f);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0)
        audit_line(k, line, out);
    free(line);
    fclose(f);
    return 0;
}

int pk_audit_count_all(pk_t *k, pk_audit_t *out)
{
    return pk_audit_count_from(k, 0, out);
}

int pk_audit_count(pk_t *k, const pk_pod_t *p, pk_audit_t *out)
{
    pk_audit_t *all = calloc((size_t)k->npods, sizeof(*all));
    if (all == NULL || pk_audit_count_all(k, all) != 0) {
        free(all);
        return -1;
    }
    *out = all[p->index];
    free(all);
    return 0;
}

long pk_rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

int pk_sa_can(pk_t *k, const char *verb, const char *group, const char *resource,
              const char *subresource, const char *ns)
{
    char json[1024];
    cJSON *out = NULL;
    snprintf(json, sizeof(json),
             "{\"apiVersion\":\"authorization.k8s.io/v1\",\"kind\":\"SubjectAccessReview\","
             "\"spec\":{\"user\":\"system:serviceaccount:%s:" PK_SA "\",\"groups\":["
             "\"system:serviceaccounts\",\"system:serviceaccounts:%s\",\"system:authenticated\"],"
             "\"resourceAttributes\":{\"verb\":\"%s\",\"group\":\"%s\",\"resource\":\"%s\","
             "\"subresource\":\"%s\",\"namespace\":\"%s\"}}}",
             k->ns, k->ns, verb, group, resource, subresource ? subresource : "", ns ? ns : "");
    if (pk_api_create(k, "/apis/authorization.k8s.io/v1/subjectaccessreviews", json, &out) != 0)
        return -1;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(out, "status");
    int allowed = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(st, "allowed"));
    cJSON_Delete(out);
    return allowed;
}
