/*
 * test_gpu_coll.cu - the GPU collectives (kccl_coll.h with device buffers)
 * between processes, one GPU each, against a float64 host reference.
 *
 * Usage: test_gpu_coll [nranks] [--quick]   (default 2; exits 77 = skipped
 * when there is no GPU or fewer GPUs than ranks)
 *
 * Every rank can compute every rank's input (values are a hash of seed, rank
 * and index), so each checks its own output without exchanging data. Outputs
 * are poisoned (0x7F bytes: NaN in float16, far outside every input range
 * otherwise) with guard bytes around them that must stay poisoned. Cases:
 *   1. every kind x dtype x op (avg: float types) x counts from 1 element to
 *      ~1 MiB, odd counts, each also in place or at misaligned offsets that
 *      differ between ranks (so the zero-copy kernels' narrow path runs), with
 *      the built-in algorithm choice;
 *   2. the same for each algorithm forced through KCCL_COLL_ALGO (ll, ll2, zc,
 *      ce, cep), including LL in several chunks (sizes above one scratch slot);
 *   3. 64 MiB per kind;
 *   4. CUDA graphs: one graph holding several collectives of different
 *      algorithms, replayed many times with fresh inputs each time (the
 *      kernels' own step counters must stay in step across replays).
 */
#include <cmath>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <vector>

#include "gpu_harness.h"
#include "kccl/kccl_coll.h"

#define POISON 0x7F
#define GUARD  64

typedef struct {
    int kind; /* 0 all-reduce, 1 all-gather, 2 reduce-scatter, 3 broadcast */
    kccl_dtype_t dt;
    kccl_redop_t op;
    size_t count;
    int inplace, misalign, root;
} tcase_t;

static const char *const kind_names[] = {"all_reduce", "all_gather", "reduce_scatter", "broadcast"};

typedef struct {
    kccl_comm_t comm;
    int rank, n;
    char *send_pool, *recv_pool;
    size_t pool_bytes;
    cudaStream_t stream;
    long cases, failures;
} ctx_t;

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

/* Rank r's input element i in case seed, as the typed value's exact double and raw bits. */
static double in_value(kccl_dtype_t dt, uint64_t seed, int r, size_t i, uint32_t *bits)
{
    uint64_t h = mix(seed * 0x9E3779B97F4A7C15ull ^ ((uint64_t)r << 48) ^ i);
    double u = (double)(h >> 11) / 9007199254740992.0 * 2.0 - 1.0; /* [-1, 1) */
    switch (dt) {
    case KCCL_INT32: {
        int32_t v = (int32_t)(h % 2001) - 1000;
        *bits = (uint32_t)v;
        return v;
    }
    case KCCL_FLOAT32: {
        float f = (float)u;
        memcpy(bits, &f, 4);
        return f;
    }
    case KCCL_FLOAT16: {
        __half x = __float2half_rn((float)u);
        *bits = __half_as_ushort(x);
        return __half2float(x);
    }
    default: {
        __nv_bfloat16 x = __float2bfloat16_rn((float)u);
        *bits = __bfloat16_as_ushort(x);
        return __bfloat162float(x);
    }
    }
}

static double out_value(kccl_dtype_t dt, const char *p)
{
    switch (dt) {
    case KCCL_INT32: {
        int32_t v;
        memcpy(&v, p, 4);
        return v;
    }
    case KCCL_FLOAT32: {
        float f;
        memcpy(&f, p, 4);
        return f;
    }
    case KCCL_FLOAT16: {
        unsigned short u;
        memcpy(&u, p, 2);
        return __half2float(__ushort_as_half(u));
    }
    default: {
        unsigned short u;
        memcpy(&u, p, 2);
        return __bfloat162float(__ushort_as_bfloat16(u));
    }
    }
}

static void put_bits(char *p, size_t es, uint32_t bits)
{
    if (es == 4)
        memcpy(p, &bits, 4);
    else {
        unsigned short u = (unsigned short)bits;
        memcpy(p, &u, 2);
    }
}

/* Sizes (elements) of the input and output buffers of a case. */
static void case_sizes(const tcase_t *c, int n, size_t *in, size_t *out)
{
    *in = *out = c->count;
    if (c->kind == 1)
        *out *= (size_t)n;
    if (c->kind == 2)
        *in *= (size_t)n;
}

/* Places the case's buffers in the pools; misaligned offsets differ per rank. */
static void case_layout(const ctx_t *x, const tcase_t *c, size_t base, char **send, char **recv)
{
    size_t es = kccl_dtype_size(c->dt);
    size_t so = c->misalign ? (size_t)(1 + x->rank % 3) * es : 0;
    size_t ro = c->misalign ? (size_t)(3 - x->rank % 2) * es : 0;
    *recv = x->recv_pool + base + GUARD + ro;
    if (!c->inplace)
        *send = x->send_pool + base + GUARD + so;
    else if (c->kind == 1)
        *send = *recv + (size_t)x->rank * c->count * es;
    else if (c->kind == 2) {
        *send = *recv;
        *recv = *send + (size_t)x->rank * c->count * es;
    } else
        *send = *recv;
}

/* Writes this rank's input for seed into the device buffers; poisons the output. */
static int stage_inputs(ctx_t *x, const tcase_t *c, uint64_t seed, size_t base, char *send)
{
    size_t es = kccl_dtype_size(c->dt), nin, nout;
    case_sizes(c, x->n, &nin, &nout);
    std::vector<char> host(nin * es);
    for (size_t i = 0; i < nin; i++) {
        uint32_t bits;
        in_value(c->dt, seed, x->rank, i, &bits);
        put_bits(&host[i * es], es, bits);
    }
    int gh_rank = x->rank;
    size_t span = 3 * GUARD + (nin > nout ? nin : nout) * es; /* + misaligned offsets */
    GH_CUDA(cudaMemset(x->recv_pool + base, POISON, span));
    if (!c->inplace)
        GH_CUDA(cudaMemset(x->send_pool + base, POISON, span));
    if (c->kind != 3 || x->rank == c->root || c->inplace)
        GH_CUDA(cudaMemcpy(send, host.data(), nin * es, cudaMemcpyHostToDevice));
    /* a pageable cudaMemcpy may return before its DMA lands, and the collective runs on a
     * non-blocking stream: wait for the legacy stream's work (first run: poisoned inputs) */
    GH_CUDA(cudaDeviceSynchronize());
    return 0;
}

static double reduce_ref(const tcase_t *c, uint64_t seed, int n, size_t i, double *sumabs)
{
    uint32_t bits;
    double acc = 0;
    *sumabs = 0;
    for (int r = 0; r < n; r++) {
        double v = in_value(c->dt, seed, r, i, &bits);
        *sumabs += fabs(v);
        if (r == 0)
            acc = v;
        else if (c->op == KCCL_MAX)
            acc = v > acc ? v : acc;
        else if (c->op == KCCL_MIN)
            acc = v < acc ? v : acc;
        else
            acc += v;
    }
    if (c->op == KCCL_AVG) {
        acc /= n;
        *sumabs /= n;
    }
    return acc;
}

/* The reference value of output element i of this rank, and its tolerance. */
static double expect(const ctx_t *x, const tcase_t *c, uint64_t seed, size_t i, double *tol)
{
    static const double rel[] = {0, 2e-6, 2e-3, 1.2e-2};
    uint32_t bits;
    double sumabs = 0, v;
    if (c->kind == 1)
        v = in_value(c->dt, seed, (int)(i / c->count), i % c->count, &bits);
    else if (c->kind == 3)
        v = in_value(c->dt, seed, c->root, i, &bits);
    else
        v = reduce_ref(c, seed, x->n, c->kind == 2 ? (size_t)x->rank * c->count + i : i, &sumabs);
    *tol = rel[c->dt] * (sumabs + fabs(v)) + (c->dt >= KCCL_FLOAT16 ? 1e-6 : 0);
    return v;
}

static int check_output(ctx_t *x, const tcase_t *c, uint64_t seed, size_t base, const char *recv,
                        const char *tag)
{
    size_t es = kccl_dtype_size(c->dt), nin, nout;
    case_sizes(c, x->n, &nin, &nout);
    int gh_rank = x->rank;
    size_t at = (size_t)(recv - x->recv_pool - base), bad = 0;
    std::vector<char> host(at + nout * es + GUARD);
    GH_CUDA(cudaMemcpy(host.data(), x->recv_pool + base, host.size(), cudaMemcpyDeviceToHost));
    for (size_t b = 0; b < at; b++)
        if (!(c->inplace && c->kind == 2) && host[b] != POISON && bad++ < 3)
            fprintf(stderr, "[rank %d] %s: guard byte %zu before the output overwritten\n", x->rank,
                    tag, at - b);
    for (size_t b = at + nout * es; b < at + nout * es + GUARD; b++)
        if (!(c->inplace && c->kind == 2) && host[b] != POISON && bad++ < 3)
            fprintf(stderr, "[rank %d] %s: guard byte %zu after the output overwritten\n", x->rank,
                    tag, b - at - nout * es);
    for (size_t i = 0; i < nout; i++) {
        double tol, want = expect(x, c, seed, i, &tol);
        double got = out_value(c->dt, &host[at + i * es]);
        if (!(fabs(got - want) <= tol) && bad++ < 5)
            fprintf(stderr, "[rank %d] %s: element %zu of %zu: got %.9g want %.9g (tol %.3g)\n",
                    x->rank, tag, i, nout, got, want, tol);
    }
    x->cases++;
    if (bad) {
        x->failures++;
        fprintf(stderr, "[rank %d] FAIL %s: %zu wrong\n", x->rank, tag, bad);
    }
    return 0;
}

static kccl_status_t call(ctx_t *x, const tcase_t *c, const char *send, char *recv)
{
    void *st = (void *)x->stream;
    switch (c->kind) {
    case 0: return kccl_all_reduce(send, recv, c->count, c->dt, c->op, x->comm, st);
    case 1: return kccl_all_gather(send, recv, c->count, c->dt, x->comm, st);
    case 2: return kccl_reduce_scatter(send, recv, c->count, c->dt, c->op, x->comm, st);
    default:
        return kccl_broadcast(x->rank == c->root || c->inplace ? send : NULL, recv, c->count, c->dt,
                              c->root, x->comm, st);
    }
}

static void tag_of(const tcase_t *c, const char *algo, char *buf, size_t len)
{
    snprintf(buf, len, "%s %s %s/%s count=%zu%s%s root=%d", algo, kind_names[c->kind],
             kccl_dtype_name(c->dt), kccl_redop_name(c->op), c->count,
             c->inplace ? " in-place" : "", c->misalign ? " misaligned" : "", c->root);
}

/* One eager call: stage, call, synchronise, check. */
static int run_eager(ctx_t *x, const tcase_t *c, uint64_t seed, const char *algo)
{
    char *send, *recv, tag[200];
    int gh_rank = x->rank;
    case_layout(x, c, 0, &send, &recv);
    tag_of(c, algo, tag, sizeof(tag));
    if (stage_inputs(x, c, seed, 0, send))
        return 1;
    GH_OK(call(x, c, send, recv));
    GH_CUDA(cudaStreamSynchronize(x->stream));
    GH_CUDA(cudaGetLastError());
    return check_output(x, c, seed, 0, recv, tag);
}

/* Several collectives captured in one graph, replayed with fresh inputs each time. */
static int run_graph(ctx_t *x, const tcase_t *cs, int nc, int replays, const char *algo)
{
    int gh_rank = x->rank;
    setenv("KCCL_COLL_ALGO", algo, 1);
    size_t slice = x->pool_bytes / (size_t)nc;
    std::vector<char *> send(nc), recv(nc);
    for (int j = 0; j < nc; j++)
        case_layout(x, &cs[j], (size_t)j * slice, &send[j], &recv[j]);
    cudaGraph_t g;
    cudaGraphExec_t ge;
    GH_CUDA(cudaStreamBeginCapture(x->stream, cudaStreamCaptureModeGlobal));
    for (int j = 0; j < nc; j++)
        GH_OK(call(x, &cs[j], send[j], recv[j]));
    GH_CUDA(cudaStreamEndCapture(x->stream, &g));
    GH_CUDA(cudaGraphInstantiate(&ge, g, 0));
    for (int rep = 0; rep < replays; rep++) {
        uint64_t seed = 0x6000 + (uint64_t)rep * 131;
        for (int j = 0; j < nc; j++)
            if (stage_inputs(x, &cs[j], seed + (uint64_t)j, (size_t)j * slice, send[j]))
                return 1;
        GH_CUDA(cudaDeviceSynchronize());
        GH_CUDA(cudaGraphLaunch(ge, x->stream));
        GH_CUDA(cudaStreamSynchronize(x->stream));
        for (int j = 0; j < nc; j++) {
            char tag[240];
            tag_of(&cs[j], algo, tag, sizeof(tag));
            strcat(tag, " (graph replay)");
            if (check_output(x, &cs[j], seed + (uint64_t)j, (size_t)j * slice, recv[j], tag))
                return 1;
        }
    }
    GH_CUDA(cudaGraphExecDestroy(ge));
    GH_CUDA(cudaGraphDestroy(g));
    return 0;
}

static const kccl_dtype_t all_dt[] = {KCCL_INT32, KCCL_FLOAT32, KCCL_FLOAT16, KCCL_BFLOAT16};
static const kccl_redop_t all_op[] = {KCCL_SUM, KCCL_MAX, KCCL_MIN, KCCL_AVG};

/* kinds x dtypes x ops x counts; each case once plain and once varied (in place or misaligned). */
static int run_matrix(ctx_t *x, const char *algo, const size_t *counts, int ncounts, int ndt,
                      const kccl_dtype_t *dts, int kinds_mask, uint64_t *seed)
{
    setenv("KCCL_COLL_ALGO", algo, 1);
    int v = 0;
    for (int kind = 0; kind < 4; kind++) {
        if (!(kinds_mask & (1 << kind)))
            continue;
        int nops = kind == 0 || kind == 2 ? 4 : 1;
        for (int d = 0; d < ndt; d++)
            for (int o = 0; o < nops; o++) {
                if (all_op[o] == KCCL_AVG && dts[d] == KCCL_INT32)
                    continue;
                for (int k = 0; k < ncounts; k++) {
                    tcase_t c = {kind, dts[d], all_op[o], counts[k], 0, 0, 0};
                    c.root = (int)(*seed % (uint64_t)x->n);
                    if (run_eager(x, &c, ++*seed, algo))
                        return 1;
                    v++;
                    c.inplace = v % 2;
                    c.misalign = !c.inplace;
                    if (run_eager(x, &c, ++*seed, algo))
                        return 1;
                }
            }
    }
    return 0;
}

static int rank_main(int rank, int n, const kccl_unique_id_t *id, const kccl_bootstrap_opts_t *o,
                     void *arg)
{
    int quick = arg != NULL;
    ctx_t x;
    memset(&x, 0, sizeof(x));
    x.rank = rank;
    x.n = n;
    GH_OK(kccl_comm_init_rank(id, rank, n, o, &x.comm));
    x.pool_bytes = (size_t)(quick ? 16 : 64) * (1 << 20) * (size_t)n + 4096;
    GH_CUDA(cudaMalloc(&x.send_pool, x.pool_bytes));
    GH_CUDA(cudaMalloc(&x.recv_pool, x.pool_bytes));
    GH_CUDA(cudaStreamCreateWithFlags(&x.stream, cudaStreamNonBlocking));
    uint64_t seed = 1000;
    double t0 = gh_now();

    /* 1. built-in choice, every dtype and op */
    const size_t small[] = {1, 3, 257, 1024, 16411, 262147};
    if (run_matrix(&x, "auto", small, 6, 4, all_dt, 0xF, &seed))
        return 1;
    /* 2. each algorithm forced; 1.2M elements: LL in several chunks */
    const kccl_dtype_t two[] = {KCCL_FLOAT32, KCCL_BFLOAT16};
    const size_t forced[] = {1, 5, 4099, 262147, 1200007};
    if (run_matrix(&x, "ll", forced, 5, 2, two, 0xF, &seed) ||
        run_matrix(&x, "ll2", forced, 5, 2, two, 0x1, &seed) ||
        run_matrix(&x, "zc", forced, 5, 2, two, 0xF, &seed) ||
        run_matrix(&x, "ce", forced, 5, 2, two, 0x3, &seed) ||
        run_matrix(&x, "cep", forced, 5, 2, two, 0x1, &seed))
        return 1;
    if (rank == 0)
        printf("matrix: %ld cases in %.1f s\n", x.cases, gh_now() - t0);
    /* 3. 64 MiB (16 MiB with --quick) per kind, float32 */
    setenv("KCCL_COLL_ALGO", "auto", 1);
    size_t big = (quick ? 4 : 16) << 20;
    for (int kind = 0; kind < 4; kind++)
        for (int inplace = 0; inplace < 2; inplace++) {
            size_t cnt = kind == 1 || kind == 2 ? big / (size_t)n : big;
            tcase_t c = {kind, KCCL_FLOAT32, KCCL_SUM, cnt, inplace, 0, n - 1};
            if (run_eager(&x, &c, ++seed, "auto"))
                return 1;
        }
    /* copy-engine all-reduce of 96 MiB, forced (auto chooses it from 64 or 128 MiB) */
    for (int v = 0; !quick && v < 4; v++) { /* cep: several 16 MiB pipeline stages */
        tcase_t c = {0, KCCL_FLOAT32, KCCL_SUM, (size_t)24 << 20, v & 1, 0, 0};
        const char *algo = v < 2 ? "ce" : "cep";
        setenv("KCCL_COLL_ALGO", algo, 1);
        if (run_eager(&x, &c, ++seed, algo))
            return 1;
    }
    /* 4. graphs: LL, LL2 and zero-copy kernels in one graph, 50 replays */
    tcase_t g[3] = {{0, KCCL_FLOAT32, KCCL_SUM, 256, 0, 0, 0},
                    {0, KCCL_BFLOAT16, KCCL_AVG, 200001, 1, 0, 0},
                    {1, KCCL_FLOAT32, KCCL_SUM, 1 << 20, 0, 0, 0}};
    if (run_graph(&x, g, 3, quick ? 10 : 50, "auto"))
        return 1;
    tcase_t g2[2] = {{2, KCCL_FLOAT16, KCCL_MAX, 4097, 0, 1, 0},
                     {3, KCCL_INT32, KCCL_SUM, 777777, 0, 0, 1 % n}};
    if (run_graph(&x, g2, 2, quick ? 10 : 30, "auto"))
        return 1;
    /* copy-engine all-reduce and all-gather in a graph */
    tcase_t g3[2] = {{0, KCCL_FLOAT32, KCCL_SUM, 3000017, 0, 0, 0},
                     {1, KCCL_BFLOAT16, KCCL_SUM, 2 << 20, 1, 0, 0}};
    if (run_graph(&x, g3, 2, quick ? 5 : 20, "ce"))
        return 1;
    tcase_t g4[2] = {{0, KCCL_BFLOAT16, KCCL_MAX, quick ? 3000017u : 9000011u, 0, 0, 0},
                     {0, KCCL_FLOAT32, KCCL_AVG, 3000017, 1, 1, 0}};
    if (run_graph(&x, g4, 2, quick ? 5 : 20, "cep"))
        return 1;
    GH_OK(kccl_bootstrap_barrier(kccl_comm_bootstrap(x.comm)));
    printf("[rank %d] %ld cases, %ld failed (%.1f s)\n", rank, x.cases, x.failures, gh_now() - t0);
    GH_CUDA(cudaFree(x.send_pool));
    GH_CUDA(cudaFree(x.recv_pool));
    GH_CUDA(cudaStreamDestroy(x.stream));
    kccl_comm_destroy(x.comm);
    return x.failures ? 1 : 0;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2, quick = 0;
    for (int i = 2; i < argc; i++)
        quick |= strcmp(argv[i], "--quick") == 0;
    if (n < 2 || n > 8) {
        fprintf(stderr, "usage: %s [nranks 2..8] [--quick]\n", argv[0]);
        return 2;
    }
    setenv("NCCL_NVLS_ENABLE", "0", 1);
    static int marker;
    int rc = gh_run(n, 600, rank_main, quick ? &marker : NULL);
    printf("test_gpu_coll %d ranks: %s\n", n,
           rc == 0         ? "PASSED"
           : rc == GH_SKIP ? "SKIPPED"
                           : "FAILED");
    return rc;
}
