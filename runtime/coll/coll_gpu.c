/*
 * coll_gpu.c - the GPU path of the collectives (device buffers): the
 * per-communicator state, made on the first device call (collective, like the
 * call), the choice of algorithm, grid and chunks per call, and the launches
 * of the kernels in kernels/src/coll/coll_kernels.cu.
 *
 * State: one scratch buffer per rank (kccl_mem_alloc, device memory) that
 * every peer maps (kccl_mem_exchange over the cuda_ipc links): barrier flags
 * and LL packet slots, layout in coll_gpu.h; the per-block step counters in
 * device memory (advanced by the kernels themselves, so CUDA-graph replays
 * stay in step). Every rank must share one node (CUDA IPC): otherwise device
 * buffers are refused with KCCL_ERR_UNSUPPORTED.
 *
 * Algorithms (coll_gpu.h): LL for small messages (no registration, no host
 * synchronisation: what CUDA graphs and eager launches both want), LL2 for
 * mid-size all-reduce on more than 2 ranks, ZC (zero-copy over peers' user
 * buffers, coll_gpu_reg.c) for large ones. Buffers that cannot be shared fall
 * back to LL in chunks of the scratch slots. Overrides: KCCL_COLL_ALGO
 * (auto|ll|ll2|zc|ce|cep), KCCL_COLL_LL_MAX, KCCL_COLL_LL2_MAX, KCCL_COLL_CE_MIN
 * and KCCL_COLL_CEP_MIN (bytes), KCCL_COLL_ZC_BLOCKS (zero-copy grid).
 * Host work during CUDA-graph capture runs with the capture mode relaxed for
 * this thread, so allocations and IPC calls of the first call are allowed.
 */
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coll/coll.h"
#include "coll/coll_gpu_state.h"
#include "comm/comm.h"
#include "core/config.h"
#include "core/error.h"
#include "kccl/kccl_channel.h"
#include "transport/transport.h"

/* KCCL_COLL_ALGO values, by kccl_cg_algo_t ("-": internal ids) */
static const char *const algo_names[] = {"auto", "ll", "ll2", "zc", "ce", "-", "cep"};

static kccl_status_t cuda_fail(kccl_comm_t comm, const char *what, int err)
{
    KCCL_FAIL(COLL, KCCL_ERR_CUDA, "rank %d: %s: %s", comm->rank, what,
              cudaGetErrorString((cudaError_t)err));
}

static kccl_status_t read_config(kccl_cg_state_t *s)
{
    const char *algo = kccl_config_str(KCCL_CFG_COLL_ALGO);
    s->algo = -1;
    for (int i = 0; i < (int)(sizeof(algo_names) / sizeof(algo_names[0])); i++)
        if (strcmp(algo, algo_names[i]) == 0 && algo[0] != '-')
            s->algo = i;
    if (s->algo < 0)
        KCCL_FAIL(COLL, KCCL_ERR_INVALID_ARG,
                  "KCCL_COLL_ALGO=%s is not one of auto, ll, ll2, zc, ce, cep", algo);
    s->ll_max = kccl_config_int_or_default(KCCL_CFG_COLL_LL_MAX);
    s->ll2_max = kccl_config_int_or_default(KCCL_CFG_COLL_LL2_MAX);
    s->ce_min = kccl_config_int_or_default(KCCL_CFG_COLL_CE_MIN);
    s->cep_min = kccl_config_int_or_default(KCCL_CFG_COLL_CEP_MIN);
    s->zc_blocks = kccl_config_int_or_default(KCCL_CFG_COLL_ZC_BLOCKS);
    return KCCL_OK;
}

static kccl_status_t check_node(kccl_comm_t comm)
{
    if (comm->size > KCCL_CG_MAX_RANKS)
        KCCL_FAIL(COLL, KCCL_ERR_UNSUPPORTED,
                  "device-buffer collectives support up to %d ranks (this group has %d)",
                  KCCL_CG_MAX_RANKS, comm->size);
    for (int p = 0; p < comm->size; p++) {
        kccl_link_t l = kccl_comm_link(comm, p);
        if (p == comm->rank)
            continue;
        if (l == NULL || strcmp(kccl_link_transport(l), "cuda_ipc") != 0 ||
            !(kccl_link_caps(l) & KCCL_LINK_CAP_PEER_MAP))
            KCCL_FAIL(COLL, KCCL_ERR_UNSUPPORTED,
                      "rank %d: device-buffer collectives need every rank on one node with "
                      "CUDA IPC, but the link to rank %d is %s; use host buffers across nodes",
                      comm->rank, p, l ? kccl_link_transport(l) : "missing");
    }
    return KCCL_OK;
}

/* Collective: every rank's current GPU must be the one its communicator was created with
 * (the links, the scratch buffer and the IPC mappings belong to that GPU). All ranks learn
 * of any mismatch at once, so none is left waiting in the set-up exchange. */
static kccl_status_t check_device(kccl_comm_t comm, int cur)
{
    int dev = kccl_transport_state(comm)->env.device;
    int ok[KCCL_CG_MAX_RANKS] = {0};
    ok[comm->rank] = cur == dev ? 1 : -1 - dev;
    KCCL_CHECK(kccl_bootstrap_all_gather(comm->bs, ok, sizeof(int)));
    for (int r = 0; r < comm->size; r++)
        if (ok[r] != 1)
            KCCL_FAIL(COLL, KCCL_ERR_INVALID_ARG,
                      "rank %d: device buffers on a GPU other than the one current when the "
                      "communicator was created (rank %d; this rank: GPU %d now, GPU %d at "
                      "init); call cudaSetDevice() before kccl_comm_init_*",
                      comm->rank, r, cur, dev);
    return KCCL_OK;
}

static kccl_status_t state_setup(kccl_comm_t comm, kccl_cg_state_t *s)
{
    int err;
    kccl_rmem_t peers[KCCL_CG_MAX_RANKS] = {0};
    KCCL_CHECK(check_node(comm));
    if ((err = cudaGetDevice(&s->dev)) != 0 ||
        (err = cudaDeviceGetAttribute(&s->nsm, cudaDevAttrMultiProcessorCount, s->dev)) != 0)
        return cuda_fail(comm, "device properties", err);
    KCCL_CHECK(check_device(comm, s->dev));
    if ((err = kccl_cg_preload()) != 0)
        return cuda_fail(comm, "loading the collective kernels", err);
    if ((err = cudaMalloc((void **)&s->epoch, KCCL_CG_MAX_BLOCKS * sizeof(uint64_t))) != 0 ||
        (err = cudaMemset(s->epoch, 0, KCCL_CG_MAX_BLOCKS * sizeof(uint64_t))) != 0)
        return cuda_fail(comm, "step counters", err);
    if ((err = cudaStreamCreateWithFlags((cudaStream_t *)&s->side, cudaStreamNonBlocking)) != 0)
        return cuda_fail(comm, "creating the copy-engine stream", err);
    for (int i = 0; i < KCCL_CG_EVENTS; i++)
        if ((err = cudaEventCreateWithFlags((cudaEvent_t *)&s->events[i],
                                            cudaEventDisableTiming)) != 0)
            return cuda_fail(comm, "creating the copy-engine events", err);
    KCCL_CHECK(kccl_mem_alloc(comm, KCCL_CG_SCRATCH_BYTES, KCCL_MEM_DEVICE, &s->scratch));
    if ((err = cudaMemset(kccl_mem_ptr(s->scratch), 0, KCCL_CG_SCRATCH_BYTES)) != 0 ||
        (err = cudaDeviceSynchronize()) != 0)
        return cuda_fail(comm, "clearing the scratch buffer", err);
    /* no peer may write into our scratch before it is cleared: the exchange is the barrier */
    KCCL_CHECK(kccl_mem_exchange(comm, s->scratch, peers));
    for (int r = 0; r < s->n; r++) {
        s->peer_rmem[r] = peers[r];
        s->peer_scratch[r] = r == s->me ? kccl_mem_ptr(s->scratch) : kccl_rmem_mapped_ptr(peers[r]);
        if (s->peer_scratch[r] == NULL)
            KCCL_FAIL(COLL, KCCL_ERR_CUDA, "rank %d: rank %d's scratch buffer is not mapped here",
                      s->me, r);
    }
    /* the smallest GPU sets the zero-copy grid, which must be the same on every rank */
    int sms[KCCL_CG_MAX_RANKS] = {0};
    sms[s->me] = s->nsm;
    KCCL_CHECK(kccl_bootstrap_all_gather(comm->bs, sms, sizeof(int)));
    for (int r = 0; r < s->n; r++)
        s->nsm = sms[r] < s->nsm ? sms[r] : s->nsm;
    kccl_log_info(COLL, "rank %d: GPU collectives ready (%d ranks, %d SMs, %zu MiB scratch)", s->me,
                  s->n, s->nsm, (size_t)(KCCL_CG_SCRATCH_BYTES >> 20));
    return KCCL_OK;
}

static void state_free(kccl_cg_state_t *s)
{
    kccl_cg_buffers_free(s);
    for (int r = 0; r < KCCL_CG_MAX_RANKS; r++)
        if (s->peer_rmem[r] != NULL)
            kccl_rmem_release(s->peer_rmem[r]);
    if (s->scratch != NULL)
        kccl_mem_deregister(s->scratch);
    if (s->epoch != NULL)
        (void)cudaFree(s->epoch);
    for (int i = 0; i < KCCL_CG_EVENTS; i++)
        if (s->events[i] != NULL)
            (void)cudaEventDestroy((cudaEvent_t)s->events[i]);
    if (s->side != NULL)
        (void)cudaStreamDestroy((cudaStream_t)s->side);
    if (s->pull != NULL)
        (void)cudaFree(s->pull);
    free(s);
}

static kccl_status_t state_get(kccl_comm_t comm, kccl_cg_state_t **out)
{
    if (comm->coll_gpu != NULL) {
        *out = comm->coll_gpu;
        return KCCL_OK;
    }
    kccl_cg_state_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        KCCL_FAIL(COLL, KCCL_ERR_NO_MEMORY, "rank %d: out of memory for the GPU collectives",
                  comm->rank);
    s->comm = comm;
    s->n = comm->size;
    s->me = comm->rank;
    kccl_status_t st = state_setup(comm, s);
    if (st != KCCL_OK) {
        state_free(s);
        return st;
    }
    comm->coll_gpu = s;
    *out = s;
    return KCCL_OK;
}

/* The algorithm for a call of `bytes` (the nccl-tests size: the larger buffer). */
static int choose(const kccl_cg_state_t *s, const kccl_coll_args_t *a, size_t bytes)
{
    int ce_ok = a->kind == KCCL_COLL_ALL_REDUCE || a->kind == KCCL_COLL_ALL_GATHER;
    if (s->algo != KCCL_CG_AUTO) {
        if (s->algo == KCCL_CG_LL2 && a->kind != KCCL_COLL_ALL_REDUCE)
            return KCCL_CG_LL;
        if ((s->algo == KCCL_CG_CE && !ce_ok) ||
            (s->algo == KCCL_CG_CEP && a->kind != KCCL_COLL_ALL_REDUCE))
            return ce_ok ? KCCL_CG_CE : KCCL_CG_ZC;
        return s->algo;
    }
    /* Built-in table from the H100 runs (bench/NOTES.md, "Collectives (GPU)"). */
    int copy_only = a->kind == KCCL_COLL_ALL_GATHER || a->kind == KCCL_COLL_BROADCAST;
    /* 2 ranks: x2 runs; more: the 4-rank sweep of test_gpu_coll_bench --sweep --factor 2
     * (every algorithm at every size, NCCL beside it; 3 and 5-8 ranks are unmeasured). */
    size_t ll_max = (size_t)(copy_only ? 1024 : s->n <= 2 ? 256 : 128) << 10;
    size_t ll2_max = s->n <= 2 ? 0 : ((size_t)256 << 10);
    if (s->ll_max >= 0)
        ll_max = (size_t)s->ll_max;
    if (s->ll2_max >= 0)
        ll2_max = (size_t)s->ll2_max;
    if (bytes <= ll_max)
        return KCCL_CG_LL;
    if (a->kind == KCCL_COLL_ALL_REDUCE && bytes <= ll2_max)
        return KCCL_CG_LL2;
    /* copy engine from: all-reduce 128 MiB (2 ranks) / 64 MiB (more); all-gather 64 / 128 */
    int ag = a->kind == KCCL_COLL_ALL_GATHER;
    size_t ce_min = (size_t)((s->n <= 2) == ag ? 64 : 128) << 20;
    size_t cep_min = SIZE_MAX; /* never, unless KCCL_COLL_CEP_MIN says so */
    if (s->ce_min >= 0)
        ce_min = (size_t)s->ce_min;
    if (s->cep_min >= 0)
        cep_min = (size_t)s->cep_min;
    if (a->kind == KCCL_COLL_ALL_REDUCE && bytes >= cep_min)
        return KCCL_CG_CEP;
    return ce_ok && bytes >= ce_min ? KCCL_CG_CE : KCCL_CG_ZC;
}

static void fill_common(const kccl_cg_state_t *s, const kccl_coll_args_t *a, kccl_cg_launch_t *l)
{
    memset(l, 0, sizeof(*l));
    l->kind = (int)a->kind;
    l->dtype = (int)a->dtype;
    l->op = (int)a->op;
    l->rank = s->me;
    l->nranks = s->n;
    l->root = a->root;
    l->scratch = s->peer_scratch[s->me];
    for (int r = 0; r < s->n; r++)
        l->peer_scratch[r] = s->peer_scratch[r];
    l->epoch = s->epoch;
    l->stream = a->stream;
}

static int clampi(size_t v, int lo, int hi)
{
    return v < (size_t)lo ? lo : (v > (size_t)hi ? hi : (int)v);
}

/* LL grid: one 8-byte word per thread over as many SMs as possible (up to 64 blocks of at
 * least 64 threads; each SM's share of the NVLink store rate is what 64 KiB on 4 ranks
 * waits for), grid-stride beyond 64 x 512 words. */
static void ll_grid(kccl_cg_launch_t *l, size_t words)
{
    l->blocks = clampi((words + 63) / 64, 1, KCCL_CG_LL_MAX_BLOCKS);
    size_t per = (words + (size_t)l->blocks - 1) / (size_t)l->blocks;
    l->threads = clampi((per + 31) / 32 * 32, 64, 512);
}

/* LL and LL2 through the scratch slots, in chunks of what one slot carries. */
static kccl_status_t run_ll(kccl_cg_state_t *s, const kccl_coll_args_t *a, int algo)
{
    const size_t es = kccl_dtype_size(a->dtype), per_word = 8 / es;
    const size_t slot = KCCL_CG_LL_PAYLOAD / es;
    const size_t chunk = algo == KCCL_CG_LL2 ? slot * (size_t)s->n : slot;
    kccl_cg_launch_t l;
    fill_common(s, a, &l);
    l.algo = algo;
    l.stride = a->count;
    for (size_t off = 0; off < a->count; off += chunk) {
        size_t c = a->count - off < chunk ? a->count - off : chunk, words;
        l.count = c;
        l.send = a->sendbuf ? (const char *)a->sendbuf + off * es : NULL;
        l.recv = (char *)a->recvbuf + off * es;
        if (algo == KCCL_CG_LL2) {
            size_t R = (c + (size_t)s->n - 1) / (size_t)s->n;
            words = (R + per_word - 1) / per_word;
        } else {
            words = (c + per_word - 1) / per_word;
        }
        ll_grid(&l, words);
        int err = kccl_cg_launch(&l);
        if (err != 0)
            return cuda_fail(s->comm, "launching an LL collective kernel", err);
    }
    return KCCL_OK;
}

/* Most blocks of a zero-copy kernel (KCCL_COLL_ZC_BLOCKS overrides). Measured on H100 NV18
 * (bench/NOTES.md): with 3+ ranks, where every GPU loads from and stores into every peer at
 * once, half the SMs move more than all of them (all-reduce 8 MiB on 4 GPUs: 47.6 us on 64
 * blocks, 49.5 on 132, 62.8 on 264); with 2 ranks, one block per SM. */
static int zc_grid(const kccl_cg_state_t *s)
{
    int most = s->zc_blocks > 0 ? (int)s->zc_blocks : s->n <= 2 ? s->nsm : s->nsm / 2;
    return clampi((size_t)most, 1, KCCL_CG_MAX_BLOCKS);
}

static kccl_status_t launch(kccl_cg_state_t *s, const kccl_cg_launch_t *l, const char *what)
{
    int err = kccl_cg_launch(l);
    return err != 0 ? cuda_fail(s->comm, what, err) : KCCL_OK;
}

/* The barrier kernel (block 0 of every rank meets; release after earlier copies). */
static kccl_status_t barrier(kccl_cg_state_t *s, const kccl_cg_launch_t *base)
{
    kccl_cg_launch_t b = *base;
    b.algo = KCCL_CG_BARRIER;
    b.blocks = 1;
    b.threads = 32;
    return launch(s, &b, "launching the collective barrier kernel");
}

/* Makes stream `to` wait for the work issued so far on stream `from`. */
static kccl_status_t stream_wait(kccl_cg_state_t *s, void *from, void *to)
{
    cudaEvent_t ev = (cudaEvent_t)s->events[s->next_event++ % KCCL_CG_EVENTS];
    int err = (int)cudaEventRecord(ev, (cudaStream_t)from);
    if (err == 0)
        err = (int)cudaStreamWaitEvent((cudaStream_t)to, ev, 0);
    return err != 0 ? cuda_fail(s->comm, "ordering the copy-engine stream", err) : KCCL_OK;
}

/* Next event of the pool, recorded on stream. */
static kccl_status_t record(kccl_cg_state_t *s, void *stream, void **ev)
{
    *ev = s->events[s->next_event++ % KCCL_CG_EVENTS];
    int err = (int)cudaEventRecord((cudaEvent_t)*ev, (cudaStream_t)stream);
    return err != 0 ? cuda_fail(s->comm, "recording a copy-engine event", err) : KCCL_OK;
}

static kccl_status_t wait_event(kccl_cg_state_t *s, void *stream, void *ev)
{
    int err = (int)cudaStreamWaitEvent((cudaStream_t)stream, (cudaEvent_t)ev, 0);
    return err != 0 ? cuda_fail(s->comm, "waiting for a copy-engine event", err) : KCCL_OK;
}

/* Copy-engine puts of bytes at src into every peer's recv at byte offset off, on stream,
 * peer me+1 first, then me+2, ...: at each step every rank writes a different peer.
 * Measured slower on 4 H100s (all-gather 256 MiB, bench/NOTES.md): one stream per peer, all
 * puts at once (219 against 353 GB/s busbw), and a barrier kernel between the steps to keep
 * the ranks in lock step (333). */
static kccl_status_t ce_puts(kccl_cg_state_t *s, const kccl_cg_launch_t *l, const char *src,
                             size_t off, size_t bytes, void *stream)
{
    for (int i = 1; i < s->n && bytes > 0; i++) {
        int q = (s->me + i) % s->n;
        int err = (int)cudaMemcpyAsync((char *)l->peer_recv[q] + off, src, bytes, cudaMemcpyDefault,
                                       (cudaStream_t)stream);
        if (err != 0)
            return cuda_fail(s->comm, "copy-engine put to a peer", err);
    }
    return KCCL_OK;
}

/* All-reduce: one zero-copy kernel reduces this rank's region from every rank's send
 * buffer into its own recv (its opening barrier proves peers' buffers ready), then
 * copy-engine puts of the region into every peer, then the barrier kernel. Overlapping
 * the reduce of chunk c with the puts of chunk c-1 on a side stream was slower on H100
 * (1 GiB, 2 ranks: 3304 us against 2981 us; bench/NOTES.md). */
static kccl_status_t run_ce_all_reduce(kccl_cg_state_t *s, const kccl_coll_args_t *a,
                                       kccl_cg_launch_t *l)
{
    const size_t es = kccl_dtype_size(a->dtype), v = 16 / es, n = (size_t)s->n;
    const size_t R = ((a->count + n - 1) / n + v - 1) / v * v, off = (size_t)s->me * R;
    const size_t len = off >= a->count ? 0 : (a->count - off < R ? a->count - off : R);
    l->algo = KCCL_CG_ZC;
    l->phase = 1;
    l->lo = 0;
    l->hi = R;
    l->threads = 512;
    l->blocks = clampi((R + 512 * v - 1) / (512 * v), 1, zc_grid(s));
    KCCL_CHECK(launch(s, l, "launching the reduce half of a copy-engine all-reduce"));
    KCCL_CHECK(ce_puts(s, l, (const char *)a->recvbuf + off * es, off * es, len * es, a->stream));
    return barrier(s, l);
}

#define CEP_CHUNK ((size_t)16 << 20) /* bytes per peer per pipeline stage */

/* All-reduce with the copy engine on both halves: after the barrier kernel, the side
 * stream pulls chunk c of this rank's region from every peer's send buffer into local
 * scratch (double-buffered) while the caller's stream reduces chunk c-1 locally into
 * recv; then copy-engine puts of the region into every peer and the barrier kernel. */
static kccl_status_t run_cep(kccl_cg_state_t *s, const kccl_coll_args_t *a, kccl_cg_launch_t *l)
{
    const size_t es = kccl_dtype_size(a->dtype), v = 16 / es, n = (size_t)s->n;
    const size_t R = ((a->count + n - 1) / n + v - 1) / v * v, off = (size_t)s->me * R;
    const size_t len = off >= a->count ? 0 : (a->count - off < R ? a->count - off : R);
    const size_t ch = CEP_CHUNK / es, need = 2 * (n - 1) * CEP_CHUNK;
    if (s->pull_bytes < need) {
        if (s->pull != NULL)
            (void)cudaFree(s->pull);
        s->pull = NULL;
        s->pull_bytes = 0;
        int err = (int)cudaMalloc(&s->pull, need);
        if (err != 0)
            return cuda_fail(s->comm, "allocating the pull scratch", err);
        s->pull_bytes = need;
    }
    void *ev_red[2], *ev;
    KCCL_CHECK(barrier(s, l));
    KCCL_CHECK(record(s, a->stream, &ev_red[0]));
    ev_red[1] = ev_red[0];
    kccl_cg_launch_t r = *l;
    r.algo = KCCL_CG_RED;
    r.threads = 512;
    r.blocks = clampi((ch + 512 * v - 1) / (512 * v), 1, 2 * s->nsm);
    for (size_t lo = 0, c = 0; lo < len; lo += ch, c++) {
        size_t hi = lo + ch < len ? lo + ch : len;
        char *buf = (char *)s->pull + (c % 2) * (n - 1) * CEP_CHUNK;
        KCCL_CHECK(wait_event(s, s->side, ev_red[c % 2])); /* reduce of c-2 done with buf */
        for (int i = 1, k = 0; i < s->n; i++, k++) {
            int q = (s->me + i) % s->n;
            char *dst = buf + (size_t)k * CEP_CHUNK;
            r.peer_send[q] = dst;
            int err =
                (int)cudaMemcpyAsync(dst, (const char *)l->peer_send[q] + (off + lo) * es,
                                     (hi - lo) * es, cudaMemcpyDefault, (cudaStream_t)s->side);
            if (err != 0)
                return cuda_fail(s->comm, "copy-engine pull from a peer", err);
        }
        KCCL_CHECK(record(s, s->side, &ev));
        KCCL_CHECK(wait_event(s, a->stream, ev));
        r.lo = lo;
        r.hi = hi;
        KCCL_CHECK(launch(s, &r, "launching the local reduce of a copy-engine all-reduce"));
        KCCL_CHECK(record(s, a->stream, &ev_red[c % 2]));
    }
    KCCL_CHECK(ce_puts(s, l, (const char *)a->recvbuf + off * es, off * es, len * es, a->stream));
    return barrier(s, l);
}

/*
 * Copy engine for the all-gather half (large messages). All-reduce: above.
 * All-gather: barrier kernel (peers' recv ready), puts to every peer on the
 * caller's stream while a 16-block SM kernel on the side stream makes this rank's own
 * copy (a copy-engine memcpy there slowed the puts: 256 MiB on 4 H100s, 571 against
 * 548 us), barrier kernel.
 */
static kccl_status_t run_ce(kccl_cg_state_t *s, const kccl_coll_args_t *a, kccl_cg_launch_t *l,
                            int aligned, int algo)
{
    const size_t es = kccl_dtype_size(a->dtype);
    l->aligned = aligned;
    l->count = a->count;
    l->stride = a->count;
    l->send = a->sendbuf;
    l->recv = a->recvbuf;
    if (a->kind == KCCL_COLL_ALL_REDUCE)
        return algo == KCCL_CG_CEP ? run_cep(s, a, l) : run_ce_all_reduce(s, a, l);
    size_t bytes = a->count * es, off = (size_t)s->me * bytes;
    KCCL_CHECK(barrier(s, l));
    if ((const char *)a->recvbuf + off != (const char *)a->sendbuf) {
        KCCL_CHECK(stream_wait(s, a->stream, s->side));
        kccl_cg_launch_t c = *l;
        c.algo = KCCL_CG_COPY;
        c.recv = (char *)a->recvbuf + off;
        c.lo = bytes;
        c.threads = 512;
        c.blocks = 16;
        c.stream = s->side;
        KCCL_CHECK(launch(s, &c, "launching the all-gather's local copy"));
        KCCL_CHECK(ce_puts(s, l, (const char *)a->sendbuf, off, bytes, a->stream));
        KCCL_CHECK(stream_wait(s, s->side, a->stream));
    } else {
        KCCL_CHECK(ce_puts(s, l, (const char *)a->sendbuf, off, bytes, a->stream));
    }
    return barrier(s, l);
}

/* Zero-copy over peers' user buffers; LL in chunks where some rank's buffers can't be shared. */
static kccl_status_t run_zc(kccl_cg_state_t *s, const kccl_coll_args_t *a, int algo)
{
    const size_t es = kccl_dtype_size(a->dtype), v = 16 / es, n = (size_t)s->n;
    size_t send_bytes = a->count * es, recv_bytes = send_bytes, len = a->count;
    int ok = 0, aligned = 0;
    if (a->kind == KCCL_COLL_ALL_GATHER)
        recv_bytes *= n;
    if (a->kind == KCCL_COLL_REDUCE_SCATTER)
        send_bytes *= n;
    kccl_cg_launch_t l;
    fill_common(s, a, &l);
    KCCL_CHECK(kccl_cg_buffers(s, a->sendbuf, send_bytes, a->recvbuf, recv_bytes, l.peer_send,
                               l.peer_recv, &ok, &aligned));
    if (!ok)
        return run_ll(s, a, a->kind == KCCL_COLL_ALL_REDUCE && s->n > 2 ? KCCL_CG_LL2 : KCCL_CG_LL);
    if (algo == KCCL_CG_CE || algo == KCCL_CG_CEP)
        return run_ce(s, a, &l, aligned, algo);
    if (a->kind == KCCL_COLL_ALL_REDUCE)
        len = ((a->count + n - 1) / n + v - 1) / v * v;
    else if (a->kind != KCCL_COLL_BROADCAST)
        aligned &= (a->count * es) % 16 == 0;
    l.algo = KCCL_CG_ZC;
    l.aligned = aligned;
    l.count = a->count;
    l.stride = a->count;
    l.send = a->sendbuf;
    l.recv = a->recvbuf;
    l.threads = 512;
    l.blocks = clampi((len + (size_t)l.threads * v - 1) / ((size_t)l.threads * v), 1, zc_grid(s));
    int err = kccl_cg_launch(&l);
    if (err != 0)
        return cuda_fail(s->comm, "launching a zero-copy collective kernel", err);
    return KCCL_OK;
}

kccl_status_t kccl_coll_gpu_run(kccl_comm_t comm, const kccl_coll_args_t *args)
{
    kccl_cg_state_t *s = NULL;
    enum cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
    (void)cudaThreadExchangeStreamCaptureMode(&mode);
    kccl_status_t st = state_get(comm, &s);
    if (st == KCCL_OK)
        st = read_config(s); /* per call: a few getenv()s; lets a process switch at run time */
    if (st == KCCL_OK) {
        size_t bytes = args->count * kccl_dtype_size(args->dtype);
        if (args->kind == KCCL_COLL_ALL_GATHER || args->kind == KCCL_COLL_REDUCE_SCATTER)
            bytes *= (size_t)comm->size;
        int algo = choose(s, args, bytes);
        kccl_log_debug(COLL, "rank %d: %zu bytes -> %s", comm->rank, bytes, algo_names[algo]);
        st = algo >= KCCL_CG_ZC ? run_zc(s, args, algo) : run_ll(s, args, algo);
    }
    (void)cudaThreadExchangeStreamCaptureMode(&mode);
    return st;
}

void kccl_coll_gpu_teardown(kccl_comm_t comm)
{
    if (comm == NULL || comm->coll_gpu == NULL)
        return;
    state_free(comm->coll_gpu);
    comm->coll_gpu = NULL;
}
