/*
 * kube_json_stream.h - splits a watch stream into whole JSON objects.
 *
 * The apiserver sends one JSON object per watch event, newline-terminated, in
 * HTTP chunks whose boundaries have nothing to do with the events: a chunk may
 * end inside a string, hold several events, or a single byte. The splitter
 * scans bytes with a small state machine (object depth, inside-string,
 * after-backslash), so it finds object boundaries whatever the chunking and
 * whether or not objects are separated by newlines or pretty-printed.
 * It does not validate JSON beyond that: the caller parses each object.
 *
 * Ownership: the splitter owns its buffer; the object text passed to the
 * callback is valid during the callback only. Not thread-safe (one stream).
 */
#ifndef KCCL_KUBE_JSON_STREAM_H
#define KCCL_KUBE_JSON_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "kccl/kccl_status.h"

#define KCCL_KUBE_JSON_STREAM_MAX_DEFAULT ((size_t)16 << 20) /* 16 MiB per object */

/*
 * Receives one complete top-level object (text from '{' to its '}', not
 * NUL-terminated). Return 0 to go on; anything else stops the feed, which
 * returns that value.
 */
typedef int (*kccl_kube_json_fn)(void *arg, const char *obj, size_t len);

typedef struct {
    char *buf; /* the incomplete object so far */
    size_t len, cap;
    size_t max_len; /* an object longer than this is an error */
    uint32_t depth; /* nesting depth of {} and [] inside the current object */
    uint8_t in_string, escape;
    uint8_t failed;  /* sticky after an error, until reset */
    uint64_t offset; /* bytes consumed since init/reset (for messages) */
    uint64_t objects;
} kccl_kube_json_stream_t;

/* max_len 0 means KCCL_KUBE_JSON_STREAM_MAX_DEFAULT. */
void kccl_kube_json_stream_init(kccl_kube_json_stream_t *s, size_t max_len);
/* Forgets any partial object (a new HTTP stream begins). */
void kccl_kube_json_stream_reset(kccl_kube_json_stream_t *s);
void kccl_kube_json_stream_fini(kccl_kube_json_stream_t *s);

/*
 * Consumes n bytes, calling fn for each object completed. Returns KCCL_OK,
 * the callback's nonzero value, or KCCL_ERR_PROTOCOL (a byte other than
 * whitespace between objects, an object over max_len) or KCCL_ERR_NO_MEMORY,
 * with kccl_last_error() set.
 */
int kccl_kube_json_stream_feed(kccl_kube_json_stream_t *s, const char *data, size_t n,
                               kccl_kube_json_fn fn, void *arg);

/* Bytes of an incomplete object held (nonzero at the end of a stream: truncated). */
size_t kccl_kube_json_stream_pending(const kccl_kube_json_stream_t *s);

#endif
