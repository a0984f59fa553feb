/* Shared helpers of the drivers: bounded buffers, percent/base64/hex
 * encodings, hashes, UTC time formats, error and result building, the
 * OAuth2 bearer token cache. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "drv_int.h"
#include "pt/err.h"

void drv_buf_init(struct drv_buf *b, size_t max)
{
    b->p = NULL;
    b->len = b->cap = 0;
    b->max = max ? max : DRV_BUF_MAX;
}

void drv_buf_free(struct drv_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

int drv_buf_add(struct drv_buf *b, const void *data, size_t n)
{
    if (n > b->max || b->len + n > b->max) return -E2BIG;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return -ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int drv_buf_adds(struct drv_buf *b, const char *s)
{
    return drv_buf_add(b, s, strlen(s));
}

int drv_buf_addf(struct drv_buf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return -EINVAL;
    if ((size_t)n < sizeof small) return drv_buf_add(b, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big) return -ENOMEM;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = drv_buf_add(b, big, (size_t)n);
    free(big);
    return rc;
}

const char *drv_buf_str(const struct drv_buf *b)
{
    return b->p ? b->p : "";
}

int drv_pct_encode(struct drv_buf *b, const char *s, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int rc;
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~' ||
            (keep_slash && *p == '/')) {
            rc = drv_buf_add(b, p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            rc = drv_buf_add(b, e, 3);
        }
        if (rc < 0) return rc;
    }
    return 0;
}

void drv_hex(const unsigned char *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int drv_base64(struct drv_buf *b, const unsigned char *in, size_t n, bool url)
{
    if (n > DRV_BUF_MAX) return -E2BIG;
    size_t outcap = 4 * ((n + 2) / 3) + 1;
    unsigned char *out = malloc(outcap);
    if (!out) return -ENOMEM;
    int len = EVP_EncodeBlock(out, in, (int)n);
    if (url) {
        while (len > 0 && out[len - 1] == '=') len--;
        for (int i = 0; i < len; i++) {
            if (out[i] == '+')
                out[i] = '-';
            else if (out[i] == '/')
                out[i] = '_';
        }
    }
    int rc = drv_buf_add(b, out, (size_t)len);
    free(out);
    return rc;
}

void drv_sha256_hex(const void *data, size_t n, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(data, n, md);
    drv_hex(md, sizeof md, out);
}

void drv_hmac_sha256(const void *key, size_t klen, const void *data, size_t n,
                     unsigned char out[32])
{
    unsigned int len = 32;
    HMAC(EVP_sha256(), key, (int)klen, data, n, out, &len);
}

void drv_hmac_sha1(const void *key, size_t klen, const void *data, size_t n, unsigned char out[20])
{
    unsigned int len = 20;
    HMAC(EVP_sha1(), key, (int)klen, data, n, out, &len);
}

int drv_fmt_time(int64_t ts, const char *fmt, char *out, size_t outlen)
{
    time_t t = (time_t)ts;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) return -EINVAL;
        /* fmt is always one of the drivers' own literal formats. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    size_t n = strftime(out, outlen, fmt, &tm);
#pragma GCC diagnostic pop
    return n == 0 ? -EINVAL : 0;
}

int drv_parse_time(const char *s, int64_t *ts)
{
    int Y, M, D, h = 0, m = 0, sec = 0, used = 0;
    if (!s || sscanf(s, "%4d-%2d-%2d%n", &Y, &M, &D, &used) != 3) return -EINVAL;
    const char *p = s + used;
    if (*p == 'T' || *p == ' ') {
        int u2 = 0;
        if (sscanf(p + 1, "%2d:%2d:%2d%n", &h, &m, &sec, &u2) != 3) return -EINVAL;
        p += 1 + u2;
        if (*p == '.')
            for (p++; isdigit((unsigned char)*p); p++) {}
    }
    long off = 0;
    if (*p == '+' || *p == '-') {
        int oh = 0, om = 0;
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2 && sscanf(p + 1, "%2d%2d", &oh, &om) != 2)
            return -EINVAL;
        off = (oh * 3600L + om * 60L) * (*p == '-' ? -1 : 1);
    } else if (*p != 'Z' && *p != '\0') {
        return -EINVAL;
    }
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60) return -EINVAL;
    /* days from civil (Howard Hinnant), so no TZ environment is involved */
    int y = Y - (M <= 2);
    int era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153u * (unsigned)(M + (M > 2 ? -3 : 9)) + 2) / 5 + (unsigned)D - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = (int64_t)era * 146097 + (int64_t)doe - 719468;
    *ts = days * 86400 + h * 3600 + m * 60 + sec - off;
    return 0;
}

static int64_t sys_now_ms(void *ud)
{
    (void)ud;
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void sys_random(void *ud, unsigned char *buf, size_t n)
{
    (void)ud;
    if (RAND_bytes(buf, (int)n) != 1) {
        /* A nonce only has to be unique per request; fall back to time. */
        int64_t t = sys_now_ms(NULL);
        for (size_t i = 0; i < n; i++)
            buf[i] = (unsigned char)(t >> (8 * (i % 8))) ^ (unsigned char)i;
    }
}

const struct drv_clock drv_clock_system = {sys_now_ms, sys_random, NULL};

int64_t drv_now_ms(const struct drv_env *env)
{
    const struct drv_clock *c = env->clock ? env->clock : &drv_clock_system;
    return c->now_ms(c->ud);
}

void drv_random_hex(const struct drv_env *env, char *out, size_t nbytes)
{
    const struct drv_clock *c = env->clock ? env->clock : &drv_clock_system;
    unsigned char raw[64];
    if (nbytes > sizeof raw) nbytes = sizeof raw;
    c->random(c->ud, raw, nbytes);
    drv_hex(raw, nbytes, out);
}

int drv_err_set(struct drv_error *e, int code, int http_status, const char *pcode,
                const char *request_id, const char *fmt, ...)
{
    if (!e) return code;
    memset(e, 0, sizeof *e);
    e->code = code;
    e->http_status = http_status;
    snprintf(e->provider_code, sizeof e->provider_code, "%s", pcode ? pcode : "");
    snprintf(e->request_id, sizeof e->request_id, "%s", request_id ? request_id : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return code;
}

int drv_err_from_status(long status)
{
    if (status >= 200 && status < 300) return 0;
    switch (status) {
    case 401:
        return DRV_E_AUTH;
    case 403:
        return DRV_E_FORBIDDEN;
    case 404:
        return DRV_E_NOTFOUND;
    case 429:
        return DRV_E_THROTTLED;
    default:
        break;
    }
    if (status >= 400 && status < 500) return DRV_E_BADREQUEST;
    return DRV_E_TRANSPORT;
}

int drv_retry_after(const struct drv_http_resp *resp, const struct drv_env *env, int dflt)
{
    char v[64];
    if (!resp || drv_http_resp_header(resp, "Retry-After", v, sizeof v) < 0) return dflt;
    char *end;
    long s = strtol(v, &end, 10);
    if (end != v && *end == '\0' && s >= 0) return s > 86400 ? 86400 : (int)s;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm)) {
        int64_t at = (int64_t)timegm(&tm), now = drv_now_ms(env) / 1000;
        return at > now ? (int)(at - now) : 0;
    }
    return dflt;
}

static const char *const metric_names[DRV_M_COUNT] = {
    "cpu_utilization", "mem_utilization", "kb_read",  "kb_written",
    "ops_read",        "ops_write",       "bytes_in", "bytes_out",
};
static const char *const metric_units[DRV_M_COUNT] = {
    "%", "%", "KiB/s", "KiB/s", "ops/s", "ops/s", "bytes/s", "bytes/s",
};

const char *drv_metric_name(enum drv_metric m)
{
    return (unsigned)m < DRV_M_COUNT ? metric_names[m] : NULL;
}

const char *drv_metric_unit(enum drv_metric m)
{
    return (unsigned)m < DRV_M_COUNT ? metric_units[m] : NULL;
}

int drv_metric_parse(const char *name)
{
    for (int i = 0; i < DRV_M_COUNT; i++)
        if (name && strcmp(name, metric_names[i]) == 0) return i;
    return -1;
}

void drv_result_init(struct drv_result *r, const char *driver)
{
    memset(r, 0, sizeof *r);
    r->driver = driver;
}

void drv_result_free(struct drv_result *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) free(r->series[i].points);
    free(r->series);
    r->series = NULL;
    r->n = r->cap = 0;
}

struct drv_series *drv_result_series(struct drv_result *r, enum drv_metric m, const char *tag_key,
                                     const char *tag_value)
{
    tag_key = tag_key ? tag_key : "";
    tag_value = tag_value ? tag_value : "";
    for (size_t i = 0; i < r->n; i++) {
        struct drv_series *s = &r->series[i];
        if (s->metric == m && strcmp(s->tag_key, tag_key) == 0 &&
            strcmp(s->tag_value, tag_value) == 0)
            return s;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 8;
        struct drv_series *p = realloc(r->series, cap * sizeof *p);
        if (!p) return NULL;
        r->series = p;
        r->cap = cap;
    }
    struct drv_series *s = &r->series[r->n++];
    memset(s, 0, sizeof *s);
    s->metric = m;
    s->name = drv_metric_name(m);
    s->unit = drv_metric_unit(m);
    snprintf(s->tag_key, sizeof s->tag_key, "%s", tag_key);
    snprintf(s->tag_value, sizeof s->tag_value, "%s", tag_value);
    return s;
}

/* A hostile response cannot make one series grow without bound. */
#define DRV_MAX_POINTS 100000

int drv_series_push(struct drv_series *s, int64_t ts, double v)
{
    if (s->n == s->cap) {
        if (s->cap >= DRV_MAX_POINTS) return -E2BIG;
        size_t cap = s->cap ? 2 * s->cap : 64;
        struct drv_point *p = realloc(s->points, cap * sizeof *p);
        if (!p) return -ENOMEM;
        s->points = p;
        s->cap = cap;
    }
    s->points[s->n].ts = ts;
    s->points[s->n].value = v;
    s->n++;
    return 0;
}

static int point_cmp(const void *a, const void *b)
{
    const struct drv_point *x = a, *y = b;
    return (x->ts > y->ts) - (x->ts < y->ts);
}

void drv_series_sort(struct drv_series *s)
{
    if (s->n < 2) return;
    /* mergesort would keep order among equal ts; duplicates are rare (paging
     * overlap) and carry the same value, so qsort + dedup is enough. */
    qsort(s->points, s->n, sizeof *s->points, point_cmp);
    size_t w = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (w > 0 && s->points[w - 1].ts == s->points[i].ts)
            s->points[w - 1] = s->points[i];
        else
            s->points[w++] = s->points[i];
    }
    s->n = w;
}

void drv_result_metric_error(struct drv_result *r, enum drv_metric m, const struct drv_error *e)
{
    r->status[m] = e->code;
    r->metric_error[m] = *e;
}

void drv_result_finish(struct drv_result *r, unsigned requested, unsigned supported)
{
    for (size_t i = 0; i < r->n; i++) drv_series_sort(&r->series[i]);
    for (int m = 0; m < DRV_M_COUNT; m++) {
        if (!(requested & DRV_MASK(m))) continue;
        if (!(supported & DRV_MASK(m))) {
            struct drv_error e;
            drv_err_set(&e, DRV_E_UNSUPPORTED, 0, NULL, NULL,
                        "%s is not available from %s without the cloud's own agent",
                        drv_metric_name(m), r->driver);
            drv_result_metric_error(r, m, &e);
            continue;
        }
        if (r->status[m]) continue;
        bool have = false;
        for (size_t i = 0; i < r->n; i++)
            if (r->series[i].metric == (enum drv_metric)m && r->series[i].n > 0) have = true;
        if (!have) {
            struct drv_error e;
            drv_err_set(&e, DRV_E_NODATA, 0, NULL, NULL, "no %s points in the requested range",
                        drv_metric_name(m));
            drv_result_metric_error(r, m, &e);
        }
    }
    /* Series left empty (a metric the cloud listed with no points) are dropped. */
    size_t w = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (r->series[i].n == 0)
            free(r->series[i].points);
        else
            r->series[w++] = r->series[i];
    }
    r->n = w;
}

int drv_conf_str(const json_t *conf, const char *key, bool required, const char *dflt, char **out,
                 struct drv_error *err)
{
    *out = NULL;
    const json_t *v = conf ? json_object_get(conf, key) : NULL;
    if (v && !json_is_string(v))
        return drv_err_set(err, DRV_E_CONFIG, 0, NULL, NULL, "config key \"%s\" must be a string",
                           key);
    const char *s = v ? json_string_value(v) : NULL;
    if (s && !*s) s = NULL;
    if (!s && required)
        return drv_err_set(err, DRV_E_CONFIG, 0, NULL, NULL, "config key \"%s\" is required", key);
    if (!s) s = dflt;
    if (!s) return 0;
    *out = strdup(s);
    return *out ? 0 : drv_err_set(err, -ENOMEM, 0, NULL, NULL, "out of memory");
}

int drv_conf_int(const json_t *conf, const char *key, long dflt, long *out, struct drv_error *err)
{
    const json_t *v = conf ? json_object_get(conf, key) : NULL;
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v))
        return drv_err_set(err, DRV_E_CONFIG, 0, NULL, NULL, "config key \"%s\" must be an integer",
                           key);
    *out = (long)json_integer_value(v);
    return 0;
}

int drv_http_do(const struct drv_env *env, const struct drv_http_req *req,
                struct drv_http_resp *resp, struct drv_error *err)
{
    memset(resp, 0, sizeof *resp);
    int rc = env->http->request(env->http, req, resp, err);
    if (rc < 0) {
        drv_http_resp_free(resp);
        if (err && err->code == 0)
            drv_err_set(err, rc, 0, NULL, NULL, "%s %s failed", req->method, req->url);
    }
    return rc;
}

void drv_trim_slash(char *url)
{
    size_t n = url ? strlen(url) : 0;
    while (n > 0 && url[n - 1] == '/') url[--n] = '\0';
}

void drv_http_resp_free(struct drv_http_resp *r)
{
    if (!r) return;
    free(r->body);
    free(r->headers);
    memset(r, 0, sizeof *r);
}

int drv_http_resp_header(const struct drv_http_resp *r, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    const char *p = r->headers, *end = r->headers ? r->headers + r->headers_len : NULL;
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t')) v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ')) ve--;
            size_t n = (size_t)(ve - v);
            if (n >= outlen) n = outlen - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return 0;
        }
        p = eol + 1;
    }
    return -ENOENT;
}

static const char *const err_names[] = {
    "credentials rejected by the provider",
    "not allowed by the provider (permission missing)",
    "instance, resource or endpoint not found",
    "throttled by the provider",
    "request refused by the provider as malformed",
    "metric unsupported by this cloud without its agent",
    "no data for the requested range",
    "transport failure (connect, TLS, timeout or server error)",
    "provider response not shaped as documented",
    "driver configuration error",
};

const char *drv_strerror(int code)
{
    if (code > DRV_E_BASE && code < DRV_E_LAST) return err_names[code - DRV_E_BASE - 1];
    return pt_strerror(code);
}

int drv_url_split(const char *url, char *host, size_t hostlen, char *path, size_t pathlen)
{
    const char *p = strstr(url, "://");
    if (!p) return -EINVAL;
    p += 3;
    size_t n = strcspn(p, "/?#");
    if (n == 0 || n >= hostlen) return -EINVAL;
    memcpy(host, p, n);
    host[n] = '\0';
    const char *rest = p + n;
    int w = snprintf(path, pathlen, "%s", *rest == '/' ? rest : "/");
    return (w < 0 || (size_t)w >= pathlen) ? -EINVAL : 0;
}

int drv_form_add(struct drv_buf *b, const char *k, const char *v)
{
    int rc = b->len ? drv_buf_add(b, "&", 1) : 0;
    if (rc == 0) rc = drv_pct_encode(b, k, false);
    if (rc == 0) rc = drv_buf_add(b, "=", 1);
    if (rc == 0) rc = drv_pct_encode(b, v, false);
    return rc;
}

int drv_buf_add_json(struct drv_buf *b, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text) return -ENOMEM;
    size_t n = strlen(text);
    int rc = drv_buf_add(b, text, n);
    memset(text, 0, n); /* a Keystone body holds the password */
    free(text);
    return rc;
}

int drv_json_body(const struct drv_http_resp *r, json_t **out, const char *what,
                  struct drv_error *err)
{
    json_error_t je;
    *out = json_loadb(r->body ? r->body : "", r->body_len, JSON_DECODE_ANY, &je);
    if (*out) return 0;
    return drv_err_set(err, DRV_E_PARSE, (int)r->status, NULL, NULL,
                       "%s: HTTP %ld, body is not JSON: %s", what, r->status, je.text);
}

bool drv_json_num(const json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return true;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        double d = strtod(s, &end);
        if (end != s && *end == '\0') {
            *out = d;
            return true;
        }
    }
    return false;
}

bool drv_oauth_fresh(const struct drv_oauth_token *t, const struct drv_env *env)
{
    return t->value && drv_now_ms(env) < t->expires_ms - 300000;
}

int drv_oauth_take(struct drv_oauth_token *t, const struct drv_http_resp *resp, const char *what,
                   struct drv_error *err)
{
    json_t *j;
    int rc = drv_json_body(resp, &j, what, err);
    if (rc < 0) return rc;
    const char *tok = json_string_value(json_object_get(j, "access_token"));
    double exp = 0;
    if (!tok || !drv_json_num(json_object_get(j, "expires_in"), &exp)) {
        json_decref(j);
        return drv_err_set(err, DRV_E_PARSE, 200, NULL, NULL,
                           "%s: no access_token/expires_in in the answer", what);
    }
    /* A year at most: a hostile huge (or NaN) value would overflow the cast. */
    if (!(exp >= 0 && exp <= 366 * 86400.0)) {
        json_decref(j);
        return drv_err_set(err, DRV_E_PARSE, 200, NULL, NULL,
                           "%s: expires_in %g is not 0 to a year of seconds", what, exp);
    }
    drv_oauth_drop(t);
    t->value = strdup(tok);
    t->expires_ms = t->asked_ms + (int64_t)(exp * 1000);
    json_decref(j);
    return t->value ? 0 : drv_err_set(err, -ENOMEM, 0, NULL, NULL, "out of memory");
}

void drv_oauth_drop(struct drv_oauth_token *t)
{
    if (t->value) memset(t->value, 0, strlen(t->value));
    free(t->value);
    t->value = NULL;
}

int drv_metric_refused(struct drv_call *c, enum drv_metric m, int rc)
{
    if (rc != DRV_E_BADREQUEST && rc != DRV_E_NOTFOUND) return rc;
    drv_result_metric_error(&c->res, m, &c->err);
    memset(&c->err, 0, sizeof c->err);
    return 0;
}

bool drv_step_metric(struct drv_call *c, unsigned mask)
{
    while (c->index < DRV_M_COUNT && !(mask & DRV_MASK(c->index))) c->index++;
    return c->index < DRV_M_COUNT;
}
