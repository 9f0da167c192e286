/*
 * status.c - kccl_status_str(), kccl_status_name() and the thread-local
 * "last error" message. The message is set where an error is first seen
 * (kccl_error_set) and read by callers with kccl_last_error().
 */
#include <stdarg.h>
#include <stdio.h>

#include "core/error.h"
#include "kccl/kccl_status.h"
#include "kccl/kccl_version.h"

const char *kccl_status_str(kccl_status_t status)
{
    switch (status) {
#define KCCL_STATUS_STR_(name, value, desc)                                                        \
    case KCCL_##name: return desc;
        KCCL_STATUS_MAP(KCCL_STATUS_STR_)
#undef KCCL_STATUS_STR_
    }
    return "unknown status";
}

const char *kccl_status_name(kccl_status_t status)
{
    switch (status) {
#define KCCL_STATUS_NAME_(name, value, desc)                                                       \
    case KCCL_##name: return "KCCL_" #name;
        KCCL_STATUS_MAP(KCCL_STATUS_NAME_)
#undef KCCL_STATUS_NAME_
    }
    return "KCCL_UNKNOWN";
}

int kccl_version(void)
{
    return KCCL_VERSION_CODE;
}

static _Thread_local char last_error[512];

const char *kccl_last_error(void)
{
    return last_error[0] ? last_error : "no error";
}

void kccl_error_set(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof(last_error), fmt, ap);
    va_end(ap);
}

void kccl_error_clear(void)
{
    last_error[0] = '\0';
}
