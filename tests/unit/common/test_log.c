/* Logging: levels filter lazily; repeated complaints are rate-limited. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pt/log.h"

static char path[64];

static char *read_all(void)
{
    static char buf[65536];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = '\0';
    return buf;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++) n++;
    return n;
}

static int evaluated;
static int side_effect(void)
{
    return ++evaluated;
}

static void test_levels_and_prefix(void **state)
{
    (void)state;
    snprintf(path, sizeof path, "/tmp/pt-log-XXXXXX");
    int fd = mkstemp(path);
    close(fd);
    assert_int_equal(pt_log_open(path), 0);
    pt_log_set_level(PT_LOG_WARN);
    PT_INFO("test", "hidden %d", side_effect());
    assert_int_equal(evaluated, 0); /* arguments not evaluated below the level */
    PT_WARN("ingest", "shown %d", 7);
    char *t = read_all();
    assert_null(strstr(t, "hidden"));
    assert_non_null(strstr(t, "warn  ingest: shown 7\n"));
    assert_int_equal(pt_log_level_parse("debug"), PT_LOG_DEBUG);
    assert_int_equal(pt_log_level_parse("loud"), -1);
}

static void test_complain_rate_limit(void **state)
{
    (void)state;
    pt_log_set_level(PT_LOG_INFO);
    struct pt_complain c = PT_COMPLAIN_INIT;
    assert_true(pt_complain_due(&c));
    pt_complain(&c, PT_LOG_ERROR, "cpu", "cannot read /proc/stat: %s", "EIO");
    assert_false(pt_complain_due(&c)); /* the next ones are only counted */
    for (int i = 1; i < 1000; i++)
        pt_complain(&c, PT_LOG_ERROR, "cpu", "cannot read /proc/stat: %s", "EIO");
    char *t = read_all();
    assert_int_equal(count(t, "cannot read /proc/stat"), 1);
    assert_int_equal((int)c.suppressed, 999);
    pt_complain_release(&c, "cpu", "reading /proc/stat works again");
    t = read_all();
    assert_int_equal(count(t, "works again"), 1);
    assert_true(pt_complain_due(&c));
    pt_complain_release(&c, "cpu", "reading /proc/stat works again");
    t = read_all();
    assert_int_equal(count(t, "works again"), 1); /* only once */
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels_and_prefix),
        cmocka_unit_test(test_complain_rate_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
