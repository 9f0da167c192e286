/*
 * test_gpu_transport.cu - CUDA IPC links, memory channels and port channels
 * between processes, one GPU each, random data checked byte for byte.
 *
 * Usage: test_gpu_transport [nranks]   (default 2; exits 77 = skipped when
 * there is no GPU or fewer GPUs than ranks)
 *
 * Per rank, against every peer:
 *   1. every link is cuda_ipc (auto selection on one node);
 *   2. memory channel put + signal/wait from the GPU into the peer's
 *      cudaMalloc buffer (legacy IPC handles), then get (read the peer's),
 *      then the bulk (TMA) put in pieces with ragged ends;
 *   3. the same into cuMem buffers from kccl_mem_alloc (POSIX fds passed
 *      over the node's Unix socket);
 *   4. port channel: one GPU thread pushes put+signal triggers; this rank's
 *      proxy copies through the cuda_ipc link; the peer's GPU waits;
 *   5. host-initiated kccl_link_put/flush over cuda_ipc;
 *   6. with KCCL_TRANSPORT=tcp in a second group: device buffers staged
 *      through pinned memory by the TCP transport.
 */
#include <vector>

#include "gpu_harness.h"
#include "kccl/kccl_channel.cuh"

#define SLICE (4u << 20)

__global__ void mc_put_kernel(kccl_memory_channel_dev_t *chs, int nch, uint64_t dst_off,
                              uint64_t bytes)
{
    /* block b serves channel b % nch; blocks of one channel split its bytes */
    int per = gridDim.x / nch, ch = blockIdx.x / per, part = blockIdx.x % per;
    uint64_t chunk = (bytes + per - 1) / per, off = (uint64_t)part * chunk;
    if (ch >= nch || off >= bytes)
        return;
    uint64_t n = bytes - off < chunk ? bytes - off : chunk;
    kccl_mc_put(&chs[ch], dst_off + off, off, n, threadIdx.x, blockDim.x);
}

/* Bulk (TMA) put of bytes [lo, hi) of the slice through channel ch; whole grid. */
__global__ void mc_put_bulk_kernel(kccl_memory_channel_dev_t *chs, int ch, uint64_t dst_off,
                                   uint64_t lo, uint64_t hi)
{
    extern __shared__ __align__(128) unsigned char bulk_smem[];
    kccl_mc_put_bulk(&chs[ch], dst_off + lo, lo, hi - lo, bulk_smem);
}

__global__ void mc_signal_all(kccl_memory_channel_dev_t *chs, int nch)
{
    if (threadIdx.x < nch)
        kccl_mc_signal(&chs[threadIdx.x]);
}

__global__ void mc_wait_all(kccl_memory_channel_dev_t *chs, int nch)
{
    if (threadIdx.x < nch)
        kccl_mc_wait(&chs[threadIdx.x]);
}

__global__ void mc_get_kernel(kccl_memory_channel_dev_t *chs, int nch, uint64_t bytes)
{
    int per = gridDim.x / nch, ch = blockIdx.x / per, part = blockIdx.x % per;
    uint64_t chunk = (bytes + per - 1) / per, off = (uint64_t)part * chunk;
    if (ch >= nch || off >= bytes)
        return;
    uint64_t n = bytes - off < chunk ? bytes - off : chunk;
    kccl_mc_get(&chs[ch], off, off, n, threadIdx.x, blockDim.x);
}

__global__ void pc_push_kernel(kccl_port_channel_dev_t *chs, int nch, uint64_t dst_off,
                               uint32_t bytes, uint32_t pieces)
{
    if (threadIdx.x != 0 || blockIdx.x >= (unsigned)nch)
        return;
    const kccl_port_channel_dev_t *c = &chs[blockIdx.x];
    uint32_t piece = bytes / pieces;
    for (uint32_t i = 0; i < pieces; i++) {
        uint32_t n = i + 1 == pieces ? bytes - i * piece : piece;
        if (i + 1 == pieces)
            kccl_pc_put_signal(c, dst_off + (uint64_t)i * piece, (uint64_t)i * piece, n);
        else
            kccl_pc_put(c, dst_off + (uint64_t)i * piece, (uint64_t)i * piece, n);
    }
    kccl_pc_flush(c);
}

__global__ void pc_wait_kernel(kccl_port_channel_dev_t *chs, int nch)
{
    if (threadIdx.x == 0 && blockIdx.x < (unsigned)nch)
        kccl_pc_wait(&chs[blockIdx.x]);
}

/*
 * Loads every kernel of this file into the context before the first launch. CUDA loads
 * modules lazily by default (CUDA_MODULE_LOADING=LAZY since 12.2), and loading a kernel may
 * wait for the kernels already running in the context: port_channels() launches a kernel that
 * spins until the peer's proxy signals (pc_wait_kernel) and then, on another stream, the one
 * that pushes this rank's triggers (pc_push_kernel); loaded lazily, the second launch waits
 * for the first kernel, which waits for the peer, which waits the same way: every rank's wait
 * timed out with "want 1, have 0". KCCL_TEST_NO_PRELOAD=1 skips this (to show the cause with
 * CUDA_MODULE_LOADING=EAGER instead).
 */
static int preload_kernels(void)
{
    if (getenv("KCCL_TEST_NO_PRELOAD") != NULL)
        return 0;
    cudaFuncAttributes a;
    GH_CUDA(cudaFuncGetAttributes(&a, mc_put_kernel));
    GH_CUDA(cudaFuncGetAttributes(&a, mc_put_bulk_kernel));
    GH_CUDA(cudaFuncGetAttributes(&a, mc_signal_all));
    GH_CUDA(cudaFuncGetAttributes(&a, mc_wait_all));
    GH_CUDA(cudaFuncGetAttributes(&a, mc_get_kernel));
    GH_CUDA(cudaFuncGetAttributes(&a, pc_push_kernel));
    GH_CUDA(cudaFuncGetAttributes(&a, pc_wait_kernel));
    return 0;
}

/* Checks the peer slices of a receive buffer: peer p wrote seed(p, round) at p * SLICE. */
static int check_slices(const void *dbuf, int rank, int n, int round, const char *what)
{
    std::vector<unsigned char> got((size_t)n * SLICE), want(SLICE);
    GH_CUDA(cudaMemcpy(got.data(), dbuf, got.size(), cudaMemcpyDeviceToHost));
    for (int p = 0; p < n; p++) {
        if (p == rank)
            continue;
        gh_fill(want.data(), SLICE, (uint64_t)p * 977 + (uint64_t)round);
        const unsigned char *g = got.data() + (size_t)p * SLICE;
        for (size_t i = 0; i < SLICE; i++)
            GH_CHECK(g[i] == want[i], "%s: byte %zu of rank %d's slice: got %u want %u", what, i, p,
                     g[i], want[i]);
    }
    return 0;
}

typedef struct {
    kccl_comm_t comm;
    int rank, n;
    kccl_mem_t send, recv;
    std::vector<kccl_rmem_t> rsend, rrecv;
} bufs_t;

static int make_bufs(bufs_t *b, int alloc_kind_cumem)
{
    size_t bytes = (size_t)b->n * SLICE;
    if (alloc_kind_cumem) {
        GH_OK(kccl_mem_alloc(b->comm, bytes, KCCL_MEM_DEVICE, &b->send));
        GH_OK(kccl_mem_alloc(b->comm, bytes, KCCL_MEM_DEVICE, &b->recv));
    } else {
        void *s, *r;
        GH_CUDA(cudaMalloc(&s, bytes));
        GH_CUDA(cudaMalloc(&r, bytes));
        GH_OK(kccl_mem_register(b->comm, s, bytes, KCCL_MEM_DEVICE, &b->send));
        GH_OK(kccl_mem_register(b->comm, r, bytes, KCCL_MEM_DEVICE, &b->recv));
    }
    b->rsend.assign(b->n, NULL);
    b->rrecv.assign(b->n, NULL);
    GH_OK(kccl_mem_exchange(b->comm, b->send, b->rsend.data()));
    GH_OK(kccl_mem_exchange(b->comm, b->recv, b->rrecv.data()));
    return 0;
}

static void free_bufs(bufs_t *b, int owned_by_kccl)
{
    for (int p = 0; p < b->n; p++) {
        kccl_rmem_release(b->rsend[p]);
        kccl_rmem_release(b->rrecv[p]);
    }
    void *s = kccl_mem_ptr(b->send), *r = kccl_mem_ptr(b->recv);
    kccl_mem_deregister(b->send);
    kccl_mem_deregister(b->recv);
    if (!owned_by_kccl) {
        cudaFree(s);
        cudaFree(r);
    }
}

/* Fills this rank's send buffer: at offset 0, SLICE bytes of seed(rank, round). */
static int fill_send(bufs_t *b, int round)
{
    std::vector<unsigned char> h(SLICE);
    gh_fill(h.data(), SLICE, (uint64_t)b->rank * 977 + (uint64_t)round);
    GH_CUDA(cudaMemcpy(kccl_mem_ptr(b->send), h.data(), SLICE, cudaMemcpyHostToDevice));
    GH_CUDA(cudaMemset(kccl_mem_ptr(b->recv), 0xEE, (size_t)b->n * SLICE)); /* poison */
    return 0;
}

/* After put kernels into every peer: wait for them, signal every peer and wait for every
 * peer's signal (its puts into this rank have landed). */
static int puts_landed(kccl_memory_channel_dev_t *d, int nch)
{
    GH_CUDA(cudaGetLastError());
    GH_CUDA(cudaDeviceSynchronize());
    mc_signal_all<<<1, 32>>>(d, nch);
    mc_wait_all<<<1, 32>>>(d, nch);
    GH_CUDA(cudaGetLastError());
    GH_CUDA(cudaDeviceSynchronize());
    return 0;
}

static int memory_channels(bufs_t *b, int round, const char *what)
{
    int n = b->n, rank = b->rank, nch = n - 1;
    std::vector<kccl_memory_channel_t> chs;
    std::vector<kccl_memory_channel_dev_t> dh(nch);
    for (int p = 0, i = 0; p < n; p++) { /* pairwise, in increasing peer order */
        if (p == rank)
            continue;
        kccl_memory_channel_t ch;
        GH_OK(kccl_memory_channel_create(b->comm, p, b->send, b->rrecv[p], &ch));
        GH_OK(kccl_memory_channel_device_handle(ch, &dh[i++]));
        chs.push_back(ch);
    }
    kccl_memory_channel_dev_t *d;
    GH_CUDA(cudaMalloc(&d, sizeof(*d) * nch));
    GH_CUDA(cudaMemcpy(d, dh.data(), sizeof(*d) * nch, cudaMemcpyHostToDevice));
    if (fill_send(b, round))
        return 1;
    GH_OK(kccl_bootstrap_barrier(kccl_comm_bootstrap(b->comm)));
    mc_put_kernel<<<nch * 16, 512>>>(d, nch, (uint64_t)rank * SLICE, SLICE);
    if (puts_landed(d, nch) || check_slices(kccl_mem_ptr(b->recv), rank, n, round, what))
        return 1;
    /* get: read each peer's send slice (seed of the peer) into this rank's receive buffer at
     * the peer's slot, with the channel's local side pointed at that slot; poisoned first so
     * the check cannot pass on what the puts left. */
    GH_CUDA(cudaMemset(kccl_mem_ptr(b->recv), 0xEE, (size_t)n * SLICE));
    GH_CUDA(cudaDeviceSynchronize());
    GH_OK(kccl_bootstrap_barrier(kccl_comm_bootstrap(b->comm)));
    for (int i = 0; i < nch; i++) {
        int p = i < rank ? i : i + 1;
        kccl_memory_channel_dev_t one = dh[i];
        one.remote = kccl_rmem_mapped_ptr(b->rsend[p]);
        one.local = (char *)kccl_mem_ptr(b->recv) + (size_t)p * SLICE;
        GH_CUDA(cudaMemcpy(d + i, &one, sizeof(one), cudaMemcpyHostToDevice));
    }
    mc_get_kernel<<<nch * 16, 512>>>(d, nch, SLICE);
    GH_CUDA(cudaGetLastError());
    GH_CUDA(cudaDeviceSynchronize());
    if (check_slices(kccl_mem_ptr(b->recv), rank, n, round, "get"))
        return 1;
    GH_OK(kccl_bootstrap_barrier(kccl_comm_bootstrap(b->comm)));
    /* bulk put (TMA through shared memory): the slice in three pieces whose ends are not
     * 16-byte aligned (a piece too small for the TMA, ragged heads and tails) */
    for (int i = 0; i < nch; i++)
        GH_CUDA(cudaMemcpy(d + i, &dh[i], sizeof(dh[i]), cudaMemcpyHostToDevice));
    GH_CUDA(cudaMemset(kccl_mem_ptr(b->recv), 0xEE, (size_t)n * SLICE));
    GH_CUDA(cudaFuncSetAttribute(mc_put_bulk_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 (int)KCCL_BULK_SMEM));
    GH_CUDA(cudaDeviceSynchronize());
    GH_OK(kccl_bootstrap_barrier(kccl_comm_bootstrap(b->comm)));
    const uint64_t cut[] = {0, 3, SLICE / 2 + 7, SLICE};
    for (int i = 0; i < nch; i++)
        for (int k = 0; k < 3; k++)
            mc_put_bulk_kernel<<<16, 128, KCCL_BULK_SMEM>>>(d, i, (uint64_t)rank * SLICE, cut[k],
                                                            cut[k + 1]);
    if (puts_landed(d, nch) || check_slices(kccl_mem_ptr(b->recv), rank, n, round, "bulk put"))
        return 1;
    GH_OK(kccl_bootstrap_barrier(kccl_comm_bootstrap(b->comm)));
    for (auto ch : chs)
        kccl_memory_channel_destroy(ch);
    cudaFree(d);
    printf("[rank %d] PASS memory channel put/signal/wait/get/bulk put (%s), %d peers x %u bytes\n",
           rank, what, nch, SLICE);
    return 0;
}

static int port_channels(bufs_t *b, int round)
{
    int n = b->n, rank = b->rank, nch = n - 1;
    std::vector<kccl_port_channel_t> chs;
    std::vector<kccl_port_channel_dev_t> dh(nch);
    for (int p = 0, i = 0; p < n; p++) {
        if (p == rank)
            continue;
        kccl_port_channel_t ch;
        GH_OK(kccl_port_channel_create(b->comm, p, b->send, b->rrecv[p], &ch));
        GH_OK(kccl_port_channel_device_handle(ch, &dh[i++]));
        chs.push_back(ch);
    }
    kccl_port_channel_dev_t *d;
    GH_CUDA(cudaMalloc(&d, sizeof(*d) * nch));
    GH_CUDA(cudaMemcpy(d, dh.data(), sizeof(*d) * nch, cudaMemcpyHostToDevice));
    if (fill_send(b, round))
        return 1;
    GH_OK(kccl_bootstrap_barrier(kccl_comm_bootstrap(b->comm)));
    cudaStream_t s1, s2;
    GH_CUDA(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking));
    GH_CUDA(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking));
    pc_wait_kernel<<<nch, 32, 0, s2>>>(d, nch);
    pc_push_kernel<<<nch, 32, 0, s1>>>(d, nch, (uint64_t)rank * SLICE, SLICE, 7);
    GH_CUDA(cudaGetLastError());
    GH_CUDA(cudaStreamSynchronize(s1));
    GH_CUDA(cudaStreamSynchronize(s2));
    if (check_slices(kccl_mem_ptr(b->recv), rank, n, round, "port channel"))
        return 1;
    GH_OK(kccl_bootstrap_barrier(kccl_comm_bootstrap(b->comm)));
    for (auto ch : chs)
        kccl_port_channel_destroy(ch);
    cudaFree(d);
    cudaStreamDestroy(s1);
    cudaStreamDestroy(s2);
    printf("[rank %d] PASS port channel put/signal/flush/wait through the proxy, %d peers\n", rank,
           nch);
    return 0;
}

static int host_puts(bufs_t *b, int round, const char *what)
{
    if (fill_send(b, round))
        return 1;
    GH_OK(kccl_bootstrap_barrier(kccl_comm_bootstrap(b->comm)));
    for (int p = 0; p < b->n; p++) {
        kccl_link_t l = kccl_comm_link(b->comm, p);
        if (l == NULL)
            continue;
        GH_OK(kccl_link_put(l, b->rrecv[p], (uint64_t)b->rank * SLICE, b->send, 0, SLICE));
        GH_OK(kccl_link_flush(l, -1));
    }
    GH_OK(kccl_bootstrap_barrier(kccl_comm_bootstrap(b->comm)));
    if (check_slices(kccl_mem_ptr(b->recv), b->rank, b->n, round, what))
        return 1;
    GH_OK(kccl_bootstrap_barrier(kccl_comm_bootstrap(b->comm)));
    printf("[rank %d] PASS host-initiated put/flush (%s)\n", b->rank, what);
    return 0;
}

static int rank_main(int rank, int n, const kccl_unique_id_t *id, const kccl_bootstrap_opts_t *o,
                     void *arg)
{
    (void)arg;
    bufs_t b;
    b.rank = rank;
    b.n = n;
    if (preload_kernels())
        return 1;
    double t0 = gh_now();
    GH_OK(kccl_comm_init_rank(id, rank, n, o, &b.comm));
    printf("[rank %d] communicator ready in %.1f ms\n", rank, (gh_now() - t0) * 1e3);
    for (int p = 0; p < n; p++)
        if (p != rank)
            GH_CHECK(strcmp(kccl_link_transport(kccl_comm_link(b.comm, p)), "cuda_ipc") == 0,
                     "link to %d is %s", p, kccl_link_transport(kccl_comm_link(b.comm, p)));
    if (make_bufs(&b, 0) || memory_channels(&b, 1, "cudaMalloc, legacy IPC") ||
        port_channels(&b, 2) || host_puts(&b, 3, "cuda_ipc"))
        return 1;
    free_bufs(&b, 0);
    if (make_bufs(&b, 1) || memory_channels(&b, 4, "cuMem, fd passing"))
        return 1;
    free_bufs(&b, 1);
    kccl_comm_destroy(b.comm);
    return 0;
}

static int rank_main_tcp(int rank, int n, const kccl_unique_id_t *id,
                         const kccl_bootstrap_opts_t *o, void *arg)
{
    (void)arg;
    bufs_t b;
    b.rank = rank;
    b.n = n;
    setenv("KCCL_TRANSPORT", "tcp", 1);
    if (preload_kernels())
        return 1;
    GH_OK(kccl_comm_init_rank(id, rank, n, o, &b.comm));
    if (make_bufs(&b, 0) || host_puts(&b, 5, "tcp, device memory staged") || port_channels(&b, 6))
        return 1;
    free_bufs(&b, 0);
    kccl_comm_destroy(b.comm);
    return 0;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2;
    if (n < 2 || n > 64) {
        fprintf(stderr, "usage: %s [nranks >= 2]\n", argv[0]);
        return 2;
    }
    setenv("NCCL_NVLS_ENABLE", "0", 1);
    int rc = gh_run(n, 300, rank_main, NULL);
    if (rc == 0)
        rc = gh_run(n, 300, rank_main_tcp, NULL);
    printf("test_gpu_transport %d ranks: %s\n", n,
           rc == 0         ? "PASSED"
           : rc == GH_SKIP ? "SKIPPED"
                           : "FAILED");
    return rc;
}
