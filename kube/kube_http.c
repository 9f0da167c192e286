/*
 * kube_http.c - apiserver requests over libcurl (see kube_http.h).
 *
 * A transfer runs in a private multi handle polled every 100 ms, so that the
 * caller's stop flag (set by another thread or a signal handler) ends it
 * promptly, and CURLOPT_TIMEOUT_MS holds it to the call's deadline. TLS
 * material is given to libcurl as in-memory blobs. The Authorization header
 * is built per attempt from the current token and never logged: the trace
 * log of headers goes through kccl_kube_redact_header().
 */
#include "kube_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/error.h"
#include "kccl/kccl_version.h"
#include "kube_status.h"

#define KCCL_KUBE_STR2(x) #x
#define KCCL_KUBE_STR(x)  KCCL_KUBE_STR2(x)
#define KCCL_KUBE_USER_AGENT                                                                       \
    "kccl/" KCCL_KUBE_STR(KCCL_VERSION_MAJOR) "." KCCL_KUBE_STR(                                   \
        KCCL_VERSION_MINOR) "." KCCL_KUBE_STR(KCCL_VERSION_PATCH)

#if LIBCURL_VERSION_NUM < 0x074d00
#error "libkccl_kube needs libcurl >= 7.77 (CURLOPT_CAINFO_BLOB)"
#endif

/* ------------------------------------------------------------------ client */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init_once(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ud)
{
    struct kccl_kube_client *c = ud;
    if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
        pthread_mutex_lock(&c->share_mu[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ud)
{
    struct kccl_kube_client *c = ud;
    if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
        pthread_mutex_unlock(&c->share_mu[data]);
}

kccl_status_t kccl_kube_client_create(kccl_kube_config_t cfg, kccl_kube_client_t *out)
{
    if (cfg == NULL || out == NULL) {
        kccl_kube_config_free(cfg);
        KCCL_FAIL(KUBE, KCCL_ERR_INVALID_ARG, "kube client: no configuration given");
    }
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK) {
        kccl_kube_config_free(cfg);
        KCCL_FAIL(KUBE, KCCL_ERR_SYSTEM, "kube client: libcurl initialization failed: %s",
                  curl_easy_strerror(curl_init_rc));
    }
    const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
    if (vi->version_num < 0x074d00 || !(vi->features & CURL_VERSION_SSL)) {
        kccl_kube_config_free(cfg);
        KCCL_FAIL(KUBE, KCCL_ERR_UNSUPPORTED,
                  "kube client: libcurl %s lacks TLS or is older than 7.77 (needed for "
                  "in-memory certificates); install a newer libcurl with OpenSSL",
                  vi->version);
    }
    struct kccl_kube_client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        kccl_kube_config_free(cfg);
        KCCL_FAIL(KUBE, KCCL_ERR_NO_MEMORY, "kube client: out of memory");
    }
    c->cfg = cfg;
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&c->share_mu[i], NULL);
    pthread_mutex_init(&c->token_mu, NULL);
    c->share = curl_share_init();
    if (c->share == NULL) {
        kccl_kube_client_destroy(c);
        KCCL_FAIL(KUBE, KCCL_ERR_NO_MEMORY, "kube client: out of memory");
    }
    curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    if (cfg->token != NULL && (c->token = strdup(cfg->token)) == NULL) {
        kccl_kube_client_destroy(c);
        KCCL_FAIL(KUBE, KCCL_ERR_NO_MEMORY, "kube client: out of memory");
    }
    c->token_read_ms = kccl_kube_now_ms();
    kccl_log_info(KUBE, "kube client for %s", cfg->describe ? cfg->describe : cfg->server);
    *out = c;
    return KCCL_OK;
}

void kccl_kube_client_destroy(kccl_kube_client_t c)
{
    if (c == NULL)
        return;
    if (c->share)
        curl_share_cleanup(c->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&c->share_mu[i]);
    pthread_mutex_destroy(&c->token_mu);
    kccl_kube_free_secret(c->token);
    kccl_kube_config_free(c->cfg);
    free(c);
}

kccl_kube_config_t kccl_kube_client_config(kccl_kube_client_t c)
{
    return c ? c->cfg : NULL;
}

int kccl_kube_client_refresh_token(kccl_kube_client_t c, int force)
{
    const char *path = c->cfg->token_file;
    if (path == NULL)
        return 0;
    int changed = 0;
    pthread_mutex_lock(&c->token_mu);
    int64_t now = kccl_kube_now_ms();
    if (force || now - c->token_read_ms >= c->cfg->token_refresh_ms) {
        char *tok = NULL, *saved = kccl_last_error()[0] ? strdup(kccl_last_error()) : NULL;
        if (kccl_kube_token_read(path, &tok) == KCCL_OK) {
            changed = c->token == NULL || strcmp(tok, c->token) != 0;
            kccl_kube_free_secret(c->token);
            c->token = tok;
            c->token_reads++;
            if (changed)
                kccl_log_info(KUBE, "token file %s changed; using the new token", path);
        } else {
            kccl_log_warn(KUBE, "keeping the previous token: %s", kccl_last_error());
        }
        if (saved) { /* a refresh is not the caller's error */
            kccl_error_set("%s", saved);
            free(saved);
        }
        c->token_read_ms = now;
    }
    pthread_mutex_unlock(&c->token_mu);
    return changed;
}

/* ------------------------------------------------------------------ one attempt */

typedef struct {
    CURL *easy;
    const kccl_kube_req_t *req;
    kccl_kube_resp_t *resp;
    size_t max_body;
    int too_large;
    int status_known;
} xfer_t;

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    xfer_t *x = ud;
    size_t len = size * n;
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) { /* a new response (after 100 Continue) */
        x->resp->retry_after_ms = -1;
        x->status_known = 0;
    } else if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
        char v[128];
        size_t vl = len - 12 < sizeof(v) - 1 ? len - 12 : sizeof(v) - 1;
        memcpy(v, p + 12, vl);
        v[vl] = '\0';
        kccl_kube_rtrim(v, vl);
        int64_t ms;
        if (kccl_kube_parse_retry_after(v, time(NULL), &ms) == 0)
            x->resp->retry_after_ms = ms;
    }
    return len;
}

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
    xfer_t *x = ud;
    size_t len = size * n;
    if (!x->status_known) {
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->resp->http_status);
        x->status_known = 1;
    }
    long st = x->resp->http_status;
    if (x->req->on_data != NULL && st >= 200 && st < 300) {
        int rc = x->req->on_data(x->req->on_data_arg, p, len);
        if (rc != 0) {
            x->resp->data_rc = rc;
            return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
        }
        return len;
    }
    if (x->resp->body.len + len > x->max_body) {
        x->too_large = 1;
        return 0;
    }
    if (kccl_kube_buf_append(&x->resp->body, p, len) != 0) {
        x->too_large = 1;
        return 0;
    }
    return len;
}

size_t kccl_kube_redact_header(const char *line, size_t len, char *out, size_t cap)
{
    static const char *const secret[] = {"authorization:", "proxy-authorization:"};
    if (cap == 0)
        return 0;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    for (size_t i = 0; i < 2; i++) {
        size_t kl = strlen(secret[i]);
        if (len >= kl && strncasecmp(line, secret[i], kl) == 0) {
            int w = snprintf(out, cap, "%.*s <redacted>", (int)(kl - 1), line);
            return w < 0 ? 0 : ((size_t)w < cap ? (size_t)w : cap - 1);
        }
    }
    size_t n = len < cap - 1 ? len : cap - 1;
    memcpy(out, line, n);
    out[n] = '\0';
    return n;
}

static int on_debug(CURL *h, curl_infotype type, char *data, size_t size, void *ud)
{
    const char *dir = type == CURLINFO_HEADER_OUT ? "> " : type == CURLINFO_HEADER_IN ? "< " : "";
    if (type != CURLINFO_TEXT && type != CURLINFO_HEADER_IN && type != CURLINFO_HEADER_OUT)
        return 0;
    while (size > 0) { /* HEADER_OUT comes as one block of lines */
        const char *nl = memchr(data, '\n', size);
        size_t ll = nl ? (size_t)(nl - data) + 1 : size;
        char line[512];
        if (kccl_kube_redact_header(data, ll, line, sizeof(line)) > 0)
            kccl_log_trace(KUBE, "curl %s%s", dir, line);
        data += ll;
        size -= ll;
    }
    return 0;
}

static kccl_kube_fail_t classify(CURLcode cc, const char *err)
{
    switch (cc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT: return KCCL_KUBE_FAIL_CONNECT;
    case CURLE_SSL_CONNECT_ERROR:
        return strstr(err, "alert") ? KCCL_KUBE_FAIL_FATAL : KCCL_KUBE_FAIL_TLS_SETUP;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
        /* a TLS alert (e.g. the server refusing our certificate) is not transient */
        return strstr(err, "alert") ? KCCL_KUBE_FAIL_FATAL : KCCL_KUBE_FAIL_EXCHANGE;
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY: return KCCL_KUBE_FAIL_EXCHANGE;
    default: return KCCL_KUBE_FAIL_FATAL;
    }
}

static int is_tls_failure(CURLcode cc, const char *err)
{
    switch (cc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CONNECT_ERROR: return 1;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR: return strstr(err, "alert") != NULL;
    default: return 0;
    }
}

/* The kccl status and result for a transport failure. */
static kccl_status_t transport_result(kccl_kube_client_t c, CURLcode cc, const char *errbuf,
                                      int deadline_hit, kccl_kube_result_t *res)
{
    char msg[sizeof(res->message)];
    const char *err = errbuf[0] ? errbuf : curl_easy_strerror(cc);
    if (cc == CURLE_OPERATION_TIMEDOUT && deadline_hit) {
        snprintf(msg, sizeof(msg), "deadline reached (%s)", err);
        kccl_kube_result_transport(res, "Timeout", msg);
        return KCCL_ERR_TIMED_OUT;
    }
    if (cc == CURLE_PEER_FAILED_VERIFICATION) {
        snprintf(msg, sizeof(msg),
                 "TLS: the apiserver's certificate was not accepted (%s); check the "
                 "certificate authority of %s",
                 err, c->cfg->describe ? c->cfg->describe : c->cfg->server);
        kccl_kube_result_transport(res, "TLS", msg);
        return KCCL_ERR_AUTH;
    }
    if (is_tls_failure(cc, err)) {
        snprintf(msg, sizeof(msg), "TLS: %s (%s)", err,
                 strstr(err, "alert") ? "the apiserver refused the TLS handshake; check the "
                                        "client certificate and key"
                                      : "check the certificates and keys configured");
        kccl_kube_result_transport(res, "TLS", msg);
        return KCCL_ERR_AUTH;
    }
    if (cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL) {
        snprintf(msg, sizeof(msg), "bad server URL %s: %s", c->cfg->server, err);
        kccl_kube_result_transport(res, "Transport", msg);
        return KCCL_ERR_CONFIG;
    }
    snprintf(msg, sizeof(msg), "%s: %s", c->cfg->server, err);
    kccl_kube_result_transport(res, "Transport", msg);
    return KCCL_ERR_KUBE;
}

/* Runs the transfer, polling the stop flag. *aborted is set when it was stopped. */
static CURLcode perform(CURL *easy, const atomic_int *stop, int *aborted)
{
    CURLM *m = curl_multi_init();
    CURLcode cc = CURLE_OK;
    int running = 1;
    *aborted = 0;
    if (m == NULL)
        return CURLE_OUT_OF_MEMORY;
    if (curl_multi_add_handle(m, easy) != CURLM_OK) {
        curl_multi_cleanup(m);
        return CURLE_OUT_OF_MEMORY;
    }
    for (;;) {
        if (stop != NULL && atomic_load(stop)) {
            *aborted = 1;
            cc = CURLE_ABORTED_BY_CALLBACK;
            break;
        }
        CURLMcode mc = curl_multi_perform(m, &running);
        if (mc != CURLM_OK) {
            cc = CURLE_OUT_OF_MEMORY;
            break;
        }
        if (!running) {
            int q;
            CURLMsg *msg;
            while ((msg = curl_multi_info_read(m, &q)) != NULL)
                if (msg->msg == CURLMSG_DONE)
                    cc = msg->data.result;
            break;
        }
        curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    curl_multi_remove_handle(m, easy);
    curl_multi_cleanup(m);
    return cc;
}

static struct curl_slist *build_headers(kccl_kube_client_t c, const kccl_kube_req_t *req)
{
    struct curl_slist *h = NULL, *t;
    char ct[128];
#define ADD(s)                                                                                     \
    do {                                                                                           \
        if ((t = curl_slist_append(h, (s))) == NULL)                                               \
            goto err;                                                                              \
        h = t;                                                                                     \
    } while (0)
    ADD("Accept: application/json");
    ADD("Expect:"); /* no 100-continue round trip */
    if (req->body != NULL) {
        /* Our own Content-Type replaces libcurl's default: exactly one is sent. */
        snprintf(ct, sizeof(ct), "Content-Type: %s", req->content_type);
        ADD(ct);
    }
    pthread_mutex_lock(&c->token_mu);
    if (c->token != NULL) {
        kccl_kube_buf_t auth = {0};
        if (kccl_kube_buf_printf(&auth, "Authorization: Bearer %s", c->token) != 0 ||
            (t = curl_slist_append(h, auth.data)) == NULL) {
            kccl_kube_buf_free_secret(&auth);
            pthread_mutex_unlock(&c->token_mu);
            goto err;
        }
        h = t;
        kccl_kube_buf_free_secret(&auth);
    }
    pthread_mutex_unlock(&c->token_mu);
    return h;
#undef ADD
err:
    curl_slist_free_all(h);
    return NULL;
}

/* Zeroes header strings (the token) before freeing the list. */
static void free_headers(struct curl_slist *h)
{
    for (struct curl_slist *p = h; p; p = p->next)
        explicit_bzero(p->data, strlen(p->data));
    curl_slist_free_all(h);
}

static void set_tls(CURL *e, const struct kccl_kube_config *cfg)
{
    if (cfg->insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    } else if (cfg->ca.len > 0) {
        struct curl_blob ca = {cfg->ca.data, cfg->ca.len, CURL_BLOB_NOCOPY};
        curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &ca);
        curl_easy_setopt(e, CURLOPT_CAINFO, NULL); /* trust only the cluster's CA */
        curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
    }
    if (cfg->client_cert.len > 0) {
        struct curl_blob cert = {cfg->client_cert.data, cfg->client_cert.len, CURL_BLOB_NOCOPY};
        struct curl_blob key = {cfg->client_key.data, cfg->client_key.len, CURL_BLOB_NOCOPY};
        curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &cert);
        curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &key);
        curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
    }
}

static int setup_easy(kccl_kube_client_t c, CURL *e, const kccl_kube_req_t *req, xfer_t *x,
                      const char *url, struct curl_slist *headers, int64_t timeout_ms, char *errbuf)
{
    const struct kccl_kube_config *cfg = c->cfg;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_SHARE, c->share);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_USERAGENT, KCCL_KUBE_USER_AGENT);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTPS | CURLPROTO_HTTP));
#endif
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(timeout_ms < KCCL_KUBE_CONNECT_TIMEOUT_MS
                                ? timeout_ms
                                : KCCL_KUBE_CONNECT_TIMEOUT_MS));
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "POST") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
    if (req->body != NULL) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body);
    } else if (strcmp(req->method, "POST") == 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
    }
    set_tls(e, cfg);
    if (cfg->username != NULL) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, cfg->username);
        curl_easy_setopt(e, CURLOPT_PASSWORD, cfg->password);
    }
    if (cfg->proxy_url != NULL)
        curl_easy_setopt(e, CURLOPT_PROXY, cfg->proxy_url);
    if (kccl_log_threshold[KCCL_SUBSYS_KUBE] >= KCCL_LOG_TRACE) {
        curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, on_debug);
        curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
    }
    return 0;
}

void kccl_kube_resp_free(kccl_kube_resp_t *resp)
{
    kccl_kube_buf_free(&resp->body);
    resp->http_status = 0;
}

kccl_status_t kccl_kube_http_attempt(kccl_kube_client_t c, const kccl_kube_req_t *req,
                                     int64_t deadline_ms, const atomic_int *stop,
                                     kccl_kube_resp_t *resp, kccl_kube_result_t *res,
                                     kccl_kube_fail_t *fail)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    kccl_status_t st;
    int aborted = 0;
    xfer_t x = {.req = req, .resp = resp};
    x.max_body = req->max_body ? req->max_body : KCCL_KUBE_MAX_BODY_DEFAULT;
    kccl_kube_buf_free(&resp->body);
    resp->http_status = 0;
    resp->retry_after_ms = -1;
    resp->data_rc = 0;
    *fail = KCCL_KUBE_FAIL_NONE;

    int64_t timeout = deadline_ms - kccl_kube_now_ms();
    if (req->attempt_timeout_ms > 0 && req->attempt_timeout_ms < timeout)
        timeout = req->attempt_timeout_ms;
    if (timeout <= 0) {
        kccl_kube_result_transport(res, "Timeout", "deadline reached before the request");
        return KCCL_ERR_TIMED_OUT;
    }
    kccl_kube_buf_t url = {0};
    struct curl_slist *headers = build_headers(c, req);
    CURL *e = curl_easy_init();
    x.easy = e;
    if (e == NULL || headers == NULL ||
        kccl_kube_buf_printf(&url, "%s%s", c->cfg->server, req->path) != 0) {
        kccl_kube_result_transport(res, "Transport", "out of memory");
        st = KCCL_ERR_NO_MEMORY;
        goto out;
    }
    setup_easy(c, e, req, &x, url.data, headers, timeout, errbuf);
    CURLcode cc = perform(e, stop, &aborted);
    if (aborted) {
        kccl_kube_result_transport(res, "Aborted", "stopped by the caller");
        st = KCCL_ERR_ABORTED;
    } else if (resp->data_rc != 0) {
        st = (kccl_status_t)resp->data_rc; /* the streaming consumer's verdict */
        kccl_kube_result_from_response((int)resp->http_status, NULL, 0, res);
    } else if (x.too_large) {
        char msg[160];
        snprintf(msg, sizeof(msg), "response larger than %zu bytes; use limit/continue paging",
                 x.max_body);
        kccl_kube_result_transport(res, "Transport", msg);
        st = KCCL_ERR_PROTOCOL;
    } else if (cc != CURLE_OK) {
        int deadline_hit = kccl_kube_now_ms() >= deadline_ms - 5 ||
                           (req->attempt_timeout_ms > 0 && cc == CURLE_OPERATION_TIMEDOUT &&
                            timeout == req->attempt_timeout_ms);
        const char *err = errbuf[0] ? errbuf : curl_easy_strerror(cc);
        *fail = (cc == CURLE_OPERATION_TIMEDOUT)
                    ? (deadline_hit ? KCCL_KUBE_FAIL_FATAL : KCCL_KUBE_FAIL_CONNECT)
                    : classify(cc, err);
        st = transport_result(c, cc, errbuf, deadline_hit, res);
        /* a stream may end in an error after a complete 2xx header: keep the status */
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &resp->http_status);
    } else {
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &resp->http_status);
        st = kccl_kube_result_from_response((int)resp->http_status, resp->body.data, resp->body.len,
                                            res);
    }
out:
    if (e)
        curl_easy_cleanup(e);
    free_headers(headers);
    kccl_kube_buf_free(&url);
    return st;
}

/* ------------------------------------------------------------------ the retry loop */

kccl_status_t kccl_kube_http_fail(kccl_kube_client_t c, const kccl_kube_req_t *req,
                                  kccl_status_t st, const kccl_kube_result_t *res,
                                  const char *extra)
{
    const char *path = req->path;
    const char *q = strchr(path, '?');
    int plen = q ? (int)(q - path) : (int)strlen(path);
    if (res->http_status != 0)
        kccl_error_set("%s %.*s: %d %s: %s%s", req->method, plen, path, res->http_status,
                       res->reason, res->message[0] ? res->message : "(no message)",
                       extra ? extra : "");
    else
        kccl_error_set("%s %.*s: %s%s", req->method, plen, path, res->message, extra ? extra : "");
    if (st == KCCL_ERR_NOT_FOUND || res->code == 409 || res->code == 410 || res->code == 422 ||
        st == KCCL_ERR_ABORTED)
        kccl_log_debug(KUBE, "%s", kccl_last_error());
    else if (st == KCCL_ERR_AUTH && res->http_status != 0)
        kccl_log_warn(KUBE, "%s", kccl_last_error());
    else
        kccl_log_error(KUBE, "%s", kccl_last_error());
    return st;
}

kccl_status_t kccl_kube_http_call(kccl_kube_client_t c, const kccl_kube_req_t *req,
                                  const kccl_kube_opts_t *opts, kccl_kube_resp_t *resp,
                                  kccl_kube_result_t *res)
{
    kccl_kube_opts_t o = opts ? *opts : (kccl_kube_opts_t){0};
    kccl_kube_result_t local;
    kccl_kube_backoff_t bo;
    kccl_kube_fail_t fail;
    kccl_status_t st;
    int reread_401 = 0;
    if (res == NULL)
        res = &local;
    memset(res, 0, sizeof(*res));
    int64_t deadline =
        kccl_kube_now_ms() + (o.timeout_ms > 0 ? o.timeout_ms : KCCL_KUBE_TIMEOUT_MS_DEFAULT);
    kccl_kube_backoff_init(&bo, KCCL_KUBE_BACKOFF_BASE_MS, KCCL_KUBE_BACKOFF_CAP_MS, 0);
    for (int attempt = 1;; attempt++) {
        kccl_kube_client_refresh_token(c, 0);
        st = kccl_kube_http_attempt(c, req, deadline, o.stop, resp, res, &fail);
        res->attempts = attempt;
        if (st == KCCL_OK)
            return KCCL_OK;
        if (resp->http_status == 401 && !reread_401 && c->cfg->token_file != NULL) {
            reread_401 = 1; /* once per call: re-read the file, retry if it changed */
            if (kccl_kube_client_refresh_token(c, 1)) {
                kccl_log_info(KUBE, "%s %s: 401; retrying with the re-read token", req->method,
                              req->path);
                continue;
            }
        }
        if (st == KCCL_ERR_ABORTED || st == KCCL_ERR_TIMED_OUT ||
            !kccl_kube_should_retry((int)resp->http_status, fail, req->idempotent, attempt) ||
            (o.max_attempts > 0 && attempt >= o.max_attempts))
            return kccl_kube_http_fail(c, req, st, res, NULL);
        int64_t now = kccl_kube_now_ms();
        int64_t delay =
            kccl_kube_retry_delay(&bo, attempt - 1, resp->retry_after_ms, now, deadline);
        if (delay < 0) {
            char extra[128];
            snprintf(extra, sizeof(extra),
                     " (gave up after %d attempts: the call's deadline "
                     "comes before the next retry)",
                     attempt);
            return kccl_kube_http_fail(c, req, KCCL_ERR_TIMED_OUT, res, extra);
        }
        kccl_log_debug(KUBE, "%s %s: %s %s; retry %d in %lld ms", req->method, req->path,
                       res->reason, res->message, attempt, (long long)delay);
        if (kccl_kube_sleep_ms(delay, o.stop)) {
            kccl_kube_result_transport(res, "Aborted", "stopped by the caller");
            return kccl_kube_http_fail(c, req, KCCL_ERR_ABORTED, res, NULL);
        }
    }
}
