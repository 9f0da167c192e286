/*
 * agent_main.c - kccl-node-agent's command line, the pod watch thread and the
 * main loop. See agent.h for the modules and e2e/local/README.md for what is
 * real and what is faked.
 *
 * The watch thread runs kccl_kube_watch() on pods with
 * fieldSelector=spec.nodeName=<node> (pods the real kube-scheduler bound here)
 * and queues copies of the objects; the main loop (every 20 ms) applies them,
 * reaps children, steps each pod and reports status, and renews the Lease.
 * SIGTERM/SIGINT end the loop: containers get SIGTERM, then SIGKILL after
 * --shutdown-grace, network namespaces and volumes are removed, the Node is
 * deleted (unless --keep-node) and the state directory too (unless --keep-state).
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

#ifndef KCCL_SOURCE_DIR
#define KCCL_SOURCE_DIR "."
#endif

typedef struct ev {
    struct ev *next;
    kccl_kube_event_type_t type;
    cJSON *obj;
} ev_t;

static struct {
    pthread_mutex_t mu;
    ev_t *head, *tail;
} queue = {PTHREAD_MUTEX_INITIALIZER, NULL, NULL};

static atomic_int *g_stop;
static int shutdown_grace_s = 5;

static void on_signal(int sig)
{
    (void)sig;
    if (g_stop)
        atomic_store(g_stop, 1);
}

static int on_watch(void *arg, const kccl_kube_event_t *ev)
{
    (void)arg;
    if (ev->type != KCCL_KUBE_EVENT_ADDED && ev->type != KCCL_KUBE_EVENT_MODIFIED &&
        ev->type != KCCL_KUBE_EVENT_DELETED)
        return 0;
    ev_t *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return 0;
    e->type = ev->type;
    e->obj = cJSON_Duplicate(ev->object, 1);
    pthread_mutex_lock(&queue.mu);
    if (queue.tail)
        queue.tail->next = e;
    else
        queue.head = e;
    queue.tail = e;
    pthread_mutex_unlock(&queue.mu);
    return 0;
}

static void *watch_main(void *arg)
{
    ag_t *a = arg;
    char sel[128];
    snprintf(sel, sizeof(sel), "spec.nodeName=%s", a->node);
    while (!atomic_load(&a->stop)) {
        kccl_kube_result_t res;
        kccl_kube_watch_opts_t o = {
            .path = "/api/v1/pods", .field_selector = sel, .stop = &a->stop};
        kccl_status_t st = kccl_kube_watch(a->api, &o, on_watch, a, &res);
        if (st != KCCL_OK && !atomic_load(&a->stop)) {
            ag_warn("pod watch ended: %s (%s); starting over in 1 s", kccl_status_str(st),
                    res.message);
            struct timespec ts = {1, 0};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

/* Pods this agent finished (deleted from the API): late watch events for them are ignored. */
static char gone[256][64];
static int gone_next;

static int was_gone(const char *uid)
{
    for (int i = 0; i < 256; i++)
        if (gone[i][0] && !strcmp(gone[i], uid))
            return 1;
    return 0;
}

static ag_pod_t *find_pod(ag_t *a, const char *uid)
{
    for (int i = 0; i < a->npods; i++)
        if (!strcmp(a->pods[i]->uid, uid))
            return a->pods[i];
    return NULL;
}

static void apply(ag_t *a, ev_t *e)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(e->obj, "metadata");
    ag_pod_t *p = find_pod(a, ag_json_str(meta, "uid"));
    if (e->type == KCCL_KUBE_EVENT_DELETED) {
        if (p)
            p->deleted = 1;
        return;
    }
    if (p) {
        ag_pod_update(a, p, e->obj);
        return;
    }
    if (was_gone(ag_json_str(meta, "uid")))
        return;
    if (a->npods >= AG_MAX_PODS || (p = ag_pod_new(a, e->obj)) == NULL) {
        ag_error("cannot take pod %s: too many pods", ag_json_str(meta, "name"));
        return;
    }
    const char *phase = ag_json_str(cJSON_GetObjectItemCaseSensitive(e->obj, "status"), "phase");
    if (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed")) {
        /* finished under an earlier agent: only its deletion is left to do */
        snprintf(p->phase, sizeof(p->phase), "%s", phase);
        p->state = AG_POD_DONE;
        p->released = 1;
        p->status_dirty = 0;
    }
    a->pods[a->npods++] = p;
    ag_pod_update(a, p, e->obj);
}

static void drain(ag_t *a)
{
    pthread_mutex_lock(&queue.mu);
    ev_t *e = queue.head;
    queue.head = queue.tail = NULL;
    pthread_mutex_unlock(&queue.mu);
    while (e) {
        ev_t *next = e->next;
        if (a)
            apply(a, e);
        cJSON_Delete(e->obj);
        free(e);
        e = next;
    }
}

static void reap(ag_t *a)
{
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
        ag_pod_on_exit(a, pid, st);
}

static void loop(ag_t *a)
{
    while (!atomic_load(&a->stop)) {
        drain(a);
        reap(a);
        int64_t now = ag_now_ms();
        for (int i = 0; i < a->npods; i++) {
            ag_pod_step(a, a->pods[i], now);
            ag_status_report(a, a->pods[i], now, 0);
        }
        for (int i = 0; i < a->npods;) {
            if (ag_pod_finished(a->pods[i])) {
                snprintf(gone[gone_next], sizeof(gone[0]), "%s", a->pods[i]->uid);
                gone_next = (gone_next + 1) % 256;
                ag_pod_free(a, a->pods[i]);
                a->pods[i] = a->pods[--a->npods];
            } else {
                i++;
            }
        }
        ag_node_tick(a, now);
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* Every process of every pod: SIGTERM, then SIGKILL after the grace; then the sandboxes. */
static void shutdown_pods(ag_t *a)
{
    for (int i = 0; i < a->npods; i++)
        ag_pod_kill_all(a, a->pods[i], SIGTERM);
    int64_t end = ag_now_ms() + (int64_t)shutdown_grace_s * 1000;
    int sig = SIGTERM;
    for (;;) {
        reap(a);
        int alive = 0;
        for (int i = 0; i < a->npods; i++)
            for (int j = 0; j < a->pods[i]->nctrs; j++)
                alive += a->pods[i]->ctrs[j].running;
        for (int i = 0; i < a->npods; i++)
            alive += a->pods[i]->net_pid > 0;
        if (alive == 0)
            break;
        if (ag_now_ms() >= end + 5000) {
            ag_error("%d container(s) survive SIGKILL; the netns clean-up kills them", alive);
            break;
        }
        if (ag_now_ms() >= end && sig != SIGKILL) {
            sig = SIGKILL;
            for (int i = 0; i < a->npods; i++)
                ag_pod_kill_all(a, a->pods[i], SIGKILL);
        }
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < a->npods; i++) {
        ag_net_down(a, a->pods[i]);
        ag_sh("rm -rf '%s/volumes'", a->pods[i]->dir);
        ag_pod_free(a, a->pods[i]);
    }
    a->npods = 0;
    reap(a);
}

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kccl-node-agent [options]\n"
            "A stand-in for kubelet + container runtime on the local control plane\n"
            "(e2e/controlplane/cp.sh). Settings default to `eval \"$(cp.sh env)\"`'s variables.\n"
            "  --node NAME             node name [kccl-e2e-node]\n"
            "  --kubeconfig PATH       [$KUBECONFIG]\n"
            "  --build-dir DIR         replaces ${BUILD} in the image map (required)\n"
            "  --images FILE           image map [" KCCL_SOURCE_DIR "/e2e/local/images.map]\n"
            "  --state-dir DIR         pods' volumes and logs [/tmp/kccl-agent-<node>]\n"
            "  --octet-base N          pods' third address octet starts here [20]\n"
            "  --cpu N --memory Q --max-pods N   node capacity [32, 64Gi, 250]\n"
            "  --backoff-initial-ms MS --backoff-max-ms MS   restart back-off [10000, 300000]\n"
            "  --mount-timeout S       a missing Secret/ConfigMap fails the pod after S s [120]\n"
            "  --shutdown-grace S      SIGTERM to SIGKILL at agent exit [5]\n"
            "  --ready-file PATH       written once the node is registered\n"
            "  --keep-node --keep-state -v\n"
            "Environment: KCCL_CP_APISERVER, KCCL_CP_BRIDGE, KCCL_CP_BRIDGE_CIDR,\n"
            "KCCL_CP_NETNS_PREFIX (from cp.sh env).\n");
}

static int parse_args(ag_t *a, int argc, char **argv, char *ready_file, size_t rflen,
                      int *keep_state)
{
    enum {
        O_BUILD = 256,
        O_IMAGES,
        O_STATE,
        O_OCTET,
        O_CPU,
        O_MEM,
        O_PODS,
        O_BOI,
        O_BOM,
        O_MT,
        O_SG,
        O_READY,
        O_KN,
        O_KS,
        O_KUBE,
        O_NODE
    };
    static const struct option opts[] = {{"node", 1, 0, O_NODE},
                                         {"kubeconfig", 1, 0, O_KUBE},
                                         {"build-dir", 1, 0, O_BUILD},
                                         {"images", 1, 0, O_IMAGES},
                                         {"state-dir", 1, 0, O_STATE},
                                         {"octet-base", 1, 0, O_OCTET},
                                         {"cpu", 1, 0, O_CPU},
                                         {"memory", 1, 0, O_MEM},
                                         {"max-pods", 1, 0, O_PODS},
                                         {"backoff-initial-ms", 1, 0, O_BOI},
                                         {"backoff-max-ms", 1, 0, O_BOM},
                                         {"mount-timeout", 1, 0, O_MT},
                                         {"shutdown-grace", 1, 0, O_SG},
                                         {"ready-file", 1, 0, O_READY},
                                         {"keep-node", 0, 0, O_KN},
                                         {"keep-state", 0, 0, O_KS},
                                         {"help", 0, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "hv", opts, NULL)) != -1) {
        switch (c) {
        case O_NODE: snprintf(a->node, sizeof(a->node), "%s", optarg); break;
        case O_KUBE: snprintf(a->kubeconfig, sizeof(a->kubeconfig), "%s", optarg); break;
        case O_BUILD: snprintf(a->build_dir, sizeof(a->build_dir), "%s", optarg); break;
        case O_IMAGES: snprintf(a->images_file, sizeof(a->images_file), "%s", optarg); break;
        case O_STATE: snprintf(a->state_dir, sizeof(a->state_dir), "%s", optarg); break;
        case O_OCTET: a->octet_base = ag_atoi(optarg, 0); break;
        case O_CPU: snprintf(a->cpu, sizeof(a->cpu), "%s", optarg); break;
        case O_MEM: snprintf(a->memory, sizeof(a->memory), "%s", optarg); break;
        case O_PODS: snprintf(a->max_pods, sizeof(a->max_pods), "%s", optarg); break;
        case O_BOI: a->backoff_initial_ms = ag_atoi(optarg, 0); break;
        case O_BOM: a->backoff_max_ms = ag_atoi(optarg, 0); break;
        case O_MT: a->mount_timeout_s = ag_atoi(optarg, 0); break;
        case O_SG: shutdown_grace_s = ag_atoi(optarg, 0); break;
        case O_READY: snprintf(ready_file, rflen, "%s", optarg); break;
        case O_KN: a->delete_node_on_exit = 0; break;
        case O_KS: *keep_state = 1; break;
        case 'v': ag_verbose = 1; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    return 0;
}

static int settings(ag_t *a)
{
    const char *api = env_or("KCCL_CP_APISERVER", "");
    const char *cidr = env_or("KCCL_CP_BRIDGE_CIDR", "");
    const char *slash = strchr(cidr, '/');
    if (!a->kubeconfig[0])
        snprintf(a->kubeconfig, sizeof(a->kubeconfig), "%s", env_or("KUBECONFIG", ""));
    snprintf(a->bridge, sizeof(a->bridge), "%s", env_or("KCCL_CP_BRIDGE", ""));
    snprintf(a->netns_prefix, sizeof(a->netns_prefix), "%s", env_or("KCCL_CP_NETNS_PREFIX", ""));
    snprintf(a->bridge_ip, sizeof(a->bridge_ip), "%.*s", slash ? (int)(slash - cidr) : 0, cidr);
    a->bridge_prefix = slash ? ag_atoi(slash + 1, 16) : 16;
    if (sscanf(api, "https://%63[^:]:%15s", a->api_host, a->api_port) != 2 || !a->bridge[0] ||
        !a->bridge_ip[0] || !a->netns_prefix[0] || !a->kubeconfig[0] || !a->build_dir[0]) {
        ag_error("missing settings: run `eval \"$(e2e/controlplane/cp.sh env)\"` first "
                 "(KUBECONFIG, KCCL_CP_APISERVER, KCCL_CP_BRIDGE, KCCL_CP_BRIDGE_CIDR, "
                 "KCCL_CP_NETNS_PREFIX) and pass --build-dir");
        return -1;
    }
    if (!a->state_dir[0])
        snprintf(a->state_dir, sizeof(a->state_dir), "/tmp/kccl-agent-%s", a->node);
    return 0;
}

int main(int argc, char **argv)
{
    static ag_t agent;
    ag_t *a = &agent;
    char ready_file[512] = "";
    int keep_state = 0;
    snprintf(a->node, sizeof(a->node), "kccl-e2e-node");
    snprintf(a->images_file, sizeof(a->images_file), "%s/e2e/local/images.map", KCCL_SOURCE_DIR);
    snprintf(a->cpu, sizeof(a->cpu), "32");
    snprintf(a->memory, sizeof(a->memory), "64Gi");
    snprintf(a->max_pods, sizeof(a->max_pods), "250");
    a->octet_base = 20;
    a->backoff_initial_ms = 10000;
    a->backoff_max_ms = 300000;
    a->mount_timeout_s = 120;
    a->delete_node_on_exit = 1;
    if (parse_args(a, argc, argv, ready_file, sizeof(ready_file), &keep_state) != 0 ||
        settings(a) != 0 || ag_images_load(a) != 0)
        return 2;
    g_stop = &a->stop;
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    kccl_kube_config_t cfg;
    if (kccl_kube_config_load_kubeconfig(a->kubeconfig, NULL, &cfg) != KCCL_OK ||
        kccl_kube_client_create(cfg, &a->api) != KCCL_OK) {
        ag_error("kubeconfig %s: %s", a->kubeconfig, kccl_last_error());
        return 1;
    }
    ag_net_cleanup_stale(a);
    ag_sh("rm -rf '%s/pods'; mkdir -p '%s/pods'", a->state_dir, a->state_dir);
    char tl[600];
    snprintf(tl, sizeof(tl), "%s/timeline.log", a->state_dir);
    a->timeline = fopen(tl, "a");
    if (ag_node_register(a) != 0) {
        kccl_kube_client_destroy(a->api);
        return 1;
    }
    pthread_t watcher;
    if (pthread_create(&watcher, NULL, watch_main, a) != 0) {
        ag_error("pthread_create: %s", strerror(errno));
        return 1;
    }
    if (ready_file[0])
        ag_sh("echo '%s' > '%s'", a->node, ready_file);
    ag_info("watching pods bound to %s; state in %s", a->node, a->state_dir);
    loop(a);
    ag_info("stopping: %d pod(s) on this node", a->npods);
    pthread_join(watcher, NULL);
    drain(NULL);
    shutdown_pods(a);
    ag_net_cleanup_stale(a);
    if (a->delete_node_on_exit)
        ag_node_delete(a);
    if (a->timeline)
        fclose(a->timeline);
    if (!keep_state)
        ag_sh("rm -rf '%s'", a->state_dir);
    if (ready_file[0])
        unlink(ready_file);
    kccl_kube_client_destroy(a->api);
    ag_info("stopped");
    return 0;
}
