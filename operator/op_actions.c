/*
 * op_actions.c - the API calls behind a plan (see op_actions.h). Bodies are
 * built with cJSON; creates treat AlreadyExists as done (another replica, or
 * an earlier pass that timed out after the apiserver acted, made it).
 */
#include "op_actions.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/error.h"

static kccl_kube_opts_t opts(const op_api_t *a)
{
    kccl_kube_opts_t o = {.timeout_ms = a->timeout_ms, .stop = a->stop};
    return o;
}

static kccl_status_t fail(const char *what, kccl_status_t st, const kccl_kube_result_t *res)
{
    kccl_error_set("%s: %s (%s); the operator retries with backoff - if it is Forbidden, grant "
                   "what operator/README.md (RBAC) lists",
                   what, res->message[0] ? res->message : kccl_status_str(st), res->reason);
    kccl_log_warn(TOOL, "%s", kccl_last_error());
    return st;
}

kccl_status_t op_act_create_group(op_api_t *a, const char *ns, const char *name, int world_size)
{
    char path[320];
    kccl_kube_result_t res;
    kccl_kube_opts_t o = opts(a);
    KCCL_CHECK(kccl_kube_path(path, sizeof(path), OP_API_VERSION, ns, OP_RESOURCE, NULL, NULL));
    cJSON *cg = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(cg, "metadata");
    cJSON *labels = cJSON_AddObjectToObject(meta, "labels");
    cJSON *spec = cJSON_AddObjectToObject(cg, "spec");
    if (labels == NULL || spec == NULL) {
        cJSON_Delete(cg);
        return KCCL_ERR_NO_MEMORY;
    }
    cJSON_AddStringToObject(cg, "apiVersion", OP_API_VERSION);
    cJSON_AddStringToObject(cg, "kind", OP_KIND);
    cJSON_AddStringToObject(meta, "name", name);
    cJSON_AddStringToObject(meta, "namespace", ns);
    cJSON_AddStringToObject(labels, OP_LABEL_MANAGED, OP_NAME);
    cJSON_AddNumberToObject(spec, "worldSize", world_size);
    a->calls++;
    kccl_status_t st = kccl_kube_create(a->kc, path, cg, &o, NULL, &res);
    cJSON_Delete(cg);
    if (st != KCCL_OK && !kccl_kube_is_already_exists(&res))
        return fail("creating CommGroup", st, &res);
    if (st == KCCL_OK) {
        a->groups_created++;
        kccl_log_info(TOOL, "created CommGroup %s/%s (worldSize %d) for its pods", ns, name,
                      world_size);
    }
    return KCCL_OK;
}

static cJSON *owner_refs(const op_group_t *g)
{
    cJSON *refs = cJSON_CreateArray();
    cJSON *r = cJSON_CreateObject();
    if (refs == NULL || r == NULL) {
        cJSON_Delete(refs);
        cJSON_Delete(r);
        return NULL;
    }
    cJSON_AddItemToArray(refs, r);
    cJSON_AddStringToObject(r, "apiVersion", OP_API_VERSION);
    cJSON_AddStringToObject(r, "kind", OP_KIND);
    cJSON_AddStringToObject(r, "name", g->name);
    cJSON_AddStringToObject(r, "uid", g->uid);
    cJSON_AddBoolToObject(r, "controller", 1);
    cJSON_AddBoolToObject(r, "blockOwnerDeletion", 1);
    return refs;
}

static cJSON *secret_object(const op_group_t *g)
{
    unsigned char key[32];
    char b64[64];
    if (getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key))
        return NULL;
    EVP_EncodeBlock((unsigned char *)b64, key, sizeof(key));
    explicit_bzero(key, sizeof(key));
    char name[OP_GROUP_MAX + 16];
    snprintf(name, sizeof(name), OP_SECRET_PREFIX "%s", g->name);
    cJSON *s = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(s, "metadata");
    cJSON *labels = cJSON_AddObjectToObject(meta, "labels");
    cJSON *data = cJSON_AddObjectToObject(s, "data");
    cJSON *refs = owner_refs(g);
    if (labels == NULL || data == NULL || refs == NULL) {
        cJSON_Delete(refs);
        cJSON_Delete(s);
        explicit_bzero(b64, sizeof(b64));
        return NULL;
    }
    cJSON_AddStringToObject(s, "apiVersion", "v1");
    cJSON_AddStringToObject(s, "kind", "Secret");
    cJSON_AddStringToObject(s, "type", "Opaque");
    cJSON_AddStringToObject(meta, "name", name);
    cJSON_AddStringToObject(meta, "namespace", g->ns);
    cJSON_AddStringToObject(labels, OP_ANN_GROUP, g->name);
    cJSON_AddStringToObject(labels, OP_LABEL_MANAGED, OP_NAME);
    cJSON_AddItemToObject(meta, "ownerReferences", refs);
    cJSON_AddStringToObject(data, "secret", b64);
    explicit_bzero(b64, sizeof(b64));
    return s;
}

kccl_status_t op_act_create_secret(op_api_t *a, const op_group_t *g)
{
    char path[320];
    kccl_kube_result_t res;
    kccl_kube_opts_t o = opts(a);
    KCCL_CHECK(kccl_kube_path(path, sizeof(path), "v1", g->ns, "secrets", NULL, NULL));
    cJSON *s = secret_object(g);
    if (s == NULL)
        KCCL_FAIL(TOOL, KCCL_ERR_SYSTEM,
                  "cannot make the group secret for %s/%s (getrandom or "
                  "memory)",
                  g->ns, g->name);
    a->calls++;
    kccl_status_t st = kccl_kube_create(a->kc, path, s, &o, NULL, &res);
    /* the request body held the key: wipe it before freeing */
    cJSON *data = cJSON_GetObjectItemCaseSensitive(s, "data");
    cJSON *v = cJSON_GetObjectItemCaseSensitive(data, "secret");
    if (cJSON_IsString(v))
        explicit_bzero(v->valuestring, strlen(v->valuestring));
    cJSON_Delete(s);
    if (st != KCCL_OK && !kccl_kube_is_already_exists(&res))
        return fail("creating the group Secret", st, &res);
    if (st == KCCL_OK)
        a->secrets++;
    return KCCL_OK;
}

static cJSON *group_for_status(const op_group_t *g, const op_status_t *st)
{
    cJSON *cg = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(cg, "metadata");
    cJSON *spec = cJSON_AddObjectToObject(cg, "spec");
    cJSON *status = op_model_status_to_json(st);
    if (meta == NULL || spec == NULL || status == NULL) {
        cJSON_Delete(status);
        cJSON_Delete(cg);
        return NULL;
    }
    cJSON_AddStringToObject(cg, "apiVersion", OP_API_VERSION);
    cJSON_AddStringToObject(cg, "kind", OP_KIND);
    cJSON_AddStringToObject(meta, "name", g->name);
    cJSON_AddStringToObject(meta, "namespace", g->ns);
    cJSON_AddStringToObject(meta, "resourceVersion", g->resource_version);
    /* the status subresource ignores spec; it is sent so the object validates as a whole */
    cJSON_AddNumberToObject(spec, "worldSize", g->world_size);
    cJSON_AddNumberToObject(spec, "port", g->port);
    cJSON_AddNumberToObject(spec, "bootstrapTimeoutSeconds", g->timeout_s);
    cJSON_AddStringToObject(spec, "failurePolicy",
                            g->policy == OP_POLICY_FAIL ? "Fail" : "Restart");
    cJSON_AddItemToObject(cg, "status", status);
    return cg;
}

kccl_status_t op_act_write_status(op_api_t *a, const op_group_t *g, const op_status_t *st,
                                  cJSON **out, kccl_kube_result_t *res)
{
    char path[320];
    kccl_kube_opts_t o = opts(a);
    KCCL_CHECK(
        kccl_kube_path(path, sizeof(path), OP_API_VERSION, g->ns, OP_RESOURCE, g->name, "status"));
    cJSON *body = group_for_status(g, st);
    if (body == NULL)
        return KCCL_ERR_NO_MEMORY;
    a->calls++;
    kccl_status_t rc = kccl_kube_replace(a->kc, path, body, &o, out, res);
    cJSON_Delete(body);
    if (rc == KCCL_OK)
        a->status_writes++;
    else if (kccl_kube_is_conflict(res))
        a->conflicts++;
    else
        fail("writing CommGroup status", rc, res);
    return rc;
}

kccl_status_t op_act_get_group(op_api_t *a, const char *ns, const char *name, cJSON **out,
                               kccl_kube_result_t *res)
{
    char path[320];
    kccl_kube_opts_t o = opts(a);
    KCCL_CHECK(kccl_kube_path(path, sizeof(path), OP_API_VERSION, ns, OP_RESOURCE, name, NULL));
    a->calls++;
    a->gets++;
    return kccl_kube_get(a->kc, path, &o, out, res);
}

static kccl_status_t merge_patch(op_api_t *a, const char *path, const cJSON *patch,
                                 const char *what)
{
    kccl_kube_result_t res;
    kccl_kube_opts_t o = opts(a);
    char *text = cJSON_PrintUnformatted(patch);
    if (text == NULL)
        return KCCL_ERR_NO_MEMORY;
    a->calls++;
    kccl_status_t st = kccl_kube_patch(a->kc, path, KCCL_KUBE_PATCH_MERGE, text, &o, NULL, &res);
    free(text);
    return st == KCCL_OK ? st : fail(what, st, &res);
}

kccl_status_t op_act_patch_epoch(op_api_t *a, const char *ns, const char *pod, const char *uid,
                                 int64_t epoch)
{
    char path[512], val[32];
    KCCL_CHECK(kccl_kube_path(path, sizeof(path), "v1", ns, "pods", pod, NULL));
    snprintf(val, sizeof(val), "%lld", (long long)epoch);
    cJSON *p = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(p, "metadata");
    cJSON *ann = cJSON_AddObjectToObject(meta, "annotations");
    if (ann == NULL) {
        cJSON_Delete(p);
        return KCCL_ERR_NO_MEMORY;
    }
    if (uid && uid[0]) /* a precondition: never the pod that replaced it under the same name */
        cJSON_AddStringToObject(meta, "uid", uid);
    cJSON_AddStringToObject(ann, OP_ANN_EPOCH, val);
    kccl_status_t st = merge_patch(a, path, p, "patching rank 0's kccl.io/epoch");
    cJSON_Delete(p);
    if (st == KCCL_OK) {
        a->pod_patches++;
        kccl_log_info(TOOL, "pod %s/%s (rank 0): kccl.io/epoch=%lld", ns, pod, (long long)epoch);
    }
    return st;
}

kccl_status_t op_act_patch_handled(op_api_t *a, const op_group_t *g, const char *text)
{
    char path[320];
    KCCL_CHECK(
        kccl_kube_path(path, sizeof(path), OP_API_VERSION, g->ns, OP_RESOURCE, g->name, NULL));
    cJSON *p = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(p, "metadata");
    cJSON *ann = cJSON_AddObjectToObject(meta, "annotations");
    if (ann == NULL) {
        cJSON_Delete(p);
        return KCCL_ERR_NO_MEMORY;
    }
    if (text[0])
        cJSON_AddStringToObject(ann, OP_ANN_HANDLED, text);
    else
        cJSON_AddNullToObject(ann, OP_ANN_HANDLED);
    kccl_status_t st = merge_patch(a, path, p, "recording handled failures on the CommGroup");
    cJSON_Delete(p);
    if (st == KCCL_OK)
        a->group_patches++;
    return st;
}

static cJSON *event_object(const op_group_t *g, int warning, const char *reason,
                           const char *message)
{
    char name[OP_GROUP_MAX + 24], now[32];
    unsigned char rnd[8] = {0};
    (void)!getrandom(rnd, sizeof(rnd), GRND_NONBLOCK);
    snprintf(name, sizeof(name), "%s.%02x%02x%02x%02x%02x%02x%02x%02x", g->name, rnd[0], rnd[1],
             rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    op_model_now_rfc3339(now, sizeof(now));
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
    cJSON_AddStringToObject(meta, "namespace", g->ns);
    cJSON_AddStringToObject(obj, "apiVersion", OP_API_VERSION);
    cJSON_AddStringToObject(obj, "kind", OP_KIND);
    cJSON_AddStringToObject(obj, "name", g->name);
    cJSON_AddStringToObject(obj, "namespace", g->ns);
    if (g->uid[0])
        cJSON_AddStringToObject(obj, "uid", g->uid);
    cJSON_AddStringToObject(ev, "type", warning ? "Warning" : "Normal");
    cJSON_AddStringToObject(ev, "reason", reason);
    cJSON_AddStringToObject(ev, "message", message);
    cJSON_AddStringToObject(src, "component", OP_NAME);
    cJSON_AddStringToObject(ev, "reportingComponent", "kccl.io/operator");
    cJSON_AddStringToObject(ev, "firstTimestamp", now);
    cJSON_AddStringToObject(ev, "lastTimestamp", now);
    cJSON_AddNumberToObject(ev, "count", 1);
    return ev;
}

kccl_status_t op_act_event(op_api_t *a, const op_group_t *g, int warning, const char *reason,
                           const char *message)
{
    char path[320];
    kccl_kube_result_t res;
    kccl_kube_opts_t o = opts(a);
    KCCL_CHECK(kccl_kube_path(path, sizeof(path), "v1", g->ns, "events", NULL, NULL));
    cJSON *ev = event_object(g, warning, reason, message);
    if (ev == NULL)
        return KCCL_ERR_NO_MEMORY;
    a->calls++;
    kccl_status_t st = kccl_kube_create(a->kc, path, ev, &o, NULL, &res);
    cJSON_Delete(ev);
    if (st == KCCL_OK)
        a->events++;
    else /* an Event is best effort: the status says the same */
        kccl_log_warn(TOOL, "could not post the %s Event on CommGroup %s/%s (%s: %s)", reason,
                      g->ns, g->name, res.reason, res.message);
    return st;
}
