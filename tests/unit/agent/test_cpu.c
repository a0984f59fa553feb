/* Tests of the cpu measurement: agent/platform/linux/cpu.c reading the
 * fixtures of tests/data/linux, agent/collectors/cpu.c turning two readings
 * into percentages and rates. Expected values are worked out from the
 * fixture numbers (tests/data/linux/README.md). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pt/err.h"
#include "pt/time.h"

#include "agent_test.h"
#include "collectors/cpu.h"

#define T0_NS (5 * PT_NS_PER_SEC) /* monotonic times of the two readings */
#define T1_NS (7 * PT_NS_PER_SEC)

static void read_ok(const char *name, const char *t, struct agent_cpu_raw *raw)
{
    char root[512], err[512] = "";
    int rc = agent_plat_cpu_read(fixture(root, sizeof root, name, t), raw, err, sizeof err);
    if (rc) fail_msg("%s/%s: %d %s", name, t, rc, err);
}

/* Reads <name>/t0 and <name>/t1 2 s apart into first and second. */
static void two_readings(const char *name, struct agent_meas *first, struct agent_meas *second)
{
    struct agent_cpu c;
    struct agent_cpu_raw raw;
    agent_cpu_init(&c);
    read_ok(name, "t0", &raw);
    agent_cpu_update(&c, &raw, T0_NS, first);
    read_ok(name, "t1", &raw);
    agent_cpu_update(&c, &raw, T1_NS, second);
}

static const char *const percent_fields[] = {
    "cpu_utilization", "cpu_user",  "cpu_nice",  "cpu_system", "cpu_idle",      "cpu_iowait",
    "cpu_hintr",       "cpu_sintr", "cpu_steal", "cpu_guest",  "cpu_guest_nice"};

static void test_read_base(void **state)
{
    struct agent_cpu_raw r;
    read_ok("base", "t0", &r);
    /* cpu  2266 0 2666 86269 982 0 56 17 0 0 */
    assert_int_equal(r.user, 2266);
    assert_int_equal(r.nice, 0);
    assert_int_equal(r.system, 2666);
    assert_int_equal(r.idle, 86269);
    assert_int_equal(r.iowait, 982);
    assert_int_equal(r.irq, 0);
    assert_int_equal(r.softirq, 56);
    assert_int_equal(r.steal, 17);
    assert_int_equal(r.guest, 0);
    assert_int_equal(r.guest_nice, 0);
    assert_int_equal(r.ctxt, 384931);
    assert_int_equal(r.ncpu, 2);
    assert_int_equal(r.procs_running, 1);
    assert_int_equal(r.procs_total, 85); /* 0.01 0.06 0.04 1/85 5403 */
    assert_true(r.load1 == 0.01 && r.load5 == 0.06 && r.load15 == 0.04);
    assert_int_equal(r.uptime_s, 463); /* 463.89 */

    read_ok("base", "t1", &r);
    /* cpu  2316 10 2686 86375 987 2 59 21 20 4 */
    assert_int_equal(r.user, 2316);
    assert_int_equal(r.nice, 10);
    assert_int_equal(r.guest, 20);
    assert_int_equal(r.guest_nice, 4);
    assert_int_equal(r.ctxt, 387932);
}

static void test_first_reading_has_no_rates(void **state)
{
    struct agent_cpu c;
    struct agent_cpu_raw raw;
    struct agent_meas m;
    agent_cpu_init(&c);
    read_ok("base", "t0", &raw);
    agent_cpu_update(&c, &raw, T0_NS, &m);

    assert_true(pt_str_eq(m.m.name, "cpu"));
    assert_int_equal(m.m.nfields, 7); /* the gauges only */
    for (size_t i = 0; i < sizeof percent_fields / sizeof *percent_fields; i++)
        assert_no_field(&m.m, percent_fields[i]);
    assert_no_field(&m.m, "contexts");
    assert_field_uint(&m.m, "cpu_num", 2);
    assert_field_uint(&m.m, "uptime", 463);
    assert_field_uint(&m.m, "proc_run", 1);
    assert_field_uint(&m.m, "proc_total", 85);
    assert_field_float(&m.m, "load_avg_1m", 0.01);
    assert_field_float(&m.m, "load_avg_5m", 0.06);
    assert_field_float(&m.m, "load_avg_15m", 0.04);
    assert_catalog_types(&m.m);
}

static void test_two_readings(void **state)
{
    struct agent_meas first, m;
    two_readings("base", &first, &m);

    /* 200 ticks: user 50 (guest 20), nice 10 (guest_nice 4), system 20,
     * idle 106, iowait 5, irq 2, softirq 3, steal 4. */
    assert_int_equal(m.m.nfields, 19);
    assert_field_float(&m.m, "cpu_utilization", 44.5); /* 100 - 53 - 2.5 */
    assert_field_float(&m.m, "cpu_user", 15.0);        /* (50 - 20) / 200 */
    assert_field_float(&m.m, "cpu_nice", 3.0);         /* (10 - 4) / 200 */
    assert_field_float(&m.m, "cpu_system", 10.0);      /* 20 / 200 */
    assert_field_float(&m.m, "cpu_idle", 53.0);        /* 106 / 200 */
    assert_field_float(&m.m, "cpu_iowait", 2.5);       /* 5 / 200 */
    assert_field_float(&m.m, "cpu_hintr", 1.0);        /* 2 / 200 */
    assert_field_float(&m.m, "cpu_sintr", 1.5);        /* 3 / 200 */
    assert_field_float(&m.m, "cpu_steal", 2.0);        /* 4 / 200 */
    assert_field_float(&m.m, "cpu_guest", 10.0);       /* 20 / 200 */
    assert_field_float(&m.m, "cpu_guest_nice", 2.0);   /* 4 / 200 */
    assert_field_uint(&m.m, "cpu_num", 2);
    assert_field_uint(&m.m, "uptime", 465);       /* 465.90 */
    assert_field_float(&m.m, "contexts", 1500.5); /* 3001 in 2 s */
    assert_field_uint(&m.m, "proc_run", 3);
    assert_field_uint(&m.m, "proc_total", 87);
    assert_field_float(&m.m, "load_avg_1m", 0.52);
    assert_field_float(&m.m, "load_avg_5m", 0.31);
    assert_field_float(&m.m, "load_avg_15m", 0.12);
    assert_catalog_types(&m.m);

    /* The states (all but utilization) add up to 100. */
    double sum = 0;
    for (size_t i = 1; i < sizeof percent_fields / sizeof *percent_fields; i++)
        sum += agent_meas_find(&m.m, percent_fields[i])->v.f;
    assert_true(fabs(sum - 100.0) < 1e-9);
}

static void test_counter_backwards(void **state)
{
    struct agent_meas first, m;
    /* user 2266 -> 2200 and ctxt 384931 -> 300000. */
    two_readings("backwards", &first, &m);
    for (size_t i = 0; i < sizeof percent_fields / sizeof *percent_fields; i++)
        assert_no_field(&m.m, percent_fields[i]);
    assert_no_field(&m.m, "contexts");
    assert_int_equal(m.m.nfields, 7);
    assert_field_uint(&m.m, "cpu_num", 2);
    assert_field_uint(&m.m, "proc_total", 87);
}

static void test_iowait_backwards(void **state)
{
    struct agent_meas first, m;
    /* As base, but iowait 982 -> 980 counts as 0: 195 ticks in all. */
    two_readings("iowait-back", &first, &m);
    assert_int_equal(m.m.nfields, 19);
    assert_field_float(&m.m, "cpu_iowait", 0.0);
    assert_field_float(&m.m, "cpu_idle", 106 * 100.0 / 195);
    assert_field_float(&m.m, "cpu_user", 30 * 100.0 / 195);
    assert_field_float(&m.m, "cpu_utilization", (195 - 106) * 100.0 / 195);
    assert_field_float(&m.m, "contexts", 1500.5);
}

static void test_no_tick_no_time(void **state)
{
    struct agent_cpu c;
    struct agent_cpu_raw raw;
    struct agent_meas m;
    agent_cpu_init(&c);
    read_ok("base", "t0", &raw);
    agent_cpu_update(&c, &raw, T0_NS, &m);
    /* The same counters a second later: no tick elapsed, so no basis for
     * percentages; no context switch is a true rate of 0. */
    agent_cpu_update(&c, &raw, T0_NS + PT_NS_PER_SEC, &m);
    assert_no_field(&m.m, "cpu_utilization");
    assert_field_float(&m.m, "contexts", 0.0);
    /* And no time at all between readings: no rate either. */
    agent_cpu_update(&c, &raw, T0_NS + PT_NS_PER_SEC, &m);
    assert_no_field(&m.m, "contexts");
}

static void test_fully_busy_is_100(void **state)
{
    struct agent_cpu c;
    struct agent_cpu_raw raw;
    struct agent_meas m;
    agent_cpu_init(&c);
    read_ok("base", "t0", &raw);
    agent_cpu_update(&c, &raw, T0_NS, &m);
    /* Three ticks, all of them user: exactly 100, not 100.00000000000001
     * (which 100.0 / 3 * 3 would give), and exactly 0 idle. */
    raw.user += 3;
    agent_cpu_update(&c, &raw, T0_NS + PT_NS_PER_SEC / 10, &m);
    const struct pt_field *u = agent_meas_find(&m.m, "cpu_utilization");
    assert_non_null(u);
    assert_true(u->v.f == 100.0);
    assert_true(agent_meas_find(&m.m, "cpu_user")->v.f == 100.0);
    assert_true(agent_meas_find(&m.m, "cpu_idle")->v.f == 0.0);
}

static void test_old_kernel(void **state)
{
    struct agent_cpu_raw r;
    read_ok("old-kernel", "t0", &r); /* cpu  2266 0 2666 86269 982 0 56 */
    assert_int_equal(r.user, 2266);
    assert_int_equal(r.iowait, 982);
    assert_int_equal(r.softirq, 56);
    assert_int_equal(r.steal, 0);
    assert_int_equal(r.guest, 0);
    assert_int_equal(r.guest_nice, 0);
    assert_int_equal(r.ncpu, 2);
}

static void test_big_host(void **state)
{
    /* 96 CPUs and a 30 kB intr line before ctxt. */
    struct agent_cpu_raw r;
    read_ok("bighost", "t0", &r);
    assert_int_equal(r.ncpu, 96);
    assert_int_equal(r.ctxt, 384931);
    assert_int_equal(r.procs_running, 1);
}

static void read_percpu(const char *name, const char *t, struct agent_percpu_raw *per)
{
    char root[512], err[512] = "";
    struct agent_cpu_raw r;
    int rc =
        agent_plat_cpu_read_percpu(fixture(root, sizeof root, name, t), &r, per, err, sizeof err);
    if (rc) fail_msg("%s/%s: %d %s", name, t, rc, err);
}

static void test_per_cpu(void **state)
{
    static struct agent_percpu p;
    static struct agent_percpu_raw raw;
    agent_percpu_init(&p);
    read_percpu("base", "t0", &raw);
    assert_int_equal(raw.n, 2);
    assert_int_equal(raw.id[1], 1);
    assert_int_equal(raw.t[1].user, 1516);
    assert_int_equal(raw.t[1].iowait, 960);
    /* First reading: a tagged series per CPU, no percentages yet. */
    assert_int_equal(agent_percpu_update(&p, &raw), 2);
    const struct pt_meas *cpu0 = meas_tagged(p.out, p.nout, "cpu", "cpu0");
    assert_non_null(cpu0);
    assert_true(pt_str_eq(cpu0->name, "cpu"));
    assert_int_equal(cpu0->nfields, 0);

    read_percpu("base", "t1", &raw);
    assert_int_equal(agent_percpu_update(&p, &raw), 2);
    /* cpu0: user +25 (guest +10), nice +5 (guest_nice +2), system +10,
     * idle +53, iowait +2, irq +1, softirq +1, steal +2: 99 ticks. */
    cpu0 = meas_tagged(p.out, p.nout, "cpu", "cpu0");
    assert_int_equal(cpu0->nfields, 11);
    assert_field_float(cpu0, "cpu_utilization", 44.0 * 100 / 99);
    assert_field_float(cpu0, "cpu_user", 15.0 * 100 / 99);
    assert_field_float(cpu0, "cpu_nice", 3.0 * 100 / 99);
    assert_field_float(cpu0, "cpu_idle", 53.0 * 100 / 99);
    assert_field_float(cpu0, "cpu_guest", 10.0 * 100 / 99);
    assert_catalog_types(cpu0);
    /* cpu1: the same but iowait +4 and softirq +2: 102 ticks. */
    const struct pt_meas *cpu1 = meas_tagged(p.out, p.nout, "cpu", "cpu1");
    assert_field_float(cpu1, "cpu_utilization", 45.0 * 100 / 102);
    assert_field_float(cpu1, "cpu_iowait", 4.0 * 100 / 102);
    assert_field_float(cpu1, "cpu_sintr", 2.0 * 100 / 102);

    /* cpu1 goes offline, then comes back: each CPU is compared with
     * itself, and a CPU back online has no percentages for its first
     * interval. */
    static struct agent_percpu_raw gone;
    gone = raw;
    gone.n = 1;
    gone.t[0].idle += 100;
    assert_int_equal(agent_percpu_update(&p, &gone), 1);
    assert_field_float(&p.out[0], "cpu_idle", 100.0);
    raw.t[0].idle += 200;
    raw.t[1].user += 100;
    assert_int_equal(agent_percpu_update(&p, &raw), 2);
    assert_int_equal(meas_tagged(p.out, p.nout, "cpu", "cpu1")->nfields, 0);
    assert_field_float(meas_tagged(p.out, p.nout, "cpu", "cpu0"), "cpu_idle", 100.0);
}

static void test_per_cpu_capacity(void **state)
{
    /* 96 CPUs: 64 series, 32 counted as dropped. */
    static struct agent_percpu_raw raw;
    read_percpu("bighost", "t0", &raw);
    assert_int_equal(raw.n, AGENT_MAX_OBJECTS);
    assert_int_equal(raw.over, 96 - AGENT_MAX_OBJECTS);
    assert_int_equal(raw.id[63], 63);
}

static void expect_error(const char *name, int want_rc, const char *want_err)
{
    char root[512], err[512] = "";
    struct agent_cpu_raw r;
    fixture(root, sizeof root, name, "t0");
    int rc = agent_plat_cpu_read(root, &r, err, sizeof err);
    if (rc != want_rc || !strstr(err, want_err) || strncmp(err, root, strlen(root)) != 0)
        fail_msg("%s: got %d \"%s\", expected %d and \"%s\"", name, rc, err, want_rc, want_err);
}

static void test_errors(void **state)
{
    expect_error("missing", -ENOENT, "/stat: cannot open: No such file or directory");
    expect_error("garbled", PT_E_MALFORMED, "/stat:1: column 2 of \"cpu\" is not a number");
    expect_error("garbled2", PT_E_MALFORMED, "/loadavg:1: expected three load averages");
    expect_error("garbled3", PT_E_MALFORMED, "/uptime: empty");
    expect_error("truncated", PT_E_MALFORMED, "/stat: no \"ctxt\" line");
    expect_error("truncated2", PT_E_MALFORMED,
                 "/loadavg:1: expected running/total tasks after the load averages");

    /* A short error buffer gets a cut message, never an overrun. */
    char err[32];
    struct agent_cpu_raw r;
    assert_int_equal(agent_plat_cpu_read("/nonexistent", &r, err, sizeof err), -ENOENT);
    assert_string_equal(err, "/nonexistent/stat: cannot open:");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_base),         cmocka_unit_test(test_first_reading_has_no_rates),
        cmocka_unit_test(test_two_readings),      cmocka_unit_test(test_counter_backwards),
        cmocka_unit_test(test_iowait_backwards),  cmocka_unit_test(test_no_tick_no_time),
        cmocka_unit_test(test_fully_busy_is_100), cmocka_unit_test(test_old_kernel),
        cmocka_unit_test(test_big_host),          cmocka_unit_test(test_errors),
        cmocka_unit_test(test_per_cpu),           cmocka_unit_test(test_per_cpu_capacity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
