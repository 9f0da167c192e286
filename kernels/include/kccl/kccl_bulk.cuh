/*
 * kccl_bulk.cuh - grid-wide bulk copies through shared memory with the Tensor Memory
 * Accelerator (cp.async.bulk, sm_90 and later): the fastest SM-driven way found to write
 * into a peer GPU's mapping (H100 NV18, 1 GiB one way: 373.6-374.7 GB/s against 368.6-370.7
 * for the best load/store loop; tests/gpu/NOTES.md).
 *
 * Each block runs one pipeline, driven by thread 0: KCCL_BULK_STAGES buffers of
 * KCCL_BULK_CHUNK bytes in dynamic shared memory; bulk loads (global -> shared, completion
 * on an mbarrier) run KCCL_BULK_AHEAD chunks ahead of the bulk stores (shared -> global),
 * so up to STAGES - AHEAD stores are still reading shared memory while AHEAD loads fly.
 * Chunks are dealt grid-stride over the blocks (block b copies chunks b, b + grid, ...),
 * which keeps the whole grid on one window of the buffer (one contiguous range per block
 * was 7 % slower for the load/store loop).
 *
 * Launch: every thread of every block calls it with the same arguments; dynamic shared
 * memory of KCCL_BULK_SMEM bytes per block (over 48 KiB: the host sets
 * cudaFuncAttributeMaxDynamicSharedMemorySize once), one block per SM is enough.
 * Any bytes and alignment: the 16-byte-aligned middle goes through the TMA, the ragged
 * ends through plain loads and stores; a destination and source not congruent mod 16
 * (or an older GPU) fall back to the load/store loop. When it returns, this block's
 * writes are complete and ordered before what the block does next (a signal after it
 * covers them; other blocks' writes need a grid barrier or the kernel's end, as usual).
 */
#ifndef KCCL_BULK_CUH
#define KCCL_BULK_CUH

#include "kccl/kccl_atomics.cuh"

#define KCCL_BULK_STAGES 8
#define KCCL_BULK_AHEAD  4
#define KCCL_BULK_CHUNK  16384u
/* Bytes of shared memory one pipeline of S stages of `chunk` bytes uses: buffers, then one
 * 8-byte mbarrier per stage, rounded up to 128 so that pipelines side by side keep their
 * buffers 128-byte aligned (at 16-byte alignment, the sweep's shapes with several pipelines
 * per block fell from ~374 to 292-355 GB/s). */
#define KCCL_BULK_PIPE_SMEM(S, chunk) (((size_t)(S) * (chunk) + (size_t)(S)*8 + 127) & ~(size_t)127)
/* dynamic shared memory per block of kccl_bulk_copy_grid */
#define KCCL_BULK_SMEM KCCL_BULK_PIPE_SMEM(KCCL_BULK_STAGES, KCCL_BULK_CHUNK)

/* Copies bytes with threads [tid, nthreads) cooperating; 16-byte accesses when aligned. */
KCCL_DEVICE void kccl_copy(void *dst, const void *src, uint64_t bytes, uint32_t tid,
                           uint32_t nthreads)
{
    char *d = (char *)dst;
    const char *s = (const char *)src;
    if ((((uintptr_t)d | (uintptr_t)s) & 15u) == 0) {
        const uint64_t nvec = bytes / 16;
        int4 *dv = (int4 *)d;
        const int4 *sv = (const int4 *)s;
        const uint32_t unroll = 4;
        uint64_t i = tid;
        /* Four independent loads in flight per thread before the stores. */
        for (; i + (unroll - 1) * (uint64_t)nthreads < nvec; i += unroll * (uint64_t)nthreads) {
            int4 v0 = sv[i];
            int4 v1 = sv[i + nthreads];
            int4 v2 = sv[i + 2 * (uint64_t)nthreads];
            int4 v3 = sv[i + 3 * (uint64_t)nthreads];
            dv[i] = v0;
            dv[i + nthreads] = v1;
            dv[i + 2 * (uint64_t)nthreads] = v2;
            dv[i + 3 * (uint64_t)nthreads] = v3;
        }
        for (; i < nvec; i += nthreads)
            dv[i] = sv[i];
        for (uint64_t b = nvec * 16 + tid; b < bytes; b += nthreads)
            d[b] = s[b];
        return;
    }
    for (uint64_t b = tid; b < bytes; b += nthreads)
        d[b] = s[b];
}

/* The TMA helpers below use sm_90 instructions: instantiate them only for sm_90 and later
 * (kccl_bulk_copy_grid checks __CUDA_ARCH__). */

KCCL_DEVICE uint32_t kccl_smem_addr(const void *p)
{
    return (uint32_t)__cvta_generic_to_shared(p);
}

/* Bulk load of len bytes at src into shared sm; completion counted on mbarrier bar. */
KCCL_DEVICE void kccl_bulk_load(uint32_t sm, const char *src, uint32_t len, uint32_t bar)
{
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(len)
                 : "memory");
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], "
                 "%2, [%3];" ::"r"(sm),
                 "l"(src), "r"(len), "r"(bar)
                 : "memory");
}

/* One thread: pipeline `pid` of `np` copies chunks pid, pid + np, ... of [0, bytes) from s to
 * d through smem (KCCL_BULK_PIPE_SMEM(S, C) bytes, 128-byte aligned), S stages, loads P <= S
 * chunks ahead (P = S: a stage is refilled only once the store just issued has read it); d, s,
 * bytes and C multiples of 16. The library runs one per block (kccl_bulk_copy_grid); the sweep in
 * tests/gpu/bench_sweep.cuh times other shapes. */
template <uint32_t S, uint32_t P>
KCCL_DEVICE void kccl_bulk_pipeline(char *d, const char *s, uint64_t bytes, unsigned char *smem,
                                    uint32_t C, uint64_t pid, uint64_t np)
{
    static_assert(P >= 1 && P <= S && S <= 32, "0 < P <= S <= 32 stages");
    const uint64_t nch = (bytes + C - 1) / C;
    if (pid >= nch)
        return;
    const uint64_t mine = (nch - pid + np - 1) / np;
    uint64_t *bar = (uint64_t *)(smem + (size_t)S * C);
    for (uint32_t i = 0; i < S; i++)
        asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(kccl_smem_addr(&bar[i]))
                     : "memory");
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
    for (uint64_t k = 0; k < mine && k < P; k++) {
        uint64_t o = (pid + k * np) * C;
        kccl_bulk_load(kccl_smem_addr(smem + k * C), s + o,
                       (uint32_t)(bytes - o < C ? bytes - o : C), kccl_smem_addr(&bar[k]));
    }
    uint32_t phases = 0, spins = 0;
    const uint64_t start = kccl_globaltimer();
    for (uint64_t k = 0; k < mine; k++) {
        const uint32_t st = (uint32_t)(k % S), b = kccl_smem_addr(&bar[st]);
        const uint64_t o = (pid + k * np) * C;
        const uint32_t len = (uint32_t)(bytes - o < C ? bytes - o : C);
        uint32_t ok = 0;
        while (!ok) {
            asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; "
                         "selp.u32 %0, 1, 0, p; }"
                         : "=r"(ok)
                         : "r"(b), "r"((phases >> st) & 1u)
                         : "memory");
            if (!ok)
                kccl_spin_check(start, &spins, "bulk copy load", k, 0);
        }
        phases ^= 1u << st;
        asm volatile("cp.async.bulk.global.shared::cta.bulk_group [%0], [%1], %2;" ::"l"(d + o),
                     "r"(kccl_smem_addr(smem + (size_t)st * C)), "r"(len)
                     : "memory");
        asm volatile("cp.async.bulk.commit_group;" ::: "memory");
        const uint64_t kn = k + P;
        if (kn < mine) {
            /* stage kn % S last held chunk kn - S, whose store is S - P groups back */
            asm volatile("cp.async.bulk.wait_group.read %0;" ::"n"(S - P) : "memory");
            const uint32_t sn = (uint32_t)(kn % S);
            const uint64_t no = (pid + kn * np) * C;
            kccl_bulk_load(kccl_smem_addr(smem + (size_t)sn * C), s + no,
                           (uint32_t)(bytes - no < C ? bytes - no : C), kccl_smem_addr(&bar[sn]));
        }
    }
    /* the writes done (not only read out of shared memory), then ordered with the generic
     * proxy's later accesses (a signal) */
    asm volatile("cp.async.bulk.wait_group 0;" ::: "memory");
    asm volatile("fence.proxy.async.global;" ::: "memory");
    for (uint32_t i = 0; i < S; i++)
        asm volatile("mbarrier.inval.shared::cta.b64 [%0];" ::"r"(kccl_smem_addr(&bar[i]))
                     : "memory");
}

/* Whole grid (see the header comment): dst <- src, bytes. smem: this block's
 * KCCL_BULK_SMEM bytes of dynamic shared memory, 128-byte aligned
 * (extern __shared__ __align__(128) unsigned char smem[]). */
KCCL_DEVICE void kccl_bulk_copy_grid(void *dst, const void *src, uint64_t bytes, void *smem)
{
    char *d = (char *)dst;
    const char *s = (const char *)src;
    const uint32_t tid = blockIdx.x * blockDim.x + threadIdx.x, nt = gridDim.x * blockDim.x;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if ((((uintptr_t)d ^ (uintptr_t)s) & 15u) == 0 && bytes >= 64) {
        /* head up to the first 16-byte boundary, the middle by TMA, the tail */
        const uint64_t head = (16u - ((uintptr_t)d & 15u)) & 15u;
        const uint64_t mid = (bytes - head) & ~(uint64_t)15, tail = bytes - head - mid;
        if (tid < head)
            d[tid] = s[tid];
        if (tid < tail)
            d[head + mid + tid] = s[head + mid + tid];
        if (threadIdx.x == 0)
            kccl_bulk_pipeline<KCCL_BULK_STAGES, KCCL_BULK_AHEAD>(
                d + head, s + head, mid, (unsigned char *)smem, KCCL_BULK_CHUNK, blockIdx.x,
                gridDim.x);
        __syncthreads();
        return;
    }
#else
    (void)smem;
#endif
    kccl_copy(d, s, bytes, tid, nt);
    __syncthreads();
}

#endif
