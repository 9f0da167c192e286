/*
 * test_kube_retry.c - kube/kube_retry.c and the small helpers around it:
 * Retry-After (seconds and HTTP dates), the bounds of exponential backoff
 * with full jitter, the deadline cut-off, the retry policy per verb, the
 * redaction of Authorization headers and base64 decoding.
 */
#include "kccl_test.h"
#include "kube_http.h"
#include "kube_retry.h"
#include "kube_util.h"

static void test_retry_after_seconds(void **state)
{
    int64_t ms = -1;
    assert_int_equal(kccl_kube_parse_retry_after("3", 0, &ms), 0);
    assert_int_equal(ms, 3000);
    assert_int_equal(kccl_kube_parse_retry_after(" 0 \r\n", 0, &ms), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(kccl_kube_parse_retry_after("99999999", 0, &ms), 0);
    assert_int_equal(ms, 86400 * 1000LL); /* capped at a day */
    assert_int_equal(kccl_kube_parse_retry_after("", 0, &ms), -1);
    assert_int_equal(kccl_kube_parse_retry_after("-1", 0, &ms), -1);
    assert_int_equal(kccl_kube_parse_retry_after("1.5", 0, &ms), -1);
    assert_int_equal(kccl_kube_parse_retry_after("soon", 0, &ms), -1);
    assert_int_equal(kccl_kube_parse_retry_after(NULL, 0, &ms), -1);
}

static void test_retry_after_date(void **state)
{
    int64_t ms = -1;
    /* Wed, 21 Oct 2015 07:28:00 GMT = 1445412480 */
    assert_int_equal(kccl_kube_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412475, &ms),
                     0);
    assert_int_equal(ms, 5000);
    assert_int_equal(kccl_kube_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412490, &ms),
                     0);
    assert_int_equal(ms, 0); /* in the past: go now */
}

static void test_backoff_bounds(void **state)
{
    kccl_kube_backoff_t b;
    kccl_kube_backoff_init(&b, 100, 5000, 42);
    assert_int_equal(kccl_kube_backoff_bound(&b, 0), 100);
    assert_int_equal(kccl_kube_backoff_bound(&b, 1), 200);
    assert_int_equal(kccl_kube_backoff_bound(&b, 5), 3200);
    assert_int_equal(kccl_kube_backoff_bound(&b, 6), 5000);
    assert_int_equal(kccl_kube_backoff_bound(&b, 1000), 5000); /* no overflow */
    for (int attempt = 0; attempt < 12; attempt++) {
        int64_t bound = kccl_kube_backoff_bound(&b, attempt), lo = bound, hi = 0, sum = 0;
        for (int i = 0; i < 2000; i++) {
            int64_t d = kccl_kube_backoff_next(&b, attempt);
            assert_true(d >= 0 && d <= bound);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
            sum += d;
        }
        /* full jitter: the whole range is used, the mean is about bound / 2 */
        assert_true(lo <= bound / 10);
        assert_true(hi >= bound * 9 / 10);
        assert_true(sum / 2000 > bound * 4 / 10 && sum / 2000 < bound * 6 / 10);
    }
}

static void test_backoff_seeds_differ(void **state)
{
    kccl_kube_backoff_t a, b;
    kccl_kube_backoff_init(&a, 100, 5000, 0);
    kccl_kube_backoff_init(&b, 100, 5000, 0);
    int same = 0;
    for (int i = 0; i < 20; i++)
        same += kccl_kube_backoff_next(&a, 6) == kccl_kube_backoff_next(&b, 6);
    assert_true(same < 5); /* two clients do not retry in lockstep */
}

static void test_retry_delay_deadline(void **state)
{
    kccl_kube_backoff_t b;
    kccl_kube_backoff_init(&b, 100, 5000, 7);
    /* Retry-After wins over the backoff */
    assert_int_equal(kccl_kube_retry_delay(&b, 0, 2000, 1000, 10000), 2000);
    /* ... unless it ends past the deadline */
    assert_int_equal(kccl_kube_retry_delay(&b, 0, 9000, 1000, 10000), -1);
    for (int i = 0; i < 100; i++) {
        int64_t d = kccl_kube_retry_delay(&b, 3, -1, 0, 1 << 30);
        assert_true(d >= 0 && d <= 800);
    }
    assert_int_equal(kccl_kube_retry_delay(&b, 3, -1, 5000, 5000), -1);
}

static void test_retry_policy(void **state)
{
    /* throttling and unavailability: every verb */
    assert_true(kccl_kube_should_retry(429, KCCL_KUBE_FAIL_NONE, 0, 1));
    assert_true(kccl_kube_should_retry(503, KCCL_KUBE_FAIL_NONE, 0, 1));
    /* other 5xx: only what can be repeated safely */
    assert_true(kccl_kube_should_retry(500, KCCL_KUBE_FAIL_NONE, 1, 1));
    assert_false(kccl_kube_should_retry(500, KCCL_KUBE_FAIL_NONE, 0, 1));
    assert_true(kccl_kube_should_retry(504, KCCL_KUBE_FAIL_NONE, 1, 1));
    /* client errors never */
    assert_false(kccl_kube_should_retry(400, KCCL_KUBE_FAIL_NONE, 1, 1));
    assert_false(kccl_kube_should_retry(404, KCCL_KUBE_FAIL_NONE, 1, 1));
    assert_false(kccl_kube_should_retry(409, KCCL_KUBE_FAIL_NONE, 1, 1));
    assert_false(kccl_kube_should_retry(403, KCCL_KUBE_FAIL_NONE, 1, 1));
    /* transport */
    assert_true(kccl_kube_should_retry(0, KCCL_KUBE_FAIL_CONNECT, 0, 50));
    assert_true(kccl_kube_should_retry(0, KCCL_KUBE_FAIL_EXCHANGE, 1, 50));
    assert_false(kccl_kube_should_retry(0, KCCL_KUBE_FAIL_EXCHANGE, 0, 1));
    assert_true(kccl_kube_should_retry(0, KCCL_KUBE_FAIL_TLS_SETUP, 1, 2));
    assert_false(kccl_kube_should_retry(0, KCCL_KUBE_FAIL_TLS_SETUP, 1, 3));
    assert_false(kccl_kube_should_retry(0, KCCL_KUBE_FAIL_FATAL, 1, 1));
}

static void test_redact_header(void **state)
{
    char out[128];
    kccl_kube_redact_header("Authorization: Bearer s3cr3t\r\n", 30, out, sizeof(out));
    assert_string_equal(out, "Authorization <redacted>");
    kccl_kube_redact_header("authorization: Basic Zm9vOmJhcg==", 34, out, sizeof(out));
    assert_null(strstr(out, "Zm9v"));
    kccl_kube_redact_header("Proxy-Authorization: x", 22, out, sizeof(out));
    assert_null(strstr(out, " x"));
    kccl_kube_redact_header("Content-Type: application/json\r\n", 32, out, sizeof(out));
    assert_string_equal(out, "Content-Type: application/json");
    kccl_kube_redact_header("Accept: a", 9, out, 4);
    assert_string_equal(out, "Acc");
}

static void test_base64(void **state)
{
    unsigned char *out;
    size_t n;
    assert_int_equal(kccl_kube_base64_decode("aGVsbG8=", 8, &out, &n), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(out, "hello", 5);
    free(out);
    assert_int_equal(kccl_kube_base64_decode("aGVs\nbG8", 8, &out, &n), 0); /* no padding */
    assert_memory_equal(out, "hello", 5);
    free(out);
    assert_int_equal(kccl_kube_base64_decode("", 0, &out, &n), 0);
    assert_int_equal(n, 0);
    free(out);
    assert_int_equal(kccl_kube_base64_decode("aGVsbG8==", 9, &out, &n), -1);
    assert_int_equal(kccl_kube_base64_decode("a", 1, &out, &n), -1);
    assert_int_equal(kccl_kube_base64_decode("aG=Vs", 5, &out, &n), -1);
    assert_int_equal(kccl_kube_base64_decode("aGV_", 4, &out, &n), -1);
}

static void test_escape(void **state)
{
    kccl_kube_buf_t b = {0};
    assert_int_equal(kccl_kube_buf_put_escaped(&b, "a-b_c.d~e f/g=h,i"), 0);
    assert_string_equal(b.data, "a-b_c.d~e%20f%2Fg%3Dh%2Ci");
    kccl_kube_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_after_seconds),
        cmocka_unit_test(test_retry_after_date),
        cmocka_unit_test(test_backoff_bounds),
        cmocka_unit_test(test_backoff_seeds_differ),
        cmocka_unit_test(test_retry_delay_deadline),
        cmocka_unit_test(test_retry_policy),
        cmocka_unit_test(test_redact_header),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_escape),
    };
    setenv("KCCL_LOG_LEVEL", "none", 1);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
