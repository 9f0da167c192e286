/*
 * main.c - kccl-sidecar's command line.
 *
 *   kccl-sidecar [run]      the container's command: publish, watch, hand off
 *   kccl-sidecar probe      readiness probe: exit 0 iff the handoff file exists
 *                           and parses as the runtime parses it
 *
 * SIGTERM and SIGINT set the stop flag every blocking call watches (the kube
 * client polls it at least every 100 ms), so the sidecar ends within that and
 * exits 0. Exit 2: bad configuration (identity, client settings); exit 1: an
 * API failure it cannot wait out (e.g. RBAC refuses it).
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kccl/kccl.h"
#include "sc.h"

static atomic_int g_stop;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&g_stop, 1);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " SC_NAME
            " [run]     publish this pod's endpoint, learn the group's unique id,\n"
            "                           write the handoff file (KCCL_BOOTSTRAP_FILE); runs until "
            "SIGTERM\n"
            "       " SC_NAME " probe     exit 0 iff the handoff file exists and is valid\n"
            "       " SC_NAME " --help | --version\n"
            "\n"
            "Pod annotations: kccl.io/group, kccl.io/world-size, kccl.io/rank (or the Indexed "
            "Job\n"
            "completion index, or the StatefulSet pod index), optional kccl.io/port (29500),\n"
            "kccl.io/epoch, kccl.io/root-pod. Settings (environment):\n");
    sc_config_print(f);
    fprintf(f, "  plus KCCL_LOG_LEVEL (default info here), KUBERNETES_SERVICE_HOST/_PORT and\n"
               "  KCCL_KUBE_SA_DIR (in-cluster credentials) or KUBECONFIG.\n");
}

static int probe(int argc, char **argv)
{
    char why[512];
    const char *path = argc > 2 ? argv[2] : sc_config_str(SC_CFG_HANDOFF);
    int rc = sc_handoff_probe(path, why, sizeof(why));
    fprintf(rc == 0 ? stdout : stderr, "%s: %s\n", rc == 0 ? "ready" : "not ready", why);
    return rc == 0 ? 0 : 1;
}

static int run(void)
{
    sc_options_t o = {.handoff_path = sc_config_str(SC_CFG_HANDOFF),
                      .secret_file = sc_config_str(SC_CFG_SECRET_FILE),
                      .stop = &g_stop};
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (sc_config_millis(SC_CFG_API_TIMEOUT, &o.api_timeout_ms) != KCCL_OK ||
        sc_config_millis(SC_CFG_RENDEZVOUS_TIMEOUT, &o.rendezvous_timeout_ms) != KCCL_OK)
        return 2;
    if (o.secret_file[0] != '\0' && o.secret_file[0] != '/') {
        kccl_log_error(TOOL, "KCCL_GROUP_SECRET_FILE must be an absolute path");
        return 2;
    }
    if (o.secret_file[0] == '\0')
        kccl_log_warn(TOOL, "KCCL_GROUP_SECRET_FILE is not set: the handoff names no group "
                            "secret, and the application's bootstrap will refuse to run unless "
                            "KCCL_BOOTSTRAP_INSECURE=1");
    return sc_run(&o);
}

int main(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage(stdout);
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "--version")) {
        printf(SC_NAME " %d.%d.%d\n", KCCL_VERSION_MAJOR, KCCL_VERSION_MINOR, KCCL_VERSION_PATCH);
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "probe") && argc <= 3)
        return probe(argc, argv);
    if (argc == 1 || (argc == 2 && !strcmp(argv[1], "run"))) {
        if (getenv("KCCL_LOG_LEVEL") == NULL)
            setenv("KCCL_LOG_LEVEL", "info", 0); /* a sidecar's log is its story */
        return run();
    }
    usage(stderr);
    return 2;
}
