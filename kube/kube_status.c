/*
 * kube_status.c - maps apiserver answers (HTTP status, Status objects) to kccl
 * status codes and result records; see kube_status.h for the table.
 */
#include "kube_status.h"

#include <stdio.h>
#include <string.h>

kccl_status_t kccl_kube_status_from_http(int http_status)
{
    if (http_status >= 200 && http_status < 300)
        return KCCL_OK;
    switch (http_status) {
    case 401:
    case 403: return KCCL_ERR_AUTH;
    case 404: return KCCL_ERR_NOT_FOUND;
    case 400:
    case 413:
    case 422: return KCCL_ERR_INVALID_ARG;
    case 405:
    case 406:
    case 415: return KCCL_ERR_UNSUPPORTED;
    case 408:
    case 504: return KCCL_ERR_TIMED_OUT;
    default: return KCCL_ERR_KUBE;
    }
}

const char *kccl_kube_reason_for_http(int http_status)
{
    switch (http_status) {
    case 400: return "BadRequest";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "NotFound";
    case 405: return "MethodNotAllowed";
    case 406: return "NotAcceptable";
    case 408: return "Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "RequestEntityTooLarge";
    case 415: return "UnsupportedMediaType";
    case 422: return "Invalid";
    case 429: return "TooManyRequests";
    case 500: return "InternalError";
    case 503: return "ServiceUnavailable";
    case 504: return "Timeout";
    default:
        if (http_status >= 200 && http_status < 300)
            return "";
        return "Unknown";
    }
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

kccl_status_t kccl_kube_result_from_status(const cJSON *status, kccl_kube_result_t *res)
{
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(status, "code");
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(status, "reason");
    const cJSON *message = cJSON_GetObjectItemCaseSensitive(status, "message");
    int c = cJSON_IsNumber(code) ? code->valueint : 0;
    if (res) {
        if (res->http_status == 0)
            res->http_status = c;
        res->code = c ? c : res->http_status;
        copy_str(res->reason, sizeof(res->reason),
                 cJSON_IsString(reason) && reason->valuestring[0]
                     ? reason->valuestring
                     : kccl_kube_reason_for_http(res->code));
        copy_str(res->message, sizeof(res->message),
                 cJSON_IsString(message) ? message->valuestring : "");
    }
    return kccl_kube_status_from_http(c);
}

/* A printable one-line excerpt of a non-JSON body ("upstream connect error"). */
static void excerpt(char *dst, size_t cap, const char *body, size_t len)
{
    size_t j = 0;
    for (size_t i = 0; i < len && j + 1 < cap; i++) {
        unsigned char ch = (unsigned char)body[i];
        dst[j++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : ' ';
    }
    while (j > 0 && dst[j - 1] == ' ')
        j--;
    dst[j] = '\0';
}

kccl_status_t kccl_kube_result_from_response(int http_status, const char *body, size_t len,
                                             kccl_kube_result_t *res)
{
    kccl_status_t st = kccl_kube_status_from_http(http_status);
    if (res == NULL)
        return st;
    res->http_status = http_status;
    res->code = http_status;
    copy_str(res->reason, sizeof(res->reason), kccl_kube_reason_for_http(http_status));
    res->message[0] = '\0';
    if (st == KCCL_OK || body == NULL || len == 0)
        return st;
    cJSON *j = cJSON_ParseWithLength(body, len);
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(j, "kind");
    if (cJSON_IsString(kind) && strcmp(kind->valuestring, "Status") == 0) {
        kccl_kube_result_from_status(j, res);
        res->http_status = http_status; /* the HTTP status decides the kccl status */
    } else if (j == NULL) {
        excerpt(res->message, sizeof(res->message), body, len < 200 ? len : 200);
    }
    cJSON_Delete(j);
    return st;
}

void kccl_kube_result_transport(kccl_kube_result_t *res, const char *reason, const char *message)
{
    if (res == NULL)
        return;
    res->http_status = 0;
    res->code = 0;
    copy_str(res->reason, sizeof(res->reason), reason);
    copy_str(res->message, sizeof(res->message), message);
}

static int reason_is(const kccl_kube_result_t *res, const char *reason)
{
    return strcmp(res->reason, reason) == 0;
}

int kccl_kube_is_conflict(const kccl_kube_result_t *res)
{
    return res && res->code == 409;
}

int kccl_kube_is_already_exists(const kccl_kube_result_t *res)
{
    return res && res->code == 409 && reason_is(res, "AlreadyExists");
}

int kccl_kube_is_gone(const kccl_kube_result_t *res)
{
    return res && res->code == 410;
}

int kccl_kube_is_invalid(const kccl_kube_result_t *res)
{
    return res && res->code == 422;
}

int kccl_kube_is_forbidden(const kccl_kube_result_t *res)
{
    return res && res->code == 403;
}
