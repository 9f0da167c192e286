/*
 * coll.c - the collectives' front door (kccl_coll.h): argument checks that
 * every path shares, the choice of path from the buffers' kind (device
 * memory: GPU kernels; host memory: the CPU path over the links), and the
 * per-communicator teardown. The algorithms live in the back ends.
 */
#include "coll/coll.h"

#include <stdint.h>

#include "comm/comm.h"
#include "core/error.h"
#include "memory/gpu.h"

static const char *const dtype_names[KCCL_NUM_DTYPES] = {"int32", "float32", "float16", "bfloat16"};
static const size_t dtype_sizes[KCCL_NUM_DTYPES] = {4, 4, 2, 2};
static const char *const redop_names[KCCL_NUM_REDOPS] = {"sum", "max", "min", "avg"};
static const char *const kind_names[] = {"all-reduce", "all-gather", "reduce-scatter", "broadcast"};

size_t kccl_dtype_size(kccl_dtype_t dtype)
{
    return ((unsigned)dtype < KCCL_NUM_DTYPES) ? dtype_sizes[dtype] : 0;
}

const char *kccl_dtype_name(kccl_dtype_t dtype)
{
    return ((unsigned)dtype < KCCL_NUM_DTYPES) ? dtype_names[dtype] : "?";
}

const char *kccl_redop_name(kccl_redop_t op)
{
    return ((unsigned)op < KCCL_NUM_REDOPS) ? redop_names[op] : "?";
}

int kccl_coll_ptr_is_device(const void *ptr)
{
    const kccl_gpu_ops_t *gpu = kccl_gpu();
    int dev = -1;
    if (ptr == NULL || gpu == NULL || gpu->pointer_device(ptr, &dev) != KCCL_OK)
        return 0;
    return dev >= 0;
}

static int uses_op(kccl_coll_kind_t kind)
{
    return kind == KCCL_COLL_ALL_REDUCE || kind == KCCL_COLL_REDUCE_SCATTER;
}

/* Checks shared by both paths; names the collective and the argument. */
static kccl_status_t check_args(kccl_comm_t comm, const kccl_coll_args_t *a)
{
    const char *what = kind_names[a->kind];
    if (comm == NULL)
        KCCL_FAIL(COLL, KCCL_ERR_INVALID_ARG, "%s: NULL communicator", what);
    if (kccl_dtype_size(a->dtype) == 0)
        KCCL_FAIL(COLL, KCCL_ERR_INVALID_ARG, "%s: invalid data type %d (use a kccl_dtype_t)", what,
                  (int)a->dtype);
    if (uses_op(a->kind)) {
        if ((unsigned)a->op >= KCCL_NUM_REDOPS)
            KCCL_FAIL(COLL, KCCL_ERR_INVALID_ARG, "%s: invalid reduction %d (use a kccl_redop_t)",
                      what, (int)a->op);
        if (a->op == KCCL_AVG && a->dtype == KCCL_INT32)
            KCCL_FAIL(COLL, KCCL_ERR_INVALID_ARG,
                      "%s: avg is for floating-point types; use sum and divide for int32", what);
    }
    if (a->kind == KCCL_COLL_BROADCAST && (a->root < 0 || a->root >= comm->size))
        KCCL_FAIL(COLL, KCCL_ERR_INVALID_ARG, "broadcast: root %d is not a rank of 0..%d", a->root,
                  comm->size - 1);
    if (a->count > SIZE_MAX / kccl_dtype_size(a->dtype) / (size_t)comm->size)
        KCCL_FAIL(COLL, KCCL_ERR_INVALID_ARG, "%s: count %zu overflows the buffer size", what,
                  a->count);
    if (a->count == 0)
        return KCCL_OK;
    int send_needed = !(a->kind == KCCL_COLL_BROADCAST && comm->rank != a->root);
    if (a->recvbuf == NULL || (send_needed && a->sendbuf == NULL))
        KCCL_FAIL(COLL, KCCL_ERR_INVALID_ARG, "%s: NULL %s buffer with count %zu", what,
                  a->recvbuf == NULL ? "receive" : "send", a->count);
    return KCCL_OK;
}

static kccl_status_t coll_run(kccl_comm_t comm, const kccl_coll_args_t *a)
{
    KCCL_CHECK(check_args(comm, a));
    if (a->count == 0)
        return KCCL_OK;
    int dev_recv = kccl_coll_ptr_is_device(a->recvbuf);
    int dev_send = a->sendbuf ? kccl_coll_ptr_is_device(a->sendbuf) : dev_recv;
    if (dev_recv != dev_send)
        KCCL_FAIL(COLL, KCCL_ERR_INVALID_ARG,
                  "%s: send buffer is %s memory but receive buffer is %s memory; use the same "
                  "kind for both",
                  kind_names[a->kind], dev_send ? "device" : "host", dev_recv ? "device" : "host");
    return dev_recv ? kccl_coll_gpu_run(comm, a) : kccl_coll_cpu_run(comm, a);
}

kccl_status_t kccl_all_reduce(const void *sendbuf, void *recvbuf, size_t count, kccl_dtype_t dtype,
                              kccl_redop_t op, kccl_comm_t comm, void *stream)
{
    kccl_coll_args_t a = {KCCL_COLL_ALL_REDUCE, sendbuf, recvbuf, count, dtype, op, 0, stream};
    return coll_run(comm, &a);
}

kccl_status_t kccl_all_gather(const void *sendbuf, void *recvbuf, size_t sendcount,
                              kccl_dtype_t dtype, kccl_comm_t comm, void *stream)
{
    kccl_coll_args_t a = {
        KCCL_COLL_ALL_GATHER, sendbuf, recvbuf, sendcount, dtype, KCCL_SUM, 0, stream};
    return coll_run(comm, &a);
}

kccl_status_t kccl_reduce_scatter(const void *sendbuf, void *recvbuf, size_t recvcount,
                                  kccl_dtype_t dtype, kccl_redop_t op, kccl_comm_t comm,
                                  void *stream)
{
    kccl_coll_args_t a = {
        KCCL_COLL_REDUCE_SCATTER, sendbuf, recvbuf, recvcount, dtype, op, 0, stream};
    return coll_run(comm, &a);
}

kccl_status_t kccl_broadcast(const void *sendbuf, void *recvbuf, size_t count, kccl_dtype_t dtype,
                             int root, kccl_comm_t comm, void *stream)
{
    kccl_coll_args_t a = {
        KCCL_COLL_BROADCAST, sendbuf, recvbuf, count, dtype, KCCL_SUM, root, stream};
    return coll_run(comm, &a);
}

void kccl_coll_teardown(kccl_comm_t comm)
{
    if (comm == NULL)
        return;
    kccl_coll_gpu_teardown(comm);
    kccl_coll_cpu_teardown(comm);
}
