/*
 * bench_sweep.cuh - the variants behind bench_gpu_transport's defaults (--sweep), included by
 * bench_gpu_transport.cu (it uses that file's result() and median() and pair_sync()).
 *
 *   put_<shape>      rank 0 -> rank 1 stores through the peer mapping, GB/s: blocks per SM
 *                    (h1: half the SMs), threads, 16-byte loads in flight per thread (u),
 *                    ld.global.nc (nc), st.global.cs / .wt (cs, wt), grid-stride instead of
 *                    one contiguous range per block (gs), block-cyclic chunks (c64K ...),
 *                    lib_grid: kccl_copy with kccl_mc_put_grid's indexing
 *   get_<shape>      the same bytes moved by rank 1 loading from rank 0's buffer
 *   {put,get}_tma2_* TMA bulk copies global -> shared -> global through kccl_bulk.cuh's
 *                    pipeline: stages S, loads P ahead, chunk size, pipelines (warps) per
 *                    block, blocks per SM; S = P refills a stage only after the store just
 *                    issued read it out (the first try, 295 GB/s)
 *   ce_put           cudaMemcpyAsync into the mapping (the copy engine's ceiling); split
 *                    over 2 and 4 streams at once (ce_put_<n>streams)
 *   rtt_<signal>     signal + wait round trip by signal flavour (see signal_var)
 *   fence_<what>     one thread's cost of a fence, ns
 *   order_<signal>   data-ordering stress: rank 0 writes a tagged block into rank 1's buffer
 *                    and signals; rank 1 checks every word after its wait; iterations with
 *                    a stale word (must be 0 for a flavour that orders data)
 */
#ifndef BENCH_SWEEP_CUH
#define BENCH_SWEEP_CUH

/* ---------------------------------------------------------------- copies */

/* ST: 0 plain stores, 1 st.global.cs (streaming), 2 st.global.wt (write-through) */
template <int U, bool NC, int ST = 0>
__device__ __forceinline__ void sweep_copy(int4 *d, const int4 *s, uint64_t nvec, uint64_t tid,
                                           uint64_t nt)
{
    uint64_t i = tid;
    for (; i + (U - 1) * nt < nvec; i += U * nt) {
        int4 v[U];
#pragma unroll
        for (int u = 0; u < U; u++)
            v[u] = NC ? __ldg(&s[i + u * nt]) : s[i + u * nt];
#pragma unroll
        for (int u = 0; u < U; u++) {
            if (ST == 1)
                __stcs(&d[i + u * nt], v[u]);
            else if (ST == 2)
                __stwt(&d[i + u * nt], v[u]);
            else
                d[i + u * nt] = v[u];
        }
    }
    for (; i < nvec; i += nt)
        d[i] = s[i];
}

/* bytes: a multiple of 16; dst/src 16-byte aligned. GS: grid-stride over the whole range
 * (kccl_mc_put_grid's shape); else one contiguous range per block (the old bench shape). */
template <int U, bool NC, bool GS, int ST = 0>
__global__ void sweep_copy_kernel(char *dst, const char *src, uint64_t bytes)
{
    if (GS) {
        sweep_copy<U, NC, ST>((int4 *)dst, (const int4 *)src, bytes / 16,
                              (uint64_t)blockIdx.x * blockDim.x + threadIdx.x,
                              (uint64_t)gridDim.x * blockDim.x);
        return;
    }
    uint64_t per = ((bytes + gridDim.x - 1) / gridDim.x + 15) & ~15ull, off = per * blockIdx.x;
    if (off >= bytes)
        return;
    uint64_t n = bytes - off < per ? bytes - off : per;
    sweep_copy<U, NC, ST>((int4 *)(dst + off), (const int4 *)(src + off), n / 16, threadIdx.x,
                          blockDim.x);
}

/* Block-cyclic: block b copies chunks b, b + grid, ... of CHUNK bytes with its threads. */
template <int U, uint64_t CHUNK>
__global__ void cyclic_copy_kernel(char *dst, const char *src, uint64_t bytes)
{
    for (uint64_t off = (uint64_t)blockIdx.x * CHUNK; off < bytes;
         off += (uint64_t)gridDim.x * CHUNK) {
        uint64_t n = bytes - off < CHUNK ? bytes - off : CHUNK;
        sweep_copy<U, false>((int4 *)(dst + off), (const int4 *)(src + off), n / 16, threadIdx.x,
                             blockDim.x);
    }
}

/* The library's own grid put (kccl_copy through kccl_mc_put_grid's indexing). */
__global__ void lib_grid_copy_kernel(char *dst, const char *src, uint64_t bytes)
{
    kccl_copy(dst, src, bytes, blockIdx.x * blockDim.x + threadIdx.x, gridDim.x * blockDim.x);
}

typedef void (*copy_fn)(char *, const char *, uint64_t);

struct copy_shape {
    const char *name;
    int num, den; /* blocks = SMs * num / den */
    int threads;
    copy_fn fn;
};

static const copy_shape k_shapes[] = {
    {"b2_t1024_u4", 2, 1, 1024, sweep_copy_kernel<4, false, false>}, /* the old bench shape */
    {"lib_grid_b2_t1024", 2, 1, 1024, lib_grid_copy_kernel},         /* the new one */
    {"b2_t1024_u4_gs", 2, 1, 1024, sweep_copy_kernel<4, false, true>},
    {"b1_t1024_u4_gs", 1, 1, 1024, sweep_copy_kernel<4, false, true>},
    {"b4_t512_u4_gs", 4, 1, 512, sweep_copy_kernel<4, false, true>},
    {"b8_t256_u4_gs", 8, 1, 256, sweep_copy_kernel<4, false, true>},
    {"b2_t1024_u2_gs", 2, 1, 1024, sweep_copy_kernel<2, false, true>},
    {"b2_t1024_u1_gs", 2, 1, 1024, sweep_copy_kernel<1, false, true>},
    {"b4_t256_u8_gs", 4, 1, 256, sweep_copy_kernel<8, false, true>},
    {"b1_t1024_u8_gs", 1, 1, 1024, sweep_copy_kernel<8, false, true>},
    {"b2_t512_u8_gs", 2, 1, 512, sweep_copy_kernel<8, false, true>},
    {"h1_t1024_u4_gs", 1, 2, 1024, sweep_copy_kernel<4, false, true>}, /* half the SMs */
    {"b2_t1024_u4_gs_cs", 2, 1, 1024, sweep_copy_kernel<4, false, true, 1>},
    {"b2_t1024_u4_gs_wt", 2, 1, 1024, sweep_copy_kernel<4, false, true, 2>},
    {"b2_t1024_u4_gs_nc", 2, 1, 1024, sweep_copy_kernel<4, true, true>},
    {"b2_t1024_c64K", 2, 1, 1024, cyclic_copy_kernel<4, 65536>},
    {"b2_t1024_c256K", 2, 1, 1024, cyclic_copy_kernel<4, 262144>},
    {"b2_t1024_c1M", 2, 1, 1024, cyclic_copy_kernel<4, 1048576>},
};

static const copy_shape k_get_shapes[] = {
    {"b2_t1024_u4", 2, 1, 1024, sweep_copy_kernel<4, false, false>},
    {"b2_t1024_u4_gs", 2, 1, 1024, sweep_copy_kernel<4, false, true>},
    {"b1_t1024_u4_gs", 1, 1, 1024, sweep_copy_kernel<4, false, true>},
    {"b4_t256_u8_gs", 4, 1, 256, sweep_copy_kernel<8, false, true>},
    {"b2_t512_u8_gs", 2, 1, 512, sweep_copy_kernel<8, false, true>},
    {"b2_t1024_c64K", 2, 1, 1024, cyclic_copy_kernel<4, 65536>},
};

/* ------------------------------------------------------------ TMA put */

/* The library's pipelined bulk copy (kccl_bulk_pipeline, kccl_bulk.cuh) in other shapes: lane 0
 * of each warp drives one pipeline of S stages of `chunk` bytes, loads P chunks ahead; chunks
 * dealt grid-stride over all the grid's pipelines. */
template <uint32_t S, uint32_t P>
__global__ void tma2_copy_kernel(char *dst, const char *src, uint64_t bytes, uint32_t chunk)
{
    extern __shared__ __align__(128) unsigned char tsm[];
    const uint32_t w = threadIdx.x / 32, W = blockDim.x / 32;
    if ((threadIdx.x & 31) != 0)
        return;
    kccl_bulk_pipeline<S, P>(dst, src, bytes, tsm + w * KCCL_BULK_PIPE_SMEM(S, chunk), chunk,
                             (uint64_t)blockIdx.x * W + w, (uint64_t)gridDim.x * W);
}

struct tma2_shape {
    const char *name;
    void (*fn)(char *, const char *, uint64_t, uint32_t);
    int bps, warps, stages;
    uint32_t chunk;
};

static const tma2_shape k_tma2[] = {
    {"s4p4_32K_w1", tma2_copy_kernel<4, 4>, 1, 1, 4, 32768}, /* the first try: no store in flight */
    {"s8p4_16K_w1", tma2_copy_kernel<8, 4>, 1, 1, 8, 16384},
    {"s8p6_16K_w1", tma2_copy_kernel<8, 6>, 1, 1, 8, 16384},
    {"s4p2_8K_w4", tma2_copy_kernel<4, 2>, 1, 4, 4, 8192},
    {"s6p3_8K_w4", tma2_copy_kernel<6, 3>, 1, 4, 6, 8192},
    {"s4p2_4K_w8", tma2_copy_kernel<4, 2>, 1, 8, 4, 4096},
    {"s8p4_8K_w2", tma2_copy_kernel<8, 4>, 1, 2, 8, 8192},
    {"s4p2_8K_w2_b2", tma2_copy_kernel<4, 2>, 2, 2, 4, 8192},
    {"s6p3_32K_w1", tma2_copy_kernel<6, 3>, 1, 1, 6, 32768},
    {"s4p3_16K_w3", tma2_copy_kernel<4, 3>, 1, 3, 4, 16384},
    {"s8p4_4K_w4_b2", tma2_copy_kernel<8, 4>, 2, 4, 8, 4096},
};

/* Times every tma2 shape copying 1 GiB src -> dst (alternating 2 slots), median of 12;
 * checks spots of the last copy against the source. */
static int sweep_tma2(const char *what, char *dst, const char *src, uint64_t slot, int sms,
                      cudaEvent_t e0, cudaEvent_t e1)
{
    for (const tma2_shape &v : k_tma2) {
        size_t smem = (size_t)v.warps * KCCL_BULK_PIPE_SMEM(v.stages, v.chunk);
        GH_CUDA(cudaFuncSetAttribute(v.fn, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        GH_CUDA(cudaMemset(dst, 0xEE, 2 * slot));
        GH_CUDA(cudaDeviceSynchronize());
        double sec;
        if (time_median(
                12, 2, e0, e1,
                [&](int it) {
                    uint64_t off = (uint64_t)(it % 2) * slot;
                    v.fn<<<sms * v.bps, 32 * v.warps, smem>>>(dst + off, src + off, slot, v.chunk);
                },
                &sec))
            return 1;
        char nm[96];
        snprintf(nm, sizeof(nm), "%s_tma2_%s_1024MiB", what, v.name);
        result(nm, (double)slot / sec / 1e9, "GB/s");
        std::vector<unsigned char> a(4096), b(4096);
        const uint64_t spots[] = {0,           12345 * 16, slot / 2 + 777 * 16,
                                  slot - 4096, slot,       2 * slot - 4096};
        for (uint64_t at : spots) {
            GH_CUDA(cudaMemcpy(a.data(), dst + at, 4096, cudaMemcpyDefault));
            GH_CUDA(cudaMemcpy(b.data(), src + at, 4096, cudaMemcpyDefault));
            GH_CHECK(memcmp(a.data(), b.data(), 4096) == 0, "%s: bytes at %llu differ", nm,
                     (unsigned long long)at);
        }
    }
    return 0;
}

/* ----------------------------------------------------------- signals */

/* 0 red.release.sys (the library's kccl_sem_signal when this was written)
 * 1 red.relaxed.sys (kccl_sem_signal_relaxed)
 * 2 fence.acq_rel.gpu + red.relaxed.sys (GPU-scope fence: NOT a release for the peer by the
 *   PTX model; measured to see what the system-scope fence costs)
 * 3 st.release.sys of this side's running count
 * 4 fence.sc.sys (__threadfence_system) + red.relaxed.sys
 * 5 like 0, but the waiter polls relaxed and acquires once */
template <int MODE> __device__ __forceinline__ void signal_var(uint64_t *remote, uint64_t count)
{
    if (MODE == 0 || MODE == 5)
        kccl_add_release_sys(remote, 1);
    else if (MODE == 1)
        kccl_add_relaxed_sys(remote, 1);
    else if (MODE == 2) {
        asm volatile("fence.acq_rel.gpu;" ::: "memory");
        kccl_add_relaxed_sys(remote, 1);
    } else if (MODE == 3)
        kccl_st_release_sys(remote, count);
    else {
        asm volatile("fence.sc.sys;" ::: "memory");
        kccl_add_relaxed_sys(remote, 1);
    }
}

template <int MODE> __device__ __forceinline__ void wait_var(const uint64_t *p, uint64_t want)
{
    uint64_t start = kccl_globaltimer(), have;
    uint32_t spins = 0;
    while ((have = MODE == 5 ? kccl_ld_relaxed_sys(p) : kccl_ld_acquire_sys(p)) < want)
        kccl_spin_check(start, &spins, "sweep wait", want, have);
    if (MODE == 5)
        (void)kccl_ld_acquire_sys(p);
}

template <int MODE>
__global__ void pp_var_kernel(kccl_memory_channel_dev_t c, int initiator, int iters,
                              unsigned long long *ns)
{
    if (threadIdx.x != 0)
        return;
    uint64_t want = 0, sent = 0, t0 = kccl_globaltimer();
    for (int i = 0; i < iters; i++) {
        if (!initiator)
            wait_var<MODE>(c.sem.inbound, ++want);
        signal_var<MODE>(c.sem.remote_inbound, ++sent);
        if (initiator)
            wait_var<MODE>(c.sem.inbound, ++want);
    }
    *ns = kccl_globaltimer() - t0;
}

/* One thread: iters x (optional store, fence); mode: 0 fence.acq_rel.sys, 1 fence.acq_rel.gpu,
 * 2 remote store + fence.acq_rel.sys, 3 local store + fence.acq_rel.sys, 4 remote store +
 * fence.acq_rel.gpu, 5 fence.sc.sys */
__global__ void fence_kernel(uint64_t *remote, uint64_t *local, int iters, int mode,
                             unsigned long long *ns)
{
    if (threadIdx.x != 0)
        return;
    uint64_t t0 = kccl_globaltimer();
    for (int i = 0; i < iters; i++) {
        if (mode == 2 || mode == 4)
            kccl_st_relaxed_sys(remote, i);
        if (mode == 3)
            kccl_st_relaxed_sys(local, i);
        if (mode == 1 || mode == 4)
            asm volatile("fence.acq_rel.gpu;" ::: "memory");
        else if (mode == 5)
            asm volatile("fence.sc.sys;" ::: "memory");
        else
            asm volatile("fence.acq_rel.sys;" ::: "memory");
    }
    *ns = kccl_globaltimer() - t0;
}

/* Rank 0 writes nvec tagged int4 into rank 1's buffer, signals (MODE); rank 1 waits, checks
 * every word, acknowledges (relaxed). *bad counts iterations with any stale word. */
template <int MODE>
__global__ void order_kernel(kccl_memory_channel_dev_t c, const uint4 *mine, int sender, int iters,
                             uint32_t nvec, unsigned long long *bad, unsigned long long *ns)
{
    uint4 *remote = (uint4 *)c.remote;
    uint64_t t0 = kccl_globaltimer();
    for (int it = 1; it <= iters; it++) {
        if (sender) {
            for (uint32_t k = threadIdx.x; k < nvec; k += blockDim.x)
                remote[k] = make_uint4((unsigned)it, k, (unsigned)it ^ k, ~(unsigned)it);
            __syncthreads();
            if (threadIdx.x == 0) {
                signal_var<MODE>(c.sem.remote_inbound, (uint64_t)it);
                wait_var<0>(c.sem.inbound, (uint64_t)it);
            }
            __syncthreads();
        } else {
            if (threadIdx.x == 0)
                wait_var<0>(c.sem.inbound, (uint64_t)it);
            __syncthreads();
            int stale = 0;
            for (uint32_t k = threadIdx.x; k < nvec; k += blockDim.x) {
                uint4 v = mine[k];
                stale |= v.x != (unsigned)it || v.y != k || v.z != ((unsigned)it ^ k) ||
                         v.w != ~(unsigned)it;
            }
            if (__syncthreads_or(stale) && threadIdx.x == 0)
                (*bad)++;
            if (threadIdx.x == 0)
                kccl_add_relaxed_sys(c.sem.remote_inbound, 1);
        }
    }
    if (threadIdx.x == 0)
        *ns = kccl_globaltimer() - t0;
}

__global__ void fill_pattern(uint32_t *p, uint64_t nwords, uint32_t seed)
{
    for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; i < nwords;
         i += (uint64_t)gridDim.x * blockDim.x)
        p[i] = (uint32_t)(i * 2654435761u) ^ seed;
}

/* ------------------------------------------------------------- driver */

static int sweep_time_copy(copy_fn fn, int blocks, int threads, char *dst, const char *src,
                           uint64_t bytes, uint64_t slot, cudaEvent_t e0, cudaEvent_t e1,
                           double *gbs)
{
    double sec;
    if (time_median(
            15, 3, e0, e1,
            [&](int it) {
                uint64_t off = (uint64_t)(it % 2) * slot;
                fn<<<blocks, threads>>>(dst + off, src + off, bytes);
            },
            &sec))
        return 1;
    *gbs = (double)bytes / sec / 1e9;
    return 0;
}

template <int MODE>
static int sweep_rtt(kccl_comm_t comm, int rank, int peer, kccl_mem_t smem, kccl_rmem_t prbuf,
                     kccl_bootstrap_t bs, uint32_t *seq, unsigned long long *ns, const char *name)
{
    kccl_memory_channel_t mc; /* fresh counters for each flavour */
    kccl_memory_channel_dev_t mh;
    GH_OK(kccl_memory_channel_create(comm, peer, smem, prbuf, &mc));
    GH_OK(kccl_memory_channel_device_handle(mc, &mh));
    const int iters = 50000;
    GH_OK(pair_sync(bs, peer, seq));
    pp_var_kernel<MODE><<<1, 32>>>(mh, rank == 0, iters, ns);
    GH_CUDA(cudaGetLastError());
    GH_CUDA(cudaDeviceSynchronize());
    unsigned long long h;
    GH_CUDA(cudaMemcpy(&h, ns, sizeof(h), cudaMemcpyDeviceToHost));
    if (rank == 0) {
        char n[64];
        snprintf(n, sizeof(n), "rtt_%s", name);
        result(n, (double)h / iters / 1e3, "us");
    }
    GH_OK(pair_sync(bs, peer, seq));
    kccl_memory_channel_destroy(mc);
    return 0;
}

template <int MODE>
static int sweep_order(kccl_comm_t comm, int rank, int peer, kccl_mem_t smem, kccl_rmem_t prbuf,
                       const void *myrbuf, kccl_bootstrap_t bs, uint32_t *seq,
                       unsigned long long *ns, const char *name, uint32_t bytes)
{
    kccl_memory_channel_t mc;
    kccl_memory_channel_dev_t mh;
    unsigned long long *bad;
    GH_OK(kccl_memory_channel_create(comm, peer, smem, prbuf, &mc));
    GH_OK(kccl_memory_channel_device_handle(mc, &mh));
    GH_CUDA(cudaMalloc(&bad, sizeof(*bad)));
    GH_CUDA(cudaMemset(bad, 0, sizeof(*bad)));
    GH_CUDA(cudaMemset((void *)myrbuf, 0, bytes));
    GH_CUDA(cudaDeviceSynchronize());
    const int iters = 20000;
    GH_OK(pair_sync(bs, peer, seq));
    order_kernel<MODE>
        <<<1, 512>>>(mh, (const uint4 *)myrbuf, rank == 0, iters, bytes / 16, bad, ns);
    GH_CUDA(cudaGetLastError());
    GH_CUDA(cudaDeviceSynchronize());
    unsigned long long hb = 0, hn = 0;
    GH_CUDA(cudaMemcpy(&hb, bad, sizeof(hb), cudaMemcpyDeviceToHost));
    GH_CUDA(cudaMemcpy(&hn, ns, sizeof(hn), cudaMemcpyDeviceToHost));
    /* rank 1 counted; send it to rank 0 for the report */
    if (rank == 1)
        GH_OK(kccl_bootstrap_send(bs, 0, 0x2000u + *seq, &hb, sizeof(hb)));
    else
        GH_OK(kccl_bootstrap_recv(bs, 1, 0x2000u + *seq, &hb, sizeof(hb)));
    (*seq)++;
    if (rank == 0) {
        char n[80];
        snprintf(n, sizeof(n), "order_%s_%uB_stale_iters", name, bytes);
        result(n, (double)hb, "of20000");
        snprintf(n, sizeof(n), "order_%s_%uB_iter", name, bytes);
        result(n, (double)hn / iters / 1e3, "us");
    }
    GH_OK(pair_sync(bs, peer, seq));
    cudaFree(bad);
    kccl_memory_channel_destroy(mc);
    return 0;
}

static int bench_sweep(int rank, int n, const kccl_unique_id_t *id, const kccl_bootstrap_opts_t *o,
                       void *arg)
{
    (void)arg;
    kccl_comm_t comm;
    cudaFuncAttributes fa; /* load every kernel before any launch (lazy loading) */
    for (const copy_shape &sh : k_shapes)
        GH_CUDA(cudaFuncGetAttributes(&fa, sh.fn));
    for (const copy_shape &sh : k_get_shapes)
        GH_CUDA(cudaFuncGetAttributes(&fa, sh.fn));
    GH_OK(kccl_comm_init_rank(id, rank, n, o, &comm));
    kccl_bootstrap_t bs = kccl_comm_bootstrap(comm);
    int peer = 1 - rank;
    uint32_t seq = 0;
    if (rank > 1) {
        GH_OK(kccl_bootstrap_barrier(bs));
        kccl_comm_destroy(comm);
        return 0;
    }
    const uint64_t slot = 1ull << 30, total = 2 * slot;
    void *sbuf, *rbuf;
    kccl_mem_t smem, rmem;
    kccl_rmem_t prbuf = NULL, psbuf = NULL;
    GH_CUDA(cudaMalloc(&sbuf, total));
    GH_CUDA(cudaMalloc(&rbuf, total));
    fill_pattern<<<1024, 256>>>((uint32_t *)sbuf, total / 4, 0x9E3779B9u * (rank + 1));
    GH_CUDA(cudaGetLastError());
    GH_CUDA(cudaDeviceSynchronize());
    GH_OK(kccl_mem_register(comm, sbuf, total, KCCL_MEM_DEVICE, &smem));
    GH_OK(kccl_mem_register(comm, rbuf, total, KCCL_MEM_DEVICE, &rmem));
    GH_OK(kccl_mem_send(comm, rmem, peer));
    GH_OK(kccl_mem_recv(comm, peer, &prbuf));
    GH_OK(kccl_mem_send(comm, smem, peer));
    GH_OK(kccl_mem_recv(comm, peer, &psbuf));
    char *peer_r = (char *)kccl_rmem_mapped_ptr(prbuf),
         *peer_s = (char *)kccl_rmem_mapped_ptr(psbuf);
    GH_CHECK(peer_r != NULL && peer_s != NULL, "peer buffers not mapped");
    int dev, sms;
    GH_CUDA(cudaGetDevice(&dev));
    GH_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    cudaEvent_t e0, e1;
    GH_CUDA(cudaEventCreate(&e0));
    GH_CUDA(cudaEventCreate(&e1));
    const uint64_t sizes[] = {256ull << 20, 1ull << 30};

    /* 1. signal flavours (first: the copies below include the riskier TMA kernels) */
    unsigned long long *ns;
    GH_CUDA(cudaMalloc(&ns, sizeof(*ns)));
    if (sweep_rtt<0>(comm, rank, peer, smem, prbuf, bs, &seq, ns, "red_release_sys") ||
        sweep_rtt<1>(comm, rank, peer, smem, prbuf, bs, &seq, ns, "red_relaxed_sys") ||
        sweep_rtt<2>(comm, rank, peer, smem, prbuf, bs, &seq, ns, "fence_gpu_red_relaxed") ||
        sweep_rtt<3>(comm, rank, peer, smem, prbuf, bs, &seq, ns, "st_release_sys") ||
        sweep_rtt<4>(comm, rank, peer, smem, prbuf, bs, &seq, ns, "fence_sc_sys_red") ||
        sweep_rtt<5>(comm, rank, peer, smem, prbuf, bs, &seq, ns, "red_release_relaxed_poll"))
        return 1;

    /* 2. fence costs (rank 0 alone) */
    if (rank == 0) {
        const char *fn[] = {"acq_rel_sys",           "acq_rel_gpu",
                            "remote_st_acq_rel_sys", "local_st_acq_rel_sys",
                            "remote_st_acq_rel_gpu", "sc_sys"};
        for (int m = 0; m < 6; m++) {
            const int iters = 20000;
            for (int warm = 0; warm < 2; warm++) {
                fence_kernel<<<1, 32>>>((uint64_t *)(peer_r + total - 4096),
                                        (uint64_t *)((char *)rbuf + total - 4096), iters, m, ns);
                GH_CUDA(cudaGetLastError());
                GH_CUDA(cudaDeviceSynchronize());
            }
            unsigned long long h;
            GH_CUDA(cudaMemcpy(&h, ns, sizeof(h), cudaMemcpyDeviceToHost));
            char nm[64];
            snprintf(nm, sizeof(nm), "fence_%s", fn[m]);
            result(nm, (double)h / iters, "ns");
        }
    }
    GH_OK(pair_sync(bs, peer, &seq));

    /* 3. data ordering per flavour */
    for (uint32_t bytes : {2048u, 65536u})
        if (sweep_order<0>(comm, rank, peer, smem, prbuf, rbuf, bs, &seq, ns, "red_release_sys",
                           bytes) ||
            sweep_order<1>(comm, rank, peer, smem, prbuf, rbuf, bs, &seq, ns, "red_relaxed_sys",
                           bytes) ||
            sweep_order<2>(comm, rank, peer, smem, prbuf, rbuf, bs, &seq, ns,
                           "fence_gpu_red_relaxed", bytes))
            return 1;

    /* 4. put shapes (rank 0 writes rank 1's buffer) */
    GH_OK(pair_sync(bs, peer, &seq));
    if (rank == 0)
        for (const copy_shape &sh : k_shapes)
            for (uint64_t bytes : sizes) {
                double g;
                if (sweep_time_copy(sh.fn, sms * sh.num / sh.den, sh.threads, peer_r,
                                    (const char *)sbuf, bytes, slot, e0, e1, &g))
                    return 1;
                char nm[96];
                snprintf(nm, sizeof(nm), "put_%s_%lluMiB", sh.name,
                         (unsigned long long)(bytes >> 20));
                result(nm, g, "GB/s");
            }
    GH_OK(pair_sync(bs, peer, &seq));

    /* 5. get shapes (rank 1 reads rank 0's buffer: the same direction of travel) */
    if (rank == 1)
        for (const copy_shape &sh : k_get_shapes) {
            double g;
            if (sweep_time_copy(sh.fn, sms * sh.num / sh.den, sh.threads, (char *)rbuf, peer_s,
                                1ull << 30, slot, e0, e1, &g))
                return 1;
            char nm[96];
            snprintf(nm, sizeof(nm), "get_%s_1024MiB", sh.name);
            result(nm, g, "GB/s");
        }
    GH_OK(pair_sync(bs, peer, &seq));

    /* 6. copy engine */
    if (rank == 0) {
        cudaStream_t st;
        GH_CUDA(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
        std::vector<double> t;
        for (int it = 0; it < 10; it++) {
            uint64_t off = (uint64_t)(it % 2) * slot;
            GH_CUDA(cudaEventRecord(e0, st));
            GH_CUDA(cudaMemcpyAsync(peer_r + off, (char *)sbuf + off, slot, cudaMemcpyDefault, st));
            GH_CUDA(cudaEventRecord(e1, st));
            GH_CUDA(cudaEventSynchronize(e1));
            float ms;
            GH_CUDA(cudaEventElapsedTime(&ms, e0, e1));
            if (it >= 2)
                t.push_back(ms * 1e-3);
        }
        result("ce_put_1024MiB", (double)slot / median(t) / 1e9, "GB/s");
        /* the same bytes split over 2 and 4 streams at once: is one copy engine the limit? */
        for (int ns_ = 2; ns_ <= 4; ns_ *= 2) {
            cudaStream_t ss[4];
            for (int k = 0; k < ns_; k++)
                GH_CUDA(cudaStreamCreateWithFlags(&ss[k], cudaStreamNonBlocking));
            std::vector<double> tp;
            for (int it = 0; it < 10; it++) {
                uint64_t off = (uint64_t)(it % 2) * slot, part = slot / ns_;
                GH_CUDA(cudaEventRecord(e0, st));
                for (int k = 0; k < ns_; k++) {
                    GH_CUDA(cudaStreamWaitEvent(ss[k], e0, 0));
                    GH_CUDA(cudaMemcpyAsync(peer_r + off + k * part, (char *)sbuf + off + k * part,
                                            part, cudaMemcpyDefault, ss[k]));
                    cudaEvent_t ek;
                    GH_CUDA(cudaEventCreateWithFlags(&ek, cudaEventDisableTiming));
                    GH_CUDA(cudaEventRecord(ek, ss[k]));
                    GH_CUDA(cudaStreamWaitEvent(st, ek, 0));
                    GH_CUDA(cudaEventDestroy(ek));
                }
                GH_CUDA(cudaEventRecord(e1, st));
                GH_CUDA(cudaEventSynchronize(e1));
                float ms;
                GH_CUDA(cudaEventElapsedTime(&ms, e0, e1));
                if (it >= 2)
                    tp.push_back(ms * 1e-3);
            }
            char nm[64];
            snprintf(nm, sizeof(nm), "ce_put_%dstreams_1024MiB", ns_);
            result(nm, (double)slot / median(tp) / 1e9, "GB/s");
            for (int k = 0; k < ns_; k++)
                cudaStreamDestroy(ss[k]);
        }
        cudaStreamDestroy(st);
    }
    GH_OK(pair_sync(bs, peer, &seq));

    /* 7. pipelined bulk copies: put (rank 0 into rank 1) then get (rank 1 from rank 0) */
    if (rank == 0 && sweep_tma2("put", peer_r, (const char *)sbuf, slot, sms, e0, e1))
        return 1;
    GH_OK(pair_sync(bs, peer, &seq));
    if (rank == 1 && sweep_tma2("get", (char *)rbuf, peer_s, slot, sms, e0, e1))
        return 1;
    GH_OK(pair_sync(bs, peer, &seq));

    GH_OK(kccl_bootstrap_barrier(bs));
    kccl_rmem_release(prbuf);
    kccl_rmem_release(psbuf);
    kccl_mem_deregister(smem);
    kccl_mem_deregister(rmem);
    cudaFree(sbuf);
    cudaFree(rbuf);
    cudaFree(ns);
    kccl_comm_destroy(comm);
    return 0;
}

#endif
