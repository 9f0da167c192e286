/*
 * fifo.c - host side of the trigger FIFO (see fifo.h and kccl_device_types.h).
 */
#include "proxy/fifo.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "memory/gpu.h"
#include "transport/transport.h"

kccl_status_t kccl_fifo_init(kccl_fifo_t *f, uint64_t size, int device)
{
    memset(f, 0, sizeof(*f));
    f->device = device;
    if (size < 2 || (size & (size - 1)) != 0)
        KCCL_FAIL(PROXY, KCCL_ERR_INVALID_ARG, "fifo size %llu is not a power of two >= 2",
                  (unsigned long long)size);
    const kccl_gpu_ops_t *gpu = kccl_gpu();
    size_t bytes = (size_t)size * sizeof(kccl_trigger_t) + 64; /* tail in the last line */
    void *mem = NULL;
    if (gpu != NULL) {
        KCCL_CHECK(gpu->host_alloc(&mem, bytes));
        f->pinned = 1;
    } else if (posix_memalign(&mem, 64, bytes) != 0) {
        KCCL_FAIL(PROXY, KCCL_ERR_NO_MEMORY, "out of memory for a %llu-slot fifo",
                  (unsigned long long)size);
    }
    memset(mem, 0, bytes);
    f->dev.slots = mem;
    f->dev.tail = (uint64_t *)((char *)mem + (size_t)size * sizeof(kccl_trigger_t));
    f->dev.size = size;
    if (device >= 0) {
        void *d = NULL;
        kccl_status_t st = gpu ? gpu->dev_alloc(&d, 64, device) : KCCL_ERR_UNSUPPORTED;
        if (st != KCCL_OK) {
            kccl_fifo_fini(f);
            KCCL_FAIL(PROXY, st == KCCL_OK ? KCCL_ERR_CUDA : st,
                      "device fifo: no device memory for its head");
        }
        f->dev.head = d;
        f->dev.tail_cache = (uint64_t *)((char *)d + 32);
    } else {
        f->dev.head = calloc(1, 64);
        if (f->dev.head == NULL) {
            kccl_fifo_fini(f);
            KCCL_FAIL(PROXY, KCCL_ERR_NO_MEMORY, "out of memory for a fifo");
        }
        f->dev.tail_cache = f->dev.head + 4;
    }
    return KCCL_OK;
}

void kccl_fifo_fini(kccl_fifo_t *f)
{
    const kccl_gpu_ops_t *gpu = kccl_gpu();
    if (f->device >= 0) {
        if (f->dev.head != NULL && gpu != NULL)
            gpu->dev_free(f->dev.head, f->device);
    } else {
        free(f->dev.head);
    }
    if (f->pinned && gpu != NULL)
        gpu->host_free(f->dev.slots);
    else
        free(f->dev.slots);
    memset(f, 0, sizeof(*f));
    f->device = -1;
}

static void relax(unsigned *spins)
{
    if (++*spins < 64)
        __builtin_ia32_pause();
    else
        sched_yield();
}

kccl_status_t kccl_fifo_push(kccl_fifo_t *f, kccl_trigger_t t, uint64_t *slot, int64_t deadline_ms)
{
    uint64_t s = __atomic_fetch_add(f->dev.head, 1, __ATOMIC_RELAXED);
    unsigned spins = 0;
    while (s - __atomic_load_n(f->dev.tail, __ATOMIC_ACQUIRE) >= f->dev.size) {
        relax(&spins);
        if ((spins & 1023) == 0 && kccl_tp_now_ms() >= deadline_ms)
            KCCL_FAIL(PROXY, KCCL_ERR_TIMED_OUT,
                      "proxy fifo full until the deadline (slot %llu): the proxy thread is "
                      "stuck or gone",
                      (unsigned long long)s);
    }
    kccl_trigger_t *d = &f->dev.slots[s & (f->dev.size - 1)];
    __atomic_store_n(&d->w0, t.w0, __ATOMIC_RELAXED);
    __atomic_store_n(&d->w1, t.w1, __ATOMIC_RELEASE);
    if (slot != NULL)
        *slot = s;
    return KCCL_OK;
}

kccl_status_t kccl_fifo_wait_done(kccl_fifo_t *f, uint64_t slot, int64_t deadline_ms)
{
    unsigned spins = 0;
    while (__atomic_load_n(f->dev.tail, __ATOMIC_ACQUIRE) <= slot) {
        relax(&spins);
        if ((spins & 1023) == 0 && kccl_tp_now_ms() >= deadline_ms)
            KCCL_FAIL(PROXY, KCCL_ERR_TIMED_OUT,
                      "proxy did not complete trigger %llu by the deadline (done: %llu)",
                      (unsigned long long)slot,
                      (unsigned long long)__atomic_load_n(f->dev.tail, __ATOMIC_ACQUIRE));
    }
    return KCCL_OK;
}

int kccl_fifo_peek(kccl_fifo_t *f, kccl_trigger_t *t)
{
    kccl_trigger_t *s = &f->dev.slots[f->consumed & (f->dev.size - 1)];
    uint64_t w1 = __atomic_load_n(&s->w1, __ATOMIC_ACQUIRE);
    if (w1 == 0)
        return 0;
    t->w1 = w1;
    t->w0 = __atomic_load_n(&s->w0, __ATOMIC_RELAXED);
    return 1;
}

void kccl_fifo_pop(kccl_fifo_t *f)
{
    kccl_trigger_t *s = &f->dev.slots[f->consumed & (f->dev.size - 1)];
    __atomic_store_n(&s->w1, 0, __ATOMIC_RELAXED);
    f->consumed++;
    __atomic_store_n(f->dev.tail, f->consumed, __ATOMIC_RELEASE);
}
