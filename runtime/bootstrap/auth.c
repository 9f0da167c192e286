/*
 * auth.c - HMAC-SHA256 through OpenSSL's libcrypto, nonces from getrandom(),
 * group-secret parsing, and a small CRC-32C for unique-id integrity.
 */
#include "bootstrap/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

kccl_status_t kccl_random_bytes(void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            KCCL_FAIL(BOOT, KCCL_ERR_SYSTEM, "getrandom failed: %s", strerror(errno));
        }
        p += n;
        len -= (size_t)n;
    }
    return KCCL_OK;
}

kccl_status_t kccl_hmac_key_init(kccl_hmac_key_t *k, const uint8_t key[KCCL_GROUP_SECRET_BYTES])
{
    uint8_t ipad[64], opad[64];
    EVP_MD_CTX *in = EVP_MD_CTX_new(), *out = EVP_MD_CTX_new();
    k->inner = k->outer = NULL;
    /* HMAC (RFC 2104) with a 32-byte key, shorter than SHA-256's 64-byte block. */
    memset(ipad, 0x36, sizeof(ipad));
    memset(opad, 0x5c, sizeof(opad));
    for (int i = 0; i < KCCL_GROUP_SECRET_BYTES; i++) {
        ipad[i] ^= key[i];
        opad[i] ^= key[i];
    }
    int ok = in && out && EVP_DigestInit_ex(in, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(in, ipad, sizeof(ipad)) &&
             EVP_DigestInit_ex(out, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(out, opad, sizeof(opad));
    OPENSSL_cleanse(ipad, sizeof(ipad));
    OPENSSL_cleanse(opad, sizeof(opad));
    if (!ok) {
        EVP_MD_CTX_free(in);
        EVP_MD_CTX_free(out);
        KCCL_FAIL(BOOT, KCCL_ERR_SYSTEM, "libcrypto could not set up HMAC-SHA256");
    }
    k->inner = in;
    k->outer = out;
    return KCCL_OK;
}

void kccl_hmac_key_fini(kccl_hmac_key_t *k)
{
    EVP_MD_CTX_free(k->inner);
    EVP_MD_CTX_free(k->outer);
    k->inner = k->outer = NULL;
}

void kccl_hmac(const kccl_hmac_key_t *k, const char *label, const uint8_t *a, size_t alen,
               const uint8_t *b, size_t blen, const uint8_t *c, size_t clen,
               uint8_t out[KCCL_MAC_BYTES])
{
    uint8_t ih[32];
    unsigned int n = 0;
    EVP_MD_CTX *t = EVP_MD_CTX_new();
    int ok = t && EVP_MD_CTX_copy_ex(t, k->inner) && EVP_DigestUpdate(t, label, strlen(label)) &&
             (!alen || EVP_DigestUpdate(t, a, alen)) && (!blen || EVP_DigestUpdate(t, b, blen)) &&
             (!clen || EVP_DigestUpdate(t, c, clen)) && EVP_DigestFinal_ex(t, ih, &n) &&
             EVP_MD_CTX_copy_ex(t, k->outer) && EVP_DigestUpdate(t, ih, sizeof(ih)) &&
             EVP_DigestFinal_ex(t, out, &n);
    EVP_MD_CTX_free(t);
    if (!ok) /* a MAC of zeros never verifies against a real one: fails closed */
        memset(out, 0, KCCL_MAC_BYTES);
}

void kccl_auth_mac(const uint8_t key[KCCL_GROUP_SECRET_BYTES], const char *label, const uint8_t *a,
                   size_t alen, const uint8_t *b, size_t blen, const uint8_t *c, size_t clen,
                   uint8_t out[KCCL_MAC_BYTES])
{
    kccl_hmac_key_t k;
    if (kccl_hmac_key_init(&k, key) != KCCL_OK) {
        memset(out, 0, KCCL_MAC_BYTES);
        return;
    }
    kccl_hmac(&k, label, a, alen, b, blen, c, clen, out);
    kccl_hmac_key_fini(&k);
}

int kccl_auth_equal(const uint8_t *x, const uint8_t *y, size_t len)
{
    return CRYPTO_memcmp(x, y, len) == 0;
}

static int hexval(uint8_t ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

int kccl_secret_parse(const uint8_t *data, size_t len, uint8_t out[KCCL_GROUP_SECRET_BYTES])
{
    if (len == KCCL_GROUP_SECRET_BYTES) {
        memcpy(out, data, KCCL_GROUP_SECRET_BYTES);
        return 0;
    }
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        len--;
    if (len != 2 * KCCL_GROUP_SECRET_BYTES)
        return -1;
    uint8_t tmp[KCCL_GROUP_SECRET_BYTES];
    for (size_t i = 0; i < KCCL_GROUP_SECRET_BYTES; i++) {
        int hi = hexval(data[2 * i]), lo = hexval(data[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            OPENSSL_cleanse(tmp, sizeof(tmp));
            return -1; /* out is written only on success */
        }
        tmp[i] = (uint8_t)(hi << 4 | lo);
    }
    memcpy(out, tmp, sizeof(tmp));
    OPENSSL_cleanse(tmp, sizeof(tmp));
    return 0;
}

kccl_status_t kccl_secret_load_file(const char *path, uint8_t out[KCCL_GROUP_SECRET_BYTES])
{
    uint8_t buf[2 * KCCL_GROUP_SECRET_BYTES + 4];
    struct stat stbuf;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        KCCL_FAIL(BOOT, KCCL_ERR_CONFIG,
                  "cannot open the group secret file %s: %s; check KCCL_GROUP_SECRET_FILE and the "
                  "secret volume mount",
                  path, strerror(errno));
    if (fstat(fd, &stbuf) == 0 && (stbuf.st_mode & 0004))
        kccl_log_warn(BOOT, "group secret file %s is world-readable; make it 0600 or 0400", path);
    ssize_t total = 0;
    for (;;) {
        ssize_t n = read(fd, buf + total, sizeof(buf) - (size_t)total);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        total += n;
        if ((size_t)total == sizeof(buf))
            break;
    }
    close(fd);
    int ok =
        total > 0 && (size_t)total < sizeof(buf) && kccl_secret_parse(buf, (size_t)total, out) == 0;
    OPENSSL_cleanse(buf, sizeof(buf));
    if (!ok)
        KCCL_FAIL(BOOT, KCCL_ERR_CONFIG,
                  "group secret file %s must hold exactly 32 raw bytes or 64 hex digits", path);
    return KCCL_OK;
}

uint32_t kccl_crc32c(const uint8_t *data, size_t len)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) {
        crc ^= data[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return ~crc;
}
