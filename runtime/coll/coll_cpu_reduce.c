/*
 * coll_cpu_reduce.c - the element-wise arithmetic of the CPU collectives:
 * float16/bfloat16 conversions in software (no compiler half type, so any C11
 * compiler and any CPU give the same bits) and one loop per type and
 * operation. Contract and semantics: coll_cpu_reduce.h.
 */
#include "coll/coll_cpu_reduce.h"

#include <math.h>
#include <string.h>

static uint32_t float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static float bits_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

float kccl_reduce_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu;
    if (exp == 0) { /* zero or subnormal: mant * 2^-24, exact in float */
        float v = ldexpf((float)mant, -24);
        return sign ? -v : v;
    }
    if (exp == 31) /* infinity or NaN (payload kept) */
        return bits_float(sign | 0x7F800000u | mant << 13);
    return bits_float(sign | (exp + 112u) << 23 | mant << 13);
}

/* Rounds m >> shift to nearest even (shift >= 1). */
static uint32_t round_shift(uint32_t m, unsigned shift)
{
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u)))
        q++;
    return q;
}

uint16_t kccl_reduce_float_to_half(float f)
{
    uint32_t x = float_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    x &= 0x7FFFFFFFu;
    if (x > 0x7F800000u) /* NaN: keep it quiet, keep the top payload bits */
        return (uint16_t)(sign | 0x7E00u | ((x >> 13) & 0x3FFu));
    int exp = (int)(x >> 23) - 127 + 15;
    if (exp >= 31)
        return (uint16_t)(sign | 0x7C00u);
    if (exp <= 0) { /* subnormal half (or zero); a carry makes the smallest normal */
        int shift = 14 - exp;
        if (shift > 25)
            return sign;
        return (uint16_t)(sign | round_shift((x & 0x7FFFFFu) | 0x800000u, (unsigned)shift));
    }
    uint32_t h = (uint32_t)exp << 10 | ((x >> 13) & 0x3FFu);
    uint32_t rem = x & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
        h++; /* a carry out of the mantissa bumps the exponent, up to infinity */
    return (uint16_t)(sign | (h >= 0x7C00u ? 0x7C00u : h));
}

float kccl_reduce_bf16_to_float(uint16_t b)
{
    return bits_float((uint32_t)b << 16);
}

uint16_t kccl_reduce_float_to_bf16(float f)
{
    uint32_t x = float_bits(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u)
        return (uint16_t)((x >> 16) | 0x0040u); /* quiet NaN */
    x += 0x7FFFu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

double kccl_reduce_load(kccl_dtype_t dtype, const void *p, size_t i)
{
    switch (dtype) {
    case KCCL_INT32: return (double)((const int32_t *)p)[i];
    case KCCL_FLOAT32: return (double)((const float *)p)[i];
    case KCCL_FLOAT16: return (double)kccl_reduce_half_to_float(((const uint16_t *)p)[i]);
    case KCCL_BFLOAT16: return (double)kccl_reduce_bf16_to_float(((const uint16_t *)p)[i]);
    default: return 0.0;
    }
}

void kccl_reduce_store(kccl_dtype_t dtype, void *p, size_t i, double v)
{
    switch (dtype) {
    case KCCL_INT32: ((int32_t *)p)[i] = (int32_t)v; break;
    case KCCL_FLOAT32: ((float *)p)[i] = (float)v; break;
    case KCCL_FLOAT16: ((uint16_t *)p)[i] = kccl_reduce_float_to_half((float)v); break;
    case KCCL_BFLOAT16: ((uint16_t *)p)[i] = kccl_reduce_float_to_bf16((float)v); break;
    default: break;
    }
}

/* max/min that return a NaN operand instead of dropping it. */
static inline float fmax_nan(float a, float b)
{
    return isnan(a) ? a : isnan(b) ? b : (a > b ? a : b);
}

static inline float fmin_nan(float a, float b)
{
    return isnan(a) ? a : isnan(b) ? b : (a < b ? a : b);
}

static inline float fop(kccl_redop_t op, float a, float b, int divisor)
{
    switch (op) {
    case KCCL_MAX: return fmax_nan(a, b);
    case KCCL_MIN: return fmin_nan(a, b);
    case KCCL_AVG: return divisor > 0 ? (a + b) / (float)divisor : a + b;
    default: return a + b;
    }
}

static void reduce_i32(kccl_redop_t op, int32_t *d, const int32_t *a, const int32_t *b, size_t n)
{
    size_t i;
    switch (op) {
    case KCCL_SUM:
        for (i = 0; i < n; i++)
            d[i] = (int32_t)((uint32_t)a[i] + (uint32_t)b[i]);
        break;
    case KCCL_MAX:
        for (i = 0; i < n; i++)
            d[i] = a[i] > b[i] ? a[i] : b[i];
        break;
    case KCCL_MIN:
        for (i = 0; i < n; i++)
            d[i] = a[i] < b[i] ? a[i] : b[i];
        break;
    default: /* avg on int32 is refused by the front door */ break;
    }
}

static void reduce_f32(kccl_redop_t op, float *d, const float *a, const float *b, size_t n,
                       int divisor)
{
    size_t i;
    if (op == KCCL_SUM || (op == KCCL_AVG && divisor <= 0)) {
        for (i = 0; i < n; i++)
            d[i] = a[i] + b[i];
        return;
    }
    for (i = 0; i < n; i++)
        d[i] = fop(op, a[i], b[i], divisor);
}

typedef float (*to_float_fn)(uint16_t);
typedef uint16_t (*from_float_fn)(float);

static void reduce_16(kccl_redop_t op, uint16_t *d, const uint16_t *a, const uint16_t *b, size_t n,
                      int divisor, to_float_fn to, from_float_fn from)
{
    for (size_t i = 0; i < n; i++)
        d[i] = from(fop(op, to(a[i]), to(b[i]), divisor));
}

void kccl_reduce(kccl_dtype_t dtype, kccl_redop_t op, void *dst, const void *a, const void *b,
                 size_t count, int divisor)
{
    if ((unsigned)op >= KCCL_NUM_REDOPS)
        return;
    switch (dtype) {
    case KCCL_INT32: reduce_i32(op, dst, a, b, count); break;
    case KCCL_FLOAT32: reduce_f32(op, dst, a, b, count, divisor); break;
    case KCCL_FLOAT16:
        reduce_16(op, dst, a, b, count, divisor, kccl_reduce_half_to_float,
                  kccl_reduce_float_to_half);
        break;
    case KCCL_BFLOAT16:
        reduce_16(op, dst, a, b, count, divisor, kccl_reduce_bf16_to_float,
                  kccl_reduce_float_to_bf16);
        break;
    default: break;
    }
}
