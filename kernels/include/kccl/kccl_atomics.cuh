/*
 * kccl_atomics.cuh - the few memory-model primitives the device side of kccl
 * needs, as inline PTX with explicit scope: system-scope acquire loads and
 * release stores/adds (counters written across NVLink, PCIe or by the host),
 * and a deadline from %globaltimer so that no device wait spins forever.
 *
 * KCCL_DEVICE_TIMEOUT_NS (default 30 s) bounds every wait; when it passes,
 * the wait prints what it waited for and traps, so the launch fails with an
 * error the host sees (cudaErrorLaunchFailure) instead of hanging.
 */
#ifndef KCCL_ATOMICS_CUH
#define KCCL_ATOMICS_CUH

#include <stdint.h>
#include <stdio.h>

#ifndef KCCL_DEVICE_TIMEOUT_NS
#define KCCL_DEVICE_TIMEOUT_NS 30000000000ull
#endif

#define KCCL_DEVICE __device__ __forceinline__

KCCL_DEVICE uint64_t kccl_ld_acquire_sys(const uint64_t *p)
{
    uint64_t v;
    asm volatile("ld.acquire.sys.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
    return v;
}

KCCL_DEVICE uint64_t kccl_ld_relaxed_sys(const uint64_t *p)
{
    uint64_t v;
    asm volatile("ld.relaxed.sys.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
    return v;
}

KCCL_DEVICE void kccl_st_release_sys(uint64_t *p, uint64_t v)
{
    asm volatile("st.release.sys.global.u64 [%0], %1;" ::"l"(p), "l"(v) : "memory");
}

KCCL_DEVICE void kccl_st_relaxed_sys(uint64_t *p, uint64_t v)
{
    asm volatile("st.relaxed.sys.global.u64 [%0], %1;" ::"l"(p), "l"(v) : "memory");
}

KCCL_DEVICE void kccl_add_release_sys(uint64_t *p, uint64_t v)
{
    asm volatile("red.release.sys.global.add.u64 [%0], %1;" ::"l"(p), "l"(v) : "memory");
}

KCCL_DEVICE void kccl_add_relaxed_sys(uint64_t *p, uint64_t v)
{
    asm volatile("red.relaxed.sys.global.add.u64 [%0], %1;" ::"l"(p), "l"(v) : "memory");
}

KCCL_DEVICE uint64_t kccl_globaltimer(void)
{
    uint64_t t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}

/* Spin helper: call with a start time; traps with a message past the deadline. */
KCCL_DEVICE void kccl_spin_check(uint64_t start, uint32_t *spins, const char *what,
                                 unsigned long long want, unsigned long long have)
{
    if ((++*spins & 1023u) != 0)
        return;
    if (kccl_globaltimer() - start > KCCL_DEVICE_TIMEOUT_NS) {
        printf("kccl: device wait timed out (%s): want %llu, have %llu (block %d thread %d)\n",
               what, want, have, (int)blockIdx.x, (int)threadIdx.x);
        __trap();
    }
}

#endif
