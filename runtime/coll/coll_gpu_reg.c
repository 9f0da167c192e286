/*
 * coll_gpu_reg.c - user buffers for the zero-copy collectives: this rank
 * registers its send/recv buffers (legacy CUDA IPC handles of the cudaMalloc
 * allocation that holds them), every rank all-gathers the handles through the
 * bootstrap, and each imports its peers' (cudaIpcOpenMemHandle), so the
 * kernels load from and store to peers' user buffers directly.
 *
 * Every rank of a collective call takes part, so the exchange is collective
 * like the call; ranks decide "zero-copy or not" from the same gathered
 * records, so they always agree. Both sides cache: registrations by (pointer,
 * size, CUDA buffer id; a freed and reallocated address gets a new id),
 * imports by (peer, handle bytes; a new allocation has a new handle). Least
 * recently used entries are dropped when a cache is full; dropping is local
 * and safe (a legacy IPC mapping does not depend on the exporter's
 * registration). The exchange costs one bootstrap all-gather per call: free
 * in CUDA-graph replays (host work happens at capture), tens of microseconds
 * in eager mode, which is why small sizes use the LL algorithms instead.
 */
#include <cuda.h>
#include <cuda_runtime.h>
#include <stdlib.h>
#include <string.h>

#include "coll/coll_gpu_state.h"
#include "comm/comm.h"
#include "core/error.h"
#include "memory/mem.h"

typedef struct {
    kccl_mem_handle_t handle[2]; /* send, recv */
    uint32_t ok;                 /* both buffers mappable by peers */
    uint32_t aligned;            /* both start on 16 bytes */
    uint32_t has_send;
    uint32_t pad;
} cg_rec_t;

typedef CUresult (*ptr_attr_fn)(void *, CUpointer_attribute, CUdeviceptr);

static unsigned long long buffer_id(kccl_cg_state_t *s, const void *ptr)
{
    if (s->ptr_attr == NULL) {
        enum cudaDriverEntryPointQueryResult q;
        void *fn = NULL;
        if (cudaGetDriverEntryPointByVersion("cuPointerGetAttribute", &fn, 12000, cudaEnableDefault,
                                             &q) != cudaSuccess ||
            q != cudaDriverEntryPointSuccess)
            return 0;
        s->ptr_attr = fn;
    }
    unsigned long long id = 0;
    if (((ptr_attr_fn)s->ptr_attr)(&id, CU_POINTER_ATTRIBUTE_BUFFER_ID, (CUdeviceptr)ptr) !=
        CUDA_SUCCESS)
        return 0;
    return id;
}

/* This rank's registration of [ptr, ptr+bytes): cached, else registered now. */
static kccl_status_t reg_get(kccl_cg_state_t *s, const void *ptr, size_t bytes, kccl_mem_t *out)
{
    unsigned long long id = buffer_id(s, ptr);
    int lru = 0;
    for (int i = 0; i < KCCL_CG_REG_SLOTS; i++) {
        kccl_cg_reg_t *r = &s->reg[i];
        if (r->mem != NULL && r->ptr == ptr && r->bytes == bytes && r->id == id && id != 0) {
            r->used = ++s->tick;
            *out = r->mem;
            return KCCL_OK;
        }
        if (r->mem == NULL || (s->reg[lru].mem != NULL && r->used < s->reg[lru].used))
            lru = i;
    }
    kccl_cg_reg_t *r = &s->reg[lru];
    if (r->mem != NULL)
        kccl_mem_deregister(r->mem);
    memset(r, 0, sizeof(*r));
    KCCL_CHECK(kccl_mem_register(s->comm, (void *)ptr, bytes, KCCL_MEM_DEVICE, &r->mem));
    r->ptr = ptr;
    r->bytes = bytes;
    r->id = id;
    r->used = ++s->tick;
    *out = r->mem;
    return KCCL_OK;
}

/* Peer's buffer named by handle, mapped here: cached import, else imported now. */
static kccl_status_t imp_get(kccl_cg_state_t *s, int peer, const kccl_mem_handle_t *h, void **out)
{
    int lru = 0;
    for (int i = 0; i < KCCL_CG_IMP_SLOTS; i++) {
        kccl_cg_imp_t *m = &s->imp[i];
        if (m->rmem != NULL && m->peer == peer && memcmp(&m->handle, h, sizeof(*h)) == 0) {
            m->used = ++s->tick;
            *out = kccl_rmem_mapped_ptr(m->rmem);
            return KCCL_OK;
        }
        if (m->rmem == NULL || (s->imp[lru].rmem != NULL && m->used < s->imp[lru].used))
            lru = i;
    }
    kccl_cg_imp_t *m = &s->imp[lru];
    if (m->rmem != NULL)
        kccl_rmem_release(m->rmem);
    memset(m, 0, sizeof(*m));
    KCCL_CHECK(kccl_rmem_import(s->comm, h, &m->rmem));
    m->peer = peer;
    m->handle = *h;
    m->used = ++s->tick;
    *out = kccl_rmem_mapped_ptr(m->rmem);
    if (*out == NULL)
        KCCL_FAIL(COLL, KCCL_ERR_CUDA,
                  "rank %d: rank %d's collective buffer could not be mapped here (CUDA IPC); "
                  "use cudaMalloc'ed buffers or set KCCL_COLL_ALGO=ll",
                  s->me, peer);
    return KCCL_OK;
}

/* Fills this rank's record: registers the buffers; ok = 0 when one cannot be shared. */
static void fill_rec(kccl_cg_state_t *s, const void *send, size_t send_bytes, void *recv,
                     size_t recv_bytes, cg_rec_t *rec)
{
    const void *bufs[2] = {send, recv};
    size_t sizes[2] = {send_bytes, recv_bytes};
    rec->ok = 1;
    rec->has_send = send != NULL;
    rec->aligned = (((uintptr_t)send | (uintptr_t)recv) & 15u) == 0;
    for (int i = 0; i < 2; i++) {
        kccl_mem_t m = NULL;
        if (bufs[i] == NULL)
            continue;
        if (reg_get(s, bufs[i], sizes[i], &m) != KCCL_OK || m->ipc_type != KCCL_MEM_IPC_LEGACY ||
            kccl_mem_get_handle(m, &rec->handle[i]) != KCCL_OK) {
            kccl_log_debug(COLL, "rank %d: %p (%zu bytes) cannot be shared zero-copy: %s", s->me,
                           bufs[i], sizes[i], kccl_last_error());
            kccl_error_clear();
            rec->ok = 0;
        }
    }
}

kccl_status_t kccl_cg_buffers(kccl_cg_state_t *s, const void *send, size_t send_bytes, void *recv,
                              size_t recv_bytes, const void **peer_send, void **peer_recv, int *ok,
                              int *aligned)
{
    kccl_status_t st = KCCL_OK;
    cg_rec_t *all = calloc((size_t)s->n, sizeof(*all));
    if (all == NULL)
        KCCL_FAIL(COLL, KCCL_ERR_NO_MEMORY, "rank %d: out of memory for %d buffer records", s->me,
                  s->n);
    fill_rec(s, send, send_bytes, recv, recv_bytes, &all[s->me]);
    KCCL_CHECK_GOTO(kccl_bootstrap_all_gather(kccl_comm_bootstrap(s->comm), all, sizeof(*all)), st,
                    out);
    *ok = 1;
    *aligned = 1;
    for (int r = 0; r < s->n; r++) {
        *ok &= all[r].ok != 0;
        *aligned &= all[r].aligned != 0;
    }
    if (!*ok)
        goto out;
    for (int r = 0; r < s->n; r++) {
        void *ps = NULL, *pr = NULL;
        if (r == s->me) {
            peer_send[r] = send;
            peer_recv[r] = recv;
            continue;
        }
        if (all[r].has_send)
            KCCL_CHECK_GOTO(imp_get(s, r, &all[r].handle[0], &ps), st, out);
        KCCL_CHECK_GOTO(imp_get(s, r, &all[r].handle[1], &pr), st, out);
        peer_send[r] = ps;
        peer_recv[r] = pr;
    }
out:
    free(all);
    return st;
}

void kccl_cg_buffers_free(kccl_cg_state_t *s)
{
    for (int i = 0; i < KCCL_CG_IMP_SLOTS; i++)
        if (s->imp[i].rmem != NULL)
            kccl_rmem_release(s->imp[i].rmem);
    for (int i = 0; i < KCCL_CG_REG_SLOTS; i++)
        if (s->reg[i].mem != NULL)
            kccl_mem_deregister(s->reg[i].mem);
    memset(s->imp, 0, sizeof(s->imp));
    memset(s->reg, 0, sizeof(s->reg));
}
