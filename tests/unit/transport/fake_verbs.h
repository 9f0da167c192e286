/*
 * fake_verbs.h - an in-process InfiniBand fabric behind the kccl_ibv_t table.
 *
 * One fake HCA ("mlx5_fake0") with one port whose state, link layer, LID and
 * GID table (with RoCE types) the test sets. Protection domains, completion
 * queues, RC queue pairs and memory regions are real objects with the verbs
 * rules the transport depends on: queue-pair transitions RESET -> INIT ->
 * RTR -> RTS with the required attribute masks (and a GRH on RoCE); posts
 * only in RTS; RDMA writes, fetch-and-add atomics and writes with immediate
 * data move bytes between the registered buffers of this one process,
 * checked against rkeys, lkeys, bounds and access flags, and complete with
 * the status a real HCA would report. Any verb can be made to fail
 * (fake_ibv_fail_at), and live objects are counted so tests can check that
 * every error path released what it took.
 */
#ifndef KCCL_TEST_FAKE_VERBS_H
#define KCCL_TEST_FAKE_VERBS_H

#include "transport/ib/ib_verbs.h"

typedef struct {
    int ndev;                  /* 0: no device */
    enum ibv_port_state state; /* of port 1 */
    uint8_t link_layer;        /* IBV_LINK_LAYER_* */
    uint16_t lid;
    int ngid;
    union ibv_gid gid[8];
    int gid_type[8];
    struct rlimit memlock;
    int peermem;
    int dmabuf; /* reg_dmabuf_mr present in the library */
    /* live objects */
    int ctxs, pds, cqs, qps, mrs;
    int dmabuf_regs; /* successful dma-buf registrations */
    int modify_calls;
} fake_ibv_state_t;

extern fake_ibv_state_t fake_ibv_state;
extern const kccl_ibv_t fake_ibv;

/* Fresh fabric: one active RoCE port, GIDs [fe80::1 (v1), fe80::1 (v2), ::ffff:10.0.0.1 (v2)],
 * memlock unlimited, no failure armed. */
void fake_ibv_reset(void);
/* The nth call (0 = next) of verb `name` (e.g. "create_qp") fails; NULL disarms. */
void fake_ibv_fail_at(const char *name, int nth);
/* Number of live objects of any kind (0 after a clean teardown). */
int fake_ibv_live(void);

#endif
