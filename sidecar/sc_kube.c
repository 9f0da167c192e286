/*
 * sc_kube.c - the only API calls the sidecar makes besides its one watch:
 * GET its own pod, merge-PATCH its own pod's labels and annotations, POST an
 * Event about its own pod. Each call has the sidecar's API deadline and its
 * stop flag; the kube client retries what is safe to retry. The counters let
 * tests and the benchmark check the "<= 4 requests per pod" budget.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/error.h"
#include "sc.h"

kccl_status_t sc_api_init(sc_api_t *api, kccl_kube_client_t kc, const sc_identity_t *self,
                          const atomic_int *stop, int64_t timeout_ms)
{
    memset(api, 0, sizeof(*api));
    api->kc = kc;
    api->self = self;
    api->stop = stop;
    api->timeout_ms = timeout_ms;
    return kccl_kube_path(api->pods_path, sizeof(api->pods_path), "v1", self->ns, "pods", NULL,
                          NULL);
}

static kccl_kube_opts_t call_opts(const sc_api_t *api)
{
    kccl_kube_opts_t o = {.timeout_ms = api->timeout_ms, .stop = api->stop};
    return o;
}

kccl_status_t sc_api_get_self(sc_api_t *api, cJSON **pod, kccl_kube_result_t *res)
{
    char path[512];
    kccl_kube_opts_t o = call_opts(api);
    KCCL_CHECK(
        kccl_kube_path(path, sizeof(path), "v1", api->self->ns, "pods", api->self->name, NULL));
    api->requests++;
    return kccl_kube_get(api->kc, path, &o, pod, res);
}

kccl_status_t sc_api_patch_self(sc_api_t *api, const cJSON *labels, const cJSON *annotations,
                                kccl_kube_result_t *res)
{
    char path[512];
    kccl_kube_opts_t o = call_opts(api);
    KCCL_CHECK(
        kccl_kube_path(path, sizeof(path), "v1", api->self->ns, "pods", api->self->name, NULL));
    cJSON *patch = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(patch, "metadata");
    int ok = meta != NULL;
    /* The uid makes the patch a precondition: a pod recreated under the same name (a
     * StatefulSet's) is refused with 409/422 instead of being patched by a stale sidecar. */
    if (ok && api->self->uid[0])
        ok = cJSON_AddStringToObject(meta, "uid", api->self->uid) != NULL;
    if (ok && labels)
        ok = cJSON_AddItemToObject(meta, "labels", cJSON_Duplicate(labels, 1));
    if (ok && annotations)
        ok = cJSON_AddItemToObject(meta, "annotations", cJSON_Duplicate(annotations, 1));
    char *text = ok ? cJSON_PrintUnformatted(patch) : NULL;
    cJSON_Delete(patch);
    if (text == NULL)
        KCCL_FAIL(TOOL, KCCL_ERR_NO_MEMORY, "out of memory building a patch");
    api->requests++;
    kccl_status_t st = kccl_kube_patch(api->kc, path, KCCL_KUBE_PATCH_MERGE, text, &o, NULL, res);
    free(text);
    return st;
}

static void rfc3339_now(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static cJSON *event_object(const sc_api_t *api, const char *type, const char *reason,
                           const char *message)
{
    const sc_identity_t *s = api->self;
    char name[SC_NAME_MAX + 32], now[32];
    unsigned char rnd[8] = {0};
    (void)!getrandom(rnd, sizeof(rnd), GRND_NONBLOCK);
    /* <pod>.<16 hex digits>, as client-go's recorder names them; the pod name is <= 253. */
    snprintf(name, sizeof(name), "%.200s.%02x%02x%02x%02x%02x%02x%02x%02x", s->name, rnd[0], rnd[1],
             rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    rfc3339_now(now, sizeof(now));
    cJSON *ev = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(ev, "metadata");
    cJSON *obj = cJSON_AddObjectToObject(ev, "involvedObject");
    cJSON *src = cJSON_AddObjectToObject(ev, "source");
    if (meta == NULL || obj == NULL || src == NULL) {
        cJSON_Delete(ev);
        return NULL;
    }
    cJSON_AddStringToObject(ev, "apiVersion", "v1");
    cJSON_AddStringToObject(ev, "kind", "Event");
    cJSON_AddStringToObject(meta, "name", name);
    cJSON_AddStringToObject(meta, "namespace", s->ns);
    cJSON_AddStringToObject(obj, "apiVersion", "v1");
    cJSON_AddStringToObject(obj, "kind", "Pod");
    cJSON_AddStringToObject(obj, "name", s->name);
    cJSON_AddStringToObject(obj, "namespace", s->ns);
    if (s->uid[0])
        cJSON_AddStringToObject(obj, "uid", s->uid);
    cJSON_AddStringToObject(ev, "type", type);
    cJSON_AddStringToObject(ev, "reason", reason);
    cJSON_AddStringToObject(ev, "message", message);
    cJSON_AddStringToObject(src, "component", SC_NAME);
    if (s->node[0])
        cJSON_AddStringToObject(src, "host", s->node);
    cJSON_AddStringToObject(ev, "reportingComponent", "kccl.io/sidecar");
    cJSON_AddStringToObject(ev, "reportingInstance", s->name);
    cJSON_AddStringToObject(ev, "firstTimestamp", now);
    cJSON_AddStringToObject(ev, "lastTimestamp", now);
    cJSON_AddNumberToObject(ev, "count", 1);
    return ev;
}

kccl_status_t sc_api_event(sc_api_t *api, const char *type, const char *reason, const char *message)
{
    char path[320];
    kccl_kube_result_t res;
    kccl_kube_opts_t o = call_opts(api);
    KCCL_CHECK(kccl_kube_path(path, sizeof(path), "v1", api->self->ns, "events", NULL, NULL));
    cJSON *ev = event_object(api, type, reason, message);
    if (ev == NULL)
        KCCL_FAIL(TOOL, KCCL_ERR_NO_MEMORY, "out of memory building an Event");
    api->requests++;
    kccl_status_t st = kccl_kube_create(api->kc, path, ev, &o, NULL, &res);
    cJSON_Delete(ev);
    if (st == KCCL_OK)
        api->events_posted++;
    else
        kccl_log_warn(TOOL, "could not post the %s Event (%s: %s); the problem was: %s", reason,
                      res.reason, res.message, message);
    return st;
}
