/* collector/agentless/targets.c: validation, public JSON without secrets,
 * sealed credentials, targets.db. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentless/targets.h"
#include "pt/err.h"

#define AWS_OK                                                                                     \
    "{\"ns\":\"ns1\",\"mcis\":\"web\",\"vm\":\"vm-1\",\"driver\":\"aws\",\"instance\":\"i-0abc\"," \
    "\"region\":\"us-east-1\",\"interval\":\"30s\",\"options\":{\"disk\":\"ebs\"},"                \
    "\"credentials\":{\"access_key_id\":\"AKIDEXAMPLE\",\"secret_access_key\":\"TOPSECRET42\"}}"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/pt-agltgt-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_valid_target_and_defaults(void **state)
{
    (void)state;
    struct agl_target t;
    json_t *creds;
    char err[512] = "";
    assert_int_equal(agl_target_parse(AWS_OK, strlen(AWS_OK), &t, &creds, err, sizeof err), 0);
    assert_string_equal(t.ns, "ns1");
    assert_string_equal(t.vm, "vm-1");
    assert_string_equal(t.driver, "aws");
    assert_string_equal(t.csp, "aws"); /* csp defaults to the driver */
    assert_int_equal(t.interval_s, 30);
    assert_int_equal(t.period_s, AGL_PERIOD_DEF_S);
    assert_int_equal(t.lookback_s, AGL_LOOKBACK_DEF_S);
    assert_true(t.enabled);
    assert_non_null(creds);
    assert_string_equal(json_string_value(json_object_get(creds, "secret_access_key")),
                        "TOPSECRET42");
    /* The driver configuration: options merged, credentials included. */
    json_t *conf = agl_target_driver_conf(&t, creds);
    assert_string_equal(json_string_value(json_object_get(conf, "disk")), "ebs");
    assert_string_equal(json_string_value(json_object_get(conf, "region")), "us-east-1");
    assert_string_equal(json_string_value(json_object_get(conf, "instance")), "i-0abc");
    assert_non_null(json_object_get(conf, "credentials"));
    json_decref(conf);
    agl_json_wipe(creds);
    assert_int_equal(json_string_value(json_object_get(creds, "secret_access_key"))[0], '\0');
    json_decref(creds);
    agl_target_free(&t);
}

static void expect_error(const char *body, const char *needle)
{
    struct agl_target t;
    json_t *creds = (json_t *)1;
    char err[512] = "";
    assert_int_equal(agl_target_parse(body, strlen(body), &t, &creds, err, sizeof err),
                     PT_E_CONFIG);
    assert_null(creds);
    if (!strstr(err, needle)) fail_msg("error \"%s\" does not mention %s", err, needle);
    /* The message may name keys, never echo a secret. */
    assert_null(strstr(err, "TOPSECRET42"));
}

static void test_invalid_targets_name_the_key(void **state)
{
    (void)state;
    expect_error("{\"mcis\":\"web\",\"vm\":\"v\",\"driver\":\"aws\",\"instance\":\"i\"}",
                 "key \"ns\"");
    expect_error(
        "{\"ns\":\"n\",\"mcis\":\"web\",\"vm\":\"v w\",\"driver\":\"aws\",\"instance\":\"i\"}",
        "key \"vm\"");
    expect_error("{\"ns\":\"n\",\"mcis\":\"m\",\"vm\":\"v\",\"instance\":\"i\"}", "key \"driver\"");
    expect_error("{\"ns\":\"n\",\"mcis\":\"m\",\"vm\":\"v\",\"driver\":\"ibm\",\"instance\":\"i\"}",
                 "unknown driver");
    expect_error("{\"ns\":\"n\",\"mcis\":\"m\",\"vm\":\"v\",\"driver\":\"aws\"}",
                 "key \"instance\"");
    expect_error("{\"ns\":\"n\",\"mcis\":\"m\",\"vm\":\"v\",\"driver\":\"aws\",\"instance\":\"i\","
                 "\"interval\":\"2d\"}",
                 "key \"interval\"");
    expect_error("{\"ns\":\"n\",\"mcis\":\"m\",\"vm\":\"v\",\"driver\":\"aws\",\"instance\":\"i\","
                 "\"region\":\"us east\"}",
                 "key \"region\"");
    expect_error("{\"ns\":\"n\",\"mcis\":\"m\",\"vm\":\"v\",\"driver\":\"aws\",\"instance\":\"i\","
                 "\"endpoint\":\"file:///etc/passwd\"}",
                 "key \"endpoint\"");
    expect_error("{\"ns\":\"n\",\"mcis\":\"m\",\"vm\":\"v\",\"driver\":\"aws\",\"instance\":\"i\","
                 "\"endpoint\":\"https://admin:TOPSECRET42@cw.example.com/x\"}",
                 "user:password@");
    expect_error("{\"ns\":\"n\",\"mcis\":\"m\",\"vm\":\"v\",\"driver\":\"aws\",\"instance\":\"i\","
                 "\"options\":{\"credentials\":{}}}",
                 "key \"options\"");
    expect_error("{\"ns\":\"n\",\"mcis\":\"m\",\"vm\":\"v\",\"driver\":\"aws\",\"instance\":\"i\","
                 "\"credentials\":[\"TOPSECRET42\"]}",
                 "key \"credentials\"");
    expect_error("{\"ns\":\"n\",\"mcis\":\"m\",\"vm\":\"v\",\"driver\":\"aws\",\"instance\":\"i\","
                 "\"period\":\"5m\",\"lookback\":\"1m\"}",
                 "key \"lookback\"");
    expect_error("{\"ns\":\"n\",\"mcis\":\"m\",\"vm\":\"v\",\"driver\":\"aws\",\"instance\":\"i\","
                 "\"secret\":\"TOPSECRET42\"}",
                 "secret");
    expect_error("not json", "request body");
    /* The driver's own check: AWS without credentials or region. */
    expect_error("{\"ns\":\"n\",\"mcis\":\"m\",\"vm\":\"v\",\"driver\":\"aws\",\"instance\":\"i\","
                 "\"region\":\"us-east-1\"}",
                 "driver \"aws\" refuses");
}

static void test_public_json_never_has_secrets(void **state)
{
    (void)state;
    struct agl_target t;
    json_t *creds;
    char err[512];
    assert_int_equal(agl_target_parse(AWS_OK, strlen(AWS_OK), &t, &creds, err, sizeof err), 0);
    t.id = 3;
    json_t *j = agl_target_json(&t);
    char *s = json_dumps(j, JSON_COMPACT);
    assert_null(strstr(s, "TOPSECRET42"));
    assert_null(strstr(s, "AKIDEXAMPLE"));
    assert_null(json_object_get(j, "credentials"));
    json_t *set = json_object_get(j, "credentials_set");
    assert_int_equal(json_array_size(set), 2);
    assert_string_equal(json_string_value(json_array_get(set, 0)), "access_key_id");
    assert_string_equal(json_string_value(json_array_get(set, 1)), "secret_access_key");
    assert_int_equal(json_integer_value(json_object_get(j, "id")), 3);
    free(s);
    json_decref(j);
    agl_json_wipe(creds);
    json_decref(creds);
    agl_target_free(&t);
}

static void test_sealed_and_persisted(void **state)
{
    (void)state;
    char kp[128], dbp[128], err[512];
    snprintf(kp, sizeof kp, "%s/key", dir);
    snprintf(dbp, sizeof dbp, "%s/targets.db", dir);
    struct agl_key key;
    assert_int_equal(agl_key_load(&key, kp, err, sizeof err), 0);
    struct agl_db *db;
    assert_int_equal(agl_db_open(&db, dbp, err, sizeof err), 0);
    struct agl_target t;
    json_t *creds;
    assert_int_equal(agl_target_parse(AWS_OK, strlen(AWS_OK), &t, &creds, err, sizeof err), 0);
    assert_int_equal(agl_db_next_id(db, &t.id), 0);
    assert_int_equal(t.id, 1);
    t.created_ns = t.updated_ns = 1234;
    assert_int_equal(agl_target_seal(&t, &key, creds), 0);
    assert_null(memmem(t.blob, t.blob_len, "TOPSECRET42", 11));
    assert_int_equal(agl_db_put(db, &t), 0);
    assert_int_equal(agl_db_next_id(db, &t.id), 0);
    assert_int_equal(t.id, 2);
    agl_db_close(db);

    /* The file holds no secret in clear. */
    FILE *f = fopen(dbp, "rb");
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_null(memmem(buf, n, "TOPSECRET42", 11));

    assert_int_equal(agl_db_open(&db, dbp, err, sizeof err), 0);
    struct agl_target *ts;
    size_t nt;
    assert_int_equal(agl_db_load(db, &ts, &nt, err, sizeof err), 0);
    assert_int_equal(nt, 1);
    assert_int_equal(ts[0].id, 1);
    assert_string_equal(ts[0].instance, "i-0abc");
    assert_int_equal(ts[0].interval_s, 30);
    assert_int_equal(ts[0].created_ns, 1234);
    json_t *back;
    assert_int_equal(agl_target_creds(&ts[0], &key, &back), 0);
    assert_true(json_equal(back, creds));
    json_decref(back);
    /* The blob is bound to its target id. */
    ts[0].id = 2;
    assert_int_equal(agl_target_creds(&ts[0], &key, &back), AGL_E_TAMPERED);
    assert_null(back);
    assert_int_equal(agl_db_delete(db, 1), 0);
    assert_int_equal(agl_db_delete(db, 1), -ENOENT);
    agl_target_free(&ts[0]);
    free(ts);
    agl_db_close(db);
    agl_json_wipe(creds);
    json_decref(creds);
    agl_target_free(&t);
    agl_key_close(&key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_target_and_defaults),
        cmocka_unit_test(test_invalid_targets_name_the_key),
        cmocka_unit_test(test_public_json_never_has_secrets),
        cmocka_unit_test(test_sealed_and_persisted),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
