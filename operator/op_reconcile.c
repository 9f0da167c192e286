/*
 * op_reconcile.c - the reconciler (see op_reconcile.h). One pass:
 *
 *   1. classify the pods: live members (not terminating, not failed, not
 *      completed) with a rank in range and the CommGroup's world size; the
 *      rest are problems (no rank, out of range, another world size) or
 *      failures (phase Failed, a container exited non-zero);
 *   2. find the failures not acted on yet: failed pods (a replacement of the
 *      same rank may already run), crashes the kubelet restarted in place,
 *      and members deleted after the group formed; each is acted on once (its
 *      key joins kccl.io/handled-failures, which keeps the keys of failed pods
 *      that still exist): Restart bumps status.epoch once for all of them -
 *      unless the group is still re-forming after the last bump (Degraded
 *      True/MemberFailed: one incident, one bump) -, Fail ends the group;
 *   3. compute phase (Succeeded once every rank's pod completed), conditions,
 *      readyMembers, rank 0's id and endpoint;
 *      lastTransitionTime moves only when a condition's status moves;
 *   4. Events for what changed (a violation appearing, a failure, Ready).
 *
 * Cost: O(n log n) in the group's pods (one sort by rank), no allocation
 * besides that index.
 */
#include "op_reconcile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const op_rec_input_t *in;
    const op_group_t *g;
    op_plan_t *plan;
    int ws;
    int formed;
    int reforming; /* Degraded is True/MemberFailed: a failure was acted on (with Restart: the
                    * epoch was bumped) and the group has not been Ready since */
    int completed; /* every rank's pod Succeeded, no live pod: the workload is done */
    /* counts */
    int live, running, sidecars, unique, ready, dup, oor, mismatch, badrank, done_ranks;
    const op_pod_t *first_dup, *first_oor, *first_mismatch, *first_badrank, *rank0;
    int failures;
    char failure_msg[400];
} rec_t;

static void add_event(op_plan_t *p, int warning, const char *reason, const char *msg)
{
    if (p->nevents >= OP_REC_EVENTS_MAX)
        return;
    op_rec_event_t *e = &p->events[p->nevents++];
    e->warning = warning;
    snprintf(e->reason, sizeof(e->reason), "%s", reason);
    snprintf(e->message, sizeof(e->message), "%s", msg);
}

static int is_live(const op_pod_t *p)
{
    return !p->deleting && !p->failed && p->phase != OP_POD_SUCCEEDED;
}

static int handled(const rec_t *r, const char *key)
{
    for (int i = 0; i < r->g->nhandled; i++)
        if (!strcmp(r->g->handled[i], key))
            return 1;
    for (size_t i = 0; i < r->in->nextra_handled; i++)
        if (!strcmp(r->in->extra_handled[i], key))
            return 1;
    for (int i = 0; i < r->plan->nnew_handled; i++)
        if (!strcmp(r->plan->new_handled[i], key))
            return 1;
    return 0;
}

static int cmp_rank(const void *a, const void *b)
{
    const op_pod_t *x = *(const op_pod_t *const *)a, *y = *(const op_pod_t *const *)b;
    return (x->rank > y->rank) - (x->rank < y->rank);
}

/* Step 1: live members, problems, readiness. */
static void classify(rec_t *r)
{
    const op_rec_input_t *in = r->in;
    const op_pod_t **valid = malloc((in->npods ? in->npods : 1) * sizeof(*valid));
    size_t nvalid = 0;
    for (size_t i = 0; i < in->npods; i++) {
        const op_pod_t *p = &in->pods[i];
        if (!is_live(p))
            continue;
        r->live++;
        if (p->rank < 0) {
            r->badrank++;
            r->first_badrank = r->first_badrank ? r->first_badrank : p;
        } else if (p->rank >= r->ws) {
            r->oor++;
            r->first_oor = r->first_oor ? r->first_oor : p;
        } else if (p->world_size != -1 && p->world_size != r->ws) {
            r->mismatch++;
            r->first_mismatch = r->first_mismatch ? r->first_mismatch : p;
        } else if (valid) {
            valid[nvalid++] = p;
        }
    }
    if (valid == NULL)
        return; /* out of memory: counts as no members; the next pass retries */
    qsort(valid, nvalid, sizeof(*valid), cmp_rank);
    for (size_t i = 0; i < nvalid;) {
        size_t j = i + 1;
        while (j < nvalid && valid[j]->rank == valid[i]->rank)
            j++;
        if (j - i > 1) {
            r->dup += (int)(j - i);
            r->first_dup = r->first_dup ? r->first_dup : valid[i];
        } else {
            const op_pod_t *p = valid[i];
            r->unique++;
            r->running += p->phase == OP_POD_RUNNING;
            r->sidecars += p->sidecar_ready;
            r->ready += p->phase == OP_POD_RUNNING && p->sidecar_ready;
            if (p->rank == 0)
                r->rank0 = p;
        }
        i = j;
    }
    free(valid);
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Distinct ranks of the group held by a completed pod (phase Succeeded) of this world size. */
static int count_done_ranks(const rec_t *r)
{
    const op_rec_input_t *in = r->in;
    int *ranks = malloc((in->npods ? in->npods : 1) * sizeof(*ranks));
    size_t n = 0;
    if (ranks == NULL)
        return 0; /* out of memory: not complete yet; the next pass retries */
    for (size_t i = 0; i < in->npods; i++) {
        const op_pod_t *p = &in->pods[i];
        if (p->phase == OP_POD_SUCCEEDED && p->rank >= 0 && p->rank < r->ws &&
            (p->world_size == -1 || p->world_size == r->ws))
            ranks[n++] = p->rank;
    }
    qsort(ranks, n, sizeof(*ranks), cmp_int);
    int distinct = 0;
    for (size_t i = 0; i < n; i++)
        distinct += i == 0 || ranks[i] != ranks[i - 1];
    free(ranks);
    return distinct;
}

static void failure(rec_t *r, const char *key, const char *name, int rank, const char *why)
{
    op_plan_t *p = r->plan;
    if (handled(r, key) || p->nnew_handled >= OP_HANDLED_MAX)
        return;
    snprintf(p->new_handled[p->nnew_handled++], OP_FKEY_MAX, "%s", key);
    if (r->failures++ == 0)
        snprintf(r->failure_msg, sizeof(r->failure_msg), "pod %.120s (rank %d) %.160s", name, rank,
                 why);
}

/* "2026-01-02T03:04:05Z": the one form both the kubelet and this operator write. */
static int rfc3339_utc(const char *t)
{
    return strlen(t) == 20 && t[4] == '-' && t[10] == 'T' && t[19] == 'Z';
}

/* A crash restarted in place that ended before the group last became Ready belongs to an
 * incident the group already recovered from, even when no list remembers its key (an
 * operator restart with more crashed pods than the annotation holds): no failure. The time
 * is the kubelet's; a crash in the second the group became Ready still counts. */
static int crash_is_history(const rec_t *r, const op_pod_t *p)
{
    const op_cond_t *ready = &r->g->status.cond[OP_COND_READY];
    return p->crashed && !p->failed && ready->present && ready->status == 1 &&
           rfc3339_utc(p->crash_at) && rfc3339_utc(ready->last_transition) &&
           strcmp(p->crash_at, ready->last_transition) < 0;
}

/* Step 2: failures not acted on yet. A crash restarted in place (p->crashed) is one too: the
 * pod stays a member, its key (uid + restarts) makes each crash distinct. */
static void find_failures(rec_t *r)
{
    for (size_t i = 0; i < r->in->npods; i++) {
        const op_pod_t *p = &r->in->pods[i];
        if ((p->failed || p->crashed) && !p->acted && !p->deleting && p->rank >= 0 &&
            p->rank < r->ws && !crash_is_history(r, p))
            failure(r, p->fkey, p->name, p->rank, p->why);
    }
    for (size_t i = 0; i < r->in->ntombs && r->formed; i++) {
        const op_tomb_t *t = &r->in->tombs[i];
        if (!t->succeeded && t->rank >= 0 && t->rank < r->ws &&
            (t->world_size == -1 || t->world_size == r->ws))
            failure(r, t->fkey, t->name, t->rank, "was deleted after the group had formed");
    }
    if (r->failures > 1) {
        size_t n = strlen(r->failure_msg);
        snprintf(r->failure_msg + n, sizeof(r->failure_msg) - n, " (and %d more)", r->failures - 1);
    }
}

static void set_cond(rec_t *r, op_status_t *st, op_cond_id_t id, int status, const char *reason,
                     const char *msg)
{
    const op_cond_t *old = &r->g->status.cond[id];
    op_cond_t *c = &st->cond[id];
    c->present = 1;
    c->status = status;
    snprintf(c->reason, sizeof(c->reason), "%s", reason);
    snprintf(c->message, sizeof(c->message), "%s", msg);
    c->observed_generation = r->g->generation;
    if (old->present && old->status == status && old->last_transition[0])
        snprintf(c->last_transition, sizeof(c->last_transition), "%s", old->last_transition);
    else
        snprintf(c->last_transition, sizeof(c->last_transition), "%s", r->in->now);
}

/* Rank 0 published an id for this epoch (members can have bootstrapped with it). */
static int id_current(const op_pod_t *z, int64_t epoch)
{
    return z != NULL && z->unique_id[0] &&
           (z->id_epoch == epoch || (z->id_epoch == -1 && epoch == 0));
}

/* The most important problem first; 0 when there is none that blocks Ready. */
static int top_problem(const rec_t *r, const char **reason, char *msg, size_t len)
{
    if (r->dup) {
        *reason = OP_R_DUPLICATE;
        snprintf(msg, len,
                 "%d live pods share ranks (e.g. rank %d, pod %.120s): give each pod "
                 "its own kccl.io/rank",
                 r->dup, r->first_dup->rank, r->first_dup->name);
    } else if (r->oor) {
        *reason = OP_R_OUT_OF_RANGE;
        snprintf(msg, len,
                 "%d pods have a rank >= worldSize %d (e.g. pod %.120s, rank %d): fix "
                 "kccl.io/rank or spec.worldSize",
                 r->oor, r->ws, r->first_oor->name, r->first_oor->rank);
    } else if (r->mismatch) {
        *reason = OP_R_WORLD_MISMATCH;
        snprintf(msg, len,
                 "%d pods disagree with spec.worldSize %d (e.g. pod %.120s says "
                 "kccl.io/world-size %d): make them agree",
                 r->mismatch, r->ws, r->first_mismatch->name, r->first_mismatch->world_size);
    } else if (r->badrank) {
        *reason = OP_R_INVALID_RANK;
        snprintf(msg, len,
                 "%d pods have no valid rank (e.g. pod %.120s): set kccl.io/rank to "
                 "0..%d",
                 r->badrank, r->first_badrank->name, r->ws - 1);
    } else if (r->unique < r->ws) {
        *reason = r->in->npods == 0 ? OP_R_NO_MEMBERS : OP_R_MISSING;
        snprintf(msg, len, "%d of %d ranks have a live pod", r->unique, r->ws);
    } else if (r->running < r->ws) {
        *reason = OP_R_NOT_RUNNING;
        snprintf(msg, len, "%d of %d members are Running", r->running, r->ws);
    } else if (r->sidecars < r->ws) {
        *reason = OP_R_NOT_BOOTED;
        snprintf(msg, len, "%d of %d members' kccl-sidecar report ready", r->sidecars, r->ws);
    } else if (!id_current(r->rank0, r->g->status.epoch)) {
        *reason = OP_R_NOT_BOOTED;
        snprintf(msg, len, "rank 0 (pod %.120s) has not published a unique id for epoch %lld yet",
                 r->rank0 ? r->rank0->name : "?", (long long)r->g->status.epoch);
    } else {
        return 0;
    }
    return 1;
}

static int is_violation(const char *reason)
{
    return !strcmp(reason, OP_R_DUPLICATE) || !strcmp(reason, OP_R_OUT_OF_RANGE) ||
           !strcmp(reason, OP_R_WORLD_MISMATCH) || !strcmp(reason, OP_R_INVALID_RANK);
}

/* Failures found in this pass: with Restart, one epoch bump unless the group is re-forming
 * after the last one (see op_rec_plan) or has completed; with Fail, the end. */
static void member_failed(rec_t *r, char *msg, size_t len)
{
    op_status_t *st = &r->plan->status;
    if (r->g->policy == OP_POLICY_FAIL) {
        snprintf(msg, len,
                 "%s; failurePolicy Fail: the group is Failed (delete and recreate the "
                 "CommGroup to start again)",
                 r->failure_msg);
    } else if (r->reforming && r->g->status.epoch > 0) {
        snprintf(msg, len,
                 "%s; failurePolicy Restart: the group is re-forming at epoch %lld after an "
                 "earlier failure, no new epoch",
                 r->failure_msg, (long long)st->epoch);
    } else {
        st->epoch = r->g->status.epoch + 1;
        snprintf(msg, len, "%s; failurePolicy Restart: the group restarts with a new epoch %lld",
                 r->failure_msg, (long long)st->epoch);
    }
    add_event(r->plan, 1, OP_R_MEMBER_FAILED, msg);
}

/* Every rank's pod completed: Succeeded, not Ready (Completed), not Degraded. */
static void completed(rec_t *r)
{
    op_status_t *st = &r->plan->status;
    char msg[128];
    snprintf(msg, sizeof(msg), "all %d ranks completed", r->ws);
    st->phase = OP_PHASE_SUCCEEDED;
    st->ready_members = r->ready;
    set_cond(r, st, OP_COND_READY, 0, OP_R_COMPLETED, msg);
    set_cond(r, st, OP_COND_BOOTSTRAPPED, 0, OP_R_COMPLETED, msg);
    set_cond(r, st, OP_COND_DEGRADED, 0, OP_R_AS_EXPECTED, "");
    if (r->g->status.phase != OP_PHASE_SUCCEEDED)
        add_event(r->plan, 0, OP_R_COMPLETED, msg);
}

/* Step 3 (and the Events of step 4). */
static void compute_status(rec_t *r)
{
    op_plan_t *p = r->plan;
    const op_status_t *old = &r->g->status;
    op_status_t *st = &p->status;
    char msg[512];
    const char *reason = NULL;
    int problem = top_problem(r, &reason, msg, sizeof(msg));
    int failed = old->phase == OP_PHASE_FAILED && r->g->policy == OP_POLICY_FAIL;
    if (!failed && r->completed) { /* failures found now are history: recorded, not acted on */
        completed(r);
        return;
    }
    if (r->failures) {
        member_failed(r, msg, sizeof(msg));
        reason = OP_R_MEMBER_FAILED;
        problem = 1;
        failed = failed || r->g->policy == OP_POLICY_FAIL;
    }
    if (failed) {
        st->phase = OP_PHASE_FAILED;
        if (!r->failures) { /* keep the message that named the member */
            reason = OP_R_MEMBER_FAILED;
            snprintf(msg, sizeof(msg), "%s", old->cond[OP_COND_READY].message);
        }
    } else if (r->in->npods == 0) {
        st->phase = OP_PHASE_PENDING;
    } else if (!problem) {
        st->phase = OP_PHASE_READY;
    } else {
        st->phase = r->formed ? OP_PHASE_DEGRADED : OP_PHASE_FORMING;
    }
    st->ready_members = r->ready;
    int booted = r->unique == r->ws && r->sidecars == r->ws;
    char bmsg[128];
    snprintf(bmsg, sizeof(bmsg), "%d of %d members' kccl-sidecar report ready", r->sidecars, r->ws);
    set_cond(r, st, OP_COND_BOOTSTRAPPED, booted, booted ? OP_R_SIDECARS_READY : OP_R_SIDECARS_WAIT,
             bmsg);
    if (st->phase == OP_PHASE_READY) {
        snprintf(msg, sizeof(msg), "all %d members are Running and bootstrapped (epoch %lld)",
                 r->ws, (long long)st->epoch);
        set_cond(r, st, OP_COND_READY, 1, OP_R_READY, msg);
        set_cond(r, st, OP_COND_DEGRADED, 0, OP_R_AS_EXPECTED, "");
        if (old->phase != OP_PHASE_READY)
            add_event(p, 0, OP_R_READY, msg);
        return;
    }
    set_cond(r, st, OP_COND_READY, 0, reason, msg);
    if (is_violation(reason) && strcmp(old->cond[OP_COND_READY].reason, reason) != 0)
        add_event(p, 1, reason, msg);
    if (!r->failures && r->reforming) {
        /* still recovering from that failure: Degraded keeps naming it until Ready (it is
         * also the record that the group is re-forming: no second bump, op_rec_plan) */
        const op_cond_t *od = &old->cond[OP_COND_DEGRADED];
        set_cond(r, st, OP_COND_DEGRADED, 1, od->reason, od->message);
        return;
    }
    int degraded = failed || r->failures || (problem && (r->formed || is_violation(reason)));
    set_cond(r, st, OP_COND_DEGRADED, degraded, degraded ? reason : OP_R_AS_EXPECTED,
             degraded ? msg : "");
}

static void root_values(rec_t *r)
{
    op_plan_t *p = r->plan;
    const op_pod_t *z = r->rank0;
    if (z == NULL)
        return;
    snprintf(p->status.root_endpoint, sizeof(p->status.root_endpoint), "%s", z->endpoint);
    /* an id published for another epoch is stale: members must not pair it with this one */
    if (id_current(z, p->status.epoch))
        snprintf(p->status.unique_id, sizeof(p->status.unique_id), "%s", z->unique_id);
    if (z->epoch != p->status.epoch && p->status.phase != OP_PHASE_FAILED) {
        p->patch_rank0 = 1;
        snprintf(p->rank0_name, sizeof(p->rank0_name), "%s", z->name);
        snprintf(p->rank0_uid, sizeof(p->rank0_uid), "%s", z->uid);
        p->rank0_epoch = p->status.epoch;
    }
}

/* The annotation keeps the keys of failed (or crashed) pods still present, old and new (newest
 * last). */
static void handled_list(rec_t *r)
{
    op_plan_t *p = r->plan;
    char *out = p->handled_text;
    size_t cap = sizeof(p->handled_text), len = 0;
    int kept = 0;
    for (int pass = 0; pass < 3; pass++) {
        int n = pass == 0   ? r->g->nhandled
                : pass == 1 ? (int)r->in->nextra_handled
                            : p->nnew_handled;
        for (int i = 0; i < n && kept < OP_HANDLED_MAX; i++) {
            const char *k = pass == 0   ? r->g->handled[i]
                            : pass == 1 ? r->in->extra_handled[i]
                                        : p->new_handled[i];
            int present = 0;
            for (size_t j = 0; j < r->in->npods && !present; j++)
                present = (r->in->pods[j].failed || r->in->pods[j].crashed) &&
                          !strcmp(r->in->pods[j].fkey, k);
            if (!present || (len && strstr(out, k)))
                continue;
            len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? " " : "", k);
            kept++;
        }
    }
    char old[sizeof(p->handled_text)] = "";
    size_t olen = 0;
    for (int i = 0; i < r->g->nhandled; i++)
        olen += (size_t)snprintf(old + olen, sizeof(old) - olen, "%s%s", olen ? " " : "",
                                 r->g->handled[i]);
    p->write_handled = strcmp(old, out) != 0;
}

static int auto_world_size(const op_rec_input_t *in)
{
    for (size_t i = 0; i < in->npods; i++)
        if (!in->pods[i].deleting && in->pods[i].world_size >= 1)
            return in->pods[i].world_size;
    return 0;
}

void op_rec_plan(const op_rec_input_t *in, op_plan_t *out)
{
    memset(out, 0, sizeof(*out));
    const op_group_t *g = in->group;
    if (g == NULL) {
        out->create_world_size = auto_world_size(in);
        out->create_group = out->create_world_size > 0;
        out->idle = !out->create_group;
        return;
    }
    if (g->deleting || g->world_size < 1) {
        out->idle = 1;
        return;
    }
    rec_t r = {.in = in, .g = g, .plan = out, .ws = g->world_size};
    const op_status_t *old = &g->status;
    r.formed = old->phase == OP_PHASE_READY || old->phase == OP_PHASE_DEGRADED ||
               old->cond[OP_COND_BOOTSTRAPPED].status == 1;
    const op_cond_t *od = &old->cond[OP_COND_DEGRADED];
    r.reforming = od->present && od->status == 1 && !strcmp(od->reason, OP_R_MEMBER_FAILED);
    out->status = *old;
    out->status.observed_generation = g->generation;
    out->status.unique_id[0] = out->status.root_endpoint[0] = '\0';
    if (!old->secret_name[0]) {
        out->create_secret = 1;
        snprintf(out->status.secret_name, sizeof(out->status.secret_name), OP_SECRET_PREFIX "%s",
                 g->name);
    }
    classify(&r);
    r.done_ranks = count_done_ranks(&r);
    r.completed = r.live == 0 && (r.done_ranks == r.ws || old->phase == OP_PHASE_SUCCEEDED);
    if (!(old->phase == OP_PHASE_FAILED && g->policy == OP_POLICY_FAIL))
        find_failures(&r);
    compute_status(&r);
    root_values(&r);
    handled_list(&r);
    out->write_status = !op_model_status_equal(&out->status, old);
}
