/*
 * coll.h - internal interface of the collectives (runtime/coll/).
 *
 * coll.c validates a call (kccl_coll.h), decides the path from the buffers'
 * kind and hands a kccl_coll_args_t to one of two back ends:
 *   - the CPU path (coll_cpu*.c): host buffers over the communicator's links;
 *   - the GPU path (coll_gpu*.c + kernels/src/coll/): device buffers, stream
 *     ordered; in builds without CUDA, coll_gpu_none.c answers UNSUPPORTED.
 * Each back end keeps its per-communicator state behind comm->coll_cpu /
 * comm->coll_gpu, created on first use and freed by kccl_coll_teardown()
 * (called from kccl_comm_destroy).
 */
#ifndef KCCL_COLL_INT_H
#define KCCL_COLL_INT_H

#include <stddef.h>

#include "kccl/kccl_coll.h"

typedef enum {
    KCCL_COLL_ALL_REDUCE = 0,
    KCCL_COLL_ALL_GATHER,
    KCCL_COLL_REDUCE_SCATTER,
    KCCL_COLL_BROADCAST,
} kccl_coll_kind_t;

typedef struct {
    kccl_coll_kind_t kind;
    const void *sendbuf;
    void *recvbuf;
    size_t count; /* all-reduce/broadcast: count; all-gather: sendcount;
                     reduce-scatter: recvcount (elements) */
    kccl_dtype_t dtype;
    kccl_redop_t op; /* all-reduce, reduce-scatter */
    int root;        /* broadcast */
    void *stream;    /* cudaStream_t (GPU path) */
} kccl_coll_args_t;

/* 1 if ptr is device memory (CUDA builds with a GPU), 0 for host memory. */
int kccl_coll_ptr_is_device(const void *ptr);

kccl_status_t kccl_coll_cpu_run(kccl_comm_t comm, const kccl_coll_args_t *args);
void kccl_coll_cpu_teardown(kccl_comm_t comm);

kccl_status_t kccl_coll_gpu_run(kccl_comm_t comm, const kccl_coll_args_t *args);
void kccl_coll_gpu_teardown(kccl_comm_t comm);

/* Frees both back ends' state (kccl_comm_destroy). */
void kccl_coll_teardown(kccl_comm_t comm);

#endif
