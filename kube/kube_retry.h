/*
 * kube_retry.h - when and how long to wait before trying an apiserver call
 * again: exponential backoff with full jitter, Retry-After parsing, and the
 * retry policy (which failures are worth another attempt for which verbs).
 * Pure functions: no I/O, so they are unit-tested directly.
 */
#ifndef KCCL_KUBE_RETRY_H
#define KCCL_KUBE_RETRY_H

#include <stdint.h>
#include <time.h>

#define KCCL_KUBE_BACKOFF_BASE_MS 200
#define KCCL_KUBE_BACKOFF_CAP_MS  5000

typedef struct {
    int64_t base_ms; /* bound of the first wait */
    int64_t cap_ms;  /* no wait is longer than this */
    uint64_t rng;    /* xorshift64* state; never 0 */
} kccl_kube_backoff_t;

/* seed 0 picks one from the clock and the thread. */
void kccl_kube_backoff_init(kccl_kube_backoff_t *b, int64_t base_ms, int64_t cap_ms, uint64_t seed);

/* The upper bound for retry number `attempt` (0-based): min(cap, base * 2^attempt). */
int64_t kccl_kube_backoff_bound(const kccl_kube_backoff_t *b, int attempt);

/* Full jitter: uniform in [0, bound(attempt)]. */
int64_t kccl_kube_backoff_next(kccl_kube_backoff_t *b, int attempt);

/*
 * Parses a Retry-After value: delta-seconds ("3") or an HTTP-date
 * ("Wed, 21 Oct 2015 07:28:00 GMT", relative to now). A date in the past gives
 * 0. Returns 0 and *out_ms, or -1 when the value is neither.
 */
int kccl_kube_parse_retry_after(const char *value, time_t now, int64_t *out_ms);

/*
 * The wait before the next attempt: the server's Retry-After when it sent one
 * (retry_after_ms >= 0), else the jittered backoff. Returns -1 when the wait
 * would end at or after the deadline (give up now).
 */
int64_t kccl_kube_retry_delay(kccl_kube_backoff_t *b, int attempt, int64_t retry_after_ms,
                              int64_t now_ms, int64_t deadline_ms);

/* Failure classes, for the policy below. */
typedef enum {
    KCCL_KUBE_FAIL_NONE = 0,
    KCCL_KUBE_FAIL_CONNECT,   /* never reached the server: refused, unresolved, connect timeout */
    KCCL_KUBE_FAIL_TLS_SETUP, /* TLS handshake failed (maybe a server restarting) */
    KCCL_KUBE_FAIL_EXCHANGE,  /* broken after the request may have been sent */
    KCCL_KUBE_FAIL_FATAL,     /* certificate verification, bad URL, ...: do not retry */
} kccl_kube_fail_t;

/*
 * Whether a failed attempt is worth repeating. http_status 0 means a transport
 * failure of class `fail`. idempotent: the verb may be repeated safely (GET,
 * PUT, DELETE, merge patch). A TLS setup failure is retried at most twice
 * (attempt counts from 1), since it is usually a configuration problem.
 */
int kccl_kube_should_retry(int http_status, kccl_kube_fail_t fail, int idempotent, int attempt);

#endif
