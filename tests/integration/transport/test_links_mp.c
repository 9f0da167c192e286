/*
 * test_links_mp.c - when links connect (KCCL_LINKS), between real processes.
 *
 * lazy: nothing connects at init; a ring of 8 ranks asks for its neighbours
 * in the order that deadlocks a blocking pairwise set-up (next, then prev),
 * moves 1 MiB of random data around the ring and ends with exactly 2 links
 * per rank; a rank whose peer never asks for their link fails by the deadline
 * with a message naming the peer and the remedy, and the group lives on.
 * eager: every pair is connected by the end of init. auto: the node's pairs
 * when the node has at most KCCL_LINKS_EAGER_MAX ranks, none otherwise.
 */
#include "tcp_common.h"
#include "transport/transport.h"

#define RING_BYTES ((size_t)1 << 20)

static int connected(kccl_comm_t comm)
{
    return kccl_transport_connected_links(comm);
}

static int lazy_ring_proc(mp_t *mp, int r, void *arg)
{
    (void)mp;
    tt_group_t *g = arg;
    int n = g->nranks, next = (r + 1) % n, prev = (r + n - 1) % n;
    kccl_comm_t comm;
    kccl_mem_t buf, src;
    kccl_rmem_t dst;
    setenv("KCCL_TRANSPORT", "tcp", 1);
    setenv("KCCL_LINKS", "lazy", 1);
    MP_CHECK_OK(kccl_comm_init_rank(&g->id, r, n, &g->opts, &comm));
    MP_CHECK(connected(comm) == 0, "%d links connected at init with KCCL_LINKS=lazy",
             connected(comm));
    kccl_link_t to_next = kccl_comm_link(comm, next);
    kccl_link_t to_prev = kccl_comm_link(comm, prev);
    MP_CHECK(to_next != NULL && to_prev != NULL, "links: %s", kccl_last_error());
    MP_CHECK(connected(comm) == 2, "%d links connected, want 2", connected(comm));
    /* buf: 1 MiB that prev writes + an 8-byte counter it signals. */
    MP_CHECK_OK(kccl_mem_alloc(comm, RING_BYTES + 64, KCCL_MEM_HOST, &buf));
    MP_CHECK_OK(kccl_mem_alloc(comm, RING_BYTES, KCCL_MEM_HOST, &src));
    MP_CHECK_OK(kccl_mem_send(comm, buf, prev));
    MP_CHECK_OK(kccl_mem_recv(comm, next, &dst));
    tt_fill(kccl_mem_ptr(src), RING_BYTES, (uint64_t)r + 77);
    MP_CHECK_OK(kccl_link_put(to_next, dst, 0, src, 0, RING_BYTES));
    MP_CHECK_OK(kccl_link_signal(to_next, dst, RING_BYTES));
    MP_CHECK_OK(kccl_link_flush(to_next, -1));
    volatile uint64_t *ctr = (uint64_t *)((uint8_t *)kccl_mem_ptr(buf) + RING_BYTES);
    int64_t end = kccl_tp_now_ms() + TT_TIMEOUT_MS;
    while (__atomic_load_n(ctr, __ATOMIC_ACQUIRE) < 1 && kccl_tp_now_ms() < end)
        ;
    MP_CHECK(*ctr == 1, "no signal from rank %d", prev);
    long bad = tt_check(kccl_mem_ptr(buf), RING_BYTES, (uint64_t)prev + 77);
    MP_CHECK(bad < 0, "byte %ld from rank %d differs", bad, prev);
    MP_CHECK(connected(comm) == 2, "%d links connected at the end, want 2", connected(comm));
    MP_CHECK_OK(kccl_bootstrap_barrier(kccl_comm_bootstrap(comm)));
    kccl_rmem_release(dst);
    kccl_mem_deregister(src);
    kccl_mem_deregister(buf);
    kccl_comm_destroy(comm);
    return 0;
}

static void test_lazy_ring_8(void **state)
{
    (void)state;
    tt_group_t g;
    tt_group_init(&g, 8);
    tt_run(&g, "lazy_ring_8", lazy_ring_proc, 60000);
}

/* Rank 1 asks for its link to rank 0, which never asks back. */
static int never_dialled_proc(mp_t *mp, int r, void *arg)
{
    tt_group_t *g = arg;
    kccl_comm_t comm;
    setenv("KCCL_TRANSPORT", "tcp", 1);
    setenv("KCCL_LINKS", "lazy", 1);
    MP_CHECK_OK(kccl_comm_init_rank(&g->id, r, 2, &g->opts, &comm));
    if (r == 1) {
        int64_t t0 = kccl_tp_now_ms();
        kccl_link_t l = kccl_comm_link(comm, 0);
        int64_t took = kccl_tp_now_ms() - t0;
        MP_CHECK(l == NULL, "a link to a rank that never asked for it");
        MP_CHECK(strstr(kccl_last_error(), "rank 0 never dialled") != NULL &&
                     strstr(kccl_last_error(), "same pairwise call") != NULL,
                 "error: %s", kccl_last_error());
        MP_CHECK(took >= g->opts.timeout_ms - 100 && took < g->opts.timeout_ms + 3000,
                 "gave up after %lld ms (deadline %lld ms)", (long long)took,
                 (long long)g->opts.timeout_ms);
        mp_flag_set(mp, 0, 1);
    } else {
        /* Rank 1 spends a whole deadline on its link; join the barrier after that. */
        MP_CHECK(mp_flag_wait(mp, 0, 1, 20000) == 0, "rank 1 never gave up on its link");
    }
    /* The bootstrap is unharmed. */
    MP_CHECK_OK(kccl_bootstrap_barrier(kccl_comm_bootstrap(comm)));
    kccl_comm_destroy(comm);
    return 0;
}

static void test_never_dialled(void **state)
{
    (void)state;
    tt_group_t g;
    tt_group_init(&g, 2);
    g.opts.timeout_ms = 1500;
    tt_run(&g, "never_dialled", never_dialled_proc, 30000);
}

typedef struct {
    tt_group_t g;
    const char *links, *eager_max;
    int want;
} links_mode_t;

static int mode_proc(mp_t *mp, int r, void *arg)
{
    (void)mp;
    links_mode_t *m = arg;
    kccl_comm_t comm;
    setenv("KCCL_TRANSPORT", "tcp", 1);
    setenv("KCCL_LINKS", m->links, 1);
    setenv("KCCL_LINKS_EAGER_MAX", m->eager_max, 1);
    MP_CHECK_OK(kccl_comm_init_rank(&m->g.id, r, m->g.nranks, &m->g.opts, &comm));
    MP_CHECK(connected(comm) == m->want, "KCCL_LINKS=%s (eager max %s): %d links at init, want %d",
             m->links, m->eager_max, connected(comm), m->want);
    MP_CHECK_OK(kccl_bootstrap_barrier(kccl_comm_bootstrap(comm)));
    kccl_comm_destroy(comm);
    return 0;
}

static void run_mode(const char *links, const char *eager_max, int want)
{
    links_mode_t m = {.links = links, .eager_max = eager_max, .want = want};
    tt_group_init(&m.g, 4);
    mp_opts_t mo = {.name = links,
                    .nprocs = 4,
                    .deadline_ms = 30000,
                    .fn = mode_proc,
                    .arg = &m,
                    .ids = &m.g.id,
                    .nids = 1,
                    .root_proc = 0};
    mp_t *mp = mp_start(&mo);
    mp_wait_all(mp);
    mp_assert_all_ok(mp);
    mp_free(mp);
}

static void test_modes(void **state)
{
    (void)state;
    run_mode("eager", "16", 3); /* every pair */
    run_mode("auto", "16", 3);  /* one host, 4 <= 16 ranks: the node's pairs */
    run_mode("auto", "2", 0);   /* a crowded node: all on demand */
    run_mode("lazy", "16", 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_lazy_ring_8, mp_cleanup_all),
        cmocka_unit_test_teardown(test_never_dialled, mp_cleanup_all),
        cmocka_unit_test_teardown(test_modes, mp_cleanup_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
