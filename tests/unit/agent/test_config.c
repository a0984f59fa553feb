/* Tests of agent/config.c: defaults, every key, and errors that name the
 * file, the line and the key. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pt/err.h"
#include "pt/log.h"
#include "pt/time.h"

#include "config.h"

#define KEY_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static int parse(struct agent_config *cfg, const char *text, bool need_identity, char *err,
                 size_t errlen)
{
    agent_config_defaults(cfg);
    return agent_config_parse(cfg, "agent.json", text, strlen(text), need_identity, err, errlen);
}

static void test_every_key(void **state)
{
    struct agent_config cfg;
    char err[1024] = "";
    const char *text =
        "{\n"
        "  \"collector\": \"10.0.0.5:9000\",\n"
        "  \"agent_id\": 123,\n"
        "  \"key\": \"" KEY_HEX "\",\n"
        "  \"ns\": \"ns01\", \"mcis\": \"web\", \"vm\": \"web-1\",\n"
        "  \"csp\": \"aws\", \"host\": \"ip-10-0-0-7\",\n"
        "  \"interval\": \"250ms\",\n"
        "  \"proc_root\": \"/host/proc\", \"sys_root\": \"/host/sys\",\n"
        "  \"per_cpu\": true,\n"
        "  \"mounts\": {\"include\": [\"/\", \"/srv/*\"], \"exclude\": [\"/srv/tmp\"]},\n"
        "  \"devices\": {\"exclude\": [\"loop*\", \"ram*\"]},\n"
        "  \"interfaces\": {\"include\": [\"eth*\"], \"exclude\": [\"veth*\", \"docker0\"]},\n"
        "  \"log\": {\"level\": \"debug\", \"file\": \"/var/log/pantala/agent.log\"}\n"
        "}\n";
    int rc = parse(&cfg, text, true, err, sizeof err);
    if (rc) fail_msg("%s", err);
    assert_string_equal(cfg.collector, "10.0.0.5:9000");
    assert_int_equal(cfg.agent_id, 123);
    assert_false(cfg.agent_id_derived);
    assert_true(cfg.has_key);
    for (int i = 0; i < PT_WIRE_KEY_LEN; i++) assert_int_equal(cfg.key[i], i);
    assert_string_equal(cfg.ns, "ns01");
    assert_string_equal(cfg.mcis, "web");
    assert_string_equal(cfg.vm, "web-1");
    assert_string_equal(cfg.csp, "aws");
    assert_string_equal(cfg.host, "ip-10-0-0-7");
    assert_int_equal(cfg.interval_ns, 250 * PT_NS_PER_MS);
    assert_string_equal(cfg.proc_root, "/host/proc");
    assert_string_equal(cfg.sys_root, "/host/sys");
    assert_true(cfg.per_cpu);
    assert_int_equal(cfg.mounts.include.n, 2);
    assert_string_equal(cfg.mounts.include.pat[1], "/srv/*");
    assert_int_equal(cfg.mounts.exclude.n, 1);
    assert_int_equal(cfg.devices.include.n, 0);
    assert_int_equal(cfg.devices.exclude.n, 2);
    assert_string_equal(cfg.devices.exclude.pat[0], "loop*");
    assert_int_equal(cfg.interfaces.include.n, 1);
    assert_int_equal(cfg.interfaces.exclude.n, 2);
    assert_string_equal(cfg.interfaces.exclude.pat[1], "docker0");
    assert_int_equal(cfg.log_level, PT_LOG_DEBUG);
    assert_string_equal(cfg.log_file, "/var/log/pantala/agent.log");
}

static void test_defaults(void **state)
{
    struct agent_config cfg;
    char err[1024] = "", host[256];
    int rc = parse(&cfg, "{\"ns\": \"ns01\", \"mcis\": \"web\", \"vm\": \"web-1\"}", true, err,
                   sizeof err);
    if (rc) fail_msg("%s", err);
    assert_string_equal(cfg.collector, "127.0.0.1:8094");
    assert_false(cfg.has_key);
    assert_true(cfg.agent_id_derived);
    /* FNV-1a 64 of "ns01\0web\0web-1" is 0x70a5783a1a9b43b3; its low 53 bits */
    assert_int_equal(cfg.agent_id, UINT64_C(1539565833372595));
    assert_string_equal(cfg.csp, "");
    assert_int_equal(gethostname(host, sizeof host), 0);
    assert_string_equal(cfg.host, host);
    assert_int_equal(cfg.interval_ns, PT_NS_PER_SEC);
    assert_string_equal(cfg.proc_root, "/proc");
    assert_string_equal(cfg.sys_root, "/sys");
    assert_false(cfg.per_cpu); /* per-CPU series are off by default */
    assert_int_equal(cfg.mounts.include.n + cfg.mounts.exclude.n, 0);
    assert_int_equal(cfg.devices.include.n + cfg.devices.exclude.n, 0);
    assert_int_equal(cfg.interfaces.include.n + cfg.interfaces.exclude.n, 0);
    assert_int_equal(cfg.log_level, PT_LOG_INFO);
    assert_string_equal(cfg.log_file, "");
    assert_int_equal(cfg.ring_bytes, 1024 * 1024); /* acknowledged delivery is on */
    assert_int_equal(cfg.resend_rate, 50);
    assert_int_equal(cfg.resend_after_ns, 2 * PT_NS_PER_SEC);
}

static void test_ring_keys(void **state)
{
    (void)state;
    struct agent_config cfg;
    char err[1024] = "";
    int rc = parse(&cfg,
                   "{\"ns\": \"a\", \"mcis\": \"b\", \"vm\": \"c\", \"ring\": {\"bytes\": 0, "
                   "\"resend_rate\": 500, \"resend_after\": \"750ms\"}}",
                   true, err, sizeof err);
    if (rc) fail_msg("%s", err);
    assert_int_equal(cfg.ring_bytes, 0); /* no ring: frames are sent once */
    assert_int_equal(cfg.resend_rate, 500);
    assert_int_equal(cfg.resend_after_ns, 750 * PT_NS_PER_MS);
}

static void test_derived_id(void **state)
{
    assert_int_equal(agent_config_derive_id("ns01", "web", "web-1"), UINT64_C(1539565833372595));
    assert_int_equal(agent_config_derive_id("", "", ""), UINT64_C(5216116262268909));
    /* The NULs keep the parts apart. */
    assert_int_not_equal(agent_config_derive_id("ab", "c", "d"),
                         agent_config_derive_id("a", "bc", "d"));
    assert_true(agent_config_derive_id("x", "y", "z") < (UINT64_C(1) << 53));
}

/* The text must fail to load with exactly want. */
static void expect_error(const char *text, bool need_identity, const char *want)
{
    struct agent_config cfg;
    char err[1024] = "";
    int rc = parse(&cfg, text, need_identity, err, sizeof err);
    if (rc != PT_E_CONFIG || strcmp(err, want) != 0)
        fail_msg("got %d \"%s\"\n  expected \"%s\"", rc, err, want);
}

#define ID "\"ns\": \"a\", \"mcis\": \"b\", \"vm\": \"c\""

static void test_errors(void **state)
{
    expect_error("{" ID ",\n\"intervall\": \"2s\"}", true,
                 "agent.json:2: key \"intervall\": unknown key (misspelt, or not valid here)");
    expect_error("{" ID ",\n\"log\": {\"level\": \"info\",\n \"rotate\": true}}", true,
                 "agent.json:3: key \"log.rotate\": unknown key (misspelt, or not valid here)");
    expect_error("{" ID ",\n\n\"agent_id\": \"123\"}", true,
                 "agent.json:3: key \"agent_id\": expected an integer, got a string");
    expect_error("{" ID ",\n\"agent_id\": 0}", true,
                 "agent.json:2: key \"agent_id\": expected an integer from 1 to "
                 "9223372036854775807, got 0");
    expect_error("{" ID ",\n\"interval\": 1.5}", true,
                 "agent.json:2: key \"interval\": expected a duration such as \"10s\" or \"2h\", "
                 "got a number");
    expect_error("{" ID ",\n\"interval\": \"50ms\"}", true,
                 "agent.json:2: key \"interval\": expected a duration from 100ms to 1h");
    expect_error("{" ID ",\n\"interval\": \"2h\"}", true,
                 "agent.json:2: key \"interval\": expected a duration from 100ms to 1h");
    expect_error("{" ID ",\n\"ring\": {\"bytes\": 4096}}", true,
                 "agent.json:2: key \"ring.bytes\": expected 0 (no ring) or at least 65536 bytes");
    expect_error("{" ID ",\n\"ring\": {\"resend_rate\": 0}}", true,
                 "agent.json:2: key \"ring.resend_rate\": expected an integer from 1 to 100000, "
                 "got 0");
    expect_error("{" ID ",\n\"ring\": {\"resend_after\": \"10ms\"}}", true,
                 "agent.json:2: key \"ring.resend_after\": expected a duration from 100ms to 10m");
    expect_error("{" ID ",\n\"collector\": \"collector.example\"}", true,
                 "agent.json:2: key \"collector\": expected \"host:port\", such as "
                 "\"10.0.0.5:8094\"");
    expect_error("{" ID ",\n\"collector\": \":8094\"}", true,
                 "agent.json:2: key \"collector\": expected \"host:port\", such as "
                 "\"10.0.0.5:8094\"");
    expect_error("{" ID ",\n\"log\": {\"level\": \"loud\"}}", true,
                 "agent.json:2: key \"log.level\": expected \"error\", \"warn\", \"info\" or "
                 "\"debug\", got \"loud\"");
    expect_error("{" ID ",\n\"log\": \"debug\"}", true,
                 "agent.json:2: key \"log\": expected an object");
    expect_error("{\"ns\": \"a\", \"mcis\": \"b\"}", true,
                 "agent.json: key \"vm\": required, but missing");
    expect_error("{\"ns\": \"a\", \"mcis\": \"\", \"vm\": \"c\"}", true,
                 "agent.json:1: key \"mcis\": must not be empty");
    expect_error("{\"ns\": \"a\", \"mcis\": \"b\", \"vm\": \"c\\u0007\"}", true,
                 "agent.json:1: key \"vm\": must be UTF-8 without control characters");
    expect_error("{" ID ",\n\"csp\": 7}", true,
                 "agent.json:2: key \"csp\": expected a string, got an integer");
    expect_error("{" ID ",\n\"per_cpu\": \"yes\"}", true,
                 "agent.json:2: key \"per_cpu\": expected true or false, got a string");
    expect_error("{" ID ",\n\"mounts\": {\"include\": \"/\"}}", true,
                 "agent.json:2: key \"mounts.include\": expected an array of strings, got a "
                 "string");
    expect_error("{" ID ",\n\"devices\": {\"exclude\": [\"sd*\", \"\"]}}", true,
                 "agent.json:2: key \"devices.exclude\": element 1: expected a non-empty "
                 "string, got an empty string");
    expect_error("{" ID
                 ",\n\"interfaces\": {\"exclude\": [\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\","
                 "\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\"]}}",
                 true, "agent.json:2: key \"interfaces.exclude\": more than 16 patterns");
    expect_error("{" ID ",\n\"interfaces\": {\"ignore\": [\"lo\"]}}", true,
                 "agent.json:2: key \"interfaces.ignore\": unknown key (misspelt, or not valid "
                 "here)");
    char text[512], want[256];
    snprintf(text, sizeof text, "{" ID ",\n\"mounts\": {\"exclude\": [\"/a\", \"/%0127d\"]}}", 0);
    snprintf(want, sizeof want,
             "agent.json:2: key \"mounts.exclude\": pattern 2 is longer than 127 bytes");
    expect_error(text, true, want);
    expect_error("{" ID ",\n\"sys_root\": \"\"}", true,
                 "agent.json:2: key \"sys_root\": must not be empty");
    expect_error("[1, 2]", true, "agent.json:1: expected a JSON object at the top level");
}

static void test_key_errors(void **state)
{
    /* A bad key is reported without being echoed. */
    const char *bad = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g";
    char text[512];
    struct agent_config cfg;
    char err[1024];

    snprintf(text, sizeof text, "{" ID ", \"agent_id\": 5,\n\n\"key\": \"%s\"}", bad);
    assert_int_equal(parse(&cfg, text, true, err, sizeof err), PT_E_CONFIG);
    assert_string_equal(err, "agent.json:3: key \"key\": expected hex digits only (0-9, a-f)");
    assert_null(strstr(err, "0001"));

    expect_error("{" ID ", \"agent_id\": 5,\n\"key\": \"c0ffee\"}", true,
                 "agent.json:2: key \"key\": expected 64 hex digits (a 32-byte key), got 6 "
                 "characters");
    expect_error("{" ID ", \"agent_id\": 5,\n\"key\": 42}", true,
                 "agent.json:2: key \"key\": expected a string, got an integer");
    /* A key needs the id it was issued with. */
    expect_error("{" ID ",\n\"key\": \"" KEY_HEX "\"}", true,
                 "agent.json: key \"agent_id\": required with \"key\": give the id the key was "
                 "issued for");
}

static void test_once_needs_no_identity(void **state)
{
    struct agent_config cfg;
    char err[1024] = "";
    assert_int_equal(parse(&cfg, "{\"interval\": \"2s\"}", false, err, sizeof err), 0);
    assert_string_equal(cfg.ns, "");
    assert_int_equal(cfg.interval_ns, 2 * PT_NS_PER_SEC);
    assert_int_equal(cfg.agent_id, agent_config_derive_id("", "", ""));
}

static void test_files(void **state)
{
    struct agent_config cfg;
    char err[1024] = "", path[] = "/tmp/pt-agent-conf-XXXXXX", want[1200];

    agent_config_defaults(&cfg);
    assert_int_equal(agent_config_load(&cfg, "/nonexistent/agent.json", true, err, sizeof err),
                     -ENOENT);
    assert_string_equal(err, "/nonexistent/agent.json: cannot open: No such file or directory");

    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "{\n  \"ns\": \"a\",\n  \"mcis\": \"b\",\n  \"vm\": \"c\",\n"
                       "  \"interval\": true\n}\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_int_equal(agent_config_load(&cfg, path, true, err, sizeof err), PT_E_CONFIG);
    snprintf(want, sizeof want,
             "%s:5: key \"interval\": expected a duration such as \"10s\" or \"2h\", got a "
             "boolean",
             path);
    assert_string_equal(err, want);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_key),  cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_derived_id), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_key_errors), cmocka_unit_test(test_once_needs_no_identity),
        cmocka_unit_test(test_files),      cmocka_unit_test(test_ring_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
