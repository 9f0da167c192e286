/*
 * kccl_device_types.h - what host code and GPU kernels share: the proxy
 * trigger format, the FIFO's memory layout, and the device-side handles of
 * semaphores and channels. Plain C structs and inline codecs, includable from
 * C11 and from CUDA (the .cuh headers under kernels/include/kccl add the device functions).
 *
 * Trigger format (16 bytes, two little-endian 64-bit words; version 1):
 *
 *   w0 bits  0..31  bytes       length of a PUT (0..2^32-1)
 *   w0 bits 32..63  src_off lo  low 32 bits of the source offset
 *   w1 bits  0..37  dst_off     destination offset (up to 256 GiB)
 *   w1 bits 38..43  src_off hi  high 6 bits of the source offset (38 bits in all)
 *   w1 bits 44..58  channel     port channel id within its proxy (0..32767)
 *   w1 bits 59..61  type        PUT 1 | SIGNAL 2 | FLUSH 4, any combination,
 *                               carried out in that order
 *   w1 bit  62      reserved    zero
 *   w1 bit  63      valid       always 1 in a pushed trigger, so w1 != 0
 *
 * The FIFO is a ring of `size` (a power of two) trigger slots in page-locked
 * host memory. A producer claims a slot number with an atomic add on *head,
 * waits while slot - *tail >= size (ring full), writes w0, fences, then
 * writes w1 (release). The single consumer (the proxy thread) spins on the
 * w1 of slot `tail % size`; once it is non-zero it reads w0, clears w1,
 * carries the trigger out and only then publishes tail + 1 (release). So a
 * producer that sees *tail > its slot number knows its trigger, a FLUSH
 * included, has completed. *tail_cache is a producer-side copy of *tail in
 * fast memory (device memory for GPU producers), refreshed when a producer
 * finds the ring full, so most pushes never read *tail across PCIe.
 */
#ifndef KCCL_DEVICE_TYPES_H
#define KCCL_DEVICE_TYPES_H

#include <stdint.h>

#if defined(__CUDACC__)
#define KCCL_HD __host__ __device__ __forceinline__
#else
#define KCCL_HD static inline
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define KCCL_TRIGGER_PUT    1u
#define KCCL_TRIGGER_SIGNAL 2u
#define KCCL_TRIGGER_FLUSH  4u

#define KCCL_TRIGGER_MAX_OFFSET  ((1ull << 38) - 1)
#define KCCL_TRIGGER_MAX_CHANNEL 32767u

typedef struct kccl_trigger {
    uint64_t w0;
    uint64_t w1;
} kccl_trigger_t;

typedef struct kccl_trigger_fields {
    uint32_t type;
    uint32_t channel;
    uint64_t dst_off;
    uint64_t src_off;
    uint32_t bytes;
} kccl_trigger_fields_t;

KCCL_HD kccl_trigger_t kccl_trigger_encode(uint32_t type, uint32_t channel, uint64_t dst_off,
                                           uint64_t src_off, uint32_t bytes)
{
    kccl_trigger_t t;
    t.w0 = (uint64_t)bytes | ((src_off & 0xFFFFFFFFull) << 32);
    t.w1 = (dst_off & KCCL_TRIGGER_MAX_OFFSET) | (((src_off >> 32) & 0x3Full) << 38) |
           ((uint64_t)(channel & 0x7FFFu) << 44) | ((uint64_t)(type & 7u) << 59) | (1ull << 63);
    return t;
}

KCCL_HD kccl_trigger_fields_t kccl_trigger_decode(kccl_trigger_t t)
{
    kccl_trigger_fields_t f;
    f.bytes = (uint32_t)(t.w0 & 0xFFFFFFFFull);
    f.src_off = (t.w0 >> 32) | (((t.w1 >> 38) & 0x3Full) << 32);
    f.dst_off = t.w1 & KCCL_TRIGGER_MAX_OFFSET;
    f.channel = (uint32_t)((t.w1 >> 44) & 0x7FFFu);
    f.type = (uint32_t)((t.w1 >> 59) & 7u);
    return f;
}

/* A FIFO as its producers see it (device or host addresses, per producer kind). */
typedef struct kccl_fifo_dev {
    kccl_trigger_t *slots; /* [size], page-locked host memory */
    uint64_t *head;        /* next slot number to claim */
    uint64_t *tail;        /* slots completed by the proxy (page-locked host memory) */
    uint64_t *tail_cache;  /* a recent *tail, close to the producers */
    uint64_t size;         /* power of two */
} kccl_fifo_dev_t;

/*
 * A semaphore as the waiting side sees it: *inbound is bumped by the peer
 * (its GPU through a peer mapping, or its proxy through a transport);
 * *expected counts this side's waits so far (device memory, shared by every
 * thread that uses the handle; one waiter at a time).
 */
typedef struct kccl_sem_dev {
    uint64_t *inbound;        /* this rank's counter, written by the peer */
    uint64_t *expected;       /* this rank's wait count */
    uint64_t *remote_inbound; /* the peer's counter mapped here (memory channel), else NULL */
} kccl_sem_dev_t;

/* Memory channel: direct loads/stores into the peer's buffer over NVLink/PCIe. */
typedef struct kccl_memory_channel_dev {
    void *local;  /* this rank's buffer (source of puts, destination of gets) */
    void *remote; /* the peer's buffer, mapped here */
    uint64_t local_bytes, remote_bytes;
    kccl_sem_dev_t sem;
} kccl_memory_channel_dev_t;

/* Port channel: triggers for this rank's proxy, which drives the transport. */
typedef struct kccl_port_channel_dev {
    kccl_fifo_dev_t fifo;
    uint32_t channel;
    uint32_t reserved;
    kccl_sem_dev_t sem; /* remote_inbound unused: signals go through the proxy */
} kccl_port_channel_dev_t;

#ifdef __cplusplus
}
#endif
#endif /* KCCL_DEVICE_TYPES_H */
