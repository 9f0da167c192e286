/*
 * test_uniqueid.c - runtime/bootstrap/uniqueid.c: the binary codec, the
 * base64url text form and its strict parser, and ids created for real on
 * loopback (the root's listener is bound before the id exists, released on
 * request, and the group secret only travels inside an id when asked to).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "bootstrap/auth.h"
#include "bootstrap/netif.h"
#include "bootstrap/uniqueid.h"
#include "core/error.h"
#include "kccl_test.h"

static kccl_uid_fields_t fields_v4(int with_secret)
{
    kccl_uid_fields_t f;
    memset(&f, 0, sizeof(f));
    f.version = KCCL_UID_VERSION;
    f.root.family = 4;
    f.root.port = 29500;
    assert_int_equal(inet_pton(AF_INET, "10.0.0.7", f.root.addr), 1);
    for (int i = 0; i < KCCL_NONCE_BYTES; i++)
        f.nonce[i] = (uint8_t)(0xA0 + i);
    if (with_secret) {
        f.flags = KCCL_UID_FLAG_SECRET;
        for (int i = 0; i < KCCL_GROUP_SECRET_BYTES; i++)
            f.secret[i] = (uint8_t)(i * 5 + 3);
    }
    return f;
}

static kccl_uid_fields_t fields_v6(int with_secret)
{
    kccl_uid_fields_t f = fields_v4(with_secret);
    f.root.family = 6;
    f.root.port = 1;
    memset(f.root.addr, 0, sizeof(f.root.addr));
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::dead:beef", f.root.addr), 1);
    return f;
}

static void assert_fields_equal(const kccl_uid_fields_t *a, const kccl_uid_fields_t *b)
{
    assert_int_equal(a->version, b->version);
    assert_int_equal(a->flags, b->flags);
    assert_int_equal(a->root.family, b->root.family);
    assert_int_equal(a->root.port, b->root.port);
    assert_memory_equal(a->root.addr, b->root.addr, 16);
    assert_memory_equal(a->nonce, b->nonce, KCCL_NONCE_BYTES);
    assert_memory_equal(a->secret, b->secret, KCCL_GROUP_SECRET_BYTES);
}

/* Rewrites the CRC after a deliberate edit, so a test reaches the check behind it. */
static void reseal(kccl_unique_id_t *id)
{
    kccl_be32_put(id->internal + 124, kccl_crc32c(id->internal, 124));
}

static void to_text(const kccl_unique_id_t *id, char text[KCCL_UNIQUE_ID_STRLEN + 1])
{
    assert_int_equal(kccl_unique_id_to_string(id, text, KCCL_UNIQUE_ID_STRLEN + 1), KCCL_OK);
}

/* Asserts the binary decoder and the text parser both refuse id. */
static void expect_rejected(const kccl_unique_id_t *id, kccl_status_t want, const char *why_part)
{
    kccl_uid_fields_t f;
    kccl_unique_id_t out;
    const char *why = NULL;
    char text[KCCL_UNIQUE_ID_STRLEN + 1];
    assert_int_equal(kccl_uid_decode(id, &f, &why), want);
    assert_non_null(why);
    if (why_part && strstr(why, why_part) == NULL)
        fail_msg("reason '%s' does not mention '%s'", why, why_part);
    to_text(id, text);
    memset(&out, 0x77, sizeof(out));
    kccl_error_clear();
    assert_int_equal(kccl_unique_id_from_string(text, &out), want);
    assert_int_equal(out.internal[0], 0x77); /* untouched */
    assert_non_null(strstr(kccl_last_error(), "malformed unique id"));
}

/* ---- binary layout ---- */

static void test_layout(void **state)
{
    kccl_uid_fields_t f = fields_v4(1);
    kccl_unique_id_t id;
    kccl_uid_encode(&f, &id);
    const uint8_t *b = id.internal;
    assert_memory_equal(b, "KCID", 4);
    assert_int_equal(kccl_be16_get(b + 4), KCCL_UID_VERSION);
    assert_int_equal(kccl_be16_get(b + 6), KCCL_UID_FLAG_SECRET);
    assert_int_equal(b[8], 4);
    assert_int_equal(b[9], 0);
    assert_int_equal(kccl_be16_get(b + 10), 29500);
    assert_memory_equal(b + 12, f.root.addr, 16);
    assert_memory_equal(b + 28, f.nonce, KCCL_NONCE_BYTES);
    assert_memory_equal(b + 44, f.secret, KCCL_GROUP_SECRET_BYTES);
    for (int i = 76; i < 124; i++)
        assert_int_equal(b[i], 0);
    assert_int_equal(kccl_be32_get(b + 124), kccl_crc32c(b, 124));
}

static void test_round_trip_binary(void **state)
{
    const kccl_uid_fields_t cases[] = {fields_v4(0), fields_v4(1), fields_v6(0), fields_v6(1)};
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(cases); i++) {
        kccl_unique_id_t id;
        kccl_uid_fields_t g;
        const char *why = NULL;
        kccl_uid_encode(&cases[i], &id);
        assert_int_equal(kccl_uid_decode(&id, &g, &why), KCCL_OK);
        assert_fields_equal(&g, &cases[i]);
        if (!(cases[i].flags & KCCL_UID_FLAG_SECRET))
            for (int k = 44; k < 76; k++)
                assert_int_equal(id.internal[k], 0);
    }
}

static void test_encode_ignores_secret_without_flag(void **state)
{
    /* Secret bytes in the struct but no flag: the encoder must not copy them. */
    kccl_uid_fields_t f = fields_v4(1), g;
    kccl_unique_id_t id;
    const char *why;
    f.flags = 0;
    kccl_uid_encode(&f, &id);
    for (int k = 44; k < 76; k++)
        assert_int_equal(id.internal[k], 0);
    assert_int_equal(kccl_uid_decode(&id, &g, &why), KCCL_OK);
    assert_int_equal(g.flags, 0);
}

/* ---- text form ---- */

static int is_b64url(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static void test_round_trip_text(void **state)
{
    const kccl_uid_fields_t cases[] = {fields_v4(0), fields_v4(1), fields_v6(0), fields_v6(1)};
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(cases); i++) {
        kccl_unique_id_t id, back;
        char text[KCCL_UNIQUE_ID_STRLEN + 1];
        kccl_uid_encode(&cases[i], &id);
        to_text(&id, text);
        assert_int_equal(strlen(text), KCCL_UNIQUE_ID_STRLEN);
        for (size_t k = 0; k < KCCL_UNIQUE_ID_STRLEN; k++)
            assert_true(is_b64url(text[k]));
        assert_int_equal(kccl_unique_id_from_string(text, &back), KCCL_OK);
        assert_memory_equal(back.internal, id.internal, KCCL_UNIQUE_ID_BYTES);
    }
    /* The buffer must have room for the NUL too. */
    kccl_unique_id_t id;
    char small[KCCL_UNIQUE_ID_STRLEN];
    kccl_uid_encode(&cases[0], &id);
    assert_int_equal(kccl_unique_id_to_string(&id, small, sizeof(small)), KCCL_ERR_INVALID_ARG);
    assert_int_equal(kccl_unique_id_to_string(NULL, small, sizeof(small)), KCCL_ERR_INVALID_ARG);
}

static void test_address_text(void **state)
{
    kccl_uid_fields_t f4 = fields_v4(0), f6 = fields_v6(0);
    kccl_unique_id_t id;
    char buf[64];
    kccl_uid_encode(&f4, &id);
    assert_int_equal(kccl_unique_id_address(&id, buf, sizeof(buf)), KCCL_OK);
    assert_string_equal(buf, "10.0.0.7:29500");
    kccl_uid_encode(&f6, &id);
    assert_int_equal(kccl_unique_id_address(&id, buf, sizeof(buf)), KCCL_OK);
    assert_string_equal(buf, "[2001:db8::dead:beef]:1");
    id.internal[0] ^= 1;
    assert_int_not_equal(kccl_unique_id_address(&id, buf, sizeof(buf)), KCCL_OK);
}

static void test_parse_wrong_length(void **state)
{
    kccl_uid_fields_t f = fields_v4(0);
    kccl_unique_id_t id, out;
    char text[KCCL_UNIQUE_ID_STRLEN + 8];
    kccl_uid_encode(&f, &id);
    to_text(&id, text);
    assert_int_equal(kccl_unique_id_from_string("", &out), KCCL_ERR_INVALID_ARG);
    assert_int_equal(kccl_unique_id_from_string(NULL, &out), KCCL_ERR_INVALID_ARG);
    assert_int_equal(kccl_unique_id_from_string(text, NULL), KCCL_ERR_INVALID_ARG);
    /* One short, one long, a trailing newline, a copy cut in half. */
    char cut[KCCL_UNIQUE_ID_STRLEN + 8];
    memcpy(cut, text, KCCL_UNIQUE_ID_STRLEN - 1);
    cut[KCCL_UNIQUE_ID_STRLEN - 1] = '\0';
    assert_int_equal(kccl_unique_id_from_string(cut, &out), KCCL_ERR_INVALID_ARG);
    assert_non_null(strstr(kccl_last_error(), "170"));
    cut[KCCL_UNIQUE_ID_STRLEN / 2] = '\0';
    assert_int_equal(kccl_unique_id_from_string(cut, &out), KCCL_ERR_INVALID_ARG);
    memcpy(cut, text, KCCL_UNIQUE_ID_STRLEN);
    memcpy(cut + KCCL_UNIQUE_ID_STRLEN, "A", 2);
    assert_int_equal(kccl_unique_id_from_string(cut, &out), KCCL_ERR_INVALID_ARG);
    memcpy(cut + KCCL_UNIQUE_ID_STRLEN, "\n", 2);
    assert_int_equal(kccl_unique_id_from_string(cut, &out), KCCL_ERR_INVALID_ARG);
    /* The same id twice over. */
    char twice[2 * KCCL_UNIQUE_ID_STRLEN + 1];
    memcpy(twice, text, KCCL_UNIQUE_ID_STRLEN);
    memcpy(twice + KCCL_UNIQUE_ID_STRLEN, text, KCCL_UNIQUE_ID_STRLEN + 1);
    assert_int_equal(kccl_unique_id_from_string(twice, &out), KCCL_ERR_INVALID_ARG);
}

static void test_parse_bad_characters(void **state)
{
    kccl_uid_fields_t f = fields_v6(1);
    kccl_unique_id_t id, out;
    char text[KCCL_UNIQUE_ID_STRLEN + 1];
    kccl_uid_encode(&f, &id);
    to_text(&id, text);
    /* Standard base64's characters, padding, whitespace, non-ASCII. */
    const char bad[] = {'+', '/', '=', ' ', '\n', '.', '~', '\x80', '\xff', '*'};
    const size_t positions[] = {0, 1, 85, 169, 170};
    for (size_t i = 0; i < sizeof(bad); i++) {
        for (size_t p = 0; p < KCCL_TEST_ARRAY_LEN(positions); p++) {
            char copy[KCCL_UNIQUE_ID_STRLEN + 1];
            memcpy(copy, text, sizeof(copy));
            copy[positions[p]] = bad[i];
            if (kccl_unique_id_from_string(copy, &out) != KCCL_ERR_INVALID_ARG)
                fail_msg("accepted 0x%02x at %zu", (unsigned char)bad[i], positions[p]);
        }
    }
}

static void test_parse_non_canonical_tail(void **state)
{
    /* 128 bytes = 42 groups of 3 + 2 bytes; the last character carries 4 data
     * bits and 2 bits that must be zero. Setting them names the same bytes
     * with a different text: refused. */
    kccl_uid_fields_t f = fields_v4(0);
    kccl_unique_id_t id, out;
    char text[KCCL_UNIQUE_ID_STRLEN + 1];
    kccl_uid_encode(&f, &id);
    to_text(&id, text);
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int v = (int)(strchr(alphabet, text[KCCL_UNIQUE_ID_STRLEN - 1]) - alphabet);
    assert_int_equal(v & 3, 0);
    for (int low = 1; low < 4; low++) {
        text[KCCL_UNIQUE_ID_STRLEN - 1] = alphabet[v | low];
        assert_int_equal(kccl_unique_id_from_string(text, &out), KCCL_ERR_INVALID_ARG);
    }
    text[KCCL_UNIQUE_ID_STRLEN - 1] = alphabet[v];
    assert_int_equal(kccl_unique_id_from_string(text, &out), KCCL_OK);
}

static void test_parse_flipped_bits(void **state)
{
    /* Any single flipped bit of the 1024 is caught (CRC-32C or a field check). */
    kccl_uid_fields_t f = fields_v4(1);
    kccl_unique_id_t id, out;
    kccl_uid_encode(&f, &id);
    for (int byte = 0; byte < KCCL_UNIQUE_ID_BYTES; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            kccl_unique_id_t bad = id;
            char text[KCCL_UNIQUE_ID_STRLEN + 1];
            const char *why = NULL;
            kccl_uid_fields_t g;
            bad.internal[byte] ^= (uint8_t)(1u << bit);
            if (kccl_uid_decode(&bad, &g, &why) == KCCL_OK)
                fail_msg("bit %d of byte %d flipped: decoded", bit, byte);
            to_text(&bad, text);
            if (kccl_unique_id_from_string(text, &out) == KCCL_OK)
                fail_msg("bit %d of byte %d flipped: parsed", bit, byte);
        }
    }
    /* And damage to the text itself: every position, changed to another letter. */
    char text[KCCL_UNIQUE_ID_STRLEN + 1];
    to_text(&id, text);
    for (size_t i = 0; i < KCCL_UNIQUE_ID_STRLEN; i++) {
        char copy[KCCL_UNIQUE_ID_STRLEN + 1];
        memcpy(copy, text, sizeof(copy));
        copy[i] = copy[i] == 'Q' ? 'R' : 'Q';
        if (kccl_unique_id_from_string(copy, &out) == KCCL_OK)
            fail_msg("character %zu changed: parsed", i);
    }
}

static void test_parse_wrong_magic(void **state)
{
    kccl_uid_fields_t f = fields_v4(0);
    kccl_unique_id_t id;
    kccl_uid_encode(&f, &id);
    memcpy(id.internal, "KCFR", 4); /* a frame header is not an id */
    reseal(&id);
    expect_rejected(&id, KCCL_ERR_INVALID_ARG, "magic");
    memset(id.internal, 0, 4);
    reseal(&id);
    expect_rejected(&id, KCCL_ERR_INVALID_ARG, "magic");
}

static void test_parse_bad_version(void **state)
{
    const uint16_t versions[] = {0, KCCL_UID_VERSION + 1, 0xFFFF};
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(versions); i++) {
        kccl_uid_fields_t f = fields_v4(0);
        kccl_unique_id_t id;
        f.version = versions[i];
        kccl_uid_encode(&f, &id);
        expect_rejected(&id, KCCL_ERR_UNSUPPORTED, "version");
    }
}

static void test_parse_unknown_flags(void **state)
{
    const uint16_t flags[] = {0x0002, 0x8000, 0x0003, 0xFFFF};
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(flags); i++) {
        kccl_uid_fields_t f = fields_v4(0);
        kccl_unique_id_t id;
        kccl_uid_encode(&f, &id);
        kccl_be16_put(id.internal + 6, flags[i]);
        reseal(&id);
        expect_rejected(&id, KCCL_ERR_INVALID_ARG, "flags");
    }
}

static void test_parse_reserved_bytes(void **state)
{
    const int offsets[] = {9, 76, 77, 100, 122, 123};
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(offsets); i++) {
        kccl_uid_fields_t f = fields_v4(1);
        kccl_unique_id_t id;
        kccl_uid_encode(&f, &id);
        id.internal[offsets[i]] = 0x01;
        reseal(&id);
        expect_rejected(&id, KCCL_ERR_INVALID_ARG, "reserved");
    }
}

static void test_parse_secret_without_flag(void **state)
{
    const int offsets[] = {44, 60, 75};
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(offsets); i++) {
        kccl_uid_fields_t f = fields_v4(0);
        kccl_unique_id_t id;
        kccl_uid_encode(&f, &id);
        id.internal[offsets[i]] = 0x42;
        reseal(&id);
        expect_rejected(&id, KCCL_ERR_INVALID_ARG, "secret");
    }
}

static void test_parse_bad_family_and_port(void **state)
{
    const uint8_t families[] = {0, 2, 5, 10, 0xFF};
    for (size_t i = 0; i < sizeof(families); i++) {
        kccl_uid_fields_t f = fields_v4(0);
        kccl_unique_id_t id;
        f.root.family = families[i];
        kccl_uid_encode(&f, &id);
        expect_rejected(&id, KCCL_ERR_INVALID_ARG, "family");
    }
    kccl_uid_fields_t f = fields_v6(1);
    kccl_unique_id_t id;
    f.root.port = 0;
    kccl_uid_encode(&f, &id);
    expect_rejected(&id, KCCL_ERR_INVALID_ARG, "port");
}

/* ---- base64url ---- */

static void test_b64url_vectors(void **state)
{
    /* RFC 4648 section 10, without padding. */
    const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *coded[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(plain); i++) {
        char out[16];
        uint8_t back[16];
        size_t n =
            kccl_b64url_encode((const uint8_t *)plain[i], strlen(plain[i]), out, sizeof(out));
        assert_int_equal(n, strlen(coded[i]));
        assert_string_equal(out, coded[i]);
        long m = kccl_b64url_decode(coded[i], strlen(coded[i]), back, sizeof(back));
        assert_int_equal(m, (long)strlen(plain[i]));
        assert_memory_equal(back, plain[i], (size_t)m);
    }
    /* The URL-safe characters: standard "+/" become "-_". */
    const uint8_t hi[] = {0xFB, 0xFF, 0xBF};
    char out[8];
    uint8_t back[8];
    assert_int_equal(kccl_b64url_encode(hi, 3, out, sizeof(out)), 4);
    assert_string_equal(out, "-_-_");
    assert_int_equal(kccl_b64url_encode(hi, 2, out, sizeof(out)), 3);
    assert_string_equal(out, "-_8");
    assert_int_equal(kccl_b64url_decode("-_-_", 4, back, sizeof(back)), 3);
    assert_memory_equal(back, hi, 3);
    /* All 256 byte values round-trip. */
    uint8_t all[256], all_back[256];
    char all_text[400];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    size_t n = kccl_b64url_encode(all, sizeof(all), all_text, sizeof(all_text));
    assert_int_equal(n, 342); /* 85 groups of 4 + 2 */
    assert_int_equal(kccl_b64url_decode(all_text, n, all_back, sizeof(all_back)), 256);
    assert_memory_equal(all, all_back, 256);
}

static void test_b64url_decode_rejects(void **state)
{
    uint8_t out[16];
    assert_int_equal(kccl_b64url_decode("Z", 1, out, sizeof(out)), -1);     /* 6 bits */
    assert_int_equal(kccl_b64url_decode("Zm9vY", 5, out, sizeof(out)), -1); /* 4n+1 */
    assert_int_equal(kccl_b64url_decode("Zh", 2, out, sizeof(out)), -1);    /* tail bits */
    assert_int_equal(kccl_b64url_decode("Zm9", 3, out, sizeof(out)), -1);   /* tail bits */
    assert_int_equal(kccl_b64url_decode("Zg==", 4, out, sizeof(out)), -1);  /* padding */
    assert_int_equal(kccl_b64url_decode("Zm+v", 4, out, sizeof(out)), -1);  /* standard */
    assert_int_equal(kccl_b64url_decode("Zm/v", 4, out, sizeof(out)), -1);
    assert_int_equal(kccl_b64url_decode("Zm9v\n", 5, out, sizeof(out)), -1);
    /* The output must fit. */
    assert_int_equal(kccl_b64url_decode("Zm9vYmFy", 8, out, 5), -1);
    assert_int_equal(kccl_b64url_decode("Zm9vYmFy", 8, out, 6), 6);
}

static void test_b64url_encode_truncates(void **state)
{
    char out[5];
    memset(out, 'z', sizeof(out));
    size_t n = kccl_b64url_encode((const uint8_t *)"foobar", 6, out, sizeof(out));
    assert_int_equal(n, 4);
    assert_string_equal(out, "Zm9v");
    assert_int_equal(kccl_b64url_encode((const uint8_t *)"foobar", 6, out, 0), 0);
}

/* ---- ids created for real ---- */

static kccl_bootstrap_opts_t loopback_opts(void)
{
    kccl_bootstrap_opts_t o;
    memset(&o, 0, sizeof(o));
    o.timeout_ms = 5000;
    o.insecure = 1;
    o.family = 4;
    o.root_fd = -1;
    snprintf(o.ifname, sizeof(o.ifname), "lo");
    return o;
}

/* Connects to addr; returns 0 when accepted into the backlog, else errno. */
static int try_connect(const kccl_wire_addr_t *addr)
{
    struct sockaddr_storage ss;
    socklen_t len;
    assert_int_equal(kccl_wire_addr_to_sockaddr(addr, &ss, &len), KCCL_OK);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    int rc = connect(fd, (struct sockaddr *)&ss, len) == 0 ? 0 : errno;
    close(fd);
    return rc;
}

static kccl_uid_fields_t decode_ok(const kccl_unique_id_t *id)
{
    kccl_uid_fields_t f;
    const char *why = NULL;
    if (kccl_uid_decode(id, &f, &why) != KCCL_OK)
        fail_msg("created id does not decode: %s", why);
    return f;
}

static void test_create_listens_release_closes(void **state)
{
    kccl_bootstrap_opts_t o = loopback_opts();
    kccl_unique_id_t id;
    char addr[64];
    assert_int_equal(kccl_unique_id_create(&o, &id), KCCL_OK);
    kccl_uid_fields_t f = decode_ok(&id);
    assert_int_equal(f.root.family, 4);
    assert_int_not_equal(f.root.port, 0);
    assert_int_equal(kccl_unique_id_address(&id, addr, sizeof(addr)), KCCL_OK);
    assert_memory_equal(addr, "127.0.0.1:", 10);
    /* The listener exists before anyone learns the id. */
    assert_int_equal(try_connect(&f.root), 0);
    /* The text form survives the trip. */
    char text[KCCL_UNIQUE_ID_STRLEN + 1];
    kccl_unique_id_t back;
    to_text(&id, text);
    assert_int_equal(kccl_unique_id_from_string(text, &back), KCCL_OK);
    assert_memory_equal(back.internal, id.internal, KCCL_UNIQUE_ID_BYTES);

    kccl_unique_id_release(&id);
    assert_int_equal(try_connect(&f.root), ECONNREFUSED);
    /* Releasing again, or an id never created here, is harmless. */
    kccl_unique_id_release(&id);
    kccl_unique_id_release(NULL);
    assert_int_equal(kccl_uid_take_listener(f.nonce), -1);
}

static void test_create_two_ids(void **state)
{
    kccl_bootstrap_opts_t o = loopback_opts();
    kccl_unique_id_t a, b;
    assert_int_equal(kccl_unique_id_create(&o, &a), KCCL_OK);
    assert_int_equal(kccl_unique_id_create(&o, &b), KCCL_OK);
    kccl_uid_fields_t fa = decode_ok(&a), fb = decode_ok(&b);
    assert_int_not_equal(fa.root.port, fb.root.port);
    assert_memory_not_equal(fa.nonce, fb.nonce, KCCL_NONCE_BYTES);
    /* Taking one listener leaves the other alone. */
    int fd = kccl_uid_take_listener(fa.nonce);
    assert_true(fd >= 0);
    assert_int_equal(kccl_uid_take_listener(fa.nonce), -1);
    assert_int_equal(try_connect(&fb.root), 0);
    close(fd);
    assert_int_equal(try_connect(&fa.root), ECONNREFUSED);
    kccl_unique_id_release(&b);
    assert_int_equal(try_connect(&fb.root), ECONNREFUSED);
}

static void test_create_detached(void **state)
{
    kccl_bootstrap_opts_t o = loopback_opts();
    kccl_unique_id_t id;
    int fd = -1;
    assert_int_equal(kccl_unique_id_create_detached(&o, &id, &fd), KCCL_OK);
    assert_true(fd >= 0);
    int on = 0;
    socklen_t len = sizeof(on);
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len), 0);
    assert_int_equal(on, 1);
    kccl_wire_addr_t bound;
    assert_int_equal(kccl_sock_bound_addr(fd, &bound), KCCL_OK);
    kccl_uid_fields_t f = decode_ok(&id);
    assert_int_equal(bound.port, f.root.port);
    assert_int_equal(try_connect(&f.root), 0);
    /* Detached: nothing is held in the registry, release does not close it. */
    assert_int_equal(kccl_uid_take_listener(f.nonce), -1);
    kccl_unique_id_release(&id);
    assert_int_equal(try_connect(&f.root), 0);
    close(fd);
    assert_int_equal(try_connect(&f.root), ECONNREFUSED);

    assert_int_equal(kccl_unique_id_create_detached(&o, NULL, &fd), KCCL_ERR_INVALID_ARG);
    assert_int_equal(kccl_unique_id_create_detached(&o, &id, NULL), KCCL_ERR_INVALID_ARG);
}

static int contains(const uint8_t *hay, size_t hlen, const uint8_t *needle, size_t nlen)
{
    return memmem(hay, hlen, needle, nlen) != NULL;
}

static void test_secret_not_published(void **state)
{
    kccl_bootstrap_opts_t o = loopback_opts();
    kccl_unique_id_t id;
    o.insecure = 0;
    o.has_secret = 1;
    for (int i = 0; i < KCCL_GROUP_SECRET_BYTES; i++)
        o.secret[i] = (uint8_t)(0xC0 ^ (i * 11));
    assert_int_equal(kccl_unique_id_create(&o, &id), KCCL_OK);
    kccl_uid_fields_t f = decode_ok(&id);
    assert_int_equal(f.flags & KCCL_UID_FLAG_SECRET, 0);
    for (int k = 44; k < 76; k++)
        assert_int_equal(id.internal[k], 0);
    /* No 8-byte window of the secret appears anywhere in the id. */
    for (int k = 0; k + 8 <= KCCL_GROUP_SECRET_BYTES; k++)
        assert_false(contains(id.internal, sizeof(id.internal), o.secret + k, 8));
    kccl_unique_id_release(&id);

    /* With embed_secret the secret travels, flagged. */
    o.embed_secret = 1;
    assert_int_equal(kccl_unique_id_create(&o, &id), KCCL_OK);
    f = decode_ok(&id);
    assert_int_equal(f.flags & KCCL_UID_FLAG_SECRET, KCCL_UID_FLAG_SECRET);
    assert_memory_equal(f.secret, o.secret, KCCL_GROUP_SECRET_BYTES);
    kccl_unique_id_release(&id);

    /* embed_secret with no secret is a caller error, and binds nothing. */
    o.has_secret = 0;
    assert_int_equal(kccl_unique_id_create(&o, &id), KCCL_ERR_INVALID_ARG);
}

static void test_create_bad_interface(void **state)
{
    kccl_bootstrap_opts_t o = loopback_opts();
    kccl_unique_id_t id;
    snprintf(o.ifname, sizeof(o.ifname), "=nosuchif0");
    assert_int_equal(kccl_unique_id_create(&o, &id), KCCL_ERR_CONFIG);
}

static void test_create_from_env(void **state)
{
    /* NULL opts means the KCCL_* environment, as kccl_bootstrap_opts_from_env reads it. */
    kccl_bootstrap_opts_t o;
    kccl_unique_id_t id;
    setenv("KCCL_SOCKET_IFNAME", "lo", 1);
    setenv("KCCL_SOCKET_FAMILY", "AF_INET", 1);
    setenv("KCCL_BOOTSTRAP_INSECURE", "1", 1);
    unsetenv("KCCL_GROUP_SECRET");
    unsetenv("KCCL_GROUP_SECRET_FILE");
    memset(&o, 0, sizeof(o));
    assert_int_equal(kccl_bootstrap_opts_from_env(&o), KCCL_OK);
    assert_string_equal(o.ifname, "lo");
    assert_int_equal(kccl_unique_id_create(NULL, &id), KCCL_OK);
    kccl_uid_fields_t f = decode_ok(&id);
    char addr[64];
    kccl_wire_addr_format(&f.root, addr, sizeof(addr));
    assert_memory_equal(addr, "127.0.0.1:", 10);
    assert_int_equal(try_connect(&f.root), 0);
    kccl_unique_id_release(&id);
    assert_int_equal(try_connect(&f.root), ECONNREFUSED);
    unsetenv("KCCL_SOCKET_IFNAME");
    unsetenv("KCCL_SOCKET_FAMILY");
    unsetenv("KCCL_BOOTSTRAP_INSECURE");
}

static int quiet_log(void **state)
{
    /* Hundreds of deliberate parse failures would each log an error. */
    setenv("KCCL_LOG_LEVEL", "none", 1);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_round_trip_binary),
        cmocka_unit_test(test_encode_ignores_secret_without_flag),
        cmocka_unit_test(test_round_trip_text),
        cmocka_unit_test(test_address_text),
        cmocka_unit_test(test_parse_wrong_length),
        cmocka_unit_test(test_parse_bad_characters),
        cmocka_unit_test(test_parse_non_canonical_tail),
        cmocka_unit_test(test_parse_flipped_bits),
        cmocka_unit_test(test_parse_wrong_magic),
        cmocka_unit_test(test_parse_bad_version),
        cmocka_unit_test(test_parse_unknown_flags),
        cmocka_unit_test(test_parse_reserved_bytes),
        cmocka_unit_test(test_parse_secret_without_flag),
        cmocka_unit_test(test_parse_bad_family_and_port),
        cmocka_unit_test(test_b64url_vectors),
        cmocka_unit_test(test_b64url_decode_rejects),
        cmocka_unit_test(test_b64url_encode_truncates),
        cmocka_unit_test(test_create_listens_release_closes),
        cmocka_unit_test(test_create_two_ids),
        cmocka_unit_test(test_create_detached),
        cmocka_unit_test(test_secret_not_published),
        cmocka_unit_test(test_create_bad_interface),
        cmocka_unit_test(test_create_from_env),
    };
    return cmocka_run_group_tests(tests, quiet_log, NULL);
}
