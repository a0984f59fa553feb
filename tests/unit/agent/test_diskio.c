/* Tests of the diskio measurement: agent/platform/linux/diskio.c reading
 * /proc/diskstats and /sys/block fixtures, agent/collectors/diskio.c
 * choosing the series and the total and computing rates
 * (tests/data/linux/README.md gives the deltas). */
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
#include "collectors/diskio.h"

#define T0_NS (5 * PT_NS_PER_SEC)
#define T1_NS (7 * PT_NS_PER_SEC)

static void reading(struct agent_dio *d, const char *name, const char *t, int64_t ns)
{
    char proc[512], sys[512], err[512] = "";
    d->sys = fixture_in(sys, sizeof sys, name, t, "sys");
    agent_dio_begin(d);
    int rc =
        agent_plat_dio_read(fixture(proc, sizeof proc, name, t), agent_dio_add, d, err, sizeof err);
    d->sys = NULL; /* sys is about to go out of scope */
    if (rc) fail_msg("%s/%s: %d %s", name, t, rc, err);
    agent_dio_commit(d, ns);
}

static const struct pt_meas *dev(const struct agent_dio *d, const char *name)
{
    const struct pt_meas *m = meas_tagged(d->out.m, d->nout, "device", name);
    if (!m) fail_msg("no series for device %s", name);
    assert_true(pt_str_eq(m->name, "diskio"));
    assert_int_equal(m->ntags, 1);
    return m;
}

static void test_two_readings(void **state)
{
    static struct agent_dio d;
    agent_dio_init(&d);
    reading(&d, "host", "t0", T0_NS);
    /* Whole devices (in sys/block) and the total; the partition vda1 has no
     * series of its own. */
    assert_int_equal(d.nout, 5); /* loop0, vda, vdb, zram0, total */
    assert_null(meas_tagged(d.out.m, d.nout, "device", "vda1"));
    for (unsigned i = 0; i < d.nout; i++) assert_int_equal(d.out.m[i].nfields, 0);

    reading(&d, "host", "t1", T1_NS);
    assert_int_equal(d.nout, 6); /* vdc appeared */
    const struct pt_meas *vda = dev(&d, "vda");
    assert_int_equal(vda->nfields, 6);
    assert_field_float(vda, "kb_read", 1024.0);    /* 4096 sectors of 512 B in 2 s */
    assert_field_float(vda, "kb_written", 5120.0); /* 20480 sectors */
    assert_field_float(vda, "ops_read", 100.0);
    assert_field_float(vda, "ops_write", 500.0);
    assert_field_float(vda, "read_time", 150.0); /* ms per s */
    assert_field_float(vda, "write_time", 800.0);
    assert_catalog_types(vda);
    const struct pt_meas *vdb = dev(&d, "vdb");
    assert_field_float(vdb, "kb_read", 256.0);
    assert_field_float(vdb, "kb_written", 128.0);
    assert_field_float(vdb, "ops_read", 25.0);
    assert_field_float(vdb, "ops_write", 10.0);
    assert_field_float(vdb, "read_time", 20.0);
    assert_field_float(vdb, "write_time", 30.0);
    /* loop0 has its own series... */
    assert_field_float(dev(&d, "loop0"), "ops_read", 5.0);
    assert_field_float(dev(&d, "loop0"), "kb_read", 100.0);
    /* ...the new vdc none yet... */
    assert_int_equal(dev(&d, "vdc")->nfields, 0);
    /* ...and the total is vda + vdb: no loop, zram, partition or newcomer. */
    const struct pt_meas *total = dev(&d, "total");
    assert_int_equal(total->nfields, 6);
    assert_field_float(total, "kb_read", 1280.0);
    assert_field_float(total, "kb_written", 5248.0);
    assert_field_float(total, "ops_read", 125.0);
    assert_field_float(total, "ops_write", 510.0);
    assert_field_float(total, "read_time", 170.0);
    assert_field_float(total, "write_time", 830.0);
    assert_catalog_types(total);
}

static void test_container_without_sysfs(void **state)
{
    /* No /sys/block: partitions are told by name (sda1, nvme0n1p1,
     * mmcblk0p1 follow their disk). */
    static struct agent_dio d;
    agent_dio_init(&d);
    reading(&d, "container", "t0", T0_NS);
    reading(&d, "container", "t1", T1_NS);
    assert_int_equal(d.nout, 7); /* sda nvme0n1 mmcblk0 loop1 dm-0 md0 total */
    const char *parts[] = {"sda1", "sda2", "nvme0n1p1", "mmcblk0p1"};
    for (size_t i = 0; i < 4; i++) assert_null(meas_tagged(d.out.m, d.nout, "device", parts[i]));
    assert_field_float(dev(&d, "sda"), "ops_read", 10.0);
    assert_field_float(dev(&d, "nvme0n1"), "kb_read", 120.0);
    assert_field_float(dev(&d, "dm-0"), "ops_write", 9.0);
    /* The total leaves out loop1, dm-0 and md0 (built on counted disks). */
    const struct pt_meas *total = dev(&d, "total");
    assert_field_float(total, "ops_read", 47.0); /* 10 + 30 + 7 */
    assert_field_float(total, "kb_read", 188.0);
    assert_field_float(total, "read_time", 47.0);
    assert_field_float(total, "ops_write", 47.0);
    assert_field_float(total, "kb_written", 188.0);
}

static void test_counter_backwards(void **state)
{
    static struct agent_dio d;
    agent_dio_init(&d);
    reading(&d, "backwards", "t0", T0_NS);
    reading(&d, "backwards", "t1", T1_NS);
    /* vda's written sectors went back (a reset): no kb_written for vda nor
     * the total; everything else has its rate. */
    assert_no_field(dev(&d, "vda"), "kb_written");
    assert_field_float(dev(&d, "vda"), "ops_read", 5.0);
    assert_no_field(dev(&d, "total"), "kb_written");
    assert_field_float(dev(&d, "total"), "ops_read", 10.0);
    assert_field_float(dev(&d, "total"), "ops_write", 25.0);
    assert_field_float(dev(&d, "vdb"), "kb_written", 250.0); /* 1000 sectors in 2 s */
}

static void test_filter(void **state)
{
    static struct agent_dio d;
    agent_dio_init(&d);
    assert_int_equal(agent_filter_add(&d.filter.exclude, "loop*"), 0);
    assert_int_equal(agent_filter_add(&d.filter.exclude, "vdb"), 0);
    reading(&d, "host", "t0", T0_NS);
    reading(&d, "host", "t1", T1_NS);
    assert_int_equal(d.nout, 4); /* vda zram0 vdc total */
    assert_null(meas_tagged(d.out.m, d.nout, "device", "loop0"));
    /* A filtered-out device is out of the total as well. */
    assert_field_float(dev(&d, "total"), "ops_read", 100.0);
}

static void test_kind_asked_once(void **state)
{
    /* The kind of a device seen in the last reading is remembered: t1 read
     * with a sys tree that no longer exists still knows vda1 is a
     * partition and vda whole; only the new vdc is unknown (no sysfs:
     * judged by name, a whole device). */
    static struct agent_dio d;
    char proc[512], err[512];
    agent_dio_init(&d);
    reading(&d, "host", "t0", T0_NS);
    d.sys = "/nonexistent";
    agent_dio_begin(&d);
    assert_int_equal(agent_plat_dio_read(fixture(proc, sizeof proc, "host", "t1"), agent_dio_add,
                                         &d, err, sizeof err),
                     0);
    agent_dio_commit(&d, T1_NS);
    assert_int_equal(d.nout, 6);
    assert_null(meas_tagged(d.out.m, d.nout, "device", "vda1"));
    assert_field_float(dev(&d, "total"), "ops_read", 125.0);
    assert_int_equal(agent_plat_dio_kind("/nonexistent", "vda"), AGENT_DIO_UNKNOWN);
}

static void test_naming_rules(void **state)
{
    assert_true(agent_dio_virtual("loop0"));
    assert_true(agent_dio_virtual("ram15"));
    assert_true(agent_dio_virtual("zram0"));
    assert_true(agent_dio_virtual("dm-3"));
    assert_true(agent_dio_virtual("md127"));
    assert_false(agent_dio_virtual("sda"));
    assert_false(agent_dio_virtual("nvme0n1"));
    assert_false(agent_dio_virtual("mmcblk0"));
}

static void test_read_errors(void **state)
{
    char proc[512], err[512] = "";
    static struct agent_dio d;
    agent_dio_init(&d);
    int rc = agent_plat_dio_read(fixture(proc, sizeof proc, "missing", "t0"), agent_dio_add, &d,
                                 err, sizeof err);
    assert_int_equal(rc, -ENOENT);
    assert_non_null(strstr(err, "missing/t0/proc/diskstats: cannot open"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_readings),      cmocka_unit_test(test_container_without_sysfs),
        cmocka_unit_test(test_counter_backwards), cmocka_unit_test(test_filter),
        cmocka_unit_test(test_naming_rules),      cmocka_unit_test(test_kind_asked_once),
        cmocka_unit_test(test_read_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
