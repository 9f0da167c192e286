/*
 * test_kube_cp_auth.c - the kube client's configuration and authentication
 * against the real control plane: a client certificate (cp.sh's admin
 * kubeconfig), a ServiceAccount token (TokenRequest via kubectl) with a Role
 * like the sidecar's, Forbidden outside that Role, a wrong CA (a TLS error
 * naming the problem, fast), insecure-skip-tls-verify, a revoked token (401)
 * followed by a new token written into the token file, and the in-cluster
 * configuration from a temporary service-account directory holding a
 * pod-bound token.
 */
#include "kube_cp.h"

static void test_client_certificate(void **state)
{
    kccl_kube_client_t c = kcp_admin();
    cJSON *v = NULL;
    assert_int_equal(kccl_kube_get(c, "/version", NULL, &v, NULL), KCCL_OK);
    assert_string_equal(kcp_str(v, "gitVersion", NULL), kcp.version);
    cJSON_Delete(v);
    char path[256];
    assert_int_equal(kccl_kube_path(path, sizeof(path), "v1", NULL, "namespaces", kcp.ns, NULL),
                     KCCL_OK);
    cJSON *ns = NULL;
    assert_int_equal(kccl_kube_get(c, path, NULL, &ns, NULL), KCCL_OK);
    assert_string_equal(kcp_str(ns, "metadata", "name"), kcp.ns);
    cJSON_Delete(ns);
    kccl_kube_client_destroy(c);
}

static const char *whoami(kccl_kube_client_t c, char *buf, size_t cap)
{
    cJSON *body = cJSON_Parse("{\"apiVersion\":\"authentication.k8s.io/v1\","
                              "\"kind\":\"SelfSubjectReview\"}");
    cJSON *out = NULL;
    assert_int_equal(kccl_kube_create(c, "/apis/authentication.k8s.io/v1/selfsubjectreviews", body,
                                      NULL, &out, NULL),
                     KCCL_OK);
    const cJSON *st = cJSON_GetObjectItem(out, "status");
    snprintf(buf, cap, "%s", kcp_str(st, "userInfo", "username"));
    cJSON_Delete(out);
    cJSON_Delete(body);
    return buf;
}

static int no_event_expected(void *arg, const kccl_kube_event_t *ev)
{
    fail_msg("unexpected %s event", kccl_kube_event_type_str(ev->type));
    return -1;
}

static void test_token_user_and_forbidden(void **state)
{
    char token[4096], user[4200], me[256], want[256], path[256];
    kcp_service_account("sidecar", NULL, token, sizeof(token));
    char ca_line[700];
    snprintf(ca_line, sizeof(ca_line), "certificate-authority: %s", kcp.ca); /* file form */
    snprintf(user, sizeof(user), "    token: %s", token);
    kccl_kube_client_t c = kcp_client(kcp_kubeconfig("token.kubeconfig", NULL, ca_line, user));
    snprintf(want, sizeof(want), "system:serviceaccount:%s:sidecar", kcp.ns);
    assert_string_equal(whoami(c, me, sizeof(me)), want);

    /* allowed: list pods in its own namespace */
    cJSON *list = NULL;
    assert_int_equal(kccl_kube_path(path, sizeof(path), "v1", kcp.ns, "pods", NULL, NULL), KCCL_OK);
    assert_int_equal(kccl_kube_list(c, path, NULL, NULL, &list, NULL), KCCL_OK);
    assert_non_null(cJSON_GetObjectItem(list, "items"));
    cJSON_Delete(list);

    /* forbidden: another namespace, and secrets in its own */
    kccl_kube_result_t res;
    assert_int_equal(kccl_kube_list(c, "/api/v1/namespaces/default/pods", NULL, NULL, NULL, &res),
                     KCCL_ERR_AUTH);
    assert_true(kccl_kube_is_forbidden(&res));
    assert_string_equal(res.reason, "Forbidden");
    assert_non_null(strstr(res.message, "cannot list resource \"pods\""));
    assert_non_null(strstr(res.message, "\"default\""));
    assert_non_null(strstr(kccl_last_error(), "403 Forbidden"));
    assert_int_equal(res.attempts, 1); /* never retried */
    assert_int_equal(kccl_kube_patch(c, "/api/v1/namespaces/default/pods/x", KCCL_KUBE_PATCH_MERGE,
                                     "{}", NULL, NULL, &res),
                     KCCL_ERR_AUTH);
    assert_true(kccl_kube_is_forbidden(&res));
    assert_int_equal(kccl_kube_path(path, sizeof(path), "v1", kcp.ns, "secrets", NULL, NULL),
                     KCCL_OK);
    assert_int_equal(kccl_kube_list(c, path, NULL, NULL, NULL, &res), KCCL_ERR_AUTH);
    assert_true(kccl_kube_is_forbidden(&res));
    /* a watch outside the Role ends at once with the same answer */
    kccl_kube_watch_opts_t wo = {.path = "/api/v1/namespaces/default/pods", .timeout_ms = 5000};
    assert_int_equal(kccl_kube_watch(c, &wo, no_event_expected, NULL, &res), KCCL_ERR_AUTH);
    assert_true(kccl_kube_is_forbidden(&res));
    kccl_kube_client_destroy(c);
}

static void test_wrong_ca(void **state)
{
    /* a CA that did not sign the apiserver's certificate */
    KCP_MUST("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-subj /CN=not-the-cluster-ca -days 1 -keyout '%s' -out '%s' 2>&1",
             kcp_path("other-ca.key"), kcp_path("other-ca.crt"));
    char ca_line[700];
    snprintf(ca_line, sizeof(ca_line), "certificate-authority: %s", kcp_path("other-ca.crt"));
    kccl_kube_client_t c =
        kcp_client(kcp_kubeconfig("wrong-ca.kubeconfig", NULL, ca_line, "    token: x"));
    kccl_kube_result_t res;
    kccl_kube_opts_t o = {.timeout_ms = 10000};
    int64_t t0 = kccl_kube_now_ms();
    assert_int_equal(kccl_kube_get(c, "/version", &o, NULL, &res), KCCL_ERR_AUTH);
    assert_true(kccl_kube_now_ms() - t0 < 2000); /* not retried until the deadline */
    assert_int_equal(res.http_status, 0);
    assert_string_equal(res.reason, "TLS");
    assert_non_null(strstr(res.message, "certificate"));
    assert_non_null(strstr(res.message, "certificate authority of kubeconfig"));
    print_message("    wrong CA: %s\n", kccl_last_error());
    kccl_kube_client_destroy(c);

    /* the same with verification off works (tests only) */
    c = kcp_client(kcp_kubeconfig("insecure.kubeconfig", NULL, "insecure-skip-tls-verify: true",
                                  "    token: x"));
    /* reaches the apiserver: the bogus token is refused, but TLS was fine */
    assert_int_equal(kccl_kube_get(c, "/api/v1/namespaces", &o, NULL, &res), KCCL_ERR_AUTH);
    assert_int_equal(res.http_status, 401);
    kccl_kube_client_destroy(c);
}

static void test_wrong_client_certificate(void **state)
{
    /* A client certificate from a CA the apiserver does not trust. The apiserver does not
     * fail the TLS handshake for it: the certificate authenticates nobody, and the request,
     * having no other credentials, is refused with 401 - quickly, without retries. */
    KCP_MUST("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-subj /CN=mallory -days 1 -keyout '%s' -out '%s' 2>&1",
             kcp_path("mallory.key"), kcp_path("mallory.crt"));
    char ca_line[700], user[2048];
    snprintf(ca_line, sizeof(ca_line), "certificate-authority: %s", kcp.ca);
    snprintf(user, sizeof(user), "    client-certificate: %s\n    client-key: %s",
             kcp_path("mallory.crt"), kcp_path("mallory.key"));
    kccl_kube_client_t c = kcp_client(kcp_kubeconfig("mallory.kubeconfig", NULL, ca_line, user));
    kccl_kube_result_t res;
    kccl_kube_opts_t o = {.timeout_ms = 10000};
    int64_t t0 = kccl_kube_now_ms();
    kccl_status_t st = kccl_kube_get(c, "/api/v1/namespaces", &o, NULL, &res);
    print_message("    untrusted client certificate: %s (%s)\n", kccl_status_name(st),
                  kccl_last_error());
    assert_int_equal(st, KCCL_ERR_AUTH);
    assert_true(kccl_kube_now_ms() - t0 < 3000);
    kccl_kube_client_destroy(c);
}

static void test_401_then_new_token_in_file(void **state)
{
    char token[4096], good[4096], user[4200];
    /* a token whose ServiceAccount was deleted: revoked, the apiserver says 401 */
    kcp_service_account("doomed", NULL, token, sizeof(token));
    KCP_MUST("kubectl -n %s delete serviceaccount doomed --wait=true 2>&1", kcp.ns);
    kcp_service_account("survivor", NULL, good, sizeof(good));
    const char *tokfile = kcp_path("token");
    kcp_write(tokfile, token);
    char ca_line[700];
    snprintf(ca_line, sizeof(ca_line), "certificate-authority: %s", kcp.ca);
    snprintf(user, sizeof(user), "    tokenFile: %s", tokfile);
    kccl_kube_client_t c = kcp_client(kcp_kubeconfig("tokfile.kubeconfig", NULL, ca_line, user));
    char path[256];
    assert_int_equal(kccl_kube_path(path, sizeof(path), "v1", kcp.ns, "pods", NULL, NULL), KCCL_OK);
    kccl_kube_result_t res;
    /* deletion of the ServiceAccount may take a moment to invalidate the token */
    kccl_status_t st = KCCL_OK;
    for (int i = 0; i < 50 && (st = kccl_kube_list(c, path, NULL, NULL, NULL, &res)) == KCCL_OK;
         i++)
        kcp_sleep_ms(100);
    assert_int_equal(st, KCCL_ERR_AUTH);
    assert_int_equal(res.http_status, 401);
    assert_int_equal(res.attempts, 1); /* the file did not change: no retry */
    assert_null(strstr(kccl_last_error(), token));

    /* the token is rotated on disk; the next call gets a 401, re-reads, retries once */
    kcp_write(tokfile, good);
    assert_int_equal(kccl_kube_list(c, path, NULL, NULL, NULL, &res), KCCL_OK);
    assert_int_equal(res.attempts, 2);
    /* and keeps using it */
    assert_int_equal(kccl_kube_list(c, path, NULL, NULL, NULL, &res), KCCL_OK);
    assert_int_equal(res.attempts, 1);
    kccl_kube_client_destroy(c);
}

static void test_in_cluster_pod_bound_token(void **state)
{
    char token[4096], path[256];
    kccl_kube_client_t admin = kcp_admin();
    /* the pod first (it stays Pending: no kubelet), then a token bound to it */
    kcp_sh(NULL, 0, "kubectl -n %s create serviceaccount sidecar >/dev/null 2>&1", kcp.ns);
    cJSON *pod = kcp_pod("rank-0", "g1", "sidecar");
    assert_int_equal(kccl_kube_path(path, sizeof(path), "v1", kcp.ns, "pods", NULL, NULL), KCCL_OK);
    assert_int_equal(kccl_kube_create(admin, path, pod, NULL, NULL, NULL), KCCL_OK);
    cJSON_Delete(pod);
    kcp_service_account("sidecar", "rank-0", token, sizeof(token));

    /* a service-account directory as the kubelet would project it */
    const char *sa = kcp_path("serviceaccount");
    mkdir(sa, 0700);
    char f[700];
    snprintf(f, sizeof(f), "%s/token", sa);
    kcp_write(f, token);
    snprintf(f, sizeof(f), "%s/namespace", sa);
    kcp_write(f, kcp.ns);
    KCP_MUST("cp '%s' '%s/ca.crt'", kcp.ca, sa);
    setenv("KCCL_KUBE_SA_DIR", sa, 1);
    setenv("KUBERNETES_SERVICE_HOST", kcp.bridge_ip, 1);
    setenv("KUBERNETES_SERVICE_PORT", kcp.port, 1);
    unsetenv("KUBECONFIG");

    kccl_kube_config_t cfg = NULL;
    assert_int_equal(kccl_kube_config_load(NULL, &cfg), KCCL_OK);
    assert_true(cfg->in_cluster);
    assert_string_equal(kccl_kube_config_namespace(cfg), kcp.ns);
    kccl_kube_client_t c = NULL;
    assert_int_equal(kccl_kube_client_create(cfg, &c), KCCL_OK);

    /* what a sidecar does: read its own pod, annotate it */
    assert_int_equal(kccl_kube_path(path, sizeof(path), "v1", kcp.ns, "pods", "rank-0", NULL),
                     KCCL_OK);
    cJSON *me = NULL;
    assert_int_equal(kccl_kube_get(c, path, NULL, &me, NULL), KCCL_OK);
    assert_string_equal(kcp_str(me, "metadata", "name"), "rank-0");
    cJSON_Delete(me);
    assert_int_equal(kccl_kube_patch(c, path, KCCL_KUBE_PATCH_MERGE,
                                     "{\"metadata\":{\"annotations\":{\"kccl.io/endpoint\":"
                                     "\"10.244.0.7:29500\"}}}",
                                     NULL, NULL, NULL),
                     KCCL_OK);
    char out[256];
    assert_int_equal(kcp_sh(out, sizeof(out),
                            "kubectl -n %s get pod rank-0 -o "
                            "jsonpath='{.metadata.annotations.kccl\\.io/endpoint}'",
                            kcp.ns),
                     0);
    assert_string_equal(out, "10.244.0.7:29500");
    /* the token really is pod-bound: the apiserver reports the pod */
    cJSON *body = cJSON_Parse("{\"apiVersion\":\"authentication.k8s.io/v1\","
                              "\"kind\":\"SelfSubjectReview\"}");
    cJSON *rev = NULL;
    assert_int_equal(kccl_kube_create(c, "/apis/authentication.k8s.io/v1/selfsubjectreviews", body,
                                      NULL, &rev, NULL),
                     KCCL_OK);
    const cJSON *extra = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(rev, "status"), "userInfo"), "extra");
    const cJSON *podname =
        cJSON_GetArrayItem(cJSON_GetObjectItem(extra, "authentication.kubernetes.io/pod-name"), 0);
    assert_true(cJSON_IsString(podname));
    assert_string_equal(podname->valuestring, "rank-0");
    cJSON_Delete(rev);
    cJSON_Delete(body);
    unsetenv("KUBERNETES_SERVICE_HOST");
    kccl_kube_client_destroy(c);
    kccl_kube_client_destroy(admin);
}

int main(void)
{
    if (!getenv("KCCL_LOG_LEVEL"))
        setenv("KCCL_LOG_LEVEL", "none", 1);
    kcp_init("auth");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_certificate),
        cmocka_unit_test(test_token_user_and_forbidden),
        cmocka_unit_test(test_wrong_ca),
        cmocka_unit_test(test_wrong_client_certificate),
        cmocka_unit_test(test_401_then_new_token_in_file),
        cmocka_unit_test(test_in_cluster_pod_bound_token),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    kcp_fini();
    return rc;
}
