/*
 * faults.c - the fault tests' group scaffolding (see faults.h).
 */
#include "faults.h"

/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fault_group_init(fault_group_t *g, int nranks, int64_t timeout_ms)
{
    memset(g, 0, sizeof(*g));
    g->nranks = nranks;
    g->held_proc = -1;
    mp_test_opts(&g->opts, timeout_ms);
    mp_make_id(&g->opts, &g->id);
}

mp_t *fault_start(fault_group_t *g, const char *name, int nprocs, mp_fn fn, const char *log_level)
{
    int root_proc = 0;
    for (int p = 0; g->proc_rank && p < nprocs; p++)
        if (g->proc_rank[p] == 0)
            root_proc = p;
    /* Generous: every fault here resolves within a couple of bootstrap timeouts. */
    mp_opts_t mo = {.name = name,
                    .nprocs = nprocs,
                    .deadline_ms = 4 * g->opts.timeout_ms + 15000,
                    .fn = fn,
                    .arg = g,
                    .ids = &g->id,
                    .nids = 1,
                    .root_proc = root_proc,
                    .log_level = log_level};
    return mp_start(&mo);
}

int fault_rank(mp_t *mp, fault_group_t *g, int proc)
{
    if (proc == g->held_proc && mp_flag_wait(mp, FLAG_GO, 1, 60000) != 0) {
        mp_fail_at(__FILE__, __LINE__, "proc %d was never released", proc);
        return -1;
    }
    return g->proc_rank ? g->proc_rank[proc] : proc;
}

int fault_serve_until_done(mp_t *mp, kccl_bootstrap_t bs)
{
    int r = kccl_bootstrap_rank(bs), n = kccl_bootstrap_size(bs);
    /* One barrier first, so the connections it uses (0->1 among them) are up. */
    MP_CHECK_OK(kccl_bootstrap_barrier(bs));
    if (r == 1) {
        MP_CHECK_OK(kccl_bootstrap_peer_address(bs, 1, mp_self()->text, sizeof(mp_self()->text)));
        __atomic_store_n(&mp_self()->progress, 1, __ATOMIC_RELEASE);
    }
    for (int64_t it = 0;; it++) {
        uint8_t stop = r == 0 ? (uint8_t)mp_flag_get(mp, FLAG_DONE) : 0;
        if (r == 0 && !stop)
            mp_sleep_ms(2); /* others wait inside the engine meanwhile */
        MP_CHECK_OK(kccl_bootstrap_broadcast(bs, &stop, 1, 0));
        if (stop)
            break;
        MP_CHECK_OK(kccl_bootstrap_barrier(bs));
    }
    for (int i = 0; i < 3; i++)
        MP_CHECK_OK(kccl_bootstrap_barrier(bs));
    int *all = calloc((size_t)n, sizeof(int));
    MP_CHECK(all != NULL, "out of memory");
    all[r] = 1000 + r;
    MP_CHECK_OK(kccl_bootstrap_all_gather(bs, all, sizeof(int)));
    for (int p = 0; p < n; p++)
        MP_CHECK(all[p] == 1000 + p, "all-gather slot %d holds %d", p, all[p]);
    free(all);
    kccl_bootstrap_destroy(bs);
    return 0;
}

void fault_record(kccl_status_t st, int64_t t0)
{
    mp_slot_t *s = mp_self();
    s->status = st;
    s->when_ms = mp_now_ms();
    s->elapsed_ms = s->when_ms - t0;
    snprintf(s->err, sizeof(s->err), "%s", st == KCCL_OK ? "" : kccl_last_error());
}

void fault_assert_says(mp_t *mp, int proc, ...)
{
    va_list ap;
    const char *needle;
    const char *err = mp_slot(mp, proc)->err;
    va_start(ap, proc);
    while ((needle = va_arg(ap, const char *)) != NULL) {
        if (strstr(err, needle) == NULL) {
            va_end(ap);
            mp_report_proc(mp, proc);
            fail_msg("proc %d's error does not say '%s': %s", proc, needle, err);
        }
    }
    va_end(ap);
}

void fault_assert_logged(mp_t *mp, int proc, const char *needle)
{
    char path[600];
    char *log = mp_read_file(mp_log_path(mp, proc, path, sizeof(path)));
    assert_non_null(log);
    int found = strstr(log, needle) != NULL;
    free(log);
    if (!found) {
        mp_report_proc(mp, proc);
        fail_msg("proc %d did not log '%s' (%s)", proc, needle, path);
    }
}

void fault_await_progress(mp_t *mp, int proc, int64_t value, int64_t timeout_ms)
{
    if (mp_progress_wait(mp, proc, value, timeout_ms) == 0)
        return;
    for (int p = 0; p < mp_nprocs(mp); p++)
        mp_report_proc(mp, p);
    fail_msg("proc %d did not reach progress %lld within %lld ms", proc, (long long)value,
             (long long)timeout_ms);
}
