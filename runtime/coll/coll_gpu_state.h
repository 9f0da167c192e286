/*
 * coll_gpu_state.h - the GPU collectives' per-communicator state (behind
 * comm->coll_gpu), shared by coll_gpu.c (set-up, algorithm choice, launches)
 * and coll_gpu_reg.c (user buffers for the zero-copy algorithms).
 */
#ifndef KCCL_COLL_GPU_STATE_H
#define KCCL_COLL_GPU_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "coll/coll_gpu.h"
#include "kccl/kccl_mem.h"

#define KCCL_CG_REG_SLOTS 256 /* this rank's registered user buffers */
#define KCCL_CG_IMP_SLOTS                                                                          \
    1024                  /* peers' user buffers imported here (an evicted import may              \
                              close a mapping a captured graph still uses: keep it large) */
#define KCCL_CG_EVENTS 64 /* fork/join events of the copy-engine pipeline */

typedef struct {
    const void *ptr;
    size_t bytes;
    unsigned long long id; /* the allocation's CUDA buffer id: a freed and reused address misses */
    kccl_mem_t mem;
    uint64_t used;
} kccl_cg_reg_t;

typedef struct {
    int peer;
    kccl_mem_handle_t handle;
    kccl_rmem_t rmem;
    uint64_t used;
} kccl_cg_imp_t;

typedef struct kccl_cg_state {
    kccl_comm_t comm;
    int n, me, dev, nsm;
    kccl_mem_t scratch;
    kccl_rmem_t peer_rmem[KCCL_CG_MAX_RANKS];
    void *peer_scratch[KCCL_CG_MAX_RANKS];
    uint64_t *epoch;              /* [KCCL_CG_MAX_BLOCKS] device memory */
    void *side;                   /* cudaStream_t: copy-engine work beside the caller's */
    void *events[KCCL_CG_EVENTS]; /* cudaEvent_t, reused round robin (fork/join) */
    unsigned next_event;
    void *pull; /* local scratch of the copy-engine pull all-reduce (cudaMalloc) */
    size_t pull_bytes;
    int algo;       /* KCCL_COLL_ALGO: kccl_cg_algo_t */
    long ll_max;    /* KCCL_COLL_LL_MAX, bytes; -1: the built-in table */
    long ll2_max;   /* KCCL_COLL_LL2_MAX */
    long ce_min;    /* KCCL_COLL_CE_MIN */
    long cep_min;   /* KCCL_COLL_CEP_MIN */
    long zc_blocks; /* KCCL_COLL_ZC_BLOCKS; -1: zc_grid()'s rule (coll_gpu.c) */
    uint64_t tick;
    void *ptr_attr; /* cuPointerGetAttribute, or NULL */
    kccl_cg_reg_t reg[KCCL_CG_REG_SLOTS];
    kccl_cg_imp_t imp[KCCL_CG_IMP_SLOTS];
} kccl_cg_state_t;

/*
 * Collective (every rank of the call): registers this rank's send/recv buffers
 * (cached by pointer, size and CUDA buffer id), all-gathers their handles and
 * imports the peers' (cached by handle). *ok = 1 when every rank's buffers
 * can be mapped here, then peer_send/peer_recv[r] are rank r's buffers as
 * this process sees them ([me] = send/recv); *aligned = 1 when every rank's
 * buffers start on 16 bytes. send may be NULL (broadcast, non-root).
 */
kccl_status_t kccl_cg_buffers(kccl_cg_state_t *s, const void *send, size_t send_bytes, void *recv,
                              size_t recv_bytes, const void **peer_send, void **peer_recv, int *ok,
                              int *aligned);

/* Drops every cached registration and import. */
void kccl_cg_buffers_free(kccl_cg_state_t *s);

#endif
