/*
 * bootstrap_int.h - declarations shared by bootstrap.c, root.c and
 * collectives.c (the struct itself lives in engine.h).
 */
#ifndef KCCL_BOOTSTRAP_INT_H
#define KCCL_BOOTSTRAP_INT_H

#include "bootstrap/engine.h"

/* Tags at or above this are kccl's own. */
#define KCCL_TAG_RESERVED 0x80000000u

/* Runs the root inside the root rank's create; consumes listen_fd. */
kccl_status_t kccl_root_run(kccl_bs_t *bs, int listen_fd, const kccl_wire_peer_t *self);

/* The all-gather algorithm kccl_bootstrap_all_gather uses for this group. */
kccl_bootstrap_algo_t kccl_bootstrap_pick_algo(kccl_bootstrap_algo_t algo, int ring_max,
                                               int nranks);

/* Bruck step arithmetic, exposed for unit tests: at the step that starts
 * with `have` blocks, send this many blocks (to rank+have, from rank-have). */
int kccl_bruck_step_count(int nranks, int have);

#endif
