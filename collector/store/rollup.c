/* Roll-up tiers of the embedded store: 1 m and 1 h summaries (count, min,
 * max, sum, last per numeric field) of every series, maintained by the
 * writer inside the transaction that stores the points, so that a query
 * over days reads one row per hour instead of 3600 points.
 *
 * A batch's changes are first summed in memory per (tier, series, bucket)
 * and then merged into each touched row once: a batch often holds many
 * seconds of the same series, and one read-modify-write per bucket costs far
 * less than one per point. A point that replaces a different one at the
 * same time cannot be subtracted from min, max or last, so its buckets are
 * recomputed from the data below them instead. */
#include "store/sqlite_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pt/catalog.h"
#include "pt/err.h"
#include "pt/time.h"
#include "store/store_int.h"

const int64_t rollup_width[ROLLUP_NTIERS] = {60 * PT_NS_PER_SEC, 3600 * PT_NS_PER_SEC};
const char *const rollup_name[ROLLUP_NTIERS] = {"1m", "1h"};

const char rollup_schema_sql[] = "CREATE TABLE rollup_1m ("
                                 " series INTEGER NOT NULL,"
                                 " ts INTEGER NOT NULL,"
                                 " agg BLOB NOT NULL,"
                                 " PRIMARY KEY (series, ts)) WITHOUT ROWID;"
                                 "CREATE TABLE rollup_1h ("
                                 " series INTEGER NOT NULL,"
                                 " ts INTEGER NOT NULL,"
                                 " agg BLOB NOT NULL,"
                                 " PRIMARY KEY (series, ts)) WITHOUT ROWID;";

#define BLOB_MAX (ROLLUP_MAX_FIELDS * ROLLUP_FIELD_MAX)

/* ---- one field's summary --------------------------------------------------------- */

static void ragg_add(struct ragg *a, uint8_t type, double v, int64_t ts)
{
    if (a->n == 0) {
        a->type = type;
        a->min = a->max = a->sum = a->last = v;
        a->last_ts = ts;
        a->n = 1;
        return;
    }
    if (a->type != type) a->type = PT_F_FLOAT;
    if (v < a->min) a->min = v;
    if (v > a->max) a->max = v;
    a->sum += v;
    /* >=: the later of two values at one time is the one written last. */
    if (ts >= a->last_ts) {
        a->last = v;
        a->last_ts = ts;
    }
    a->n++;
}

static void ragg_merge(struct ragg *a, const struct ragg *b)
{
    if (b->n == 0) return;
    if (a->n == 0) {
        const char *name = a->name;
        uint8_t nlen = a->nlen;
        *a = *b;
        a->name = name;
        a->nlen = nlen;
        return;
    }
    if (a->type != b->type) a->type = PT_F_FLOAT;
    if (b->min < a->min) a->min = b->min;
    if (b->max > a->max) a->max = b->max;
    a->sum += b->sum;
    if (b->last_ts >= a->last_ts) {
        a->last = b->last;
        a->last_ts = b->last_ts;
    }
    a->n += b->n;
}

static bool num_of(const struct pt_field *f, double *v)
{
    switch (f->type) {
    case PT_F_FLOAT:
        *v = f->v.f;
        return true;
    case PT_F_INT:
        *v = (double)f->v.i;
        return true;
    case PT_F_UINT:
        *v = (double)f->v.u;
        return true;
    default:
        return false;
    }
}

/* ---- the row blob ------------------------------------------------------------------ */

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void put_f64(uint8_t *p, double d)
{
    uint64_t v;
    memcpy(&v, &d, 8);
    put_u64(p, v);
}

static double get_f64(const uint8_t *p)
{
    uint64_t v = get_u64(p);
    double d;
    memcpy(&d, &v, 8);
    return d;
}

/* Field header flags (the low nibble holds the type). */
#define F_SYM   0x10 /* the name is a catalog symbol id (u16) */
#define F_CONST 0x20 /* min = max = last: one value stored, sum = n x value */

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Reads a varint from p[0..len); 0 when truncated or too long. */
static size_t get_varint(const uint8_t *p, size_t len, uint64_t *v)
{
    uint64_t x = 0;
    for (size_t i = 0; i < len && i < 10; i++) {
        x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            *v = x;
            return i + 1;
        }
    }
    return 0;
}

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

int rollup_encode(const struct ragg *f, size_t nf, int64_t base, uint8_t *out, size_t cap,
                  size_t *len)
{
    size_t o = 0;
    for (size_t i = 0; i < nf; i++) {
        const struct ragg *a = &f[i];
        if (a->n == 0) continue;
        if (cap - o < ROLLUP_FIELD_MAX) return PT_E_LIMIT;
        uint32_t sym = pt_sym_find(a->name, a->nlen);
        bool cnst = a->min == a->max && a->last == a->min;
        out[o++] = (uint8_t)((a->type & 0x0f) | (sym && sym <= UINT16_MAX ? F_SYM : 0) |
                             (cnst ? F_CONST : 0));
        if (sym && sym <= UINT16_MAX) {
            out[o++] = (uint8_t)sym;
            out[o++] = (uint8_t)(sym >> 8);
        } else {
            out[o++] = a->nlen;
            memcpy(out + o, a->name, a->nlen);
            o += a->nlen;
        }
        o += put_varint(out + o, a->n);
        put_f64(out + o, a->min);
        o += 8;
        if (!cnst) {
            put_f64(out + o, a->max);
            put_f64(out + o + 8, a->sum);
            put_f64(out + o + 16, a->last);
            o += 24;
        }
        o += put_varint(out + o, zigzag(a->last_ts - base));
    }
    *len = o;
    return 0;
}

int rollup_decode(const void *blob, size_t len, int64_t base, struct ragg *f, size_t cap,
                  size_t *nf)
{
    const uint8_t *p = blob;
    size_t o = 0, n = 0;
    while (o < len) {
        if (n == cap) return PT_E_LIMIT;
        struct ragg *a = &f[n++];
        uint8_t flags = p[o++];
        a->type = flags & 0x0f;
        if (flags & F_SYM) {
            if (len - o < 2) return PT_E_STORE;
            uint32_t nlen;
            a->name = pt_sym_name((uint32_t)p[o] | (uint32_t)p[o + 1] << 8, &nlen);
            if (!a->name) return PT_E_STORE;
            a->nlen = (uint8_t)nlen;
            o += 2;
        } else {
            if (len - o < 1 || p[o] == 0 || len - o - 1 < p[o]) return PT_E_STORE;
            a->nlen = p[o];
            a->name = (const char *)p + o + 1;
            o += 1 + (size_t)p[o];
        }
        uint64_t v;
        size_t k = get_varint(p + o, len - o, &v);
        if (!k || v == 0 || v > UINT32_MAX) return PT_E_STORE;
        a->n = (uint32_t)v;
        o += k;
        size_t need = flags & F_CONST ? 8 : 32;
        if (len - o < need) return PT_E_STORE;
        a->min = get_f64(p + o);
        if (flags & F_CONST) {
            a->max = a->last = a->min;
            a->sum = a->min * (double)a->n;
        } else {
            a->max = get_f64(p + o + 8);
            a->sum = get_f64(p + o + 16);
            a->last = get_f64(p + o + 24);
        }
        o += need;
        if (!(k = get_varint(p + o, len - o, &v))) return PT_E_STORE;
        a->last_ts = base + unzigzag(v);
        o += k;
    }
    *nf = n;
    return 0;
}

/* ---- pending changes of a batch ---------------------------------------------------- */

struct pend {
    int tier;
    bool recompute; /* rebuild from below at flush; f unused */
    int64_t series, bucket;
    struct ragg *f;
    uint16_t nf, cap;
};

struct rollup {
    sqlite3 *db;
    struct pt_complain *complain;
    sqlite3_stmt *get[ROLLUP_NTIERS], *put[ROLLUP_NTIERS], *del1[ROLLUP_NTIERS],
        *del[ROLLUP_NTIERS];
    sqlite3_stmt *raw_range, *raw_ts, *m_range;
    struct pt_wire_dec *dec;

    struct pend *pend;
    size_t npend, pendcap;
    uint32_t *tab; /* index + 1 into pend; 0: free */
    size_t tabcap;
    bool dropped_logged;

    /* A row being built: fields with names copied into names. */
    struct ragg row[ROLLUP_MAX_FIELDS];
    size_t nrow;
    char names[ROLLUP_MAX_FIELDS][PT_WIRE_MAX_STR + 1];
    struct ragg tmp[ROLLUP_MAX_FIELDS];
    uint8_t blob[BLOB_MAX];
};

static uint64_t pend_hash(int tier, int64_t series, int64_t bucket)
{
    uint64_t h = (uint64_t)series * 0x9e3779b97f4a7c15u ^ (uint64_t)bucket * 0xc2b2ae3d27d4eb4fu;
    h ^= (uint64_t)tier;
    h ^= h >> 31;
    return h * 0x94d049bb133111ebu;
}

static int tab_grow(struct rollup *r)
{
    size_t cap = r->tabcap ? r->tabcap * 2 : 4096;
    uint32_t *t = calloc(cap, sizeof *t);
    if (!t) return -ENOMEM;
    for (size_t i = 0; i < r->npend; i++) {
        const struct pend *p = &r->pend[i];
        size_t j = pend_hash(p->tier, p->series, p->bucket) & (cap - 1);
        while (t[j]) j = (j + 1) & (cap - 1);
        t[j] = (uint32_t)(i + 1);
    }
    free(r->tab);
    r->tab = t;
    r->tabcap = cap;
    return 0;
}

static int pend_get(struct rollup *r, int tier, int64_t series, int64_t bucket, struct pend **out)
{
    if ((r->npend + 1) * 2 > r->tabcap) {
        int rc = tab_grow(r);
        if (rc) return rc;
    }
    size_t mask = r->tabcap - 1, j = pend_hash(tier, series, bucket) & mask;
    for (; r->tab[j]; j = (j + 1) & mask) {
        struct pend *p = &r->pend[r->tab[j] - 1];
        if (p->tier == tier && p->series == series && p->bucket == bucket) {
            *out = p;
            return 0;
        }
    }
    if (r->npend == r->pendcap) {
        size_t cap = r->pendcap ? r->pendcap * 2 : 1024;
        if (cap > UINT32_MAX - 1) return -ENOMEM;
        struct pend *v = realloc(r->pend, cap * sizeof *v);
        if (!v) return -ENOMEM;
        r->pend = v;
        r->pendcap = cap;
    }
    struct pend *p = &r->pend[r->npend++];
    *p = (struct pend){.tier = tier, .series = series, .bucket = bucket};
    r->tab[j] = (uint32_t)r->npend;
    *out = p;
    return 0;
}

void rollup_reset(struct rollup *r)
{
    for (size_t i = 0; i < r->npend; i++) free(r->pend[i].f);
    r->npend = 0;
    if (r->tab) memset(r->tab, 0, r->tabcap * sizeof *r->tab);
}

/* Logs once per open that a row had more fields than a tier keeps. */
static void too_many_fields(struct rollup *r, int64_t series)
{
    if (r->dropped_logged) return;
    r->dropped_logged = true;
    PT_WARN("store",
            "sqlite: series %lld has more than %d numeric fields in one bucket; the roll-up "
            "tiers keep the first %d (raw points keep all)",
            (long long)series, ROLLUP_MAX_FIELDS, ROLLUP_MAX_FIELDS);
}

static int pend_field(struct pend *p, size_t hint, const char *name, size_t nlen, struct ragg **out)
{
    if (hint < p->nf && p->f[hint].nlen == nlen && memcmp(p->f[hint].name, name, nlen) == 0) {
        *out = &p->f[hint];
        return 0;
    }
    for (size_t i = 0; i < p->nf; i++)
        if (p->f[i].nlen == nlen && memcmp(p->f[i].name, name, nlen) == 0) {
            *out = &p->f[i];
            return 0;
        }
    *out = NULL;
    if (p->nf >= ROLLUP_MAX_FIELDS) return 0;
    if (p->nf == p->cap) {
        size_t cap = p->cap ? p->cap * 2u : 16u;
        struct ragg *v = realloc(p->f, cap * sizeof *v);
        if (!v) return -ENOMEM;
        p->f = v;
        p->cap = (uint16_t)cap;
    }
    struct ragg *a = &p->f[p->nf++];
    memset(a, 0, sizeof *a);
    a->name = name;
    a->nlen = (uint8_t)nlen;
    *out = a;
    return 0;
}

int rollup_add(struct rollup *r, int64_t series, int64_t ts, const struct pt_field *f, uint16_t nf)
{
    for (int t = 0; t < ROLLUP_NTIERS; t++) {
        struct pend *p;
        int rc = pend_get(r, t, series, store_bucket(ts, rollup_width[t]), &p);
        if (rc) return rc;
        if (p->recompute) continue; /* the recomputation sees this point too */
        for (uint16_t i = 0; i < nf; i++) {
            double v;
            struct ragg *a;
            if (!num_of(&f[i], &v)) continue;
            if ((rc = pend_field(p, i, f[i].key.p, f[i].key.len, &a))) return rc;
            if (!a) {
                too_many_fields(r, series);
                continue;
            }
            ragg_add(a, f[i].type, v, ts);
        }
    }
    return 0;
}

int rollup_replaced(struct rollup *r, int64_t series, int64_t ts)
{
    for (int t = 0; t < ROLLUP_NTIERS; t++) {
        struct pend *p;
        int rc = pend_get(r, t, series, store_bucket(ts, rollup_width[t]), &p);
        if (rc) return rc;
        p->recompute = true;
        p->nf = 0;
    }
    return 0;
}

/* ---- building and writing rows --------------------------------------------------- */

/* The field of the row being built named name, appended (name copied) when
 * new; NULL when the row is full. */
static struct ragg *row_field(struct rollup *r, size_t hint, const char *name, size_t nlen)
{
    if (hint < r->nrow && r->row[hint].nlen == nlen && memcmp(r->row[hint].name, name, nlen) == 0)
        return &r->row[hint];
    for (size_t i = 0; i < r->nrow; i++)
        if (r->row[i].nlen == nlen && memcmp(r->row[i].name, name, nlen) == 0) return &r->row[i];
    if (r->nrow >= ROLLUP_MAX_FIELDS) return NULL;
    struct ragg *a = &r->row[r->nrow];
    memset(a, 0, sizeof *a);
    memcpy(r->names[r->nrow], name, nlen);
    a->name = r->names[r->nrow];
    a->nlen = (uint8_t)nlen;
    r->nrow++;
    return a;
}

static int sq_done(struct rollup *r, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    int ret = rc == SQLITE_DONE ? 0 : store_sq_error(r->complain, r->db, rc, what);
    sqlite3_reset(st);
    return ret;
}

/* Stores the row being built as (series, bucket) of tier t; deletes the row
 * when it has no field (every point of the bucket is gone). */
static int row_store(struct rollup *r, int t, int64_t series, int64_t bucket)
{
    size_t len;
    int rc = rollup_encode(r->row, r->nrow, bucket, r->blob, sizeof r->blob, &len);
    if (rc) return rc;
    sqlite3_stmt *st = len ? r->put[t] : r->del1[t];
    sqlite3_bind_int64(st, 1, series);
    sqlite3_bind_int64(st, 2, bucket);
    if (len) sqlite3_bind_blob(st, 3, r->blob, (int)len, SQLITE_STATIC);
    return sq_done(r, st, "roll-up write");
}

/* Merges the pending summary p into its stored row. */
static int flush_merge(struct rollup *r, const struct pend *p)
{
    if (p->nf == 0) return 0;
    sqlite3_stmt *st = r->get[p->tier];
    sqlite3_bind_int64(st, 1, p->series);
    sqlite3_bind_int64(st, 2, p->bucket);
    int rc = sqlite3_step(st);
    r->nrow = 0;
    if (rc == SQLITE_ROW) {
        size_t n;
        rc = rollup_decode(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
                           p->bucket, r->tmp, ROLLUP_MAX_FIELDS, &n);
        if (rc) {
            PT_ERROR("store", "sqlite: roll-up %s row of series %lld at %lld is corrupt",
                     rollup_name[p->tier], (long long)p->series, (long long)p->bucket);
            sqlite3_reset(st);
            return rc;
        }
        for (size_t i = 0; i < n; i++) {
            struct ragg *a = row_field(r, i, r->tmp[i].name, r->tmp[i].nlen);
            if (a) ragg_merge(a, &r->tmp[i]);
        }
    } else if (rc != SQLITE_DONE) {
        rc = store_sq_error(r->complain, r->db, rc, "roll-up read");
        sqlite3_reset(st);
        return rc;
    }
    sqlite3_reset(st);
    for (size_t i = 0; i < p->nf; i++) {
        struct ragg *a = row_field(r, i, p->f[i].name, p->f[i].nlen);
        if (!a) {
            too_many_fields(r, p->series);
            continue;
        }
        ragg_merge(a, &p->f[i]);
    }
    return row_store(r, p->tier, p->series, p->bucket);
}

/* Rebuilds a 1 m row from the raw points of its minute. */
static int recompute_1m(struct rollup *r, int64_t series, int64_t bucket)
{
    sqlite3_stmt *st = r->raw_range;
    sqlite3_bind_int64(st, 1, series);
    sqlite3_bind_int64(st, 2, bucket);
    sqlite3_bind_int64(st, 3, bucket + rollup_width[0]);
    r->nrow = 0;
    int rc, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct pt_field *f;
        uint16_t nf;
        int64_t ts = sqlite3_column_int64(st, 0);
        if ((ret = pt_wire_fields_decode(r->dec, sqlite3_column_blob(st, 1),
                                         (size_t)sqlite3_column_bytes(st, 1), &f, &nf))) {
            PT_ERROR("store", "sqlite: series %lld at %lld: undecodable fields (%s)",
                     (long long)series, (long long)ts, pt_strerror(ret));
            ret = PT_E_STORE;
            break;
        }
        for (uint16_t i = 0; i < nf; i++) {
            double v;
            if (!num_of(&f[i], &v)) continue;
            struct ragg *a = row_field(r, i, f[i].key.p, f[i].key.len);
            if (a)
                ragg_add(a, f[i].type, v, ts);
            else
                too_many_fields(r, series);
        }
    }
    if (ret == 0 && rc != SQLITE_DONE) ret = store_sq_error(r->complain, r->db, rc, "raw read");
    sqlite3_reset(st);
    return ret ? ret : row_store(r, 0, series, bucket);
}

/* Rebuilds a 1 h row from the 1 m rows of its hour. */
static int recompute_1h(struct rollup *r, int64_t series, int64_t bucket)
{
    sqlite3_stmt *st = r->m_range;
    sqlite3_bind_int64(st, 1, series);
    sqlite3_bind_int64(st, 2, bucket);
    sqlite3_bind_int64(st, 3, bucket + rollup_width[1]);
    r->nrow = 0;
    int rc, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t n;
        if ((ret = rollup_decode(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1),
                                 sqlite3_column_int64(st, 0), r->tmp, ROLLUP_MAX_FIELDS, &n))) {
            PT_ERROR("store", "sqlite: roll-up 1m row of series %lld is corrupt",
                     (long long)series);
            break;
        }
        for (size_t i = 0; i < n; i++) {
            struct ragg *a = row_field(r, i, r->tmp[i].name, r->tmp[i].nlen);
            if (a) ragg_merge(a, &r->tmp[i]);
        }
    }
    if (ret == 0 && rc != SQLITE_DONE) ret = store_sq_error(r->complain, r->db, rc, "1m read");
    sqlite3_reset(st);
    return ret ? ret : row_store(r, 1, series, bucket);
}

int rollup_flush(struct rollup *r)
{
    /* 1 m first: a 1 h recomputation reads the 1 m rows. */
    for (int t = 0; t < ROLLUP_NTIERS; t++)
        for (size_t i = 0; i < r->npend; i++) {
            const struct pend *p = &r->pend[i];
            if (p->tier != t) continue;
            int rc;
            if (!p->recompute)
                rc = flush_merge(r, p);
            else if (t == 0)
                rc = recompute_1m(r, p->series, p->bucket);
            else
                rc = recompute_1h(r, p->series, p->bucket);
            if (rc) return rc;
        }
    return 0;
}

int64_t rollup_retention(struct rollup *r, int t, int64_t series, int64_t cutoff_ns)
{
    sqlite3_stmt *st = r->del[t];
    sqlite3_bind_int64(st, 1, series);
    sqlite3_bind_int64(st, 2, store_bucket(cutoff_ns, rollup_width[t]));
    int rc = sq_done(r, st, "roll-up retention");
    return rc ? rc : sqlite3_changes64(r->db);
}

int rollup_rebuild(struct rollup *r, int64_t series)
{
    sqlite3_stmt *st = r->raw_ts;
    sqlite3_bind_int64(st, 1, series);
    int rc, ret = 0;
    while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
        ret = rollup_replaced(r, series, sqlite3_column_int64(st, 0));
    if (ret == 0 && rc != SQLITE_DONE) ret = store_sq_error(r->complain, r->db, rc, "raw read");
    sqlite3_reset(st);
    if (ret == 0) ret = rollup_flush(r);
    rollup_reset(r);
    return ret;
}

/* ---- open and close ----------------------------------------------------------------- */

void rollup_close(struct rollup *r)
{
    if (!r) return;
    for (int t = 0; t < ROLLUP_NTIERS; t++) {
        sqlite3_finalize(r->get[t]);
        sqlite3_finalize(r->put[t]);
        sqlite3_finalize(r->del1[t]);
        sqlite3_finalize(r->del[t]);
    }
    sqlite3_finalize(r->raw_range);
    sqlite3_finalize(r->raw_ts);
    sqlite3_finalize(r->m_range);
    pt_wire_dec_free(r->dec);
    rollup_reset(r);
    free(r->pend);
    free(r->tab);
    free(r);
}

static int prep(struct rollup *r, const char *sql, sqlite3_stmt **st)
{
    int rc = sqlite3_prepare_v3(r->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
    return rc == SQLITE_OK ? 0 : store_sq_error(NULL, r->db, rc, sql);
}

int rollup_open(sqlite3 *db, struct pt_complain *complain, struct rollup **out)
{
    *out = NULL;
    struct rollup *r = calloc(1, sizeof *r);
    if (!r) return -ENOMEM;
    r->db = db;
    r->complain = complain;
    int rc = (r->dec = pt_wire_dec_new()) ? 0 : -ENOMEM;
    for (int t = 0; t < ROLLUP_NTIERS && rc == 0; t++) {
        char sql[128];
        const char *tn = rollup_name[t];
        snprintf(sql, sizeof sql, "SELECT agg FROM rollup_%s WHERE series=?1 AND ts=?2", tn);
        if ((rc = prep(r, sql, &r->get[t]))) break;
        snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO rollup_%s VALUES (?1, ?2, ?3)", tn);
        if ((rc = prep(r, sql, &r->put[t]))) break;
        snprintf(sql, sizeof sql, "DELETE FROM rollup_%s WHERE series=?1 AND ts=?2", tn);
        if ((rc = prep(r, sql, &r->del1[t]))) break;
        snprintf(sql, sizeof sql, "DELETE FROM rollup_%s WHERE series=?1 AND ts<?2", tn);
        rc = prep(r, sql, &r->del[t]);
    }
    if (rc == 0)
        rc = prep(r, "SELECT ts, fields FROM points WHERE series=?1 AND ts>=?2 AND ts<?3",
                  &r->raw_range);
    if (rc == 0) rc = prep(r, "SELECT ts FROM points WHERE series=?1", &r->raw_ts);
    if (rc == 0)
        rc = prep(r, "SELECT ts, agg FROM rollup_1m WHERE series=?1 AND ts>=?2 AND ts<?3",
                  &r->m_range);
    if (rc) {
        rollup_close(r);
        return rc;
    }
    *out = r;
    return 0;
}
