/*
 * op_config.h - kccl-operator's settings: one table (OP_CONFIG_MAP) gives
 * every setting its flag, its environment variable (KCCL_OPERATOR_<NAME>),
 * its default and its help; --help prints it and README.md documents it.
 * A flag wins over its variable, the variable over the default.
 */
#ifndef KCCL_OPERATOR_OP_CONFIG_H
#define KCCL_OPERATOR_OP_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "kccl/kccl_status.h"

/* X(id, flag, env suffix, default, is_bool, help) */
#define OP_CONFIG_MAP(X)                                                                           \
    X(KUBECONFIG, "kubeconfig", "KUBECONFIG", "", 0,                                               \
      "kubeconfig file; default: $KUBECONFIG, else in-cluster, else ~/.kube/config")               \
    X(NAMESPACE, "namespace", "NAMESPACE", "", 0, "watch only this namespace; default: all")       \
    X(LEADER_ELECT, "leader-elect", "LEADER_ELECT", "false", 1,                                    \
      "elect a leader through Lease kccl-operator (run several replicas)")                         \
    X(LEASE_NAMESPACE, "lease-namespace", "LEASE_NAMESPACE", "", 0,                                \
      "the Lease's namespace; default: $POD_NAMESPACE, else the kubeconfig's")                     \
    X(HEALTH_ADDR, "health-addr", "HEALTH_ADDR", ":8081", 0,                                       \
      "plain HTTP GET /healthz and /readyz on [host]:port; \"0\" turns it off")                    \
    X(WEBHOOK_ADDR, "webhook-addr", "WEBHOOK_ADDR", ":9443", 0,                                    \
      "the admission webhook's [host]:port (HTTPS)")                                               \
    X(WEBHOOK_CERT_DIR, "webhook-cert-dir", "WEBHOOK_CERT_DIR", "", 0,                             \
      "directory with tls.crt and tls.key; the webhook serves only when this is set")              \
    X(SIDECAR_IMAGE, "sidecar-image", "SIDECAR_IMAGE", "ghcr.io/kccl/kccl-sidecar:0.1.0", 0,       \
      "the sidecar image the webhook injects")                                                     \
    X(SIDECAR_PULL_POLICY, "sidecar-pull-policy", "SIDECAR_PULL_POLICY", "IfNotPresent", 0,        \
      "the injected sidecar's imagePullPolicy (Always, IfNotPresent, Never)")                      \
    X(LOG_LEVEL, "log-level", "LOG_LEVEL", "info", 0, "error, warn, info, debug or trace")         \
    X(WORKERS, "workers", "WORKERS", "2", 0,                                                       \
      "reconcile workers (groups are reconciled in "                                               \
      "parallel, one group by one worker at a time)")                                              \
    X(COALESCE_MS, "coalesce-ms", "COALESCE_MS", "200", 0,                                         \
      "a group is reconciled this long after its first event, so a burst is one pass")             \
    X(API_TIMEOUT, "api-timeout", "API_TIMEOUT", "30", 0, "seconds per API call, retries included")

typedef enum {
#define OP_CFG_ENUM_(id, flag, env, def, is_bool, help) OP_CFG_##id,
    OP_CONFIG_MAP(OP_CFG_ENUM_)
#undef OP_CFG_ENUM_
        OP_CFG_COUNT
} op_cfg_id_t;

typedef struct {
    char *value[OP_CFG_COUNT]; /* owned copies */
} op_config_t;

/*
 * Fills cfg from the defaults, then the environment, then argv (--flag value, --flag=value,
 * a bare --flag for booleans). Returns KCCL_OK, KCCL_INPROGRESS for --help/--version (printed
 * already), or KCCL_ERR_CONFIG with kccl_last_error() naming the flag and the remedy.
 */
kccl_status_t op_config_load(op_config_t *cfg, int argc, char **argv);
void op_config_free(op_config_t *cfg);

const char *op_config_str(const op_config_t *cfg, op_cfg_id_t id);
int op_config_bool(const op_config_t *cfg, op_cfg_id_t id);
/* An integer setting in [min, max]. */
kccl_status_t op_config_int(const op_config_t *cfg, op_cfg_id_t id, int64_t min, int64_t max,
                            int64_t *out);
void op_config_usage(FILE *f);

/* Splits "[host]:port" (":8081", "127.0.0.1:8081", "[::1]:8081"); host "" means all addresses.
 * Returns 0, or -1 when it is not such an address. */
int op_config_split_addr(const char *addr, char *host, size_t hostlen, int *port);

#endif
