/*
 * seedgen.c - writes the seed corpora under tests/fuzz/corpus/ from the real
 * encoders, so valid seeds stay valid when a layout changes. Not a fuzzer:
 *   build-fuzz/tests/fuzz/kccl_fuzz_seedgen tests/fuzz/corpus
 * then review and commit the files. Each seed is a few valid inputs plus
 * near misses (one field wrong) that take the decoders down their refusal
 * paths.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bootstrap/auth.h"
#include "bootstrap/uniqueid.h"
#include "bootstrap/wire.h"

static const char *root;

static void put(const char *target, const char *name, const void *data, size_t len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", root, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    snprintf(path, sizeof(path), "%s/%s/%s", root, target, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static kccl_uid_fields_t uid_fields(int family, int secret)
{
    kccl_uid_fields_t f;
    memset(&f, 0, sizeof(f));
    f.version = KCCL_UID_VERSION;
    f.root.family = (uint8_t)family;
    f.root.port = 29500;
    if (family == 4)
        inet_pton(AF_INET, "10.244.1.17", f.root.addr);
    else
        inet_pton(AF_INET6, "fd00:10:244::11", f.root.addr);
    for (int i = 0; i < KCCL_NONCE_BYTES; i++)
        f.nonce[i] = (uint8_t)(i * 29 + 7);
    if (secret) {
        f.flags = KCCL_UID_FLAG_SECRET;
        for (int i = 0; i < KCCL_GROUP_SECRET_BYTES; i++)
            f.secret[i] = (uint8_t)(i * 13 + 1);
    }
    return f;
}

static void reseal(kccl_unique_id_t *id)
{
    kccl_be32_put(id->internal + 124, kccl_crc32c(id->internal, 124));
}

static void uid_seeds(void)
{
    struct {
        const char *name;
        int family, secret;
    } valid[] = {{"valid-v4", 4, 0},
                 {"valid-v4-secret", 4, 1},
                 {"valid-v6", 6, 0},
                 {"valid-v6-secret", 6, 1}};
    kccl_unique_id_t id;
    char text[KCCL_UNIQUE_ID_STRLEN + 1];
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        kccl_uid_fields_t f = uid_fields(valid[i].family, valid[i].secret);
        kccl_uid_encode(&f, &id);
        put("fuzz_uniqueid_bin", valid[i].name, id.internal, sizeof(id.internal));
        kccl_unique_id_to_string(&id, text, sizeof(text));
        put("fuzz_uniqueid_text", valid[i].name, text, strlen(text));
    }

    /* Near misses: each passes the CRC and fails one later check. */
    kccl_uid_fields_t f = uid_fields(4, 0);
    kccl_uid_encode(&f, &id);
    kccl_unique_id_t bad = id;
    bad.internal[4 + 1] = 2; /* version 2 */
    reseal(&bad);
    put("fuzz_uniqueid_bin", "bad-version", bad.internal, sizeof(bad.internal));
    bad = id;
    bad.internal[7] = 2; /* unknown flag */
    reseal(&bad);
    put("fuzz_uniqueid_bin", "bad-flags", bad.internal, sizeof(bad.internal));
    bad = id;
    bad.internal[100] = 1; /* reserved */
    reseal(&bad);
    put("fuzz_uniqueid_bin", "bad-reserved", bad.internal, sizeof(bad.internal));
    bad = id;
    bad.internal[50] = 1; /* secret bytes, no flag */
    reseal(&bad);
    put("fuzz_uniqueid_bin", "bad-secret-noflag", bad.internal, sizeof(bad.internal));
    bad = id;
    bad.internal[10] = bad.internal[11] = 0; /* port 0 */
    reseal(&bad);
    put("fuzz_uniqueid_bin", "bad-port", bad.internal, sizeof(bad.internal));
    kccl_unique_id_to_string(&bad, text, sizeof(text));
    put("fuzz_uniqueid_text", "bad-port", text, strlen(text));
    bad = id;
    bad.internal[124] ^= 1; /* CRC */
    put("fuzz_uniqueid_bin", "bad-crc", bad.internal, sizeof(bad.internal));

    kccl_unique_id_to_string(&id, text, sizeof(text));
    put("fuzz_uniqueid_text", "short", text, KCCL_UNIQUE_ID_STRLEN - 1);
    text[KCCL_UNIQUE_ID_STRLEN - 1] = 'B'; /* non-canonical tail bits */
    put("fuzz_uniqueid_text", "bad-tail", text, KCCL_UNIQUE_ID_STRLEN);
    put("fuzz_uniqueid_text", "b64-vector", "Zm9vYmFy", 8);
    put("fuzz_uniqueid_text", "b64-std-alphabet", "Zm+vYg==", 8);
}

static void wire_seeds(void)
{
    uint8_t buf[512];
    size_t n;
    /* A HELLO frame: header + hello payload. */
    kccl_wire_hello_t hello = {
        .version = KCCL_WIRE_VERSION, .kind = KCCL_CONN_KIND_CHECKIN, .rank = 3, .nranks = 8};
    memset(hello.group_nonce, 0x11, KCCL_NONCE_BYTES);
    memset(hello.client_nonce, 0x22, KCCL_NONCE_BYTES);
    kccl_wire_hdr_t h = {.type = KCCL_MSG_HELLO, .src_rank = 3, .len = KCCL_WIRE_HELLO_BYTES};
    kccl_wire_put_hdr(buf, &h);
    kccl_wire_put_hello(buf + KCCL_WIRE_HDR_BYTES, &hello);
    put("fuzz_wire", "frame-hello", buf, KCCL_WIRE_HDR_BYTES + KCCL_WIRE_HELLO_BYTES);
    put("fuzz_wire", "hello", buf + KCCL_WIRE_HDR_BYTES, KCCL_WIRE_HELLO_BYTES);

    /* A PROOF frame carrying a check-in. */
    kccl_wire_checkin_t c = {.host_hash = 0x1234567890abcdefull, .pid = 4242};
    c.addr.family = 4;
    c.addr.port = 40001;
    inet_pton(AF_INET, "10.244.2.9", c.addr.addr);
    h.type = KCCL_MSG_PROOF;
    h.len = KCCL_MAC_BYTES + KCCL_WIRE_CHECKIN_BYTES;
    kccl_wire_put_hdr(buf, &h);
    memset(buf + KCCL_WIRE_HDR_BYTES, 0x5c, KCCL_MAC_BYTES);
    kccl_wire_put_checkin(buf + KCCL_WIRE_HDR_BYTES + KCCL_MAC_BYTES, &c);
    put("fuzz_wire", "frame-proof", buf, KCCL_WIRE_HDR_BYTES + h.len);
    kccl_wire_put_checkin(buf, &c);
    put("fuzz_wire", "checkin", buf, KCCL_WIRE_CHECKIN_BYTES);

    /* A TABLE frame of three rows, one IPv6. */
    h.type = KCCL_MSG_TABLE;
    h.src_rank = 0;
    h.len = 3 * KCCL_WIRE_PEER_BYTES;
    kccl_wire_put_hdr(buf, &h);
    n = KCCL_WIRE_HDR_BYTES;
    for (int r = 0; r < 3; r++) {
        kccl_wire_peer_t p = {.host_hash = (uint64_t)r * 0x9e3779b97f4a7c15ull};
        p.addr.family = r == 1 ? 6 : 4;
        p.addr.port = (uint16_t)(40000 + r);
        if (r == 1)
            inet_pton(AF_INET6, "fd00::1", p.addr.addr);
        else
            inet_pton(AF_INET, "10.0.0.1", p.addr.addr);
        kccl_wire_put_peer(buf + n, &p);
        n += KCCL_WIRE_PEER_BYTES;
    }
    put("fuzz_wire", "frame-table", buf, n);

    /* An ABORT frame, and a DATA header alone. */
    kccl_wire_abort_t ab = {.lost_rank = 5, .status = -4, .step = 2};
    h.type = KCCL_MSG_ABORT;
    h.len = KCCL_WIRE_ABORT_BYTES;
    kccl_wire_put_hdr(buf, &h);
    kccl_wire_put_abort(buf + KCCL_WIRE_HDR_BYTES, &ab);
    put("fuzz_wire", "frame-abort", buf, KCCL_WIRE_HDR_BYTES + KCCL_WIRE_ABORT_BYTES);
    h.type = KCCL_MSG_DATA;
    h.tag = 0x80000002u;
    h.len = 4096;
    kccl_wire_put_hdr(buf, &h);
    put("fuzz_wire", "hdr-data", buf, KCCL_WIRE_HDR_BYTES);
    h.type = KCCL_MSG_BYE;
    h.tag = 0;
    h.len = 0;
    kccl_wire_put_hdr(buf, &h);
    put("fuzz_wire", "frame-bye", buf, KCCL_WIRE_HDR_BYTES);
    h.type = KCCL_MSG_DATA;

    /* Near misses: absurd length, unknown type, bad kind. */
    h.len = KCCL_WIRE_MAX_FRAME;
    kccl_wire_put_hdr(buf, &h);
    put("fuzz_wire", "bad-len", buf, KCCL_WIRE_HDR_BYTES);
    h.len = 0;
    h.type = 99;
    kccl_wire_put_hdr(buf, &h);
    put("fuzz_wire", "bad-type", buf, KCCL_WIRE_HDR_BYTES);
    hello.kind = 9;
    kccl_wire_put_hello(buf, &hello);
    put("fuzz_wire", "bad-hello-kind", buf, KCCL_WIRE_HELLO_BYTES);
    put("fuzz_wire", "truncated", "KCFR\0\1", 6);
}

static void secret_seeds(void)
{
    static const char hex[] = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
    char buf[80];
    uint8_t raw[32];
    put("fuzz_secret", "hex", hex, 64);
    memcpy(buf, hex, 64);
    memcpy(buf + 64, "\r\n", 2);
    put("fuzz_secret", "hex-crlf", buf, 66);
    for (int i = 0; i < 32; i++)
        raw[i] = (uint8_t)(255 - i);
    put("fuzz_secret", "raw", raw, 32);
    put("fuzz_secret", "short-hex", hex, 63);
    memcpy(buf, hex, 64);
    buf[40] = 'g';
    put("fuzz_secret", "bad-digit", buf, 64);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR (e.g. tests/fuzz/corpus)\n", argv[0]);
        return 2;
    }
    root = argv[1];
    if (mkdir(root, 0755) != 0 && errno != EEXIST) {
        perror(root);
        return 1;
    }
    uid_seeds();
    wire_seeds();
    secret_seeds();
    return 0;
}
