/* Tests of the memory measurement: agent/platform/linux/memory.c reading the
 * fixtures, agent/collectors/memory.c computing used, utilisation and
 * paging rates. Sizes in the fixtures are kB; fields are bytes (x 1024). */
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
#include "collectors/memory.h"

#define KB(x) ((uint64_t)(x)*1024)
#define T0_NS (5 * PT_NS_PER_SEC)
#define T1_NS (7 * PT_NS_PER_SEC)

static void read_ok(const char *name, const char *t, struct agent_mem_raw *raw)
{
    char root[512], err[512] = "";
    int rc = agent_plat_mem_read(fixture(root, sizeof root, name, t), raw, err, sizeof err);
    if (rc) fail_msg("%s/%s: %d %s", name, t, rc, err);
}

static void two_readings(const char *name, struct agent_meas *first, struct agent_meas *second)
{
    struct agent_mem m;
    struct agent_mem_raw raw;
    agent_mem_init(&m);
    read_ok(name, "t0", &raw);
    agent_mem_update(&m, &raw, T0_NS, first);
    read_ok(name, "t1", &raw);
    agent_mem_update(&m, &raw, T1_NS, second);
}

static void test_read_base(void **state)
{
    struct agent_mem_raw r;
    read_ok("base", "t0", &r);
    assert_int_equal(r.total, KB(24684096));
    assert_int_equal(r.free, KB(24306436));
    assert_int_equal(r.available, KB(24324772));
    assert_int_equal(r.buffers, KB(3204));
    assert_int_equal(r.cached, KB(144168 + 144208)); /* Cached + SReclaimable */
    assert_int_equal(r.shared, KB(8788));
    assert_int_equal(r.swap_total, 0);
    assert_int_equal(r.swap_free, 0);
    assert_int_equal(r.page_in, 1558969);
    assert_int_equal(r.page_out, 462288);
    assert_int_equal(r.swap_in, 0);
    assert_int_equal(r.swap_out, 0);
}

static void test_base_no_swap(void **state)
{
    struct agent_meas m, m1;
    two_readings("base", &m, &m1);

    /* First reading: every size, no paging rate. */
    assert_true(pt_str_eq(m.m.name, "memory"));
    assert_int_equal(m.m.nfields, 12); /* 11 sizes and mem_available */
    assert_field_float(&m.m, "mem_utilization", (24684096.0 - 24324772) * 100 / 24684096);
    assert_field_uint(&m.m, "mem_total", KB(24684096));
    assert_field_uint(&m.m, "mem_used", KB(24684096 - 24324772));
    assert_field_uint(&m.m, "mem_free", KB(24306436));
    assert_field_uint(&m.m, "mem_shared", KB(8788));
    assert_field_uint(&m.m, "mem_buffers", KB(3204));
    assert_field_uint(&m.m, "mem_cached", KB(144168 + 144208));
    assert_field_uint(&m.m, "mem_available", KB(24324772));
    /* No swap: 0, not NaN. */
    assert_field_float(&m.m, "swap_utilization", 0.0);
    assert_field_uint(&m.m, "swap_total", 0);
    assert_field_uint(&m.m, "swap_used", 0);
    assert_field_uint(&m.m, "swap_free", 0);
    assert_no_field(&m.m, "page_in");
    assert_no_field(&m.m, "page_out");
    assert_no_field(&m.m, "swap_in");
    assert_no_field(&m.m, "swap_out");
    assert_catalog_types(&m.m);

    /* Second reading, 2 s later. */
    assert_int_equal(m1.m.nfields, 16);
    assert_field_float(&m1.m, "mem_utilization", (24684096.0 - 24324316) * 100 / 24684096);
    assert_field_uint(&m1.m, "mem_used", KB(24684096 - 24324316));
    assert_field_uint(&m1.m, "mem_free", KB(24305884));
    assert_field_uint(&m1.m, "mem_buffers", KB(3208));
    assert_field_uint(&m1.m, "mem_cached", KB(144320 + 144240));
    assert_field_float(&m1.m, "page_in", 2048.0); /* 4096 in 2 s */
    assert_field_float(&m1.m, "page_out", 500.0); /* 1000 in 2 s */
    assert_field_float(&m1.m, "swap_in", 0.0);    /* no change: a true 0 */
    assert_field_float(&m1.m, "swap_out", 0.0);
    assert_catalog_types(&m1.m);
}

static void test_swap(void **state)
{
    struct agent_meas m, m1;
    two_readings("swap", &m, &m1);

    assert_field_float(&m.m, "mem_utilization", 37.5); /* (4000000 - 2500000) / 4000000 */
    assert_field_uint(&m.m, "mem_total", KB(4000000));
    assert_field_uint(&m.m, "mem_used", KB(1500000));
    assert_field_uint(&m.m, "mem_free", KB(1000000));
    assert_field_uint(&m.m, "mem_shared", KB(20000));
    assert_field_uint(&m.m, "mem_buffers", KB(50000));
    assert_field_uint(&m.m, "mem_cached", KB(1300000)); /* 1200000 + 100000 */
    assert_field_uint(&m.m, "mem_available", KB(2500000));
    assert_field_float(&m.m, "swap_utilization", 25.0); /* 524288 of 2097152 */
    assert_field_uint(&m.m, "swap_total", KB(2097152));
    assert_field_uint(&m.m, "swap_used", KB(524288));
    assert_field_uint(&m.m, "swap_free", KB(1572864));

    assert_field_float(&m1.m, "mem_utilization", 25.0); /* (4000000 - 3000000) / 4000000 */
    assert_field_uint(&m1.m, "mem_used", KB(1000000));
    assert_field_uint(&m1.m, "mem_free", KB(1200000));
    assert_field_uint(&m1.m, "mem_shared", KB(30000));
    assert_field_uint(&m1.m, "mem_buffers", KB(60000));
    assert_field_uint(&m1.m, "mem_cached", KB(1190000)); /* 1100000 + 90000 */
    assert_field_float(&m1.m, "swap_utilization", 50.0); /* 1048576 of 2097152 */
    assert_field_uint(&m1.m, "swap_used", KB(1048576));
    assert_field_uint(&m1.m, "swap_free", KB(1048576));
    assert_field_float(&m1.m, "page_in", 2048.0);
    assert_field_float(&m1.m, "page_out", 500.0);
    assert_field_float(&m1.m, "swap_in", 5.0);   /* 100 -> 110 in 2 s */
    assert_field_float(&m1.m, "swap_out", 25.0); /* 200 -> 250 in 2 s */
    assert_int_equal(m1.m.nfields, 16);
}

static void test_counter_backwards(void **state)
{
    struct agent_meas m, m1;
    /* pgpgin 1558969 -> 1000; the others move forward. */
    two_readings("backwards", &m, &m1);
    assert_no_field(&m1.m, "page_in");
    assert_field_float(&m1.m, "page_out", 500.0);
    assert_field_float(&m1.m, "swap_in", 3.0);  /* 0 -> 6 in 2 s */
    assert_field_float(&m1.m, "swap_out", 4.0); /* 0 -> 8 in 2 s */
    assert_field_uint(&m1.m, "mem_total", KB(24684096));
    assert_int_equal(m1.m.nfields, 15);
}

static void test_old_kernel(void **state)
{
    /* No MemAvailable, SReclaimable or Shmem: available is estimated as
     * free + buffers + cached = 512000 + 128000 + 256000 kB. */
    struct agent_mem m;
    struct agent_mem_raw raw;
    struct agent_meas out;
    agent_mem_init(&m);
    read_ok("old-kernel", "t0", &raw);
    agent_mem_update(&m, &raw, T0_NS, &out);
    assert_field_uint(&out.m, "mem_available", KB(896000));
    assert_field_uint(&out.m, "mem_used", KB(2048000 - 896000));
    assert_field_float(&out.m, "mem_utilization", 56.25); /* 1152000 / 2048000 */
    assert_field_uint(&out.m, "mem_cached", KB(256000));
    assert_field_uint(&out.m, "mem_shared", 0);
    assert_field_float(&out.m, "swap_utilization", 0.0); /* 1024000 kB, all free */
    assert_field_uint(&out.m, "swap_used", 0);
    assert_field_uint(&out.m, "swap_free", KB(1024000));
}

static void test_zero_elapsed(void **state)
{
    struct agent_mem m;
    struct agent_mem_raw raw;
    struct agent_meas out;
    agent_mem_init(&m);
    read_ok("swap", "t0", &raw);
    agent_mem_update(&m, &raw, T0_NS, &out);
    agent_mem_update(&m, &raw, T0_NS, &out);
    assert_no_field(&out.m, "page_in");
    assert_no_field(&out.m, "swap_out");
    assert_field_float(&out.m, "swap_utilization", 25.0);
}

static void expect_error(const char *name, int want_rc, const char *want_err)
{
    char root[512], err[512] = "";
    struct agent_mem_raw r;
    fixture(root, sizeof root, name, "t0");
    int rc = agent_plat_mem_read(root, &r, err, sizeof err);
    if (rc != want_rc || !strstr(err, want_err) || strncmp(err, root, strlen(root)) != 0)
        fail_msg("%s: got %d \"%s\", expected %d and \"%s\"", name, rc, err, want_rc, want_err);
}

static void test_errors(void **state)
{
    expect_error("missing", -ENOENT, "/meminfo: cannot open: No such file or directory");
    expect_error("garbled", PT_E_MALFORMED, "/meminfo:1: \"MemTotal\" is not a size in kB");
    expect_error("garbled2", PT_E_MALFORMED, "/vmstat:1: \"pgpgin\" is not followed by a number");
    expect_error("truncated", PT_E_MALFORMED, "/meminfo: no \"MemTotal\" line");
    expect_error("truncated2", PT_E_MALFORMED, "/vmstat: no \"pgpgout\" line");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_base),  cmocka_unit_test(test_base_no_swap),
        cmocka_unit_test(test_swap),       cmocka_unit_test(test_counter_backwards),
        cmocka_unit_test(test_old_kernel), cmocka_unit_test(test_zero_elapsed),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
