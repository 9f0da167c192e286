/*
 * kccl_semaphore.cuh - device-side semaphores (kccl_sem_dev_t).
 *
 * A semaphore pairs this rank's inbound counter (bumped by the peer) with a
 * wait count in device memory. One waiter at a time per handle (usually one
 * thread of one block); signals come from one thread after the writes they
 * publish are ordered before it (see kccl_channel.cuh for the block-level
 * helpers, which put a __syncthreads() first).
 *
 *  - device to device (memory channels): kccl_sem_signal adds one to the
 *    peer's counter through the peer mapping with a system-scope release;
 *  - host to device (port channels): the peer's proxy writes the counter;
 *    this side only waits.
 *
 * Cost (H100 NV18, measured by bench_gpu_transport --sweep, tests/gpu/NOTES.md): a signal
 * that orders data is a system-scope release, i.e. fence.acq_rel.sys (MEMBAR.ALL.SYS) before
 * the remote add, and that fence alone takes 1.55 us even with nothing outstanding; st.release
 * instead of red.release compiles to the same fence. So a data-ordering signal/wait round trip
 * is ~4.4 us (1.35 us of NVLink flight + two fences); kccl_sem_signal_relaxed (no fence) gives
 * the 1.35 us round trip for pure synchronisation. A GPU-scope fence (0.36 us) is not a
 * release to a peer GPU under the PTX memory model and is not used.
 */
#ifndef KCCL_SEMAPHORE_CUH
#define KCCL_SEMAPHORE_CUH

#include "kccl/kccl_atomics.cuh"
#include "kccl/kccl_device_types.h"

/* Publishes this thread's (and, after a barrier, its block's) earlier writes, then bumps
 * the peer's counter. Memory channels only (remote_inbound mapped). */
KCCL_DEVICE void kccl_sem_signal(const kccl_sem_dev_t *s)
{
    kccl_add_release_sys(s->remote_inbound, 1);
}

/* A signal that publishes nothing (pure synchronisation): no release fence, lower latency. */
KCCL_DEVICE void kccl_sem_signal_relaxed(const kccl_sem_dev_t *s)
{
    kccl_add_relaxed_sys(s->remote_inbound, 1);
}

/* Waits for the next signal; afterwards the peer's writes before it are visible. */
KCCL_DEVICE void kccl_sem_wait(const kccl_sem_dev_t *s)
{
    uint64_t want = *s->expected + 1;
    *s->expected = want;
    uint64_t start = kccl_globaltimer(), have;
    uint32_t spins = 0;
    while ((have = kccl_ld_acquire_sys(s->inbound)) < want)
        kccl_spin_check(start, &spins, "semaphore wait", want, have);
}

/* Non-blocking: 1 (and consumes the signal) when the next signal is there. */
KCCL_DEVICE int kccl_sem_poll(const kccl_sem_dev_t *s)
{
    uint64_t want = *s->expected + 1;
    if (kccl_ld_acquire_sys(s->inbound) < want)
        return 0;
    *s->expected = want;
    return 1;
}

#endif
