/* Resumable fetches: struct drv_call runs a driver's step function one HTTP
 * exchange at a time, for whoever performs the exchanges (the synchronous
 * fetch below over env.http, or drv_multi over libcurl's multi interface). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drv_int.h"

static void wipe_body(struct drv_call *c)
{
    if (c->body_secret && c->body.p) memset(c->body.p, 0, c->body.cap);
    c->body_secret = false;
}

static void clear_headers(struct drv_call *c)
{
    for (size_t i = 0; i < c->nheaders; i++) {
        /* Headers carry tokens and signatures: wipe them too. */
        memset(c->headers[i], 0, strlen(c->headers[i]));
        free(c->headers[i]);
        c->headers[i] = NULL;
    }
    c->nheaders = 0;
}

static void call_init(struct drv_call *c, struct drv *d,
                      int (*step)(struct drv *, struct drv_call *, const struct drv_http_resp *),
                      const char *driver)
{
    memset(c, 0, sizeof *c);
    c->d = d;
    c->step = step;
    c->rc = 1;
    drv_result_init(&c->res, driver);
    drv_buf_init(&c->cursor, DRV_BUF_MAX);
    drv_buf_init(&c->url, DRV_BUF_MAX);
    drv_buf_init(&c->body, DRV_BUF_MAX);
}

static int call_query(struct drv_call *c, const struct drv_query *q)
{
    c->q = *q;
    c->q.instance = NULL;
    if (q->instance) {
        if (!(c->instance = strdup(q->instance))) return -ENOMEM;
        c->q.instance = c->instance;
    }
    return 0;
}

static void call_release(struct drv_call *c)
{
    wipe_body(c);
    clear_headers(c);
    drv_buf_free(&c->url);
    drv_buf_free(&c->body);
    drv_buf_free(&c->cursor);
    if (c->priv_free) c->priv_free(c->priv);
    c->priv = NULL;
    free(c->instance);
    c->instance = NULL;
}

void drv_call_req(struct drv_call *c, const char *method, long timeout_ms)
{
    wipe_body(c);
    clear_headers(c);
    c->url.len = c->body.len = 0;
    if (c->url.p) c->url.p[0] = '\0';
    if (c->body.p) c->body.p[0] = '\0';
    c->method = method;
    c->user = c->password = NULL;
    c->timeout_ms = timeout_ms;
}

int drv_call_header(struct drv_call *c, const char *fmt, ...)
{
    if (c->nheaders == DRV_MAX_HEADERS) return -E2BIG;
    va_list ap;
    va_start(ap, fmt);
    char *h = NULL;
    int n = vasprintf(&h, fmt, ap);
    va_end(ap);
    if (n < 0) return -ENOMEM;
    c->headers[c->nheaders++] = h;
    return 0;
}

int drv_call_send(struct drv_call *c, int rc, const char *what)
{
    if (rc < 0) return drv_err_set(&c->err, rc, 0, NULL, NULL, "%s: request too large", what);
    /* The url buffer is NUL-terminated once anything was appended. */
    if (!c->url.p) return drv_err_set(&c->err, DRV_E_CONFIG, 0, NULL, NULL, "%s: no URL", what);
    c->req = (struct drv_http_req){
        .method = c->method,
        .url = c->url.p,
        .headers = (const char *const *)c->headers,
        .nheaders = c->nheaders,
        .body = c->body.len ? c->body.p : NULL,
        .body_len = c->body.len,
        .user = c->user,
        .password = c->password,
        .timeout_ms = c->timeout_ms,
    };
    return DRV_STEP_SEND;
}

/* Runs one step and records how the call stands. */
static int run_step(struct drv_call *c, const struct drv_http_resp *resp,
                    const struct drv_http_req **req)
{
    if (c->rc != 1) return c->rc; /* already over */
    int rc = c->step(c->d, c, resp);
    if (rc == DRV_STEP_SEND) {
        c->nrequests++;
        if (req) *req = &c->req;
        return 1;
    }
    if (rc < 0 && c->err.code == 0)
        drv_err_set(&c->err, rc, 0, NULL, NULL, "%s: %s", c->res.driver, drv_strerror(rc));
    c->rc = rc < 0 ? rc : 0;
    return c->rc;
}

struct drv_call *drv_call_new(const struct drv_ops *ops, struct drv *d, const struct drv_query *q)
{
    if (!ops->step) return NULL;
    struct drv_call *c = malloc(sizeof *c);
    if (!c) return NULL;
    call_init(c, d, ops->step, ops->name);
    if (call_query(c, q) < 0) {
        drv_call_free(c);
        return NULL;
    }
    return c;
}

int drv_call_next(struct drv_call *c, const struct drv_http_resp *resp,
                  const struct drv_http_req **req)
{
    return run_step(c, resp, req);
}

int drv_call_fail(struct drv_call *c, const struct drv_error *e)
{
    if (c->rc != 1) return c->rc < 0 ? c->rc : DRV_E_TRANSPORT;
    c->err = *e;
    if (c->err.code >= 0) c->err.code = DRV_E_TRANSPORT;
    c->rc = c->err.code;
    return c->rc;
}

struct drv_result *drv_call_result(struct drv_call *c)
{
    return &c->res;
}

const struct drv_error *drv_call_error(const struct drv_call *c)
{
    return &c->err;
}

unsigned drv_call_requests(const struct drv_call *c)
{
    return c->nrequests;
}

void drv_call_free(struct drv_call *c)
{
    if (!c) return;
    call_release(c);
    drv_result_free(&c->res);
    free(c);
}

int drv_fetch_steps(const struct drv_ops *ops, struct drv *d, const struct drv_query *q,
                    struct drv_result *res, struct drv_error *err)
{
    /* Every driver's struct drv starts with its env (DRV_ENV_FIRST). */
    const struct drv_env *env = (const struct drv_env *)d;
    struct drv_call c;
    memset(err, 0, sizeof *err);
    call_init(&c, d, ops->step, ops->name);
    int rc = call_query(&c, q);
    if (rc < 0) {
        drv_err_set(&c.err, rc, 0, NULL, NULL, "out of memory");
        c.rc = rc;
    }
    const struct drv_http_req *req;
    struct drv_http_resp resp;
    for (rc = c.rc == 1 ? run_step(&c, NULL, &req) : c.rc; rc == 1;) {
        if (drv_http_do(env, req, &resp, &c.err) < 0) {
            rc = drv_call_fail(&c, &c.err);
            break;
        }
        rc = run_step(&c, &resp, &req);
        drv_http_resp_free(&resp);
    }
    call_release(&c);
    *res = c.res;
    *err = c.err;
    return rc;
}
