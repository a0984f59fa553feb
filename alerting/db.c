/* alerts.db: rules, handlers, silences, alert states and the history of
 * events, in SQLite (WAL), so alerting survives a restart whatever the
 * metric backend is. One connection writes (under the engine's lock), a
 * second one serves history reads to API threads. */
#include "alert_int.h"
#include "pt/err.h"
#include "pt/log.h"
#include "pt/time.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS rules (name TEXT PRIMARY KEY, json TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS handlers (name TEXT PRIMARY KEY, json TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS silences (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " json TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS states (rule TEXT NOT NULL, key TEXT NOT NULL,"
    " phase INTEGER, level INTEGER, pending_level INTEGER, flapping INTEGER,"
    " since INTEGER, starts_at INTEGER, ends_at INTEGER, last_notify INTEGER,"
    " last_change INTEGER, seq INTEGER, value REAL, threshold REAL, labels TEXT,"
    " PRIMARY KEY (rule, key));"
    "CREATE TABLE IF NOT EXISTS history (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " at INTEGER NOT NULL, event_id TEXT NOT NULL, rule TEXT NOT NULL,"
    " fingerprint TEXT NOT NULL, status TEXT NOT NULL, level TEXT NOT NULL,"
    " value REAL, threshold REAL, starts_at INTEGER, ends_at INTEGER,"
    " labels TEXT NOT NULL, annotations TEXT NOT NULL, silenced INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS history_at ON history (at);"
    "CREATE INDEX IF NOT EXISTS history_rule ON history (rule, at);";

int alert_db_exec(struct alert_db *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db->w, sql, NULL, NULL, &msg) != SQLITE_OK) {
        PT_ERROR("alert", "alerts.db: %s", msg ? msg : "error");
        sqlite3_free(msg);
        return PT_E_STORE;
    }
    return 0;
}

int alert_db_open(struct alert_db *db, const char *path, char *err, size_t errlen)
{
    memset(db, 0, sizeof *db);
    pthread_mutex_init(&db->rlock, NULL);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &db->w, flags, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "alerts database %s: %s", path,
                 db->w ? sqlite3_errmsg(db->w) : "cannot open");
        return PT_E_STORE;
    }
    sqlite3_busy_timeout(db->w, 5000);
    char *msg = NULL;
    if (sqlite3_exec(db->w, schema, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "alerts database %s: %s", path, msg ? msg : "schema error");
        sqlite3_free(msg);
        return PT_E_STORE;
    }
    /* ":memory:" is private to its connection: reads then share the writer. */
    if (strcmp(path, ":memory:") &&
        sqlite3_open_v2(path, &db->r, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK) {
        snprintf(err, errlen, "alerts database %s: cannot open for reading", path);
        return PT_E_STORE;
    }
    if (db->r) sqlite3_busy_timeout(db->r, 5000);
    if (sqlite3_prepare_v2(db->w,
                           "INSERT INTO history (at, event_id, rule, fingerprint, status, level,"
                           " value, threshold, starts_at, ends_at, labels, annotations, silenced)"
                           " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                           -1, &db->ins_hist, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db->w,
                           "INSERT OR REPLACE INTO states VALUES"
                           " (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                           -1, &db->put_state, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db->w, "DELETE FROM states WHERE rule=? AND key=?", -1, &db->del_state,
                           NULL) != SQLITE_OK) {
        snprintf(err, errlen, "alerts database %s: %s", path, sqlite3_errmsg(db->w));
        return PT_E_STORE;
    }
    return 0;
}

static int begin(struct alert_db *db)
{
    if (db->in_tx) return 0;
    if (sqlite3_exec(db->w, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        PT_ERROR("alert", "alerts.db: BEGIN: %s", sqlite3_errmsg(db->w));
        return PT_E_STORE;
    }
    db->in_tx = true;
    return 0;
}

int alert_db_commit(struct alert_db *db)
{
    if (!db->in_tx) return 0;
    db->in_tx = false;
    if (sqlite3_exec(db->w, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        PT_ERROR("alert", "alerts.db: COMMIT: %s", sqlite3_errmsg(db->w));
        sqlite3_exec(db->w, "ROLLBACK", NULL, NULL, NULL);
        return PT_E_STORE;
    }
    return 0;
}

void alert_db_close(struct alert_db *db)
{
    if (db->w) alert_db_commit(db);
    sqlite3_finalize(db->ins_hist);
    sqlite3_finalize(db->put_state);
    sqlite3_finalize(db->del_state);
    if (db->r) sqlite3_close(db->r);
    if (db->w) sqlite3_close(db->w);
    pthread_mutex_destroy(&db->rlock);
    memset(db, 0, sizeof *db);
}

static int step_done(struct alert_db *db, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) {
        PT_ERROR("alert", "alerts.db: %s", sqlite3_errmsg(db->w));
        return PT_E_STORE;
    }
    return 0;
}

/* table is one of our constants, never user input. */
int alert_db_put(struct alert_db *db, const char *table, const char *name, const char *json)
{
    alert_db_commit(db); /* its own transaction, durable on return */
    char sql[128];
    snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO %s (name, json) VALUES (?, ?)", table);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->w, sql, -1, &st, NULL) != SQLITE_OK) return PT_E_STORE;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, json, -1, SQLITE_STATIC);
    int rc = step_done(db, st);
    sqlite3_finalize(st);
    return rc;
}

int alert_db_del(struct alert_db *db, const char *table, const char *name)
{
    alert_db_commit(db); /* its own transaction, durable on return */
    char sql[128];
    snprintf(sql, sizeof sql, "DELETE FROM %s WHERE name = ?", table);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->w, sql, -1, &st, NULL) != SQLITE_OK) return PT_E_STORE;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = step_done(db, st);
    sqlite3_finalize(st);
    return rc;
}

int alert_db_each(struct alert_db *db, const char *table, alert_db_row_fn fn, void *ctx)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT name, json FROM %s ORDER BY name", table);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->w, sql, -1, &st, NULL) != SQLITE_OK) return PT_E_STORE;
    while (sqlite3_step(st) == SQLITE_ROW)
        fn(ctx, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1));
    sqlite3_finalize(st);
    return 0;
}

int64_t alert_db_silence_add(struct alert_db *db, const char *json)
{
    alert_db_commit(db); /* its own transaction, durable on return */
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->w, "INSERT INTO silences (json) VALUES (?)", -1, &st, NULL) !=
        SQLITE_OK)
        return PT_E_STORE;
    sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
    int rc = step_done(db, st);
    sqlite3_finalize(st);
    return rc ? rc : (int64_t)sqlite3_last_insert_rowid(db->w);
}

int alert_db_silence_del(struct alert_db *db, int64_t id)
{
    alert_db_commit(db); /* its own transaction, durable on return */
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->w, "DELETE FROM silences WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
        return PT_E_STORE;
    sqlite3_bind_int64(st, 1, id);
    int rc = step_done(db, st);
    sqlite3_finalize(st);
    return rc;
}

int alert_db_silences(struct alert_db *db, alert_db_silence_fn fn, void *ctx)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->w, "SELECT id, json FROM silences ORDER BY id", -1, &st, NULL) !=
        SQLITE_OK)
        return PT_E_STORE;
    while (sqlite3_step(st) == SQLITE_ROW)
        fn(ctx, sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1));
    sqlite3_finalize(st);
    return 0;
}

int alert_db_state_put(struct alert_db *db, const char *rule, const char *key,
                       const struct alert_state *s, const char *labels_json)
{
    if (begin(db)) return PT_E_STORE;
    sqlite3_stmt *st = db->put_state;
    sqlite3_bind_text(st, 1, rule, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, s->phase);
    sqlite3_bind_int(st, 4, s->level);
    sqlite3_bind_int(st, 5, s->pending_level);
    sqlite3_bind_int(st, 6, s->flapping);
    sqlite3_bind_int64(st, 7, s->since);
    sqlite3_bind_int64(st, 8, s->starts_at);
    sqlite3_bind_int64(st, 9, s->ends_at);
    sqlite3_bind_int64(st, 10, s->last_notify);
    sqlite3_bind_int64(st, 11, s->last_change);
    sqlite3_bind_int64(st, 12, s->seq);
    if (isnan(s->value))
        sqlite3_bind_null(st, 13);
    else
        sqlite3_bind_double(st, 13, s->value);
    if (isnan(s->threshold))
        sqlite3_bind_null(st, 14);
    else
        sqlite3_bind_double(st, 14, s->threshold);
    sqlite3_bind_text(st, 15, labels_json, -1, SQLITE_STATIC);
    return step_done(db, st);
}

int alert_db_state_del(struct alert_db *db, const char *rule, const char *key)
{
    if (begin(db)) return PT_E_STORE;
    sqlite3_bind_text(db->del_state, 1, rule, -1, SQLITE_STATIC);
    sqlite3_bind_text(db->del_state, 2, key, -1, SQLITE_STATIC);
    return step_done(db, db->del_state);
}

static double col_num(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

int alert_db_states(struct alert_db *db, alert_db_state_fn fn, void *ctx)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->w, "SELECT * FROM states", -1, &st, NULL) != SQLITE_OK)
        return PT_E_STORE;
    while (sqlite3_step(st) == SQLITE_ROW) {
        struct alert_state s = {0};
        s.phase = (uint8_t)sqlite3_column_int(st, 2);
        s.level = (uint8_t)sqlite3_column_int(st, 3);
        s.pending_level = (uint8_t)sqlite3_column_int(st, 4);
        s.flapping = sqlite3_column_int(st, 5) != 0;
        s.since = sqlite3_column_int64(st, 6);
        s.starts_at = sqlite3_column_int64(st, 7);
        s.ends_at = sqlite3_column_int64(st, 8);
        s.last_notify = sqlite3_column_int64(st, 9);
        s.last_change = sqlite3_column_int64(st, 10);
        s.seq = (uint32_t)sqlite3_column_int64(st, 11);
        s.value = col_num(st, 12);
        s.threshold = col_num(st, 13);
        s.notified_firing = s.phase == PH_FIRING && !s.flapping;
        if (s.phase > PH_FIRING || s.level > ALERT_CRITICAL) continue; /* not ours */
        fn(ctx, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
           &s, (const char *)sqlite3_column_text(st, 14));
    }
    sqlite3_finalize(st);
    return 0;
}

static char *kv_json(const struct alert_kv *kv, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++) json_object_set_new(o, kv[i].key, json_string(kv[i].value));
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return s;
}

int alert_db_history_add(struct alert_db *db, const struct alert_event *ev, bool silenced,
                         bool held)
{
    if (begin(db)) return PT_E_STORE;
    (void)held;
    sqlite3_stmt *st = db->ins_hist;
    char *labels = kv_json(ev->labels, ev->nlabels);
    char *ann = kv_json(ev->annotations, ev->nannotations);
    sqlite3_bind_int64(st, 1, ev->at_ns);
    sqlite3_bind_text(st, 2, ev->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, ev->rule, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, ev->fingerprint, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, alert_status_name(ev->status), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, alert_level_name(ev->level), -1, SQLITE_STATIC);
    if (isnan(ev->value))
        sqlite3_bind_null(st, 7);
    else
        sqlite3_bind_double(st, 7, ev->value);
    if (isnan(ev->threshold))
        sqlite3_bind_null(st, 8);
    else
        sqlite3_bind_double(st, 8, ev->threshold);
    sqlite3_bind_int64(st, 9, ev->starts_at_ns);
    sqlite3_bind_int64(st, 10, ev->ends_at_ns);
    sqlite3_bind_text(st, 11, labels ? labels : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 12, ann ? ann : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 13, silenced);
    int rc = step_done(db, st);
    free(labels);
    free(ann);
    return rc;
}

static json_t *time_json(int64_t ns)
{
    char b[48];
    if (!ns || pt_time_format(ns, 3, b, sizeof b) < 0) return json_null();
    return json_string(b);
}

int alert_db_history(struct alert_db *db, const struct alert_history_query *q, json_t **out)
{
    sqlite3 *c = db->r ? db->r : db->w;
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT at, event_id, rule, fingerprint, status, level, value, threshold,"
             " starts_at, ends_at, labels, annotations, silenced FROM history"
             " WHERE (?1 IS NULL OR rule = ?1) AND (?2 IS NULL OR level = ?2)"
             " AND at >= ?3 AND at < ?4 ORDER BY at DESC, id DESC LIMIT ?5");
    sqlite3_stmt *st;
    if (db->r) pthread_mutex_lock(&db->rlock);
    if (sqlite3_prepare_v2(c, sql, -1, &st, NULL) != SQLITE_OK) {
        if (db->r) pthread_mutex_unlock(&db->rlock);
        return PT_E_STORE;
    }
    if (q->rule) sqlite3_bind_text(st, 1, q->rule, -1, SQLITE_STATIC);
    if (q->level >= 0)
        sqlite3_bind_text(st, 2, alert_level_name((enum alert_level)q->level), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, q->from_ns ? q->from_ns : INT64_MIN);
    sqlite3_bind_int64(st, 4, q->to_ns ? q->to_ns : INT64_MAX);
    sqlite3_bind_int64(st, 5, q->limit ? (int64_t)q->limit : 1000);
    json_t *arr = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *labels = json_loads((const char *)sqlite3_column_text(st, 10), 0, NULL);
        json_t *ann = json_loads((const char *)sqlite3_column_text(st, 11), 0, NULL);
        double v = col_num(st, 6), t = col_num(st, 7);
        json_t *j = json_pack(
            "{s:o,s:s,s:s,s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:b}", "at",
            time_json(sqlite3_column_int64(st, 0)), "id", (const char *)sqlite3_column_text(st, 1),
            "rule", (const char *)sqlite3_column_text(st, 2), "fingerprint",
            (const char *)sqlite3_column_text(st, 3), "status",
            (const char *)sqlite3_column_text(st, 4), "level",
            (const char *)sqlite3_column_text(st, 5), "value",
            isnan(v) ? json_null() : json_real(v), "threshold",
            isnan(t) ? json_null() : json_real(t), "starts_at",
            time_json(sqlite3_column_int64(st, 8)), "ends_at",
            time_json(sqlite3_column_int64(st, 9)), "labels", labels ? labels : json_object(),
            "annotations", ann ? ann : json_object(), "silenced", sqlite3_column_int(st, 12));
        if (j) json_array_append_new(arr, j);
    }
    sqlite3_finalize(st);
    if (db->r) pthread_mutex_unlock(&db->rlock);
    if (rc != SQLITE_DONE) {
        json_decref(arr);
        return PT_E_STORE;
    }
    *out = arr;
    return 0;
}
