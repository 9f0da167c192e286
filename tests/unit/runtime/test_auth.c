/*
 * test_auth.c - runtime/bootstrap/auth.c: HMAC-SHA256 against published
 * vectors, how label and parts are joined, constant-time comparison, group
 * secret parsing and loading, CRC-32C, and the random source.
 *
 * kccl_auth_mac() always takes a 32-byte key. HMAC zero-pads keys shorter
 * than the hash block (64 bytes), so RFC 4231 test cases 1-5, whose keys are
 * 4 to 25 bytes, apply unchanged to the key padded with zeros to 32 bytes.
 * Each expected value was checked independently with
 *   printf '<data>' | openssl dgst -sha256 -mac HMAC -macopt hexkey:<key hex, 32 bytes>
 */
#include "bootstrap/auth.h"
#include "core/error.h"
#include "kccl_test.h"

typedef struct {
    const char *key_hex; /* padded with zeros to 32 bytes */
    const uint8_t *data;
    size_t data_len;
    const char *mac_hex; /* possibly truncated (test case 5) */
} hmac_vector_t;

static void check_vector(const hmac_vector_t *v)
{
    uint8_t key[KCCL_GROUP_SECRET_BYTES] = {0};
    uint8_t want[KCCL_MAC_BYTES], got[KCCL_MAC_BYTES];
    kccl_test_unhex(v->key_hex, key, sizeof(key));
    size_t n = kccl_test_unhex(v->mac_hex, want, sizeof(want));
    /* The data as the "a" part with an empty label... */
    kccl_auth_mac(key, "", v->data, v->data_len, NULL, 0, NULL, 0, got);
    assert_memory_equal(got, want, n);
    /* ...and as "c", and split across label-less parts, give the same MAC. */
    kccl_auth_mac(key, "", NULL, 0, NULL, 0, v->data, v->data_len, got);
    assert_memory_equal(got, want, n);
    size_t third = v->data_len / 3;
    kccl_auth_mac(key, "", v->data, third, v->data + third, third, v->data + 2 * third,
                  v->data_len - 2 * third, got);
    assert_memory_equal(got, want, n);
}

static void test_hmac_rfc4231(void **state)
{
    uint8_t dd[50], cd[50];
    memset(dd, 0xdd, sizeof(dd));
    memset(cd, 0xcd, sizeof(cd));
    const hmac_vector_t vectors[] = {
        /* Test case 1 */
        {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", (const uint8_t *)"Hi There", 8,
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        /* Test case 2: key "Jefe" */
        {"4a656665", (const uint8_t *)"what do ya want for nothing?", 28,
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        /* Test case 3 */
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", dd, sizeof(dd),
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
        /* Test case 4 */
        {"0102030405060708090a0b0c0d0e0f10111213141516171819", cd, sizeof(cd),
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
        /* Test case 5: output truncated to 128 bits */
        {"0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c", (const uint8_t *)"Test With Truncation", 20,
         "a3b6167473100ee06e0c796c2955552b"},
    };
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(vectors); i++)
        check_vector(&vectors[i]);
}

static void test_hmac_full_key_with_label(void **state)
{
    /* A full 32-byte key, label "kccl-a" and three parts:
     * printf 'kccl-a|hello|nonce' | openssl dgst -sha256 -mac HMAC \
     *   -macopt hexkey:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f */
    uint8_t key[KCCL_GROUP_SECRET_BYTES], want[KCCL_MAC_BYTES], got[KCCL_MAC_BYTES];
    for (int i = 0; i < KCCL_GROUP_SECRET_BYTES; i++)
        key[i] = (uint8_t)i;
    kccl_test_unhex("d1027440eedae7bcd885f2feb5d4981de130a352a1113801812e59fd157e65b5", want,
                    sizeof(want));
    kccl_auth_mac(key, "kccl-a", (const uint8_t *)"|hello", 6, (const uint8_t *)"|", 1,
                  (const uint8_t *)"nonce", 5, got);
    assert_memory_equal(got, want, KCCL_MAC_BYTES);
    /* The same bytes split differently: the MAC covers the concatenation. */
    kccl_auth_mac(key, "kccl-a|hello|nonce", NULL, 0, NULL, 0, NULL, 0, got);
    assert_memory_equal(got, want, KCCL_MAC_BYTES);
    kccl_auth_mac(key, "kccl", (const uint8_t *)"-a|hello|nonce", 14, NULL, 0, NULL, 0, got);
    assert_memory_equal(got, want, KCCL_MAC_BYTES);
    kccl_auth_mac(key, "", (const uint8_t *)"kccl-a|", 7, (const uint8_t *)"hello|nonce", 11, NULL,
                  0, got);
    assert_memory_equal(got, want, KCCL_MAC_BYTES);
    /* A different label or key changes the MAC. */
    kccl_auth_mac(key, "kccl-c", (const uint8_t *)"|hello|nonce", 12, NULL, 0, NULL, 0, got);
    assert_memory_not_equal(got, want, KCCL_MAC_BYTES);
    key[31] ^= 1;
    kccl_auth_mac(key, "kccl-a", (const uint8_t *)"|hello|nonce", 12, NULL, 0, NULL, 0, got);
    assert_memory_not_equal(got, want, KCCL_MAC_BYTES);
}

static void test_hmac_keyed_state(void **state)
{
    /* kccl_hmac with a prepared key equals the one-shot form, and the key
     * state is reusable: the inner/outer pads are not consumed by a MAC. */
    uint8_t key[KCCL_GROUP_SECRET_BYTES] = {0}, want[KCCL_MAC_BYTES], got[KCCL_MAC_BYTES];
    kccl_hmac_key_t k;
    kccl_test_unhex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", key, sizeof(key));
    kccl_test_unhex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", want,
                    sizeof(want));
    assert_int_equal(kccl_hmac_key_init(&k, key), KCCL_OK);
    for (int round = 0; round < 3; round++) {
        memset(got, 0, sizeof(got));
        kccl_hmac(&k, "Hi There", NULL, 0, NULL, 0, NULL, 0, got);
        assert_memory_equal(got, want, KCCL_MAC_BYTES);
        kccl_hmac(&k, "Hi", (const uint8_t *)" ", 1, (const uint8_t *)"The", 3,
                  (const uint8_t *)"re", 2, got);
        assert_memory_equal(got, want, KCCL_MAC_BYTES);
    }
    /* Long transcripts are not truncated or refused. */
    static uint8_t big[4096];
    uint8_t one_shot[KCCL_MAC_BYTES];
    memset(big, 0x42, sizeof(big));
    kccl_hmac(&k, "kccl-c", big, sizeof(big), big, 100, NULL, 0, got);
    kccl_auth_mac(key, "kccl-c", big, sizeof(big), big, 100, NULL, 0, one_shot);
    assert_memory_equal(got, one_shot, KCCL_MAC_BYTES);
    kccl_hmac(&k, "kccl-c", big, sizeof(big), big, 99, NULL, 0, one_shot);
    assert_memory_not_equal(got, one_shot, KCCL_MAC_BYTES);
    kccl_hmac_key_fini(&k);
    assert_null(k.inner);
    kccl_hmac_key_fini(&k); /* twice is harmless */
}

static void test_hmac_transcript_sizes(void **state)
{
    /* The largest transcript wire.h produces must be MACed, not zeroed. */
    uint8_t key[KCCL_GROUP_SECRET_BYTES] = {1};
    uint8_t hello[KCCL_WIRE_HELLO_BYTES] = {2}, nonce[KCCL_NONCE_BYTES] = {3};
    uint8_t checkin[KCCL_WIRE_CHECKIN_BYTES] = {4}, zero[KCCL_MAC_BYTES] = {0};
    uint8_t mac1[KCCL_MAC_BYTES], mac2[KCCL_MAC_BYTES];
    kccl_auth_mac(key, "kccl-c", hello, sizeof(hello), nonce, sizeof(nonce), checkin,
                  sizeof(checkin), mac1);
    assert_memory_not_equal(mac1, zero, KCCL_MAC_BYTES);
    checkin[5] ^= 0x80;
    kccl_auth_mac(key, "kccl-c", hello, sizeof(hello), nonce, sizeof(nonce), checkin,
                  sizeof(checkin), mac2);
    assert_memory_not_equal(mac1, mac2, KCCL_MAC_BYTES);
}

static void test_auth_equal(void **state)
{
    uint8_t a[KCCL_MAC_BYTES], b[KCCL_MAC_BYTES];
    for (int i = 0; i < KCCL_MAC_BYTES; i++)
        a[i] = b[i] = (uint8_t)(i * 7);
    assert_int_equal(kccl_auth_equal(a, b, sizeof(a)), 1);
    for (int i = 0; i < KCCL_MAC_BYTES; i++) {
        b[i] ^= 0x01;
        assert_int_equal(kccl_auth_equal(a, b, sizeof(a)), 0);
        b[i] ^= 0x01;
    }
    b[31] ^= 0x80;
    assert_int_equal(kccl_auth_equal(a, b, sizeof(a)), 0);
    assert_int_equal(kccl_auth_equal(a, b, 31), 1); /* only len bytes compared */
    assert_int_equal(kccl_auth_equal(a, b, 0), 1);
}

/* ---- group secrets ---- */

static const char hex64[] = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
static const uint8_t hex64_bytes[32] = {
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};

static void test_secret_parse_raw(void **state)
{
    uint8_t raw[32], out[32];
    for (int i = 0; i < 32; i++)
        raw[i] = (uint8_t)(255 - i * 3);
    assert_int_equal(kccl_secret_parse(raw, sizeof(raw), out), 0);
    assert_memory_equal(out, raw, 32);
    /* 32 bytes are raw even when they look like text or end in a newline. */
    const char *text32 = "0123456789abcdef0123456789abcde\n";
    assert_int_equal(strlen(text32), 32);
    assert_int_equal(kccl_secret_parse((const uint8_t *)text32, 32, out), 0);
    assert_memory_equal(out, text32, 32);
}

static void test_secret_parse_hex(void **state)
{
    uint8_t out[32];
    char buf[80];
    assert_int_equal(kccl_secret_parse((const uint8_t *)hex64, 64, out), 0);
    assert_memory_equal(out, hex64_bytes, 32);
    /* All lower case and all upper case. */
    for (int i = 0; i < 64; i++)
        buf[i] = (char)((hex64[i] >= 'A' && hex64[i] <= 'F') ? hex64[i] + 32 : hex64[i]);
    memset(out, 0, sizeof(out));
    assert_int_equal(kccl_secret_parse((const uint8_t *)buf, 64, out), 0);
    assert_memory_equal(out, hex64_bytes, 32);
    for (int i = 0; i < 64; i++)
        buf[i] = (char)((buf[i] >= 'a' && buf[i] <= 'f') ? buf[i] - 32 : buf[i]);
    memset(out, 0, sizeof(out));
    assert_int_equal(kccl_secret_parse((const uint8_t *)buf, 64, out), 0);
    assert_memory_equal(out, hex64_bytes, 32);
    /* A trailing newline (echo > file), CRLF too. */
    memcpy(buf, hex64, sizeof(hex64));
    buf[64] = '\n';
    memset(out, 0, sizeof(out));
    assert_int_equal(kccl_secret_parse((const uint8_t *)buf, 65, out), 0);
    assert_memory_equal(out, hex64_bytes, 32);
    buf[64] = '\r';
    buf[65] = '\n';
    assert_int_equal(kccl_secret_parse((const uint8_t *)buf, 66, out), 0);
    assert_memory_equal(out, hex64_bytes, 32);
}

static void test_secret_parse_bad(void **state)
{
    uint8_t out[32], buf[80];
    const size_t bad_lengths[] = {0, 1, 31, 33, 63, 65, 66, 80};
    memset(buf, 'a', sizeof(buf));
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(bad_lengths); i++)
        assert_int_equal(kccl_secret_parse(buf, bad_lengths[i], out), -1);
    /* 63 hex digits plus newline is not 64 digits. */
    memcpy(buf, hex64, 63);
    buf[63] = '\n';
    assert_int_equal(kccl_secret_parse(buf, 64, out), -1);
    /* A non-hex character anywhere among the 64. */
    const char bad_chars[] = {'g', 'G', ' ', 'x', '-', '\0', '\n'};
    for (size_t c = 0; c < sizeof(bad_chars); c++) {
        for (int pos = 0; pos < 64; pos += 9) {
            memcpy(buf, hex64, sizeof(hex64));
            buf[pos] = (uint8_t)bad_chars[c];
            assert_int_equal(kccl_secret_parse(buf, 64, out), -1);
        }
    }
    /* Leading whitespace is not allowed either. */
    buf[0] = ' ';
    memcpy(buf + 1, hex64, sizeof(hex64));
    assert_int_equal(kccl_secret_parse(buf, 65, out), -1);
}

/* CONVENTIONS.md: output arguments are set only on success. A parse that
 * fails half-way must not leave part of a secret in the caller's buffer. */
static void test_secret_parse_failure_leaves_output(void **state)
{
    uint8_t out[32], buf[sizeof(hex64)];
    memcpy(buf, hex64, sizeof(hex64));
    buf[63] = 'g'; /* the very last digit is bad: 31 bytes decode first */
    memset(out, 0x5a, sizeof(out));
    assert_int_equal(kccl_secret_parse(buf, 64, out), -1);
    for (int i = 0; i < 32; i++)
        if (out[i] != 0x5a)
            fail_msg("kccl_secret_parse wrote out[%d] before failing", i);
}

static char secret_dir[256];

static int make_secret_dir(void **state)
{
    kccl_test_mkdtemp(secret_dir);
    return 0;
}

static void test_secret_load_file(void **state)
{
    char path[512];
    uint8_t out[32], raw[32];
    snprintf(path, sizeof(path), "%s/hex", secret_dir);
    kccl_test_write_file(path, hex64, 64, 0600);
    assert_int_equal(kccl_secret_load_file(path, out), KCCL_OK);
    assert_memory_equal(out, hex64_bytes, 32);

    snprintf(path, sizeof(path), "%s/hex-nl", secret_dir);
    char line[sizeof(hex64)];
    memcpy(line, hex64, sizeof(hex64));
    line[64] = '\n';
    kccl_test_write_file(path, line, 65, 0400);
    memset(out, 0, sizeof(out));
    assert_int_equal(kccl_secret_load_file(path, out), KCCL_OK);
    assert_memory_equal(out, hex64_bytes, 32);

    for (int i = 0; i < 32; i++)
        raw[i] = (uint8_t)(i * 37 + 1);
    snprintf(path, sizeof(path), "%s/raw", secret_dir);
    kccl_test_write_file(path, raw, 32, 0600);
    assert_int_equal(kccl_secret_load_file(path, out), KCCL_OK);
    assert_memory_equal(out, raw, 32);

    /* World-readable still loads (with a warning in the log). */
    snprintf(path, sizeof(path), "%s/open", secret_dir);
    kccl_test_write_file(path, raw, 32, 0644);
    assert_int_equal(kccl_secret_load_file(path, out), KCCL_OK);
    assert_memory_equal(out, raw, 32);
}

static void test_secret_load_file_errors(void **state)
{
    char path[512];
    uint8_t out[32];
    snprintf(path, sizeof(path), "%s/does-not-exist", secret_dir);
    kccl_error_clear();
    assert_int_equal(kccl_secret_load_file(path, out), KCCL_ERR_CONFIG);
    assert_non_null(strstr(kccl_last_error(), path));

    const size_t bad_sizes[] = {0, 1, 31, 33, 63, 67, 200, 4096};
    static uint8_t junk[4096];
    memset(junk, 'a', sizeof(junk));
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(bad_sizes); i++) {
        snprintf(path, sizeof(path), "%s/size-%zu", secret_dir, bad_sizes[i]);
        kccl_test_write_file(path, junk, bad_sizes[i], 0600);
        kccl_error_clear();
        if (kccl_secret_load_file(path, out) != KCCL_ERR_CONFIG)
            fail_msg("a %zu-byte secret file was accepted", bad_sizes[i]);
        assert_non_null(strstr(kccl_last_error(), path));
    }

    /* A directory is not a secret file. */
    assert_int_equal(kccl_secret_load_file(secret_dir, out), KCCL_ERR_CONFIG);
}

/* ---- CRC-32C and random bytes ---- */

static void test_crc32c(void **state)
{
    assert_int_equal(kccl_crc32c((const uint8_t *)"123456789", 9), 0xE3069283u);
    assert_int_equal(kccl_crc32c((const uint8_t *)"", 0), 0x00000000u);
    /* RFC 3720 (iSCSI) B.4: 32 bytes of zeros and of 0xff. */
    uint8_t buf[32];
    memset(buf, 0, sizeof(buf));
    assert_int_equal(kccl_crc32c(buf, sizeof(buf)), 0x8A9136AAu);
    memset(buf, 0xff, sizeof(buf));
    assert_int_equal(kccl_crc32c(buf, sizeof(buf)), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    assert_int_equal(kccl_crc32c(buf, sizeof(buf)), 0x46DD794Eu);
}

static void test_random_bytes(void **state)
{
    uint8_t a[32], b[32], zero[32] = {0};
    memset(a, 0, sizeof(a));
    memset(b, 0, sizeof(b));
    assert_int_equal(kccl_random_bytes(a, sizeof(a)), KCCL_OK);
    assert_int_equal(kccl_random_bytes(b, sizeof(b)), KCCL_OK);
    assert_memory_not_equal(a, b, sizeof(a));
    assert_memory_not_equal(a, zero, sizeof(a));
    assert_int_equal(kccl_random_bytes(a, 0), KCCL_OK);
    /* A large request is filled completely (getrandom may return short). */
    static uint8_t big[1 << 20];
    assert_int_equal(kccl_random_bytes(big, sizeof(big)), KCCL_OK);
    size_t zeros = 0;
    for (size_t i = 0; i < sizeof(big); i++)
        zeros += big[i] == 0;
    assert_in_range(zeros, 3000, 5300); /* ~4096 expected */
    size_t tail_zeros = 0;
    for (size_t i = sizeof(big) - 64; i < sizeof(big); i++)
        tail_zeros += big[i] == 0;
    assert_true(tail_zeros < 8);
}

static int quiet_log(void **state)
{
    setenv("KCCL_LOG_LEVEL", "none", 1);
    return make_secret_dir(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hmac_rfc4231),
        cmocka_unit_test(test_hmac_full_key_with_label),
        cmocka_unit_test(test_hmac_keyed_state),
        cmocka_unit_test(test_hmac_transcript_sizes),
        cmocka_unit_test(test_auth_equal),
        cmocka_unit_test(test_secret_parse_raw),
        cmocka_unit_test(test_secret_parse_hex),
        cmocka_unit_test(test_secret_parse_bad),
        cmocka_unit_test(test_secret_parse_failure_leaves_output),
        cmocka_unit_test(test_secret_load_file),
        cmocka_unit_test(test_secret_load_file_errors),
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_random_bytes),
    };
    return cmocka_run_group_tests(tests, quiet_log, NULL);
}
