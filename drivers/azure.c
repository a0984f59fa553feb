/* Azure Monitor driver: the metrics REST API of a VM resource
 * (GET {resource}/providers/Microsoft.Insights/metrics, api-version
 * 2018-01-01, "Metrics - List"), with an OAuth2 client-credentials token
 * from Microsoft Entra ID (POST {tenant}/oauth2/v2.0/token, scope
 * https://management.azure.com/.default) cached and refreshed five minutes
 * before it expires. A 200 carries a per-metric "errorCode" ("Success" or a
 * failure for that metric only).
 *
 * Mapping (Microsoft.Compute/virtualMachines host metrics, no agent needed;
 * names and aggregations from Azure Monitor "Supported metrics -
 * Microsoft.Compute/virtualMachines"):
 *   cpu_utilization  "Percentage CPU", Average, %
 *   mem_utilization  100 - "Available Memory Percentage", Average
 *   kb_read/written  "Disk Read Bytes"/"Disk Write Bytes", Total per interval / s / 1024
 *   ops_read/write   "Disk Read Operations/Sec"/"Disk Write Operations/Sec", Average
 *   bytes_in/out     "Network In Total"/"Network Out Total", Total per interval / s */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drv_int.h"

struct drv {
    struct drv_env env;
    char *tenant, *client_id, *client_secret;
    char *endpoint, *token_endpoint, *instance;
    long timeout_ms;
    struct drv_oauth_token token; /* cached across fetches */
};
DRV_ENV_FIRST(struct drv);

extern const struct drv_ops drv_azure_ops;

/* c->stage: which answer the call awaits. */
enum az_stage { AZ_STAGE_TOKEN, AZ_STAGE_METRICS };

static const struct {
    const char *name; /* Azure metric name */
    int total;        /* 1: "total" per interval, else "average" */
    double scale;     /* applied after dividing totals by the interval */
} az_map[DRV_M_COUNT] = {
    [DRV_M_CPU] = {"Percentage CPU", 0, 1},
    [DRV_M_MEM] = {"Available Memory Percentage", 0, 1},
    [DRV_M_KB_READ] = {"Disk Read Bytes", 1, 1.0 / 1024},
    [DRV_M_KB_WRITTEN] = {"Disk Write Bytes", 1, 1.0 / 1024},
    [DRV_M_OPS_READ] = {"Disk Read Operations/Sec", 0, 1},
    [DRV_M_OPS_WRITE] = {"Disk Write Operations/Sec", 0, 1},
    [DRV_M_BYTES_IN] = {"Network In Total", 1, 1},
    [DRV_M_BYTES_OUT] = {"Network Out Total", 1, 1},
};

static void az_destroy(struct drv *d)
{
    if (!d) return;
    free(d->tenant);
    free(d->client_id);
    if (d->client_secret) memset(d->client_secret, 0, strlen(d->client_secret));
    free(d->client_secret);
    free(d->endpoint);
    free(d->token_endpoint);
    free(d->instance);
    drv_oauth_drop(&d->token);
    free(d);
}

static int az_create(const json_t *conf, const struct drv_env *env, struct drv **out,
                     struct drv_error *err)
{
    *out = NULL;
    struct drv *d = calloc(1, sizeof *d);
    if (!d) return drv_err_set(err, -ENOMEM, 0, NULL, NULL, "out of memory");
    d->env = *env;
    const json_t *cred = json_object_get(conf, "credentials");
    int rc = drv_conf_str(cred, "tenant_id", true, NULL, &d->tenant, err);
    if (rc == 0) rc = drv_conf_str(cred, "client_id", true, NULL, &d->client_id, err);
    if (rc == 0) rc = drv_conf_str(cred, "client_secret", true, NULL, &d->client_secret, err);
    if (rc == 0) rc = drv_conf_str(conf, "instance", false, NULL, &d->instance, err);
    if (rc == 0)
        rc = drv_conf_str(conf, "endpoint", false, "https://management.azure.com", &d->endpoint,
                          err);
    if (rc == 0)
        rc = drv_conf_str(conf, "token_endpoint", false, "https://login.microsoftonline.com",
                          &d->token_endpoint, err);
    if (rc == 0) rc = drv_conf_int(conf, "timeout_ms", 30000, &d->timeout_ms, err);
    if (rc < 0) {
        az_destroy(d);
        return rc;
    }
    drv_trim_slash(d->endpoint);
    drv_trim_slash(d->token_endpoint);
    *out = d;
    return 0;
}

static int az_supports(const struct drv *d, enum drv_metric m)
{
    (void)d;
    return (unsigned)m < DRV_M_COUNT;
}

/* Azure's error bodies: {"error":{"code","message"}} (ARM), {"code","message"}
 * (Monitor) or {"error","error_description"} (Entra ID token endpoint). */
static int az_error(const struct drv *d, const struct drv_http_resp *resp, const char *what,
                    struct drv_error *err)
{
    json_t *j = json_loadb(resp->body ? resp->body : "", resp->body_len, 0, NULL);
    const json_t *e = json_object_get(j, "error");
    const char *code = NULL, *msg = NULL;
    if (json_is_object(e)) {
        code = json_string_value(json_object_get(e, "code"));
        msg = json_string_value(json_object_get(e, "message"));
    } else if (json_is_string(e)) {
        code = json_string_value(e);
        msg = json_string_value(json_object_get(j, "error_description"));
    } else {
        code = json_string_value(json_object_get(j, "code"));
        msg = json_string_value(json_object_get(j, "message"));
    }
    char rid[96] = "";
    if (drv_http_resp_header(resp, "x-ms-request-id", rid, sizeof rid) < 0)
        drv_http_resp_header(resp, "x-ms-correlation-request-id", rid, sizeof rid);
    int c = drv_err_from_status(resp->status);
    if (!c) c = DRV_E_PARSE;
    /* Entra ID answers a bad client secret with 400/401 invalid_client. */
    if (code && (strcmp(code, "invalid_client") == 0 || strcmp(code, "unauthorized_client") == 0 ||
                 strcmp(code, "InvalidAuthenticationToken") == 0 ||
                 strcmp(code, "ExpiredAuthenticationToken") == 0))
        c = DRV_E_AUTH;
    if (code && strcmp(code, "AuthorizationFailed") == 0) c = DRV_E_FORBIDDEN;
    if (code &&
        (strcmp(code, "ResourceNotFound") == 0 || strcmp(code, "ResourceGroupNotFound") == 0))
        c = DRV_E_NOTFOUND;
    drv_err_set(err, c, (int)resp->status, code, rid, "%s: HTTP %ld %s: %s", what, resp->status,
                code ? code : "", msg ? msg : "(no message)");
    if (c == DRV_E_THROTTLED) err->retry_after_s = drv_retry_after(resp, &d->env, 30);
    json_decref(j);
    return c;
}

/* Builds the token request: the client-credentials grant, the client
 * secret in the body (wiped once sent). */
static int az_send_token(struct drv *d, struct drv_call *c)
{
    c->stage = AZ_STAGE_TOKEN;
    d->token.asked_ms = drv_now_ms(&d->env);
    drv_call_req(c, "POST", d->timeout_ms);
    c->body_secret = true;
    int rc = drv_form_add(&c->body, "grant_type", "client_credentials");
    if (rc == 0) rc = drv_form_add(&c->body, "client_id", d->client_id);
    if (rc == 0) rc = drv_form_add(&c->body, "client_secret", d->client_secret);
    if (rc == 0) rc = drv_form_add(&c->body, "scope", "https://management.azure.com/.default");
    if (rc == 0) rc = drv_buf_addf(&c->url, "%s/", d->token_endpoint);
    if (rc == 0) rc = drv_pct_encode(&c->url, d->tenant, false);
    if (rc == 0) rc = drv_buf_adds(&c->url, "/oauth2/v2.0/token");
    if (rc == 0) rc = drv_call_header(c, "Content-Type: application/x-www-form-urlencoded");
    return drv_call_send(c, rc, "azure token");
}

/* Azure accepts only these grains (ISO 8601). */
static int az_interval(int period, char *iso, size_t n)
{
    static const struct {
        int s;
        const char *iso;
    } g[] = {{60, "PT1M"},   {300, "PT5M"},   {900, "PT15M"},   {1800, "PT30M"},
             {3600, "PT1H"}, {21600, "PT6H"}, {43200, "PT12H"}, {86400, "P1D"}};
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++)
        if (period <= g[i].s || i + 1 == sizeof g / sizeof g[0]) {
            snprintf(iso, n, "%s", g[i].iso);
            return g[i].s;
        }
    return 60;
}

static int az_parse(struct drv *d, const json_t *root, unsigned want, int interval,
                    struct drv_result *res, const char *rid, struct drv_error *err)
{
    (void)d;
    const json_t *value = json_object_get(root, "value");
    if (!json_is_array(value))
        return drv_err_set(err, DRV_E_PARSE, 200, NULL, rid,
                           "azure metrics: no \"value\" array in the answer");
    size_t i;
    const json_t *mv;
    json_array_foreach(value, i, mv)
    {
        const char *name = json_string_value(json_object_get(json_object_get(mv, "name"), "value"));
        int m = -1;
        for (int k = 0; name && k < DRV_M_COUNT; k++)
            if ((want & DRV_MASK(k)) && strcmp(az_map[k].name, name) == 0) m = k;
        if (m < 0) continue;
        const char *ec = json_string_value(json_object_get(mv, "errorCode"));
        if (ec && strcmp(ec, "Success") != 0) {
            const char *em = json_string_value(json_object_get(mv, "errorMessage"));
            struct drv_error me;
            drv_err_set(&me, DRV_E_BADREQUEST, 200, ec, rid, "azure metric \"%s\": %s: %s", name,
                        ec, em ? em : "");
            drv_result_metric_error(res, m, &me);
            continue;
        }
        struct drv_series *s = drv_result_series(res, m, NULL, NULL);
        if (!s) return drv_err_set(err, -ENOMEM, 0, NULL, NULL, "out of memory");
        size_t t;
        const json_t *ts;
        json_array_foreach(json_object_get(mv, "timeseries"), t, ts)
        {
            size_t p;
            const json_t *pt;
            json_array_foreach(json_object_get(ts, "data"), p, pt)
            {
                int64_t when;
                double v;
                /* Azure omits the aggregate of an interval without data: no point, not zero. */
                if (!drv_json_num(json_object_get(pt, az_map[m].total ? "total" : "average"), &v))
                    continue;
                if (drv_parse_time(json_string_value(json_object_get(pt, "timeStamp")), &when) < 0)
                    return drv_err_set(err, DRV_E_PARSE, 200, NULL, rid,
                                       "azure metric \"%s\": bad timeStamp", name);
                if (az_map[m].total) v /= interval;
                if (m == DRV_M_MEM) v = 100.0 - v;
                if (drv_series_push(s, when, v * az_map[m].scale) < 0)
                    return drv_err_set(err, -E2BIG, 0, NULL, rid, "azure: too many points");
            }
        }
    }
    return 0;
}

/* Builds the metrics request, every wanted metric at once, with the
 * cached token. */
static int az_send_metrics(struct drv *d, struct drv_call *c, const char *instance)
{
    c->stage = AZ_STAGE_METRICS;
    unsigned want = c->q.metrics & DRV_MASK_ALL;
    char iso[16], t0[32], t1[32], timespan[80];
    az_interval(c->q.period_s > 0 ? c->q.period_s : 60, iso, sizeof iso);
    drv_fmt_time(c->q.from, "%Y-%m-%dT%H:%M:%SZ", t0, sizeof t0);
    drv_fmt_time(c->q.to, "%Y-%m-%dT%H:%M:%SZ", t1, sizeof t1);
    snprintf(timespan, sizeof timespan, "%s/%s", t0, t1);
    struct drv_buf names;
    drv_buf_init(&names, 0);
    int rc = 0;
    for (int m = 0; rc == 0 && m < DRV_M_COUNT; m++)
        if (want & DRV_MASK(m))
            rc = drv_buf_addf(&names, "%s%s", names.len ? "," : "", az_map[m].name);
    drv_call_req(c, "GET", d->timeout_ms);
    if (rc == 0) rc = drv_buf_adds(&c->url, d->endpoint);
    if (rc == 0) rc = drv_pct_encode(&c->url, instance, true);
    if (rc == 0)
        rc = drv_buf_adds(
            &c->url, "/providers/Microsoft.Insights/metrics?api-version=2018-01-01&metricnames=");
    if (rc == 0) rc = drv_pct_encode(&c->url, drv_buf_str(&names), false);
    if (rc == 0) rc = drv_buf_adds(&c->url, "&timespan=");
    if (rc == 0) rc = drv_pct_encode(&c->url, timespan, false);
    if (rc == 0) rc = drv_buf_addf(&c->url, "&interval=%s&aggregation=Average%%2CTotal", iso);
    drv_buf_free(&names);
    if (rc == 0) rc = drv_call_header(c, "Authorization: Bearer %s", d->token.value);
    if (rc == 0) rc = drv_call_header(c, "Accept: application/json");
    return drv_call_send(c, rc, "azure metrics");
}

/* The next request: the metrics, after a new token when none is fresh. */
static int az_send(struct drv *d, struct drv_call *c, const char *instance)
{
    if (!drv_oauth_fresh(&d->token, &d->env)) return az_send_token(d, c);
    return az_send_metrics(d, c, instance);
}

/* The metrics answer (a 200) into c->res. */
static int az_take_metrics(struct drv *d, struct drv_call *c, const struct drv_http_resp *resp)
{
    char iso[16], rid[96] = "";
    int interval = az_interval(c->q.period_s > 0 ? c->q.period_s : 60, iso, sizeof iso);
    drv_http_resp_header(resp, "x-ms-request-id", rid, sizeof rid);
    json_t *root;
    int rc = drv_json_body(resp, &root, "azure metrics", &c->err);
    if (rc < 0) return rc;
    rc = az_parse(d, root, c->q.metrics & DRV_MASK_ALL, interval, &c->res, rid, &c->err);
    json_decref(root);
    return rc;
}

/* Token (when the cached one is missing or near expiry), then one metrics
 * request for every wanted metric. c->attempt: 1 once a 401 made us drop
 * the token and ask again. */
static int az_step(struct drv *d, struct drv_call *c, const struct drv_http_resp *resp)
{
    const char *instance = c->q.instance ? c->q.instance : d->instance;
    if (!instance || instance[0] != '/')
        return drv_err_set(&c->err, DRV_E_CONFIG, 0, NULL, NULL,
                           "azure: the instance must be a VM resource id "
                           "(/subscriptions/.../virtualMachines/NAME)");
    if (!resp) {
        /* Nothing asked: nothing to do (not even a token). */
        if (!(c->q.metrics & DRV_MASK_ALL)) return 0;
        return az_send(d, c, instance);
    }
    if (c->stage == AZ_STAGE_TOKEN) {
        if (resp->status != 200) return az_error(d, resp, "azure token", &c->err);
        int rc = drv_oauth_take(&d->token, resp, "azure token", &c->err);
        if (rc < 0) return rc;
        return az_send_metrics(d, c, instance);
    }
    if (resp->status == 401 && c->attempt == 0) {
        /* The token was revoked or expired early: get a new one, once. */
        drv_oauth_drop(&d->token);
        c->attempt++;
        return az_send(d, c, instance);
    }
    if (resp->status != 200) return az_error(d, resp, "azure metrics", &c->err);
    int rc = az_take_metrics(d, c, resp);
    if (rc < 0) return rc;
    drv_result_finish(&c->res, c->q.metrics, DRV_MASK_ALL);
    return 0;
}

static int az_fetch(struct drv *d, const struct drv_query *q, struct drv_result *res,
                    struct drv_error *err)
{
    return drv_fetch_steps(&drv_azure_ops, d, q, res, err);
}

const struct drv_ops drv_azure_ops = {"azure",  az_create, az_supports,
                                      az_fetch, az_step,   az_destroy};
