/*
 * test_sidecar_errors.c - what kccl-sidecar does with bad annotations and
 * missing permissions, against the REAL local control plane. Each annotation
 * error must give a Warning Event on the pod with its reason, no handoff, and
 * a sidecar that keeps running (readiness false, visible in kubectl describe);
 * fixing the annotation must bring it back. RBAC: the shipped Role must be
 * enough and no more, and a pod in another namespace must be refused.
 */
#include <sys/wait.h>

#include "sc_itest.h"

static int probe(pk_pod_t *p)
{
    char cmd[1400];
    snprintf(cmd, sizeof(cmd), "'%s' probe '%s' >/dev/null 2>&1", sc_kit.sidecar_bin, p->handoff);
    int st = system(cmd); // NOLINT(cert-env33-c): runs the binary as a kubelet's probe would
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The pod's sidecar posts reason (message holding want), writes no handoff, keeps running. */
static void expect_problem(pk_pod_t *p, const char *reason, const char *want)
{
    char msg[1024] = "";
    if (pk_event_wait(&sc_kit, p, reason, 10000, msg, sizeof(msg)) != 0) {
        char log[4096] = "";
        pk_events(&sc_kit, p, NULL, msg, sizeof(msg));
        pk_sh(&sc_kit, log, sizeof(log), "tail -15 '%s/sidecar.log'", p->dir);
        fail_msg("pod %s: no %s Event (last Event: %s); its log:\n%s", p->name, reason, msg, log);
    }
    if (want && strstr(msg, want) == NULL)
        fail_msg("pod %s: %s Event says \"%s\", which does not mention \"%s\"", p->name, reason,
                 msg, want);
    for (int i = 0; i < 100 && pk_handoff_exists(p); i++)
        pk_sleep_ms(20); /* a handoff written before the problem showed goes away */
    assert_false(pk_handoff_exists(p));
    assert_int_not_equal(probe(p), 0);
    assert_int_equal(pk_wait(p->sidecar, 0), -1); /* still running */
}

static pk_pod_t *bad_pod(const char *name, const char *group, const char *rank, const char *world,
                         const char *more)
{
    char ann[512];
    sc_ann(ann, sizeof(ann), group, rank, world, more);
    pk_pod_t *p = sc_pod(name, ann, NULL, "node-0");
    sc_start(p, NULL);
    return p;
}

static void test_missing_rank_then_fixed(void **state)
{
    char buf[128], want[64];
    (void)state;
    pk_pod_t *p = bad_pod("norank", "g-norank", "", "2", NULL);
    expect_problem(p, "InvalidRank", "no rank");
    assert_int_equal(pk_events(&sc_kit, p, "InvalidRank", NULL, 0), 1); /* posted once */
    assert_int_equal(pk_annotate(&sc_kit, p, "{\"kccl.io/rank\":\"1\"}"), 0);
    snprintf(want, sizeof(want), "%s:29500", p->ip);
    for (int i = 0; i < 200; i++) { /* fixed: it publishes its endpoint and waits for rank 0 */
        if (strcmp(sc_pod_meta(p, "annotations", "kccl.io/endpoint", buf, sizeof(buf)), want) == 0)
            break;
        pk_sleep_ms(25);
    }
    assert_string_equal(buf, want);
    assert_int_equal(pk_sidecar_stop(p, SIGTERM, 3000), 0);
}

static void test_non_numeric_rank(void **state)
{
    (void)state;
    pk_pod_t *p = bad_pod("nanrank", "g-nan", "one", "2", NULL);
    expect_problem(p, "InvalidRank", "\"one\"");
    pk_pod_t *q = bad_pod("negrank", "g-neg", "-1", "2", NULL);
    expect_problem(q, "InvalidRank", "\"-1\"");
    assert_int_equal(pk_sidecar_stop(p, SIGTERM, 3000), 0);
    assert_int_equal(pk_sidecar_stop(q, SIGTERM, 3000), 0);
}

static void test_rank_out_of_range(void **state)
{
    (void)state;
    pk_pod_t *p = bad_pod("bigrank", "g-big", "4", "4", NULL);
    expect_problem(p, "RankOutOfRange", "0 to 3");
    assert_int_equal(pk_sidecar_stop(p, SIGTERM, 3000), 0);
}

static void test_bad_world_size_and_group(void **state)
{
    (void)state;
    pk_pod_t *a = bad_pod("noworld", "g-noworld", "0", "", NULL);
    expect_problem(a, "InvalidWorldSize", "missing");
    pk_pod_t *b = bad_pod("nanworld", "g-nanworld", "0", "four", NULL);
    expect_problem(b, "InvalidWorldSize", "\"four\"");
    pk_pod_t *c = bad_pod("badgroup", "Not A Label!", "0", "1", NULL);
    expect_problem(c, "InvalidGroup", "label value");
    pk_pod_t *d = bad_pod("badepoch", "g-epoch", "0", "1", "\"kccl.io/epoch\":\"x\"");
    expect_problem(d, "InvalidEpoch", NULL);
    pk_pod_t *e = bad_pod("badrpp", "g-rpp", "0", "1", "\"kccl.io/ranks-per-pod\":\"2\"");
    expect_problem(e, "UnsupportedRanksPerPod", NULL);
    pk_pod_t *pods[] = {a, b, c, d, e};
    sc_stop_all(pods, 5);
}

static void test_missing_group(void **state)
{
    (void)state;
    pk_pod_t *p = sc_pod("nogroup", "{\"kccl.io/rank\":\"0\"}", NULL, "node-0");
    sc_start(p, NULL);
    expect_problem(p, "MissingGroup", "kccl.io/group");
    assert_int_equal(pk_sidecar_stop(p, SIGTERM, 3000), 0);
}

/* Two pods claim rank 0: both get DuplicateRank, nobody gets a handoff. */
static void test_duplicate_rank0(void **state)
{
    (void)state;
    pk_pod_t *a = bad_pod("dup-a", "g-dup", "0", "2", NULL);
    pk_pod_t *member = bad_pod("dup-1", "g-dup", "1", "2", NULL);
    pk_pod_t *b = bad_pod("dup-b", "g-dup", "0", "2", NULL);
    expect_problem(a, "DuplicateRank", "dup-b");
    expect_problem(b, "DuplicateRank", "dup-a");
    for (int i = 0; i < 100 && pk_handoff_exists(member); i++)
        pk_sleep_ms(20);
    assert_false(pk_handoff_exists(member));
    pk_pod_t *pods[] = {a, b, member};
    sc_stop_all(pods, 3);
}

/* The world size changes after the group formed: rank 0 and the member both say so. */
static void test_world_size_changes(void **state)
{
    pk_pod_t *pods[2];
    (void)state;
    sc_group("wsc", 2, pods);
    sc_start(pods[0], NULL);
    sc_start(pods[1], NULL);
    sc_check_group(pods, 2, 0, 29500, NULL);
    assert_int_equal(pk_annotate(&sc_kit, pods[0], "{\"kccl.io/world-size\":\"3\"}"), 0);
    expect_problem(pods[0], "WorldSizeChanged", "changed from 2");
    expect_problem(pods[1], "WorldSizeChanged", "says 3");
    sc_stop_all(pods, 2);
}

/* A member that disagrees with rank 0 from the start. */
static void test_world_size_mismatch(void **state)
{
    (void)state;
    pk_pod_t *r = bad_pod("wsm-0", "g-wsm", "0", "2", NULL);
    pk_pod_t *m = bad_pod("wsm-1", "g-wsm", "1", "3", NULL);
    expect_problem(m, "WorldSizeMismatch", "rank 0 (pod wsm-0)");
    pk_pod_t *pods[] = {r, m};
    sc_stop_all(pods, 2);
}

/* A sidecar whose pod claims another namespace: 403 from the API, exit 1, no handoff. */
static void test_forbidden_in_other_namespace(void **state)
{
    char ann[256], log[800], out[4096];
    (void)state;
    sc_ann(ann, sizeof(ann), "g-other", "0", "1", NULL);
    pk_pod_t *p = sc_pod("other-ns", ann, NULL, "node-0");
    const char *extra[] = {"POD_NAMESPACE=kube-system", NULL};
    sc_start(p, extra);
    int rc = pk_wait(p->sidecar, 15000);
    p->sidecar = 0;
    assert_int_equal(rc, 1);
    assert_false(pk_handoff_exists(p));
    snprintf(log, sizeof(log), "cat '%s/sidecar.log'", p->dir);
    assert_int_equal(pk_sh(&sc_kit, out, sizeof(out), "%s", log), 0);
    if (strstr(out, "403") == NULL || strstr(out, "deploy/rbac") == NULL)
        fail_msg("the log does not explain the 403: %s", out);
}

/* A CA that did not sign the apiserver's certificate: the TLS handshake is refused, exit 1. */
static void test_wrong_ca_refused(void **state)
{
    char ann[256], out[4096];
    (void)state;
    sc_ann(ann, sizeof(ann), "g-ca", "0", "1", NULL);
    pk_pod_t *p = sc_pod("wrong-ca", ann, NULL, "node-0");
    int rc = pk_sh(&sc_kit, out, sizeof(out),
                   "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
                   "-subj /CN=not-the-cluster-ca -keyout '%s/other.key' -out '%s/sa/ca.crt' 2>&1",
                   p->dir, p->dir);
    assert_int_equal(rc, 0);
    const char *extra[] = {"KCCL_SIDECAR_API_TIMEOUT=3", NULL};
    sc_start(p, extra);
    rc = pk_wait(p->sidecar, 20000);
    p->sidecar = 0;
    assert_int_equal(rc, 1);
    assert_false(pk_handoff_exists(p));
    assert_int_equal(pk_sh(&sc_kit, out, sizeof(out), "cat '%s/sidecar.log'", p->dir), 0);
    if (strstr(out, "TLS") == NULL)
        fail_msg("the log does not name the TLS failure: %s", out);
}

/* The shipped Role: exactly what the sidecar needs, in its own namespace only (asked of the
 * apiserver's authorizer with SubjectAccessReviews). */
static void test_role_is_least_privilege(void **state)
{
    static const struct {
        const char *verb, *group, *resource, *sub;
        int other_ns; /* 0: own namespace, 1: "default", 2: cluster scope */
        int allowed;
    } cases[] = {
        {"get", "", "pods", NULL, 0, 1},
        {"watch", "", "pods", NULL, 0, 1},
        {"patch", "", "pods", NULL, 0, 1},
        {"list", "", "pods", NULL, 0, 1},
        {"create", "", "events", NULL, 0, 1},
        {"get", "kccl.io", "commgroups", NULL, 0, 1},
        {"watch", "kccl.io", "commgroups", NULL, 0, 1},
        {"delete", "", "pods", NULL, 0, 0},
        {"create", "", "pods", NULL, 0, 0},
        {"update", "", "pods", NULL, 0, 0},
        {"patch", "", "pods", "status", 0, 0},
        {"create", "", "pods", "exec", 0, 0},
        {"get", "", "secrets", NULL, 0, 0},
        {"list", "", "secrets", NULL, 0, 0},
        {"delete", "", "events", NULL, 0, 0},
        {"patch", "kccl.io", "commgroups", NULL, 0, 0},
        {"patch", "kccl.io", "commgroups", "status", 0, 0},
        {"get", "", "pods", NULL, 1, 0},
        {"patch", "", "pods", NULL, 1, 0},
        {"create", "", "events", NULL, 1, 0},
        {"list", "", "pods", NULL, 2, 0},
        {"list", "", "nodes", NULL, 2, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *ns = cases[i].other_ns == 0   ? sc_kit.ns
                         : cases[i].other_ns == 1 ? "default"
                                                  : NULL;
        int got =
            pk_sa_can(&sc_kit, cases[i].verb, cases[i].group, cases[i].resource, cases[i].sub, ns);
        if (got != cases[i].allowed)
            fail_msg("%s %s%s%s%s%s in %s: %s (want %s)", cases[i].verb, cases[i].resource,
                     cases[i].sub ? "/" : "", cases[i].sub ? cases[i].sub : "",
                     cases[i].group[0] ? "." : "", cases[i].group, ns ? ns : "the cluster",
                     got < 0 ? "error"
                     : got   ? "allowed"
                             : "denied",
                     cases[i].allowed ? "allowed" : "denied");
    }
}

/* Nothing any sidecar logged holds its token. */
static void test_no_token_in_logs(void **state)
{
    char out[256];
    (void)state;
    int n = 0;
    for (int i = 0; i < sc_kit.npods; i++) {
        pk_pod_t *p = &sc_kit.pods[i];
        int rc = pk_sh(&sc_kit, out, sizeof(out),
                       "test -s '%s/sa/token' && test -f '%s/sidecar.log' && "
                       "grep -cF -f '%s/sa/token' '%s/sidecar.log'",
                       p->dir, p->dir, p->dir, p->dir);
        if (rc == 0)
            fail_msg("pod %s: its token is in its log", p->name);
        n += rc == 1; /* grep: no match */
    }
    assert_true(n > 0);
}

int main(void)
{
    sc_itest_init("err", 48, 280);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_rank_then_fixed),
        cmocka_unit_test(test_non_numeric_rank),
        cmocka_unit_test(test_rank_out_of_range),
        cmocka_unit_test(test_bad_world_size_and_group),
        cmocka_unit_test(test_missing_group),
        cmocka_unit_test(test_duplicate_rank0),
        cmocka_unit_test(test_world_size_changes),
        cmocka_unit_test(test_world_size_mismatch),
        cmocka_unit_test(test_forbidden_in_other_namespace),
        cmocka_unit_test(test_wrong_ca_refused),
        cmocka_unit_test(test_role_is_least_privilege),
        cmocka_unit_test(test_no_token_in_logs),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sc_itest_cleanup();
    return rc;
}
