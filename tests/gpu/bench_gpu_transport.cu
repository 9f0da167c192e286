/*
 * bench_gpu_transport.cu - transport numbers on real GPUs (one per rank).
 *
 * Usage: bench_gpu_transport [nranks] [--json FILE]
 *   mc_put      memory-channel put, rank 0 -> rank 1, one way, GB/s (1e9 B/s),
 *               by size: kccl_mc_put_bulk (TMA bulk copies, one block of 128
 *               threads per SM); mc_put_ldst: kccl_mc_put_grid (loads and stores,
 *               2 x SMs blocks of 1024 threads), 1 GiB; CUDA events around 20 timed
 *               launches after 5 warm-up, median; buffers alternate between 2 slots
 *               of 1 GiB
 *   sig_rtt     signal + wait round trip between two GPUs, microseconds
 *               (one kernel per side, 10^5 ping-pongs timed with %globaltimer);
 *               sig_rtt_relaxed: the same with signals that order no data
 *   ll_rtt      the same round trip with the signal carried by the data: LL
 *               packets (kccl_ll.cuh, 8 data bytes + flag per 16-byte store)
 *               written into the peer's mapping; 1 thread (8 B) and a warp
 *               (256 B) per message, every received word checked
 *   pc_put      port-channel put through the proxy (cuda_ipc copies), GB/s,
 *               and empty-trigger rate through the FIFO, million triggers/s
 *   init        kccl_comm_init_rank on nranks GPUs after CUDA is initialised,
 *               ms, the slowest rank (5 repetitions, median)
 * Targets (issue): mc_put >= 370 GB/s, sig_rtt <= 2 us, init(4) <= 100 ms.
 * Output: "RESULT name value unit" lines, and a JSON object with --json.
 *
 * Only ranks 0 and 1 measure; with more ranks the others wait at one final global barrier,
 * and ranks 0 and 1 synchronise pairwise (tagged send/recv), never with a global barrier
 * that the idle ranks would not join.
 *
 * bench_gpu_transport [nranks] --sweep: the variants behind the defaults (tests/gpu/NOTES.md):
 * put/get launch shapes and copy loops, a bulk-copy (TMA) put, the copy engine, signal
 * flavours, fence costs and a data-ordering stress check per signal flavour.
 * bench_gpu_transport [nranks] --init-only: just the set-up timing (run it with
 * KCCL_LOG_LEVEL=info for the per-phase breakdown that transport.c logs).
 */
#include <algorithm>
#include <vector>

#include "gpu_harness.h"
#include "kccl/kccl_channel.cuh"
#include "kccl/kccl_ll.cuh"

static const char *json_path;

/* Launch shape of the canonical mc_put measurement: blocks = PUT_BLOCKS_PER_SM x SMs. */
#ifndef PUT_BLOCKS_PER_SM
#define PUT_BLOCKS_PER_SM 2
#endif
#ifndef PUT_THREADS
#define PUT_THREADS 1024
#endif

/* Ranks 0 and 1 only: both send a token, then both receive the other's (sends never block). */
static kccl_status_t pair_sync(kccl_bootstrap_t bs, int peer, uint32_t *seq)
{
    uint32_t tag = 0x1000u + (*seq)++, mine = tag, theirs = 0;
    kccl_status_t st = kccl_bootstrap_send(bs, peer, tag, &mine, sizeof(mine));
    if (st == KCCL_OK)
        st = kccl_bootstrap_recv(bs, peer, tag, &theirs, sizeof(theirs));
    return st;
}

/* The library's grid-wide put: every thread of the grid strides over the whole range. */
__global__ void bw_put_kernel(kccl_memory_channel_dev_t c, uint64_t dst_off, uint64_t src_off,
                              uint64_t bytes)
{
    kccl_mc_put_grid(&c, dst_off, src_off, bytes);
}

/* The library's bulk put: TMA copies through shared memory, one pipeline per block. */
__global__ void bw_put_bulk_kernel(kccl_memory_channel_dev_t c, uint64_t dst_off, uint64_t src_off,
                                   uint64_t bytes)
{
    extern __shared__ __align__(128) unsigned char bulk_smem[];
    kccl_mc_put_bulk(&c, dst_off, src_off, bytes, bulk_smem);
}

/* One put of bytes at off (same offset both sides): the bulk put on one block per SM, or
 * (ldst) the load/store grid put on PUT_BLOCKS_PER_SM x SMs blocks of PUT_THREADS. */
static void put_launch(int ldst, kccl_memory_channel_dev_t mh, uint64_t off, uint64_t bytes,
                       int sms)
{
    if (ldst)
        bw_put_kernel<<<sms * PUT_BLOCKS_PER_SM, PUT_THREADS>>>(mh, off, off, bytes);
    else
        bw_put_bulk_kernel<<<sms, 128, KCCL_BULK_SMEM>>>(mh, off, off, bytes);
}

__global__ void pingpong_kernel(kccl_memory_channel_dev_t c, int initiator, int iters, int relaxed,
                                unsigned long long *ns)
{
    if (threadIdx.x != 0)
        return;
    uint64_t t0 = kccl_globaltimer();
    for (int i = 0; i < iters; i++) {
        if (!initiator)
            kccl_mc_wait(&c);
        if (relaxed)
            kccl_mc_signal_relaxed(&c);
        else
            kccl_mc_signal(&c);
        if (initiator)
            kccl_mc_wait(&c);
    }
    *ns = kccl_globaltimer() - t0;
}

/* LL ping-pong: each lane sends one packet (8 data bytes) per message into the peer's
 * mapping (c.remote, the peer's receive buffer) at byte off, and waits for the peer's packet
 * at the same offset of its own receive buffer (inbox).
 * The flag is the message number (packets there must start zeroed); data = f(message, lane),
 * counted into *bad when a received word is wrong. */
__global__ void ll_pingpong_kernel(kccl_memory_channel_dev_t c, const void *inbox, int initiator,
                                   int iters, int lanes, uint64_t off, unsigned long long *ns,
                                   unsigned long long *bad)
{
    if ((int)threadIdx.x >= lanes)
        return;
    kccl_ll_packet_t *out = (kccl_ll_packet_t *)((char *)c.remote + off) + threadIdx.x;
    const kccl_ll_packet_t *in =
        (const kccl_ll_packet_t *)((const char *)inbox + off) + threadIdx.x;
    unsigned long long wrong = 0;
    uint64_t t0 = kccl_globaltimer();
    for (int i = 1; i <= iters; i++) {
        uint64_t want = (uint64_t)i * 0x9E3779B97F4A7C15ull ^ threadIdx.x;
        if (!initiator)
            wrong += kccl_ll_load(in, (uint32_t)i) != want;
        kccl_ll_store(out, want, (uint32_t)i);
        if (initiator)
            wrong += kccl_ll_load(in, (uint32_t)i) != want;
    }
    uint64_t t = kccl_globaltimer() - t0;
    if (threadIdx.x == 0)
        *ns = t;
    if (wrong)
        atomicAdd(bad, wrong);
}

__global__ void pc_bw_kernel(kccl_port_channel_dev_t c, uint64_t bytes, uint32_t chunk)
{
    if (threadIdx.x != 0)
        return;
    for (uint64_t off = 0; off < bytes; off += chunk) {
        uint32_t n = (uint32_t)(bytes - off < chunk ? bytes - off : chunk);
        kccl_pc_put(&c, off, off, n);
    }
    kccl_pc_flush(&c);
}

__global__ void pc_rate_kernel(kccl_port_channel_dev_t c, int n)
{
    if (threadIdx.x != 0)
        return;
    for (int i = 0; i < n; i++)
        kccl_pc_push(&c, KCCL_TRIGGER_PUT, 0, 0, 0); /* empty put: proxy no-op */
    kccl_pc_flush(&c);
}

static double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

/* Times launch(it) for it in [0, iters) between two events each, skips the first `skip`
 * and leaves the median in *sec (seconds); 1 on a CUDA error. */
template <typename F>
static int time_median(int iters, int skip, cudaEvent_t e0, cudaEvent_t e1, const F &launch,
                       double *sec)
{
    std::vector<double> t;
    for (int it = 0; it < iters; it++) {
        GH_CUDA(cudaEventRecord(e0));
        launch(it);
        GH_CUDA(cudaEventRecord(e1));
        GH_CUDA(cudaEventSynchronize(e1));
        GH_CUDA(cudaGetLastError());
        float ms;
        GH_CUDA(cudaEventElapsedTime(&ms, e0, e1));
        if (it >= skip)
            t.push_back(ms * 1e-3);
    }
    *sec = median(t);
    return 0;
}

static void result(const char *name, double v, const char *unit)
{
    printf("RESULT %s %.3f %s\n", name, v, unit);
    if (json_path != NULL) {
        FILE *f = fopen(json_path, "a");
        if (f != NULL) {
            fprintf(f, "{\"name\":\"%s\",\"value\":%.4f,\"unit\":\"%s\"}\n", name, v, unit);
            fclose(f);
        }
    }
}

#include "bench_sweep.cuh"

static int bench_pair(int rank, int n, const kccl_unique_id_t *id, const kccl_bootstrap_opts_t *o,
                      void *arg)
{
    (void)arg;
    kccl_comm_t comm;
    GH_OK(kccl_comm_init_rank(id, rank, n, o, &comm));
    kccl_bootstrap_t bs = kccl_comm_bootstrap(comm);
    int peer = 1 - rank;
    uint32_t seq = 0;
    if (rank > 1) { /* only ranks 0 and 1 measure; the others wait for them at the end */
        GH_OK(kccl_bootstrap_barrier(bs));
        kccl_comm_destroy(comm);
        return 0;
    }
    const size_t slot = 1ull << 30, slots = 2, total = slot * slots;
    void *sbuf, *rbuf;
    kccl_mem_t smem, rmem;
    kccl_rmem_t peers[2] = {NULL, NULL};
    GH_CUDA(cudaMalloc(&sbuf, total));
    GH_CUDA(cudaMalloc(&rbuf, total));
    fill_pattern<<<1024, 256>>>((uint32_t *)sbuf, total / 4, 0x9E3779B9u * (rank + 1));
    GH_CUDA(cudaGetLastError());
    GH_CUDA(cudaDeviceSynchronize());
    GH_OK(kccl_mem_register(comm, sbuf, total, KCCL_MEM_DEVICE, &smem));
    GH_OK(kccl_mem_register(comm, rbuf, total, KCCL_MEM_DEVICE, &rmem));
    GH_OK(kccl_mem_send(comm, rmem, peer));
    GH_OK(kccl_mem_recv(comm, peer, &peers[peer]));
    kccl_memory_channel_t mc;
    kccl_memory_channel_dev_t mh;
    GH_OK(kccl_memory_channel_create(comm, peer, smem, peers[peer], &mc));
    GH_OK(kccl_memory_channel_device_handle(mc, &mh));
    int dev, sms;
    GH_CUDA(cudaGetDevice(&dev));
    GH_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    cudaEvent_t e0, e1;
    GH_CUDA(cudaEventCreate(&e0));
    GH_CUDA(cudaEventCreate(&e1));

    /* 1. memory-channel put bandwidth, rank 0 -> 1: the bulk (TMA) put by size, then the
     * load/store grid put at 1 GiB */
    GH_CUDA(cudaFuncSetAttribute(bw_put_bulk_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 (int)KCCL_BULK_SMEM));
    GH_OK(pair_sync(bs, peer, &seq));
    if (rank == 0) {
        for (int ldst = 0; ldst < 2; ldst++)
            for (size_t bytes = ldst ? slot : 1 << 20; bytes <= slot; bytes <<= 2) {
                double sec;
                if (time_median(
                        25, 5, e0, e1,
                        [&](int it) {
                            put_launch(ldst, mh, (uint64_t)(it % slots) * slot, bytes, sms);
                        },
                        &sec))
                    return 1;
                char name[64];
                snprintf(name, sizeof(name), "mc_put%s_%zuMiB", ldst ? "_ldst" : "", bytes >> 20);
                result(name, (double)bytes / sec / 1e9, "GB/s");
            }
        /* both shapes move the right bytes: poison, put 1 GiB less 16, compare spots */
        char *pr = (char *)kccl_rmem_mapped_ptr(peers[peer]);
        for (int ldst = 0; ldst < 2; ldst++) {
            GH_CUDA(cudaMemset(pr, 0xEE, slot));
            GH_CUDA(cudaDeviceSynchronize());
            put_launch(ldst, mh, 0, slot - 16, sms);
            GH_CUDA(cudaGetLastError());
            GH_CUDA(cudaDeviceSynchronize());
            std::vector<unsigned char> a(65536), b(65536);
            const uint64_t spots[] = {0, slot / 3 & ~15ull, slot - 65536};
            for (uint64_t at : spots) {
                GH_CUDA(cudaMemcpy(a.data(), pr + at, a.size(), cudaMemcpyDefault));
                GH_CUDA(cudaMemcpy(b.data(), (char *)sbuf + at, b.size(), cudaMemcpyDefault));
                size_t cmp = at == slot - 65536 ? a.size() - 16 : a.size();
                GH_CHECK(memcmp(a.data(), b.data(), cmp) == 0, "mc_put: bytes at %llu differ",
                         (unsigned long long)at);
                if (at == slot - 65536)
                    GH_CHECK(a[a.size() - 1] == 0xEE, "mc_put wrote past its length");
            }
        }
        printf("[rank 0] mc_put data check (bulk and load/store): ok\n");
    }
    GH_OK(pair_sync(bs, peer, &seq));

    /* 2. signal + wait round trip */
    unsigned long long *ns;
    GH_CUDA(cudaMalloc(&ns, sizeof(*ns)));
    const int iters = 100000;
    for (int relaxed = 0; relaxed < 2; relaxed++) {
        for (int warm = 0; warm < 2; warm++) {
            GH_OK(pair_sync(bs, peer, &seq));
            pingpong_kernel<<<1, 32>>>(mh, rank == 0, warm ? iters : 1000, relaxed, ns);
            GH_CUDA(cudaGetLastError());
            GH_CUDA(cudaDeviceSynchronize());
        }
        unsigned long long hns;
        GH_CUDA(cudaMemcpy(&hns, ns, sizeof(hns), cudaMemcpyDeviceToHost));
        if (rank == 0)
            result(relaxed ? "sig_rtt_relaxed" : "sig_rtt", (double)hns / iters / 1e3, "us");
    }
    GH_OK(pair_sync(bs, peer, &seq));

    /* 2b. the same round trip with LL packets: the flag travels inside the data */
    unsigned long long *bad;
    GH_CUDA(cudaMalloc(&bad, sizeof(*bad)));
    const int lane_counts[] = {1, 32};
    for (int lanes : lane_counts) {
        /* a fresh, zeroed packet area per run (flags restart at 1) */
        const uint64_t ll_off = slot - (64u << 10) * (lanes == 1 ? 1 : 2);
        GH_CUDA(cudaMemset((char *)rbuf + ll_off, 0, 64u << 10));
        GH_CUDA(cudaMemset(bad, 0, sizeof(*bad)));
        GH_CUDA(cudaDeviceSynchronize());
        GH_OK(pair_sync(bs, peer, &seq));
        ll_pingpong_kernel<<<1, 32>>>(mh, rbuf, rank == 0, iters, lanes, ll_off, ns, bad);
        GH_CUDA(cudaGetLastError());
        GH_CUDA(cudaDeviceSynchronize());
        unsigned long long hns, hbad;
        GH_CUDA(cudaMemcpy(&hns, ns, sizeof(hns), cudaMemcpyDeviceToHost));
        GH_CUDA(cudaMemcpy(&hbad, bad, sizeof(hbad), cudaMemcpyDeviceToHost));
        GH_CHECK(hbad == 0, "ll ping-pong (%d lanes): %llu wrong words", lanes, hbad);
        if (rank == 0)
            result(lanes == 1 ? "ll_rtt_8B" : "ll_rtt_256B", (double)hns / iters / 1e3, "us");
    }
    GH_CUDA(cudaFree(bad));
    GH_OK(pair_sync(bs, peer, &seq));

    /* 3. port channel through the proxy */
    kccl_port_channel_t pc;
    kccl_port_channel_dev_t ph;
    GH_OK(kccl_port_channel_create(comm, peer, smem, peers[peer], &pc));
    GH_OK(kccl_port_channel_device_handle(pc, &ph));
    GH_OK(pair_sync(bs, peer, &seq));
    if (rank == 0) {
        const uint32_t chunks[] = {1u << 20, 16u << 20, 256u << 20};
        for (uint32_t chunk : chunks) {
            double sec;
            if (time_median(
                    8, 2, e0, e1, [&](int) { pc_bw_kernel<<<1, 32>>>(ph, slot, chunk); }, &sec))
                return 1;
            char name[64];
            snprintf(name, sizeof(name), "pc_put_1GiB_chunk_%uMiB", chunk >> 20);
            result(name, (double)slot / sec / 1e9, "GB/s");
        }
        const int ntrig = 200000;
        std::vector<double> t;
        for (int it = 0; it < 5; it++) {
            GH_CUDA(cudaEventRecord(e0));
            pc_rate_kernel<<<1, 32>>>(ph, ntrig);
            GH_CUDA(cudaEventRecord(e1));
            GH_CUDA(cudaEventSynchronize(e1));
            GH_CUDA(cudaGetLastError());
            float ms;
            GH_CUDA(cudaEventElapsedTime(&ms, e0, e1));
            t.push_back(ms * 1e-3);
        }
        result("pc_trigger_rate", ntrig / median(t) / 1e6, "Mtrig/s");
    }
    GH_OK(pair_sync(bs, peer, &seq));
    kccl_port_channel_destroy(pc);
    kccl_memory_channel_destroy(mc);
    kccl_rmem_release(peers[peer]);
    kccl_mem_deregister(smem);
    kccl_mem_deregister(rmem);
    cudaFree(sbuf);
    cudaFree(rbuf);
    cudaFree(ns);
    GH_OK(kccl_bootstrap_barrier(bs)); /* every rank, the idle ones included */
    kccl_comm_destroy(comm);
    return 0;
}

/* Communicator set-up time on n GPUs: every rank times its init; rank 0 reports the max. */
static int bench_init(int rank, int n, const kccl_unique_id_t *id, const kccl_bootstrap_opts_t *o,
                      void *arg)
{
    (void)arg;
    kccl_comm_t comm;
    double t0 = gh_now();
    GH_OK(kccl_comm_init_rank(id, rank, n, o, &comm));
    double mine = (gh_now() - t0) * 1e3;
    /* [total, bootstrap part] per rank; rank 0 prints the slowest rank's pair */
    std::vector<double> all(2 * (size_t)n);
    all[2 * rank] = mine;
    all[2 * rank + 1] = kccl_comm_bootstrap_seconds(comm) * 1e3;
    GH_OK(kccl_bootstrap_all_gather(kccl_comm_bootstrap(comm), all.data(), 2 * sizeof(double)));
    if (rank == 0) {
        int w = 0;
        for (int r = 1; r < n; r++)
            if (all[2 * r] > all[2 * w])
                w = r;
        printf("INIT %.3f %.3f\n", all[2 * w], all[2 * w + 1]);
    }
    kccl_comm_destroy(comm);
    return 0;
}

int main(int argc, char **argv)
{
    int n = 2, sweep = 0, init_only = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
            json_path = argv[++i];
        else if (strcmp(argv[i], "--sweep") == 0)
            sweep = 1;
        else if (strcmp(argv[i], "--init-only") == 0)
            init_only = 1;
        else
            n = atoi(argv[i]);
    }
    if (n < 2) {
        fprintf(stderr, "usage: %s [nranks >= 2] [--json FILE] [--sweep | --init-only]\n", argv[0]);
        return 2;
    }
    setenv("NCCL_NVLS_ENABLE", "0", 1);
    if (sweep)
        return gh_run(n, 600, bench_sweep, NULL);
    int rc = init_only ? 0 : gh_run(n, 600, bench_pair, NULL);
    if (rc != 0)
        return rc;
    /* init timing: 5 groups, median of the slowest rank (printed by the children as INIT). */
    std::vector<double> inits, boots;
    for (int rep = 0; rep < 5; rep++) {
        char tmpl[] = "/tmp/kccl-bench-init-XXXXXX";
        int fd = mkstemp(tmpl);
        if (fd < 0)
            return 1;
        fflush(stdout);
        int saved = dup(1);
        dup2(fd, 1);
        rc = gh_run(n, 120, bench_init, NULL);
        fflush(stdout);
        dup2(saved, 1);
        close(saved);
        FILE *f = fdopen(fd, "r");
        rewind(f);
        double v, b;
        char line[256];
        while (fgets(line, sizeof(line), f))
            if (sscanf(line, "INIT %lf %lf", &v, &b) == 2) {
                inits.push_back(v);
                boots.push_back(b);
            }
        fclose(f);
        unlink(tmpl);
        if (rc != 0)
            return rc;
    }
    if (!inits.empty()) {
        char name[64];
        snprintf(name, sizeof(name), "init_%dgpu", n);
        result(name, median(inits), "ms");
        snprintf(name, sizeof(name), "init_%dgpu_bootstrap_part", n);
        result(name, median(boots), "ms");
    }
    return 0;
}
