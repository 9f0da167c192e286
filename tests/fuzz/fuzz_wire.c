/*
 * fuzz_wire - every kccl_wire_get_* decoder on the same arbitrary bytes, as
 * a peer could send them. Properties: a decoder that accepts an input
 * re-encodes it to bytes that decode to the same values, and those bytes
 * equal the input apart from reserved fields (which encoders write as
 * zero); a refusal always comes with a reason; accepted addresses convert
 * to a sockaddr and back unchanged.
 */
#include <string.h>

#include "bootstrap/wire.h"
#include "fuzz_common.h"

static void check_addr(const kccl_wire_addr_t *a)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    kccl_wire_addr_t back;
    char text[64];
    FUZZ_CHECK(a->family == 4 || a->family == 6);
    FUZZ_CHECK(a->port != 0);
    FUZZ_CHECK(kccl_wire_addr_to_sockaddr(a, &ss, &len) == KCCL_OK);
    FUZZ_CHECK(kccl_wire_addr_from_sockaddr((const struct sockaddr *)&ss, &back) == KCCL_OK);
    FUZZ_CHECK(back.family == a->family && back.port == a->port);
    FUZZ_CHECK(memcmp(back.addr, a->addr, a->family == 4 ? 4 : 16) == 0);
    kccl_wire_addr_format(a, text, sizeof(text));
    FUZZ_CHECK(text[0] != '(');
}

/* Input and re-encoding agree on [0, n) except at the listed offsets. */
static void same_bytes(const uint8_t *in, const uint8_t *out, size_t n, int skip1, int skip2)
{
    for (size_t i = 0; i < n; i++)
        if ((int)i != skip1 && (int)i != skip2)
            FUZZ_CHECK(in[i] == out[i]);
}

static void fuzz_hdr(const uint8_t *data, size_t size)
{
    kccl_wire_hdr_t h, h2;
    uint8_t buf[KCCL_WIRE_HDR_BYTES];
    const char *why = NULL;
    memset(&h, 0, sizeof(h)); /* padding: the structs are compared whole */
    memset(&h2, 0, sizeof(h2));
    if (kccl_wire_get_hdr(data, size, &h, &why) != KCCL_OK) {
        FUZZ_CHECK(why != NULL);
        return;
    }
    FUZZ_CHECK(size >= KCCL_WIRE_HDR_BYTES);
    FUZZ_CHECK(h.len < KCCL_WIRE_MAX_FRAME);
    FUZZ_CHECK(h.type >= KCCL_MSG_HELLO && h.type <= KCCL_MSG_BYE); /* the last type */
    kccl_wire_put_hdr(buf, &h);
    same_bytes(data, buf, KCCL_WIRE_HDR_BYTES, -1, -1);
    FUZZ_CHECK(kccl_wire_get_hdr(buf, sizeof(buf), &h2, &why) == KCCL_OK);
    FUZZ_CHECK(memcmp(&h, &h2, sizeof(h)) == 0);
}

static void fuzz_hello(const uint8_t *data, size_t size)
{
    kccl_wire_hello_t m, m2;
    uint8_t buf[KCCL_WIRE_HELLO_BYTES];
    const char *why = NULL;
    memset(&m, 0, sizeof(m));
    memset(&m2, 0, sizeof(m2));
    if (kccl_wire_get_hello(data, size, &m, &why) != KCCL_OK) {
        FUZZ_CHECK(why != NULL);
        return;
    }
    FUZZ_CHECK(size == KCCL_WIRE_HELLO_BYTES);
    FUZZ_CHECK(m.kind == KCCL_CONN_KIND_CHECKIN || m.kind == KCCL_CONN_KIND_P2P);
    FUZZ_CHECK(m.nranks >= 1 && m.nranks <= (1u << 24));
    kccl_wire_put_hello(buf, &m);
    same_bytes(data, buf, KCCL_WIRE_HELLO_BYTES, 3, -1); /* byte 3: reserved */
    FUZZ_CHECK(kccl_wire_get_hello(buf, sizeof(buf), &m2, &why) == KCCL_OK);
    FUZZ_CHECK(memcmp(&m, &m2, sizeof(m)) == 0);
}

static void fuzz_addr(const uint8_t *data, size_t size)
{
    kccl_wire_addr_t a, a2;
    uint8_t buf[KCCL_WIRE_ADDR_BYTES];
    const char *why = NULL;
    if (kccl_wire_get_addr(data, size, &a, &why) != KCCL_OK) {
        FUZZ_CHECK(why != NULL);
        return;
    }
    check_addr(&a);
    kccl_wire_put_addr(buf, &a);
    same_bytes(data, buf, KCCL_WIRE_ADDR_BYTES, 1, -1); /* byte 1: reserved */
    FUZZ_CHECK(kccl_wire_get_addr(buf, sizeof(buf), &a2, &why) == KCCL_OK);
    FUZZ_CHECK(memcmp(&a, &a2, sizeof(a)) == 0);
}

static void fuzz_checkin(const uint8_t *data, size_t size)
{
    kccl_wire_checkin_t c, c2;
    uint8_t buf[KCCL_WIRE_CHECKIN_BYTES];
    const char *why = NULL;
    memset(&c, 0, sizeof(c));
    memset(&c2, 0, sizeof(c2));
    if (kccl_wire_get_checkin(data, size, &c, &why) != KCCL_OK) {
        FUZZ_CHECK(why != NULL);
        return;
    }
    FUZZ_CHECK(size == KCCL_WIRE_CHECKIN_BYTES);
    check_addr(&c.addr);
    kccl_wire_put_checkin(buf, &c);
    same_bytes(data, buf, KCCL_WIRE_CHECKIN_BYTES, 1, -1);
    FUZZ_CHECK(kccl_wire_get_checkin(buf, sizeof(buf), &c2, &why) == KCCL_OK);
    FUZZ_CHECK(memcmp(&c, &c2, sizeof(c)) == 0);
}

static void fuzz_peer_table(const uint8_t *data, size_t size)
{
    /* A table: rows back to back, as the root sends them. */
    for (size_t off = 0; off + KCCL_WIRE_PEER_BYTES <= size; off += KCCL_WIRE_PEER_BYTES) {
        kccl_wire_peer_t p, p2;
        uint8_t buf[KCCL_WIRE_PEER_BYTES];
        const char *why = NULL;
        memset(&p, 0, sizeof(p));
        memset(&p2, 0, sizeof(p2));
        if (kccl_wire_get_peer(data + off, size - off, &p, &why) != KCCL_OK) {
            FUZZ_CHECK(why != NULL);
            return;
        }
        check_addr(&p.addr);
        kccl_wire_put_peer(buf, &p);
        same_bytes(data + off, buf, KCCL_WIRE_PEER_BYTES, 1, -1);
        FUZZ_CHECK(kccl_wire_get_peer(buf, sizeof(buf), &p2, &why) == KCCL_OK);
        FUZZ_CHECK(memcmp(&p, &p2, sizeof(p)) == 0);
    }
    kccl_wire_peer_t p;
    const char *why = NULL;
    if (size < KCCL_WIRE_PEER_BYTES)
        FUZZ_CHECK(kccl_wire_get_peer(data, size, &p, &why) == KCCL_ERR_PROTOCOL && why);
}

static void fuzz_abort(const uint8_t *data, size_t size)
{
    kccl_wire_abort_t a;
    uint8_t buf[KCCL_WIRE_ABORT_BYTES];
    const char *why = NULL;
    if (kccl_wire_get_abort(data, size, &a, &why) != KCCL_OK) {
        FUZZ_CHECK(why != NULL);
        return;
    }
    FUZZ_CHECK(size == KCCL_WIRE_ABORT_BYTES);
    kccl_wire_put_abort(buf, &a);
    same_bytes(data, buf, KCCL_WIRE_ABORT_BYTES, -1, -1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_hdr(data, size);
    /* A frame's payload follows its header: decode it as each message too. */
    const uint8_t *payload = size >= KCCL_WIRE_HDR_BYTES ? data + KCCL_WIRE_HDR_BYTES : data;
    size_t plen = size >= KCCL_WIRE_HDR_BYTES ? size - KCCL_WIRE_HDR_BYTES : size;
    for (int pass = 0; pass < 2; pass++) {
        const uint8_t *p = pass ? payload : data;
        size_t n = pass ? plen : size;
        fuzz_hello(p, n);
        fuzz_addr(p, n);
        fuzz_checkin(p, n);
        fuzz_peer_table(p, n);
        fuzz_abort(p, n);
    }
    if (size >= 4)
        FUZZ_CHECK(kccl_refuse_str(kccl_be32_get(data)) != NULL);
    return 0;
}
