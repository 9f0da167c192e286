/*
 * kube_list.h - LIST helpers: query strings for list and watch requests, and
 * a complete paginated LIST (limit/continue) gathered into one items array,
 * as the watch needs for its initial list and for relists after 410 Gone.
 */
#ifndef KCCL_KUBE_LIST_H
#define KCCL_KUBE_LIST_H

#include "kccl/kube.h"
#include "kube_util.h"

/*
 * Appends path plus the query for lo to b. With watch, adds watch=1,
 * allowWatchBookmarks=true, resourceVersion=rv and timeoutSeconds (when > 0);
 * lo's limit, continue token and resource version are then ignored.
 * Returns 0 or -1 (out of memory).
 */
int kccl_kube_list_url(kccl_kube_buf_t *b, const char *path, const kccl_kube_list_opts_t *lo,
                       int watch, const char *rv, int timeout_s);

/*
 * Lists everything under path page by page (page_size items each; 0: 500).
 * *items receives a cJSON array of the objects (each with apiVersion/kind
 * unset, as the apiserver sends them in lists), *rv the list's
 * resourceVersion. A continue token that expired (410) restarts the list.
 */
kccl_status_t kccl_kube_list_all(kccl_kube_client_t c, const char *path,
                                 const kccl_kube_list_opts_t *lo, long page_size,
                                 const kccl_kube_opts_t *opts, cJSON **items, char **rv,
                                 kccl_kube_result_t *res);

#endif
