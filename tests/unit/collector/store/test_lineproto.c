/* Line protocol encoder (collector/store/lineproto.c): the exact bytes of
 * a line for each element's escaping rules, both dialects, number formats,
 * and the points each dialect refuses or skips. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pt/catalog.h"
#include "pt/err.h"
#include "store/lineproto.h"

static struct pt_ident ident = {{"ns1", 3}, {"web", 3}, {"vm-1", 4}, {"aws", 3}, {"h1", 2}};

/* Encodes one point and returns the line (static buffer) or NULL with *rc. */
static const char *line(enum lp_dialect d, const struct pt_ident *id, const struct pt_meas *m,
                        int64_t ts, int *rc)
{
    static char out[4096];
    struct lp_buf b = {0};
    struct store_point p = {id, m, ts};
    size_t nv;
    *rc = lp_point(&b, d, &p, &nv);
    if (*rc) {
        assert_int_equal(b.len, 0); /* nothing left behind */
        lp_buf_free(&b);
        return NULL;
    }
    assert_true(b.len < sizeof out);
    memcpy(out, b.p, b.len);
    out[b.len] = '\0';
    lp_buf_free(&b);
    return out;
}

static struct pt_field ffloat(const char *k, double v)
{
    return (struct pt_field){pt_str_c(k), PT_F_FLOAT, {.f = v}};
}

static void test_basic_line(void **state)
{
    (void)state;
    struct pt_tag tags[] = {{PT_STR("device"), PT_STR("sda")}};
    struct pt_field f[] = {ffloat("kb_read", 1.5),
                           {PT_STR("ops"), PT_F_INT, {.i = -3}},
                           {PT_STR("bytes"), PT_F_UINT, {.u = 42}},
                           {PT_STR("note"), PT_F_STR, {.s = PT_STR("ok")}}};
    struct pt_meas m = {PT_STR("diskio"), tags, f, 1, 4};
    int rc;
    assert_string_equal(line(LP_INFLUX, &ident, &m, 1700000000123456789, &rc),
                        "diskio,ns_id=ns1,mcis_id=web,vm_id=vm-1,csp_type=aws,host=h1,device=sda "
                        "kb_read=1.5,ops=-3i,bytes=42i,note=\"ok\" 1700000000123456789\n");
    /* VictoriaMetrics: no string fields (it would store them as 0). */
    assert_string_equal(line(LP_VICTORIA, &ident, &m, 5, &rc),
                        "diskio,ns_id=ns1,mcis_id=web,vm_id=vm-1,csp_type=aws,host=h1,device=sda "
                        "kb_read=1.5,ops=-3i,bytes=42i 5\n");
    /* csp and host are optional metadata: no empty tags. */
    struct pt_ident bare = {{"n", 1}, {"m", 1}, {"v", 1}, {NULL, 0}, {NULL, 0}};
    struct pt_meas one = {PT_STR("cpu"), NULL, f, 0, 1};
    assert_string_equal(line(LP_INFLUX, &bare, &one, -1, &rc),
                        "cpu,ns_id=n,mcis_id=m,vm_id=v kb_read=1.5 -1\n");
}

static void test_escaping(void **state)
{
    (void)state;
    struct pt_ident id = {PT_STR("n s"), PT_STR("a,b"), PT_STR("x=y"), PT_STR("c\"q"),
                          PT_STR("ü 測")};
    struct pt_tag tags[] = {{PT_STR("k ,="), PT_STR("v ,=\"")}};
    struct pt_field f[] = {ffloat("f ,=", 2),
                           {PT_STR("s"), PT_F_STR, {.s = PT_STR("a\"b\\c\nd\re")}}};
    struct pt_meas m = {PT_STR("m ,=x"), tags, f, 1, 2};
    int rc;
    /* Measurement: comma and space (not '='); keys and tag values: comma,
     * space, equals; string values: quote and backslash; a line feed or
     * carriage return in a string becomes a space; UTF-8 passes. */
    assert_string_equal(line(LP_INFLUX, &id, &m, 7, &rc),
                        "m\\ \\,=x,ns_id=n\\ s,mcis_id=a\\,b,vm_id=x\\=y,csp_type=c\"q,host=ü\\ 測,"
                        "k\\ \\,\\==v\\ \\,\\=\" f\\ \\,\\==2,s=\"a\\\"b\\\\c d e\" 7\n");
}

static void test_backslash(void **state)
{
    (void)state;
    struct pt_field f[] = {ffloat("f", 1)};
    struct pt_tag t1[] = {{PT_STR("path"), PT_STR("c:\\dir")}};
    struct pt_meas m1 = {PT_STR("disk"), t1, f, 1, 1};
    int rc;
    /* A backslash before an ordinary character: as is for InfluxDB 1.x,
     * doubled for VictoriaMetrics (which reads \\ as one). */
    assert_string_equal(
        line(LP_INFLUX, &ident, &m1, 1, &rc),
        "disk,ns_id=ns1,mcis_id=web,vm_id=vm-1,csp_type=aws,host=h1,path=c:\\dir f=1 1\n");
    assert_string_equal(
        line(LP_VICTORIA, &ident, &m1, 1, &rc),
        "disk,ns_id=ns1,mcis_id=web,vm_id=vm-1,csp_type=aws,host=h1,path=c:\\\\dir f=1 1\n");
    /* At the end, or before ',' ' ' '=': InfluxDB 1.x cannot carry it. */
    const char *bad[] = {"c:\\", "a\\,b", "a\\ b", "a\\=b"};
    for (size_t i = 0; i < 4; i++) {
        struct pt_tag t[] = {{PT_STR("path"), pt_str_c(bad[i])}};
        struct pt_meas m = {PT_STR("disk"), t, f, 1, 1};
        assert_null(line(LP_INFLUX, &ident, &m, 1, &rc));
        assert_int_equal(rc, -ERANGE);
        assert_non_null(line(LP_VICTORIA, &ident, &m, 1, &rc));
    }
    struct pt_tag t2[] = {{PT_STR("path"), PT_STR("c:\\")}};
    struct pt_meas m2 = {PT_STR("disk"), t2, f, 1, 1};
    assert_string_equal(
        line(LP_VICTORIA, &ident, &m2, 1, &rc),
        "disk,ns_id=ns1,mcis_id=web,vm_id=vm-1,csp_type=aws,host=h1,path=c:\\\\ f=1 1\n");
    /* A quote in a field name loses the line on VictoriaMetrics. */
    struct pt_field fq[] = {ffloat("a\"b", 1)};
    struct pt_meas m3 = {PT_STR("x"), NULL, fq, 0, 1};
    assert_null(line(LP_VICTORIA, &ident, &m3, 1, &rc));
    assert_int_equal(rc, -ERANGE);
    assert_string_equal(line(LP_INFLUX, &ident, &m3, 1, &rc),
                        "x,ns_id=ns1,mcis_id=web,vm_id=vm-1,csp_type=aws,host=h1 a\"b=1 1\n");
}

static void test_numbers(void **state)
{
    (void)state;
    struct pt_field f[] = {ffloat("a", 0.1),
                           ffloat("b", 1e300),
                           {PT_STR("c"), PT_F_INT, {.i = INT64_MIN}},
                           {PT_STR("d"), PT_F_UINT, {.u = INT64_MAX}},
                           {PT_STR("e"), PT_F_UINT, {.u = UINT64_MAX}}};
    struct pt_meas m = {PT_STR("n"), NULL, f, 0, 5};
    struct pt_ident id = {PT_STR("n"), PT_STR("m"), PT_STR("v"), {NULL, 0}, {NULL, 0}};
    int rc;
    /* The fewest digits that read back bit-exact (0.1, not
     * 0.10000000000000001; 1e+300, not 1.0000000000000001e+300); an
     * unsigned value past INT64_MAX becomes a float (InfluxDB 1.x has no
     * "u"). */
    assert_string_equal(
        line(LP_INFLUX, &id, &m, 0, &rc),
        "n,ns_id=n,mcis_id=m,vm_id=v a=0.1,b=1e+300,"
        "c=-9223372036854775808i,d=9223372036854775807i,e=1.8446744073709552e+19 0\n");
}

/* Every finite double comes back bit-exact from its text: values with a
 * few decimals (the fast path), random bit patterns (dtoa_fmt(), Grisu2), and
 * the edges between them. */
static void test_float_round_trip(void **state)
{
    (void)state;
    struct pt_ident id = {PT_STR("n"), PT_STR("m"), PT_STR("v"), {NULL, 0}, {NULL, 0}};
    uint64_t x = 88172645463325252u; /* xorshift64 */
    const double fixed[] = {0.0,
                            -0.0,
                            0.3,
                            -0.3,
                            1e-5,
                            123456.789,
                            9007199254740991.0,
                            9007199254740993.0,
                            4503599627370497.5,
                            1e15,
                            9e15,
                            1e16,
                            0.000000001,
                            1.5e-10,
                            2.2250738585072014e-308,
                            4.9e-324,
                            1.7976931348623157e308};
    for (size_t i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double v;
        if (i < sizeof fixed / sizeof fixed[0])
            v = fixed[i];
        else if (i % 3 == 0)
            v = (double)(int64_t)(x % 2000000001) / 100.0 - 1e7; /* two decimals */
        else if (i % 3 == 1)
            v = (double)(x >> 11) / 9007199254740992.0 * 1e3; /* random mantissa */
        else
            memcpy(&v, &x, sizeof v); /* any bit pattern */
        if (!isfinite(v)) continue;
        struct pt_field f[] = {ffloat("a", v)};
        struct pt_meas m = {PT_STR("n"), NULL, f, 0, 1};
        int rc;
        const char *l = line(LP_INFLUX, &id, &m, 0, &rc);
        assert_non_null(l);
        const char *a = strstr(l, " a=");
        assert_non_null(a);
        char *end;
        double back = strtod(a + 3, &end);
        assert_int_equal(*end, ' ');
        if (memcmp(&back, &v, sizeof v) != 0)
            fail_msg("%.17g printed as %.*s", v, (int)(end - a - 3), a + 3);
    }
}

static void test_refused_and_skipped(void **state)
{
    (void)state;
    int rc;
    struct pt_field nan[] = {ffloat("a", NAN)};
    struct pt_meas m = {PT_STR("n"), NULL, nan, 0, 1};
    assert_null(line(LP_INFLUX, &ident, &m, 0, &rc));
    assert_int_equal(rc, -EINVAL);
    /* Control characters are never valid in a name. */
    struct pt_field ok[] = {ffloat("a", 1)};
    struct pt_tag nl[] = {{PT_STR("k"), PT_STR("a\nb")}};
    struct pt_meas m2 = {PT_STR("n"), nl, ok, 1, 1};
    assert_null(line(LP_VICTORIA, &ident, &m2, 0, &rc));
    assert_int_equal(rc, -EINVAL);
    /* A tag named like an identity tag would be a second vm_id. */
    struct pt_tag dup[] = {{PT_STR("vm_id"), PT_STR("x")}};
    struct pt_meas m3 = {PT_STR("n"), dup, ok, 1, 1};
    assert_null(line(LP_INFLUX, &ident, &m3, 0, &rc));
    assert_int_equal(rc, -EINVAL);
    struct pt_meas m4 = {PT_STR(""), NULL, ok, 0, 1};
    assert_null(line(LP_INFLUX, &ident, &m4, 0, &rc));
    assert_int_equal(rc, -EINVAL);
    /* Nothing to write: no fields, or only strings on VictoriaMetrics. */
    struct pt_meas none = {PT_STR("n"), NULL, NULL, 0, 0};
    assert_null(line(LP_INFLUX, &ident, &none, 0, &rc));
    assert_int_equal(rc, LP_SKIPPED);
    struct pt_field s[] = {{PT_STR("s"), PT_F_STR, {.s = PT_STR("x")}}};
    struct pt_meas strs = {PT_STR("n"), NULL, s, 0, 1};
    assert_null(line(LP_VICTORIA, &ident, &strs, 0, &rc));
    assert_int_equal(rc, LP_SKIPPED);
    assert_non_null(line(LP_INFLUX, &ident, &strs, 0, &rc));
}

static void test_ceiling(void **state)
{
    (void)state;
    struct lp_buf b = {.max = 200};
    struct pt_field f[] = {ffloat("a", 1)};
    struct pt_meas m = {PT_STR("n"), NULL, f, 0, 1};
    struct store_point p = {&ident, &m, 1};
    size_t nv, lines = 0;
    int rc;
    while ((rc = lp_point(&b, LP_INFLUX, &p, &nv)) == 0) lines++;
    assert_int_equal(rc, PT_E_LIMIT);
    assert_true(lines >= 2);
    assert_true(b.len <= 200);
    /* Whole lines only. */
    assert_int_equal(b.p[b.len - 1], '\n');
    lp_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_line),       cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_backslash),        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_float_round_trip), cmocka_unit_test(test_refused_and_skipped),
        cmocka_unit_test(test_ceiling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
