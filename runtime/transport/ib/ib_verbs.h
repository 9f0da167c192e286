/*
 * ib_verbs.h - the libibverbs calls the InfiniBand transport makes, as one
 * function table. The real table dlopen()s libibverbs.so.1 on first use, so
 * libkccl runs on machines without rdma-core; unit tests install a fake
 * table (kccl_ibv_set_table) that simulates devices, queue pairs and RDMA in
 * one process and fails any call on demand.
 *
 * post_send/poll_cq/post_recv are inline in verbs.h (they jump through the
 * context's ops); the real table wraps them. Port and GID queries go through
 * plain entry points; the RoCE version of a GID comes from sysfs
 * (gid_attrs/types), or the fake.
 */
#ifndef KCCL_TRANSPORT_IB_VERBS_H
#define KCCL_TRANSPORT_IB_VERBS_H

#include <infiniband/verbs.h>
#include <sys/resource.h>

#include "kccl/kccl_status.h"

enum { KCCL_GID_IB_ROCE_V1 = 1, KCCL_GID_ROCE_V2 = 2 };

typedef struct kccl_ibv {
    const char *name;
    struct ibv_device **(*get_device_list)(int *num);
    void (*free_device_list)(struct ibv_device **list);
    const char *(*get_device_name)(struct ibv_device *dev);
    struct ibv_context *(*open_device)(struct ibv_device *dev);
    int (*close_device)(struct ibv_context *ctx);
    int (*query_device)(struct ibv_context *ctx, struct ibv_device_attr *attr);
    int (*query_port)(struct ibv_context *ctx, uint8_t port, struct ibv_port_attr *attr);
    int (*query_gid)(struct ibv_context *ctx, uint8_t port, int index, union ibv_gid *gid);
    /* KCCL_GID_*, or -1 when unknown. */
    int (*gid_type)(struct ibv_context *ctx, uint8_t port, int index);
    struct ibv_pd *(*alloc_pd)(struct ibv_context *ctx);
    int (*dealloc_pd)(struct ibv_pd *pd);
    struct ibv_cq *(*create_cq)(struct ibv_context *ctx, int cqe, void *cq_ctx,
                                struct ibv_comp_channel *ch, int vector);
    int (*destroy_cq)(struct ibv_cq *cq);
    struct ibv_qp *(*create_qp)(struct ibv_pd *pd, struct ibv_qp_init_attr *attr);
    int (*modify_qp)(struct ibv_qp *qp, struct ibv_qp_attr *attr, int mask);
    int (*destroy_qp)(struct ibv_qp *qp);
    struct ibv_mr *(*reg_mr)(struct ibv_pd *pd, void *addr, size_t len, int access);
    /* NULL when the library predates dma-buf (rdma-core < 34). */
    struct ibv_mr *(*reg_dmabuf_mr)(struct ibv_pd *pd, uint64_t offset, size_t len, uint64_t iova,
                                    int fd, int access);
    int (*dereg_mr)(struct ibv_mr *mr);
    int (*post_send)(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad);
    int (*post_recv)(struct ibv_qp *qp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad);
    int (*poll_cq)(struct ibv_cq *cq, int n, struct ibv_wc *wc);
    const char *(*wc_status_str)(enum ibv_wc_status st);
    /* RLIMIT_MEMLOCK (a table entry so tests can play a container's 8 MiB). */
    int (*get_memlock)(struct rlimit *rl);
    /* 1 when the nvidia-peermem module is loaded (GPUDirect without dma-buf). */
    int (*peermem_loaded)(void);
} kccl_ibv_t;

/* The table in force: a test's, else libibverbs (loaded once). NULL with *why
 * filled when the library or a symbol is missing. */
const kccl_ibv_t *kccl_ibv(char *why, size_t whylen);
void kccl_ibv_set_table(const kccl_ibv_t *t);

#endif
