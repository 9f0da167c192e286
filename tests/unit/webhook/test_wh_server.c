/*
 * test_wh_server.c - the webhook's HTTPS server on loopback: TLS with a CA made by the openssl
 * CLI, /healthz, POST /mutate, the refusals (content type, method, path, size, garbage), a
 * silent client cut off by the timeout, plain-text bytes on the TLS port, certificate rotation
 * (a new CA's certificate is served without a restart; an unusable pair is refused and the old
 * one kept), start-up errors, and the latency of one admission (printed).
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include "core/log.h"
#include "kccl_test.h"
#include "wh_server.h"

static char dir[256];

static const char *path_of(const char *name)
{
    static char buf[8][512];
    static int i;
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
    return buf[i];
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    // NOLINTNEXTLINE(cert-env33-c): the test drives the openssl CLI
    if (system(cmd) != 0)
        fail_msg("command failed: %s", cmd);
}

/* A CA NAME-ca.{crt,key} and a serving pair NAME.{crt,key} for IP 127.0.0.1. */
static void make_pair(const char *name)
{
    sh("cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
       "-keyout %s-ca.key -out %s-ca.crt -days 1 -subj /CN=%s-ca >/dev/null 2>&1 && "
       "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout %s.key "
       "-out %s.csr -subj /CN=kccl-webhook >/dev/null 2>&1 && "
       "printf 'subjectAltName=IP:127.0.0.1\\n' > %s.ext && "
       "openssl x509 -req -in %s.csr -CA %s-ca.crt -CAkey %s-ca.key -CAcreateserial -out %s.crt "
       "-days 1 -extfile %s.ext >/dev/null 2>&1",
       dir, name, name, name, name, name, name, name, name, name, name, name);
}

/* Replaces tls.crt/tls.key by NAME's pair the way a Secret volume does: new files, rename. */
static void install_pair(const char *name)
{
    sh("cd %s && cp %s.crt tls.crt.new && cp %s.key tls.key.new && mv tls.key.new tls.key && "
       "mv tls.crt.new tls.crt",
       dir, name, name);
}

typedef struct {
    char *data;
    size_t len;
} buf_t;

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
    buf_t *b = ud;
    char *d = realloc(b->data, b->len + sz * n + 1);
    assert_non_null(d);
    memcpy(d + b->len, p, sz * n);
    b->data = d;
    b->len += sz * n;
    d[b->len] = '\0';
    return sz * n;
}

/* One HTTPS request; returns the HTTP status, or -curlcode on a transport failure. */
static long request(CURL *c, int port, const char *ca, const char *method, const char *url,
                    const char *ctype, const char *body, long len, buf_t *out)
{
    char u[256], ct[128];
    snprintf(u, sizeof(u), "https://127.0.0.1:%d%s", port, url);
    struct curl_slist *h = NULL;
    if (ctype) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
        h = curl_slist_append(h, ct);
    }
    curl_easy_setopt(c, CURLOPT_URL, u);
    curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 15000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, len);
    } else {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(h);
    if (rc != CURLE_OK)
        return -(long)rc;
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    return code;
}

static long simple(int port, const char *ca, const char *method, const char *url, const char *ctype,
                   const char *body, long len, char *text, size_t cap)
{
    CURL *c = curl_easy_init();
    buf_t b = {NULL, 0};
    long code = request(c, port, ca, method, url, ctype, body, len, &b);
    if (text)
        snprintf(text, cap, "%s", b.data ? b.data : "");
    free(b.data);
    curl_easy_cleanup(c);
    return code;
}

static const char review[] =
    "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":"
    "\"rv-1\",\"kind\":{\"kind\":\"Pod\"},\"namespace\":\"n\",\"operation\":\"CREATE\","
    "\"object\":{\"metadata\":{\"name\":\"p\",\"annotations\":{\"kccl.io/group\":\"g\","
    "\"kccl.io/world-size\":\"2\",\"kccl.io/rank\":\"1\"}},\"spec\":{\"containers\":[{\"name\":"
    "\"a\",\"image\":\"i\",\"env\":[{\"name\":\"DB_PASSWORD\",\"value\":\"hunter2-secret\"}]}]}}}}";

static kccl_webhook_t current; /* stopped after each test, also a failed one */

static int stop_current(void **state)
{
    kccl_webhook_stop(current);
    current = NULL;
    return 0;
}

static kccl_webhook_t start(size_t max_body, int timeout_s)
{
    kccl_webhook_opts_t o;
    kccl_webhook_opts_init(&o);
    o.bind_address = "127.0.0.1";
    o.port = -1;
    o.cert_file = path_of("tls.crt");
    o.key_file = path_of("tls.key");
    o.max_body_bytes = max_body;
    o.timeout_s = timeout_s;
    o.cert_reload_interval_ms = 100;
    kccl_webhook_t wh = NULL;
    if (kccl_webhook_start(&o, &wh) != KCCL_OK)
        fail_msg("kccl_webhook_start: %s", kccl_last_error());
    assert_true(kccl_webhook_port(wh) > 0);
    current = wh;
    return wh;
}

static int setup(void **state)
{
    kccl_test_mkdtemp(dir);
    make_pair("one");
    make_pair("two");
    install_pair("one");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* everything the webhook logs, at the most verbose level, goes to a file we inspect */
    setenv("KCCL_LOG_FILE", path_of("webhook.log"), 1);
    setenv("KCCL_LOG_LEVEL", "trace", 1);
    kccl_log_reinit();
    return 0;
}

/* The log names requests, never their content: a pod's env may hold secrets. */
static void test_log_has_no_secrets(void **state)
{
    FILE *f = fopen(path_of("webhook.log"), "r");
    assert_non_null(f);
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    assert_non_null(strstr(text, "uid rv-1")); /* the admission was logged */
    assert_null(strstr(text, "hunter2"));      /* its env value was not */
    assert_null(strstr(text, "BEGIN"));        /* nor any PEM */
}

static int teardown(void **state)
{
    sh("rm -rf %s", dir);
    curl_global_cleanup();
    return 0;
}

/* POSTs len bytes announcing "Expect: 100-continue", so that an early refusal is read before
 * the body is sent (deterministic: no race between our send and the server's close). */
static long post_big(int port, const char *ca, const char *data, long len, int chunked)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect: 100-continue");
    if (chunked)
        h = curl_slist_append(h, "Transfer-Encoding: chunked");
    buf_t b = {NULL, 0};
    char u[128];
    snprintf(u, sizeof(u), "https://127.0.0.1:%d/mutate", port);
    curl_easy_setopt(c, CURLOPT_URL, u);
    curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, data);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, len);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 15000L);
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(b.data);
    return rc == CURLE_OK ? code : -(long)rc;
}

static void test_routes_and_refusals(void **state)
{
    kccl_webhook_t wh = start(64 * 1024, 10);
    int port = kccl_webhook_port(wh);
    const char *ca = path_of("one-ca.crt");
    char text[65536];
    assert_int_equal(simple(port, ca, "GET", "/healthz", NULL, NULL, 0, text, sizeof(text)), 200);
    assert_string_equal(text, "ok\n");
    long len = (long)strlen(review);
    assert_int_equal(
        simple(port, ca, "POST", "/mutate", "application/json", review, len, text, sizeof(text)),
        200);
    assert_non_null(strstr(text, "\"uid\":\"rv-1\""));
    assert_non_null(strstr(text, "\"patchType\":\"JSONPatch\""));
    assert_int_equal(simple(port, ca, "POST", "/mutate", "application/json; charset=utf-8", review,
                            len, NULL, 0),
                     200);
    assert_int_equal(simple(port, ca, "POST", "/mutate", "text/plain", review, len, NULL, 0), 415);
    assert_int_equal(simple(port, ca, "POST", "/mutate", NULL, review, len, NULL, 0), 415);
    assert_int_equal(simple(port, ca, "GET", "/mutate", NULL, NULL, 0, NULL, 0), 405);
    assert_int_equal(simple(port, ca, "POST", "/other", "application/json", review, len, NULL, 0),
                     404);
    assert_int_equal(
        simple(port, ca, "POST", "/mutate", "application/json", "{{{", 3, text, sizeof(text)), 400);
    assert_non_null(strstr(text, "not JSON"));
    /* over the limit: refused from Content-Length, and when sent chunked (no length) */
    char *big = malloc(100000);
    memset(big, ' ', 100000);
    assert_int_equal(post_big(port, ca, big, 100000, 0), 413);
    assert_int_equal(post_big(port, ca, big, 100000, 1), 413);
    free(big);
    wh_server_stats_t st;
    wh_server_stats(wh, &st);
    assert_true(st.injected >= 2);
    assert_true(st.rejected >= 6);
    stop_current(NULL);
}

static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    struct timeval tv = {.tv_sec = 8};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void test_hostile_clients(void **state)
{
    kccl_webhook_t wh = start(0, 1);
    int port = kccl_webhook_port(wh);
    /* a silent client is dropped after the idle timeout (1 s here) */
    double t0 = now_s();
    int fd = raw_connect(port);
    char b[256];
    while (recv(fd, b, sizeof(b), 0) > 0) /* a TLS alert may come first */
        ;
    double waited = now_s() - t0;
    close(fd);
    assert_true(waited > 0.5 && waited < 5.0);
    /* plain HTTP and random bytes on the TLS port: closed, nothing else happens */
    fd = raw_connect(port);
    const char plain[] = "POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
    assert_true(send(fd, plain, sizeof(plain) - 1, MSG_NOSIGNAL) > 0);
    t0 = now_s();
    while (recv(fd, b, sizeof(b), 0) > 0) /* the server closes (an alert may come first) */
        ;
    assert_true(now_s() - t0 < 5.0);
    close(fd);
    fd = raw_connect(port);
    unsigned char junk[4096];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (unsigned char)(i * 131 + 7);
    junk[0] = 0x16; /* looks like a TLS handshake record */
    send(fd, junk, sizeof(junk), MSG_NOSIGNAL);
    t0 = now_s();
    while (recv(fd, b, sizeof(b), 0) > 0)
        ;
    assert_true(now_s() - t0 < 5.0);
    close(fd);
    /* still serving */
    assert_int_equal(simple(port, path_of("one-ca.crt"), "GET", "/healthz", NULL, NULL, 0, NULL, 0),
                     200);
    stop_current(NULL);
}

static void test_certificate_rotation(void **state)
{
    install_pair("one");
    kccl_webhook_t wh = start(0, 10);
    int port = kccl_webhook_port(wh);
    assert_int_equal(simple(port, path_of("one-ca.crt"), "GET", "/healthz", NULL, NULL, 0, NULL, 0),
                     200);
    assert_true(simple(port, path_of("two-ca.crt"), "GET", "/healthz", NULL, NULL, 0, NULL, 0) < 0);
    install_pair("two");
    long code = -1;
    for (int i = 0; i < 50 && code != 200; i++) {
        usleep(100 * 1000);
        code = simple(port, path_of("two-ca.crt"), "GET", "/healthz", NULL, NULL, 0, NULL, 0);
    }
    assert_int_equal(code, 200);
    assert_true(simple(port, path_of("one-ca.crt"), "GET", "/healthz", NULL, NULL, 0, NULL, 0) < 0);
    wh_server_stats_t st;
    wh_server_stats(wh, &st);
    assert_int_equal(st.cert_generation, 2);
    /* a half-rotated pair (new cert, old key): refused, the current pair keeps serving */
    sh("cd %s && cp one.crt tls.crt.new && mv tls.crt.new tls.crt", dir);
    usleep(500 * 1000);
    assert_int_equal(simple(port, path_of("two-ca.crt"), "GET", "/healthz", NULL, NULL, 0, NULL, 0),
                     200);
    wh_server_stats(wh, &st);
    assert_int_equal(st.cert_generation, 2);
    /* ... until the key arrives too */
    sh("cd %s && cp one.key tls.key.new && mv tls.key.new tls.key", dir);
    code = -1;
    for (int i = 0; i < 50 && code != 200; i++) {
        usleep(100 * 1000);
        code = simple(port, path_of("one-ca.crt"), "GET", "/healthz", NULL, NULL, 0, NULL, 0);
    }
    assert_int_equal(code, 200);
    stop_current(NULL);
}

static void test_start_errors(void **state)
{
    kccl_webhook_opts_t o;
    kccl_webhook_t wh = NULL;
    kccl_webhook_opts_init(&o);
    o.port = -1;
    assert_int_equal(kccl_webhook_start(&o, &wh), KCCL_ERR_INVALID_ARG);
    assert_non_null(strstr(kccl_last_error(), "--webhook-cert-dir"));
    o.cert_file = path_of("missing.crt");
    o.key_file = path_of("tls.key");
    assert_int_equal(kccl_webhook_start(&o, &wh), KCCL_ERR_CONFIG);
    assert_non_null(strstr(kccl_last_error(), "missing.crt"));
    o.cert_file = path_of("one.crt");
    o.key_file = path_of("two.key");
    assert_int_equal(kccl_webhook_start(&o, &wh), KCCL_ERR_CONFIG);
    assert_non_null(strstr(kccl_last_error(), "regenerate the pair"));
    o.key_file = path_of("one.key");
    o.sidecar_pull_policy = "Sometimes";
    assert_int_equal(kccl_webhook_start(&o, &wh), KCCL_ERR_INVALID_ARG);
    o.sidecar_pull_policy = NULL;
    o.bind_address = "localhost";
    assert_int_equal(kccl_webhook_start(&o, &wh), KCCL_ERR_INVALID_ARG);
    /* a port that is taken */
    o.bind_address = "127.0.0.1";
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 1), 0);
    getsockname(fd, (struct sockaddr *)&a, &al);
    o.port = ntohs(a.sin_port);
    assert_int_equal(kccl_webhook_start(&o, &wh), KCCL_ERR_ADDR_IN_USE);
    close(fd);
    assert_null(wh);
    /* no address: all addresses, IPv4 included */
    o.bind_address = NULL;
    o.port = -1;
    kccl_webhook_t any = NULL;
    assert_int_equal(kccl_webhook_start(&o, &any), KCCL_OK);
    current = any;
    assert_int_equal(simple(kccl_webhook_port(any), path_of("one-ca.crt"), "GET", "/healthz", NULL,
                            NULL, 0, NULL, 0),
                     200);
    stop_current(NULL);
    /* one webhook per process */
    o.port = -1;
    kccl_webhook_t first = start(0, 10);
    assert_int_equal(kccl_webhook_start(&o, &wh), KCCL_ERR_UNSUPPORTED);
    assert_int_equal(simple(kccl_webhook_port(first), path_of("one-ca.crt"), "GET", "/healthz",
                            NULL, NULL, 0, NULL, 0),
                     200);
    stop_current(NULL);
    kccl_webhook_stop(NULL);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Latency of one admission over a kept-alive TLS connection (what the API server does). */
static void test_latency(void **state)
{
    install_pair("one");
    kccl_webhook_t wh = start(0, 10);
    enum { N = 300 };
    static double ms[N];
    CURL *c = curl_easy_init();
    for (int i = 0; i < N; i++) {
        buf_t b = {NULL, 0};
        double t0 = now_s();
        long code = request(c, kccl_webhook_port(wh), path_of("one-ca.crt"), "POST", "/mutate",
                            "application/json", review, (long)strlen(review), &b);
        ms[i] = (now_s() - t0) * 1e3;
        free(b.data);
        assert_int_equal(code, 200);
    }
    curl_easy_cleanup(c);
    qsort(ms, N, sizeof(ms[0]), cmp_double);
    printf("webhook latency over one TLS connection, %d admissions: p50 %.3f ms, p99 %.3f ms, "
           "max %.3f ms\n",
           N, ms[N / 2], ms[N * 99 / 100], ms[N - 1]);
    assert_true(ms[N / 2] < 1000.0); /* far inside timeoutSeconds (10 s) */
    stop_current(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_routes_and_refusals, stop_current),
        cmocka_unit_test_teardown(test_hostile_clients, stop_current),
        cmocka_unit_test_teardown(test_certificate_rotation, stop_current),
        cmocka_unit_test_teardown(test_start_errors, stop_current),
        cmocka_unit_test_teardown(test_latency, stop_current),
        cmocka_unit_test(test_log_has_no_secrets),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
