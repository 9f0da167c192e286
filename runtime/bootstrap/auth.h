/*
 * auth.h - the bootstrap's cryptography: the group secret, random nonces and
 * the HMAC-SHA256 challenge-response that every connection performs (see
 * wire.h for the transcript). Secrets are never logged or formatted.
 */
#ifndef KCCL_BOOTSTRAP_AUTH_H
#define KCCL_BOOTSTRAP_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "bootstrap/wire.h"
#include "kccl/kccl_bootstrap.h"

/* Cryptographically random bytes (getrandom). */
kccl_status_t kccl_random_bytes(void *buf, size_t len);

/*
 * A keyed HMAC-SHA256 state: the inner and outer pads are hashed once per
 * bootstrap, so each handshake MAC costs two short hash finishes. Opaque.
 */
typedef struct kccl_hmac_key {
    void *inner, *outer; /* EVP_MD_CTX */
} kccl_hmac_key_t;

kccl_status_t kccl_hmac_key_init(kccl_hmac_key_t *k, const uint8_t key[KCCL_GROUP_SECRET_BYTES]);
void kccl_hmac_key_fini(kccl_hmac_key_t *k);
/* HMAC-SHA256(key, label | a | b | c) with a prepared key. */
void kccl_hmac(const kccl_hmac_key_t *k, const char *label, const uint8_t *a, size_t alen,
               const uint8_t *b, size_t blen, const uint8_t *c, size_t clen,
               uint8_t out[KCCL_MAC_BYTES]);

/* HMAC-SHA256(key, label | a | b | c); any part may be empty. One-shot form of kccl_hmac. */
void kccl_auth_mac(const uint8_t key[KCCL_GROUP_SECRET_BYTES], const char *label, const uint8_t *a,
                   size_t alen, const uint8_t *b, size_t blen, const uint8_t *c, size_t clen,
                   uint8_t out[KCCL_MAC_BYTES]);

/* Constant-time comparison of two MACs: 1 when equal. */
int kccl_auth_equal(const uint8_t *x, const uint8_t *y, size_t len);

/*
 * Parses a group secret: exactly 32 raw bytes, or 64 hex digits (an optional
 * trailing newline allowed). Returns 0 or -1.
 */
int kccl_secret_parse(const uint8_t *data, size_t len, uint8_t out[KCCL_GROUP_SECRET_BYTES]);

/* Reads and parses a secret file; refuses a file others can read (warns) or too large. */
kccl_status_t kccl_secret_load_file(const char *path, uint8_t out[KCCL_GROUP_SECRET_BYTES]);

/* CRC-32C (Castagnoli), used to catch damaged unique ids. */
uint32_t kccl_crc32c(const uint8_t *data, size_t len);

#endif
