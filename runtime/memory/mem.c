/*
 * mem.c - registered memory: the registry, the handle codec and the public
 * kccl_mem_* / kccl_rmem_* calls. Transport-specific work (IPC handles,
 * memory regions, mappings) is delegated to each transport's optional
 * mem_register / rmem_import entries; handle layout: memory/README.md.
 */
#include "memory/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bootstrap/auth.h"
#include "bootstrap/bootstrap_int.h"
#include "comm/comm.h"
#include "core/error.h"
#include "memory/cumem.h"
#include "memory/gpu.h"
#include "transport/transport.h"

enum { OWN_NONE = 0, OWN_MALLOC = 1, OWN_PINNED = 2, OWN_CUMEM = 3 };

/* ------------------------------------------------------------- registry */

kccl_status_t kccl_memreg_init(kccl_memreg_t *reg)
{
    memset(reg, 0, sizeof(*reg));
    if (pthread_mutex_init(&reg->lock, NULL) != 0)
        return KCCL_ERR_SYSTEM;
    reg->next_gen = 1;
    return KCCL_OK;
}

void kccl_memreg_fini(kccl_memreg_t *reg)
{
    free(reg->slots);
    reg->slots = NULL;
    pthread_mutex_destroy(&reg->lock);
}

kccl_status_t kccl_memreg_add(kccl_memreg_t *reg, struct kccl_mem *mem)
{
    pthread_mutex_lock(&reg->lock);
    uint32_t id = 0;
    while (id < reg->cap && reg->slots[id] != NULL)
        id++;
    if (id == reg->cap) {
        uint32_t ncap = reg->cap ? reg->cap * 2 : 16;
        struct kccl_mem **n = realloc(reg->slots, ncap * sizeof(*n));
        if (n == NULL) {
            pthread_mutex_unlock(&reg->lock);
            return KCCL_ERR_NO_MEMORY;
        }
        memset(n + reg->cap, 0, (ncap - reg->cap) * sizeof(*n));
        reg->slots = n;
        reg->cap = ncap;
    }
    mem->id = id;
    mem->gen = reg->next_gen++;
    if (reg->next_gen == 0)
        reg->next_gen = 1;
    reg->slots[id] = mem;
    pthread_mutex_unlock(&reg->lock);
    return KCCL_OK;
}

void kccl_memreg_remove(kccl_memreg_t *reg, struct kccl_mem *mem)
{
    pthread_mutex_lock(&reg->lock);
    if (mem->id < reg->cap && reg->slots[mem->id] == mem)
        reg->slots[mem->id] = NULL;
    pthread_mutex_unlock(&reg->lock);
}

kccl_status_t kccl_memreg_resolve(kccl_memreg_t *reg, uint32_t id, uint32_t gen, uint64_t off,
                                  uint64_t len, void **addr, kccl_mem_kind_t *kind, int *device)
{
    kccl_status_t st = KCCL_OK;
    pthread_mutex_lock(&reg->lock);
    struct kccl_mem *m = id < reg->cap ? reg->slots[id] : NULL;
    if (m == NULL || m->gen != gen)
        st = KCCL_ERR_NOT_FOUND;
    else if (off > m->len || len > m->len - off)
        st = KCCL_ERR_PROTOCOL;
    else {
        *addr = (char *)m->ptr + off;
        *kind = m->kind;
        *device = m->device;
    }
    pthread_mutex_unlock(&reg->lock);
    return st;
}

/* ---------------------------------------------------------- handle codec */

#define H_MAGIC   0x484D434Bu /* "KCMH" read as little-endian */
#define H_VERSION 1
#define H_SUM_OFF 252

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}
static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* FNV-1a over the first 252 bytes: catches truncation and stray bytes, not forgery
 * (handles come over the authenticated bootstrap). */
static uint32_t handle_sum(const uint8_t *b)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < H_SUM_OFF; i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}

void kccl_mem_handle_encode(const struct kccl_mem *mem, int owner, uint64_t node,
                            kccl_mem_handle_t *out)
{
    uint8_t *b = out->internal;
    memset(b, 0, KCCL_MEM_HANDLE_BYTES);
    put32(b + 0, H_MAGIC);
    put16(b + 4, H_VERSION);
    b[6] = (uint8_t)mem->kind;
    b[7] = mem->ipc_type;
    put32(b + 8, (uint32_t)owner);
    put32(b + 12, mem->id);
    put32(b + 16, mem->gen);
    put32(b + 20, (uint32_t)mem->device);
    put64(b + 24, (uint64_t)(uintptr_t)mem->ptr);
    put64(b + 32, mem->len);
    put64(b + 40, node);
    put64(b + 48, mem->token);
    put32(b + 56, mem->rkey);
    memcpy(b + 64, mem->ipc, KCCL_MEM_IPC_BYTES);
    put64(b + 128, mem->ipc_offset);
    put32(b + H_SUM_OFF, handle_sum(b));
}

kccl_status_t kccl_mem_handle_decode(const kccl_mem_handle_t *h, struct kccl_rmem *r, int *owner,
                                     char *why, size_t whylen)
{
    const uint8_t *b = h->internal;
    const char *bad = NULL;
    if (get32(b) != H_MAGIC)
        bad = "bad magic";
    else if (get16(b + 4) != H_VERSION)
        bad = "unsupported version";
    else if (get32(b + H_SUM_OFF) != handle_sum(b))
        bad = "checksum mismatch";
    else if (b[6] > KCCL_MEM_DEVICE)
        bad = "bad memory kind";
    else if (b[7] > KCCL_MEM_IPC_POSIX_FD)
        bad = "bad ipc type";
    else if (get32(b + 8) > 0x7FFFFFFFu)
        bad = "bad owner rank";
    else if (get64(b + 32) == 0 || get64(b + 24) + get64(b + 32) < get64(b + 24))
        bad = "bad address range";
    for (int i = 60; bad == NULL && i < 64; i++)
        if (b[i])
            bad = "reserved bytes not zero";
    for (int i = 136; bad == NULL && i < H_SUM_OFF; i++)
        if (b[i])
            bad = "reserved bytes not zero";
    if (bad != NULL) {
        snprintf(why, whylen, "%s", bad);
        return KCCL_ERR_PROTOCOL;
    }
    memset(r, 0, sizeof(*r));
    r->kind = (kccl_mem_kind_t)b[6];
    r->ipc_type = b[7];
    *owner = (int)get32(b + 8);
    r->peer = *owner;
    r->id = get32(b + 12);
    r->gen = get32(b + 16);
    r->device = (int)get32(b + 20);
    r->base = get64(b + 24);
    r->len = get64(b + 32);
    r->node = get64(b + 40);
    r->token = get64(b + 48);
    r->rkey = get32(b + 56);
    memcpy(r->ipc, b + 64, KCCL_MEM_IPC_BYTES);
    r->ipc_offset = get64(b + 128);
    return KCCL_OK;
}

/* ---------------------------------------------------------- registration */

static kccl_status_t mem_attach(kccl_comm_t comm, struct kccl_mem *m)
{
    kccl_transport_state_t *ts = kccl_transport_state(comm);
    kccl_status_t st;
    KCCL_CHECK(kccl_random_bytes(&m->token, sizeof(m->token)));
    KCCL_CHECK(kccl_memreg_add(&ts->reg, m));
    for (int t = 0; t < KCCL_TP_COUNT; t++) {
        const kccl_tp_ops_t *ops = kccl_tp_ops((kccl_tp_id_t)t);
        if (ts->ctx[t] == NULL || ops->mem_register == NULL)
            continue;
        KCCL_CHECK_GOTO(ops->mem_register(ts->ctx[t], m), st, err);
    }
    return KCCL_OK;
err:
    for (int t = 0; t < KCCL_TP_COUNT; t++) {
        const kccl_tp_ops_t *ops = kccl_tp_ops((kccl_tp_id_t)t);
        if (ts->ctx[t] != NULL && ops->mem_deregister != NULL)
            ops->mem_deregister(ts->ctx[t], m);
    }
    kccl_memreg_remove(&ts->reg, m);
    return st;
}

static kccl_status_t mem_new(kccl_comm_t comm, void *ptr, size_t bytes, kccl_mem_kind_t kind,
                             struct kccl_mem **out)
{
    if (comm == NULL || kccl_transport_state(comm) == NULL || out == NULL || bytes == 0 ||
        (kind != KCCL_MEM_HOST && kind != KCCL_MEM_DEVICE))
        KCCL_FAIL(INIT, KCCL_ERR_INVALID_ARG,
                  "memory registration: need a communicator, a size and a valid kind");
    struct kccl_mem *m = calloc(1, sizeof(*m));
    if (m == NULL)
        KCCL_FAIL(INIT, KCCL_ERR_NO_MEMORY, "out of memory for a registration");
    m->comm = comm;
    m->ptr = ptr;
    m->len = bytes;
    m->kind = kind;
    m->device = -1;
    m->fd = -1;
    *out = m;
    return KCCL_OK;
}

kccl_status_t kccl_mem_register(kccl_comm_t comm, void *ptr, size_t bytes, kccl_mem_kind_t kind,
                                kccl_mem_t *out)
{
    struct kccl_mem *m;
    kccl_status_t st;
    if (ptr == NULL)
        KCCL_FAIL(INIT, KCCL_ERR_INVALID_ARG, "kccl_mem_register: NULL buffer");
    KCCL_CHECK(mem_new(comm, ptr, bytes, kind, &m));
    if (kind == KCCL_MEM_DEVICE) {
        const kccl_gpu_ops_t *gpu = kccl_gpu();
        if (gpu == NULL) {
            free(m);
            KCCL_FAIL(INIT, KCCL_ERR_UNSUPPORTED,
                      "rank %d: device memory registration needs CUDA and a GPU (build with "
                      "KCCL_WITH_CUDA=ON)",
                      kccl_comm_rank(comm));
        }
        KCCL_CHECK_GOTO(gpu->pointer_device(ptr, &m->device), st, err);
        if (m->device < 0) {
            kccl_error_set("rank %d: kccl_mem_register: %p is not device memory",
                           kccl_comm_rank(comm), ptr);
            kccl_log_error(INIT, "%s", kccl_last_error());
            st = KCCL_ERR_INVALID_ARG;
            goto err;
        }
    }
    KCCL_CHECK_GOTO(mem_attach(comm, m), st, err);
    *out = m;
    return KCCL_OK;
err:
    free(m);
    return st;
}

kccl_status_t kccl_mem_alloc(kccl_comm_t comm, size_t bytes, kccl_mem_kind_t kind, kccl_mem_t *out)
{
    struct kccl_mem *m;
    kccl_status_t st;
    KCCL_CHECK(mem_new(comm, NULL, bytes, kind, &m));
    const kccl_gpu_ops_t *gpu = kccl_gpu();
    if (kind == KCCL_MEM_DEVICE) {
        KCCL_CHECK_GOTO(kccl_cumem_alloc(m, kccl_transport_state(comm)->env.device), st, err);
        m->owned = OWN_CUMEM;
    } else if (gpu != NULL) {
        KCCL_CHECK_GOTO(gpu->host_alloc(&m->ptr, bytes), st, err);
        memset(m->ptr, 0, bytes);
        m->owned = OWN_PINNED;
    } else {
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        if (posix_memalign(&m->ptr, page, (bytes + page - 1) / page * page) != 0) {
            st = KCCL_ERR_NO_MEMORY;
            kccl_error_set("rank %d: out of memory for %zu bytes", kccl_comm_rank(comm), bytes);
            goto err;
        }
        memset(m->ptr, 0, bytes);
        m->owned = OWN_MALLOC;
    }
    KCCL_CHECK_GOTO(mem_attach(comm, m), st, err_free);
    *out = m;
    return KCCL_OK;
err_free:
    if (m->owned == OWN_CUMEM)
        kccl_cumem_free(m);
    else if (m->owned == OWN_PINNED && gpu != NULL)
        gpu->host_free(m->ptr);
    else
        free(m->ptr);
err:
    free(m);
    return st;
}

void kccl_mem_deregister(kccl_mem_t mem)
{
    if (mem == NULL)
        return;
    kccl_transport_state_t *ts = kccl_transport_state(mem->comm);
    for (int t = 0; t < KCCL_TP_COUNT; t++) {
        const kccl_tp_ops_t *ops = kccl_tp_ops((kccl_tp_id_t)t);
        if (ts->ctx[t] != NULL && ops->mem_deregister != NULL)
            ops->mem_deregister(ts->ctx[t], mem);
    }
    kccl_memreg_remove(&ts->reg, mem);
    if (mem->fd >= 0)
        close(mem->fd);
    if (mem->owned == OWN_CUMEM)
        kccl_cumem_free(mem);
    else if (mem->owned == OWN_PINNED)
        kccl_gpu()->host_free(mem->ptr);
    else if (mem->owned == OWN_MALLOC)
        free(mem->ptr);
    free(mem);
}

void *kccl_mem_ptr(kccl_mem_t mem)
{
    return mem ? mem->ptr : NULL;
}

size_t kccl_mem_size(kccl_mem_t mem)
{
    return mem ? (size_t)mem->len : 0;
}

kccl_mem_kind_t kccl_mem_kind(kccl_mem_t mem)
{
    return mem ? mem->kind : KCCL_MEM_HOST;
}

static uint64_t node_of(kccl_comm_t comm, int rank)
{
    return kccl_bootstrap_host_hash(kccl_comm_bootstrap(comm), rank);
}

kccl_status_t kccl_mem_get_handle(kccl_mem_t mem, kccl_mem_handle_t *out)
{
    if (mem == NULL || out == NULL)
        KCCL_FAIL(INIT, KCCL_ERR_INVALID_ARG, "kccl_mem_get_handle: NULL argument");
    int rank = kccl_comm_rank(mem->comm);
    kccl_mem_handle_encode(mem, rank, node_of(mem->comm, rank), out);
    return KCCL_OK;
}

/* --------------------------------------------------------------- imports */

kccl_status_t kccl_rmem_import(kccl_comm_t comm, const kccl_mem_handle_t *handle, kccl_rmem_t *out)
{
    char why[96];
    int owner;
    kccl_status_t st;
    if (comm == NULL || handle == NULL || out == NULL)
        KCCL_FAIL(INIT, KCCL_ERR_INVALID_ARG, "kccl_rmem_import: NULL argument");
    struct kccl_rmem *r = calloc(1, sizeof(*r));
    if (r == NULL)
        KCCL_FAIL(INIT, KCCL_ERR_NO_MEMORY, "out of memory for an imported handle");
    if (kccl_mem_handle_decode(handle, r, &owner, why, sizeof(why)) != KCCL_OK) {
        free(r);
        KCCL_FAIL(INIT, KCCL_ERR_PROTOCOL, "rank %d: bad memory handle: %s", kccl_comm_rank(comm),
                  why);
    }
    struct kccl_link *link = kccl_comm_link(comm, owner);
    if (link == NULL) {
        free(r);
        KCCL_FAIL(INIT, KCCL_ERR_INVALID_ARG,
                  "rank %d: memory handle of rank %d: no link to that rank (own or out of range)",
                  kccl_comm_rank(comm), owner);
    }
    r->comm = comm;
    r->link = link;
    if (link->ops->rmem_import != NULL)
        KCCL_CHECK_GOTO(link->ops->rmem_import(link->ep, r), st, err);
    *out = r;
    return KCCL_OK;
err:
    free(r);
    return st;
}

void kccl_rmem_release(kccl_rmem_t rmem)
{
    if (rmem == NULL)
        return;
    if (rmem->link != NULL && rmem->link->ops->rmem_release != NULL)
        rmem->link->ops->rmem_release(rmem->link->ep, rmem);
    free(rmem);
}

int kccl_rmem_peer(kccl_rmem_t rmem)
{
    return rmem ? rmem->peer : -1;
}

size_t kccl_rmem_size(kccl_rmem_t rmem)
{
    return rmem ? (size_t)rmem->len : 0;
}

kccl_mem_kind_t kccl_rmem_kind(kccl_rmem_t rmem)
{
    return rmem ? rmem->kind : KCCL_MEM_HOST;
}

void *kccl_rmem_mapped_ptr(kccl_rmem_t rmem)
{
    return rmem ? rmem->mapped : NULL;
}

/* ---------------------------------------------------------------- moves */

kccl_status_t kccl_mem_send(kccl_comm_t comm, kccl_mem_t mem, int peer)
{
    kccl_mem_handle_t h = {{0}};
    struct kccl_link *link = kccl_comm_link(comm, peer);
    if (mem == NULL || link == NULL)
        KCCL_FAIL(INIT, KCCL_ERR_INVALID_ARG, "kccl_mem_send: bad memory or peer %d", peer);
    KCCL_CHECK(kccl_mem_get_handle(mem, &h));
    KCCL_CHECK(kccl_bootstrap_send_internal(kccl_comm_bootstrap(comm), peer, KCCL_TAG_OP_LINK,
                                            kccl_link_send_tag(link, KCCL_TP_TAG_MEM), &h,
                                            sizeof(h)));
    if (link->ops->mem_push != NULL)
        KCCL_CHECK(link->ops->mem_push(link->ep, mem));
    return KCCL_OK;
}

kccl_status_t kccl_mem_recv(kccl_comm_t comm, int peer, kccl_rmem_t *out)
{
    kccl_mem_handle_t h = {{0}};
    struct kccl_link *link = kccl_comm_link(comm, peer);
    if (link == NULL || out == NULL)
        KCCL_FAIL(INIT, KCCL_ERR_INVALID_ARG, "kccl_mem_recv: bad peer %d", peer);
    KCCL_CHECK(kccl_bootstrap_recv_internal(kccl_comm_bootstrap(comm), peer, KCCL_TAG_OP_LINK,
                                            kccl_link_recv_tag(link, KCCL_TP_TAG_MEM), &h,
                                            sizeof(h)));
    struct kccl_rmem *r;
    KCCL_CHECK(kccl_rmem_import(comm, &h, &r));
    if (r->peer != peer) {
        int got = r->peer;
        kccl_rmem_release(r);
        KCCL_FAIL(INIT, KCCL_ERR_PROTOCOL,
                  "rank %d: memory handle from rank %d names rank %d as its owner",
                  kccl_comm_rank(comm), peer, got);
    }
    *out = r;
    return KCCL_OK;
}

kccl_status_t kccl_mem_exchange(kccl_comm_t comm, kccl_mem_t mem, kccl_rmem_t *out)
{
    kccl_status_t st = KCCL_OK;
    if (comm == NULL || mem == NULL || out == NULL)
        KCCL_FAIL(INIT, KCCL_ERR_INVALID_ARG, "kccl_mem_exchange: NULL argument");
    int n = kccl_comm_size(comm), me = kccl_comm_rank(comm);
    kccl_mem_handle_t *all = calloc((size_t)n, sizeof(*all));
    if (all == NULL)
        KCCL_FAIL(INIT, KCCL_ERR_NO_MEMORY, "out of memory for %d handles", n);
    for (int r = 0; r < n; r++)
        out[r] = NULL;
    KCCL_CHECK_GOTO(kccl_mem_get_handle(mem, &all[me]), st, out_free);
    KCCL_CHECK_GOTO(kccl_bootstrap_all_gather(kccl_comm_bootstrap(comm), all, sizeof(*all)), st,
                    out_free);
    /* Push fds to every same-node peer first: pushes never block, so no rank waits on
     * another's push while that one waits on its own import. */
    for (int r = 0; r < n; r++) {
        struct kccl_link *l = kccl_comm_link(comm, r);
        if (l != NULL && l->ops->mem_push != NULL)
            KCCL_CHECK_GOTO(l->ops->mem_push(l->ep, mem), st, out_release);
    }
    for (int i = 1; i < n; i++) {
        int r = (me + i) % n;
        KCCL_CHECK_GOTO(kccl_rmem_import(comm, &all[r], &out[r]), st, out_release);
        if (out[r]->peer != r) {
            kccl_error_set("rank %d: exchanged handle in rank %d's slot names rank %d", me, r,
                           out[r]->peer);
            kccl_log_error(INIT, "%s", kccl_last_error());
            st = KCCL_ERR_PROTOCOL;
            goto out_release;
        }
    }
    free(all);
    return KCCL_OK;
out_release:
    for (int r = 0; r < n; r++) {
        kccl_rmem_release(out[r]);
        out[r] = NULL;
    }
out_free:
    free(all);
    return st;
}
