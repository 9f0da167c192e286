/*
 * fifo.h - the proxy's trigger FIFO, host side: allocation, host producers
 * and the single consumer. Format and protocol: kccl/kccl_device_types.h.
 *
 * A FIFO is either for host producers (head in host memory) or for GPU
 * producers (head and tail_cache in device memory); slots and tail are
 * always page-locked host memory when CUDA is present (plain memory
 * otherwise). Lock-free: producers claim slots with one atomic add; the
 * consumer is one thread.
 */
#ifndef KCCL_PROXY_FIFO_H
#define KCCL_PROXY_FIFO_H

#include <stdint.h>

#include "kccl/kccl_device_types.h"
#include "kccl/kccl_status.h"

typedef struct kccl_fifo {
    kccl_fifo_dev_t dev; /* what producers use */
    uint64_t consumed;   /* consumer's own copy of *tail */
    int device;          /* >= 0: a GPU FIFO on that device */
    int pinned;          /* slots/tail from the GPU table's host_alloc */
} kccl_fifo_t;

/* size: slots, a power of two >= 2. device < 0: host producers. */
kccl_status_t kccl_fifo_init(kccl_fifo_t *f, uint64_t size, int device);
void kccl_fifo_fini(kccl_fifo_t *f);

/* Host producer: claims a slot, waits for room (until deadline_ms), publishes
 * t. *slot gets the slot number (for kccl_fifo_wait_done). */
kccl_status_t kccl_fifo_push(kccl_fifo_t *f, kccl_trigger_t t, uint64_t *slot, int64_t deadline_ms);
/* Host producer: waits until the consumer has completed slot (KCCL_ERR_TIMED_OUT). */
kccl_status_t kccl_fifo_wait_done(kccl_fifo_t *f, uint64_t slot, int64_t deadline_ms);

/* Consumer: 1 and *t when the next trigger is there, 0 otherwise. */
int kccl_fifo_peek(kccl_fifo_t *f, kccl_trigger_t *t);
/* Consumer: the peeked trigger is done; frees its slot and publishes the tail. */
void kccl_fifo_pop(kccl_fifo_t *f);

#endif
