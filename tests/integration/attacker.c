/*
 * attacker.c - raw protocol clients for the fault tests (see attacker.h).
 */
#include "attacker.h"

/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bootstrap/auth.h"
#include "bootstrap/uniqueid.h"
#include "mp.h"

static void target_from_id(att_target_t *t, const kccl_unique_id_t *id, uint32_t nranks,
                           uint32_t rank, const uint8_t *key)
{
    kccl_uid_fields_t f;
    const char *why = NULL;
    memset(t, 0, sizeof(*t));
    if (kccl_uid_decode(id, &f, &why) != KCCL_OK)
        fail_msg("cannot decode the test's own unique id: %s", why);
    memcpy(t->nonce, f.nonce, KCCL_NONCE_BYTES);
    t->addr = f.root;
    t->nranks = nranks;
    t->rank = rank;
    t->key = key;
}

void att_target_root(att_target_t *t, const kccl_unique_id_t *id, uint32_t nranks, uint32_t rank,
                     const uint8_t *key)
{
    target_from_id(t, id, nranks, rank, key);
    t->kind = KCCL_CONN_KIND_CHECKIN;
    kccl_wire_addr_format(&t->addr, t->text, sizeof(t->text));
}

void att_target_peer(att_target_t *t, const char *addr, const kccl_unique_id_t *id, uint32_t nranks,
                     uint32_t rank, const uint8_t *key)
{
    char ip[32];
    unsigned port = 0;
    int used = 0;
    target_from_id(t, id, nranks, rank, key);
    t->kind = KCCL_CONN_KIND_P2P;
    if (sscanf(addr, "%31[0-9.]:%u%n", ip, &port, &used) != 2 || (size_t)used != strlen(addr) ||
        port == 0 || port > 65535 || inet_pton(AF_INET, ip, t->addr.addr) != 1)
        fail_msg("not an IPv4 peer address: '%s'", addr);
    memset(t->addr.addr + 4, 0, 12);
    t->addr.family = 4;
    t->addr.port = (uint16_t)port;
    kccl_wire_addr_format(&t->addr, t->text, sizeof(t->text));
}

int att_connect(const att_target_t *t)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (kccl_wire_addr_to_sockaddr(&t->addr, &ss, &len) != KCCL_OK)
        fail_msg("bad target address %s", t->text);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        fail_msg("socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
        int err = errno;
        close(fd);
        fail_msg("cannot connect to %s: %s", t->text, strerror(err));
    }
    return fd;
}

int att_send(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int att_send_frame(int fd, uint16_t type, uint32_t src, uint64_t len_field, const void *payload,
                   size_t n)
{
    uint8_t hdr[KCCL_WIRE_HDR_BYTES];
    kccl_wire_hdr_t h = {.type = type, .src_rank = src, .len = len_field};
    kccl_wire_put_hdr(hdr, &h);
    if (att_send(fd, hdr, sizeof(hdr)) != 0)
        return -1;
    return n ? att_send(fd, payload, n) : 0;
}

/* Reads exactly len bytes: 1 done, 0 closed, -1 timeout. */
static int read_exact(int fd, uint8_t *buf, size_t len, int64_t end)
{
    size_t got = 0;
    while (got < len) {
        int64_t left = end - mp_now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0)
            return -1;
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            return -1;
        ssize_t n = recv(fd, buf + got, len - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        got += (size_t)n;
    }
    return 1;
}

int att_read_frame(int fd, kccl_wire_hdr_t *h, uint8_t *payload, size_t cap, int timeout_ms)
{
    uint8_t hdr[KCCL_WIRE_HDR_BYTES];
    const char *why = NULL;
    int64_t end = mp_now_ms() + timeout_ms;
    int r = read_exact(fd, hdr, sizeof(hdr), end);
    if (r != 1)
        return r;
    if (kccl_wire_get_hdr(hdr, sizeof(hdr), h, &why) != KCCL_OK || h->len > cap)
        return -2;
    r = read_exact(fd, payload, (size_t)h->len, end);
    return r == 1 ? 1 : r;
}

int64_t att_wait_closed(int fd, int timeout_ms)
{
    int64_t t0 = mp_now_ms(), end = t0 + timeout_ms;
    uint8_t buf[4096];
    for (;;) {
        int64_t left = end - mp_now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0)
            return -1;
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            return -1;
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return mp_now_ms() - t0; /* EOF or reset: closed */
    }
}

void att_hello(const att_target_t *t, kccl_wire_hello_t *h)
{
    memset(h, 0, sizeof(*h));
    h->version = KCCL_WIRE_VERSION;
    h->kind = t->kind;
    h->rank = t->rank;
    h->nranks = t->nranks;
    memcpy(h->group_nonce, t->nonce, KCCL_NONCE_BYTES);
    if (kccl_random_bytes(h->client_nonce, KCCL_NONCE_BYTES) != KCCL_OK)
        fail_msg("kccl_random_bytes failed");
}

static int send_hello(int fd, const kccl_wire_hello_t *h, uint8_t raw[KCCL_WIRE_HELLO_BYTES])
{
    kccl_wire_put_hello(raw, h);
    return att_send_frame(fd, KCCL_MSG_HELLO, h->rank, KCCL_WIRE_HELLO_BYTES, raw,
                          KCCL_WIRE_HELLO_BYTES);
}

int att_expect_refuse(int fd, const kccl_wire_hello_t *h, uint32_t *reason, uint32_t *detail)
{
    uint8_t raw[KCCL_WIRE_HELLO_BYTES], p[256];
    kccl_wire_hdr_t fh;
    if (send_hello(fd, h, raw) != 0)
        return 0;
    if (att_read_frame(fd, &fh, p, sizeof(p), 3000) != 1 || fh.type != KCCL_MSG_REFUSE ||
        fh.len != 8)
        return 0;
    *reason = kccl_be32_get(p);
    *detail = kccl_be32_get(p + 4);
    return 1;
}

int att_handshake(const att_target_t *t, int fd, const kccl_wire_hello_t *h, const uint8_t *key)
{
    uint8_t raw[KCCL_WIRE_HELLO_BYTES], p[256], mac[KCCL_MAC_BYTES];
    uint8_t proof[KCCL_MAC_BYTES + KCCL_WIRE_CHECKIN_BYTES];
    kccl_wire_hdr_t fh;
    if (send_hello(fd, h, raw) != 0)
        return -1;
    int r = att_read_frame(fd, &fh, p, sizeof(p), 3000);
    if (r != 1)
        return -1;
    if (fh.type == KCCL_MSG_REFUSE && fh.len == 8)
        return (int)kccl_be32_get(p);
    if (fh.type != KCCL_MSG_CHALLENGE || fh.len != KCCL_WIRE_CHALLENGE_BYTES)
        return -1;
    /* The acceptor proves it holds the group's key, bound to our hello and its nonce. */
    kccl_auth_mac(t->key, "kccl-a", raw, sizeof(raw), p, KCCL_NONCE_BYTES, NULL, 0, mac);
    if (!kccl_auth_equal(mac, p + KCCL_NONCE_BYTES, KCCL_MAC_BYTES))
        return -1;
    size_t extra = 0;
    if (h->kind == KCCL_CONN_KIND_CHECKIN) {
        kccl_wire_checkin_t ci = {.addr = t->addr, .host_hash = 42, .pid = 1};
        ci.addr.port = 9; /* "discard": nobody should ever connect here */
        kccl_wire_put_checkin(proof + KCCL_MAC_BYTES, &ci);
        extra = KCCL_WIRE_CHECKIN_BYTES;
    }
    kccl_auth_mac(key, "kccl-c", raw, sizeof(raw), p, KCCL_NONCE_BYTES, proof + KCCL_MAC_BYTES,
                  extra, proof);
    if (att_send_frame(fd, KCCL_MSG_PROOF, h->rank, KCCL_MAC_BYTES + extra, proof,
                       KCCL_MAC_BYTES + extra) != 0)
        return -1;
    r = att_read_frame(fd, &fh, p, sizeof(p), 500);
    if (r == 1 && fh.type == KCCL_MSG_REFUSE && fh.len == 8)
        return (int)kccl_be32_get(p);
    return r == -1 ? 0 : -1;
}

void att_random(uint64_t seed, uint8_t *buf, size_t len)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        buf[i] = (uint8_t)((x * 0x2545F4914F6CDD1Dull) >> 56);
    }
}
