/*
 * sc_itest.h - shared glue for the kccl-sidecar control-plane tests: the
 * podkit instance, a watchdog that cleans up on a hang, and helpers that
 * build groups of pods and check every handoff against the API's view.
 *
 * Each program exits 77 (CTest: skipped) when the control plane is not up:
 *     e2e/controlplane/cp.sh up && ctest -L controlplane
 */
#ifndef KCCL_SC_ITEST_H
#define KCCL_SC_ITEST_H

/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "kccl/kccl_bootstrap.h"
#include "podkit.h"

#ifndef KCCL_SOURCE_DIR
#error "KCCL_SOURCE_DIR must be defined"
#endif

static pk_t sc_kit;
static int sc_kit_up;

static void sc_itest_cleanup(void)
{
    if (sc_kit_up)
        pk_fini(&sc_kit); // NOLINT(bugprone-signal-handler): also the watchdog's best effort
    sc_kit_up = 0;
}

/* A hung or interrupted test's last resort: best-effort cleanup, then _exit. */
static void sc_itest_on_alarm(int sig) // NOLINT(bugprone-signal-handler): see above
{
    (void)sig;
    static const char msg[] = "sc_itest: watchdog: the test hung; cleaning up\n";
    (void)!write(2, msg, sizeof(msg) - 1);
    sc_itest_cleanup();
    _exit(1);
}

/* Skips (77) without a control plane; sets up the kit; a watchdog of watchdog_s seconds. */
static inline void sc_itest_init(const char *prog, int max_pods, int watchdog_s)
{
    const char *bin = getenv("KCCL_SC_TEST_BIN"); /* e.g. kccl-sidecar-static (CMake) */
    int rc = pk_init(&sc_kit, prog, KCCL_SOURCE_DIR, bin && *bin ? bin : KCCL_SIDECAR_BIN,
                     KCCL_DEMO_BIN, max_pods);
    if (rc == PK_SKIP) {
        printf("SKIP: the control plane is not up (run %s/e2e/controlplane/cp.sh up)\n",
               KCCL_SOURCE_DIR);
        exit(PK_SKIP);
    }
    if (rc != 0) {
        pk_fini(&sc_kit); // NOLINT(bugprone-signal-handler): also the watchdog's best effort
        fprintf(stderr, "sc_itest: podkit setup failed\n");
        exit(1);
    }
    sc_kit_up = 1;
    atexit(sc_itest_cleanup);
    signal(SIGALRM, sc_itest_on_alarm);
    signal(SIGTERM, sc_itest_on_alarm);
    signal(SIGINT, sc_itest_on_alarm);
    alarm((unsigned)watchdog_s);
}

/* Annotations of a pod of group g: rank and world as text ("" leaves the key out). */
static inline void sc_ann(char *buf, size_t len, const char *group, const char *rank,
                          const char *world, const char *more)
{
    int n = snprintf(buf, len, "{\"kccl.io/group\":\"%s\"", group);
    if (rank && rank[0])
        n += snprintf(buf + n, len - (size_t)n, ",\"kccl.io/rank\":\"%s\"", rank);
    if (world && world[0])
        n += snprintf(buf + n, len - (size_t)n, ",\"kccl.io/world-size\":\"%s\"", world);
    snprintf(buf + n, len - (size_t)n, "%s%s}", more ? "," : "", more ? more : "");
}

/* Creates a pod with the given annotations, its network, token and secret (not started). */
static inline pk_pod_t *sc_pod(const char *name, const char *ann, const char *secret,
                               const char *node)
{
    pk_pod_t *p = pk_pod_create(&sc_kit, name, ann, NULL, secret, node);
    if (p == NULL || pk_pod_ready_files(&sc_kit, p, secret) != 0 || pk_pod_running(&sc_kit, p))
        fail_msg("cannot make pod %s", name);
    return p;
}

/* A group of n pods named <prefix>-<i>, rank i, on nodes node-<i/2>; not started. */
static inline void sc_group(const char *prefix, int n, pk_pod_t **pods)
{
    char name[64], ann[512], rank[16], world[16], secret[64], node[32];
    snprintf(secret, sizeof(secret), "%s-secret", prefix);
    if (pk_secret_create(&sc_kit, secret) != 0)
        fail_msg("secret");
    snprintf(world, sizeof(world), "%d", n);
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "%s-%d", prefix, i);
        snprintf(rank, sizeof(rank), "%d", i);
        snprintf(node, sizeof(node), "node-%d", i / 2);
        sc_ann(ann, sizeof(ann), prefix, rank, world, NULL);
        pods[i] = sc_pod(name, ann, secret, node);
    }
}

static inline void sc_start(pk_pod_t *p, const char *const *extra)
{
    if (pk_sidecar_start(&sc_kit, p, extra) <= 0)
        fail_msg("cannot start the sidecar of %s", p->name);
}

static inline void sc_stop_all(pk_pod_t **pods, int n)
{
    for (int i = 0; i < n; i++)
        if (pods[i] && pods[i]->sidecar > 0) {
            int rc = pk_sidecar_stop(pods[i], SIGTERM, 3000);
            if (rc != 0)
                fail_msg("sidecar of %s: exit %d after SIGTERM (want 0)", pods[i]->name, rc);
        }
}

/* Uniform in 0..n-1 (test shuffles). */
static inline int sc_rand(int n)
{
    unsigned r = 0;
    (void)!getrandom(&r, sizeof(r), 0);
    return (int)(r % (unsigned)n);
}

static inline const char *sc_json_str(const cJSON *o, const char *a, const char *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b)
        x = cJSON_GetObjectItemCaseSensitive(x, b);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

/* The pod's annotation (or label), copied into buf ("" when absent). */
static inline const char *sc_pod_meta(pk_pod_t *p, const char *kind, const char *key, char *buf,
                                      size_t len)
{
    cJSON *pod = pk_pod_get(&sc_kit, p);
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
    const char *v = sc_json_str(meta, kind, key);
    snprintf(buf, len, "%s", v ? v : "");
    cJSON_Delete(pod);
    return buf;
}

/*
 * Every pod of the group holds a handoff that is right: its rank, the world
 * size, the epoch, its node as host id, its secret path, and one unique id -
 * the one rank 0's pod publishes, naming rank 0's IP and port.
 */
static inline void sc_check_group(pk_pod_t **pods, int n, long epoch, int port, char *id_out)
{
    char id0[KCCL_UNIQUE_ID_STRLEN + 1], addr[80], want[80], buf[256], ep[32];
    kccl_handoff_t h0;
    if (pk_handoff_wait(pods[0], 10000, &h0) != 0)
        fail_msg("no valid handoff for %s", pods[0]->name);
    snprintf(want, sizeof(want), "%ld", epoch);
    for (int t = 0; t < 400; t++) { /* rank 0 publishes the id of this epoch */
        sc_pod_meta(pods[0], "annotations", "kccl.io/unique-id-epoch", ep, sizeof(ep));
        if (strcmp(ep, want) == 0)
            break;
        pk_sleep_ms(25);
    }
    assert_string_equal(ep, want);
    sc_pod_meta(pods[0], "annotations", "kccl.io/unique-id", id0, sizeof(id0));
    kccl_unique_id_t uid;
    assert_int_equal(kccl_unique_id_from_string(id0, &uid), KCCL_OK);
    /* the published id carries no secret: flags bit 0 clear, secret bytes 44..75 zero
     * (layout: runtime/bootstrap/README.md) */
    assert_int_equal(uid.internal[7] & 1, 0);
    for (int b = 44; b < 76; b++)
        assert_int_equal(uid.internal[b], 0);
    assert_int_equal(kccl_unique_id_address(&uid, addr, sizeof(addr)), KCCL_OK);
    snprintf(want, sizeof(want), "%s:%d", pods[0]->ip, port);
    assert_string_equal(addr, want);
    for (int i = 0; i < n; i++) {
        kccl_handoff_t h;
        if (pk_handoff_wait(pods[i], 10000, &h) != 0)
            fail_msg("no valid handoff for %s", pods[i]->name);
        if (h.epoch != epoch || strcmp(h.unique_id, id0) != 0) { /* an update may be on its way */
            for (int t = 0; t < 200 && (h.epoch != epoch || strcmp(h.unique_id, id0) != 0); t++) {
                pk_sleep_ms(25);
                pk_handoff_wait(pods[i], 1000, &h);
            }
        }
        assert_string_equal(h.unique_id, id0);
        assert_int_equal(h.rank, i);
        assert_int_equal(h.world_size, n);
        assert_int_equal(h.epoch, epoch);
        assert_string_equal(h.host_id, pods[i]->node);
        assert_string_equal(h.secret_file, pods[i]->secret_file);
        snprintf(want, sizeof(want), "%s:%d", pods[i]->ip, port);
        assert_string_equal(
            sc_pod_meta(pods[i], "annotations", "kccl.io/endpoint", buf, sizeof(buf)), want);
        snprintf(want, sizeof(want), "%d", i);
        assert_string_equal(sc_pod_meta(pods[i], "labels", "kccl.io/rank", buf, sizeof(buf)), want);
        if (i > 0)
            assert_string_equal(
                sc_pod_meta(pods[i], "annotations", "kccl.io/unique-id", buf, sizeof(buf)), "");
    }
    if (id_out)
        memcpy(id_out, id0, sizeof(id0));
}

#endif
