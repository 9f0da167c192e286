/*
 * test_sidecar_e2e.c - end to end through the REAL local control plane: N pods,
 * each with kccl-sidecar and the foundation's kccl-demo in the same network
 * namespace. The demos start first and wait (kccl_comm_init_from_env waits for
 * $KCCL_BOOTSTRAP_FILE within the bootstrap deadline); the sidecars start in
 * random order; the demos bootstrap over the pods' eth0 with the group secret
 * from a Secret volume, all-gather, check the table, and rank 0 prints it.
 * Every row must name its pod's IP and its node (the handoff's KCCL_HOST_ID).
 */
#include "sc_itest.h"

static void run_group(const char *prefix, int n)
{
    pk_pod_t *pods[32];
    int order[32];
    sc_group(prefix, n, pods);
    for (int i = 0; i < n; i++) {
        if (pk_demo_start(&sc_kit, pods[i], NULL) <= 0)
            fail_msg("cannot start kccl-demo in %s", pods[i]->name);
        order[i] = i;
    }
    for (int i = n - 1; i > 0; i--) {
        int j = sc_rand(i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int i = 0; i < n; i++)
        sc_start(pods[order[i]], NULL);
    for (int i = 0; i < n; i++) {
        int rc = pk_wait(pods[i]->demo, 60000);
        char out[4096] = "";
        if (rc != 0) {
            pk_sh(&sc_kit, out, sizeof(out), "tail -5 '%s/demo.log' '%s/sidecar.log'", pods[i]->dir,
                  pods[i]->dir);
            fail_msg("kccl-demo in %s: exit %d\n%s", pods[i]->name, rc, out);
        }
        pods[i]->demo = 0;
    }
    char table[16384], want[160];
    assert_int_equal(pk_sh(&sc_kit, table, sizeof(table), "cat '%s/demo.log'", pods[0]->dir), 0);
    printf("%s\n", table);
    snprintf(want, sizeof(want), "bootstrap: %d ranks in", n);
    assert_non_null(strstr(table, want));
    for (int i = 0; i < n; i++) {
        /* "RANK PID LOCAL HOST-ID ADDRESS": the row of rank i holds node and pod IP */
        char row[400];
        int found = 0;
        for (const char *l = table; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
            int r;
            char local[32], host[128], addr[128];
            snprintf(row, sizeof(row), "%.*s", (int)strcspn(l, "\n"), l);
            if (sscanf(row, "%d %*d %31s %127s %127s", &r, local, host, addr) == 4 && r == i) {
                snprintf(want, sizeof(want), "%s:", pods[i]->ip);
                assert_string_equal(host, pods[i]->node);
                assert_true(strncmp(addr, want, strlen(want)) == 0);
                assert_string_equal(local, i % 2 ? "1/2" : "0/2");
                found = 1;
            }
        }
        if (!found)
            fail_msg("rank %d is missing from the table", i);
    }
    sc_stop_all(pods, n);
}

static void test_demo_4(void **state)
{
    (void)state;
    run_group("demo4", 4);
}

static void test_demo_16(void **state)
{
    (void)state;
    run_group("demo16", 16);
}

int main(void)
{
    sc_itest_init("e2e", 20, 280);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demo_4),
        cmocka_unit_test(test_demo_16),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sc_itest_cleanup();
    return rc;
}
