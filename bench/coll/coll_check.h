/*
 * coll_check.h - seeded inputs and a float64 reference for collectives, shared
 * by kccl-bench and the collectives' integration tests.
 *
 * Every element of every rank's input is a pure function of (seed, rank,
 * index), so any rank can rebuild every other rank's input and check its own
 * output without moving data. Values: int32 in [-1000, 1000]; floating types
 * uniform in [-1, 1) rounded to the type (so each input is exact in it).
 *
 * Checks: max/min/int32 results and all-gather/broadcast copies must be exact;
 * float sums must lie within nranks * eps(type) * sum|x| of the float64
 * reference (each of the n - 1 roundings of a partial sum, plus the final
 * one, errs by at most eps/2 of sum|x|), avg the same divided by nranks.
 */
#ifndef KCCL_BENCH_COLL_CHECK_H
#define KCCL_BENCH_COLL_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "kccl/kccl_coll.h"

typedef enum {
    COLL_CHECK_ALL_REDUCE = 0,
    COLL_CHECK_ALL_GATHER,
    COLL_CHECK_REDUCE_SCATTER,
    COLL_CHECK_BROADCAST,
} coll_check_kind_t;

typedef struct {
    coll_check_kind_t kind;
    kccl_dtype_t dtype;
    kccl_redop_t op; /* all-reduce, reduce-scatter */
    int root;        /* broadcast */
    int nranks, rank;
    size_t count; /* as the kccl call takes it (all-gather: per rank; reduce-scatter: recvcount) */
    uint64_t seed;
} coll_check_t;

/* Element i of rank's input (float64 of the exact value). */
double coll_check_input(const coll_check_t *c, int rank, size_t i);
/* Writes this rank's whole send buffer (coll_check_send_count elements). */
void coll_check_fill(const coll_check_t *c, void *sendbuf);
/* Elements of the send buffer / of the receive buffer, on this rank. */
size_t coll_check_send_count(const coll_check_t *c);
size_t coll_check_recv_count(const coll_check_t *c);
/* Writes recv_count elements of a value no correct result has (a NaN, or
 * INT32_MIN for int32), so an element the collective never wrote is caught. */
void coll_check_poison(const coll_check_t *c, void *recvbuf);
/* Number of recvbuf elements that miss the reference. */
size_t coll_check_wrong(const coll_check_t *c, const void *recvbuf);
/* Threads for coll_check_fill and coll_check_wrong on 1M elements or more (default 1, at
 * most COLL_CHECK_MAX_THREADS): kccl-bench gives each rank its share of the host's CPUs, so
 * the float64 check of a 1 GiB all-reduce takes seconds, not a minute. Not thread-safe
 * itself: call it before the checks. */
#define COLL_CHECK_MAX_THREADS 32
void coll_check_set_threads(int n);
/* FNV-1a over bytes, to compare outputs across ranks. */
uint64_t coll_check_hash(const void *p, size_t bytes, uint64_t h);

#endif
