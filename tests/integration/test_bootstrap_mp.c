/*
 * test_bootstrap_mp.c - the bootstrap across real processes on loopback.
 *
 * For N = 1, 2, 3, 8, 64, 256 ranks (those up to KCCL_TEST_MAX_RANKS) each
 * rank is a forked process; the parent creates one unique id per all-gather
 * algorithm (RING, BRUCK, AUTO) and every rank bootstraps three times, once
 * per id. On each bootstrap: all-gather of per-rank distinct data at sizes
 * 0, 1, 7, 4096 and 65536 bytes (within a per-rank memory cap), repeated
 * barriers, broadcasts from several roots. On the AUTO one also: tagged
 * send/recv in both directions with out-of-order tags, zero-length messages,
 * 8 MiB messages both ways at once, argument errors that must not poison the
 * bootstrap, host hashes from KCCL_HOST_ID, the peer address table.
 * Separately: kccl_bootstrap_abort() from another thread cuts a recv short;
 * a recv from a rank that destroyed without sending fails at once; a rank
 * may send and destroy at once without losing what it sent.
 * Regression cases for runtime bugs these tests found run with the rest.
 */
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>

#include "bootstrap/engine.h"
#include "bootstrap/hostid.h"
#include "kccl/kccl_bootstrap.h"
#include "kccl_test.h"
#include "mp.h"

/* Groups larger than KCCL_TEST_MAX_RANKS (environment) are skipped. */
#define DEFAULT_MAX_RANKS 256
/* Sanitizer builds (CMake sets this) move less data and allow longer deadlines. */
#ifndef KCCL_ITEST_SLOWDOWN
#define KCCL_ITEST_SLOWDOWN 1
#endif

#define N_ALGOS 3
static const kccl_bootstrap_algo_t algos[N_ALGOS] = {
    KCCL_BOOTSTRAP_ALGO_RING, KCCL_BOOTSTRAP_ALGO_BRUCK, KCCL_BOOTSTRAP_ALGO_AUTO};
static const char *const algo_names[N_ALGOS] = {"ring", "bruck", "auto"};

static const size_t ag_sizes[] = {0, 1, 7, 4096, 65536};
/* Per rank, all-gather buffers stay under this (256 ranks x 64 KiB would be 4 GiB in all). */
#define AG_MAX_TOTAL ((size_t)4 << 20 >> (KCCL_ITEST_SLOWDOWN > 1 ? 2 : 0))
#define BIG_P2P      ((size_t)8 << 20)

#define MAX_IDS 6

typedef struct {
    int nranks;
    kccl_bootstrap_opts_t opts;
    kccl_unique_id_t ids[MAX_IDS];
} group_t;

static uint8_t pattern(int rank, int salt, size_t i)
{
    return (uint8_t)(rank * 151 + salt * 29 + (int)(i * 13) + (int)(i >> 8) + 1);
}

static const char *host_of(int rank)
{
    return rank % 2 ? "itest-node-odd" : "itest-node-even";
}

/* ------------------------------------------------------------ collectives */

static int check_all_gather(kccl_bootstrap_t bs, int salt, size_t bytes)
{
    int n = kccl_bootstrap_size(bs), r = kccl_bootstrap_rank(bs);
    size_t total = (size_t)n * bytes;
    uint8_t *buf = malloc(total ? total : 1);
    MP_CHECK(buf != NULL, "out of memory");
    memset(buf, 0xEE, total);
    for (size_t i = 0; i < bytes; i++)
        buf[(size_t)r * bytes + i] = pattern(r, salt, i);
    kccl_status_t st = kccl_bootstrap_all_gather(bs, buf, bytes);
    MP_CHECK(st == KCCL_OK, "all-gather of %zu bytes: %s: %s", bytes, kccl_status_name(st),
             kccl_last_error());
    for (int p = 0; p < n; p++)
        for (size_t i = 0; i < bytes; i++)
            MP_CHECK(buf[(size_t)p * bytes + i] == pattern(p, salt, i),
                     "all-gather of %zu bytes: rank %d's byte %zu is %u, expected %u", bytes, p, i,
                     buf[(size_t)p * bytes + i], pattern(p, salt, i));
    free(buf);
    return 0;
}

static int check_broadcast(kccl_bootstrap_t bs, int root, size_t bytes, int salt)
{
    int r = kccl_bootstrap_rank(bs);
    uint8_t *buf = malloc(bytes ? bytes : 1);
    MP_CHECK(buf != NULL, "out of memory");
    for (size_t i = 0; i < bytes; i++)
        buf[i] = r == root ? pattern(root, salt, i) : 0xEE;
    kccl_status_t st = kccl_bootstrap_broadcast(bs, bytes ? buf : NULL, bytes, root);
    MP_CHECK(st == KCCL_OK, "broadcast of %zu bytes from %d: %s: %s", bytes, root,
             kccl_status_name(st), kccl_last_error());
    for (size_t i = 0; i < bytes; i++)
        MP_CHECK(buf[i] == pattern(root, salt, i), "broadcast from %d: byte %zu is %u", root, i,
                 buf[i]);
    free(buf);
    return 0;
}

static int run_collectives(kccl_bootstrap_t bs, int a)
{
    int n = kccl_bootstrap_size(bs);
    for (size_t k = 0; k < KCCL_TEST_ARRAY_LEN(ag_sizes); k++) {
        if ((size_t)n * ag_sizes[k] > AG_MAX_TOTAL)
            continue;
        if (check_all_gather(bs, a * 10 + (int)k, ag_sizes[k]))
            return 1;
    }
    int barriers = n >= 64 ? 3 : 10;
    for (int i = 0; i < barriers; i++)
        MP_CHECK_OK(kccl_bootstrap_barrier(bs));
    const int roots[] = {0, n - 1, n / 2, 1 % n};
    const size_t bsizes[] = {0, 1, 4096};
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(roots); i++)
        for (size_t k = 0; k < KCCL_TEST_ARRAY_LEN(bsizes); k++)
            if (check_broadcast(bs, roots[i], bsizes[k], (int)(i * 3 + k)))
                return 1;
    return 0;
}

/* ----------------------------------------------------------------- p2p */

static size_t tag_len(uint32_t tag)
{
    return tag == 1 ? 100 : 3000;
}

static int p2p_send_tags(kccl_bootstrap_t bs, int to)
{
    int r = kccl_bootstrap_rank(bs);
    uint8_t buf[3000];
    /* Tag 2 goes out first; the receiver asks for tag 1 first. */
    for (uint32_t tag = 2; tag >= 1; tag--) {
        for (size_t i = 0; i < tag_len(tag); i++)
            buf[i] = pattern(r, (int)tag, i);
        MP_CHECK_OK(kccl_bootstrap_send(bs, to, tag, buf, tag_len(tag)));
    }
    return 0;
}

static int p2p_recv_tags(kccl_bootstrap_t bs, int from)
{
    uint8_t buf[3000];
    for (uint32_t tag = 1; tag <= 2; tag++) {
        MP_CHECK_OK(kccl_bootstrap_recv(bs, from, tag, buf, tag_len(tag)));
        for (size_t i = 0; i < tag_len(tag); i++)
            MP_CHECK(buf[i] == pattern(from, (int)tag, i), "tag %u from %d: byte %zu", tag, from,
                     i);
    }
    return 0;
}

/* Both partners send 8 MiB before either receives: no deadlock. */
static int big_exchange(kccl_bootstrap_t bs, int peer)
{
    int r = kccl_bootstrap_rank(bs);
    uint8_t *out = malloc(BIG_P2P), *in = malloc(BIG_P2P);
    MP_CHECK(out && in, "out of memory");
    for (size_t i = 0; i < BIG_P2P; i++)
        out[i] = pattern(r, 77, i);
    memset(in, 0, BIG_P2P);
    int64_t t0 = mp_now_ms();
    MP_CHECK_OK(kccl_bootstrap_send(bs, peer, 77, out, BIG_P2P));
    MP_CHECK_OK(kccl_bootstrap_recv(bs, peer, 77, in, BIG_P2P));
    for (size_t i = 0; i < BIG_P2P; i++)
        MP_CHECK(in[i] == pattern(peer, 77, i), "8 MiB from %d: byte %zu", peer, i);
    mp_self()->elapsed_ms = mp_now_ms() - t0;
    free(out);
    free(in);
    return 0;
}

static int run_p2p(kccl_bootstrap_t bs)
{
    int n = kccl_bootstrap_size(bs), r = kccl_bootstrap_rank(bs);
    int next = (r + 1) % n, prev = (r - 1 + n) % n;
    if (n == 1)
        return 0;
    /* Both directions around the ring, tags out of order. */
    if (p2p_send_tags(bs, next) || p2p_send_tags(bs, prev))
        return 1;
    if (p2p_recv_tags(bs, prev) || p2p_recv_tags(bs, next))
        return 1;
    /* Zero-length messages, with and without a buffer. */
    MP_CHECK_OK(kccl_bootstrap_send(bs, next, 5, NULL, 0));
    MP_CHECK_OK(kccl_bootstrap_recv(bs, prev, 5, NULL, 0));
    /* Argument errors fail the call, not the bootstrap. */
    uint8_t b[4] = {0};
    MP_CHECK(kccl_bootstrap_send(bs, r, 1, b, 4) == KCCL_ERR_INVALID_ARG, "send to self");
    MP_CHECK(strstr(kccl_last_error(), "not another rank") != NULL, "send to self: %s",
             kccl_last_error());
    MP_CHECK(kccl_bootstrap_send(bs, n, 1, b, 4) == KCCL_ERR_INVALID_ARG, "send to rank n");
    MP_CHECK(kccl_bootstrap_recv(bs, next, 0x80000000u, b, 4) == KCCL_ERR_INVALID_ARG,
             "reserved tag");
    MP_CHECK(kccl_bootstrap_broadcast(bs, b, 4, n) == KCCL_ERR_INVALID_ARG, "broadcast root n");
    MP_CHECK(kccl_bootstrap_all_gather(bs, NULL, 4) == KCCL_ERR_INVALID_ARG, "NULL all-gather");
    MP_CHECK_OK(kccl_bootstrap_barrier(bs));
    /* 8 MiB both ways at once, between pairs (0,1), (2,3). */
    int partner = r ^ 1;
    if (r < 4 && partner < n && big_exchange(bs, partner))
        return 1;
    MP_CHECK_OK(kccl_bootstrap_barrier(bs));
    return 0;
}

/* ------------------------------------------------------- table queries */

static int check_table(kccl_bootstrap_t bs, const kccl_unique_id_t *id)
{
    int n = kccl_bootstrap_size(bs), r = kccl_bootstrap_rank(bs);
    char addr[64], root[64];
    unsigned *ports = calloc((size_t)n, sizeof(*ports));
    MP_CHECK(ports != NULL, "out of memory");
    MP_CHECK_OK(kccl_unique_id_address(id, root, sizeof(root)));
    for (int p = 0; p < n; p++) {
        /* Host hashes: equal exactly when KCCL_HOST_ID is. */
        uint64_t hp = kccl_bootstrap_host_hash(bs, p);
        MP_CHECK(hp == kccl_host_hash(host_of(p)), "rank %d's host hash", p);
        MP_CHECK((hp == kccl_bootstrap_host_hash(bs, r)) == (p % 2 == r % 2),
                 "host hash of %d vs %d", p, r);
        /* Addresses: "127.0.0.1:port", one port per rank, none the root's. */
        MP_CHECK_OK(kccl_bootstrap_peer_address(bs, p, addr, sizeof(addr)));
        int used = 0;
        char ip[32];
        MP_CHECK(sscanf(addr, "%31[0-9.]:%u%n", ip, &ports[p], &used) == 2 &&
                     (size_t)used == strlen(addr) && strcmp(ip, "127.0.0.1") == 0 && ports[p] > 0 &&
                     ports[p] < 65536,
                 "rank %d's address '%s' is not 127.0.0.1:port", p, addr);
        MP_CHECK(strcmp(addr, root) != 0, "rank %d's peer address is the root's %s", p, root);
        for (int q = 0; q < p; q++)
            MP_CHECK(ports[q] != ports[p], "ranks %d and %d share port %u", q, p, ports[p]);
    }
    free(ports);
    MP_CHECK(kccl_bootstrap_host_hash(bs, n) == 0 && kccl_bootstrap_host_hash(bs, -1) == 0,
             "host hash of a bad rank");
    MP_CHECK(kccl_bootstrap_peer_address(bs, n, addr, sizeof(addr)) == KCCL_ERR_INVALID_ARG,
             "peer address of rank n");
    MP_CHECK(strstr(kccl_last_error(), "bad rank") != NULL, "%s", kccl_last_error());
    /* Every rank sees the same table. */
    size_t slot = 64;
    char *all = calloc((size_t)n, slot);
    MP_CHECK(all != NULL, "out of memory");
    MP_CHECK_OK(kccl_bootstrap_peer_address(bs, r, all + (size_t)r * slot, slot));
    MP_CHECK_OK(kccl_bootstrap_all_gather(bs, all, slot));
    for (int p = 0; p < n; p++) {
        MP_CHECK_OK(kccl_bootstrap_peer_address(bs, p, addr, sizeof(addr)));
        MP_CHECK(strcmp(addr, all + (size_t)p * slot) == 0, "rank %d: %s here, %s there", p, addr,
                 all + (size_t)p * slot);
    }
    free(all);
    return 0;
}

/* ------------------------------------------------------------ the rank */

static int group_rank(mp_t *mp, int r, void *arg)
{
    group_t *g = arg;
    (void)mp;
    setenv("KCCL_HOST_ID", host_of(r), 1);
    char *times = mp_self()->text;
    for (int a = 0; a < N_ALGOS; a++) {
        kccl_bootstrap_opts_t o = g->opts;
        kccl_bootstrap_t bs = NULL;
        int64_t t0 = mp_now_ms(), t1, t2;
        o.algo = algos[a];
        o.host_id[0] = '\0'; /* from KCCL_HOST_ID */
        kccl_status_t st = kccl_bootstrap_create(&g->ids[a], r, g->nranks, &o, &bs);
        MP_CHECK(st == KCCL_OK, "create (%s): %s: %s", algo_names[a], kccl_status_name(st),
                 kccl_last_error());
        MP_CHECK(kccl_bootstrap_rank(bs) == r && kccl_bootstrap_size(bs) == g->nranks, "rank/size");
        t1 = mp_now_ms();
        if (run_collectives(bs, a))
            return 1;
        if (algos[a] == KCCL_BOOTSTRAP_ALGO_AUTO && (run_p2p(bs) || check_table(bs, &g->ids[a])))
            return 1;
        /* Collectives still work after all that point-to-point traffic. */
        if (algos[a] == KCCL_BOOTSTRAP_ALGO_AUTO && g->nranks <= 8 && run_collectives(bs, a + 5))
            return 1;
        t2 = mp_now_ms();
        kccl_bootstrap_destroy(bs);
        mp_self()->progress = a + 1;
        /* Rank 0 tells where the time went: create / collectives / destroy, in ms. */
        size_t used = strlen(times);
        snprintf(times + used, MP_TEXT - used, "%s%s %lld/%lld/%lld", used ? ", " : "",
                 algo_names[a], (long long)(t1 - t0), (long long)(t2 - t1),
                 (long long)(mp_now_ms() - t2));
    }
    return 0;
}

static void run_group(int n)
{
    long max = mp_env_long("KCCL_TEST_MAX_RANKS", DEFAULT_MAX_RANKS, 1, MP_MAX_PROCS);
    if (n > max) {
        print_message("skipped: %d ranks > KCCL_TEST_MAX_RANKS=%ld\n", n, max);
        skip();
    }
    static group_t group; /* static: a failed assertion must not leak it into later procs */
    group_t *g = &group;
    memset(g, 0, sizeof(*g));
    g->nranks = n;
    mp_test_opts(&g->opts, (5000 + 40 * (int64_t)n) * KCCL_ITEST_SLOWDOWN);
    for (int a = 0; a < N_ALGOS; a++)
        mp_make_id(&g->opts, &g->ids[a]);
    char name[32];
    snprintf(name, sizeof(name), "group%d", n);
    mp_opts_t mo = {.name = name,
                    .nprocs = n,
                    .deadline_ms = (30000 + 150 * (int64_t)n) * KCCL_ITEST_SLOWDOWN,
                    .fn = group_rank,
                    .arg = g,
                    .ids = g->ids,
                    .nids = N_ALGOS};
    int64_t t0 = mp_now_ms();
    mp_t *mp = mp_start(&mo);
    mp_wait_all(mp);
    mp_assert_all_ok(mp);
    print_message("%d ranks: 3 bootstraps with all collectives in %.2f s; 8 MiB both ways "
                  "took %lld ms; rank 0 create/collectives/destroy ms: %s\n",
                  n, (double)(mp_now_ms() - t0) / 1000, (long long)mp_slot(mp, 0)->elapsed_ms,
                  mp_slot(mp, 0)->text);
    mp_free(mp);
}

static void test_group_1(void **state)
{
    (void)state;
    run_group(1);
}
static void test_group_2(void **state)
{
    (void)state;
    run_group(2);
}
static void test_group_3(void **state)
{
    (void)state;
    run_group(3);
}
static void test_group_8(void **state)
{
    (void)state;
    run_group(8);
}
static void test_group_64(void **state)
{
    (void)state;
    run_group(64);
}
static void test_group_256(void **state)
{
    (void)state;
    run_group(256);
}

/* ---------------------------------------------------------------- abort */

#define ABORT_AFTER_MS   300
#define ABORT_TIMEOUT_MS 5000

static void *abort_later(void *arg)
{
    mp_sleep_ms(ABORT_AFTER_MS);
    kccl_bootstrap_abort(arg);
    return NULL;
}

static int abort_rank(mp_t *mp, int r, void *arg)
{
    group_t *g = arg;
    kccl_bootstrap_t bs;
    uint8_t b[8];
    (void)mp;
    MP_CHECK_OK(kccl_bootstrap_create(&g->ids[0], r, 2, &g->opts, &bs));
    MP_CHECK_OK(kccl_bootstrap_barrier(bs));
    int64_t t0 = mp_now_ms();
    kccl_status_t st;
    if (r == 1) {
        /* Nobody sends tag 42: only the abort can end this recv early. */
        pthread_t th;
        MP_CHECK(pthread_create(&th, NULL, abort_later, bs) == 0, "pthread_create");
        st = kccl_bootstrap_recv(bs, 0, 42, b, sizeof(b));
        pthread_join(th, NULL);
        mp_self()->elapsed_ms = mp_now_ms() - t0;
        MP_CHECK(st == KCCL_ERR_ABORTED, "recv returned %s: %s", kccl_status_name(st),
                 kccl_last_error());
        MP_CHECK(strstr(kccl_last_error(), "aborted") != NULL, "%s", kccl_last_error());
        MP_CHECK(mp_self()->elapsed_ms >= ABORT_AFTER_MS - 20 &&
                     mp_self()->elapsed_ms < ABORT_AFTER_MS + 1500,
                 "recv ended after %lld ms", (long long)mp_self()->elapsed_ms);
        /* Sticky: later calls fail the same way, at once. */
        MP_CHECK(kccl_bootstrap_barrier(bs) == KCCL_ERR_ABORTED, "barrier after abort");
    } else {
        /* The aborted rank tells its peers, so this recv ends early too. */
        st = kccl_bootstrap_recv(bs, 1, 42, b, sizeof(b));
        mp_self()->elapsed_ms = mp_now_ms() - t0;
        MP_CHECK(st == KCCL_ERR_REMOTE, "peer's recv returned %s: %s", kccl_status_name(st),
                 kccl_last_error());
        MP_CHECK(strstr(kccl_last_error(), "rank 1") != NULL, "%s", kccl_last_error());
        MP_CHECK(mp_self()->elapsed_ms < ABORT_AFTER_MS + 2000, "peer's recv ended after %lld ms",
                 (long long)mp_self()->elapsed_ms);
    }
    snprintf(mp_self()->err, sizeof(mp_self()->err), "%s", kccl_last_error());
    kccl_bootstrap_abort(NULL); /* harmless */
    kccl_bootstrap_destroy(bs);
    return 0;
}

static void test_abort_from_thread(void **state)
{
    (void)state;
    group_t g;
    memset(&g, 0, sizeof(g));
    mp_test_opts(&g.opts, ABORT_TIMEOUT_MS);
    mp_make_id(&g.opts, &g.ids[0]);
    mp_opts_t mo = {.name = "abort",
                    .nprocs = 2,
                    .deadline_ms = 15000,
                    .fn = abort_rank,
                    .arg = &g,
                    .ids = g.ids,
                    .nids = 1};
    mp_t *mp = mp_start(&mo);
    mp_wait_all(mp);
    mp_assert_all_ok(mp);
    for (int i = 0; i < 2; i++)
        print_message("rank %d: %lld ms: %s\n", i, (long long)mp_slot(mp, i)->elapsed_ms,
                      mp_slot(mp, i)->err);
    mp_free(mp);
}

/* ------------------------------------------------------ send, destroy */

/*
 * A rank that sends and then destroys at once has done nothing wrong: send
 * returned "once the bytes are with the kernel", and destroy "flushes what
 * is queued". The receiver must get every byte. Rank 1 is a busy receiver
 * (it starts its recv late), so the sender's last bytes are still on their
 * way when its BYE goes out on the other connection of the pair.
 */
#define FLAG_PEER_FAILED 0

static int send_destroy_iter(mp_t *mp, int r, const kccl_unique_id_t *id,
                             const kccl_bootstrap_opts_t *o, size_t len, int salt,
                             int shrink_rcvbuf)
{
    kccl_bootstrap_t bs;
    uint8_t *buf = malloc(len);
    MP_CHECK(buf != NULL, "out of memory");
    MP_CHECK_OK(kccl_bootstrap_create(id, r, 2, o, &bs));
    MP_CHECK_OK(kccl_bootstrap_barrier(bs)); /* both connections of the pair are up */
    if (r == 0) {
        for (size_t i = 0; i < len; i++)
            buf[i] = pattern(0, salt, i);
        MP_CHECK_OK(kccl_bootstrap_send(bs, 1, 9, buf, len));
    } else {
        if (shrink_rcvbuf) {
            /* Emulate a slow or congested path for the data only: a small
             * receive buffer on the connection rank 0 sends on (internal
             * struct, for the test's eyes only). The BYE rank 0 writes on the
             * other connection then arrives first, as it may between hosts. */
            int small = 16384;
            kccl_bs_t *in = bs;
            MP_CHECK(in->recv_conn[0] != NULL && in->recv_conn[0]->fd >= 0, "no connection");
            MP_CHECK(
                setsockopt(in->recv_conn[0]->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)) == 0,
                "SO_RCVBUF");
        } else {
            mp_sleep_ms(100);
        }
        kccl_status_t st = kccl_bootstrap_recv(bs, 0, 9, buf, len);
        if (st != KCCL_OK)
            mp_flag_set(mp, FLAG_PEER_FAILED, 1); /* rank 0 stops instead of timing out */
        MP_CHECK(st == KCCL_OK, "recv of %zu bytes that rank 0 sent before it destroyed: %s: %s",
                 len, kccl_status_name(st), kccl_last_error());
        for (size_t i = 0; i < len; i++)
            MP_CHECK(buf[i] == pattern(0, salt, i), "byte %zu of %zu", i, len);
    }
    kccl_bootstrap_destroy(bs);
    free(buf);
    return 0;
}

static const size_t sd_sizes[] = {1024, (size_t)8 << 20, (size_t)32 << 20};

static int send_destroy_rank(mp_t *mp, int r, void *arg)
{
    group_t *g = arg;
    for (size_t k = 0; k < KCCL_TEST_ARRAY_LEN(sd_sizes); k++)
        if (mp_flag_get(mp, FLAG_PEER_FAILED) ||
            send_destroy_iter(mp, r, &g->ids[k], &g->opts, sd_sizes[k], (int)k, 0))
            return r == 0 ? 0 : 1;
    return 0;
}

static int slow_link_rank(mp_t *mp, int r, void *arg)
{
    group_t *g = arg;
    for (int k = 0; k < MAX_IDS; k++) /* the race is likely, not certain: try a few times */
        if (mp_flag_get(mp, FLAG_PEER_FAILED) ||
            send_destroy_iter(mp, r, &g->ids[k], &g->opts, 65536, k, 1))
            return r == 0 ? 0 : 1;
    return 0;
}

static void run_send_destroy(const char *name, mp_fn fn)
{
    static group_t g;
    memset(&g, 0, sizeof(g));
    mp_test_opts(&g.opts, 5000 * KCCL_ITEST_SLOWDOWN);
    for (int k = 0; k < MAX_IDS; k++)
        mp_make_id(&g.opts, &g.ids[k]);
    mp_opts_t mo = {.name = name,
                    .nprocs = 2,
                    .deadline_ms = 30000 * KCCL_ITEST_SLOWDOWN,
                    .fn = fn,
                    .arg = &g,
                    .ids = g.ids,
                    .nids = MAX_IDS};
    mp_t *mp = mp_start(&mo);
    mp_wait_all(mp);
    mp_assert_all_ok(mp);
    mp_free(mp);
}

static void test_send_then_destroy(void **state)
{
    (void)state;
    run_send_destroy("send_destroy", send_destroy_rank);
}

/*
 * Regression: a peer's BYE (or close) may arrive on our outbound connection
 * to it before its data arrives on the other connection (TCP orders bytes
 * within one connection, not across two). A recv must not give up then: BYE
 * carries the number of DATA frames sent, and only the data stream's own end
 * is final. The slow link (a tiny SO_RCVBUF) makes the race certain.
 */
static void test_send_then_destroy_slow_link(void **state)
{
    (void)state;
    run_send_destroy("send_destroy_slow", slow_link_rank);
}

/* A recv from a rank that destroyed without sending fails at once, naming it. */
static int early_destroy_rank(mp_t *mp, int r, void *arg)
{
    group_t *g = arg;
    kccl_bootstrap_t bs;
    uint8_t b[16];
    (void)mp;
    MP_CHECK_OK(kccl_bootstrap_create(&g->ids[0], r, 2, &g->opts, &bs));
    MP_CHECK_OK(kccl_bootstrap_barrier(bs));
    if (r == 1) {
        int64_t t0 = mp_now_ms();
        kccl_status_t st = kccl_bootstrap_recv(bs, 0, 3, b, sizeof(b));
        mp_self()->elapsed_ms = mp_now_ms() - t0;
        snprintf(mp_self()->err, sizeof(mp_self()->err), "%s", kccl_last_error());
        MP_CHECK(st == KCCL_ERR_REMOTE, "recv from a destroyed rank: %s: %s", kccl_status_name(st),
                 kccl_last_error());
        MP_CHECK(strstr(kccl_last_error(), "rank 0") != NULL, "%s", kccl_last_error());
        MP_CHECK(mp_self()->elapsed_ms < 2000, "took %lld ms", (long long)mp_self()->elapsed_ms);
    }
    kccl_bootstrap_destroy(bs);
    return 0;
}

static void test_recv_from_destroyed_rank(void **state)
{
    (void)state;
    static group_t g;
    memset(&g, 0, sizeof(g));
    mp_test_opts(&g.opts, 5000 * KCCL_ITEST_SLOWDOWN);
    mp_make_id(&g.opts, &g.ids[0]);
    mp_opts_t mo = {.name = "early_destroy",
                    .nprocs = 2,
                    .deadline_ms = 20000 * KCCL_ITEST_SLOWDOWN,
                    .fn = early_destroy_rank,
                    .arg = &g,
                    .ids = g.ids,
                    .nids = 1};
    mp_t *mp = mp_start(&mo);
    mp_wait_all(mp);
    mp_assert_all_ok(mp);
    print_message("rank 1: %lld ms: %s\n", (long long)mp_slot(mp, 1)->elapsed_ms,
                  mp_slot(mp, 1)->err);
    mp_free(mp);
}

/* ------------------------------------------ UBSan regression tests */

/*
 * The all-gather accepts buf == NULL with bytes == 0 (it refuses NULL only
 * when bytes != 0). Bruck once called memcpy(tmp, NULL, 0) there, which
 * UBSan builds abort on (fixed in 745f072).
 */
static int null_zero_rank(mp_t *mp, int r, void *arg)
{
    group_t *g = arg;
    kccl_bootstrap_t bs;
    (void)mp;
    for (int a = 0; a < N_ALGOS; a++) {
        kccl_bootstrap_opts_t o = g->opts;
        o.algo = algos[a];
        MP_CHECK_OK(kccl_bootstrap_create(&g->ids[a], r, g->nranks, &o, &bs));
        MP_CHECK_OK(kccl_bootstrap_all_gather(bs, NULL, 0));
        MP_CHECK_OK(kccl_bootstrap_barrier(bs));
        kccl_bootstrap_destroy(bs);
    }
    return 0;
}

/*
 * A frame of 4 KiB or more is finished by conn_read() calling
 * conn_parse(bs, c, NULL, 0), which once ran memcpy(dst, NULL, 0): fatal
 * under UBSan for every large frame (fixed in 745f072).
 */
static int big_frame_rank(mp_t *mp, int r, void *arg)
{
    group_t *g = arg;
    kccl_bootstrap_t bs;
    uint8_t buf[4096];
    (void)mp;
    MP_CHECK_OK(kccl_bootstrap_create(&g->ids[0], r, 2, &g->opts, &bs));
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = pattern(r, 5, i);
    if (r == 0)
        MP_CHECK_OK(kccl_bootstrap_send(bs, 1, 4, buf, sizeof(buf)));
    else
        MP_CHECK_OK(kccl_bootstrap_recv(bs, 0, 4, buf, sizeof(buf)));
    for (size_t i = 0; i < sizeof(buf); i++)
        MP_CHECK(buf[i] == pattern(0, 5, i), "byte %zu", i);
    kccl_bootstrap_destroy(bs);
    return 0;
}

static void run_small(const char *name, int n, mp_fn fn)
{
    static group_t g;
    memset(&g, 0, sizeof(g));
    g.nranks = n;
    mp_test_opts(&g.opts, 5000 * KCCL_ITEST_SLOWDOWN);
    for (int k = 0; k < N_ALGOS; k++)
        mp_make_id(&g.opts, &g.ids[k]);
    mp_opts_t mo = {.name = name,
                    .nprocs = n,
                    .deadline_ms = 20000 * KCCL_ITEST_SLOWDOWN,
                    .fn = fn,
                    .arg = &g,
                    .ids = g.ids,
                    .nids = N_ALGOS};
    mp_t *mp = mp_start(&mo);
    mp_wait_all(mp);
    mp_assert_all_ok(mp);
    mp_free(mp);
}

static void test_all_gather_zero_bytes_no_buffer(void **state)
{
    (void)state;
    run_small("null_zero", 3, null_zero_rank);
}

static void test_frame_of_4k(void **state)
{
    (void)state;
    run_small("frame_4k", 2, big_frame_rank);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_group_1, mp_cleanup_all),
        cmocka_unit_test_teardown(test_group_2, mp_cleanup_all),
        cmocka_unit_test_teardown(test_group_3, mp_cleanup_all),
        cmocka_unit_test_teardown(test_group_8, mp_cleanup_all),
        cmocka_unit_test_teardown(test_abort_from_thread, mp_cleanup_all),
        cmocka_unit_test_teardown(test_all_gather_zero_bytes_no_buffer, mp_cleanup_all),
        cmocka_unit_test_teardown(test_frame_of_4k, mp_cleanup_all),
        cmocka_unit_test_teardown(test_recv_from_destroyed_rank, mp_cleanup_all),
        cmocka_unit_test_teardown(test_send_then_destroy, mp_cleanup_all),
        cmocka_unit_test_teardown(test_send_then_destroy_slow_link, mp_cleanup_all),
        cmocka_unit_test_teardown(test_group_64, mp_cleanup_all),
        cmocka_unit_test_teardown(test_group_256, mp_cleanup_all),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests_name("bootstrap_mp", tests, NULL, NULL);
}
