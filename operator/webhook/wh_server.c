/*
 * wh_server.c - serves the webhook over HTTPS with libmicrohttpd (webhook.h, wh_server.h).
 *
 * The listening socket is bound here (so "address in use" is reported as such) and handed to
 * libmicrohttpd, which runs a small thread pool. A request's body is collected up to the limit
 * (a larger Content-Length is refused before any of it is read), then wh_mutate answers. Every
 * connection has an idle timeout, so a slow or silent client cannot hold a thread. A reloader
 * thread checks the certificate files every cert_reload_interval_ms (wh_tls). Logs name the
 * request uid, the pod and the decision, never the body (a pod spec may carry secrets in env).
 */
#include "wh_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "wh_mutate.h"
#include "wh_tls.h"

#define WH_THREADS      2
#define WH_CONN_LIMIT   256
#define WH_TLS_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

struct kccl_webhook {
    struct MHD_Daemon *mhd;
    wh_tls_t *tls;
    int port;
    size_t max_body;
    int timeout_s, reload_ms;
    char *strings[6]; /* owned copies behind cfg */
    wh_inject_cfg_t cfg;
    pthread_t reloader;
    int reloader_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stopping;
    wh_server_stats_t stats; /* under mu */
};

typedef struct {
    char *buf;
    size_t len, cap;
    int too_big;
} wh_req_t;

void kccl_webhook_opts_init(kccl_webhook_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->port = KCCL_WEBHOOK_DEFAULT_PORT;
    o->sidecar_image = KCCL_WEBHOOK_DEFAULT_SIDECAR_IMAGE;
    o->sidecar_pull_policy = KCCL_WEBHOOK_DEFAULT_PULL_POLICY;
    o->sidecar_cpu_request = KCCL_WEBHOOK_DEFAULT_CPU_REQUEST;
    o->sidecar_memory_request = KCCL_WEBHOOK_DEFAULT_MEMORY_REQUEST;
    o->sidecar_memory_limit = KCCL_WEBHOOK_DEFAULT_MEMORY_LIMIT;
    o->max_body_bytes = KCCL_WEBHOOK_DEFAULT_MAX_BODY;
    o->timeout_s = KCCL_WEBHOOK_DEFAULT_TIMEOUT_S;
    o->cert_reload_interval_ms = KCCL_WEBHOOK_DEFAULT_RELOAD_MS;
}

static void count(kccl_webhook_t wh, unsigned long *field)
{
    pthread_mutex_lock(&wh->mu);
    (*field)++;
    pthread_mutex_unlock(&wh->mu);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *type, char *body,
                             size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(len, body, free);
    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "POST");
    enum MHD_Result rc = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result reply_text(kccl_webhook_t wh, struct MHD_Connection *c, unsigned code,
                                  const char *text)
{
    if (code >= 400 && wh != NULL)
        count(wh, &wh->stats.rejected);
    char *body = strdup(text);
    return body ? reply(c, code, "text/plain; charset=utf-8", body, strlen(body)) : MHD_NO;
}

/* application/json, optionally with parameters ("; charset=utf-8"). */
static int json_content_type(const char *ct)
{
    static const char want[] = "application/json";
    if (ct == NULL || strncasecmp(ct, want, sizeof(want) - 1) != 0)
        return 0;
    char next = ct[sizeof(want) - 1];
    return next == '\0' || next == ';' || next == ' ';
}

/* First call of a request: headers only. Answers at once, or sets up the body collection. */
static enum MHD_Result on_headers(kccl_webhook_t wh, struct MHD_Connection *c, const char *url,
                                  const char *method, void **con_cls)
{
    if (strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0)
        return reply_text(NULL, c, MHD_HTTP_OK, "ok\n");
    if (strcmp(url, "/mutate") != 0)
        return reply_text(wh, c, MHD_HTTP_NOT_FOUND, "not found: the webhook serves /mutate\n");
    if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
        return reply_text(wh, c, MHD_HTTP_METHOD_NOT_ALLOWED, "/mutate takes POST\n");
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!json_content_type(ct))
        return reply_text(wh, c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                          "Content-Type must be application/json (an AdmissionReview)\n");
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl != NULL && strtoull(cl, NULL, 10) > wh->max_body)
        return reply_text(wh, c, MHD_HTTP_CONTENT_TOO_LARGE, "the body exceeds the limit\n");
    wh_req_t *rq = calloc(1, sizeof(*rq));
    if (rq == NULL)
        return MHD_NO;
    *con_cls = rq;
    return MHD_YES;
}

static void append(kccl_webhook_t wh, wh_req_t *rq, const char *data, size_t n)
{
    if (rq->too_big || rq->len + n > wh->max_body) {
        rq->too_big = 1;
        return;
    }
    if (rq->len + n + 1 > rq->cap) {
        size_t cap = rq->cap ? rq->cap : 16384;
        while (cap < rq->len + n + 1)
            cap *= 2;
        char *b = realloc(rq->buf, cap);
        if (b == NULL) {
            rq->too_big = 1;
            return;
        }
        rq->buf = b;
        rq->cap = cap;
    }
    memcpy(rq->buf + rq->len, data, n);
    rq->len += n;
}

static enum MHD_Result decide(kccl_webhook_t wh, struct MHD_Connection *c, wh_req_t *rq)
{
    char *body = NULL;
    wh_outcome_t out;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int code = wh_mutate(rq->buf ? rq->buf : "", rq->len, &wh->cfg, &body, &out);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double us = (double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3;
    pthread_mutex_lock(&wh->mu);
    wh->stats.requests++;
    wh->stats.injected += out.kind == WH_OUT_INJECTED;
    wh->stats.denied += out.kind == WH_OUT_DENIED;
    wh->stats.rejected += code != 200;
    pthread_mutex_unlock(&wh->mu);
    if (out.kind == WH_OUT_DENIED)
        kccl_log_info(KUBE, "webhook: denied pod %s (uid %s): %s", out.pod, out.uid, out.message);
    else if (out.kind == WH_OUT_BAD_REQUEST)
        kccl_log_warn(KUBE, "webhook: bad request (%zu bytes): %s", rq->len, out.message);
    else
        kccl_log_debug(KUBE, "webhook: pod %s (uid %s): %s, %d operations, %.0f us", out.pod,
                       out.uid,
                       out.kind == WH_OUT_INJECTED    ? "injected"
                       : out.kind == WH_OUT_UNCHANGED ? "already injected"
                                                      : "not a kccl pod",
                       out.ops, us);
    if (body == NULL)
        return reply_text(wh, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    return reply(c, (unsigned)code, code == 200 ? "application/json" : "text/plain; charset=utf-8",
                 body, strlen(body));
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    kccl_webhook_t wh = cls;
    wh_req_t *rq = *con_cls;
    if (rq == NULL)
        return on_headers(wh, c, url, method, con_cls);
    if (*upload_size > 0) {
        append(wh, rq, upload_data, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (rq->too_big)
        return reply_text(wh, c, MHD_HTTP_CONTENT_TOO_LARGE, "the body exceeds the limit\n");
    return decide(wh, c, rq);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    wh_req_t *rq = *con_cls;
    if (rq != NULL) {
        free(rq->buf);
        free(rq);
    }
    *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    kccl_log_debug(KUBE, "webhook: libmicrohttpd: %s", line);
}

/* Binds and listens on address a (a literal); the socket goes to libmicrohttpd. */
static kccl_status_t listen_at(const char *a, int port, int v6only, int *fd_out, int *ipv6)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, a, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        len = sizeof(*in4);
        *ipv6 = 0;
    } else if (inet_pton(AF_INET6, a, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        len = sizeof(*in6);
        *ipv6 = 1;
    } else {
        KCCL_FAIL(KUBE, KCCL_ERR_INVALID_ARG,
                  "webhook: bind address \"%.64s\" is not an IP address: give an IPv4 or IPv6 "
                  "literal, or none for all addresses",
                  a);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        KCCL_FAIL(KUBE, KCCL_ERR_SYSTEM, "webhook: socket: %m");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (*ipv6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 128) != 0) {
        int err = errno;
        close(fd);
        errno = err;
        KCCL_FAIL(KUBE, err == EADDRINUSE ? KCCL_ERR_ADDR_IN_USE : KCCL_ERR_SYSTEM,
                  "webhook: cannot listen on %s port %d: %m%s", a, port,
                  err == EADDRINUSE ? " (another process has it: stop it or pick another "
                                      "--webhook-addr)"
                                    : "");
    }
    *fd_out = fd;
    return KCCL_OK;
}

/* No address: every IPv6 and IPv4 address through one dual-stack socket (the API server may
 * call a pod IP of either family), or every IPv4 address where IPv6 is off. */
static kccl_status_t listen_on(const char *addr, int port, int *fd_out, int *ipv6)
{
    if (addr != NULL && *addr)
        return listen_at(addr, port, 1, fd_out, ipv6);
    int probe = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0) {
        close(probe);
        kccl_status_t st = listen_at("::", port, 0, fd_out, ipv6);
        if (st != KCCL_ERR_SYSTEM)
            return st;
        kccl_log_info(KUBE, "webhook: no IPv6 (%s); listening on IPv4 only", kccl_last_error());
    }
    return listen_at("0.0.0.0", port, 1, fd_out, ipv6);
}

static void *reloader_main(void *arg)
{
    kccl_webhook_t wh = arg;
    pthread_mutex_lock(&wh->mu);
    while (!wh->stopping) {
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += wh->reload_ms / 1000;
        dl.tv_nsec += (long)(wh->reload_ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
        while (!wh->stopping && pthread_cond_timedwait(&wh->cv, &wh->mu, &dl) != ETIMEDOUT)
            ;
        if (wh->stopping)
            break;
        pthread_mutex_unlock(&wh->mu);
        wh_tls_reload_if_changed(wh->tls);
        pthread_mutex_lock(&wh->mu);
    }
    pthread_mutex_unlock(&wh->mu);
    return NULL;
}

/* Copies the option strings and checks the ones with a fixed vocabulary. */
static kccl_status_t take_options(kccl_webhook_t wh, const kccl_webhook_opts_t *o)
{
    const char *pp =
        o->sidecar_pull_policy ? o->sidecar_pull_policy : KCCL_WEBHOOK_DEFAULT_PULL_POLICY;
    if (strcmp(pp, "Always") != 0 && strcmp(pp, "IfNotPresent") != 0 && strcmp(pp, "Never") != 0)
        KCCL_FAIL(KUBE, KCCL_ERR_INVALID_ARG,
                  "webhook: sidecar pull policy \"%.32s\" is not Always, IfNotPresent or Never",
                  pp);
    const char *src[6] = {
        o->sidecar_image ? o->sidecar_image : KCCL_WEBHOOK_DEFAULT_SIDECAR_IMAGE,
        pp,
        o->sidecar_cpu_request ? o->sidecar_cpu_request : KCCL_WEBHOOK_DEFAULT_CPU_REQUEST,
        o->sidecar_memory_request ? o->sidecar_memory_request : KCCL_WEBHOOK_DEFAULT_MEMORY_REQUEST,
        o->sidecar_cpu_limit ? o->sidecar_cpu_limit : "",
        o->sidecar_memory_limit ? o->sidecar_memory_limit : KCCL_WEBHOOK_DEFAULT_MEMORY_LIMIT,
    };
    if (!*src[0])
        KCCL_FAIL(KUBE, KCCL_ERR_INVALID_ARG, "webhook: the sidecar image is empty: set it");
    for (int i = 0; i < 6; i++)
        if ((wh->strings[i] = strdup(src[i])) == NULL)
            return KCCL_ERR_NO_MEMORY;
    wh->cfg = (wh_inject_cfg_t){wh->strings[0], wh->strings[1], wh->strings[2],
                                wh->strings[3], wh->strings[4], wh->strings[5]};
    if (o->log_level != NULL && *o->log_level) {
        int lvl = kccl_log_parse_level(o->log_level);
        if (lvl < 0)
            KCCL_FAIL(KUBE, KCCL_ERR_INVALID_ARG,
                      "webhook: log level \"%.32s\" is not error, warn, info, debug or trace",
                      o->log_level);
        kccl_log_init();
        kccl_log_threshold[KCCL_SUBSYS_KUBE] = lvl;
    }
    wh->max_body = o->max_body_bytes ? o->max_body_bytes : KCCL_WEBHOOK_DEFAULT_MAX_BODY;
    wh->timeout_s = o->timeout_s > 0 ? o->timeout_s : KCCL_WEBHOOK_DEFAULT_TIMEOUT_S;
    wh->reload_ms = o->cert_reload_interval_ms > 0 ? o->cert_reload_interval_ms
                                                   : KCCL_WEBHOOK_DEFAULT_RELOAD_MS;
    wh->port = o->port == 0 ? KCCL_WEBHOOK_DEFAULT_PORT : o->port < 0 ? 0 : o->port;
    if (wh->port > 65535)
        KCCL_FAIL(KUBE, KCCL_ERR_INVALID_ARG, "webhook: port %d is out of range (1-65535)",
                  o->port);
    return KCCL_OK;
}

static kccl_status_t start_daemon(kccl_webhook_t wh, const char *addr)
{
    int fd = -1, ipv6 = 0;
    KCCL_CHECK(listen_on(addr, wh->port, &fd, &ipv6));
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_TLS |
                     MHD_USE_ERROR_LOG | (ipv6 ? MHD_USE_IPv6 : 0);
    wh->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, wh, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, wh,
        MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_HTTPS_CERT_CALLBACK, wh_tls_retrieve,
        MHD_OPTION_HTTPS_PRIORITIES, WH_TLS_PRIORITY, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)WH_THREADS, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)wh->timeout_s,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)WH_CONN_LIMIT, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, wh, MHD_OPTION_END);
    if (wh->mhd == NULL) {
        close(fd);
        KCCL_FAIL(KUBE, KCCL_ERR_SYSTEM,
                  "webhook: libmicrohttpd did not start (TLS support missing?): install a "
                  "libmicrohttpd built with GnuTLS (Debian libmicrohttpd12)");
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(wh->mhd, MHD_DAEMON_INFO_BIND_PORT);
    if (di != NULL && di->port != 0)
        wh->port = di->port;
    return KCCL_OK;
}

kccl_status_t kccl_webhook_start(const kccl_webhook_opts_t *opts, kccl_webhook_t *out)
{
    if (opts == NULL || out == NULL)
        KCCL_FAIL(KUBE, KCCL_ERR_INVALID_ARG, "webhook: no options");
    kccl_webhook_t wh = calloc(1, sizeof(*wh));
    if (wh == NULL)
        return KCCL_ERR_NO_MEMORY;
    pthread_mutex_init(&wh->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&wh->cv, &ca);
    pthread_condattr_destroy(&ca);
    kccl_status_t st;
    KCCL_CHECK_GOTO(take_options(wh, opts), st, err);
    KCCL_CHECK_GOTO(wh_tls_create(opts->cert_file, opts->key_file, &wh->tls), st, err);
    if (wh_tls_activate(wh->tls) != 0) {
        st = KCCL_ERR_UNSUPPORTED;
        kccl_error_set("webhook: one is already serving in this process: stop it first");
        wh_tls_destroy(wh->tls);
        wh->tls = NULL;
        goto err;
    }
    KCCL_CHECK_GOTO(start_daemon(wh, opts->bind_address), st, err);
    if (pthread_create(&wh->reloader, NULL, reloader_main, wh) != 0) {
        st = KCCL_ERR_SYSTEM;
        kccl_error_set("webhook: cannot start the certificate reloader thread");
        goto err;
    }
    wh->reloader_started = 1;
    kccl_log_info(KUBE, "webhook: serving https on %s port %d (sidecar image %s)",
                  opts->bind_address && *opts->bind_address ? opts->bind_address : "all addresses",
                  wh->port, wh->cfg.image);
    *out = wh;
    return KCCL_OK;
err:
    kccl_webhook_stop(wh);
    return st;
}

int kccl_webhook_port(kccl_webhook_t wh)
{
    return wh ? wh->port : -1;
}

void wh_server_stats(kccl_webhook_t wh, wh_server_stats_t *out)
{
    pthread_mutex_lock(&wh->mu);
    *out = wh->stats;
    pthread_mutex_unlock(&wh->mu);
    out->cert_generation = wh->tls ? wh_tls_generation(wh->tls) : 0;
}

void kccl_webhook_stop(kccl_webhook_t wh)
{
    if (wh == NULL)
        return;
    if (wh->reloader_started) {
        pthread_mutex_lock(&wh->mu);
        wh->stopping = 1;
        pthread_cond_broadcast(&wh->cv);
        pthread_mutex_unlock(&wh->mu);
        pthread_join(wh->reloader, NULL);
    }
    if (wh->mhd != NULL)
        MHD_stop_daemon(wh->mhd);
    wh_tls_destroy(wh->tls);
    for (int i = 0; i < 6; i++)
        free(wh->strings[i]);
    pthread_cond_destroy(&wh->cv);
    pthread_mutex_destroy(&wh->mu);
    free(wh);
}
