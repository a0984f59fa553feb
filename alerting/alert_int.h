/* Private to alerting/: the rule model, the per-series state machine, the
 * small string map, and the persistence layer the engine uses. */
#ifndef ALERT_INT_H
#define ALERT_INT_H

#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pt/alert.h"

#define ALERT_MAX_MATCH    8      /* tag matchers per rule */
#define ALERT_MAX_HANDLERS 16     /* handlers per rule */
#define ALERT_MAX_KV       32     /* labels, annotations per rule */
#define ALERT_MAX_NAME     128    /* rule, handler names */
#define ALERT_MAX_TEXT     1024   /* a label value, an annotation template */
#define ALERT_WIN_BUCKETS  8      /* a window is kept as this many partial sums */
#define ALERT_FLAP_RING    16     /* flap_changes ceiling (change times kept per series) */
#define ALERT_MAX_RULES    100000 /* rules per engine */
#define ALERT_MAX_SERIES   200000 /* series per rule: a ceiling against tag explosions */

/* ---- rules (rule.c) ------------------------------------------------------- */

enum alert_op { OP_GT, OP_GE, OP_LT, OP_LE, OP_EQ, OP_NE };
enum alert_reduce { RED_EACH, RED_AVG, RED_MIN, RED_MAX, RED_SUM, RED_COUNT, RED_P95 };
enum alert_kind { KIND_METRIC, KIND_AGENT_DOWN, KIND_FRAMES_LOST };

struct alert_cond {
    bool set;
    enum alert_op op;
    double threshold;
};

struct alert_rule {
    char *name;
    enum alert_kind kind;
    bool enabled;
    char *ns, *mcis, *vm; /* vm NULL: every VM of the MCIS */
    char *mkey[ALERT_MAX_MATCH], *mval[ALERT_MAX_MATCH];
    size_t nmatch;
    char *measurement, *field;
    size_t field_len, vm_len; /* compared per point without strlen */
    enum alert_reduce reduce;
    int64_t window_ns, for_ns, repeat_ns, absent_ns;
    struct alert_cond warn, crit;
    bool has_recover;
    double recover;
    char *handlers[ALERT_MAX_HANDLERS];
    size_t nhandlers;
    char *lkey[ALERT_MAX_KV], *lval[ALERT_MAX_KV]; /* labels */
    char *akey[ALERT_MAX_KV], *aval[ALERT_MAX_KV]; /* annotation templates */
    size_t nlabels, nannotations;
    char *description;
};

bool alert_op_holds(enum alert_op op, double v, double thr);
const char *alert_op_name(enum alert_op op);
const char *alert_reduce_name(enum alert_reduce r);
const char *alert_level_name(enum alert_level l);
const char *alert_status_name(enum alert_status s);
/* A built-in rule (kind agent_down / frames_lost) with the engine's settings. */
struct alert_rule *alert_rule_builtin(enum alert_kind kind, const struct alert_engine_opts *o);
/* The level a value asks for, given the level the series is at now (for
 * the recover hysteresis). NaN asks for OK. Sets *thr to the threshold of
 * the returned level's condition (NaN for OK). */
enum alert_level alert_rule_level(const struct alert_rule *r, double v, enum alert_level cur,
                                  double *thr);
/* Expands {{name}} in tpl from the pairs (unknown names expand to ""). */
void alert_template(const char *tpl, const struct alert_kv *vars, size_t nvars, char *out,
                    size_t cap);

/* ---- per-series state (state.c) ------------------------------------------ */

enum alert_phase { PH_OK, PH_PENDING, PH_FIRING };

struct alert_state {
    uint8_t phase;         /* enum alert_phase: the underlying state */
    uint8_t level;         /* firing: enum alert_level */
    uint8_t pending_level; /* pending: the level it would fire at */
    bool flapping;         /* held: events suppressed */
    bool notified_firing;  /* an event said firing and no resolved followed */
    uint8_t nchanges;      /* change times in the ring */
    uint8_t chead;
    int64_t since; /* pending since / firing since (level change) */
    int64_t starts_at, ends_at, last_notify, last_change;
    uint32_t seq; /* events generated for this series */
    double value, threshold;
    int64_t changes[ALERT_FLAP_RING];
};

struct alert_sm_conf {
    int64_t for_ns, repeat_ns;
    unsigned flap_changes;
    int64_t flap_window_ns;
};

/* What alert_state_step() asks the caller to emit. */
enum alert_emit { EMIT_NONE, EMIT_FIRING, EMIT_RESOLVED, EMIT_FLAPPING };

/* Feeds the level the current value asks for at now. Returns what to emit
 * (the event's level is s->level for firing, the level it was at for
 * resolved: *level). */
enum alert_emit alert_state_step(struct alert_state *s, const struct alert_sm_conf *c,
                                 enum alert_level want, int64_t now, enum alert_level *level);
/* Time only (no new value): `for` elapsed, repeat due, flap released. */
enum alert_emit alert_state_timer(struct alert_state *s, const struct alert_sm_conf *c, int64_t now,
                                  enum alert_level *level);
/* Whether the series needs the timer (not plain ok). */
bool alert_state_active(const struct alert_state *s);
const char *alert_state_name(const struct alert_state *s);

/* ---- string map (map.c) ---------------------------------------------------- */

struct amap_ent {
    uint64_t h;
    char *key; /* owned, NUL-terminated, klen bytes */
    size_t klen;
    void *val;
};
struct amap {
    struct amap_ent *e;
    size_t cap, n;
};
uint64_t amap_hash(const void *p, size_t len, uint64_t seed);
void *amap_get(const struct amap *m, const void *key, size_t klen, uint64_t h);
/* Inserts (key copied); -ENOMEM. The key must not be present. */
int amap_put(struct amap *m, const void *key, size_t klen, uint64_t h, void *val);
void *amap_del(struct amap *m, const void *key, size_t klen, uint64_t h);
void amap_free(struct amap *m); /* frees keys, not values */

/* ---- persistence (db.c) ------------------------------------------------------ */

struct alert_db {
    sqlite3 *w;            /* rules, handlers, silences, states, history writes */
    sqlite3 *r;            /* history reads from API threads (WAL: no blocking) */
    pthread_mutex_t rlock; /* r is used by one API thread at a time */
    sqlite3_stmt *ins_hist, *put_state, *del_state;
    bool in_tx; /* history and state writes are grouped until alert_db_commit() */
};
/* Event-side writes (history, states) open a transaction that the engine
 * commits once per tick: hundreds of events cost one commit, not one each.
 * Management writes commit at once (with whatever is pending). */
int alert_db_commit(struct alert_db *db);
int alert_db_open(struct alert_db *db, const char *path, char *err, size_t errlen);
void alert_db_close(struct alert_db *db);
int alert_db_exec(struct alert_db *db, const char *sql);
/* kv tables: rules (name, json), handlers (name, json). */
int alert_db_put(struct alert_db *db, const char *table, const char *name, const char *json);
int alert_db_del(struct alert_db *db, const char *table, const char *name);
typedef void (*alert_db_row_fn)(void *ctx, const char *name, const char *json);
int alert_db_each(struct alert_db *db, const char *table, alert_db_row_fn fn, void *ctx);
int64_t alert_db_silence_add(struct alert_db *db, const char *json);
int alert_db_silence_del(struct alert_db *db, int64_t id);
typedef void (*alert_db_silence_fn)(void *ctx, int64_t id, const char *json);
int alert_db_silences(struct alert_db *db, alert_db_silence_fn fn, void *ctx);
/* State of one alert series: upserted while not ok, deleted when ok. */
int alert_db_state_put(struct alert_db *db, const char *rule, const char *key,
                       const struct alert_state *s, const char *labels_json);
int alert_db_state_del(struct alert_db *db, const char *rule, const char *key);
typedef void (*alert_db_state_fn)(void *ctx, const char *rule, const char *key,
                                  const struct alert_state *s, const char *labels_json);
int alert_db_states(struct alert_db *db, alert_db_state_fn fn, void *ctx);
int alert_db_history_add(struct alert_db *db, const struct alert_event *ev, bool silenced,
                         bool held);
int alert_db_history(struct alert_db *db, const struct alert_history_query *q, json_t **out);

/* ---- events (event.c) ------------------------------------------------------------- */

/* Hex SHA-256 of rule, fingerprint, level, status, starts_at, seq: the
 * event's idempotency key. out has 65 bytes. */
void alert_event_id(const char *rule, const char *fingerprint, enum alert_level level,
                    enum alert_status status, int64_t starts_at, uint32_t seq, char out[65]);
/* 16 hex digits of SHA-256 over the rule name and the sorted labels. */
void alert_fingerprint(const char *rule, const struct alert_kv *labels, size_t n, char out[17]);

#endif
