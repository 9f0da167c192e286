/*
 * bench_dev.c - kccl-bench's device mode (CUDA builds): cudaMalloc'ed
 * buffers on device rank % ndev, one stream, CUDA events.
 *
 * Per case: seeded inputs are written on the host and copied in, the output
 * region is poisoned, one collective runs and its result is checked against
 * the float64 reference; then warm-up (longer for the run's first case, which
 * also wakes the GPUs), a host barrier across ranks, and the
 * timed run: eager (n launches between two events) or graph (G launches
 * captured once, the graph replayed ceil(n / G) times). When a case's data
 * fits in L2 (50 MB), launches rotate through several buffer sets so the
 * timing is not of cache-resident data. kccl and NCCL (--compare nccl) run
 * on the same buffers with the same sizes.
 */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "bench_nccl.h"
#include "core/error.h"

#define L2_BYTES ((size_t)50 << 20)
#define MAX_SETS 64
/* The first case of a run also brings the GPUs out of idle: this many more launches, or
 * fewer when they would move more than FIRST_WARM_BYTES (its first rows ran up to 2x slow
 * without it: 2 GPUs, all-reduce 8 B 5.59 us against 2.6-3.1 for the rows after it). */
#define FIRST_WARM_LAUNCHES 2000
#define FIRST_WARM_BYTES    ((size_t)1 << 30)

struct bench_dev {
    const bench_opts_t *o;
    kccl_comm_t comm;
    int rank, n, dev;
    cudaStream_t stream;
    cudaEvent_t e0, e1;
    uint8_t *dsend, *drecv, *hsend, *hrecv;
    size_t dsend_cap, drecv_cap, hsend_cap, hrecv_cap;
    bench_nccl_t *nccl;
    int warmed; /* the first timed case's longer warm-up is done */
    char name[256];
};

#define CUDA_TRY(call)                                                                             \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess)                                                                     \
            KCCL_FAIL(TOOL, KCCL_ERR_CUDA, "%s: %s", #call, cudaGetErrorString(e_));               \
    } while (0)

kccl_status_t bench_dev_select(void)
{
    int ndev = 0;
    const char *r = getenv("KCCL_RANK");
    CUDA_TRY(cudaGetDeviceCount(&ndev));
    if (ndev == 0 || r == NULL)
        return KCCL_OK; /* bench_dev_create reports a missing device */
    CUDA_TRY(cudaSetDevice((int)(strtol(r, NULL, 10) % ndev)));
    return KCCL_OK;
}

kccl_status_t bench_dev_create(const bench_opts_t *o, kccl_comm_t comm, bench_dev_t **out)
{
    int ndev = 0;
    CUDA_TRY(cudaGetDeviceCount(&ndev));
    if (ndev == 0)
        KCCL_FAIL(TOOL, KCCL_ERR_CUDA, "no CUDA device (use --host for the CPU path)");
    bench_dev_t *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return KCCL_ERR_NO_MEMORY;
    d->o = o;
    d->comm = comm;
    d->rank = kccl_comm_rank(comm);
    d->n = kccl_comm_size(comm);
    d->dev = d->rank % ndev;
    *out = d;
    CUDA_TRY(cudaSetDevice(d->dev));
    CUDA_TRY(cudaStreamCreateWithFlags(&d->stream, cudaStreamNonBlocking));
    CUDA_TRY(cudaEventCreate(&d->e0));
    CUDA_TRY(cudaEventCreate(&d->e1));
    struct cudaDeviceProp p;
    CUDA_TRY(cudaGetDeviceProperties(&p, d->dev));
    snprintf(d->name, sizeof(d->name), "%.120s x %d visible (rank r on device r %% %d)", p.name,
             ndev, ndev);
    if (o->compare_nccl) {
        kccl_status_t st = bench_nccl_open(comm, &d->nccl);
        if (st != KCCL_OK)
            return st;
        size_t len = strlen(d->name);
        snprintf(d->name + len, sizeof(d->name) - len, ", vs %.100s", bench_nccl_describe(d->nccl));
    }
    return KCCL_OK;
}

static kccl_status_t reserve_dev(uint8_t **p, size_t *cap, size_t bytes)
{
    if (*p && *cap >= bytes)
        return KCCL_OK;
    if (*p)
        cudaFree(*p);
    *p = NULL;
    *cap = 0;
    CUDA_TRY(cudaMalloc((void **)p, bytes ? bytes : 256));
    *cap = bytes;
    return KCCL_OK;
}

static kccl_status_t reserve_host(uint8_t **p, size_t *cap, size_t bytes)
{
    if (*p && *cap >= bytes)
        return KCCL_OK;
    free(*p);
    *p = malloc(bytes ? bytes : 1);
    *cap = *p ? bytes : 0;
    return *p ? KCCL_OK : KCCL_ERR_NO_MEMORY;
}

static kccl_status_t launch(bench_dev_t *d, const bench_case_t *c, int lib, const void *s, void *r)
{
    if (lib)
        return bench_nccl_call(d->nccl, c, s, r, d->stream);
    return bench_kccl_call(c, s, r, d->comm, d->stream);
}

typedef struct {
    int sets;
    size_t stride_s, stride_r;
} rot_t;

static void set_ptrs(bench_dev_t *d, const bench_case_t *c, const rot_t *rt, int ip, int i,
                     uint8_t **s, uint8_t **r)
{
    uint8_t *in, *out;
    int k = i % rt->sets;
    bench_layout(c, d->rank, ip, d->dsend + (size_t)k * rt->stride_s,
                 d->drecv + (size_t)k * rt->stride_r, s, r, &in, &out);
}

/* Fills, poisons, runs once and checks set 0. */
static kccl_status_t check_once(bench_dev_t *d, const bench_case_t *c, int lib, int ip,
                                bench_meas_t *m)
{
    size_t esz = kccl_dtype_size(c->dtype);
    coll_check_t chk = {c->kind, c->dtype, c->op, c->root, d->n, d->rank, c->count, c->seed};
    uint8_t *s, *r, *in, *out;
    bench_layout(c, d->rank, ip, d->dsend, d->drecv, &s, &r, &in, &out);
    coll_check_poison(&chk, d->hrecv);
    coll_check_fill(&chk, d->hsend);
    CUDA_TRY(cudaMemcpy(d->drecv, d->hrecv, c->recv_count * esz, cudaMemcpyHostToDevice));
    CUDA_TRY(cudaMemcpy(in, d->hsend, c->send_count * esz, cudaMemcpyHostToDevice));
    /* A pageable copy may return before its DMA lands; d->stream does not wait for it. */
    CUDA_TRY(cudaDeviceSynchronize());
    KCCL_CHECK_BENCH(launch(d, c, lib, s, r));
    CUDA_TRY(cudaStreamSynchronize(d->stream));
    CUDA_TRY(cudaGetLastError());
    CUDA_TRY(cudaMemcpy(d->hrecv, out, c->recv_count * esz, cudaMemcpyDeviceToHost));
    m->wrong = d->o->check ? coll_check_wrong(&chk, d->hrecv) : UINT64_MAX;
    return KCCL_OK;
}

static kccl_status_t time_graph(bench_dev_t *d, const bench_case_t *c, int lib, int ip,
                                const rot_t *rt, bench_meas_t *m)
{
    int g = d->o->graph_launches, replays = (d->o->iters + g - 1) / g;
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    uint8_t *s, *r;
    CUDA_TRY(cudaStreamBeginCapture(d->stream, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < g; i++) {
        set_ptrs(d, c, rt, ip, i, &s, &r);
        kccl_status_t st = launch(d, c, lib, s, r);
        if (st != KCCL_OK) {
            cudaStreamEndCapture(d->stream, &graph);
            return st;
        }
    }
    CUDA_TRY(cudaStreamEndCapture(d->stream, &graph));
    CUDA_TRY(cudaGraphInstantiate(&exec, graph, 0));
    CUDA_TRY(cudaGraphLaunch(exec, d->stream)); /* warm-up replay */
    CUDA_TRY(cudaStreamSynchronize(d->stream));
    KCCL_CHECK_BENCH(kccl_bootstrap_barrier(kccl_comm_bootstrap(d->comm)));
    CUDA_TRY(cudaEventRecord(d->e0, d->stream));
    for (int i = 0; i < replays; i++)
        CUDA_TRY(cudaGraphLaunch(exec, d->stream));
    CUDA_TRY(cudaEventRecord(d->e1, d->stream));
    CUDA_TRY(cudaEventSynchronize(d->e1));
    float ms = 0;
    CUDA_TRY(cudaEventElapsedTime(&ms, d->e0, d->e1));
    m->time_us = (double)ms * 1e3 / ((double)replays * g);
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    return KCCL_OK;
}

static kccl_status_t time_eager(bench_dev_t *d, const bench_case_t *c, int lib, int ip,
                                const rot_t *rt, bench_meas_t *m)
{
    uint8_t *s, *r;
    KCCL_CHECK_BENCH(kccl_bootstrap_barrier(kccl_comm_bootstrap(d->comm)));
    CUDA_TRY(cudaEventRecord(d->e0, d->stream));
    for (int i = 0; i < d->o->iters; i++) {
        set_ptrs(d, c, rt, ip, i, &s, &r);
        KCCL_CHECK_BENCH(launch(d, c, lib, s, r));
    }
    CUDA_TRY(cudaEventRecord(d->e1, d->stream));
    CUDA_TRY(cudaEventSynchronize(d->e1));
    float ms = 0;
    CUDA_TRY(cudaEventElapsedTime(&ms, d->e0, d->e1));
    m->time_us = (double)ms * 1e3 / d->o->iters;
    return KCCL_OK;
}

kccl_status_t bench_dev_run(bench_dev_t *d, const bench_case_t *c, int lib, int in_place,
                            bench_meas_t *m)
{
    memset(m, 0, sizeof(*m));
    if (lib && d->nccl == NULL)
        return KCCL_ERR_UNSUPPORTED;
    size_t esz = kccl_dtype_size(c->dtype);
    size_t sb = c->send_count * esz, rb = c->recv_count * esz;
    rot_t rt = {1, (sb + 255) & ~(size_t)255, (rb + 255) & ~(size_t)255};
    if (sb + rb > 0 && sb + rb < L2_BYTES) {
        size_t k = (L2_BYTES + sb + rb - 1) / (sb + rb);
        rt.sets = k > MAX_SETS ? MAX_SETS : (int)k;
    }
    KCCL_CHECK_BENCH(reserve_dev(&d->dsend, &d->dsend_cap, (size_t)rt.sets * rt.stride_s));
    KCCL_CHECK_BENCH(reserve_dev(&d->drecv, &d->drecv_cap, (size_t)rt.sets * rt.stride_r));
    KCCL_CHECK_BENCH(reserve_host(&d->hsend, &d->hsend_cap, sb));
    KCCL_CHECK_BENCH(reserve_host(&d->hrecv, &d->hrecv_cap, rb));
    KCCL_CHECK_BENCH(check_once(d, c, lib, in_place, m));
    uint8_t *s, *r;
    int warm = d->o->warmup;
    if (!d->warmed) { /* the same count on every rank: launches are collective */
        size_t moved = sb + rb > 0 ? FIRST_WARM_BYTES / (sb + rb) : FIRST_WARM_LAUNCHES;
        warm += moved < FIRST_WARM_LAUNCHES ? (int)moved : FIRST_WARM_LAUNCHES;
        d->warmed = 1;
    }
    for (int i = 0; i < warm; i++) {
        set_ptrs(d, c, &rt, in_place, i, &s, &r);
        KCCL_CHECK_BENCH(launch(d, c, lib, s, r));
    }
    CUDA_TRY(cudaStreamSynchronize(d->stream));
    if (d->o->mode == BENCH_GRAPH)
        return time_graph(d, c, lib, in_place, &rt, m);
    return time_eager(d, c, lib, in_place, &rt, m);
}

const char *bench_dev_name(bench_dev_t *d)
{
    return d->name;
}

void bench_dev_destroy(bench_dev_t *d)
{
    if (d == NULL)
        return;
    bench_nccl_close(d->nccl);
    if (d->dsend)
        cudaFree(d->dsend);
    if (d->drecv)
        cudaFree(d->drecv);
    if (d->e0)
        cudaEventDestroy(d->e0);
    if (d->e1)
        cudaEventDestroy(d->e1);
    if (d->stream)
        cudaStreamDestroy(d->stream);
    free(d->hsend);
    free(d->hrecv);
    free(d);
}
