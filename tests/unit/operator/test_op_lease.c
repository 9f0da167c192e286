/*
 * test_op_lease.c - operator/op_lease.c's decisions on a fake clock: create
 * when missing, renew while holding, wait while another holder renews, take
 * over a Lease unchanged for a lease duration (timed on our own clock) or
 * released (empty holder), lose leadership after the renew deadline, and the
 * Lease's JSON form.
 */
#include "kccl_test.h"
#include "op_lease.h"

static op_lease_record_t lease(const char *holder, const char *renew, int transitions)
{
    op_lease_record_t r;
    memset(&r, 0, sizeof(r));
    r.exists = 1;
    snprintf(r.holder, sizeof(r.holder), "%s", holder);
    snprintf(r.renew_time, sizeof(r.renew_time), "%s", renew);
    snprintf(r.acquire_time, sizeof(r.acquire_time), "%s", "2026-01-01T00:00:00.000000Z");
    snprintf(r.resource_version, sizeof(r.resource_version), "%s", "42");
    r.duration_s = 15;
    r.transitions = transitions;
    return r;
}

static void test_create_and_renew(void **state)
{
    (void)state;
    op_lease_state_t s;
    op_lease_state_init(&s, "me");
    op_lease_record_t none = {0}, w;
    assert_int_equal(op_lease_decide(&s, &none, 0, "T0", &w), OP_LEASE_CREATE);
    assert_string_equal(w.holder, "me");
    assert_int_equal(w.duration_s, 15);
    assert_string_equal(w.acquire_time, "T0");
    assert_false(op_lease_is_leader(&s, 0));
    op_lease_written(&s, 1, 0);
    assert_true(op_lease_is_leader(&s, 0));
    /* our own Lease: renew, keeping acquireTime and transitions, with its resourceVersion */
    op_lease_record_t mine = lease("me", "T0", 3);
    assert_int_equal(op_lease_decide(&s, &mine, 2000, "T2", &w), OP_LEASE_UPDATE);
    assert_string_equal(w.renew_time, "T2");
    assert_string_equal(w.acquire_time, mine.acquire_time);
    assert_int_equal(w.transitions, 3);
    assert_string_equal(w.resource_version, "42");
    op_lease_written(&s, 1, 2000);
    /* renewals fail (apiserver away): still leader until the renew deadline (10 s) */
    op_lease_written(&s, 0, 4000);
    assert_true(op_lease_is_leader(&s, 11999));
    assert_false(op_lease_is_leader(&s, 12000));
}

static void test_standby_takes_over_expired(void **state)
{
    (void)state;
    op_lease_state_t s;
    op_lease_state_init(&s, "b");
    op_lease_record_t w, other = lease("a", "R1", 0);
    int64_t t = 100000; /* our clock has nothing to do with the timestamps in the Lease */
    assert_int_equal(op_lease_decide(&s, &other, t, "X", &w), OP_LEASE_WAIT);
    /* the holder renews every 2 s: we keep waiting, however long */
    for (int i = 0; i < 20; i++) {
        char renew[16];
        snprintf(renew, sizeof(renew), "R%d", i + 2);
        other = lease("a", renew, 0);
        t += 2000;
        assert_int_equal(op_lease_decide(&s, &other, t, "X", &w), OP_LEASE_WAIT);
    }
    /* it stops renewing: we wait one lease duration from when we saw the last change */
    int64_t changed = t;
    assert_int_equal(op_lease_decide(&s, &other, changed + 14999, "X", &w), OP_LEASE_WAIT);
    assert_int_equal(op_lease_decide(&s, &other, changed + 15000, "NOW", &w), OP_LEASE_UPDATE);
    assert_string_equal(w.holder, "b");
    assert_int_equal(w.transitions, 1);
    assert_string_equal(w.acquire_time, "NOW");
    assert_string_equal(w.resource_version, "42");
    /* a conflicting write (the other won the race) leaves us a standby */
    op_lease_written(&s, 0, changed + 15000);
    assert_false(op_lease_is_leader(&s, changed + 15000));
}

static void test_released_lease_is_taken_at_once(void **state)
{
    (void)state;
    op_lease_state_t s;
    op_lease_state_init(&s, "b");
    op_lease_record_t w, released = lease("", "R9", 4);
    released.duration_s = 1;
    assert_int_equal(op_lease_decide(&s, &released, 5, "NOW", &w), OP_LEASE_UPDATE);
    assert_int_equal(w.transitions, 5);
    op_lease_written(&s, 1, 5);
    assert_true(op_lease_is_leader(&s, 6));
}

static void test_leader_sees_other_holder(void **state)
{
    (void)state;
    op_lease_state_t s;
    op_lease_state_init(&s, "a");
    op_lease_record_t w, none = {0};
    op_lease_decide(&s, &none, 0, "T", &w);
    op_lease_written(&s, 1, 0);
    assert_true(op_lease_is_leader(&s, 1));
    op_lease_record_t stolen = lease("b", "Rb", 1);
    assert_int_equal(op_lease_decide(&s, &stolen, 1000, "T", &w), OP_LEASE_WAIT);
    assert_false(op_lease_is_leader(&s, 1000));
}

static void test_json(void **state)
{
    (void)state;
    op_lease_record_t r = lease("pod-1", "2026-01-01T00:00:02.000000Z", 2), back;
    cJSON *j = op_lease_to_json(&r, "kccl-system");
    assert_non_null(j);
    char *text = cJSON_PrintUnformatted(j);
    assert_non_null(strstr(text, "\"holderIdentity\":\"pod-1\""));
    assert_non_null(strstr(text, "\"name\":\"kccl-operator\""));
    assert_non_null(strstr(text, "\"namespace\":\"kccl-system\""));
    assert_non_null(strstr(text, "\"apiVersion\":\"coordination.k8s.io/v1\""));
    op_lease_from_json(j, &back);
    assert_string_equal(back.holder, "pod-1");
    assert_string_equal(back.renew_time, r.renew_time);
    assert_int_equal(back.duration_s, 15);
    assert_int_equal(back.transitions, 2);
    assert_string_equal(back.resource_version, "42");
    free(text);
    cJSON_Delete(j);
    char id[OP_LEASE_ID_MAX];
    setenv("POD_NAME", "kccl-operator-abc", 1);
    op_lease_default_identity(id, sizeof(id));
    assert_string_equal(id, "kccl-operator-abc");
    unsetenv("POD_NAME");
    op_lease_default_identity(id, sizeof(id));
    char pid[32];
    snprintf(pid, sizeof(pid), "_%d", (int)getpid());
    assert_non_null(strstr(id, pid));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_and_renew),
        cmocka_unit_test(test_standby_takes_over_expired),
        cmocka_unit_test(test_released_lease_is_taken_at_once),
        cmocka_unit_test(test_leader_sees_other_holder),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
