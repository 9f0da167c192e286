/*
 * kube_list.c - list/watch query strings and the complete paginated LIST
 * (see kube_list.h). Pages of one LIST share one snapshot, so the items
 * gathered are consistent with the resourceVersion returned.
 */
#include "kube_list.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kube_util.h"

#define LIST_PAGE_DEFAULT 500
#define LIST_RESTARTS_MAX 3

static int param(kccl_kube_buf_t *b, char *sep, const char *key, const char *value)
{
    if (value == NULL || value[0] == '\0')
        return 0;
    if (kccl_kube_buf_printf(b, "%c%s=", *sep, key) != 0 ||
        kccl_kube_buf_put_escaped(b, value) != 0)
        return -1;
    *sep = '&';
    return 0;
}

int kccl_kube_list_url(kccl_kube_buf_t *b, const char *path, const kccl_kube_list_opts_t *lo,
                       int watch, const char *rv, int timeout_s)
{
    char sep = strchr(path, '?') ? '&' : '?';
    char num[32];
    if (kccl_kube_buf_puts(b, path) != 0)
        return -1;
    if (lo && (param(b, &sep, "labelSelector", lo->label_selector) != 0 ||
               param(b, &sep, "fieldSelector", lo->field_selector) != 0))
        return -1;
    if (watch) {
        if (param(b, &sep, "watch", "1") != 0 ||
            param(b, &sep, "allowWatchBookmarks", "true") != 0 ||
            param(b, &sep, "resourceVersion", rv) != 0)
            return -1;
        if (timeout_s > 0) {
            snprintf(num, sizeof(num), "%d", timeout_s);
            if (param(b, &sep, "timeoutSeconds", num) != 0)
                return -1;
        }
        return 0;
    }
    if (lo == NULL)
        return 0;
    if (lo->limit > 0) {
        snprintf(num, sizeof(num), "%ld", lo->limit);
        if (param(b, &sep, "limit", num) != 0)
            return -1;
    }
    if (param(b, &sep, "continue", lo->continue_token) != 0 ||
        param(b, &sep, "resourceVersion", lo->resource_version) != 0)
        return -1;
    return 0;
}

static const char *meta_str(const cJSON *obj, const char *key)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

kccl_status_t kccl_kube_list_all(kccl_kube_client_t c, const char *path,
                                 const kccl_kube_list_opts_t *lo, long page_size,
                                 const kccl_kube_opts_t *opts, cJSON **items_out, char **rv_out,
                                 kccl_kube_result_t *res)
{
    kccl_kube_opts_t o = opts ? *opts : (kccl_kube_opts_t){0};
    int64_t deadline =
        kccl_kube_now_ms() + (o.timeout_ms > 0 ? o.timeout_ms : KCCL_KUBE_TIMEOUT_MS_DEFAULT);
    kccl_kube_list_opts_t page = lo ? *lo : (kccl_kube_list_opts_t){0};
    char *cont = NULL, *rv = NULL;
    int restarts = 0;
    kccl_status_t st;
    cJSON *items = cJSON_CreateArray();
    if (items == NULL)
        KCCL_FAIL(KUBE, KCCL_ERR_NO_MEMORY, "kube LIST %s: out of memory", path);
    page.limit = page_size > 0 ? page_size : LIST_PAGE_DEFAULT;
    for (;;) {
        cJSON *body = NULL;
        page.continue_token = cont;
        page.resource_version = cont ? NULL : (lo ? lo->resource_version : NULL);
        o.timeout_ms = deadline - kccl_kube_now_ms();
        if (o.timeout_ms <= 0) {
            st = KCCL_ERR_TIMED_OUT;
            kccl_error_set("kube LIST %s: deadline reached between pages", path);
            kccl_log_error(KUBE, "%s", kccl_last_error());
            goto err;
        }
        kccl_kube_result_t r = {0};
        st = kccl_kube_list(c, path, &page, &o, &body, &r);
        if (res)
            *res = r;
        if (st != KCCL_OK) {
            if (cont != NULL && kccl_kube_is_gone(&r) && ++restarts <= LIST_RESTARTS_MAX) {
                kccl_log_info(KUBE, "LIST %s: continue token expired; listing again", path);
                free(cont);
                cont = NULL;
                cJSON_Delete(items);
                if ((items = cJSON_CreateArray()) == NULL)
                    goto err_nomem;
                continue;
            }
            goto err;
        }
        cJSON *arr = cJSON_GetObjectItemCaseSensitive(body, "items");
        while (cJSON_IsArray(arr) && arr->child != NULL)
            cJSON_AddItemToArray(items, cJSON_DetachItemViaPointer(arr, arr->child));
        const char *next = meta_str(body, "continue");
        const char *page_rv = meta_str(body, "resourceVersion");
        free(cont);
        cont = NULL;
        if (page_rv != NULL) {
            free(rv);
            if ((rv = strdup(page_rv)) == NULL) {
                cJSON_Delete(body);
                goto err_nomem;
            }
        }
        if (next != NULL && next[0] != '\0' && (cont = strdup(next)) == NULL) {
            cJSON_Delete(body);
            goto err_nomem;
        }
        cJSON_Delete(body);
        if (cont == NULL)
            break;
    }
    if (rv == NULL) {
        st = KCCL_ERR_PROTOCOL;
        kccl_error_set("kube LIST %s: the answer has no metadata.resourceVersion", path);
        kccl_log_error(KUBE, "%s", kccl_last_error());
        goto err;
    }
    *items_out = items;
    *rv_out = rv;
    return KCCL_OK;
err_nomem:
    st = KCCL_ERR_NO_MEMORY;
    kccl_error_set("kube LIST %s: out of memory", path);
err:
    free(cont);
    free(rv);
    cJSON_Delete(items);
    return st;
}
