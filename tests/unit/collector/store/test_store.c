/* Tests of collector/store/store.c: aggregation names, bucket alignment, the
 * per-bucket reducer, backend lookup and result ownership. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pt/catalog.h"
#include "store/store_int.h"

static void test_agg_names(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        enum store_agg agg;
    } cases[] = {{"min", STORE_AGG_MIN},   {"max", STORE_AGG_MAX}, {"avg", STORE_AGG_AVG},
                 {"last", STORE_AGG_LAST}, {"sum", STORE_AGG_SUM}, {"count", STORE_AGG_COUNT},
                 {"p95", STORE_AGG_P95}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(store_agg_parse(cases[i].name), cases[i].agg);
        assert_string_equal(store_agg_name(cases[i].agg), cases[i].name);
    }
    assert_int_equal(store_agg_parse("none"), -1); /* raw is step 0, not an aggregation */
    assert_int_equal(store_agg_parse("MAX"), -1);
    assert_int_equal(store_agg_parse("p99"), -1);
    assert_int_equal(store_agg_parse(""), -1);
    assert_int_equal(store_agg_parse(NULL), -1);
    assert_string_equal(store_agg_name((enum store_agg)99), "?");
}

static void test_bucket(void **state)
{
    (void)state;
    assert_int_equal(store_bucket(0, 60), 0);
    assert_int_equal(store_bucket(59, 60), 0);
    assert_int_equal(store_bucket(60, 60), 60);
    assert_int_equal(store_bucket(1699999999, 60), 1699999980);
    int64_t ns = INT64_C(1000000000);
    assert_int_equal(store_bucket(1700000000 * ns + 1, 60 * ns), 1699999980 * ns);
    /* Before the epoch the bucket is still the floor. */
    assert_int_equal(store_bucket(-1, 60), -60);
    assert_int_equal(store_bucket(-60, 60), -60);
    assert_int_equal(store_bucket(-61, 60), -120);
}

static double reduce(enum store_agg agg, const double *v, size_t n)
{
    struct store_acc a = {0};
    for (size_t i = 0; i < n; i++) assert_int_equal(store_acc_add(&a, agg, v[i]), 0);
    double r = store_acc_result(&a, agg);
    store_acc_free(&a);
    return r;
}

static void test_acc(void **state)
{
    (void)state;
    const double v[] = {4, 15, 23, 16, 8};
    assert_true(reduce(STORE_AGG_MIN, v, 5) == 4);
    assert_true(reduce(STORE_AGG_MAX, v, 5) == 23);
    assert_true(reduce(STORE_AGG_AVG, v, 5) == 66.0 / 5);
    assert_true(reduce(STORE_AGG_LAST, v, 5) == 8);
    assert_true(reduce(STORE_AGG_SUM, v, 5) == 66);
    assert_true(reduce(STORE_AGG_COUNT, v, 5) == 5);
    assert_true(reduce(STORE_AGG_P95, v, 5) == 23); /* rank ceil(4.75) = 5 */

    const double neg[] = {-3.5, -1.25};
    assert_true(reduce(STORE_AGG_MIN, neg, 2) == -3.5);
    assert_true(reduce(STORE_AGG_MAX, neg, 2) == -1.25);
    assert_true(reduce(STORE_AGG_AVG, neg, 2) == -2.375);

    /* No value: NaN, except count which is 0. */
    assert_true(isnan(reduce(STORE_AGG_MIN, NULL, 0)));
    assert_true(isnan(reduce(STORE_AGG_AVG, NULL, 0)));
    assert_true(isnan(reduce(STORE_AGG_LAST, NULL, 0)));
    assert_true(isnan(reduce(STORE_AGG_SUM, NULL, 0)));
    assert_true(isnan(reduce(STORE_AGG_P95, NULL, 0)));
    assert_true(reduce(STORE_AGG_COUNT, NULL, 0) == 0);
}

static void test_p95_nearest_rank(void **state)
{
    (void)state;
    double v[200];
    /* 1..n in a scrambled order: p95 is the value of rank ceil(0.95 n). */
    static const struct {
        size_t n;
        double want;
    } cases[] = {{1, 1},   {2, 2},    {19, 19},  {20, 19},  {21, 20},
                 {40, 38}, {100, 95}, {101, 96}, {200, 190}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t n = cases[c].n;
        for (size_t i = 0; i < n; i++) v[i] = (double)((i * 11 + 3) % n + 1);
        assert_true(reduce(STORE_AGG_P95, v, n) == cases[c].want);
    }
}

static void test_acc_reset_reuse(void **state)
{
    (void)state;
    struct store_acc a = {0};
    for (int i = 1; i <= 100; i++) assert_int_equal(store_acc_add(&a, STORE_AGG_P95, i), 0);
    assert_true(store_acc_result(&a, STORE_AGG_P95) == 95);
    store_acc_reset(&a);
    assert_int_equal(store_acc_add(&a, STORE_AGG_P95, 7), 0);
    assert_true(store_acc_result(&a, STORE_AGG_P95) == 7);
    store_acc_reset(&a);
    assert_int_equal(store_acc_add(&a, STORE_AGG_SUM, 2.5), 0);
    assert_int_equal(store_acc_add(&a, STORE_AGG_SUM, 0.5), 0);
    assert_true(store_acc_result(&a, STORE_AGG_SUM) == 3);
    store_acc_free(&a);
}

static void test_ops_for_url(void **state)
{
    (void)state;
    assert_ptr_equal(store_ops_for_url("sqlite:"), &store_sqlite_ops);
    assert_ptr_equal(store_ops_for_url("sqlite:///var/lib/pantala/metrics.db"), &store_sqlite_ops);
    assert_ptr_equal(store_ops_for_url("sqlite:data/m.db"), &store_sqlite_ops);
    assert_string_equal(store_sqlite_ops.name, "sqlite");
    assert_null(store_ops_for_url("sqlite"));
    assert_null(store_ops_for_url("sqlite3:x.db"));
    assert_null(store_ops_for_url("sqlit:x.db"));
    assert_ptr_equal(store_ops_for_url("influxdb:http://127.0.0.1:8086/pantala"),
                     &store_influxdb_ops);
    assert_ptr_equal(store_ops_for_url("victoriametrics:http://127.0.0.1:8428"),
                     &store_victoriametrics_ops);
    assert_null(store_ops_for_url("influx:http://127.0.0.1:8086/pantala"));
    assert_null(store_ops_for_url(""));
    assert_null(store_ops_for_url(NULL));
}

static char *dup(const char *s)
{
    char *p = strdup(s);
    assert_non_null(p);
    return p;
}

static void test_result_free(void **state)
{
    (void)state;
    struct store_result r = {0};
    store_result_free(&r); /* empty: nothing to do */
    store_result_free(NULL);

    r.nseries = 1;
    r.series = calloc(1, sizeof *r.series);
    struct store_series *s = r.series;
    s->measurement = dup("cpu");
    s->ntags = 1;
    s->tag_keys = calloc(1, sizeof(char *));
    s->tag_vals = calloc(1, sizeof(char *));
    s->tag_keys[0] = dup("cpu");
    s->tag_vals[0] = dup("0");
    s->nfields = 1;
    s->fields = calloc(1, sizeof(char *));
    s->fields[0] = dup("cpu_utilization");
    s->ftypes = calloc(1, 1);
    s->nrows = 1;
    s->ts = calloc(1, sizeof(int64_t));
    s->vals = calloc(1, sizeof(double));

    r.nlatest = 1;
    r.latest = calloc(1, sizeof *r.latest);
    struct store_latest *l = r.latest;
    l->measurement = dup("memory");
    l->nfields = 2;
    l->fields = calloc(2, sizeof *l->fields);
    l->fields[0].key = pt_str_c(dup("mem_total"));
    l->fields[0].type = PT_F_UINT;
    l->fields[1].key = pt_str_c(dup("model"));
    l->fields[1].type = PT_F_STR;
    l->fields[1].v.s = pt_str_c(dup("x"));
    store_result_free(&r); /* ASan/valgrind check that everything went */
    assert_null(r.series);
    assert_null(r.latest);
    assert_int_equal(r.nseries, 0);
    assert_int_equal(r.nlatest, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agg_names),
        cmocka_unit_test(test_bucket),
        cmocka_unit_test(test_acc),
        cmocka_unit_test(test_p95_nearest_rank),
        cmocka_unit_test(test_acc_reset_reuse),
        cmocka_unit_test(test_ops_for_url),
        cmocka_unit_test(test_result_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
