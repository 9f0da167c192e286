/*
 * nccl_shim.c - libnccl.so.2 made of kccl: NCCL's core C API (unique id,
 * communicator, all-reduce, all-gather, reduce-scatter, broadcast, groups,
 * errors) over kccl's communicator and collectives, so a program written
 * against NCCL runs on kccl by loading this library instead of NCCL's
 * (LD_LIBRARY_PATH=<build>/runtime/shim). README.md beside this file says what
 * is covered and what answers ncclInvalidUsage.
 *
 * Written from NCCL's documented API and ABI (the type and enum numbers of
 * its public header); no NCCL source or header is used. Only the nccl*
 * symbols are exported (nccl_shim.map): the kccl inside is private, so a
 * process may load libkccl as well without the two meeting.
 *
 * Unique id: kccl's 128-byte id fills NCCL's 128-byte ncclUniqueId. With a
 * group secret in the environment (KCCL_GROUP_SECRET_FILE, as the sidecar and
 * kccl-run provide) the id carries none and every rank reads the secret; with
 * none, ncclGetUniqueId draws a fresh secret and embeds it in the id, as
 * NCCL's id is the one thing ranks share (keep it as private as the job).
 */
#include <openssl/crypto.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootstrap/auth.h"
#include "core/error.h"
#include "kccl/kccl_coll.h"
#include "kccl/kccl_comm.h"
#include "memory/gpu.h"

/* NCCL's ABI: result codes, data types, reductions, the id (public header's numbers). */
typedef enum {
    ncclSuccess = 0,
    ncclUnhandledCudaError = 1,
    ncclSystemError = 2,
    ncclInternalError = 3,
    ncclInvalidArgument = 4,
    ncclInvalidUsage = 5,
    ncclRemoteError = 6,
    ncclInProgress = 7,
} ncclResult_t;

enum {
    NCCL_INT8 = 0,
    NCCL_UINT8 = 1,
    NCCL_INT32 = 2,
    NCCL_UINT32 = 3,
    NCCL_INT64 = 4,
    NCCL_UINT64 = 5,
    NCCL_FLOAT16 = 6,
    NCCL_FLOAT32 = 7,
    NCCL_FLOAT64 = 8,
    NCCL_BFLOAT16 = 9,
    NCCL_FP8_E4M3 = 10,
    NCCL_FP8_E5M2 = 11,
};
enum { NCCL_SUM = 0, NCCL_PROD = 1, NCCL_MAX = 2, NCCL_MIN = 3, NCCL_AVG = 4 };

typedef struct {
    char internal[128];
} ncclUniqueId;

typedef struct ncclComm *ncclComm_t;
typedef int ncclDataType_t;
typedef int ncclRedOp_t;
typedef void *cudaStream_t;

struct ncclComm {
    kccl_comm_t kc;
    int device; /* the CUDA device current at init (-1 without one) */
};

/* The NCCL release whose API this shim follows (ncclGetVersion's code: 2.18.0). */
#define SHIM_NCCL_VERSION 21800

_Static_assert(sizeof(ncclUniqueId) == sizeof(kccl_unique_id_t), "id sizes differ");

static ncclResult_t from_kccl(kccl_status_t st)
{
    switch (st) {
    case KCCL_OK: return ncclSuccess;
    case KCCL_INPROGRESS: return ncclInProgress;
    case KCCL_ERR_INVALID_ARG:
    case KCCL_ERR_CONFIG: return ncclInvalidArgument;
    case KCCL_ERR_UNSUPPORTED: return ncclInvalidUsage;
    case KCCL_ERR_CUDA: return ncclUnhandledCudaError;
    case KCCL_ERR_REMOTE:
    case KCCL_ERR_TIMED_OUT:
    case KCCL_ERR_AUTH:
    case KCCL_ERR_PROTOCOL:
    case KCCL_ERR_ABORTED: return ncclRemoteError;
    case KCCL_ERR_NO_MEMORY:
    case KCCL_ERR_SYSTEM:
    case KCCL_ERR_ADDR_IN_USE: return ncclSystemError;
    default: return ncclInternalError;
    }
}

/* Records why (kccl_error_set, what ncclGetLastError returns) and gives code. */
#define fail(code, ...) (kccl_error_set(__VA_ARGS__), (ncclResult_t)(code))

static const char *nccl_type_name(ncclDataType_t t)
{
    static const char *const names[] = {"ncclInt8",     "ncclUint8",      "ncclInt32",
                                        "ncclUint32",   "ncclInt64",      "ncclUint64",
                                        "ncclFloat16",  "ncclFloat32",    "ncclFloat64",
                                        "ncclBfloat16", "ncclFloat8e4m3", "ncclFloat8e5m2"};
    return t >= 0 && t < (int)(sizeof(names) / sizeof(names[0])) ? names[t] : "an unknown type";
}

static size_t nccl_type_size(ncclDataType_t t)
{
    switch (t) {
    case NCCL_INT8:
    case NCCL_UINT8:
    case NCCL_FP8_E4M3:
    case NCCL_FP8_E5M2: return 1;
    case NCCL_FLOAT16:
    case NCCL_BFLOAT16: return 2;
    case NCCL_INT32:
    case NCCL_UINT32:
    case NCCL_FLOAT32: return 4;
    case NCCL_INT64:
    case NCCL_UINT64:
    case NCCL_FLOAT64: return 8;
    default: return 0;
    }
}

/* A type kccl reduces in. */
static ncclResult_t reduce_type(ncclDataType_t t, kccl_dtype_t *out)
{
    switch (t) {
    case NCCL_INT32: *out = KCCL_INT32; return ncclSuccess;
    case NCCL_FLOAT16: *out = KCCL_FLOAT16; return ncclSuccess;
    case NCCL_FLOAT32: *out = KCCL_FLOAT32; return ncclSuccess;
    case NCCL_BFLOAT16: *out = KCCL_BFLOAT16; return ncclSuccess;
    default:
        return fail(ncclInvalidArgument,
                    "kccl's NCCL shim reduces int32, float16, float32 and bfloat16; %s (%d) is "
                    "not supported",
                    nccl_type_name(t), t);
    }
}

static ncclResult_t reduce_op(ncclRedOp_t op, kccl_redop_t *out)
{
    switch (op) {
    case NCCL_SUM: *out = KCCL_SUM; return ncclSuccess;
    case NCCL_MAX: *out = KCCL_MAX; return ncclSuccess;
    case NCCL_MIN: *out = KCCL_MIN; return ncclSuccess;
    case NCCL_AVG: *out = KCCL_AVG; return ncclSuccess;
    default:
        return fail(ncclInvalidArgument,
                    "kccl's NCCL shim supports ncclSum, ncclMax, ncclMin and ncclAvg; "
                    "reduction %d (ncclProd = 1, or a custom op) is not supported",
                    op);
    }
}

/* Copies (all-gather, broadcast) move bits, so any type of 2 or 4 bytes per unit does:
 * count elements of t become *units elements of a kccl type of the same total size. */
static ncclResult_t copy_type(ncclDataType_t t, size_t count, kccl_dtype_t *out, size_t *units)
{
    size_t es = nccl_type_size(t);
    if (es == 0)
        return fail(ncclInvalidArgument, "data type %d is not an NCCL type", t);
    size_t bytes = count * es;
    if (count != 0 && bytes / es != count)
        return fail(ncclInvalidArgument, "%zu elements of %s overflow size_t", count,
                    nccl_type_name(t));
    if (bytes % 4 == 0) {
        *out = KCCL_INT32;
        *units = bytes / 4;
    } else if (bytes % 2 == 0) {
        *out = KCCL_FLOAT16;
        *units = bytes / 2;
    } else {
        return fail(ncclInvalidArgument,
                    "kccl's NCCL shim copies whole 2-byte units: %zu elements of %s are an odd "
                    "number of bytes",
                    count, nccl_type_name(t));
    }
    return ncclSuccess;
}

static ncclResult_t check_comm(ncclComm_t comm)
{
    if (comm == NULL || comm->kc == NULL)
        return fail(ncclInvalidArgument, "comm is NULL (or was destroyed)");
    return ncclSuccess;
}

#define SHIM_API __attribute__((visibility("default")))

SHIM_API ncclResult_t ncclGetVersion(int *version)
{
    if (version == NULL)
        return fail(ncclInvalidArgument, "ncclGetVersion: version is NULL");
    *version = SHIM_NCCL_VERSION;
    return ncclSuccess;
}

SHIM_API ncclResult_t ncclGetUniqueId(ncclUniqueId *uid)
{
    if (uid == NULL)
        return fail(ncclInvalidArgument, "ncclGetUniqueId: uniqueId is NULL");
    kccl_bootstrap_opts_t o;
    memset(&o, 0, sizeof(o));
    kccl_status_t st = kccl_bootstrap_opts_from_env(&o);
    if (st == KCCL_OK && !o.has_secret && !o.insecure) {
        st = kccl_random_bytes(o.secret, sizeof(o.secret));
        o.has_secret = 1;
        o.embed_secret = 1;
    }
    kccl_unique_id_t id;
    if (st == KCCL_OK)
        st = kccl_unique_id_create(&o, &id);
    OPENSSL_cleanse(&o, sizeof(o)); /* no copy of the secret left on the stack */
    if (st != KCCL_OK)
        return from_kccl(st);
    memcpy(uid->internal, id.internal, sizeof(uid->internal));
    return ncclSuccess;
}

SHIM_API ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId commId, int rank)
{
    if (comm == NULL)
        return fail(ncclInvalidArgument, "ncclCommInitRank: comm is NULL");
    *comm = NULL;
    if (nranks < 1 || rank < 0 || rank >= nranks)
        return fail(ncclInvalidArgument, "ncclCommInitRank: rank %d of %d ranks is out of range",
                    rank, nranks);
    struct ncclComm *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return fail(ncclSystemError, "ncclCommInitRank: out of memory");
    kccl_unique_id_t id;
    memcpy(id.internal, commId.internal, sizeof(id.internal));
    kccl_status_t st = kccl_comm_init_rank(&id, rank, nranks, NULL, &c->kc);
    if (st != KCCL_OK) {
        free(c);
        return from_kccl(st);
    }
    const kccl_gpu_ops_t *g = kccl_gpu();
    c->device = -1;
    if (g != NULL && g->get_device(&c->device) != KCCL_OK)
        c->device = -1;
    *comm = c;
    return ncclSuccess;
}

SHIM_API ncclResult_t ncclCommDestroy(ncclComm_t comm)
{
    if (comm == NULL)
        return ncclSuccess;
    kccl_comm_destroy(comm->kc);
    free(comm);
    return ncclSuccess;
}

SHIM_API ncclResult_t ncclCommFinalize(ncclComm_t comm)
{
    return check_comm(comm); /* collectives complete before they return on the host path */
}

SHIM_API ncclResult_t ncclCommAbort(ncclComm_t comm)
{
    if (comm == NULL)
        return ncclSuccess;
    kccl_bootstrap_abort(kccl_comm_bootstrap(comm->kc));
    return ncclCommDestroy(comm);
}

SHIM_API ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *asyncError)
{
    ncclResult_t r = check_comm(comm);
    if (r != ncclSuccess)
        return r;
    if (asyncError == NULL)
        return fail(ncclInvalidArgument, "ncclCommGetAsyncError: asyncError is NULL");
    *asyncError = ncclSuccess; /* kccl reports every failure from the call that met it */
    return ncclSuccess;
}

enum { COMM_COUNT, COMM_RANK, COMM_DEVICE };

/* One attribute of comm into *out. */
static ncclResult_t comm_attr(ncclComm_t comm, int *out, int which, const char *call)
{
    ncclResult_t r = check_comm(comm);
    if (r != ncclSuccess)
        return r;
    if (out == NULL)
        return fail(ncclInvalidArgument, "%s: the output pointer is NULL", call);
    *out = which == COMM_COUNT  ? kccl_comm_size(comm->kc)
           : which == COMM_RANK ? kccl_comm_rank(comm->kc)
                                : comm->device;
    return ncclSuccess;
}

SHIM_API ncclResult_t ncclCommCount(ncclComm_t comm, int *count)
{
    return comm_attr(comm, count, COMM_COUNT, "ncclCommCount");
}

SHIM_API ncclResult_t ncclCommUserRank(ncclComm_t comm, int *rank)
{
    return comm_attr(comm, rank, COMM_RANK, "ncclCommUserRank");
}

SHIM_API ncclResult_t ncclCommCuDevice(ncclComm_t comm, int *device)
{
    return comm_attr(comm, device, COMM_DEVICE, "ncclCommCuDevice");
}

SHIM_API const char *ncclGetErrorString(ncclResult_t result)
{
    switch (result) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError:
        return "unhandled cuda error (run with KCCL_LOG_LEVEL=info for details)";
    case ncclSystemError: return "unhandled system error";
    case ncclInternalError: return "internal error";
    case ncclInvalidArgument: return "invalid argument";
    case ncclInvalidUsage: return "invalid usage";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
    default: return "unknown result code";
    }
}

SHIM_API const char *ncclGetLastError(ncclComm_t comm)
{
    (void)comm; /* the calling thread's last error, whichever communicator it came from */
    return kccl_last_error();
}

/* Groups: kccl's collectives are issued as they come, so a group changes nothing for them. */
static __thread int group_depth;

SHIM_API ncclResult_t ncclGroupStart(void)
{
    group_depth++;
    return ncclSuccess;
}

SHIM_API ncclResult_t ncclGroupEnd(void)
{
    if (group_depth == 0)
        return fail(ncclInvalidUsage, "ncclGroupEnd without ncclGroupStart");
    group_depth--;
    return ncclSuccess;
}

/* kccl_all_reduce and kccl_reduce_scatter: same arguments. */
typedef kccl_status_t (*reduce_fn)(const void *, void *, size_t, kccl_dtype_t, kccl_redop_t,
                                   kccl_comm_t, void *);

/* A reducing call: comm, type and op checked and translated, then fn. */
static ncclResult_t run_reduce(reduce_fn fn, const void *sendbuff, void *recvbuff, size_t count,
                               ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                               cudaStream_t stream)
{
    kccl_dtype_t dt = KCCL_FLOAT32;
    kccl_redop_t kop = KCCL_SUM;
    ncclResult_t r = check_comm(comm);
    if (r == ncclSuccess)
        r = reduce_type(datatype, &dt);
    if (r == ncclSuccess)
        r = reduce_op(op, &kop);
    if (r != ncclSuccess)
        return r;
    return from_kccl(fn(sendbuff, recvbuff, count, dt, kop, comm->kc, stream));
}

SHIM_API ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count,
                                    ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                                    cudaStream_t stream)
{
    return run_reduce(kccl_all_reduce, sendbuff, recvbuff, count, datatype, op, comm, stream);
}

SHIM_API ncclResult_t ncclReduceScatter(const void *sendbuff, void *recvbuff, size_t recvcount,
                                        ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                                        cudaStream_t stream)
{
    return run_reduce(kccl_reduce_scatter, sendbuff, recvbuff, recvcount, datatype, op, comm,
                      stream);
}

SHIM_API ncclResult_t ncclAllGather(const void *sendbuff, void *recvbuff, size_t sendcount,
                                    ncclDataType_t datatype, ncclComm_t comm, cudaStream_t stream)
{
    kccl_dtype_t dt = KCCL_INT32;
    size_t units = 0;
    ncclResult_t r = check_comm(comm);
    if (r == ncclSuccess)
        r = copy_type(datatype, sendcount, &dt, &units);
    return r != ncclSuccess
               ? r
               : from_kccl(kccl_all_gather(sendbuff, recvbuff, units, dt, comm->kc, stream));
}

SHIM_API ncclResult_t ncclBroadcast(const void *sendbuff, void *recvbuff, size_t count,
                                    ncclDataType_t datatype, int root, ncclComm_t comm,
                                    cudaStream_t stream)
{
    kccl_dtype_t dt = KCCL_INT32;
    size_t units = 0;
    ncclResult_t r = check_comm(comm);
    if (r == ncclSuccess)
        r = copy_type(datatype, count, &dt, &units);
    return r != ncclSuccess
               ? r
               : from_kccl(kccl_broadcast(sendbuff, recvbuff, units, dt, root, comm->kc, stream));
}

SHIM_API ncclResult_t ncclBcast(void *buff, size_t count, ncclDataType_t datatype, int root,
                                ncclComm_t comm, cudaStream_t stream)
{
    return ncclBroadcast(buff, buff, count, datatype, root, comm, stream);
}

SHIM_API ncclResult_t ncclReduce(const void *sendbuff, void *recvbuff, size_t count,
                                 ncclDataType_t datatype, ncclRedOp_t op, int root, ncclComm_t comm,
                                 cudaStream_t stream)
{
    (void)sendbuff;
    (void)recvbuff;
    (void)count;
    (void)datatype;
    (void)op;
    (void)root;
    (void)comm;
    (void)stream;
    return fail(ncclInvalidUsage, "ncclReduce is not in kccl's NCCL shim: use ncclAllReduce "
                                  "(every rank gets the result)");
}

SHIM_API ncclResult_t ncclSend(const void *sendbuff, size_t count, ncclDataType_t datatype,
                               int peer, ncclComm_t comm, cudaStream_t stream)
{
    (void)sendbuff;
    (void)count;
    (void)datatype;
    (void)peer;
    (void)comm;
    (void)stream;
    return fail(ncclInvalidUsage, "ncclSend/ncclRecv are not in kccl's NCCL shim yet (point to "
                                  "point: kccl_mem + channels, kccl_channel.h)");
}

SHIM_API ncclResult_t ncclRecv(void *recvbuff, size_t count, ncclDataType_t datatype, int peer,
                               ncclComm_t comm, cudaStream_t stream)
{
    return ncclSend(recvbuff, count, datatype, peer, comm, stream);
}
