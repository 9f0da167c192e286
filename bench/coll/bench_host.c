/*
 * bench_host.c - kccl-bench's host mode (--host): host buffers, so the
 * collectives take the CPU path; no GPU needed (CI runs it). Also the
 * helpers every mode shares: the call of a case and NCCL's placements.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

struct bench_host {
    const bench_opts_t *o;
    kccl_comm_t comm;
    int rank, n;
    uint8_t *send, *recv;
    size_t send_cap, recv_cap;
};

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

kccl_status_t bench_kccl_call(const bench_case_t *c, const void *s, void *r, kccl_comm_t comm,
                              void *stream)
{
    switch (c->kind) {
    case COLL_CHECK_ALL_REDUCE:
        return kccl_all_reduce(s, r, c->count, c->dtype, c->op, comm, stream);
    case COLL_CHECK_ALL_GATHER: return kccl_all_gather(s, r, c->count, c->dtype, comm, stream);
    case COLL_CHECK_REDUCE_SCATTER:
        return kccl_reduce_scatter(s, r, c->count, c->dtype, c->op, comm, stream);
    default: return kccl_broadcast(s, r, c->count, c->dtype, c->root, comm, stream);
    }
}

void bench_layout(const bench_case_t *c, int rank, int in_place, uint8_t *sbase, uint8_t *rbase,
                  uint8_t **s, uint8_t **r, uint8_t **in, uint8_t **out)
{
    size_t mine = (size_t)rank * c->count * kccl_dtype_size(c->dtype);
    *s = *in = sbase;
    *r = *out = rbase;
    if (!in_place)
        return;
    if (c->kind == COLL_CHECK_ALL_GATHER) {
        *s = *in = rbase + mine;
    } else if (c->kind == COLL_CHECK_REDUCE_SCATTER) {
        *r = *out = sbase + mine;
    } else {
        *s = *in = rbase;
    }
}

kccl_status_t bench_host_create(const bench_opts_t *o, kccl_comm_t comm, bench_host_t **out)
{
    bench_host_t *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return KCCL_ERR_NO_MEMORY;
    h->o = o;
    h->comm = comm;
    h->rank = kccl_comm_rank(comm);
    h->n = kccl_comm_size(comm);
    *out = h;
    return KCCL_OK;
}

static int reserve(uint8_t **p, size_t *cap, size_t bytes)
{
    if (*cap >= bytes && *p)
        return 0;
    free(*p);
    *p = malloc(bytes ? bytes : 1);
    *cap = *p ? bytes : 0;
    return *p ? 0 : -1;
}

kccl_status_t bench_host_run(bench_host_t *h, const bench_case_t *c, int in_place, bench_meas_t *m)
{
    size_t esz = kccl_dtype_size(c->dtype);
    coll_check_t chk = {c->kind, c->dtype, c->op, c->root, h->n, h->rank, c->count, c->seed};
    uint8_t *s, *r, *in, *out;
    memset(m, 0, sizeof(*m));
    if (reserve(&h->send, &h->send_cap, c->send_count * esz) ||
        reserve(&h->recv, &h->recv_cap, c->recv_count * esz))
        return KCCL_ERR_NO_MEMORY;
    bench_layout(c, h->rank, in_place, h->send, h->recv, &s, &r, &in, &out);
    coll_check_poison(&chk, h->recv);
    coll_check_fill(&chk, in);
    kccl_status_t st = bench_kccl_call(c, s, r, h->comm, NULL);
    if (st != KCCL_OK)
        return st;
    m->wrong = h->o->check ? coll_check_wrong(&chk, out) : UINT64_MAX;
    for (int i = 0; i < h->o->warmup; i++)
        KCCL_CHECK_BENCH(bench_kccl_call(c, s, r, h->comm, NULL));
    KCCL_CHECK_BENCH(kccl_bootstrap_barrier(kccl_comm_bootstrap(h->comm)));
    double t0 = bench_now();
    for (int i = 0; i < h->o->iters; i++)
        KCCL_CHECK_BENCH(bench_kccl_call(c, s, r, h->comm, NULL));
    m->time_us = (bench_now() - t0) * 1e6 / h->o->iters;
    return KCCL_OK;
}

void bench_host_destroy(bench_host_t *h)
{
    if (h == NULL)
        return;
    free(h->send);
    free(h->recv);
    free(h);
}
