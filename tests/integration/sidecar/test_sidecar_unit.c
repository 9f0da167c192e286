/*
 * test_sidecar_unit.c - kccl-sidecar's parsers and decisions without any
 * network: the downward-API annotations file (Go %q values), the spec from
 * annotations (every Event reason), what a rank-0 pod publishes, and the
 * handoff (rendered, parsed back by the runtime's own parser, written
 * atomically, probed).
 */
#include "comm/comm.h"
#include "kccl_test.h"
#include "sc_state.h"

static cJSON *parse_ok(const char *text)
{
    cJSON *obj = NULL;
    char why[160];
    kccl_status_t st = sc_podinfo_parse(text, strlen(text), &obj, why, sizeof(why));
    if (st != KCCL_OK)
        fail_msg("\"%s\": %s", text, why);
    return obj;
}

static const char *get(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void test_podinfo_values(void **state)
{
    (void)state;
    cJSON *o = parse_ok("a=\"x\"\nkccl.io/rank=\"3\"\nq=\"say \\\"hi\\\" \\\\ \\n\\t\"\n"
                        "u=\"\\u00e9\\U0001F600\\x41\\101\"\nraw=\"\xc3\xa9\"\nempty=\"\"");
    assert_string_equal(get(o, "a"), "x");
    assert_string_equal(get(o, "kccl.io/rank"), "3");
    assert_string_equal(get(o, "q"), "say \"hi\" \\ \n\t");
    assert_string_equal(get(o, "u"), "\xc3\xa9\xf0\x9f\x98\x80"
                                     "AA");
    assert_string_equal(get(o, "raw"), "\xc3\xa9");
    assert_string_equal(get(o, "empty"), "");
    cJSON_Delete(o);
    o = parse_ok("a=\"1\"\n"); /* a trailing newline is fine too */
    assert_string_equal(get(o, "a"), "1");
    cJSON_Delete(o);
    o = parse_ok(""); /* no annotations at all */
    assert_int_equal(cJSON_GetArraySize(o), 0);
    cJSON_Delete(o);
}

static void test_podinfo_rejects(void **state)
{
    static const char *bad[] = {
        "a=x",         "a=\"x",           "a=\"x\"y",           "a=\"x\"\na=\"y\"",
        "=\"x\"",      "a b=\"x\"",       "a=\"\\q\"",          "a=\"\\x4\"",
        "a=\"\\x00\"", "a=\"\\u12\"",     "a=\"\\ud800\"",      "a=\"\\U00110000\"",
        "a=\"\\400\"", "a=\"tab\there\"", "a=\"x\"\n\nb=\"y\"", "a=\"x\" ",
        "a",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cJSON *o = NULL;
        char why[160] = "";
        if (sc_podinfo_parse(bad[i], strlen(bad[i]), &o, why, sizeof(why)) == KCCL_OK)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_true(strlen(why) > 0);
    }
    cJSON *o = NULL;
    char why[64];
    assert_int_not_equal(sc_podinfo_parse("a=\"x\0\"", 6, &o, why, sizeof(why)), KCCL_OK);
}

static cJSON *obj(const char *json)
{
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    return o;
}

static void expect_reason(const char *ann, const char *labels, const char *reason)
{
    sc_spec_t spec;
    sc_problem_t pb = {{0}, {0}};
    cJSON *a = obj(ann), *l = obj(labels ? labels : "{}");
    kccl_status_t st = sc_spec_from_meta(a, l, &spec, &pb);
    cJSON_Delete(a);
    cJSON_Delete(l);
    if (st == KCCL_OK)
        fail_msg("%s: accepted, want %s", ann, reason);
    assert_string_equal(pb.reason, reason);
    assert_true(strlen(pb.message) > 20);
}

static void test_spec(void **state)
{
    sc_spec_t spec;
    sc_problem_t pb = {{0}, {0}};
    (void)state;
    cJSON *a = obj("{\"kccl.io/group\":\"g\",\"kccl.io/rank\":\"3\",\"kccl.io/world-size\":\"8\","
                   "\"kccl.io/port\":\"31000\",\"kccl.io/epoch\":\"2\","
                   "\"kccl.io/root-pod\":\"job-0\"}");
    cJSON *l = obj("{}");
    assert_int_equal(sc_spec_from_meta(a, l, &spec, &pb), KCCL_OK);
    assert_string_equal(spec.group, "g");
    assert_int_equal(spec.rank, 3);
    assert_int_equal(spec.world, 8);
    assert_int_equal(spec.port, 31000);
    assert_int_equal(spec.epoch, 2);
    assert_string_equal(spec.root_pod, "job-0");
    cJSON_Delete(a);
    /* Indexed Job (annotation, then label) and StatefulSet ordinals */
    a = obj("{\"kccl.io/group\":\"g\",\"kccl.io/world-size\":\"4\","
            "\"batch.kubernetes.io/job-completion-index\":\"2\"}");
    assert_int_equal(sc_spec_from_meta(a, l, &spec, &pb), KCCL_OK);
    assert_int_equal(spec.rank, 2);
    assert_int_equal(spec.port, 29500);
    cJSON_Delete(a);
    cJSON_Delete(l);
    a = obj("{\"kccl.io/group\":\"g\",\"kccl.io/world-size\":\"4\"}");
    l = obj("{\"apps.kubernetes.io/pod-index\":\"1\"}");
    assert_int_equal(sc_spec_from_meta(a, l, &spec, &pb), KCCL_OK);
    assert_int_equal(spec.rank, 1);
    cJSON_Delete(a);
    cJSON_Delete(l);
}

static void test_spec_errors(void **state)
{
    (void)state;
    expect_reason("{}", NULL, "MissingGroup");
    expect_reason("{\"kccl.io/group\":\"a b\"}", NULL, "InvalidGroup");
    expect_reason("{\"kccl.io/group\":\"g\",\"kccl.io/rank\":\"0\"}", NULL, "InvalidWorldSize");
    expect_reason("{\"kccl.io/group\":\"g\",\"kccl.io/world-size\":\"0\"}", NULL,
                  "InvalidWorldSize");
    expect_reason("{\"kccl.io/group\":\"g\",\"kccl.io/world-size\":\"2\"}", NULL, "InvalidRank");
    expect_reason("{\"kccl.io/group\":\"g\",\"kccl.io/world-size\":\"2\",\"kccl.io/rank\":\"x\"}",
                  NULL, "InvalidRank");
    expect_reason("{\"kccl.io/group\":\"g\",\"kccl.io/world-size\":\"2\",\"kccl.io/rank\":\"+1\"}",
                  NULL, "InvalidRank");
    expect_reason("{\"kccl.io/group\":\"g\",\"kccl.io/world-size\":\"2\"}",
                  "{\"batch.kubernetes.io/job-completion-index\":\"a\"}", "InvalidRank");
    expect_reason("{\"kccl.io/group\":\"g\",\"kccl.io/world-size\":\"2\",\"kccl.io/rank\":\"2\"}",
                  NULL, "RankOutOfRange");
    expect_reason("{\"kccl.io/group\":\"g\",\"kccl.io/world-size\":\"2\",\"kccl.io/rank\":\"0\","
                  "\"kccl.io/port\":\"70000\"}",
                  NULL, "InvalidPort");
    expect_reason("{\"kccl.io/group\":\"g\",\"kccl.io/world-size\":\"2\",\"kccl.io/rank\":\"0\","
                  "\"kccl.io/epoch\":\"-1\"}",
                  NULL, "InvalidEpoch");
    expect_reason("{\"kccl.io/group\":\"g\",\"kccl.io/world-size\":\"2\",\"kccl.io/rank\":\"0\","
                  "\"kccl.io/ranks-per-pod\":\"4\"}",
                  NULL, "UnsupportedRanksPerPod");
    expect_reason("{\"kccl.io/group\":\"g\",\"kccl.io/world-size\":\"2\",\"kccl.io/rank\":\"0\","
                  "\"kccl.io/root-pod\":\"Bad_Name\"}",
                  NULL, "InvalidRootPod");
}

static void test_numbers_and_names(void **state)
{
    long v;
    char ep[80];
    (void)state;
    assert_int_equal(sc_parse_long("0", 0, 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(sc_parse_long("10", 0, 10, &v), 0);
    assert_int_equal(sc_parse_long("11", 0, 10, &v), -1);
    assert_int_equal(sc_parse_long("", 0, 10, &v), -1);
    assert_int_equal(sc_parse_long(" 1", 0, 10, &v), -1);
    assert_int_equal(sc_parse_long("1 ", 0, 10, &v), -1);
    assert_int_equal(sc_parse_long("99999999999999999999", 0, 10, &v), -1);
    assert_int_equal(sc_endpoint_format("10.0.0.1", 29500, ep, sizeof(ep)), 0);
    assert_string_equal(ep, "10.0.0.1:29500");
    assert_int_equal(sc_endpoint_format("fd00::1", 1, ep, sizeof(ep)), 0);
    assert_string_equal(ep, "[fd00::1]:1");
    assert_true(sc_valid_subdomain("job-0.x"));
    assert_false(sc_valid_subdomain("-a"));
    assert_false(sc_valid_subdomain("A"));
    assert_true(sc_valid_dns_label("ns-1"));
    assert_false(sc_valid_dns_label("ns.1"));
    assert_true(sc_valid_label_value("My_group.1"));
    assert_false(sc_valid_label_value("_x"));
    assert_true(sc_valid_ip("fd00::2"));
    assert_false(sc_valid_ip("10.0.0.256"));
}

static void test_root_from_pod(void **state)
{
    sc_root_t r;
    char json[1024], id[KCCL_UNIQUE_ID_STRLEN + 1];
    kccl_unique_id_t uid;
    (void)state;
    assert_int_equal(kccl_unique_id_for_address("10.1.2.3:29500", &uid), KCCL_OK);
    assert_int_equal(kccl_unique_id_to_string(&uid, id, sizeof(id)), KCCL_OK);
    snprintf(json, sizeof(json),
             "{\"metadata\":{\"name\":\"p0\",\"annotations\":{\"kccl.io/world-size\":\"4\","
             "\"kccl.io/epoch\":\"3\",\"kccl.io/unique-id\":\"%s\","
             "\"kccl.io/unique-id-epoch\":\"3\"}}}",
             id);
    cJSON *pod = obj(json);
    sc_root_from_pod(pod, &r);
    cJSON_Delete(pod);
    assert_string_equal(r.name, "p0");
    assert_false(r.deleting);
    assert_true(r.world_ok && r.world == 4);
    assert_true(r.epoch_ok && r.epoch == 3);
    assert_true(r.has_id && r.id_text_ok && r.id_epoch == 3);
    assert_string_equal(r.id, id);
    pod = obj("{\"metadata\":{\"name\":\"p0\",\"deletionTimestamp\":\"x\",\"annotations\":{"
              "\"kccl.io/epoch\":\"z\",\"kccl.io/unique-id\":\"short\"}}}");
    sc_root_from_pod(pod, &r);
    cJSON_Delete(pod);
    assert_true(r.deleting);
    assert_false(r.world_ok);
    assert_false(r.epoch_ok);
    assert_false(r.has_id); /* no unique-id-epoch: not published for any epoch */
}

static void test_handoff_roundtrip(void **state)
{
    char dir[256], path[512], text[SC_HANDOFF_MAX], why[256], id[KCCL_UNIQUE_ID_STRLEN + 1];
    kccl_unique_id_t uid;
    kccl_handoff_t h;
    int written;
    (void)state;
    kccl_test_mkdtemp(dir);
    snprintf(path, sizeof(path), "%s/bootstrap", dir);
    assert_int_equal(kccl_unique_id_for_address("10.1.2.3:29500", &uid), KCCL_OK);
    assert_int_equal(kccl_unique_id_to_string(&uid, id, sizeof(id)), KCCL_OK);
    sc_handoff_t in = {.unique_id = id,
                       .rank = 5,
                       .world = 8,
                       .epoch = 2,
                       .host_id = "node-a",
                       .secret_file = "/var/run/kccl-secret/secret",
                       .pod = "ns/p5"};
    assert_int_equal(sc_handoff_render(&in, text, sizeof(text)), KCCL_OK);
    assert_int_equal(kccl_handoff_parse(text, strlen(text), &h, why, sizeof(why)), KCCL_OK);
    assert_string_equal(h.unique_id, id);
    assert_int_equal(h.rank, 5);
    assert_int_equal(h.world_size, 8);
    assert_int_equal(h.epoch, 2);
    assert_string_equal(h.host_id, "node-a");
    assert_string_equal(h.secret_file, "/var/run/kccl-secret/secret");
    assert_int_not_equal(sc_handoff_probe(path, why, sizeof(why)), 0); /* not there yet */
    assert_int_equal(sc_handoff_write(path, text, &written), KCCL_OK);
    assert_int_equal(written, 1);
    assert_int_equal(sc_handoff_write(path, text, &written), KCCL_OK);
    assert_int_equal(written, 0); /* unchanged: not rewritten */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_int_equal(sc_handoff_probe(path, why, sizeof(why)), 0);
    assert_int_equal(sc_handoff_remove(path), KCCL_OK);
    assert_int_equal(sc_handoff_remove(path), KCCL_OK);
    assert_int_not_equal(sc_handoff_probe(path, why, sizeof(why)), 0);
    /* no line breaks smuggled into values; no relative secret paths */
    in.host_id = "node\nKCCL_RANK=0";
    assert_int_not_equal(sc_handoff_render(&in, text, sizeof(text)), KCCL_OK);
    in.host_id = "node-a";
    in.secret_file = "relative/path";
    assert_int_not_equal(sc_handoff_render(&in, text, sizeof(text)), KCCL_OK);
    /* the probe refuses what the runtime would refuse */
    kccl_test_write_file(path, "KCCL_RANK=1\n", 12, 0644);
    assert_int_not_equal(sc_handoff_probe(path, why, sizeof(why)), 0);
    unlink(path);
    rmdir(dir);
}

/* ------------------------------------------------------------------ decisions (sc_eval.c) */

static char g_id[KCCL_UNIQUE_ID_STRLEN + 1];

static cJSON *root_pod(const char *name, const char *world, const char *epoch, int with_id,
                       long id_epoch)
{
    char json[1024];
    int n = snprintf(json, sizeof(json),
                     "{\"metadata\":{\"name\":\"%s\",\"annotations\":{\"kccl.io/world-size\":"
                     "\"%s\"",
                     name, world);
    if (epoch)
        n += snprintf(json + n, sizeof(json) - (size_t)n, ",\"kccl.io/epoch\":\"%s\"", epoch);
    if (with_id)
        n += snprintf(json + n, sizeof(json) - (size_t)n,
                      ",\"kccl.io/unique-id\":\"%s\",\"kccl.io/unique-id-epoch\":\"%ld\"", g_id,
                      id_epoch);
    snprintf(json + n, sizeof(json) - (size_t)n, "}}}");
    return obj(json);
}

static void upsert(sc_t *s, cJSON *pod)
{
    sc_roots_upsert(s, pod);
    cJSON_Delete(pod);
}

static void eval_setup(sc_t *s, sc_options_t *o, char *dir, long rank)
{
    kccl_unique_id_t uid;
    static char path[512];
    memset(s, 0, sizeof(*s));
    memset(o, 0, sizeof(*o));
    kccl_test_mkdtemp(dir);
    snprintf(path, sizeof(path), "%s/bootstrap", dir);
    o->handoff_path = path;
    o->secret_file = "/s/secret";
    o->rendezvous_timeout_ms = 1000;
    s->o = o;
    snprintf(s->pod_ref, sizeof(s->pod_ref), "ns/p%ld", rank);
    snprintf(s->self.name, sizeof(s->self.name), "p%ld", rank);
    snprintf(s->self.node, sizeof(s->self.node), "node-a");
    snprintf(s->spec.group, sizeof(s->spec.group), "g");
    s->spec.rank = rank;
    s->spec.world = 2;
    assert_int_equal(kccl_unique_id_for_address("10.0.0.1:29500", &uid), KCCL_OK);
    assert_int_equal(kccl_unique_id_to_string(&uid, g_id, sizeof(g_id)), KCCL_OK);
}

static void eval_teardown(const sc_options_t *o, const char *dir)
{
    unlink(o->handoff_path);
    rmdir(dir);
}

static void test_eval_member(void **state)
{
    sc_t s;
    sc_options_t o;
    char dir[256], why[256];
    (void)state;
    eval_setup(&s, &o, dir, 1);
    assert_int_equal(sc_eval_group(&s), 0); /* no rank 0 yet: wait */
    assert_false(s.handoff_ok);
    upsert(&s, root_pod("p0", "2", NULL, 0, 0));
    assert_int_equal(sc_eval_group(&s), 0); /* rank 0 has not published */
    assert_false(s.handoff_ok);
    upsert(&s, root_pod("p0", "2", "1", 1, 0));
    assert_int_equal(sc_eval_group(&s), 0); /* an id, but for epoch 0 while rank 0 says 1 */
    assert_false(s.handoff_ok);
    upsert(&s, root_pod("p0", "2", "1", 1, 1));
    assert_int_equal(sc_eval_group(&s), 0);
    assert_true(s.handoff_ok);
    assert_int_equal(sc_handoff_probe(o.handoff_path, why, sizeof(why)), 0);
    upsert(&s, root_pod("px", "2", "1", 1, 1)); /* a second rank 0: no handoff, no Event here */
    assert_int_equal(sc_eval_group(&s), 0);
    assert_false(s.handoff_ok);
    assert_int_not_equal(sc_handoff_probe(o.handoff_path, why, sizeof(why)), 0);
    assert_false(s.event_pending);
    /* a LIST that no longer delivers px: purged at the next real event */
    s.list_gen++;
    upsert(&s, root_pod("p0", "2", "1", 1, 1));
    sc_roots_purge_stale(&s);
    assert_int_equal(s.nroots, 1);
    assert_int_equal(sc_eval_group(&s), 0);
    assert_true(s.handoff_ok);
    upsert(&s, root_pod("p0", "3", "1", 1, 1)); /* rank 0 changes the world size */
    assert_int_equal(sc_eval_group(&s), 1);
    assert_true(s.event_pending);
    assert_string_equal(s.pending.reason, "WorldSizeChanged");
    assert_false(s.handoff_ok);
    s.event_pending = s.action_pending = 0;
    assert_int_equal(sc_eval_group(&s), 0); /* the same problem is not posted twice */
    eval_teardown(&o, dir);
}

static void test_eval_root(void **state)
{
    sc_t s;
    sc_options_t o;
    char dir[256];
    (void)state;
    eval_setup(&s, &o, dir, 0);
    memcpy(s.my_id, g_id, sizeof(g_id));
    upsert(&s, root_pod("p0", "2", NULL, 1, 0));
    assert_int_equal(sc_eval_group(&s), 0);
    assert_true(s.handoff_ok);
    upsert(&s, root_pod("other", "2", NULL, 0, 0));
    assert_int_equal(sc_eval_group(&s), 1);
    assert_string_equal(s.pending.reason, "DuplicateRank");
    assert_non_null(strstr(s.pending.message, "other"));
    assert_false(s.handoff_ok);
    cJSON *gone = root_pod("other", "2", NULL, 0, 0);
    sc_roots_remove(&s, gone);
    cJSON_Delete(gone);
    s.event_pending = s.action_pending = 0;
    assert_int_equal(sc_eval_group(&s), 0);
    assert_true(s.handoff_ok);                  /* healthy again */
    upsert(&s, root_pod("p0", "2", "4", 1, 0)); /* the operator bumps the epoch */
    assert_int_equal(sc_eval_group(&s), 1);
    assert_true(s.republish);
    assert_int_equal(s.republish_epoch, 4);
    eval_teardown(&o, dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_podinfo_values),
        cmocka_unit_test(test_podinfo_rejects),
        cmocka_unit_test(test_spec),
        cmocka_unit_test(test_spec_errors),
        cmocka_unit_test(test_numbers_and_names),
        cmocka_unit_test(test_root_from_pod),
        cmocka_unit_test(test_handoff_roundtrip),
        cmocka_unit_test(test_eval_member),
        cmocka_unit_test(test_eval_root),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
