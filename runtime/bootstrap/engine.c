/*
 * engine.c - the bootstrap's connection engine (see engine.h for the model).
 *
 * Ownership: every kccl_conn_t lives on bs->conns and is freed by
 * conn_destroy(); send_conn/recv_conn/root slots are cleared there too.
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
#include "bootstrap/netif.h"
#include "core/error.h"

/* Frames on an unauthenticated connection are tiny; a stranger cannot make us allocate. */
#define HANDSHAKE_MAX_FRAME 256
/* How long a silent inbound connection may hold a slot before it is dropped. */
#define HANDSHAKE_TIMEOUT_MS 10000
#define CONNECT_BACKOFF_MIN_MS 1
#define CONNECT_BACKOFF_MAX_MS 100

static char abort_tag;
static char listener_tag;
char kccl_root_listener_tag;

const char *kccl_step_str(uint32_t step)
{
    switch (step) {
#define KCCL_STEP_STR_(name, desc)                                                                 \
    case KCCL_STEP_##name:                                                                         \
        return desc;
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

/* ------------------------------------------------------------------ conns */

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

static void conn_update_events(kccl_bs_t *bs, kccl_conn_t *c)
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

static kccl_conn_t *conn_new(kccl_bs_t *bs, int fd, int outbound)
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
static void conn_kill(kccl_bs_t *bs, kccl_conn_t *c, const char *why)
{
    if (c->state == KCCL_CONN_DEAD)
        return;
    if (why && c->why[0] == '\0')
        snprintf(c->why, sizeof(c->why), "%s", why);
    int was_ready = c->state == KCCL_CONN_READY;
    c->state = KCCL_CONN_DEAD;
    if (c->fd >= 0)
        close(c->fd); /* also leaves the epoll set: no descriptor is shared */
    c->ep_events = 0;
    c->fd = -1;
    free(c->payload);
    c->payload = NULL;
    outq_free(c);
    if (was_ready && c->peer >= 0 && c->kind == KCCL_CONN_KIND_P2P)
        bs->peer_gone[c->peer] = 1;
    if (bs->root)
        kccl_root_on_conn_dead(bs, c);
}

static void conn_destroy(kccl_bs_t *bs, kccl_conn_t *c)
{
    conn_kill(bs, c, NULL);
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
        conn_kill(bs, c, why);
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

static int conn_flush(kccl_bs_t *bs, kccl_conn_t *c)
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
    conn_update_events(bs, c);
    return 0;
}

/* Appends a handshake frame to hs_out (never more than two are pending). */
static void conn_hs_send(kccl_bs_t *bs, kccl_conn_t *c, uint16_t type, const uint8_t *payload,
                         size_t len)
{
    kccl_wire_hdr_t h = {.type = type, .src_rank = (uint32_t)(bs->rank < 0 ? 0 : bs->rank),
                         .len = len};
    if (c->hs_len + KCCL_WIRE_HDR_BYTES + len > sizeof(c->hs_out))
        return; /* sizes are fixed by wire.h; cannot happen */
    kccl_wire_put_hdr(c->hs_out + c->hs_len, &h);
    memcpy(c->hs_out + c->hs_len + KCCL_WIRE_HDR_BYTES, payload, len);
    c->hs_len += KCCL_WIRE_HDR_BYTES + len;
    conn_flush(bs, c);
}

kccl_status_t kccl_engine_queue(kccl_bs_t *bs, kccl_conn_t *c, uint16_t type, uint32_t tag,
                                const void *payload, uint64_t len, int copy)
{
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
    if (c->out_tail)
        c->out_tail->next = o;
    else
        c->out_head = o;
    c->out_tail = o;
    if (c->state == KCCL_CONN_READY && c->out_head == o)
        conn_flush(bs, c);
    return KCCL_OK;
}

/* -------------------------------------------------------------- connect */

static int connect_retryable(int err)
{
    return err == ECONNREFUSED || err == ETIMEDOUT || err == EHOSTUNREACH ||
           err == ENETUNREACH || err == ECONNRESET || err == ECONNABORTED || err == EAGAIN ||
           err == EADDRNOTAVAIL;
}

static void on_connected(kccl_bs_t *bs, kccl_conn_t *c);

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
        conn_kill(bs, c, why);
        return;
    }
    /* Retry: the listener may not be up yet (a sidecar published the id before
     * rank 0 bound it). Exponential backoff with jitter, bounded by the wait. */
    uint32_t jitter = 0;
    kccl_random_bytes(&jitter, sizeof(jitter));
    int64_t delay = c->backoff_ms + (int64_t)(jitter % (uint32_t)(c->backoff_ms + 1));
    c->backoff_ms = c->backoff_ms * 2 > CONNECT_BACKOFF_MAX_MS ? CONNECT_BACKOFF_MAX_MS
                                                               : c->backoff_ms * 2;
    c->retry_at = kccl_now_ms() + delay;
    c->state = KCCL_CONN_CONNECTING;
}

static void conn_start_connect(kccl_bs_t *bs, kccl_conn_t *c)
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
        on_connected(bs, c);
    } else if (errno == EINPROGRESS) {
        c->state = KCCL_CONN_CONNECTING;
        conn_update_events(bs, c);
    } else {
        connect_failed(bs, c, errno);
    }
}

static void on_connected(kccl_bs_t *bs, kccl_conn_t *c)
{
    kccl_wire_hello_t h = {.version = KCCL_WIRE_VERSION,
                           .kind = c->kind,
                           .rank = (uint32_t)bs->rank,
                           .nranks = (uint32_t)bs->nranks};
    memcpy(h.group_nonce, bs->uid.nonce, KCCL_NONCE_BYTES);
    kccl_random_bytes(h.client_nonce, KCCL_NONCE_BYTES);
    kccl_wire_put_hello(c->hello, &h);
    c->state = KCCL_CONN_WAIT_CHALLENGE;
    c->hs_len = c->hs_done = 0;
    conn_hs_send(bs, c, KCCL_MSG_HELLO, c->hello, KCCL_WIRE_HELLO_BYTES);
}

kccl_conn_t *kccl_engine_connect(kccl_bs_t *bs, const kccl_wire_addr_t *addr, uint8_t kind,
                                 int peer)
{
    kccl_conn_t *c = conn_new(bs, -1, 1);
    if (c == NULL)
        return NULL;
    c->kind = kind;
    c->peer = peer;
    c->remote = *addr;
    c->backoff_ms = CONNECT_BACKOFF_MIN_MS;
    kccl_wire_addr_format(addr, c->remote_text, sizeof(c->remote_text));
    conn_start_connect(bs, c);
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
    kccl_conn_t *c = conn_new(bs, fd, 0);
    if (c == NULL) {
        close(fd);
        return NULL;
    }
    c->kind = kind;
    c->state = KCCL_CONN_WAIT_HELLO;
    int64_t hs = bs->timeout_ms < HANDSHAKE_TIMEOUT_MS ? bs->timeout_ms : HANDSHAKE_TIMEOUT_MS;
    c->hs_deadline = kccl_now_ms() + hs;
    if (peer && kccl_wire_addr_from_sockaddr(peer, &c->remote) == KCCL_OK)
        kccl_wire_addr_format(&c->remote, c->remote_text, sizeof(c->remote_text));
    else
        snprintf(c->remote_text, sizeof(c->remote_text), "(local)");
    conn_update_events(bs, c);
    return c;
}

static void accept_all(kccl_bs_t *bs, int lfd, uint8_t kind)
{
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE)
                kccl_log_warn(BOOT, "cannot accept a bootstrap connection: %s; raise the open-file "
                                    "limit (ulimit -n)", strerror(errno));
            return;
        }
        kccl_sock_nodelay(fd);
        if (kccl_engine_adopt(bs, fd, kind, (struct sockaddr *)&ss) == NULL)
            return;
    }
}

/* ------------------------------------------------------------ handshake */

static void refuse(kccl_bs_t *bs, kccl_conn_t *c, uint32_t reason, uint32_t detail,
                   int claimed_rank)
{
    uint8_t p[8];
    kccl_be32_put(p, reason);
    kccl_be32_put(p + 4, detail);
    kccl_log_warn(BOOT, "refused %s connection from %s claiming rank %d: %s",
                  c->kind == KCCL_CONN_KIND_CHECKIN ? "check-in" : "peer", c->remote_text,
                  claimed_rank, kccl_refuse_str(reason));
    conn_hs_send(bs, c, KCCL_MSG_REFUSE, p, sizeof(p));
    conn_kill(bs, c, kccl_refuse_str(reason));
}

void kccl_engine_refuse(kccl_bs_t *bs, kccl_conn_t *c, uint32_t reason, uint32_t detail)
{
    refuse(bs, c, reason, detail, c->peer);
}

void kccl_engine_close(kccl_bs_t *bs, kccl_conn_t *c, const char *why)
{
    conn_kill(bs, c, why);
}

static void on_hello(kccl_bs_t *bs, kccl_conn_t *c, const kccl_wire_hdr_t *hdr,
                     const uint8_t *payload)
{
    kccl_wire_hello_t h;
    const char *why = NULL;
    uint32_t reason = 0, detail = 0;
    if (hdr->type != KCCL_MSG_HELLO || kccl_wire_get_hello(payload, hdr->len, &h, &why)) {
        kccl_log_warn(BOOT, "dropped connection from %s: %s", c->remote_text,
                      why ? why : "expected a hello");
        conn_kill(bs, c, "bad hello");
        return;
    }
    if (h.version != KCCL_WIRE_VERSION)
        reason = KCCL_REFUSE_BAD_VERSION, detail = KCCL_WIRE_VERSION;
    else if (memcmp(h.group_nonce, bs->uid.nonce, KCCL_NONCE_BYTES) != 0)
        reason = KCCL_REFUSE_WRONG_GROUP;
    else if (h.nranks != (uint32_t)bs->nranks)
        reason = KCCL_REFUSE_WORLD_SIZE, detail = (uint32_t)bs->nranks;
    else if (h.rank >= h.nranks)
        reason = KCCL_REFUSE_RANK_RANGE, detail = (uint32_t)bs->nranks;
    else if (h.kind != c->kind)
        reason = KCCL_REFUSE_BAD_KIND;
    else if (c->kind == KCCL_CONN_KIND_CHECKIN)
        kccl_root_on_hello(bs, c, &h, &reason, &detail);
    else if (bs->recv_conn[h.rank] && bs->recv_conn[h.rank]->state != KCCL_CONN_DEAD)
        reason = KCCL_REFUSE_DUPLICATE;
    if (reason) {
        refuse(bs, c, reason, detail, (int)h.rank);
        return;
    }
    uint8_t ch[KCCL_WIRE_CHALLENGE_BYTES];
    memcpy(c->hello, payload, KCCL_WIRE_HELLO_BYTES);
    c->peer = (int)h.rank;
    kccl_random_bytes(c->server_nonce, KCCL_NONCE_BYTES);
    memcpy(ch, c->server_nonce, KCCL_NONCE_BYTES);
    kccl_hmac(&bs->hkey, "kccl-a", c->hello, KCCL_WIRE_HELLO_BYTES, c->server_nonce,
                  KCCL_NONCE_BYTES, NULL, 0, ch + KCCL_NONCE_BYTES);
    c->state = KCCL_CONN_WAIT_PROOF;
    conn_hs_send(bs, c, KCCL_MSG_CHALLENGE, ch, sizeof(ch));
}

static void on_proof(kccl_bs_t *bs, kccl_conn_t *c, const kccl_wire_hdr_t *hdr,
                     const uint8_t *payload)
{
    uint8_t mac[KCCL_MAC_BYTES];
    if (hdr->type != KCCL_MSG_PROOF || hdr->len < KCCL_MAC_BYTES) {
        kccl_log_warn(BOOT, "dropped connection from %s: expected a proof", c->remote_text);
        conn_kill(bs, c, "bad proof");
        return;
    }
    const uint8_t *rest = payload + KCCL_MAC_BYTES;
    uint64_t restlen = hdr->len - KCCL_MAC_BYTES;
    kccl_hmac(&bs->hkey, "kccl-c", c->hello, KCCL_WIRE_HELLO_BYTES, c->server_nonce,
                  KCCL_NONCE_BYTES, rest, restlen, mac);
    if (!kccl_auth_equal(mac, payload, KCCL_MAC_BYTES)) {
        refuse(bs, c, KCCL_REFUSE_AUTH, 0, c->peer);
        return;
    }
    if (c->kind == KCCL_CONN_KIND_CHECKIN) {
        c->state = KCCL_CONN_READY;
        c->hs_deadline = 0;
        if (!kccl_root_on_checkin(bs, c, rest, restlen))
            conn_kill(bs, c, "bad check-in");
        return;
    }
    if (restlen != 0 || (bs->recv_conn[c->peer] && bs->recv_conn[c->peer]->state !=
                                                        KCCL_CONN_DEAD)) {
        refuse(bs, c, KCCL_REFUSE_DUPLICATE, 0, c->peer);
        return;
    }
    if (bs->recv_conn[c->peer])
        bs->recv_conn[c->peer]->pinned = 0; /* the dead one: reaped */
    bs->recv_conn[c->peer] = c;
    c->pinned = 1;
    c->state = KCCL_CONN_READY;
    c->hs_deadline = 0;
    bs->peer_gone[c->peer] = 0;
    conn_update_events(bs, c);
}

static void on_challenge(kccl_bs_t *bs, kccl_conn_t *c, const kccl_wire_hdr_t *hdr,
                         const uint8_t *payload)
{
    uint8_t mac[KCCL_MAC_BYTES], proof[KCCL_MAC_BYTES + KCCL_WIRE_CHECKIN_BYTES];
    size_t extra = c->kind == KCCL_CONN_KIND_CHECKIN ? KCCL_WIRE_CHECKIN_BYTES : 0;
    if (hdr->type != KCCL_MSG_CHALLENGE || hdr->len != KCCL_WIRE_CHALLENGE_BYTES) {
        c->err = KCCL_ERR_PROTOCOL;
        conn_kill(bs, c, "the peer answered the hello with something other than a challenge");
        return;
    }
    kccl_hmac(&bs->hkey, "kccl-a", c->hello, KCCL_WIRE_HELLO_BYTES, payload, KCCL_NONCE_BYTES,
                  NULL, 0, mac);
    if (!kccl_auth_equal(mac, payload + KCCL_NONCE_BYTES, KCCL_MAC_BYTES)) {
        c->err = KCCL_ERR_AUTH;
        conn_kill(bs, c, "the peer failed authentication: it does not hold this group's secret "
                         "(check KCCL_GROUP_SECRET_FILE on both sides)");
        return;
    }
    memcpy(proof + KCCL_MAC_BYTES, c->checkin, extra);
    kccl_hmac(&bs->hkey, "kccl-c", c->hello, KCCL_WIRE_HELLO_BYTES, payload, KCCL_NONCE_BYTES,
                  proof + KCCL_MAC_BYTES, extra, proof);
    c->state = KCCL_CONN_READY;
    conn_hs_send(bs, c, KCCL_MSG_PROOF, proof, KCCL_MAC_BYTES + extra);
}

static void on_refuse(kccl_bs_t *bs, kccl_conn_t *c, const kccl_wire_hdr_t *hdr,
                      const uint8_t *payload)
{
    uint32_t reason = hdr->len >= 8 ? kccl_be32_get(payload) : 0;
    uint32_t detail = hdr->len >= 8 ? kccl_be32_get(payload + 4) : 0;
    char why[160];
    if (reason == KCCL_REFUSE_WORLD_SIZE || reason == KCCL_REFUSE_RANK_RANGE)
        snprintf(why, sizeof(why), "%s refused us: %s (it has world size %u)", c->remote_text,
                 kccl_refuse_str(reason), detail);
    else
        snprintf(why, sizeof(why), "%s refused us: %s", c->remote_text, kccl_refuse_str(reason));
    c->err = reason == KCCL_REFUSE_AUTH ? KCCL_ERR_AUTH : KCCL_ERR_PROTOCOL;
    conn_kill(bs, c, why);
}

/* ---------------------------------------------------------------- input */

static void queue_frame(kccl_bs_t *bs, int peer, const kccl_wire_hdr_t *hdr, uint8_t *data)
{
    kccl_frame_t *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        free(data);
        kccl_engine_fail(bs, KCCL_ERR_NO_MEMORY, -1, KCCL_STEP_RECV,
                         "out of memory queueing a frame from rank %d", peer);
        return;
    }
    f->hdr = *hdr;
    f->data = data;
    if (bs->q_tail[peer])
        bs->q_tail[peer]->next = f;
    else
        bs->q_head[peer] = f;
    bs->q_tail[peer] = f;
}

static void on_abort_notice(kccl_bs_t *bs, kccl_conn_t *c, const kccl_wire_hdr_t *hdr,
                            const uint8_t *payload)
{
    kccl_wire_abort_t a;
    const char *why = NULL;
    if (kccl_wire_get_abort(payload, hdr->len, &a, &why) != KCCL_OK) {
        a.lost_rank = UINT32_MAX;
        a.step = 0;
    }
    if (bs->failed)
        return;
    int from = c->peer;
    if (c->kind == KCCL_CONN_KIND_CHECKIN && c->outbound)
        from = 0;
    if (a.lost_rank == UINT32_MAX)
        kccl_engine_fail(bs, KCCL_ERR_REMOTE, -1, (kccl_step_t)a.step,
                         "rank %d gave up during %s", from, kccl_step_str(a.step));
    else if (a.step == KCCL_STEP_ROOT)
        kccl_engine_fail(bs, KCCL_ERR_REMOTE, (int)a.lost_rank, KCCL_STEP_ROOT,
                         "lost rank %u: the root reports it %s", a.lost_rank,
                         a.status == KCCL_ERR_TIMED_OUT ? "never checked in"
                                                        : "went away after checking in");
    else
        kccl_engine_fail(bs, KCCL_ERR_REMOTE, (int)a.lost_rank, (kccl_step_t)a.step,
                         "lost rank %u (reported by rank %d during %s)", a.lost_rank, from,
                         kccl_step_str(a.step));
}

/* Handles one whole frame; takes ownership of payload. */
static void on_frame(kccl_bs_t *bs, kccl_conn_t *c, const kccl_wire_hdr_t *hdr, uint8_t *payload)
{
    switch (c->state) {
    case KCCL_CONN_WAIT_HELLO:
        on_hello(bs, c, hdr, payload);
        break;
    case KCCL_CONN_WAIT_PROOF:
        on_proof(bs, c, hdr, payload);
        break;
    case KCCL_CONN_WAIT_CHALLENGE:
        if (hdr->type == KCCL_MSG_REFUSE)
            on_refuse(bs, c, hdr, payload);
        else
            on_challenge(bs, c, hdr, payload);
        break;
    case KCCL_CONN_READY:
        if (hdr->type == KCCL_MSG_DATA && c->kind == KCCL_CONN_KIND_P2P &&
            hdr->src_rank == (uint32_t)c->peer) {
            queue_frame(bs, c->peer, hdr, payload);
            return;
        }
        if (hdr->type == KCCL_MSG_TABLE && c->outbound && c->kind == KCCL_CONN_KIND_CHECKIN &&
            bs->table_bytes == NULL) {
            bs->table_bytes = payload;
            bs->table_len = hdr->len;
            return;
        }
        if (hdr->type == KCCL_MSG_BYE)
            c->bye_rcvd = 1;
        else if (hdr->type == KCCL_MSG_ABORT)
            on_abort_notice(bs, c, hdr, payload);
        else if (hdr->type == KCCL_MSG_REFUSE && c->outbound)
            on_refuse(bs, c, hdr, payload);
        else {
            c->err = KCCL_ERR_PROTOCOL;
            conn_kill(bs, c, "unexpected frame from an authenticated peer");
        }
        break;
    default:
        break;
    }
    free(payload);
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
        conn_kill(bs, c, why);
        return -1;
    }
}

/* A whole header is in hdrbuf: validate it and get the payload buffer. */
static int conn_begin_payload(kccl_bs_t *bs, kccl_conn_t *c)
{
    const char *why = NULL;
    if (kccl_wire_get_hdr(c->hdrbuf, KCCL_WIRE_HDR_BYTES, &c->hdr, &why) != KCCL_OK ||
        (c->state != KCCL_CONN_READY && c->hdr.len > HANDSHAKE_MAX_FRAME)) {
        why = why ? why : "oversized handshake frame";
        if (c->state == KCCL_CONN_READY || c->outbound)
            kccl_log_error(BOOT, "protocol error from %s (rank %d): %s", c->remote_text, c->peer,
                           why);
        else
            kccl_log_warn(BOOT, "dropped connection from %s: %s", c->remote_text, why);
        c->err = KCCL_ERR_PROTOCOL;
        conn_kill(bs, c, why);
        return -1;
    }
    c->payload_got = 0;
    c->payload = malloc(c->hdr.len ? c->hdr.len : 1);
    if (c->payload == NULL) {
        c->err = KCCL_ERR_NO_MEMORY;
        conn_kill(bs, c, "out of memory for a frame");
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
            memcpy(c->hdrbuf + c->hdr_got, p, k);
            c->hdr_got += k, p += k, n -= k;
            if (c->hdr_got < KCCL_WIRE_HDR_BYTES)
                return 0;
            if (conn_begin_payload(bs, c) != 0)
                return -1;
        }
        uint64_t left = c->hdr.len - c->payload_got;
        size_t k = left < n ? (size_t)left : n;
        memcpy(c->payload + c->payload_got, p, k);
        c->payload_got += k, p += k, n -= k;
        if (c->payload_got < c->hdr.len)
            return 0;
        uint8_t *frame = c->payload;
        kccl_wire_hdr_t h = c->hdr;
        c->payload = NULL;
        c->hdr_got = 0;
        on_frame(bs, c, &h, frame);
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

static void conn_event(kccl_bs_t *bs, kccl_conn_t *c, uint32_t events)
{
    if (c->state == KCCL_CONN_DEAD)
        return;
    if (c->state == KCCL_CONN_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err == 0 && (events & EPOLLOUT))
            on_connected(bs, c);
        else if (err != 0)
            connect_failed(bs, c, err);
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))
        conn_read(bs, c);
    if (c->state != KCCL_CONN_DEAD && (events & EPOLLOUT))
        conn_flush(bs, c);
}

/* ----------------------------------------------------------------- wait */

static void reap_strangers(kccl_bs_t *bs)
{
    for (kccl_conn_t *c = bs->conns, *next; c; c = next) {
        next = c->next;
        if (c->state == KCCL_CONN_DEAD && !c->pinned)
            conn_destroy(bs, c);
    }
}

/* Starts due connect retries, drops silent strangers; returns the next timer. */
static int64_t run_timers(kccl_bs_t *bs, int64_t now, int64_t wake)
{
    for (kccl_conn_t *c = bs->conns; c; c = c->next) {
        if (c->state == KCCL_CONN_CONNECTING && c->fd < 0) {
            if (c->retry_at <= now)
                conn_start_connect(bs, c);
            else if (c->retry_at < wake)
                wake = c->retry_at;
        } else if (c->hs_deadline && !c->outbound && c->state != KCCL_CONN_DEAD &&
                   c->state != KCCL_CONN_READY) {
            if (c->hs_deadline <= now) {
                kccl_log_warn(BOOT, "dropped connection from %s: no handshake within the deadline",
                              c->remote_text);
                conn_kill(bs, c, "handshake timed out");
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

kccl_status_t kccl_engine_wait(kccl_bs_t *bs, int64_t deadline, kccl_engine_cond_fn cond,
                               void *arg, kccl_step_t step, int peer)
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
            if (p == &abort_tag)
                on_abort_fd(bs);
            else if (p == &listener_tag)
                accept_all(bs, bs->listen_fd, KCCL_CONN_KIND_P2P);
            else if (p == &kccl_root_listener_tag)
                kccl_root_on_accept(bs, NULL);
            else
                conn_event(bs, (kccl_conn_t *)p, evs[i].events);
        }
    }
}

void kccl_engine_accept_root(kccl_bs_t *bs, int root_fd)
{
    accept_all(bs, root_fd, KCCL_CONN_KIND_CHECKIN);
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

kccl_status_t kccl_engine_fail(kccl_bs_t *bs, kccl_status_t status, int lost_rank,
                               kccl_step_t step, const char *fmt, ...)
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
    bs->peer_gone = calloc((size_t)n, 1);
    bs->peers = calloc((size_t)n, sizeof(*bs->peers));
    if (!bs->send_conn || !bs->recv_conn || !bs->q_head || !bs->q_tail || !bs->peer_gone ||
        !bs->peers)
        KCCL_FAIL(BOOT, KCCL_ERR_NO_MEMORY, "out of memory for a %d-rank bootstrap", n);
    bs->epfd = epoll_create1(EPOLL_CLOEXEC);
    bs->abort_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (bs->epfd < 0 || bs->abort_fd < 0)
        KCCL_FAIL(BOOT, KCCL_ERR_SYSTEM, "epoll/eventfd failed: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &abort_tag};
    if (epoll_ctl(bs->epfd, EPOLL_CTL_ADD, bs->abort_fd, &ev) != 0)
        KCCL_FAIL(BOOT, KCCL_ERR_SYSTEM, "epoll_ctl failed: %s", strerror(errno));
    return KCCL_OK;
}

kccl_status_t kccl_engine_add_listener(kccl_bs_t *bs, int fd, void *tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = tag ? tag : &listener_tag};
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
            if (p == &abort_tag)
                on_abort_fd(bs);
            else if (p != &listener_tag && p != &kccl_root_listener_tag)
                conn_event(bs, (kccl_conn_t *)p, evs[i].events);
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
    conn_kill(bs, c, "closed");
}

void kccl_engine_fini(kccl_bs_t *bs, int64_t linger_ms)
{
    if (bs->epfd >= 0 && linger_ms > 0) {
        for (kccl_conn_t *c = bs->conns; c; c = c->next)
            if (c->state == KCCL_CONN_READY && c->kind == KCCL_CONN_KIND_P2P)
                kccl_engine_queue(bs, c, KCCL_MSG_BYE, 0, NULL, 0, 0);
        drain(bs, linger_ms, 1);
        for (kccl_conn_t *c = bs->conns; c; c = c->next)
            if (c->state == KCCL_CONN_READY && c->bye_rcvd && !c->out_head && !c->hs_len)
                kccl_engine_close_reset(bs, c);
    }
    while (bs->conns) {
        bs->conns->pinned = 0;
        conn_destroy(bs, bs->conns);
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
    free(bs->peer_gone);
    free(bs->peers);
    free(bs->table_bytes);
}
