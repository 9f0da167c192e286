/*
 * test_coll_mp.c - the CPU collectives (host buffers) across real processes
 * on loopback: groups of 1, 2, 3, 4 and 8 ranks run every collective over
 * every dtype x op, counts 0, 1, odd, not a multiple of the rank count and
 * larger than the staging chunk (set small here, so slices and chunk
 * pipelining are exercised), in place and out of place. Every rank checks
 * its own output against the float64 reference of bench/coll/coll_check.c
 * (built from the same seeded inputs every rank can regenerate) and hashes
 * the outputs every rank must share; the parent requires equal hashes, i.e.
 * bit-identical results across ranks. Failures: test_coll_faults.c.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "coll/coll_cpu.h"
#include "coll_check.h"
#include "kccl/kccl_coll.h"
#include "kccl/kccl_comm.h"
#include "kccl_test.h"
#include "mp.h"

#ifndef KCCL_ITEST_SLOWDOWN
#define KCCL_ITEST_SLOWDOWN 1
#endif
#define TIMEOUT_MS  (10000 * KCCL_ITEST_SLOWDOWN)
#define CHUNK_BYTES 1024
#define LARGE_COUNT 20011 /* > ranks x chunk for every dtype: several slices */

typedef struct {
    int nranks;
    int full; /* every count for every dtype x op (else a lighter matrix) */
    kccl_bootstrap_opts_t opts;
    kccl_unique_id_t id;
} coll_case_t;

typedef struct {
    kccl_comm_t comm;
    int rank, n;
    uint64_t hash; /* over outputs every rank shares */
    uint64_t seed; /* bumped per call: fresh inputs each time */
    long calls;
} proc_t;

static const coll_check_kind_t kinds[] = {COLL_CHECK_ALL_REDUCE, COLL_CHECK_ALL_GATHER,
                                          COLL_CHECK_REDUCE_SCATTER, COLL_CHECK_BROADCAST};
static const char *const kind_names[] = {"all-reduce", "all-gather", "reduce-scatter", "broadcast"};

static kccl_status_t call(const coll_check_t *c, const void *s, void *r, kccl_comm_t comm)
{
    switch (c->kind) {
    case COLL_CHECK_ALL_REDUCE: return kccl_all_reduce(s, r, c->count, c->dtype, c->op, comm, NULL);
    case COLL_CHECK_ALL_GATHER: return kccl_all_gather(s, r, c->count, c->dtype, comm, NULL);
    case COLL_CHECK_REDUCE_SCATTER:
        return kccl_reduce_scatter(s, r, c->count, c->dtype, c->op, comm, NULL);
    default: return kccl_broadcast(s, r, c->count, c->dtype, c->root, comm, NULL);
    }
}

/* One collective, checked: out of place or in place (NCCL's offsets). */
static int run_one(proc_t *p, coll_check_t *c, int in_place)
{
    size_t esz = kccl_dtype_size(c->dtype);
    size_t ns = coll_check_send_count(c), nr = coll_check_recv_count(c);
    c->seed = ++p->seed;
    uint8_t *sbuf = malloc(ns * esz + 1), *rbuf = malloc(nr * esz + 1);
    MP_CHECK(sbuf && rbuf, "out of memory");
    coll_check_poison(c, rbuf);
    const void *s = sbuf;
    void *r = rbuf, *out = rbuf;
    if (!in_place) {
        coll_check_fill(c, sbuf);
    } else if (c->kind == COLL_CHECK_ALL_GATHER) {
        coll_check_fill(c, rbuf + (size_t)c->rank * c->count * esz);
        s = rbuf + (size_t)c->rank * c->count * esz;
    } else if (c->kind == COLL_CHECK_REDUCE_SCATTER) {
        coll_check_fill(c, sbuf);
        r = out = sbuf + (size_t)c->rank * c->count * esz;
    } else {
        coll_check_fill(c, rbuf); /* all-reduce, broadcast: send == recv */
        s = rbuf;
    }
    kccl_status_t st = call(c, c->count ? s : NULL, c->count ? r : NULL, p->comm);
    size_t wrong = st == KCCL_OK ? coll_check_wrong(c, out) : 0;
    if (st == KCCL_OK && c->kind != COLL_CHECK_REDUCE_SCATTER)
        p->hash = coll_check_hash(out, nr * esz, p->hash);
    free(sbuf);
    free(rbuf);
    MP_CHECK(st == KCCL_OK, "%s %s %s root %d count %zu %s: %s: %s", kind_names[c->kind],
             kccl_dtype_name(c->dtype), kccl_redop_name(c->op), c->root, c->count,
             in_place ? "in place" : "out of place", kccl_status_name(st), kccl_last_error());
    MP_CHECK(wrong == 0, "%s %s %s root %d count %zu %s: %zu of %zu elements wrong",
             kind_names[c->kind], kccl_dtype_name(c->dtype), kccl_redop_name(c->op), c->root,
             c->count, in_place ? "in place" : "out of place", wrong, nr);
    p->calls++;
    return 0;
}

/* Every op of one kind and dtype over the counts, both placements. */
static int run_kind_dtype(proc_t *p, coll_check_kind_t kind, kccl_dtype_t dt, int full)
{
    static const size_t all_counts[] = {0, 1, 7, 1003, LARGE_COUNT};
    static const size_t few_counts[] = {1, 1003};
    const size_t *counts = full ? all_counts : few_counts;
    size_t ncounts = full ? KCCL_TEST_ARRAY_LEN(all_counts) : KCCL_TEST_ARRAY_LEN(few_counts);
    int reduces = kind == COLL_CHECK_ALL_REDUCE || kind == COLL_CHECK_REDUCE_SCATTER;
    int nops = reduces ? KCCL_NUM_REDOPS : 1;
    int roots[3] = {0, p->n / 2, p->n - 1}, nroots = kind == COLL_CHECK_BROADCAST ? 3 : 1;
    for (int op = 0; op < nops; op++) {
        if (reduces && op == KCCL_AVG && dt == KCCL_INT32)
            continue;
        for (int ri = 0; ri < nroots; ri++)
            for (size_t ci = 0; ci < ncounts; ci++)
                for (int ip = 0; ip < 2; ip++) {
                    coll_check_t c = {.kind = kind,
                                      .dtype = dt,
                                      .op = (kccl_redop_t)op,
                                      .root = roots[ri],
                                      .nranks = p->n,
                                      .rank = p->rank,
                                      .count = counts[ci]};
                    if (run_one(p, &c, ip))
                        return 1;
                }
    }
    return 0;
}

static int matrix_proc(mp_t *mp, int rank, void *arg)
{
    coll_case_t *cc = arg;
    proc_t p = {.rank = rank, .n = cc->nranks};
    (void)mp;
    kccl_coll_cpu_set_chunk_bytes(CHUNK_BYTES);
    MP_CHECK_OK(kccl_comm_init_rank(&cc->id, rank, cc->nranks, &cc->opts, &p.comm));
    for (size_t k = 0; k < KCCL_TEST_ARRAY_LEN(kinds); k++)
        for (int dt = 0; dt < KCCL_NUM_DTYPES; dt++) {
            /* The lighter matrix still covers every dtype x op; large counts for float32. */
            int full = cc->full || dt == KCCL_FLOAT32;
            if (run_kind_dtype(&p, kinds[k], (kccl_dtype_t)dt, full))
                return 1;
        }
    snprintf(mp_self()->text, sizeof(mp_self()->text), "%016" PRIx64 " after %ld calls", p.hash,
             p.calls);
    kccl_comm_destroy(p.comm);
    return 0;
}

static void run_matrix(int nranks, int full)
{
    coll_case_t cc = {.nranks = nranks, .full = full};
    mp_test_opts(&cc.opts, TIMEOUT_MS);
    mp_make_id(&cc.opts, &cc.id);
    char name[32];
    snprintf(name, sizeof(name), "coll_n%d", nranks);
    mp_opts_t mo = {.name = name,
                    .nprocs = nranks,
                    .deadline_ms = 120000,
                    .fn = matrix_proc,
                    .arg = &cc,
                    .ids = &cc.id,
                    .nids = 1,
                    .root_proc = 0};
    mp_t *mp = mp_start(&mo);
    mp_wait_all(mp);
    mp_assert_all_ok(mp);
    for (int r = 1; r < nranks; r++)
        if (strcmp(mp_slot(mp, r)->text, mp_slot(mp, 0)->text) != 0)
            fail_msg("rank %d's outputs hash to %s, rank 0's to %s: not bit-identical", r,
                     mp_slot(mp, r)->text, mp_slot(mp, 0)->text);
    print_message("%d ranks: outputs %s\n", nranks, mp_slot(mp, 0)->text);
    mp_free(mp);
}

static void test_coll_n1(void **state)
{
    (void)state;
    run_matrix(1, 1);
}

static void test_coll_n2(void **state)
{
    (void)state;
    run_matrix(2, 1);
}

static void test_coll_n3(void **state)
{
    (void)state;
    run_matrix(3, 1);
}

static void test_coll_n4(void **state)
{
    (void)state;
    run_matrix(4, 1);
}

static void test_coll_n8(void **state)
{
    (void)state;
    run_matrix(8, 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_coll_n1, mp_cleanup_all),
        cmocka_unit_test_teardown(test_coll_n2, mp_cleanup_all),
        cmocka_unit_test_teardown(test_coll_n3, mp_cleanup_all),
        cmocka_unit_test_teardown(test_coll_n4, mp_cleanup_all),
        cmocka_unit_test_teardown(test_coll_n8, mp_cleanup_all),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
