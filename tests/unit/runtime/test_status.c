/*
 * test_status.c - runtime/core/status.c: the status table (names, strings,
 * values that are part of the ABI), unknown codes, and the thread-local
 * last-error message.
 */
#include <pthread.h>

#include "core/error.h"
#include "kccl/kccl_status.h"
#include "kccl/kccl_version.h"
#include "kccl_test.h"

typedef struct {
    kccl_status_t code;
    const char *name;
} status_row_t;

static const status_row_t all_codes[] = {
#define ROW_(name, value, desc) {KCCL_##name, "KCCL_" #name},
    KCCL_STATUS_MAP(ROW_)
#undef ROW_
};

static void test_every_code_named(void **state)
{
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(all_codes); i++) {
        const char *name = kccl_status_name(all_codes[i].code);
        const char *str = kccl_status_str(all_codes[i].code);
        assert_string_equal(name, all_codes[i].name);
        assert_non_null(str);
        assert_true(strlen(str) > 0);
        assert_string_not_equal(str, "unknown status");
        for (size_t j = 0; j < i; j++) {
            assert_int_not_equal(all_codes[i].code, all_codes[j].code);
            assert_string_not_equal(name, kccl_status_name(all_codes[j].code));
            assert_string_not_equal(str, kccl_status_str(all_codes[j].code));
        }
    }
}

static void test_abi_values(void **state)
{
    /* Values are ABI: these must never change. */
    assert_int_equal(KCCL_OK, 0);
    assert_int_equal(KCCL_INPROGRESS, 1);
    assert_int_equal(KCCL_ERR_INVALID_ARG, -1);
    assert_int_equal(KCCL_ERR_NO_MEMORY, -2);
    assert_int_equal(KCCL_ERR_TIMED_OUT, -3);
    assert_int_equal(KCCL_ERR_REMOTE, -4);
    assert_int_equal(KCCL_ERR_PROTOCOL, -5);
    assert_int_equal(KCCL_ERR_AUTH, -6);
    assert_int_equal(KCCL_ERR_SYSTEM, -7);
    assert_int_equal(KCCL_ERR_CUDA, -8);
    assert_int_equal(KCCL_ERR_IB, -9);
    assert_int_equal(KCCL_ERR_KUBE, -10);
    assert_int_equal(KCCL_ERR_UNSUPPORTED, -11);
    assert_int_equal(KCCL_ERR_ABORTED, -12);
    assert_int_equal(KCCL_ERR_ADDR_IN_USE, -13);
    assert_int_equal(KCCL_ERR_NOT_FOUND, -14);
    assert_int_equal(KCCL_ERR_CONFIG, -15);
    /* Every code but OK and INPROGRESS is an error, i.e. negative. */
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(all_codes); i++) {
        kccl_status_t c = all_codes[i].code;
        if (c == KCCL_OK || c == KCCL_INPROGRESS)
            continue;
        assert_true(c < 0);
        assert_memory_equal(all_codes[i].name, "KCCL_ERR_", 9);
    }
    assert_string_equal(kccl_status_str(KCCL_OK), "success");
    assert_string_equal(kccl_status_str(KCCL_ERR_TIMED_OUT), "timed out");
}

static void test_unknown_codes(void **state)
{
    const int unknown[] = {2, 100, -16, -1000, 0x7fffffff, -0x7fffffff};
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(unknown); i++) {
        assert_string_equal(kccl_status_str((kccl_status_t)unknown[i]), "unknown status");
        assert_string_equal(kccl_status_name((kccl_status_t)unknown[i]), "KCCL_UNKNOWN");
    }
}

static void test_version(void **state)
{
    assert_int_equal(kccl_version(), KCCL_VERSION_CODE);
    assert_int_equal(KCCL_VERSION_CODE,
                     KCCL_VERSION_MAJOR * 10000 + KCCL_VERSION_MINOR * 100 + KCCL_VERSION_PATCH);
}

static void test_last_error_set_clear(void **state)
{
    kccl_error_clear();
    assert_string_equal(kccl_last_error(), "no error");
    kccl_error_set("rank %d: %s", 3, "lost peer");
    assert_string_equal(kccl_last_error(), "rank 3: lost peer");
    kccl_error_set("second");
    assert_string_equal(kccl_last_error(), "second");
    kccl_error_clear();
    assert_string_equal(kccl_last_error(), "no error");
}

static void test_last_error_truncates(void **state)
{
    char big[2048];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    kccl_error_set("%s", big);
    const char *msg = kccl_last_error();
    size_t n = strlen(msg);
    assert_true(n > 100 && n < sizeof(big) - 1);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(msg[i], 'x');
    kccl_error_clear();
}

static void *other_thread(void *arg)
{
    char *seen = arg;
    /* The main thread's message must not be visible here. */
    snprintf(seen, 64, "%s", kccl_last_error());
    kccl_error_set("from the other thread");
    return NULL;
}

static void test_last_error_thread_local(void **state)
{
    char seen[64] = "";
    pthread_t t;
    kccl_error_set("from main");
    assert_int_equal(pthread_create(&t, NULL, other_thread, seen), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_string_equal(seen, "no error");
    assert_string_equal(kccl_last_error(), "from main");
    kccl_error_clear();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_code_named),        cmocka_unit_test(test_abi_values),
        cmocka_unit_test(test_unknown_codes),           cmocka_unit_test(test_version),
        cmocka_unit_test(test_last_error_set_clear),    cmocka_unit_test(test_last_error_truncates),
        cmocka_unit_test(test_last_error_thread_local),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
