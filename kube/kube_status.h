/*
 * kube_status.h - apiserver answers to kccl status codes.
 *
 * A failed apiserver call usually carries a Status object
 * ({"kind":"Status","code":404,"reason":"NotFound","message":"..."}); a proxy
 * or a crash may give a bare HTTP status instead. Both become a kccl_status_t
 * and a kccl_kube_result_t (kube.h):
 *
 *   2xx -> KCCL_OK            401, 403 -> KCCL_ERR_AUTH    404 -> KCCL_ERR_NOT_FOUND
 *   400, 413, 422 -> KCCL_ERR_INVALID_ARG    405, 406, 415 -> KCCL_ERR_UNSUPPORTED
 *   408, 504 -> KCCL_ERR_TIMED_OUT           anything else (409, 410, 429, 5xx) -> KCCL_ERR_KUBE
 *
 * 409 (Conflict, AlreadyExists) and 410 (Gone, Expired) have no code of their
 * own: callers tell them apart with kccl_kube_is_conflict() and friends.
 */
#ifndef KCCL_KUBE_STATUS_H
#define KCCL_KUBE_STATUS_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "kccl/kube.h"

/* The kccl status for an HTTP status. */
kccl_status_t kccl_kube_status_from_http(int http_status);

/* The Kubernetes StatusReason conventionally sent with an HTTP status ("NotFound"). */
const char *kccl_kube_reason_for_http(int http_status);

/*
 * Fills res from an HTTP status and the response body (a Status object if the
 * apiserver sent one; anything else is ignored apart from a short excerpt of
 * plain text). Returns the mapped status. body may be NULL.
 */
kccl_status_t kccl_kube_result_from_response(int http_status, const char *body, size_t len,
                                             kccl_kube_result_t *res);

/* Fills res from a Status object (e.g. a watch ERROR event). Returns the mapped status. */
kccl_status_t kccl_kube_result_from_status(const cJSON *status, kccl_kube_result_t *res);

/* Sets res to a transport failure (http_status 0). */
void kccl_kube_result_transport(kccl_kube_result_t *res, const char *reason, const char *message);

#endif
