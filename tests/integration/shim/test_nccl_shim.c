/*
 * test_nccl_shim.c - a program written against NCCL's API, linked with kccl's
 * libnccl.so.2 (runtime/shim), run as 4 processes on loopback with host
 * buffers (the CPU path): rank 0's ncclGetUniqueId travels to the others as
 * NCCL programs pass it (here through shared memory), every rank joins with
 * ncclCommInitRank, and the collectives give exact results (inputs are small
 * integers, so sums are exact in every type); copies of 1- and 8-byte types;
 * errors come back as NCCL result codes with ncclGetLastError saying why.
 */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "kccl_test.h"
#include "mp.h"

/* The parts of NCCL's API this program uses, as a program would declare them from nccl.h. */
typedef struct {
    char internal[128];
} ncclUniqueId;
typedef struct ncclComm *ncclComm_t;
typedef int ncclResult_t;
enum { ncclSuccess = 0, ncclInvalidArgument = 4, ncclInvalidUsage = 5 };
enum { ncclUint8 = 1, ncclInt32 = 2, ncclInt64 = 4, ncclFloat16 = 6, ncclFloat32 = 7 };
enum { ncclFloat64 = 8, ncclBfloat16 = 9 };
enum { ncclSum = 0, ncclProd = 1, ncclMax = 2, ncclAvg = 4 };
ncclResult_t ncclGetVersion(int *version);
ncclResult_t ncclGetUniqueId(ncclUniqueId *uid);
ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank);
ncclResult_t ncclCommDestroy(ncclComm_t comm);
ncclResult_t ncclCommCount(ncclComm_t comm, int *count);
ncclResult_t ncclCommUserRank(ncclComm_t comm, int *rank);
ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *err);
const char *ncclGetErrorString(ncclResult_t r);
const char *ncclGetLastError(ncclComm_t comm);
ncclResult_t ncclGroupStart(void);
ncclResult_t ncclGroupEnd(void);
ncclResult_t ncclAllReduce(const void *s, void *r, size_t count, int dt, int op, ncclComm_t comm,
                           void *stream);
ncclResult_t ncclReduceScatter(const void *s, void *r, size_t recvcount, int dt, int op,
                               ncclComm_t comm, void *stream);
ncclResult_t ncclAllGather(const void *s, void *r, size_t sendcount, int dt, ncclComm_t comm,
                           void *stream);
ncclResult_t ncclBroadcast(const void *s, void *r, size_t count, int dt, int root, ncclComm_t comm,
                           void *stream);
ncclResult_t ncclBcast(void *buf, size_t count, int dt, int root, ncclComm_t comm, void *stream);
ncclResult_t ncclSend(const void *s, size_t count, int dt, int peer, ncclComm_t comm, void *stream);

#define NRANKS 4
#define COUNT  1003 /* not a multiple of the rank count */

#define NCCL_OK(call)                                                                              \
    do {                                                                                           \
        ncclResult_t r_ = (call);                                                                  \
        MP_CHECK(r_ == ncclSuccess, "%s -> %d (%s): %s", #call, r_, ncclGetErrorString(r_),        \
                 ncclGetLastError(NULL));                                                          \
    } while (0)

/* Rank 0 makes the id and publishes it in its slot; the others wait for it. */
static int share_id(mp_t *mp, int rank, ncclUniqueId *id)
{
    mp_slot_t *root = mp_slot(mp, 0);
    _Static_assert(sizeof(id->internal) <= sizeof(root->text), "slot text too small");
    if (rank == 0) {
        NCCL_OK(ncclGetUniqueId(id));
        memcpy(root->text, id->internal, sizeof(id->internal));
        __atomic_store_n(&root->progress, 1, __ATOMIC_RELEASE);
        return 0;
    }
    int64_t end = mp_now_ms() + 20000;
    while (__atomic_load_n(&root->progress, __ATOMIC_ACQUIRE) < 1) {
        MP_CHECK(mp_now_ms() < end, "rank 0 published no unique id within 20 s");
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    memcpy(id->internal, root->text, sizeof(id->internal));
    return 0;
}

/* Rank's communicator of NRANKS, from rank 0's id. */
static int join(mp_t *mp, int rank, ncclComm_t *comm)
{
    ncclUniqueId id;
    if (share_id(mp, rank, &id))
        return 1;
    NCCL_OK(ncclCommInitRank(comm, NRANKS, id, rank));
    return 0;
}

static uint16_t half_of(int v) /* small non-negative integers only (exact) */
{
    if (v == 0)
        return 0;
    int e = 0;
    while ((v >> e) > 1)
        e++;
    return (uint16_t)((e + 15) << 10 | ((v << (10 - e)) & 0x3FF));
}

static int collectives(mp_t *mp, int rank, void *arg)
{
    (void)arg;
    ncclComm_t comm = NULL;
    int version = 0, n = 0, me = -1;
    NCCL_OK(ncclGetVersion(&version));
    MP_CHECK(version >= 21800, "ncclGetVersion gave %d", version);
    if (join(mp, rank, &comm))
        return 1;
    NCCL_OK(ncclCommCount(comm, &n));
    NCCL_OK(ncclCommUserRank(comm, &me));
    MP_CHECK(n == NRANKS && me == rank, "count %d, rank %d", n, me);

    /* all-reduce float32 sum, inside a group; avg in place */
    static float fs[COUNT], fr[COUNT];
    for (int i = 0; i < COUNT; i++)
        fs[i] = (float)(rank * 1000 + i % 97);
    NCCL_OK(ncclGroupStart());
    NCCL_OK(ncclAllReduce(fs, fr, COUNT, ncclFloat32, ncclSum, comm, NULL));
    NCCL_OK(ncclGroupEnd());
    for (int i = 0; i < COUNT; i++)
        MP_CHECK(fr[i] == (float)(6000 + 4 * (i % 97)), "sum[%d] = %g", i, (double)fr[i]);
    NCCL_OK(ncclAllReduce(fs, fs, COUNT, ncclFloat32, ncclAvg, comm, NULL));
    for (int i = 0; i < COUNT; i++)
        MP_CHECK(fs[i] == (float)(1500 + i % 97), "avg[%d] = %g", i, (double)fs[i]);

    /* reduce-scatter float16 max: block r of the result goes to rank r */
    static uint16_t hs[NRANKS * 5], hr[5];
    for (int i = 0; i < NRANKS * 5; i++)
        hs[i] = half_of(rank == 2 ? 100 + i : i);
    NCCL_OK(ncclReduceScatter(hs, hr, 5, ncclFloat16, ncclMax, comm, NULL));
    for (int i = 0; i < 5; i++)
        MP_CHECK(hr[i] == half_of(100 + rank * 5 + i), "rs[%d] = 0x%04x", i, hr[i]);

    /* all-gather of 8-byte integers (copied as 4-byte units), in place */
    static int64_t ag[NRANKS * 3];
    for (int i = 0; i < 3; i++)
        ag[rank * 3 + i] = ((int64_t)rank << 40) + i;
    NCCL_OK(ncclAllGather(ag + rank * 3, ag, 3, ncclInt64, comm, NULL));
    for (int i = 0; i < NRANKS * 3; i++)
        MP_CHECK(ag[i] == ((int64_t)(i / 3) << 40) + i % 3, "ag[%d] = %lld", i, (long long)ag[i]);

    /* broadcast float64 from rank 2; ncclBcast of 6 bytes (2-byte units) from rank 1 */
    double ds[7], dr[7];
    for (int i = 0; i < 7; i++)
        ds[i] = rank == 2 ? 0.25 * i : -1.0;
    NCCL_OK(ncclBroadcast(ds, dr, 7, ncclFloat64, 2, comm, NULL));
    for (int i = 0; i < 7; i++)
        MP_CHECK(dr[i] == 0.25 * i, "bcast[%d] = %g", i, dr[i]);
    unsigned char b[6];
    memset(b, rank == 1 ? 0xA5 : 0, sizeof(b));
    NCCL_OK(ncclBcast(b, 6, ncclUint8, 1, comm, NULL));
    for (int i = 0; i < 6; i++)
        MP_CHECK(b[i] == 0xA5, "ncclBcast byte %d = 0x%02x", i, b[i]);

    ncclResult_t async = 1;
    NCCL_OK(ncclCommGetAsyncError(comm, &async));
    MP_CHECK(async == ncclSuccess, "async error %d", async);
    NCCL_OK(ncclCommDestroy(comm));
    return 0;
}

/* Every rank checks the same refusals before any data moves, so none leaves a peer waiting. */
static int refusals(mp_t *mp, int rank, void *arg)
{
    (void)arg;
    ncclComm_t comm = NULL;
    if (join(mp, rank, &comm))
        return 1;
    double d[4] = {0};
    unsigned char odd[3] = {0};
    ncclResult_t r = ncclAllReduce(d, d, 4, ncclFloat64, ncclSum, comm, NULL);
    MP_CHECK(r == ncclInvalidArgument && strstr(ncclGetLastError(comm), "ncclFloat64"),
             "float64 all-reduce: %d, '%s'", r, ncclGetLastError(comm));
    r = ncclAllReduce(d, d, 4, ncclFloat32, ncclProd, comm, NULL);
    MP_CHECK(r == ncclInvalidArgument && strstr(ncclGetLastError(comm), "ncclProd"),
             "prod: %d, '%s'", r, ncclGetLastError(comm));
    r = ncclBcast(odd, 3, ncclUint8, 0, comm, NULL);
    MP_CHECK(r == ncclInvalidArgument && strstr(ncclGetLastError(comm), "odd number of bytes"),
             "3-byte broadcast: %d, '%s'", r, ncclGetLastError(comm));
    r = ncclSend(d, 4, ncclFloat32, (rank + 1) % NRANKS, comm, NULL);
    MP_CHECK(r == ncclInvalidUsage, "ncclSend: %d", r);
    MP_CHECK(ncclGroupEnd() == ncclInvalidUsage, "ncclGroupEnd without a start was accepted");
    r = ncclAllReduce(d, d, 4, ncclFloat32, ncclSum, NULL, NULL);
    MP_CHECK(r == ncclInvalidArgument, "NULL comm: %d", r);
    /* still usable after the refusals */
    float f = 1.0f;
    NCCL_OK(ncclAllReduce(&f, &f, 1, ncclFloat32, ncclSum, comm, NULL));
    MP_CHECK(f == (float)NRANKS, "after refusals: %g", (double)f);
    NCCL_OK(ncclCommDestroy(comm));
    return 0;
}

static void run(mp_fn fn, const char *name)
{
    mp_opts_t o = {.name = name, .nprocs = NRANKS, .deadline_ms = 60000, .fn = fn};
    mp_t *mp = mp_start(&o);
    mp_wait_all(mp);
    mp_assert_all_ok(mp);
    mp_free(mp);
}

static void test_shim_collectives(void **state)
{
    (void)state;
    run(collectives, "nccl_shim_collectives");
}

static void test_shim_refusals(void **state)
{
    (void)state;
    run(refusals, "nccl_shim_refusals");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_shim_collectives, mp_cleanup_all),
        cmocka_unit_test_teardown(test_shim_refusals, mp_cleanup_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
