/* The InfluxDB 1.x backend: line protocol over POST /write (gzip, in
 * requests of store.batch points), InfluxQL over POST /query for reads.
 * Every identifier in a query is double-quoted and every literal
 * single-quoted, both escaped (iq_ident, iq_lit): nothing from a request is
 * ever spliced into InfluxQL as is. docs/storage.md ("InfluxDB") has the
 * URL, the mapping and what is computed where.
 *
 * Threads: the writer thread owns s->w and s->writes (its requests run on
 * the pool's poster thread); each query() and latest() call makes its own
 * curl handle, so readers share nothing. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pt/catalog.h"
#include "pt/err.h"
#include "pt/log.h"
#include "store/lineproto.h"
#include "store/remote_int.h"
#include "store/store_int.h"
#include "store/storehttp.h"

#define IX_BATCH_DEFAULT 5000
#define IX_BATCH_MAX     100000
#define IX_TIMEOUT_NS    (INT64_C(10) * 1000000000)
#define IX_QUERY_MAX     ((size_t)1 << 30) /* answer bytes of one query */
#define IX_BODY_MAX      ((size_t)512 << 20)

struct store {
    struct sh_url u;
    char db[256], rp[256];
    struct sh_str write_url, query_url;
    struct sh_conf wconf, qconf;
    struct sh_client w; /* the writer thread's */
    size_t batch;
    bool gzip;
    int64_t retention_ns;
    bool ready;              /* database and retention policy known to exist */
    struct rs_writes writes; /* batches submitted, not yet waited for */
    struct sh_pool pool;     /* the writer's parallel requests */
    size_t parallel;         /* requests in flight at most */
    struct pt_complain complain, c_unwritable;
    _Atomic uint64_t *refused, *unwritable;
    char *user, *password;
};

static void count(_Atomic uint64_t *c, uint64_t n)
{
    if (c) atomic_fetch_add(c, n);
}

/* ---- InfluxQL text -------------------------------------------------------------- */

/* InfluxQL reads \\ \" \' and \n inside both kinds of quotes. */
static void iq_quoted(struct sh_str *q, char quote, const char *s)
{
    sh_str_add(q, &quote, 1);
    for (; *s; s++) {
        if (*s == '\\' || *s == quote)
            sh_str_add(q, "\\", 1);
        else if (*s == '\n') {
            sh_str_add(q, "\\n", 2);
            continue;
        }
        sh_str_add(q, s, 1);
    }
    sh_str_add(q, &quote, 1);
}

static void iq_ident(struct sh_str *q, const char *s)
{
    iq_quoted(q, '"', s);
}

static void iq_lit(struct sh_str *q, const char *s)
{
    iq_quoted(q, '\'', s);
}

/* FROM target: "rp"."m", or "m" in the database's default policy. */
static void iq_from(const struct store *s, struct sh_str *q, const char *m)
{
    if (s->rp[0]) {
        iq_ident(q, s->rp);
        sh_str_add(q, ".", 1);
    }
    if (m)
        iq_ident(q, m);
    else
        sh_str_adds(q, "/.*/");
}

static void iq_eq(struct sh_str *q, const char *key, const char *val)
{
    iq_ident(q, key);
    sh_str_add(q, "=", 1);
    iq_lit(q, val);
}

/* WHERE identity [AND tag filters] [AND time range]. */
static void iq_where(struct sh_str *q, const char *ns, const char *mcis, const char *vm,
                     const struct store_query *f, bool time)
{
    sh_str_adds(q, " WHERE ");
    iq_eq(q, "ns_id", ns);
    sh_str_adds(q, " AND ");
    iq_eq(q, "mcis_id", mcis);
    if (vm) {
        sh_str_adds(q, " AND ");
        iq_eq(q, "vm_id", vm);
    }
    for (size_t i = 0; f && i < f->ntag_filters; i++) {
        sh_str_adds(q, " AND ");
        iq_eq(q, f->tag_keys[i], f->tag_vals[i]);
    }
    if (time) sh_str_addf(q, " AND time >= %" PRId64 " AND time < %" PRId64, f->from_ns, f->to_ns);
}

/* ---- requests ------------------------------------------------------------------- */

/* Runs one InfluxQL statement; *root holds the parsed answer and *res its
 * results[0] (borrowed). */
static int ix_run(struct store *s, struct sh_client *c, const char *stmt, bool with_db,
                  json_t **root, json_t **res)
{
    *root = *res = NULL;
    char *eq = sh_escape(stmt), *edb = sh_escape(s->db);
    struct sh_str body = {0};
    if (!eq || !edb) {
        free(eq);
        free(edb);
        return -ENOMEM;
    }
    sh_str_addf(&body, "epoch=ns&q=");
    sh_str_adds(&body, eq);
    if (with_db) {
        sh_str_adds(&body, "&db=");
        sh_str_adds(&body, edb);
    }
    free(eq);
    free(edb);
    if (body.err) {
        sh_str_free(&body);
        return body.err;
    }
    struct sh_resp r;
    char err[512] = "";
    int rc = sh_request(c, s->query_url.p, body.p, body.len, "application/x-www-form-urlencoded",
                        false, &r, err, sizeof err);
    sh_str_free(&body);
    if (rc) {
        PT_WARN("store", "influxdb: query failed: %s", err);
        return rc;
    }
    if (r.status != 200) {
        char msg[320];
        sh_resp_message(&r, msg, sizeof msg);
        PT_WARN("store", "influxdb: query answered HTTP %ld: %s", r.status, msg);
        rc = r.status == 401 || r.status == 403 ? -EACCES : r.status >= 500 ? -EIO : PT_E_STORE;
        free(r.body);
        return rc;
    }
    char jerr[160];
    *root = sh_json_load(r.body, r.len, jerr, sizeof jerr);
    free(r.body);
    if (!*root) {
        PT_WARN("store", "influxdb: query answer is not JSON: %s", jerr);
        return PT_E_STORE;
    }
    *res = json_array_get(json_object_get(*root, "results"), 0);
    const char *e = json_string_value(json_object_get(*res, "error"));
    if (!*res || e) {
        PT_WARN("store", "influxdb: query refused: %s", e ? e : "no results");
        json_decref(*root);
        *root = *res = NULL;
        return PT_E_STORE;
    }
    return 0;
}

/* Creates the database and the retention policy when missing. */
static int ix_ensure(struct store *s, struct sh_client *c)
{
    struct sh_str q = {0};
    json_t *root = NULL, *res;
    sh_str_adds(&q, "CREATE DATABASE ");
    iq_ident(&q, s->db);
    int rc = q.err ? q.err : ix_run(s, c, q.p, false, &root, &res);
    sh_str_free(&q);
    json_decref(root);
    root = NULL;
    if (rc == -EACCES) {
        /* Not an admin: the database may well exist; writes will tell. */
        PT_WARN("store", "influxdb: not allowed to create database \"%s\"; assuming it exists",
                s->db);
        rc = 0;
    }
    if (rc || !s->rp[0]) goto out;
    sh_str_adds(&q, "SHOW RETENTION POLICIES ON ");
    iq_ident(&q, s->db);
    rc = q.err ? q.err : ix_run(s, c, q.p, false, &root, &res);
    sh_str_free(&q);
    if (rc) goto out;
    bool found = false;
    json_t *vals = json_object_get(json_array_get(json_object_get(res, "series"), 0), "values");
    for (size_t i = 0; i < json_array_size(vals) && !found; i++) {
        const char *name = json_string_value(json_array_get(json_array_get(vals, i), 0));
        found = name && strcmp(name, s->rp) == 0;
    }
    json_decref(root);
    root = NULL;
    if (found) goto out;
    sh_str_adds(&q, "CREATE RETENTION POLICY ");
    iq_ident(&q, s->rp);
    sh_str_adds(&q, " ON ");
    iq_ident(&q, s->db);
    if (s->retention_ns <= 0) {
        sh_str_adds(&q, " DURATION INF");
    } else {
        int64_t secs = s->retention_ns / 1000000000;
        sh_str_addf(&q, " DURATION %" PRId64 "s", secs < 3600 ? 3600 : secs); /* 1 h at least */
    }
    sh_str_adds(&q, " REPLICATION 1");
    rc = q.err ? q.err : ix_run(s, c, q.p, false, &root, &res);
    sh_str_free(&q);
    json_decref(root);
    root = NULL;
    if (rc == 0)
        PT_INFO("store", "influxdb: created retention policy \"%s\" on \"%s\"", s->rp, s->db);
out:
    if (rc == 0) s->ready = true;
    return rc;
}

/* ---- writing ---------------------------------------------------------------------- */

/* "partial write: ... dropped=N": how many points of the request were lost. */
static uint64_t dropped_of(const char *msg, uint64_t whole)
{
    const char *d = msg ? strstr(msg, "dropped=") : NULL;
    if (!d) return whole;
    unsigned long long n = strtoull(d + 8, NULL, 10);
    return n && n <= whole ? n : whole;
}

/* What the answer to one request means: 0, -EINVAL (refused: counted,
 * never retried) or a transient code. */
static int ix_judge(struct store *s, const struct sh_part *pt)
{
    if (pt->rc) {
        pt_complain(&s->complain, PT_LOG_ERROR, "store", "influxdb: write: %s", pt->msg);
        return pt->rc == -EINVAL ? -EIO : pt->rc; /* a bad URL is not the points' fault */
    }
    long st = pt->status;
    if (st == 204 || st == 200) return 0;
    if (st == 401 || st == 403) {
        pt_complain(&s->complain, PT_LOG_ERROR, "store",
                    "influxdb: write refused (HTTP %ld, check store.user/store.password): %s", st,
                    pt->msg);
        return -EACCES;
    }
    if (st == 404) { /* database dropped under us: create it again, then retry */
        pt_complain(&s->complain, PT_LOG_ERROR, "store", "influxdb: write: HTTP 404: %s", pt->msg);
        s->ready = false;
        return -ENOENT;
    }
    if (st >= 400 && st < 500) {
        uint64_t lost = dropped_of(pt->msg, pt->npts);
        count(s->refused, lost);
        PT_ERROR("store", "influxdb: server refused %" PRIu64 " of %zu points (HTTP %ld): %s", lost,
                 pt->npts, st, pt->msg);
        return -EINVAL;
    }
    pt_complain(&s->complain, PT_LOG_ERROR, "store", "influxdb: write: HTTP %ld: %s", st, pt->msg);
    return -EIO;
}

/* Ends a request at the current end of buf. */
static const struct rs_write_ops ix_write_ops = {
    .name = "influxdb",
    .dialect = LP_INFLUX,
    .unwritable = "a name or tag has a backslash before ',', ' ', '=' or at its end, which "
                  "InfluxDB 1.x line protocol cannot carry",
    .judge = ix_judge,
};

static struct rs_target ix_target(struct store *s)
{
    return (struct rs_target){&s->pool, s->write_url.p, s->gzip, s->batch, s->parallel};
}

static int ix_write_submit(struct store *s, const struct store_point *pts, size_t n)
{
    if (n && !pts) return -EINVAL;
    int rc;
    /* Not ready: the server was down at open, or the database was dropped.
     * Whatever fails here is worth a retry. */
    if (n && !s->ready && (rc = ix_ensure(s, &s->w))) return rc == PT_E_STORE ? -EIO : rc;
    size_t skipped;
    struct rs_target t = ix_target(s);
    rc = rs_submit(s, &ix_write_ops, &s->writes, &t, pts, n, &s->c_unwritable, &s->complain,
                   &skipped);
    count(s->unwritable, skipped);
    return rc;
}

static int ix_write_wait(struct store *s, int64_t timeout_ns)
{
    struct rs_target t = ix_target(s);
    int rc = rs_wait(s, &ix_write_ops, &s->writes, &t, timeout_ns);
    if (rc == 0) pt_complain_release(&s->complain, "store", "influxdb: writes succeed again");
    return rc;
}

static int ix_write_batch(struct store *s, const struct store_point *pts, size_t n)
{
    if (n == 0) return 0;
    int rc = ix_write_submit(s, pts, n);
    return rc ? rc : ix_write_wait(s, -1);
}

/* ---- schema discovery --------------------------------------------------------------- */

struct fkey {
    char *name;
    uint8_t type; /* PT_F_*, 0 for boolean (never written by Pantala) */
};

static void fkeys_free(struct fkey *f, size_t n)
{
    for (size_t i = 0; i < n; i++) free(f[i].name);
    free(f);
}

static uint8_t influx_type(const char *t)
{
    if (!t) return 0;
    if (strcmp(t, "float") == 0) return PT_F_FLOAT;
    if (strcmp(t, "integer") == 0) return PT_F_INT;
    if (strcmp(t, "string") == 0) return PT_F_STR;
    return 0;
}

/* Field keys of measurement m: names and types. */
static int ix_fields(struct store *s, struct sh_client *c, const char *m, struct fkey **out,
                     size_t *nout)
{
    *out = NULL;
    *nout = 0;
    struct sh_str q = {0};
    sh_str_adds(&q, "SHOW FIELD KEYS FROM ");
    iq_from(s, &q, m);
    json_t *root = NULL, *res;
    int rc = q.err ? q.err : ix_run(s, c, q.p, true, &root, &res);
    sh_str_free(&q);
    if (rc) return rc;
    json_t *vals = json_object_get(json_array_get(json_object_get(res, "series"), 0), "values");
    size_t n = json_array_size(vals);
    struct fkey *f = calloc(n ? n : 1, sizeof *f);
    if (!f) rc = -ENOMEM;
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_t *row = json_array_get(vals, i);
        const char *name = json_string_value(json_array_get(row, 0));
        if (!name) continue;
        if (!(f[*nout].name = strdup(name))) rc = -ENOMEM;
        f[(*nout)++].type = influx_type(json_string_value(json_array_get(row, 1)));
    }
    json_decref(root);
    if (rc) {
        fkeys_free(f, *nout);
        *nout = 0;
        return rc;
    }
    *out = f;
    return 0;
}

/* Tag keys of m within the MCIS, identity tags left out. */
static int ix_tags(struct store *s, struct sh_client *c, const struct store_query *qq, char ***out,
                   size_t *nout)
{
    *out = NULL;
    *nout = 0;
    struct sh_str q = {0};
    sh_str_adds(&q, "SHOW TAG KEYS FROM ");
    iq_from(s, &q, qq->measurement);
    iq_where(&q, qq->ns, qq->mcis, NULL, NULL, false);
    json_t *root = NULL, *res;
    int rc = q.err ? q.err : ix_run(s, c, q.p, true, &root, &res);
    sh_str_free(&q);
    if (rc) return rc;
    json_t *vals = json_object_get(json_array_get(json_object_get(res, "series"), 0), "values");
    size_t n = json_array_size(vals);
    char **k = calloc(n ? n : 1, sizeof *k);
    if (!k) rc = -ENOMEM;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *name = json_string_value(json_array_get(json_array_get(vals, i), 0));
        if (!name || rs_ident_key(name)) continue;
        if (!(k[*nout] = strdup(name)))
            rc = -ENOMEM;
        else
            (*nout)++;
    }
    json_decref(root);
    *out = k;
    return rc;
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) free(v[i]);
    free(v);
}

/* ---- range queries ------------------------------------------------------------------ */

static const char *iq_fn(enum store_agg a)
{
    switch (a) {
    case STORE_AGG_MIN:
        return "min";
    case STORE_AGG_MAX:
        return "max";
    case STORE_AGG_AVG:
        return "mean";
    case STORE_AGG_SUM:
        return "sum";
    case STORE_AGG_COUNT:
        return "count";
    case STORE_AGG_LAST:
    default:
        return "last";
    }
}

/* SELECT [fn(]"f"[) AS "f"], ... */
static void iq_select(struct sh_str *q, char *const *f, size_t n, const char *fn)
{
    sh_str_adds(q, "SELECT ");
    for (size_t i = 0; i < n; i++) {
        if (i) sh_str_add(q, ",", 1);
        if (fn) {
            sh_str_adds(q, fn);
            sh_str_add(q, "(", 1);
        }
        iq_ident(q, f[i]);
        if (fn) {
            sh_str_adds(q, ") AS ");
            iq_ident(q, f[i]);
        }
    }
}

static void iq_group(struct sh_str *q, const struct store_query *qq, char *const *tags, size_t nt,
                     bool by_vm, bool by_time)
{
    sh_str_adds(q, " GROUP BY ");
    bool first = true;
    if (by_time) {
        sh_str_addf(q, "time(%" PRId64 "ns)", qq->step_ns);
        first = false;
    }
    if (by_vm) {
        if (!first) sh_str_add(q, ",", 1);
        iq_ident(q, "vm_id");
        first = false;
    }
    for (size_t i = 0; i < nt; i++) {
        if (!first) sh_str_add(q, ",", 1);
        iq_ident(q, tags[i]);
        first = false;
    }
    if (first) sh_str_adds(q, "time(1000000000000000000ns)"); /* never: by_vm is always set */
    if (by_time) sh_str_adds(q, " fill(none)");
}

/* Reads the series of an answer into set. */
static int ix_collect(struct rs_set *set, json_t *res, bool with_vm)
{
    json_t *series = json_object_get(res, "series");
    for (size_t i = 0; i < json_array_size(series); i++) {
        json_t *sr = json_array_get(series, i);
        if (json_is_true(json_object_get(sr, "partial"))) {
            PT_WARN("store", "influxdb: the server cut a query answer short (max-row-limit)");
            return -E2BIG;
        }
        json_t *tags = json_object_get(sr, "tags");
        const char *vm = with_vm ? json_string_value(json_object_get(tags, "vm_id")) : NULL;
        char *tk[64], *tv[64];
        size_t nt = 0;
        const char *k;
        json_t *v;
        json_object_foreach(tags, k, v)
        {
            if (rs_ident_key(k) || nt == 64) continue;
            tk[nt] = (char *)k;
            tv[nt++] = (char *)json_string_value(v);
        }
        for (size_t j = 0; j < nt; j++)
            if (!tv[j]) tv[j] = "";
        struct rs_series *s;
        int rc = rs_series(set, vm && vm[0] ? vm : NULL, tk, tv, nt, &s);
        if (rc) return rc;
        json_t *cols = json_object_get(sr, "columns");
        size_t nc = json_array_size(cols);
        int idx[STORE_MAX_COLS + 1];
        if (nc > STORE_MAX_COLS + 1) return -E2BIG;
        for (size_t c = 1; c < nc; c++)
            if ((rc = rs_column(set, json_string_value(json_array_get(cols, c)), 0, &idx[c])))
                return rc;
        json_t *vals = json_object_get(sr, "values");
        for (size_t r = 0; r < json_array_size(vals); r++) {
            json_t *row = json_array_get(vals, r);
            int64_t ts = (int64_t)json_integer_value(json_array_get(row, 0));
            for (size_t c = 1; c < nc && c < json_array_size(row); c++) {
                json_t *x = json_array_get(row, c);
                if (!json_is_number(x)) continue; /* null: no value */
                if ((rc = rs_add(set, s, idx[c], ts, json_number_value(x)))) return rc;
            }
        }
    }
    return 0;
}

static int ix_query(struct store *s, const struct store_query *q, struct store_result *out)
{
    memset(out, 0, sizeof *out);
    int rc = rs_query_check(q);
    if (rc) return rc;
    struct sh_client c;
    sh_client_init(&c, &s->qconf);
    struct fkey *fk = NULL;
    size_t nfk = 0, ntags = 0, nsel = 0;
    char **tags = NULL, **sel = NULL;
    struct rs_set set;
    struct sh_str qs = {0};
    json_t *root = NULL, *res;
    if ((rc = rs_init(&set, q))) goto done;
    if ((rc = ix_fields(s, &c, q->measurement, &fk, &nfk)) || nfk == 0) goto finish;
    if ((rc = ix_tags(s, &c, q, &tags, &ntags))) goto done;
    /* The numeric fields to select: as asked, or all of the measurement
     * (the result keeps only those with values in each series). */
    if (!(sel = calloc(nfk, sizeof *sel))) {
        rc = -ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < nfk; i++) {
        if (fk[i].type != PT_F_FLOAT && fk[i].type != PT_F_INT) continue;
        uint8_t t = fk[i].type;
        const struct pt_metric *m = pt_catalog_find(q->measurement, fk[i].name);
        if (t == PT_F_INT && m && m->type == PT_F_UINT) t = PT_F_UINT;
        int idx;
        if ((rc = rs_column(&set, fk[i].name, t, &idx))) goto done;
        if (idx >= 0) sel[nsel++] = fk[i].name;
    }
    if (nsel == 0) goto finish;

    bool across = !q->vm && !q->group_by_vm;
    bool client = q->step_ns > 0 && q->agg == STORE_AGG_P95; /* PERCENTILE is not nearest rank */
    if (q->step_ns == 0 || client) {
        iq_select(&qs, sel, nsel, NULL);
        sh_str_adds(&qs, " FROM ");
        iq_from(s, &qs, q->measurement);
        iq_where(&qs, q->ns, q->mcis, q->vm, q, true);
        iq_group(&qs, q, tags, ntags, true, false);
    } else if (!across) {
        iq_select(&qs, sel, nsel, iq_fn(q->agg));
        sh_str_adds(&qs, " FROM ");
        iq_from(s, &qs, q->measurement);
        iq_where(&qs, q->ns, q->mcis, q->vm, q, true);
        iq_group(&qs, q, tags, ntags, true, true);
    } else {
        /* Per VM and bucket inside, across VMs outside. The outer range
         * starts at the first bucket's start, which may precede from. */
        iq_select(&qs, sel, nsel, iq_fn(q->across));
        sh_str_adds(&qs, " FROM (");
        iq_select(&qs, sel, nsel, iq_fn(q->agg));
        sh_str_adds(&qs, " FROM ");
        iq_from(s, &qs, q->measurement);
        iq_where(&qs, q->ns, q->mcis, NULL, q, true);
        iq_group(&qs, q, tags, ntags, true, true);
        sh_str_addf(&qs, ") WHERE time >= %" PRId64 " AND time < %" PRId64,
                    store_bucket(q->from_ns, q->step_ns), q->to_ns);
        iq_group(&qs, q, tags, ntags, false, true);
    }
    if ((rc = qs.err) || (rc = ix_run(s, &c, qs.p, true, &root, &res))) goto done;
    if ((rc = ix_collect(&set, res, !(across && !client)))) goto done;
    json_decref(root);
    root = NULL;
    if (client && (rc = rs_reduce(&set))) goto done;
    if (client && across && (rc = rs_across(&set))) goto done;
finish:
    if (rc == 0) rc = rs_finish(&set, out);
done:
    json_decref(root);
    sh_str_free(&qs);
    free(sel);
    strv_free(tags, ntags);
    fkeys_free(fk, nfk);
    rs_free(&set);
    sh_client_close(&c);
    if (rc) store_result_free(out);
    return rc;
}

/* ---- latest --------------------------------------------------------------------------- */

/* Field types of every measurement (SHOW FIELD KEYS without FROM). */
struct mtypes {
    json_t *root, *series;
};

static uint8_t mt_type(const struct mtypes *mt, const char *m, const char *f)
{
    for (size_t i = 0; i < json_array_size(mt->series); i++) {
        json_t *sr = json_array_get(mt->series, i);
        const char *name = json_string_value(json_object_get(sr, "name"));
        if (!name || strcmp(name, m) != 0) continue;
        json_t *vals = json_object_get(sr, "values");
        for (size_t j = 0; j < json_array_size(vals); j++) {
            json_t *row = json_array_get(vals, j);
            const char *fn = json_string_value(json_array_get(row, 0));
            if (fn && strcmp(fn, f) == 0)
                return influx_type(json_string_value(json_array_get(row, 1)));
        }
    }
    return 0;
}

/* Fills one latest entry from an answer's series (newest row first). */
static int latest_fill(const struct mtypes *mt, json_t *sr, const char *m, struct store_latest *l)
{
    json_t *tags = json_object_get(sr, "tags"), *cols = json_object_get(sr, "columns");
    json_t *row = json_array_get(json_object_get(sr, "values"), 0);
    const char *vm = json_string_value(json_object_get(tags, "vm_id"));
    if (!(l->vm = strdup(vm ? vm : "")) || !(l->measurement = strdup(m))) return -ENOMEM;
    l->ts_ns = (int64_t)json_integer_value(json_array_get(row, 0));
    size_t nt = 0, nc = json_array_size(cols);
    l->tag_keys = calloc(json_object_size(tags) + 1, sizeof *l->tag_keys);
    l->tag_vals = calloc(json_object_size(tags) + 1, sizeof *l->tag_vals);
    l->fields = calloc(nc + 1, sizeof *l->fields);
    if (!l->tag_keys || !l->tag_vals || !l->fields) return -ENOMEM;
    /* Tags sorted by key: insertion into the sorted prefix. */
    const char *k;
    json_t *v;
    json_object_foreach(tags, k, v)
    {
        const char *val = json_string_value(v);
        if (rs_ident_key(k) || !val || !val[0]) continue;
        size_t j = nt;
        while (j > 0 && strcmp(l->tag_keys[j - 1], k) > 0) {
            l->tag_keys[j] = l->tag_keys[j - 1];
            l->tag_vals[j] = l->tag_vals[j - 1];
            j--;
        }
        l->tag_keys[j] = strdup(k);
        l->tag_vals[j] = strdup(val);
        l->ntags = ++nt;
        if (!l->tag_keys[j] || !l->tag_vals[j]) return -ENOMEM;
    }
    for (size_t c = 1; c < nc; c++) {
        const char *f = json_string_value(json_array_get(cols, c));
        json_t *x = json_array_get(row, c);
        if (!f || !x || json_is_null(x)) continue;
        uint8_t t = mt_type(mt, m, f);
        const struct pt_metric *cm = pt_catalog_find(m, f);
        struct pt_field *d = &l->fields[l->nfields];
        if (t == PT_F_STR && json_is_string(x)) {
            if (!(d->v.s.p = strdup(json_string_value(x)))) return -ENOMEM;
            d->v.s.len = (uint32_t)json_string_length(x);
        } else if (t == PT_F_INT && json_is_integer(x)) {
            d->v.i = (int64_t)json_integer_value(x);
            if (cm && cm->type == PT_F_UINT && d->v.i >= 0) {
                t = PT_F_UINT;
                d->v.u = (uint64_t)json_integer_value(x);
            }
        } else if (t == PT_F_FLOAT && json_is_number(x)) {
            double dv = json_number_value(x);
            /* An unsigned value above INT64_MAX was written as a float. */
            if (cm && cm->type == PT_F_UINT && dv >= 9223372036854775808.0 &&
                dv < 18446744073709551616.0) {
                t = PT_F_UINT;
                d->v.u = (uint64_t)dv;
            } else {
                d->v.f = dv;
            }
        } else {
            continue; /* booleans, or a type that changed: not Pantala's */
        }
        if (!(d->key.p = strdup(f))) {
            if (t == PT_F_STR) free((char *)d->v.s.p);
            return -ENOMEM;
        }
        d->key.len = (uint32_t)strlen(f);
        d->type = t;
        l->nfields++;
    }
    return 0;
}

/* Frees entry i of r and closes the gap. */
static void latest_drop(struct store_result *r, size_t i)
{
    struct store_result one = {.latest = malloc(sizeof *r->latest), .nlatest = 1};
    if (one.latest) {
        one.latest[0] = r->latest[i];
        store_result_free(&one);
    }
    memmove(&r->latest[i], &r->latest[i + 1], (r->nlatest - i - 1) * sizeof *r->latest);
    r->nlatest--;
}

static int ix_latest(struct store *s, const char *ns, const char *mcis, const char *vm,
                     const char *measurement, struct store_result *out)
{
    memset(out, 0, sizeof *out);
    if (!ns || !mcis) return -EINVAL;
    struct sh_client c;
    sh_client_init(&c, &s->qconf);
    struct sh_str q = {0};
    struct mtypes mt = {0};
    json_t *root = NULL, *res;
    sh_str_adds(&q, "SHOW FIELD KEYS FROM ");
    iq_from(s, &q, measurement);
    int rc = q.err ? q.err : ix_run(s, &c, q.p, true, &mt.root, &res);
    sh_str_free(&q);
    if (rc) goto done;
    mt.series = json_object_get(res, "series");
    if (json_array_size(mt.series) == 0) goto done;
    /* The newest point of every series: GROUP BY * splits by every tag. */
    sh_str_adds(&q, "SELECT * FROM ");
    iq_from(s, &q, measurement);
    iq_where(&q, ns, mcis, vm, NULL, false);
    sh_str_adds(&q, " GROUP BY * ORDER BY time DESC LIMIT 1");
    if ((rc = q.err) || (rc = ix_run(s, &c, q.p, true, &root, &res))) goto done;
    json_t *series = json_object_get(res, "series");
    size_t n = json_array_size(series);
    if (n && !(out->latest = calloc(n, sizeof *out->latest))) {
        rc = -ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_t *sr = json_array_get(series, i);
        const char *m = json_string_value(json_object_get(sr, "name"));
        if (!m || json_array_size(json_object_get(sr, "values")) == 0) continue;
        struct store_latest *l = &out->latest[out->nlatest++];
        rc = latest_fill(&mt, sr, m, l);
        if (rc == 0 && l->nfields == 0) latest_drop(out, out->nlatest - 1);
    }
    if (rc == 0) {
        rs_latest_sort(out);
        /* One series whose csp_type or host changed is two in InfluxDB:
         * keep the newest of each (vm, measurement, tags); sorted, they
         * are neighbours. */
        for (size_t i = 1; i < out->nlatest;) {
            struct store_latest *a = &out->latest[i - 1], *b = &out->latest[i];
            char *ca = rs_canon(a->tag_keys, a->tag_vals, a->ntags);
            char *cb = rs_canon(b->tag_keys, b->tag_vals, b->ntags);
            bool same = ca && cb && strcmp(a->vm, b->vm) == 0 &&
                        strcmp(a->measurement, b->measurement) == 0 && strcmp(ca, cb) == 0;
            free(ca);
            free(cb);
            if (!same) {
                i++;
                continue;
            }
            if (b->ts_ns > a->ts_ns) {
                struct store_latest t = *a;
                *a = *b;
                *b = t;
            }
            latest_drop(out, i);
        }
    }
done:
    sh_str_free(&q);
    json_decref(mt.root);
    json_decref(root);
    sh_client_close(&c);
    if (rc || out->nlatest == 0) store_result_free(out);
    return rc;
}

/* ---- the rest of the ops -------------------------------------------------------------- */

/* The server applies retention: the retention policy's DURATION. */
static int64_t ix_retention(struct store *s, int64_t cutoff_ns)
{
    (void)s;
    (void)cutoff_ns;
    return 0;
}

static int64_t ix_size(struct store *s)
{
    (void)s;
    return 0; /* the server's disk; see its own /debug/vars */
}

static void ix_close(struct store *s)
{
    if (!s) return;
    sh_client_close(&s->w);
    sh_pool_close(&s->pool);
    rs_writes_free(&s->writes);
    sh_str_free(&s->write_url);
    sh_str_free(&s->query_url);
    free(s->user);
    free(s->password);
    free(s);
}

static int ix_open(const struct store_conf *conf, struct store **out, char *err, size_t errlen)
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
    static const char *const known[] = {"rp", "batch", "parallel", "timeout", "gzip", NULL};
    int rc = sh_url_parse(conf->url, "influxdb", &s->u, err, errlen);
    if (rc || (rc = sh_params_known(&s->u, known, err, errlen))) goto fail;
    /* The database is the last path segment: http://host:8086/pantala. */
    const char *host = strstr(s->u.base, "://") + 3;
    char *slash = strrchr(s->u.base, '/');
    if (!slash || slash < host || !slash[1] || strlen(slash + 1) >= sizeof s->db) {
        snprintf(err, errlen,
                 "store URL '%s': name the database, e.g. influxdb:http://127.0.0.1:8086/pantala",
                 conf->url);
        rc = PT_E_CONFIG;
        goto fail;
    }
    snprintf(s->db, sizeof s->db, "%s", slash + 1);
    *slash = '\0'; /* base is now the server's root */
    char v[64];
    s->batch = IX_BATCH_DEFAULT;
    s->gzip = true;
    int64_t timeout = IX_TIMEOUT_NS;
    if ((rc = sh_param(&s->u, "rp", s->rp, sizeof s->rp)) < 0) goto badparam;
    if ((rc = sh_param(&s->u, "batch", v, sizeof v)) < 0) goto badparam;
    if (rc == 1) {
        char *end;
        unsigned long b = strtoul(v, &end, 10);
        if (*end || b < 1 || b > IX_BATCH_MAX) goto badparam;
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
    s->retention_ns = conf->retention_ns;
    s->refused = conf->points_refused;
    s->unwritable = conf->points_unwritable;
    if ((conf->user && !(s->user = strdup(conf->user))) ||
        (conf->password && !(s->password = strdup(conf->password)))) {
        rc = -ENOMEM;
        goto fail;
    }
    s->wconf = (struct sh_conf){s->user, s->password, timeout, 1 << 20};
    s->qconf = (struct sh_conf){s->user, s->password, timeout, IX_QUERY_MAX};
    s->writes.buf_max = IX_BODY_MAX;
    char *edb = sh_escape(s->db), *erp = sh_escape(s->rp);
    if (edb && erp) {
        sh_str_addf(&s->write_url, "%s/write?precision=ns&db=", s->u.base);
        sh_str_adds(&s->write_url, edb);
        if (s->rp[0]) {
            sh_str_adds(&s->write_url, "&rp=");
            sh_str_adds(&s->write_url, erp);
        }
        sh_str_addf(&s->query_url, "%s/query", s->u.base);
    }
    free(edb);
    free(erp);
    if (!s->write_url.p || !s->query_url.p || s->write_url.err || s->query_url.err ||
        (rc = sh_global_init())) {
        rc = -ENOMEM;
        goto fail;
    }
    sh_client_init(&s->w, &s->wconf);
    sh_pool_init(&s->pool, &s->wconf, s->parallel);
    /* Create the database now when the server is up; when it is not, the
     * first write tries again (pantalad starts before its store does). */
    if ((rc = ix_ensure(s, &s->w))) {
        if (rc == PT_E_STORE) {
            snprintf(err, errlen,
                     "store %s: the server refused to create database \"%s\" (see log)", s->u.base,
                     s->db);
            goto fail;
        }
        PT_WARN("store", "influxdb: %s not reachable yet (%s); writes will retry", s->u.base,
                pt_strerror(rc));
    }
    PT_INFO("store", "influxdb: %s database \"%s\"%s%s, %zu points per request, %zu in parallel%s",
            s->u.base, s->db, s->rp[0] ? " retention policy " : "", s->rp, s->batch, s->parallel,
            s->gzip ? ", gzip" : "");
    *out = s;
    return 0;
badparam:
    snprintf(err, errlen,
             "store URL '%s': bad parameter (rp=<name>, batch=1..%d, parallel=1..%d, "
             "timeout=<n>s|ms, gzip=0|1)",
             conf->url, IX_BATCH_MAX, SH_MAX_PARALLEL);
    rc = PT_E_CONFIG;
fail:
    if (!err[0]) snprintf(err, errlen, "store %s: %s", conf->url, pt_strerror(rc));
    ix_close(s);
    return rc ? rc : PT_E_STORE;
}

const struct store_ops store_influxdb_ops = {
    .name = "influxdb",
    .open = ix_open,
    .write_batch = ix_write_batch,
    .write_submit = ix_write_submit,
    .write_wait = ix_write_wait,
    .query = ix_query,
    .latest = ix_latest,
    .retention = ix_retention,
    .size = ix_size,
    .close = ix_close,
};
