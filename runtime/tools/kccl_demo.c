/*
 * kccl_demo.c - kccl-demo: the smallest real kccl job, and the stage's
 * end-to-end check. Run it under kccl-run or from a Kubernetes pod:
 *
 *     kccl-run -n 4 kccl-demo
 *
 * Every rank builds its communicator from the environment, fills one fixed-
 * size record (rank, pid, node identity, bootstrap address), all-gathers the
 * records over the bootstrap and meets the others at a barrier. Every rank
 * checks the gathered table against what its communicator knows (so a wrong
 * slot is an error, not a pretty table); rank 0 prints it with the timings.
 * Any failure prints `kccl-demo: rank R: <status>: <detail>` and exits 1.
 *
 * For end-to-end scenarios (e2e/local): `--hold SECONDS` keeps every rank in
 * the group for that long afterwards, meeting at a barrier every 100 ms, so a
 * pod can be killed mid-run (the others then fail their barrier and exit 1);
 * `--stamp` makes every rank print when its bootstrap finished (wall clock).
 * Without options the behaviour and the output are unchanged.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kccl/kccl.h"

#define DEMO_HOST_MAX 256
#define DEMO_ADDR_MAX 64

/* One rank's row. Plain bytes, same layout on every rank (one build, one ABI). */
typedef struct {
    int32_t rank;
    int32_t pid;
    int32_t local_rank;
    int32_t local_size;
    char host_id[DEMO_HOST_MAX];
    char address[DEMO_ADDR_MAX];
} demo_record_t;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int fail(const char *rank, kccl_status_t st)
{
    fprintf(stderr, "kccl-demo: rank %s: %s: %s\n", rank, kccl_status_str(st), kccl_last_error());
    return 1;
}

static int fail_rank(int rank, kccl_status_t st)
{
    char r[16];
    snprintf(r, sizeof(r), "%d", rank);
    return fail(r, st);
}

static kccl_status_t fill_record(kccl_comm_t comm, demo_record_t *rec)
{
    int rank = kccl_comm_rank(comm);
    memset(rec, 0, sizeof(*rec));
    rec->rank = rank;
    rec->pid = (int32_t)getpid();
    rec->local_rank = kccl_comm_local_rank(comm);
    rec->local_size = kccl_comm_local_size(comm);
    const char *host = kccl_comm_host_id(comm, rank);
    snprintf(rec->host_id, sizeof(rec->host_id), "%s", host ? host : "");
    return kccl_bootstrap_peer_address(kccl_comm_bootstrap(comm), rank, rec->address,
                                       sizeof(rec->address));
}

/* Each slot must hold the rank it belongs to, as this rank's communicator knows it. */
static int check_table(kccl_comm_t comm, const demo_record_t *all)
{
    int n = kccl_comm_size(comm), me = kccl_comm_rank(comm);
    for (int r = 0; r < n; r++) {
        char addr[DEMO_ADDR_MAX];
        const char *host = kccl_comm_host_id(comm, r);
        const char *bad = NULL;
        if (all[r].rank != r)
            bad = "rank";
        else if (strcmp(all[r].host_id, host ? host : "") != 0)
            bad = "host id";
        else if (kccl_bootstrap_peer_address(kccl_comm_bootstrap(comm), r, addr, sizeof(addr)) !=
                     KCCL_OK ||
                 strcmp(all[r].address, addr) != 0)
            bad = "address";
        if (bad != NULL) {
            fprintf(stderr,
                    "kccl-demo: rank %d: all-gather slot %d holds a wrong %s (slot says rank %d, "
                    "host '%s', address '%s')\n",
                    me, r, bad, (int)all[r].rank, all[r].host_id, all[r].address);
            return -1;
        }
    }
    return 0;
}

static void print_table(kccl_comm_t comm, const demo_record_t *all, double exchange_ms)
{
    int n = kccl_comm_size(comm);
    int whost = 7;
    for (int r = 0; r < n; r++) {
        int len = (int)strlen(all[r].host_id);
        whost = len > whost ? len : whost;
    }
    printf("%6s  %8s  %9s  %-*s  %s\n", "RANK", "PID", "LOCAL", whost, "HOST ID", "ADDRESS");
    for (int r = 0; r < n; r++) {
        char local[32];
        snprintf(local, sizeof(local), "%d/%d", (int)all[r].local_rank, (int)all[r].local_size);
        printf("%6d  %8d  %9s  %-*s  %s\n", (int)all[r].rank, (int)all[r].pid, local, whost,
               all[r].host_id, all[r].address);
    }
    printf("bootstrap: %d ranks in %.3f ms\n", n, kccl_comm_bootstrap_seconds(comm) * 1e3);
    printf("all-gather + barrier: %.3f ms\n", exchange_ms);
    fflush(stdout);
}

typedef struct {
    double hold_s; /* keep meeting at barriers this long after the exchange */
    int stamp;     /* every rank prints its bootstrap completion time */
} demo_opts_t;

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --hold: barriers every 100 ms until the time is up; a lost peer fails the barrier. */
static int hold(kccl_comm_t comm, double seconds)
{
    int rank = kccl_comm_rank(comm);
    double end = now_ms() + seconds * 1e3;
    long rounds = 0;
    while (now_ms() < end) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        kccl_status_t st = kccl_bootstrap_barrier(kccl_comm_bootstrap(comm));
        if (st != KCCL_OK) {
            fprintf(stderr, "kccl-demo: rank %d: barrier %ld of the hold failed\n", rank, rounds);
            return fail_rank(rank, st);
        }
        rounds++;
    }
    printf("kccl-demo: rank %d: held %.1f s (%ld barriers)\n", rank, seconds, rounds);
    fflush(stdout);
    return 0;
}

static int run(kccl_comm_t comm, const demo_opts_t *o)
{
    int rank = kccl_comm_rank(comm), n = kccl_comm_size(comm);
    demo_record_t *all = calloc((size_t)n, sizeof(*all));
    if (all == NULL) {
        fprintf(stderr, "kccl-demo: rank %d: out of memory for %d records\n", rank, n);
        return 1;
    }
    int rc = 1;
    kccl_status_t st = fill_record(comm, &all[rank]);
    if (st != KCCL_OK) {
        rc = fail_rank(rank, st);
        goto out_free;
    }
    kccl_bootstrap_t bs = kccl_comm_bootstrap(comm);
    double t0 = now_ms();
    if ((st = kccl_bootstrap_all_gather(bs, all, sizeof(*all))) != KCCL_OK ||
        (st = kccl_bootstrap_barrier(bs)) != KCCL_OK) {
        rc = fail_rank(rank, st);
        goto out_free;
    }
    double exchange_ms = now_ms() - t0;
    if (check_table(comm, all) != 0)
        goto out_free;
    if (rank == 0)
        print_table(comm, all, exchange_ms);
    rc = o->hold_s > 0 ? hold(comm, o->hold_s) : 0;
out_free:
    free(all);
    return rc;
}

static int parse(int argc, char **argv, demo_opts_t *o)
{
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (strcmp(argv[i], "--hold") == 0 && i + 1 < argc) {
            o->hold_s = strtod(argv[++i], &end);
            if (end == argv[i] || *end != '\0' || o->hold_s < 0)
                return -1;
        } else if (strcmp(argv[i], "--stamp") == 0) {
            o->stamp = 1;
        } else {
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    demo_opts_t o = {0, 0};
    if (argc > 1 && parse(argc, argv, &o) != 0) {
        int help = strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0;
        fprintf(help ? stdout : stderr,
                "usage: kccl-demo [--hold SECONDS] [--stamp]\n"
                "Joins the group described by the KCCL_* environment (as set by kccl-run or the\n"
                "Kubernetes sidecar), all-gathers one record per rank, and rank 0 prints them.\n"
                "  --hold S   then stay in the group S seconds (a barrier every 100 ms)\n"
                "  --stamp    every rank prints the wall-clock time its bootstrap finished\n"
                "e.g. kccl-run -n 4 kccl-demo\n");
        return help ? 0 : 2;
    }
    kccl_comm_t comm;
    kccl_status_t st = kccl_comm_init_from_env(&comm);
    if (st != KCCL_OK) {
        const char *r = getenv("KCCL_RANK");
        return fail(r && *r ? r : "?", st);
    }
    if (o.stamp) {
        printf("kccl-demo: rank %d: bootstrap done at %.3f (unix s), %.3f ms\n",
               kccl_comm_rank(comm), wall_s(), kccl_comm_bootstrap_seconds(comm) * 1e3);
        fflush(stdout);
    }
    int rc = run(comm, &o);
    kccl_comm_destroy(comm);
    return rc;
}
