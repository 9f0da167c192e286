/*
 * fake_gpu.h - a kccl_gpu_ops_t whose "device memory" is ordinary host
 * memory from a small table, so the device-memory paths of the transports
 * (pinned staging, device counters, the GPU FIFO's allocations) run on a
 * CPU. Install with kccl_gpu_set_ops(&fake_gpu_ops) before creating a
 * communicator; single device 0. Header-only, for one test binary.
 */
#ifndef KCCL_TEST_FAKE_GPU_H
#define KCCL_TEST_FAKE_GPU_H

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "memory/gpu.h"

#define FAKE_GPU_MAX 256

static struct {
    pthread_mutex_t lock;
    void *ptr[FAKE_GPU_MAX];
    size_t len[FAKE_GPU_MAX];
    long copies; /* staging copies made, for tests to check the path ran */
} fake_gpu = {PTHREAD_MUTEX_INITIALIZER, {0}, {0}, 0};

static kccl_status_t fake_device_count(int *n)
{
    *n = 1;
    return KCCL_OK;
}

static kccl_status_t fake_get_device(int *dev)
{
    *dev = 0;
    return KCCL_OK;
}

static kccl_status_t fake_pointer_device(const void *p, int *device)
{
    *device = -1;
    pthread_mutex_lock(&fake_gpu.lock);
    for (int i = 0; i < FAKE_GPU_MAX; i++)
        if (fake_gpu.ptr[i] != NULL && (const char *)p >= (char *)fake_gpu.ptr[i] &&
            (const char *)p < (char *)fake_gpu.ptr[i] + fake_gpu.len[i])
            *device = 0;
    pthread_mutex_unlock(&fake_gpu.lock);
    return KCCL_OK;
}

static kccl_status_t fake_copy(void *dst, const void *src, size_t n, int dev)
{
    (void)dev;
    /* An aligned 8-byte copy is one store on a real GPU (counters are polled while the
     * transport writes them): model it as an atomic one. */
    if (n == 8 && ((uintptr_t)dst & 7) == 0 && ((uintptr_t)src & 7) == 0)
        __atomic_store_n((uint64_t *)dst, __atomic_load_n((const uint64_t *)src, __ATOMIC_ACQUIRE),
                         __ATOMIC_RELEASE);
    else
        memcpy(dst, src, n);
    __atomic_fetch_add(&fake_gpu.copies, 1, __ATOMIC_RELAXED);
    return KCCL_OK;
}

static kccl_status_t fake_host_alloc(void **p, size_t n)
{
    *p = calloc(1, n);
    return *p ? KCCL_OK : KCCL_ERR_NO_MEMORY;
}

static void fake_host_free(void *p)
{
    free(p);
}

static kccl_status_t fake_dev_alloc(void **p, size_t n, int dev)
{
    (void)dev;
    void *m = calloc(1, n);
    if (m == NULL)
        return KCCL_ERR_NO_MEMORY;
    pthread_mutex_lock(&fake_gpu.lock);
    for (int i = 0; i < FAKE_GPU_MAX; i++)
        if (fake_gpu.ptr[i] == NULL) {
            fake_gpu.ptr[i] = m;
            fake_gpu.len[i] = n;
            pthread_mutex_unlock(&fake_gpu.lock);
            *p = m;
            return KCCL_OK;
        }
    pthread_mutex_unlock(&fake_gpu.lock);
    free(m);
    return KCCL_ERR_NO_MEMORY;
}

static void fake_dev_free(void *p, int dev)
{
    (void)dev;
    if (p == NULL)
        return;
    pthread_mutex_lock(&fake_gpu.lock);
    for (int i = 0; i < FAKE_GPU_MAX; i++)
        if (fake_gpu.ptr[i] == p)
            fake_gpu.ptr[i] = NULL;
    pthread_mutex_unlock(&fake_gpu.lock);
    free(p);
}

static const kccl_gpu_ops_t fake_gpu_ops = {
    .name = "fake",
    .device_count = fake_device_count,
    .get_device = fake_get_device,
    .pointer_device = fake_pointer_device,
    .copy_to_host = fake_copy,
    .copy_to_device = fake_copy,
    .host_alloc = fake_host_alloc,
    .host_free = fake_host_free,
    .dev_alloc = fake_dev_alloc,
    .dev_free = fake_dev_free,
    .pci_bus_id = NULL,
};

#endif
