/* CB-Spider driver: CB-Spider's own monitoring REST API
 * (GET /spider/monitoring/vm/{VMName}/{MetricType}?ConnectionName=&
 * IntervalMinute=&TimeBeforeHour=, HTTP basic auth when CB-Spider's API
 * auth is on). The answer is {"metricName","metricUnit","timestampValues":
 * [{"timestamp","value"}]} with value a string (CB-Spider's
 * VMMonitoringHandler; the same shape M-CMP's SpiderMonitoringInfo reads).
 *
 * Mapping (MetricType): cpu_usage and memory_usage are already %; the
 * disk_read/disk_write byte counts, disk_read_ops/disk_write_ops and
 * network_in/network_out are totals per interval, turned into per-second
 * rates (bytes / 1024 for KiB/s). Which metrics CB-Spider can answer
 * depends on the cloud behind the connection: what it refuses is recorded
 * as a per-metric error, never as zeros. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drv_int.h"

struct drv {
    struct drv_env env;
    char *endpoint, *connection, *instance, *user, *password;
    long timeout_ms;
};
DRV_ENV_FIRST(struct drv);

extern const struct drv_ops drv_cbspider_ops;

static const struct {
    const char *type;
    int per_interval;
    double scale;
} cb_map[DRV_M_COUNT] = {
    [DRV_M_CPU] = {"cpu_usage", 0, 1},
    [DRV_M_MEM] = {"memory_usage", 0, 1},
    [DRV_M_KB_READ] = {"disk_read", 1, 1.0 / 1024},
    [DRV_M_KB_WRITTEN] = {"disk_write", 1, 1.0 / 1024},
    [DRV_M_OPS_READ] = {"disk_read_ops", 1, 1},
    [DRV_M_OPS_WRITE] = {"disk_write_ops", 1, 1},
    [DRV_M_BYTES_IN] = {"network_in", 1, 1},
    [DRV_M_BYTES_OUT] = {"network_out", 1, 1},
};

static void cb_destroy(struct drv *d)
{
    if (!d) return;
    free(d->endpoint);
    free(d->connection);
    free(d->instance);
    free(d->user);
    if (d->password) memset(d->password, 0, strlen(d->password));
    free(d->password);
    free(d);
}

static int cb_create(const json_t *conf, const struct drv_env *env, struct drv **out,
                     struct drv_error *err)
{
    *out = NULL;
    struct drv *d = calloc(1, sizeof *d);
    if (!d) return drv_err_set(err, -ENOMEM, 0, NULL, NULL, "out of memory");
    d->env = *env;
    const json_t *cred = json_object_get(conf, "credentials");
    int rc = drv_conf_str(conf, "endpoint", false, "http://localhost:1024", &d->endpoint, err);
    if (rc == 0) rc = drv_conf_str(conf, "connection_name", true, NULL, &d->connection, err);
    if (rc == 0) rc = drv_conf_str(conf, "instance", false, NULL, &d->instance, err);
    if (rc == 0) rc = drv_conf_str(cred, "username", false, NULL, &d->user, err);
    if (rc == 0) rc = drv_conf_str(cred, "password", false, NULL, &d->password, err);
    if (rc == 0) rc = drv_conf_int(conf, "timeout_ms", 30000, &d->timeout_ms, err);
    if (rc < 0) {
        cb_destroy(d);
        return rc;
    }
    drv_trim_slash(d->endpoint);
    *out = d;
    return 0;
}

static int cb_supports(const struct drv *d, enum drv_metric m)
{
    (void)d;
    return (unsigned)m < DRV_M_COUNT;
}

static int cb_error(const struct drv_http_resp *resp, const struct drv_env *env, const char *type,
                    struct drv_error *err)
{
    json_t *j = json_loadb(resp->body ? resp->body : "", resp->body_len, 0, NULL);
    const char *msg = json_string_value(json_object_get(j, "message"));
    int c = drv_err_from_status(resp->status);
    if (!c) c = DRV_E_PARSE;
    /* CB-Spider reports most failures, the cloud's included, as HTTP 500
     * with a message; a 500 is not a transport failure then. */
    if (resp->status == 500 && msg) c = DRV_E_BADREQUEST;
    drv_err_set(err, c, (int)resp->status, NULL, NULL, "cb-spider %s: HTTP %ld: %.200s", type,
                resp->status, msg ? msg : (resp->body ? resp->body : ""));
    if (c == DRV_E_THROTTLED) err->retry_after_s = drv_retry_after(resp, env, 10);
    json_decref(j);
    return c;
}

/* Asks for the next requested metric from c->index on (one request per
 * metric: CB-Spider answers one MetricType at a time), or finishes. */
static int cb_send(struct drv *d, struct drv_call *c, const char *vm)
{
    while (c->index < DRV_M_COUNT && !(c->q.metrics & DRV_MASK(c->index))) c->index++;
    if (c->index == DRV_M_COUNT) {
        drv_result_finish(&c->res, c->q.metrics, DRV_MASK_ALL);
        return 0;
    }
    long minutes = c->period / 60;
    long hours = (long)((c->now_s - c->q.from + 3599) / 3600);
    if (hours < 1) hours = 1;
    drv_call_req(c, "GET", d->timeout_ms);
    c->user = d->user;
    c->password = d->password;
    int rc = drv_buf_addf(&c->url, "%s/spider/monitoring/vm/", d->endpoint);
    if (rc == 0) rc = drv_pct_encode(&c->url, vm, false);
    if (rc == 0) rc = drv_buf_addf(&c->url, "/%s?ConnectionName=", cb_map[c->index].type);
    if (rc == 0) rc = drv_pct_encode(&c->url, d->connection, false);
    if (rc == 0)
        rc = drv_buf_addf(&c->url, "&IntervalMinute=%ld&TimeBeforeHour=%ld", minutes, hours);
    if (rc == 0) rc = drv_call_header(c, "Accept: application/json");
    return drv_call_send(c, rc, "cbspider");
}

/* The answer for metric m into c->res. */
static int cb_take(struct drv *d, struct drv_call *c, int m, const struct drv_http_resp *resp)
{
    struct drv_error *err = &c->err;
    if (resp->status != 200) {
        return drv_metric_refused(c, m, cb_error(resp, &d->env, cb_map[m].type, err));
    }
    json_t *root;
    int rc = drv_json_body(resp, &root, "cbspider", err);
    if (rc < 0) return rc;
    const json_t *tv = json_object_get(root, "timestampValues");
    if (!json_is_array(tv) && !json_is_null(tv)) {
        json_decref(root);
        return drv_err_set(err, DRV_E_PARSE, 200, NULL, NULL,
                           "cbspider %s: no timestampValues array", cb_map[m].type);
    }
    struct drv_series *s = drv_result_series(&c->res, m, NULL, NULL);
    size_t i;
    const json_t *p;
    json_array_foreach(tv, i, p)
    {
        int64_t when;
        double v;
        if (drv_parse_time(json_string_value(json_object_get(p, "timestamp")), &when) < 0 ||
            !drv_json_num(json_object_get(p, "value"), &v)) {
            json_decref(root);
            return drv_err_set(err, DRV_E_PARSE, 200, NULL, NULL,
                               "cbspider %s: point %zu is not {timestamp, value}", cb_map[m].type,
                               i);
        }
        if (when < c->q.from || when >= c->q.to) continue;
        if (cb_map[m].per_interval) v /= (double)c->period;
        if (!s || drv_series_push(s, when, v * cb_map[m].scale) < 0) {
            json_decref(root);
            return drv_err_set(err, -ENOMEM, 0, NULL, NULL, "cbspider: out of memory");
        }
    }
    json_decref(root);
    return 0;
}

static int cb_step(struct drv *d, struct drv_call *c, const struct drv_http_resp *resp)
{
    const char *vm = c->q.instance ? c->q.instance : d->instance;
    if (!vm)
        return drv_err_set(&c->err, DRV_E_CONFIG, 0, NULL, NULL,
                           "cbspider: no VM name in the query or the config");
    if (!resp) {
        long minutes = (c->q.period_s > 0 ? c->q.period_s : 60) / 60;
        c->period = (minutes < 1 ? 1 : minutes) * 60;
        c->now_s = drv_now_ms(&d->env) / 1000;
        c->index = 0;
        return cb_send(d, c, vm);
    }
    int rc = cb_take(d, c, c->index, resp);
    if (rc < 0) return rc;
    c->index++;
    return cb_send(d, c, vm);
}

static int cb_fetch(struct drv *d, const struct drv_query *q, struct drv_result *res,
                    struct drv_error *err)
{
    return drv_fetch_steps(&drv_cbspider_ops, d, q, res, err);
}

const struct drv_ops drv_cbspider_ops = {"cbspider", cb_create, cb_supports,
                                         cb_fetch,   cb_step,   cb_destroy};
