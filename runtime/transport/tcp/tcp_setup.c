/*
 * tcp_setup.c - the TCP transport's set-up: the data listener, every pair's
 * connection (lower rank dials, token-checked hello, one-byte-class reply),
 * all pairs at once in one epoll loop under one deadline, and teardown.
 * The data path is in tcp_io.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bootstrap/auth.h"
#include "core/config.h"
#include "core/error.h"
#include "memory/gpu.h"
#include "transport/tcp/tcp.h"

#define HELLO_MAGIC 0x4454434Bu /* "KCTD" */
#define REPLY_MAGIC 0x5254434Bu /* "KCTR" */

/* Rank record: 0 family (4/6), 1 zero, 2 port (BE), 4 address[16], 20 token[16]. */

static kccl_status_t set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return KCCL_ERR_SYSTEM;
    return KCCL_OK;
}

static void tune_socket(int fd)
{
    int one = 1, buf = 4 << 20;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
}

static socklen_t make_sockaddr(int family, const uint8_t addr[16], uint16_t port,
                               struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (family == 6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        memcpy(&s6->sin6_addr, addr, 16);
        return sizeof(*s6);
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    memcpy(&s4->sin_addr, addr, 4);
    return sizeof(*s4);
}

static kccl_status_t tcp_ctx_create(const kccl_tp_env_t *env, kccl_tp_ctx_t **out, char *why,
                                    size_t whylen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    tcp_ctx_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        KCCL_FAIL(NET, KCCL_ERR_NO_MEMORY, "out of memory for the tcp transport");
    c->env = *env;
    c->listen_fd = c->epfd = c->wake_fd = -1;
    c->eps = calloc((size_t)env->nranks, sizeof(*c->eps));
    long chunk = kccl_config_int_or_default(KCCL_CFG_TCP_CHUNK);
    c->chunk = chunk >= 4096 ? (uint64_t)chunk : 1u << 20;
    if (c->eps == NULL)
        goto err_nomem;
    if (inet_pton(AF_INET, env->bind_ip, c->addr) == 1)
        c->family = 4;
    else if (inet_pton(AF_INET6, env->bind_ip, c->addr) == 1)
        c->family = 6;
    else {
        snprintf(why, whylen, "no usable bootstrap address ('%s')", env->bind_ip);
        free(c->eps);
        free(c);
        return KCCL_ERR_UNSUPPORTED;
    }
    if (kccl_random_bytes(c->token, sizeof(c->token)) != KCCL_OK)
        goto err;
    c->listen_fd = socket(c->family == 6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sl = make_sockaddr(c->family, c->addr, 0, &ss);
    if (c->listen_fd < 0 || bind(c->listen_fd, (struct sockaddr *)&ss, sl) != 0 ||
        listen(c->listen_fd, SOMAXCONN) != 0 ||
        getsockname(c->listen_fd, (struct sockaddr *)&ss, &sl) != 0 ||
        set_nonblock(c->listen_fd) != KCCL_OK) {
        kccl_error_set("rank %d: tcp data listener on %s: %s", env->rank, env->bind_ip,
                       strerror(errno));
        kccl_log_error(NET, "%s", kccl_last_error());
        goto err;
    }
    c->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    c->epfd = epoll_create1(EPOLL_CLOEXEC);
    c->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->epfd < 0 || c->wake_fd < 0) {
        kccl_error_set("rank %d: tcp transport: epoll/eventfd: %s", env->rank, strerror(errno));
        kccl_log_error(NET, "%s", kccl_last_error());
        goto err;
    }
    *out = c;
    return KCCL_OK;
err_nomem:
    kccl_error_set("out of memory for the tcp transport");
err:
    if (c->listen_fd >= 0)
        close(c->listen_fd);
    if (c->epfd >= 0)
        close(c->epfd);
    if (c->wake_fd >= 0)
        close(c->wake_fd);
    free(c->eps);
    free(c);
    return KCCL_ERR_SYSTEM;
}

static void ep_free(tcp_ep_t *ep)
{
    const kccl_gpu_ops_t *gpu = kccl_gpu();
    while (ep->q_head != NULL) {
        tcp_op_t *o = ep->q_head;
        ep->q_head = o->next;
        free(o);
    }
    if (ep->cur != NULL && ep->cur != &ep->ctl)
        free(ep->cur);
    if (gpu != NULL) {
        gpu->host_free(ep->tx_stage);
        gpu->host_free(ep->rx_stage);
    }
    if (ep->fd >= 0)
        close(ep->fd);
    pthread_mutex_destroy(&ep->lock);
    pthread_cond_destroy(&ep->cond);
    free(ep);
}

static void tcp_ctx_destroy(kccl_tp_ctx_t *c)
{
    kccl_tcp_progress_stop(c, c->env.timeout_ms < 1000 ? c->env.timeout_ms : 1000);
    for (int p = 0; p < c->env.nranks; p++)
        if (c->eps[p] != NULL)
            ep_free(c->eps[p]);
    if (c->listen_fd >= 0)
        close(c->listen_fd);
    close(c->epfd);
    close(c->wake_fd);
    free(c->eps);
    free(c);
}

static kccl_status_t tcp_rank_info(kccl_tp_ctx_t *c, uint8_t info[KCCL_TP_INFO_BYTES])
{
    info[0] = (uint8_t)c->family;
    info[2] = (uint8_t)(c->port >> 8);
    info[3] = (uint8_t)c->port;
    memcpy(info + 4, c->addr, 16);
    memcpy(info + 20, c->token, TCP_TOKEN_BYTES);
    return KCCL_OK;
}

static kccl_status_t tcp_ep_create(kccl_tp_ctx_t *c, int peer,
                                   const uint8_t info[KCCL_TP_INFO_BYTES], kccl_tp_ep_t **out,
                                   uint8_t pair[KCCL_TP_PAIR_BYTES])
{
    (void)pair;
    if (info[0] != 4 && info[0] != 6)
        KCCL_FAIL(NET, KCCL_ERR_PROTOCOL, "rank %d: bad tcp record from rank %d", c->env.rank,
                  peer);
    tcp_ep_t *ep = calloc(1, sizeof(*ep));
    if (ep == NULL)
        KCCL_FAIL(NET, KCCL_ERR_NO_MEMORY, "out of memory for a tcp link");
    ep->ctx = c;
    ep->peer = peer;
    ep->fd = -1;
    ep->rx_device = -1;
    ep->state = TCP_EP_NEW;
    ep->connector = c->env.rank < peer;
    ep->peer_family = info[0];
    ep->peer_port = (uint16_t)(info[2] << 8 | info[3]);
    memcpy(ep->peer_addr, info + 4, 16);
    memcpy(ep->peer_token, info + 20, TCP_TOKEN_BYTES);
    pthread_mutex_init(&ep->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ep->cond, &ca);
    pthread_condattr_destroy(&ca);
    c->eps[peer] = ep;
    *out = ep;
    return KCCL_OK;
}

static kccl_status_t ep_arm(tcp_ep_t *ep, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = ep};
    int op = ep->ev ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(ep->ctx->epfd, op, ep->fd, &ev) != 0)
        KCCL_FAIL(NET, KCCL_ERR_SYSTEM, "rank %d: epoll_ctl for rank %d: %s", ep->ctx->env.rank,
                  ep->peer, strerror(errno));
    ep->ev = events;
    return KCCL_OK;
}

static kccl_status_t tcp_ep_connect(kccl_tp_ep_t *ep, const uint8_t pair[KCCL_TP_PAIR_BYTES])
{
    (void)pair;
    tcp_ctx_t *c = ep->ctx;
    if (!ep->connector) {
        ep->state = TCP_EP_ACCEPTING;
        return KCCL_OK;
    }
    struct sockaddr_storage ss;
    socklen_t sl = make_sockaddr(ep->peer_family, ep->peer_addr, ep->peer_port, &ss);
    ep->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (ep->fd < 0)
        KCCL_FAIL(NET, KCCL_ERR_SYSTEM, "rank %d: socket for rank %d: %s", c->env.rank, ep->peer,
                  strerror(errno));
    tune_socket(ep->fd);
    if (connect(ep->fd, (struct sockaddr *)&ss, sl) != 0 && errno != EINPROGRESS)
        KCCL_FAIL(NET, KCCL_ERR_REMOTE, "rank %d: tcp connect to rank %d: %s", c->env.rank,
                  ep->peer, strerror(errno));
    ep->state = TCP_EP_CONNECTING;
    return ep_arm(ep, EPOLLOUT);
}

static void put32le(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Connector: the connect finished; send the hello (fits any fresh socket buffer). */
static kccl_status_t on_connected(tcp_ep_t *ep)
{
    int err = 0;
    socklen_t el = sizeof(err);
    if (getsockopt(ep->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
        err = errno;
    if (err != 0)
        KCCL_FAIL(NET, KCCL_ERR_REMOTE, "rank %d: tcp connect to rank %d: %s", ep->ctx->env.rank,
                  ep->peer, strerror(err));
    uint8_t hello[TCP_HELLO_BYTES];
    put32le(hello, HELLO_MAGIC);
    put32le(hello + 4, (uint32_t)ep->ctx->env.rank);
    memcpy(hello + 8, ep->peer_token, TCP_TOKEN_BYTES);
    if (send(ep->fd, hello, sizeof(hello), MSG_NOSIGNAL) != (ssize_t)sizeof(hello))
        KCCL_FAIL(NET, KCCL_ERR_REMOTE, "rank %d: tcp hello to rank %d: %s", ep->ctx->env.rank,
                  ep->peer, strerror(errno));
    ep->state = TCP_EP_WAIT_REPLY;
    ep->hs_got = 0;
    return ep_arm(ep, EPOLLIN);
}

/* Connector: read the 8-byte reply. 1 when ready, 0 when more is needed. */
static kccl_status_t on_reply(tcp_ep_t *ep, int *ready)
{
    ssize_t r = recv(ep->fd, ep->hs + ep->hs_got, 8 - ep->hs_got, 0);
    *ready = 0;
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
        KCCL_FAIL(NET, KCCL_ERR_REMOTE,
                  "rank %d: tcp link to rank %d refused during set-up (%s): is it the same group?",
                  ep->ctx->env.rank, ep->peer, r == 0 ? "closed" : strerror(errno));
    if (r > 0)
        ep->hs_got += (size_t)r;
    if (ep->hs_got < 8)
        return KCCL_OK;
    if (get32le(ep->hs) != REPLY_MAGIC || get32le(ep->hs + 4) != (uint32_t)ep->peer)
        KCCL_FAIL(NET, KCCL_ERR_PROTOCOL, "rank %d: bad tcp reply from rank %d", ep->ctx->env.rank,
                  ep->peer);
    ep->state = TCP_EP_READY;
    *ready = 1;
    return KCCL_OK;
}

typedef struct pending {
    struct pending *next;
    int fd;
    uint8_t buf[TCP_HELLO_BYTES];
    size_t got;
} pending_t;

static void drop_pending(tcp_ctx_t *c, pending_t **list, pending_t *p, const char *why)
{
    for (pending_t **pp = list; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    if (why != NULL)
        kccl_log_warn(NET, "rank %d: refused a tcp data connection: %s", c->env.rank, why);
    epoll_ctl(c->epfd, EPOLL_CTL_DEL, p->fd, NULL);
    close(p->fd);
    free(p);
}

/* Acceptor: a hello arrived on p. Adopts it as the peer's link when it checks out. */
static kccl_status_t on_hello(tcp_ctx_t *c, pending_t **list, pending_t *p, int *ready)
{
    *ready = 0;
    ssize_t r = recv(p->fd, p->buf + p->got, TCP_HELLO_BYTES - p->got, 0);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
        drop_pending(c, list, p, "closed before its hello");
        return KCCL_OK;
    }
    if (r > 0)
        p->got += (size_t)r;
    if (p->got < TCP_HELLO_BYTES)
        return KCCL_OK;
    uint32_t from = get32le(p->buf + 4);
    tcp_ep_t *ep = from < (uint32_t)c->env.nranks ? c->eps[from] : NULL;
    if (get32le(p->buf) != HELLO_MAGIC || ep == NULL || ep->connector ||
        ep->state != TCP_EP_ACCEPTING || !kccl_auth_equal(p->buf + 8, c->token, TCP_TOKEN_BYTES)) {
        drop_pending(c, list, p, "bad hello (wrong group, rank or token)");
        return KCCL_OK;
    }
    uint8_t reply[8];
    put32le(reply, REPLY_MAGIC);
    put32le(reply + 4, (uint32_t)c->env.rank);
    if (send(p->fd, reply, sizeof(reply), MSG_NOSIGNAL) != (ssize_t)sizeof(reply)) {
        drop_pending(c, list, p, "reply failed");
        return KCCL_OK;
    }
    ep->fd = p->fd;
    p->fd = -1;
    for (pending_t **pp = list; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    free(p);
    tune_socket(ep->fd);
    ep->ev = EPOLLIN; /* already in the epoll set (as the pending connection): modify */
    ep->state = TCP_EP_READY;
    *ready = 1;
    return ep_arm(ep, EPOLLIN);
}

static kccl_status_t accept_all(tcp_ctx_t *c, pending_t **list)
{
    for (;;) {
        int fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
                return KCCL_OK;
            KCCL_FAIL(NET, KCCL_ERR_SYSTEM, "rank %d: accept on the tcp data listener: %s",
                      c->env.rank, strerror(errno));
        }
        pending_t *p = calloc(1, sizeof(*p));
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = p};
        if (p == NULL || epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            free(p);
            close(fd);
            continue;
        }
        p->fd = fd;
        p->next = *list;
        *list = p;
    }
}

static int is_ep(tcp_ctx_t *c, void *ptr)
{
    for (int i = 0; i < c->env.nranks; i++)
        if (c->eps[i] != NULL && (void *)c->eps[i] == ptr)
            return 1;
    return 0;
}

static kccl_status_t connect_loop(tcp_ctx_t *c, int64_t deadline, int left)
{
    static int listener_tag;
    pending_t *pend = NULL;
    kccl_status_t st = KCCL_OK;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &listener_tag};
    if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->listen_fd, &ev) != 0)
        KCCL_FAIL(NET, KCCL_ERR_SYSTEM, "rank %d: epoll_ctl: %s", c->env.rank, strerror(errno));
    while (left > 0) {
        int64_t wait = deadline - kccl_tp_now_ms();
        if (wait <= 0) {
            char who[160] = "";
            size_t off = 0;
            for (int p = 0; p < c->env.nranks && off < sizeof(who) - 12; p++)
                if (c->eps[p] != NULL && c->eps[p]->state != TCP_EP_READY)
                    off += (size_t)snprintf(who + off, sizeof(who) - off, " %d", p);
            kccl_error_set("rank %d: tcp links not up by the deadline; still waiting for rank(s)%s",
                           c->env.rank, who);
            kccl_log_error(NET, "%s", kccl_last_error());
            st = KCCL_ERR_TIMED_OUT;
            break;
        }
        struct epoll_event evs[32];
        int n = epoll_wait(c->epfd, evs, 32, (int)(wait > 1000 ? 1000 : wait));
        for (int i = 0; i < n && st == KCCL_OK; i++) {
            void *ptr = evs[i].data.ptr;
            int ready = 0;
            if (ptr == &listener_tag) {
                st = accept_all(c, &pend);
            } else if (is_ep(c, ptr)) {
                tcp_ep_t *ep = ptr;
                if (ep->state == TCP_EP_CONNECTING)
                    st = on_connected(ep);
                else if (ep->state == TCP_EP_WAIT_REPLY)
                    st = on_reply(ep, &ready);
            } else {
                st = on_hello(c, &pend, ptr, &ready);
            }
            left -= ready;
        }
        if (st != KCCL_OK)
            break;
    }
    while (pend != NULL)
        drop_pending(c, &pend, pend, NULL);
    epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->listen_fd, NULL);
    close(c->listen_fd);
    c->listen_fd = -1;
    return st;
}

static kccl_status_t tcp_ctx_connect_wait(kccl_tp_ctx_t *c, int64_t deadline)
{
    int left = 0;
    for (int p = 0; p < c->env.nranks; p++)
        left += c->eps[p] != NULL;
    KCCL_CHECK(connect_loop(c, deadline, left));
    return kccl_tcp_progress_start(c);
}

static void tcp_ep_close(kccl_tp_ep_t *ep)
{
    /* The context's destroy says BYE, stops the progress thread and frees the eps. */
    (void)ep;
}

static kccl_status_t tcp_ep_report(kccl_tp_ep_t *ep, const char *what)
{
    return kccl_tcp_ep_report(ep, what);
}

const kccl_tp_ops_t kccl_tp_tcp_ops = {
    .name = "tcp",
    .id = KCCL_TP_TCP,
    .caps = KCCL_LINK_CAP_HOST_MEM | KCCL_LINK_CAP_DEVICE_MEM,
    .pair_info = 0,
    .ctx_create = tcp_ctx_create,
    .ctx_destroy = tcp_ctx_destroy,
    .rank_info = tcp_rank_info,
    .ep_create = tcp_ep_create,
    .ep_connect = tcp_ep_connect,
    .ctx_connect_wait = tcp_ctx_connect_wait,
    .put = kccl_tcp_put,
    .signal = kccl_tcp_signal,
    .flush = kccl_tcp_flush,
    .ep_status = kccl_tcp_ep_status,
    .ep_report = tcp_ep_report,
    .ep_close = tcp_ep_close,
};
