/*
 * gpu.c - picks the GPU function table in force (see gpu.h). The CUDA table
 * lives in gpu_cuda.c, compiled only with KCCL_WITH_CUDA; without it the
 * weak default below says "no CUDA".
 */
#include "memory/gpu.h"

#include <pthread.h>
#include <stddef.h>

static const kccl_gpu_ops_t *gpu_override;
static const kccl_gpu_ops_t *gpu_default;
static pthread_once_t gpu_once = PTHREAD_ONCE_INIT;

#ifndef KCCL_HAVE_CUDA
const kccl_gpu_ops_t *kccl_gpu_cuda_ops(void)
{
    return NULL;
}
#endif

static void gpu_pick(void)
{
    const kccl_gpu_ops_t *ops = kccl_gpu_cuda_ops();
    int n = 0;
    if (ops != NULL && ops->device_count(&n) == KCCL_OK && n > 0)
        gpu_default = ops;
}

const kccl_gpu_ops_t *kccl_gpu(void)
{
    const kccl_gpu_ops_t *o = __atomic_load_n(&gpu_override, __ATOMIC_ACQUIRE);
    if (o != NULL)
        return o;
    pthread_once(&gpu_once, gpu_pick);
    return gpu_default;
}

void kccl_gpu_set_ops(const kccl_gpu_ops_t *ops)
{
    __atomic_store_n(&gpu_override, ops, __ATOMIC_RELEASE);
}
