/*
 * wire.h - the bootstrap's bytes on the wire: frame header, handshake
 * messages, check-in, address table. Pure encode/decode functions, no I/O,
 * so they are unit-tested and fuzzed directly. Every decoder checks lengths
 * before it reads and returns KCCL_ERR_PROTOCOL with a reason on bad input.
 * All integers are big-endian.
 *
 * Frame: magic "KCFR"(4) type(2) flags(2) tag(4) src_rank(4) len(8) payload.
 * Handshake on every connection (C connects, A accepts):
 *   C->A HELLO{version, kind, rank, nranks, group nonce, client nonce}
 *   A->C CHALLENGE{server nonce, MAC_A}        or REFUSE{reason, detail}
 *   C->A PROOF{MAC_C, [check-in]}
 * MAC_A = HMAC-SHA256(secret, "kccl-a" | hello | server nonce)
 * MAC_C = HMAC-SHA256(secret, "kccl-c" | hello | server nonce | check-in)
 * so each side proves it holds the secret, bound to fresh nonces of both.
 */
#ifndef KCCL_BOOTSTRAP_WIRE_H
#define KCCL_BOOTSTRAP_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "kccl/kccl_status.h"

#define KCCL_WIRE_MAGIC     0x4B434652u /* "KCFR" */
#define KCCL_WIRE_VERSION   1
#define KCCL_WIRE_HDR_BYTES 24
/* Frames of this size or more are refused before any allocation. */
#define KCCL_WIRE_MAX_FRAME ((uint64_t)1 << 30)
#define KCCL_NONCE_BYTES    16
#define KCCL_MAC_BYTES      32

typedef enum {
    KCCL_MSG_HELLO = 1,
    KCCL_MSG_CHALLENGE = 2,
    KCCL_MSG_PROOF = 3,
    KCCL_MSG_REFUSE = 4,
    KCCL_MSG_TABLE = 5,
    KCCL_MSG_DATA = 6,
    KCCL_MSG_ABORT = 7,
    KCCL_MSG_BYE = 8, /* the sender is destroying its bootstrap: it reads nothing more */
    KCCL_MSG_LAST = KCCL_MSG_BYE,
} kccl_msg_type_t;

typedef enum {
    KCCL_CONN_KIND_CHECKIN = 1, /* rank -> root */
    KCCL_CONN_KIND_P2P = 2,     /* rank -> rank */
} kccl_conn_kind_t;

/* Why an acceptor refused a HELLO/PROOF; sent in REFUSE. */
#define KCCL_REFUSE_MAP(X)                                                                         \
    X(BAD_VERSION, 1, "protocol version mismatch")                                                 \
    X(WRONG_GROUP, 2, "the id's nonce names another group (stale or foreign unique id)")           \
    X(WORLD_SIZE, 3, "world size differs from the root's")                                         \
    X(RANK_RANGE, 4, "rank out of range")                                                          \
    X(DUPLICATE, 5, "another process already checked in with this rank")                           \
    X(AUTH, 6, "authentication failed (wrong group secret)")                                       \
    X(BAD_KIND, 7, "connection kind not served on this port")

typedef enum {
#define KCCL_REFUSE_ENUM_(name, value, desc) KCCL_REFUSE_##name = (value),
    KCCL_REFUSE_MAP(KCCL_REFUSE_ENUM_)
#undef KCCL_REFUSE_ENUM_
} kccl_refuse_t;

const char *kccl_refuse_str(uint32_t reason);

typedef struct {
    uint16_t type;
    uint16_t flags;
    uint32_t tag;
    uint32_t src_rank;
    uint64_t len;
} kccl_wire_hdr_t;

/* A compact, family-agnostic socket address as carried on the wire (20 bytes). */
typedef struct {
    uint8_t family; /* 4 or 6 */
    uint8_t reserved;
    uint16_t port;
    uint8_t addr[16];
} kccl_wire_addr_t;
#define KCCL_WIRE_ADDR_BYTES 20

typedef struct {
    uint16_t version;
    uint8_t kind;
    uint32_t rank;
    uint32_t nranks;
    uint8_t group_nonce[KCCL_NONCE_BYTES];
    uint8_t client_nonce[KCCL_NONCE_BYTES];
} kccl_wire_hello_t;
#define KCCL_WIRE_HELLO_BYTES (2 + 1 + 1 + 4 + 4 + 2 * KCCL_NONCE_BYTES)

typedef struct {
    uint8_t server_nonce[KCCL_NONCE_BYTES];
    uint8_t mac[KCCL_MAC_BYTES];
} kccl_wire_challenge_t;
#define KCCL_WIRE_CHALLENGE_BYTES (KCCL_NONCE_BYTES + KCCL_MAC_BYTES)

/* What a rank tells the root: where it listens and which node it is on. */
typedef struct {
    kccl_wire_addr_t addr;
    uint64_t host_hash;
    uint32_t pid;
} kccl_wire_checkin_t;
#define KCCL_WIRE_CHECKIN_BYTES (KCCL_WIRE_ADDR_BYTES + 8 + 4)

/* One row of the root's table: as the check-in, without the pid. */
typedef struct {
    kccl_wire_addr_t addr;
    uint64_t host_hash;
} kccl_wire_peer_t;
#define KCCL_WIRE_PEER_BYTES (KCCL_WIRE_ADDR_BYTES + 8)

typedef struct {
    uint32_t lost_rank; /* UINT32_MAX: unknown */
    int32_t status;
    uint32_t step;
} kccl_wire_abort_t;
#define KCCL_WIRE_ABORT_BYTES 12

void kccl_wire_put_hdr(uint8_t out[KCCL_WIRE_HDR_BYTES], const kccl_wire_hdr_t *h);
kccl_status_t kccl_wire_get_hdr(const uint8_t *buf, size_t len, kccl_wire_hdr_t *h,
                                const char **why);

void kccl_wire_put_hello(uint8_t out[KCCL_WIRE_HELLO_BYTES], const kccl_wire_hello_t *m);
kccl_status_t kccl_wire_get_hello(const uint8_t *buf, size_t len, kccl_wire_hello_t *m,
                                  const char **why);

void kccl_wire_put_addr(uint8_t out[KCCL_WIRE_ADDR_BYTES], const kccl_wire_addr_t *a);
kccl_status_t kccl_wire_get_addr(const uint8_t *buf, size_t len, kccl_wire_addr_t *a,
                                 const char **why);

void kccl_wire_put_checkin(uint8_t out[KCCL_WIRE_CHECKIN_BYTES], const kccl_wire_checkin_t *c);
kccl_status_t kccl_wire_get_checkin(const uint8_t *buf, size_t len, kccl_wire_checkin_t *c,
                                    const char **why);

void kccl_wire_put_peer(uint8_t out[KCCL_WIRE_PEER_BYTES], const kccl_wire_peer_t *p);
kccl_status_t kccl_wire_get_peer(const uint8_t *buf, size_t len, kccl_wire_peer_t *p,
                                 const char **why);

void kccl_wire_put_abort(uint8_t out[KCCL_WIRE_ABORT_BYTES], const kccl_wire_abort_t *a);
kccl_status_t kccl_wire_get_abort(const uint8_t *buf, size_t len, kccl_wire_abort_t *a,
                                  const char **why);

/* Conversions between the wire form and struct sockaddr_storage. */
kccl_status_t kccl_wire_addr_to_sockaddr(const kccl_wire_addr_t *a, struct sockaddr_storage *ss,
                                         socklen_t *sslen);
kccl_status_t kccl_wire_addr_from_sockaddr(const struct sockaddr *sa, kccl_wire_addr_t *a);
/* "1.2.3.4:80" / "[::1]:80". Always NUL-terminates. */
void kccl_wire_addr_format(const kccl_wire_addr_t *a, char *buf, size_t buflen);

/* Big-endian helpers shared with the unique id codec. */
static inline void kccl_be16_put(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void kccl_be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void kccl_be64_put(uint8_t *p, uint64_t v)
{
    kccl_be32_put(p, (uint32_t)(v >> 32));
    kccl_be32_put(p + 4, (uint32_t)v);
}
static inline uint16_t kccl_be16_get(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t kccl_be32_get(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t kccl_be64_get(const uint8_t *p)
{
    return ((uint64_t)kccl_be32_get(p) << 32) | kccl_be32_get(p + 4);
}

#endif
