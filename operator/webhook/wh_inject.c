/*
 * wh_inject.c - builds the injection (wh_inject.h) as JSON-patch "add" operations.
 *
 * The webhook only adds: what the user wrote is never replaced, except serviceAccountName
 * "default" (the contract: the sidecar needs its own ServiceAccount's Role). An env variable,
 * mount or volume whose name is already taken is left as the user wrote it, and so is a mount
 * path already in use; a re-invocation therefore finds nothing to add and answers no patch.
 */
#include "wh_inject.h"

#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "wh_json.h"
#include "wh_patch.h"

/* 1 when array holds an object whose key equals value. */
static int has_named(const cJSON *array, const char *key, const char *value)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, array)
    {
        const char *v = wh_json_str(it, key);
        if (v != NULL && value != NULL && strcmp(v, value) == 0)
            return 1;
    }
    return 0;
}

static cJSON *env_field(const char *name, const char *field)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "name", name);
    cJSON *from = cJSON_AddObjectToObject(e, "valueFrom");
    cJSON *ref = cJSON_AddObjectToObject(from, "fieldRef");
    cJSON_AddStringToObject(ref, "fieldPath", field);
    return e;
}

static cJSON *env_value(const char *name, const char *value)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "name", name);
    cJSON_AddStringToObject(e, "value", value);
    return e;
}

static cJSON *mount(const char *name, const char *path, int read_only)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "name", name);
    cJSON_AddStringToObject(m, "mountPath", path);
    if (read_only)
        cJSON_AddTrueToObject(m, "readOnly");
    return m;
}

/* Adds each item of want (consumed) that array_path lacks, by the item's key, or the whole
 * array when the pod has none. */
static kccl_status_t add_missing(cJSON *patch, const cJSON *have, const char *array_path,
                                 cJSON *want, const char *key, const char *key2)
{
    char path[256];
    if (!cJSON_IsArray(have))
        return wh_patch_add(patch, array_path, want);
    snprintf(path, sizeof(path), "%s/-", array_path);
    kccl_status_t st = KCCL_OK;
    cJSON *it;
    while (st == KCCL_OK && (it = cJSON_DetachItemFromArray(want, 0)) != NULL) {
        const char *k = wh_json_str(it, key), *k2 = key2 ? wh_json_str(it, key2) : NULL;
        if (has_named(have, key, k) || (k2 && has_named(have, key2, k2)))
            cJSON_Delete(it);
        else
            st = wh_patch_add(patch, path, it);
    }
    cJSON_Delete(want);
    return st;
}

static void set_str(cJSON *obj, const char *key, const char *value)
{
    if (value != NULL && *value)
        cJSON_AddStringToObject(obj, key, value);
}

static cJSON *sidecar_resources(const wh_inject_cfg_t *cfg)
{
    cJSON *res = cJSON_CreateObject();
    cJSON *req = cJSON_AddObjectToObject(res, "requests");
    set_str(req, "cpu", cfg->cpu_request);
    set_str(req, "memory", cfg->memory_request);
    cJSON *lim = cJSON_AddObjectToObject(res, "limits");
    set_str(lim, "cpu", cfg->cpu_limit);
    set_str(lim, "memory", cfg->memory_limit);
    if (cJSON_GetArraySize(req) == 0)
        cJSON_DeleteItemFromObject(res, "requests");
    if (cJSON_GetArraySize(lim) == 0)
        cJSON_DeleteItemFromObject(res, "limits");
    return res;
}

static cJSON *sidecar_container(const wh_inject_cfg_t *cfg)
{
    static const char *const probe[] = {"kccl-sidecar", "probe"};
    static const char *const args[] = {"run"};
    static const char *const drop[] = {"ALL"};
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "name", WH_SIDECAR_NAME);
    set_str(c, "image", cfg->image);
    set_str(c, "imagePullPolicy", cfg->pull_policy);
    cJSON_AddItemToObject(c, "args", cJSON_CreateStringArray(args, 1));
    cJSON_AddStringToObject(c, "restartPolicy", "Always");
    cJSON *env = cJSON_AddArrayToObject(c, "env");
    cJSON_AddItemToArray(env, env_field("POD_NAME", "metadata.name"));
    cJSON_AddItemToArray(env, env_field("POD_NAMESPACE", "metadata.namespace"));
    cJSON_AddItemToArray(env, env_field("POD_UID", "metadata.uid"));
    cJSON_AddItemToArray(env, env_field("POD_IP", "status.podIP"));
    cJSON_AddItemToArray(env, env_field("NODE_NAME", "spec.nodeName"));
    cJSON_AddItemToArray(env, env_value("KCCL_BOOTSTRAP_FILE", WH_BOOTSTRAP_FILE));
    cJSON_AddItemToArray(env, env_value("KCCL_GROUP_SECRET_FILE", WH_SECRET_FILE));
    cJSON *mounts = cJSON_AddArrayToObject(c, "volumeMounts");
    cJSON_AddItemToArray(mounts, mount(WH_VOL_RUN, WH_RUN_DIR, 0));
    cJSON *rp = cJSON_AddObjectToObject(c, "readinessProbe");
    cJSON *exec = cJSON_AddObjectToObject(rp, "exec");
    cJSON_AddItemToObject(exec, "command", cJSON_CreateStringArray(probe, 2));
    cJSON_AddNumberToObject(rp, "periodSeconds", 2);
    cJSON_AddItemToObject(c, "resources", sidecar_resources(cfg));
    cJSON *sc = cJSON_AddObjectToObject(c, "securityContext");
    cJSON_AddTrueToObject(sc, "runAsNonRoot");
    cJSON_AddNumberToObject(sc, "runAsUser", WH_SIDECAR_UID);
    cJSON_AddNumberToObject(sc, "runAsGroup", WH_SIDECAR_UID);
    cJSON_AddFalseToObject(sc, "allowPrivilegeEscalation");
    cJSON_AddTrueToObject(sc, "readOnlyRootFilesystem");
    cJSON *caps = cJSON_AddObjectToObject(sc, "capabilities");
    cJSON_AddItemToObject(caps, "drop", cJSON_CreateStringArray(drop, 1));
    cJSON *sp = cJSON_AddObjectToObject(sc, "seccompProfile");
    cJSON_AddStringToObject(sp, "type", "RuntimeDefault");
    return c;
}

static cJSON *volumes(const wh_spec_t *spec)
{
    char secret[sizeof(WH_SECRET_PREFIX) + WH_GROUP_MAX];
    snprintf(secret, sizeof(secret), WH_SECRET_PREFIX "%s", spec->group);
    cJSON *v = cJSON_CreateArray();
    cJSON *run = cJSON_CreateObject();
    cJSON_AddStringToObject(run, "name", WH_VOL_RUN);
    cJSON_AddObjectToObject(run, "emptyDir");
    cJSON_AddItemToArray(v, run);
    cJSON *sec = cJSON_CreateObject();
    cJSON_AddStringToObject(sec, "name", WH_VOL_SECRET);
    cJSON *s = cJSON_AddObjectToObject(sec, "secret");
    cJSON_AddStringToObject(s, "secretName", secret);
    /* 0440, not the default 0644: the runtime warns about a world-readable secret. A
     * non-root application reads it through the pod's securityContext.fsGroup. */
    cJSON_AddNumberToObject(s, "defaultMode", 0440);
    cJSON_AddItemToArray(v, sec);
    return v;
}

static cJSON *app_env(void)
{
    cJSON *env = cJSON_CreateArray();
    cJSON_AddItemToArray(env, env_value("KCCL_BOOTSTRAP_FILE", WH_BOOTSTRAP_FILE));
    cJSON_AddItemToArray(env, env_value("KCCL_GROUP_SECRET_FILE", WH_SECRET_FILE));
    cJSON_AddItemToArray(env, env_field("POD_NAME", "metadata.name"));
    cJSON_AddItemToArray(env, env_field("POD_NAMESPACE", "metadata.namespace"));
    cJSON_AddItemToArray(env, env_field("POD_IP", "status.podIP"));
    cJSON_AddItemToArray(env, env_field("KCCL_NODE_NAME", "spec.nodeName"));
    return env;
}

static cJSON *app_mounts(void)
{
    cJSON *m = cJSON_CreateArray();
    cJSON_AddItemToArray(m, mount(WH_VOL_RUN, WH_RUN_DIR, 1));
    cJSON_AddItemToArray(m, mount(WH_VOL_SECRET, WH_SECRET_DIR, 1));
    return m;
}

static kccl_status_t inject_containers(const cJSON *pod_spec, cJSON *patch)
{
    const cJSON *containers = wh_json_get(pod_spec, "containers");
    const cJSON *c;
    int i = -1;
    char path[96];
    cJSON_ArrayForEach(c, containers)
    {
        i++;
        const char *name = wh_json_str(c, "name");
        if (!cJSON_IsObject(c) || (name != NULL && strcmp(name, WH_SIDECAR_NAME) == 0))
            continue;
        snprintf(path, sizeof(path), "/spec/containers/%d/env", i);
        KCCL_CHECK(add_missing(patch, wh_json_get(c, "env"), path, app_env(), "name", NULL));
        snprintf(path, sizeof(path), "/spec/containers/%d/volumeMounts", i);
        KCCL_CHECK(add_missing(patch, wh_json_get(c, "volumeMounts"), path, app_mounts(), "name",
                               "mountPath"));
    }
    return KCCL_OK;
}

static kccl_status_t inject_meta(const cJSON *meta, const wh_spec_t *spec, cJSON *patch)
{
    char rank[32];
    snprintf(rank, sizeof(rank), "%ld", spec->rank.rank);
    const cJSON *labels = wh_json_get(meta, "labels");
    if (!cJSON_IsObject(labels)) {
        cJSON *l = cJSON_CreateObject();
        cJSON_AddStringToObject(l, WH_LABEL_GROUP, spec->group);
        cJSON_AddStringToObject(l, WH_LABEL_RANK, rank);
        KCCL_CHECK(wh_patch_add(patch, "/metadata/labels", l));
    } else {
        if (wh_json_get(labels, WH_LABEL_GROUP) == NULL)
            KCCL_CHECK(wh_patch_add_key(patch, "/metadata/labels", WH_LABEL_GROUP,
                                        cJSON_CreateString(spec->group)));
        if (wh_json_get(labels, WH_LABEL_RANK) == NULL)
            KCCL_CHECK(wh_patch_add_key(patch, "/metadata/labels", WH_LABEL_RANK,
                                        cJSON_CreateString(rank)));
    }
    if (!spec->rank.from_annotation) /* the annotations object exists: it holds the group */
        KCCL_CHECK(wh_patch_add_key(patch, "/metadata/annotations", WH_ANN_RANK,
                                    cJSON_CreateString(rank)));
    return KCCL_OK;
}

kccl_status_t wh_inject(const cJSON *pod, const wh_spec_t *spec, const wh_inject_cfg_t *cfg,
                        cJSON *patch)
{
    const cJSON *pod_spec = wh_json_get(pod, "spec");
    if (!cJSON_IsObject(pod_spec))
        return KCCL_ERR_INVALID_ARG;
    KCCL_CHECK(inject_meta(wh_json_get(pod, "metadata"), spec, patch));
    static const char *const sa_fields[] = {"serviceAccountName", "serviceAccount"};
    for (int i = 0; i < 2; i++) {
        const cJSON *sa = wh_json_get(pod_spec, sa_fields[i]);
        int unset = sa == NULL || (cJSON_IsString(sa) &&
                                   (!*sa->valuestring || !strcmp(sa->valuestring, "default")));
        if ((i == 0 && unset) || (i == 1 && sa != NULL && unset)) {
            char path[64];
            snprintf(path, sizeof(path), "/spec/%s", sa_fields[i]);
            KCCL_CHECK(wh_patch_add(patch, path, cJSON_CreateString(WH_SIDECAR_SA)));
        }
    }
    KCCL_CHECK(add_missing(patch, wh_json_get(pod_spec, "volumes"), "/spec/volumes", volumes(spec),
                           "name", NULL));
    const cJSON *init = wh_json_get(pod_spec, "initContainers");
    if (!has_named(init, "name", WH_SIDECAR_NAME) &&
        !has_named(wh_json_get(pod_spec, "containers"), "name", WH_SIDECAR_NAME)) {
        cJSON *one = cJSON_CreateArray();
        cJSON_AddItemToArray(one, sidecar_container(cfg));
        KCCL_CHECK(add_missing(patch, init, "/spec/initContainers", one, "name", NULL));
    }
    return inject_containers(pod_spec, patch);
}

void wh_inject_warnings(const cJSON *pod, cJSON *warnings)
{
    const cJSON *spec = wh_json_get(pod, "spec");
    char text[400];
    if (cJSON_IsFalse(wh_json_get(spec, "automountServiceAccountToken")))
        cJSON_AddItemToArray(warnings,
                             cJSON_CreateString("spec.automountServiceAccountToken is false: "
                                                "kccl-sidecar cannot reach the API server "
                                                "without its token; remove the field"));
    const char *sa = wh_json_str(spec, "serviceAccountName");
    if (sa != NULL && *sa && strcmp(sa, "default") != 0 && strcmp(sa, WH_SIDECAR_SA) != 0) {
        snprintf(text, sizeof(text),
                 "the pod runs as ServiceAccount %.100s, not " WH_SIDECAR_SA
                 ": bind it to the kccl-sidecar Role (deploy/rbac/kccl-sidecar.yaml) or the "
                 "sidecar's API calls are refused",
                 sa);
        cJSON_AddItemToArray(warnings, cJSON_CreateString(text));
    }
}
