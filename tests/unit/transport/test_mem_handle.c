/*
 * test_mem_handle.c - the registered-memory handle codec and the registry
 * that guards network writes: round trips, every refusal of a damaged
 * handle, and (id, generation, bounds) checks on resolve.
 */
#include "kccl_test.h"
#include "memory/mem.h"

static void fill(struct kccl_mem *m)
{
    memset(m, 0, sizeof(*m));
    m->ptr = (void *)(uintptr_t)0x7f0012345000ull;
    m->len = 1 << 20;
    m->kind = KCCL_MEM_DEVICE;
    m->device = 3;
    m->id = 17;
    m->gen = 99;
    m->ipc_type = KCCL_MEM_IPC_LEGACY;
    m->token = 0x1122334455667788ull;
    m->rkey = 0xabcdef01u;
    m->ipc_offset = 4096;
    for (int i = 0; i < KCCL_MEM_IPC_BYTES; i++)
        m->ipc[i] = (uint8_t)(i * 7 + 1);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct kccl_mem m;
    struct kccl_rmem r;
    kccl_mem_handle_t h = {{0}};
    char why[96];
    int owner;
    fill(&m);
    kccl_mem_handle_encode(&m, 5, 0xfeedull, &h);
    assert_int_equal(kccl_mem_handle_decode(&h, &r, &owner, why, sizeof(why)), KCCL_OK);
    assert_int_equal(owner, 5);
    assert_int_equal(r.peer, 5);
    assert_true(r.base == (uint64_t)(uintptr_t)m.ptr && r.len == m.len);
    assert_int_equal(r.kind, KCCL_MEM_DEVICE);
    assert_int_equal(r.device, 3);
    assert_int_equal(r.id, 17);
    assert_int_equal(r.gen, 99);
    assert_int_equal(r.ipc_type, KCCL_MEM_IPC_LEGACY);
    assert_true(r.token == m.token && r.rkey == m.rkey && r.node == 0xfeedull);
    assert_true(r.ipc_offset == 4096);
    assert_memory_equal(r.ipc, m.ipc, KCCL_MEM_IPC_BYTES);
}

static void test_refusals(void **state)
{
    (void)state;
    struct kccl_mem m;
    struct kccl_rmem r;
    kccl_mem_handle_t good = {{0}}, h = {{0}};
    char why[96];
    int owner;
    fill(&m);
    kccl_mem_handle_encode(&m, 1, 1, &good);
    /* Any single flipped byte is caught (checksum, or a field check first). */
    for (int i = 0; i < KCCL_MEM_HANDLE_BYTES; i++) {
        h = good;
        h.internal[i] ^= 0x40;
        assert_int_equal(kccl_mem_handle_decode(&h, &r, &owner, why, sizeof(why)),
                         KCCL_ERR_PROTOCOL);
        assert_true(why[0] != '\0');
    }
    /* Field checks with a valid checksum: bad kind, zero length, wrapping range. */
    m.kind = (kccl_mem_kind_t)2;
    kccl_mem_handle_encode(&m, 1, 1, &h);
    assert_int_equal(kccl_mem_handle_decode(&h, &r, &owner, why, sizeof(why)), KCCL_ERR_PROTOCOL);
    assert_non_null(strstr(why, "kind"));
    fill(&m);
    m.len = 0;
    kccl_mem_handle_encode(&m, 1, 1, &h);
    assert_int_equal(kccl_mem_handle_decode(&h, &r, &owner, why, sizeof(why)), KCCL_ERR_PROTOCOL);
    fill(&m);
    m.ptr = (void *)(uintptr_t)~0ull;
    kccl_mem_handle_encode(&m, 1, 1, &h);
    assert_int_equal(kccl_mem_handle_decode(&h, &r, &owner, why, sizeof(why)), KCCL_ERR_PROTOCOL);
    assert_non_null(strstr(why, "range"));
    fill(&m);
    m.ipc_type = 9;
    kccl_mem_handle_encode(&m, 1, 1, &h);
    assert_int_equal(kccl_mem_handle_decode(&h, &r, &owner, why, sizeof(why)), KCCL_ERR_PROTOCOL);
}

static void test_registry(void **state)
{
    (void)state;
    kccl_memreg_t reg;
    struct kccl_mem a = {0}, b = {0};
    char buf_a[256], buf_b[64];
    void *addr;
    kccl_mem_kind_t kind;
    int dev;
    a.ptr = buf_a, a.len = sizeof(buf_a), a.device = -1;
    b.ptr = buf_b, b.len = sizeof(buf_b), b.kind = KCCL_MEM_DEVICE, b.device = 2;
    assert_int_equal(kccl_memreg_init(&reg), KCCL_OK);
    assert_int_equal(kccl_memreg_add(&reg, &a), KCCL_OK);
    assert_int_equal(kccl_memreg_add(&reg, &b), KCCL_OK);
    assert_int_not_equal(a.id, b.id);
    assert_int_equal(kccl_memreg_resolve(&reg, a.id, a.gen, 16, 240, &addr, &kind, &dev), KCCL_OK);
    assert_ptr_equal(addr, buf_a + 16);
    assert_int_equal(kind, KCCL_MEM_HOST);
    assert_int_equal(kccl_memreg_resolve(&reg, b.id, b.gen, 0, 64, &addr, &kind, &dev), KCCL_OK);
    assert_int_equal(dev, 2);
    assert_int_equal(kccl_memreg_resolve(&reg, a.id, a.gen, 16, 241, &addr, &kind, &dev),
                     KCCL_ERR_PROTOCOL);
    assert_int_equal(kccl_memreg_resolve(&reg, a.id, a.gen, ~0ull, 2, &addr, &kind, &dev),
                     KCCL_ERR_PROTOCOL);
    assert_int_equal(kccl_memreg_resolve(&reg, a.id, a.gen + 1, 0, 1, &addr, &kind, &dev),
                     KCCL_ERR_NOT_FOUND);
    assert_int_equal(kccl_memreg_resolve(&reg, 1000, 1, 0, 1, &addr, &kind, &dev),
                     KCCL_ERR_NOT_FOUND);
    /* A slot reused after removal gets a new generation: stale writes are refused. */
    uint32_t old_id = a.id, old_gen = a.gen;
    kccl_memreg_remove(&reg, &a);
    assert_int_equal(kccl_memreg_resolve(&reg, old_id, old_gen, 0, 1, &addr, &kind, &dev),
                     KCCL_ERR_NOT_FOUND);
    for (int i = 0; i < 40; i++) { /* grow past the first allocation */
        struct kccl_mem *m = calloc(1, sizeof(*m));
        m->ptr = buf_b, m->len = 1;
        assert_int_equal(kccl_memreg_add(&reg, m), KCCL_OK);
        if (i == 0) {
            assert_int_equal(m->id, old_id);
            assert_int_not_equal(m->gen, old_gen);
        }
    }
    for (uint32_t i = 0; i < reg.cap; i++)
        if (reg.slots[i] != NULL && reg.slots[i] != &b)
            free(reg.slots[i]);
    kccl_memreg_fini(&reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_registry),
    };
    return cmocka_run_group_tests_name("mem_handle", tests, NULL, NULL);
}
