/*
 * kccl_ll.cuh - the LL ("low latency") packet: 8 bytes of data travel with
 * their own flag, so a receiver that sees the flag has the data; no fence and
 * no separate signal between writer and reader, which is what makes small
 * collectives fast (tests/gpu/NOTES.md: a data-ordering signal costs 4.4 us
 * round trip on H100, a relaxed flag 1.35 us).
 *
 * A packet is 16 bytes written with one 16-byte store: {data lo, flag, data
 * hi, flag}. A 16-byte store may land as two 8-byte halves, never torn inside
 * an 8-byte half, so the reader checks both flags. Flags are step numbers that
 * only grow (coll_gpu.h), so an old packet never matches a newer step. They
 * are the low 32 bits of a 64-bit counter: a stale packet could only match
 * if its slot sat unwritten for exactly a multiple of 2^32 steps of its block.
 */
#ifndef KCCL_LL_CUH
#define KCCL_LL_CUH

#include <stdint.h>

#include "kccl_atomics.cuh"

typedef struct __align__(16) kccl_ll_packet
{
    uint32_t lo, flag_lo, hi, flag_hi;
}
kccl_ll_packet_t;

/* Writes 8 data bytes with their flag (to local or peer-mapped memory). */
KCCL_DEVICE void kccl_ll_store(kccl_ll_packet_t *p, uint64_t data, uint32_t flag)
{
    asm volatile("st.volatile.global.v4.u32 [%0], {%1, %2, %3, %4};" ::"l"(p), "r"((uint32_t)data),
                 "r"(flag), "r"((uint32_t)(data >> 32)), "r"(flag)
                 : "memory");
}

/* Tries once: 1 and *data when both halves carry flag. */
KCCL_DEVICE int kccl_ll_try_load(const kccl_ll_packet_t *p, uint32_t flag, uint64_t *data)
{
    uint32_t lo, f0, hi, f1;
    asm volatile("ld.volatile.global.v4.u32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(lo), "=r"(f0), "=r"(hi), "=r"(f1)
                 : "l"(p)
                 : "memory");
    *data = ((uint64_t)hi << 32) | lo;
    return f0 == flag && f1 == flag;
}

/* Waits for the packet of step flag (deadline: KCCL_DEVICE_TIMEOUT_NS, then trap). */
KCCL_DEVICE uint64_t kccl_ll_load(const kccl_ll_packet_t *p, uint32_t flag)
{
    uint64_t data;
    if (kccl_ll_try_load(p, flag, &data))
        return data;
    uint64_t start = kccl_globaltimer();
    uint32_t spins = 0;
    while (!kccl_ll_try_load(p, flag, &data))
        kccl_spin_check(start, &spins, "LL packet", flag, 0);
    return data;
}

#endif
