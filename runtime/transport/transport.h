/*
 * transport.h - the transport vtable and the per-communicator link state.
 *
 * Every transport (tcp, cuda_ipc, ib) implements kccl_tp_ops_t. Inside
 * kccl_comm_init_* (kccl_transport_setup):
 *   1. each transport that works in this process creates its context and
 *      describes this rank in a fixed-size record (listening address, GPU,
 *      GID ...);
 *   2. one bootstrap all-gather spreads every rank's records (O(nranks)
 *      memory: the records are kept for links made later);
 *   3. every rank picks, for each peer, the same transport from facts both
 *      ranks share (same node? which transports do both have?);
 *   4. the links KCCL_LINKS names connect now (by default those to the
 *      ranks of this node, when there are at most KCCL_LINKS_EAGER_MAX),
 *      all concurrently under one deadline; every other link connects on
 *      first use (kccl_comm_link), when both ranks of the pair ask for it.
 *      A thousand-rank group thus opens only the links its algorithms use.
 * Connecting a set of links (connect_set in transport.c): endpoints; per-pair
 * records (InfiniBand queue pairs) both ways over the bootstrap; every
 * connect; one deadline for the waits; a ready message both ways for
 * per-pair transports; then the endpoints are published.
 *
 * Data path contract: put/signal are asynchronous and take effect at the
 * peer in issue order; flush waits for every earlier one to land. A failed
 * link stays failed (ep_status) and every later call says which peer is
 * lost. Calls on one endpoint may come from several threads (the
 * application and the proxy); each transport serialises what it must.
 */
#ifndef KCCL_TRANSPORT_TRANSPORT_H
#define KCCL_TRANSPORT_TRANSPORT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "kccl/kccl_channel.h"
#include "memory/mem.h"

typedef enum { KCCL_TP_TCP = 0, KCCL_TP_CUDA_IPC = 1, KCCL_TP_IB = 2, KCCL_TP_COUNT } kccl_tp_id_t;

#define KCCL_TP_INFO_BYTES 96 /* per-rank record */
#define KCCL_TP_PAIR_BYTES 48 /* per-pair record */

typedef struct kccl_tp_ctx kccl_tp_ctx_t; /* one per transport per communicator */
typedef struct kccl_tp_ep kccl_tp_ep_t;   /* one per link */

/* What a transport context knows of its communicator. */
typedef struct kccl_tp_env {
    int rank, nranks;
    int64_t timeout_ms;
    char bind_ip[64]; /* this rank's bootstrap address (no port) */
    int device;       /* this rank's CUDA device, or -1 */
    uint64_t group;   /* the same random value on every rank of the group */
    kccl_memreg_t *reg;
    kccl_comm_t comm;
} kccl_tp_env_t;

typedef struct kccl_tp_ops {
    const char *name;
    kccl_tp_id_t id;
    unsigned caps; /* KCCL_LINK_CAP_* */
    int pair_info; /* needs per-pair records (step 4) */
    /* Usable here? KCCL_ERR_UNSUPPORTED with why filled means "no, and that's fine". */
    kccl_status_t (*ctx_create)(const kccl_tp_env_t *env, kccl_tp_ctx_t **out, char *why,
                                size_t whylen);
    void (*ctx_destroy)(kccl_tp_ctx_t *ctx);
    kccl_status_t (*rank_info)(kccl_tp_ctx_t *ctx, uint8_t info[KCCL_TP_INFO_BYTES]);
    /* pair: out, this rank's record for peer (zeroed on entry). */
    kccl_status_t (*ep_create)(kccl_tp_ctx_t *ctx, int peer,
                               const uint8_t peer_info[KCCL_TP_INFO_BYTES], kccl_tp_ep_t **out,
                               uint8_t pair[KCCL_TP_PAIR_BYTES]);
    /* pair: the peer's record for this rank (zeros for transports without pair_info). */
    kccl_status_t (*ep_connect)(kccl_tp_ep_t *ep, const uint8_t pair[KCCL_TP_PAIR_BYTES]);
    /* Optional: waits until ep carries data (NULL: ready when ep_connect returns). */
    kccl_status_t (*ep_connect_wait)(kccl_tp_ep_t *ep, int64_t deadline_ms);
    /* Optional: fills mem's transport fields (IPC handle, rkey). */
    kccl_status_t (*mem_register)(kccl_tp_ctx_t *ctx, struct kccl_mem *mem);
    void (*mem_deregister)(kccl_tp_ctx_t *ctx, struct kccl_mem *mem);
    /* Optional: a handle of mem is going to the peer (fd passing). */
    kccl_status_t (*mem_push)(kccl_tp_ep_t *ep, struct kccl_mem *mem);
    /* Optional: map or otherwise prepare a peer's registration. */
    kccl_status_t (*rmem_import)(kccl_tp_ep_t *ep, struct kccl_rmem *rmem);
    void (*rmem_release)(kccl_tp_ep_t *ep, struct kccl_rmem *rmem);
    kccl_status_t (*put)(kccl_tp_ep_t *ep, struct kccl_rmem *dst, uint64_t dst_off,
                         struct kccl_mem *src, uint64_t src_off, uint64_t len);
    kccl_status_t (*signal)(kccl_tp_ep_t *ep, struct kccl_rmem *dst, uint64_t off);
    kccl_status_t (*flush)(kccl_tp_ep_t *ep, int64_t deadline_ms);
    /* KCCL_OK, or the sticky failure (without blocking and without logging). */
    kccl_status_t (*ep_status)(kccl_tp_ep_t *ep);
    /* Makes the sticky failure the calling thread's error ("<why>: <what>"), logs it,
     * returns it. Only after ep_status said the link failed. */
    kccl_status_t (*ep_report)(kccl_tp_ep_t *ep, const char *what);
    void (*ep_close)(kccl_tp_ep_t *ep);
} kccl_tp_ops_t;

extern const kccl_tp_ops_t kccl_tp_tcp_ops;
extern const kccl_tp_ops_t kccl_tp_cuda_ipc_ops;
extern const kccl_tp_ops_t kccl_tp_ib_ops;

/* The table of transport id, or NULL when it was not built in. */
const kccl_tp_ops_t *kccl_tp_ops(kccl_tp_id_t id);

struct kccl_link {
    struct kccl_transport_state *ts;
    int peer;
    const kccl_tp_ops_t *ops;
    kccl_tp_ep_t *ep;
    uint32_t sent_seq, recv_seq; /* pairwise set-up messages so far, per direction */
};

struct kccl_tp_rank_rec;

struct kccl_proxy;

typedef struct kccl_transport_state {
    kccl_comm_t comm;
    kccl_tp_env_t env;
    kccl_tp_ctx_t *ctx[KCCL_TP_COUNT];
    struct kccl_link *links; /* [nranks]; links[rank].ops == NULL */
    kccl_memreg_t reg;
    pthread_mutex_t lock;          /* proxy start */
    pthread_mutex_t connect_lock;  /* link set-up (one set at a time) */
    struct kccl_tp_rank_rec *recs; /* [nranks]: every rank's transport records */
    char why[KCCL_TP_COUNT][160];  /* why a transport is unavailable here */
    struct kccl_proxy *proxy;
    double setup_s;
} kccl_transport_state_t;

/* Comm hooks (comm.c): after the host ids are known / before the bootstrap goes. */
kccl_status_t kccl_transport_setup(kccl_comm_t comm, const kccl_bootstrap_opts_t *opts);
void kccl_transport_teardown(kccl_comm_t comm);

kccl_transport_state_t *kccl_transport_state(kccl_comm_t comm);
/* Links connected so far (tests, logs). */
int kccl_transport_connected_links(kccl_comm_t comm);

/*
 * Tags of pairwise set-up messages (links, memory handles, semaphores,
 * channels), for kccl_bootstrap_send_internal / recv_internal (kccl's
 * reserved tag space: applications keep every tag below 2^31): the low 24
 * bits are kind << 16 | sequence, where the sequence counts this link's
 * set-up messages in one direction (so A's k-th send to B meets B's k-th
 * receive from A whatever else the pair does).
 */
enum { KCCL_TP_TAG_MEM = 1, KCCL_TP_TAG_SEM = 2, KCCL_TP_TAG_CHAN = 3, KCCL_TP_TAG_LINK = 4 };
uint32_t kccl_link_send_tag(struct kccl_link *link, int kind);
uint32_t kccl_link_recv_tag(struct kccl_link *link, int kind);

/* For waits: KCCL_OK while the link is fine; else reports (logs, sets the
 * last error "...: what") and returns the failure. */
kccl_status_t kccl_link_check(struct kccl_link *link, const char *what);

/* Transport-side helpers. */
int64_t kccl_tp_now_ms(void);
/* Deadline for a user timeout (< 0: the communicator default). */
int64_t kccl_tp_deadline(const kccl_transport_state_t *ts, int64_t timeout_ms);

#endif
