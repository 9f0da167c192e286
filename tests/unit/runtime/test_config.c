/*
 * test_config.c - runtime/core/config.c: the pure parsers, the typed readers
 * over the environment (defaults, overrides, errors that name the variable)
 * and the invariants of the KCCL_CONFIG_MAP table itself.
 */
#include <limits.h>

#include "core/config.h"
#include "core/error.h"
#include "kccl_test.h"

static void test_parse_int_good(void **state)
{
    long v = 0;
    assert_int_equal(kccl_parse_int("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(kccl_parse_int("42", &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(kccl_parse_int("-1", &v), 0);
    assert_int_equal(v, -1);
    assert_int_equal(kccl_parse_int("+7", &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(kccl_parse_int("007", &v), 0); /* decimal, not octal */
    assert_int_equal(v, 7);
    /* Surrounding whitespace as left by shells and files. */
    assert_int_equal(kccl_parse_int(" 12", &v), 0);
    assert_int_equal(v, 12);
    assert_int_equal(kccl_parse_int("12\n", &v), 0);
    assert_int_equal(v, 12);
    assert_int_equal(kccl_parse_int("13 \t", &v), 0);
    assert_int_equal(v, 13);
    char buf[32];
    snprintf(buf, sizeof(buf), "%ld", LONG_MAX);
    assert_int_equal(kccl_parse_int(buf, &v), 0);
    assert_true(v == LONG_MAX);
    snprintf(buf, sizeof(buf), "%ld", LONG_MIN);
    assert_int_equal(kccl_parse_int(buf, &v), 0);
    assert_true(v == LONG_MIN);
}

static void test_parse_int_bad(void **state)
{
    const char *bad[] = {"",    "abc",  "12abc", "1.5",      "0x10",
                         "- 1", "1 2",  "1e3",   "-",        "+",
                         "--1", "12,3", "1\x01", "\xd9\xa3", "99999999999999999999999"};
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(bad); i++) {
        long v = 12345;
        if (kccl_parse_int(bad[i], &v) != -1)
            fail_msg("kccl_parse_int accepted '%s'", bad[i]);
        assert_int_equal(v, 12345); /* untouched on failure */
    }
    long v = 12345;
    assert_int_equal(kccl_parse_int(NULL, &v), -1);
    assert_int_equal(v, 12345);
}

/* Whitespace alone holds no number: it must not read as 0 (KCCL_RANK=" "
 * would otherwise silently become rank 0). */
static void test_parse_int_blank(void **state)
{
    const char *blank[] = {" ", "\n", " \t "};
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(blank); i++) {
        long v = 12345;
        if (kccl_parse_int(blank[i], &v) != -1)
            fail_msg("kccl_parse_int accepted blank text '%s' as %ld", blank[i], v);
    }
}

static void test_parse_bool(void **state)
{
    const char *yes[] = {"1", "true", "TRUE", "yes", "Yes", "on", "ON"};
    const char *no[] = {"0", "false", "False", "no", "NO", "off", "Off"};
    const char *bad[] = {"", "2", "y", "n", "tru", "truee", " 1", "1 ", "enable", "-1"};
    int v;
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(yes); i++) {
        v = -1;
        assert_int_equal(kccl_parse_bool(yes[i], &v), 0);
        assert_int_equal(v, 1);
    }
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(no); i++) {
        v = -1;
        assert_int_equal(kccl_parse_bool(no[i], &v), 0);
        assert_int_equal(v, 0);
    }
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(bad); i++) {
        v = -1;
        if (kccl_parse_bool(bad[i], &v) != -1)
            fail_msg("kccl_parse_bool accepted '%s'", bad[i]);
        assert_int_equal(v, -1);
    }
    assert_int_equal(kccl_parse_bool(NULL, &v), -1);
}

static void test_parse_seconds(void **state)
{
    int64_t ms = 0;
    assert_int_equal(kccl_parse_seconds_ms("30", &ms), 0);
    assert_true(ms == 30000);
    assert_int_equal(kccl_parse_seconds_ms("0.25", &ms), 0);
    assert_true(ms == 250);
    assert_int_equal(kccl_parse_seconds_ms("1.5s", &ms), 0);
    assert_true(ms == 1500);
    assert_int_equal(kccl_parse_seconds_ms("0.0015", &ms), 0);
    assert_true(ms == 2); /* rounded to the nearest millisecond */
    /* A positive time never rounds down to "no time at all". */
    assert_int_equal(kccl_parse_seconds_ms("0.0001", &ms), 0);
    assert_true(ms == 1);
    assert_int_equal(kccl_parse_seconds_ms("1e9", &ms), 0);
    assert_true(ms == (int64_t)1000000000 * 1000);
    assert_int_equal(kccl_parse_seconds_ms("3600", &ms), 0);
    assert_true(ms == 3600000);
}

static void test_parse_seconds_bad(void **state)
{
    const char *bad[] = {"",    "0",   "0.0",  "-1",  "-0.5", "abc",   "s",   "5ms", "5m",
                         "5ss", "inf", "-inf", "nan", "1e10", "1e999", "1,5", "5 s", "5 "};
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(bad); i++) {
        int64_t ms = 777;
        if (kccl_parse_seconds_ms(bad[i], &ms) != -1)
            fail_msg("kccl_parse_seconds_ms accepted '%s' as %lld ms", bad[i], (long long)ms);
        assert_true(ms == 777);
    }
    int64_t ms = 777;
    assert_int_equal(kccl_parse_seconds_ms(NULL, &ms), -1);
}

/* ---- the table ---- */

static void test_table_rows(void **state)
{
    for (int id = 0; id < KCCL_CFG_COUNT; id++) {
        const kccl_cfg_entry_t *e = kccl_config_entry((kccl_cfg_id_t)id);
        assert_non_null(e);
        assert_non_null(e->env);
        assert_memory_equal(e->env, "KCCL_", 5);
        assert_true(strlen(e->env) > 5);
        for (const char *c = e->env; *c; c++)
            assert_true((*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_');
        assert_non_null(e->help);
        assert_true(strlen(e->help) > 10);
        assert_non_null(e->def);
        long l;
        int b;
        int64_t ms;
        switch (e->type) {
        case KCCL_CFG_TYPE_STR: break;
        case KCCL_CFG_TYPE_INT:
            if (kccl_parse_int(e->def, &l) != 0)
                fail_msg("%s: default '%s' is not an integer", e->env, e->def);
            break;
        case KCCL_CFG_TYPE_BOOL:
            if (kccl_parse_bool(e->def, &b) != 0)
                fail_msg("%s: default '%s' is not a boolean", e->env, e->def);
            break;
        case KCCL_CFG_TYPE_SECONDS:
            if (kccl_parse_seconds_ms(e->def, &ms) != 0)
                fail_msg("%s: default '%s' is not a number of seconds", e->env, e->def);
            break;
        default: fail_msg("%s: unknown type %d", e->env, (int)e->type);
        }
        /* Names are unique. */
        for (int j = 0; j < id; j++)
            assert_string_not_equal(e->env, kccl_config_entry((kccl_cfg_id_t)j)->env);
    }
    assert_null(kccl_config_entry(KCCL_CFG_COUNT));
    assert_null(kccl_config_entry((kccl_cfg_id_t)-1));
    /* Secret-bearing variables are flagged. */
    assert_true(kccl_config_entry(KCCL_CFG_GROUP_SECRET)->flags & KCCL_CFG_SECRET);
    assert_false(kccl_config_entry(KCCL_CFG_GROUP_SECRET_FILE)->flags & KCCL_CFG_SECRET);
    assert_string_equal(kccl_config_entry(KCCL_CFG_BOOTSTRAP_TIMEOUT)->env,
                        "KCCL_BOOTSTRAP_TIMEOUT");
}

/* ---- readers over the environment ---- */

static void test_str_default_and_override(void **state)
{
    unsetenv("KCCL_BOOTSTRAP_ALGO");
    assert_false(kccl_config_is_set(KCCL_CFG_BOOTSTRAP_ALGO));
    assert_string_equal(kccl_config_str(KCCL_CFG_BOOTSTRAP_ALGO), "auto");
    setenv("KCCL_BOOTSTRAP_ALGO", "ring", 1);
    assert_true(kccl_config_is_set(KCCL_CFG_BOOTSTRAP_ALGO));
    assert_string_equal(kccl_config_str(KCCL_CFG_BOOTSTRAP_ALGO), "ring");
    /* Set but empty counts as unset. */
    setenv("KCCL_BOOTSTRAP_ALGO", "", 1);
    assert_false(kccl_config_is_set(KCCL_CFG_BOOTSTRAP_ALGO));
    assert_string_equal(kccl_config_str(KCCL_CFG_BOOTSTRAP_ALGO), "auto");
    unsetenv("KCCL_BOOTSTRAP_ALGO");
}

static void test_int_reader(void **state)
{
    long v = 0;
    unsetenv("KCCL_BOOTSTRAP_RING_MAX");
    assert_int_equal(kccl_config_int(KCCL_CFG_BOOTSTRAP_RING_MAX, &v), KCCL_OK);
    assert_int_equal(v, 4);
    unsetenv("KCCL_RANK");
    assert_int_equal(kccl_config_int(KCCL_CFG_RANK, &v), KCCL_OK);
    assert_int_equal(v, -1);
    setenv("KCCL_RANK", "17", 1);
    assert_int_equal(kccl_config_int(KCCL_CFG_RANK, &v), KCCL_OK);
    assert_int_equal(v, 17);
    unsetenv("KCCL_RANK");
}

static void test_int_reader_error(void **state)
{
    long v = 99;
    kccl_error_clear();
    setenv("KCCL_WORLD_SIZE", "four", 1);
    assert_int_equal(kccl_config_int(KCCL_CFG_WORLD_SIZE, &v), KCCL_ERR_CONFIG);
    assert_int_equal(v, 99);
    assert_non_null(strstr(kccl_last_error(), "KCCL_WORLD_SIZE"));
    assert_non_null(strstr(kccl_last_error(), "four"));
    unsetenv("KCCL_WORLD_SIZE");
}

static void test_bool_reader(void **state)
{
    int v = -1;
    unsetenv("KCCL_BOOTSTRAP_INSECURE");
    assert_int_equal(kccl_config_bool(KCCL_CFG_BOOTSTRAP_INSECURE, &v), KCCL_OK);
    assert_int_equal(v, 0);
    setenv("KCCL_BOOTSTRAP_INSECURE", "yes", 1);
    assert_int_equal(kccl_config_bool(KCCL_CFG_BOOTSTRAP_INSECURE, &v), KCCL_OK);
    assert_int_equal(v, 1);
    kccl_error_clear();
    v = -1;
    setenv("KCCL_BOOTSTRAP_INSECURE", "maybe", 1);
    assert_int_equal(kccl_config_bool(KCCL_CFG_BOOTSTRAP_INSECURE, &v), KCCL_ERR_CONFIG);
    assert_int_equal(v, -1);
    assert_non_null(strstr(kccl_last_error(), "KCCL_BOOTSTRAP_INSECURE"));
    unsetenv("KCCL_BOOTSTRAP_INSECURE");
}

static void test_millis_reader(void **state)
{
    int64_t ms = 0;
    unsetenv("KCCL_BOOTSTRAP_TIMEOUT");
    assert_int_equal(kccl_config_millis(KCCL_CFG_BOOTSTRAP_TIMEOUT, &ms), KCCL_OK);
    assert_true(ms == 30000);
    setenv("KCCL_BOOTSTRAP_TIMEOUT", "2.5", 1);
    assert_int_equal(kccl_config_millis(KCCL_CFG_BOOTSTRAP_TIMEOUT, &ms), KCCL_OK);
    assert_true(ms == 2500);
    kccl_error_clear();
    ms = 1;
    setenv("KCCL_BOOTSTRAP_TIMEOUT", "-3", 1);
    assert_int_equal(kccl_config_millis(KCCL_CFG_BOOTSTRAP_TIMEOUT, &ms), KCCL_ERR_CONFIG);
    assert_true(ms == 1);
    assert_non_null(strstr(kccl_last_error(), "KCCL_BOOTSTRAP_TIMEOUT"));
    unsetenv("KCCL_BOOTSTRAP_TIMEOUT");
}

static int quiet_log(void **state)
{
    /* Reader errors are also logged; keep the test output readable. */
    setenv("KCCL_LOG_LEVEL", "none", 1);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_int_good),  cmocka_unit_test(test_parse_int_bad),
        cmocka_unit_test(test_parse_int_blank), cmocka_unit_test(test_parse_bool),
        cmocka_unit_test(test_parse_seconds),   cmocka_unit_test(test_parse_seconds_bad),
        cmocka_unit_test(test_table_rows),      cmocka_unit_test(test_str_default_and_override),
        cmocka_unit_test(test_int_reader),      cmocka_unit_test(test_int_reader_error),
        cmocka_unit_test(test_bool_reader),     cmocka_unit_test(test_millis_reader),
    };
    return cmocka_run_group_tests(tests, quiet_log, NULL);
}
