/*
 * test_coll_cpu_reduce.c - the CPU collectives' arithmetic: float16 and
 * bfloat16 conversions (exact widening, round to nearest even, overflow,
 * subnormals, NaN and infinity, every one of the 65,536 encodings), and
 * every dtype x op of kccl_reduce against a double-precision model,
 * including int32 wrap-around, NaN propagation in max/min, avg's last-step
 * division and aliasing of the destination.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "coll/coll_cpu_reduce.h"
#include "kccl_test.h"

static uint32_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bitsf(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void test_half_known_values(void **state)
{
    (void)state;
    static const struct {
        float f;
        uint16_t h;
    } cases[] = {
        {0.0f, 0x0000},
        {-0.0f, 0x8000},
        {1.0f, 0x3C00},
        {-2.0f, 0xC000},
        {0.5f, 0x3800},
        {65504.0f, 0x7BFF},
        {65519.0f, 0x7BFF},
        {65520.0f, 0x7C00},
        {1e9f, 0x7C00},
        {-1e9f, 0xFC00},
        {INFINITY, 0x7C00},
        {-INFINITY, 0xFC00},
        {0x1p-14f, 0x0400},
        {0x1p-24f, 0x0001},
        {0x1p-25f, 0x0000},
        {0x1.8p-25f, 0x0001},
        {0x1p-26f, 0x0000},
        {1023 * 0x1p-24f, 0x03FF},
        {1.0f + 0x1p-11f, 0x3C00}, /* tie -> even */
        {1.0f + 3 * 0x1p-11f, 0x3C02},
        {1.0f + 0x1.8p-11f, 0x3C01},
        {0x1.ffep-15f, 0x0400},
        {1e-30f, 0x0000},
        {-1e-30f, 0x8000},
    };
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(cases); i++) {
        uint16_t h = kccl_reduce_float_to_half(cases[i].f);
        if (h != cases[i].h)
            fail_msg("float %a -> half 0x%04x, expected 0x%04x", (double)cases[i].f, h, cases[i].h);
    }
    assert_true(kccl_reduce_half_to_float(0x3C00) == 1.0f);
    assert_true(kccl_reduce_half_to_float(0x0001) == 0x1p-24f);
    assert_true(kccl_reduce_half_to_float(0x7BFF) == 65504.0f);
    assert_true(isinf(kccl_reduce_half_to_float(0xFC00)) && kccl_reduce_half_to_float(0xFC00) < 0);
    assert_true(isnan(kccl_reduce_half_to_float(0x7E00)));
    assert_true(isnan(kccl_reduce_half_to_float(0x7C01))); /* signalling half NaN */
    uint16_t n = kccl_reduce_float_to_half(NAN);
    assert_true((n & 0x7C00) == 0x7C00 && (n & 0x3FF) != 0);
    n = kccl_reduce_float_to_half(bitsf(0x7F800001u)); /* NaN with only a low payload bit */
    assert_true((n & 0x7C00) == 0x7C00 && (n & 0x3FF) != 0);
}

/* Every half encoding survives half -> float -> half (NaNs stay NaN). */
static void test_half_roundtrip_all(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = kccl_reduce_half_to_float((uint16_t)h);
        uint16_t back = kccl_reduce_float_to_half(f);
        if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF)) {
            assert_true(isnan(f));
            assert_true((back & 0x7C00) == 0x7C00 && (back & 0x3FF));
        } else if (back != h) {
            fail_msg("half 0x%04x -> %a -> 0x%04x", h, (double)f, back);
        }
    }
}

/* Random floats round to the nearest half, ties to even. */
static void test_half_rounding_random(void **state)
{
    (void)state;
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        /* exponents around the half range: subnormals to overflow */
        float f = ldexpf((float)(x >> 40) / (float)(1u << 24), (int)(x % 48) - 30);
        if (x & 1)
            f = -f;
        uint16_t h = kccl_reduce_float_to_half(f);
        double v = kccl_reduce_half_to_float(h), err = fabs(v - f);
        if (isinf(v)) {
            assert_true(fabs(f) >= 65520.0);
            continue;
        }
        uint16_t up = (uint16_t)(h + 1), dn = (uint16_t)(h - 1);
        double eu = fabs((double)kccl_reduce_half_to_float(up) - f);
        double ed = (h & 0x7FFF) ? fabs((double)kccl_reduce_half_to_float(dn) - f) : INFINITY;
        if (err > eu || err > ed || ((err == eu || err == ed) && (h & 1)))
            fail_msg("float %a -> half 0x%04x is not the nearest even", (double)f, h);
    }
}

static void test_bf16_values(void **state)
{
    (void)state;
    assert_int_equal(kccl_reduce_float_to_bf16(1.0f), 0x3F80);
    assert_int_equal(kccl_reduce_float_to_bf16(-2.0f), 0xC000);
    assert_int_equal(kccl_reduce_float_to_bf16(bitsf(0x3F808000u)), 0x3F80); /* tie -> even */
    assert_int_equal(kccl_reduce_float_to_bf16(bitsf(0x3F818000u)), 0x3F82); /* tie -> even */
    assert_int_equal(kccl_reduce_float_to_bf16(bitsf(0x3F808001u)), 0x3F81);
    assert_int_equal(kccl_reduce_float_to_bf16(bitsf(0x7F7FFFFFu)), 0x7F80); /* -> inf */
    assert_int_equal(kccl_reduce_float_to_bf16(INFINITY), 0x7F80);
    assert_int_equal(kccl_reduce_float_to_bf16(-INFINITY), 0xFF80);
    assert_int_equal(kccl_reduce_float_to_bf16(bitsf(0x00008000u)), 0x0000); /* denormal tie */
    assert_int_equal(kccl_reduce_float_to_bf16(bitsf(0x00018000u)), 0x0002);
    assert_int_equal(kccl_reduce_float_to_bf16(bitsf(0x00010000u)), 0x0001); /* denormal */
    assert_int_equal(kccl_reduce_float_to_bf16(bitsf(0x80000001u)), 0x8000);
    uint16_t n = kccl_reduce_float_to_bf16(bitsf(0x7F800001u)); /* NaN must not become inf */
    assert_true((n & 0x7F80) == 0x7F80 && (n & 0x7F) != 0);
    n = kccl_reduce_float_to_bf16(bitsf(0xFFFFFFFFu));
    assert_true((n & 0x7F80) == 0x7F80 && (n & 0x7F) != 0);
    for (uint32_t b = 0; b < 65536; b++) {
        float f = kccl_reduce_bf16_to_float((uint16_t)b);
        assert_int_equal(fbits(f), b << 16);
        if (!isnan(f))
            assert_int_equal(kccl_reduce_float_to_bf16(f), b);
    }
}

static void fill(kccl_dtype_t dt, void *p, const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        kccl_reduce_store(dt, p, i, v[i]);
}

/* dtype x op against double arithmetic on values every type holds exactly. */
static void test_reduce_every_dtype_op(void **state)
{
    (void)state;
    static const double a[] = {1, -2, 3.5, 0, 100, -7.25, 8, 0.5};
    static const double b[] = {4, -2, -3.5, -1, 28, 2.25, -9, 0.25};
    enum { N = 8 };
    for (int dt = 0; dt < KCCL_NUM_DTYPES; dt++) {
        for (int op = 0; op < KCCL_NUM_REDOPS; op++) {
            if (dt == KCCL_INT32 && op == KCCL_AVG)
                continue;
            for (int div = 0; div <= 2; div += 2) {
                uint8_t pa[N * 4], pb[N * 4], pd[N * 4];
                fill(dt, pa, a, N);
                fill(dt, pb, b, N);
                kccl_reduce(dt, op, pd, pa, pb, N, div);
                for (int i = 0; i < N; i++) {
                    double x = kccl_reduce_load(dt, pa, i), y = kccl_reduce_load(dt, pb, i);
                    double want = op == KCCL_MAX ? fmax(x, y) : op == KCCL_MIN ? fmin(x, y) : x + y;
                    if (op == KCCL_AVG && div)
                        want /= div;
                    double got = kccl_reduce_load(dt, pd, i);
                    if (got != want)
                        fail_msg("%s %s div %d [%d]: %g op %g = %g, expected %g",
                                 kccl_dtype_name(dt), kccl_redop_name(op), div, i, x, y, got, want);
                }
            }
        }
    }
}

static void test_reduce_edges(void **state)
{
    (void)state;
    int32_t ia[2] = {INT32_MAX, INT32_MIN}, ib[2] = {1, -1}, id[2];
    kccl_reduce(KCCL_INT32, KCCL_SUM, id, ia, ib, 2, 0);
    assert_int_equal(id[0], INT32_MIN); /* wraps */
    assert_int_equal(id[1], INT32_MAX);
    /* NaN is never dropped by max/min; inf - inf is NaN; aliasing dst == a. */
    float fa[4] = {NAN, 1.0f, INFINITY, 3.0f}, fb[4] = {1.0f, NAN, -INFINITY, 4.0f};
    float fd[4];
    kccl_reduce(KCCL_FLOAT32, KCCL_MAX, fd, fa, fb, 2, 0);
    assert_true(isnan(fd[0]) && isnan(fd[1]));
    kccl_reduce(KCCL_FLOAT32, KCCL_MIN, fd, fa, fb, 2, 0);
    assert_true(isnan(fd[0]) && isnan(fd[1]));
    kccl_reduce(KCCL_FLOAT32, KCCL_SUM, fa, fa, fb, 4, 0);
    assert_true(isnan(fa[2]) && fa[3] == 7.0f);
    /* float16: overflow to infinity; a sum rounds once, to nearest even. */
    uint16_t ha[3] = {0x7BFF, 0x3C00, 0x0001}, hb[3] = {0x7BFF, 0x1000, 0x0001}, hd[3];
    kccl_reduce(KCCL_FLOAT16, KCCL_SUM, hd, ha, hb, 3, 0);
    assert_int_equal(hd[0], 0x7C00);
    assert_int_equal(hd[1], 0x3C00); /* 1 + 2^-11 is a tie: stays 1 */
    assert_int_equal(hd[2], 0x0002); /* subnormals add exactly */
    /* avg divides before the one rounding: (65504 + 65504) / 2 is finite. */
    kccl_reduce(KCCL_FLOAT16, KCCL_AVG, hd, ha, hb, 1, 2);
    assert_int_equal(hd[0], 0x7BFF);
    uint16_t ba[2] = {0x4000, 0x7F7F}, bb[2] = {0x4040, 0x7F7F}, bd[2];
    kccl_reduce(KCCL_BFLOAT16, KCCL_AVG, bd, ba, bb, 2, 2);
    assert_int_equal(bd[0], 0x4020); /* (2 + 3) / 2 */
    kccl_reduce(KCCL_BFLOAT16, KCCL_SUM, bd, ba, bb, 2, 0);
    assert_int_equal(bd[1], 0x7F80); /* bfloat16's largest, twice: infinity */
    /* Invalid dtype or op: nothing written. */
    int32_t keep[1] = {42};
    kccl_reduce((kccl_dtype_t)9, KCCL_SUM, keep, ia, ib, 1, 0);
    kccl_reduce(KCCL_INT32, (kccl_redop_t)9, keep, ia, ib, 1, 0);
    assert_int_equal(keep[0], 42);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_half_known_values),     cmocka_unit_test(test_half_roundtrip_all),
        cmocka_unit_test(test_half_rounding_random),  cmocka_unit_test(test_bf16_values),
        cmocka_unit_test(test_reduce_every_dtype_op), cmocka_unit_test(test_reduce_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
