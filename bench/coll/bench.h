/*
 * bench.h - kccl-bench's internal interface: options (bench_opts.c), one
 * measured case, the host runner (bench_host.c), the device runner and the
 * NCCL comparison (bench_dev.c, bench_nccl.c: CUDA builds only) and the
 * output (bench_out.c: nccl-tests columns and JSON).
 *
 * One process per rank (kccl-run -n N kccl-bench ...); rank r uses device
 * r % ndev. Every rank measures; the row shows the slowest rank's time and
 * the sum of every rank's #wrong.
 */
#ifndef KCCL_BENCH_COLL_BENCH_H
#define KCCL_BENCH_COLL_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "coll_check.h"
#include "kccl/kccl.h"

typedef enum { BENCH_HOST = 0, BENCH_EAGER, BENCH_GRAPH } bench_mode_t;

typedef struct {
    size_t min_bytes, max_bytes;
    double factor;      /* -f: size multiplier (> 1) */
    size_t step;        /* -i: size increment (used when factor is 1) */
    int iters;          /* -n */
    int warmup;         /* -w */
    int check;          /* -c: 0 = skip the reference check */
    int graph_launches; /* -G: collectives captured per graph (graph mode) */
    bench_mode_t mode;
    coll_check_kind_t kind;
    int dtypes[KCCL_NUM_DTYPES], ndtypes;
    int ops[KCCL_NUM_REDOPS], nops;
    int root;         /* -r; broadcast */
    int gpus;         /* -g: ranks expected (0 = whatever the group has) */
    int compare_nccl; /* --compare nccl */
    const char *json; /* --json FILE */
    size_t cpu_chunk; /* --cpu-chunk: the CPU path's chunk in bytes (0: the library's) */
    uint64_t seed;
} bench_opts_t;

/* One measurement: a placement (out of place / in place) of one case. */
typedef struct {
    double time_us;      /* per collective; the slowest rank's */
    double algbw, busbw; /* GB/s */
    uint64_t wrong;      /* summed over ranks; UINT64_MAX: not checked */
    int failed;          /* the call failed (status in the log) */
} bench_meas_t;

typedef struct {
    coll_check_kind_t kind;
    kccl_dtype_t dtype;
    kccl_redop_t op;
    int root;          /* -1 unless broadcast */
    size_t count;      /* as the call takes it */
    size_t bytes;      /* the size column: the larger of send and receive sizes */
    size_t send_count; /* elements */
    size_t recv_count;
    uint64_t seed;
} bench_case_t;

typedef struct {
    bench_case_t c;
    bench_meas_t m[2][2]; /* [0 kccl, 1 nccl][0 out of place, 1 in place] */
} bench_row_t;

/* Parses argv; returns 0, 1 for --help (printed), or -1 (message printed). */
int bench_opts_parse(int argc, char **argv, bench_opts_t *o);
const char *bench_kind_name(coll_check_kind_t kind); /* "all_reduce" ... */
double bench_busbw_factor(coll_check_kind_t kind, int nranks);

/* Calls the kccl collective of c (stream: a cudaStream_t, or NULL). */
kccl_status_t bench_kccl_call(const bench_case_t *c, const void *s, void *r, kccl_comm_t comm,
                              void *stream);
/*
 * NCCL's placements on buffers sbase (send_count elements) and rbase
 * (recv_count): out of place s = sbase, r = rbase; in place the send buffer
 * lies inside the receive one (all-reduce, broadcast: equal; all-gather: at
 * rank * count) or the receive one inside the send one (reduce-scatter).
 * in: where this rank's input must be written; out: where the result lands.
 */
void bench_layout(const bench_case_t *c, int rank, int in_place, uint8_t *sbase, uint8_t *rbase,
                  uint8_t **s, uint8_t **r, uint8_t **in, uint8_t **out);

/* Host buffers, the CPU path. Measures out of place and in place. */
typedef struct bench_host bench_host_t;
kccl_status_t bench_host_create(const bench_opts_t *o, kccl_comm_t comm, bench_host_t **out);
kccl_status_t bench_host_run(bench_host_t *h, const bench_case_t *c, int in_place, bench_meas_t *m);
void bench_host_destroy(bench_host_t *h);

/* Device buffers (CUDA builds): kccl and, with compare, NCCL on the same buffers. */
typedef struct bench_dev bench_dev_t;
/* Before the communicator exists: make device (KCCL_RANK mod visible devices) current, so
 * the communicator (and its GPU state) belongs to this rank's GPU. */
kccl_status_t bench_dev_select(void);
kccl_status_t bench_dev_create(const bench_opts_t *o, kccl_comm_t comm, bench_dev_t **out);
/* lib 0: kccl, 1: NCCL. */
kccl_status_t bench_dev_run(bench_dev_t *d, const bench_case_t *c, int lib, int in_place,
                            bench_meas_t *m);
const char *bench_dev_name(bench_dev_t *d);
void bench_dev_destroy(bench_dev_t *d);

/* Output: rank 0 prints; the JSON file gets every row. */
void bench_out_header(const bench_opts_t *o, int nranks, const char *device);
void bench_out_row(const bench_opts_t *o, const bench_row_t *r);
int bench_out_json(const bench_opts_t *o, int nranks, const char *device, const bench_row_t *rows,
                   size_t nrows);

/* Returns a failed status from the calling function. */
#define KCCL_CHECK_BENCH(call)                                                                     \
    do {                                                                                           \
        kccl_status_t bench_st_ = (call);                                                          \
        if (bench_st_ != KCCL_OK)                                                                  \
            return bench_st_;                                                                      \
    } while (0)

/* Seconds on a monotonic clock. */
double bench_now(void);

#endif
