/*
 * mem.h - registered memory, inside: the per-communicator registry, the
 * registration and import records, and the handle codec.
 *
 * The registry maps (id, generation) to a live registration so a transport
 * that receives "write N bytes at offset O of registration I" from the
 * network (TCP) can check it against what this rank really registered:
 * unknown ids, stale generations and out-of-range writes are refused.
 * Lookups take the registry mutex; the address they return stays valid
 * while the registration lives (the owner deregisters only when no peer can
 * still write, see kccl_mem.h).
 */
#ifndef KCCL_MEMORY_MEM_H
#define KCCL_MEMORY_MEM_H

#include <pthread.h>
#include <stdint.h>

#include "kccl/kccl_mem.h"

#define KCCL_MEM_IPC_BYTES 64

enum {
    KCCL_MEM_IPC_NONE = 0,
    KCCL_MEM_IPC_LEGACY = 1,   /* cudaIpcMemHandle_t in ipc[] */
    KCCL_MEM_IPC_POSIX_FD = 2, /* cuMem allocation, fd fetched over the node's Unix socket */
};

struct kccl_link;
struct kccl_transport_state;

struct kccl_mem {
    kccl_comm_t comm;
    void *ptr;
    uint64_t len;
    kccl_mem_kind_t kind;
    int device; /* -1 for host memory */
    uint32_t id, gen;
    int owned; /* allocated by kccl_mem_alloc: freed at deregister */
    /* CUDA IPC (filled by the cuda_ipc transport) */
    uint8_t ipc_type;
    uint8_t ipc[KCCL_MEM_IPC_BYTES];
    uint64_t ipc_offset;  /* ptr - base of the allocation the IPC handle names */
    uint64_t token;       /* random: names the fd to same-node peers */
    int fd;               /* exported POSIX fd, or -1 */
    uint64_t cu_handle;   /* CUmemGenericAllocationHandle of an owned cuMem allocation */
    uint64_t alloc_bytes; /* granularity-rounded size of that allocation */
    /* InfiniBand (filled by the ib transport) */
    uint32_t rkey;
    void *ib_mr;
};

struct kccl_rmem {
    kccl_comm_t comm;
    struct kccl_link *link;
    int peer;
    kccl_mem_kind_t kind;
    uint32_t id, gen;
    int device;
    uint64_t base, len;
    uint64_t node;
    uint8_t ipc_type;
    uint8_t ipc[KCCL_MEM_IPC_BYTES];
    uint64_t ipc_offset;
    uint64_t token;
    uint32_t rkey;
    void *mapped;     /* the peer's memory mapped here (cuda_ipc) */
    uint64_t signals; /* signals this rank sent to the counter at offset 0 (cuda_ipc) */
    void *tp_priv;    /* transport's own state (e.g. the imported cuMem handle) */
    uint64_t map_bytes;
};

typedef struct kccl_memreg {
    pthread_mutex_t lock;
    struct kccl_mem **slots; /* [cap], index = id */
    uint32_t cap;
    uint32_t next_gen;
} kccl_memreg_t;

kccl_status_t kccl_memreg_init(kccl_memreg_t *reg);
void kccl_memreg_fini(kccl_memreg_t *reg);
kccl_status_t kccl_memreg_add(kccl_memreg_t *reg, struct kccl_mem *mem);
void kccl_memreg_remove(kccl_memreg_t *reg, struct kccl_mem *mem);
/*
 * Checks that [off, off+len) lies inside registration (id, gen) and returns
 * its address there, its kind and device. KCCL_ERR_NOT_FOUND for unknown or
 * stale registrations, KCCL_ERR_PROTOCOL for out-of-range writes. No logging.
 */
kccl_status_t kccl_memreg_resolve(kccl_memreg_t *reg, uint32_t id, uint32_t gen, uint64_t off,
                                  uint64_t len, void **addr, kccl_mem_kind_t *kind, int *device);

/* Handle codec. decode validates everything it can without the owner. */
void kccl_mem_handle_encode(const struct kccl_mem *mem, int owner, uint64_t node,
                            kccl_mem_handle_t *out);
/* Fills r (owner rank in *owner); why gets the reason on failure. */
kccl_status_t kccl_mem_handle_decode(const kccl_mem_handle_t *h, struct kccl_rmem *r, int *owner,
                                     char *why, size_t whylen);

#endif
