/*
 * kube_watch.c - kccl_kube_watch(): list, then watch, and keep watching.
 *
 * The loop holds one piece of state that matters, the last resourceVersion
 * delivered (from every event, bookmarks included). Whatever happens to a
 * stream - the server's timeoutSeconds, a dropped connection, an apiserver
 * restart - the next watch request starts from it, so no event is lost or
 * repeated. When the apiserver no longer has that version (HTTP 410, or an
 * ERROR event with code 410, "too old resource version"), the watch lists
 * again and the store (kube_store.c) turns the difference into synthetic
 * events. Failures back off with full jitter; everything is bounded by the
 * overall deadline and ended by the stop flag.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kccl/kube.h"
#include "kube_http.h"
#include "kube_json_stream.h"
#include "kube_list.h"
#include "kube_status.h"
#include "kube_store.h"

#define WATCH_SERVER_TIMEOUT_S_DEFAULT 300
#define WATCH_STALL_GRACE_S            30 /* client-side limit = timeoutSeconds + this */
#define WATCH_LIST_TIMEOUT_MS          60000
#define WATCH_PROTOCOL_RETRIES         3
#define WATCH_STOP                     1 /* on_data's "stop this stream"; the reason is in the watch */

typedef enum {
    STOP_NONE = 0,
    STOP_CALLBACK, /* the caller's callback returned nonzero */
    STOP_GONE,     /* ERROR event with code 410 */
    STOP_ERROR,    /* another ERROR event */
    STOP_PROTOCOL, /* unparsable stream */
} stop_reason_t;

typedef struct {
    kccl_kube_client_t c;
    const kccl_kube_watch_opts_t *o;
    kccl_kube_watch_fn fn;
    void *arg;
    kccl_kube_store_t store;
    kccl_kube_json_stream_t js;
    kccl_kube_watch_stats_t stats;
    char *rv;
    int64_t deadline; /* INT64_MAX: none */
    /* per stream */
    stop_reason_t stop;
    int cb_rc;
    kccl_status_t proto_st;
    uint64_t stream_events;
    kccl_kube_result_t event_res; /* from an ERROR event */
} watch_t;

const char *kccl_kube_event_type_str(kccl_kube_event_type_t type)
{
    switch (type) {
    case KCCL_KUBE_EVENT_ADDED: return "ADDED";
    case KCCL_KUBE_EVENT_MODIFIED: return "MODIFIED";
    case KCCL_KUBE_EVENT_DELETED: return "DELETED";
    case KCCL_KUBE_EVENT_BOOKMARK: return "BOOKMARK";
    case KCCL_KUBE_EVENT_ERROR: return "ERROR";
    }
    return "UNKNOWN";
}

static int parse_type(const char *s, kccl_kube_event_type_t *out)
{
    static const struct {
        const char *name;
        kccl_kube_event_type_t type;
    } map[] = {{"ADDED", KCCL_KUBE_EVENT_ADDED},
               {"MODIFIED", KCCL_KUBE_EVENT_MODIFIED},
               {"DELETED", KCCL_KUBE_EVENT_DELETED},
               {"BOOKMARK", KCCL_KUBE_EVENT_BOOKMARK},
               {"ERROR", KCCL_KUBE_EVENT_ERROR}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(s, map[i].name) == 0) {
            *out = map[i].type;
            return 0;
        }
    }
    return -1;
}

static const char *object_rv(const cJSON *obj)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, "resourceVersion");
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int set_rv(watch_t *w, const char *rv)
{
    if (rv == NULL || rv[0] == '\0' || (w->rv && strcmp(w->rv, rv) == 0))
        return 0;
    char *copy = strdup(rv);
    if (copy == NULL)
        return -1;
    free(w->rv);
    w->rv = copy;
    return 0;
}

/* Hands one event to the caller; records a stop request. Returns the callback's value. */
static int deliver(watch_t *w, kccl_kube_event_type_t type, const cJSON *obj, int synthetic)
{
    const char *rv = object_rv(obj);
    kccl_kube_event_t ev = {
        .type = type, .object = obj, .resource_version = rv ? rv : "", .synthetic = synthetic};
    w->stats.events++;
    int rc = w->fn(w->arg, &ev);
    if (rc != 0) {
        w->stop = STOP_CALLBACK;
        w->cb_rc = rc;
    }
    return rc;
}

static int protocol_error(watch_t *w, kccl_status_t st)
{
    w->stop = STOP_PROTOCOL;
    w->proto_st = st;
    return WATCH_STOP;
}

/* One complete event from the stream splitter. */
static int on_event(void *arg, const char *text, size_t len)
{
    watch_t *w = arg;
    kccl_kube_event_type_t type;
    cJSON *ev = cJSON_ParseWithLength(text, len);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(ev, "type");
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(ev, "object");
    if (ev == NULL || !cJSON_IsString(t) || !cJSON_IsObject(obj)) {
        cJSON_Delete(ev);
        kccl_error_set("watch %s: an event (%zu bytes) is not a JSON object with type and "
                       "object",
                       w->o->path, len);
        return protocol_error(w, KCCL_ERR_PROTOCOL);
    }
    if (parse_type(t->valuestring, &type) != 0) {
        kccl_log_warn(KUBE, "watch %s: ignoring an event of unknown type \"%.32s\"", w->o->path,
                      t->valuestring);
        cJSON_Delete(ev);
        return 0;
    }
    w->stream_events++;
    if (type == KCCL_KUBE_EVENT_ERROR) {
        memset(&w->event_res, 0, sizeof(w->event_res));
        w->event_res.http_status = 200;
        kccl_kube_result_from_status(obj, &w->event_res);
        int rc = deliver(w, type, obj, 0);
        if (rc == 0)
            w->stop = w->event_res.code == 410 ? STOP_GONE : STOP_ERROR;
        cJSON_Delete(ev);
        return WATCH_STOP;
    }
    if (set_rv(w, object_rv(obj)) != 0 || kccl_kube_store_apply(&w->store, type, obj) != 0) {
        cJSON_Delete(ev);
        kccl_error_set("watch %s: out of memory", w->o->path);
        return protocol_error(w, KCCL_ERR_NO_MEMORY);
    }
    int rc = deliver(w, type, obj, 0);
    cJSON_Delete(ev);
    return rc ? WATCH_STOP : 0;
}

static int on_data(void *arg, const char *data, size_t n)
{
    watch_t *w = arg;
    int rc = kccl_kube_json_stream_feed(&w->js, data, n, on_event, w);
    if (rc < 0 && w->stop == STOP_NONE) /* the splitter's own error */
        return protocol_error(w, (kccl_status_t)rc);
    return rc ? WATCH_STOP : 0;
}

static int on_synthetic(void *arg, kccl_kube_event_type_t type, const cJSON *obj)
{
    return deliver(arg, type, obj, 1);
}

static int64_t remaining(const watch_t *w)
{
    return w->deadline == INT64_MAX ? INT64_MAX : w->deadline - kccl_kube_now_ms();
}

/* LIST and reconcile the store; the callback sees synthetic events. */
static kccl_status_t relist(watch_t *w, int initial, kccl_kube_result_t *res)
{
    kccl_kube_list_opts_t lo = {.label_selector = w->o->label_selector,
                                .field_selector = w->o->field_selector};
    kccl_kube_opts_t lopts = {.stop = w->o->stop};
    int64_t left = remaining(w);
    lopts.timeout_ms = left < WATCH_LIST_TIMEOUT_MS ? left : WATCH_LIST_TIMEOUT_MS;
    if (lopts.timeout_ms <= 0)
        return KCCL_ERR_TIMED_OUT;
    cJSON *items = NULL;
    char *rv = NULL;
    KCCL_CHECK(kccl_kube_list_all(w->c, w->o->path, &lo, 0, &lopts, &items, &rv, res));
    if (!initial)
        w->stats.relists++;
    kccl_log_info(KUBE, "watch %s: %s at resourceVersion %s (%d objects)", w->o->path,
                  initial ? "listed" : "relisted", rv, cJSON_GetArraySize(items));
    free(w->rv);
    w->rv = rv;
    w->stop = STOP_NONE;
    int rc = kccl_kube_store_replace(&w->store, items, on_synthetic, w);
    if (rc < 0 && w->stop == STOP_NONE)
        KCCL_FAIL(KUBE, (kccl_status_t)rc, "watch %s: out of memory during a relist", w->o->path);
    return KCCL_OK;
}

typedef enum {
    NEXT_RESUME,  /* watch again from w->rv */
    NEXT_BACKOFF, /* wait, then watch again */
    NEXT_RELIST,  /* 410: list again */
    NEXT_RETURN,  /* done: return *st */
} next_t;

/* Runs one watch request and decides what comes next. */
static next_t watch_stream(watch_t *w, kccl_kube_result_t *res, kccl_status_t *st,
                           int64_t *retry_after_ms)
{
    kccl_kube_list_opts_t lo = {.label_selector = w->o->label_selector,
                                .field_selector = w->o->field_selector};
    int timeout_s =
        w->o->server_timeout_s > 0 ? w->o->server_timeout_s : WATCH_SERVER_TIMEOUT_S_DEFAULT;
    kccl_kube_buf_t url = {0};
    kccl_kube_resp_t resp = {0};
    kccl_kube_fail_t fail;
    if (kccl_kube_list_url(&url, w->o->path, &lo, 1, w->rv, timeout_s) != 0) {
        *st = KCCL_ERR_NO_MEMORY;
        kccl_error_set("watch %s: out of memory", w->o->path);
        return NEXT_RETURN;
    }
    kccl_kube_req_t req = {.method = "GET",
                           .path = url.data,
                           .idempotent = 1,
                           .on_data = on_data,
                           .on_data_arg = w,
                           .attempt_timeout_ms = (int64_t)(timeout_s + WATCH_STALL_GRACE_S) * 1000};
    kccl_kube_json_stream_reset(&w->js);
    w->stop = STOP_NONE;
    w->stream_events = 0;
    w->stats.streams++;
    *retry_after_ms = -1;
    kccl_log_debug(KUBE, "watch %s from resourceVersion %s", w->o->path, w->rv ? w->rv : "");
    *st = kccl_kube_http_attempt(w->c, &req, w->deadline, w->o->stop, &resp, res, &fail);
    long http = resp.http_status;
    *retry_after_ms = resp.retry_after_ms;
    next_t next = NEXT_RETURN;

    if (w->stop == STOP_CALLBACK) {
        *st = w->cb_rc > 0 ? KCCL_OK : (kccl_status_t)w->cb_rc;
    } else if (*st == KCCL_ERR_ABORTED) {
        next = NEXT_RETURN;
    } else if (w->stop == STOP_GONE || http == 410) {
        kccl_log_info(KUBE, "watch %s: resourceVersion %s is gone (%s); relisting", w->o->path,
                      w->rv ? w->rv : "",
                      w->stop == STOP_GONE ? w->event_res.message : res->message);
        next = NEXT_RELIST;
    } else if (w->stop == STOP_ERROR) {
        *res = w->event_res;
        kccl_log_warn(KUBE, "watch %s: ERROR event %d %s: %s; watching again", w->o->path,
                      res->code, res->reason, res->message);
        next = NEXT_BACKOFF;
    } else if (w->stop == STOP_PROTOCOL) {
        *st = w->proto_st;
        kccl_kube_result_transport(res, "Protocol", kccl_last_error());
        next = NEXT_BACKOFF; /* bounded by the caller's protocol-error count */
    } else if (http >= 200 && http < 300) {
        if (kccl_kube_json_stream_pending(&w->js) > 0)
            kccl_log_info(KUBE, "watch %s: stream broke inside an event; resuming", w->o->path);
        if (*st != KCCL_OK && remaining(w) <= 0) {
            *st = KCCL_ERR_TIMED_OUT;
            next = NEXT_RETURN;
        } else {
            next = w->stream_events > 0 || *st == KCCL_OK ? NEXT_RESUME : NEXT_BACKOFF;
        }
    } else if (http == 0) {
        if (remaining(w) <= 0)
            *st = KCCL_ERR_TIMED_OUT;
        else if (fail != KCCL_KUBE_FAIL_FATAL || *st == KCCL_ERR_TIMED_OUT)
            next = NEXT_BACKOFF; /* apiserver down or restarting; or a stalled stream */
    } else if (http == 401 && kccl_kube_client_refresh_token(w->c, 1)) {
        next = NEXT_RESUME;
    } else if (kccl_kube_should_retry((int)http, KCCL_KUBE_FAIL_NONE, 1, 1)) {
        next = NEXT_BACKOFF;
    }
    if (next == NEXT_RETURN && *st == KCCL_ERR_TIMED_OUT && remaining(w) <= 0)
        kccl_error_set("watch %s: deadline of %" PRId64 " ms reached", w->o->path,
                       w->o->timeout_ms); /* the normal end of a bounded watch */
    else if (next == NEXT_RETURN && *st != KCCL_OK && *st != KCCL_ERR_ABORTED)
        kccl_kube_http_fail(w->c, &req, *st, res, NULL);
    else if (next == NEXT_BACKOFF)
        kccl_log_info(KUBE, "watch %s: %s %s; watching again from resourceVersion %s", w->o->path,
                      res->reason, res->message, w->rv ? w->rv : "");
    kccl_kube_resp_free(&resp);
    kccl_kube_buf_free(&url);
    return next;
}

static kccl_status_t watch_loop(watch_t *w, kccl_kube_result_t *res)
{
    kccl_kube_backoff_t bo;
    kccl_status_t st = KCCL_OK;
    int failures = 0, protocol_errors = 0, need_list = w->rv == NULL;
    int initial = need_list, resuming = 0;
    kccl_kube_backoff_init(&bo, KCCL_KUBE_BACKOFF_BASE_MS, KCCL_KUBE_BACKOFF_CAP_MS, 0);
    for (;;) {
        int64_t retry_after = -1;
        next_t next;
        if (w->o->stop && atomic_load(w->o->stop))
            return KCCL_ERR_ABORTED;
        if (remaining(w) <= 0) {
            kccl_error_set("watch %s: deadline of %" PRId64 " ms reached", w->o->path,
                           w->o->timeout_ms);
            return KCCL_ERR_TIMED_OUT;
        }
        if (need_list) {
            st = relist(w, initial, res);
            if (w->stop == STOP_CALLBACK)
                return w->cb_rc > 0 ? KCCL_OK : (kccl_status_t)w->cb_rc;
            if (st == KCCL_OK) {
                need_list = initial = resuming = 0;
                failures = 0;
                continue;
            }
            if (st != KCCL_ERR_TIMED_OUT && st != KCCL_ERR_KUBE)
                return st; /* forbidden, not found, aborted, ... */
            next = NEXT_BACKOFF;
        } else {
            if (resuming)
                w->stats.resumes++;
            next = watch_stream(w, res, &st, &retry_after);
            resuming = next == NEXT_RESUME || next == NEXT_BACKOFF;
            if (w->stream_events > 0)
                failures = 0;
            if (w->stop == STOP_PROTOCOL && ++protocol_errors > WATCH_PROTOCOL_RETRIES)
                return st;
        }
        switch (next) {
        case NEXT_RETURN: return st;
        case NEXT_RELIST: need_list = 1; continue;
        case NEXT_RESUME: continue;
        case NEXT_BACKOFF: break;
        }
        int64_t now = kccl_kube_now_ms();
        int64_t delay = kccl_kube_retry_delay(&bo, failures++, retry_after, now,
                                              w->deadline == INT64_MAX ? INT64_MAX : w->deadline);
        if (delay < 0) {
            kccl_error_set("watch %s: deadline reached while retrying (last: %s %s)", w->o->path,
                           res->reason, res->message);
            return KCCL_ERR_TIMED_OUT;
        }
        if (kccl_kube_sleep_ms(delay, w->o->stop))
            return KCCL_ERR_ABORTED;
    }
}

kccl_status_t kccl_kube_watch(kccl_kube_client_t c, const kccl_kube_watch_opts_t *opts,
                              kccl_kube_watch_fn fn, void *arg, kccl_kube_result_t *res)
{
    kccl_kube_result_t local;
    if (res == NULL)
        res = &local;
    memset(res, 0, sizeof(*res));
    if (c == NULL || opts == NULL || fn == NULL || opts->path == NULL || opts->path[0] != '/')
        KCCL_FAIL(KUBE, KCCL_ERR_INVALID_ARG,
                  "kube watch: needs a client, a callback and a "
                  "collection path");
    watch_t w = {.c = c, .o = opts, .fn = fn, .arg = arg};
    w.deadline = opts->timeout_ms > 0 ? kccl_kube_now_ms() + opts->timeout_ms : INT64_MAX;
    if (kccl_kube_store_init(&w.store) != 0)
        KCCL_FAIL(KUBE, KCCL_ERR_NO_MEMORY, "kube watch: out of memory");
    kccl_kube_json_stream_init(&w.js, opts->max_event_bytes);
    kccl_status_t st = KCCL_OK;
    if (opts->resource_version && opts->resource_version[0] &&
        (w.rv = strdup(opts->resource_version)) == NULL) {
        st = KCCL_ERR_NO_MEMORY;
        kccl_error_set("kube watch: out of memory");
    }
    if (st == KCCL_OK)
        st = watch_loop(&w, res);
    if (st == KCCL_ERR_ABORTED) {
        kccl_error_set("watch %s: stopped by the caller", opts->path);
        kccl_log_debug(KUBE, "%s", kccl_last_error());
    } else if (st == KCCL_ERR_TIMED_OUT) {
        kccl_log_info(KUBE, "%s", kccl_last_error());
    }
    char *rv = w.rv; /* a local: writing into w.stats must not hide the pointer */
    w.rv = NULL;
    if (rv)
        snprintf(w.stats.resource_version, sizeof(w.stats.resource_version), "%s", rv);
    free(rv);
    if (opts->stats)
        *opts->stats = w.stats;
    kccl_kube_json_stream_fini(&w.js);
    kccl_kube_store_fini(&w.store);
    return st;
}
