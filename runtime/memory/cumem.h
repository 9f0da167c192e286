/*
 * cumem.h - device allocations made with the CUDA virtual memory API
 * (cuMemCreate with POSIX file-descriptor export), for kccl_mem_alloc.
 * Driver entry points come through cudaGetDriverEntryPointByVersion, so
 * libkccl never links libcuda directly. Without KCCL_WITH_CUDA both calls
 * say KCCL_ERR_UNSUPPORTED / do nothing.
 */
#ifndef KCCL_MEMORY_CUMEM_H
#define KCCL_MEMORY_CUMEM_H

#include "memory/mem.h"

/* Allocates mem->len bytes (rounded up to the granularity) on device, maps
 * them read-write for this device, exports an fd into mem->fd, zero-fills. */
kccl_status_t kccl_cumem_alloc(struct kccl_mem *mem, int device);
void kccl_cumem_free(struct kccl_mem *mem);

/* Importer side: maps an exported allocation (fd received from its owner)
 * for this process's device. */
kccl_status_t kccl_cumem_import(int fd, uint64_t bytes, int device, void **ptr, uint64_t *handle,
                                uint64_t *map_bytes);
void kccl_cumem_unmap(void *ptr, uint64_t handle, uint64_t map_bytes);

#endif
