/*
 * coll_gpu_none.c - the GPU path of builds without CUDA: device buffers
 * cannot exist there, so a call that reaches it is refused with the remedy.
 */
#include "coll/coll.h"
#include "core/error.h"

kccl_status_t kccl_coll_gpu_run(kccl_comm_t comm, const kccl_coll_args_t *args)
{
    (void)comm;
    (void)args;
    KCCL_FAIL(COLL, KCCL_ERR_UNSUPPORTED,
              "device buffers need a libkccl built with KCCL_WITH_CUDA=ON");
}

void kccl_coll_gpu_teardown(kccl_comm_t comm)
{
    (void)comm;
}
