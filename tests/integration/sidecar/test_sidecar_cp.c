/*
 * test_sidecar_cp.c - kccl-sidecar against the REAL local control plane:
 * sidecars as processes, one per pod network namespace, with the downward-API
 * environment and a pod-bound token of ServiceAccount kccl-sidecar under the
 * Role of deploy/rbac as shipped. Pods are created through the API.
 *
 * Covered: every handoff right (4 and 16 pods, random start order, rank 0
 * last); the API budget per pod (audit log); rank 0's sidecar restarting
 * (same id) and rank 0's pod replaced (new id, members follow); an epoch bump
 * (new id, every handoff rewritten); the downward-API volume instead of a GET;
 * SIGTERM while waiting; probe.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include "sc_itest.h"

/* Starts ranks 1..n-1 in random order, waits a little, then rank 0 last. */
static void start_rank0_last(pk_pod_t **pods, int n)
{
    int order[64];
    for (int i = 1; i < n; i++)
        order[i - 1] = i;
    for (int i = n - 2; i > 0; i--) { /* Fisher-Yates */
        int j = sc_rand(i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int i = 0; i < n - 1; i++)
        sc_start(pods[order[i]], NULL);
    pk_sleep_ms(300);
    for (int i = 1; i < n; i++)
        assert_false(pk_handoff_exists(pods[i])); /* nobody can know the id before rank 0 */
    sc_start(pods[0], NULL);
}

static int probe(pk_pod_t *p)
{
    char cmd[1400];
    snprintf(cmd, sizeof(cmd), "'%s' probe '%s' >/dev/null 2>&1", sc_kit.sidecar_bin, p->handoff);
    int st = system(cmd); // NOLINT(cert-env33-c): runs the binary as a kubelet's probe would
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void check_budget(pk_pod_t **pods, int n)
{
    pk_audit_t a;
    pk_sleep_ms(300); /* the audit log is written as responses complete */
    for (int i = 0; i < n; i++) {
        assert_int_equal(pk_audit_count(&sc_kit, pods[i], &a), 0);
        if (a.requests > 4 || a.watches != 1)
            fail_msg("pod %s: %d requests (get %d, list %d, patch %d, create %d) and %d watches; "
                     "the budget is 4 requests and 1 watch",
                     pods[i]->name, a.requests, a.gets, a.lists, a.patches, a.creates, a.watches);
    }
}

static void test_four_pods(void **state)
{
    pk_pod_t *pods[4];
    (void)state;
    sc_group("four", 4, pods);
    for (int i = 3; i >= 0; i--) /* any order works; this one has rank 0 last */
        sc_start(pods[i], NULL);
    sc_check_group(pods, 4, 0, 29500, NULL);
    for (int i = 0; i < 4; i++)
        assert_int_equal(probe(pods[i]), 0);
    check_budget(pods, 4);
    struct stat st;
    assert_int_equal(stat(pods[1]->handoff, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    sc_stop_all(pods, 4);
    assert_int_equal(probe(pods[1]), 0); /* the handoff outlives the sidecar */
}

static void test_sixteen_random_rank0_last(void **state)
{
    pk_pod_t *pods[16];
    (void)state;
    sc_group("sixteen", 16, pods);
    start_rank0_last(pods, 16);
    sc_check_group(pods, 16, 0, 29500, NULL);
    check_budget(pods, 16);
    sc_stop_all(pods, 16);
}

/* Rank 0's sidecar restarts: same id; rank 0's pod is replaced: new id, members follow. */
static void test_rank0_restart(void **state)
{
    pk_pod_t *pods[3];
    char id1[KCCL_UNIQUE_ID_STRLEN + 1], id2[KCCL_UNIQUE_ID_STRLEN + 1];
    (void)state;
    sc_group("restart", 3, pods);
    for (int i = 0; i < 3; i++)
        sc_start(pods[i], NULL);
    sc_check_group(pods, 3, 0, 29500, id1);
    assert_int_equal(pk_sidecar_stop(pods[0], SIGTERM, 3000), 0);
    unlink(pods[0]->handoff); /* an emptyDir survives a container restart; be stricter */
    sc_start(pods[0], NULL);
    sc_check_group(pods, 3, 0, 29500, id2);
    assert_string_equal(id1, id2);

    /* a new rank-0 pod with the same name (a Job's replacement keeps the rank, not the IP) */
    assert_int_equal(pk_sidecar_stop(pods[0], SIGTERM, 3000), 0);
    assert_int_equal(pk_pod_delete(&sc_kit, pods[0]), 0);
    char ann[256];
    sc_ann(ann, sizeof(ann), "restart", "0", "3", NULL);
    pods[0] = sc_pod("restart-0", ann, "restart-secret", "node-0");
    sc_start(pods[0], NULL);
    sc_check_group(pods, 3, 0, 29500, id2);
    assert_string_not_equal(id1, id2);
    sc_stop_all(pods, 3);
}

/* kccl.io/epoch on rank 0's pod moves: a new id for the new epoch, every handoff rewritten. */
static void test_epoch_bump(void **state)
{
    pk_pod_t *pods[3];
    char id0[KCCL_UNIQUE_ID_STRLEN + 1], id1[KCCL_UNIQUE_ID_STRLEN + 1];
    (void)state;
    sc_group("epoch", 3, pods);
    for (int i = 0; i < 3; i++)
        sc_start(pods[i], NULL);
    sc_check_group(pods, 3, 0, 29500, id0);
    assert_int_equal(pk_annotate(&sc_kit, pods[0], "{\"kccl.io/epoch\":\"1\"}"), 0);
    sc_check_group(pods, 3, 1, 29500, id1);
    assert_string_not_equal(id0, id1);
    sc_stop_all(pods, 3);
}

/* The downward-API volume: annotations and labels from files, so no GET of the own pod. */
static void test_podinfo_volume(void **state)
{
    pk_pod_t *pods[2];
    char dir[700];
    (void)state;
    sc_group("podinfo", 2, pods);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pk_pod_podinfo(&sc_kit, pods[i]), 0);
        snprintf(dir, sizeof(dir), "KCCL_PODINFO_DIR=%s/podinfo", pods[i]->dir);
        const char *extra[] = {dir, "POD_NAME=", "POD_NAMESPACE=", "POD_UID=", NULL};
        sc_start(pods[i], extra);
    }
    sc_check_group(pods, 2, 0, 29500, NULL);
    pk_audit_t a;
    pk_sleep_ms(300);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pk_audit_count(&sc_kit, pods[i], &a), 0);
        assert_int_equal(a.gets, 0);
    }
    sc_stop_all(pods, 2);
}

/* kccl.io/port and kccl.io/root-pod: the id names the port; members watch rank 0 by name. */
static void test_port_and_root_pod(void **state)
{
    pk_pod_t *pods[3];
    char ann[512], name[32], rank[8];
    (void)state;
    assert_int_equal(pk_secret_create(&sc_kit, "named-secret"), 0);
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "named-%d", i);
        snprintf(rank, sizeof(rank), "%d", i);
        sc_ann(ann, sizeof(ann), "named", rank, "3",
               "\"kccl.io/port\":\"31000\",\"kccl.io/root-pod\":\"named-0\"");
        pods[i] = sc_pod(name, ann, "named-secret", i ? "node-b" : "node-a");
    }
    for (int i = 2; i >= 0; i--)
        sc_start(pods[i], NULL);
    sc_check_group(pods, 3, 0, 31000, NULL);
    sc_stop_all(pods, 3);
}

/* SIGTERM while waiting for rank 0 ends the sidecar at once with status 0. */
static void test_sigterm_while_waiting(void **state)
{
    char ann[256];
    (void)state;
    sc_ann(ann, sizeof(ann), "lonely", "1", "2", NULL);
    pk_pod_t *p = sc_pod("lonely-1", ann, NULL, "node-0");
    sc_start(p, NULL);
    pk_sleep_ms(500);
    assert_int_equal(pk_wait(p->sidecar, 0), -1); /* still waiting */
    int64_t t0 = pk_now_ms();
    assert_int_equal(pk_sidecar_stop(p, SIGTERM, 3000), 0);
    assert_true(pk_now_ms() - t0 < 1000);
    assert_false(pk_handoff_exists(p));
    assert_int_not_equal(probe(p), 0);
}

int main(void)
{
    sc_itest_init("cp", 64, 280);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_four_pods),
        cmocka_unit_test(test_sixteen_random_rank0_last),
        cmocka_unit_test(test_rank0_restart),
        cmocka_unit_test(test_epoch_bump),
        cmocka_unit_test(test_podinfo_volume),
        cmocka_unit_test(test_port_and_root_pod),
        cmocka_unit_test(test_sigterm_while_waiting),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sc_itest_cleanup();
    return rc;
}
