/*
 * engine.h - the bootstrap's connection engine: one epoll loop per bootstrap,
 * run in the calling thread whenever a call must wait.
 *
 * While any call waits, the engine accepts and authenticates inbound
 * connections, finishes outbound connects and handshakes, reads whole frames
 * from every authenticated peer into per-peer queues and flushes queued
 * sends. So sends never deadlock against each other, strangers never stall
 * the group, and there are no helper threads. Waits end when their condition
 * holds, at their deadline, on kccl_bootstrap_abort(), or when a peer is
 * lost; the error names this rank, the peer and the step.
 */
#ifndef KCCL_BOOTSTRAP_ENGINE_H
#define KCCL_BOOTSTRAP_ENGINE_H

#include <stdint.h>

#include "bootstrap/auth.h"
#include "bootstrap/uniqueid.h"
#include "bootstrap/wire.h"
#include "kccl/kccl_bootstrap.h"

/* The step a call is in, carried in errors and ABORT notices. */
#define KCCL_STEP_MAP(X)                                                                           \
    X(CHECKIN, "check-in with the root")                                                           \
    X(TABLE, "waiting for the root's address table")                                               \
    X(CONNECT, "connecting to a peer")                                                             \
    X(SEND, "send")                                                                                \
    X(RECV, "recv")                                                                                \
    X(ALLGATHER, "all-gather")                                                                     \
    X(BARRIER, "barrier")                                                                          \
    X(BCAST, "broadcast")                                                                          \
    X(ROOT, "root: collecting check-ins")

typedef enum {
#define KCCL_STEP_ENUM_(name, desc) KCCL_STEP_##name,
    KCCL_STEP_MAP(KCCL_STEP_ENUM_)
#undef KCCL_STEP_ENUM_
} kccl_step_t;

const char *kccl_step_str(uint32_t step);

typedef enum {
    KCCL_CONN_CONNECTING,     /* outbound: non-blocking connect in flight or retry pending */
    KCCL_CONN_WAIT_CHALLENGE, /* outbound: HELLO sent */
    KCCL_CONN_WAIT_HELLO,     /* inbound: accepted */
    KCCL_CONN_WAIT_PROOF,     /* inbound: CHALLENGE sent */
    KCCL_CONN_READY,
    KCCL_CONN_DEAD,
} kccl_conn_state_t;

typedef struct kccl_frame {
    struct kccl_frame *next;
    kccl_wire_hdr_t hdr;
    uint8_t *data;
} kccl_frame_t;

typedef struct kccl_outbuf {
    struct kccl_outbuf *next;
    uint8_t hdr[KCCL_WIRE_HDR_BYTES];
    const uint8_t *payload;
    uint64_t len;  /* payload bytes */
    uint64_t done; /* bytes of hdr+payload written */
    uint8_t *owned;
} kccl_outbuf_t;

typedef struct kccl_conn {
    struct kccl_conn *next, *prev; /* bs->conns */
    int fd;
    kccl_conn_state_t state;
    int outbound;
    uint8_t kind; /* kccl_conn_kind_t */
    int peer;     /* rank, -1 until known */
    kccl_wire_addr_t remote;
    char remote_text[64];
    uint32_t ep_events;
    /* handshake */
    uint8_t hello[KCCL_WIRE_HELLO_BYTES];
    uint8_t server_nonce[KCCL_NONCE_BYTES];
    uint8_t checkin[KCCL_WIRE_CHECKIN_BYTES]; /* outbound check-in payload */
    int64_t hs_deadline;                      /* inbound: drop a silent stranger */
    int64_t retry_at;                         /* outbound: next connect attempt */
    int64_t backoff_ms;
    int tries;
    int last_errno;
    /* inbound frame assembly */
    uint8_t hdrbuf[KCCL_WIRE_HDR_BYTES];
    size_t hdr_got;
    kccl_wire_hdr_t hdr;
    uint8_t *payload;
    uint64_t payload_got;
    /* handshake bytes go out first, before any queued frame */
    uint8_t hs_out[160];
    size_t hs_len, hs_done;
    /* outbound queue: flushed once READY */
    kccl_outbuf_t *out_head, *out_tail;
    uint64_t queued_seq; /* frames queued so far */
    uint64_t done_seq;   /* frames fully handed to the kernel */
    int bye_rcvd;        /* the peer is destroying: safe to reset the connection */
    uint64_t data_sent;  /* DATA frames queued on this connection */
    int pinned;          /* referenced by a slot (send/recv/root): freed only at fini */
    kccl_status_t err;   /* why it died, as a status */
    /* root: what this rank checked in with */
    kccl_wire_checkin_t ci;
    /* why it died: errno, or a protocol message */
    char why[160];
} kccl_conn_t;

struct kccl_root;

struct kccl_bootstrap {
    int rank, nranks;
    kccl_uid_fields_t uid;
    uint8_t key[KCCL_GROUP_SECRET_BYTES];
    kccl_hmac_key_t hkey; /* key, prepared */
    int64_t timeout_ms;
    kccl_bootstrap_algo_t algo;
    int ring_max;
    uint64_t host_hash;

    int epfd;
    int abort_fd; /* eventfd */
    int aborted;  /* atomic */
    int listen_fd;
    kccl_wire_addr_t listen_addr;

    kccl_conn_t *conns;      /* every live connection */
    kccl_conn_t **send_conn; /* [nranks] we connected: our sends go here */
    kccl_conn_t **recv_conn; /* [nranks] they connected: their sends arrive here */
    kccl_frame_t **q_head;   /* [nranks] received frames, in order */
    kccl_frame_t **q_tail;
    /* Ranks use two connections per pair, and TCP orders nothing across them:
     * a peer's BYE or close can overtake its last data. So a recv gives up on
     * a peer only when its data stream itself ended, or when the peer's BYE
     * says how many DATA frames it sent us and all of them have arrived. */
    uint64_t *data_rcvd;     /* [nranks] DATA frames received from each peer */
    int64_t *bye_count;      /* [nranks] DATA frames the peer says it sent us; -1: no BYE yet */
    kccl_wire_peer_t *peers; /* [nranks] the root's table */
    int have_table;

    kccl_conn_t *root_conn; /* non-root ranks: the check-in connection */
    uint8_t *table_bytes;   /* the TABLE frame payload once received */
    uint64_t table_len;
    struct kccl_root *root; /* the root rank, during create */

    kccl_status_t failed; /* sticky failure, 0 if none */
    int closing;          /* in destroy: notices from peers are no longer errors */
    int in_timeout;       /* set while a cond is asked one last time at its deadline */
    int abort_sent;
    uint32_t coll_seq;
};

typedef struct kccl_bootstrap kccl_bs_t;

/* Millisecond monotonic clock. */
int64_t kccl_now_ms(void);
int64_t kccl_now_ns(void);

kccl_status_t kccl_engine_init(kccl_bs_t *bs);
/*
 * Says BYE on every authenticated connection, waits up to linger_ms for the
 * peers' BYE (or their close), then closes: with a reset where both sides
 * are done, so a bootstrap leaves no TIME_WAIT sockets (which otherwise
 * exhaust the port range when groups of hundreds form repeatedly), with a
 * FIN where a peer did not answer. Frees everything.
 */
void kccl_engine_fini(kccl_bs_t *bs, int64_t linger_ms);
/* Tries for up to ms to write out everything queued, quietly. */
void kccl_engine_flush(kccl_bs_t *bs, int64_t ms);
/* Closes c with a reset instead of a FIN: no TIME_WAIT left behind. Only
 * when the peer needs nothing more from us (it said BYE, or we are a rank
 * that has read the root's table). */
void kccl_engine_close_reset(kccl_bs_t *bs, kccl_conn_t *c);

/* Starts listening for this rank's peers on listen_fd (already bound). */
kccl_status_t kccl_engine_add_listener(kccl_bs_t *bs, int fd, void *tag);

/* Opens (non-blocking) an outbound connection; the handshake runs in waits. */
kccl_conn_t *kccl_engine_connect(kccl_bs_t *bs, const kccl_wire_addr_t *addr, uint8_t kind,
                                 int peer);

/* The outbound connection to peer, opened on demand. */
kccl_conn_t *kccl_engine_send_conn(kccl_bs_t *bs, int peer);

/* Queues a frame. copy=0: payload must stay valid until the queue drains. */
kccl_status_t kccl_engine_queue(kccl_bs_t *bs, kccl_conn_t *c, uint16_t type, uint32_t tag,
                                const void *payload, uint64_t len, int copy);
/* The sequence number of the last frame queued on c. */
static inline uint64_t kccl_engine_last_seq(const kccl_conn_t *c)
{
    return c->queued_seq;
}

/*
 * Runs the loop until cond returns non-zero (> 0 done, < 0 its error),
 * the deadline passes, the bootstrap is aborted or has failed. At the
 * deadline cond is asked once more with bs->in_timeout set, so it can fail
 * with a precise message; otherwise a generic timeout names step and peer.
 */
typedef int (*kccl_engine_cond_fn)(kccl_bs_t *bs, void *arg);
kccl_status_t kccl_engine_wait(kccl_bs_t *bs, int64_t deadline, kccl_engine_cond_fn cond, void *arg,
                               kccl_step_t step, int peer);

/* Condition helpers. 1 once frame seq to peer is with the kernel, < 0 if lost first. */
int kccl_engine_sent(kccl_bs_t *bs, int peer, uint64_t seq);
/* Pops the first frame of type/tag from peer's queue, or NULL. */
kccl_frame_t *kccl_engine_take(kccl_bs_t *bs, int peer, uint16_t type, uint32_t tag);
void kccl_frame_free(kccl_frame_t *f);

/*
 * Marks the bootstrap failed, tells every connected peer (ABORT naming
 * lost_rank, or -1) and sets the last error. Returns status.
 */
kccl_status_t kccl_engine_fail(kccl_bs_t *bs, kccl_status_t status, int lost_rank, kccl_step_t step,
                               const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Takes an accepted (non-blocking) socket as an inbound connection of kind;
 * also how tests and fuzzers feed bytes to the handshake. */
kccl_conn_t *kccl_engine_adopt(kccl_bs_t *bs, int fd, uint8_t kind, const struct sockaddr *peer);

/* Accepts pending check-ins on the root's listener (root.c calls it). */
void kccl_engine_accept_root(kccl_bs_t *bs, int root_fd);
/* Sends REFUSE{reason, detail} on c, logs it, and closes c. */
void kccl_engine_refuse(kccl_bs_t *bs, kccl_conn_t *c, uint32_t reason, uint32_t detail);
/* Closes c (it stays allocated while pinned). */
void kccl_engine_close(kccl_bs_t *bs, kccl_conn_t *c, const char *why);

/* Hooks the root (root.c) plugs into the engine. */
void kccl_root_on_accept(kccl_bs_t *bs, kccl_conn_t *c);
int kccl_root_on_hello(kccl_bs_t *bs, kccl_conn_t *c, const kccl_wire_hello_t *h, uint32_t *refuse,
                       uint32_t *detail);
int kccl_root_on_checkin(kccl_bs_t *bs, kccl_conn_t *c, const uint8_t *payload, uint64_t len);
void kccl_root_on_conn_dead(kccl_bs_t *bs, kccl_conn_t *c);
extern char kccl_root_listener_tag;

#endif
