/*
 * coll_cpu_reduce.h - element-wise reductions of the CPU collectives, and the
 * software conversions between float and the 16-bit float types.
 *
 * Semantics (every rank computes the same bits, so results are identical
 * across ranks whatever the order the ring visits them in):
 * - int32: sum wraps around (two's complement); max/min as integers.
 * - float32: IEEE single arithmetic.
 * - float16/bfloat16: convert both operands to float, reduce in float, round
 *   back to nearest even (overflow gives infinity, NaN stays NaN).
 * - max/min: a NaN operand gives NaN (it is never silently dropped).
 * - avg: a sum whose last step divides by the rank count (in float, before
 *   the one rounding back to the element type); floating-point types only.
 * Thread-safety: pure functions.
 */
#ifndef KCCL_COLL_CPU_REDUCE_H
#define KCCL_COLL_CPU_REDUCE_H

#include <stddef.h>
#include <stdint.h>

#include "kccl/kccl_coll.h"

/* IEEE binary16 <-> float (exact widening, round-to-nearest-even narrowing). */
float kccl_reduce_half_to_float(uint16_t h);
uint16_t kccl_reduce_float_to_half(float f);
/* bfloat16 <-> float (exact widening, round-to-nearest-even narrowing). */
float kccl_reduce_bf16_to_float(uint16_t b);
uint16_t kccl_reduce_float_to_bf16(float f);

/* One element of dtype at p, as a double (tests, references). */
double kccl_reduce_load(kccl_dtype_t dtype, const void *p, size_t i);
/* Stores v as element i of dtype (rounding to nearest even; int32 truncates). */
void kccl_reduce_store(kccl_dtype_t dtype, void *p, size_t i, double v);

/*
 * dst[i] = a[i] op b[i] for i < count. dst may alias a or b. For KCCL_AVG,
 * divisor > 0 makes this the last step: the sum is divided by divisor before
 * it is stored; divisor 0 stores the plain sum. Invalid dtype/op: nothing.
 */
void kccl_reduce(kccl_dtype_t dtype, kccl_redop_t op, void *dst, const void *a, const void *b,
                 size_t count, int divisor);

#endif
