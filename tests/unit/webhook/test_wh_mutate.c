/*
 * test_wh_mutate.c - the webhook's admission decision on many pod shapes: what is injected, that
 * the JSON patch applies to the pod as sent (arrays absent or present, escaped keys), that a
 * second admission adds nothing, that each malformed kccl.io annotation is refused with a message
 * naming it and the remedy, and that hostile bodies get a clean 400.
 */
#include "wh_patch.h"
#include "wh_rank.h"
#include "wh_test.h"
#include "wh_validate.h"

/* Test pods are written with ' for " (none contains an apostrophe). */
static const char *q(const char *s)
{
    static char buf[8][8192];
    static int i;
    i = (i + 1) % 8;
    size_t n = 0;
    for (; s[n] && n + 1 < sizeof(buf[i]); n++)
        buf[i][n] = s[n] == '\'' ? '"' : s[n];
    buf[i][n] = '\0';
    return buf[i];
}

#define APP_SPEC "'spec':{'containers':[{'name':'app','image':'busybox'}]}"

static void assert_injected(const cJSON *pod, const char *group, const char *rank)
{
    const cJSON *init = wht_at(pod, "spec.initContainers");
    assert_int_equal(wht_count_named(init, "kccl-sidecar"), 1);
    const cJSON *sc = wht_named(init, "kccl-sidecar");
    assert_string_equal(wht_str(sc, "restartPolicy"), "Always");
    assert_string_equal(wht_str(sc, "image"), wht_cfg.image);
    assert_string_equal(wht_str(sc, "imagePullPolicy"), "Never");
    assert_string_equal(wht_str(sc, "args.0"), "run");
    assert_string_equal(wht_str(sc, "readinessProbe.exec.command.0"), "kccl-sidecar");
    assert_string_equal(wht_str(sc, "readinessProbe.exec.command.1"), "probe");
    assert_string_equal(wht_str(sc, "resources.requests.cpu"), "10m");
    assert_string_equal(wht_str(sc, "resources.limits.memory"), "64Mi");
    assert_null(wht_at(sc, "resources.limits.cpu"));
    assert_true(cJSON_IsTrue(wht_at(sc, "securityContext.runAsNonRoot")));
    assert_true(cJSON_IsTrue(wht_at(sc, "securityContext.readOnlyRootFilesystem")));
    assert_true(cJSON_IsFalse(wht_at(sc, "securityContext.allowPrivilegeEscalation")));
    assert_string_equal(wht_str(sc, "securityContext.capabilities.drop.0"), "ALL");
    static const char *const sc_env[][2] = {
        {"POD_NAME", "metadata.name"},  {"POD_NAMESPACE", "metadata.namespace"},
        {"POD_UID", "metadata.uid"},    {"POD_IP", "status.podIP"},
        {"NODE_NAME", "spec.nodeName"},
    };
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(sc_env); i++)
        assert_string_equal(
            wht_str(wht_named(wht_at(sc, "env"), sc_env[i][0]), "valueFrom.fieldRef.fieldPath"),
            sc_env[i][1]);
    assert_string_equal(wht_str(wht_named(wht_at(sc, "env"), "KCCL_BOOTSTRAP_FILE"), "value"),
                        "/var/run/kccl/bootstrap");
    assert_string_equal(wht_str(wht_named(wht_at(sc, "env"), "KCCL_GROUP_SECRET_FILE"), "value"),
                        "/var/run/kccl-secret/secret");
    const cJSON *scm = wht_named(wht_at(sc, "volumeMounts"), "kccl-run");
    assert_string_equal(wht_str(scm, "mountPath"), "/var/run/kccl");
    assert_null(wht_at(scm, "readOnly"));
    assert_null(wht_named(wht_at(sc, "volumeMounts"), "kccl-secret")); /* never reads it */

    const cJSON *vols = wht_at(pod, "spec.volumes");
    assert_int_equal(wht_count_named(vols, "kccl-run"), 1);
    assert_non_null(wht_at(wht_named(vols, "kccl-run"), "emptyDir"));
    char secret[128];
    snprintf(secret, sizeof(secret), "kccl-group-%s", group);
    assert_string_equal(wht_str(wht_named(vols, "kccl-secret"), "secret.secretName"), secret);

    const cJSON *c;
    cJSON_ArrayForEach(c, wht_at(pod, "spec.containers"))
    {
        const cJSON *env = wht_at(c, "env"), *mounts = wht_at(c, "volumeMounts");
        assert_string_equal(wht_str(wht_named(env, "KCCL_BOOTSTRAP_FILE"), "value"),
                            "/var/run/kccl/bootstrap");
        assert_string_equal(wht_str(wht_named(env, "KCCL_GROUP_SECRET_FILE"), "value"),
                            "/var/run/kccl-secret/secret");
        assert_string_equal(
            wht_str(wht_named(env, "KCCL_NODE_NAME"), "valueFrom.fieldRef.fieldPath"),
            "spec.nodeName");
        assert_non_null(wht_named(env, "POD_NAME"));
        assert_non_null(wht_named(env, "POD_NAMESPACE"));
        assert_non_null(wht_named(env, "POD_IP"));
        assert_int_equal(wht_count_named(env, "KCCL_BOOTSTRAP_FILE"), 1);
        const cJSON *m = wht_named(mounts, "kccl-secret");
        assert_string_equal(wht_str(m, "mountPath"), "/var/run/kccl-secret");
        assert_true(cJSON_IsTrue(wht_at(m, "readOnly")));
        assert_string_equal(wht_str(wht_named(mounts, "kccl-run"), "mountPath"), "/var/run/kccl");
    }
    const cJSON *labels = wht_at(pod, "metadata.labels");
    assert_string_equal(wht_key(labels, "kccl.io/group"), group);
    assert_string_equal(wht_key(labels, "kccl.io/rank"), rank);
}

/* The same pod admitted again (reinvocation, or a replayed request) gets no patch. */
static void assert_idempotent(const cJSON *pod)
{
    char *text = cJSON_PrintUnformatted(pod);
    wht_result_t again;
    wht_mutate_pod(text, &again);
    free(text);
    assert_true(wht_allowed(&again));
    assert_null(again.patch);
    assert_null(cJSON_GetObjectItemCaseSensitive(again.response, "patchType"));
    assert_int_equal(again.out.kind, WH_OUT_UNCHANGED);
    wht_free(&again);
}

static void test_no_annotations_is_left_alone(void **state)
{
    wht_result_t r;
    wht_mutate_pod(q("{'metadata':{'name':'p'}," APP_SPEC "}"), &r);
    assert_true(wht_allowed(&r));
    assert_null(r.patch);
    assert_int_equal(r.out.kind, WH_OUT_IGNORED);
    wht_free(&r);
    /* other annotations, even other kccl.io ones, without the group: not a kccl pod */
    wht_mutate_pod(
        q("{'metadata':{'name':'p','annotations':{'a':'b','kccl.io/rank':'x'}}," APP_SPEC "}"), &r);
    assert_true(wht_allowed(&r));
    assert_null(r.patch);
    wht_free(&r);
}

static void test_plain_pod(void **state)
{
    wht_result_t r;
    wht_mutate_pod(q("{'metadata':{'name':'p0','annotations':{'kccl.io/group':'g1',"
                     "'kccl.io/world-size':'2','kccl.io/rank':'1'}}," APP_SPEC "}"),
                   &r);
    assert_true(wht_allowed(&r));
    assert_int_equal(r.out.kind, WH_OUT_INJECTED);
    assert_non_null(r.patch);
    assert_injected(r.pod, "g1", "1");
    assert_string_equal(wht_str(r.pod, "spec.serviceAccountName"), "kccl-sidecar");
    assert_null(wht_at(r.response, "warnings"));
    /* the user's annotation stays the only rank annotation, unchanged */
    assert_string_equal(wht_key(wht_at(r.pod, "metadata.annotations"), "kccl.io/rank"), "1");
    /* arrays absent in the pod were added whole, never appended to */
    const cJSON *op;
    cJSON_ArrayForEach(op, r.patch)
    {
        const char *path = wht_str(op, "path");
        assert_null(strstr(path, "/-"));
    }
    assert_idempotent(r.pod);
    wht_free(&r);
}

static void test_indexed_job_pod(void **state)
{
    wht_result_t r;
    wht_mutate_pod(q("{'metadata':{'generateName':'train-','annotations':{'kccl.io/group':"
                     "'train','kccl.io/world-size':'4','batch.kubernetes.io/"
                     "job-completion-index':'3'},'labels':{'job-name':'train',"
                     "'batch.kubernetes.io/job-completion-index':'3'}}," APP_SPEC "}"),
                   &r);
    assert_true(wht_allowed(&r));
    assert_injected(r.pod, "train", "3");
    /* derived rank is written as the annotation too, and the user's labels are kept */
    assert_string_equal(wht_key(wht_at(r.pod, "metadata.annotations"), "kccl.io/rank"), "3");
    assert_string_equal(wht_str(r.pod, "metadata.labels.job-name"), "train");
    /* labels existed: keys are added one by one with ~1 escaping */
    int escaped = 0;
    const cJSON *op;
    cJSON_ArrayForEach(op, r.patch)
    {
        escaped += strcmp(wht_str(op, "path"), "/metadata/labels/kccl.io~1group") == 0;
        escaped += strcmp(wht_str(op, "path"), "/metadata/annotations/kccl.io~1rank") == 0;
    }
    assert_int_equal(escaped, 2);
    assert_string_equal(r.out.pod, "ns1/train-*");
    assert_idempotent(r.pod);
    wht_free(&r);

    /* the index only as a label (the annotation stripped by someone) */
    wht_mutate_pod(q("{'metadata':{'annotations':{'kccl.io/group':'train','kccl.io/world-size':"
                     "'4'},'labels':{'batch.kubernetes.io/job-completion-index':'0'}}," APP_SPEC
                     "}"),
                   &r);
    assert_injected(r.pod, "train", "0");
    wht_free(&r);
}

static void test_statefulset_pod(void **state)
{
    wht_result_t r;
    wht_mutate_pod(
        q("{'metadata':{'name':'web-2','annotations':{'kccl.io/group':'web',"
          "'kccl.io/world-size':'3'},'labels':{'apps.kubernetes.io/pod-index':'2'}}," APP_SPEC "}"),
        &r);
    assert_true(wht_allowed(&r));
    assert_injected(r.pod, "web", "2");
    wht_free(&r);
    /* no pod-index label (Kubernetes < 1.28): the ordinal of the controlling StatefulSet */
    wht_mutate_pod(
        q("{'metadata':{'name':'db-ring-1','annotations':{'kccl.io/group':'db',"
          "'kccl.io/world-size':'2'},'ownerReferences':[{'apiVersion':'apps/v1',"
          "'kind':'StatefulSet','name':'db-ring','uid':'u','controller':true}]}," APP_SPEC "}"),
        &r);
    assert_true(wht_allowed(&r));
    assert_injected(r.pod, "db", "1");
    assert_string_equal(wht_key(wht_at(r.pod, "metadata.annotations"), "kccl.io/rank"), "1");
    assert_idempotent(r.pod);
    wht_free(&r);
    /* a name that does not belong to the StatefulSet is no rank source */
    wht_mutate_pod(q("{'metadata':{'name':'other-1','annotations':{'kccl.io/group':'db',"
                     "'kccl.io/world-size':'2'},'ownerReferences':[{'kind':'StatefulSet',"
                     "'name':'db-ring','controller':true}]}," APP_SPEC "}"),
                   &r);
    assert_false(wht_allowed(&r));
    assert_non_null(strstr(wht_message(&r), "has no rank"));
    wht_free(&r);
}

static void test_existing_arrays_are_appended(void **state)
{
    wht_result_t r;
    wht_mutate_pod(
        q("{'metadata':{'name':'p','annotations':{'kccl.io/group':'g','kccl.io/world-size':'1',"
          "'kccl.io/rank':'0'},'labels':{'app':'x'}},'spec':{'serviceAccountName':'trainer',"
          "'initContainers':[{'name':'setup','image':'s'}],"
          "'volumes':[{'name':'data','emptyDir':{}}],"
          "'containers':[{'name':'app','image':'a','env':[{'name':'A','value':'1'},"
          "{'name':'POD_NAME','value':'mine'}],'volumeMounts':[{'name':'data','mountPath':'/d'}]},"
          "{'name':'helper','image':'h'}]}}"),
        &r);
    assert_true(wht_allowed(&r));
    assert_injected(r.pod, "g", "0");
    /* the user's entries stay first and unchanged; ours follow */
    assert_string_equal(wht_str(r.pod, "spec.initContainers.0.name"), "setup");
    assert_string_equal(wht_str(r.pod, "spec.initContainers.1.name"), "kccl-sidecar");
    assert_string_equal(wht_str(r.pod, "spec.volumes.0.name"), "data");
    assert_int_equal(cJSON_GetArraySize(wht_at(r.pod, "spec.volumes")), 3);
    assert_string_equal(wht_str(r.pod, "spec.containers.0.env.0.name"), "A");
    assert_string_equal(wht_str(r.pod, "spec.containers.0.volumeMounts.0.name"), "data");
    /* a variable the user set is not duplicated nor overwritten */
    const cJSON *env = wht_at(r.pod, "spec.containers.0.env");
    assert_int_equal(wht_count_named(env, "POD_NAME"), 1);
    assert_string_equal(wht_str(wht_named(env, "POD_NAME"), "value"), "mine");
    /* the second container had no env/mounts: it got whole arrays */
    assert_int_equal(cJSON_GetArraySize(wht_at(r.pod, "spec.containers.1.env")), 6);
    /* a ServiceAccount of the user's own is kept, with a warning about its grants */
    assert_string_equal(wht_str(r.pod, "spec.serviceAccountName"), "trainer");
    assert_int_equal(cJSON_GetArraySize(wht_at(r.response, "warnings")), 1);
    assert_non_null(strstr(wht_str(r.response, "warnings.0"), "ServiceAccount trainer"));
    assert_non_null(strstr(wht_str(r.response, "warnings.0"), "kccl-sidecar Role"));
    assert_string_equal(wht_str(r.pod, "metadata.labels.app"), "x");
    int appended = 0;
    const cJSON *op;
    cJSON_ArrayForEach(op, r.patch)
    {
        const char *p = wht_str(op, "path");
        appended += strcmp(p + strlen(p) - 2, "/-") == 0;
    }
    assert_int_equal(appended, 1 /* init */ + 2 /* volumes */ + 5 /* env */ + 2 /* mounts */);
    assert_idempotent(r.pod);
    wht_free(&r);
}

static void test_service_account_default_is_replaced(void **state)
{
    wht_result_t r;
    wht_mutate_pod(q("{'metadata':{'annotations':{'kccl.io/group':'g','kccl.io/world-size':'1',"
                     "'kccl.io/rank':'0'}},'spec':{'serviceAccountName':'default',"
                     "'serviceAccount':'default','containers':[{'name':'a','image':'i'}]}}"),
                   &r);
    assert_string_equal(wht_str(r.pod, "spec.serviceAccountName"), "kccl-sidecar");
    assert_string_equal(wht_str(r.pod, "spec.serviceAccount"), "kccl-sidecar");
    assert_idempotent(r.pod);
    wht_free(&r);
}

static void test_no_token_warns(void **state)
{
    wht_result_t r;
    wht_mutate_pod(q("{'metadata':{'annotations':{'kccl.io/group':'g','kccl.io/world-size':'1',"
                     "'kccl.io/rank':'0'}},'spec':{'automountServiceAccountToken':false,"
                     "'containers':[{'name':'a','image':'i'}]}}"),
                   &r);
    assert_true(wht_allowed(&r));
    assert_non_null(r.patch);
    assert_non_null(strstr(wht_str(r.response, "warnings.0"), "automountServiceAccountToken"));
    /* the second admission has nothing to add and repeats no warning */
    char *text = cJSON_PrintUnformatted(r.pod);
    wht_result_t again;
    wht_mutate_pod(text, &again);
    free(text);
    assert_null(wht_at(again.response, "warnings"));
    wht_free(&again);
    wht_free(&r);
}

static void test_already_injected_by_hand(void **state)
{
    /* a pod that carries the sidecar and volumes (e.g. rendered by a tool) gets no patch */
    wht_result_t first;
    wht_mutate_pod(q("{'metadata':{'name':'p','annotations':{'kccl.io/group':'g',"
                     "'kccl.io/world-size':'2','kccl.io/rank':'1'}}," APP_SPEC "}"),
                   &first);
    char *text = cJSON_PrintUnformatted(first.pod);
    wht_result_t again;
    wht_mutate_pod(text, &again);
    assert_null(again.patch);
    assert_int_equal(again.out.ops, 0);
    free(text);
    wht_free(&again);
    wht_free(&first);
}

/* Each malformed annotation: refused, message names what and how to fix. */
static void test_bad_annotations(void **state)
{
    static const struct {
        const char *ann; /* extra annotations, JSON members with ' quotes */
        const char *want1, *want2;
    } cases[] = {
        {"'kccl.io/group':'Bad_Group','kccl.io/world-size':'2','kccl.io/rank':'0'", "kccl.io/group",
         "rename the group"},
        {"'kccl.io/group':'a234567890123456789012345678901234567890123456789012345678901234',"
         "'kccl.io/world-size':'2','kccl.io/rank':'0'",
         "kccl.io/group", "63"},
        {"'kccl.io/group':'-g','kccl.io/world-size':'2','kccl.io/rank':'0'", "kccl.io/group",
         "alphanumeric at both ends"},
        {"'kccl.io/group':'','kccl.io/world-size':'2','kccl.io/rank':'0'", "kccl.io/group",
         "rename"},
        {"'kccl.io/group':'g','kccl.io/rank':'0'", "kccl.io/world-size is missing",
         "number of ranks"},
        {"'kccl.io/group':'g','kccl.io/world-size':'0','kccl.io/rank':'0'", "kccl.io/world-size",
         "whole number from 1"},
        {"'kccl.io/group':'g','kccl.io/world-size':'four','kccl.io/rank':'0'", "kccl.io/world-size",
         "\"four\""},
        {"'kccl.io/group':'g','kccl.io/world-size':'-3','kccl.io/rank':'0'", "kccl.io/world-size",
         "number of ranks"},
        {"'kccl.io/group':'g','kccl.io/world-size':' 2','kccl.io/rank':'0'", "kccl.io/world-size",
         "not a world size"},
        {"'kccl.io/group':'g','kccl.io/world-size':'2','kccl.io/rank':'x'",
         "annotation kccl.io/rank", "not a rank"},
        {"'kccl.io/group':'g','kccl.io/world-size':'2','kccl.io/rank':'2'", "out of range",
         "0 to 1"},
        {"'kccl.io/group':'g','kccl.io/world-size':'2','kccl.io/rank':'-1'", "kccl.io/rank",
         "whole number"},
        {"'kccl.io/group':'g','kccl.io/world-size':'2'", "has no rank", "Indexed Job"},
        {"'kccl.io/group':'g','kccl.io/world-size':'2','kccl.io/rank':'0',"
         "'kccl.io/ranks-per-pod':'8'",
         "kccl.io/ranks-per-pod", "set it to \"1\""},
        {"'kccl.io/group':'g','kccl.io/world-size':'2','kccl.io/rank':'0','kccl.io/port':'0'",
         "kccl.io/port", "1 to 65535"},
        {"'kccl.io/group':'g','kccl.io/world-size':'2','kccl.io/rank':'0','kccl.io/port':'65536'",
         "kccl.io/port", "default 29500"},
        {"'kccl.io/group':'g','kccl.io/world-size':'2','kccl.io/rank':'0','kccl.io/port':'http'",
         "kccl.io/port", "not a TCP port"},
        {"'kccl.io/group':'g','kccl.io/world-size':'2','kccl.io/rank':'0','kccl.io/epoch':'e'",
         "kccl.io/epoch", "remove it"},
        {"'kccl.io/group':'g','kccl.io/world-size':'2','kccl.io/rank':'0',"
         "'kccl.io/root-pod':'Pod_0'",
         "kccl.io/root-pod", "rank 0's pod"},
        {"'kccl.io/group':'g','kccl.io/world-size':'2','batch.kubernetes.io/"
         "job-completion-index':'one'",
         "batch.kubernetes.io/job-completion-index", "not a rank"},
        {"'kccl.io/group':'g','kccl.io/world-size':'2','kccl.io/rank':'0','kccl.io/port':8080",
         "kccl.io/port is not a string", "quote"},
    };
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(cases); i++) {
        char pod[2048];
        snprintf(pod, sizeof(pod), "{'metadata':{'name':'p','annotations':{%s}}," APP_SPEC "}",
                 cases[i].ann);
        wht_result_t r;
        wht_mutate_pod(q(pod), &r);
        if (wht_allowed(&r) || strstr(wht_message(&r), cases[i].want1) == NULL ||
            strstr(wht_message(&r), cases[i].want2) == NULL)
            fail_msg("case %zu (%s): allowed=%d message \"%s\"", i, cases[i].ann, wht_allowed(&r),
                     wht_message(&r));
        assert_null(r.patch);
        assert_int_equal(r.out.kind, WH_OUT_DENIED);
        assert_int_equal((int)cJSON_GetNumberValue(wht_at(r.response, "status.code")), 400);
        wht_free(&r);
    }
}

static void test_conflicting_labels(void **state)
{
    wht_result_t r;
    wht_mutate_pod(q("{'metadata':{'annotations':{'kccl.io/group':'g','kccl.io/world-size':'2',"
                     "'kccl.io/rank':'1'},'labels':{'kccl.io/group':'other'}}," APP_SPEC "}"),
                   &r);
    assert_false(wht_allowed(&r));
    assert_non_null(strstr(wht_message(&r), "label kccl.io/group is \"other\""));
    wht_free(&r);
    wht_mutate_pod(q("{'metadata':{'annotations':{'kccl.io/group':'g','kccl.io/world-size':'2',"
                     "'kccl.io/rank':'1'},'labels':{'kccl.io/rank':'0'}}," APP_SPEC "}"),
                   &r);
    assert_false(wht_allowed(&r));
    assert_non_null(strstr(wht_message(&r), "label kccl.io/rank is \"0\""));
    wht_free(&r);
    /* equal labels are fine and are not added again */
    wht_mutate_pod(
        q("{'metadata':{'annotations':{'kccl.io/group':'g','kccl.io/world-size':'2',"
          "'kccl.io/rank':'1'},'labels':{'kccl.io/rank':'1','kccl.io/group':'g'}}," APP_SPEC "}"),
        &r);
    assert_true(wht_allowed(&r));
    const cJSON *op;
    int label_ops = 0;
    cJSON_ArrayForEach(op, r.patch)
    {
        label_ops += strstr(wht_str(op, "path"), "/metadata/labels") != NULL;
    }
    assert_int_equal(label_ops, 0);
    wht_free(&r);
}

static void test_message_quotes_are_sanitised(void **state)
{
    wht_result_t r;
    wht_mutate_pod(q("{'metadata':{'annotations':{'kccl.io/group':'g','kccl.io/world-size':"
                     "'\\u0001\\\"\\n9999999999999999999999999999999999999999999999999999',"
                     "'kccl.io/rank':'0'}}," APP_SPEC "}"),
                   &r);
    assert_false(wht_allowed(&r));
    const char *m = wht_message(&r);
    for (const char *p = m; *p; p++)
        assert_true(*p >= 0x20 && *p < 0x7f);
    assert_non_null(strstr(m, "..."));
    wht_free(&r);
}

static void test_not_a_pod_create(void **state)
{
    static const char *const reviews[] = {
        /* UPDATE of a kccl pod: not ours to change */
        "{'apiVersion':'admission.k8s.io/v1','kind':'AdmissionReview','request':{'uid':'u1',"
        "'kind':{'kind':'Pod'},'operation':'UPDATE','object':{'metadata':{'annotations':"
        "{'kccl.io/group':'g'}},'spec':{}}}}",
        /* a Deployment */
        "{'apiVersion':'admission.k8s.io/v1','kind':'AdmissionReview','request':{'uid':'u1',"
        "'kind':{'kind':'Deployment'},'operation':'CREATE','object':{'metadata':{'annotations':"
        "{'kccl.io/group':'g'}}}}}",
        /* pods/ephemeralcontainers subresource */
        "{'apiVersion':'admission.k8s.io/v1','kind':'AdmissionReview','request':{'uid':'u1',"
        "'kind':{'kind':'Pod'},'subResource':'ephemeralcontainers','operation':'CREATE',"
        "'object':{'metadata':{'annotations':{'kccl.io/group':'g'}}}}}",
    };
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(reviews); i++) {
        const char *text = q(reviews[i]);
        wht_result_t r;
        wht_mutate_raw(text, strlen(text), &r);
        assert_int_equal(r.http, 200);
        assert_true(wht_allowed(&r));
        assert_null(cJSON_GetObjectItemCaseSensitive(r.response, "patch"));
        assert_string_equal(wht_str(r.response, "uid"), "u1");
        assert_int_equal(r.out.kind, WH_OUT_IGNORED);
        wht_free(&r);
    }
    /* a pod CREATE without a spec cannot be injected: refused, not crashed */
    const char *text = q("{'apiVersion':'admission.k8s.io/v1','kind':'AdmissionReview','request':"
                         "{'uid':'u2','kind':{'kind':'Pod'},'operation':'CREATE','object':"
                         "{'metadata':{'annotations':{'kccl.io/group':'g','kccl.io/world-size':"
                         "'1','kccl.io/rank':'0'}}}}}");
    wht_result_t r;
    wht_mutate_raw(text, strlen(text), &r);
    assert_int_equal(r.http, 200);
    assert_false(wht_allowed(&r));
    assert_non_null(strstr(wht_message(&r), "no spec"));
    wht_free(&r);
}

static void test_garbage_bodies(void **state)
{
    static const char *const bodies[] = {
        "",
        "not json",
        "[]",
        "{}",
        "null",
        "{'apiVersion':'admission.k8s.io/v1beta1','request':{'uid':'u'}}",
        "{'apiVersion':'admission.k8s.io/v1','request':{}}",
        "{'apiVersion':'admission.k8s.io/v1','request':{'uid':7}}",
        "{'apiVersion':'admission.k8s.io/v1','request':'x'}",
        "{'apiVersion':'admission.k8s.io/v1','request':{'uid':''}}",
        "{'apiVersion':'admission.k8s.io/v1','request':{'uid':'u'",
    };
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(bodies); i++) {
        const char *text = q(bodies[i]);
        char *answer = NULL;
        wh_outcome_t out;
        int http = wh_mutate(text, strlen(text), &wht_cfg, &answer, &out);
        if (http != 400)
            fail_msg("body %zu (%s): HTTP %d", i, text, http);
        assert_non_null(answer);
        assert_int_equal(out.kind, WH_OUT_BAD_REQUEST);
        free(answer);
    }
    /* deeply nested and huge inputs: a clean 400, no stack overflow, no quadratic blow-up */
    size_t n = 1 << 20;
    char *deep = malloc(n);
    memset(deep, '[', n);
    char *answer = NULL;
    wh_outcome_t out;
    assert_int_equal(wh_mutate(deep, n, &wht_cfg, &answer, &out), 400);
    free(answer);
    /* binary garbage with NULs inside the length */
    for (size_t i = 0; i < n; i++)
        deep[i] = (char)(i * 7919 % 251);
    assert_int_equal(wh_mutate(deep, n, &wht_cfg, &answer, &out), 400);
    free(answer);
    free(deep);
}

static void test_huge_pod_is_answered(void **state)
{
    /* a pod with 2000 containers: every one gets env and mounts; the answer stays valid */
    size_t cap = 1 << 20, len = 0;
    char *pod = malloc(cap);
    len += (size_t)snprintf(pod, cap,
                            "{'metadata':{'annotations':{'kccl.io/group':'big',"
                            "'kccl.io/world-size':'1','kccl.io/rank':'0'}},'spec':"
                            "{'containers':[");
    for (int i = 0; i < 2000; i++)
        len +=
            (size_t)snprintf(pod + len, cap - len, "%s{'name':'c%d','image':'i'}", i ? "," : "", i);
    snprintf(pod + len, cap - len, "]}}");
    for (char *p = pod; *p; p++)
        *p = *p == '\'' ? '"' : *p;
    wht_result_t r;
    wht_mutate_pod(pod, &r);
    free(pod);
    assert_true(wht_allowed(&r));
    assert_string_equal(wht_str(r.pod, "spec.containers.1999.volumeMounts.1.name"), "kccl-secret");
    wht_free(&r);
}

static void test_helpers(void **state)
{
    char out[64];
    assert_int_equal(wh_patch_escape("kccl.io/group", out, sizeof(out)), 0);
    assert_string_equal(out, "kccl.io~1group");
    assert_int_equal(wh_patch_escape("a~b/c", out, sizeof(out)), 0);
    assert_string_equal(out, "a~0b~1c");
    assert_int_equal(wh_patch_escape("abc", out, 3), -1);
    static const char *const b64[][2] = {
        {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < KCCL_TEST_ARRAY_LEN(b64); i++) {
        char *e = wh_base64((const unsigned char *)b64[i][0], strlen(b64[i][0]));
        assert_string_equal(e, b64[i][1]);
        free(e);
    }
    assert_true(wh_valid_group("a.b-c9"));
    assert_false(wh_valid_group("a..b"));
    assert_false(wh_valid_group("A"));
    assert_false(wh_valid_group("a_b"));
    assert_false(wh_valid_group("a-"));
    long v;
    assert_int_equal(wh_parse_long("0", 0, 5, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(wh_parse_long("+1", 0, 5, &v), -1);
    assert_int_equal(wh_parse_long("6", 0, 5, &v), -1);
    assert_int_equal(wh_parse_long("99999999999999999999999", 0, 5, &v), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_annotations_is_left_alone),
        cmocka_unit_test(test_plain_pod),
        cmocka_unit_test(test_indexed_job_pod),
        cmocka_unit_test(test_statefulset_pod),
        cmocka_unit_test(test_existing_arrays_are_appended),
        cmocka_unit_test(test_service_account_default_is_replaced),
        cmocka_unit_test(test_no_token_warns),
        cmocka_unit_test(test_already_injected_by_hand),
        cmocka_unit_test(test_bad_annotations),
        cmocka_unit_test(test_conflicting_labels),
        cmocka_unit_test(test_message_quotes_are_sanitised),
        cmocka_unit_test(test_not_a_pod_create),
        cmocka_unit_test(test_garbage_bodies),
        cmocka_unit_test(test_huge_pod_is_answered),
        cmocka_unit_test(test_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
