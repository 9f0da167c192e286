/*
 * kube_json_stream.c - the chunk-tolerant splitter of watch streams (see
 * kube_json_stream.h). An object that lies wholly inside one chunk is handed
 * to the callback in place; only objects spanning chunks are copied.
 */
#include "kube_json_stream.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

void kccl_kube_json_stream_init(kccl_kube_json_stream_t *s, size_t max_len)
{
    memset(s, 0, sizeof(*s));
    s->max_len = max_len ? max_len : KCCL_KUBE_JSON_STREAM_MAX_DEFAULT;
}

void kccl_kube_json_stream_reset(kccl_kube_json_stream_t *s)
{
    s->len = 0;
    s->depth = 0;
    s->in_string = s->escape = 0;
    s->failed = 0;
    s->offset = 0;
}

void kccl_kube_json_stream_fini(kccl_kube_json_stream_t *s)
{
    free(s->buf);
    s->buf = NULL;
    s->len = s->cap = 0;
}

size_t kccl_kube_json_stream_pending(const kccl_kube_json_stream_t *s)
{
    return s->depth > 0 ? s->len : 0;
}

static int stream_fail(kccl_kube_json_stream_t *s, kccl_status_t st)
{
    s->failed = 1;
    return st;
}

static int too_long(kccl_kube_json_stream_t *s)
{
    kccl_error_set("watch stream: an event is larger than %zu bytes (at stream offset %llu); "
                   "narrow the watch with a label or field selector",
                   s->max_len, (unsigned long long)s->offset);
    return stream_fail(s, KCCL_ERR_PROTOCOL);
}

/* Appends data[from, to) to the partial object. */
static int keep(kccl_kube_json_stream_t *s, const char *data, size_t from, size_t to)
{
    size_t n = to - from;
    if (s->len + n > s->max_len)
        return too_long(s);
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n)
            cap *= 2;
        char *p = realloc(s->buf, cap);
        if (p == NULL) {
            kccl_error_set("watch stream: out of memory buffering a %zu-byte event", s->len + n);
            return stream_fail(s, KCCL_ERR_NO_MEMORY);
        }
        s->buf = p;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data + from, n);
    s->len += n;
    return KCCL_OK;
}

/* The object ending at data[end] is complete: hand it over. */
static int complete(kccl_kube_json_stream_t *s, const char *data, size_t start, size_t end,
                    kccl_kube_json_fn fn, void *arg)
{
    int rc;
    s->objects++;
    if (s->len == 0) {
        if (end - start + 1 > s->max_len)
            return too_long(s);
        return fn(arg, data + start, end - start + 1);
    }
    rc = keep(s, data, start, end + 1);
    if (rc != KCCL_OK)
        return rc;
    size_t len = s->len;
    s->len = 0;
    return fn(arg, s->buf, len);
}

int kccl_kube_json_stream_feed(kccl_kube_json_stream_t *s, const char *data, size_t n,
                               kccl_kube_json_fn fn, void *arg)
{
    if (s->failed) {
        kccl_error_set("watch stream: fed after an error; reset it first");
        return KCCL_ERR_PROTOCOL;
    }
    size_t start = 0; /* where the current object's bytes in this chunk begin */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)data[i];
        if (s->depth == 0) {
            if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
                continue;
            if (c != '{') {
                kccl_error_set("watch stream: unexpected byte 0x%02x at stream offset %llu "
                               "(expected '{' starting an event)",
                               c, (unsigned long long)s->offset + i);
                return stream_fail(s, KCCL_ERR_PROTOCOL);
            }
            s->depth = 1;
            start = i;
            continue;
        }
        if (s->in_string) {
            if (s->escape)
                s->escape = 0;
            else if (c == '\\')
                s->escape = 1;
            else if (c == '"')
                s->in_string = 0;
            continue;
        }
        if (c == '"') {
            s->in_string = 1;
        } else if (c == '{' || c == '[') {
            s->depth++;
        } else if (c == '}' || c == ']') {
            if (--s->depth == 0) {
                int rc = complete(s, data, start, i, fn, arg);
                if (rc != 0) {
                    s->offset += i + 1;
                    return rc;
                }
            }
        }
    }
    if (s->depth > 0) {
        int rc = keep(s, data, start, n);
        if (rc != KCCL_OK)
            return rc;
    }
    s->offset += n;
    return KCCL_OK;
}
