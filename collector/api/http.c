/* HTTP server: libmicrohttpd set-up, authentication, routing, responses. */
#include "api_int.h"
#include "pt/err.h"
#include "pt/log.h"
#include "pt/time.h"
#include "pt/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct coll_api {
    struct MHD_Daemon *d;
    struct coll_api_ctx ctx;
};

void api_error(struct api_resp *rs, int status, const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_decref(rs->json);
    rs->status = status;
    rs->json = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
}

void api_json(struct api_resp *rs, int status, json_t *j)
{
    json_decref(rs->json);
    rs->status = status;
    rs->json = j;
    if (!j) api_error(rs, 500, "internal", "out of memory building the response");
}

const char *api_arg(struct api_req *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
}

struct args_check {
    const char *const *allowed;
    const char *bad;
};

static enum MHD_Result check_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    struct args_check *c = cls;
    (void)kind;
    (void)value;
    for (const char *const *a = c->allowed; *a; a++)
        if (strcmp(*a, key) == 0) return MHD_YES;
    c->bad = key;
    return MHD_NO;
}

bool api_args_known(struct api_req *rq, struct api_resp *rs, const char *const *allowed)
{
    struct args_check c = {allowed, NULL};
    MHD_get_connection_values(rq->conn, MHD_GET_ARGUMENT_KIND, check_arg, &c);
    if (!c.bad) return true;
    char list[256] = "";
    size_t n = 0;
    for (const char *const *a = allowed; *a; a++)
        n += (size_t)snprintf(list + n, n < sizeof list ? sizeof list - n : 0, "%s%s",
                              a == allowed ? "" : ", ", *a);
    api_error(rs, 400, "bad_request", "unknown query parameter \"%.64s\" (accepted: %s)", c.bad,
              allowed[0] ? list : "none");
    return false;
}

json_t *api_time(int64_t ns)
{
    char buf[48];
    if (ns == 0) return json_null();
    int frac = ns % PT_NS_PER_SEC == 0 ? 0 : (ns % PT_NS_PER_MS == 0 ? 3 : 9);
    if (pt_time_format(ns, frac, buf, sizeof buf) < 0) return json_null();
    return json_string(buf);
}

/* ---- authentication ------------------------------------------------------ */

bool api_authorized(struct api_req *rq)
{
    const char *h = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) return false;
    const char *tok = h + 7;
    while (*tok == ' ') tok++;
    size_t len = strlen(tok);
    bool ok = false;
    /* Compare with every token so timing does not tell which one matched. */
    for (size_t i = 0; i < rq->ctx->ntokens; i++)
        ok |= pt_ct_equal(tok, len, rq->ctx->tokens[i], strlen(rq->ctx->tokens[i]));
    return ok;
}

/* ---- routing ------------------------------------------------------------- */

static bool method_is(struct api_req *rq, struct api_resp *rs, const char *allow)
{
    /* allow is "GET" or "GET, POST" etc.; match a whole word */
    size_t ml = strlen(rq->method);
    for (const char *p = allow; (p = strstr(p, rq->method)); p += ml)
        if ((p == allow || p[-1] == ' ') && (p[ml] == '\0' || p[ml] == ',')) return true;
    rs->allow = allow;
    api_error(rs, 405, "method_not_allowed", "%s is not allowed here (allowed: %s)", rq->method,
              allow);
    return false;
}

/* Splits url into segments; false when it does not fit (never truncated:
 * a cut path could name another resource). */
static bool split_path(struct api_req *rq, const char *url)
{
    if (strlen(url) >= sizeof rq->path) return false;
    snprintf(rq->path, sizeof rq->path, "%s", url);
    rq->nseg = 0;
    char *save = NULL;
    for (char *s = strtok_r(rq->path, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
        if (rq->nseg == API_MAX_SEGS) {
            rq->nseg = API_MAX_SEGS + 1; /* too deep: no route matches */
            return true;
        }
        rq->seg[rq->nseg++] = s;
    }
    return true;
}

static bool seg_is(struct api_req *rq, size_t i, const char *s)
{
    return i < rq->nseg && strcmp(rq->seg[i], s) == 0;
}

static void route(struct api_req *rq, struct api_resp *rs)
{
    size_t n = rq->nseg;
    if (n == 1 && seg_is(rq, 0, "healthz")) {
        if (method_is(rq, rs, "GET")) api_healthz(rq, rs);
        return;
    }
    if (n >= 1 && seg_is(rq, 0, "dragonfly") && rq->ctx->compat) {
        api_compat(rq, rs); /* its own auth and error shape */
        return;
    }
    if (!api_authorized(rq)) {
        api_error(rs, 401, "unauthorized",
                  "missing or invalid bearer token (send \"Authorization: Bearer <token>\")");
        return;
    }
    if (rq->body_too_large) {
        api_error(rs, 413, "payload_too_large", "request body larger than %u bytes", API_MAX_BODY);
        return;
    }
    if (n == 1 && seg_is(rq, 0, "metrics")) {
        if (method_is(rq, rs, "GET")) api_prometheus(rq, rs);
        return;
    }
    if (n >= 2 && seg_is(rq, 0, "api") && seg_is(rq, 1, "v1")) {
        if (n == 3 && seg_is(rq, 2, "store")) {
            if (method_is(rq, rs, "GET")) api_store(rq, rs);
            return;
        }
        if (n == 3 && seg_is(rq, 2, "agents")) {
            if (method_is(rq, rs, "GET, POST")) api_agents_collection(rq, rs);
            return;
        }
        if (n == 4 && seg_is(rq, 2, "agents")) {
            if (method_is(rq, rs, "GET, DELETE")) api_agents_item(rq, rs, rq->seg[3]);
            return;
        }
        if (n == 3 && seg_is(rq, 2, "provision")) {
            if (method_is(rq, rs, "GET, POST")) api_provision_collection(rq, rs);
            return;
        }
        if (n == 4 && seg_is(rq, 2, "provision")) {
            if (method_is(rq, rs, "GET")) api_provision_item(rq, rs, rq->seg[3]);
            return;
        }
        if (n == 3 && seg_is(rq, 2, "targets")) {
            if (method_is(rq, rs, "GET, POST")) api_targets_collection(rq, rs);
            return;
        }
        if (n == 4 && seg_is(rq, 2, "targets")) {
            if (method_is(rq, rs, "GET, PUT, DELETE")) api_targets_item(rq, rs, rq->seg[3]);
            return;
        }
        if (n == 5 && seg_is(rq, 2, "targets") && seg_is(rq, 4, "poll")) {
            if (method_is(rq, rs, "POST")) api_targets_poll(rq, rs, rq->seg[3]);
            return;
        }
        if (n == 8 && seg_is(rq, 2, "ns") && seg_is(rq, 4, "mcis") && seg_is(rq, 6, "metrics")) {
            if (method_is(rq, rs, "GET"))
                api_mcis_metrics(rq, rs, rq->seg[3], rq->seg[5], rq->seg[7]);
            return;
        }
        if (n == 7 && seg_is(rq, 2, "ns") && seg_is(rq, 4, "mcis") && seg_is(rq, 6, "latest")) {
            if (method_is(rq, rs, "GET")) api_mcis_latest(rq, rs, rq->seg[3], rq->seg[5]);
            return;
        }
        /* alerting (routes_alerts.c) */
        if (n == 3 && seg_is(rq, 2, "rules")) {
            if (method_is(rq, rs, "GET, POST")) api_rules_collection(rq, rs);
            return;
        }
        if (n == 4 && seg_is(rq, 2, "rules") && seg_is(rq, 3, "dry-run")) {
            if (method_is(rq, rs, "POST")) api_rules_dryrun(rq, rs, NULL);
            return;
        }
        if (n == 4 && seg_is(rq, 2, "rules")) {
            if (method_is(rq, rs, "GET, PUT, DELETE")) api_rules_item(rq, rs, rq->seg[3]);
            return;
        }
        if (n == 5 && seg_is(rq, 2, "rules") && seg_is(rq, 4, "dry-run")) {
            if (method_is(rq, rs, "GET, POST")) api_rules_dryrun(rq, rs, rq->seg[3]);
            return;
        }
        if (n == 3 && seg_is(rq, 2, "handlers")) {
            if (method_is(rq, rs, "GET, POST")) api_handlers_collection(rq, rs);
            return;
        }
        if (n == 4 && seg_is(rq, 2, "handlers")) {
            if (method_is(rq, rs, "GET, PUT, DELETE")) api_handlers_item(rq, rs, rq->seg[3]);
            return;
        }
        if (n == 3 && seg_is(rq, 2, "silences")) {
            if (method_is(rq, rs, "GET, POST")) api_silences_collection(rq, rs);
            return;
        }
        if (n == 4 && seg_is(rq, 2, "silences")) {
            if (method_is(rq, rs, "GET, DELETE")) api_silences_item(rq, rs, rq->seg[3]);
            return;
        }
        if (n == 3 && seg_is(rq, 2, "alerts")) {
            if (method_is(rq, rs, "GET")) api_alerts_active(rq, rs);
            return;
        }
        if (n == 4 && seg_is(rq, 2, "alerts") && seg_is(rq, 3, "history")) {
            if (method_is(rq, rs, "GET")) api_alerts_history(rq, rs);
            return;
        }
        if (n >= 9 && seg_is(rq, 2, "ns") && seg_is(rq, 4, "mcis") && seg_is(rq, 6, "vm")) {
            if (n == 10 && seg_is(rq, 8, "metrics")) {
                if (method_is(rq, rs, "GET"))
                    api_vm_metrics(rq, rs, rq->seg[3], rq->seg[5], rq->seg[7], rq->seg[9]);
                return;
            }
            if (n == 9 && seg_is(rq, 8, "latest")) {
                if (method_is(rq, rs, "GET"))
                    api_vm_latest(rq, rs, rq->seg[3], rq->seg[5], rq->seg[7]);
                return;
            }
        }
    }
    api_error(rs, 404, "not_found", "no such route: %s %.900s (see docs/api.md)", rq->method,
              rq->url);
}

/* ---- answers given later ------------------------------------------------ */

void api_defer(struct api_req *rq)
{
    rq->deferred = true;
    MHD_suspend_connection(rq->conn);
}

void api_resume(struct api_req *rq, int status, json_t *body)
{
    struct api_resp *late = calloc(1, sizeof *late);
    struct MHD_Connection *conn = rq->conn;
    if (late) {
        late->status = status;
        late->json = body;
        if (!body) api_error(late, 500, "internal", "out of memory building the response");
    } else {
        json_decref(body);
    }
    rq->late = late; /* NULL: on_request answers 500 */
    MHD_resume_connection(conn);
}

/* ---- libmicrohttpd glue -------------------------------------------------- */

static enum MHD_Result respond(struct MHD_Connection *conn, struct api_resp *rs)
{
    char *body;
    size_t len;
    const char *ctype = "application/json";
    if (rs->json) {
        body = json_dumps(rs->json, JSON_COMPACT | JSON_REAL_PRECISION(15));
        len = body ? strlen(body) : 0;
        if (body) { /* a trailing newline is kind to curl users */
            char *nb = realloc(body, len + 2);
            if (nb) {
                body = nb;
                body[len++] = '\n';
                body[len] = '\0';
            }
        }
    } else {
        body = rs->text;
        len = rs->text_len;
        rs->text = NULL;
        if (rs->ctype) ctype = rs->ctype;
    }
    struct MHD_Response *r;
    if (body)
        r = MHD_create_response_from_buffer_with_free_callback(len, body, free);
    else
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    if (rs->status != 204) MHD_add_response_header(r, "Content-Type", ctype);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (rs->allow) MHD_add_response_header(r, "Allow", rs->allow);
    if (rs->status == 401)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"pantala\"");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)rs->status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct coll_api *api = cls;
    struct api_req *rq = *con_cls;
    (void)version;
    if (!rq) {
        rq = calloc(1, sizeof *rq);
        if (!rq) return MHD_NO;
        *con_cls = rq;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        if (!rq->body_too_large && rq->body_len + n <= API_MAX_BODY) {
            char *nb = realloc(rq->body, rq->body_len + n + 1);
            if (!nb) return MHD_NO;
            rq->body = nb;
            memcpy(rq->body + rq->body_len, upload_data, n);
            rq->body_len += n;
            rq->body[rq->body_len] = '\0';
        } else {
            rq->body_too_large = true; /* keep reading, answer 413 at the end */
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (rq->deferred) { /* resumed: the answer is waiting */
        struct api_resp *late = rq->late;
        struct api_resp oom = {.status = 500};
        if (!late) {
            api_error(&oom, 500, "internal", "out of memory building the response");
            late = &oom;
        }
        PT_DEBUG("api", "%s %s -> %d (answered later)", method, url, late->status);
        enum MHD_Result ret = respond(conn, late);
        json_decref(late->json);
        free(late->text);
        if (late != &oom) free(late);
        rq->late = NULL;
        rq->deferred = false;
        return ret;
    }
    rq->conn = conn;
    rq->ctx = &api->ctx;
    rq->method = method;
    rq->url = url;
    struct api_resp rs = {0};
    rs.status = 500;
    if (split_path(rq, url))
        route(rq, &rs);
    else
        api_error(&rs, 414, "uri_too_long", "request path longer than %zu bytes",
                  sizeof rq->path - 1);
    if (rq->deferred) { /* suspended; api_resume() brings it back */
        json_decref(rs.json);
        free(rs.text);
        return MHD_YES;
    }
    if (!rs.json && !rs.text && rs.status != 204)
        api_error(&rs, 500, "internal", "the handler produced no response");
    PT_DEBUG("api", "%s %s -> %d", method, url, rs.status);
    enum MHD_Result ret = respond(conn, &rs);
    json_decref(rs.json);
    free(rs.text);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct api_req *rq = *con_cls;
    (void)cls;
    (void)conn;
    (void)toe;
    if (rq) {
        if (rq->late) { /* resumed, but the client went away first */
            json_decref(rq->late->json);
            free(rq->late->text);
            free(rq->late);
        }
        free(rq->body);
        free(rq);
        *con_cls = NULL;
    }
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    (void)cls;
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') msg[--n] = '\0';
    PT_WARN("api", "%s", msg);
}

int coll_api_start(struct coll_api **out, const struct coll_api_ctx *ctx, const char *host,
                   uint16_t port, char *err, size_t errlen)
{
    struct coll_api *a = calloc(1, sizeof *a);
    if (!a) return -ENOMEM;
    a->ctx = *ctx;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    /* Suspend/resume: the CB-Dragonfly agent install answers after minutes
     * without holding one of the pool's threads. */
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    if (strchr(host, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1) goto bad_addr;
        flags |= MHD_USE_IPv6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        if (inet_pton(AF_INET, host, &s4->sin_addr) != 1) goto bad_addr;
    }
    a->d = MHD_start_daemon(flags, port, NULL, NULL, on_request, a,
                            /* the logger first, so no message escapes it */
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, a, MHD_OPTION_SOCK_ADDR, &ss,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)4, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)512, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, a, MHD_OPTION_END);
    if (!a->d) {
        snprintf(err, errlen, "cannot listen for HTTP on %s:%u (address in use or not local?)",
                 host, port);
        free(a);
        return -EADDRINUSE;
    }
    *out = a;
    return 0;
bad_addr:
    snprintf(err, errlen, "listen.http: \"%s\" is not an IP address", host);
    free(a);
    return -EINVAL;
}

int coll_api_port(const struct coll_api *a)
{
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(a->d, MHD_DAEMON_INFO_BIND_PORT);
    return i ? i->port : -1;
}

void coll_api_stop(struct coll_api *a)
{
    if (!a) return;
    MHD_stop_daemon(a->d);
    free(a);
}
