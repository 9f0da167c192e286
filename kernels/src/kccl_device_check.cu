/*
 * kccl_device_check.cu - instantiates every device function of the kccl
 * device headers in small kernels, so that a build (CI included, without a
 * GPU) compiles them for the target architectures. Nothing launches these.
 */
#include "kccl/kccl_channel.cuh"

__global__ void kccl_check_memory_channel(kccl_memory_channel_dev_t c, uint64_t bytes)
{
    kccl_mc_put_signal_block(&c, 0, 0, bytes);
    kccl_mc_wait_block(&c);
    kccl_mc_get(&c, 0, 0, bytes, threadIdx.x, blockDim.x);
    if (threadIdx.x == 0 && kccl_sem_poll(&c.sem))
        kccl_mc_signal(&c);
    if (threadIdx.x == 0)
        kccl_mc_signal_relaxed(&c);
}

__global__ void kccl_check_memory_channel_grid(kccl_memory_channel_dev_t c, uint64_t bytes)
{
    kccl_mc_put_grid(&c, 0, 0, bytes);
    kccl_mc_get_grid(&c, 0, 0, bytes);
}

__global__ void kccl_check_memory_channel_bulk(kccl_memory_channel_dev_t c, uint64_t bytes)
{
    extern __shared__ __align__(128) unsigned char smem[];
    kccl_mc_put_bulk(&c, 0, 0, bytes, smem);
}

__global__ void kccl_check_port_channel(kccl_port_channel_dev_t c, uint32_t bytes)
{
    if (threadIdx.x != 0)
        return;
    kccl_pc_put(&c, 0, 0, bytes);
    kccl_pc_signal(&c);
    kccl_pc_put_signal(&c, 64, 64, bytes);
    kccl_pc_flush(&c);
    kccl_pc_wait(&c);
}

__global__ void kccl_check_copy(void *dst, const void *src, uint64_t bytes)
{
    kccl_copy(dst, src, bytes, blockIdx.x * blockDim.x + threadIdx.x, gridDim.x * blockDim.x);
}
