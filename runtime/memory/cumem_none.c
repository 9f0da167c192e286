/*
 * cumem_none.c - kccl_cumem_* for builds without CUDA: device allocations
 * are unsupported, with the remedy.
 */
#include "core/error.h"
#include "memory/cumem.h"

kccl_status_t kccl_cumem_alloc(struct kccl_mem *mem, int device)
{
    (void)device;
    KCCL_FAIL(INIT, KCCL_ERR_UNSUPPORTED,
              "device allocation of %llu bytes: this libkccl was built without CUDA "
              "(configure with -DKCCL_WITH_CUDA=ON)",
              (unsigned long long)mem->len);
}

void kccl_cumem_free(struct kccl_mem *mem)
{
    (void)mem;
}

kccl_status_t kccl_cumem_import(int fd, uint64_t bytes, int device, void **ptr, uint64_t *handle,
                                uint64_t *map_bytes)
{
    (void)fd, (void)bytes, (void)device, (void)ptr, (void)handle, (void)map_bytes;
    KCCL_FAIL(IPC, KCCL_ERR_UNSUPPORTED, "cuMem import: this libkccl was built without CUDA");
}

void kccl_cumem_unmap(void *ptr, uint64_t handle, uint64_t map_bytes)
{
    (void)ptr, (void)handle, (void)map_bytes;
}
