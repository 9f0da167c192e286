/*
 * kccl_coll.h - collectives: all-reduce, all-gather, reduce-scatter,
 * broadcast, with NCCL's argument conventions so code ports line by line.
 *
 * Buffers: device pointers (GPU path: the kernels in kernels/, stream
 * ordered and capturable in CUDA graphs) or host pointers (CPU path over the
 * communicator's links: correct, not fast; what CI exercises). The path is
 * chosen per call from sendbuf/recvbuf, which must be of the same kind.
 * In place: sendbuf == recvbuf (all-reduce, broadcast), or
 * sendbuf == recvbuf + rank * count (all-gather), or
 * recvbuf == sendbuf + rank * recvcount (reduce-scatter), as in NCCL.
 *
 * Counts are elements, any value (not only multiples of the rank count).
 * stream: a cudaStream_t for device buffers (NULL: the legacy default
 * stream); ignored for host buffers, where the call returns when the
 * operation has completed on this rank.
 *
 * Every rank of the communicator calls each collective in the same order
 * with matching arguments. Errors: KCCL_ERR_INVALID_ARG (bad type, op, root,
 * mixed buffer kinds), KCCL_ERR_REMOTE naming a lost peer, KCCL_ERR_TIMED_OUT,
 * KCCL_ERR_CUDA; kccl_last_error() says which.
 */
#ifndef KCCL_COLL_H
#define KCCL_COLL_H

#include <stddef.h>

#include "kccl_comm.h"
#include "kccl_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    KCCL_INT32 = 0,
    KCCL_FLOAT32 = 1,
    KCCL_FLOAT16 = 2,  /* IEEE half */
    KCCL_BFLOAT16 = 3, /* bfloat16 */
    KCCL_NUM_DTYPES
} kccl_dtype_t;

typedef enum {
    KCCL_SUM = 0,
    KCCL_MAX = 1,
    KCCL_MIN = 2,
    KCCL_AVG = 3, /* floating-point types only: sum / nranks */
    KCCL_NUM_REDOPS
} kccl_redop_t;

/* Size of one element; 0 for an invalid type. */
size_t kccl_dtype_size(kccl_dtype_t dtype);
/* "int32", "float32", "float16", "bfloat16"; "?" for an invalid type. */
const char *kccl_dtype_name(kccl_dtype_t dtype);
/* "sum", "max", "min", "avg"; "?" for an invalid op. */
const char *kccl_redop_name(kccl_redop_t op);

/* recvbuf[i] = op over ranks of sendbuf[i], i < count, on every rank. */
kccl_status_t kccl_all_reduce(const void *sendbuf, void *recvbuf, size_t count, kccl_dtype_t dtype,
                              kccl_redop_t op, kccl_comm_t comm, void *stream);

/* recvbuf[r * sendcount + i] = sendbuf of rank r [i]. */
kccl_status_t kccl_all_gather(const void *sendbuf, void *recvbuf, size_t sendcount,
                              kccl_dtype_t dtype, kccl_comm_t comm, void *stream);

/* recvbuf[i] = op over ranks of sendbuf[rank * recvcount + i], i < recvcount. */
kccl_status_t kccl_reduce_scatter(const void *sendbuf, void *recvbuf, size_t recvcount,
                                  kccl_dtype_t dtype, kccl_redop_t op, kccl_comm_t comm,
                                  void *stream);

/* recvbuf[i] = sendbuf of rank root [i] (sendbuf is read on root only). */
kccl_status_t kccl_broadcast(const void *sendbuf, void *recvbuf, size_t count, kccl_dtype_t dtype,
                             int root, kccl_comm_t comm, void *stream);

#ifdef __cplusplus
}
#endif
#endif /* KCCL_COLL_H */
