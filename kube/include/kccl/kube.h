/*
 * kube.h - libkccl_kube, the small Kubernetes API client that kccl-sidecar and
 * kccl-operator use. It is internal to this repository: applications never see
 * it (runtime/include/kccl/ does not include it, and libkccl does not link it).
 *
 * What it does, and why it exists instead of kubernetes-client/c:
 *   - configuration from a kubeconfig (token, tokenFile, client certificates and
 *     their -data forms, CA, insecure-skip-tls-verify, contexts) or in-cluster
 *     (service-account directory); certificates and keys stay in memory;
 *   - a bearer token read from a file is re-read every token_refresh_ms and
 *     right after a 401, and the request is then retried once;
 *   - every call has a deadline; 429 honours Retry-After; 5xx and connection
 *     errors back off exponentially with full jitter, within the deadline;
 *   - apiserver Status objects become kccl status codes plus a result record;
 *   - watches split the event stream whatever the chunking, track the
 *     resourceVersion (bookmarks included), resume after a disconnect and
 *     relist on 410 Gone, emitting synthetic events for what changed.
 *
 * Paths are apiserver paths ("/api/v1/namespaces/ns/pods/p"); kccl_kube_path()
 * builds them. JSON is cJSON: objects passed in are borrowed, objects returned
 * through `out` belong to the caller (cJSON_Delete).
 *
 * Errors: every call returns a kccl_status_t and sets kccl_last_error() to a
 * message naming the method, the path and the apiserver's message; the
 * optional kccl_kube_result_t gets the HTTP status, Status.reason and
 * Status.message. Tokens, keys and passwords are never logged.
 *
 * Thread-safety: a config is owned by one thread until handed to
 * kccl_kube_client_create(). A client may be used from several threads at
 * once; each call is independent. kccl_kube_watch() blocks its thread; stop it
 * through the stop flag (safe to set from a signal handler).
 */
#ifndef KCCL_KUBE_H
#define KCCL_KUBE_H

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "kccl/kccl_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kccl_kube_config *kccl_kube_config_t;
typedef struct kccl_kube_client *kccl_kube_client_t;

/* ------------------------------------------------------------------ configuration */

/* Environment variables read by the loaders (the standard ones plus two of kccl's). */
#define KCCL_KUBE_ENV_KUBECONFIG           "KUBECONFIG"
#define KCCL_KUBE_ENV_SA_DIR               "KCCL_KUBE_SA_DIR" /* default KCCL_KUBE_SA_DIR_DEFAULT */
#define KCCL_KUBE_ENV_CONTEXT              "KCCL_KUBE_CONTEXT"
#define KCCL_KUBE_SA_DIR_DEFAULT           "/var/run/secrets/kubernetes.io/serviceaccount"
#define KCCL_KUBE_TOKEN_REFRESH_MS_DEFAULT 60000

/*
 * The usual discovery order of Kubernetes controllers: $KUBECONFIG if set;
 * else in-cluster if KUBERNETES_SERVICE_HOST is set; else ~/.kube/config.
 * context: NULL uses $KCCL_KUBE_CONTEXT, else the kubeconfig's current-context.
 */
kccl_status_t kccl_kube_config_load(const char *context, kccl_kube_config_t *out);

/*
 * A kubeconfig file. path NULL: $KUBECONFIG, else ~/.kube/config. Where
 * KUBECONFIG is a colon-separated list, only its FIRST file is read (kubectl
 * merges them; kccl does not) and an info message says so. Relative file paths
 * inside the kubeconfig are resolved against the kubeconfig's directory.
 * A user that needs an exec plugin or an auth-provider fails with
 * KCCL_ERR_UNSUPPORTED (unless it also has a token or a client certificate).
 */
kccl_status_t kccl_kube_config_load_kubeconfig(const char *path, const char *context,
                                               kccl_kube_config_t *out);

/* The same from text already in memory; name is used in messages, base_dir
 * resolves relative paths (NULL: the current directory). */
kccl_status_t kccl_kube_config_parse_kubeconfig(const char *text, size_t len, const char *name,
                                                const char *base_dir, const char *context,
                                                kccl_kube_config_t *out);

/*
 * In-cluster: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT (an IPv6
 * host is bracketed), token, ca.crt and namespace from the service-account
 * directory ($KCCL_KUBE_SA_DIR, default KCCL_KUBE_SA_DIR_DEFAULT). The token is
 * a token file: re-read on the refresh timer and after a 401.
 */
kccl_status_t kccl_kube_config_load_in_cluster(kccl_kube_config_t *out);

void kccl_kube_config_free(kccl_kube_config_t cfg);

/* "https://10.0.0.1:6443" (no trailing slash). */
const char *kccl_kube_config_server(kccl_kube_config_t cfg);
/* The context's namespace, the service account's namespace, or "default". */
const char *kccl_kube_config_namespace(kccl_kube_config_t cfg);
/* For messages: "kubeconfig /x/config, context c (cluster k, user u)" or "in-cluster (DIR)". */
const char *kccl_kube_config_describe(kccl_kube_config_t cfg);
/* How often a token file is re-read; <= 0 restores the default (60 s). */
void kccl_kube_config_set_token_refresh_ms(kccl_kube_config_t cfg, int64_t ms);

/* ------------------------------------------------------------------ client */

/* Takes ownership of cfg in every case (it is freed on failure too). */
kccl_status_t kccl_kube_client_create(kccl_kube_config_t cfg, kccl_kube_client_t *out);
void kccl_kube_client_destroy(kccl_kube_client_t client);
/* The client's configuration (owned by the client). */
kccl_kube_config_t kccl_kube_client_config(kccl_kube_client_t client);

/* What the apiserver (or the transport) said about a failed call. */
typedef struct {
    int http_status;   /* 0: no HTTP response (connection, TLS, deadline) */
    int code;          /* Status.code, else http_status */
    char reason[64];   /* Status.reason ("NotFound", "Conflict", "AlreadyExists", "Expired",
                          "Gone", "Invalid", "Forbidden", ...), else derived from http_status;
                          for transport errors "Transport", "TLS" or "Timeout" */
    char message[512]; /* Status.message, or the transport error */
    int attempts;      /* HTTP attempts made (retries + 1) */
} kccl_kube_result_t;

/* Per-call options; a NULL pointer means all defaults. */
typedef struct {
    int64_t timeout_ms;     /* deadline of the whole call, retries included; 0: 30 s */
    const atomic_int *stop; /* optional; nonzero ends the call with KCCL_ERR_ABORTED */
    int max_attempts;       /* 0: retry until the deadline; 1: no retries */
} kccl_kube_opts_t;

#define KCCL_KUBE_TIMEOUT_MS_DEFAULT 30000

typedef enum {
    KCCL_KUBE_PATCH_MERGE = 0, /* application/merge-patch+json (RFC 7386) */
    KCCL_KUBE_PATCH_JSON,      /* application/json-patch+json (RFC 6902) */
    KCCL_KUBE_PATCH_STRATEGIC, /* application/strategic-merge-patch+json (built-in types only) */
} kccl_kube_patch_t;

/* LIST parameters; any field may be NULL/0. */
typedef struct {
    const char *label_selector;
    const char *field_selector;
    long limit;                   /* page size; 0: no limit */
    const char *continue_token;   /* from the previous page's metadata.continue */
    const char *resource_version; /* "" or NULL: most recent */
} kccl_kube_list_opts_t;

/*
 * The verbs. out (may be NULL) receives the response object; res (may be NULL)
 * the result. Retries: GET, LIST, PUT, DELETE and merge/strategic PATCH are
 * retried on 5xx and on any connection error; POST and JSON-patch only where
 * the apiserver surely did not act (429, 503, connection refused).
 */
kccl_status_t kccl_kube_get(kccl_kube_client_t c, const char *path, const kccl_kube_opts_t *opts,
                            cJSON **out, kccl_kube_result_t *res);
kccl_status_t kccl_kube_list(kccl_kube_client_t c, const char *path,
                             const kccl_kube_list_opts_t *lo, const kccl_kube_opts_t *opts,
                             cJSON **out, kccl_kube_result_t *res);
kccl_status_t kccl_kube_create(kccl_kube_client_t c, const char *path, const cJSON *body,
                               const kccl_kube_opts_t *opts, cJSON **out, kccl_kube_result_t *res);
kccl_status_t kccl_kube_replace(kccl_kube_client_t c, const char *path, const cJSON *body,
                                const kccl_kube_opts_t *opts, cJSON **out, kccl_kube_result_t *res);
/* patch is JSON text; exactly one Content-Type header is sent, the patch type's. */
kccl_status_t kccl_kube_patch(kccl_kube_client_t c, const char *path, kccl_kube_patch_t type,
                              const char *patch, const kccl_kube_opts_t *opts, cJSON **out,
                              kccl_kube_result_t *res);
kccl_status_t kccl_kube_delete(kccl_kube_client_t c, const char *path, const kccl_kube_opts_t *opts,
                               cJSON **out, kccl_kube_result_t *res);

/*
 * Builds an apiserver path. group_version "v1" gives /api/v1, anything with a
 * slash ("kccl.io/v1alpha1") /apis/GROUP/VERSION. ns NULL: cluster-scoped or
 * all namespaces; name NULL: the collection; subresource NULL: none.
 * Segments must be non-empty and free of '/', '?', '#', '%' and spaces.
 */
kccl_status_t kccl_kube_path(char *buf, size_t len, const char *group_version, const char *ns,
                             const char *resource, const char *name, const char *subresource);

/* Classifiers for a failed call's result. */
int kccl_kube_is_conflict(const kccl_kube_result_t *res);       /* 409, any reason */
int kccl_kube_is_already_exists(const kccl_kube_result_t *res); /* 409 AlreadyExists */
int kccl_kube_is_gone(const kccl_kube_result_t *res);           /* 410 Gone/Expired */
int kccl_kube_is_invalid(const kccl_kube_result_t *res);        /* 422 Invalid */
int kccl_kube_is_forbidden(const kccl_kube_result_t *res);      /* 403 */

/* ------------------------------------------------------------------ watch */

typedef enum {
    KCCL_KUBE_EVENT_ADDED = 0,
    KCCL_KUBE_EVENT_MODIFIED,
    KCCL_KUBE_EVENT_DELETED,
    KCCL_KUBE_EVENT_BOOKMARK,
    KCCL_KUBE_EVENT_ERROR, /* object is a Status; the watch handles it (410: relist) */
} kccl_kube_event_type_t;

const char *kccl_kube_event_type_str(kccl_kube_event_type_t type);

typedef struct {
    kccl_kube_event_type_t type;
    const cJSON *object;          /* borrowed: valid during the callback only */
    const char *resource_version; /* the object's metadata.resourceVersion, or "" */
    int synthetic;                /* 1: made by a (re)list, not sent by the apiserver */
} kccl_kube_event_t;

/*
 * Called once per event, in order, from the watching thread. Return 0 to go on,
 * > 0 to end the watch with KCCL_OK, < 0 (a kccl_status_t) to end it with that.
 */
typedef int (*kccl_kube_watch_fn)(void *arg, const kccl_kube_event_t *ev);

typedef struct {
    uint64_t events;            /* delivered to the callback, synthetic ones included */
    uint64_t streams;           /* watch requests made */
    uint64_t relists;           /* LISTs after the first (410 Gone) */
    uint64_t resumes;           /* watch requests resumed after a broken or ended stream */
    char resource_version[128]; /* last one seen (truncated if longer) */
} kccl_kube_watch_stats_t;

typedef struct {
    const char *path; /* a collection: "/api/v1/namespaces/ns/pods" */
    const char *label_selector;
    const char *field_selector; /* e.g. "metadata.name=pod-0" to watch ONE object */
    /* NULL or "": LIST first and deliver each object as a synthetic ADDED, then
     * watch from the list's resourceVersion. Else watch from there directly. */
    const char *resource_version;
    int64_t timeout_ms;             /* overall deadline; 0: none (until stopped) */
    int server_timeout_s;           /* timeoutSeconds of each watch request; 0: 300 */
    const atomic_int *stop;         /* optional; nonzero ends the watch with KCCL_ERR_ABORTED */
    size_t max_event_bytes;         /* one event's limit; 0: 16 MiB */
    kccl_kube_watch_stats_t *stats; /* optional out: filled when the watch returns */
} kccl_kube_watch_opts_t;

/*
 * Watches until the callback ends it, the stop flag is set (KCCL_ERR_ABORTED),
 * the deadline passes (KCCL_ERR_TIMED_OUT) or a permanent error happens
 * (403, 404, a bad selector, ...). A broken stream resumes from the last
 * resourceVersion; 410 Gone (HTTP or an ERROR event) relists and delivers
 * synthetic ADDED/MODIFIED/DELETED events for what changed meanwhile.
 */
kccl_status_t kccl_kube_watch(kccl_kube_client_t c, const kccl_kube_watch_opts_t *opts,
                              kccl_kube_watch_fn fn, void *arg, kccl_kube_result_t *res);

#ifdef __cplusplus
}
#endif
#endif /* KCCL_KUBE_H */
