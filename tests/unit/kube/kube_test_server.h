/*
 * kube_test_server.h - a scripted loopback HTTP/1.1 responder for the unit
 * tests of the HTTP layer (kube_http.c). It is NOT an apiserver imitation: it
 * knows nothing of Kubernetes, it plays back canned responses in order (one
 * per connection) and records every request byte for byte, so a test can
 * check what the client sent (exactly one Content-Type, the bearer token) and
 * how it reacts to transport-level behaviour (429 + Retry-After, 5xx, 401,
 * a chunked body split at odd places, a stream cut mid-event). Kubernetes
 * semantics are tested against the real control plane (tests/integration/kube).
 */
#ifndef KCCL_KUBE_TEST_SERVER_H
#define KCCL_KUBE_TEST_SERVER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "kccl_test.h"

#define KTS_MAX_REQ 32

typedef struct {
    int status;
    const char *headers;       /* extra header lines, each ending in \r\n */
    const char *body;          /* with Content-Length; NULL: empty */
    const char *const *chunks; /* instead of body: chunked, NULL-terminated */
    int chunk_delay_ms;        /* pause between chunks */
    int cut;                   /* chunked: close without the final 0-chunk */
    int drop;                  /* close without answering at all */
    int hang_ms;               /* wait before answering */
} kts_response_t;

typedef struct {
    char method[16];
    char target[2048];
    char head[8192]; /* all header lines */
    char body[8192];
    int content_types; /* how many Content-Type headers */
    char content_type[128];
    char authorization[512];
} kts_request_t;

typedef struct {
    int fd;
    int port;
    pthread_t thread;
    const kts_response_t *script;
    int nscript;
    kts_request_t req[KTS_MAX_REQ];
    atomic_int nreq;
    atomic_int stop;
} kts_t;

static inline void kts_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static inline int kts_send(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static inline void kts_parse(kts_request_t *r, const char *head)
{
    sscanf(head, "%15s %2047s", r->method, r->target);
    size_t hl = strlen(head) < sizeof(r->head) - 1 ? strlen(head) : sizeof(r->head) - 1;
    memcpy(r->head, head, hl);
    r->head[hl] = '\0';
    for (const char *line = strstr(head, "\r\n"); line && line[2];
         line = strstr(line + 2, "\r\n")) {
        const char *l = line + 2;
        const char *end = strstr(l, "\r\n");
        int len = end ? (int)(end - l) : (int)strlen(l);
        if (strncasecmp(l, "Content-Type:", 13) == 0) {
            r->content_types++;
            snprintf(r->content_type, sizeof(r->content_type), "%.*s", len - 14, l + 14);
        } else if (strncasecmp(l, "Authorization:", 14) == 0) {
            snprintf(r->authorization, sizeof(r->authorization), "%.*s", len - 15, l + 15);
        }
    }
}

static inline void kts_serve_one(kts_t *s, int c)
{
    char buf[16384];
    size_t len = 0;
    char *eoh = NULL;
    while (len < sizeof(buf) - 1 && eoh == NULL) {
        ssize_t n = recv(c, buf + len, sizeof(buf) - 1 - len, 0);
        if (n <= 0)
            return;
        len += (size_t)n;
        buf[len] = '\0';
        eoh = strstr(buf, "\r\n\r\n");
    }
    if (eoh == NULL)
        return;
    int i = atomic_load(&s->nreq);
    if (i >= KTS_MAX_REQ)
        return;
    kts_request_t *r = &s->req[i];
    memset(r, 0, sizeof(*r));
    *eoh = '\0';
    kts_parse(r, buf);
    size_t have = len - (size_t)(eoh + 4 - buf), want = 0;
    const char *cl = strcasestr(buf, "\r\nContent-Length:");
    if (cl)
        want = (size_t)strtoul(cl + 17, NULL, 10);
    if (want >= sizeof(r->body))
        want = sizeof(r->body) - 1;
    memcpy(r->body, eoh + 4, have < want ? have : want);
    while (have < want) {
        ssize_t n = recv(c, r->body + have, want - have, 0);
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    atomic_store(&s->nreq, i + 1);

    const kts_response_t *rs = &s->script[i < s->nscript ? i : s->nscript - 1];
    if (rs->hang_ms)
        kts_sleep_ms(rs->hang_ms);
    if (rs->drop)
        return;
    char head[2048];
    int n = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nConnection: close\r\n%s", rs->status,
                     rs->headers ? rs->headers : "");
    if (rs->chunks) {
        n += snprintf(head + n, sizeof(head) - (size_t)n,
                      "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
        if (kts_send(c, head, (size_t)n) != 0)
            return;
        for (const char *const *ch = rs->chunks; *ch; ch++) {
            char sz[32];
            int k = snprintf(sz, sizeof(sz), "%zx\r\n", strlen(*ch));
            if (kts_send(c, sz, (size_t)k) || kts_send(c, *ch, strlen(*ch)) ||
                kts_send(c, "\r\n", 2))
                return;
            if (rs->chunk_delay_ms)
                kts_sleep_ms(rs->chunk_delay_ms);
        }
        if (!rs->cut)
            kts_send(c, "0\r\n\r\n", 5);
        return;
    }
    const char *body = rs->body ? rs->body : "";
    n += snprintf(head + n, sizeof(head) - (size_t)n,
                  "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n", strlen(body));
    if (kts_send(c, head, (size_t)n) == 0)
        kts_send(c, body, strlen(body));
}

static inline void *kts_main(void *arg)
{
    kts_t *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        kts_serve_one(s, c);
        shutdown(c, SHUT_WR);
        kts_sleep_ms(5); /* let the client read before the close */
        close(c);
    }
    return NULL;
}

/* Starts a server playing `script` (the last entry repeats). */
static inline void kts_start(kts_t *s, const kts_response_t *script, int n)
{
    memset(s, 0, sizeof(*s));
    s->script = script;
    s->nscript = n;
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->fd >= 0);
    int one = 1;
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->fd, 16), 0);
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &alen), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, kts_main, s), 0);
}

static inline void kts_stop(kts_t *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    close(s->fd);
}

/* A port on which nothing listens (bound, never listened, then closed). */
static inline int kts_dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    close(fd);
    return ntohs(a.sin_port);
}

#endif
