/* The /dragonfly routes: state kept in data_dir/dragonfly.json, request
 * helpers with CB-Dragonfly's error shape, and the dispatch. */
#include "compat_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pt/log.h"

void compat_error(struct api_resp *rs, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_decref(rs->json);
    rs->status = status;
    rs->json = json_pack("{s:s}", "message", msg);
}

json_t *compat_message(const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return json_pack("{s:s}", "message", msg);
}

bool compat_method(struct api_req *rq, struct api_resp *rs, const char *allow)
{
    size_t ml = strlen(rq->method);
    for (const char *p = allow; (p = strstr(p, rq->method)); p += ml)
        if ((p == allow || p[-1] == ' ') && (p[ml] == '\0' || p[ml] == ',')) return true;
    rs->allow = allow;
    compat_error(rs, 405, "%s is not allowed here (allowed: %s)", rq->method, allow);
    return false;
}

void compat_agent_uuid(char *buf, size_t len, const char *ns, const char *service_type,
                       const char *mcis, const char *vm, const char *csp)
{
    snprintf(buf, len, "%s_%s_%s_%s_%s", ns, service_type, mcis, vm, csp);
}

long compat_agent_interval(struct coll_compat *c)
{
    pthread_mutex_lock(&c->mu);
    json_int_t v = json_integer_value(json_object_get(c->config, "mcis_agent_interval"));
    pthread_mutex_unlock(&c->mu);
    return v > 0 ? (long)v : 1;
}

/* ---- request bodies ------------------------------------------------------ */

json_t *compat_body(struct api_req *rq, struct api_resp *rs)
{
    const char *ct = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "Content-Type");
    if (!rq->body_len) {
        compat_error(rs, 400, "request body: expected a JSON object (or form fields)");
        return NULL;
    }
    if (ct && !strncasecmp(ct, "application/x-www-form-urlencoded", 33)) {
        char err[128];
        json_t *o = compat_form_parse(rq->body, rq->body_len, err, sizeof err);
        if (!o) compat_error(rs, 400, "%s", err);
        return o;
    }
    json_error_t je;
    json_t *doc = json_loadb(rq->body, rq->body_len, 0, &je);
    if (!json_is_object(doc)) {
        compat_error(rs, 400, "request body: %s", doc ? "expected a JSON object" : je.text);
        json_decref(doc);
        return NULL;
    }
    return doc;
}

/* ---- state --------------------------------------------------------------- */

int compat_save(struct coll_compat *c)
{
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", c->path);
    json_t *doc = json_pack("{s:O,s:O,s:O,s:O}", "config", c->config, "agents", c->agents, "tasks",
                            c->tasks, "eventhandlers", c->handlers);
    if (!doc) return -ENOMEM;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        json_decref(doc);
        PT_ERROR("compat", "cannot write %s: %s", tmp, strerror(e));
        return -e;
    }
    int rc = json_dumpfd(doc, fd, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(doc);
    if (rc == 0 && fsync(fd)) rc = -1;
    if (close(fd)) rc = -1;
    if (rc == 0 && rename(tmp, c->path)) rc = -1;
    if (rc) {
        int e = errno ? errno : EIO;
        PT_ERROR("compat", "cannot write %s: %s", c->path, strerror(e));
        unlink(tmp);
        return -e;
    }
    return 0;
}

int coll_compat_open(struct coll_compat **out, const struct coll_compat_opts *o, char *err,
                     size_t errlen)
{
    struct coll_compat *c = calloc(1, sizeof *c);
    if (!c) return -ENOMEM;
    c->o = *o;
    snprintf(c->path, sizeof c->path, "%s/dragonfly.json", o->data_dir);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->idle, NULL);
    c->config = compat_config_defaults();
    c->agents = json_object();
    c->tasks = json_object();
    c->handlers = json_object();
    json_error_t je;
    json_t *doc = json_load_file(c->path, 0, &je);
    if (doc) {
        json_t *cf = json_object_get(doc, "config"), *ag = json_object_get(doc, "agents");
        if (!json_is_object(cf) || !json_is_object(ag)) {
            snprintf(err, errlen, "%s: expected {\"config\": {...}, \"agents\": {...}}", c->path);
            json_decref(doc);
            coll_compat_close(c);
            return -EINVAL;
        }
        json_object_update(c->config, cf); /* keys added since keep their defaults */
        json_object_update(c->agents, ag);
        json_t *tk = json_object_get(doc, "tasks"), *eh = json_object_get(doc, "eventhandlers");
        if (json_is_object(tk)) json_object_update(c->tasks, tk);
        if (json_is_object(eh)) json_object_update(c->handlers, eh);
        json_decref(doc);
    } else if (access(c->path, F_OK) == 0) {
        snprintf(err, errlen, "%s:%d: %s", c->path, je.line, je.text);
        coll_compat_close(c);
        return -EINVAL;
    }
    if (o->open)
        PT_WARN("compat", "compat.auth is \"none\": the /dragonfly routes (agent installs, "
                          "alert tasks, metrics) answer WITHOUT A TOKEN. Use only on a trusted "
                          "network.");
    *out = c;
    return 0;
}

void coll_compat_set_api(struct coll_compat *c, const char *url)
{
    pthread_mutex_lock(&c->mu);
    snprintf(c->api_url, sizeof c->api_url, "%s", url);
    pthread_mutex_unlock(&c->mu);
}

void coll_compat_close(struct coll_compat *c)
{
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    c->closing = true;
    if (c->running)
        PT_INFO("compat", "waiting for %zu agent install%s to finish", c->running,
                c->running == 1 ? "" : "s");
    while (c->running) pthread_cond_wait(&c->idle, &c->mu);
    pthread_mutex_unlock(&c->mu);
    json_decref(c->config);
    json_decref(c->agents);
    json_decref(c->tasks);
    json_decref(c->handlers);
    pthread_cond_destroy(&c->idle);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* ---- dispatch ------------------------------------------------------------ */

static bool seg_is(const struct api_req *rq, size_t i, const char *s)
{
    return i < rq->nseg && strcmp(rq->seg[i], s) == 0;
}

static void dispatch(struct api_req *rq, struct api_resp *rs);

void api_compat(struct api_req *rq, struct api_resp *rs)
{
    dispatch(rq, rs);
    if (!rq->deferred) compat_count(rq, rs->status);
}

void compat_count(struct api_req *rq, int status)
{
    int cls = status >= 500 ? 2 : status >= 400 ? 1 : 0;
    atomic_fetch_add_explicit(&rq->ctx->stats->compat_answers[cls], 1, memory_order_relaxed);
}

static void dispatch(struct api_req *rq, struct api_resp *rs)
{
    struct coll_compat *c = rq->ctx->compat;
    size_t n = rq->nseg;
    if (!c->o.open && !api_authorized(rq)) {
        compat_error(rs, 401,
                     "missing or invalid bearer token (send \"Authorization: Bearer <token>\", "
                     "or set compat.auth to \"none\" on a trusted network)");
        return;
    }
    if (rq->body_too_large) {
        compat_error(rs, 413, "request body larger than %u bytes", API_MAX_BODY);
        return;
    }
    if (n == 2 && seg_is(rq, 1, "healthcheck")) {
        if (compat_method(rq, rs, "GET")) rs->status = 204;
        return;
    }
    if (n == 2 && seg_is(rq, 1, "config")) {
        if (compat_method(rq, rs, "GET, PUT")) compat_config(rq, rs, false);
        return;
    }
    if (n == 3 && seg_is(rq, 1, "config") && seg_is(rq, 2, "reset")) {
        if (compat_method(rq, rs, "PUT")) compat_config(rq, rs, true);
        return;
    }
    if (n == 2 && seg_is(rq, 1, "agent")) {
        if (compat_method(rq, rs, "POST, DELETE")) compat_agent(rq, rs);
        return;
    }
    /* CB-Dragonfly before 0.4 (POST /agent/install, /agent/uninstall) */
    if (n == 3 && seg_is(rq, 1, "agent") &&
        (seg_is(rq, 2, "install") || seg_is(rq, 2, "uninstall"))) {
        if (compat_method(rq, rs, "POST")) {
            rq->method = seg_is(rq, 2, "install") ? "POST" : "DELETE";
            compat_agent(rq, rs);
        }
        return;
    }
    if (n == 3 && seg_is(rq, 1, "agents") && seg_is(rq, 2, "metadata")) {
        if (compat_method(rq, rs, "GET")) compat_agents_metadata(rq, rs);
        return;
    }
    if (n == 3 && seg_is(rq, 1, "agent") && seg_is(rq, 2, "metadata")) {
        if (compat_method(rq, rs, "GET, PUT, DELETE")) compat_agent_metadata(rq, rs);
        return;
    }
    /* alerting (routes_alert.c) */
    if (n == 3 && seg_is(rq, 1, "alert") && seg_is(rq, 2, "tasks")) {
        if (compat_method(rq, rs, "GET")) compat_alert_tasks(rq, rs);
        return;
    }
    if (n == 3 && seg_is(rq, 1, "alert") && seg_is(rq, 2, "task")) {
        if (compat_method(rq, rs, "POST")) compat_alert_tasks(rq, rs);
        return;
    }
    if (n == 4 && seg_is(rq, 1, "alert") && seg_is(rq, 2, "task")) {
        if (compat_method(rq, rs, "GET, PUT, DELETE")) compat_alert_task(rq, rs, rq->seg[3], false);
        return;
    }
    if (n == 5 && seg_is(rq, 1, "alert") && seg_is(rq, 2, "task") && seg_is(rq, 4, "events")) {
        if (compat_method(rq, rs, "GET")) compat_alert_task(rq, rs, rq->seg[3], true);
        return;
    }
    if (n == 3 && seg_is(rq, 1, "alert") && seg_is(rq, 2, "eventhandlers")) {
        if (compat_method(rq, rs, "GET")) compat_eventhandlers(rq, rs);
        return;
    }
    if (n == 3 && seg_is(rq, 1, "alert") && seg_is(rq, 2, "eventhandler")) {
        if (compat_method(rq, rs, "POST")) compat_eventhandlers(rq, rs);
        return;
    }
    if (n == 7 && seg_is(rq, 1, "alert") && seg_is(rq, 2, "eventhandler") &&
        seg_is(rq, 3, "type") && seg_is(rq, 5, "event")) {
        if (compat_method(rq, rs, "GET, PUT, DELETE"))
            compat_eventhandler(rq, rs, rq->seg[4], rq->seg[6]);
        return;
    }
    /* /dragonfly/ns/{ns}/mcis/{mcis}/vm/{vm}/... */
    if (n >= 8 && seg_is(rq, 1, "ns") && seg_is(rq, 3, "mcis") && seg_is(rq, 5, "vm")) {
        if (n == 12 && seg_is(rq, 7, "agent_ip") && seg_is(rq, 9, "metric") &&
            seg_is(rq, 11, "ondemand-monitoring-info")) {
            if (compat_method(rq, rs, "GET"))
                compat_ondemand(rq, rs, rq->seg[2], rq->seg[4], rq->seg[6], rq->seg[10]);
            return;
        }
        /* An empty agent_ip ("agent_ip//metric", CB-Tumblebug without a
         * VM address) leaves one segment out; the address is not used. */
        if (n == 11 && seg_is(rq, 7, "agent_ip") && seg_is(rq, 8, "metric") &&
            seg_is(rq, 10, "ondemand-monitoring-info")) {
            if (compat_method(rq, rs, "GET"))
                compat_ondemand(rq, rs, rq->seg[2], rq->seg[4], rq->seg[6], rq->seg[9]);
            return;
        }
        if (n == 10 && seg_is(rq, 7, "metric") && seg_is(rq, 9, "info")) {
            if (compat_method(rq, rs, "GET"))
                compat_info(rq, rs, rq->seg[2], rq->seg[4], rq->seg[6], rq->seg[8]);
            return;
        }
    }
    /* CB-Dragonfly routes Pantala has no counterpart for: say so. */
    if ((n == 12 && seg_is(rq, 1, "ns") && seg_is(rq, 11, "mcis-monitoring-info")) ||
        (n == 3 && seg_is(rq, 1, "installer")) || (n == 4 && seg_is(rq, 1, "file")) ||
        (n == 3 && seg_is(rq, 1, "alert") && seg_is(rq, 2, "event"))) {
        compat_error(rs, 501,
                     "%s %.200s is a CB-Dragonfly route Pantala does not offer (see "
                     "docs/cb-dragonfly-compat.md)",
                     rq->method, rq->url);
        return;
    }
    compat_error(rs, 404, "no such route: %s %.900s (see docs/cb-dragonfly-compat.md)", rq->method,
                 rq->url);
}
