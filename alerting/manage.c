/* The engine's management side: opening (loading what alerts.db holds),
 * rules, handlers and silences for the API threads, active alerts and
 * history. Validation happens before the lock; the lock covers only the
 * database write and the swap in the engine's tables. */
#include "engine_int.h"
#include "pt/conf.h"
#include "pt/err.h"
#include "pt/log.h"
#include "pt/time.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SILENCES 10000

static int default_submit(void *ctx, const struct alert_event *ev,
                          const struct alert_handler *handlers, size_t nhandlers)
{
    if (!ctx || !nhandlers) return 0; /* no notifier: history only */
    return alert_notify_submit(ctx, ev, handlers, nhandlers);
}

bool alert_engine_has_handler(struct alert_engine *e, const char *name)
{
    /* Called from rule parsing, outside the engine lock. */
    pthread_mutex_lock(&e->mu);
    bool ok = amap_get(&e->handlers, name, strlen(name), amap_hash(name, strlen(name), 0)) != NULL;
    pthread_mutex_unlock(&e->mu);
    return ok;
}

/* ---- handlers ------------------------------------------------------------------ */

static void handler_free(struct handler *h)
{
    if (!h) return;
    free(h->name);
    free(h->settings);
    free(h);
}

static json_t *handler_json(const struct handler *h)
{
    json_t *s = json_loads(h->settings, 0, NULL);
    return json_pack("{s:s,s:s,s:o}", "name", h->name, "type", alert_handler_type_name(h->type),
                     "settings", s ? s : json_object());
}

/* {"name", "type", "settings": {...}} -> a handler, validated by the notify
 * side (alert_handler_validate names the bad settings key). */
static int handler_parse(const char *json, size_t len, const char *path_name, struct handler **out,
                         char *err, size_t errlen)
{
    struct pt_conf c;
    const char *name, *type;
    int rc = pt_conf_parse(&c, "handler", json, len);
    json_t *settings = NULL;
    if (!rc && !(rc = pt_conf_str(&c, "name", path_name, &name)) &&
        !(rc = pt_conf_str(&c, "type", NULL, &type))) {
        settings = pt_conf_json(&c, "settings");
        rc = pt_conf_finish(&c);
        if (!rc && !name) rc = pt_conf_fail(&c, "name", "is required");
        if (!rc && path_name && strcmp(name, path_name))
            rc = pt_conf_fail(&c, "name", "\"%s\" differs from the name in the URL", name);
        size_t nl = name ? strlen(name) : 0;
        for (size_t i = 0; !rc && i < nl; i++) {
            char ch = name[i];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-' || ch == ':' ||
                  ch == '@') ||
                nl > ALERT_MAX_NAME)
                rc = pt_conf_fail(&c, "name",
                                  "must be 1 to 128 characters of A-Z a-z 0-9 . _ - : @");
        }
        if (!rc && !type)
            rc = pt_conf_fail(&c, "type",
                              "is required: webhook, alertmanager_webhook, alertmanager, slack "
                              "or email");
        if (!rc && alert_handler_type_parse(type) < 0)
            rc = pt_conf_fail(&c, "type",
                              "unknown type \"%s\" (expected webhook, alertmanager_webhook, "
                              "alertmanager, slack or email)",
                              type);
        if (!rc && settings && !json_is_object(settings))
            rc = pt_conf_fail(&c, "settings", "expected an object");
    }
    if (rc) {
        snprintf(err, errlen, "%s", pt_conf_error(&c));
        pt_conf_close(&c);
        return -EINVAL;
    }
    char *st = settings ? json_dumps(settings, JSON_COMPACT | JSON_SORT_KEYS) : strdup("{}");
    int t = alert_handler_type_parse(type);
    char verr[512] = "";
    if (st && alert_handler_validate((enum alert_handler_type)t, st, verr, sizeof verr)) {
        snprintf(err, errlen, "handler: key \"settings\": %s", verr[0] ? verr : "invalid");
        free(st);
        pt_conf_close(&c);
        return -EINVAL;
    }
    struct handler *h = calloc(1, sizeof *h);
    if (h) {
        h->name = strdup(name);
        h->type = (enum alert_handler_type)t;
        h->settings = st;
        st = NULL;
    }
    free(st);
    pt_conf_close(&c);
    if (!h || !h->name || !h->settings) {
        handler_free(h);
        return -ENOMEM;
    }
    *out = h;
    return 0;
}

static char *handler_dump(const struct handler *h)
{
    json_t *j = handler_json(h);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
}

int alert_handlers_put(struct alert_engine *e, const char *json, size_t len, const char *name,
                       bool create, json_t **out, char *err, size_t errlen)
{
    struct handler *h;
    int rc = handler_parse(json, len, name, &h, err, errlen);
    if (rc) return rc;
    char *dump = handler_dump(h);
    if (!dump) {
        handler_free(h);
        return -ENOMEM;
    }
    size_t nl = strlen(h->name);
    uint64_t hh = amap_hash(h->name, nl, 0);
    pthread_mutex_lock(&e->mu);
    struct handler *old = amap_get(&e->handlers, h->name, nl, hh);
    if (create && old) {
        rc = -EEXIST;
        snprintf(err, errlen, "a handler named \"%s\" exists (PUT /api/v1/handlers/%s replaces it)",
                 h->name, h->name);
    } else if (!create && !old) {
        rc = -ENOENT;
    } else if ((rc = alert_db_put(&e->db, "handlers", h->name, dump)) == 0) {
        if (old) {
            amap_del(&e->handlers, h->name, nl, hh);
            handler_free(old);
        }
        rc = amap_put(&e->handlers, h->name, nl, hh, h);
        if (!rc) h = NULL;
    }
    pthread_mutex_unlock(&e->mu);
    if (!rc && out) *out = json_loads(dump, 0, NULL);
    free(dump);
    handler_free(h);
    return rc;
}

int alert_handlers_get(struct alert_engine *e, const char *name, json_t **out)
{
    pthread_mutex_lock(&e->mu);
    struct handler *h =
        amap_get(&e->handlers, name, strlen(name), amap_hash(name, strlen(name), 0));
    *out = h ? handler_json(h) : NULL;
    pthread_mutex_unlock(&e->mu);
    return h ? 0 : -ENOENT;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "name")),
                  json_string_value(json_object_get(*(json_t *const *)b, "name")));
}

static json_t *sorted(json_t **v, size_t n)
{
    qsort(v, n, sizeof *v, name_cmp);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(arr, v[i]);
    free(v);
    return arr;
}

json_t *alert_handlers_list(struct alert_engine *e)
{
    pthread_mutex_lock(&e->mu);
    json_t **v = calloc(e->handlers.n + 1, sizeof *v);
    size_t n = 0;
    for (size_t i = 0; v && i < e->handlers.cap; i++)
        if (e->handlers.e[i].key) {
            json_t *j = handler_json(e->handlers.e[i].val);
            if (j) v[n++] = j;
        }
    pthread_mutex_unlock(&e->mu);
    return v ? sorted(v, n) : NULL;
}

int alert_handlers_delete(struct alert_engine *e, const char *name, char *err, size_t errlen)
{
    size_t nl = strlen(name);
    uint64_t hh = amap_hash(name, nl, 0);
    int rc = 0;
    pthread_mutex_lock(&e->mu);
    struct handler *h = amap_get(&e->handlers, name, nl, hh);
    if (!h) rc = -ENOENT;
    for (size_t i = 0; !rc && i < e->nrules; i++) {
        const struct alert_rule *r = e->rules[i]->r;
        for (size_t k = 0; k < r->nhandlers; k++)
            if (!strcmp(r->handlers[k], name)) {
                snprintf(err, errlen, "rule \"%s\" uses handler \"%s\"; change the rule first",
                         r->name, name);
                rc = -EBUSY;
                break;
            }
    }
    if (!rc && !(rc = alert_db_del(&e->db, "handlers", name))) {
        amap_del(&e->handlers, name, nl, hh);
        handler_free(h);
    }
    pthread_mutex_unlock(&e->mu);
    return rc;
}

/* ---- rules ------------------------------------------------------------------------- */

int alert_rules_put(struct alert_engine *e, const char *json, size_t len, const char *name,
                    bool create, json_t **out, char *err, size_t errlen)
{
    if (name && (!strcmp(name, "agent_down") || !strcmp(name, "frames_lost"))) {
        snprintf(err, errlen,
                 "\"%s\" is a built-in rule: configure it in pantalad.json "
                 "(alerting.%s)",
                 name, name);
        return -EPERM;
    }
    struct alert_rule *r;
    int rc = alert_rule_parse_named(e, json, len, name, &r, err, errlen);
    if (rc) return rc;
    json_t *j = alert_rule_json(r);
    char *dump = j ? json_dumps(j, JSON_COMPACT) : NULL;
    struct arule *ar = dump ? eng_rule_new(r, &e->o) : NULL;
    if (!ar) {
        json_decref(j);
        free(dump);
        alert_rule_free(r);
        return -ENOMEM;
    }
    ar->json = dump;
    int64_t now = pt_now_ns();
    pthread_mutex_lock(&e->mu);
    struct arule *old = eng_rule_find(e, r->name);
    /* Handlers may have gone between parsing and here. */
    for (size_t i = 0; i < r->nhandlers && !rc; i++)
        if (!amap_get(&e->handlers, r->handlers[i], strlen(r->handlers[i]),
                      amap_hash(r->handlers[i], strlen(r->handlers[i]), 0))) {
            snprintf(err, errlen, "rule: key \"handlers\": no handler \"%s\"", r->handlers[i]);
            rc = -EINVAL;
        }
    if (rc) {
    } else if (create && old) {
        rc = -EEXIST;
        snprintf(err, errlen, "a rule named \"%s\" exists (PUT /api/v1/rules/%s replaces it)",
                 r->name, r->name);
    } else if (!old && e->nrules >= ALERT_MAX_RULES) {
        rc = -ENOSPC;
        snprintf(err, errlen, "too many rules (%d); delete some first", ALERT_MAX_RULES);
    } else if (!create && !old) {
        rc = -ENOENT;
    } else if (!(rc = alert_db_put(&e->db, "rules", r->name, dump))) {
        /* A changed rule starts afresh: what the old one fired resolves. */
        if (old) eng_rule_remove(e, old, now);
        rc = eng_rule_add(e, ar);
        if (!rc) ar = NULL;
    }
    pthread_mutex_unlock(&e->mu);
    if (!rc && out)
        *out = j;
    else
        json_decref(j);
    if (ar) {
        alert_rule_free(ar->r);
        free(ar->json);
        free(ar);
    }
    return rc;
}

int alert_rules_get(struct alert_engine *e, const char *name, json_t **out)
{
    pthread_mutex_lock(&e->mu);
    struct arule *ar = eng_rule_find(e, name);
    *out = ar ? alert_rule_json(ar->r) : NULL;
    pthread_mutex_unlock(&e->mu);
    return ar ? 0 : -ENOENT;
}

json_t *alert_rules_list(struct alert_engine *e)
{
    pthread_mutex_lock(&e->mu);
    json_t **v = calloc(e->nrules + 1, sizeof *v);
    size_t n = 0;
    for (size_t i = 0; v && i < e->nrules; i++) {
        json_t *j = alert_rule_json(e->rules[i]->r);
        if (j) v[n++] = j;
    }
    pthread_mutex_unlock(&e->mu);
    return v ? sorted(v, n) : NULL;
}

int alert_rules_delete(struct alert_engine *e, const char *name)
{
    if (!strcmp(name, "agent_down") || !strcmp(name, "frames_lost")) return -EPERM;
    int rc = 0;
    pthread_mutex_lock(&e->mu);
    struct arule *ar = eng_rule_find(e, name);
    if (!ar)
        rc = -ENOENT;
    else if (!(rc = alert_db_del(&e->db, "rules", name)))
        eng_rule_remove(e, ar, pt_now_ns());
    pthread_mutex_unlock(&e->mu);
    return rc;
}

/* ---- silences ------------------------------------------------------------------------ */

static void silence_free(struct silence *s)
{
    if (!s) return;
    for (size_t k = 0; k < s->nmatch; k++) {
        free(s->mkey[k]);
        free(s->mval[k]);
    }
    free(s->mkey);
    free(s->mval);
    free(s->json);
    free(s);
}

static json_t *silence_json(const struct silence *s, int64_t now)
{
    json_t *j = json_loads(s->json, 0, NULL);
    if (!j) return NULL;
    json_object_set_new(j, "id", json_integer(s->id));
    json_object_set_new(j, "state",
                        json_string(now < s->starts_ns ? "pending"
                                    : now < s->ends_ns ? "active"
                                                       : "expired"));
    return j;
}

/* Parses a silence; the stored JSON has absolute times. */
static int silence_parse(const char *json, size_t len, int64_t now, struct silence **out, char *err,
                         size_t errlen)
{
    struct pt_conf c;
    const char *starts, *ends, *comment, *by;
    int rc = pt_conf_parse(&c, "silence", json, len);
    json_t *m = NULL;
    int64_t s_ns = now, e_ns = 0;
    if (!rc && !(rc = pt_conf_str(&c, "starts_at", "now", &starts)) &&
        !(rc = pt_conf_str(&c, "ends_at", NULL, &ends)) &&
        !(rc = pt_conf_str(&c, "comment", "", &comment)) &&
        !(rc = pt_conf_str(&c, "created_by", "", &by))) {
        m = pt_conf_json(&c, "matchers");
        rc = pt_conf_finish(&c);
        if (!rc && (!json_is_object(m) || !json_object_size(m)))
            rc = pt_conf_fail(&c, "matchers",
                              "an object of label matchers is required, e.g. "
                              "{\"alertname\": \"cpu-high\", \"vm\": \"vm-1\"}");
        const char *k;
        json_t *v;
        if (!rc) json_object_foreach(m, k, v)
            {
                if (!json_is_string(v) || !*json_string_value(v)) {
                    rc = pt_conf_fail(&c, "matchers", "the value of \"%s\" must be a string", k);
                    break;
                }
            }
        if (!rc && pt_time_parse(starts, now, &s_ns))
            rc = pt_conf_fail(&c, "starts_at", "expected a time (RFC 3339, Unix seconds, now-1h)");
        if (!rc && !ends) rc = pt_conf_fail(&c, "ends_at", "is required (e.g. \"now+2h\")");
        if (!rc && pt_time_parse(ends, now, &e_ns))
            rc = pt_conf_fail(&c, "ends_at", "expected a time (RFC 3339, Unix seconds, now+2h)");
        if (!rc && e_ns <= s_ns) rc = pt_conf_fail(&c, "ends_at", "must be after starts_at");
    }
    if (rc) {
        snprintf(err, errlen, "%s", pt_conf_error(&c));
        pt_conf_close(&c);
        return -EINVAL;
    }
    struct silence *s = calloc(1, sizeof *s);
    size_t n = json_object_size(m);
    if (s) {
        s->mkey = calloc(n, sizeof *s->mkey);
        s->mval = calloc(n, sizeof *s->mval);
    }
    if (!s || !s->mkey || !s->mval) {
        silence_free(s);
        pt_conf_close(&c);
        return -ENOMEM;
    }
    const char *k;
    json_t *v;
    json_object_foreach(m, k, v)
    {
        s->mkey[s->nmatch] = strdup(k);
        s->mval[s->nmatch] = strdup(json_string_value(v));
        s->nmatch++;
    }
    s->starts_ns = s_ns;
    s->ends_ns = e_ns;
    char sb[48], eb[48];
    pt_time_format(s_ns, 3, sb, sizeof sb);
    pt_time_format(e_ns, 3, eb, sizeof eb);
    json_t *j = json_pack("{s:O,s:s,s:s,s:s,s:s}", "matchers", m, "starts_at", sb, "ends_at", eb,
                          "comment", comment, "created_by", by);
    s->json = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    pt_conf_close(&c);
    if (!s->json) {
        silence_free(s);
        return -ENOMEM;
    }
    *out = s;
    return 0;
}

static int silence_insert(struct alert_engine *e, struct silence *s)
{
    struct silence **n = realloc(e->silences, (e->nsilences + 1) * sizeof *n);
    if (!n) return -ENOMEM;
    e->silences = n;
    e->silences[e->nsilences++] = s;
    return 0;
}

int alert_silences_add(struct alert_engine *e, const char *json, size_t len, int64_t now,
                       json_t **out, char *err, size_t errlen)
{
    struct silence *s;
    int rc = silence_parse(json, len, now, &s, err, errlen);
    if (rc) return rc;
    pthread_mutex_lock(&e->mu);
    if (e->nsilences >= MAX_SILENCES) {
        snprintf(err, errlen, "too many silences (%d); delete expired ones", MAX_SILENCES);
        rc = -ENOSPC;
    } else {
        int64_t id = alert_db_silence_add(&e->db, s->json);
        if (id < 0) {
            rc = (int)id;
        } else {
            s->id = id;
            if (!(rc = silence_insert(e, s)) && out) *out = silence_json(s, now);
        }
    }
    pthread_mutex_unlock(&e->mu);
    if (rc) silence_free(s);
    return rc;
}

json_t *alert_silences_list(struct alert_engine *e, int64_t now)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; arr && i < e->nsilences; i++) {
        json_t *j = silence_json(e->silences[i], now);
        if (j) json_array_append_new(arr, j);
    }
    pthread_mutex_unlock(&e->mu);
    return arr;
}

int alert_silences_get(struct alert_engine *e, int64_t id, int64_t now, json_t **out)
{
    int rc = -ENOENT;
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < e->nsilences; i++)
        if (e->silences[i]->id == id) {
            *out = silence_json(e->silences[i], now);
            rc = *out ? 0 : -ENOMEM;
        }
    pthread_mutex_unlock(&e->mu);
    return rc;
}

int alert_silences_delete(struct alert_engine *e, int64_t id)
{
    int rc = -ENOENT;
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < e->nsilences; i++)
        if (e->silences[i]->id == id) {
            if ((rc = alert_db_silence_del(&e->db, id))) break;
            silence_free(e->silences[i]);
            e->silences[i] = e->silences[--e->nsilences];
            break;
        }
    pthread_mutex_unlock(&e->mu);
    return rc;
}

/* ---- reads ------------------------------------------------------------------------------ */

json_t *alert_active(struct alert_engine *e)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&e->mu);
    if (arr) eng_active_json(e, arr);
    pthread_mutex_unlock(&e->mu);
    return arr;
}

int alert_history(struct alert_engine *e, const struct alert_history_query *q, json_t **out)
{
    /* With a file, reads use their own connection and never wait on the
     * ingest thread; ":memory:" (tests) shares the writer's. */
    bool shared = e->db.r == NULL;
    pthread_mutex_lock(&e->mu);
    alert_db_commit(&e->db); /* events since the last tick, so they are seen */
    if (!shared) pthread_mutex_unlock(&e->mu);
    int rc = alert_db_history(&e->db, q, out);
    if (shared) pthread_mutex_unlock(&e->mu);
    return rc;
}

/* ---- open ------------------------------------------------------------------------------------ */

struct load_ctx {
    struct alert_engine *e;
    int64_t now;
    size_t bad;
};

static void load_handler(void *ctx, const char *name, const char *json)
{
    struct load_ctx *l = ctx;
    struct handler *h;
    char err[512];
    if (handler_parse(json, strlen(json), NULL, &h, err, sizeof err)) {
        PT_ERROR("alert", "alerts.db: handler %s no longer valid, not loaded: %s", name, err);
        l->bad++;
        return;
    }
    if (amap_put(&l->e->handlers, h->name, strlen(h->name), amap_hash(h->name, strlen(h->name), 0),
                 h))
        handler_free(h);
}

static void load_rule(void *ctx, const char *name, const char *json)
{
    struct load_ctx *l = ctx;
    struct alert_rule *r;
    char err[768];
    /* Handlers were loaded first; e is passed NULL so parsing does not
     * take the lock we do not hold yet: check them here instead. */
    if (alert_rule_parse_named(NULL, json, strlen(json), NULL, &r, err, sizeof err)) {
        PT_ERROR("alert", "alerts.db: rule %s no longer valid, not loaded: %s", name, err);
        l->bad++;
        return;
    }
    for (size_t i = 0; i < r->nhandlers; i++)
        if (!amap_get(&l->e->handlers, r->handlers[i], strlen(r->handlers[i]),
                      amap_hash(r->handlers[i], strlen(r->handlers[i]), 0)))
            PT_WARN("alert", "rule %s: handler \"%s\" is missing; its events stay in history", name,
                    r->handlers[i]);
    struct arule *ar = eng_rule_new(r, &l->e->o);
    if (!ar || !(ar->json = strdup(json)) || eng_rule_add(l->e, ar)) {
        if (ar) {
            free(ar->json);
            free(ar);
        }
        alert_rule_free(r);
    }
}

static void load_silence(void *ctx, int64_t id, const char *json)
{
    struct load_ctx *l = ctx;
    struct silence *s;
    char err[512];
    if (silence_parse(json, strlen(json), l->now, &s, err, sizeof err)) {
        PT_ERROR("alert", "alerts.db: silence %lld not loaded: %s", (long long)id, err);
        return;
    }
    s->id = id;
    if (silence_insert(l->e, s)) silence_free(s);
}

static void load_state(void *ctx, const char *rule, const char *key, const struct alert_state *s,
                       const char *labels)
{
    struct load_ctx *l = ctx;
    eng_restore_state(l->e, rule, key, s, labels ? labels : "{}", l->now);
}

int alert_engine_open(struct alert_engine **out, const struct alert_engine_opts *o, char *err,
                      size_t errlen)
{
    struct alert_engine *e = calloc(1, sizeof *e);
    if (!e) return -ENOMEM;
    pthread_mutex_init(&e->mu, NULL);
    e->o = *o;
    if (!e->o.submit) e->o.submit = default_submit;
    if (!e->o.agent_down_intervals) e->o.agent_down_intervals = 3;
    if (e->o.frames_lost_window_ns <= 0) e->o.frames_lost_window_ns = 60 * PT_NS_PER_SEC;
    if (!(e->o.frames_lost_ratio > 0)) e->o.frames_lost_ratio = 0.01;
    if (e->o.flap_window_ns <= 0) e->o.flap_window_ns = 600 * PT_NS_PER_SEC;
    if (e->o.flap_changes >= ALERT_FLAP_RING) e->o.flap_changes = ALERT_FLAP_RING - 1;
    if (o->external_url && o->external_url[0]) {
        e->external_url = strdup(o->external_url);
        size_t n = e->external_url ? strlen(e->external_url) : 0;
        while (n && e->external_url[n - 1] == '/') e->external_url[--n] = '\0';
    }
    e->o.external_url = e->external_url;
    e->o.builtin_handlers = NULL; /* only used below, while o is alive */
    int rc = alert_db_open(&e->db, o->db_path, err, errlen);
    if (rc) {
        alert_engine_close(e);
        return rc;
    }
    struct load_ctx l = {e, pt_now_ns(), 0};
    struct alert_engine_opts bo = *o;
    bo.agent_down_intervals = e->o.agent_down_intervals;
    bo.frames_lost_ratio = e->o.frames_lost_ratio;
    bo.frames_lost_window_ns = e->o.frames_lost_window_ns;
    if (o->agent_down) {
        struct alert_rule *r = alert_rule_builtin(KIND_AGENT_DOWN, &bo);
        struct arule *ar = r ? eng_rule_new(r, &e->o) : NULL;
        if (ar && !eng_rule_add(e, ar)) e->agent_down = ar;
    }
    if (o->frames_lost) {
        struct alert_rule *r = alert_rule_builtin(KIND_FRAMES_LOST, &bo);
        struct arule *ar = r ? eng_rule_new(r, &e->o) : NULL;
        if (ar && !eng_rule_add(e, ar)) e->frames_lost = ar;
    }
    if ((o->agent_down && !e->agent_down) || (o->frames_lost && !e->frames_lost)) {
        snprintf(err, errlen, "out of memory creating the built-in rules");
        alert_engine_close(e);
        return -ENOMEM;
    }
    alert_db_each(&e->db, "handlers", load_handler, &l);
    alert_db_each(&e->db, "rules", load_rule, &l);
    alert_db_silences(&e->db, load_silence, &l);
    alert_db_states(&e->db, load_state, &l);
    e->last_sweep_ns = l.now;
    PT_INFO("alert",
            "alerting: %zu rules, %zu handlers, %zu silences, %llu alert series restored "
            "from %s",
            e->nrules, e->handlers.n, e->nsilences, (unsigned long long)e->st.series, o->db_path);
    *out = e;
    return 0;
}
