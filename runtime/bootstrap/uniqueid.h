/*
 * uniqueid.h - the unique id's binary layout (kccl_bootstrap.h documents it)
 * decoded into a struct, the base64url text form, and the registry of root
 * listeners that this process bound when it created ids.
 */
#ifndef KCCL_BOOTSTRAP_UNIQUEID_H
#define KCCL_BOOTSTRAP_UNIQUEID_H

#include <stdint.h>

#include "bootstrap/wire.h"
#include "kccl/kccl_bootstrap.h"

#define KCCL_UID_MAGIC       0x4B434944u /* "KCID" */
#define KCCL_UID_VERSION     1
#define KCCL_UID_FLAG_SECRET 0x0001u

typedef struct {
    uint16_t version;
    uint16_t flags;
    kccl_wire_addr_t root;
    uint8_t nonce[KCCL_NONCE_BYTES];
    uint8_t secret[KCCL_GROUP_SECRET_BYTES]; /* valid when flags & KCCL_UID_FLAG_SECRET */
} kccl_uid_fields_t;

void kccl_uid_encode(const kccl_uid_fields_t *f, kccl_unique_id_t *id);
/* Strict: magic, version, CRC, reserved bytes, address. why gets the reason. */
kccl_status_t kccl_uid_decode(const kccl_unique_id_t *id, kccl_uid_fields_t *f, const char **why);

/* base64url without padding. Returns the number of characters written (excluding NUL). */
size_t kccl_b64url_encode(const uint8_t *in, size_t len, char *out, size_t outlen);
/* Returns the decoded length, or -1 on any non-alphabet character or bad length. */
long kccl_b64url_decode(const char *in, size_t inlen, uint8_t *out, size_t outlen);

/* Takes (removes) a listener this process holds for nonce; -1 if none. */
int kccl_uid_take_listener(const uint8_t nonce[KCCL_NONCE_BYTES]);

#endif
