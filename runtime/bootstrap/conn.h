/*
 * conn.h - one bootstrap connection's I/O, shared by engine.c, conn.c and
 * handshake.c. conn.c moves bytes (connect with retry, accept, buffered
 * reads into whole frames, vectored writes of handshake bytes and queued
 * frames); handshake.c decides what each frame means.
 */
#ifndef KCCL_BOOTSTRAP_CONN_H
#define KCCL_BOOTSTRAP_CONN_H

#include "bootstrap/engine.h"

/* Frames on an unauthenticated connection are tiny; a stranger cannot make us allocate. */
#define KCCL_HANDSHAKE_MAX_FRAME 256
/* How long a silent inbound connection may hold a slot before it is dropped. */
#define KCCL_HANDSHAKE_TIMEOUT_MS 10000

/* conn.c */
kccl_conn_t *kccl_conn_new(kccl_bs_t *bs, int fd, int outbound);
void kccl_conn_update_events(kccl_bs_t *bs, kccl_conn_t *c);
/* Closes the socket and drops queued output; the struct stays until reaped or fini. */
void kccl_conn_kill(kccl_bs_t *bs, kccl_conn_t *c, const char *why);
void kccl_conn_destroy(kccl_bs_t *bs, kccl_conn_t *c);
int kccl_conn_flush(kccl_bs_t *bs, kccl_conn_t *c);
/* Queues a handshake frame ahead of everything else and tries to send it. */
void kccl_conn_hs_send(kccl_bs_t *bs, kccl_conn_t *c, uint16_t type, const uint8_t *payload,
                       size_t len);
void kccl_conn_start_connect(kccl_bs_t *bs, kccl_conn_t *c);
void kccl_conn_accept_all(kccl_bs_t *bs, int lfd, uint8_t kind);
/* Handles epoll events for c: finishes a connect, reads frames, flushes. */
void kccl_conn_event(kccl_bs_t *bs, kccl_conn_t *c, uint32_t events);

/* handshake.c */
/* An outbound connect completed: send HELLO. */
void kccl_hs_client_start(kccl_bs_t *bs, kccl_conn_t *c);
/* One whole frame arrived on c; takes ownership of payload. */
void kccl_hs_on_frame(kccl_bs_t *bs, kccl_conn_t *c, const kccl_wire_hdr_t *hdr, uint8_t *payload);

#endif
