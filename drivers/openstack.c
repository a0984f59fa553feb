/* OpenStack driver: Keystone v3 password authentication (POST
 * /v3/auth/tokens, token in X-Subject-Token, service catalog in the body),
 * the "metric" (Gnocchi) endpoint looked up in the catalog, and Gnocchi
 * measures (GET /v1/metric/{id}/measures?start&stop&granularity, answer
 * [[timestamp, granularity, value], ...]) of the Ceilometer meters.
 *
 * Mapping (Ceilometer meters on Gnocchi resources):
 *   cpu_utilization  "cpu" (cumulative CPU time, ns) of the instance:
 *                    Δns / Δt / 1e9 / vcpus × 100; vcpus from the "vcpus"
 *                    meter or the "vcpus" config key
 *   mem_utilization  "memory.usage" / "memory" (MB, gauges) × 100
 *   kb_read/written  "disk.device.read.bytes"/"disk.device.write.bytes"
 *                    (cumulative) of each instance_disk resource: Δ/Δt/1024, tag disk
 *   ops_read/write   "disk.device.read.requests"/"disk.device.write.requests", tag disk
 *   bytes_in/out     "network.incoming.bytes"/"network.outgoing.bytes" of each
 *                    instance_network_interface resource: Δ/Δt, tag interface
 * A rate is stamped at the end of its step. A counter that goes backwards (instance restart) yields no rate for that
 * step rather than a negative one. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drv_int.h"

struct drv {
    struct drv_env env;
    char *auth_url, *user, *password, *user_domain, *project, *project_domain, *region, *interface;
    char *endpoint; /* Gnocchi override; else from the catalog */
    char *instance;
    long vcpus, timeout_ms;
    char *token, *gnocchi;
    int64_t token_expires_ms;
};

static void os_destroy(struct drv *d)
{
    if (!d) return;
    free(d->auth_url);
    free(d->user);
    if (d->password) memset(d->password, 0, strlen(d->password));
    free(d->password);
    free(d->user_domain);
    free(d->project);
    free(d->project_domain);
    free(d->region);
    free(d->interface);
    free(d->endpoint);
    free(d->instance);
    free(d->token);
    free(d->gnocchi);
    free(d);
}

static int os_create(const json_t *conf, const struct drv_env *env, struct drv **out,
                     struct drv_error *err)
{
    *out = NULL;
    struct drv *d = calloc(1, sizeof *d);
    if (!d) return drv_err_set(err, -ENOMEM, 0, NULL, NULL, "out of memory");
    d->env = *env;
    const json_t *cred = json_object_get(conf, "credentials");
    int rc = drv_conf_str(conf, "auth_url", true, NULL, &d->auth_url, err);
    if (rc == 0) rc = drv_conf_str(cred, "username", true, NULL, &d->user, err);
    if (rc == 0) rc = drv_conf_str(cred, "password", true, NULL, &d->password, err);
    if (rc == 0)
        rc = drv_conf_str(cred, "user_domain_name", false, "Default", &d->user_domain, err);
    if (rc == 0) rc = drv_conf_str(cred, "project_name", true, NULL, &d->project, err);
    if (rc == 0)
        rc = drv_conf_str(cred, "project_domain_name", false, "Default", &d->project_domain, err);
    if (rc == 0) rc = drv_conf_str(conf, "region", false, NULL, &d->region, err);
    if (rc == 0) rc = drv_conf_str(conf, "interface", false, "public", &d->interface, err);
    if (rc == 0) rc = drv_conf_str(conf, "endpoint", false, NULL, &d->endpoint, err);
    if (rc == 0) rc = drv_conf_str(conf, "instance", false, NULL, &d->instance, err);
    if (rc == 0) rc = drv_conf_int(conf, "vcpus", 0, &d->vcpus, err);
    if (rc == 0) rc = drv_conf_int(conf, "timeout_ms", 30000, &d->timeout_ms, err);
    if (rc < 0) {
        os_destroy(d);
        return rc;
    }
    drv_trim_slash(d->auth_url);
    if (d->endpoint) drv_trim_slash(d->endpoint);
    *out = d;
    return 0;
}

static int os_supports(const struct drv *d, enum drv_metric m)
{
    (void)d;
    return (unsigned)m < DRV_M_COUNT;
}

/* Keystone {"error":{"code","title","message"}}; Gnocchi {"code","title","description"}. */
static int os_error(const struct drv *d, const struct drv_http_resp *resp, const char *what,
                    struct drv_error *err)
{
    json_t *j = json_loadb(resp->body ? resp->body : "", resp->body_len, 0, NULL);
    const json_t *e = json_object_get(j, "error");
    if (!json_is_object(e)) e = j;
    const char *title = json_string_value(json_object_get(e, "title"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    if (!msg) msg = json_string_value(json_object_get(e, "description"));
    char rid[96] = "";
    drv_http_resp_header(resp, "x-openstack-request-id", rid, sizeof rid);
    int c = drv_err_from_status(resp->status);
    if (!c) c = DRV_E_PARSE;
    drv_err_set(err, c, (int)resp->status, title, rid, "%s: HTTP %ld %s: %.150s", what,
                resp->status, title ? title : "",
                msg ? msg : (resp->body && !j ? resp->body : "(no message)"));
    if (c == DRV_E_THROTTLED) err->retry_after_s = drv_retry_after(resp, &d->env, 10);
    json_decref(j);
    return c;
}

static int os_auth(struct drv *d, struct drv_error *err)
{
    int64_t now = drv_now_ms(&d->env);
    if (d->token && now < d->token_expires_ms - 300000) return 0;
    json_t *body =
        json_pack("{s:{s:{s:[s], s:{s:{s:s, s:{s:s}, s:s}}}, s:{s:{s:s, s:{s:s}}}}}", "auth",
                  "identity", "methods", "password", "password", "user", "name", d->user, "domain",
                  "name", d->user_domain, "password", d->password, "scope", "project", "name",
                  d->project, "domain", "name", d->project_domain);
    char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!payload) return drv_err_set(err, -ENOMEM, 0, NULL, NULL, "out of memory");
    char url[600];
    snprintf(url, sizeof url, "%s/auth/tokens", d->auth_url);
    const char *h[] = {"Content-Type: application/json"};
    struct drv_http_req req = {"POST", url,          h, 1, payload, strlen(payload), NULL,
                               NULL,   d->timeout_ms};
    struct drv_http_resp resp;
    int rc = drv_http_do(&d->env, &req, &resp, err);
    memset(payload, 0, strlen(payload)); /* holds the password */
    free(payload);
    if (rc < 0) return rc;
    if (resp.status != 201 && resp.status != 200) {
        rc = os_error(d, &resp, "keystone auth", err);
        drv_http_resp_free(&resp);
        return rc;
    }
    char token[2048];
    if (drv_http_resp_header(&resp, "X-Subject-Token", token, sizeof token) < 0) {
        drv_http_resp_free(&resp);
        return drv_err_set(err, DRV_E_PARSE, 201, NULL, NULL,
                           "keystone auth: no X-Subject-Token header in the answer");
    }
    json_t *root;
    rc = drv_json_body(&resp, &root, "keystone auth", err);
    drv_http_resp_free(&resp);
    if (rc < 0) return rc;
    const json_t *tok = json_object_get(root, "token");
    int64_t exp;
    if (drv_parse_time(json_string_value(json_object_get(tok, "expires_at")), &exp) < 0)
        exp = now / 1000 + 3600;
    /* Catalog: the "metric" service's endpoint of our interface (and region). */
    char *found = NULL;
    size_t i, k;
    const json_t *svc, *ep;
    json_array_foreach(json_object_get(tok, "catalog"), i, svc)
    {
        const char *type = json_string_value(json_object_get(svc, "type"));
        if (!type || strcmp(type, "metric") != 0) continue;
        json_array_foreach(json_object_get(svc, "endpoints"), k, ep)
        {
            const char *itf = json_string_value(json_object_get(ep, "interface"));
            const char *reg = json_string_value(json_object_get(ep, "region_id"));
            if (!reg) reg = json_string_value(json_object_get(ep, "region"));
            const char *u = json_string_value(json_object_get(ep, "url"));
            if (!u || !itf || strcmp(itf, d->interface) != 0) continue;
            if (d->region && (!reg || strcmp(reg, d->region) != 0)) continue;
            free(found);
            found = strdup(u);
            break;
        }
    }
    json_decref(root);
    if (!d->endpoint && !found)
        return drv_err_set(
            err, DRV_E_NOTFOUND, 201, NULL, NULL,
            "keystone catalog has no \"metric\" (Gnocchi) endpoint for interface %s%s%s",
            d->interface, d->region ? " in region " : "", d->region ? d->region : "");
    free(d->gnocchi);
    d->gnocchi = d->endpoint ? strdup(d->endpoint) : found;
    if (d->endpoint) free(found);
    free(d->token);
    d->token = strdup(token);
    if (!d->gnocchi || !d->token) return drv_err_set(err, -ENOMEM, 0, NULL, NULL, "out of memory");
    drv_trim_slash(d->gnocchi);
    d->token_expires_ms = exp * 1000;
    return 0;
}

/* GET/POST against Gnocchi with the token; one re-authentication on 401. */
static int os_call(struct drv *d, const char *method, const char *path, const char *body,
                   json_t **out, struct drv_error *err)
{
    *out = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        int rc = os_auth(d, err);
        if (rc < 0) return rc;
        char url[1200], auth[2100];
        snprintf(url, sizeof url, "%s%s", d->gnocchi, path);
        snprintf(auth, sizeof auth, "X-Auth-Token: %s", d->token);
        const char *h[] = {auth, "Content-Type: application/json", "Accept: application/json"};
        struct drv_http_req req = {method, url,          h, 3, body, body ? strlen(body) : 0, NULL,
                                   NULL,   d->timeout_ms};
        struct drv_http_resp resp;
        rc = drv_http_do(&d->env, &req, &resp, err);
        if (rc < 0) return rc;
        if (resp.status == 401 && attempt == 0) {
            free(d->token);
            d->token = NULL;
            drv_http_resp_free(&resp);
            continue;
        }
        if (resp.status != 200) {
            rc = os_error(d, &resp, "gnocchi", err);
            drv_http_resp_free(&resp);
            return rc;
        }
        rc = drv_json_body(&resp, out, "gnocchi", err);
        drv_http_resp_free(&resp);
        return rc;
    }
    return drv_err_set(err, DRV_E_AUTH, 401, NULL, NULL, "gnocchi refused a fresh token");
}

struct raw {
    int64_t *ts;
    double *v;
    size_t n;
};

static void raw_free(struct raw *r)
{
    free(r->ts);
    free(r->v);
    memset(r, 0, sizeof *r);
}

static int os_measures(struct drv *d, const char *metric_id, const struct drv_query *q, long gran,
                       struct raw *out, struct drv_error *err)
{
    memset(out, 0, sizeof *out);
    char t0[32], t1[32], path[400];
    /* One granularity earlier, so the first period has a predecessor to diff against. */
    drv_fmt_time(q->from - gran, "%Y-%m-%dT%H:%M:%SZ", t0, sizeof t0);
    drv_fmt_time(q->to, "%Y-%m-%dT%H:%M:%SZ", t1, sizeof t1);
    struct drv_buf id;
    drv_buf_init(&id, 256);
    if (drv_pct_encode(&id, metric_id, false) < 0) {
        drv_buf_free(&id);
        return drv_err_set(err, DRV_E_PARSE, 0, NULL, NULL, "gnocchi: metric id too long");
    }
    snprintf(path, sizeof path, "/v1/metric/%s/measures?start=%s&stop=%s&granularity=%ld", id.p, t0,
             t1, gran);
    drv_buf_free(&id);
    json_t *arr;
    int rc = os_call(d, "GET", path, NULL, &arr, err);
    if (rc < 0) return rc;
    size_t n = json_array_size(arr);
    out->ts = calloc(n ? n : 1, sizeof *out->ts);
    out->v = calloc(n ? n : 1, sizeof *out->v);
    if (!out->ts || !out->v) {
        json_decref(arr);
        raw_free(out);
        return drv_err_set(err, -ENOMEM, 0, NULL, NULL, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *m = json_array_get(arr, i);
        int64_t t;
        double v;
        if (json_array_size(m) != 3 ||
            drv_parse_time(json_string_value(json_array_get(m, 0)), &t) < 0 ||
            !drv_json_num(json_array_get(m, 2), &v)) {
            json_decref(arr);
            raw_free(out);
            return drv_err_set(err, DRV_E_PARSE, 200, NULL, NULL,
                               "gnocchi measures %s: item %zu is not [time, granularity, value]",
                               metric_id, i);
        }
        out->ts[out->n] = t;
        out->v[out->n++] = v;
    }
    json_decref(arr);
    return 0;
}

/* Rates of a cumulative counter: (v[i] - v[i-1]) / (t[i] - t[i-1]) × scale,
 * stamped t[i] (the step that ends there), inside [from, to). Measures are
 * asked from one granularity before from, so the first point has a rate. */
static int push_rates(struct drv_series *s, const struct raw *r, double scale,
                      const struct drv_query *q)
{
    for (size_t i = 1; i < r->n; i++) {
        int64_t dt = r->ts[i] - r->ts[i - 1];
        double dv = r->v[i] - r->v[i - 1];
        if (dt <= 0 || dv < 0) continue; /* counter reset: no rate for this step */
        if (r->ts[i] < q->from || r->ts[i] >= q->to) continue;
        int rc = drv_series_push(s, r->ts[i], dv / (double)dt * scale);
        if (rc < 0) return rc;
    }
    return 0;
}

static int os_fetch(struct drv *d, const struct drv_query *q, struct drv_result *res,
                    struct drv_error *err)
{
    drv_result_init(res, "openstack");
    memset(err, 0, sizeof *err);
    const char *instance = q->instance ? q->instance : d->instance;
    if (!instance)
        return drv_err_set(err, DRV_E_CONFIG, 0, NULL, NULL,
                           "openstack: no server id in the query or the config");
    long gran = q->period_s > 0 ? q->period_s : 60;
    struct drv_buf b;
    drv_buf_init(&b, 0);
    int rc = 0;
    json_t *res_inst = NULL;

    if (q->metrics & (DRV_MASK(DRV_M_CPU) | DRV_MASK(DRV_M_MEM))) {
        drv_buf_adds(&b, "/v1/resource/instance/");
        drv_pct_encode(&b, instance, false);
        rc = os_call(d, "GET", drv_buf_str(&b), NULL, &res_inst, err);
        drv_buf_free(&b);
        if (rc < 0) return rc;
        const json_t *mets = json_object_get(res_inst, "metrics");
        const char *cpu = json_string_value(json_object_get(mets, "cpu"));
        const char *vc = json_string_value(json_object_get(mets, "vcpus"));
        const char *mu = json_string_value(json_object_get(mets, "memory.usage"));
        const char *mt = json_string_value(json_object_get(mets, "memory"));
        if ((q->metrics & DRV_MASK(DRV_M_CPU)) && cpu) {
            double vcpus = (double)d->vcpus;
            struct raw r, rv;
            if (vcpus <= 0 && vc && (rc = os_measures(d, vc, q, gran, &rv, err)) == 0) {
                if (rv.n) vcpus = rv.v[rv.n - 1];
                raw_free(&rv);
            }
            if (rc == 0 && vcpus <= 0) {
                struct drv_error me;
                drv_err_set(&me, DRV_E_NODATA, 0, NULL, NULL,
                            "openstack: vcpus of %s unknown (no \"vcpus\" meter): set \"vcpus\" in "
                            "the target",
                            instance);
                drv_result_metric_error(res, DRV_M_CPU, &me);
            } else if (rc == 0 && (rc = os_measures(d, cpu, q, gran, &r, err)) == 0) {
                struct drv_series *s = drv_result_series(res, DRV_M_CPU, NULL, NULL);
                rc = s ? push_rates(s, &r, 100.0 / 1e9 / vcpus, q) : -ENOMEM;
                raw_free(&r);
            }
        }
        if (rc == 0 && (q->metrics & DRV_MASK(DRV_M_MEM)) && mu && mt) {
            struct drv_raw_pair {
                struct raw u, t;
            } p;
            if ((rc = os_measures(d, mu, q, gran, &p.u, err)) == 0) {
                if ((rc = os_measures(d, mt, q, gran, &p.t, err)) == 0) {
                    struct drv_series *s = drv_result_series(res, DRV_M_MEM, NULL, NULL);
                    for (size_t i = 0, j = 0; s && i < p.u.n; i++) {
                        while (j < p.t.n && p.t.ts[j] < p.u.ts[i]) j++;
                        /* memory (the flavor's MB) changes only on resize: the latest known value applies. */
                        size_t k =
                            (j < p.t.n && p.t.ts[j] == p.u.ts[i]) ? j : (j > 0 ? j - 1 : p.t.n);
                        if (k >= p.t.n || p.t.v[k] <= 0 || p.u.ts[i] < q->from ||
                            p.u.ts[i] >= q->to)
                            continue;
                        if (drv_series_push(s, p.u.ts[i], p.u.v[i] / p.t.v[k] * 100.0) < 0) break;
                    }
                    raw_free(&p.t);
                }
                raw_free(&p.u);
            }
        }
        json_decref(res_inst);
        if (rc < 0)
            return rc < -4000 ? rc
                              : drv_err_set(err, rc, 0, NULL, NULL, "openstack: out of memory");
    }

    /* Per-device meters live on instance_disk / instance_network_interface resources. */
    static const struct {
        const char *rtype, *tag;
        enum drv_metric m;
        const char *meter;
        double scale;
    } dev[] = {
        {"instance_disk", "disk", DRV_M_KB_READ, "disk.device.read.bytes", 1.0 / 1024},
        {"instance_disk", "disk", DRV_M_KB_WRITTEN, "disk.device.write.bytes", 1.0 / 1024},
        {"instance_disk", "disk", DRV_M_OPS_READ, "disk.device.read.requests", 1},
        {"instance_disk", "disk", DRV_M_OPS_WRITE, "disk.device.write.requests", 1},
        {"instance_network_interface", "interface", DRV_M_BYTES_IN, "network.incoming.bytes", 1},
        {"instance_network_interface", "interface", DRV_M_BYTES_OUT, "network.outgoing.bytes", 1},
    };
    json_t *found[2] = {NULL, NULL};
    for (size_t i = 0; rc == 0 && i < sizeof dev / sizeof dev[0]; i++) {
        if (!(q->metrics & DRV_MASK(dev[i].m))) continue;
        int slot = strcmp(dev[i].rtype, "instance_disk") == 0 ? 0 : 1;
        if (!found[slot]) {
            json_t *filter = json_pack("{s:{s:s}}", "=", "instance_id", instance);
            char *fs = filter ? json_dumps(filter, JSON_COMPACT) : NULL;
            json_decref(filter);
            char path[128];
            snprintf(path, sizeof path, "/v1/search/resource/%s", dev[i].rtype);
            rc = fs ? os_call(d, "POST", path, fs, &found[slot], err) : -ENOMEM;
            free(fs);
            if (rc < 0) break;
        }
        size_t k;
        const json_t *r;
        json_array_foreach(found[slot], k, r)
        {
            const char *name = json_string_value(json_object_get(r, "name"));
            const char *mid =
                json_string_value(json_object_get(json_object_get(r, "metrics"), dev[i].meter));
            if (!mid) continue;
            struct raw raw;
            if ((rc = os_measures(d, mid, q, gran, &raw, err)) < 0) break;
            struct drv_series *s = drv_result_series(res, dev[i].m, dev[i].tag, name ? name : "");
            rc = s ? push_rates(s, &raw, dev[i].scale, q) : -ENOMEM;
            raw_free(&raw);
            if (rc < 0) break;
        }
    }
    json_decref(found[0]);
    json_decref(found[1]);
    if (rc < 0)
        return rc < -4000 ? rc : drv_err_set(err, rc, 0, NULL, NULL, "openstack: out of memory");
    drv_result_finish(res, q->metrics, DRV_MASK_ALL);
    return 0;
}

const struct drv_ops drv_openstack_ops = {"openstack", os_create, os_supports,
                                          os_fetch,    NULL,      os_destroy};
