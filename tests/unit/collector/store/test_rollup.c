/* Tests of the roll-up tiers and the MCIS-level queries of the embedded
 * store (collector/store/rollup.c, sqlite.c): whatever tier a query is
 * served from, it gives what reducing the raw points gives, also after
 * points arrived out of order, were resent or were replaced; each tier keeps
 * its own retention; a schema-1 file gets its tiers built at open; and the
 * across-VM, per-VM and tag-filtered queries give the numbers worked out by
 * hand. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pt/catalog.h"
#include "pt/err.h"
#include "pt/time.h"
#include "pt/wire.h"
#include "store/store.h"

#define S(x) ((int64_t)(x)*PT_NS_PER_SEC)
/* A multiple of 3600 s. */
#define B INT64_C(1699999200)

static const struct store_ops *ops = &store_sqlite_ops;

/* ---- fixture ------------------------------------------------------------------ */

struct fx {
    char dir[64];
    struct store *s;
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static struct store *open_conf(const char *dir, int64_t raw, int64_t m1, int64_t h1)
{
    struct store_conf conf = {.url = "sqlite:",
                              .data_dir = dir,
                              .retention_ns = raw,
                              .retention_1m_ns = m1,
                              .retention_1h_ns = h1};
    struct store *s = NULL;
    char err[512];
    int rc = ops->open(&conf, &s, err, sizeof err);
    if (rc) fail_msg("open in %s: %s (%s)", dir, err, pt_strerror(rc));
    return s;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/pt-rollup-XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->s) ops->close(f->s);
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* ---- a model of what is stored ------------------------------------------------- */

/* One stored point of the model: up to three numeric fields (NaN: absent). */
#define NF 3
static const char *const fname[NF] = {"u", "n", "z"};
static const uint8_t ftype[NF] = {PT_F_FLOAT, PT_F_UINT, PT_F_INT};

struct mpt {
    int64_t ts;
    double v[NF];
    bool str; /* also carries a string field */
};

struct ser {
    const char *vm, *meas, *tk, *tv; /* tk NULL: no tag */
    struct mpt *p;                   /* by time */
    size_t n;
};

static uint64_t rng = 0x2545F4914F6CDD1Du;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void rnd_vals(struct mpt *p)
{
    p->v[0] = (double)(rnd() % 100000) / 100.0;
    p->v[1] = (double)(rnd() % 1000000);
    p->v[2] = (rnd() % 5 == 0) ? NAN : (double)((int64_t)(rnd() % 2001) - 1000);
    p->str = rnd() % 7 == 0;
}

/* Writes pts (pointers into models) as one batch. */
struct wp {
    struct pt_ident id;
    struct pt_meas m;
    struct pt_tag tag;
    struct pt_field f[NF + 1];
};

static void wp_fill(struct wp *w, const struct ser *s, const struct mpt *p, struct store_point *out)
{
    memset(w, 0, sizeof *w);
    w->id.ns = pt_str_c("ns1");
    w->id.mcis = pt_str_c("web");
    w->id.vm = pt_str_c(s->vm);
    w->m.name = pt_str_c(s->meas);
    if (s->tk) {
        w->tag = (struct pt_tag){pt_str_c(s->tk), pt_str_c(s->tv)};
        w->m.tags = &w->tag;
        w->m.ntags = 1;
    }
    w->m.fields = w->f;
    for (int k = 0; k < NF; k++) {
        if (isnan(p->v[k])) continue;
        struct pt_field *f = &w->f[w->m.nfields++];
        f->key = pt_str_c(fname[k]);
        f->type = ftype[k];
        if (ftype[k] == PT_F_FLOAT)
            f->v.f = p->v[k];
        else if (ftype[k] == PT_F_UINT)
            f->v.u = (uint64_t)p->v[k];
        else
            f->v.i = (int64_t)p->v[k];
    }
    if (p->str) {
        struct pt_field *f = &w->f[w->m.nfields++];
        f->key = pt_str_c("state");
        f->type = PT_F_STR;
        f->v.s = pt_str_c("ok");
    }
    *out = (struct store_point){&w->id, &w->m, p->ts};
}

struct pick {
    const struct ser *s;
    struct mpt p; /* the values written (a copy) */
};

static void write_picks(struct store *st, const struct pick *pk, size_t n)
{
    struct wp *w = calloc(n, sizeof *w);
    struct store_point *pts = calloc(n, sizeof *pts);
    assert_non_null(w);
    assert_non_null(pts);
    for (size_t i = 0; i < n; i++) wp_fill(&w[i], pk[i].s, &pk[i].p, &pts[i]);
    assert_int_equal(ops->write_batch(st, pts, n), 0);
    free(w);
    free(pts);
}

/* ---- expected results, reduced here from the model -------------------------------- */

static int64_t floor_to(int64_t t, int64_t step)
{
    int64_t r = t % step;
    return r < 0 ? t - r - step : t - r;
}

/* Reduces the model's points of s in [from, to) per step; returns the
 * number of rows, fills ts[] and v[row][k]. */
static size_t expect(const struct ser *s, int64_t from, int64_t to, int64_t step,
                     enum store_agg agg, int64_t *ts, double (*v)[NF])
{
    size_t rows = 0;
    size_t i = 0;
    while (i < s->n && s->p[i].ts < from) i++;
    while (i < s->n && s->p[i].ts < to) {
        int64_t bk = floor_to(s->p[i].ts, step);
        double mn[NF] = {0}, mx[NF] = {0}, sum[NF] = {0}, last[NF] = {0};
        size_t cnt[NF] = {0};
        for (; i < s->n && s->p[i].ts < to && floor_to(s->p[i].ts, step) == bk; i++)
            for (int k = 0; k < NF; k++) {
                double x = s->p[i].v[k];
                if (isnan(x)) continue;
                if (!cnt[k] || x < mn[k]) mn[k] = x;
                if (!cnt[k] || x > mx[k]) mx[k] = x;
                sum[k] = cnt[k] ? sum[k] + x : x;
                last[k] = x;
                cnt[k]++;
            }
        ts[rows] = bk;
        for (int k = 0; k < NF; k++) {
            double r = NAN;
            if (agg == STORE_AGG_COUNT)
                r = (double)cnt[k];
            else if (cnt[k])
                r = agg == STORE_AGG_MIN   ? mn[k]
                    : agg == STORE_AGG_MAX ? mx[k]
                    : agg == STORE_AGG_SUM ? sum[k]
                    : agg == STORE_AGG_AVG ? sum[k] / (double)cnt[k]
                                           : last[k];
            v[rows][k] = r;
        }
        rows++;
    }
    return rows;
}

static int col_of(const struct store_series *s, const char *name)
{
    for (size_t c = 0; c < s->nfields; c++)
        if (strcmp(s->fields[c], name) == 0) return (int)c;
    return -1;
}

static void near(double got, double want, const char *what)
{
    if (isnan(want) && isnan(got)) return;
    double tol = 1e-9 * (fabs(want) > 1 ? fabs(want) : 1);
    if (!(fabs(got - want) <= tol)) fail_msg("%s: got %.17g, want %.17g", what, got, want);
}

/* Queries one series and compares every row and field with the model. */
static void check(struct store *st, const struct ser *s, int64_t from, int64_t to, int64_t step,
                  enum store_agg agg)
{
    static int64_t ts[20000];
    static double v[20000][NF];
    size_t rows = expect(s, from, to, step, agg, ts, v);
    const char *tk[1] = {s->tk}, *tv[1] = {s->tv};
    struct store_query q = {.ns = "ns1",
                            .mcis = "web",
                            .vm = s->vm,
                            .measurement = s->meas,
                            .tag_keys = tk,
                            .tag_vals = tv,
                            .ntag_filters = s->tk ? 1 : 0,
                            .from_ns = from,
                            .to_ns = to,
                            .step_ns = step,
                            .agg = agg};
    struct store_result r;
    int rc = ops->query(st, &q, &r);
    if (rc)
        fail_msg("query %s step %llds: %s", store_agg_name(agg), (long long)(step / S(1)),
                 pt_strerror(rc));
    char what[160];
    snprintf(what, sizeof what, "%s/%s %s step %llds [%lld, %lld)", s->vm, s->meas,
             store_agg_name(agg), (long long)(step / S(1)), (long long)(from / S(1) - B),
             (long long)(to / S(1) - B));
    if (rows == 0) {
        if (r.nseries != 0) fail_msg("%s: %zu series, want none", what, r.nseries);
        return;
    }
    if (r.nseries != 1) fail_msg("%s: %zu series, want 1", what, r.nseries);
    const struct store_series *se = &r.series[0];
    if (se->nrows != rows) fail_msg("%s: %zu rows, want %zu", what, se->nrows, rows);
    for (size_t i = 0; i < rows; i++) {
        if (se->ts[i] != ts[i])
            fail_msg("%s: row %zu at %lld, want %lld", what, i, (long long)se->ts[i],
                     (long long)ts[i]);
        for (int k = 0; k < NF; k++) {
            int c = col_of(se, fname[k]);
            assert_true(c >= 0);
            char w2[200];
            snprintf(w2, sizeof w2, "%s row %zu field %s", what, i, fname[k]);
            near(se->vals[i * se->nfields + (size_t)c], v[i][k], w2);
        }
    }
    assert_int_equal(col_of(se, "state"), -1); /* strings are never columns */
    store_result_free(&r);
}

/* ---- roll-ups agree with the raw points -------------------------------------------- */

#define SPAN_FROM (B - 1234)
#define SPAN_TO   (B + 7200 + 777)

static void model_build(struct ser *s)
{
    s->p = calloc((size_t)(SPAN_TO - SPAN_FROM), sizeof *s->p);
    assert_non_null(s->p);
    for (int64_t t = SPAN_FROM; t < SPAN_TO; t++) {
        if (rnd() % 10 == 0) continue; /* gaps */
        struct mpt *p = &s->p[s->n++];
        p->ts = S(t) + (int64_t)(rnd() % 1000) * PT_NS_PER_MS;
        rnd_vals(p);
    }
}

static struct ser sers[2] = {
    {.vm = "vm1", .meas = "cpu"},
    {.vm = "vm1", .meas = "disk", .tk = "device", .tv = "sda"},
};

/* Writes both series out of order (a shuffled sequence of batches), with
 * resends of identical points and replacements by different values, some
 * in the same batch as the point they replace. Returns the model. */
static void load_shuffled(struct store *st)
{
    size_t total = 0;
    for (int k = 0; k < 2; k++) {
        free(sers[k].p);
        sers[k].n = 0;
        model_build(&sers[k]);
        total += sers[k].n;
    }
    struct pick *all = calloc(total, sizeof *all);
    assert_non_null(all);
    size_t n = 0;
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < sers[k].n; i++) all[n++] = (struct pick){&sers[k], sers[k].p[i]};
    for (size_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
        size_t j = rnd() % (i + 1);
        struct pick t = all[i];
        all[i] = all[j];
        all[j] = t;
    }
    /* Batches of 700 with 30 extra points each: resends and replacements
     * of points written earlier, or earlier in the same batch. */
    struct pick *batch = calloc(800, sizeof *batch);
    assert_non_null(batch);
    for (size_t i = 0; i < n; i += 700) {
        size_t bn = 0, end = i + 700 < n ? i + 700 : n;
        for (size_t j = i; j < end; j++) batch[bn++] = all[j];
        for (int e = 0; e < 30; e++) {
            size_t j = rnd() % end;
            struct pick p = all[j];
            if (e % 2 == 0) {
                /* Replace: the model takes the new values. */
                rnd_vals(&p.p);
                struct ser *s = (struct ser *)p.s;
                for (size_t m = 0; m < s->n; m++)
                    if (s->p[m].ts == p.p.ts) s->p[m] = p.p;
                all[j] = p;
            }
            batch[bn++] = p;
        }
        write_picks(st, batch, bn);
    }
    free(batch);
    free(all);
}

static const enum store_agg aggs[] = {STORE_AGG_MIN, STORE_AGG_MAX,  STORE_AGG_AVG,
                                      STORE_AGG_SUM, STORE_AGG_LAST, STORE_AGG_COUNT};
#define NAGGS (sizeof aggs / sizeof aggs[0])

static void test_tiers_match_raw(void **state)
{
    struct fx *f = *state;
    f->s = open_conf(f->dir, 0, 0, 0);
    load_shuffled(f->s);
    /* Ranges aligned to the hour, to the minute, and to neither (the edges
     * then come from raw points); steps served by 1 h, by 1 m, and by raw
     * points only (90 s). */
    const int64_t ranges[][2] = {{B, B + 7200},
                                 {B - 1200, B + 7200 + 600},
                                 {B - 1234 + 17, B + 7000 + 13},
                                 {B + 100, B + 3000}};
    const int64_t steps[] = {60, 120, 300, 3600, 7200, 90};
    for (size_t k = 0; k < 2; k++)
        for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++)
            for (size_t st = 0; st < sizeof steps / sizeof steps[0]; st++)
                for (size_t a = 0; a < NAGGS; a++)
                    check(f->s, &sers[k], S(ranges[r][0]), S(ranges[r][1]), S(steps[st]), aggs[a]);

    /* Without any raw point left, aligned queries are served by the tiers
     * alone and still agree with the model; a step no tier serves finds
     * nothing. */
    assert_true(ops->retention(f->s, S(SPAN_TO + 10)) > 0);
    for (size_t k = 0; k < 2; k++)
        for (size_t a = 0; a < NAGGS; a++) {
            check(f->s, &sers[k], S(B), S(B + 7200), S(60), aggs[a]);
            check(f->s, &sers[k], S(B - 1200), S(B + 7800), S(300), aggs[a]);
            check(f->s, &sers[k], S(B), S(B + 7200), S(3600), aggs[a]);
        }
    struct store_query q = {.ns = "ns1",
                            .mcis = "web",
                            .vm = "vm1",
                            .measurement = "cpu",
                            .from_ns = S(B),
                            .to_ns = S(B + 7200),
                            .step_ns = S(90),
                            .agg = STORE_AGG_AVG};
    struct store_result res;
    assert_int_equal(ops->query(f->s, &q, &res), 0);
    assert_int_equal(res.nseries, 0);
    q.step_ns = S(60);
    q.agg = STORE_AGG_P95; /* needs every value: raw only */
    assert_int_equal(ops->query(f->s, &q, &res), 0);
    assert_int_equal(res.nseries, 0);
    q.agg = STORE_AGG_COUNT;
    assert_int_equal(ops->query(f->s, &q, &res), 0);
    assert_int_equal(res.nseries, 1);
    assert_int_equal(res.series[0].nrows, 120);
    store_result_free(&res);
    for (int k = 0; k < 2; k++) {
        free(sers[k].p);
        sers[k].p = NULL;
    }
}

/* The same point resent many times, and replaced back and forth, counts
 * once with its latest values. */
static void test_resend_and_replace_count_once(void **state)
{
    struct fx *f = *state;
    f->s = open_conf(f->dir, 0, 0, 0);
    struct ser s = {.vm = "vm2", .meas = "cpu"};
    struct mpt pts[3] = {{S(B + 10), {1, 10, 100}, false},
                         {S(B + 20), {2, 20, 200}, false},
                         {S(B + 70), {4, 40, 400}, false}};
    s.p = pts;
    s.n = 3;
    struct pick pk[3] = {{&s, pts[0]}, {&s, pts[1]}, {&s, pts[2]}};
    for (int i = 0; i < 5; i++) write_picks(f->s, pk, 3);
    struct pick rep = {&s, {S(B + 20), {7, 70, NAN}, false}};
    write_picks(f->s, &rep, 1);
    pts[1] = rep.p;
    for (size_t a = 0; a < NAGGS; a++) check(f->s, &s, S(B), S(B + 3600), S(60), aggs[a]);
    for (size_t a = 0; a < NAGGS; a++) check(f->s, &s, S(B), S(B + 3600), S(3600), aggs[a]);
    /* Back to the first values, within one batch along with a new point. */
    struct pick two[2] = {{&s, {S(B + 20), {2, 20, 200}, false}}, {&s, pts[0]}};
    write_picks(f->s, two, 2);
    pts[1] = two[0].p;
    ops->retention(f->s, S(B + 1000)); /* tiers alone from here */
    for (size_t a = 0; a < NAGGS; a++) check(f->s, &s, S(B), S(B + 3600), S(3600), aggs[a]);
    struct store_query q = {.ns = "ns1",
                            .mcis = "web",
                            .vm = "vm2",
                            .measurement = "cpu",
                            .from_ns = S(B),
                            .to_ns = S(B + 3600),
                            .step_ns = S(3600),
                            .agg = STORE_AGG_SUM};
    struct store_result r;
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.nseries, 1);
    near(r.series[0].vals[col_of(&r.series[0], "u")], 1 + 2 + 4, "sum u");
    store_result_free(&r);
}

/* ---- retention per tier ------------------------------------------------------------ */

static size_t count_rows(struct store *st, const char *vm, int64_t from, int64_t to, int64_t step)
{
    struct store_query q = {.ns = "ns1",
                            .mcis = "web",
                            .vm = vm,
                            .measurement = "cpu",
                            .from_ns = from,
                            .to_ns = to,
                            .step_ns = step,
                            .agg = step ? STORE_AGG_COUNT : STORE_AGG_NONE};
    struct store_result r;
    assert_int_equal(ops->query(st, &q, &r), 0);
    size_t n = r.nseries ? r.series[0].nrows : 0;
    store_result_free(&r);
    return n;
}

static void test_tier_retention(void **state)
{
    struct fx *f = *state;
    /* raw 1 h, 1 m tier 1 day, 1 h tier 10 days. */
    f->s = open_conf(f->dir, S(3600), S(86400), S(10 * 86400));
    int64_t now = pt_now_ns(), h = floor_to(now, S(3600));
    /* Two hours of points 20 days ago, 3 days ago, 12 hours ago, and the
     * last 10 minutes; one per minute. */
    const int64_t ago[] = {S(20 * 86400), S(3 * 86400), S(12 * 3600)};
    struct ser s = {.vm = "vm3", .meas = "cpu"};
    s.p = calloc(3 * 120 + 10, sizeof *s.p);
    for (int a = 0; a < 3; a++)
        for (int m = 0; m < 120; m++) {
            struct mpt *p = &s.p[s.n++];
            p->ts = h - ago[a] + S(60) * m;
            rnd_vals(p);
        }
    for (int m = 10; m > 0; m--) {
        struct mpt *p = &s.p[s.n++];
        p->ts = now - S(60) * m;
        rnd_vals(p);
    }
    struct pick *pk = calloc(s.n, sizeof *pk);
    for (size_t i = 0; i < s.n; i++) pk[i] = (struct pick){&s, s.p[i]};
    write_picks(f->s, pk, s.n);
    free(pk);

    /* As the writer calls it: cutoff = now - store.retention. */
    assert_int_equal(ops->retention(f->s, now - S(3600)), 360);
    /* 20 days ago: past every retention, gone from the tiers too. */
    assert_int_equal(count_rows(f->s, "vm3", h - ago[0], h - ago[0] + S(7200), S(3600)), 0);
    /* 3 days ago: the 1 h tier has it, the 1 m tier no longer. */
    for (size_t a = 0; a < NAGGS; a++)
        check(f->s, &s, h - ago[1], h - ago[1] + S(7200), S(3600), aggs[a]);
    assert_int_equal(count_rows(f->s, "vm3", h - ago[1], h - ago[1] + S(7200), S(60)), 0);
    /* 12 hours ago: the 1 m tier has every minute. */
    for (size_t a = 0; a < NAGGS; a++)
        check(f->s, &s, h - ago[2], h - ago[2] + S(7200), S(60), aggs[a]);
    assert_int_equal(count_rows(f->s, "vm3", h - ago[2], h - ago[2] + S(7200), 0), 0);
    /* The last 10 minutes: raw points. */
    assert_int_equal(count_rows(f->s, "vm3", now - S(3600), now, 0), 10);
    free(s.p);
}

/* ---- migration from schema 1 -------------------------------------------------------- */

static void test_migration_builds_tiers(void **state)
{
    struct fx *f = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/metrics.db", f->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "PRAGMA journal_mode=WAL;"
                     "CREATE TABLE series (id INTEGER PRIMARY KEY, ns TEXT NOT NULL,"
                     " mcis TEXT NOT NULL, vm TEXT NOT NULL, measurement TEXT NOT NULL,"
                     " tags TEXT NOT NULL, csp TEXT NOT NULL DEFAULT '',"
                     " host TEXT NOT NULL DEFAULT '', UNIQUE (ns, mcis, vm, measurement, tags));"
                     "CREATE TABLE points (series INTEGER NOT NULL, ts INTEGER NOT NULL,"
                     " fields BLOB NOT NULL, PRIMARY KEY (series, ts)) WITHOUT ROWID;"
                     "PRAGMA application_id=1347701825; PRAGMA user_version=1;"
                     "INSERT INTO series (id, ns, mcis, vm, measurement, tags)"
                     " VALUES (1, 'ns1', 'web', 'vm4', 'cpu', '');",
                     NULL, NULL, NULL),
        SQLITE_OK);
    struct ser s = {.vm = "vm4", .meas = "cpu"};
    s.p = calloc(200, sizeof *s.p);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO points VALUES (1, ?1, ?2)", -1, &st, NULL),
                     SQLITE_OK);
    for (int i = 0; i < 200; i++) {
        struct mpt *p = &s.p[s.n++];
        p->ts = S(B + 30 * i);
        rnd_vals(p);
        p->str = false;
        struct wp w;
        struct store_point sp;
        wp_fill(&w, &s, p, &sp);
        uint8_t blob[1024];
        size_t len;
        assert_int_equal(pt_wire_fields_encode(w.m.fields, w.m.nfields, blob, sizeof blob, &len),
                         0);
        sqlite3_bind_int64(st, 1, p->ts);
        sqlite3_bind_blob(st, 2, blob, (int)len, SQLITE_TRANSIENT);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);

    f->s = open_conf(f->dir, 0, 0, 0);
    ops->retention(f->s, S(B + 86400)); /* only the tiers answer now */
    for (size_t a = 0; a < NAGGS; a++) {
        check(f->s, &s, S(B), S(B + 6000), S(60), aggs[a]);
        check(f->s, &s, S(B), S(B + 7200), S(3600), aggs[a]);
    }
    free(s.p);
}

/* A damaged roll-up row fails the query with PT_E_STORE; it is never read
 * past its end. */
static void test_corrupt_row_is_an_error(void **state)
{
    struct fx *f = *state;
    f->s = open_conf(f->dir, 0, 0, 0);
    struct ser s = {.vm = "vm5", .meas = "cpu"};
    struct mpt p = {S(B + 5), {1, 2, 3}, false};
    struct pick pk = {&s, p};
    write_picks(f->s, &pk, 1);
    char path[128];
    snprintf(path, sizeof path, "%s/metrics.db", f->dir);
    /* A flags byte alone, an unknown symbol id, a zero count, a name
     * running past the end, values cut short. */
    const char *bad[] = {"x'01'", "x'11ffff'", "x'1101000000'", "x'0140'", "x'110c000100'"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sqlite3 *db;
        char sql[128];
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        sqlite3_busy_timeout(db, 5000);
        snprintf(sql, sizeof sql, "UPDATE rollup_1m SET agg = %s", bad[i]);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_changes(db), 1);
        sqlite3_close(db);
        struct store_query q = {.ns = "ns1",
                                .mcis = "web",
                                .vm = "vm5",
                                .measurement = "cpu",
                                .from_ns = S(B),
                                .to_ns = S(B + 60),
                                .step_ns = S(60),
                                .agg = STORE_AGG_MAX};
        struct store_result r;
        assert_int_equal(ops->query(f->s, &q, &r), PT_E_STORE);
        assert_int_equal(r.nseries, 0);
    }
}

/* ---- MCIS level ---------------------------------------------------------------------- */

/* ns1/web: vm-a, vm-b, vm-c, each with cpu (u) and disk device=sda and
 * device=total (u), at B+0..B+19 s:
 *   vm-a cpu u = 10 + k     vm-b cpu u = 20 + 2k    vm-c cpu u = 30 (k < 10 only)
 *   disk sda u = 1 (a), 2 (b), 3 (c); total u = 100 (a), 200 (b), 300 (c)
 * and ns1/other vm-z cpu u = 1000, which no query of web may see. */
static void load_mcis(struct store *st)
{
    struct ser cpu[3] = {{.vm = "vm-a", .meas = "cpu"},
                         {.vm = "vm-b", .meas = "cpu"},
                         {.vm = "vm-c", .meas = "cpu"}};
    struct ser sda[3], tot[3];
    struct pick pk[3 * 3 * 20];
    struct mpt mp[3 * 3 * 20];
    size_t n = 0;
    for (int v = 0; v < 3; v++) {
        sda[v] = (struct ser){.vm = cpu[v].vm, .meas = "disk", .tk = "device", .tv = "sda"};
        tot[v] = (struct ser){.vm = cpu[v].vm, .meas = "disk", .tk = "device", .tv = "total"};
        for (int k = 0; k < 20; k++) {
            double cu = v == 0 ? 10 + k : v == 1 ? 20 + 2 * k : 30;
            if (v == 2 && k >= 10) continue;
            mp[n] = (struct mpt){S(B + k), {cu, NAN, NAN}, false};
            pk[n] = (struct pick){&cpu[v], mp[n]};
            n++;
        }
        for (int k = 0; k < 20; k++) {
            mp[n] = (struct mpt){S(B + k), {v + 1, NAN, NAN}, false};
            pk[n] = (struct pick){&sda[v], mp[n]};
            n++;
            mp[n] = (struct mpt){S(B + k), {100 * (v + 1), NAN, NAN}, false};
            pk[n] = (struct pick){&tot[v], mp[n]};
            n++;
        }
    }
    write_picks(st, pk, n);
    /* Another MCIS of the same namespace. */
    struct wp w;
    struct store_point sp;
    struct ser z = {.vm = "vm-z", .meas = "cpu"};
    struct mpt zp = {S(B), {1000, NAN, NAN}, false};
    wp_fill(&w, &z, &zp, &sp);
    w.id.mcis = pt_str_c("other");
    assert_int_equal(ops->write_batch(st, &sp, 1), 0);
}

static struct store_query mq(const char *meas, int64_t step, enum store_agg agg,
                             enum store_agg across)
{
    return (struct store_query){.ns = "ns1",
                                .mcis = "web",
                                .measurement = meas,
                                .from_ns = S(B),
                                .to_ns = S(B + 20),
                                .step_ns = S(step),
                                .agg = agg,
                                .across = across};
}

static double cell(const struct store_series *s, size_t row, const char *f)
{
    int c = col_of(s, f);
    assert_true(c >= 0);
    return s->vals[row * s->nfields + (size_t)c];
}

static void test_mcis_across(void **state)
{
    struct fx *f = *state;
    f->s = open_conf(f->dir, 0, 0, 0);
    load_mcis(f->s);
    struct store_result r;
    /* avg of each VM over 10 s, then across VMs:
     *   [0,10): a 14.5, b 29, c 30  -> avg 24.5, min 14.5, max 30, sum 73.5
     *   [10,20): a 24.5, b 49       -> avg 36.75, min 24.5, max 49, sum 73.5 */
    const struct {
        enum store_agg across;
        double w0, w1;
    } want[] = {{STORE_AGG_AVG, 24.5, 36.75},
                {STORE_AGG_MIN, 14.5, 24.5},
                {STORE_AGG_MAX, 30, 49},
                {STORE_AGG_SUM, 73.5, 73.5}};
    for (size_t i = 0; i < 4; i++) {
        struct store_query q = mq("cpu", 10, STORE_AGG_AVG, want[i].across);
        assert_int_equal(ops->query(f->s, &q, &r), 0);
        assert_int_equal(r.nseries, 1);
        assert_null(r.series[0].vm);
        assert_int_equal(r.series[0].nrows, 2);
        assert_int_equal(r.series[0].ts[0], S(B));
        assert_int_equal(r.series[0].ts[1], S(B + 10));
        near(cell(&r.series[0], 0, "u"), want[i].w0, store_agg_name(want[i].across));
        near(cell(&r.series[0], 1, "u"), want[i].w1, store_agg_name(want[i].across));
        store_result_free(&r);
    }
    /* max per VM, then sum across: [0,10) 19+38+30, [10,20) 29+58. */
    struct store_query q = mq("cpu", 10, STORE_AGG_MAX, STORE_AGG_SUM);
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    near(cell(&r.series[0], 0, "u"), 87, "max/sum");
    near(cell(&r.series[0], 1, "u"), 87, "max/sum");
    store_result_free(&r);
    /* count per VM, avg across: (10+10+10)/3 then (10+10)/2. */
    q = mq("cpu", 10, STORE_AGG_COUNT, STORE_AGG_AVG);
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    near(cell(&r.series[0], 0, "u"), 10, "count/avg");
    near(cell(&r.series[0], 1, "u"), 10, "count/avg");
    assert_int_equal(r.series[0].ftypes[0], PT_F_FLOAT);
    store_result_free(&r);

    /* disk: one series per tag set, each across the three VMs. */
    q = mq("disk", 20, STORE_AGG_AVG, STORE_AGG_SUM);
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.nseries, 2);
    assert_string_equal(r.series[0].tag_vals[0], "sda");
    assert_string_equal(r.series[1].tag_vals[0], "total");
    near(cell(&r.series[0], 0, "u"), 6, "sda sum");
    near(cell(&r.series[1], 0, "u"), 600, "total sum");
    store_result_free(&r);
    /* A tag filter keeps the totals only. */
    const char *tk[] = {"device"}, *tv[] = {"total"};
    q.tag_keys = tk;
    q.tag_vals = tv;
    q.ntag_filters = 1;
    q.across = STORE_AGG_AVG;
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.nseries, 1);
    assert_string_equal(r.series[0].tag_keys[0], "device");
    assert_string_equal(r.series[0].tag_vals[0], "total");
    near(cell(&r.series[0], 0, "u"), 200, "total avg");
    store_result_free(&r);
    /* A filter nothing matches: no series, no error. */
    tv[0] = "nvme0";
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.nseries, 0);

    /* Invalid: across without step, or with an across of no meaning. */
    q = mq("cpu", 0, STORE_AGG_NONE, STORE_AGG_AVG);
    assert_int_equal(ops->query(f->s, &q, &r), -EINVAL);
    q = mq("cpu", 10, STORE_AGG_AVG, STORE_AGG_P95);
    assert_int_equal(ops->query(f->s, &q, &r), -EINVAL);
    q = mq("cpu", 10, STORE_AGG_AVG, STORE_AGG_NONE);
    assert_int_equal(ops->query(f->s, &q, &r), -EINVAL);
}

static void test_mcis_group_by_vm(void **state)
{
    struct fx *f = *state;
    f->s = open_conf(f->dir, 0, 0, 0);
    load_mcis(f->s);
    struct store_result r;
    struct store_query q = mq("cpu", 10, STORE_AGG_AVG, STORE_AGG_NONE);
    q.group_by_vm = true;
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.nseries, 3);
    const char *vms[] = {"vm-a", "vm-b", "vm-c"};
    const double w0[] = {14.5, 29, 30};
    for (int i = 0; i < 3; i++) {
        assert_string_equal(r.series[i].vm, vms[i]);
        near(cell(&r.series[i], 0, "u"), w0[i], vms[i]);
    }
    assert_int_equal(r.series[2].nrows, 1); /* vm-c stopped at B+10 */
    store_result_free(&r);
    /* Raw points per VM, with a tag filter. */
    const char *tk[] = {"device"}, *tv[] = {"sda"};
    q = mq("disk", 0, STORE_AGG_NONE, STORE_AGG_NONE);
    q.group_by_vm = true;
    q.tag_keys = tk;
    q.tag_vals = tv;
    q.ntag_filters = 1;
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.nseries, 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(r.series[i].vm, vms[i]);
        assert_int_equal(r.series[i].nrows, 20);
        near(cell(&r.series[i], 19, "u"), i + 1, "sda raw");
    }
    store_result_free(&r);
    /* Tag filters on a per-VM query too. */
    q.vm = "vm-b";
    q.group_by_vm = false;
    tv[0] = "total";
    assert_int_equal(ops->query(f->s, &q, &r), 0);
    assert_int_equal(r.nseries, 1);
    assert_string_equal(r.series[0].vm, "vm-b");
    near(cell(&r.series[0], 0, "u"), 200, "vm-b total");
    store_result_free(&r);
}

static void test_mcis_latest(void **state)
{
    struct fx *f = *state;
    f->s = open_conf(f->dir, 0, 0, 0);
    load_mcis(f->s);
    struct store_result r;
    assert_int_equal(ops->latest(f->s, "ns1", "web", NULL, NULL, &r), 0);
    assert_int_equal(r.nlatest, 9); /* 3 VMs x (cpu, sda, total) */
    const char *vms[] = {"vm-a", "vm-b", "vm-c"};
    for (int i = 0; i < 9; i++) {
        assert_string_equal(r.latest[i].vm, vms[i / 3]);
        assert_string_equal(r.latest[i].measurement, i % 3 == 0 ? "cpu" : "disk");
    }
    assert_int_equal(r.latest[0].ts_ns, S(B + 19));
    assert_int_equal(r.latest[6].ts_ns, S(B + 9)); /* vm-c's cpu */
    assert_true(r.latest[6].fields[0].v.f == 30);
    store_result_free(&r);
    assert_int_equal(ops->latest(f->s, "ns1", "web", NULL, "disk", &r), 0);
    assert_int_equal(r.nlatest, 6);
    assert_string_equal(r.latest[5].vm, "vm-c");
    assert_string_equal(r.latest[5].tag_vals[0], "total");
    store_result_free(&r);
    assert_int_equal(ops->latest(f->s, "ns1", "other", NULL, NULL, &r), 0);
    assert_int_equal(r.nlatest, 1);
    assert_string_equal(r.latest[0].vm, "vm-z");
    store_result_free(&r);
    assert_int_equal(ops->latest(f->s, "ns1", "nothing", NULL, NULL, &r), 0);
    assert_int_equal(r.nlatest, 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_tiers_match_raw), T(test_resend_and_replace_count_once),
        T(test_tier_retention),  T(test_migration_builds_tiers),
        T(test_mcis_across),     T(test_mcis_group_by_vm),
        T(test_mcis_latest),     T(test_corrupt_row_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
