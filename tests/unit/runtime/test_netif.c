/*
 * test_netif.c - runtime/bootstrap/netif.c: the KCCL_SOCKET_IFNAME matcher,
 * interface picking on loopback, and listening sockets (port 0, a port
 * already held, IPv6 loopback where the host has it).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>

#include "bootstrap/netif.h"
#include "core/error.h"
#include "kccl_test.h"

static void test_match_empty_spec(void **state)
{
    assert_int_equal(kccl_netif_match(NULL, "eth0"), 1);
    assert_int_equal(kccl_netif_match("", "lo"), 1);
}

static void test_match_prefix_list(void **state)
{
    assert_int_equal(kccl_netif_match("eth", "eth0"), 1);
    assert_int_equal(kccl_netif_match("eth", "eth10"), 1);
    assert_int_equal(kccl_netif_match("eth", "ens3"), 0);
    assert_int_equal(kccl_netif_match("eth", "et"), 0);
    assert_int_equal(kccl_netif_match("eth0", "eth0"), 1);
    assert_int_equal(kccl_netif_match("eth0", "eth01"), 1); /* prefix */
    assert_int_equal(kccl_netif_match("eth,ens", "ens5"), 1);
    assert_int_equal(kccl_netif_match("eth,ens", "eth2"), 1);
    assert_int_equal(kccl_netif_match("eth,ens", "ib0"), 0);
    assert_int_equal(kccl_netif_match("ib,,eth", "eth1"), 1); /* empty items skipped */
    assert_int_equal(kccl_netif_match(",", "eth1"), 0);       /* a list of nothing */
    assert_int_equal(kccl_netif_match("ETH", "eth0"), 0);     /* names are case-sensitive */
}

static void test_match_exclude(void **state)
{
    assert_int_equal(kccl_netif_match("^docker", "docker0"), 0);
    assert_int_equal(kccl_netif_match("^docker", "eth0"), 1);
    assert_int_equal(kccl_netif_match("^docker,lo", "lo"), 0);
    assert_int_equal(kccl_netif_match("^docker,lo", "lo0"), 0);
    assert_int_equal(kccl_netif_match("^docker,lo", "eth0"), 1);
    assert_int_equal(kccl_netif_match("^", "eth0"), 1); /* excludes nothing */
}

static void test_match_exact(void **state)
{
    assert_int_equal(kccl_netif_match("=eth0", "eth0"), 1);
    assert_int_equal(kccl_netif_match("=eth0", "eth01"), 0);
    assert_int_equal(kccl_netif_match("=eth0", "eth"), 0);
    assert_int_equal(kccl_netif_match("=eth0,ib0", "ib0"), 1);
    assert_int_equal(kccl_netif_match("=eth0,ib0", "ib01"), 0);
    /* Exclusion and exactness combine: ^= excludes these names alone. */
    assert_int_equal(kccl_netif_match("^=lo", "lo"), 0);
    assert_int_equal(kccl_netif_match("^=lo", "lo0"), 1);
    assert_int_equal(kccl_netif_match("^=lo", "eth0"), 1);
    assert_int_equal(kccl_netif_match("^=lo,docker0", "docker0"), 0);
    assert_int_equal(kccl_netif_match("^=lo,docker0", "docker01"), 1);
}

static void test_pick_loopback(void **state)
{
    kccl_wire_addr_t a;
    char ifname[32] = "";
    char text[64];
    assert_int_equal(kccl_netif_pick("lo", 4, &a, ifname, sizeof(ifname)), KCCL_OK);
    assert_int_equal(a.family, 4);
    assert_int_equal(a.port, 0);
    kccl_wire_addr_format(&a, text, sizeof(text));
    assert_string_equal(text, "127.0.0.1:0");
    assert_string_equal(ifname, "lo");
    /* Exact form and any family: loopback still prefers IPv4. */
    memset(&a, 0, sizeof(a));
    assert_int_equal(kccl_netif_pick("=lo", 0, &a, NULL, 0), KCCL_OK);
    assert_int_equal(a.family, 4);
    /* A short name buffer is truncated, not overrun. */
    char tiny[2] = "xy";
    assert_int_equal(kccl_netif_pick("lo", 4, &a, tiny, sizeof(tiny)), KCCL_OK);
    assert_string_equal(tiny, "l");
}

static void test_pick_missing_interface(void **state)
{
    kccl_wire_addr_t a;
    kccl_error_clear();
    assert_int_equal(kccl_netif_pick("nosuchif9", 0, &a, NULL, 0), KCCL_ERR_CONFIG);
    assert_non_null(strstr(kccl_last_error(), "nosuchif9"));
    assert_int_equal(kccl_netif_pick("=l", 0, &a, NULL, 0), KCCL_ERR_CONFIG);
}

static void test_pick_automatic(void **state)
{
    /* Whatever the host has, automatic choice finds something (at worst lo). */
    kccl_wire_addr_t a;
    char ifname[32];
    assert_int_equal(kccl_netif_pick(NULL, 0, &a, ifname, sizeof(ifname)), KCCL_OK);
    assert_true(a.family == 4 || a.family == 6);
    assert_true(strlen(ifname) > 0);
    assert_int_equal(kccl_netif_pick("", 4, &a, NULL, 0), KCCL_OK);
    assert_int_equal(a.family, 4);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int is_listening(int fd)
{
    int on = 0;
    socklen_t len = sizeof(on);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) != 0)
        return 0;
    return on;
}

static void test_listen_loopback(void **state)
{
    kccl_wire_addr_t want = {.family = 4}, bound, bound2;
    int fd = -1, fd2 = -1;
    assert_int_equal(inet_pton(AF_INET, "127.0.0.1", want.addr), 1);
    assert_int_equal(kccl_sock_listen(&want, 16, &fd, &bound), KCCL_OK);
    assert_true(fd >= 0);
    assert_int_equal(bound.family, 4);
    assert_int_not_equal(bound.port, 0);
    assert_memory_equal(bound.addr, want.addr, 4);
    assert_true(is_listening(fd));
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
    assert_int_equal(kccl_sock_bound_addr(fd, &bound2), KCCL_OK);
    assert_int_equal(bound2.port, bound.port);

    /* The same port again: refused at once, not after retries. */
    kccl_wire_addr_t again = bound;
    int fd_again = -1;
    kccl_error_clear();
    double t0 = now_s();
    assert_int_equal(kccl_sock_listen(&again, 16, &fd_again, &bound2), KCCL_ERR_ADDR_IN_USE);
    assert_true(now_s() - t0 < 1.0);
    assert_int_equal(fd_again, -1);
    assert_non_null(strstr(kccl_last_error(), "in use"));

    /* A second listener on another ephemeral port is fine. */
    assert_int_equal(kccl_sock_listen(&want, 16, &fd2, &bound2), KCCL_OK);
    assert_int_not_equal(bound2.port, bound.port);
    close(fd2);
    close(fd);
}

static void test_listen_bad_family(void **state)
{
    kccl_wire_addr_t bad = {.family = 9}, bound;
    int fd = -1;
    assert_int_equal(kccl_sock_listen(&bad, 4, &fd, &bound), KCCL_ERR_INVALID_ARG);
    assert_int_equal(fd, -1);
    /* Not an open descriptor. */
    assert_int_not_equal(kccl_sock_bound_addr(1000, &bound), KCCL_OK);
}

static void test_listen_ipv6_loopback(void **state)
{
    kccl_wire_addr_t want = {.family = 6}, bound;
    int fd = -1;
    assert_int_equal(inet_pton(AF_INET6, "::1", want.addr), 1);
    /* Hosts (and CI containers) without IPv6 on lo cannot bind ::1. */
    int probe = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    int have_v6 = probe >= 0 && bind(probe, (struct sockaddr *)&sin6, sizeof(sin6)) == 0;
    if (probe >= 0)
        close(probe);
    if (!have_v6) {
        print_message("skipping: no IPv6 loopback on this host\n");
        skip();
    }
    assert_int_equal(kccl_sock_listen(&want, 8, &fd, &bound), KCCL_OK);
    assert_int_equal(bound.family, 6);
    assert_int_not_equal(bound.port, 0);
    assert_true(is_listening(fd));
    char text[64];
    kccl_wire_addr_format(&bound, text, sizeof(text));
    assert_memory_equal(text, "[::1]:", 6);
    int fd2 = -1;
    kccl_wire_addr_t again = bound;
    assert_int_equal(kccl_sock_listen(&again, 8, &fd2, &bound), KCCL_ERR_ADDR_IN_USE);
    close(fd);

    /* And lo's IPv6 address is what the picker gives for family 6. */
    kccl_wire_addr_t a;
    assert_int_equal(kccl_netif_pick("lo", 6, &a, NULL, 0), KCCL_OK);
    assert_int_equal(a.family, 6);
    assert_memory_equal(a.addr, want.addr, 16);
}

static void test_sock_nodelay(void **state)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int on = 0;
    socklen_t len = sizeof(on);
    assert_true(fd >= 0);
    kccl_sock_nodelay(fd);
    assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len), 0);
    assert_int_not_equal(on, 0);
    close(fd);
}

static int quiet_log(void **state)
{
    setenv("KCCL_LOG_LEVEL", "none", 1);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_empty_spec),  cmocka_unit_test(test_match_prefix_list),
        cmocka_unit_test(test_match_exclude),     cmocka_unit_test(test_match_exact),
        cmocka_unit_test(test_pick_loopback),     cmocka_unit_test(test_pick_missing_interface),
        cmocka_unit_test(test_pick_automatic),    cmocka_unit_test(test_listen_loopback),
        cmocka_unit_test(test_listen_bad_family), cmocka_unit_test(test_listen_ipv6_loopback),
        cmocka_unit_test(test_sock_nodelay),
    };
    return cmocka_run_group_tests(tests, quiet_log, NULL);
}
