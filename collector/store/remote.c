/* Result assembly for the server backends (remote_int.h). */
#include "store/remote_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pt/catalog.h"
#include "pt/err.h"
#include "store/lineproto.h"
#include "store/store_int.h"

bool rs_ident_key(const char *k)
{
    for (size_t i = 0; i < 5; i++)
        if (strcmp(k, lp_ident_keys[i]) == 0) return true;
    return false;
}

int rs_query_check(const struct store_query *q)
{
    if (!q || !q->ns || !q->mcis || !q->measurement) return -EINVAL;
    if (q->from_ns >= q->to_ns || q->step_ns < 0) return -EINVAL;
    if (q->step_ns > 0 && (q->agg <= STORE_AGG_NONE || q->agg > STORE_AGG_P95)) return -EINVAL;
    if (!q->vm && !q->group_by_vm) {
        /* Across VMs: per-VM buckets first, so a step and an agg are needed. */
        if (q->step_ns <= 0) return -EINVAL;
        if (q->across != STORE_AGG_MIN && q->across != STORE_AGG_MAX &&
            q->across != STORE_AGG_AVG && q->across != STORE_AGG_SUM)
            return -EINVAL;
    }
    if (q->nfields && !q->fields) return -EINVAL;
    if (q->ntag_filters && (!q->tag_keys || !q->tag_vals)) return -EINVAL;
    if (q->nfields > STORE_MAX_COLS) return -E2BIG;
    for (size_t i = 0; i < q->nfields; i++) {
        if (!q->fields[i] || !q->fields[i][0]) return -EINVAL;
        for (size_t j = 0; j < i; j++)
            if (strcmp(q->fields[i], q->fields[j]) == 0) return -EINVAL;
    }
    for (size_t i = 0; i < q->ntag_filters; i++)
        if (!q->tag_keys[i] || !q->tag_vals[i] || !q->tag_keys[i][0]) return -EINVAL;
    return 0;
}

int rs_init(struct rs_set *set, const struct store_query *q)
{
    memset(set, 0, sizeof *set);
    set->q = q;
    set->fixed = q->nfields > 0;
    for (size_t i = 0; i < q->nfields; i++) {
        int idx, rc;
        set->fixed = false; /* so rs_column adds it */
        rc = rs_column(set, q->fields[i], 0, &idx);
        set->fixed = true;
        if (rc) return rc;
    }
    return 0;
}

static void col_free(struct rs_col *c)
{
    free(c->ts);
    free(c->v);
    memset(c, 0, sizeof *c);
}

static void series_free(struct rs_series *s)
{
    free(s->vm);
    for (size_t i = 0; i < s->ntags; i++) {
        free(s->tk[i]);
        free(s->tv[i]);
    }
    free(s->tk);
    free(s->tv);
    free(s->canon);
    for (size_t i = 0; i < s->ncols; i++) col_free(&s->cols[i]);
    free(s->cols);
}

void rs_free(struct rs_set *set)
{
    for (size_t i = 0; i < set->nfields; i++) free(set->fields[i]);
    free(set->fields);
    free(set->ftypes);
    for (size_t i = 0; i < set->n; i++) series_free(&set->s[i]);
    free(set->s);
    memset(set, 0, sizeof *set);
}

int rs_column(struct rs_set *set, const char *name, uint8_t type, int *idx)
{
    *idx = -1;
    for (size_t i = 0; i < set->nfields; i++)
        if (strcmp(set->fields[i], name) == 0) {
            if (type && !set->ftypes[i]) set->ftypes[i] = type;
            *idx = (int)i;
            return 0;
        }
    if (set->fixed) return 0;
    if (set->nfields >= STORE_MAX_COLS) return -E2BIG;
    if (set->nfields == set->fcap) {
        size_t cap = set->fcap ? set->fcap * 2 : 32;
        char **f = realloc(set->fields, cap * sizeof *f);
        if (!f) return -ENOMEM;
        set->fields = f;
        uint8_t *t = realloc(set->ftypes, cap);
        if (!t) return -ENOMEM;
        set->ftypes = t;
        set->fcap = cap;
    }
    if (!(set->fields[set->nfields] = strdup(name))) return -ENOMEM;
    set->ftypes[set->nfields] = type;
    *idx = (int)set->nfields++;
    return 0;
}

/* ---- series ------------------------------------------------------------------ */

static int cmp_tag_idx(const void *pa, const void *pb, void *arg)
{
    char *const *const *kv = arg;
    size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
    int c = strcmp(kv[0][a], kv[0][b]);
    return c ? c : strcmp(kv[1][a], kv[1][b]);
}

static size_t canon_escaped_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++) n += (*s == '\\' || *s == ',' || *s == '=') ? 2 : 1;
    return n;
}

static char *canon_put(char *o, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == ',' || *s == '=') *o++ = '\\';
        *o++ = *s;
    }
    return o;
}

char *rs_canon(char *const *tk, char *const *tv, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++) len += canon_escaped_len(tk[i]) + canon_escaped_len(tv[i]) + 2;
    char *out = malloc(len), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (i) *o++ = ',';
        o = canon_put(o, tk[i]);
        *o++ = '=';
        o = canon_put(o, tv[i]);
    }
    *o = '\0';
    return out;
}

static bool same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

int rs_series(struct rs_set *set, const char *vm, char *const *tk, char *const *tv, size_t ntags,
              struct rs_series **out)
{
    size_t idx[64], n = 0;
    if (ntags > 64) return -E2BIG;
    for (size_t i = 0; i < ntags; i++)
        if (tv[i] && tv[i][0]) idx[n++] = i;
    char *const *kv[2] = {tk, tv};
    qsort_r(idx, n, sizeof *idx, cmp_tag_idx, kv);
    char *sk[64], *sv[64];
    for (size_t i = 0; i < n; i++) {
        sk[i] = tk[idx[i]];
        sv[i] = tv[idx[i]];
    }
    char *canon = rs_canon(sk, sv, n);
    if (!canon) return -ENOMEM;
    for (size_t i = 0; i < set->n; i++)
        if (same_str(set->s[i].vm, vm) && strcmp(set->s[i].canon, canon) == 0) {
            free(canon);
            *out = &set->s[i];
            return 0;
        }
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 16;
        struct rs_series *p = realloc(set->s, cap * sizeof *p);
        if (!p) {
            free(canon);
            return -ENOMEM;
        }
        set->s = p;
        set->cap = cap;
    }
    struct rs_series *s = &set->s[set->n];
    memset(s, 0, sizeof *s);
    s->canon = canon;
    s->tk = calloc(n ? n : 1, sizeof *s->tk);
    s->tv = calloc(n ? n : 1, sizeof *s->tv);
    if (!s->tk || !s->tv || (vm && !(s->vm = strdup(vm)))) goto nomem;
    for (size_t i = 0; i < n; i++) {
        s->tk[i] = strdup(sk[i]);
        s->tv[i] = strdup(sv[i]);
        s->ntags++;
        if (!s->tk[i] || !s->tv[i]) goto nomem;
    }
    set->n++;
    *out = s;
    return 0;
nomem:
    set->n++; /* freed with the set */
    return -ENOMEM;
}

static int col_push(struct rs_col *c, int64_t ts, double v)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        int64_t *t = realloc(c->ts, cap * sizeof *t);
        if (!t) return -ENOMEM;
        c->ts = t;
        double *p = realloc(c->v, cap * sizeof *p);
        if (!p) return -ENOMEM;
        c->v = p;
        c->cap = cap;
    }
    c->ts[c->n] = ts;
    c->v[c->n++] = v;
    return 0;
}

int rs_add(struct rs_set *set, struct rs_series *s, int col, int64_t ts, double v)
{
    if (col < 0 || isnan(v)) return 0;
    if (set->values >= STORE_MAX_VALUES) return -E2BIG;
    if ((size_t)col >= s->ncols) {
        size_t nc = set->nfields > (size_t)col ? set->nfields : (size_t)col + 1;
        struct rs_col *p = realloc(s->cols, nc * sizeof *p);
        if (!p) return -ENOMEM;
        memset(p + s->ncols, 0, (nc - s->ncols) * sizeof *p);
        s->cols = p;
        s->ncols = nc;
    }
    int rc = col_push(&s->cols[col], ts, v);
    if (rc == 0) set->values++;
    return rc;
}

/* ---- client-side reduction -------------------------------------------------- */

/* Sorts a column by time, keeping insertion order among equal times. */
static int col_sort(struct rs_col *c)
{
    bool sorted = true;
    for (size_t i = 1; i < c->n && sorted; i++) sorted = c->ts[i - 1] <= c->ts[i];
    if (sorted) return 0;
    size_t *ord = malloc(c->n * sizeof *ord);
    int64_t *ts = malloc(c->n * sizeof *ts);
    double *v = malloc(c->n * sizeof *v);
    if (!ord || !ts || !v) {
        free(ord);
        free(ts);
        free(v);
        return -ENOMEM;
    }
    /* Insertion-stable merge sort would be nicer; the columns come from
     * servers that already answer in time order, so this path is rare. */
    for (size_t i = 0; i < c->n; i++) ord[i] = i;
    for (size_t i = 1; i < c->n; i++) {
        size_t x = ord[i], j = i;
        while (j > 0 && c->ts[ord[j - 1]] > c->ts[x]) {
            ord[j] = ord[j - 1];
            j--;
        }
        ord[j] = x;
    }
    for (size_t i = 0; i < c->n; i++) {
        ts[i] = c->ts[ord[i]];
        v[i] = c->v[ord[i]];
    }
    free(ord);
    free(c->ts);
    free(c->v);
    c->ts = ts;
    c->v = v;
    c->cap = c->n;
    return 0;
}

int rs_reduce(struct rs_set *set)
{
    const struct store_query *q = set->q;
    struct store_acc acc = {0};
    int rc = 0;
    size_t values = 0;
    for (size_t i = 0; i < set->n && rc == 0; i++) {
        struct rs_series *s = &set->s[i];
        for (size_t c = 0; c < s->ncols && rc == 0; c++) {
            struct rs_col *col = &s->cols[c], out = {0};
            if ((rc = col_sort(col))) break;
            bool open = false;
            int64_t bucket = 0;
            for (size_t k = 0; k <= col->n && rc == 0; k++) {
                bool end = k == col->n;
                if (!end && (col->ts[k] < q->from_ns || col->ts[k] >= q->to_ns)) continue;
                int64_t b = end ? 0 : store_bucket(col->ts[k], q->step_ns);
                if (open && (end || b != bucket)) {
                    rc = col_push(&out, bucket, store_acc_result(&acc, q->agg));
                    store_acc_reset(&acc);
                    open = false;
                }
                if (end || rc) break;
                open = true;
                bucket = b;
                rc = store_acc_add(&acc, q->agg, col->v[k]);
            }
            store_acc_reset(&acc);
            col_free(col);
            *col = out;
            values += out.n;
        }
    }
    store_acc_free(&acc);
    set->values = values;
    return rc;
}

struct tv {
    int64_t ts;
    double v;
};

static int cmp_tv(const void *pa, const void *pb)
{
    const struct tv *a = pa, *b = pb;
    return (a->ts > b->ts) - (a->ts < b->ts);
}

/* Combines the columns c of the series in grp (n of them) into out. */
static int across_col(const struct rs_set *set, struct rs_series **grp, size_t n, size_t c,
                      struct rs_col *out)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        if (c < grp[i]->ncols) total += grp[i]->cols[c].n;
    if (total == 0) return 0;
    struct tv *all = malloc(total * sizeof *all);
    if (!all) return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (c < grp[i]->ncols)
            for (size_t j = 0; j < grp[i]->cols[c].n; j++)
                all[k++] = (struct tv){grp[i]->cols[c].ts[j], grp[i]->cols[c].v[j]};
    qsort(all, total, sizeof *all, cmp_tv);
    int rc = 0;
    enum store_agg how = set->q->across;
    for (size_t i = 0; i < total && rc == 0;) {
        size_t j = i;
        double acc = all[i].v;
        for (j = i + 1; j < total && all[j].ts == all[i].ts; j++) {
            double v = all[j].v;
            if (how == STORE_AGG_MIN)
                acc = v < acc ? v : acc;
            else if (how == STORE_AGG_MAX)
                acc = v > acc ? v : acc;
            else
                acc += v;
        }
        if (how == STORE_AGG_AVG) acc /= (double)(j - i);
        rc = col_push(out, all[i].ts, acc);
        i = j;
    }
    free(all);
    return rc;
}

int rs_across(struct rs_set *set)
{
    struct rs_set dst = *set;
    dst.s = NULL;
    dst.n = dst.cap = 0;
    dst.values = 0;
    struct rs_series **grp = malloc((set->n ? set->n : 1) * sizeof *grp);
    bool *done = calloc(set->n ? set->n : 1, 1);
    int rc = grp && done ? 0 : -ENOMEM;
    for (size_t i = 0; i < set->n && rc == 0; i++) {
        if (done[i]) continue;
        size_t n = 0;
        for (size_t j = i; j < set->n; j++)
            if (!done[j] && strcmp(set->s[j].canon, set->s[i].canon) == 0) {
                grp[n++] = &set->s[j];
                done[j] = true;
            }
        struct rs_series *o;
        if ((rc = rs_series(&dst, NULL, set->s[i].tk, set->s[i].tv, set->s[i].ntags, &o))) break;
        if (!(o->cols = calloc(set->nfields ? set->nfields : 1, sizeof *o->cols))) {
            rc = -ENOMEM;
            break;
        }
        o->ncols = set->nfields;
        for (size_t c = 0; c < set->nfields && rc == 0; c++) {
            rc = across_col(set, grp, n, c, &o->cols[c]);
            dst.values += o->cols[c].n;
        }
    }
    free(grp);
    free(done);
    /* The set keeps its columns; only the series change hands. */
    for (size_t i = 0; i < set->n; i++) series_free(&set->s[i]);
    free(set->s);
    set->s = dst.s;
    set->n = dst.n;
    set->cap = dst.cap;
    set->values = dst.values;
    return rc;
}

/* ---- the result ---------------------------------------------------------------- */

static int cmp_series(const void *pa, const void *pb)
{
    const struct rs_series *a = pa, *b = pb;
    if (!same_str(a->vm, b->vm)) {
        if (!a->vm || !b->vm) return a->vm ? 1 : -1;
        int c = strcmp(a->vm, b->vm);
        if (c) return c;
    }
    return strcmp(a->canon, b->canon);
}

static int cmp_colname(const void *pa, const void *pb, void *arg)
{
    const struct rs_set *set = arg;
    const char *a = set->fields[*(const size_t *)pa], *b = set->fields[*(const size_t *)pb];
    uint32_t sa = pt_sym_find(a, strlen(a)), sb = pt_sym_find(b, strlen(b));
    if (sa != sb) {
        if (!sa || !sb) return sa ? -1 : 1;
        return sa < sb ? -1 : 1;
    }
    return strcmp(a, b);
}

static int cmp_i64(const void *pa, const void *pb)
{
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    return (a > b) - (a < b);
}

static uint8_t final_type(const struct rs_set *set, size_t c)
{
    if (set->ftypes[c]) return set->ftypes[c];
    const struct pt_metric *m = pt_catalog_find(set->q->measurement, set->fields[c]);
    return m ? m->type : PT_F_FLOAT;
}

static int finish_series(const struct rs_set *set, struct rs_series *s, const size_t *order,
                         size_t *values, struct store_series *out)
{
    const struct store_query *q = set->q;
    size_t max_rows = q->max_rows && q->max_rows < STORE_MAX_ROWS ? q->max_rows : STORE_MAX_ROWS;
    /* Columns of this series: as asked, or those with a value here. */
    size_t cols[STORE_MAX_COLS], nc = 0, total = 0;
    for (size_t i = 0; i < set->nfields; i++) {
        size_t c = order[i];
        size_t n = c < s->ncols ? s->cols[c].n : 0;
        if (set->fixed || n) cols[nc++] = c;
        total += n;
    }
    if (total == 0) return 0;
    int64_t *ts = malloc(total * sizeof *ts);
    if (!ts) return -ENOMEM;
    size_t k = 0;
    for (size_t c = 0; c < s->ncols; c++)
        for (size_t j = 0; j < s->cols[c].n; j++) ts[k++] = s->cols[c].ts[j];
    qsort(ts, total, sizeof *ts, cmp_i64);
    size_t nr = 0;
    for (size_t i = 0; i < total; i++)
        if (nr == 0 || ts[i] != ts[nr - 1]) ts[nr++] = ts[i];
    if (nr > max_rows || (nc && nr > (STORE_MAX_VALUES - *values) / nc)) {
        free(ts);
        return -E2BIG;
    }
    out->ts = ts;
    out->nrows = nr;
    out->nfields = nc;
    out->fields = calloc(nc ? nc : 1, sizeof *out->fields);
    out->ftypes = malloc(nc ? nc : 1);
    out->vals = malloc((nr * nc > 0 ? nr * nc : 1) * sizeof *out->vals);
    out->measurement = strdup(q->measurement);
    if (!out->fields || !out->ftypes || !out->vals || !out->measurement) return -ENOMEM;
    bool count = q->step_ns > 0 && q->agg == STORE_AGG_COUNT;
    for (size_t i = 0; i < nr * nc; i++) out->vals[i] = count ? 0 : NAN;
    for (size_t i = 0; i < nc; i++) {
        if (!(out->fields[i] = strdup(set->fields[cols[i]]))) return -ENOMEM;
        /* An average across VMs of integers is not an integer (store.h). */
        out->ftypes[i] = !q->vm && !q->group_by_vm && q->across == STORE_AGG_AVG
                             ? PT_F_FLOAT
                             : final_type(set, cols[i]);
        const struct rs_col *col = cols[i] < s->ncols ? &s->cols[cols[i]] : NULL;
        size_t r = 0;
        for (size_t j = 0; col && j < col->n; j++) {
            /* Both in time order: walk the rows along. */
            if (r >= nr || ts[r] > col->ts[j]) r = 0;
            while (r < nr && ts[r] < col->ts[j]) r++;
            if (r < nr && ts[r] == col->ts[j]) out->vals[r * nc + i] = col->v[j];
        }
    }
    *values += nr * nc;
    if (s->vm && !(out->vm = strdup(s->vm))) return -ENOMEM;
    out->tag_keys = s->tk;
    out->tag_vals = s->tv;
    out->ntags = s->ntags;
    s->tk = s->tv = NULL;
    s->ntags = 0;
    return 0;
}

int rs_finish(struct rs_set *set, struct store_result *out)
{
    memset(out, 0, sizeof *out);
    size_t order[STORE_MAX_COLS];
    for (size_t i = 0; i < set->nfields; i++) order[i] = i;
    if (!set->fixed) qsort_r(order, set->nfields, sizeof *order, cmp_colname, set);
    for (size_t i = 0; i < set->n; i++)
        for (size_t c = 0; c < set->s[i].ncols; c++)
            if (col_sort(&set->s[i].cols[c])) return -ENOMEM;
    if (set->n > 1) qsort(set->s, set->n, sizeof *set->s, cmp_series);
    if (set->n && !(out->series = calloc(set->n, sizeof *out->series))) return -ENOMEM;
    size_t values = 0;
    int rc = 0;
    for (size_t i = 0; i < set->n && rc == 0; i++) {
        struct store_series *o = &out->series[out->nseries];
        rc = finish_series(set, &set->s[i], order, &values, o);
        if (rc || o->nrows) out->nseries++; /* owned by out now, even on error */
    }
    if (rc || out->nseries == 0) store_result_free(out);
    return rc;
}

static int cmp_latest(const void *pa, const void *pb)
{
    const struct store_latest *a = pa, *b = pb;
    int c = strcmp(a->vm, b->vm);
    if (c) return c;
    uint32_t sa = pt_sym_find(a->measurement, strlen(a->measurement));
    uint32_t sb = pt_sym_find(b->measurement, strlen(b->measurement));
    if (sa != sb) {
        if (!sa || !sb) return sa ? -1 : 1;
        return sa < sb ? -1 : 1;
    }
    if ((c = strcmp(a->measurement, b->measurement))) return c;
    char *ca = rs_canon(a->tag_keys, a->tag_vals, a->ntags);
    char *cb = rs_canon(b->tag_keys, b->tag_vals, b->ntags);
    c = ca && cb ? strcmp(ca, cb) : 0;
    free(ca);
    free(cb);
    return c;
}

void rs_latest_sort(struct store_result *r)
{
    if (r->nlatest > 1) qsort(r->latest, r->nlatest, sizeof *r->latest, cmp_latest);
}

/* ---- the write path of the server backends ------------------------------ */

#define RS_SPARE 2 /* batch buffers kept for reuse (beside the ones pending) */

static void rs_batch_free(struct rs_batch *b)
{
    if (!b) return;
    lp_buf_free(&b->buf);
    free(b->parts);
    free(b);
}

void rs_writes_free(struct rs_writes *w)
{
    /* Only with nothing pending (the pool is closed first, which answers
     * whatever was left, so nobody waits on these). */
    for (struct rs_batch *b = w->head, *n; b; b = n) {
        n = b->next;
        rs_batch_free(b);
    }
    for (struct rs_batch *b = w->spare, *n; b; b = n) {
        n = b->next;
        rs_batch_free(b);
    }
    memset(w, 0, sizeof *w);
}

/* Closes the request holding the points encoded since the last cut. */
static int rs_cut(struct rs_batch *w, size_t npts)
{
    if (w->nparts == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        struct sh_part *p = realloc(w->parts, cap * sizeof *p);
        if (!p) return -ENOMEM;
        w->parts = p;
        w->cap = cap;
    }
    size_t from = w->nparts ? w->cut_end : 0;
    w->parts[w->nparts++] = (struct sh_part){.body = NULL, .len = w->buf.len - from, .npts = npts};
    w->cut_end = w->buf.len;
    return 0;
}

/* Encodes the points into b; 0 or the error that refuses the batch. */
static int rs_encode(const struct rs_write_ops *ops, struct rs_batch *b, const struct rs_target *t,
                     const struct store_point *pts, size_t n, struct pt_complain *c_unwritable,
                     struct pt_complain *complain, size_t *skipped)
{
    size_t per = (n + t->parallel - 1) / t->parallel;
    if (per < SH_MIN_REQUEST) per = SH_MIN_REQUEST;
    if (per > t->batch) per = t->batch;
    size_t inreq = 0;
    int rc;
    for (size_t i = 0; i < n; i++) {
        size_t nv;
        rc = lp_point(&b->buf, ops->dialect, &pts[i], &nv);
        if (rc == LP_SKIPPED) continue;
        if (rc == -ERANGE) {
            (*skipped)++;
            pt_complain(c_unwritable, PT_LOG_WARN, "store",
                        "%s: point %zu (measurement %.*s) skipped: %s", ops->name, i,
                        (int)pts[i].m->name.len, pts[i].m->name.p, ops->unwritable);
            continue;
        }
        if (rc) {
            pt_complain(complain, PT_LOG_ERROR, "store",
                        "%s: batch refused: point %zu is invalid (%s)", ops->name, i,
                        pt_strerror(rc));
            return rc == -ENOMEM || rc == -EINVAL ? rc : PT_E_LIMIT;
        }
        if (++inreq == per) {
            if ((rc = rs_cut(b, inreq))) return rc;
            inreq = 0;
        }
    }
    if (inreq && (rc = rs_cut(b, inreq))) return rc;
    size_t from = 0;
    for (size_t i = 0; i < b->nparts; i++) {
        b->parts[i].body = b->buf.p + from;
        from += b->parts[i].len;
    }
    return 0;
}

int rs_submit(struct store *s, const struct rs_write_ops *ops, struct rs_writes *w,
              const struct rs_target *t, const struct store_point *pts, size_t n,
              struct pt_complain *c_unwritable, struct pt_complain *complain, size_t *skipped)
{
    (void)s;
    *skipped = 0;
    struct rs_batch *b = w->spare;
    if (b) {
        w->spare = b->next;
        w->nspare--;
    } else if (!(b = calloc(1, sizeof *b))) {
        return -ENOMEM;
    }
    b->next = NULL;
    b->buf.len = 0;
    b->buf.max = w->buf_max;
    b->nparts = b->cut_end = 0;
    b->grp = (struct sh_group){.url = t->url, .ctype = "text/plain", .gzip = t->gzip};
    int rc = rs_encode(ops, b, t, pts, n, c_unwritable, complain, skipped);
    if (rc == 0) rc = sh_pool_submit(t->pool, &b->grp, b->parts, b->nparts);
    if (rc) {
        b->next = w->spare; /* nothing was queued: keep the buffers */
        w->spare = b;
        w->nspare++;
        return rc;
    }
    if (w->tail)
        w->tail->next = b;
    else
        w->head = b;
    w->tail = b;
    w->pending++;
    return 0;
}

int rs_wait(struct store *s, const struct rs_write_ops *ops, struct rs_writes *w,
            const struct rs_target *t, int64_t timeout_ns)
{
    struct rs_batch *b = w->head;
    if (!b) return -ENOENT;
    if (!sh_pool_wait(t->pool, &b->grp, timeout_ns)) return STORE_PENDING;
    w->head = b->next;
    if (!w->head) w->tail = NULL;
    w->pending--;
    /* A refused request does not stop the others: their points are fine. */
    bool refused = false;
    int transient = 0;
    for (size_t i = 0; i < b->nparts; i++) {
        int rc = ops->judge(s, &b->parts[i]);
        if (rc == -EINVAL)
            refused = true;
        else if (rc && !transient)
            transient = rc;
    }
    if (w->nspare < RS_SPARE) {
        b->next = w->spare;
        w->spare = b;
        w->nspare++;
    } else {
        rs_batch_free(b);
    }
    if (transient) return transient;
    return refused ? -EINVAL : 0;
}

int rs_write(struct store *s, const struct rs_write_ops *ops, struct rs_writes *w,
             const struct rs_target *t, const struct store_point *pts, size_t n,
             struct pt_complain *c_unwritable, struct pt_complain *complain, size_t *skipped)
{
    int rc = rs_submit(s, ops, w, t, pts, n, c_unwritable, complain, skipped);
    return rc ? rc : rs_wait(s, ops, w, t, -1);
}
