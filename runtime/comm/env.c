/*
 * env.c - kccl_comm_init_from_env(): where the group's keys come from.
 *
 * With KCCL_BOOTSTRAP_FILE set (kccl-sidecar's handoff, default path
 * /var/run/kccl/bootstrap in pods), the runtime waits for the file within
 * the bootstrap deadline, parses it strictly and uses its keys; otherwise
 * the keys come from the environment (kccl-run). The file wins over the
 * environment for the keys it carries.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bootstrap/bootstrap_int.h"
#include "bootstrap/engine.h"
#include "comm/comm.h"
#include "core/config.h"
#include "core/error.h"

#define HANDOFF_MAX_BYTES 65536

enum { K_UID = 1, K_RANK = 2, K_WORLD = 4, K_EPOCH = 8, K_HOST = 16, K_SECRET = 32 };

static int parse_long_strict(const char *v, long lo, long hi, long *out)
{
    char *end;
    if (*v == '\0' || *v == '+' || *v == ' ')
        return -1;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || x < lo || x > hi)
        return -1;
    *out = x;
    return 0;
}

static int handoff_set(kccl_handoff_t *h, const char *key, const char *val, const char **err)
{
    struct {
        const char *name;
        unsigned bit;
    } keys[] = {{"KCCL_UNIQUE_ID", K_UID},    {"KCCL_RANK", K_RANK},
                {"KCCL_WORLD_SIZE", K_WORLD}, {"KCCL_EPOCH", K_EPOCH},
                {"KCCL_HOST_ID", K_HOST},     {"KCCL_GROUP_SECRET_FILE", K_SECRET}};
    unsigned bit = 0;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(key, keys[i].name) == 0)
            bit = keys[i].bit;
    if (bit == 0) {
        if (strncmp(key, "KCCL_", 5) == 0)
            return 0; /* a newer sidecar's key: ignored */
        *err = "unknown key";
        return -1;
    }
    if (h->seen & bit) {
        *err = "key given twice";
        return -1;
    }
    h->seen |= bit;
    size_t n = strlen(val);
    switch (bit) {
    case K_UID:
        if (n != KCCL_UNIQUE_ID_STRLEN)
            return *err = "KCCL_UNIQUE_ID has the wrong length", -1;
        memcpy(h->unique_id, val, n + 1);
        return 0;
    case K_RANK:
        return parse_long_strict(val, 0, (1 << 24) - 1, &h->rank) ? (*err = "bad KCCL_RANK", -1)
                                                                  : 0;
    case K_WORLD:
        return parse_long_strict(val, 1, 1 << 24, &h->world_size)
                   ? (*err = "bad KCCL_WORLD_SIZE", -1)
                   : 0;
    case K_EPOCH:
        return parse_long_strict(val, 0, 1L << 40, &h->epoch) ? (*err = "bad KCCL_EPOCH", -1) : 0;
    case K_HOST:
        if (n == 0 || n >= sizeof(h->host_id))
            return *err = "KCCL_HOST_ID is empty or too long", -1;
        memcpy(h->host_id, val, n + 1);
        return 0;
    default:
        if (n == 0 || n >= sizeof(h->secret_file) || val[0] != '/')
            return *err = "KCCL_GROUP_SECRET_FILE must be an absolute path", -1;
        memcpy(h->secret_file, val, n + 1);
        return 0;
    }
}

kccl_status_t kccl_handoff_parse(const char *text, size_t len, kccl_handoff_t *out, char *why,
                                 size_t whylen)
{
    char line[8192];
    const char *err = NULL;
    int lineno = 0;
    kccl_handoff_t h;
    memset(&h, 0, sizeof(h));
    h.rank = -1;
    if (memchr(text, '\0', len)) {
        snprintf(why, whylen, "the handoff holds a NUL byte");
        return KCCL_ERR_PROTOCOL;
    }
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        lineno++;
        if (n >= sizeof(line)) {
            snprintf(why, whylen, "line %d is too long", lineno);
            return KCCL_ERR_PROTOCOL;
        }
        memcpy(line, text + pos, n);
        line[n] = '\0';
        if (n && line[n - 1] == '\r')
            line[n - 1] = '\0';
        pos += n + (nl ? 1 : 0);
        if (line[0] == '\0' || line[0] == '#')
            continue;
        char *eq = strchr(line, '=');
        if (eq == NULL) {
            snprintf(why, whylen, "line %d is not KEY=value", lineno);
            return KCCL_ERR_PROTOCOL;
        }
        *eq = '\0';
        if (handoff_set(&h, line, eq + 1, &err) != 0) {
            snprintf(why, whylen, "line %d (%.64s): %s", lineno, line, err);
            return KCCL_ERR_PROTOCOL;
        }
    }
    unsigned need = K_UID | K_RANK | K_WORLD;
    if ((h.seen & need) != need) {
        snprintf(why, whylen, "KCCL_UNIQUE_ID, KCCL_RANK and KCCL_WORLD_SIZE are all required");
        return KCCL_ERR_PROTOCOL;
    }
    if (h.rank >= h.world_size) {
        snprintf(why, whylen, "KCCL_RANK %ld is not below KCCL_WORLD_SIZE %ld", h.rank,
                 h.world_size);
        return KCCL_ERR_PROTOCOL;
    }
    *out = h;
    return KCCL_OK;
}

static kccl_status_t read_small_file(const char *path, char *buf, size_t cap, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return KCCL_ERR_NOT_FOUND;
    size_t total = 0;
    for (;;) {
        ssize_t n = read(fd, buf + total, cap - total);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        total += (size_t)n;
        if (total == cap)
            break;
    }
    close(fd);
    if (total == cap)
        KCCL_FAIL(INIT, KCCL_ERR_PROTOCOL, "handoff file %s is larger than %zu bytes", path,
                  cap - 1);
    *len = total;
    return KCCL_OK;
}

kccl_status_t kccl_handoff_load(const char *path, int64_t timeout_ms, kccl_handoff_t *out)
{
    char *buf = malloc(HANDOFF_MAX_BYTES);
    size_t len = 0;
    char why[256];
    int64_t deadline = kccl_now_ms() + timeout_ms, waited = 0;
    kccl_status_t st;
    if (buf == NULL)
        KCCL_FAIL(INIT, KCCL_ERR_NO_MEMORY, "out of memory reading the handoff file");
    /* The sidecar renames the file into place, so it appears whole; poll for it. */
    while ((st = read_small_file(path, buf, HANDOFF_MAX_BYTES, &len)) == KCCL_ERR_NOT_FOUND) {
        if (kccl_now_ms() >= deadline) {
            free(buf);
            KCCL_FAIL(INIT, KCCL_ERR_TIMED_OUT,
                      "the handoff file %s did not appear within %.1f s; is the kccl sidecar "
                      "running (kubectl logs POD -c kccl-sidecar) and the pod annotated?",
                      path, (double)timeout_ms / 1000);
        }
        if (waited++ == 50)
            kccl_log_info(INIT, "waiting for the handoff file %s", path);
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (st == KCCL_OK)
        st = kccl_handoff_parse(buf, len, out, why, sizeof(why));
    else
        snprintf(why, sizeof(why), "%s", kccl_last_error());
    free(buf);
    if (st != KCCL_OK)
        KCCL_FAIL(INIT, st, "invalid handoff file %s: %s", path, why);
    return KCCL_OK;
}

static kccl_status_t keys_from_env(kccl_handoff_t *h)
{
    long v;
    memset(h, 0, sizeof(*h));
    if (!kccl_config_is_set(KCCL_CFG_UNIQUE_ID) || !kccl_config_is_set(KCCL_CFG_RANK) ||
        !kccl_config_is_set(KCCL_CFG_WORLD_SIZE))
        KCCL_FAIL(INIT, KCCL_ERR_CONFIG,
                  "KCCL_UNIQUE_ID, KCCL_RANK and KCCL_WORLD_SIZE must be set (run under kccl-run "
                  "-n N, or in a pod with the kccl sidecar and KCCL_BOOTSTRAP_FILE)");
    snprintf(h->unique_id, sizeof(h->unique_id), "%s", kccl_config_str(KCCL_CFG_UNIQUE_ID));
    KCCL_CHECK(kccl_config_int(KCCL_CFG_WORLD_SIZE, &v));
    h->world_size = v;
    KCCL_CHECK(kccl_config_int(KCCL_CFG_RANK, &v));
    h->rank = v;
    if (h->world_size < 1 || h->rank < 0 || h->rank >= h->world_size)
        KCCL_FAIL(INIT, KCCL_ERR_CONFIG, "KCCL_RANK=%ld must be in 0..KCCL_WORLD_SIZE-1 (%ld)",
                  h->rank, h->world_size - 1);
    return KCCL_OK;
}

/*
 * The handoff file watched during the bootstrap. When the sidecar rewrites it (the operator
 * bumped the epoch: a member failed and the group re-forms with a new unique id) or removes
 * it, a rank still bootstrapping with the old id could only fail at its deadline; instead
 * the watcher aborts that bootstrap and kccl_comm_init_from_env starts over with the new
 * file. The bootstrap is reached through the bootstrap observer (bootstrap_int.h): the
 * mutex keeps an abort from racing with its free.
 */
typedef struct {
    pthread_mutex_t mu;
    pthread_t thread;
    int stop;            /* mu */
    int changed;         /* mu */
    kccl_bootstrap_t bs; /* mu: the bootstrap being created, or NULL */
    const char *path;
    kccl_handoff_t base; /* what the current attempt started from */
    kccl_handoff_t now;  /* the file that replaced it */
} handoff_watch_t;

#define HANDOFF_POLL_MS    100
#define HANDOFF_MAX_REFORM 16

static void watch_created(void *arg, kccl_bootstrap_t bs)
{
    handoff_watch_t *w = arg;
    pthread_mutex_lock(&w->mu);
    w->bs = bs;
    if (w->changed)
        kccl_bootstrap_abort(bs);
    pthread_mutex_unlock(&w->mu);
}

static void watch_gone(void *arg, kccl_bootstrap_t bs)
{
    handoff_watch_t *w = arg;
    pthread_mutex_lock(&w->mu);
    if (w->bs == bs)
        w->bs = NULL;
    pthread_mutex_unlock(&w->mu);
}

/* 1 when the file now names another group than base (or is gone). */
static int handoff_changed(handoff_watch_t *w)
{
    char *buf = malloc(HANDOFF_MAX_BYTES), why[256];
    size_t len = 0;
    int changed = 0;
    if (buf == NULL)
        return 0;
    kccl_status_t st = read_small_file(w->path, buf, HANDOFF_MAX_BYTES, &len);
    if (st == KCCL_ERR_NOT_FOUND) {
        memset(&w->now, 0, sizeof(w->now));
        changed = 1;
    } else if (st == KCCL_OK &&
               kccl_handoff_parse(buf, len, &w->now, why, sizeof(why)) == KCCL_OK) {
        changed = strcmp(w->now.unique_id, w->base.unique_id) != 0 || w->now.epoch != w->base.epoch;
    }
    free(buf);
    return changed;
}

static void *watch_main(void *arg)
{
    handoff_watch_t *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        int stop = w->stop;
        pthread_mutex_unlock(&w->mu);
        if (stop)
            break;
        if (handoff_changed(w)) {
            pthread_mutex_lock(&w->mu);
            w->changed = 1;
            if (w->bs != NULL)
                kccl_bootstrap_abort(w->bs);
            pthread_mutex_unlock(&w->mu);
            break;
        }
        struct timespec ts = {0, HANDOFF_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* Options, id and rank of one attempt from the handoff file h. */
static kccl_status_t handoff_opts(const kccl_handoff_t *h, kccl_bootstrap_opts_t *opts)
{
    KCCL_CHECK(kccl_bootstrap_opts_from_env(opts));
    if (h->secret_file[0]) {
        setenv("KCCL_GROUP_SECRET_FILE", h->secret_file, 1);
        KCCL_CHECK(kccl_bootstrap_opts_from_env(opts));
    }
    if (h->host_id[0])
        snprintf(opts->host_id, sizeof(opts->host_id), "%s", h->host_id);
    return KCCL_OK;
}

/* One attempt from the handoff file; *changed when the file changed during it. */
static kccl_status_t init_from_handoff(const char *path, int64_t timeout_ms, kccl_handoff_t *h,
                                       int *changed, kccl_comm_t *out)
{
    kccl_bootstrap_opts_t opts;
    kccl_unique_id_t id;
    *changed = 0;
    KCCL_CHECK(kccl_handoff_load(path, timeout_ms, h));
    KCCL_CHECK(handoff_opts(h, &opts));
    KCCL_CHECK(kccl_unique_id_from_string(h->unique_id, &id));
    handoff_watch_t w = {.path = path, .base = *h};
    pthread_mutex_init(&w.mu, NULL);
    int watching = pthread_create(&w.thread, NULL, watch_main, &w) == 0;
    kccl_bootstrap_observer_t obs = {watch_created, watch_gone, &w};
    kccl_bootstrap_observe(&obs);
    kccl_status_t st = kccl_comm_init_rank(&id, (int)h->rank, (int)h->world_size, &opts, out);
    kccl_bootstrap_observe(NULL);
    pthread_mutex_lock(&w.mu);
    w.stop = 1;
    w.bs = NULL;
    pthread_mutex_unlock(&w.mu);
    if (watching)
        pthread_join(w.thread, NULL);
    pthread_mutex_destroy(&w.mu);
    if (st != KCCL_OK && w.changed) {
        *changed = 1;
        kccl_log_warn(INIT,
                      "handoff file %s changed during the bootstrap (epoch %ld -> %s): the group "
                      "re-forms; starting over with the new file",
                      path, h->epoch, w.now.unique_id[0] ? "new id" : "file removed");
    }
    return st;
}

kccl_status_t kccl_comm_init_from_env(kccl_comm_t *out)
{
    kccl_handoff_t h = {0};
    kccl_bootstrap_opts_t opts;
    kccl_unique_id_t id;
    KCCL_CHECK(kccl_bootstrap_opts_from_env(&opts));
    if (kccl_config_is_set(KCCL_CFG_BOOTSTRAP_FILE)) {
        const char *path = kccl_config_str(KCCL_CFG_BOOTSTRAP_FILE);
        kccl_status_t st;
        int changed = 0, attempts = 0;
        do
            st = init_from_handoff(path, opts.timeout_ms, &h, &changed, out);
        while (st != KCCL_OK && changed && ++attempts < HANDOFF_MAX_REFORM);
        return st;
    }
    KCCL_CHECK(keys_from_env(&h));
    KCCL_CHECK(kccl_unique_id_from_string(h.unique_id, &id));
    return kccl_comm_init_rank(&id, (int)h.rank, (int)h.world_size, &opts, out);
}
