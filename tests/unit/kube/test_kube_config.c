/*
 * test_kube_config.c - kube/kube_config.c: kubeconfig files (tokens, token
 * files, client certificates and keys as files and as base64 data, CA data,
 * insecure, contexts, the environment), what is refused (exec, auth-provider,
 * impersonation, malformed YAML) and the in-cluster configuration from a
 * temporary service-account directory, IPv6 host included.
 */
#include "core/error.h"
#include "kccl_test.h"
#include "kube_config.h"
#include "kube_util.h"

#define FAKE_CERT "-----BEGIN CERTIFICATE-----\nMIIBfakecert\n-----END CERTIFICATE-----\n"
#define FAKE_KEY  "-----BEGIN EC PRIVATE KEY-----\nMHcfakekey\n-----END EC PRIVATE KEY-----\n"
#define FAKE_CA   "-----BEGIN CERTIFICATE-----\nMIIBfakeca\n-----END CERTIFICATE-----\n"

static char dir[256];

static int setup(void **state)
{
    kccl_test_mkdtemp(dir);
    unsetenv("KUBECONFIG");
    unsetenv("KCCL_KUBE_CONTEXT");
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    unsetenv("KCCL_KUBE_SA_DIR");
    return 0;
}

static void put(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    kccl_test_write_file(path, text, strlen(text), 0600);
}

static char *b64(const char *s)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(s);
    char *out = malloc(n / 3 * 4 + 8);
    size_t j = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)s[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)(unsigned char)s[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)s[i + 2];
        out[j++] = tbl[v >> 18 & 63];
        out[j++] = tbl[v >> 12 & 63];
        out[j++] = i + 1 < n ? tbl[v >> 6 & 63] : '=';
        out[j++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    out[j] = '\0';
    return out;
}

/* Writes NAME with a cluster, a context and the given user block, and loads it. */
static kccl_status_t load_user(const char *user_block, kccl_kube_config_t *cfg)
{
    char text[8192], path[512];
    snprintf(text, sizeof(text),
             "apiVersion: v1\nkind: Config\n"
             "clusters:\n- name: c1\n  cluster:\n    server: https://10.0.0.1:6443/\n"
             "contexts:\n- name: ctx\n  context:\n    cluster: c1\n    user: u1\n"
             "    namespace: team-a\n"
             "current-context: ctx\n"
             "users:\n- name: u1\n  user:\n%s",
             user_block);
    put("config", text);
    snprintf(path, sizeof(path), "%s/config", dir);
    return kccl_kube_config_load_kubeconfig(path, NULL, cfg);
}

static kccl_status_t load_text(const char *text, const char *context, kccl_kube_config_t *cfg)
{
    char path[512];
    put("config", text);
    snprintf(path, sizeof(path), "%s/config", dir);
    return kccl_kube_config_load_kubeconfig(path, context, cfg);
}

static void test_token_user(void **state)
{
    kccl_kube_config_t cfg = NULL;
    assert_int_equal(load_user("    token: abc.def\n", &cfg), KCCL_OK);
    assert_string_equal(kccl_kube_config_server(cfg), "https://10.0.0.1:6443");
    assert_string_equal(kccl_kube_config_namespace(cfg), "team-a");
    assert_string_equal(cfg->token, "abc.def");
    assert_null(cfg->token_file);
    assert_int_equal(cfg->ca.len, 0);
    assert_int_equal(cfg->insecure, 0);
    assert_non_null(strstr(kccl_kube_config_describe(cfg), "context \"ctx\""));
    assert_null(strstr(kccl_kube_config_describe(cfg), "abc.def")); /* never the token */
    kccl_kube_config_free(cfg);
}

static void test_token_file_relative_and_preferred(void **state)
{
    kccl_kube_config_t cfg = NULL;
    put("tok", "from-file\n\n");
    assert_int_equal(load_user("    token: inline\n    tokenFile: tok\n", &cfg), KCCL_OK);
    assert_string_equal(cfg->token, "from-file"); /* the file wins, trailing newlines gone */
    char want[512];
    snprintf(want, sizeof(want), "%s/tok", dir);
    assert_string_equal(cfg->token_file, want);
    assert_int_equal(cfg->token_refresh_ms, KCCL_KUBE_TOKEN_REFRESH_MS_DEFAULT);
    kccl_kube_config_set_token_refresh_ms(cfg, 5);
    assert_int_equal(cfg->token_refresh_ms, 5);
    kccl_kube_config_set_token_refresh_ms(cfg, 0);
    assert_int_equal(cfg->token_refresh_ms, KCCL_KUBE_TOKEN_REFRESH_MS_DEFAULT);
    kccl_kube_config_free(cfg);
}

static void test_token_file_missing_or_empty(void **state)
{
    kccl_kube_config_t cfg = NULL;
    assert_int_equal(load_user("    tokenFile: /nonexistent/tok\n", &cfg), KCCL_ERR_CONFIG);
    assert_non_null(strstr(kccl_last_error(), "/nonexistent/tok"));
    put("empty", "\n");
    assert_int_equal(load_user("    tokenFile: empty\n", &cfg), KCCL_ERR_CONFIG);
    assert_non_null(strstr(kccl_last_error(), "empty"));
    assert_null(cfg);
}

static void test_client_cert_files(void **state)
{
    kccl_kube_config_t cfg = NULL;
    put("c.crt", FAKE_CERT);
    put("c.key", FAKE_KEY);
    assert_int_equal(load_user("    client-certificate: c.crt\n    client-key: c.key\n", &cfg),
                     KCCL_OK);
    assert_int_equal(cfg->client_cert.len, strlen(FAKE_CERT));
    assert_memory_equal(cfg->client_cert.data, FAKE_CERT, strlen(FAKE_CERT));
    assert_int_equal(cfg->client_key.len, strlen(FAKE_KEY));
    assert_memory_equal(cfg->client_key.data, FAKE_KEY, strlen(FAKE_KEY));
    assert_null(cfg->token);
    kccl_kube_config_free(cfg);
}

static void test_client_cert_data_and_ca_data(void **state)
{
    char *cert = b64(FAKE_CERT), *key = b64(FAKE_KEY), *ca = b64(FAKE_CA);
    char text[8192];
    snprintf(text, sizeof(text),
             "clusters:\n- name: c1\n  cluster:\n    server: https://[fd00::1]:6443\n"
             "    certificate-authority-data: %s\n"
             "users:\n- name: u1\n  user:\n    client-certificate-data: %s\n"
             "    client-key-data: %s\n"
             "contexts:\n- name: ctx\n  context: {cluster: c1, user: u1}\n"
             "current-context: ctx\n",
             ca, cert, key);
    kccl_kube_config_t cfg = NULL;
    assert_int_equal(load_text(text, NULL, &cfg), KCCL_OK);
    assert_string_equal(cfg->server, "https://[fd00::1]:6443");
    assert_string_equal(kccl_kube_config_namespace(cfg), "default");
    assert_memory_equal(cfg->ca.data, FAKE_CA, strlen(FAKE_CA));
    assert_memory_equal(cfg->client_cert.data, FAKE_CERT, strlen(FAKE_CERT));
    assert_memory_equal(cfg->client_key.data, FAKE_KEY, strlen(FAKE_KEY));
    kccl_kube_config_free(cfg);
    free(cert);
    free(key);
    free(ca);
}

static void test_ca_file_and_insecure(void **state)
{
    kccl_kube_config_t cfg = NULL;
    put("ca.crt", FAKE_CA);
    const char *base = "users:\n- name: u\n  user: {token: t}\n"
                       "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                       "current-context: x\n";
    char text[2048];
    snprintf(text, sizeof(text),
             "clusters:\n- name: c\n  cluster:\n    server: https://h:1\n"
             "    certificate-authority: ca.crt\n%s",
             base);
    assert_int_equal(load_text(text, NULL, &cfg), KCCL_OK);
    assert_memory_equal(cfg->ca.data, FAKE_CA, strlen(FAKE_CA));
    kccl_kube_config_free(cfg);

    snprintf(text, sizeof(text),
             "clusters:\n- name: c\n  cluster:\n    server: https://h:1\n"
             "    insecure-skip-tls-verify: true\n%s",
             base);
    assert_int_equal(load_text(text, NULL, &cfg), KCCL_OK);
    assert_int_equal(cfg->insecure, 1);
    kccl_kube_config_free(cfg);
    cfg = NULL;

    snprintf(text, sizeof(text),
             "clusters:\n- name: c\n  cluster:\n    server: https://h:1\n"
             "    insecure-skip-tls-verify: true\n    certificate-authority: ca.crt\n%s",
             base);
    assert_int_equal(load_text(text, NULL, &cfg), KCCL_ERR_CONFIG);
    assert_non_null(strstr(kccl_last_error(), "insecure-skip-tls-verify"));

    snprintf(text, sizeof(text),
             "clusters:\n- name: c\n  cluster:\n    server: https://h:1\n"
             "    insecure-skip-tls-verify: maybe\n%s",
             base);
    assert_int_equal(load_text(text, NULL, &cfg), KCCL_ERR_CONFIG);
    assert_non_null(strstr(kccl_last_error(), "true or false"));
    assert_null(cfg);
}

static const char *two_contexts =
    "clusters:\n"
    "- name: one\n  cluster: {server: 'https://one:6443'}\n"
    "- name: two\n  cluster: {server: 'https://two:6443'}\n"
    "users:\n- name: u\n  user: {token: t}\n"
    "contexts:\n"
    "- name: first\n  context: {cluster: one, user: u}\n"
    "- name: second\n  context: {cluster: two, user: u, namespace: ns2}\n"
    "current-context: first\n";

static void test_contexts(void **state)
{
    kccl_kube_config_t cfg = NULL;
    assert_int_equal(load_text(two_contexts, NULL, &cfg), KCCL_OK);
    assert_string_equal(cfg->server, "https://one:6443");
    kccl_kube_config_free(cfg);

    assert_int_equal(load_text(two_contexts, "second", &cfg), KCCL_OK);
    assert_string_equal(cfg->server, "https://two:6443");
    assert_string_equal(kccl_kube_config_namespace(cfg), "ns2");
    kccl_kube_config_free(cfg);

    setenv("KCCL_KUBE_CONTEXT", "second", 1);
    assert_int_equal(load_text(two_contexts, NULL, &cfg), KCCL_OK);
    assert_string_equal(cfg->server, "https://two:6443");
    kccl_kube_config_free(cfg);
    unsetenv("KCCL_KUBE_CONTEXT");
    cfg = NULL;

    assert_int_equal(load_text(two_contexts, "third", &cfg), KCCL_ERR_CONFIG);
    assert_non_null(strstr(kccl_last_error(), "\"third\""));
    assert_non_null(strstr(kccl_last_error(), "\"first\", \"second\"")); /* what exists */
    assert_null(cfg);
}

static void test_no_current_context(void **state)
{
    kccl_kube_config_t cfg = NULL;
    assert_int_equal(load_text("clusters: []\ncontexts: []\nusers: []\n", NULL, &cfg),
                     KCCL_ERR_CONFIG);
    assert_non_null(strstr(kccl_last_error(), "current-context"));
}

static void test_missing_cluster_or_user(void **state)
{
    kccl_kube_config_t cfg = NULL;
    const char *t = "clusters:\n- name: c\n  cluster: {server: 'https://h:1'}\n"
                    "contexts:\n- name: x\n  context: {cluster: nope, user: u}\n"
                    "current-context: x\n";
    assert_int_equal(load_text(t, NULL, &cfg), KCCL_ERR_CONFIG);
    assert_non_null(strstr(kccl_last_error(), "no cluster entry named \"nope\""));
    t = "clusters:\n- name: c\n  cluster: {server: 'https://h:1'}\n"
        "contexts:\n- name: x\n  context: {cluster: c, user: ghost}\n"
        "current-context: x\n";
    assert_int_equal(load_text(t, NULL, &cfg), KCCL_ERR_CONFIG);
    assert_non_null(strstr(kccl_last_error(), "no user entry named \"ghost\""));
    /* A context without a user is anonymous, and that is allowed. */
    t = "clusters:\n- name: c\n  cluster: {server: 'https://h:1'}\n"
        "contexts:\n- name: x\n  context: {cluster: c}\n"
        "current-context: x\n";
    assert_int_equal(load_text(t, NULL, &cfg), KCCL_OK);
    assert_null(cfg->token);
    kccl_kube_config_free(cfg);
}

static void test_exec_and_auth_provider_unsupported(void **state)
{
    kccl_kube_config_t cfg = NULL;
    assert_int_equal(load_user("    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
                               "      command: aws\n      args: [eks, get-token]\n",
                               &cfg),
                     KCCL_ERR_UNSUPPORTED);
    assert_non_null(strstr(kccl_last_error(), "user \"u1\""));
    assert_non_null(strstr(kccl_last_error(), "exec"));
    assert_non_null(strstr(kccl_last_error(), "\"aws\""));
    assert_non_null(strstr(kccl_last_error(), "token"));

    assert_int_equal(load_user("    auth-provider:\n      name: oidc\n      config: {}\n", &cfg),
                     KCCL_ERR_UNSUPPORTED);
    assert_non_null(strstr(kccl_last_error(), "\"oidc\" auth-provider"));
    assert_non_null(strstr(kccl_last_error(), "user \"u1\""));
    assert_null(cfg);

    /* With a token as well, the plugin is ignored (with a warning). */
    assert_int_equal(load_user("    token: t\n    exec:\n      command: aws\n", &cfg), KCCL_OK);
    assert_string_equal(cfg->token, "t");
    kccl_kube_config_free(cfg);
}

static void test_impersonation_unsupported(void **state)
{
    kccl_kube_config_t cfg = NULL;
    assert_int_equal(load_user("    token: t\n    as: admin\n", &cfg), KCCL_ERR_UNSUPPORTED);
    assert_non_null(strstr(kccl_last_error(), "impersonation"));
    assert_null(cfg);
}

static void test_basic_auth_and_nulls(void **state)
{
    kccl_kube_config_t cfg = NULL;
    assert_int_equal(load_user("    token: ~\n    username: me\n    password: pw\n", &cfg),
                     KCCL_OK);
    assert_null(cfg->token); /* YAML null is "not set" */
    assert_string_equal(cfg->username, "me");
    assert_string_equal(cfg->password, "pw");
    kccl_kube_config_free(cfg);
    cfg = NULL;
    assert_int_equal(load_user("    username: me\n", &cfg), KCCL_ERR_CONFIG);
    assert_non_null(strstr(kccl_last_error(), "no password"));
    assert_int_equal(load_user("    token: t\n    username: me\n    password: pw\n", &cfg),
                     KCCL_ERR_CONFIG);
    assert_non_null(strstr(kccl_last_error(), "both a bearer token and a username"));
}

static void test_cert_without_key_and_bad_data(void **state)
{
    kccl_kube_config_t cfg = NULL;
    put("c.crt", FAKE_CERT);
    assert_int_equal(load_user("    client-certificate: c.crt\n", &cfg), KCCL_ERR_CONFIG);
    assert_non_null(strstr(kccl_last_error(), "no client key"));
    assert_int_equal(load_user("    client-certificate-data: '!!notbase64!!'\n"
                               "    client-key-data: aGVsbG8=\n",
                               &cfg),
                     KCCL_ERR_CONFIG);
    assert_non_null(strstr(kccl_last_error(), "client-certificate-data"));
    assert_non_null(strstr(kccl_last_error(), "base64"));
    /* Valid base64, but not PEM. */
    assert_int_equal(load_user("    client-certificate-data: aGVsbG8=\n"
                               "    client-key-data: aGVsbG8=\n",
                               &cfg),
                     KCCL_ERR_CONFIG);
    assert_non_null(strstr(kccl_last_error(), "PEM"));
    assert_int_equal(load_user("    client-certificate: missing.crt\n    client-key: k\n", &cfg),
                     KCCL_ERR_CONFIG);
    assert_non_null(strstr(kccl_last_error(), "missing.crt"));
    assert_null(cfg);
}

static void test_malformed_yaml(void **state)
{
    kccl_kube_config_t cfg = NULL;
    assert_int_equal(load_text("clusters:\n- name: c\n  cluster: {server: [unclosed\n", NULL, &cfg),
                     KCCL_ERR_CONFIG);
    assert_non_null(strstr(kccl_last_error(), "not valid YAML"));
    assert_non_null(strstr(kccl_last_error(), "line"));
    assert_int_equal(load_text("", NULL, &cfg), KCCL_ERR_CONFIG);
    assert_non_null(strstr(kccl_last_error(), "empty"));
    assert_int_equal(load_text("- just\n- a list\n", NULL, &cfg), KCCL_ERR_CONFIG);
    assert_non_null(strstr(kccl_last_error(), "mapping"));
    assert_int_equal(load_text("clusters: 3\ncurrent-context: x\n", NULL, &cfg), KCCL_ERR_CONFIG);
    assert_non_null(strstr(kccl_last_error(), "must be a list"));
    assert_null(cfg);
}

static void test_server_urls(void **state)
{
    char *s = NULL;
    assert_int_equal(kccl_kube_server_normalize("https://[::1]:6443//", "t", &s), KCCL_OK);
    assert_string_equal(s, "https://[::1]:6443");
    free(s);
    assert_int_equal(kccl_kube_server_normalize("https://h/k8s/clusters/c-1", "t", &s), KCCL_OK);
    assert_string_equal(s, "https://h/k8s/clusters/c-1"); /* a path prefix is kept */
    free(s);
    s = NULL;
    assert_int_equal(kccl_kube_server_normalize("https://fd00::1:6443", "t", &s), KCCL_ERR_CONFIG);
    assert_non_null(strstr(kccl_last_error(), "brackets"));
    assert_int_equal(kccl_kube_server_normalize("ftp://h:1", "t", &s), KCCL_ERR_CONFIG);
    assert_int_equal(kccl_kube_server_normalize("https://h:1/?x=1", "t", &s), KCCL_ERR_CONFIG);
    assert_null(s);
    assert_int_equal(kccl_kube_server_from_host_port("fd00::10", "443", &s), KCCL_OK);
    assert_string_equal(s, "https://[fd00::10]:443");
    free(s);
    assert_int_equal(kccl_kube_server_from_host_port("10.96.0.1", "443", &s), KCCL_OK);
    assert_string_equal(s, "https://10.96.0.1:443");
    free(s);
}

static void test_kubeconfig_env(void **state)
{
    char a[512], list[1100];
    put("first", "clusters:\n- name: c\n  cluster: {server: 'https://first:1'}\n"
                 "contexts:\n- name: x\n  context: {cluster: c}\ncurrent-context: x\n");
    snprintf(a, sizeof(a), "%s/first", dir);
    snprintf(list, sizeof(list), "%s:%s/second", a, dir);
    setenv("KUBECONFIG", list, 1);
    kccl_kube_config_t cfg = NULL;
    assert_int_equal(kccl_kube_config_load(NULL, &cfg), KCCL_OK);
    assert_string_equal(cfg->server, "https://first:1");
    kccl_kube_config_free(cfg);
    unsetenv("KUBECONFIG");

    /* ~/.kube/config by default */
    char home[512], kube[600];
    snprintf(home, sizeof(home), "%s/home", dir);
    snprintf(kube, sizeof(kube), "%s/.kube", home);
    mkdir(home, 0700);
    mkdir(kube, 0700);
    put("home/.kube/config", "clusters:\n- name: c\n  cluster: {server: 'https://home:1'}\n"
                             "contexts:\n- name: x\n  context: {cluster: c}\n"
                             "current-context: x\n");
    char *saved = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    setenv("HOME", home, 1);
    assert_int_equal(kccl_kube_config_load(NULL, &cfg), KCCL_OK);
    assert_string_equal(cfg->server, "https://home:1");
    kccl_kube_config_free(cfg);
    if (saved) {
        setenv("HOME", saved, 1);
        free(saved);
    }
}

/* ------------------------------------------------------------------ in-cluster */

static void make_sa_dir(const char *token, int with_ns)
{
    char sa[512];
    snprintf(sa, sizeof(sa), "%s/sa", dir);
    mkdir(sa, 0700);
    if (token)
        put("sa/token", token);
    put("sa/ca.crt", FAKE_CA);
    if (with_ns)
        put("sa/namespace", "kccl-jobs\n");
    setenv("KCCL_KUBE_SA_DIR", sa, 1);
}

static void test_in_cluster_ipv6(void **state)
{
    make_sa_dir("sa-token-1\n", 1);
    setenv("KUBERNETES_SERVICE_HOST", "fd00:10:96::1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    kccl_kube_config_t cfg = NULL;
    assert_int_equal(kccl_kube_config_load(NULL, &cfg), KCCL_OK); /* no KUBECONFIG: in-cluster */
    assert_int_equal(cfg->in_cluster, 1);
    assert_string_equal(cfg->server, "https://[fd00:10:96::1]:443");
    assert_string_equal(cfg->token, "sa-token-1");
    assert_non_null(strstr(cfg->token_file, "/sa/token"));
    assert_string_equal(kccl_kube_config_namespace(cfg), "kccl-jobs");
    assert_memory_equal(cfg->ca.data, FAKE_CA, strlen(FAKE_CA));
    assert_non_null(strstr(kccl_kube_config_describe(cfg), "in-cluster"));
    kccl_kube_config_free(cfg);
}

static void test_in_cluster_ipv4_no_namespace(void **state)
{
    make_sa_dir("tok", 0);
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
    kccl_kube_config_t cfg = NULL;
    assert_int_equal(kccl_kube_config_load_in_cluster(&cfg), KCCL_OK);
    assert_string_equal(cfg->server, "https://10.96.0.1:6443");
    assert_string_equal(kccl_kube_config_namespace(cfg), "default");
    kccl_kube_config_free(cfg);
}

static void test_in_cluster_errors(void **state)
{
    kccl_kube_config_t cfg = NULL;
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    assert_int_equal(kccl_kube_config_load_in_cluster(&cfg), KCCL_ERR_CONFIG);
    assert_non_null(strstr(kccl_last_error(), "KUBERNETES_SERVICE_PORT"));
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    make_sa_dir(NULL, 1); /* no token */
    assert_int_equal(kccl_kube_config_load_in_cluster(&cfg), KCCL_ERR_CONFIG);
    assert_non_null(strstr(kccl_last_error(), "/sa/token"));
    assert_null(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_token_user, setup),
        cmocka_unit_test_setup(test_token_file_relative_and_preferred, setup),
        cmocka_unit_test_setup(test_token_file_missing_or_empty, setup),
        cmocka_unit_test_setup(test_client_cert_files, setup),
        cmocka_unit_test_setup(test_client_cert_data_and_ca_data, setup),
        cmocka_unit_test_setup(test_ca_file_and_insecure, setup),
        cmocka_unit_test_setup(test_contexts, setup),
        cmocka_unit_test_setup(test_no_current_context, setup),
        cmocka_unit_test_setup(test_missing_cluster_or_user, setup),
        cmocka_unit_test_setup(test_exec_and_auth_provider_unsupported, setup),
        cmocka_unit_test_setup(test_impersonation_unsupported, setup),
        cmocka_unit_test_setup(test_basic_auth_and_nulls, setup),
        cmocka_unit_test_setup(test_cert_without_key_and_bad_data, setup),
        cmocka_unit_test_setup(test_malformed_yaml, setup),
        cmocka_unit_test_setup(test_server_urls, setup),
        cmocka_unit_test_setup(test_kubeconfig_env, setup),
        cmocka_unit_test_setup(test_in_cluster_ipv6, setup),
        cmocka_unit_test_setup(test_in_cluster_ipv4_no_namespace, setup),
        cmocka_unit_test_setup(test_in_cluster_errors, setup),
    };
    setenv("KCCL_LOG_LEVEL", "none", 1);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
