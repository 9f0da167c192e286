/*
 * test_tcp_mp.c - the TCP transport between real processes on loopback.
 *
 * Put/signal/flush around a ring of 2 and 4 ranks over many sizes (1 byte to
 * 4 MiB + 3, unaligned offsets) with random data checked byte for byte; the
 * same with device memory through the fake GPU table (pinned staging in
 * small chunks); host semaphores (ping-pong, counts); links chosen as tcp;
 * out-of-range puts and bad handles refused.
 */
#include "fake_gpu.h"
#include "tcp_common.h"

static const size_t sizes[] = {1, 7, 8, 63, 4096, 65537, 1 << 20, (4 << 20) + 3};
#define MAXSZ ((size_t)(4 << 20) + 64)

typedef struct {
    kccl_comm_t comm;
    int rank, n, next, prev;
    kccl_mem_t send, recv;
    kccl_rmem_t *peers;
    kccl_host_sem_t to_next, from_prev;
    void *dev[2]; /* fake device allocations behind send/recv */
} ring_t;

/* Host buffers come from kccl_mem_alloc; device ones from the fake GPU, registered (the
 * library's own device allocator needs real CUDA). */
static kccl_status_t ring_buf(ring_t *x, kccl_mem_kind_t kind, int i, kccl_mem_t *out)
{
    if (kind == KCCL_MEM_HOST)
        return kccl_mem_alloc(x->comm, MAXSZ, kind, out);
    kccl_status_t st = fake_dev_alloc(&x->dev[i], MAXSZ, 0);
    return st != KCCL_OK ? st : kccl_mem_register(x->comm, x->dev[i], MAXSZ, kind, out);
}

static int ring_open(tt_group_t *g, int r, ring_t *x, kccl_mem_kind_t kind)
{
    memset(x, 0, sizeof(*x));
    x->rank = r;
    x->n = g->nranks;
    x->next = (r + 1) % x->n;
    x->prev = (r + x->n - 1) % x->n;
    MP_CHECK_OK(kccl_comm_init_rank(&g->id, r, x->n, &g->opts, &x->comm));
    for (int p = 0; p < x->n; p++) {
        kccl_link_t l = kccl_comm_link(x->comm, p);
        MP_CHECK((p == r) == (l == NULL), "link to %d", p);
        MP_CHECK(l == NULL || strcmp(kccl_link_transport(l), "tcp") == 0, "link %d is %s", p,
                 kccl_link_transport(l));
    }
    MP_CHECK_OK(ring_buf(x, kind, 0, &x->send));
    MP_CHECK_OK(ring_buf(x, kind, 1, &x->recv));
    x->peers = calloc((size_t)x->n, sizeof(*x->peers));
    MP_CHECK_OK(kccl_mem_exchange(x->comm, x->recv, x->peers));
    MP_CHECK(x->peers[r] == NULL && kccl_rmem_size(x->peers[x->next]) == MAXSZ, "exchange");
    /* Pairwise creation blocks until the peer joins, so go through peers in increasing rank
     * order (a consistent global order of pairs): never next-then-prev around a ring. */
    if (x->n == 2) {
        MP_CHECK_OK(kccl_host_sem_create(x->comm, x->next, &x->to_next));
        x->from_prev = x->to_next;
    } else if (x->next < x->prev) {
        MP_CHECK_OK(kccl_host_sem_create(x->comm, x->next, &x->to_next));
        MP_CHECK_OK(kccl_host_sem_create(x->comm, x->prev, &x->from_prev));
    } else {
        MP_CHECK_OK(kccl_host_sem_create(x->comm, x->prev, &x->from_prev));
        MP_CHECK_OK(kccl_host_sem_create(x->comm, x->next, &x->to_next));
    }
    return 0;
}

static void ring_close(ring_t *x)
{
    if (x->from_prev != x->to_next)
        kccl_host_sem_destroy(x->from_prev);
    kccl_host_sem_destroy(x->to_next);
    for (int p = 0; p < x->n; p++)
        kccl_rmem_release(x->peers[p]);
    free(x->peers);
    kccl_mem_deregister(x->send);
    kccl_mem_deregister(x->recv);
    fake_dev_free(x->dev[0], 0);
    fake_dev_free(x->dev[1], 0);
    kccl_comm_destroy(x->comm);
}

/* Host view of a buffer (the fake GPU's device memory is host memory too). */
static uint8_t *bytes_of(kccl_mem_t m)
{
    return kccl_mem_ptr(m);
}

static int ring_rounds(ring_t *x)
{
    kccl_link_t next = kccl_comm_link(x->comm, x->next);
    kccl_bootstrap_t bs = kccl_comm_bootstrap(x->comm);
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(sizes); i++) {
        size_t n = sizes[i], off = (i * 13) % 64, soff = (i * 7) % 32;
        tt_fill(bytes_of(x->send) + soff, n, (uint64_t)x->rank * 1000 + i);
        MP_CHECK_OK(kccl_link_put(next, x->peers[x->next], off, x->send, soff, n));
        MP_CHECK_OK(kccl_host_sem_signal(x->to_next));
        MP_CHECK_OK(kccl_link_flush(next, -1));
        MP_CHECK_OK(kccl_host_sem_wait(x->from_prev, -1));
        long bad = tt_check(bytes_of(x->recv) + off, n, (uint64_t)x->prev * 1000 + i);
        MP_CHECK(bad < 0, "size %zu from rank %d: byte %ld differs", n, x->prev, bad);
        MP_CHECK(kccl_host_sem_value(x->from_prev) == i + 1, "semaphore value %llu",
                 (unsigned long long)kccl_host_sem_value(x->from_prev));
        MP_CHECK_OK(kccl_bootstrap_barrier(bs));
    }
    return 0;
}

static int ring_proc(mp_t *mp, int r, void *arg)
{
    (void)mp;
    ring_t x;
    setenv("KCCL_TRANSPORT", "tcp", 1);
    if (ring_open(arg, r, &x, KCCL_MEM_HOST) || ring_rounds(&x))
        return 1;
    ring_close(&x);
    return 0;
}

static void test_tcp_ring_2(void **state)
{
    (void)state;
    tt_group_t g;
    tt_group_init(&g, 2);
    tt_run(&g, "tcp_ring_2", ring_proc, 60000);
}

static void test_tcp_ring_4(void **state)
{
    (void)state;
    tt_group_t g;
    tt_group_init(&g, 4);
    tt_run(&g, "tcp_ring_4", ring_proc, 60000);
}

/* Device memory on both ends, staged through 4 KiB chunks. */
static int device_proc(mp_t *mp, int r, void *arg)
{
    (void)mp;
    ring_t x;
    kccl_gpu_set_ops(&fake_gpu_ops);
    setenv("KCCL_TRANSPORT", "tcp", 1);
    setenv("KCCL_TCP_CHUNK", "4096", 1);
    kccl_mem_t extra;
    if (ring_open(arg, r, &x, KCCL_MEM_DEVICE))
        return 1;
    MP_CHECK(kccl_mem_kind(x.recv) == KCCL_MEM_DEVICE, "device kind");
    /* A registered (not allocated) device buffer works as well. */
    void *d;
    MP_CHECK_OK(fake_dev_alloc(&d, 4096, 0));
    MP_CHECK_OK(kccl_mem_register(x.comm, d, 4096, KCCL_MEM_DEVICE, &extra));
    /* Host memory registered as device memory is refused. */
    char host[64];
    kccl_mem_t bad;
    MP_CHECK(kccl_mem_register(x.comm, host, sizeof(host), KCCL_MEM_DEVICE, &bad) ==
                 KCCL_ERR_INVALID_ARG,
             "host memory passed as device memory");
    if (ring_rounds(&x))
        return 1;
    MP_CHECK(__atomic_load_n(&fake_gpu.copies, __ATOMIC_RELAXED) > 100, "only %ld staging copies",
             fake_gpu.copies);
    kccl_mem_deregister(extra);
    fake_dev_free(d, 0);
    ring_close(&x);
    kccl_gpu_set_ops(NULL);
    return 0;
}

static void test_tcp_device_staging(void **state)
{
    (void)state;
    tt_group_t g;
    tt_group_init(&g, 2);
    tt_run(&g, "tcp_device", device_proc, 60000);
}

/* Ping-pong on one semaphore pair, then many signals in a burst. */
static int sem_proc(mp_t *mp, int r, void *arg)
{
    (void)mp;
    tt_group_t *g = arg;
    kccl_comm_t comm;
    kccl_host_sem_t s;
    MP_CHECK_OK(kccl_comm_init_rank(&g->id, r, 2, &g->opts, &comm));
    MP_CHECK_OK(kccl_host_sem_create(comm, 1 - r, &s));
    for (int i = 0; i < 500; i++) {
        if (r == 0) {
            MP_CHECK_OK(kccl_host_sem_signal(s));
            MP_CHECK_OK(kccl_host_sem_wait(s, -1));
        } else {
            MP_CHECK_OK(kccl_host_sem_wait(s, -1));
            MP_CHECK_OK(kccl_host_sem_signal(s));
        }
    }
    for (int i = 0; i < 1000; i++)
        MP_CHECK_OK(kccl_host_sem_signal(s));
    for (int i = 0; i < 1000; i++)
        MP_CHECK_OK(kccl_host_sem_wait(s, -1));
    MP_CHECK(kccl_host_sem_value(s) == 1500, "value %llu",
             (unsigned long long)kccl_host_sem_value(s));
    /* Nothing more will come: a short wait times out, naming the peer. */
    int64_t t0 = mp_now_ms();
    MP_CHECK(kccl_host_sem_wait(s, 200) == KCCL_ERR_TIMED_OUT, "wait should time out");
    int64_t took = mp_now_ms() - t0;
    MP_CHECK(took >= 190 && took < 3000, "timed out after %lld ms", (long long)took);
    MP_CHECK(strstr(kccl_last_error(), r == 0 ? "rank 1" : "rank 0") != NULL, "error: %s",
             kccl_last_error());
    MP_CHECK_OK(kccl_bootstrap_barrier(kccl_comm_bootstrap(comm)));
    kccl_host_sem_destroy(s);
    kccl_comm_destroy(comm);
    return 0;
}

static void test_host_semaphores(void **state)
{
    (void)state;
    tt_group_t g;
    tt_group_init(&g, 2);
    tt_run(&g, "host_sem", sem_proc, 60000);
}

/* Refusals: out-of-range puts, misaligned signals, damaged and foreign handles. */
static int refuse_proc(mp_t *mp, int r, void *arg)
{
    (void)mp;
    tt_group_t *g = arg;
    kccl_comm_t comm;
    kccl_mem_t m;
    kccl_rmem_t peers[2], rm;
    kccl_mem_handle_t h = {{0}};
    MP_CHECK_OK(kccl_comm_init_rank(&g->id, r, 2, &g->opts, &comm));
    MP_CHECK_OK(kccl_mem_alloc(comm, 4096, KCCL_MEM_HOST, &m));
    MP_CHECK_OK(kccl_mem_exchange(comm, m, peers));
    kccl_link_t l = kccl_comm_link(comm, 1 - r);
    MP_CHECK(kccl_link_put(l, peers[1 - r], 4000, m, 0, 97) == KCCL_ERR_INVALID_ARG, "dst range");
    MP_CHECK(kccl_link_put(l, peers[1 - r], 0, m, 4095, 2) == KCCL_ERR_INVALID_ARG, "src range");
    MP_CHECK(kccl_link_signal(l, peers[1 - r], 4) == KCCL_ERR_INVALID_ARG, "misaligned");
    MP_CHECK(kccl_link_signal(l, peers[1 - r], 4096) == KCCL_ERR_INVALID_ARG, "past the end");
    MP_CHECK_OK(kccl_mem_get_handle(m, &h));
    MP_CHECK(kccl_rmem_import(comm, &h, &rm) == KCCL_ERR_INVALID_ARG, "own handle");
    h.internal[40] ^= 1;
    MP_CHECK(kccl_rmem_import(comm, &h, &rm) == KCCL_ERR_PROTOCOL, "damaged handle");
    MP_CHECK(kccl_comm_link(comm, r) == NULL && kccl_comm_link(comm, 2) == NULL, "bad links");
    MP_CHECK(kccl_memory_channel_create(comm, 1 - r, m, peers[1 - r], NULL) == KCCL_ERR_INVALID_ARG,
             "memory channel without output");
    kccl_memory_channel_t mc;
    MP_CHECK(kccl_memory_channel_create(comm, 1 - r, m, peers[1 - r], &mc) == KCCL_ERR_UNSUPPORTED,
             "memory channel over tcp");
    MP_CHECK_OK(kccl_link_flush(l, -1));
    MP_CHECK_OK(kccl_bootstrap_barrier(kccl_comm_bootstrap(comm)));
    kccl_rmem_release(peers[1 - r]);
    kccl_mem_deregister(m);
    kccl_comm_destroy(comm);
    return 0;
}

static void test_refusals(void **state)
{
    (void)state;
    tt_group_t g;
    tt_group_init(&g, 2);
    g.log_level = "none";
    tt_run(&g, "refusals", refuse_proc, 30000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_tcp_ring_2, mp_cleanup_all),
        cmocka_unit_test_teardown(test_tcp_ring_4, mp_cleanup_all),
        cmocka_unit_test_teardown(test_tcp_device_staging, mp_cleanup_all),
        cmocka_unit_test_teardown(test_host_semaphores, mp_cleanup_all),
        cmocka_unit_test_teardown(test_refusals, mp_cleanup_all),
    };
    return cmocka_run_group_tests_name("tcp_mp", tests, NULL, NULL);
}
