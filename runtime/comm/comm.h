/*
 * comm.h - internal view of the communicator and the handoff file parser.
 */
#ifndef KCCL_COMM_INT_H
#define KCCL_COMM_INT_H

#include "kccl/kccl_comm.h"

#define KCCL_HOST_ID_MAX 256

struct kccl_comm {
    kccl_bootstrap_t bs;
    int rank, size;
    int local_rank, local_size;
    char (*host_ids)[KCCL_HOST_ID_MAX]; /* [size] */
    double bootstrap_s;
    struct kccl_transport_state *tp; /* links, registered memory, proxy (runtime/transport) */
    void *coll_cpu;                  /* CPU collectives' state (runtime/coll), lazily made */
    void *coll_gpu;                  /* GPU collectives' state (runtime/coll + kernels) */
};

/* What kccl-sidecar hands the runtime (KEY=value lines), or the environment. */
typedef struct {
    char unique_id[KCCL_UNIQUE_ID_STRLEN + 1];
    long rank;
    long world_size;
    long epoch;
    char host_id[KCCL_HOST_ID_MAX];
    char secret_file[4096];
    unsigned seen; /* bit per key, for duplicate detection */
} kccl_handoff_t;

/*
 * Strict parser for the handoff file: one KEY=value per line, known keys
 * only once each, values validated; unknown KCCL_* keys are ignored (newer
 * sidecars), anything else is an error. why gets the reason and the line.
 */
kccl_status_t kccl_handoff_parse(const char *text, size_t len, kccl_handoff_t *out, char *why,
                                 size_t whylen);

/* Waits (bounded by timeout_ms) for the file, then reads and parses it. */
kccl_status_t kccl_handoff_load(const char *path, int64_t timeout_ms, kccl_handoff_t *out);

#endif
