/*
 * tcp_common.h - what the transport integration tests share: a loopback
 * group of forked ranks with tcp links, deterministic random payloads, and
 * the ring neighbours' buffers and semaphores.
 */
#ifndef KCCL_ITEST_TCP_COMMON_H
#define KCCL_ITEST_TCP_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kccl/kccl.h"
#include "kccl_test.h"
#include "mp.h"

#define TT_TIMEOUT_MS 10000

typedef struct {
    int nranks;
    kccl_unique_id_t id;
    kccl_bootstrap_opts_t opts;
    const char *log_level;
} tt_group_t;

static inline void tt_group_init(tt_group_t *g, int nranks)
{
    memset(g, 0, sizeof(*g));
    g->nranks = nranks;
    mp_test_opts(&g->opts, TT_TIMEOUT_MS);
    mp_make_id(&g->opts, &g->id);
}

/* Runs fn in nranks procs and asserts they all passed. */
static inline void tt_run(tt_group_t *g, const char *name, mp_fn fn, int64_t deadline_ms)
{
    mp_opts_t mo = {.name = name,
                    .nprocs = g->nranks,
                    .deadline_ms = deadline_ms,
                    .fn = fn,
                    .arg = g,
                    .ids = &g->id,
                    .nids = 1,
                    .root_proc = 0,
                    .log_level = g->log_level};
    mp_t *mp = mp_start(&mo);
    mp_wait_all(mp);
    mp_assert_all_ok(mp);
    mp_free(mp);
}

/* xorshift64*: the same bytes on the sender and on the checker. */
static inline void tt_fill(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        p[i] = (uint8_t)((x * 0x2545F4914F6CDD1Dull) >> 56);
    }
}

/* Index of the first byte that differs from tt_fill(seed), or -1. */
static inline long tt_check(const uint8_t *p, size_t n, uint64_t seed)
{
    uint8_t *want = malloc(n ? n : 1);
    long bad = -1;
    if (want == NULL)
        return 0;
    tt_fill(want, n, seed);
    for (size_t i = 0; i < n; i++)
        if (p[i] != want[i]) {
            bad = (long)i;
            break;
        }
    free(want);
    return bad;
}

#endif
