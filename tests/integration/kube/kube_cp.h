/*
 * kube_cp.h - helpers for the kube client's tests against the REAL local
 * control plane (e2e/controlplane/cp.sh): skip cleanly when it is not up,
 * read its settings from `cp.sh env`, run kubectl from its bin directory
 * (the independent oracle: setup and checks never go through the code under
 * test), make a private namespace per test program, write kubeconfigs.
 *
 * A test program calls kcp_init() first: it exits with KCP_SKIP (77, CTest's
 * SKIP_RETURN_CODE) when `cp.sh status` says the control plane is not up.
 */
#ifndef KCCL_KUBE_CP_H
#define KCCL_KUBE_CP_H

#include <stdarg.h>
#include <sys/wait.h>
#include <time.h>

#include "core/error.h"
#include "kccl/kube.h"
#include "kccl_test.h"
#include "kube_config.h"
#include "kube_util.h"

#ifndef KCCL_SOURCE_DIR
#error "KCCL_SOURCE_DIR must be defined (the repository root)"
#endif

#define KCP_SKIP   77
#define KCP_CP_SH  KCCL_SOURCE_DIR "/e2e/controlplane/cp.sh"
#define KCP_CTL_SH KCCL_SOURCE_DIR "/tests/integration/kube/apiserver_ctl.sh"

typedef struct {
    char kubeconfig[512]; /* admin: client certificate, CA data */
    char dir[512];        /* KCCL_CP_DIR */
    char apiserver[256];  /* https://10.244.0.1:6443 */
    char ca[512];         /* CA file */
    char bin[512];        /* kubectl etc. */
    char version[64];
    char bridge_ip[64];
    char port[16];
    char ns[64];   /* this program's namespace */
    char tmp[256]; /* this program's temporary directory */
} kcp_t;

static kcp_t kcp;

/* Runs a shell command (PATH and KUBECONFIG of the control plane); returns the exit status,
 * stdout in out (may be NULL). */
static inline int kcp_sh(char *out, size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline int kcp_sh(char *out, size_t outlen, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(cmd, sizeof(cmd), "export PATH='%s':\"$PATH\" KUBECONFIG='%s'; ", kcp.bin,
                     kcp.kubeconfig);
    vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r"); // NOLINT(cert-env33-c): tests drive kubectl through the shell
    if (p == NULL)
        fail_msg("popen(%s): %s", cmd, strerror(errno));
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
        kccl_kube_rtrim(out, len);
    }
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* Runs a command that must succeed. */
#define KCP_MUST(...)                                                                              \
    do {                                                                                           \
        char kcp_out_[8192];                                                                       \
        int kcp_rc_ = kcp_sh(kcp_out_, sizeof(kcp_out_), __VA_ARGS__);                             \
        if (kcp_rc_ != 0)                                                                          \
            fail_msg("command failed (%d): %s", kcp_rc_, kcp_out_);                                \
    } while (0)

static inline void kcp_set(char *dst, size_t cap, const char *v)
{
    if (v[0] == '\'' && v[strlen(v) - 1] == '\'') /* %q may single-quote */
        snprintf(dst, cap, "%.*s", (int)strlen(v) - 2, v + 1);
    else
        snprintf(dst, cap, "%s", v);
}

/* Skips the whole program unless the control plane is up; loads its settings. */
static inline void kcp_init(const char *prog)
{
    // NOLINTNEXTLINE(cert-env33-c): cp.sh is a shell script
    if (system(KCP_CP_SH " status >/dev/null 2>&1") != 0) {
        printf("SKIP: the control plane is not up (run %s up)\n", KCP_CP_SH);
        exit(KCP_SKIP);
    }
    FILE *p = popen(KCP_CP_SH " env", "r"); // NOLINT(cert-env33-c): cp.sh is a shell script
    char line[1024];
    while (p && fgets(line, sizeof(line), p)) {
        char *eq = strchr(line, '=');
        if (strncmp(line, "export ", 7) != 0 || eq == NULL)
            continue;
        *eq = '\0';
        kccl_kube_rtrim(eq + 1, strlen(eq + 1));
        const char *k = line + 7, *v = eq + 1;
        if (!strcmp(k, "KUBECONFIG"))
            kcp_set(kcp.kubeconfig, sizeof(kcp.kubeconfig), v);
        else if (!strcmp(k, "KCCL_CP_DIR"))
            kcp_set(kcp.dir, sizeof(kcp.dir), v);
        else if (!strcmp(k, "KCCL_CP_APISERVER"))
            kcp_set(kcp.apiserver, sizeof(kcp.apiserver), v);
        else if (!strcmp(k, "KCCL_CP_CA"))
            kcp_set(kcp.ca, sizeof(kcp.ca), v);
        else if (!strcmp(k, "KCCL_CP_BIN"))
            kcp_set(kcp.bin, sizeof(kcp.bin), v);
        else if (!strcmp(k, "KCCL_CP_K8S_VERSION"))
            kcp_set(kcp.version, sizeof(kcp.version), v);
        else if (!strcmp(k, "KCCL_CP_BRIDGE_IP"))
            kcp_set(kcp.bridge_ip, sizeof(kcp.bridge_ip), v);
    }
    if (p == NULL || pclose(p) != 0 || !kcp.kubeconfig[0] || !kcp.bin[0] || !kcp.apiserver[0]) {
        printf("SKIP: cannot read `%s env`\n", KCP_CP_SH);
        exit(KCP_SKIP);
    }
    const char *colon = strrchr(kcp.apiserver, ':');
    snprintf(kcp.port, sizeof(kcp.port), "%s", colon ? colon + 1 : "443");
    snprintf(kcp.ns, sizeof(kcp.ns), "kccl-kube-%s-%d-%04x", prog, (int)getpid(),
             (unsigned)(kccl_kube_now_ms() & 0xffff));
    const char *t = getenv("TMPDIR");
    snprintf(kcp.tmp, sizeof(kcp.tmp), "%s/kcp-%s-XXXXXX", t && *t ? t : "/tmp", prog);
    if (mkdtemp(kcp.tmp) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    if (kcp_sh(NULL, 0, "kubectl create namespace %s >/dev/null", kcp.ns) != 0) {
        fprintf(stderr, "cannot create namespace %s\n", kcp.ns);
        exit(1);
    }
    /* the default ServiceAccount appears asynchronously; wait, pods need it */
    kcp_sh(NULL, 0,
           "for i in $(seq 100); do kubectl -n %s get sa default >/dev/null 2>&1 && "
           "break; sleep 0.1; done",
           kcp.ns);
}

static inline void kcp_fini(void)
{
    kcp_sh(NULL, 0, "kubectl delete namespace %s --wait=false >/dev/null 2>&1", kcp.ns);
    kcp_sh(NULL, 0, "rm -rf '%s'", kcp.tmp);
}

/* A path under this program's temporary directory. */
static inline const char *kcp_path(const char *name)
{
    static char buf[4][600];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", kcp.tmp, name);
    return buf[i];
}

static inline void kcp_write(const char *path, const char *text)
{
    kccl_test_write_file(path, text, strlen(text), 0600);
}

/* A ServiceAccount with a Role like the sidecar's (pods: get, list, watch, patch, create,
 * delete in the own namespace) and a token for it (`kubectl create token`). */
static inline void kcp_service_account(const char *sa, const char *bound_pod, char *token,
                                       size_t cap)
{
    kcp_sh(NULL, 0, "kubectl -n %s create serviceaccount %s >/dev/null 2>&1", kcp.ns, sa);
    kcp_sh(NULL, 0,
           "kubectl -n %s create role %s-pods --verb=get,list,watch,patch,create,delete "
           "--resource=pods >/dev/null 2>&1 && kubectl -n %s create rolebinding %s-pods "
           "--role=%s-pods --serviceaccount=%s:%s >/dev/null 2>&1",
           kcp.ns, sa, kcp.ns, sa, sa, kcp.ns, sa);
    char bound[256] = "";
    if (bound_pod)
        snprintf(bound, sizeof(bound), "--bound-object-kind Pod --bound-object-name %s", bound_pod);
    int rc =
        kcp_sh(token, cap, "kubectl -n %s create token %s --duration 1h %s", kcp.ns, sa, bound);
    if (rc != 0 || token[0] == '\0')
        fail_msg("kubectl create token failed: %s", token);
}

/* Writes a kubeconfig for the main apiserver (or `server`) with the given user block. */
static inline const char *kcp_kubeconfig(const char *name, const char *server, const char *ca_line,
                                         const char *user_block)
{
    char text[16384];
    snprintf(text, sizeof(text),
             "apiVersion: v1\nkind: Config\n"
             "clusters:\n- name: cp\n  cluster:\n    server: %s\n    %s\n"
             "users:\n- name: u\n  user:\n%s\n"
             "contexts:\n- name: c\n  context: {cluster: cp, user: u, namespace: %s}\n"
             "current-context: c\n",
             server ? server : kcp.apiserver, ca_line, user_block, kcp.ns);
    const char *path = kcp_path(name);
    kcp_write(path, text);
    return path;
}

/* The admin client (client certificate from cp.sh's admin.kubeconfig). */
static inline kccl_kube_client_t kcp_admin(void)
{
    kccl_kube_config_t cfg = NULL;
    kccl_kube_client_t c = NULL;
    assert_int_equal(kccl_kube_config_load_kubeconfig(kcp.kubeconfig, NULL, &cfg), KCCL_OK);
    assert_int_equal(kccl_kube_client_create(cfg, &c), KCCL_OK);
    return c;
}

static inline kccl_kube_client_t kcp_client(const char *kubeconfig)
{
    kccl_kube_config_t cfg = NULL;
    kccl_kube_client_t c = NULL;
    if (kccl_kube_config_load_kubeconfig(kubeconfig, NULL, &cfg) != KCCL_OK)
        fail_msg("loading %s: %s", kubeconfig, kccl_last_error());
    assert_int_equal(kccl_kube_client_create(cfg, &c), KCCL_OK);
    return c;
}

static inline const char *kcp_str(const cJSON *obj, const char *a, const char *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(obj, a);
    if (b)
        x = cJSON_GetObjectItemCaseSensitive(x, b);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

/* A pod that stays Pending (no kubelet): one container, a label. */
static inline cJSON *kcp_pod(const char *name, const char *group, const char *sa)
{
    char text[1024];
    snprintf(text, sizeof(text),
             "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\","
             "\"labels\":{\"kccl.io/group\":\"%s\"}},\"spec\":{%s%s%s\"containers\":[{"
             "\"name\":\"main\",\"image\":\"kccl/test:none\"}]}}",
             name, group, sa ? "\"serviceAccountName\":\"" : "", sa ? sa : "", sa ? "\"," : "");
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    return j;
}

static inline void kcp_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

#endif
