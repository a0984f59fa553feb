/* Metric reads in CB-Dragonfly's shapes:
 *
 *   GET /dragonfly/ns/{ns}/mcis/{mcis}/vm/{vm}/agent_ip/{ip}/metric/{metric}/
 *       ondemand-monitoring-info
 *     {"name", "tags": {"nsId", "mcisId", "vmId", "osType", "cspType"},
 *      "values": {...}, "time"} with the latest values (CB-Dragonfly
 *     pkg/core/metric/ondemand_metric.go: convertMonMetric and
 *     mappingOnDemandMetric; CB-Tumblebug src/core/mcis/monitoring.go reads
 *     values.cpu_utilization, mem_utilization, disk_utilization, bytes_out).
 *
 *   GET /dragonfly/ns/{ns}/mcis/{mcis}/vm/{vm}/metric/{metric}/info
 *       ?periodType=m|h|d&statisticsCriteria=min|max|avg|last&duration=...
 *     {"name", "tags": {"vmId"}, "values": [{"time", field: value}, ...]}
 *     (pkg/core/metric/metric.go GetVMMonInfo, pkg/metricstore/influxdb/v1/
 *     query.go BuildQuery: GROUP BY time(1m|1h|24h) fill(0), rows from
 *     now - duration).
 *
 * CB-Dragonfly's field names are the catalog's (METRICS.md), so values go
 * through unchanged, in the catalog's units: kb_read/kb_written are KiB/s,
 * bytes_in/bytes_out bytes/s. The agent's address in the path is not used:
 * values come from the store, not from asking the VM. */
#include "compat_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "pt/catalog.h"
#include "pt/err.h"
#include "pt/time.h"

#define MAX_BUCKETS  10000
#define MIN_DURATION (2 * 60 * PT_NS_PER_SEC)

struct part {
    const char *meas;
    const char *tagk, *tagv; /* the series: NULL = the one without tags */
    const char *fields[12];
};

struct df_metric {
    const char *names[2]; /* accepted in the path */
    const char *ondemand; /* "name" of the on-demand answer (telegraf's) */
    const char *info;     /* "name" of the /info answer */
    struct part parts[2];
};

static const struct df_metric metrics[] = {
    {{"cpu", NULL},
     "cpu",
     "cpu",
     {{"cpu",
       NULL,
       NULL,
       {"cpu_utilization", "cpu_system", "cpu_idle", "cpu_iowait", "cpu_hintr", "cpu_sintr",
        "cpu_user", "cpu_nice", "cpu_steal", "cpu_guest", "cpu_guest_nice"}}}},
    {{"cpufreq", NULL}, "cpufreq", "cpufreq", {{"cpufreq", NULL, NULL, {"cpu_speed"}}}},
    {{"memory", "mem"},
     "mem",
     "memory",
     {{"memory",
       NULL,
       NULL,
       {"mem_utilization", "mem_total", "mem_used", "mem_free", "mem_shared", "mem_buffers",
        "mem_cached"}}}},
    {{"disk", NULL},
     "disk",
     "disk",
     {{"disk", "mount", "total", {"disk_utilization", "disk_total", "disk_used", "disk_free"}},
      {"diskio", "device", "total", {"kb_read", "kb_written", "ops_read", "ops_write"}}}},
    {{"network", "net"},
     "net",
     "network",
     {{"network", "interface", "total", {"bytes_in", "bytes_out", "pkts_in", "pkts_out"}}}},
};

static const struct df_metric *metric_find(const char *name)
{
    for (size_t i = 0; i < sizeof metrics / sizeof metrics[0]; i++)
        for (int k = 0; k < 2; k++)
            if (metrics[i].names[k] && !strcmp(metrics[i].names[k], name)) return &metrics[i];
    return NULL;
}

static bool args_ok(struct api_resp *rs, const char *ns, const char *mcis, const char *vm,
                    const char *metric, const struct df_metric **m)
{
    const char *what[] = {"ns", "mcis", "vm"}, *val[] = {ns, mcis, vm};
    for (int i = 0; i < 3; i++)
        if (!coll_name_valid(val[i], strlen(val[i]))) {
            compat_error(rs, 400, "invalid %s \"%.64s\"", what[i], val[i]);
            return false;
        }
    *m = metric_find(metric);
    if (!*m) {
        compat_error(rs, 404,
                     "not found metric : %.64s (expected cpu, cpufreq, memory or mem, disk, "
                     "network or net)",
                     metric);
        return false;
    }
    return true;
}

/* Whether series tags match the part: exactly tagk=tagv, or no tags. */
static bool part_series(const struct part *p, char **keys, char **vals, size_t n)
{
    if (!p->tagk) return n == 0;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(keys[i], p->tagk)) return !strcmp(vals[i], p->tagv);
    return false;
}

/* The OS recorded when /dragonfly/agent installed the VM ("" if unknown). */
static json_t *os_type(struct coll_compat *c, const char *ns, const char *mcis, const char *vm)
{
    const char *k;
    json_t *a, *out = NULL;
    pthread_mutex_lock(&c->mu);
    json_object_foreach(c->agents, k, a)
    {
        if (!strcmp(json_string_value(json_object_get(a, "ns_id")) ?: "", ns) &&
            !strcmp(json_string_value(json_object_get(a, "mcis_id")) ?: "", mcis) &&
            !strcmp(json_string_value(json_object_get(a, "vm_id")) ?: "", vm)) {
            const char *os = json_string_value(json_object_get(a, "os_type"));
            if (os && *os) out = json_string(os);
        }
    }
    pthread_mutex_unlock(&c->mu);
    return out ? out : json_string("");
}

void compat_ondemand(struct api_req *rq, struct api_resp *rs, const char *ns, const char *mcis,
                     const char *vm, const char *metric)
{
    const struct df_metric *m;
    if (!args_ok(rs, ns, mcis, vm, metric, &m)) return;
    json_t *values = json_object();
    int64_t newest = 0;
    for (size_t pi = 0; pi < 2 && m->parts[pi].meas; pi++) {
        const struct part *p = &m->parts[pi];
        struct store_result res = {0};
        int rc = rq->ctx->ops->latest(rq->ctx->store, ns, mcis, vm, p->meas, &res);
        if (rc) {
            json_decref(values);
            compat_error(rs, 500, "query failed: %s", pt_strerror(rc));
            return;
        }
        const struct store_latest *l = NULL;
        for (size_t i = 0; i < res.nlatest && !l; i++)
            if (part_series(p, res.latest[i].tag_keys, res.latest[i].tag_vals, res.latest[i].ntags))
                l = &res.latest[i];
        /* A field the sample lacks (a rate on the agent's first reading)
         * is null, never a made-up value. */
        for (size_t f = 0; f < 12 && p->fields[f]; f++) {
            json_t *v = NULL;
            for (size_t k = 0; l && !v && k < l->nfields; k++)
                if (l->fields[k].key.len == strlen(p->fields[f]) &&
                    !memcmp(l->fields[k].key.p, p->fields[f], l->fields[k].key.len))
                    v = api_field_json(&l->fields[k]);
            json_object_set_new(values, p->fields[f], v ? v : json_null());
        }
        if (l && l->ts_ns > newest) newest = l->ts_ns;
        store_result_free(&res);
    }
    if (!newest) {
        json_decref(values);
        compat_error(rs, 404, "not found metric data, metric=%s (no sample of vm %s/%s/%s)", metric,
                     ns, mcis, vm);
        return;
    }
    struct coll_agent_info info;
    const char *csp = "";
    if (coll_registry_find_name(rq->ctx->reg, ns, mcis, vm, &info) == 0) csp = info.csp;
    json_t *tags = json_pack("{s:s,s:s,s:s,s:o,s:s}", "nsId", ns, "mcisId", mcis, "vmId", vm,
                             "osType", os_type(rq->ctx->compat, ns, mcis, vm), "cspType", csp);
    api_json(rs, 200,
             json_pack("{s:s,s:o,s:o,s:o}", "name", m->ondemand, "tags", tags, "values", values,
                       "time", api_time(newest)));
}

/* ---- /info --------------------------------------------------------------- */

static const char *const info_args[] = {"periodType", "statisticsCriteria", "duration", NULL};

static bool info_params(struct api_req *rq, struct api_resp *rs, int64_t *step, int *agg,
                        int64_t *duration)
{
    const char *period = api_arg(rq, "periodType"), *crit = api_arg(rq, "statisticsCriteria"),
               *dur = api_arg(rq, "duration");
    struct api_resp tmp = {0};
    if (!api_args_known(rq, &tmp, info_args)) {
        json_t *e = json_object_get(json_object_get(tmp.json, "error"), "message");
        compat_error(rs, 400, "%s", json_string_value(e) ?: "unknown query parameter");
        json_decref(tmp.json);
        return false;
    }
    if (!period || strlen(period) != 1 || !strchr("mhd", period[0])) {
        compat_error(rs, 400, "query parameter \"periodType\": expected m, h or d, got \"%.16s\"",
                     period ? period : "");
        return false;
    }
    *step = (period[0] == 'm' ? 60 : period[0] == 'h' ? 3600 : 86400) * PT_NS_PER_SEC;
    *agg = crit ? store_agg_parse(crit) : -1;
    if (*agg != STORE_AGG_MIN && *agg != STORE_AGG_MAX && *agg != STORE_AGG_AVG &&
        *agg != STORE_AGG_LAST) {
        compat_error(rs, 400,
                     "query parameter \"statisticsCriteria\": expected min, max, avg or last, "
                     "got \"%.16s\"",
                     crit ? crit : "");
        return false;
    }
    if (!dur || pt_duration_parse(dur, duration)) {
        compat_error(rs, 400,
                     "query parameter \"duration\": expected a duration such as 10m, 1h or 1d, "
                     "got \"%.32s\"",
                     dur ? dur : "");
        return false;
    }
    if (*duration < MIN_DURATION) {
        /* CB-Dragonfly refuses these too: a bucket needs two samples. */
        compat_error(rs, 400, "query parameter \"duration\": at least 2m, got \"%.32s\"", dur);
        return false;
    }
    return true;
}

/* A cell as CB-Dragonfly's InfluxQL would give it: an integer where the
 * stored type is an integer and the statistic keeps integers. */
static json_t *cell(double v, uint8_t ftype, int agg)
{
    bool intlike = ftype == PT_F_UINT || ftype == PT_F_INT;
    if (intlike && agg != STORE_AGG_AVG && v == floor(v) && fabs(v) < 9007199254740992.0)
        return json_integer((json_int_t)v);
    return json_real(v);
}

void compat_info(struct api_req *rq, struct api_resp *rs, const char *ns, const char *mcis,
                 const char *vm, const char *metric)
{
    const struct df_metric *m;
    int64_t step, duration;
    int agg;
    if (!args_ok(rs, ns, mcis, vm, metric, &m) || !info_params(rq, rs, &step, &agg, &duration))
        return;
    int64_t now = pt_now_ns();
    /* Buckets aligned to the period, from the one holding now - duration
     * to the one holding now (InfluxDB's GROUP BY time() does the same). */
    int64_t from = (now - duration) / step * step, to = now / step * step + step;
    size_t nb = (size_t)((to - from) / step);
    if (nb > MAX_BUCKETS) {
        compat_error(rs, 400,
                     "query parameter \"duration\": more than %d buckets of one %s; use a larger "
                     "periodType",
                     MAX_BUCKETS, step == 60 * PT_NS_PER_SEC ? "minute" : "hour");
        return;
    }
    json_t *rows = json_array();
    for (size_t b = 0; b < nb; b++)
        json_array_append_new(rows, json_pack("{s:o}", "time", api_time(from + (int64_t)b * step)));
    bool any = false;
    for (size_t pi = 0; pi < 2 && m->parts[pi].meas; pi++) {
        const struct part *p = &m->parts[pi];
        size_t nf = 0;
        while (nf < 12 && p->fields[nf]) nf++;
        const char *tk[1] = {p->tagk}, *tv[1] = {p->tagv};
        struct store_query q = {
            .ns = ns,
            .mcis = mcis,
            .vm = vm,
            .measurement = p->meas,
            .fields = p->fields,
            .nfields = nf,
            .tag_keys = tk,
            .tag_vals = tv,
            .ntag_filters = p->tagk ? 1 : 0,
            .from_ns = from,
            .to_ns = to,
            .step_ns = step,
            .agg = (enum store_agg)agg,
            .max_rows = nb + 1,
        };
        struct store_result res = {0};
        int rc = rq->ctx->ops->query(rq->ctx->store, &q, &res);
        if (rc) {
            json_decref(rows);
            compat_error(rs, 500, "query failed: %s", pt_strerror(rc));
            return;
        }
        const struct store_series *s = NULL;
        for (size_t i = 0; i < res.nseries && !s; i++)
            if (part_series(p, res.series[i].tag_keys, res.series[i].tag_vals, res.series[i].ntags))
                s = &res.series[i];
        any |= s != NULL;
        /* Every bucket gets every field: the value, or 0 where the bucket
         * is empty (InfluxQL's fill(0), which CB-Dragonfly asks for). */
        size_t r = 0;
        for (size_t b = 0; b < nb; b++) {
            json_t *row = json_array_get(rows, b);
            int64_t t = from + (int64_t)b * step;
            while (s && r < s->nrows && s->ts[r] < t) r++;
            bool hit = s && r < s->nrows && s->ts[r] == t;
            for (size_t f = 0; f < nf; f++) {
                size_t col = f;
                if (s) /* columns come back in the order asked, but check */
                    for (col = 0; col < s->nfields && strcmp(s->fields[col], p->fields[f]); col++)
                        ;
                double v = hit && s && col < s->nfields ? s->vals[r * s->nfields + col] : NAN;
                json_object_set_new(row, p->fields[f],
                                    isnan(v) ? json_integer(0) : cell(v, s->ftypes[col], agg));
            }
        }
        store_result_free(&res);
    }
    if (!any) {
        json_decref(rows);
        compat_error(rs, 404, "not found metric data, metric=%s (vm %s/%s/%s, last %s)", metric, ns,
                     mcis, vm, api_arg(rq, "duration"));
        return;
    }
    api_json(rs, 200,
             json_pack("{s:s,s:{s:s},s:o}", "name", m->info, "tags", "vmId", vm, "values", rows));
}
