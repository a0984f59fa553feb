/* Tests of libpantala-prov's pieces that need no SSH server: inventory
 * files, shell quoting (checked by a real /bin/sh), action names. The SSH
 * paths are tested against a real sshd in tests/integration/test_provision.py. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pt/prov.h"
#include "ssh.h"

static int parse(const char *text, const struct prov_host *d, struct prov_inventory *inv, char *err,
                 size_t errlen)
{
    return prov_inventory_parse(text, strlen(text), "inv.json", d, inv, err, errlen);
}

static void test_inventory(void **state)
{
    struct prov_inventory inv;
    char err[512];
    struct prov_host d = {.user = "ubuntu", .key = "/k", .ns = "ns01", .port = 2222};
    assert_int_equal(parse("[{\"host\": \"10.0.0.1\", \"mcis\": \"web\", \"vm\": \"w1\"},"
                           " {\"host\": \"10.0.0.2\", \"mcis\": \"web\", \"vm\": \"w2\","
                           "  \"user\": \"root\", \"port\": 22, \"csp\": \"aws\"}]",
                           &d, &inv, err, sizeof err),
                     0);
    assert_int_equal(inv.n, 2);
    assert_string_equal(inv.hosts[0].user, "ubuntu"); /* from the defaults */
    assert_int_equal(inv.hosts[0].port, 2222);
    assert_string_equal(inv.hosts[0].ns, "ns01");
    assert_string_equal(inv.hosts[1].user, "root"); /* the entry wins */
    assert_int_equal(inv.hosts[1].port, 22);
    assert_string_equal(inv.hosts[1].csp, "aws");
    prov_inventory_free(&inv);

    /* {"vms": [...]} is accepted too. */
    assert_int_equal(parse("{\"vms\": [{\"host\": \"h\", \"mcis\": \"m\", \"vm\": \"v\"}]}", &d,
                           &inv, err, sizeof err),
                     0);
    prov_inventory_free(&inv);

    /* Errors name the entry and the key. */
    assert_int_equal(parse("[{\"host\": \"h1\", \"mcis\": \"m\"}]", &d, &inv, err, sizeof err),
                     -EINVAL);
    assert_string_equal(err, "inv.json: entry 1 (h1): key \"vm\" is required");
    assert_int_equal(
        parse("[{\"host\": \"h\", \"mcis\": \"m\", \"vm\": \"v\", \"pasword\": \"x\"}]", &d, &inv,
              err, sizeof err),
        -EINVAL);
    assert_string_equal(err, "inv.json: entry 1: unknown key \"pasword\"");
    assert_int_equal(parse("[{\"host\": \"h\", \"mcis\": \"m\", \"vm\": \"v\", \"port\": 70000}]",
                           &d, &inv, err, sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "\"port\": expected 1..65535"));
    assert_int_equal(parse("[{\"host\": 5}]", &d, &inv, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "key \"host\": expected a string"));
    assert_int_equal(parse("[]", &d, &inv, err, sizeof err), -EINVAL);
    assert_int_equal(parse("[{\"host\": ", &d, &inv, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "inv.json:1:"));
    /* Without defaults, user and ns are required of every entry. */
    assert_int_equal(
        parse("[{\"host\": \"h\", \"mcis\": \"m\", \"vm\": \"v\"}]", NULL, &inv, err, sizeof err),
        -EINVAL);
    assert_non_null(strstr(err, "key \"user\" is required"));
}

/* What /bin/sh makes of a quoted word. */
static char *through_shell(const char *arg)
{
    char cmd[4096] = "printf '%s'";
    assert_int_equal(prov_shell_quote(cmd, sizeof cmd, arg), 0);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    static char out[1024];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    pclose(p);
    return out;
}

static void test_shell_quote(void **state)
{
    const char *hostile[] = {"plain",   "two words",  "it's",      "$(id)",        "`id`",
                             "a\"b\\c", "semi;colon", "new\nline", "'''",          "-n",
                             "*",       "$HOME",      "",          "tab\there & |"};
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++)
        assert_string_equal(through_shell(hostile[i]), hostile[i]);
    char small[8] = "";
    assert_int_equal(prov_shell_quote(small, sizeof small, "much too long"), -ENOSPC);
}

static void test_names(void **state)
{
    assert_int_equal(prov_action_parse("install"), PROV_INSTALL);
    assert_int_equal(prov_action_parse("uninstall"), PROV_UNINSTALL);
    assert_int_equal(prov_action_parse("reinstall"), -1);
    assert_int_equal(prov_action_parse(NULL), -1);
    assert_string_equal(prov_action_name(PROV_STATUS), "status");
    assert_string_equal(prov_state_name(PROV_FAILED), "failed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inventory),
        cmocka_unit_test(test_shell_quote),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
