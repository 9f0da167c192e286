/*
 * kccl_fifo.cuh - GPU producers of the proxy FIFO (protocol in
 * kccl/kccl_device_types.h). Any thread may push; pushes are lock-free
 * (one atomicAdd on the head, in device memory) and normally never touch
 * host memory except to write the trigger: the ring's tail is read across
 * PCIe only when the cached copy says the ring may be full.
 */
#ifndef KCCL_FIFO_CUH
#define KCCL_FIFO_CUH

#include "kccl/kccl_atomics.cuh"
#include "kccl/kccl_device_types.h"

/* Pushes t; returns its slot number (for kccl_fifo_sync). */
KCCL_DEVICE uint64_t kccl_fifo_push(const kccl_fifo_dev_t *f, kccl_trigger_t t)
{
    uint64_t slot = atomicAdd((unsigned long long *)f->head, 1ull);
    uint64_t seen = kccl_ld_relaxed_sys(f->tail_cache);
    if (slot >= seen + f->size) {
        uint64_t start = kccl_globaltimer();
        uint32_t spins = 0;
        while (slot >= (seen = kccl_ld_acquire_sys(f->tail)) + f->size)
            kccl_spin_check(start, &spins, "proxy fifo full", slot, seen);
        atomicMax((unsigned long long *)f->tail_cache, (unsigned long long)seen);
    }
    kccl_trigger_t *s = &f->slots[slot & (f->size - 1)];
    kccl_st_relaxed_sys(&s->w0, t.w0);
    kccl_st_release_sys(&s->w1, t.w1); /* w1 != 0 publishes the trigger */
    return slot;
}

/* Waits until the proxy has carried out the trigger in slot (and all before it). */
KCCL_DEVICE void kccl_fifo_sync(const kccl_fifo_dev_t *f, uint64_t slot)
{
    uint64_t start = kccl_globaltimer(), have;
    uint32_t spins = 0;
    while ((have = kccl_ld_acquire_sys(f->tail)) <= slot)
        kccl_spin_check(start, &spins, "proxy flush", slot + 1, have);
    atomicMax((unsigned long long *)f->tail_cache, (unsigned long long)have);
}

#endif
