/*
 * test_kube_json_stream.c - kube/kube_json_stream.c, the watch-stream splitter:
 * a stream of several events fed at every split point (two and three chunks),
 * byte by byte and all at once gives the same events; strings holding braces,
 * quotes and backslashes; the size limit; bytes that are not an event;
 * stopping from the callback; reset between streams.
 */
#include "core/error.h"
#include "kccl_test.h"
#include "kube_json_stream.h"

#define MAX_OBJS 16

typedef struct {
    int n;
    char obj[MAX_OBJS][512];
    int stop_after; /* 0: never */
} got_t;

static int collect(void *arg, const char *obj, size_t len)
{
    got_t *g = arg;
    assert_true(g->n < MAX_OBJS);
    assert_true(len < sizeof(g->obj[0]));
    memcpy(g->obj[g->n], obj, len);
    g->obj[g->n][len] = '\0';
    g->n++;
    return (g->stop_after && g->n == g->stop_after) ? 7 : 0;
}

/* Three events as the apiserver sends them, the middle one full of traps. */
static const char *events[] = {
    "{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\","
    "\"resourceVersion\":\"10\"}}}",
    "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"b\",\"annotations\":{"
    "\"x\":\"} ] { [ \\\" \\\\\",\"y\":\"\\\\\\\"}\"}},\"spec\":{\"l\":[1,[2,{}]]}}}",
    "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"resourceVersion\":"
    "\"12\"}}}",
};

static char stream[2048];

static size_t make_stream(void)
{
    stream[0] = '\0';
    for (size_t i = 0; i < 3; i++) {
        strcat(stream, events[i]);
        strcat(stream, "\n");
    }
    return strlen(stream);
}

static void check_all(const got_t *g)
{
    assert_int_equal(g->n, 3);
    for (int i = 0; i < 3; i++)
        assert_string_equal(g->obj[i], events[i]);
}

static void test_one_chunk(void **state)
{
    size_t n = make_stream();
    kccl_kube_json_stream_t s;
    got_t g = {0};
    kccl_kube_json_stream_init(&s, 0);
    assert_int_equal(kccl_kube_json_stream_feed(&s, stream, n, collect, &g), KCCL_OK);
    check_all(&g);
    assert_int_equal(kccl_kube_json_stream_pending(&s), 0);
    kccl_kube_json_stream_fini(&s);
}

static void test_every_split_point(void **state)
{
    size_t n = make_stream();
    for (size_t cut = 0; cut <= n; cut++) {
        kccl_kube_json_stream_t s;
        got_t g = {0};
        kccl_kube_json_stream_init(&s, 0);
        assert_int_equal(kccl_kube_json_stream_feed(&s, stream, cut, collect, &g), KCCL_OK);
        assert_int_equal(kccl_kube_json_stream_feed(&s, stream + cut, n - cut, collect, &g),
                         KCCL_OK);
        check_all(&g);
        kccl_kube_json_stream_fini(&s);
    }
}

static void test_every_pair_of_split_points(void **state)
{
    size_t n = make_stream();
    for (size_t a = 0; a <= n; a++) {
        for (size_t b = a; b <= n; b++) {
            kccl_kube_json_stream_t s;
            got_t g = {0};
            kccl_kube_json_stream_init(&s, 0);
            assert_int_equal(kccl_kube_json_stream_feed(&s, stream, a, collect, &g), 0);
            assert_int_equal(kccl_kube_json_stream_feed(&s, stream + a, b - a, collect, &g), 0);
            assert_int_equal(kccl_kube_json_stream_feed(&s, stream + b, n - b, collect, &g), 0);
            check_all(&g);
            kccl_kube_json_stream_fini(&s);
        }
    }
}

static void test_byte_by_byte(void **state)
{
    size_t n = make_stream();
    kccl_kube_json_stream_t s;
    got_t g = {0};
    kccl_kube_json_stream_init(&s, 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(kccl_kube_json_stream_feed(&s, stream + i, 1, collect, &g), KCCL_OK);
        /* an event is complete exactly when its closing brace arrives */
        if (i + 1 < n && stream[i + 1] == '\n')
            assert_int_equal(kccl_kube_json_stream_pending(&s), 0);
    }
    check_all(&g);
    kccl_kube_json_stream_fini(&s);
}

static void test_no_newlines_and_pretty(void **state)
{
    const char *in = "{\"a\":1}{\"b\":{\"c\":[]}}  \r\n\t{\n  \"d\": \"e\"\n}\n";
    kccl_kube_json_stream_t s;
    got_t g = {0};
    kccl_kube_json_stream_init(&s, 0);
    assert_int_equal(kccl_kube_json_stream_feed(&s, in, strlen(in), collect, &g), KCCL_OK);
    assert_int_equal(g.n, 3);
    assert_string_equal(g.obj[0], "{\"a\":1}");
    assert_string_equal(g.obj[1], "{\"b\":{\"c\":[]}}");
    assert_string_equal(g.obj[2], "{\n  \"d\": \"e\"\n}");
    kccl_kube_json_stream_fini(&s);
}

static void test_truncated_stream_is_pending(void **state)
{
    kccl_kube_json_stream_t s;
    got_t g = {0};
    kccl_kube_json_stream_init(&s, 0);
    const char *in = "{\"a\":1}\n{\"type\":\"ADD";
    assert_int_equal(kccl_kube_json_stream_feed(&s, in, strlen(in), collect, &g), KCCL_OK);
    assert_int_equal(g.n, 1);
    assert_int_equal(kccl_kube_json_stream_pending(&s), strlen("{\"type\":\"ADD"));
    /* A new HTTP stream starts clean. */
    kccl_kube_json_stream_reset(&s);
    assert_int_equal(kccl_kube_json_stream_pending(&s), 0);
    assert_int_equal(kccl_kube_json_stream_feed(&s, "{\"z\":0}", 7, collect, &g), KCCL_OK);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.obj[1], "{\"z\":0}");
    kccl_kube_json_stream_fini(&s);
}

static void test_size_limit(void **state)
{
    kccl_kube_json_stream_t s;
    got_t g = {0};
    kccl_kube_json_stream_init(&s, 16);
    /* in one chunk */
    const char *big = "{\"aaaaaaaaaaaaaaaaaaaa\":1}";
    assert_int_equal(kccl_kube_json_stream_feed(&s, "{\"a\":1}", 7, collect, &g), KCCL_OK);
    assert_int_equal(kccl_kube_json_stream_feed(&s, big, strlen(big), collect, &g),
                     KCCL_ERR_PROTOCOL);
    assert_non_null(strstr(kccl_last_error(), "larger than 16 bytes"));
    /* sticky until reset */
    assert_int_equal(kccl_kube_json_stream_feed(&s, "{}", 2, collect, &g), KCCL_ERR_PROTOCOL);
    kccl_kube_json_stream_reset(&s);
    /* across chunks, before the object completes */
    assert_int_equal(kccl_kube_json_stream_feed(&s, big, 10, collect, &g), KCCL_OK);
    assert_int_equal(kccl_kube_json_stream_feed(&s, big + 10, 10, collect, &g), KCCL_ERR_PROTOCOL);
    assert_int_equal(g.n, 1);
    kccl_kube_json_stream_fini(&s);
}

static void test_garbage(void **state)
{
    kccl_kube_json_stream_t s;
    got_t g = {0};
    kccl_kube_json_stream_init(&s, 0);
    assert_int_equal(kccl_kube_json_stream_feed(&s, "{}\n<html>", 9, collect, &g),
                     KCCL_ERR_PROTOCOL);
    assert_int_equal(g.n, 1);
    assert_non_null(strstr(kccl_last_error(), "0x3c"));
    assert_non_null(strstr(kccl_last_error(), "offset 3"));
    kccl_kube_json_stream_fini(&s);
}

static void test_callback_stops(void **state)
{
    size_t n = make_stream();
    kccl_kube_json_stream_t s;
    got_t g = {.stop_after = 2};
    kccl_kube_json_stream_init(&s, 0);
    assert_int_equal(kccl_kube_json_stream_feed(&s, stream, n, collect, &g), 7);
    assert_int_equal(g.n, 2);
    kccl_kube_json_stream_fini(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_chunk),
        cmocka_unit_test(test_every_split_point),
        cmocka_unit_test(test_every_pair_of_split_points),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_no_newlines_and_pretty),
        cmocka_unit_test(test_truncated_stream_is_pending),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_callback_stops),
    };
    setenv("KCCL_LOG_LEVEL", "none", 1);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
