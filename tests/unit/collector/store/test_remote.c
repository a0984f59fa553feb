/* The server backends without a server: URL forms and their errors at
 * open(), and the client-side result assembly (collector/store/remote.c)
 * on docs/storage.md's worked example: p95 reduction, across-VM
 * combination, row and column rules. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "pt/catalog.h"
#include "pt/err.h"
#include "pt/log.h"
#include "store/remote_int.h"
#include "store/store.h"
#include "store/storehttp.h"

#define S  INT64_C(1000000000)
#define T0 (INT64_C(1700000040) * S) /* a multiple of 60 s */

static int try_open(const char *url, const char *read_url, char *err, size_t len)
{
    const struct store_ops *ops = store_ops_for_url(url);
    if (!ops) return -1000;
    struct store_conf c = {.url = url, .data_dir = ".", .read_url = read_url};
    struct store *s = NULL;
    int rc = ops->open(&c, &s, err, len);
    if (rc == 0) ops->close(s);
    return rc;
}

static void test_urls(void **state)
{
    (void)state;
    char err[512];
    /* VictoriaMetrics opens without contacting the server. */
    assert_int_equal(try_open("victoriametrics:http://127.0.0.1:1", NULL, err, sizeof err), 0);
    assert_int_equal(
        try_open("victoriametrics:http://127.0.0.1:1/?batch=10&parallel=2&timeout=500ms&gzip=0",
                 NULL, err, sizeof err),
        0);
    assert_int_equal(
        try_open("victoriametrics:http://vminsert:8480/insert/0", NULL, err, sizeof err),
        PT_E_CONFIG);
    assert_non_null(strstr(err, "store.read_url"));
    assert_int_equal(try_open("victoriametrics:http://vminsert:8480/insert/0",
                              "http://vmselect:8481/select/0/prometheus", err, sizeof err),
                     0);
    assert_int_equal(try_open("victoriametrics:http://h:1?colour=red", NULL, err, sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "colour"));
    const char *bad[] = {"victoriametrics:http://h:1?batch=0", "victoriametrics:http://h:1?batch=x",
                         "victoriametrics:http://h:1?parallel=17",
                         "victoriametrics:http://h:1?timeout=soon",
                         "victoriametrics:http://h:1?gzip=yes"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(try_open(bad[i], NULL, err, sizeof err), PT_E_CONFIG);
        assert_non_null(strstr(err, "bad parameter"));
    }
    assert_int_equal(try_open("victoriametrics:ftp://h", NULL, err, sizeof err), -EINVAL);
    /* InfluxDB needs a database in the path; a server that is down only
     * delays creating it (the writer retries). */
    assert_int_equal(try_open("influxdb:http://127.0.0.1:1", NULL, err, sizeof err), PT_E_CONFIG);
    assert_non_null(strstr(err, "name the database"));
    assert_int_equal(
        try_open("influxdb:http://127.0.0.1:1/pantala?rp=x&timeout=200ms", NULL, err, sizeof err),
        0);
}

static void add(struct rs_set *set, const char *vm, const char *tag, int col, int64_t ts, double v)
{
    char *tk[] = {"device"}, *tv[] = {(char *)tag};
    struct rs_series *s;
    assert_int_equal(rs_series(set, vm, tk, tv, tag ? 1 : 0, &s), 0);
    assert_int_equal(rs_add(set, s, col, ts, v), 0);
}

/* docs/storage.md: 4, 15, 23, 16, 8, 42, 7, 1, 9, 3 at T0 ... T0+9 s,
 * step 5 s: p95 23 | 42, count 5 | 5. Fed out of order, as two VMs. */
static void test_reduce_and_across(void **state)
{
    (void)state;
    const double v[] = {4, 15, 23, 16, 8, 42, 7, 1, 9, 3};
    const char *fields[] = {"a", "b"};
    struct store_query q = {.ns = "n",
                            .mcis = "m",
                            .measurement = "x",
                            .fields = fields,
                            .nfields = 2,
                            .from_ns = T0,
                            .to_ns = T0 + 10 * S,
                            .step_ns = 5 * S,
                            .agg = STORE_AGG_P95,
                            .across = STORE_AGG_SUM};
    assert_int_equal(rs_query_check(&q), 0);
    struct rs_set set;
    assert_int_equal(rs_init(&set, &q), 0);
    for (int i = 9; i >= 0; i--) {
        add(&set, "vm-1", "sda", 0, T0 + i * S, v[i]);
        add(&set, "vm-2", "sda", 0, T0 + i * S, v[i] * 10);
    }
    add(&set, "vm-2", "sda", 1, T0 + 7 * S, 5);     /* b: one value, second bucket */
    add(&set, "vm-1", "sda", 0, T0 + 10 * S, 1000); /* outside [from, to): ignored */
    assert_int_equal(rs_reduce(&set), 0);
    assert_int_equal(rs_across(&set), 0);
    struct store_result r;
    assert_int_equal(rs_finish(&set, &r), 0);
    assert_int_equal(r.nseries, 1);
    struct store_series *s = &r.series[0];
    assert_null(s->vm); /* combined across VMs */
    assert_int_equal(s->ntags, 1);
    assert_string_equal(s->tag_vals[0], "sda");
    assert_int_equal(s->nrows, 2);
    assert_int_equal(s->nfields, 2);
    assert_true(s->ts[0] == T0 && s->ts[1] == T0 + 5 * S);
    /* p95 per VM (23 | 42 and 230 | 420), then summed across VMs. */
    assert_true(s->vals[0] == 253 && s->vals[2] == 462);
    assert_true(isnan(s->vals[1]) && s->vals[3] == 5);
    store_result_free(&r);
    rs_free(&set);
}

static void test_rows_and_columns(void **state)
{
    (void)state;
    /* Count: a row exists where any column has a value; a missing count is
     * 0. Discovered columns: catalog first (cpu_user after
     * cpu_utilization), then by name; only those with values in a series. */
    struct store_query q = {.ns = "n",
                            .mcis = "m",
                            .vm = "vm-1",
                            .measurement = "cpu",
                            .from_ns = T0,
                            .to_ns = T0 + 60 * S,
                            .step_ns = 10 * S,
                            .agg = STORE_AGG_COUNT};
    struct rs_set set;
    assert_int_equal(rs_init(&set, &q), 0);
    int zz, user, util;
    assert_int_equal(rs_column(&set, "zz", PT_F_FLOAT, &zz), 0);
    assert_int_equal(rs_column(&set, "cpu_user", 0, &user), 0);
    assert_int_equal(rs_column(&set, "cpu_utilization", 0, &util), 0);
    add(&set, "vm-1", NULL, user, T0, 3);
    add(&set, "vm-1", NULL, util, T0 + 20 * S, 2);
    add(&set, "vm-1", "sdb", zz, T0, 1);
    struct store_result r;
    assert_int_equal(rs_finish(&set, &r), 0);
    assert_int_equal(r.nseries, 2);
    struct store_series *s = &r.series[0]; /* no tags sorts first */
    assert_int_equal(s->ntags, 0);
    assert_string_equal(s->vm, "vm-1");
    assert_int_equal(s->nfields, 2);
    assert_string_equal(s->fields[0], "cpu_utilization");
    assert_string_equal(s->fields[1], "cpu_user");
    assert_int_equal(s->nrows, 2);
    assert_true(s->vals[0] == 0 && s->vals[1] == 3); /* T0: no cpu_utilization: count 0 */
    assert_true(s->vals[2] == 2 && s->vals[3] == 0);
    assert_int_equal(r.series[1].nfields, 1);
    assert_string_equal(r.series[1].fields[0], "zz");
    store_result_free(&r);
    rs_free(&set);
    /* max_rows is a ceiling, not a truncation. */
    q.max_rows = 1;
    assert_int_equal(rs_init(&set, &q), 0);
    assert_int_equal(rs_column(&set, "a", 0, &zz), 0);
    add(&set, "vm-1", NULL, zz, T0, 1);
    add(&set, "vm-1", NULL, zz, T0 + 10 * S, 1);
    assert_int_equal(rs_finish(&set, &r), -E2BIG);
    assert_int_equal(r.nseries, 0);
    rs_free(&set);
}

/* Server answers with integers past int64 (InfluxDB prints a large float
 * that way): read as reals, everything else untouched, strings included. */
static void test_json_bigints(void **state)
{
    (void)state;
    char err[160];
    const char *in = "{\"a\":18446744073709552000,\"s\":\"x\\\"18446744073709552000\","
                     "\"b\":[-92233720368547758080,9223372036854775807,-9223372036854775808,"
                     "1.5e19,12345678901234567890123456789012345678901234567890123456789012345]}";
    json_t *j = sh_json_load(in, strlen(in), err, sizeof err);
    assert_non_null(j);
    assert_true(json_is_real(json_object_get(j, "a")));
    assert_true(json_real_value(json_object_get(j, "a")) == 18446744073709552000.0);
    assert_string_equal(json_string_value(json_object_get(j, "s")), "x\"18446744073709552000");
    json_t *b = json_object_get(j, "b");
    assert_true(json_is_real(json_array_get(b, 0)));
    assert_true(json_real_value(json_array_get(b, 0)) < -9.2e19);
    assert_true(json_is_integer(json_array_get(b, 1))); /* fits: stays exact */
    assert_int_equal(json_integer_value(json_array_get(b, 1)), INT64_MAX);
    assert_int_equal(json_integer_value(json_array_get(b, 2)), INT64_MIN);
    assert_true(json_is_real(json_array_get(b, 4)));
    json_decref(j);
    /* Not JSON: a message, no crash; truncated inputs of every length too. */
    assert_null(sh_json_load("{\"a\":", 5, err, sizeof err));
    assert_true(err[0] != '\0');
    for (size_t n = 0; n < strlen(in); n++) {
        j = sh_json_load(in, n, err, sizeof err);
        json_decref(j);
    }
}

static void test_query_check(void **state)
{
    (void)state;
    struct store_query q = {.ns = "n",
                            .mcis = "m",
                            .measurement = "x",
                            .from_ns = 0,
                            .to_ns = 10,
                            .step_ns = 5,
                            .agg = STORE_AGG_AVG,
                            .across = STORE_AGG_AVG};
    assert_int_equal(rs_query_check(&q), 0);
    q.across = STORE_AGG_P95; /* across takes min, max, avg or sum */
    assert_int_equal(rs_query_check(&q), -EINVAL);
    q.across = STORE_AGG_AVG;
    q.step_ns = 0; /* across needs buckets */
    assert_int_equal(rs_query_check(&q), -EINVAL);
    q.group_by_vm = true; /* per VM, raw is fine */
    assert_int_equal(rs_query_check(&q), 0);
    q.from_ns = 10;
    assert_int_equal(rs_query_check(&q), -EINVAL);
}

int main(void)
{
    pt_log_set_level(PT_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_reduce_and_across),
        cmocka_unit_test(test_rows_and_columns),
        cmocka_unit_test(test_query_check),
        cmocka_unit_test(test_json_bigints),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
