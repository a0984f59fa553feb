/* The VictoriaMetrics backend: the same line protocol as InfluxDB, posted to
 * /write (single node) or <vminsert>/insert/<tenant>/influx/write
 * (cluster); VictoriaMetrics names each field's series
 * <measurement>_<field> with every tag as a label. Reads go through the
 * Prometheus API: query_range with *_over_time evaluated at each bucket's
 * last millisecond (window = step) for min/max/avg/last/sum/count, and
 * export (raw points) for raw queries and p95, which is reduced here since
 * quantile_over_time interpolates. Label values in selectors are always
 * quoted and escaped (pq_str). docs/storage.md ("VictoriaMetrics") has the
 * URL forms, the server flags it needs and the bucket arithmetic.
 *
 * Threads: as influxdb.c, the writer owns s->w and s->writes; every read call
 * makes its own curl handle. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pt/catalog.h"
#include "pt/err.h"
#include "pt/log.h"
#include "store/lineproto.h"
#include "store/remote_int.h"
#include "store/store_int.h"
#include "store/storehttp.h"

#define VM_BATCH_DEFAULT 5000
#define VM_BATCH_MAX     100000
#define VM_TIMEOUT_NS    (INT64_C(10) * 1000000000)
#define VM_QUERY_MAX     ((size_t)1 << 30)
#define VM_BODY_MAX      ((size_t)512 << 20)
#define VM_MAX_STEPS     10000 /* under -search.maxPointsPerTimeseries (30000) */
#define MS               INT64_C(1000000)
#define VM_LATEST_SHORT  (INT64_C(3600) * 1000000000) /* first look back for latest */
#define VM_LATEST_LONG   (INT64_C(365) * 86400 * 1000000000)

struct store {
    struct sh_url u;
    struct sh_str write_url, read_base;
    struct sh_conf wconf, qconf;
    struct sh_client w;
    size_t batch;
    bool gzip;
    int64_t retention_ns;
    struct rs_writes writes; /* batches submitted, not yet waited for */
    struct sh_pool pool;
    size_t parallel;
    struct pt_complain complain, c_unwritable;
    _Atomic uint64_t *refused, *unwritable;
    char *user, *password;
};

static void count(_Atomic uint64_t *c, uint64_t n)
{
    if (c) atomic_fetch_add(c, n);
}

/* ---- writing ------------------------------------------------------------------------ */

/* What the answer to one request means: 0, -EINVAL (refused: counted,
 * never retried) or a transient code. */
static int vm_judge(struct store *s, const struct sh_part *pt)
{
    if (pt->rc) {
        pt_complain(&s->complain, PT_LOG_ERROR, "store", "victoriametrics: write: %s", pt->msg);
        return pt->rc == -EINVAL ? -EIO : pt->rc;
    }
    long st = pt->status;
    if (st == 204 || st == 200) return 0;
    if (st == 401 || st == 403) {
        pt_complain(
            &s->complain, PT_LOG_ERROR, "store",
            "victoriametrics: write refused (HTTP %ld, check store.user/store.password): %s", st,
            pt->msg);
        return -EACCES;
    }
    if (st >= 400 && st < 500) {
        count(s->refused, pt->npts);
        PT_ERROR("store", "victoriametrics: server refused %zu points (HTTP %ld): %s", pt->npts, st,
                 pt->msg);
        return -EINVAL;
    }
    pt_complain(&s->complain, PT_LOG_ERROR, "store", "victoriametrics: write: HTTP %ld: %s", st,
                pt->msg);
    return -EIO;
}

/* Ends a request at the current end of buf. */
static const struct rs_write_ops vm_write_ops = {
    .name = "victoriametrics",
    .dialect = LP_VICTORIA,
    .unwritable = "a field name has a '\"', which VictoriaMetrics' line protocol parser cannot "
                  "carry",
    .judge = vm_judge,
};

static struct rs_target vm_target(struct store *s)
{
    return (struct rs_target){&s->pool, s->write_url.p, s->gzip, s->batch, s->parallel};
}

/* A transient failure retries the batch whole: dedup keeps one of each. */
static int vm_write_submit(struct store *s, const struct store_point *pts, size_t n)
{
    if (n && !pts) return -EINVAL;
    size_t skipped;
    struct rs_target t = vm_target(s);
    int rc = rs_submit(s, &vm_write_ops, &s->writes, &t, pts, n, &s->c_unwritable, &s->complain,
                       &skipped);
    count(s->unwritable, skipped);
    return rc;
}

static int vm_write_wait(struct store *s, int64_t timeout_ns)
{
    struct rs_target t = vm_target(s);
    int rc = rs_wait(s, &vm_write_ops, &s->writes, &t, timeout_ns);
    if (rc == 0)
        pt_complain_release(&s->complain, "store", "victoriametrics: writes succeed again");
    return rc;
}

static int vm_write_batch(struct store *s, const struct store_point *pts, size_t n)
{
    if (n == 0) return 0;
    int rc = vm_write_submit(s, pts, n);
    return rc ? rc : vm_write_wait(s, -1);
}

/* ---- PromQL text -------------------------------------------------------------------- */

/* A double-quoted string literal: \\, \" and \n escaped. */
static void pq_str(struct sh_str *q, const char *s)
{
    sh_str_add(q, "\"", 1);
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            sh_str_add(q, "\\", 1);
        else if (*s == '\n') {
            sh_str_add(q, "\\n", 2);
            continue;
        }
        sh_str_add(q, s, 1);
    }
    sh_str_add(q, "\"", 1);
}

/* A label name: MetricsQL reads an ASCII character after a backslash as
 * itself, and \xNN as a byte (UTF-8 is passed that way, byte by byte). */
static void pq_label(struct sh_str *q, const char *s)
{
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                     (p > s && c >= '0' && c <= '9');
        if (c >= 0x80) {
            sh_str_addf(q, "\\x%02x", c);
            continue;
        }
        if (!plain) sh_str_add(q, "\\", 1);
        sh_str_add(q, p, 1);
    }
}

/* Regular-expression metacharacters of RE2, escaped. */
static void re_quote(struct sh_str *q, const char *s)
{
    for (; *s; s++) {
        if (strchr("\\.+*?()|[]{}^$", *s)) sh_str_add(q, "\\", 1);
        sh_str_add(q, s, 1);
    }
}

/* {__name__="m_f" | __name__=~"m_.+", ns_id=..., mcis_id=..., [vm_id=...], filters} */
static void pq_sel(struct sh_str *q, const char *ns, const char *mcis, const char *vm,
                   const char *m, const char *field, const struct store_query *f)
{
    sh_str_adds(q, "{__name__");
    if (field) {
        struct sh_str name = {0};
        sh_str_adds(&name, m);
        sh_str_add(&name, "_", 1);
        sh_str_adds(&name, field);
        sh_str_add(q, "=", 1);
        if (name.err) q->err = name.err;
        pq_str(q, name.p ? name.p : "");
        sh_str_free(&name);
    } else {
        struct sh_str re = {0};
        if (m) {
            re_quote(&re, m);
            sh_str_adds(&re, "_.+");
        } else {
            sh_str_adds(&re, ".+");
        }
        sh_str_add(q, "=~", 2);
        if (re.err) q->err = re.err;
        pq_str(q, re.p ? re.p : "");
        sh_str_free(&re);
    }
    sh_str_adds(q, ",ns_id=");
    pq_str(q, ns);
    sh_str_adds(q, ",mcis_id=");
    pq_str(q, mcis);
    if (vm) {
        sh_str_adds(q, ",vm_id=");
        pq_str(q, vm);
    }
    for (size_t i = 0; f && i < f->ntag_filters; i++) {
        sh_str_add(q, ",", 1);
        pq_label(q, f->tag_keys[i]);
        sh_str_add(q, "=", 1);
        pq_str(q, f->tag_vals[i]);
    }
    sh_str_add(q, "}", 1);
}

/* ---- requests -------------------------------------------------------------------------- */

/* Adds "&key=<escaped value>" to a form body. */
static void form(struct sh_str *b, const char *key, const char *val)
{
    char *e = sh_escape(val);
    if (!e) {
        if (!b->err) b->err = -ENOMEM;
        return;
    }
    if (b->len) sh_str_add(b, "&", 1);
    sh_str_adds(b, key);
    sh_str_add(b, "=", 1);
    sh_str_adds(b, e);
    free(e);
}

static void form_time(struct sh_str *b, const char *key, int64_t ns)
{
    char v[48];
    /* Seconds with milliseconds: what the server resolves. */
    int64_t ms = ns / MS - (ns % MS < 0);
    snprintf(v, sizeof v, "%" PRId64 ".%03d", ms / 1000 - (ms % 1000 < 0),
             (int)(((ms % 1000) + 1000) % 1000));
    form(b, key, v);
}

/* POSTs a form to read_base + path; *body gets the answer on 200. */
static int vm_get(struct store *s, struct sh_client *c, const char *path, const struct sh_str *f,
                  struct sh_resp *r)
{
    if (f->err) return f->err;
    struct sh_str url = {0};
    sh_str_adds(&url, s->read_base.p);
    sh_str_adds(&url, path);
    if (url.err) {
        sh_str_free(&url);
        return -ENOMEM;
    }
    char err[512] = "";
    int rc = sh_request(c, url.p, f->p ? f->p : "", f->len, "application/x-www-form-urlencoded",
                        false, r, err, sizeof err);
    if (rc) {
        PT_WARN("store", "victoriametrics: %s", err);
    } else if (r->status != 200) {
        char msg[320];
        sh_resp_message(r, msg, sizeof msg);
        PT_WARN("store", "victoriametrics: %s answered HTTP %ld: %s", path, r->status, msg);
        rc = r->status == 401 || r->status == 403                       ? -EACCES
             : strstr(msg, "too many points") || strstr(msg, "exceeds") ? -E2BIG
             : r->status >= 500                                         ? -EIO
                                                                        : PT_E_STORE;
        free(r->body);
        memset(r, 0, sizeof *r);
    }
    sh_str_free(&url);
    return rc;
}

/* The JSON answer's data member (root kept in *root). */
static int vm_json(struct sh_resp *r, json_t **root, json_t **data)
{
    char jerr[160];
    *root = sh_json_load(r->body, r->len, jerr, sizeof jerr);
    free(r->body);
    memset(r, 0, sizeof *r);
    if (!*root) {
        PT_WARN("store", "victoriametrics: answer is not JSON: %s", jerr);
        return PT_E_STORE;
    }
    *data = json_object_get(*root, "data");
    if (!*data) {
        json_decref(*root);
        *root = NULL;
        return PT_E_STORE;
    }
    return 0;
}

/* Splits labels into the VM and the measurement's tags (identity and
 * __name__ left out); tk/tv borrow from labels. */
static size_t vm_labels(json_t *labels, const char **vm, char **tk, char **tv)
{
    size_t nt = 0;
    const char *k;
    json_t *v;
    *vm = NULL;
    json_object_foreach(labels, k, v)
    {
        const char *val = json_string_value(v);
        if (!val) continue;
        if (strcmp(k, "vm_id") == 0) *vm = val;
        if (rs_ident_key(k) || strcmp(k, "__name__") == 0 || nt == 64) continue;
        tk[nt] = (char *)k;
        tv[nt++] = (char *)val;
    }
    return nt;
}

/* The field of metric name for measurement m ("m_f" → "f"), or NULL. */
static const char *field_of(const char *name, const char *m)
{
    size_t ml = strlen(m);
    if (!name || strncmp(name, m, ml) != 0 || name[ml] != '_' || !name[ml + 1]) return NULL;
    return name + ml + 1;
}

/* Field names of m seen in [from, to) (fields NULL in the query). */
static int vm_discover(struct store *s, struct sh_client *c, const struct store_query *q,
                       struct rs_set *set)
{
    struct sh_str f = {0}, sel = {0};
    pq_sel(&sel, q->ns, q->mcis, q->vm, q->measurement, NULL, q);
    if (sel.err) f.err = sel.err;
    form(&f, "match[]", sel.p ? sel.p : "");
    form_time(&f, "start", q->from_ns);
    form_time(&f, "end", q->to_ns);
    sh_str_free(&sel);
    struct sh_resp r;
    int rc = vm_get(s, c, "/api/v1/series", &f, &r);
    sh_str_free(&f);
    json_t *root, *data;
    if (rc || (rc = vm_json(&r, &root, &data))) return rc;
    for (size_t i = 0; i < json_array_size(data) && rc == 0; i++) {
        const char *name = json_string_value(json_object_get(json_array_get(data, i), "__name__"));
        const char *field = field_of(name, q->measurement);
        int idx;
        if (field) rc = rs_column(set, field, 0, &idx);
    }
    json_decref(root);
    return rc;
}

/* Raw points of the wanted fields (export), into set. */
static int vm_export(struct store *s, struct sh_client *c, const struct store_query *q,
                     struct rs_set *set)
{
    struct sh_str f = {0};
    for (size_t i = 0; i < set->nfields; i++) {
        struct sh_str sel = {0};
        pq_sel(&sel, q->ns, q->mcis, q->vm, q->measurement, set->fields[i], q);
        if (sel.err) f.err = sel.err;
        form(&f, "match[]", sel.p ? sel.p : "");
        sh_str_free(&sel);
    }
    form_time(&f, "start", q->from_ns);
    form_time(&f, "end", q->to_ns); /* inclusive: the extra millisecond is filtered below */
    struct sh_resp r;
    int rc = vm_get(s, c, "/api/v1/export", &f, &r);
    sh_str_free(&f);
    if (rc) return rc;
    /* One JSON object per line. */
    char *p = r.body, *end = r.body + r.len;
    while (rc == 0 && p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        char jerr[160];
        json_t *o = len ? sh_json_load(p, len, jerr, sizeof jerr) : NULL;
        p += len + 1;
        if (!o) {
            if (len) {
                PT_WARN("store", "victoriametrics: export line is not JSON: %s", jerr);
                rc = PT_E_STORE;
            }
            continue;
        }
        json_t *labels = json_object_get(o, "metric");
        const char *field =
            field_of(json_string_value(json_object_get(labels, "__name__")), q->measurement);
        int idx = -1;
        if (field) rc = rs_column(set, field, 0, &idx);
        const char *vm;
        char *tk[64], *tv[64];
        size_t nt = vm_labels(labels, &vm, tk, tv);
        struct rs_series *sr = NULL;
        if (rc == 0 && idx >= 0) rc = rs_series(set, vm, tk, tv, nt, &sr);
        json_t *vals = json_object_get(o, "values"), *ts = json_object_get(o, "timestamps");
        for (size_t i = 0; rc == 0 && sr && i < json_array_size(vals); i++) {
            int64_t t = (int64_t)json_integer_value(json_array_get(ts, i)) * MS;
            json_t *v = json_array_get(vals, i);
            if (t < q->from_ns || t >= q->to_ns || !json_is_number(v)) continue;
            rc = rs_add(set, sr, idx, t, json_number_value(v));
        }
        json_decref(o);
    }
    free(r.body);
    return rc;
}

static const char *pq_fn(enum store_agg a)
{
    switch (a) {
    case STORE_AGG_MIN:
        return "min";
    case STORE_AGG_MAX:
        return "max";
    case STORE_AGG_AVG:
        return "avg";
    case STORE_AGG_SUM:
        return "sum";
    case STORE_AGG_COUNT:
        return "count";
    case STORE_AGG_LAST:
    default:
        return "last";
    }
}

/* One query_range: evaluations at start, start+step, ... end, each over
 * the window (t - window, t]. */
static int vm_range(struct store *s, struct sh_client *c, const struct store_query *q,
                    struct rs_set *set, int col, int64_t start, int64_t end, int64_t window)
{
    bool across = !q->vm && !q->group_by_vm;
    struct sh_str e = {0}, f = {0};
    if (across) {
        sh_str_adds(&e, pq_fn(q->across));
        sh_str_adds(&e, " without (vm_id,csp_type,host) (");
    }
    sh_str_adds(&e, pq_fn(q->agg));
    sh_str_adds(&e, "_over_time(");
    pq_sel(&e, q->ns, q->mcis, q->vm, q->measurement, set->fields[col], q);
    sh_str_addf(&e, "[%" PRId64 "ms])", window / MS);
    if (across) sh_str_add(&e, ")", 1);
    if (e.err) f.err = e.err;
    form(&f, "query", e.p ? e.p : "");
    form_time(&f, "start", start);
    form_time(&f, "end", end);
    char step[32];
    snprintf(step, sizeof step, "%" PRId64 "ms", q->step_ns / MS);
    form(&f, "step", step);
    form(&f, "nocache", "1"); /* keeps start as given: no alignment to step */
    sh_str_free(&e);
    struct sh_resp r;
    int rc = vm_get(s, c, "/api/v1/query_range", &f, &r);
    sh_str_free(&f);
    json_t *root, *data;
    if (rc || (rc = vm_json(&r, &root, &data))) return rc;
    json_t *result = json_object_get(data, "result");
    for (size_t i = 0; rc == 0 && i < json_array_size(result); i++) {
        json_t *sr = json_array_get(result, i);
        const char *vm;
        char *tk[64], *tv[64];
        size_t nt = vm_labels(json_object_get(sr, "metric"), &vm, tk, tv);
        struct rs_series *rs;
        if ((rc = rs_series(set, across ? NULL : vm, tk, tv, nt, &rs))) break;
        json_t *vals = json_object_get(sr, "values");
        for (size_t j = 0; rc == 0 && j < json_array_size(vals); j++) {
            json_t *pair = json_array_get(vals, j);
            double t = json_number_value(json_array_get(pair, 0));
            const char *v = json_string_value(json_array_get(pair, 1));
            if (!v) continue;
            int64_t ts = (int64_t)llround(t * 1000.0) * MS;
            rc = rs_add(set, rs, col, store_bucket(ts, q->step_ns), strtod(v, NULL));
        }
    }
    json_decref(root);
    return rc;
}

static int64_t ceil_ms(int64_t ns)
{
    int64_t b = store_bucket(ns, MS);
    return b == ns ? ns : b + MS;
}

/* Per-bucket values of column col over [from, to): the partial first and
 * last buckets get windows of their own, the full ones one query_range
 * (in chunks of VM_MAX_STEPS). VictoriaMetrics keeps milliseconds, so a
 * point at ns t is at floor(t / 1 ms) there: ceil_ms() makes the range
 * edges exact. */
static int vm_buckets(struct store *s, struct sh_client *c, const struct store_query *q,
                      struct rs_set *set, int col)
{
    int64_t S = q->step_ns, F = ceil_ms(q->from_ns), T = ceil_ms(q->to_ns);
    if (F >= T) return 0;
    int64_t b0 = store_bucket(F, S), bl = store_bucket(T - MS, S);
    int rc = 0;
    if (b0 == bl) return vm_range(s, c, q, set, col, T - MS, T - MS, T - F);
    int64_t m0 = b0, m1 = bl; /* full buckets [m0, m1] */
    if (F > b0) {
        if ((rc = vm_range(s, c, q, set, col, b0 + S - MS, b0 + S - MS, b0 + S - F))) return rc;
        m0 = b0 + S;
    }
    bool last_partial = T < bl + S;
    if (last_partial) m1 = bl - S;
    for (int64_t a = m0; a <= m1 && rc == 0; a += S * VM_MAX_STEPS) {
        int64_t z = m1 - a >= S * (VM_MAX_STEPS - 1) ? a + S * (VM_MAX_STEPS - 1) : m1;
        rc = vm_range(s, c, q, set, col, a + S - MS, z + S - MS, S);
    }
    if (rc == 0 && last_partial) rc = vm_range(s, c, q, set, col, T - MS, T - MS, T - bl);
    return rc;
}

static int vm_query(struct store *s, const struct store_query *q, struct store_result *out)
{
    memset(out, 0, sizeof *out);
    int rc = rs_query_check(q);
    if (rc) return rc;
    /* Buckets must fall on milliseconds, the server's resolution. */
    if (q->step_ns % MS) return -EINVAL;
    struct sh_client c;
    sh_client_init(&c, &s->qconf);
    struct rs_set set;
    if ((rc = rs_init(&set, q))) goto done;
    if (!set.fixed && (rc = vm_discover(s, &c, q, &set))) goto done;
    /* Types: the catalog's where it knows the field, else float (the
     * server keeps every number as a float). */
    for (size_t i = 0; i < set.nfields; i++) {
        const struct pt_metric *m = pt_catalog_find(q->measurement, set.fields[i]);
        set.ftypes[i] = m ? m->type : PT_F_FLOAT;
    }
    bool across = !q->vm && !q->group_by_vm;
    if (q->step_ns == 0 || q->agg == STORE_AGG_P95) {
        if (set.nfields && (rc = vm_export(s, &c, q, &set))) goto done;
        if (q->step_ns && (rc = rs_reduce(&set))) goto done;
        if (q->step_ns && across && (rc = rs_across(&set))) goto done;
    } else {
        for (size_t i = 0; i < set.nfields && rc == 0; i++) rc = vm_buckets(s, &c, q, &set, (int)i);
        if (rc) goto done;
    }
    rc = rs_finish(&set, out);
done:
    rs_free(&set);
    sh_client_close(&c);
    if (rc) store_result_free(out);
    return rc;
}

/* ---- latest ---------------------------------------------------------------------------- */

/* Measurement and field of a metric name: the catalog's measurement when
 * the name starts with one, else up to the first '_'. */
static bool split_name(const char *name, const char *want, char *m, size_t mlen, const char **field)
{
    if (want) {
        *field = field_of(name, want);
        if (!*field) return false;
        snprintf(m, mlen, "%s", want);
        return true;
    }
    static const char *const cat[] = {"cpufreq", "cpu", "memory", "diskio", "disk", "network"};
    for (size_t i = 0; i < sizeof cat / sizeof cat[0]; i++)
        if ((*field = field_of(name, cat[i]))) {
            snprintf(m, mlen, "%s", cat[i]);
            return true;
        }
    const char *us = strchr(name, '_');
    if (!us || us == name || !us[1] || (size_t)(us - name) >= mlen) return false;
    snprintf(m, mlen, "%.*s", (int)(us - name), name);
    *field = us + 1;
    return true;
}

/* An instant query at now of fn(sel[window]) keep_metric_names. */
static int vm_instant(struct store *s, struct sh_client *c, const char *fn, const char *sel,
                      int64_t window, json_t **root, json_t **result)
{
    struct sh_str e = {0}, f = {0};
    sh_str_addf(&e, "%s(", fn);
    sh_str_adds(&e, sel);
    sh_str_addf(&e, "[%" PRId64 "s]) keep_metric_names", window / 1000000000);
    if (e.err) f.err = e.err;
    form(&f, "query", e.p ? e.p : "");
    sh_str_free(&e);
    struct sh_resp r;
    int rc = vm_get(s, c, "/api/v1/query", &f, &r);
    sh_str_free(&f);
    json_t *data;
    if (rc || (rc = vm_json(&r, root, &data))) return rc;
    *result = json_object_get(data, "result");
    return 0;
}

static int vm_series_count(struct store *s, struct sh_client *c, const char *sel, int64_t window,
                           size_t *n)
{
    struct sh_str f = {0};
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t t = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
    form(&f, "match[]", sel);
    form_time(&f, "start", t - window);
    form_time(&f, "end", t);
    struct sh_resp r;
    int rc = vm_get(s, c, "/api/v1/series", &f, &r);
    sh_str_free(&f);
    json_t *root, *data;
    if (rc || (rc = vm_json(&r, &root, &data))) return rc;
    *n = json_array_size(data);
    json_decref(root);
    return 0;
}

/* A series' labels as one comparable string (keys sorted), or NULL. */
static char *labels_key(json_t *labels)
{
    return json_dumps(labels, JSON_COMPACT | JSON_SORT_KEYS);
}

struct tkey {
    char *key;
    double t; /* seconds */
};

static int cmp_tkey(const void *a, const void *b)
{
    return strcmp(((const struct tkey *)a)->key, ((const struct tkey *)b)->key);
}

/* One latest entry being built, with the canonical tags it is found by. */
struct lgroup {
    char *canon;
    size_t len; /* of canon, its NULs included */
    size_t cap; /* of fields */
};

static int latest_from(const char *want, json_t *vals, json_t *times, struct store_result *out)
{
    /* Group the fields' series by (vm, measurement, tags); a point is the
     * fields at the newest time of the group. The times (tlast_over_time)
     * are matched to the values by their labels, through a sorted array. */
    size_t n = json_array_size(vals), nt_ = json_array_size(times), nk = 0;
    struct tkey *tk_ = calloc(nt_ ? nt_ : 1, sizeof *tk_);
    struct lgroup *grp = calloc(n ? n : 1, sizeof *grp);
    int rc = tk_ && grp ? 0 : -ENOMEM;
    if (rc == 0 && n && !(out->latest = calloc(n, sizeof *out->latest))) rc = -ENOMEM;
    for (size_t j = 0; j < nt_ && rc == 0; j++) {
        json_t *st = json_array_get(times, j);
        const char *v = json_string_value(json_array_get(json_object_get(st, "value"), 1));
        if (!v) continue;
        if (!(tk_[nk].key = labels_key(json_object_get(st, "metric")))) rc = -ENOMEM;
        tk_[nk++].t = strtod(v, NULL);
    }
    if (nk > 1) qsort(tk_, nk, sizeof *tk_, cmp_tkey);
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_t *sv = json_array_get(vals, i);
        json_t *labels = json_object_get(sv, "metric");
        const char *name = json_string_value(json_object_get(labels, "__name__"));
        char m[256];
        const char *field;
        if (!name || !split_name(name, want, m, sizeof m, &field)) continue;
        struct tkey probe = {labels_key(labels), 0}, *hit;
        if (!probe.key) {
            rc = -ENOMEM;
            break;
        }
        hit = nk ? bsearch(&probe, tk_, nk, sizeof *tk_, cmp_tkey) : NULL;
        free(probe.key);
        const char *v = json_string_value(json_array_get(json_object_get(sv, "value"), 1));
        if (!hit || !v) continue;
        int64_t ts = (int64_t)llround(hit->t * 1000.0) * MS;
        const char *vm;
        char *tk[64], *tv[64];
        size_t nt = vm_labels(labels, &vm, tk, tv);
        if (!vm) continue;
        for (size_t a = 1; a < nt; a++) /* tags sorted by key */
            for (size_t b = a; b > 0 && strcmp(tk[b - 1], tk[b]) > 0; b--) {
                char *x = tk[b];
                tk[b] = tk[b - 1];
                tk[b - 1] = x;
                x = tv[b];
                tv[b] = tv[b - 1];
                tv[b - 1] = x;
            }
        /* The group: same VM, measurement and canonical tags ("vm\0m\0tags"). */
        char *c = rs_canon(tk, tv, nt);
        size_t vl = strlen(vm), ml = strlen(m), cl = c ? strlen(c) : 0;
        char *canon = c ? malloc(vl + ml + cl + 3) : NULL;
        if (canon) {
            memcpy(canon, vm, vl + 1);
            memcpy(canon + vl + 1, m, ml + 1);
            memcpy(canon + vl + ml + 2, c, cl + 1);
        }
        free(c);
        if (!canon) {
            rc = -ENOMEM;
            break;
        }
        size_t glen = vl + ml + cl + 3;
        struct store_latest *l = NULL;
        struct lgroup *g = NULL;
        for (size_t j = 0; j < out->nlatest && !l; j++)
            if (grp[j].len == glen && memcmp(grp[j].canon, canon, glen) == 0) {
                l = &out->latest[j];
                g = &grp[j];
            }
        if (!l) {
            g = &grp[out->nlatest];
            l = &out->latest[out->nlatest++];
            g->canon = canon;
            g->len = glen;
            canon = NULL;
            l->vm = strdup(vm);
            l->measurement = strdup(m);
            l->tag_keys = calloc(nt + 1, sizeof *l->tag_keys);
            l->tag_vals = calloc(nt + 1, sizeof *l->tag_vals);
            if (!l->vm || !l->measurement || !l->tag_keys || !l->tag_vals) {
                rc = -ENOMEM;
                break;
            }
            for (size_t j = 0; j < nt && rc == 0; j++) {
                l->tag_keys[j] = strdup(tk[j]);
                l->tag_vals[j] = strdup(tv[j]);
                l->ntags++;
                if (!l->tag_keys[j] || !l->tag_vals[j]) rc = -ENOMEM;
            }
            l->ts_ns = ts;
        }
        free(canon);
        if (rc) break;
        if (ts < l->ts_ns) continue;
        if (ts > l->ts_ns) { /* a newer point: the older fields go */
            for (size_t j = 0; j < l->nfields; j++) free((char *)l->fields[j].key.p);
            l->nfields = 0;
            l->ts_ns = ts;
        }
        if (l->nfields == g->cap) {
            size_t cap = g->cap ? g->cap * 2 : 8;
            struct pt_field *f = realloc(l->fields, cap * sizeof *f);
            if (!f) {
                rc = -ENOMEM;
                break;
            }
            l->fields = f;
            g->cap = cap;
        }
        struct pt_field *d = &l->fields[l->nfields];
        double dv = strtod(v, NULL);
        const struct pt_metric *cm = pt_catalog_find(m, field);
        if (cm && cm->type == PT_F_INT && dv == trunc(dv) && fabs(dv) < 9.2e18) {
            d->type = PT_F_INT;
            d->v.i = (int64_t)dv;
        } else if (cm && cm->type == PT_F_UINT && dv == trunc(dv) && dv >= 0 && dv < 1.8e19) {
            d->type = PT_F_UINT;
            d->v.u = (uint64_t)dv;
        } else {
            d->type = PT_F_FLOAT;
            d->v.f = dv;
        }
        if (!(d->key.p = strdup(field))) {
            rc = -ENOMEM;
            break;
        }
        d->key.len = (uint32_t)strlen(field);
        l->nfields++;
    }
    for (size_t j = 0; j < nk; j++) free(tk_[j].key);
    free(tk_);
    for (size_t j = 0; grp && j < n; j++) free(grp[j].canon);
    free(grp);
    return rc;
}

static int vm_latest(struct store *s, const char *ns, const char *mcis, const char *vm,
                     const char *measurement, struct store_result *out)
{
    memset(out, 0, sizeof *out);
    if (!ns || !mcis) return -EINVAL;
    struct sh_client c;
    sh_client_init(&c, &s->qconf);
    struct sh_str sel = {0};
    pq_sel(&sel, ns, mcis, vm, measurement, NULL, NULL);
    json_t *r1 = NULL, *r2 = NULL, *vals, *times;
    int64_t longw = s->retention_ns > 0 ? s->retention_ns : VM_LATEST_LONG;
    int rc = sel.err;
    /* A short look back answers for every series that reported in the last
     * hour; the index says whether older ones exist, and only then is the
     * whole retention read. */
    size_t nseries = 0;
    int64_t w = VM_LATEST_SHORT;
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        json_decref(r1);
        json_decref(r2);
        r1 = r2 = NULL;
        if ((rc = vm_instant(s, &c, "last_over_time", sel.p, w, &r1, &vals)) ||
            (rc = vm_instant(s, &c, "tlast_over_time", sel.p, w, &r2, &times)))
            break;
        if (pass == 0 && (rc = vm_series_count(s, &c, sel.p, longw, &nseries))) break;
        if (json_array_size(vals) >= nseries) break;
        w = longw;
    }
    if (rc == 0) rc = latest_from(measurement, vals, times, out);
    if (rc == 0) rs_latest_sort(out);
    json_decref(r1);
    json_decref(r2);
    sh_str_free(&sel);
    sh_client_close(&c);
    if (rc || out->nlatest == 0) store_result_free(out);
    return rc;
}

/* ---- the rest of the ops ---------------------------------------------------------------- */

static int64_t vm_retention(struct store *s, int64_t cutoff_ns)
{
    (void)s;
    (void)cutoff_ns;
    return 0; /* the server's -retentionPeriod */
}

static int64_t vm_size(struct store *s)
{
    (void)s;
    return 0;
}

static void vm_close(struct store *s)
{
    if (!s) return;
    sh_client_close(&s->w);
    sh_pool_close(&s->pool);
    rs_writes_free(&s->writes);
    sh_str_free(&s->write_url);
    sh_str_free(&s->read_base);
    free(s->user);
    free(s->password);
    free(s);
}

static int vm_open(const struct store_conf *conf, struct store **out, char *err, size_t errlen)
{
    char dummy[1];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    *out = NULL;
    if (!conf) return -EINVAL;
    struct store *s = calloc(1, sizeof *s);
    if (!s) return -ENOMEM;
    static const char *const known[] = {"batch", "parallel", "timeout", "gzip", NULL};
    int rc = sh_url_parse(conf->url, "victoriametrics", &s->u, err, errlen);
    if (rc || (rc = sh_params_known(&s->u, known, err, errlen))) goto fail;
    char v[64];
    s->batch = VM_BATCH_DEFAULT;
    s->gzip = true;
    int64_t timeout = VM_TIMEOUT_NS;
    if ((rc = sh_param(&s->u, "batch", v, sizeof v)) < 0) goto badparam;
    if (rc == 1) {
        char *end;
        unsigned long b = strtoul(v, &end, 10);
        if (*end || b < 1 || b > VM_BATCH_MAX) goto badparam;
        s->batch = b;
    }
    s->parallel = SH_PARALLEL_DEFAULT;
    if ((rc = sh_param(&s->u, "parallel", v, sizeof v)) < 0) goto badparam;
    if (rc == 1) {
        char *end;
        unsigned long p = strtoul(v, &end, 10);
        if (*end || p < 1 || p > SH_MAX_PARALLEL) goto badparam;
        s->parallel = p;
    }
    if ((rc = sh_param(&s->u, "timeout", v, sizeof v)) < 0) goto badparam;
    if (rc == 1 && (timeout = sh_duration(v)) < 1000000) goto badparam;
    if ((rc = sh_param(&s->u, "gzip", v, sizeof v)) < 0) goto badparam;
    if (rc == 1) {
        if (strcmp(v, "0") && strcmp(v, "1")) goto badparam;
        s->gzip = v[0] == '1';
    }
    /* Cluster: .../insert/<tenant>, reads from store.read_url. */
    const char *ins = strstr(s->u.base, "/insert/");
    bool cluster = ins && strchr(ins + 8, '/') == NULL && ins[8];
    if (cluster) {
        sh_str_addf(&s->write_url, "%s/influx/write", s->u.base);
        if (!conf->read_url || !conf->read_url[0]) {
            snprintf(err, errlen,
                     "store URL '%s' is a cluster's vminsert: set store.read_url to the vmselect "
                     "URL, e.g. http://vmselect:8481/select/0/prometheus",
                     conf->url);
            rc = PT_E_CONFIG;
            goto fail;
        }
    } else {
        sh_str_addf(&s->write_url, "%s/write", s->u.base);
    }
    const char *rb = conf->read_url && conf->read_url[0] ? conf->read_url : s->u.base;
    if (strncmp(rb, "http://", 7) != 0 && strncmp(rb, "https://", 8) != 0) {
        snprintf(err, errlen, "store.read_url '%s': expected http://host:port/...", rb);
        rc = PT_E_CONFIG;
        goto fail;
    }
    sh_str_adds(&s->read_base, rb);
    while (s->read_base.len && s->read_base.p[s->read_base.len - 1] == '/')
        s->read_base.p[--s->read_base.len] = '\0';
    s->retention_ns = conf->retention_ns;
    s->refused = conf->points_refused;
    s->unwritable = conf->points_unwritable;
    if ((conf->user && !(s->user = strdup(conf->user))) ||
        (conf->password && !(s->password = strdup(conf->password))) || s->write_url.err ||
        s->read_base.err || !s->write_url.p || !s->read_base.p || sh_global_init()) {
        rc = -ENOMEM;
        goto fail;
    }
    s->wconf = (struct sh_conf){s->user, s->password, timeout, 1 << 20};
    s->qconf = (struct sh_conf){s->user, s->password, timeout, VM_QUERY_MAX};
    s->writes.buf_max = VM_BODY_MAX;
    sh_client_init(&s->w, &s->wconf);
    sh_pool_init(&s->pool, &s->wconf, s->parallel);
    PT_INFO("store", "victoriametrics: writes to %s, reads from %s, %zu points per request%s",
            s->write_url.p, s->read_base.p, s->batch, s->gzip ? ", gzip" : "");
    *out = s;
    return 0;
badparam:
    snprintf(err, errlen,
             "store URL '%s': bad parameter (batch=1..%d, parallel=1..%d, timeout=<n>s|ms, "
             "gzip=0|1)",
             conf->url, VM_BATCH_MAX, SH_MAX_PARALLEL);
    rc = PT_E_CONFIG;
fail:
    if (!err[0]) snprintf(err, errlen, "store %s: %s", conf->url, pt_strerror(rc));
    vm_close(s);
    return rc ? rc : PT_E_STORE;
}

const struct store_ops store_victoriametrics_ops = {
    .name = "victoriametrics",
    .open = vm_open,
    .write_batch = vm_write_batch,
    .write_submit = vm_write_submit,
    .write_wait = vm_write_wait,
    .query = vm_query,
    .latest = vm_latest,
    .retention = vm_retention,
    .size = vm_size,
    .close = vm_close,
};
