/*
 * test_coll_faults.c - the collectives' failure behaviour on host buffers:
 * every documented argument error (bad dtype, op, root; avg on int32; NULL
 * buffers; overflowing counts; send and receive buffers of different kinds,
 * using the fake GPU table from the transport tests), and a rank killed
 * while the others are inside an all-reduce: each survivor returns
 * KCCL_ERR_REMOTE naming the lost rank long before the deadline, and the
 * communicator then refuses further collectives instead of hanging. And a
 * rank that stays alive but never joins: the others give up at the
 * communicator's deadline (one with KCCL_ERR_TIMED_OUT naming the peer it
 * waited for, the other hearing that it gave up), not later.
 */
#include <stdio.h>
#include <stdlib.h>

#include "../transport/fake_gpu.h"
#include "coll/coll_cpu.h"
#include "kccl/kccl_coll.h"
#include "kccl/kccl_comm.h"
#include "kccl_test.h"
#include "mp.h"

#ifndef KCCL_ITEST_SLOWDOWN
#define KCCL_ITEST_SLOWDOWN 1
#endif
#define TIMEOUT_MS (10000 * KCCL_ITEST_SLOWDOWN)

static void expect(kccl_status_t got, kccl_status_t want, const char *needle, const char *what)
{
    if (got != want)
        fail_msg("%s: %s, expected %s (%s)", what, kccl_status_name(got), kccl_status_name(want),
                 kccl_last_error());
    if (needle && strstr(kccl_last_error(), needle) == NULL)
        fail_msg("%s: the error '%s' does not say '%s'", what, kccl_last_error(), needle);
}

static void test_coll_bad_args(void **state)
{
    (void)state;
    kccl_bootstrap_opts_t o;
    kccl_unique_id_t id;
    kccl_comm_t comm;
    mp_test_opts(&o, TIMEOUT_MS);
    mp_make_id(&o, &id);
    assert_int_equal(kccl_comm_init_rank(&id, 0, 1, &o, &comm), KCCL_OK);
    float a[8] = {1, 2, 3, 4, 5, 6, 7, 8}, b[8];
    const kccl_status_t INV = KCCL_ERR_INVALID_ARG;
    expect(kccl_all_reduce(a, b, 8, (kccl_dtype_t)7, KCCL_SUM, comm, NULL), INV, "data type",
           "bad dtype");
    expect(kccl_all_gather(a, b, 1, (kccl_dtype_t)-1, comm, NULL), INV, "data type", "bad dtype");
    expect(kccl_all_reduce(a, b, 8, KCCL_FLOAT32, (kccl_redop_t)4, comm, NULL), INV, "reduction",
           "bad op");
    expect(kccl_reduce_scatter(a, b, 8, KCCL_FLOAT32, (kccl_redop_t)-2, comm, NULL), INV,
           "reduction", "bad op");
    expect(kccl_all_reduce(a, b, 8, KCCL_INT32, KCCL_AVG, comm, NULL), INV, "avg", "avg on int32");
    expect(kccl_broadcast(a, b, 8, KCCL_FLOAT32, 1, comm, NULL), INV, "root 1", "root 1 of 1");
    expect(kccl_broadcast(a, b, 8, KCCL_FLOAT32, -1, comm, NULL), INV, "root -1", "root -1");
    expect(kccl_all_reduce(a, NULL, 8, KCCL_FLOAT32, KCCL_SUM, comm, NULL), INV, "NULL",
           "NULL recvbuf");
    expect(kccl_all_gather(NULL, b, 8, KCCL_FLOAT32, comm, NULL), INV, "NULL", "NULL sendbuf");
    expect(kccl_all_reduce(a, b, SIZE_MAX / 2, KCCL_FLOAT32, KCCL_SUM, comm, NULL), INV,
           "overflows", "huge count");
    expect(kccl_all_reduce(a, b, 8, KCCL_FLOAT32, KCCL_SUM, NULL, NULL), INV, "communicator",
           "NULL comm");
    /* Count 0 with NULL buffers is a no-op; a root's broadcast works with n = 1. */
    expect(kccl_all_reduce(NULL, NULL, 0, KCCL_FLOAT32, KCCL_SUM, comm, NULL), KCCL_OK, NULL,
           "count 0");
    expect(kccl_broadcast(a, b, 8, KCCL_FLOAT32, 0, comm, NULL), KCCL_OK, NULL, "broadcast");
    assert_memory_equal(a, b, sizeof(a));
    /* A "device" buffer (the fake GPU table) with a host one: refused, naming both kinds. */
    void *dev = NULL;
    kccl_gpu_set_ops(&fake_gpu_ops);
    assert_int_equal(fake_dev_alloc(&dev, 64, 0), KCCL_OK);
    expect(kccl_all_reduce(a, dev, 8, KCCL_FLOAT32, KCCL_SUM, comm, NULL), INV,
           "send buffer is host memory but receive buffer is device memory", "host -> device");
    expect(kccl_all_gather(dev, b, 4, KCCL_FLOAT32, comm, NULL), INV,
           "send buffer is device memory but receive buffer is host memory", "device -> host");
    fake_dev_free(dev, 0);
    kccl_gpu_set_ops(NULL);
    kccl_comm_destroy(comm);
}

/* ---------------------------------------------------- a rank killed */

enum { KILLED = 3, NRANKS = 4, BIG = 1 << 18 };

typedef struct {
    kccl_bootstrap_opts_t opts;
    kccl_unique_id_t id;
} kill_case_t;

static int killed_proc(mp_t *mp, int rank, void *arg)
{
    kill_case_t *kc = arg;
    kccl_comm_t comm;
    (void)mp;
    kccl_coll_cpu_set_chunk_bytes(16384);
    float *buf = calloc(BIG, sizeof(float));
    MP_CHECK(buf != NULL, "out of memory");
    MP_CHECK_OK(kccl_comm_init_rank(&kc->id, rank, NRANKS, &kc->opts, &comm));
    for (int it = 0; it < 2; it++)
        MP_CHECK_OK(kccl_all_reduce(buf, buf, BIG, KCCL_FLOAT32, KCCL_SUM, comm, NULL));
    if (rank == KILLED) { /* stays out of the third: the parent kills it meanwhile */
        __atomic_store_n(&mp_self()->progress, 1, __ATOMIC_RELEASE);
        mp_sleep_ms(4LL * TIMEOUT_MS);
        MP_CHECK(0, "rank %d was not killed", rank);
    }
    int64_t t0 = mp_now_ms();
    kccl_status_t st = kccl_all_reduce(buf, buf, BIG, KCCL_FLOAT32, KCCL_SUM, comm, NULL);
    int64_t took = mp_now_ms() - t0;
    snprintf(mp_self()->err, sizeof(mp_self()->err), "%s", kccl_last_error());
    MP_CHECK(st == KCCL_ERR_REMOTE, "all-reduce with a dead rank: %s: %s", kccl_status_name(st),
             kccl_last_error());
    MP_CHECK(strstr(kccl_last_error(), "rank 3") != NULL, "the error does not name rank 3: %s",
             kccl_last_error());
    MP_CHECK(strstr(kccl_last_error(), "all-reduce") != NULL,
             "the error does not say which "
             "collective: %s",
             kccl_last_error());
    MP_CHECK(took < TIMEOUT_MS / 2, "the failure took %lld ms (deadline %d ms)", (long long)took,
             TIMEOUT_MS);
    /* The communicator is failed for good: the next call fails at once. */
    t0 = mp_now_ms();
    st = kccl_all_reduce(buf, buf, 16, KCCL_FLOAT32, KCCL_SUM, comm, NULL);
    MP_CHECK(st != KCCL_OK && mp_now_ms() - t0 < 1000, "a collective after the failure: %s",
             kccl_status_name(st));
    kccl_comm_destroy(comm);
    free(buf);
    return 0;
}

static void test_coll_peer_killed(void **state)
{
    (void)state;
    kill_case_t kc;
    mp_test_opts(&kc.opts, TIMEOUT_MS);
    mp_make_id(&kc.opts, &kc.id);
    mp_opts_t mo = {.name = "coll_killed",
                    .nprocs = NRANKS,
                    .deadline_ms = 4LL * TIMEOUT_MS,
                    .fn = killed_proc,
                    .arg = &kc,
                    .ids = &kc.id,
                    .nids = 1,
                    .root_proc = 0};
    mp_t *mp = mp_start(&mo);
    if (mp_progress_wait(mp, KILLED, 1, 3LL * TIMEOUT_MS) != 0) {
        mp_report_proc(mp, KILLED);
        fail_msg("rank %d never reached the third all-reduce", KILLED);
    }
    mp_sleep_ms(200); /* the others are inside the third all-reduce by now */
    mp_kill(mp, KILLED);
    mp_wait_all(mp);
    mp_assert_all_ok(mp);
    for (int r = 0; r < NRANKS - 1; r++)
        print_message("rank %d: %s\n", r, mp_slot(mp, r)->err);
    mp_free(mp);
}

/* ------------------------------------------- a rank that stops calling */

#define STALL_TIMEOUT_MS (1500 * KCCL_ITEST_SLOWDOWN)

static int stalled_proc(mp_t *mp, int rank, void *arg)
{
    kill_case_t *kc = arg;
    kccl_comm_t comm;
    float buf[1024] = {0};
    (void)mp;
    MP_CHECK_OK(kccl_comm_init_rank(&kc->id, rank, 3, &kc->opts, &comm));
    MP_CHECK_OK(kccl_all_reduce(buf, buf, 1024, KCCL_FLOAT32, KCCL_SUM, comm, NULL));
    if (rank == 2) { /* alive, connected, but never joins the second all-reduce */
        mp_sleep_ms(3LL * STALL_TIMEOUT_MS);
        kccl_comm_destroy(comm);
        return 0;
    }
    int64_t t0 = mp_now_ms();
    kccl_status_t st = kccl_all_reduce(buf, buf, 1024, KCCL_FLOAT32, KCCL_SUM, comm, NULL);
    int64_t took = mp_now_ms() - t0;
    snprintf(mp_self()->err, sizeof(mp_self()->err), "%s", kccl_last_error());
    MP_CHECK(st == KCCL_ERR_TIMED_OUT || st == KCCL_ERR_REMOTE || st == KCCL_ERR_ABORTED,
             "all-reduce with a silent rank: %s: %s", kccl_status_name(st), kccl_last_error());
    MP_CHECK(took >= STALL_TIMEOUT_MS / 2 && took < 2LL * STALL_TIMEOUT_MS,
             "gave up after %lld ms; the deadline is %d ms", (long long)took, STALL_TIMEOUT_MS);
    /* Whoever reaches its deadline first says so (rank 0 waits on rank 2, rank 1 on rank 0:
     * which one that is depends on scheduling); the other hears that it gave up. */
    MP_CHECK(strstr(kccl_last_error(), "timed out") || strstr(kccl_last_error(), "gave up"),
             "the error says neither: %s", kccl_last_error());
    mp_self()->status = st;
    kccl_comm_destroy(comm);
    return 0;
}

static void test_coll_deadline(void **state)
{
    (void)state;
    kill_case_t kc;
    mp_test_opts(&kc.opts, STALL_TIMEOUT_MS);
    mp_make_id(&kc.opts, &kc.id);
    mp_opts_t mo = {.name = "coll_stalled",
                    .nprocs = 3,
                    .deadline_ms = 10LL * STALL_TIMEOUT_MS,
                    .fn = stalled_proc,
                    .arg = &kc,
                    .ids = &kc.id,
                    .nids = 1,
                    .root_proc = 0};
    mp_t *mp = mp_start(&mo);
    mp_wait_all(mp);
    mp_assert_all_ok(mp);
    for (int r = 0; r < 2; r++)
        print_message("rank %d: %s\n", r, mp_slot(mp, r)->err);
    assert_true(mp_slot(mp, 0)->status == KCCL_ERR_TIMED_OUT ||
                mp_slot(mp, 1)->status == KCCL_ERR_TIMED_OUT);
    mp_free(mp);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_coll_bad_args, mp_cleanup_all),
        cmocka_unit_test_teardown(test_coll_peer_killed, mp_cleanup_all),
        cmocka_unit_test_teardown(test_coll_deadline, mp_cleanup_all),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
