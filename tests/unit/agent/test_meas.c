/* Tests of agent/collectors/meas.c: field lists, and the rules every rate
 * follows (no value rather than a made-up one). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pt/time.h"

#include "agent_test.h"

static void test_fields(void **state)
{
    struct agent_meas m;
    agent_meas_init(&m, "memory");
    assert_true(pt_str_eq(m.m.name, "memory"));
    assert_int_equal(m.m.ntags, 0);
    agent_meas_uint(&m, "mem_total", 42);
    agent_meas_float(&m, "mem_utilization", 12.5);
    agent_meas_float(&m, "swap_utilization", NAN); /* dropped, never sent */
    agent_meas_float(&m, "swap_in", INFINITY);
    assert_int_equal(m.m.nfields, 2);
    assert_ptr_equal(m.m.fields, m.f);
    assert_field_uint(&m.m, "mem_total", 42);
    assert_field_float(&m.m, "mem_utilization", 12.5);
    assert_null(agent_meas_find(&m.m, "swap_utilization"));
}

static void test_capacity(void **state)
{
    struct agent_meas m;
    agent_meas_init(&m, "cpu");
    for (int i = 0; i < AGENT_MEAS_MAX_FIELDS + 5; i++) agent_meas_uint(&m, "x", (uint64_t)i);
    assert_int_equal(m.m.nfields, AGENT_MEAS_MAX_FIELDS);
}

static void test_rates(void **state)
{
    struct agent_meas m;
    agent_meas_init(&m, "memory");
    agent_meas_rate(&m, "page_in", 100, 350, 500 * PT_NS_PER_MS); /* 250 in 0.5 s */
    agent_meas_rate(&m, "page_out", 100, 100, PT_NS_PER_SEC);     /* a true 0 */
    agent_meas_rate(&m, "swap_in", 100, 99, PT_NS_PER_SEC);       /* backwards: none */
    agent_meas_rate(&m, "swap_out", 100, 200, 0);                 /* no time: none */
    agent_meas_rate(&m, "contexts", 0, UINT64_MAX, PT_NS_PER_SEC);
    assert_field_float(&m.m, "page_in", 500.0);
    assert_field_float(&m.m, "page_out", 0.0);
    assert_no_field(&m.m, "swap_in");
    assert_no_field(&m.m, "swap_out");
    assert_field_float(&m.m, "contexts", (double)UINT64_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_capacity),
        cmocka_unit_test(test_rates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
