/*
 * test_kube_store.c - kube/kube_store.c, the watch's memory of objects: how a
 * relist after 410 Gone is turned into synthetic ADDED / MODIFIED / DELETED
 * events (and nothing for objects that did not change).
 */
#include "kccl_test.h"
#include "kube_store.h"

typedef struct {
    int n;
    kccl_kube_event_type_t type[64];
    char name[64][32];
    int stop_at;
} emitted_t;

static int emit(void *arg, kccl_kube_event_type_t type, const cJSON *obj)
{
    emitted_t *e = arg;
    const cJSON *m = cJSON_GetObjectItem(obj, "metadata");
    if (e->n < 64) { /* count them all, remember the first 64 */
        e->type[e->n] = type;
        snprintf(e->name[e->n], sizeof(e->name[0]), "%s",
                 cJSON_GetObjectItem(m, "name")->valuestring);
    }
    e->n++;
    return e->stop_at && e->n == e->stop_at ? 3 : 0;
}

static cJSON *pod(const char *name, const char *rv)
{
    char text[256];
    snprintf(text, sizeof(text),
             "{\"metadata\":{\"namespace\":\"ns\",\"name\":\"%s\",\"resourceVersion\":\"%s\"}}",
             name, rv);
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    return j;
}

static int find(const emitted_t *e, const char *name, kccl_kube_event_type_t type)
{
    for (int i = 0; i < e->n && i < 64; i++)
        if (strcmp(e->name[i], name) == 0 && e->type[i] == type)
            return 1;
    return 0;
}

static void test_key(void **state)
{
    char k[64];
    cJSON *p = pod("a", "1");
    assert_int_equal(kccl_kube_object_key(p, k, sizeof(k)), 0);
    assert_string_equal(k, "ns/a");
    cJSON *n = cJSON_Parse("{\"metadata\":{\"name\":\"node-1\"}}");
    assert_int_equal(kccl_kube_object_key(n, k, sizeof(k)), 0);
    assert_string_equal(k, "node-1");
    assert_int_equal(kccl_kube_object_key(p, k, 3), -1);
    cJSON *none = cJSON_Parse("{\"metadata\":{}}");
    assert_int_equal(kccl_kube_object_key(none, k, sizeof(k)), -1);
    cJSON_Delete(p);
    cJSON_Delete(n);
    cJSON_Delete(none);
}

static void test_relist_diff(void **state)
{
    kccl_kube_store_t s;
    assert_int_equal(kccl_kube_store_init(&s), 0);
    /* what the watch saw */
    const char *names[] = {"keep", "change", "gone", "gone2"};
    for (int i = 0; i < 4; i++) {
        cJSON *p = pod(names[i], "5");
        assert_int_equal(kccl_kube_store_apply(&s, KCCL_KUBE_EVENT_ADDED, p), 0);
        cJSON_Delete(p);
    }
    assert_int_equal(s.count, 4);
    /* the relist */
    cJSON *items = cJSON_CreateArray();
    cJSON_AddItemToArray(items, pod("keep", "5"));
    cJSON_AddItemToArray(items, pod("change", "9"));
    cJSON_AddItemToArray(items, pod("new", "8"));
    emitted_t e = {0};
    assert_int_equal(kccl_kube_store_replace(&s, items, emit, &e), 0);
    assert_int_equal(e.n, 4);
    assert_true(find(&e, "change", KCCL_KUBE_EVENT_MODIFIED));
    assert_true(find(&e, "new", KCCL_KUBE_EVENT_ADDED));
    assert_true(find(&e, "gone", KCCL_KUBE_EVENT_DELETED));
    assert_true(find(&e, "gone2", KCCL_KUBE_EVENT_DELETED));
    assert_false(find(&e, "keep", KCCL_KUBE_EVENT_MODIFIED));
    /* list order first, deletions last */
    assert_int_equal(e.type[0], KCCL_KUBE_EVENT_MODIFIED);
    assert_int_equal(e.type[1], KCCL_KUBE_EVENT_ADDED);
    assert_int_equal(s.count, 3);
    const cJSON *c = kccl_kube_store_get(&s, "ns/change");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(c, "metadata"), "resourceVersion")->valuestring,
        "9");
    assert_null(kccl_kube_store_get(&s, "ns/gone"));
    kccl_kube_store_fini(&s);
}

static void test_apply_delete_and_many(void **state)
{
    kccl_kube_store_t s;
    assert_int_equal(kccl_kube_store_init(&s), 0);
    char name[32];
    for (int i = 0; i < 1000; i++) { /* grows past the initial buckets */
        snprintf(name, sizeof(name), "p-%d", i);
        cJSON *p = pod(name, "1");
        assert_int_equal(kccl_kube_store_apply(&s, KCCL_KUBE_EVENT_ADDED, p), 0);
        cJSON_Delete(p);
    }
    assert_int_equal(s.count, 1000);
    for (int i = 0; i < 1000; i += 2) {
        snprintf(name, sizeof(name), "p-%d", i);
        cJSON *p = pod(name, "2");
        assert_int_equal(kccl_kube_store_apply(&s, KCCL_KUBE_EVENT_DELETED, p), 0);
        cJSON_Delete(p);
    }
    assert_int_equal(s.count, 500);
    assert_null(kccl_kube_store_get(&s, "ns/p-10"));
    assert_non_null(kccl_kube_store_get(&s, "ns/p-11"));
    /* an empty relist deletes everything */
    emitted_t e = {0};
    e.stop_at = 0;
    cJSON *items = cJSON_CreateArray();
    int rc = kccl_kube_store_replace(&s, items, emit, &e);
    assert_int_equal(rc, 0);
    assert_int_equal(e.n, 500);
    assert_int_equal(s.count, 0);
    kccl_kube_store_fini(&s);
}

static void test_emit_stops(void **state)
{
    kccl_kube_store_t s;
    assert_int_equal(kccl_kube_store_init(&s), 0);
    cJSON *items = cJSON_CreateArray();
    cJSON_AddItemToArray(items, pod("a", "1"));
    cJSON_AddItemToArray(items, pod("b", "1"));
    emitted_t e = {.stop_at = 1};
    assert_int_equal(kccl_kube_store_replace(&s, items, emit, &e), 3);
    assert_int_equal(e.n, 1);
    kccl_kube_store_fini(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key),
        cmocka_unit_test(test_relist_diff),
        cmocka_unit_test(test_apply_delete_and_many),
        cmocka_unit_test(test_emit_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
