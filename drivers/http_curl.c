/* The real HTTP transport of the drivers: libcurl easy, one handle reused
 * (connections and TLS sessions kept alive between a driver's requests).
 * This is the only file of the project's drivers that includes curl. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "drv_int.h"

struct curl_http {
    struct drv_http base;
    CURL *easy;
    size_t max_body;
};

struct sink {
    struct drv_buf *b;
    bool too_big;
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

static int curl_request(struct drv_http *h, const struct drv_http_req *req,
                        struct drv_http_resp *resp, struct drv_error *err)
{
    struct curl_http *ch = (struct curl_http *)h;
    CURL *e = ch->easy;
    struct drv_buf body, hdr;
    drv_buf_init(&body, ch->max_body);
    drv_buf_init(&hdr, 64 * 1024);
    struct sink sink = {&body, false};
    struct curl_slist *list = NULL;
    int rc = 0;

    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 30000L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &hdr);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "pantala-drivers/1");
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* gzip/deflate as offered */
    if (strcmp(req->method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(req->body ? req->body_len : 0));
    }
    for (size_t i = 0; i < req->nheaders; i++) {
        struct curl_slist *l = curl_slist_append(list, req->headers[i]);
        if (!l) {
            rc = drv_err_set(err, -ENOMEM, 0, NULL, NULL, "out of memory");
            goto out;
        }
        list = l;
    }
    /* libcurl would add "Expect: 100-continue" to large POSTs; signatures
     * do not cover it, but it costs a round trip for nothing. */
    struct curl_slist *l = curl_slist_append(list, "Expect:");
    if (l) list = l;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, list);
    if (req->user) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, req->user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, req->password ? req->password : "");
    }

    CURLcode c = curl_easy_perform(e);
    if (c != CURLE_OK) {
        if (sink.too_big)
            rc = drv_err_set(err, DRV_E_TRANSPORT, 0, NULL, NULL,
                             "%s: response larger than %zu bytes", req->url, body.max);
        else
            rc = map_curl(c, req->url, err);
        goto out;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &resp->status);
    if (drv_buf_add(&body, "", 0) < 0 || drv_buf_add(&hdr, "", 0) < 0) {
        rc = drv_err_set(err, -ENOMEM, 0, NULL, NULL, "out of memory");
        goto out;
    }
    resp->body = body.p;
    resp->body_len = body.len;
    resp->headers = hdr.p;
    resp->headers_len = hdr.len;
    body.p = hdr.p = NULL;
out:
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(list);
    drv_buf_free(&body);
    drv_buf_free(&hdr);
    return rc;
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
