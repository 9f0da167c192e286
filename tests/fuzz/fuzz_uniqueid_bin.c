/*
 * fuzz_uniqueid_bin - kccl_uid_decode() on 128 arbitrary bytes (shorter
 * inputs are zero-padded, longer ones cut). Properties: an accepted id is
 * canonical (encoding the decoded fields gives the same 128 bytes) and its
 * text form parses back to the same bytes.
 */
#include <string.h>

#include "bootstrap/uniqueid.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kccl_unique_id_t id, again, parsed;
    kccl_uid_fields_t f;
    const char *why = NULL;
    memset(&id, 0, sizeof(id));
    memcpy(id.internal, data, size < KCCL_UNIQUE_ID_BYTES ? size : KCCL_UNIQUE_ID_BYTES);

    if (kccl_uid_decode(&id, &f, &why) != KCCL_OK) {
        FUZZ_CHECK(why != NULL);
        return 0;
    }
    kccl_uid_encode(&f, &again);
    FUZZ_CHECK(memcmp(again.internal, id.internal, KCCL_UNIQUE_ID_BYTES) == 0);

    char text[KCCL_UNIQUE_ID_STRLEN + 1];
    FUZZ_CHECK(kccl_unique_id_to_string(&id, text, sizeof(text)) == KCCL_OK);
    FUZZ_CHECK(kccl_unique_id_from_string(text, &parsed) == KCCL_OK);
    FUZZ_CHECK(memcmp(parsed.internal, id.internal, KCCL_UNIQUE_ID_BYTES) == 0);
    return 0;
}
