/*
 * conn.c - moving a bootstrap connection's bytes (see conn.h).
 *
 * Ownership: every kccl_conn_t lives on bs->conns and is freed by
 * kccl_conn_destroy(); send_conn/recv_conn/root slots are cleared there too.
 * All sockets are non-blocking; nothing here waits.
 */
#include "bootstrap/conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "bootstrap/auth.h"
#include "bootstrap/netif.h"
#include "core/error.h"

#define CONNECT_BACKOFF_MIN_MS 1
#define CONNECT_BACKOFF_MAX_MS 100

static void conn_set_events(kccl_bs_t *bs, kccl_conn_t *c, uint32_t events)
{
    if (c->fd < 0 || c->ep_events == events)
        return;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    int op = c->ep_events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (events == 0)
        op = EPOLL_CTL_DEL;
    if (epoll_ctl(bs->epfd, op, c->fd, &ev) == 0)
        c->ep_events = events;
}

void kccl_conn_update_events(kccl_bs_t *bs, kccl_conn_t *c)
{
    uint32_t ev = EPOLLIN | EPOLLRDHUP;
    if (c->state == KCCL_CONN_DEAD) {
        conn_set_events(bs, c, 0);
        return;
    }
    if (c->state == KCCL_CONN_CONNECTING)
        ev = EPOLLOUT;
    else if (c->hs_done < c->hs_len || (c->out_head && c->state == KCCL_CONN_READY))
        ev |= EPOLLOUT;
    conn_set_events(bs, c, ev);
}

kccl_conn_t *kccl_conn_new(kccl_bs_t *bs, int fd, int outbound)
{
    kccl_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->fd = fd;
    c->outbound = outbound;
    c->peer = -1;
    c->next = bs->conns;
    if (bs->conns)
        bs->conns->prev = c;
    bs->conns = c;
    return c;
}

static void outq_free(kccl_conn_t *c)
{
    while (c->out_head) {
        kccl_outbuf_t *o = c->out_head;
        c->out_head = o->next;
        free(o->owned);
        free(o);
    }
    c->out_tail = NULL;
}

/* Closes the socket; the struct stays (so waits can read why) until fini. */
void kccl_conn_kill(kccl_bs_t *bs, kccl_conn_t *c, const char *why)
{
    if (c->state == KCCL_CONN_DEAD)
        return;
    if (why && c->why[0] == '\0')
        snprintf(c->why, sizeof(c->why), "%s", why);
    c->state = KCCL_CONN_DEAD;
    if (c->fd >= 0)
        close(c->fd); /* also leaves the epoll set: no descriptor is shared */
    c->ep_events = 0;
    c->fd = -1;
    free(c->payload);
    c->payload = NULL;
    outq_free(c);
    if (bs->root)
        kccl_root_on_conn_dead(bs, c);
}

void kccl_conn_destroy(kccl_bs_t *bs, kccl_conn_t *c)
{
    kccl_conn_kill(bs, c, NULL);
    outq_free(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        bs->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->peer >= 0 && c->peer < bs->nranks) {
        if (bs->send_conn[c->peer] == c)
            bs->send_conn[c->peer] = NULL;
        if (bs->recv_conn[c->peer] == c)
            bs->recv_conn[c->peer] = NULL;
    }
    if (bs->root_conn == c)
        bs->root_conn = NULL;
    free(c);
}

/* --------------------------------------------------------------- output */

static int conn_write(kccl_bs_t *bs, kccl_conn_t *c, struct iovec *iov, int n, size_t *done)
{
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    for (;;) {
        ssize_t w = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w >= 0) {
            *done = (size_t)w;
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            *done = 0;
            return 1;
        }
        char why[96];
        snprintf(why, sizeof(why), "write failed: %s", strerror(errno));
        c->err = KCCL_ERR_REMOTE;
        kccl_conn_kill(bs, c, why);
        return -1;
    }
}

/* Fills iov with what is pending, handshake bytes first, then (once READY)
 * queued frames: one sendmsg carries a PROOF and the data behind it. */
static int flush_iov(kccl_conn_t *c, struct iovec *iov, int max)
{
    int n = 0;
    if (c->hs_done < c->hs_len) {
        iov[n].iov_base = c->hs_out + c->hs_done;
        iov[n++].iov_len = c->hs_len - c->hs_done;
    }
    if (c->state != KCCL_CONN_READY)
        return n;
    for (kccl_outbuf_t *o = c->out_head; o && n + 2 <= max; o = o->next) {
        if (o->done < KCCL_WIRE_HDR_BYTES) {
            iov[n].iov_base = o->hdr + o->done;
            iov[n++].iov_len = KCCL_WIRE_HDR_BYTES - o->done;
            if (o->len) {
                iov[n].iov_base = (void *)o->payload;
                iov[n++].iov_len = o->len;
            }
        } else {
            uint64_t off = o->done - KCCL_WIRE_HDR_BYTES;
            iov[n].iov_base = (void *)(o->payload + off);
            iov[n++].iov_len = o->len - off;
        }
    }
    return n;
}

/* Accounts w written bytes against hs_out and the queue. */
static void flush_advance(kccl_conn_t *c, size_t w)
{
    size_t hs = c->hs_len - c->hs_done;
    if (hs) {
        size_t k = w < hs ? w : hs;
        c->hs_done += k;
        w -= k;
        if (c->hs_done == c->hs_len)
            c->hs_len = c->hs_done = 0;
    }
    while (w > 0 && c->out_head) {
        kccl_outbuf_t *o = c->out_head;
        uint64_t left = KCCL_WIRE_HDR_BYTES + o->len - o->done;
        uint64_t k = w < left ? w : left;
        o->done += k;
        w -= k;
        if (o->done == KCCL_WIRE_HDR_BYTES + o->len) {
            c->done_seq++;
            c->out_head = o->next;
            if (c->out_head == NULL)
                c->out_tail = NULL;
            free(o->owned);
            free(o);
        }
    }
}

int kccl_conn_flush(kccl_bs_t *bs, kccl_conn_t *c)
{
    struct iovec iov[16];
    size_t w;
    if (c->state == KCCL_CONN_DEAD || c->state == KCCL_CONN_CONNECTING)
        return 0;
    for (;;) {
        int n = flush_iov(c, iov, 16);
        if (n == 0)
            break;
        int r = conn_write(bs, c, iov, n, &w);
        if (r < 0)
            return -1;
        flush_advance(c, w);
        if (r > 0)
            break;
    }
    kccl_conn_update_events(bs, c);
    return 0;
}

/* Appends a handshake frame to hs_out (never more than two are pending). */
void kccl_conn_hs_send(kccl_bs_t *bs, kccl_conn_t *c, uint16_t type, const uint8_t *payload,
                       size_t len)
{
    kccl_wire_hdr_t h = {
        .type = type, .src_rank = (uint32_t)(bs->rank < 0 ? 0 : bs->rank), .len = len};
    if (c->hs_len + KCCL_WIRE_HDR_BYTES + len > sizeof(c->hs_out))
        return; /* sizes are fixed by wire.h; cannot happen */
    kccl_wire_put_hdr(c->hs_out + c->hs_len, &h);
    memcpy(c->hs_out + c->hs_len + KCCL_WIRE_HDR_BYTES, payload, len);
    c->hs_len += KCCL_WIRE_HDR_BYTES + len;
    kccl_conn_flush(bs, c);
}

kccl_status_t kccl_engine_queue(kccl_bs_t *bs, kccl_conn_t *c, uint16_t type, uint32_t tag,
                                const void *payload, uint64_t len, int copy)
{
    if (c->state == KCCL_CONN_DEAD)
        return KCCL_ERR_REMOTE; /* nothing would ever send or free it */
    kccl_outbuf_t *o = calloc(1, sizeof(*o));
    if (o == NULL)
        return KCCL_ERR_NO_MEMORY;
    kccl_wire_hdr_t h = {.type = type, .tag = tag, .src_rank = (uint32_t)bs->rank, .len = len};
    kccl_wire_put_hdr(o->hdr, &h);
    o->len = len;
    o->payload = payload;
    if (copy && len) {
        o->owned = malloc(len);
        if (o->owned == NULL) {
            free(o);
            return KCCL_ERR_NO_MEMORY;
        }
        memcpy(o->owned, payload, len);
        o->payload = o->owned;
    }
    c->queued_seq++;
    if (type == KCCL_MSG_DATA)
        c->data_sent++;
    if (c->out_tail)
        c->out_tail->next = o;
    else
        c->out_head = o;
    c->out_tail = o;
    if (c->state == KCCL_CONN_READY && c->out_head == o)
        kccl_conn_flush(bs, c);
    return KCCL_OK;
}

/* -------------------------------------------------------------- connect */

static int connect_retryable(int err)
{
    return err == ECONNREFUSED || err == ETIMEDOUT || err == EHOSTUNREACH || err == ENETUNREACH ||
           err == ECONNRESET || err == ECONNABORTED || err == EAGAIN || err == EADDRNOTAVAIL;
}

static void connect_failed(kccl_bs_t *bs, kccl_conn_t *c, int err)
{
    c->last_errno = err;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->ep_events = 0;
    if (!connect_retryable(err)) {
        char why[128];
        snprintf(why, sizeof(why), "cannot connect to %s: %s", c->remote_text, strerror(err));
        c->err = KCCL_ERR_SYSTEM;
        kccl_conn_kill(bs, c, why);
        return;
    }
    /* Retry: the listener may not be up yet (a sidecar published the id before
     * rank 0 bound it). Exponential backoff with jitter, bounded by the wait. */
    uint32_t jitter = 0;
    kccl_random_bytes(&jitter, sizeof(jitter));
    int64_t delay = c->backoff_ms + (int64_t)(jitter % (uint32_t)(c->backoff_ms + 1));
    c->backoff_ms =
        c->backoff_ms * 2 > CONNECT_BACKOFF_MAX_MS ? CONNECT_BACKOFF_MAX_MS : c->backoff_ms * 2;
    c->retry_at = kccl_now_ms() + delay;
    c->state = KCCL_CONN_CONNECTING;
}

void kccl_conn_start_connect(kccl_bs_t *bs, kccl_conn_t *c)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    kccl_wire_addr_to_sockaddr(&c->remote, &ss, &sslen);
    c->retry_at = 0;
    c->tries++;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        connect_failed(bs, c, errno == EMFILE ? EMFILE : errno);
        return;
    }
    kccl_sock_nodelay(fd);
    c->fd = fd;
    c->ep_events = 0;
    if (connect(fd, (struct sockaddr *)&ss, sslen) == 0) {
        kccl_hs_client_start(bs, c);
    } else if (errno == EINPROGRESS) {
        c->state = KCCL_CONN_CONNECTING;
        kccl_conn_update_events(bs, c);
    } else {
        connect_failed(bs, c, errno);
    }
}

kccl_conn_t *kccl_engine_connect(kccl_bs_t *bs, const kccl_wire_addr_t *addr, uint8_t kind,
                                 int peer)
{
    kccl_conn_t *c = kccl_conn_new(bs, -1, 1);
    if (c == NULL)
        return NULL;
    c->kind = kind;
    c->peer = peer;
    c->remote = *addr;
    c->backoff_ms = CONNECT_BACKOFF_MIN_MS;
    kccl_wire_addr_format(addr, c->remote_text, sizeof(c->remote_text));
    kccl_conn_start_connect(bs, c);
    return c;
}

kccl_conn_t *kccl_engine_send_conn(kccl_bs_t *bs, int peer)
{
    kccl_conn_t *c = bs->send_conn[peer];
    if (c == NULL && bs->have_table) {
        c = kccl_engine_connect(bs, &bs->peers[peer].addr, KCCL_CONN_KIND_P2P, peer);
        if (c) {
            c->pinned = 1;
            bs->send_conn[peer] = c;
        }
    }
    return c;
}

/* --------------------------------------------------------------- accept */

kccl_conn_t *kccl_engine_adopt(kccl_bs_t *bs, int fd, uint8_t kind, const struct sockaddr *peer)
{
    kccl_conn_t *c = kccl_conn_new(bs, fd, 0);
    if (c == NULL) {
        close(fd);
        return NULL;
    }
    c->kind = kind;
    c->state = KCCL_CONN_WAIT_HELLO;
    int64_t hs =
        bs->timeout_ms < KCCL_HANDSHAKE_TIMEOUT_MS ? bs->timeout_ms : KCCL_HANDSHAKE_TIMEOUT_MS;
    c->hs_deadline = kccl_now_ms() + hs;
    if (peer && kccl_wire_addr_from_sockaddr(peer, &c->remote) == KCCL_OK)
        kccl_wire_addr_format(&c->remote, c->remote_text, sizeof(c->remote_text));
    else
        snprintf(c->remote_text, sizeof(c->remote_text), "(local)");
    kccl_conn_update_events(bs, c);
    return c;
}

void kccl_conn_accept_all(kccl_bs_t *bs, int lfd, uint8_t kind)
{
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE)
                kccl_log_warn(BOOT,
                              "cannot accept a bootstrap connection: %s; raise the open-file "
                              "limit (ulimit -n)",
                              strerror(errno));
            return;
        }
        kccl_sock_nodelay(fd);
        if (kccl_engine_adopt(bs, fd, kind, (struct sockaddr *)&ss) == NULL)
            return;
    }
}

static ssize_t conn_recv(kccl_bs_t *bs, kccl_conn_t *c, void *buf, size_t len)
{
    for (;;) {
        ssize_t n = recv(c->fd, buf, len, MSG_DONTWAIT);
        if (n > 0)
            return n;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        char why[96];
        if (n == 0)
            snprintf(why, sizeof(why), "connection closed by the peer");
        else
            snprintf(why, sizeof(why), "read failed: %s", strerror(errno));
        if (c->state == KCCL_CONN_WAIT_HELLO)
            kccl_log_info(BOOT, "connection from %s closed before its hello (port scan?)",
                          c->remote_text);
        c->err = KCCL_ERR_REMOTE;
        kccl_conn_kill(bs, c, why);
        return -1;
    }
}

/* A whole header is in hdrbuf: validate it and get the payload buffer. */
static int conn_begin_payload(kccl_bs_t *bs, kccl_conn_t *c)
{
    const char *why = NULL;
    if (kccl_wire_get_hdr(c->hdrbuf, KCCL_WIRE_HDR_BYTES, &c->hdr, &why) != KCCL_OK ||
        (c->state != KCCL_CONN_READY && c->hdr.len > KCCL_HANDSHAKE_MAX_FRAME)) {
        why = why ? why : "oversized handshake frame";
        if (c->state == KCCL_CONN_READY || c->outbound)
            kccl_log_error(BOOT, "protocol error from %s (rank %d): %s", c->remote_text, c->peer,
                           why);
        else
            kccl_log_warn(BOOT, "dropped connection from %s: %s", c->remote_text, why);
        c->err = KCCL_ERR_PROTOCOL;
        kccl_conn_kill(bs, c, why);
        return -1;
    }
    c->payload_got = 0;
    c->payload = malloc(c->hdr.len ? c->hdr.len : 1);
    if (c->payload == NULL) {
        c->err = KCCL_ERR_NO_MEMORY;
        kccl_conn_kill(bs, c, "out of memory for a frame");
        return -1;
    }
    return 0;
}

/* Consumes bytes already received into frames; returns -1 once c died. */
static int conn_parse(kccl_bs_t *bs, kccl_conn_t *c, const uint8_t *p, size_t n)
{
    while (n > 0 || (c->hdr_got == KCCL_WIRE_HDR_BYTES && c->payload_got == c->hdr.len)) {
        if (c->hdr_got < KCCL_WIRE_HDR_BYTES) {
            size_t k = KCCL_WIRE_HDR_BYTES - c->hdr_got;
            k = k < n ? k : n;
            if (k)
                memcpy(c->hdrbuf + c->hdr_got, p, k);
            c->hdr_got += k, p += k, n -= k;
            if (c->hdr_got < KCCL_WIRE_HDR_BYTES)
                return 0;
            if (conn_begin_payload(bs, c) != 0)
                return -1;
        }
        uint64_t left = c->hdr.len - c->payload_got;
        size_t k = left < n ? (size_t)left : n;
        if (k)
            memcpy(c->payload + c->payload_got, p, k);
        c->payload_got += k, p += k, n -= k;
        if (c->payload_got < c->hdr.len)
            return 0;
        uint8_t *frame = c->payload;
        kccl_wire_hdr_t h = c->hdr;
        c->payload = NULL;
        c->hdr_got = 0;
        kccl_hs_on_frame(bs, c, &h, frame);
        if (c->state == KCCL_CONN_DEAD)
            return -1;
    }
    return 0;
}

static void conn_read(kccl_bs_t *bs, kccl_conn_t *c)
{
    uint8_t buf[4096];
    while (c->state != KCCL_CONN_DEAD) {
        /* The tail of a large payload goes straight into its buffer. */
        if (c->hdr_got == KCCL_WIRE_HDR_BYTES && c->hdr.len - c->payload_got >= sizeof(buf)) {
            ssize_t n = conn_recv(bs, c, c->payload + c->payload_got, c->hdr.len - c->payload_got);
            if (n <= 0)
                return;
            c->payload_got += (uint64_t)n;
            if (conn_parse(bs, c, NULL, 0) != 0)
                return;
            continue;
        }
        ssize_t n = conn_recv(bs, c, buf, sizeof(buf));
        if (n <= 0 || conn_parse(bs, c, buf, (size_t)n) != 0)
            return;
        if ((size_t)n < sizeof(buf))
            return; /* drained: level-triggered epoll reports more */
    }
}

void kccl_conn_event(kccl_bs_t *bs, kccl_conn_t *c, uint32_t events)
{
    if (c->state == KCCL_CONN_DEAD)
        return;
    if (c->state == KCCL_CONN_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err == 0 && (events & EPOLLOUT))
            kccl_hs_client_start(bs, c);
        else if (err != 0)
            connect_failed(bs, c, err);
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))
        conn_read(bs, c);
    if (c->state != KCCL_CONN_DEAD && (events & EPOLLOUT))
        kccl_conn_flush(bs, c);
}

void kccl_engine_close(kccl_bs_t *bs, kccl_conn_t *c, const char *why)
{
    kccl_conn_kill(bs, c, why);
}
