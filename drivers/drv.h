/* libpantala-drivers: agentless metrics from the clouds' own monitoring APIs
 * (DESIGN §10, METRICS.md "Agentless (driver) metrics").
 *
 * One ops table per cloud (struct drv_ops, one file each: aws.c, azure.c,
 * gcp.c, alibaba.c, tencent.c, openstack.c, ncp.c, cbspider.c). A caller
 * (the agentless poller in pantalad) does:
 *
 *   const struct drv_ops *ops = drv_lookup("aws");
 *   struct drv *d;
 *   struct drv_error e;
 *   if (ops->create(conf_json, &env, &d, &e) < 0) log e.message;
 *   struct drv_query q = {.metrics = DRV_MASK_ALL, .from = t0, .to = t1, .period_s = 60};
 *   struct drv_result r;
 *   int rc = ops->fetch(d, &q, &r, &e);   // 0: r filled (per-metric status inside)
 *   ... store r.series[i] tagged source=agentless, driver=<ops->name>, plus r.series[i].tags ...
 *   drv_result_free(&r);
 *   ops->destroy(d);
 *
 * Two ways to run a fetch, one code path (the driver's step function):
 *  - fetch() is synchronous and does every HTTP exchange through env.http
 *    (tests inject a transport; drv_fetch and simple callers use the curl
 *    easy transport);
 *  - a struct drv_call is the same fetch as a resumable state machine: it
 *    hands out one request at a time and is fed the answer, so one thread
 *    can run hundreds of fetches at once on libcurl's multi interface
 *    (struct drv_multi, http_multi.c; the agentless poller's path).
 *
 * Threading: a struct drv is used by one thread at a time, and by one fetch
 * or call at a time (it caches tokens); different drivers may run in
 * different threads at once.
 *
 * Errors: functions return 0 or a negative code, DRV_E_* below or -errno.
 * Whole-request failures (auth, throttling, transport ...) are returned by
 * fetch() with the provider's code, message and request id in struct
 * drv_error; a failure of one metric only (a per-metric errorCode inside a
 * 200, no data) is recorded in drv_result.status[] and fetch() returns 0.
 * Credentials never appear in drv_error or in the log. */
#ifndef DRV_H
#define DRV_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* The normalised agentless metrics, METRICS.md. */
enum drv_metric {
    DRV_M_CPU = 0,    /* cpu_utilization, % of the VM's vCPUs */
    DRV_M_MEM,        /* mem_utilization, % of the VM's memory */
    DRV_M_KB_READ,    /* kb_read, KiB/s read from disks */
    DRV_M_KB_WRITTEN, /* kb_written, KiB/s written to disks */
    DRV_M_OPS_READ,   /* ops_read, read operations/s */
    DRV_M_OPS_WRITE,  /* ops_write, write operations/s */
    DRV_M_BYTES_IN,   /* bytes_in, network bytes/s received */
    DRV_M_BYTES_OUT,  /* bytes_out, network bytes/s sent */
    DRV_M_COUNT
};
#define DRV_MASK(m)  (1u << (m))
#define DRV_MASK_ALL ((1u << DRV_M_COUNT) - 1u)

/* "cpu_utilization" ... and "%", "KiB/s", "ops/s", "bytes/s"; NULL if out of range. */
const char *drv_metric_name(enum drv_metric m);
const char *drv_metric_unit(enum drv_metric m);
/* Name → enum, -1 when unknown. */
int drv_metric_parse(const char *name);

/* Error codes, in their own range (pt_err.h uses -4000...). */
enum drv_err {
    DRV_E_BASE = -4200,
    DRV_E_AUTH,        /* credentials rejected (401, bad signature, expired key) */
    DRV_E_FORBIDDEN,   /* authenticated but not allowed (403, missing IAM permission) */
    DRV_E_NOTFOUND,    /* instance, resource or endpoint does not exist */
    DRV_E_THROTTLED,   /* rate limited; drv_error.retry_after_s says when to retry */
    DRV_E_BADREQUEST,  /* the provider refused the request as malformed */
    DRV_E_UNSUPPORTED, /* metric not available from this cloud without its own agent */
    DRV_E_NODATA,      /* the provider answered, with no points for the range */
    DRV_E_TRANSPORT,   /* connect, TLS, timeout, 5xx */
    DRV_E_PARSE,       /* response not shaped as documented */
    DRV_E_CONFIG,      /* driver configuration missing or wrong */
    DRV_E_LAST
};
/* Static description of a code (DRV_E_*, or anything pt_strerror() knows). */
const char *drv_strerror(int code);

/* What went wrong, for the log. provider_code/message/request_id are the
 * provider's own (e.g. "Throttling", "AuthFailure.SignatureFailure"). */
struct drv_error {
    int code;          /* DRV_E_* or -errno; 0 when no error */
    int http_status;   /* 0 when no HTTP answer */
    int retry_after_s; /* DRV_E_THROTTLED: seconds to wait (Retry-After or a default) */
    char provider_code[64];
    char message[256];
    char request_id[96];
};

/* ---- Injected HTTP transport -------------------------------------------- */

struct drv_http_req {
    const char *method;         /* "GET", "POST" */
    const char *url;            /* absolute, already percent-encoded */
    const char *const *headers; /* "Name: value" lines, nheaders of them */
    size_t nheaders;
    const char *body; /* NULL for none */
    size_t body_len;
    const char *user, *password; /* HTTP basic auth, both NULL for none */
    long timeout_ms;             /* whole exchange; 0: the transport's default */
};

struct drv_http_resp {
    long status; /* HTTP status */
    char *body;  /* NUL-terminated; owned by the response */
    size_t body_len;
    char *headers; /* raw header block "Name: value\r\n..." of the final response */
    size_t headers_len;
};
void drv_http_resp_free(struct drv_http_resp *r);
/* Value of header name (case-insensitive) copied into out; 0 or -ENOENT. */
int drv_http_resp_header(const struct drv_http_resp *r, const char *name, char *out, size_t outlen);

/* request() returns 0 with resp filled (any HTTP status), or a negative
 * code (DRV_E_TRANSPORT) with err->message set and resp empty. */
struct drv_http {
    int (*request)(struct drv_http *h, const struct drv_http_req *req, struct drv_http_resp *resp,
                   struct drv_error *err);
    void (*free)(struct drv_http *h);
    void *ud;
};
/* The real transport: libcurl easy, one handle reused across requests.
 * max_body caps a response (0: 16 MiB). Returns NULL when out of memory. */
struct drv_http *drv_http_curl_new(size_t max_body);

/* ---- Injected clock and randomness --------------------------------------- */

struct drv_clock {
    int64_t (*now_ms)(void *ud);                            /* wall clock, Unix ms */
    void (*random)(void *ud, unsigned char *buf, size_t n); /* nonces */
    void *ud;
};
/* The system clock and OpenSSL RAND_bytes. */
extern const struct drv_clock drv_clock_system;

/* ---- The ops table ------------------------------------------------------- */

struct drv_env {
    struct drv_http *http;         /* required; not owned */
    const struct drv_clock *clock; /* NULL: drv_clock_system */
};

/* One query: metrics (a DRV_MASK set) of one instance over [from, to),
 * aggregated to period_s buckets (rounded up to what the cloud offers). */
struct drv_query {
    unsigned metrics;
    int64_t from, to;     /* Unix seconds */
    int period_s;         /* 0: 60 */
    const char *instance; /* NULL: the instance of the configuration */
};

struct drv_point {
    int64_t ts; /* Unix seconds, start of the period */
    double value;
};

/* One normalised series. Tags beyond source/driver: "disk" or "interface"
 * where the cloud gives per-device data (absent for instance totals). */
struct drv_series {
    enum drv_metric metric;
    const char *name, *unit; /* static: drv_metric_name/unit(metric) */
    char tag_key[16];        /* "" or "disk"/"interface" */
    char tag_value[128];
    struct drv_point *points; /* ascending ts, n of them */
    size_t n, cap;
};

struct drv_result {
    const char *driver; /* ops->name, for the driver=<name> tag */
    struct drv_series *series;
    size_t n, cap;
    /* Per requested metric: 0 (series present), DRV_E_UNSUPPORTED,
     * DRV_E_NODATA, or the provider's per-metric error (detail in
     * metric_error[m]). Unrequested metrics stay 0 and have no series. */
    int status[DRV_M_COUNT];
    struct drv_error metric_error[DRV_M_COUNT];
};
void drv_result_free(struct drv_result *r);

struct drv;      /* a configured driver instance, opaque */
struct drv_call; /* one fetch in progress, opaque (below) */

struct drv_ops {
    const char
        *name; /* "aws", "azure", "gcp", "alibaba", "tencent", "openstack", "ncp", "cbspider" */
    /* conf: the driver's JSON object (keys in docs/drivers.md), borrowed for
     * the call only (strings are copied). env->http must outlive the driver. */
    int (*create)(const json_t *conf, const struct drv_env *env, struct drv **out,
                  struct drv_error *err);
    /* 1 when the cloud gives metric without its own agent, else 0. */
    int (*supports)(const struct drv *d, enum drv_metric m);
    /* Fills *res (always initialised, free it with drv_result_free even on error). */
    int (*fetch)(struct drv *d, const struct drv_query *q, struct drv_result *res,
                 struct drv_error *err);
    /* The fetch as a state machine, driven through struct drv_call (below);
     * fetch() is this step run in a loop over env.http. */
    int (*step)(struct drv *d, struct drv_call *c, const struct drv_http_resp *resp);
    void (*destroy)(struct drv *d);
};

/* ---- Resumable fetches --------------------------------------------------- */

/* One fetch of d as a state machine. The caller performs the HTTP exchanges
 * however it likes (drv_multi does them on libcurl's multi interface):
 *
 *   struct drv_call *c = drv_call_new(ops, d, &q);     // NULL: out of memory
 *   const struct drv_http_req *req;
 *   int rc = drv_call_next(c, NULL, &req);             // first step
 *   while (rc == 1) {                                  // perform *req ...
 *       rc = ok ? drv_call_next(c, &resp, &req)        // ... feed its answer
 *               : drv_call_fail(c, &transport_error);
 *   }
 *   rc == 0: drv_call_result(c) holds the series; rc < 0: drv_call_error(c).
 *   drv_call_free(c);
 *
 * *req is owned by the call and valid until the next drv_call_next/fail/
 * free; resp stays the caller's. The query (and its instance string) is
 * copied. d must outlive the call and run no other fetch meanwhile. */
struct drv_call *drv_call_new(const struct drv_ops *ops, struct drv *d, const struct drv_query *q);
/* 1: *req is the next exchange to perform; 0: finished; < 0: failed. */
int drv_call_next(struct drv_call *c, const struct drv_http_resp *resp,
                  const struct drv_http_req **req);
/* The exchange *req could not be performed (e is the transport's error):
 * the call fails with it. Returns e->code (negative). */
int drv_call_fail(struct drv_call *c, const struct drv_error *e);
/* The result (also after a failure: what was fetched before it, empty when
 * nothing). The caller may move it out (copy the struct, then
 * drv_result_init the original) before drv_call_free. */
struct drv_result *drv_call_result(struct drv_call *c);
const struct drv_error *drv_call_error(const struct drv_call *c);
/* The number of HTTP exchanges the call asked for so far. */
unsigned drv_call_requests(const struct drv_call *c);
void drv_call_free(struct drv_call *c);

/* ---- Many calls at once on libcurl's multi interface --------------------- */

/* A thread of its own running a curl multi handle: submitted calls make
 * their requests concurrently over shared, kept-alive connections; each
 * call's steps (signing, parsing) run on that thread, and done() is called
 * there when the call ends (rc 0 or < 0, -ECANCELED when the multi is freed
 * first). done() may submit again. */
struct drv_multi;
struct drv_multi_opts {
    size_t max_body;         /* ceiling of one response; 0: 16 MiB */
    long max_host_conns;     /* connections per host at once; 0: 8 */
    long max_total_conns;    /* connections at once; 0: 64 */
    const char *thread_name; /* NULL: "pt-drv-multi" */
};
int drv_multi_new(struct drv_multi **out, const struct drv_multi_opts *o);
typedef void (*drv_multi_done_fn)(void *ud, struct drv_call *c, int rc);
/* Takes c (and frees it after done() returns). 0, or -ECANCELED when the
 * multi is shutting down (c is then still the caller's). Any thread. */
int drv_multi_submit(struct drv_multi *m, struct drv_call *c, drv_multi_done_fn done, void *ud);
/* Calls in flight (submitted, not yet done). */
size_t drv_multi_active(struct drv_multi *m);
/* Stops the thread: calls still in flight end with -ECANCELED (done() is
 * called for each, on the calling thread, before this returns). */
void drv_multi_free(struct drv_multi *m);

/* The driver named name, NULL when unknown. */
const struct drv_ops *drv_lookup(const char *name);
/* Every driver, NULL-terminated. */
extern const struct drv_ops *const drv_all[];

#endif
