/*
 * fuzz_uniqueid_text - kccl_unique_id_from_string() on arbitrary text, and
 * the base64url decoder under it. Properties: an accepted text is canonical
 * (re-encoding the id gives the same text back) and its id decodes; any
 * base64url the decoder accepts re-encodes to the same characters.
 */
#include <string.h>

#include "bootstrap/uniqueid.h"
#include "fuzz_common.h"

#define MAX_TEXT 1024

static void check_b64url(const char *text, size_t len)
{
    uint8_t bin[MAX_TEXT];
    char back[MAX_TEXT + 8];
    long n = kccl_b64url_decode(text, len, bin, sizeof(bin));
    if (n < 0)
        return;
    FUZZ_CHECK((size_t)n <= len);
    size_t m = kccl_b64url_encode(bin, (size_t)n, back, sizeof(back));
    FUZZ_CHECK(m == len);
    FUZZ_CHECK(memcmp(back, text, len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[MAX_TEXT + 1];
    kccl_unique_id_t id;
    if (size > MAX_TEXT)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    if (kccl_unique_id_from_string(text, &id) == KCCL_OK) {
        char back[KCCL_UNIQUE_ID_STRLEN + 1];
        char addr[64];
        kccl_uid_fields_t f;
        const char *why = NULL;
        FUZZ_CHECK(strlen(text) == KCCL_UNIQUE_ID_STRLEN);
        FUZZ_CHECK(kccl_unique_id_to_string(&id, back, sizeof(back)) == KCCL_OK);
        FUZZ_CHECK(strcmp(back, text) == 0);
        FUZZ_CHECK(kccl_uid_decode(&id, &f, &why) == KCCL_OK);
        FUZZ_CHECK(f.root.port != 0);
        FUZZ_CHECK(kccl_unique_id_address(&id, addr, sizeof(addr)) == KCCL_OK);
    }
    check_b64url(text, strlen(text));
    return 0;
}
