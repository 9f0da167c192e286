/*
 * log.h - leveled, per-subsystem logging.
 *
 * KCCL_LOG_LEVEL (none|error|warn|info|debug|trace, default warn),
 * KCCL_LOG_SUBSYS (comma list of INIT,BOOT,NET,IPC,IB,PROXY,COLL,KUBE,ALL;
 * a leading ^ negates), KCCL_LOG_FILE (%h host, %p pid, %r rank; default
 * stderr). The level/subsystem test runs before any formatting, so disabled
 * messages cost one load and one compare. Messages are lower case and say
 * what failed and what to do. Never log secrets or tokens.
 */
#ifndef KCCL_CORE_LOG_H
#define KCCL_CORE_LOG_H

#include <stdio.h>

typedef enum {
    KCCL_LOG_NONE = 0,
    KCCL_LOG_ERROR = 1,
    KCCL_LOG_WARN = 2,
    KCCL_LOG_INFO = 3,
    KCCL_LOG_DEBUG = 4,
    KCCL_LOG_TRACE = 5,
} kccl_log_level_t;

#define KCCL_SUBSYS_MAP(X) X(INIT) X(BOOT) X(NET) X(IPC) X(IB) X(PROXY) X(COLL) X(KUBE) X(TOOL)

typedef enum {
#define KCCL_SUBSYS_ENUM_(name) KCCL_SUBSYS_##name,
    KCCL_SUBSYS_MAP(KCCL_SUBSYS_ENUM_)
#undef KCCL_SUBSYS_ENUM_
        KCCL_SUBSYS_COUNT
} kccl_subsys_t;

/* Per-subsystem threshold; index by kccl_subsys_t. Set by kccl_log_init(). */
extern int kccl_log_threshold[KCCL_SUBSYS_COUNT];

/* Reads KCCL_LOG_* once (idempotent, thread-safe). Called lazily by kccl_log(). */
void kccl_log_init(void);
/* Re-reads the environment (tests). */
void kccl_log_reinit(void);
/* The rank shown in messages and in %r; -1 = unknown. */
void kccl_log_set_rank(int rank);

/* Parses a level name; returns -1 on an unknown name. */
int kccl_log_parse_level(const char *text);
/* Parses a subsystem list into per-subsystem on/off flags; returns 0 or -1 (names bad token). */
int kccl_log_parse_subsys(const char *text, int enabled[KCCL_SUBSYS_COUNT]);
/* Expands %h %p %r %% in a file pattern. Returns 0 or -1 if it does not fit. */
int kccl_log_expand_path(const char *pattern, int rank, char *out, size_t outlen);

void kccl_log_write(kccl_log_level_t level, kccl_subsys_t subsys, const char *file, int line,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

extern int kccl_log_initialized;

#define KCCL_LOG_(level, subsys, ...)                                                              \
    do {                                                                                           \
        if (__builtin_expect(!kccl_log_initialized, 0))                                            \
            kccl_log_init();                                                                       \
        if (kccl_log_threshold[KCCL_SUBSYS_##subsys] >= (level))                                   \
            kccl_log_write((level), KCCL_SUBSYS_##subsys, __FILE__, __LINE__, __VA_ARGS__);        \
    } while (0)

#define kccl_log_error(subsys, ...) KCCL_LOG_(KCCL_LOG_ERROR, subsys, __VA_ARGS__)
#define kccl_log_warn(subsys, ...)  KCCL_LOG_(KCCL_LOG_WARN, subsys, __VA_ARGS__)
#define kccl_log_info(subsys, ...)  KCCL_LOG_(KCCL_LOG_INFO, subsys, __VA_ARGS__)
#define kccl_log_debug(subsys, ...) KCCL_LOG_(KCCL_LOG_DEBUG, subsys, __VA_ARGS__)
#define kccl_log_trace(subsys, ...) KCCL_LOG_(KCCL_LOG_TRACE, subsys, __VA_ARGS__)

#endif
