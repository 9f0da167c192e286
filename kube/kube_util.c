/*
 * kube_util.c - small helpers for the kube modules (see kube_util.h).
 */
#include "kube_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t kccl_kube_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int kccl_kube_sleep_ms(int64_t ms, const void *stop_ptr)
{
    const atomic_int *stop = stop_ptr;
    int64_t end = kccl_kube_now_ms() + ms;
    for (;;) {
        if (stop && atomic_load(stop))
            return 1;
        int64_t left = end - kccl_kube_now_ms();
        if (left <= 0)
            return 0;
        if (left > 50)
            left = 50; /* poll the stop flag every 50 ms */
        struct timespec ts = {.tv_sec = left / 1000, .tv_nsec = (left % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
}

static int buf_reserve(kccl_kube_buf_t *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return 0;
    if (extra > SIZE_MAX / 2 - b->len)
        return -1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (p == NULL)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int kccl_kube_buf_append(kccl_kube_buf_t *b, const void *p, size_t n)
{
    if (buf_reserve(b, n) != 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int kccl_kube_buf_puts(kccl_kube_buf_t *b, const char *s)
{
    return kccl_kube_buf_append(b, s, strlen(s));
}

int kccl_kube_buf_printf(kccl_kube_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(b, (size_t)n) != 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int kccl_kube_buf_put_escaped(kccl_kube_buf_t *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char ch = *p;
        int keep = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                   (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~';
        if (keep) {
            if (kccl_kube_buf_append(b, p, 1) != 0)
                return -1;
        } else {
            char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            if (kccl_kube_buf_append(b, e, 3) != 0)
                return -1;
        }
    }
    return 0;
}

void kccl_kube_buf_free(kccl_kube_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void kccl_kube_buf_free_secret(kccl_kube_buf_t *b)
{
    kccl_kube_free_secret_n(b->data, b->cap);
    b->data = NULL;
    b->len = b->cap = 0;
}

int kccl_kube_read_file(const char *path, size_t max, char **out, size_t *out_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    kccl_kube_buf_t b = {0};
    char chunk[4096];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            goto err;
        }
        if (n == 0)
            break;
        if (b.len + (size_t)n > max) {
            errno = EFBIG;
            goto err;
        }
        if (kccl_kube_buf_append(&b, chunk, (size_t)n) != 0) {
            errno = ENOMEM;
            goto err;
        }
    }
    close(fd);
    if (b.data == NULL && kccl_kube_buf_append(&b, "", 0) != 0) {
        errno = ENOMEM;
        return -1;
    }
    explicit_bzero(chunk, sizeof(chunk));
    *out = b.data;
    *out_len = b.len;
    return 0;
err : {
    int saved = errno;
    close(fd);
    explicit_bzero(chunk, sizeof(chunk));
    kccl_kube_buf_free_secret(&b);
    errno = saved;
    return -1;
}
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int kccl_kube_base64_decode(const char *in, size_t len, unsigned char **out, size_t *out_len)
{
    unsigned char *buf = malloc(len / 4 * 3 + 4);
    if (buf == NULL)
        return -1;
    size_t n = 0, pad = 0, sextets = 0;
    uint32_t acc = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = b64_value(c);
        if (v < 0 || pad > 0) /* a bad character, or data after padding */
            goto bad;
        acc = acc << 6 | (uint32_t)v;
        if (++sextets % 4 == 0) {
            buf[n++] = (unsigned char)(acc >> 16);
            buf[n++] = (unsigned char)(acc >> 8);
            buf[n++] = (unsigned char)acc;
            acc = 0;
        }
    }
    switch (sextets % 4) {
    case 0:
        if (pad != 0)
            goto bad;
        break;
    case 2:
        if (pad != 0 && pad != 2)
            goto bad;
        buf[n++] = (unsigned char)(acc >> 4);
        break;
    case 3:
        if (pad != 0 && pad != 1)
            goto bad;
        buf[n++] = (unsigned char)(acc >> 10);
        buf[n++] = (unsigned char)(acc >> 2);
        break;
    default: /* one lone sextet cannot encode a byte */ goto bad;
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return 0;
bad:
    kccl_kube_free_secret_n(buf, len / 4 * 3 + 4);
    return -1;
}

void kccl_kube_free_secret_n(void *p, size_t n)
{
    if (p == NULL)
        return;
    explicit_bzero(p, n);
    free(p);
}

void kccl_kube_free_secret(char *s)
{
    if (s != NULL)
        kccl_kube_free_secret_n(s, strlen(s));
}

size_t kccl_kube_rtrim(char *s, size_t len)
{
    while (len > 0 &&
           (s[len - 1] == ' ' || s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == '\t'))
        s[--len] = '\0';
    return len;
}
