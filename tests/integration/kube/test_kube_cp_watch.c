/*
 * test_kube_cp_watch.c - kccl_kube_watch() against the real control plane:
 * list-then-watch with ADDED/MODIFIED/DELETED; streams that the apiserver ends
 * every few seconds (timeoutSeconds) resume from the last resourceVersion,
 * bookmarks included, with no event lost and no relist; a watch from a
 * resourceVersion that is too old gets 410 and relists (synthetic events);
 * a watch survives a kube-apiserver being killed and restarted, with every
 * change made meanwhile delivered; the deadline and the stop flag.
 *
 * The restart test uses a private apiserver (apiserver_ctl.sh: same binary,
 * flags and etcd as cp.sh's, on 127.0.0.1) so other users of the shared
 * control plane are not disturbed; KCCL_KUBE_IT_RESTART_MAIN=1 restarts
 * cp.sh's own apiserver instead.
 */
#include <pthread.h>

#include "kube_cp.h"

#define MAX_EV 1024

typedef struct {
    kccl_kube_event_type_t type;
    char name[64];
    char step[16]; /* the pod's "step" annotation */
    int synthetic;
} ev_t;

typedef struct {
    pthread_mutex_t mu;
    ev_t ev[MAX_EV];
    int n;
    int bookmarks;
    atomic_int stop;
    kccl_kube_client_t c;
    kccl_kube_watch_opts_t opts;
    kccl_kube_watch_stats_t stats;
    kccl_kube_result_t res;
    kccl_status_t st;
    pthread_t thread;
} rec_t;

static kccl_kube_client_t admin;
static kccl_kube_client_t priv; /* through the private apiserver */
static char pods[256];
static char priv_dir[600];

static int record(void *arg, const kccl_kube_event_t *e)
{
    rec_t *r = arg;
    pthread_mutex_lock(&r->mu);
    if (e->type == KCCL_KUBE_EVENT_BOOKMARK) {
        r->bookmarks++;
    } else if (r->n < MAX_EV) {
        ev_t *v = &r->ev[r->n++];
        v->type = e->type;
        v->synthetic = e->synthetic;
        const cJSON *m = cJSON_GetObjectItem(e->object, "metadata");
        const char *name = kcp_str(m, "name", NULL);
        const char *step = kcp_str(m, "annotations", "step");
        snprintf(v->name, sizeof(v->name), "%s", name ? name : "");
        snprintf(v->step, sizeof(v->step), "%s", step ? step : "");
    }
    pthread_mutex_unlock(&r->mu);
    return 0;
}

static void *watch_thread(void *arg)
{
    rec_t *r = arg;
    r->st = kccl_kube_watch(r->c, &r->opts, record, r, &r->res);
    return NULL;
}

static void rec_start(rec_t *r, kccl_kube_client_t c, const char *group, const char *rv,
                      int server_timeout_s)
{
    static char selector[8][128];
    static int k;
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
    r->c = c;
    k = (k + 1) % 8;
    snprintf(selector[k], sizeof(selector[k]), "kccl.io/group=%s", group);
    r->opts = (kccl_kube_watch_opts_t){.path = pods,
                                       .label_selector = selector[k],
                                       .resource_version = rv,
                                       .timeout_ms = 120000,
                                       .server_timeout_s = server_timeout_s,
                                       .stop = &r->stop,
                                       .stats = &r->stats};
    assert_int_equal(pthread_create(&r->thread, NULL, watch_thread, r), 0);
}

static kccl_status_t rec_stop(rec_t *r)
{
    atomic_store(&r->stop, 1);
    pthread_join(r->thread, NULL);
    print_message("    watch: %d events, %d bookmarks; streams %llu, resumes %llu, relists %llu, "
                  "rv %s\n",
                  r->n, r->bookmarks, (unsigned long long)r->stats.streams,
                  (unsigned long long)r->stats.resumes, (unsigned long long)r->stats.relists,
                  r->stats.resource_version);
    return r->st;
}

/* Index of the first event matching (type, name, step) at or after `from`, or -1. */
static int find(rec_t *r, int from, kccl_kube_event_type_t type, const char *name, const char *step)
{
    int found = -1;
    pthread_mutex_lock(&r->mu);
    for (int i = from; i < r->n && found < 0; i++)
        if (r->ev[i].type == type && strcmp(r->ev[i].name, name) == 0 &&
            (step == NULL || strcmp(r->ev[i].step, step) == 0))
            found = i;
    pthread_mutex_unlock(&r->mu);
    return found;
}

static int wait_for(rec_t *r, kccl_kube_event_type_t type, const char *name, const char *step,
                    int timeout_ms)
{
    int64_t end = kccl_kube_now_ms() + timeout_ms;
    int i;
    while ((i = find(r, 0, type, name, step)) < 0 && kccl_kube_now_ms() < end)
        kcp_sleep_ms(20);
    if (i < 0)
        fail_msg("no %s event for pod %s%s%s within %d ms", kccl_kube_event_type_str(type), name,
                 step ? " step " : "", step ? step : "", timeout_ms);
    return i;
}

/* The set of pods the watcher believes exist, as "name=step name=step ..." sorted by name. */
static void watcher_view(rec_t *r, char *out, size_t cap)
{
    char names[64][64], steps[64][16];
    int n = 0;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->n; i++) {
        int j;
        for (j = 0; j < n && strcmp(names[j], r->ev[i].name) != 0; j++)
            ;
        if (r->ev[i].type == KCCL_KUBE_EVENT_DELETED) {
            if (j < n) {
                memmove(names + j, names + j + 1, sizeof(names[0]) * (size_t)(n - j - 1));
                memmove(steps + j, steps + j + 1, sizeof(steps[0]) * (size_t)(n - j - 1));
                n--;
            }
            continue;
        }
        if (r->ev[i].type != KCCL_KUBE_EVENT_ADDED && r->ev[i].type != KCCL_KUBE_EVENT_MODIFIED)
            continue;
        if (j == n && n < 64)
            n++;
        snprintf(names[j], sizeof(names[0]), "%s", r->ev[i].name);
        snprintf(steps[j], sizeof(steps[0]), "%s", r->ev[i].step);
    }
    pthread_mutex_unlock(&r->mu);
    for (int a = 0; a < n; a++) /* sort */
        for (int b = a + 1; b < n; b++)
            if (strcmp(names[a], names[b]) > 0) {
                char t[64];
                memcpy(t, names[a], 64);
                memcpy(names[a], names[b], 64);
                memcpy(names[b], t, 64);
                memcpy(t, steps[a], 16);
                memcpy(steps[a], steps[b], 16);
                memcpy(steps[b], t, 16);
            }
    out[0] = '\0';
    for (int a = 0; a < n; a++)
        snprintf(out + strlen(out), cap - strlen(out), "%s%s=%s", a ? " " : "", names[a], steps[a]);
}

/* The same view according to kubectl. */
static void kubectl_view(const char *group, char *out, size_t cap)
{
    assert_int_equal(kcp_sh(out, cap,
                            "kubectl -n %s get pods -l kccl.io/group=%s --sort-by=.metadata.name "
                            "-o jsonpath='{range .items[*]}{.metadata.name}={.metadata."
                            "annotations.step} {end}'",
                            kcp.ns, group),
                     0);
}

static void create_pod(const char *name, const char *group)
{
    cJSON *pod = kcp_pod(name, group, NULL);
    assert_int_equal(kccl_kube_create(admin, pods, pod, NULL, NULL, NULL), KCCL_OK);
    cJSON_Delete(pod);
}

static void step(const char *name, const char *value)
{
    KCP_MUST("kubectl -n %s annotate --overwrite pod %s step=%s 2>&1", kcp.ns, name, value);
}

static void test_list_then_watch(void **state)
{
    create_pod("w-pre", "w1");
    rec_t r;
    rec_start(&r, admin, "w1", NULL, 0);
    int i = wait_for(&r, KCCL_KUBE_EVENT_ADDED, "w-pre", NULL, 10000);
    assert_true(r.ev[i].synthetic); /* from the initial list */
    create_pod("w-a", "w1");
    i = wait_for(&r, KCCL_KUBE_EVENT_ADDED, "w-a", NULL, 10000);
    assert_false(r.ev[i].synthetic);
    step("w-a", "1");
    wait_for(&r, KCCL_KUBE_EVENT_MODIFIED, "w-a", "1", 10000);
    KCP_MUST("kubectl -n %s delete pod w-a --wait=false 2>&1", kcp.ns);
    wait_for(&r, KCCL_KUBE_EVENT_DELETED, "w-a", NULL, 10000);
    create_pod("w-other", "not-w1"); /* the selector keeps it out */
    kcp_sleep_ms(500);
    assert_int_equal(find(&r, 0, KCCL_KUBE_EVENT_ADDED, "w-other", NULL), -1);
    assert_int_equal(rec_stop(&r), KCCL_ERR_ABORTED);
    assert_int_equal(r.stats.relists, 0);
    assert_int_equal(r.stats.streams, 1);
}

static void test_resume_across_stream_ends(void **state)
{
    /* the apiserver ends each watch after 3 s; changes keep coming across the ends */
    rec_t r;
    rec_start(&r, admin, "w2", NULL, 3);
    char name[32], val[16];
    for (int i = 0; i < 12; i++) {
        snprintf(name, sizeof(name), "w2-%d", i % 4);
        snprintf(val, sizeof(val), "%d", i);
        if (i < 4)
            create_pod(name, "w2");
        else
            step(name, val);
        kcp_sleep_ms(700);
    }
    for (int i = 8; i < 12; i++) {
        snprintf(name, sizeof(name), "w2-%d", i % 4);
        snprintf(val, sizeof(val), "%d", i);
        wait_for(&r, KCCL_KUBE_EVENT_MODIFIED, name, val, 10000);
    }
    /* every change, in order: each pod saw steps i, i+4 (created first) */
    for (int p = 0; p < 4; p++) {
        snprintf(name, sizeof(name), "w2-%d", p);
        int at = find(&r, 0, KCCL_KUBE_EVENT_ADDED, name, NULL);
        assert_true(at >= 0);
        for (int s = p + 4; s < 12; s += 4) {
            snprintf(val, sizeof(val), "%d", s);
            int next = find(&r, at, KCCL_KUBE_EVENT_MODIFIED, name, val);
            if (next < 0)
                fail_msg("lost the step %s event of %s", val, name);
            at = next;
        }
    }
    kcp_sleep_ms(2500); /* let a bookmark (sent before a timed-out watch ends) arrive */
    assert_int_equal(rec_stop(&r), KCCL_ERR_ABORTED);
    assert_true(r.stats.streams >= 3);
    assert_true(r.stats.resumes >= 2);
    assert_int_equal(r.stats.relists, 0);
    assert_true(r.bookmarks >= 1);
    char a[2048], b[2048];
    watcher_view(&r, a, sizeof(a));
    kubectl_view("w2", b, sizeof(b));
    assert_string_equal(a, b);
}

static void test_too_old_resource_version_relists(void **state)
{
    /* A freshly started apiserver's watch cache begins at the current revision: a watch
     * from revision 1 is "too old" there (410 Expired), deterministically. (cp.sh's own
     * apiserver may still hold every event since its start, and serve it.) */
    create_pod("w3-a", "w3");
    create_pod("w3-b", "w3");
    rec_t r;
    rec_start(&r, priv, "w3", "1", 0);
    int i = wait_for(&r, KCCL_KUBE_EVENT_ADDED, "w3-a", NULL, 10000);
    assert_true(r.ev[i].synthetic);
    i = wait_for(&r, KCCL_KUBE_EVENT_ADDED, "w3-b", NULL, 10000);
    assert_true(r.ev[i].synthetic);
    create_pod("w3-c", "w3");
    i = wait_for(&r, KCCL_KUBE_EVENT_ADDED, "w3-c", NULL, 10000);
    assert_false(r.ev[i].synthetic);
    assert_int_equal(rec_stop(&r), KCCL_ERR_ABORTED);
    assert_int_equal(r.stats.relists, 1);
}

static int restart_main(void)
{
    const char *v = getenv("KCCL_KUBE_IT_RESTART_MAIN");
    return v && strcmp(v, "1") == 0;
}

static void test_survives_apiserver_restart(void **state)
{
    const char *pdir = priv_dir;
    kccl_kube_client_t c = restart_main() ? admin : priv;
    create_pod("r-0", "w4");
    create_pod("r-1", "w4");
    rec_t r;
    rec_start(&r, c, "w4", NULL, 0);
    wait_for(&r, KCCL_KUBE_EVENT_ADDED, "r-1", NULL, 10000);
    step("r-1", "1");
    wait_for(&r, KCCL_KUBE_EVENT_MODIFIED, "r-1", "1", 10000);

    if (restart_main()) {
        /* the shared apiserver: down and up again, then the changes */
        KCP_MUST("'%s' main-restart 2>&1", KCP_CTL_SH);
        create_pod("r-2", "w4");
        step("r-1", "2");
        KCP_MUST("kubectl -n %s delete pod r-0 --wait=false 2>&1", kcp.ns);
    } else {
        /* a crash: the changes happen (through the main apiserver) while it is down */
        KCP_MUST("'%s' private-kill '%s' 2>&1", KCP_CTL_SH, pdir);
        create_pod("r-2", "w4");
        step("r-1", "2");
        KCP_MUST("kubectl -n %s delete pod r-0 --wait=false 2>&1", kcp.ns);
        kcp_sleep_ms(1000); /* the watcher retries against a dead port meanwhile */
        KCP_MUST("'%s' private-restart '%s' 2>&1", KCP_CTL_SH, pdir);
    }
    create_pod("r-3", "w4");
    wait_for(&r, KCCL_KUBE_EVENT_ADDED, "r-2", NULL, 30000);
    wait_for(&r, KCCL_KUBE_EVENT_MODIFIED, "r-1", "2", 30000);
    wait_for(&r, KCCL_KUBE_EVENT_DELETED, "r-0", NULL, 30000);
    wait_for(&r, KCCL_KUBE_EVENT_ADDED, "r-3", NULL, 30000);
    assert_int_equal(rec_stop(&r), KCCL_ERR_ABORTED);
    assert_true(r.stats.streams >= 2);
    char a[2048], b[2048];
    watcher_view(&r, a, sizeof(a));
    kubectl_view("w4", b, sizeof(b));
    assert_string_equal(a, b);
    assert_string_equal(a, "r-1=2 r-2= r-3=");
}

static int stop_at_first(void *arg, const kccl_kube_event_t *e)
{
    return e->type == KCCL_KUBE_EVENT_ADDED ? 1 : 0;
}

static void test_deadline_and_callback_stop(void **state)
{
    kccl_kube_watch_opts_t o = {
        .path = pods, .label_selector = "kccl.io/group=nobody", .timeout_ms = 1500};
    int64_t t0 = kccl_kube_now_ms();
    assert_int_equal(kccl_kube_watch(admin, &o, stop_at_first, NULL, NULL), KCCL_ERR_TIMED_OUT);
    int64_t took = kccl_kube_now_ms() - t0;
    assert_true(took >= 1400 && took < 3000);
    create_pod("w5-a", "w5");
    o.label_selector = "kccl.io/group=w5";
    o.timeout_ms = 10000;
    assert_int_equal(kccl_kube_watch(admin, &o, stop_at_first, NULL, NULL), KCCL_OK);
}

/* A private kube-apiserver (apiserver_ctl.sh): the same binary, flags and etcd as cp.sh's. */
static int private_up(void **state)
{
    char port[32] = "", server[128], user[2048], ca_line[700];
    snprintf(priv_dir, sizeof(priv_dir), "%s", kcp_path("private-apiserver"));
    if (kcp_sh(port, sizeof(port), "'%s' private-start '%s' 2>&1", KCP_CTL_SH, priv_dir) != 0) {
        print_error("cannot start a private apiserver: %s\n", port);
        return -1;
    }
    snprintf(server, sizeof(server), "https://127.0.0.1:%s", port);
    snprintf(ca_line, sizeof(ca_line), "certificate-authority: %s", kcp.ca);
    snprintf(user, sizeof(user),
             "    client-certificate: %s/pki/admin.crt\n"
             "    client-key: %s/pki/admin.key",
             kcp.dir, kcp.dir);
    priv = kcp_client(kcp_kubeconfig("private.kubeconfig", server, ca_line, user));
    return 0;
}

static int private_down(void **state)
{
    kcp_sh(NULL, 0, "'%s' private-stop '%s' 2>&1", KCP_CTL_SH, priv_dir);
    kccl_kube_client_destroy(priv);
    return 0;
}

int main(void)
{
    if (!getenv("KCCL_LOG_LEVEL"))
        setenv("KCCL_LOG_LEVEL", "none", 1);
    kcp_init("watch");
    admin = kcp_admin();
    assert_int_equal(kccl_kube_path(pods, sizeof(pods), "v1", kcp.ns, "pods", NULL, NULL), KCCL_OK);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_then_watch),
        cmocka_unit_test(test_resume_across_stream_ends),
        cmocka_unit_test(test_too_old_resource_version_relists),
        cmocka_unit_test(test_survives_apiserver_restart),
        cmocka_unit_test(test_deadline_and_callback_stop),
    };
    int rc = cmocka_run_group_tests(tests, private_up, private_down);
    kccl_kube_client_destroy(admin);
    kcp_fini();
    return rc;
}
