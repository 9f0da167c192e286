/*
 * kube_api.c - the verbs of kube.h (get, list, create, replace, patch,
 * delete) on top of kccl_kube_http_call, plus apiserver path building.
 * Bodies in and out are JSON; a 2xx body that is not JSON is a protocol error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kccl/kube.h"
#include "kube_http.h"
#include "kube_list.h"
#include "kube_status.h"

static kccl_status_t parse_body(kccl_kube_client_t c, const kccl_kube_req_t *req,
                                kccl_kube_resp_t *resp, cJSON **out, kccl_kube_result_t *res)
{
    if (out == NULL)
        return KCCL_OK;
    cJSON *j = cJSON_ParseWithLength(resp->body.data ? resp->body.data : "", resp->body.len);
    if (j == NULL) {
        kccl_kube_result_t local = {0};
        kccl_kube_result_transport(res ? res : &local, "Protocol",
                                   "the apiserver's answer is not JSON");
        return kccl_kube_http_fail(c, req, KCCL_ERR_PROTOCOL, res ? res : &local, NULL);
    }
    *out = j;
    return KCCL_OK;
}

static kccl_status_t do_call(kccl_kube_client_t c, kccl_kube_req_t *req,
                             const kccl_kube_opts_t *opts, cJSON **out, kccl_kube_result_t *res)
{
    kccl_kube_resp_t resp = {0};
    if (c == NULL || req->path == NULL || req->path[0] != '/')
        KCCL_FAIL(KUBE, KCCL_ERR_INVALID_ARG,
                  "kube %s: no client or a path not starting "
                  "with '/' (%s)",
                  req->method, req->path ? req->path : "NULL");
    kccl_status_t st = kccl_kube_http_call(c, req, opts, &resp, res);
    if (st == KCCL_OK)
        st = parse_body(c, req, &resp, out, res);
    kccl_kube_resp_free(&resp);
    return st;
}

kccl_status_t kccl_kube_get(kccl_kube_client_t c, const char *path, const kccl_kube_opts_t *opts,
                            cJSON **out, kccl_kube_result_t *res)
{
    kccl_kube_req_t req = {.method = "GET", .path = path, .idempotent = 1};
    return do_call(c, &req, opts, out, res);
}

kccl_status_t kccl_kube_list(kccl_kube_client_t c, const char *path,
                             const kccl_kube_list_opts_t *lo, const kccl_kube_opts_t *opts,
                             cJSON **out, kccl_kube_result_t *res)
{
    kccl_kube_buf_t full = {0};
    if (path == NULL)
        KCCL_FAIL(KUBE, KCCL_ERR_INVALID_ARG, "kube LIST: no path");
    if (kccl_kube_list_url(&full, path, lo, 0, NULL, 0) != 0)
        KCCL_FAIL(KUBE, KCCL_ERR_NO_MEMORY, "kube LIST %s: out of memory", path);
    kccl_kube_req_t req = {.method = "GET", .path = full.data, .idempotent = 1};
    kccl_status_t st = do_call(c, &req, opts, out, res);
    kccl_kube_buf_free(&full);
    return st;
}

static kccl_status_t with_body(kccl_kube_client_t c, const char *method, const char *path,
                               const char *ctype, const char *text, int idempotent,
                               const kccl_kube_opts_t *opts, cJSON **out, kccl_kube_result_t *res)
{
    kccl_kube_req_t req = {.method = method,
                           .path = path,
                           .content_type = ctype,
                           .body = text,
                           .body_len = strlen(text),
                           .idempotent = idempotent};
    return do_call(c, &req, opts, out, res);
}

static kccl_status_t with_json(kccl_kube_client_t c, const char *method, const char *path,
                               const cJSON *body, int idempotent, const kccl_kube_opts_t *opts,
                               cJSON **out, kccl_kube_result_t *res)
{
    if (body == NULL)
        KCCL_FAIL(KUBE, KCCL_ERR_INVALID_ARG, "kube %s %s: no body", method, path ? path : "");
    char *text = cJSON_PrintUnformatted(body);
    if (text == NULL)
        KCCL_FAIL(KUBE, KCCL_ERR_NO_MEMORY, "kube %s %s: out of memory", method, path ? path : "");
    kccl_status_t st =
        with_body(c, method, path, "application/json", text, idempotent, opts, out, res);
    cJSON_free(text);
    return st;
}

kccl_status_t kccl_kube_create(kccl_kube_client_t c, const char *path, const cJSON *body,
                               const kccl_kube_opts_t *opts, cJSON **out, kccl_kube_result_t *res)
{
    return with_json(c, "POST", path, body, 0, opts, out, res);
}

kccl_status_t kccl_kube_replace(kccl_kube_client_t c, const char *path, const cJSON *body,
                                const kccl_kube_opts_t *opts, cJSON **out, kccl_kube_result_t *res)
{
    return with_json(c, "PUT", path, body, 1, opts, out, res);
}

kccl_status_t kccl_kube_patch(kccl_kube_client_t c, const char *path, kccl_kube_patch_t type,
                              const char *patch, const kccl_kube_opts_t *opts, cJSON **out,
                              kccl_kube_result_t *res)
{
    static const char *const ctypes[] = {
        [KCCL_KUBE_PATCH_MERGE] = "application/merge-patch+json",
        [KCCL_KUBE_PATCH_JSON] = "application/json-patch+json",
        [KCCL_KUBE_PATCH_STRATEGIC] = "application/strategic-merge-patch+json",
    };
    if ((int)type < 0 || (size_t)type >= sizeof(ctypes) / sizeof(ctypes[0]) || patch == NULL)
        KCCL_FAIL(KUBE, KCCL_ERR_INVALID_ARG, "kube PATCH %s: bad patch type %d or no patch",
                  path ? path : "", (int)type);
    /* A JSON patch may append to lists: not safe to repeat after an ambiguous failure. */
    return with_body(c, "PATCH", path, ctypes[type], patch, type != KCCL_KUBE_PATCH_JSON, opts, out,
                     res);
}

kccl_status_t kccl_kube_delete(kccl_kube_client_t c, const char *path, const kccl_kube_opts_t *opts,
                               cJSON **out, kccl_kube_result_t *res)
{
    kccl_kube_req_t req = {.method = "DELETE", .path = path, .idempotent = 1};
    return do_call(c, &req, opts, out, res);
}

/* ------------------------------------------------------------------ paths */

static int segment_ok(const char *s)
{
    if (s == NULL || s[0] == '\0' || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return 0;
    return strpbrk(s, "/?#% \t\r\n") == NULL;
}

kccl_status_t kccl_kube_path(char *buf, size_t len, const char *group_version, const char *ns,
                             const char *resource, const char *name, const char *subresource)
{
    if (buf == NULL || len == 0 || group_version == NULL || group_version[0] == '\0' ||
        !segment_ok(resource) || (ns && !segment_ok(ns)) || (name && !segment_ok(name)) ||
        (subresource && (!segment_ok(subresource) || !name)))
        KCCL_FAIL(KUBE, KCCL_ERR_INVALID_ARG,
                  "kube path: bad segment (group/version \"%s\", namespace \"%s\", resource "
                  "\"%s\", name \"%s\", subresource \"%s\")",
                  group_version ? group_version : "", ns ? ns : "", resource ? resource : "",
                  name ? name : "", subresource ? subresource : "");
    const char *slash = strchr(group_version, '/');
    if (slash && (slash == group_version || slash[1] == '\0' || strchr(slash + 1, '/')))
        KCCL_FAIL(KUBE, KCCL_ERR_INVALID_ARG, "kube path: bad group/version \"%s\"", group_version);
    int n = snprintf(buf, len, "%s/%s%s%s/%s%s%s%s%s", slash ? "/apis" : "/api", group_version,
                     ns ? "/namespaces/" : "", ns ? ns : "", resource, name ? "/" : "",
                     name ? name : "", subresource ? "/" : "", subresource ? subresource : "");
    if (n < 0 || (size_t)n >= len)
        KCCL_FAIL(KUBE, KCCL_ERR_INVALID_ARG, "kube path: %zu bytes are not enough", len);
    return KCCL_OK;
}
