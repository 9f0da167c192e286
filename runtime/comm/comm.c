/*
 * comm.c - the communicator: a bootstrap plus co-location. Ranks sharing a
 * node are found by node identity (KCCL_HOST_ID / the Kubernetes node name),
 * never by hostname, since pods on one node have different hostnames.
 */
#include "comm/comm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootstrap/engine.h"
#include "bootstrap/hostid.h"
#include "coll/coll.h"
#include "core/error.h"
#include "transport/transport.h"

kccl_status_t kccl_comm_init_rank(const kccl_unique_id_t *id, int rank, int nranks,
                                  const kccl_bootstrap_opts_t *opts, kccl_comm_t *out)
{
    kccl_status_t st;
    if (out == NULL)
        KCCL_FAIL(INIT, KCCL_ERR_INVALID_ARG, "kccl_comm_init_rank: NULL output");
    struct kccl_comm *c = calloc(1, sizeof(*c));
    if (c == NULL)
        KCCL_FAIL(INIT, KCCL_ERR_NO_MEMORY, "out of memory for a communicator");
    int64_t t0 = kccl_now_ns();
    KCCL_CHECK_GOTO(kccl_bootstrap_create(id, rank, nranks, opts, &c->bs), st, err);
    c->rank = rank;
    c->size = nranks;
    c->host_ids = calloc((size_t)nranks, KCCL_HOST_ID_MAX);
    if (c->host_ids == NULL) {
        st = KCCL_ERR_NO_MEMORY;
        goto err;
    }
    if (opts && opts->host_id[0])
        snprintf(c->host_ids[rank], KCCL_HOST_ID_MAX, "%s", opts->host_id);
    else
        KCCL_CHECK_GOTO(kccl_host_id_resolve(c->host_ids[rank], KCCL_HOST_ID_MAX), st, err);
    KCCL_CHECK_GOTO(kccl_bootstrap_all_gather(c->bs, c->host_ids, KCCL_HOST_ID_MAX), st, err);
    c->bootstrap_s = (double)(kccl_now_ns() - t0) / 1e9;
    for (int r = 0; r < nranks; r++) {
        c->host_ids[r][KCCL_HOST_ID_MAX - 1] = '\0';
        if (strcmp(c->host_ids[r], c->host_ids[rank]) == 0) {
            if (r < rank)
                c->local_rank++;
            c->local_size++;
        }
    }
    KCCL_CHECK_GOTO(kccl_transport_setup(c, opts), st, err);
    kccl_log_info(INIT, "communicator ready: rank %d of %d, local %d of %d on %s, %.3f ms", rank,
                  nranks, c->local_rank, c->local_size, c->host_ids[rank], c->bootstrap_s * 1e3);
    *out = c;
    return KCCL_OK;
err:
    kccl_comm_destroy(c);
    return st;
}

int kccl_comm_rank(kccl_comm_t comm)
{
    return comm ? comm->rank : -1;
}

int kccl_comm_size(kccl_comm_t comm)
{
    return comm ? comm->size : 0;
}

int kccl_comm_local_rank(kccl_comm_t comm)
{
    return comm ? comm->local_rank : -1;
}

int kccl_comm_local_size(kccl_comm_t comm)
{
    return comm ? comm->local_size : 0;
}

const char *kccl_comm_host_id(kccl_comm_t comm, int rank)
{
    if (comm == NULL || rank < 0 || rank >= comm->size)
        return "";
    return comm->host_ids[rank];
}

double kccl_comm_bootstrap_seconds(kccl_comm_t comm)
{
    return comm ? comm->bootstrap_s : 0.0;
}

kccl_bootstrap_t kccl_comm_bootstrap(kccl_comm_t comm)
{
    return comm ? comm->bs : NULL;
}

void kccl_comm_destroy(kccl_comm_t comm)
{
    if (comm == NULL)
        return;
    kccl_coll_teardown(comm);
    kccl_transport_teardown(comm);
    kccl_bootstrap_destroy(comm->bs);
    free(comm->host_ids);
    free(comm);
}
