/*
 * op_reconcile.h - the reconciler: a pure function from what the caches say
 * about ONE group (its CommGroup, its pods, the members deleted since the last
 * pass) to a plan: the status the CommGroup should have, and the few API
 * actions that get there. No API calls, no clock (the caller passes "now"),
 * no globals: tests/unit/operator/test_op_reconcile.c drives it with literal
 * records. operator/README.md describes the semantics it implements.
 */
#ifndef KCCL_OPERATOR_OP_RECONCILE_H
#define KCCL_OPERATOR_OP_RECONCILE_H

#include <stddef.h>

#include "op_model.h"

/* A member that disappeared (watch DELETED) since the group's last reconcile. */
typedef struct {
    char name[OP_POD_MAX];
    char fkey[OP_FKEY_MAX]; /* the pod's failure key if it had failed, else "<uid>.deleted" */
    int rank;
    int world_size; /* its kccl.io/world-size (-1 absent): a pod that disagreed was no member */
    int succeeded;  /* it had completed (phase Succeeded): not a failure */
} op_tomb_t;

typedef struct {
    const char *ns;
    const char *name;        /* the group (CommGroup name = pods' kccl.io/group) */
    const op_group_t *group; /* NULL: no CommGroup exists */
    const op_pod_t *pods;    /* the group's pods, any order */
    size_t npods;
    const op_tomb_t *tombs;
    size_t ntombs;
    /* failure keys acted on by this process and not yet on the CommGroup (may be NULL) */
    const char (*extra_handled)[OP_FKEY_MAX];
    size_t nextra_handled;
    const char *now; /* RFC 3339, for lastTransitionTime */
} op_rec_input_t;

#define OP_REC_EVENTS_MAX 4

typedef struct {
    int warning; /* 1 Warning, 0 Normal */
    char reason[48];
    char message[512];
} op_rec_event_t;

typedef struct {
    /* no CommGroup: create one (label kccl.io/managed-by) with this world size */
    int create_group;
    int create_world_size;
    /* status.secretName is empty: create Secret kccl-group-<name> owned by the CommGroup */
    int create_secret;
    /* PUT /status with the CommGroup's resourceVersion; skipped when nothing changed */
    int write_status;
    op_status_t status;
    /* rank 0's pod carries another kccl.io/epoch than status.epoch */
    int patch_rank0;
    char rank0_name[OP_POD_MAX];
    char rank0_uid[OP_UID_MAX];
    int64_t rank0_epoch;
    /* failures acted on in this pass (epoch bumped or group failed) */
    char new_handled[OP_HANDLED_MAX][OP_FKEY_MAX];
    int nnew_handled;
    /* the CommGroup's kccl.io/handled-failures annotation should become handled_text */
    int write_handled;
    char handled_text[OP_HANDLED_MAX * OP_FKEY_MAX];
    op_rec_event_t events[OP_REC_EVENTS_MAX];
    int nevents;
    /* nothing to do at all (a CommGroup being deleted, or no pods and no CommGroup) */
    int idle;
} op_plan_t;

/* Computes the plan. Never fails: bad input is reported in the status it plans. */
void op_rec_plan(const op_rec_input_t *in, op_plan_t *out);

/* Reasons (CamelCase, conditions and Events) */
#define OP_R_READY          "GroupReady"
#define OP_R_DUPLICATE      "DuplicateRank"
#define OP_R_OUT_OF_RANGE   "RankOutOfRange"
#define OP_R_WORLD_MISMATCH "WorldSizeMismatch"
#define OP_R_INVALID_RANK   "InvalidRank"
#define OP_R_MEMBER_FAILED  "MemberFailed"
#define OP_R_MISSING        "MembersMissing"
#define OP_R_NOT_RUNNING    "MembersNotRunning"
#define OP_R_NOT_BOOTED     "NotBootstrapped"
#define OP_R_NO_MEMBERS     "NoMembers"
#define OP_R_SIDECARS_READY "SidecarsReady"
#define OP_R_SIDECARS_WAIT  "SidecarsNotReady"
#define OP_R_AS_EXPECTED    "AsExpected"
#define OP_R_COMPLETED      "Completed"

#endif
