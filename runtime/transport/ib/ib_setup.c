/*
 * ib_setup.c - InfiniBand set-up: library, memlock limit, device and port,
 * GID (RoCE v2 detection), protection domain, completion queue, and each
 * link's RC queue pair taken RESET -> INIT -> RTR -> RTS with the peer's
 * record from the pair all-gather. Not yet run on real HCAs (see ib.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootstrap/auth.h"
#include "core/config.h"
#include "core/error.h"
#include "transport/ib/ib.h"

kccl_status_t kccl_ib_check_memlock(const kccl_ibv_t *v, int rank)
{
    struct rlimit rl;
    if (v->get_memlock(&rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= IB_MIN_MEMLOCK)
        return KCCL_OK;
    KCCL_FAIL(IB, KCCL_ERR_IB,
              "rank %d: RLIMIT_MEMLOCK is %llu KiB, too small to register memory for RDMA; "
              "raise it to unlimited (ulimit -l unlimited; docker run --ulimit memlock=-1; in "
              "Kubernetes, the container runtime's default ulimits or a privileged init), or set "
              "KCCL_TRANSPORT=tcp to run without RDMA on purpose",
              rank, (unsigned long long)(rl.rlim_cur / 1024));
}

static int gid_score(const union ibv_gid *g, int type)
{
    static const uint8_t zero[16];
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(g->raw, zero, 16) == 0)
        return 0;
    if (type == KCCL_GID_ROCE_V2)
        return memcmp(g->raw, v4mapped, 12) == 0 ? 4 : (g->raw[0] == 0xfe ? 2 : 3);
    return 1;
}

kccl_status_t kccl_ib_pick_gid(const kccl_ibv_t *v, struct ibv_context *dev, uint8_t port, int want,
                               int *index, int *type, union ibv_gid *gid)
{
    struct ibv_port_attr pa;
    if (v->query_port(dev, port, &pa) != 0)
        KCCL_FAIL(IB, KCCL_ERR_IB, "ibv_query_port(%u) failed", port);
    if (want >= 0) {
        if (want >= pa.gid_tbl_len || v->query_gid(dev, port, want, gid) != 0)
            KCCL_FAIL(IB, KCCL_ERR_CONFIG, "KCCL_IB_GID_INDEX=%d: no such GID on port %u", want,
                      port);
        *index = want;
        *type = v->gid_type(dev, port, want);
        return KCCL_OK;
    }
    int best = -1, best_score = 0;
    for (int i = 0; i < pa.gid_tbl_len; i++) {
        union ibv_gid g;
        if (v->query_gid(dev, port, i, &g) != 0)
            continue;
        int s = gid_score(&g, v->gid_type(dev, port, i));
        if (s > best_score) {
            best = i;
            best_score = s;
        }
    }
    if (best < 0)
        KCCL_FAIL(IB, KCCL_ERR_IB,
                  "no usable GID on port %u (is an IP address configured on "
                  "the RoCE interface?)",
                  port);
    *index = best;
    *type = v->gid_type(dev, port, best);
    return v->query_gid(dev, port, best, gid) == 0 ? KCCL_OK : KCCL_ERR_IB;
}

/* Opens the wanted (or first) device with an active port. */
static kccl_status_t open_port(ib_ctx_t *c, char *why, size_t whylen)
{
    const char *want = kccl_config_str(KCCL_CFG_IB_HCA);
    long want_port = kccl_config_int_or_default(KCCL_CFG_IB_PORT);
    int n = 0;
    struct ibv_device **list = c->v->get_device_list(&n);
    if (list == NULL || n == 0) {
        if (list != NULL)
            c->v->free_device_list(list);
        snprintf(why, whylen, "no InfiniBand/RoCE device");
        return KCCL_ERR_UNSUPPORTED;
    }
    for (int i = 0; i < n && c->dev == NULL; i++) {
        const char *name = c->v->get_device_name(list[i]);
        if (want[0] && strcmp(name, want) != 0)
            continue;
        struct ibv_context *d = c->v->open_device(list[i]);
        struct ibv_device_attr da;
        if (d == NULL || c->v->query_device(d, &da) != 0) {
            if (d != NULL)
                c->v->close_device(d);
            kccl_log_warn(IB, "rank %d: cannot open %s; skipped", c->env.rank, name);
            continue;
        }
        for (int p = 1; p <= da.phys_port_cnt; p++) {
            struct ibv_port_attr pa;
            if ((want_port > 0 && p != want_port) || c->v->query_port(d, (uint8_t)p, &pa) != 0 ||
                pa.state != IBV_PORT_ACTIVE)
                continue;
            c->dev = d;
            c->port = (uint8_t)p;
            c->link_layer = pa.link_layer;
            c->lid = pa.lid;
            c->mtu = (uint8_t)pa.active_mtu;
            snprintf(c->dev_name, sizeof(c->dev_name), "%s", name);
            break;
        }
        if (c->dev == NULL)
            c->v->close_device(d);
    }
    c->v->free_device_list(list);
    if (c->dev != NULL)
        return KCCL_OK;
    if (want[0])
        KCCL_FAIL(IB, KCCL_ERR_CONFIG,
                  "rank %d: KCCL_IB_HCA=%s%s: no such device with an "
                  "active port",
                  c->env.rank, want, want_port > 0 ? " (and KCCL_IB_PORT)" : "");
    snprintf(why, whylen, "no InfiniBand/RoCE port is active");
    return KCCL_ERR_UNSUPPORTED;
}

static void ib_ctx_destroy(kccl_tp_ctx_t *c)
{
    if (c->scratch_mr != NULL)
        c->v->dereg_mr(c->scratch_mr);
    if (c->cq != NULL)
        c->v->destroy_cq(c->cq);
    if (c->pd != NULL)
        c->v->dealloc_pd(c->pd);
    if (c->dev != NULL)
        c->v->close_device(c->dev);
    free(c->scratch);
    free(c->eps);
    pthread_mutex_destroy(&c->cq_lock);
    free(c);
}

static kccl_status_t ib_ctx_create(const kccl_tp_env_t *env, kccl_tp_ctx_t **out, char *why,
                                   size_t whylen)
{
    kccl_status_t st;
    const kccl_ibv_t *v = kccl_ibv(why, whylen);
    if (v == NULL)
        return KCCL_ERR_UNSUPPORTED;
    ib_ctx_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        KCCL_FAIL(IB, KCCL_ERR_NO_MEMORY, "out of memory for the ib transport");
    c->env = *env;
    c->v = v;
    pthread_mutex_init(&c->cq_lock, NULL);
    c->eps = calloc((size_t)env->nranks, sizeof(*c->eps));
    c->scratch = calloc(1, 64);
    const char *sig = kccl_config_str(KCCL_CFG_IB_SIGNAL);
    const char *gdr = kccl_config_str(KCCL_CFG_IB_GDR);
    c->signal_imm = strcmp(sig, "imm") == 0;
    c->gdr = strcmp(gdr, "off") == 0       ? 0
             : strcmp(gdr, "dmabuf") == 0  ? 2
             : strcmp(gdr, "peermem") == 0 ? 3
                                           : 1;
    if (c->eps == NULL || c->scratch == NULL) {
        ib_ctx_destroy(c);
        KCCL_FAIL(IB, KCCL_ERR_NO_MEMORY, "out of memory for the ib transport");
    }
    if ((st = open_port(c, why, whylen)) != KCCL_OK)
        goto err;
    /* A usable device from here on: failures are errors, not "unavailable". */
    KCCL_CHECK_GOTO(kccl_ib_check_memlock(v, env->rank), st, err);
    if (c->link_layer == IBV_LINK_LAYER_ETHERNET || c->link_layer == IBV_LINK_LAYER_UNSPECIFIED ||
        kccl_config_int_or_default(KCCL_CFG_IB_GID_INDEX) >= 0)
        KCCL_CHECK_GOTO(kccl_ib_pick_gid(v, c->dev, c->port,
                                         (int)kccl_config_int_or_default(KCCL_CFG_IB_GID_INDEX),
                                         &c->gid_index, &c->gid_type, &c->gid),
                        st, err);
    c->pd = v->alloc_pd(c->dev);
    c->cq = c->pd ? v->create_cq(c->dev, IB_SEND_WR * 4, NULL, NULL, 0) : NULL;
    c->scratch_mr = c->cq ? v->reg_mr(c->pd, c->scratch, 64, IBV_ACCESS_LOCAL_WRITE) : NULL;
    if (c->scratch_mr == NULL) {
        kccl_error_set("rank %d: %s on %s failed", env->rank,
                       c->pd == NULL   ? "ibv_alloc_pd"
                       : c->cq == NULL ? "ibv_create_cq"
                                       : "ibv_reg_mr (scratch)",
                       c->dev_name);
        kccl_log_error(IB, "%s", kccl_last_error());
        st = KCCL_ERR_IB;
        goto err;
    }
    kccl_log_info(IB, "rank %d: %s port %u, %s, gid %d (%s), signals by %s", env->rank, c->dev_name,
                  c->port, c->link_layer == IBV_LINK_LAYER_ETHERNET ? "RoCE" : "InfiniBand",
                  c->gid_index, c->gid_type == KCCL_GID_ROCE_V2 ? "RoCE v2" : "IB/RoCE v1",
                  c->signal_imm ? "write-with-immediate" : "atomic fetch-add");
    *out = c;
    return KCCL_OK;
err:
    ib_ctx_destroy(c);
    return st;
}

/* Rank record: 0 version, 1 link layer, 2 mtu. */
static kccl_status_t ib_rank_info(kccl_tp_ctx_t *c, uint8_t info[KCCL_TP_INFO_BYTES])
{
    info[0] = 1;
    info[1] = c->link_layer;
    info[2] = c->mtu;
    return KCCL_OK;
}

/* Pair record: 0 qpn, 4 psn, 8 lid, 10 mtu, 11 link layer, 12 gid[16]. */
static kccl_status_t ib_ep_create(kccl_tp_ctx_t *c, int peer,
                                  const uint8_t info[KCCL_TP_INFO_BYTES], kccl_tp_ep_t **out,
                                  uint8_t pair[KCCL_TP_PAIR_BYTES])
{
    if (info[0] != 1 || info[1] != c->link_layer)
        KCCL_FAIL(IB, KCCL_ERR_UNSUPPORTED,
                  "rank %d: rank %d's RDMA port has another link layer (InfiniBand vs RoCE)",
                  c->env.rank, peer);
    ib_ep_t *ep = calloc(1, sizeof(*ep));
    if (ep == NULL)
        KCCL_FAIL(IB, KCCL_ERR_NO_MEMORY, "out of memory for an ib link");
    ep->ctx = c;
    ep->peer = peer;
    pthread_mutex_init(&ep->lock, NULL);
    struct ibv_qp_init_attr qa;
    memset(&qa, 0, sizeof(qa));
    qa.send_cq = c->cq;
    qa.recv_cq = c->cq;
    qa.qp_type = IBV_QPT_RC;
    qa.cap.max_send_wr = IB_SEND_WR;
    qa.cap.max_recv_wr = IB_RECV_WR;
    qa.cap.max_send_sge = 1;
    qa.cap.max_recv_sge = 1;
    ep->qp = c->v->create_qp(c->pd, &qa);
    if (ep->qp == NULL) {
        pthread_mutex_destroy(&ep->lock);
        free(ep);
        KCCL_FAIL(IB, KCCL_ERR_IB, "rank %d: ibv_create_qp for rank %d failed on %s", c->env.rank,
                  peer, c->dev_name);
    }
    uint32_t rnd = 0;
    (void)kccl_random_bytes(&rnd, sizeof(rnd));
    ep->psn = rnd & 0xFFFFFFu;
    uint32_t qpn = ep->qp->qp_num;
    memcpy(pair, &qpn, 4);
    memcpy(pair + 4, &ep->psn, 4);
    memcpy(pair + 8, &c->lid, 2);
    pair[10] = c->mtu;
    pair[11] = c->link_layer;
    memcpy(pair + 12, c->gid.raw, 16);
    c->eps[peer] = ep;
    *out = ep;
    return KCCL_OK;
}

static kccl_status_t modify(ib_ep_t *ep, struct ibv_qp_attr *a, int mask, const char *state)
{
    if (ep->ctx->v->modify_qp(ep->qp, a, mask) != 0)
        return kccl_ib_ep_fail(ep, KCCL_ERR_IB, "ibv_modify_qp to %s failed", state);
    return KCCL_OK;
}

static kccl_status_t ib_ep_connect(kccl_tp_ep_t *ep, const uint8_t pair[KCCL_TP_PAIR_BYTES])
{
    ib_ctx_t *c = ep->ctx;
    memcpy(&ep->peer_qpn, pair, 4);
    memcpy(&ep->peer_psn, pair + 4, 4);
    memcpy(&ep->peer_lid, pair + 8, 2);
    ep->peer_mtu = pair[10];
    memcpy(ep->peer_gid.raw, pair + 12, 16);
    if (pair[11] != c->link_layer || ep->peer_qpn == 0)
        return kccl_ib_ep_fail(ep, KCCL_ERR_PROTOCOL, "bad queue pair record");
    struct ibv_qp_attr a;
    memset(&a, 0, sizeof(a));
    a.qp_state = IBV_QPS_INIT;
    a.port_num = c->port;
    a.qp_access_flags = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |
                        IBV_ACCESS_REMOTE_ATOMIC;
    KCCL_CHECK(modify(ep, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS,
                      "INIT"));
    if (c->signal_imm)
        KCCL_CHECK(kccl_ib_post_recvs(ep, IB_RECV_WR));
    memset(&a, 0, sizeof(a));
    a.qp_state = IBV_QPS_RTR;
    a.path_mtu = (enum ibv_mtu)(ep->peer_mtu < c->mtu ? ep->peer_mtu : c->mtu);
    a.dest_qp_num = ep->peer_qpn;
    a.rq_psn = ep->peer_psn;
    a.max_dest_rd_atomic = 1;
    a.min_rnr_timer = 12;
    a.ah_attr.port_num = c->port;
    if (c->link_layer == IBV_LINK_LAYER_INFINIBAND) {
        a.ah_attr.dlid = ep->peer_lid;
    } else {
        a.ah_attr.is_global = 1;
        a.ah_attr.grh.dgid = ep->peer_gid;
        a.ah_attr.grh.sgid_index = (uint8_t)c->gid_index;
        a.ah_attr.grh.hop_limit = 255;
    }
    KCCL_CHECK(modify(ep, &a,
                      IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
                          IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER,
                      "RTR"));
    memset(&a, 0, sizeof(a));
    a.qp_state = IBV_QPS_RTS;
    a.timeout = 14;
    a.retry_cnt = 7;
    a.rnr_retry = 7;
    a.sq_psn = ep->psn;
    a.max_rd_atomic = 1;
    return modify(ep, &a,
                  IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
                      IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC,
                  "RTS");
}

static void ib_ep_close(kccl_tp_ep_t *ep)
{
    ib_ctx_t *c = ep->ctx;
    if (ep->qp != NULL)
        c->v->destroy_qp(ep->qp);
    c->eps[ep->peer] = NULL;
    pthread_mutex_destroy(&ep->lock);
    free(ep);
}

const kccl_tp_ops_t kccl_tp_ib_ops = {
    .name = "ib",
    .id = KCCL_TP_IB,
    .caps = KCCL_LINK_CAP_HOST_MEM | KCCL_LINK_CAP_DEVICE_MEM,
    .pair_info = 1,
    .ctx_create = ib_ctx_create,
    .ctx_destroy = ib_ctx_destroy,
    .rank_info = ib_rank_info,
    .ep_create = ib_ep_create,
    .ep_connect = ib_ep_connect,
    .mem_register = kccl_ib_mem_register,
    .mem_deregister = kccl_ib_mem_deregister,
    .put = kccl_ib_put,
    .signal = kccl_ib_signal,
    .flush = kccl_ib_flush,
    .ep_status = kccl_ib_ep_status,
    .ep_report = kccl_ib_ep_report,
    .ep_close = ib_ep_close,
};
