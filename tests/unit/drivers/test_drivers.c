/* Each driver against a loopback mock of its provider (mock_csp.py, which
 * recomputes the signatures and checks every request), through the real
 * libcurl transport: normal data, pagination, empty data, throttling, auth
 * failure, per-metric errors; the normalised series are asserted value by
 * value. The clock and nonces are injected (fixed), as the poller's are not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "drv_int.h"

#define T0 1700000040LL /* mock_csp.py's T0 */

static int port;
static pid_t mock_pid;
static int mock_stdin = -1;
static struct drv_http *http;
static int64_t fake_now_ms;

static int64_t fake_now(void *ud)
{
    (void)ud;
    return fake_now_ms;
}

static void fake_random(void *ud, unsigned char *buf, size_t n)
{
    (void)ud;
    for (size_t i = 0; i < n; i++) buf[i] = (unsigned char)(0x5a + i);
}

static const struct drv_clock fake_clock = {fake_now, fake_random, NULL};

static int start_mock(void **state)
{
    (void)state;
    const char *py = getenv("PT_PYTHON"), *script = getenv("PT_MOCK_CSP");
    if (!py) py = "python3";
    if (!script) script = "tests/unit/drivers/mock_csp.py";
    int in[2], out[2];
    if (pipe(in) < 0 || pipe(out) < 0) return -1;
    mock_pid = fork();
    if (mock_pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execlp(py, py, script, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    mock_stdin = in[1];
    /* Up to the newline: the port may arrive in more than one write. */
    char buf[32] = "";
    size_t n = 0;
    while (n < sizeof buf - 1 && !strchr(buf, '\n')) {
        ssize_t r = read(out[0], buf + n, sizeof buf - 1 - n);
        if (r <= 0) break;
        n += (size_t)r;
        buf[n] = '\0';
    }
    close(out[0]);
    if (!strchr(buf, '\n')) {
        fprintf(stderr, "mock_csp.py did not start (%s %s)\n", py, script);
        return -1;
    }
    port = atoi(buf);
    http = drv_http_curl_new(0);
    return port > 0 && http ? 0 : -1;
}

static int stop_mock(void **state)
{
    (void)state;
    if (http) http->free(http);
    if (mock_stdin >= 0) close(mock_stdin);
    if (mock_pid > 0) waitpid(mock_pid, NULL, 0);
    return 0;
}

/* Creates driver name from a JSON config where every "%d" is the mock's port. */
static struct drv *make(const char *name, const char *conf_fmt, const struct drv_ops **ops)
{
    char text[4096];
    /* The format is a test literal with only %d conversions for the port. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(text, sizeof text, conf_fmt, port, port, port, port);
#pragma GCC diagnostic pop
    json_error_t je;
    json_t *conf = json_loads(text, 0, &je);
    if (!conf) fail_msg("bad test config: %s: %s", je.text, text);
    *ops = drv_lookup(name);
    assert_non_null(*ops);
    struct drv_env env = {http, &fake_clock};
    struct drv *d = NULL;
    struct drv_error e;
    int rc = (*ops)->create(conf, &env, &d, &e);
    if (rc < 0) fail_msg("create %s: %s", name, e.message);
    json_decref(conf);
    return d;
}

static const struct drv_series *find(const struct drv_result *r, enum drv_metric m,
                                     const char *tagv)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->series[i].metric == m && strcmp(r->series[i].tag_value, tagv ? tagv : "") == 0)
            return &r->series[i];
    return NULL;
}

/* Asserts the series of (m, tag) holds exactly n points (ts, value). */
static void expect(const struct drv_result *r, enum drv_metric m, const char *tagv, size_t n,
                   const int64_t *ts, const double *v)
{
    const struct drv_series *s = find(r, m, tagv);
    if (!s) fail_msg("no %s series (tag \"%s\")", drv_metric_name(m), tagv ? tagv : "");
    assert_string_equal(s->name, drv_metric_name(m));
    assert_string_equal(s->unit, drv_metric_unit(m));
    if (s->n != n) fail_msg("%s: %zu points, expected %zu", s->name, s->n, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(s->points[i].ts, ts[i]);
        if (fabs(s->points[i].value - v[i]) > 1e-9)
            fail_msg("%s[%zu] = %.9g, expected %.9g", s->name, i, s->points[i].value, v[i]);
    }
}

/* The mock's GET /_failures document: failures, counts, inflight ... */
static json_t *mock_stats(void)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/_failures", port);
    struct drv_http_req req = {"GET", url, NULL, 0, NULL, 0, NULL, NULL, 5000};
    struct drv_http_resp resp;
    struct drv_error e;
    assert_int_equal(http->request(http, &req, &resp, &e), 0);
    json_t *j = json_loads(resp.body, 0, NULL);
    assert_non_null(j);
    drv_http_resp_free(&resp);
    return j;
}

/* No request the mock saw failed its checks (signatures included). */
static void assert_mock_clean(void)
{
    json_t *j = mock_stats();
    const json_t *f = json_object_get(j, "failures");
    if (json_array_size(f) > 0)
        fail_msg("mock saw bad requests: %s", json_string_value(json_array_get(f, 0)));
    json_decref(j);
}

static int mock_count(const char *key)
{
    json_t *j = mock_stats();
    int n = (int)json_integer_value(json_object_get(json_object_get(j, "counts"), key));
    json_decref(j);
    return n;
}

static struct drv_query query(unsigned metrics, int64_t span)
{
    fake_now_ms = (T0 + 600) * 1000;
    return (struct drv_query){metrics, T0, T0 + span, 60, NULL};
}

/* ---- AWS ----------------------------------------------------------------- */
static struct drv *make_aws(const char *scen, const struct drv_ops **ops)
{
    char conf[1024];
    snprintf(
        conf, sizeof conf,
        "{\"credentials\":{\"access_key_id\":\"AKIDTEST\",\"secret_access_key\":\"secret/TEST\"},"
        "\"region\":\"us-east-1\",\"instance\":\"i-0abc\",\"endpoint\":\"http://127.0.0.1:%%d/aws/"
        "%s\"}",
        scen);
    return make("aws", conf, ops);
}

static void test_aws_normal_paged(void **state)
{
    (void)state;
    const struct drv_ops *ops;
    struct drv *d = make_aws("normal", &ops);
    assert_int_equal(ops->supports(d, DRV_M_MEM), 0);
    assert_int_equal(ops->supports(d, DRV_M_CPU), 1);
    struct drv_query q = query(DRV_MASK_ALL, 180);
    struct drv_result r;
    struct drv_error e;
    int rc = ops->fetch(d, &q, &r, &e);
    if (rc) fail_msg("fetch: %s", e.message);
    assert_string_equal(r.driver, "aws");
    int64_t ts[3] = {T0, T0 + 60, T0 + 120};
    /* Three points: two from page one, one from page two (NextToken). */
    expect(&r, DRV_M_CPU, NULL, 3, ts, (double[]){10, 20, 30});
    expect(&r, DRV_M_KB_READ, NULL, 3, ts, (double[]){1, 2, 3}); /* 61440 B per 60 s = 1 KiB/s */
    expect(&r, DRV_M_KB_WRITTEN, NULL, 3, ts, (double[]){0.1, 0.2, 0.3});
    expect(&r, DRV_M_OPS_READ, NULL, 3, ts, (double[]){10, 20, 30});
    expect(&r, DRV_M_OPS_WRITE, NULL, 3, ts, (double[]){1, 2, 3});
    expect(&r, DRV_M_BYTES_IN, NULL, 3, ts, (double[]){100, 200, 300});
    expect(&r, DRV_M_BYTES_OUT, NULL, 3, ts, (double[]){10, 20, 30});
    assert_int_equal(r.status[DRV_M_MEM], DRV_E_UNSUPPORTED);
    assert_null(find(&r, DRV_M_MEM, NULL)); /* unsupported: no series, never zeros */
    assert_int_equal(r.status[DRV_M_CPU], 0);
    drv_result_free(&r);
    ops->destroy(d);
    assert_mock_clean();
}

static void test_aws_volumes(void **state)
{
    (void)state;
    const struct drv_ops *ops = drv_lookup("aws");
    json_t *conf =
        json_pack("{s:{s:s,s:s}, s:s, s:s, s:s, s:s, s:[s,s]}", "credentials", "access_key_id",
                  "AKIDTEST", "secret_access_key", "secret/TEST", "region", "us-east-1", "instance",
                  "i-0abc", "endpoint", "", "disk", "volumes", "volumes", "vol-1", "vol-2");
    char ep[128];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d/aws/empty-vol", port);
    json_object_set_new(conf, "endpoint", json_string(ep));
    struct drv_env env = {http, &fake_clock};
    struct drv *d;
    struct drv_error e;
    assert_int_equal(ops->create(conf, &env, &d, &e), 0);
    json_decref(conf);
    struct drv_query q = query(DRV_MASK(DRV_M_KB_READ), 180);
    struct drv_result r;
    assert_int_equal(ops->fetch(d, &q, &r, &e), 0);
    /* One series per EBS volume, tagged disk=<volume id>. */
    int64_t ts[2] = {T0, T0 + 60};
    expect(&r, DRV_M_KB_READ, "vol-1", 2, ts, (double[]){1, 1});
    expect(&r, DRV_M_KB_READ, "vol-2", 2, ts, (double[]){1, 1});
    assert_string_equal(find(&r, DRV_M_KB_READ, "vol-1")->tag_key, "disk");
    drv_result_free(&r);
    ops->destroy(d);
    assert_mock_clean();
}

static void test_aws_errors(void **state)
{
    (void)state;
    const struct drv_ops *ops;
    struct drv_result r;
    struct drv_error e;
    struct drv_query q = query(DRV_MASK_ALL, 180);

    struct drv *d = make_aws("throttle", &ops);
    assert_int_equal(ops->fetch(d, &q, &r, &e), DRV_E_THROTTLED);
    assert_string_equal(e.provider_code, "Throttling");
    assert_string_equal(e.request_id, "c5d7-aws-throttle");
    assert_int_equal(e.http_status, 400);
    assert_true(e.retry_after_s > 0);
    drv_result_free(&r);
    ops->destroy(d);

    d = make_aws("auth", &ops);
    assert_int_equal(ops->fetch(d, &q, &r, &e), DRV_E_AUTH);
    assert_string_equal(e.provider_code, "InvalidClientTokenId");
    assert_non_null(strstr(e.message, "security token"));
    assert_null(strstr(e.message, "secret/TEST")); /* never the secret */
    drv_result_free(&r);
    ops->destroy(d);

    d = make_aws("empty", &ops);
    assert_int_equal(ops->fetch(d, &q, &r, &e), 0);
    assert_int_equal(r.n, 0);
    assert_int_equal(r.status[DRV_M_CPU], DRV_E_NODATA);
    assert_int_equal(r.status[DRV_M_MEM], DRV_E_UNSUPPORTED);
    drv_result_free(&r);
    ops->destroy(d);

    d = make_aws("partial", &ops);
    assert_int_equal(ops->fetch(d, &q, &r, &e), 0);
    assert_int_equal(r.status[DRV_M_BYTES_OUT], DRV_E_FORBIDDEN);
    assert_null(find(&r, DRV_M_BYTES_OUT, NULL));
    expect(&r, DRV_M_CPU, NULL, 2, (int64_t[]){T0, T0 + 60}, (double[]){10, 20});
    drv_result_free(&r);
    ops->destroy(d);
    assert_mock_clean();
}

/* ---- Azure --------------------------------------------------------------- */
static struct drv *make_azure(const char *scen, const char *secret, const struct drv_ops **ops)
{
    char conf[1024];
    snprintf(conf, sizeof conf,
             "{\"credentials\":{\"tenant_id\":\"tenant-1\",\"client_id\":\"app-1\",\"client_"
             "secret\":\"%s\"},"
             "\"instance\":\"/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Compute/"
             "virtualMachines/vm-1\","
             "\"endpoint\":\"http://127.0.0.1:%%d/azure/arm/%s\",\"token_endpoint\":\"http://"
             "127.0.0.1:%%d/azure/login\"}",
             secret, scen);
    return make("azure", conf, ops);
}

static void test_azure(void **state)
{
    (void)state;
    const struct drv_ops *ops;
    struct drv_result r;
    struct drv_error e;
    struct drv *d = make_azure("normal", "s3cret", &ops);
    int tokens0 = mock_count("azure_token");
    struct drv_query q = query(DRV_MASK_ALL, 120);
    int rc = ops->fetch(d, &q, &r, &e);
    if (rc) fail_msg("fetch: %s", e.message);
    int64_t ts[2] = {T0, T0 + 60};
    expect(&r, DRV_M_CPU, NULL, 2, ts, (double[]){12.5, 13.5});
    expect(&r, DRV_M_MEM, NULL, 2, ts, (double[]){60, 70}); /* 100 - available % */
    expect(&r, DRV_M_KB_READ, NULL, 2, ts, (double[]){1, 2});
    expect(&r, DRV_M_KB_WRITTEN, NULL, 2, ts, (double[]){0.1, 0});
    expect(&r, DRV_M_OPS_READ, NULL, 2, ts, (double[]){5, 6});
    expect(&r, DRV_M_OPS_WRITE, NULL, 2, ts, (double[]){1.5, 2.5});
    expect(&r, DRV_M_BYTES_IN, NULL, 2, ts, (double[]){100, 200});
    expect(&r, DRV_M_BYTES_OUT, NULL, 2, ts, (double[]){10, 20});
    drv_result_free(&r);

    /* The token is cached: a second fetch asks for none ... */
    fake_now_ms += 60000;
    q.metrics = DRV_MASK(DRV_M_CPU);
    assert_int_equal(ops->fetch(d, &q, &r, &e), 0);
    drv_result_free(&r);
    assert_int_equal(mock_count("azure_token"), tokens0 + 1);
    /* ... until it is within five minutes of its expiry (3599 s). */
    fake_now_ms += 3300 * 1000LL;
    assert_int_equal(ops->fetch(d, &q, &r, &e), 0);
    drv_result_free(&r);
    assert_int_equal(mock_count("azure_token"), tokens0 + 2);
    ops->destroy(d);

    /* Per-metric errorCode inside a 200: that metric only. */
    d = make_azure("metricerror", "s3cret", &ops);
    q = query(DRV_MASK(DRV_M_CPU) | DRV_MASK(DRV_M_MEM), 120);
    assert_int_equal(ops->fetch(d, &q, &r, &e), 0);
    assert_int_not_equal(r.status[DRV_M_MEM], 0);
    assert_string_equal(r.metric_error[DRV_M_MEM].provider_code, "MetricUnavailable");
    assert_null(find(&r, DRV_M_MEM, NULL));
    expect(&r, DRV_M_CPU, NULL, 2, ts, (double[]){12.5, 13.5});
    drv_result_free(&r);
    ops->destroy(d);

    d = make_azure("throttle", "s3cret", &ops);
    assert_int_equal(ops->fetch(d, &q, &r, &e), DRV_E_THROTTLED);
    assert_int_equal(e.retry_after_s, 17);
    assert_string_equal(e.request_id, "az-req-1");
    drv_result_free(&r);
    ops->destroy(d);

    d = make_azure("normal", "wrong", &ops);
    assert_int_equal(ops->fetch(d, &q, &r, &e), DRV_E_AUTH);
    assert_string_equal(e.provider_code, "invalid_client");
    assert_null(strstr(e.message, "wrong"));
    drv_result_free(&r);
    ops->destroy(d);
    assert_mock_clean();
}

/* ---- Google Cloud -------------------------------------------------------- */
static char *read_key(void)
{
    char path[512];
    const char *dir = getenv("PT_TEST_DATA");
    snprintf(path, sizeof path, "%s/drivers/TEST-ONLY-rsa-key.pem", dir ? dir : "tests/data");
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static struct drv *make_gcp(const char *scen, const struct drv_ops **ops)
{
    char ep[128], tu[128];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d/gcp/%s/api", port, scen);
    snprintf(tu, sizeof tu, "http://127.0.0.1:%d/gcp/%s/token", port, scen);
    json_t *conf =
        json_pack("{s:{s:s,s:s,s:s,s:s,s:s}, s:s, s:s}", "credentials", "type", "service_account",
                  "client_email", "svc@proj-1.iam.gserviceaccount.com", "private_key", read_key(),
                  "project_id", "proj-1", "token_uri", tu, "endpoint", ep, "instance", "4567");
    *ops = drv_lookup("gcp");
    struct drv_env env = {http, &fake_clock};
    struct drv *d;
    struct drv_error e;
    if ((*ops)->create(conf, &env, &d, &e) < 0) fail_msg("create gcp: %s", e.message);
    json_decref(conf);
    return d;
}

static void test_gcp(void **state)
{
    (void)state;
    const struct drv_ops *ops;
    struct drv_result r;
    struct drv_error e;
    struct drv *d = make_gcp("normal", &ops);
    assert_int_equal(ops->supports(d, DRV_M_MEM), 0);
    struct drv_query q = query(DRV_MASK_ALL, 120);
    int rc = ops->fetch(d, &q, &r, &e);
    if (rc) fail_msg("fetch: %s", e.message);
    int64_t ts[2] = {T0, T0 + 60};
    /* Newest first over two pages, reordered; fraction → %. */
    expect(&r, DRV_M_CPU, NULL, 2, ts, (double[]){12.5, 25});
    expect(&r, DRV_M_KB_READ, "sda", 2, ts, (double[]){1, 2});
    expect(&r, DRV_M_KB_READ, "sdb", 1, ts, (double[]){0.5});
    expect(&r, DRV_M_OPS_READ, "sda", 2, ts, (double[]){3, 7}); /* int64Value strings */
    expect(&r, DRV_M_BYTES_IN, NULL, 1, ts, (double[]){100});
    assert_int_equal(r.status[DRV_M_KB_WRITTEN], DRV_E_NODATA); /* empty answer */
    assert_int_equal(r.status[DRV_M_BYTES_OUT], DRV_E_NODATA);
    assert_int_equal(r.status[DRV_M_MEM], DRV_E_UNSUPPORTED);
    drv_result_free(&r);
    ops->destroy(d);

    d = make_gcp("auth", &ops);
    assert_int_equal(ops->fetch(d, &q, &r, &e), DRV_E_AUTH);
    assert_string_equal(e.provider_code, "invalid_grant");
    drv_result_free(&r);
    ops->destroy(d);

    d = make_gcp("throttle", &ops);
    assert_int_equal(ops->fetch(d, &q, &r, &e), DRV_E_THROTTLED);
    assert_string_equal(e.provider_code, "RESOURCE_EXHAUSTED");
    drv_result_free(&r);
    ops->destroy(d);
    assert_mock_clean();
}

/* ---- Alibaba ------------------------------------------------------------- */
static struct drv *make_ali(const char *scen, const struct drv_ops **ops)
{
    char conf[1024];
    snprintf(conf, sizeof conf,
             "{\"credentials\":{\"access_key_id\":\"ali-id\",\"access_key_secret\":\"ali-secret\"},"
             "\"region\":\"cn-hangzhou\",\"instance\":\"i-ali\",\"endpoint\":\"http://"
             "127.0.0.1:%%d/ali/%s\"}",
             scen);
    return make("alibaba", conf, ops);
}

static void test_alibaba(void **state)
{
    (void)state;
    const struct drv_ops *ops;
    struct drv_result r;
    struct drv_error e;
    struct drv *d = make_ali("normal", &ops);
    struct drv_query q = query(DRV_MASK_ALL, 120);
    int rc = ops->fetch(d, &q, &r, &e);
    if (rc) fail_msg("fetch: %s", e.message);
    int64_t ts[2] = {T0, T0 + 60};
    expect(&r, DRV_M_CPU, NULL, 2, ts, (double[]){11, 22}); /* two pages */
    expect(&r, DRV_M_KB_READ, NULL, 1, ts, (double[]){2});
    expect(&r, DRV_M_OPS_WRITE, NULL, 1, ts, (double[]){3});
    expect(&r, DRV_M_BYTES_IN, NULL, 1, ts, (double[]){1000}); /* 8000 bit/s */
    expect(&r, DRV_M_BYTES_OUT, NULL, 1, ts, (double[]){100});
    assert_int_equal(r.status[DRV_M_MEM], DRV_E_UNSUPPORTED);
    assert_int_equal(r.status[DRV_M_KB_WRITTEN], DRV_E_NODATA);
    drv_result_free(&r);
    ops->destroy(d);

    d = make_ali("throttle", &ops);
    assert_int_equal(ops->fetch(d, &q, &r, &e), DRV_E_THROTTLED);
    assert_string_equal(e.provider_code, "Throttling.User");
    assert_string_equal(e.request_id, "ali-req-throttle");
    drv_result_free(&r);
    ops->destroy(d);

    d = make_ali("auth", &ops); /* a 404 whose code says the key is unknown */
    assert_int_equal(ops->fetch(d, &q, &r, &e), DRV_E_AUTH);
    assert_string_equal(e.provider_code, "InvalidAccessKeyId.NotFound");
    drv_result_free(&r);
    ops->destroy(d);

    d = make_ali("empty", &ops);
    assert_int_equal(ops->fetch(d, &q, &r, &e), 0);
    assert_int_equal(r.n, 0);
    assert_int_equal(r.status[DRV_M_CPU], DRV_E_NODATA);
    drv_result_free(&r);
    ops->destroy(d);
    assert_mock_clean();
}

/* ---- Tencent ------------------------------------------------------------- */
static struct drv *make_tc(const char *scen, const struct drv_ops **ops)
{
    char conf[1024];
    snprintf(conf, sizeof conf,
             "{\"credentials\":{\"secret_id\":\"tc-id\",\"secret_key\":\"tc-secret\"},"
             "\"region\":\"ap-guangzhou\",\"instance\":\"ins-tc\",\"endpoint\":\"http://"
             "127.0.0.1:%%d/tc/%s\"}",
             scen);
    return make("tencent", conf, ops);
}

static void test_tencent(void **state)
{
    (void)state;
    const struct drv_ops *ops;
    struct drv_result r;
    struct drv_error e;
    struct drv *d = make_tc("normal", &ops);
    struct drv_query q = query(DRV_MASK_ALL, 180);
    int rc = ops->fetch(d, &q, &r, &e);
    if (rc) fail_msg("fetch: %s", e.message);
    /* A null value is a gap, not a zero. */
    expect(&r, DRV_M_CPU, NULL, 2, (int64_t[]){T0, T0 + 120}, (double[]){3.5, 4.5});
    expect(&r, DRV_M_KB_READ, NULL, 3, (int64_t[]){T0, T0 + 60, T0 + 120}, (double[]){12, 13, 14});
    expect(&r, DRV_M_BYTES_IN, NULL, 3, (int64_t[]){T0, T0 + 60, T0 + 120},
           (double[]){1000, 2000, 3000});
    assert_int_equal(r.status[DRV_M_OPS_READ], DRV_E_BADREQUEST); /* per-metric error */
    assert_string_equal(r.metric_error[DRV_M_OPS_READ].provider_code,
                        "InvalidParameterValue.MetricNotExist");
    assert_string_equal(r.metric_error[DRV_M_OPS_READ].request_id, "tc-req-normal");
    assert_int_equal(r.status[DRV_M_MEM], DRV_E_UNSUPPORTED);
    drv_result_free(&r);
    ops->destroy(d);

    d = make_tc("auth", &ops); /* errors arrive inside an HTTP 200 */
    assert_int_equal(ops->fetch(d, &q, &r, &e), DRV_E_AUTH);
    assert_string_equal(e.provider_code, "AuthFailure.SignatureFailure");
    drv_result_free(&r);
    ops->destroy(d);

    d = make_tc("throttle", &ops);
    assert_int_equal(ops->fetch(d, &q, &r, &e), DRV_E_THROTTLED);
    assert_true(e.retry_after_s >= 1);
    drv_result_free(&r);
    ops->destroy(d);
    assert_mock_clean();
}

/* ---- OpenStack ----------------------------------------------------------- */
static struct drv *make_os(const char *scen, const struct drv_ops **ops)
{
    char conf[1024];
    snprintf(conf, sizeof conf,
             "{\"auth_url\":\"http://127.0.0.1:%%d/os/%s/"
             "v3\",\"credentials\":{\"username\":\"demo\",\"password\":\"pw\","
             "\"project_name\":\"demo\"},\"region\":\"RegionOne\",\"instance\":\"srv-1\"}",
             scen);
    return make("openstack", conf, ops);
}

static void test_openstack(void **state)
{
    (void)state;
    const struct drv_ops *ops;
    struct drv_result r;
    struct drv_error e;
    struct drv *d = make_os("normal", &ops);
    int ks0 = mock_count("keystone");
    struct drv_query q = query(DRV_MASK_ALL, 180);
    int rc = ops->fetch(d, &q, &r, &e);
    if (rc) fail_msg("fetch: %s", e.message);
    int64_t ts[3] = {T0, T0 + 60, T0 + 120};
    expect(&r, DRV_M_CPU, NULL, 3, ts, (double[]){25, 25, 25}); /* 30e9 ns / 60 s / 2 vCPU */
    expect(&r, DRV_M_MEM, NULL, 3, ts, (double[]){50, 75, 50});
    expect(&r, DRV_M_KB_READ, "vda", 3, ts, (double[]){1, 1, 1});
    expect(&r, DRV_M_OPS_READ, "vda", 3, ts, (double[]){1, 2, 2});
    /* 7000 → 500 is a counter reset: no rate for that step (never negative). */
    expect(&r, DRV_M_BYTES_IN, "tap0", 2, (int64_t[]){T0, T0 + 120}, (double[]){100, 100});
    assert_string_equal(find(&r, DRV_M_BYTES_IN, "tap0")->tag_key, "interface");
    drv_result_free(&r);
    /* The token is reused. */
    assert_int_equal(ops->fetch(d, &q, &r, &e), 0);
    drv_result_free(&r);
    assert_int_equal(mock_count("keystone"), ks0 + 1);
    ops->destroy(d);

    d = make_os("auth", &ops);
    assert_int_equal(ops->fetch(d, &q, &r, &e), DRV_E_AUTH);
    assert_string_equal(e.provider_code, "Unauthorized");
    assert_string_equal(e.request_id, "req-ks-1");
    drv_result_free(&r);
    ops->destroy(d);
    assert_mock_clean();
}

/* ---- NCP ----------------------------------------------------------------- */
static struct drv *make_ncp(const char *scen, const struct drv_ops **ops)
{
    char conf[1024];
    snprintf(conf, sizeof conf,
             "{\"credentials\":{\"access_key\":\"ncp-ak\",\"secret_key\":\"ncp-sk\"},\"instance\":"
             "\"9876\","
             "\"endpoint\":\"http://127.0.0.1:%%d/ncp/%s\"}",
             scen);
    return make("ncp", conf, ops);
}

static void test_ncp(void **state)
{
    (void)state;
    const struct drv_ops *ops;
    struct drv_result r;
    struct drv_error e;
    struct drv *d = make_ncp("normal", &ops);
    struct drv_query q = query(DRV_MASK_ALL, 120);
    int rc = ops->fetch(d, &q, &r, &e);
    if (rc) fail_msg("fetch: %s", e.message);
    int64_t ts[2] = {T0, T0 + 60};
    expect(&r, DRV_M_CPU, NULL, 2, ts, (double[]){5, 6});
    expect(&r, DRV_M_MEM, NULL, 2, ts, (double[]){50, 55});
    expect(&r, DRV_M_BYTES_IN, NULL, 2, ts, (double[]){1000, 2000});
    assert_int_equal(r.status[DRV_M_KB_READ], DRV_E_NODATA);
    drv_result_free(&r);
    ops->destroy(d);

    d = make_ncp("auth", &ops);
    assert_int_equal(ops->fetch(d, &q, &r, &e), DRV_E_AUTH);
    assert_string_equal(e.provider_code, "200");
    drv_result_free(&r);
    ops->destroy(d);

    d = make_ncp("throttle", &ops);
    assert_int_equal(ops->fetch(d, &q, &r, &e), DRV_E_THROTTLED);
    assert_int_equal(e.retry_after_s, 3);
    drv_result_free(&r);
    ops->destroy(d);
    assert_mock_clean();
}

/* ---- CB-Spider ----------------------------------------------------------- */
static void test_cbspider(void **state)
{
    (void)state;
    const struct drv_ops *ops;
    struct drv_result r;
    struct drv_error e;
    const char *fmt =
        "{\"endpoint\":\"http://127.0.0.1:%d/cb/normal\",\"connection_name\":\"aws-conn\","
        "\"instance\":\"web-1\",\"credentials\":{\"username\":\"admin\",\"password\":\"cbpw\"}}";
    struct drv *d = make("cbspider", fmt, &ops);
    struct drv_query q = query(DRV_MASK_ALL, 120);
    int rc = ops->fetch(d, &q, &r, &e);
    if (rc) fail_msg("fetch: %s", e.message);
    int64_t ts[2] = {T0, T0 + 60};
    expect(&r, DRV_M_CPU, NULL, 2, ts,
           (double[]){2.5, 3.5}); /* the point before the range dropped */
    expect(&r, DRV_M_KB_READ, NULL, 2, ts, (double[]){2, 0}); /* 122880 B per minute */
    expect(&r, DRV_M_BYTES_IN, NULL, 2, ts, (double[]){10, 1});
    assert_int_equal(r.status[DRV_M_MEM], DRV_E_BADREQUEST); /* CB-Spider refused it */
    assert_non_null(strstr(r.metric_error[DRV_M_MEM].message, "not supported"));
    assert_int_equal(r.status[DRV_M_OPS_READ], DRV_E_NODATA);
    drv_result_free(&r);
    ops->destroy(d);
    assert_mock_clean();
}

/* ---- drv_multi: many calls at once on libcurl's multi interface ----------- */

static int mock_stat(const char *key)
{
    json_t *j = mock_stats();
    int n = (int)json_integer_value(json_object_get(j, key));
    json_decref(j);
    return n;
}

#define NCALLS 12

struct outcome {
    pthread_mutex_t lock;
    int ndone;
    int rc[NCALLS];
    unsigned requests[NCALLS];
    double cpu_last[NCALLS];
    int mem_status[NCALLS];
    char message[NCALLS][256];
};

static void on_done(void *ud, struct drv_call *c, int rc)
{
    struct outcome *o = ud;
    pthread_mutex_lock(&o->lock);
    int i = o->ndone++;
    o->rc[i] = rc;
    o->requests[i] = drv_call_requests(c);
    const struct drv_series *s = rc == 0 ? find(drv_call_result(c), DRV_M_CPU, NULL) : NULL;
    o->cpu_last[i] = s && s->n == 2 ? s->points[1].value : NAN;
    o->mem_status[i] = drv_call_result(c)->status[DRV_M_MEM];
    snprintf(o->message[i], sizeof o->message[i], "%s", drv_call_error(c)->message);
    pthread_mutex_unlock(&o->lock);
}

static int ndone(struct outcome *o)
{
    pthread_mutex_lock(&o->lock);
    int n = o->ndone;
    pthread_mutex_unlock(&o->lock);
    return n;
}

/* Waits (a deadlock guard, not a timing check) until pred(ud) holds. */
static void wait_for(bool (*pred)(void *), void *ud, const char *what)
{
    for (int i = 0; i < 600 && !pred(ud); i++) usleep(50 * 1000);
    if (!pred(ud)) fail_msg("gave up waiting for %s", what);
}

static bool all_done(void *ud)
{
    return ndone(ud) == NCALLS;
}

static bool three_held(void *ud)
{
    (void)ud;
    return mock_stat("inflight") == 3;
}

/* Twelve CB-Spider fetches (eight requests in a row each, every answer
 * 0.4 s late) submitted at once run at once: the mock sees all twelve
 * requests open together, and every call's result is the synchronous
 * fetch's. One thread does all of it. */
static void test_multi_concurrent(void **state)
{
    (void)state;
    const char *fmt =
        "{\"endpoint\":\"http://127.0.0.1:%d/cb/slow\",\"connection_name\":\"aws-conn\","
        "\"instance\":\"web-1\",\"credentials\":{\"username\":\"admin\",\"password\":\"cbpw\"}}";
    const struct drv_ops *ops;
    struct drv *d[NCALLS];
    for (int i = 0; i < NCALLS; i++) d[i] = make("cbspider", fmt, &ops);
    struct drv_multi *m;
    struct drv_multi_opts mo = {.max_host_conns = 16};
    assert_int_equal(drv_multi_new(&m, &mo), 0);
    struct outcome o = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct drv_query q = query(DRV_MASK_ALL, 120);
    for (int i = 0; i < NCALLS; i++) {
        struct drv_call *c = drv_call_new(ops, d[i], &q);
        assert_non_null(c);
        assert_int_equal(drv_multi_submit(m, c, on_done, &o), 0);
    }
    wait_for(all_done, &o, "twelve calls");
    assert_int_equal(drv_multi_active(m), 0);
    for (int i = 0; i < NCALLS; i++) {
        if (o.rc[i]) fail_msg("call %d: %s", i, o.message[i]);
        assert_int_equal(o.requests[i], DRV_M_COUNT); /* one per metric */
        assert_true(o.cpu_last[i] == 3.5);
        assert_int_equal(o.mem_status[i], DRV_E_BADREQUEST);
    }
    /* 12 calls of 8 sequential requests: only concurrency makes 12 at once. */
    assert_int_equal(mock_stat("max_inflight"), NCALLS);
    drv_multi_free(m);
    for (int i = 0; i < NCALLS; i++) ops->destroy(d[i]);
    assert_mock_clean();
}

/* A transport failure ends the call with DRV_E_TRANSPORT and the URL in
 * the message; freeing the multi cancels calls under way (done() with
 * -ECANCELED, before drv_multi_free returns). */
static void test_multi_fail_cancel(void **state)
{
    (void)state;
    const struct drv_ops *ops;
    struct drv *dead = make("cbspider",
                            "{\"endpoint\":\"http://127.0.0.1:1/cb\",\"connection_name\":\"c\","
                            "\"instance\":\"web-1\",\"timeout_ms\":2000}",
                            &ops);
    struct drv_multi *m;
    assert_int_equal(drv_multi_new(&m, NULL), 0);
    struct outcome o = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct drv_query q = query(DRV_MASK(DRV_M_CPU), 120);
    assert_int_equal(drv_multi_submit(m, drv_call_new(ops, dead, &q), on_done, &o), 0);
    for (int i = 0; i < 600 && ndone(&o) < 1; i++) usleep(10 * 1000);
    assert_int_equal(ndone(&o), 1);
    assert_int_equal(o.rc[0], DRV_E_TRANSPORT);
    assert_non_null(strstr(o.message[0], "127.0.0.1:1"));

    const char *fmt =
        "{\"endpoint\":\"http://127.0.0.1:%d/cb/hold\",\"connection_name\":\"aws-conn\","
        "\"instance\":\"web-1\",\"credentials\":{\"username\":\"admin\",\"password\":\"cbpw\"}}";
    struct drv *d[3];
    for (int i = 0; i < 3; i++) {
        d[i] = make("cbspider", fmt, &ops);
        assert_int_equal(drv_multi_submit(m, drv_call_new(ops, d[i], &q), on_done, &o), 0);
    }
    wait_for(three_held, NULL, "three held requests");
    assert_int_equal(drv_multi_active(m), 3);
    drv_multi_free(m);
    assert_int_equal(ndone(&o), 4);
    for (int i = 1; i < 4; i++) assert_int_equal(o.rc[i], -ECANCELED);
    for (int i = 0; i < 3; i++) ops->destroy(d[i]);
    ops->destroy(dead);
}

/* Config errors name the key. */
static void test_config_errors(void **state)
{
    (void)state;
    struct drv_env env = {http, &fake_clock};
    struct drv *d;
    struct drv_error e;
    for (size_t i = 0; drv_all[i]; i++) {
        json_t *empty = json_object();
        assert_int_equal(drv_all[i]->create(empty, &env, &d, &e), DRV_E_CONFIG);
        assert_non_null(strstr(e.message, "\""));
        json_decref(empty);
    }
    assert_null(drv_lookup("nosuchcloud"));
    assert_string_equal(drv_metric_name(DRV_M_KB_READ), "kb_read");
    assert_int_equal(drv_metric_parse("bytes_out"), DRV_M_BYTES_OUT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aws_normal_paged),
        cmocka_unit_test(test_aws_volumes),
        cmocka_unit_test(test_aws_errors),
        cmocka_unit_test(test_azure),
        cmocka_unit_test(test_gcp),
        cmocka_unit_test(test_alibaba),
        cmocka_unit_test(test_tencent),
        cmocka_unit_test(test_openstack),
        cmocka_unit_test(test_ncp),
        cmocka_unit_test(test_cbspider),
        cmocka_unit_test(test_multi_concurrent),
        cmocka_unit_test(test_multi_fail_cancel),
        cmocka_unit_test(test_config_errors),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, start_mock, stop_mock);
}
