/*
 * kccl_mem.h - registered memory: local buffers peers may write into, and
 * the handles that name them to other ranks.
 *
 * A rank registers a buffer (host or device memory) with its communicator;
 * the registration gets a handle, KCCL_MEM_HANDLE_BYTES of self-contained
 * bytes (owner rank, address, length, and whatever each transport needs:
 * a CUDA IPC handle, an InfiniBand rkey). Handles travel over the bootstrap,
 * either all at once (kccl_mem_exchange, collective) or pair by pair
 * (kccl_mem_send / kccl_mem_recv). The receiving rank imports a handle as a
 * kccl_rmem_t bound to its link with the owner: the destination of puts and
 * signals (kccl_channel.h). Importing maps the memory where the link can
 * (CUDA IPC), so memory channels can write it from the GPU.
 *
 * Device memory allocated with kccl_mem_alloc(KCCL_MEM_DEVICE) uses the CUDA
 * virtual memory API with POSIX file-descriptor export, passed to same-node
 * peers over a Unix socket with SCM_RIGHTS; registered cudaMalloc memory
 * uses legacy cudaIpcMemHandle_t.
 *
 * Ownership and lifetime: a registration must outlive every peer's use of it
 * (like an RDMA memory region): deregister only after a barrier, when no peer
 * can still put into it. An rmem is released by its importer.
 * Thread-safety: registrations and imports may be made from any thread; a
 * single kccl_mem_t / kccl_rmem_t is not to be destroyed while in use.
 */
#ifndef KCCL_MEM_H
#define KCCL_MEM_H

#include <stddef.h>
#include <stdint.h>

#include "kccl_comm.h"
#include "kccl_status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KCCL_MEM_HANDLE_BYTES 256

typedef enum {
    KCCL_MEM_HOST = 0,
    KCCL_MEM_DEVICE = 1,
} kccl_mem_kind_t;

typedef struct kccl_mem *kccl_mem_t;   /* this rank's registration */
typedef struct kccl_rmem *kccl_rmem_t; /* a peer's registration, imported */

/* The serialized handle. Layout: runtime/memory/README.md. */
typedef struct kccl_mem_handle {
    unsigned char internal[KCCL_MEM_HANDLE_BYTES];
} kccl_mem_handle_t;

/* Registers [ptr, ptr+bytes) of the given kind (device memory: the calling
 * thread's current device must own it). */
kccl_status_t kccl_mem_register(kccl_comm_t comm, void *ptr, size_t bytes, kccl_mem_kind_t kind,
                                kccl_mem_t *out);

/* Allocates and registers: host memory is page-aligned (and page-locked when
 * CUDA is present); device memory comes from cuMemCreate with POSIX fd export
 * on the current device. Freed by kccl_mem_deregister. Zero-filled. */
kccl_status_t kccl_mem_alloc(kccl_comm_t comm, size_t bytes, kccl_mem_kind_t kind, kccl_mem_t *out);

void *kccl_mem_ptr(kccl_mem_t mem);
size_t kccl_mem_size(kccl_mem_t mem);
kccl_mem_kind_t kccl_mem_kind(kccl_mem_t mem);

/* Writes the handle of mem. */
kccl_status_t kccl_mem_get_handle(kccl_mem_t mem, kccl_mem_handle_t *out);

/* Imports a handle received from its owner `peer` (strictly validated).
 * For fd-exported device memory the owner must be inside kccl_mem_send /
 * kccl_mem_exchange for the same memory at the same time. */
kccl_status_t kccl_rmem_import(kccl_comm_t comm, const kccl_mem_handle_t *handle, kccl_rmem_t *out);

/* Pairwise: send mem's handle to peer / receive peer's next handle.
 * Both ranks of a pair call them in the same order. */
kccl_status_t kccl_mem_send(kccl_comm_t comm, kccl_mem_t mem, int peer);
kccl_status_t kccl_mem_recv(kccl_comm_t comm, int peer, kccl_rmem_t *out);

/* Collective: every rank registers one buffer; out[r] becomes rank r's
 * buffer imported here (out[self] = NULL). out has comm size entries. */
kccl_status_t kccl_mem_exchange(kccl_comm_t comm, kccl_mem_t mem, kccl_rmem_t *out);

int kccl_rmem_peer(kccl_rmem_t rmem);
size_t kccl_rmem_size(kccl_rmem_t rmem);
kccl_mem_kind_t kccl_rmem_kind(kccl_rmem_t rmem);
/* The peer's memory mapped into this process (CUDA IPC links), or NULL. */
void *kccl_rmem_mapped_ptr(kccl_rmem_t rmem);

void kccl_rmem_release(kccl_rmem_t rmem);
void kccl_mem_deregister(kccl_mem_t mem);

#ifdef __cplusplus
}
#endif
#endif /* KCCL_MEM_H */
