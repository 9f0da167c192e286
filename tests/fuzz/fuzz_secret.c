/*
 * fuzz_secret - kccl_secret_parse() on arbitrary bytes, as read from a
 * secret file or KCCL_GROUP_SECRET. Properties: only 32 raw bytes or 64 hex
 * digits (plus trailing CR/LF) are accepted, and what is accepted decodes
 * to exactly those bytes.
 */
#include <string.h>

#include "bootstrap/auth.h"
#include "fuzz_common.h"

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t out[KCCL_GROUP_SECRET_BYTES];
    if (kccl_secret_parse(data, size, out) != 0)
        return 0;
    if (size == KCCL_GROUP_SECRET_BYTES) {
        FUZZ_CHECK(memcmp(out, data, KCCL_GROUP_SECRET_BYTES) == 0);
        return 0;
    }
    FUZZ_CHECK(size >= 2 * KCCL_GROUP_SECRET_BYTES);
    for (size_t i = 2 * KCCL_GROUP_SECRET_BYTES; i < size; i++)
        FUZZ_CHECK(data[i] == '\n' || data[i] == '\r');
    for (size_t i = 0; i < KCCL_GROUP_SECRET_BYTES; i++) {
        int hi = hexval(data[2 * i]), lo = hexval(data[2 * i + 1]);
        FUZZ_CHECK(hi >= 0 && lo >= 0);
        FUZZ_CHECK(out[i] == (uint8_t)(hi << 4 | lo));
    }
    return 0;
}
