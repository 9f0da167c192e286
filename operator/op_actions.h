/*
 * op_actions.h - the operator's writes, one function per kind of API call a
 * plan can ask for. Each has the operator's API deadline and stop flag, and
 * counts itself (the benchmark and the scale test read the counters: the
 * promise is O(1) calls per pod event and at most one status write per group
 * per reconcile). None of them logs the group secret.
 */
#ifndef KCCL_OPERATOR_OP_ACTIONS_H
#define KCCL_OPERATOR_OP_ACTIONS_H

#include <stdatomic.h>
#include <stdint.h>

#include "kccl/kube.h"
#include "op_model.h"

typedef struct {
    kccl_kube_client_t kc;
    const atomic_int *stop;
    int64_t timeout_ms;
    /* counters (any thread) */
    atomic_ullong calls, status_writes, conflicts, secrets, groups_created, pod_patches,
        group_patches, events, gets;
} op_api_t;

/* POST a CommGroup labelled kccl.io/managed-by: kccl-operator. AlreadyExists is success. */
kccl_status_t op_act_create_group(op_api_t *a, const char *ns, const char *name, int world_size);

/* POST Secret kccl-group-<name> (32 random bytes, key "secret") owned by the CommGroup
 * (controller, blockOwnerDeletion). AlreadyExists is success. */
kccl_status_t op_act_create_secret(op_api_t *a, const op_group_t *g);

/* PUT .../commgroups/<name>/status with g's resourceVersion; *out (may be NULL) receives the
 * updated object. A 409 returns KCCL_ERR_KUBE with kccl_kube_is_conflict(res). */
kccl_status_t op_act_write_status(op_api_t *a, const op_group_t *g, const op_status_t *st,
                                  cJSON **out, kccl_kube_result_t *res);

/* GET the CommGroup (after a Conflict). */
kccl_status_t op_act_get_group(op_api_t *a, const char *ns, const char *name, cJSON **out,
                               kccl_kube_result_t *res);

/* Merge-PATCH kccl.io/epoch on rank 0's pod, with its uid as a precondition. */
kccl_status_t op_act_patch_epoch(op_api_t *a, const char *ns, const char *pod, const char *uid,
                                 int64_t epoch);

/* Merge-PATCH the CommGroup's kccl.io/handled-failures annotation ("" removes it). */
kccl_status_t op_act_patch_handled(op_api_t *a, const op_group_t *g, const char *text);

/* POST an Event about the CommGroup. */
kccl_status_t op_act_event(op_api_t *a, const op_group_t *g, int warning, const char *reason,
                           const char *message);

#endif
