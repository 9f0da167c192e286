/*
 * ib_verbs.c - the real libibverbs table, loaded with dlopen (see
 * ib_verbs.h). Nothing here runs unless the ib transport is asked for a
 * context.
 */
#include "transport/ib/ib_verbs.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static kccl_ibv_t real;
static const kccl_ibv_t *override;
static char load_why[160];
static int loaded;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static int (*dl_query_port)(struct ibv_context *, uint8_t, void *);

static int w_query_port(struct ibv_context *ctx, uint8_t port, struct ibv_port_attr *attr)
{
    memset(attr, 0, sizeof(*attr));
    return dl_query_port(ctx, port, attr); /* the compat struct is a prefix of ibv_port_attr */
}

static int w_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad)
{
    return qp->context->ops.post_send(qp, wr, bad);
}

static int w_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad)
{
    return qp->context->ops.post_recv(qp, wr, bad);
}

static int w_poll_cq(struct ibv_cq *cq, int n, struct ibv_wc *wc)
{
    return cq->context->ops.poll_cq(cq, n, wc);
}

static int w_gid_type(struct ibv_context *ctx, uint8_t port, int index)
{
    char path[256], text[64] = "";
    snprintf(path, sizeof(path), "/sys/class/infiniband/%s/ports/%u/gid_attrs/types/%d",
             real.get_device_name(ctx->device), port, index);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    if (strstr(text, "RoCE v2") != NULL)
        return KCCL_GID_ROCE_V2;
    return KCCL_GID_IB_ROCE_V1;
}

static int w_get_memlock(struct rlimit *rl)
{
    return getrlimit(RLIMIT_MEMLOCK, rl);
}

static int w_peermem_loaded(void)
{
    return access("/sys/module/nvidia_peermem", F_OK) == 0 ||
           access("/sys/module/nv_peer_mem", F_OK) == 0;
}

static void load(void)
{
    void *h = dlopen("libibverbs.so.1", RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        snprintf(load_why, sizeof(load_why), "libibverbs.so.1 not found (install rdma-core): %s",
                 dlerror());
        return;
    }
    struct {
        const char *sym;
        void **slot;
    } want[] = {
        {"ibv_get_device_list", (void **)&real.get_device_list},
        {"ibv_free_device_list", (void **)&real.free_device_list},
        {"ibv_get_device_name", (void **)&real.get_device_name},
        {"ibv_open_device", (void **)&real.open_device},
        {"ibv_close_device", (void **)&real.close_device},
        {"ibv_query_device", (void **)&real.query_device},
        {"ibv_query_port", (void **)&dl_query_port},
        {"ibv_query_gid", (void **)&real.query_gid},
        {"ibv_alloc_pd", (void **)&real.alloc_pd},
        {"ibv_dealloc_pd", (void **)&real.dealloc_pd},
        {"ibv_create_cq", (void **)&real.create_cq},
        {"ibv_destroy_cq", (void **)&real.destroy_cq},
        {"ibv_create_qp", (void **)&real.create_qp},
        {"ibv_modify_qp", (void **)&real.modify_qp},
        {"ibv_destroy_qp", (void **)&real.destroy_qp},
        {"ibv_reg_mr", (void **)&real.reg_mr},
        {"ibv_dereg_mr", (void **)&real.dereg_mr},
        {"ibv_wc_status_str", (void **)&real.wc_status_str},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        *want[i].slot = dlsym(h, want[i].sym);
        if (*want[i].slot == NULL) {
            snprintf(load_why, sizeof(load_why), "libibverbs lacks %s", want[i].sym);
            dlclose(h);
            return;
        }
    }
    *(void **)&real.reg_dmabuf_mr = dlsym(h, "ibv_reg_dmabuf_mr"); /* optional */
    real.name = "libibverbs";
    real.query_port = w_query_port;
    real.gid_type = w_gid_type;
    real.post_send = w_post_send;
    real.post_recv = w_post_recv;
    real.poll_cq = w_poll_cq;
    real.get_memlock = w_get_memlock;
    real.peermem_loaded = w_peermem_loaded;
    loaded = 1; /* the handle stays open for the life of the process */
}

const kccl_ibv_t *kccl_ibv(char *why, size_t whylen)
{
    const kccl_ibv_t *o = __atomic_load_n(&override, __ATOMIC_ACQUIRE);
    if (o != NULL)
        return o;
    pthread_once(&load_once, load);
    if (!loaded) {
        snprintf(why, whylen, "%s", load_why);
        return NULL;
    }
    return &real;
}

void kccl_ibv_set_table(const kccl_ibv_t *t)
{
    __atomic_store_n(&override, t, __ATOMIC_RELEASE);
}
