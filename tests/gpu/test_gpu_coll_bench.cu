/*
 * test_gpu_coll_bench.cu - times kccl's GPU all-reduce and all-gather side by
 * side with NCCL (dlopen'ed, same processes, same buffers) in CUDA-graph mode:
 * `iters` calls captured in one graph, the graph replayed 5 times, the median
 * replay over iters is a rank's time, the slowest rank's time is the figure
 * (nccl-tests columns: algbw = bytes / time, busbw = algbw * 2(n-1)/n for
 * all-reduce and (n-1)/n for all-gather). Inputs are a non-zero pattern; each
 * kccl result is spot-checked (1025 elements) and reported as #wrong. Eager
 * mode too: calls issued back to back between two events.
 * Until the committed kccl-bench (bench/coll/) lands, this is what
 * tests/gpu/run_gpu_coll.sh times.
 *
 * Usage: test_gpu_coll_bench nranks [--sweep] [--factor F] [--max-bytes B]
 *   --factor F: size step (default 4).
 *   --sweep: also time each forced algorithm (KCCL_COLL_ALGO=ll/ll2 up to
 *   16 MiB, zc/ce/cep from 256 KiB), for the selection table.
 * NCCL: KCCL_NCCL_LIB=/path/libnccl.so.2 (default: libnccl.so.2 on the loader
 * path); without it only kccl is timed.
 */
#include <algorithm>
#include <dlfcn.h>
#include <vector>

#include "gpu_harness.h"
#include "kccl/kccl_coll.h"

typedef struct {
    char internal[128];
} nccl_uid_t;

typedef struct {
    int (*get_uid)(nccl_uid_t *);
    int (*init_rank)(void **, int, nccl_uid_t, int);
    int (*all_reduce)(const void *, void *, size_t, int, int, void *, cudaStream_t);
    int (*all_gather)(const void *, void *, size_t, int, void *, cudaStream_t);
    int (*destroy)(void *);
    void *comm;
} nccl_t;

#define NCCL_FLOAT32 7
#define NCCL_SUM     0

typedef struct {
    int rank, n, sweep, factor;
    size_t max_bytes;
    kccl_comm_t comm;
    nccl_t nccl;
    int have_nccl;
    float *send, *recv;
    cudaStream_t stream;
} bctx_t;

static int nccl_open(bctx_t *b)
{
    const char *path = getenv("KCCL_NCCL_LIB");
    void *h = dlopen(path && *path ? path : "libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    int ok = h != NULL;
    if (ok) {
        *(void **)&b->nccl.get_uid = dlsym(h, "ncclGetUniqueId");
        *(void **)&b->nccl.init_rank = dlsym(h, "ncclCommInitRank");
        *(void **)&b->nccl.all_reduce = dlsym(h, "ncclAllReduce");
        *(void **)&b->nccl.all_gather = dlsym(h, "ncclAllGather");
        *(void **)&b->nccl.destroy = dlsym(h, "ncclCommDestroy");
        ok = b->nccl.get_uid && b->nccl.init_rank && b->nccl.all_reduce && b->nccl.all_gather;
    }
    /* every rank must agree before the collective set-up */
    int all[8] = {0};
    all[b->rank] = ok;
    if (kccl_bootstrap_all_gather(kccl_comm_bootstrap(b->comm), all, sizeof(int)) != KCCL_OK)
        return 1;
    for (int r = 0; r < b->n; r++)
        ok &= all[r];
    b->have_nccl = ok;
    if (!ok) {
        if (b->rank == 0)
            printf("NCCL not loaded (%s): kccl only\n", dlerror() ? dlerror() : "missing symbols");
        return 0;
    }
    nccl_uid_t id;
    memset(&id, 0, sizeof(id));
    if (b->rank == 0 && b->nccl.get_uid(&id) != 0)
        return 1;
    if (kccl_bootstrap_broadcast(kccl_comm_bootstrap(b->comm), &id, sizeof(id), 0) != KCCL_OK)
        return 1;
    return b->nccl.init_rank(&b->nccl.comm, b->n, id, b->rank) != 0;
}

/* impl 0: kccl, 1: NCCL. coll 0: all-reduce, 1: all-gather. count: elements (AG: per rank). */
static int issue(bctx_t *b, int impl, int coll, size_t count)
{
    if (impl == 0)
        return coll == 0
                   ? kccl_all_reduce(b->send, b->recv, count, KCCL_FLOAT32, KCCL_SUM, b->comm,
                                     b->stream)
                   : kccl_all_gather(b->send, b->recv, count, KCCL_FLOAT32, b->comm, b->stream);
    return coll == 0
               ? b->nccl.all_reduce(b->send, b->recv, count, NCCL_FLOAT32, NCCL_SUM, b->nccl.comm,
                                    b->stream)
               : b->nccl.all_gather(b->send, b->recv, count, NCCL_FLOAT32, b->nccl.comm, b->stream);
}

/* Spot check of a kccl result: every rank's input is the same pattern. */
static int count_wrong(bctx_t *b, int coll, size_t count)
{
    float pattern;
    memset(&pattern, 0x3C, sizeof(pattern));
    float want = coll == 0 ? pattern * (float)b->n : pattern;
    size_t total = coll == 0 ? count : count * (size_t)b->n, wrong = 0;
    for (int k = 0; k <= 1024; k++) {
        size_t i = total * (size_t)k / 1024;
        if (i >= total)
            i = total - 1;
        float got = 0;
        if (cudaMemcpy(&got, b->recv + i, 4, cudaMemcpyDeviceToHost) != cudaSuccess)
            return -1;
        wrong += fabsf(got - want) > 1e-5f * fabsf(want);
    }
    return (int)wrong;
}

/* Median per-call time (us) of iters calls in one graph, slowest rank. */
static int time_one(bctx_t *b, int impl, int coll, size_t count, double *us)
{
    int gh_rank = b->rank;
    size_t bytes = count * 4 * (coll ? (size_t)b->n : 1);
    int iters = bytes <= (1 << 20) ? 200 : bytes <= (64 << 20) ? 20 : 5;
    GH_CHECK(issue(b, impl, coll, count) == 0, "warm-up call failed: %s", kccl_last_error());
    GH_CUDA(cudaStreamSynchronize(b->stream));
    cudaGraph_t g;
    cudaGraphExec_t ge;
    GH_CUDA(cudaStreamBeginCapture(b->stream, cudaStreamCaptureModeGlobal));
    for (int i = 0; i < iters; i++)
        GH_CHECK(issue(b, impl, coll, count) == 0, "captured call failed: %s", kccl_last_error());
    GH_CUDA(cudaStreamEndCapture(b->stream, &g));
    GH_CUDA(cudaGraphInstantiate(&ge, g, 0));
    GH_CUDA(cudaGraphLaunch(ge, b->stream));
    GH_CUDA(cudaStreamSynchronize(b->stream));
    GH_OK(kccl_bootstrap_barrier(kccl_comm_bootstrap(b->comm)));
    cudaEvent_t e0, e1;
    GH_CUDA(cudaEventCreate(&e0));
    GH_CUDA(cudaEventCreate(&e1));
    std::vector<double> t;
    for (int r = 0; r < 5; r++) {
        float ms = 0;
        GH_CUDA(cudaEventRecord(e0, b->stream));
        GH_CUDA(cudaGraphLaunch(ge, b->stream));
        GH_CUDA(cudaEventRecord(e1, b->stream));
        GH_CUDA(cudaEventSynchronize(e1));
        GH_CUDA(cudaEventElapsedTime(&ms, e0, e1));
        t.push_back(ms * 1e3 / iters);
    }
    std::sort(t.begin(), t.end());
    double all[8] = {0};
    all[b->rank] = t[2];
    GH_OK(kccl_bootstrap_all_gather(kccl_comm_bootstrap(b->comm), all, sizeof(double)));
    *us = 0;
    for (int r = 0; r < b->n; r++)
        *us = std::max(*us, all[r]);
    GH_CUDA(cudaEventDestroy(e0));
    GH_CUDA(cudaEventDestroy(e1));
    GH_CUDA(cudaGraphExecDestroy(ge));
    GH_CUDA(cudaGraphDestroy(g));
    return 0;
}

/* Eager mode: iters calls in a row between two events, slowest rank. */
static int time_eager(bctx_t *b, int impl, int coll, size_t count, double *us)
{
    int gh_rank = b->rank;
    size_t bytes = count * 4 * (coll ? (size_t)b->n : 1);
    int iters = bytes <= (1 << 20) ? 100 : bytes <= (64 << 20) ? 10 : 3;
    for (int i = 0; i < 3; i++)
        GH_CHECK(issue(b, impl, coll, count) == 0, "warm-up call failed: %s", kccl_last_error());
    GH_CUDA(cudaStreamSynchronize(b->stream));
    GH_OK(kccl_bootstrap_barrier(kccl_comm_bootstrap(b->comm)));
    cudaEvent_t e0, e1;
    float ms = 0;
    GH_CUDA(cudaEventCreate(&e0));
    GH_CUDA(cudaEventCreate(&e1));
    GH_CUDA(cudaEventRecord(e0, b->stream));
    for (int i = 0; i < iters; i++)
        GH_CHECK(issue(b, impl, coll, count) == 0, "call failed: %s", kccl_last_error());
    GH_CUDA(cudaEventRecord(e1, b->stream));
    GH_CUDA(cudaEventSynchronize(e1));
    GH_CUDA(cudaEventElapsedTime(&ms, e0, e1));
    double all[8] = {0};
    all[b->rank] = ms * 1e3 / iters;
    GH_OK(kccl_bootstrap_all_gather(kccl_comm_bootstrap(b->comm), all, sizeof(double)));
    *us = 0;
    for (int r = 0; r < b->n; r++)
        *us = std::max(*us, all[r]);
    GH_CUDA(cudaEventDestroy(e0));
    GH_CUDA(cudaEventDestroy(e1));
    return 0;
}

static double busbw(int coll, int n, size_t bytes, double us)
{
    double algbw = (double)bytes / (us * 1e3);
    return coll == 0 ? algbw * 2.0 * (n - 1) / n : algbw * (double)(n - 1) / n;
}

static int bench_coll(bctx_t *b, int coll)
{
    int gh_rank = b->rank;
    static const char *const algos[] = {"ll", "ll2", "zc", "ce", "cep"};
    size_t lo = coll == 0 ? 1024 : 65536, hi = coll == 0 ? b->max_bytes : b->max_bytes / 4;
    for (size_t bytes = lo; bytes <= hi; bytes *= (size_t)b->factor) {
        size_t count = coll == 0 ? bytes / 4 : bytes / 4 / (size_t)b->n;
        double k_us = 0, n_us = 0, a_us[5] = {0, 0, 0, 0, 0};
        setenv("KCCL_COLL_ALGO", "auto", 1);
        GH_CUDA(cudaMemset(b->recv, 0x7F, bytes));
        if (time_one(b, 0, coll, count, &k_us))
            return 1;
        int wrong = count_wrong(b, coll, count);
        if (b->have_nccl && time_one(b, 1, coll, count, &n_us))
            return 1;
        double ke_us = 0, ne_us = 0;
        if (time_eager(b, 0, coll, count, &ke_us) ||
            (b->have_nccl && time_eager(b, 1, coll, count, &ne_us)))
            return 1;
        for (int a = 0; b->sweep && a < 5; a++) {
            int small = bytes <= (16u << 20), large = bytes >= (256u << 10);
            if ((a < 2 && !small) || (a >= 2 && !large) || ((a == 1 || a == 4) && coll != 0))
                continue;
            setenv("KCCL_COLL_ALGO", algos[a], 1);
            GH_CUDA(cudaMemset(b->recv, 0x7F, bytes));
            if (time_one(b, 0, coll, count, &a_us[a]))
                return 1;
            int w = count_wrong(b, coll, count);
            GH_CHECK(w == 0, "%s %s %zu bytes: %d of 1025 sampled elements wrong",
                     coll ? "all_gather" : "all_reduce", algos[a], bytes, w);
        }
        if (b->rank == 0) {
            printf("RESULT %s %d %zu kccl_us %.2f nccl_us %.2f kccl_busbw %.1f nccl_busbw %.1f "
                   "wrong %d",
                   coll ? "all_gather" : "all_reduce", b->n, bytes, k_us, n_us,
                   busbw(coll, b->n, bytes, k_us), n_us > 0 ? busbw(coll, b->n, bytes, n_us) : 0,
                   wrong);
            printf(" eager_kccl_us %.2f eager_nccl_us %.2f", ke_us, ne_us);
            if (b->sweep)
                printf(" ll_us %.2f ll2_us %.2f zc_us %.2f ce_us %.2f cep_us %.2f", a_us[0],
                       a_us[1], a_us[2], a_us[3], a_us[4]);
            printf("\n");
            fflush(stdout);
        }
    }
    return 0;
}

static int rank_main(int rank, int n, const kccl_unique_id_t *id, const kccl_bootstrap_opts_t *o,
                     void *arg)
{
    const bctx_t *cfg = (const bctx_t *)arg;
    bctx_t b = *cfg;
    b.rank = rank;
    b.n = n;
    GH_OK(kccl_comm_init_rank(id, rank, n, o, &b.comm));
    GH_CUDA(cudaMalloc((void **)&b.send, b.max_bytes));
    GH_CUDA(cudaMalloc((void **)&b.recv, b.max_bytes));
    GH_CUDA(cudaMemset(b.send, 0x3C, b.max_bytes));
    GH_CUDA(cudaStreamCreateWithFlags(&b.stream, cudaStreamNonBlocking));
    GH_CHECK(nccl_open(&b) == 0, "NCCL set-up failed");
    if (bench_coll(&b, 0) || bench_coll(&b, 1))
        return 1;
    if (b.have_nccl && b.nccl.destroy)
        b.nccl.destroy(b.nccl.comm);
    kccl_comm_destroy(b.comm);
    return 0;
}

int main(int argc, char **argv)
{
    bctx_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    int n = argc > 1 ? atoi(argv[1]) : 2;
    cfg.max_bytes = (size_t)1 << 30;
    cfg.factor = 4;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--sweep") == 0)
            cfg.sweep = 1;
        else if (strcmp(argv[i], "--factor") == 0 && i + 1 < argc)
            cfg.factor = atoi(argv[++i]);
        else if (strcmp(argv[i], "--max-bytes") == 0 && i + 1 < argc)
            cfg.max_bytes = strtoull(argv[++i], NULL, 0);
    }
    if (n < 2 || n > 8 || cfg.factor < 2) {
        fprintf(stderr, "usage: %s nranks(2..8) [--sweep] [--factor F>=2] [--max-bytes B]\n",
                argv[0]);
        return 2;
    }
    setenv("NCCL_NVLS_ENABLE", "0", 1);
    int rc = gh_run(n, 580, rank_main, &cfg);
    printf("test_gpu_coll_bench %d ranks: %s\n", n,
           rc == 0         ? "DONE"
           : rc == GH_SKIP ? "SKIPPED"
                           : "FAILED");
    return rc;
}
