/*
 * fuzz_podinfo.c - libFuzzer target for the parser of downward-API annotations
 * and labels files (sc_podinfo_parse, Go %q values) and for what reads the
 * result (sc_spec_from_meta). Properties: no crash or leak; an accepted file
 * yields an object of strings whose keys hold only key characters; writing the
 * object back in the kubelet's format and parsing it again gives the same
 * object (the parser and the format agree).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sc.h"

/* Go's %q for what the parser can produce: printable ASCII raw, the rest escaped. */
static size_t quote(const char *s, char *out)
{
    size_t n = 0;
    out[n++] = '"';
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)*c;
        } else if (*c < 0x20 || *c >= 0x7f) {
            n += (size_t)sprintf(out + n, "\\x%02x", *c);
        } else {
            out[n++] = (char)*c;
        }
    }
    out[n++] = '"';
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *obj = NULL, *again = NULL;
    char why[160];
    if (sc_podinfo_parse((const char *)data, size, &obj, why, sizeof(why)) != KCCL_OK)
        return 0;
    size_t cap = 16 + size * 4 + 8 * (size_t)cJSON_GetArraySize(obj), n = 0;
    char *text = malloc(cap);
    const cJSON *it;
    cJSON_ArrayForEach(it, obj)
    {
        if (!cJSON_IsString(it) ||
            strspn(it->string, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"
                               "OPQRSTUVWXYZ0123456789-_./") != strlen(it->string))
            abort();
        n += (size_t)sprintf(text + n, "%s%s=", n ? "\n" : "", it->string);
        n += quote(it->valuestring, text + n);
    }
    if (sc_podinfo_parse(text, n, &again, why, sizeof(why)) != KCCL_OK ||
        !cJSON_Compare(obj, again, 1))
        abort();
    sc_spec_t spec;
    sc_problem_t pb;
    (void)sc_spec_from_meta(obj, obj, &spec, &pb);
    cJSON_Delete(again);
    cJSON_Delete(obj);
    free(text);
    return 0;
}
