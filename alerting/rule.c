/* The rule model: parsing and validating rule JSON (errors name the key),
 * rendering it back, conditions with hysteresis, annotation templates and
 * the built-in rules. docs/alerting.md documents every key. */
#include "alert_int.h"
#include "engine_int.h"
#include "pt/catalog.h"
#include "pt/conf.h"
#include "pt/err.h"
#include "pt/time.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const op_names[] = {">", ">=", "<", "<=", "==", "!="};
static const char *const reduce_names[] = {"each", "avg", "min", "max", "sum", "count", "p95"};

const char *alert_op_name(enum alert_op op)
{
    return op_names[op];
}
const char *alert_reduce_name(enum alert_reduce r)
{
    return reduce_names[r];
}
const char *alert_level_name(enum alert_level l)
{
    return l == ALERT_CRITICAL ? "critical" : l == ALERT_WARNING ? "warning" : "ok";
}
const char *alert_status_name(enum alert_status s)
{
    return s == ALERT_RESOLVED ? "resolved" : s == ALERT_FLAPPING ? "flapping" : "firing";
}

bool alert_op_holds(enum alert_op op, double v, double thr)
{
    switch (op) {
    case OP_GT:
        return v > thr;
    case OP_GE:
        return v >= thr;
    case OP_LT:
        return v < thr;
    case OP_LE:
        return v <= thr;
    case OP_EQ:
        return v == thr;
    case OP_NE:
        return v != thr;
    }
    return false;
}

enum alert_level alert_rule_level(const struct alert_rule *r, double v, enum alert_level cur,
                                  double *thr)
{
    *thr = NAN;
    if (isnan(v)) return ALERT_OK;
    if (r->crit.set && alert_op_holds(r->crit.op, v, r->crit.threshold)) {
        *thr = r->crit.threshold;
        return ALERT_CRITICAL;
    }
    if (r->warn.set && alert_op_holds(r->warn.op, v, r->warn.threshold)) {
        *thr = r->warn.threshold;
        return ALERT_WARNING;
    }
    if (cur != ALERT_OK && r->has_recover) {
        /* Hysteresis: a firing series resolves only once the value is past
         * `recover`, so a value hovering at the threshold does not flap. */
        const struct alert_cond *c = r->warn.set ? &r->warn : &r->crit;
        if (alert_op_holds(c->op, v, r->recover)) {
            *thr = cur == ALERT_CRITICAL ? r->crit.threshold : r->warn.threshold;
            return cur;
        }
    }
    return ALERT_OK;
}

void alert_template(const char *tpl, const struct alert_kv *vars, size_t nvars, char *out,
                    size_t cap)
{
    size_t o = 0;
    if (!cap) return;
    for (const char *p = tpl; *p && o + 1 < cap;) {
        const char *end;
        if (p[0] == '{' && p[1] == '{' && (end = strstr(p + 2, "}}"))) {
            const char *a = p + 2, *b = end;
            while (a < b && *a == ' ') a++;
            while (b > a && b[-1] == ' ') b--;
            for (size_t i = 0; i < nvars; i++) {
                if (strlen(vars[i].key) != (size_t)(b - a) || memcmp(vars[i].key, a, b - a))
                    continue;
                for (const char *v = vars[i].value; *v && o + 1 < cap; v++) out[o++] = *v;
                break;
            }
            p = end + 2;
            continue;
        }
        out[o++] = *p++;
    }
    out[o] = '\0';
}

/* ---- parsing ---------------------------------------------------------------- */

void alert_rule_free(struct alert_rule *r)
{
    if (!r) return;
    free(r->name);
    free(r->ns);
    free(r->mcis);
    free(r->vm);
    for (size_t i = 0; i < r->nmatch; i++) {
        free(r->mkey[i]);
        free(r->mval[i]);
    }
    free(r->measurement);
    free(r->field);
    for (size_t i = 0; i < r->nhandlers; i++) free(r->handlers[i]);
    for (size_t i = 0; i < r->nlabels; i++) {
        free(r->lkey[i]);
        free(r->lval[i]);
    }
    for (size_t i = 0; i < r->nannotations; i++) {
        free(r->akey[i]);
        free(r->aval[i]);
    }
    free(r->description);
    free(r);
}

const char *alert_rule_name(const struct alert_rule *r)
{
    return r->name;
}

/* Names of rules, handlers, scopes and labels: 1..128 of [A-Za-z0-9._:@-]. */
static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > ALERT_MAX_NAME) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == ':' || c == '@'))
            return false;
    }
    return true;
}
#define NAME_RULE "must be 1 to 128 characters of A-Z a-z 0-9 . _ - : @"

static char *dup(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* A condition: "> 90" or {"op": ">", "threshold": 90}. */
static int parse_cond(struct pt_conf *c, const char *key, struct alert_cond *out)
{
    json_t *j = pt_conf_json(c, key);
    if (!j || json_is_null(j)) return 0;
    const char *op = NULL;
    double thr = NAN;
    char opbuf[4] = "";
    if (json_is_string(j)) {
        const char *s = json_string_value(j);
        size_t i = 0;
        while (*s == ' ') s++;
        while (i < 2 && (s[i] == '>' || s[i] == '<' || s[i] == '=' || s[i] == '!')) {
            opbuf[i] = s[i];
            i++;
        }
        opbuf[i] = '\0';
        op = opbuf;
        char *end;
        thr = strtod(s + i, &end);
        while (*end == ' ') end++;
        if (end == s + i || *end)
            return pt_conf_fail(c, key,
                                "expected a condition such as \"> 90\" (operator > >= < <= == != "
                                "and a number), got \"%s\"",
                                json_string_value(j));
    } else if (json_is_object(j)) {
        json_t *o = json_object_get(j, "op"), *t = json_object_get(j, "threshold");
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v)
        {
            if (strcmp(k, "op") && strcmp(k, "threshold"))
                return pt_conf_fail(c, key, "unknown key \"%s\" (expected \"op\", \"threshold\")",
                                    k);
        }
        if (!json_is_string(o))
            return pt_conf_fail(c, key, "\"op\" is required: one of > >= < <= == !=");
        if (!json_is_number(t)) return pt_conf_fail(c, key, "\"threshold\" must be a number");
        op = json_string_value(o);
        thr = json_number_value(t);
    } else {
        return pt_conf_fail(c, key,
                            "expected a condition such as \"> 90\" or "
                            "{\"op\": \">\", \"threshold\": 90}");
    }
    for (int i = 0; i < 6; i++)
        if (!strcmp(op, op_names[i])) {
            if (!isfinite(thr)) return pt_conf_fail(c, key, "the threshold must be finite");
            *out = (struct alert_cond){true, (enum alert_op)i, thr};
            return 0;
        }
    return pt_conf_fail(c, key, "unknown operator \"%s\" (expected > >= < <= == !=)", op);
}

/* A JSON object of string values (labels, annotations, scope.tags). */
static int parse_kv(struct pt_conf *c, const char *key, bool names, char **keys, char **vals,
                    size_t max, size_t *n)
{
    json_t *j = pt_conf_json(c, key);
    *n = 0;
    if (!j) return 0;
    if (!json_is_object(j)) return pt_conf_fail(c, key, "expected an object of strings");
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
    {
        if (*n == max) return pt_conf_fail(c, key, "more than %zu entries", max);
        if (!json_is_string(v))
            return pt_conf_fail(c, key, "the value of \"%s\" must be a string", k);
        if (!name_ok(k)) return pt_conf_fail(c, key, "name \"%.64s\" " NAME_RULE, k);
        const char *s = json_string_value(v);
        if (strlen(s) > ALERT_MAX_TEXT || (names && !*s))
            return pt_conf_fail(c, key, "the value of \"%s\" must be 1 to %d characters", k,
                                ALERT_MAX_TEXT);
        keys[*n] = strdup(k);
        vals[*n] = strdup(s);
        (*n)++; /* counted at once, so alert_rule_free() frees a partial list */
        if (!keys[*n - 1] || !vals[*n - 1]) return -ENOMEM;
    }
    return 0;
}

static int parse_body(struct alert_engine *e, struct pt_conf *c, struct alert_rule *r,
                      const char *path_name)
{
    const char *name, *ns, *mcis, *vm, *metric, *reduce, *desc;
    int64_t win, forns, repeat, absent;
    bool enabled;
    int rc;
    const int64_t day = 86400 * PT_NS_PER_SEC;
    if ((rc = pt_conf_str(c, "name", path_name, &name)) ||
        (rc = pt_conf_str(c, "scope.ns", NULL, &ns)) ||
        (rc = pt_conf_str(c, "scope.mcis", NULL, &mcis)) ||
        (rc = pt_conf_str(c, "scope.vm", NULL, &vm)) ||
        (rc = pt_conf_str(c, "metric", NULL, &metric)) ||
        (rc = pt_conf_str(c, "reduce", "each", &reduce)) ||
        (rc = pt_conf_duration(c, "window", 0, day, 0, &win)) ||
        (rc = pt_conf_duration(c, "for", 0, 30 * day, 0, &forns)) ||
        (rc = pt_conf_duration(c, "repeat", 0, 30 * day, 0, &repeat)) ||
        (rc = pt_conf_duration(c, "absent", 0, 30 * day, 0, &absent)) ||
        (rc = pt_conf_bool(c, "enabled", true, &enabled)) ||
        (rc = pt_conf_str(c, "description", "", &desc)))
        return rc;
    if (!name) return pt_conf_fail(c, "name", "is required");
    if (!name_ok(name)) return pt_conf_fail(c, "name", NAME_RULE);
    if (path_name && strcmp(name, path_name))
        return pt_conf_fail(c, "name", "\"%s\" differs from the name in the URL (\"%s\")", name,
                            path_name);
    if (!strcmp(name, "agent_down") || !strcmp(name, "frames_lost"))
        return pt_conf_fail(c, "name", "\"%s\" is a built-in rule (configured in pantalad.json)",
                            name);
    if (!ns) return pt_conf_fail(c, "scope.ns", "is required");
    if (!name_ok(ns)) return pt_conf_fail(c, "scope.ns", NAME_RULE);
    if (!mcis) return pt_conf_fail(c, "scope.mcis", "is required");
    if (!name_ok(mcis)) return pt_conf_fail(c, "scope.mcis", NAME_RULE);
    if (vm && !name_ok(vm)) return pt_conf_fail(c, "scope.vm", NAME_RULE);
    if (!metric) return pt_conf_fail(c, "metric", "is required (\"measurement.field\")");
    const char *dot = strchr(metric, '.');
    if (!dot || dot == metric || !dot[1] || strchr(dot + 1, '.'))
        return pt_conf_fail(c, "metric",
                            "expected \"measurement.field\" such as \"cpu.cpu_utilization\", got "
                            "\"%s\"",
                            metric);
    r->measurement = strndup(metric, (size_t)(dot - metric));
    r->field = strdup(dot + 1);
    if (!r->measurement || !r->field) return -ENOMEM;
    if (!name_ok(r->measurement) || !name_ok(r->field))
        return pt_conf_fail(c, "metric", "measurement and field " NAME_RULE);
    /* Where the catalog knows the measurement, the field must be one of its
     * numeric fields: a typo would otherwise never fire. */
    bool known = false;
    for (size_t i = 0; i < pt_catalog_len; i++)
        if (!strcmp(pt_catalog[i].measurement, r->measurement)) known = true;
    if (known) {
        const struct pt_metric *m = pt_catalog_find(r->measurement, r->field);
        if (!m)
            return pt_conf_fail(c, "metric",
                                "measurement \"%s\" has no field \"%s\" (see METRICS.md / "
                                "docs/agent.md)",
                                r->measurement, r->field);
        if (m->type == PT_F_STR)
            return pt_conf_fail(c, "metric", "\"%s\" is a string field; rules need numbers",
                                metric);
    }
    int red = -1;
    for (int i = 0; i < 7; i++)
        if (!strcmp(reduce, reduce_names[i])) red = i;
    if (red < 0)
        return pt_conf_fail(c, "reduce",
                            "expected \"each\", \"avg\", \"min\", \"max\", \"sum\", \"count\" or "
                            "\"p95\", got \"%s\"",
                            reduce);
    if (vm && red != RED_EACH)
        return pt_conf_fail(c, "reduce",
                            "a rule scoped to one VM (scope.vm) reduces nothing: "
                            "use \"each\"");
    if ((rc = parse_kv(c, "scope.tags", true, r->mkey, r->mval, ALERT_MAX_MATCH, &r->nmatch)))
        return rc;
    if ((rc = parse_cond(c, "warn", &r->warn)) || (rc = parse_cond(c, "crit", &r->crit))) return rc;
    if (!r->warn.set && !r->crit.set && !absent)
        return pt_conf_fail(c, "warn", "a rule needs \"warn\", \"crit\" or \"absent\"");
    json_t *rec = pt_conf_json(c, "recover");
    if (rec && !json_is_null(rec)) {
        if (!json_is_number(rec) || !isfinite(json_number_value(rec)))
            return pt_conf_fail(c, "recover", "expected a number (the hysteresis threshold)");
        r->has_recover = true;
        r->recover = json_number_value(rec);
        const struct alert_cond *cs[2] = {&r->warn, &r->crit};
        for (int i = 0; i < 2; i++) {
            const struct alert_cond *k = cs[i];
            if (!k->set) continue;
            bool up = k->op == OP_GT || k->op == OP_GE, down = k->op == OP_LT || k->op == OP_LE;
            if (!up && !down)
                return pt_conf_fail(c, "recover", "needs > >= < <= conditions, not %s",
                                    op_names[k->op]);
            if ((up && r->recover > k->threshold) || (down && r->recover < k->threshold))
                return pt_conf_fail(c, "recover",
                                    "%g is on the firing side of the %s threshold %g: it must be "
                                    "%s it",
                                    r->recover, i ? "crit" : "warn", k->threshold,
                                    up ? "at or below" : "at or above");
        }
        if (r->warn.set && r->crit.set &&
            ((r->warn.op == OP_GT || r->warn.op == OP_GE) !=
             (r->crit.op == OP_GT || r->crit.op == OP_GE)))
            return pt_conf_fail(c, "recover", "warn and crit point in opposite directions");
    }
    json_t *h = pt_conf_json(c, "handlers");
    if (h) {
        if (!json_is_array(h)) return pt_conf_fail(c, "handlers", "expected an array of names");
        size_t i;
        json_t *v;
        json_array_foreach(h, i, v)
        {
            if (i == ALERT_MAX_HANDLERS)
                return pt_conf_fail(c, "handlers", "more than %d handlers", ALERT_MAX_HANDLERS);
            if (!json_is_string(v) || !name_ok(json_string_value(v)))
                return pt_conf_fail(c, "handlers", "entry %zu: a handler name " NAME_RULE, i);
            const char *hn = json_string_value(v);
            if (e && !alert_engine_has_handler(e, hn))
                return pt_conf_fail(c, "handlers",
                                    "no handler \"%s\" (create it first: POST /api/v1/handlers)",
                                    hn);
            if (!(r->handlers[r->nhandlers++] = strdup(hn))) return -ENOMEM;
        }
    }
    if ((rc = parse_kv(c, "labels", true, r->lkey, r->lval, ALERT_MAX_KV, &r->nlabels))) return rc;
    static const char *const reserved[] = {"alertname", "ns", "mcis", "vm", "severity", "rule"};
    for (size_t i = 0; i < r->nlabels; i++)
        for (size_t k = 0; k < 6; k++)
            if (!strcmp(r->lkey[i], reserved[k]))
                return pt_conf_fail(c, "labels", "\"%s\" is set by Pantala; choose another name",
                                    r->lkey[i]);
    if ((rc = parse_kv(c, "annotations", false, r->akey, r->aval, ALERT_MAX_KV, &r->nannotations)))
        return rc;
    r->name = dup(name);
    r->ns = dup(ns);
    r->mcis = dup(mcis);
    r->vm = dup(vm);
    r->vm_len = vm ? strlen(vm) : 0;
    r->field_len = strlen(r->field);
    r->description = dup(desc);
    r->reduce = (enum alert_reduce)red;
    r->window_ns = win;
    r->for_ns = forns;
    r->repeat_ns = repeat;
    r->absent_ns = absent;
    r->enabled = enabled;
    if (!r->name || !r->ns || !r->mcis || (vm && !r->vm) || !r->description) return -ENOMEM;
    return pt_conf_finish(c);
}

int alert_rule_parse_named(struct alert_engine *e, const char *json, size_t len,
                           const char *path_name, struct alert_rule **out, char *err, size_t errlen)
{
    struct pt_conf c;
    struct alert_rule *r = calloc(1, sizeof *r);
    if (!r) return -ENOMEM;
    int rc = pt_conf_parse(&c, "rule", json, len);
    if (!rc) rc = parse_body(e, &c, r, path_name);
    if (rc) {
        snprintf(err, errlen, "%s", rc == -ENOMEM ? "out of memory" : pt_conf_error(&c));
        pt_conf_close(&c);
        alert_rule_free(r);
        return rc == -ENOMEM ? rc : -EINVAL;
    }
    pt_conf_close(&c);
    *out = r;
    return 0;
}

int alert_rule_parse(struct alert_engine *e, const char *json, size_t len, struct alert_rule **out,
                     char *err, size_t errlen)
{
    return alert_rule_parse_named(e, json, len, NULL, out, err, errlen);
}

static json_t *cond_json(const struct alert_cond *c)
{
    if (!c->set) return json_null();
    return json_pack("{s:s,s:f}", "op", op_names[c->op], "threshold", c->threshold);
}

static json_t *dur_json(int64_t ns)
{
    char b[32];
    pt_duration_format(ns, b, sizeof b);
    return json_string(b);
}

json_t *alert_rule_json(const struct alert_rule *r)
{
    json_t *j = json_object();
    if (!j) return NULL;
    json_object_set_new(j, "name", json_string(r->name));
    if (r->kind != KIND_METRIC) {
        json_object_set_new(j, "builtin", json_true());
        json_object_set_new(j, "description", json_string(r->description ? r->description : ""));
        json_object_set_new(j, "enabled", json_boolean(r->enabled));
        json_t *hs = json_array();
        for (size_t i = 0; i < r->nhandlers; i++)
            json_array_append_new(hs, json_string(r->handlers[i]));
        json_object_set_new(j, "handlers", hs);
        if (r->warn.set) json_object_set_new(j, "warn", cond_json(&r->warn));
        if (r->crit.set) json_object_set_new(j, "crit", cond_json(&r->crit));
        if (r->window_ns) json_object_set_new(j, "window", dur_json(r->window_ns));
        return j;
    }
    json_t *scope = json_pack("{s:s,s:s}", "ns", r->ns, "mcis", r->mcis);
    if (r->vm) json_object_set_new(scope, "vm", json_string(r->vm));
    if (r->nmatch) {
        json_t *t = json_object();
        for (size_t i = 0; i < r->nmatch; i++)
            json_object_set_new(t, r->mkey[i], json_string(r->mval[i]));
        json_object_set_new(scope, "tags", t);
    }
    json_object_set_new(j, "scope", scope);
    char metric[300];
    snprintf(metric, sizeof metric, "%s.%s", r->measurement, r->field);
    json_object_set_new(j, "metric", json_string(metric));
    json_object_set_new(j, "reduce", json_string(reduce_names[r->reduce]));
    json_object_set_new(j, "window", dur_json(r->window_ns));
    json_object_set_new(j, "warn", cond_json(&r->warn));
    json_object_set_new(j, "crit", cond_json(&r->crit));
    json_object_set_new(j, "for", dur_json(r->for_ns));
    json_object_set_new(j, "recover", r->has_recover ? json_real(r->recover) : json_null());
    json_object_set_new(j, "repeat", dur_json(r->repeat_ns));
    json_object_set_new(j, "absent", dur_json(r->absent_ns));
    json_t *hs = json_array();
    for (size_t i = 0; i < r->nhandlers; i++)
        json_array_append_new(hs, json_string(r->handlers[i]));
    json_object_set_new(j, "handlers", hs);
    json_t *l = json_object(), *a = json_object();
    for (size_t i = 0; i < r->nlabels; i++)
        json_object_set_new(l, r->lkey[i], json_string(r->lval[i]));
    for (size_t i = 0; i < r->nannotations; i++)
        json_object_set_new(a, r->akey[i], json_string(r->aval[i]));
    json_object_set_new(j, "labels", l);
    json_object_set_new(j, "annotations", a);
    json_object_set_new(j, "description", json_string(r->description ? r->description : ""));
    json_object_set_new(j, "enabled", json_boolean(r->enabled));
    return j;
}

struct alert_rule *alert_rule_builtin(enum alert_kind kind, const struct alert_engine_opts *o)
{
    struct alert_rule *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->kind = kind;
    r->enabled = true;
    r->reduce = RED_EACH;
    bool ok = true;
    if (kind == KIND_AGENT_DOWN) {
        r->name = strdup("agent_down");
        r->description = strdup("an agent sent nothing for agent_down intervals; resolves when "
                                "it reports again");
        /* value: intervals without a frame */
        r->crit = (struct alert_cond){true, OP_GE, (double)o->agent_down_intervals};
        r->akey[0] = strdup("summary");
        r->aval[0] = strdup("agent {{vm}} of MCIS {{mcis}} ({{ns}}) stopped reporting: "
                            "{{value}} intervals without a frame");
    } else {
        r->name = strdup("frames_lost");
        r->description = strdup("frames lost (sequence gaps not filled) above frames_lost.ratio "
                                "over frames_lost.window");
        r->window_ns = o->frames_lost_window_ns;
        r->warn = (struct alert_cond){true, OP_GT, o->frames_lost_ratio * 100.0};
        r->akey[0] = strdup("summary");
        r->aval[0] = strdup("agent {{vm}} of MCIS {{mcis}} lost {{value}} % of its frames");
    }
    r->nannotations = 1;
    ok = r->name && r->description && r->akey[0] && r->aval[0];
    for (size_t i = 0; i < o->nbuiltin_handlers && i < ALERT_MAX_HANDLERS; i++) {
        if (!(r->handlers[i] = strdup(o->builtin_handlers[i]))) ok = false;
        r->nhandlers = i + 1;
    }
    if (!ok) {
        alert_rule_free(r);
        return NULL;
    }
    return r;
}

void alert_rule_scope(const struct alert_rule *r, struct alert_rule_scope *s)
{
    s->ns = r->ns;
    s->mcis = r->mcis;
    s->vm = r->vm;
    s->measurement = r->measurement;
    s->field = r->field;
    s->tag_keys = (const char *const *)r->mkey;
    s->tag_vals = (const char *const *)r->mval;
    s->ntags = r->nmatch;
    s->window_ns = r->window_ns;
}
