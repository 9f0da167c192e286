/*
 * test_op_reconcile_cache.c - the reconciler and the cache together, as
 * op_ctrl.c runs them (snapshot, plan, the CommGroup written back, consumed):
 * a 100-rank group whose members all crash in place at once, more failures
 * than the CommGroup's annotation and the cache's list remember (32 keys
 * each). Each crash is recorded once, the epoch moves once, the passes
 * converge, and the group stays Ready at the new epoch, also for a restarted
 * operator.
 */
#include "kccl_test.h"
#include "op_cache.h"
#include "op_reconcile.h"

#define NOW1 "2026-01-01T00:00:00Z"
#define NOW2 "2026-01-01T00:01:00Z"

#define BIG 100

static void no_touch(void *arg, const char *key)
{
    (void)arg;
    (void)key;
}

#define CRASH1 "2026-01-01T00:00:30Z" /* between NOW1 and NOW2 */
#define CRASH2 "2026-01-01T00:02:00Z" /* after NOW2 */

/* Rank r's pod; restarts > 0: its container crashed (exit 1, at CRASH1, or CRASH2 after two
 * restarts) and runs again; rank 0 publishes its id for id_epoch and carries kccl.io/epoch. */
static void big_pod(op_cache_t c, int r, int restarts, int epoch, int id_epoch)
{
    char text[2048], ann[512] = "", last[96] = "{}";
    if (r == 0)
        snprintf(ann, sizeof(ann),
                 ",\"kccl.io/epoch\":\"%d\",\"kccl.io/unique-id\":\"ID-%d\","
                 "\"kccl.io/unique-id-epoch\":\"%d\",\"kccl.io/endpoint\":\"10.0.0.1:29500\"",
                 epoch, id_epoch, id_epoch);
    if (restarts > 0)
        snprintf(last, sizeof(last), "{\"terminated\":{\"exitCode\":1,\"finishedAt\":\"%s\"}}",
                 restarts > 1 ? CRASH2 : CRASH1);
    snprintf(text, sizeof(text),
             "{\"metadata\":{\"name\":\"b-%d\",\"namespace\":\"ns\",\"uid\":\"ub-%d\","
             "\"labels\":{\"kccl.io/group\":\"big\",\"kccl.io/rank\":\"%d\"},"
             "\"annotations\":{\"kccl.io/world-size\":\"%d\"%s}},"
             "\"status\":{\"phase\":\"Running\",\"initContainerStatuses\":[{\"name\":"
             "\"kccl-sidecar\",\"ready\":true}],\"containerStatuses\":[{\"name\":\"main\","
             "\"restartCount\":%d,\"state\":{\"running\":{}},\"lastState\":%s}]}}",
             r, r, r, BIG, ann, restarts, last);
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    op_cache_pod_event(c, KCCL_KUBE_EVENT_MODIFIED, j, no_touch, NULL);
    cJSON_Delete(j);
}

/* The CommGroup as the apiserver has it after the plan's writes (status, annotation). */
static void big_write_back(op_cache_t c, const op_group_t *g, const op_plan_t *p)
{
    char old[OP_HANDLED_MAX * OP_FKEY_MAX] = "";
    size_t n = 0;
    for (int i = 0; i < g->nhandled; i++)
        n += (size_t)snprintf(old + n, sizeof(old) - n, "%s%s", n ? " " : "", g->handled[i]);
    cJSON *cg = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(cg, "metadata");
    cJSON_AddStringToObject(meta, "name", "big");
    cJSON_AddStringToObject(meta, "namespace", "ns");
    cJSON_AddStringToObject(meta, "uid", "cg-big");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(meta, "annotations"), OP_ANN_HANDLED,
                            p->write_handled ? p->handled_text : old);
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(cg, "spec"), "worldSize", BIG);
    cJSON_AddItemToObject(cg, "status", op_model_status_to_json(&p->status));
    op_cache_group_event(c, KCCL_KUBE_EVENT_MODIFIED, cg, no_touch, NULL);
    cJSON_Delete(cg);
}

/* One reconcile as op_ctrl.c does it; returns the failures recorded in it. */
static int big_pass(op_cache_t c, op_plan_t *p, const char *now)
{
    op_snapshot_t s;
    assert_int_equal(op_cache_snapshot(c, "ns/big", &s), KCCL_OK);
    op_rec_input_t in = {.ns = "ns",
                         .name = "big",
                         .group = &s.group,
                         .pods = s.pods,
                         .npods = s.npods,
                         .tombs = s.tombs,
                         .ntombs = s.ntombs,
                         .extra_handled = (const char(*)[OP_FKEY_MAX])s.extra,
                         .nextra_handled = s.nextra,
                         .now = now};
    op_rec_plan(&in, p);
    big_write_back(c, &s.group, p);
    op_cache_consumed(c, "ns/big", s.ntombs, (const char(*)[OP_FKEY_MAX])p->new_handled,
                      (size_t)p->nnew_handled);
    op_snapshot_free(&s);
    return p->nnew_handled;
}

/* Every member of a 100-rank group crashes in place at once (one incident): each crash is
 * recorded once although the CommGroup's list and the in-memory list hold 32 keys, the epoch
 * moves once, the passes converge, and the group stays Ready at epoch 1 afterwards - also for
 * a restarted operator, which remembers 32 of the 100 keys (the crashes ended before the group
 * became Ready again: history). */
static void test_many_crashes_in_place(void **state)
{
    (void)state;
    op_cache_t c;
    assert_int_equal(op_cache_create(&c), KCCL_OK);
    op_plan_t *p = malloc(sizeof(*p));
    assert_non_null(p);
    cJSON *cg = cJSON_Parse("{\"metadata\":{\"name\":\"big\",\"namespace\":\"ns\",\"uid\":"
                            "\"cg-big\"},\"spec\":{\"worldSize\":100},\"status\":{\"secretName\":"
                            "\"kccl-group-big\"}}");
    op_cache_group_event(c, KCCL_KUBE_EVENT_ADDED, cg, no_touch, NULL);
    cJSON_Delete(cg);
    for (int r = 0; r < BIG; r++)
        big_pod(c, r, 0, 0, 0);
    big_pass(c, p, NOW1);
    assert_int_equal(p->status.phase, OP_PHASE_READY);
    for (int r = 0; r < BIG; r++)
        big_pod(c, r, 1, 0, 0);
    int total = 0, passes = 0, bumps = 0;
    for (int quiet = 0; quiet < 3 && passes < 20; passes++) {
        int n = big_pass(c, p, NOW2);
        total += n;
        quiet = n == 0 ? quiet + 1 : 0;
        for (int i = 0; i < p->nevents; i++)
            bumps += strstr(p->events[i].message, "a new epoch") != NULL;
    }
    assert_true(passes < 10);
    assert_int_equal(total, BIG); /* each crash once */
    assert_int_equal(bumps, 1);
    assert_int_equal(p->status.epoch, 1);
    assert_int_equal(p->status.phase, OP_PHASE_DEGRADED);
    /* rank 0 takes epoch 1 and republishes: Ready at epoch 1, and it stays so */
    big_pod(c, 0, 1, 1, 1);
    big_pass(c, p, NOW2);
    assert_int_equal(p->status.phase, OP_PHASE_READY);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(big_pass(c, p, NOW2), 0);
        assert_int_equal(p->status.epoch, 1);
        assert_int_equal(p->status.phase, OP_PHASE_READY);
        assert_false(p->write_status);
    }
    /* the operator restarts: a new cache from the CommGroup as written and the pods */
    op_snapshot_t s;
    assert_int_equal(op_cache_snapshot(c, "ns/big", &s), KCCL_OK);
    assert_int_equal(s.group.nhandled, OP_HANDLED_MAX); /* 32 of the 100 keys */
    op_cache_t c2;
    assert_int_equal(op_cache_create(&c2), KCCL_OK);
    big_write_back(c2, &s.group, p);
    op_snapshot_free(&s);
    for (int r = 0; r < BIG; r++)
        big_pod(c2, r, 1, r == 0, r == 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(big_pass(c2, p, NOW2), 0);
        assert_int_equal(p->status.epoch, 1);
        assert_int_equal(p->status.phase, OP_PHASE_READY);
    }
    /* a new crash of one member (it ended after the group became Ready): a new incident */
    big_pod(c2, 7, 2, 0, 0);
    assert_int_equal(big_pass(c2, p, NOW2), 1);
    assert_int_equal(p->status.epoch, 2);
    free(p);
    op_cache_destroy(c);
    op_cache_destroy(c2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_crashes_in_place),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
