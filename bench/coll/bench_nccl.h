/*
 * bench_nccl.h - NCCL for kccl-bench's --compare nccl, loaded at run time
 * (dlopen of KCCL_NCCL_LIB, else libnccl.so.2, else libnccl.so): kccl never
 * links or includes NCCL. The few prototypes and enum values it needs are
 * declared in bench_nccl.c from NCCL's documented ABI.
 */
#ifndef KCCL_BENCH_COLL_NCCL_H
#define KCCL_BENCH_COLL_NCCL_H

#include "bench.h"

typedef struct bench_nccl bench_nccl_t;

/* Collective over comm: every rank loads NCCL (all fail if one cannot), rank 0
 * makes the NCCL unique id and kccl's bootstrap broadcasts it, then each
 * rank joins NCCL's communicator on its current CUDA device. */
kccl_status_t bench_nccl_open(kccl_comm_t comm, bench_nccl_t **out);
/* Enqueues c's collective on stream (a cudaStream_t). */
kccl_status_t bench_nccl_call(bench_nccl_t *nc, const bench_case_t *c, const void *s, void *r,
                              void *stream);
/* "NCCL 2.28.9 (libnccl.so.2)". */
const char *bench_nccl_describe(const bench_nccl_t *nc);
void bench_nccl_close(bench_nccl_t *nc);

#endif
