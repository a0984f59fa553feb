/* Config: every error names the file, the line and the key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pt/conf.h"
#include "pt/err.h"
#include "pt/time.h"

static char path[64];

static void write_file(const char *text)
{
    snprintf(path, sizeof path, "/tmp/pt-conf-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/* Loads text and runs the standard getters; returns the first error. */
static int load_std(struct pt_conf *c, const char *text)
{
    write_file(text);
    int rc = pt_conf_load(c, path);
    const char *s;
    int64_t i, d;
    bool b;
    if (!rc) rc = pt_conf_str(c, "name", "dflt", &s);
    if (!rc) rc = pt_conf_int(c, "server.port", 1, 65535, 80, &i);
    if (!rc) rc = pt_conf_bool(c, "server.tls", false, &b);
    if (!rc)
        rc = pt_conf_duration(c, "server.timeout", PT_NS_PER_SEC, 3600 * PT_NS_PER_SEC,
                              30 * PT_NS_PER_SEC, &d);
    if (!rc) rc = pt_conf_finish(c);
    return rc;
}

static void expect_error(const char *text, const char *want_line, const char *want_key,
                         const char *want_msg)
{
    struct pt_conf c;
    int rc = load_std(&c, text);
    assert_int_not_equal(rc, 0);
    const char *err = pt_conf_error(&c);
    char prefix[128];
    snprintf(prefix, sizeof prefix, "%s:%s", path, want_line);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("error \"%s\" lacks \"%s\"", err, prefix);
    if (want_key && !strstr(err, want_key)) fail_msg("error \"%s\" lacks key %s", err, want_key);
    if (!strstr(err, want_msg)) fail_msg("error \"%s\" lacks \"%s\"", err, want_msg);
    pt_conf_close(&c);
    unlink(path);
}

static void test_good_file_and_defaults(void **state)
{
    (void)state;
    struct pt_conf c;
    write_file("# a comment\n{\n  // another\n  \"name\": \"x\",\n  \"server\": {\"port\": 8080,"
               " \"timeout\": \"1m30s\"}\n}\n");
    assert_int_equal(pt_conf_load(&c, path), 0);
    const char *s;
    int64_t i, d;
    bool b;
    assert_int_equal(pt_conf_str(&c, "name", "dflt", &s), 0);
    assert_string_equal(s, "x");
    assert_int_equal(pt_conf_int(&c, "server.port", 1, 65535, 80, &i), 0);
    assert_int_equal(i, 8080);
    assert_int_equal(pt_conf_bool(&c, "server.tls", true, &b), 0);
    assert_true(b); /* absent: default */
    assert_int_equal(pt_conf_duration(&c, "server.timeout", 0, INT64_MAX, 0, &d), 0);
    assert_true(d == 90 * PT_NS_PER_SEC);
    assert_int_equal(pt_conf_finish(&c), 0);
    pt_conf_close(&c);
    unlink(path);
}

static void test_errors_name_file_line_key(void **state)
{
    (void)state;
    expect_error("{\n  \"name\": 5\n}\n", "2:", "\"name\"", "expected a string, got an integer");
    expect_error("{\n\"name\": \"a\",\n\"server\": {\n  \"port\": \"80\"\n}}\n",
                 "4:", "\"server.port\"", "expected an integer");
    expect_error("{\"server\": {\n\"port\": 70000}}", "2:", "\"server.port\"",
                 "from 1 to 65535, got 70000");
    expect_error("{\"server\": {\"tls\": \"yes\"}}", "1:", "\"server.tls\"",
                 "expected true or false");
    expect_error("{\n\n\"server\": {\"timeout\": \"soon\"}}", "3:", "\"server.timeout\"",
                 "expected a duration such as");
    expect_error("{\"server\": {\"timeout\": \"2h\"}}", "1:", "\"server.timeout\"",
                 "from 1s to 1h");
    expect_error("{\n\"name\": \"a\",\n\"sever\": {}\n}", "3:", "\"sever\"", "unknown key");
    expect_error("{\"server\": {\n\n\"prot\": 1}}", "3:", "\"server.prot\"", "unknown key");
    expect_error("{\"server\": 5}", "1:", "\"server\"", "expected an object");
    /* syntax errors carry line and column from the parser */
    expect_error("{\n\"name\": \"a\"\n\"x\": 1}", "3:", NULL, "invalid JSON");
    expect_error("{\"name\": \"a\", \"name\": \"b\"}", "1:", NULL, "duplicate");
    expect_error("[1, 2]", "1:", NULL, "expected a JSON object");
}

static void test_missing_file(void **state)
{
    (void)state;
    struct pt_conf c;
    assert_int_not_equal(pt_conf_load(&c, "/nonexistent/pantala.json"), 0);
    assert_non_null(strstr(pt_conf_error(&c), "/nonexistent/pantala.json: cannot open"));
    pt_conf_close(&c);
}

static void test_strlist(void **state)
{
    (void)state;
    struct pt_conf c;
    const char **list;
    size_t n;
    const char *t = "{\"a\": [\"x\", \"y\"], \"b\": [\"x\", 3]}";
    assert_int_equal(pt_conf_parse(&c, "inline", t, strlen(t)), 0);
    assert_int_equal(pt_conf_strlist(&c, "a", &list, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[1], "y");
    free(list);
    assert_int_equal(pt_conf_strlist(&c, "b", &list, &n), PT_E_CONFIG);
    assert_non_null(strstr(pt_conf_error(&c), "inline:1: key \"b\": element 1"));
    pt_conf_close(&c);
}

static void test_durations_and_times(void **state)
{
    (void)state;
    int64_t ns;
    assert_int_equal(pt_duration_parse("250ms", &ns), 0);
    assert_true(ns == 250 * PT_NS_PER_MS);
    assert_int_equal(pt_duration_parse("1h30m", &ns), 0);
    assert_true(ns == 5400 * PT_NS_PER_SEC);
    assert_int_equal(pt_duration_parse("7", &ns), 0);
    assert_true(ns == 7 * PT_NS_PER_SEC);
    assert_int_not_equal(pt_duration_parse("-5s", &ns), 0);
    assert_int_not_equal(pt_duration_parse("5x", &ns), 0);
    assert_int_not_equal(pt_duration_parse("", &ns), 0);
    assert_int_not_equal(pt_duration_parse("99999999999999999999s", &ns), 0);
    char b[32];
    pt_duration_format(5400 * PT_NS_PER_SEC, b, sizeof b);
    assert_string_equal(b, "1h30m");
    pt_duration_format(250 * PT_NS_PER_MS, b, sizeof b);
    assert_string_equal(b, "250ms");

    int64_t now = INT64_C(1763719200) * PT_NS_PER_SEC;
    assert_int_equal(pt_time_parse("2025-11-21T10:00:00Z", now, &ns), 0);
    assert_true(ns == now);
    assert_int_equal(pt_time_parse("2025-11-21T19:00:00.5+09:00", now, &ns), 0);
    assert_true(ns == now + 500 * PT_NS_PER_MS);
    assert_int_equal(pt_time_parse("1763719200", now, &ns), 0);
    assert_true(ns == now);
    assert_int_equal(pt_time_parse("now-1h", now, &ns), 0);
    assert_true(ns == now - 3600 * PT_NS_PER_SEC);
    assert_int_equal(pt_time_parse("-15m", now, &ns), 0);
    assert_true(ns == now - 900 * PT_NS_PER_SEC);
    assert_int_not_equal(pt_time_parse("yesterday", now, &ns), 0);
    assert_int_not_equal(pt_time_parse("2025-13-01T00:00:00Z", now, &ns), 0);
    assert_int_equal(pt_time_format(now + 123 * PT_NS_PER_MS, 3, b, sizeof b), 24);
    assert_string_equal(b, "2025-11-21T10:00:00.123Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_file_and_defaults),
        cmocka_unit_test(test_errors_name_file_line_key),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_strlist),
        cmocka_unit_test(test_durations_and_times),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
