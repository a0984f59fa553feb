/* Google Cloud Monitoring driver: projects.timeSeries.list (v3) with a
 * filter, an interval, a per-series aligner and a cross-series reducer;
 * nextPageToken paging; OAuth2 token from a service account's JWT RS256
 * assertion (grant urn:ietf:params:oauth:grant-type:jwt-bearer), cached
 * until five minutes before expiry. Points come newest first; int64Value
 * is a JSON string (protobuf JSON mapping).
 *
 * Mapping (compute.googleapis.com, hypervisor metrics, no agent):
 *   cpu_utilization  instance/cpu/utilization, ALIGN_MEAN, REDUCE_MEAN, fraction × 100
 *   kb_read/written  instance/disk/read_bytes_count / write_bytes_count,
 *                    ALIGN_RATE (bytes/s), REDUCE_SUM by device_name, / 1024, tag disk
 *   ops_read/write   instance/disk/read_ops_count / write_ops_count, ALIGN_RATE, by device_name
 *   bytes_in/out     instance/network/received_bytes_count / sent_bytes_count, ALIGN_RATE, REDUCE_SUM
 *   mem_utilization  unsupported: memory is agent.googleapis.com/memory/percent_used,
 *                    written only by the Ops Agent inside the VM. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drv_int.h"
#include "sign/sign.h"

#define GCP_MAX_PAGES 50

struct drv {
    struct drv_env env;
    char *email, *key_pem, *token_uri, *project, *endpoint, *instance;
    long timeout_ms;
    char *token;
    int64_t token_expires_ms;
};

static const struct {
    const char *type, *aligner, *reducer;
    int by_device;
    double scale;
} g_map[DRV_M_COUNT] = {
    [DRV_M_CPU] = {"compute.googleapis.com/instance/cpu/utilization", "ALIGN_MEAN", "REDUCE_MEAN",
                   0, 100},
    [DRV_M_MEM] = {NULL, NULL, NULL, 0, 0},
    [DRV_M_KB_READ] = {"compute.googleapis.com/instance/disk/read_bytes_count", "ALIGN_RATE",
                       "REDUCE_SUM", 1, 1.0 / 1024},
    [DRV_M_KB_WRITTEN] = {"compute.googleapis.com/instance/disk/write_bytes_count", "ALIGN_RATE",
                          "REDUCE_SUM", 1, 1.0 / 1024},
    [DRV_M_OPS_READ] = {"compute.googleapis.com/instance/disk/read_ops_count", "ALIGN_RATE",
                        "REDUCE_SUM", 1, 1},
    [DRV_M_OPS_WRITE] = {"compute.googleapis.com/instance/disk/write_ops_count", "ALIGN_RATE",
                         "REDUCE_SUM", 1, 1},
    [DRV_M_BYTES_IN] = {"compute.googleapis.com/instance/network/received_bytes_count",
                        "ALIGN_RATE", "REDUCE_SUM", 0, 1},
    [DRV_M_BYTES_OUT] = {"compute.googleapis.com/instance/network/sent_bytes_count", "ALIGN_RATE",
                         "REDUCE_SUM", 0, 1},
};

static void g_destroy(struct drv *d)
{
    if (!d) return;
    free(d->email);
    if (d->key_pem) memset(d->key_pem, 0, strlen(d->key_pem));
    free(d->key_pem);
    free(d->token_uri);
    free(d->project);
    free(d->endpoint);
    free(d->instance);
    free(d->token);
    free(d);
}

/* credentials: the service account key file's JSON object as Google issues
 * it (client_email, private_key, token_uri, project_id). */
static int g_create(const json_t *conf, const struct drv_env *env, struct drv **out,
                    struct drv_error *err)
{
    *out = NULL;
    struct drv *d = calloc(1, sizeof *d);
    if (!d) return drv_err_set(err, -ENOMEM, 0, NULL, NULL, "out of memory");
    d->env = *env;
    const json_t *cred = json_object_get(conf, "credentials");
    char *pid = NULL;
    int rc = drv_conf_str(cred, "client_email", true, NULL, &d->email, err);
    if (rc == 0) rc = drv_conf_str(cred, "private_key", true, NULL, &d->key_pem, err);
    if (rc == 0) rc = drv_conf_str(cred, "project_id", false, NULL, &pid, err);
    if (rc == 0) rc = drv_conf_str(conf, "project", pid == NULL, pid, &d->project, err);
    if (rc == 0) {
        const char *tu = json_string_value(json_object_get(cred, "token_uri"));
        rc = drv_conf_str(conf, "token_uri", false, tu ? tu : "https://oauth2.googleapis.com/token",
                          &d->token_uri, err);
    }
    if (rc == 0)
        rc = drv_conf_str(conf, "endpoint", false, "https://monitoring.googleapis.com",
                          &d->endpoint, err);
    if (rc == 0) rc = drv_conf_str(conf, "instance", false, NULL, &d->instance, err);
    if (rc == 0) rc = drv_conf_int(conf, "timeout_ms", 30000, &d->timeout_ms, err);
    free(pid);
    if (rc < 0) {
        g_destroy(d);
        return rc;
    }
    drv_trim_slash(d->endpoint);
    *out = d;
    return 0;
}

static int g_supports(const struct drv *d, enum drv_metric m)
{
    (void)d;
    return (unsigned)m < DRV_M_COUNT && g_map[m].type != NULL;
}

/* Google's error body: {"error":{"code":403,"message","status":"PERMISSION_DENIED"}},
 * or the token endpoint's {"error":"invalid_grant","error_description"}. */
static int g_error(const struct drv *d, const struct drv_http_resp *resp, const char *what,
                   struct drv_error *err)
{
    json_t *j = json_loadb(resp->body ? resp->body : "", resp->body_len, 0, NULL);
    const json_t *e = json_object_get(j, "error");
    const char *status = NULL, *msg = NULL;
    if (json_is_object(e)) {
        status = json_string_value(json_object_get(e, "status"));
        msg = json_string_value(json_object_get(e, "message"));
    } else if (json_is_string(e)) {
        status = json_string_value(e);
        msg = json_string_value(json_object_get(j, "error_description"));
    }
    int c = drv_err_from_status(resp->status);
    if (!c) c = DRV_E_PARSE;
    if (status && (strcmp(status, "UNAUTHENTICATED") == 0 || strcmp(status, "invalid_grant") == 0 ||
                   strcmp(status, "invalid_client") == 0))
        c = DRV_E_AUTH;
    if (status && strcmp(status, "RESOURCE_EXHAUSTED") == 0) c = DRV_E_THROTTLED;
    char rid[96] = "";
    drv_http_resp_header(resp, "x-guploader-uploadid", rid, sizeof rid);
    drv_err_set(err, c, (int)resp->status, status, rid, "%s: HTTP %ld %s: %s", what, resp->status,
                status ? status : "", msg ? msg : "(no message)");
    if (c == DRV_E_THROTTLED) err->retry_after_s = drv_retry_after(resp, &d->env, 30);
    json_decref(j);
    return c;
}

static int g_token(struct drv *d, struct drv_error *err)
{
    int64_t now_ms = drv_now_ms(&d->env), now = now_ms / 1000;
    if (d->token && now_ms < d->token_expires_ms - 300000) return 0;
    json_t *claims =
        json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", d->email, "scope",
                  "https://www.googleapis.com/auth/monitoring.read", "aud", d->token_uri, "iat",
                  (json_int_t)now, "exp", (json_int_t)(now + 3600));
    char *cj = claims ? json_dumps(claims, JSON_COMPACT) : NULL;
    json_decref(claims);
    if (!cj) return drv_err_set(err, -ENOMEM, 0, NULL, NULL, "out of memory");
    struct drv_buf jwt, body;
    drv_buf_init(&jwt, 0);
    drv_buf_init(&body, 0);
    int rc = drv_jwt_rs256(d->key_pem, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", cj, &jwt);
    free(cj);
    if (rc == DRV_E_CONFIG) {
        drv_buf_free(&jwt);
        return drv_err_set(err, rc, 0, NULL, NULL,
                           "gcp: credentials.private_key is not a PEM RSA private key");
    }
    if (rc == 0)
        rc = drv_form_add(&body, "grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer");
    if (rc == 0) rc = drv_form_add(&body, "assertion", jwt.p);
    drv_buf_free(&jwt);
    if (rc < 0) {
        drv_buf_free(&body);
        return drv_err_set(err, rc, 0, NULL, NULL, "gcp: cannot build the token request");
    }
    const char *h[] = {"Content-Type: application/x-www-form-urlencoded"};
    struct drv_http_req req = {"POST", d->token_uri, h, 1, body.p, body.len, NULL,
                               NULL,   d->timeout_ms};
    struct drv_http_resp resp;
    rc = drv_http_do(&d->env, &req, &resp, err);
    drv_buf_free(&body);
    if (rc < 0) return rc;
    if (resp.status != 200) {
        rc = g_error(d, &resp, "gcp token", err);
        drv_http_resp_free(&resp);
        return rc;
    }
    json_t *j;
    rc = drv_json_body(&resp, &j, "gcp token", err);
    drv_http_resp_free(&resp);
    if (rc < 0) return rc;
    const char *tok = json_string_value(json_object_get(j, "access_token"));
    double exp = 0;
    if (!tok || !drv_json_num(json_object_get(j, "expires_in"), &exp)) {
        json_decref(j);
        return drv_err_set(err, DRV_E_PARSE, 200, NULL, NULL,
                           "gcp token: no access_token/expires_in in the answer");
    }
    free(d->token);
    d->token = strdup(tok);
    d->token_expires_ms = now_ms + (int64_t)(exp * 1000);
    json_decref(j);
    return d->token ? 0 : drv_err_set(err, -ENOMEM, 0, NULL, NULL, "out of memory");
}

static int g_page(struct drv *d, enum drv_metric m, const json_t *root, long period,
                  struct drv_result *res, struct drv_error *err)
{
    size_t i;
    const json_t *ts;
    json_array_foreach(json_object_get(root, "timeSeries"), i, ts)
    {
        const char *dev = NULL;
        if (g_map[m].by_device)
            dev = json_string_value(json_object_get(
                json_object_get(json_object_get(ts, "metric"), "labels"), "device_name"));
        struct drv_series *s = drv_result_series(res, m, dev ? "disk" : NULL, dev);
        if (!s) return drv_err_set(err, -ENOMEM, 0, NULL, NULL, "out of memory");
        size_t p;
        const json_t *pt;
        json_array_foreach(json_object_get(ts, "points"), p, pt)
        {
            const json_t *val = json_object_get(pt, "value");
            double v;
            int64_t end;
            /* doubleValue is a number; int64Value is a decimal string. */
            if (!drv_json_num(json_object_get(val, "doubleValue"), &v) &&
                !drv_json_num(json_object_get(val, "int64Value"), &v))
                return drv_err_set(err, DRV_E_PARSE, 200, NULL, NULL,
                                   "gcp %s: a point without doubleValue/int64Value", g_map[m].type);
            if (drv_parse_time(
                    json_string_value(json_object_get(json_object_get(pt, "interval"), "endTime")),
                    &end) < 0)
                return drv_err_set(err, DRV_E_PARSE, 200, NULL, NULL,
                                   "gcp %s: a point without interval.endTime", g_map[m].type);
            /* An aligned point's endTime closes its period; we stamp starts. */
            if (drv_series_push(s, end - period, v * g_map[m].scale) < 0)
                return drv_err_set(err, -E2BIG, 0, NULL, NULL, "gcp: too many points");
        }
    }
    (void)d;
    return 0;
}

static int g_fetch(struct drv *d, const struct drv_query *q, struct drv_result *res,
                   struct drv_error *err)
{
    drv_result_init(res, "gcp");
    memset(err, 0, sizeof *err);
    const char *instance = q->instance ? q->instance : d->instance;
    if (!instance)
        return drv_err_set(err, DRV_E_CONFIG, 0, NULL, NULL,
                           "gcp: no instance id in the query or the config");
    long period = q->period_s >= 60 ? q->period_s : 60;
    char t0[32], t1[32], align[24];
    drv_fmt_time(q->from, "%Y-%m-%dT%H:%M:%SZ", t0, sizeof t0);
    drv_fmt_time(q->to, "%Y-%m-%dT%H:%M:%SZ", t1, sizeof t1);
    snprintf(align, sizeof align, "%lds", period);
    unsigned supported = DRV_MASK_ALL & ~DRV_MASK(DRV_M_MEM);

    for (int m = 0; m < DRV_M_COUNT; m++) {
        if (!(q->metrics & supported & DRV_MASK(m))) continue;
        char filter[512], page_token[1024] = "";
        bool retried = false;
        snprintf(filter, sizeof filter,
                 "metric.type = \"%s\" AND resource.labels.instance_id = \"%s\"", g_map[m].type,
                 instance);
        for (int page = 0; page < GCP_MAX_PAGES; page++) {
            int rc = g_token(d, err);
            if (rc < 0) return rc;
            struct drv_buf url;
            drv_buf_init(&url, 0);
            rc = drv_buf_addf(&url, "%s/v3/projects/", d->endpoint);
            if (rc == 0) rc = drv_pct_encode(&url, d->project, false);
            if (rc == 0) rc = drv_buf_adds(&url, "/timeSeries?filter=");
            if (rc == 0) rc = drv_pct_encode(&url, filter, false);
            if (rc == 0)
                rc = drv_buf_addf(
                    &url,
                    "&interval.startTime=%s&interval.endTime=%s&aggregation.alignmentPeriod=%s"
                    "&aggregation.perSeriesAligner=%s&aggregation.crossSeriesReducer=%s",
                    t0, t1, align, g_map[m].aligner, g_map[m].reducer);
            if (rc == 0 && g_map[m].by_device)
                rc = drv_buf_adds(&url, "&aggregation.groupByFields=metric.labels.device_name");
            if (rc == 0 && page_token[0]) {
                rc = drv_buf_adds(&url, "&pageToken=");
                if (rc == 0) rc = drv_pct_encode(&url, page_token, false);
            }
            char auth[4096];
            snprintf(auth, sizeof auth, "Authorization: Bearer %s", d->token);
            const char *h[] = {auth, "Accept: application/json"};
            struct drv_http_req req = {"GET", url.p, h, 2, NULL, 0, NULL, NULL, d->timeout_ms};
            struct drv_http_resp resp;
            if (rc == 0)
                rc = drv_http_do(&d->env, &req, &resp, err);
            else
                drv_err_set(err, rc, 0, NULL, NULL, "gcp: URL too long");
            drv_buf_free(&url);
            if (rc < 0) return rc;
            if (resp.status == 401 && !retried) {
                free(d->token); /* revoked early: one more try with a new token */
                d->token = NULL;
                drv_http_resp_free(&resp);
                retried = true;
                page--;
                continue;
            }
            if (resp.status != 200) {
                rc = g_error(d, &resp, "gcp timeSeries.list", err);
                drv_http_resp_free(&resp);
                if (rc == DRV_E_BADREQUEST || rc == DRV_E_NOTFOUND) {
                    drv_result_metric_error(res, m, err); /* this metric only */
                    memset(err, 0, sizeof *err);
                    break;
                }
                return rc;
            }
            json_t *root;
            rc = drv_json_body(&resp, &root, "gcp timeSeries.list", err);
            drv_http_resp_free(&resp);
            if (rc < 0) return rc;
            rc = g_page(d, m, root, period, res, err);
            const char *next = json_string_value(json_object_get(root, "nextPageToken"));
            snprintf(page_token, sizeof page_token, "%s", next ? next : "");
            json_decref(root);
            if (rc < 0) return rc;
            if (!page_token[0]) break;
        }
    }
    drv_result_finish(res, q->metrics, supported);
    return 0;
}

const struct drv_ops drv_gcp_ops = {"gcp", g_create, g_supports, g_fetch, NULL, g_destroy};
