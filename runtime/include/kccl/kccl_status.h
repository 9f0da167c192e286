/*
 * kccl_status.h - the one status type every kccl call returns.
 *
 * The codes are defined once, in KCCL_STATUS_MAP, and everything else (the
 * enum, kccl_status_str()) is generated from that table so the two can never
 * drift apart. Zero is success, KCCL_INPROGRESS is positive, errors are
 * negative. The numeric values are part of the ABI: append, never renumber.
 */
#ifndef KCCL_STATUS_H
#define KCCL_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, description) */
#define KCCL_STATUS_MAP(X)                                                                         \
    X(OK, 0, "success")                                                                            \
    X(INPROGRESS, 1, "operation in progress")                                                      \
    X(ERR_INVALID_ARG, -1, "invalid argument")                                                     \
    X(ERR_NO_MEMORY, -2, "out of memory")                                                          \
    X(ERR_TIMED_OUT, -3, "timed out")                                                              \
    X(ERR_REMOTE, -4, "a remote rank failed or went away")                                         \
    X(ERR_PROTOCOL, -5, "protocol violation")                                                      \
    X(ERR_AUTH, -6, "authentication failed")                                                       \
    X(ERR_SYSTEM, -7, "system call failed")                                                        \
    X(ERR_CUDA, -8, "CUDA error")                                                                  \
    X(ERR_IB, -9, "InfiniBand verbs error")                                                        \
    X(ERR_KUBE, -10, "Kubernetes API error")                                                       \
    X(ERR_UNSUPPORTED, -11, "unsupported")                                                         \
    X(ERR_ABORTED, -12, "aborted")                                                                 \
    X(ERR_ADDR_IN_USE, -13, "address already in use")                                              \
    X(ERR_NOT_FOUND, -14, "not found")                                                             \
    X(ERR_CONFIG, -15, "invalid configuration")

typedef enum {
#define KCCL_STATUS_ENUM_(name, value, desc) KCCL_##name = (value),
    KCCL_STATUS_MAP(KCCL_STATUS_ENUM_)
#undef KCCL_STATUS_ENUM_
} kccl_status_t;

/* A short static description of a status ("timed out"). Never NULL. */
const char *kccl_status_str(kccl_status_t status);

/* The symbolic name of a status ("KCCL_ERR_TIMED_OUT"). Never NULL. */
const char *kccl_status_name(kccl_status_t status);

/*
 * The detailed message of the last failure in the calling thread, e.g.
 * "rank 3: all-gather step 2: lost rank 4 (connection reset by peer)".
 * Thread-local; valid until the next kccl call in this thread. Never NULL.
 */
const char *kccl_last_error(void);

#ifdef __cplusplus
}
#endif
#endif /* KCCL_STATUS_H */
