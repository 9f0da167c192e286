/*
 * test_fifo.c - the trigger format and the proxy FIFO with host producers.
 *
 * Trigger encode/decode round trips at the field limits and on random
 * values; the valid bit is always set. FIFO: several producer threads push
 * concurrently through a small ring while one consumer drains it; every
 * trigger arrives exactly once, in per-producer order; a producer waiting
 * for a completion sees it; a full ring with no consumer times out.
 * The CPU-list parser used for proxy placement.
 */
#include <pthread.h>
#include <sched.h>

#include "kccl_test.h"
#include "proxy/fifo.h"
#include "proxy/proxy.h"

static void test_trigger_round_trip(void **state)
{
    (void)state;
    struct {
        uint32_t type, ch;
        uint64_t dst, src;
        uint32_t bytes;
    } v[] = {
        {KCCL_TRIGGER_PUT, 0, 0, 0, 0},
        {7, KCCL_TRIGGER_MAX_CHANNEL, KCCL_TRIGGER_MAX_OFFSET, KCCL_TRIGGER_MAX_OFFSET,
         0xFFFFFFFFu},
        {KCCL_TRIGGER_SIGNAL, 1, 1ull << 37, (1ull << 32) + 5, 12345},
        {KCCL_TRIGGER_FLUSH, 300, 4096, 0xFFFFFFFFull, 1},
    };
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(v); i++) {
        kccl_trigger_t t = kccl_trigger_encode(v[i].type, v[i].ch, v[i].dst, v[i].src, v[i].bytes);
        assert_true(t.w1 >> 63);
        kccl_trigger_fields_t f = kccl_trigger_decode(t);
        assert_int_equal(f.type, v[i].type);
        assert_int_equal(f.channel, v[i].ch);
        assert_true(f.dst_off == v[i].dst);
        assert_true(f.src_off == v[i].src);
        assert_int_equal(f.bytes, v[i].bytes);
    }
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 100000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint32_t type = (uint32_t)(x & 7), ch = (uint32_t)(x >> 3) & 0x7FFF;
        uint64_t dst = (x >> 7) & KCCL_TRIGGER_MAX_OFFSET, src = (x * 31) & KCCL_TRIGGER_MAX_OFFSET;
        uint32_t bytes = (uint32_t)(x >> 29);
        kccl_trigger_fields_t f =
            kccl_trigger_decode(kccl_trigger_encode(type, ch, dst, src, bytes));
        assert_true(f.type == type && f.channel == ch && f.dst_off == dst && f.src_off == src &&
                    f.bytes == bytes);
    }
}

#define PRODUCERS    4
#define PER_PRODUCER 10000

typedef struct {
    kccl_fifo_t *f;
    int id;
    int rc;
} prod_t;

static void *producer(void *arg)
{
    prod_t *p = arg;
    for (uint32_t i = 0; i < PER_PRODUCER; i++) {
        /* channel = producer, bytes = sequence number */
        kccl_trigger_t t = kccl_trigger_encode(KCCL_TRIGGER_PUT, (uint32_t)p->id, i, i, i);
        if (kccl_fifo_push(p->f, t, NULL, INT64_MAX) != KCCL_OK) {
            p->rc = 1;
            break;
        }
    }
    return NULL;
}

static void test_fifo_many_producers(void **state)
{
    (void)state;
    kccl_fifo_t f;
    assert_int_equal(kccl_fifo_init(&f, 64, -1), KCCL_OK);
    pthread_t th[PRODUCERS];
    prod_t pr[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        pr[i] = (prod_t){.f = &f, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, producer, &pr[i]), 0);
    }
    uint32_t next[PRODUCERS] = {0};
    for (long got = 0; got < (long)PRODUCERS * PER_PRODUCER;) {
        kccl_trigger_t t;
        if (!kccl_fifo_peek(&f, &t))
            continue;
        kccl_trigger_fields_t d = kccl_trigger_decode(t);
        assert_true(d.channel < PRODUCERS);
        assert_int_equal(d.bytes, next[d.channel]); /* per-producer order, none lost or doubled */
        next[d.channel]++;
        kccl_fifo_pop(&f);
        got++;
    }
    for (int i = 0; i < PRODUCERS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(pr[i].rc, 0);
        assert_int_equal(next[i], PER_PRODUCER);
    }
    kccl_trigger_t t;
    assert_false(kccl_fifo_peek(&f, &t));
    assert_true(*f.dev.tail == (uint64_t)PRODUCERS * PER_PRODUCER);
    kccl_fifo_fini(&f);
}

static void test_fifo_wait_done_and_full(void **state)
{
    (void)state;
    kccl_fifo_t f;
    uint64_t slot;
    assert_int_equal(kccl_fifo_init(&f, 2, -1), KCCL_OK);
    kccl_trigger_t t = kccl_trigger_encode(KCCL_TRIGGER_FLUSH, 3, 0, 0, 0);
    assert_int_equal(kccl_fifo_push(&f, t, &slot, INT64_MAX), KCCL_OK);
    assert_int_equal(slot, 0);
    assert_int_equal(kccl_fifo_wait_done(&f, slot, kccl_tp_now_ms() + 50), KCCL_ERR_TIMED_OUT);
    assert_int_equal(kccl_fifo_push(&f, t, &slot, INT64_MAX), KCCL_OK);
    /* Ring full (2 of 2) and nobody consuming: a third push times out. */
    int64_t t0 = kccl_tp_now_ms();
    assert_int_equal(kccl_fifo_push(&f, t, &slot, t0 + 100), KCCL_ERR_TIMED_OUT);
    assert_true(kccl_tp_now_ms() - t0 >= 100);
    kccl_trigger_t got;
    assert_true(kccl_fifo_peek(&f, &got));
    assert_true(got.w0 == t.w0 && got.w1 == t.w1);
    kccl_fifo_pop(&f);
    assert_int_equal(kccl_fifo_wait_done(&f, 0, kccl_tp_now_ms() + 50), KCCL_OK);
    kccl_fifo_fini(&f);
    assert_int_equal(kccl_fifo_init(&f, 6, -1), KCCL_ERR_INVALID_ARG);
    assert_int_equal(kccl_fifo_init(&f, 8, 0), KCCL_ERR_UNSUPPORTED); /* no GPU here */
}

static void test_cpulist(void **state)
{
    (void)state;
    cpu_set_t s;
    assert_int_equal(kccl_proxy_parse_cpulist("0-3,8,10-11\n", &s), 0);
    assert_int_equal(CPU_COUNT(&s), 7);
    assert_true(CPU_ISSET(8, &s) && CPU_ISSET(11, &s) && !CPU_ISSET(9, &s));
    assert_int_equal(kccl_proxy_parse_cpulist("5", &s), 0);
    assert_int_equal(CPU_COUNT(&s), 1);
    const char *bad[] = {"", "a", "3-1", "1,,2", "1-", "-1", "1;2", "99999"};
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(bad); i++)
        assert_int_equal(kccl_proxy_parse_cpulist(bad[i], &s), -1);
}

int main(void)
{
    setenv("KCCL_LOG_LEVEL", "none", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trigger_round_trip),
        cmocka_unit_test(test_fifo_many_producers),
        cmocka_unit_test(test_fifo_wait_done_and_full),
        cmocka_unit_test(test_cpulist),
    };
    return cmocka_run_group_tests_name("fifo", tests, NULL, NULL);
}
