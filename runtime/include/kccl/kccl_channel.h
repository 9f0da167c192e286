/*
 * kccl_channel.h - links, semaphores and channels.
 *
 * Link: the one connection between this rank and a peer, set up by
 * kccl_comm_init_*: CUDA IPC between ranks on one node with GPUs, InfiniBand
 * across nodes where an HCA is usable, TCP otherwise (KCCL_TRANSPORT forces
 * one). Links move bytes between registered memory (kccl_mem.h): put writes
 * the peer's memory, signal adds one to a 64-bit counter in it, flush waits
 * until everything put and signalled so far has landed. Puts are
 * asynchronous: their source must stay unchanged until a flush returns.
 * Operations on one link take effect at the peer in issue order, so a peer
 * that sees a signal also sees every put issued before it.
 *
 * Semaphores pair two ranks; both call the create function (same order on
 * both sides). Host semaphores: the CPU signals, the peer's CPU waits (links
 * that carry host memory: TCP, InfiniBand). Device semaphores live inside
 * channels: a memory channel's GPU signals the peer's GPU directly; a port
 * channel's GPU asks the proxy to signal (host-to-device).
 *
 * Channels: a memory channel maps the peer's buffer for direct GPU loads and
 * stores (CUDA IPC links only); a port channel sends triggers through a FIFO
 * to this rank's proxy thread, which carries out put/signal/flush on the
 * link (any transport). Device code uses the handles from
 * kccl_*_channel_device_handle with kernels/include/kccl/kccl_channel.cuh;
 * host code may drive a port channel too (kccl_port_channel_put ...).
 *
 * Errors: every wait has a deadline; a lost peer fails waits with
 * KCCL_ERR_REMOTE naming the peer rank.
 */
#ifndef KCCL_CHANNEL_H
#define KCCL_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "kccl_comm.h"
#include "kccl_device_types.h"
#include "kccl_mem.h"
#include "kccl_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kccl_link *kccl_link_t;

#define KCCL_LINK_CAP_HOST_MEM   (1u << 0) /* puts from/to host memory */
#define KCCL_LINK_CAP_DEVICE_MEM (1u << 1) /* puts from/to device memory */
#define KCCL_LINK_CAP_PEER_MAP   (1u << 2) /* peer memory mapped here (memory channels) */

/* The link to peer (NULL for this rank itself or a bad rank). Owned by comm. */
kccl_link_t kccl_comm_link(kccl_comm_t comm, int peer);
/* "tcp", "cuda_ipc" or "ib". */
const char *kccl_link_transport(kccl_link_t link);
unsigned kccl_link_caps(kccl_link_t link);
int kccl_link_peer(kccl_link_t link);

/* Writes bytes from src+src_off into the peer's dst+dst_off. Asynchronous. */
kccl_status_t kccl_link_put(kccl_link_t link, kccl_rmem_t dst, uint64_t dst_off, kccl_mem_t src,
                            uint64_t src_off, uint64_t bytes);
/* Adds one to the 64-bit counter at dst+dst_off (8-byte aligned) after every
 * earlier put on this link. */
kccl_status_t kccl_link_signal(kccl_link_t link, kccl_rmem_t dst, uint64_t dst_off);
/* Waits until every earlier put/signal on this link has landed at the peer.
 * timeout_ms < 0: the communicator's default (KCCL_BOOTSTRAP_TIMEOUT). */
kccl_status_t kccl_link_flush(kccl_link_t link, int64_t timeout_ms);

/* ---- host semaphores (host to host) ---- */

typedef struct kccl_host_sem *kccl_host_sem_t;

/* Pairwise with peer (both call it). */
kccl_status_t kccl_host_sem_create(kccl_comm_t comm, int peer, kccl_host_sem_t *out);
/* Adds one to the peer's counter (after earlier puts on the link). */
kccl_status_t kccl_host_sem_signal(kccl_host_sem_t sem);
/* Waits until the peer has signalled once more than waited for so far. */
kccl_status_t kccl_host_sem_wait(kccl_host_sem_t sem, int64_t timeout_ms);
/* Signals received so far. */
uint64_t kccl_host_sem_value(kccl_host_sem_t sem);
void kccl_host_sem_destroy(kccl_host_sem_t sem);

/* ---- memory channels (device to device, CUDA IPC links) ---- */

typedef struct kccl_memory_channel *kccl_memory_channel_t;

/* Pairwise. local: this rank's buffer; remote: the peer's, imported. Creates
 * the device-to-device semaphore pair. */
kccl_status_t kccl_memory_channel_create(kccl_comm_t comm, int peer, kccl_mem_t local,
                                         kccl_rmem_t remote, kccl_memory_channel_t *out);
kccl_status_t kccl_memory_channel_device_handle(kccl_memory_channel_t ch,
                                                kccl_memory_channel_dev_t *out);
void kccl_memory_channel_destroy(kccl_memory_channel_t ch);

/* ---- port channels (through the proxy; any link) ---- */

typedef struct kccl_port_channel *kccl_port_channel_t;

/* Pairwise. Puts copy src (this rank's) into dst (the peer's); signals bump
 * the peer's inbound counter (device memory when the peer has a GPU, host
 * memory otherwise). Starts this rank's proxy thread on first use. */
kccl_status_t kccl_port_channel_create(kccl_comm_t comm, int peer, kccl_mem_t src, kccl_rmem_t dst,
                                       kccl_port_channel_t *out);
/* The device view: triggers go to the GPU FIFO (needs CUDA). */
kccl_status_t kccl_port_channel_device_handle(kccl_port_channel_t ch, kccl_port_channel_dev_t *out);
/* Host producers: push one trigger into the proxy's host FIFO. */
kccl_status_t kccl_port_channel_put(kccl_port_channel_t ch, uint64_t dst_off, uint64_t src_off,
                                    uint64_t bytes);
kccl_status_t kccl_port_channel_signal(kccl_port_channel_t ch);
/* Pushes a FLUSH and waits until the proxy has carried it (and all before it) out. */
kccl_status_t kccl_port_channel_flush(kccl_port_channel_t ch, int64_t timeout_ms);
/* Waits on the host for the peer's next signal (host-memory counters only). */
kccl_status_t kccl_port_channel_wait(kccl_port_channel_t ch, int64_t timeout_ms);
void kccl_port_channel_destroy(kccl_port_channel_t ch);

#ifdef __cplusplus
}
#endif
#endif /* KCCL_CHANNEL_H */
