/*
 * test_port_channel_mp.c - port channels through the proxy with host-side
 * producers, between real processes over tcp links.
 *
 * Several host threads push puts of disjoint random slices into one
 * channel's FIFO at once (lock-free multi-producer), then one signal; the
 * peer waits on its inbound counter and checks every byte. Repeated over
 * rounds and ring sizes 2 and 3; a tiny FIFO (4 slots) forces producers to
 * wait for room; flush returns only once the proxy has carried everything
 * out; and the fake GPU gives the proxy a device FIFO and device counters.
 */
#include <pthread.h>

#include "fake_gpu.h"
#include "tcp_common.h"

#define PC_THREADS 4
#define PC_SLICES  64
#define PC_SLICE   4099
#define PC_BYTES   ((size_t)PC_THREADS * PC_SLICES * PC_SLICE)

typedef struct {
    kccl_port_channel_t ch;
    int t;
    kccl_status_t st;
} producer_t;

static void *producer_main(void *arg)
{
    producer_t *p = arg;
    for (int s = 0; s < PC_SLICES && p->st == KCCL_OK; s++) {
        uint64_t off = ((uint64_t)p->t * PC_SLICES + (uint64_t)s) * PC_SLICE;
        p->st = kccl_port_channel_put(p->ch, off, off, PC_SLICE);
    }
    return NULL;
}

static int pc_proc(mp_t *mp, int r, void *arg)
{
    (void)mp;
    tt_group_t *g = arg;
    int n = g->nranks, next = (r + 1) % n, prev = (r + n - 1) % n;
    kccl_comm_t comm;
    kccl_mem_t src, dst;
    kccl_rmem_t *peers = calloc((size_t)n, sizeof(*peers));
    kccl_port_channel_t to_next, from_prev;
    MP_CHECK_OK(kccl_comm_init_rank(&g->id, r, n, &g->opts, &comm));
    MP_CHECK_OK(kccl_mem_alloc(comm, PC_BYTES, KCCL_MEM_HOST, &src));
    MP_CHECK_OK(kccl_mem_alloc(comm, PC_BYTES, KCCL_MEM_HOST, &dst));
    MP_CHECK_OK(kccl_mem_exchange(comm, dst, peers));
    /* Pairwise creation in increasing peer order (see test_tcp_mp.c). */
    if (n == 2) {
        MP_CHECK_OK(kccl_port_channel_create(comm, next, src, peers[next], &to_next));
        from_prev = to_next;
    } else if (next < prev) {
        MP_CHECK_OK(kccl_port_channel_create(comm, next, src, peers[next], &to_next));
        MP_CHECK_OK(kccl_port_channel_create(comm, prev, src, peers[prev], &from_prev));
    } else {
        MP_CHECK_OK(kccl_port_channel_create(comm, prev, src, peers[prev], &from_prev));
        MP_CHECK_OK(kccl_port_channel_create(comm, next, src, peers[next], &to_next));
    }
    kccl_port_channel_dev_t dh;
    MP_CHECK(kccl_port_channel_device_handle(to_next, &dh) == KCCL_ERR_UNSUPPORTED,
             "no device fifo without a GPU");
    for (int round = 0; round < 6; round++) {
        tt_fill(kccl_mem_ptr(src), PC_BYTES, (uint64_t)r * 100 + (uint64_t)round);
        producer_t prod[PC_THREADS];
        pthread_t th[PC_THREADS];
        for (int t = 0; t < PC_THREADS; t++) {
            prod[t] = (producer_t){.ch = to_next, .t = t, .st = KCCL_OK};
            MP_CHECK(pthread_create(&th[t], NULL, producer_main, &prod[t]) == 0, "thread");
        }
        for (int t = 0; t < PC_THREADS; t++) {
            pthread_join(th[t], NULL);
            MP_CHECK(prod[t].st == KCCL_OK, "producer %d: %s", t, kccl_status_name(prod[t].st));
        }
        MP_CHECK_OK(kccl_port_channel_signal(to_next));
        MP_CHECK_OK(kccl_port_channel_flush(to_next, -1));
        MP_CHECK_OK(kccl_port_channel_wait(from_prev, -1));
        long bad = tt_check(kccl_mem_ptr(dst), PC_BYTES, (uint64_t)prev * 100 + (uint64_t)round);
        MP_CHECK(bad < 0, "round %d: byte %ld from rank %d differs", round, bad, prev);
        MP_CHECK_OK(kccl_bootstrap_barrier(kccl_comm_bootstrap(comm)));
    }
    MP_CHECK(kccl_port_channel_put(to_next, 1ull << 40, 0, 8) == KCCL_ERR_INVALID_ARG,
             "offset beyond the trigger format");
    MP_CHECK(kccl_port_channel_wait(from_prev, 100) == KCCL_ERR_TIMED_OUT, "no signal pending");
    /* Nobody tears down while a neighbour still waits out its 100 ms above (the peer's
     * close would end that wait early with KCCL_ERR_REMOTE instead of the timeout). */
    MP_CHECK_OK(kccl_bootstrap_barrier(kccl_comm_bootstrap(comm)));
    if (from_prev != to_next)
        kccl_port_channel_destroy(from_prev);
    kccl_port_channel_destroy(to_next);
    kccl_rmem_release(peers[next]);
    if (prev != next)
        kccl_rmem_release(peers[prev]);
    free(peers);
    kccl_mem_deregister(src);
    kccl_mem_deregister(dst);
    kccl_comm_destroy(comm);
    return 0;
}

static void test_port_channel_ring_2(void **state)
{
    (void)state;
    tt_group_t g;
    tt_group_init(&g, 2);
    tt_run(&g, "port_ring_2", pc_proc, 90000);
}

static void test_port_channel_ring_3_small_fifo(void **state)
{
    (void)state;
    tt_group_t g;
    setenv("KCCL_PROXY_FIFO_SLOTS", "4", 1);
    tt_group_init(&g, 3);
    tt_run(&g, "port_ring_3", pc_proc, 90000);
    unsetenv("KCCL_PROXY_FIFO_SLOTS");
}

/* With a (fake) GPU: a device FIFO exists, counters are device memory, and the
 * handle describes them; a device-side producer is emulated with the host FIFO
 * calls on the device FIFO's memory (which is host memory here). */
static int pc_gpu_proc(mp_t *mp, int r, void *arg)
{
    (void)mp;
    tt_group_t *g = arg;
    kccl_comm_t comm;
    kccl_mem_t src, dst;
    kccl_rmem_t peers[2];
    kccl_port_channel_t ch;
    kccl_port_channel_dev_t dh;
    kccl_gpu_set_ops(&fake_gpu_ops);
    MP_CHECK_OK(kccl_comm_init_rank(&g->id, r, 2, &g->opts, &comm));
    MP_CHECK_OK(kccl_mem_alloc(comm, 1 << 16, KCCL_MEM_HOST, &src));
    MP_CHECK_OK(kccl_mem_alloc(comm, 1 << 16, KCCL_MEM_HOST, &dst));
    MP_CHECK_OK(kccl_mem_exchange(comm, dst, peers));
    MP_CHECK_OK(kccl_port_channel_create(comm, 1 - r, src, peers[1 - r], &ch));
    MP_CHECK_OK(kccl_port_channel_device_handle(ch, &dh));
    MP_CHECK(dh.fifo.slots != NULL && dh.fifo.head != NULL && dh.fifo.size >= 2 &&
                 dh.sem.inbound != NULL && dh.sem.expected != NULL,
             "device handle incomplete");
    tt_fill(kccl_mem_ptr(src), 1 << 16, (uint64_t)r + 7);
    /* Produce on the device FIFO exactly as a kernel would (claim, wait for room, publish). */
    for (int i = 0; i < 16; i++) {
        uint64_t slot = __atomic_fetch_add(dh.fifo.head, 1, __ATOMIC_RELAXED);
        while (slot - __atomic_load_n(dh.fifo.tail, __ATOMIC_ACQUIRE) >= dh.fifo.size)
            ;
        uint32_t type = KCCL_TRIGGER_PUT | (i == 15 ? KCCL_TRIGGER_SIGNAL | KCCL_TRIGGER_FLUSH : 0);
        kccl_trigger_t t =
            kccl_trigger_encode(type, dh.channel, (uint64_t)i * 4096, (uint64_t)i * 4096, 4096);
        kccl_trigger_t *s = &dh.fifo.slots[slot & (dh.fifo.size - 1)];
        __atomic_store_n(&s->w0, t.w0, __ATOMIC_RELAXED);
        __atomic_store_n(&s->w1, t.w1, __ATOMIC_RELEASE);
    }
    /* The peer's counter is "device memory": poll it like the GPU would. */
    int64_t end = mp_now_ms() + 10000;
    while (__atomic_load_n(dh.sem.inbound, __ATOMIC_ACQUIRE) < 1 && mp_now_ms() < end)
        mp_sleep_ms(1);
    uint64_t got = __atomic_load_n(dh.sem.inbound, __ATOMIC_ACQUIRE);
    MP_CHECK(got == 1, "device counter %llu", (unsigned long long)got);
    long bad = tt_check(kccl_mem_ptr(dst), 1 << 16, (uint64_t)(1 - r) + 7);
    MP_CHECK(bad < 0, "byte %ld differs", bad);
    MP_CHECK(kccl_port_channel_wait(ch, 10) == KCCL_ERR_INVALID_ARG, "host wait on device counter");
    MP_CHECK_OK(kccl_bootstrap_barrier(kccl_comm_bootstrap(comm)));
    kccl_port_channel_destroy(ch);
    kccl_rmem_release(peers[1 - r]);
    kccl_mem_deregister(src);
    kccl_mem_deregister(dst);
    kccl_comm_destroy(comm);
    kccl_gpu_set_ops(NULL);
    return 0;
}

static void test_port_channel_device_fifo(void **state)
{
    (void)state;
    tt_group_t g;
    tt_group_init(&g, 2);
    tt_run(&g, "port_gpu", pc_gpu_proc, 60000);
}

int main(void)
{
    setenv("KCCL_TRANSPORT", "tcp", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_port_channel_ring_2, mp_cleanup_all),
        cmocka_unit_test_teardown(test_port_channel_ring_3_small_fifo, mp_cleanup_all),
        cmocka_unit_test_teardown(test_port_channel_device_fifo, mp_cleanup_all),
    };
    return cmocka_run_group_tests_name("port_channel_mp", tests, NULL, NULL);
}
