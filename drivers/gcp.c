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
    struct drv_oauth_token token; /* cached across fetches */
};
DRV_ENV_FIRST(struct drv);

extern const struct drv_ops drv_gcp_ops;

/* c->stage: which answer the call awaits. */
enum g_stage { G_STAGE_TOKEN, G_STAGE_PAGE };

/* The call's place beyond struct drv_call's fields (c->priv): pages taken
 * of the current metric (c->index), whose paging token is c->cursor. */
struct g_place {
    int page;
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
    drv_oauth_drop(&d->token);
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

/* Builds the token request: a JWT assertion signed with the service
 * account's key, dated by the injected clock (the body is wiped once sent). */
static int g_send_token(struct drv *d, struct drv_call *c)
{
    c->stage = G_STAGE_TOKEN;
    d->token.asked_ms = drv_now_ms(&d->env);
    int64_t now = d->token.asked_ms / 1000;
    json_t *claims =
        json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", d->email, "scope",
                  "https://www.googleapis.com/auth/monitoring.read", "aud", d->token_uri, "iat",
                  (json_int_t)now, "exp", (json_int_t)(now + 3600));
    char *cj = claims ? json_dumps(claims, JSON_COMPACT) : NULL;
    json_decref(claims);
    if (!cj) return drv_err_set(&c->err, -ENOMEM, 0, NULL, NULL, "out of memory");
    struct drv_buf jwt;
    drv_buf_init(&jwt, 0);
    int rc = drv_jwt_rs256(d->key_pem, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", cj, &jwt);
    free(cj);
    drv_call_req(c, "POST", d->timeout_ms);
    c->body_secret = true;
    if (rc == 0)
        rc = drv_form_add(&c->body, "grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer");
    if (rc == 0) rc = drv_form_add(&c->body, "assertion", jwt.p);
    if (jwt.p) memset(jwt.p, 0, jwt.cap); /* a bearer credential for an hour */
    drv_buf_free(&jwt);
    if (rc == DRV_E_CONFIG)
        return drv_err_set(&c->err, rc, 0, NULL, NULL,
                           "gcp: credentials.private_key is not a PEM RSA private key");
    if (rc < 0)
        return drv_err_set(&c->err, rc, 0, NULL, NULL, "gcp: cannot build the token request");
    rc = drv_buf_adds(&c->url, d->token_uri);
    if (rc == 0) rc = drv_call_header(c, "Content-Type: application/x-www-form-urlencoded");
    return drv_call_send(c, rc, "gcp token");
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

/* Builds the request for the next page of metric c->index (after the
 * paging token in c->cursor, if any), with the cached token. */
static int g_send_page(struct drv *d, struct drv_call *c, const char *instance)
{
    c->stage = G_STAGE_PAGE;
    int m = c->index;
    char filter[512], t0[32], t1[32];
    snprintf(filter, sizeof filter, "metric.type = \"%s\" AND resource.labels.instance_id = \"%s\"",
             g_map[m].type, instance);
    drv_fmt_time(c->q.from, "%Y-%m-%dT%H:%M:%SZ", t0, sizeof t0);
    drv_fmt_time(c->q.to, "%Y-%m-%dT%H:%M:%SZ", t1, sizeof t1);
    drv_call_req(c, "GET", d->timeout_ms);
    int rc = drv_buf_addf(&c->url, "%s/v3/projects/", d->endpoint);
    if (rc == 0) rc = drv_pct_encode(&c->url, d->project, false);
    if (rc == 0) rc = drv_buf_adds(&c->url, "/timeSeries?filter=");
    if (rc == 0) rc = drv_pct_encode(&c->url, filter, false);
    if (rc == 0)
        rc = drv_buf_addf(
            &c->url,
            "&interval.startTime=%s&interval.endTime=%s&aggregation.alignmentPeriod=%lds"
            "&aggregation.perSeriesAligner=%s&aggregation.crossSeriesReducer=%s",
            t0, t1, c->period, g_map[m].aligner, g_map[m].reducer);
    if (rc == 0 && g_map[m].by_device)
        rc = drv_buf_adds(&c->url, "&aggregation.groupByFields=metric.labels.device_name");
    if (rc == 0 && c->cursor.len) {
        rc = drv_buf_adds(&c->url, "&pageToken=");
        if (rc == 0) rc = drv_pct_encode(&c->url, drv_buf_str(&c->cursor), false);
    }
    if (rc == 0) rc = drv_call_header(c, "Authorization: Bearer %s", d->token.value);
    if (rc == 0) rc = drv_call_header(c, "Accept: application/json");
    return drv_call_send(c, rc, "gcp timeSeries.list");
}

/* The next request: the page, after a new token when none is fresh (the
 * token is checked before every page, as a fetch may outlast it). */
static int g_send(struct drv *d, struct drv_call *c, const char *instance)
{
    if (!drv_oauth_fresh(&d->token, &d->env)) return g_send_token(d, c);
    return g_send_page(d, c, instance);
}

/* Starts the first requested, supported metric from c->index on, or
 * finishes the fetch when none is left. */
static int g_next_metric(struct drv *d, struct drv_call *c, const char *instance)
{
    unsigned supported = DRV_MASK_ALL & ~DRV_MASK(DRV_M_MEM);
    while (c->index < DRV_M_COUNT && !(c->q.metrics & supported & DRV_MASK(c->index))) c->index++;
    if (c->index == DRV_M_COUNT) {
        drv_result_finish(&c->res, c->q.metrics, supported);
        return 0;
    }
    struct g_place *pl = c->priv;
    pl->page = 0;
    c->attempt = 0;
    c->cursor.len = 0;
    if (c->cursor.p) c->cursor.p[0] = '\0';
    return g_send(d, c, instance);
}

/* A page of metric c->index (a 200) into c->res, its nextPageToken into
 * c->cursor (empty on the last page). */
static int g_take_page(struct drv *d, struct drv_call *c, const struct drv_http_resp *resp)
{
    json_t *root;
    int rc = drv_json_body(resp, &root, "gcp timeSeries.list", &c->err);
    if (rc < 0) return rc;
    rc = g_page(d, c->index, root, c->period, &c->res, &c->err);
    const char *next = json_string_value(json_object_get(root, "nextPageToken"));
    c->cursor.len = 0;
    if (c->cursor.p) c->cursor.p[0] = '\0';
    if (rc == 0 && next && *next && drv_buf_adds(&c->cursor, next) < 0)
        rc = drv_err_set(&c->err, -ENOMEM, 0, NULL, NULL, "gcp: paging token too long");
    json_decref(root);
    return rc;
}

/* One metric after the other, each page after page (at most GCP_MAX_PAGES),
 * each page after a token when the cached one is missing or near expiry.
 * c->index: the metric; c->attempt: 1 once a 401 made us drop the token
 * and ask again for this metric; c->period: the alignment period. */
static int g_step(struct drv *d, struct drv_call *c, const struct drv_http_resp *resp)
{
    const char *instance = c->q.instance ? c->q.instance : d->instance;
    if (!instance)
        return drv_err_set(&c->err, DRV_E_CONFIG, 0, NULL, NULL,
                           "gcp: no instance id in the query or the config");
    if (!resp) {
        if (!(c->priv = calloc(1, sizeof(struct g_place))))
            return drv_err_set(&c->err, -ENOMEM, 0, NULL, NULL, "out of memory");
        c->priv_free = free;
        c->period = c->q.period_s >= 60 ? c->q.period_s : 60;
        c->index = 0;
        return g_next_metric(d, c, instance);
    }
    if (c->stage == G_STAGE_TOKEN) {
        if (resp->status != 200) return g_error(d, resp, "gcp token", &c->err);
        int rc = drv_oauth_take(&d->token, resp, "gcp token", &c->err);
        if (rc < 0) return rc;
        return g_send_page(d, c, instance);
    }
    if (resp->status == 401 && c->attempt == 0) {
        /* Revoked early: one more try of this page with a new token. */
        drv_oauth_drop(&d->token);
        c->attempt++;
        return g_send(d, c, instance);
    }
    if (resp->status != 200) {
        int rc = g_error(d, resp, "gcp timeSeries.list", &c->err);
        if (rc != DRV_E_BADREQUEST && rc != DRV_E_NOTFOUND) return rc;
        drv_result_metric_error(&c->res, c->index, &c->err); /* this metric only */
        memset(&c->err, 0, sizeof c->err);
        c->index++;
        return g_next_metric(d, c, instance);
    }
    int rc = g_take_page(d, c, resp);
    if (rc < 0) return rc;
    struct g_place *pl = c->priv;
    if (c->cursor.len && ++pl->page < GCP_MAX_PAGES) return g_send(d, c, instance);
    c->index++;
    return g_next_metric(d, c, instance);
}

static int g_fetch(struct drv *d, const struct drv_query *q, struct drv_result *res,
                   struct drv_error *err)
{
    return drv_fetch_steps(&drv_gcp_ops, d, q, res, err);
}

const struct drv_ops drv_gcp_ops = {"gcp", g_create, g_supports, g_fetch, g_step, g_destroy};
