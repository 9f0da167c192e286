/*
 * test_bootstrap_rank_faults.c - real ranks that die or are misconfigured.
 *
 * A rank SIGKILLed before it checks in, after it checked in (while the root
 * waits for a held-back last rank), or in the middle of a barrier/all-gather
 * loop: every survivor must return an error within the deadline, and the
 * error must name the lost rank where the survivor could know it. A rank
 * with the wrong secret, a second process with a rank already taken and a
 * rank with the wrong world size are refused with errors that say so, while
 * the root keeps serving and the group forms with the legitimate processes.
 */
#include <stdio.h>

#include "faults.h"
#include "kccl_test.h"

/* Bootstrap timeout. Time bounds below leave room for a loaded 2-core box (ctest -j2). */
#define T_MS 3000

/* A create that is expected to fail: records what happened, returns 0 if it failed. */
static int create_expect_failure(fault_group_t *g, int r)
{
    kccl_bootstrap_t bs = NULL;
    int64_t t0 = mp_now_ms();
    kccl_status_t st = kccl_bootstrap_create(&g->id, r, g->nranks, &g->opts, &bs);
    fault_record(st, t0);
    MP_CHECK(st != KCCL_OK, "rank %d bootstrapped although it should have failed", r);
    MP_CHECK(bs == NULL, "output set on failure");
    return 0;
}

static void print_outcomes(mp_t *mp, int64_t since)
{
    for (int p = 0; p < mp_nprocs(mp); p++) {
        mp_slot_t *s = mp_slot(mp, p);
        if (s->when_ms == 0)
            continue;
        print_message("  proc %d: %s after %lld ms (%+lld ms from the fault): %s\n", p,
                      kccl_status_name((kccl_status_t)s->status), (long long)s->elapsed_ms,
                      (long long)(s->when_ms - since), s->err);
    }
}

/* ------------------------------------------------ killed before check-in */

#define VICTIM 2

static int never_checks_in_proc(mp_t *mp, int p, void *arg)
{
    fault_group_t *g = arg;
    if (p == VICTIM) { /* never gets going: killed while it waits */
        mp_flag_wait(mp, FLAG_GO, 1, 60000);
        return 1;
    }
    return create_expect_failure(g, p);
}

static void test_rank_killed_before_checkin(void **state)
{
    (void)state;
    fault_group_t g;
    fault_group_init(&g, 4, T_MS);
    mp_t *mp = fault_start(&g, "killed_before", 4, never_checks_in_proc, NULL);
    int64_t t0 = mp_now_ms();
    mp_kill(mp, VICTIM);
    mp_wait_all(mp);
    mp_assert_all_ok(mp);
    print_outcomes(mp, t0);
    /* The root gives up a little before the ranks would and tells them who is missing. */
    assert_int_equal(mp_slot(mp, 0)->status, KCCL_ERR_TIMED_OUT);
    fault_assert_says(mp, 0, "missing rank(s) 2", "3 of 4 ranks checked in", NULL);
    for (int p = 1; p < 4; p++) {
        if (p == VICTIM)
            continue;
        assert_int_equal(mp_slot(mp, p)->status, KCCL_ERR_REMOTE);
        fault_assert_says(mp, p, "lost rank 2", "never checked in", NULL);
    }
    for (int p = 0; p < 4; p++)
        if (p != VICTIM)
            assert_true(mp_slot(mp, p)->when_ms - t0 < T_MS + 1500);
    mp_free(mp);
}

/* ------------------------------------------- killed after check-in */

static int dies_after_checkin_proc(mp_t *mp, int p, void *arg)
{
    fault_group_t *g = arg;
    int r = fault_rank(mp, g, p);
    MP_CHECK(r >= 0, "not released");
    return create_expect_failure(g, r);
}

/* Polls the proc's log for needle; 0 once it is there, -1 at the timeout. */
static int wait_logged(mp_t *mp, int proc, const char *needle, int64_t timeout_ms)
{
    char path[600];
    int64_t end = mp_now_ms() + timeout_ms;
    mp_log_path(mp, proc, path, sizeof(path));
    do {
        char *log = mp_read_file(path);
        int found = log && strstr(log, needle);
        free(log);
        if (found)
            return 0;
        mp_sleep_ms(5);
    } while (mp_now_ms() < end);
    return -1;
}

static void test_rank_killed_after_checkin(void **state)
{
    (void)state;
    fault_group_t g;
    fault_group_init(&g, 4, T_MS);
    g.held_proc = 3; /* the root waits for it */
    /* The root's debug log says when each rank checked in. */
    mp_t *mp = fault_start(&g, "killed_after", 4, dies_after_checkin_proc, "debug");
    for (int r = 1; r <= VICTIM; r++) {
        char needle[64];
        snprintf(needle, sizeof(needle), "root: rank %d checked in", r);
        if (wait_logged(mp, 0, needle, T_MS) != 0) {
            mp_report_proc(mp, 0);
            fail_msg("the root never logged '%s'", needle);
        }
    }
    int64_t t0 = mp_now_ms();
    pid_t victim = mp_pid(mp, VICTIM);
    mp_kill(mp, VICTIM);
    /* The held rank comes only after the root has given up. */
    assert_int_equal(mp_wait_proc(mp, 0, T_MS + 2000), 0);
    mp_flag_set(mp, FLAG_GO, 1);
    mp_wait_all(mp);
    mp_assert_all_ok(mp);
    print_outcomes(mp, t0);
    char pid[32];
    snprintf(pid, sizeof(pid), "pid %d", (int)victim);
    assert_int_equal(mp_slot(mp, 0)->status, KCCL_ERR_REMOTE);
    fault_assert_says(mp, 0, "lost rank 2", pid, "after it checked in", NULL);
    assert_true(mp_slot(mp, 0)->when_ms - t0 < T_MS / 2); /* noticed at once, not at a timeout */
    assert_int_equal(mp_slot(mp, 1)->status, KCCL_ERR_REMOTE);
    fault_assert_says(mp, 1, "lost rank 2", "went away after checking in", NULL);
    assert_true(mp_slot(mp, 1)->when_ms - t0 < T_MS / 2);
    /* The late rank finds no root any more and fails within its own deadline. Under a
     * parallel ctest another test's root may have bound the dead root's port by then: the
     * late rank must then refuse that group by its nonce (seen under TSan in CI). */
    kccl_status_t late = (kccl_status_t)mp_slot(mp, 3)->status;
    if (late == KCCL_ERR_PROTOCOL)
        fault_assert_says(mp, 3, "nonce names another group", NULL);
    else
        assert_true(late == KCCL_ERR_TIMED_OUT || late == KCCL_ERR_REMOTE);
    assert_true(mp_slot(mp, 3)->elapsed_ms < T_MS + 2000);
    mp_free(mp);
}

/* -------------------------------------------- killed inside a loop */

#define LOOP_N      8
#define LOOP_VICTIM 3

static int loop_proc(mp_t *mp, int p, void *arg)
{
    fault_group_t *g = arg;
    kccl_bootstrap_t bs;
    uint64_t blk[LOOP_N];
    MP_CHECK_OK(kccl_bootstrap_create(&g->id, p, g->nranks, &g->opts, &bs));
    kccl_status_t st = KCCL_OK;
    int64_t t0 = mp_now_ms();
    for (int64_t it = 1; st == KCCL_OK && mp_now_ms() - t0 < 15000; it++) {
        st = kccl_bootstrap_barrier(bs);
        if (st == KCCL_OK) {
            blk[p] = (uint64_t)it << 8 | (uint64_t)p;
            st = kccl_bootstrap_all_gather(bs, blk, sizeof(blk[0]));
        }
        for (int q = 0; st == KCCL_OK && q < LOOP_N; q++)
            MP_CHECK(blk[q] == ((uint64_t)it << 8 | (uint64_t)q), "iteration %lld, slot %d",
                     (long long)it, q);
        __atomic_store_n(&mp_self()->progress, it, __ATOMIC_RELEASE);
    }
    fault_record(st, t0);
    MP_CHECK(st == KCCL_ERR_REMOTE || st == KCCL_ERR_TIMED_OUT, "the loop ended with %s: %s",
             kccl_status_name(st), kccl_last_error());
    /* The bootstrap stays failed: no call blocks again. */
    MP_CHECK(kccl_bootstrap_barrier(bs) == st, "a barrier after the failure");
    kccl_bootstrap_destroy(bs);
    return 0;
}

static void test_rank_killed_during_collectives(void **state)
{
    (void)state;
    fault_group_t g;
    fault_group_init(&g, LOOP_N, T_MS);
    mp_t *mp = fault_start(&g, "killed_in_loop", LOOP_N, loop_proc, NULL);
    for (int p = 0; p < LOOP_N; p++)
        fault_await_progress(mp, p, 20, 20000);
    int64_t t0 = mp_now_ms();
    mp_kill(mp, LOOP_VICTIM);
    mp_wait_all(mp);
    mp_assert_all_ok(mp);
    print_outcomes(mp, t0);
    int naming = 0;
    for (int p = 0; p < LOOP_N; p++) {
        if (p == LOOP_VICTIM)
            continue;
        assert_true(mp_slot(mp, p)->when_ms - t0 < T_MS + 2000);
        naming += strstr(mp_slot(mp, p)->err, "lost rank 3") != NULL;
    }
    print_message("  %d of %d survivors name the lost rank\n", naming, LOOP_N - 1);
    /* Its ring neighbours exchange with it directly (or hear from those who do). */
    fault_assert_says(mp, LOOP_VICTIM - 1, "lost rank 3", NULL);
    fault_assert_says(mp, LOOP_VICTIM + 1, "lost rank 3", NULL);
    mp_free(mp);
}

/* ---------------------------------------------- misconfigured ranks */

/*
 * procs: 0..n-1 are ranks 0..n-1 except that proc `bad` is misconfigured
 * (secret, world size) or a duplicate, and proc n (the replacement or the
 * last rank) is held until the bad one is done.
 */
typedef struct {
    int bad_proc;
    int bad_world; /* world size the bad proc claims, 0: the real one */
    const uint8_t *bad_secret;
    int either_may_lose; /* duplicates: the bad one is whichever the root refuses */
} misfit_t;

static int misfit_proc(mp_t *mp, int p, void *arg)
{
    fault_group_t *g = arg;
    misfit_t *m = g->extra;
    kccl_bootstrap_t bs = NULL;
    kccl_bootstrap_opts_t o = g->opts;
    int r = fault_rank(mp, g, p), n = g->nranks;
    MP_CHECK(r >= 0, "not released");
    if (p == m->bad_proc && m->bad_secret)
        memcpy(o.secret, m->bad_secret, sizeof(o.secret));
    if (p == m->bad_proc && m->bad_world)
        n = m->bad_world;
    int64_t t0 = mp_now_ms();
    kccl_status_t st = kccl_bootstrap_create(&g->id, r, n, &o, &bs);
    fault_record(st, t0);
    if (p == m->bad_proc || (m->either_may_lose && st != KCCL_OK)) {
        if (st != KCCL_OK) {
            MP_CHECK(bs == NULL, "output set on failure");
            return 0;
        }
        MP_CHECK(m->either_may_lose, "the misconfigured rank bootstrapped");
    }
    MP_CHECK(st == KCCL_OK, "create: %s: %s", kccl_status_name(st), kccl_last_error());
    mp_flag_set(mp, FLAG_DONE, 1);
    return fault_serve_until_done(mp, bs);
}

static mp_t *run_misfit(fault_group_t *g, misfit_t *m, const int *proc_rank, int nprocs,
                        const char *name, int64_t *bad_done)
{
    g->extra = m;
    g->proc_rank = proc_rank;
    g->held_proc = nprocs - 1;
    mp_t *mp = fault_start(g, name, nprocs, misfit_proc, NULL);
    /* Release the held proc once the misfit (or, for duplicates, one of them) is out. */
    int64_t end = mp_now_ms() + 2 * T_MS + 5000;
    int out = -1;
    while (out < 0 && mp_now_ms() < end) {
        for (int p = 0; p < nprocs - 1 && out < 0; p++) {
            int cand =
                p == m->bad_proc || (m->either_may_lose && proc_rank[p] == proc_rank[m->bad_proc]);
            if (cand && mp_wait_proc(mp, p, 0) == 0)
                out = p;
        }
        mp_sleep_ms(2);
    }
    *bad_done = mp_now_ms();
    mp_flag_set(mp, FLAG_GO, 1);
    mp_wait_all(mp);
    mp_assert_all_ok(mp);
    print_outcomes(mp, *bad_done);
    if (out < 0)
        fail_msg("[%s] the misconfigured process never finished", name);
    m->bad_proc = out;
    return mp;
}

static void test_wrong_secret_real_rank(void **state)
{
    (void)state;
    fault_group_t g;
    int64_t t;
    static const int ranks[] = {0, 1, 2, 2};
    misfit_t m = {.bad_proc = 2, .bad_secret = mp_other_secret};
    fault_group_init(&g, 3, T_MS);
    mp_t *mp = run_misfit(&g, &m, ranks, 4, "wrong_secret_rank", &t);
    assert_int_equal(mp_slot(mp, 2)->status, KCCL_ERR_AUTH);
    fault_assert_says(mp, 2, "authentication", NULL);
    assert_true(mp_slot(mp, 2)->elapsed_ms < T_MS / 2); /* told at the handshake, no timeout */
    mp_free(mp);
}

static void test_duplicate_rank_process(void **state)
{
    (void)state;
    fault_group_t g;
    int64_t t;
    static const int ranks[] = {0, 1, 2, 2, 3};
    misfit_t m = {.bad_proc = 2, .either_may_lose = 1};
    fault_group_init(&g, 4, T_MS);
    mp_t *mp = run_misfit(&g, &m, ranks, 5, "duplicate_rank", &t);
    int loser = m.bad_proc, winner = loser == 2 ? 3 : 2;
    assert_int_equal(mp_slot(mp, loser)->status, KCCL_ERR_PROTOCOL);
    fault_assert_says(mp, loser, "already checked in", NULL);
    assert_int_equal(mp_slot(mp, winner)->status, KCCL_OK);
    fault_assert_logged(mp, 0, "claiming rank 2: another process already checked in");
    mp_free(mp);
}

static void test_world_size_mismatch(void **state)
{
    (void)state;
    fault_group_t g;
    int64_t t;
    static const int ranks[] = {0, 1, 2, 1};
    misfit_t m = {.bad_proc = 1, .bad_world = 4};
    fault_group_init(&g, 3, T_MS);
    mp_t *mp = run_misfit(&g, &m, ranks, 4, "world_size", &t);
    assert_int_equal(mp_slot(mp, 1)->status, KCCL_ERR_PROTOCOL);
    fault_assert_says(mp, 1, "world size", "3", NULL);
    fault_assert_logged(mp, 0, "world size differs from the root's");
    mp_free(mp);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_rank_killed_before_checkin, mp_cleanup_all),
        cmocka_unit_test_teardown(test_rank_killed_after_checkin, mp_cleanup_all),
        cmocka_unit_test_teardown(test_rank_killed_during_collectives, mp_cleanup_all),
        cmocka_unit_test_teardown(test_wrong_secret_real_rank, mp_cleanup_all),
        cmocka_unit_test_teardown(test_duplicate_rank_process, mp_cleanup_all),
        cmocka_unit_test_teardown(test_world_size_mismatch, mp_cleanup_all),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests_name("bootstrap_rank_faults", tests, NULL, NULL);
}
