/*
 * test_op_reconcile.c - operator/op_reconcile.c, the pure reconciler: from a
 * CommGroup record, its pods and its tombstones to the planned status and
 * actions. Cases: forming, ready, duplicate rank, out of range, world-size
 * mismatch, invalid rank, member failed with Restart (once per failure) and
 * with Fail, replacement, deletion after formation, auto-create, the secret,
 * the rank-0 epoch patch, lastTransitionTime stability and unchanged-status
 * skipping; a crash restarted in place, one epoch bump per incident (also
 * across an operator restart), a completed group (Succeeded).
 */
#include "kccl_test.h"
#include "op_reconcile.h"

#define NOW1 "2026-01-01T00:00:00Z"
#define NOW2 "2026-01-01T00:01:00Z"

static op_group_t group(int ws, op_policy_t policy)
{
    op_group_t g;
    memset(&g, 0, sizeof(g));
    snprintf(g.ns, sizeof(g.ns), "ns");
    snprintf(g.name, sizeof(g.name), "g");
    snprintf(g.uid, sizeof(g.uid), "cg-uid");
    snprintf(g.resource_version, sizeof(g.resource_version), "1");
    g.generation = 1;
    g.world_size = ws;
    g.port = 29500;
    g.timeout_s = 300;
    g.policy = policy;
    return g;
}

/* A Running pod with a ready sidecar; rank 0 publishes an id and endpoint for epoch 0. */
static op_pod_t pod(int rank, int ws)
{
    op_pod_t p;
    memset(&p, 0, sizeof(p));
    snprintf(p.ns, sizeof(p.ns), "ns");
    snprintf(p.name, sizeof(p.name), "p-%d", rank);
    snprintf(p.uid, sizeof(p.uid), "uid-%d", rank);
    snprintf(p.group, sizeof(p.group), "g");
    snprintf(p.fkey, sizeof(p.fkey), "uid-%d.0", rank);
    p.rank = rank;
    p.world_size = ws;
    p.phase = OP_POD_RUNNING;
    p.sidecar_ready = 1;
    p.id_epoch = -1;
    if (rank == 0) {
        snprintf(p.unique_id, sizeof(p.unique_id), "ID-0");
        snprintf(p.endpoint, sizeof(p.endpoint), "10.0.0.1:29500");
        p.id_epoch = 0;
    }
    return p;
}

static void plan(const op_group_t *g, const op_pod_t *pods, size_t n, const char *now,
                 op_plan_t *out)
{
    op_rec_input_t in = {.ns = "ns", .name = "g", .group = g, .pods = pods, .npods = n, .now = now};
    op_rec_plan(&in, out);
}

/* Makes the planned status the CommGroup's (as if written and watched back). */
static void apply(op_group_t *g, const op_plan_t *p)
{
    g->status = p->status;
    g->nhandled = 0;
    for (int i = 0; i < p->nnew_handled && g->nhandled < OP_HANDLED_MAX; i++)
        memcpy(g->handled[g->nhandled++], p->new_handled[i], OP_FKEY_MAX);
}

static int has_event(const op_plan_t *p, const char *reason)
{
    for (int i = 0; i < p->nevents; i++)
        if (!strcmp(p->events[i].reason, reason))
            return 1;
    return 0;
}

static void ready_group(op_group_t *g, op_pod_t *pods, int ws, op_plan_t *p)
{
    for (int i = 0; i < ws; i++)
        pods[i] = pod(i, ws);
    plan(g, pods, (size_t)ws, NOW1, p);
    assert_int_equal(p->status.phase, OP_PHASE_READY);
    apply(g, p);
}

static void test_forming(void **state)
{
    (void)state;
    op_group_t g = group(4, OP_POLICY_RESTART);
    op_pod_t pods[2] = {pod(0, 4), pod(1, 4)};
    pods[1].sidecar_ready = 0;
    op_plan_t p;
    plan(&g, pods, 2, NOW1, &p);
    assert_int_equal(p.status.phase, OP_PHASE_FORMING);
    assert_true(p.write_status);
    assert_true(p.create_secret);
    assert_string_equal(p.status.secret_name, "kccl-group-g");
    assert_int_equal(p.status.ready_members, 1);
    const op_cond_t *ready = &p.status.cond[OP_COND_READY];
    assert_int_equal(ready->status, 0);
    assert_string_equal(ready->reason, OP_R_MISSING);
    assert_string_equal(ready->message, "2 of 4 ranks have a live pod");
    assert_int_equal(p.status.cond[OP_COND_BOOTSTRAPPED].status, 0);
    assert_int_equal(p.status.cond[OP_COND_DEGRADED].status, 0); /* not formed: not degraded */
    assert_string_equal(p.status.unique_id, "ID-0");
    assert_string_equal(p.status.root_endpoint, "10.0.0.1:29500");
    assert_string_equal(ready->last_transition, NOW1);
    assert_int_equal(ready->observed_generation, 1);
    assert_false(p.patch_rank0);
    assert_int_equal(p.nevents, 0);
}

static void test_pending_without_pods(void **state)
{
    (void)state;
    op_group_t g = group(2, OP_POLICY_RESTART);
    op_plan_t p;
    plan(&g, NULL, 0, NOW1, &p);
    assert_int_equal(p.status.phase, OP_PHASE_PENDING);
    assert_string_equal(p.status.cond[OP_COND_READY].reason, OP_R_NO_MEMBERS);
}

static void test_ready_then_unchanged(void **state)
{
    (void)state;
    op_group_t g = group(3, OP_POLICY_RESTART);
    snprintf(g.status.secret_name, sizeof(g.status.secret_name), "kccl-group-g");
    op_pod_t pods[3];
    op_plan_t p;
    ready_group(&g, pods, 3, &p);
    assert_false(p.create_secret);
    assert_int_equal(p.status.ready_members, 3);
    assert_int_equal(p.status.cond[OP_COND_READY].status, 1);
    assert_string_equal(p.status.cond[OP_COND_READY].reason, OP_R_READY);
    assert_int_equal(p.status.cond[OP_COND_BOOTSTRAPPED].status, 1);
    assert_int_equal(p.status.cond[OP_COND_DEGRADED].status, 0);
    assert_true(has_event(&p, OP_R_READY));
    /* the same input a minute later: nothing to write, times kept, no Event */
    plan(&g, pods, 3, NOW2, &p);
    assert_false(p.write_status);
    assert_int_equal(p.nevents, 0);
    assert_string_equal(p.status.cond[OP_COND_READY].last_transition, NOW1);
    /* a generation change is written (observedGeneration), the transition time is kept */
    g.generation = 2;
    plan(&g, pods, 3, NOW2, &p);
    assert_true(p.write_status);
    assert_int_equal(p.status.observed_generation, 2);
    assert_int_equal(p.status.cond[OP_COND_READY].observed_generation, 2);
    assert_string_equal(p.status.cond[OP_COND_READY].last_transition, NOW1);
}

static void test_not_running_and_not_bootstrapped(void **state)
{
    (void)state;
    op_group_t g = group(2, OP_POLICY_RESTART);
    op_pod_t pods[2] = {pod(0, 2), pod(1, 2)};
    pods[1].phase = OP_POD_PENDING;
    op_plan_t p;
    plan(&g, pods, 2, NOW1, &p);
    assert_string_equal(p.status.cond[OP_COND_READY].reason, OP_R_NOT_RUNNING);
    pods[1].phase = OP_POD_RUNNING;
    pods[1].sidecar_ready = 0;
    plan(&g, pods, 2, NOW1, &p);
    assert_string_equal(p.status.cond[OP_COND_READY].reason, OP_R_NOT_BOOTED);
    assert_string_equal(p.status.cond[OP_COND_BOOTSTRAPPED].reason, OP_R_SIDECARS_WAIT);
}

static void test_duplicate_rank(void **state)
{
    (void)state;
    op_group_t g = group(2, OP_POLICY_RESTART);
    op_pod_t pods[3] = {pod(0, 2), pod(1, 2), pod(1, 2)};
    snprintf(pods[2].name, sizeof(pods[2].name), "p-1b");
    snprintf(pods[2].uid, sizeof(pods[2].uid), "uid-1b");
    op_plan_t p;
    plan(&g, pods, 3, NOW1, &p);
    assert_int_equal(p.status.phase, OP_PHASE_FORMING);
    assert_string_equal(p.status.cond[OP_COND_READY].reason, OP_R_DUPLICATE);
    assert_non_null(strstr(p.status.cond[OP_COND_READY].message, "rank 1"));
    assert_int_equal(p.status.cond[OP_COND_DEGRADED].status, 1);
    assert_string_equal(p.status.cond[OP_COND_DEGRADED].reason, OP_R_DUPLICATE);
    assert_int_equal(p.status.ready_members, 1); /* rank 1 is not counted twice, nor once */
    assert_true(has_event(&p, OP_R_DUPLICATE));
    /* reported once: the next pass with the same problem posts nothing */
    apply(&g, &p);
    plan(&g, pods, 3, NOW2, &p);
    assert_false(has_event(&p, OP_R_DUPLICATE));
    /* after formation, the same violation is Degraded */
    op_group_t g2 = group(2, OP_POLICY_RESTART);
    op_pod_t ok[2];
    ready_group(&g2, ok, 2, &p);
    plan(&g2, pods, 3, NOW2, &p);
    assert_int_equal(p.status.phase, OP_PHASE_DEGRADED);
}

static void test_rank_out_of_range(void **state)
{
    (void)state;
    op_group_t g = group(2, OP_POLICY_RESTART);
    op_pod_t pods[3] = {pod(0, 2), pod(1, 2), pod(5, 2)};
    op_plan_t p;
    plan(&g, pods, 3, NOW1, &p);
    assert_string_equal(p.status.cond[OP_COND_READY].reason, OP_R_OUT_OF_RANGE);
    assert_non_null(strstr(p.status.cond[OP_COND_READY].message, "p-5"));
    assert_true(has_event(&p, OP_R_OUT_OF_RANGE));
    assert_int_equal(p.status.cond[OP_COND_DEGRADED].status, 1);
    /* a pod with no usable rank */
    pods[2] = pod(1, 2);
    pods[2].rank = OP_RANK_INVALID;
    snprintf(pods[2].name, sizeof(pods[2].name), "p-bad");
    plan(&g, pods, 3, NOW1, &p);
    assert_string_equal(p.status.cond[OP_COND_READY].reason, OP_R_INVALID_RANK);
    assert_non_null(strstr(p.status.cond[OP_COND_READY].message, "p-bad"));
}

static void test_world_size_mismatch(void **state)
{
    (void)state;
    op_group_t g = group(2, OP_POLICY_RESTART);
    op_pod_t pods[2] = {pod(0, 2), pod(1, 3)};
    op_plan_t p;
    plan(&g, pods, 2, NOW1, &p);
    assert_int_equal(p.status.phase, OP_PHASE_FORMING);
    assert_string_equal(p.status.cond[OP_COND_READY].reason, OP_R_WORLD_MISMATCH);
    assert_non_null(strstr(p.status.cond[OP_COND_READY].message, "kccl.io/world-size 3"));
    assert_true(has_event(&p, OP_R_WORLD_MISMATCH));
    /* a pod without kccl.io/world-size does not disagree */
    pods[1] = pod(1, -1);
    plan(&g, pods, 2, NOW1, &p);
    assert_int_equal(p.status.phase, OP_PHASE_READY);
}

static void test_member_failed_restart_once(void **state)
{
    (void)state;
    op_group_t g = group(3, OP_POLICY_RESTART);
    op_pod_t pods[3];
    op_plan_t p;
    ready_group(&g, pods, 3, &p);
    pods[2].failed = 1;
    snprintf(pods[2].why, sizeof(pods[2].why), "container main exited with code 1");
    plan(&g, pods, 3, NOW2, &p);
    assert_int_equal(p.status.epoch, 1);
    assert_int_equal(p.status.phase, OP_PHASE_DEGRADED);
    assert_string_equal(p.status.cond[OP_COND_READY].reason, OP_R_MEMBER_FAILED);
    assert_non_null(strstr(p.status.cond[OP_COND_READY].message, "pod p-2 (rank 2)"));
    assert_string_equal(p.status.cond[OP_COND_READY].last_transition, NOW2);
    assert_true(has_event(&p, OP_R_MEMBER_FAILED));
    assert_int_equal(p.nnew_handled, 1);
    assert_string_equal(p.new_handled[0], "uid-2.0");
    assert_true(p.write_handled);
    assert_string_equal(p.handled_text, "uid-2.0");
    /* rank 0 gets the new epoch; its id for epoch 0 is stale and not mirrored */
    assert_true(p.patch_rank0);
    assert_string_equal(p.rank0_name, "p-0");
    assert_string_equal(p.rank0_uid, "uid-0");
    assert_int_equal(p.rank0_epoch, 1);
    assert_string_equal(p.status.unique_id, "");
    apply(&g, &p);
    /* more events about the same failure: no second bump */
    for (int i = 0; i < 3; i++) {
        plan(&g, pods, 3, NOW2, &p);
        assert_int_equal(p.status.epoch, 1);
        assert_int_equal(p.nnew_handled, 0);
        assert_false(has_event(&p, OP_R_MEMBER_FAILED));
        assert_int_equal(p.status.phase, OP_PHASE_DEGRADED);
        assert_string_equal(p.status.cond[OP_COND_READY].reason, OP_R_MISSING);
        /* Degraded keeps naming the failure while the group recovers */
        assert_string_equal(p.status.cond[OP_COND_DEGRADED].reason, OP_R_MEMBER_FAILED);
        assert_non_null(strstr(p.status.cond[OP_COND_DEGRADED].message, "pod p-2 (rank 2)"));
    }
    /* the same failure known only to this process (not yet on the CommGroup): no bump either */
    g.nhandled = 0;
    const char extra[1][OP_FKEY_MAX] = {"uid-2.0"};
    op_rec_input_t in = {.ns = "ns",
                         .name = "g",
                         .group = &g,
                         .pods = pods,
                         .npods = 3,
                         .extra_handled = extra,
                         .nextra_handled = 1,
                         .now = NOW2};
    op_rec_plan(&in, &p);
    assert_int_equal(p.nnew_handled, 0);
    assert_int_equal(p.status.epoch, 1);
    assert_true(p.write_handled); /* ...and it is written to the annotation */
    assert_string_equal(p.handled_text, "uid-2.0");
    /* the container restarts and fails again before the group re-formed: recorded (its own
     * Event), no second bump */
    snprintf(pods[2].fkey, sizeof(pods[2].fkey), "uid-2.1");
    g.nhandled = 1;
    snprintf(g.handled[0], OP_FKEY_MAX, "uid-2.0");
    plan(&g, pods, 3, NOW2, &p);
    assert_int_equal(p.status.epoch, 1);
    assert_int_equal(p.nnew_handled, 1);
    assert_true(has_event(&p, OP_R_MEMBER_FAILED));
    assert_non_null(strstr(p.events[0].message, "re-forming at epoch 1"));
    apply(&g, &p);
    /* it runs again, rank 0 republishes for epoch 1: Ready at epoch 1 */
    pods[2].failed = 0;
    snprintf(pods[2].fkey, sizeof(pods[2].fkey), "uid-2.2");
    pods[0].epoch = pods[0].id_epoch = 1;
    plan(&g, pods, 3, NOW2, &p);
    assert_int_equal(p.status.phase, OP_PHASE_READY);
    assert_int_equal(p.status.cond[OP_COND_DEGRADED].status, 0);
    apply(&g, &p);
    /* a failure after the group formed at epoch 1: a second bump */
    pods[2].failed = 1;
    plan(&g, pods, 3, NOW2, &p);
    assert_int_equal(p.status.epoch, 2);
    assert_non_null(strstr(p.events[0].message, "a new epoch 2"));
}

static void test_member_failed_fail(void **state)
{
    (void)state;
    op_group_t g = group(2, OP_POLICY_FAIL);
    op_pod_t pods[2];
    op_plan_t p;
    ready_group(&g, pods, 2, &p);
    pods[1].failed = 1;
    pods[1].phase = OP_POD_FAILED;
    snprintf(pods[1].why, sizeof(pods[1].why), "pod phase Failed");
    plan(&g, pods, 2, NOW2, &p);
    assert_int_equal(p.status.phase, OP_PHASE_FAILED);
    assert_int_equal(p.status.epoch, 0);
    assert_false(p.patch_rank0);
    const op_cond_t *r = &p.status.cond[OP_COND_READY];
    assert_int_equal(r->status, 0);
    assert_string_equal(r->reason, OP_R_MEMBER_FAILED);
    assert_non_null(strstr(r->message, "pod p-1 (rank 1)"));
    assert_non_null(strstr(r->message, "failurePolicy Fail"));
    assert_true(has_event(&p, OP_R_MEMBER_FAILED));
    apply(&g, &p);
    /* Failed is final: a replacement does not bring the group back, no new Event */
    pods[1] = pod(1, 2);
    snprintf(pods[1].uid, sizeof(pods[1].uid), "uid-1-new");
    plan(&g, pods, 2, NOW2, &p);
    assert_int_equal(p.status.phase, OP_PHASE_FAILED);
    assert_string_equal(p.status.cond[OP_COND_READY].reason, OP_R_MEMBER_FAILED);
    assert_non_null(strstr(p.status.cond[OP_COND_READY].message, "pod p-1 (rank 1)"));
    assert_int_equal(p.nevents, 0);
}

static void test_replacement(void **state)
{
    (void)state;
    op_group_t g = group(2, OP_POLICY_RESTART);
    op_pod_t pods[3];
    op_plan_t p;
    ready_group(&g, pods, 2, &p);
    /* rank 1 failed and was replaced (a Job keeps the failed pod) before the operator
     * looked: still one failure, one bump */
    pods[1].failed = 1;
    pods[1].phase = OP_POD_FAILED;
    pods[2] = pod(1, 2);
    snprintf(pods[2].uid, sizeof(pods[2].uid), "uid-1-new");
    snprintf(pods[2].name, sizeof(pods[2].name), "p-1-new");
    plan(&g, pods, 3, NOW2, &p);
    assert_int_equal(p.nnew_handled, 1);
    assert_int_equal(p.status.epoch, 1);
    apply(&g, &p);
    plan(&g, pods, 3, NOW2, &p);
    assert_int_equal(p.status.epoch, 1);
    assert_int_equal(p.nnew_handled, 0);
    /* the replacement joins the new epoch; rank 0 republishes for epoch 1: Ready again */
    pods[0].epoch = 1;
    pods[0].id_epoch = 1;
    snprintf(pods[0].unique_id, sizeof(pods[0].unique_id), "ID-1");
    plan(&g, pods, 3, NOW2, &p);
    assert_int_equal(p.status.phase, OP_PHASE_READY);
    assert_string_equal(p.status.unique_id, "ID-1");
    assert_false(p.patch_rank0);
    /* the failed pod's key stays in the annotation while the pod exists */
    assert_string_equal(p.handled_text, "uid-1.0");
}

static void test_deleted_after_formed(void **state)
{
    (void)state;
    op_group_t g = group(2, OP_POLICY_RESTART);
    op_pod_t pods[2];
    op_plan_t p;
    ready_group(&g, pods, 2, &p);
    op_tomb_t t = {.rank = 1, .world_size = 2};
    snprintf(t.name, sizeof(t.name), "p-1");
    snprintf(t.fkey, sizeof(t.fkey), "uid-1.deleted");
    op_rec_input_t in = {.ns = "ns",
                         .name = "g",
                         .group = &g,
                         .pods = pods,
                         .npods = 1,
                         .tombs = &t,
                         .ntombs = 1,
                         .now = NOW2};
    op_rec_plan(&in, &p);
    assert_int_equal(p.status.epoch, 1);
    assert_non_null(strstr(p.status.cond[OP_COND_READY].message, "was deleted"));
    assert_false(p.write_handled); /* a deleted pod's key needs no annotation */
    /* a pod that disagreed on the world size was no member: its deletion is no failure */
    t.world_size = 3;
    op_rec_plan(&in, &p);
    assert_int_equal(p.status.epoch, 0);
    t.world_size = -1;
    op_rec_plan(&in, &p);
    assert_int_equal(p.status.epoch, 1);
    /* a completed member's deletion is no failure; neither is one before formation */
    t.succeeded = 1;
    op_rec_plan(&in, &p);
    assert_int_equal(p.status.epoch, 0);
    t.succeeded = 0;
    op_group_t fresh = group(2, OP_POLICY_RESTART);
    in.group = &fresh;
    op_rec_plan(&in, &p);
    assert_int_equal(p.status.epoch, 0);
    assert_int_equal(p.status.phase, OP_PHASE_FORMING);
}

static void test_auto_create(void **state)
{
    (void)state;
    op_pod_t pods[2] = {pod(0, 4), pod(1, 4)};
    pods[0].world_size = -1;
    op_plan_t p;
    op_rec_input_t in = {.ns = "ns", .name = "g", .pods = pods, .npods = 2, .now = NOW1};
    op_rec_plan(&in, &p);
    assert_true(p.create_group);
    assert_int_equal(p.create_world_size, 4);
    assert_false(p.write_status);
    /* no pod says a world size: nothing to create from */
    pods[1].world_size = -1;
    op_rec_plan(&in, &p);
    assert_false(p.create_group);
    assert_true(p.idle);
    /* a CommGroup being deleted is left alone */
    op_group_t g = group(2, OP_POLICY_RESTART);
    g.deleting = 1;
    plan(&g, pods, 2, NOW1, &p);
    assert_true(p.idle);
    assert_false(p.write_status);
}

/* Copies the group as a restarted operator reads it back: status and annotation through JSON,
 * nothing in memory. */
static op_group_t reread(const op_group_t *g, const op_plan_t *p)
{
    cJSON *wrap = cJSON_CreateObject();
    cJSON_AddItemToObject(wrap, "status", op_model_status_to_json(&p->status));
    cJSON *meta = cJSON_AddObjectToObject(wrap, "metadata");
    cJSON_AddStringToObject(meta, "name", g->name);
    cJSON_AddStringToObject(meta, "namespace", g->ns);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(meta, "annotations"), OP_ANN_HANDLED,
                            p->handled_text);
    cJSON *spec = cJSON_AddObjectToObject(wrap, "spec");
    cJSON_AddNumberToObject(spec, "worldSize", g->world_size);
    op_group_t back;
    assert_int_equal(op_model_group_from_json(wrap, &back), KCCL_OK);
    cJSON_Delete(wrap);
    return back;
}

/* A member whose container crashed and was restarted in place (lastState.terminated non-zero,
 * running again): a failure, acted on once per crash; the pod stays a member, so the group
 * becomes Ready again at the new epoch. */
static void test_restarted_in_place(void **state)
{
    (void)state;
    op_group_t g = group(3, OP_POLICY_RESTART);
    op_pod_t pods[3];
    op_plan_t p;
    ready_group(&g, pods, 3, &p);
    pods[1].crashed = 1; /* Running, sidecar ready: only lastState tells */
    snprintf(pods[1].why, sizeof(pods[1].why),
             "container main exited with code 1 and was "
             "restarted in place");
    plan(&g, pods, 3, NOW2, &p);
    assert_int_equal(p.status.epoch, 1);
    assert_int_equal(p.status.phase, OP_PHASE_DEGRADED);
    assert_string_equal(p.status.cond[OP_COND_READY].reason, OP_R_MEMBER_FAILED);
    assert_non_null(strstr(p.status.cond[OP_COND_READY].message, "pod p-1 (rank 1)"));
    assert_non_null(strstr(p.status.cond[OP_COND_READY].message, "restarted in place"));
    assert_true(has_event(&p, OP_R_MEMBER_FAILED));
    assert_true(p.patch_rank0);
    assert_int_equal(p.rank0_epoch, 1);
    assert_int_equal(p.nnew_handled, 1);
    assert_string_equal(p.new_handled[0], "uid-1.0");
    assert_string_equal(p.handled_text, "uid-1.0"); /* the crashed pod exists: kept */
    assert_int_equal(p.status.ready_members, 3);    /* still a member */
    apply(&g, &p);
    /* the same crash seen again (lastState stays): nothing new */
    plan(&g, pods, 3, NOW2, &p);
    assert_int_equal(p.nnew_handled, 0);
    assert_int_equal(p.status.epoch, 1);
    assert_false(has_event(&p, OP_R_MEMBER_FAILED));
    /* Ready needs rank 0's id for epoch 1 */
    assert_int_equal(p.status.phase, OP_PHASE_DEGRADED);
    assert_string_equal(p.status.cond[OP_COND_READY].reason, OP_R_NOT_BOOTED);
    assert_non_null(strstr(p.status.cond[OP_COND_READY].message, "epoch 1"));
    assert_string_equal(p.status.cond[OP_COND_DEGRADED].reason, OP_R_MEMBER_FAILED);
    /* rank 0 republishes: Ready again although pod p-1 still shows its crash */
    pods[0].epoch = pods[0].id_epoch = 1;
    plan(&g, pods, 3, NOW2, &p);
    assert_int_equal(p.status.phase, OP_PHASE_READY);
    assert_int_equal(p.status.epoch, 1);
    assert_int_equal(p.status.cond[OP_COND_DEGRADED].status, 0);
    assert_true(has_event(&p, OP_R_READY));
    apply(&g, &p);
    /* a second crash of the same container (restartCount moved): a new failure, epoch 2 */
    snprintf(pods[1].fkey, sizeof(pods[1].fkey), "uid-1.1");
    plan(&g, pods, 3, NOW2, &p);
    assert_int_equal(p.status.epoch, 2);
    assert_int_equal(p.nnew_handled, 1);
    assert_string_equal(p.handled_text, "uid-1.1"); /* uid-1.0 is no longer shown */
}

/* One incident: a member is deleted, the others' applications then exit ("lost rank"): one
 * bump. Failures while the group re-forms are recorded without a bump, also after an operator
 * restart; once the group formed at the new epoch, a failure bumps again. */
static void test_one_incident_one_bump(void **state)
{
    (void)state;
    op_group_t g = group(4, OP_POLICY_RESTART);
    snprintf(g.status.secret_name, sizeof(g.status.secret_name), "kccl-group-g");
    op_pod_t pods[4];
    op_plan_t p;
    ready_group(&g, pods, 4, &p);
    op_tomb_t t = {.rank = 2, .world_size = 4};
    snprintf(t.name, sizeof(t.name), "p-2");
    snprintf(t.fkey, sizeof(t.fkey), "uid-2.deleted");
    op_pod_t left[3] = {pods[0], pods[1], pods[3]};
    op_rec_input_t in = {.ns = "ns",
                         .name = "g",
                         .group = &g,
                         .pods = left,
                         .npods = 3,
                         .tombs = &t,
                         .ntombs = 1,
                         .now = NOW2};
    op_rec_plan(&in, &p);
    assert_int_equal(p.status.epoch, 1);
    apply(&g, &p);
    /* ranks 1 and 3 exit non-zero ("lost rank 2") and are restarted in place: recorded,
     * one Event, no bump */
    left[1].crashed = left[2].crashed = 1;
    snprintf(left[1].why, sizeof(left[1].why), "container main exited with code 1");
    snprintf(left[2].why, sizeof(left[2].why), "container main exited with code 1");
    plan(&g, left, 3, NOW2, &p);
    assert_int_equal(p.status.epoch, 1);
    assert_int_equal(p.nnew_handled, 2);
    assert_false(p.patch_rank0 && p.rank0_epoch != 1);
    assert_int_equal(p.nevents, 1);
    assert_string_equal(p.events[0].reason, OP_R_MEMBER_FAILED);
    assert_non_null(strstr(p.events[0].message, "(and 1 more)"));
    assert_non_null(strstr(p.events[0].message, "re-forming at epoch 1"));
    assert_int_equal(p.status.cond[OP_COND_DEGRADED].status, 1);
    assert_string_equal(p.status.cond[OP_COND_DEGRADED].reason, OP_R_MEMBER_FAILED);
    assert_string_equal(p.handled_text, "uid-1.0 uid-3.0");
    apply(&g, &p);
    /* the operator restarts: it knows only the CommGroup (status + annotation) */
    op_group_t g2 = reread(&g, &p);
    assert_int_equal(g2.status.epoch, 1);
    assert_int_equal(g2.nhandled, 2);
    plan(&g2, left, 3, NOW2, &p);
    assert_int_equal(p.nnew_handled, 0);
    assert_int_equal(p.status.epoch, 1);
    /* rank 1 crashes again while the group re-forms, seen by the new operator: no bump */
    snprintf(left[1].fkey, sizeof(left[1].fkey), "uid-1.1");
    plan(&g2, left, 3, NOW2, &p);
    assert_int_equal(p.nnew_handled, 1);
    assert_int_equal(p.status.epoch, 1);
    /* a violation while re-forming does not end the re-forming */
    g2 = reread(&g2, &p);
    op_pod_t dup[4] = {left[0], left[1], left[2], left[2]};
    snprintf(dup[3].name, sizeof(dup[3].name), "p-3b");
    snprintf(dup[3].uid, sizeof(dup[3].uid), "uid-3b");
    dup[3].crashed = 0;
    plan(&g2, dup, 4, NOW2, &p);
    assert_string_equal(p.status.cond[OP_COND_READY].reason, OP_R_DUPLICATE);
    assert_true(has_event(&p, OP_R_DUPLICATE));
    assert_string_equal(p.status.cond[OP_COND_DEGRADED].reason, OP_R_MEMBER_FAILED);
    g2 = reread(&g2, &p);
    /* the replacement of rank 2 runs, rank 0 republishes for epoch 1: formed at epoch 1 */
    op_pod_t all[4] = {left[0], left[1], pod(2, 4), left[2]};
    snprintf(all[2].uid, sizeof(all[2].uid), "uid-2b");
    all[0].epoch = all[0].id_epoch = 1;
    plan(&g2, all, 4, NOW2, &p);
    assert_int_equal(p.status.phase, OP_PHASE_READY);
    g2 = reread(&g2, &p);
    /* a new incident: one bump, to 2 */
    all[3].failed = 1;
    snprintf(all[3].fkey, sizeof(all[3].fkey), "uid-3.1");
    plan(&g2, all, 4, NOW2, &p);
    assert_int_equal(p.status.epoch, 2);
    /* before any bump, failures bump even if the group never formed */
    op_group_t fresh = group(2, OP_POLICY_RESTART);
    op_pod_t two[2] = {pod(0, 2), pod(1, 2)};
    two[1].sidecar_ready = 0;
    two[1].failed = 1;
    plan(&fresh, two, 2, NOW1, &p);
    assert_int_equal(p.status.epoch, 1);
    apply(&fresh, &p);
    /* ...but not again while it forms at epoch 1 */
    snprintf(two[1].fkey, sizeof(two[1].fkey), "uid-1.1");
    plan(&fresh, two, 2, NOW1, &p);
    assert_int_equal(p.status.epoch, 1);
    assert_int_equal(p.nnew_handled, 1);
}

/* Every rank's pod completed (a finished Job): Succeeded, not Degraded. */
static void test_completed(void **state)
{
    (void)state;
    op_group_t g = group(3, OP_POLICY_RESTART);
    op_pod_t pods[4];
    op_plan_t p;
    ready_group(&g, pods, 3, &p);
    for (int i = 0; i < 3; i++) {
        pods[i].phase = OP_POD_SUCCEEDED;
        pods[i].sidecar_ready = 0;
    }
    /* two of three done: not yet complete */
    pods[2].phase = OP_POD_RUNNING;
    plan(&g, pods, 3, NOW2, &p);
    assert_int_not_equal(p.status.phase, OP_PHASE_SUCCEEDED);
    pods[2].phase = OP_POD_SUCCEEDED;
    /* rank 1 also has an earlier failed pod the operator never saw: recorded, not acted on */
    pods[3] = pod(1, 3);
    snprintf(pods[3].uid, sizeof(pods[3].uid), "uid-1-old");
    snprintf(pods[3].fkey, sizeof(pods[3].fkey), "uid-1-old.0");
    pods[3].phase = OP_POD_FAILED;
    pods[3].failed = 1;
    plan(&g, pods, 4, NOW2, &p);
    assert_int_equal(p.status.phase, OP_PHASE_SUCCEEDED);
    assert_int_equal(p.status.epoch, 0);
    assert_false(p.patch_rank0);
    assert_int_equal(p.nnew_handled, 1);
    const op_cond_t *ready = &p.status.cond[OP_COND_READY];
    assert_int_equal(ready->status, 0);
    assert_string_equal(ready->reason, OP_R_COMPLETED);
    assert_string_equal(ready->message, "all 3 ranks completed");
    assert_int_equal(p.status.cond[OP_COND_DEGRADED].status, 0);
    assert_string_equal(p.status.cond[OP_COND_DEGRADED].reason, OP_R_AS_EXPECTED);
    assert_int_equal(p.status.ready_members, 0);
    assert_int_equal(p.nevents, 1);
    assert_true(has_event(&p, OP_R_COMPLETED));
    assert_false(p.events[0].warning);
    assert_true(p.write_status);
    apply(&g, &p);
    /* nothing new: nothing to write, no second Event */
    plan(&g, pods, 4, NOW2, &p);
    assert_false(p.write_status);
    assert_int_equal(p.nevents, 0);
    /* the pods are deleted afterwards (Job TTL): still Succeeded, no failure */
    op_tomb_t t = {.rank = 0, .world_size = 3, .succeeded = 1};
    snprintf(t.name, sizeof(t.name), "p-0");
    snprintf(t.fkey, sizeof(t.fkey), "uid-0.deleted");
    op_rec_input_t in = {
        .ns = "ns", .name = "g", .group = &g, .tombs = &t, .ntombs = 1, .now = NOW2};
    op_rec_plan(&in, &p);
    assert_int_equal(p.status.phase, OP_PHASE_SUCCEEDED);
    assert_int_equal(p.status.epoch, 0);
    assert_int_equal(p.nevents, 0);
    /* a new run of the group: it forms again */
    op_pod_t again[1] = {pod(0, 3)};
    plan(&g, again, 1, NOW2, &p);
    assert_int_equal(p.status.phase, OP_PHASE_FORMING);
    assert_int_equal(p.status.cond[OP_COND_DEGRADED].status, 0);
    /* with failurePolicy Fail a completed group is Succeeded too */
    op_group_t f = group(2, OP_POLICY_FAIL);
    op_pod_t done[2] = {pod(0, 2), pod(1, 2)};
    done[0].phase = done[1].phase = OP_POD_SUCCEEDED;
    plan(&f, done, 2, NOW1, &p);
    assert_int_equal(p.status.phase, OP_PHASE_SUCCEEDED);
}

static void test_rank0_epoch_patch(void **state)
{
    (void)state;
    op_group_t g = group(2, OP_POLICY_RESTART);
    g.status.epoch = 3;
    op_pod_t pods[2] = {pod(0, 2), pod(1, 2)};
    op_plan_t p;
    plan(&g, pods, 2, NOW1, &p);
    assert_true(p.patch_rank0); /* a new rank-0 pod learns the current epoch */
    assert_int_equal(p.rank0_epoch, 3);
    assert_string_equal(p.status.unique_id, ""); /* its id is for epoch 0 */
    /* not Ready before rank 0 published an id for epoch 3 (no member can have it) */
    assert_int_equal(p.status.phase, OP_PHASE_FORMING);
    assert_string_equal(p.status.cond[OP_COND_READY].reason, OP_R_NOT_BOOTED);
    assert_string_equal(p.status.cond[OP_COND_READY].message,
                        "rank 0 (pod p-0) has not published a unique id for epoch 3 yet");
    pods[0].epoch = 3;
    pods[0].id_epoch = 3;
    plan(&g, pods, 2, NOW1, &p);
    assert_false(p.patch_rank0);
    assert_string_equal(p.status.unique_id, "ID-0");
    assert_int_equal(p.status.phase, OP_PHASE_READY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forming),
        cmocka_unit_test(test_pending_without_pods),
        cmocka_unit_test(test_ready_then_unchanged),
        cmocka_unit_test(test_not_running_and_not_bootstrapped),
        cmocka_unit_test(test_duplicate_rank),
        cmocka_unit_test(test_rank_out_of_range),
        cmocka_unit_test(test_world_size_mismatch),
        cmocka_unit_test(test_member_failed_restart_once),
        cmocka_unit_test(test_member_failed_fail),
        cmocka_unit_test(test_replacement),
        cmocka_unit_test(test_deleted_after_formed),
        cmocka_unit_test(test_auto_create),
        cmocka_unit_test(test_restarted_in_place),
        cmocka_unit_test(test_one_incident_one_bump),
        cmocka_unit_test(test_completed),
        cmocka_unit_test(test_rank0_epoch_patch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
