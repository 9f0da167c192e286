/*
 * op_health.c - /healthz and /readyz over libmicrohttpd (see op_health.h).
 * One internal polling thread; answers are tiny constant strings, so there is
 * no per-request state and no body is read.
 */
#include "op_health.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/error.h"
#include "op_config.h"

struct op_health {
    struct MHD_Daemon *d;
    op_health_ready_fn ready;
    void *arg;
    int port;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned code, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
    enum MHD_Result rc = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **state)
{
    op_health_t h = cls;
    (void)version;
    (void)upload;
    if (*state == NULL) { /* first call: headers only */
        *state = h;
        return MHD_YES;
    }
    if (*upload_size != 0) {
        *upload_size = 0; /* a body is ignored */
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only\n");
    if (!strcmp(url, "/healthz"))
        return reply(conn, MHD_HTTP_OK, "ok\n");
    if (!strcmp(url, "/readyz")) {
        char why[256] = "", text[300];
        if (h->ready(h->arg, why, sizeof(why)))
            return reply(conn, MHD_HTTP_OK, "ok\n");
        snprintf(text, sizeof(text), "not ready: %s\n", why);
        return reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, text);
    }
    return reply(conn, MHD_HTTP_NOT_FOUND, "not found: try /healthz or /readyz\n");
}

static int make_addr(const char *host, int port, struct sockaddr_storage *ss, unsigned *flags)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (host[0] == '\0' || !strcmp(host, "0.0.0.0")) {
        v4->sin_family = AF_INET;
        v4->sin_addr.s_addr = htonl(INADDR_ANY);
        v4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *flags |= MHD_USE_IPv6;
    } else {
        return -1;
    }
    return 0;
}

kccl_status_t op_health_start(const char *addr, op_health_ready_fn ready, void *arg,
                              op_health_t *out)
{
    char host[128];
    int port;
    if (op_config_split_addr(addr, host, sizeof(host), &port) != 0)
        KCCL_FAIL(TOOL, KCCL_ERR_CONFIG, "--health-addr \"%.64s\" is not [host]:port (e.g. :8081)",
                  addr);
    struct sockaddr_storage ss;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (make_addr(host, port, &ss, &flags) != 0)
        KCCL_FAIL(TOOL, KCCL_ERR_CONFIG,
                  "--health-addr \"%.64s\": the host must be an IP "
                  "address (names are never resolved)",
                  addr);
    op_health_t h = calloc(1, sizeof(*h));
    if (h == NULL)
        return KCCL_ERR_NO_MEMORY;
    h->ready = ready;
    h->arg = arg;
    h->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, handle, h, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_END);
    if (h->d == NULL) {
        free(h);
        KCCL_FAIL(TOOL, KCCL_ERR_ADDR_IN_USE,
                  "cannot serve the probes on %s (%s): pick a free "
                  "port with --health-addr",
                  addr, strerror(errno));
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : port;
    *out = h;
    return KCCL_OK;
}

int op_health_port(op_health_t h)
{
    return h ? h->port : 0;
}

void op_health_stop(op_health_t h)
{
    if (h == NULL)
        return;
    MHD_stop_daemon(h->d);
    free(h);
}
