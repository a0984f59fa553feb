/* The OpenStack driver's token handling as stages of its step machine,
 * against an in-process Keystone + Gnocchi that counts what it is asked:
 * a token refused by Gnocchi (401) is dropped and the request asked again
 * once with a fresh one; a second refusal is the fetch's DRV_E_AUTH; a
 * token is reused until 5 minutes before it expires. Also the same fetch
 * run through the drv_call API (the caller performs each exchange), as the
 * agentless poller's drv_multi does, including a transport failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drv_int.h"

#define T0 1700000040LL

/* ---- A scripted Keystone + Gnocchi ---------------------------------------- */

static struct {
    int keystone;       /* token requests answered */
    int gnocchi;        /* Gnocchi requests answered (refused ones included) */
    int refuse;         /* answer 401 to this many Gnocchi requests from now on */
    int64_t token_life; /* seconds from the clock to a new token's expires_at */
    char token[32];     /* the token Keystone handed out last */
    char refused[256];  /* the URL of the last refused request */
    char last_url[256]; /* the URL of the last Gnocchi request */
} ks;
static int64_t now_ms = T0 * 1000 + 180000;

static int64_t fake_now(void *ud)
{
    (void)ud;
    return now_ms;
}

static void fake_random(void *ud, unsigned char *buf, size_t n)
{
    (void)ud;
    memset(buf, 0x5a, n);
}

static const struct drv_clock fake_clock = {fake_now, fake_random, NULL};

static char *dup_printf(const char *fmt, ...) PT_PRINTF(1, 2);
static char *dup_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = NULL;
    if (vasprintf(&p, fmt, ap) < 0) p = NULL;
    va_end(ap);
    assert_non_null(p);
    return p;
}

static const char *header(const struct drv_http_req *req, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->nheaders; i++)
        if (strncmp(req->headers[i], name, n) == 0 && req->headers[i][n] == ':')
            return req->headers[i] + n + 2;
    return NULL;
}

static void answer(struct drv_http_resp *resp, long status, char *headers, char *body)
{
    resp->status = status;
    resp->headers = headers;
    resp->headers_len = strlen(headers);
    resp->body = body;
    resp->body_len = strlen(body);
}

/* Three measures a minute apart from T0 - 60 (the driver asks one
 * granularity early) of a cumulative counter. */
static char *measures(double v0, double v1, double v2)
{
    char t[3][32];
    for (int i = 0; i < 3; i++) drv_fmt_time(T0 - 60 + 60 * i, "%Y-%m-%dT%H:%M:%SZ", t[i], 32);
    return dup_printf("[[\"%s\",60.0,%g],[\"%s\",60.0,%g],[\"%s\",60.0,%g]]", t[0], v0, t[1], v1,
                      t[2], v2);
}

static int fake_request(struct drv_http *h, const struct drv_http_req *req,
                        struct drv_http_resp *resp, struct drv_error *err)
{
    (void)h;
    (void)err;
    memset(resp, 0, sizeof *resp);
    if (strcmp(req->url, "http://keystone.test/v3/auth/tokens") == 0) {
        assert_string_equal(req->method, "POST");
        assert_non_null(strstr(req->body, "\"password\":\"pw\""));
        ks.keystone++;
        snprintf(ks.token, sizeof ks.token, "tok-%d", ks.keystone);
        char exp[32];
        drv_fmt_time(now_ms / 1000 + ks.token_life, "%Y-%m-%dT%H:%M:%SZ", exp, sizeof exp);
        answer(resp, 201, dup_printf("X-Subject-Token: %s\r\n", ks.token),
               dup_printf("{\"token\":{\"expires_at\":\"%s\",\"catalog\":[{\"type\":\"metric\","
                          "\"endpoints\":[{\"interface\":\"public\",\"region_id\":\"RegionOne\","
                          "\"url\":\"http://gnocchi.test/\"}]}]}}",
                          exp));
        return 0;
    }
    ks.gnocchi++;
    snprintf(ks.last_url, sizeof ks.last_url, "%s", req->url);
    const char *tok = header(req, "X-Auth-Token");
    if (ks.refuse > 0 || !tok || strcmp(tok, ks.token) != 0) {
        if (ks.refuse > 0) ks.refuse--;
        snprintf(ks.refused, sizeof ks.refused, "%s", req->url);
        answer(resp, 401, dup_printf("x-openstack-request-id: req-g-401\r\n"),
               dup_printf("{\"code\":401,\"title\":\"Unauthorized\","
                          "\"description\":\"The token is not valid\"}"));
        return 0;
    }
    const char *u = req->url + strlen("http://gnocchi.test");
    char *body;
    if (strcmp(u, "/v1/resource/instance/srv-1") == 0)
        body = dup_printf("{\"metrics\":{\"cpu\":\"m-cpu\"}}");
    else if (strcmp(u, "/v1/search/resource/instance_network_interface") == 0)
        body =
            dup_printf("[{\"name\":\"tap0\",\"metrics\":{\"network.incoming.bytes\":\"m-in\"}}]");
    else if (strncmp(u, "/v1/metric/m-cpu/measures?", 26) == 0)
        body = measures(0, 60e9, 120e9); /* 1 s of CPU per second on 2 vCPUs: 50 % */
    else if (strncmp(u, "/v1/metric/m-in/measures?", 25) == 0)
        body = measures(0, 600, 1800); /* 10 then 20 bytes/s */
    else {
        fail_msg("unexpected request %s %s", req->method, req->url);
        return DRV_E_TRANSPORT;
    }
    answer(resp, 200, dup_printf("Content-Type: application/json\r\n"), body);
    return 0;
}

static struct drv_http fake_http = {fake_request, NULL, NULL};

/* ---- Helpers -------------------------------------------------------------- */

static const struct drv_ops *ops;
static const struct drv_query query = {DRV_MASK(DRV_M_CPU) | DRV_MASK(DRV_M_BYTES_IN), T0, T0 + 120,
                                       60, NULL};

static struct drv *make(void)
{
    const char *conf = "{\"auth_url\":\"http://keystone.test/v3\",\"region\":\"RegionOne\","
                       "\"instance\":\"srv-1\",\"vcpus\":2,\"credentials\":{\"username\":"
                       "\"demo\",\"password\":\"pw\",\"project_name\":\"demo\"}}";
    json_t *j = json_loads(conf, 0, NULL);
    assert_non_null(j);
    ops = drv_lookup("openstack");
    assert_non_null(ops);
    struct drv_env env = {&fake_http, &fake_clock};
    struct drv *d = NULL;
    struct drv_error e;
    if (ops->create(j, &env, &d, &e) < 0) fail_msg("create: %s", e.message);
    json_decref(j);
    memset(&ks, 0, sizeof ks);
    ks.token_life = 3600;
    return d;
}

static const struct drv_series *find(const struct drv_result *r, enum drv_metric m)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->series[i].metric == m) return &r->series[i];
    fail_msg("no series %s", drv_metric_name(m));
    return NULL;
}

/* The values the scripted cloud implies: cpu 50 % twice, bytes_in 10 then 20. */
static void expect_values(const struct drv_result *r)
{
    const struct drv_series *cpu = find(r, DRV_M_CPU), *in = find(r, DRV_M_BYTES_IN);
    assert_int_equal(cpu->n, 2);
    assert_int_equal(cpu->points[0].ts, T0);
    assert_int_equal(cpu->points[1].ts, T0 + 60);
    assert_true(cpu->points[0].value == 50 && cpu->points[1].value == 50);
    assert_string_equal(in->tag_value, "tap0");
    assert_int_equal(in->n, 2);
    assert_true(in->points[0].value == 10 && in->points[1].value == 20);
}

/* ---- Tests ---------------------------------------------------------------- */

static void test_token_reused_then_renewed(void **state)
{
    (void)state;
    struct drv *d = make();
    struct drv_result r;
    struct drv_error e;
    assert_int_equal(ops->fetch(d, &query, &r, &e), 0);
    expect_values(&r);
    drv_result_free(&r);
    assert_int_equal(ks.keystone, 1);
    assert_int_equal(ks.gnocchi, 4); /* instance, cpu, interface search, its bytes */

    assert_int_equal(ops->fetch(d, &query, &r, &e), 0);
    drv_result_free(&r);
    assert_int_equal(ks.keystone, 1); /* reused */

    now_ms += (3600 - 299) * 1000LL; /* 4:59 before the expiry: renewed first */
    assert_int_equal(ops->fetch(d, &query, &r, &e), 0);
    expect_values(&r);
    drv_result_free(&r);
    assert_int_equal(ks.keystone, 2);
    assert_int_equal(ks.gnocchi, 12);
    now_ms -= (3600 - 299) * 1000LL;
    ops->destroy(d);
}

static void test_refused_token_renewed_once(void **state)
{
    (void)state;
    struct drv *d = make();
    struct drv_result r;
    struct drv_error e;
    assert_int_equal(ops->fetch(d, &query, &r, &e), 0);
    drv_result_free(&r);

    /* Revoked: the first request of the next fetch is refused, asked again
     * with a fresh token, and the fetch completes. */
    ks.refuse = 1;
    assert_int_equal(ops->fetch(d, &query, &r, &e), 0);
    expect_values(&r);
    drv_result_free(&r);
    assert_int_equal(ks.keystone, 2);
    assert_int_equal(ks.gnocchi, 4 + 5);
    assert_string_equal(ks.refused, "http://gnocchi.test/v1/resource/instance/srv-1");

    /* Refused again with the fresh token: an auth failure, no third token. */
    ks.refuse = 2;
    assert_int_equal(ops->fetch(d, &query, &r, &e), DRV_E_AUTH);
    assert_int_equal(e.http_status, 401);
    assert_string_equal(e.provider_code, "Unauthorized");
    assert_string_equal(e.request_id, "req-g-401");
    assert_int_equal(r.n, 0);
    drv_result_free(&r);
    assert_int_equal(ks.keystone, 3);
    assert_int_equal(ks.gnocchi, 4 + 5 + 2);
    ops->destroy(d);
}

/* The caller performs the exchanges: the same requests and result as fetch(). */
static void test_call_api(void **state)
{
    (void)state;
    struct drv *d = make();
    struct drv_call *c = drv_call_new(ops, d, &query);
    assert_non_null(c);
    const struct drv_http_req *req;
    struct drv_http_resp resp;
    struct drv_error e;
    int rc = drv_call_next(c, NULL, &req);
    assert_int_equal(rc, 1);
    assert_string_equal(req->url, "http://keystone.test/v3/auth/tokens");
    while (rc == 1) {
        assert_int_equal(fake_request(&fake_http, req, &resp, &e), 0);
        rc = drv_call_next(c, &resp, &req);
        drv_http_resp_free(&resp);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(drv_call_requests(c), 5);
    expect_values(drv_call_result(c));
    drv_call_free(c);

    /* A transport failure after the instance resource: the call fails with
     * it, keeping what it had (nothing yet), and asks for nothing more. */
    c = drv_call_new(ops, d, &query);
    assert_int_equal(drv_call_next(c, NULL, &req), 1); /* the token is cached */
    assert_string_equal(req->url, "http://gnocchi.test/v1/resource/instance/srv-1");
    assert_int_equal(fake_request(&fake_http, req, &resp, &e), 0);
    assert_int_equal(drv_call_next(c, &resp, &req), 1);
    drv_http_resp_free(&resp);
    struct drv_error te = {0};
    drv_err_set(&te, DRV_E_TRANSPORT, 0, NULL, NULL, "connection reset");
    assert_int_equal(drv_call_fail(c, &te), DRV_E_TRANSPORT);
    assert_string_equal(drv_call_error(c)->message, "connection reset");
    assert_int_equal(drv_call_result(c)->n, 0);
    assert_int_equal(drv_call_next(c, NULL, &req), DRV_E_TRANSPORT);
    assert_int_equal(drv_call_requests(c), 2);
    drv_call_free(c);
    ops->destroy(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_reused_then_renewed),
        cmocka_unit_test(test_refused_token_renewed_once),
        cmocka_unit_test(test_call_api),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
