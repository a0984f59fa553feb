/* /api/v1/rules, /handlers, /silences, /alerts and /alerts/history: the
 * alerting API (docs/api.md, docs/alerting.md). The engine validates and
 * locks; these handlers map its results to HTTP. Dry runs read the metric
 * store and replay the values through the rule. */
#include "api_int.h"
#include "pt/err.h"
#include "pt/time.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DRY_DEFAULT_RANGE (3600 * PT_NS_PER_SEC)
#define DRY_MAX_ROWS      100000

static bool have_engine(struct api_req *rq, struct api_resp *rs)
{
    if (rq->ctx->alerts) return true;
    api_error(rs, 503, "alerting_disabled",
              "alerting is off in this collector (alerting.enabled in pantalad.json)");
    return false;
}

static bool have_body(struct api_req *rq, struct api_resp *rs, const char *what)
{
    if (rq->body_len) return true;
    api_error(rs, 400, "bad_request", "a JSON body (the %s) is required", what);
    return false;
}

/* Maps an engine result to a response; ok_status with out on success. */
static void result(struct api_resp *rs, int rc, int ok_status, json_t *out, const char *what,
                   const char *name, const char *err)
{
    switch (rc) {
    case 0:
        if (ok_status == 204) {
            json_decref(out);
            rs->status = 204;
        } else {
            api_json(rs, ok_status, out ? out : json_object());
        }
        return;
    case -EINVAL:
        api_error(rs, 400, "bad_request", "%s", err && err[0] ? err : "invalid request");
        return;
    case -ENOENT:
        api_error(rs, 404, "not_found", "no %s \"%.200s\"", what, name ? name : "");
        return;
    case -EEXIST:
    case -EBUSY:
        api_error(rs, 409, "conflict", "%s", err && err[0] ? err : "conflict");
        return;
    case -EPERM:
        api_error(rs, 403, "builtin",
                  "\"%.200s\" is a built-in rule: it is configured in pantalad.json "
                  "(alerting.*), not through the API",
                  name ? name : "");
        return;
    case -ENOSPC:
        api_error(rs, 409, "limit", "%s", err && err[0] ? err : "limit reached");
        return;
    default:
        api_error(rs, 500, "internal", "%s: %s", what, pt_strerror(rc));
    }
}

/* ---- rules --------------------------------------------------------------------------- */

void api_rules_collection(struct api_req *rq, struct api_resp *rs)
{
    if (!have_engine(rq, rs)) return;
    if (!strcmp(rq->method, "GET")) {
        api_json(rs, 200, json_pack("{s:o}", "rules", alert_rules_list(rq->ctx->alerts)));
        return;
    }
    if (!have_body(rq, rs, "rule")) return;
    char err[1024] = "";
    json_t *out = NULL;
    int rc =
        alert_rules_put(rq->ctx->alerts, rq->body, rq->body_len, NULL, true, &out, err, sizeof err);
    result(rs, rc, 201, out, "rule", NULL, err);
}

void api_rules_item(struct api_req *rq, struct api_resp *rs, const char *name)
{
    if (!have_engine(rq, rs)) return;
    struct alert_engine *e = rq->ctx->alerts;
    json_t *out = NULL;
    char err[1024] = "";
    int rc;
    if (!strcmp(rq->method, "GET")) {
        rc = alert_rules_get(e, name, &out);
        result(rs, rc, 200, out, "rule", name, NULL);
    } else if (!strcmp(rq->method, "DELETE")) {
        rc = alert_rules_delete(e, name);
        result(rs, rc, 204, NULL, "rule", name, NULL);
    } else {
        /* PUT replaces, or creates when absent (201). */
        if (!have_body(rq, rs, "rule")) return;
        rc = alert_rules_put(e, rq->body, rq->body_len, name, false, &out, err, sizeof err);
        int status = 200;
        if (rc == -ENOENT) {
            rc = alert_rules_put(e, rq->body, rq->body_len, name, true, &out, err, sizeof err);
            status = 201;
        }
        result(rs, rc, status, out, "rule", name, err);
    }
}

/* The series a dry run replays, and the results they point into. */
struct dry_data {
    struct store_result *res;
    size_t nres;
    struct alert_dry_series *s;
    size_t n, cap;
};

static void dry_free(struct dry_data *d)
{
    for (size_t i = 0; i < d->nres; i++) store_result_free(&d->res[i]);
    free(d->res);
    free(d->s);
    memset(d, 0, sizeof *d);
}

static bool series_has_tags(const struct store_series *s, const struct store_query *q)
{
    for (size_t f = 0; f < q->ntag_filters; f++) {
        bool hit = false;
        for (size_t t = 0; t < s->ntags && !hit; t++)
            hit =
                !strcmp(s->tag_keys[t], q->tag_keys[f]) && !strcmp(s->tag_vals[t], q->tag_vals[f]);
        if (!hit) return false;
    }
    return true;
}

/* Runs q (or, on a backend without MCIS-level queries or tag filters, one
 * query per registered VM of the MCIS, filtering tags here) into d. */
static int dry_query(struct api_req *rq, const struct store_query *q, struct dry_data *d)
{
    struct coll_agent_info *ag = NULL;
    size_t nag = 0;
    const char *one = q->vm;
    d->res = calloc(1, sizeof *d->res);
    if (!d->res) return -ENOMEM;
    int rc = rq->ctx->ops->query(rq->ctx->store, q, &d->res[0]);
    if (rc == -ENOTSUP) {
        free(d->res);
        d->res = NULL;
        if ((rc = coll_registry_list(rq->ctx->reg, &ag, &nag))) return rc;
        d->res = calloc(nag ? nag : 1, sizeof *d->res);
        if (!d->res) {
            free(ag);
            return -ENOMEM;
        }
        for (size_t i = 0; i < nag && !rc; i++) {
            if (strcmp(ag[i].ns, q->ns) || strcmp(ag[i].mcis, q->mcis) ||
                (one && strcmp(ag[i].vm, one)))
                continue;
            struct store_query vq = *q;
            vq.vm = ag[i].vm;
            vq.ntag_filters = 0;
            vq.group_by_vm = false;
            rc = rq->ctx->ops->query(rq->ctx->store, &vq, &d->res[d->nres]);
            if (!rc) {
                /* per-VM series do not name their VM */
                for (size_t k = 0; k < d->res[d->nres].nseries; k++)
                    if (!d->res[d->nres].series[k].vm)
                        d->res[d->nres].series[k].vm = strdup(ag[i].vm);
                d->nres++;
            }
        }
        free(ag);
    } else if (!rc) {
        d->nres = 1;
    }
    if (rc) return rc;
    for (size_t i = 0; i < d->nres; i++)
        for (size_t k = 0; k < d->res[i].nseries; k++) {
            const struct store_series *s = &d->res[i].series[k];
            if (s->nfields != 1 || !series_has_tags(s, q)) continue;
            if (d->n == d->cap) {
                size_t cap = d->cap ? d->cap * 2 : 16;
                struct alert_dry_series *ns = realloc(d->s, cap * sizeof *ns);
                if (!ns) return -ENOMEM;
                d->s = ns;
                d->cap = cap;
            }
            d->s[d->n++] = (struct alert_dry_series){s->vm ? s->vm : "",
                                                     (const char *const *)s->tag_keys,
                                                     (const char *const *)s->tag_vals,
                                                     s->ntags,
                                                     s->ts,
                                                     s->vals,
                                                     s->nrows};
        }
    return 0;
}

/* Reads the rule's metric from the store for [from, to) per VM, in buckets
 * of the rule's window (at least `step`), and replays them. */
void api_rules_dryrun(struct api_req *rq, struct api_resp *rs, const char *name)
{
    static const char *const allowed[] = {"from", "to", "step", NULL};
    if (!have_engine(rq, rs) || !api_args_known(rq, rs, allowed)) return;
    struct alert_rule *r = NULL;
    char err[1024] = "";
    int rc;
    if (name) {
        json_t *j;
        if ((rc = alert_rules_get(rq->ctx->alerts, name, &j))) {
            result(rs, rc, 200, NULL, "rule", name, NULL);
            return;
        }
        char *s = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        rc = s ? alert_rule_parse(NULL, s, strlen(s), &r, err, sizeof err) : -ENOMEM;
        free(s);
        if (rc) {
            api_error(rs, 400, "bad_request", "rule \"%.200s\" cannot be dry-run: %s", name,
                      err[0] ? err : "built-in rules watch the registry, not stored metrics");
            return;
        }
    } else {
        if (!have_body(rq, rs, "rule")) return;
        /* Handlers are not checked: nothing is notified by a dry run. */
        if ((rc = alert_rule_parse(NULL, rq->body, rq->body_len, &r, err, sizeof err))) {
            result(rs, rc, 200, NULL, "rule", NULL, err);
            return;
        }
    }
    int64_t now = pt_now_ns(), from = now - DRY_DEFAULT_RANGE, to = now, step = PT_NS_PER_SEC;
    const char *a;
    if ((a = api_arg(rq, "from")) && pt_time_parse(a, now, &from)) {
        api_error(rs, 400, "bad_request", "query parameter \"from\": expected a time");
        goto out;
    }
    if ((a = api_arg(rq, "to")) && pt_time_parse(a, now, &to)) {
        api_error(rs, 400, "bad_request", "query parameter \"to\": expected a time");
        goto out;
    }
    if ((a = api_arg(rq, "step")) && (pt_duration_parse(a, &step) || step < PT_NS_PER_MS)) {
        api_error(rs, 400, "bad_request", "query parameter \"step\": expected a duration >= 1ms");
        goto out;
    }
    if (from >= to) {
        api_error(rs, 400, "bad_request", "\"from\" must be before \"to\"");
        goto out;
    }
    struct alert_rule_scope sc;
    alert_rule_scope(r, &sc);
    if (sc.window_ns > step) step = sc.window_ns;
    const char *fields[1] = {sc.field};
    struct store_query q = {
        .ns = sc.ns,
        .mcis = sc.mcis,
        .vm = sc.vm,
        .measurement = sc.measurement,
        .fields = fields,
        .nfields = 1,
        .tag_keys = sc.tag_keys,
        .tag_vals = sc.tag_vals,
        .ntag_filters = sc.ntags,
        .from_ns = from,
        .to_ns = to,
        .step_ns = step,
        .agg = STORE_AGG_AVG,
        .group_by_vm = sc.vm == NULL,
        .max_rows = DRY_MAX_ROWS,
    };
    struct dry_data dd = {0};
    rc = dry_query(rq, &q, &dd);
    if (rc) dry_free(&dd);
    if (rc == -E2BIG) {
        api_error(rs, 400, "too_large", "more than %d buckets per VM: narrow from/to or raise step",
                  DRY_MAX_ROWS);
        goto out;
    }
    if (rc) {
        api_error(rs, rc == -EINVAL ? 400 : 500, rc == -EINVAL ? "bad_request" : "internal",
                  "store query failed: %s", pt_strerror(rc));
        goto out;
    }
    json_t *j = alert_dryrun(r, dd.s, dd.n);
    dry_free(&dd);
    if (!j) {
        api_error(rs, 500, "internal", "out of memory");
        goto out;
    }
    json_object_set_new(j, "rule", alert_rule_json(r));
    json_object_set_new(j, "from", api_time(from));
    json_object_set_new(j, "to", api_time(to));
    char b[32];
    pt_duration_format(step, b, sizeof b);
    json_object_set_new(j, "step", json_string(b));
    api_json(rs, 200, j);
out:
    alert_rule_free(r);
}

/* ---- handlers ------------------------------------------------------------------------- */

void api_handlers_collection(struct api_req *rq, struct api_resp *rs)
{
    if (!have_engine(rq, rs)) return;
    if (!strcmp(rq->method, "GET")) {
        api_json(rs, 200, json_pack("{s:o}", "handlers", alert_handlers_list(rq->ctx->alerts)));
        return;
    }
    if (!have_body(rq, rs, "handler")) return;
    char err[1024] = "";
    json_t *out = NULL;
    int rc = alert_handlers_put(rq->ctx->alerts, rq->body, rq->body_len, NULL, true, &out, err,
                                sizeof err);
    result(rs, rc, 201, out, "handler", NULL, err);
}

void api_handlers_item(struct api_req *rq, struct api_resp *rs, const char *name)
{
    if (!have_engine(rq, rs)) return;
    struct alert_engine *e = rq->ctx->alerts;
    json_t *out = NULL;
    char err[1024] = "";
    int rc;
    if (!strcmp(rq->method, "GET")) {
        rc = alert_handlers_get(e, name, &out);
        result(rs, rc, 200, out, "handler", name, NULL);
    } else if (!strcmp(rq->method, "DELETE")) {
        rc = alert_handlers_delete(e, name, err, sizeof err);
        result(rs, rc, 204, NULL, "handler", name, err);
    } else {
        if (!have_body(rq, rs, "handler")) return;
        rc = alert_handlers_put(e, rq->body, rq->body_len, name, false, &out, err, sizeof err);
        int status = 200;
        if (rc == -ENOENT) {
            rc = alert_handlers_put(e, rq->body, rq->body_len, name, true, &out, err, sizeof err);
            status = 201;
        }
        result(rs, rc, status, out, "handler", name, err);
    }
}

/* ---- silences ------------------------------------------------------------------------- */

void api_silences_collection(struct api_req *rq, struct api_resp *rs)
{
    if (!have_engine(rq, rs)) return;
    int64_t now = pt_now_ns();
    if (!strcmp(rq->method, "GET")) {
        api_json(rs, 200,
                 json_pack("{s:o}", "silences", alert_silences_list(rq->ctx->alerts, now)));
        return;
    }
    if (!have_body(rq, rs, "silence")) return;
    char err[1024] = "";
    json_t *out = NULL;
    int rc =
        alert_silences_add(rq->ctx->alerts, rq->body, rq->body_len, now, &out, err, sizeof err);
    result(rs, rc, 201, out, "silence", NULL, err);
}

void api_silences_item(struct api_req *rq, struct api_resp *rs, const char *ids)
{
    if (!have_engine(rq, rs)) return;
    char *end;
    long long id = strtoll(ids, &end, 10);
    if (*end || id <= 0) {
        api_error(rs, 400, "bad_request", "a silence id is a positive integer, got \"%.64s\"", ids);
        return;
    }
    json_t *out = NULL;
    int rc;
    if (!strcmp(rq->method, "GET")) {
        rc = alert_silences_get(rq->ctx->alerts, id, pt_now_ns(), &out);
        result(rs, rc, 200, out, "silence", ids, NULL);
    } else {
        rc = alert_silences_delete(rq->ctx->alerts, id);
        result(rs, rc, 204, NULL, "silence", ids, NULL);
    }
}

/* ---- alerts ------------------------------------------------------------------------------ */

void api_alerts_active(struct api_req *rq, struct api_resp *rs)
{
    static const char *const allowed[] = {NULL};
    if (!have_engine(rq, rs) || !api_args_known(rq, rs, allowed)) return;
    api_json(rs, 200, json_pack("{s:o}", "alerts", alert_active(rq->ctx->alerts)));
}

void api_alerts_history(struct api_req *rq, struct api_resp *rs)
{
    static const char *const allowed[] = {"rule", "level", "from", "to", "limit", NULL};
    if (!have_engine(rq, rs) || !api_args_known(rq, rs, allowed)) return;
    struct alert_history_query q = {.rule = api_arg(rq, "rule"), .level = -1};
    int64_t now = pt_now_ns();
    const char *a;
    if ((a = api_arg(rq, "level"))) {
        if (!strcmp(a, "warning"))
            q.level = ALERT_WARNING;
        else if (!strcmp(a, "critical"))
            q.level = ALERT_CRITICAL;
        else {
            api_error(rs, 400, "bad_request",
                      "query parameter \"level\": expected \"warning\" or \"critical\"");
            return;
        }
    }
    if ((a = api_arg(rq, "from")) && pt_time_parse(a, now, &q.from_ns)) {
        api_error(rs, 400, "bad_request", "query parameter \"from\": expected a time");
        return;
    }
    if ((a = api_arg(rq, "to")) && pt_time_parse(a, now, &q.to_ns)) {
        api_error(rs, 400, "bad_request", "query parameter \"to\": expected a time");
        return;
    }
    if ((a = api_arg(rq, "limit"))) {
        char *end;
        long long n = strtoll(a, &end, 10);
        if (*end || n < 1 || n > 10000) {
            api_error(rs, 400, "bad_request", "query parameter \"limit\": 1 to 10000");
            return;
        }
        q.limit = (size_t)n;
    }
    json_t *out;
    int rc = alert_history(rq->ctx->alerts, &q, &out);
    if (rc) {
        api_error(rs, 500, "internal", "history: %s", pt_strerror(rc));
        return;
    }
    api_json(rs, 200, json_pack("{s:o}", "events", out));
}
