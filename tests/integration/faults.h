/*
 * faults.h - scaffolding shared by the fault-injection tests: a small group
 * whose ranks are forked processes, plus the expectations every fault test
 * checks afterwards (status, message, deadline).
 */
#ifndef KCCL_ITEST_FAULTS_H
#define KCCL_ITEST_FAULTS_H

#include "kccl/kccl_bootstrap.h"
#include "mp.h"

/* Shared flags. */
enum { FLAG_GO = 0, FLAG_DONE = 1 };

typedef struct {
    int nranks;
    kccl_bootstrap_opts_t opts;
    kccl_unique_id_t id;
    const int *proc_rank; /* proc -> rank; NULL: proc i is rank i */
    int held_proc;        /* waits for FLAG_GO before it starts; -1: none */
    void *extra;          /* per-test data */
} fault_group_t;

/* A group of nranks with the test options and a fresh id. */
void fault_group_init(fault_group_t *g, int nranks, int64_t timeout_ms);

/* Starts nprocs procs running fn over g (root_proc: the proc that is rank 0). */
mp_t *fault_start(fault_group_t *g, const char *name, int nprocs, mp_fn fn, const char *log_level);

/* Inside a proc: its rank, after waiting for FLAG_GO if it is the held one; -1
 * (failure recorded) if it was never released. */
int fault_rank(mp_t *mp, fault_group_t *g, int proc);

/*
 * Inside a proc, after a successful create: loops barriers until the parent
 * sets FLAG_DONE (rank 0 decides for everyone, so all stop at the same
 * collective), then a few barriers and an all-gather, and destroys bs.
 * Publishes rank 1's peer address in its slot's text (progress 1).
 */
int fault_serve_until_done(mp_t *mp, kccl_bootstrap_t bs);

/* Parent: mp_progress_wait, or report every proc and fail the test. */
void fault_await_progress(mp_t *mp, int proc, int64_t value, int64_t timeout_ms);

/* Records a failed call's status, message and end time (absolute ms) in the slot. */
void fault_record(kccl_status_t st, int64_t t0);

/* Parent: the proc's last error contains every needle (NULL-terminated list). */
void fault_assert_says(mp_t *mp, int proc, ...) __attribute__((sentinel));
/* Parent: the proc's log file contains needle. */
void fault_assert_logged(mp_t *mp, int proc, const char *needle);

#endif
