/*
 * bootstrap_int.h - declarations shared by bootstrap.c, root.c and
 * collectives.c (the struct itself lives in engine.h).
 */
#ifndef KCCL_BOOTSTRAP_INT_H
#define KCCL_BOOTSTRAP_INT_H

#include "bootstrap/engine.h"

/* Tags at or above this are kccl's own: KCCL_TAG_RESERVED | op << 24 | low 24 bits.
 * Ops 1..3 are the bootstrap's collectives; the ops below are lent to the rest of libkccl
 * through the *_internal calls. */
#define KCCL_TAG_RESERVED 0x80000000u
#define KCCL_TAG_OP_LINK  0x7Eu /* transports: link set-up, memory handles, semaphores */
#define KCCL_TAG_OP_COLL  0x7Du /* the CPU collectives' data (runtime/coll) */

/* Runs the root inside the root rank's create; consumes listen_fd. */
kccl_status_t kccl_root_run(kccl_bs_t *bs, int listen_fd, const kccl_wire_peer_t *self);

/* The all-gather algorithm kccl_bootstrap_all_gather uses for this group. */
kccl_bootstrap_algo_t kccl_bootstrap_pick_algo(kccl_bootstrap_algo_t algo, int ring_max,
                                               int nranks);

/* Bruck step arithmetic, exposed for unit tests: at the step that starts
 * with `have` blocks, send this many blocks (to rank+have, from rank-have). */
int kccl_bruck_step_count(int nranks, int have);

/*
 * Tagged send/recv for libkccl's own pairwise exchanges (link set-up, memory
 * handles, semaphores): the same persistent connections, deadlines and
 * failure reports as kccl_bootstrap_send/recv, but in the reserved tag space,
 * so applications keep every tag below 2^31. op: a KCCL_TAG_OP_* above; tag24: the
 * caller's low 24 bits.
 */
kccl_status_t kccl_bootstrap_send_internal(kccl_bootstrap_t bs, int peer, uint32_t op,
                                           uint32_t tag24, const void *buf, size_t len);
kccl_status_t kccl_bootstrap_recv_internal(kccl_bootstrap_t bs, int peer, uint32_t op,
                                           uint32_t tag24, void *buf, size_t len);

/*
 * Bootstraps created by the calling thread, reported to an observer: created() once the
 * bootstrap can be aborted (before any wait), gone() just before it is freed (a failed
 * create, or destroy in this thread). kccl_comm_init_from_env uses it to abort a bootstrap
 * whose handoff file changed under it (a new epoch). Thread-local; NULL stops observing.
 * The callbacks run in the creating thread and must not block.
 */
typedef struct {
    void (*created)(void *arg, kccl_bootstrap_t bs);
    void (*gone)(void *arg, kccl_bootstrap_t bs);
    void *arg;
} kccl_bootstrap_observer_t;
void kccl_bootstrap_observe(const kccl_bootstrap_observer_t *obs);

#endif
