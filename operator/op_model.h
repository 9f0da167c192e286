/*
 * op_model.h - what kccl-operator knows about pods and CommGroups, as small
 * fixed-size records instead of whole API objects: the caches hold these (a
 * 1,000-pod group costs about a megabyte), the reconciler reads and writes
 * them, and the conversions to and from JSON live in op_model.c.
 *
 * A pod record keeps only what the reconciler decides on: group, rank, world
 * size, phase, failure, the kccl-sidecar init container's readiness, and rank
 * 0's published values. A CommGroup record keeps spec, status and the list of
 * failures already acted on (annotation kccl.io/handled-failures).
 */
#ifndef KCCL_OPERATOR_OP_MODEL_H
#define KCCL_OPERATOR_OP_MODEL_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "kccl/kccl_status.h"

#define OP_NAME "kccl-operator"

#define OP_API_GROUP   "kccl.io"
#define OP_API_VERSION "kccl.io/v1alpha1"
#define OP_KIND        "CommGroup"
#define OP_RESOURCE    "commgroups"

/* pod annotations and labels (sidecar/README.md is their contract) */
#define OP_ANN_GROUP       "kccl.io/group"
#define OP_ANN_RANK        "kccl.io/rank"
#define OP_ANN_WORLD       "kccl.io/world-size"
#define OP_ANN_EPOCH       "kccl.io/epoch"
#define OP_ANN_ENDPOINT    "kccl.io/endpoint"
#define OP_ANN_UNIQUE_ID   "kccl.io/unique-id"
#define OP_ANN_ID_EPOCH    "kccl.io/unique-id-epoch"
#define OP_JOB_INDEX       "batch.kubernetes.io/job-completion-index"
#define OP_POD_INDEX       "apps.kubernetes.io/pod-index"
#define OP_SIDECAR         "kccl-sidecar"
#define OP_LABEL_MANAGED   "kccl.io/managed-by"
#define OP_ANN_HANDLED     "kccl.io/handled-failures"
#define OP_SECRET_PREFIX   "kccl-group-"
#define OP_PORT_DEFAULT    29500
#define OP_TIMEOUT_DEFAULT 300

#define OP_NS_MAX      64  /* a namespace is a DNS label: <= 63 */
#define OP_GROUP_MAX   64  /* a label value: <= 63 */
#define OP_POD_MAX     254 /* a pod name: <= 253 */
#define OP_UID_MAX     40  /* a UUID: 36 */
#define OP_FKEY_MAX    52  /* a failure key: uid.restarts */
#define OP_ID_MAX      256 /* kccl.io/unique-id: 171 characters today */
#define OP_EP_MAX      80  /* [IPv6]:port */
#define OP_WHY_MAX     160
#define OP_RV_MAX      32
#define OP_HANDLED_MAX 32 /* failures remembered on the CommGroup */
#define OP_WORLD_MAX   (1 << 24)

#define OP_RANK_NONE    (-1) /* no rank source */
#define OP_RANK_INVALID (-2) /* a rank source that is not a number >= 0 */

typedef enum {
    OP_POD_PENDING = 0,
    OP_POD_RUNNING,
    OP_POD_SUCCEEDED,
    OP_POD_FAILED,
    OP_POD_UNKNOWN,
} op_pod_phase_t;

typedef struct {
    char ns[OP_NS_MAX];
    char name[OP_POD_MAX];
    char uid[OP_UID_MAX];
    char group[OP_GROUP_MAX];
    int rank;       /* >= 0, OP_RANK_NONE or OP_RANK_INVALID */
    int world_size; /* kccl.io/world-size; -1 absent, -2 not a number >= 1 */
    op_pod_phase_t phase;
    int deleting;           /* metadata.deletionTimestamp is set */
    int failed;             /* phase Failed, or a container terminated with a non-zero code */
    int crashed;            /* not failed now, but a container's last run exited non-zero and
                             * the kubelet restarts it in place (lastState.terminated): a
                             * failure event; the pod stays a member */
    char crash_at[24];      /* when crashed: lastState.terminated.finishedAt (RFC 3339), or "" */
    char why[OP_WHY_MAX];   /* what failed, for messages */
    char fkey[OP_FKEY_MAX]; /* this failure's identity: "<uid>.<n>", n the sum of the app
                             * containers' restarts before the failed run was replaced */
    int sidecar_ready;      /* the kccl-sidecar init container reports ready */
    int acted;        /* not parsed: the cache sets it when this process already acted on fkey */
    int64_t epoch;    /* kccl.io/epoch; 0 when absent */
    int64_t id_epoch; /* kccl.io/unique-id-epoch; -1 when absent */
    char unique_id[OP_ID_MAX];
    char endpoint[OP_EP_MAX];
} op_pod_t;

typedef enum {
    OP_PHASE_NONE = 0, /* no status yet */
    OP_PHASE_PENDING,
    OP_PHASE_FORMING,
    OP_PHASE_READY,
    OP_PHASE_DEGRADED,
    OP_PHASE_FAILED,
    OP_PHASE_SUCCEEDED, /* every rank's pod completed (phase Succeeded) */
} op_phase_t;

typedef enum {
    OP_COND_READY = 0,
    OP_COND_BOOTSTRAPPED,
    OP_COND_DEGRADED,
    OP_COND_COUNT
} op_cond_id_t;

typedef struct {
    int present;
    int status; /* 1 True, 0 False, -1 Unknown */
    char reason[48];
    char message[512];
    char last_transition[32]; /* RFC 3339 */
    int64_t observed_generation;
} op_cond_t;

typedef struct {
    op_phase_t phase;
    op_cond_t cond[OP_COND_COUNT];
    char unique_id[OP_ID_MAX];
    char root_endpoint[OP_EP_MAX];
    int ready_members;
    int64_t epoch;
    int64_t observed_generation;
    char secret_name[OP_GROUP_MAX + 16];
} op_status_t;

typedef enum { OP_POLICY_RESTART = 0, OP_POLICY_FAIL } op_policy_t;

typedef struct {
    char ns[OP_NS_MAX];
    char name[OP_GROUP_MAX];
    char uid[OP_UID_MAX];
    char resource_version[OP_RV_MAX];
    int64_t generation;
    int deleting;
    int world_size;
    int port;
    int timeout_s;
    op_policy_t policy;
    op_status_t status;
    char handled[OP_HANDLED_MAX][OP_FKEY_MAX]; /* failure keys (uid.restarts) acted on */
    int nhandled;
} op_group_t;

const char *op_phase_str(op_phase_t phase);
const char *op_cond_type_str(op_cond_id_t id);

/* Parses a pod (a watch event's object). Returns KCCL_OK, or KCCL_ERR_INVALID_ARG when it
 * has no name/namespace or no kccl.io/group (label or annotation). */
kccl_status_t op_model_pod_from_json(const cJSON *pod, op_pod_t *out);

/* 1 when two pod records say the same to the reconciler. */
int op_model_pod_equal(const op_pod_t *a, const op_pod_t *b);

/* Parses a CommGroup; missing spec fields get the CRD's defaults. */
kccl_status_t op_model_group_from_json(const cJSON *cg, op_group_t *out);

/* The status object as the apiserver wants it (caller frees). */
cJSON *op_model_status_to_json(const op_status_t *st);

/* Equal for the purpose of "skip the write when nothing changed". */
int op_model_status_equal(const op_status_t *a, const op_status_t *b);

/* Parses a decimal integer in [min, max]; 0 on success, -1 otherwise. */
int op_model_parse_int(const char *text, int64_t min, int64_t max, int64_t *out);

/* "ns/name" into buf; -1 if it does not fit. */
int op_model_key(char *buf, size_t len, const char *ns, const char *name);

/* RFC 3339 UTC time of now (seconds), "2026-01-02T03:04:05Z". */
void op_model_now_rfc3339(char *buf, size_t len);

#endif
