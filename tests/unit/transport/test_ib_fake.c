/*
 * test_ib_fake.c - the InfiniBand transport against the fake verbs table
 * (fake_verbs.h). No HCA exists on the machines this runs on; these tests
 * are the only execution the transport has had.
 *
 * Two transport contexts (ranks 0 and 1) share the fake fabric in one
 * process: device, port and GID choice (RoCE v2 IPv4-mapped first, forced
 * index, InfiniBand LIDs), queue pairs through RESET/INIT/RTR/RTS, RDMA
 * writes of random data, atomic and immediate-data signals, flush; then the
 * failures: no device, port down, small RLIMIT_MEMLOCK (with the remedy in
 * the message), every verb failing in turn during set-up and registration
 * (nothing leaks), a bad rkey surfacing at flush with the peer's rank, and
 * GPU memory registration through dma-buf, the nvidia-peermem fallback and
 * its error.
 */
#include "fake_verbs.h"
#include "kccl_test.h"
#include "memory/gpu.h"
#include "transport/ib/ib.h"

typedef struct {
    kccl_tp_env_t env;
    kccl_memreg_t reg;
    kccl_tp_ctx_t *ctx;
    kccl_tp_ep_t *ep;
} side_t;

static const kccl_tp_ops_t *ops = &kccl_tp_ib_ops;

static int setup(void **state)
{
    (void)state;
    fake_ibv_reset();
    kccl_ibv_set_table(&fake_ibv);
    unsetenv("KCCL_IB_SIGNAL");
    unsetenv("KCCL_IB_GID_INDEX");
    unsetenv("KCCL_IB_GDR");
    unsetenv("KCCL_IB_HCA");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kccl_ibv_set_table(NULL);
    kccl_gpu_set_ops(NULL);
    return 0;
}

static void sides_down(side_t s[2])
{
    for (int r = 0; r < 2; r++)
        if (s[r].ep != NULL)
            ops->ep_close(s[r].ep);
    for (int r = 0; r < 2; r++) {
        if (s[r].ctx != NULL)
            ops->ctx_destroy(s[r].ctx);
        kccl_memreg_fini(&s[r].reg);
        s[r].ctx = NULL;
        s[r].ep = NULL;
    }
}

/* Brings both ranks up to connected links; returns the first failure (sides cleaned up). */
static kccl_status_t sides_up(side_t s[2], char *why, size_t whylen)
{
    uint8_t info[2][KCCL_TP_INFO_BYTES], pair[2][KCCL_TP_PAIR_BYTES];
    kccl_status_t st = KCCL_OK;
    memset(s, 0, 2 * sizeof(*s));
    memset(info, 0, sizeof(info));
    memset(pair, 0, sizeof(pair));
    for (int r = 0; r < 2; r++) {
        kccl_memreg_init(&s[r].reg);
        s[r].env.rank = r;
        s[r].env.nranks = 2;
        s[r].env.timeout_ms = 500;
        s[r].env.device = -1;
        s[r].env.reg = &s[r].reg;
    }
    for (int r = 0; r < 2 && st == KCCL_OK; r++)
        if ((st = ops->ctx_create(&s[r].env, &s[r].ctx, why, whylen)) == KCCL_OK)
            st = ops->rank_info(s[r].ctx, info[r]);
    for (int r = 0; r < 2 && st == KCCL_OK; r++)
        st = ops->ep_create(s[r].ctx, 1 - r, info[1 - r], &s[r].ep, pair[r]);
    for (int r = 0; r < 2 && st == KCCL_OK; r++)
        st = ops->ep_connect(s[r].ep, pair[1 - r]);
    for (int r = 0; r < 2 && st == KCCL_OK && ops->ep_connect_wait != NULL; r++)
        st = ops->ep_connect_wait(s[r].ep, kccl_tp_now_ms() + 500);
    if (st != KCCL_OK)
        sides_down(s);
    return st;
}

typedef struct {
    struct kccl_mem mem;
    struct kccl_rmem rmem; /* as the peer imports it */
} reg_t;

static kccl_status_t reg(side_t *owner, void *p, size_t len, kccl_mem_kind_t kind, reg_t *out)
{
    memset(out, 0, sizeof(*out));
    out->mem.ptr = p;
    out->mem.len = len;
    out->mem.kind = kind;
    out->mem.device = kind == KCCL_MEM_DEVICE ? 0 : -1;
    out->mem.fd = -1;
    kccl_memreg_add(&owner->reg, &out->mem);
    kccl_status_t st = ops->mem_register(owner->ctx, &out->mem);
    if (st != KCCL_OK) {
        kccl_memreg_remove(&owner->reg, &out->mem);
        return st;
    }
    kccl_mem_handle_t h = {{0}};
    char why[64];
    int who;
    kccl_mem_handle_encode(&out->mem, owner->env.rank, 0, &h);
    assert_int_equal(kccl_mem_handle_decode(&h, &out->rmem, &who, why, sizeof(why)), KCCL_OK);
    return KCCL_OK;
}

static void unreg(side_t *owner, reg_t *r)
{
    ops->mem_deregister(owner->ctx, &r->mem);
    kccl_memreg_remove(&owner->reg, &r->mem);
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

/* -------------------------------------------------------------- success */

static void run_traffic(side_t s[2])
{
    const size_t n = (1 << 20) + 7;
    uint8_t *src = malloc(n), *dst = calloc(1, n + 64);
    uint64_t *ctr = calloc(8, sizeof(uint64_t));
    reg_t rs, rd, rc;
    assert_int_equal(reg(&s[0], src, n, KCCL_MEM_HOST, &rs), KCCL_OK);
    assert_int_equal(reg(&s[1], dst, n + 64, KCCL_MEM_HOST, &rd), KCCL_OK);
    assert_int_equal(reg(&s[1], ctr, 64, KCCL_MEM_HOST, &rc), KCCL_OK);
    assert_true(rd.rmem.rkey != 0 && rd.rmem.rkey == rd.mem.rkey);
    const size_t sizes[] = {1, 8, 4095, 65536, n};
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(sizes); i++) {
        fill(src, sizes[i], (uint32_t)i + 1);
        assert_int_equal(ops->put(s[0].ep, &rd.rmem, 3, &rs.mem, 0, sizes[i]), KCCL_OK);
        assert_int_equal(ops->signal(s[0].ep, &rc.rmem, 0), KCCL_OK);
        assert_int_equal(ops->flush(s[0].ep, kccl_tp_now_ms() + 500), KCCL_OK);
        assert_int_equal(ops->ep_status(s[1].ep), KCCL_OK); /* receiver polls (imm) */
        assert_memory_equal(dst + 3, src, sizes[i]);
        assert_int_equal(__atomic_load_n(ctr, __ATOMIC_ACQUIRE), i + 1);
    }
    /* many puts: the send queue wraps and completions are reaped on the way */
    for (int i = 0; i < 3 * IB_SEND_WR; i++)
        assert_int_equal(ops->put(s[0].ep, &rd.rmem, 0, &rs.mem, 0, 64), KCCL_OK);
    assert_int_equal(ops->flush(s[0].ep, kccl_tp_now_ms() + 500), KCCL_OK);
    unreg(&s[0], &rs);
    unreg(&s[1], &rd);
    unreg(&s[1], &rc);
    free(src);
    free(dst);
    free(ctr);
}

static void test_roce_v2_atomic(void **state)
{
    (void)state;
    side_t s[2];
    char why[160] = "";
    assert_int_equal(sides_up(s, why, sizeof(why)), KCCL_OK);
    ib_ctx_t *c = s[0].ctx;
    assert_int_equal(c->gid_index, 2); /* RoCE v2, IPv4-mapped */
    assert_int_equal(c->gid_type, KCCL_GID_ROCE_V2);
    assert_string_equal(c->dev_name, "mlx5_fake0");
    assert_int_equal(fake_ibv_state.modify_calls, 6); /* 3 transitions x 2 queue pairs */
    run_traffic(s);
    sides_down(s);
    assert_int_equal(fake_ibv_live(), 0);
}

static void test_immediate_signals(void **state)
{
    (void)state;
    side_t s[2];
    char why[160] = "";
    setenv("KCCL_IB_SIGNAL", "imm", 1);
    assert_int_equal(sides_up(s, why, sizeof(why)), KCCL_OK);
    assert_true(s[0].ctx->signal_imm);
    run_traffic(s);
    /* imm signals name a registration; unknown ones fail the receiving link */
    sides_down(s);
    assert_int_equal(fake_ibv_live(), 0);
}

static void test_infiniband_lid_and_forced_gid(void **state)
{
    (void)state;
    side_t s[2];
    char why[160] = "";
    fake_ibv_state.link_layer = IBV_LINK_LAYER_INFINIBAND;
    fake_ibv_state.lid = 7;
    assert_int_equal(sides_up(s, why, sizeof(why)), KCCL_OK);
    assert_int_equal(s[1].ep->peer_lid, 7);
    run_traffic(s);
    sides_down(s);
    fake_ibv_reset();
    setenv("KCCL_IB_GID_INDEX", "1", 1);
    assert_int_equal(sides_up(s, why, sizeof(why)), KCCL_OK);
    assert_int_equal(s[0].ctx->gid_index, 1);
    sides_down(s);
    setenv("KCCL_IB_GID_INDEX", "9", 1);
    assert_int_equal(sides_up(s, why, sizeof(why)), KCCL_ERR_CONFIG);
    assert_non_null(strstr(kccl_last_error(), "KCCL_IB_GID_INDEX=9"));
    assert_int_equal(fake_ibv_live(), 0);
}

/* -------------------------------------------------------------- failures */

static void test_unavailable(void **state)
{
    (void)state;
    side_t s[2];
    char why[160] = "";
    fake_ibv_state.ndev = 0;
    assert_int_equal(sides_up(s, why, sizeof(why)), KCCL_ERR_UNSUPPORTED);
    assert_non_null(strstr(why, "no InfiniBand/RoCE device"));
    fake_ibv_state.ndev = 1;
    fake_ibv_state.state = IBV_PORT_DOWN;
    assert_int_equal(sides_up(s, why, sizeof(why)), KCCL_ERR_UNSUPPORTED);
    assert_non_null(strstr(why, "active"));
    setenv("KCCL_IB_HCA", "mlx5_9", 1);
    fake_ibv_state.state = IBV_PORT_ACTIVE;
    assert_int_equal(sides_up(s, why, sizeof(why)), KCCL_ERR_CONFIG);
    unsetenv("KCCL_IB_HCA");
    /* No RoCE v2 and only zero GIDs: no usable GID is an error on a RoCE port. */
    memset(fake_ibv_state.gid, 0, sizeof(fake_ibv_state.gid));
    assert_int_equal(sides_up(s, why, sizeof(why)), KCCL_ERR_IB);
    assert_non_null(strstr(kccl_last_error(), "GID"));
    assert_int_equal(fake_ibv_live(), 0);
}

static void test_memlock(void **state)
{
    (void)state;
    side_t s[2];
    char why[160] = "";
    fake_ibv_state.memlock.rlim_cur = 8 << 20; /* a container's default */
    assert_int_equal(sides_up(s, why, sizeof(why)), KCCL_ERR_IB);
    assert_non_null(strstr(kccl_last_error(), "RLIMIT_MEMLOCK is 8192 KiB"));
    assert_non_null(strstr(kccl_last_error(), "ulimit -l unlimited"));
    assert_non_null(strstr(kccl_last_error(), "KCCL_TRANSPORT=tcp"));
    assert_int_equal(fake_ibv_live(), 0);
}

static void test_every_setup_verb_fails(void **state)
{
    (void)state;
    static const char *const verbs[] = {
        "get_device_list", "open_device", "query_device", "query_port", "query_gid", "alloc_pd",
        "create_cq",       "reg_mr",      "create_qp",    "modify_qp",  "post_recv"};
    char why[160];
    for (int imm = 0; imm < 2; imm++) {
        if (imm)
            setenv("KCCL_IB_SIGNAL", "imm", 1);
        for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(verbs); i++) {
            for (int nth = 0; nth < 4; nth++) {
                side_t s[2];
                fake_ibv_reset();
                fake_ibv_fail_at(verbs[i], nth);
                why[0] = '\0';
                kccl_status_t st = sides_up(s, why, sizeof(why));
                if (st == KCCL_OK) { /* the failure hit nothing in set-up (nth too large) */
                    sides_down(s);
                } else {
                    assert_true(st == KCCL_ERR_IB || st == KCCL_ERR_UNSUPPORTED);
                    assert_true(why[0] != '\0' || kccl_last_error()[0] != '\0');
                }
                if (fake_ibv_live() != 0)
                    fail_msg("%s (call %d) leaked %d objects", verbs[i], nth, fake_ibv_live());
            }
        }
    }
}

static void test_remote_access_error(void **state)
{
    (void)state;
    side_t s[2];
    char why[160] = "";
    uint8_t a[64] = {1}, b[64];
    reg_t ra, rb;
    assert_int_equal(sides_up(s, why, sizeof(why)), KCCL_OK);
    assert_int_equal(reg(&s[0], a, sizeof(a), KCCL_MEM_HOST, &ra), KCCL_OK);
    assert_int_equal(reg(&s[1], b, sizeof(b), KCCL_MEM_HOST, &rb), KCCL_OK);
    rb.rmem.rkey ^= 0x55; /* a stale or foreign key */
    assert_int_equal(ops->put(s[0].ep, &rb.rmem, 0, &ra.mem, 0, 64), KCCL_OK);
    assert_int_equal(ops->flush(s[0].ep, kccl_tp_now_ms() + 500), KCCL_ERR_IB);
    assert_non_null(strstr(kccl_last_error(), "ib link to rank 1"));
    assert_non_null(strstr(kccl_last_error(), "remote access error"));
    /* The link stays failed: later calls report the same failure. */
    assert_int_equal(ops->put(s[0].ep, &rb.rmem, 0, &ra.mem, 0, 64), KCCL_ERR_IB);
    assert_int_equal(ops->ep_status(s[0].ep), KCCL_ERR_IB);
    /* A post refused by the library fails the link, too. */
    fake_ibv_fail_at("post_send", 0);
    assert_int_not_equal(ops->signal(s[1].ep, &ra.rmem, 0), KCCL_OK);
    assert_non_null(strstr(kccl_last_error(), "rank 0"));
    unreg(&s[0], &ra);
    unreg(&s[1], &rb);
    sides_down(s);
    assert_int_equal(fake_ibv_live(), 0);
}

static void test_imm_needs_host_counter(void **state)
{
    (void)state;
    side_t s[2];
    char why[160] = "";
    uint64_t c[8] = {0};
    reg_t rc;
    setenv("KCCL_IB_SIGNAL", "imm", 1);
    assert_int_equal(sides_up(s, why, sizeof(why)), KCCL_OK);
    assert_int_equal(reg(&s[1], c, sizeof(c), KCCL_MEM_HOST, &rc), KCCL_OK);
    assert_int_equal(ops->signal(s[0].ep, &rc.rmem, 8), KCCL_ERR_UNSUPPORTED);
    unreg(&s[1], &rc);
    sides_down(s);
    assert_int_equal(fake_ibv_live(), 0);
}

/* ------------------------------------------------------------ GPU memory */

static int dmabuf_ok = 1;
static kccl_status_t fake_dmabuf(void *p, size_t n, int *fd, uint64_t *off)
{
    (void)p, (void)n;
    if (!dmabuf_ok)
        return KCCL_ERR_UNSUPPORTED;
    *fd = dup(0) >= 0 ? dup(0) : -1;
    close(*fd - 1);
    *off = 0;
    return *fd >= 0 ? KCCL_OK : KCCL_ERR_SYSTEM;
}
static kccl_status_t fake_count(int *n)
{
    *n = 1;
    return KCCL_OK;
}
static const kccl_gpu_ops_t gpu_with_dmabuf = {
    .name = "fake-dmabuf", .device_count = fake_count, .dmabuf_fd = fake_dmabuf};

static void test_gpu_registration(void **state)
{
    (void)state;
    side_t s[2];
    char why[160] = "";
    static uint8_t dev[4096];
    reg_t r;
    kccl_gpu_set_ops(&gpu_with_dmabuf);
    assert_int_equal(sides_up(s, why, sizeof(why)), KCCL_OK);
    assert_int_equal(reg(&s[0], dev, sizeof(dev), KCCL_MEM_DEVICE, &r), KCCL_OK);
    assert_int_equal(fake_ibv_state.dmabuf_regs, 1);
    unreg(&s[0], &r);
    /* dma-buf export fails: nvidia-peermem path (plain reg_mr on the device pointer) */
    dmabuf_ok = 0;
    assert_int_equal(reg(&s[0], dev, sizeof(dev), KCCL_MEM_DEVICE, &r), KCCL_OK);
    assert_int_equal(fake_ibv_state.dmabuf_regs, 1);
    unreg(&s[0], &r);
    /* both fail: the error names the remedy */
    fake_ibv_fail_at("reg_mr", 0);
    assert_int_equal(reg(&s[0], dev, sizeof(dev), KCCL_MEM_DEVICE, &r), KCCL_ERR_IB);
    assert_non_null(strstr(kccl_last_error(), "nvidia-peermem"));
    assert_non_null(strstr(kccl_last_error(), "not loaded"));
    sides_down(s);
    /* KCCL_IB_GDR=dmabuf: no fallback */
    setenv("KCCL_IB_GDR", "dmabuf", 1);
    assert_int_equal(sides_up(s, why, sizeof(why)), KCCL_OK);
    assert_int_equal(reg(&s[0], dev, sizeof(dev), KCCL_MEM_DEVICE, &r), KCCL_ERR_IB);
    sides_down(s);
    dmabuf_ok = 1;
    assert_int_equal(fake_ibv_live(), 0);
}

int main(void)
{
    setenv("KCCL_LOG_LEVEL", "none", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roce_v2_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_immediate_signals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_infiniband_lid_and_forced_gid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unavailable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memlock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_setup_verb_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_access_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imm_needs_host_counter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gpu_registration, setup, teardown),
    };
    return cmocka_run_group_tests_name("ib_fake", tests, NULL, NULL);
}
