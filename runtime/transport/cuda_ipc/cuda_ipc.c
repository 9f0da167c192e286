/*
 * cuda_ipc.c - the CUDA IPC transport: ranks on one node map each other's
 * device memory. Registered cudaMalloc memory travels as a legacy
 * cudaIpcMemHandle_t (plus the offset inside its allocation); memory from
 * kccl_mem_alloc is a cuMem allocation whose POSIX fd goes over the node's
 * Unix socket (ipc_socket.c). Imports are mapped into this process, which is
 * what memory channels use from the GPU. Peer access is enabled between the
 * two devices lazily by the IPC open (cudaIpcMemLazyEnablePeerAccess) or by
 * cuMemSetAccess; never with cudaDeviceEnablePeerAccess, which would create
 * the peer GPU's context in this process (see ipc_ep_connect).
 *
 * Host-initiated operations (the proxy's port channels, kccl_link_*) run as
 * copies on one stream per link: put = cudaMemcpyAsync into the mapping;
 * signal = the link's running count for that counter, copied from a
 * page-locked slot after the puts (single writer per counter, so a plain
 * 8-byte store suffices); flush = waiting for the stream, with a deadline.
 */
#include <cuda_runtime_api.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/error.h"
#include "memory/cu_driver.h"
#include "memory/cumem.h"
#include "transport/cuda_ipc/ipc_socket.h"
#include "transport/transport.h"

#define SIG_SLOTS 1024

typedef struct import {
    struct import *next;
    int peer;
    uint8_t handle[KCCL_MEM_IPC_BYTES];
    void *base;
    int refs;
} import_t;

typedef struct kccl_tp_ctx {
    kccl_tp_env_t env;
    int device;
    char bus[32];
    kccl_ipc_sock_t sock;
    pthread_mutex_t lock; /* imports */
    import_t *imports;
} ipc_ctx_t;

typedef struct kccl_tp_ep {
    ipc_ctx_t *ctx;
    int peer;
    char peer_bus[32];
    pthread_mutex_t lock; /* stream work from several threads */
    cudaStream_t stream;
    uint64_t *sig_slots; /* page-locked */
    uint32_t sig_next;
    int err; /* atomic */
    char why[200];
} ipc_ep_t;

static kccl_status_t ep_fail(ipc_ep_t *ep, kccl_status_t st, const char *what, cudaError_t e)
{
    pthread_mutex_lock(&ep->lock);
    if (ep->err == 0) {
        snprintf(ep->why, sizeof(ep->why), "rank %d: cuda_ipc link to rank %d: %s: %s",
                 ep->ctx->env.rank, ep->peer, what, cudaGetErrorString(e));
        __atomic_store_n(&ep->err, (int)st, __ATOMIC_RELEASE);
    }
    kccl_error_set("%s", ep->why);
    pthread_mutex_unlock(&ep->lock);
    kccl_log_error(IPC, "%s", kccl_last_error());
    return st;
}

#define EP_CUDA(ep, call, what)                                                                    \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess)                                                                     \
            return ep_fail((ep), KCCL_ERR_CUDA, (what), e_);                                       \
    } while (0)

/* ------------------------------------------------------------ contexts */

static kccl_status_t ipc_ctx_create(const kccl_tp_env_t *env, kccl_tp_ctx_t **out, char *why,
                                    size_t whylen)
{
    int n = 0;
    if (env->device < 0 || cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        (void)cudaGetLastError();
        snprintf(why, whylen, "no CUDA device in this process");
        return KCCL_ERR_UNSUPPORTED;
    }
    ipc_ctx_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        KCCL_FAIL(IPC, KCCL_ERR_NO_MEMORY, "out of memory for the cuda_ipc transport");
    c->env = *env;
    c->device = env->device;
    pthread_mutex_init(&c->lock, NULL);
    if (cudaDeviceGetPCIBusId(c->bus, sizeof(c->bus), c->device) != cudaSuccess) {
        (void)cudaGetLastError();
        c->bus[0] = '\0';
    }
    kccl_status_t st = kccl_ipc_sock_open(&c->sock, kccl_config_str(KCCL_CFG_IPC_SOCKET_DIR),
                                          env->group, env->rank);
    if (st != KCCL_OK) {
        pthread_mutex_destroy(&c->lock);
        free(c);
        return st;
    }
    *out = c;
    return KCCL_OK;
}

static void ipc_ctx_destroy(kccl_tp_ctx_t *c)
{
    while (c->imports != NULL) {
        import_t *i = c->imports;
        c->imports = i->next;
        (void)cudaIpcCloseMemHandle(i->base);
        free(i);
    }
    kccl_ipc_sock_close(&c->sock);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* Record: 0 version 1, 4 device (this process's numbering), 8 PCI bus id (32 bytes). */
static kccl_status_t ipc_rank_info(kccl_tp_ctx_t *c, uint8_t info[KCCL_TP_INFO_BYTES])
{
    info[0] = 1;
    memcpy(info + 4, &c->device, sizeof(int));
    memcpy(info + 8, c->bus, sizeof(c->bus));
    return KCCL_OK;
}

static kccl_status_t ipc_ep_create(kccl_tp_ctx_t *c, int peer,
                                   const uint8_t info[KCCL_TP_INFO_BYTES], kccl_tp_ep_t **out,
                                   uint8_t pair[KCCL_TP_PAIR_BYTES])
{
    (void)pair;
    ipc_ep_t *ep = calloc(1, sizeof(*ep));
    if (ep == NULL)
        KCCL_FAIL(IPC, KCCL_ERR_NO_MEMORY, "out of memory for a cuda_ipc link");
    ep->ctx = c;
    ep->peer = peer;
    memcpy(ep->peer_bus, info + 8, sizeof(ep->peer_bus));
    ep->peer_bus[sizeof(ep->peer_bus) - 1] = '\0';
    pthread_mutex_init(&ep->lock, NULL);
    *out = ep;
    return KCCL_OK;
}

/*
 * Peer access is NOT enabled here. cudaDeviceEnablePeerAccess(peer device) makes the CUDA
 * runtime create (retain) the peer GPU's primary context in this process: about 100-200 ms
 * and several hundred MiB of that GPU's memory per peer, which dominated communicator set-up
 * on the GPU hosts (243 ms on 2 GPUs, 1.6 s per rank on 4). Nothing needs it: legacy imports
 * are opened with cudaIpcMemLazyEnablePeerAccess, cuMem imports get access for this device
 * through cuMemSetAccess, and copies into either kind of mapping work without it. This only
 * checks, cheaply, that the hardware path exists, and says so when it does not.
 */
static kccl_status_t ipc_ep_connect(kccl_tp_ep_t *ep, const uint8_t pair[KCCL_TP_PAIR_BYTES])
{
    (void)pair;
    ipc_ctx_t *c = ep->ctx;
    int pdev = -1, can = 0;
    if (strcmp(ep->peer_bus, c->bus) == 0 || ep->peer_bus[0] == '\0')
        return KCCL_OK; /* same GPU (or unknown): nothing to check */
    if (cudaDeviceGetByPCIBusId(&pdev, ep->peer_bus) != cudaSuccess) {
        (void)cudaGetLastError();
        kccl_log_debug(IPC,
                       "rank %d: rank %d's GPU %s is not visible here; peer access comes "
                       "with the IPC open",
                       c->env.rank, ep->peer, ep->peer_bus);
        return KCCL_OK;
    }
    if (cudaDeviceCanAccessPeer(&can, c->device, pdev) != cudaSuccess || !can) {
        (void)cudaGetLastError();
        kccl_log_warn(IPC,
                      "rank %d: GPU %s cannot access rank %d's GPU %s directly; copies "
                      "go through the driver and memory channels will fail",
                      c->env.rank, c->bus, ep->peer, ep->peer_bus);
    }
    return KCCL_OK;
}

/* --------------------------------------------------------------- memory */

static kccl_status_t ipc_mem_register(kccl_tp_ctx_t *c, struct kccl_mem *mem)
{
    const kccl_cu_driver_t *d = kccl_cu_driver();
    if (mem->kind != KCCL_MEM_DEVICE || mem->ipc_type == KCCL_MEM_IPC_POSIX_FD)
        return KCCL_OK;
    CUdeviceptr base = (CUdeviceptr)mem->ptr;
    size_t size = 0;
    if (d != NULL && d->mem_get_address_range(&base, &size, (CUdeviceptr)mem->ptr) != CUDA_SUCCESS)
        base = (CUdeviceptr)mem->ptr;
    cudaIpcMemHandle_t h;
    cudaError_t e = cudaIpcGetMemHandle(&h, (void *)base);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        kccl_log_debug(IPC,
                       "rank %d: %p cannot be shared through CUDA IPC (%s); same-node peers "
                       "will not map it",
                       c->env.rank, mem->ptr, cudaGetErrorString(e));
        return KCCL_OK;
    }
    memcpy(mem->ipc, &h, sizeof(h) < KCCL_MEM_IPC_BYTES ? sizeof(h) : KCCL_MEM_IPC_BYTES);
    mem->ipc_offset = (uint64_t)((CUdeviceptr)mem->ptr - base);
    mem->ipc_type = KCCL_MEM_IPC_LEGACY;
    return KCCL_OK;
}

static kccl_status_t ipc_mem_push(kccl_tp_ep_t *ep, struct kccl_mem *mem)
{
    if (mem->ipc_type != KCCL_MEM_IPC_POSIX_FD || mem->fd < 0)
        return KCCL_OK;
    return kccl_ipc_sock_send_fd(&ep->ctx->sock, ep->peer, mem->token, mem->fd,
                                 kccl_tp_now_ms() + ep->ctx->env.timeout_ms);
}

static kccl_status_t open_legacy(ipc_ctx_t *c, int peer, const uint8_t *handle, void **base)
{
    pthread_mutex_lock(&c->lock);
    for (import_t *i = c->imports; i != NULL; i = i->next)
        if (i->peer == peer && memcmp(i->handle, handle, KCCL_MEM_IPC_BYTES) == 0) {
            i->refs++;
            *base = i->base;
            pthread_mutex_unlock(&c->lock);
            return KCCL_OK;
        }
    import_t *i = calloc(1, sizeof(*i));
    cudaIpcMemHandle_t h;
    memcpy(&h, handle, sizeof(h));
    cudaError_t e = i ? (cudaSetDevice(c->device),
                         cudaIpcOpenMemHandle(&i->base, h, cudaIpcMemLazyEnablePeerAccess))
                      : cudaErrorMemoryAllocation;
    if (e != cudaSuccess) {
        pthread_mutex_unlock(&c->lock);
        free(i);
        (void)cudaGetLastError();
        KCCL_FAIL(IPC, KCCL_ERR_CUDA,
                  "rank %d: opening rank %d's CUDA IPC handle: %s (is it on this node, with a "
                  "GPU this process may access?)",
                  c->env.rank, peer, cudaGetErrorString(e));
    }
    i->peer = peer;
    memcpy(i->handle, handle, KCCL_MEM_IPC_BYTES);
    i->refs = 1;
    i->next = c->imports;
    c->imports = i;
    *base = i->base;
    pthread_mutex_unlock(&c->lock);
    return KCCL_OK;
}

static void close_legacy(ipc_ctx_t *c, void *base)
{
    pthread_mutex_lock(&c->lock);
    for (import_t **pp = &c->imports; *pp != NULL; pp = &(*pp)->next)
        if ((*pp)->base == base) {
            import_t *i = *pp;
            if (--i->refs == 0) {
                *pp = i->next;
                (void)cudaIpcCloseMemHandle(i->base);
                free(i);
            }
            break;
        }
    pthread_mutex_unlock(&c->lock);
}

static kccl_status_t ipc_rmem_import(kccl_tp_ep_t *ep, struct kccl_rmem *r)
{
    ipc_ctx_t *c = ep->ctx;
    if (r->kind != KCCL_MEM_DEVICE || r->ipc_type == KCCL_MEM_IPC_NONE)
        return KCCL_OK; /* host memory or unshareable: not mapped (puts will refuse) */
    if (r->ipc_type == KCCL_MEM_IPC_LEGACY) {
        void *base;
        KCCL_CHECK(open_legacy(c, ep->peer, r->ipc, &base));
        r->tp_priv = base;
        r->mapped = (char *)base + r->ipc_offset;
        return KCCL_OK;
    }
    int fd;
    uint64_t handle, bytes;
    KCCL_CHECK(kccl_ipc_sock_recv_fd(&c->sock, ep->peer, r->token, &fd,
                                     kccl_tp_now_ms() + c->env.timeout_ms));
    kccl_status_t st = kccl_cumem_import(fd, r->len, c->device, &r->mapped, &handle, &bytes);
    close(fd);
    if (st == KCCL_OK) {
        r->tp_priv = (void *)(uintptr_t)handle;
        r->map_bytes = bytes;
    }
    return st;
}

static void ipc_rmem_release(kccl_tp_ep_t *ep, struct kccl_rmem *r)
{
    if (r->mapped == NULL)
        return;
    if (r->ipc_type == KCCL_MEM_IPC_LEGACY)
        close_legacy(ep->ctx, r->tp_priv);
    else
        kccl_cumem_unmap(r->mapped, (uint64_t)(uintptr_t)r->tp_priv, r->map_bytes);
    r->mapped = NULL;
}

/* ------------------------------------------------------------ data path */

static kccl_status_t ep_ready(ipc_ep_t *ep)
{
    if (__atomic_load_n(&ep->err, __ATOMIC_ACQUIRE) != 0) {
        kccl_error_set("%s", ep->why);
        return (kccl_status_t)ep->err;
    }
    EP_CUDA(ep, cudaSetDevice(ep->ctx->device), "cudaSetDevice");
    if (ep->stream == NULL)
        EP_CUDA(ep, cudaStreamCreateWithFlags(&ep->stream, cudaStreamNonBlocking),
                "cudaStreamCreate");
    if (ep->sig_slots == NULL)
        EP_CUDA(ep,
                cudaHostAlloc((void **)&ep->sig_slots, SIG_SLOTS * sizeof(uint64_t),
                              cudaHostAllocPortable),
                "cudaHostAlloc");
    return KCCL_OK;
}

static kccl_status_t ipc_put(kccl_tp_ep_t *ep, struct kccl_rmem *dst, uint64_t dst_off,
                             struct kccl_mem *src, uint64_t src_off, uint64_t len)
{
    if (dst->mapped == NULL)
        KCCL_FAIL(IPC, KCCL_ERR_UNSUPPORTED,
                  "rank %d: put to rank %d over cuda_ipc: the destination is not mapped here "
                  "(host memory, or not shareable)",
                  ep->ctx->env.rank, ep->peer);
    pthread_mutex_lock(&ep->lock);
    kccl_status_t st = ep_ready(ep);
    if (st == KCCL_OK) {
        cudaError_t e =
            cudaMemcpyAsync((char *)dst->mapped + dst_off, (const char *)src->ptr + src_off, len,
                            cudaMemcpyDefault, ep->stream);
        pthread_mutex_unlock(&ep->lock);
        return e == cudaSuccess ? KCCL_OK : ep_fail(ep, KCCL_ERR_CUDA, "cudaMemcpyAsync (put)", e);
    }
    pthread_mutex_unlock(&ep->lock);
    return st;
}

static kccl_status_t ipc_signal(kccl_tp_ep_t *ep, struct kccl_rmem *dst, uint64_t off)
{
    if (dst->mapped == NULL || off != 0)
        KCCL_FAIL(IPC, KCCL_ERR_UNSUPPORTED,
                  "rank %d: signal to rank %d over cuda_ipc needs a mapped device counter at "
                  "offset 0 of its registration",
                  ep->ctx->env.rank, ep->peer);
    pthread_mutex_lock(&ep->lock);
    kccl_status_t st = ep_ready(ep);
    cudaError_t e = cudaSuccess;
    if (st == KCCL_OK) {
        if (ep->sig_next == SIG_SLOTS) { /* every slot may still be read by a queued copy */
            e = cudaStreamSynchronize(ep->stream);
            ep->sig_next = 0;
        }
        if (e == cudaSuccess) {
            uint64_t *slot = &ep->sig_slots[ep->sig_next++];
            *slot = ++dst->signals;
            e = cudaMemcpyAsync(dst->mapped, slot, sizeof(*slot), cudaMemcpyHostToDevice,
                                ep->stream);
        }
    }
    pthread_mutex_unlock(&ep->lock);
    if (st != KCCL_OK)
        return st;
    return e == cudaSuccess ? KCCL_OK : ep_fail(ep, KCCL_ERR_CUDA, "signal copy", e);
}

static kccl_status_t ipc_flush(kccl_tp_ep_t *ep, int64_t deadline_ms)
{
    if (ep->stream == NULL)
        return KCCL_OK;
    for (unsigned spins = 0;; spins++) {
        cudaError_t e = cudaStreamQuery(ep->stream);
        if (e == cudaSuccess)
            return KCCL_OK;
        if (e != cudaErrorNotReady)
            return ep_fail(ep, KCCL_ERR_CUDA, "flush", e);
        if ((spins & 255) == 0 && kccl_tp_now_ms() >= deadline_ms)
            KCCL_FAIL(IPC, KCCL_ERR_TIMED_OUT,
                      "rank %d: flush to rank %d (cuda_ipc) timed out: copies still running",
                      ep->ctx->env.rank, ep->peer);
    }
}

static kccl_status_t ipc_ep_status(kccl_tp_ep_t *ep)
{
    return (kccl_status_t)__atomic_load_n(&ep->err, __ATOMIC_ACQUIRE);
}

static kccl_status_t ipc_ep_report(kccl_tp_ep_t *ep, const char *what)
{
    pthread_mutex_lock(&ep->lock);
    kccl_error_set("%s: %s", ep->why, what);
    pthread_mutex_unlock(&ep->lock);
    kccl_log_error(IPC, "%s", kccl_last_error());
    return ipc_ep_status(ep);
}

static void ipc_ep_close(kccl_tp_ep_t *ep)
{
    if (ep->stream != NULL) {
        (void)cudaSetDevice(ep->ctx->device);
        (void)cudaStreamSynchronize(ep->stream);
        (void)cudaStreamDestroy(ep->stream);
    }
    if (ep->sig_slots != NULL)
        (void)cudaFreeHost(ep->sig_slots);
    pthread_mutex_destroy(&ep->lock);
    free(ep);
}

const kccl_tp_ops_t kccl_tp_cuda_ipc_ops = {
    .name = "cuda_ipc",
    .id = KCCL_TP_CUDA_IPC,
    .caps = KCCL_LINK_CAP_DEVICE_MEM | KCCL_LINK_CAP_PEER_MAP,
    .pair_info = 0,
    .ctx_create = ipc_ctx_create,
    .ctx_destroy = ipc_ctx_destroy,
    .rank_info = ipc_rank_info,
    .ep_create = ipc_ep_create,
    .ep_connect = ipc_ep_connect,
    .mem_register = ipc_mem_register,
    .mem_push = ipc_mem_push,
    .rmem_import = ipc_rmem_import,
    .rmem_release = ipc_rmem_release,
    .put = ipc_put,
    .signal = ipc_signal,
    .flush = ipc_flush,
    .ep_status = ipc_ep_status,
    .ep_report = ipc_ep_report,
    .ep_close = ipc_ep_close,
};
