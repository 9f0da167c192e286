/*
 * op_lease.c - leader election (see op_lease.h): the pure decisions, the
 * Lease's JSON form, and the loop against the apiserver.
 */
#include "op_lease.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "kube_util.h"
#include "op_queue.h"

void op_lease_state_init(op_lease_state_t *s, const char *identity)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->identity, sizeof(s->identity), "%s", identity);
    s->duration_ms = OP_LEASE_DURATION_MS;
    s->renew_deadline_ms = OP_LEASE_RENEW_DEADLINE_MS;
    s->retry_ms = OP_LEASE_RETRY_MS;
}

op_lease_action_t op_lease_decide(op_lease_state_t *s, const op_lease_record_t *observed,
                                  int64_t now, const char *now_micro, op_lease_record_t *write)
{
    memset(write, 0, sizeof(*write));
    write->exists = 1;
    snprintf(write->holder, sizeof(write->holder), "%s", s->identity);
    write->duration_s = (int)(s->duration_ms / 1000);
    snprintf(write->renew_time, sizeof(write->renew_time), "%s", now_micro);
    if (!observed->exists) {
        snprintf(write->acquire_time, sizeof(write->acquire_time), "%s", now_micro);
        return OP_LEASE_CREATE;
    }
    /* the record's changes, timed on our own clock */
    if (!s->seen_any || strcmp(s->seen_holder, observed->holder) != 0 ||
        strcmp(s->seen_renew, observed->renew_time) != 0) {
        snprintf(s->seen_holder, sizeof(s->seen_holder), "%s", observed->holder);
        snprintf(s->seen_renew, sizeof(s->seen_renew), "%s", observed->renew_time);
        s->seen_at = now;
        s->seen_any = 1;
    }
    snprintf(write->resource_version, sizeof(write->resource_version), "%s",
             observed->resource_version);
    if (!strcmp(observed->holder, s->identity)) { /* renew */
        snprintf(write->acquire_time, sizeof(write->acquire_time), "%s", observed->acquire_time);
        write->transitions = observed->transitions;
        return OP_LEASE_UPDATE;
    }
    if (s->leader)
        s->leader = 0; /* someone else took it */
    int64_t ttl = observed->duration_s > 0 ? (int64_t)observed->duration_s * 1000 : s->duration_ms;
    if (observed->holder[0] != '\0' && now - s->seen_at < ttl)
        return OP_LEASE_WAIT;
    snprintf(write->acquire_time, sizeof(write->acquire_time), "%s", now_micro);
    write->transitions = observed->transitions + 1;
    return OP_LEASE_UPDATE;
}

void op_lease_written(op_lease_state_t *s, int ok, int64_t now)
{
    if (!ok)
        return;
    if (!s->leader)
        s->lead_since = now;
    s->leader = 1;
    s->last_renew_ok = now;
}

int op_lease_is_leader(const op_lease_state_t *s, int64_t now)
{
    return s->leader && now - s->last_renew_ok < s->renew_deadline_ms;
}

/* ------------------------------------------------------------------ JSON */

cJSON *op_lease_to_json(const op_lease_record_t *r, const char *ns)
{
    cJSON *l = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(l, "metadata");
    cJSON *spec = cJSON_AddObjectToObject(l, "spec");
    if (meta == NULL || spec == NULL) {
        cJSON_Delete(l);
        return NULL;
    }
    cJSON_AddStringToObject(l, "apiVersion", "coordination.k8s.io/v1");
    cJSON_AddStringToObject(l, "kind", "Lease");
    cJSON_AddStringToObject(meta, "name", OP_LEASE_NAME);
    cJSON_AddStringToObject(meta, "namespace", ns);
    if (r->resource_version[0])
        cJSON_AddStringToObject(meta, "resourceVersion", r->resource_version);
    cJSON_AddStringToObject(spec, "holderIdentity", r->holder);
    cJSON_AddNumberToObject(spec, "leaseDurationSeconds", r->duration_s);
    if (r->acquire_time[0])
        cJSON_AddStringToObject(spec, "acquireTime", r->acquire_time);
    if (r->renew_time[0])
        cJSON_AddStringToObject(spec, "renewTime", r->renew_time);
    cJSON_AddNumberToObject(spec, "leaseTransitions", r->transitions);
    return l;
}

static void copy_str(char *dst, size_t cap, const cJSON *obj, const char *key)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(obj, key);
    snprintf(dst, cap, "%s", cJSON_IsString(x) ? x->valuestring : "");
}

void op_lease_from_json(const cJSON *lease, op_lease_record_t *out)
{
    memset(out, 0, sizeof(*out));
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(lease, "metadata");
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(lease, "spec");
    out->exists = 1;
    copy_str(out->holder, sizeof(out->holder), spec, "holderIdentity");
    copy_str(out->acquire_time, sizeof(out->acquire_time), spec, "acquireTime");
    copy_str(out->renew_time, sizeof(out->renew_time), spec, "renewTime");
    copy_str(out->resource_version, sizeof(out->resource_version), meta, "resourceVersion");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(spec, "leaseDurationSeconds");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(spec, "leaseTransitions");
    out->duration_s = cJSON_IsNumber(d) ? d->valueint : 0;
    out->transitions = cJSON_IsNumber(t) ? t->valueint : 0;
}

/* ------------------------------------------------------------------ the loop */

static void now_micro(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char base[24];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%.19s.%06dZ", base, (int)(ts.tv_nsec / 1000) % 1000000);
}

void op_lease_default_identity(char *buf, size_t len)
{
    const char *pod = getenv("POD_NAME");
    if (pod && *pod) {
        snprintf(buf, len, "%s", pod);
        return;
    }
    char host[128] = "unknown";
    gethostname(host, sizeof(host) - 1);
    snprintf(buf, len, "%s_%d", host, (int)getpid());
}

/* One round: GET, decide, write. Returns 0, or a kccl status for a permanent error. */
static kccl_status_t round_once(const op_lease_opts_t *o, op_lease_state_t *s, const char *path,
                                const char *coll, op_lease_record_t *last)
{
    kccl_kube_opts_t co = {.timeout_ms = s->retry_ms * 2, .stop = o->stop, .max_attempts = 1};
    kccl_kube_result_t res;
    cJSON *obj = NULL;
    op_lease_record_t seen = {0}, write;
    kccl_status_t st = kccl_kube_get(o->kc, path, &co, &obj, &res);
    if (st == KCCL_OK)
        op_lease_from_json(obj, &seen);
    cJSON_Delete(obj);
    if (st != KCCL_OK && res.http_status != 404)
        return kccl_kube_is_forbidden(&res) ? KCCL_ERR_KUBE : KCCL_OK; /* retried next round */
    atomic_store(o->observed, 1);
    char micro[40];
    now_micro(micro, sizeof(micro));
    int64_t now = op_queue_now_ms();
    op_lease_action_t a = op_lease_decide(s, &seen, now, micro, &write);
    if (a == OP_LEASE_WAIT)
        return KCCL_OK;
    cJSON *body = op_lease_to_json(&write, o->ns), *got = NULL;
    st = body == NULL           ? KCCL_ERR_NO_MEMORY
         : a == OP_LEASE_CREATE ? kccl_kube_create(o->kc, coll, body, &co, &got, &res)
                                : kccl_kube_replace(o->kc, path, body, &co, &got, &res);
    cJSON_Delete(body);
    if (st == KCCL_OK)
        op_lease_from_json(got, last);
    cJSON_Delete(got);
    int was = s->leader;
    op_lease_written(s, st == KCCL_OK, op_queue_now_ms());
    if (!was && s->leader)
        kccl_log_info(TOOL, "leader election: %s now leads (Lease %s/%s)", s->identity, o->ns,
                      OP_LEASE_NAME);
    if (st != KCCL_OK && kccl_kube_is_forbidden(&res))
        return KCCL_ERR_KUBE;
    return KCCL_OK;
}

static void release(const op_lease_opts_t *o, const char *path, op_lease_record_t *last)
{
    kccl_kube_opts_t co = {.timeout_ms = 5000, .max_attempts = 1};
    snprintf(last->holder, sizeof(last->holder), "%s", "");
    last->duration_s = 1;
    cJSON *body = op_lease_to_json(last, o->ns);
    kccl_kube_result_t res;
    if (body && kccl_kube_replace(o->kc, path, body, &co, NULL, &res) == KCCL_OK)
        kccl_log_info(TOOL, "leader election: released Lease %s/%s", o->ns, OP_LEASE_NAME);
    else
        kccl_log_warn(TOOL,
                      "leader election: could not release Lease %s/%s (%s); a standby "
                      "takes over when it expires (15 s)",
                      o->ns, OP_LEASE_NAME, body ? res.message : "out of memory");
    cJSON_Delete(body);
}

kccl_status_t op_lease_run(const op_lease_opts_t *o)
{
    char path[512], coll[512];
    KCCL_CHECK(kccl_kube_path(path, sizeof(path), "coordination.k8s.io/v1", o->ns, "leases",
                              OP_LEASE_NAME, NULL));
    KCCL_CHECK(
        kccl_kube_path(coll, sizeof(coll), "coordination.k8s.io/v1", o->ns, "leases", NULL, NULL));
    op_lease_state_t s;
    op_lease_state_init(&s, o->identity);
    op_lease_record_t last = {0};
    kccl_status_t st = KCCL_OK;
    while (!atomic_load(o->stop)) {
        st = round_once(o, &s, path, coll, &last);
        if (st != KCCL_OK) {
            kccl_error_set("leader election: the apiserver refuses access to Lease %s/%s: grant "
                           "get, create, update on leases.coordination.k8s.io (operator/README.md, "
                           "RBAC)",
                           o->ns, OP_LEASE_NAME);
            kccl_log_error(TOOL, "%s", kccl_last_error());
            break;
        }
        int64_t now = op_queue_now_ms();
        int lead = op_lease_is_leader(&s, now);
        if (atomic_load(o->leading) && !lead) {
            atomic_store(o->leading, 0);
            atomic_store(o->lost, 1);
            kccl_error_set("leader election: lost the Lease %s/%s (no renewal within %lld ms); "
                           "exiting so that only one operator acts",
                           o->ns, OP_LEASE_NAME, (long long)s.renew_deadline_ms);
            kccl_log_error(TOOL, "%s", kccl_last_error());
            return KCCL_ERR_ABORTED;
        }
        if (lead && !atomic_load(o->leading))
            atomic_store(o->leading, 1);
        kccl_kube_sleep_ms(s.retry_ms, o->stop);
    }
    if (atomic_load(o->leading) && s.leader && last.exists) {
        if (o->before_release)
            o->before_release(o->arg); /* no standby may act while our last pass writes */
        release(o, path, &last);
    }
    atomic_store(o->leading, 0);
    return st;
}
