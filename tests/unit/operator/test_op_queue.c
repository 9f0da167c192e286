/*
 * test_op_queue.c - operator/op_queue.c on a fake clock: dedup, coalescing
 * delay, earliest-first order, exclusivity while in progress (dirty keys come
 * back), exponential retry backoff with a cap, and the blocking wait.
 */
#include "kccl_test.h"
#include "op_queue.h"

static void test_dedup_and_order(void **state)
{
    (void)state;
    op_queue_t q;
    assert_int_equal(op_queue_create(NULL, &q), KCCL_OK);
    char key[OP_QUEUE_KEY_MAX];
    int64_t next;
    for (int i = 0; i < 100; i++) /* a burst of events for one group: one entry */
        assert_int_equal(op_queue_add(q, "ns/a", 1000 + i, 200), KCCL_OK);
    assert_int_equal(op_queue_add(q, "ns/b", 1050, 100), KCCL_OK);
    assert_int_equal(op_queue_len(q), 2);
    /* nothing due before 1150 (b: 1050 + 100); a is due at 1200 (its first add) */
    assert_int_equal(op_queue_take(q, 1149, key, &next), 0);
    assert_int_equal(next, 1150);
    assert_int_equal(op_queue_take(q, 1300, key, NULL), 1);
    assert_string_equal(key, "ns/b");
    assert_int_equal(op_queue_take(q, 1300, key, NULL), 1);
    assert_string_equal(key, "ns/a");
    assert_int_equal(op_queue_take(q, 1300, key, &next), 0);
    assert_int_equal(next, INT64_MAX);
    /* an earlier add moves the due time earlier, a later one does not */
    op_queue_done(q, "ns/a", 1, 1300, 200);
    op_queue_done(q, "ns/b", 1, 1300, 200);
    assert_int_equal(op_queue_add(q, "ns/a", 2000, 500), KCCL_OK);
    assert_int_equal(op_queue_add(q, "ns/a", 2000, 0), KCCL_OK);
    assert_int_equal(op_queue_add(q, "ns/a", 2000, 900), KCCL_OK);
    assert_int_equal(op_queue_take(q, 2000, key, NULL), 1);
    assert_int_equal(op_queue_add(q, NULL, 0, 0), KCCL_ERR_INVALID_ARG);
    op_queue_destroy(q);
}

static void test_in_progress_is_exclusive(void **state)
{
    (void)state;
    op_queue_t q;
    assert_int_equal(op_queue_create(NULL, &q), KCCL_OK);
    char key[OP_QUEUE_KEY_MAX];
    op_queue_add(q, "ns/a", 0, 0);
    assert_int_equal(op_queue_take(q, 0, key, NULL), 1);
    /* events while a worker reconciles ns/a: not handed to a second worker */
    op_queue_add(q, "ns/a", 10, 0);
    op_queue_add(q, "ns/a", 11, 0);
    assert_int_equal(op_queue_take(q, 100, key, NULL), 0);
    assert_int_equal(op_queue_len(q), 0);
    /* done: queued again once, after the coalescing delay */
    assert_int_equal(op_queue_done(q, "ns/a", 1, 100, 50), 50);
    assert_int_equal(op_queue_take(q, 149, key, NULL), 0);
    assert_int_equal(op_queue_take(q, 150, key, NULL), 1);
    /* without new events a successful pass leaves the queue */
    assert_int_equal(op_queue_done(q, "ns/a", 1, 200, 50), -1);
    assert_int_equal(op_queue_len(q), 0);
    op_queue_destroy(q);
}

static void test_retry_backoff(void **state)
{
    (void)state;
    op_queue_opts_t o = {.retry_base_ms = 100, .retry_max_ms = 1000};
    op_queue_t q;
    assert_int_equal(op_queue_create(&o, &q), KCCL_OK);
    char key[OP_QUEUE_KEY_MAX];
    int64_t now = 0;
    const int64_t want[] = {100, 200, 400, 800, 1000, 1000};
    op_queue_add(q, "ns/a", now, 0);
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(want); i++) {
        assert_int_equal(op_queue_take(q, now, key, NULL), 1);
        assert_int_equal(op_queue_done(q, "ns/a", 0, now, 10), want[i]);
        assert_int_equal(op_queue_failures(q, "ns/a"), (int)i + 1);
        assert_int_equal(op_queue_take(q, now + want[i] - 1, key, NULL), 0);
        now += want[i];
    }
    /* success forgets the failures */
    assert_int_equal(op_queue_take(q, now, key, NULL), 1);
    assert_int_equal(op_queue_done(q, "ns/a", 1, now, 10), -1);
    assert_int_equal(op_queue_failures(q, "ns/a"), 0);
    /* a failed pass with events meanwhile comes back after the shorter delay */
    op_queue_add(q, "ns/a", now, 0);
    assert_int_equal(op_queue_take(q, now, key, NULL), 1);
    op_queue_add(q, "ns/a", now, 0);
    assert_int_equal(op_queue_done(q, "ns/a", 0, now, 10), 10);
    op_queue_destroy(q);
}

static void test_wait(void **state)
{
    (void)state;
    op_queue_t q;
    assert_int_equal(op_queue_create(NULL, &q), KCCL_OK);
    char key[OP_QUEUE_KEY_MAX];
    atomic_int stop = 0;
    int64_t t0 = op_queue_now_ms();
    assert_int_equal(op_queue_wait(q, &stop, 150, key), 0); /* empty: the deadline */
    assert_true(op_queue_now_ms() - t0 >= 140);
    op_queue_add(q, "ns/x", op_queue_now_ms(), 100);
    t0 = op_queue_now_ms();
    assert_int_equal(op_queue_wait(q, &stop, 2000, key), 1);
    assert_string_equal(key, "ns/x");
    int64_t waited = op_queue_now_ms() - t0;
    assert_true(waited >= 90 && waited < 1000);
    atomic_store(&stop, 1);
    assert_int_equal(op_queue_wait(q, &stop, 5000, key), 0);
    op_queue_destroy(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dedup_and_order),
        cmocka_unit_test(test_in_progress_is_exclusive),
        cmocka_unit_test(test_retry_backoff),
        cmocka_unit_test(test_wait),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
