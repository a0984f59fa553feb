/* The real HTTP transport of the drivers: libcurl easy, one handle reused
 * (connections and TLS sessions kept alive between a driver's requests),
 * and the transfer set-up it shares with http_multi.c (curl_int.h). These
 * two files are the only ones of the drivers that include curl. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "curl_int.h"

struct curl_http {
    struct drv_http base;
    CURL *easy;
    size_t max_body;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct sink *s = ud;
    if (drv_buf_add(s->b, p, size * n) < 0) {
        s->too_big = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct drv_buf *b = ud;
    /* A new status line starts the headers of the next response (after a
     * 100-continue or a redirect): keep only the final response's. */
    if (size * n >= 5 && strncmp(p, "HTTP/", 5) == 0) b->len = 0;
    if (drv_buf_add(b, p, size * n) < 0) return 0;
    return size * n;
}

/* CURLcode → the drivers' common error, once, here. */
static int map_curl(CURLcode c, const char *url, struct drv_error *err)
{
    return drv_err_set(err, DRV_E_TRANSPORT, 0, NULL, NULL, "%s: %s", url, curl_easy_strerror(c));
}

int drv_xfer_setup(CURL *e, struct drv_xfer *x, const struct drv_http_req *req, size_t max_body,
                   struct drv_error *err)
{
    drv_buf_init(&x->body, max_body);
    drv_buf_init(&x->hdr, 64 * 1024);
    x->sink = (struct sink){&x->body, false};
    x->list = NULL;
    x->url = req->url;

    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 30000L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &x->sink);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &x->hdr);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "pantala-drivers/1");
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* gzip/deflate as offered */
    if (strcmp(req->method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        /* Not copied by libcurl: req->body must live until the transfer ends. */
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(req->body ? req->body_len : 0));
    }
    for (size_t i = 0; i < req->nheaders; i++) {
        struct curl_slist *l = curl_slist_append(x->list, req->headers[i]);
        if (!l) {
            drv_xfer_clean(e, x);
            return drv_err_set(err, -ENOMEM, 0, NULL, NULL, "out of memory");
        }
        x->list = l;
    }
    /* libcurl would add "Expect: 100-continue" to large POSTs; signatures
     * do not cover it, but it costs a round trip for nothing. */
    struct curl_slist *l = curl_slist_append(x->list, "Expect:");
    if (l) x->list = l;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->list);
    if (req->user) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, req->user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, req->password ? req->password : "");
    }
    return 0;
}

int drv_xfer_finish(CURL *e, struct drv_xfer *x, CURLcode c, struct drv_http_resp *resp,
                    struct drv_error *err)
{
    int rc = 0;
    memset(resp, 0, sizeof *resp);
    if (c != CURLE_OK) {
        if (x->sink.too_big)
            rc = drv_err_set(err, DRV_E_TRANSPORT, 0, NULL, NULL,
                             "%s: response larger than %zu bytes", x->url, x->body.max);
        else
            rc = map_curl(c, x->url, err);
    } else if (drv_buf_add(&x->body, "", 0) < 0 || drv_buf_add(&x->hdr, "", 0) < 0) {
        rc = drv_err_set(err, -ENOMEM, 0, NULL, NULL, "out of memory");
    } else {
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &resp->status);
        resp->body = x->body.p;
        resp->body_len = x->body.len;
        resp->headers = x->hdr.p;
        resp->headers_len = x->hdr.len;
        x->body.p = x->hdr.p = NULL;
    }
    drv_xfer_clean(e, x);
    return rc;
}

void drv_xfer_clean(CURL *e, struct drv_xfer *x)
{
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(x->list);
    x->list = NULL;
    drv_buf_free(&x->body);
    drv_buf_free(&x->hdr);
}

static int curl_request(struct drv_http *h, const struct drv_http_req *req,
                        struct drv_http_resp *resp, struct drv_error *err)
{
    struct curl_http *ch = (struct curl_http *)h;
    struct drv_xfer x;
    memset(resp, 0, sizeof *resp);
    int rc = drv_xfer_setup(ch->easy, &x, req, ch->max_body, err);
    if (rc < 0) return rc;
    return drv_xfer_finish(ch->easy, &x, curl_easy_perform(ch->easy), resp, err);
}

static void curl_free_http(struct drv_http *h)
{
    struct curl_http *ch = (struct curl_http *)h;
    if (!ch) return;
    curl_easy_cleanup(ch->easy);
    free(ch);
}

struct drv_http *drv_http_curl_new(size_t max_body)
{
    /* curl_global_init is idempotent and counted; the collector calls it at
     * start-up before threads exist, as libcurl requires. */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct curl_http *ch = calloc(1, sizeof *ch);
    if (!ch) return NULL;
    ch->easy = curl_easy_init();
    if (!ch->easy) {
        free(ch);
        return NULL;
    }
    ch->max_body = max_body ? max_body : 16u << 20;
    ch->base.request = curl_request;
    ch->base.free = curl_free_http;
    ch->base.ud = ch;
    return &ch->base;
}
