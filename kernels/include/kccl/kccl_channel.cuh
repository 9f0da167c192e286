/*
 * kccl_channel.cuh - device-side channels. Include this one header.
 *
 * Memory channel (kccl_memory_channel_dev_t, CUDA IPC peers): threads copy
 * straight into (put) or out of (get) the peer's mapped buffer; the
 * semaphore pair orders data and flags. The *_block helpers are called by
 * every thread of a block: they split the bytes across the block, then
 * __syncthreads() and let thread 0 signal, so one signal covers the block's
 * writes. Grid-wide work signals per block (one channel or semaphore per
 * block) or after a grid barrier.
 *
 * Port channel (kccl_port_channel_dev_t, any link): one thread pushes
 * triggers; this rank's proxy thread carries them out through the
 * transport. Offsets are bytes into the channel's source (here) and
 * destination (the peer's) buffers.
 *
 * Alignment: puts and gets use 16-byte vector accesses when source,
 * destination and length allow, bytes otherwise. Large puts: kccl_mc_put_bulk
 * (TMA bulk copies through shared memory, kccl_bulk.cuh) is the fastest.
 *
 * Kernels that wait on each other: a kernel that spins in kccl_pc_wait /
 * kccl_mc_wait until another kernel of the same process (or a peer that
 * waits on that one) makes progress must not be the first launch of the
 * other kernel's module. CUDA loads kernels lazily (CUDA_MODULE_LOADING=LAZY,
 * the default since 12.2) and loading may wait for every running kernel of
 * the context: the launch then blocks behind the spinning kernel until its
 * KCCL_DEVICE_TIMEOUT_NS trap. Load such kernels before the first launch
 * (cudaFuncGetAttributes on each), or run with CUDA_MODULE_LOADING=EAGER.
 */
#ifndef KCCL_CHANNEL_CUH
#define KCCL_CHANNEL_CUH

#include "kccl/kccl_bulk.cuh"
#include "kccl/kccl_fifo.cuh"
#include "kccl/kccl_semaphore.cuh"

/* ------------------------------------------------------- memory channel */

/* local + src_off -> remote + dst_off, by threads [tid, nthreads). */
KCCL_DEVICE void kccl_mc_put(const kccl_memory_channel_dev_t *c, uint64_t dst_off, uint64_t src_off,
                             uint64_t bytes, uint32_t tid, uint32_t nthreads)
{
    kccl_copy((char *)c->remote + dst_off, (const char *)c->local + src_off, bytes, tid, nthreads);
}

/* remote + src_off -> local + dst_off. */
KCCL_DEVICE void kccl_mc_get(const kccl_memory_channel_dev_t *c, uint64_t dst_off, uint64_t src_off,
                             uint64_t bytes, uint32_t tid, uint32_t nthreads)
{
    kccl_copy((char *)c->local + dst_off, (const char *)c->remote + src_off, bytes, tid, nthreads);
}

/*
 * Whole grid: every thread of the launch takes part, consecutive threads on consecutive
 * 16-byte words, striding by the grid (call from all threads of all blocks; signal after a
 * grid-wide barrier, or from another kernel). The fastest load/store shape measured for one
 * large put: 369.6 GB/s one way on H100 NV18 (2 x SMs blocks of 1024 threads) against 347 GB/s when
 * each block copies one contiguous range (tests/gpu/NOTES.md).
 */
KCCL_DEVICE void kccl_mc_put_grid(const kccl_memory_channel_dev_t *c, uint64_t dst_off,
                                  uint64_t src_off, uint64_t bytes)
{
    kccl_mc_put(c, dst_off, src_off, bytes, blockIdx.x * blockDim.x + threadIdx.x,
                gridDim.x * blockDim.x);
}

/*
 * Whole grid, bulk copies (kccl_bulk.cuh): the same put through shared memory with the TMA,
 * 373.6-374.7 GB/s one way on H100 NV18 against 368.6-370.7 for kccl_mc_put_grid
 * (tests/gpu/NOTES.md). Launch with KCCL_BULK_SMEM bytes of dynamic shared memory per block (the
 * host raises cudaFuncAttributeMaxDynamicSharedMemorySize to it once) and one block per SM; smem is
 * that memory. Returns when this block's part has landed (signal after a grid barrier, or from
 * another kernel, as for kccl_mc_put_grid).
 */
KCCL_DEVICE void kccl_mc_put_bulk(const kccl_memory_channel_dev_t *c, uint64_t dst_off,
                                  uint64_t src_off, uint64_t bytes, void *smem)
{
    kccl_bulk_copy_grid((char *)c->remote + dst_off, (const char *)c->local + src_off, bytes, smem);
}

KCCL_DEVICE void kccl_mc_get_grid(const kccl_memory_channel_dev_t *c, uint64_t dst_off,
                                  uint64_t src_off, uint64_t bytes)
{
    kccl_mc_get(c, dst_off, src_off, bytes, blockIdx.x * blockDim.x + threadIdx.x,
                gridDim.x * blockDim.x);
}

/* One thread: publish (system-scope release) and bump the peer's counter. */
KCCL_DEVICE void kccl_mc_signal(const kccl_memory_channel_dev_t *c)
{
    kccl_sem_signal(&c->sem);
}

/* One thread: a signal that orders no data (barriers, ping-pong). */
KCCL_DEVICE void kccl_mc_signal_relaxed(const kccl_memory_channel_dev_t *c)
{
    kccl_sem_signal_relaxed(&c->sem);
}

/* One thread: wait for the peer's next signal. */
KCCL_DEVICE void kccl_mc_wait(const kccl_memory_channel_dev_t *c)
{
    kccl_sem_wait(&c->sem);
}

/* Whole block: put, then one signal covering it. */
KCCL_DEVICE void kccl_mc_put_signal_block(const kccl_memory_channel_dev_t *c, uint64_t dst_off,
                                          uint64_t src_off, uint64_t bytes)
{
    kccl_mc_put(c, dst_off, src_off, bytes, threadIdx.x, blockDim.x);
    __syncthreads();
    if (threadIdx.x == 0)
        kccl_mc_signal(c);
}

/* Whole block: wait for the peer's signal, then every thread may read. */
KCCL_DEVICE void kccl_mc_wait_block(const kccl_memory_channel_dev_t *c)
{
    if (threadIdx.x == 0)
        kccl_mc_wait(c);
    __syncthreads();
}

/* --------------------------------------------------------- port channel */

KCCL_DEVICE uint64_t kccl_pc_push(const kccl_port_channel_dev_t *c, uint32_t type, uint64_t dst_off,
                                  uint64_t src_off, uint32_t bytes)
{
    return kccl_fifo_push(&c->fifo, kccl_trigger_encode(type, c->channel, dst_off, src_off, bytes));
}

/* One thread each: put / signal / put+signal, carried out by the proxy in push order. */
KCCL_DEVICE void kccl_pc_put(const kccl_port_channel_dev_t *c, uint64_t dst_off, uint64_t src_off,
                             uint32_t bytes)
{
    kccl_pc_push(c, KCCL_TRIGGER_PUT, dst_off, src_off, bytes);
}

KCCL_DEVICE void kccl_pc_signal(const kccl_port_channel_dev_t *c)
{
    kccl_pc_push(c, KCCL_TRIGGER_SIGNAL, 0, 0, 0);
}

KCCL_DEVICE void kccl_pc_put_signal(const kccl_port_channel_dev_t *c, uint64_t dst_off,
                                    uint64_t src_off, uint32_t bytes)
{
    kccl_pc_push(c, KCCL_TRIGGER_PUT | KCCL_TRIGGER_SIGNAL, dst_off, src_off, bytes);
}

/* Waits until everything pushed before has landed at the peer. */
KCCL_DEVICE void kccl_pc_flush(const kccl_port_channel_dev_t *c)
{
    kccl_fifo_sync(&c->fifo, kccl_pc_push(c, KCCL_TRIGGER_FLUSH, 0, 0, 0));
}

/* Waits for the peer proxy's next signal (its puts before it are visible). */
KCCL_DEVICE void kccl_pc_wait(const kccl_port_channel_dev_t *c)
{
    kccl_sem_wait(&c->sem);
}

#endif
