/*
 * op_ctrl.h - the controller: two watch threads (pods with label
 * kccl.io/group; CommGroups) feed the cache and the work queue; worker
 * threads take group keys, snapshot the group, run the reconciler and carry
 * out its plan with op_actions. Workers act only while *leading is set (the
 * lease loop sets it, or main sets it for a single replica); a standby keeps
 * its caches warm and takes over with a resync of every group it knows.
 */
#ifndef KCCL_OPERATOR_OP_CTRL_H
#define KCCL_OPERATOR_OP_CTRL_H

#include <stdatomic.h>
#include <stdint.h>

#include "kccl/kube.h"
#include "op_actions.h"
#include "op_cache.h"

typedef struct {
    kccl_kube_client_t kc;
    const char *ns; /* NULL or "": all namespaces */
    int workers;
    int64_t coalesce_ms;
    int64_t api_timeout_ms;
    const atomic_int *stop;
    const atomic_int *leading;
} op_ctrl_opts_t;

typedef struct op_ctrl *op_ctrl_t;

/* Starts the watches and the workers. */
kccl_status_t op_ctrl_start(const op_ctrl_opts_t *o, op_ctrl_t *out);
/* 1 once both caches hold a complete LIST. */
int op_ctrl_synced(op_ctrl_t c);
/* 1 when a watch stopped for good (e.g. 403): the process should exit. */
int op_ctrl_failed(op_ctrl_t c);
/* Waits for the workers to finish the pass in progress (set *stop first; API calls are
 * aborted after a 5 s grace). Idempotent. A leader calls it before releasing its Lease. */
void op_ctrl_quiesce(op_ctrl_t c);
/* Aborts the API calls of a pass in progress at once (leadership lost: another leader acts). */
void op_ctrl_abort(op_ctrl_t c);
/* Joins the threads (set *stop first) and frees. */
void op_ctrl_stop(op_ctrl_t c);

typedef struct {
    op_cache_stats_t cache;
    uint64_t reconciles, reconcile_errors;
    uint64_t api_calls, status_writes, conflicts, secrets, groups_created, pod_patches,
        group_patches, events, gets;
} op_ctrl_stats_t;
void op_ctrl_stats(op_ctrl_t c, op_ctrl_stats_t *out);

#endif
