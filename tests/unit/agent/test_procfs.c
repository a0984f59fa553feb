/* Tests of agent/platform/linux/procfs.c: the line reader with its fixed
 * buffer, and the hand-written number parsers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pt/err.h"

#include "agent_test.h"
#include "platform/linux/procfs.h"

struct lines {
    unsigned n;
    size_t longest;
    unsigned ctxt_line; /* line number of "ctxt ..." */
    char last[64];
};

static int count_line(struct agent_procfs_file *f, void *ctx, char *line, size_t len)
{
    struct lines *l = ctx;
    l->n++;
    assert_int_equal(strlen(line), len);
    if (len > l->longest) l->longest = len;
    if (strncmp(line, "ctxt ", 5) == 0) l->ctxt_line = f->line;
    snprintf(l->last, sizeof l->last, "%s", line);
    return 0;
}

static void test_long_lines(void **state)
{
    /* 1 cpu + 96 cpuN lines, a 30 kB intr line, then ctxt: the intr line
     * comes cut to the buffer, and the lines after it intact. */
    char root[512], err[256];
    struct lines l = {0};
    struct agent_procfs_file f = {fixture(root, sizeof root, "bighost", "t0"), "stat", err,
                                  sizeof err, 0};
    assert_int_equal(agent_procfs_read(&f, count_line, &l), 0);
    assert_int_equal(l.longest, AGENT_PROCFS_BUF - 1);
    assert_int_equal(l.ctxt_line, 99);
    assert_int_equal(l.n, 104);
    assert_string_equal(l.last, "softirq 146295 0 10991 4 828 84508 0 3 26914 0 23047");
}

static int stop_at_two(struct agent_procfs_file *f, void *ctx, char *line, size_t len)
{
    unsigned *n = ctx;
    return ++*n == 2 ? 1 : 0;
}

static int fail_at_three(struct agent_procfs_file *f, void *ctx, char *line, size_t len)
{
    return f->line == 3 ? agent_procfs_fail(f, "bad %s", "line") : 0;
}

static void test_stop_and_fail(void **state)
{
    char root[512], err[256];
    unsigned n = 0;
    struct agent_procfs_file f = {fixture(root, sizeof root, "base", "t0"), "vmstat", err,
                                  sizeof err, 0};
    assert_int_equal(agent_procfs_read(&f, stop_at_two, &n), 1);
    assert_int_equal(n, 2);
    assert_int_equal(agent_procfs_read(&f, fail_at_three, NULL), PT_E_MALFORMED);
    char want[600];
    snprintf(want, sizeof want, "%s/vmstat:3: bad line", root);
    assert_string_equal(err, want);
}

static void test_last_line_without_newline(void **state)
{
    /* /proc always ends its lines, but a copied or hand-made file may not. */
    char dir[] = "/tmp/pt-procfs-XXXXXX", path[64], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/f", dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("a 1\nb 2", fp);
    fclose(fp);
    struct lines l = {0};
    struct agent_procfs_file f = {dir, "f", err, sizeof err, 0};
    assert_int_equal(agent_procfs_read(&f, count_line, &l), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.last, "b 2");
    unlink(path);
    rmdir(dir);
}

static void test_numbers(void **state)
{
    const char *p;
    uint64_t u;
    double d;

    p = "  42 7";
    assert_int_equal(agent_procfs_u64(&p, &u), 0);
    assert_int_equal(u, 42);
    assert_int_equal(agent_procfs_u64(&p, &u), 0);
    assert_int_equal(u, 7);
    assert_int_equal(agent_procfs_u64(&p, &u), -ENOENT);

    p = "18446744073709551615";
    assert_int_equal(agent_procfs_u64(&p, &u), 0);
    assert_true(u == UINT64_MAX);
    const char *bad[] = {"18446744073709551616", "-5", "+5", "12abc", "x", "1.5"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        p = bad[i];
        if (agent_procfs_u64(&p, &u) != -EINVAL) fail_msg("\"%s\" accepted", bad[i]);
        assert_ptr_equal(p, bad[i]); /* not moved on failure */
    }
    p = "3/87";
    assert_int_equal(agent_procfs_u64(&p, &u), 0);
    assert_string_equal(p, "/87");

    p = "0.52 465.90";
    assert_int_equal(agent_procfs_double(&p, &d), 0);
    assert_true(d == 0.52);
    assert_int_equal(agent_procfs_double(&p, &d), 0);
    assert_true(d == 465.90);
    assert_int_equal(agent_procfs_double(&p, &d), -ENOENT);
    const char *badd[] = {"nan", "inf", "-1.0", "0x10", "1e999", "1.5kB", ".5"};
    for (size_t i = 0; i < sizeof badd / sizeof *badd; i++) {
        p = badd[i];
        if (agent_procfs_double(&p, &d) != -EINVAL) fail_msg("\"%s\" accepted", badd[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_stop_and_fail),
        cmocka_unit_test(test_last_line_without_newline),
        cmocka_unit_test(test_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
