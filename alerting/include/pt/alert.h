/* libpantala-alert: MCIS-level alert rules evaluated on the stream of
 * accepted frames (DESIGN §8, docs/alerting.md).
 *
 * The collector creates one engine, feeds it every accepted frame from its
 * ingest thread (alert_engine_feed), ticks it from a timer on the same
 * thread (alert_engine_tick, alert_engine_agents), and lets its API threads
 * manage rules, handlers and silences and read alerts and history through
 * the functions below. The engine takes its own short lock; nothing here
 * does network I/O: events go to the notify side's outbox through
 * alert_notify_submit() (pt/alert_notify.h).
 *
 * Rules, handlers, silences, alert states and history live in one SQLite
 * file (alerts.db in the collector's data_dir), whatever the metric store. */
#ifndef PT_ALERT_H
#define PT_ALERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "pt/alert_notify.h"
#include "pt/wire.h"

struct alert_engine;
struct alert_rule; /* a parsed, validated rule (opaque) */

/* How events leave the engine. Tests inject a capture; the collector uses
 * alert_notify_submit on its notifier. */
typedef int (*alert_submit_fn)(void *ctx, const struct alert_event *ev,
                               const struct alert_handler *handlers, size_t nhandlers);

struct alert_engine_opts {
    const char *db_path;      /* alerts.db; ":memory:" for tests */
    alert_submit_fn submit;   /* NULL: alert_notify_submit(notifier, ...) */
    void *submit_ctx;         /* the notifier, or the test's capture */
    const char *external_url; /* base of generator URLs ("http://host:9090"), may be NULL */
    /* Flap suppression: more than flap_changes state changes of one series
     * within flap_window_ns hold it (reported once as flapping) until it
     * has been quiet for flap_window_ns. flap_changes 0 disables. */
    unsigned flap_changes;
    int64_t flap_window_ns;
    /* Built-in rules. */
    bool agent_down;                     /* an agent silent for agent_down_intervals intervals */
    unsigned agent_down_intervals;       /* 3 */
    bool frames_lost;                    /* lost frames above frames_lost_ratio over the window */
    double frames_lost_ratio;            /* 0.01 = 1 % */
    int64_t frames_lost_window_ns;       /* 60 s */
    const char *const *builtin_handlers; /* handlers the built-in rules notify */
    size_t nbuiltin_handlers;
};

/* Opens (creating) the database and loads rules, handlers, silences and
 * states. On failure returns <0 with a message in err. */
int alert_engine_open(struct alert_engine **out, const struct alert_engine_opts *o, char *err,
                      size_t errlen);
void alert_engine_close(struct alert_engine *e);

/* ---- ingest thread --------------------------------------------------------- */

/* One accepted frame, received at now_ns. Only reads f (its strings point
 * into the datagram); costs a hash lookup when no rule covers f's MCIS. */
void alert_engine_feed(struct alert_engine *e, const struct pt_frame *f, int64_t now_ns);

/* Timers: `for`, repeat, flap release, windows ageing, absence and stale
 * series, reductions deferred from the feed. Call every 100 ms or so. */
void alert_engine_tick(struct alert_engine *e, int64_t now_ns);

/* What the built-in rules look at, one row per registered agent: the
 * collector passes a registry snapshot every second or so. */
struct alert_agent_sample {
    const char *ns, *mcis, *vm;
    int64_t last_seen_ns; /* 0: never seen (never reported down) */
    uint32_t interval_ms;
    uint64_t accepted, missing; /* cumulative frame counters */
};
void alert_engine_agents(struct alert_engine *e, const struct alert_agent_sample *a, size_t n,
                         int64_t now_ns);

/* ---- rules ----------------------------------------------------------------- */

/* Parses and validates a rule from JSON. Errors name the key:
 * "key \"warn.op\": expected one of > >= < <= == !=". Handler names are
 * checked against the engine's handlers when e is not NULL. 0 or -EINVAL. */
int alert_rule_parse(struct alert_engine *e, const char *json, size_t len, struct alert_rule **out,
                     char *err, size_t errlen);
void alert_rule_free(struct alert_rule *r);
/* The rule as JSON (every key, defaults filled in). */
json_t *alert_rule_json(const struct alert_rule *r);
const char *alert_rule_name(const struct alert_rule *r);

/* API threads. Each returns 0 or: -EINVAL (err says which key), -EEXIST,
 * -ENOENT, -EPERM (built-in), PT_E_STORE (database). On success *out (when
 * out is not NULL) is the stored object. */
int alert_rules_put(struct alert_engine *e, const char *json, size_t len, const char *name,
                    bool create, json_t **out, char *err, size_t errlen);
int alert_rules_get(struct alert_engine *e, const char *name, json_t **out);
json_t *alert_rules_list(struct alert_engine *e);
int alert_rules_delete(struct alert_engine *e, const char *name);

int alert_handlers_put(struct alert_engine *e, const char *json, size_t len, const char *name,
                       bool create, json_t **out, char *err, size_t errlen);
int alert_handlers_get(struct alert_engine *e, const char *name, json_t **out);
json_t *alert_handlers_list(struct alert_engine *e);
/* -EBUSY (err names the rules) when a rule still uses the handler. */
int alert_handlers_delete(struct alert_engine *e, const char *name, char *err, size_t errlen);

/* Silences: {"matchers": {"label": "value", ...}, "starts_at", "ends_at"
 * (RFC 3339, or "now+2h"), "comment", "created_by"}; the id is assigned. */
int alert_silences_add(struct alert_engine *e, const char *json, size_t len, int64_t now_ns,
                       json_t **out, char *err, size_t errlen);
json_t *alert_silences_list(struct alert_engine *e, int64_t now_ns);
int alert_silences_get(struct alert_engine *e, int64_t id, int64_t now_ns, json_t **out);
int alert_silences_delete(struct alert_engine *e, int64_t id);

/* Active alert series (pending, firing, flapping) as a JSON array. */
json_t *alert_active(struct alert_engine *e);

/* History of events, newest first. rule/level NULL: any; from/to 0: open. */
struct alert_history_query {
    const char *rule;
    int level; /* -1 any, else enum alert_level */
    int64_t from_ns, to_ns;
    size_t limit; /* 0: 1000 */
};
int alert_history(struct alert_engine *e, const struct alert_history_query *q, json_t **out);

/* ---- dry run ---------------------------------------------------------------- */

/* One stored series of the rule's metric for one VM: the values the rule
 * would have seen (already reduced over the rule's window per bucket). */
struct alert_dry_series {
    const char *vm;
    const char *const *tag_keys, *const *tag_vals;
    size_t ntags;
    const int64_t *ts;
    const double *vals; /* NaN: no value in that bucket */
    size_t n;
};
/* Replays the series through the rule's reduction and state machine, in
 * time order, and returns {"events": [{"at", "status", "level", "value",
 * "labels"}...], "evaluations": n}: when the rule would have fired and
 * resolved. Nothing is notified or recorded. */
json_t *alert_dryrun(const struct alert_rule *r, const struct alert_dry_series *s, size_t ns);
/* The rule's scope and metric, for querying the store. */
struct alert_rule_scope {
    const char *ns, *mcis, *vm; /* vm NULL: every VM */
    const char *measurement, *field;
    const char *const *tag_keys, *const *tag_vals;
    size_t ntags;
    int64_t window_ns;
};
void alert_rule_scope(const struct alert_rule *r, struct alert_rule_scope *s);

/* ---- counters --------------------------------------------------------------- */

struct alert_stats {
    uint64_t rules, series, active;
    uint64_t frames, points;   /* frames fed, points that reached a rule */
    uint64_t events, notified; /* events generated; handed to the outbox */
    uint64_t silenced, held;   /* not notified: silenced; held while flapping */
    uint64_t submit_errors;    /* outbox refused (logged; kept in history) */
    uint64_t db_errors;        /* history/state writes that failed (logged) */
    uint64_t series_dropped;   /* new series refused at the per-rule ceiling */
};
void alert_engine_stats(struct alert_engine *e, struct alert_stats *s);

/* Appends the engine's counters in the Prometheus text format to buf
 * (pantala_alert_*). Returns the bytes written or <0 when cap is short. */
int alert_stats_render(const struct alert_stats *s, char *buf, size_t cap);

#endif
