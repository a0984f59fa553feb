/* Private helpers shared by the drivers and the signers: bounded buffers,
 * encodings, time formats, error building, result building, config access.
 * Only files under drivers/ (and the drivers' unit tests) include this. */
#ifndef DRV_INT_H
#define DRV_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "drv.h"
#include "pt/log.h"

#define DRV_LOG "drivers"

/* A growable string with a ceiling (curl's dynbuf): appends fail with
 * -E2BIG past max, -ENOMEM when out of memory; p is always NUL-terminated
 * once anything was appended. */
struct drv_buf {
    char *p;
    size_t len, cap, max;
};
#define DRV_BUF_MAX (1u << 20) /* 1 MiB: ample for any request we build */
void drv_buf_init(struct drv_buf *b, size_t max);
void drv_buf_free(struct drv_buf *b);
int drv_buf_add(struct drv_buf *b, const void *data, size_t n);
int drv_buf_adds(struct drv_buf *b, const char *s);
int drv_buf_addf(struct drv_buf *b, const char *fmt, ...) PT_PRINTF(2, 3);
/* The content as a C string ("" when empty). */
const char *drv_buf_str(const struct drv_buf *b);

/* Percent-encodes s per RFC 3986: everything but A-Z a-z 0-9 - _ . ~ becomes
 * %XX (upper-case hex). keep_slash leaves '/' alone (paths). This is the
 * encoding SigV4, Alibaba RPC v1 and the query strings of every driver need. */
int drv_pct_encode(struct drv_buf *b, const char *s, bool keep_slash);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void drv_hex(const unsigned char *in, size_t n, char *out);
/* Standard base64 (with padding) or base64url (no padding) into b. */
int drv_base64(struct drv_buf *b, const unsigned char *in, size_t n, bool url);

/* SHA-256 hex of data (out: 65 bytes); HMAC-SHA256 / HMAC-SHA1 raw. */
void drv_sha256_hex(const void *data, size_t n, char out[65]);
void drv_hmac_sha256(const void *key, size_t klen, const void *data, size_t n,
                     unsigned char out[32]);
void drv_hmac_sha1(const void *key, size_t klen, const void *data, size_t n, unsigned char out[20]);

/* Times, UTC. fmt: strftime format. Returns 0 or -EINVAL. */
int drv_fmt_time(int64_t ts, const char *fmt, char *out, size_t outlen);
/* Parses RFC 3339 / ISO 8601 ("2026-11-21T07:00:00Z", ".123Z", "+08:00",
 * "+0000", or a space instead of T) to Unix seconds. 0 or -EINVAL. */
int drv_parse_time(const char *s, int64_t *ts);

/* Now, through the injected clock. */
int64_t drv_now_ms(const struct drv_env *env);
void drv_random_hex(const struct drv_env *env, char *out, size_t nbytes); /* out: 2n+1 */

/* Error building. Fills every field; provider strings may be NULL. Returns code. */
int drv_err_set(struct drv_error *e, int code, int http_status, const char *pcode,
                const char *request_id, const char *fmt, ...) PT_PRINTF(6, 7);
/* The common HTTP status mapping: 401 auth, 403 forbidden, 404 not found,
 * 429 throttled, other 4xx bad request, 5xx transport; 0 for 2xx. */
int drv_err_from_status(long status);
/* Retry-After (seconds or an HTTP date) of resp, else dflt. */
int drv_retry_after(const struct drv_http_resp *resp, const struct drv_env *env, int dflt);

/* Result building. */
void drv_result_init(struct drv_result *r, const char *driver);
/* The series of (metric, tag) in r, created when absent; NULL on ENOMEM. */
struct drv_series *drv_result_series(struct drv_result *r, enum drv_metric m, const char *tag_key,
                                     const char *tag_value);
int drv_series_push(struct drv_series *s, int64_t ts, double v);
/* Sorts points by ts and drops duplicates of a timestamp (the later kept). */
void drv_series_sort(struct drv_series *s);
/* After a fetch: every requested metric without a series and without a
 * status gets DRV_E_NODATA; unsupported ones DRV_E_UNSUPPORTED. */
void drv_result_finish(struct drv_result *r, unsigned requested, unsigned supported);
/* Records a per-metric error. */
void drv_result_metric_error(struct drv_result *r, enum drv_metric m, const struct drv_error *e);

/* Config: a string member, copied (strdup) into *out. required: a missing
 * key is DRV_E_CONFIG naming it; optional: *out = dflt copy (or NULL). */
int drv_conf_str(const json_t *conf, const char *key, bool required, const char *dflt, char **out,
                 struct drv_error *err);
/* Optional integer member, dflt when absent. */
int drv_conf_int(const json_t *conf, const char *key, long dflt, long *out, struct drv_error *err);

/* One HTTP exchange through env->http with the common status mapping left
 * to the caller. Sets err on transport failure. */
int drv_http_do(const struct drv_env *env, const struct drv_http_req *req,
                struct drv_http_resp *resp, struct drv_error *err);

/* The authority ("host" or "host:port") and the path ("/" when none) of an
 * absolute http(s) URL. 0 or -EINVAL. */
int drv_url_split(const char *url, char *host, size_t hostlen, char *path, size_t pathlen);

/* Appends "k=v" (each percent-encoded, '&' before all but the first) to a
 * query string or form body. */
int drv_form_add(struct drv_buf *b, const char *k, const char *v);

/* Appends j as compact JSON to b and drops the reference (a NULL j, from a
 * failed json_pack, is -ENOMEM). The temporary text is wiped. */
int drv_buf_add_json(struct drv_buf *b, json_t *j);

/* Parses a response body as JSON (*out owned by the caller). DRV_E_PARSE,
 * naming what, when it is not JSON. */
int drv_json_body(const struct drv_http_resp *r, json_t **out, const char *what,
                  struct drv_error *err);
/* A number member that may be a JSON number or a numeric string (clouds
 * send both); true when present and numeric. */
bool drv_json_num(const json_t *v, double *out);

/* Strips a trailing '/' from a base URL in place. */
void drv_trim_slash(char *url);

/* An OAuth2 bearer token a driver caches between its fetches (azure, gcp).
 * asked_ms is the clock when the token request was built: expires_in counts
 * from then, a little before the answer, which errs on the early side. */
struct drv_oauth_token {
    char *value; /* NULL: none */
    int64_t expires_ms, asked_ms;
};
/* true when t holds a token good for five more minutes (by env's clock). */
bool drv_oauth_fresh(const struct drv_oauth_token *t, const struct drv_env *env);
/* Takes a token endpoint's 200 answer {"access_token", "expires_in"} into t.
 * DRV_E_PARSE naming what when it is not shaped so, -ENOMEM. */
int drv_oauth_take(struct drv_oauth_token *t, const struct drv_http_resp *resp, const char *what,
                   struct drv_error *err);
/* Forgets the token (wiped first). */
void drv_oauth_drop(struct drv_oauth_token *t);

/* ---- Steps: how a driver writes its fetch --------------------------------
 *
 * A driver's fetch is one function, its step: called first with resp NULL,
 * then once with the answer to each request it asked for. It keeps its
 * place in c->stage / c->index / c->cursor (and c->priv for more), and
 * returns
 *   DRV_STEP_SEND  after building the next request in c (drv_call_req()
 *                  then c->url, c->body, drv_call_header());
 *   0              when done (after drv_result_finish(&c->res, ...));
 *   < 0            on failure, with c->err set (drv_err_set(&c->err, ...)).
 * A transport failure never reaches the step: the call fails with it.
 * Every driver's struct drv starts with its struct drv_env (DRV_ENV_FIRST),
 * so the synchronous runner finds the transport. */
#define DRV_STEP_SEND       1
#define DRV_MAX_HEADERS     8
#define DRV_ENV_FIRST(type) _Static_assert(offsetof(type, env) == 0, #type " must start with env")

struct drv_call {
    struct drv *d;
    int (*step)(struct drv *d, struct drv_call *c, const struct drv_http_resp *resp);
    struct drv_query q; /* q.instance points into instance (or is NULL) */
    char *instance;
    struct drv_result res;
    struct drv_error err;
    unsigned nrequests;
    int rc; /* 1 while running, then 0 or the failure */

    /* The driver's place: free for its use, zero at the start. */
    int stage, index, attempt;
    long period;           /* e.g. the period the cloud will use */
    int64_t now_s;         /* e.g. the clock at the first step */
    struct drv_buf cursor; /* a paging token, DRV_BUF_MAX */
    void *priv;
    void (*priv_free)(void *priv);

    /* The request being asked for. */
    const char *method;
    struct drv_buf url, body;
    bool body_secret; /* wiped before it is freed or reused */
    char *headers[DRV_MAX_HEADERS];
    size_t nheaders;
    const char *user, *password; /* borrowed from the driver */
    long timeout_ms;
    struct drv_http_req req;
};

/* Starts a new request in c: method ("GET", "POST"), timeout; empties url,
 * body and headers (wiping a secret body). */
void drv_call_req(struct drv_call *c, const char *method, long timeout_ms);
/* Adds a "Name: value" header line; -E2BIG past DRV_MAX_HEADERS, -ENOMEM. */
int drv_call_header(struct drv_call *c, const char *fmt, ...) PT_PRINTF(2, 3);
/* Ends the step asking for the request built in c: DRV_STEP_SEND, or a
 * failure (c->err set) when building it failed (rc < 0 from the appends). */
int drv_call_send(struct drv_call *c, int rc, const char *what);

/* The synchronous fetch of ops->step over d's env.http: what every
 * driver's fetch op is. */
int drv_fetch_steps(const struct drv_ops *ops, struct drv *d, const struct drv_query *q,
                    struct drv_result *res, struct drv_error *err);

/* For drivers asking one metric at a time: moves c->index to the first
 * metric of mask from c->index on; false when none is left. */
bool drv_step_metric(struct drv_call *c, unsigned mask);
/* After a request for metric m failed with rc (details in c->err): a
 * refusal of that one metric (bad request, not found) becomes m's error in
 * the result and the fetch goes on (returns 0, c->err cleared); anything
 * else (auth, throttling, transport) is returned to stop the fetch. */
int drv_metric_refused(struct drv_call *c, enum drv_metric m, int rc);

#endif
