/*
 * kube_util.h - helpers shared by the kube modules: a monotonic clock, a
 * growable byte buffer, whole-file reads, base64 decoding, percent-encoding,
 * and freeing of secret-bearing memory. Nothing here knows about HTTP.
 */
#ifndef KCCL_KUBE_UTIL_H
#define KCCL_KUBE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "kccl/kccl_status.h"

/* Monotonic clock, milliseconds. */
int64_t kccl_kube_now_ms(void);

/* Sleeps ms, waking early (returns 1) when *stop becomes nonzero; stop may be NULL. */
int kccl_kube_sleep_ms(int64_t ms, const void *stop);

/* A growable buffer, always NUL-terminated when data != NULL. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
} kccl_kube_buf_t;

int kccl_kube_buf_append(kccl_kube_buf_t *b, const void *p, size_t n); /* 0 or -1 (ENOMEM) */
int kccl_kube_buf_puts(kccl_kube_buf_t *b, const char *s);
int kccl_kube_buf_printf(kccl_kube_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends s percent-encoded for a query value (RFC 3986 unreserved kept). */
int kccl_kube_buf_put_escaped(kccl_kube_buf_t *b, const char *s);
void kccl_kube_buf_free(kccl_kube_buf_t *b);
/* Zeroes the memory before freeing it (for tokens and keys). */
void kccl_kube_buf_free_secret(kccl_kube_buf_t *b);

/*
 * Reads a whole file (at most max bytes) into a NUL-terminated buffer. On
 * failure returns -1 with errno set (EFBIG when larger than max).
 */
int kccl_kube_read_file(const char *path, size_t max, char **out, size_t *out_len);

/*
 * Decodes standard base64 (RFC 4648 section 4); whitespace is ignored, padding
 * optional. Returns 0 and a malloc'ed buffer (NUL-terminated, *out_len bytes
 * before the NUL), or -1 on a bad character or length.
 */
int kccl_kube_base64_decode(const char *in, size_t len, unsigned char **out, size_t *out_len);

/* Frees a secret string after zeroing it. NULL is fine. */
void kccl_kube_free_secret(char *s);
void kccl_kube_free_secret_n(void *p, size_t n);

/* Removes trailing whitespace in place; returns the new length. */
size_t kccl_kube_rtrim(char *s, size_t len);

#endif
