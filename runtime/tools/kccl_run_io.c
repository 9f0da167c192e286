/*
 * kccl_run_io.c - kccl-run's output relay: each rank's stdout and stderr
 * arrive on pipes and leave on the launcher's stdout and stderr, one whole
 * line at a time, each prefixed with the rank ("[3] text").
 *
 * A line is only printed once its newline has arrived (or its stream ended),
 * so lines of different ranks never interleave mid-line. The unfinished tail
 * of a read waits in a per-stream buffer that grows on demand; a line longer
 * than KR_LINE_MAX is printed in KR_LINE_MAX pieces, each a line of its own,
 * so one rank cannot make the launcher hold unbounded memory. Everything one
 * read() yields goes out in one write(). If the launcher's own stdout or
 * stderr goes away (EPIPE), that side's output is dropped and the ranks keep
 * running.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/kccl_run.h"

#define KR_LINE_MAX    (64 * 1024)
#define KR_READ_BYTES  (64 * 1024)
#define KR_DRAIN_READS 64 /* bound on a drain, in reads: a grandchild may keep writing */

enum { PUMP_DATA = 0, PUMP_CLOSED = 1, PUMP_AGAIN = 2 };

static int g_prefix = 1;
static int g_dead_out[3]; /* fds 1 and 2: the reader went away */
static char *g_obuf;
static size_t g_olen, g_ocap;

void kr_io_set_prefix(int on)
{
    g_prefix = on;
}

/* Appends to the outgoing batch; on allocation failure drops the bytes (and says so once). */
static void out_append(const char *p, size_t n)
{
    if (g_olen + n > g_ocap) {
        size_t cap = g_ocap ? g_ocap : 4096;
        while (cap < g_olen + n)
            cap *= 2;
        char *nb = realloc(g_obuf, cap);
        if (nb == NULL) {
            static int warned;
            if (!warned++)
                kr_msg("out of memory relaying output; some output is lost");
            return;
        }
        g_obuf = nb;
        g_ocap = cap;
    }
    memcpy(g_obuf + g_olen, p, n);
    g_olen += n;
}

static void out_line(int rank, const char *p, size_t n)
{
    if (g_prefix) {
        char pre[24];
        int k = snprintf(pre, sizeof(pre), "[%d] ", rank);
        out_append(pre, (size_t)k);
    }
    out_append(p, n);
    out_append("\n", 1);
}

/* Writes all of buf to fd (blocking on a full non-blocking fd). Returns -1 when fd is gone. */
static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            (void)poll(&pfd, 1, 1000);
        } else {
            return -1;
        }
    }
    return 0;
}

static void out_flush(int fd)
{
    if (g_olen > 0 && (fd == 1 || fd == 2) && !g_dead_out[fd]) {
        if (write_all(fd, g_obuf, g_olen) != 0)
            g_dead_out[fd] = 1;
    }
    g_olen = 0;
}

/* Adds bytes of an unfinished line; full KR_LINE_MAX pieces are printed as they fill. */
static void pend_add(int rank, kr_stream_t *st, const char *p, size_t n)
{
    while (n > 0) {
        if (st->len == KR_LINE_MAX) {
            out_line(rank, st->pend, st->len);
            st->len = 0;
        }
        size_t take = n < KR_LINE_MAX - st->len ? n : KR_LINE_MAX - st->len;
        if (st->len + take > st->cap) {
            size_t cap = st->cap ? st->cap : 256;
            while (cap < st->len + take)
                cap *= 2;
            char *nb = realloc(st->pend, cap);
            if (nb == NULL) { /* print what we have rather than lose it */
                out_line(rank, st->pend, st->len);
                out_line(rank, p, take);
                st->len = 0;
                p += take;
                n -= take;
                continue;
            }
            st->pend = nb;
            st->cap = cap;
        }
        memcpy(st->pend + st->len, p, take);
        st->len += take;
        p += take;
        n -= take;
    }
    if (st->len == KR_LINE_MAX) {
        out_line(rank, st->pend, st->len);
        st->len = 0;
    }
}

static void consume(int rank, kr_stream_t *st, const char *p, size_t n)
{
    const char *end = p + n;
    const char *nl;
    while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        if (st->len > 0) {
            pend_add(rank, st, p, (size_t)(nl - p));
            out_line(rank, st->pend, st->len);
            st->len = 0;
        } else {
            out_line(rank, p, (size_t)(nl - p));
        }
        p = nl + 1;
    }
    if (p < end)
        pend_add(rank, st, p, (size_t)(end - p));
}

static int pump_once(int rank, kr_stream_t *st, int to_fd)
{
    static char buf[KR_READ_BYTES];
    if (st->fd < 0)
        return PUMP_CLOSED;
    ssize_t r = read(st->fd, buf, sizeof(buf));
    if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
        return PUMP_AGAIN;
    if (r <= 0) {
        kr_io_close(rank, st, to_fd);
        return PUMP_CLOSED;
    }
    consume(rank, st, buf, (size_t)r);
    out_flush(to_fd);
    return PUMP_DATA;
}

int kr_io_pump(int rank, kr_stream_t *st, int to_fd)
{
    return pump_once(rank, st, to_fd) == PUMP_CLOSED;
}

void kr_io_drain(int rank, kr_stream_t *st, int to_fd)
{
    for (int i = 0; i < KR_DRAIN_READS; i++)
        if (pump_once(rank, st, to_fd) != PUMP_DATA)
            return;
}

void kr_io_close(int rank, kr_stream_t *st, int to_fd)
{
    if (st->len > 0) {
        out_line(rank, st->pend, st->len);
        out_flush(to_fd);
    }
    if (st->fd >= 0)
        close(st->fd);
    st->fd = -1;
    free(st->pend);
    st->pend = NULL;
    st->len = st->cap = 0;
}
