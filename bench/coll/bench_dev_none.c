/*
 * bench_dev_none.c - kccl-bench's device mode in builds without CUDA: says
 * so, and points at --host.
 */
#include "bench.h"
#include "core/error.h"

kccl_status_t bench_dev_select(void)
{
    return KCCL_OK; /* bench_dev_create says why device mode is unavailable */
}

kccl_status_t bench_dev_create(const bench_opts_t *o, kccl_comm_t comm, bench_dev_t **out)
{
    (void)o;
    (void)comm;
    (void)out;
    KCCL_FAIL(TOOL, KCCL_ERR_UNSUPPORTED,
              "kccl-bench was built without CUDA (KCCL_WITH_CUDA=OFF): use --host for the "
              "CPU path");
}

kccl_status_t bench_dev_run(bench_dev_t *d, const bench_case_t *c, int lib, int in_place,
                            bench_meas_t *m)
{
    (void)d;
    (void)c;
    (void)lib;
    (void)in_place;
    (void)m;
    return KCCL_ERR_UNSUPPORTED;
}

const char *bench_dev_name(bench_dev_t *d)
{
    (void)d;
    return "none";
}

void bench_dev_destroy(bench_dev_t *d)
{
    (void)d;
}
