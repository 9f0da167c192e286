/*
 * podkit.c - see podkit.h: the control plane's settings, address ranges, and
 * the pods' objects, networks, tokens and files (the kubelet's part; processes
 * and observations are in podkit_run.c). Setup uses the admin client
 * (libkccl_kube) and `ip`; nothing here goes through the sidecar's own code.
 */
#include "podkit.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kube_util.h"
#include "podkit_int.h"

#define PK_LOCK_DIR       "/tmp/kccl-sidecar-net"
#define PK_OCTET_MIN      100
#define PK_OCTET_MAX      219
#define PK_PODS_PER_OCTET 250
#define PK_SA             "kccl-sidecar"

void pk_err(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "podkit: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
}

int64_t pk_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double pk_wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void pk_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ------------------------------------------------------------------ shell */

static int sh_capture(char *out, size_t outlen, const char *cmd)
{
    FILE *p = popen(cmd, "r"); // NOLINT(cert-env33-c): tests drive kubectl and ip by shell
    if (p == NULL)
        return -1;
    size_t len = 0;
    char sink[4096] = {0};
    for (;;) {
        char *dst = out ? out + len : sink;
        size_t room = out ? outlen - len - 1 : sizeof(sink);
        if (out && room == 0)
            break;
        size_t r = fread(dst, 1, room, p);
        if (r == 0)
            break;
        if (out)
            len += r;
    }
    if (out) {
        out[len] = '\0';
        while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == ' '))
            out[--len] = '\0';
    }
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

int pk_sh(const pk_t *k, char *out, size_t outlen, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    int n = snprintf(cmd, sizeof(cmd), "export PATH='%s':\"$PATH\" KUBECONFIG='%s'; ", k->bin,
                     k->kubeconfig);
    va_start(ap, fmt);
    vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
    va_end(ap);
    return sh_capture(out, outlen, cmd);
}

/* ------------------------------------------------------------------ control plane settings */

static void set_val(char *dst, size_t cap, const char *v)
{
    size_t n = strlen(v);
    if (n >= 2 && v[0] == '\'' && v[n - 1] == '\'')
        snprintf(dst, cap, "%.*s", (int)n - 2, v + 1);
    else
        snprintf(dst, cap, "%s", v);
}

static int read_cp_env(pk_t *k)
{
    char cmd[700], line[1024];
    snprintf(cmd, sizeof(cmd), "'%s' status >/dev/null 2>&1", k->cp_sh);
    if (sh_capture(NULL, 0, cmd) != 0)
        return PK_SKIP;
    snprintf(cmd, sizeof(cmd), "'%s' env", k->cp_sh);
    FILE *p = popen(cmd, "r"); // NOLINT(cert-env33-c): cp.sh is a shell script
    static const struct {
        const char *key;
        size_t off, cap;
    } map[] = {
        {"KUBECONFIG", offsetof(pk_t, kubeconfig), sizeof(((pk_t *)0)->kubeconfig)},
        {"KCCL_CP_APISERVER", offsetof(pk_t, apiserver), sizeof(((pk_t *)0)->apiserver)},
        {"KCCL_CP_CA", offsetof(pk_t, ca), sizeof(((pk_t *)0)->ca)},
        {"KCCL_CP_BIN", offsetof(pk_t, bin), sizeof(((pk_t *)0)->bin)},
        {"KCCL_CP_BRIDGE", offsetof(pk_t, bridge), sizeof(((pk_t *)0)->bridge)},
        {"KCCL_CP_BRIDGE_IP", offsetof(pk_t, bridge_ip), sizeof(((pk_t *)0)->bridge_ip)},
        {"KCCL_CP_NETNS_PREFIX", offsetof(pk_t, netns_prefix), sizeof(((pk_t *)0)->netns_prefix)},
        {"KCCL_CP_AUDIT_LOG", offsetof(pk_t, audit_log), sizeof(((pk_t *)0)->audit_log)},
    };
    while (p && fgets(line, sizeof(line), p)) {
        char *eq = strchr(line, '=');
        if (strncmp(line, "export ", 7) != 0 || eq == NULL)
            continue;
        *eq = '\0';
        eq[strcspn(eq + 1, "\n") + 1] = '\0';
        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
            if (strcmp(line + 7, map[i].key) == 0)
                set_val((char *)k + map[i].off, map[i].cap, eq + 1);
    }
    if (p == NULL || pclose(p) != 0 || !k->kubeconfig[0] || !k->apiserver[0] || !k->bridge[0] ||
        !k->bridge_ip[0] || !k->netns_prefix[0]) {
        pk_err("cannot read `%s env`", k->cp_sh);
        return PK_SKIP;
    }
    const char *colon = strrchr(k->apiserver, ':');
    snprintf(k->port, sizeof(k->port), "%s", colon ? colon + 1 : "443");
    return 0;
}

/* ------------------------------------------------------------------ addresses */

static void cleanup_octet(pk_t *k, int octet)
{
    pk_sh(k, NULL, 0,
          "for n in $(ip netns list | awk '{print $1}' | grep -E '^%ssc%d-[0-9]+$'); do "
          "for q in $(ip netns pids $n); do kill -9 $q; done; ip netns delete $n; done; sleep 0.1; "
          "for l in $(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | "
          "grep -E '^kcs%d-[0-9]+$'); do ip link delete $l 2>/dev/null; done",
          k->netns_prefix, octet, octet);
}

static int lock_octets(pk_t *k, int max_pods)
{
    int need = (max_pods + PK_PODS_PER_OCTET - 1) / PK_PODS_PER_OCTET;
    if (need < 1)
        need = 1;
    if (need > 8)
        return -1;
    mkdir(PK_LOCK_DIR, 0755);
    for (int base = PK_OCTET_MIN; base + need - 1 <= PK_OCTET_MAX; base++) {
        int got = 0;
        for (; got < need; got++) {
            char path[128];
            snprintf(path, sizeof(path), PK_LOCK_DIR "/%d.lock", base + got);
            int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
            if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
                if (fd >= 0)
                    close(fd);
                break;
            }
            k->lock_fds[got] = fd;
        }
        if (got == need) {
            k->octet = base;
            k->noctets = need;
            for (int i = 0; i < need; i++)
                cleanup_octet(k, base + i);
            return 0;
        }
        for (int i = 0; i < got; i++)
            close(k->lock_fds[i]);
    }
    pk_err("no free address range under " PK_LOCK_DIR);
    return -1;
}

/* ------------------------------------------------------------------ init / fini */

int pk_api_create(pk_t *k, const char *path, const char *json, cJSON **out)
{
    kccl_kube_result_t res;
    cJSON *body = cJSON_Parse(json);
    if (body == NULL) {
        pk_err("bad JSON for %s", path);
        return -1;
    }
    kccl_status_t st = kccl_kube_create(k->admin, path, body, NULL, out, &res);
    cJSON_Delete(body);
    if (st != KCCL_OK) {
        pk_err("POST %s: %d %s: %s", path, res.http_status, res.reason, res.message);
        return -1;
    }
    return 0;
}

int pk_init(pk_t *k, const char *prog, const char *source_dir, const char *sidecar_bin,
            const char *demo_bin, int max_pods)
{
    kccl_kube_config_t cfg;
    memset(k, 0, sizeof(*k));
    for (int i = 0; i < 8; i++)
        k->lock_fds[i] = -1;
    snprintf(k->cp_sh, sizeof(k->cp_sh), "%s/e2e/controlplane/cp.sh", source_dir);
    snprintf(k->rbac, sizeof(k->rbac), "%s/deploy/rbac/kccl-sidecar.yaml", source_dir);
    snprintf(k->sidecar_bin, sizeof(k->sidecar_bin), "%s", sidecar_bin);
    snprintf(k->demo_bin, sizeof(k->demo_bin), "%s", demo_bin ? demo_bin : "");
    int rc = read_cp_env(k);
    if (rc != 0)
        return rc;
    if (max_pods > PK_MAX_PODS || lock_octets(k, max_pods) != 0)
        return -1;
    k->pods = calloc((size_t)max_pods, sizeof(pk_pod_t));
    k->npods = 0;
    if (kccl_kube_config_load_kubeconfig(k->kubeconfig, NULL, &cfg) != KCCL_OK ||
        kccl_kube_client_create(cfg, &k->admin) != KCCL_OK) {
        pk_err("admin client: %s", kccl_last_error());
        return -1;
    }
    unsigned r = 0;
    (void)!getrandom(&r, sizeof(r), 0);
    snprintf(k->ns, sizeof(k->ns), "kccl-sc-%.20s-%d-%04x", prog, (int)getpid(), r & 0xffff);
    const char *t = getenv("TMPDIR");
    snprintf(k->tmp, sizeof(k->tmp), "%s/pk-%s-XXXXXX", t && *t ? t : "/tmp", prog);
    if (mkdtemp(k->tmp) == NULL) {
        pk_err("mkdtemp: %s", strerror(errno));
        return -1;
    }
    char json[256];
    snprintf(json, sizeof(json),
             "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{"
             "\"name\":\"%s\"}}",
             k->ns);
    if (pk_api_create(k, "/api/v1/namespaces", json, NULL) != 0)
        return -1;
    char out[2048];
    if (pk_sh(k, out, sizeof(out), "kubectl apply -n %s -f '%s' 2>&1", k->ns, k->rbac) != 0) {
        pk_err("kubectl apply -f %s: %s", k->rbac, out);
        return -1;
    }
    return 0;
}

void pk_fini(pk_t *k)
{
    if (k->pods == NULL)
        return;
    for (int i = 0; i < k->npods; i++) {
        pk_pod_t *p = &k->pods[i];
        if (p->demo > 0)
            pk_stop(p->demo, SIGKILL, 2000);
        if (p->sidecar > 0)
            pk_stop(p->sidecar, SIGKILL, 2000);
        p->demo = p->sidecar = 0;
    }
    for (int i = 0; i < k->noctets; i++)
        cleanup_octet(k, k->octet + i);
    if (k->ns[0])
        pk_sh(k, NULL, 0, "kubectl delete namespace %s --wait=false >/dev/null 2>&1", k->ns);
    if (k->tmp[0] && getenv("KCCL_PODKIT_KEEP") == NULL)
        pk_sh(k, NULL, 0, "rm -rf '%s'", k->tmp);
    else if (k->tmp[0])
        fprintf(stderr, "podkit: KCCL_PODKIT_KEEP: the pods' files stay in %s\n", k->tmp);
    for (int i = 0; i < 8; i++)
        if (k->lock_fds[i] >= 0)
            close(k->lock_fds[i]);
    if (k->admin)
        kccl_kube_client_destroy(k->admin);
    free(k->pods);
    k->pods = NULL;
    k->admin = NULL;
}

/* ------------------------------------------------------------------ secrets and pods */

static int write_file(const char *path, const void *data, size_t len, int mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
        pk_err("write %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    fchmod(fd, (mode_t)mode);
    return close(fd);
}

static int mkdirs(const char *base, const char *sub)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/%s", base, sub);
    return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

int pk_secret_create(pk_t *k, const char *name)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char key[33] = {0};
    char enc[64], json[512], path[320];
    (void)!getrandom(key, 32, 0);
    size_t n = 0;
    for (int i = 0; i < 33; i += 3) { /* 32 bytes + one zero pad byte: 44 chars, fix the tail */
        unsigned v = (unsigned)key[i] << 16 | (unsigned)key[i + 1] << 8 | key[i + 2];
        for (int j = 3; j >= 0; j--)
            enc[n + (size_t)(3 - j)] = b64[(v >> (6 * j)) & 63];
        n += 4;
    }
    enc[43] = '=';
    enc[44] = '\0';
    snprintf(json, sizeof(json),
             "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"%s\"},"
             "\"type\":\"Opaque\",\"data\":{\"secret\":\"%s\"}}",
             name, enc);
    kccl_kube_path(path, sizeof(path), "v1", k->ns, "secrets", NULL, NULL);
    explicit_bzero(key, sizeof(key));
    int rc = pk_api_create(k, path, json, NULL);
    explicit_bzero(json, sizeof(json));
    return rc;
}

static const char *pod_json_fmt =
    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\","
    "\"metadata\":{\"name\":\"%s\",\"annotations\":%s,\"labels\":%s},"
    "\"spec\":{\"serviceAccountName\":\"" PK_SA "\",\"restartPolicy\":\"Never\","
    "\"initContainers\":[{\"name\":\"kccl-sidecar\",\"image\":\"kccl/sidecar:dev\","
    "\"restartPolicy\":\"Always\",\"env\":["
    "{\"name\":\"POD_NAME\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"metadata.name\"}}},"
    "{\"name\":\"POD_NAMESPACE\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":"
    "\"metadata.namespace\"}}},"
    "{\"name\":\"POD_UID\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"metadata.uid\"}}},"
    "{\"name\":\"POD_IP\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"status.podIP\"}}},"
    "{\"name\":\"NODE_NAME\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"spec.nodeName\"}}},"
    "{\"name\":\"KCCL_BOOTSTRAP_FILE\",\"value\":\"/var/run/kccl/bootstrap\"},"
    "{\"name\":\"KCCL_GROUP_SECRET_FILE\",\"value\":\"/var/run/kccl-secret/secret\"}],"
    "\"readinessProbe\":{\"exec\":{\"command\":[\"kccl-sidecar\",\"probe\"]},"
    "\"periodSeconds\":1},"
    "\"volumeMounts\":[{\"name\":\"kccl\",\"mountPath\":\"/var/run/kccl\"}]}],"
    "\"containers\":[{\"name\":\"app\",\"image\":\"kccl/demo:dev\",\"command\":[\"kccl-demo\"],"
    "\"env\":[{\"name\":\"KCCL_BOOTSTRAP_FILE\",\"value\":\"/var/run/kccl/bootstrap\"}],"
    "\"volumeMounts\":[{\"name\":\"kccl\",\"mountPath\":\"/var/run/kccl\"}%s]}],"
    "\"volumes\":[{\"name\":\"kccl\",\"emptyDir\":{}}%s]}}";

pk_pod_t *pk_pod_create(pk_t *k, const char *name, const char *annotations_json,
                        const char *labels_json, const char *secret, const char *node)
{
    char json[8192], mount[160] = "", vol[160] = "", path[320];
    cJSON *out = NULL;
    if (k->pods == NULL || k->npods >= k->noctets * PK_PODS_PER_OCTET) {
        pk_err("too many pods");
        return NULL;
    }
    if (secret) {
        snprintf(mount, sizeof(mount),
                 ",{\"name\":\"group-secret\",\"mountPath\":\"/var/run/kccl-secret\","
                 "\"readOnly\":true}");
        snprintf(vol, sizeof(vol),
                 ",{\"name\":\"group-secret\",\"secret\":{\"secretName\":\"%s\"}}", secret);
    }
    snprintf(json, sizeof(json), pod_json_fmt, name, annotations_json ? annotations_json : "{}",
             labels_json ? labels_json : "{}", mount, vol);
    kccl_kube_path(path, sizeof(path), "v1", k->ns, "pods", NULL, NULL);
    if (pk_api_create(k, path, json, &out) != 0)
        return NULL;
    pk_pod_t *p = &k->pods[k->npods];
    memset(p, 0, sizeof(*p));
    p->index = k->npods++;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(out, "metadata");
    const cJSON *uid = cJSON_GetObjectItemCaseSensitive(meta, "uid");
    snprintf(p->uid, sizeof(p->uid), "%s", cJSON_IsString(uid) ? uid->valuestring : "");
    cJSON_Delete(out);
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(p->node, sizeof(p->node), "%s", node ? node : "");
    int oct = k->octet + p->index / PK_PODS_PER_OCTET;
    const char *dot = strchr(k->bridge_ip, '.');
    dot = dot ? strchr(dot + 1, '.') : NULL;
    snprintf(p->ip, sizeof(p->ip), "%.*s.%d.%d", dot ? (int)(dot - k->bridge_ip) : 7, k->bridge_ip,
             oct, 1 + p->index % PK_PODS_PER_OCTET);
    snprintf(p->netns, sizeof(p->netns), "%ssc%d-%d", k->netns_prefix, k->octet, p->index);
    snprintf(p->veth, sizeof(p->veth), "kcs%d-%d", k->octet, p->index);
    snprintf(p->dir, sizeof(p->dir), "%s/%s.%d", k->tmp, name, p->index);
    snprintf(p->handoff, sizeof(p->handoff), "%s/kccl/bootstrap", p->dir);
    if (mkdir(p->dir, 0755) != 0 || mkdirs(p->dir, "sa") || mkdirs(p->dir, "kccl") ||
        mkdirs(p->dir, "secret") || mkdirs(p->dir, "podinfo")) {
        pk_err("mkdir %s: %s", p->dir, strerror(errno));
        return NULL;
    }
    return p;
}

static void bridge_mac(const pk_t *k, char *mac, size_t len)
{
    char path[128];
    snprintf(path, sizeof(path), "/sys/class/net/%s/address", k->bridge);
    FILE *f = fopen(path, "r");
    mac[0] = '\0';
    if (f != NULL) {
        if (fgets(mac, (int)len, f) == NULL)
            mac[0] = '\0';
        fclose(f);
    }
}

/*
 * The bridge cp.sh makes has no MAC of its own (addr_assign_type random), so Linux gives it the
 * lowest MAC of its ports: a veth joining or leaving can change the MAC behind the apiserver's
 * IP, and pods that cached the old one lose the apiserver until their ARP entry expires (tens
 * of seconds). Host ends here get the highest locally administered MACs (fe:ff:...), so they
 * rarely become the lowest; when the bridge's MAC changes anyway, this program's pods forget
 * the stale entry at once.
 */
int pk_pod_net(pk_t *k, pk_pod_t *p)
{
    char out[2048], before[32], after[32];
    bridge_mac(k, before, sizeof(before));
    int rc = pk_sh(k, out, sizeof(out),
                   "set -e; ip netns add %s; ip link add %s address fe:ff:%02x:%02x:%02x:01 type "
                   "veth peer name eth0 netns %s; ip link set %s master %s up; "
                   "ip -n %s addr add %s/16 dev eth0; ip -n %s link set eth0 up; "
                   "ip -n %s link set lo up 2>&1",
                   p->netns, p->veth, k->octet & 0xff, (p->index >> 8) & 0xff, p->index & 0xff,
                   p->netns, p->veth, k->bridge, p->netns, p->ip, p->netns, p->netns);
    if (rc != 0) {
        pk_err("network of pod %s: %s", p->name, out);
        return -1;
    }
    p->net_up = 1;
    bridge_mac(k, after, sizeof(after));
    if (strcmp(before, after) != 0)
        for (int i = 0; i < k->npods; i++)
            if (k->pods[i].net_up && &k->pods[i] != p)
                pk_sh(k, NULL, 0, "ip -n %s neigh flush dev eth0 2>/dev/null", k->pods[i].netns);
    return 0;
}

int pk_pod_token(pk_t *k, pk_pod_t *p)
{
    char json[512], path[320], file[700];
    cJSON *out = NULL;
    snprintf(json, sizeof(json),
             "{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenRequest\",\"spec\":{"
             "\"expirationSeconds\":3600,\"boundObjectRef\":{\"apiVersion\":\"v1\",\"kind\":"
             "\"Pod\",\"name\":\"%s\",\"uid\":\"%s\"}}}",
             p->name, p->uid);
    kccl_kube_path(path, sizeof(path), "v1", k->ns, "serviceaccounts", PK_SA, "token");
    if (pk_api_create(k, path, json, &out) != 0)
        return -1;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(out, "status");
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(st, "token");
    int rc = -1;
    snprintf(file, sizeof(file), "%s/sa/token", p->dir);
    if (cJSON_IsString(tok))
        rc = write_file(file, tok->valuestring, strlen(tok->valuestring), 0600);
    cJSON_Delete(out);
    snprintf(file, sizeof(file), "%s/sa/namespace", p->dir);
    if (rc == 0)
        rc = write_file(file, k->ns, strlen(k->ns), 0644);
    if (rc == 0)
        rc = pk_sh(k, NULL, 0, "cp '%s' '%s/sa/ca.crt'", k->ca, p->dir) == 0 ? 0 : -1;
    return rc;
}

int pk_pod_mount_secret(pk_t *k, pk_pod_t *p, const char *secret)
{
    char path[320], file[700];
    kccl_kube_result_t res;
    cJSON *obj = NULL;
    unsigned char *key = NULL;
    size_t keylen = 0;
    kccl_kube_path(path, sizeof(path), "v1", k->ns, "secrets", secret, NULL);
    if (kccl_kube_get(k->admin, path, NULL, &obj, &res) != KCCL_OK) {
        pk_err("GET %s: %s", path, res.message);
        return -1;
    }
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(obj, "data");
    const cJSON *b64 = cJSON_GetObjectItemCaseSensitive(data, "secret");
    int rc = -1;
    if (cJSON_IsString(b64) &&
        kccl_kube_base64_decode(b64->valuestring, strlen(b64->valuestring), &key, &keylen) == 0) {
        snprintf(file, sizeof(file), "%s/secret/secret", p->dir);
        rc = write_file(file, key, keylen, 0400);
        if (rc == 0)
            snprintf(p->secret_file, sizeof(p->secret_file), "%s", file);
        kccl_kube_free_secret_n(key, keylen);
    }
    cJSON_Delete(obj);
    return rc;
}

int pk_pod_running(pk_t *k, pk_pod_t *p)
{
    char path[400], patch[512], now[32];
    kccl_kube_result_t res;
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
    kccl_kube_path(path, sizeof(path), "v1", k->ns, "pods", p->name, "status");
    snprintf(patch, sizeof(patch),
             "{\"status\":{\"phase\":\"Running\",\"podIP\":\"%s\",\"podIPs\":[{\"ip\":\"%s\"}],"
             "\"startTime\":\"%s\"}}",
             p->ip, p->ip, now);
    if (kccl_kube_patch(k->admin, path, KCCL_KUBE_PATCH_MERGE, patch, NULL, NULL, &res) !=
        KCCL_OK) {
        pk_err("PATCH %s: %s", path, res.message);
        return -1;
    }
    return 0;
}

/* Go's %q, enough for tests: \" \\ \n \t, other control bytes as \xHH, the rest raw. */
static void go_quote(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(f, "\\%c", *c);
        else if (*c == '\n')
            fputs("\\n", f);
        else if (*c == '\t')
            fputs("\\t", f);
        else if (*c < 0x20 || *c == 0x7f)
            fprintf(f, "\\x%02x", *c);
        else
            fputc(*c, f);
    }
    fputc('"', f);
}

static int write_map(const char *path, const cJSON *map)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    const cJSON *it;
    int first = 1;
    cJSON_ArrayForEach(it, map)
    { /* the apiserver returns keys sorted, as the kubelet writes them */
        if (!first)
            fputc('\n', f);
        first = 0;
        fprintf(f, "%s=", it->string);
        go_quote(f, cJSON_IsString(it) ? it->valuestring : "");
    }
    return fclose(f);
}

int pk_pod_podinfo(pk_t *k, pk_pod_t *p)
{
    char file[700];
    cJSON *pod = pk_pod_get(k, p);
    if (pod == NULL)
        return -1;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
    snprintf(file, sizeof(file), "%s/podinfo/name", p->dir);
    int rc = write_file(file, p->name, strlen(p->name), 0644);
    snprintf(file, sizeof(file), "%s/podinfo/namespace", p->dir);
    rc |= write_file(file, k->ns, strlen(k->ns), 0644);
    snprintf(file, sizeof(file), "%s/podinfo/uid", p->dir);
    rc |= write_file(file, p->uid, strlen(p->uid), 0644);
    snprintf(file, sizeof(file), "%s/podinfo/annotations", p->dir);
    rc |= write_map(file, cJSON_GetObjectItemCaseSensitive(meta, "annotations"));
    snprintf(file, sizeof(file), "%s/podinfo/labels", p->dir);
    rc |= write_map(file, cJSON_GetObjectItemCaseSensitive(meta, "labels"));
    cJSON_Delete(pod);
    return rc ? -1 : 0;
}

int pk_pod_ready_files(pk_t *k, pk_pod_t *p, const char *secret)
{
    if (!p->net_up && pk_pod_net(k, p) != 0)
        return -1;
    if (pk_pod_token(k, p) != 0)
        return -1;
    return secret ? pk_pod_mount_secret(k, p, secret) : 0;
}

cJSON *pk_pod_get(pk_t *k, const pk_pod_t *p)
{
    char path[400];
    kccl_kube_result_t res;
    cJSON *pod = NULL;
    kccl_kube_path(path, sizeof(path), "v1", k->ns, "pods", p->name, NULL);
    if (kccl_kube_get(k->admin, path, NULL, &pod, &res) != KCCL_OK) {
        pk_err("GET %s: %s", path, res.message);
        return NULL;
    }
    return pod;
}

int pk_annotate(pk_t *k, const pk_pod_t *p, const char *annotations_json)
{
    char path[400], patch[4096];
    kccl_kube_result_t res;
    kccl_kube_path(path, sizeof(path), "v1", k->ns, "pods", p->name, NULL);
    snprintf(patch, sizeof(patch), "{\"metadata\":{\"annotations\":%s}}", annotations_json);
    if (kccl_kube_patch(k->admin, path, KCCL_KUBE_PATCH_MERGE, patch, NULL, NULL, &res) !=
        KCCL_OK) {
        pk_err("PATCH %s: %s", path, res.message);
        return -1;
    }
    return 0;
}

int pk_pod_delete(pk_t *k, pk_pod_t *p)
{
    char path[400];
    kccl_kube_result_t res;
    kccl_kube_path(path, sizeof(path), "v1", k->ns, "pods", p->name, NULL);
    /* no kubelet: a graceful delete would wait forever for one; delete at once */
    if (kccl_kube_delete(k->admin, path, NULL, NULL, &res) != KCCL_OK) {
        pk_err("DELETE %s: %s", path, res.message);
        return -1;
    }
    return 0;
}
