/*
 * kube_http.h - one apiserver request over libcurl: TLS and authentication
 * from the config, the token-file refresh, a deadline and a stop flag on every
 * transfer, and (in kccl_kube_http_call) the retry loop with backoff,
 * Retry-After and the once-only retry after a 401 that re-read the token.
 *
 * Each call uses its own curl easy and multi handles, so a client is safe to
 * share between threads; DNS and TLS sessions are shared through a CURLSH
 * guarded by mutexes, which makes reconnecting cheap (TLS resumption).
 */
#ifndef KCCL_KUBE_HTTP_H
#define KCCL_KUBE_HTTP_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>

#include "kccl/kube.h"
#include "kube_config.h"
#include "kube_retry.h"
#include "kube_util.h"

#define KCCL_KUBE_MAX_BODY_DEFAULT   ((size_t)64 << 20)
#define KCCL_KUBE_CONNECT_TIMEOUT_MS 10000

struct kccl_kube_client {
    struct kccl_kube_config *cfg;
    CURLSH *share;
    pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
    pthread_mutex_t token_mu;
    char *token;           /* current bearer token; secret; guarded by token_mu */
    int64_t token_read_ms; /* when token_file was last read */
    uint64_t token_reads;  /* how many times (tests) */
};

/* Receives a 2xx body as it streams; nonzero stops the transfer and is returned. */
typedef int (*kccl_kube_data_fn)(void *arg, const char *data, size_t n);

typedef struct {
    const char *method;       /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *path;         /* path and query, appended to the server URL */
    const char *content_type; /* required with a body */
    const char *body;
    size_t body_len;
    int idempotent;            /* may be repeated after an ambiguous failure */
    kccl_kube_data_fn on_data; /* optional: stream 2xx bodies here instead of buffering */
    void *on_data_arg;
    size_t max_body;            /* limit of a buffered body; 0: 64 MiB */
    int64_t attempt_timeout_ms; /* 0: the rest of the deadline */
} kccl_kube_req_t;

typedef struct {
    long http_status;       /* 0: no response */
    kccl_kube_buf_t body;   /* buffered body (error bodies always) */
    int64_t retry_after_ms; /* -1: no Retry-After */
    int data_rc;            /* nonzero: what on_data returned to stop */
} kccl_kube_resp_t;

void kccl_kube_resp_free(kccl_kube_resp_t *resp);

/*
 * One attempt, no retries (the watch does its own). deadline_ms is absolute
 * (kccl_kube_now_ms clock). Fills resp, res and *fail; returns the status.
 * Does not set kccl_last_error() (kccl_kube_http_fail does).
 */
kccl_status_t kccl_kube_http_attempt(kccl_kube_client_t c, const kccl_kube_req_t *req,
                                     int64_t deadline_ms, const atomic_int *stop,
                                     kccl_kube_resp_t *resp, kccl_kube_result_t *res,
                                     kccl_kube_fail_t *fail);

/* The full call: attempts, retries, token refresh; sets kccl_last_error() on failure. */
kccl_status_t kccl_kube_http_call(kccl_kube_client_t c, const kccl_kube_req_t *req,
                                  const kccl_kube_opts_t *opts, kccl_kube_resp_t *resp,
                                  kccl_kube_result_t *res);

/*
 * Records a failed call: sets kccl_last_error() to "METHOD PATH: ..." and logs
 * it (debug for answers callers commonly expect, like 404 and 409; warn for
 * auth; error for transport problems). Returns st.
 */
kccl_status_t kccl_kube_http_fail(kccl_kube_client_t c, const kccl_kube_req_t *req,
                                  kccl_status_t st, const kccl_kube_result_t *res,
                                  const char *extra);

/*
 * Re-reads the token file when its refresh interval has passed (or now, with
 * force). Returns 1 when the token changed, 0 when not (or no token file).
 */
int kccl_kube_client_refresh_token(kccl_kube_client_t c, int force);

/*
 * Copies a header line for a log, replacing the value of Authorization and
 * Proxy-Authorization with "<redacted>". Returns the length written.
 */
size_t kccl_kube_redact_header(const char *line, size_t len, char *out, size_t cap);

#endif
