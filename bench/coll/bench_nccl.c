/*
 * bench_nccl.c - NCCL through dlopen for kccl-bench --compare nccl. Only the
 * handful of entry points the benchmark calls are declared here, with the
 * data type and reduction numbers of NCCL's public ABI; no NCCL header is
 * included or copied.
 */
#include "bench_nccl.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

typedef struct {
    char internal[128]; /* NCCL's unique id: 128 opaque bytes */
} nccl_uid_t;
typedef void *nccl_comm_t;
typedef int nccl_result_t; /* 0: success */

/* NCCL's data type and reduction numbers (ABI). */
enum { NCCL_INT32 = 2, NCCL_FLOAT16 = 6, NCCL_FLOAT32 = 7, NCCL_BFLOAT16 = 9 };
enum { NCCL_SUM = 0, NCCL_MAX = 2, NCCL_MIN = 3, NCCL_AVG = 4 };

struct bench_nccl {
    void *lib;
    nccl_comm_t comm;
    char desc[128];
    nccl_result_t (*get_version)(int *);
    nccl_result_t (*get_unique_id)(nccl_uid_t *);
    nccl_result_t (*comm_init_rank)(nccl_comm_t *, int, nccl_uid_t, int);
    nccl_result_t (*comm_destroy)(nccl_comm_t);
    const char *(*error_string)(nccl_result_t);
    nccl_result_t (*all_reduce)(const void *, void *, size_t, int, int, nccl_comm_t, void *);
    nccl_result_t (*all_gather)(const void *, void *, size_t, int, nccl_comm_t, void *);
    nccl_result_t (*reduce_scatter)(const void *, void *, size_t, int, int, nccl_comm_t, void *);
    nccl_result_t (*broadcast)(const void *, void *, size_t, int, int, nccl_comm_t, void *);
};

static int load(bench_nccl_t *nc, char *why, size_t whylen)
{
    const char *env = getenv("KCCL_NCCL_LIB");
    const char *names[] = {env && *env ? env : NULL, "libnccl.so.2", "libnccl.so"};
    for (size_t i = 0; i < 3 && nc->lib == NULL; i++) {
        if (names[i] == NULL)
            continue;
        nc->lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (nc->lib)
            snprintf(nc->desc, sizeof(nc->desc), "%s", names[i]);
        else
            snprintf(why, whylen, "%s", dlerror());
    }
    if (nc->lib == NULL)
        return -1;
    struct {
        const char *name;
        void **slot;
    } syms[] = {
        {"ncclGetVersion", (void **)&nc->get_version},
        {"ncclGetUniqueId", (void **)&nc->get_unique_id},
        {"ncclCommInitRank", (void **)&nc->comm_init_rank},
        {"ncclCommDestroy", (void **)&nc->comm_destroy},
        {"ncclGetErrorString", (void **)&nc->error_string},
        {"ncclAllReduce", (void **)&nc->all_reduce},
        {"ncclAllGather", (void **)&nc->all_gather},
        {"ncclReduceScatter", (void **)&nc->reduce_scatter},
        {"ncclBroadcast", (void **)&nc->broadcast},
    };
    for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
        *syms[i].slot = dlsym(nc->lib, syms[i].name);
        if (*syms[i].slot == NULL) {
            snprintf(why, whylen, "%s has no %s", nc->desc, syms[i].name);
            return -1;
        }
    }
    int v = 0;
    nc->get_version(&v);
    char lib[sizeof(nc->desc)];
    snprintf(lib, sizeof(lib), "%s", nc->desc);
    snprintf(nc->desc, sizeof(nc->desc), "NCCL %d.%d.%d (%.80s)", v / 10000, v / 100 % 100, v % 100,
             lib);
    return 0;
}

kccl_status_t bench_nccl_open(kccl_comm_t comm, bench_nccl_t **out)
{
    kccl_bootstrap_t bs = kccl_comm_bootstrap(comm);
    int n = kccl_comm_size(comm), rank = kccl_comm_rank(comm);
    char why[256] = "";
    bench_nccl_t *nc = calloc(1, sizeof(*nc));
    int *ok = calloc((size_t)n, sizeof(int));
    kccl_status_t st = KCCL_ERR_NO_MEMORY;
    if (nc == NULL || ok == NULL)
        goto err;
    int loaded = load(nc, why, sizeof(why)) == 0;
    ok[rank] = loaded;
    KCCL_CHECK_GOTO(kccl_bootstrap_all_gather(bs, ok, sizeof(int)), st, err);
    for (int r = 0; r < n; r++)
        if (!ok[r]) {
            kccl_error_set("--compare nccl: rank %d cannot load NCCL%s%s (set KCCL_NCCL_LIB to "
                           "libnccl.so.2's path)",
                           r, r == rank ? ": " : "", r == rank ? why : "");
            st = KCCL_ERR_UNSUPPORTED;
            goto err;
        }
    if (!loaded) { /* not reached (ok[rank] was 0 above); spelled out for the analyzer */
        st = KCCL_ERR_UNSUPPORTED;
        goto err;
    }
    nccl_uid_t uid;
    memset(&uid, 0, sizeof(uid));
    if (rank == 0 && nc->get_unique_id(&uid) != 0)
        memset(&uid, 0, sizeof(uid)); /* the zero id makes every rank's init fail below */
    KCCL_CHECK_GOTO(kccl_bootstrap_broadcast(bs, &uid, sizeof(uid), 0), st, err);
    nccl_result_t nr = nc->comm_init_rank(&nc->comm, n, uid, rank);
    if (nr != 0) {
        kccl_error_set("--compare nccl: ncclCommInitRank: %s", nc->error_string(nr));
        st = KCCL_ERR_CUDA;
        goto err;
    }
    free(ok);
    *out = nc;
    return KCCL_OK;
err:
    free(ok);
    bench_nccl_close(nc);
    return st;
}

static int nccl_dtype(kccl_dtype_t dt)
{
    static const int map[] = {NCCL_INT32, NCCL_FLOAT32, NCCL_FLOAT16, NCCL_BFLOAT16};
    return map[dt];
}

static int nccl_op(kccl_redop_t op)
{
    static const int map[] = {NCCL_SUM, NCCL_MAX, NCCL_MIN, NCCL_AVG};
    return map[op];
}

kccl_status_t bench_nccl_call(bench_nccl_t *nc, const bench_case_t *c, const void *s, void *r,
                              void *stream)
{
    nccl_result_t nr;
    int dt = nccl_dtype(c->dtype);
    switch (c->kind) {
    case COLL_CHECK_ALL_REDUCE:
        nr = nc->all_reduce(s, r, c->count, dt, nccl_op(c->op), nc->comm, stream);
        break;
    case COLL_CHECK_ALL_GATHER: nr = nc->all_gather(s, r, c->count, dt, nc->comm, stream); break;
    case COLL_CHECK_REDUCE_SCATTER:
        nr = nc->reduce_scatter(s, r, c->count, dt, nccl_op(c->op), nc->comm, stream);
        break;
    default: nr = nc->broadcast(s, r, c->count, dt, c->root, nc->comm, stream); break;
    }
    if (nr == 0)
        return KCCL_OK;
    kccl_error_set("NCCL %s: %s", bench_kind_name(c->kind), nc->error_string(nr));
    return KCCL_ERR_CUDA;
}

const char *bench_nccl_describe(const bench_nccl_t *nc)
{
    return nc->desc;
}

void bench_nccl_close(bench_nccl_t *nc)
{
    if (nc == NULL)
        return;
    if (nc->comm)
        nc->comm_destroy(nc->comm);
    if (nc->lib)
        dlclose(nc->lib);
    free(nc);
}
