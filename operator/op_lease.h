/*
 * op_lease.h - leader election on a coordination.k8s.io/v1 Lease, so that of
 * several kccl-operator replicas exactly one acts while the others stand by
 * with warm caches.
 *
 * Rules (those of Kubernetes' own controllers): the leader renews every
 * retry period (2 s); a candidate takes over a Lease whose record (holder,
 * renewTime) has not changed for a lease duration (15 s) as observed on the
 * candidate's own clock (no clock comparison across machines), or at once when
 * holderIdentity is empty (released); a leader that cannot renew within the
 * renew deadline (10 s) stops leading (kccl-operator then exits, so no stale
 * leader acts); a clean stop releases the Lease (empty holder, duration 1 s)
 * and a standby takes over within one retry period. Writes carry the Lease's
 * resourceVersion: two candidates never both win.
 *
 * The decisions are a pure function of (state, observed Lease, now) -
 * op_lease_decide() - unit-tested on a fake clock; op_lease_run() is the loop
 * that GETs, decides and writes against the apiserver.
 */
#ifndef KCCL_OPERATOR_OP_LEASE_H
#define KCCL_OPERATOR_OP_LEASE_H

#include <stdatomic.h>
#include <stdint.h>

#include "kccl/kccl_status.h"
#include "kccl/kube.h"

#define OP_LEASE_NAME              "kccl-operator"
#define OP_LEASE_DURATION_MS       15000
#define OP_LEASE_RENEW_DEADLINE_MS 10000
#define OP_LEASE_RETRY_MS          2000
#define OP_LEASE_ID_MAX            256

typedef struct {
    int exists;
    char holder[OP_LEASE_ID_MAX];
    int duration_s;
    char acquire_time[40]; /* MicroTime, RFC 3339 with microseconds */
    char renew_time[40];
    int transitions;
    char resource_version[32];
} op_lease_record_t;

typedef struct {
    char identity[OP_LEASE_ID_MAX];
    int64_t duration_ms, renew_deadline_ms, retry_ms;
    /* what this candidate last observed, and when (its own monotonic clock) */
    char seen_holder[OP_LEASE_ID_MAX];
    char seen_renew[40];
    int64_t seen_at;
    int seen_any;
    /* leadership */
    int leader;
    int64_t last_renew_ok; /* when our last write as holder succeeded */
    int64_t lead_since;
} op_lease_state_t;

typedef enum {
    OP_LEASE_WAIT = 0, /* someone else holds it: check again after the retry period */
    OP_LEASE_CREATE,   /* no Lease: POST *write */
    OP_LEASE_UPDATE,   /* renew or take over: PUT *write (with the observed resourceVersion) */
} op_lease_action_t;

void op_lease_state_init(op_lease_state_t *s, const char *identity);

/* Decides what to do after observing the Lease (observed->exists 0: 404) at now.
 * now_micro: the wall-clock MicroTime written into renewTime/acquireTime. */
op_lease_action_t op_lease_decide(op_lease_state_t *s, const op_lease_record_t *observed,
                                  int64_t now, const char *now_micro, op_lease_record_t *write);

/* Records the outcome of the write op_lease_decide() asked for. */
void op_lease_written(op_lease_state_t *s, int ok, int64_t now);

/* 1 while this candidate leads: it won, and its last renewal is within the renew deadline. */
int op_lease_is_leader(const op_lease_state_t *s, int64_t now);

/* The Lease object as JSON (caller frees); for a release, holder "" and duration 1 s. */
cJSON *op_lease_to_json(const op_lease_record_t *r, const char *ns);
void op_lease_from_json(const cJSON *lease, op_lease_record_t *out);

/* ------------------------------------------------------------------ the loop */

typedef struct {
    kccl_kube_client_t kc;
    const char *ns;       /* the Lease's namespace */
    const char *identity; /* holderIdentity */
    const atomic_int *stop;
    atomic_int *leading;  /* set to 1 when this process starts leading, 0 when it stops */
    atomic_int *observed; /* set to 1 once the Lease was read (leader or standby: ready) */
    atomic_int *lost;     /* set to 1 when leadership is lost (the caller should exit) */
    /* optional: called on a clean stop before the Lease is released (finish the work first) */
    void (*before_release)(void *arg);
    void *arg;
} op_lease_opts_t;

/*
 * Runs until *stop (then releases the Lease if held; returns KCCL_OK) or until
 * leadership is lost (returns KCCL_ERR_ABORTED with *lost = 1). API errors are
 * retried every retry period; 403 Forbidden returns KCCL_ERR_KUBE.
 */
kccl_status_t op_lease_run(const op_lease_opts_t *o);

/* POD_NAME, else "<hostname>_<pid>". */
void op_lease_default_identity(char *buf, size_t len);

#endif
