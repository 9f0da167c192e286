/*
 * sc_run.c - the sidecar's life: identity, spec, publish, one watch.
 *
 *   1. Identity from the downward API; the own pod is read once (GET) unless
 *      the downward-API volume already carries annotations, labels and the IP.
 *   2. The spec (group, rank, world size, port, epoch) from the annotations.
 *      A bad spec is posted as an Event and the sidecar watches its own pod
 *      until someone fixes the annotations; there is no handoff meanwhile.
 *   3. One merge-patch of the own pod: labels kccl.io/group and kccl.io/rank
 *      (so rank 0 can be found by a label selector), annotation
 *      kccl.io/endpoint; rank 0 adds kccl.io/unique-id and
 *      kccl.io/unique-id-epoch, then writes its handoff at once.
 *   4. One watch on one object: rank 0's pod, by kccl.io/root-pod name or by
 *      the labels kccl.io/group=G,kccl.io/rank=0. It starts with a LIST of the
 *      same selector (0 or 1 pod; see README.md "Why a LIST") and then watches
 *      from the list's resourceVersion. Rank 0 watches the same selector, which
 *      shows it its own epoch changes and any second pod claiming rank 0. Each
 *      event is evaluated (sc_eval.c); local effects (write or remove the
 *      handoff) happen in the callback, API calls (an Event, rank 0
 *      republishing for a new epoch) after ending the watch, which then
 *      resumes from the last resourceVersion it saw.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "core/error.h"
#include "sc_state.h"

#define SC_BACKOFF_MIN_MS 500
#define SC_BACKOFF_MAX_MS 30000

/* ------------------------------------------------------------------ step 1: identity */

static const char *str_item(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void fatal_api(const char *what, const sc_identity_t *id, const kccl_kube_result_t *res)
{
    if (kccl_kube_is_forbidden(res))
        kccl_log_error(TOOL,
                       "%s was refused (403 Forbidden: %s): the pod's ServiceAccount needs the "
                       "kccl-sidecar Role in namespace %s (kubectl apply -n %s -f deploy/rbac/) "
                       "and the pod must run as that ServiceAccount",
                       what, res->message, id->ns, id->ns);
    else
        kccl_log_error(TOOL, "%s failed: %s", what, kccl_last_error());
}

/* Fills what the downward API did not give from the pod object. */
static void identity_from_pod(sc_identity_t *id, const cJSON *pod)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(pod, "status");
    const char *v;
    if (id->annotations == NULL) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(meta, "annotations");
        id->annotations = a ? cJSON_Duplicate(a, 1) : cJSON_CreateObject();
    }
    if (id->labels == NULL) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(meta, "labels");
        id->labels = l ? cJSON_Duplicate(l, 1) : cJSON_CreateObject();
    }
    if (!id->uid[0] && (v = str_item(meta, "uid")) != NULL && strlen(v) < sizeof(id->uid))
        snprintf(id->uid, sizeof(id->uid), "%s", v);
    if (!id->ip[0] && (v = str_item(status, "podIP")) != NULL && sc_valid_ip(v))
        snprintf(id->ip, sizeof(id->ip), "%s", v);
    if (!id->node[0] && (v = str_item(spec, "nodeName")) != NULL && sc_valid_subdomain(v))
        snprintf(id->node, sizeof(id->node), "%s", v);
}

static int load_self(sc_t *s)
{
    kccl_kube_result_t res;
    cJSON *pod = NULL;
    if (s->self.annotations && s->self.labels && s->self.ip[0])
        return 0; /* the downward API gave everything: no GET */
    if (sc_api_get_self(&s->api, &pod, &res) != KCCL_OK) {
        if (!atomic_load(s->o->stop))
            fatal_api("reading the own pod", &s->self, &res);
        return -1;
    }
    identity_from_pod(&s->self, pod);
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
    const char *rv = str_item(meta, "resourceVersion");
    snprintf(s->own_rv, sizeof(s->own_rv), "%s", rv && strlen(rv) < sizeof(s->own_rv) ? rv : "");
    cJSON_Delete(pod);
    if (s->self.annotations == NULL || s->self.labels == NULL) {
        kccl_log_error(TOOL, "out of memory");
        return -1;
    }
    if (!s->self.ip[0]) {
        kccl_log_error(TOOL,
                       "pod %s/%s has no IP (status.podIP): give the sidecar POD_IP from "
                       "the downward API (fieldRef status.podIP)",
                       s->self.ns, s->self.name);
        return -1;
    }
    s->own_meta_known = 1;
    return 0;
}

/* ------------------------------------------------------------------ the watch driver */

static void backoff_sleep(sc_t *s, int *failures)
{
    int64_t cap = SC_BACKOFF_MIN_MS << (*failures < 6 ? *failures : 6);
    if (cap > SC_BACKOFF_MAX_MS)
        cap = SC_BACKOFF_MAX_MS;
    (*failures)++;
    uint32_t r = 0;
    (void)!getrandom(&r, sizeof(r), GRND_NONBLOCK);
    sc_sleep_ms(cap / 2 + (int64_t)(r % (uint32_t)(cap / 2 + 1)), s->o->stop);
}

/*
 * Runs watches on (field or label selector) until the callback says done
 * (returns 1 through s->done), the stop flag, or a fatal error (-1). Between
 * watches it carries out the actions the callback asked for.
 */
static int watch_until_done(sc_t *s, const char *from_rv, const char *field_sel,
                            const char *label_sel, kccl_kube_watch_fn fn)
{
    int failures = 0;
    snprintf(s->rv, sizeof(s->rv), "%s", from_rv ? from_rv : "");
    s->done = 0;
    while (!atomic_load(s->o->stop)) {
        kccl_kube_watch_stats_t stats;
        kccl_kube_result_t res;
        memset(&stats, 0, sizeof(stats));
        if (!s->rv[0]) { /* this call starts with a LIST that delivers every current object */
            s->list_gen++;
            s->purge_pending = 1;
            s->roots_overflow = 0; /* counted anew by the LIST (not tracked by name) */
        }
        kccl_kube_watch_opts_t wo = {.path = s->api.pods_path,
                                     .field_selector = field_sel,
                                     .label_selector = label_sel,
                                     .resource_version = s->rv[0] ? s->rv : NULL,
                                     .timeout_ms = sc_rendezvous_left_ms(s),
                                     .stop = s->o->stop,
                                     .stats = &stats};
        s->api.watches++;
        kccl_status_t st = kccl_kube_watch(s->api.kc, &wo, fn, s, &res);
        if (atomic_load(s->o->stop))
            break;
        if (st == KCCL_ERR_TIMED_OUT && wo.timeout_ms > 0)
            sc_rendezvous_timed_out(s);
        if (sc_do_actions(s) != 0)
            return -1;
        if (s->done)
            return 1;
        if (st == KCCL_OK && s->relist) {
            /* ended on an object of the LIST that starts a watch: resuming from the LIST's
             * resourceVersion would skip the objects listed after it, so list again (the
             * candidates seen so far stay; the new LIST refreshes them) */
            s->relist = 0;
            s->rv[0] = '\0';
            continue;
        }
        if (st == KCCL_OK || (st == KCCL_ERR_TIMED_OUT && wo.timeout_ms > 0)) {
            if (stats.resource_version[0])
                snprintf(s->rv, sizeof(s->rv), "%s", stats.resource_version);
            failures = 0;
            continue;
        }
        if (kccl_kube_is_forbidden(&res)) {
            fatal_api("watching pods", &s->self, &res);
            return -1;
        }
        kccl_log_warn(TOOL, "watch of pods in %s ended: %s; watching again", s->self.ns,
                      kccl_last_error());
        s->rv[0] = '\0'; /* the fresh LIST replays the current state */
        backoff_sleep(s, &failures);
    }
    return 0;
}

/* ------------------------------------------------------------------ step 2: the spec */

static int own_pod_event(void *arg, const kccl_kube_event_t *ev)
{
    sc_t *s = arg;
    if (ev->type != KCCL_KUBE_EVENT_ADDED && ev->type != KCCL_KUBE_EVENT_MODIFIED)
        return 0;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(ev->object, "metadata");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(meta, "annotations");
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(meta, "labels");
    cJSON *na = a ? cJSON_Duplicate(a, 1) : cJSON_CreateObject();
    cJSON *nl = l ? cJSON_Duplicate(l, 1) : cJSON_CreateObject();
    if (na == NULL || nl == NULL) {
        cJSON_Delete(na);
        cJSON_Delete(nl);
        return KCCL_ERR_NO_MEMORY;
    }
    cJSON_Delete(s->self.annotations);
    cJSON_Delete(s->self.labels);
    s->self.annotations = na;
    s->self.labels = nl;
    s->own_meta_known = 1;
    if (sc_eval_spec(s) == 0) {
        s->done = 1;
        return 1;
    }
    s->relist = s->action_pending && ev->synthetic;
    return s->action_pending ? 1 : 0;
}

/* Until the own annotations make a valid spec (each problem posted once as an Event). */
static int settle_spec(sc_t *s)
{
    if (sc_eval_spec(s) == 0)
        return 0;
    char sel[SC_NAME_MAX + 32];
    snprintf(sel, sizeof(sel), "metadata.name=%s", s->self.name);
    if (sc_do_actions(s) != 0)
        return -1;
    int rc = watch_until_done(s, s->own_rv[0] ? s->own_rv : NULL, sel, NULL, own_pod_event);
    return rc == 1 ? 0 : rc == 0 ? 1 : -1;
}

/* ------------------------------------------------------------------ step 4: the rendezvous */

static int root_event(void *arg, const kccl_kube_event_t *ev)
{
    sc_t *s = arg;
    if (!ev->synthetic && s->purge_pending) { /* the LIST is over: what it missed is gone */
        s->purge_pending = 0;
        sc_roots_purge_stale(s);
        if (ev->type == KCCL_KUBE_EVENT_BOOKMARK)
            return sc_eval_group(s);
    }
    switch (ev->type) {
    case KCCL_KUBE_EVENT_ADDED:
    case KCCL_KUBE_EVENT_MODIFIED: sc_roots_upsert(s, ev->object); break;
    case KCCL_KUBE_EVENT_DELETED: sc_roots_remove(s, ev->object); break;
    default: return 0;
    }
    int rc = sc_eval_group(s);
    s->relist = rc > 0 && ev->synthetic;
    return rc;
}

static int rendezvous(sc_t *s)
{
    char label_sel[160], field_sel[SC_NAME_MAX + 32];
    const char *fs = NULL, *ls = label_sel;
    snprintf(label_sel, sizeof(label_sel), "%s=%s,%s=0", SC_LABEL_GROUP, s->spec.group,
             SC_LABEL_RANK);
    if (s->spec.rank != 0 && s->spec.root_pod[0]) {
        snprintf(field_sel, sizeof(field_sel), "metadata.name=%s", s->spec.root_pod);
        fs = field_sel;
        ls = NULL;
    }
    kccl_log_info(TOOL, "rank %ld of group %s (world size %ld): watching %s", s->spec.rank,
                  s->spec.group, s->spec.world, fs ? fs : ls);
    if (sc_do_actions(s) != 0)
        return -1;
    return watch_until_done(s, NULL, fs, ls, root_event) < 0 ? -1 : 0;
}

/* ------------------------------------------------------------------ entry */

static int setup(sc_t *s, const sc_options_t *o)
{
    kccl_kube_config_t cfg;
    memset(s, 0, sizeof(*s));
    s->o = o;
    s->started_ms = sc_now_ms();
    if (sc_identity_load(&s->self) != KCCL_OK)
        return 2;
    snprintf(s->pod_ref, sizeof(s->pod_ref), "%s/%s", s->self.ns, s->self.name);
    if (kccl_kube_config_load(NULL, &cfg) != KCCL_OK ||
        kccl_kube_client_create(cfg, &s->kc) != KCCL_OK) {
        kccl_log_error(TOOL, "no Kubernetes client configuration: %s", kccl_last_error());
        return 2;
    }
    if (sc_api_init(&s->api, s->kc, &s->self, o->stop, o->api_timeout_ms) != KCCL_OK)
        return 2;
    kccl_log_info(TOOL, "pod %s, IP %s, node %s", s->pod_ref, s->self.ip[0] ? s->self.ip : "?",
                  s->self.node[0] ? s->self.node : "?");
    return 0;
}

int sc_run(const sc_options_t *o)
{
    sc_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return 1;
    int rc = setup(s, o);
    if (rc == 0)
        rc = load_self(s) == 0 ? 0 : 1;
    if (rc == 0)
        rc = settle_spec(s) == 0 ? 0 : 1;
    if (rc == 0 && !atomic_load(o->stop))
        rc = sc_publish(s) == 0 ? 0 : 1;
    if (rc == 0 && !atomic_load(o->stop))
        rc = rendezvous(s) == 0 ? 0 : 1;
    if (atomic_load(o->stop) && rc != 2)
        rc = 0; /* SIGTERM: a clean stop whatever step it interrupted */
    kccl_log_info(TOOL, "exiting (%d): %llu API requests, %llu watch requests, %u Events", rc,
                  (unsigned long long)s->api.requests, (unsigned long long)s->api.watches,
                  s->api.events_posted);
    if (s->kc)
        kccl_kube_client_destroy(s->kc);
    sc_identity_free(&s->self);
    free(s);
    return rc;
}
