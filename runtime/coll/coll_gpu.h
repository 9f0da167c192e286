/*
 * coll_gpu.h - what the GPU collectives' host side (coll_gpu.c) hands the
 * kernels (kernels/src/coll/coll_kernels.cu): one plain C launch record per
 * kernel, the scratch layout both sides agree on, and the algorithm ids.
 *
 * Scratch (one kccl_mem_alloc'ed device buffer per rank, mapped by every
 * same-node peer):
 *   [0, KCCL_CG_FLAGS_BYTES)      flags[block][src rank]: 64-bit words a peer's
 *                                 block stores its step number into (barriers,
 *                                 presence), monotonic per block
 *   then 2 areas x 2 parities x KCCL_CG_MAX_RANKS sources x KCCL_CG_LL_SLOT_BYTES:
 *                                 LL packet slots; area 0 = first step, area 1
 *                                 = second step of two-step algorithms; parity
 *                                 = step number & 1
 *
 * Step numbers: epoch[b] (device memory, this rank's) is block b's counter;
 * block b of every kernel reads it on entry, uses epoch+1, epoch+2, ... as
 * its flag values and stores the last one used on exit. Block b alone uses
 * flags[b][*] and block b's part of every LL slot (packets [b, b+1) x
 * KCCL_CG_LL_BLOCK_PACKETS, whatever the grid), so every location sees one
 * monotonic sequence. Ranks run the same sequence of launches with the same
 * grids, so the counters agree on every rank, also across CUDA-graph replays
 * (the host never writes them).
 */
#ifndef KCCL_COLL_GPU_INT_H
#define KCCL_COLL_GPU_INT_H

#include <stddef.h>
#include <stdint.h>

#define KCCL_CG_MAX_RANKS        8
#define KCCL_CG_MAX_BLOCKS       512
#define KCCL_CG_FLAGS_BYTES      ((size_t)KCCL_CG_MAX_BLOCKS * KCCL_CG_MAX_RANKS * 8)
#define KCCL_CG_LL_PAYLOAD       ((size_t)512 << 10)      /* data bytes per LL slot */
#define KCCL_CG_LL_SLOT_BYTES    (2 * KCCL_CG_LL_PAYLOAD) /* 8 B data per 16 B packet */
#define KCCL_CG_LL_MAX_BLOCKS    64 /* an LL launch's grid; block b owns packets [b, b+1) * BP */
#define KCCL_CG_LL_BLOCK_PACKETS (KCCL_CG_LL_PAYLOAD / 8 / KCCL_CG_LL_MAX_BLOCKS)
#define KCCL_CG_SCRATCH_BYTES                                                                      \
    (KCCL_CG_FLAGS_BYTES + (size_t)2 * 2 * KCCL_CG_MAX_RANKS * KCCL_CG_LL_SLOT_BYTES)

/* Algorithms (KCCL_COLL_ALGO names them in this order). */
typedef enum {
    KCCL_CG_AUTO = 0,
    KCCL_CG_LL = 1,      /* one step of LL packets through scratch */
    KCCL_CG_LL2 = 2,     /* all-reduce: reduce-scatter + all-gather, both as LL packets */
    KCCL_CG_ZC = 3,      /* zero-copy: loads/stores straight into peers' user buffers */
    KCCL_CG_CE = 4,      /* all-reduce/all-gather: zero-copy reduce, then copy-engine puts */
    KCCL_CG_BARRIER = 5, /* internal: the one-block barrier kernel around copy-engine work */
    KCCL_CG_CEP = 6,     /* all-reduce: copy-engine pulls, local reduce, copy-engine puts */
    KCCL_CG_RED = 7,     /* internal: CEP's local reduce kernel */
    KCCL_CG_COPY = 8,    /* internal: local copy kernel, recv <- send, lo bytes (all-gather) */
} kccl_cg_algo_t;

/* Collective kinds as coll.h numbers them. */
#define KCCL_CG_ALL_REDUCE     0
#define KCCL_CG_ALL_GATHER     1
#define KCCL_CG_REDUCE_SCATTER 2
#define KCCL_CG_BROADCAST      3

typedef struct kccl_cg_launch {
    int kind, algo, dtype, op; /* coll.h kind, kccl_cg_algo_t, kccl_dtype_t, kccl_redop_t */
    int rank, nranks, root;
    int aligned; /* ZC: 1 when every rank's buffers are 16-byte aligned */
    int phase;   /* ZC all-reduce: 0 whole; 1 reduce [lo, hi) of this rank's region into its
                    own recv only (the copy engine puts it into peers) */
    int blocks, threads;
    size_t count;  /* elements, as the API defines them for the kind */
    size_t stride; /* elements between ranks' regions: all-gather's recv, reduce-scatter's send */
    size_t lo, hi; /* phase 1: elements [lo, hi) of this rank's region */
    const void *send;
    void *recv;
    void *scratch;                            /* this rank's scratch */
    void *peer_scratch[KCCL_CG_MAX_RANKS];    /* mapped; [rank] = scratch */
    const void *peer_send[KCCL_CG_MAX_RANKS]; /* ZC: mapped user buffers; [rank] = send */
    void *peer_recv[KCCL_CG_MAX_RANKS];
    uint64_t *epoch; /* [KCCL_CG_MAX_BLOCKS], device memory */
    void *stream;    /* cudaStream_t */
} kccl_cg_launch_t;

#ifdef __cplusplus
extern "C" {
#endif

/* Launches one kernel; returns the cudaError_t of the launch (0 = success). */
int kccl_cg_launch(const kccl_cg_launch_t *l);
/* Loads every kernel's module now (lazy loading would otherwise load a kernel on
 * first launch, waiting for spinning kernels of the context: tests/gpu/NOTES.md). */
int kccl_cg_preload(void);
/* Bytes of payload one LL launch may carry per slot (the host chunks above it). */
size_t kccl_cg_ll_payload(void);

#ifdef __cplusplus
}
#endif
#endif
