/* Tests of agent/json.c: the exact text of --once output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pt/catalog.h"
#include "pt/time.h"

#include "json.h"

static char *render(const struct pt_frame *f)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    assert_int_equal(agent_json_write(out, f), 0);
    fclose(out);
    return text;
}

static void test_frame(void **state)
{
    struct pt_field cpu[] = {
        {PT_STR("cpu_utilization"), PT_F_FLOAT, {.f = 12.5}},
        {PT_STR("cpu_idle"), PT_F_FLOAT, {.f = 100}},
        {PT_STR("cpu_user"), PT_F_FLOAT, {.f = 100.0 / 3}},
        {PT_STR("contexts"), PT_F_FLOAT, {.f = 1e20}},
        {PT_STR("cpu_num"), PT_F_UINT, {.u = 2}},
    };
    struct pt_field mem[] = {
        {PT_STR("mem_total"), PT_F_UINT, {.u = UINT64_C(25276514304)}},
        {PT_STR("delta"), PT_F_INT, {.i = -3}},
        {PT_STR("note"), PT_F_STR, {.s = PT_STR("a\"b")}},
    };
    struct pt_tag tags[] = {{PT_STR("device"), PT_STR("sda")}, {PT_STR("mount"), PT_STR("/")}};
    struct pt_meas meas[] = {
        {PT_STR("cpu"), NULL, cpu, 0, 5},
        {PT_STR("memory"), tags, mem, 2, 3},
    };
    struct pt_frame f = {0};
    f.ts_ns = INT64_C(1795239454) * PT_NS_PER_SEC + 250 * PT_NS_PER_MS;
    f.interval_ms = 1000;
    f.id.ns = PT_STR("ns01");
    f.id.mcis = PT_STR("web");
    f.id.vm = PT_STR("vm \\1");
    f.id.csp = PT_STR("");
    f.id.host = PT_STR("h\xc3\xa9te"); /* UTF-8 passes through */
    f.meas = meas;
    f.nmeas = 2;

    char *text = render(&f);
    assert_string_equal(text, "{\n"
                              "  \"time\": \"2026-11-21T05:37:34.250Z\",\n"
                              "  \"ns\": \"ns01\",\n"
                              "  \"mcis\": \"web\",\n"
                              "  \"vm\": \"vm \\\\1\",\n"
                              "  \"csp\": \"\",\n"
                              "  \"host\": \"h\xc3\xa9te\",\n"
                              "  \"interval_ms\": 1000,\n"
                              "  \"measurements\": [\n"
                              "    {\n"
                              "      \"name\": \"cpu\",\n"
                              "      \"tags\": {},\n"
                              "      \"fields\": {\n"
                              "        \"cpu_utilization\": 12.5,\n"
                              "        \"cpu_idle\": 100.0,\n"
                              "        \"cpu_user\": 33.3333333333333,\n"
                              "        \"contexts\": 1e+20,\n"
                              "        \"cpu_num\": 2\n"
                              "      }\n"
                              "    },\n"
                              "    {\n"
                              "      \"name\": \"memory\",\n"
                              "      \"tags\": {\"device\": \"sda\", \"mount\": \"/\"},\n"
                              "      \"fields\": {\n"
                              "        \"mem_total\": 25276514304,\n"
                              "        \"delta\": -3,\n"
                              "        \"note\": \"a\\\"b\"\n"
                              "      }\n"
                              "    }\n"
                              "  ]\n"
                              "}\n");
    free(text);
}

static void test_empty(void **state)
{
    struct pt_frame f = {0};
    struct pt_meas m = {PT_STR("cpu"), NULL, NULL, 0, 0};
    f.id.ns = PT_STR("a\nb");
    char *text = render(&f);
    assert_string_equal(text, "{\n  \"time\": \"1970-01-01T00:00:00.000Z\",\n  \"ns\": "
                              "\"a\\u000ab\",\n  \"mcis\": \"\",\n  \"vm\": \"\",\n"
                              "  \"csp\": \"\",\n  \"host\": \"\",\n  \"interval_ms\": 0,\n"
                              "  \"measurements\": []\n}\n");
    free(text);
    f.meas = &m;
    f.nmeas = 1;
    text = render(&f);
    assert_non_null(
        strstr(text, "\"name\": \"cpu\",\n      \"tags\": {},\n      \"fields\": {}\n"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame),
        cmocka_unit_test(test_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
