/*
 * netif.h - which local address the bootstrap binds, and listening sockets.
 *
 * KCCL_SOCKET_IFNAME: comma list of interface-name prefixes; a leading '^'
 * turns the list into exclusions; a leading '=' makes matches exact
 * ("=eth0" matches eth0 but not eth01; "^=lo" excludes lo alone). With no
 * list, the first up, non-loopback interface wins, skipping docker*, veth*,
 * virbr* and cni* bridges, and loopback is the last resort.
 */
#ifndef KCCL_BOOTSTRAP_NETIF_H
#define KCCL_BOOTSTRAP_NETIF_H

#include <stddef.h>
#include <sys/socket.h>

#include "bootstrap/wire.h"
#include "kccl/kccl_status.h"

/* 1 if ifname is selected by spec (see above). Pure, for tests. */
int kccl_netif_match(const char *spec, const char *ifname);

/*
 * Picks a local address. family: 0 any (IPv4 preferred), 4 or 6. Port 0.
 * ifname_out (may be NULL) receives the interface's name.
 */
kccl_status_t kccl_netif_pick(const char *spec, int family, kccl_wire_addr_t *out, char *ifname_out,
                              size_t ifname_len);

/*
 * Opens a non-blocking, close-on-exec TCP listener on addr (port 0 picks
 * one) and fills *bound with the real address. EADDRINUSE gives
 * KCCL_ERR_ADDR_IN_USE at once.
 */
kccl_status_t kccl_sock_listen(const kccl_wire_addr_t *addr, int backlog, int *fd,
                               kccl_wire_addr_t *bound);

/* Reads a listener's bound address (for inherited descriptors). */
kccl_status_t kccl_sock_bound_addr(int fd, kccl_wire_addr_t *bound);

/* Sets TCP_NODELAY: handshake and data frames are small and latency-bound.
 * (Sockets are created non-blocking and close-on-exec already.) */
void kccl_sock_nodelay(int fd);

#endif
