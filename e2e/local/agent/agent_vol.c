/*
 * agent_vol.c - a pod's volumes as directories under <state>/pods/<uid>/volumes/<name>,
 * filled as the kubelet fills them:
 *
 *   emptyDir      an empty directory (medium Memory too);
 *   secret        one file per key (or per items[]), read through the API; a
 *                 missing Secret is retried (the pod stays ContainerCreating with a
 *                 FailedMount Event) until --mount-timeout, then the pod fails;
 *   configMap     the same with data/binaryData;
 *   downwardAPI   fieldRef items (name, namespace, uid, labels, annotations,
 *                 labels['k'], annotations['k']); maps as key="value" lines, Go %q;
 *   projected     serviceAccountToken (a TokenRequest bound to the pod, renewed at
 *                 80 % of its lifetime), configMap, secret and downwardAPI sources;
 *   hostPath      the host's path itself.
 *
 * Containers see each volume at its exact mountPath (agent_proc.c bind-mounts it).
 * Files are written atomically (temporary file + rename); secrets and tokens are
 * never logged.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "kube_util.h"

int ag_mkdirs(const char *path, int mode)
{
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *s = buf + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST)
            return -1;
        *s = '/';
    }
    return mkdir(buf, (mode_t)mode) == 0 || errno == EEXIST ? 0 : -1;
}

int ag_write_file_atomic(const char *path, const void *data, size_t len, int mode)
{
    char tmp[1100], dir[1024];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        ag_mkdirs(dir, 0755);
    }
    snprintf(tmp, sizeof(tmp), "%s.agtmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    if (write(fd, data, len) != (ssize_t)len || fchmod(fd, (mode_t)mode) != 0) {
        close(fd);
        unlink(tmp);
        return -1;
    }
    close(fd);
    return rename(tmp, path);
}

const char *ag_vol_path(const ag_pod_t *p, const char *volume, char *buf, size_t len)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(p->spec, "volumes"))
    {
        if (strcmp(ag_json_str(v, "name"), volume) != 0)
            continue;
        const cJSON *hp = cJSON_GetObjectItemCaseSensitive(v, "hostPath");
        if (hp) {
            snprintf(buf, len, "%s", ag_json_str(hp, "path"));
            return buf;
        }
        snprintf(buf, len, "%s/volumes/%s", p->dir, volume);
        return buf;
    }
    return NULL;
}

/* Go's %q for the kubelet's key="value" lines. */
static void go_quote(char *out, size_t len, const char *s)
{
    size_t n = 0;
    out[n++] = '"';
    for (const unsigned char *c = (const unsigned char *)s; *c && n + 6 < len; c++) {
        if (*c == '"' || *c == '\\')
            n += (size_t)snprintf(out + n, len - n, "\\%c", *c);
        else if (*c == '\n')
            n += (size_t)snprintf(out + n, len - n, "\\n");
        else if (*c < 0x20 || *c == 0x7f)
            n += (size_t)snprintf(out + n, len - n, "\\x%02x", *c);
        else
            out[n++] = (char)*c;
    }
    out[n++] = '"';
    out[n] = '\0';
}

static const char *map_text(const cJSON *map, char *buf, size_t len)
{
    size_t n = 0;
    const cJSON *it;
    buf[0] = '\0';
    cJSON_ArrayForEach(it, map)
    {
        char q[2048];
        go_quote(q, sizeof(q), cJSON_IsString(it) ? it->valuestring : "");
        n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s%s=%s", n ? "\n" : "", it->string,
                              q);
        if (n >= len)
            break;
    }
    return buf;
}

/* metadata.labels['k'] style: the key, or NULL. */
static int bracket_key(const char *field, const char *prefix, char *key, size_t len)
{
    size_t pl = strlen(prefix);
    if (strncmp(field, prefix, pl) != 0 || field[pl] != '[' || field[pl + 1] != '\'')
        return 0;
    const char *end = strstr(field + pl + 2, "']");
    if (end == NULL)
        return 0;
    snprintf(key, len, "%.*s", (int)(end - (field + pl + 2)), field + pl + 2);
    return 1;
}

const char *ag_field_value(const ag_pod_t *p, const char *field, char *buf, size_t len)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(p->obj, "metadata");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(p->obj, "status");
    char key[256];
    buf[0] = '\0';
    if (!strcmp(field, "metadata.name"))
        snprintf(buf, len, "%s", p->name);
    else if (!strcmp(field, "metadata.namespace"))
        snprintf(buf, len, "%s", p->ns);
    else if (!strcmp(field, "metadata.uid"))
        snprintf(buf, len, "%s", p->uid);
    else if (!strcmp(field, "spec.nodeName"))
        snprintf(buf, len, "%s", ag_json_str(p->spec, "nodeName"));
    else if (!strcmp(field, "spec.serviceAccountName"))
        snprintf(buf, len, "%s", ag_json_str(p->spec, "serviceAccountName"));
    else if (!strcmp(field, "status.podIP") || !strcmp(field, "status.podIPs"))
        snprintf(buf, len, "%s", p->ip);
    else if (!strcmp(field, "status.hostIP") || !strcmp(field, "status.hostIPs"))
        snprintf(buf, len, "%s", ag_json_str(status, "hostIP"));
    else if (!strcmp(field, "metadata.labels"))
        map_text(cJSON_GetObjectItemCaseSensitive(meta, "labels"), buf, len);
    else if (!strcmp(field, "metadata.annotations"))
        map_text(cJSON_GetObjectItemCaseSensitive(meta, "annotations"), buf, len);
    else if (bracket_key(field, "metadata.labels", key, sizeof(key)))
        snprintf(buf, len, "%s",
                 ag_json_str(cJSON_GetObjectItemCaseSensitive(meta, "labels"), key));
    else if (bracket_key(field, "metadata.annotations", key, sizeof(key)))
        snprintf(buf, len, "%s",
                 ag_json_str(cJSON_GetObjectItemCaseSensitive(meta, "annotations"), key));
    else
        return NULL;
    return buf;
}

/* ------------------------------------------------------------------ sources */

static int mode_of(const cJSON *item, int dflt)
{
    return ag_json_int(item, "mode", dflt);
}

/* A Secret or ConfigMap into dir: 0, 1 (missing: retry), -1. */
static int write_keyed(ag_t *a, ag_pod_t *p, const char *dir, const char *kind, const cJSON *src,
                       int dflt_mode)
{
    int secret = !strcmp(kind, "secrets");
    const char *name = ag_json_str(src, secret ? "secretName" : "name");
    if (!*name)
        name = ag_json_str(src, "name");
    char path[512];
    kccl_kube_result_t res;
    cJSON *obj = NULL;
    kccl_kube_opts_t o = {.timeout_ms = 5000};
    kccl_kube_path(path, sizeof(path), "v1", p->ns, kind, name, NULL);
    if (kccl_kube_get(a->api, path, &o, &obj, &res) != KCCL_OK) {
        if (res.http_status == 404 &&
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(src, "optional")))
            return 0;
        snprintf(p->message, sizeof(p->message), "%s \"%s\" not found: %s",
                 secret ? "secret" : "configmap", name, res.message);
        return 1;
    }
    int rc = 0;
    const char *sections[] = {"data", secret ? NULL : "binaryData"};
    for (int s = 0; s < 2 && rc == 0; s++) {
        if (sections[s] == NULL)
            continue;
        int b64 = secret || s == 1;
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(obj, sections[s]);
        const cJSON *items = cJSON_GetObjectItemCaseSensitive(src, "items");
        const cJSON *kv;
        cJSON_ArrayForEach(kv, data)
        {
            const char *rel = kv->string;
            int mode = dflt_mode;
            if (cJSON_GetArraySize(items) > 0) {
                const cJSON *it, *hit = NULL;
                cJSON_ArrayForEach(it, items) if (!strcmp(ag_json_str(it, "key"), kv->string)) hit =
                    it;
                if (hit == NULL)
                    continue;
                rel = ag_json_str(hit, "path");
                mode = mode_of(hit, dflt_mode);
            }
            char file[1200];
            snprintf(file, sizeof(file), "%s/%s", dir, rel);
            const char *v = cJSON_IsString(kv) ? kv->valuestring : "";
            if (b64) {
                unsigned char *bytes = NULL;
                size_t n = 0;
                if (kccl_kube_base64_decode(v, strlen(v), &bytes, &n) != 0) {
                    rc = -1;
                    break;
                }
                rc = ag_write_file_atomic(file, bytes, n, mode);
                kccl_kube_free_secret_n(bytes, n);
            } else {
                rc = ag_write_file_atomic(file, v, strlen(v), mode);
            }
        }
    }
    cJSON_Delete(obj);
    if (rc != 0)
        snprintf(p->message, sizeof(p->message), "cannot write %s %s into %s", kind, name, dir);
    return rc ? -1 : 0;
}

static int write_downward(ag_pod_t *p, const char *dir, const cJSON *src, int dflt_mode)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(src, "items"))
    {
        const cJSON *fr = cJSON_GetObjectItemCaseSensitive(it, "fieldRef");
        char val[16384], file[1200];
        const char *v = fr ? ag_field_value(p, ag_json_str(fr, "fieldPath"), val, sizeof(val))
                           : "0"; /* resourceFieldRef: no limits here */
        if (v == NULL) {
            snprintf(p->message, sizeof(p->message), "unsupported downward API field %s",
                     ag_json_str(fr, "fieldPath"));
            return -1;
        }
        snprintf(file, sizeof(file), "%s/%s", dir, ag_json_str(it, "path"));
        if (ag_write_file_atomic(file, v, strlen(v), mode_of(it, dflt_mode)) != 0)
            return -1;
    }
    return 0;
}

static int write_token(ag_t *a, ag_pod_t *p, const char *dir, const cJSON *src, int mode)
{
    char path[512], file[1200];
    int exp = ag_json_int(src, "expirationSeconds", 3600);
    const char *aud = ag_json_str(src, "audience");
    const char *sa = ag_json_str(p->spec, "serviceAccountName");
    cJSON *req = cJSON_CreateObject(), *out = NULL;
    cJSON_AddStringToObject(req, "apiVersion", "authentication.k8s.io/v1");
    cJSON_AddStringToObject(req, "kind", "TokenRequest");
    cJSON *spec = cJSON_AddObjectToObject(req, "spec");
    if (*aud) {
        cJSON *auds = cJSON_AddArrayToObject(spec, "audiences");
        cJSON_AddItemToArray(auds, cJSON_CreateString(aud));
    }
    cJSON_AddNumberToObject(spec, "expirationSeconds", exp);
    cJSON *ref = cJSON_AddObjectToObject(spec, "boundObjectRef");
    cJSON_AddStringToObject(ref, "apiVersion", "v1");
    cJSON_AddStringToObject(ref, "kind", "Pod");
    cJSON_AddStringToObject(ref, "name", p->name);
    cJSON_AddStringToObject(ref, "uid", p->uid);
    kccl_kube_result_t res;
    kccl_kube_opts_t o = {.timeout_ms = 10000};
    kccl_kube_path(path, sizeof(path), "v1", p->ns, "serviceaccounts", *sa ? sa : "default",
                   "token");
    kccl_status_t st = kccl_kube_create(a->api, path, req, &o, &out, &res);
    cJSON_Delete(req);
    if (st != KCCL_OK) {
        snprintf(p->message, sizeof(p->message), "token for service account %s: %s",
                 *sa ? sa : "default", res.message);
        return 1;
    }
    const char *tok = ag_json_str(cJSON_GetObjectItemCaseSensitive(out, "status"), "token");
    snprintf(file, sizeof(file), "%s/%s", dir, ag_json_str(src, "path"));
    int rc = *tok ? ag_write_file_atomic(file, tok, strlen(tok), mode) : -1;
    cJSON_Delete(out);
    int64_t refresh = ag_now_ms() + (int64_t)exp * 800; /* 80 % of the lifetime */
    if (p->token_refresh_ms == 0 || refresh < p->token_refresh_ms)
        p->token_refresh_ms = refresh;
    return rc;
}

static int write_projected(ag_t *a, ag_pod_t *p, const char *dir, const cJSON *src, int tokens)
{
    int mode = ag_json_int(src, "defaultMode", 0644), rc = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(src, "sources"))
    {
        const cJSON *x;
        if ((x = cJSON_GetObjectItemCaseSensitive(s, "serviceAccountToken")))
            rc = write_token(a, p, dir, x, mode);
        else if (tokens)
            continue;
        else if ((x = cJSON_GetObjectItemCaseSensitive(s, "configMap")))
            rc = write_keyed(a, p, dir, "configmaps", x, mode);
        else if ((x = cJSON_GetObjectItemCaseSensitive(s, "secret")))
            rc = write_keyed(a, p, dir, "secrets", x, mode);
        else if ((x = cJSON_GetObjectItemCaseSensitive(s, "downwardAPI")))
            rc = write_downward(p, dir, x, mode);
        else if ((x = cJSON_GetObjectItemCaseSensitive(s, "clusterTrustBundle")) ||
                 (x = cJSON_GetObjectItemCaseSensitive(s, "podCertificate"))) {
            snprintf(p->message, sizeof(p->message), "unsupported projected source");
            rc = -1;
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int setup_one(ag_t *a, ag_pod_t *p, const cJSON *v)
{
    char dir[1024];
    const cJSON *x;
    const char *name = ag_json_str(v, "name");
    if (cJSON_GetObjectItemCaseSensitive(v, "hostPath"))
        return 0;
    snprintf(dir, sizeof(dir), "%s/volumes/%s", p->dir, name);
    if (ag_mkdirs(dir, 0755) != 0) {
        snprintf(p->message, sizeof(p->message), "mkdir %s: %s", dir, strerror(errno));
        return -1;
    }
    if (cJSON_GetObjectItemCaseSensitive(v, "emptyDir"))
        return 0;
    if ((x = cJSON_GetObjectItemCaseSensitive(v, "secret")))
        return write_keyed(a, p, dir, "secrets", x, ag_json_int(x, "defaultMode", 0644));
    if ((x = cJSON_GetObjectItemCaseSensitive(v, "configMap")))
        return write_keyed(a, p, dir, "configmaps", x, ag_json_int(x, "defaultMode", 0644));
    if ((x = cJSON_GetObjectItemCaseSensitive(v, "downwardAPI")))
        return write_downward(p, dir, x, ag_json_int(x, "defaultMode", 0644));
    if ((x = cJSON_GetObjectItemCaseSensitive(v, "projected")))
        return write_projected(a, p, dir, x, 0);
    snprintf(p->message, sizeof(p->message), "volume %s: unsupported volume type", name);
    return -1;
}

int ag_vol_setup(ag_t *a, ag_pod_t *p)
{
    const cJSON *v;
    p->token_refresh_ms = 0;
    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(p->spec, "volumes"))
    {
        int rc = setup_one(a, p, v);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int ag_vol_refresh_tokens(ag_t *a, ag_pod_t *p)
{
    const cJSON *v;
    int rc = 0;
    p->token_refresh_ms = 0;
    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(p->spec, "volumes"))
    {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(v, "projected");
        char dir[1024];
        snprintf(dir, sizeof(dir), "%s/volumes/%s", p->dir, ag_json_str(v, "name"));
        if (x && write_projected(a, p, dir, x, 1) != 0)
            rc = -1;
    }
    if (rc != 0 && p->token_refresh_ms == 0)
        p->token_refresh_ms = ag_now_ms() + 10000;
    return rc;
}
