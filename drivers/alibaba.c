/* Alibaba Cloud CloudMonitor (CMS) driver: DescribeMetricList (API version
 * 2019-01-01, RPC style, GET with the signature v1 query), NextToken paging.
 * The answer's "Datapoints" is a JSON array serialised into a string inside
 * the JSON answer; each point has a millisecond "timestamp" and the
 * statistics ("Average", "Maximum", ...).
 *
 * Mapping (namespace acs_ecs_dashboard, hypervisor metrics, no agent):
 *   cpu_utilization  CPUUtilization, Average, %
 *   kb_read/written  DiskReadBPS/DiskWriteBPS (bytes/s) / 1024
 *   ops_read/write   DiskReadIOPS/DiskWriteIOPS
 *   bytes_in/out     InternetInRate/InternetOutRate (network "internet", the
 *                    default) or IntranetInRate/IntranetOutRate ("intranet"),
 *                    bits/s / 8
 *   mem_utilization  unsupported: memory_usedutilization is collected by the
 *                    CloudMonitor agent inside the instance. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drv_int.h"
#include "sign/sign.h"

#define ALI_MAX_PAGES 50

struct drv {
    struct drv_env env;
    char *key_id, *secret, *region, *endpoint, *instance;
    bool intranet;
    long timeout_ms;
};
DRV_ENV_FIRST(struct drv);

extern const struct drv_ops drv_alibaba_ops;

static void ali_destroy(struct drv *d)
{
    if (!d) return;
    free(d->key_id);
    if (d->secret) memset(d->secret, 0, strlen(d->secret));
    free(d->secret);
    free(d->region);
    free(d->endpoint);
    free(d->instance);
    free(d);
}

static int ali_create(const json_t *conf, const struct drv_env *env, struct drv **out,
                      struct drv_error *err)
{
    *out = NULL;
    struct drv *d = calloc(1, sizeof *d);
    if (!d) return drv_err_set(err, -ENOMEM, 0, NULL, NULL, "out of memory");
    d->env = *env;
    const json_t *cred = json_object_get(conf, "credentials");
    char *net = NULL;
    int rc = drv_conf_str(cred, "access_key_id", true, NULL, &d->key_id, err);
    if (rc == 0) rc = drv_conf_str(cred, "access_key_secret", true, NULL, &d->secret, err);
    if (rc == 0) rc = drv_conf_str(conf, "region", true, NULL, &d->region, err);
    if (rc == 0) rc = drv_conf_str(conf, "instance", false, NULL, &d->instance, err);
    if (rc == 0) rc = drv_conf_str(conf, "endpoint", false, NULL, &d->endpoint, err);
    if (rc == 0) rc = drv_conf_str(conf, "network", false, "internet", &net, err);
    if (rc == 0) rc = drv_conf_int(conf, "timeout_ms", 30000, &d->timeout_ms, err);
    if (rc == 0 && strcmp(net, "internet") != 0 && strcmp(net, "intranet") != 0)
        rc = drv_err_set(err, DRV_E_CONFIG, 0, NULL, NULL,
                         "alibaba: \"network\" must be internet or intranet, not \"%s\"", net);
    if (rc == 0) d->intranet = strcmp(net, "intranet") == 0;
    if (rc == 0 && !d->endpoint) {
        char url[256];
        snprintf(url, sizeof url, "https://metrics.%s.aliyuncs.com", d->region);
        if (!(d->endpoint = strdup(url)))
            rc = drv_err_set(err, -ENOMEM, 0, NULL, NULL, "out of memory");
    }
    free(net);
    if (rc < 0) {
        ali_destroy(d);
        return rc;
    }
    drv_trim_slash(d->endpoint);
    *out = d;
    return 0;
}

static int ali_supports(const struct drv *d, enum drv_metric m)
{
    (void)d;
    return m != DRV_M_MEM && (unsigned)m < DRV_M_COUNT;
}

static const char *ali_metric(const struct drv *d, enum drv_metric m, double *scale)
{
    *scale = 1;
    switch (m) {
    case DRV_M_CPU:
        return "CPUUtilization";
    case DRV_M_KB_READ:
        *scale = 1.0 / 1024;
        return "DiskReadBPS";
    case DRV_M_KB_WRITTEN:
        *scale = 1.0 / 1024;
        return "DiskWriteBPS";
    case DRV_M_OPS_READ:
        return "DiskReadIOPS";
    case DRV_M_OPS_WRITE:
        return "DiskWriteIOPS";
    case DRV_M_BYTES_IN:
        *scale = 1.0 / 8;
        return d->intranet ? "IntranetInRate" : "InternetInRate";
    case DRV_M_BYTES_OUT:
        *scale = 1.0 / 8;
        return d->intranet ? "IntranetOutRate" : "InternetOutRate";
    default:
        return NULL;
    }
}

/* CMS / POP gateway error codes → the common set. */
static int ali_map(long status, const char *code)
{
    if (code) {
        if (strncmp(code, "Throttling", 10) == 0) return DRV_E_THROTTLED;
        if (strncmp(code, "InvalidAccessKeyId", 18) == 0 ||
            strcmp(code, "SignatureDoesNotMatch") == 0 ||
            strcmp(code, "IncompleteSignature") == 0 ||
            strcmp(code, "InvalidTimeStamp.Expired") == 0)
            return DRV_E_AUTH;
        if (strncmp(code, "Forbidden", 9) == 0 || strcmp(code, "NoPermission") == 0)
            return DRV_E_FORBIDDEN;
        if (strncmp(code, "InvalidParameter", 16) == 0 ||
            strncmp(code, "MissingParameter", 16) == 0 || strcmp(code, "400") == 0)
            return DRV_E_BADREQUEST;
        if (strcmp(code, "ResourceNotFound") == 0 || strcmp(code, "404") == 0)
            return DRV_E_NOTFOUND;
    }
    int c = drv_err_from_status(status);
    return c ? c : DRV_E_BADREQUEST;
}

/* Asks DescribeMetricList for metric c->index, the page after the token in
 * c->cursor (none: the first), signed now. */
static int ali_send_page(struct drv *d, struct drv_call *c, const char *instance)
{
    double scale;
    const char *metric = ali_metric(d, c->index, &scale);
    char start[24], end[24], per[16], nonce[33], ts[32];
    snprintf(start, sizeof start, "%lld", (long long)c->q.from * 1000);
    snprintf(end, sizeof end, "%lld", (long long)c->q.to * 1000);
    snprintf(per, sizeof per, "%ld", c->period);
    drv_random_hex(&d->env, nonce, 16);
    drv_fmt_time(drv_now_ms(&d->env) / 1000, "%Y-%m-%dT%H:%M:%SZ", ts, sizeof ts);
    json_t *dj = json_pack("[{s:s}]", "instanceId", instance);
    char *dims = dj ? json_dumps(dj, JSON_COMPACT) : NULL;
    json_decref(dj);
    if (!dims) return drv_err_set(&c->err, -ENOMEM, 0, NULL, NULL, "out of memory");
    struct drv_aliyun_param p[18] = {
        {"AccessKeyId", d->key_id},
        {"Action", "DescribeMetricList"},
        {"Format", "JSON"},
        {"Version", "2019-01-01"},
        {"SignatureMethod", "HMAC-SHA1"},
        {"SignatureVersion", "1.0"},
        {"SignatureNonce", nonce},
        {"Timestamp", ts},
        {"RegionId", d->region},
        {"Namespace", "acs_ecs_dashboard"},
        {"MetricName", metric},
        {"Dimensions", dims},
        {"Period", per},
        {"StartTime", start},
        {"EndTime", end},
        {"Length", "1440"},
    };
    size_t n = 16;
    if (c->cursor.len) p[n++] = (struct drv_aliyun_param){"NextToken", drv_buf_str(&c->cursor)};
    struct drv_buf query, sts;
    drv_buf_init(&query, 0);
    drv_buf_init(&sts, 0);
    char sig[64];
    drv_call_req(c, "GET", d->timeout_ms);
    int rc = drv_aliyun_sign("GET", p, n, d->secret, &query, &sts, sig);
    if (rc == 0) rc = drv_buf_addf(&c->url, "%s/?%s&Signature=", d->endpoint, drv_buf_str(&query));
    if (rc == 0) rc = drv_pct_encode(&c->url, sig, false);
    if (rc == 0) rc = drv_call_header(c, "Accept: application/json");
    drv_buf_free(&query);
    drv_buf_free(&sts);
    free(dims);
    return drv_call_send(c, rc, "alibaba");
}

/* One page of DescribeMetricList's answer for metric m into c->res; its
 * NextToken (or nothing) into c->cursor. */
static int ali_take_page(struct drv *d, struct drv_call *c, int m, const struct drv_http_resp *resp)
{
    struct drv_error *err = &c->err;
    double scale;
    const char *metric = ali_metric(d, m, &scale);
    c->cursor.len = 0;
    json_t *root;
    int rc = drv_json_body(resp, &root, "alibaba DescribeMetricList", err);
    if (rc < 0) {
        if (resp->status != 200) {
            rc = drv_err_set(err, ali_map(resp->status, NULL), (int)resp->status, NULL, NULL,
                             "alibaba DescribeMetricList: HTTP %ld", resp->status);
            if (rc == DRV_E_THROTTLED) err->retry_after_s = drv_retry_after(resp, &d->env, 10);
        }
        return rc;
    }
    const char *code = json_string_value(json_object_get(root, "Code"));
    const char *rid = json_string_value(json_object_get(root, "RequestId"));
    const json_t *ok = json_object_get(root, "Success");
    /* Errors come as 4xx/5xx or as 200 with Success false. */
    if (resp->status != 200 || (ok && !json_is_true(ok))) {
        const char *msg = json_string_value(json_object_get(root, "Message"));
        rc = drv_err_set(err, ali_map(resp->status, code), (int)resp->status, code, rid,
                         "alibaba DescribeMetricList %s: HTTP %ld %s: %s", metric, resp->status,
                         code ? code : "", msg ? msg : "(no message)");
        if (rc == DRV_E_THROTTLED) err->retry_after_s = drv_retry_after(resp, &d->env, 10);
        json_decref(root);
        return drv_metric_refused(c, m, rc); /* (no further pages) */
    }
    /* Datapoints: a string holding a JSON array. */
    const char *dps = json_string_value(json_object_get(root, "Datapoints"));
    json_t *arr = dps ? json_loads(dps, 0, NULL) : json_array();
    if (!json_is_array(arr)) {
        json_decref(arr);
        json_decref(root);
        return drv_err_set(err, DRV_E_PARSE, 200, NULL, rid,
                           "alibaba %s: Datapoints is not a JSON array string", metric);
    }
    struct drv_series *s = drv_result_series(&c->res, m, NULL, NULL);
    size_t i;
    const json_t *pt;
    json_array_foreach(arr, i, pt)
    {
        double ts, v;
        if (!drv_json_num(json_object_get(pt, "timestamp"), &ts) ||
            !drv_json_num(json_object_get(pt, "Average"), &v)) {
            rc = drv_err_set(err, DRV_E_PARSE, 200, NULL, rid,
                             "alibaba %s: point %zu lacks timestamp/Average", metric, i);
            break;
        }
        if (!s || drv_series_push(s, (int64_t)(ts / 1000), v * scale) < 0) {
            rc = drv_err_set(err, -ENOMEM, 0, NULL, rid, "alibaba: out of memory");
            break;
        }
    }
    json_decref(arr);
    const char *next = json_string_value(json_object_get(root, "NextToken"));
    if (rc == 0 && next && drv_buf_adds(&c->cursor, next) < 0)
        rc =
            drv_err_set(err, DRV_E_PARSE, 200, NULL, rid, "alibaba %s: NextToken too long", metric);
    json_decref(root);
    return rc;
}

/* c->index is the metric asked for, c->stage its page (NextToken paging,
 * at most ALI_MAX_PAGES), c->cursor the token of the next page. */
static int ali_step(struct drv *d, struct drv_call *c, const struct drv_http_resp *resp)
{
    const char *instance = c->q.instance ? c->q.instance : d->instance;
    if (!instance)
        return drv_err_set(&c->err, DRV_E_CONFIG, 0, NULL, NULL,
                           "alibaba: no instance id in the query or the config");
    unsigned supported = DRV_MASK_ALL & ~DRV_MASK(DRV_M_MEM);
    if (!resp) {
        c->period = c->q.period_s >= 60 ? c->q.period_s : 60;
    } else {
        int rc = ali_take_page(d, c, c->index, resp);
        if (rc < 0) return rc;
        if (c->cursor.len && ++c->stage < ALI_MAX_PAGES) return ali_send_page(d, c, instance);
        /* That metric is complete: on to the next. */
        c->index++;
        c->stage = 0;
        c->cursor.len = 0;
    }
    if (!drv_step_metric(c, c->q.metrics & supported)) {
        drv_result_finish(&c->res, c->q.metrics, supported);
        return 0;
    }
    return ali_send_page(d, c, instance);
}

static int ali_fetch(struct drv *d, const struct drv_query *q, struct drv_result *res,
                     struct drv_error *err)
{
    return drv_fetch_steps(&drv_alibaba_ops, d, q, res, err);
}

const struct drv_ops drv_alibaba_ops = {"alibaba", ali_create, ali_supports,
                                        ali_fetch, ali_step,   ali_destroy};
