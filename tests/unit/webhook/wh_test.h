/*
 * wh_test.h - helpers for the webhook's unit tests: wrap a pod into an AdmissionReview, run
 * wh_mutate, decode the answer, and apply its JSON patch with a small RFC 6902 "add" applier
 * written for the tests (independent of the code under test), so that each test asserts the
 * pod that the API server would store.
 */
#ifndef KCCL_WH_TEST_H
#define KCCL_WH_TEST_H

#include <cjson/cJSON.h>

#include "kccl_test.h"
#include "wh_mutate.h"

static const wh_inject_cfg_t wht_cfg = {
    "registry.example/kccl-sidecar:t", "Never", "10m", "16Mi", "", "64Mi"};

/* RFC 6901: the unescaped token of a JSON pointer, from *p to the next '/'. */
static inline void wht_token(const char **p, char *out, size_t cap)
{
    size_t n = 0;
    const char *s = *p;
    while (*s && *s != '/' && n + 1 < cap) {
        if (s[0] == '~' && s[1] == '1') {
            out[n++] = '/';
            s += 2;
        } else if (s[0] == '~' && s[1] == '0') {
            out[n++] = '~';
            s += 2;
        } else {
            out[n++] = *s++;
        }
    }
    out[n] = '\0';
    *p = s;
}

/* Applies one "add" to doc; fails the test on anything RFC 6902 would refuse. */
static inline void wht_apply_add(cJSON *doc, const char *path, const cJSON *value)
{
    assert_true(path[0] == '/');
    cJSON *parent = doc;
    const char *p = path;
    char tok[512];
    for (;;) {
        p++; /* the '/' */
        wht_token(&p, tok, sizeof(tok));
        if (*p == '\0')
            break;
        cJSON *next = cJSON_IsArray(parent) ? cJSON_GetArrayItem(parent, atoi(tok))
                                            : cJSON_GetObjectItemCaseSensitive(parent, tok);
        if (next == NULL)
            fail_msg("patch path %s: %s does not exist", path, tok);
        parent = next;
    }
    cJSON *copy = cJSON_Duplicate(value, 1);
    if (cJSON_IsObject(parent)) {
        if (cJSON_GetObjectItemCaseSensitive(parent, tok))
            cJSON_ReplaceItemInObjectCaseSensitive(parent, tok, copy);
        else
            cJSON_AddItemToObject(parent, tok, copy);
    } else if (cJSON_IsArray(parent)) {
        if (strcmp(tok, "-") == 0) {
            cJSON_AddItemToArray(parent, copy);
        } else {
            int idx = atoi(tok);
            if (idx < 0 || idx > cJSON_GetArraySize(parent))
                fail_msg("patch path %s: index out of range", path);
            cJSON_InsertItemInArray(parent, idx, copy);
        }
    } else {
        fail_msg("patch path %s: parent is not a container", path);
    }
}

static inline void wht_apply(cJSON *doc, const cJSON *patch)
{
    const cJSON *op;
    assert_true(cJSON_IsArray(patch));
    cJSON_ArrayForEach(op, patch)
    {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(op, "op");
        const cJSON *path = cJSON_GetObjectItemCaseSensitive(op, "path");
        assert_true(cJSON_IsString(o) && cJSON_IsString(path));
        assert_string_equal(o->valuestring, "add");
        wht_apply_add(doc, path->valuestring, cJSON_GetObjectItemCaseSensitive(op, "value"));
    }
}

static inline int wht_b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Decodes standard padded base64; fails the test on a bad alphabet or length. */
static inline char *wht_unbase64(const char *s)
{
    size_t n = strlen(s);
    assert_true(n % 4 == 0);
    char *out = malloc(n / 4 * 3 + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) {
            v[k] = s[i + k] == '=' ? 0 : wht_b64val(s[i + k]);
            assert_true(v[k] >= 0);
        }
        unsigned x = (unsigned)(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
        out[o++] = (char)(x >> 16);
        if (s[i + 2] != '=')
            out[o++] = (char)(x >> 8);
        if (s[i + 3] != '=')
            out[o++] = (char)x;
    }
    out[o] = '\0';
    return out;
}

typedef struct {
    int http;
    wh_outcome_t out;
    cJSON *response; /* the answer's "response" (owned by review) */
    cJSON *review;
    cJSON *patch; /* decoded, or NULL when the answer has none */
    cJSON *pod;   /* the pod with the patch applied */
} wht_result_t;

static inline void wht_free(wht_result_t *r)
{
    cJSON_Delete(r->review);
    cJSON_Delete(r->patch);
    cJSON_Delete(r->pod);
    memset(r, 0, sizeof(*r));
}

/* Runs wh_mutate on raw bytes. */
static inline void wht_mutate_raw(const char *body, size_t len, wht_result_t *r)
{
    memset(r, 0, sizeof(*r));
    char *answer = NULL;
    r->http = wh_mutate(body, len, &wht_cfg, &answer, &r->out);
    assert_non_null(answer);
    if (r->http == 200) {
        r->review = cJSON_Parse(answer);
        assert_non_null(r->review);
        r->response = cJSON_GetObjectItemCaseSensitive(r->review, "response");
        assert_non_null(r->response);
    }
    free(answer);
}

/* Wraps pod (JSON text) into a CREATE review, runs wh_mutate, decodes and applies the patch. */
static inline void wht_mutate_pod(const char *pod_json, wht_result_t *r)
{
    cJSON *pod = cJSON_Parse(pod_json);
    if (pod == NULL)
        fail_msg("test pod is not JSON: %s", pod_json);
    cJSON *review = cJSON_CreateObject();
    cJSON_AddStringToObject(review, "apiVersion", "admission.k8s.io/v1");
    cJSON_AddStringToObject(review, "kind", "AdmissionReview");
    cJSON *req = cJSON_AddObjectToObject(review, "request");
    cJSON_AddStringToObject(req, "uid", "0f6c4b1e-uid-1");
    cJSON *kind = cJSON_AddObjectToObject(req, "kind");
    cJSON_AddStringToObject(kind, "group", "");
    cJSON_AddStringToObject(kind, "version", "v1");
    cJSON_AddStringToObject(kind, "kind", "Pod");
    cJSON_AddStringToObject(req, "namespace", "ns1");
    cJSON_AddStringToObject(req, "operation", "CREATE");
    cJSON_AddItemToObject(req, "object", cJSON_Duplicate(pod, 1));
    char *text = cJSON_PrintUnformatted(review);
    cJSON_Delete(review);
    wht_mutate_raw(text, strlen(text), r);
    free(text);
    assert_int_equal(r->http, 200);
    const cJSON *uid = cJSON_GetObjectItemCaseSensitive(r->response, "uid");
    assert_true(cJSON_IsString(uid));
    assert_string_equal(uid->valuestring, "0f6c4b1e-uid-1");
    const cJSON *b64 = cJSON_GetObjectItemCaseSensitive(r->response, "patch");
    if (cJSON_IsString(b64)) {
        const cJSON *pt = cJSON_GetObjectItemCaseSensitive(r->response, "patchType");
        assert_true(cJSON_IsString(pt));
        assert_string_equal(pt->valuestring, "JSONPatch");
        char *ptext = wht_unbase64(b64->valuestring);
        r->patch = cJSON_Parse(ptext);
        free(ptext);
        assert_non_null(r->patch);
        wht_apply(pod, r->patch);
    }
    r->pod = pod;
}

static inline int wht_allowed(const wht_result_t *r)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r->response, "allowed"));
}

/* The denial message ("" when none). */
static inline const char *wht_message(const wht_result_t *r)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(r->response, "status");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(st, "message");
    return cJSON_IsString(m) ? m->valuestring : "";
}

/* Follows a dotted path of object keys and array indexes: "spec.containers.0.name". */
static inline cJSON *wht_at(const cJSON *doc, const char *dotted)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", dotted);
    const cJSON *cur = doc;
    for (char *save = NULL, *t = strtok_r(buf, ".", &save); t && cur;
         t = strtok_r(NULL, ".", &save)) {
        if (cJSON_IsArray(cur))
            cur = cJSON_GetArrayItem(cur, atoi(t));
        else
            cur = cJSON_GetObjectItemCaseSensitive(cur, t);
    }
    return (cJSON *)cur;
}

static inline const char *wht_str(const cJSON *doc, const char *dotted)
{
    const cJSON *v = wht_at(doc, dotted);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* obj[key] as a string, key taken whole (label and annotation keys have dots). */
static inline const char *wht_key(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The item of array named name, or NULL. */
static inline cJSON *wht_named(const cJSON *array, const char *name)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, array)
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(it, "name");
        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
            return (cJSON *)it;
    }
    return NULL;
}

/* How many items of array are named name. */
static inline int wht_count_named(const cJSON *array, const char *name)
{
    int n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, array)
    {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name");
        n += cJSON_IsString(nm) && strcmp(nm->valuestring, name) == 0;
    }
    return n;
}

#endif
