/*
 * kube_config.h - the resolved client configuration behind kccl_kube_config_t.
 *
 * A config is what one kubeconfig context, or the in-cluster environment,
 * boils down to: a server URL, TLS material held in memory (PEM blobs handed
 * to libcurl with CURLOPT_*_BLOB, never written to temporary files), and one
 * way to authenticate. Secret fields (token, client_key, password) are zeroed
 * when freed and never logged.
 */
#ifndef KCCL_KUBE_CONFIG_H
#define KCCL_KUBE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "kccl/kube.h"

typedef struct {
    unsigned char *data; /* NUL-terminated for convenience; len excludes the NUL */
    size_t len;
} kccl_kube_blob_t;

struct kccl_kube_config {
    char *server;   /* scheme://host[:port][/prefix], no trailing slash */
    char *ns;       /* default namespace */
    char *describe; /* where it came from, for messages */
    char *context_name, *cluster_name, *user_name; /* NULL in-cluster */

    kccl_kube_blob_t ca;          /* PEM; empty: the system's CAs */
    kccl_kube_blob_t client_cert; /* PEM */
    kccl_kube_blob_t client_key;  /* PEM; secret */
    int insecure;                 /* insecure-skip-tls-verify */
    char *proxy_url;              /* cluster proxy-url */

    char *token;      /* bearer token (initial value when token_file is set); secret */
    char *token_file; /* re-read on a timer and after a 401 */
    char *username;   /* basic auth */
    char *password;   /* secret */
    int64_t token_refresh_ms;
    int in_cluster;
};

/*
 * Reads a token file: trailing whitespace removed, must be non-empty. Returns
 * KCCL_ERR_CONFIG with a message naming the file (never the token).
 */
kccl_status_t kccl_kube_token_read(const char *path, char **out);

/* Checks a server URL ("https://[fd00::1]:6443/prefix") and returns a normalized copy. */
kccl_status_t kccl_kube_server_normalize(const char *server, const char *origin, char **out);

/* "https://HOST:PORT", bracketing an IPv6 literal HOST. */
kccl_status_t kccl_kube_server_from_host_port(const char *host, const char *port, char **out);

struct kccl_kube_config *kccl_kube_config_alloc(void);

#endif
