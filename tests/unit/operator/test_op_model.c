/*
 * test_op_model.c - operator/op_model.c (pod and CommGroup parsing, the
 * status object), operator/op_cache.c (events, group index, tombstones,
 * relist sweep, snapshots) and operator/op_config.c (flags over environment).
 */
#include "kccl_test.h"
#include "op_cache.h"
#include "op_config.h"
#include "op_model.h"

static cJSON *parse(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (j == NULL)
        fail_msg("bad JSON in the test: %s", text);
    return j;
}

static cJSON *pod_json(const char *name, const char *group, const char *rank, const char *extra)
{
    char text[4096];
    snprintf(text, sizeof(text),
             "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"ns\",\"uid\":\"u-%s\","
             "\"labels\":{\"kccl.io/group\":\"%s\",\"kccl.io/rank\":\"%s\"},"
             "\"annotations\":{\"kccl.io/world-size\":\"4\"}},"
             "\"status\":{\"phase\":\"Running\"%s}}",
             name, name, group, rank, extra ? extra : "");
    return parse(text);
}

static void test_pod_parse(void **state)
{
    (void)state;
    op_pod_t p;
    cJSON *j = parse(
        "{\"metadata\":{\"name\":\"w-0\",\"namespace\":\"ns\",\"uid\":\"U\","
        "\"labels\":{\"kccl.io/group\":\"g\",\"kccl.io/rank\":\"0\"},"
        "\"annotations\":{\"kccl.io/world-size\":\"8\",\"kccl.io/epoch\":\"2\","
        "\"kccl.io/unique-id\":\"ID\",\"kccl.io/unique-id-epoch\":\"2\","
        "\"kccl.io/endpoint\":\"10.1.2.3:29500\"}},"
        "\"status\":{\"phase\":\"Running\",\"initContainerStatuses\":[{\"name\":\"kccl-sidecar\","
        "\"ready\":true}],\"containerStatuses\":[{\"name\":\"main\",\"restartCount\":2,"
        "\"state\":{\"running\":{}}}]}}");
    assert_int_equal(op_model_pod_from_json(j, &p), KCCL_OK);
    assert_string_equal(p.name, "w-0");
    assert_string_equal(p.group, "g");
    assert_int_equal(p.rank, 0);
    assert_int_equal(p.world_size, 8);
    assert_int_equal(p.phase, OP_POD_RUNNING);
    assert_true(p.sidecar_ready);
    assert_false(p.failed);
    assert_int_equal(p.epoch, 2);
    assert_int_equal(p.id_epoch, 2);
    assert_string_equal(p.unique_id, "ID");
    assert_string_equal(p.endpoint, "10.1.2.3:29500");
    assert_string_equal(p.fkey, "U.2");
    cJSON_Delete(j);
    /* a container that exited non-zero; rank from the Indexed Job annotation; bad world size */
    j = parse("{\"metadata\":{\"name\":\"w-1\",\"namespace\":\"ns\",\"uid\":\"V\","
              "\"annotations\":{\"kccl.io/group\":\"g\",\"kccl.io/world-size\":\"zero\","
              "\"batch.kubernetes.io/job-completion-index\":\"3\"}},"
              "\"status\":{\"phase\":\"Running\",\"containerStatuses\":[{\"name\":\"app\","
              "\"state\":{\"terminated\":{\"exitCode\":137}}}]}}");
    assert_int_equal(op_model_pod_from_json(j, &p), KCCL_OK);
    assert_int_equal(p.rank, 3);
    assert_int_equal(p.world_size, -2);
    assert_true(p.failed);
    assert_string_equal(p.why, "container app exited with code 137");
    assert_false(p.sidecar_ready);
    assert_int_equal(p.id_epoch, -1);
    cJSON_Delete(j);
    /* phase Failed; a rank that is not a number; deletion in progress */
    j = parse("{\"metadata\":{\"name\":\"w-2\",\"namespace\":\"ns\",\"deletionTimestamp\":\"x\","
              "\"labels\":{\"kccl.io/group\":\"g\",\"kccl.io/rank\":\"-1\"}},"
              "\"status\":{\"phase\":\"Failed\",\"reason\":\"Evicted\"}}");
    assert_int_equal(op_model_pod_from_json(j, &p), KCCL_OK);
    assert_int_equal(p.rank, OP_RANK_INVALID);
    assert_true(p.failed);
    assert_true(p.deleting);
    assert_string_equal(p.why, "pod phase Failed: Evicted");
    cJSON_Delete(j);
    /* no group: not a member */
    j = parse("{\"metadata\":{\"name\":\"x\",\"namespace\":\"ns\"}}");
    assert_int_equal(op_model_pod_from_json(j, &p), KCCL_ERR_INVALID_ARG);
    cJSON_Delete(j);
}

/* A pod of one app container "main" with that restartCount, state and lastState (JSON). */
static void parse_restarted(op_pod_t *p, const char *phase, int restarts, const char *state,
                            const char *last)
{
    char text[1024];
    snprintf(text, sizeof(text),
             "{\"metadata\":{\"name\":\"w-3\",\"namespace\":\"ns\",\"uid\":\"W\","
             "\"labels\":{\"kccl.io/group\":\"g\",\"kccl.io/rank\":\"1\"}},"
             "\"status\":{\"phase\":\"%s\",\"containerStatuses\":[{\"name\":\"main\","
             "\"restartCount\":%d,\"state\":%s,\"lastState\":%s}]}}",
             phase, restarts, state, last);
    cJSON *j = parse(text);
    assert_int_equal(op_model_pod_from_json(j, p), KCCL_OK);
    cJSON_Delete(j);
}

/* A crash the kubelet restarts in place: a failure event (crashed, one key per crash whether
 * the terminated state, the wait for the restart or the restarted run is seen), the pod stays
 * a member (not failed). */
static void test_pod_restarted_in_place(void **state)
{
    (void)state;
    op_pod_t p;
    const char *crash1 = "{\"terminated\":{\"exitCode\":3}}";
    const char *run = "{\"running\":{}}", *wait = "{\"waiting\":{\"reason\":\"CrashLoopBackOff\"}}";
    /* the run that exited 3, still the current state (seen briefly, if at all) */
    parse_restarted(&p, "Running", 0, crash1, "{}");
    assert_true(p.failed);
    assert_false(p.crashed);
    assert_string_equal(p.fkey, "W.0");
    /* waiting for its restart: the exit moved to lastState, restartCount not yet bumped */
    parse_restarted(&p, "Running", 0, wait, crash1);
    assert_false(p.failed);
    assert_true(p.crashed);
    assert_string_equal(p.fkey, "W.0");
    /* running again after the restart: the same crash, the same key */
    parse_restarted(&p, "Running", 1, run, crash1);
    assert_false(p.failed);
    assert_true(p.crashed);
    assert_string_equal(p.fkey, "W.0");
    assert_string_equal(p.why, "container main exited with code 3 and was restarted in place");
    /* it crashes again and runs again: a new key */
    parse_restarted(&p, "Running", 2, run, crash1);
    assert_true(p.crashed);
    assert_string_equal(p.fkey, "W.1");
    /* a last run that exited 0 (restartPolicy Always) is no crash */
    parse_restarted(&p, "Running", 1, run, "{\"terminated\":{\"exitCode\":0}}");
    assert_false(p.crashed);
    assert_false(p.failed);
    assert_string_equal(p.fkey, "W.1");
    /* a pod that completed after a crash: the crash is history */
    parse_restarted(&p, "Succeeded", 1, "{\"terminated\":{\"exitCode\":0}}", crash1);
    assert_false(p.crashed);
    assert_false(p.failed);
    /* a current non-zero exit wins over an older crash */
    parse_restarted(&p, "Running", 1, "{\"terminated\":{\"exitCode\":9}}", crash1);
    assert_true(p.failed);
    assert_false(p.crashed);
    assert_string_equal(p.fkey, "W.1");
    assert_string_equal(p.why, "container main exited with code 9");
    /* when the crash ended (the kubelet's finishedAt) is kept */
    parse_restarted(&p, "Running", 1, run,
                    "{\"terminated\":{\"exitCode\":1,\"finishedAt\":\"2026-01-01T00:00:30Z\"}}");
    assert_true(p.crashed);
    assert_string_equal(p.crash_at, "2026-01-01T00:00:30Z");
    parse_restarted(&p, "Running", 1, run, crash1);
    assert_string_equal(p.crash_at, "");
    /* the records differ, so the cache reports the change */
    op_pod_t q;
    parse_restarted(&q, "Running", 1, run, "{}");
    parse_restarted(&p, "Running", 1, run, crash1);
    assert_false(op_model_pod_equal(&p, &q));
}

static void test_group_parse_and_status(void **state)
{
    (void)state;
    op_group_t g;
    cJSON *j = parse(
        "{\"metadata\":{\"name\":\"g\",\"namespace\":\"ns\",\"uid\":\"CG\",\"generation\":3,"
        "\"resourceVersion\":\"77\",\"annotations\":{\"kccl.io/handled-failures\":\"a.0 b.1\"}},"
        "\"spec\":{\"worldSize\":4,\"failurePolicy\":\"Fail\"},"
        "\"status\":{\"phase\":\"Ready\",\"epoch\":5,\"readyMembers\":4,\"secretName\":\"s\","
        "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"GroupReady\","
        "\"message\":\"m\",\"lastTransitionTime\":\"T\",\"observedGeneration\":3}]}}");
    assert_int_equal(op_model_group_from_json(j, &g), KCCL_OK);
    cJSON_Delete(j);
    assert_int_equal(g.world_size, 4);
    assert_int_equal(g.port, 29500); /* the CRD's defaults when absent */
    assert_int_equal(g.timeout_s, 300);
    assert_int_equal(g.policy, OP_POLICY_FAIL);
    assert_int_equal(g.generation, 3);
    assert_string_equal(g.resource_version, "77");
    assert_int_equal(g.status.phase, OP_PHASE_READY);
    assert_int_equal(g.status.epoch, 5);
    assert_int_equal(g.status.cond[OP_COND_READY].status, 1);
    assert_string_equal(g.status.cond[OP_COND_READY].last_transition, "T");
    assert_false(g.status.cond[OP_COND_DEGRADED].present);
    assert_int_equal(g.nhandled, 2);
    assert_string_equal(g.handled[1], "b.1");
    /* status -> JSON -> status is the identity */
    cJSON *s = op_model_status_to_json(&g.status);
    cJSON *wrap = cJSON_CreateObject();
    cJSON_AddItemToObject(wrap, "status", s);
    cJSON *meta = cJSON_AddObjectToObject(wrap, "metadata");
    cJSON_AddStringToObject(meta, "name", "g");
    cJSON_AddStringToObject(meta, "namespace", "ns");
    op_group_t back;
    assert_int_equal(op_model_group_from_json(wrap, &back), KCCL_OK);
    assert_true(op_model_status_equal(&back.status, &g.status));
    back.status.cond[OP_COND_READY].status = 0;
    assert_false(op_model_status_equal(&back.status, &g.status));
    cJSON_Delete(wrap);
    /* every phase survives the round trip, Succeeded included */
    for (int ph = OP_PHASE_PENDING; ph <= OP_PHASE_SUCCEEDED; ph++) {
        g.status.phase = (op_phase_t)ph;
        s = op_model_status_to_json(&g.status);
        assert_non_null(s);
        wrap = cJSON_CreateObject();
        cJSON_AddItemToObject(wrap, "status", s);
        meta = cJSON_AddObjectToObject(wrap, "metadata");
        cJSON_AddStringToObject(meta, "name", "g");
        cJSON_AddStringToObject(meta, "namespace", "ns");
        assert_int_equal(op_model_group_from_json(wrap, &back), KCCL_OK);
        assert_int_equal(back.status.phase, ph);
        cJSON_Delete(wrap);
    }
    assert_string_equal(op_phase_str(OP_PHASE_SUCCEEDED), "Succeeded");
}

typedef struct {
    int n;
    char last[OP_QUEUE_KEY_MAX];
} touched_t;

static void touch(void *arg, const char *key)
{
    touched_t *t = arg;
    t->n++;
    snprintf(t->last, sizeof(t->last), "%s", key);
}

static void test_cache(void **state)
{
    (void)state;
    op_cache_t c;
    assert_int_equal(op_cache_create(&c), KCCL_OK);
    touched_t t = {0};
    for (int i = 0; i < 300; i++) { /* enough to grow the tables */
        char name[32], rank[16];
        snprintf(name, sizeof(name), "p-%d", i);
        snprintf(rank, sizeof(rank), "%d", i);
        cJSON *j = pod_json(name, i < 200 ? "a" : "b", rank, NULL);
        op_cache_pod_event(c, KCCL_KUBE_EVENT_ADDED, j, touch, &t);
        cJSON_Delete(j);
    }
    assert_int_equal(t.n, 300); /* one touch per event: O(1) */
    /* an update that changes nothing the reconciler reads touches nothing */
    cJSON *same = pod_json("p-1", "a", "1", ",\"conditions\":[{\"type\":\"PodScheduled\"}]");
    op_cache_pod_event(c, KCCL_KUBE_EVENT_MODIFIED, same, touch, &t);
    cJSON_Delete(same);
    assert_int_equal(t.n, 300);
    op_cache_stats_t st;
    op_cache_stats(c, &st);
    assert_int_equal(st.pods, 300);
    assert_int_equal(st.groups, 2);
    op_snapshot_t s;
    assert_int_equal(op_cache_snapshot(c, "ns/a", &s), KCCL_OK);
    assert_int_equal(s.npods, 200);
    assert_false(s.has_group);
    op_snapshot_free(&s);
    /* a failed pod is deleted: a tombstone with its failure key */
    cJSON *j = pod_json("p-5", "a", "5",
                        ",\"containerStatuses\":[{\"name\":\"m\",\"restartCount\":1,"
                        "\"state\":{\"terminated\":{\"exitCode\":1}}}]");
    op_cache_pod_event(c, KCCL_KUBE_EVENT_MODIFIED, j, touch, &t);
    op_cache_pod_event(c, KCCL_KUBE_EVENT_DELETED, j, touch, &t);
    cJSON_Delete(j);
    assert_string_equal(t.last, "ns/a");
    assert_int_equal(op_cache_snapshot(c, "ns/a", &s), KCCL_OK);
    assert_int_equal(s.npods, 199);
    assert_int_equal(s.ntombs, 1);
    assert_string_equal(s.tombs[0].fkey, "u-p-5.1");
    assert_int_equal(s.tombs[0].rank, 5);
    op_snapshot_free(&s);
    const char handled[1][OP_FKEY_MAX] = {"u-p-5.1"};
    op_cache_consumed(c, "ns/a", 1, handled, 1);
    assert_int_equal(op_cache_snapshot(c, "ns/a", &s), KCCL_OK);
    assert_int_equal(s.ntombs, 0);
    assert_int_equal(s.nextra, 1);
    op_snapshot_free(&s);
    /* a pod moves to another group (its label changed) */
    j = pod_json("p-6", "b", "6", NULL);
    t.n = 0;
    op_cache_pod_event(c, KCCL_KUBE_EVENT_MODIFIED, j, touch, &t);
    cJSON_Delete(j);
    assert_int_equal(t.n, 2); /* both groups */
    /* a CommGroup arrives for b */
    j = parse("{\"metadata\":{\"name\":\"b\",\"namespace\":\"ns\",\"uid\":\"CG\"},"
              "\"spec\":{\"worldSize\":101}}");
    op_cache_group_event(c, KCCL_KUBE_EVENT_ADDED, j, touch, &t);
    cJSON_Delete(j);
    assert_string_equal(t.last, "ns/b");
    assert_int_equal(op_cache_snapshot(c, "ns/b", &s), KCCL_OK);
    assert_true(s.has_group);
    assert_int_equal(s.group.world_size, 101);
    assert_int_equal(s.npods, 101);
    op_snapshot_free(&s);
    /* a relist that has only p-0 and no CommGroup: everything else goes (tombstones) */
    cJSON *items = cJSON_CreateArray();
    cJSON_AddItemToArray(items, pod_json("p-0", "a", "0", NULL));
    op_cache_pods_replace(c, items, touch, &t);
    cJSON_Delete(items);
    items = cJSON_CreateArray();
    op_cache_groups_replace(c, items, touch, &t);
    cJSON_Delete(items);
    op_cache_stats(c, &st);
    assert_int_equal(st.pods, 1);
    assert_int_equal(st.commgroups, 0);
    assert_int_equal(op_cache_snapshot(c, "ns/a", &s), KCCL_OK);
    assert_int_equal(s.npods, 1);
    assert_int_equal(s.ntombs, 197); /* a had 198 after the delete and the move */
    op_snapshot_free(&s);
    assert_int_equal(op_cache_snapshot(c, "ns/zzz", &s), KCCL_ERR_NOT_FOUND);
    op_cache_destroy(c);
}

static void test_config(void **state)
{
    (void)state;
    op_config_t cfg;
    setenv("KCCL_OPERATOR_NAMESPACE", "from-env", 1);
    setenv("KCCL_OPERATOR_WORKERS", "4", 1);
    char *argv[] = {"kccl-operator", "--leader-elect", "--workers=3",
                    "--health-addr", "127.0.0.1:0",    NULL};
    assert_int_equal(op_config_load(&cfg, 5, argv), KCCL_OK);
    assert_string_equal(op_config_str(&cfg, OP_CFG_NAMESPACE), "from-env");
    assert_true(op_config_bool(&cfg, OP_CFG_LEADER_ELECT));
    int64_t w;
    assert_int_equal(op_config_int(&cfg, OP_CFG_WORKERS, 1, 16, &w), KCCL_OK);
    assert_int_equal(w, 3); /* the flag wins over the variable */
    assert_string_equal(op_config_str(&cfg, OP_CFG_WEBHOOK_ADDR), ":9443");
    op_config_free(&cfg);
    unsetenv("KCCL_OPERATOR_NAMESPACE");
    unsetenv("KCCL_OPERATOR_WORKERS");
    char *bad[] = {"kccl-operator", "--no-such-flag", NULL};
    assert_int_equal(op_config_load(&cfg, 2, bad), KCCL_ERR_CONFIG);
    assert_non_null(strstr(kccl_last_error(), "--no-such-flag"));
    op_config_free(&cfg);
    char *missing[] = {"kccl-operator", "--namespace", NULL};
    assert_int_equal(op_config_load(&cfg, 2, missing), KCCL_ERR_CONFIG);
    op_config_free(&cfg);
    char *badbool[] = {"kccl-operator", "--leader-elect=maybe", NULL};
    assert_int_equal(op_config_load(&cfg, 2, badbool), KCCL_ERR_CONFIG);
    op_config_free(&cfg);
    char host[64];
    int port;
    assert_int_equal(op_config_split_addr(":8081", host, sizeof(host), &port), 0);
    assert_string_equal(host, "");
    assert_int_equal(port, 8081);
    assert_int_equal(op_config_split_addr("[::1]:9443", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(op_config_split_addr("8081", host, sizeof(host), &port), -1);
    assert_int_equal(op_config_split_addr(":99999", host, sizeof(host), &port), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pod_parse),
        cmocka_unit_test(test_pod_restarted_in_place),
        cmocka_unit_test(test_group_parse_and_status),
        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
