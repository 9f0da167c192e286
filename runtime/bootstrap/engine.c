/*
 * engine.c - the bootstrap's event loop (see engine.h for the model): waits with
 * deadlines, timers (connect retries, silent strangers), failure and ABORT
 * notices, the per-peer frame queues, and teardown with BYE. The bytes of
 * each connection are conn.c's job; what frames mean is handshake.c's.
 *
 * Ownership: every kccl_conn_t lives on bs->conns and is freed by
 * kccl_conn_destroy(); send_conn/recv_conn/root slots are cleared there too.
 * Frames are heap copies owned by the per-peer queue until taken.
 * All sockets are non-blocking; every wait goes through kccl_engine_wait().
 */
#include "bootstrap/engine.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "bootstrap/auth.h"
#include "bootstrap/conn.h"
#include "bootstrap/netif.h"
#include "core/error.h"

static char kccl_engine_abort_tag;
static char kccl_engine_listener_tag;
char kccl_root_listener_tag;

const char *kccl_step_str(uint32_t step)
{
    switch (step) {
#define KCCL_STEP_STR_(name, desc)                                                                 \
    case KCCL_STEP_##name: return desc;
        KCCL_STEP_MAP(KCCL_STEP_STR_)
#undef KCCL_STEP_STR_
    }
    return "unknown step";
}

int64_t kccl_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t kccl_now_ms(void)
{
    return kccl_now_ns() / 1000000;
}

/* ----------------------------------------------------------------- wait */

static void reap_strangers(kccl_bs_t *bs)
{
    for (kccl_conn_t *c = bs->conns, *next; c; c = next) {
        next = c->next;
        if (c->state == KCCL_CONN_DEAD && !c->pinned)
            kccl_conn_destroy(bs, c);
    }
}

/* Starts due connect retries, drops silent strangers; returns the next timer. */
static int64_t run_timers(kccl_bs_t *bs, int64_t now, int64_t wake)
{
    for (kccl_conn_t *c = bs->conns; c; c = c->next) {
        if (c->state == KCCL_CONN_CONNECTING && c->fd < 0) {
            if (c->retry_at <= now)
                kccl_conn_start_connect(bs, c);
            else if (c->retry_at < wake)
                wake = c->retry_at;
        } else if (c->hs_deadline && !c->outbound && c->state != KCCL_CONN_DEAD &&
                   c->state != KCCL_CONN_READY) {
            if (c->hs_deadline <= now) {
                kccl_log_warn(BOOT, "dropped connection from %s: no handshake within the deadline",
                              c->remote_text);
                kccl_conn_kill(bs, c, "handshake timed out");
            } else if (c->hs_deadline < wake) {
                wake = c->hs_deadline;
            }
        }
    }
    return wake;
}

static void on_abort_fd(kccl_bs_t *bs)
{
    uint64_t v;
    ssize_t r = read(bs->abort_fd, &v, sizeof(v));
    (void)r;
}

kccl_status_t kccl_engine_wait(kccl_bs_t *bs, int64_t deadline, kccl_engine_cond_fn cond, void *arg,
                               kccl_step_t step, int peer)
{
    struct epoll_event evs[64];
    for (;;) {
        reap_strangers(bs);
        if (bs->failed)
            return bs->failed;
        if (__atomic_load_n(&bs->aborted, __ATOMIC_ACQUIRE))
            return kccl_engine_fail(bs, KCCL_ERR_ABORTED, -1, step,
                                    "aborted by kccl_bootstrap_abort() during %s",
                                    kccl_step_str(step));
        int r = cond(bs, arg);
        if (r > 0)
            return KCCL_OK;
        if (r < 0)
            return (kccl_status_t)r;
        int64_t now = kccl_now_ms();
        if (now >= deadline) {
            bs->in_timeout = 1;
            r = cond(bs, arg);
            bs->in_timeout = 0;
            if (r != 0)
                return r > 0 ? KCCL_OK : (kccl_status_t)r;
            if (peer >= 0)
                return kccl_engine_fail(bs, KCCL_ERR_TIMED_OUT, -1, step,
                                        "%s: timed out after %.1f s waiting for rank %d; is it "
                                        "alive and reachable? (KCCL_BOOTSTRAP_TIMEOUT)",
                                        kccl_step_str(step), (double)bs->timeout_ms / 1000, peer);
            return kccl_engine_fail(bs, KCCL_ERR_TIMED_OUT, -1, step,
                                    "%s: timed out after %.1f s (KCCL_BOOTSTRAP_TIMEOUT)",
                                    kccl_step_str(step), (double)bs->timeout_ms / 1000);
        }
        int64_t wake = run_timers(bs, now, deadline);
        int timeout = wake > now ? (int)(wake - now) : 0;
        int n = epoll_wait(bs->epfd, evs, 64, timeout);
        if (n < 0 && errno != EINTR)
            return kccl_engine_fail(bs, KCCL_ERR_SYSTEM, -1, step, "epoll_wait failed: %s",
                                    strerror(errno));
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &kccl_engine_abort_tag)
                on_abort_fd(bs);
            else if (p == &kccl_engine_listener_tag)
                kccl_conn_accept_all(bs, bs->listen_fd, KCCL_CONN_KIND_P2P);
            else if (p == &kccl_root_listener_tag)
                kccl_root_on_accept(bs, NULL);
            else
                kccl_conn_event(bs, (kccl_conn_t *)p, evs[i].events);
        }
    }
}

void kccl_engine_accept_root(kccl_bs_t *bs, int root_fd)
{
    kccl_conn_accept_all(bs, root_fd, KCCL_CONN_KIND_CHECKIN);
}

int kccl_engine_sent(kccl_bs_t *bs, int peer, uint64_t seq)
{
    kccl_conn_t *c = bs->send_conn[peer];
    if (c == NULL)
        return kccl_engine_fail(bs, KCCL_ERR_INVALID_ARG, -1, KCCL_STEP_SEND,
                                "no connection to rank %d", peer);
    if (c->done_seq >= seq)
        return 1; /* delivered to the kernel, even if the peer has closed since */
    if (c->state == KCCL_CONN_DEAD)
        return kccl_engine_fail(bs, c->err ? c->err : KCCL_ERR_REMOTE, peer, KCCL_STEP_SEND,
                                "lost rank %d at %s: %s", peer, c->remote_text, c->why);
    return 0;
}

kccl_frame_t *kccl_engine_take(kccl_bs_t *bs, int peer, uint16_t type, uint32_t tag)
{
    kccl_frame_t *prev = NULL;
    for (kccl_frame_t *f = bs->q_head[peer]; f; prev = f, f = f->next) {
        if (f->hdr.type == type && f->hdr.tag == tag) {
            if (prev)
                prev->next = f->next;
            else
                bs->q_head[peer] = f->next;
            if (bs->q_tail[peer] == f)
                bs->q_tail[peer] = prev;
            f->next = NULL;
            return f;
        }
    }
    return NULL;
}

void kccl_frame_free(kccl_frame_t *f)
{
    if (f) {
        free(f->data);
        free(f);
    }
}

/* ---------------------------------------------------------------- fail */

kccl_status_t kccl_engine_fail(kccl_bs_t *bs, kccl_status_t status, int lost_rank, kccl_step_t step,
                               const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (bs->failed)
        return bs->failed;
    bs->failed = status;
    kccl_error_set("rank %d: %s", bs->rank, msg);
    kccl_log_error(BOOT, "%s", kccl_last_error());
    if (bs->abort_sent)
        return status;
    bs->abort_sent = 1;
    /* Tell every authenticated peer, so ranks waiting elsewhere learn who was
     * lost instead of waiting out their deadline. Best effort, non-blocking. */
    kccl_wire_abort_t a = {.lost_rank = lost_rank < 0 ? UINT32_MAX : (uint32_t)lost_rank,
                           .status = status,
                           .step = step};
    uint8_t p[KCCL_WIRE_ABORT_BYTES];
    kccl_wire_put_abort(p, &a);
    for (kccl_conn_t *c = bs->conns; c; c = c->next)
        if (c->state == KCCL_CONN_READY)
            kccl_engine_queue(bs, c, KCCL_MSG_ABORT, 0, p, sizeof(p), 1);
    return status;
}

/* ----------------------------------------------------------- lifecycle */

kccl_status_t kccl_engine_init(kccl_bs_t *bs)
{
    int n = bs->nranks;
    bs->epfd = bs->abort_fd = bs->listen_fd = -1;
    bs->send_conn = calloc((size_t)n, sizeof(*bs->send_conn));
    bs->recv_conn = calloc((size_t)n, sizeof(*bs->recv_conn));
    bs->q_head = calloc((size_t)n, sizeof(*bs->q_head));
    bs->q_tail = calloc((size_t)n, sizeof(*bs->q_tail));
    bs->data_rcvd = calloc((size_t)n, sizeof(*bs->data_rcvd));
    bs->bye_count = malloc((size_t)n * sizeof(*bs->bye_count));
    bs->peers = calloc((size_t)n, sizeof(*bs->peers));
    if (!bs->send_conn || !bs->recv_conn || !bs->q_head || !bs->q_tail || !bs->data_rcvd ||
        !bs->bye_count || !bs->peers)
        KCCL_FAIL(BOOT, KCCL_ERR_NO_MEMORY, "out of memory for a %d-rank bootstrap", n);
    for (int r = 0; r < n; r++)
        bs->bye_count[r] = -1;
    bs->epfd = epoll_create1(EPOLL_CLOEXEC);
    bs->abort_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (bs->epfd < 0 || bs->abort_fd < 0)
        KCCL_FAIL(BOOT, KCCL_ERR_SYSTEM, "epoll/eventfd failed: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &kccl_engine_abort_tag};
    if (epoll_ctl(bs->epfd, EPOLL_CTL_ADD, bs->abort_fd, &ev) != 0)
        KCCL_FAIL(BOOT, KCCL_ERR_SYSTEM, "epoll_ctl failed: %s", strerror(errno));
    return KCCL_OK;
}

kccl_status_t kccl_engine_add_listener(kccl_bs_t *bs, int fd, void *tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = tag ? tag : &kccl_engine_listener_tag};
    if (epoll_ctl(bs->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
        KCCL_FAIL(BOOT, KCCL_ERR_SYSTEM, "epoll_ctl on a listener failed: %s", strerror(errno));
    return KCCL_OK;
}

static int all_flushed(kccl_bs_t *bs, int want_bye)
{
    for (kccl_conn_t *c = bs->conns; c; c = c->next) {
        if (c->state != KCCL_CONN_READY)
            continue;
        if (c->out_head || c->hs_len)
            return 0;
        if (want_bye && !c->bye_rcvd && c->kind == KCCL_CONN_KIND_P2P)
            return 0;
    }
    return 1;
}

/* A quiet event loop for teardown: no deadline errors, no logging of them. */
static void drain(kccl_bs_t *bs, int64_t ms, int want_bye)
{
    int64_t end = kccl_now_ms() + ms;
    struct epoll_event evs[64];
    if (bs->epfd < 0)
        return;
    while (!all_flushed(bs, want_bye)) {
        int64_t left = end - kccl_now_ms();
        if (left <= 0)
            break;
        int n = epoll_wait(bs->epfd, evs, 64, (int)left);
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &kccl_engine_abort_tag)
                on_abort_fd(bs);
            else if (p != &kccl_engine_listener_tag && p != &kccl_root_listener_tag)
                kccl_conn_event(bs, (kccl_conn_t *)p, evs[i].events);
        }
    }
}

void kccl_engine_flush(kccl_bs_t *bs, int64_t ms)
{
    drain(bs, ms, 0);
}

void kccl_engine_close_reset(kccl_bs_t *bs, kccl_conn_t *c)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    if (c->fd >= 0)
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    kccl_conn_kill(bs, c, "closed");
}

void kccl_engine_fini(kccl_bs_t *bs, int64_t linger_ms)
{
    bs->closing = 1;
    if (bs->epfd >= 0 && linger_ms > 0) {
        /* BYE tells the peer how many DATA frames we sent it in all (they travel
         * on our send connection; the BYE may arrive on either). */
        for (kccl_conn_t *c = bs->conns; c; c = c->next) {
            if (c->state != KCCL_CONN_READY || c->kind != KCCL_CONN_KIND_P2P)
                continue;
            kccl_conn_t *sc = bs->send_conn[c->peer];
            uint8_t n[8];
            kccl_be64_put(n, sc ? sc->data_sent : 0);
            kccl_engine_queue(bs, c, KCCL_MSG_BYE, 0, n, sizeof(n), 1);
        }
        drain(bs, linger_ms, 1);
        for (kccl_conn_t *c = bs->conns; c; c = c->next)
            if (c->state == KCCL_CONN_READY && c->bye_rcvd && !c->out_head && !c->hs_len)
                kccl_engine_close_reset(bs, c);
    }
    while (bs->conns) {
        bs->conns->pinned = 0;
        kccl_conn_destroy(bs, bs->conns);
    }
    for (int r = 0; bs->q_head && r < bs->nranks; r++) {
        while (bs->q_head[r]) {
            kccl_frame_t *f = bs->q_head[r];
            bs->q_head[r] = f->next;
            kccl_frame_free(f);
        }
    }
    if (bs->listen_fd >= 0)
        close(bs->listen_fd);
    if (bs->abort_fd >= 0)
        close(bs->abort_fd);
    if (bs->epfd >= 0)
        close(bs->epfd);
    free(bs->send_conn);
    free(bs->recv_conn);
    free(bs->q_head);
    free(bs->q_tail);
    free(bs->data_rcvd);
    free(bs->bye_count);
    free(bs->peers);
    free(bs->table_bytes);
}
