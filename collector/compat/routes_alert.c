/* CB-Dragonfly's alerting on Pantala's alert engine:
 *
 *   GET /dragonfly/alert/tasks, POST /dragonfly/alert/task,
 *   GET|PUT|DELETE /dragonfly/alert/task/{id},
 *   GET /dragonfly/alert/task/{id}/events?level=
 *   GET /dragonfly/alert/eventhandlers?eventType=,
 *   POST /dragonfly/alert/eventhandler,
 *   GET|PUT|DELETE /dragonfly/alert/eventhandler/type/{type}/event/{name}
 *
 * Shapes: cb-dragonfly pkg/core/alert/types/types.go (AlertTaskReq,
 * AlertTask, AlertEventHandlerReq, AlertEventHandler, AlertEventLog) and
 * pkg/api/rest/alert/{task,event,eventhandler}.go. CB-Dragonfly turned a task into a Kapacitor
 * stream task (pkg/core/alert/task/task.go setTemplateVars): the condition
 * "metric <op> threshold" over the target's points, warning once
 * state_count > warn_event_cnt, critical once state_count >
 * critic_event_cnt. Here a task becomes two Pantala rules,
 * dragonfly-{name}-warning and dragonfly-{name}-critical, each with that
 * condition, `for` = count x the agent's interval (so it fires on the
 * count+1-th consecutive matching sample, as state_count > count did) and
 * `window` = event_duration. The task's own JSON is kept in
 * dragonfly.json; the rules and handlers live in alerts.db like any other. */
#include "compat_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "pt/alert.h"
#include "pt/err.h"
#include "pt/log.h"
#include "pt/time.h"

#define RULE_FMT "dragonfly-%s-%s"   /* task name, level */
#define POST_FMT "dragonfly-task-%s" /* the webhook handler of a "post" task */

static bool have_engine(struct api_req *rq, struct api_resp *rs)
{
    if (rq->ctx->alerts) return true;
    compat_error(rs, 503, "alerting is off in this collector (alerting.enabled in pantalad.json)");
    return false;
}

/* A member as text: strings, and numbers (JSON bodies) printed. */
static const char *text(json_t *o, const char *k, char *buf, size_t cap)
{
    json_t *v = json_object_get(o, k);
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
        return buf;
    }
    if (json_is_real(v)) {
        snprintf(buf, cap, "%.17g", json_real_value(v));
        return buf;
    }
    return NULL;
}

/* ---- event handlers ------------------------------------------------------ */

/* Pantala's handler name for a CB-Dragonfly event handler. */
static void handler_name(char *buf, size_t cap, const char *type, const char *name)
{
    snprintf(buf, cap, "dragonfly-%s-%s", type, name);
}

/* AlertEventHandler: {"id", "name", "type", "options"}. */
static json_t *handler_view(const char *type, const char *name, json_t *options)
{
    char id[300];
    handler_name(id, sizeof id, type, name);
    return json_pack("{s:s,s:s,s:s,s:O}", "id", id, "name", name, "type", type, "options", options);
}

/* Builds Pantala handler settings from an AlertEventHandlerReq; the
 * options CB-Dragonfly shows into *opts. false with a 400 set. */
static bool handler_settings(json_t *req, const char *type, json_t **settings, json_t **opts,
                             struct api_resp *rs)
{
    char nb[64];
    *settings = json_object();
    *opts = json_object();
    if (!strcmp(type, "slack")) {
        const char *url = json_string_value(json_object_get(req, "url")),
                   *ch = json_string_value(json_object_get(req, "channel"));
        if (!url) {
            compat_error(rs, 400,
                         "slack event handler: \"url\" (the incoming webhook) is required");
            return false;
        }
        json_object_set_new(*settings, "url", json_string(url));
        json_object_set_new(*opts, "url", json_string(url));
        if (ch && *ch) {
            json_object_set_new(*settings, "channel", json_string(ch));
            json_object_set_new(*opts, "channel", json_string(ch));
        }
        const char *ws = json_string_value(json_object_get(req, "workspace"));
        if (ws) json_object_set_new(*opts, "workspace", json_string(ws));
        return true;
    }
    /* smtp */
    const char *host = json_string_value(json_object_get(req, "host"));
    const char *port = text(req, "port", nb, sizeof nb);
    const char *from = json_string_value(json_object_get(req, "from"));
    json_t *to = json_object_get(req, "to");
    if (!host || !*host || !from || !*from || !to) {
        compat_error(rs, 400, "smtp event handler: \"host\", \"from\" and \"to\" are required");
        return false;
    }
    if (json_is_string(to)) /* form fields: one address, or a comma list */
        to = json_pack("[s]", json_string_value(to));
    else
        json_incref(to);
    char url[600];
    long p = port ? strtol(port, NULL, 10) : 587;
    snprintf(url, sizeof url, "%s://%s:%ld", p == 465 ? "smtps" : "smtp", host, p > 0 ? p : 587);
    json_object_set_new(*settings, "url", json_string(url));
    json_object_set_new(*settings, "from", json_string(from));
    json_object_set(*settings, "to", to);
    json_object_set_new(*opts, "host", json_string(host));
    json_object_set_new(*opts, "port", json_integer(p > 0 ? p : 587));
    json_object_set_new(*opts, "from", json_string(from));
    json_object_set_new(*opts, "to", to);
    const char *user = json_string_value(json_object_get(req, "username")),
               *pass = json_string_value(json_object_get(req, "password"));
    if (user && *user) {
        json_object_set_new(*settings, "username", json_string(user));
        json_object_set_new(*opts, "username", json_string(user));
    }
    if (pass && *pass) {
        json_object_set_new(*settings, "password", json_string(pass));
        json_object_set_new(*opts, "password", json_string("********"));
    }
    return true;
}

static bool type_ok(const char *type, struct api_resp *rs)
{
    if (type && (!strcmp(type, "slack") || !strcmp(type, "smtp"))) return true;
    compat_error(rs, 400, "event handler type: expected slack or smtp, got \"%.32s\"",
                 type ? type : "");
    return false;
}

/* Maps an engine result; false (with the response set) on failure. */
static bool engine_ok(struct api_resp *rs, int rc, const char *err, const char *what)
{
    if (rc == 0) return true;
    if (rc == -EINVAL)
        compat_error(rs, 400, "%s: %s", what, err && *err ? err : "invalid");
    else if (rc == -ENOENT)
        compat_error(rs, 404, "not found %s", what);
    else if (rc == -EEXIST || rc == -EBUSY)
        compat_error(rs, 409, "%s: %s", what, err && *err ? err : "exists");
    else
        compat_error(rs, 500, "%s: %s", what, pt_strerror(rc));
    return false;
}

static void handler_put(struct api_req *rq, struct api_resp *rs, const char *type, const char *name,
                        bool create)
{
    struct coll_compat *c = rq->ctx->compat;
    json_t *req = compat_body(rq, rs);
    if (!req) return;
    if (create) {
        type = json_string_value(json_object_get(req, "type"));
        name = json_string_value(json_object_get(req, "name"));
    }
    json_t *settings = NULL, *opts = NULL;
    if (!type_ok(type, rs)) goto out;
    if (!name || !coll_name_valid(name, strlen(name))) {
        compat_error(rs, 400,
                     "event handler: \"name\" must be 1 to 128 characters of A-Z a-z "
                     "0-9 . _ - : @");
        goto out;
    }
    if (!handler_settings(req, type, &settings, &opts, rs)) goto out;
    char hname[300], err[1024] = "";
    handler_name(hname, sizeof hname, type, name);
    json_t *h = json_pack("{s:s,s:s,s:O}", "name", hname, "type",
                          !strcmp(type, "slack") ? "slack" : "email", "settings", settings);
    char *dump = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    int rc = dump ? alert_handlers_put(rq->ctx->alerts, dump, strlen(dump), hname, create, NULL,
                                       err, sizeof err)
                  : -ENOMEM;
    free(dump);
    if (!engine_ok(rs, rc, err, "event handler")) goto out;
    char key[300];
    snprintf(key, sizeof key, "%s/%s", type, name);
    pthread_mutex_lock(&c->mu);
    json_object_set(c->handlers, key, opts);
    compat_save(c);
    pthread_mutex_unlock(&c->mu);
    api_json(rs, 200, handler_view(type, name, opts));
out:
    json_decref(settings);
    json_decref(opts);
    json_decref(req);
}

void compat_eventhandlers(struct api_req *rq, struct api_resp *rs)
{
    if (!have_engine(rq, rs)) return;
    struct coll_compat *c = rq->ctx->compat;
    if (!strcmp(rq->method, "POST")) {
        handler_put(rq, rs, NULL, NULL, true);
        return;
    }
    const char *want = api_arg(rq, "eventType");
    if (want && *want && !type_ok(want, rs)) return;
    json_t *arr = json_array();
    const char *k;
    json_t *v;
    pthread_mutex_lock(&c->mu);
    json_object_foreach(c->handlers, k, v)
    {
        const char *slash = strchr(k, '/');
        char type[16];
        snprintf(type, sizeof type, "%.*s", slash ? (int)(slash - k) : 0, k);
        if (!slash || (want && *want && strcmp(want, type))) continue;
        json_array_append_new(arr, handler_view(type, slash + 1, v));
    }
    pthread_mutex_unlock(&c->mu);
    api_json(rs, 200, arr);
}

void compat_eventhandler(struct api_req *rq, struct api_resp *rs, const char *type,
                         const char *name)
{
    if (!have_engine(rq, rs) || !type_ok(type, rs)) return;
    struct coll_compat *c = rq->ctx->compat;
    char key[300];
    snprintf(key, sizeof key, "%s/%s", type, name);
    if (!strcmp(rq->method, "PUT")) {
        handler_put(rq, rs, type, name, false);
        return;
    }
    if (!strcmp(rq->method, "DELETE")) {
        char hname[300], err[1024] = "";
        handler_name(hname, sizeof hname, type, name);
        int rc = alert_handlers_delete(rq->ctx->alerts, hname, err, sizeof err);
        if (!engine_ok(rs, rc, err, "event handler")) return;
        pthread_mutex_lock(&c->mu);
        json_object_del(c->handlers, key);
        compat_save(c);
        pthread_mutex_unlock(&c->mu);
        api_json(rs, 200, compat_message("event handler %s/%s deleted", type, name));
        return;
    }
    pthread_mutex_lock(&c->mu);
    json_t *opts = json_object_get(c->handlers, key);
    json_t *view = opts ? handler_view(type, name, opts) : NULL;
    pthread_mutex_unlock(&c->mu);
    if (!view) {
        compat_error(rs, 404, "not found event handler %s/%s", type, name);
        return;
    }
    api_json(rs, 200, view);
}

/* ---- tasks --------------------------------------------------------------- */

static const char *op_of(const char *expr)
{
    static const char *const map[][2] = {{"equal", "=="},
                                         {"greater", ">"},
                                         {"equalgreater", ">="},
                                         {"less", "<"},
                                         {"equalless", "<="}};
    for (size_t i = 0; expr && i < 5; i++)
        if (!strcmp(map[i][0], expr)) return map[i][1];
    return NULL;
}

/* CB-Dragonfly's measurement names (telegraf's) and Pantala's. */
static const char *measurement_of(const char *m, const char **tagk, const char **tagv)
{
    static const char *const map[][4] = {{"cpu", "cpu", NULL, NULL},
                                         {"cpufreq", "cpufreq", NULL, NULL},
                                         {"mem", "memory", NULL, NULL},
                                         {"memory", "memory", NULL, NULL},
                                         {"disk", "disk", "mount", "total"},
                                         {"diskio", "diskio", "device", "total"},
                                         {"net", "network", "interface", "total"},
                                         {"network", "network", "interface", "total"}};
    for (size_t i = 0; m && i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(map[i][0], m)) {
            *tagk = map[i][2];
            *tagv = map[i][3];
            return map[i][1];
        }
    return NULL;
}

/* The ns and mcis of the target, and the agents' interval, from the
 * registry (CB-Dragonfly's target_id names a VM or an MCIS only). */
static bool resolve_target(struct api_req *rq, struct api_resp *rs, const char *type,
                           const char *id, char *ns, char *mcis, int64_t *interval_ns)
{
    struct coll_agent_info *all;
    size_t n, hits = 0;
    if (coll_registry_list(rq->ctx->reg, &all, &n)) {
        compat_error(rs, 500, "out of memory listing agents");
        return false;
    }
    bool vm = !strcmp(type, "vm");
    for (size_t i = 0; i < n; i++) {
        if (strcmp(vm ? all[i].vm : all[i].mcis, id)) continue;
        if (hits && (strcmp(ns, all[i].ns) || strcmp(mcis, all[i].mcis))) {
            hits = 2;
            break;
        }
        snprintf(ns, 129, "%s", all[i].ns);
        snprintf(mcis, 129, "%s", all[i].mcis);
        if (!hits && all[i].interval_ms) *interval_ns = (int64_t)all[i].interval_ms * PT_NS_PER_MS;
        hits = 1;
    }
    free(all);
    if (hits == 1) return true;
    compat_error(rs, 400,
                 hits ? "target_id \"%s\": several %s of that name in different namespaces or "
                        "MCIS; Pantala needs one"
                      : "target_id \"%s\": no registered agent for that %s (install the agent "
                        "first)",
                 id, vm ? "vm" : "mcis");
    return false;
}

/* The task as CB-Dragonfly shows it (AlertTask) plus alert_post_url. */
struct task {
    char name[129], measurement[32], target_type[8], target_id[129], event_duration[32], metric[65],
        expr[16], event_type[8], event_name[129], message[1024], post_url[1024];
    double threshold;
    long long warn_cnt, crit_cnt;
};

static json_t *task_json(const struct task *t)
{
    return json_pack(
        "{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:f,s:I,s:I,s:s,s:s,s:s,s:s}", "name", t->name, "measurement",
        t->measurement, "target_type", t->target_type, "target_id", t->target_id, "event_duration",
        t->event_duration, "metric", t->metric, "alert_math_expression", t->expr, "alert_threshold",
        t->threshold, "warn_event_cnt", (json_int_t)t->warn_cnt, "critic_event_cnt",
        (json_int_t)t->crit_cnt, "alert_event_type", t->event_type, "alert_event_name",
        t->event_name, "alert_event_message", t->message, "alert_post_url", t->post_url);
}

static bool copy_str(struct api_resp *rs, json_t *req, const char *k, char *dst, size_t cap,
                     bool required)
{
    char nb[64];
    const char *v = text(req, k, nb, sizeof nb);
    if ((!v || !*v) && required) {
        compat_error(rs, 400, "alert task: \"%s\" is required", k);
        return false;
    }
    if (v && strlen(v) >= cap) {
        compat_error(rs, 400, "alert task: \"%s\" is longer than %zu characters", k, cap - 1);
        return false;
    }
    snprintf(dst, cap, "%s", v ? v : "");
    return true;
}

static bool num(struct api_resp *rs, json_t *req, const char *k, double *out, bool integer)
{
    char nb[64], *end;
    const char *v = text(req, k, nb, sizeof nb);
    if (!v || !*v) {
        compat_error(rs, 400, "alert task: \"%s\" is required", k);
        return false;
    }
    *out = strtod(v, &end);
    if (*end || !isfinite(*out) || (integer && (*out != floor(*out) || *out < 0 || *out > 1e6))) {
        compat_error(rs, 400, "alert task: \"%s\": expected %s, got \"%.32s\"", k,
                     integer ? "a count from 0" : "a number", v);
        return false;
    }
    return true;
}

static bool task_parse(struct api_resp *rs, json_t *req, const char *name, struct task *t)
{
    static const char *const known[] = {"name",
                                        "measurement",
                                        "target_type",
                                        "target_id",
                                        "event_duration",
                                        "metric",
                                        "alert_math_expression",
                                        "alert_threshold",
                                        "warn_event_cnt",
                                        "critic_event_cnt",
                                        "alert_event_type",
                                        "alert_event_name",
                                        "alert_event_message",
                                        "alert_post_url",
                                        NULL};
    const char *k;
    json_t *v;
    json_object_foreach(req, k, v)
    {
        bool ok = false;
        for (int i = 0; known[i] && !ok; i++) ok = !strcmp(known[i], k);
        if (!ok) {
            compat_error(rs, 400, "alert task: unknown key \"%.64s\"", k);
            return false;
        }
    }
    double d;
    memset(t, 0, sizeof *t);
    if (name)
        snprintf(t->name, sizeof t->name, "%s", name);
    else if (!copy_str(rs, req, "name", t->name, sizeof t->name, true))
        return false;
    if (!coll_name_valid(t->name, strlen(t->name)) || strlen(t->name) > 100) {
        compat_error(rs, 400,
                     "alert task: \"name\" must be 1 to 100 characters of A-Z a-z 0-9 "
                     ". _ - : @");
        return false;
    }
    if (!copy_str(rs, req, "measurement", t->measurement, sizeof t->measurement, true) ||
        !copy_str(rs, req, "target_type", t->target_type, sizeof t->target_type, true) ||
        !copy_str(rs, req, "target_id", t->target_id, sizeof t->target_id, true) ||
        !copy_str(rs, req, "event_duration", t->event_duration, sizeof t->event_duration, false) ||
        !copy_str(rs, req, "metric", t->metric, sizeof t->metric, true) ||
        !copy_str(rs, req, "alert_math_expression", t->expr, sizeof t->expr, true) ||
        !num(rs, req, "alert_threshold", &t->threshold, false) ||
        !copy_str(rs, req, "alert_event_type", t->event_type, sizeof t->event_type, true) ||
        !copy_str(rs, req, "alert_event_name", t->event_name, sizeof t->event_name, false) ||
        !copy_str(rs, req, "alert_event_message", t->message, sizeof t->message, false) ||
        !copy_str(rs, req, "alert_post_url", t->post_url, sizeof t->post_url, false))
        return false;
    if (!num(rs, req, "warn_event_cnt", &d, true)) return false;
    t->warn_cnt = (long long)d;
    if (!num(rs, req, "critic_event_cnt", &d, true)) return false;
    t->crit_cnt = (long long)d;
    const char *tk, *tv;
    if (!measurement_of(t->measurement, &tk, &tv)) {
        compat_error(rs, 400,
                     "alert task: \"measurement\": expected cpu, cpufreq, mem, disk, diskio or "
                     "net, got \"%s\"",
                     t->measurement);
        return false;
    }
    if (strcmp(t->target_type, "vm") && strcmp(t->target_type, "mcis")) {
        compat_error(rs, 400, "alert task: \"target_type\": expected vm or mcis");
        return false;
    }
    if (!op_of(t->expr)) {
        compat_error(rs, 400,
                     "alert task: \"alert_math_expression\": expected equal, greater, "
                     "equalgreater, less or equalless");
        return false;
    }
    int64_t dur;
    if (t->event_duration[0] && pt_duration_parse(t->event_duration, &dur)) {
        compat_error(rs, 400, "alert task: \"event_duration\": expected a duration such as 1m");
        return false;
    }
    if (!strcmp(t->event_type, "post")) {
        if (strncmp(t->post_url, "http://", 7) && strncmp(t->post_url, "https://", 8)) {
            compat_error(rs, 400,
                         "alert task: \"alert_post_url\": the http(s) URL to POST "
                         "events to is required with alert_event_type post");
            return false;
        }
    } else if (!strcmp(t->event_type, "slack") || !strcmp(t->event_type, "smtp")) {
        if (!t->event_name[0]) {
            compat_error(rs, 400,
                         "alert task: \"alert_event_name\": the %s event handler's name "
                         "is required",
                         t->event_type);
            return false;
        }
    } else {
        compat_error(rs, 400, "alert task: \"alert_event_type\": expected slack, smtp or post");
        return false;
    }
    return true;
}

/* Removes the rules and the post handler of task name (absent ones are
 * fine). */
static void task_unmake(struct alert_engine *e, const char *name)
{
    char rn[300], err[256];
    static const char *const levels[] = {"warning", "critical"};
    for (int i = 0; i < 2; i++) {
        snprintf(rn, sizeof rn, RULE_FMT, name, levels[i]);
        alert_rules_delete(e, rn);
    }
    snprintf(rn, sizeof rn, POST_FMT, name);
    alert_handlers_delete(e, rn, err, sizeof err);
}

/* Creates the task's handler (post) and rules; undoes them on failure. */
static bool task_make(struct api_req *rq, struct api_resp *rs, const struct task *t)
{
    struct alert_engine *e = rq->ctx->alerts;
    char ns[129], mcis[129], hn[300], err[1024] = "";
    int64_t iv = compat_agent_interval(rq->ctx->compat) * PT_NS_PER_SEC;
    if (!resolve_target(rq, rs, t->target_type, t->target_id, ns, mcis, &iv)) return false;
    int rc = 0;
    if (!strcmp(t->event_type, "post")) {
        snprintf(hn, sizeof hn, POST_FMT, t->name);
        json_t *h = json_pack("{s:s,s:s,s:{s:s}}", "name", hn, "type", "webhook", "settings", "url",
                              t->post_url);
        char *dump = json_dumps(h, JSON_COMPACT);
        json_decref(h);
        rc = dump ? alert_handlers_put(e, dump, strlen(dump), hn, true, NULL, err, sizeof err)
                  : -ENOMEM;
        free(dump);
        if (!engine_ok(rs, rc, err, "alert task's post handler")) return false;
    } else {
        handler_name(hn, sizeof hn, t->event_type, t->event_name);
    }
    const char *tk, *tv, *meas = measurement_of(t->measurement, &tk, &tv);
    static const char *const levels[] = {"warning", "critical"};
    for (int i = 0; i < 2; i++) {
        char rn[300], metric[200], cond[64], forv[48], summary[1200];
        snprintf(rn, sizeof rn, RULE_FMT, t->name, levels[i]);
        snprintf(metric, sizeof metric, "%s.%s", meas, t->metric);
        snprintf(cond, sizeof cond, "%s %.17g", op_of(t->expr), t->threshold);
        long long cnt = i ? t->crit_cnt : t->warn_cnt;
        snprintf(forv, sizeof forv, "%lldms", cnt * (long long)(iv / PT_NS_PER_MS));
        snprintf(summary, sizeof summary, "[{{level}}] %s %s Alert %s", t->name, t->target_id,
                 t->message);
        json_t *r = json_pack("{s:s,s:{s:s,s:s},s:s,s:s,s:s,s:s,s:[s],s:{s:s},s:{s:s,s:s}}", "name",
                              rn, "scope", "ns", ns, "mcis", mcis, "metric", metric, "reduce",
                              "each", i ? "crit" : "warn", cond, "for", forv, "handlers", hn,
                              "annotations", "summary", summary, "labels", "dragonfly_task",
                              t->name, "target_type", t->target_type);
        if (r && !strcmp(t->target_type, "vm"))
            json_object_set_new(json_object_get(r, "scope"), "vm", json_string(t->target_id));
        if (r && tk)
            json_object_set_new(json_object_get(r, "scope"), "tags", json_pack("{s:s}", tk, tv));
        if (r && t->event_duration[0])
            json_object_set_new(r, "window", json_string(t->event_duration));
        char *dump = r ? json_dumps(r, JSON_COMPACT) : NULL;
        json_decref(r);
        rc = dump ? alert_rules_put(e, dump, strlen(dump), rn, true, NULL, err, sizeof err)
                  : -ENOMEM;
        free(dump);
        if (rc) {
            task_unmake(e, t->name);
            engine_ok(rs, rc, err, "alert task");
            return false;
        }
    }
    return true;
}

void compat_alert_tasks(struct api_req *rq, struct api_resp *rs)
{
    if (!have_engine(rq, rs)) return;
    struct coll_compat *c = rq->ctx->compat;
    if (!strcmp(rq->method, "GET")) {
        json_t *arr = json_array();
        const char *k;
        json_t *v;
        pthread_mutex_lock(&c->mu);
        json_object_foreach(c->tasks, k, v) json_array_append(arr, v);
        pthread_mutex_unlock(&c->mu);
        api_json(rs, 200, arr);
        return;
    }
    json_t *req = compat_body(rq, rs);
    if (!req) return;
    struct task *t = calloc(1, sizeof *t);
    if (!t) {
        json_decref(req);
        compat_error(rs, 500, "out of memory");
        return;
    }
    if (task_parse(rs, req, NULL, t)) {
        pthread_mutex_lock(&c->mu);
        bool exists = json_object_get(c->tasks, t->name) != NULL;
        pthread_mutex_unlock(&c->mu);
        if (exists) {
            compat_error(rs, 409,
                         "an alert task named %s exists (PUT /dragonfly/alert/task/%s "
                         "replaces it)",
                         t->name, t->name);
        } else if (task_make(rq, rs, t)) {
            pthread_mutex_lock(&c->mu);
            json_object_set_new(c->tasks, t->name, task_json(t));
            compat_save(c);
            pthread_mutex_unlock(&c->mu);
            api_json(rs, 200, task_json(t));
        }
    }
    free(t);
    json_decref(req);
}

/* Pantala's history of one rule, as AlertEventLog entries. */
static int events_of(struct alert_engine *e, const char *rule, const char *want, json_t *out)
{
    struct alert_history_query q = {.rule = rule, .level = -1, .limit = 1000};
    json_t *h = NULL;
    int rc = alert_history(e, &q, &h);
    if (rc) return rc;
    size_t i;
    json_t *ev;
    json_array_foreach(h, i, ev)
    {
        const char *status = json_string_value(json_object_get(ev, "status")) ?: "";
        const char *level = json_string_value(json_object_get(ev, "level")) ?: "";
        const char *lv = !strcmp(status, "resolved")  ? "OK"
                         : !strcmp(level, "critical") ? "CRITICAL"
                         : !strcmp(level, "warning")  ? "WARNING"
                                                      : "INFO";
        if (want && strcasecmp(want, lv)) continue;
        const char *msg =
            json_string_value(json_object_get(json_object_get(ev, "annotations"), "summary"));
        char fallback[400];
        if (!msg) {
            snprintf(fallback, sizeof fallback, "%s %s", rule, status);
            msg = fallback;
        }
        json_array_append_new(out, json_pack("{s:O,s:O,s:s,s:s}", "id", json_object_get(ev, "id"),
                                             "time", json_object_get(ev, "at"), "level", lv,
                                             "message", msg));
    }
    json_decref(h);
    return 0;
}

static int by_time_desc(const void *a, const void *b)
{
    const char *ta = json_string_value(json_object_get(*(json_t *const *)a, "time")) ?: "",
               *tb = json_string_value(json_object_get(*(json_t *const *)b, "time")) ?: "";
    return strcmp(tb, ta);
}

void compat_alert_task(struct api_req *rq, struct api_resp *rs, const char *id, bool events)
{
    if (!have_engine(rq, rs)) return;
    struct coll_compat *c = rq->ctx->compat;
    pthread_mutex_lock(&c->mu);
    json_t *cur = json_incref(json_object_get(c->tasks, id));
    pthread_mutex_unlock(&c->mu);
    if (!cur) {
        compat_error(rs, 404, "not found task with ID %.128s", id);
        return;
    }
    if (events) {
        const char *want = api_arg(rq, "level");
        if (want && *want && strcasecmp(want, "OK") && strcasecmp(want, "INFO") &&
            strcasecmp(want, "WARNING") && strcasecmp(want, "CRITICAL")) {
            compat_error(rs, 400,
                         "query parameter \"level\": expected OK, INFO, WARNING or "
                         "CRITICAL");
        } else {
            json_t *arr = json_array();
            int rc = 0;
            static const char *const levels[] = {"warning", "critical"};
            for (int i = 0; i < 2 && !rc; i++) {
                char rn[300];
                snprintf(rn, sizeof rn, RULE_FMT, id, levels[i]);
                rc = events_of(rq->ctx->alerts, rn, want && *want ? want : NULL, arr);
            }
            if (rc) {
                json_decref(arr);
                compat_error(rs, 500, "reading the alert history: %s", pt_strerror(rc));
            } else {
                /* newest first, across both rules */
                size_t n = json_array_size(arr);
                json_t **v = calloc(n ? n : 1, sizeof *v);
                for (size_t i = 0; v && i < n; i++) v[i] = json_array_get(arr, i);
                if (v) qsort(v, n, sizeof *v, by_time_desc);
                json_t *sorted = json_array();
                for (size_t i = 0; v && i < n; i++) json_array_append(sorted, v[i]);
                free(v);
                json_decref(arr);
                api_json(rs, 200, sorted);
            }
        }
    } else if (!strcmp(rq->method, "GET")) {
        api_json(rs, 200, json_incref(cur));
    } else if (!strcmp(rq->method, "DELETE")) {
        task_unmake(rq->ctx->alerts, id);
        pthread_mutex_lock(&c->mu);
        json_object_del(c->tasks, id);
        compat_save(c);
        pthread_mutex_unlock(&c->mu);
        api_json(rs, 200, compat_message("alert task %s deleted", id));
    } else { /* PUT: replace (CB-Dragonfly's did nothing) */
        json_t *req = compat_body(rq, rs);
        struct task *t = req ? calloc(1, sizeof *t) : NULL;
        if (req && !t) compat_error(rs, 500, "out of memory");
        if (t && task_parse(rs, req, id, t)) {
            task_unmake(rq->ctx->alerts, id);
            if (task_make(rq, rs, t)) {
                pthread_mutex_lock(&c->mu);
                json_object_set_new(c->tasks, id, task_json(t));
                compat_save(c);
                pthread_mutex_unlock(&c->mu);
                api_json(rs, 200, task_json(t));
            } else { /* put the old task back; the answer says why the new failed */
                struct api_resp scratch = {0};
                if (!task_parse(&scratch, cur, id, t) || !task_make(rq, &scratch, t))
                    PT_ERROR("compat", "alert task %s: the old rules could not be restored: %s", id,
                             json_string_value(json_object_get(scratch.json, "message")));
                json_decref(scratch.json);
            }
        }
        free(t);
        json_decref(req);
    }
    json_decref(cur);
}
