/* NAVER Cloud Platform Cloud Insight driver: QueryData
 * (POST /cw_fea/real/cw/api/data/query on cw.apigw.ntruss.com, API gateway
 * signature v2 headers), one metric per call; the answer is a JSON array of
 * [timestamp_ms, value] pairs (NCP API docs "QueryData").
 *
 * Mapping (product "System/Server(VPC)", cw_key 460438474722512896,
 * dimension instanceNo; NCP's server metrics, collected without an agent
 * the operator installs):
 *   cpu_utilization  avg_cpu_used_rto, %
 *   mem_utilization  mem_usert, %
 *   kb_read/written  avg_read_byt_cnt/avg_write_byt_cnt, bytes/s / 1024
 *   ops_read/write   avg_read_cnt/avg_write_cnt, ops/s
 *   bytes_in/out     avg_rcv_bps/avg_snd_bps, bits/s / 8
 * The request shape is NCP's documented QueryData example; the metric names
 * are our reading of Cloud Insight's Server(VPC) schema, not checked against
 * a live account: names, cw_key and product are therefore configurable ("metrics", "cw_key",
 * "product_name") since NCP's schema differs between Classic and VPC. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drv_int.h"
#include "sign/sign.h"

#define NCP_PATH "/cw_fea/real/cw/api/data/query"

struct drv {
    struct drv_env env;
    char *access_key, *secret_key, *endpoint, *instance, *cw_key, *product;
    char *names[DRV_M_COUNT];
    long timeout_ms;
};
DRV_ENV_FIRST(struct drv);

extern const struct drv_ops drv_ncp_ops;

static const struct {
    const char *name;
    double scale;
} ncp_map[DRV_M_COUNT] = {
    [DRV_M_CPU] = {"avg_cpu_used_rto", 1},
    [DRV_M_MEM] = {"mem_usert", 1},
    [DRV_M_KB_READ] = {"avg_read_byt_cnt", 1.0 / 1024},
    [DRV_M_KB_WRITTEN] = {"avg_write_byt_cnt", 1.0 / 1024},
    [DRV_M_OPS_READ] = {"avg_read_cnt", 1},
    [DRV_M_OPS_WRITE] = {"avg_write_cnt", 1},
    [DRV_M_BYTES_IN] = {"avg_rcv_bps", 1.0 / 8},
    [DRV_M_BYTES_OUT] = {"avg_snd_bps", 1.0 / 8},
};

static void ncp_destroy(struct drv *d)
{
    if (!d) return;
    free(d->access_key);
    if (d->secret_key) memset(d->secret_key, 0, strlen(d->secret_key));
    free(d->secret_key);
    free(d->endpoint);
    free(d->instance);
    free(d->cw_key);
    free(d->product);
    for (int i = 0; i < DRV_M_COUNT; i++) free(d->names[i]);
    free(d);
}

static int ncp_create(const json_t *conf, const struct drv_env *env, struct drv **out,
                      struct drv_error *err)
{
    *out = NULL;
    struct drv *d = calloc(1, sizeof *d);
    if (!d) return drv_err_set(err, -ENOMEM, 0, NULL, NULL, "out of memory");
    d->env = *env;
    const json_t *cred = json_object_get(conf, "credentials");
    int rc = drv_conf_str(cred, "access_key", true, NULL, &d->access_key, err);
    if (rc == 0) rc = drv_conf_str(cred, "secret_key", true, NULL, &d->secret_key, err);
    if (rc == 0) rc = drv_conf_str(conf, "instance", false, NULL, &d->instance, err);
    if (rc == 0)
        rc =
            drv_conf_str(conf, "endpoint", false, "https://cw.apigw.ntruss.com", &d->endpoint, err);
    if (rc == 0) rc = drv_conf_str(conf, "cw_key", false, "460438474722512896", &d->cw_key, err);
    if (rc == 0)
        rc = drv_conf_str(conf, "product_name", false, "System/Server(VPC)", &d->product, err);
    if (rc == 0) rc = drv_conf_int(conf, "timeout_ms", 30000, &d->timeout_ms, err);
    const json_t *names = json_object_get(conf, "metrics");
    for (int m = 0; rc == 0 && m < DRV_M_COUNT; m++)
        rc = drv_conf_str(names, drv_metric_name(m), false, ncp_map[m].name, &d->names[m], err);
    if (rc < 0) {
        ncp_destroy(d);
        return rc;
    }
    drv_trim_slash(d->endpoint);
    *out = d;
    return 0;
}

static int ncp_supports(const struct drv *d, enum drv_metric m)
{
    (void)d;
    return (unsigned)m < DRV_M_COUNT;
}

/* NCP API gateway error codes (errorCode in {"error":{...}}) → the common set. */
static int ncp_map_err(long status, const char *code)
{
    if (code) {
        if (strcmp(code, "200") == 0) return DRV_E_AUTH;      /* Authentication Failed */
        if (strcmp(code, "210") == 0) return DRV_E_FORBIDDEN; /* Permission Denied */
        if (strcmp(code, "300") == 0) return DRV_E_NOTFOUND;  /* Not Found */
        if (strcmp(code, "400") == 0 || strcmp(code, "410") == 0 || strcmp(code, "420") == 0)
            return DRV_E_THROTTLED; /* quota exceeded, throttle limited, rate limited */
    }
    int c = drv_err_from_status(status);
    return c ? c : DRV_E_PARSE;
}

/* Asks QueryData for the next requested metric from c->index on (one
 * request per metric), or finishes. */
static int ncp_send(struct drv *d, struct drv_call *c, const char *instance)
{
    if (!drv_step_metric(c, c->q.metrics)) {
        drv_result_finish(&c->res, c->q.metrics, DRV_MASK_ALL);
        return 0;
    }
    char host[256], base_path[256];
    if (drv_url_split(d->endpoint, host, sizeof host, base_path, sizeof base_path) < 0)
        return drv_err_set(&c->err, DRV_E_CONFIG, 0, NULL, NULL, "ncp: bad endpoint \"%s\"",
                           d->endpoint);
    /* The signature covers the path as the gateway sees it, under any
     * base path of the endpoint. */
    const char *bp = strcmp(base_path, "/") == 0 ? "" : base_path;
    int period = c->q.period_s;
    const char *interval = period <= 60     ? "Min1"
                           : period <= 300  ? "Min5"
                           : period <= 1800 ? "Min30"
                           : period <= 7200 ? "Hour2"
                                            : "Day1";
    char ts[24], uri[300], sig[64];
    snprintf(ts, sizeof ts, "%lld", (long long)drv_now_ms(&d->env));
    snprintf(uri, sizeof uri, "%s%s", bp, NCP_PATH);
    int rc = drv_ncp_sign("POST", uri, ts, d->access_key, d->secret_key, sig);
    if (rc < 0) return drv_err_set(&c->err, rc, 0, NULL, NULL, "ncp: signing failed");
    drv_call_req(c, "POST", d->timeout_ms);
    rc = drv_buf_addf(&c->url, "%s%s", d->endpoint, NCP_PATH);
    if (rc == 0)
        rc = drv_buf_add_json(
            &c->body, json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:{s:s}}", "timeStart",
                                (json_int_t)c->q.from * 1000, "timeEnd", (json_int_t)c->q.to * 1000,
                                "cw_key", d->cw_key, "productName", d->product, "metric",
                                d->names[c->index], "interval", interval, "aggregation", "AVG",
                                "dimensions", "instanceNo", instance));
    if (rc == 0) rc = drv_call_header(c, "x-ncp-apigw-timestamp: %s", ts);
    if (rc == 0) rc = drv_call_header(c, "x-ncp-iam-access-key: %s", d->access_key);
    if (rc == 0) rc = drv_call_header(c, "x-ncp-apigw-signature-v2: %s", sig);
    if (rc == 0) rc = drv_call_header(c, "Content-Type: application/json");
    return drv_call_send(c, rc, "ncp");
}

/* The QueryData answer for metric m into c->res. */
static int ncp_take(struct drv *d, struct drv_call *c, int m, const struct drv_http_resp *resp)
{
    struct drv_error *err = &c->err;
    json_t *root;
    int rc = drv_json_body(resp, &root, "ncp QueryData", err);
    char rid[96] = "";
    drv_http_resp_header(resp, "x-ncp-trace-id", rid, sizeof rid);
    if (rc < 0 && resp->status == 200) return rc;
    if (resp->status != 200) {
        /* root may be NULL (an error page that is not JSON): the status decides. */
        const json_t *e = json_object_get(root, "error");
        const char *code = json_string_value(json_object_get(e, "errorCode"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        rc = drv_err_set(err, ncp_map_err(resp->status, code), (int)resp->status, code, rid,
                         "ncp QueryData %s: HTTP %ld %s: %s", d->names[m], resp->status,
                         code ? code : "", msg ? msg : "(no message)");
        if (rc == DRV_E_THROTTLED) err->retry_after_s = drv_retry_after(resp, &d->env, 10);
        json_decref(root);
        /* A metric the gateway refuses is that metric's error; auth,
         * throttling and transport stop the whole fetch. */
        if (rc == DRV_E_BADREQUEST) {
            drv_result_metric_error(&c->res, m, err);
            memset(err, 0, sizeof *err);
            return 0;
        }
        return rc;
    }
    if (!json_is_array(root)) {
        json_decref(root);
        return drv_err_set(err, DRV_E_PARSE, 200, NULL, rid,
                           "ncp QueryData %s: answer is not a JSON array", d->names[m]);
    }
    struct drv_series *s = drv_result_series(&c->res, m, NULL, NULL);
    size_t i;
    const json_t *pt;
    json_array_foreach(root, i, pt)
    {
        double t, v;
        if (!json_is_array(pt) || !drv_json_num(json_array_get(pt, 0), &t) ||
            !drv_json_num(json_array_get(pt, 1), &v)) {
            json_decref(root);
            return drv_err_set(err, DRV_E_PARSE, 200, NULL, rid,
                               "ncp %s: point %zu is not [timestamp_ms, value]", d->names[m], i);
        }
        if (!s || drv_series_push(s, (int64_t)(t / 1000), v * ncp_map[m].scale) < 0) {
            json_decref(root);
            return drv_err_set(err, -ENOMEM, 0, NULL, rid, "ncp: out of memory");
        }
    }
    json_decref(root);
    return 0;
}

/* One metric per exchange, c->index the metric asked for. */
static int ncp_step(struct drv *d, struct drv_call *c, const struct drv_http_resp *resp)
{
    const char *instance = c->q.instance ? c->q.instance : d->instance;
    if (!instance)
        return drv_err_set(&c->err, DRV_E_CONFIG, 0, NULL, NULL,
                           "ncp: no instanceNo in the query or the config");
    if (resp) {
        int rc = ncp_take(d, c, c->index, resp);
        if (rc < 0) return rc;
        c->index++;
    }
    return ncp_send(d, c, instance);
}

static int ncp_fetch(struct drv *d, const struct drv_query *q, struct drv_result *res,
                     struct drv_error *err)
{
    return drv_fetch_steps(&drv_ncp_ops, d, q, res, err);
}

const struct drv_ops drv_ncp_ops = {"ncp",     ncp_create, ncp_supports,
                                    ncp_fetch, ncp_step,   ncp_destroy};
