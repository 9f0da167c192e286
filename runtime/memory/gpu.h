/*
 * gpu.h - the few CUDA runtime calls the host side of kccl needs, behind one
 * function table, so that transports compile and run without CUDA.
 *
 * kccl_gpu() returns the table in force: a test's (kccl_gpu_set_ops), else
 * the CUDA one when the library was built with KCCL_WITH_CUDA and the
 * process sees at least one device, else NULL (no device memory at all).
 * The TCP transport stages device memory through pinned host buffers with
 * these calls; unit tests swap in a fake table whose "device memory" is
 * ordinary host memory, which exercises the staging paths on a CPU.
 *
 * Thread-safety: the table is immutable; every call may come from any thread
 * (the CUDA table sets the calling thread's device where it needs one).
 */
#ifndef KCCL_MEMORY_GPU_H
#define KCCL_MEMORY_GPU_H

#include <stddef.h>
#include <stdint.h>

#include "kccl/kccl_status.h"

typedef struct kccl_gpu_ops {
    const char *name;
    /* Number of visible devices (0 when none: not an error). */
    kccl_status_t (*device_count)(int *n);
    /* The calling thread's current device. */
    kccl_status_t (*get_device)(int *dev);
    /* Whether p is device memory, and on which device (-1 for host memory). */
    kccl_status_t (*pointer_device)(const void *p, int *device);
    /* Synchronous copies (staging). dev is the device that owns the device side. */
    kccl_status_t (*copy_to_host)(void *dst, const void *dev_src, size_t n, int dev);
    kccl_status_t (*copy_to_device)(void *dev_dst, const void *src, size_t n, int dev);
    /* Page-locked host memory for staging. */
    kccl_status_t (*host_alloc)(void **p, size_t n);
    void (*host_free)(void *p);
    /* Zero-filled device memory on dev (counters, FIFO heads), and its release. */
    kccl_status_t (*dev_alloc)(void **p, size_t n, int dev);
    void (*dev_free)(void *p, int dev);
    /* A dma-buf fd for [ptr, ptr+len) of device memory, and ptr's offset in it (for
     * ibv_reg_dmabuf_mr); may be NULL. The caller closes the fd. */
    kccl_status_t (*dmabuf_fd)(void *ptr, size_t len, int *fd, uint64_t *offset);
    /* "0000:1b:00.0" style PCI id of dev (for NUMA binding); may be NULL. */
    kccl_status_t (*pci_bus_id)(int dev, char *buf, size_t len);
} kccl_gpu_ops_t;

/* The table in force, or NULL when this process has no usable GPU. */
const kccl_gpu_ops_t *kccl_gpu(void);

/* Tests: force a table (NULL restores the default). */
void kccl_gpu_set_ops(const kccl_gpu_ops_t *ops);

/* The CUDA table (built with KCCL_WITH_CUDA), or NULL. */
const kccl_gpu_ops_t *kccl_gpu_cuda_ops(void);

#endif
