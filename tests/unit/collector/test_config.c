/* pantalad configuration: the shipped file, defaults, errors naming keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "pt/time.h"

static char path[64];

static int load_text(struct coll_config *cfg, const char *text)
{
    snprintf(path, sizeof path, "/tmp/pt-cfg-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    int rc = coll_config_load(cfg, path);
    unlink(path);
    return rc;
}

static void test_shipped_file_demands_a_real_token(void **state)
{
    (void)state;
    char shipped[512];
    snprintf(shipped, sizeof shipped, "%s/../../packaging/pantalad.json", getenv("PT_TEST_DATA"));
    struct coll_config cfg;
    assert_int_not_equal(coll_config_load(&cfg, shipped), 0);
    const char *err = pt_conf_error(&cfg.conf);
    assert_non_null(strstr(err, "key \"api.tokens\""));
    assert_non_null(strstr(err, "placeholder"));
    coll_config_close(&cfg);
}

static void test_defaults(void **state)
{
    (void)state;
    struct coll_config cfg;
    assert_int_equal(load_text(&cfg, "{\"api\": {\"tokens\": [\"0123456789abcdef0123\"]}}"), 0);
    assert_string_equal(cfg.udp_host, "0.0.0.0");
    assert_int_equal(cfg.udp_port, 8094);
    assert_string_equal(cfg.http_host, "127.0.0.1");
    assert_int_equal(cfg.http_port, 9090);
    assert_string_equal(cfg.store_url, "sqlite:");
    assert_true(cfg.retention_ns == 30 * 86400 * PT_NS_PER_SEC);
    assert_true(cfg.retention_1m_ns == 90 * 86400 * PT_NS_PER_SEC);
    assert_true(cfg.retention_1h_ns == 400 * 86400 * PT_NS_PER_SEC);
    assert_true(cfg.max_age_ns == 2 * 3600 * PT_NS_PER_SEC);
    assert_false(cfg.insecure);
    assert_true(cfg.outbox_max_bytes == INT64_C(1) << 30);
    assert_null(cfg.outbox_dir);
    assert_true(cfg.compat_enabled); /* the /dragonfly routes, behind the tokens */
    assert_false(cfg.compat_open);
    assert_null(cfg.compat_agent_prefix);
    coll_config_close(&cfg);
}

static void expect(const char *text, const char *key, const char *words)
{
    struct coll_config cfg;
    assert_int_not_equal(load_text(&cfg, text), 0);
    const char *err = pt_conf_error(&cfg.conf);
    if (!strstr(err, key) || !strstr(err, words))
        fail_msg("\"%s\" should name %s and say \"%s\"", err, key, words);
    assert_non_null(strstr(err, path)); /* and the file */
    coll_config_close(&cfg);
}

static void test_errors(void **state)
{
    (void)state;
    expect("{}", "\"api.tokens\"", "at least one API token");
    expect("{\"api\": {\"tokens\": [\"short\"]}}", "\"api.tokens\"", "shorter than 16");
    expect("{\"api\": {\"tokens\": [\"0123456789abcdef0\"]},\n\"listen\": {\"udp\": \"8094\"}}",
           ":2: key \"listen.udp\"", "host:port");
    expect("{\"api\": {\"tokens\": [\"0123456789abcdef0\"]},\n\"log\": {\"level\": \"loud\"}}",
           ":2: key \"log.level\"", "\"error\", \"warn\"");
    expect("{\"api\": {\"tokens\": [\"0123456789abcdef0\"]},\n\"compat\": {\"auth\": \"open\"}}",
           ":2: key \"compat.auth\"", "\"none\"");
    expect("{\"api\": {\"tokens\": [\"0123456789abcdef0\"]},\n\"compat\": {\"agent_prefix\": "
           "\"pantala\"}}",
           ":2: key \"compat.agent_prefix\"", "absolute path");
    expect("{\"api\": {\"tokens\": [\"0123456789abcdef0\"]},\n\"store\": {\"retention\": "
           "\"forever\"}}",
           ":2: key \"store.retention\"", "duration");
    expect("{\"api\": {\"tokens\": [\"0123456789abcdef0\"]},\n\"store\": {\"retention_1h\": "
           "\"ages\"}}",
           ":2: key \"store.retention_1h\"", "duration");
    expect("{\"api\": {\"tokens\": [\"0123456789abcdef0\"]},\n\"writer\": {\"queue\": 1}}",
           ":2: key \"writer.queue\"", "from 2 to 65536");
    expect("{\"api\": {\"tokens\": [\"0123456789abcdef0\"]},\n\"ingest\": {\"insecur\": true}}",
           ":2: key \"ingest.insecur\"", "unknown key");
}

static void test_alerting(void **state)
{
    (void)state;
    struct coll_config cfg;
    assert_int_equal(load_text(&cfg, "{\"api\": {\"tokens\": [\"0123456789abcdef0123\"]}}"), 0);
    assert_true(cfg.alert_enabled && cfg.alert_agent_down && cfg.alert_frames_lost);
    assert_int_equal(cfg.alert_agent_down_intervals, 3);
    assert_true(cfg.alert_frames_lost_percent == 1.0);
    assert_int_equal(cfg.alert_flap_changes, 6);
    assert_true(cfg.alert_tick_ns == 100 * PT_NS_PER_MS);
    assert_null(cfg.alert_external_url);
    coll_config_close(&cfg);
    assert_int_equal(load_text(&cfg,
                               "{\"api\": {\"tokens\": [\"0123456789abcdef0123\"]},"
                               "\"alerting\": {\"frames_lost\": {\"percent\": 2.5},"
                               "\"builtin_handlers\": [\"ops\"], \"flap\": {\"changes\": 0}}}"),
                     0);
    assert_true(cfg.alert_frames_lost_percent == 2.5);
    assert_int_equal(cfg.nalert_builtin_handlers, 1);
    assert_string_equal(cfg.alert_builtin_handlers[0], "ops");
    assert_int_equal(cfg.alert_flap_changes, 0);
    coll_config_close(&cfg);
    const char *t = "{\"api\": {\"tokens\": [\"0123456789abcdef0\"]},\n";
    char buf[256];
    snprintf(buf, sizeof buf, "%s\"alerting\": {\"frames_lost\": {\"percent\": 0}}}", t);
    expect(buf, ":2: key \"alerting.frames_lost.percent\"", "above 0");
    snprintf(buf, sizeof buf, "%s\"alerting\": {\"agent_down\": {\"intervals\": 1}}}", t);
    expect(buf, ":2: key \"alerting.agent_down.intervals\"", "from 2");
    snprintf(buf, sizeof buf, "%s\"alerting\": {\"external_url\": \"pantala.example\"}}", t);
    expect(buf, ":2: key \"alerting.external_url\"", "http://");
    snprintf(buf, sizeof buf, "%s\"alerting\": {\"flap\": {\"changes\": 99}}}", t);
    expect(buf, ":2: key \"alerting.flap.changes\"", "from 0 to 15");
}

static void test_names(void **state)
{
    (void)state;
    assert_true(coll_name_valid("vm-01.prod_a:b@c", 16));
    assert_false(coll_name_valid("a b", 3));
    assert_false(coll_name_valid("a/b", 3));
    assert_false(coll_name_valid("", 0));
    char long_name[130];
    memset(long_name, 'a', sizeof long_name);
    assert_false(coll_name_valid(long_name, 129));
    assert_true(coll_name_valid(long_name, 128));
}

static void test_outbox_keys(void **state)
{
    (void)state;
    struct coll_config cfg;
    assert_int_equal(load_text(&cfg, "{\"api\": {\"tokens\": [\"0123456789abcdef0123\"]},"
                                     "\"outbox\": {\"max_bytes\": 0, \"dir\": \"/srv/ob\"}}"),
                     0);
    assert_true(cfg.outbox_max_bytes == 0); /* no outbox */
    assert_string_equal(cfg.outbox_dir, "/srv/ob");
    coll_config_close(&cfg);
    expect("{\"api\": {\"tokens\": [\"0123456789abcdef0\"]},\n\"outbox\": {\"max_bytes\": 1000}}",
           "\"outbox.max_bytes\"", "at least 262144");
    expect("{\"api\": {\"tokens\": [\"0123456789abcdef0\"]},\n\"outbox\": {\"dir\": \"\"}}",
           "\"outbox.dir\"", "must not be empty");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipped_file_demands_a_real_token),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_alerting),
        cmocka_unit_test(test_outbox_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
