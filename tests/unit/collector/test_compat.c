/* collector/compat/form.c and compat.c: the form fields CB-Dragonfly's clients send
 * (hostile input: escapes, NULs, empty names) and the agent UUID. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "compat/compat_int.h"

static json_t *parse(const char *text, char *err, size_t errlen)
{
    return compat_form_parse(text, strlen(text), err, errlen);
}

static void test_form_fields(void **state)
{
    (void)state;
    char err[128];
    json_t *o = parse("mcis_agent_interval=10&aggregate_type=max+min&to=a%40b.c%2Cd&empty=&flag",
                      err, sizeof err);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "mcis_agent_interval")), "10");
    assert_string_equal(json_string_value(json_object_get(o, "aggregate_type")), "max min");
    assert_string_equal(json_string_value(json_object_get(o, "to")), "a@b.c,d");
    assert_string_equal(json_string_value(json_object_get(o, "empty")), "");
    assert_string_equal(json_string_value(json_object_get(o, "flag")), "");
    assert_int_equal(json_object_size(o), 5);
    json_decref(o);

    /* a PEM key travels with its newlines escaped */
    o = parse("ssh_key=-----BEGIN+KEY-----%0Aabc%0A", err, sizeof err);
    assert_string_equal(json_string_value(json_object_get(o, "ssh_key")),
                        "-----BEGIN KEY-----\nabc\n");
    json_decref(o);

    o = parse("a=1&&b=2&", err, sizeof err); /* empty pairs are skipped */
    assert_int_equal(json_object_size(o), 2);
    json_decref(o);
}

static void test_form_refused(void **state)
{
    (void)state;
    char err[128];
    static const char *const bad[] = {"a=%zz", "a=%4", "a=%", "a=%00", "=x", "%3D=1&=", NULL};
    for (int i = 0; bad[i]; i++) {
        err[0] = '\0';
        json_t *o = parse(bad[i], err, sizeof err);
        if (o) fail_msg("\"%s\" was accepted", bad[i]);
        assert_non_null(strstr(err, "malformed"));
    }
    err[0] = '\0';
    assert_null(compat_form_parse("a=1\0b=2", 7, err, sizeof err));
    assert_non_null(strstr(err, "NUL"));
    /* Not UTF-8 once decoded (a Latin-1 byte, a lone continuation byte), in
     * a value or a name: refused with a reason, never a field gone missing. */
    static const char *const latin[] = {"name=caf%E9", "a=1&%80=2", NULL};
    for (int i = 0; latin[i]; i++) {
        err[0] = '\0';
        assert_null(parse(latin[i], err, sizeof err));
        assert_non_null(strstr(err, "UTF-8"));
    }
    json_t *o = parse("name=caf%C3%A9", err, sizeof err); /* UTF-8 escaped is fine */
    assert_string_equal(json_string_value(json_object_get(o, "name")), "caf\xc3\xa9");
    json_decref(o);
}

static void test_agent_uuid(void **state)
{
    (void)state;
    char buf[128];
    compat_agent_uuid(buf, sizeof buf, "ns01", "mcis", "web", "vm-1", "aws");
    assert_string_equal(buf, "ns01_mcis_web_vm-1_aws"); /* MakeAgentUUID's order */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_form_fields),
        cmocka_unit_test(test_form_refused),
        cmocka_unit_test(test_agent_uuid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
