/* Tests of agent/sample.c: every collector run in one sample, in catalog
 * order, with the configuration's filters and per-CPU series; objects over
 * capacity counted. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pt/err.h"

#include "agent_test.h"
#include "sample.h"

/* Allocations by the agent's code: this test links with
 * -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc (tests/unit/agent/
 * CMakeLists.txt), so every call from the agent's objects comes here. */
static unsigned long allocs;
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n)
{
    allocs++;
    return __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t size)
{
    allocs++;
    return __real_calloc(n, size);
}
void *__wrap_realloc(void *p, size_t n)
{
    allocs++;
    return __real_realloc(p, n);
}

/* Every mount is 1000 bytes with 250 free (statvfs() cannot read fixtures). */
static int quarter_free(void *ctx, const char *path, struct agent_fs_size *out)
{
    *out = (struct agent_fs_size){1000, 250, 250};
    return 0;
}

static struct agent_config cfg;
static struct agent_sample s;

static void setup(const char *name, const char *t, bool per_cpu)
{
    char root[512];
    agent_config_defaults(&cfg);
    snprintf(cfg.proc_root, sizeof cfg.proc_root, "%s", fixture(root, sizeof root, name, t));
    snprintf(cfg.sys_root, sizeof cfg.sys_root, "%s",
             fixture_in(root, sizeof root, name, t, "sys"));
    cfg.per_cpu = per_cpu;
}

static void names(char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < s.n && off < len; i++) {
        const struct pt_meas *m = &s.list[i];
        int n = snprintf(buf + off, len - off, "%s%.*s", i ? " " : "", (int)m->name.len, m->name.p);
        if (m->ntags && n > 0)
            n += snprintf(buf + off + (size_t)n, len - off - (size_t)n, ":%.*s",
                          (int)m->tags[0].val.len, m->tags[0].val.p);
        off += n > 0 ? (size_t)n : 0;
    }
}

static void test_every_collector(void **state)
{
    char got[2048];
    setup("host", "t0", true);
    const char *text = "{\"interfaces\": {\"exclude\": [\"lo\"]}, "
                       "\"devices\": {\"include\": [\"vd*\"]}}";
    if (agent_config_parse(&cfg, "t", text, strlen(text), false, got, sizeof got))
        fail_msg("%s", got);
    agent_sample_init(&s, &cfg);
    s.disk.fs_size = quarter_free;
    assert_int_equal(agent_sample_collect(&s), 0);
    names(got, sizeof got);
    /* The first reading: the per-CPU series, diskio and network, all rates,
     * have no field yet and are left out. */
    assert_string_equal(got, "cpu cpufreq memory disk:/ disk:/boot disk:/srv/my data disk:total");
    assert_field_float(&s.list[1], "cpu_speed", 2500.0);
    assert_field_float(&s.list[3], "disk_utilization", 75.0);
    assert_int_equal(s.dropped, 0);

    /* The second reading has rates; the new vdc passes the filter. */
    setup("host", "t1", true);
    assert_int_equal(agent_sample_collect(&s), 0);
    names(got, sizeof got);
    /* vdc and eth2 are new: no field yet. */
    assert_string_equal(got, "cpu cpu:cpu0 cpu:cpu1 cpufreq memory disk:/ disk:/boot "
                             "disk:/srv/my data disk:total diskio:vda diskio:vdb "
                             "diskio:total network:eth0 network:total");
    assert_true(agent_meas_find(&s.list[0], "cpu_utilization") != NULL);
    assert_true(agent_meas_find(&s.list[1], "cpu_utilization") != NULL);
    /* Rates here cover the real time between the two calls, so only their
     * ratios are known: diskio total (vda + vdb) read 5120 sectors in 250
     * reads, network total (eth0) received 2000000 bytes in 1000 packets. */
    const struct pt_field *kb = agent_meas_find(&s.list[11], "kb_read");
    const struct pt_field *ops = agent_meas_find(&s.list[11], "ops_read");
    assert_true(kb && ops && fabs(kb->v.f / ops->v.f - 2560.0 / 250) < 1e-9);
    const struct pt_field *bytes = agent_meas_find(&s.list[13], "bytes_in");
    const struct pt_field *pkts = agent_meas_find(&s.list[13], "pkts_in");
    assert_true(bytes && pkts && fabs(bytes->v.f / pkts->v.f - 2000.0) < 1e-9);
    agent_sample_close(&s);
}

static void test_failures_and_capacity(void **state)
{
    /* "many" has only net/dev, with 70 interfaces: five collectors fail
     * (cpufreq without sources does not), 6 interfaces are dropped. */
    setup("many", "t0", false);
    agent_sample_init(&s, &cfg);
    assert_int_equal(agent_sample_collect(&s), 4); /* cpu, memory, disk, diskio */
    assert_int_equal(s.dropped, 6);
    assert_int_equal(agent_sample_collect(&s), 4);
    assert_int_equal(s.n, AGENT_MAX_OBJECTS + 1); /* with rates from the second reading */
    assert_int_equal(s.dropped, 12);
    agent_sample_close(&s);
}

static void test_no_allocation(void **state)
{
    /* The live host, every collector, per-CPU series on: collecting
     * allocates nothing (fixed arrays, stack buffers). */
    char err[256];
    const char *text = "{\"per_cpu\": true, \"interfaces\": {\"exclude\": [\"veth*\"]}}";
    agent_config_defaults(&cfg);
    allocs = 0;
    if (agent_config_parse(&cfg, "t", text, strlen(text), false, err, sizeof err))
        fail_msg("%s", err);
    assert_true(allocs > 0); /* the counting works: loading a configuration allocates */
    agent_sample_init(&s, &cfg);
    agent_sample_collect(&s);
    allocs = 0;
    for (int i = 0; i < 20; i++) agent_sample_collect(&s);
    assert_true(s.n >= 5);
    assert_int_equal(allocs, 0);
    agent_sample_close(&s);
}

int main(void)
{
    pt_log_set_level(PT_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_collector),
        cmocka_unit_test(test_failures_and_capacity),
        cmocka_unit_test(test_no_allocation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
