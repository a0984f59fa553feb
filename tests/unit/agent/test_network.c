/* Tests of the network measurement: agent/platform/linux/network.c reading
 * /proc/net/dev fixtures, agent/collectors/network.c computing per-interface
 * and total rates (tests/data/linux/README.md gives the deltas). */
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
#include "collectors/network.h"

#define T0_NS (5 * PT_NS_PER_SEC)
#define T1_NS (7 * PT_NS_PER_SEC)

static void reading(struct agent_net *n, const char *name, const char *t, int64_t ns)
{
    char root[512], err[512] = "";
    agent_net_begin(n);
    int rc =
        agent_plat_net_read(fixture(root, sizeof root, name, t), agent_net_add, n, err, sizeof err);
    if (rc) fail_msg("%s/%s: %d %s", name, t, rc, err);
    agent_net_commit(n, ns);
}

static const struct pt_meas *iface(const struct agent_net *n, const char *name)
{
    const struct pt_meas *m = meas_tagged(n->out.m, n->nout, "interface", name);
    if (!m) fail_msg("no series for interface %s", name);
    assert_true(pt_str_eq(m->name, "network"));
    assert_int_equal(m->ntags, 1);
    return m;
}

static void test_two_readings(void **state)
{
    static struct agent_net n;
    agent_net_init(&n);

    /* First reading: a series per interface and the total, no rates. */
    reading(&n, "host", "t0", T0_NS);
    assert_int_equal(n.nout, 4); /* lo, eth0, eth1, total */
    for (unsigned i = 0; i < n.nout; i++) assert_int_equal(n.out.m[i].nfields, 0);
    assert_non_null(iface(&n, "eth1"));
    assert_non_null(iface(&n, "total"));

    /* Second, 2 s later: eth1 vanished, eth2 appeared. */
    reading(&n, "host", "t1", T1_NS);
    assert_int_equal(n.nout, 4); /* lo, eth0, eth2, total */
    assert_null(meas_tagged(n.out.m, n.nout, "interface", "eth1"));
    const struct pt_meas *eth0 = iface(&n, "eth0");
    assert_int_equal(eth0->nfields, 8);
    assert_field_float(eth0, "bytes_in", 1000000.0); /* 2,000,000 in 2 s */
    assert_field_float(eth0, "bytes_out", 300000.0);
    assert_field_float(eth0, "pkts_in", 500.0);
    assert_field_float(eth0, "pkts_out", 200.0);
    assert_field_float(eth0, "err_in", 1.0);
    assert_field_float(eth0, "err_out", 0.0);
    assert_field_float(eth0, "drop_in", 2.0);
    assert_field_float(eth0, "drop_out", 1.0);
    assert_catalog_types(eth0);

    const struct pt_meas *lo = iface(&n, "lo");
    assert_field_float(lo, "bytes_in", 4000000.0);
    assert_field_float(lo, "pkts_out", 50.0);

    /* eth2 is new: no rate yet (not 900 MB/s out of nowhere). */
    assert_int_equal(iface(&n, "eth2")->nfields, 0);

    /* The total is eth0 alone: lo is loopback, eth2 new, eth1 gone. */
    const struct pt_meas *total = iface(&n, "total");
    assert_int_equal(total->nfields, 8);
    assert_field_float(total, "bytes_in", 1000000.0);
    assert_field_float(total, "bytes_out", 300000.0);
    assert_field_float(total, "pkts_in", 500.0);
    assert_field_float(total, "drop_out", 1.0);
    assert_catalog_types(total);
}

static void test_counter_backwards(void **state)
{
    static struct agent_net n;
    agent_net_init(&n);
    reading(&n, "backwards", "t0", T0_NS);
    reading(&n, "backwards", "t1", T1_NS);
    /* eth0's received bytes went back: no bytes_in for eth0 nor the total;
     * the other counters still give rates. */
    const struct pt_meas *eth0 = iface(&n, "eth0");
    assert_no_field(eth0, "bytes_in");
    assert_field_float(eth0, "pkts_in", 50.0);
    assert_field_float(eth0, "bytes_out", 500.0);
    const struct pt_meas *total = iface(&n, "total");
    assert_no_field(total, "bytes_in");
    assert_field_float(total, "bytes_out", 1500.0); /* (1000 + 2000) / 2 s */
    assert_field_float(total, "pkts_in", 55.0);     /* (100 + 10) / 2 s */
}

static void test_filter(void **state)
{
    static struct agent_net n;
    agent_net_init(&n);
    assert_int_equal(agent_filter_add(&n.filter.include, "eth*"), 0);
    assert_int_equal(agent_filter_add(&n.filter.exclude, "eth1"), 0);
    reading(&n, "host", "t0", T0_NS);
    assert_int_equal(n.nout, 2); /* eth0 and total */
    assert_non_null(iface(&n, "eth0"));
    assert_null(meas_tagged(n.out.m, n.nout, "interface", "lo"));
    assert_null(meas_tagged(n.out.m, n.nout, "interface", "eth1"));
}

static void test_capacity(void **state)
{
    /* 70 interfaces: 64 series and the total; 6 counted as dropped. */
    static struct agent_net n;
    agent_net_init(&n);
    char root[512], err[512];
    agent_net_begin(&n);
    assert_int_equal(agent_plat_net_read(fixture(root, sizeof root, "many", "t0"), agent_net_add,
                                         &n, err, sizeof err),
                     0);
    assert_int_equal(agent_net_commit(&n, T0_NS), 6);
    assert_int_equal(n.nout, AGENT_MAX_OBJECTS + 1);
    assert_non_null(iface(&n, "veth63"));
    assert_null(meas_tagged(n.out.m, n.nout, "interface", "veth64"));
}

static void count(void *ctx, const struct agent_net_raw *ifc)
{
    (*(int *)ctx)++;
}

static void test_read_errors(void **state)
{
    char root[512], err[512] = "";
    int calls = 0;
    int rc = agent_plat_net_read(fixture(root, sizeof root, "missing", "t0"), count, &calls, err,
                                 sizeof err);
    assert_int_equal(rc, -ENOENT);
    assert_non_null(strstr(err, "missing/t0/proc/net/dev: cannot open"));
    assert_int_equal(calls, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_readings), cmocka_unit_test(test_counter_backwards),
        cmocka_unit_test(test_filter),       cmocka_unit_test(test_capacity),
        cmocka_unit_test(test_read_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
