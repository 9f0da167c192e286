/*
 * attacker.h - raw TCP clients that speak (or mangle) the bootstrap's wire
 * protocol, for the fault tests. Frames are built with the encoders of
 * runtime/bootstrap/wire.h and MACs with kccl_auth_mac, so a test can play
 * any part of the handshake, right or wrong. Parent side only: failures of
 * the harness itself (cannot connect, ...) fail the current CMocka test;
 * what the peer does (refuse, close, stay silent) is returned to the caller.
 */
#ifndef KCCL_ITEST_ATTACKER_H
#define KCCL_ITEST_ATTACKER_H

#include <stddef.h>
#include <stdint.h>

#include "bootstrap/wire.h"
#include "kccl/kccl_bootstrap.h"

/* A listener under attack: the root's port or a rank's peer port. */
typedef struct {
    kccl_wire_addr_t addr;
    char text[64];
    uint8_t nonce[KCCL_NONCE_BYTES]; /* the group's nonce */
    uint32_t nranks;
    uint8_t kind;       /* what the port serves: KCCL_CONN_KIND_CHECKIN or _P2P */
    uint32_t rank;      /* a rank whose hello this listener would accept now */
    const uint8_t *key; /* the group secret (to check the acceptor's MAC) */
} att_target_t;

/* Fills t for the root of id (kind CHECKIN). */
void att_target_root(att_target_t *t, const kccl_unique_id_t *id, uint32_t nranks, uint32_t rank,
                     const uint8_t *key);
/* Fills t for a rank's peer listener at "IP:port" (kind P2P). */
void att_target_peer(att_target_t *t, const char *addr, const kccl_unique_id_t *id, uint32_t nranks,
                     uint32_t rank, const uint8_t *key);

/* Connects to t (blocking, loopback); fails the test if it cannot. */
int att_connect(const att_target_t *t);
/* Writes everything; 0, or -1 if the peer has gone (not a test failure). */
int att_send(int fd, const void *buf, size_t len);
/* Sends a frame header (with this length field) and the payload bytes. */
int att_send_frame(int fd, uint16_t type, uint32_t src, uint64_t len_field, const void *payload,
                   size_t n);
/*
 * Reads one frame: 1 with *h and up to cap payload bytes, 0 if the peer
 * closed (EOF or reset) first, -1 at the timeout, -2 on garbage.
 */
int att_read_frame(int fd, kccl_wire_hdr_t *h, uint8_t *payload, size_t cap, int timeout_ms);
/* Discards input until the peer closes: the ms it took, or -1 at the timeout. */
int64_t att_wait_closed(int fd, int timeout_ms);

/* A well-formed HELLO from t's point of view (version 1, t's nonce, kind, rank, nranks). */
void att_hello(const att_target_t *t, kccl_wire_hello_t *h);
/* Sends hello; then expects REFUSE: returns 1 with reason/detail, 0 otherwise. */
int att_expect_refuse(int fd, const kccl_wire_hello_t *h, uint32_t *reason, uint32_t *detail);
/*
 * Full handshake as rank h->rank with MACs keyed by `key`: HELLO, check the
 * CHALLENGE's MAC against t->key, PROOF (with a check-in for the root).
 * Returns the REFUSE reason the acceptor answered with, 0 if it accepted
 * (no REFUSE and the connection stayed open), or -1 if the CHALLENGE never
 * came or its MAC was wrong.
 */
int att_handshake(const att_target_t *t, int fd, const kccl_wire_hello_t *h, const uint8_t *key);

/* Deterministic pseudo-random bytes (xorshift64*), for garbage tests. */
void att_random(uint64_t seed, uint8_t *buf, size_t len);

#endif
