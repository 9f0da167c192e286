/*
 * log.c - the logger behind log.h. One line per message, written with a
 * single write(2) so lines from several threads or ranks never interleave:
 *   "host:pid [rank] kccl WARN BOOT message"
 */
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/config.h"

int kccl_log_threshold[KCCL_SUBSYS_COUNT];
int kccl_log_initialized;

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = 2;
static int log_rank = -1;
static char log_host[64];

static const char *const subsys_names[KCCL_SUBSYS_COUNT] = {
#define KCCL_SUBSYS_NAME_(name) #name,
    KCCL_SUBSYS_MAP(KCCL_SUBSYS_NAME_)
#undef KCCL_SUBSYS_NAME_
};

static const char *const level_names[] = {"NONE", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"};

int kccl_log_parse_level(const char *text)
{
    if (text == NULL || *text == '\0')
        return KCCL_LOG_WARN;
    for (int i = 0; i <= KCCL_LOG_TRACE; i++)
        if (strcasecmp(text, level_names[i]) == 0)
            return i;
    if (strcasecmp(text, "VERSION") == 0) /* what NCCL users type */
        return KCCL_LOG_INFO;
    return -1;
}

int kccl_log_parse_subsys(const char *text, int enabled[KCCL_SUBSYS_COUNT])
{
    int negate = 0;
    if (text == NULL || *text == '\0' || strcasecmp(text, "ALL") == 0) {
        for (int i = 0; i < KCCL_SUBSYS_COUNT; i++)
            enabled[i] = 1;
        return 0;
    }
    if (text[0] == '^') {
        negate = 1;
        text++;
    }
    for (int i = 0; i < KCCL_SUBSYS_COUNT; i++)
        enabled[i] = negate;
    while (*text) {
        size_t n = strcspn(text, ",");
        int found = 0;
        if (n == 3 && strncasecmp(text, "ALL", 3) == 0) {
            for (int i = 0; i < KCCL_SUBSYS_COUNT; i++)
                enabled[i] = !negate;
            found = 1;
        }
        for (int i = 0; i < KCCL_SUBSYS_COUNT && !found; i++) {
            if (strlen(subsys_names[i]) == n && strncasecmp(text, subsys_names[i], n) == 0) {
                enabled[i] = !negate;
                found = 1;
            }
        }
        if (!found && n > 0)
            return -1;
        text += n;
        if (*text == ',')
            text++;
    }
    return 0;
}

int kccl_log_expand_path(const char *pattern, int rank, char *out, size_t outlen)
{
    size_t o = 0;
    char host[64];
    if (gethostname(host, sizeof(host)) != 0)
        strcpy(host, "unknown");
    host[sizeof(host) - 1] = '\0';
    for (const char *p = pattern; *p; p++) {
        char tmp[80];
        const char *piece = tmp;
        if (*p == '%' && p[1] != '\0') {
            p++;
            switch (*p) {
            case 'h': piece = host; break;
            case 'p': snprintf(tmp, sizeof(tmp), "%d", (int)getpid()); break;
            case 'r': snprintf(tmp, sizeof(tmp), "%d", rank); break;
            case '%': piece = "%"; break;
            default: snprintf(tmp, sizeof(tmp), "%%%c", *p); break;
            }
        } else {
            tmp[0] = *p;
            tmp[1] = '\0';
        }
        size_t n = strlen(piece);
        if (o + n + 1 > outlen)
            return -1;
        memcpy(out + o, piece, n);
        o += n;
    }
    out[o] = '\0';
    return 0;
}

static void log_configure(void)
{
    const char *lvl_text = kccl_config_str(KCCL_CFG_LOG_LEVEL);
    int level = kccl_log_parse_level(lvl_text);
    int enabled[KCCL_SUBSYS_COUNT];
    int bad_level = level < 0, bad_subsys = 0;
    if (bad_level)
        level = KCCL_LOG_WARN;
    if (kccl_log_parse_subsys(kccl_config_str(KCCL_CFG_LOG_SUBSYS), enabled) != 0) {
        bad_subsys = 1;
        kccl_log_parse_subsys("ALL", enabled);
    }
    /* Errors always pass: a subsystem filter hides chatter, not failures. */
    for (int i = 0; i < KCCL_SUBSYS_COUNT; i++)
        kccl_log_threshold[i] = enabled[i] ? level : (level > 0 ? KCCL_LOG_ERROR : 0);

    if (gethostname(log_host, sizeof(log_host)) != 0)
        strcpy(log_host, "unknown");
    log_host[sizeof(log_host) - 1] = '\0';
    const char *rank_env = getenv("KCCL_RANK");
    long r;
    if (log_rank < 0 && rank_env && kccl_parse_int(rank_env, &r) == 0 && r >= 0 && r < (1 << 24))
        log_rank = (int)r;

    const char *file = kccl_config_str(KCCL_CFG_LOG_FILE);
    if (log_fd > 2)
        close(log_fd);
    log_fd = 2;
    if (file && *file) {
        char path[4096];
        if (kccl_log_expand_path(file, log_rank, path, sizeof(path)) == 0) {
            int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            if (fd >= 0)
                log_fd = fd;
            else
                dprintf(2, "kccl WARN INIT cannot open KCCL_LOG_FILE %s: %s; logging to stderr\n",
                        path, strerror(errno));
        }
    }
    if (bad_level)
        dprintf(log_fd,
                "kccl WARN INIT unknown KCCL_LOG_LEVEL '%s'; use none, error, warn, info, "
                "debug or trace (using warn)\n",
                lvl_text);
    if (bad_subsys)
        dprintf(log_fd, "kccl WARN INIT unknown name in KCCL_LOG_SUBSYS; use a comma list of "
                        "INIT,BOOT,NET,IPC,IB,PROXY,COLL,KUBE,TOOL or ALL, ^ to negate\n");
}

void kccl_log_init(void)
{
    pthread_mutex_lock(&log_lock);
    if (!__atomic_load_n(&kccl_log_initialized, __ATOMIC_ACQUIRE)) {
        log_configure();
        __atomic_store_n(&kccl_log_initialized, 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&log_lock);
}

void kccl_log_reinit(void)
{
    pthread_mutex_lock(&log_lock);
    log_configure();
    __atomic_store_n(&kccl_log_initialized, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&log_lock);
}

void kccl_log_set_rank(int rank)
{
    __atomic_store_n(&log_rank, rank, __ATOMIC_RELAXED);
}

void kccl_log_write(kccl_log_level_t level, kccl_subsys_t subsys, const char *file, int line,
                    const char *fmt, ...)
{
    char buf[1024];
    int saved_errno = errno;
    int rank = __atomic_load_n(&log_rank, __ATOMIC_RELAXED);
    int n;
    if (rank >= 0)
        n = snprintf(buf, sizeof(buf), "%s:%d [%d] kccl %s %s ", log_host, (int)getpid(), rank,
                     level_names[level], subsys_names[subsys]);
    else
        n = snprintf(buf, sizeof(buf), "%s:%d kccl %s %s ", log_host, (int)getpid(),
                     level_names[level], subsys_names[subsys]);
    if (n < 0)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    errno = saved_errno; /* so %m names the caller's errno */
    int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m > 0 ? (size_t)m : 0);
    if (len > sizeof(buf) - 2)
        len = sizeof(buf) - 2;
    if (level >= KCCL_LOG_DEBUG && file) {
        int k = snprintf(buf + len, sizeof(buf) - len, " (%s:%d)", file, line);
        if (k > 0)
            len = len + (size_t)k > sizeof(buf) - 2 ? sizeof(buf) - 2 : len + (size_t)k;
    }
    buf[len++] = '\n';
    ssize_t w = write(log_fd, buf, len);
    (void)w;
    errno = saved_errno;
}
