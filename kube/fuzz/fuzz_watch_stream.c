/*
 * fuzz_watch_stream.c - libFuzzer target for the watch-stream splitter
 * (kube_json_stream.c). The first input byte picks a chunking; the rest is the
 * stream. The property checked: feeding the stream in one piece and feeding it
 * in arbitrary chunks give the same objects, in the same order, and the same
 * verdict - which is exactly what a watch over HTTP chunks relies on.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kube_json_stream.h"

typedef struct {
    uint64_t hash;
    size_t count;
} seen_t;

static int on_object(void *arg, const char *obj, size_t len)
{
    seen_t *s = arg;
    if (len < 2 || obj[0] != '{')
        abort(); /* an object always starts with '{' and has a closing byte */
    s->hash = (s->hash ^ len) * 1099511628211ULL;
    for (size_t i = 0; i < len; i++)
        s->hash = (s->hash ^ (unsigned char)obj[i]) * 1099511628211ULL;
    s->count++;
    return 0;
}

static int run(const uint8_t *data, size_t size, size_t max_len, uint32_t chunking, seen_t *s)
{
    kccl_kube_json_stream_t js;
    kccl_kube_json_stream_init(&js, max_len);
    s->hash = 1469598103934665603ULL;
    s->count = 0;
    int rc = 0;
    size_t off = 0;
    uint32_t x = chunking | 1;
    while (off < size && rc == 0) {
        size_t n = size - off;
        if (chunking != 0) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            n = 1 + x % (chunking % 7 == 0 ? 3 : 64);
            if (n > size - off)
                n = size - off;
        }
        rc = kccl_kube_json_stream_feed(&js, (const char *)data + off, n, on_object, s);
        off += n;
    }
    kccl_kube_json_stream_fini(&js);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint32_t chunking = (uint32_t)data[0] + 1;
    size_t max_len = (data[0] & 1) ? 64 : 1 << 20; /* sometimes exercise the size limit */
    seen_t whole, chunked;
    int rc_whole = run(data + 1, size - 1, max_len, 0, &whole);
    int rc_chunked = run(data + 1, size - 1, max_len, chunking, &chunked);
    if (rc_whole != rc_chunked || whole.count != chunked.count || whole.hash != chunked.hash)
        abort();
    return 0;
}
