/*
 * fake_verbs.c - the fake fabric behind fake_verbs.h.
 */
#include "fake_verbs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

fake_ibv_state_t fake_ibv_state;

static const char *fail_name;
static int fail_nth;

static int should_fail(const char *name)
{
    if (fail_name == NULL || strcmp(fail_name, name) != 0)
        return 0;
    if (fail_nth-- > 0)
        return 0;
    fail_name = NULL;
    errno = ENOMEM;
    return 1;
}

void fake_ibv_fail_at(const char *name, int nth)
{
    fail_name = name;
    fail_nth = nth;
}

int fake_ibv_live(void)
{
    fake_ibv_state_t *s = &fake_ibv_state;
    return s->ctxs + s->pds + s->cqs + s->qps + s->mrs;
}

/* ------------------------------------------------------------- objects */

#define MAX_QP   64
#define MAX_MR   256
#define CQ_DEPTH 8192

typedef struct {
    struct ibv_cq cq;
    struct ibv_wc wc[CQ_DEPTH];
    unsigned head, tail;
} fcq_t;

typedef struct {
    struct ibv_qp qp;
    enum ibv_qp_state state;
    uint32_t dest;
    int recvs; /* posted receive WRs */
    uint64_t recv_ids[256];
    fcq_t *cq;
    int global;
} fqp_t;

typedef struct {
    struct ibv_mr mr;
    int access;
} fmr_t;

static struct ibv_device dev0;
static fqp_t *qps[MAX_QP];
static fmr_t *mrs[MAX_MR];
static uint32_t next_qpn = 100, next_key = 0x1000;

void fake_ibv_reset(void)
{
    fake_ibv_state_t *s = &fake_ibv_state;
    memset(s, 0, sizeof(*s));
    memset(qps, 0, sizeof(qps));
    memset(mrs, 0, sizeof(mrs));
    fail_name = NULL;
    s->ndev = 1;
    s->state = IBV_PORT_ACTIVE;
    s->link_layer = IBV_LINK_LAYER_ETHERNET;
    s->lid = 0;
    s->ngid = 3;
    s->gid[0].raw[0] = 0xfe, s->gid[0].raw[1] = 0x80, s->gid[0].raw[15] = 1;
    s->gid_type[0] = KCCL_GID_IB_ROCE_V1;
    s->gid[1] = s->gid[0];
    s->gid_type[1] = KCCL_GID_ROCE_V2;
    s->gid[2].raw[10] = 0xff, s->gid[2].raw[11] = 0xff, s->gid[2].raw[12] = 10;
    s->gid[2].raw[15] = 1;
    s->gid_type[2] = KCCL_GID_ROCE_V2;
    s->memlock.rlim_cur = s->memlock.rlim_max = RLIM_INFINITY;
    s->dmabuf = 1;
    snprintf(dev0.name, sizeof(dev0.name), "mlx5_fake0");
}

static struct ibv_device **f_get_device_list(int *num)
{
    if (should_fail("get_device_list"))
        return NULL;
    struct ibv_device **l = calloc(2, sizeof(*l));
    *num = fake_ibv_state.ndev;
    if (fake_ibv_state.ndev)
        l[0] = &dev0;
    return l;
}

static void f_free_device_list(struct ibv_device **l)
{
    free(l);
}

static const char *f_get_device_name(struct ibv_device *d)
{
    return d->name;
}

static struct ibv_context *f_open_device(struct ibv_device *d)
{
    if (should_fail("open_device"))
        return NULL;
    struct ibv_context *c = calloc(1, sizeof(*c));
    c->device = d;
    fake_ibv_state.ctxs++;
    return c;
}

static int f_close_device(struct ibv_context *c)
{
    free(c);
    fake_ibv_state.ctxs--;
    return 0;
}

static int f_query_device(struct ibv_context *c, struct ibv_device_attr *a)
{
    (void)c;
    if (should_fail("query_device"))
        return ENOMEM;
    memset(a, 0, sizeof(*a));
    a->phys_port_cnt = 1;
    a->max_qp_wr = 32768;
    return 0;
}

static int f_query_port(struct ibv_context *c, uint8_t port, struct ibv_port_attr *a)
{
    (void)c;
    if (should_fail("query_port") || port != 1)
        return EINVAL;
    memset(a, 0, sizeof(*a));
    a->state = fake_ibv_state.state;
    a->link_layer = fake_ibv_state.link_layer;
    a->lid = fake_ibv_state.lid;
    a->active_mtu = IBV_MTU_4096;
    a->gid_tbl_len = fake_ibv_state.ngid;
    return 0;
}

static int f_query_gid(struct ibv_context *c, uint8_t port, int i, union ibv_gid *g)
{
    (void)c, (void)port;
    if (should_fail("query_gid") || i < 0 || i >= fake_ibv_state.ngid)
        return EINVAL;
    *g = fake_ibv_state.gid[i];
    return 0;
}

static int f_gid_type(struct ibv_context *c, uint8_t port, int i)
{
    (void)c, (void)port;
    return i >= 0 && i < fake_ibv_state.ngid ? fake_ibv_state.gid_type[i] : -1;
}

static struct ibv_pd *f_alloc_pd(struct ibv_context *c)
{
    if (should_fail("alloc_pd"))
        return NULL;
    struct ibv_pd *pd = calloc(1, sizeof(*pd));
    pd->context = c;
    fake_ibv_state.pds++;
    return pd;
}

static int f_dealloc_pd(struct ibv_pd *pd)
{
    free(pd);
    fake_ibv_state.pds--;
    return 0;
}

static struct ibv_cq *f_create_cq(struct ibv_context *c, int cqe, void *cq_ctx,
                                  struct ibv_comp_channel *ch, int vector)
{
    (void)cq_ctx, (void)ch, (void)vector;
    if (should_fail("create_cq") || cqe > CQ_DEPTH)
        return NULL;
    fcq_t *q = calloc(1, sizeof(*q));
    q->cq.context = c;
    q->cq.cqe = cqe;
    fake_ibv_state.cqs++;
    return &q->cq;
}

static int f_destroy_cq(struct ibv_cq *cq)
{
    free(cq);
    fake_ibv_state.cqs--;
    return 0;
}

static struct ibv_qp *f_create_qp(struct ibv_pd *pd, struct ibv_qp_init_attr *a)
{
    if (should_fail("create_qp") || a->qp_type != IBV_QPT_RC || a->send_cq == NULL)
        return NULL;
    for (int i = 0; i < MAX_QP; i++)
        if (qps[i] == NULL) {
            fqp_t *q = calloc(1, sizeof(*q));
            q->qp.context = pd->context;
            q->qp.pd = pd;
            q->qp.qp_num = next_qpn++;
            q->qp.qp_type = IBV_QPT_RC;
            q->state = IBV_QPS_RESET;
            q->cq = (fcq_t *)a->send_cq;
            qps[i] = q;
            fake_ibv_state.qps++;
            return &q->qp;
        }
    return NULL;
}

static int f_destroy_qp(struct ibv_qp *qp)
{
    for (int i = 0; i < MAX_QP; i++)
        if (qps[i] != NULL && &qps[i]->qp == qp) {
            free(qps[i]);
            qps[i] = NULL;
            fake_ibv_state.qps--;
            return 0;
        }
    return EINVAL;
}

static int has(int mask, int need)
{
    return (mask & need) == need;
}

static int f_modify_qp(struct ibv_qp *qp, struct ibv_qp_attr *a, int mask)
{
    fqp_t *q = (fqp_t *)qp;
    fake_ibv_state.modify_calls++;
    if (should_fail("modify_qp") || !(mask & IBV_QP_STATE))
        return EINVAL;
    switch (a->qp_state) {
    case IBV_QPS_INIT:
        if (q->state != IBV_QPS_RESET ||
            !has(mask, IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS) || a->port_num != 1)
            return EINVAL;
        break;
    case IBV_QPS_RTR:
        if (q->state != IBV_QPS_INIT ||
            !has(mask, IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
                           IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER))
            return EINVAL;
        if (fake_ibv_state.link_layer == IBV_LINK_LAYER_ETHERNET &&
            (!a->ah_attr.is_global || a->ah_attr.grh.sgid_index >= fake_ibv_state.ngid))
            return EINVAL; /* RoCE needs a GRH with a valid source GID */
        q->dest = a->dest_qp_num;
        q->global = a->ah_attr.is_global;
        break;
    case IBV_QPS_RTS:
        if (q->state != IBV_QPS_RTR ||
            !has(mask, IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN |
                           IBV_QP_MAX_QP_RD_ATOMIC))
            return EINVAL;
        break;
    default: return EINVAL;
    }
    q->state = a->qp_state;
    return 0;
}

static struct ibv_mr *new_mr(struct ibv_pd *pd, void *addr, size_t len, int access)
{
    for (int i = 0; i < MAX_MR; i++)
        if (mrs[i] == NULL) {
            fmr_t *m = calloc(1, sizeof(*m));
            m->mr.context = pd->context;
            m->mr.pd = pd;
            m->mr.addr = addr;
            m->mr.length = len;
            m->mr.lkey = next_key++;
            m->mr.rkey = next_key++;
            m->access = access;
            mrs[i] = m;
            fake_ibv_state.mrs++;
            return &m->mr;
        }
    return NULL;
}

static struct ibv_mr *f_reg_mr(struct ibv_pd *pd, void *addr, size_t len, int access)
{
    struct rlimit *ml = &fake_ibv_state.memlock;
    if (should_fail("reg_mr") || (ml->rlim_cur != RLIM_INFINITY && len > ml->rlim_cur)) {
        errno = ENOMEM;
        return NULL;
    }
    return new_mr(pd, addr, len, access);
}

static struct ibv_mr *f_reg_dmabuf_mr(struct ibv_pd *pd, uint64_t off, size_t len, uint64_t iova,
                                      int fd, int access)
{
    (void)off;
    if (should_fail("reg_dmabuf_mr") || fd < 0)
        return NULL;
    fake_ibv_state.dmabuf_regs++;
    return new_mr(pd, (void *)(uintptr_t)iova, len, access);
}

static int f_dereg_mr(struct ibv_mr *mr)
{
    for (int i = 0; i < MAX_MR; i++)
        if (mrs[i] != NULL && &mrs[i]->mr == mr) {
            free(mrs[i]);
            mrs[i] = NULL;
            fake_ibv_state.mrs--;
            return 0;
        }
    return EINVAL;
}

/* ------------------------------------------------------------ data path */

static fmr_t *by_key(uint32_t key, int remote)
{
    for (int i = 0; i < MAX_MR; i++)
        if (mrs[i] != NULL && (remote ? mrs[i]->mr.rkey : mrs[i]->mr.lkey) == key)
            return mrs[i];
    return NULL;
}

static int inside(fmr_t *m, uint64_t addr, uint64_t len)
{
    uint64_t b = (uint64_t)(uintptr_t)m->mr.addr;
    return addr >= b && len <= m->mr.length && addr - b <= m->mr.length - len;
}

static void complete(fcq_t *cq, uint64_t id, enum ibv_wc_status st, enum ibv_wc_opcode op,
                     uint32_t imm)
{
    struct ibv_wc *w = &cq->wc[cq->tail++ % CQ_DEPTH];
    memset(w, 0, sizeof(*w));
    w->wr_id = id;
    w->status = st;
    w->opcode = op;
    w->imm_data = imm;
    if (imm)
        w->wc_flags = IBV_WC_WITH_IMM;
}

static fqp_t *qp_by_num(uint32_t n)
{
    for (int i = 0; i < MAX_QP; i++)
        if (qps[i] != NULL && qps[i]->qp.qp_num == n)
            return qps[i];
    return NULL;
}

static enum ibv_wc_status run_wr(fqp_t *q, struct ibv_send_wr *wr)
{
    uint64_t len = wr->num_sge ? wr->sg_list[0].length : 0;
    void *laddr = wr->num_sge ? (void *)(uintptr_t)wr->sg_list[0].addr : NULL;
    if (wr->num_sge) {
        fmr_t *l = by_key(wr->sg_list[0].lkey, 0);
        if (l == NULL || !inside(l, wr->sg_list[0].addr, len))
            return IBV_WC_LOC_PROT_ERR;
    }
    fqp_t *peer = qp_by_num(q->dest);
    if (peer == NULL || peer->state < IBV_QPS_RTR)
        return IBV_WC_RETRY_EXC_ERR; /* nobody answers */
    if (wr->opcode == IBV_WR_ATOMIC_FETCH_AND_ADD) {
        fmr_t *r = by_key(wr->wr.atomic.rkey, 1);
        uint64_t ra = wr->wr.atomic.remote_addr;
        if (r == NULL || !inside(r, ra, 8) || ra % 8 || !(r->access & IBV_ACCESS_REMOTE_ATOMIC))
            return IBV_WC_REM_ACCESS_ERR;
        uint64_t *p = (uint64_t *)(uintptr_t)ra;
        uint64_t old = __atomic_fetch_add(p, wr->wr.atomic.compare_add, __ATOMIC_SEQ_CST);
        memcpy(laddr, &old, 8);
        return IBV_WC_SUCCESS;
    }
    if (wr->opcode != IBV_WR_RDMA_WRITE && wr->opcode != IBV_WR_RDMA_WRITE_WITH_IMM)
        return IBV_WC_REM_INV_REQ_ERR;
    if (len > 0) {
        fmr_t *r = by_key(wr->wr.rdma.rkey, 1);
        if (r == NULL || !inside(r, wr->wr.rdma.remote_addr, len) ||
            !(r->access & IBV_ACCESS_REMOTE_WRITE))
            return IBV_WC_REM_ACCESS_ERR;
        memcpy((void *)(uintptr_t)wr->wr.rdma.remote_addr, laddr, len);
    }
    if (wr->opcode == IBV_WR_RDMA_WRITE_WITH_IMM) {
        if (peer->recvs == 0)
            return IBV_WC_RNR_RETRY_EXC_ERR;
        uint64_t id = peer->recv_ids[--peer->recvs];
        complete(peer->cq, id, IBV_WC_SUCCESS, IBV_WC_RECV_RDMA_WITH_IMM, wr->imm_data);
    }
    return IBV_WC_SUCCESS;
}

static int f_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad)
{
    fqp_t *q = (fqp_t *)qp;
    if (should_fail("post_send") || q->state != IBV_QPS_RTS) {
        *bad = wr;
        return EINVAL;
    }
    for (; wr != NULL; wr = wr->next) {
        enum ibv_wc_status st = run_wr(q, wr);
        if ((wr->send_flags & IBV_SEND_SIGNALED) || st != IBV_WC_SUCCESS)
            complete(q->cq, wr->wr_id, st,
                     wr->opcode == IBV_WR_ATOMIC_FETCH_AND_ADD ? IBV_WC_FETCH_ADD
                                                               : IBV_WC_RDMA_WRITE,
                     0);
        if (st != IBV_WC_SUCCESS)
            q->state = IBV_QPS_ERR;
    }
    return 0;
}

static int f_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad)
{
    fqp_t *q = (fqp_t *)qp;
    if (should_fail("post_recv") || q->state == IBV_QPS_RESET) {
        *bad = wr;
        return EINVAL;
    }
    for (; wr != NULL; wr = wr->next) {
        if (q->recvs == 256) {
            *bad = wr;
            return ENOMEM;
        }
        q->recv_ids[q->recvs++] = wr->wr_id;
    }
    return 0;
}

static int f_poll_cq(struct ibv_cq *cq, int n, struct ibv_wc *wc)
{
    fcq_t *q = (fcq_t *)cq;
    int got = 0;
    while (got < n && q->head != q->tail)
        wc[got++] = q->wc[q->head++ % CQ_DEPTH];
    return got;
}

static const char *f_wc_status_str(enum ibv_wc_status st)
{
    switch (st) {
    case IBV_WC_SUCCESS: return "success";
    case IBV_WC_REM_ACCESS_ERR: return "remote access error";
    case IBV_WC_RETRY_EXC_ERR: return "transport retry counter exceeded";
    case IBV_WC_RNR_RETRY_EXC_ERR: return "RNR retry counter exceeded";
    case IBV_WC_LOC_PROT_ERR: return "local protection error";
    default: return "error";
    }
}

static int f_get_memlock(struct rlimit *rl)
{
    *rl = fake_ibv_state.memlock;
    return 0;
}

static int f_peermem_loaded(void)
{
    return fake_ibv_state.peermem;
}

static struct ibv_mr *f_reg_dmabuf_dispatch(struct ibv_pd *pd, uint64_t off, size_t len,
                                            uint64_t iova, int fd, int access)
{
    if (!fake_ibv_state.dmabuf)
        return NULL;
    return f_reg_dmabuf_mr(pd, off, len, iova, fd, access);
}

const kccl_ibv_t fake_ibv = {
    .name = "fake",
    .get_device_list = f_get_device_list,
    .free_device_list = f_free_device_list,
    .get_device_name = f_get_device_name,
    .open_device = f_open_device,
    .close_device = f_close_device,
    .query_device = f_query_device,
    .query_port = f_query_port,
    .query_gid = f_query_gid,
    .gid_type = f_gid_type,
    .alloc_pd = f_alloc_pd,
    .dealloc_pd = f_dealloc_pd,
    .create_cq = f_create_cq,
    .destroy_cq = f_destroy_cq,
    .create_qp = f_create_qp,
    .modify_qp = f_modify_qp,
    .destroy_qp = f_destroy_qp,
    .reg_mr = f_reg_mr,
    .reg_dmabuf_mr = f_reg_dmabuf_dispatch,
    .dereg_mr = f_dereg_mr,
    .post_send = f_post_send,
    .post_recv = f_post_recv,
    .poll_cq = f_poll_cq,
    .wc_status_str = f_wc_status_str,
    .get_memlock = f_get_memlock,
    .peermem_loaded = f_peermem_loaded,
};
