/*
 * collectives.c - point-to-point and collective operations over the
 * bootstrap's persistent connections.
 *
 * All-gather: a ring (n-1 steps, one connection) for small groups, Bruck's
 * algorithm (ceil(log2 n) steps, same bytes per rank) above
 * KCCL_BOOTSTRAP_RING_MAX. Both send to rank+d and receive from rank-d, and
 * so does the dissemination barrier: the connections opened at create
 * (rank+1, +2, +4, ...) serve all three. Each step posts its send, waits for
 * its receive and then for the send to drain, so a step never deadlocks
 * however large the blocks are (the engine keeps reading while it waits).
 * Collectives are numbered (coll_seq) and every step has its own tag.
 */
#include <stdlib.h>
#include <string.h>

#include "bootstrap/bootstrap_int.h"
#include "core/error.h"

enum { OP_ALLGATHER = 1, OP_BARRIER = 2, OP_BCAST = 3 };

static uint32_t coll_tag(uint32_t op, uint32_t seq, uint32_t step)
{
    return KCCL_TAG_RESERVED | op << 24 | (seq & 0xFFFFu) << 8 | (step & 0xFFu);
}

kccl_bootstrap_algo_t kccl_bootstrap_pick_algo(kccl_bootstrap_algo_t algo, int ring_max, int nranks)
{
    if (algo != KCCL_BOOTSTRAP_ALGO_AUTO)
        return algo;
    return nranks <= ring_max ? KCCL_BOOTSTRAP_ALGO_RING : KCCL_BOOTSTRAP_ALGO_BRUCK;
}

int kccl_bruck_step_count(int nranks, int have)
{
    return have < nranks - have ? have : nranks - have;
}

typedef struct {
    int peer;
    uint32_t tag;
    kccl_step_t step;
    kccl_frame_t *got;
} recv_wait_t;

static int recv_ready(kccl_bs_t *bs, void *arg)
{
    recv_wait_t *w = arg;
    w->got = kccl_engine_take(bs, w->peer, KCCL_MSG_DATA, w->tag);
    if (w->got)
        return 1;
    kccl_conn_t *rc = bs->recv_conn[w->peer], *sc = bs->send_conn[w->peer];
    int64_t promised = bs->bye_count[w->peer];
    if (promised >= 0 && bs->data_rcvd[w->peer] >= (uint64_t)promised)
        return kccl_engine_fail(bs, KCCL_ERR_REMOTE, w->peer, w->step,
                                "%s: rank %d destroyed its bootstrap before sending this "
                                "(mismatched calls across ranks?)",
                                kccl_step_str(w->step), w->peer);
    /* Its data stream ended (EOF comes after all its data), or it is gone
     * without ever having connected to us. */
    kccl_conn_t *dead = (rc && rc->state == KCCL_CONN_DEAD)                          ? rc
                        : (!rc && sc && sc->state == KCCL_CONN_DEAD && promised < 0) ? sc
                                                                                     : NULL;
    if (dead) {
        if (dead->err != KCCL_ERR_REMOTE && dead->err != 0)
            return kccl_engine_fail(bs, dead->err, w->peer, w->step, "%s: rank %d at %s: %s",
                                    kccl_step_str(w->step), w->peer, dead->remote_text, dead->why);
        return kccl_engine_fail(bs, KCCL_ERR_REMOTE, w->peer, w->step, "%s: lost rank %d: %s",
                                kccl_step_str(w->step), w->peer,
                                dead->why[0] ? dead->why : "connection closed");
    }
    return 0;
}

typedef struct {
    int peer;
    uint64_t seq;
} send_wait_t;

static int send_done(kccl_bs_t *bs, void *arg)
{
    send_wait_t *w = arg;
    return kccl_engine_sent(bs, w->peer, w->seq);
}

static kccl_status_t post_send(kccl_bs_t *bs, int peer, uint32_t tag, const void *buf, size_t len,
                               kccl_step_t step, uint64_t *seq)
{
    kccl_conn_t *c = kccl_engine_send_conn(bs, peer);
    if (c == NULL)
        return kccl_engine_fail(bs, KCCL_ERR_NO_MEMORY, -1, step,
                                "cannot open a connection to rank %d", peer);
    if (c->state == KCCL_CONN_DEAD)
        return kccl_engine_fail(bs, c->err ? c->err : KCCL_ERR_REMOTE, peer, step,
                                "%s: lost rank %d at %s: %s", kccl_step_str(step), peer,
                                c->remote_text, c->why[0] ? c->why : "connection closed");
    kccl_status_t st = kccl_engine_queue(bs, c, KCCL_MSG_DATA, tag, buf, len, 1);
    if (st != KCCL_OK)
        return kccl_engine_fail(bs, st, -1, step, "out of memory queueing %zu bytes", len);
    *seq = kccl_engine_last_seq(c);
    return KCCL_OK;
}

static kccl_status_t wait_sent(kccl_bs_t *bs, int peer, uint64_t seq, int64_t deadline,
                               kccl_step_t step)
{
    send_wait_t w = {.peer = peer, .seq = seq};
    return kccl_engine_wait(bs, deadline, send_done, &w, step, peer);
}

static kccl_status_t wait_recv(kccl_bs_t *bs, int peer, uint32_t tag, void *buf, size_t len,
                               int64_t deadline, kccl_step_t step)
{
    recv_wait_t w = {.peer = peer, .tag = tag, .step = step};
    KCCL_CHECK(kccl_engine_wait(bs, deadline, recv_ready, &w, step, peer));
    kccl_status_t st = KCCL_OK;
    if (w.got->hdr.len != len)
        st = kccl_engine_fail(bs, KCCL_ERR_PROTOCOL, -1, step,
                              "%s: rank %d sent %llu bytes but %zu were expected (mismatched "
                              "calls or sizes across ranks?)",
                              kccl_step_str(step), peer, (unsigned long long)w.got->hdr.len, len);
    else if (len)
        memcpy(buf, w.got->data, len);
    kccl_frame_free(w.got);
    return st;
}

static kccl_status_t sendrecv(kccl_bs_t *bs, int to, const void *sbuf, int from, void *rbuf,
                              size_t len, uint32_t tag, int64_t deadline, kccl_step_t step)
{
    uint64_t seq = 0;
    KCCL_CHECK(post_send(bs, to, tag, sbuf, len, step, &seq));
    KCCL_CHECK(wait_recv(bs, from, tag, rbuf, len, deadline, step));
    return wait_sent(bs, to, seq, deadline, step);
}

static kccl_status_t check_usable(kccl_bs_t *bs, int peer, const char *what)
{
    if (bs == NULL)
        KCCL_FAIL(BOOT, KCCL_ERR_INVALID_ARG, "%s: NULL bootstrap", what);
    if (bs->failed)
        KCCL_FAIL(BOOT, bs->failed,
                  "rank %d: %s on a failed bootstrap (first error: %s); "
                  "destroy it and bootstrap again",
                  bs->rank, what, kccl_status_str(bs->failed));
    if (peer != -1 && (peer < 0 || peer >= bs->nranks || peer == bs->rank))
        KCCL_FAIL(BOOT, KCCL_ERR_INVALID_ARG, "rank %d: %s: peer %d is not another rank of 0..%d",
                  bs->rank, what, peer, bs->nranks - 1);
    return KCCL_OK;
}

kccl_status_t kccl_bootstrap_send(kccl_bootstrap_t bs, int peer, uint32_t tag, const void *buf,
                                  size_t len)
{
    KCCL_CHECK(check_usable(bs, peer, "send"));
    if (tag >= KCCL_TAG_RESERVED || (buf == NULL && len) || len >= KCCL_WIRE_MAX_FRAME)
        KCCL_FAIL(BOOT, KCCL_ERR_INVALID_ARG,
                  "rank %d: send: tag must be < 2^31 and len < 1 GiB with a buffer", bs->rank);
    int64_t deadline = kccl_now_ms() + bs->timeout_ms;
    uint64_t seq = 0;
    KCCL_CHECK(post_send(bs, peer, tag, buf, len, KCCL_STEP_SEND, &seq));
    return wait_sent(bs, peer, seq, deadline, KCCL_STEP_SEND);
}

kccl_status_t kccl_bootstrap_recv(kccl_bootstrap_t bs, int peer, uint32_t tag, void *buf,
                                  size_t len)
{
    KCCL_CHECK(check_usable(bs, peer, "recv"));
    if (tag >= KCCL_TAG_RESERVED || (buf == NULL && len))
        KCCL_FAIL(BOOT, KCCL_ERR_INVALID_ARG, "rank %d: recv: tag must be < 2^31", bs->rank);
    return wait_recv(bs, peer, tag, buf, len, kccl_now_ms() + bs->timeout_ms, KCCL_STEP_RECV);
}

static uint32_t internal_tag(uint32_t op, uint32_t tag24)
{
    return KCCL_TAG_RESERVED | (op & 0x7Fu) << 24 | (tag24 & 0xFFFFFFu);
}

kccl_status_t kccl_bootstrap_send_internal(kccl_bootstrap_t bs, int peer, uint32_t op,
                                           uint32_t tag24, const void *buf, size_t len)
{
    KCCL_CHECK(check_usable(bs, peer, "send"));
    if ((buf == NULL && len) || len >= KCCL_WIRE_MAX_FRAME)
        KCCL_FAIL(BOOT, KCCL_ERR_INVALID_ARG, "rank %d: internal send of %zu bytes", bs->rank, len);
    int64_t deadline = kccl_now_ms() + bs->timeout_ms;
    uint64_t seq = 0;
    KCCL_CHECK(post_send(bs, peer, internal_tag(op, tag24), buf, len, KCCL_STEP_SEND, &seq));
    return wait_sent(bs, peer, seq, deadline, KCCL_STEP_SEND);
}

kccl_status_t kccl_bootstrap_recv_internal(kccl_bootstrap_t bs, int peer, uint32_t op,
                                           uint32_t tag24, void *buf, size_t len)
{
    KCCL_CHECK(check_usable(bs, peer, "recv"));
    if (buf == NULL && len)
        KCCL_FAIL(BOOT, KCCL_ERR_INVALID_ARG, "rank %d: internal recv without a buffer", bs->rank);
    return wait_recv(bs, peer, internal_tag(op, tag24), buf, len, kccl_now_ms() + bs->timeout_ms,
                     KCCL_STEP_RECV);
}

static kccl_status_t ring_all_gather(kccl_bs_t *bs, uint8_t *buf, size_t bytes, uint32_t seq,
                                     int64_t deadline)
{
    int n = bs->nranks, r = bs->rank;
    int next = (r + 1) % n, prev = (r - 1 + n) % n;
    for (int s = 0; s < n - 1; s++) {
        int sblk = (r - s + n) % n, rblk = (r - s - 1 + n) % n;
        KCCL_CHECK(sendrecv(bs, next, buf + (size_t)sblk * bytes, prev, buf + (size_t)rblk * bytes,
                            bytes, coll_tag(OP_ALLGATHER, seq, (uint32_t)s), deadline,
                            KCCL_STEP_ALLGATHER));
    }
    return KCCL_OK;
}

static kccl_status_t bruck_all_gather(kccl_bs_t *bs, uint8_t *buf, size_t bytes, uint32_t seq,
                                      int64_t deadline)
{
    int n = bs->nranks, r = bs->rank;
    /* tmp[i] holds block (r - i) mod n. */
    uint8_t *tmp = malloc((size_t)n * bytes);
    if (tmp == NULL)
        return kccl_engine_fail(bs, KCCL_ERR_NO_MEMORY, -1, KCCL_STEP_ALLGATHER,
                                "out of memory for a %zu-byte all-gather", (size_t)n * bytes);
    memcpy(tmp, buf + (size_t)r * bytes, bytes);
    kccl_status_t st = KCCL_OK;
    uint32_t step = 0;
    for (int have = 1; have < n && st == KCCL_OK; step++) {
        int m = kccl_bruck_step_count(n, have);
        st = sendrecv(bs, (r + have) % n, tmp, (r - have + n) % n, tmp + (size_t)have * bytes,
                      (size_t)m * bytes, coll_tag(OP_ALLGATHER, seq, step), deadline,
                      KCCL_STEP_ALLGATHER);
        have += m;
    }
    if (st == KCCL_OK)
        for (int i = 0; i < n; i++)
            memcpy(buf + (size_t)((r - i + n) % n) * bytes, tmp + (size_t)i * bytes, bytes);
    free(tmp);
    return st;
}

kccl_status_t kccl_bootstrap_all_gather(kccl_bootstrap_t bs, void *buf, size_t bytes)
{
    KCCL_CHECK(check_usable(bs, -1, "all-gather"));
    if ((buf == NULL && bytes) ||
        (bs->nranks > 0 && bytes * (size_t)bs->nranks >= KCCL_WIRE_MAX_FRAME))
        KCCL_FAIL(BOOT, KCCL_ERR_INVALID_ARG, "rank %d: all-gather: bad buffer or size", bs->rank);
    if (bs->nranks == 1 || bytes == 0)
        return KCCL_OK; /* nothing to move: not a synchronization point */
    uint32_t seq = bs->coll_seq++;
    int64_t deadline = kccl_now_ms() + bs->timeout_ms;
    if (kccl_bootstrap_pick_algo(bs->algo, bs->ring_max, bs->nranks) == KCCL_BOOTSTRAP_ALGO_RING)
        return ring_all_gather(bs, buf, bytes, seq, deadline);
    return bruck_all_gather(bs, buf, bytes, seq, deadline);
}

kccl_status_t kccl_bootstrap_barrier(kccl_bootstrap_t bs)
{
    KCCL_CHECK(check_usable(bs, -1, "barrier"));
    int n = bs->nranks, r = bs->rank;
    uint32_t seq = bs->coll_seq++, step = 0;
    int64_t deadline = kccl_now_ms() + bs->timeout_ms;
    for (int d = 1; d < n; d <<= 1, step++)
        KCCL_CHECK(sendrecv(bs, (r + d) % n, NULL, (r - d + n) % n, NULL, 0,
                            coll_tag(OP_BARRIER, seq, step), deadline, KCCL_STEP_BARRIER));
    return KCCL_OK;
}

kccl_status_t kccl_bootstrap_broadcast(kccl_bootstrap_t bs, void *buf, size_t bytes, int root)
{
    KCCL_CHECK(check_usable(bs, -1, "broadcast"));
    if (root < 0 || root >= bs->nranks || (buf == NULL && bytes) || bytes >= KCCL_WIRE_MAX_FRAME)
        KCCL_FAIL(BOOT, KCCL_ERR_INVALID_ARG, "rank %d: broadcast: bad root %d or buffer", bs->rank,
                  root);
    int n = bs->nranks, vr = (bs->rank - root + n) % n, mask = 1;
    uint32_t tag = coll_tag(OP_BCAST, bs->coll_seq++, 0);
    int64_t deadline = kccl_now_ms() + bs->timeout_ms;
    /* Binomial tree on ranks relative to root: receive once, then forward. */
    for (; mask < n; mask <<= 1) {
        if (vr & mask) {
            KCCL_CHECK(
                wait_recv(bs, (vr - mask + root) % n, tag, buf, bytes, deadline, KCCL_STEP_BCAST));
            break;
        }
    }
    int kids[32], nkids = 0;
    uint64_t seqs[32] = {0};
    for (mask >>= 1; mask > 0; mask >>= 1) {
        if (vr + mask < n) {
            kids[nkids] = (vr + mask + root) % n;
            KCCL_CHECK(post_send(bs, kids[nkids], tag, buf, bytes, KCCL_STEP_BCAST, &seqs[nkids]));
            nkids++;
        }
    }
    for (int i = 0; i < nkids; i++)
        KCCL_CHECK(wait_sent(bs, kids[i], seqs[i], deadline, KCCL_STEP_BCAST));
    return KCCL_OK;
}
