/*
 * sc_podinfo.c - who this pod is: the downward API, given as environment
 * variables (fieldRef: POD_NAME, POD_NAMESPACE, POD_UID, POD_IP, NODE_NAME) or
 * as files in a downward-API volume ($KCCL_PODINFO_DIR: name, namespace, uid,
 * annotations, labels). A volume cannot carry status.podIP or spec.nodeName,
 * so those two always come from the environment (or, for the IP, from the pod
 * object the sidecar GETs when it must).
 *
 * The annotations and labels files are written by the kubelet as `key="value"`
 * lines, the value quoted with Go's %q, keys sorted, no newline after the last
 * line. The parser here is strict: anything else is an error, never a guess.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "sc.h"

#define PODINFO_FILE_MAX (256 * 1024) /* the apiserver caps all annotations at 256 KiB */
#define PODINFO_KEY_MAX  317          /* 253-byte prefix + '/' + 63-byte name */

/* ------------------------------------------------------------------ validators */

int sc_valid_dns_label(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

int sc_valid_subdomain(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && c != '-' && c != '.')
            return 0;
        if (!alnum && (i == 0 || i == n - 1))
            return 0;
    }
    return 1;
}

int sc_valid_label_value(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && c != '-' && c != '_' && c != '.')
            return 0;
        if (!alnum && (i == 0 || i == n - 1))
            return 0;
    }
    return 1;
}

int sc_valid_ip(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* ------------------------------------------------------------------ the %q parser */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Appends code point cp as UTF-8; -1 if it is not a Unicode scalar value. */
static int put_utf8(char *out, size_t *n, unsigned long cp)
{
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    if (cp < 0x80) {
        out[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*n)++] = (char)(0xC0 | (cp >> 6));
        out[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out[(*n)++] = (char)(0xE0 | (cp >> 12));
        out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        out[(*n)++] = (char)(0xF0 | (cp >> 18));
        out[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*n)++] = (char)(0x80 | (cp & 0x3F));
    }
    return 0;
}

/* One escape after the backslash at p[0]; appends to out. Returns bytes consumed, or -1. */
static int unescape(const char *p, const char *end, char *out, size_t *n)
{
    static const char simple_in[] = "abfnrtv\\\"", simple_out[] = "\a\b\f\n\r\t\v\\\"";
    if (p >= end)
        return -1;
    const char *s = strchr(simple_in, *p);
    if (*p != '\0' && s != NULL) {
        out[(*n)++] = simple_out[s - simple_in];
        return 1;
    }
    int digits = *p == 'x' ? 2 : *p == 'u' ? 4 : *p == 'U' ? 8 : 0;
    unsigned long v = 0;
    if (digits) {
        if (end - p <= digits)
            return -1;
        for (int i = 1; i <= digits; i++) {
            int h = hexval(p[i]);
            if (h < 0)
                return -1;
            v = v * 16 + (unsigned long)h;
        }
        if (*p == 'x') {
            if (v == 0)
                return -1; /* no NUL bytes in a C string */
            out[(*n)++] = (char)v;
            return 3;
        }
        return v == 0 || put_utf8(out, n, v) ? -1 : digits + 1;
    }
    if (*p >= '0' && *p <= '7') { /* \NNN: exactly three octal digits, one byte */
        if (end - p < 3)
            return -1;
        for (int i = 0; i < 3; i++) {
            if (p[i] < '0' || p[i] > '7')
                return -1;
            v = v * 8 + (unsigned long)(p[i] - '0');
        }
        if (v == 0 || v > 255)
            return -1;
        out[(*n)++] = (char)v;
        return 3;
    }
    return -1;
}

/* Parses the quoted value starting at the opening quote *pp; leaves *pp after the closing one. */
static int parse_quoted(const char **pp, const char *end, char *out, const char **err)
{
    const char *p = *pp + 1;
    size_t n = 0;
    while (p < end && *p != '"') {
        unsigned char c = (unsigned char)*p;
        if (c == '\\') {
            int used = unescape(p + 1, end, out, &n);
            if (used < 0)
                return *err = "bad escape in the value", -1;
            p += 1 + used;
        } else if (c < 0x20 || c == 0x7F) {
            return *err = "raw control character in the value", -1;
        } else {
            out[n++] = (char)c;
            p++;
        }
    }
    if (p >= end)
        return *err = "unterminated value", -1;
    out[n] = '\0';
    *pp = p + 1;
    return 0;
}

static int valid_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '/';
}

/* One line `key="value"`; adds it to obj. */
static int parse_line(const char *p, const char *end, cJSON *obj, char *val, const char **err)
{
    const char *eq = memchr(p, '=', (size_t)(end - p));
    if (eq == NULL || eq == p)
        return *err = "not key=\"value\"", -1;
    size_t klen = (size_t)(eq - p);
    if (klen > PODINFO_KEY_MAX)
        return *err = "key too long", -1;
    char key[PODINFO_KEY_MAX + 1];
    for (size_t i = 0; i < klen; i++)
        if (!valid_key_char(p[i]))
            return *err = "invalid character in the key", -1;
    memcpy(key, p, klen);
    key[klen] = '\0';
    const char *q = eq + 1;
    if (q >= end || *q != '"')
        return *err = "the value is not quoted", -1;
    if (parse_quoted(&q, end, val, err) != 0)
        return -1;
    if (q != end)
        return *err = "text after the closing quote", -1;
    if (cJSON_GetObjectItemCaseSensitive(obj, key) != NULL)
        return *err = "key given twice", -1;
    if (cJSON_AddStringToObject(obj, key, val) == NULL)
        return *err = "out of memory", -1;
    return 0;
}

kccl_status_t sc_podinfo_parse(const char *text, size_t len, cJSON **out, char *why, size_t whylen)
{
    cJSON *obj = cJSON_CreateObject();
    char *val = malloc(len + 1); /* a value is never longer than its line */
    const char *err = NULL;
    int lineno = 0;
    if (obj == NULL || val == NULL) {
        snprintf(why, whylen, "out of memory");
        goto err_free;
    }
    if (len > 0 && memchr(text, '\0', len) != NULL) {
        snprintf(why, whylen, "the file holds a NUL byte");
        goto err_free;
    }
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        const char *end = nl ? nl : text + len;
        lineno++;
        if (end == text + pos) {
            err = "empty line";
            goto err_line;
        }
        if (parse_line(text + pos, end, obj, val, &err) != 0)
            goto err_line;
        pos = (size_t)(end - text) + (nl ? 1 : 0);
    }
    free(val);
    *out = obj;
    return KCCL_OK;
err_line:
    snprintf(why, whylen, "line %d: %s", lineno, err);
err_free:
    free(val);
    cJSON_Delete(obj);
    return KCCL_ERR_PROTOCOL;
}

/* ------------------------------------------------------------------ identity */

/* Reads DIR/name into buf (one value, one optional trailing newline). 0, 1 absent, -1 bad. */
static int read_value_file(const char *dir, const char *name, char *buf, size_t cap)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return errno == ENOENT ? 1 : -1;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    if (n == cap)
        return -1;
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    buf[n] = '\0';
    return strlen(buf) == n && strchr(buf, '\n') == NULL ? 0 : -1;
}

static kccl_status_t load_map_file(const char *dir, const char *name, cJSON **out)
{
    char path[4096], why[160];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        if (errno == ENOENT)
            return KCCL_OK; /* not projected: the pod is read from the API */
        KCCL_FAIL(TOOL, KCCL_ERR_CONFIG, "cannot open %s: %s", path, strerror(errno));
    }
    char *text = malloc(PODINFO_FILE_MAX + 1);
    size_t n = text ? fread(text, 1, PODINFO_FILE_MAX + 1, f) : 0;
    fclose(f);
    if (text == NULL)
        KCCL_FAIL(TOOL, KCCL_ERR_NO_MEMORY, "out of memory reading %s", path);
    kccl_status_t st = KCCL_ERR_CONFIG;
    if (n > PODINFO_FILE_MAX)
        snprintf(why, sizeof(why), "larger than %d bytes", PODINFO_FILE_MAX);
    else if ((st = sc_podinfo_parse(text, n, out, why, sizeof(why))) == KCCL_OK)
        st = KCCL_OK;
    free(text);
    if (st != KCCL_OK)
        KCCL_FAIL(TOOL, KCCL_ERR_CONFIG, "downward-API file %s: %s", path, why);
    return KCCL_OK;
}

/* Takes field from the environment variable and/or DIR/file; both given must agree. */
static kccl_status_t identity_field(sc_cfg_id_t cfg, const char *dir, const char *file, char *dst,
                                    size_t cap)
{
    char fromfile[512] = "";
    int rc = dir && file ? read_value_file(dir, file, fromfile, sizeof(fromfile)) : 1;
    if (rc < 0)
        KCCL_FAIL(TOOL, KCCL_ERR_CONFIG, "cannot read %s/%s (one value, one line)", dir, file);
    const char *env = sc_config_is_set(cfg) ? sc_config_str(cfg) : NULL;
    if (env && rc == 0 && strcmp(env, fromfile) != 0)
        KCCL_FAIL(TOOL, KCCL_ERR_CONFIG, "%s/%s says \"%.64s\" but the environment says \"%.64s\"",
                  dir, file, fromfile, env);
    const char *v = env ? env : rc == 0 ? fromfile : "";
    if (strlen(v) >= cap)
        KCCL_FAIL(TOOL, KCCL_ERR_CONFIG, "the pod's %s is too long", file ? file : "value");
    snprintf(dst, cap, "%s", v);
    return KCCL_OK;
}

kccl_status_t sc_identity_load(sc_identity_t *id)
{
    const char *dir =
        sc_config_is_set(SC_CFG_PODINFO_DIR) ? sc_config_str(SC_CFG_PODINFO_DIR) : NULL;
    memset(id, 0, sizeof(*id));
    KCCL_CHECK(identity_field(SC_CFG_POD_NAME, dir, "name", id->name, sizeof(id->name)));
    KCCL_CHECK(identity_field(SC_CFG_POD_NAMESPACE, dir, "namespace", id->ns, sizeof(id->ns)));
    KCCL_CHECK(identity_field(SC_CFG_POD_UID, dir, "uid", id->uid, sizeof(id->uid)));
    KCCL_CHECK(identity_field(SC_CFG_POD_IP, NULL, NULL, id->ip, sizeof(id->ip)));
    KCCL_CHECK(identity_field(SC_CFG_NODE_NAME, NULL, NULL, id->node, sizeof(id->node)));
    if (!sc_valid_subdomain(id->name) || !sc_valid_dns_label(id->ns))
        KCCL_FAIL(TOOL, KCCL_ERR_CONFIG,
                  "the pod's name and namespace are missing or invalid (name \"%.64s\", namespace "
                  "\"%.64s\"): give the sidecar POD_NAME and POD_NAMESPACE from the downward API "
                  "(fieldRef metadata.name, metadata.namespace) or KCCL_PODINFO_DIR",
                  id->name, id->ns);
    if (id->ip[0] && !sc_valid_ip(id->ip))
        KCCL_FAIL(TOOL, KCCL_ERR_CONFIG, "POD_IP=\"%.64s\" is not an IP address", id->ip);
    if (id->node[0] && !sc_valid_subdomain(id->node))
        KCCL_FAIL(TOOL, KCCL_ERR_CONFIG, "NODE_NAME=\"%.64s\" is not a node name", id->node);
    if (strchr(id->uid, '\n') || strchr(id->uid, '"'))
        KCCL_FAIL(TOOL, KCCL_ERR_CONFIG, "POD_UID is malformed");
    if (dir) {
        kccl_status_t st = load_map_file(dir, "annotations", &id->annotations);
        if (st == KCCL_OK)
            st = load_map_file(dir, "labels", &id->labels);
        if (st != KCCL_OK) {
            sc_identity_free(id);
            return st;
        }
    }
    return KCCL_OK;
}

void sc_identity_free(sc_identity_t *id)
{
    cJSON_Delete(id->annotations);
    cJSON_Delete(id->labels);
    id->annotations = id->labels = NULL;
}
