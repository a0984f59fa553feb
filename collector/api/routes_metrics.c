/* /api/v1/ns/{ns}/mcis/{mcis}/vm/{vm}/metrics/{measurement} and .../latest. */
#include "api_int.h"
#include "config.h"
#include "pt/catalog.h"
#include "pt/err.h"
#include "pt/time.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_RANGE  (3600 * PT_NS_PER_SEC)
#define MAX_ROWS       100000
#define MAX_FIELDS_ARG 64

static bool names_ok(struct api_resp *rs, const char *ns, const char *mcis, const char *vm)
{
    const char *what[] = {"ns", "mcis", "vm"}, *val[] = {ns, mcis, vm};
    for (int i = 0; i < 3; i++)
        if (!coll_name_valid(val[i], strlen(val[i]))) {
            api_error(rs, 400, "bad_request", "invalid %s \"%.64s\"", what[i], val[i]);
            return false;
        }
    return true;
}

/* 404 unless an agent is registered under that name. Data of removed agents
 * stays queryable, so a non-empty result also counts. */
static bool vm_known(struct api_req *rq, const char *ns, const char *mcis, const char *vm)
{
    struct coll_agent_info info;
    return coll_registry_find_name(rq->ctx->reg, ns, mcis, vm, &info) == 0;
}

static json_t *tags_json(char **keys, char **vals, size_t n)
{
    json_t *t = json_object();
    for (size_t i = 0; t && i < n; i++) json_object_set_new(t, keys[i], json_string(vals[i]));
    return t;
}

/* A cell: null when absent; an integer where the stored type is an integer
 * and the aggregation keeps integers. */
static json_t *cell(double v, uint8_t ftype, enum store_agg agg)
{
    if (isnan(v)) return json_null();
    bool intlike = ftype == PT_F_UINT || ftype == PT_F_INT;
    if (agg == STORE_AGG_COUNT || (intlike && agg != STORE_AGG_AVG && agg != STORE_AGG_P95 &&
                                   v == floor(v) && fabs(v) < 9007199254740992.0))
        return json_integer((json_int_t)v);
    return json_real(v);
}

static json_t *series_json(const struct store_series *s, enum store_agg agg)
{
    json_t *cols = json_array(), *rows = json_array();
    json_array_append_new(cols, json_string("time"));
    for (size_t c = 0; c < s->nfields; c++) json_array_append_new(cols, json_string(s->fields[c]));
    for (size_t r = 0; r < s->nrows; r++) {
        json_t *row = json_array();
        json_array_append_new(row, api_time(s->ts[r]));
        for (size_t c = 0; c < s->nfields; c++)
            json_array_append_new(row, cell(s->vals[r * s->nfields + c], s->ftypes[c], agg));
        json_array_append_new(rows, row);
    }
    return json_pack("{s:s,s:o,s:o,s:o}", "measurement", s->measurement, "tags",
                     tags_json(s->tag_keys, s->tag_vals, s->ntags), "columns", cols, "values",
                     rows);
}

void api_vm_metrics(struct api_req *rq, struct api_resp *rs, const char *ns, const char *mcis,
                    const char *vm, const char *measurement)
{
    static const char *const allowed[] = {"fields", "from", "to", "step", "agg", NULL};
    if (!api_args_known(rq, rs, allowed) || !names_ok(rs, ns, mcis, vm)) return;
    if (!pt_wire_name_ok(measurement, strlen(measurement))) {
        api_error(rs, 400, "bad_request", "invalid measurement name");
        return;
    }
    int64_t now = pt_now_ns(), to = now, from, step = 0;
    const char *a_from = api_arg(rq, "from"), *a_to = api_arg(rq, "to"),
               *a_step = api_arg(rq, "step"), *a_agg = api_arg(rq, "agg"),
               *a_fields = api_arg(rq, "fields");
    if (a_to && pt_time_parse(a_to, now, &to)) {
        api_error(rs, 400, "bad_request",
                  "parameter \"to\": expected RFC 3339 time, Unix seconds, \"now\" or "
                  "\"now-1h\", got \"%.64s\"",
                  a_to);
        return;
    }
    from = to - DEFAULT_RANGE;
    if (a_from && pt_time_parse(a_from, now, &from)) {
        api_error(rs, 400, "bad_request",
                  "parameter \"from\": expected RFC 3339 time, Unix seconds, \"now\" or "
                  "\"now-1h\", got \"%.64s\"",
                  a_from);
        return;
    }
    if (from >= to) {
        api_error(rs, 400, "bad_request", "parameter \"from\" must be before \"to\"");
        return;
    }
    if (a_step && (pt_duration_parse(a_step, &step) || step < PT_NS_PER_MS)) {
        api_error(rs, 400, "bad_request",
                  "parameter \"step\": expected a duration of at least 1ms such as \"10s\" or "
                  "\"5m\", got \"%.64s\"",
                  a_step);
        return;
    }
    int agg = STORE_AGG_NONE;
    if (a_agg) {
        agg = store_agg_parse(a_agg);
        if (agg <= STORE_AGG_NONE) {
            api_error(rs, 400, "bad_request",
                      "parameter \"agg\": expected min, max, avg, last, sum, count or p95, got "
                      "\"%.32s\"",
                      a_agg);
            return;
        }
        if (!step) {
            api_error(rs, 400, "bad_request", "parameter \"agg\" needs \"step\" (e.g. step=1m)");
            return;
        }
    } else if (step) {
        agg = STORE_AGG_AVG;
    }
    char fbuf[2048];
    const char *fields[MAX_FIELDS_ARG];
    size_t nfields = 0;
    if (a_fields) {
        if (strlen(a_fields) >= sizeof fbuf) {
            api_error(rs, 400, "bad_request", "parameter \"fields\" is longer than %zu bytes",
                      sizeof fbuf - 1);
            return;
        }
        snprintf(fbuf, sizeof fbuf, "%s", a_fields);
        char *save = NULL;
        for (char *f = strtok_r(fbuf, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
            if (nfields == MAX_FIELDS_ARG || !pt_wire_name_ok(f, strlen(f))) {
                api_error(rs, 400, "bad_request",
                          "parameter \"fields\": a comma-separated list of at most %d field "
                          "names",
                          MAX_FIELDS_ARG);
                return;
            }
            fields[nfields++] = f;
        }
        if (!nfields) {
            api_error(rs, 400, "bad_request", "parameter \"fields\" is empty");
            return;
        }
    }
    struct store_query q = {
        .ns = ns,
        .mcis = mcis,
        .vm = vm,
        .measurement = measurement,
        .fields = nfields ? fields : NULL,
        .nfields = nfields,
        .from_ns = from,
        .to_ns = to,
        .step_ns = step,
        .agg = (enum store_agg)agg,
        .max_rows = MAX_ROWS,
    };
    struct store_result res = {0};
    int rc = rq->ctx->ops->query(rq->ctx->store, &q, &res);
    if (rc == -E2BIG) {
        api_error(rs, 400, "too_many_points",
                  "the range holds more than %d points per series; use a larger \"step\" or a "
                  "shorter range",
                  MAX_ROWS);
        return;
    }
    if (rc) {
        api_error(rs, 500, "internal", "query failed: %s", pt_strerror(rc));
        return;
    }
    if (res.nseries == 0 && !vm_known(rq, ns, mcis, vm)) {
        store_result_free(&res);
        api_error(rs, 404, "not_found", "no agent and no data for vm %s/%s/%s", ns, mcis, vm);
        return;
    }
    json_t *series = json_array();
    for (size_t i = 0; i < res.nseries; i++)
        json_array_append_new(series, series_json(&res.series[i], q.agg));
    store_result_free(&res);
    json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:o,s:o}", "ns", ns, "mcis", mcis, "vm", vm,
                          "measurement", measurement, "from", api_time(from), "to", api_time(to));
    if (j) {
        char sb[32];
        if (step) pt_duration_format(step, sb, sizeof sb);
        json_object_set_new(j, "step", step ? json_string(sb) : json_null());
        json_object_set_new(j, "agg", step ? json_string(store_agg_name(q.agg)) : json_null());
        json_object_set_new(j, "series", series);
    } else {
        json_decref(series);
    }
    api_json(rs, 200, j);
}

static json_t *field_json(const struct pt_field *f)
{
    switch (f->type) {
    case PT_F_FLOAT:
        return json_real(f->v.f);
    case PT_F_INT:
        return json_integer((json_int_t)f->v.i);
    case PT_F_UINT:
        return f->v.u <= INT64_MAX ? json_integer((json_int_t)f->v.u) : json_real((double)f->v.u);
    case PT_F_STR:
        return json_stringn(f->v.s.p, f->v.s.len);
    }
    return json_null();
}

void api_vm_latest(struct api_req *rq, struct api_resp *rs, const char *ns, const char *mcis,
                   const char *vm)
{
    static const char *const allowed[] = {"measurement", NULL};
    if (!api_args_known(rq, rs, allowed) || !names_ok(rs, ns, mcis, vm)) return;
    const char *meas = api_arg(rq, "measurement");
    struct store_result res = {0};
    int rc = rq->ctx->ops->latest(rq->ctx->store, ns, mcis, vm, meas, &res);
    if (rc) {
        api_error(rs, 500, "internal", "query failed: %s", pt_strerror(rc));
        return;
    }
    if (res.nlatest == 0 && !vm_known(rq, ns, mcis, vm)) {
        store_result_free(&res);
        api_error(rs, 404, "not_found", "no agent and no data for vm %s/%s/%s", ns, mcis, vm);
        return;
    }
    json_t *arr = json_array();
    int64_t newest = 0;
    for (size_t i = 0; i < res.nlatest; i++) {
        const struct store_latest *l = &res.latest[i];
        json_t *fields = json_object();
        for (size_t k = 0; k < l->nfields; k++) {
            char key[PT_WIRE_MAX_STR + 1];
            snprintf(key, sizeof key, "%.*s", (int)l->fields[k].key.len, l->fields[k].key.p);
            json_object_set_new(fields, key, field_json(&l->fields[k]));
        }
        json_t *m = json_pack("{s:s,s:o,s:o,s:o}", "name", l->measurement, "tags",
                              tags_json(l->tag_keys, l->tag_vals, l->ntags), "time",
                              api_time(l->ts_ns), "fields", fields);
        json_array_append_new(arr, m);
        if (l->ts_ns > newest) newest = l->ts_ns;
    }
    store_result_free(&res);
    api_json(rs, 200,
             json_pack("{s:s,s:s,s:s,s:o,s:o}", "ns", ns, "mcis", mcis, "vm", vm, "time",
                       api_time(newest), "measurements", arr));
}
