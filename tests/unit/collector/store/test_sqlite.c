/* Tests of collector/store/sqlite.c: the embedded store as the collector and
 * the API see it: what goes in comes out with the same values and types,
 * every aggregation gives the numbers worked out by hand below, retention
 * deletes exactly the old points, and readers never see half a batch. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pt/catalog.h"
#include "pt/err.h"
#include "pt/time.h"
#include "store/store.h"

#define T0   INT64_C(1699999980) /* a multiple of 60 s (and of 3, 5, 10, 20) */
#define S(x) ((int64_t)(x)*PT_NS_PER_SEC)

static const struct store_ops *ops = &store_sqlite_ops;

/* ---- fixture ------------------------------------------------------------------ */

struct fx {
    char dir[64];
    struct store *s;
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *dir)
{
    chmod(dir, 0700);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static struct store *open_url(const char *dir, const char *url)
{
    struct store_conf conf = {.url = url, .data_dir = dir};
    struct store *s = NULL;
    char err[512];
    int rc = ops->open(&conf, &s, err, sizeof err);
    if (rc) fail_msg("open %s in %s: %s (%s)", url, dir, err, pt_strerror(rc));
    return s;
}

/* ---- building points ------------------------------------------------------------- */

struct pw {
    struct pt_ident id;
    struct pt_meas m;
    struct pt_tag tags[4];
    struct pt_field f[8];
    struct store_point p;
};

static void pw_init(struct pw *w, const char *vm, const char *meas, int64_t ts_s)
{
    memset(w, 0, sizeof *w);
    w->id.ns = pt_str_c("ns1");
    w->id.mcis = pt_str_c("mcis1");
    w->id.vm = pt_str_c(vm);
    w->id.csp = pt_str_c("aws");
    w->id.host = pt_str_c(vm);
    w->m.name = pt_str_c(meas);
    w->m.tags = w->tags;
    w->m.fields = w->f;
    w->p.id = &w->id;
    w->p.m = &w->m;
    w->p.ts_ns = S(ts_s);
}

static void pw_tag(struct pw *w, const char *k, const char *v)
{
    w->tags[w->m.ntags++] = (struct pt_tag){pt_str_c(k), pt_str_c(v)};
}

static struct pt_field *pw_field(struct pw *w, const char *k, uint8_t type)
{
    struct pt_field *f = &w->f[w->m.nfields++];
    f->key = pt_str_c(k);
    f->type = type;
    return f;
}

static void pw_f(struct pw *w, const char *k, double v)
{
    pw_field(w, k, PT_F_FLOAT)->v.f = v;
}

static void pw_u(struct pw *w, const char *k, uint64_t v)
{
    pw_field(w, k, PT_F_UINT)->v.u = v;
}

static void pw_i(struct pw *w, const char *k, int64_t v)
{
    pw_field(w, k, PT_F_INT)->v.i = v;
}

static void pw_s(struct pw *w, const char *k, const char *v)
{
    pw_field(w, k, PT_F_STR)->v.s = pt_str_c(v);
}

static int write_pws(struct store *s, struct pw *w, size_t n)
{
    struct store_point *pts = calloc(n, sizeof *pts);
    assert_non_null(pts);
    for (size_t i = 0; i < n; i++) pts[i] = w[i].p;
    int rc = ops->write_batch(s, pts, n);
    free(pts);
    return rc;
}

/* The data set of the query tests, in ns1/mcis1:
 *
 *   vm1 diskio device=sda  t = T0+k, k = 0..9:  kb_read = A[k] (float),
 *       alpha = k (uint), zeta = -k (int), model = "ssd-x" (string, k = 0, 9)
 *   vm1 diskio device=sdb  t = T0+2j, j = 0..4: kb_read = 10(j+1),
 *       ops_read = 100, 300, 500 (uint) at j = 0, 2, 4 only
 *   vm1 cpu                t = T0+k, k = 0..19: cpu_utilization = P[k],
 *       cpu_num = 4 (uint)
 *   vm2 diskio device=sda  t = T0+k, k = 0..9:  kb_read = 1000+k
 */
static const double A[10] = {4, 15, 23, 16, 8, 42, 7, 1, 9, 3};
static const double P[20] = {4, 15, 6, 17, 8, 19, 10, 1, 12, 3, 14, 5, 16, 7, 18, 9, 20, 11, 2, 13};
#define NDATA (10 + 5 + 20 + 10)

static void load_data(struct store *s)
{
    struct pw *w = calloc(NDATA, sizeof *w);
    assert_non_null(w);
    size_t n = 0;
    for (int k = 0; k < 10; k++) {
        struct pw *p = &w[n++];
        pw_init(p, "vm1", "diskio", T0 + k);
        pw_tag(p, "device", "sda");
        pw_i(p, "zeta", -k); /* not in catalog order: the result sorts them */
        if (k == 0 || k == 9) pw_s(p, "model", "ssd-x");
        pw_f(p, "kb_read", A[k]);
        pw_u(p, "alpha", (uint64_t)k);
    }
    for (int j = 0; j < 5; j++) {
        struct pw *p = &w[n++];
        pw_init(p, "vm1", "diskio", T0 + 2 * j);
        pw_tag(p, "device", "sdb");
        if (j % 2 == 0) pw_u(p, "ops_read", (uint64_t)(100 + 100 * j));
        pw_f(p, "kb_read", 10.0 * (j + 1));
    }
    for (int k = 0; k < 20; k++) {
        struct pw *p = &w[n++];
        pw_init(p, "vm1", "cpu", T0 + k);
        pw_f(p, "cpu_utilization", P[k]);
        pw_u(p, "cpu_num", 4);
    }
    for (int k = 0; k < 10; k++) {
        struct pw *p = &w[n++];
        pw_init(p, "vm2", "diskio", T0 + k);
        pw_tag(p, "device", "sda");
        pw_f(p, "kb_read", 1000 + k);
    }
    assert_int_equal(n, NDATA);
    assert_int_equal(write_pws(s, w, n), 0);
    free(w);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/pt-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->s = open_url(f->dir, "sqlite:");
    load_data(f->s);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->s) ops->close(f->s);
    rm_rf(f->dir);
    free(f);
    return 0;
}

/* ---- query helpers ------------------------------------------------------------ */

static struct store_query q_of(const char *vm, const char *meas, int64_t from_s, int64_t to_s,
                               int64_t step_s, enum store_agg agg)
{
    return (struct store_query){.ns = "ns1",
                                .mcis = "mcis1",
                                .vm = vm,
                                .measurement = meas,
                                .from_ns = S(from_s),
                                .to_ns = S(to_s),
                                .step_ns = S(step_s),
                                .agg = agg};
}

static int col_of(const struct store_series *s, const char *name)
{
    for (size_t i = 0; i < s->nfields; i++)
        if (strcmp(s->fields[i], name) == 0) return (int)i;
    fail_msg("no column %s", name);
    return -1;
}

static double val(const struct store_series *s, size_t row, const char *field)
{
    assert_true(row < s->nrows);
    return s->vals[row * s->nfields + (size_t)col_of(s, field)];
}

#define assert_dbl(got, want)                                              \
    do {                                                                   \
        double g_ = (got), w_ = (want);                                    \
        if (!(g_ == w_)) fail_msg("%s = %.17g, want %.17g", #got, g_, w_); \
    } while (0)

static void assert_tags(const struct store_series *s, const char *k, const char *v)
{
    assert_int_equal(s->ntags, 1);
    assert_string_equal(s->tag_keys[0], k);
    assert_string_equal(s->tag_vals[0], v);
}

/* ---- raw queries --------------------------------------------------------------- */

static void test_raw_values_and_types(void **state)
{
    struct fx *f = *state;
    struct store_query q = q_of("vm1", "diskio", T0, T0 + 10, 0, STORE_AGG_NONE);
    struct store_result r;
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.nseries, 2);

    /* Series sorted by tags; columns in catalog order, then by name; the
     * string field is not a column. */
    const struct store_series *a = &r.series[0];
    assert_string_equal(a->measurement, "diskio");
    assert_tags(a, "device", "sda");
    assert_int_equal(a->nfields, 3);
    assert_string_equal(a->fields[0], "kb_read");
    assert_string_equal(a->fields[1], "alpha");
    assert_string_equal(a->fields[2], "zeta");
    assert_int_equal(a->ftypes[0], PT_F_FLOAT);
    assert_int_equal(a->ftypes[1], PT_F_UINT);
    assert_int_equal(a->ftypes[2], PT_F_INT);
    assert_int_equal(a->nrows, 10);
    for (size_t k = 0; k < 10; k++) {
        assert_int_equal(a->ts[k], S(T0 + (int64_t)k));
        assert_dbl(a->vals[k * 3 + 0], A[k]);
        assert_dbl(a->vals[k * 3 + 1], (double)k);
        assert_dbl(a->vals[k * 3 + 2], -(double)k);
    }

    const struct store_series *b = &r.series[1];
    assert_tags(b, "device", "sdb");
    assert_int_equal(b->nfields, 2);
    assert_string_equal(b->fields[0], "kb_read"); /* stored second, listed first */
    assert_string_equal(b->fields[1], "ops_read");
    assert_int_equal(b->ftypes[0], PT_F_FLOAT);
    assert_int_equal(b->ftypes[1], PT_F_UINT);
    assert_int_equal(b->nrows, 5);
    for (size_t j = 0; j < 5; j++) {
        assert_int_equal(b->ts[j], S(T0 + 2 * (int64_t)j));
        assert_dbl(val(b, j, "kb_read"), 10.0 * (double)(j + 1));
        if (j % 2 == 0)
            assert_dbl(val(b, j, "ops_read"), 100.0 + 100.0 * (double)j);
        else
            assert_true(isnan(val(b, j, "ops_read"))); /* absent, not zero */
    }
    store_result_free(&r);

    /* A sub-range is [from, to). */
    q = q_of("vm1", "diskio", T0 + 3, T0 + 7, 0, STORE_AGG_NONE);
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.nseries, 2);
    assert_int_equal(r.series[0].nrows, 4);
    assert_int_equal(r.series[0].ts[0], S(T0 + 3));
    assert_int_equal(r.series[0].ts[3], S(T0 + 6));
    assert_dbl(val(&r.series[0], 0, "kb_read"), 16);
    assert_int_equal(r.series[1].nrows, 2); /* T0+4, T0+6 */
    store_result_free(&r);

    /* The other VM is separate. */
    q = q_of("vm2", "diskio", T0, T0 + 10, 0, STORE_AGG_NONE);
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.nseries, 1);
    assert_int_equal(r.series[0].nrows, 10);
    assert_int_equal(r.series[0].nfields, 1);
    assert_dbl(val(&r.series[0], 9, "kb_read"), 1009);
    store_result_free(&r);
}

static void test_fields_filter(void **state)
{
    struct fx *f = *state;
    struct store_result r;

    /* Only points having a wanted field make rows; sda has no ops_read. */
    const char *const ops_only[] = {"ops_read"};
    struct store_query q = q_of("vm1", "diskio", T0, T0 + 10, 0, STORE_AGG_NONE);
    q.fields = ops_only;
    q.nfields = 1;
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.nseries, 1);
    assert_tags(&r.series[0], "device", "sdb");
    assert_int_equal(r.series[0].nfields, 1);
    assert_int_equal(r.series[0].nrows, 3);
    assert_int_equal(r.series[0].ts[1], S(T0 + 4));
    assert_dbl(r.series[0].vals[0], 100);
    assert_dbl(r.series[0].vals[1], 300);
    assert_dbl(r.series[0].vals[2], 500);
    store_result_free(&r);

    /* Columns in the order asked; an unknown field is a NaN column. */
    const char *const two[] = {"zeta", "kb_read", "nosuch"};
    q.fields = two;
    q.nfields = 3;
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.nseries, 2);
    const struct store_series *a = &r.series[0];
    assert_int_equal(a->nfields, 3);
    assert_string_equal(a->fields[0], "zeta");
    assert_string_equal(a->fields[1], "kb_read");
    assert_string_equal(a->fields[2], "nosuch");
    assert_int_equal(a->ftypes[0], PT_F_INT);
    assert_int_equal(a->ftypes[2], PT_F_FLOAT);
    assert_int_equal(a->nrows, 10);
    assert_dbl(a->vals[4 * 3 + 0], -4);
    assert_dbl(a->vals[4 * 3 + 1], 8);
    assert_true(isnan(a->vals[4 * 3 + 2]));
    assert_true(isnan(r.series[1].vals[0 * 3 + 0])); /* sdb has no zeta */
    store_result_free(&r);

    /* A string field has no numeric value: no rows. */
    const char *const model[] = {"model"};
    q.fields = model;
    q.nfields = 1;
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.nseries, 0);
    store_result_free(&r);

    /* Aggregated with a filter. */
    const char *const kb[] = {"kb_read"};
    q = q_of("vm1", "diskio", T0, T0 + 10, 5, STORE_AGG_SUM);
    q.fields = kb;
    q.nfields = 1;
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.nseries, 2);
    assert_int_equal(r.series[0].nfields, 1);
    assert_dbl(r.series[0].vals[0], 66);
    assert_dbl(r.series[0].vals[1], 62);
    assert_dbl(r.series[1].vals[0], 60);
    assert_dbl(r.series[1].vals[1], 90);
    store_result_free(&r);
}

/* ---- aggregations -------------------------------------------------------------- */

/* Expected values per aggregation, bucket (step 5 s from T0) and column. */
struct want5 {
    enum store_agg agg;
    double sda_kb[2], sda_alpha[2], sda_zeta[2];
    double sdb_kb[2], sdb_ops[2];
};

static const struct want5 want5[] = {
    {STORE_AGG_MIN, {4, 1}, {0, 5}, {-4, -9}, {10, 40}, {100, 500}},
    {STORE_AGG_MAX, {23, 42}, {4, 9}, {0, -5}, {30, 50}, {300, 500}},
    {STORE_AGG_AVG, {13.2, 12.4}, {2, 7}, {-2, -7}, {20, 45}, {200, 500}},
    {STORE_AGG_LAST, {8, 3}, {4, 9}, {-4, -9}, {30, 50}, {300, 500}},
    {STORE_AGG_SUM, {66, 62}, {10, 35}, {-10, -35}, {60, 90}, {400, 500}},
    {STORE_AGG_COUNT, {5, 5}, {5, 5}, {5, 5}, {3, 2}, {2, 1}},
    {STORE_AGG_P95, {23, 42}, {4, 9}, {0, -5}, {30, 50}, {300, 500}},
};

static void test_each_aggregation_step5(void **state)
{
    struct fx *f = *state;
    for (size_t i = 0; i < sizeof want5 / sizeof want5[0]; i++) {
        const struct want5 *w = &want5[i];
        struct store_query q = q_of("vm1", "diskio", T0, T0 + 10, 5, w->agg);
        struct store_result r;
        assert_int_equal(ops->query(f->s, &q, &r), 0);
        assert_int_equal(r.nseries, 2);
        const struct store_series *a = &r.series[0], *b = &r.series[1];
        assert_int_equal(a->nrows, 2);
        assert_int_equal(b->nrows, 2);
        for (size_t k = 0; k < 2; k++) {
            assert_int_equal(a->ts[k], S(T0 + 5 * (int64_t)k));
            assert_int_equal(b->ts[k], S(T0 + 5 * (int64_t)k));
            assert_dbl(val(a, k, "kb_read"), w->sda_kb[k]);
            assert_dbl(val(a, k, "alpha"), w->sda_alpha[k]);
            assert_dbl(val(a, k, "zeta"), w->sda_zeta[k]);
            assert_dbl(val(b, k, "kb_read"), w->sdb_kb[k]);
            assert_dbl(val(b, k, "ops_read"), w->sdb_ops[k]);
        }
        /* Columns still report the stored type. */
        assert_int_equal(a->ftypes[col_of(a, "alpha")], PT_F_UINT);
        store_result_free(&r);
    }
}

static void test_each_aggregation_step10(void **state)
{
    struct fx *f = *state;
    static const struct {
        enum store_agg agg;
        double kb;
    } want[] = {{STORE_AGG_MIN, 1},  {STORE_AGG_MAX, 42},  {STORE_AGG_AVG, 12.8},
                {STORE_AGG_LAST, 3}, {STORE_AGG_SUM, 128}, {STORE_AGG_COUNT, 10},
                {STORE_AGG_P95, 42}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        struct store_query q = q_of("vm1", "diskio", T0, T0 + 10, 10, want[i].agg);
        struct store_result r;
        assert_int_equal(ops->query(f->s, &q, &r), 0);
        assert_int_equal(r.nseries, 2);
        assert_int_equal(r.series[0].nrows, 1);
        assert_int_equal(r.series[0].ts[0], S(T0));
        assert_dbl(val(&r.series[0], 0, "kb_read"), want[i].kb);
        store_result_free(&r);
    }
}

static void test_step_alignment(void **state)
{
    struct fx *f = *state;
    struct store_result r;

    /* 3 s buckets: {4,15,23} {16,8,42} {7,1,9} {3}. */
    struct store_query q = q_of("vm1", "diskio", T0, T0 + 10, 3, STORE_AGG_SUM);
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    const struct store_series *a = &r.series[0];
    assert_int_equal(a->nrows, 4);
    const double sums3[] = {42, 66, 17, 3};
    for (size_t k = 0; k < 4; k++) {
        assert_int_equal(a->ts[k], S(T0 + 3 * (int64_t)k));
        assert_dbl(val(a, k, "kb_read"), sums3[k]);
    }
    /* sdb at T0, +2, +4, +6, +8: buckets T0, T0+3, T0+6 (two points). */
    assert_int_equal(r.series[1].nrows, 3);
    assert_dbl(val(&r.series[1], 2, "kb_read"), 90);
    store_result_free(&r);

    /* 11 s buckets are aligned to the epoch, not to from: T0 mod 11 = 8,
     * so the buckets start at T0-8 (k = 0..2) and T0+3 (k = 3..9). */
    q = q_of("vm1", "diskio", T0, T0 + 10, 11, STORE_AGG_SUM);
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    a = &r.series[0];
    assert_int_equal(a->nrows, 2);
    assert_int_equal(a->ts[0], S(T0 - 8));
    assert_int_equal(a->ts[1], S(T0 + 3));
    assert_dbl(val(a, 0, "kb_read"), 42);
    assert_dbl(val(a, 1, "kb_read"), 86);
    store_result_free(&r);

    /* from inside a bucket: the bucket keeps its start and only the points
     * in range count. */
    q = q_of("vm1", "diskio", T0 + 2, T0 + 10, 5, STORE_AGG_SUM);
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    a = &r.series[0];
    assert_int_equal(a->nrows, 2);
    assert_int_equal(a->ts[0], S(T0));
    assert_dbl(val(a, 0, "kb_read"), 47);
    assert_dbl(val(a, 1, "kb_read"), 62);
    store_result_free(&r);

    /* A step of a minute over data from one minute: one row. */
    q = q_of("vm1", "cpu", T0 - 3600, T0 + 3600, 60, STORE_AGG_AVG);
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.nseries, 1);
    assert_int_equal(r.series[0].nrows, 1);
    assert_int_equal(r.series[0].ntags, 0);
    assert_dbl(val(&r.series[0], 0, "cpu_utilization"), 10.5);
    assert_dbl(val(&r.series[0], 0, "cpu_num"), 4);
    store_result_free(&r);
}

static void test_p95_nearest_rank(void **state)
{
    struct fx *f = *state;
    struct store_result r;
    /* 20 values 1..20: rank ceil(19) = 19. */
    struct store_query q = q_of("vm1", "cpu", T0, T0 + 20, 20, STORE_AGG_P95);
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.series[0].nrows, 1);
    assert_dbl(val(&r.series[0], 0, "cpu_utilization"), 19);
    /* Columns: catalog order (cpu_utilization before cpu_num). */
    assert_string_equal(r.series[0].fields[0], "cpu_utilization");
    assert_string_equal(r.series[0].fields[1], "cpu_num");
    store_result_free(&r);
    /* Two buckets of 10: rank 10, the largest of each. */
    q.step_ns = S(10);
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.series[0].nrows, 2);
    assert_dbl(val(&r.series[0], 0, "cpu_utilization"), 19);
    assert_dbl(val(&r.series[0], 1, "cpu_utilization"), 20);
    store_result_free(&r);
}

/* ---- edges and errors ------------------------------------------------------------ */

static void test_empty_and_invalid(void **state)
{
    struct fx *f = *state;
    struct store_result r;
    struct store_query q = q_of("vm1", "diskio", T0 + 100, T0 + 200, 0, STORE_AGG_NONE);
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.nseries, 0);
    assert_null(r.series);
    store_result_free(&r);

    q = q_of("vm1", "diskio", T0 + 100, T0 + 200, 60, STORE_AGG_MAX);
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.nseries, 0);

    q = q_of("nosuch", "diskio", T0, T0 + 10, 0, STORE_AGG_NONE);
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.nseries, 0);
    q = q_of("vm1", "nosuch", T0, T0 + 10, 0, STORE_AGG_NONE);
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.nseries, 0);

    q = q_of("vm1", "diskio", T0 + 10, T0 + 10, 0, STORE_AGG_NONE); /* from == to */
    assert_int_equal(ops->query(f->s, &q, &r), -EINVAL);
    assert_int_equal(r.nseries, 0);
    q = q_of("vm1", "diskio", T0 + 10, T0, 0, STORE_AGG_NONE);
    assert_int_equal(ops->query(f->s, &q, &r), -EINVAL);
    q = q_of("vm1", "diskio", T0, T0 + 10, -5, STORE_AGG_AVG);
    assert_int_equal(ops->query(f->s, &q, &r), -EINVAL);
    q = q_of("vm1", "diskio", T0, T0 + 10, 5, STORE_AGG_NONE); /* a step needs an agg */
    assert_int_equal(ops->query(f->s, &q, &r), -EINVAL);
    q = q_of("vm1", "diskio", T0, T0 + 10, 5, (enum store_agg)42);
    assert_int_equal(ops->query(f->s, &q, &r), -EINVAL);
    q = q_of("vm1", NULL, T0, T0 + 10, 0, STORE_AGG_NONE);
    assert_int_equal(ops->query(f->s, &q, &r), -EINVAL);
    /* Asking for more columns than a result may hold. */
    static char names[STORE_MAX_COLS + 1][8];
    const char *many[STORE_MAX_COLS + 1];
    for (size_t i = 0; i <= STORE_MAX_COLS; i++) {
        snprintf(names[i], sizeof names[i], "f%zu", i);
        many[i] = names[i];
    }
    q = q_of("vm1", "diskio", T0, T0 + 10, 0, STORE_AGG_NONE);
    q.fields = many;
    q.nfields = STORE_MAX_COLS + 1;
    assert_int_equal(ops->query(f->s, &q, &r), -E2BIG);
    q.nfields = STORE_MAX_COLS;
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.nseries, 0); /* none of them exists */
    const char *const dupe[] = {"kb_read", "kb_read"};
    q = q_of("vm1", "diskio", T0, T0 + 10, 0, STORE_AGG_NONE);
    q.fields = dupe;
    q.nfields = 2;
    assert_int_equal(ops->query(f->s, &q, &r), -EINVAL);
}

static void test_max_rows(void **state)
{
    struct fx *f = *state;
    struct store_result r;
    struct store_query q = q_of("vm1", "diskio", T0, T0 + 10, 0, STORE_AGG_NONE);
    q.max_rows = 9; /* sda has 10 */
    assert_int_equal(ops->query(f->s, &q, &r), -E2BIG);
    assert_int_equal(r.nseries, 0);
    assert_null(r.series);
    q.max_rows = 10;
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    store_result_free(&r);
    q = q_of("vm1", "diskio", T0, T0 + 10, 5, STORE_AGG_AVG);
    q.max_rows = 1;
    assert_int_equal(ops->query(f->s, &q, &r), -E2BIG);
    q.max_rows = 2;
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    store_result_free(&r);
}

/* ---- latest --------------------------------------------------------------------- */

static const struct pt_field *lfield(const struct store_latest *l, const char *k)
{
    for (size_t i = 0; i < l->nfields; i++)
        if (pt_str_eq(l->fields[i].key, k)) return &l->fields[i];
    fail_msg("no field %s in latest %s", k, l->measurement);
    return NULL;
}

static void test_latest(void **state)
{
    struct fx *f = *state;
    struct store_result r;
    assert_int_equal(ops->latest(f->s, "ns1", "mcis1", "vm1", NULL, &r), 0);
    assert_int_equal(r.nlatest, 3);
    assert_int_equal(r.nseries, 0);
    /* Catalog order of measurements: cpu before diskio. */
    const struct store_latest *c = &r.latest[0], *a = &r.latest[1], *b = &r.latest[2];
    assert_string_equal(c->measurement, "cpu");
    assert_int_equal(c->ntags, 0);
    assert_int_equal(c->ts_ns, S(T0 + 19));
    assert_int_equal(c->nfields, 2);
    assert_int_equal(lfield(c, "cpu_utilization")->type, PT_F_FLOAT);
    assert_dbl(lfield(c, "cpu_utilization")->v.f, 13);
    assert_int_equal(lfield(c, "cpu_num")->type, PT_F_UINT);
    assert_int_equal(lfield(c, "cpu_num")->v.u, 4);

    assert_string_equal(a->measurement, "diskio");
    assert_int_equal(a->ntags, 1);
    assert_string_equal(a->tag_keys[0], "device");
    assert_string_equal(a->tag_vals[0], "sda");
    assert_int_equal(a->ts_ns, S(T0 + 9));
    assert_int_equal(a->nfields, 4);
    assert_int_equal(lfield(a, "zeta")->type, PT_F_INT);
    assert_int_equal(lfield(a, "zeta")->v.i, -9);
    assert_int_equal(lfield(a, "alpha")->type, PT_F_UINT);
    assert_int_equal(lfield(a, "alpha")->v.u, 9);
    assert_dbl(lfield(a, "kb_read")->v.f, 3);
    assert_int_equal(lfield(a, "model")->type, PT_F_STR);
    assert_true(pt_str_eq(lfield(a, "model")->v.s, "ssd-x"));

    assert_string_equal(b->tag_vals[0], "sdb");
    assert_int_equal(b->ts_ns, S(T0 + 8));
    assert_int_equal(lfield(b, "ops_read")->v.u, 500);
    assert_dbl(lfield(b, "kb_read")->v.f, 50);

    /* The result owns its strings: they outlive further store calls. */
    struct store_result r2;
    assert_int_equal(ops->latest(f->s, "ns1", "mcis1", "vm2", "diskio", &r2), 0);
    assert_int_equal(r2.nlatest, 1);
    assert_dbl(lfield(&r2.latest[0], "kb_read")->v.f, 1009);
    store_result_free(&r2);
    assert_true(pt_str_eq(lfield(a, "model")->v.s, "ssd-x"));
    assert_string_equal(c->fields[0].key.p, "cpu_utilization"); /* NUL-terminated copy */
    store_result_free(&r);

    assert_int_equal(ops->latest(f->s, "ns1", "mcis1", "vm1", "diskio", &r), 0);
    assert_int_equal(r.nlatest, 2);
    store_result_free(&r);
    assert_int_equal(ops->latest(f->s, "ns1", "mcis1", "nosuch", NULL, &r), 0);
    assert_int_equal(r.nlatest, 0);
    assert_int_equal(ops->latest(f->s, "ns1", "other", "vm1", NULL, &r), 0);
    assert_int_equal(r.nlatest, 0);
    assert_int_equal(ops->latest(f->s, NULL, "mcis1", "vm1", NULL, &r), -EINVAL);
}

/* ---- writes --------------------------------------------------------------------- */

static void test_overwrite_same_time(void **state)
{
    struct fx *f = *state;
    struct pw w;
    pw_init(&w, "vm1", "diskio", T0 + 3);
    pw_tag(&w, "device", "sda");
    pw_f(&w, "kb_read", 99.5);
    assert_int_equal(write_pws(f->s, &w, 1), 0);
    struct store_query q = q_of("vm1", "diskio", T0, T0 + 10, 0, STORE_AGG_NONE);
    struct store_result r;
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.series[0].nrows, 10);
    assert_dbl(val(&r.series[0], 3, "kb_read"), 99.5);
    assert_true(isnan(val(&r.series[0], 3, "alpha"))); /* replaced whole */
    store_result_free(&r);
}

static void test_tags_order_and_escaping(void **state)
{
    struct fx *f = *state;
    /* The same tag set in another order is the same series; awkward
     * characters survive. */
    struct pw w[2];
    pw_init(&w[0], "vm3", "disk", T0);
    pw_tag(&w[0], "mount", "/a,b=c\\d");
    pw_tag(&w[0], "device", "sda1");
    pw_f(&w[0], "disk_utilization", 1);
    pw_init(&w[1], "vm3", "disk", T0 + 1);
    pw_tag(&w[1], "device", "sda1");
    pw_tag(&w[1], "mount", "/a,b=c\\d");
    pw_f(&w[1], "disk_utilization", 2);
    assert_int_equal(write_pws(f->s, w, 2), 0);
    struct store_query q = q_of("vm3", "disk", T0, T0 + 10, 0, STORE_AGG_NONE);
    struct store_result r;
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.nseries, 1);
    const struct store_series *s = &r.series[0];
    assert_int_equal(s->nrows, 2);
    assert_int_equal(s->ntags, 2);
    assert_string_equal(s->tag_keys[0], "device");
    assert_string_equal(s->tag_vals[0], "sda1");
    assert_string_equal(s->tag_keys[1], "mount");
    assert_string_equal(s->tag_vals[1], "/a,b=c\\d");
    store_result_free(&r);
}

static void test_batch_atomicity(void **state)
{
    struct fx *f = *state;
    struct store_result r;
    struct pw w[3];
    for (int i = 0; i < 3; i++) {
        pw_init(&w[i], "vm9", "network", T0 + i);
        pw_tag(&w[i], "interface", "eth0");
        pw_f(&w[i], "bytes_in", 1000.0 * i);
    }
    w[2].id.vm = pt_str_c(""); /* invalid: the whole batch is refused */
    assert_int_equal(write_pws(f->s, w, 3), -EINVAL);
    struct store_query q = q_of("vm9", "network", T0, T0 + 10, 0, STORE_AGG_NONE);
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.nseries, 0);
    assert_int_equal(ops->latest(f->s, "ns1", "mcis1", "vm9", NULL, &r), 0);
    assert_int_equal(r.nlatest, 0);

    /* A non-finite value is refused the same way. */
    w[2].id.vm = pt_str_c("vm9");
    w[2].f[0].v.f = NAN;
    assert_int_equal(write_pws(f->s, w, 3), -EINVAL);
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.nseries, 0);

    /* The series created by the rolled-back batch is gone from the writer's
     * cache too: writing it again stores visible points. */
    w[2].f[0].v.f = 2000;
    assert_int_equal(write_pws(f->s, w, 3), 0);
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.nseries, 1);
    assert_int_equal(r.series[0].nrows, 3);
    assert_dbl(r.series[0].vals[2], 2000);
    store_result_free(&r);

    /* Empty measurements are skipped, an empty batch is a no-op. */
    pw_init(&w[0], "vm9", "diskio", T0);
    assert_int_equal(write_pws(f->s, w, 1), 0);
    assert_int_equal(ops->write_batch(f->s, NULL, 0), 0);
    assert_int_equal(ops->latest(f->s, "ns1", "mcis1", "vm9", "diskio", &r), 0);
    assert_int_equal(r.nlatest, 0);
}

/* ---- retention, size, reopening ------------------------------------------------------ */

static void test_retention(void **state)
{
    struct fx *f = *state;
    struct store_result r;
    /* Older than T0+5: sda k<5 (5), sdb T0,+2,+4 (3), cpu k<5 (5), vm2 (5). */
    assert_int_equal(ops->retention(f->s, S(T0 + 5)), 18);
    assert_int_equal(ops->retention(f->s, S(T0 + 5)), 0);

    struct store_query q = q_of("vm1", "diskio", T0 - 100, T0 + 100, 0, STORE_AGG_NONE);
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.nseries, 2);
    assert_int_equal(r.series[0].nrows, 5);
    assert_int_equal(r.series[0].ts[0], S(T0 + 5));
    assert_dbl(val(&r.series[0], 0, "kb_read"), 42);
    assert_int_equal(r.series[1].nrows, 2);
    assert_int_equal(r.series[1].ts[0], S(T0 + 6));
    store_result_free(&r);
    q = q_of("vm1", "cpu", T0 - 100, T0 + 100, 0, STORE_AGG_NONE);
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.series[0].nrows, 15);
    store_result_free(&r);

    /* Everything: series without points drop out of latest. */
    assert_int_equal(ops->retention(f->s, S(T0 + 1000)), 5 + 2 + 15 + 5);
    assert_int_equal(ops->latest(f->s, "ns1", "mcis1", "vm1", NULL, &r), 0);
    assert_int_equal(r.nlatest, 0);
    q = q_of("vm1", "diskio", T0 - 100, T0 + 100, 0, STORE_AGG_NONE);
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.nseries, 0);
    /* And the store still takes new points for the old series. */
    load_data(f->s);
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.nseries, 2);
    store_result_free(&r);
}

static void test_size_and_reopen(void **state)
{
    struct fx *f = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/metrics.db", f->dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    int64_t size = ops->size(f->s);
    assert_true(size >= st.st_size);
    assert_true(size > 0);

    ops->close(f->s);
    f->s = open_url(f->dir, "sqlite:metrics.db"); /* the same file, named */
    struct store_query q = q_of("vm1", "diskio", T0, T0 + 10, 5, STORE_AGG_SUM);
    struct store_result r;
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.nseries, 2);
    assert_dbl(val(&r.series[0], 0, "kb_read"), 66);
    assert_dbl(val(&r.series[1], 1, "kb_read"), 90);
    store_result_free(&r);
    /* Writes after reopening find the existing series (no duplicates). */
    load_data(f->s);
    q.step_ns = 0;
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.nseries, 2);
    assert_int_equal(r.series[0].nrows, 10);
    store_result_free(&r);
}

/* ---- opening ------------------------------------------------------------------- */

static int open_err(const char *dir, const char *url, char *err, size_t errlen)
{
    struct store_conf conf = {.url = url, .data_dir = dir};
    struct store *s = (struct store *)1;
    int rc = ops->open(&conf, &s, err, errlen);
    if (rc == 0) ops->close(s);
    assert_true(rc != 0 || s != NULL);
    if (rc) assert_null(s);
    return rc;
}

static void must_contain(const char *err, const char *what)
{
    if (!strstr(err, what)) fail_msg("error '%s' does not say '%s'", err, what);
}

static void test_open_url_forms(void **state)
{
    (void)state;
    char dir[64], path[160], url[200], err[512];
    snprintf(dir, sizeof dir, "/tmp/pt-store-XXXXXX");
    assert_non_null(mkdtemp(dir));
    struct stat st;

    assert_int_equal(open_err(dir, "sqlite:", err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/metrics.db", dir);
    assert_int_equal(stat(path, &st), 0);

    snprintf(path, sizeof path, "%s/sub", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(open_err(dir, "sqlite:sub/rel.db", err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/sub/rel.db", dir);
    assert_int_equal(stat(path, &st), 0);

    snprintf(url, sizeof url, "sqlite:///%s/abs.db", dir + 1);
    assert_int_equal(open_err("/nonexistent", url, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/abs.db", dir);
    assert_int_equal(stat(path, &st), 0);

    assert_true(open_err(dir, "sqlite://host/x.db", err, sizeof err) < 0);
    must_contain(err, "sqlite:///");
    assert_true(open_err(dir, "influxdb://x", err, sizeof err) < 0);
    assert_true(open_err(dir, "sqlite:sub/", err, sizeof err) < 0);
    must_contain(err, "directory");
    rm_rf(dir);
}

static void test_open_errors(void **state)
{
    (void)state;
    char dir[64], path[160], url[200], err[512];
    snprintf(dir, sizeof dir, "/tmp/pt-store-XXXXXX");
    assert_non_null(mkdtemp(dir));

    /* Missing directory. */
    assert_true(open_err(dir, "sqlite:nodir/m.db", err, sizeof err) < 0);
    must_contain(err, "nodir");
    must_contain(err, "does not exist");

    /* Not an SQLite file at all. */
    snprintf(path, sizeof path, "%s/junk.db", dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (int i = 0; i < 200; i++) fputs("this is not a database. ", fp);
    fclose(fp);
    assert_true(open_err(dir, "sqlite:junk.db", err, sizeof err) < 0);
    must_contain(err, "junk.db");
    must_contain(err, "not a Pantala database");

    /* An SQLite file of another application. */
    snprintf(path, sizeof path, "%s/other.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_true(open_err(dir, "sqlite:other.db", err, sizeof err) < 0);
    must_contain(err, "not a Pantala database");

    /* A store written by a newer pantalad. */
    assert_int_equal(open_err(dir, "sqlite:new.db", err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/new.db", dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_true(open_err(dir, "sqlite:new.db", err, sizeof err) < 0);
    must_contain(err, "newer");

    /* A directory the collector may not write (root may write anywhere). */
    if (geteuid() != 0) {
        snprintf(path, sizeof path, "%s/ro", dir);
        assert_int_equal(mkdir(path, 0500), 0);
        assert_true(open_err(dir, "sqlite:ro/m.db", err, sizeof err) < 0);
        must_contain(err, "Permission denied");
    }
    snprintf(url, sizeof url, "sqlite://%s/nodir/m.db", dir);
    assert_true(open_err(dir, url, err, sizeof err) < 0);
    must_contain(err, "does not exist");
    rm_rf(dir);
}

/* ---- one writer, many readers ------------------------------------------------------ */

#define CONC_BATCHES 400
#define CONC_READERS 3

struct conc {
    struct store *s;
    atomic_bool done;
    atomic_int errors;
    atomic_int reads;
};

static void *conc_writer(void *arg)
{
    struct conc *c = arg;
    static const char *const ifs[] = {"eth0", "eth1", "total"};
    for (int k = 0; k < CONC_BATCHES; k++) {
        /* One batch: the three series at the same time with the same value,
         * plus a filler so batches are not trivially small. */
        struct pw w[3 + 20];
        for (int i = 0; i < 3; i++) {
            pw_init(&w[i], "vmc", "network", T0 + k);
            pw_tag(&w[i], "interface", ifs[i]);
            pw_f(&w[i], "bytes_in", k);
            pw_u(&w[i], "pkts_in", (uint64_t)k);
        }
        for (int i = 3; i < 23; i++) {
            pw_init(&w[i], "vmc", "cpu", T0 + k);
            pw_tag(&w[i], "cpu", i < 13 ? "a" : "b");
            pw_f(&w[i], "cpu_utilization", i);
        }
        if (write_pws(c->s, w, 23)) atomic_fetch_add(&c->errors, 1);
        if (k % 100 == 99 && c->s && ops->retention(c->s, S(T0 - 1)) != 0)
            atomic_fetch_add(&c->errors, 1);
    }
    atomic_store(&c->done, true);
    return NULL;
}

static void conc_check(struct conc *c)
{
    struct store_query q = q_of("vmc", "network", T0, T0 + CONC_BATCHES, 0, STORE_AGG_NONE);
    struct store_result r;
    if (ops->query(c->s, &q, &r)) {
        atomic_fetch_add(&c->errors, 1);
        return;
    }
    /* A snapshot: the three series have the same rows, each row k = k. */
    bool ok = r.nseries == 0 || r.nseries == 3;
    for (size_t i = 0; ok && i < r.nseries; i++) {
        const struct store_series *s = &r.series[i];
        ok = s->nrows == r.series[0].nrows && s->nfields == 2;
        for (size_t k = 0; ok && k < s->nrows; k++)
            ok = s->ts[k] == S(T0 + (int64_t)k) && s->vals[k * 2] == (double)k &&
                 s->vals[k * 2 + 1] == (double)k;
    }
    if (!ok) atomic_fetch_add(&c->errors, 1);
    store_result_free(&r);

    if (ops->latest(c->s, "ns1", "mcis1", "vmc", "network", &r)) {
        atomic_fetch_add(&c->errors, 1);
        return;
    }
    ok = r.nlatest == 0 || r.nlatest == 3;
    for (size_t i = 0; ok && i < r.nlatest; i++)
        ok = r.latest[i].ts_ns == r.latest[0].ts_ns && r.latest[i].nfields == 2 &&
             r.latest[i].fields[0].v.f == (double)(r.latest[0].ts_ns / PT_NS_PER_SEC - T0);
    if (!ok) atomic_fetch_add(&c->errors, 1);
    store_result_free(&r);
    atomic_fetch_add(&c->reads, 1);
}

static void *conc_reader(void *arg)
{
    struct conc *c = arg;
    while (!atomic_load(&c->done)) conc_check(c);
    conc_check(c);
    return NULL;
}

static void test_concurrent_readers(void **state)
{
    struct fx *f = *state;
    struct conc c = {.s = f->s};
    pthread_t w, rd[CONC_READERS];
    for (int i = 0; i < CONC_READERS; i++)
        assert_int_equal(pthread_create(&rd[i], NULL, conc_reader, &c), 0);
    assert_int_equal(pthread_create(&w, NULL, conc_writer, &c), 0);
    pthread_join(w, NULL);
    for (int i = 0; i < CONC_READERS; i++) pthread_join(rd[i], NULL);
    assert_int_equal(atomic_load(&c.errors), 0);
    assert_true(atomic_load(&c.reads) >= CONC_READERS);

    struct store_query q = q_of("vmc", "network", T0, T0 + CONC_BATCHES, 0, STORE_AGG_NONE);
    struct store_result r;
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.nseries, 3);
    assert_int_equal(r.series[2].nrows, CONC_BATCHES);
    store_result_free(&r);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_raw_values_and_types),
        T(test_fields_filter),
        T(test_each_aggregation_step5),
        T(test_each_aggregation_step10),
        T(test_step_alignment),
        T(test_p95_nearest_rank),
        T(test_empty_and_invalid),
        T(test_max_rows),
        T(test_latest),
        T(test_overwrite_same_time),
        T(test_tags_order_and_escaping),
        T(test_batch_atomicity),
        T(test_retention),
        T(test_size_and_reopen),
        cmocka_unit_test(test_open_url_forms),
        cmocka_unit_test(test_open_errors),
        T(test_concurrent_readers),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
