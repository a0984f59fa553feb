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
    char *token;
    int64_t token_expires_ms;
};

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
    free(d->token);
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

static int az_token(struct drv *d, struct drv_error *err)
{
    int64_t now = drv_now_ms(&d->env);
    if (d->token && now < d->token_expires_ms - 300000) return 0;
    struct drv_buf body, url;
    drv_buf_init(&body, 0);
    drv_buf_init(&url, 0);
    int rc = drv_form_add(&body, "grant_type", "client_credentials");
    if (rc == 0) rc = drv_form_add(&body, "client_id", d->client_id);
    if (rc == 0) rc = drv_form_add(&body, "client_secret", d->client_secret);
    if (rc == 0) rc = drv_form_add(&body, "scope", "https://management.azure.com/.default");
    if (rc == 0) rc = drv_buf_addf(&url, "%s/", d->token_endpoint);
    if (rc == 0) rc = drv_pct_encode(&url, d->tenant, false);
    if (rc == 0) rc = drv_buf_adds(&url, "/oauth2/v2.0/token");
    if (rc < 0) {
        drv_buf_free(&body);
        drv_buf_free(&url);
        return drv_err_set(err, rc, 0, NULL, NULL, "azure: token request too large");
    }
    const char *h[] = {"Content-Type: application/x-www-form-urlencoded"};
    struct drv_http_req req = {"POST", url.p, h, 1, body.p, body.len, NULL, NULL, d->timeout_ms};
    struct drv_http_resp resp;
    rc = drv_http_do(&d->env, &req, &resp, err);
    if (body.p) memset(body.p, 0, body.len); /* holds the client secret */
    drv_buf_free(&body);
    drv_buf_free(&url);
    if (rc < 0) return rc;
    if (resp.status != 200) {
        rc = az_error(d, &resp, "azure token", err);
        drv_http_resp_free(&resp);
        return rc;
    }
    json_t *j;
    rc = drv_json_body(&resp, &j, "azure token", err);
    drv_http_resp_free(&resp);
    if (rc < 0) return rc;
    const char *tok = json_string_value(json_object_get(j, "access_token"));
    double exp = 0;
    if (!tok || !drv_json_num(json_object_get(j, "expires_in"), &exp)) {
        json_decref(j);
        return drv_err_set(err, DRV_E_PARSE, 200, NULL, NULL,
                           "azure token: no access_token/expires_in in the answer");
    }
    free(d->token);
    d->token = strdup(tok);
    d->token_expires_ms = now + (int64_t)(exp * 1000);
    json_decref(j);
    return d->token ? 0 : drv_err_set(err, -ENOMEM, 0, NULL, NULL, "out of memory");
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

static int az_fetch(struct drv *d, const struct drv_query *q, struct drv_result *res,
                    struct drv_error *err)
{
    drv_result_init(res, "azure");
    memset(err, 0, sizeof *err);
    const char *instance = q->instance ? q->instance : d->instance;
    if (!instance || instance[0] != '/')
        return drv_err_set(err, DRV_E_CONFIG, 0, NULL, NULL,
                           "azure: the instance must be a VM resource id "
                           "(/subscriptions/.../virtualMachines/NAME)");
    unsigned want = q->metrics & DRV_MASK_ALL;
    if (!want) return 0;
    char iso[16], t0[32], t1[32];
    int interval = az_interval(q->period_s > 0 ? q->period_s : 60, iso, sizeof iso);
    drv_fmt_time(q->from, "%Y-%m-%dT%H:%M:%SZ", t0, sizeof t0);
    drv_fmt_time(q->to, "%Y-%m-%dT%H:%M:%SZ", t1, sizeof t1);

    for (int attempt = 0; attempt < 2; attempt++) {
        int rc = az_token(d, err);
        if (rc < 0) return rc;
        struct drv_buf url, names;
        drv_buf_init(&url, 0);
        drv_buf_init(&names, 0);
        for (int m = 0; m < DRV_M_COUNT; m++)
            if (want & DRV_MASK(m))
                drv_buf_addf(&names, "%s%s", names.len ? "," : "", az_map[m].name);
        char timespan[80];
        snprintf(timespan, sizeof timespan, "%s/%s", t0, t1);
        rc = drv_buf_addf(&url, "%s", d->endpoint);
        if (rc == 0) rc = drv_pct_encode(&url, instance, true);
        if (rc == 0)
            rc = drv_buf_adds(
                &url, "/providers/Microsoft.Insights/metrics?api-version=2018-01-01&metricnames=");
        if (rc == 0) rc = drv_pct_encode(&url, drv_buf_str(&names), false);
        if (rc == 0) rc = drv_buf_adds(&url, "&timespan=");
        if (rc == 0) rc = drv_pct_encode(&url, timespan, false);
        if (rc == 0) rc = drv_buf_addf(&url, "&interval=%s&aggregation=Average%%2CTotal", iso);
        drv_buf_free(&names);
        char auth[4096];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", d->token);
        const char *h[] = {auth, "Accept: application/json"};
        struct drv_http_req req = {"GET", url.p, h, 2, NULL, 0, NULL, NULL, d->timeout_ms};
        struct drv_http_resp resp;
        if (rc == 0)
            rc = drv_http_do(&d->env, &req, &resp, err);
        else
            drv_err_set(err, rc, 0, NULL, NULL, "azure: URL too long");
        drv_buf_free(&url);
        if (rc < 0) return rc;
        if (resp.status == 401 && attempt == 0) {
            /* The token was revoked or expired early: get a new one, once. */
            free(d->token);
            d->token = NULL;
            drv_http_resp_free(&resp);
            continue;
        }
        if (resp.status != 200) {
            rc = az_error(d, &resp, "azure metrics", err);
            drv_http_resp_free(&resp);
            return rc;
        }
        char rid[96] = "";
        drv_http_resp_header(&resp, "x-ms-request-id", rid, sizeof rid);
        json_t *root;
        rc = drv_json_body(&resp, &root, "azure metrics", err);
        drv_http_resp_free(&resp);
        if (rc < 0) return rc;
        rc = az_parse(d, root, want, interval, res, rid, err);
        json_decref(root);
        if (rc < 0) return rc;
        break;
    }
    drv_result_finish(res, q->metrics, DRV_MASK_ALL);
    return 0;
}

const struct drv_ops drv_azure_ops = {"azure", az_create, az_supports, az_fetch, NULL, az_destroy};
