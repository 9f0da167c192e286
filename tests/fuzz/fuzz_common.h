/*
 * fuzz_common.h - shared by the libFuzzer targets in tests/fuzz.
 *
 * Every target defines LLVMFuzzerTestOneInput() and checks properties, not
 * just "no crash": a decoder that accepts an input must re-encode it to the
 * same bytes (or to bytes that decode to the same values), and so on.
 * FUZZ_CHECK turns a broken property into a crash libFuzzer records.
 * Logging is switched off: deliberate parse failures would each log a line.
 */
#ifndef KCCL_FUZZ_COMMON_H
#define KCCL_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond);            \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("KCCL_LOG_LEVEL", "none", 1);
    return 0;
}

#endif
