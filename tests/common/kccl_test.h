/*
 * kccl_test.h - small helpers shared by the CMocka unit tests: the CMocka
 * include preamble, temporary files, reading files back, hex decoding.
 *
 * Everything is static inline so a test is one .c file plus this header.
 * Helpers fail the current test (CMocka fail_msg) rather than return errors,
 * so callers need no checks of their own. Temporary files go under $TMPDIR
 * (CTest gives each test a private one, see tests/CMakeLists.txt).
 */
#ifndef KCCL_TEST_H
#define KCCL_TEST_H

/* cmocka.h needs these first; keep clang-format's include sorting away. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KCCL_TEST_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Makes a fresh directory under $TMPDIR (or /tmp); path must hold 256 bytes. */
static inline void kccl_test_mkdtemp(char path[256])
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || *base == '\0')
        base = "/tmp";
    int n = snprintf(path, 256, "%s/kccl-test-XXXXXX", base);
    if (n < 0 || n >= 256)
        fail_msg("TMPDIR is too long: %s", base);
    if (mkdtemp(path) == NULL)
        fail_msg("mkdtemp(%s): %s", path, strerror(errno));
}

/* Writes len bytes to path with the given mode (created or truncated). */
static inline void kccl_test_write_file(const char *path, const void *data, size_t len, int mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        fail_msg("open(%s): %s", path, strerror(errno));
    if (fchmod(fd, (mode_t)mode) != 0)
        fail_msg("fchmod(%s): %s", path, strerror(errno));
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w <= 0)
            fail_msg("write(%s): %s", path, strerror(errno));
        p += w;
        len -= (size_t)w;
    }
    close(fd);
}

/* Reads a whole file into a NUL-terminated malloc'ed buffer; "" if missing. */
static inline char *kccl_test_read_file(const char *path)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        for (;;) {
            if (cap - len < 2) {
                char *bigger = realloc(buf, cap * 2);
                assert_non_null(bigger);
                buf = bigger;
                cap *= 2;
            }
            ssize_t r = read(fd, buf + len, cap - len - 1);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            len += (size_t)r;
        }
        close(fd);
    }
    buf[len] = '\0';
    return buf;
}

/* Number of non-overlapping occurrences of needle in haystack. */
static inline int kccl_test_count(const char *haystack, const char *needle)
{
    int n = 0;
    size_t nl = strlen(needle);
    for (const char *p = strstr(haystack, needle); p; p = strstr(p + nl, needle))
        n++;
    return n;
}

static inline int kccl_test_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes a hex string (no separators) into out; returns the byte count. */
static inline size_t kccl_test_unhex(const char *hex, uint8_t *out, size_t outlen)
{
    size_t n = strlen(hex);
    if (n % 2 != 0 || n / 2 > outlen)
        fail_msg("bad hex test vector: %s", hex);
    for (size_t i = 0; i < n / 2; i++) {
        int hi = kccl_test_hexval(hex[2 * i]), lo = kccl_test_hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            fail_msg("bad hex test vector: %s", hex);
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return n / 2;
}

#endif
