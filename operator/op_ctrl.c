/*
 * op_ctrl.c - the controller's threads (see op_ctrl.h).
 *
 * Watch threads: a paginated LIST fills (or, after a relist, replaces) the
 * cache and marks it synced, then a watch from the LIST's resourceVersion
 * streams changes into it. The kube client resumes broken streams itself;
 * when it had to relist after 410 Gone it delivers synthetic events, and this
 * thread then does its own LIST instead, so that objects deleted while it was
 * not watching leave the cache too.
 *
 * Workers: one group key at a time, see reconcile(). A status write that hits
 * a Conflict re-reads the CommGroup and plans again (3 tries; then the queue's
 * backoff). Events are posted only after the status is written, so a retried
 * pass never posts one twice.
 */
#include "op_ctrl.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "kube_list.h"
#include "kube_util.h"
#include "op_queue.h"
#include "op_reconcile.h"

#define MAX_WORKERS  16
#define STOP_GRACE_S 5

struct op_ctrl {
    op_ctrl_opts_t o;
    op_cache_t cache;
    op_queue_t queue;
    op_api_t api;
    pthread_t watchers[2], workers[MAX_WORKERS];
    int nworkers, nwatchers;
    atomic_int pods_synced, groups_synced, failed;
    atomic_int api_abort; /* set only when a stopping worker overruns the grace period */
    atomic_ullong reconciles, reconcile_errors;
    char pods_path[320], groups_path[320];
};

static void touch(void *arg, const char *key)
{
    op_ctrl_t c = arg;
    op_queue_add(c->queue, key, op_queue_now_ms(), c->o.coalesce_ms);
}

static void no_touch(void *arg, const char *key)
{
    (void)arg;
    (void)key;
}

/* ------------------------------------------------------------------ watches */

typedef struct {
    op_ctrl_t c;
    int pods; /* 1 pods, 0 CommGroups */
} watch_arg_t;

static int on_event(void *arg, const kccl_kube_event_t *ev)
{
    const watch_arg_t *w = arg;
    if (ev->synthetic)
        return 1; /* the client relisted: do a LIST of our own (see the file comment) */
    if (w->pods)
        op_cache_pod_event(w->c->cache, ev->type, ev->object, touch, w->c);
    else
        op_cache_group_event(w->c->cache, ev->type, ev->object, touch, w->c);
    return 0;
}

static kccl_status_t list_once(watch_arg_t *w, char **rv, kccl_kube_result_t *res)
{
    op_ctrl_t c = w->c;
    kccl_kube_list_opts_t lo = {.label_selector = w->pods ? OP_ANN_GROUP : NULL};
    kccl_kube_opts_t opts = {.timeout_ms = c->o.api_timeout_ms * 2, .stop = c->o.stop};
    cJSON *items = NULL;
    kccl_status_t st = kccl_kube_list_all(c->o.kc, w->pods ? c->pods_path : c->groups_path, &lo,
                                          500, &opts, &items, rv, res);
    if (st != KCCL_OK)
        return st;
    if (w->pods)
        op_cache_pods_replace(c->cache, items, touch, c);
    else
        op_cache_groups_replace(c->cache, items, touch, c);
    cJSON_Delete(items);
    atomic_store(w->pods ? &c->pods_synced : &c->groups_synced, 1);
    return KCCL_OK;
}

static void *watch_main(void *arg)
{
    watch_arg_t *w = arg;
    op_ctrl_t c = w->c;
    const char *what = w->pods ? "pods (label kccl.io/group)" : "commgroups.kccl.io";
    int failures = 0;
    while (!atomic_load(c->o.stop)) {
        char *rv = NULL;
        kccl_kube_result_t res;
        kccl_status_t st = list_once(w, &rv, &res);
        if (st == KCCL_OK) {
            kccl_kube_watch_opts_t wo = {.path = w->pods ? c->pods_path : c->groups_path,
                                         .label_selector = w->pods ? OP_ANN_GROUP : NULL,
                                         .resource_version = rv,
                                         .stop = c->o.stop};
            st = kccl_kube_watch(c->o.kc, &wo, on_event, w, &res);
            failures = st == KCCL_OK ? 0 : failures;
        }
        free(rv);
        if (st == KCCL_OK || st == KCCL_ERR_ABORTED)
            continue; /* relist, or the stop flag ends the loop */
        if (kccl_kube_is_forbidden(&res) || res.http_status == 404) {
            kccl_log_error(TOOL, "watching %s: %s (%s): %s", what, res.reason, res.message,
                           res.http_status == 404 ? "is the CommGroup CRD installed "
                                                    "(helm/kccl/crds)?"
                                                  : "grant list and watch (operator/README.md)");
            atomic_store(&c->failed, 1);
            break;
        }
        int64_t delay = 1000LL << (failures < 5 ? failures : 5);
        failures++;
        kccl_log_warn(TOOL, "watching %s failed (%s); retrying in %lld ms", what, kccl_last_error(),
                      (long long)delay);
        kccl_kube_sleep_ms(delay, c->o.stop);
    }
    free(w);
    return NULL;
}

/* ------------------------------------------------------------------ reconcile */

/* Carries out the plan's writes; KCCL_ERR_KUBE with *conflict when the status write hit 409. */
static kccl_status_t execute(op_ctrl_t c, const op_snapshot_t *s, const op_plan_t *p, int *conflict)
{
    op_api_t *a = &c->api;
    const op_group_t *g = &s->group;
    if (p->create_group)
        return op_act_create_group(a, s->ns, s->name, p->create_world_size);
    if (p->create_secret)
        KCCL_CHECK(op_act_create_secret(a, g));
    if (p->write_status) {
        cJSON *got = NULL;
        kccl_kube_result_t res;
        kccl_status_t st = op_act_write_status(a, g, &p->status, &got, &res);
        if (st != KCCL_OK) {
            *conflict = kccl_kube_is_conflict(&res);
            return st;
        }
        op_cache_group_event(c->cache, KCCL_KUBE_EVENT_MODIFIED, got, no_touch, NULL);
        cJSON_Delete(got);
    }
    return KCCL_OK;
}

static kccl_status_t reconcile(op_ctrl_t c, const char *key)
{
    op_snapshot_t s;
    kccl_status_t st = op_cache_snapshot(c->cache, key, &s);
    if (st == KCCL_ERR_NOT_FOUND)
        return KCCL_OK;
    KCCL_CHECK(st);
    char now[32];
    op_model_now_rfc3339(now, sizeof(now));
    op_plan_t *p = malloc(sizeof(*p));
    if (p == NULL) {
        op_snapshot_free(&s);
        return KCCL_ERR_NO_MEMORY;
    }
    for (int attempt = 0;; attempt++) {
        op_rec_input_t in = {.ns = s.ns,
                             .name = s.name,
                             .group = s.has_group ? &s.group : NULL,
                             .pods = s.pods,
                             .npods = s.npods,
                             .tombs = s.tombs,
                             .ntombs = s.ntombs,
                             .extra_handled = (const char(*)[OP_FKEY_MAX])s.extra,
                             .nextra_handled = s.nextra,
                             .now = now};
        op_rec_plan(&in, p);
        int conflict = 0;
        st = p->idle ? KCCL_OK : execute(c, &s, p, &conflict);
        if (!conflict || attempt == 2)
            break;
        cJSON *fresh = NULL;
        kccl_kube_result_t res;
        st = op_act_get_group(&c->api, s.ns, s.name, &fresh, &res);
        if (st == KCCL_OK) {
            op_model_group_from_json(fresh, &s.group);
            op_cache_group_event(c->cache, KCCL_KUBE_EVENT_MODIFIED, fresh, no_touch, NULL);
        }
        cJSON_Delete(fresh);
        if (st != KCCL_OK)
            break;
    }
    if (st == KCCL_OK && !p->idle && !p->create_group) {
        /* remembered here, so this process never acts on a failure twice even if the
         * annotation patch below fails */
        op_cache_consumed(c->cache, key, s.ntombs, (const char(*)[OP_FKEY_MAX])p->new_handled,
                          (size_t)p->nnew_handled);
        if (p->write_handled)
            (void)op_act_patch_handled(&c->api, &s.group, p->handled_text);
        if (p->patch_rank0)
            st = op_act_patch_epoch(&c->api, s.ns, p->rank0_name, p->rank0_uid, p->rank0_epoch);
        for (int i = 0; i < p->nevents; i++)
            (void)op_act_event(&c->api, &s.group, p->events[i].warning, p->events[i].reason,
                               p->events[i].message);
    } else if (st == KCCL_OK && p->idle) {
        op_cache_consumed(c->cache, key, s.ntombs, NULL, 0);
    }
    free(p);
    op_snapshot_free(&s);
    return st;
}

static void *worker_main(void *arg)
{
    op_ctrl_t c = arg;
    int was_leading = 0;
    while (!atomic_load(c->o.stop)) {
        int lead = atomic_load(c->o.leading);
        if (lead && !was_leading) /* a new leader looks at every group once */
            op_cache_each_group(c->cache, touch, c);
        was_leading = lead;
        if (!lead || !op_ctrl_synced(c)) {
            kccl_kube_sleep_ms(100, c->o.stop);
            continue;
        }
        char key[OP_QUEUE_KEY_MAX];
        if (!op_queue_wait(c->queue, c->o.stop, 100, key))
            continue;
        kccl_status_t st = reconcile(c, key);
        c->reconciles++;
        if (st != KCCL_OK)
            c->reconcile_errors++;
        int64_t d =
            op_queue_done(c->queue, key, st == KCCL_OK, op_queue_now_ms(), c->o.coalesce_ms);
        if (st != KCCL_OK)
            kccl_log_warn(TOOL, "reconciling %s failed (%s); retrying in %lld ms", key,
                          kccl_status_str(st), (long long)d);
    }
    return NULL;
}

/* ------------------------------------------------------------------ life cycle */

kccl_status_t op_ctrl_start(const op_ctrl_opts_t *o, op_ctrl_t *out)
{
    op_ctrl_t c = calloc(1, sizeof(*c));
    if (c == NULL)
        return KCCL_ERR_NO_MEMORY;
    c->o = *o;
    const char *ns = o->ns && o->ns[0] ? o->ns : NULL;
    kccl_status_t st =
        kccl_kube_path(c->pods_path, sizeof(c->pods_path), "v1", ns, "pods", NULL, NULL);
    if (st == KCCL_OK)
        st = kccl_kube_path(c->groups_path, sizeof(c->groups_path), OP_API_VERSION, ns, OP_RESOURCE,
                            NULL, NULL);
    if (st == KCCL_OK)
        st = op_cache_create(&c->cache);
    if (st == KCCL_OK)
        st = op_queue_create(NULL, &c->queue);
    if (st != KCCL_OK) {
        op_cache_destroy(c->cache);
        free(c);
        return st;
    }
    c->api.kc = o->kc;
    /* a stop lets the pass in progress finish its writes (the epoch patch and the record of
     * the failure belong together); only a pass still running after the grace is aborted */
    c->api.stop = &c->api_abort;
    c->api.timeout_ms = o->api_timeout_ms;
    for (int i = 0; i < 2; i++) {
        watch_arg_t *w = malloc(sizeof(*w));
        if (w == NULL)
            break;
        w->c = c;
        w->pods = i == 0;
        if (pthread_create(&c->watchers[i], NULL, watch_main, w) != 0) {
            free(w);
            break;
        }
        c->nwatchers++;
    }
    int n = o->workers < 1 ? 1 : o->workers > MAX_WORKERS ? MAX_WORKERS : o->workers;
    for (int i = 0; i < n && c->nwatchers == 2; i++)
        if (pthread_create(&c->workers[i], NULL, worker_main, c) == 0)
            c->nworkers++;
    if (c->nwatchers < 2 || c->nworkers == 0) {
        kccl_error_set("cannot start the controller's threads (out of resources)");
        *out = c;
        return KCCL_ERR_SYSTEM; /* the caller sets stop and calls op_ctrl_stop */
    }
    *out = c;
    return KCCL_OK;
}

int op_ctrl_synced(op_ctrl_t c)
{
    return atomic_load(&c->pods_synced) && atomic_load(&c->groups_synced);
}

int op_ctrl_failed(op_ctrl_t c)
{
    return atomic_load(&c->failed);
}

void op_ctrl_quiesce(op_ctrl_t c)
{
    if (c == NULL)
        return;
    struct timespec grace;
    clock_gettime(CLOCK_REALTIME, &grace);
    grace.tv_sec += STOP_GRACE_S;
    for (int i = 0; i < c->nworkers; i++) {
        if (pthread_timedjoin_np(c->workers[i], NULL, &grace) == 0)
            continue;
        kccl_log_warn(TOOL, "a reconcile still runs %d s after the stop: aborting its API calls",
                      STOP_GRACE_S);
        atomic_store(&c->api_abort, 1);
        pthread_join(c->workers[i], NULL);
    }
    c->nworkers = 0;
}

void op_ctrl_abort(op_ctrl_t c)
{
    if (c != NULL)
        atomic_store(&c->api_abort, 1);
}

void op_ctrl_stop(op_ctrl_t c)
{
    if (c == NULL)
        return;
    op_ctrl_quiesce(c);
    for (int i = 0; i < c->nwatchers; i++)
        pthread_join(c->watchers[i], NULL);
    op_queue_destroy(c->queue);
    op_cache_destroy(c->cache);
    free(c);
}

void op_ctrl_stats(op_ctrl_t c, op_ctrl_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    op_cache_stats(c->cache, &out->cache);
    out->reconciles = c->reconciles;
    out->reconcile_errors = c->reconcile_errors;
    out->api_calls = c->api.calls;
    out->status_writes = c->api.status_writes;
    out->conflicts = c->api.conflicts;
    out->secrets = c->api.secrets;
    out->groups_created = c->api.groups_created;
    out->pod_patches = c->api.pod_patches;
    out->group_patches = c->api.group_patches;
    out->events = c->api.events;
    out->gets = c->api.gets;
}
