/*
 * kube_config.c - where the client's configuration comes from: a kubeconfig
 * file (parsed with libyaml's document API) or the in-cluster environment
 * (service-account files and KUBERNETES_SERVICE_*).
 *
 * Only what kccl needs of the kubeconfig format is read: clusters, users,
 * contexts, current-context. Users that need code to run (exec plugins,
 * auth-providers) or impersonation are refused with KCCL_ERR_UNSUPPORTED and a
 * remedy, rather than silently running unauthenticated. Every other problem
 * is KCCL_ERR_CONFIG with a message naming the file, line and entry.
 */
#include "kube_config.h"

#include <curl/curl.h>
#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/error.h"
#include "kube_util.h"

#define KUBECONFIG_MAX_BYTES ((size_t)16 << 20)
#define PEM_MAX_BYTES        ((size_t)4 << 20)
#define TOKEN_MAX_BYTES      ((size_t)64 << 10)

/* ------------------------------------------------------------------ small pieces */

struct kccl_kube_config *kccl_kube_config_alloc(void)
{
    struct kccl_kube_config *cfg = calloc(1, sizeof(*cfg));
    if (cfg)
        cfg->token_refresh_ms = KCCL_KUBE_TOKEN_REFRESH_MS_DEFAULT;
    return cfg;
}

static void blob_free(kccl_kube_blob_t *b, int secret)
{
    if (secret)
        kccl_kube_free_secret_n(b->data, b->len);
    else
        free(b->data);
    b->data = NULL;
    b->len = 0;
}

void kccl_kube_config_free(kccl_kube_config_t cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->server);
    free(cfg->ns);
    free(cfg->describe);
    free(cfg->context_name);
    free(cfg->cluster_name);
    free(cfg->user_name);
    blob_free(&cfg->ca, 0);
    blob_free(&cfg->client_cert, 0);
    blob_free(&cfg->client_key, 1);
    free(cfg->proxy_url);
    kccl_kube_free_secret(cfg->token);
    free(cfg->token_file);
    free(cfg->username);
    kccl_kube_free_secret(cfg->password);
    free(cfg);
}

const char *kccl_kube_config_server(kccl_kube_config_t cfg)
{
    return cfg ? cfg->server : "";
}

const char *kccl_kube_config_namespace(kccl_kube_config_t cfg)
{
    return cfg && cfg->ns ? cfg->ns : "default";
}

const char *kccl_kube_config_describe(kccl_kube_config_t cfg)
{
    return cfg && cfg->describe ? cfg->describe : "(no configuration)";
}

void kccl_kube_config_set_token_refresh_ms(kccl_kube_config_t cfg, int64_t ms)
{
    if (cfg)
        cfg->token_refresh_ms = ms > 0 ? ms : KCCL_KUBE_TOKEN_REFRESH_MS_DEFAULT;
}

#define CFG_FAIL(st, ...) KCCL_FAIL(KUBE, st, __VA_ARGS__)

kccl_status_t kccl_kube_token_read(const char *path, char **out)
{
    char *tok;
    size_t len;
    if (kccl_kube_read_file(path, TOKEN_MAX_BYTES, &tok, &len) != 0)
        CFG_FAIL(KCCL_ERR_CONFIG, "cannot read token file %s: %s", path, strerror(errno));
    len = kccl_kube_rtrim(tok, len);
    if (len == 0 || memchr(tok, '\n', len) != NULL || strlen(tok) != len) {
        kccl_kube_free_secret_n(tok, len);
        CFG_FAIL(KCCL_ERR_CONFIG, "token file %s is empty or not a single-line token", path);
    }
    *out = tok;
    return KCCL_OK;
}

kccl_status_t kccl_kube_server_normalize(const char *server, const char *origin, char **out)
{
    kccl_status_t st = KCCL_OK;
    char *scheme = NULL, *host = NULL, *query = NULL, *fragment = NULL;
    CURLU *u = curl_url();
    if (u == NULL)
        CFG_FAIL(KCCL_ERR_NO_MEMORY, "out of memory parsing the server URL");
    CURLUcode rc = curl_url_set(u, CURLUPART_URL, server, 0);
    if (rc != CURLUE_OK) {
        kccl_error_set("%s: server URL \"%s\" is not valid (%s); it must look like "
                       "https://HOST:PORT, with an IPv6 address in brackets "
                       "(https://[fd00::1]:6443)",
                       origin, server, curl_url_strerror(rc));
        st = KCCL_ERR_CONFIG;
        goto out;
    }
    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    curl_url_get(u, CURLUPART_HOST, &host, 0);
    curl_url_get(u, CURLUPART_QUERY, &query, 0);
    curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0);
    if (scheme == NULL || (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0)) {
        kccl_error_set("%s: server URL \"%s\" must start with https:// (or http://)", origin,
                       server);
        st = KCCL_ERR_CONFIG;
    } else if (host == NULL || host[0] == '\0') {
        kccl_error_set("%s: server URL \"%s\" has no host", origin, server);
        st = KCCL_ERR_CONFIG;
    } else if (query != NULL || fragment != NULL) {
        kccl_error_set("%s: server URL \"%s\" must not have a query or fragment", origin, server);
        st = KCCL_ERR_CONFIG;
    }
    if (st == KCCL_OK) {
        char *copy = strdup(server);
        if (copy == NULL) {
            st = KCCL_ERR_NO_MEMORY;
            kccl_error_set("out of memory");
            goto out;
        }
        size_t n = strlen(copy);
        while (n > 0 && copy[n - 1] == '/')
            copy[--n] = '\0';
        *out = copy;
    }
out:
    if (st != KCCL_OK)
        kccl_log_error(KUBE, "%s", kccl_last_error());
    curl_free(scheme);
    curl_free(host);
    curl_free(query);
    curl_free(fragment);
    curl_url_cleanup(u);
    return st;
}

kccl_status_t kccl_kube_server_from_host_port(const char *host, const char *port, char **out)
{
    kccl_kube_buf_t b = {0};
    int v6 = strchr(host, ':') != NULL && host[0] != '[';
    if (kccl_kube_buf_printf(&b, "https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port) !=
        0)
        CFG_FAIL(KCCL_ERR_NO_MEMORY, "out of memory");
    kccl_status_t st = kccl_kube_server_normalize(b.data, "in-cluster", out);
    kccl_kube_buf_free(&b);
    return st;
}

static int is_pem(const kccl_kube_blob_t *b)
{
    return b->len > 0 && memmem(b->data, b->len, "-----BEGIN ", 11) != NULL;
}

/* ------------------------------------------------------------------ in-cluster */

static kccl_status_t read_blob(const char *path, const char *what, kccl_kube_blob_t *b)
{
    char *data;
    size_t len;
    if (kccl_kube_read_file(path, PEM_MAX_BYTES, &data, &len) != 0)
        CFG_FAIL(KCCL_ERR_CONFIG, "cannot read %s %s: %s", what, path, strerror(errno));
    b->data = (unsigned char *)data;
    b->len = len;
    if (!is_pem(b)) {
        blob_free(b, 1);
        CFG_FAIL(KCCL_ERR_CONFIG, "%s %s is not PEM (no -----BEGIN line)", what, path);
    }
    return KCCL_OK;
}

kccl_status_t kccl_kube_config_load_in_cluster(kccl_kube_config_t *out)
{
    kccl_status_t st;
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    const char *dir = getenv(KCCL_KUBE_ENV_SA_DIR);
    if (dir == NULL || dir[0] == '\0')
        dir = KCCL_KUBE_SA_DIR_DEFAULT;
    if (host == NULL || host[0] == '\0' || port == NULL || port[0] == '\0')
        CFG_FAIL(KCCL_ERR_CONFIG,
                 "in-cluster configuration needs KUBERNETES_SERVICE_HOST and "
                 "KUBERNETES_SERVICE_PORT (missing %s); outside a pod, use a kubeconfig",
                 (host == NULL || host[0] == '\0') ? "KUBERNETES_SERVICE_HOST"
                                                   : "KUBERNETES_SERVICE_PORT");
    struct kccl_kube_config *cfg = kccl_kube_config_alloc();
    kccl_kube_buf_t path = {0};
    if (cfg == NULL)
        CFG_FAIL(KCCL_ERR_NO_MEMORY, "out of memory");
    cfg->in_cluster = 1;
    KCCL_CHECK_GOTO(kccl_kube_server_from_host_port(host, port, &cfg->server), st, err);

    st = KCCL_ERR_NO_MEMORY;
    if (kccl_kube_buf_printf(&path, "%s/token", dir) != 0 ||
        (cfg->token_file = strdup(path.data)) == NULL)
        goto err_nomem;
    KCCL_CHECK_GOTO(kccl_kube_token_read(cfg->token_file, &cfg->token), st, err);

    path.len = 0;
    if (kccl_kube_buf_printf(&path, "%s/ca.crt", dir) != 0)
        goto err_nomem;
    KCCL_CHECK_GOTO(read_blob(path.data, "service-account CA", &cfg->ca), st, err);

    path.len = 0;
    if (kccl_kube_buf_printf(&path, "%s/namespace", dir) != 0)
        goto err_nomem;
    char *ns = NULL;
    size_t ns_len = 0;
    if (kccl_kube_read_file(path.data, 4096, &ns, &ns_len) == 0 &&
        kccl_kube_rtrim(ns, ns_len) > 0) {
        cfg->ns = ns;
    } else {
        free(ns);
        kccl_log_info(KUBE, "no namespace in %s; using \"default\"", path.data);
        cfg->ns = strdup("default");
    }
    path.len = 0;
    if (cfg->ns == NULL ||
        kccl_kube_buf_printf(&path, "in-cluster (service account in %s, apiserver %s)", dir,
                             cfg->server) != 0)
        goto err_nomem;
    cfg->describe = path.data;
    *out = cfg;
    return KCCL_OK;

err_nomem:
    kccl_error_set("out of memory loading the in-cluster configuration");
err:
    kccl_kube_buf_free(&path);
    kccl_kube_config_free(cfg);
    return st;
}

/* ------------------------------------------------------------------ kubeconfig (YAML) */

typedef struct {
    yaml_document_t doc;
    const char *name;     /* the file, for messages */
    const char *base_dir; /* for relative paths */
} kcfg_t;

static kccl_status_t kcfg_fail(kcfg_t *k, const yaml_node_t *n, kccl_status_t st, const char *fmt,
                               ...) __attribute__((format(printf, 4, 5)));

static kccl_status_t kcfg_fail(kcfg_t *k, const yaml_node_t *n, kccl_status_t st, const char *fmt,
                               ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n != NULL)
        kccl_error_set("kubeconfig %s, line %lu: %s", k->name,
                       (unsigned long)n->start_mark.line + 1, msg);
    else
        kccl_error_set("kubeconfig %s: %s", k->name, msg);
    kccl_log_error(KUBE, "%s", kccl_last_error());
    return st;
}

static yaml_node_t *knode(kcfg_t *k, int idx)
{
    return yaml_document_get_node(&k->doc, idx);
}

/* The value for key in a mapping node, or NULL. */
static yaml_node_t *map_get(kcfg_t *k, const yaml_node_t *map, const char *key)
{
    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return NULL;
    size_t klen = strlen(key);
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = knode(k, p->key);
        if (kn && kn->type == YAML_SCALAR_NODE && kn->data.scalar.length == klen &&
            memcmp(kn->data.scalar.value, key, klen) == 0)
            return knode(k, p->value);
    }
    return NULL;
}

/* A scalar's text; NULL for a missing node, a YAML null or an empty string. */
static const char *scalar_text(const yaml_node_t *n)
{
    if (n == NULL || n->type != YAML_SCALAR_NODE)
        return NULL;
    const char *v = (const char *)n->data.scalar.value;
    if (n->data.scalar.length == 0)
        return NULL;
    if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
        (strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
         strcmp(v, "NULL") == 0))
        return NULL;
    return v;
}

/* A string field: absent is fine (*out NULL); a non-scalar or embedded NUL is an error. */
static kccl_status_t get_str(kcfg_t *k, const yaml_node_t *map, const char *key, const char *entry,
                             const char **out)
{
    yaml_node_t *n = map_get(k, map, key);
    *out = NULL;
    if (n == NULL)
        return KCCL_OK;
    if (n->type != YAML_SCALAR_NODE)
        return kcfg_fail(k, n, KCCL_ERR_CONFIG, "%s: \"%s\" must be a string", entry, key);
    if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length)
        return kcfg_fail(k, n, KCCL_ERR_CONFIG, "%s: \"%s\" contains a NUL byte", entry, key);
    *out = scalar_text(n);
    return KCCL_OK;
}

static kccl_status_t get_bool(kcfg_t *k, const yaml_node_t *map, const char *key, const char *entry,
                              int *out)
{
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off"};
    const char *v;
    KCCL_CHECK(get_str(k, map, key, entry, &v));
    *out = 0;
    if (v == NULL)
        return KCCL_OK;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcmp(v, yes[i]) == 0) {
            *out = 1;
            return KCCL_OK;
        }
        if (strcmp(v, no[i]) == 0)
            return KCCL_OK;
    }
    return kcfg_fail(k, map_get(k, map, key), KCCL_ERR_CONFIG,
                     "%s: \"%s\" must be true or false, not \"%s\"", entry, key, v);
}

/*
 * Finds the entry called `name` in the list `list` ("clusters") and returns
 * its `inner` mapping ("cluster"). On a miss the message lists what exists.
 */
static kccl_status_t find_named(kcfg_t *k, const yaml_node_t *root, const char *list,
                                const char *inner, const char *name, yaml_node_t **out)
{
    yaml_node_t *seq = map_get(k, root, list);
    kccl_kube_buf_t names = {0};
    if (seq != NULL && seq->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = seq->data.sequence.items.start;
             it < seq->data.sequence.items.top; it++) {
            yaml_node_t *entry = knode(k, *it);
            const char *n = scalar_text(map_get(k, entry, "name"));
            if (n == NULL)
                continue;
            if (strcmp(n, name) == 0) {
                kccl_kube_buf_free(&names);
                *out = map_get(k, entry, inner);
                if (*out == NULL || (*out)->type != YAML_MAPPING_NODE)
                    return kcfg_fail(k, entry, KCCL_ERR_CONFIG,
                                     "%s entry \"%s\" has no \"%s\" mapping", list, name, inner);
                return KCCL_OK;
            }
            kccl_kube_buf_printf(&names, "%s\"%s\"", names.len ? ", " : "", n);
        }
    }
    kccl_status_t st = kcfg_fail(k, NULL, KCCL_ERR_CONFIG, "no %s entry named \"%s\" (has: %s)",
                                 inner, name, names.len ? names.data : "none");
    kccl_kube_buf_free(&names);
    return st;
}

/* A file path from the kubeconfig, relative to its directory. */
static char *resolve_path(kcfg_t *k, const char *p)
{
    kccl_kube_buf_t b = {0};
    if (p[0] == '/' || k->base_dir == NULL || k->base_dir[0] == '\0')
        kccl_kube_buf_puts(&b, p);
    else
        kccl_kube_buf_printf(&b, "%s/%s", k->base_dir, p);
    return b.data;
}

/*
 * One piece of PEM material given either as a file (`file_key`) or inline in
 * base64 (`data_key`, which wins when both are set, as in kubectl).
 */
static kccl_status_t get_pem(kcfg_t *k, const yaml_node_t *map, const char *file_key,
                             const char *data_key, const char *entry, kccl_kube_blob_t *out)
{
    const char *file, *data;
    KCCL_CHECK(get_str(k, map, file_key, entry, &file));
    KCCL_CHECK(get_str(k, map, data_key, entry, &data));
    if (data != NULL) {
        if (kccl_kube_base64_decode(data, strlen(data), &out->data, &out->len) != 0)
            return kcfg_fail(k, map_get(k, map, data_key), KCCL_ERR_CONFIG,
                             "%s: \"%s\" is not valid base64", entry, data_key);
        if (!is_pem(out)) {
            blob_free(out, 1);
            return kcfg_fail(k, map_get(k, map, data_key), KCCL_ERR_CONFIG,
                             "%s: \"%s\" does not decode to PEM (no -----BEGIN line)", entry,
                             data_key);
        }
        return KCCL_OK;
    }
    if (file != NULL) {
        char *path = resolve_path(k, file);
        if (path == NULL)
            return kcfg_fail(k, NULL, KCCL_ERR_NO_MEMORY, "out of memory");
        char what[160];
        snprintf(what, sizeof(what), "%s (%s of kubeconfig %s)", file_key, entry, k->name);
        kccl_status_t st = read_blob(path, what, out);
        free(path);
        return st;
    }
    return KCCL_OK;
}

static kccl_status_t parse_cluster(kcfg_t *k, const yaml_node_t *root, const char *name,
                                   struct kccl_kube_config *cfg)
{
    yaml_node_t *c;
    const char *server, *proxy, *sni;
    char entry[192], origin[320];
    snprintf(entry, sizeof(entry), "cluster \"%s\"", name);
    KCCL_CHECK(find_named(k, root, "clusters", "cluster", name, &c));
    KCCL_CHECK(get_str(k, c, "server", entry, &server));
    if (server == NULL)
        return kcfg_fail(k, c, KCCL_ERR_CONFIG, "%s has no server URL", entry);
    snprintf(origin, sizeof(origin), "kubeconfig %s, %s", k->name, entry);
    KCCL_CHECK(kccl_kube_server_normalize(server, origin, &cfg->server));
    KCCL_CHECK(get_bool(k, c, "insecure-skip-tls-verify", entry, &cfg->insecure));
    KCCL_CHECK(
        get_pem(k, c, "certificate-authority", "certificate-authority-data", entry, &cfg->ca));
    if (cfg->insecure && cfg->ca.len > 0)
        return kcfg_fail(k, c, KCCL_ERR_CONFIG,
                         "%s sets both a certificate authority and insecure-skip-tls-verify; "
                         "remove one",
                         entry);
    KCCL_CHECK(get_str(k, c, "tls-server-name", entry, &sni));
    if (sni != NULL)
        return kcfg_fail(k, c, KCCL_ERR_UNSUPPORTED,
                         "%s sets tls-server-name, which kccl does not support; use a server "
                         "URL whose host matches the apiserver certificate",
                         entry);
    KCCL_CHECK(get_str(k, c, "proxy-url", entry, &proxy));
    if (proxy != NULL && (cfg->proxy_url = strdup(proxy)) == NULL)
        return kcfg_fail(k, NULL, KCCL_ERR_NO_MEMORY, "out of memory");
    return KCCL_OK;
}

/* Refuses what kccl cannot do for a user; exec/auth-provider only without other credentials. */
static kccl_status_t check_user_unsupported(kcfg_t *k, const yaml_node_t *u, const char *entry,
                                            int has_credentials)
{
    static const char *const impersonation[] = {"as", "as-uid", "as-groups", "as-user-extra"};
    for (size_t i = 0; i < sizeof(impersonation) / sizeof(impersonation[0]); i++) {
        yaml_node_t *n = map_get(k, u, impersonation[i]);
        if (n != NULL && (n->type != YAML_SCALAR_NODE || scalar_text(n) != NULL))
            return kcfg_fail(k, n, KCCL_ERR_UNSUPPORTED,
                             "%s uses impersonation (\"%s\"), which kccl does not support; "
                             "use the impersonated identity's own token or certificate",
                             entry, impersonation[i]);
    }
    yaml_node_t *exec = map_get(k, u, "exec");
    yaml_node_t *ap = map_get(k, u, "auth-provider");
    if (exec != NULL && exec->type == YAML_MAPPING_NODE) {
        const char *cmd = scalar_text(map_get(k, exec, "command"));
        if (!has_credentials)
            return kcfg_fail(k, exec, KCCL_ERR_UNSUPPORTED,
                             "%s authenticates with an exec credential plugin (command \"%s\"), "
                             "which kccl does not run; give kccl a user with a token, tokenFile "
                             "or client certificate (e.g. a ServiceAccount token from "
                             "`kubectl create token`)",
                             entry, cmd ? cmd : "?");
        kccl_log_warn(KUBE,
                      "kubeconfig %s: %s: ignoring the exec plugin, using the token or "
                      "certificate it also has",
                      k->name, entry);
    }
    if (ap != NULL && ap->type == YAML_MAPPING_NODE) {
        const char *pname = scalar_text(map_get(k, ap, "name"));
        if (!has_credentials)
            return kcfg_fail(k, ap, KCCL_ERR_UNSUPPORTED,
                             "%s authenticates with the \"%s\" auth-provider, which kccl does "
                             "not support; give kccl a user with a token, tokenFile or client "
                             "certificate (e.g. a ServiceAccount token from `kubectl create "
                             "token`)",
                             entry, pname ? pname : "?");
        kccl_log_warn(KUBE,
                      "kubeconfig %s: %s: ignoring the auth-provider, using the token or "
                      "certificate it also has",
                      k->name, entry);
    }
    return KCCL_OK;
}

static kccl_status_t parse_user(kcfg_t *k, const yaml_node_t *root, const char *name,
                                struct kccl_kube_config *cfg)
{
    yaml_node_t *u;
    const char *token, *token_file, *user, *pass;
    char entry[192];
    snprintf(entry, sizeof(entry), "user \"%s\"", name);
    KCCL_CHECK(find_named(k, root, "users", "user", name, &u));
    KCCL_CHECK(get_str(k, u, "token", entry, &token));
    KCCL_CHECK(get_str(k, u, "tokenFile", entry, &token_file));
    KCCL_CHECK(get_str(k, u, "username", entry, &user));
    KCCL_CHECK(get_str(k, u, "password", entry, &pass));
    KCCL_CHECK(
        get_pem(k, u, "client-certificate", "client-certificate-data", entry, &cfg->client_cert));
    KCCL_CHECK(get_pem(k, u, "client-key", "client-key-data", entry, &cfg->client_key));
    if ((cfg->client_cert.len > 0) != (cfg->client_key.len > 0))
        return kcfg_fail(k, u, KCCL_ERR_CONFIG, "%s has a client %s but no client %s", entry,
                         cfg->client_cert.len ? "certificate" : "key",
                         cfg->client_cert.len ? "key" : "certificate");
    if (cfg->client_key.len > 0 &&
        !memmem(cfg->client_key.data, cfg->client_key.len, "PRIVATE KEY-----", 16))
        return kcfg_fail(k, u, KCCL_ERR_CONFIG, "%s: the client key is not a PEM private key",
                         entry);
    int has_credentials =
        token || token_file || cfg->client_cert.len > 0 || (user != NULL && pass != NULL);
    KCCL_CHECK(check_user_unsupported(k, u, entry, has_credentials));

    if (token_file != NULL) { /* preferred over token: it can be refreshed */
        cfg->token_file = resolve_path(k, token_file);
        if (cfg->token_file == NULL)
            return kcfg_fail(k, NULL, KCCL_ERR_NO_MEMORY, "out of memory");
        KCCL_CHECK(kccl_kube_token_read(cfg->token_file, &cfg->token));
    } else if (token != NULL && (cfg->token = strdup(token)) == NULL) {
        return kcfg_fail(k, NULL, KCCL_ERR_NO_MEMORY, "out of memory");
    }
    if (user != NULL && (token != NULL || token_file != NULL))
        return kcfg_fail(k, u, KCCL_ERR_CONFIG,
                         "%s sets both a bearer token and a username/password; keep one", entry);
    if ((user == NULL) != (pass == NULL))
        return kcfg_fail(k, u, KCCL_ERR_CONFIG, "%s has a %s but no %s", entry,
                         user ? "username" : "password", user ? "password" : "username");
    if (user != NULL &&
        ((cfg->username = strdup(user)) == NULL || (cfg->password = strdup(pass)) == NULL))
        return kcfg_fail(k, NULL, KCCL_ERR_NO_MEMORY, "out of memory");
    return KCCL_OK;
}

static kccl_status_t parse_document(kcfg_t *k, const char *context, struct kccl_kube_config *cfg)
{
    yaml_node_t *root = yaml_document_get_root_node(&k->doc);
    const char *cur = NULL, *cluster = NULL, *user = NULL, *ns = NULL;
    yaml_node_t *ctx = NULL;
    if (root == NULL)
        return kcfg_fail(k, NULL, KCCL_ERR_CONFIG, "the file is empty");
    if (root->type != YAML_MAPPING_NODE)
        return kcfg_fail(k, root, KCCL_ERR_CONFIG, "the top level must be a mapping");
    static const char *const lists[] = {"clusters", "users", "contexts"};
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        yaml_node_t *l = map_get(k, root, lists[i]);
        if (l != NULL && l->type != YAML_SEQUENCE_NODE &&
            !(l->type == YAML_SCALAR_NODE && scalar_text(l) == NULL))
            return kcfg_fail(k, l, KCCL_ERR_CONFIG, "\"%s\" must be a list", lists[i]);
    }
    KCCL_CHECK(get_str(k, root, "current-context", "top level", &cur));
    if (context == NULL || context[0] == '\0')
        context = cur;
    if (context == NULL)
        return kcfg_fail(k, NULL, KCCL_ERR_CONFIG,
                         "no current-context; set one (kubectl config use-context NAME) or "
                         "name a context (%s)",
                         KCCL_KUBE_ENV_CONTEXT);
    KCCL_CHECK(find_named(k, root, "contexts", "context", context, &ctx));
    char entry[192];
    snprintf(entry, sizeof(entry), "context \"%s\"", context);
    KCCL_CHECK(get_str(k, ctx, "cluster", entry, &cluster));
    KCCL_CHECK(get_str(k, ctx, "user", entry, &user));
    KCCL_CHECK(get_str(k, ctx, "namespace", entry, &ns));
    if (cluster == NULL)
        return kcfg_fail(k, ctx, KCCL_ERR_CONFIG, "%s names no cluster", entry);
    if ((cfg->context_name = strdup(context)) == NULL ||
        (cfg->cluster_name = strdup(cluster)) == NULL ||
        (cfg->ns = strdup(ns ? ns : "default")) == NULL ||
        (user != NULL && (cfg->user_name = strdup(user)) == NULL))
        return kcfg_fail(k, NULL, KCCL_ERR_NO_MEMORY, "out of memory");
    KCCL_CHECK(parse_cluster(k, root, cluster, cfg));
    if (user != NULL)
        KCCL_CHECK(parse_user(k, root, user, cfg));
    else
        kccl_log_info(KUBE, "kubeconfig %s: %s has no user; requests are anonymous", k->name,
                      entry);
    kccl_kube_buf_t d = {0};
    if (kccl_kube_buf_printf(&d, "kubeconfig %s, context \"%s\" (cluster \"%s\", user \"%s\")",
                             k->name, context, cluster, user ? user : "(anonymous)") != 0)
        return kcfg_fail(k, NULL, KCCL_ERR_NO_MEMORY, "out of memory");
    cfg->describe = d.data;
    return KCCL_OK;
}

kccl_status_t kccl_kube_config_parse_kubeconfig(const char *text, size_t len, const char *name,
                                                const char *base_dir, const char *context,
                                                kccl_kube_config_t *out)
{
    kcfg_t k = {.name = name ? name : "(memory)", .base_dir = base_dir};
    yaml_parser_t parser;
    kccl_status_t st;
    if (!yaml_parser_initialize(&parser))
        CFG_FAIL(KCCL_ERR_NO_MEMORY, "out of memory initializing the YAML parser");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &k.doc)) {
        kccl_error_set("kubeconfig %s is not valid YAML: %s%s%s at line %lu, column %lu", k.name,
                       parser.problem ? parser.problem : "syntax error", parser.context ? " " : "",
                       parser.context ? parser.context : "",
                       (unsigned long)parser.problem_mark.line + 1,
                       (unsigned long)parser.problem_mark.column + 1);
        kccl_log_error(KUBE, "%s", kccl_last_error());
        yaml_parser_delete(&parser);
        return KCCL_ERR_CONFIG;
    }
    yaml_parser_delete(&parser);
    struct kccl_kube_config *cfg = kccl_kube_config_alloc();
    if (cfg == NULL) {
        yaml_document_delete(&k.doc);
        CFG_FAIL(KCCL_ERR_NO_MEMORY, "out of memory");
    }
    st = parse_document(&k, context, cfg);
    yaml_document_delete(&k.doc);
    if (st != KCCL_OK) {
        kccl_kube_config_free(cfg);
        return st;
    }
    *out = cfg;
    return KCCL_OK;
}

/* The kubeconfig path to use when none is given: $KUBECONFIG's first file or ~/.kube/config. */
static kccl_status_t default_kubeconfig_path(char **out)
{
    const char *env = getenv(KCCL_KUBE_ENV_KUBECONFIG);
    kccl_kube_buf_t b = {0};
    if (env != NULL && env[0] != '\0') {
        const char *colon = strchr(env, ':');
        size_t n = colon ? (size_t)(colon - env) : strlen(env);
        if (colon != NULL)
            kccl_log_info(KUBE,
                          "KUBECONFIG lists several files; kccl reads only the first, "
                          "%.*s (kubectl would merge them)",
                          (int)n, env);
        if (n == 0)
            CFG_FAIL(KCCL_ERR_CONFIG, "KUBECONFIG \"%s\" starts with an empty path", env);
        if (kccl_kube_buf_append(&b, env, n) != 0)
            CFG_FAIL(KCCL_ERR_NO_MEMORY, "out of memory");
    } else {
        const char *home = getenv("HOME");
        if (home == NULL || home[0] == '\0')
            CFG_FAIL(KCCL_ERR_CONFIG, "no kubeconfig: KUBECONFIG and HOME are both unset");
        if (kccl_kube_buf_printf(&b, "%s/.kube/config", home) != 0)
            CFG_FAIL(KCCL_ERR_NO_MEMORY, "out of memory");
    }
    *out = b.data;
    return KCCL_OK;
}

kccl_status_t kccl_kube_config_load_kubeconfig(const char *path, const char *context,
                                               kccl_kube_config_t *out)
{
    char *owned = NULL, *text, *dir_copy;
    size_t len;
    if (path == NULL || path[0] == '\0') {
        KCCL_CHECK(default_kubeconfig_path(&owned));
        path = owned;
    }
    if (context == NULL || context[0] == '\0')
        context = getenv(KCCL_KUBE_ENV_CONTEXT);
    if (kccl_kube_read_file(path, KUBECONFIG_MAX_BYTES, &text, &len) != 0) {
        kccl_error_set("cannot read kubeconfig %s: %s", path, strerror(errno));
        kccl_log_error(KUBE, "%s", kccl_last_error());
        free(owned);
        return KCCL_ERR_CONFIG;
    }
    if ((dir_copy = strdup(path)) == NULL) {
        kccl_kube_free_secret_n(text, len);
        free(owned);
        CFG_FAIL(KCCL_ERR_NO_MEMORY, "out of memory");
    }
    kccl_status_t st =
        kccl_kube_config_parse_kubeconfig(text, len, path, dirname(dir_copy), context, out);
    kccl_kube_free_secret_n(text, len); /* it may hold tokens and keys */
    free(dir_copy);
    free(owned);
    return st;
}

kccl_status_t kccl_kube_config_load(const char *context, kccl_kube_config_t *out)
{
    const char *kc = getenv(KCCL_KUBE_ENV_KUBECONFIG);
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    if ((kc == NULL || kc[0] == '\0') && host != NULL && host[0] != '\0')
        return kccl_kube_config_load_in_cluster(out);
    return kccl_kube_config_load_kubeconfig(NULL, context, out);
}
