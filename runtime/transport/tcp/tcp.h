/*
 * tcp.h - the TCP transport, inside.
 *
 * One data socket per rank pair, separate from the bootstrap's: the lower
 * rank connects to the higher rank's data listener (bound on the bootstrap
 * address, port chosen by the kernel, open while the communicator lives,
 * since links connect on demand) and proves itself with the 16-byte token
 * the listener's owner published through the authenticated bootstrap.
 *
 * One progress thread per communicator, started with the context, does all
 * set-up I/O (tcp_setup.c) and owns every ready data socket:
 * it writes queued operations (put payloads, staged through page-locked
 * buffers for device memory), reads the peer's operations into registered
 * memory (checked against the registry: id, generation, bounds), applies
 * signals, and acknowledges. Application threads only queue work and wait.
 * Nothing the progress thread does blocks, so two ranks putting to each
 * other never deadlock.
 *
 * Frame (32 bytes, little-endian), optionally followed by a payload:
 *   0 op (1 PUT, 2 SIGNAL, 3 ACK, 4 BYE)  1..3 zero  4 registration id
 *   8 registration generation  12 zero  16 offset  24 PUT: length;
 *   SIGNAL: amount to add; ACK: operations completed so far (cumulative)
 * Operations complete in order; a flush waits until the ACK count reaches
 * the number of operations queued before it.
 */
#ifndef KCCL_TRANSPORT_TCP_H
#define KCCL_TRANSPORT_TCP_H

#include <pthread.h>
#include <stdint.h>

#include "transport/transport.h"

#define TCP_HDR_BYTES   32
#define TCP_TOKEN_BYTES 16
#define TCP_HELLO_BYTES 24
/* epoll tags besides endpoint pointers: the wake eventfd is the context pointer, the
 * listener this value, a pending accepted connection its pointer with bit 0 set. */
#define TCP_TAG_LISTENER 2u

enum { TCP_OP_PUT = 1, TCP_OP_SIGNAL = 2, TCP_OP_ACK = 3, TCP_OP_BYE = 4 };

enum {
    TCP_EP_NEW,        /* created, not connecting yet */
    TCP_EP_CONNECTING, /* connector: non-blocking connect in flight */
    TCP_EP_WAIT_REPLY, /* connector: hello sent */
    TCP_EP_ACCEPTING,  /* acceptor: waiting for the peer's hello */
    TCP_EP_READY,
    TCP_EP_FAILED,
};

typedef struct tcp_op {
    struct tcp_op *next;
    uint8_t hdr[TCP_HDR_BYTES];
    const uint8_t *src; /* payload (PUT), NULL otherwise */
    uint64_t len;       /* payload bytes */
    uint64_t done;      /* bytes of hdr + payload written */
    int src_device;     /* >= 0: src is device memory of that device (staged) */
} tcp_op_t;

typedef struct kccl_tp_ep {
    struct kccl_tp_ctx *ctx;
    int peer;
    int fd;
    int state;
    int connector; /* this rank dials */
    /* peer's published record */
    uint8_t peer_addr[16];
    int peer_family;
    uint16_t peer_port;
    uint8_t peer_token[TCP_TOKEN_BYTES];
    /* set-up I/O */
    uint8_t hs[TCP_HELLO_BYTES];
    size_t hs_got;
    /* send side: queue (lock), counters */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    tcp_op_t *q_head, *q_tail;
    uint64_t posted;        /* operations queued (lock) */
    uint64_t acked;         /* operations the peer completed (lock) */
    int waiters;            /* threads in flush (lock) */
    tcp_op_t *cur;          /* progress thread: being written */
    tcp_op_t ctl;           /* progress thread: ACK / BYE frame storage */
    int ack_due;            /* progress thread: an ACK must go out */
    int bye_due;            /* say BYE once the queue is empty (atomic) */
    int bye_sending;        /* progress thread: ctl holds the BYE */
    int bye_sent, bye_rcvd; /* atomic */
    uint8_t *tx_stage;      /* page-locked staging for device sources */
    uint64_t tx_stage_off, tx_stage_len;
    /* receive side (progress thread only) */
    uint8_t rx_hdr[TCP_HDR_BYTES];
    size_t rx_hdr_got;
    uint8_t *rx_dst;   /* where the payload goes */
    int rx_device;     /* >= 0: rx_dst is device memory (staged) */
    uint64_t rx_left;  /* payload bytes still to read */
    uint8_t *rx_stage; /* staging for device destinations */
    uint64_t rx_stage_fill;
    uint64_t processed; /* operations received and carried out */
    uint32_t ev;        /* epoll events armed */
    /* failure (sticky) */
    int err; /* kccl_status_t, 0 = fine (atomic) */
    char why[200];
} tcp_ep_t;

struct tcp_pending;

typedef struct kccl_tp_ctx {
    kccl_tp_env_t env;
    int listen_fd; /* open for the communicator's life: links connect on demand */
    int family;
    uint8_t addr[16];
    uint16_t port;
    uint8_t token[TCP_TOKEN_BYTES];
    int epfd;
    int wake_fd;    /* eventfd: work queued or stop */
    tcp_ep_t **eps; /* [nranks]; entries appear under eps_lock and never go away */
    pthread_mutex_t eps_lock;
    struct tcp_pending *pending; /* accepted, hello not yet read (progress thread) */
    uint64_t chunk;              /* staging chunk bytes */
    pthread_t thread;
    int thread_started;
    int stop; /* atomic */
} tcp_ctx_t;

/* tcp_setup.c: set-up I/O for the progress thread. 1 when ev was a set-up event (handled),
 * 0 when it belongs to a ready endpoint's data path. */
struct epoll_event;
int kccl_tcp_setup_event(tcp_ctx_t *ctx, const struct epoll_event *ev);

/* tcp_io.c */
kccl_status_t kccl_tcp_progress_start(tcp_ctx_t *ctx);
void kccl_tcp_progress_stop(tcp_ctx_t *ctx, int64_t linger_ms);
void kccl_tcp_ep_fail(tcp_ep_t *ep, kccl_status_t st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
kccl_status_t kccl_tcp_put(kccl_tp_ep_t *ep, struct kccl_rmem *dst, uint64_t dst_off,
                           struct kccl_mem *src, uint64_t src_off, uint64_t len);
kccl_status_t kccl_tcp_signal(kccl_tp_ep_t *ep, struct kccl_rmem *dst, uint64_t off);
kccl_status_t kccl_tcp_flush(kccl_tp_ep_t *ep, int64_t deadline_ms);
kccl_status_t kccl_tcp_ep_status(kccl_tp_ep_t *ep);
/* Reports the ep's failure as the calling thread's error (logs it) and returns it. */
kccl_status_t kccl_tcp_ep_report(tcp_ep_t *ep, const char *what);

#endif
