/* The per-series state machine on its own: every transition, `for`,
 * repeat, flapping and its release, with a clock the test moves. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "alert_int.h"
#include "pt/time.h"

#define S PT_NS_PER_SEC

static enum alert_emit step(struct alert_state *s, const struct alert_sm_conf *c,
                            enum alert_level want, int64_t t, enum alert_level *lv)
{
    return alert_state_step(s, c, want, t, lv);
}

static void test_ok_firing_resolved(void **st)
{
    (void)st;
    struct alert_state s = {0};
    struct alert_sm_conf c = {0};
    enum alert_level lv;
    assert_int_equal(step(&s, &c, ALERT_OK, 1 * S, &lv), EMIT_NONE);
    assert_string_equal(alert_state_name(&s), "ok");
    assert_int_equal(step(&s, &c, ALERT_WARNING, 2 * S, &lv), EMIT_FIRING);
    assert_int_equal(lv, ALERT_WARNING);
    assert_string_equal(alert_state_name(&s), "warning");
    assert_int_equal(s.starts_at, 2 * S);
    /* still warning: nothing new */
    assert_int_equal(step(&s, &c, ALERT_WARNING, 3 * S, &lv), EMIT_NONE);
    /* escalation keeps starts_at */
    assert_int_equal(step(&s, &c, ALERT_CRITICAL, 4 * S, &lv), EMIT_FIRING);
    assert_int_equal(lv, ALERT_CRITICAL);
    assert_int_equal(s.starts_at, 2 * S);
    /* de-escalation */
    assert_int_equal(step(&s, &c, ALERT_WARNING, 5 * S, &lv), EMIT_FIRING);
    assert_int_equal(lv, ALERT_WARNING);
    assert_int_equal(step(&s, &c, ALERT_OK, 6 * S, &lv), EMIT_RESOLVED);
    assert_int_equal(lv, ALERT_WARNING); /* the level it was at */
    assert_int_equal(s.ends_at, 6 * S);
    assert_false(alert_state_active(&s));
}

static void test_for_pending(void **st)
{
    (void)st;
    struct alert_state s = {0};
    struct alert_sm_conf c = {.for_ns = 10 * S};
    enum alert_level lv;
    assert_int_equal(step(&s, &c, ALERT_CRITICAL, 0, &lv), EMIT_NONE);
    assert_string_equal(alert_state_name(&s), "pending");
    assert_true(alert_state_active(&s));
    /* back to ok before `for`: pending ends silently */
    assert_int_equal(step(&s, &c, ALERT_OK, 5 * S, &lv), EMIT_NONE);
    assert_string_equal(alert_state_name(&s), "ok");
    /* pending again; a value at 9 s is not enough, the timer at 20 s fires */
    assert_int_equal(step(&s, &c, ALERT_CRITICAL, 10 * S, &lv), EMIT_NONE);
    assert_int_equal(step(&s, &c, ALERT_CRITICAL, 19 * S, &lv), EMIT_NONE);
    assert_int_equal(alert_state_timer(&s, &c, 19 * S + S / 2, &lv), EMIT_NONE);
    assert_int_equal(alert_state_timer(&s, &c, 20 * S, &lv), EMIT_FIRING);
    assert_int_equal(lv, ALERT_CRITICAL);
    assert_int_equal(s.starts_at, 20 * S);
    /* a point at exactly `for` fires too */
    struct alert_state s2 = {0};
    assert_int_equal(step(&s2, &c, ALERT_WARNING, 0, &lv), EMIT_NONE);
    assert_int_equal(step(&s2, &c, ALERT_WARNING, 10 * S, &lv), EMIT_FIRING);
}

static void test_repeat(void **st)
{
    (void)st;
    struct alert_state s = {0};
    struct alert_sm_conf c = {.repeat_ns = 60 * S};
    enum alert_level lv;
    assert_int_equal(step(&s, &c, ALERT_WARNING, 0, &lv), EMIT_FIRING);
    assert_int_equal(alert_state_timer(&s, &c, 59 * S, &lv), EMIT_NONE);
    assert_int_equal(alert_state_timer(&s, &c, 60 * S, &lv), EMIT_FIRING);
    assert_int_equal(alert_state_timer(&s, &c, 61 * S, &lv), EMIT_NONE);
    assert_int_equal(step(&s, &c, ALERT_WARNING, 120 * S, &lv), EMIT_FIRING); /* due at a point */
    assert_int_equal(step(&s, &c, ALERT_OK, 130 * S, &lv), EMIT_RESOLVED);
    assert_int_equal(alert_state_timer(&s, &c, 500 * S, &lv), EMIT_NONE); /* ok: no repeat */
}

static void test_flapping(void **st)
{
    (void)st;
    struct alert_state s = {0};
    struct alert_sm_conf c = {.flap_changes = 4, .flap_window_ns = 60 * S};
    enum alert_level lv;
    /* changes 1..4 are reported */
    assert_int_equal(step(&s, &c, ALERT_WARNING, 1 * S, &lv), EMIT_FIRING);
    assert_int_equal(step(&s, &c, ALERT_OK, 2 * S, &lv), EMIT_RESOLVED);
    assert_int_equal(step(&s, &c, ALERT_WARNING, 3 * S, &lv), EMIT_FIRING);
    assert_int_equal(step(&s, &c, ALERT_OK, 4 * S, &lv), EMIT_RESOLVED);
    /* the 5th within the window: flapping, reported once */
    assert_int_equal(step(&s, &c, ALERT_WARNING, 5 * S, &lv), EMIT_FLAPPING);
    assert_string_equal(alert_state_name(&s), "flapping");
    /* held: nothing while it keeps changing */
    assert_int_equal(step(&s, &c, ALERT_OK, 6 * S, &lv), EMIT_NONE);
    assert_int_equal(step(&s, &c, ALERT_CRITICAL, 7 * S, &lv), EMIT_NONE);
    assert_int_equal(alert_state_timer(&s, &c, 30 * S, &lv), EMIT_NONE);
    /* quiet for a whole window: released, saying where it ended (critical) */
    assert_int_equal(alert_state_timer(&s, &c, 67 * S, &lv), EMIT_FIRING);
    assert_int_equal(lv, ALERT_CRITICAL);
    assert_false(s.flapping);
    /* released into ok instead: a resolved */
    struct alert_state s2 = {0};
    for (int i = 0; i < 5; i++) step(&s2, &c, i % 2 ? ALERT_OK : ALERT_WARNING, i * S, &lv);
    assert_true(s2.flapping);
    step(&s2, &c, ALERT_OK, 5 * S, &lv);
    assert_int_equal(alert_state_timer(&s2, &c, 65 * S, &lv), EMIT_RESOLVED);
    assert_false(alert_state_active(&s2));
    /* changes spread wider than the window never flap */
    struct alert_state s3 = {0};
    for (int i = 0; i < 20; i++)
        assert_int_not_equal(step(&s3, &c, i % 2 ? ALERT_OK : ALERT_WARNING, i * 20 * S, &lv),
                             EMIT_FLAPPING);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ok_firing_resolved),
        cmocka_unit_test(test_for_pending),
        cmocka_unit_test(test_repeat),
        cmocka_unit_test(test_flapping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
