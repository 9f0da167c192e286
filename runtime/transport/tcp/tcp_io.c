/*
 * tcp_io.c - the TCP transport's data path: application threads queue
 * operations and wait; one progress thread per communicator does all the
 * socket I/O without ever blocking (see tcp.h for the frame format).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "memory/gpu.h"
#include "transport/tcp/tcp.h"

/* ------------------------------------------------------------ helpers */

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void hdr_fill(uint8_t *h, int op, uint32_t id, uint32_t gen, uint64_t off, uint64_t val)
{
    memset(h, 0, TCP_HDR_BYTES);
    h[0] = (uint8_t)op;
    put32(h + 4, id);
    put32(h + 8, gen);
    put64(h + 16, off);
    put64(h + 24, val);
}

static void wake(tcp_ctx_t *c)
{
    uint64_t one = 1;
    ssize_t w = write(c->wake_fd, &one, sizeof(one));
    (void)w; /* a full eventfd counter still wakes the thread */
}

void kccl_tcp_ep_fail(tcp_ep_t *ep, kccl_status_t st, const char *fmt, ...)
{
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&ep->lock);
    if (ep->err == 0) {
        snprintf(ep->why, sizeof(ep->why), "rank %d: tcp link to rank %d: %s", ep->ctx->env.rank,
                 ep->peer, msg);
        __atomic_store_n(&ep->err, (int)st, __ATOMIC_RELEASE);
        __atomic_store_n(&ep->state, TCP_EP_FAILED, __ATOMIC_RELEASE);
        /* Quiet when both sides are closing; loud when work was outstanding. */
        if (__atomic_load_n(&ep->bye_due, __ATOMIC_ACQUIRE) ||
            __atomic_load_n(&ep->bye_rcvd, __ATOMIC_ACQUIRE) || ep->acked == ep->posted)
            kccl_log_debug(NET, "%s", ep->why);
        else
            kccl_log_warn(NET, "%s", ep->why);
    }
    pthread_cond_broadcast(&ep->cond);
    pthread_mutex_unlock(&ep->lock);
    if (ep->fd >= 0 && ep->ev) {
        epoll_ctl(ep->ctx->epfd, EPOLL_CTL_DEL, ep->fd, NULL);
        ep->ev = 0;
    }
}

kccl_status_t kccl_tcp_ep_status(kccl_tp_ep_t *ep)
{
    return (kccl_status_t)__atomic_load_n(&ep->err, __ATOMIC_ACQUIRE);
}

kccl_status_t kccl_tcp_ep_report(tcp_ep_t *ep, const char *what)
{
    kccl_status_t st = kccl_tcp_ep_status(ep);
    pthread_mutex_lock(&ep->lock);
    kccl_error_set("%s: %s", ep->why, what);
    pthread_mutex_unlock(&ep->lock);
    kccl_log_error(NET, "%s", kccl_last_error());
    return st;
}

/* ------------------------------------------------------- queueing side */

static kccl_status_t enqueue(tcp_ep_t *ep, tcp_op_t *o, const char *what)
{
    pthread_mutex_lock(&ep->lock);
    if (ep->err != 0 || __atomic_load_n(&ep->bye_rcvd, __ATOMIC_ACQUIRE)) {
        pthread_mutex_unlock(&ep->lock);
        free(o);
        if (ep->err == 0)
            KCCL_FAIL(NET, KCCL_ERR_REMOTE, "rank %d: %s to rank %d: the peer closed its link",
                      ep->ctx->env.rank, what, ep->peer);
        return kccl_tcp_ep_report(ep, what);
    }
    o->next = NULL;
    if (ep->q_tail)
        ep->q_tail->next = o;
    else
        ep->q_head = o;
    ep->q_tail = o;
    ep->posted++;
    pthread_mutex_unlock(&ep->lock);
    wake(ep->ctx);
    return KCCL_OK;
}

kccl_status_t kccl_tcp_put(kccl_tp_ep_t *ep, struct kccl_rmem *dst, uint64_t dst_off,
                           struct kccl_mem *src, uint64_t src_off, uint64_t len)
{
    tcp_op_t *o = calloc(1, sizeof(*o));
    if (o == NULL)
        KCCL_FAIL(NET, KCCL_ERR_NO_MEMORY, "out of memory for a put");
    hdr_fill(o->hdr, TCP_OP_PUT, dst->id, dst->gen, dst_off, len);
    o->src = (const uint8_t *)src->ptr + src_off;
    o->len = len;
    o->src_device = src->kind == KCCL_MEM_DEVICE ? src->device : -1;
    return enqueue(ep, o, "put");
}

kccl_status_t kccl_tcp_signal(kccl_tp_ep_t *ep, struct kccl_rmem *dst, uint64_t off)
{
    tcp_op_t *o = calloc(1, sizeof(*o));
    if (o == NULL)
        KCCL_FAIL(NET, KCCL_ERR_NO_MEMORY, "out of memory for a signal");
    hdr_fill(o->hdr, TCP_OP_SIGNAL, dst->id, dst->gen, off, 1);
    o->src_device = -1;
    return enqueue(ep, o, "signal");
}

kccl_status_t kccl_tcp_flush(kccl_tp_ep_t *ep, int64_t deadline_ms)
{
    kccl_status_t st = KCCL_OK;
    pthread_mutex_lock(&ep->lock);
    uint64_t target = ep->posted;
    ep->waiters++;
    while (ep->acked < target && ep->err == 0) {
        int64_t now = kccl_tp_now_ms();
        if (now >= deadline_ms) {
            st = KCCL_ERR_TIMED_OUT;
            break;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t wait = deadline_ms - now > 100 ? 100 : deadline_ms - now;
        ts.tv_nsec += (long)(wait * 1000000);
        ts.tv_sec += ts.tv_nsec / 1000000000;
        ts.tv_nsec %= 1000000000;
        pthread_cond_timedwait(&ep->cond, &ep->lock, &ts);
    }
    ep->waiters--;
    uint64_t acked = ep->acked;
    int failed = ep->err != 0 && acked < target;
    pthread_mutex_unlock(&ep->lock);
    if (failed)
        return kccl_tcp_ep_report(ep, "flush");
    if (st == KCCL_ERR_TIMED_OUT)
        KCCL_FAIL(NET, st,
                  "rank %d: flush to rank %d (tcp) timed out: %llu of %llu operations "
                  "acknowledged; is the peer alive and progressing?",
                  ep->ctx->env.rank, ep->peer, (unsigned long long)acked,
                  (unsigned long long)target);
    return KCCL_OK;
}

/* ------------------------------------------------------ progress: write */

static int arm(tcp_ep_t *ep, uint32_t events)
{
    if (ep->ev == events || ep->err)
        return 0;
    struct epoll_event ev = {.events = events, .data.ptr = ep};
    if (epoll_ctl(ep->ctx->epfd, EPOLL_CTL_MOD, ep->fd, &ev) != 0)
        return -1;
    ep->ev = events;
    return 0;
}

/* Next payload window of o at byte p (payload offset): host memory directly, device memory
 * through the staging buffer (refilled a chunk at a time). */
static const uint8_t *payload_window(tcp_ep_t *ep, tcp_op_t *o, uint64_t p, uint64_t *n)
{
    if (o->src_device < 0) {
        *n = o->len - p;
        return o->src + p;
    }
    const kccl_gpu_ops_t *gpu = kccl_gpu();
    uint64_t chunk = ep->ctx->chunk;
    if (gpu == NULL)
        return NULL;
    if (ep->tx_stage == NULL && gpu->host_alloc((void **)&ep->tx_stage, chunk) != KCCL_OK)
        return NULL;
    if (p < ep->tx_stage_off || p >= ep->tx_stage_off + ep->tx_stage_len) {
        uint64_t len = o->len - p < chunk ? o->len - p : chunk;
        if (gpu->copy_to_host(ep->tx_stage, o->src + p, len, o->src_device) != KCCL_OK)
            return NULL;
        ep->tx_stage_off = p;
        ep->tx_stage_len = len;
    }
    *n = ep->tx_stage_off + ep->tx_stage_len - p;
    return ep->tx_stage + (p - ep->tx_stage_off);
}

static tcp_op_t *next_op(tcp_ep_t *ep)
{
    if (ep->ack_due) {
        hdr_fill(ep->ctl.hdr, TCP_OP_ACK, 0, 0, 0, ep->processed);
        ep->ctl.len = ep->ctl.done = 0;
        ep->ack_due = 0;
        return &ep->ctl;
    }
    pthread_mutex_lock(&ep->lock);
    tcp_op_t *o = ep->q_head;
    if (o != NULL) {
        ep->q_head = o->next;
        if (ep->q_head == NULL)
            ep->q_tail = NULL;
    }
    pthread_mutex_unlock(&ep->lock);
    if (o == NULL && __atomic_load_n(&ep->bye_due, __ATOMIC_ACQUIRE) && !ep->bye_sent) {
        hdr_fill(ep->ctl.hdr, TCP_OP_BYE, 0, 0, 0, 0);
        ep->ctl.len = ep->ctl.done = 0;
        ep->bye_sending = 1;
        return &ep->ctl;
    }
    if (o != NULL)
        ep->tx_stage_len = 0;
    return o;
}

static void ep_write(tcp_ep_t *ep)
{
    while (ep->err == 0) {
        if (ep->cur == NULL && (ep->cur = next_op(ep)) == NULL) {
            arm(ep, EPOLLIN);
            return;
        }
        tcp_op_t *o = ep->cur;
        const uint8_t *p;
        uint64_t n;
        if (o->done < TCP_HDR_BYTES) {
            p = o->hdr + o->done;
            n = TCP_HDR_BYTES - o->done;
        } else {
            p = payload_window(ep, o, o->done - TCP_HDR_BYTES, &n);
            if (p == NULL) {
                kccl_tcp_ep_fail(ep, KCCL_ERR_CUDA, "staging a device buffer failed");
                return;
            }
        }
        ssize_t w = send(ep->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (arm(ep, EPOLLIN | EPOLLOUT) != 0)
                    kccl_tcp_ep_fail(ep, KCCL_ERR_SYSTEM, "epoll: %s", strerror(errno));
                return;
            }
            kccl_tcp_ep_fail(ep, KCCL_ERR_REMOTE,
                             "connection lost while sending (%s): the peer exited or was killed",
                             strerror(errno));
            return;
        }
        o->done += (uint64_t)w;
        if (o->done == TCP_HDR_BYTES + o->len) {
            if (o != &ep->ctl)
                free(o);
            else if (ep->bye_sending)
                __atomic_store_n(&ep->bye_sent, 1, __ATOMIC_RELEASE);
            ep->bye_sending = 0;
            ep->cur = NULL;
        }
    }
}

/* ------------------------------------------------------- progress: read */

static void signal_add(tcp_ep_t *ep, uint8_t *addr, int device, uint64_t v)
{
    if (device < 0) {
        __atomic_fetch_add((uint64_t *)(void *)addr, v, __ATOMIC_RELEASE);
        return;
    }
    /* Device counter: this thread is its only writer (one link per pair), so read-add-write. */
    const kccl_gpu_ops_t *gpu = kccl_gpu();
    uint64_t cur;
    if (gpu == NULL || gpu->copy_to_host(&cur, addr, 8, device) != KCCL_OK ||
        (cur += v, gpu->copy_to_device(addr, &cur, 8, device)) != KCCL_OK)
        kccl_tcp_ep_fail(ep, KCCL_ERR_CUDA, "signal to device memory failed");
}

/* A whole header arrived: act on it. */
static void on_header(tcp_ep_t *ep)
{
    const uint8_t *h = ep->rx_hdr;
    uint64_t off = get64(h + 16), val = get64(h + 24);
    void *addr;
    kccl_mem_kind_t kind;
    int dev;
    switch (h[0]) {
    case TCP_OP_ACK:
        pthread_mutex_lock(&ep->lock);
        if (val > ep->acked && val <= ep->posted) {
            ep->acked = val;
            if (ep->waiters)
                pthread_cond_broadcast(&ep->cond);
        }
        pthread_mutex_unlock(&ep->lock);
        return;
    case TCP_OP_BYE: __atomic_store_n(&ep->bye_rcvd, 1, __ATOMIC_RELEASE); return;
    case TCP_OP_PUT:
    case TCP_OP_SIGNAL: {
        uint64_t len = h[0] == TCP_OP_PUT ? val : 8;
        kccl_status_t st = kccl_memreg_resolve(ep->ctx->env.reg, get32(h + 4), get32(h + 8), off,
                                               len, &addr, &kind, &dev);
        if (st != KCCL_OK || (h[0] == TCP_OP_SIGNAL && off % 8 != 0)) {
            kccl_tcp_ep_fail(ep, KCCL_ERR_PROTOCOL,
                             "peer wrote %s registration %u (generation %u) at %llu+%llu: "
                             "refused",
                             st == KCCL_ERR_NOT_FOUND ? "an unknown" : "outside", get32(h + 4),
                             get32(h + 8), (unsigned long long)off, (unsigned long long)len);
            return;
        }
        if (h[0] == TCP_OP_SIGNAL) {
            signal_add(ep, addr, kind == KCCL_MEM_DEVICE ? dev : -1, val);
            ep->processed++;
            ep->ack_due = 1;
            return;
        }
        ep->rx_dst = addr;
        ep->rx_device = kind == KCCL_MEM_DEVICE ? dev : -1;
        ep->rx_left = val;
        ep->rx_stage_fill = 0;
        if (val == 0) {
            ep->processed++;
            ep->ack_due = 1;
        }
        return;
    }
    default: kccl_tcp_ep_fail(ep, KCCL_ERR_PROTOCOL, "unknown frame type %u", h[0]);
    }
}

/* Where the next payload bytes go and how many fit. */
static uint8_t *rx_window(tcp_ep_t *ep, uint64_t *n)
{
    if (ep->rx_device < 0) {
        *n = ep->rx_left;
        return ep->rx_dst;
    }
    const kccl_gpu_ops_t *gpu = kccl_gpu();
    if (gpu == NULL)
        return NULL;
    if (ep->rx_stage == NULL && gpu->host_alloc((void **)&ep->rx_stage, ep->ctx->chunk) != KCCL_OK)
        return NULL;
    uint64_t room = ep->ctx->chunk - ep->rx_stage_fill;
    *n = ep->rx_left < room ? ep->rx_left : room;
    return ep->rx_stage + ep->rx_stage_fill;
}

static void rx_payload_done(tcp_ep_t *ep, uint64_t got)
{
    if (ep->rx_device < 0) {
        ep->rx_dst += got;
        ep->rx_left -= got;
    } else {
        ep->rx_stage_fill += got;
        ep->rx_left -= got;
        if (ep->rx_stage_fill == ep->ctx->chunk || ep->rx_left == 0) {
            if (kccl_gpu()->copy_to_device(ep->rx_dst, ep->rx_stage, ep->rx_stage_fill,
                                           ep->rx_device) != KCCL_OK) {
                kccl_tcp_ep_fail(ep, KCCL_ERR_CUDA, "staging into device memory failed");
                return;
            }
            ep->rx_dst += ep->rx_stage_fill;
            ep->rx_stage_fill = 0;
        }
    }
    if (ep->rx_left == 0) {
        ep->processed++;
        ep->ack_due = 1;
    }
}

static void ep_read(tcp_ep_t *ep)
{
    for (int rounds = 0; rounds < 64 && ep->err == 0; rounds++) {
        uint8_t *p;
        uint64_t n;
        int in_payload = ep->rx_left > 0;
        if (in_payload) {
            p = rx_window(ep, &n);
            if (p == NULL) {
                kccl_tcp_ep_fail(ep, KCCL_ERR_CUDA, "no staging buffer for device memory");
                return;
            }
        } else {
            p = ep->rx_hdr + ep->rx_hdr_got;
            n = TCP_HDR_BYTES - ep->rx_hdr_got;
        }
        ssize_t r = recv(ep->fd, p, n, MSG_DONTWAIT);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r <= 0) {
            if (__atomic_load_n(&ep->bye_rcvd, __ATOMIC_ACQUIRE))
                kccl_tcp_ep_fail(ep, KCCL_ERR_REMOTE, "the peer closed its communicator");
            else
                kccl_tcp_ep_fail(ep, KCCL_ERR_REMOTE,
                                 "connection lost (%s): the peer exited or was killed",
                                 r == 0 ? "end of stream" : strerror(errno));
            return;
        }
        if (in_payload) {
            rx_payload_done(ep, (uint64_t)r);
        } else if ((ep->rx_hdr_got += (size_t)r) == TCP_HDR_BYTES) {
            ep->rx_hdr_got = 0;
            on_header(ep);
        }
    }
}

/* ------------------------------------------------------- progress loop */

static int ep_ready(tcp_ep_t *ep)
{
    return ep != NULL && __atomic_load_n(&ep->state, __ATOMIC_ACQUIRE) == TCP_EP_READY;
}

/* Work was queued: write on every ready endpoint that is not mid-operation. */
static void on_wake(tcp_ctx_t *c)
{
    uint64_t v;
    ssize_t r = read(c->wake_fd, &v, sizeof(v));
    (void)r;
    for (int p = 0; p < c->env.nranks; p++) {
        tcp_ep_t *ep = __atomic_load_n(&c->eps[p], __ATOMIC_ACQUIRE);
        if (ep_ready(ep) && ep->err == 0 && ep->cur == NULL)
            ep_write(ep); /* takes the queue lock; a no-op when idle */
    }
}

static void *progress_main(void *arg)
{
    tcp_ctx_t *c = arg;
    struct epoll_event evs[64];
    while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
        int n = epoll_wait(c->epfd, evs, 64, 100);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == c) {
                on_wake(c);
                continue;
            }
            if (kccl_tcp_setup_event(c, &evs[i]))
                continue;
            tcp_ep_t *ep = evs[i].data.ptr;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                ep_read(ep);
            if (ep->err == 0 && ((evs[i].events & EPOLLOUT) || ep->ack_due))
                ep_write(ep);
        }
    }
    return NULL;
}

kccl_status_t kccl_tcp_progress_start(tcp_ctx_t *c)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->wake_fd, &ev) != 0)
        KCCL_FAIL(NET, KCCL_ERR_SYSTEM, "rank %d: epoll_ctl: %s", c->env.rank, strerror(errno));
    int rc = pthread_create(&c->thread, NULL, progress_main, c);
    if (rc != 0)
        KCCL_FAIL(NET, KCCL_ERR_SYSTEM, "rank %d: cannot start the tcp progress thread: %s",
                  c->env.rank, strerror(rc));
    c->thread_started = 1;
    return KCCL_OK;
}

/* Says BYE on every link, gives peers up to linger_ms to say theirs, then stops. */
void kccl_tcp_progress_stop(tcp_ctx_t *c, int64_t linger_ms)
{
    if (!c->thread_started)
        return;
    for (int p = 0; p < c->env.nranks; p++)
        if (ep_ready(c->eps[p]))
            __atomic_store_n(&c->eps[p]->bye_due, 1, __ATOMIC_RELEASE);
    wake(c);
    int64_t end = kccl_tp_now_ms() + linger_ms;
    for (;;) {
        int open = 0;
        for (int p = 0; p < c->env.nranks; p++) {
            tcp_ep_t *ep = c->eps[p];
            if (ep_ready(ep) && __atomic_load_n(&ep->err, __ATOMIC_ACQUIRE) == 0 &&
                !(__atomic_load_n(&ep->bye_sent, __ATOMIC_ACQUIRE) &&
                  __atomic_load_n(&ep->bye_rcvd, __ATOMIC_ACQUIRE)))
                open++;
        }
        if (open == 0 || kccl_tp_now_ms() >= end)
            break;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
        wake(c);
    }
    __atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
    wake(c);
    pthread_join(c->thread, NULL);
    c->thread_started = 0;
}
