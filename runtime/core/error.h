/*
 * error.h - internal error helpers: the thread-local last-error message and
 * the KCCL_CHECK family of macros. Log where an error is first seen (with
 * the peer, the step and errno's text), then propagate the status.
 */
#ifndef KCCL_CORE_ERROR_H
#define KCCL_CORE_ERROR_H

#include "core/log.h"
#include "kccl/kccl_status.h"

/* Sets the message kccl_last_error() returns in this thread. */
void kccl_error_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kccl_error_clear(void);

/* Records a failure: logs it at error level under subsys and sets the last error. */
#define KCCL_FAIL(subsys, status, ...)                                                             \
    do {                                                                                           \
        kccl_error_set(__VA_ARGS__);                                                               \
        kccl_log_error(subsys, "%s", kccl_last_error());                                           \
        return (status);                                                                           \
    } while (0)

#define KCCL_CHECK(call)                                                                           \
    do {                                                                                           \
        kccl_status_t kccl_check_st_ = (call);                                                     \
        if (kccl_check_st_ < 0)                                                                    \
            return kccl_check_st_;                                                                 \
    } while (0)

#define KCCL_CHECK_GOTO(call, st, label)                                                           \
    do {                                                                                           \
        (st) = (call);                                                                             \
        if ((st) < 0)                                                                              \
            goto label;                                                                            \
    } while (0)

#endif
