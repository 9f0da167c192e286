/*
 * test_wire.c - runtime/bootstrap/wire.c: every message round-trips through
 * its encoder and decoder with exact byte layouts, and every decoder refuses
 * truncated or malformed input with KCCL_ERR_PROTOCOL and a reason.
 * Also the sockaddr conversions and the address formatter.
 */
#include "bootstrap/wire.h"
#include "kccl_test.h"

/* The highest frame type wire.h defines: update when a type is added. */
#define LAST_MSG_TYPE KCCL_MSG_BYE

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

static kccl_wire_addr_t addr4(const char *ip, uint16_t port)
{
    kccl_wire_addr_t a;
    memset(&a, 0, sizeof(a));
    a.family = 4;
    a.port = port;
    assert_int_equal(inet_pton(AF_INET, ip, a.addr), 1);
    return a;
}

static kccl_wire_addr_t addr6(const char *ip, uint16_t port)
{
    kccl_wire_addr_t a;
    memset(&a, 0, sizeof(a));
    a.family = 6;
    a.port = port;
    assert_int_equal(inet_pton(AF_INET6, ip, a.addr), 1);
    return a;
}

static void assert_addr_equal(const kccl_wire_addr_t *x, const kccl_wire_addr_t *y)
{
    assert_int_equal(x->family, y->family);
    assert_int_equal(x->port, y->port);
    assert_memory_equal(x->addr, y->addr, 16);
}

/* ---- frame header ---- */

static void test_hdr_round_trip(void **state)
{
    kccl_wire_hdr_t h = {.type = KCCL_MSG_DATA,
                         .flags = 0xA55A,
                         .tag = 0x80000001u,
                         .src_rank = 123456,
                         .len = KCCL_WIRE_MAX_FRAME - 1};
    kccl_wire_hdr_t g;
    uint8_t buf[KCCL_WIRE_HDR_BYTES];
    const char *why = NULL;
    kccl_wire_put_hdr(buf, &h);
    /* Exact layout: "KCFR", big-endian fields. */
    const uint8_t expect[KCCL_WIRE_HDR_BYTES] = {'K',  'C',  'F',  'R',  0x00, 0x06, 0xA5, 0x5A,
                                                 0x80, 0x00, 0x00, 0x01, 0x00, 0x01, 0xE2, 0x40,
                                                 0x00, 0x00, 0x00, 0x00, 0x3F, 0xFF, 0xFF, 0xFF};
    assert_memory_equal(buf, expect, sizeof(buf));
    assert_int_equal(kccl_wire_get_hdr(buf, sizeof(buf), &g, &why), KCCL_OK);
    assert_int_equal(g.type, h.type);
    assert_int_equal(g.flags, h.flags);
    assert_int_equal(g.tag, h.tag);
    assert_int_equal(g.src_rank, h.src_rank);
    assert_true(g.len == h.len);

    /* Every frame type round-trips; trailing bytes are not the header's business. */
    uint8_t longer[KCCL_WIRE_HDR_BYTES + 8] = {0};
    for (int t = KCCL_MSG_HELLO; t <= LAST_MSG_TYPE; t++) {
        h.type = (uint16_t)t;
        h.len = 0;
        kccl_wire_put_hdr(longer, &h);
        assert_int_equal(kccl_wire_get_hdr(longer, sizeof(longer), &g, &why), KCCL_OK);
        assert_int_equal(g.type, t);
    }
}

static void test_hdr_rejects(void **state)
{
    kccl_wire_hdr_t h = {.type = KCCL_MSG_HELLO, .len = 40}, g;
    uint8_t buf[KCCL_WIRE_HDR_BYTES];
    const char *why;
    kccl_wire_put_hdr(buf, &h);
    for (size_t n = 0; n < KCCL_WIRE_HDR_BYTES; n++) {
        why = NULL;
        assert_int_equal(kccl_wire_get_hdr(buf, n, &g, &why), KCCL_ERR_PROTOCOL);
        assert_non_null(why);
    }
    /* Bad magic: any byte of it. */
    for (int i = 0; i < 4; i++) {
        kccl_wire_put_hdr(buf, &h);
        buf[i] ^= 0x20;
        why = NULL;
        assert_int_equal(kccl_wire_get_hdr(buf, sizeof(buf), &g, &why), KCCL_ERR_PROTOCOL);
        assert_non_null(strstr(why, "magic"));
    }
    /* Unknown types. */
    const uint16_t bad_types[] = {0, LAST_MSG_TYPE + 1, 0x100, 0xFFFF};
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(bad_types); i++) {
        h.type = bad_types[i];
        kccl_wire_put_hdr(buf, &h);
        why = NULL;
        assert_int_equal(kccl_wire_get_hdr(buf, sizeof(buf), &g, &why), KCCL_ERR_PROTOCOL);
        assert_non_null(strstr(why, "type"));
    }
    /* Absurd lengths are refused before anyone allocates. */
    const uint64_t bad_lens[] = {KCCL_WIRE_MAX_FRAME, KCCL_WIRE_MAX_FRAME + 1, UINT64_MAX,
                                 (uint64_t)1 << 63, (uint64_t)1 << 32};
    h.type = KCCL_MSG_DATA;
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(bad_lens); i++) {
        h.len = bad_lens[i];
        kccl_wire_put_hdr(buf, &h);
        why = NULL;
        assert_int_equal(kccl_wire_get_hdr(buf, sizeof(buf), &g, &why), KCCL_ERR_PROTOCOL);
        assert_non_null(why);
    }
}

/* ---- hello ---- */

static kccl_wire_hello_t sample_hello(void)
{
    kccl_wire_hello_t m;
    memset(&m, 0, sizeof(m));
    m.version = KCCL_WIRE_VERSION;
    m.kind = KCCL_CONN_KIND_P2P;
    m.rank = 7;
    m.nranks = 1024;
    for (int i = 0; i < KCCL_NONCE_BYTES; i++) {
        m.group_nonce[i] = (uint8_t)(0x10 + i);
        m.client_nonce[i] = (uint8_t)(0xF0 - i);
    }
    return m;
}

static void test_hello_round_trip(void **state)
{
    kccl_wire_hello_t m = sample_hello(), g;
    uint8_t buf[KCCL_WIRE_HELLO_BYTES];
    const char *why = NULL;
    assert_int_equal(KCCL_WIRE_HELLO_BYTES, 44);
    kccl_wire_put_hello(buf, &m);
    assert_int_equal(buf[0], 0);
    assert_int_equal(buf[1], KCCL_WIRE_VERSION);
    assert_int_equal(buf[2], KCCL_CONN_KIND_P2P);
    assert_int_equal(buf[3], 0);
    assert_int_equal(kccl_be32_get(buf + 4), 7);
    assert_int_equal(kccl_be32_get(buf + 8), 1024);
    assert_memory_equal(buf + 12, m.group_nonce, KCCL_NONCE_BYTES);
    assert_memory_equal(buf + 28, m.client_nonce, KCCL_NONCE_BYTES);
    assert_int_equal(kccl_wire_get_hello(buf, sizeof(buf), &g, &why), KCCL_OK);
    assert_int_equal(g.version, m.version);
    assert_int_equal(g.kind, m.kind);
    assert_int_equal(g.rank, m.rank);
    assert_int_equal(g.nranks, m.nranks);
    assert_memory_equal(g.group_nonce, m.group_nonce, KCCL_NONCE_BYTES);
    assert_memory_equal(g.client_nonce, m.client_nonce, KCCL_NONCE_BYTES);

    /* The other kind, and the world-size limits that are still sane. */
    m.kind = KCCL_CONN_KIND_CHECKIN;
    m.nranks = 1;
    m.rank = 0;
    kccl_wire_put_hello(buf, &m);
    assert_int_equal(kccl_wire_get_hello(buf, sizeof(buf), &g, &why), KCCL_OK);
    assert_int_equal(g.kind, KCCL_CONN_KIND_CHECKIN);
    m.nranks = 1u << 24;
    kccl_wire_put_hello(buf, &m);
    assert_int_equal(kccl_wire_get_hello(buf, sizeof(buf), &g, &why), KCCL_OK);
    assert_int_equal(g.nranks, 1u << 24);
}

static void test_hello_rejects(void **state)
{
    kccl_wire_hello_t m = sample_hello(), g;
    uint8_t buf[KCCL_WIRE_HELLO_BYTES + 1];
    const char *why;
    kccl_wire_put_hello(buf, &m);
    /* Wrong length, shorter or longer. */
    for (size_t n = 0; n <= sizeof(buf); n++) {
        if (n == KCCL_WIRE_HELLO_BYTES)
            continue;
        why = NULL;
        assert_int_equal(kccl_wire_get_hello(buf, n, &g, &why), KCCL_ERR_PROTOCOL);
        assert_non_null(why);
    }
    /* Bad kind. */
    const uint8_t bad_kinds[] = {0, 3, 0x7F, 0xFF};
    for (size_t i = 0; i < sizeof(bad_kinds); i++) {
        m = sample_hello();
        m.kind = bad_kinds[i];
        kccl_wire_put_hello(buf, &m);
        why = NULL;
        assert_int_equal(kccl_wire_get_hello(buf, KCCL_WIRE_HELLO_BYTES, &g, &why),
                         KCCL_ERR_PROTOCOL);
        assert_non_null(strstr(why, "kind"));
    }
    /* Absurd world sizes. */
    const uint32_t bad_sizes[] = {0, (1u << 24) + 1, 0x80000000u, UINT32_MAX};
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(bad_sizes); i++) {
        m = sample_hello();
        m.nranks = bad_sizes[i];
        kccl_wire_put_hello(buf, &m);
        why = NULL;
        assert_int_equal(kccl_wire_get_hello(buf, KCCL_WIRE_HELLO_BYTES, &g, &why),
                         KCCL_ERR_PROTOCOL);
        assert_non_null(strstr(why, "world size"));
    }
}

/* ---- addresses, check-in, table rows ---- */

static void test_addr_round_trip(void **state)
{
    kccl_wire_addr_t a4 = addr4("10.1.2.3", 29500), a6 = addr6("fd00::1:2", 65535), g;
    uint8_t buf[KCCL_WIRE_ADDR_BYTES + 4];
    const char *why = NULL;
    kccl_wire_put_addr(buf, &a4);
    const uint8_t expect4[KCCL_WIRE_ADDR_BYTES] = {4, 0, 0x73, 0x3C, 10, 1, 2, 3};
    assert_memory_equal(buf, expect4, sizeof(expect4));
    assert_int_equal(kccl_wire_get_addr(buf, KCCL_WIRE_ADDR_BYTES, &g, &why), KCCL_OK);
    assert_addr_equal(&g, &a4);
    kccl_wire_put_addr(buf, &a6);
    assert_int_equal(kccl_wire_get_addr(buf, sizeof(buf), &g, &why), KCCL_OK);
    assert_addr_equal(&g, &a6);
    assert_int_equal(g.reserved, 0);
}

static void test_addr_rejects(void **state)
{
    kccl_wire_addr_t a = addr4("127.0.0.1", 80), g;
    uint8_t buf[KCCL_WIRE_ADDR_BYTES];
    const char *why;
    kccl_wire_put_addr(buf, &a);
    for (size_t n = 0; n < KCCL_WIRE_ADDR_BYTES; n++) {
        why = NULL;
        assert_int_equal(kccl_wire_get_addr(buf, n, &g, &why), KCCL_ERR_PROTOCOL);
        assert_non_null(why);
    }
    const uint8_t bad_families[] = {0, 2, 5, 10, 46, 0xFF};
    for (size_t i = 0; i < sizeof(bad_families); i++) {
        a.family = bad_families[i];
        kccl_wire_put_addr(buf, &a);
        why = NULL;
        assert_int_equal(kccl_wire_get_addr(buf, sizeof(buf), &g, &why), KCCL_ERR_PROTOCOL);
        assert_non_null(strstr(why, "family"));
    }
    a = addr6("::1", 0);
    kccl_wire_put_addr(buf, &a);
    why = NULL;
    assert_int_equal(kccl_wire_get_addr(buf, sizeof(buf), &g, &why), KCCL_ERR_PROTOCOL);
    assert_non_null(strstr(why, "port 0"));
}

static void test_checkin_round_trip(void **state)
{
    kccl_wire_checkin_t c = {.addr = addr6("2001:db8::42", 40000),
                             .host_hash = 0x0123456789ABCDEFull,
                             .pid = 4000000000u};
    kccl_wire_checkin_t g;
    uint8_t buf[KCCL_WIRE_CHECKIN_BYTES + 1];
    const char *why = NULL;
    kccl_wire_put_checkin(buf, &c);
    assert_true(kccl_be64_get(buf + KCCL_WIRE_ADDR_BYTES) == c.host_hash);
    assert_int_equal(kccl_be32_get(buf + KCCL_WIRE_ADDR_BYTES + 8), c.pid);
    assert_int_equal(kccl_wire_get_checkin(buf, KCCL_WIRE_CHECKIN_BYTES, &g, &why), KCCL_OK);
    assert_addr_equal(&g.addr, &c.addr);
    assert_true(g.host_hash == c.host_hash);
    assert_int_equal(g.pid, c.pid);

    /* Exact length only. */
    for (size_t n = 0; n <= sizeof(buf); n++) {
        if (n == KCCL_WIRE_CHECKIN_BYTES)
            continue;
        why = NULL;
        assert_int_equal(kccl_wire_get_checkin(buf, n, &g, &why), KCCL_ERR_PROTOCOL);
        assert_non_null(why);
    }
    /* The embedded address is validated. */
    c.addr.port = 0;
    kccl_wire_put_checkin(buf, &c);
    why = NULL;
    assert_int_equal(kccl_wire_get_checkin(buf, KCCL_WIRE_CHECKIN_BYTES, &g, &why),
                     KCCL_ERR_PROTOCOL);
    assert_non_null(why);
    c.addr.port = 1;
    c.addr.family = 7;
    kccl_wire_put_checkin(buf, &c);
    assert_int_equal(kccl_wire_get_checkin(buf, KCCL_WIRE_CHECKIN_BYTES, &g, &why),
                     KCCL_ERR_PROTOCOL);
}

static void test_peer_round_trip(void **state)
{
    /* A table is rows back to back; each row decodes from its offset. */
    kccl_wire_peer_t rows[3] = {
        {.addr = addr4("192.168.0.1", 1000), .host_hash = 1},
        {.addr = addr6("fe80::1", 2000), .host_hash = UINT64_MAX},
        {.addr = addr4("0.0.0.0", 1), .host_hash = 0x8000000000000000ull},
    };
    uint8_t table[3 * KCCL_WIRE_PEER_BYTES];
    const char *why = NULL;
    for (int i = 0; i < 3; i++)
        kccl_wire_put_peer(table + i * KCCL_WIRE_PEER_BYTES, &rows[i]);
    for (int i = 0; i < 3; i++) {
        kccl_wire_peer_t g;
        size_t off = (size_t)i * KCCL_WIRE_PEER_BYTES;
        assert_int_equal(kccl_wire_get_peer(table + off, sizeof(table) - off, &g, &why), KCCL_OK);
        assert_addr_equal(&g.addr, &rows[i].addr);
        assert_true(g.host_hash == rows[i].host_hash);
    }
    kccl_wire_peer_t g;
    for (size_t n = 0; n < KCCL_WIRE_PEER_BYTES; n++) {
        why = NULL;
        assert_int_equal(kccl_wire_get_peer(table, n, &g, &why), KCCL_ERR_PROTOCOL);
        assert_non_null(why);
    }
    table[0] = 9; /* bad family in row 0 */
    assert_int_equal(kccl_wire_get_peer(table, sizeof(table), &g, &why), KCCL_ERR_PROTOCOL);
}

static void test_abort_round_trip(void **state)
{
    kccl_wire_abort_t a = {.lost_rank = UINT32_MAX, .status = KCCL_ERR_TIMED_OUT, .step = 5}, g;
    uint8_t buf[KCCL_WIRE_ABORT_BYTES + 1];
    const char *why = NULL;
    kccl_wire_put_abort(buf, &a);
    const uint8_t expect[KCCL_WIRE_ABORT_BYTES] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                                   0xFF, 0xFD, 0,    0,    0,    5};
    assert_memory_equal(buf, expect, sizeof(expect));
    assert_int_equal(kccl_wire_get_abort(buf, KCCL_WIRE_ABORT_BYTES, &g, &why), KCCL_OK);
    assert_int_equal(g.lost_rank, UINT32_MAX);
    assert_int_equal(g.status, KCCL_ERR_TIMED_OUT);
    assert_int_equal(g.step, 5);
    a.lost_rank = 3;
    a.status = INT32_MIN;
    kccl_wire_put_abort(buf, &a);
    assert_int_equal(kccl_wire_get_abort(buf, KCCL_WIRE_ABORT_BYTES, &g, &why), KCCL_OK);
    assert_int_equal(g.lost_rank, 3);
    assert_true(g.status == INT32_MIN);
    for (size_t n = 0; n <= sizeof(buf); n++) {
        if (n == KCCL_WIRE_ABORT_BYTES)
            continue;
        why = NULL;
        assert_int_equal(kccl_wire_get_abort(buf, n, &g, &why), KCCL_ERR_PROTOCOL);
        assert_non_null(why);
    }
}

static void test_refuse_str(void **state)
{
    for (uint32_t r = KCCL_REFUSE_BAD_VERSION; r <= KCCL_REFUSE_BAD_KIND; r++) {
        const char *s = kccl_refuse_str(r);
        assert_true(strlen(s) > 0);
        assert_string_not_equal(s, "unknown reason");
    }
    assert_string_equal(kccl_refuse_str(0), "unknown reason");
    assert_string_equal(kccl_refuse_str(KCCL_REFUSE_BAD_KIND + 1), "unknown reason");
    assert_string_equal(kccl_refuse_str(UINT32_MAX), "unknown reason");
}

/* ---- sockaddr conversions and formatting ---- */

static void test_sockaddr_ipv4(void **state)
{
    kccl_wire_addr_t a = addr4("172.16.5.4", 12345), back;
    struct sockaddr_storage ss;
    socklen_t len = 0;
    assert_int_equal(kccl_wire_addr_to_sockaddr(&a, &ss, &len), KCCL_OK);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(ntohs(sin->sin_port), 12345);
    assert_int_equal(ntohl(sin->sin_addr.s_addr), 0xAC100504u);
    assert_int_equal(kccl_wire_addr_from_sockaddr((const struct sockaddr *)&ss, &back), KCCL_OK);
    assert_addr_equal(&back, &a);
}

static void test_sockaddr_ipv6(void **state)
{
    kccl_wire_addr_t a = addr6("2001:db8:1::abcd", 443), back;
    struct sockaddr_storage ss;
    socklen_t len = 0;
    assert_int_equal(kccl_wire_addr_to_sockaddr(&a, &ss, &len), KCCL_OK);
    assert_int_equal(len, sizeof(struct sockaddr_in6));
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
    assert_int_equal(sin6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(sin6->sin6_port), 443);
    assert_memory_equal(&sin6->sin6_addr, a.addr, 16);
    assert_int_equal(kccl_wire_addr_from_sockaddr((const struct sockaddr *)&ss, &back), KCCL_OK);
    assert_addr_equal(&back, &a);
}

static void test_sockaddr_bad_family(void **state)
{
    kccl_wire_addr_t a = addr4("1.2.3.4", 5);
    struct sockaddr_storage ss;
    socklen_t len;
    a.family = 5;
    assert_int_equal(kccl_wire_addr_to_sockaddr(&a, &ss, &len), KCCL_ERR_INVALID_ARG);
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    assert_int_equal(kccl_wire_addr_from_sockaddr((const struct sockaddr *)&sun, &a),
                     KCCL_ERR_INVALID_ARG);
}

static void test_addr_format(void **state)
{
    char buf[64];
    kccl_wire_addr_t a = addr4("127.0.0.1", 80);
    kccl_wire_addr_format(&a, buf, sizeof(buf));
    assert_string_equal(buf, "127.0.0.1:80");
    a = addr6("::1", 443);
    kccl_wire_addr_format(&a, buf, sizeof(buf));
    assert_string_equal(buf, "[::1]:443");
    a = addr6("2001:db8::ff00:42:8329", 65535);
    kccl_wire_addr_format(&a, buf, sizeof(buf));
    assert_string_equal(buf, "[2001:db8::ff00:42:8329]:65535");
    a.family = 0;
    kccl_wire_addr_format(&a, buf, sizeof(buf));
    assert_string_equal(buf, "(invalid address)");
    /* Small buffers are truncated and still terminated; size 0 writes nothing. */
    a = addr4("255.255.255.255", 65535);
    char small[8];
    memset(small, 'z', sizeof(small));
    kccl_wire_addr_format(&a, small, sizeof(small));
    assert_string_equal(small, "255.255");
    small[0] = 'q';
    kccl_wire_addr_format(&a, small, 0);
    assert_int_equal(small[0], 'q');
}

static void test_be_helpers(void **state)
{
    uint8_t b[8];
    kccl_be16_put(b, 0xBEEF);
    assert_int_equal(b[0], 0xBE);
    assert_int_equal(kccl_be16_get(b), 0xBEEF);
    kccl_be32_put(b, 0xDEADBEEFu);
    assert_int_equal(b[0], 0xDE);
    assert_int_equal(b[3], 0xEF);
    assert_int_equal(kccl_be32_get(b), 0xDEADBEEFu);
    kccl_be64_put(b, 0x0102030405060708ull);
    for (int i = 0; i < 8; i++)
        assert_int_equal(b[i], i + 1);
    assert_true(kccl_be64_get(b) == 0x0102030405060708ull);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hdr_round_trip),      cmocka_unit_test(test_hdr_rejects),
        cmocka_unit_test(test_hello_round_trip),    cmocka_unit_test(test_hello_rejects),
        cmocka_unit_test(test_addr_round_trip),     cmocka_unit_test(test_addr_rejects),
        cmocka_unit_test(test_checkin_round_trip),  cmocka_unit_test(test_peer_round_trip),
        cmocka_unit_test(test_abort_round_trip),    cmocka_unit_test(test_refuse_str),
        cmocka_unit_test(test_sockaddr_ipv4),       cmocka_unit_test(test_sockaddr_ipv6),
        cmocka_unit_test(test_sockaddr_bad_family), cmocka_unit_test(test_addr_format),
        cmocka_unit_test(test_be_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
