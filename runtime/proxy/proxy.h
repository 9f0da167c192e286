/*
 * proxy.h - the proxy thread: one per communicator, started by the first
 * port channel. It drains two FIFOs (one fed by the GPU, one by host
 * threads) and carries each trigger out on the channel's link: put, then
 * signal, then flush. It runs bound to the CPUs of its GPU's NUMA node
 * (KCCL_PROXY_CPU overrides), stops at kccl_proxy_destroy (joins), and
 * keeps the first failure sticky: it still completes (skips) later
 * triggers so no producer waits forever, and every host-side call reports
 * the failure.
 */
#ifndef KCCL_PROXY_PROXY_H
#define KCCL_PROXY_PROXY_H

#include <pthread.h>
#include <sched.h>
#include <stdint.h>

#include "proxy/fifo.h"
#include "transport/transport.h"

typedef struct kccl_proxy_chan {
    struct kccl_link *link;
    struct kccl_rmem *dst; /* puts land here */
    struct kccl_mem *src;  /* puts read here */
    struct kccl_rmem *sem; /* the peer's inbound counter */
} kccl_proxy_chan_t;

#define KCCL_PROXY_BLOCK  256
#define KCCL_PROXY_BLOCKS ((int)((KCCL_TRIGGER_MAX_CHANNEL + 1) / KCCL_PROXY_BLOCK))

typedef struct kccl_proxy {
    kccl_transport_state_t *ts;
    kccl_fifo_t host_fifo;
    kccl_fifo_t dev_fifo; /* dev_fifo.dev.slots == NULL without a GPU */
    pthread_mutex_t lock; /* producers on the host fifo: none needed; channel table growth */
    kccl_proxy_chan_t *blocks[KCCL_PROXY_BLOCKS];
    uint32_t nchans;
    pthread_t thread;
    int stop; /* atomic */
    int err;  /* atomic kccl_status_t, first failure */
    char why[256];
    uint64_t triggers; /* carried out (atomic) */
    int bound_cpus;    /* how many CPUs the thread was bound to (0 = unbound) */
} kccl_proxy_t;

/* The communicator's proxy, started on first call. */
kccl_status_t kccl_proxy_get(kccl_transport_state_t *ts, kccl_proxy_t **out);
kccl_status_t kccl_proxy_add_channel(kccl_proxy_t *p, const kccl_proxy_chan_t *c, uint32_t *id);
void kccl_proxy_remove_channel(kccl_proxy_t *p, uint32_t id);
/* KCCL_OK, or reports the sticky failure as this thread's error. */
kccl_status_t kccl_proxy_check(kccl_proxy_t *p);
void kccl_proxy_destroy(kccl_proxy_t *p);

/* Parses a Linux CPU list ("0-3,8,10-11"); 0 or -1. Exposed for tests. */
int kccl_proxy_parse_cpulist(const char *text, cpu_set_t *set);

#endif
