/*
 * kube_retry.c - backoff with full jitter, Retry-After, retry policy (see
 * kube_retry.h). Full jitter ("sleep = random(0, min(cap, base * 2^n))")
 * spreads the retries of many sidecars that lost the apiserver at the same
 * moment, so they do not come back in lockstep.
 */
#include "kube_retry.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

void kccl_kube_backoff_init(kccl_kube_backoff_t *b, int64_t base_ms, int64_t cap_ms, uint64_t seed)
{
    b->base_ms = base_ms > 0 ? base_ms : 1;
    b->cap_ms = cap_ms >= b->base_ms ? cap_ms : b->base_ms;
    if (seed == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
               (uint64_t)(uintptr_t)pthread_self() ^ (uint64_t)(uintptr_t)b;
    }
    b->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
}

int64_t kccl_kube_backoff_bound(const kccl_kube_backoff_t *b, int attempt)
{
    int64_t bound = b->base_ms;
    for (int i = 0; i < attempt && bound < b->cap_ms; i++)
        bound *= 2;
    return bound < b->cap_ms ? bound : b->cap_ms;
}

static uint64_t next_random(kccl_kube_backoff_t *b)
{
    uint64_t x = b->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    b->rng = x;
    return x * 0x2545f4914f6cdd1dULL;
}

int64_t kccl_kube_backoff_next(kccl_kube_backoff_t *b, int attempt)
{
    int64_t bound = kccl_kube_backoff_bound(b, attempt < 0 ? 0 : attempt);
    return (int64_t)(next_random(b) % (uint64_t)(bound + 1));
}

int kccl_kube_parse_retry_after(const char *value, time_t now, int64_t *out_ms)
{
    if (value == NULL)
        return -1;
    while (*value == ' ' || *value == '\t')
        value++;
    if (*value == '\0')
        return -1;
    if (isdigit((unsigned char)*value)) {
        char *end;
        errno = 0;
        long long s = strtoll(value, &end, 10);
        while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
            end++;
        if (*end != '\0' || errno != 0)
            return -1;
        if (s > 86400) /* a day is the most anyone should wait; the deadline decides anyway */
            s = 86400;
        *out_ms = (int64_t)s * 1000;
        return 0;
    }
    time_t when = curl_getdate(value, NULL);
    if (when == (time_t)-1)
        return -1;
    *out_ms = when > now ? (int64_t)(when - now) * 1000 : 0;
    return 0;
}

int64_t kccl_kube_retry_delay(kccl_kube_backoff_t *b, int attempt, int64_t retry_after_ms,
                              int64_t now_ms, int64_t deadline_ms)
{
    int64_t delay = retry_after_ms >= 0 ? retry_after_ms : kccl_kube_backoff_next(b, attempt);
    if (now_ms + delay >= deadline_ms)
        return -1;
    return delay;
}

int kccl_kube_should_retry(int http_status, kccl_kube_fail_t fail, int idempotent, int attempt)
{
    if (http_status != 0) {
        switch (http_status) {
        case 429: /* throttled: the apiserver did not act */
        case 503: /* unavailable: not processed */ return 1;
        case 500:
        case 502:
        case 504: return idempotent;
        default: return 0;
        }
    }
    switch (fail) {
    case KCCL_KUBE_FAIL_CONNECT: return 1;
    case KCCL_KUBE_FAIL_TLS_SETUP: return attempt < 3;
    case KCCL_KUBE_FAIL_EXCHANGE: return idempotent;
    default: return 0;
    }
}
