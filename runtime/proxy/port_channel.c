/*
 * port_channel.c - port channels: a source buffer here, a destination buffer
 * and an inbound counter at the peer, and a channel id in this rank's proxy.
 * The GPU (or a host thread) pushes triggers; the proxy carries them out on
 * the link, whatever its transport. The inbound counter lives in device
 * memory when this rank has a GPU (the GPU waits on it), else in host memory.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm.h"
#include "core/error.h"
#include "memory/gpu.h"
#include "proxy/proxy.h"

struct kccl_port_channel {
    kccl_comm_t comm;
    struct kccl_link *link;
    kccl_proxy_t *proxy;
    uint32_t id;
    kccl_mem_t inbound; /* this rank's counter (8 bytes used) */
    void *inbound_dev;  /* device allocation behind inbound, if any */
    kccl_rmem_t peer_inbound;
    uint64_t *expected_dev; /* device-side wait count */
    uint64_t host_expected;
    int device;
};

static kccl_status_t alloc_counter(kccl_comm_t comm, int device, void **dev, kccl_mem_t *out)
{
    const kccl_gpu_ops_t *gpu = kccl_gpu();
    if (device < 0 || gpu == NULL)
        return kccl_mem_alloc(comm, 64, KCCL_MEM_HOST, out);
    KCCL_CHECK(gpu->dev_alloc(dev, 256, device));
    kccl_status_t st = kccl_mem_register(comm, *dev, 256, KCCL_MEM_DEVICE, out);
    if (st != KCCL_OK) {
        gpu->dev_free(*dev, device);
        *dev = NULL;
    }
    return st;
}

static void port_free(struct kccl_port_channel *ch)
{
    const kccl_gpu_ops_t *gpu = kccl_gpu();
    kccl_rmem_release(ch->peer_inbound);
    kccl_mem_deregister(ch->inbound);
    if (gpu != NULL && ch->inbound_dev != NULL)
        gpu->dev_free(ch->inbound_dev, ch->device);
    if (gpu != NULL && ch->expected_dev != NULL)
        gpu->dev_free(ch->expected_dev, ch->device);
    free(ch);
}

kccl_status_t kccl_port_channel_create(kccl_comm_t comm, int peer, kccl_mem_t src, kccl_rmem_t dst,
                                       kccl_port_channel_t *out)
{
    kccl_status_t st;
    struct kccl_link *link = kccl_comm_link(comm, peer);
    if (link == NULL || out == NULL || (dst != NULL && dst->link != link))
        KCCL_FAIL(PROXY, KCCL_ERR_INVALID_ARG,
                  "kccl_port_channel_create: bad peer %d or destination not imported from it",
                  peer);
    struct kccl_port_channel *ch = calloc(1, sizeof(*ch));
    if (ch == NULL)
        KCCL_FAIL(PROXY, KCCL_ERR_NO_MEMORY, "out of memory for a port channel");
    ch->comm = comm;
    ch->link = link;
    ch->device = kccl_transport_state(comm)->env.device;
    KCCL_CHECK_GOTO(alloc_counter(comm, ch->device, &ch->inbound_dev, &ch->inbound), st, err);
    if (ch->inbound_dev != NULL)
        KCCL_CHECK_GOTO(kccl_gpu()->dev_alloc((void **)&ch->expected_dev, 64, ch->device), st, err);
    KCCL_CHECK_GOTO(kccl_mem_send(comm, ch->inbound, peer), st, err);
    KCCL_CHECK_GOTO(kccl_mem_recv(comm, peer, &ch->peer_inbound), st, err);
    KCCL_CHECK_GOTO(kccl_proxy_get(kccl_transport_state(comm), &ch->proxy), st, err);
    kccl_proxy_chan_t pc = {.link = link, .dst = dst, .src = src, .sem = ch->peer_inbound};
    KCCL_CHECK_GOTO(kccl_proxy_add_channel(ch->proxy, &pc, &ch->id), st, err);
    *out = ch;
    return KCCL_OK;
err:
    port_free(ch);
    return st;
}

kccl_status_t kccl_port_channel_device_handle(kccl_port_channel_t ch, kccl_port_channel_dev_t *out)
{
    if (ch == NULL || out == NULL || ch->proxy->dev_fifo.dev.slots == NULL)
        KCCL_FAIL(PROXY, KCCL_ERR_UNSUPPORTED,
                  "port channel device handle: this rank has no GPU fifo (no CUDA device)");
    memset(out, 0, sizeof(*out));
    out->fifo = ch->proxy->dev_fifo.dev;
    out->channel = ch->id;
    out->sem.inbound = (uint64_t *)kccl_mem_ptr(ch->inbound);
    out->sem.expected = ch->expected_dev;
    out->sem.remote_inbound = NULL;
    return KCCL_OK;
}

static kccl_status_t push(kccl_port_channel_t ch, uint32_t type, uint64_t dst_off, uint64_t src_off,
                          uint64_t bytes, uint64_t *slot, int64_t deadline)
{
    if (dst_off > KCCL_TRIGGER_MAX_OFFSET || src_off > KCCL_TRIGGER_MAX_OFFSET ||
        bytes > 0xFFFFFFFFull)
        KCCL_FAIL(PROXY, KCCL_ERR_INVALID_ARG,
                  "port channel: offsets must be < 2^38 and a put < 4 GiB (split it)");
    KCCL_CHECK(kccl_proxy_check(ch->proxy));
    kccl_trigger_t t = kccl_trigger_encode(type, ch->id, dst_off, src_off, (uint32_t)bytes);
    return kccl_fifo_push(&ch->proxy->host_fifo, t, slot, deadline);
}

kccl_status_t kccl_port_channel_put(kccl_port_channel_t ch, uint64_t dst_off, uint64_t src_off,
                                    uint64_t bytes)
{
    if (ch == NULL)
        KCCL_FAIL(PROXY, KCCL_ERR_INVALID_ARG, "kccl_port_channel_put: NULL channel");
    return push(ch, KCCL_TRIGGER_PUT, dst_off, src_off, bytes, NULL,
                kccl_tp_deadline(ch->link->ts, -1));
}

kccl_status_t kccl_port_channel_signal(kccl_port_channel_t ch)
{
    if (ch == NULL)
        KCCL_FAIL(PROXY, KCCL_ERR_INVALID_ARG, "kccl_port_channel_signal: NULL channel");
    return push(ch, KCCL_TRIGGER_SIGNAL, 0, 0, 0, NULL, kccl_tp_deadline(ch->link->ts, -1));
}

kccl_status_t kccl_port_channel_flush(kccl_port_channel_t ch, int64_t timeout_ms)
{
    uint64_t slot;
    if (ch == NULL)
        KCCL_FAIL(PROXY, KCCL_ERR_INVALID_ARG, "kccl_port_channel_flush: NULL channel");
    int64_t deadline = kccl_tp_deadline(ch->link->ts, timeout_ms);
    KCCL_CHECK(push(ch, KCCL_TRIGGER_FLUSH, 0, 0, 0, &slot, deadline));
    KCCL_CHECK(kccl_fifo_wait_done(&ch->proxy->host_fifo, slot, deadline));
    return kccl_proxy_check(ch->proxy);
}

kccl_status_t kccl_port_channel_wait(kccl_port_channel_t ch, int64_t timeout_ms)
{
    if (ch == NULL || kccl_mem_kind(ch->inbound) != KCCL_MEM_HOST)
        KCCL_FAIL(PROXY, KCCL_ERR_INVALID_ARG,
                  "kccl_port_channel_wait: the counter is in device memory; wait on the GPU");
    int64_t deadline = kccl_tp_deadline(ch->link->ts, timeout_ms);
    uint64_t want = ch->host_expected + 1, *ctr = kccl_mem_ptr(ch->inbound);
    for (unsigned spins = 0; __atomic_load_n(ctr, __ATOMIC_ACQUIRE) < want; spins++) {
        if (spins < 256)
            continue;
        sched_yield();
        if ((spins & 255) == 0) {
            KCCL_CHECK(kccl_link_check(ch->link, "port channel wait"));
            if (kccl_tp_now_ms() >= deadline)
                KCCL_FAIL(PROXY, KCCL_ERR_TIMED_OUT,
                          "rank %d: port channel wait for rank %d timed out (signal %llu never "
                          "came)",
                          ch->link->ts->env.rank, ch->link->peer, (unsigned long long)want);
        }
    }
    ch->host_expected = want;
    return KCCL_OK;
}

void kccl_port_channel_destroy(kccl_port_channel_t ch)
{
    if (ch == NULL)
        return;
    if (ch->proxy != NULL)
        kccl_proxy_remove_channel(ch->proxy, ch->id);
    port_free(ch);
}
