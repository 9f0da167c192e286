/*
 * netif.c - interface selection and listening sockets for the bootstrap.
 */
#include "bootstrap/netif.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"

int kccl_netif_match(const char *spec, const char *ifname)
{
    int exclude = 0, exact = 0, hit = 0;
    if (spec == NULL || *spec == '\0')
        return 1;
    if (*spec == '^') {
        exclude = 1;
        spec++;
    }
    if (*spec == '=') {
        exact = 1;
        spec++;
    }
    while (*spec && !hit) {
        size_t n = strcspn(spec, ",");
        if (n > 0) {
            if (exact)
                hit = strlen(ifname) == n && strncmp(ifname, spec, n) == 0;
            else
                hit = strncmp(ifname, spec, n) == 0;
        }
        spec += n;
        if (*spec == ',')
            spec++;
    }
    return exclude ? !hit : hit;
}

static int is_virtual_bridge(const char *name)
{
    static const char *const skip[] = {"docker", "veth", "virbr", "cni", "flannel", "kccl-br"};
    for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
        if (strncmp(name, skip[i], strlen(skip[i])) == 0)
            return 1;
    return 0;
}

/* Rank of a candidate: lower wins. -1 = unusable. */
static int candidate_rank(const struct ifaddrs *ifa, const char *spec, int family)
{
    if (ifa->ifa_addr == NULL || !(ifa->ifa_flags & IFF_UP))
        return -1;
    int fam = ifa->ifa_addr->sa_family;
    if (fam != AF_INET && fam != AF_INET6)
        return -1;
    if ((family == 4 && fam != AF_INET) || (family == 6 && fam != AF_INET6))
        return -1;
    if (fam == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ifa->ifa_addr;
        if (IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr)) /* needs a scope id: not routable */
            return -1;
    }
    if (!kccl_netif_match(spec, ifa->ifa_name))
        return -1;
    int r = fam == AF_INET ? 0 : 1; /* IPv4 first when both are allowed */
    if (spec == NULL || *spec == '\0') {
        if (ifa->ifa_flags & IFF_LOOPBACK)
            r += 10;
        else if (is_virtual_bridge(ifa->ifa_name))
            r += 5;
    }
    return r;
}

kccl_status_t kccl_netif_pick(const char *spec, int family, kccl_wire_addr_t *out,
                              char *ifname_out, size_t ifname_len)
{
    struct ifaddrs *list = NULL, *best = NULL;
    int best_rank = 1 << 30;
    if (getifaddrs(&list) != 0)
        KCCL_FAIL(NET, KCCL_ERR_SYSTEM, "getifaddrs failed: %s", strerror(errno));
    for (struct ifaddrs *ifa = list; ifa; ifa = ifa->ifa_next) {
        int r = candidate_rank(ifa, spec, family);
        if (r >= 0 && r < best_rank) {
            best_rank = r;
            best = ifa;
        }
    }
    if (best == NULL) {
        freeifaddrs(list);
        KCCL_FAIL(NET, KCCL_ERR_CONFIG,
                  "no usable network interface matches KCCL_SOCKET_IFNAME='%s'%s; list the "
                  "interfaces with 'ip addr' and set KCCL_SOCKET_IFNAME to one that is up",
                  spec ? spec : "", family == 6 ? " with IPv6" : family == 4 ? " with IPv4" : "");
    }
    kccl_wire_addr_from_sockaddr(best->ifa_addr, out);
    out->port = 0;
    if (ifname_out && ifname_len) {
        strncpy(ifname_out, best->ifa_name, ifname_len - 1);
        ifname_out[ifname_len - 1] = '\0';
    }
    freeifaddrs(list);
    return KCCL_OK;
}

kccl_status_t kccl_sock_bound_addr(int fd, kccl_wire_addr_t *bound)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        KCCL_FAIL(NET, KCCL_ERR_SYSTEM, "getsockname failed: %s", strerror(errno));
    if (kccl_wire_addr_from_sockaddr((struct sockaddr *)&ss, bound) != KCCL_OK)
        KCCL_FAIL(NET, KCCL_ERR_INVALID_ARG, "socket %d is not an IPv4/IPv6 socket", fd);
    return KCCL_OK;
}

kccl_status_t kccl_sock_listen(const kccl_wire_addr_t *addr, int backlog, int *fd_out,
                               kccl_wire_addr_t *bound)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    char text[64];
    int one = 1;
    kccl_wire_addr_format(addr, text, sizeof(text));
    if (kccl_wire_addr_to_sockaddr(addr, &ss, &sslen) != KCCL_OK)
        KCCL_FAIL(NET, KCCL_ERR_INVALID_ARG, "cannot listen on %s: bad address family", text);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        KCCL_FAIL(NET, KCCL_ERR_SYSTEM, "socket() for %s failed: %s", text, strerror(errno));
    /* SO_REUSEADDR lets a fixed port be re-bound while old connections sit
     * in TIME_WAIT; it does not let two live listeners share a port. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sslen) != 0) {
        int err = errno;
        close(fd);
        if (err == EADDRINUSE)
            KCCL_FAIL(NET, KCCL_ERR_ADDR_IN_USE,
                      "cannot bind %s: address already in use; another process holds the port "
                      "(a stale job, or another group with the same port)", text);
        KCCL_FAIL(NET, KCCL_ERR_SYSTEM, "cannot bind %s: %s", text, strerror(err));
    }
    if (listen(fd, backlog) != 0) {
        int err = errno;
        close(fd);
        KCCL_FAIL(NET, KCCL_ERR_SYSTEM, "listen on %s failed: %s", text, strerror(err));
    }
    kccl_status_t st = kccl_sock_bound_addr(fd, bound);
    if (st != KCCL_OK) {
        close(fd);
        return st;
    }
    *fd_out = fd;
    return KCCL_OK;
}

void kccl_sock_tune(int fd)
{
    int one = 1;
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}
