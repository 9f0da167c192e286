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
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
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

/* getifaddrs() costs ~100 us (a netlink dump) and every bootstrap asks, so
 * the last answer is reused for a few seconds. Interfaces of a pod do not
 * change while it bootstraps; a changed host is seen after the TTL. */
#define NETIF_CACHE_TTL_NS (5LL * 1000 * 1000 * 1000)

static struct {
    pthread_mutex_t lock;
    int valid;
    char spec[64];
    int family;
    int64_t when;
    kccl_wire_addr_t addr;
    char ifname[IFNAMSIZ];
} netif_cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int netif_cache_get(const char *spec, int family, kccl_wire_addr_t *out, char *ifname_out,
                           size_t ifname_len)
{
    int hit = 0;
    pthread_mutex_lock(&netif_cache.lock);
    if (netif_cache.valid && netif_cache.family == family && strcmp(netif_cache.spec, spec) == 0 &&
        mono_ns() - netif_cache.when < NETIF_CACHE_TTL_NS) {
        *out = netif_cache.addr;
        if (ifname_out && ifname_len)
            snprintf(ifname_out, ifname_len, "%s", netif_cache.ifname);
        hit = 1;
    }
    pthread_mutex_unlock(&netif_cache.lock);
    return hit;
}

static void netif_cache_put(const char *spec, int family, const kccl_wire_addr_t *addr,
                            const char *ifname)
{
    if (strlen(spec) >= sizeof(netif_cache.spec))
        return;
    pthread_mutex_lock(&netif_cache.lock);
    snprintf(netif_cache.spec, sizeof(netif_cache.spec), "%s", spec);
    snprintf(netif_cache.ifname, sizeof(netif_cache.ifname), "%s", ifname);
    netif_cache.family = family;
    netif_cache.addr = *addr;
    netif_cache.when = mono_ns();
    netif_cache.valid = 1;
    pthread_mutex_unlock(&netif_cache.lock);
}

kccl_status_t kccl_netif_pick(const char *spec, int family, kccl_wire_addr_t *out, char *ifname_out,
                              size_t ifname_len)
{
    struct ifaddrs *list = NULL, *best = NULL;
    if (spec == NULL)
        spec = "";
    if (netif_cache_get(spec, family, out, ifname_out, ifname_len))
        return KCCL_OK;
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
                  spec,
                  family == 6   ? " with IPv6"
                  : family == 4 ? " with IPv4"
                                : "");
    }
    kccl_wire_addr_from_sockaddr(best->ifa_addr, out);
    out->port = 0;
    netif_cache_put(spec, family, out, best->ifa_name);
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
                      "(a stale job, or another group with the same port)",
                      text);
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

void kccl_sock_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}
