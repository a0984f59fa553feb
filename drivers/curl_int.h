/* One HTTP exchange on a curl easy handle, shared by the drivers' two
 * transports: http_curl.c (easy, synchronous) and http_multi.c (multi).
 * Only those two files include this (and curl). */
#ifndef DRV_CURL_INT_H
#define DRV_CURL_INT_H

#include <curl/curl.h>

#include "drv_int.h"

struct sink {
    struct drv_buf *b;
    bool too_big;
};

/* The state of one transfer: response body and headers as they arrive. */
struct drv_xfer {
    struct drv_buf body, hdr;
    struct sink sink;
    struct curl_slist *list;
    const char *url; /* req->url, for messages: must outlive the transfer */
};

/* Sets e up for req (every option, from a reset). req (its body) must stay
 * valid until the transfer ends. 0, or -ENOMEM with err set. */
int drv_xfer_setup(CURL *e, struct drv_xfer *x, const struct drv_http_req *req, size_t max_body,
                   struct drv_error *err);
/* After the transfer ended with c: fills resp (moving the buffers) or err
 * (the one CURLcode mapping, DRV_E_TRANSPORT), and cleans x. */
int drv_xfer_finish(CURL *e, struct drv_xfer *x, CURLcode c, struct drv_http_resp *resp,
                    struct drv_error *err);
/* Frees x's buffers and header list (drv_xfer_finish does it). */
void drv_xfer_clean(CURL *e, struct drv_xfer *x);

#endif
