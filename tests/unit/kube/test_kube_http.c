/*
 * test_kube_http.c - kube/kube_http.c and kube/kube_watch.c at the HTTP level,
 * against the scripted loopback responder (kube_test_server.h): exactly one
 * Content-Type per request, the bearer token, 429 + Retry-After, 5xx retries
 * per verb, the deadline bounding retries, the stop flag, a 401 followed by a
 * re-read of the token file (and the timer refresh), Status bodies in errors,
 * and a watch whose events arrive split across HTTP chunks and whose stream is
 * cut mid-event (it must resume from the last resourceVersion).
 */
#include "core/error.h"
#include "kube_http.h"
#include "kube_test_server.h"

static char dir[256];
static char token_path[300];

static int setup(void **state)
{
    kccl_test_mkdtemp(dir);
    snprintf(token_path, sizeof(token_path), "%s/token", dir);
    kccl_test_write_file(token_path, "tok-1\n", 6, 0600);
    return 0;
}

/* A client for http://127.0.0.1:port with a static token or the token file. */
static kccl_kube_client_t client(int port, int use_file)
{
    char text[1024];
    snprintf(text, sizeof(text),
             "clusters:\n- name: c\n  cluster: {server: 'http://127.0.0.1:%d'}\n"
             "users:\n- name: u\n  user: {%s: '%s'}\n"
             "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
             "current-context: x\n",
             port, use_file ? "tokenFile" : "token", use_file ? token_path : "static-tok");
    kccl_kube_config_t cfg = NULL;
    assert_int_equal(kccl_kube_config_parse_kubeconfig(text, strlen(text), "test", dir, NULL, &cfg),
                     KCCL_OK);
    kccl_kube_client_t c = NULL;
    assert_int_equal(kccl_kube_client_create(cfg, &c), KCCL_OK);
    return c;
}

static const char *pod_json = "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"}}";

static void test_one_content_type(void **state)
{
    kts_response_t script[] = {{.status = 200, .body = "{\"kind\":\"Pod\"}"}};
    kts_t s;
    kts_start(&s, script, 1);
    kccl_kube_client_t c = client(s.port, 0);
    cJSON *out = NULL;
    assert_int_equal(kccl_kube_patch(c, "/api/v1/namespaces/n/pods/p", KCCL_KUBE_PATCH_MERGE,
                                     "{\"metadata\":{\"annotations\":{\"a\":\"b\"}}}", NULL, &out,
                                     NULL),
                     KCCL_OK);
    assert_string_equal(cJSON_GetObjectItem(out, "kind")->valuestring, "Pod");
    cJSON_Delete(out);
    cJSON *body = cJSON_Parse(pod_json);
    assert_int_equal(kccl_kube_create(c, "/api/v1/namespaces/n/pods", body, NULL, NULL, NULL),
                     KCCL_OK);
    assert_int_equal(kccl_kube_patch(c, "/api/v1/namespaces/n/pods/p", KCCL_KUBE_PATCH_JSON,
                                     "[{\"op\":\"add\",\"path\":\"/x\",\"value\":1}]", NULL, NULL,
                                     NULL),
                     KCCL_OK);
    assert_int_equal(kccl_kube_replace(c, "/api/v1/namespaces/n/pods/p", body, NULL, NULL, NULL),
                     KCCL_OK);
    assert_int_equal(kccl_kube_get(c, "/api/v1/namespaces/n/pods/p", NULL, NULL, NULL), KCCL_OK);
    assert_int_equal(kccl_kube_delete(c, "/api/v1/namespaces/n/pods/p", NULL, NULL, NULL), KCCL_OK);
    cJSON_Delete(body);
    kts_stop(&s);
    assert_int_equal(atomic_load(&s.nreq), 6);

    kts_request_t *r = &s.req[0];
    assert_string_equal(r->method, "PATCH");
    assert_int_equal(r->content_types, 1);
    assert_string_equal(r->content_type, "application/merge-patch+json");
    assert_string_equal(r->body, "{\"metadata\":{\"annotations\":{\"a\":\"b\"}}}");
    assert_string_equal(r->authorization, "Bearer static-tok");
    assert_null(strcasestr(r->head, "\r\nExpect:"));
    assert_non_null(strcasestr(r->head, "\r\nAccept: application/json"));
    assert_string_equal(s.req[1].method, "POST");
    assert_int_equal(s.req[1].content_types, 1);
    assert_string_equal(s.req[1].content_type, "application/json");
    assert_int_equal(s.req[2].content_types, 1);
    assert_string_equal(s.req[2].content_type, "application/json-patch+json");
    assert_string_equal(s.req[3].method, "PUT");
    assert_int_equal(s.req[3].content_types, 1);
    assert_string_equal(s.req[4].method, "GET");
    assert_int_equal(s.req[4].content_types, 0);
    assert_string_equal(s.req[5].method, "DELETE");
    assert_int_equal(s.req[5].content_types, 0);
    kccl_kube_client_destroy(c);
}

static void test_429_retry_after(void **state)
{
    kts_response_t script[] = {
        {.status = 429,
         .headers = "Retry-After: 1\r\n",
         .body = "{\"kind\":\"Status\",\"reason\":\"TooManyRequests\",\"code\":429}"},
        {.status = 200, .body = "{}"}};
    kts_t s;
    kts_start(&s, script, 2);
    kccl_kube_client_t c = client(s.port, 0);
    kccl_kube_result_t res;
    int64_t t0 = kccl_kube_now_ms();
    /* POST too: a 429 means the apiserver did not act */
    cJSON *body = cJSON_Parse(pod_json);
    assert_int_equal(kccl_kube_create(c, "/api/v1/namespaces/n/pods", body, NULL, NULL, &res),
                     KCCL_OK);
    int64_t took = kccl_kube_now_ms() - t0;
    assert_int_equal(res.attempts, 2);
    assert_true(took >= 950 && took < 3000);
    cJSON_Delete(body);
    kts_stop(&s);
    kccl_kube_client_destroy(c);
}

static void test_429_retry_after_past_deadline(void **state)
{
    kts_response_t script[] = {{.status = 429, .headers = "Retry-After: 30\r\n", .body = "{}"}};
    kts_t s;
    kts_start(&s, script, 1);
    kccl_kube_client_t c = client(s.port, 0);
    kccl_kube_opts_t o = {.timeout_ms = 2000};
    kccl_kube_result_t res;
    int64_t t0 = kccl_kube_now_ms();
    assert_int_equal(kccl_kube_get(c, "/api/v1/pods", &o, NULL, &res), KCCL_ERR_TIMED_OUT);
    assert_true(kccl_kube_now_ms() - t0 < 1000); /* gives up at once, does not sleep 30 s */
    assert_int_equal(res.http_status, 429);
    assert_non_null(strstr(kccl_last_error(), "429"));
    kts_stop(&s);
    kccl_kube_client_destroy(c);
}

static void test_5xx_retry_per_verb(void **state)
{
    kts_response_t script[] = {{.status = 503, .body = "{}"},
                               {.status = 500, .body = "{}"},
                               {.status = 200, .body = "{\"ok\":true}"},
                               {.status = 500,
                                .body = "{\"kind\":\"Status\",\"reason\":\"InternalError\","
                                        "\"message\":\"etcd went away\",\"code\":500}"}};
    kts_t s;
    kts_start(&s, script, 4);
    kccl_kube_client_t c = client(s.port, 0);
    kccl_kube_result_t res;
    cJSON *out = NULL;
    assert_int_equal(kccl_kube_get(c, "/api/v1/pods", NULL, &out, &res), KCCL_OK);
    assert_int_equal(res.attempts, 3);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(out, "ok")));
    cJSON_Delete(out);
    /* POST is not repeated after a 500: it may have been acted on */
    cJSON *body = cJSON_Parse(pod_json);
    assert_int_equal(kccl_kube_create(c, "/api/v1/namespaces/n/pods", body, NULL, NULL, &res),
                     KCCL_ERR_KUBE);
    assert_int_equal(res.attempts, 1);
    assert_string_equal(res.reason, "InternalError");
    assert_non_null(strstr(kccl_last_error(), "POST /api/v1/namespaces/n/pods: 500 "
                                              "InternalError: etcd went away"));
    cJSON_Delete(body);
    /* GET keeps trying until its deadline, and no longer */
    kccl_kube_opts_t o = {.timeout_ms = 1500};
    int64_t t0 = kccl_kube_now_ms();
    assert_int_equal(kccl_kube_get(c, "/api/v1/pods", &o, NULL, &res), KCCL_ERR_TIMED_OUT);
    int64_t took = kccl_kube_now_ms() - t0;
    assert_true(took <= 1700);
    assert_true(res.attempts >= 2);
    /* max_attempts */
    kccl_kube_opts_t once = {.max_attempts = 1};
    assert_int_equal(kccl_kube_get(c, "/api/v1/pods", &once, NULL, &res), KCCL_ERR_KUBE);
    assert_int_equal(res.attempts, 1);
    kts_stop(&s);
    kccl_kube_client_destroy(c);
}

static void test_connection_refused_bounded(void **state)
{
    kccl_kube_client_t c = client(kts_dead_port(), 0);
    kccl_kube_opts_t o = {.timeout_ms = 800};
    kccl_kube_result_t res;
    int64_t t0 = kccl_kube_now_ms();
    assert_int_equal(kccl_kube_get(c, "/version", &o, NULL, &res), KCCL_ERR_TIMED_OUT);
    int64_t took = kccl_kube_now_ms() - t0;
    assert_true(took < 1200);
    assert_true(res.attempts >= 2);
    assert_int_equal(res.http_status, 0);
    assert_non_null(strstr(kccl_last_error(), "GET /version"));
    kccl_kube_client_destroy(c);
}

typedef struct {
    atomic_int *flag;
    int after_ms;
} stopper_t;

static void *stopper(void *arg)
{
    stopper_t *st = arg;
    kts_sleep_ms(st->after_ms);
    atomic_store(st->flag, 1);
    return NULL;
}

static void test_stop_flag(void **state)
{
    kts_response_t script[] = {{.status = 200, .body = "{}", .hang_ms = 3000}};
    kts_t s;
    kts_start(&s, script, 1);
    kccl_kube_client_t c = client(s.port, 0);
    atomic_int stop = 0;
    stopper_t st = {&stop, 200};
    pthread_t t;
    pthread_create(&t, NULL, stopper, &st);
    kccl_kube_opts_t o = {.stop = &stop};
    int64_t t0 = kccl_kube_now_ms();
    assert_int_equal(kccl_kube_get(c, "/api/v1/pods", &o, NULL, NULL), KCCL_ERR_ABORTED);
    assert_true(kccl_kube_now_ms() - t0 < 1000);
    pthread_join(t, NULL);
    kts_stop(&s);
    kccl_kube_client_destroy(c);
}

static const char *unauthorized = "{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":"
                                  "\"Unauthorized\",\"reason\":\"Unauthorized\",\"code\":401}";

static void test_401_rereads_token_file(void **state)
{
    kts_response_t script[] = {{.status = 401, .body = unauthorized},
                               {.status = 200, .body = "{}"},
                               {.status = 401, .body = unauthorized}};
    kts_t s;
    kts_start(&s, script, 3);
    kccl_kube_client_t c = client(s.port, 1);
    kccl_kube_result_t res;
    /* the token was rotated on disk after the client read it */
    kccl_test_write_file(token_path, "tok-2\n", 6, 0600);
    assert_int_equal(kccl_kube_get(c, "/api/v1/pods", NULL, NULL, &res), KCCL_OK);
    assert_int_equal(atomic_load(&s.nreq), 2);
    assert_string_equal(s.req[0].authorization, "Bearer tok-1");
    assert_string_equal(s.req[1].authorization, "Bearer tok-2");
    /* a 401 with an unchanged file: no pointless retry */
    assert_int_equal(kccl_kube_get(c, "/api/v1/pods", NULL, NULL, &res), KCCL_ERR_AUTH);
    assert_int_equal(atomic_load(&s.nreq), 3);
    assert_int_equal(res.http_status, 401);
    assert_null(strstr(kccl_last_error(), "tok-2")); /* never the token */
    kts_stop(&s);
    kccl_kube_client_destroy(c);
}

static void test_token_timer_refresh(void **state)
{
    kts_response_t script[] = {{.status = 200, .body = "{}"}};
    kts_t s;
    kts_start(&s, script, 1);
    kccl_kube_client_t c = client(s.port, 1);
    kccl_kube_config_set_token_refresh_ms(kccl_kube_client_config(c), 50);
    assert_int_equal(kccl_kube_get(c, "/a", NULL, NULL, NULL), KCCL_OK);
    kccl_test_write_file(token_path, "tok-3", 5, 0600);
    kts_sleep_ms(80);
    assert_int_equal(kccl_kube_get(c, "/b", NULL, NULL, NULL), KCCL_OK);
    /* unreadable now: the previous token stays in use */
    unlink(token_path);
    kts_sleep_ms(80);
    assert_int_equal(kccl_kube_get(c, "/c", NULL, NULL, NULL), KCCL_OK);
    kts_stop(&s);
    assert_string_equal(s.req[0].authorization, "Bearer tok-1");
    assert_string_equal(s.req[1].authorization, "Bearer tok-3");
    assert_string_equal(s.req[2].authorization, "Bearer tok-3");
    kccl_kube_client_destroy(c);
}

static void test_status_in_last_error(void **state)
{
    kts_response_t script[] = {
        {.status = 404,
         .body = "{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"pods \\\"p\\\" not "
                 "found\",\"reason\":\"NotFound\",\"code\":404}"},
        {.status = 200, .body = "not json"}};
    kts_t s;
    kts_start(&s, script, 2);
    kccl_kube_client_t c = client(s.port, 0);
    kccl_kube_result_t res;
    assert_int_equal(kccl_kube_get(c, "/api/v1/namespaces/n/pods/p?x=1", NULL, NULL, &res),
                     KCCL_ERR_NOT_FOUND);
    assert_int_equal(res.code, 404);
    assert_string_equal(res.reason, "NotFound");
    assert_string_equal(kccl_last_error(),
                        "GET /api/v1/namespaces/n/pods/p: 404 NotFound: pods \"p\" not found");
    cJSON *out = NULL;
    assert_int_equal(kccl_kube_get(c, "/x", NULL, &out, &res), KCCL_ERR_PROTOCOL);
    assert_null(out);
    kts_stop(&s);
    kccl_kube_client_destroy(c);
}

/* ------------------------------------------------------------------ watch transport */

typedef struct {
    int n;
    char name[16][32];
    kccl_kube_event_type_t type[16];
    int stop_at;
} seen_t;

static int on_event(void *arg, const kccl_kube_event_t *ev)
{
    seen_t *s = arg;
    const cJSON *m = cJSON_GetObjectItem(ev->object, "metadata");
    const cJSON *name = cJSON_GetObjectItem(m, "name");
    assert_true(s->n < 16);
    s->type[s->n] = ev->type;
    snprintf(s->name[s->n], sizeof(s->name[0]), "%s",
             cJSON_IsString(name) ? name->valuestring : "");
    s->n++;
    return s->n == s->stop_at ? 1 : 0;
}

#define EV(type, name, rv)                                                                         \
    "{\"type\":\"" type "\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"" name           \
    "\",\"resourceVersion\":\"" rv "\"}}}\n"

static void test_watch_chunks_and_resume(void **state)
{
    /* events split at awkward places, then the connection is cut inside an event */
    static const char *const first[] = {
        "{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"na",
        "me\":\"a\",\"resourceVersion\":\"11\"}}}\n{\"type\":\"MODIFIED\",\"object\":{",
        "\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"12\"}}}\n" EV(
            "BOOKMARK", "", "13"),
        "{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\",\"metad", /* cut here */
        NULL};
    static const char *const second[] = {EV("ADDED", "b", "14") EV("DELETED", "a", "15"), NULL};
    kts_response_t script[] = {{.status = 200, .chunks = first, .chunk_delay_ms = 20, .cut = 1},
                               {.status = 200, .chunks = second}};
    kts_t s;
    kts_start(&s, script, 2);
    kccl_kube_client_t c = client(s.port, 0);
    seen_t seen = {.stop_at = 5};
    kccl_kube_watch_stats_t stats;
    kccl_kube_watch_opts_t o = {.path = "/api/v1/namespaces/n/pods",
                                .field_selector = "metadata.name=a",
                                .resource_version = "10",
                                .timeout_ms = 10000,
                                .server_timeout_s = 30,
                                .stats = &stats};
    assert_int_equal(kccl_kube_watch(c, &o, on_event, &seen, NULL), KCCL_OK);
    kts_stop(&s);
    assert_int_equal(seen.n, 5);
    assert_int_equal(seen.type[0], KCCL_KUBE_EVENT_ADDED);
    assert_int_equal(seen.type[1], KCCL_KUBE_EVENT_MODIFIED);
    assert_int_equal(seen.type[2], KCCL_KUBE_EVENT_BOOKMARK);
    assert_int_equal(seen.type[3], KCCL_KUBE_EVENT_ADDED);
    assert_string_equal(seen.name[3], "b");
    assert_int_equal(seen.type[4], KCCL_KUBE_EVENT_DELETED);
    assert_int_equal(atomic_load(&s.nreq), 2);
    assert_non_null(strstr(s.req[0].target, "watch=1"));
    assert_non_null(strstr(s.req[0].target, "allowWatchBookmarks=true"));
    assert_non_null(strstr(s.req[0].target, "resourceVersion=10"));
    assert_non_null(strstr(s.req[0].target, "timeoutSeconds=30"));
    assert_non_null(strstr(s.req[0].target, "fieldSelector=metadata.name%3Da"));
    /* resumed from the bookmark's version, the last one fully received */
    assert_non_null(strstr(s.req[1].target, "resourceVersion=13"));
    assert_int_equal(stats.streams, 2);
    assert_int_equal(stats.resumes, 1);
    assert_int_equal(stats.relists, 0);
    assert_string_equal(stats.resource_version, "15");
    kccl_kube_client_destroy(c);
}

static void test_watch_deadline_and_stop(void **state)
{
    static const char *const quiet[] = {EV("BOOKMARK", "", "20"), NULL};
    kts_response_t script[] = {{.status = 200, .chunks = quiet, .chunk_delay_ms = 2000}};
    kts_t s;
    kts_start(&s, script, 1);
    kccl_kube_client_t c = client(s.port, 0);
    seen_t seen = {0};
    kccl_kube_watch_opts_t o = {
        .path = "/api/v1/pods", .resource_version = "19", .timeout_ms = 700};
    int64_t t0 = kccl_kube_now_ms();
    assert_int_equal(kccl_kube_watch(c, &o, on_event, &seen, NULL), KCCL_ERR_TIMED_OUT);
    assert_true(kccl_kube_now_ms() - t0 < 1500);
    assert_int_equal(seen.n, 1);

    atomic_int stop = 0;
    stopper_t st = {&stop, 300};
    pthread_t t;
    pthread_create(&t, NULL, stopper, &st);
    o.timeout_ms = 0;
    o.stop = &stop;
    t0 = kccl_kube_now_ms();
    assert_int_equal(kccl_kube_watch(c, &o, on_event, &seen, NULL), KCCL_ERR_ABORTED);
    assert_true(kccl_kube_now_ms() - t0 < 1500);
    pthread_join(t, NULL);
    kts_stop(&s);
    kccl_kube_client_destroy(c);
}

static void test_watch_forbidden_is_final(void **state)
{
    kts_response_t script[] = {
        {.status = 403,
         .body = "{\"kind\":\"Status\",\"message\":\"pods is forbidden\",\"reason\":\"Forbidden\","
                 "\"code\":403}"}};
    kts_t s;
    kts_start(&s, script, 1);
    kccl_kube_client_t c = client(s.port, 0);
    seen_t seen = {0};
    kccl_kube_result_t res;
    kccl_kube_watch_opts_t o = {
        .path = "/api/v1/namespaces/x/pods", .resource_version = "1", .timeout_ms = 5000};
    assert_int_equal(kccl_kube_watch(c, &o, on_event, &seen, &res), KCCL_ERR_AUTH);
    assert_true(kccl_kube_is_forbidden(&res));
    assert_int_equal(atomic_load(&s.nreq), 1);
    kts_stop(&s);
    kccl_kube_client_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_one_content_type, setup),
        cmocka_unit_test_setup(test_429_retry_after, setup),
        cmocka_unit_test_setup(test_429_retry_after_past_deadline, setup),
        cmocka_unit_test_setup(test_5xx_retry_per_verb, setup),
        cmocka_unit_test_setup(test_connection_refused_bounded, setup),
        cmocka_unit_test_setup(test_stop_flag, setup),
        cmocka_unit_test_setup(test_401_rereads_token_file, setup),
        cmocka_unit_test_setup(test_token_timer_refresh, setup),
        cmocka_unit_test_setup(test_status_in_last_error, setup),
        cmocka_unit_test_setup(test_watch_chunks_and_resume, setup),
        cmocka_unit_test_setup(test_watch_deadline_and_stop, setup),
        cmocka_unit_test_setup(test_watch_forbidden_is_final, setup),
    };
    setenv("KCCL_LOG_LEVEL", "none", 1);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
