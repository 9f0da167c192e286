/*
 * kccl_bench.c - kccl-bench: nccl-tests-style timing and checking of kccl's
 * collectives, one process per rank: `kccl-run -n 4 kccl-bench --op
 * all_reduce -b 8 -e 1G -f 2`. Device buffers by default (rank r on device
 * r % ndev; eager launches or CUDA graphs), host buffers with --host (the
 * CPU path), NCCL on the same buffers with --compare nccl. Every size gets
 * fresh seeded inputs and poisoned outputs and is checked against a float64
 * reference (coll_check.c) before it is timed. Exit status: 0 when every
 * checked element was right and no call failed.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "coll/coll_cpu.h"

typedef struct {
    double time_us;
    uint64_t wrong;
    int32_t failed, pad;
} wire_meas_t;

typedef struct {
    const bench_opts_t *o;
    kccl_comm_t comm;
    int rank, n;
    bench_host_t *host;
    bench_dev_t *dev;
} bench_t;

/* Fills a case for a size column of `bytes` (rounded as nccl-tests does). */
static void make_case(const bench_t *b, kccl_dtype_t dt, kccl_redop_t op, size_t bytes,
                      uint64_t seed, bench_case_t *c)
{
    size_t esz = kccl_dtype_size(dt), n = (size_t)b->n;
    memset(c, 0, sizeof(*c));
    c->kind = b->o->kind;
    c->dtype = dt;
    c->op = op;
    c->root = c->kind == COLL_CHECK_BROADCAST ? b->o->root : -1;
    c->seed = seed;
    if (c->kind == COLL_CHECK_ALL_GATHER || c->kind == COLL_CHECK_REDUCE_SCATTER) {
        c->count = bytes / (esz * n);
        c->send_count = c->kind == COLL_CHECK_ALL_GATHER ? c->count : c->count * n;
        c->recv_count = c->kind == COLL_CHECK_ALL_GATHER ? c->count * n : c->count;
        c->bytes = c->count * n * esz;
    } else {
        c->count = c->send_count = c->recv_count = bytes / esz;
        c->bytes = c->count * esz;
    }
}

static kccl_status_t measure(bench_t *b, const bench_case_t *c, int lib, int ip, bench_meas_t *m)
{
    if (b->host)
        return bench_host_run(b->host, c, ip, m);
    return bench_dev_run(b->dev, c, lib, ip, m);
}

/* Runs one row on this rank, then combines every rank's figures. */
static int run_row(bench_t *b, bench_row_t *row)
{
    wire_meas_t *all = calloc((size_t)b->n * 4, sizeof(wire_meas_t));
    if (all == NULL)
        return -1;
    wire_meas_t *mine = all + (size_t)b->rank * 4;
    int libs = b->o->compare_nccl ? 2 : 1;
    for (int lib = 0; lib < libs; lib++)
        for (int ip = 0; ip < 2; ip++) {
            bench_meas_t m;
            kccl_status_t st = measure(b, &row->c, lib, ip, &m);
            if (st != KCCL_OK)
                fprintf(stderr, "kccl-bench: rank %d: %s %s %zu B %s: %s: %s\n", b->rank,
                        lib ? "nccl" : "kccl", bench_kind_name(row->c.kind), row->c.bytes,
                        ip ? "in place" : "out of place", kccl_status_name(st), kccl_last_error());
            mine[lib * 2 + ip] = (wire_meas_t){m.time_us, m.wrong, st != KCCL_OK, 0};
        }
    kccl_status_t st =
        kccl_bootstrap_all_gather(kccl_comm_bootstrap(b->comm), all, 4 * sizeof(wire_meas_t));
    if (st != KCCL_OK) {
        fprintf(stderr, "kccl-bench: rank %d: combining results: %s\n", b->rank, kccl_last_error());
        free(all);
        return -1;
    }
    double factor = bench_busbw_factor(row->c.kind, b->n);
    for (int k = 0; k < 4; k++) {
        bench_meas_t *m = &row->m[k / 2][k % 2];
        memset(m, 0, sizeof(*m));
        for (int r = 0; r < b->n; r++) {
            const wire_meas_t *w = &all[(size_t)r * 4 + (size_t)k];
            m->time_us = w->time_us > m->time_us ? w->time_us : m->time_us;
            m->failed |= w->failed;
            if (w->wrong == UINT64_MAX || m->wrong == UINT64_MAX)
                m->wrong = UINT64_MAX;
            else
                m->wrong += w->wrong;
        }
        m->algbw = m->time_us > 0 ? (double)row->c.bytes / m->time_us / 1e3 : 0;
        m->busbw = m->algbw * factor;
    }
    free(all);
    return 0;
}

static size_t next_size(const bench_opts_t *o, size_t s)
{
    if (o->factor > 1) {
        size_t t = (size_t)((double)s * o->factor);
        return t > s ? t : s + 1;
    }
    return s + o->step;
}

/* Every dtype x op x size; rows go to stdout (rank 0) and *rows. */
static int sweep(bench_t *b, bench_row_t **rows, size_t *nrows, int *bad)
{
    const bench_opts_t *o = b->o;
    int reduces = o->kind == COLL_CHECK_ALL_REDUCE || o->kind == COLL_CHECK_REDUCE_SCATTER;
    size_t cap = 0;
    for (int d = 0; d < o->ndtypes; d++)
        for (int k = 0; k < (reduces ? o->nops : 1); k++) {
            kccl_dtype_t dt = (kccl_dtype_t)o->dtypes[d];
            kccl_redop_t op = reduces ? (kccl_redop_t)o->ops[k] : KCCL_SUM;
            if (op == KCCL_AVG && dt == KCCL_INT32)
                continue; /* not defined for integers */
            uint64_t idx = 0;
            for (size_t s = o->min_bytes; s <= o->max_bytes; s = next_size(o, s), idx++) {
                if (*nrows == cap) {
                    cap = cap ? 2 * cap : 64;
                    bench_row_t *nr = realloc(*rows, cap * sizeof(**rows));
                    if (nr == NULL)
                        return -1;
                    *rows = nr;
                }
                bench_row_t *row = &(*rows)[(*nrows)++];
                memset(row, 0, sizeof(*row));
                make_case(b, dt, op, s, o->seed * 1000003u + idx * 131u + (uint64_t)d * 7u + k,
                          &row->c);
                if (run_row(b, row) != 0)
                    return -1;
                for (int i = 0; i < 4; i++) {
                    const bench_meas_t *m = &row->m[i / 2][i % 2];
                    if ((i < 2 || o->compare_nccl) &&
                        (m->failed || (m->wrong != UINT64_MAX && m->wrong)))
                        *bad = 1;
                }
                if (b->rank == 0)
                    bench_out_row(o, row);
            }
        }
    return 0;
}

static void summary(const bench_opts_t *o, const bench_row_t *rows, size_t nrows)
{
    uint64_t wrong = 0;
    double bw = 0;
    for (size_t i = 0; i < nrows; i++) {
        for (int ip = 0; ip < 2; ip++)
            if (rows[i].m[0][ip].wrong != UINT64_MAX)
                wrong += rows[i].m[0][ip].wrong;
        bw += rows[i].m[0][0].busbw;
    }
    printf("# Out of bounds values : %llu %s\n", (unsigned long long)wrong,
           wrong ? "FAILED" : "OK");
    printf("# Avg bus bandwidth    : %g\n#\n", nrows ? bw / (double)nrows : 0.0);
    (void)o;
}

static int setup(bench_t *b, const char **device)
{
    const bench_opts_t *o = b->o;
    if (o->gpus && o->gpus != b->n) {
        fprintf(stderr, "kccl-bench: -g %d but the group has %d ranks (kccl-run -n %d ...)\n",
                o->gpus, b->n, o->gpus);
        return -1;
    }
    if (o->kind == COLL_CHECK_BROADCAST && o->root >= b->n) {
        fprintf(stderr, "kccl-bench: root %d is not a rank of 0..%d\n", o->root, b->n - 1);
        return -1;
    }
    if (o->cpu_chunk)
        kccl_coll_cpu_set_chunk_bytes(o->cpu_chunk);
    if (o->mode == BENCH_HOST) {
        *device = "host memory (CPU path)";
        return bench_host_create(o, b->comm, &b->host) == KCCL_OK ? 0 : -1;
    }
    if (bench_dev_create(o, b->comm, &b->dev) != KCCL_OK) {
        fprintf(stderr, "kccl-bench: rank %d: device mode: %s\n", b->rank, kccl_last_error());
        return -1;
    }
    *device = bench_dev_name(b->dev);
    return 0;
}

/*
 * Started by hand with -g N (no KCCL_RANK, handoff file or unique id in the
 * environment): re-runs itself as `kccl-run -n N kccl-bench ARGS...`, with
 * the kccl-run next to this binary, in the build tree, or on PATH.
 */
static void relaunch(int argc, char **argv, const bench_opts_t *o)
{
    if (o->gpus <= 0 || getenv("KCCL_RANK") || getenv("KCCL_BOOTSTRAP_FILE") ||
        getenv("KCCL_UNIQUE_ID"))
        return;
    char self[PATH_MAX], run[PATH_MAX + 64], n[16];
    ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (len <= 0)
        return;
    self[len] = '\0';
    char *slash = strrchr(self, '/');
    if (slash == NULL)
        return;
    *slash = '\0';
    static const char *const where[] = {"%s/kccl-run", "%s/../../runtime/tools/kccl-run"};
    const char *launcher = "kccl-run"; /* PATH */
    for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
        snprintf(run, sizeof(run), where[i], self);
        if (access(run, X_OK) == 0) {
            launcher = run;
            break;
        }
    }
    char **args = calloc((size_t)argc + 5, sizeof(char *));
    if (args == NULL)
        return;
    snprintf(n, sizeof(n), "%d", o->gpus);
    *slash = '/';
    args[0] = (char *)launcher;
    args[1] = "-n";
    args[2] = n;
    args[3] = self;
    for (int i = 1; i < argc; i++)
        args[3 + i] = argv[i];
    execvp(launcher, args);
    fprintf(stderr, "kccl-bench: cannot start %s for -g %d (%m); run kccl-run -n %d kccl-bench\n",
            launcher, o->gpus, o->gpus);
    free(args);
}

int main(int argc, char **argv)
{
    bench_opts_t o;
    int rc = bench_opts_parse(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    relaunch(argc, argv, &o);
    bench_t b = {.o = &o};
    /* The GPU first: the communicator belongs to the device current at its creation. */
    if (o.mode != BENCH_HOST && bench_dev_select() != KCCL_OK) {
        fprintf(stderr, "kccl-bench: cannot select this rank's GPU: %s\n", kccl_last_error());
        return 1;
    }
    if (kccl_comm_init_from_env(&b.comm) != KCCL_OK) {
        fprintf(stderr,
                "kccl-bench: cannot form the group: %s\n(start one process per rank "
                "with kccl-run: kccl-run -n 4 kccl-bench ...)\n",
                kccl_last_error());
        return 1;
    }
    b.rank = kccl_comm_rank(b.comm);
    b.n = kccl_comm_size(b.comm);
    /* The float64 check: this rank's share of the host's CPUs (the ranks check at once). */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int local = kccl_comm_local_size(b.comm);
    coll_check_set_threads(cpus > 0 && local > 0 ? (int)(cpus / local) : 1);
    const char *device = "";
    bench_row_t *rows = NULL;
    size_t nrows = 0;
    int bad = 0;
    rc = setup(&b, &device);
    if (rc == 0) {
        if (b.rank == 0)
            bench_out_header(&o, b.n, device);
        rc = sweep(&b, &rows, &nrows, &bad);
    }
    if (rc == 0 && b.rank == 0) {
        summary(&o, rows, nrows);
        if (o.json && bench_out_json(&o, b.n, device, rows, nrows) != 0)
            rc = -1;
    }
    free(rows);
    bench_host_destroy(b.host);
    if (b.dev)
        bench_dev_destroy(b.dev);
    kccl_comm_destroy(b.comm);
    return rc != 0 ? 1 : bad ? 3 : 0;
}
