/* HTTP client for the server backends (storehttp.h): libcurl easy handles,
 * zlib gzip bodies, CURLcode → store code mapping. */
#include "store/storehttp.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define STR_MAX ((size_t)64 << 20)

int sh_global_init(void)
{
    /* Thread-safe since curl 7.84; repeated calls only count. */
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -ENOMEM;
}

void sh_client_init(struct sh_client *c, const struct sh_conf *conf)
{
    c->conf = conf;
    c->curl = NULL;
}

void sh_client_close(struct sh_client *c)
{
    if (c->curl) curl_easy_cleanup(c->curl);
    c->curl = NULL;
}

/* ---- text buffer ------------------------------------------------------------ */

void sh_str_add(struct sh_str *s, const char *p, size_t n)
{
    if (s->err) return;
    if (n > STR_MAX - s->len) {
        s->err = -E2BIG;
        return;
    }
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 256;
        while (cap < s->len + n + 1) cap *= 2;
        char *q = realloc(s->p, cap);
        if (!q) {
            s->err = -ENOMEM;
            return;
        }
        s->p = q;
        s->cap = cap;
    }
    if (n) memcpy(s->p + s->len, p, n);
    s->len += n;
    s->p[s->len] = '\0';
}

void sh_str_adds(struct sh_str *s, const char *p)
{
    sh_str_add(s, p, strlen(p));
}

void sh_str_addf(struct sh_str *s, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        if (!s->err) s->err = -E2BIG;
        return;
    }
    sh_str_add(s, tmp, (size_t)n);
}

void sh_str_free(struct sh_str *s)
{
    free(s->p);
    memset(s, 0, sizeof *s);
}

char *sh_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, (int)strlen(s));
    if (!e) return NULL;
    char *out = strdup(e);
    curl_free(e);
    return out;
}

/* ---- gzip -------------------------------------------------------------------- */

/* Level 1: the server spends far more time parsing than we compressing,
 * and level 1 already shrinks line protocol about 8 times. */
static int gzip_body(const void *in, size_t len, unsigned char **out, size_t *outlen)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return -ENOMEM;
    size_t cap = deflateBound(&z, (uLong)len);
    unsigned char *buf = malloc(cap);
    if (!buf) {
        deflateEnd(&z);
        return -ENOMEM;
    }
    z.next_in = (unsigned char *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = buf;
    z.avail_out = (uInt)cap;
    int zr = deflate(&z, Z_FINISH);
    *outlen = z.total_out;
    deflateEnd(&z);
    if (zr != Z_STREAM_END) {
        free(buf);
        return -EIO;
    }
    *out = buf;
    return 0;
}

/* ---- requests ---------------------------------------------------------------- */

struct sink {
    struct sh_resp *r;
    size_t cap, max;
    bool toobig;
};

static size_t on_data(char *p, size_t size, size_t nmemb, void *arg)
{
    struct sink *k = arg;
    size_t n = size * nmemb;
    if (n > k->max - k->r->len) {
        k->toobig = true;
        return 0; /* aborts the transfer */
    }
    if (k->r->len + n + 1 > k->cap) {
        size_t cap = k->cap ? k->cap : 4096;
        while (cap < k->r->len + n + 1) cap *= 2;
        char *q = realloc(k->r->body, cap);
        if (!q) return 0;
        k->r->body = q;
        k->cap = cap;
    }
    memcpy(k->r->body + k->r->len, p, n);
    k->r->len += n;
    k->r->body[k->r->len] = '\0';
    return n;
}

/* The one place CURLcode becomes a store code. */
static int curl_code(CURLcode cc)
{
    switch (cc) {
    case CURLE_OK:
        return 0;
    case CURLE_COULDNT_CONNECT:
        return -ECONNREFUSED;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return -EHOSTUNREACH;
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
        return -ECONNRESET;
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return -EINVAL;
    default:
        return -EIO;
    }
}

/* Sets the options every request shares on h. */
static void easy_setup(CURL *h, const struct sh_conf *conf, const char *url, struct sink *k,
                       char *cterr)
{
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(conf->timeout_ns / 1000000));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(conf->timeout_ns / 1000000));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, k);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cterr);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""); /* gzip answers when offered */
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (conf->user && conf->user[0]) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, conf->user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, conf->password ? conf->password : "");
    }
}

/* Sets a POST body; *hdr gets the headers to free after the transfer. */
static void easy_post(CURL *h, const void *body, size_t len, const char *ctype, bool gzipped,
                      struct curl_slist **hdr)
{
    char ct[128];
    if (gzipped) *hdr = curl_slist_append(*hdr, "Content-Encoding: gzip");
    snprintf(ct, sizeof ct, "Content-Type: %s", ctype ? ctype : "text/plain");
    *hdr = curl_slist_append(*hdr, ct);
    *hdr = curl_slist_append(*hdr, "Expect:"); /* no 100-continue round trip */
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdr);
}

int sh_request(struct sh_client *c, const char *url, const void *body, size_t len,
               const char *ctype, bool gzip, struct sh_resp *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!c->curl && !(c->curl = curl_easy_init())) return -ENOMEM;
    CURL *h = c->curl;
    unsigned char *zbody = NULL;
    size_t zlen = 0;
    struct curl_slist *hdr = NULL;
    char cterr[CURL_ERROR_SIZE] = "";
    struct sink k = {.r = out, .max = c->conf->max_resp ? c->conf->max_resp : ((size_t)256 << 20)};
    int rc = 0;
    easy_setup(h, c->conf, url, &k, cterr);
    if (body) {
        if (gzip) {
            if ((rc = gzip_body(body, len, &zbody, &zlen))) goto done;
            body = zbody;
            len = zlen;
        }
        easy_post(h, body, len, ctype, gzip, &hdr);
    }
    CURLcode cc = curl_easy_perform(h);
    if (k.toobig) {
        snprintf(err, errlen, "%s: answer larger than %zu bytes", url, k.max);
        rc = -E2BIG;
    } else if (cc != CURLE_OK) {
        snprintf(err, errlen, "%s: %s", url, cterr[0] ? cterr : curl_easy_strerror(cc));
        rc = curl_code(cc);
    } else {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
        if (!out->body && !(out->body = calloc(1, 1))) rc = -ENOMEM;
    }
done:
    curl_slist_free_all(hdr);
    free(zbody);
    if (rc) {
        free(out->body);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

/* ---- parallel posts ----------------------------------------------------------------- */

void sh_pool_init(struct sh_pool *p, const struct sh_conf *conf, size_t parallel)
{
    memset(p, 0, sizeof *p);
    p->conf = conf;
    p->parallel = parallel < 1 ? 1 : parallel > SH_MAX_PARALLEL ? SH_MAX_PARALLEL : parallel;
}

void sh_pool_close(struct sh_pool *p)
{
    for (size_t i = 0; i < SH_MAX_PARALLEL; i++)
        if (p->easy[i]) curl_easy_cleanup(p->easy[i]);
    if (p->multi) curl_multi_cleanup(p->multi);
    memset(p->easy, 0, sizeof p->easy);
    p->multi = NULL;
}

/* One request in flight. */
struct slot {
    size_t part; /* index, or SIZE_MAX when free */
    struct sh_resp resp;
    struct sink sink;
    unsigned char *zbody;
    struct curl_slist *hdr;
    char cterr[CURL_ERROR_SIZE];
};

static void slot_finish(struct slot *sl, CURL *h, CURLcode cc, const char *url, struct sh_part *pt)
{
    if (sl->sink.toobig) {
        pt->rc = -E2BIG;
        snprintf(pt->msg, sizeof pt->msg, "%s: answer larger than %zu bytes", url, sl->sink.max);
    } else if (cc != CURLE_OK) {
        pt->rc = curl_code(cc);
        snprintf(pt->msg, sizeof pt->msg, "%s: %s", url,
                 sl->cterr[0] ? sl->cterr : curl_easy_strerror(cc));
    } else {
        pt->rc = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &pt->status);
        sh_resp_message(&sl->resp, pt->msg, sizeof pt->msg);
    }
    free(sl->resp.body);
    free(sl->zbody);
    curl_slist_free_all(sl->hdr);
    memset(&sl->resp, 0, sizeof sl->resp);
    sl->zbody = NULL;
    sl->hdr = NULL;
    sl->part = SIZE_MAX;
}

int sh_pool_post(struct sh_pool *p, const char *url, struct sh_part *parts, size_t n,
                 const char *ctype, bool gzip)
{
    if (!p->multi && !(p->multi = curl_multi_init())) return -ENOMEM;
    CURLM *m = p->multi;
    struct slot slots[SH_MAX_PARALLEL];
    for (size_t i = 0; i < SH_MAX_PARALLEL; i++) {
        memset(&slots[i], 0, sizeof slots[i]);
        slots[i].part = SIZE_MAX;
    }
    size_t next = 0, active = 0;
    for (size_t i = 0; i < n; i++) {
        parts[i].rc = -EIO;
        parts[i].status = 0;
        parts[i].msg[0] = '\0';
    }
    while (next < n || active > 0) {
        /* Fill free slots. */
        for (size_t i = 0; i < p->parallel && next < n; i++) {
            struct slot *sl = &slots[i];
            if (sl->part != SIZE_MAX) continue;
            if (!p->easy[i] && !(p->easy[i] = curl_easy_init())) {
                if (active == 0) return -ENOMEM;
                break;
            }
            struct sh_part *pt = &parts[next];
            const void *body = pt->body;
            size_t len = pt->len, zlen;
            if (gzip) {
                if (gzip_body(pt->body, pt->len, &sl->zbody, &zlen)) {
                    pt->rc = -ENOMEM;
                    snprintf(pt->msg, sizeof pt->msg, "out of memory compressing a request");
                    next++;
                    continue;
                }
                body = sl->zbody;
                len = zlen;
            }
            sl->sink = (struct sink){.r = &sl->resp,
                                     .max = p->conf->max_resp ? p->conf->max_resp : (1 << 20)};
            sl->cterr[0] = '\0';
            easy_setup(p->easy[i], p->conf, url, &sl->sink, sl->cterr);
            easy_post(p->easy[i], body, len, ctype, gzip, &sl->hdr);
            curl_easy_setopt(p->easy[i], CURLOPT_PRIVATE, (void *)sl);
            sl->part = next++;
            curl_multi_add_handle(m, p->easy[i]);
            active++;
        }
        int running = 0;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            struct slot *sl = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&sl);
            CURLcode cc = msg->data.result;
            CURL *h = msg->easy_handle;
            curl_multi_remove_handle(m, h);
            if (sl && sl->part != SIZE_MAX) {
                slot_finish(sl, h, cc, url, &parts[sl->part]);
                active--;
            }
        }
        if (active > 0 && running > 0) curl_multi_poll(m, NULL, 0, 1000, NULL);
    }
    return 0;
}

void sh_resp_message(const struct sh_resp *r, char *out, size_t len)
{
    json_t *j = r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;
    const char *e = j ? json_string_value(json_object_get(j, "error")) : NULL;
    if (e)
        snprintf(out, len, "%s", e);
    else
        snprintf(out, len, "%.*s", (int)(r->len > 300 ? 300 : r->len), r->body ? r->body : "");
    /* One line in the log, whatever the server sent. */
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    json_decref(j);
}

/* ---- store URLs --------------------------------------------------------------- */

int sh_url_parse(const char *url, const char *scheme, struct sh_url *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    size_t sl = strlen(scheme);
    if (!url || strncmp(url, scheme, sl) != 0 || url[sl] != ':') {
        snprintf(err, errlen, "store URL '%s' does not start with %s:", url ? url : "", scheme);
        return -EINVAL;
    }
    const char *rest = url + sl + 1;
    if (strncmp(rest, "http://", 7) != 0 && strncmp(rest, "https://", 8) != 0) {
        snprintf(err, errlen, "store URL '%s': expected %s:http://host:port/...", url, scheme);
        return -EINVAL;
    }
    const char *q = strchr(rest, '?');
    size_t blen = q ? (size_t)(q - rest) : strlen(rest);
    if (blen >= sizeof out->base || (q && strlen(q + 1) >= sizeof out->params)) {
        snprintf(err, errlen, "store URL '%s' is too long", url);
        return -ENAMETOOLONG;
    }
    memcpy(out->base, rest, blen);
    while (blen > 0 && out->base[blen - 1] == '/') blen--;
    out->base[blen] = '\0';
    if (q) snprintf(out->params, sizeof out->params, "%s", q + 1);
    return 0;
}

/* Finds key in the query string: value start and length, or NULL. */
static const char *param_find(const char *params, const char *key, size_t *vlen)
{
    size_t kl = strlen(key);
    for (const char *p = params; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
            *vlen = len - kl - 1;
            return p + kl + 1;
        }
        if (len == kl && strncmp(p, key, kl) == 0) {
            *vlen = 0;
            return p + kl;
        }
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

int sh_param(const struct sh_url *u, const char *key, char *out, size_t len)
{
    size_t vl;
    const char *v = param_find(u->params, key, &vl);
    if (!v) return 0;
    int olen = 0;
    char *d = curl_easy_unescape(NULL, v, (int)vl, &olen);
    if (!d) return -ENOMEM;
    int rc = (size_t)olen < len ? 1 : -ENAMETOOLONG;
    if (rc == 1) snprintf(out, len, "%.*s", olen, d);
    curl_free(d);
    return rc;
}

int sh_params_known(const struct sh_url *u, const char *const *known, char *err, size_t errlen)
{
    for (const char *p = u->params; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t kl = eq ? (size_t)(eq - p) : len;
        bool ok = false;
        for (size_t i = 0; known[i] && !ok; i++)
            ok = strlen(known[i]) == kl && strncmp(known[i], p, kl) == 0;
        if (!ok && kl) {
            snprintf(err, errlen, "store URL: unknown parameter '%.*s' (known:%s%s%s%s%s)", (int)kl,
                     p, known[0] ? " " : "", known[0] ? known[0] : "",
                     known[0] && known[1] ? ", " : "", known[0] && known[1] ? known[1] : "",
                     known[0] && known[1] && known[2] ? ", ..." : "");
            return -EINVAL;
        }
        p = amp ? amp + 1 : NULL;
    }
    return 0;
}

int64_t sh_duration(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || !(v >= 0) || v > 1e9) return -1;
    double mul = 1e9;
    if (strcmp(end, "ms") == 0)
        mul = 1e6;
    else if (strcmp(end, "m") == 0)
        mul = 60e9;
    else if (strcmp(end, "s") != 0 && *end)
        return -1;
    return (int64_t)(v * mul);
}

/* ---- JSON with big integers ------------------------------------------------------ */

json_t *sh_json_load(const char *p, size_t len, char *err, size_t errlen)
{
    json_error_t je;
    json_t *j = json_loadb(p, len, 0, &je);
    if (j || !strstr(je.text, "too big")) {
        if (!j) snprintf(err, errlen, "%s", je.text);
        return j;
    }
    /* Rare: copy, appending ".0" to every integer token past int64. */
    struct sh_str o = {0};
    bool in_str = false;
    for (size_t i = 0; i < len && !o.err;) {
        char c = p[i];
        if (in_str) {
            size_t k = i;
            while (k < len && p[k] != '"' && p[k] != '\\') k++;
            if (k < len && p[k] == '\\')
                k = k + 2 > len ? len : k + 2;
            else if (k < len) { /* closing quote */
                k++;
                in_str = false;
            }
            sh_str_add(&o, p + i, k - i);
            i = k;
            continue;
        }
        if (c == '"') {
            in_str = true;
            sh_str_add(&o, p + i, 1);
            i++;
            continue;
        }
        if (c == '-' || (c >= '0' && c <= '9')) {
            size_t k = i + (c == '-');
            while (k < len && p[k] >= '0' && p[k] <= '9') k++;
            bool integer = !(k < len && (p[k] == '.' || p[k] == 'e' || p[k] == 'E'));
            sh_str_add(&o, p + i, k - i);
            if (integer && k - i >= 19) {
                char tmp[64];
                snprintf(tmp, sizeof tmp, "%.*s", (int)(k - i < 63 ? k - i : 63), p + i);
                errno = 0;
                (void)strtoll(tmp, NULL, 10);
                if (errno == ERANGE || k - i >= 63) sh_str_add(&o, ".0", 2);
            }
            i = k;
            continue;
        }
        sh_str_add(&o, p + i, 1);
        i++;
    }
    if (o.err) {
        snprintf(err, errlen, "answer too large to rewrite");
        sh_str_free(&o);
        return NULL;
    }
    j = json_loadb(o.p, o.len, 0, &je);
    if (!j) snprintf(err, errlen, "%s", je.text);
    sh_str_free(&o);
    return j;
}
