/*
 * agent_node.c - the Node object, its Lease in kube-node-lease, node status
 * heartbeats and Events: what a kubelet tells the control plane about itself.
 *
 * The node lifecycle controller (the real one, in kube-controller-manager)
 * marks a node NotReady when its Lease is not renewed within 40 s, so the
 * Lease is renewed every 10 s and the Ready condition refreshed every 60 s.
 * Capacity is what the flags say (the scheduler places pods by it), not the
 * machine's: a 2-core CI box still runs a 64-pod group of small processes.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

#define AG_LEASE_PERIOD_MS  10000
#define AG_STATUS_PERIOD_MS 60000
#define AG_KUBELET_VERSION  "v1.35.4"

int ag_verbose = 0;

void ag_log(const char *level, const char *fmt, ...)
{
    char ts[32];
    struct timespec t;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &t);
    gmtime_r(&t.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[agent %s.%03ld %s] ", ts, t.tv_nsec / 1000000, level);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int64_t ag_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ag_now_rfc3339(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void ag_timeline(ag_t *a, const ag_pod_t *p, const char *what, const char *ctr)
{
    struct timespec t;
    if (a->timeline == NULL)
        return;
    clock_gettime(CLOCK_REALTIME, &t);
    fprintf(a->timeline, "%lld %s/%s %s %s %s\n", (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000,
            p->ns, p->name, p->uid, what, ctr ? ctr : "-");
    fflush(a->timeline);
}

static void now_micro(char *buf, size_t len)
{
    struct timespec t;
    struct tm tm;
    char base[32];
    clock_gettime(CLOCK_REALTIME, &t);
    gmtime_r(&t.tv_sec, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%06ldZ", base, t.tv_nsec / 1000);
}

static int api_fail(const char *what, const char *path, const kccl_kube_result_t *res)
{
    ag_error("%s %s: HTTP %d %s: %s", what, path, res->http_status, res->reason, res->message);
    return -1;
}

/* The Node's status: conditions, capacity, addresses, nodeInfo. */
static int node_status(ag_t *a)
{
    char path[256], now[32], patch[4096], host[256] = "localhost";
    struct utsname u;
    uname(&u);
    gethostname(host, sizeof(host) - 1);
    ag_now_rfc3339(now, sizeof(now));
    static const char *const cond[][3] = {
        {"MemoryPressure", "KubeletHasSufficientMemory", "False"},
        {"DiskPressure", "KubeletHasNoDiskPressure", "False"},
        {"PIDPressure", "KubeletHasSufficientPID", "False"},
        {"Ready", "KubeletReady", "True"},
    };
    int n = snprintf(patch, sizeof(patch), "{\"status\":{\"conditions\":[");
    for (size_t i = 0; i < sizeof(cond) / sizeof(cond[0]); i++)
        n += snprintf(patch + n, sizeof(patch) - (size_t)n,
                      "%s{\"type\":\"%s\",\"status\":\"%s\",\"reason\":\"%s\",\"message\":"
                      "\"kccl-node-agent is posting status\",\"lastHeartbeatTime\":\"%s\","
                      "\"lastTransitionTime\":\"%s\"}",
                      i ? "," : "", cond[i][0], cond[i][2], cond[i][1], now, now);
    snprintf(patch + n, sizeof(patch) - (size_t)n,
             "],\"capacity\":{\"cpu\":\"%s\",\"memory\":\"%s\",\"pods\":\"%s\"},"
             "\"allocatable\":{\"cpu\":\"%s\",\"memory\":\"%s\",\"pods\":\"%s\"},"
             "\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"%s\"},"
             "{\"type\":\"Hostname\",\"address\":\"%s\"}],"
             "\"nodeInfo\":{\"machineID\":\"%s\",\"systemUUID\":\"%s\",\"bootID\":\"%s\","
             "\"kernelVersion\":\"%s\",\"osImage\":\"kccl e2e node (%s)\","
             "\"containerRuntimeVersion\":\"kccl-node-agent://0.1.0\","
             "\"kubeletVersion\":\"" AG_KUBELET_VERSION "\",\"kubeProxyVersion\":\"\","
             "\"operatingSystem\":\"linux\",\"architecture\":\"amd64\"}}}",
             a->cpu, a->memory, a->max_pods, a->cpu, a->memory, a->max_pods, a->bridge_ip, a->node,
             a->node_uid, a->node_uid, a->node_uid, u.release, u.sysname);
    kccl_kube_result_t res;
    kccl_kube_path(path, sizeof(path), "v1", NULL, "nodes", a->node, "status");
    if (kccl_kube_patch(a->api, path, KCCL_KUBE_PATCH_STRATEGIC, patch, NULL, NULL, &res) !=
        KCCL_OK)
        return api_fail("PATCH", path, &res);
    return 0;
}

static int lease_renew(ag_t *a)
{
    char path[256], now[64], body[1024];
    kccl_kube_result_t res;
    now_micro(now, sizeof(now));
    kccl_kube_path(path, sizeof(path), "coordination.k8s.io/v1", "kube-node-lease", "leases",
                   a->node, NULL);
    snprintf(body, sizeof(body), "{\"spec\":{\"holderIdentity\":\"%s\",\"renewTime\":\"%s\"}}",
             a->node, now);
    if (kccl_kube_patch(a->api, path, KCCL_KUBE_PATCH_MERGE, body, NULL, NULL, &res) == KCCL_OK)
        return 0;
    if (res.http_status != 404)
        return api_fail("PATCH", path, &res);
    snprintf(body, sizeof(body),
             "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":{"
             "\"name\":\"%s\",\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":\"Node\","
             "\"name\":\"%s\",\"uid\":\"%s\"}]},\"spec\":{\"holderIdentity\":\"%s\","
             "\"leaseDurationSeconds\":40,\"renewTime\":\"%s\"}}",
             a->node, a->node, a->node_uid, a->node, now);
    cJSON *obj = cJSON_Parse(body);
    kccl_kube_path(path, sizeof(path), "coordination.k8s.io/v1", "kube-node-lease", "leases", NULL,
                   NULL);
    kccl_status_t st = kccl_kube_create(a->api, path, obj, NULL, NULL, &res);
    cJSON_Delete(obj);
    return st == KCCL_OK ? 0 : api_fail("POST", path, &res);
}

int ag_node_register(ag_t *a)
{
    char path[256], body[1024];
    kccl_kube_result_t res;
    cJSON *out = NULL;
    snprintf(body, sizeof(body),
             "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"%s\",\"labels\":{"
             "\"kubernetes.io/hostname\":\"%s\",\"kubernetes.io/os\":\"linux\","
             "\"kubernetes.io/arch\":\"amd64\",\"kccl.io/e2e-node\":\"true\"}},\"spec\":{}}",
             a->node, a->node);
    cJSON *obj = cJSON_Parse(body);
    kccl_kube_path(path, sizeof(path), "v1", NULL, "nodes", NULL, NULL);
    kccl_status_t st = kccl_kube_create(a->api, path, obj, NULL, &out, &res);
    cJSON_Delete(obj);
    if (st != KCCL_OK && !kccl_kube_is_already_exists(&res))
        return api_fail("POST", path, &res);
    if (st != KCCL_OK) {
        ag_info("node %s exists already; taking it over", a->node);
        kccl_kube_path(path, sizeof(path), "v1", NULL, "nodes", a->node, NULL);
        if (kccl_kube_get(a->api, path, NULL, &out, &res) != KCCL_OK)
            return api_fail("GET", path, &res);
    }
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(out, "metadata");
    snprintf(a->node_uid, sizeof(a->node_uid), "%s", ag_json_str(meta, "uid"));
    cJSON_Delete(out);
    if (node_status(a) != 0 || lease_renew(a) != 0)
        return -1;
    int64_t now = ag_now_ms();
    a->next_lease_ms = now + AG_LEASE_PERIOD_MS;
    a->next_node_status_ms = now + AG_STATUS_PERIOD_MS;
    ag_info("node %s registered (Ready; cpu %s, memory %s, pods %s; InternalIP %s)", a->node,
            a->cpu, a->memory, a->max_pods, a->bridge_ip);
    return 0;
}

void ag_node_tick(ag_t *a, int64_t now)
{
    if (now >= a->next_lease_ms) {
        lease_renew(a);
        a->next_lease_ms = now + AG_LEASE_PERIOD_MS;
    }
    if (now >= a->next_node_status_ms) {
        node_status(a);
        a->next_node_status_ms = now + AG_STATUS_PERIOD_MS;
    }
}

void ag_node_delete(ag_t *a)
{
    char path[256];
    kccl_kube_result_t res;
    kccl_kube_opts_t o = {.timeout_ms = 10000};
    kccl_kube_path(path, sizeof(path), "v1", NULL, "nodes", a->node, NULL);
    if (kccl_kube_delete(a->api, path, &o, NULL, &res) != KCCL_OK && res.http_status != 404)
        api_fail("DELETE", path, &res);
    kccl_kube_path(path, sizeof(path), "coordination.k8s.io/v1", "kube-node-lease", "leases",
                   a->node, NULL);
    if (kccl_kube_delete(a->api, path, &o, NULL, &res) != KCCL_OK && res.http_status != 404)
        api_fail("DELETE", path, &res);
}

/* A core/v1 Event on the pod, from component kubelet on this node (best effort). */
void ag_event(ag_t *a, const ag_pod_t *p, const char *type, const char *reason, const char *fmt,
              ...)
{
    char msg[512], now[32], path[320], name[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ag_now_rfc3339(now, sizeof(now));
    static unsigned seq; /* unique names within the millisecond */
    snprintf(name, sizeof(name), "%.200s.%llx", p->name,
             (unsigned long long)ag_now_ms() * 1000 + (seq++ % 1000));
    cJSON *ev = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(ev, "metadata");
    cJSON_AddStringToObject(meta, "name", name);
    cJSON_AddStringToObject(meta, "namespace", p->ns);
    cJSON *io = cJSON_AddObjectToObject(ev, "involvedObject");
    cJSON_AddStringToObject(io, "apiVersion", "v1");
    cJSON_AddStringToObject(io, "kind", "Pod");
    cJSON_AddStringToObject(io, "namespace", p->ns);
    cJSON_AddStringToObject(io, "name", p->name);
    cJSON_AddStringToObject(io, "uid", p->uid);
    cJSON_AddStringToObject(ev, "type", type);
    cJSON_AddStringToObject(ev, "reason", reason);
    cJSON_AddStringToObject(ev, "message", msg);
    cJSON *src = cJSON_AddObjectToObject(ev, "source");
    cJSON_AddStringToObject(src, "component", "kubelet");
    cJSON_AddStringToObject(src, "host", a->node);
    cJSON_AddStringToObject(ev, "reportingComponent", "kubelet");
    cJSON_AddStringToObject(ev, "reportingInstance", a->node);
    cJSON_AddStringToObject(ev, "firstTimestamp", now);
    cJSON_AddStringToObject(ev, "lastTimestamp", now);
    cJSON_AddNumberToObject(ev, "count", 1);
    kccl_kube_result_t res;
    kccl_kube_opts_t o = {.timeout_ms = 5000};
    kccl_kube_path(path, sizeof(path), "v1", p->ns, "events", NULL, NULL);
    if (kccl_kube_create(a->api, path, ev, &o, NULL, &res) != KCCL_OK)
        ag_debug("event %s on %s/%s not posted: %s", reason, p->ns, p->name, res.message);
    cJSON_Delete(ev);
}
