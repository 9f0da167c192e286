/*
 * transport.c - links between ranks: picking a transport per pair, setting
 * every pair up concurrently inside kccl_comm_init_*, and the kccl_link_*
 * calls that forward to the chosen transport. See transport.h for the steps.
 */
#include "transport/transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bootstrap/auth.h"
#include "bootstrap/bootstrap_int.h"
#include "comm/comm.h"
#include "core/config.h"
#include "core/error.h"
#include "memory/gpu.h"
#include "proxy/proxy.h"

/* ------------------------------------------------------------ the tables */

const kccl_tp_ops_t *kccl_tp_ops(kccl_tp_id_t id)
{
    switch (id) {
    case KCCL_TP_TCP: return &kccl_tp_tcp_ops;
    case KCCL_TP_CUDA_IPC:
#ifdef KCCL_HAVE_CUDA
        return &kccl_tp_cuda_ipc_ops;
#else
        return NULL;
#endif
    case KCCL_TP_IB:
#ifdef KCCL_HAVE_IB
        return &kccl_tp_ib_ops;
#else
        return NULL;
#endif
    default: return NULL;
    }
}

int64_t kccl_tp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double now_ms_f(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int64_t kccl_tp_deadline(const kccl_transport_state_t *ts, int64_t timeout_ms)
{
    return kccl_tp_now_ms() + (timeout_ms < 0 ? ts->env.timeout_ms : timeout_ms);
}

kccl_transport_state_t *kccl_transport_state(kccl_comm_t comm)
{
    return comm ? comm->tp : NULL;
}

int kccl_transport_connected_links(kccl_comm_t comm)
{
    kccl_transport_state_t *ts = kccl_transport_state(comm);
    int k = 0;
    for (int p = 0; ts != NULL && p < ts->env.nranks; p++)
        k += __atomic_load_n(&ts->links[p].ep, __ATOMIC_ACQUIRE) != NULL;
    return k;
}

/* ------------------------------------------------------------- selection */

#define REC_MAGIC 0x4B435452u /* "KCTR" */

typedef struct kccl_tp_rank_rec {
    uint32_t magic;
    uint32_t mask; /* transports this rank has */
    uint64_t reserved;
    uint8_t info[KCCL_TP_COUNT][KCCL_TP_INFO_BYTES];
} rank_rec_t;

static int parse_forced(const char *text, int *forced)
{
    static const char *const names[KCCL_TP_COUNT] = {"tcp", "cuda_ipc", "ib"};
    *forced = -1;
    if (strcmp(text, "auto") == 0)
        return 0;
    for (int t = 0; t < KCCL_TP_COUNT; t++)
        if (strcmp(text, names[t]) == 0) {
            *forced = t;
            return 0;
        }
    return -1;
}

/* The same answer on both ranks of a pair: it depends only on shared facts. */
static int pick_transport(uint32_t both, int same_node, int forced)
{
    if (forced >= 0)
        return (both >> forced & 1u) && (forced != KCCL_TP_CUDA_IPC || same_node) ? forced : -1;
    if (same_node && (both >> KCCL_TP_CUDA_IPC & 1u))
        return KCCL_TP_CUDA_IPC;
    if (both >> KCCL_TP_IB & 1u)
        return KCCL_TP_IB;
    if (both >> KCCL_TP_TCP & 1u)
        return KCCL_TP_TCP;
    return -1;
}

enum { LINK_TAG = KCCL_TP_TAG_LINK };

static kccl_status_t create_contexts(kccl_transport_state_t *ts, int forced, rank_rec_t *self,
                                     char why[KCCL_TP_COUNT][160])
{
    for (int t = 0; t < KCCL_TP_COUNT; t++) {
        const kccl_tp_ops_t *ops = kccl_tp_ops((kccl_tp_id_t)t);
        snprintf(why[t], 160, "not built in");
        if (ops == NULL || (forced >= 0 && forced != t))
            continue;
        double c0 = now_ms_f();
        kccl_status_t st = ops->ctx_create(&ts->env, &ts->ctx[t], why[t], 160);
        kccl_log_debug(INIT, "rank %d: %s context: %.3f ms", ts->env.rank, ops->name,
                       now_ms_f() - c0);
        if (st == KCCL_ERR_UNSUPPORTED) {
            kccl_log_debug(INIT, "rank %d: %s transport unavailable: %s", ts->env.rank, ops->name,
                           why[t]);
            ts->ctx[t] = NULL;
            continue;
        }
        KCCL_CHECK(st);
        KCCL_CHECK(ops->rank_info(ts->ctx[t], self->info[t]));
        self->mask |= 1u << t;
    }
    return KCCL_OK;
}

/* Picks every link's transport (O(nranks): this rank's row only). */
static kccl_status_t choose_links(kccl_transport_state_t *ts, const rank_rec_t *recs, int forced)
{
    kccl_comm_t comm = ts->comm;
    int me = ts->env.rank, n = ts->env.nranks, ntcp = 0;
    for (int p = 0; p < n; p++) {
        ts->links[p].ts = ts;
        ts->links[p].peer = p;
        if (p == me)
            continue;
        if (recs[p].magic != REC_MAGIC)
            KCCL_FAIL(INIT, KCCL_ERR_PROTOCOL, "rank %d: bad transport record from rank %d", me, p);
        int same = strcmp(comm->host_ids[p], comm->host_ids[me]) == 0;
        int t = pick_transport(recs[me].mask & recs[p].mask, same, forced);
        if (t < 0)
            KCCL_FAIL(INIT, KCCL_ERR_UNSUPPORTED,
                      "rank %d: no transport reaches rank %d (KCCL_TRANSPORT=%s; this rank has "
                      "mask 0x%x, the peer 0x%x; %s node): %s",
                      me, p, kccl_config_str(KCCL_CFG_TRANSPORT), recs[me].mask, recs[p].mask,
                      same ? "same" : "other",
                      forced >= 0 ? ts->why[forced] : "no common transport");
        ts->links[p].ops = kccl_tp_ops((kccl_tp_id_t)t);
        ntcp += t == KCCL_TP_TCP;
    }
    if (ntcp > 0 && forced != KCCL_TP_TCP)
        kccl_log_warn(NET,
                      "rank %d: %d of %d links use tcp (cuda_ipc: %s; ib: %s); set "
                      "KCCL_TRANSPORT=tcp to choose it explicitly",
                      me, ntcp, n - 1, ts->ctx[KCCL_TP_CUDA_IPC] ? "peers lack it" : ts->why[1],
                      ts->ctx[KCCL_TP_IB] ? "peers lack it" : ts->why[2]);
    return KCCL_OK;
}

/* Low 24 bits of the internal bootstrap tag of a link's k-th set-up message. */
static uint32_t link_tag(uint32_t *seq, int kind)
{
    uint32_t n = __atomic_fetch_add(seq, 1, __ATOMIC_RELAXED);
    return (uint32_t)kind << 16 | (n & 0xFFFFu);
}

uint32_t kccl_link_send_tag(struct kccl_link *link, int kind)
{
    return link_tag(&link->sent_seq, kind);
}

uint32_t kccl_link_recv_tag(struct kccl_link *link, int kind)
{
    return link_tag(&link->recv_seq, kind);
}

/*
 * Connects the links to peers[0..n) (connect_lock held; none connected yet), all at once:
 * endpoints first; then, for transports with per-pair records (InfiniBand queue pairs), the
 * records both ways over the bootstrap, all sends before any receive; then every connect,
 * one deadline for all waits; then (per-pair transports) a ready message both ways, so no
 * rank writes before the peer's side can receive. Only then are the endpoints published.
 * Both ranks of a pair call this for each other: the pairwise contract of kccl_comm_link.
 */
static kccl_status_t connect_set(kccl_transport_state_t *ts, const int *peers, int n)
{
    kccl_status_t st = KCCL_OK;
    kccl_bootstrap_t bs = ts->comm->bs;
    kccl_tp_ep_t **eps = calloc((size_t)n + 1, sizeof(*eps));
    uint8_t(*mine)[KCCL_TP_PAIR_BYTES] = calloc((size_t)n + 1, KCCL_TP_PAIR_BYTES);
    uint8_t(*theirs)[KCCL_TP_PAIR_BYTES] = calloc((size_t)n + 1, KCCL_TP_PAIR_BYTES);
    if (eps == NULL || mine == NULL || theirs == NULL) {
        kccl_error_set("out of memory connecting %d links", n);
        st = KCCL_ERR_NO_MEMORY;
        goto out;
    }
    for (int i = 0; i < n; i++) {
        struct kccl_link *l = &ts->links[peers[i]];
        KCCL_CHECK_GOTO(l->ops->ep_create(ts->ctx[l->ops->id], l->peer,
                                          ts->recs[l->peer].info[l->ops->id], &eps[i], mine[i]),
                        st, out);
    }
    for (int i = 0; i < n; i++)
        if (ts->links[peers[i]].ops->pair_info)
            KCCL_CHECK_GOTO(
                kccl_bootstrap_send_internal(bs, peers[i], KCCL_TAG_OP_LINK,
                                             link_tag(&ts->links[peers[i]].sent_seq, LINK_TAG),
                                             mine[i], KCCL_TP_PAIR_BYTES),
                st, out);
    for (int i = 0; i < n; i++)
        if (ts->links[peers[i]].ops->pair_info)
            KCCL_CHECK_GOTO(
                kccl_bootstrap_recv_internal(bs, peers[i], KCCL_TAG_OP_LINK,
                                             link_tag(&ts->links[peers[i]].recv_seq, LINK_TAG),
                                             theirs[i], KCCL_TP_PAIR_BYTES),
                st, out);
    for (int i = 0; i < n; i++)
        KCCL_CHECK_GOTO(ts->links[peers[i]].ops->ep_connect(eps[i], theirs[i]), st, out);
    int64_t deadline = kccl_tp_now_ms() + ts->env.timeout_ms;
    for (int i = 0; i < n; i++)
        if (ts->links[peers[i]].ops->ep_connect_wait != NULL)
            KCCL_CHECK_GOTO(ts->links[peers[i]].ops->ep_connect_wait(eps[i], deadline), st, out);
    uint8_t ready = 1;
    for (int i = 0; i < n; i++)
        if (ts->links[peers[i]].ops->pair_info)
            KCCL_CHECK_GOTO(kccl_bootstrap_send_internal(
                                bs, peers[i], KCCL_TAG_OP_LINK,
                                link_tag(&ts->links[peers[i]].sent_seq, LINK_TAG), &ready, 1),
                            st, out);
    for (int i = 0; i < n; i++)
        if (ts->links[peers[i]].ops->pair_info)
            KCCL_CHECK_GOTO(kccl_bootstrap_recv_internal(
                                bs, peers[i], KCCL_TAG_OP_LINK,
                                link_tag(&ts->links[peers[i]].recv_seq, LINK_TAG), &ready, 1),
                            st, out);
    for (int i = 0; i < n; i++) {
        __atomic_store_n(&ts->links[peers[i]].ep, eps[i], __ATOMIC_RELEASE);
        eps[i] = NULL;
    }
out:
    for (int i = 0; eps != NULL && i < n; i++)
        if (eps[i] != NULL)
            ts->links[peers[i]].ops->ep_close(eps[i]);
    free(eps);
    free(mine);
    free(theirs);
    return st;
}

/* KCCL_LINKS: which links connect inside kccl_comm_init_* (the rest on first use). */
static kccl_status_t connect_at_init(kccl_transport_state_t *ts)
{
    kccl_comm_t comm = ts->comm;
    const char *mode = kccl_config_str(KCCL_CFG_LINKS);
    int me = ts->env.rank, n = ts->env.nranks;
    int all = strcmp(mode, "eager") == 0;
    if (strcmp(mode, "lazy") == 0)
        return KCCL_OK;
    if (!all && strcmp(mode, "auto") != 0)
        KCCL_FAIL(INIT, KCCL_ERR_CONFIG, "KCCL_LINKS='%s' is not one of auto, eager, lazy", mode);
    if (!all && comm->local_size > kccl_config_int_or_default(KCCL_CFG_LINKS_EAGER_MAX))
        return KCCL_OK; /* a crowded node (e.g. many CPU ranks on one host): all on demand */
    int *peers = calloc((size_t)n, sizeof(*peers)), k = 0;
    if (peers == NULL)
        KCCL_FAIL(INIT, KCCL_ERR_NO_MEMORY, "out of memory for %d peers", n);
    for (int p = 0; p < n; p++)
        if (p != me && (all || strcmp(comm->host_ids[p], comm->host_ids[me]) == 0))
            peers[k++] = p;
    pthread_mutex_lock(&ts->connect_lock);
    kccl_status_t st = k ? connect_set(ts, peers, k) : KCCL_OK;
    pthread_mutex_unlock(&ts->connect_lock);
    free(peers);
    return st;
}

static void fill_env(kccl_transport_state_t *ts, kccl_comm_t comm, const kccl_bootstrap_opts_t *o)
{
    char addr[96];
    ts->comm = comm;
    ts->env.comm = comm;
    ts->env.rank = comm->rank;
    ts->env.nranks = comm->size;
    ts->env.reg = &ts->reg;
    ts->env.timeout_ms = o ? o->timeout_ms : 0;
    if (ts->env.timeout_ms <= 0 &&
        kccl_config_millis(KCCL_CFG_BOOTSTRAP_TIMEOUT, &ts->env.timeout_ms) != KCCL_OK)
        ts->env.timeout_ms = 30000;
    ts->env.device = -1;
    const kccl_gpu_ops_t *gpu = kccl_gpu();
    if (gpu != NULL && gpu->get_device(&ts->env.device) != KCCL_OK)
        ts->env.device = -1;
    if (kccl_bootstrap_peer_address(comm->bs, comm->rank, addr, sizeof(addr)) == KCCL_OK) {
        /* "IP:port" or "[IPv6]:port": keep the IP. */
        char *colon = strrchr(addr, ':');
        if (colon != NULL)
            *colon = '\0';
        char *ip = addr;
        if (ip[0] == '[') {
            ip++;
            ip[strlen(ip) - 1] = '\0';
        }
        size_t n = strlen(ip);
        if (n < sizeof(ts->env.bind_ip))
            memcpy(ts->env.bind_ip, ip, n + 1);
    }
}

/*
 * A value every rank computes alike before any exchange, unique among the groups alive on a
 * node: rank 0's bootstrap address (its port is bound while the group lives). It names the
 * node's fd-passing sockets, so two groups never collide and no pid is involved.
 */
static uint64_t group_value(kccl_comm_t comm)
{
    char addr[96] = "";
    uint64_t h = 14695981039346656037ull;
    (void)kccl_bootstrap_peer_address(comm->bs, 0, addr, sizeof(addr));
    for (const char *p = addr; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    return h;
}

kccl_status_t kccl_transport_setup(kccl_comm_t comm, const kccl_bootstrap_opts_t *opts)
{
    kccl_status_t st;
    int forced;
    double t0f = now_ms_f();
    const char *want = kccl_config_str(KCCL_CFG_TRANSPORT);
    if (parse_forced(want, &forced) != 0)
        KCCL_FAIL(INIT, KCCL_ERR_CONFIG,
                  "KCCL_TRANSPORT='%s' is not one of auto, tcp, cuda_ipc, ib", want);
    kccl_transport_state_t *ts = calloc(1, sizeof(*ts));
    rank_rec_t *recs = calloc((size_t)comm->size, sizeof(*recs));
    if (ts == NULL || recs == NULL || kccl_memreg_init(&ts->reg) != KCCL_OK) {
        free(ts);
        free(recs);
        KCCL_FAIL(INIT, KCCL_ERR_NO_MEMORY, "out of memory for the transport state");
    }
    pthread_mutex_init(&ts->lock, NULL);
    pthread_mutex_init(&ts->connect_lock, NULL);
    comm->tp = ts;
    fill_env(ts, comm, opts);
    ts->links = calloc((size_t)comm->size, sizeof(*ts->links));
    if (ts->links == NULL) {
        st = KCCL_ERR_NO_MEMORY;
        goto err;
    }
    rank_rec_t *self = &recs[comm->rank];
    self->magic = REC_MAGIC;
    ts->env.group = group_value(comm);
    /* Phase times for the set-up breakdown (info log): contexts, the record all-gather,
     * endpoint creation + connection. */
    double ph0 = now_ms_f();
    KCCL_CHECK_GOTO(create_contexts(ts, forced, self, ts->why), st, err);
    double ph1 = now_ms_f();
    KCCL_CHECK_GOTO(kccl_bootstrap_all_gather(comm->bs, recs, sizeof(*recs)), st, err);
    double ph2 = now_ms_f();
    ts->recs = recs;
    recs = NULL;
    KCCL_CHECK_GOTO(choose_links(ts, ts->recs, forced), st, err);
    KCCL_CHECK_GOTO(connect_at_init(ts), st, err);
    double ph3 = now_ms_f();
    ts->setup_s = (ph3 - t0f) / 1e3;
    kccl_log_info(INIT,
                  "rank %d: transports ready in %.3f ms (contexts %.3f ms, record all-gather "
                  "%.3f ms, links connected at init %.3f ms; KCCL_LINKS=%s)",
                  comm->rank, ts->setup_s * 1e3, ph1 - ph0, ph2 - ph1, ph3 - ph2,
                  kccl_config_str(KCCL_CFG_LINKS));
    return KCCL_OK;
err:
    free(recs);
    kccl_transport_teardown(comm);
    return st;
}

void kccl_transport_teardown(kccl_comm_t comm)
{
    kccl_transport_state_t *ts = kccl_transport_state(comm);
    if (ts == NULL)
        return;
    kccl_proxy_destroy(ts->proxy);
    for (int p = 0; ts->links != NULL && p < ts->env.nranks; p++)
        if (ts->links[p].ep != NULL)
            ts->links[p].ops->ep_close(ts->links[p].ep);
    for (int t = 0; t < KCCL_TP_COUNT; t++)
        if (ts->ctx[t] != NULL)
            kccl_tp_ops((kccl_tp_id_t)t)->ctx_destroy(ts->ctx[t]);
    free(ts->links);
    free(ts->recs);
    kccl_memreg_fini(&ts->reg);
    pthread_mutex_destroy(&ts->lock);
    pthread_mutex_destroy(&ts->connect_lock);
    free(ts);
    comm->tp = NULL;
}

/* ----------------------------------------------------------- link calls */

kccl_link_t kccl_comm_link(kccl_comm_t comm, int peer)
{
    kccl_transport_state_t *ts = kccl_transport_state(comm);
    if (ts == NULL || peer < 0 || peer >= ts->env.nranks || ts->links[peer].ops == NULL) {
        kccl_error_set("rank %d: no link to rank %d (itself or not a rank of 0..%d)",
                       kccl_comm_rank(comm), peer, kccl_comm_size(comm) - 1);
        return NULL;
    }
    struct kccl_link *l = &ts->links[peer];
    if (__atomic_load_n(&l->ep, __ATOMIC_ACQUIRE) != NULL)
        return l;
    /* First use: connect now (the peer does the same for this rank). */
    pthread_mutex_lock(&ts->connect_lock);
    kccl_status_t st = l->ep != NULL ? KCCL_OK : connect_set(ts, &peer, 1);
    pthread_mutex_unlock(&ts->connect_lock);
    return st == KCCL_OK ? l : NULL;
}

const char *kccl_link_transport(kccl_link_t link)
{
    return link ? link->ops->name : "";
}

unsigned kccl_link_caps(kccl_link_t link)
{
    return link ? link->ops->caps : 0;
}

int kccl_link_peer(kccl_link_t link)
{
    return link ? link->peer : -1;
}

kccl_status_t kccl_link_check(struct kccl_link *link, const char *what)
{
    if (link->ops->ep_status(link->ep) == KCCL_OK)
        return KCCL_OK;
    return link->ops->ep_report(link->ep, what);
}

kccl_status_t kccl_link_put(kccl_link_t link, kccl_rmem_t dst, uint64_t dst_off, kccl_mem_t src,
                            uint64_t src_off, uint64_t bytes)
{
    if (link == NULL || dst == NULL || src == NULL || dst->link != link)
        KCCL_FAIL(NET, KCCL_ERR_INVALID_ARG,
                  "kccl_link_put: need a link, a source and a destination imported on that link");
    if (dst_off > dst->len || bytes > dst->len - dst_off || src_off > src->len ||
        bytes > src->len - src_off)
        KCCL_FAIL(NET, KCCL_ERR_INVALID_ARG,
                  "rank %d: put of %llu bytes to rank %d: out of range (dst %llu+ of %llu, src "
                  "%llu+ of %llu)",
                  link->ts->env.rank, (unsigned long long)bytes, link->peer,
                  (unsigned long long)dst_off, (unsigned long long)dst->len,
                  (unsigned long long)src_off, (unsigned long long)src->len);
    if (bytes == 0)
        return KCCL_OK;
    return link->ops->put(link->ep, dst, dst_off, src, src_off, bytes);
}

kccl_status_t kccl_link_signal(kccl_link_t link, kccl_rmem_t dst, uint64_t dst_off)
{
    if (link == NULL || dst == NULL || dst->link != link || dst_off % 8 != 0 ||
        dst_off > dst->len || dst->len - dst_off < 8)
        KCCL_FAIL(NET, KCCL_ERR_INVALID_ARG,
                  "kccl_link_signal: need an 8-byte aligned counter inside memory imported on "
                  "this link");
    return link->ops->signal(link->ep, dst, dst_off);
}

kccl_status_t kccl_link_flush(kccl_link_t link, int64_t timeout_ms)
{
    if (link == NULL)
        KCCL_FAIL(NET, KCCL_ERR_INVALID_ARG, "kccl_link_flush: NULL link");
    return link->ops->flush(link->ep, kccl_tp_deadline(link->ts, timeout_ms));
}
