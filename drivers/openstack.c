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
DRV_ENV_FIRST(struct drv);

extern const struct drv_ops drv_openstack_ops;

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

/* ---- Keystone: the token and the Gnocchi endpoint ---------------------- */

/* The URL of the "metric" service's endpoint of our interface (and region)
 * in the token's catalog, malloc'ed; NULL when there is none. */
static char *os_catalog_gnocchi(const struct drv *d, const json_t *tok)
{
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
            return strdup(u);
        }
    }
    return NULL;
}

/* Builds the password authentication request (POST /v3/auth/tokens). */
static int os_send_auth(struct drv *d, struct drv_call *c)
{
    drv_call_req(c, "POST", d->timeout_ms);
    c->body_secret = true; /* holds the password */
    int rc = drv_buf_addf(&c->url, "%s/auth/tokens", d->auth_url);
    if (rc == 0)
        rc = drv_buf_add_json(
            &c->body,
            json_pack("{s:{s:{s:[s], s:{s:{s:s, s:{s:s}, s:s}}}, s:{s:{s:s, s:{s:s}}}}}", "auth",
                      "identity", "methods", "password", "password", "user", "name", d->user,
                      "domain", "name", d->user_domain, "password", d->password, "scope", "project",
                      "name", d->project, "domain", "name", d->project_domain));
    if (rc == 0) rc = drv_call_header(c, "Content-Type: application/json");
    return drv_call_send(c, rc, "keystone auth");
}

/* Keystone's answer: the token (X-Subject-Token), its expiry and the
 * Gnocchi endpoint (the "endpoint" key, else the catalog's) into d. */
static int os_take_auth(struct drv *d, struct drv_call *c, const struct drv_http_resp *resp)
{
    struct drv_error *err = &c->err;
    if (resp->status != 201 && resp->status != 200) return os_error(d, resp, "keystone auth", err);
    char token[2048];
    if (drv_http_resp_header(resp, "X-Subject-Token", token, sizeof token) < 0)
        return drv_err_set(err, DRV_E_PARSE, (int)resp->status, NULL, NULL,
                           "keystone auth: no X-Subject-Token header in the answer");
    json_t *root;
    int rc = drv_json_body(resp, &root, "keystone auth", err);
    if (rc < 0) return rc;
    const json_t *tok = json_object_get(root, "token");
    int64_t exp;
    if (drv_parse_time(json_string_value(json_object_get(tok, "expires_at")), &exp) < 0)
        exp = drv_now_ms(&d->env) / 1000 + 3600;
    char *found = d->endpoint ? strdup(d->endpoint) : os_catalog_gnocchi(d, tok);
    json_decref(root);
    if (!found && !d->endpoint)
        return drv_err_set(
            err, DRV_E_NOTFOUND, (int)resp->status, NULL, NULL,
            "keystone catalog has no \"metric\" (Gnocchi) endpoint for interface %s%s%s",
            d->interface, d->region ? " in region " : "", d->region ? d->region : "");
    free(d->gnocchi);
    free(d->token);
    d->gnocchi = found;
    d->token = strdup(token);
    memset(token, 0, sizeof token);
    if (!d->gnocchi || !d->token) {
        /* Both or neither: a token without an endpoint would be used. */
        free(d->gnocchi);
        free(d->token);
        d->gnocchi = d->token = NULL;
        return drv_err_set(err, -ENOMEM, 0, NULL, NULL, "out of memory");
    }
    drv_trim_slash(d->gnocchi);
    d->token_expires_ms = exp * 1000;
    return 0;
}

/* ---- One fetch: the Gnocchi requests it makes ----------------------------
 *
 * c->stage is the Gnocchi request whose answer is awaited; before each, a
 * missing or expiring token is renewed (f->authing while Keystone's answer
 * is awaited), and a 401 drops the token and asks once more with a fresh
 * one (c->attempt). The per-device meters go through os_dev[] (c->index). */
enum os_stage {
    OS_START,        /* nothing asked yet */
    OS_INSTANCE,     /* GET the instance resource: its metric ids */
    OS_VCPUS,        /* measures of "vcpus" (when the config has no "vcpus") */
    OS_CPU,          /* measures of "cpu" */
    OS_MEM_USAGE,    /* measures of "memory.usage" */
    OS_MEM_TOTAL,    /* measures of "memory" */
    OS_DEV_SEARCH,   /* search the instance's resources of os_dev[c->index] */
    OS_DEV_MEASURES, /* measures of that meter on resource f->k of them */
};

/* Per-device meters live on instance_disk / instance_network_interface resources. */
static const struct {
    const char *rtype, *tag;
    enum drv_metric m;
    const char *meter;
    double scale;
} os_dev[] = {
    {"instance_disk", "disk", DRV_M_KB_READ, "disk.device.read.bytes", 1.0 / 1024},
    {"instance_disk", "disk", DRV_M_KB_WRITTEN, "disk.device.write.bytes", 1.0 / 1024},
    {"instance_disk", "disk", DRV_M_OPS_READ, "disk.device.read.requests", 1},
    {"instance_disk", "disk", DRV_M_OPS_WRITE, "disk.device.write.requests", 1},
    {"instance_network_interface", "interface", DRV_M_BYTES_IN, "network.incoming.bytes", 1},
    {"instance_network_interface", "interface", DRV_M_BYTES_OUT, "network.outgoing.bytes", 1},
};
#define OS_NDEV (sizeof os_dev / sizeof os_dev[0])

/* The search results of os_dev[i]'s resource type: 0 disks, 1 interfaces. */
static int os_dev_slot(size_t i)
{
    return strcmp(os_dev[i].rtype, "instance_disk") == 0 ? 0 : 1;
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

/* What a fetch keeps between its steps (c->priv). */
struct os_fetch {
    bool authing;       /* Keystone's answer is awaited */
    const char *method; /* the Gnocchi request to send, once there is a token */
    struct drv_buf path, body;
    const char *metric_id; /* of a measures request; points into inst or found */
    json_t *inst;          /* the instance resource */
    json_t *found[2];      /* its disks and its network interfaces (os_dev_slot) */
    size_t k;              /* the resource of found[] asked for */
    double vcpus;
    struct raw mem_usage; /* "memory.usage", until "memory" arrives */
};

static void os_fetch_free(void *priv)
{
    struct os_fetch *f = priv;
    if (!f) return;
    drv_buf_free(&f->path);
    drv_buf_free(&f->body);
    json_decref(f->inst);
    json_decref(f->found[0]);
    json_decref(f->found[1]);
    raw_free(&f->mem_usage);
    free(f);
}

/* Builds the pending Gnocchi request with the token, or the Keystone
 * request first when there is no token or it expires within 5 minutes. */
static int os_send_gnocchi(struct drv *d, struct drv_call *c)
{
    struct os_fetch *f = c->priv;
    if (!d->token || drv_now_ms(&d->env) >= d->token_expires_ms - 300000) {
        f->authing = true;
        return os_send_auth(d, c);
    }
    drv_call_req(c, f->method, d->timeout_ms);
    int rc = drv_buf_addf(&c->url, "%s%s", d->gnocchi, drv_buf_str(&f->path));
    if (rc == 0 && f->body.len) rc = drv_buf_add(&c->body, f->body.p, f->body.len);
    if (rc == 0) rc = drv_call_header(c, "X-Auth-Token: %s", d->token);
    if (rc == 0) rc = drv_call_header(c, "Content-Type: application/json");
    if (rc == 0) rc = drv_call_header(c, "Accept: application/json");
    return drv_call_send(c, rc, "gnocchi");
}

/* Starts a Gnocchi request: empties the pending path and body. */
static void os_request(struct os_fetch *f, const char *method)
{
    f->method = method;
    f->path.len = f->body.len = 0;
}

/* Asks the pending request (rc: how building its path and body went) as stage. */
static int os_ask(struct drv *d, struct drv_call *c, enum os_stage stage, int rc)
{
    if (rc < 0) return drv_err_set(&c->err, rc, 0, NULL, NULL, "gnocchi: request too large");
    c->stage = stage;
    c->attempt = 0;
    return os_send_gnocchi(d, c);
}

static int os_ask_instance(struct drv *d, struct drv_call *c, const char *instance)
{
    struct os_fetch *f = c->priv;
    os_request(f, "GET");
    int rc = drv_buf_adds(&f->path, "/v1/resource/instance/");
    if (rc == 0) rc = drv_pct_encode(&f->path, instance, false);
    return os_ask(d, c, OS_INSTANCE, rc);
}

/* Measures of metric_id over the query's range at c->period granularity,
 * from one granularity earlier, so the first period has a predecessor to
 * diff against. */
static int os_ask_measures(struct drv *d, struct drv_call *c, enum os_stage stage,
                           const char *metric_id)
{
    struct os_fetch *f = c->priv;
    char t0[32], t1[32];
    drv_fmt_time(c->q.from - c->period, "%Y-%m-%dT%H:%M:%SZ", t0, sizeof t0);
    drv_fmt_time(c->q.to, "%Y-%m-%dT%H:%M:%SZ", t1, sizeof t1);
    f->metric_id = metric_id;
    os_request(f, "GET");
    int rc = drv_buf_adds(&f->path, "/v1/metric/");
    if (rc == 0) rc = drv_pct_encode(&f->path, metric_id, false);
    if (rc == 0)
        rc =
            drv_buf_addf(&f->path, "/measures?start=%s&stop=%s&granularity=%ld", t0, t1, c->period);
    return os_ask(d, c, stage, rc);
}

/* The instance's resources of os_dev[c->index]'s type. */
static int os_ask_search(struct drv *d, struct drv_call *c, const char *instance)
{
    struct os_fetch *f = c->priv;
    os_request(f, "POST");
    int rc = drv_buf_addf(&f->path, "/v1/search/resource/%s", os_dev[c->index].rtype);
    if (rc == 0)
        rc = drv_buf_add_json(&f->body, json_pack("{s:{s:s}}", "=", "instance_id", instance));
    return os_ask(d, c, OS_DEV_SEARCH, rc);
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

/* Measures [[time, granularity, value], ...] of f->metric_id into out. */
static int os_raw_parse(const json_t *arr, const char *metric_id, struct raw *out,
                        struct drv_error *err)
{
    memset(out, 0, sizeof *out);
    size_t n = json_array_size(arr);
    out->ts = calloc(n ? n : 1, sizeof *out->ts);
    out->v = calloc(n ? n : 1, sizeof *out->v);
    if (!out->ts || !out->v) {
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
            raw_free(out);
            return drv_err_set(err, DRV_E_PARSE, 200, NULL, NULL,
                               "gnocchi measures %s: item %zu is not [time, granularity, value]",
                               metric_id, i);
        }
        out->ts[out->n] = t;
        out->v[out->n++] = v;
    }
    return 0;
}

/* memory.usage / memory × 100 at each usage point. memory (the flavor's
 * MB) changes only on resize: the latest known value applies. */
static int push_mem(struct drv_series *s, const struct raw *u, const struct raw *t,
                    const struct drv_query *q)
{
    for (size_t i = 0, j = 0; i < u->n; i++) {
        while (j < t->n && t->ts[j] < u->ts[i]) j++;
        size_t k = (j < t->n && t->ts[j] == u->ts[i]) ? j : (j > 0 ? j - 1 : t->n);
        if (k >= t->n || t->v[k] <= 0 || u->ts[i] < q->from || u->ts[i] >= q->to) continue;
        int rc = drv_series_push(s, u->ts[i], u->v[i] / t->v[k] * 100.0);
        if (rc < 0) return rc;
    }
    return 0;
}

/* The measures answered for c->stage into c->res (or kept in f); takes r. */
static int os_take_measures(struct drv_call *c, struct raw *r)
{
    struct os_fetch *f = c->priv;
    struct drv_series *s;
    int rc = 0;
    switch (c->stage) {
    case OS_VCPUS:
        if (r->n) f->vcpus = r->v[r->n - 1];
        break;
    case OS_CPU: /* cumulative ns of all vCPUs → % */
        s = drv_result_series(&c->res, DRV_M_CPU, NULL, NULL);
        rc = s ? push_rates(s, r, 100.0 / 1e9 / f->vcpus, &c->q) : -ENOMEM;
        break;
    case OS_MEM_USAGE:
        f->mem_usage = *r;
        return 0;
    case OS_MEM_TOTAL:
        s = drv_result_series(&c->res, DRV_M_MEM, NULL, NULL);
        rc = s ? push_mem(s, &f->mem_usage, r, &c->q) : -ENOMEM;
        raw_free(&f->mem_usage);
        break;
    default: { /* OS_DEV_MEASURES: a device's counter, tagged with its name */
        const json_t *res = json_array_get(f->found[os_dev_slot(c->index)], f->k++);
        const char *name = json_string_value(json_object_get(res, "name"));
        s = drv_result_series(&c->res, os_dev[c->index].m, os_dev[c->index].tag, name ? name : "");
        rc = s ? push_rates(s, r, os_dev[c->index].scale, &c->q) : -ENOMEM;
        break;
    }
    }
    raw_free(r);
    return rc < 0 ? drv_err_set(&c->err, rc, 0, NULL, NULL, "openstack: out of memory") : 0;
}

/* Gnocchi's answer to c->stage. */
static int os_take(struct drv *d, struct drv_call *c, const struct drv_http_resp *resp)
{
    struct os_fetch *f = c->priv;
    if (resp->status != 200) return os_error(d, resp, "gnocchi", &c->err);
    json_t *j;
    int rc = drv_json_body(resp, &j, "gnocchi", &c->err);
    if (rc < 0) return rc;
    if (c->stage == OS_INSTANCE) {
        f->inst = j;
        return 0;
    }
    if (c->stage == OS_DEV_SEARCH) {
        f->found[os_dev_slot(c->index)] = j;
        f->k = 0;
        return 0;
    }
    struct raw r;
    rc = os_raw_parse(j, f->metric_id, &r, &c->err);
    json_decref(j);
    return rc < 0 ? rc : os_take_measures(c, &r);
}

/* The next device meter to ask for from os_dev[c->index], resource f->k,
 * on; finishes when none is left. */
static int os_next_device(struct drv *d, struct drv_call *c, const char *instance)
{
    struct os_fetch *f = c->priv;
    for (; c->index < (int)OS_NDEV; c->index++, f->k = 0) {
        if (!(c->q.metrics & DRV_MASK(os_dev[c->index].m))) continue;
        const json_t *found = f->found[os_dev_slot(c->index)];
        if (!found) return os_ask_search(d, c, instance);
        for (; f->k < json_array_size(found); f->k++) {
            const json_t *mets = json_object_get(json_array_get(found, f->k), "metrics");
            const char *mid = json_string_value(json_object_get(mets, os_dev[c->index].meter));
            if (mid) return os_ask_measures(d, c, OS_DEV_MEASURES, mid);
        }
    }
    drv_result_finish(&c->res, c->q.metrics, DRV_MASK_ALL);
    return 0;
}

/* The request after c->stage: the instance's own meters (cpu, memory),
 * then the devices'. */
static int os_next(struct drv *d, struct drv_call *c, const char *instance)
{
    struct os_fetch *f = c->priv;
    const json_t *mets = json_object_get(f->inst, "metrics");
    const char *cpu = json_string_value(json_object_get(mets, "cpu"));
    const char *vc = json_string_value(json_object_get(mets, "vcpus"));
    const char *mu = json_string_value(json_object_get(mets, "memory.usage"));
    const char *mt = json_string_value(json_object_get(mets, "memory"));
    bool want_cpu = (c->q.metrics & DRV_MASK(DRV_M_CPU)) && cpu;
    bool want_mem = (c->q.metrics & DRV_MASK(DRV_M_MEM)) && mu && mt;
    switch (c->stage) {
    case OS_START:
        if (c->q.metrics & (DRV_MASK(DRV_M_CPU) | DRV_MASK(DRV_M_MEM)))
            return os_ask_instance(d, c, instance);
        break;
    case OS_INSTANCE:
        f->vcpus = (double)d->vcpus;
        if (want_cpu && f->vcpus <= 0 && vc) return os_ask_measures(d, c, OS_VCPUS, vc);
        /* fall through */
    case OS_VCPUS:
        if (want_cpu && f->vcpus > 0) return os_ask_measures(d, c, OS_CPU, cpu);
        if (want_cpu) {
            struct drv_error me;
            drv_err_set(&me, DRV_E_NODATA, 0, NULL, NULL,
                        "openstack: vcpus of %s unknown (no \"vcpus\" meter): set \"vcpus\" in "
                        "the target",
                        instance);
            drv_result_metric_error(&c->res, DRV_M_CPU, &me);
        }
        /* fall through */
    case OS_CPU:
        if (want_mem) return os_ask_measures(d, c, OS_MEM_USAGE, mu);
        break;
    case OS_MEM_USAGE:
        return os_ask_measures(d, c, OS_MEM_TOTAL, mt);
    default: /* OS_MEM_TOTAL and the devices' stages */
        break;
    }
    return os_next_device(d, c, instance);
}

static int os_step(struct drv *d, struct drv_call *c, const struct drv_http_resp *resp)
{
    const char *instance = c->q.instance ? c->q.instance : d->instance;
    if (!instance)
        return drv_err_set(&c->err, DRV_E_CONFIG, 0, NULL, NULL,
                           "openstack: no server id in the query or the config");
    struct os_fetch *f = c->priv;
    if (!resp) {
        if (!(f = calloc(1, sizeof *f)))
            return drv_err_set(&c->err, -ENOMEM, 0, NULL, NULL, "out of memory");
        drv_buf_init(&f->path, 0);
        drv_buf_init(&f->body, 0);
        c->priv = f;
        c->priv_free = os_fetch_free;
        c->period = c->q.period_s > 0 ? c->q.period_s : 60; /* the granularity */
        c->stage = OS_START;
        return os_next(d, c, instance);
    }
    int rc;
    if (f->authing) {
        f->authing = false;
        if ((rc = os_take_auth(d, c, resp)) < 0) return rc;
        return os_send_gnocchi(d, c);
    }
    if (resp->status == 401 && c->attempt == 0) {
        /* Revoked or expired early: once more, with a fresh token. */
        free(d->token);
        d->token = NULL;
        c->attempt = 1;
        return os_send_gnocchi(d, c);
    }
    if ((rc = os_take(d, c, resp)) < 0) return rc;
    return os_next(d, c, instance);
}

static int os_fetch(struct drv *d, const struct drv_query *q, struct drv_result *res,
                    struct drv_error *err)
{
    return drv_fetch_steps(&drv_openstack_ops, d, q, res, err);
}

const struct drv_ops drv_openstack_ops = {"openstack", os_create, os_supports,
                                          os_fetch,    os_step,   os_destroy};
