/*
 * wh_patch.c - RFC 6902 "add" operations, RFC 6901 pointer escaping and base64 for the
 * AdmissionReview answer. The webhook only ever adds: it never replaces or removes what the
 * user wrote, which is what keeps a re-invocation harmless.
 */
#include "wh_patch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int wh_patch_escape(const char *key, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = key; *p; p++) {
        const char *rep = *p == '~' ? "~0" : *p == '/' ? "~1" : NULL;
        size_t need = rep ? 2 : 1;
        if (n + need >= cap)
            return -1;
        if (rep) {
            out[n++] = rep[0];
            out[n++] = rep[1];
        } else {
            out[n++] = *p;
        }
    }
    if (n >= cap)
        return -1;
    out[n] = '\0';
    return 0;
}

kccl_status_t wh_patch_add(cJSON *patch, const char *path, cJSON *value)
{
    cJSON *op = cJSON_CreateObject();
    if (op == NULL || value == NULL || !cJSON_AddStringToObject(op, "op", "add") ||
        !cJSON_AddStringToObject(op, "path", path)) {
        cJSON_Delete(op);
        cJSON_Delete(value);
        return KCCL_ERR_NO_MEMORY;
    }
    cJSON_AddItemToObject(op, "value", value);
    cJSON_AddItemToArray(patch, op);
    return KCCL_OK;
}

kccl_status_t wh_patch_add_key(cJSON *patch, const char *parent, const char *key, cJSON *value)
{
    char esc[512], path[640];
    if (wh_patch_escape(key, esc, sizeof(esc)) != 0 ||
        snprintf(path, sizeof(path), "%s/%s", parent, esc) >= (int)sizeof(path)) {
        cJSON_Delete(value);
        return KCCL_ERR_INVALID_ARG;
    }
    return wh_patch_add(patch, path, value);
}

char *wh_base64(const unsigned char *data, size_t len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t olen = 4 * ((len + 2) / 3);
    char *out = malloc(olen + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)data[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)data[i + 1] << 8;
        if (i + 2 < len)
            v |= data[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}
