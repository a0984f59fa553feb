/* Metric reads: /api/v1/ns/{ns}/mcis/{mcis}/vm/{vm}/metrics/{measurement}
 * and .../vm/{vm}/latest per VM; /api/v1/ns/{ns}/mcis/{mcis}/metrics/
 * {measurement} and .../mcis/{mcis}/latest for a whole MCIS (docs/api.md). */
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
#define MAX_TAG_ARGS   PT_WIRE_MAX_TAGS
/* The bucket of an across-VM aggregate when the request names none. */
#define DEFAULT_MCIS_STEP (60 * PT_NS_PER_SEC)

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

/* The query parameters shared by the per-VM and the MCIS-level routes. */
struct qargs {
    int64_t from, to, step;
    int agg;
    char fbuf[2048];
    const char *fields[MAX_FIELDS_ARG];
    size_t nfields;
    char tbuf[MAX_TAG_ARGS][2 * PT_WIRE_MAX_STR + 2];
    const char *tkeys[MAX_TAG_ARGS], *tvals[MAX_TAG_ARGS];
    size_t ntags;
    const char *bad_tag; /* a tag= value that is not k:v */
};

/* Collects every tag=k:v parameter (the parameter may repeat). */
static enum MHD_Result tag_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    struct qargs *a = cls;
    (void)kind;
    if (strcmp(key, "tag") != 0) return MHD_YES;
    const char *colon = value ? strchr(value, ':') : NULL;
    if (!colon || a->ntags == MAX_TAG_ARGS || strlen(value) >= sizeof a->tbuf[0]) {
        a->bad_tag = value ? value : "";
        return MHD_NO;
    }
    char *t = a->tbuf[a->ntags];
    snprintf(t, sizeof a->tbuf[0], "%s", value);
    t[colon - value] = '\0';
    const char *k = t, *v = t + (colon - value) + 1;
    if (!pt_wire_name_ok(k, strlen(k)) || !pt_wire_name_ok(v, strlen(v))) {
        a->bad_tag = value;
        return MHD_NO;
    }
    a->tkeys[a->ntags] = k;
    a->tvals[a->ntags] = v;
    a->ntags++;
    return MHD_YES;
}

/* Parses fields, from, to, step, agg and tag; on a bad one sets a 400
 * naming it and returns false. */
static bool qargs_parse(struct api_req *rq, struct api_resp *rs, struct qargs *qa)
{
    int64_t now = pt_now_ns();
    qa->to = now;
    qa->step = 0;
    const char *a_from = api_arg(rq, "from"), *a_to = api_arg(rq, "to"),
               *a_step = api_arg(rq, "step"), *a_agg = api_arg(rq, "agg"),
               *a_fields = api_arg(rq, "fields");
    if (a_to && pt_time_parse(a_to, now, &qa->to)) {
        api_error(rs, 400, "bad_request",
                  "parameter \"to\": expected RFC 3339 time, Unix seconds, \"now\" or "
                  "\"now-1h\", got \"%.64s\"",
                  a_to);
        return false;
    }
    qa->from = qa->to - DEFAULT_RANGE;
    if (a_from && pt_time_parse(a_from, now, &qa->from)) {
        api_error(rs, 400, "bad_request",
                  "parameter \"from\": expected RFC 3339 time, Unix seconds, \"now\" or "
                  "\"now-1h\", got \"%.64s\"",
                  a_from);
        return false;
    }
    if (qa->from >= qa->to) {
        api_error(rs, 400, "bad_request", "parameter \"from\" must be before \"to\"");
        return false;
    }
    if (a_step && (pt_duration_parse(a_step, &qa->step) || qa->step < PT_NS_PER_MS)) {
        api_error(rs, 400, "bad_request",
                  "parameter \"step\": expected a duration of at least 1ms such as \"10s\" or "
                  "\"5m\", got \"%.64s\"",
                  a_step);
        return false;
    }
    qa->agg = STORE_AGG_NONE;
    if (a_agg) {
        qa->agg = store_agg_parse(a_agg);
        if (qa->agg <= STORE_AGG_NONE) {
            api_error(rs, 400, "bad_request",
                      "parameter \"agg\": expected min, max, avg, last, sum, count or p95, got "
                      "\"%.32s\"",
                      a_agg);
            return false;
        }
        if (!qa->step) {
            api_error(rs, 400, "bad_request", "parameter \"agg\" needs \"step\" (e.g. step=1m)");
            return false;
        }
    } else if (qa->step) {
        qa->agg = STORE_AGG_AVG;
    }
    qa->nfields = 0;
    if (a_fields) {
        if (strlen(a_fields) >= sizeof qa->fbuf) {
            api_error(rs, 400, "bad_request", "parameter \"fields\" is longer than %zu bytes",
                      sizeof qa->fbuf - 1);
            return false;
        }
        snprintf(qa->fbuf, sizeof qa->fbuf, "%s", a_fields);
        char *save = NULL;
        for (char *f = strtok_r(qa->fbuf, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
            if (qa->nfields == MAX_FIELDS_ARG || !pt_wire_name_ok(f, strlen(f))) {
                api_error(rs, 400, "bad_request",
                          "parameter \"fields\": a comma-separated list of at most %d field "
                          "names",
                          MAX_FIELDS_ARG);
                return false;
            }
            qa->fields[qa->nfields++] = f;
        }
        if (!qa->nfields) {
            api_error(rs, 400, "bad_request", "parameter \"fields\" is empty");
            return false;
        }
    }
    qa->ntags = 0;
    qa->bad_tag = NULL;
    MHD_get_connection_values(rq->conn, MHD_GET_ARGUMENT_KIND, tag_arg, qa);
    if (qa->bad_tag) {
        api_error(rs, 400, "bad_request",
                  "parameter \"tag\": expected key:value (at most %d, e.g. tag=device:total), "
                  "got \"%.64s\"",
                  MAX_TAG_ARGS, qa->bad_tag);
        return false;
    }
    return true;
}

/* Runs q; on failure sets the error response and returns false. */
static bool run_query(struct api_req *rq, struct api_resp *rs, const struct store_query *q,
                      struct store_result *res)
{
    int rc = rq->ctx->ops->query(rq->ctx->store, q, res);
    if (rc == -E2BIG) {
        api_error(rs, 400, "too_many_points",
                  "the range holds more than %d points per series; use a larger \"step\" or a "
                  "shorter range",
                  MAX_ROWS);
        return false;
    }
    if (rc) {
        api_error(rs, 500, "internal", "query failed: %s", pt_strerror(rc));
        return false;
    }
    return true;
}

/* The common members of a range answer: from, to, step, agg, series. */
static json_t *range_json(json_t *j, const struct qargs *qa, enum store_agg agg, json_t *series)
{
    if (!j) {
        json_decref(series);
        return NULL;
    }
    json_object_set_new(j, "from", api_time(qa->from));
    json_object_set_new(j, "to", api_time(qa->to));
    char sb[32];
    if (qa->step) pt_duration_format(qa->step, sb, sizeof sb);
    json_object_set_new(j, "step", qa->step ? json_string(sb) : json_null());
    json_object_set_new(j, "agg", qa->step ? json_string(store_agg_name(agg)) : json_null());
    json_object_set_new(j, "series", series);
    return j;
}

void api_vm_metrics(struct api_req *rq, struct api_resp *rs, const char *ns, const char *mcis,
                    const char *vm, const char *measurement)
{
    static const char *const allowed[] = {"fields", "from", "to", "step", "agg", "tag", NULL};
    if (!api_args_known(rq, rs, allowed) || !names_ok(rs, ns, mcis, vm)) return;
    if (!pt_wire_name_ok(measurement, strlen(measurement))) {
        api_error(rs, 400, "bad_request", "invalid measurement name");
        return;
    }
    struct qargs *qa = calloc(1, sizeof *qa);
    if (!qa) {
        api_error(rs, 500, "internal", "out of memory");
        return;
    }
    if (!qargs_parse(rq, rs, qa)) {
        free(qa);
        return;
    }
    struct store_query q = {
        .ns = ns,
        .mcis = mcis,
        .vm = vm,
        .measurement = measurement,
        .fields = qa->nfields ? qa->fields : NULL,
        .nfields = qa->nfields,
        .tag_keys = qa->tkeys,
        .tag_vals = qa->tvals,
        .ntag_filters = qa->ntags,
        .from_ns = qa->from,
        .to_ns = qa->to,
        .step_ns = qa->step,
        .agg = (enum store_agg)qa->agg,
        .max_rows = MAX_ROWS,
    };
    struct store_result res = {0};
    if (!run_query(rq, rs, &q, &res)) {
        free(qa);
        return;
    }
    if (res.nseries == 0 && !vm_known(rq, ns, mcis, vm)) {
        store_result_free(&res);
        free(qa);
        api_error(rs, 404, "not_found", "no agent and no data for vm %s/%s/%s", ns, mcis, vm);
        return;
    }
    json_t *series = json_array();
    for (size_t i = 0; i < res.nseries; i++)
        json_array_append_new(series, series_json(&res.series[i], q.agg));
    store_result_free(&res);
    json_t *j = json_pack("{s:s,s:s,s:s,s:s}", "ns", ns, "mcis", mcis, "vm", vm, "measurement",
                          measurement);
    api_json(rs, 200, range_json(j, qa, q.agg, series));
    free(qa);
}

/* Whether any agent is registered in ns/mcis (for a 404 on no data). */
static bool mcis_known(struct api_req *rq, const char *ns, const char *mcis)
{
    struct coll_agent_info *all;
    size_t n;
    if (coll_registry_list(rq->ctx->reg, &all, &n)) return false;
    bool found = false;
    for (size_t i = 0; i < n && !found; i++)
        found = strcmp(all[i].ns, ns) == 0 && strcmp(all[i].mcis, mcis) == 0;
    free(all);
    return found;
}

static bool mcis_names_ok(struct api_resp *rs, const char *ns, const char *mcis)
{
    const char *what[] = {"ns", "mcis"}, *val[] = {ns, mcis};
    for (int i = 0; i < 2; i++)
        if (!coll_name_valid(val[i], strlen(val[i]))) {
            api_error(rs, 400, "bad_request", "invalid %s \"%.64s\"", what[i], val[i]);
            return false;
        }
    return true;
}

void api_mcis_metrics(struct api_req *rq, struct api_resp *rs, const char *ns, const char *mcis,
                      const char *measurement)
{
    static const char *const allowed[] = {"fields", "from",    "to",  "step", "agg",
                                          "across", "groupBy", "tag", NULL};
    if (!api_args_known(rq, rs, allowed) || !mcis_names_ok(rs, ns, mcis)) return;
    if (!pt_wire_name_ok(measurement, strlen(measurement))) {
        api_error(rs, 400, "bad_request", "invalid measurement name");
        return;
    }
    const char *a_across = api_arg(rq, "across"), *a_group = api_arg(rq, "groupBy");
    bool by_vm = false;
    if (a_group) {
        if (strcmp(a_group, "vm") != 0) {
            api_error(rs, 400, "bad_request",
                      "parameter \"groupBy\": only \"vm\" is supported, "
                      "got \"%.32s\"",
                      a_group);
            return;
        }
        by_vm = true;
    }
    int across = STORE_AGG_AVG;
    if (a_across) {
        if (by_vm) {
            api_error(rs, 400, "bad_request",
                      "parameter \"across\" combines VMs; it cannot go with groupBy=vm");
            return;
        }
        across = store_agg_parse(a_across);
        if (across != STORE_AGG_MIN && across != STORE_AGG_MAX && across != STORE_AGG_AVG &&
            across != STORE_AGG_SUM) {
            api_error(rs, 400, "bad_request",
                      "parameter \"across\": expected min, max, avg or sum, got \"%.32s\"",
                      a_across);
            return;
        }
    }
    struct qargs *qa = calloc(1, sizeof *qa);
    if (!qa) {
        api_error(rs, 500, "internal", "out of memory");
        return;
    }
    if (!qargs_parse(rq, rs, qa)) {
        free(qa);
        return;
    }
    /* Combining VMs needs common buckets: 1 minute unless asked. */
    if (!by_vm && !qa->step) {
        qa->step = DEFAULT_MCIS_STEP;
        if (qa->agg == STORE_AGG_NONE) qa->agg = STORE_AGG_AVG;
    }
    struct store_query q = {
        .ns = ns,
        .mcis = mcis,
        .measurement = measurement,
        .fields = qa->nfields ? qa->fields : NULL,
        .nfields = qa->nfields,
        .tag_keys = qa->tkeys,
        .tag_vals = qa->tvals,
        .ntag_filters = qa->ntags,
        .from_ns = qa->from,
        .to_ns = qa->to,
        .step_ns = qa->step,
        .agg = (enum store_agg)qa->agg,
        .across = by_vm ? STORE_AGG_NONE : (enum store_agg)across,
        .group_by_vm = by_vm,
        .max_rows = MAX_ROWS,
    };
    struct store_result res = {0};
    if (!run_query(rq, rs, &q, &res)) {
        free(qa);
        return;
    }
    if (res.nseries == 0 && !mcis_known(rq, ns, mcis)) {
        store_result_free(&res);
        free(qa);
        api_error(rs, 404, "not_found", "no agent and no data for mcis %s/%s", ns, mcis);
        return;
    }
    /* An average across VMs of integers is no integer any more. */
    enum store_agg shown = !by_vm && across == STORE_AGG_AVG ? STORE_AGG_AVG : q.agg;
    json_t *series = json_array();
    for (size_t i = 0; i < res.nseries; i++) {
        const struct store_series *se = &res.series[i];
        json_t *sj = series_json(se, se->vm ? q.agg : shown);
        if (sj && se->vm) json_object_set_new(sj, "vm", json_string(se->vm));
        json_array_append_new(series, sj);
    }
    store_result_free(&res);
    json_t *j = json_pack("{s:s,s:s,s:s}", "ns", ns, "mcis", mcis, "measurement", measurement);
    if (j) {
        json_object_set_new(j, "across", by_vm ? json_null() : json_string(store_agg_name(across)));
        json_object_set_new(j, "groupBy", by_vm ? json_string("vm") : json_null());
    }
    api_json(rs, 200, range_json(j, qa, q.agg, series));
    free(qa);
}

json_t *api_field_json(const struct pt_field *f)
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

/* The measurements of a latest() result; with_vm adds each one's VM. */
static json_t *latest_json(const struct store_result *res, bool with_vm, int64_t *newest)
{
    json_t *arr = json_array();
    *newest = 0;
    for (size_t i = 0; i < res->nlatest; i++) {
        const struct store_latest *l = &res->latest[i];
        json_t *fields = json_object();
        for (size_t k = 0; k < l->nfields; k++) {
            char key[PT_WIRE_MAX_STR + 1];
            snprintf(key, sizeof key, "%.*s", (int)l->fields[k].key.len, l->fields[k].key.p);
            json_object_set_new(fields, key, api_field_json(&l->fields[k]));
        }
        json_t *m = json_pack("{s:s,s:o,s:o,s:o}", "name", l->measurement, "tags",
                              tags_json(l->tag_keys, l->tag_vals, l->ntags), "time",
                              api_time(l->ts_ns), "fields", fields);
        if (m && with_vm && l->vm) json_object_set_new(m, "vm", json_string(l->vm));
        json_array_append_new(arr, m);
        if (l->ts_ns > *newest) *newest = l->ts_ns;
    }
    return arr;
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
    int64_t newest;
    json_t *arr = latest_json(&res, false, &newest);
    store_result_free(&res);
    api_json(rs, 200,
             json_pack("{s:s,s:s,s:s,s:o,s:o}", "ns", ns, "mcis", mcis, "vm", vm, "time",
                       api_time(newest), "measurements", arr));
}

void api_mcis_latest(struct api_req *rq, struct api_resp *rs, const char *ns, const char *mcis)
{
    static const char *const allowed[] = {"measurement", NULL};
    if (!api_args_known(rq, rs, allowed) || !mcis_names_ok(rs, ns, mcis)) return;
    const char *meas = api_arg(rq, "measurement");
    if (meas && !pt_wire_name_ok(meas, strlen(meas))) {
        api_error(rs, 400, "bad_request", "parameter \"measurement\": invalid name \"%.64s\"",
                  meas);
        return;
    }
    struct store_result res = {0};
    int rc = rq->ctx->ops->latest(rq->ctx->store, ns, mcis, NULL, meas, &res);
    if (rc) {
        api_error(rs, 500, "internal", "query failed: %s", pt_strerror(rc));
        return;
    }
    if (res.nlatest == 0 && !mcis_known(rq, ns, mcis)) {
        store_result_free(&res);
        api_error(rs, 404, "not_found", "no agent and no data for mcis %s/%s", ns, mcis);
        return;
    }
    int64_t newest;
    json_t *arr = latest_json(&res, true, &newest);
    store_result_free(&res);
    api_json(rs, 200,
             json_pack("{s:s,s:s,s:o,s:o}", "ns", ns, "mcis", mcis, "time", api_time(newest),
                       "measurements", arr));
}
