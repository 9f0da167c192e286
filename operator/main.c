/*
 * main.c - kccl-operator's process: settings, the kube client, the probe
 * server, the admission webhook (when --webhook-cert-dir is given and the
 * webhook is built in), the controller, and leader election.
 *
 * SIGTERM/SIGINT set the stop flag that every wait polls (<= 100 ms): the
 * watches end, the workers finish their pass, a held Lease is released, and
 * the process exits 0. Exit 1: a runtime failure (API refused, port in use);
 * 2: bad flags or configuration; 3: leadership lost (restart to stand by).
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kccl/kube.h"
#include "kube_util.h"
#include "op_config.h"
#include "op_ctrl.h"
#include "op_health.h"
#include "op_lease.h"
#include "op_model.h"
#ifdef KCCL_OPERATOR_WITH_WEBHOOK
#include "webhook.h"
#endif

static atomic_int g_stop;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&g_stop, 1);
}

typedef struct {
    _Atomic(op_ctrl_t) ctrl; /* read by the probe server's thread */
    int leader_elect;
    atomic_int leading, observed, lost;
} proc_t;

static int ready(void *arg, char *why, size_t len)
{
    proc_t *p = arg;
    op_ctrl_t ctrl = atomic_load(&p->ctrl);
    if (ctrl == NULL || !op_ctrl_synced(ctrl)) {
        snprintf(why, len, "the pod and CommGroup caches are not synced yet");
        return 0;
    }
    if (p->leader_elect && !atomic_load(&p->observed)) {
        snprintf(why, len, "leader election has not read the Lease yet");
        return 0;
    }
    return 1;
}

static kccl_status_t make_client(const op_config_t *cfg, kccl_kube_client_t *out)
{
    kccl_kube_config_t kcfg = NULL;
    const char *path = op_config_str(cfg, OP_CFG_KUBECONFIG);
    kccl_status_t st = path[0] ? kccl_kube_config_load_kubeconfig(path, NULL, &kcfg)
                               : kccl_kube_config_load(NULL, &kcfg);
    if (st != KCCL_OK)
        return st;
    kccl_log_info(TOOL, "API server %s (%s)", kccl_kube_config_server(kcfg),
                  kccl_kube_config_describe(kcfg));
    return kccl_kube_client_create(kcfg, out);
}

#ifdef KCCL_OPERATOR_WITH_WEBHOOK
static kccl_status_t start_webhook(const op_config_t *cfg, kccl_webhook_t *out)
{
    const char *dir = op_config_str(cfg, OP_CFG_WEBHOOK_CERT_DIR);
    char host[128], crt[1024], key[1024];
    int port;
    if (op_config_split_addr(op_config_str(cfg, OP_CFG_WEBHOOK_ADDR), host, sizeof(host), &port))
        KCCL_FAIL(TOOL, KCCL_ERR_CONFIG, "--webhook-addr is not [host]:port (e.g. :9443)");
    snprintf(crt, sizeof(crt), "%s/tls.crt", dir);
    snprintf(key, sizeof(key), "%s/tls.key", dir);
    kccl_webhook_opts_t wo;
    kccl_webhook_opts_init(&wo);
    wo.bind_address = host;
    wo.port = port == 0 ? -1 : port;
    wo.cert_file = crt;
    wo.key_file = key;
    wo.sidecar_image = op_config_str(cfg, OP_CFG_SIDECAR_IMAGE);
    wo.sidecar_pull_policy = op_config_str(cfg, OP_CFG_SIDECAR_PULL_POLICY);
    wo.log_level = op_config_str(cfg, OP_CFG_LOG_LEVEL);
    return kccl_webhook_start(&wo, out);
}
#endif

/* One line with the counters (the benchmark reads it). */
static void log_stats(op_ctrl_t ctrl)
{
    op_ctrl_stats_t s;
    op_ctrl_stats(ctrl, &s);
    kccl_log_info(TOOL,
                  "stats: pods %zu groups %zu pod_events %llu group_events %llu reconciles %llu "
                  "reconcile_errors %llu api_calls %llu status_writes %llu conflicts %llu "
                  "secrets %llu groups_created %llu pod_patches %llu group_patches %llu events "
                  "%llu gets %llu",
                  s.cache.pods, s.cache.groups, (unsigned long long)s.cache.pod_events,
                  (unsigned long long)s.cache.group_events, (unsigned long long)s.reconciles,
                  (unsigned long long)s.reconcile_errors, (unsigned long long)s.api_calls,
                  (unsigned long long)s.status_writes, (unsigned long long)s.conflicts,
                  (unsigned long long)s.secrets, (unsigned long long)s.groups_created,
                  (unsigned long long)s.pod_patches, (unsigned long long)s.group_patches,
                  (unsigned long long)s.events, (unsigned long long)s.gets);
}

static void quiesce(void *arg)
{
    op_ctrl_quiesce(atomic_load(&((proc_t *)arg)->ctrl));
}

/* Leads (or stands by) until stopped; returns the exit status. */
static int lead(const op_config_t *cfg, kccl_kube_client_t kc, proc_t *p)
{
    if (!p->leader_elect) {
        atomic_store(&p->leading, 1);
        op_ctrl_t ctrl = atomic_load(&p->ctrl);
        while (!atomic_load(&g_stop) && !op_ctrl_failed(ctrl))
            kccl_kube_sleep_ms(200, &g_stop);
        return op_ctrl_failed(ctrl) ? 1 : 0;
    }
    char identity[OP_LEASE_ID_MAX];
    op_lease_default_identity(identity, sizeof(identity));
    const char *ns = op_config_str(cfg, OP_CFG_LEASE_NAMESPACE);
    if (!ns[0])
        ns = getenv("POD_NAMESPACE");
    if (ns == NULL || !ns[0])
        ns = kccl_kube_config_namespace(kccl_kube_client_config(kc));
    kccl_log_info(TOOL, "leader election: Lease %s/%s as %s", ns, OP_LEASE_NAME, identity);
    op_lease_opts_t lo = {.kc = kc,
                          .ns = ns,
                          .identity = identity,
                          .stop = &g_stop,
                          .leading = &p->leading,
                          .observed = &p->observed,
                          .lost = &p->lost,
                          .before_release = quiesce,
                          .arg = p};
    kccl_status_t st = op_lease_run(&lo);
    if (atomic_load(&p->lost))
        return 3;
    return st == KCCL_OK ? 0 : 1;
}

static int run(const op_config_t *cfg)
{
    int64_t workers, coalesce, api_s;
    if (op_config_int(cfg, OP_CFG_WORKERS, 1, 16, &workers) ||
        op_config_int(cfg, OP_CFG_COALESCE_MS, 0, 60000, &coalesce) ||
        op_config_int(cfg, OP_CFG_API_TIMEOUT, 1, 3600, &api_s))
        return 2;
    proc_t p = {.leader_elect = op_config_bool(cfg, OP_CFG_LEADER_ELECT)};
    kccl_kube_client_t kc = NULL;
    if (make_client(cfg, &kc) != KCCL_OK) {
        kccl_log_error(TOOL, "no API access: %s (pass --kubeconfig, or run in a pod)",
                       kccl_last_error());
        return 2;
    }
    int rc = 1;
    op_health_t health = NULL;
    const char *haddr = op_config_str(cfg, OP_CFG_HEALTH_ADDR);
    if (strcmp(haddr, "0") != 0 && op_health_start(haddr, ready, &p, &health) != KCCL_OK)
        goto out_client;
#ifdef KCCL_OPERATOR_WITH_WEBHOOK
    kccl_webhook_t webhook = NULL;
    if (op_config_str(cfg, OP_CFG_WEBHOOK_CERT_DIR)[0] && start_webhook(cfg, &webhook) != KCCL_OK) {
        kccl_log_error(TOOL, "the admission webhook cannot start: %s", kccl_last_error());
        goto out_health;
    }
#else
    if (op_config_str(cfg, OP_CFG_WEBHOOK_CERT_DIR)[0])
        kccl_log_warn(TOOL, "--webhook-cert-dir is set but this kccl-operator was built without "
                            "the webhook (operator/webhook): not serving admission requests");
#endif
    op_ctrl_opts_t co = {.kc = kc,
                         .ns = op_config_str(cfg, OP_CFG_NAMESPACE),
                         .workers = (int)workers,
                         .coalesce_ms = coalesce,
                         .api_timeout_ms = api_s * 1000,
                         .stop = &g_stop,
                         .leading = &p.leading};
    op_ctrl_t ctrl = NULL;
    if (op_ctrl_start(&co, &ctrl) == KCCL_OK) {
        atomic_store(&p.ctrl, ctrl);
        kccl_log_info(TOOL, OP_NAME " started (namespace %s, %d workers)", co.ns[0] ? co.ns : "all",
                      (int)workers);
        rc = lead(cfg, kc, &p);
    }
    atomic_store(&g_stop, 1);
    if (rc == 3) /* leadership lost: the new leader acts, we stop writing now */
        op_ctrl_abort(ctrl);
    /* the probe server reads the controller: it stops first */
    op_health_stop(health);
    health = NULL;
    if (ctrl)
        log_stats(ctrl);
    atomic_store(&p.ctrl, NULL);
    op_ctrl_stop(ctrl);
#ifdef KCCL_OPERATOR_WITH_WEBHOOK
    kccl_webhook_stop(webhook);
out_health:
#endif
    op_health_stop(health);
out_client:
    kccl_kube_client_destroy(kc);
    kccl_log_info(TOOL, OP_NAME " stopped (exit %d)", rc);
    return rc;
}

int main(int argc, char **argv)
{
    op_config_t cfg;
    kccl_status_t st = op_config_load(&cfg, argc, argv);
    if (st == KCCL_INPROGRESS) {
        op_config_free(&cfg);
        return 0;
    }
    if (st != KCCL_OK) {
        fprintf(stderr, OP_NAME ": %s\n", kccl_last_error());
        op_config_free(&cfg);
        return 2;
    }
    if (getenv("KCCL_LOG_LEVEL") == NULL || op_config_str(&cfg, OP_CFG_LOG_LEVEL)[0]) {
        if (kccl_log_parse_level(op_config_str(&cfg, OP_CFG_LOG_LEVEL)) < 0) {
            fprintf(stderr, OP_NAME ": --log-level must be error, warn, info, debug or trace\n");
            op_config_free(&cfg);
            return 2;
        }
        setenv("KCCL_LOG_LEVEL", op_config_str(&cfg, OP_CFG_LOG_LEVEL), 1);
        kccl_log_reinit();
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int rc = run(&cfg);
    op_config_free(&cfg);
    return rc;
}
