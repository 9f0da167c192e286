/*
 * test_log.c - runtime/core/log.c: level and subsystem parsing, log-file
 * pattern expansion, and real filtering end to end (environment ->
 * kccl_log_reinit() -> messages -> the log file read back).
 *
 * The logger is process-global, so every filtering test sets the whole
 * KCCL_LOG_* environment, re-initialises, and points KCCL_LOG_FILE at a
 * file of its own.
 */
#include "core/log.h"
#include "kccl_test.h"

static void test_parse_level_names(void **state)
{
    assert_int_equal(kccl_log_parse_level("none"), KCCL_LOG_NONE);
    assert_int_equal(kccl_log_parse_level("error"), KCCL_LOG_ERROR);
    assert_int_equal(kccl_log_parse_level("warn"), KCCL_LOG_WARN);
    assert_int_equal(kccl_log_parse_level("info"), KCCL_LOG_INFO);
    assert_int_equal(kccl_log_parse_level("debug"), KCCL_LOG_DEBUG);
    assert_int_equal(kccl_log_parse_level("trace"), KCCL_LOG_TRACE);
    /* Case does not matter. */
    assert_int_equal(kccl_log_parse_level("NONE"), KCCL_LOG_NONE);
    assert_int_equal(kccl_log_parse_level("Error"), KCCL_LOG_ERROR);
    assert_int_equal(kccl_log_parse_level("WARN"), KCCL_LOG_WARN);
    assert_int_equal(kccl_log_parse_level("iNfO"), KCCL_LOG_INFO);
    assert_int_equal(kccl_log_parse_level("TRACE"), KCCL_LOG_TRACE);
    /* What NCCL users type. */
    assert_int_equal(kccl_log_parse_level("VERSION"), KCCL_LOG_INFO);
    /* Unset means the default, warn. */
    assert_int_equal(kccl_log_parse_level(NULL), KCCL_LOG_WARN);
    assert_int_equal(kccl_log_parse_level(""), KCCL_LOG_WARN);
}

static void test_parse_level_bad(void **state)
{
    const char *bad[] = {"warning", "verbose", "3", " warn", "warn ", "info,debug", "errors"};
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(bad); i++)
        assert_int_equal(kccl_log_parse_level(bad[i]), -1);
}

static int count_enabled(const int enabled[KCCL_SUBSYS_COUNT])
{
    int n = 0;
    for (int i = 0; i < KCCL_SUBSYS_COUNT; i++)
        n += enabled[i] ? 1 : 0;
    return n;
}

static void test_parse_subsys_all(void **state)
{
    int en[KCCL_SUBSYS_COUNT];
    const char *all[] = {NULL, "", "ALL", "all", "BOOT,ALL"};
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(all); i++) {
        memset(en, 0, sizeof(en));
        assert_int_equal(kccl_log_parse_subsys(all[i], en), 0);
        assert_int_equal(count_enabled(en), KCCL_SUBSYS_COUNT);
    }
    assert_int_equal(kccl_log_parse_subsys("^ALL", en), 0);
    assert_int_equal(count_enabled(en), 0);
}

static void test_parse_subsys_list(void **state)
{
    int en[KCCL_SUBSYS_COUNT];
    assert_int_equal(kccl_log_parse_subsys("BOOT,NET", en), 0);
    assert_int_equal(count_enabled(en), 2);
    assert_true(en[KCCL_SUBSYS_BOOT] && en[KCCL_SUBSYS_NET]);
    assert_false(en[KCCL_SUBSYS_INIT]);

    /* Case-insensitive; empty items and a trailing comma are harmless. */
    assert_int_equal(kccl_log_parse_subsys("kube,,Coll,", en), 0);
    assert_int_equal(count_enabled(en), 2);
    assert_true(en[KCCL_SUBSYS_KUBE] && en[KCCL_SUBSYS_COLL]);

    /* Every subsystem name is accepted on its own. */
    const char *names[] = {"INIT", "BOOT", "NET", "IPC", "IB", "PROXY", "COLL", "KUBE", "TOOL"};
    assert_int_equal(KCCL_TEST_ARRAY_LEN(names), KCCL_SUBSYS_COUNT);
    for (int i = 0; i < KCCL_SUBSYS_COUNT; i++) {
        assert_int_equal(kccl_log_parse_subsys(names[i], en), 0);
        assert_int_equal(count_enabled(en), 1);
        assert_true(en[i]);
    }
}

static void test_parse_subsys_negation(void **state)
{
    int en[KCCL_SUBSYS_COUNT];
    assert_int_equal(kccl_log_parse_subsys("^BOOT", en), 0);
    assert_int_equal(count_enabled(en), KCCL_SUBSYS_COUNT - 1);
    assert_false(en[KCCL_SUBSYS_BOOT]);
    assert_true(en[KCCL_SUBSYS_NET]);

    assert_int_equal(kccl_log_parse_subsys("^NET,IB", en), 0);
    assert_int_equal(count_enabled(en), KCCL_SUBSYS_COUNT - 2);
    assert_false(en[KCCL_SUBSYS_NET]);
    assert_false(en[KCCL_SUBSYS_IB]);
    assert_true(en[KCCL_SUBSYS_INIT]);
}

static void test_parse_subsys_bad(void **state)
{
    int en[KCCL_SUBSYS_COUNT];
    const char *bad[] = {"BOGUS", "BOOT,BOGUS", "^NETT", "BOOT NET", "BOO", "BOOTS", "ALL2"};
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(bad); i++)
        assert_int_equal(kccl_log_parse_subsys(bad[i], en), -1);
}

static void test_expand_path(void **state)
{
    char out[512], host[64], expect[512];
    if (gethostname(host, sizeof(host)) != 0)
        strcpy(host, "unknown");
    host[sizeof(host) - 1] = '\0';

    assert_int_equal(kccl_log_expand_path("/tmp/plain.log", 3, out, sizeof(out)), 0);
    assert_string_equal(out, "/tmp/plain.log");

    assert_int_equal(kccl_log_expand_path("/l/%h.%p.%r.log", 7, out, sizeof(out)), 0);
    snprintf(expect, sizeof(expect), "/l/%s.%d.7.log", host, (int)getpid());
    assert_string_equal(out, expect);

    assert_int_equal(kccl_log_expand_path("%r", -1, out, sizeof(out)), 0);
    assert_string_equal(out, "-1");

    assert_int_equal(kccl_log_expand_path("100%%-%r", 12, out, sizeof(out)), 0);
    assert_string_equal(out, "100%-12");

    /* Unknown escapes and a lone trailing % stay as they are. */
    assert_int_equal(kccl_log_expand_path("a%xb%", 0, out, sizeof(out)), 0);
    assert_string_equal(out, "a%xb%");

    assert_int_equal(kccl_log_expand_path("", 0, out, sizeof(out)), 0);
    assert_string_equal(out, "");
}

static void test_expand_path_overflow(void **state)
{
    char out[8];
    /* Exactly fits: 7 characters and the NUL. */
    assert_int_equal(kccl_log_expand_path("abcdefg", 0, out, sizeof(out)), 0);
    assert_string_equal(out, "abcdefg");
    assert_int_equal(kccl_log_expand_path("abcdefgh", 0, out, sizeof(out)), -1);
    assert_int_equal(kccl_log_expand_path("r%r", 123456789, out, sizeof(out)), -1);
    assert_int_equal(kccl_log_expand_path("abc", 0, out, 3), -1);
    assert_int_equal(kccl_log_expand_path("abc", 0, out, 1), -1);

    char big[4096];
    memset(big, 'p', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char out2[4096];
    assert_int_equal(kccl_log_expand_path(big, 0, out2, sizeof(out2)), 0);
    big[sizeof(big) - 2] = '%';
    /* "%" then NUL: literal, still fits; "%p" at the end would not. */
    assert_int_equal(kccl_log_expand_path(big, 0, out2, sizeof(out2)), 0);
    big[sizeof(big) - 3] = '%';
    big[sizeof(big) - 2] = 'p';
    assert_int_equal(kccl_log_expand_path(big, 0, out2, sizeof(out2)), -1);
}

/* ---- filtering, end to end through a log file ---- */

static char log_dir[256];

static int setup_logdir(void **state)
{
    kccl_test_mkdtemp(log_dir);
    unsetenv("KCCL_RANK");
    kccl_log_set_rank(-1);
    return 0;
}

static int teardown_logdir(void **state)
{
    unsetenv("KCCL_LOG_LEVEL");
    unsetenv("KCCL_LOG_SUBSYS");
    unsetenv("KCCL_LOG_FILE");
    kccl_log_reinit(); /* back to stderr, closing our file */
    return 0;
}

/* Points the logger at a fresh file with the given filter; returns its path. */
static void configure(const char *name, const char *level, const char *subsys, char path[512])
{
    snprintf(path, 512, "%s/%s.log", log_dir, name);
    unlink(path);
    if (level)
        setenv("KCCL_LOG_LEVEL", level, 1);
    else
        unsetenv("KCCL_LOG_LEVEL");
    if (subsys)
        setenv("KCCL_LOG_SUBSYS", subsys, 1);
    else
        unsetenv("KCCL_LOG_SUBSYS");
    setenv("KCCL_LOG_FILE", path, 1);
    kccl_log_reinit();
}

/* Emits one message per (level, subsystem) pair used by the tests below. */
static void emit_all(void)
{
    kccl_log_error(BOOT, "m-boot-error");
    kccl_log_warn(BOOT, "m-boot-warn");
    kccl_log_info(BOOT, "m-boot-info");
    kccl_log_debug(BOOT, "m-boot-debug");
    kccl_log_trace(BOOT, "m-boot-trace");
    kccl_log_error(NET, "m-net-error");
    kccl_log_warn(NET, "m-net-warn");
    kccl_log_info(NET, "m-net-info");
    kccl_log_debug(NET, "m-net-debug");
}

static const char *const every_msg[] = {
    "m-boot-error", "m-boot-warn", "m-boot-info", "m-boot-debug", "m-boot-trace",
    "m-net-error",  "m-net-warn",  "m-net-info",  "m-net-debug",
};

/* Asserts that exactly the messages in `want` (NULL-terminated) are logged. */
static void expect_exactly(const char *path, const char *const *want)
{
    char *got = kccl_test_read_file(path);
    int lines = kccl_test_count(got, "\n");
    int nwant = 0;
    for (const char *const *w = want; *w; w++)
        nwant++;
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(every_msg); i++) {
        int wanted = 0;
        for (const char *const *w = want; *w; w++)
            wanted |= strcmp(*w, every_msg[i]) == 0;
        if (kccl_test_count(got, every_msg[i]) != wanted)
            fail_msg("%s: message %s %s; log was:\n%s", path, every_msg[i],
                     wanted ? "missing" : "should have been filtered", got);
    }
    if (lines != nwant)
        fail_msg("%s: %d lines, expected %d; log was:\n%s", path, lines, nwant, got);
    free(got);
}

static void test_filter_default_level(void **state)
{
    char path[512];
    configure("default", NULL, NULL, path);
    emit_all();
    const char *want[] = {"m-boot-error", "m-boot-warn", "m-net-error", "m-net-warn", NULL};
    expect_exactly(path, want);
}

static void test_filter_level_info(void **state)
{
    char path[512];
    configure("info", "info", "ALL", path);
    emit_all();
    const char *want[] = {"m-boot-error", "m-boot-warn", "m-boot-info", "m-net-error",
                          "m-net-warn",   "m-net-info",  NULL};
    expect_exactly(path, want);
}

static void test_filter_level_trace(void **state)
{
    char path[512];
    configure("trace", "TRACE", NULL, path);
    emit_all();
    expect_exactly(path, (const char *const[]){"m-boot-error", "m-boot-warn", "m-boot-info",
                                               "m-boot-debug", "m-boot-trace", "m-net-error",
                                               "m-net-warn", "m-net-info", "m-net-debug", NULL});
    /* Debug and trace lines carry their source location. */
    char *got = kccl_test_read_file(path);
    assert_non_null(strstr(got, "m-boot-debug (" __FILE__));
    assert_null(strstr(got, "m-boot-info ("));
    free(got);
}

static void test_filter_level_none(void **state)
{
    char path[512];
    configure("none", "none", "ALL", path);
    emit_all();
    const char *want[] = {NULL};
    expect_exactly(path, want);
}

static void test_filter_subsys_errors_pass(void **state)
{
    char path[512];
    /* Only BOOT at debug: NET's chatter is hidden, NET's error is not. */
    configure("subsys", "debug", "BOOT", path);
    emit_all();
    const char *want[] = {"m-boot-error", "m-boot-warn", "m-boot-info",
                          "m-boot-debug", "m-net-error", NULL};
    expect_exactly(path, want);
}

static void test_filter_subsys_negated(void **state)
{
    char path[512];
    configure("negated", "info", "^BOOT", path);
    emit_all();
    const char *want[] = {"m-boot-error", "m-net-error", "m-net-warn", "m-net-info", NULL};
    expect_exactly(path, want);
}

static void test_line_format(void **state)
{
    char path[512];
    configure("format", "warn", NULL, path);
    kccl_log_warn(KUBE, "cannot reach %s (%d)", "apiserver", 42);
    kccl_log_set_rank(5);
    kccl_log_error(COLL, "ranked");
    kccl_log_set_rank(-1);
    char *got = kccl_test_read_file(path);
    char head[128];
    snprintf(head, sizeof(head), ":%d kccl WARN KUBE cannot reach apiserver (42)\n", (int)getpid());
    assert_non_null(strstr(got, head));
    snprintf(head, sizeof(head), ":%d [5] kccl ERROR COLL ranked\n", (int)getpid());
    assert_non_null(strstr(got, head));
    assert_int_equal(kccl_test_count(got, "\n"), 2);
    free(got);
}

static void test_bad_env_warns(void **state)
{
    char path[512];
    /* A bad level falls back to warn and says so in the log. */
    configure("badlevel", "loud", NULL, path);
    kccl_log_info(BOOT, "m-boot-info");
    kccl_log_warn(BOOT, "m-boot-warn");
    char *got = kccl_test_read_file(path);
    assert_non_null(strstr(got, "unknown KCCL_LOG_LEVEL 'loud'"));
    assert_non_null(strstr(got, "m-boot-warn"));
    assert_null(strstr(got, "m-boot-info"));
    free(got);

    /* A bad subsystem list falls back to ALL and says so. */
    configure("badsubsys", "info", "BOOT,NOPE", path);
    kccl_log_info(NET, "m-net-info");
    got = kccl_test_read_file(path);
    assert_non_null(strstr(got, "unknown name in KCCL_LOG_SUBSYS"));
    assert_non_null(strstr(got, "m-net-info"));
    free(got);
}

static void test_file_pattern(void **state)
{
    char pattern[512], path[512];
    snprintf(pattern, sizeof(pattern), "%s/pat.%%p.log", log_dir);
    snprintf(path, sizeof(path), "%s/pat.%d.log", log_dir, (int)getpid());
    unsetenv("KCCL_LOG_SUBSYS");
    setenv("KCCL_LOG_LEVEL", "warn", 1);
    setenv("KCCL_LOG_FILE", pattern, 1);
    kccl_log_reinit();
    kccl_log_warn(INIT, "m-pattern");
    char *got = kccl_test_read_file(path);
    assert_int_equal(kccl_test_count(got, "kccl WARN INIT m-pattern\n"), 1);
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_level_names),
        cmocka_unit_test(test_parse_level_bad),
        cmocka_unit_test(test_parse_subsys_all),
        cmocka_unit_test(test_parse_subsys_list),
        cmocka_unit_test(test_parse_subsys_negation),
        cmocka_unit_test(test_parse_subsys_bad),
        cmocka_unit_test(test_expand_path),
        cmocka_unit_test(test_expand_path_overflow),
        cmocka_unit_test(test_filter_default_level),
        cmocka_unit_test(test_filter_level_info),
        cmocka_unit_test(test_filter_level_trace),
        cmocka_unit_test(test_filter_level_none),
        cmocka_unit_test(test_filter_subsys_errors_pass),
        cmocka_unit_test(test_filter_subsys_negated),
        cmocka_unit_test(test_line_format),
        cmocka_unit_test(test_bad_env_warns),
        cmocka_unit_test(test_file_pattern),
    };
    return cmocka_run_group_tests(tests, setup_logdir, teardown_logdir);
}
