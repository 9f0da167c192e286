/*
 * agent_proc.c - containers as processes, the container runtime's part.
 *
 * Images: e2e/local/images.map maps an image name (tag and digest ignored) to a
 * local binary (the image's entrypoint) or a directory (ending in '/': the
 * image's /usr/local/bin). ${BUILD} in the map is the agent's --build-dir. A
 * container's PATH starts with that directory, so `kccl-sidecar probe` or
 * `/usr/local/bin/kccl-demo` find the image's binaries.
 *
 * Each container is a child process that
 *   - gets SIGKILL when the agent dies (PR_SET_PDEATHSIG) and leads its own
 *     process group (the agent signals the group: helpers die with it);
 *   - joins the pod's network namespace (unless hostNetwork);
 *   - gets its own UTS namespace (hostname = the pod's name);
 *   - unshares its mount namespace and bind-mounts every volumeMount's volume
 *     directory at the exact mountPath (readOnly remounted read-only), so paths
 *     inside the container are exactly those of the pod spec; mount points
 *     missing on the host are created and kept (see mountpoint());
 *   - gets the env of the spec ($(VAR) expanded, valueFrom fieldRef,
 *     secretKeyRef, configMapKeyRef; envFrom), plus HOSTNAME,
 *     KUBERNETES_SERVICE_HOST/PORT (the apiserver on the bridge) and
 *     KCCL_KUBE_SA_DIR (the standard service-account path);
 *   - writes stdout and stderr to <state>/pods/<uid>/logs/<container>.log.
 * Probes run in the container's own namespaces (setns into /proc/<pid>/ns).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "kube_util.h"

#define AG_MAX_ENV 512

/* ------------------------------------------------------------------ images */

int ag_images_load(ag_t *a)
{
    FILE *f = fopen(a->images_file, "r");
    char line[1024];
    if (f == NULL) {
        ag_error("cannot open the image map %s: %s", a->images_file, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f) && a->nimages < AG_MAX_IMAGES) {
        char img[256], path[512], *b;
        if (line[0] == '#' || sscanf(line, "%255s %511s", img, path) != 2)
            continue;
        ag_image_t *m = &a->images[a->nimages++];
        snprintf(m->image, sizeof(m->image), "%s", img);
        if ((b = strstr(path, "${BUILD}")) != NULL)
            snprintf(m->path, sizeof(m->path), "%.*s%s%s", (int)(b - path), path, a->build_dir,
                     b + 8);
        else
            snprintf(m->path, sizeof(m->path), "%s", path);
    }
    fclose(f);
    return 0;
}

const ag_image_t *ag_image_find(const ag_t *a, const char *image)
{
    char name[256];
    snprintf(name, sizeof(name), "%s", image);
    char *at = strchr(name, '@');
    if (at)
        *at = '\0';
    char *slash = strrchr(name, '/'), *colon = strrchr(name, ':');
    if (colon && (slash == NULL || colon > slash))
        *colon = '\0';
    for (int i = 0; i < a->nimages; i++)
        if (strcmp(a->images[i].image, name) == 0)
            return &a->images[i];
    return NULL;
}

/* ------------------------------------------------------------------ environment */

typedef struct {
    char *v[AG_MAX_ENV + 1];
    int n;
} env_t;

static const char *env_get(const env_t *e, const char *key)
{
    size_t k = strlen(key);
    for (int i = 0; i < e->n; i++)
        if (strncmp(e->v[i], key, k) == 0 && e->v[i][k] == '=')
            return e->v[i] + k + 1;
    return NULL;
}

static void env_set(env_t *e, const char *key, const char *val)
{
    size_t k = strlen(key), n = k + strlen(val) + 2;
    char *s = malloc(n);
    if (s == NULL)
        return;
    snprintf(s, n, "%s=%s", key, val);
    for (int i = 0; i < e->n; i++)
        if (strncmp(e->v[i], key, k) == 0 && e->v[i][k] == '=') {
            free(e->v[i]);
            e->v[i] = s;
            return;
        }
    if (e->n >= AG_MAX_ENV) {
        free(s);
        return;
    }
    e->v[e->n++] = s;
    e->v[e->n] = NULL;
}

void ag_env_free(char **envp)
{
    for (char **p = envp; p && *p; p++)
        free(*p);
    free(envp);
}

/* Kubernetes' $(VAR) expansion: defined variables only; $$ escapes. */
static void expand(const env_t *e, const char *in, char *out, size_t len)
{
    size_t n = 0;
    while (*in && n + 1 < len) {
        if (in[0] == '$' && in[1] == '$') {
            out[n++] = '$';
            in += 2;
            continue;
        }
        const char *end = in[0] == '$' && in[1] == '(' ? strchr(in + 2, ')') : NULL;
        if (end) {
            char key[256];
            snprintf(key, sizeof(key), "%.*s", (int)(end - in - 2), in + 2);
            const char *v = env_get(e, key);
            if (v) {
                n += (size_t)snprintf(out + n, len - n, "%s", v);
                in = end + 1;
                continue;
            }
        }
        out[n++] = *in++;
    }
    out[n < len ? n : len - 1] = '\0';
}

/* A key of a Secret or ConfigMap (base64-decoded for Secrets); caller frees. */
static char *ref_value(ag_t *a, const ag_pod_t *p, const char *kind, const cJSON *ref)
{
    char path[512];
    cJSON *obj = NULL;
    kccl_kube_result_t res;
    kccl_kube_opts_t o = {.timeout_ms = 5000};
    kccl_kube_path(path, sizeof(path), "v1", p->ns, kind, ag_json_str(ref, "name"), NULL);
    if (kccl_kube_get(a->api, path, &o, &obj, &res) != KCCL_OK)
        return NULL;
    const char *v =
        ag_json_str(cJSON_GetObjectItemCaseSensitive(obj, "data"), ag_json_str(ref, "key"));
    char *out = NULL;
    if (!strcmp(kind, "secrets")) {
        unsigned char *b = NULL;
        size_t n = 0;
        if (kccl_kube_base64_decode(v, strlen(v), &b, &n) == 0) {
            out = calloc(1, n + 1);
            if (out)
                memcpy(out, b, n);
            kccl_kube_free_secret_n(b, n);
        }
    } else {
        out = strdup(v);
    }
    cJSON_Delete(obj);
    return out;
}

static void env_from(ag_t *a, const ag_pod_t *p, env_t *e, const cJSON *c)
{
    const cJSON *src;
    cJSON_ArrayForEach(src, cJSON_GetObjectItemCaseSensitive(c, "envFrom"))
    {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(src, "secretRef");
        const char *kind = r ? "secrets" : "configmaps";
        if (r == NULL)
            r = cJSON_GetObjectItemCaseSensitive(src, "configMapRef");
        char path[512];
        cJSON *obj = NULL;
        kccl_kube_result_t res;
        kccl_kube_path(path, sizeof(path), "v1", p->ns, kind, ag_json_str(r, "name"), NULL);
        if (r == NULL || kccl_kube_get(a->api, path, NULL, &obj, &res) != KCCL_OK)
            continue;
        const cJSON *kv;
        cJSON_ArrayForEach(kv, cJSON_GetObjectItemCaseSensitive(obj, "data"))
        {
            char key[256];
            snprintf(key, sizeof(key), "%s%s", ag_json_str(src, "prefix"), kv->string);
            if (!strcmp(kind, "secrets")) {
                unsigned char *b = NULL;
                size_t n = 0;
                const char *v = cJSON_IsString(kv) ? kv->valuestring : "";
                if (kccl_kube_base64_decode(v, strlen(v), &b, &n) == 0) {
                    char *s = calloc(1, n + 1);
                    if (s) {
                        memcpy(s, b, n);
                        env_set(e, key, s);
                        free(s);
                    }
                    kccl_kube_free_secret_n(b, n);
                }
            } else {
                env_set(e, key, cJSON_IsString(kv) ? kv->valuestring : "");
            }
        }
        cJSON_Delete(obj);
    }
}

static char **build_env(ag_t *a, ag_pod_t *p, ag_ctr_t *c)
{
    env_t e = {{0}, 0};
    char buf[16384], path[1024];
    snprintf(path, sizeof(path), "%s%s/usr/local/bin:/usr/bin:/bin", c->bin_dir,
             c->bin_dir[0] ? ":" : "");
    env_set(&e, "PATH", path);
    env_set(&e, "HOSTNAME", p->name);
    env_set(&e, "KUBERNETES_SERVICE_HOST", a->api_host);
    env_set(&e, "KUBERNETES_SERVICE_PORT", a->api_port);
    snprintf(buf, sizeof(buf), "tcp://%s:%s", a->api_host, a->api_port);
    env_set(&e, "KUBERNETES_PORT", buf);
    env_set(&e, "KCCL_KUBE_SA_DIR", "/var/run/secrets/kubernetes.io/serviceaccount");
    env_from(a, p, &e, c->spec);
    const cJSON *v;
    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(c->spec, "env"))
    {
        const char *name = ag_json_str(v, "name");
        const cJSON *vf = cJSON_GetObjectItemCaseSensitive(v, "valueFrom");
        const cJSON *r;
        if (vf == NULL) {
            expand(&e, ag_json_str(v, "value"), buf, sizeof(buf));
            env_set(&e, name, buf);
        } else if ((r = cJSON_GetObjectItemCaseSensitive(vf, "fieldRef"))) {
            if (ag_field_value(p, ag_json_str(r, "fieldPath"), buf, sizeof(buf)))
                env_set(&e, name, buf);
        } else if ((r = cJSON_GetObjectItemCaseSensitive(vf, "secretKeyRef")) ||
                   (r = cJSON_GetObjectItemCaseSensitive(vf, "configMapKeyRef"))) {
            int sec = cJSON_GetObjectItemCaseSensitive(vf, "secretKeyRef") != NULL;
            char *s = ref_value(a, p, sec ? "secrets" : "configmaps", r);
            if (s) {
                env_set(&e, name, s);
                kccl_kube_free_secret(s);
            }
        } else if ((r = cJSON_GetObjectItemCaseSensitive(vf, "resourceFieldRef"))) {
            env_set(&e, name, "0"); /* no limits on this node */
        }
    }
    char **out = calloc((size_t)e.n + 1, sizeof(char *));
    if (out == NULL) {
        for (int i = 0; i < e.n; i++)
            free(e.v[i]);
        return NULL;
    }
    memcpy(out, e.v, (size_t)e.n * sizeof(char *));
    return out;
}

/* ------------------------------------------------------------------ argv */

static int resolve(const char *dir, const char *name, char *out, size_t len)
{
    const char *base = strrchr(name, '/');
    if (dir[0]) {
        snprintf(out, len, "%s/%s", dir, base ? base + 1 : name);
        if (access(out, X_OK) == 0)
            return 0;
    }
    if (base) {
        snprintf(out, len, "%s", name);
        return access(out, X_OK);
    }
    static const char *const sys[] = {"/usr/local/bin", "/usr/bin", "/bin"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(out, len, "%s/%s", sys[i], name);
        if (access(out, X_OK) == 0)
            return 0;
    }
    return -1;
}

/* argv from command/args (or the image's entrypoint); caller frees each and the array. */
static char **build_argv(const ag_image_t *img, const cJSON *cmd, const cJSON *args, char **envp,
                         char *bin, size_t binlen)
{
    env_t e = {{0}, 0};
    for (char **p = envp; p && *p && e.n < AG_MAX_ENV; p++)
        e.v[e.n++] = *p;
    int n = cJSON_GetArraySize(cmd) + cJSON_GetArraySize(args) + 2;
    char **argv = calloc((size_t)n, sizeof(char *));
    int i = 0;
    char buf[8192];
    if (argv == NULL)
        return NULL;
    if (cJSON_GetArraySize(cmd) == 0) {
        size_t l = strlen(img->path);
        if (l == 0 || img->path[l - 1] == '/')
            goto err;
        argv[i++] = strdup(img->path);
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, cmd)
    {
        expand(&e, cJSON_IsString(it) ? it->valuestring : "", buf, sizeof(buf));
        argv[i++] = strdup(buf);
    }
    cJSON_ArrayForEach(it, args)
    {
        expand(&e, cJSON_IsString(it) ? it->valuestring : "", buf, sizeof(buf));
        argv[i++] = strdup(buf);
    }
    char dir[512];
    snprintf(dir, sizeof(dir), "%s", img->path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    if (resolve(dir, argv[0], bin, binlen) == 0)
        return argv;
err:
    for (int j = 0; j < i; j++)
        free(argv[j]);
    free(argv);
    return NULL;
}

/* ------------------------------------------------------------------ mounts */

#define AG_MOUNTPOINT_MARK ".kccl-node-agent-mountpoint"

/*
 * Creates target (a dir, or a file when the source is one) on the host if missing. Mount points
 * are shared by every agent on the machine and are never removed: removing a directory that is
 * a mount point in a container's namespace detaches that mount (Linux >= 3.18), and the
 * container then writes into the host's directory. A non-empty marker file inside keeps
 * `find -empty -delete` clean-ups (of older agents) from removing it.
 */
static int mountpoint(ag_t *a, const char *target, int is_file)
{
    struct stat st;
    char path[1024];
    (void)a;
    if (stat(target, &st) != 0) {
        snprintf(path, sizeof(path), "%s", target);
        for (char *s = path + 1;; s++) {
            if (*s != '/' && *s != '\0')
                continue;
            char saved = *s;
            *s = '\0';
            if (stat(path, &st) != 0) {
                int rc = saved == '\0' && is_file
                             ? (close(open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644)), 0)
                             : mkdir(path, 0755);
                if (rc != 0 && errno != EEXIST)
                    return -1;
            }
            *s = saved;
            if (saved == '\0')
                break;
        }
    }
    if (is_file)
        return 0;
    snprintf(path, sizeof(path), "%s/" AG_MOUNTPOINT_MARK, target);
    if (access(path, F_OK) != 0) {
        static const char mark[] = "a mount point of kccl-node-agent's containers: keep\n";
        ag_write_file_atomic(path, mark, sizeof(mark) - 1, 0644);
    }
    return 0;
}

typedef struct {
    char src[1024], dst[1024];
    int ro;
} mnt_t;

static int plan_mounts(ag_t *a, ag_pod_t *p, ag_ctr_t *c, mnt_t *m, int max)
{
    int n = 0;
    const cJSON *vm;
    cJSON_ArrayForEach(vm, cJSON_GetObjectItemCaseSensitive(c->spec, "volumeMounts"))
    {
        char vp[1024];
        if (n >= max || ag_vol_path(p, ag_json_str(vm, "name"), vp, sizeof(vp)) == NULL)
            return -1;
        const char *sub = ag_json_str(vm, "subPath");
        snprintf(m[n].src, sizeof(m[n].src), "%s%s%s", vp, *sub ? "/" : "", sub);
        snprintf(m[n].dst, sizeof(m[n].dst), "%s", ag_json_str(vm, "mountPath"));
        m[n].ro = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(vm, "readOnly"));
        struct stat st;
        if (*sub && stat(m[n].src, &st) != 0)
            ag_mkdirs(m[n].src, 0755);
        int is_file = stat(m[n].src, &st) == 0 && !S_ISDIR(st.st_mode);
        if (mountpoint(a, m[n].dst, is_file) != 0)
            return -1;
        n++;
    }
    return n;
}

/* In the child: the pod's netns, a private mount namespace with the volumes. */
static void child_enter(const ag_pod_t *p, const mnt_t *m, int nm)
{
    char nspath[256];
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int s = 1; s < 32; s++)
        if (s != SIGKILL && s != SIGSTOP)
            signal(s, SIG_DFL);
    if (!p->host_network) {
        snprintf(nspath, sizeof(nspath), "/var/run/netns/%s", p->netns);
        int fd = open(nspath, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
            fprintf(stderr, "kccl-node-agent: setns %s: %s\n", nspath, strerror(errno));
            _exit(126);
        }
        close(fd);
    }
    /* Own mount namespace (volumes) and UTS namespace (hostname = pod name, as in a pod). */
    if (unshare(CLONE_NEWNS | CLONE_NEWUTS) != 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        sethostname(p->name, strnlen(p->name, 63)) != 0) {
        fprintf(stderr, "kccl-node-agent: mount/UTS namespace: %s\n", strerror(errno));
        _exit(126);
    }
    /* Sources are opened before anything is mounted: a volume mounted at /tmp must not hide
     * the sources of the next ones (the agent's state directory may live under /tmp). */
    int fds[32];
    for (int i = 0; i < nm; i++)
        if ((fds[i] = open(m[i].src, O_PATH | O_CLOEXEC)) < 0) {
            fprintf(stderr, "kccl-node-agent: open %s: %s\n", m[i].src, strerror(errno));
            _exit(126);
        }
    for (int i = 0; i < nm; i++) {
        char src[64];
        snprintf(src, sizeof(src), "/proc/self/fd/%d", fds[i]);
        if (mount(src, m[i].dst, NULL, MS_BIND | MS_REC, NULL) != 0 ||
            (m[i].ro && mount(NULL, m[i].dst, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) != 0)) {
            fprintf(stderr, "kccl-node-agent: mount %s on %s: %s\n", m[i].src, m[i].dst,
                    strerror(errno));
            _exit(126);
        }
    }
}

pid_t ag_ctr_spawn(ag_t *a, ag_pod_t *p, ag_ctr_t *c)
{
    const ag_image_t *img = ag_image_find(a, c->image);
    mnt_t mnts[32];
    char bin[1024], log[1024], dir[512];
    if (img == NULL) {
        snprintf(c->message, sizeof(c->message), "image %s is not in %s", c->image, a->images_file);
        return -1;
    }
    snprintf(dir, sizeof(dir), "%s", img->path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    snprintf(c->bin_dir, sizeof(c->bin_dir), "%s", dir);
    ag_env_free(c->envp);
    c->envp = build_env(a, p, c);
    char **argv =
        build_argv(img, cJSON_GetObjectItemCaseSensitive(c->spec, "command"),
                   cJSON_GetObjectItemCaseSensitive(c->spec, "args"), c->envp, bin, sizeof(bin));
    int nm = plan_mounts(a, p, c, mnts, 32);
    if (argv == NULL || nm < 0 || c->envp == NULL) {
        snprintf(c->message, sizeof(c->message), "%s",
                 argv == NULL ? "no executable: set command, or map the image to its entrypoint"
                              : "a volumeMount names no volume of the pod");
        for (char **s = argv; s && *s; s++)
            free(*s);
        free(argv);
        return -1;
    }
    snprintf(log, sizeof(log), "%s/logs/%s.log", p->dir, c->name);
    int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    const char *wd = ag_json_str(c->spec, "workingDir");
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        child_enter(p, mnts, nm);
        if (getppid() != parent)
            _exit(125);
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        if (logfd >= 0) {
            dup2(logfd, 1);
            dup2(logfd, 2);
        }
        if (chdir(*wd ? wd : "/") != 0)
            _exit(126);
        execve(bin, argv, c->envp);
        int e = errno;
        fprintf(stderr, "kccl-node-agent: exec %s: %s%s\n", bin, strerror(e),
                e == ENOENT ? " (if the file exists on the host, a volume of the pod is mounted over "
                              "a directory on its path, e.g. an emptyDir at /tmp: keep the "
                              "image's files elsewhere)"
                            : "");
        _exit(127);
    }
    if (logfd >= 0)
        close(logfd);
    for (char **s = argv; *s; s++)
        free(*s);
    free(argv);
    if (pid < 0)
        snprintf(c->message, sizeof(c->message), "fork: %s", strerror(errno));
    return pid;
}

/* ------------------------------------------------------------------ probes */

static int probe_port(const ag_ctr_t *c, const cJSON *port)
{
    if (cJSON_IsNumber(port))
        return port->valueint;
    const cJSON *pt;
    cJSON_ArrayForEach(pt, cJSON_GetObjectItemCaseSensitive(c->spec, "ports"))
    {
        if (cJSON_IsString(port) && !strcmp(ag_json_str(pt, "name"), port->valuestring))
            return ag_json_int(pt, "containerPort", 0);
    }
    return cJSON_IsString(port) ? ag_atoi(port->valuestring, 0) : 0;
}

/* In the probe child: connect (and for httpGet, GET path); exit 0 on success. */
static void __attribute__((noreturn)) net_probe(const char *ip, int port, const char *path)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || inet_pton(AF_INET, ip, &sa.sin_addr) != 1 ||
        connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        _exit(1);
    if (path == NULL)
        _exit(0);
    char req[1024], resp[64] = "";
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: kube-probe/1.35\r\n"
                     "Connection: close\r\n\r\n",
                     *path ? path : "/", ip, port);
    if (write(fd, req, (size_t)n) != n || read(fd, resp, sizeof(resp) - 1) < 12)
        _exit(1);
    int code = ag_atoi(resp + 9, 0);
    _exit(code >= 200 && code < 400 ? 0 : 1);
}

pid_t ag_probe_spawn(ag_t *a, ag_pod_t *p, ag_ctr_t *c, const cJSON *probe)
{
    (void)a;
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(probe, "exec");
    const cJSON *hg = cJSON_GetObjectItemCaseSensitive(probe, "httpGet");
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(probe, "tcpSocket");
    char bin[1024], nsp[64];
    char **argv = NULL;
    if (ex) {
        ag_image_t img = {{0}, {0}};
        snprintf(img.path, sizeof(img.path), "%s/", c->bin_dir);
        argv = build_argv(&img, cJSON_GetObjectItemCaseSensitive(ex, "command"), NULL, c->envp, bin,
                          sizeof(bin));
        if (argv == NULL)
            return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        setpgid(0, 0);
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
        static const char *const kinds[] = {"net", "uts", "mnt"};
        for (int i = 0; i < 3; i++) {
            snprintf(nsp, sizeof(nsp), "/proc/%d/ns/%s", (int)c->pid, kinds[i]);
            int fd = open(nsp, O_RDONLY | O_CLOEXEC);
            if (fd < 0 || setns(fd, 0) != 0)
                _exit(126);
            close(fd);
        }
        if (ex) {
            execve(bin, argv, c->envp);
            _exit(127);
        }
        const cJSON *t = hg ? hg : ts;
        if (t == NULL)
            _exit(0); /* grpc: not supported here, counted as success */
        const char *host = ag_json_str(t, "host");
        net_probe(*host ? host : p->ip, probe_port(c, cJSON_GetObjectItemCaseSensitive(t, "port")),
                  hg ? ag_json_str(hg, "path") : NULL);
    }
    for (char **s = argv; s && *s; s++)
        free(*s);
    free(argv);
    return pid;
}
