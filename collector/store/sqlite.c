/* The embedded store: one SQLite file in WAL mode, points clustered by
 * (series, time) for time-ranged reads by VM and measurement, with 1 m and
 * 1 h roll-ups (rollup.c) that queries use where they give the same answer.
 * docs/storage.md describes the file; this is the code behind
 * store_sqlite_ops: writing, retention, per-VM and MCIS-level queries.
 *
 * Threads: the writer connection belongs to the one thread that calls
 * write_batch() and retention(). Readers (query, latest) take a connection
 * of their own from a small pool, so no connection is ever used by two
 * threads at once and SQLite can run without its own mutexes. */
#include "store/sqlite_int.h"
#include "store/store_int.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pt/catalog.h"
#include "pt/err.h"
#include "pt/log.h"
#include "pt/time.h"

#define SCHEMA_VERSION 2          /* PRAGMA user_version; bump with a migration */
#define APP_ID         0x50544c41 /* PRAGMA application_id: "PTLA" */
#define DEFAULT_FILE   "metrics.db"
/* Tuning, measured with tests/bench/bench_store.c (docs/storage.md):
 * - 4 KiB pages: each commit rewrites the tail page of every series it
 *   touches, so smaller pages write less; a row stays inside its page up to
 *   ~1000 bytes (larger rows spill to overflow pages).
 * - A checkpoint every 16384 WAL pages (64 MiB) instead of SQLite's 1000:
 *   with thousands of series a single commit dirties thousands of pages, and
 *   the default would checkpoint (and fsync) on nearly every commit.
 * - The writer's page cache holds the tail pages of ~8000 series; beyond,
 *   the OS page cache serves them (no measurable difference up to 15000). */
#define PAGE_SIZE     4096 /* set when the file is created */
#define CKPT_PAGES    16384
#define WAL_LIMIT     (INT64_C(64) << 20) /* WAL truncated to this after a checkpoint */
#define WRITER_CACHE  (-32 * 1024)        /* KiB */
#define READER_CACHE  (-8 * 1024)         /* KiB */
#define BUSY_MS       5000
#define POOL_IDLE_MAX 8          /* idle reader connections kept */
#define CACHE_MAX     (1u << 20) /* series ids kept by the writer */
#define RETAIN_CHUNK  512        /* series per retention transaction */

/* The canonical tag string: "k=v,k=v" sorted by key, '\\', ',' and '='
 * escaped with '\\'. Worst case every byte doubles. */
#define TAGS_MAX (PT_WIRE_MAX_TAGS * (4 * PT_WIRE_MAX_STR + 2))
/* The writer's cache key: seven length-prefixed parts. */
#define KEY_MAX (TAGS_MAX + 6 * PT_WIRE_MAX_STR + 7 * 2)

static const char schema_sql[] = "CREATE TABLE series ("
                                 " id INTEGER PRIMARY KEY,"
                                 " ns TEXT NOT NULL,"
                                 " mcis TEXT NOT NULL,"
                                 " vm TEXT NOT NULL,"
                                 " measurement TEXT NOT NULL,"
                                 " tags TEXT NOT NULL,"
                                 " csp TEXT NOT NULL DEFAULT '',"
                                 " host TEXT NOT NULL DEFAULT '',"
                                 " UNIQUE (ns, mcis, vm, measurement, tags));"
                                 "CREATE TABLE points ("
                                 " series INTEGER NOT NULL,"
                                 " ts INTEGER NOT NULL,"
                                 " fields BLOB NOT NULL,"
                                 " PRIMARY KEY (series, ts)) WITHOUT ROWID;";

/* A reader connection with its statements and field decoder. */
struct rconn {
    sqlite3 *db;
    sqlite3_stmt *series_of;           /* series of one (vm, measurement) */
    sqlite3_stmt *series_vm;           /* series of one vm, optionally one measurement */
    sqlite3_stmt *range;               /* points of one series in [from, to) */
    sqlite3_stmt *newest;              /* newest point of one series */
    sqlite3_stmt *begin, *end;         /* a read transaction: one snapshot */
    sqlite3_stmt *tier[ROLLUP_NTIERS]; /* roll-up rows of one series in [from, to) */
    sqlite3_stmt *series_all;          /* series of one (ns, mcis), optionally one measurement */
    struct pt_wire_dec *dec;
    struct ragg tmp[ROLLUP_MAX_FIELDS]; /* a decoded roll-up row */
    struct rconn *next;
};

/* Writer cache entry: identity key → series id. */
struct centry {
    uint64_t hash;
    int64_t id;
    char *key; /* NULL: free slot */
    size_t klen;
};

struct store {
    char path[PATH_MAX];
    char wal[PATH_MAX + 4];

    /* Writer side: only the writer thread touches these. */
    sqlite3 *db;
    sqlite3_stmt *begin, *commit, *rollback, *upsert, *insert, *ids, *del;
    sqlite3_stmt *old_of, *update; /* a point already stored at (series, ts) */
    struct rollup *roll;
    /* Retention per tier (raw, 1m, 1h), 0 = keep all; see sq_retention(). */
    int64_t keep_raw, keep_tier[ROLLUP_NTIERS];
    struct centry *cache;
    size_t ccap, cn;
    struct pt_complain complain;
    char tags[TAGS_MAX];
    char key[KEY_MAX];
    uint8_t blob[PT_WIRE_MAX_FRAME]; /* the decoder refuses more */

    /* Reader pool. */
    pthread_mutex_t mu;
    struct rconn *idle;
    size_t nidle;
};

/* ---- errors ---------------------------------------------------------------- */

/* The one place SQLite result codes become Pantala codes. */
static int sq_code(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return 0;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return -EACCES;
    case SQLITE_IOERR:
        return -EIO;
    case SQLITE_TOOBIG:
        return -E2BIG;
    case SQLITE_INTERRUPT:
        return -EINTR;
    default: /* CORRUPT, NOTADB, CONSTRAINT, SCHEMA, MISUSE, ... */
        return PT_E_STORE;
    }
}

/* Logs what failed with SQLite's own message (rate-limited through c when
 * given, for failures that repeat every flush) and returns the mapped code.
 * Call it before anything else runs on db, which would replace the message. */
static int sq_error(struct pt_complain *c, sqlite3 *db, int rc, const char *what)
{
    const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    if (c)
        pt_complain(c, PT_LOG_ERROR, "store", "sqlite: %s: %s", what, msg);
    else
        PT_ERROR("store", "sqlite: %s: %s", what, msg);
    return sq_code(rc);
}

int store_sq_error(struct pt_complain *c, sqlite3 *db, int rc, const char *what)
{
    return sq_error(c, db, rc, what);
}

/* Runs a statement that returns no rows (or ignores them) and resets it. */
static int sq_run(struct pt_complain *c, sqlite3 *db, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    while (rc == SQLITE_ROW) rc = sqlite3_step(st);
    int ret = rc == SQLITE_DONE ? 0 : sq_error(c, db, rc, what);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

static int sq_exec(sqlite3 *db, const char *sql, const char *what)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : sq_error(NULL, db, rc, what);
}

static int sq_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
    return rc == SQLITE_OK ? 0 : sq_error(NULL, db, rc, sql);
}

/* Binds a possibly empty, possibly NULL-pointer string as TEXT. */
static int bind_str(sqlite3_stmt *st, int i, const char *p, size_t len)
{
    return sqlite3_bind_text(st, i, p ? p : "", (int)len, SQLITE_STATIC);
}

/* ---- the canonical tag string ------------------------------------------------ */

static int put_escaped(char *out, size_t cap, size_t *len, const char *p, size_t n)
{
    size_t o = *len;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch == '\\' || ch == ',' || ch == '=') {
            if (o >= cap) return PT_E_LIMIT;
            out[o++] = '\\';
        }
        if (o >= cap) return PT_E_LIMIT;
        out[o++] = ch;
    }
    *len = o;
    return 0;
}

static int cmp_str(struct pt_str a, struct pt_str b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.p, b.p, n) : 0;
    return c ? c : (a.len > b.len) - (a.len < b.len);
}

/* Writes the tags of m sorted by key (then value) into out. */
static int tags_canon(const struct pt_meas *m, char *out, size_t cap, size_t *outlen)
{
    const struct pt_tag *t[PT_WIRE_MAX_TAGS];
    size_t n = m->ntags, len = 0;
    for (size_t i = 0; i < n; i++) {
        const struct pt_tag *x = &m->tags[i];
        size_t j = i;
        for (; j > 0; j--) {
            int c = cmp_str(t[j - 1]->key, x->key);
            if (c < 0 || (c == 0 && cmp_str(t[j - 1]->val, x->val) <= 0)) break;
            t[j] = t[j - 1];
        }
        t[j] = x;
    }
    for (size_t i = 0; i < n; i++) {
        int rc;
        if (i) {
            if (len >= cap) return PT_E_LIMIT;
            out[len++] = ',';
        }
        if ((rc = put_escaped(out, cap, &len, t[i]->key.p, t[i]->key.len))) return rc;
        if (len >= cap) return PT_E_LIMIT;
        out[len++] = '=';
        if ((rc = put_escaped(out, cap, &len, t[i]->val.p, t[i]->val.len))) return rc;
    }
    *outlen = len;
    return 0;
}

/* Copies the escaped text s[0..n) unescaped into a new string. */
static char *unescape_dup(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n) i++;
        out[o++] = s[i];
    }
    out[o] = '\0';
    return out;
}

/* Splits a canonical tag string back into heap arrays of keys and values. */
static int tags_parse(const char *s, size_t len, char ***keys, char ***vals, size_t *n)
{
    *keys = *vals = NULL;
    *n = 0;
    if (len == 0) return 0;
    size_t pairs = 1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == ',')
            pairs++;
    }
    char **k = calloc(pairs, sizeof *k), **v = calloc(pairs, sizeof *v);
    if (!k || !v) goto nomem;
    size_t start = 0, eq = SIZE_MAX, np = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] == '\\') {
            i++;
            continue;
        }
        if (i < len && s[i] == '=' && eq == SIZE_MAX) eq = i;
        if (i < len && s[i] != ',') continue;
        if (eq == SIZE_MAX) eq = i; /* no '=': cannot come from tags_canon */
        k[np] = unescape_dup(s + start, eq - start);
        v[np] = unescape_dup(s + eq + (eq < i), i - eq - (eq < i));
        np++;
        if (!k[np - 1] || !v[np - 1]) goto nomem;
        start = i + 1;
        eq = SIZE_MAX;
    }
    *keys = k;
    *vals = v;
    *n = np;
    return 0;
nomem:
    for (size_t i = 0; i < pairs && k && v; i++) {
        free(k[i]);
        free(v[i]);
    }
    free(k);
    free(v);
    return -ENOMEM;
}

/* ---- the writer's series cache ----------------------------------------------- */

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a 64 */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 1099511628211u;
    return h;
}

static void cache_clear(struct store *s)
{
    for (size_t i = 0; i < s->ccap; i++) free(s->cache[i].key);
    free(s->cache);
    s->cache = NULL;
    s->ccap = s->cn = 0;
}

static const struct centry *cache_find(const struct store *s, uint64_t h, const char *key,
                                       size_t klen)
{
    if (!s->ccap) return NULL;
    size_t mask = s->ccap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const struct centry *e = &s->cache[i];
        if (!e->key) return NULL;
        if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0) return e;
    }
}

static void cache_slot(struct centry *tab, size_t cap, struct centry e)
{
    size_t i = e.hash & (cap - 1);
    while (tab[i].key) i = (i + 1) & (cap - 1);
    tab[i] = e;
}

/* Remembers key → id. Failing to allocate only costs a lookup later. */
static void cache_put(struct store *s, uint64_t h, const char *key, size_t klen, int64_t id)
{
    if (s->cn >= CACHE_MAX) cache_clear(s);
    if ((s->cn + 1) * 2 > s->ccap) {
        size_t cap = s->ccap ? s->ccap * 2 : 1024;
        struct centry *tab = calloc(cap, sizeof *tab);
        if (!tab) return;
        for (size_t i = 0; i < s->ccap; i++)
            if (s->cache[i].key) cache_slot(tab, cap, s->cache[i]);
        free(s->cache);
        s->cache = tab;
        s->ccap = cap;
    }
    char *k = malloc(klen);
    if (!k) return;
    memcpy(k, key, klen);
    cache_slot(s->cache, s->ccap, (struct centry){h, id, k, klen});
    s->cn++;
}

/* ---- writing ------------------------------------------------------------------- */

static void put_part(char *key, size_t *len, const char *p, size_t n)
{
    key[(*len)++] = (char)(n >> 8);
    key[(*len)++] = (char)n;
    if (n) memcpy(key + *len, p, n);
    *len += n;
}

static bool meta_ok(struct pt_str s)
{
    return s.len <= PT_WIRE_MAX_STR && (s.len == 0 || pt_utf8_ok(s.p, s.len, false));
}

/* Checks a new series identity: what the wire decoder would accept. */
static bool identity_ok(const struct pt_ident *id, const struct pt_meas *m)
{
    if (!pt_wire_name_ok(id->ns.p, id->ns.len) || !pt_wire_name_ok(id->mcis.p, id->mcis.len) ||
        !pt_wire_name_ok(id->vm.p, id->vm.len) || !pt_wire_name_ok(m->name.p, m->name.len) ||
        !meta_ok(id->csp) || !meta_ok(id->host))
        return false;
    for (size_t i = 0; i < m->ntags; i++)
        if (!pt_wire_name_ok(m->tags[i].key.p, m->tags[i].key.len) ||
            !pt_wire_name_ok(m->tags[i].val.p, m->tags[i].val.len))
            return false;
    return true;
}

/* Checks fields so that what is stored always decodes again. */
static bool fields_ok(const struct pt_meas *m)
{
    for (size_t i = 0; i < m->nfields; i++) {
        const struct pt_field *f = &m->fields[i];
        if (!pt_wire_name_ok(f->key.p, f->key.len)) return false;
        switch (f->type) {
        case PT_F_FLOAT:
            if (!isfinite(f->v.f)) return false;
            break;
        case PT_F_INT:
        case PT_F_UINT:
            break;
        case PT_F_STR:
            if (f->v.s.len > PT_WIRE_MAX_STR ||
                (f->v.s.len && !pt_utf8_ok(f->v.s.p, f->v.s.len, true)))
                return false;
            break;
        default:
            return false;
        }
    }
    return true;
}

static int bad_point(struct store *s, size_t i, const struct store_point *p, int rc,
                     const char *why)
{
    const struct pt_str vm = p->id ? p->id->vm : PT_STR("?");
    const struct pt_str meas = p->m ? p->m->name : PT_STR("?");
    pt_complain(&s->complain, PT_LOG_ERROR, "store",
                "batch refused: point %zu (vm %.*s, measurement %.*s): %s", i, (int)vm.len,
                vm.p ? vm.p : "", (int)meas.len, meas.p ? meas.p : "", why);
    return rc;
}

/* The id of p's series, creating the row on first sight. */
static int series_id(struct store *s, const struct store_point *p, size_t tlen, int64_t *id,
                     bool *added)
{
    const struct pt_ident *ident = p->id;
    const struct pt_meas *m = p->m;
    size_t klen = 0;
    put_part(s->key, &klen, ident->ns.p, ident->ns.len);
    put_part(s->key, &klen, ident->mcis.p, ident->mcis.len);
    put_part(s->key, &klen, ident->vm.p, ident->vm.len);
    put_part(s->key, &klen, m->name.p, m->name.len);
    put_part(s->key, &klen, s->tags, tlen);
    put_part(s->key, &klen, ident->csp.p, ident->csp.len);
    put_part(s->key, &klen, ident->host.p, ident->host.len);
    uint64_t h = hash_bytes(s->key, klen);
    const struct centry *e = cache_find(s, h, s->key, klen);
    if (e) {
        *id = e->id;
        return 0;
    }

    /* First sight since open: validate once, then upsert (csp and host are
     * metadata and follow the latest point). */
    if (!identity_ok(ident, m)) return -EINVAL;
    sqlite3_stmt *st = s->upsert;
    bind_str(st, 1, ident->ns.p, ident->ns.len);
    bind_str(st, 2, ident->mcis.p, ident->mcis.len);
    bind_str(st, 3, ident->vm.p, ident->vm.len);
    bind_str(st, 4, m->name.p, m->name.len);
    bind_str(st, 5, s->tags, tlen);
    bind_str(st, 6, ident->csp.p, ident->csp.len);
    bind_str(st, 7, ident->host.p, ident->host.len);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        rc = sq_error(&s->complain, s->db, rc, "series upsert");
        sqlite3_reset(st);
        return rc ? rc : PT_E_STORE;
    }
    *id = sqlite3_column_int64(st, 0);
    rc = sq_run(&s->complain, s->db, st, "series upsert");
    if (rc) return rc;
    cache_put(s, h, s->key, klen, *id);
    *added = true;
    return 0;
}

/* A point exists at (sid, ts): a resend of the same frame is the usual
 * case and changes nothing; different values replace the stored ones and
 * have the roll-up buckets holding ts recomputed. */
static int replace_point(struct store *s, int64_t sid, int64_t ts, size_t blen)
{
    sqlite3_stmt *st = s->old_of;
    sqlite3_bind_int64(st, 1, sid);
    sqlite3_bind_int64(st, 2, ts);
    int rc = sqlite3_step(st);
    bool same = rc == SQLITE_ROW && (size_t)sqlite3_column_bytes(st, 0) == blen &&
                memcmp(sqlite3_column_blob(st, 0), s->blob, blen) == 0;
    int ret = rc == SQLITE_ROW ? 0 : sq_error(&s->complain, s->db, rc, "read replaced point");
    sqlite3_reset(st);
    if (ret || same) return ret;
    st = s->update;
    sqlite3_bind_int64(st, 1, sid);
    sqlite3_bind_int64(st, 2, ts);
    sqlite3_bind_blob(st, 3, s->blob, (int)blen, SQLITE_STATIC);
    if ((ret = sq_run(&s->complain, s->db, st, "replace point"))) return ret;
    return rollup_replaced(s->roll, sid, ts);
}

static int write_point(struct store *s, size_t i, const struct store_point *p, bool *added)
{
    if (!p->id || !p->m) return bad_point(s, i, p, -EINVAL, "no identity or measurement");
    const struct pt_ident *id = p->id;
    const struct pt_meas *m = p->m;
    if (m->nfields == 0) return 0; /* e.g. only rates, on the first reading: nothing to keep */
    if (m->ntags > PT_WIRE_MAX_TAGS || m->nfields > PT_WIRE_MAX_FIELDS)
        return bad_point(s, i, p, PT_E_LIMIT, "too many tags or fields");
    /* Bounds the cache key; the content is checked on a cache miss. */
    if (id->ns.len > PT_WIRE_MAX_STR || id->mcis.len > PT_WIRE_MAX_STR ||
        id->vm.len > PT_WIRE_MAX_STR || id->csp.len > PT_WIRE_MAX_STR ||
        id->host.len > PT_WIRE_MAX_STR || m->name.len > PT_WIRE_MAX_STR)
        return bad_point(s, i, p, PT_E_LIMIT, "name longer than 255 bytes");
    if (!fields_ok(m)) return bad_point(s, i, p, -EINVAL, "invalid field name or value");
    size_t tlen, blen;
    int64_t sid;
    int rc = tags_canon(m, s->tags, sizeof s->tags, &tlen);
    if (rc) return bad_point(s, i, p, rc, "tags too long");
    rc = series_id(s, p, tlen, &sid, added);
    if (rc == -EINVAL) return bad_point(s, i, p, rc, "invalid identity, name or tag");
    if (rc) return rc;
    rc = pt_wire_fields_encode(m->fields, m->nfields, s->blob, sizeof s->blob, &blen);
    if (rc) return bad_point(s, i, p, PT_E_LIMIT, "fields encode to more than 8 KiB");

    sqlite3_stmt *st = s->insert;
    sqlite3_bind_int64(st, 1, sid);
    sqlite3_bind_int64(st, 2, p->ts_ns);
    sqlite3_bind_blob(st, 3, s->blob, (int)blen, SQLITE_STATIC);
    rc = sqlite3_step(st);
    int ret = rc == SQLITE_DONE ? 0 : sq_error(&s->complain, s->db, rc, "insert point");
    sqlite3_reset(st);
    if (ret) return ret;
    if (sqlite3_changes(s->db) == 1)
        return rollup_add(s->roll, sid, p->ts_ns, m->fields, (uint16_t)m->nfields);
    return replace_point(s, sid, p->ts_ns, blen);
}

static int sq_write_batch(struct store *s, const struct store_point *pts, size_t n)
{
    if (n == 0) return 0;
    if (!pts) return -EINVAL;
    int rc = sq_run(&s->complain, s->db, s->begin, "begin write");
    if (rc) return rc;
    bool added = false;
    for (size_t i = 0; i < n; i++)
        if ((rc = write_point(s, i, &pts[i], &added))) goto fail;
    /* The tiers change in the same transaction as the points. */
    if ((rc = rollup_flush(s->roll))) goto fail;
    rollup_reset(s->roll);
    if ((rc = sq_run(&s->complain, s->db, s->commit, "commit write"))) goto fail;
    pt_complain_release(&s->complain, "store", "sqlite: writes succeed again");
    return 0;
fail:
    rollup_reset(s->roll);
    sq_run(NULL, s->db, s->rollback, "rollback write");
    /* Ids handed out in the rolled-back transaction no longer exist. */
    if (added) cache_clear(s);
    return rc;
}

static int64_t sq_retention(struct store *s, int64_t cutoff_ns)
{
    int64_t *ids = NULL, total = 0;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(s->ids)) == SQLITE_ROW) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 1024;
            int64_t *p = realloc(ids, ncap * sizeof *p);
            if (!p) {
                sqlite3_reset(s->ids);
                free(ids);
                return -ENOMEM;
            }
            ids = p;
            cap = ncap;
        }
        ids[n++] = sqlite3_column_int64(s->ids, 0);
    }
    int ret = rc == SQLITE_DONE ? 0 : sq_error(&s->complain, s->db, rc, "list series");
    sqlite3_reset(s->ids);
    /* The caller computes cutoff as now - store.retention; each tier's
     * cutoff is now - its own retention (0 keeps the tier whole). */
    int64_t now = cutoff_ns + s->keep_raw, tcut[ROLLUP_NTIERS];
    for (int t = 0; t < ROLLUP_NTIERS; t++)
        tcut[t] = s->keep_tier[t] > 0 ? now - s->keep_tier[t] : INT64_MIN;
    int64_t tier_rows = 0;
    /* A transaction per chunk of series keeps the WAL and the time the write
     * lock is held small; each delete is one range of the primary key. */
    for (size_t i = 0; i < n && ret == 0; i += RETAIN_CHUNK) {
        if ((ret = sq_run(&s->complain, s->db, s->begin, "begin retention"))) break;
        int64_t chunk = 0, tchunk = 0;
        for (size_t j = i; j < n && j < i + RETAIN_CHUNK && ret == 0; j++) {
            sqlite3_bind_int64(s->del, 1, ids[j]);
            sqlite3_bind_int64(s->del, 2, cutoff_ns);
            if ((ret = sq_run(&s->complain, s->db, s->del, "retention delete")) == 0)
                chunk += sqlite3_changes64(s->db);
            for (int t = 0; t < ROLLUP_NTIERS && ret == 0; t++) {
                if (tcut[t] == INT64_MIN) continue;
                int64_t d = rollup_retention(s->roll, t, ids[j], tcut[t]);
                if (d < 0)
                    ret = (int)d;
                else
                    tchunk += d;
            }
        }
        if (ret == 0) ret = sq_run(&s->complain, s->db, s->commit, "commit retention");
        if (ret) {
            sq_run(NULL, s->db, s->rollback, "rollback retention");
        } else {
            total += chunk;
            tier_rows += tchunk;
        }
    }
    if (tier_rows)
        PT_DEBUG("store", "sqlite: retention deleted %lld roll-up rows", (long long)tier_rows);
    free(ids);
    return ret ? ret : total;
}

static int64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : 0;
}

static int64_t sq_size(struct store *s)
{
    return file_size(s->path) + file_size(s->wal);
}

/* ---- readers ------------------------------------------------------------------- */

static void reader_close(struct rconn *c)
{
    if (!c) return;
    sqlite3_finalize(c->series_of);
    sqlite3_finalize(c->series_vm);
    sqlite3_finalize(c->range);
    sqlite3_finalize(c->newest);
    sqlite3_finalize(c->series_all);
    for (int t = 0; t < ROLLUP_NTIERS; t++) sqlite3_finalize(c->tier[t]);
    sqlite3_finalize(c->begin);
    sqlite3_finalize(c->end);
    sqlite3_close_v2(c->db);
    pt_wire_dec_free(c->dec);
    free(c);
}

static int reader_open(const struct store *s, struct rconn **out)
{
    struct rconn *c = calloc(1, sizeof *c);
    if (!c) return -ENOMEM;
    int rc = sqlite3_open_v2(s->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = sq_error(NULL, c->db, rc, "open reader");
        goto fail;
    }
    sqlite3_busy_timeout(c->db, BUSY_MS);
    char pragmas[96];
    snprintf(pragmas, sizeof pragmas, "PRAGMA query_only=1; PRAGMA cache_size=%d;", READER_CACHE);
    c->dec = pt_wire_dec_new();
    if (!c->dec) {
        rc = -ENOMEM;
        goto fail;
    }
    if ((rc = sq_exec(c->db, pragmas, "reader pragmas")) ||
        (rc = sq_prepare(c->db,
                         "SELECT id, measurement, tags, vm FROM series"
                         " WHERE ns=?1 AND mcis=?2 AND vm=?3 AND measurement=?4 ORDER BY tags",
                         &c->series_of)) ||
        (rc = sq_prepare(c->db,
                         "SELECT id, measurement, tags, vm FROM series"
                         " WHERE ns=?1 AND mcis=?2 AND vm=?3 AND (?4 IS NULL OR measurement=?4)"
                         " ORDER BY measurement, tags",
                         &c->series_vm)) ||
        (rc = sq_prepare(c->db,
                         "SELECT id, measurement, tags, vm FROM series"
                         " WHERE ns=?1 AND mcis=?2 AND (?3 IS NULL OR measurement=?3)"
                         " ORDER BY vm, measurement, tags",
                         &c->series_all)) ||
        (rc = sq_prepare(c->db,
                         "SELECT ts, agg FROM rollup_1m WHERE series=?1 AND ts>=?2 AND ts<?3"
                         " ORDER BY ts",
                         &c->tier[0])) ||
        (rc = sq_prepare(c->db,
                         "SELECT ts, agg FROM rollup_1h WHERE series=?1 AND ts>=?2 AND ts<?3"
                         " ORDER BY ts",
                         &c->tier[1])) ||
        (rc = sq_prepare(c->db,
                         "SELECT ts, fields FROM points WHERE series=?1 AND ts>=?2 AND ts<?3"
                         " ORDER BY ts",
                         &c->range)) ||
        (rc = sq_prepare(c->db,
                         "SELECT ts, fields FROM points WHERE series=?1 ORDER BY ts DESC LIMIT 1",
                         &c->newest)) ||
        (rc = sq_prepare(c->db, "BEGIN", &c->begin)) ||
        (rc = sq_prepare(c->db, "ROLLBACK", &c->end)))
        goto fail;
    *out = c;
    return 0;
fail:
    reader_close(c);
    return rc;
}

static int reader_get(struct store *s, struct rconn **out)
{
    pthread_mutex_lock(&s->mu);
    struct rconn *c = s->idle;
    if (c) {
        s->idle = c->next;
        s->nidle--;
    }
    pthread_mutex_unlock(&s->mu);
    if (c) {
        *out = c;
        return 0;
    }
    return reader_open(s, out);
}

static void reader_put(struct store *s, struct rconn *c)
{
    if (!sqlite3_get_autocommit(c->db)) sq_run(NULL, c->db, c->end, "end read");
    pthread_mutex_lock(&s->mu);
    if (s->nidle < POOL_IDLE_MAX) {
        c->next = s->idle;
        s->idle = c;
        s->nidle++;
        c = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    reader_close(c);
}

/* One series found by a reader, before its points are read. */
struct sref {
    int64_t id;
    char *measurement;
    char *tags;
    size_t tlen;
    char *vm;
};

static void srefs_free(struct sref *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].measurement);
        free(v[i].tags);
        free(v[i].vm);
    }
    free(v);
}

/* Frees refs[from..to). */
static void srefs_free_tail(struct sref *v, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        free(v[i].measurement);
        free(v[i].tags);
        free(v[i].vm);
    }
}

static char *dup_col(sqlite3_stmt *st, int col, size_t *len)
{
    const unsigned char *p = sqlite3_column_text(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    char *out = malloc(n + 1);
    if (!out) return NULL;
    if (n) memcpy(out, p, n);
    out[n] = '\0';
    if (len) *len = n;
    return out;
}

/* Collects the rows of a bound series statement. */
static int srefs_load(struct rconn *c, sqlite3_stmt *st, struct sref **out, size_t *nout)
{
    struct sref *v = NULL;
    size_t n = 0, cap = 0;
    int rc, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct sref *p = realloc(v, ncap * sizeof *p);
            if (!p) {
                ret = -ENOMEM;
                break;
            }
            v = p;
            cap = ncap;
        }
        struct sref *r = &v[n++];
        r->id = sqlite3_column_int64(st, 0);
        r->measurement = dup_col(st, 1, NULL);
        r->tags = dup_col(st, 2, &r->tlen);
        r->vm = dup_col(st, 3, NULL);
        if (!r->measurement || !r->tags || !r->vm) {
            ret = -ENOMEM;
            break;
        }
    }
    if (ret == 0 && rc != SQLITE_DONE) ret = sq_error(NULL, c->db, rc, "list series");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (ret) {
        srefs_free(v, n);
        return ret;
    }
    *out = v;
    *nout = n;
    return 0;
}

static int read_begin(struct rconn *c)
{
    return sq_run(NULL, c->db, c->begin, "begin read");
}

static int decode_fields(struct rconn *c, int64_t series, sqlite3_stmt *st, struct pt_field **f,
                         uint16_t *nf)
{
    const void *blob = sqlite3_column_blob(st, 1);
    size_t len = (size_t)sqlite3_column_bytes(st, 1);
    int rc = pt_wire_fields_decode(c->dec, blob, len, f, nf);
    if (rc) {
        PT_ERROR("store", "sqlite: series %lld at %lld: undecodable fields (%s)", (long long)series,
                 (long long)sqlite3_column_int64(st, 0), pt_strerror(rc));
        return PT_E_STORE;
    }
    return 0;
}

/* Orders series the way the catalog lists measurements, then by name and
 * tags, so results read like METRICS.md. */
/* Copies the tags of a result series into another. */
static int tags_parse_copy(const struct store_series *from, struct store_series *to)
{
    to->tag_keys = calloc(from->ntags ? from->ntags : 1, sizeof *to->tag_keys);
    to->tag_vals = calloc(from->ntags ? from->ntags : 1, sizeof *to->tag_vals);
    if (!to->tag_keys || !to->tag_vals) return -ENOMEM;
    to->ntags = from->ntags;
    for (size_t i = 0; i < from->ntags; i++)
        if (!(to->tag_keys[i] = strdup(from->tag_keys[i])) ||
            !(to->tag_vals[i] = strdup(from->tag_vals[i])))
            return -ENOMEM;
    return 0;
}

static int cmp_sref(const void *pa, const void *pb);

/* By VM first, then as cmp_sref(). */
static int cmp_sref_vm(const void *pa, const void *pb)
{
    const struct sref *a = pa, *b = pb;
    int c = strcmp(a->vm, b->vm);
    return c ? c : cmp_sref(pa, pb);
}

static int cmp_sref(const void *pa, const void *pb)
{
    const struct sref *a = pa, *b = pb;
    uint32_t sa = pt_sym_find(a->measurement, strlen(a->measurement));
    uint32_t sb = pt_sym_find(b->measurement, strlen(b->measurement));
    if (sa != sb) {
        if (!sa || !sb) return sa ? -1 : 1;
        return sa < sb ? -1 : 1;
    }
    int c = strcmp(a->measurement, b->measurement);
    return c ? c : strcmp(a->tags, b->tags);
}

/* ---- range queries ------------------------------------------------------------- */

/* One column being filled: values per output row (column-major until the
 * series is finished) and the current bucket's reducer. */
struct col {
    char *name;
    size_t len;
    uint32_t sym;  /* symbol id, 0 when none: orders discovered columns */
    uint8_t type;  /* stored type of the values, 0 while none seen */
    bool str_seen; /* a string value was skipped */
    double *v;     /* rowcap entries */
    struct store_acc acc;
};

struct build {
    const struct store_query *q;
    size_t max_rows;
    size_t *values; /* cells already in the result (of STORE_MAX_VALUES) */
    size_t pending; /* values held for p95 in the open bucket */
    bool fixed;     /* columns given by the query */
    struct col *cols;
    size_t ncols, colcap;
    int64_t *ts;
    size_t nrows, rowcap;
    uint16_t hint[PT_WIRE_MAX_FIELDS]; /* field position → column of the last point */
    bool open;                         /* a bucket is being reduced */
    int64_t bucket;
};

static void build_free(struct build *b)
{
    for (size_t i = 0; i < b->ncols; i++) {
        free(b->cols[i].name);
        free(b->cols[i].v);
        store_acc_free(&b->cols[i].acc);
    }
    free(b->cols);
    free(b->ts);
}

/* Whether rows x cols cells still fit in the query's STORE_MAX_VALUES. */
static bool build_fits(const struct build *b, size_t rows, size_t cols)
{
    size_t left = STORE_MAX_VALUES - *b->values;
    return cols == 0 || rows <= left / cols;
}

static int build_add_col(struct build *b, const char *name, size_t len, struct col **out)
{
    if (b->ncols >= STORE_MAX_COLS || !build_fits(b, b->nrows + 1, b->ncols + 1)) return -E2BIG;
    if (b->ncols == b->colcap) {
        size_t cap = b->colcap ? b->colcap * 2 : 32;
        struct col *p = realloc(b->cols, cap * sizeof *p);
        if (!p) return -ENOMEM;
        b->cols = p;
        b->colcap = cap;
    }
    struct col *c = &b->cols[b->ncols];
    memset(c, 0, sizeof *c);
    c->name = malloc(len + 1);
    c->v = malloc((b->rowcap ? b->rowcap : 1) * sizeof *c->v);
    if (!c->name || !c->v) {
        free(c->name);
        free(c->v);
        return -ENOMEM;
    }
    memcpy(c->name, name, len);
    c->name[len] = '\0';
    c->len = len;
    c->sym = pt_sym_find(name, len);
    /* Earlier rows, and the row being filled, have no value for it. */
    for (size_t r = 0; r <= b->nrows && r < (b->rowcap ? b->rowcap : 1); r++) c->v[r] = NAN;
    b->ncols++;
    *out = c;
    return 0;
}

/* Makes room for row nrows in ts and every column. */
static int build_row_room(struct build *b)
{
    if (b->nrows >= b->max_rows || !build_fits(b, b->nrows + 1, b->ncols)) return -E2BIG;
    if (b->nrows < b->rowcap) return 0;
    size_t cap = b->rowcap ? b->rowcap * 2 : 256;
    if (cap > b->max_rows) cap = b->max_rows;
    if (b->ncols && !build_fits(b, cap, b->ncols)) cap = (STORE_MAX_VALUES - *b->values) / b->ncols;
    int64_t *ts = realloc(b->ts, cap * sizeof *ts);
    if (!ts) return -ENOMEM;
    b->ts = ts;
    for (size_t i = 0; i < b->ncols; i++) {
        double *v = realloc(b->cols[i].v, cap * sizeof *v);
        if (!v) return -ENOMEM;
        b->cols[i].v = v;
    }
    b->rowcap = cap;
    return 0;
}

/* The column of field f (position pos in its point), or NULL when the
 * query does not want it. */
static int build_col(struct build *b, size_t pos, const struct pt_field *f, struct col **out)
{
    *out = NULL;
    uint16_t h = b->hint[pos];
    if (h < b->ncols && b->cols[h].len == f->key.len &&
        memcmp(b->cols[h].name, f->key.p, f->key.len) == 0) {
        *out = &b->cols[h];
        return 0;
    }
    for (size_t i = 0; i < b->ncols; i++)
        if (b->cols[i].len == f->key.len && memcmp(b->cols[i].name, f->key.p, f->key.len) == 0) {
            b->hint[pos] = (uint16_t)i;
            *out = &b->cols[i];
            return 0;
        }
    if (b->fixed || f->type == PT_F_STR) return 0;
    int rc = build_add_col(b, f->key.p, f->key.len, out);
    if (rc == 0) b->hint[pos] = (uint16_t)(b->ncols - 1);
    return rc;
}

static bool field_num(const struct pt_field *f, double *v)
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

static void col_type(struct col *c, uint8_t t)
{
    if (c->type == 0)
        c->type = t;
    else if (c->type != t)
        c->type = PT_F_FLOAT; /* mixed numeric types render as float */
}

/* Reduces the open bucket into one row (when any column has a value). */
static int build_flush(struct build *b)
{
    if (!b->open) return 0;
    b->open = false;
    bool any = false;
    for (size_t i = 0; i < b->ncols && !any; i++) any = b->cols[i].acc.n > 0;
    if (!any) return 0;
    int rc = build_row_room(b);
    if (rc) return rc;
    for (size_t i = 0; i < b->ncols; i++) {
        struct col *c = &b->cols[i];
        c->v[b->nrows] = store_acc_result(&c->acc, b->q->agg);
        store_acc_reset(&c->acc);
    }
    b->pending = 0;
    b->ts[b->nrows++] = b->bucket;
    return 0;
}

static int build_point(struct build *b, int64_t ts, const struct pt_field *f, uint16_t nf)
{
    const struct store_query *q = b->q;
    int rc;
    if (q->step_ns == 0) {
        /* Raw: one row per point having any wanted field. */
        bool any = false;
        if (b->nrows == b->rowcap && (rc = build_row_room(b))) {
            /* A full result only fails when this point would add a row. */
            if (rc != -E2BIG) return rc;
            for (uint16_t i = 0; i < nf && !any; i++) {
                struct col *c;
                if ((rc = build_col(b, i, &f[i], &c))) return rc;
                any = c && f[i].type != PT_F_STR;
            }
            return any ? -E2BIG : 0;
        }
        for (size_t i = 0; i < b->ncols; i++) b->cols[i].v[b->nrows] = NAN;
        for (uint16_t i = 0; i < nf; i++) {
            struct col *c;
            double v;
            if ((rc = build_col(b, i, &f[i], &c))) return rc;
            if (!c) continue;
            if (!field_num(&f[i], &v)) {
                c->str_seen = true;
                continue;
            }
            /* A column added for this point was sized to rowcap. */
            c->v[b->nrows] = v;
            col_type(c, f[i].type);
            any = true;
        }
        if (any) {
            if (b->nrows >= b->max_rows) return -E2BIG;
            b->ts[b->nrows++] = ts;
        }
        return 0;
    }

    int64_t bucket = store_bucket(ts, q->step_ns);
    if (b->open && bucket != b->bucket && (rc = build_flush(b))) return rc;
    b->open = true;
    b->bucket = bucket;
    for (uint16_t i = 0; i < nf; i++) {
        struct col *c;
        double v;
        if ((rc = build_col(b, i, &f[i], &c))) return rc;
        if (!c) continue;
        if (!field_num(&f[i], &v)) {
            c->str_seen = true;
            continue;
        }
        col_type(c, f[i].type);
        if (q->agg == STORE_AGG_P95 && ++b->pending > STORE_MAX_VALUES) return -E2BIG;
        if ((rc = store_acc_add(&c->acc, q->agg, v))) return rc;
    }
    return 0;
}

static int cmp_col_order(const void *pa, const void *pb, void *arg)
{
    const struct col *cols = arg;
    const struct col *a = &cols[*(const size_t *)pa], *b = &cols[*(const size_t *)pb];
    if (a->sym != b->sym) {
        if (!a->sym || !b->sym) return a->sym ? -1 : 1;
        return a->sym < b->sym ? -1 : 1;
    }
    return strcmp(a->name, b->name);
}

static uint8_t col_final_type(const struct build *b, const struct col *c)
{
    if (c->type) return c->type;
    if (c->str_seen) return PT_F_STR;
    const struct pt_metric *m = pt_catalog_find(b->q->measurement, c->name);
    return m ? m->type : PT_F_FLOAT;
}

/* Moves the finished columns into out, row-major, in the result's column
 * order: as asked, or catalog order then by name. */
static int build_finish(struct build *b, struct store_series *out)
{
    size_t nc = b->ncols, nr = b->nrows;
    if (!build_fits(b, nr, nc)) return -E2BIG;
    size_t *order = malloc((nc ? nc : 1) * sizeof *order);
    out->fields = calloc(nc ? nc : 1, sizeof *out->fields);
    out->ftypes = malloc(nc ? nc : 1);
    out->vals = malloc((nr * nc > 0 ? nr * nc : 1) * sizeof *out->vals);
    out->ts = malloc((nr ? nr : 1) * sizeof *out->ts);
    if (!order || !out->fields || !out->ftypes || !out->vals || !out->ts) {
        free(order);
        return -ENOMEM;
    }
    for (size_t i = 0; i < nc; i++) order[i] = i;
    if (!b->fixed) qsort_r(order, nc, sizeof *order, cmp_col_order, b->cols);
    for (size_t c = 0; c < nc; c++) {
        struct col *col = &b->cols[order[c]];
        for (size_t r = 0; r < nr; r++) out->vals[r * nc + c] = col->v[r];
        out->ftypes[c] = col_final_type(b, col);
    }
    for (size_t c = 0; c < nc; c++) {
        out->fields[c] = b->cols[order[c]].name;
        b->cols[order[c]].name = NULL;
    }
    memcpy(out->ts, b->ts, nr * sizeof *out->ts);
    out->nfields = nc;
    out->nrows = nr;
    *b->values += nr * nc;
    free(order);
    return 0;
}

/* Adds one roll-up row (a bucket of a tier, start ts) to the open step
 * bucket: the tier's width divides step, so the row lies in one bucket. */
static int build_rollup(struct build *b, int64_t ts, const struct ragg *f, size_t nf)
{
    int64_t bucket = store_bucket(ts, b->q->step_ns);
    int rc;
    if (b->open && bucket != b->bucket && (rc = build_flush(b))) return rc;
    b->open = true;
    b->bucket = bucket;
    for (size_t i = 0; i < nf; i++) {
        struct pt_field key = {.key = {f[i].name, f[i].nlen}, .type = f[i].type};
        struct col *c;
        size_t pos = i < PT_WIRE_MAX_FIELDS ? i : PT_WIRE_MAX_FIELDS - 1; /* only a hint */
        if ((rc = build_col(b, pos, &key, &c))) return rc;
        if (!c) continue;
        col_type(c, f[i].type);
        store_acc_merge(&c->acc, f[i].min, f[i].max, f[i].sum, f[i].n, f[i].last);
    }
    return 0;
}

/* Which data a query reads: raw points, or a tier for [a, b) with raw
 * points for the edges [from, a) and [b, to). */
struct plan {
    int tier; /* -1: raw only */
    int64_t a, b;
};

static bool covers(int64_t keep, int64_t now, int64_t t)
{
    return keep <= 0 || t >= now - keep;
}

/* Picks the tier that reads the fewest rows and still gives exactly what
 * reducing the raw points would: the aggregation must be computable from a
 * summary (not p95), step a multiple of the tier's width, and the tier's
 * retention must reach back to where it is read. Edges of the range not
 * aligned to the width come from the raw points. Rows are estimated at one
 * raw point per second, the agent's default interval. */
static struct plan plan_query(const struct store *s, const struct store_query *q, int64_t now)
{
    struct plan best = {.tier = -1, .a = q->to_ns, .b = q->to_ns};
    if (q->step_ns == 0 || q->agg == STORE_AGG_P95) return best;
    double raw_cost = (double)(q->to_ns - q->from_ns) / (double)PT_NS_PER_SEC;
    /* Raw points that retention removed are better read from a tier. */
    double best_cost = covers(s->keep_raw, now, q->from_ns) ? raw_cost : INFINITY;
    for (int t = ROLLUP_NTIERS - 1; t >= 0; t--) {
        int64_t w = rollup_width[t];
        if (q->step_ns % w) continue;
        int64_t a = store_bucket(q->from_ns, w), b = store_bucket(q->to_ns, w);
        if (a < q->from_ns) a += w;
        if (a >= b || !covers(s->keep_tier[t], now, a)) continue;
        double cost = (double)(a - q->from_ns + q->to_ns - b) / (double)PT_NS_PER_SEC +
                      (double)(b - a) / (double)w;
        if (cost < best_cost) {
            best_cost = cost;
            best = (struct plan){t, a, b};
        }
    }
    return best;
}

static int feed_raw(struct rconn *c, struct build *b, const struct sref *ref, int64_t from,
                    int64_t to)
{
    if (from >= to) return 0;
    sqlite3_stmt *st = c->range;
    sqlite3_bind_int64(st, 1, ref->id);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to);
    int rc = 0, src = SQLITE_DONE;
    while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
        struct pt_field *f;
        uint16_t nf;
        if ((rc = decode_fields(c, ref->id, st, &f, &nf))) break;
        rc = build_point(b, sqlite3_column_int64(st, 0), f, nf);
    }
    if (rc == 0 && src != SQLITE_DONE) rc = sq_error(NULL, c->db, src, "range read");
    sqlite3_reset(st);
    return rc;
}

static int feed_tier(struct rconn *c, struct build *b, const struct sref *ref, int t, int64_t from,
                     int64_t to)
{
    sqlite3_stmt *st = c->tier[t];
    sqlite3_bind_int64(st, 1, ref->id);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to);
    int rc = 0, src = SQLITE_DONE;
    while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
        size_t nf;
        int64_t ts = sqlite3_column_int64(st, 0);
        rc = rollup_decode(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1), ts,
                           c->tmp, ROLLUP_MAX_FIELDS, &nf);
        if (rc) {
            PT_ERROR("store", "sqlite: roll-up %s row of series %lld at %lld is corrupt",
                     rollup_name[t], (long long)ref->id, (long long)ts);
            rc = PT_E_STORE;
            break;
        }
        rc = build_rollup(b, ts, c->tmp, nf);
    }
    if (rc == 0 && src != SQLITE_DONE) rc = sq_error(NULL, c->db, src, "roll-up read");
    sqlite3_reset(st);
    return rc;
}

/* Reads one series of a range query into out (nrows 0 when it has no
 * point with a wanted field in the range). */
static int query_series(struct rconn *c, const struct store_query *q, const struct plan *pl,
                        const struct sref *ref, size_t *values, struct store_series *out)
{
    struct build b = {.q = q, .values = values, .fixed = q->nfields > 0};
    b.max_rows = q->max_rows && q->max_rows < STORE_MAX_ROWS ? q->max_rows : STORE_MAX_ROWS;
    int rc = 0;
    for (size_t i = 0; i < q->nfields && rc == 0; i++) {
        struct col *col;
        rc = build_add_col(&b, q->fields[i], strlen(q->fields[i]), &col);
    }
    if (rc == 0 && pl->tier < 0) {
        rc = feed_raw(c, &b, ref, q->from_ns, q->to_ns);
    } else if (rc == 0) {
        /* In time order: the reducer's "last" relies on it. */
        rc = feed_raw(c, &b, ref, q->from_ns, pl->a);
        if (rc == 0) rc = feed_tier(c, &b, ref, pl->tier, pl->a, pl->b);
        if (rc == 0) rc = feed_raw(c, &b, ref, pl->b, q->to_ns);
    }
    if (rc == 0) rc = build_flush(&b);
    if (rc == 0 && b.nrows) {
        rc = build_finish(&b, out);
        if (rc == 0)
            rc = tags_parse(ref->tags, ref->tlen, &out->tag_keys, &out->tag_vals, &out->ntags);
        if (rc == 0 && !(out->measurement = strdup(ref->measurement))) rc = -ENOMEM;
        if (rc == 0 && !(out->vm = strdup(ref->vm))) rc = -ENOMEM;
    }
    build_free(&b);
    return rc;
}

static int query_check(const struct store_query *q)
{
    if (!q || !q->ns || !q->mcis || !q->measurement) return -EINVAL;
    if (q->from_ns >= q->to_ns || q->step_ns < 0) return -EINVAL;
    if (q->step_ns > 0 && (q->agg <= STORE_AGG_NONE || q->agg > STORE_AGG_P95)) return -EINVAL;
    if (!q->vm && !q->group_by_vm) {
        /* Across VMs: per-VM bucket results combined per step. */
        if (q->step_ns == 0) return -EINVAL;
        if (q->across != STORE_AGG_MIN && q->across != STORE_AGG_MAX &&
            q->across != STORE_AGG_AVG && q->across != STORE_AGG_SUM)
            return -EINVAL;
    }
    if (q->nfields && !q->fields) return -EINVAL;
    if (q->ntag_filters && (!q->tag_keys || !q->tag_vals)) return -EINVAL;
    for (size_t i = 0; i < q->ntag_filters; i++)
        if (!q->tag_keys[i] || !q->tag_vals[i]) return -EINVAL;
    if (q->nfields > STORE_MAX_COLS) return -E2BIG;
    for (size_t i = 0; i < q->nfields; i++) {
        if (!q->fields[i] || !q->fields[i][0]) return -EINVAL;
        for (size_t j = 0; j < i; j++)
            if (strcmp(q->fields[i], q->fields[j]) == 0) return -EINVAL;
    }
    return 0;
}

/* Whether the series has every tag filter of q. */
static int tags_match(const struct store_query *q, const struct sref *ref, bool *ok)
{
    *ok = true;
    if (q->ntag_filters == 0) return 0;
    char **k, **v;
    size_t n;
    int rc = tags_parse(ref->tags, ref->tlen, &k, &v, &n);
    if (rc) return rc;
    for (size_t i = 0; i < q->ntag_filters && *ok; i++) {
        bool found = false;
        for (size_t j = 0; j < n && !found; j++)
            found = strcmp(k[j], q->tag_keys[i]) == 0 && strcmp(v[j], q->tag_vals[i]) == 0;
        *ok = found;
    }
    for (size_t j = 0; j < n; j++) {
        free(k[j]);
        free(v[j]);
    }
    free(k);
    free(v);
    return 0;
}

/* Keeps the refs that match q's tag filters (in place). */
static int refs_filter(const struct store_query *q, struct sref *refs, size_t *n)
{
    size_t o = 0;
    for (size_t i = 0; i < *n; i++) {
        bool ok;
        int rc = tags_match(q, &refs[i], &ok);
        if (rc) return rc;
        if (ok) {
            struct sref t = refs[o];
            refs[o++] = refs[i];
            refs[i] = t;
        }
    }
    srefs_free_tail(refs, o, *n);
    *n = o;
    return 0;
}

static int cmp_sref_tags_vm(const void *pa, const void *pb)
{
    const struct sref *a = pa, *b = pb;
    int c = strcmp(a->tags, b->tags);
    return c ? c : strcmp(a->vm, b->vm);
}

static int cmp_i64(const void *pa, const void *pb)
{
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    return (a > b) - (a < b);
}

/* A column of an across-VM result: its name and where it is in each part. */
struct xcol {
    const char *name;
    uint32_t sym;
    uint8_t type; /* 0 until a part has it */
};

static int cmp_xcol(const void *pa, const void *pb)
{
    const struct xcol *a = pa, *b = pb;
    if (a->sym != b->sym) {
        if (!a->sym || !b->sym) return a->sym ? -1 : 1;
        return a->sym < b->sym ? -1 : 1;
    }
    return strcmp(a->name, b->name);
}

static int xcol_find(const struct xcol *x, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(x[i].name, name) == 0) return (int)i;
    return -1;
}

/* Combines the per-VM results parts[0..np) of one tag set by q->across
 * into out: one row per step where any VM has a value, one column per
 * field any VM has (or the fields asked for). */
static int combine_across(const struct store_query *q, struct store_series *parts, size_t np,
                          size_t *values, struct store_series *out)
{
    int rc = -ENOMEM;
    size_t nc = 0, nr = 0, total = 0;
    for (size_t p = 0; p < np; p++) {
        total += parts[p].nrows;
        nc += parts[p].nfields;
    }
    struct xcol *cols = calloc(nc ? nc : 1, sizeof *cols);
    int64_t *ts = malloc((total ? total : 1) * sizeof *ts);
    double *acc = NULL, *cnt = NULL;
    int *map = NULL;
    if (!cols || !ts) goto done;
    nc = 0;
    for (size_t i = 0; i < q->nfields; i++) cols[nc++] = (struct xcol){q->fields[i], 0, 0};
    for (size_t p = 0; p < np; p++)
        for (size_t c = 0; c < parts[p].nfields; c++) {
            const char *name = parts[p].fields[c];
            int x = xcol_find(cols, nc, name);
            if (x < 0) {
                if (q->nfields) continue; /* cannot happen: parts have only these */
                x = (int)nc++;
                cols[x] = (struct xcol){name, pt_sym_find(name, strlen(name)), 0};
            }
            uint8_t t = parts[p].ftypes[c];
            cols[x].type = cols[x].type == 0 || cols[x].type == t ? t : PT_F_FLOAT;
        }
    if (!q->nfields) qsort(cols, nc, sizeof *cols, cmp_xcol);
    /* The union of the parts' bucket times. */
    for (size_t p = 0; p < np; p++)
        for (size_t r = 0; r < parts[p].nrows; r++) ts[nr++] = parts[p].ts[r];
    qsort(ts, nr, sizeof *ts, cmp_i64);
    size_t u = 0;
    for (size_t i = 0; i < nr; i++)
        if (u == 0 || ts[u - 1] != ts[i]) ts[u++] = ts[i];
    nr = u;
    if (nc && nr > (STORE_MAX_VALUES - *values) / nc) {
        rc = -E2BIG;
        goto done;
    }
    if (nr > (q->max_rows && q->max_rows < STORE_MAX_ROWS ? q->max_rows : STORE_MAX_ROWS)) {
        rc = -E2BIG;
        goto done;
    }
    size_t cells = nr * nc > 0 ? nr * nc : 1;
    acc = malloc(cells * sizeof *acc);
    cnt = calloc(cells, sizeof *cnt);
    map = malloc((STORE_MAX_COLS > nc ? STORE_MAX_COLS : nc) * sizeof *map);
    if (!acc || !cnt || !map) goto done;
    for (size_t p = 0; p < np; p++) {
        const struct store_series *ps = &parts[p];
        for (size_t c = 0; c < ps->nfields; c++) map[c] = xcol_find(cols, nc, ps->fields[c]);
        size_t row = 0;
        for (size_t r = 0; r < ps->nrows; r++) {
            while (ts[row] != ps->ts[r]) row++; /* both sorted; ts holds every part's times */
            for (size_t c = 0; c < ps->nfields; c++) {
                double v = ps->vals[r * ps->nfields + c];
                if (isnan(v) || map[c] < 0) continue;
                size_t i = row * nc + (size_t)map[c];
                if (cnt[i] == 0)
                    acc[i] = v;
                else if (q->across == STORE_AGG_MIN)
                    acc[i] = v < acc[i] ? v : acc[i];
                else if (q->across == STORE_AGG_MAX)
                    acc[i] = v > acc[i] ? v : acc[i];
                else
                    acc[i] += v;
                cnt[i]++;
            }
        }
    }
    for (size_t i = 0; i < nr * nc; i++)
        if (cnt[i] == 0)
            acc[i] = NAN;
        else if (q->across == STORE_AGG_AVG)
            acc[i] /= cnt[i];
    out->fields = calloc(nc ? nc : 1, sizeof *out->fields);
    out->ftypes = malloc(nc ? nc : 1);
    if (!out->fields || !out->ftypes) goto done;
    out->nfields = nc;
    for (size_t c = 0; c < nc; c++) {
        if (!(out->fields[c] = strdup(cols[c].name))) goto done;
        uint8_t t = cols[c].type ? cols[c].type : PT_F_FLOAT;
        out->ftypes[c] = q->across == STORE_AGG_AVG ? PT_F_FLOAT : t;
    }
    if (!(out->measurement = strdup(parts[0].measurement))) goto done;
    if ((rc = tags_parse_copy(&parts[0], out))) goto done;
    out->ts = ts;
    out->vals = acc;
    out->nrows = nr;
    *values += nr * nc;
    ts = NULL;
    acc = NULL;
    rc = 0;
done:
    free(cols);
    free(ts);
    free(acc);
    free(cnt);
    free(map);
    return rc;
}

/* One result series per tag set, combining the VMs' series refs[0..n)
 * (sorted by tags) by q->across. */
static int query_across(struct rconn *c, const struct store_query *q, const struct plan *pl,
                        const struct sref *refs, size_t n, struct store_result *out)
{
    int rc = 0;
    size_t values = 0;
    if (!(out->series = calloc(n ? n : 1, sizeof *out->series))) return -ENOMEM;
    for (size_t i = 0; i < n && rc == 0;) {
        size_t j = i, np = 0, g = 0;
        while (i + g < n && strcmp(refs[i + g].tags, refs[i].tags) == 0) g++;
        struct store_series *parts = calloc(g, sizeof *parts);
        if (!parts) return -ENOMEM;
        struct store_result tmp = {.series = parts}; /* frees parts too */
        for (; j < i + g && rc == 0; j++) {
            rc = query_series(c, q, pl, &refs[j], &values, &parts[np]);
            if (rc || parts[np].nrows) np++;
        }
        if (rc == 0 && np) {
            rc = combine_across(q, parts, np, &values, &out->series[out->nseries]);
            out->nseries++; /* owned by out now, even on error */
        }
        /* The per-VM parts are freed; their cells no longer count. */
        for (size_t p = 0; p < np; p++) values -= parts[p].nrows * parts[p].nfields;
        tmp.nseries = np;
        store_result_free(&tmp);
        i = j;
    }
    return rc;
}

static int sq_query(struct store *s, const struct store_query *q, struct store_result *out)
{
    memset(out, 0, sizeof *out);
    int rc = query_check(q);
    if (rc) return rc;
    struct plan pl = plan_query(s, q, pt_now_ns());
    struct rconn *c;
    if ((rc = reader_get(s, &c))) return rc;
    struct sref *refs = NULL;
    size_t nrefs = 0, values = 0;
    /* One read transaction: every series comes from the same snapshot. */
    if ((rc = read_begin(c))) goto done;
    sqlite3_stmt *st;
    if (q->vm) {
        st = c->series_of;
        bind_str(st, 1, q->ns, strlen(q->ns));
        bind_str(st, 2, q->mcis, strlen(q->mcis));
        bind_str(st, 3, q->vm, strlen(q->vm));
        bind_str(st, 4, q->measurement, strlen(q->measurement));
    } else {
        st = c->series_all; /* ordered by vm, then tags */
        bind_str(st, 1, q->ns, strlen(q->ns));
        bind_str(st, 2, q->mcis, strlen(q->mcis));
        bind_str(st, 3, q->measurement, strlen(q->measurement));
    }
    if ((rc = srefs_load(c, st, &refs, &nrefs)) || (rc = refs_filter(q, refs, &nrefs)) ||
        nrefs == 0)
        goto done;
    if (!q->vm && !q->group_by_vm) {
        qsort(refs, nrefs, sizeof *refs, cmp_sref_tags_vm);
        rc = query_across(c, q, &pl, refs, nrefs, out);
        goto done;
    }
    if (!(out->series = calloc(nrefs, sizeof *out->series))) {
        rc = -ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < nrefs; i++) {
        struct store_series *ser = &out->series[out->nseries];
        rc = query_series(c, q, &pl, &refs[i], &values, ser);
        if (rc || ser->nrows) out->nseries++; /* owned by out now, even on error */
        if (rc) break;
    }
done:
    srefs_free(refs, nrefs);
    reader_put(s, c);
    if (rc || out->nseries == 0) store_result_free(out); /* empty: no array either */
    return rc;
}

/* ---- latest values ------------------------------------------------------------- */

static int latest_copy(const struct sref *ref, int64_t ts, const struct pt_field *f, uint16_t nf,
                       struct store_latest *out)
{
    out->ts_ns = ts;
    if (!(out->vm = strdup(ref->vm))) return -ENOMEM;
    if (!(out->measurement = strdup(ref->measurement))) return -ENOMEM;
    int rc = tags_parse(ref->tags, ref->tlen, &out->tag_keys, &out->tag_vals, &out->ntags);
    if (rc) return rc;
    if (!(out->fields = calloc(nf ? nf : 1, sizeof *out->fields))) return -ENOMEM;
    for (uint16_t i = 0; i < nf; i++) {
        struct pt_field *d = &out->fields[i];
        char *k = malloc(f[i].key.len + 1);
        if (!k) return -ENOMEM;
        memcpy(k, f[i].key.p, f[i].key.len);
        k[f[i].key.len] = '\0';
        *d = f[i];
        d->key.p = k;
        d->type = PT_F_FLOAT; /* until a string copy succeeds: freed as such */
        out->nfields++;
        if (f[i].type == PT_F_STR) {
            char *v = malloc(f[i].v.s.len + 1);
            if (!v) return -ENOMEM;
            if (f[i].v.s.len) memcpy(v, f[i].v.s.p, f[i].v.s.len);
            v[f[i].v.s.len] = '\0';
            d->v.s.p = v;
        }
        d->type = f[i].type;
    }
    return 0;
}

static int sq_latest(struct store *s, const char *ns, const char *mcis, const char *vm,
                     const char *measurement, struct store_result *out)
{
    memset(out, 0, sizeof *out);
    if (!ns || !mcis) return -EINVAL;
    struct rconn *c;
    int rc = reader_get(s, &c);
    if (rc) return rc;
    struct sref *refs = NULL;
    size_t nrefs = 0;
    if ((rc = read_begin(c))) goto done;
    sqlite3_stmt *st = vm ? c->series_vm : c->series_all;
    bind_str(st, 1, ns, strlen(ns));
    bind_str(st, 2, mcis, strlen(mcis));
    int mi = 3;
    if (vm) bind_str(st, mi++, vm, strlen(vm));
    if (measurement)
        bind_str(st, mi, measurement, strlen(measurement));
    else
        sqlite3_bind_null(st, mi);
    if ((rc = srefs_load(c, st, &refs, &nrefs)) || nrefs == 0) goto done;
    qsort(refs, nrefs, sizeof *refs, cmp_sref_vm);
    if (!(out->latest = calloc(nrefs, sizeof *out->latest))) {
        rc = -ENOMEM;
        goto done;
    }
    sqlite3_stmt *nw = c->newest;
    for (size_t i = 0; i < nrefs && rc == 0; i++) {
        sqlite3_bind_int64(nw, 1, refs[i].id);
        int src = sqlite3_step(nw);
        if (src == SQLITE_ROW) {
            struct pt_field *f;
            uint16_t nf;
            if ((rc = decode_fields(c, refs[i].id, nw, &f, &nf)) == 0) {
                rc = latest_copy(&refs[i], sqlite3_column_int64(nw, 0), f, nf,
                                 &out->latest[out->nlatest]);
                out->nlatest++; /* owned by out now, even when partly filled */
            }
        } else if (src != SQLITE_DONE) {
            rc = sq_error(NULL, c->db, src, "latest read");
        } /* DONE: a series whose points retention removed */
        sqlite3_reset(nw);
    }
done:
    srefs_free(refs, nrefs);
    reader_put(s, c);
    if (rc || out->nlatest == 0) store_result_free(out);
    return rc;
}

/* ---- open and close ------------------------------------------------------------ */

/* The database path of a sqlite: URL. */
static int url_path(const struct store_conf *conf, char *out, size_t len, char *err, size_t errlen)
{
    const char *url = conf->url ? conf->url : "sqlite:";
    const char *dir = conf->data_dir && conf->data_dir[0] ? conf->data_dir : ".";
    if (strncmp(url, "sqlite:", 7) != 0) {
        snprintf(err, errlen, "store URL '%s' is not a sqlite: URL", url);
        return PT_E_CONFIG;
    }
    const char *rest = url + 7;
    int n;
    if (strncmp(rest, "//", 2) == 0) {
        if (rest[2] != '/') {
            snprintf(err, errlen,
                     "store URL '%s': use sqlite:///absolute/path.db or sqlite:relative/path.db",
                     url);
            return PT_E_CONFIG;
        }
        n = snprintf(out, len, "%s", rest + 2);
    } else if (rest[0] == '/') {
        n = snprintf(out, len, "%s", rest);
    } else if (rest[0] == '\0') {
        n = snprintf(out, len, "%s/%s", dir, DEFAULT_FILE);
    } else {
        n = snprintf(out, len, "%s/%s", dir, rest);
    }
    if (n < 0 || (size_t)n >= len) {
        snprintf(err, errlen, "store URL '%s': path too long", url);
        return -ENAMETOOLONG;
    }
    if (out[n - 1] == '/') {
        snprintf(err, errlen, "store URL '%s' names a directory, not a database file", url);
        return PT_E_CONFIG;
    }
    return 0;
}

/* Explains, before SQLite tries, why path cannot be opened: its directory
 * must exist and be writable (the -wal and -shm files live next to it). */
static int path_check(const char *path, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    struct stat st;
    if (stat(dir, &st) != 0) {
        int e = errno;
        snprintf(err, errlen, "store %s: directory %s: %s", path, dir,
                 e == ENOENT ? "does not exist" : strerror(e));
        return -e;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "store %s: %s is not a directory", path, dir);
        return -ENOTDIR;
    }
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "store %s is a directory, not a database file", path);
            return -EISDIR;
        }
        if (access(path, R_OK | W_OK) != 0) {
            int e = errno;
            snprintf(err, errlen, "store %s: %s", path, strerror(e));
            return -e;
        }
    }
    if (access(dir, W_OK | X_OK) != 0) {
        int e = errno;
        snprintf(err, errlen, "store %s: directory %s is not writable (%s)", path, dir,
                 strerror(e));
        return -e;
    }
    return 0;
}

static int pragma_int(sqlite3 *db, const char *sql, int64_t *v)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *v = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Creates the schema in an empty file, or checks that the file holds a
 * Pantala store this build understands. */
static int schema_init(sqlite3 *db, const char *path, char *err, size_t errlen, bool *migrate)
{
    *migrate = false;
    int64_t app = 0, ver = 0, nobj = 0;
    int rc;
    if ((rc = pragma_int(db, "PRAGMA application_id", &app)) != SQLITE_OK ||
        (rc = pragma_int(db, "PRAGMA user_version", &ver)) != SQLITE_OK ||
        (rc = pragma_int(db, "SELECT count(*) FROM sqlite_master", &nobj)) != SQLITE_OK) {
        if ((rc & 0xff) == SQLITE_NOTADB)
            snprintf(err, errlen, "store %s: not a Pantala database (not an SQLite file)", path);
        else
            snprintf(err, errlen, "store %s: %s", path, sqlite3_errmsg(db));
        return sq_error(NULL, db, rc, "read header");
    }
    if (app == 0 && ver == 0 && nobj > 0) {
        snprintf(err, errlen, "store %s: not a Pantala database (an SQLite file of another kind)",
                 path);
        return PT_E_STORE;
    }
    if (app == 0 && ver == 0) {
        char sql[2048];
        snprintf(sql, sizeof sql,
                 "PRAGMA page_size=%d; PRAGMA journal_mode=WAL; BEGIN IMMEDIATE; %s %s"
                 " PRAGMA application_id=%d; PRAGMA user_version=%d; COMMIT;",
                 PAGE_SIZE, schema_sql, rollup_schema_sql, APP_ID, SCHEMA_VERSION);
        if ((rc = sq_exec(db, sql, "create schema"))) {
            snprintf(err, errlen, "store %s: cannot create the schema: %s", path,
                     sqlite3_errmsg(db));
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
        PT_INFO("store", "sqlite: created %s (schema version %d)", path, SCHEMA_VERSION);
        return 0;
    }
    if (app != APP_ID) {
        snprintf(err, errlen, "store %s: not a Pantala database (application_id 0x%llx)", path,
                 (unsigned long long)app);
        return PT_E_STORE;
    }
    if (ver > SCHEMA_VERSION) {
        snprintf(err, errlen,
                 "store %s: schema version %lld is newer than this pantalad understands (%d);"
                 " upgrade pantalad",
                 path, (long long)ver, SCHEMA_VERSION);
        return PT_E_STORE;
    }
    if (ver < 1) {
        snprintf(err, errlen, "store %s: unknown schema version %lld", path, (long long)ver);
        return PT_E_STORE;
    }
    /* Migrations from ver to SCHEMA_VERSION, one transaction each. */
    if (ver == 1) {
        /* Version 2 adds the roll-up tiers. The transaction stays open:
         * sq_open() fills them from the raw points, then commits. */
        char sql[1024];
        snprintf(sql, sizeof sql, "BEGIN IMMEDIATE; %s PRAGMA user_version=2;", rollup_schema_sql);
        if ((rc = sq_exec(db, sql, "migrate to schema 2"))) {
            snprintf(err, errlen, "store %s: cannot migrate to schema 2: %s", path,
                     sqlite3_errmsg(db));
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
        *migrate = true;
    }
    return 0;
}

/* Schema 1 → 2, inside the transaction schema_init() opened: fills the
 * roll-up tiers from every raw point. */
static int migrate_tiers(struct store *s, char *err, size_t errlen)
{
    int rc = rollup_open(s->db, &s->complain, &s->roll);
    sqlite3_stmt *ids = NULL;
    if (rc == 0) rc = sq_prepare(s->db, "SELECT id FROM series", &ids);
    int src = SQLITE_DONE;
    int64_t n = 0;
    while (rc == 0 && (src = sqlite3_step(ids)) == SQLITE_ROW) {
        rc = rollup_rebuild(s->roll, sqlite3_column_int64(ids, 0));
        n++;
    }
    if (rc == 0 && src != SQLITE_DONE) rc = sq_error(NULL, s->db, src, "list series");
    sqlite3_finalize(ids);
    rollup_close(s->roll);
    s->roll = NULL;
    if (rc == 0) rc = sq_exec(s->db, "COMMIT", "commit migration");
    if (rc) {
        snprintf(err, errlen, "store %s: migration to schema 2 (roll-ups) failed: %s", s->path,
                 pt_strerror(rc));
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    PT_INFO("store", "sqlite: %s migrated to schema 2: roll-ups of %lld series built", s->path,
            (long long)n);
    return 0;
}

static void sq_close(struct store *s)
{
    if (!s) return;
    while (s->idle) {
        struct rconn *c = s->idle;
        s->idle = c->next;
        reader_close(c);
    }
    sqlite3_stmt *sts[] = {s->begin, s->commit, s->rollback, s->upsert, s->insert,
                           s->ids,   s->del,    s->old_of,   s->update};
    rollup_close(s->roll);
    for (size_t i = 0; i < sizeof sts / sizeof sts[0]; i++) sqlite3_finalize(sts[i]);
    /* Closed last, the writer checkpoints and removes the WAL. */
    sqlite3_close_v2(s->db);
    cache_clear(s);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static int sq_open(const struct store_conf *conf, struct store **out, char *err, size_t errlen)
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
    pthread_mutex_init(&s->mu, NULL);
    int rc = url_path(conf, s->path, sizeof s->path, err, errlen);
    if (rc || (rc = path_check(s->path, err, errlen))) goto fail;
    snprintf(s->wal, sizeof s->wal, "%s-wal", s->path);

    rc = sqlite3_open_v2(s->path, &s->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "store %s: cannot open: %s", s->path,
                 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        rc = sq_error(NULL, s->db, rc, "open");
        goto fail;
    }
    sqlite3_busy_timeout(s->db, BUSY_MS);
    s->keep_raw = conf->retention_ns;
    s->keep_tier[0] = conf->retention_1m_ns;
    s->keep_tier[1] = conf->retention_1h_ns;
    bool migrate;
    if ((rc = schema_init(s->db, s->path, err, errlen, &migrate))) goto fail;
    if (migrate && (rc = migrate_tiers(s, err, errlen))) goto fail;

    char pragmas[256];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=%d;"
             " PRAGMA journal_size_limit=%lld; PRAGMA temp_store=MEMORY;",
             WRITER_CACHE, (long long)WAL_LIMIT);
    sqlite3_wal_autocheckpoint(s->db, CKPT_PAGES);
    if ((rc = sq_exec(s->db, pragmas, "writer pragmas"))) {
        snprintf(err, errlen, "store %s: %s", s->path, sqlite3_errmsg(s->db));
        goto fail;
    }
    char mode[16] = "";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            snprintf(mode, sizeof mode, "%s", (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
    }
    if (strcmp(mode, "wal") != 0) {
        snprintf(err, errlen, "store %s: cannot switch to WAL mode (journal mode is '%s')", s->path,
                 mode);
        rc = PT_E_STORE;
        goto fail;
    }

    if ((rc = sq_prepare(s->db, "BEGIN IMMEDIATE", &s->begin)) ||
        (rc = sq_prepare(s->db, "COMMIT", &s->commit)) ||
        (rc = sq_prepare(s->db, "ROLLBACK", &s->rollback)) ||
        (rc = sq_prepare(s->db,
                         "INSERT INTO series (ns, mcis, vm, measurement, tags, csp, host)"
                         " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                         " ON CONFLICT (ns, mcis, vm, measurement, tags)"
                         " DO UPDATE SET csp=excluded.csp, host=excluded.host RETURNING id",
                         &s->upsert)) ||
        (rc = sq_prepare(s->db,
                         "INSERT INTO points (series, ts, fields) VALUES (?1, ?2, ?3)"
                         " ON CONFLICT DO NOTHING",
                         &s->insert)) ||
        (rc = sq_prepare(s->db, "SELECT fields FROM points WHERE series=?1 AND ts=?2",
                         &s->old_of)) ||
        (rc = sq_prepare(s->db, "UPDATE points SET fields=?3 WHERE series=?1 AND ts=?2",
                         &s->update)) ||
        (rc = sq_prepare(s->db, "SELECT id FROM series", &s->ids)) ||
        (rc = sq_prepare(s->db, "DELETE FROM points WHERE series=?1 AND ts<?2", &s->del)) ||
        (rc = rollup_open(s->db, &s->complain, &s->roll))) {
        snprintf(err, errlen, "store %s: %s", s->path, sqlite3_errmsg(s->db));
        goto fail;
    }

    /* Open one reader now, so a problem shows at start-up, not at the first
     * API request. */
    struct rconn *c;
    if ((rc = reader_open(s, &c))) {
        snprintf(err, errlen, "store %s: cannot open a reader connection (%s)", s->path,
                 pt_strerror(rc));
        goto fail;
    }
    reader_put(s, c);
    *out = s;
    return 0;
fail:
    if (!err[0]) snprintf(err, errlen, "store %s: %s", s->path, pt_strerror(rc));
    sq_close(s);
    return rc ? rc : PT_E_STORE;
}

const struct store_ops store_sqlite_ops = {
    .name = "sqlite",
    .open = sq_open,
    .write_batch = sq_write_batch,
    .query = sq_query,
    .latest = sq_latest,
    .retention = sq_retention,
    .size = sq_size,
    .close = sq_close,
};
