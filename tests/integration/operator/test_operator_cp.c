/*
 * test_operator_cp.c - kccl-operator against the REAL local control plane
 * (e2e/controlplane/cp.sh): the CRD applied from helm/kccl/crds, CommGroups
 * and pods created through the API, pod status PATCHed through pods/status as
 * a kubelet would, and the operator (the built binary) run as a child
 * process restricted to this program's namespace. Checks go through the API:
 *
 *   probes, status + conditions + Secret with ownerReference + Events, Restart
 *   bumps the epoch once per formed epoch and patches rank 0's kccl.io/epoch,
 *   a crash restarted in place (lastState) is a failure and the other members'
 *   crashes of the same incident bump nothing, a completed group is Succeeded, a
 *   replacement re-forms the group, Fail marks Failed, rank violations,
 *   auto-created CommGroups, garbage collection of the Secret with its
 *   CommGroup (kube-controller-manager), and two operators with
 *   --leader-elect: one acts, the other takes over when it is killed, and a
 *   clean stop releases the Lease.
 *
 * Exit 77 (skipped) when the control plane is not up.
 */
#include "kube_cp.h"
#include "op_itest.h"

#ifndef KCCL_OPERATOR_BIN
#error "KCCL_OPERATOR_BIN must be defined"
#endif

#define CG_GV "kccl.io/v1alpha1"

static kccl_kube_client_t kc;
static pid_t op_pid;
static int health_port;
static char op_log[600];

static void start_single_operator(void)
{
    char port[32];
    snprintf(port, sizeof(port), "127.0.0.1:%d", health_port);
    snprintf(op_log, sizeof(op_log), "%s", kcp_path("operator.log"));
    char *argv[] = {KCCL_OPERATOR_BIN,
                    "--kubeconfig",
                    kcp.kubeconfig,
                    "--namespace",
                    kcp.ns,
                    "--health-addr",
                    port,
                    "--coalesce-ms",
                    "50",
                    "--log-level",
                    "info",
                    NULL};
    op_pid = opit_operator_start(argv, op_log, NULL);
    assert_true(op_pid > 0);
}

static int setup(void **state)
{
    (void)state;
    kcp_init("op");
    kc = kcp_admin();
    KCP_MUST("kubectl apply -f %s/helm/kccl/crds/commgroups.kccl.io.yaml >/dev/null && "
             "kubectl wait --for condition=established --timeout=60s "
             "crd/commgroups.kccl.io >/dev/null",
             KCCL_SOURCE_DIR);
    health_port = 20000 + (int)(getpid() % 20000);
    start_single_operator();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (op_pid > 0)
        opit_stop(op_pid, SIGTERM, 5000);
    opit_kill_all(); /* what a failed test left running */
    if (getenv("KCCL_OPERATOR_TEST_KEEP") == NULL)
        kcp_fini();
    kccl_kube_client_destroy(kc);
    return 0;
}

/* Polls the CommGroup until pred holds (or the deadline); returns it (caller frees). */
typedef int (*cg_pred_t)(const cJSON *cg, const void *arg);

static cJSON *wait_cg(const char *name, cg_pred_t pred, const void *arg, int timeout_ms,
                      const char *what)
{
    int64_t end = opit_now_ms() + timeout_ms;
    for (;;) {
        cJSON *cg = opit_get(kc, CG_GV, kcp.ns, "commgroups", name);
        if (cg && pred(cg, arg))
            return cg;
        if (opit_now_ms() > end) {
            char *text = cg ? cJSON_Print(cg) : NULL;
            fail_msg("CommGroup %s: %s not reached in %d ms; last seen:\n%s\noperator log: %s",
                     name, what, timeout_ms, text ? text : "(none)", op_log);
        }
        cJSON_Delete(cg);
        opit_sleep_ms(100);
    }
}

static int phase_is(const cJSON *cg, const void *arg)
{
    return !strcmp(opit_str(cg, "status", "phase", NULL), (const char *)arg);
}

static int epoch_is(const cJSON *cg, const void *arg)
{
    return opit_num(cg, "status", "epoch", NULL) == *(const long *)arg;
}

static int ready_with_id(const cJSON *cg, const void *arg)
{
    return phase_is(cg, "Ready") &&
           !strcmp(opit_str(cg, "status", "uniqueId", NULL), (const char *)arg);
}

static int exists(const cJSON *cg, const void *arg)
{
    (void)arg;
    return cg != NULL;
}

static int ready_reason_is(const cJSON *cg, const void *arg)
{
    return !strcmp(opit_str(opit_cond(cg, "Ready"), "reason", NULL, NULL), (const char *)arg);
}

/* Events on the CommGroup with that reason. */
static int events(const char *cg, const char *reason)
{
    char out[64];
    kcp_sh(out, sizeof(out),
           "kubectl -n %s get events --field-selector involvedObject.kind=CommGroup,"
           "involvedObject.name=%s,reason=%s -o name | wc -l",
           kcp.ns, cg, reason);
    return atoi(out);
}

/* Pods of a group, Running with ready sidecars (unless `pending`); rank 0 publishes for
 * epoch 0. */
static void group_pods(const char *group, int ws, const char *policy, int with_cg, int pending)
{
    char name[64], ip[32];
    if (with_cg)
        assert_int_equal(opit_cg_create(kc, kcp.ns, group, ws, policy), 0);
    for (int r = 0; r < ws; r++) {
        snprintf(name, sizeof(name), "%s-%d", group, r);
        snprintf(ip, sizeof(ip), "10.99.%d.%d", (int)strlen(group), r + 10);
        assert_int_equal(opit_pod_create(kc, kcp.ns, name, group, r, ws), 0);
        if (pending)
            continue;
        assert_int_equal(opit_pod_status(kc, kcp.ns, name, "Running", 1, -1, 0, ip), 0);
        if (r == 0)
            assert_int_equal(opit_publish_root(kc, kcp.ns, name, ip, 0), 0);
    }
}

static void group_up(const char *group, int ws, const char *policy, int with_cg)
{
    group_pods(group, ws, policy, with_cg, 0);
}

static void test_probes(void **state)
{
    (void)state;
    char out[256];
    int rc = 1;
    for (int i = 0; i < 100 && rc != 0; i++, opit_sleep_ms(100))
        rc = kcp_sh(out, sizeof(out), "curl -sf http://127.0.0.1:%d/readyz", health_port);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "ok");
    assert_int_equal(kcp_sh(out, sizeof(out), "curl -sf http://127.0.0.1:%d/healthz", health_port),
                     0);
    assert_int_equal(kcp_sh(out, sizeof(out),
                            "curl -s -o /dev/null -w '%%{http_code}' "
                            "http://127.0.0.1:%d/nothing",
                            health_port),
                     0);
    assert_string_equal(out, "404");
}

static void test_ready_status_and_secret(void **state)
{
    (void)state;
    group_up("ga", 2, "Restart", 1);
    cJSON *cg = wait_cg("ga", phase_is, "Ready", 30000, "phase Ready");
    assert_int_equal(opit_num(cg, "status", "readyMembers", NULL), 2);
    assert_int_equal(opit_num(cg, "status", "epoch", NULL), 0);
    assert_int_equal(opit_num(cg, "status", "observedGeneration", NULL), 1);
    assert_string_equal(opit_str(cg, "status", "uniqueId", NULL), "ID-10.99.2.10-0");
    assert_string_equal(opit_str(cg, "status", "rootEndpoint", NULL), "10.99.2.10:29500");
    assert_string_equal(opit_str(cg, "status", "secretName", NULL), "kccl-group-ga");
    const char *want[][3] = {{"Ready", "True", "GroupReady"},
                             {"Bootstrapped", "True", "SidecarsReady"},
                             {"Degraded", "False", "AsExpected"}};
    for (int i = 0; i < 3; i++) {
        const cJSON *c = opit_cond(cg, want[i][0]);
        assert_non_null(c);
        assert_string_equal(opit_str(c, "status", NULL, NULL), want[i][1]);
        assert_string_equal(opit_str(c, "reason", NULL, NULL), want[i][2]);
        assert_int_equal(opit_num(c, "observedGeneration", NULL, NULL), 1);
        assert_true(strlen(opit_str(c, "lastTransitionTime", NULL, NULL)) == 20);
    }
    /* the group Secret: owned by the CommGroup, 32 random bytes under "secret" */
    cJSON *s = opit_get(kc, "v1", kcp.ns, "secrets", "kccl-group-ga");
    assert_non_null(s);
    assert_string_equal(opit_str(s, "type", NULL, NULL), "Opaque");
    assert_string_equal(opit_str(s, "metadata", "labels", "kccl.io/group"), "ga");
    const cJSON *ref = cJSON_GetArrayItem(opit_at(s, "metadata", "ownerReferences", NULL), 0);
    assert_string_equal(opit_str(ref, "kind", NULL, NULL), "CommGroup");
    assert_string_equal(opit_str(ref, "apiVersion", NULL, NULL), CG_GV);
    assert_string_equal(opit_str(ref, "name", NULL, NULL), "ga");
    assert_string_equal(opit_str(ref, "uid", NULL, NULL), opit_str(cg, "metadata", "uid", NULL));
    assert_true(cJSON_IsTrue(opit_at(ref, "controller", NULL, NULL)));
    assert_true(cJSON_IsTrue(opit_at(ref, "blockOwnerDeletion", NULL, NULL)));
    const char *b64 = opit_str(s, "data", "secret", NULL);
    unsigned char *key = NULL;
    size_t keylen = 0;
    assert_int_equal(kccl_kube_base64_decode(b64, strlen(b64), &key, &keylen), 0);
    assert_int_equal(keylen, 32);
    free(key);
    cJSON_Delete(s);
    cJSON_Delete(cg);
    assert_int_equal(events("ga", "GroupReady"), 1);
    /* printer columns */
    char out[512];
    KCP_MUST("true");
    assert_int_equal(kcp_sh(out, sizeof(out), "kubectl -n %s get cg ga --no-headers", kcp.ns), 0);
    assert_non_null(strstr(out, "10.99.2.10:29500"));
    assert_non_null(strstr(out, "Ready"));
}

static void test_restart_bumps_epoch_once(void **state)
{
    (void)state;
    /* rank 1's container exits 1 */
    assert_int_equal(opit_pod_status(kc, kcp.ns, "ga-1", "Running", 1, 1, 0, "10.99.2.11"), 0);
    long one = 1;
    cJSON *cg = wait_cg("ga", epoch_is, &one, 30000, "epoch 1");
    const cJSON *d = opit_cond(cg, "Degraded");
    assert_string_equal(opit_str(d, "status", NULL, NULL), "True");
    assert_string_equal(opit_str(d, "reason", NULL, NULL), "MemberFailed");
    assert_non_null(strstr(opit_str(d, "message", NULL, NULL), "pod ga-1 (rank 1)"));
    cJSON_Delete(cg);
    /* rank 0's pod carries the new epoch (its sidecar reacts to that) */
    cJSON *p0 = NULL;
    for (int i = 0; i < 100; i++, opit_sleep_ms(100)) {
        cJSON_Delete(p0);
        p0 = opit_get(kc, "v1", kcp.ns, "pods", "ga-0");
        if (!strcmp(opit_str(p0, "metadata", "annotations", "kccl.io/epoch"), "1"))
            break;
    }
    assert_string_equal(opit_str(p0, "metadata", "annotations", "kccl.io/epoch"), "1");
    cJSON_Delete(p0);
    /* more reports about the same failure: no second bump, one Event */
    for (int i = 0; i < 3; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "10.99.2.%d", 30 + i);
        assert_int_equal(opit_pod_status(kc, kcp.ns, "ga-1", "Running", i % 2, 1, 0, ip), 0);
        opit_sleep_ms(300);
    }
    opit_sleep_ms(1000);
    cg = opit_get(kc, CG_GV, kcp.ns, "commgroups", "ga");
    assert_int_equal(opit_num(cg, "status", "epoch", NULL), 1);
    assert_string_equal(opit_str(cg, "status", "uniqueId", NULL), ""); /* epoch 0's id is stale */
    cJSON_Delete(cg);
    assert_int_equal(events("ga", "MemberFailed"), 1);
    /* the container runs again, rank 0 republishes for epoch 1: the group formed at epoch 1 */
    assert_int_equal(opit_pod_status(kc, kcp.ns, "ga-1", "Running", 1, -1, 1, "10.99.2.11"), 0);
    assert_int_equal(opit_publish_root(kc, kcp.ns, "ga-0", "10.99.2.10", 1), 0);
    cJSON_Delete(wait_cg("ga", ready_with_id, "ID-10.99.2.10-1", 30000, "Ready at epoch 1"));
    /* the container fails again after that: a new failure, a new epoch */
    assert_int_equal(opit_pod_status(kc, kcp.ns, "ga-1", "Running", 1, 2, 1, "10.99.2.11"), 0);
    long two = 2;
    cJSON_Delete(wait_cg("ga", epoch_is, &two, 30000, "epoch 2"));
    /* a replacement pod for rank 1 (the failed one deleted), rank 0 republishes: Ready again */
    KCP_MUST("kubectl -n %s delete pod ga-1 --wait=true >/dev/null", kcp.ns);
    assert_int_equal(opit_pod_create(kc, kcp.ns, "ga-1b", "ga", 1, 2), 0);
    assert_int_equal(opit_pod_status(kc, kcp.ns, "ga-1b", "Running", 1, -1, 0, "10.99.2.12"), 0);
    assert_int_equal(opit_publish_root(kc, kcp.ns, "ga-0", "10.99.2.10", 2), 0);
    cg = wait_cg("ga", ready_with_id, "ID-10.99.2.10-2", 30000,
                 "Ready after the replacement, with rank 0's id for epoch 2");
    assert_int_equal(opit_num(cg, "status", "epoch", NULL), 2); /* the delete was no new failure */
    cJSON_Delete(cg);
}

/* The handled-failures annotation holds n keys. */
static int handled_keys_are(const cJSON *cg, const void *arg)
{
    const char *text = opit_str(cg, "metadata", "annotations", "kccl.io/handled-failures");
    int n = text[0] != '\0';
    for (const char *c = text; *c; c++)
        n += *c == ' ';
    return n == *(const int *)arg;
}

/* A crash restarted in place (only lastState shows it) is a failure; the other members'
 * "lost rank" crashes that follow are the same incident (no second bump); the group is Ready
 * again at the new epoch; then every pod completes: Succeeded. */
static void test_in_place_restart_and_completion(void **state)
{
    (void)state;
    group_up("gi", 3, "Restart", 1);
    cJSON_Delete(wait_cg("gi", phase_is, "Ready", 30000, "phase Ready"));
    assert_int_equal(opit_pod_status_last(kc, kcp.ns, "gi-1", "Running", 1, -1, 1, 1, "10.99.2.11"),
                     0);
    long one = 1;
    cJSON *cg = wait_cg("gi", epoch_is, &one, 30000, "epoch 1 after a crash restarted in place");
    const cJSON *d = opit_cond(cg, "Degraded");
    assert_string_equal(opit_str(d, "reason", NULL, NULL), "MemberFailed");
    assert_non_null(strstr(opit_str(d, "message", NULL, NULL), "pod gi-1 (rank 1)"));
    assert_non_null(strstr(opit_str(d, "message", NULL, NULL), "restarted in place"));
    cJSON_Delete(cg);
    /* ranks 0 and 2 exit "lost rank 1" and are restarted in place too: recorded, no bump */
    assert_int_equal(opit_pod_status_last(kc, kcp.ns, "gi-0", "Running", 1, -1, 1, 1, "10.99.2.10"),
                     0);
    assert_int_equal(opit_pod_status_last(kc, kcp.ns, "gi-2", "Running", 1, -1, 1, 1, "10.99.2.12"),
                     0);
    int three = 3;
    cJSON_Delete(wait_cg("gi", handled_keys_are, &three, 30000, "three handled failures"));
    opit_sleep_ms(1000);
    cg = opit_get(kc, CG_GV, kcp.ns, "commgroups", "gi");
    assert_int_equal(opit_num(cg, "status", "epoch", NULL), 1);
    cJSON_Delete(cg);
    assert_true(events("gi", "MemberFailed") >= 2);
    /* rank 0 republishes for epoch 1: Ready again (the pods still show their crashes) */
    assert_int_equal(opit_publish_root(kc, kcp.ns, "gi-0", "10.99.2.10", 1), 0);
    cg = wait_cg("gi", ready_with_id, "ID-10.99.2.10-1", 30000, "Ready again at epoch 1");
    assert_int_equal(opit_num(cg, "status", "epoch", NULL), 1);
    cJSON_Delete(cg);
    /* every rank completes: Succeeded, not Degraded */
    for (int r = 0; r < 3; r++) {
        char name[16], ip[32];
        snprintf(name, sizeof(name), "gi-%d", r);
        snprintf(ip, sizeof(ip), "10.99.2.%d", 10 + r);
        assert_int_equal(opit_pod_status_last(kc, kcp.ns, name, "Succeeded", 0, 0, 1, 1, ip), 0);
    }
    cg = wait_cg("gi", phase_is, "Succeeded", 30000, "phase Succeeded");
    const cJSON *r = opit_cond(cg, "Ready");
    assert_string_equal(opit_str(r, "status", NULL, NULL), "False");
    assert_string_equal(opit_str(r, "reason", NULL, NULL), "Completed");
    assert_string_equal(opit_str(r, "message", NULL, NULL), "all 3 ranks completed");
    assert_string_equal(opit_str(opit_cond(cg, "Degraded"), "status", NULL, NULL), "False");
    assert_int_equal(opit_num(cg, "status", "epoch", NULL), 1);
    cJSON_Delete(cg);
    for (int i = 0; i < 50 && events("gi", "Completed") < 1; i++)
        opit_sleep_ms(100);
    assert_int_equal(events("gi", "Completed"), 1);
}

static void test_fail_policy(void **state)
{
    (void)state;
    group_up("gf", 2, "Fail", 1);
    cJSON_Delete(wait_cg("gf", phase_is, "Ready", 30000, "phase Ready"));
    assert_int_equal(opit_pod_status(kc, kcp.ns, "gf-1", "Failed", 0, 1, 0, "10.99.2.11"), 0);
    cJSON *cg = wait_cg("gf", phase_is, "Failed", 30000, "phase Failed");
    const cJSON *r = opit_cond(cg, "Ready");
    assert_string_equal(opit_str(r, "status", NULL, NULL), "False");
    assert_string_equal(opit_str(r, "reason", NULL, NULL), "MemberFailed");
    assert_non_null(strstr(opit_str(r, "message", NULL, NULL), "pod gf-1 (rank 1)"));
    assert_int_equal(opit_num(cg, "status", "epoch", NULL), 0);
    cJSON_Delete(cg);
    assert_int_equal(events("gf", "MemberFailed"), 1);
}

static void test_violations(void **state)
{
    (void)state;
    /* pods that never run: the group never forms, so deleting one is no member failure */
    group_pods("gd", 2, "Restart", 1, 1);
    assert_int_equal(opit_pod_create(kc, kcp.ns, "gd-x", "gd", 1, 2), 0);
    cJSON *cg = wait_cg("gd", ready_reason_is, "DuplicateRank", 30000, "DuplicateRank");
    assert_string_equal(opit_str(opit_cond(cg, "Degraded"), "status", NULL, NULL), "True");
    cJSON_Delete(cg);
    KCP_MUST("kubectl -n %s delete pod gd-x --wait=true >/dev/null", kcp.ns);
    assert_int_equal(opit_pod_create(kc, kcp.ns, "gd-y", "gd", 1, 3), 0);
    KCP_MUST("kubectl -n %s delete pod gd-1 --wait=true >/dev/null", kcp.ns);
    cJSON_Delete(wait_cg("gd", ready_reason_is, "WorldSizeMismatch", 30000, "WorldSizeMismatch"));
    assert_int_equal(opit_pod_create(kc, kcp.ns, "gd-z", "gd", 7, 2), 0);
    KCP_MUST("kubectl -n %s delete pod gd-y --wait=true >/dev/null", kcp.ns);
    cJSON_Delete(wait_cg("gd", ready_reason_is, "RankOutOfRange", 30000, "RankOutOfRange"));
    assert_int_equal(events("gd", "DuplicateRank"), 1);
    assert_int_equal(events("gd", "WorldSizeMismatch"), 1);
    assert_int_equal(events("gd", "RankOutOfRange"), 1);
}

static void test_auto_create(void **state)
{
    (void)state;
    group_up("gauto", 3, NULL, 0);
    cJSON *cg = wait_cg("gauto", phase_is, "Ready", 30000, "an auto-created CommGroup, Ready");
    assert_int_equal(opit_num(cg, "spec", "worldSize", NULL), 3);
    assert_string_equal(opit_str(cg, "metadata", "labels", "kccl.io/managed-by"), "kccl-operator");
    assert_string_equal(opit_str(cg, "spec", "failurePolicy", NULL), "Restart"); /* CRD default */
    cJSON_Delete(cg);
}

static void test_secret_garbage_collected(void **state)
{
    (void)state;
    KCP_MUST("kubectl -n %s delete pod ga-0 ga-1b --wait=true >/dev/null", kcp.ns);
    cJSON_Delete(wait_cg("ga", phase_is, "Pending", 30000, "Pending without pods"));
    KCP_MUST("kubectl -n %s delete commgroup ga --wait=true >/dev/null", kcp.ns);
    cJSON *s = NULL;
    for (int i = 0; i < 600; i++, opit_sleep_ms(100)) {
        cJSON_Delete(s);
        if ((s = opit_get(kc, "v1", kcp.ns, "secrets", "kccl-group-ga")) == NULL)
            break;
    }
    assert_null(s); /* kube-controller-manager's garbage collector followed the ownerReference */
}

static pid_t start_elector(const char *name, int port, const char *log)
{
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    char *argv[] = {KCCL_OPERATOR_BIN,
                    "--kubeconfig",
                    kcp.kubeconfig,
                    "--namespace",
                    kcp.ns,
                    "--leader-elect",
                    "--lease-namespace",
                    kcp.ns,
                    "--health-addr",
                    addr,
                    "--coalesce-ms",
                    "50",
                    NULL};
    return opit_operator_start(argv, log, name);
}

static void lease_holder(char *out, size_t len)
{
    cJSON *l = opit_get(kc, "coordination.k8s.io/v1", kcp.ns, "leases", "kccl-operator");
    snprintf(out, len, "%s", l ? opit_str(l, "spec", "holderIdentity", NULL) : "(none)");
    cJSON_Delete(l);
}

static void test_leader_election(void **state)
{
    (void)state;
    assert_int_equal(opit_stop(op_pid, SIGTERM, 10000), 0); /* a clean stop exits 0 */
    op_pid = 0;
    char log_b[600], log_c[600], holder[300] = "";
    snprintf(log_b, sizeof(log_b), "%s", kcp_path("op-b.log"));
    snprintf(log_c, sizeof(log_c), "%s", kcp_path("op-c.log"));
    pid_t b = start_elector("op-b", health_port + 1, log_b);
    pid_t c = start_elector("op-c", health_port + 2, log_c);
    for (int i = 0; i < 100; i++, opit_sleep_ms(100)) {
        lease_holder(holder, sizeof(holder));
        if (!strcmp(holder, "op-b") || !strcmp(holder, "op-c"))
            break;
    }
    assert_true(!strcmp(holder, "op-b") || !strcmp(holder, "op-c"));
    int b_leads = !strcmp(holder, "op-b");
    pid_t leader = b_leads ? b : c, standby = b_leads ? c : b;
    const char *leader_log = b_leads ? log_b : log_c, *standby_log = b_leads ? log_c : log_b;
    snprintf(op_log, sizeof(op_log), "%s", leader_log);
    /* both are ready: the leader and the standby (warm caches) */
    for (int port = health_port + 1; port <= health_port + 2; port++) {
        char out[64];
        int rc = 1;
        for (int i = 0; i < 100 && rc != 0; i++, opit_sleep_ms(100))
            rc = kcp_sh(out, sizeof(out), "curl -sf http://127.0.0.1:%d/readyz", port);
        assert_int_equal(rc, 0);
    }
    /* only the leader acts */
    group_up("gle", 1, NULL, 0);
    cJSON_Delete(wait_cg("gle", exists, NULL, 30000, "created by the leader"));
    char needle[200];
    snprintf(needle, sizeof(needle), "created CommGroup %s/gle", kcp.ns);
    assert_int_equal(opit_count_in_file(leader_log, needle), 1);
    assert_int_equal(opit_count_in_file(standby_log, "created CommGroup"), 0);
    /* the leader dies without releasing: the standby takes over after the lease duration */
    int64_t t0 = opit_now_ms();
    assert_int_equal(opit_stop(leader, SIGKILL, 5000), 128 + SIGKILL);
    snprintf(op_log, sizeof(op_log), "%s", standby_log);
    group_up("gle2", 1, NULL, 0);
    cJSON_Delete(wait_cg("gle2", exists, NULL, 45000, "created by the new leader"));
    int64_t took = opit_now_ms() - t0;
    print_message("standby took over and acted %lld ms after the leader was killed\n",
                  (long long)took);
    assert_true(took >= 10000); /* not before the old lease could have expired */
    lease_holder(holder, sizeof(holder));
    assert_string_equal(holder, b_leads ? "op-c" : "op-b");
    snprintf(needle, sizeof(needle), "created CommGroup %s/gle2", kcp.ns);
    assert_int_equal(opit_count_in_file(standby_log, needle), 1);
    /* a clean stop releases the Lease */
    assert_int_equal(opit_stop(standby, SIGTERM, 10000), 0);
    lease_holder(holder, sizeof(holder));
    assert_string_equal(holder, "");
}

/* The operator under a ServiceAccount with exactly operator/README.md's rights: it does all its
 * work (auto-create, Secret, status, failure, rank 0's epoch, Events, Lease) and is never
 * refused. */
static void test_least_privilege(void **state)
{
    (void)state;
    char token[4096], user[4400], ca[700];
    if (op_pid > 0) /* the admin operator of setup() (when this test runs alone) */
        opit_stop(op_pid, SIGTERM, 10000);
    op_pid = 0;
    KCP_MUST("kubectl -n %s apply -f %s/tests/integration/operator/operator-role.yaml >/dev/null",
             kcp.ns, KCCL_SOURCE_DIR);
    int rc = kcp_sh(token, sizeof(token),
                    "kubectl -n %s create token kccl-operator-test --duration 1h", kcp.ns);
    assert_int_equal(rc, 0);
    snprintf(user, sizeof(user), "    token: %s", token);
    snprintf(ca, sizeof(ca), "certificate-authority: %s", kcp.ca);
    const char *kcfg = kcp_kubeconfig("operator-sa.kubeconfig", NULL, ca, user);
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", health_port + 3);
    snprintf(op_log, sizeof(op_log), "%s", kcp_path("op-sa.log"));
    char *argv[] = {KCCL_OPERATOR_BIN,
                    "--kubeconfig",
                    (char *)kcfg,
                    "--namespace",
                    kcp.ns,
                    "--leader-elect",
                    "--lease-namespace",
                    kcp.ns,
                    "--health-addr",
                    addr,
                    "--coalesce-ms",
                    "50",
                    NULL};
    op_pid = opit_operator_start(argv, op_log, "op-sa");
    group_up("gp", 2, NULL, 0);
    cJSON_Delete(wait_cg("gp", phase_is, "Ready", 30000, "Ready under the least-privilege Role"));
    assert_int_equal(opit_pod_status(kc, kcp.ns, "gp-1", "Running", 1, 1, 0, "10.99.2.11"), 0);
    long one = 1;
    cJSON_Delete(wait_cg("gp", epoch_is, &one, 30000, "epoch 1"));
    cJSON *p0 = NULL;
    for (int i = 0; i < 100; i++, opit_sleep_ms(100)) {
        cJSON_Delete(p0);
        p0 = opit_get(kc, "v1", kcp.ns, "pods", "gp-0");
        if (!strcmp(opit_str(p0, "metadata", "annotations", "kccl.io/epoch"), "1"))
            break;
    }
    assert_string_equal(opit_str(p0, "metadata", "annotations", "kccl.io/epoch"), "1");
    cJSON_Delete(p0);
    for (int i = 0; i < 50 && events("gp", "MemberFailed") == 0; i++)
        opit_sleep_ms(100);
    assert_int_equal(events("gp", "MemberFailed"), 1);
    cJSON *cg = opit_get(kc, CG_GV, kcp.ns, "commgroups", "gp");
    assert_non_null(
        strstr(opit_str(cg, "metadata", "annotations", "kccl.io/handled-failures"), "."));
    cJSON_Delete(cg);
    cJSON *s = opit_get(kc, "v1", kcp.ns, "secrets", "kccl-group-gp");
    assert_non_null(s);
    cJSON_Delete(s);
    assert_int_equal(opit_stop(op_pid, SIGTERM, 10000), 0);
    op_pid = 0;
    assert_int_equal(opit_count_in_file(op_log, "orbidden"), 0);
    /* it did the work itself (no other operator runs now) */
    char needle[200];
    snprintf(needle, sizeof(needle), "created CommGroup %s/gp", kcp.ns);
    assert_int_equal(opit_count_in_file(op_log, needle), 1);
    assert_int_equal(opit_count_in_file(op_log, "secrets 0 "), 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probes),
        cmocka_unit_test(test_ready_status_and_secret),
        cmocka_unit_test(test_restart_bumps_epoch_once),
        cmocka_unit_test(test_in_place_restart_and_completion),
        cmocka_unit_test(test_fail_policy),
        cmocka_unit_test(test_violations),
        cmocka_unit_test(test_auto_create),
        cmocka_unit_test(test_secret_garbage_collected),
        cmocka_unit_test(test_leader_election),
        cmocka_unit_test(test_least_privilege),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, setup, teardown);
}
