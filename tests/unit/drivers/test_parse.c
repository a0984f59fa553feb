/* Hostile provider answers: every driver fed malformed, truncated and
 * randomly mutated responses through an in-memory replay transport must
 * return a clean error (or a well-formed result), never crash, overrun or
 * leak (this test runs under ASan/UBSan in CI). Also the XML finder's edges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drv_int.h"
#include "xml.h"

/* Replay transport: token/auth URLs get a fixed good answer; every other
 * request gets `body` with `status`. */
static const char *body;
static long status = 200;
static int requests;

static char *dup_str(const char *s)
{
    size_t n = strlen(s);
    char *p = malloc(n + 1);
    memcpy(p, s, n + 1);
    return p;
}

static int replay(struct drv_http *h, const struct drv_http_req *req, struct drv_http_resp *resp,
                  struct drv_error *err)
{
    (void)h;
    (void)err;
    requests++;
    const char *b = body, *hdr = "Content-Type: application/json\r\n";
    resp->status = status;
    if (strstr(req->url, "/oauth2/") || strstr(req->url, "/token")) {
        b = "{\"access_token\":\"t\",\"expires_in\":3600}";
        resp->status = 200;
    } else if (strstr(req->url, "/auth/tokens")) {
        b = "{\"token\":{\"expires_at\":\"2030-01-01T00:00:00Z\",\"catalog\":[{\"type\":\"metric\","
            "\"endpoints\":"
            "[{\"interface\":\"public\",\"url\":\"http://gnocchi\"}]}]}}";
        hdr = "X-Subject-Token: tok\r\n";
        resp->status = 201;
    }
    resp->body = dup_str(b);
    resp->body_len = strlen(b);
    resp->headers = dup_str(hdr);
    resp->headers_len = strlen(hdr);
    return 0;
}

static struct drv_http replay_http = {replay, NULL, NULL};

static int64_t now_ms(void *ud)
{
    (void)ud;
    return 1700000640000LL;
}
static void rnd(void *ud, unsigned char *b, size_t n)
{
    (void)ud;
    memset(b, 7, n);
}
static const struct drv_clock clk = {now_ms, rnd, NULL};

static char key_pem[8192];

static json_t *conf_for(const char *name)
{
    if (!strcmp(name, "aws"))
        return json_pack("{s:{s:s,s:s},s:s,s:s,s:s}", "credentials", "access_key_id", "a",
                         "secret_access_key", "b", "region", "us-east-1", "instance", "i-1",
                         "endpoint", "http://x");
    if (!strcmp(name, "azure"))
        return json_pack("{s:{s:s,s:s,s:s},s:s,s:s,s:s}", "credentials", "tenant_id", "t",
                         "client_id", "c", "client_secret", "s", "instance", "/subscriptions/s/vm",
                         "endpoint", "http://x", "token_endpoint", "http://login");
    if (!strcmp(name, "gcp"))
        return json_pack("{s:{s:s,s:s,s:s},s:s,s:s,s:s}", "credentials", "client_email", "e",
                         "private_key", key_pem, "project_id", "p", "instance", "1", "endpoint",
                         "http://x", "token_uri", "http://x/token");
    if (!strcmp(name, "alibaba"))
        return json_pack("{s:{s:s,s:s},s:s,s:s,s:s}", "credentials", "access_key_id", "a",
                         "access_key_secret", "b", "region", "cn", "instance", "i-1", "endpoint",
                         "http://x");
    if (!strcmp(name, "tencent"))
        return json_pack("{s:{s:s,s:s},s:s,s:s,s:s}", "credentials", "secret_id", "a", "secret_key",
                         "b", "region", "gz", "instance", "ins-1", "endpoint", "http://x");
    if (!strcmp(name, "openstack"))
        return json_pack("{s:s,s:{s:s,s:s,s:s},s:s,s:i}", "auth_url", "http://ks/v3", "credentials",
                         "username", "u", "password", "p", "project_name", "p", "instance", "srv",
                         "vcpus", 2);
    if (!strcmp(name, "ncp"))
        return json_pack("{s:{s:s,s:s},s:s,s:s}", "credentials", "access_key", "a", "secret_key",
                         "b", "instance", "1", "endpoint", "http://x");
    return json_pack("{s:s,s:s,s:s}", "endpoint", "http://x", "connection_name", "c", "instance",
                     "vm");
}

/* One fetch with the current body; the result must be sane either way. */
static int run(const char *name)
{
    const struct drv_ops *ops = drv_lookup(name);
    json_t *conf = conf_for(name);
    struct drv_env env = {&replay_http, &clk};
    struct drv *d;
    struct drv_error e;
    assert_int_equal(ops->create(conf, &env, &d, &e), 0);
    json_decref(conf);
    struct drv_query q = {DRV_MASK_ALL, 1700000040, 1700000280, 60, NULL};
    struct drv_result r;
    int rc = ops->fetch(d, &q, &r, &e);
    assert_true(rc == 0 || (rc < 0 && e.code != 0 && e.message[0]));
    /* On error the result is only to be freed; on success it must be clean. */
    for (size_t i = 0; rc == 0 && i < r.n; i++) {
        assert_true(r.series[i].n > 0 && r.series[i].n <= r.series[i].cap);
        for (size_t k = 1; k < r.series[i].n; k++)
            assert_true(r.series[i].points[k - 1].ts < r.series[i].points[k].ts);
    }
    drv_result_free(&r);
    ops->destroy(d);
    return rc;
}

static void test_not_json(void **state)
{
    (void)state;
    body = "this is not what the API documents";
    status = 200;
    for (size_t i = 0; drv_all[i]; i++) {
        int rc = run(drv_all[i]->name);
        if (rc != DRV_E_PARSE)
            fail_msg("%s: rc %d (%s), expected a parse error", drv_all[i]->name, rc,
                     drv_strerror(rc));
    }
}

/* Valid-looking answers of each API, then mutated byte by byte. */
static const char *const corpus[] = {
    "<GetMetricDataResponse><GetMetricDataResult><MetricDataResults><member><Timestamps><member>"
    "2023-11-14T08:15:00Z"
    "</member></Timestamps><Label>CPUUtilization</Label><Values><member>1.5</member></"
    "Values><Id>q0</Id><StatusCode>"
    "Complete</StatusCode></member></MetricDataResults><NextToken></NextToken></"
    "GetMetricDataResult></GetMetricDataResponse>",
    "{\"value\":[{\"name\":{\"value\":\"Percentage "
    "CPU\"},\"errorCode\":\"Success\",\"timeseries\":[{\"data\":"
    "[{\"timeStamp\":\"2023-11-14T08:15:00Z\",\"average\":1.5}]}]}]}",
    "{\"timeSeries\":[{\"metric\":{\"labels\":{\"device_name\":\"sda\"}},\"points\":[{\"interval\":"
    "{\"endTime\":"
    "\"2023-11-14T08:16:00Z\"},\"value\":{\"int64Value\":\"12\"}}]}],\"nextPageToken\":\"\"}",
    "{\"Success\":true,\"Code\":\"200\",\"Datapoints\":\"[{\\\"timestamp\\\":1699949700000,"
    "\\\"Average\\\":1.5}]\"}",
    "{\"Response\":{\"DataPoints\":[{\"Timestamps\":[1699949700,1699949760],\"Values\":[1.5,null]}]"
    ",\"RequestId\":\"r\"}}",
    "[[\"2023-11-14T08:15:00+00:00\",60.0,1.5],[\"2023-11-14T08:16:00+00:00\",60.0,3.5]]",
    "[[1699949700000,1.5],[1699949760000,2.5]]",
    "{\"metricName\":\"cpu_usage\",\"timestampValues\":[{\"timestamp\":\"2023-11-14T08:15:00Z\","
    "\"value\":\"1.5\"}]}",
};

static void test_mutations(void **state)
{
    (void)state;
    unsigned seed = 12345;
    static const char junk[] = "<>\"{}[],:0-9.eE+\\/ nulltrue";
    char buf[1024];
    int runs = 0;
    for (size_t c = 0; c < sizeof corpus / sizeof corpus[0]; c++) {
        for (int it = 0; it < 20; it++) {
            size_t n = strlen(corpus[c]);
            memcpy(buf, corpus[c], n + 1);
            int edits = 1 + (int)(rand_r(&seed) % 4);
            for (int k = 0; k < edits; k++) {
                size_t pos = (size_t)rand_r(&seed) % n;
                switch (rand_r(&seed) % 3) {
                case 0:
                    buf[pos] = junk[(size_t)rand_r(&seed) % (sizeof junk - 1)];
                    break;
                case 1:
                    buf[pos] = '\0';
                    n = pos ? pos : 1;
                    break; /* truncate */
                default:
                    memmove(buf + pos, buf + pos + 1, n - pos);
                    n = n > 1 ? n - 1 : 1;
                    break;
                }
            }
            body = buf;
            for (long st = 200; st <= 500; st += 300) {
                status = st;
                for (size_t i = 0; drv_all[i]; i++, runs++) run(drv_all[i]->name);
            }
        }
    }
    assert_true(runs > 2000);
}

static void test_xml_edges(void **state)
{
    (void)state;
    const char *doc =
        "<a><member><member>1</member><member/></member><member>x &amp; &lt;y&gt;</member></a><b";
    struct drv_xml in = {doc, doc + strlen(doc)}, a, m;
    assert_true(drv_xml_child(in, "a", &a));
    const char *from = NULL;
    assert_true(drv_xml_next(a, "member", &from, &m)); /* the outer one, nested matched */
    assert_int_equal(m.end - m.p, (long)strlen("<member>1</member><member/>"));
    assert_true(drv_xml_next(a, "member", &from, &m));
    char t[32];
    drv_xml_value(m, t, sizeof t);
    assert_string_equal(t, "x & <y>");
    assert_false(drv_xml_next(a, "member", &from, &m));
    assert_false(drv_xml_child(in, "b", &m));   /* unterminated */
    assert_false(drv_xml_child(in, "mem", &m)); /* a prefix is not a match */
    char small[4];
    assert_true(drv_xml_text(a, "member", small, sizeof small));
    assert_int_equal(strlen(small), 3); /* truncated, terminated */
}

int main(void)
{
    char path[512];
    const char *dir = getenv("PT_TEST_DATA");
    snprintf(path, sizeof path, "%s/drivers/TEST-ONLY-rsa-key.pem", dir ? dir : "tests/data");
    FILE *f = fopen(path, "rb");
    if (!f) return 1;
    key_pem[fread(key_pem, 1, sizeof key_pem - 1, f)] = '\0';
    fclose(f);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_json),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_xml_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
