/* Private to alerting/: the engine's tables, shared by engine.c (the stream
 * and the timers) and manage.c (rules, handlers, silences from the API). */
#ifndef ALERT_ENGINE_INT_H
#define ALERT_ENGINE_INT_H

#include "alert_int.h"

#include <stdatomic.h>

struct aseries;

/* Partial sums of one slice of a window. */
struct wbucket {
    int64_t idx; /* now / width of the slice */
    double sum;
    uint32_t n;
};

/* An input series: one VM's values of the rule's metric for one tag set. */
struct iseries {
    struct aseries *out; /* its alert series (each) or the MCIS group */
    int64_t last_ns;     /* receive time of the newest point */
    uint32_t interval_ms;
    bool has;           /* cur holds a value (counted in the group) */
    double cur;         /* the VM's value: the window average, or the last point */
    size_t midx;        /* index in out->members */
    struct wbucket *wb; /* ALERT_WIN_BUCKETS slices when the rule has a window */
    char key[];         /* the key in the rule's imap */
};

/* frames_lost: cumulative counters sampled over the window. */
#define LOST_SAMPLES 9
struct lostwin {
    int64_t t[LOST_SAMPLES];
    uint64_t acc[LOST_SAMPLES], miss[LOST_SAMPLES];
    unsigned n, head;
};

/* An alert series: what has a state, a fingerprint and events. */
struct aseries {
    struct arule *ar;
    char *key;   /* in ar->amap: "vm SEP k=v SEP ..." (the labels come from it) */
    bool has_vm; /* false for a reduction across VMs: the key is the tags only */
    char fp[17];
    struct alert_state st;
    double value, threshold; /* of the last evaluation */
    int64_t last_input_ns;   /* newest point of any member (or restore time) */
    /* members (reductions) */
    struct iseries **members;
    size_t nmem, capmem;
    size_t nval; /* members with a value */
    double sum;  /* of members' values, for avg/sum (kept incrementally) */
    bool in_active, in_dirty;
    struct aseries *anext, *aprev; /* engine's active list (pending/firing/flapping) */
    struct aseries *dnext;         /* engine's dirty list (deferred reductions) */
    struct lostwin *lost;          /* frames_lost only */
    uint64_t gen;                  /* built-ins: snapshot generation last seen */
};

/* A rule loaded in the engine. */
struct arule {
    struct alert_rule *r;
    struct alert_sm_conf sm;
    struct amap imap; /* iseries by key */
    struct amap amap; /* aseries by key */
    char *json;       /* as stored (canonical) */
};

struct handler {
    char *name;
    enum alert_handler_type type;
    char *settings; /* JSON object text */
};

struct silence {
    int64_t id;
    char **mkey, **mval;
    size_t nmatch;
    int64_t starts_ns, ends_ns;
    char *json; /* as stored */
};

/* The index entry of one (ns, mcis): the rules that read it. */
struct ixent {
    size_t n, cap;
    struct arule **rules;
};

struct alert_engine {
    pthread_mutex_t mu; /* everything below; held briefly per frame, tick or API call */
    struct alert_engine_opts o;
    char *external_url;
    struct alert_db db;
    struct arule **rules;
    size_t nrules, caprules;
    struct arule *agent_down, *frames_lost; /* also in rules[]; NULL when off */
    struct amap ix;       /* "ns\x1fmcis\x1fmeasurement" -> struct ixent (the rules) */
    struct amap ixm;      /* "ns\x1fmcis" -> struct ixent (n: rules of the MCIS) */
    struct amap handlers; /* name -> struct handler */
    struct silence **silences;
    size_t nsilences;
    struct aseries *active; /* list head */
    struct aseries *dirty;  /* list head */
    int64_t last_sweep_ns;  /* the previous tick */
    size_t sweep_next;      /* the rule the next tick's sweep starts at */
    uint64_t gen;
    atomic_size_t nindexed; /* metric rules: 0 lets feed return without locking */
    struct alert_stats st;
    double *scratch; /* p95 */
    size_t capscratch;
};

bool alert_engine_has_handler(struct alert_engine *e, const char *name);
int alert_rule_parse_named(struct alert_engine *e, const char *json, size_t len,
                           const char *path_name, struct alert_rule **out, char *err,
                           size_t errlen);

/* engine.c, called with mu held */
struct arule *eng_rule_new(struct alert_rule *r, const struct alert_engine_opts *o);
int eng_rule_add(struct alert_engine *e, struct arule *ar);
/* Removes the rule (resolving what fires, now) and frees it. */
void eng_rule_remove(struct alert_engine *e, struct arule *ar, int64_t now);
struct arule *eng_rule_find(struct alert_engine *e, const char *name);
void eng_restore_state(struct alert_engine *e, const char *rule, const char *key,
                       const struct alert_state *s, const char *labels_json, int64_t now);
void eng_active_json(struct alert_engine *e, json_t *arr);

#endif
