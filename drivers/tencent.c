/* Tencent Cloud Monitor driver: GetMonitorData (API 2018-07-24, POST JSON to
 * monitor.tencentcloudapi.com, X-TC-Action/Version/Timestamp/Region headers,
 * TC3-HMAC-SHA256). One metric per call; the answer is
 * {"Response":{"DataPoints":[{"Dimensions","Timestamps","Values"}],
 * "RequestId"}} and errors are {"Response":{"Error":{"Code","Message"}}} inside an
 * HTTP 200 (tccli example GetMonitorData.md; API 3.0 "Common Error Codes").
 *
 * Mapping (namespace QCE/CVM, dimension InstanceId):
 *   cpu_utilization  CPUUsage, %
 *   kb_read/written  DiskReadTraffic/DiskWriteTraffic, KB/s (= KiB/s)
 *   ops_read/write   DiskReadIops/DiskWriteIops
 *   bytes_in/out     WanIntraffic/WanOuttraffic (network "public", default) or
 *                    LanIntraffic/LanOuttraffic ("private"), Mbps × 125000
 *   mem_utilization  unsupported: MemUsage is reported by Tencent's monitoring
 *                    agent (BaseAgent) from inside the instance. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drv_int.h"
#include "sign/sign.h"

struct drv {
    struct drv_env env;
    char *secret_id, *secret_key, *region, *endpoint, *instance;
    bool lan;
    long timeout_ms;
};
DRV_ENV_FIRST(struct drv);

extern const struct drv_ops drv_tencent_ops;

static void tc_destroy(struct drv *d)
{
    if (!d) return;
    free(d->secret_id);
    if (d->secret_key) memset(d->secret_key, 0, strlen(d->secret_key));
    free(d->secret_key);
    free(d->region);
    free(d->endpoint);
    free(d->instance);
    free(d);
}

static int tc_create(const json_t *conf, const struct drv_env *env, struct drv **out,
                     struct drv_error *err)
{
    *out = NULL;
    struct drv *d = calloc(1, sizeof *d);
    if (!d) return drv_err_set(err, -ENOMEM, 0, NULL, NULL, "out of memory");
    d->env = *env;
    const json_t *cred = json_object_get(conf, "credentials");
    char *net = NULL;
    int rc = drv_conf_str(cred, "secret_id", true, NULL, &d->secret_id, err);
    if (rc == 0) rc = drv_conf_str(cred, "secret_key", true, NULL, &d->secret_key, err);
    if (rc == 0) rc = drv_conf_str(conf, "region", true, NULL, &d->region, err);
    if (rc == 0) rc = drv_conf_str(conf, "instance", false, NULL, &d->instance, err);
    if (rc == 0)
        rc = drv_conf_str(conf, "endpoint", false, "https://monitor.tencentcloudapi.com",
                          &d->endpoint, err);
    if (rc == 0) rc = drv_conf_str(conf, "network", false, "public", &net, err);
    if (rc == 0) rc = drv_conf_int(conf, "timeout_ms", 30000, &d->timeout_ms, err);
    if (rc == 0 && strcmp(net, "public") != 0 && strcmp(net, "private") != 0)
        rc = drv_err_set(err, DRV_E_CONFIG, 0, NULL, NULL,
                         "tencent: \"network\" must be public or private, not \"%s\"", net);
    if (rc == 0) d->lan = strcmp(net, "private") == 0;
    free(net);
    if (rc < 0) {
        tc_destroy(d);
        return rc;
    }
    drv_trim_slash(d->endpoint);
    *out = d;
    return 0;
}

static int tc_supports(const struct drv *d, enum drv_metric m)
{
    (void)d;
    return m != DRV_M_MEM && (unsigned)m < DRV_M_COUNT;
}

static const char *tc_metric(const struct drv *d, enum drv_metric m, double *scale)
{
    *scale = 1;
    switch (m) {
    case DRV_M_CPU:
        return "CPUUsage";
    case DRV_M_KB_READ:
        return "DiskReadTraffic";
    case DRV_M_KB_WRITTEN:
        return "DiskWriteTraffic";
    case DRV_M_OPS_READ:
        return "DiskReadIops";
    case DRV_M_OPS_WRITE:
        return "DiskWriteIops";
    case DRV_M_BYTES_IN:
        *scale = 125000;
        return d->lan ? "LanIntraffic" : "WanIntraffic";
    case DRV_M_BYTES_OUT:
        *scale = 125000;
        return d->lan ? "LanOuttraffic" : "WanOuttraffic";
    default:
        return NULL;
    }
}

/* Tencent API 3.0 common error codes → the common set. */
static int tc_map(const char *code)
{
    if (strcmp(code, "AuthFailure.UnauthorizedOperation") == 0 ||
        strncmp(code, "UnauthorizedOperation", 21) == 0)
        return DRV_E_FORBIDDEN;
    if (strncmp(code, "AuthFailure", 11) == 0) return DRV_E_AUTH;
    if (strncmp(code, "RequestLimitExceeded", 20) == 0) return DRV_E_THROTTLED;
    if (strncmp(code, "ResourceNotFound", 16) == 0) return DRV_E_NOTFOUND;
    if (strncmp(code, "InternalError", 13) == 0 || strncmp(code, "ResourceUnavailable", 19) == 0)
        return DRV_E_TRANSPORT;
    return DRV_E_BADREQUEST; /* InvalidParameter*, MissingParameter, UnsupportedOperation, ... */
}

/* Asks GetMonitorData for the next requested metric from c->index on (one
 * request per metric), signed now, or finishes. */
static int tc_send(struct drv *d, struct drv_call *c, const char *instance)
{
    unsigned supported = DRV_MASK_ALL & ~DRV_MASK(DRV_M_MEM);
    if (!drv_step_metric(c, c->q.metrics & supported)) {
        drv_result_finish(&c->res, c->q.metrics, supported);
        return 0;
    }
    char host[256], path[256];
    if (drv_url_split(d->endpoint, host, sizeof host, path, sizeof path) < 0)
        return drv_err_set(&c->err, DRV_E_CONFIG, 0, NULL, NULL, "tencent: bad endpoint \"%s\"",
                           d->endpoint);
    /* Periods GetMonitorData accepts for CVM: 10, 60, 300, 3600, 86400 s. */
    int p = c->q.period_s;
    long period = p <= 10 ? 10 : p <= 60 ? 60 : p <= 300 ? 300 : p <= 3600 ? 3600 : 86400;
    char t0[40], t1[40];
    drv_fmt_time(c->q.from, "%Y-%m-%dT%H:%M:%S+00:00", t0, sizeof t0);
    drv_fmt_time(c->q.to, "%Y-%m-%dT%H:%M:%S+00:00", t1, sizeof t1);
    double scale;
    const char *metric = tc_metric(d, c->index, &scale);
    drv_call_req(c, "POST", d->timeout_ms);
    int rc = drv_buf_adds(&c->url, d->endpoint);
    if (rc == 0)
        rc = drv_buf_add_json(&c->body, json_pack("{s:s, s:s, s:I, s:s, s:s, s:[{s:[{s:s, s:s}]}]}",
                                                  "Namespace", "QCE/CVM", "MetricName", metric,
                                                  "Period", (json_int_t)period, "StartTime", t0,
                                                  "EndTime", t1, "Instances", "Dimensions", "Name",
                                                  "InstanceId", "Value", instance));
    if (rc < 0) return drv_call_send(c, rc, "tencent");
    /* The signature covers the payload and the timestamp header. */
    int64_t now = drv_now_ms(&d->env) / 1000;
    const char *ctype = "application/json; charset=utf-8";
    struct drv_tc3_in in = {d->secret_id, d->secret_key, "monitor",   host,
                            ctype,        c->body.p,     c->body.len, now};
    struct drv_tc3_out so;
    rc = drv_tc3_sign(&in, &so);
    if (rc == 0) rc = drv_call_header(c, "Authorization: %s", so.authorization);
    drv_tc3_out_free(&so);
    if (rc < 0) return drv_err_set(&c->err, rc, 0, NULL, NULL, "tencent: signing failed");
    if (rc == 0) rc = drv_call_header(c, "Content-Type: %s", ctype);
    if (rc == 0) rc = drv_call_header(c, "Host: %s", host);
    if (rc == 0) rc = drv_call_header(c, "X-TC-Action: GetMonitorData");
    if (rc == 0) rc = drv_call_header(c, "X-TC-Timestamp: %lld", (long long)now);
    if (rc == 0) rc = drv_call_header(c, "X-TC-Version: 2018-07-24");
    if (rc == 0) rc = drv_call_header(c, "X-TC-Region: %s", d->region);
    return drv_call_send(c, rc, "tencent");
}

/* The GetMonitorData answer for metric m into c->res. */
static int tc_take(struct drv *d, struct drv_call *c, int m, const struct drv_http_resp *resp)
{
    struct drv_error *err = &c->err;
    double scale;
    const char *metric = tc_metric(d, m, &scale);
    json_t *root;
    int rc = drv_json_body(resp, &root, "tencent GetMonitorData", err);
    if (rc < 0) {
        if (resp->status != 200)
            rc = drv_err_set(err, drv_err_from_status(resp->status), (int)resp->status, NULL, NULL,
                             "tencent GetMonitorData: HTTP %ld", resp->status);
        return rc;
    }
    const json_t *r = json_object_get(root, "Response");
    const char *rid = json_string_value(json_object_get(r, "RequestId"));
    const json_t *e = json_object_get(r, "Error");
    /* Errors come inside an HTTP 200 (or with a 4xx/5xx). */
    if (e || resp->status != 200) {
        const char *code = json_string_value(json_object_get(e, "Code"));
        const char *msg = json_string_value(json_object_get(e, "Message"));
        rc = drv_err_set(err, code ? tc_map(code) : drv_err_from_status(resp->status),
                         (int)resp->status, code, rid, "tencent GetMonitorData %s: %s: %s", metric,
                         code ? code : "", msg ? msg : "(no message)");
        if (rc == DRV_E_THROTTLED) err->retry_after_s = drv_retry_after(resp, &d->env, 1);
        json_decref(root);
        return drv_metric_refused(c, m, rc);
    }
    struct drv_series *s = drv_result_series(&c->res, m, NULL, NULL);
    size_t i;
    const json_t *dp;
    json_array_foreach(json_object_get(r, "DataPoints"), i, dp)
    {
        const json_t *ts = json_object_get(dp, "Timestamps"), *vs = json_object_get(dp, "Values");
        if (!json_is_array(ts) || !json_is_array(vs) ||
            json_array_size(ts) != json_array_size(vs)) {
            json_decref(root);
            return drv_err_set(err, DRV_E_PARSE, 200, NULL, rid,
                               "tencent %s: Timestamps/Values missing or of different lengths",
                               metric);
        }
        for (size_t k = 0; k < json_array_size(ts); k++) {
            double t, v;
            /* A null value is a period without data: skipped, not zero. */
            if (!drv_json_num(json_array_get(ts, k), &t) ||
                !drv_json_num(json_array_get(vs, k), &v))
                continue;
            if (!s || drv_series_push(s, (int64_t)t, v * scale) < 0) {
                json_decref(root);
                return drv_err_set(err, -ENOMEM, 0, NULL, rid, "tencent: out of memory");
            }
        }
    }
    json_decref(root);
    return 0;
}

/* One metric per exchange, c->index the metric asked for. */
static int tc_step(struct drv *d, struct drv_call *c, const struct drv_http_resp *resp)
{
    const char *instance = c->q.instance ? c->q.instance : d->instance;
    if (!instance)
        return drv_err_set(&c->err, DRV_E_CONFIG, 0, NULL, NULL,
                           "tencent: no instance id in the query or the config");
    if (resp) {
        int rc = tc_take(d, c, c->index, resp);
        if (rc < 0) return rc;
        c->index++;
    }
    return tc_send(d, c, instance);
}

static int tc_fetch(struct drv *d, const struct drv_query *q, struct drv_result *res,
                    struct drv_error *err)
{
    return drv_fetch_steps(&drv_tencent_ops, d, q, res, err);
}

const struct drv_ops drv_tencent_ops = {"tencent", tc_create, tc_supports,
                                        tc_fetch,  tc_step,   tc_destroy};
