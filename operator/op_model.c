/*
 * op_model.c - API objects to op_model.h records and back. Everything here
 * is a pure function of its input (no API calls, no globals), so the pod and
 * CommGroup parsers are unit-tested with literal JSON.
 *
 * Strings that do not fit their field are truncated, never overrun; values
 * that do not parse become "absent" or "invalid" markers the reconciler
 * reports (a bad kccl.io/rank is OP_RANK_INVALID, not rank 0).
 */
#include "op_model.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const cJSON *item(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static const char *str(const cJSON *obj, const char *key)
{
    const cJSON *x = item(obj, key);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

static void copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

const char *op_phase_str(op_phase_t phase)
{
    switch (phase) {
    case OP_PHASE_PENDING: return "Pending";
    case OP_PHASE_FORMING: return "Forming";
    case OP_PHASE_READY: return "Ready";
    case OP_PHASE_DEGRADED: return "Degraded";
    case OP_PHASE_FAILED: return "Failed";
    case OP_PHASE_SUCCEEDED: return "Succeeded";
    case OP_PHASE_NONE: break;
    }
    return "";
}

static op_phase_t phase_parse(const char *s)
{
    for (int p = OP_PHASE_PENDING; p <= OP_PHASE_SUCCEEDED; p++)
        if (s && strcmp(s, op_phase_str((op_phase_t)p)) == 0)
            return (op_phase_t)p;
    return OP_PHASE_NONE;
}

const char *op_cond_type_str(op_cond_id_t id)
{
    static const char *const names[OP_COND_COUNT] = {"Ready", "Bootstrapped", "Degraded"};
    return id < OP_COND_COUNT ? names[id] : "";
}

int op_model_parse_int(const char *text, int64_t min, int64_t max, int64_t *out)
{
    if (text == NULL || text[0] < '0' || text[0] > '9')
        return -1; /* no sign, no space, no empty string */
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int op_model_key(char *buf, size_t len, const char *ns, const char *name)
{
    int n = snprintf(buf, len, "%s/%s", ns, name);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

void op_model_now_rfc3339(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ------------------------------------------------------------------ pods */

/* The first rank source that is present decides (the sidecar's order). */
static int pod_rank(const cJSON *labels, const cJSON *ann)
{
    const char *src[] = {str(labels, OP_ANN_RANK), str(ann, OP_ANN_RANK), str(ann, OP_JOB_INDEX),
                         str(labels, OP_JOB_INDEX), str(labels, OP_POD_INDEX)};
    for (size_t i = 0; i < sizeof(src) / sizeof(src[0]); i++) {
        int64_t v;
        if (src[i] == NULL)
            continue;
        if (op_model_parse_int(src[i], 0, OP_WORLD_MAX - 1, &v) != 0)
            return OP_RANK_INVALID;
        return (int)v;
    }
    return OP_RANK_NONE;
}

static op_pod_phase_t pod_phase(const char *s)
{
    if (s == NULL)
        return OP_POD_PENDING;
    if (!strcmp(s, "Running"))
        return OP_POD_RUNNING;
    if (!strcmp(s, "Succeeded"))
        return OP_POD_SUCCEEDED;
    if (!strcmp(s, "Failed"))
        return OP_POD_FAILED;
    return !strcmp(s, "Pending") ? OP_POD_PENDING : OP_POD_UNKNOWN;
}

static int exit_code(const cJSON *state, int *code)
{
    const cJSON *c = item(item(state, "terminated"), "exitCode");
    if (!cJSON_IsNumber(c))
        return 0;
    *code = c->valueint;
    return 1;
}

/*
 * One application container. A run that terminated non-zero and is still the current state
 * fails the pod (not a member now). A non-zero lastState.terminated is a crash the kubelet
 * restarts in place (restartPolicy OnFailure/Always; the terminated state may never be
 * reported): a failure event, the pod stays a member. The failed run's attempt is the
 * restartCount while it is the latest run (terminated, or waiting for its restart), one less
 * once a newer run exists: *adjust = 1 then, so that both sightings of one crash get one key.
 */
static void container(const cJSON *cs, op_pod_t *p, long rc, long *adjust)
{
    const char *name = str(cs, "name") ? str(cs, "name") : "?";
    const cJSON *state = item(cs, "state");
    int code = 0;
    if (exit_code(state, &code) && code != 0) {
        if (!p->failed) {
            p->failed = 1;
            p->crashed = 0;
            p->crash_at[0] = '\0';
            *adjust = 0;
            snprintf(p->why, sizeof(p->why), "container %.40s exited with code %d", name, code);
        }
        return;
    }
    if (p->failed || p->crashed || !exit_code(item(cs, "lastState"), &code) || code == 0)
        return;
    p->crashed = 1;
    copy(p->crash_at, sizeof(p->crash_at),
         str(item(item(cs, "lastState"), "terminated"), "finishedAt"));
    int newer = item(state, "running") != NULL || item(state, "terminated") != NULL;
    *adjust = newer && rc > 0;
    snprintf(p->why, sizeof(p->why),
             "container %.40s exited with code %d and was restarted in place", name, code);
}

/* Application containers: a non-zero exit is a member failure; restarts make failures distinct. */
static void pod_containers(const cJSON *status, op_pod_t *p)
{
    long restarts = 0, adjust = 0;
    const cJSON *cs;
    cJSON_ArrayForEach(cs, item(status, "containerStatuses"))
    {
        const cJSON *rcj = item(cs, "restartCount");
        long rc = 0;
        if (cJSON_IsNumber(rcj) && rcj->valuedouble > 0 && rcj->valuedouble < 1e9)
            rc = (long)rcj->valuedouble;
        restarts += rc;
        container(cs, p, rc, &adjust);
    }
    cJSON_ArrayForEach(cs, item(status, "initContainerStatuses"))
    {
        const char *name = str(cs, "name");
        if (name && !strcmp(name, OP_SIDECAR))
            p->sidecar_ready = cJSON_IsTrue(item(cs, "ready"));
    }
    if (p->phase == OP_POD_FAILED && !p->failed) {
        p->failed = 1;
        p->crashed = 0;
        p->crash_at[0] = '\0';
        adjust = 0;
        const char *reason = str(status, "reason");
        snprintf(p->why, sizeof(p->why), "pod phase Failed%s%.60s", reason ? ": " : "",
                 reason ? reason : "");
    }
    if (p->phase == OP_POD_SUCCEEDED && p->crashed) { /* completed: an old crash is history */
        p->crashed = 0;
        adjust = 0;
        p->why[0] = p->crash_at[0] = '\0';
    }
    snprintf(p->fkey, sizeof(p->fkey), "%s.%ld", p->uid, restarts - adjust);
}

kccl_status_t op_model_pod_from_json(const cJSON *pod, op_pod_t *out)
{
    const cJSON *meta = item(pod, "metadata");
    const cJSON *labels = item(meta, "labels"), *ann = item(meta, "annotations");
    const char *name = str(meta, "name"), *ns = str(meta, "namespace");
    const char *group = str(labels, OP_ANN_GROUP);
    if (group == NULL)
        group = str(ann, OP_ANN_GROUP);
    if (name == NULL || ns == NULL || group == NULL || group[0] == '\0')
        return KCCL_ERR_INVALID_ARG;
    op_pod_t *p = out;
    memset(p, 0, sizeof(*p));
    copy(p->ns, sizeof(p->ns), ns);
    copy(p->name, sizeof(p->name), name);
    copy(p->uid, sizeof(p->uid), str(meta, "uid"));
    copy(p->group, sizeof(p->group), group);
    p->rank = pod_rank(labels, ann);
    int64_t v;
    const char *ws = str(ann, OP_ANN_WORLD);
    p->world_size = ws == NULL ? -1 : op_model_parse_int(ws, 1, OP_WORLD_MAX, &v) ? -2 : (int)v;
    p->deleting = str(meta, "deletionTimestamp") != NULL;
    const cJSON *status = item(pod, "status");
    p->phase = pod_phase(str(status, "phase"));
    pod_containers(status, p);
    p->epoch = op_model_parse_int(str(ann, OP_ANN_EPOCH), 0, INT64_MAX, &v) ? 0 : v;
    p->id_epoch = op_model_parse_int(str(ann, OP_ANN_ID_EPOCH), 0, INT64_MAX, &v) ? -1 : v;
    copy(p->unique_id, sizeof(p->unique_id), str(ann, OP_ANN_UNIQUE_ID));
    copy(p->endpoint, sizeof(p->endpoint), str(ann, OP_ANN_ENDPOINT));
    return KCCL_OK;
}

int op_model_pod_equal(const op_pod_t *a, const op_pod_t *b)
{
    return a->rank == b->rank && a->world_size == b->world_size && a->phase == b->phase &&
           a->deleting == b->deleting && a->failed == b->failed && a->crashed == b->crashed &&
           a->sidecar_ready == b->sidecar_ready && a->epoch == b->epoch &&
           a->id_epoch == b->id_epoch && !strcmp(a->ns, b->ns) && !strcmp(a->name, b->name) &&
           !strcmp(a->uid, b->uid) && !strcmp(a->group, b->group) && !strcmp(a->why, b->why) &&
           !strcmp(a->crash_at, b->crash_at) && !strcmp(a->fkey, b->fkey) &&
           !strcmp(a->unique_id, b->unique_id) && !strcmp(a->endpoint, b->endpoint);
}

/* ------------------------------------------------------------------ CommGroups */

/* A JSON integer within [0, 2^53] (exact in a double; epoch + 1 cannot overflow), else def. */
static int64_t num(const cJSON *obj, const char *key, int64_t def)
{
    const cJSON *x = item(obj, key);
    if (!cJSON_IsNumber(x) || !(x->valuedouble >= 0.0 && x->valuedouble <= 9007199254740992.0))
        return def;
    return (int64_t)x->valuedouble;
}

/* The same within [0, INT_MAX]. */
static int num_int(const cJSON *obj, const char *key, int def)
{
    int64_t v = num(obj, key, def);
    return v > INT_MAX ? def : (int)v;
}

static void status_from_json(const cJSON *s, op_status_t *st)
{
    st->phase = phase_parse(str(s, "phase"));
    copy(st->unique_id, sizeof(st->unique_id), str(s, "uniqueId"));
    copy(st->root_endpoint, sizeof(st->root_endpoint), str(s, "rootEndpoint"));
    copy(st->secret_name, sizeof(st->secret_name), str(s, "secretName"));
    st->ready_members = num_int(s, "readyMembers", 0);
    st->epoch = num(s, "epoch", 0);
    st->observed_generation = num(s, "observedGeneration", 0);
    const cJSON *c;
    cJSON_ArrayForEach(c, item(s, "conditions"))
    {
        const char *type = str(c, "type"), *status = str(c, "status");
        for (int i = 0; i < OP_COND_COUNT && type; i++) {
            if (strcmp(type, op_cond_type_str((op_cond_id_t)i)) != 0)
                continue;
            op_cond_t *d = &st->cond[i];
            d->present = 1;
            d->status = status && !strcmp(status, "True")    ? 1
                        : status && !strcmp(status, "False") ? 0
                                                             : -1;
            copy(d->reason, sizeof(d->reason), str(c, "reason"));
            copy(d->message, sizeof(d->message), str(c, "message"));
            copy(d->last_transition, sizeof(d->last_transition), str(c, "lastTransitionTime"));
            d->observed_generation = num(c, "observedGeneration", 0);
        }
    }
}

/* "key key key" (space separated, newest last) */
static void handled_from_text(const char *text, op_group_t *g)
{
    while (text && *text && g->nhandled < OP_HANDLED_MAX) {
        while (*text == ' ')
            text++;
        size_t n = strcspn(text, " ");
        if (n > 0 && n < OP_FKEY_MAX) {
            memcpy(g->handled[g->nhandled], text, n);
            g->handled[g->nhandled++][n] = '\0';
        }
        text += n;
    }
}

kccl_status_t op_model_group_from_json(const cJSON *cg, op_group_t *out)
{
    const cJSON *meta = item(cg, "metadata"), *spec = item(cg, "spec");
    const char *name = str(meta, "name"), *ns = str(meta, "namespace");
    if (name == NULL || ns == NULL)
        return KCCL_ERR_INVALID_ARG;
    op_group_t *g = out;
    memset(g, 0, sizeof(*g));
    copy(g->ns, sizeof(g->ns), ns);
    copy(g->name, sizeof(g->name), name);
    copy(g->uid, sizeof(g->uid), str(meta, "uid"));
    copy(g->resource_version, sizeof(g->resource_version), str(meta, "resourceVersion"));
    g->generation = num(meta, "generation", 1);
    g->deleting = str(meta, "deletionTimestamp") != NULL;
    g->world_size = num_int(spec, "worldSize", 0);
    g->port = num_int(spec, "port", OP_PORT_DEFAULT);
    g->timeout_s = num_int(spec, "bootstrapTimeoutSeconds", OP_TIMEOUT_DEFAULT);
    const char *policy = str(spec, "failurePolicy");
    g->policy = policy && !strcmp(policy, "Fail") ? OP_POLICY_FAIL : OP_POLICY_RESTART;
    status_from_json(item(cg, "status"), &g->status);
    handled_from_text(str(item(meta, "annotations"), OP_ANN_HANDLED), g);
    return KCCL_OK;
}

cJSON *op_model_status_to_json(const op_status_t *st)
{
    cJSON *s = cJSON_CreateObject();
    cJSON *conds = cJSON_AddArrayToObject(s, "conditions");
    if (conds == NULL) {
        cJSON_Delete(s);
        return NULL;
    }
    if (st->phase != OP_PHASE_NONE)
        cJSON_AddStringToObject(s, "phase", op_phase_str(st->phase));
    for (int i = 0; i < OP_COND_COUNT; i++) {
        const op_cond_t *c = &st->cond[i];
        if (!c->present)
            continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(conds, o);
        cJSON_AddStringToObject(o, "type", op_cond_type_str((op_cond_id_t)i));
        cJSON_AddStringToObject(o, "status",
                                c->status == 1   ? "True"
                                : c->status == 0 ? "False"
                                                 : "Unknown");
        cJSON_AddStringToObject(o, "reason", c->reason);
        cJSON_AddStringToObject(o, "message", c->message);
        cJSON_AddStringToObject(o, "lastTransitionTime", c->last_transition);
        cJSON_AddNumberToObject(o, "observedGeneration", (double)c->observed_generation);
    }
    if (st->unique_id[0])
        cJSON_AddStringToObject(s, "uniqueId", st->unique_id);
    if (st->root_endpoint[0])
        cJSON_AddStringToObject(s, "rootEndpoint", st->root_endpoint);
    cJSON_AddNumberToObject(s, "readyMembers", st->ready_members);
    cJSON_AddNumberToObject(s, "epoch", (double)st->epoch);
    cJSON_AddNumberToObject(s, "observedGeneration", (double)st->observed_generation);
    if (st->secret_name[0])
        cJSON_AddStringToObject(s, "secretName", st->secret_name);
    return s;
}

int op_model_status_equal(const op_status_t *a, const op_status_t *b)
{
    if (a->phase != b->phase || a->ready_members != b->ready_members || a->epoch != b->epoch ||
        a->observed_generation != b->observed_generation ||
        strcmp(a->unique_id, b->unique_id) != 0 ||
        strcmp(a->root_endpoint, b->root_endpoint) != 0 ||
        strcmp(a->secret_name, b->secret_name) != 0)
        return 0;
    for (int i = 0; i < OP_COND_COUNT; i++) {
        const op_cond_t *x = &a->cond[i], *y = &b->cond[i];
        if (x->present != y->present || x->status != y->status ||
            strcmp(x->reason, y->reason) != 0 || strcmp(x->message, y->message) != 0 ||
            strcmp(x->last_transition, y->last_transition) != 0 ||
            x->observed_generation != y->observed_generation)
            return 0;
    }
    return 1;
}
