/*
 * ipc_socket.c - fd passing between ranks of one node (see ipc_socket.h).
 */
#include "transport/cuda_ipc/ipc_socket.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "transport/transport.h"

#define IPC_MAGIC 0x4649434Bu /* "KCIF" */

typedef struct {
    uint32_t magic;
    uint32_t from;
    uint64_t group;
    uint64_t token;
} ipc_msg_t;

socklen_t kccl_ipc_sock_name(const char *dir, uint64_t group, int rank, struct sockaddr_un *addr)
{
    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    int n;
    if (dir != NULL && dir[0] != '\0') {
        n = snprintf(addr->sun_path, sizeof(addr->sun_path), "%s/kccl-%016llx-%d.sock", dir,
                     (unsigned long long)group, rank);
        if (n < 0 || (size_t)n >= sizeof(addr->sun_path))
            return 0;
        return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
    }
    n = snprintf(addr->sun_path + 1, sizeof(addr->sun_path) - 1, "kccl-%016llx-%d",
                 (unsigned long long)group, rank);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

kccl_status_t kccl_ipc_sock_open(kccl_ipc_sock_t *s, const char *dir, uint64_t group, int rank)
{
    struct sockaddr_un a;
    memset(s, 0, sizeof(*s));
    s->rank = rank;
    s->group = group;
    snprintf(s->dir, sizeof(s->dir), "%s", dir ? dir : "");
    socklen_t len = kccl_ipc_sock_name(s->dir, group, rank, &a);
    if (len == 0)
        KCCL_FAIL(IPC, KCCL_ERR_CONFIG, "KCCL_IPC_SOCKET_DIR='%s' is too long for a socket path",
                  s->dir);
    s->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s->fd < 0)
        KCCL_FAIL(IPC, KCCL_ERR_SYSTEM, "rank %d: unix socket: %s", rank, strerror(errno));
    if (s->dir[0] != '\0')
        unlink(a.sun_path); /* a stale socket of an earlier group with this name */
    if (bind(s->fd, (struct sockaddr *)&a, len) != 0) {
        int e = errno;
        close(s->fd);
        s->fd = -1;
        KCCL_FAIL(IPC, e == EADDRINUSE ? KCCL_ERR_ADDR_IN_USE : KCCL_ERR_SYSTEM,
                  "rank %d: binding the fd-passing socket %s%s: %s", rank,
                  s->dir[0] ? a.sun_path : "@", s->dir[0] ? "" : a.sun_path + 1, strerror(e));
    }
    return KCCL_OK;
}

void kccl_ipc_sock_close(kccl_ipc_sock_t *s)
{
    struct sockaddr_un a;
    if (s->fd >= 0) {
        close(s->fd);
        if (s->dir[0] != '\0' && kccl_ipc_sock_name(s->dir, s->group, s->rank, &a) != 0)
            unlink(a.sun_path);
    }
    s->fd = -1;
    while (s->box != NULL) {
        kccl_ipc_box_t *b = s->box;
        s->box = b->next;
        close(b->fd);
        free(b);
    }
}

kccl_status_t kccl_ipc_sock_send_fd(kccl_ipc_sock_t *s, int peer, uint64_t token, int fd,
                                    int64_t deadline_ms)
{
    struct sockaddr_un a;
    socklen_t alen = kccl_ipc_sock_name(s->dir, s->group, peer, &a);
    ipc_msg_t m = {IPC_MAGIC, (uint32_t)s->rank, s->group, token};
    struct iovec iov = {&m, sizeof(m)};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    memset(&ctl, 0, sizeof(ctl));
    struct msghdr mh = {.msg_name = &a,
                        .msg_namelen = alen,
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = ctl.buf,
                        .msg_controllen = sizeof(ctl.buf)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    for (;;) {
        if (sendmsg(s->fd, &mh, MSG_NOSIGNAL) == (ssize_t)sizeof(m))
            return KCCL_OK;
        /* Full queue, or the peer has not bound yet: retry until the deadline. */
        if (errno != EAGAIN && errno != ENOENT && errno != ECONNREFUSED && errno != EINTR)
            break;
        if (kccl_tp_now_ms() >= deadline_ms)
            break;
        poll(NULL, 0, 1);
    }
    KCCL_FAIL(IPC, KCCL_ERR_REMOTE,
              "rank %d: passing a memory fd to rank %d over %s: %s (same node? with pods, set "
              "KCCL_IPC_SOCKET_DIR to a directory every pod of the node mounts)",
              s->rank, peer, s->dir[0] ? s->dir : "the abstract namespace", strerror(errno));
}

/* Reads one datagram into the mailbox. 1 when one arrived, 0 when none is waiting. */
static int read_one(kccl_ipc_sock_t *s)
{
    ipc_msg_t m;
    struct iovec iov = {&m, sizeof(m)};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int) * 4)];
    } ctl;
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = ctl.buf,
                        .msg_controllen = sizeof(ctl.buf)};
    ssize_t r = recvmsg(s->fd, &mh, MSG_CMSG_CLOEXEC);
    if (r < 0)
        return 0;
    int fd = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            int fds[4];
            memcpy(fds, CMSG_DATA(c), sizeof(int) * (size_t)(n > 4 ? 4 : n));
            for (int i = 0; i < n && i < 4; i++) {
                if (fd < 0)
                    fd = fds[i];
                else
                    close(fds[i]);
            }
        }
    if (r != (ssize_t)sizeof(m) || m.magic != IPC_MAGIC || m.group != s->group || fd < 0 ||
        (mh.msg_flags & MSG_CTRUNC)) {
        kccl_log_warn(IPC, "rank %d: dropped a malformed or foreign fd-passing datagram", s->rank);
        if (fd >= 0)
            close(fd);
        return 1;
    }
    kccl_ipc_box_t *b = malloc(sizeof(*b));
    if (b == NULL) {
        close(fd);
        return 1;
    }
    b->token = m.token;
    b->from = (int)m.from;
    b->fd = fd;
    b->next = s->box;
    s->box = b;
    return 1;
}

kccl_status_t kccl_ipc_sock_recv_fd(kccl_ipc_sock_t *s, int from, uint64_t token, int *fd,
                                    int64_t deadline_ms)
{
    for (;;) {
        for (kccl_ipc_box_t **pp = &s->box; *pp != NULL; pp = &(*pp)->next)
            if ((*pp)->token == token && (*pp)->from == from) {
                kccl_ipc_box_t *b = *pp;
                *pp = b->next;
                *fd = b->fd;
                free(b);
                return KCCL_OK;
            }
        if (read_one(s))
            continue;
        int64_t left = deadline_ms - kccl_tp_now_ms();
        if (left <= 0)
            KCCL_FAIL(IPC, KCCL_ERR_TIMED_OUT,
                      "rank %d: no memory fd from rank %d by the deadline (is it on this node, "
                      "and does it share %s?)",
                      s->rank, from, s->dir[0] ? "KCCL_IPC_SOCKET_DIR" : "this network namespace");
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        poll(&p, 1, (int)(left > 100 ? 100 : left));
    }
}
