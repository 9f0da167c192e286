/*
 * coll_check.c - seeded inputs and the float64 reference of coll_check.h.
 * Deliberately independent of the runtime's arithmetic (coll_cpu_reduce.c):
 * its own float16/bfloat16 decoders, so a bug there cannot hide itself.
 */
#include "coll_check.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

static int check_threads = 1; /* coll_check_set_threads() */

void coll_check_set_threads(int n)
{
    check_threads = n < 1 ? 1 : n > COLL_CHECK_MAX_THREADS ? COLL_CHECK_MAX_THREADS : n;
}

/* One slice [lo, hi) of a fill or a check, run by par_for's threads. */
typedef struct {
    const coll_check_t *c;
    void *buf;
    size_t lo, hi, wrong;
} slice_t;

/* Runs fn over [0, n) in check_threads contiguous slices (one thread below 1M elements or
 * when a thread cannot start: that slice runs here); returns the summed wrong counts. */
static size_t par_for(const coll_check_t *c, void *buf, size_t n, void *(*fn)(void *slice))
{
    int t = n < ((size_t)1 << 20) ? 1 : check_threads;
    slice_t sl[COLL_CHECK_MAX_THREADS];
    pthread_t tid[COLL_CHECK_MAX_THREADS];
    int started[COLL_CHECK_MAX_THREADS] = {0};
    for (int k = 0; k < t; k++) {
        sl[k] = (slice_t){c, buf, n * (size_t)k / (size_t)t, n * (size_t)(k + 1) / (size_t)t, 0};
        if (k > 0)
            started[k] = pthread_create(&tid[k], NULL, fn, &sl[k]) == 0;
    }
    size_t wrong = 0;
    for (int k = 0; k < t; k++) {
        if (k == 0 || !started[k])
            fn(&sl[k]);
        else
            pthread_join(tid[k], NULL);
        wrong += sl[k].wrong;
    }
    return wrong;
}

static uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static double half_value(uint16_t h)
{
    int exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
    double v = exp == 0    ? ldexp(mant, -24)
               : exp == 31 ? (mant ? NAN : INFINITY)
                           : ldexp(1024 + mant, exp - 25);
    return (h & 0x8000) ? -v : v;
}

static double bf16_value(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Inputs in [-1, 1) with few enough mantissa bits to be exact in each type. */
double coll_check_input(const coll_check_t *c, int rank, size_t i)
{
    uint64_t x = mix64(c->seed ^ mix64((uint64_t)rank << 40 ^ (uint64_t)i));
    switch (c->dtype) {
    case KCCL_INT32: return (double)(int)(x % 2001) - 1000.0;
    case KCCL_FLOAT32: return ldexp((double)(x >> 40), -23) - 1.0; /* 24 bits */
    case KCCL_FLOAT16: return ldexp((double)(x >> 53), -10) - 1.0; /* 11 bits */
    default: return ldexp((double)(x >> 56), -7) - 1.0;            /* 8 bits */
    }
}

static void store(kccl_dtype_t dt, void *p, size_t i, double v)
{
    if (dt == KCCL_INT32) {
        ((int32_t *)p)[i] = (int32_t)v;
    } else if (dt == KCCL_FLOAT32) {
        ((float *)p)[i] = (float)v;
    } else if (dt == KCCL_FLOAT16) {
        /* v = m * 2^-10 - 1 with |v| <= 1 is exact: encode it directly. */
        uint16_t sign = v < 0 ? 0x8000 : 0;
        double a = fabs(v);
        int e;
        double fr = frexp(a, &e); /* a = fr * 2^e, fr in [0.5, 1) */
        uint16_t h = 0;
        if (a == 0)
            h = 0;
        else if (e - 1 >= -14)
            h = (uint16_t)((e - 1 + 15) << 10 | ((uint16_t)(fr * 2048.0) & 0x3FF));
        else
            h = (uint16_t)ldexp(a, 24);
        ((uint16_t *)p)[i] = (uint16_t)(sign | h);
    } else {
        float f = (float)v; /* exact: 8 significant bits */
        uint32_t u;
        memcpy(&u, &f, 4);
        ((uint16_t *)p)[i] = (uint16_t)(u >> 16);
    }
}

static double load(kccl_dtype_t dt, const void *p, size_t i)
{
    switch (dt) {
    case KCCL_INT32: return ((const int32_t *)p)[i];
    case KCCL_FLOAT32: return ((const float *)p)[i];
    case KCCL_FLOAT16: return half_value(((const uint16_t *)p)[i]);
    default: return bf16_value(((const uint16_t *)p)[i]);
    }
}

size_t coll_check_send_count(const coll_check_t *c)
{
    return c->kind == COLL_CHECK_REDUCE_SCATTER ? c->count * (size_t)c->nranks : c->count;
}

size_t coll_check_recv_count(const coll_check_t *c)
{
    return c->kind == COLL_CHECK_ALL_GATHER ? c->count * (size_t)c->nranks : c->count;
}

static void *fill_slice(void *arg)
{
    slice_t *sl = arg;
    for (size_t i = sl->lo; i < sl->hi; i++)
        store(sl->c->dtype, sl->buf, i, coll_check_input(sl->c, sl->c->rank, i));
    return NULL;
}

void coll_check_fill(const coll_check_t *c, void *sendbuf)
{
    par_for(c, sendbuf, coll_check_send_count(c), fill_slice);
}

void coll_check_poison(const coll_check_t *c, void *recvbuf)
{
    size_t n = coll_check_recv_count(c);
    for (size_t i = 0; i < n; i++) {
        if (c->dtype == KCCL_INT32)
            ((int32_t *)recvbuf)[i] = INT32_MIN;
        else if (c->dtype == KCCL_FLOAT32)
            ((float *)recvbuf)[i] = NAN;
        else
            ((uint16_t *)recvbuf)[i] = 0x7FFF; /* NaN in both 16-bit types */
    }
}

static double eps_of(kccl_dtype_t dt)
{
    return dt == KCCL_FLOAT32 ? 0x1p-23 : dt == KCCL_FLOAT16 ? 0x1p-10 : 0x1p-7;
}

/* Whether got matches the reduction over ranks of input index idx. */
static int reduced_ok(const coll_check_t *c, size_t idx, double got)
{
    double acc = 0, mag = 0;
    for (int r = 0; r < c->nranks; r++) {
        double x = coll_check_input(c, r, idx);
        if (r == 0 || c->op == KCCL_SUM || c->op == KCCL_AVG)
            acc = r == 0 ? x : acc + x;
        else
            acc = c->op == KCCL_MAX ? fmax(acc, x) : fmin(acc, x);
        mag += fabs(x);
    }
    if (c->op == KCCL_MAX || c->op == KCCL_MIN || c->dtype == KCCL_INT32)
        return got == acc;
    double tol = (double)c->nranks * eps_of(c->dtype) * mag + 0x1p-24;
    if (c->op == KCCL_AVG) {
        acc /= c->nranks;
        tol /= c->nranks;
    }
    return fabs(got - acc) <= tol; /* false for NaN */
}

static void *wrong_slice(void *arg)
{
    slice_t *sl = arg;
    const coll_check_t *c = sl->c;
    for (size_t i = sl->lo; i < sl->hi; i++) {
        double got = load(c->dtype, sl->buf, i);
        int ok;
        switch (c->kind) {
        case COLL_CHECK_ALL_REDUCE: ok = reduced_ok(c, i, got); break;
        case COLL_CHECK_REDUCE_SCATTER:
            ok = reduced_ok(c, (size_t)c->rank * c->count + i, got);
            break;
        case COLL_CHECK_ALL_GATHER:
            ok = got == coll_check_input(c, (int)(i / c->count), i % c->count);
            break;
        default: ok = got == coll_check_input(c, c->root, i); break;
        }
        sl->wrong += !ok;
    }
    return NULL;
}

size_t coll_check_wrong(const coll_check_t *c, const void *recvbuf)
{
    return par_for(c, (void *)recvbuf, coll_check_recv_count(c), wrong_slice);
}

uint64_t coll_check_hash(const void *p, size_t bytes, uint64_t h)
{
    const unsigned char *b = p;
    if (h == 0)
        h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < bytes; i++)
        h = (h ^ b[i]) * 0x100000001B3ull;
    return h;
}
