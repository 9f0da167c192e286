/*
 * sc_handoff.c - the handoff file: what the sidecar tells the application.
 *
 * The text is the runtime's format (runtime/comm/env.c): KEY=value lines,
 * KCCL_UNIQUE_ID, KCCL_RANK, KCCL_WORLD_SIZE, KCCL_EPOCH, KCCL_HOST_ID (the
 * node name) and KCCL_GROUP_SECRET_FILE (a path; the secret itself never
 * passes through the sidecar). It appears atomically - a temporary file in
 * the same directory, fsync, rename, fsync of the directory - so a reader
 * sees the old file, the new one, or none, never a torn one. The probe parses
 * with the runtime's own parser, so "ready" means "the runtime will accept it".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "comm/comm.h"
#include "core/error.h"
#include "sc.h"

static int line_safe(const char *s)
{
    return s != NULL && strpbrk(s, "\r\n") == NULL;
}

kccl_status_t sc_handoff_render(const sc_handoff_t *h, char *buf, size_t len)
{
    const char *host = h->host_id ? h->host_id : "";
    const char *secret = h->secret_file ? h->secret_file : "";
    if (!line_safe(h->unique_id) || !line_safe(host) || !line_safe(secret) ||
        !line_safe(h->pod ? h->pod : "") || (secret[0] && secret[0] != '/'))
        KCCL_FAIL(TOOL, KCCL_ERR_INVALID_ARG,
                  "handoff: a value holds a line break, or the secret path is not absolute");
    int n = snprintf(buf, len,
                     "# kccl handoff for pod %s, written by " SC_NAME "\n"
                     "KCCL_UNIQUE_ID=%s\nKCCL_RANK=%ld\nKCCL_WORLD_SIZE=%ld\nKCCL_EPOCH=%ld\n",
                     h->pod ? h->pod : "?", h->unique_id, h->rank, h->world, h->epoch);
    if (n > 0 && (size_t)n < len && host[0])
        n += snprintf(buf + n, len - (size_t)n, "KCCL_HOST_ID=%s\n", host);
    if (n > 0 && (size_t)n < len && secret[0])
        n += snprintf(buf + n, len - (size_t)n, "KCCL_GROUP_SECRET_FILE=%s\n", secret);
    if (n < 0 || (size_t)n >= len)
        KCCL_FAIL(TOOL, KCCL_ERR_INVALID_ARG, "handoff: longer than %zu bytes", len);
    return KCCL_OK;
}

/* Reads path into buf (NUL-terminated). 0, or -1 with errno. */
static int read_text(const char *path, char *buf, size_t cap, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t total = 0;
    for (;;) {
        ssize_t n = read(fd, buf + total, cap - 1 - total);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        total += (size_t)n;
        if (total == cap - 1)
            break;
    }
    close(fd);
    buf[total] = '\0';
    *len = total;
    return 0;
}

static void split_path(const char *path, char *dir, size_t dlen, const char **base)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        snprintf(dir, dlen, ".");
        *base = path;
    } else if (slash == path) {
        snprintf(dir, dlen, "/");
        *base = slash + 1;
    } else {
        snprintf(dir, dlen, "%.*s", (int)(slash - path), path);
        *base = slash + 1;
    }
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

kccl_status_t sc_handoff_write(const char *path, const char *text, int *written)
{
    char old[SC_HANDOFF_MAX + 1], dir[4096], tmp[4200];
    size_t oldlen, len = strlen(text);
    const char *base;
    *written = 0;
    if (read_text(path, old, sizeof(old), &oldlen) == 0 && oldlen == len &&
        memcmp(old, text, len) == 0)
        return KCCL_OK;
    split_path(path, dir, sizeof(dir), &base);
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp.%d", dir, base, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        KCCL_FAIL(TOOL, KCCL_ERR_SYSTEM,
                  "cannot create %s: %s (is the handoff directory a writable volume shared with "
                  "the application, e.g. an emptyDir at /var/run/kccl?)",
                  tmp, strerror(errno));
    if (fchmod(fd, 0644) != 0 || write_all(fd, text, len) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        KCCL_FAIL(TOOL, KCCL_ERR_SYSTEM, "cannot write %s: %s", tmp, strerror(e));
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        KCCL_FAIL(TOOL, KCCL_ERR_SYSTEM, "cannot put the handoff in place at %s: %s", path,
                  strerror(e));
    }
    if (fsync_dir(dir) != 0)
        kccl_log_warn(TOOL, "fsync of %s failed: %s (the handoff is in place)", dir,
                      strerror(errno));
    *written = 1;
    return KCCL_OK;
}

kccl_status_t sc_handoff_remove(const char *path)
{
    char dir[4096];
    const char *base;
    if (unlink(path) != 0) {
        if (errno == ENOENT)
            return KCCL_OK;
        KCCL_FAIL(TOOL, KCCL_ERR_SYSTEM, "cannot remove the handoff %s: %s", path, strerror(errno));
    }
    split_path(path, dir, sizeof(dir), &base);
    (void)fsync_dir(dir);
    return KCCL_OK;
}

int sc_handoff_probe(const char *path, char *why, size_t whylen)
{
    char text[SC_HANDOFF_MAX + 2], reason[256];
    size_t len;
    kccl_handoff_t h;
    if (read_text(path, text, sizeof(text), &len) != 0) {
        snprintf(why, whylen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (len > SC_HANDOFF_MAX) {
        snprintf(why, whylen, "%s: larger than %d bytes", path, SC_HANDOFF_MAX);
        return -1;
    }
    if (kccl_handoff_parse(text, len, &h, reason, sizeof(reason)) != KCCL_OK) {
        snprintf(why, whylen, "%s: %s", path, reason);
        return -1;
    }
    kccl_unique_id_t id;
    if (kccl_unique_id_from_string(h.unique_id, &id) != KCCL_OK) {
        snprintf(why, whylen, "%s: KCCL_UNIQUE_ID: %s", path, kccl_last_error());
        return -1;
    }
    snprintf(why, whylen, "%s: rank %ld of %ld, epoch %ld", path, h.rank, h.world_size, h.epoch);
    return 0;
}
