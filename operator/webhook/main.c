/*
 * main.c - kccl-webhook: the admission webhook on its own, for tests and debugging (in a cluster
 * kccl-operator serves the same code). Serves until SIGTERM/SIGINT; with --mutate FILE it
 * instead answers one AdmissionReview read from FILE ("-" = stdin) on stdout and exits.
 *
 *   kccl-webhook --cert tls.crt --key tls.key [--addr 127.0.0.1] [--port 9443|0]
 *                [--port-file F] [--sidecar-image IMG] [--pull-policy P] [--log-level L]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wh_mutate.h"
#include "wh_server.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: kccl-webhook --cert FILE --key FILE [--addr IP] [--port N (0: any)]\n"
               "                    [--port-file FILE] [--sidecar-image IMAGE] [--pull-policy P]\n"
               "                    [--cpu-request Q] [--memory-request Q] [--memory-limit Q]\n"
               "                    [--log-level L] [--reload-ms MS]\n"
               "       kccl-webhook --mutate FILE|- [--sidecar-image IMAGE]\n");
}

static int mutate_file(const char *path, const kccl_webhook_opts_t *o)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf != NULL && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap && len < KCCL_WEBHOOK_DEFAULT_MAX_BODY) {
            char *b = realloc(buf, cap *= 2);
            if (b == NULL)
                free(buf);
            buf = b;
        } else if (len == cap) {
            break;
        }
    }
    if (f != stdin)
        fclose(f);
    if (buf == NULL)
        return 1;
    wh_inject_cfg_t cfg = {o->sidecar_image,       o->sidecar_pull_policy,
                           o->sidecar_cpu_request, o->sidecar_memory_request,
                           o->sidecar_cpu_limit,   o->sidecar_memory_limit};
    char *body = NULL;
    wh_outcome_t out;
    int code = wh_mutate(buf, len, &cfg, &body, &out);
    free(buf);
    printf("%s\n", body ? body : "");
    free(body);
    return code == 200 ? 0 : 1;
}

int main(int argc, char **argv)
{
    kccl_webhook_opts_t o;
    kccl_webhook_opts_init(&o);
    o.port = -1;
    const char *port_file = NULL, *mutate = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (v == NULL) {
            usage(stderr);
            return 2;
        }
        i++;
        if (!strcmp(a, "--cert"))
            o.cert_file = v;
        else if (!strcmp(a, "--key"))
            o.key_file = v;
        else if (!strcmp(a, "--addr"))
            o.bind_address = v;
        else if (!strcmp(a, "--port"))
            o.port = atoi(v) == 0 ? -1 : atoi(v); // NOLINT(cert-err34-c): checked by start
        else if (!strcmp(a, "--port-file"))
            port_file = v;
        else if (!strcmp(a, "--sidecar-image"))
            o.sidecar_image = v;
        else if (!strcmp(a, "--pull-policy"))
            o.sidecar_pull_policy = v;
        else if (!strcmp(a, "--cpu-request"))
            o.sidecar_cpu_request = v;
        else if (!strcmp(a, "--memory-request"))
            o.sidecar_memory_request = v;
        else if (!strcmp(a, "--memory-limit"))
            o.sidecar_memory_limit = v;
        else if (!strcmp(a, "--log-level"))
            o.log_level = v;
        else if (!strcmp(a, "--reload-ms"))
            o.cert_reload_interval_ms = atoi(v); // NOLINT(cert-err34-c): <= 0 means default
        else if (!strcmp(a, "--mutate"))
            mutate = v;
        else {
            usage(stderr);
            return 2;
        }
    }
    if (mutate != NULL)
        return mutate_file(mutate, &o);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* before any thread starts: they inherit it */
    kccl_webhook_t wh = NULL;
    kccl_status_t st = kccl_webhook_start(&o, &wh);
    if (st != KCCL_OK) {
        fprintf(stderr, "kccl-webhook: %s\n", kccl_last_error());
        return 1;
    }
    if (port_file != NULL) {
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (f == NULL || fprintf(f, "%d\n", kccl_webhook_port(wh)) < 0 || fclose(f) != 0 ||
            rename(tmp, port_file) != 0) {
            perror(port_file);
            kccl_webhook_stop(wh);
            return 1;
        }
    }
    fprintf(stderr, "kccl-webhook: serving on port %d\n", kccl_webhook_port(wh));
    int sig = 0;
    sigwait(&set, &sig);
    kccl_webhook_stop(wh);
    return 0;
}
