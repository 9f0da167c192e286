/*
 * test_kube_cp_crud.c - the kube client's verbs on pods against the real
 * control plane (pods stay Pending: there is no kubelet): POST (and 409
 * AlreadyExists), GET (and 404), LIST with label and field selectors and
 * limit/continue paging, merge / strategic / JSON PATCH (the apiserver
 * accepts the merge-patch Content-Type; the count of Content-Type headers is
 * checked byte for byte in tests/unit/kube/test_kube_http.c), PUT with a
 * stale resourceVersion (409 Conflict), 422 Invalid, 400 for a broken patch,
 * DELETE. Results are checked with kubectl, not with the client under test.
 */
#include "kube_cp.h"
#include "kube_list.h"

static kccl_kube_client_t admin;
static char pods[256];

static void pod_path(char *buf, size_t len, const char *name)
{
    assert_int_equal(kccl_kube_path(buf, len, "v1", kcp.ns, "pods", name, NULL), KCCL_OK);
}

static void test_create_get_conflict(void **state)
{
    char path[256];
    cJSON *pod = kcp_pod("p-create", "g1", NULL), *out = NULL;
    kccl_kube_result_t res;
    assert_int_equal(kccl_kube_create(admin, pods, pod, NULL, &out, &res), KCCL_OK);
    assert_string_equal(kcp_str(out, "metadata", "name"), "p-create");
    assert_non_null(kcp_str(out, "metadata", "uid"));
    cJSON_Delete(out);
    /* POST again: 409 AlreadyExists, not retried */
    assert_int_equal(kccl_kube_create(admin, pods, pod, NULL, NULL, &res), KCCL_ERR_KUBE);
    assert_true(kccl_kube_is_already_exists(&res));
    assert_true(kccl_kube_is_conflict(&res));
    assert_int_equal(res.attempts, 1);
    assert_non_null(strstr(res.message, "already exists"));
    cJSON_Delete(pod);

    pod_path(path, sizeof(path), "p-create");
    out = NULL;
    assert_int_equal(kccl_kube_get(admin, path, NULL, &out, NULL), KCCL_OK);
    assert_string_equal(kcp_str(out, "status", "phase"), "Pending");
    cJSON_Delete(out);
    pod_path(path, sizeof(path), "p-missing");
    assert_int_equal(kccl_kube_get(admin, path, NULL, NULL, &res), KCCL_ERR_NOT_FOUND);
    assert_string_equal(res.reason, "NotFound");
    assert_non_null(strstr(res.message, "\"p-missing\" not found"));
    assert_non_null(strstr(kccl_last_error(), "404 NotFound"));
}

static void test_invalid(void **state)
{
    kccl_kube_result_t res;
    cJSON *bad = kcp_pod("Bad_Name", "g1", NULL);
    assert_int_equal(kccl_kube_create(admin, pods, bad, NULL, NULL, &res), KCCL_ERR_INVALID_ARG);
    assert_true(kccl_kube_is_invalid(&res));
    assert_string_equal(res.reason, "Invalid");
    cJSON_Delete(bad);
}

static int count_items(const cJSON *list)
{
    return cJSON_GetArraySize(cJSON_GetObjectItem(list, "items"));
}

static void test_list_selectors_and_paging(void **state)
{
    char name[32], out[256];
    for (int i = 0; i < 7; i++) {
        snprintf(name, sizeof(name), "p-list-%d", i);
        cJSON *pod = kcp_pod(name, i < 5 ? "paged" : "other", NULL);
        assert_int_equal(kccl_kube_create(admin, pods, pod, NULL, NULL, NULL), KCCL_OK);
        cJSON_Delete(pod);
    }
    assert_int_equal(kcp_sh(out, sizeof(out),
                            "kubectl -n %s get pods -l kccl.io/group=paged -o name | wc -l",
                            kcp.ns),
                     0);
    assert_string_equal(out, "5");

    cJSON *list = NULL;
    kccl_kube_list_opts_t lo = {.label_selector = "kccl.io/group=paged"};
    assert_int_equal(kccl_kube_list(admin, pods, &lo, NULL, &list, NULL), KCCL_OK);
    assert_int_equal(count_items(list), 5);
    cJSON_Delete(list);

    lo = (kccl_kube_list_opts_t){.label_selector = "kccl.io/group in (paged,other)",
                                 .field_selector = "metadata.name=p-list-6"};
    assert_int_equal(kccl_kube_list(admin, pods, &lo, NULL, &list, NULL), KCCL_OK);
    assert_int_equal(count_items(list), 1);
    cJSON_Delete(list);

    /* paging by hand: limit 2 gives 2 + 2 + 1 with continue tokens */
    lo = (kccl_kube_list_opts_t){.label_selector = "kccl.io/group=paged", .limit = 2};
    int total = 0, pages = 0;
    char cont[2048] = "";
    do {
        lo.continue_token = cont[0] ? cont : NULL;
        assert_int_equal(kccl_kube_list(admin, pods, &lo, NULL, &list, NULL), KCCL_OK);
        total += count_items(list);
        pages++;
        const char *next = kcp_str(list, "metadata", "continue");
        snprintf(cont, sizeof(cont), "%s", next ? next : "");
        cJSON_Delete(list);
    } while (cont[0]);
    assert_int_equal(total, 5);
    assert_int_equal(pages, 3);

    /* and the helper the watch uses */
    cJSON *items = NULL;
    char *rv = NULL;
    lo = (kccl_kube_list_opts_t){.label_selector = "kccl.io/group=paged"};
    assert_int_equal(kccl_kube_list_all(admin, pods, &lo, 2, NULL, &items, &rv, NULL), KCCL_OK);
    assert_int_equal(cJSON_GetArraySize(items), 5);
    assert_non_null(rv);
    cJSON_Delete(items);
    free(rv);

    kccl_kube_result_t res;
    lo = (kccl_kube_list_opts_t){.label_selector = "kccl.io/group in in"};
    assert_int_equal(kccl_kube_list(admin, pods, &lo, NULL, NULL, &res), KCCL_ERR_INVALID_ARG);
    assert_int_equal(res.http_status, 400);
}

static void test_patches(void **state)
{
    char path[256], out[512];
    cJSON *pod = kcp_pod("p-patch", "g1", NULL), *resp = NULL;
    assert_int_equal(kccl_kube_create(admin, pods, pod, NULL, NULL, NULL), KCCL_OK);
    cJSON_Delete(pod);
    pod_path(path, sizeof(path), "p-patch");

    /* merge patch, as the sidecar publishes its endpoint */
    assert_int_equal(kccl_kube_patch(admin, path, KCCL_KUBE_PATCH_MERGE,
                                     "{\"metadata\":{\"annotations\":{\"kccl.io/endpoint\":"
                                     "\"10.244.0.9:29500\",\"kccl.io/unique-id\":\"abc\"}}}",
                                     NULL, &resp, NULL),
                     KCCL_OK);
    assert_string_equal(
        kcp_str(cJSON_GetObjectItem(resp, "metadata"), "annotations", "kccl.io/endpoint"),
        "10.244.0.9:29500");
    cJSON_Delete(resp);
    assert_int_equal(kcp_sh(out, sizeof(out),
                            "kubectl -n %s get pod p-patch -o jsonpath="
                            "'{.metadata.annotations.kccl\\.io/endpoint} "
                            "{.metadata.annotations.kccl\\.io/unique-id}'",
                            kcp.ns),
                     0);
    assert_string_equal(out, "10.244.0.9:29500 abc");
    /* merge patch null removes a key */
    assert_int_equal(
        kccl_kube_patch(admin, path, KCCL_KUBE_PATCH_MERGE,
                        "{\"metadata\":{\"annotations\":{\"kccl.io/unique-id\":null}}}", NULL, NULL,
                        NULL),
        KCCL_OK);
    /* strategic merge and JSON patch */
    assert_int_equal(kccl_kube_patch(admin, path, KCCL_KUBE_PATCH_STRATEGIC,
                                     "{\"metadata\":{\"labels\":{\"tier\":\"s\"}}}", NULL, NULL,
                                     NULL),
                     KCCL_OK);
    assert_int_equal(kccl_kube_patch(admin, path, KCCL_KUBE_PATCH_JSON,
                                     "[{\"op\":\"add\",\"path\":\"/metadata/labels/j\","
                                     "\"value\":\"p\"}]",
                                     NULL, NULL, NULL),
                     KCCL_OK);
    assert_int_equal(kcp_sh(out, sizeof(out),
                            "kubectl -n %s get pod p-patch -o jsonpath='{.metadata.labels.tier} "
                            "{.metadata.labels.j} [{.metadata.annotations.kccl\\.io/unique-id}]'",
                            kcp.ns),
                     0);
    assert_string_equal(out, "s p []");
    /* a patch that is not JSON: 400, not retried */
    kccl_kube_result_t res;
    assert_int_equal(
        kccl_kube_patch(admin, path, KCCL_KUBE_PATCH_MERGE, "{not json", NULL, NULL, &res),
        KCCL_ERR_INVALID_ARG);
    assert_int_equal(res.http_status, 400);
    assert_int_equal(res.attempts, 1);
    /* patching what does not exist */
    pod_path(path, sizeof(path), "p-nope");
    assert_int_equal(kccl_kube_patch(admin, path, KCCL_KUBE_PATCH_MERGE, "{}", NULL, NULL, &res),
                     KCCL_ERR_NOT_FOUND);
}

static void test_replace_conflict_and_delete(void **state)
{
    char path[256], out[256];
    cJSON *pod = kcp_pod("p-put", "g1", NULL), *cur = NULL;
    kccl_kube_result_t res;
    assert_int_equal(kccl_kube_create(admin, pods, pod, NULL, &cur, NULL), KCCL_OK);
    cJSON_Delete(pod);
    pod_path(path, sizeof(path), "p-put");
    /* someone else changes it: our copy's resourceVersion is stale */
    KCP_MUST("kubectl -n %s annotate pod p-put other=1 2>&1", kcp.ns);
    cJSON *labels = cJSON_GetObjectItem(cJSON_GetObjectItem(cur, "metadata"), "labels");
    cJSON_AddStringToObject(labels, "mine", "1");
    assert_int_equal(kccl_kube_replace(admin, path, cur, NULL, NULL, &res), KCCL_ERR_KUBE);
    assert_true(kccl_kube_is_conflict(&res));
    assert_false(kccl_kube_is_already_exists(&res));
    assert_string_equal(res.reason, "Conflict");
    cJSON_Delete(cur);
    /* read-modify-write succeeds */
    assert_int_equal(kccl_kube_get(admin, path, NULL, &cur, NULL), KCCL_OK);
    labels = cJSON_GetObjectItem(cJSON_GetObjectItem(cur, "metadata"), "labels");
    cJSON_AddStringToObject(labels, "mine", "1");
    assert_int_equal(kccl_kube_replace(admin, path, cur, NULL, NULL, &res), KCCL_OK);
    cJSON_Delete(cur);

    cJSON *gone = NULL;
    assert_int_equal(kccl_kube_delete(admin, path, NULL, &gone, NULL), KCCL_OK);
    assert_non_null(gone);
    cJSON_Delete(gone);
    int rc = 0;
    for (int i = 0; i < 50; i++) { /* no kubelet: deletion is immediate, but be patient */
        rc = kcp_sh(out, sizeof(out), "kubectl -n %s get pod p-put -o name 2>&1", kcp.ns);
        if (rc != 0)
            break;
        kcp_sleep_ms(100);
    }
    assert_int_not_equal(rc, 0);
    assert_int_equal(kccl_kube_delete(admin, path, NULL, NULL, &res), KCCL_ERR_NOT_FOUND);
}

int main(void)
{
    if (!getenv("KCCL_LOG_LEVEL"))
        setenv("KCCL_LOG_LEVEL", "none", 1);
    kcp_init("crud");
    admin = kcp_admin();
    assert_int_equal(kccl_kube_path(pods, sizeof(pods), "v1", kcp.ns, "pods", NULL, NULL), KCCL_OK);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_get_conflict),         cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_list_selectors_and_paging),   cmocka_unit_test(test_patches),
        cmocka_unit_test(test_replace_conflict_and_delete),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    kccl_kube_client_destroy(admin);
    kcp_fini();
    return rc;
}
