/* kccl.h - the umbrella header: include this one. */
#ifndef KCCL_H
#define KCCL_H

#include "kccl_bootstrap.h"
#include "kccl_channel.h"
#include "kccl_coll.h"
#include "kccl_comm.h"
#include "kccl_mem.h"
#include "kccl_status.h"
#include "kccl_version.h"

#endif
