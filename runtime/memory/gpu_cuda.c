/*
 * gpu_cuda.c - the CUDA runtime implementation of kccl_gpu_ops_t. Compiled
 * only when KCCL_WITH_CUDA is on; links libcudart. A process without a
 * driver or a device gets device_count() == 0 and kccl_gpu() == NULL.
 */
#include <cuda_runtime_api.h>
#include <stdio.h>

#include "core/error.h"
#include "memory/cu_driver.h"
#include "memory/gpu.h"

#define GPU_CHECK(call, what)                                                                      \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess)                                                                     \
            KCCL_FAIL(INIT, KCCL_ERR_CUDA, "%s failed: %s", what, cudaGetErrorString(e_));         \
    } while (0)

static kccl_status_t cu_device_count(int *n)
{
    int c = 0;
    if (cudaGetDeviceCount(&c) != cudaSuccess) {
        (void)cudaGetLastError();
        c = 0;
    }
    *n = c;
    return KCCL_OK;
}

static kccl_status_t cu_get_device(int *dev)
{
    GPU_CHECK(cudaGetDevice(dev), "cudaGetDevice");
    return KCCL_OK;
}

static kccl_status_t cu_pointer_device(const void *p, int *device)
{
    struct cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
        (void)cudaGetLastError();
        *device = -1;
        return KCCL_OK;
    }
    *device = a.type == cudaMemoryTypeDevice ? a.device : -1;
    return KCCL_OK;
}

static kccl_status_t cu_copy_to_host(void *dst, const void *src, size_t n, int dev)
{
    GPU_CHECK(cudaSetDevice(dev), "cudaSetDevice");
    GPU_CHECK(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToHost), "cudaMemcpy (device to host)");
    return KCCL_OK;
}

static kccl_status_t cu_copy_to_device(void *dst, const void *src, size_t n, int dev)
{
    GPU_CHECK(cudaSetDevice(dev), "cudaSetDevice");
    GPU_CHECK(cudaMemcpy(dst, src, n, cudaMemcpyHostToDevice), "cudaMemcpy (host to device)");
    return KCCL_OK;
}

static kccl_status_t cu_host_alloc(void **p, size_t n)
{
    GPU_CHECK(cudaHostAlloc(p, n, cudaHostAllocPortable | cudaHostAllocMapped), "cudaHostAlloc");
    return KCCL_OK;
}

static void cu_host_free(void *p)
{
    if (p != NULL)
        (void)cudaFreeHost(p);
}

static kccl_status_t cu_dev_alloc(void **p, size_t n, int dev)
{
    GPU_CHECK(cudaSetDevice(dev), "cudaSetDevice");
    GPU_CHECK(cudaMalloc(p, n), "cudaMalloc");
    if (cudaMemset(*p, 0, n) != cudaSuccess) {
        (void)cudaFree(*p);
        KCCL_FAIL(INIT, KCCL_ERR_CUDA, "cudaMemset of %zu bytes failed", n);
    }
    return KCCL_OK;
}

static void cu_dev_free(void *p, int dev)
{
    if (p != NULL && cudaSetDevice(dev) == cudaSuccess)
        (void)cudaFree(p);
}

/* dma-buf of the page-aligned range around [ptr, ptr+len) (GPUDirect RDMA registration). */
static kccl_status_t cu_dmabuf_fd(void *ptr, size_t len, int *fd, uint64_t *offset)
{
    const kccl_cu_driver_t *d = kccl_cu_driver();
    const uint64_t page = 4096;
    uint64_t p = (uint64_t)(uintptr_t)ptr, base = p & ~(page - 1);
    uint64_t size = (p + len - base + page - 1) & ~(page - 1);
    int f = -1;
    if (d == NULL ||
        d->mem_get_handle_for_address_range(&f, (CUdeviceptr)base, size,
                                            CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD, 0) != CUDA_SUCCESS)
        return KCCL_ERR_UNSUPPORTED;
    *fd = f;
    *offset = p - base;
    return KCCL_OK;
}

static kccl_status_t cu_pci_bus_id(int dev, char *buf, size_t len)
{
    GPU_CHECK(cudaDeviceGetPCIBusId(buf, (int)len, dev), "cudaDeviceGetPCIBusId");
    return KCCL_OK;
}

static const kccl_gpu_ops_t cuda_ops = {
    .name = "cuda",
    .device_count = cu_device_count,
    .get_device = cu_get_device,
    .pointer_device = cu_pointer_device,
    .copy_to_host = cu_copy_to_host,
    .copy_to_device = cu_copy_to_device,
    .host_alloc = cu_host_alloc,
    .host_free = cu_host_free,
    .dev_alloc = cu_dev_alloc,
    .dev_free = cu_dev_free,
    .dmabuf_fd = cu_dmabuf_fd,
    .pci_bus_id = cu_pci_bus_id,
};

const kccl_gpu_ops_t *kccl_gpu_cuda_ops(void)
{
    return &cuda_ops;
}
