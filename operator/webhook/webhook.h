/*
 * webhook.h - kccl's mutating admission webhook (the sidecar injector).
 *
 * kccl-operator serves this on --webhook-addr when --webhook-cert-dir is given; the standalone
 * kccl-webhook binary serves it for tests. The API server POSTs an admission.k8s.io/v1
 * AdmissionReview for each pod CREATE carrying annotation kccl.io/group to /mutate; the answer
 * injects the native kccl-sidecar, the kccl-run and kccl-secret volumes, the env the runtime reads
 * and the kccl.io/group and kccl.io/rank labels, or refuses a pod whose kccl.io annotations are
 * malformed with a message naming the annotation and the remedy. README.md is the contract.
 *
 * Threading: kccl_webhook_start() starts libmicrohttpd's own threads and returns; requests are
 * served on them until kccl_webhook_stop(). The options are copied; the caller may free them.
 * The serving certificate and key are re-read when either file changes on disk (rotation by
 * cert-manager or a Secret volume update), checked every cert_reload_interval_ms.
 * One webhook serves per process at a time (a second start fails with KCCL_ERR_UNSUPPORTED).
 */
#ifndef KCCL_OPERATOR_WEBHOOK_H
#define KCCL_OPERATOR_WEBHOOK_H

#include <stddef.h>

#include "kccl/kccl_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kccl_webhook *kccl_webhook_t;

/* Defaults applied by kccl_webhook_opts_init() and for NULL/0 fields at start. */
#define KCCL_WEBHOOK_DEFAULT_PORT           9443
#define KCCL_WEBHOOK_DEFAULT_SIDECAR_IMAGE  "ghcr.io/kccl/kccl-sidecar:0.1.0"
#define KCCL_WEBHOOK_DEFAULT_PULL_POLICY    "IfNotPresent"
#define KCCL_WEBHOOK_DEFAULT_CPU_REQUEST    "10m"
#define KCCL_WEBHOOK_DEFAULT_MEMORY_REQUEST "16Mi"
#define KCCL_WEBHOOK_DEFAULT_MEMORY_LIMIT   "64Mi"
#define KCCL_WEBHOOK_DEFAULT_MAX_BODY       (4u << 20) /* bytes of one AdmissionReview */
#define KCCL_WEBHOOK_DEFAULT_TIMEOUT_S      10         /* the configuration's timeoutSeconds */
#define KCCL_WEBHOOK_DEFAULT_RELOAD_MS      10000

typedef struct {
    /* Listening address: an IPv4/IPv6 literal; NULL or "" = all addresses (dual-stack "::",
     * or 0.0.0.0 where IPv6 is off). */
    const char *bind_address;
    /* TCP port; 0 = KCCL_WEBHOOK_DEFAULT_PORT, -1 = any free port (see kccl_webhook_port()). */
    int port;
    /* PEM files of the serving certificate (chain) and its private key (tls.crt, tls.key). */
    const char *cert_file;
    const char *key_file;
    /* The injected sidecar: image and imagePullPolicy (Always|IfNotPresent|Never). */
    const char *sidecar_image;
    const char *sidecar_pull_policy;
    /* Sidecar resources, Kubernetes quantities; NULL = the default above, "" = leave unset. */
    const char *sidecar_cpu_request;
    const char *sidecar_memory_request;
    const char *sidecar_cpu_limit; /* default: none */
    const char *sidecar_memory_limit;
    /* error|warn|info|debug|trace for the webhook's messages (subsystem KUBE); NULL = as is. */
    const char *log_level;
    /* Request body limit in bytes (0 = default) and per-connection timeout in s (0 = default). */
    size_t max_body_bytes;
    int timeout_s;
    /* How often the cert/key files are checked for change, in ms (0 = default). */
    int cert_reload_interval_ms;
} kccl_webhook_opts_t;

/* Fills opts with the defaults (no cert/key: the caller must set them). */
void kccl_webhook_opts_init(kccl_webhook_opts_t *opts);

/*
 * Loads the certificate and key, binds, and starts serving POST /mutate and GET /healthz over
 * TLS. *out is set only on KCCL_OK. Errors: KCCL_ERR_INVALID_ARG (missing cert/key path, bad
 * pull policy or log level), KCCL_ERR_CONFIG (unreadable or mismatched cert/key),
 * KCCL_ERR_ADDR_IN_USE, KCCL_ERR_SYSTEM; kccl_last_error() has the details and the remedy.
 */
kccl_status_t kccl_webhook_start(const kccl_webhook_opts_t *opts, kccl_webhook_t *out);

/* The port actually bound (useful with port -1). */
int kccl_webhook_port(kccl_webhook_t webhook);

/* Stops serving (waits for in-flight requests, bounded by timeout_s) and frees. NULL is a no-op. */
void kccl_webhook_stop(kccl_webhook_t webhook);

#ifdef __cplusplus
}
#endif
#endif /* KCCL_OPERATOR_WEBHOOK_H */
