/* collector/agentless/frames.c: a driver result as wire frames, decoded
 * again the way the writer and the alert engine see them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentless/frames.h"
#include "pt/catalog.h"
#include "pt/time.h"

#define MAXF 16

struct got {
    uint8_t buf[MAXF][PT_WIRE_MAX_FRAME];
    size_t len[MAXF];
    uint16_t nmeas[MAXF];
    int64_t ts[MAXF];
    bool feed[MAXF];
    size_t n;
};

static int collect(void *ud, const uint8_t *buf, size_t len, uint16_t nmeas, int64_t ts_ns,
                   bool feed)
{
    struct got *g = ud;
    assert_true(g->n < MAXF);
    memcpy(g->buf[g->n], buf, len);
    g->len[g->n] = len;
    g->nmeas[g->n] = nmeas;
    g->ts[g->n] = ts_ns;
    g->feed[g->n] = feed;
    g->n++;
    return 0;
}

static const struct pt_meas *find_meas(const struct pt_frame *f, const char *name, const char *tkey,
                                       const char *tval)
{
    for (size_t m = 0; m < f->nmeas; m++) {
        if (!pt_str_eq(f->meas[m].name, name)) continue;
        if (!tkey) return &f->meas[m];
        for (size_t t = 0; t < f->meas[m].ntags; t++)
            if (pt_str_eq(f->meas[m].tags[t].key, tkey) && pt_str_eq(f->meas[m].tags[t].val, tval))
                return &f->meas[m];
    }
    return NULL;
}

static double field(const struct pt_meas *m, const char *name)
{
    for (size_t i = 0; i < m->nfields; i++)
        if (pt_str_eq(m->fields[i].key, name)) {
            assert_int_equal(m->fields[i].type, PT_F_FLOAT);
            return m->fields[i].v.f;
        }
    fail_msg("field %s missing", name);
    return 0;
}

static bool has_tag(const struct pt_meas *m, const char *k, const char *v)
{
    for (size_t t = 0; t < m->ntags; t++)
        if (pt_str_eq(m->tags[t].key, k) && pt_str_eq(m->tags[t].val, v)) return true;
    return false;
}

static void test_one_frame_per_timestamp(void **state)
{
    (void)state;
    struct drv_point cpu[] = {{1000, 10.0}, {1060, 20.0}};
    struct drv_point kbr[] = {{1060, 2.0}};
    struct drv_point kbw[] = {{1060, 3.0}};
    struct drv_point sda[] = {{1000, 7.0}};
    struct drv_point net[] = {{1000, 100.0}, {1060, 50.0}};
    struct drv_series s[] = {
        {DRV_M_CPU, "cpu_utilization", "%", "", "", cpu, 2, 2},
        {DRV_M_KB_READ, "kb_read", "KiB/s", "", "", kbr, 1, 1},
        {DRV_M_KB_WRITTEN, "kb_written", "KiB/s", "", "", kbw, 1, 1},
        {DRV_M_KB_READ, "kb_read", "KiB/s", "disk", "vol-1", sda, 1, 1},
        {DRV_M_BYTES_IN, "bytes_in", "bytes/s", "", "", net, 2, 2},
    };
    struct drv_result r;
    memset(&r, 0, sizeof r);
    r.driver = "aws";
    r.series = s;
    r.n = r.cap = 5;
    struct agl_frame_ident id = {"ns1", "web", "vm-1", "aws", "i-0abc", AGL_AGENT_ID(5), 60000};
    static struct got g;
    memset(&g, 0, sizeof g);
    size_t skipped;
    assert_int_equal(agl_frames_build(&id, &r, NULL, collect, &g, &skipped), 0);
    assert_int_equal(skipped, 0);
    assert_int_equal(g.n, 2);
    assert_true(g.ts[0] == 1000 * PT_NS_PER_SEC && g.ts[1] == 1060 * PT_NS_PER_SEC);

    struct pt_wire_dec *dec = pt_wire_dec_new();
    struct pt_frame f;
    /* t=1000: cpu, diskio device=vol-1, network interface=total. */
    assert_int_equal(pt_wire_decode(dec, g.buf[0], g.len[0], &f), 0);
    assert_true(f.ts_ns == 1000 * PT_NS_PER_SEC);
    assert_true(f.agent_id == AGL_AGENT_ID(5));
    assert_true(pt_str_eq(f.id.ns, "ns1") && pt_str_eq(f.id.mcis, "web") &&
                pt_str_eq(f.id.vm, "vm-1") && pt_str_eq(f.id.csp, "aws"));
    assert_null(f.mac); /* unsigned: never crosses a network */
    assert_int_equal(f.nmeas, 3);
    assert_int_equal(g.nmeas[0], 3);
    const struct pt_meas *m = find_meas(&f, "cpu", NULL, NULL);
    assert_non_null(m);
    assert_true(field(m, "cpu_utilization") == 10.0);
    assert_true(has_tag(m, "source", "agentless") && has_tag(m, "driver", "aws"));
    m = find_meas(&f, "diskio", "device", "vol-1");
    assert_non_null(m);
    assert_true(field(m, "kb_read") == 7.0);
    m = find_meas(&f, "network", "interface", "total");
    assert_non_null(m);
    assert_true(field(m, "bytes_in") == 100.0);
    assert_null(find_meas(&f, "diskio", "device", "total"));
    /* t=1060: the instance's disk totals together in one measurement. */
    assert_int_equal(pt_wire_decode(dec, g.buf[1], g.len[1], &f), 0);
    m = find_meas(&f, "diskio", "device", "total");
    assert_non_null(m);
    assert_int_equal(m->nfields, 2);
    assert_true(field(m, "kb_read") == 2.0 && field(m, "kb_written") == 3.0);
    assert_true(has_tag(m, "source", "agentless"));
    m = find_meas(&f, "cpu", NULL, NULL);
    assert_true(field(m, "cpu_utilization") == 20.0);
    pt_wire_dec_free(dec);
}

/* Alerting gets only values newer than what it was fed, per metric: a
 * metric published late is evaluated when it comes, nothing twice. */
static void test_feed_frames_only_new_values(void **state)
{
    (void)state;
    struct drv_point cpu[] = {{1000, 10.0}, {1060, 20.0}};
    struct drv_point net[] = {{1000, 100.0}, {1060, 50.0}};
    struct drv_series s[] = {
        {DRV_M_CPU, "cpu_utilization", "%", "", "", cpu, 2, 2},
        {DRV_M_BYTES_IN, "bytes_in", "bytes/s", "", "", net, 2, 2},
    };
    struct drv_result r;
    memset(&r, 0, sizeof r);
    r.driver = "aws";
    r.series = s;
    r.n = r.cap = 2;
    struct agl_frame_ident id = {"ns1", "web", "vm-1", "aws", "", AGL_AGENT_ID(5), 60000};
    int64_t fed[DRV_M_COUNT] = {0};
    fed[DRV_M_CPU] = 1060;      /* CPU already evaluated up to 1060 */
    fed[DRV_M_BYTES_IN] = 1000; /* network only up to 1000 (published later) */
    static struct got g;
    memset(&g, 0, sizeof g);
    size_t skipped;
    assert_int_equal(agl_frames_build(&id, &r, fed, collect, &g, &skipped), 0);
    /* Store frames carry everything; one feed frame: network at 1060. */
    size_t nstore = 0, nfeed = 0, k_feed = 0;
    for (size_t k = 0; k < g.n; k++) {
        if (g.feed[k]) {
            nfeed++;
            k_feed = k;
        } else {
            nstore++;
        }
    }
    assert_int_equal(nstore, 2);
    assert_int_equal(nfeed, 1);
    assert_true(g.ts[k_feed] == 1060 * PT_NS_PER_SEC);
    struct pt_wire_dec *dec = pt_wire_dec_new();
    struct pt_frame f;
    assert_int_equal(pt_wire_decode(dec, g.buf[k_feed], g.len[k_feed], &f), 0);
    assert_int_equal(f.nmeas, 1);
    const struct pt_meas *m = find_meas(&f, "network", "interface", "total");
    assert_non_null(m);
    assert_int_equal(m->nfields, 1);
    assert_true(field(m, "bytes_in") == 50.0);
    assert_null(find_meas(&f, "cpu", NULL, NULL));
    pt_wire_dec_free(dec);
}

static void test_many_disks_split_into_frames(void **state)
{
    (void)state;
    enum { N = 100 };
    static struct drv_series s[N];
    static struct drv_point p[N];
    for (int i = 0; i < N; i++) {
        p[i] = (struct drv_point){2000, (double)i};
        s[i] = (struct drv_series){DRV_M_OPS_READ, "ops_read", "ops/s", "disk", "", &p[i], 1, 1};
        snprintf(s[i].tag_value, sizeof s[i].tag_value, "volume-with-a-long-name-%03d", i);
    }
    struct drv_result r;
    memset(&r, 0, sizeof r);
    r.driver = "gcp";
    r.series = s;
    r.n = N;
    struct agl_frame_ident id = {"ns1", "web", "vm-1", "gcp", "", AGL_AGENT_ID(1), 60000};
    static struct got g;
    memset(&g, 0, sizeof g);
    size_t skipped;
    assert_int_equal(agl_frames_build(&id, &r, NULL, collect, &g, &skipped), 0);
    assert_true(g.n >= 2);
    struct pt_wire_dec *dec = pt_wire_dec_new();
    struct pt_frame f;
    size_t total = 0;
    for (size_t k = 0; k < g.n; k++) {
        assert_true(g.len[k] <= PT_WIRE_MAX_FRAME);
        assert_int_equal(pt_wire_decode(dec, g.buf[k], g.len[k], &f), 0);
        total += f.nmeas;
    }
    assert_int_equal(total, N); /* every disk, none twice */
    pt_wire_dec_free(dec);
}

static void test_empty_result_no_frames(void **state)
{
    (void)state;
    struct drv_result r;
    memset(&r, 0, sizeof r);
    r.driver = "azure";
    struct agl_frame_ident id = {"n", "m", "v", "azure", "", AGL_AGENT_ID(1), 60000};
    static struct got g;
    memset(&g, 0, sizeof g);
    size_t skipped;
    assert_int_equal(agl_frames_build(&id, &r, NULL, collect, &g, &skipped), 0);
    assert_int_equal(g.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_frame_per_timestamp),
        cmocka_unit_test(test_feed_frames_only_new_values),
        cmocka_unit_test(test_many_disks_split_into_frames),
        cmocka_unit_test(test_empty_result_no_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
