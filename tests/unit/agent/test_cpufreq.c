/* Tests of the cpufreq measurement: agent/platform/linux/cpufreq.c reading
 * sysfs and /proc/cpuinfo fixtures, agent/collectors/cpufreq.c averaging. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "agent_test.h"
#include "collectors/cpufreq.h"

/* Reads fixture name/t and builds the measurement; returns whether there
 * is one. */
static int freq(const char *name, const char *t, struct agent_meas *m)
{
    char proc[512], sys[512], err[512] = "";
    struct agent_cpufreq_raw r;
    int rc =
        agent_plat_cpufreq_read(fixture(proc, sizeof proc, name, t),
                                fixture_in(sys, sizeof sys, name, t, "sys"), &r, err, sizeof err);
    if (rc) fail_msg("%s/%s: %d %s", name, t, rc, err);
    return agent_cpufreq_update(&r, m);
}

static void test_sysfs(void **state)
{
    /* scaling_cur_freq of cpu0 and cpu1 (kHz), not cpuinfo's 2596.134. */
    struct agent_meas m;
    assert_int_equal(freq("host", "t0", &m), 1);
    assert_true(pt_str_eq(m.m.name, "cpufreq"));
    assert_int_equal(m.m.nfields, 1);
    assert_field_float(&m.m, "cpu_speed", 2500.0); /* (2000000 + 3000000) / 2 / 1000 */
    assert_catalog_types(&m.m);
    assert_int_equal(freq("host", "t1", &m), 1);
    assert_field_float(&m.m, "cpu_speed", 2600.0);
}

static void test_cpuinfo_fallback(void **state)
{
    /* No sysfs: the "cpu MHz" lines. */
    struct agent_meas m;
    assert_int_equal(freq("container", "t0", &m), 1);
    assert_field_float(&m.m, "cpu_speed", 2050.5);
}

static void test_none(void **state)
{
    /* Neither source says a frequency (an ARM VM): no measurement, no
     * error. */
    struct agent_meas m;
    assert_int_equal(freq("nofreq", "t0", &m), 0);
    assert_int_equal(freq("missing", "t0", &m), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sysfs),
        cmocka_unit_test(test_cpuinfo_fallback),
        cmocka_unit_test(test_none),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
