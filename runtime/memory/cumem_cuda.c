/*
 * cumem_cuda.c - device allocations with the CUDA virtual memory API and
 * POSIX file-descriptor export (see cumem.h), plus the small table of driver
 * calls the CUDA IPC transport needs. Driver entry points are looked up once
 * with cudaGetDriverEntryPointByVersion: libkccl links only libcudart.
 */
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "memory/cu_driver.h"
#include "memory/cumem.h"

static kccl_cu_driver_t drv;
static kccl_status_t drv_status = KCCL_ERR_UNSUPPORTED;
static pthread_once_t drv_once = PTHREAD_ONCE_INIT;

static int load(const char *name, void **fn)
{
    enum cudaDriverEntryPointQueryResult q;
    if (cudaGetDriverEntryPointByVersion(name, fn, 12000, cudaEnableDefault, &q) != cudaSuccess ||
        q != cudaDriverEntryPointSuccess || *fn == NULL) {
        (void)cudaGetLastError();
        return -1;
    }
    return 0;
}

static void drv_load(void)
{
    int bad = 0;
#define KCCL_CU_LOAD_(field, sym) bad |= load(sym, (void **)&drv.field);
    KCCL_CU_DRIVER_MAP(KCCL_CU_LOAD_)
#undef KCCL_CU_LOAD_
    drv_status = bad ? KCCL_ERR_CUDA : KCCL_OK;
}

const kccl_cu_driver_t *kccl_cu_driver(void)
{
    pthread_once(&drv_once, drv_load);
    return drv_status == KCCL_OK ? &drv : NULL;
}

#define CU_CHECK(call, what)                                                                       \
    do {                                                                                           \
        CUresult r_ = (call);                                                                      \
        if (r_ != CUDA_SUCCESS) {                                                                  \
            const char *s_ = "unknown";                                                            \
            if (d->get_error_string)                                                               \
                d->get_error_string(r_, &s_);                                                      \
            kccl_error_set("%s failed: %s (CUresult %d)", what, s_, (int)r_);                      \
            kccl_log_error(IPC, "%s", kccl_last_error());                                          \
            st = KCCL_ERR_CUDA;                                                                    \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

static void fill_prop(CUmemAllocationProp *prop, int device)
{
    memset(prop, 0, sizeof(*prop));
    prop->type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop->requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
    prop->location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop->location.id = device;
    prop->allocFlags.gpuDirectRDMACapable = 1;
}

/* Reserves, maps and opens [ptr, ptr+bytes) for device on handle h. */
static kccl_status_t map_for(const kccl_cu_driver_t *d, CUmemGenericAllocationHandle h,
                             uint64_t bytes, uint64_t align, int device, CUdeviceptr *out)
{
    kccl_status_t st = KCCL_OK;
    CUdeviceptr va = 0;
    int mapped = 0;
    CU_CHECK(d->mem_address_reserve(&va, bytes, align, 0, 0), "cuMemAddressReserve");
    CU_CHECK(d->mem_map(va, bytes, 0, h, 0), "cuMemMap");
    mapped = 1;
    CUmemAccessDesc acc;
    memset(&acc, 0, sizeof(acc));
    acc.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    acc.location.id = device;
    acc.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    CU_CHECK(d->mem_set_access(va, bytes, &acc, 1), "cuMemSetAccess");
    *out = va;
    return KCCL_OK;
out:
    if (mapped)
        d->mem_unmap(va, bytes);
    if (va)
        d->mem_address_free(va, bytes);
    return st;
}

kccl_status_t kccl_cumem_alloc(struct kccl_mem *mem, int device)
{
    kccl_status_t st = KCCL_OK;
    const kccl_cu_driver_t *d = kccl_cu_driver();
    CUmemGenericAllocationHandle h = 0;
    CUdeviceptr va = 0;
    int fd = -1;
    size_t gran = 0;
    if (d == NULL || device < 0)
        KCCL_FAIL(IPC, KCCL_ERR_UNSUPPORTED,
                  "device allocation: no CUDA driver entry points or no current device");
    CUmemAllocationProp prop;
    fill_prop(&prop, device);
    CU_CHECK(d->mem_get_allocation_granularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED),
             "cuMemGetAllocationGranularity");
    uint64_t bytes = (mem->len + gran - 1) / gran * gran;
    if (d->mem_create(&h, bytes, &prop, 0) != CUDA_SUCCESS) {
        /* Not every device/driver allows GPUDirect RDMA on VMM allocations: retry without. */
        h = 0;
        prop.allocFlags.gpuDirectRDMACapable = 0;
        CU_CHECK(d->mem_create(&h, bytes, &prop, 0), "cuMemCreate (POSIX fd exportable)");
    }
    CU_CHECK(d->mem_export_to_shareable_handle(&fd, h, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0),
             "cuMemExportToShareableHandle");
    if ((st = map_for(d, h, bytes, gran, device, &va)) != KCCL_OK)
        goto out;
    if (cudaMemset((void *)va, 0, bytes) != cudaSuccess || cudaDeviceSynchronize() != cudaSuccess) {
        kccl_error_set("zero-filling a %llu-byte device allocation failed",
                       (unsigned long long)bytes);
        st = KCCL_ERR_CUDA;
        d->mem_unmap(va, bytes);
        d->mem_address_free(va, bytes);
        goto out;
    }
    mem->ptr = (void *)va;
    mem->device = device;
    mem->fd = fd;
    mem->cu_handle = (uint64_t)h;
    mem->alloc_bytes = bytes;
    mem->ipc_type = KCCL_MEM_IPC_POSIX_FD;
    return KCCL_OK;
out:
    if (fd >= 0)
        close(fd);
    if (h)
        d->mem_release(h);
    return st;
}

void kccl_cumem_free(struct kccl_mem *mem)
{
    const kccl_cu_driver_t *d = kccl_cu_driver();
    if (d == NULL || mem->ptr == NULL)
        return;
    (void)cudaDeviceSynchronize();
    d->mem_unmap((CUdeviceptr)mem->ptr, mem->alloc_bytes);
    d->mem_address_free((CUdeviceptr)mem->ptr, mem->alloc_bytes);
    d->mem_release((CUmemGenericAllocationHandle)mem->cu_handle);
    mem->ptr = NULL;
}

kccl_status_t kccl_cumem_import(int fd, uint64_t bytes, int device, void **ptr, uint64_t *handle,
                                uint64_t *map_bytes)
{
    kccl_status_t st = KCCL_OK;
    const kccl_cu_driver_t *d = kccl_cu_driver();
    CUmemGenericAllocationHandle h = 0;
    size_t gran = 0;
    CUdeviceptr va;
    if (d == NULL)
        KCCL_FAIL(IPC, KCCL_ERR_UNSUPPORTED, "cuMem import: no CUDA driver entry points");
    CUmemAllocationProp prop;
    fill_prop(&prop, device);
    CU_CHECK(d->mem_get_allocation_granularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED),
             "cuMemGetAllocationGranularity");
    CU_CHECK(d->mem_import_from_shareable_handle(&h, (void *)(uintptr_t)fd,
                                                 CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR),
             "cuMemImportFromShareableHandle");
    bytes = (bytes + gran - 1) / gran * gran;
    if ((st = map_for(d, h, bytes, gran, device, &va)) != KCCL_OK)
        goto out;
    *ptr = (void *)va;
    *handle = (uint64_t)h;
    *map_bytes = bytes;
    return KCCL_OK;
out:
    if (h)
        d->mem_release(h);
    return st;
}

void kccl_cumem_unmap(void *ptr, uint64_t handle, uint64_t map_bytes)
{
    const kccl_cu_driver_t *d = kccl_cu_driver();
    if (d == NULL || ptr == NULL)
        return;
    d->mem_unmap((CUdeviceptr)ptr, map_bytes);
    d->mem_address_free((CUdeviceptr)ptr, map_bytes);
    d->mem_release((CUmemGenericAllocationHandle)handle);
}
