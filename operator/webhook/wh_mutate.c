/*
 * wh_mutate.c - the admission decision for one AdmissionReview (admission.k8s.io/v1).
 *
 * Not a pod CREATE, or no kccl.io/group annotation: allowed, no patch (the configuration's
 * matchConditions normally keep such pods away; this is the safe answer when they do not).
 * Malformed kccl.io annotations: allowed false, the message from wh_validate. Otherwise the
 * operations of wh_inject, base64-encoded; none at all (an injected pod) means no patch, so the
 * API server's reinvocation ends at once. A body that is not an AdmissionReview cannot be
 * answered (there is no uid to echo): HTTP 400, which the API server treats as a webhook failure.
 */
#include "wh_mutate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wh_json.h"
#include "wh_patch.h"

#define WH_REVIEW_VERSION "admission.k8s.io/v1"

static int bad_request(char **body, wh_outcome_t *out, const char *why)
{
    out->kind = WH_OUT_BAD_REQUEST;
    snprintf(out->message, sizeof(out->message), "%s", why);
    size_t n = strlen(why) + 2;
    *body = malloc(n);
    if (*body == NULL)
        return 500;
    snprintf(*body, n, "%s\n", why);
    return 400;
}

/* namespace/name (or generateName*) of the pod, for logs and messages. */
static void describe_pod(const cJSON *request, const cJSON *pod, wh_outcome_t *out)
{
    const cJSON *meta = wh_json_get(pod, "metadata");
    const char *ns = wh_json_str(request, "namespace");
    const char *name = wh_json_str(meta, "name");
    const char *gen = wh_json_str(meta, "generateName");
    if (name == NULL || !*name)
        name = wh_json_str(request, "name");
    snprintf(out->pod, sizeof(out->pod), "%.63s/%.120s%s", ns ? ns : "",
             name && *name ? name
             : gen         ? gen
                           : "?",
             name && *name ? "" : "*");
}

/* The answer: {"apiVersion","kind","response":{uid, allowed, [status], [patchType, patch]}}. */
static int answer(const char *uid, int allowed, const char *message, const cJSON *patch,
                  cJSON *warnings, char **body)
{
    char *patch_text = NULL, *patch_b64 = NULL;
    int rc = 500;
    cJSON *review = cJSON_CreateObject();
    cJSON_AddStringToObject(review, "apiVersion", WH_REVIEW_VERSION);
    cJSON_AddStringToObject(review, "kind", "AdmissionReview");
    cJSON *resp = cJSON_AddObjectToObject(review, "response");
    cJSON_AddStringToObject(resp, "uid", uid);
    cJSON_AddBoolToObject(resp, "allowed", allowed);
    if (message != NULL) {
        cJSON *st = cJSON_AddObjectToObject(resp, "status");
        cJSON_AddStringToObject(st, "status", "Failure");
        cJSON_AddStringToObject(st, "message", message);
        cJSON_AddStringToObject(st, "reason", "BadRequest");
        cJSON_AddNumberToObject(st, "code", 400);
    }
    if (patch != NULL && cJSON_GetArraySize(patch) > 0) {
        patch_text = cJSON_PrintUnformatted(patch);
        patch_b64 =
            patch_text ? wh_base64((const unsigned char *)patch_text, strlen(patch_text)) : NULL;
        if (patch_b64 == NULL)
            goto out;
        cJSON_AddStringToObject(resp, "patchType", "JSONPatch");
        cJSON_AddStringToObject(resp, "patch", patch_b64);
    }
    if (warnings != NULL && cJSON_GetArraySize(warnings) > 0) {
        cJSON_AddItemToObject(resp, "warnings", warnings);
        warnings = NULL;
    }
    *body = cJSON_PrintUnformatted(review);
    rc = *body ? 200 : 500;
out:
    free(patch_b64);
    free(patch_text);
    cJSON_Delete(warnings);
    cJSON_Delete(review);
    return rc;
}

/* Decides for a pod CREATE that carries kccl.io/group. */
static int decide_pod(const char *uid, const cJSON *pod, const wh_inject_cfg_t *cfg, char **body,
                      wh_outcome_t *out)
{
    wh_spec_t spec;
    wh_problem_t pb;
    if (wh_validate(pod, &spec, &pb) != 0) {
        out->kind = WH_OUT_DENIED;
        snprintf(out->message, sizeof(out->message), "%s", pb.message);
        return answer(uid, 0, pb.message, NULL, NULL, body);
    }
    cJSON *patch = cJSON_CreateArray();
    if (patch == NULL)
        return 500;
    kccl_status_t st = wh_inject(pod, &spec, cfg, patch);
    if (st != KCCL_OK) {
        cJSON_Delete(patch);
        if (st == KCCL_ERR_NO_MEMORY)
            return 500;
        out->kind = WH_OUT_DENIED;
        snprintf(out->message, sizeof(out->message),
                 "the pod has no spec: kccl cannot inject "
                 "its sidecar; send a complete pod");
        return answer(uid, 0, out->message, NULL, NULL, body);
    }
    out->ops = cJSON_GetArraySize(patch);
    out->kind = out->ops > 0 ? WH_OUT_INJECTED : WH_OUT_UNCHANGED;
    /* warnings with the injection only: a reinvocation would repeat them */
    cJSON *warnings = out->ops > 0 ? cJSON_CreateArray() : NULL;
    if (warnings != NULL)
        wh_inject_warnings(pod, warnings);
    int rc = answer(uid, 1, NULL, patch, warnings, body);
    cJSON_Delete(patch);
    return rc;
}

int wh_mutate(const char *req, size_t len, const wh_inject_cfg_t *cfg, char **body,
              wh_outcome_t *out)
{
    memset(out, 0, sizeof(*out));
    *body = NULL;
    cJSON *review = cJSON_ParseWithLength(req, len);
    if (review == NULL)
        return bad_request(body, out, "the body is not JSON: send an AdmissionReview");
    int rc;
    const char *api = wh_json_str(review, "apiVersion");
    const cJSON *request = wh_json_get(review, "request");
    const char *uid = wh_json_str(request, "uid");
    if (api == NULL || strcmp(api, WH_REVIEW_VERSION) != 0 || !cJSON_IsObject(request) ||
        uid == NULL || !*uid || strlen(uid) > 128) {
        rc = bad_request(body, out,
                         "not an admission.k8s.io/v1 AdmissionReview with a request "
                         "uid: register the webhook with admissionReviewVersions [v1]");
        goto out;
    }
    snprintf(out->uid, sizeof(out->uid), "%s", uid);
    const cJSON *pod = wh_json_get(request, "object");
    describe_pod(request, pod, out);
    const char *kind = wh_json_str(wh_json_get(request, "kind"), "kind");
    const char *op = wh_json_str(request, "operation");
    const char *sub = wh_json_str(request, "subResource");
    const cJSON *ann = wh_json_get(wh_json_get(pod, "metadata"), "annotations");
    if (kind == NULL || strcmp(kind, "Pod") != 0 || op == NULL || strcmp(op, "CREATE") != 0 ||
        (sub != NULL && *sub) || wh_json_get(ann, WH_ANN_GROUP) == NULL) {
        out->kind = WH_OUT_IGNORED;
        rc = answer(uid, 1, NULL, NULL, NULL, body);
        goto out;
    }
    rc = decide_pod(uid, pod, cfg, body, out);
out:
    cJSON_Delete(review);
    return rc;
}
