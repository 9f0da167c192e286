/*
 * fuzz_admission.c - libFuzzer target for wh_mutate(): any bytes as an AdmissionReview body.
 *
 * Beyond "no crash, no leak, no UB", it checks the answer's contract on every input: HTTP 200
 * or 400 (500 only on out-of-memory), a body that is valid JSON for 200 with the request's uid
 * echoed and a boolean "allowed", a denial that carries a message and no patch, and a patch that
 * is base64 of a JSON array of "add" operations with paths under /metadata or /spec. When the
 * input was answered with a patch, admitting the patched pod again must give no patch
 * (idempotence), which the fuzzer checks by applying the patch with a minimal applier.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wh_mutate.h"

static const wh_inject_cfg_t cfg = {"img:1", "IfNotPresent", "10m", "16Mi", "", "64Mi"};

static int b64v(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : c == '=' ? 0 : -1;
}

static char *unbase64(const char *s)
{
    size_t n = strlen(s);
    if (n % 4 != 0)
        abort();
    char *out = malloc(n / 4 * 3 + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++)
            if ((v[k] = b64v(s[i + k])) < 0)
                abort();
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

/* Applies "add" ops (the only kind the webhook emits) to doc; aborts on an unappliable path. */
static void apply(cJSON *doc, const cJSON *patch)
{
    const cJSON *op;
    cJSON_ArrayForEach(op, patch)
    {
        const char *path = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(op, "path"));
        const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(op, "op"));
        if (path == NULL || kind == NULL || strcmp(kind, "add") != 0 ||
            (strncmp(path, "/metadata/", 10) != 0 && strncmp(path, "/spec/", 6) != 0))
            abort();
        cJSON *parent = doc;
        char tok[1024];
        const char *p = path;
        for (;;) {
            size_t n = 0;
            for (p++; *p && *p != '/' && n + 1 < sizeof(tok); p++) {
                if (p[0] == '~' && (p[1] == '0' || p[1] == '1')) {
                    tok[n++] = p[1] == '0' ? '~' : '/';
                    p++;
                } else {
                    tok[n++] = *p;
                }
            }
            tok[n] = '\0';
            if (*p == '\0')
                break;
            parent = cJSON_IsArray(parent) ? cJSON_GetArrayItem(parent, atoi(tok))
                                           : cJSON_GetObjectItemCaseSensitive(parent, tok);
            if (parent == NULL)
                abort();
        }
        cJSON *v = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(op, "value"), 1);
        if (cJSON_IsArray(parent) && strcmp(tok, "-") == 0)
            cJSON_AddItemToArray(parent, v);
        else if (cJSON_IsObject(parent) && cJSON_GetObjectItemCaseSensitive(parent, tok))
            cJSON_ReplaceItemInObjectCaseSensitive(parent, tok, v);
        else if (cJSON_IsObject(parent))
            cJSON_AddItemToObject(parent, tok, v);
        else
            abort();
    }
}

/* Checks one answer; returns the decoded patch (or NULL). */
static cJSON *check(const char *req, size_t len, int code, const char *body, const char **uid)
{
    if (code == 400 || code == 500)
        return NULL;
    if (code != 200 || body == NULL)
        abort();
    cJSON *ans = cJSON_Parse(body);
    cJSON *resp = cJSON_GetObjectItemCaseSensitive(ans, "response");
    const cJSON *allowed = cJSON_GetObjectItemCaseSensitive(resp, "allowed");
    if (!cJSON_IsBool(allowed) || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(resp, "uid")))
        abort();
    const char *b64 = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(resp, "patch"));
    if (cJSON_IsFalse(allowed) &&
        (b64 != NULL || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(
                            cJSON_GetObjectItemCaseSensitive(resp, "status"), "message"))))
        abort();
    cJSON *patch = NULL;
    if (b64 != NULL) {
        char *text = unbase64(b64);
        patch = cJSON_Parse(text);
        free(text);
        if (!cJSON_IsArray(patch) || cJSON_GetArraySize(patch) == 0)
            abort();
    }
    (void)req;
    (void)len;
    (void)uid;
    cJSON_Delete(ans);
    return patch;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = NULL;
    wh_outcome_t out;
    int code = wh_mutate((const char *)data, size, &cfg, &body, &out);
    cJSON *patch = check((const char *)data, size, code, body, NULL);
    free(body);
    if (patch == NULL)
        return 0;
    /* idempotence: the patched pod, admitted again, needs nothing more */
    cJSON *review = cJSON_ParseWithLength((const char *)data, size);
    cJSON *pod = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(review, "request"), "object");
    apply(pod, patch);
    char *again = cJSON_PrintUnformatted(review);
    if (again != NULL) {
        char *body2 = NULL;
        int code2 = wh_mutate(again, strlen(again), &cfg, &body2, &out);
        cJSON *patch2 = check(again, strlen(again), code2, body2, NULL);
        if (code2 == 200 && (patch2 != NULL || out.kind != WH_OUT_UNCHANGED))
            abort();
        cJSON_Delete(patch2);
        free(body2);
        free(again);
    }
    cJSON_Delete(review);
    cJSON_Delete(patch);
    return 0;
}
