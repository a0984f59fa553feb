/* Tests of agent/collectors/filter.c: include/exclude globs. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "collectors/filter.h"

static void test_pass(void **state)
{
    struct agent_filter f;
    memset(&f, 0, sizeof f);
    assert_true(agent_filter_pass(&f, "anything")); /* empty: everything */

    assert_int_equal(agent_filter_add(&f.exclude, "veth*"), 0);
    assert_false(agent_filter_pass(&f, "veth12ab"));
    assert_true(agent_filter_pass(&f, "eth0"));

    assert_int_equal(agent_filter_add(&f.include, "eth[0-9]"), 0);
    assert_int_equal(agent_filter_add(&f.include, "/mnt/*"), 0);
    assert_true(agent_filter_pass(&f, "eth3"));
    assert_false(agent_filter_pass(&f, "eth10"));
    assert_false(agent_filter_pass(&f, "wlan0"));
    assert_true(agent_filter_pass(&f, "/mnt/a/b")); /* '*' crosses '/' */

    /* exclude wins over include */
    assert_int_equal(agent_filter_add(&f.exclude, "eth3"), 0);
    assert_false(agent_filter_pass(&f, "eth3"));
}

static void test_add_limits(void **state)
{
    struct agent_filter_list l;
    memset(&l, 0, sizeof l);
    char longpat[AGENT_FILTER_PATTERN_LEN + 1];
    memset(longpat, 'a', sizeof longpat - 1);
    longpat[sizeof longpat - 1] = '\0';
    assert_int_equal(agent_filter_add(&l, ""), -EINVAL);
    assert_int_equal(agent_filter_add(&l, longpat), -ENAMETOOLONG);
    for (int i = 0; i < AGENT_FILTER_MAX_PATTERNS; i++)
        assert_int_equal(agent_filter_add(&l, "x"), 0);
    assert_int_equal(agent_filter_add(&l, "x"), -E2BIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pass),
        cmocka_unit_test(test_add_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
