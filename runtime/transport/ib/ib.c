/*
 * ib.c - InfiniBand data path: memory registration (host, and device memory
 * through dma-buf or nvidia-peermem), RDMA writes, atomic or immediate-data
 * signals, completion polling and flush. Not yet run on real HCAs (ib.h).
 */
#include "transport/ib/ib.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "memory/gpu.h"

#define MR_ACCESS                                                                                  \
    (IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |                   \
     IBV_ACCESS_REMOTE_ATOMIC)

kccl_status_t kccl_ib_ep_fail(ib_ep_t *ep, kccl_status_t st, const char *fmt, ...)
{
    char msg[150];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&ep->lock);
    if (ep->err == 0) {
        snprintf(ep->why, sizeof(ep->why), "rank %d: ib link to rank %d (%s): %s",
                 ep->ctx->env.rank, ep->peer, ep->ctx->dev_name, msg);
        __atomic_store_n(&ep->err, (int)st, __ATOMIC_RELEASE);
    }
    kccl_error_set("%s", ep->why);
    pthread_mutex_unlock(&ep->lock);
    kccl_log_error(IB, "%s", kccl_last_error());
    return st;
}

kccl_status_t kccl_ib_ep_status(kccl_tp_ep_t *ep)
{
    kccl_ib_poll(ep->ctx); /* cheap; applies immediate-data signals and notices failures */
    return (kccl_status_t)__atomic_load_n(&ep->err, __ATOMIC_ACQUIRE);
}

kccl_status_t kccl_ib_ep_report(kccl_tp_ep_t *ep, const char *what)
{
    pthread_mutex_lock(&ep->lock);
    kccl_error_set("%s: %s", ep->why, what);
    pthread_mutex_unlock(&ep->lock);
    kccl_log_error(IB, "%s", kccl_last_error());
    return (kccl_status_t)__atomic_load_n(&ep->err, __ATOMIC_ACQUIRE);
}

/* ------------------------------------------------------------ registration */

static struct ibv_mr *reg_device(ib_ctx_t *c, struct kccl_mem *mem, const char **how)
{
    const kccl_gpu_ops_t *gpu = kccl_gpu();
    struct ibv_mr *mr = NULL;
    if (c->gdr == 0)
        return NULL;
    if (c->gdr != 3 && c->v->reg_dmabuf_mr != NULL && gpu != NULL && gpu->dmabuf_fd != NULL) {
        int fd = -1;
        uint64_t off = 0;
        if (gpu->dmabuf_fd(mem->ptr, mem->len, &fd, &off) == KCCL_OK) {
            mr = c->v->reg_dmabuf_mr(c->pd, off, mem->len, (uint64_t)(uintptr_t)mem->ptr, fd,
                                     MR_ACCESS);
            close(fd);
            *how = "dma-buf";
        }
    }
    if (mr == NULL && c->gdr != 2) {
        mr = c->v->reg_mr(c->pd, mem->ptr, mem->len, MR_ACCESS); /* works with nvidia-peermem */
        *how = "nvidia-peermem";
    }
    return mr;
}

kccl_status_t kccl_ib_mem_register(kccl_tp_ctx_t *c, struct kccl_mem *mem)
{
    const char *how = "host";
    struct ibv_mr *mr = mem->kind == KCCL_MEM_DEVICE
                            ? reg_device(c, mem, &how)
                            : c->v->reg_mr(c->pd, mem->ptr, mem->len, MR_ACCESS);
    if (mr == NULL) {
        if (mem->kind == KCCL_MEM_DEVICE)
            KCCL_FAIL(IB, KCCL_ERR_IB,
                      "rank %d: registering %llu bytes of GPU memory with %s failed "
                      "(KCCL_IB_GDR=%s; dma-buf needs rdma-core >= 34 and a dma-buf capable "
                      "driver; otherwise load nvidia-peermem%s)",
                      c->env.rank, (unsigned long long)mem->len, c->dev_name,
                      c->gdr == 0   ? "off"
                      : c->gdr == 2 ? "dmabuf"
                      : c->gdr == 3 ? "peermem"
                                    : "auto",
                      c->v->peermem_loaded() ? ", which is loaded" : ", which is not loaded");
        KCCL_FAIL(IB, KCCL_ERR_IB,
                  "rank %d: ibv_reg_mr of %llu bytes on %s failed: check RLIMIT_MEMLOCK "
                  "(ulimit -l unlimited)",
                  c->env.rank, (unsigned long long)mem->len, c->dev_name);
    }
    kccl_log_debug(IB, "rank %d: registered %llu bytes (%s), rkey 0x%x", c->env.rank,
                   (unsigned long long)mem->len, how, mr->rkey);
    mem->ib_mr = mr;
    mem->rkey = mr->rkey;
    return KCCL_OK;
}

void kccl_ib_mem_deregister(kccl_tp_ctx_t *c, struct kccl_mem *mem)
{
    if (mem->ib_mr != NULL)
        c->v->dereg_mr(mem->ib_mr);
    mem->ib_mr = NULL;
}

/* ----------------------------------------------------------------- polling */

kccl_status_t kccl_ib_post_recvs(ib_ep_t *ep, int n)
{
    for (int i = 0; i < n; i++) {
        struct ibv_recv_wr wr, *bad = NULL;
        memset(&wr, 0, sizeof(wr));
        wr.wr_id = (uint64_t)ep->peer;
        if (ep->ctx->v->post_recv(ep->qp, &wr, &bad) != 0)
            return kccl_ib_ep_fail(ep, KCCL_ERR_IB, "ibv_post_recv failed");
    }
    return KCCL_OK;
}

/* Immediate data names the counter's registration id; the counter is its first 8 bytes. */
static void apply_imm(ib_ctx_t *c, ib_ep_t *ep, uint32_t id)
{
    kccl_memreg_t *reg = c->env.reg;
    void *addr = NULL;
    int found = 0;
    pthread_mutex_lock(&reg->lock);
    if (id < reg->cap && reg->slots[id] != NULL && reg->slots[id]->kind == KCCL_MEM_HOST &&
        reg->slots[id]->len >= 8) {
        addr = reg->slots[id]->ptr;
        found = 1;
    }
    pthread_mutex_unlock(&reg->lock);
    if (!found) {
        kccl_ib_ep_fail(ep, KCCL_ERR_PROTOCOL, "signal for unknown registration %u", id);
        return;
    }
    __atomic_fetch_add((uint64_t *)addr, 1, __ATOMIC_RELEASE);
    kccl_ib_post_recvs(ep, 1);
}

void kccl_ib_poll(ib_ctx_t *c)
{
    struct ibv_wc wc[16];
    if (pthread_mutex_trylock(&c->cq_lock) != 0)
        return; /* someone else is polling */
    for (;;) {
        int n = c->v->poll_cq(c->cq, 16, wc);
        if (n <= 0)
            break;
        for (int i = 0; i < n; i++) {
            uint64_t peer = wc[i].wr_id;
            ib_ep_t *ep = peer < (uint64_t)c->env.nranks ? c->eps[peer] : NULL;
            if (ep == NULL)
                continue;
            if (wc[i].status != IBV_WC_SUCCESS) {
                kccl_ib_ep_fail(ep, KCCL_ERR_IB, "work completion failed: %s (vendor error 0x%x)",
                                c->v->wc_status_str(wc[i].status), wc[i].vendor_err);
                continue;
            }
            if (wc[i].opcode == IBV_WC_RECV_RDMA_WITH_IMM)
                apply_imm(c, ep, ntohl(wc[i].imm_data));
            else
                __atomic_fetch_add(&ep->completed, 1, __ATOMIC_RELEASE);
        }
    }
    pthread_mutex_unlock(&c->cq_lock);
}

/* ----------------------------------------------------------------- posting */

/* Waits (polling) until the send queue has room for one more WR. */
static kccl_status_t wait_room(ib_ep_t *ep, int64_t deadline)
{
    while (ep->posted - __atomic_load_n(&ep->completed, __ATOMIC_ACQUIRE) >= IB_SEND_WR - 1) {
        kccl_ib_poll(ep->ctx);
        if (ep->err)
            return (kccl_status_t)ep->err;
        if (kccl_tp_now_ms() >= deadline)
            return kccl_ib_ep_fail(ep, KCCL_ERR_TIMED_OUT,
                                   "send queue full until the deadline: the peer stopped "
                                   "acknowledging (dead or unreachable?)");
    }
    return KCCL_OK;
}

static kccl_status_t post(ib_ep_t *ep, struct ibv_send_wr *wr, const char *what)
{
    struct ibv_send_wr *bad = NULL;
    kccl_status_t st = wait_room(ep, kccl_tp_now_ms() + ep->ctx->env.timeout_ms);
    if (st != KCCL_OK)
        return st;
    wr->wr_id = (uint64_t)ep->peer;
    wr->send_flags |= IBV_SEND_SIGNALED;
    if (ep->ctx->v->post_send(ep->qp, wr, &bad) != 0)
        return kccl_ib_ep_fail(ep, KCCL_ERR_IB, "ibv_post_send (%s) failed", what);
    ep->posted++;
    return KCCL_OK;
}

kccl_status_t kccl_ib_put(kccl_tp_ep_t *ep, struct kccl_rmem *dst, uint64_t dst_off,
                          struct kccl_mem *src, uint64_t src_off, uint64_t len)
{
    if (src->ib_mr == NULL)
        KCCL_FAIL(IB, KCCL_ERR_INVALID_ARG, "rank %d: put source is not registered with the HCA",
                  ep->ctx->env.rank);
    kccl_status_t st = KCCL_OK;
    pthread_mutex_lock(&ep->lock);
    int err = ep->err;
    pthread_mutex_unlock(&ep->lock);
    if (err)
        return kccl_ib_ep_report(ep, "put");
    pthread_mutex_lock(&ep->lock);
    for (uint64_t done = 0; done < len && st == KCCL_OK; done += IB_MAX_MSG) {
        uint64_t n = len - done < IB_MAX_MSG ? len - done : IB_MAX_MSG;
        struct ibv_sge sge = {.addr = (uint64_t)(uintptr_t)src->ptr + src_off + done,
                              .length = (uint32_t)n,
                              .lkey = ((struct ibv_mr *)src->ib_mr)->lkey};
        struct ibv_send_wr wr;
        memset(&wr, 0, sizeof(wr));
        wr.opcode = IBV_WR_RDMA_WRITE;
        wr.sg_list = &sge;
        wr.num_sge = 1;
        wr.wr.rdma.remote_addr = dst->base + dst_off + done;
        wr.wr.rdma.rkey = dst->rkey;
        pthread_mutex_unlock(&ep->lock); /* post() may fail the ep, which takes the lock */
        st = post(ep, &wr, "RDMA write");
        pthread_mutex_lock(&ep->lock);
    }
    pthread_mutex_unlock(&ep->lock);
    return st;
}

kccl_status_t kccl_ib_signal(kccl_tp_ep_t *ep, struct kccl_rmem *dst, uint64_t off)
{
    ib_ctx_t *c = ep->ctx;
    struct ibv_send_wr wr;
    memset(&wr, 0, sizeof(wr));
    if (__atomic_load_n(&ep->err, __ATOMIC_ACQUIRE))
        return kccl_ib_ep_report(ep, "signal");
    if (c->signal_imm) {
        if (off != 0 || dst->kind != KCCL_MEM_HOST)
            KCCL_FAIL(IB, KCCL_ERR_UNSUPPORTED,
                      "rank %d: KCCL_IB_SIGNAL=imm signals host counters at offset 0 only",
                      c->env.rank);
        wr.opcode = IBV_WR_RDMA_WRITE_WITH_IMM;
        wr.imm_data = htonl(dst->id);
        wr.wr.rdma.remote_addr = dst->base;
        wr.wr.rdma.rkey = dst->rkey;
        return post(ep, &wr, "write with immediate");
    }
    /* Fetch-and-add after the writes before it (the fence orders it behind them). */
    struct ibv_sge sge = {
        .addr = (uint64_t)(uintptr_t)c->scratch, .length = 8, .lkey = c->scratch_mr->lkey};
    wr.opcode = IBV_WR_ATOMIC_FETCH_AND_ADD;
    wr.send_flags = IBV_SEND_FENCE;
    wr.sg_list = &sge;
    wr.num_sge = 1;
    wr.wr.atomic.remote_addr = dst->base + off;
    wr.wr.atomic.compare_add = 1;
    wr.wr.atomic.rkey = dst->rkey;
    return post(ep, &wr, "atomic fetch-add");
}

kccl_status_t kccl_ib_flush(kccl_tp_ep_t *ep, int64_t deadline_ms)
{
    uint64_t target = ep->posted;
    while (__atomic_load_n(&ep->completed, __ATOMIC_ACQUIRE) < target) {
        kccl_ib_poll(ep->ctx);
        if (__atomic_load_n(&ep->err, __ATOMIC_ACQUIRE))
            return kccl_ib_ep_report(ep, "flush");
        if (kccl_tp_now_ms() >= deadline_ms)
            KCCL_FAIL(IB, KCCL_ERR_TIMED_OUT,
                      "rank %d: flush to rank %d (ib) timed out with %llu of %llu completions",
                      ep->ctx->env.rank, ep->peer,
                      (unsigned long long)__atomic_load_n(&ep->completed, __ATOMIC_ACQUIRE),
                      (unsigned long long)target);
    }
    return KCCL_OK;
}
