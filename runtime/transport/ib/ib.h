/*
 * ib.h - the InfiniBand / RoCE transport, inside. NOT YET RUN ON REAL HCAs:
 * everything here is exercised against the fake verbs table of
 * tests/unit/transport (state machine, data movement, every failure), never
 * against hardware. See runtime/transport/README.md.
 *
 * One device port per communicator (KCCL_IB_HCA / KCCL_IB_PORT, else the
 * first active one), one protection domain and one completion queue; one RC
 * queue pair per link. Puts are RDMA writes; signals are 8-byte fetch-and-add
 * atomics on the peer's counter (KCCL_IB_SIGNAL=atomic, default) or
 * zero-length writes with immediate data (=imm: the peer adds one when it
 * polls its completion queue; host-memory counters only). Flush waits for
 * the completions of everything posted on the link. Device memory is
 * registered through dma-buf (ibv_reg_dmabuf_mr on the fd CUDA exports),
 * falling back to nvidia-peermem (plain ibv_reg_mr on the device pointer).
 * RLIMIT_MEMLOCK is checked before anything is registered.
 */
#ifndef KCCL_TRANSPORT_IB_H
#define KCCL_TRANSPORT_IB_H

#include <pthread.h>
#include <stdint.h>

#include "transport/ib/ib_verbs.h"
#include "transport/transport.h"

#define IB_SEND_WR 512
#define IB_RECV_WR 128
#define IB_MAX_MSG (1ull << 30)
/* Memlock below this fails set-up (registration would fail later, less clearly). */
#define IB_MIN_MEMLOCK (64ull << 20)

typedef struct kccl_tp_ep {
    struct kccl_tp_ctx *ctx;
    int peer;
    struct ibv_qp *qp;
    uint32_t psn;
    /* the peer's record */
    uint32_t peer_qpn, peer_psn;
    uint16_t peer_lid;
    union ibv_gid peer_gid;
    uint8_t peer_mtu;
    pthread_mutex_t lock; /* posting */
    uint64_t posted;      /* send WRs posted (all signalled) */
    uint64_t completed;   /* their completions (ctx cq_lock) */
    int err;              /* atomic */
    char why[320];
} ib_ep_t;

typedef struct kccl_tp_ctx {
    kccl_tp_env_t env;
    const kccl_ibv_t *v;
    struct ibv_context *dev;
    struct ibv_pd *pd;
    struct ibv_cq *cq;
    char dev_name[64];
    uint8_t port;
    uint8_t link_layer; /* IBV_LINK_LAYER_* */
    uint16_t lid;
    int gid_index;
    int gid_type;
    union ibv_gid gid;
    uint8_t mtu; /* enum ibv_mtu */
    int signal_imm;
    int gdr;           /* 0 off, 1 auto, 2 dmabuf only, 3 peermem only */
    uint64_t *scratch; /* atomics' fetched values land here */
    struct ibv_mr *scratch_mr;
    pthread_mutex_t cq_lock;
    ib_ep_t **eps; /* [nranks] */
} ib_ctx_t;

/* ib_setup.c */
kccl_status_t kccl_ib_pick_gid(const kccl_ibv_t *v, struct ibv_context *dev, uint8_t port, int want,
                               int *index, int *type, union ibv_gid *gid);
kccl_status_t kccl_ib_check_memlock(const kccl_ibv_t *v, int rank);

/* ib.c */
kccl_status_t kccl_ib_mem_register(kccl_tp_ctx_t *c, struct kccl_mem *mem);
void kccl_ib_mem_deregister(kccl_tp_ctx_t *c, struct kccl_mem *mem);
kccl_status_t kccl_ib_put(kccl_tp_ep_t *ep, struct kccl_rmem *dst, uint64_t dst_off,
                          struct kccl_mem *src, uint64_t src_off, uint64_t len);
kccl_status_t kccl_ib_signal(kccl_tp_ep_t *ep, struct kccl_rmem *dst, uint64_t off);
kccl_status_t kccl_ib_flush(kccl_tp_ep_t *ep, int64_t deadline_ms);
kccl_status_t kccl_ib_ep_status(kccl_tp_ep_t *ep);
kccl_status_t kccl_ib_ep_report(kccl_tp_ep_t *ep, const char *what);
/* Drains the completion queue (and applies immediate-data signals). */
void kccl_ib_poll(ib_ctx_t *c);
kccl_status_t kccl_ib_post_recvs(ib_ep_t *ep, int n);
kccl_status_t kccl_ib_ep_fail(ib_ep_t *ep, kccl_status_t st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
