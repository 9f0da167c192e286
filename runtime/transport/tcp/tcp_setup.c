/*
 * tcp_setup.c - the TCP transport's set-up: the data listener, each pair's
 * connection (lower rank dials, token-checked hello, 8-byte reply) and
 * teardown. The data path is in tcp_io.c.
 *
 * Links connect whenever the runtime asks (all pairs at init, or one pair on
 * first use: transport.c decides), so the listener stays open for the
 * communicator's life and the context's progress thread, started with the
 * context, does all set-up I/O: it accepts, checks hellos, replies, and
 * finishes the dials this rank started. A caller only starts a dial
 * (tcp_ep_connect) and waits for its endpoint to become ready
 * (tcp_ep_connect_wait). An acceptor's endpoint may exist before the
 * runtime asks for it (the peer dialled first): tcp_ep_create then adopts it.
 * So a dialling rank never waits for the peer's application thread, only for
 * its progress thread, and a pair connects whatever else either rank does.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
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

static void drop_all_pending(tcp_ctx_t *c);

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
    pthread_mutex_init(&c->eps_lock, NULL);
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
    struct epoll_event lev = {.events = EPOLLIN, .data.u64 = TCP_TAG_LISTENER};
    if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->listen_fd, &lev) != 0) {
        kccl_error_set("rank %d: tcp transport: epoll_ctl: %s", env->rank, strerror(errno));
        kccl_log_error(NET, "%s", kccl_last_error());
        goto err;
    }
    if (kccl_tcp_progress_start(c) != KCCL_OK)
        goto err;
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
    pthread_mutex_destroy(&c->eps_lock);
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
    drop_all_pending(c);
    for (int p = 0; p < c->env.nranks; p++)
        if (c->eps[p] != NULL)
            ep_free(c->eps[p]);
    if (c->listen_fd >= 0)
        close(c->listen_fd);
    close(c->epfd);
    close(c->wake_fd);
    pthread_mutex_destroy(&c->eps_lock);
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

/* A fresh endpoint for peer (eps_lock held), published in c->eps. */
static tcp_ep_t *ep_new(tcp_ctx_t *c, int peer)
{
    tcp_ep_t *ep = calloc(1, sizeof(*ep));
    if (ep == NULL)
        return NULL;
    ep->ctx = c;
    ep->peer = peer;
    ep->fd = -1;
    ep->rx_device = -1;
    ep->state = TCP_EP_NEW;
    ep->connector = c->env.rank < peer;
    pthread_mutex_init(&ep->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ep->cond, &ca);
    pthread_condattr_destroy(&ca);
    __atomic_store_n(&c->eps[peer], ep, __ATOMIC_RELEASE);
    return ep;
}

/* The endpoint for peer: the one an early hello already created, or a new one. */
static kccl_status_t tcp_ep_create(kccl_tp_ctx_t *c, int peer,
                                   const uint8_t info[KCCL_TP_INFO_BYTES], kccl_tp_ep_t **out,
                                   uint8_t pair[KCCL_TP_PAIR_BYTES])
{
    (void)pair;
    if (info[0] != 4 && info[0] != 6)
        KCCL_FAIL(NET, KCCL_ERR_PROTOCOL, "rank %d: bad tcp record from rank %d", c->env.rank,
                  peer);
    pthread_mutex_lock(&c->eps_lock);
    tcp_ep_t *ep = c->eps[peer] ? c->eps[peer] : ep_new(c, peer);
    if (ep != NULL) {
        ep->peer_family = info[0];
        ep->peer_port = (uint16_t)(info[2] << 8 | info[3]);
        memcpy(ep->peer_addr, info + 4, 16);
        memcpy(ep->peer_token, info + 20, TCP_TOKEN_BYTES);
    }
    pthread_mutex_unlock(&c->eps_lock);
    if (ep == NULL)
        KCCL_FAIL(NET, KCCL_ERR_NO_MEMORY, "out of memory for a tcp link");
    *out = ep;
    return KCCL_OK;
}

static int ep_state(tcp_ep_t *ep)
{
    return __atomic_load_n(&ep->state, __ATOMIC_ACQUIRE);
}

static void ep_set_state(tcp_ep_t *ep, int state)
{
    pthread_mutex_lock(&ep->lock);
    if (ep->err == 0)
        __atomic_store_n(&ep->state, state, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&ep->cond);
    pthread_mutex_unlock(&ep->lock);
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

/* Starts the dial (connector) or marks the endpoint as expecting one (acceptor). */
static kccl_status_t tcp_ep_connect(kccl_tp_ep_t *ep, const uint8_t pair[KCCL_TP_PAIR_BYTES])
{
    (void)pair;
    tcp_ctx_t *c = ep->ctx;
    if (!ep->connector) {
        pthread_mutex_lock(&ep->lock);
        if (ep_state(ep) == TCP_EP_NEW)
            __atomic_store_n(&ep->state, TCP_EP_ACCEPTING, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&ep->lock);
        return KCCL_OK;
    }
    if (ep_state(ep) != TCP_EP_NEW)
        return KCCL_OK; /* dialled before (a retried set-up); its outcome stands */
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
    /* From here the progress thread owns the endpoint: state and ev are set before the
     * socket enters the epoll set, so its first event finds them. */
    __atomic_store_n(&ep->state, TCP_EP_CONNECTING, __ATOMIC_RELEASE);
    ep->ev = EPOLLOUT;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = ep};
    if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, ep->fd, &ev) != 0)
        KCCL_FAIL(NET, KCCL_ERR_SYSTEM, "rank %d: epoll_ctl for rank %d: %s", c->env.rank, ep->peer,
                  strerror(errno));
    return KCCL_OK;
}

/* Waits until the endpoint is ready (or failed, or the deadline passed). */
static kccl_status_t tcp_ep_connect_wait(kccl_tp_ep_t *ep, int64_t deadline)
{
    int state;
    pthread_mutex_lock(&ep->lock);
    while ((state = ep_state(ep)) != TCP_EP_READY && ep->err == 0) {
        int64_t now = kccl_tp_now_ms();
        if (now >= deadline)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t wait = deadline - now > 100 ? 100 : deadline - now;
        ts.tv_nsec += (long)(wait * 1000000);
        ts.tv_sec += ts.tv_nsec / 1000000000;
        ts.tv_nsec %= 1000000000;
        pthread_cond_timedwait(&ep->cond, &ep->lock, &ts);
    }
    int err = ep->err;
    pthread_mutex_unlock(&ep->lock);
    if (state == TCP_EP_READY)
        return KCCL_OK;
    if (err != 0)
        return kccl_tcp_ep_report(ep, "set-up");
    tcp_ctx_t *c = ep->ctx;
    if (ep->connector)
        KCCL_FAIL(NET, KCCL_ERR_TIMED_OUT,
                  "rank %d: tcp link to rank %d not up by the deadline: its listener did not "
                  "answer (%s); is rank %d alive and reachable?",
                  c->env.rank, ep->peer,
                  state == TCP_EP_CONNECTING ? "connect in progress" : "no reply to the hello",
                  ep->peer);
    KCCL_FAIL(NET, KCCL_ERR_TIMED_OUT,
              "rank %d: tcp link to rank %d not up by the deadline: rank %d never dialled (a "
              "link connects when both ranks first use it: does rank %d make the same pairwise "
              "call?)",
              c->env.rank, ep->peer, ep->peer, ep->peer);
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

/* Set-up failures (progress thread): the endpoint fails for good; its waiter reports it. */
static kccl_status_t fail(tcp_ep_t *ep, kccl_status_t st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static kccl_status_t fail(tcp_ep_t *ep, kccl_status_t st, const char *fmt, ...)
{
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    kccl_tcp_ep_fail(ep, st, "%s", msg);
    return st;
}

/* Connector: the connect finished; send the hello (fits any fresh socket buffer). */
static kccl_status_t on_connected(tcp_ep_t *ep)
{
    int err = 0;
    socklen_t el = sizeof(err);
    if (getsockopt(ep->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
        err = errno;
    if (err != 0)
        return fail(ep, KCCL_ERR_REMOTE, "connect: %s", strerror(err));
    uint8_t hello[TCP_HELLO_BYTES];
    put32le(hello, HELLO_MAGIC);
    put32le(hello + 4, (uint32_t)ep->ctx->env.rank);
    memcpy(hello + 8, ep->peer_token, TCP_TOKEN_BYTES);
    if (send(ep->fd, hello, sizeof(hello), MSG_NOSIGNAL) != (ssize_t)sizeof(hello))
        return fail(ep, KCCL_ERR_REMOTE, "hello: %s", strerror(errno));
    ep->hs_got = 0;
    __atomic_store_n(&ep->state, TCP_EP_WAIT_REPLY, __ATOMIC_RELEASE);
    return ep_arm(ep, EPOLLIN);
}

/* Connector: read the 8-byte reply; the endpoint is ready once it is all there. */
static kccl_status_t on_reply(tcp_ep_t *ep)
{
    ssize_t r = recv(ep->fd, ep->hs + ep->hs_got, 8 - ep->hs_got, 0);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
        return fail(ep, KCCL_ERR_REMOTE, "refused during set-up (%s): is it the same group?",
                    r == 0 ? "closed" : strerror(errno));
    if (r > 0)
        ep->hs_got += (size_t)r;
    if (ep->hs_got < 8)
        return KCCL_OK;
    if (get32le(ep->hs) != REPLY_MAGIC || get32le(ep->hs + 4) != (uint32_t)ep->peer)
        return fail(ep, KCCL_ERR_PROTOCOL, "bad reply to the hello");
    ep_set_state(ep, TCP_EP_READY);
    return KCCL_OK;
}

/* An accepted connection until its hello arrives (progress thread only). */
typedef struct tcp_pending {
    struct tcp_pending *next;
    int fd;
    uint8_t buf[TCP_HELLO_BYTES];
    size_t got;
} tcp_pending_t;

static void drop_pending(tcp_ctx_t *c, tcp_pending_t *p, const char *why)
{
    for (tcp_pending_t **pp = &c->pending; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    if (why != NULL)
        kccl_log_warn(NET, "rank %d: refused a tcp data connection: %s", c->env.rank, why);
    if (p->fd >= 0) {
        epoll_ctl(c->epfd, EPOLL_CTL_DEL, p->fd, NULL);
        close(p->fd);
    }
    free(p);
}

static void drop_all_pending(tcp_ctx_t *c)
{
    while (c->pending != NULL)
        drop_pending(c, c->pending, NULL);
}

/* Acceptor: the endpoint a valid hello from rank `from` may take (NULL: refuse). */
static tcp_ep_t *hello_target(tcp_ctx_t *c, uint32_t from)
{
    if (from >= (uint32_t)c->env.nranks || (int)from >= c->env.rank)
        return NULL; /* only lower ranks dial */
    pthread_mutex_lock(&c->eps_lock);
    tcp_ep_t *ep = c->eps[from] ? c->eps[from] : ep_new(c, (int)from);
    pthread_mutex_unlock(&c->eps_lock);
    if (ep == NULL || ep->connector)
        return NULL;
    int st = ep_state(ep);
    return st == TCP_EP_NEW || st == TCP_EP_ACCEPTING ? ep : NULL;
}

/* Acceptor: bytes of a hello arrived on p. Adopts it as the peer's link when it checks out. */
static void on_hello(tcp_ctx_t *c, tcp_pending_t *p)
{
    ssize_t r = recv(p->fd, p->buf + p->got, TCP_HELLO_BYTES - p->got, 0);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
        drop_pending(c, p, "closed before its hello");
        return;
    }
    if (r > 0)
        p->got += (size_t)r;
    if (p->got < TCP_HELLO_BYTES)
        return;
    tcp_ep_t *ep = NULL;
    if (get32le(p->buf) == HELLO_MAGIC && kccl_auth_equal(p->buf + 8, c->token, TCP_TOKEN_BYTES))
        ep = hello_target(c, get32le(p->buf + 4));
    if (ep == NULL) {
        drop_pending(c, p, "bad hello (wrong group, rank or token, or a second link)");
        return;
    }
    uint8_t reply[8];
    put32le(reply, REPLY_MAGIC);
    put32le(reply + 4, (uint32_t)c->env.rank);
    if (send(p->fd, reply, sizeof(reply), MSG_NOSIGNAL) != (ssize_t)sizeof(reply)) {
        drop_pending(c, p, "reply failed");
        return;
    }
    ep->fd = p->fd;
    p->fd = -1;
    drop_pending(c, p, NULL);
    tune_socket(ep->fd);
    /* The socket is in the epoll set already (as p): re-point it at the endpoint. */
    ep->ev = EPOLLIN;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = ep};
    if (epoll_ctl(c->epfd, EPOLL_CTL_MOD, ep->fd, &ev) != 0) {
        kccl_tcp_ep_fail(ep, KCCL_ERR_SYSTEM, "epoll_ctl: %s", strerror(errno));
        return;
    }
    ep_set_state(ep, TCP_EP_READY);
}

static void accept_all(tcp_ctx_t *c)
{
    for (;;) {
        int fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                kccl_log_warn(NET, "rank %d: accept on the tcp data listener: %s", c->env.rank,
                              strerror(errno));
            return;
        }
        tcp_pending_t *p = calloc(1, sizeof(*p));
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)(uintptr_t)p | 1u};
        if (p == NULL || epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            free(p);
            close(fd);
            continue;
        }
        p->fd = fd;
        p->next = c->pending;
        c->pending = p;
    }
}

int kccl_tcp_setup_event(tcp_ctx_t *c, const struct epoll_event *ev)
{
    if (ev->data.u64 == TCP_TAG_LISTENER) {
        accept_all(c);
        return 1;
    }
    if (ev->data.u64 & 1u) {
        /* The pending connection's hello, from the epoll tag (not dereferenced before the
         * untag). A dropped pending connection left the epoll set before it was freed. */
        on_hello(c, (tcp_pending_t *)(uintptr_t)(ev->data.u64 & ~(uint64_t)1));
        return 1;
    }
    tcp_ep_t *ep = ev->data.ptr;
    int state = ep_state(ep);
    if (state != TCP_EP_CONNECTING && state != TCP_EP_WAIT_REPLY)
        return 0;
    kccl_status_t st = state == TCP_EP_CONNECTING ? on_connected(ep) : on_reply(ep);
    if (st != KCCL_OK && kccl_tcp_ep_status(ep) == KCCL_OK)
        kccl_tcp_ep_fail(ep, st, "set-up: epoll_ctl: %s", strerror(errno));
    return 1;
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
    .ep_connect_wait = tcp_ep_connect_wait,
    .put = kccl_tcp_put,
    .signal = kccl_tcp_signal,
    .flush = kccl_tcp_flush,
    .ep_status = kccl_tcp_ep_status,
    .ep_report = tcp_ep_report,
    .ep_close = tcp_ep_close,
};
