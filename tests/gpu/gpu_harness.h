/*
 * gpu_harness.h - forked ranks for the GPU tests and benchmarks.
 *
 * The parent never touches CUDA (a CUDA context does not survive fork): it
 * creates the unique id (listener held, as rank 0 will use it), forks one
 * child per rank, and collects exit codes. Each child picks GPU rank % ndev,
 * exits 77 ("skip") when the machine has too few GPUs, and has an alarm()
 * watchdog. Results a child wants to print go to stdout, one line each,
 * prefixed by its rank.
 */
#ifndef KCCL_GPU_HARNESS_H
#define KCCL_GPU_HARNESS_H

#include <cuda_runtime.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kccl/kccl.h"

#define GH_SKIP 77

#define GH_CUDA(call)                                                                              \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            fprintf(stderr, "[rank %d] %s:%d: %s: %s\n", gh_rank, __FILE__, __LINE__, #call,       \
                    cudaGetErrorString(e_));                                                       \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

#define GH_OK(call)                                                                                \
    do {                                                                                           \
        kccl_status_t s_ = (call);                                                                 \
        if (s_ != KCCL_OK) {                                                                       \
            fprintf(stderr, "[rank %d] %s:%d: %s -> %s: %s\n", gh_rank, __FILE__, __LINE__, #call, \
                    kccl_status_name(s_), kccl_last_error());                                      \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

#define GH_CHECK(cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "[rank %d] %s:%d: check failed: ", gh_rank, __FILE__, __LINE__);       \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

static int gh_rank = -1;

typedef int (*gh_fn)(int rank, int nranks, const kccl_unique_id_t *id,
                     const kccl_bootstrap_opts_t *opts, void *arg);

static inline double gh_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void gh_fill(unsigned char *p, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        p[i] = (unsigned char)((x * 0x2545F4914F6CDD1Dull) >> 56);
    }
}

/* Selects this rank's GPU and initialises CUDA; GH_SKIP when there are too few GPUs. */
static inline int gh_pick_device(int rank, int nranks)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        fprintf(stderr, "[rank %d] no CUDA device: skipped\n", rank);
        return GH_SKIP;
    }
    if (n < nranks && getenv("KCCL_GPU_SHARE") == NULL) {
        fprintf(stderr, "[rank %d] %d ranks need %d GPUs, found %d: skipped\n", rank, nranks,
                nranks, n);
        return GH_SKIP;
    }
    if (cudaSetDevice(rank % n) != cudaSuccess || cudaFree(0) != cudaSuccess)
        return 1;
    return 0;
}

/* Runs fn in nranks forked ranks; returns 0 (all passed), GH_SKIP, or 1. */
static inline int gh_run(int nranks, int timeout_s, gh_fn fn, void *arg)
{
    kccl_bootstrap_opts_t o;
    kccl_unique_id_t id;
    memset(&o, 0, sizeof(o));
    if (kccl_bootstrap_opts_from_env(&o) != KCCL_OK)
        return 1;
    o.timeout_ms = 60000;
    if (!o.has_secret) {
        o.has_secret = 1;
        for (int i = 0; i < KCCL_GROUP_SECRET_BYTES; i++)
            o.secret[i] = (unsigned char)(0x5a ^ i);
    }
    if (o.ifname[0] == '\0')
        snprintf(o.ifname, sizeof(o.ifname), "lo");
    o.family = 4;
    snprintf(o.host_id, sizeof(o.host_id), "gpu-test-node");
    if (kccl_unique_id_create(&o, &id) != KCCL_OK) {
        fprintf(stderr, "unique id: %s\n", kccl_last_error());
        return 1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t *pids = (pid_t *)calloc((size_t)nranks, sizeof(pid_t));
    for (int r = 0; r < nranks; r++) {
        pids[r] = fork();
        if (pids[r] == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            alarm((unsigned)timeout_s);
            gh_rank = r;
            if (r != 0)
                kccl_unique_id_release(&id);
            int rc = gh_pick_device(r, nranks);
            if (rc == 0)
                rc = fn(r, nranks, &id, &o, arg);
            fflush(stdout);
            _exit(rc);
        }
    }
    kccl_unique_id_release(&id);
    int worst = 0, skipped = 0;
    for (int r = 0; r < nranks; r++) {
        int st = 0;
        waitpid(pids[r], &st, 0);
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (code == GH_SKIP)
            skipped++;
        else if (code != 0) {
            fprintf(stderr, "rank %d failed (%s %d)\n", r, WIFEXITED(st) ? "exit" : "signal",
                    WIFEXITED(st) ? code : WTERMSIG(st));
            worst = 1;
        }
    }
    free(pids);
    if (worst)
        return 1;
    return skipped ? GH_SKIP : 0;
}

#endif
