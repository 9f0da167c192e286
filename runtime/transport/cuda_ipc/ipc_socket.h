/*
 * ipc_socket.h - the node-local Unix datagram socket that carries cuMem file
 * descriptors between ranks (SCM_RIGHTS).
 *
 * Named after the group and the rank, never a pid: pods have their own pid
 * namespaces, so /tmp/<pid> names collide or vanish between them. With
 * KCCL_IPC_SOCKET_DIR set (a hostPath/shared emptyDir mounted in every pod of
 * the node) the socket is <dir>/kccl-<group>-<rank>.sock; otherwise it lives
 * in the abstract namespace ("\0kccl-<group>-<rank>"), which reaches only
 * processes in the same network namespace (ranks of one pod, or hostNetwork
 * pods).
 *
 * Each datagram is {magic, sender rank, group, token} plus one fd. The token
 * (64 random bits, sent to the peer over the authenticated bootstrap inside
 * the memory handle) is what the receiver waits for; datagrams that arrive
 * before they are wanted wait in a small mailbox.
 * Thread-safety: one thread at a time per socket (the set-up calls).
 */
#ifndef KCCL_TRANSPORT_IPC_SOCKET_H
#define KCCL_TRANSPORT_IPC_SOCKET_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "kccl/kccl_status.h"

typedef struct kccl_ipc_box {
    struct kccl_ipc_box *next;
    uint64_t token;
    int from;
    int fd;
} kccl_ipc_box_t;

typedef struct kccl_ipc_sock {
    int fd;
    int rank;
    uint64_t group;
    char dir[96]; /* "" = abstract namespace */
    kccl_ipc_box_t *box;
} kccl_ipc_sock_t;

/* Fills addr with rank's socket name; returns its length (0 if it does not fit). */
socklen_t kccl_ipc_sock_name(const char *dir, uint64_t group, int rank, struct sockaddr_un *addr);

kccl_status_t kccl_ipc_sock_open(kccl_ipc_sock_t *s, const char *dir, uint64_t group, int rank);
void kccl_ipc_sock_close(kccl_ipc_sock_t *s);
kccl_status_t kccl_ipc_sock_send_fd(kccl_ipc_sock_t *s, int peer, uint64_t token, int fd,
                                    int64_t deadline_ms);
/* Waits for the fd with token from rank `from`; *fd is the caller's to close. */
kccl_status_t kccl_ipc_sock_recv_fd(kccl_ipc_sock_t *s, int from, uint64_t token, int *fd,
                                    int64_t deadline_ms);

#endif
