/*
 * test_webhook_cp.c - kccl-webhook behind the REAL local kube-apiserver (e2e/controlplane/cp.sh).
 *
 * The webhook runs on the host at 127.0.0.1 with a serving certificate made here by the openssl
 * CLI (SAN IP:127.0.0.1); a MutatingWebhookConfiguration with the contract's matchConditions,
 * failurePolicy, reinvocationPolicy and a namespaceSelector (this program's labelled namespaces,
 * minus an excluded one, as the chart excludes kube-system and its own namespace) sends it pods.
 * Pods are created with kubectl (the oracle) and the STORED objects are checked: the injection,
 * the refusal text of a bad annotation, pods that must never reach the webhook (no kccl
 * annotation; excluded namespace), the API server's reinvocation after its own ServiceAccount
 * plugin, and ranks from a real Indexed Job and StatefulSet (the controller manager makes the
 * pods). The configuration is deleted at the end and stale ones from crashed runs at the start:
 * with failurePolicy Fail a leftover would refuse every later kccl pod of the control plane.
 * Exits 77 (skipped) when the control plane is not up.
 */
#include <signal.h>
#include <sys/wait.h>

#include "kube_cp.h"

static pid_t webhook_pid = -1;
static char webhook_log[600], config_name[128], excluded_ns[96], test_label[64];

static void wait_port_file(const char *path, int *port)
{
    for (int i = 0; i < 200; i++) {
        FILE *f = fopen(path, "r");
        if (f != NULL) {
            int ok = fscanf(f, "%d", port) == 1;
            fclose(f);
            if (ok && *port > 0)
                return;
        }
        kcp_sleep_ms(50);
    }
    fail_msg("kccl-webhook did not write %s within 10 s (log: %s)", path, webhook_log);
}

static int start_webhook(void)
{
    const char *port_file = kcp_path("port");
    snprintf(webhook_log, sizeof(webhook_log), "%s", kcp_path("webhook.log"));
    webhook_pid = fork();
    if (webhook_pid == 0) {
        FILE *log = freopen(webhook_log, "w", stderr);
        (void)log;
        execl(KCCL_WEBHOOK_BIN, "kccl-webhook", "--cert", kcp_path("tls.crt"), "--key",
              kcp_path("tls.key"), "--addr", "127.0.0.1", "--port", "0", "--port-file", port_file,
              "--sidecar-image", "ghcr.io/kccl/kccl-sidecar:0.1.0", "--log-level", "debug",
              (char *)NULL);
        _exit(127);
    }
    int port = 0;
    wait_port_file(port_file, &port);
    return port;
}

static void make_certs(void)
{
    KCP_MUST("cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout ca.key -out ca.crt -days 1 -subj /CN=kccl-webhook-test-ca >/dev/null 2>&1 "
             "&& openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "
             "tls.key -out tls.csr -subj /CN=kccl-webhook >/dev/null 2>&1 && printf "
             "'subjectAltName=IP:127.0.0.1\\n' > ext.cnf && openssl x509 -req -in tls.csr -CA "
             "ca.crt -CAkey ca.key -CAcreateserial -out tls.crt -days 1 -extfile ext.cnf "
             ">/dev/null 2>&1",
             kcp.tmp);
}

static void register_webhook(int port)
{
    char ca[8192];
    assert_int_equal(kcp_sh(ca, sizeof(ca), "base64 -w0 %s", kcp_path("ca.crt")), 0);
    char yaml[16384];
    snprintf(yaml, sizeof(yaml),
             "apiVersion: admissionregistration.k8s.io/v1\n"
             "kind: MutatingWebhookConfiguration\n"
             "metadata:\n  name: %s\n  labels: {kccl.io/test: webhook}\n"
             "webhooks:\n"
             "- name: inject.kccl.io\n"
             "  clientConfig:\n    url: https://127.0.0.1:%d/mutate\n    caBundle: %s\n"
             "  rules:\n  - apiGroups: [\"\"]\n    apiVersions: [v1]\n    operations: [CREATE]\n"
             "    resources: [pods]\n    scope: Namespaced\n"
             "  matchConditions:\n  - name: kccl-group-annotation\n"
             "    expression: \"has(object.metadata.annotations) && 'kccl.io/group' in "
             "object.metadata.annotations\"\n"
             "  namespaceSelector:\n    matchLabels: {kccl-wh-test: \"%s\"}\n"
             "    matchExpressions:\n    - key: kubernetes.io/metadata.name\n"
             "      operator: NotIn\n      values: [kube-system, %s]\n"
             "  failurePolicy: Fail\n  reinvocationPolicy: IfNeeded\n  sideEffects: None\n"
             "  admissionReviewVersions: [v1]\n  timeoutSeconds: 10\n",
             config_name, port, ca, test_label, excluded_ns);
    kcp_write(kcp_path("mwc.yaml"), yaml);
    KCP_MUST("kubectl apply -f %s", kcp_path("mwc.yaml"));
}

static const char *pod_yaml(const char *name, const char *annotations)
{
    static char yaml[4096];
    snprintf(yaml, sizeof(yaml),
             "apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n%s"
             "spec:\n  containers:\n  - name: app\n    image: busybox\n"
             "    env: [{name: USER_VAR, value: kept}]\n",
             name, annotations);
    return yaml;
}

/* Creates a pod; returns kubectl's exit status, its output (stderr too) in out. */
static int create_pod(const char *ns, const char *name, const char *annotations, char *out,
                      size_t cap)
{
    const char *file = kcp_path(name);
    kcp_write(file, pod_yaml(name, annotations));
    return kcp_sh(out, cap, "kubectl -n %s create -f %s 2>&1", ns, file);
}

static cJSON *get_json(const char *what)
{
    static char text[1 << 20];
    int rc = kcp_sh(text, sizeof(text), "kubectl get %s -o json", what);
    if (rc != 0)
        fail_msg("kubectl get %s: %s", what, text);
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    return j;
}

static const cJSON *at(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static const cJSON *named(const cJSON *array, const char *name)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, array)
    {
        const char *n = kcp_str(it, "name", NULL);
        if (n != NULL && strcmp(n, name) == 0)
            return it;
    }
    return NULL;
}

/* How many webhook log lines name pod ns/name and contain what. */
static int log_count(const char *ns, const char *name, const char *what)
{
    char pat[256], out[64];
    snprintf(pat, sizeof(pat), "pod %s/%s (", ns, name);
    kcp_sh(out, sizeof(out), "grep -F '%s' '%s' | grep -c -F '%s'", pat, webhook_log, what);
    return atoi(out);
}

/* Waits until the API server sends pods to the new configuration (its informer lags). */
static void wait_config_active(void)
{
    const char *ann = "  annotations: {kccl.io/group: probe, kccl.io/world-size: \"1\", "
                      "kccl.io/rank: \"0\"}\n";
    kcp_write(kcp_path("probe.yaml"), pod_yaml("probe", ann));
    char out[65536];
    for (int i = 0; i < 100; i++) {
        kcp_sh(out, sizeof(out), "kubectl -n %s create --dry-run=server -o json -f %s 2>&1", kcp.ns,
               kcp_path("probe.yaml"));
        if (strstr(out, "kccl-sidecar") != NULL)
            return;
        kcp_sleep_ms(100);
    }
    fail_msg("the webhook configuration did not take effect within 10 s: %s", out);
}

static void cleanup(void);

static int setup(void **state)
{
    kcp_init("wh");
    atexit(cleanup);
    snprintf(test_label, sizeof(test_label), "%d", (int)getpid());
    snprintf(config_name, sizeof(config_name), "kccl-sidecar-injector-test-%d", (int)getpid());
    snprintf(excluded_ns, sizeof(excluded_ns), "%s-x", kcp.ns);
    /* leftovers of a crashed run would refuse kccl pods: remove them first */
    kcp_sh(NULL, 0,
           "kubectl delete mutatingwebhookconfiguration -l kccl.io/test=webhook "
           ">/dev/null 2>&1");
    make_certs();
    int port = start_webhook();
    KCP_MUST("kubectl label namespace %s kccl-wh-test=%s", kcp.ns, test_label);
    KCP_MUST("kubectl create namespace %s && kubectl label namespace %s kccl-wh-test=%s",
             excluded_ns, excluded_ns, test_label);
    KCP_MUST("kubectl -n %s apply -f %s/deploy/rbac/kccl-sidecar.yaml", kcp.ns, KCCL_SOURCE_DIR);
    register_webhook(port);
    wait_config_active();
    return 0;
}

/* Idempotent; also run at exit, so a failed setup leaves no configuration or process. */
static void cleanup(void)
{
    static int done;
    if (done++)
        return;
    kcp_sh(NULL, 0, "kubectl delete mutatingwebhookconfiguration %s >/dev/null 2>&1", config_name);
    if (webhook_pid > 0) {
        kill(webhook_pid, SIGTERM);
        int st = 0;
        waitpid(webhook_pid, &st, 0);
        webhook_pid = -1;
    }
    kcp_sh(NULL, 0, "kubectl delete namespace %s --wait=false >/dev/null 2>&1", excluded_ns);
    kcp_fini();
}

static int teardown(void **state)
{
    cleanup();
    return 0;
}

static void test_pod_is_injected(void **state)
{
    char out[8192];
    int rc = create_pod(kcp.ns, "p-inject",
                        "  annotations: {kccl.io/group: g1, kccl.io/world-size: \"2\", "
                        "kccl.io/rank: \"1\"}\n",
                        out, sizeof(out));
    if (rc != 0)
        fail_msg("create: %s", out);
    char what[128];
    snprintf(what, sizeof(what), "-n %s pod p-inject", kcp.ns);
    cJSON *pod = get_json(what);
    const cJSON *meta = at(pod, "metadata"), *spec = at(pod, "spec");
    assert_string_equal(kcp_str(meta, "labels", "kccl.io/group"), "g1");
    assert_string_equal(kcp_str(meta, "labels", "kccl.io/rank"), "1");
    assert_string_equal(kcp_str(spec, "serviceAccountName", NULL), "kccl-sidecar");
    const cJSON *init = at(spec, "initContainers");
    assert_int_equal(cJSON_GetArraySize(init), 1);
    const cJSON *sc = named(init, "kccl-sidecar");
    assert_non_null(sc);
    assert_string_equal(kcp_str(sc, "restartPolicy", NULL), "Always");
    assert_string_equal(kcp_str(sc, "image", NULL), "ghcr.io/kccl/kccl-sidecar:0.1.0");
    assert_string_equal(cJSON_GetArrayItem(at(sc, "args"), 0)->valuestring, "run");
    assert_non_null(named(at(sc, "env"), "POD_UID"));
    assert_non_null(named(at(sc, "volumeMounts"), "kccl-run"));
    /* the API server re-ran its ServiceAccount plugin after us: the sidecar has the token */
    int token = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, at(sc, "volumeMounts"))
    {
        const char *p = kcp_str(m, "mountPath", NULL);
        token += p && strcmp(p, "/var/run/secrets/kubernetes.io/serviceaccount") == 0;
    }
    assert_int_equal(token, 1);
    assert_string_equal(kcp_str(named(at(spec, "volumes"), "kccl-secret"), "secret", "secretName"),
                        "kccl-group-g1");
    assert_non_null(at(named(at(spec, "volumes"), "kccl-run"), "emptyDir"));
    const cJSON *app = named(at(spec, "containers"), "app");
    const cJSON *env = at(app, "env");
    assert_string_equal(kcp_str(cJSON_GetArrayItem(env, 0), "name", NULL), "USER_VAR");
    assert_string_equal(kcp_str(named(env, "KCCL_BOOTSTRAP_FILE"), "value", NULL),
                        "/var/run/kccl/bootstrap");
    assert_non_null(named(env, "KCCL_NODE_NAME"));
    assert_string_equal(kcp_str(named(at(app, "volumeMounts"), "kccl-secret"), "mountPath", NULL),
                        "/var/run/kccl-secret");
    cJSON_Delete(pod);
    /* admitted once with a patch; the reinvocation after the in-tree plugin changed the pod
     * was answered without one (else the sidecar would be there twice) */
    assert_int_equal(log_count(kcp.ns, "p-inject", "): injected"), 1);
    assert_true(log_count(kcp.ns, "p-inject", "already injected") >= 1);
}

static void test_bad_annotation_is_refused(void **state)
{
    char out[8192];
    int rc = create_pod(kcp.ns, "p-bad",
                        "  annotations: {kccl.io/group: g1, kccl.io/world-size: zero, "
                        "kccl.io/rank: \"0\"}\n",
                        out, sizeof(out));
    assert_int_not_equal(rc, 0);
    if (strstr(out, "admission webhook \"inject.kccl.io\" denied the request: annotation "
                    "kccl.io/world-size is \"zero\", not a world size: set it to the number of "
                    "ranks in group g1") == NULL)
        fail_msg("unexpected kubectl output: %s", out);
    rc = create_pod(kcp.ns, "p-bad2",
                    "  annotations: {kccl.io/group: Bad_Group, kccl.io/world-size: \"2\", "
                    "kccl.io/rank: \"0\"}\n",
                    out, sizeof(out));
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(out, "annotation kccl.io/group is \"Bad_Group\""));
    assert_non_null(strstr(out, "rename the group"));
    assert_int_not_equal(kcp_sh(NULL, 0, "kubectl -n %s get pod p-bad >/dev/null 2>&1", kcp.ns), 0);
}

static void test_pods_that_never_reach_the_webhook(void **state)
{
    char out[8192], what[160];
    /* no kccl annotation: filtered by matchConditions */
    int rc = create_pod(kcp.ns, "p-none", "  annotations: {team: a}\n", out, sizeof(out));
    if (rc != 0)
        fail_msg("create: %s", out);
    /* a kccl pod in the excluded namespace: filtered by namespaceSelector */
    rc = create_pod(excluded_ns, "p-excluded",
                    "  annotations: {kccl.io/group: g1, kccl.io/world-size: \"2\", "
                    "kccl.io/rank: \"0\"}\n",
                    out, sizeof(out));
    if (rc != 0)
        fail_msg("create: %s", out);
    snprintf(what, sizeof(what), "-n %s pod p-none", kcp.ns);
    cJSON *pod = get_json(what);
    assert_null(at(at(pod, "spec"), "initContainers"));
    assert_string_equal(kcp_str(at(pod, "spec"), "serviceAccountName", NULL), "default");
    assert_null(at(at(pod, "metadata"), "labels"));
    cJSON_Delete(pod);
    snprintf(what, sizeof(what), "-n %s pod p-excluded", excluded_ns);
    pod = get_json(what);
    assert_null(at(at(pod, "spec"), "initContainers"));
    cJSON_Delete(pod);
    assert_int_equal(log_count(kcp.ns, "p-none", ""), 0);
    assert_int_equal(log_count(excluded_ns, "p-excluded", ""), 0);
}

static void test_warning_is_shown(void **state)
{
    char out[8192];
    KCP_MUST("kubectl -n %s create serviceaccount trainer", kcp.ns);
    const char *file = kcp_path("p-warn");
    kcp_write(file, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p-warn\n  annotations: "
                    "{kccl.io/group: g1, kccl.io/world-size: \"2\", kccl.io/rank: \"0\"}\n"
                    "spec:\n  serviceAccountName: trainer\n"
                    "  containers: [{name: app, image: busybox}]\n");
    int rc = kcp_sh(out, sizeof(out), "kubectl -n %s create -f %s 2>&1", kcp.ns, file);
    if (rc != 0 || strstr(out, "Warning: the pod runs as ServiceAccount trainer, not "
                               "kccl-sidecar") == NULL)
        fail_msg("kubectl (%d): %s", rc, out);
}

/* Waits for n pods matching selector and returns them (a List). */
static cJSON *wait_pods(const char *selector, int n)
{
    char what[256];
    snprintf(what, sizeof(what), "-n %s pods -l %s", kcp.ns, selector);
    for (int i = 0; i < 300; i++) {
        cJSON *list = get_json(what);
        if (cJSON_GetArraySize(at(list, "items")) == n)
            return list;
        cJSON_Delete(list);
        kcp_sleep_ms(100);
    }
    fail_msg("no %d pods with %s within 30 s", n, selector);
    return NULL;
}

static void assert_ranked(const cJSON *list, const char *group, int world)
{
    int seen = 0;
    const cJSON *pod;
    cJSON_ArrayForEach(pod, at(list, "items"))
    {
        const cJSON *meta = at(pod, "metadata");
        const char *rank = kcp_str(meta, "labels", "kccl.io/rank");
        assert_non_null(rank);
        assert_string_equal(kcp_str(meta, "labels", "kccl.io/group"), group);
        assert_string_equal(kcp_str(meta, "annotations", "kccl.io/rank"), rank);
        assert_non_null(named(at(at(pod, "spec"), "initContainers"), "kccl-sidecar"));
        int r = atoi(rank);
        if (r < 0 || r >= world || r > 30)
            fail_msg("rank %d is not in [0, %d)", r, world);
        seen |= 1 << r;
    }
    assert_int_equal(seen, (1 << world) - 1);
}

static void test_indexed_job_ranks(void **state)
{
    const char *yaml =
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: train\nspec:\n"
        "  completionMode: Indexed\n  completions: 3\n  parallelism: 3\n  template:\n"
        "    metadata:\n      annotations: {kccl.io/group: train, kccl.io/world-size: \"3\"}\n"
        "    spec:\n      restartPolicy: Never\n      containers: [{name: app, image: busybox}]\n";
    kcp_write(kcp_path("job.yaml"), yaml);
    KCP_MUST("kubectl -n %s create -f %s", kcp.ns, kcp_path("job.yaml"));
    cJSON *list = wait_pods("job-name=train", 3);
    const cJSON *pod;
    cJSON_ArrayForEach(pod, at(list, "items"))
    {
        const cJSON *meta = at(pod, "metadata");
        assert_string_equal(
            kcp_str(meta, "labels", "kccl.io/rank"),
            kcp_str(meta, "annotations", "batch.kubernetes.io/job-completion-index"));
    }
    assert_ranked(list, "train", 3);
    cJSON_Delete(list);
}

static void test_statefulset_ranks(void **state)
{
    const char *yaml = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: ring\nspec:\n"
                       "  serviceName: ring\n  replicas: 2\n  podManagementPolicy: Parallel\n"
                       "  selector: {matchLabels: {app: ring}}\n  template:\n    metadata:\n"
                       "      labels: {app: ring}\n"
                       "      annotations: {kccl.io/group: ring, kccl.io/world-size: \"2\"}\n"
                       "    spec:\n      containers: [{name: app, image: busybox}]\n";
    kcp_write(kcp_path("sts.yaml"), yaml);
    KCP_MUST("kubectl -n %s create -f %s", kcp.ns, kcp_path("sts.yaml"));
    cJSON *list = wait_pods("app=ring", 2);
    assert_ranked(list, "ring", 2);
    cJSON_Delete(list);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pod_is_injected),
        cmocka_unit_test(test_bad_annotation_is_refused),
        cmocka_unit_test(test_pods_that_never_reach_the_webhook),
        cmocka_unit_test(test_warning_is_shown),
        cmocka_unit_test(test_indexed_job_ranks),
        cmocka_unit_test(test_statefulset_ranks),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
