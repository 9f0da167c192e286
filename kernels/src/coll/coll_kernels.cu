/*
 * coll_kernels.cu - the GPU collectives' kernels: LL packet algorithms for
 * small messages and zero-copy algorithms over peers' mapped user buffers for
 * large ones. The host side (runtime/coll/coll_gpu.c) chooses the algorithm,
 * grid and chunking and fills a kccl_cg_launch_t (coll_gpu.h, which also
 * describes the scratch layout and the per-block step counters).
 *
 * Work split: block b of every rank handles the same elements (a range of
 * packets, or grid-stride 16-byte units, with the same grid on every rank), so
 * block b only ever synchronises with block b of its peers: no grid-wide
 * barrier. Block b's LL packets always sit in block b's part of each slot.
 *
 * LL (one step): every rank writes its data as LL packets into each peer's
 * slot [its rank]; each rank then reads the packets of every source (waiting
 * on the packets' own flags) and reduces or copies them.
 *   all-reduce: whole input to everybody, everybody reduces in rank order (so
 *     every rank computes bit-identical results);
 *   reduce-scatter: region q of the input to rank q;
 *   all-gather: the input to everybody; broadcast: the root's input to
 *     everybody (non-roots report presence so the root never runs two steps
 *     ahead of a reader).
 * LL2 (all-reduce, two steps): reduce-scatter as LL packets, then each rank
 *   sends its reduced region to everybody as LL packets.
 * ZC (zero-copy): a per-block barrier (relaxed flags) proves peers entered
 *   the kernel, so their buffers are ready; each rank then loads straight from
 *   peers' send buffers and stores straight into peers' receive buffers; a
 *   closing barrier with a system-scope release tells peers their receive
 *   buffers are complete and that nobody reads their send buffers any more.
 *   all-reduce: rank q reduces region q from all send buffers and stores it
 *   into every receive buffer (reduce-scatter + all-gather in one pass).
 */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "coll/coll_gpu.h"
#include "kccl/kccl_bulk.cuh"
#include "kccl/kccl_ll.cuh"

#define MAXR KCCL_CG_MAX_RANKS

/* ---- element types: raw storage and the accumulator type ---- */

enum { DT_I32 = 0, DT_F32 = 1, DT_F16 = 2, DT_BF16 = 3 };
enum { OP_SUM = 0, OP_MAX = 1, OP_MIN = 2, OP_AVG = 3 };

template <int DT> struct elem;
template <> struct elem<DT_I32> {
    typedef int32_t raw;
    typedef int32_t acc;
    static __device__ __forceinline__ acc load(raw r)
    {
        return r;
    }
    static __device__ __forceinline__ raw store(acc a)
    {
        return a;
    }
};
template <> struct elem<DT_F32> {
    typedef float raw;
    typedef float acc;
    static __device__ __forceinline__ acc load(raw r)
    {
        return r;
    }
    static __device__ __forceinline__ raw store(acc a)
    {
        return a;
    }
};
template <> struct elem<DT_F16> {
    typedef uint16_t raw;
    typedef float acc;
    static __device__ __forceinline__ acc load(raw r)
    {
        return __half2float(__ushort_as_half(r));
    }
    static __device__ __forceinline__ raw store(acc a)
    {
        return __half_as_ushort(__float2half_rn(a));
    }
};
template <> struct elem<DT_BF16> {
    typedef uint16_t raw;
    typedef float acc;
    static __device__ __forceinline__ acc load(raw r)
    {
        return __bfloat162float(__ushort_as_bfloat16(r));
    }
    static __device__ __forceinline__ raw store(acc a)
    {
        return __bfloat16_as_ushort(__float2bfloat16_rn(a));
    }
};

template <int OP, typename A> __device__ __forceinline__ A red(A a, A b)
{
    if (OP == OP_MAX)
        return a > b ? a : b;
    if (OP == OP_MIN)
        return a < b ? a : b;
    return a + b; /* SUM, AVG */
}

template <int OP, typename A> __device__ __forceinline__ A finish(A a, int n)
{
    return OP == OP_AVG ? (A)(a / (A)n) : a;
}

/* N raw elements viewed as whole words. */
template <int DT, int BYTES> union pack {
    typedef typename elem<DT>::raw raw;
    enum { N = BYTES / (int)sizeof(raw) };
    raw e[BYTES / sizeof(raw)];
    uint64_t u64;
    uint4 u128;
};

/* Word k (8 bytes) of an n-element array; zero-padded past the end; element
 * loads where base is not 8-byte aligned. */
template <int DT>
__device__ __forceinline__ uint64_t load_word(const void *base, size_t n, size_t k)
{
    typedef pack<DT, 8> P;
    const typename elem<DT>::raw *b = (const typename elem<DT>::raw *)base;
    size_t i0 = k * P::N;
    if (((uintptr_t)base & 7) == 0 && i0 + P::N <= n)
        return *(const uint64_t *)(b + i0);
    P w;
    w.u64 = 0;
#pragma unroll
    for (int j = 0; j < P::N; j++)
        if (i0 + j < n)
            w.e[j] = b[i0 + j];
    return w.u64;
}

template <int DT>
__device__ __forceinline__ void store_word(void *base, size_t n, size_t k, uint64_t v)
{
    typedef pack<DT, 8> P;
    typename elem<DT>::raw *b = (typename elem<DT>::raw *)base;
    size_t i0 = k * P::N;
    if (((uintptr_t)base & 7) == 0 && i0 + P::N <= n) {
        *(uint64_t *)(b + i0) = v;
        return;
    }
    P w;
    w.u64 = v;
#pragma unroll
    for (int j = 0; j < P::N; j++)
        if (i0 + j < n)
            b[i0 + j] = w.e[j];
}

/* ---- step numbers ----
 * epoch[b] is block b's step counter (coll_gpu.h): read on entry, the last step
 * used stored on exit. Only block b ever touches flags[b][*] and the packets of
 * block b's part of every slot, so each location sees one monotonic sequence. */
__device__ __forceinline__ uint64_t epoch_begin(const kccl_cg_launch_t &p)
{
    return p.epoch[blockIdx.x];
}

__device__ __forceinline__ void epoch_end(const kccl_cg_launch_t &p, uint64_t next)
{
    __syncthreads();
    if (threadIdx.x == 0)
        p.epoch[blockIdx.x] = next;
}

/* ---- LL ---- */

__device__ __forceinline__ kccl_ll_packet_t *ll_slot(void *scratch, int area, uint64_t flag,
                                                     int src)
{
    size_t idx = ((size_t)area * 2 + (size_t)(flag & 1)) * MAXR + (size_t)src;
    return (kccl_ll_packet_t *)((char *)scratch + KCCL_CG_FLAGS_BYTES +
                                idx * KCCL_CG_LL_SLOT_BYTES);
}

__device__ __forceinline__ uint64_t *flag_word(void *scratch, int block, int src)
{
    return (uint64_t *)scratch + (size_t)block * MAXR + (size_t)src;
}

/* Sends word k of src_data (n elements) to every peer's slot [me] of area. */
template <int DT>
__device__ __forceinline__ void ll_send_all(const kccl_cg_launch_t &p, int area, uint64_t f,
                                            uint64_t w, size_t k)
{
    for (int i = 1; i < p.nranks; i++) {
        int q = (p.rank + i) % p.nranks;
        kccl_ll_store(ll_slot(p.peer_scratch[q], area, f, p.rank) + k, w, (uint32_t)f);
    }
}

/* Reduces word k over all ranks in rank order: own data from mine, peers' from
 * area's slots. */
template <int DT, int OP>
__device__ __forceinline__ uint64_t ll_reduce_word(const kccl_cg_launch_t &p, int area, uint64_t f,
                                                   uint64_t mine, size_t k)
{
    typedef pack<DT, 8> P;
    typedef typename elem<DT>::acc A;
    A acc[P::N];
    for (int src = 0; src < p.nranks; src++) {
        P w;
        w.u64 =
            src == p.rank ? mine : kccl_ll_load(ll_slot(p.scratch, area, f, src) + k, (uint32_t)f);
#pragma unroll
        for (int j = 0; j < P::N; j++) {
            A v = elem<DT>::load(w.e[j]);
            acc[j] = src == 0 ? v : red<OP>(acc[j], v);
        }
    }
    P out;
#pragma unroll
    for (int j = 0; j < P::N; j++)
        out.e[j] = elem<DT>::store(finish<OP>(acc[j], p.nranks));
    return out.u64;
}

/* Broadcast presence: non-roots tell the root this block reached step f; the root waits. */
__device__ void ll_presence(const kccl_cg_launch_t &p, uint64_t f)
{
    int b = blockIdx.x, t = threadIdx.x;
    if (p.rank != p.root) {
        if (t == 0)
            kccl_st_relaxed_sys(flag_word(p.peer_scratch[p.root], b, p.rank), f);
        return;
    }
    if (t < p.nranks && t != p.root) {
        const uint64_t *w = flag_word(p.scratch, b, t);
        uint64_t start = kccl_globaltimer();
        uint32_t spins = 0;
        uint64_t v;
        while ((v = kccl_ld_relaxed_sys(w)) < f)
            kccl_spin_check(start, &spins, "broadcast presence", f, v);
    }
}

template <int DT, int OP> __global__ void __launch_bounds__(512) ll_kernel(kccl_cg_launch_t p)
{
    typedef pack<DT, 8> P;
    const int b = blockIdx.x, me = p.rank, n = p.nranks;
    const uint64_t e = epoch_begin(p), f1 = e + 1, f2 = e + 2;
    const size_t cnt = p.count, words = (cnt + P::N - 1) / P::N;
    const char *send = (const char *)p.send;
    char *recv = (char *)p.recv;
    const size_t es = sizeof(typename elem<DT>::raw);
    /* Block b owns words [k0, k1) of this launch and packets [b * BP, (b + 1) * BP) of
     * every slot, whatever the grid: its own step counter then orders every packet it
     * ever reads or writes. */
    const int two = p.kind == KCCL_CG_ALL_REDUCE && p.algo == KCCL_CG_LL2;
    size_t R = (cnt + n - 1) / n;
    R = (R + P::N - 1) / P::N * P::N;
    const size_t span = two ? R / P::N : words, W = (span + gridDim.x - 1) / gridDim.x;
    const size_t k0 = (size_t)b * W, k1 = k0 + W < span ? k0 + W : span;
#define SLOT(k)     ((size_t)b * KCCL_CG_LL_BLOCK_PACKETS + ((k)-k0))
#define FOR_K(cond) for (size_t k = k0 + threadIdx.x; k < k1 && (cond); k += blockDim.x)

    if (p.kind == KCCL_CG_ALL_REDUCE && p.algo == KCCL_CG_LL) {
        FOR_K(1)
        ll_send_all<DT>(p, 0, f1, load_word<DT>(send, cnt, k), SLOT(k));
        FOR_K(1)
        store_word<DT>(recv, cnt, k,
                       ll_reduce_word<DT, OP>(p, 0, f1, load_word<DT>(send, cnt, k), SLOT(k)));
    } else if (p.kind == KCCL_CG_ALL_REDUCE) { /* LL2 */
#define REGION_LEN(q)                                                                              \
    ((size_t)(q)*R >= cnt ? 0 : (cnt - (size_t)(q)*R < R ? cnt - (size_t)(q)*R : R))
        FOR_K(1)
        for (int i = 1; i < n; i++) {
            int q = (me + i) % n;
            size_t len = REGION_LEN(q);
            if (k * P::N < len)
                kccl_ll_store(ll_slot(p.peer_scratch[q], 0, f1, me) + SLOT(k),
                              load_word<DT>(send + q * R * es, len, k), (uint32_t)f1);
        }
        const size_t mylen = REGION_LEN(me);
        FOR_K(k * P::N < mylen)
        {
            uint64_t w = ll_reduce_word<DT, OP>(
                p, 0, f1, load_word<DT>(send + me * R * es, mylen, k), SLOT(k));
            store_word<DT>(recv + me * R * es, mylen, k, w);
            ll_send_all<DT>(p, 1, f2, w, SLOT(k));
        }
        for (int i = 1; i < n; i++) {
            int src = (me + i) % n;
            size_t len = REGION_LEN(src);
            FOR_K(k * P::N < len)
            store_word<DT>(recv + src * R * es, len, k,
                           kccl_ll_load(ll_slot(p.scratch, 1, f2, src) + SLOT(k), (uint32_t)f2));
        }
#undef REGION_LEN
    } else if (p.kind == KCCL_CG_REDUCE_SCATTER) {
        FOR_K(1)
        for (int i = 1; i < n; i++) {
            int q = (me + i) % n;
            kccl_ll_store(ll_slot(p.peer_scratch[q], 0, f1, me) + SLOT(k),
                          load_word<DT>(send + q * p.stride * es, cnt, k), (uint32_t)f1);
        }
        FOR_K(1)
        store_word<DT>(recv, cnt, k,
                       ll_reduce_word<DT, OP>(
                           p, 0, f1, load_word<DT>(send + me * p.stride * es, cnt, k), SLOT(k)));
    } else if (p.kind == KCCL_CG_ALL_GATHER) {
        char *mine = recv + me * p.stride * es;
        FOR_K(1)
        {
            uint64_t w = load_word<DT>(send, cnt, k);
            ll_send_all<DT>(p, 0, f1, w, SLOT(k));
            if (mine != send)
                store_word<DT>(mine, cnt, k, w);
        }
        for (int i = 1; i < n; i++) {
            int src = (me + i) % n;
            FOR_K(1)
            store_word<DT>(recv + src * p.stride * es, cnt, k,
                           kccl_ll_load(ll_slot(p.scratch, 0, f1, src) + SLOT(k), (uint32_t)f1));
        }
    } else { /* broadcast */
        if (me == p.root) {
            FOR_K(1)
            {
                uint64_t w = load_word<DT>(send, cnt, k);
                ll_send_all<DT>(p, 0, f1, w, SLOT(k));
                if (recv != send)
                    store_word<DT>(recv, cnt, k, w);
            }
        } else {
            FOR_K(1)
            store_word<DT>(recv, cnt, k,
                           kccl_ll_load(ll_slot(p.scratch, 0, f1, p.root) + SLOT(k), (uint32_t)f1));
        }
        ll_presence(p, f1);
    }
#undef FOR_K
#undef SLOT
    epoch_end(p, two ? f2 : f1);
}

/* ---- zero-copy ---- */

/* Block b of every rank meets here: each signals its peers' block b, then waits
 * for theirs. release: order this block's earlier stores to peers first. */
__device__ void zc_barrier(const kccl_cg_launch_t &p, uint64_t v, int release)
{
    int b = blockIdx.x, t = threadIdx.x;
    __syncthreads();
    if (t < p.nranks && t != p.rank) {
        if (release)
            __threadfence_system();
        kccl_st_relaxed_sys(flag_word(p.peer_scratch[t], b, p.rank), v);
        const uint64_t *w = flag_word(p.scratch, b, t);
        uint64_t start = kccl_globaltimer(), have;
        uint32_t spins = 0;
        while ((have = kccl_ld_acquire_sys(w)) < v)
            kccl_spin_check(start, &spins, "collective barrier", v, have);
    }
    __syncthreads();
}

__device__ __forceinline__ uint4 ld16(const void *p)
{
    return __ldcg((const uint4 *)p);
}

/* Reduces V elements at offset o of every rank's src buffer (base + off bytes). */
template <int DT, int OP, int V>
__device__ __forceinline__ void zc_reduce(const kccl_cg_launch_t &p, size_t off, size_t o,
                                          size_t len, typename elem<DT>::raw *out, int vec)
{
    typedef typename elem<DT>::acc A;
    typedef typename elem<DT>::raw Rw;
    A acc[V];
#pragma unroll
    for (int j = 0; j < V; j++)
        acc[j] = (A)0;
    if (vec && o + V <= len) {
        /* four sources' loads in flight at a time (all of them up to 4 ranks) */
        for (int g = 0; g < p.nranks; g += 4) {
            pack<DT, 16> in[4];
#pragma unroll
            for (int s = 0; s < 4; s++)
                if (g + s < p.nranks)
                    in[s].u128 = ld16((const Rw *)((const char *)p.peer_send[g + s] + off) + o);
#pragma unroll
            for (int s = 0; s < 4; s++)
                if (g + s < p.nranks)
#pragma unroll
                    for (int j = 0; j < V; j++) {
                        A v = elem<DT>::load(in[s].e[j]);
                        acc[j] = g + s == 0 ? v : red<OP>(acc[j], v);
                    }
        }
    } else {
        for (int s = 0; s < p.nranks; s++) {
            const Rw *src = (const Rw *)((const char *)p.peer_send[s] + off);
            for (int j = 0; j < V; j++)
                if (o + j < len) {
                    A v = elem<DT>::load(src[o + j]);
                    acc[j] = s == 0 ? v : red<OP>(acc[j], v);
                }
        }
    }
#pragma unroll
    for (int j = 0; j < V; j++)
        out[j] = elem<DT>::store(finish<OP>(acc[j], p.nranks));
}

/* Stores V elements (vals) at byte offset off + element o of every rank's buffer
 * (bufs[n]; peers first, rotated, this rank's last unless skip_self). */
template <int DT, int V>
__device__ __forceinline__ void zc_store(void *const *bufs, int n, int me, int skip_self,
                                         size_t off, size_t o, size_t len, const pack<DT, 16> &vals,
                                         int vec)
{
    typedef typename elem<DT>::raw Rw;
    for (int i = 1; i <= n; i++) {
        int q = (me + i) % n;
        if (q == me && skip_self)
            continue;
        Rw *dst = (Rw *)((char *)bufs[q] + off) + o;
        if (vec && o + V <= len) {
            *(uint4 *)dst = vals.u128;
        } else {
            for (int j = 0; j < V; j++)
                if (o + j < len)
                    dst[j] = vals.e[j];
        }
    }
}

/* Loads V elements of src at element o (vector when vec and whole). */
template <int DT, int V>
__device__ __forceinline__ void zc_load(const void *src, size_t o, size_t len, pack<DT, 16> &v,
                                        int vec)
{
    typedef typename elem<DT>::raw Rw;
    const Rw *s = (const Rw *)src + o;
    if (vec && o + V <= len) {
        v.u128 = ld16(s);
    } else {
        for (int j = 0; j < V; j++)
            v.e[j] = o + j < len ? s[j] : (Rw)0;
    }
}

template <int DT, int OP, int VEC>
__global__ void __launch_bounds__(512, 2) zc_kernel(kccl_cg_launch_t p)
{
    typedef typename elem<DT>::raw Rw;
    enum { V = 16 / sizeof(Rw) };
    const int b = blockIdx.x, me = p.rank, n = p.nranks;
    const uint64_t e = epoch_begin(p);
    const size_t es = sizeof(Rw), cnt = p.count;
    const size_t unit = (size_t)blockDim.x * V, ustride = unit * gridDim.x;
    const size_t first = (size_t)b * unit + (size_t)threadIdx.x * V;
    zc_barrier(p, e + 1, 0);

    if (p.kind == KCCL_CG_ALL_REDUCE) {
        size_t R = (cnt + n - 1) / n;
        R = (R + V - 1) / V * V;
        size_t off = me * R * es, len = (size_t)me * R >= cnt ? 0 : cnt - me * R;
        len = len < R ? len : R;
        /* phase 1 (copy engine): elements [lo, hi) of this rank's region only */
        const size_t lo = p.phase ? p.lo : 0;
        len = p.phase && p.hi < len ? p.hi : len;
        for (size_t o = lo + first; o < len; o += ustride) {
            pack<DT, 16> r;
            zc_reduce<DT, OP, V>(p, off, o, len, r.e, VEC);
            if (p.phase) {
                void *own = p.recv;
                zc_store<DT, V>(&own, 1, 0, 0, off, o, len, r, VEC);
            } else {
                zc_store<DT, V>(p.peer_recv, n, me, 0, off, o, len, r, VEC);
            }
        }
    } else if (p.kind == KCCL_CG_REDUCE_SCATTER) {
        for (size_t o = first; o < cnt; o += ustride) {
            pack<DT, 16> r;
            zc_reduce<DT, OP, V>(p, me * p.stride * es, o, cnt, r.e, VEC);
            void *own = p.recv;
            zc_store<DT, V>(&own, 1, 0, 0, 0, o, cnt, r, VEC);
        }
    } else if (p.kind == KCCL_CG_ALL_GATHER) {
        const int skip_own = (const char *)p.recv + me * p.stride * es == (const char *)p.send;
        for (size_t o = first; o < cnt; o += ustride) {
            pack<DT, 16> v;
            zc_load<DT, V>(p.send, o, cnt, v, VEC);
            zc_store<DT, V>(p.peer_recv, n, me, skip_own, me * p.stride * es, o, cnt, v, VEC);
        }
    } else { /* broadcast */
        if (me != p.root || p.recv != p.send)
            for (size_t o = first; o < cnt; o += ustride) {
                pack<DT, 16> v;
                zc_load<DT, V>(p.peer_send[p.root], o, cnt, v, VEC);
                void *own = p.recv;
                zc_store<DT, V>(&own, 1, 0, 0, 0, o, cnt, v, VEC);
            }
    }
    if (p.phase == 1) { /* reduce half of the copy-engine all-reduce: opening barrier only */
        epoch_end(p, e + 1);
        return;
    }
    zc_barrier(p, e + 2, p.kind == KCCL_CG_ALL_REDUCE || p.kind == KCCL_CG_ALL_GATHER);
    epoch_end(p, e + 2);
}

/* One block: block 0 of every rank meets (release: after this rank's copy-engine writes
 * into peers, which completed earlier in stream order). */
__global__ void __launch_bounds__(32) bar_kernel(kccl_cg_launch_t p)
{
    const uint64_t e = epoch_begin(p);
    zc_barrier(p, e + 1, 1);
    epoch_end(p, e + 1);
}

/* Local reduce of the copy-engine pull all-reduce (coll_gpu.c): elements [lo, hi) of
 * this rank's region; sources in rank order, this rank's from its send buffer, peer s's
 * from the copy the copy engine pulled into local scratch (peer_send[s] + (o - lo));
 * the result into this rank's recv. No peer memory, no flags. */
template <int DT, int OP, int VEC>
__global__ void __launch_bounds__(512, 2) red_kernel(kccl_cg_launch_t p)
{
    typedef typename elem<DT>::raw Rw;
    typedef typename elem<DT>::acc A;
    enum { V = 16 / sizeof(Rw) };
    const int me = p.rank, n = p.nranks;
    size_t R = (p.count + n - 1) / n;
    R = (R + V - 1) / V * V;
    const size_t base = (size_t)me * R, unit = (size_t)blockDim.x * V;
    for (size_t o = p.lo + blockIdx.x * unit + threadIdx.x * V; o < p.hi; o += unit * gridDim.x) {
        const int whole = VEC && o + V <= p.hi;
        A acc[V];
        for (int s = 0; s < n; s++) {
            const Rw *src =
                s == me ? (const Rw *)p.send + base + o : (const Rw *)p.peer_send[s] + (o - p.lo);
            pack<DT, 16> x;
            if (whole)
                x.u128 = ld16(src);
            else
                for (int j = 0; j < V; j++)
                    x.e[j] = o + j < p.hi ? src[j] : (Rw)0;
#pragma unroll
            for (int j = 0; j < V; j++) {
                A v = elem<DT>::load(x.e[j]);
                acc[j] = s == 0 ? v : red<OP>(acc[j], v);
            }
        }
        pack<DT, 16> out;
#pragma unroll
        for (int j = 0; j < V; j++)
            out.e[j] = elem<DT>::store(finish<OP>(acc[j], n));
        Rw *dst = (Rw *)p.recv + base + o;
        if (whole)
            *(uint4 *)dst = out.u128;
        else
            for (int j = 0; j < V; j++)
                if (o + j < p.hi)
                    dst[j] = out.e[j];
    }
}

/* Local copy of p.lo bytes, p.send -> p.recv, by the whole grid (all-gather's own block
 * beside the copy-engine puts: an SM copy leaves the copy engines to the puts). */
__global__ void __launch_bounds__(512) copy_kernel(kccl_cg_launch_t p)
{
    kccl_copy(p.recv, p.send, p.lo, blockIdx.x * blockDim.x + threadIdx.x, gridDim.x * blockDim.x);
}

/* ---- dispatch ---- */

#define ROW4(K, DT, ...)                                                                           \
    {                                                                                              \
        (const void *)K<DT, OP_SUM __VA_ARGS__>, (const void *)K<DT, OP_MAX __VA_ARGS__>,          \
            (const void *)K<DT, OP_MIN __VA_ARGS__>, (const void *)K<DT, OP_AVG __VA_ARGS__>       \
    }
#define TAB(K, ...)                                                                                \
    {                                                                                              \
        ROW4(K, DT_I32, __VA_ARGS__), ROW4(K, DT_F32, __VA_ARGS__), ROW4(K, DT_F16, __VA_ARGS__),  \
            ROW4(K, DT_BF16, __VA_ARGS__)                                                          \
    }

static const void *const ll_tab[4][4] = TAB(ll_kernel);
static const void *const zc_tab[2][4][4] = {TAB(zc_kernel, , 0), TAB(zc_kernel, , 1)};
static const void *const red_tab[2][4][4] = {TAB(red_kernel, , 0), TAB(red_kernel, , 1)};

/* SMs and resident blocks per SM of fn at threads, cached (one process, one GPU). */
static cudaError_t resident_blocks(const void *fn, int threads, int *nsm, int *per_sm)
{
    static struct {
        const void *fn;
        int threads, nsm, per_sm;
    } cache[512];
    static int used;
    for (int i = 0; i < used; i++)
        if (cache[i].fn == fn && cache[i].threads == threads) {
            *nsm = cache[i].nsm;
            *per_sm = cache[i].per_sm;
            return cudaSuccess;
        }
    int dev = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e == cudaSuccess)
        e = cudaDeviceGetAttribute(nsm, cudaDevAttrMultiProcessorCount, dev);
    if (e == cudaSuccess)
        e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(per_sm, fn, threads, 0);
    if (e == cudaSuccess && used < 512) {
        cache[used].fn = fn;
        cache[used].threads = threads;
        cache[used].nsm = *nsm;
        cache[used].per_sm = *per_sm;
        used++;
    }
    return e;
}

extern "C" int kccl_cg_launch(const kccl_cg_launch_t *l)
{
    if ((unsigned)l->dtype >= 4 || (unsigned)l->op >= 4 || l->blocks < 1 ||
        l->blocks > KCCL_CG_MAX_BLOCKS || l->nranks > MAXR)
        return (int)cudaErrorInvalidValue;
    const void *fn = l->algo == KCCL_CG_ZC        ? zc_tab[l->aligned ? 1 : 0][l->dtype][l->op]
                     : l->algo == KCCL_CG_RED     ? red_tab[l->aligned ? 1 : 0][l->dtype][l->op]
                     : l->algo == KCCL_CG_BARRIER ? (const void *)bar_kernel
                     : l->algo == KCCL_CG_COPY    ? (const void *)copy_kernel
                                                  : ll_tab[l->dtype][l->op];
    kccl_cg_launch_t p = *l;
    /* Blocks of one rank wait for the same blocks of its peers: the whole grid must be
     * resident at once, or a waiting block could hold the SM a partner needs. */
    int nsm = 0, per_sm = 0;
    cudaError_t e = resident_blocks(fn, l->threads, &nsm, &per_sm);
    if (e != cudaSuccess)
        return (int)e;
    if (p.blocks > nsm * per_sm)
        p.blocks = nsm * per_sm;
    if (p.blocks < 1)
        return (int)cudaErrorInvalidConfiguration;
    void *args[] = {&p};
    e = cudaLaunchKernel(fn, dim3((unsigned)p.blocks), dim3((unsigned)p.threads), args, 0,
                         (cudaStream_t)p.stream);
    if (e == cudaSuccess)
        e = cudaGetLastError();
    return (int)e;
}

extern "C" int kccl_cg_preload(void)
{
    cudaFuncAttributes a;
    for (int d = 0; d < 4; d++)
        for (int o = 0; o < 4; o++) {
            const void *fns[7] = {ll_tab[d][o],
                                  zc_tab[0][d][o],
                                  zc_tab[1][d][o],
                                  red_tab[0][d][o],
                                  red_tab[1][d][o],
                                  (const void *)bar_kernel,
                                  (const void *)copy_kernel};
            for (int i = 0; i < 7; i++) {
                cudaError_t e = cudaFuncGetAttributes(&a, fns[i]);
                if (e != cudaSuccess)
                    return (int)e;
            }
        }
    return 0;
}

extern "C" size_t kccl_cg_ll_payload(void)
{
    return KCCL_CG_LL_PAYLOAD;
}
