/*
 * kccl_comm.h - the communicator: a bootstrapped group plus what ranks know
 * of each other (co-location by node identity). Later stages add transports,
 * registered memory and collectives on top of the same handle.
 */
#ifndef KCCL_COMM_H
#define KCCL_COMM_H

#include "kccl_bootstrap.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kccl_comm *kccl_comm_t;

/*
 * Builds a communicator from the environment (KCCL_RANK, KCCL_WORLD_SIZE,
 * KCCL_UNIQUE_ID, KCCL_GROUP_SECRET_FILE / KCCL_GROUP_SECRET, KCCL_HOST_ID or
 * KCCL_NODE_NAME), as set by kccl-run or the Kubernetes sidecar.
 */
kccl_status_t kccl_comm_init_from_env(kccl_comm_t *out);

/* Builds a communicator from an id every rank already holds. opts may be NULL. */
kccl_status_t kccl_comm_init_rank(const kccl_unique_id_t *id, int rank, int nranks,
                                  const kccl_bootstrap_opts_t *opts, kccl_comm_t *out);

int kccl_comm_rank(kccl_comm_t comm);
int kccl_comm_size(kccl_comm_t comm);
/* Index of this rank among the ranks on its node, and how many share the node. */
int kccl_comm_local_rank(kccl_comm_t comm);
int kccl_comm_local_size(kccl_comm_t comm);
/* The node identity of rank (as gathered at init), e.g. the Kubernetes node name. */
const char *kccl_comm_host_id(kccl_comm_t comm, int rank);
/* Seconds spent in the bootstrap part of init (check-in to ready). */
double kccl_comm_bootstrap_seconds(kccl_comm_t comm);
/* The underlying bootstrap, for out-of-band exchanges. Owned by comm. */
kccl_bootstrap_t kccl_comm_bootstrap(kccl_comm_t comm);

void kccl_comm_destroy(kccl_comm_t comm);

#ifdef __cplusplus
}
#endif
#endif /* KCCL_COMM_H */
