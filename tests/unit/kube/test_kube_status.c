/*
 * test_kube_status.c - kube/kube_status.c and the request-building helpers:
 * HTTP statuses and apiserver Status objects to kccl status codes and result
 * records, the classifiers (conflict, gone, ...), apiserver paths and the
 * list/watch query strings.
 */
#include "core/error.h"
#include "kccl_test.h"
#include "kube_list.h"
#include "kube_status.h"
#include "kube_util.h"

static void test_http_mapping(void **state)
{
    static const struct {
        int http;
        kccl_status_t st;
        const char *reason;
    } table[] = {
        {200, KCCL_OK, ""},
        {201, KCCL_OK, ""},
        {400, KCCL_ERR_INVALID_ARG, "BadRequest"},
        {401, KCCL_ERR_AUTH, "Unauthorized"},
        {403, KCCL_ERR_AUTH, "Forbidden"},
        {404, KCCL_ERR_NOT_FOUND, "NotFound"},
        {405, KCCL_ERR_UNSUPPORTED, "MethodNotAllowed"},
        {409, KCCL_ERR_KUBE, "Conflict"},
        {410, KCCL_ERR_KUBE, "Gone"},
        {415, KCCL_ERR_UNSUPPORTED, "UnsupportedMediaType"},
        {422, KCCL_ERR_INVALID_ARG, "Invalid"},
        {429, KCCL_ERR_KUBE, "TooManyRequests"},
        {500, KCCL_ERR_KUBE, "InternalError"},
        {503, KCCL_ERR_KUBE, "ServiceUnavailable"},
        {504, KCCL_ERR_TIMED_OUT, "Timeout"},
        {418, KCCL_ERR_KUBE, "Unknown"},
    };
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(table); i++) {
        assert_int_equal(kccl_kube_status_from_http(table[i].http), table[i].st);
        assert_string_equal(kccl_kube_reason_for_http(table[i].http), table[i].reason);
    }
}

static void test_status_object(void **state)
{
    const char *body =
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
        "\"status\":\"Failure\",\"message\":\"pods \\\"x\\\" already exists\","
        "\"reason\":\"AlreadyExists\",\"details\":{\"name\":\"x\",\"kind\":\"pods\"},"
        "\"code\":409}";
    kccl_kube_result_t r;
    memset(&r, 0xff, sizeof(r));
    assert_int_equal(kccl_kube_result_from_response(409, body, strlen(body), &r), KCCL_ERR_KUBE);
    assert_int_equal(r.http_status, 409);
    assert_int_equal(r.code, 409);
    assert_string_equal(r.reason, "AlreadyExists");
    assert_string_equal(r.message, "pods \"x\" already exists");
    assert_true(kccl_kube_is_conflict(&r));
    assert_true(kccl_kube_is_already_exists(&r));
    assert_false(kccl_kube_is_gone(&r));

    const char *nf = "{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"pods \\\"y\\\" "
                     "not found\",\"reason\":\"NotFound\",\"code\":404}";
    assert_int_equal(kccl_kube_result_from_response(404, nf, strlen(nf), &r), KCCL_ERR_NOT_FOUND);
    assert_string_equal(r.reason, "NotFound");
    assert_string_equal(r.message, "pods \"y\" not found");

    const char *fb = "{\"kind\":\"Status\",\"message\":\"pods is forbidden: User "
                     "\\\"system:serviceaccount:a:s\\\" cannot list resource \\\"pods\\\" in "
                     "API group \\\"\\\" in the namespace \\\"b\\\"\",\"reason\":\"Forbidden\","
                     "\"code\":403}";
    assert_int_equal(kccl_kube_result_from_response(403, fb, strlen(fb), &r), KCCL_ERR_AUTH);
    assert_true(kccl_kube_is_forbidden(&r));
    assert_non_null(strstr(r.message, "cannot list"));

    const char *inv = "{\"kind\":\"Status\",\"reason\":\"Invalid\",\"message\":\"bad\","
                      "\"code\":422}";
    assert_int_equal(kccl_kube_result_from_response(422, inv, strlen(inv), &r),
                     KCCL_ERR_INVALID_ARG);
    assert_true(kccl_kube_is_invalid(&r));
}

static void test_watch_error_event_status(void **state)
{
    cJSON *st = cJSON_Parse("{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"too old "
                            "resource version: 1 (5017)\",\"reason\":\"Expired\",\"code\":410}");
    kccl_kube_result_t r = {.http_status = 200};
    assert_int_equal(kccl_kube_result_from_status(st, &r), KCCL_ERR_KUBE);
    assert_int_equal(r.code, 410);
    assert_string_equal(r.reason, "Expired");
    assert_true(kccl_kube_is_gone(&r));
    assert_non_null(strstr(r.message, "too old resource version"));
    cJSON_Delete(st);
}

static void test_non_status_bodies(void **state)
{
    kccl_kube_result_t r;
    const char *html = "<html>\r\n502 Bad\tGateway</html>";
    assert_int_equal(kccl_kube_result_from_response(502, html, strlen(html), &r), KCCL_ERR_KUBE);
    assert_string_equal(r.reason, "Unknown");
    assert_string_equal(r.message, "<html>  502 Bad Gateway</html>");
    const char *pod = "{\"kind\":\"Pod\"}"; /* JSON, not a Status: no message */
    assert_int_equal(kccl_kube_result_from_response(500, pod, strlen(pod), &r), KCCL_ERR_KUBE);
    assert_string_equal(r.reason, "InternalError");
    assert_string_equal(r.message, "");
    assert_int_equal(kccl_kube_result_from_response(404, NULL, 0, &r), KCCL_ERR_NOT_FOUND);
    assert_string_equal(r.reason, "NotFound");
    assert_int_equal(kccl_kube_result_from_response(200, "{}", 2, NULL), KCCL_OK);
}

static void test_transport_result(void **state)
{
    kccl_kube_result_t r;
    kccl_kube_result_transport(&r, "TLS", "certificate verify failed");
    assert_int_equal(r.http_status, 0);
    assert_string_equal(r.reason, "TLS");
    assert_false(kccl_kube_is_conflict(&r));
    assert_false(kccl_kube_is_conflict(NULL));
}

static void test_paths(void **state)
{
    char p[256];
    assert_int_equal(kccl_kube_path(p, sizeof(p), "v1", "ns", "pods", "p-0", NULL), KCCL_OK);
    assert_string_equal(p, "/api/v1/namespaces/ns/pods/p-0");
    assert_int_equal(kccl_kube_path(p, sizeof(p), "v1", "ns", "pods", NULL, NULL), KCCL_OK);
    assert_string_equal(p, "/api/v1/namespaces/ns/pods");
    assert_int_equal(kccl_kube_path(p, sizeof(p), "v1", NULL, "nodes", "n1", NULL), KCCL_OK);
    assert_string_equal(p, "/api/v1/nodes/n1");
    assert_int_equal(
        kccl_kube_path(p, sizeof(p), "kccl.io/v1alpha1", "ns", "commgroups", "g", "status"),
        KCCL_OK);
    assert_string_equal(p, "/apis/kccl.io/v1alpha1/namespaces/ns/commgroups/g/status");
    assert_int_equal(kccl_kube_path(p, sizeof(p), "v1", "ns", "pods", "a/b", NULL),
                     KCCL_ERR_INVALID_ARG);
    assert_int_equal(kccl_kube_path(p, sizeof(p), "v1", "..", "pods", "a", NULL),
                     KCCL_ERR_INVALID_ARG);
    assert_int_equal(kccl_kube_path(p, sizeof(p), "v1", "ns", "pods", NULL, "status"),
                     KCCL_ERR_INVALID_ARG);
    assert_int_equal(kccl_kube_path(p, sizeof(p), "a/b/c", "ns", "pods", NULL, NULL),
                     KCCL_ERR_INVALID_ARG);
    assert_int_equal(kccl_kube_path(p, 10, "v1", "ns", "pods", "p", NULL), KCCL_ERR_INVALID_ARG);
}

static void test_list_and_watch_urls(void **state)
{
    kccl_kube_buf_t b = {0};
    kccl_kube_list_opts_t lo = {.label_selector = "kccl.io/group=g1,tier in (a,b)",
                                .field_selector = "metadata.name=p-0",
                                .limit = 50,
                                .continue_token = "eyJ2Ijo+/=",
                                .resource_version = "0"};
    assert_int_equal(kccl_kube_list_url(&b, "/api/v1/namespaces/n/pods", &lo, 0, NULL, 0), 0);
    assert_string_equal(b.data, "/api/v1/namespaces/n/pods"
                                "?labelSelector=kccl.io%2Fgroup%3Dg1%2Ctier%20in%20%28a%2Cb%29"
                                "&fieldSelector=metadata.name%3Dp-0&limit=50"
                                "&continue=eyJ2Ijo%2B%2F%3D&resourceVersion=0");
    kccl_kube_buf_free(&b);
    assert_int_equal(kccl_kube_list_url(&b, "/api/v1/pods", &lo, 1, "123", 60), 0);
    assert_string_equal(b.data, "/api/v1/pods"
                                "?labelSelector=kccl.io%2Fgroup%3Dg1%2Ctier%20in%20%28a%2Cb%29"
                                "&fieldSelector=metadata.name%3Dp-0&watch=1"
                                "&allowWatchBookmarks=true&resourceVersion=123"
                                "&timeoutSeconds=60");
    kccl_kube_buf_free(&b);
    assert_int_equal(kccl_kube_list_url(&b, "/api/v1/pods?pretty=0", NULL, 1, NULL, 0), 0);
    assert_string_equal(b.data, "/api/v1/pods?pretty=0&watch=1&allowWatchBookmarks=true");
    kccl_kube_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_mapping),
        cmocka_unit_test(test_status_object),
        cmocka_unit_test(test_watch_error_event_status),
        cmocka_unit_test(test_non_status_bodies),
        cmocka_unit_test(test_transport_result),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_list_and_watch_urls),
    };
    setenv("KCCL_LOG_LEVEL", "none", 1);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
