/* dtoa_fmt(): every finite double reads back bit-exact through strtod(),
 * in at most 17 digits and nearly always the fewest; the layout is %g's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/dtoa.h"

static const char *fmt(double v)
{
    static char buf[DTOA_MAX + 1];
    int n = dtoa_fmt(buf, v);
    assert_true(n > 0 && n <= DTOA_MAX);
    buf[n] = '\0';
    return buf;
}

/* Significant digits of the text s: without the leading zeros of
 * 0.000ddd nor the trailing ones of ddd000. */
static int digits_of(const char *s)
{
    char d[64];
    int n = 0;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9' && (n || *s != '0')) d[n++] = *s;
    while (n > 1 && d[n - 1] == '0') n--;
    return n ? n : 1;
}

/* The fewest significant digits that read back as v (printf's own
 * correctly rounded %.*g). */
static int shortest(double v)
{
    char b[64];
    for (int p = 1; p < 17; p++) {
        snprintf(b, sizeof b, "%.*g", p, v);
        if (strtod(b, NULL) == v) return p;
    }
    return 17;
}

static void test_known(void **state)
{
    (void)state;
    assert_string_equal(fmt(0.0), "0");
    assert_string_equal(fmt(-0.0), "-0");
    assert_string_equal(fmt(0.1), "0.1");
    assert_string_equal(fmt(-123.456), "-123.456");
    assert_string_equal(fmt(1.0 / 3), "0.3333333333333333");
    assert_string_equal(fmt(2.0 / 3), "0.6666666666666666");
    assert_string_equal(fmt(0.0001234), "0.0001234");  /* exponent -4: plain */
    assert_string_equal(fmt(0.00001234), "1.234e-05"); /* -5: scientific, as %g */
    assert_string_equal(fmt(1e16), "10000000000000000");
    assert_string_equal(fmt(1e17), "1e+17");
    assert_string_equal(fmt(1e300), "1e+300");
    assert_string_equal(fmt(1.5e-7), "1.5e-07");
    assert_string_equal(fmt(18446744073709551615.0), "1.8446744073709552e+19");
    assert_string_equal(fmt(1.7976931348623157e308), "1.7976931348623157e+308");
    assert_string_equal(fmt(5e-324), "5e-324"); /* the smallest subnormal */
    assert_string_equal(fmt(2.2250738585072014e-308), "2.2250738585072014e-308");
}

/* Random bit patterns, random mantissas at every exponent, and values of a
 * few decimals: all read back bit-exact, in at most 17 digits, and only
 * rarely in more than the fewest possible (Grisu2 gives up the shortest
 * text when it lies at the very edge of the value's rounding interval). */
static void test_round_trip(void **state)
{
    (void)state;
    uint64_t x = 88172645463325252u; /* xorshift64 */
    size_t n = 0, longer = 0;
    for (size_t i = 0; i < 100000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double v;
        if (i % 3 == 0)
            memcpy(&v, &x, sizeof v);
        else if (i % 3 == 1)
            v = ldexp((double)(x >> 11), (int)(x % 2100) - 1074 - 53);
        else
            v = (double)(int64_t)(x % 2000000001) / 1000.0 - 1e6;
        if (!isfinite(v)) continue;
        const char *s = fmt(v);
        char *end;
        double back = strtod(s, &end);
        if (*end || memcmp(&back, &v, sizeof v) != 0) fail_msg("%.17g printed as %s", v, s);
        int d = digits_of(s), best = shortest(v);
        if (d > 17) fail_msg("%.17g printed as %s: %d digits", v, s, d);
        longer += d > best;
        n++;
    }
    assert_true(longer * 100 < n); /* measured: 0.14 % */
}

/* The edges: powers of two (asymmetric interval), subnormals, neighbours of
 * the plain/scientific switch. */
static void test_edges(void **state)
{
    (void)state;
    for (int e = -1074; e <= 1023; e++) {
        double p = ldexp(1.0, e);
        const double vs[] = {p, nextafter(p, 0), nextafter(p, INFINITY), -p};
        for (size_t i = 0; i < 4; i++) {
            if (!isfinite(vs[i]) || vs[i] == 0) continue;
            const char *s = fmt(vs[i]);
            double back = strtod(s, NULL);
            if (memcmp(&back, &vs[i], sizeof back) != 0) fail_msg("%.17g printed as %s", vs[i], s);
        }
    }
    for (int k = -330; k <= 308; k++) {
        double p = pow(10, k);
        if (!isfinite(p) || p == 0) continue;
        const char *s = fmt(p);
        double back = strtod(s, NULL);
        if (memcmp(&back, &p, sizeof back) != 0) fail_msg("%.17g printed as %s", p, s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
