/*
 * test_transport_faults.c - a peer that dies gives an error, not a hang.
 *
 * Rank 1 is SIGKILLed by the test (a) while rank 0 waits on a host
 * semaphore, (b) while rank 0 streams large puts and flushes, (c) while
 * rank 0 waits on a port-channel flush behind large puts. Each time rank 0
 * must fail within a few seconds, well before its 20 s timeout, with
 * KCCL_ERR_REMOTE and a message naming rank 1, and tear down in bounded time.
 */
#include "tcp_common.h"

#define LONG_TIMEOUT_MS 20000
#define DETECT_MS       5000

enum { CASE_SEM, CASE_STREAM, CASE_PORT };

typedef struct {
    tt_group_t g;
    int which;
} fault_t;

static int check_failure(kccl_status_t st, int64_t t0)
{
    int64_t took = mp_now_ms() - t0;
    MP_CHECK(st == KCCL_ERR_REMOTE, "expected KCCL_ERR_REMOTE, got %s (%s)", kccl_status_name(st),
             kccl_last_error());
    MP_CHECK(strstr(kccl_last_error(), "rank 1") != NULL, "error does not name rank 1: %s",
             kccl_last_error());
    MP_CHECK(took < DETECT_MS, "took %lld ms to notice", (long long)took);
    snprintf(mp_self()->err, MP_MSG, "%s", kccl_last_error());
    return 0;
}

static int fault_proc(mp_t *mp, int r, void *arg)
{
    fault_t *f = arg;
    kccl_comm_t comm;
    kccl_mem_t buf;
    kccl_rmem_t peers[2];
    kccl_host_sem_t sem;
    kccl_port_channel_t ch;
    const size_t big = 32u << 20;
    f->g.opts.timeout_ms = LONG_TIMEOUT_MS;
    MP_CHECK_OK(kccl_comm_init_rank(&f->g.id, r, 2, &f->g.opts, &comm));
    MP_CHECK_OK(kccl_mem_alloc(comm, big, KCCL_MEM_HOST, &buf));
    MP_CHECK_OK(kccl_mem_exchange(comm, buf, peers));
    MP_CHECK_OK(kccl_host_sem_create(comm, 1 - r, &sem));
    MP_CHECK_OK(kccl_port_channel_create(comm, 1 - r, buf, peers[1 - r], &ch));
    MP_CHECK_OK(kccl_bootstrap_barrier(kccl_comm_bootstrap(comm)));
    if (r == 1) {
        mp_self()->progress = 1; /* the parent kills us now */
        for (;;)
            mp_sleep_ms(1000);
    }
    kccl_link_t l = kccl_comm_link(comm, 1);
    kccl_status_t st = KCCL_OK;
    mp_self()->progress = 1;
    int64_t t0 = 0;
    if (f->which == CASE_SEM) {
        mp_flag_wait(mp, 0, 1, LONG_TIMEOUT_MS); /* rank 1 is dead */
        t0 = mp_now_ms();
        st = kccl_host_sem_wait(sem, LONG_TIMEOUT_MS);
    } else if (f->which == CASE_STREAM) {
        int64_t end = mp_now_ms() + LONG_TIMEOUT_MS;
        while (st == KCCL_OK && mp_now_ms() < end) {
            if (mp_flag_get(mp, 0) && t0 == 0)
                t0 = mp_now_ms();
            st = kccl_link_put(l, peers[1], 0, buf, 0, big);
            if (st == KCCL_OK)
                st = kccl_link_flush(l, LONG_TIMEOUT_MS);
        }
        if (t0 == 0)
            t0 = mp_now_ms();
    } else {
        for (int i = 0; i < 8 && st == KCCL_OK; i++)
            st = kccl_port_channel_put(ch, 0, 0, big);
        mp_flag_wait(mp, 0, 1, LONG_TIMEOUT_MS);
        t0 = mp_now_ms();
        if (st == KCCL_OK)
            st = kccl_port_channel_flush(ch, LONG_TIMEOUT_MS);
    }
    if (check_failure(st, t0))
        return 1;
    /* The link stays failed; teardown is bounded. */
    MP_CHECK(kccl_link_put(l, peers[1], 0, buf, 0, 8) == KCCL_ERR_REMOTE, "put after failure");
    kccl_port_channel_destroy(ch);
    kccl_host_sem_destroy(sem);
    kccl_rmem_release(peers[1]);
    kccl_mem_deregister(buf);
    int64_t t1 = mp_now_ms();
    kccl_comm_destroy(comm);
    MP_CHECK(mp_now_ms() - t1 < LONG_TIMEOUT_MS, "teardown took %lld ms",
             (long long)(mp_now_ms() - t1));
    return 0;
}

static void run_fault(int which, const char *name)
{
    fault_t f;
    tt_group_init(&f.g, 2);
    f.g.log_level = "none";
    f.which = which;
    mp_opts_t mo = {.name = name,
                    .nprocs = 2,
                    .deadline_ms = 60000,
                    .fn = fault_proc,
                    .arg = &f,
                    .ids = &f.g.id,
                    .nids = 1,
                    .root_proc = 0,
                    .log_level = "none"};
    mp_t *mp = mp_start(&mo);
    assert_int_equal(mp_progress_wait(mp, 1, 1, 20000), 0);
    assert_int_equal(mp_progress_wait(mp, 0, 1, 20000), 0);
    if (which == CASE_STREAM)
        mp_sleep_ms(300); /* let some transfers run */
    mp_kill(mp, 1);
    mp_flag_set(mp, 0, 1);
    assert_int_equal(mp_wait_proc(mp, 0, 30000), 0);
    mp_wait_all(mp);
    mp_assert_all_ok(mp);
    mp_free(mp);
}

static void test_peer_killed_during_semaphore_wait(void **state)
{
    (void)state;
    run_fault(CASE_SEM, "kill_sem");
}

static void test_peer_killed_during_stream(void **state)
{
    (void)state;
    run_fault(CASE_STREAM, "kill_stream");
}

static void test_peer_killed_during_port_flush(void **state)
{
    (void)state;
    run_fault(CASE_PORT, "kill_port");
}

int main(void)
{
    setenv("KCCL_TRANSPORT", "tcp", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_peer_killed_during_semaphore_wait, mp_cleanup_all),
        cmocka_unit_test_teardown(test_peer_killed_during_stream, mp_cleanup_all),
        cmocka_unit_test_teardown(test_peer_killed_during_port_flush, mp_cleanup_all),
    };
    return cmocka_run_group_tests_name("transport_faults", tests, NULL, NULL);
}
