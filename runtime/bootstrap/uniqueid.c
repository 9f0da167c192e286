/*
 * uniqueid.c - creating, encoding and strictly parsing unique ids.
 *
 * kccl_unique_id_create() binds the root's listener first and only then
 * writes the id, so the address in an id that has been handed out is already
 * accepting connections. The listener waits in a small registry, keyed by
 * the id's nonce, until kccl_bootstrap_create() for the root takes it.
 */
#include "bootstrap/uniqueid.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bootstrap/auth.h"
#include "bootstrap/netif.h"
#include "core/error.h"

/* Byte offsets, see kccl_bootstrap.h. */
enum {
    UID_OFF_MAGIC = 0,
    UID_OFF_VERSION = 4,
    UID_OFF_FLAGS = 6,
    UID_OFF_ADDR = 8, /* family(1) reserved(1) port(2) addr(16) */
    UID_OFF_NONCE = 28,
    UID_OFF_SECRET = 44,
    UID_OFF_RESERVED = 76,
    UID_OFF_CRC = 124,
};

void kccl_uid_encode(const kccl_uid_fields_t *f, kccl_unique_id_t *id)
{
    uint8_t *b = id->internal;
    memset(b, 0, KCCL_UNIQUE_ID_BYTES);
    kccl_be32_put(b + UID_OFF_MAGIC, KCCL_UID_MAGIC);
    kccl_be16_put(b + UID_OFF_VERSION, f->version);
    kccl_be16_put(b + UID_OFF_FLAGS, f->flags);
    kccl_wire_put_addr(b + UID_OFF_ADDR, &f->root);
    memcpy(b + UID_OFF_NONCE, f->nonce, KCCL_NONCE_BYTES);
    if (f->flags & KCCL_UID_FLAG_SECRET)
        memcpy(b + UID_OFF_SECRET, f->secret, KCCL_GROUP_SECRET_BYTES);
    kccl_be32_put(b + UID_OFF_CRC, kccl_crc32c(b, UID_OFF_CRC));
}

kccl_status_t kccl_uid_decode(const kccl_unique_id_t *id, kccl_uid_fields_t *f, const char **why)
{
    const uint8_t *b = id->internal;
    memset(f, 0, sizeof(*f));
    if (kccl_be32_get(b + UID_OFF_MAGIC) != KCCL_UID_MAGIC) {
        *why = "not a kccl unique id (bad magic)";
        return KCCL_ERR_INVALID_ARG;
    }
    if (kccl_be32_get(b + UID_OFF_CRC) != kccl_crc32c(b, UID_OFF_CRC)) {
        *why = "unique id is damaged (checksum mismatch); copy it again in full";
        return KCCL_ERR_INVALID_ARG;
    }
    f->version = kccl_be16_get(b + UID_OFF_VERSION);
    if (f->version != KCCL_UID_VERSION) {
        *why = "unique id version is not supported by this kccl (mixed kccl versions?)";
        return KCCL_ERR_UNSUPPORTED;
    }
    f->flags = kccl_be16_get(b + UID_OFF_FLAGS);
    if (f->flags & ~KCCL_UID_FLAG_SECRET) {
        *why = "unique id has unknown flags";
        return KCCL_ERR_INVALID_ARG;
    }
    if (b[UID_OFF_ADDR + 1] != 0) {
        *why = "unique id has non-zero reserved bytes";
        return KCCL_ERR_INVALID_ARG;
    }
    for (int i = UID_OFF_RESERVED; i < UID_OFF_CRC; i++) {
        if (b[i] != 0) {
            *why = "unique id has non-zero reserved bytes";
            return KCCL_ERR_INVALID_ARG;
        }
    }
    if (!(f->flags & KCCL_UID_FLAG_SECRET)) {
        for (int i = UID_OFF_SECRET; i < UID_OFF_RESERVED; i++) {
            if (b[i] != 0) {
                *why = "unique id has secret bytes without the secret flag";
                return KCCL_ERR_INVALID_ARG;
            }
        }
    }
    if (kccl_wire_get_addr(b + UID_OFF_ADDR, 20, &f->root, why) != KCCL_OK)
        return KCCL_ERR_INVALID_ARG;
    memcpy(f->nonce, b + UID_OFF_NONCE, KCCL_NONCE_BYTES);
    if (f->flags & KCCL_UID_FLAG_SECRET)
        memcpy(f->secret, b + UID_OFF_SECRET, KCCL_GROUP_SECRET_BYTES);
    return KCCL_OK;
}

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t kccl_b64url_encode(const uint8_t *in, size_t len, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        size_t rem = len - i;
        if (rem > 1)
            v |= (uint32_t)in[i + 1] << 8;
        if (rem > 2)
            v |= in[i + 2];
        size_t chars = rem >= 3 ? 4 : rem + 1;
        for (size_t k = 0; k < chars; k++) {
            if (o + 1 >= outlen)
                goto done;
            out[o++] = b64url_alphabet[(v >> (18 - 6 * k)) & 63];
        }
    }
done:
    if (outlen)
        out[o] = '\0';
    return o;
}

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

long kccl_b64url_decode(const char *in, size_t inlen, uint8_t *out, size_t outlen)
{
    if (inlen % 4 == 1)
        return -1;
    size_t need = inlen / 4 * 3 + (inlen % 4 ? inlen % 4 - 1 : 0);
    if (need > outlen)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < inlen; i += 4) {
        uint32_t v = 0;
        size_t chunk = inlen - i < 4 ? inlen - i : 4;
        for (size_t k = 0; k < 4; k++) {
            int d = 0;
            if (k < chunk) {
                d = b64url_value((unsigned char)in[i + k]);
                if (d < 0)
                    return -1;
            }
            v = v << 6 | (uint32_t)d;
        }
        /* Non-canonical trailing bits would let two texts name one id: refuse. */
        if (chunk == 2 && (v & 0xFFFF))
            return -1;
        if (chunk == 3 && (v & 0xFF))
            return -1;
        for (size_t k = 0; k < chunk - 1; k++)
            out[o++] = (uint8_t)(v >> (16 - 8 * k));
    }
    return (long)o;
}

kccl_status_t kccl_unique_id_to_string(const kccl_unique_id_t *id, char *buf, size_t buflen)
{
    if (id == NULL || buf == NULL || buflen < KCCL_UNIQUE_ID_STRLEN + 1)
        KCCL_FAIL(BOOT, KCCL_ERR_INVALID_ARG,
                  "unique id text needs a buffer of KCCL_UNIQUE_ID_STRLEN + 1 bytes");
    kccl_b64url_encode(id->internal, KCCL_UNIQUE_ID_BYTES, buf, buflen);
    return KCCL_OK;
}

kccl_status_t kccl_unique_id_from_string(const char *text, kccl_unique_id_t *id)
{
    kccl_unique_id_t tmp;
    kccl_uid_fields_t f;
    const char *why = NULL;
    if (text == NULL || id == NULL)
        KCCL_FAIL(BOOT, KCCL_ERR_INVALID_ARG, "unique id text is missing");
    size_t len = strnlen(text, KCCL_UNIQUE_ID_STRLEN + 2);
    if (len != KCCL_UNIQUE_ID_STRLEN)
        KCCL_FAIL(BOOT, KCCL_ERR_INVALID_ARG,
                  "malformed unique id: %zu%s characters, expected %d (base64url); was it cut "
                  "short or wrapped?",
                  len, len > KCCL_UNIQUE_ID_STRLEN ? "+" : "", KCCL_UNIQUE_ID_STRLEN);
    if (kccl_b64url_decode(text, len, tmp.internal, sizeof(tmp.internal)) != KCCL_UNIQUE_ID_BYTES)
        KCCL_FAIL(
            BOOT, KCCL_ERR_INVALID_ARG,
            "malformed unique id: characters outside the base64url alphabet (A-Z a-z 0-9 - _)");
    kccl_status_t st = kccl_uid_decode(&tmp, &f, &why);
    if (st != KCCL_OK)
        KCCL_FAIL(BOOT, st, "malformed unique id: %s", why);
    *id = tmp;
    return KCCL_OK;
}

kccl_status_t kccl_unique_id_address(const kccl_unique_id_t *id, char *buf, size_t buflen)
{
    kccl_uid_fields_t f;
    const char *why = NULL;
    kccl_status_t st = kccl_uid_decode(id, &f, &why);
    if (st != KCCL_OK)
        KCCL_FAIL(BOOT, st, "malformed unique id: %s", why);
    kccl_wire_addr_format(&f.root, buf, buflen);
    return KCCL_OK;
}

kccl_status_t kccl_unique_id_for_address(const char *address, kccl_unique_id_t *id)
{
    kccl_uid_fields_t f;
    char host[INET6_ADDRSTRLEN + 2];
    if (address == NULL || id == NULL)
        KCCL_FAIL(BOOT, KCCL_ERR_INVALID_ARG, "kccl_unique_id_for_address: NULL argument");
    const char *colon = strrchr(address, ':');
    const char *h = address;
    size_t hlen = colon ? (size_t)(colon - address) : 0;
    if (hlen >= 2 && address[0] == '[' && address[hlen - 1] == ']') {
        h = address + 1;
        hlen -= 2;
    }
    long port = 0;
    char *end = NULL;
    if (colon && colon[1])
        port = strtol(colon + 1, &end, 10);
    if (colon == NULL || hlen == 0 || hlen >= sizeof(host) || end == NULL || *end != '\0' ||
        port < 1 || port > 65535)
        KCCL_FAIL(BOOT, KCCL_ERR_INVALID_ARG,
                  "root address '%s' is not IP:port or [IPv6]:port with a port in 1..65535",
                  address);
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (h == address && strchr(host, ':'))
        KCCL_FAIL(BOOT, KCCL_ERR_INVALID_ARG,
                  "root address '%s': write an IPv6 address in brackets, [addr]:port", address);
    memset(&f, 0, sizeof(f));
    f.version = KCCL_UID_VERSION;
    f.root.port = (uint16_t)port;
    if (inet_pton(AF_INET, host, f.root.addr) == 1)
        f.root.family = 4;
    else if (inet_pton(AF_INET6, host, f.root.addr) == 1)
        f.root.family = 6;
    else
        KCCL_FAIL(BOOT, KCCL_ERR_INVALID_ARG,
                  "root address '%s': '%s' is not an IP address (kccl never resolves names)",
                  address, host);
    KCCL_CHECK(kccl_random_bytes(f.nonce, sizeof(f.nonce)));
    kccl_uid_encode(&f, id);
    return KCCL_OK;
}

/* ---- listeners bound by kccl_unique_id_create, waiting for their root ---- */

typedef struct held_listener {
    uint8_t nonce[KCCL_NONCE_BYTES];
    int fd;
    struct held_listener *next;
} held_listener_t;

static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static held_listener_t *held_head;

int kccl_uid_take_listener(const uint8_t nonce[KCCL_NONCE_BYTES])
{
    int fd = -1;
    pthread_mutex_lock(&held_lock);
    for (held_listener_t **pp = &held_head; *pp; pp = &(*pp)->next) {
        if (memcmp((*pp)->nonce, nonce, KCCL_NONCE_BYTES) == 0) {
            held_listener_t *h = *pp;
            *pp = h->next;
            fd = h->fd;
            free(h);
            break;
        }
    }
    pthread_mutex_unlock(&held_lock);
    return fd;
}

void kccl_unique_id_release(const kccl_unique_id_t *id)
{
    kccl_uid_fields_t f;
    const char *why;
    if (id && kccl_uid_decode(id, &f, &why) == KCCL_OK) {
        int fd = kccl_uid_take_listener(f.nonce);
        if (fd >= 0)
            close(fd);
    }
}

/* Root listener backlog: every rank may connect at once. */
#define KCCL_ROOT_BACKLOG 65535

kccl_status_t kccl_unique_id_create_detached(const kccl_bootstrap_opts_t *opts_in,
                                             kccl_unique_id_t *id, int *listen_fd)
{
    kccl_bootstrap_opts_t envopts;
    const kccl_bootstrap_opts_t *opts = opts_in;
    kccl_uid_fields_t f;
    kccl_wire_addr_t local;
    char ifname[64];
    if (id == NULL || listen_fd == NULL)
        KCCL_FAIL(BOOT, KCCL_ERR_INVALID_ARG, "kccl_unique_id_create: NULL argument");
    if (opts == NULL) {
        memset(&envopts, 0, sizeof(envopts));
        KCCL_CHECK(kccl_bootstrap_opts_from_env(&envopts));
        opts = &envopts;
    }
    memset(&f, 0, sizeof(f));
    f.version = KCCL_UID_VERSION;
    KCCL_CHECK(kccl_netif_pick(opts->ifname, opts->family, &local, ifname, sizeof(ifname)));
    KCCL_CHECK(kccl_random_bytes(f.nonce, sizeof(f.nonce)));
    if (opts->embed_secret) {
        if (!opts->has_secret)
            KCCL_FAIL(BOOT, KCCL_ERR_INVALID_ARG,
                      "embed_secret is set but no group secret was given");
        f.flags |= KCCL_UID_FLAG_SECRET;
        memcpy(f.secret, opts->secret, KCCL_GROUP_SECRET_BYTES);
    }
    KCCL_CHECK(kccl_sock_listen(&local, KCCL_ROOT_BACKLOG, listen_fd, &f.root));
    kccl_uid_encode(&f, id);
    char text[64];
    kccl_wire_addr_format(&f.root, text, sizeof(text));
    kccl_log_info(BOOT, "unique id created: root listens on %s (%s)", text, ifname);
    return KCCL_OK;
}

kccl_status_t kccl_unique_id_create(const kccl_bootstrap_opts_t *opts, kccl_unique_id_t *id)
{
    int fd;
    kccl_uid_fields_t f;
    const char *why;
    KCCL_CHECK(kccl_unique_id_create_detached(opts, id, &fd));
    kccl_uid_decode(id, &f, &why);
    held_listener_t *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        close(fd);
        KCCL_FAIL(BOOT, KCCL_ERR_NO_MEMORY, "out of memory holding the root listener");
    }
    memcpy(h->nonce, f.nonce, KCCL_NONCE_BYTES);
    h->fd = fd;
    pthread_mutex_lock(&held_lock);
    h->next = held_head;
    held_head = h;
    pthread_mutex_unlock(&held_lock);
    return KCCL_OK;
}
