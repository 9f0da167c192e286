/*
 * coll_cpu.c - the CPU path of the collectives: host buffers, moved over the
 * communicator's bootstrap connections (tagged send/recv), which are already
 * authenticated, ordered per peer, bounded by the communicator's deadline
 * and able to name a lost peer. Correct rather than fast; it is what CI runs
 * and what the GPU path is checked against.
 *
 * Algorithms (n ranks, this rank r, next = r+1, prev = r-1 modulo n):
 * - all-reduce: ring reduce-scatter then ring all-gather, slice by slice; a
 *   slice is n segments of at most one chunk each, so staging is one chunk.
 * - reduce-scatter: the same ring over the n blocks, accumulating in a chunk
 *   buffer; the owner of a block finishes it straight into recvbuf.
 * - all-gather: ring, received chunks land in recvbuf directly.
 * - broadcast: binomial tree rooted at root, pipelined chunk by chunk, with a
 *   window of KCCL_COLL_CPU_BCAST_WINDOW unacknowledged chunks per child
 *   (a tree has no cycle to throttle a fast root otherwise).
 * Every element is reduced in one fixed order (the ring's), on one rank, and
 * the all-gather copies those bits, so every rank gets bit-identical results.
 *
 * Memory: the ring's cycle bounds what a rank can be sent ahead of what it
 * consumed to about n chunks; broadcast's window bounds it to W chunks.
 * Errors: the bootstrap's (KCCL_ERR_REMOTE naming the lost rank,
 * KCCL_ERR_TIMED_OUT naming the step and peer), prefixed with the collective.
 * After one, the communicator's bootstrap is failed for good.
 * Thread-safety: one collective at a time per communicator (like NCCL).
 */
#include "coll/coll_cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootstrap/bootstrap_int.h"
#include "coll/coll.h"
#include "coll/coll_cpu_reduce.h"
#include "comm/comm.h"
#include "core/error.h"

typedef struct {
    uint32_t seq; /* collectives run so far: each gets its own tag */
    uint8_t *tmp; /* a received chunk */
    uint8_t *acc; /* reduce-scatter's running partial */
    size_t cap;   /* bytes of tmp and acc */
} cpu_state_t;

/* One call in flight. */
typedef struct {
    kccl_bootstrap_t bs;
    const kccl_coll_args_t *a;
    int rank, n, next, prev;
    uint32_t tag;
    size_t esz;   /* element size */
    size_t chunk; /* elements per chunk */
    cpu_state_t *st;
} ctx_t;

static const char *const kind_names[] = {"all-reduce", "all-gather", "reduce-scatter", "broadcast"};
static size_t chunk_bytes_cfg = KCCL_COLL_CPU_CHUNK_DEFAULT;

void kccl_coll_cpu_set_chunk_bytes(size_t bytes)
{
    if (bytes == 0)
        bytes = KCCL_COLL_CPU_CHUNK_DEFAULT;
    chunk_bytes_cfg = bytes < 64 ? 64 : bytes > ((size_t)256 << 20) ? (size_t)256 << 20 : bytes;
}

size_t kccl_coll_cpu_chunk_bytes(void)
{
    return chunk_bytes_cfg;
}

/* Re-labels a failure with the collective, keeping the status and the cause. */
static kccl_status_t fail(const ctx_t *c, kccl_status_t st)
{
    char cause[512], self[24];
    snprintf(cause, sizeof(cause), "%s", kccl_last_error());
    int skip = snprintf(self, sizeof(self), "rank %d: ", c->rank); /* the bootstrap's prefix */
    const char *why = strncmp(cause, self, (size_t)skip) == 0 ? cause + skip : cause;
    kccl_error_set("rank %d: %s of %zu %s (host buffers): %s", c->rank, kind_names[c->a->kind],
                   c->a->count, kccl_dtype_name(c->a->dtype), why);
    kccl_log_error(COLL, "%s", kccl_last_error());
    return st;
}

static kccl_status_t send_elems(const ctx_t *c, int peer, const uint8_t *p, size_t elems)
{
    if (elems == 0)
        return KCCL_OK;
    kccl_status_t st =
        kccl_bootstrap_send_internal(c->bs, peer, KCCL_TAG_OP_COLL, c->tag, p, elems * c->esz);
    return st == KCCL_OK ? KCCL_OK : fail(c, st);
}

static kccl_status_t recv_elems(const ctx_t *c, int peer, uint8_t *p, size_t elems)
{
    if (elems == 0)
        return KCCL_OK;
    kccl_status_t st =
        kccl_bootstrap_recv_internal(c->bs, peer, KCCL_TAG_OP_COLL, c->tag, p, elems * c->esz);
    return st == KCCL_OK ? KCCL_OK : fail(c, st);
}

static size_t seg_off(size_t len, int n, int j)
{
    size_t q = len / (size_t)n, rem = len % (size_t)n;
    return (size_t)j * q + ((size_t)j < rem ? (size_t)j : rem);
}

static size_t seg_len(size_t len, int n, int j)
{
    return len / (size_t)n + ((size_t)j < len % (size_t)n ? 1 : 0);
}

static int mod(int x, int n)
{
    return ((x % n) + n) % n;
}

/* All-reduce of buf[0..len) in place (len <= n chunks): ring RS then ring AG. */
static kccl_status_t all_reduce_slice(const ctx_t *c, uint8_t *buf, size_t len)
{
    int n = c->n, r = c->rank;
    for (int s = 0; s < n - 1; s++) {
        int sj = mod(r - 1 - s, n), rj = mod(r - 2 - s, n);
        uint8_t *dst = buf + seg_off(len, n, rj) * c->esz;
        size_t rl = seg_len(len, n, rj);
        KCCL_CHECK(send_elems(c, c->next, buf + seg_off(len, n, sj) * c->esz, seg_len(len, n, sj)));
        KCCL_CHECK(recv_elems(c, c->prev, c->st->tmp, rl));
        kccl_reduce(c->a->dtype, c->a->op, dst, c->st->tmp, dst, rl, s == n - 2 ? n : 0);
    }
    for (int s = 0; s < n - 1; s++) {
        int sj = mod(r - s, n), rj = mod(r - s - 1, n);
        KCCL_CHECK(send_elems(c, c->next, buf + seg_off(len, n, sj) * c->esz, seg_len(len, n, sj)));
        KCCL_CHECK(recv_elems(c, c->prev, buf + seg_off(len, n, rj) * c->esz, seg_len(len, n, rj)));
    }
    return KCCL_OK;
}

static kccl_status_t all_reduce(const ctx_t *c)
{
    const kccl_coll_args_t *a = c->a;
    uint8_t *out = a->recvbuf;
    if (a->sendbuf != a->recvbuf)
        memmove(out, a->sendbuf, a->count * c->esz);
    size_t slice = c->chunk * (size_t)c->n;
    for (size_t off = 0; off < a->count && c->n > 1; off += slice) {
        size_t len = a->count - off < slice ? a->count - off : slice;
        KCCL_CHECK(all_reduce_slice(c, out + off * c->esz, len));
    }
    return KCCL_OK;
}

/* Reduce-scatter of elements [off, off+len) of every block. */
static kccl_status_t reduce_scatter_slice(const ctx_t *c, size_t off, size_t len)
{
    const kccl_coll_args_t *a = c->a;
    const uint8_t *in = a->sendbuf;
    int n = c->n, r = c->rank;
    size_t bstride = a->count * c->esz;
    for (int s = 0; s < n - 1; s++) {
        const uint8_t *src =
            s == 0 ? in + (size_t)mod(r - 1, n) * bstride + off * c->esz : c->st->acc;
        int rj = mod(r - 2 - s, n), last = s == n - 2;
        uint8_t *dst = last ? (uint8_t *)a->recvbuf + off * c->esz : c->st->acc;
        KCCL_CHECK(send_elems(c, c->next, src, len));
        KCCL_CHECK(recv_elems(c, c->prev, c->st->tmp, len));
        kccl_reduce(a->dtype, a->op, dst, c->st->tmp, in + (size_t)rj * bstride + off * c->esz, len,
                    last ? n : 0);
    }
    return KCCL_OK;
}

static kccl_status_t reduce_scatter(const ctx_t *c)
{
    const kccl_coll_args_t *a = c->a;
    if (c->n == 1) {
        memmove(a->recvbuf, a->sendbuf, a->count * c->esz);
        return KCCL_OK;
    }
    for (size_t off = 0; off < a->count; off += c->chunk) {
        size_t len = a->count - off < c->chunk ? a->count - off : c->chunk;
        KCCL_CHECK(reduce_scatter_slice(c, off, len));
    }
    return KCCL_OK;
}

static kccl_status_t all_gather(const ctx_t *c)
{
    const kccl_coll_args_t *a = c->a;
    uint8_t *out = a->recvbuf;
    size_t bstride = a->count * c->esz;
    int n = c->n, r = c->rank;
    if (a->sendbuf != out + (size_t)r * bstride)
        memmove(out + (size_t)r * bstride, a->sendbuf, bstride);
    for (size_t off = 0; off < a->count && n > 1; off += c->chunk) {
        size_t len = a->count - off < c->chunk ? a->count - off : c->chunk;
        for (int s = 0; s < n - 1; s++) {
            size_t sj = (size_t)mod(r - s, n), rj = (size_t)mod(r - s - 1, n);
            KCCL_CHECK(send_elems(c, c->next, out + sj * bstride + off * c->esz, len));
            KCCL_CHECK(recv_elems(c, c->prev, out + rj * bstride + off * c->esz, len));
        }
    }
    return KCCL_OK;
}

/* Acknowledgements of broadcast chunks travel on their own tag. */
static kccl_status_t bcast_ack(const ctx_t *c, int peer, int receive)
{
    uint32_t tag = c->tag | 0x00800000u;
    kccl_status_t st =
        receive ? kccl_bootstrap_recv_internal(c->bs, peer, KCCL_TAG_OP_COLL, tag, NULL, 0)
                : kccl_bootstrap_send_internal(c->bs, peer, KCCL_TAG_OP_COLL, tag, NULL, 0);
    return st == KCCL_OK ? KCCL_OK : fail(c, st);
}

static kccl_status_t broadcast(const ctx_t *c)
{
    const kccl_coll_args_t *a = c->a;
    int n = c->n, root = a->root, vr = mod(c->rank - root, n), mask = 1, parent = -1;
    uint8_t *out = a->recvbuf;
    if (c->rank == root && a->sendbuf != a->recvbuf)
        memmove(out, a->sendbuf, a->count * c->esz);
    while (mask < n && !(vr & mask))
        mask <<= 1;
    if (vr != 0)
        parent = mod(vr - mask + root, n);
    /* Children: vr + m for each power of two m below vr's lowest set bit (the
     * root, vr 0, ends with mask past n: every power of two below n). */
    int kids[32], nkids = 0;
    for (int m = mask >> 1; m > 0; m >>= 1)
        if (vr + m < n)
            kids[nkids++] = mod(vr + m + root, n);
    size_t nchunks = (a->count + c->chunk - 1) / c->chunk;
    /* Up to a window's worth of chunks needs no flow control (and no extra round trip). */
    int acked = nchunks > KCCL_COLL_CPU_BCAST_WINDOW;
    for (size_t k = 0; k < nchunks; k++) {
        size_t off = k * c->chunk, len = a->count - off < c->chunk ? a->count - off : c->chunk;
        if (parent >= 0) {
            KCCL_CHECK(recv_elems(c, parent, out + off * c->esz, len));
            if (acked)
                KCCL_CHECK(bcast_ack(c, parent, 0));
        }
        for (int i = 0; i < nkids; i++) {
            if (acked && k >= KCCL_COLL_CPU_BCAST_WINDOW)
                KCCL_CHECK(bcast_ack(c, kids[i], 1));
            KCCL_CHECK(send_elems(c, kids[i], out + off * c->esz, len));
        }
    }
    /* Collect the outstanding acknowledgements so none is left queued. */
    for (int i = 0; acked && i < nkids; i++)
        for (size_t k = 0; k < KCCL_COLL_CPU_BCAST_WINDOW; k++)
            KCCL_CHECK(bcast_ack(c, kids[i], 1));
    return KCCL_OK;
}

static kccl_status_t get_state(kccl_comm_t comm, size_t bytes, cpu_state_t **out)
{
    cpu_state_t *st = comm->coll_cpu;
    if (st == NULL) {
        st = calloc(1, sizeof(*st));
        if (st == NULL)
            KCCL_FAIL(COLL, KCCL_ERR_NO_MEMORY, "rank %d: out of memory for collective state",
                      comm->rank);
        comm->coll_cpu = st;
    }
    if (st->cap < bytes) {
        free(st->tmp);
        free(st->acc);
        st->tmp = malloc(bytes);
        st->acc = malloc(bytes);
        st->cap = (st->tmp && st->acc) ? bytes : 0;
        if (st->cap == 0)
            KCCL_FAIL(COLL, KCCL_ERR_NO_MEMORY,
                      "rank %d: out of memory for two %zu-byte staging chunks; lower the chunk "
                      "size",
                      comm->rank, bytes);
    }
    *out = st;
    return KCCL_OK;
}

kccl_status_t kccl_coll_cpu_run(kccl_comm_t comm, const kccl_coll_args_t *args)
{
    ctx_t c = {.bs = comm->bs, .a = args, .rank = comm->rank, .n = comm->size};
    c.next = (c.rank + 1) % c.n;
    c.prev = (c.rank - 1 + c.n) % c.n;
    c.esz = kccl_dtype_size(args->dtype);
    c.chunk = kccl_coll_cpu_chunk_bytes() / c.esz;
    KCCL_CHECK(get_state(comm, c.chunk * c.esz, &c.st));
    c.tag = c.st->seq++ & 0x007FFFFFu; /* bit 23: broadcast acknowledgements */
    switch (args->kind) {
    case KCCL_COLL_ALL_REDUCE: return all_reduce(&c);
    case KCCL_COLL_ALL_GATHER: return all_gather(&c);
    case KCCL_COLL_REDUCE_SCATTER: return reduce_scatter(&c);
    case KCCL_COLL_BROADCAST: return broadcast(&c);
    }
    KCCL_FAIL(COLL, KCCL_ERR_INVALID_ARG, "unknown collective %d", (int)args->kind);
}

void kccl_coll_cpu_teardown(kccl_comm_t comm)
{
    cpu_state_t *st = comm->coll_cpu;
    if (st == NULL)
        return;
    free(st->tmp);
    free(st->acc);
    free(st);
    comm->coll_cpu = NULL;
}
