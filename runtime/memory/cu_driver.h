/*
 * cu_driver.h - the CUDA driver calls kccl uses, as a table filled through
 * cudaGetDriverEntryPointByVersion (CUDA 12.0 ABI of each call), so libkccl
 * has no link-time dependency on libcuda. CUDA builds only.
 */
#ifndef KCCL_MEMORY_CU_DRIVER_H
#define KCCL_MEMORY_CU_DRIVER_H

#include <cuda.h>

/* X(field, symbol) */
#define KCCL_CU_DRIVER_MAP(X)                                                                      \
    X(get_error_string, "cuGetErrorString")                                                        \
    X(mem_get_allocation_granularity, "cuMemGetAllocationGranularity")                             \
    X(mem_create, "cuMemCreate")                                                                   \
    X(mem_release, "cuMemRelease")                                                                 \
    X(mem_export_to_shareable_handle, "cuMemExportToShareableHandle")                              \
    X(mem_import_from_shareable_handle, "cuMemImportFromShareableHandle")                          \
    X(mem_address_reserve, "cuMemAddressReserve")                                                  \
    X(mem_address_free, "cuMemAddressFree")                                                        \
    X(mem_map, "cuMemMap")                                                                         \
    X(mem_unmap, "cuMemUnmap")                                                                     \
    X(mem_set_access, "cuMemSetAccess")                                                            \
    X(mem_get_address_range, "cuMemGetAddressRange")                                               \
    X(mem_get_handle_for_address_range, "cuMemGetHandleForAddressRange")

typedef struct kccl_cu_driver {
    CUresult (*get_error_string)(CUresult, const char **);
    CUresult (*mem_get_allocation_granularity)(size_t *, const CUmemAllocationProp *,
                                               CUmemAllocationGranularity_flags);
    CUresult (*mem_create)(CUmemGenericAllocationHandle *, size_t, const CUmemAllocationProp *,
                           unsigned long long);
    CUresult (*mem_release)(CUmemGenericAllocationHandle);
    CUresult (*mem_export_to_shareable_handle)(void *, CUmemGenericAllocationHandle,
                                               CUmemAllocationHandleType, unsigned long long);
    CUresult (*mem_import_from_shareable_handle)(CUmemGenericAllocationHandle *, void *,
                                                 CUmemAllocationHandleType);
    CUresult (*mem_address_reserve)(CUdeviceptr *, size_t, size_t, CUdeviceptr, unsigned long long);
    CUresult (*mem_address_free)(CUdeviceptr, size_t);
    CUresult (*mem_map)(CUdeviceptr, size_t, size_t, CUmemGenericAllocationHandle,
                        unsigned long long);
    CUresult (*mem_unmap)(CUdeviceptr, size_t);
    CUresult (*mem_set_access)(CUdeviceptr, size_t, const CUmemAccessDesc *, size_t);
    CUresult (*mem_get_address_range)(CUdeviceptr *, size_t *, CUdeviceptr);
    CUresult (*mem_get_handle_for_address_range)(void *, CUdeviceptr, size_t, CUmemRangeHandleType,
                                                 unsigned long long);
} kccl_cu_driver_t;

/* The table, or NULL when the driver lacks an entry point (or there is no driver). */
const kccl_cu_driver_t *kccl_cu_driver(void);

#endif
