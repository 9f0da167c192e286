/*
 * coll_cpu.c - the CPU path (placeholder until the CPU collectives land):
 * refuses with KCCL_ERR_UNSUPPORTED.
 */
#include "coll/coll.h"
#include "core/error.h"

kccl_status_t kccl_coll_cpu_run(kccl_comm_t comm, const kccl_coll_args_t *args)
{
    (void)comm;
    (void)args;
    KCCL_FAIL(COLL, KCCL_ERR_UNSUPPORTED, "host-buffer collectives are not built yet");
}

void kccl_coll_cpu_teardown(kccl_comm_t comm)
{
    (void)comm;
}
