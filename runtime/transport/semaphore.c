/*
 * semaphore.c - host semaphores (host to host over a link) and the host side
 * of memory channels (device-to-device semaphores through peer mappings).
 *
 * Both are pairwise: each rank allocates its inbound counter, registers it,
 * sends the handle to the peer and imports the peer's. A signal adds one to
 * the peer's counter after every earlier put on the link; a wait needs one
 * more than the waits before it (counters only grow, so no reset races).
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm.h"
#include "core/error.h"
#include "memory/gpu.h"
#include "transport/transport.h"

struct kccl_host_sem {
    struct kccl_link *link;
    kccl_mem_t local;
    kccl_rmem_t remote;
    uint64_t expected;
};

kccl_status_t kccl_host_sem_create(kccl_comm_t comm, int peer, kccl_host_sem_t *out)
{
    kccl_status_t st;
    struct kccl_link *link = kccl_comm_link(comm, peer);
    if (link == NULL || out == NULL)
        KCCL_FAIL(NET, KCCL_ERR_INVALID_ARG, "kccl_host_sem_create: bad peer %d", peer);
    if (!(link->ops->caps & KCCL_LINK_CAP_HOST_MEM))
        KCCL_FAIL(NET, KCCL_ERR_UNSUPPORTED,
                  "rank %d: host semaphore with rank %d: its %s link cannot write host memory "
                  "(use a port channel, or KCCL_TRANSPORT=tcp)",
                  kccl_comm_rank(comm), peer, link->ops->name);
    struct kccl_host_sem *s = calloc(1, sizeof(*s));
    if (s == NULL)
        KCCL_FAIL(NET, KCCL_ERR_NO_MEMORY, "out of memory for a semaphore");
    s->link = link;
    KCCL_CHECK_GOTO(kccl_mem_alloc(comm, 64, KCCL_MEM_HOST, &s->local), st, err);
    KCCL_CHECK_GOTO(kccl_mem_send(comm, s->local, peer), st, err);
    KCCL_CHECK_GOTO(kccl_mem_recv(comm, peer, &s->remote), st, err);
    *out = s;
    return KCCL_OK;
err:
    kccl_host_sem_destroy(s);
    return st;
}

kccl_status_t kccl_host_sem_signal(kccl_host_sem_t sem)
{
    if (sem == NULL)
        KCCL_FAIL(NET, KCCL_ERR_INVALID_ARG, "kccl_host_sem_signal: NULL semaphore");
    return kccl_link_signal(sem->link, sem->remote, 0);
}

uint64_t kccl_host_sem_value(kccl_host_sem_t sem)
{
    return sem ? __atomic_load_n((uint64_t *)kccl_mem_ptr(sem->local), __ATOMIC_ACQUIRE) : 0;
}

kccl_status_t kccl_host_sem_wait(kccl_host_sem_t sem, int64_t timeout_ms)
{
    if (sem == NULL)
        KCCL_FAIL(NET, KCCL_ERR_INVALID_ARG, "kccl_host_sem_wait: NULL semaphore");
    uint64_t want = sem->expected + 1, *ctr = kccl_mem_ptr(sem->local);
    int64_t deadline = kccl_tp_deadline(sem->link->ts, timeout_ms);
    for (unsigned spins = 0; __atomic_load_n(ctr, __ATOMIC_ACQUIRE) < want; spins++) {
        if (spins < 256)
            continue;
        sched_yield();
        if ((spins & 255) == 0) {
            KCCL_CHECK(kccl_link_check(sem->link, "semaphore wait"));
            if (kccl_tp_now_ms() >= deadline)
                KCCL_FAIL(NET, KCCL_ERR_TIMED_OUT,
                          "rank %d: semaphore wait on rank %d timed out at %llu of %llu signals",
                          sem->link->ts->env.rank, sem->link->peer,
                          (unsigned long long)__atomic_load_n(ctr, __ATOMIC_ACQUIRE),
                          (unsigned long long)want);
        }
    }
    sem->expected = want;
    return KCCL_OK;
}

void kccl_host_sem_destroy(kccl_host_sem_t sem)
{
    if (sem == NULL)
        return;
    kccl_rmem_release(sem->remote);
    kccl_mem_deregister(sem->local);
    free(sem);
}

/* ------------------------------------------------------- memory channels */

struct kccl_memory_channel {
    kccl_comm_t comm;
    int device;
    kccl_mem_t local, inbound;
    void *inbound_dev;
    kccl_rmem_t remote, peer_inbound;
    uint64_t *expected_dev;
};

void kccl_memory_channel_destroy(kccl_memory_channel_t ch)
{
    if (ch == NULL)
        return;
    const kccl_gpu_ops_t *gpu = kccl_gpu();
    kccl_rmem_release(ch->peer_inbound);
    kccl_mem_deregister(ch->inbound);
    if (gpu != NULL) {
        gpu->dev_free(ch->inbound_dev, ch->device);
        gpu->dev_free(ch->expected_dev, ch->device);
    }
    free(ch);
}

kccl_status_t kccl_memory_channel_create(kccl_comm_t comm, int peer, kccl_mem_t local,
                                         kccl_rmem_t remote, kccl_memory_channel_t *out)
{
    kccl_status_t st;
    struct kccl_link *link = kccl_comm_link(comm, peer);
    const kccl_gpu_ops_t *gpu = kccl_gpu();
    if (link == NULL || out == NULL || local == NULL || remote == NULL || remote->link != link)
        KCCL_FAIL(NET, KCCL_ERR_INVALID_ARG,
                  "kccl_memory_channel_create: bad peer %d, or buffers not from this pair", peer);
    if (!(link->ops->caps & KCCL_LINK_CAP_PEER_MAP) || gpu == NULL)
        KCCL_FAIL(NET, KCCL_ERR_UNSUPPORTED,
                  "rank %d: memory channel to rank %d needs a cuda_ipc link (this one is %s); "
                  "use a port channel across nodes",
                  kccl_comm_rank(comm), peer, link->ops->name);
    struct kccl_memory_channel *ch = calloc(1, sizeof(*ch));
    if (ch == NULL)
        KCCL_FAIL(NET, KCCL_ERR_NO_MEMORY, "out of memory for a memory channel");
    ch->comm = comm;
    ch->device = kccl_transport_state(comm)->env.device;
    ch->local = local;
    ch->remote = remote;
    KCCL_CHECK_GOTO(gpu->dev_alloc(&ch->inbound_dev, 256, ch->device), st, err);
    KCCL_CHECK_GOTO(gpu->dev_alloc((void **)&ch->expected_dev, 64, ch->device), st, err);
    KCCL_CHECK_GOTO(kccl_mem_register(comm, ch->inbound_dev, 256, KCCL_MEM_DEVICE, &ch->inbound),
                    st, err);
    KCCL_CHECK_GOTO(kccl_mem_send(comm, ch->inbound, peer), st, err);
    KCCL_CHECK_GOTO(kccl_mem_recv(comm, peer, &ch->peer_inbound), st, err);
    if (ch->peer_inbound->mapped == NULL || remote->mapped == NULL) {
        kccl_error_set("rank %d: memory channel to rank %d: peer memory is not mapped here",
                       kccl_comm_rank(comm), peer);
        kccl_log_error(IPC, "%s", kccl_last_error());
        st = KCCL_ERR_UNSUPPORTED;
        goto err;
    }
    *out = ch;
    return KCCL_OK;
err:
    kccl_memory_channel_destroy(ch);
    return st;
}

kccl_status_t kccl_memory_channel_device_handle(kccl_memory_channel_t ch,
                                                kccl_memory_channel_dev_t *out)
{
    if (ch == NULL || out == NULL)
        KCCL_FAIL(NET, KCCL_ERR_INVALID_ARG, "kccl_memory_channel_device_handle: NULL argument");
    memset(out, 0, sizeof(*out));
    out->local = kccl_mem_ptr(ch->local);
    out->remote = ch->remote->mapped;
    out->local_bytes = kccl_mem_size(ch->local);
    out->remote_bytes = ch->remote->len;
    out->sem.inbound = ch->inbound_dev;
    out->sem.expected = ch->expected_dev;
    out->sem.remote_inbound = ch->peer_inbound->mapped;
    return KCCL_OK;
}
