/*
 * test_coll_check.c - kccl-bench's float64 reference (bench/coll/coll_check.c)
 * split over threads gives what one thread gives: the same inputs bit for
 * bit, the same count of wrong elements (0 for a correct result, every
 * element when poisoned, exactly the corrupted ones otherwise), on a count
 * above the 1M-element threshold that is not a multiple of the thread count.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coll_check.h"
#include "kccl_test.h"

#define COUNT (((size_t)1 << 20) + 12345)

static void test_fill_same_with_threads(void **state)
{
    (void)state;
    coll_check_t c = {COLL_CHECK_ALL_REDUCE, KCCL_FLOAT16, KCCL_SUM, 0, 4, 2, COUNT, 7};
    uint16_t *one = malloc(COUNT * 2), *many = malloc(COUNT * 2);
    assert_non_null(one);
    assert_non_null(many);
    coll_check_set_threads(1);
    coll_check_fill(&c, one);
    coll_check_set_threads(7);
    coll_check_fill(&c, many);
    assert_memory_equal(one, many, COUNT * 2);
    coll_check_set_threads(1);
    free(one);
    free(many);
}

/* The correct float32 all-reduce result of c (sum in float64, one rounding). */
static float *reduced(const coll_check_t *c)
{
    float *out = malloc(c->count * sizeof(float));
    assert_non_null(out);
    for (size_t i = 0; i < c->count; i++) {
        double acc = 0;
        for (int r = 0; r < c->nranks; r++)
            acc += coll_check_input(c, r, i);
        out[i] = (float)acc;
    }
    return out;
}

static void test_wrong_counts_with_threads(void **state)
{
    (void)state;
    coll_check_t c = {COLL_CHECK_ALL_REDUCE, KCCL_FLOAT32, KCCL_SUM, 0, 3, 1, COUNT, 11};
    float *good = reduced(&c), *bad = malloc(COUNT * sizeof(float));
    assert_non_null(bad);
    static const size_t corrupt[] = {0, 1, COUNT / 3, COUNT / 2 + 1, COUNT - 1};
    for (int t = 1; t <= 8; t += 3) {
        coll_check_set_threads(t);
        assert_int_equal(coll_check_wrong(&c, good), 0);
        coll_check_poison(&c, bad);
        assert_int_equal(coll_check_wrong(&c, bad), COUNT);
        memcpy(bad, good, COUNT * sizeof(float));
        for (size_t k = 0; k < sizeof(corrupt) / sizeof(corrupt[0]); k++)
            bad[corrupt[k]] += 0.5f;
        assert_int_equal(coll_check_wrong(&c, bad), sizeof(corrupt) / sizeof(corrupt[0]));
    }
    coll_check_set_threads(1);
    free(good);
    free(bad);
}

static void test_threads_clamped(void **state)
{
    (void)state;
    coll_check_t c = {COLL_CHECK_ALL_GATHER, KCCL_INT32, KCCL_SUM, 0, 2, 0, COUNT / 2, 3};
    int32_t *out = malloc(COUNT * sizeof(int32_t));
    assert_non_null(out);
    for (size_t i = 0; i < coll_check_recv_count(&c); i++)
        out[i] = (int32_t)coll_check_input(&c, (int)(i / c.count), i % c.count);
    coll_check_set_threads(0); /* below 1: one thread */
    assert_int_equal(coll_check_wrong(&c, out), 0);
    coll_check_set_threads(1000); /* above the cap: COLL_CHECK_MAX_THREADS */
    assert_int_equal(coll_check_wrong(&c, out), 0);
    out[c.count] ^= 1; /* rank 1's first element */
    assert_int_equal(coll_check_wrong(&c, out), 1);
    coll_check_set_threads(1);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fill_same_with_threads),
        cmocka_unit_test(test_wrong_counts_with_threads),
        cmocka_unit_test(test_threads_clamped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
