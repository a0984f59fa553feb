/* The rule model: a full rule round-trips; every kind of bad rule is
 * refused with a message naming the key; conditions, hysteresis and
 * annotation templates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pt/alert.h"

static const char good[] =
    "{\"name\": \"cpu-high\", \"scope\": {\"ns\": \"ns01\", \"mcis\": \"web01\","
    " \"tags\": {\"cpu\": \"total\"}},"
    " \"metric\": \"cpu.cpu_utilization\", \"reduce\": \"avg\", \"window\": \"1m\","
    " \"warn\": \"> 80\", \"crit\": {\"op\": \">=\", \"threshold\": 95}, \"for\": \"30s\","
    " \"recover\": 70, \"repeat\": \"1h\", \"labels\": {\"team\": \"web\"},"
    " \"annotations\": {\"summary\": \"{{mcis}} at {{value}}\"}}";

static void test_good_roundtrip(void **st)
{
    (void)st;
    struct alert_rule *r;
    char err[512] = "";
    assert_int_equal(alert_rule_parse(NULL, good, strlen(good), &r, err, sizeof err), 0);
    json_t *j = alert_rule_json(r);
    assert_string_equal(json_string_value(json_object_get(j, "metric")), "cpu.cpu_utilization");
    assert_string_equal(json_string_value(json_object_get(j, "reduce")), "avg");
    assert_string_equal(json_string_value(json_object_get(j, "window")), "1m");
    assert_string_equal(json_string_value(json_object_get(j, "for")), "30s");
    json_t *w = json_object_get(j, "warn");
    assert_string_equal(json_string_value(json_object_get(w, "op")), ">");
    assert_true(json_number_value(json_object_get(w, "threshold")) == 80);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(j, "scope"), "tags"), "cpu")),
                        "total");
    /* the rendering parses back to the same rendering */
    char *s = json_dumps(j, JSON_SORT_KEYS);
    struct alert_rule *r2;
    assert_int_equal(alert_rule_parse(NULL, s, strlen(s), &r2, err, sizeof err), 0);
    json_t *j2 = alert_rule_json(r2);
    char *s2 = json_dumps(j2, JSON_SORT_KEYS);
    assert_string_equal(s, s2);
    free(s);
    free(s2);
    json_decref(j);
    json_decref(j2);
    alert_rule_free(r);
    alert_rule_free(r2);
}

/* A bad rule names its key in the error. */
static void bad(const char *json, const char *key)
{
    struct alert_rule *r = NULL;
    char err[512] = "";
    int rc = alert_rule_parse(NULL, json, strlen(json), &r, err, sizeof err);
    if (rc != -EINVAL || !strstr(err, key))
        fail_msg("%s\n -> %d \"%s\" (wanted key %s)", json, rc, err, key);
    assert_null(r);
}

#define BASE "\"name\": \"r\", \"scope\": {\"ns\": \"n\", \"mcis\": \"m\"}, "
static void test_bad_rules(void **st)
{
    (void)st;
    bad("{" BASE "\"metric\": \"cpu\", \"warn\": \"> 1\"}", "\"metric\"");
    bad("{" BASE "\"metric\": \"cpu.\", \"warn\": \"> 1\"}", "\"metric\"");
    bad("{" BASE "\"metric\": \"cpu.nope\", \"warn\": \"> 1\"}", "\"metric\"");
    bad("{" BASE "\"metric\": \"cpu.cpu_user\", \"warn\": \"> 1\", \"window\": \"5x\"}",
        "\"window\"");
    bad("{" BASE "\"metric\": \"cpu.cpu_user\", \"warn\": \"> 1\", \"for\": -3}", "\"for\"");
    bad("{" BASE "\"metric\": \"cpu.cpu_user\", \"warn\": \"=> 1\"}", "\"warn\"");
    bad("{" BASE "\"metric\": \"cpu.cpu_user\", \"crit\": \"> high\"}", "\"crit\"");
    bad("{" BASE "\"metric\": \"cpu.cpu_user\"}", "\"warn\""); /* no condition */
    bad("{" BASE "\"metric\": \"cpu.cpu_user\", \"warn\": \"> 1\", \"reduce\": \"median\"}",
        "\"reduce\"");
    bad("{" BASE "\"metric\": \"cpu.cpu_user\", \"warn\": \"> 80\", \"recover\": 90}",
        "\"recover\"");
    bad("{" BASE "\"metric\": \"cpu.cpu_user\", \"warn\": \"== 1\", \"recover\": 0}",
        "\"recover\"");
    bad("{" BASE "\"metric\": \"cpu.cpu_user\", \"warn\": \"> 1\", \"handlers\": \"ops\"}",
        "\"handlers\"");
    bad("{" BASE "\"metric\": \"cpu.cpu_user\", \"warn\": \"> 1\", \"labels\": {\"vm\": \"x\"}}",
        "\"labels\"");
    bad("{" BASE "\"metric\": \"cpu.cpu_user\", \"warn\": \"> 1\", \"colour\": 1}", "\"colour\"");
    bad("{\"name\": \"r\", \"scope\": {\"mcis\": \"m\"}, \"metric\": \"cpu.cpu_user\", "
        "\"warn\": \"> 1\"}",
        "\"scope.ns\"");
    bad("{\"name\": \"bad name\", \"scope\": {\"ns\": \"n\", \"mcis\": \"m\"}, "
        "\"metric\": \"cpu.cpu_user\", \"warn\": \"> 1\"}",
        "\"name\"");
    bad("{\"name\": \"agent_down\", \"scope\": {\"ns\": \"n\", \"mcis\": \"m\"}, "
        "\"metric\": \"cpu.cpu_user\", \"warn\": \"> 1\"}",
        "\"name\"");
    bad("{\"name\": \"r\", \"scope\": {\"ns\": \"n\", \"mcis\": \"m\", \"vm\": \"v\"}, "
        "\"metric\": \"cpu.cpu_user\", \"warn\": \"> 1\", \"reduce\": \"avg\"}",
        "\"reduce\"");
    /* a measurement the catalog does not know is allowed (custom metrics) */
    struct alert_rule *r;
    char err[256];
    const char *custom = "{" BASE "\"metric\": \"app.queue_len\", \"crit\": \"> 100\"}";
    assert_int_equal(alert_rule_parse(NULL, custom, strlen(custom), &r, err, sizeof err), 0);
    alert_rule_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_roundtrip),
        cmocka_unit_test(test_bad_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
