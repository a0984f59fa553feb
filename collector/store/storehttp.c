/* HTTP client for the server backends (storehttp.h): libcurl easy handles,
 * zlib gzip bodies, CURLcode → store code mapping. */
#include "store/storehttp.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

/* One request in flight. */
struct slot {
    struct sh_part *part; /* NULL when free */
    struct sh_resp resp;
    struct sink sink;
    unsigned char *zbody;
    struct curl_slist *hdr;
    char cterr[CURL_ERROR_SIZE];
};

/* The poster thread's state. lock guards stop and the queue; everything
 * else is the poster's own. A part's results are written by the poster
 * before it decrements its group's `left` under lock, and read by the
 * caller after it saw `left` reach 0 under lock. */
struct sh_poster {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t work; /* the poster waits for requests (when it has none in flight) */
    pthread_cond_t done; /* callers wait for their groups */
    bool stop;
    struct sh_part *qhead, *qtail; /* queued, not yet started */
    struct slot slots[SH_MAX_PARALLEL];
    size_t active;
};

void sh_pool_init(struct sh_pool *p, const struct sh_conf *conf, size_t parallel)
{
    memset(p, 0, sizeof *p);
    p->conf = conf;
    p->parallel = parallel < 1 ? 1 : parallel > SH_MAX_PARALLEL ? SH_MAX_PARALLEL : parallel;
}

static void slot_finish(struct slot *sl, CURL *h, CURLcode cc, struct sh_part *pt)
{
    const char *url = pt->grp->url;
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
    sl->part = NULL;
}

/* Counts a part as answered (its results set), under the lock. */
static void part_done_locked(struct sh_poster *ps, struct sh_part *pt)
{
    if (--pt->grp->left == 0) pthread_cond_broadcast(&ps->done);
}

/* Starts part pt on slot i (poster thread, lock not held). A part that
 * cannot start gets its result at once; returns whether it started. */
static bool slot_start(struct sh_pool *p, size_t i, struct sh_part *pt)
{
    struct sh_poster *ps = p->impl;
    struct slot *sl = &ps->slots[i];
    const void *body = pt->body;
    size_t len = pt->len, zlen;
    pt->rc = -EIO;
    pt->status = 0;
    pt->msg[0] = '\0';
    if (!p->easy[i] && !(p->easy[i] = curl_easy_init())) {
        pt->rc = -ENOMEM;
        snprintf(pt->msg, sizeof pt->msg, "out of memory for a connection");
        return false;
    }
    if (pt->grp->gzip) {
        if (gzip_body(pt->body, pt->len, &sl->zbody, &zlen)) {
            pt->rc = -ENOMEM;
            snprintf(pt->msg, sizeof pt->msg, "out of memory compressing a request");
            return false;
        }
        body = sl->zbody;
        len = zlen;
    }
    sl->sink =
        (struct sink){.r = &sl->resp, .max = p->conf->max_resp ? p->conf->max_resp : (1 << 20)};
    sl->cterr[0] = '\0';
    easy_setup(p->easy[i], p->conf, pt->grp->url, &sl->sink, sl->cterr);
    easy_post(p->easy[i], body, len, pt->grp->ctype, pt->grp->gzip, &sl->hdr);
    curl_easy_setopt(p->easy[i], CURLOPT_PRIVATE, (void *)sl);
    sl->part = pt;
    curl_multi_add_handle(p->multi, p->easy[i]);
    return true;
}

static void *poster_main(void *arg)
{
    struct sh_pool *p = arg;
    struct sh_poster *ps = p->impl;
    CURLM *m = p->multi;
    pthread_mutex_lock(&ps->lock);
    for (;;) {
        /* A free connection takes the oldest queued request. */
        for (size_t i = 0; i < p->parallel && ps->qhead && !ps->stop; i++) {
            if (ps->slots[i].part) continue;
            struct sh_part *pt = ps->qhead;
            ps->qhead = pt->qnext;
            if (!ps->qhead) ps->qtail = NULL;
            pthread_mutex_unlock(&ps->lock);
            bool started = slot_start(p, i, pt); /* compresses: not under the lock */
            pthread_mutex_lock(&ps->lock);
            if (started)
                ps->active++;
            else
                part_done_locked(ps, pt);
        }
        if (ps->stop) break;
        if (ps->active == 0) {
            if (!ps->qhead) pthread_cond_wait(&ps->work, &ps->lock);
            continue;
        }
        pthread_mutex_unlock(&ps->lock);
        int running = 0;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            struct slot *sl = NULL;
            CURL *h = msg->easy_handle;
            CURLcode cc = msg->data.result;
            curl_easy_getinfo(h, CURLINFO_PRIVATE, (char **)&sl);
            curl_multi_remove_handle(m, h);
            if (!sl || !sl->part) continue;
            struct sh_part *pt = sl->part;
            slot_finish(sl, h, cc, pt);
            pthread_mutex_lock(&ps->lock);
            ps->active--;
            part_done_locked(ps, pt);
            pthread_mutex_unlock(&ps->lock);
        }
        /* Until a transfer moves, or sh_pool_submit() wakes it to start
         * a queued request on a free connection. */
        pthread_mutex_lock(&ps->lock);
        bool more = ps->qhead && ps->active < p->parallel;
        pthread_mutex_unlock(&ps->lock);
        if (!more) curl_multi_poll(m, NULL, 0, 1000, NULL);
        pthread_mutex_lock(&ps->lock);
    }
    /* Stopping: what is in flight or queued is cancelled. */
    for (size_t i = 0; i < SH_MAX_PARALLEL; i++) {
        struct slot *sl = &ps->slots[i];
        if (!sl->part) continue;
        struct sh_part *pt = sl->part;
        curl_multi_remove_handle(m, p->easy[i]);
        free(sl->resp.body);
        free(sl->zbody);
        curl_slist_free_all(sl->hdr);
        memset(sl, 0, sizeof *sl);
        pt->rc = -ECANCELED;
        snprintf(pt->msg, sizeof pt->msg, "cancelled: the store is being closed");
        ps->active--;
        part_done_locked(ps, pt);
    }
    while (ps->qhead) {
        struct sh_part *pt = ps->qhead;
        ps->qhead = pt->qnext;
        pt->rc = -ECANCELED;
        snprintf(pt->msg, sizeof pt->msg, "cancelled: the store is being closed");
        part_done_locked(ps, pt);
    }
    ps->qtail = NULL;
    pthread_mutex_unlock(&ps->lock);
    return NULL;
}

/* Creates the multi handle and starts the poster (caller's thread). */
static int poster_start(struct sh_pool *p)
{
    struct sh_poster *ps = calloc(1, sizeof *ps);
    if (!ps) return -ENOMEM;
    if (!p->multi && !(p->multi = curl_multi_init())) {
        free(ps);
        return -ENOMEM;
    }
    pthread_mutex_init(&ps->lock, NULL);
    pthread_cond_init(&ps->work, NULL);
    pthread_cond_init(&ps->done, NULL);
    p->impl = ps;
    if (pthread_create(&ps->thread, NULL, poster_main, p) != 0) {
        pthread_mutex_destroy(&ps->lock);
        pthread_cond_destroy(&ps->work);
        pthread_cond_destroy(&ps->done);
        free(ps);
        p->impl = NULL;
        return -ENOMEM;
    }
    pthread_setname_np(ps->thread, "pt-post"); /* shows in top -H, ps -L */
    return 0;
}

void sh_pool_close(struct sh_pool *p)
{
    struct sh_poster *ps = p->impl;
    if (ps) {
        pthread_mutex_lock(&ps->lock);
        ps->stop = true;
        pthread_cond_signal(&ps->work);
        pthread_mutex_unlock(&ps->lock);
        curl_multi_wakeup(p->multi);
        pthread_join(ps->thread, NULL);
        pthread_mutex_destroy(&ps->lock);
        pthread_cond_destroy(&ps->work);
        pthread_cond_destroy(&ps->done);
        free(ps);
        p->impl = NULL;
    }
    for (size_t i = 0; i < SH_MAX_PARALLEL; i++)
        if (p->easy[i]) curl_easy_cleanup(p->easy[i]);
    if (p->multi) curl_multi_cleanup(p->multi);
    memset(p->easy, 0, sizeof p->easy);
    p->multi = NULL;
}

int sh_pool_submit(struct sh_pool *p, struct sh_group *g, struct sh_part *parts, size_t n)
{
    int rc;
    if (!p->impl && (rc = poster_start(p))) return rc;
    struct sh_poster *ps = p->impl;
    for (size_t i = 0; i < n; i++) {
        parts[i].grp = g;
        parts[i].qnext = i + 1 < n ? &parts[i + 1] : NULL;
        parts[i].rc = -EIO;
        parts[i].status = 0;
        parts[i].msg[0] = '\0';
    }
    pthread_mutex_lock(&ps->lock);
    g->left = n;
    if (n) {
        if (ps->qtail)
            ps->qtail->qnext = &parts[0];
        else
            ps->qhead = &parts[0];
        ps->qtail = &parts[n - 1];
        pthread_cond_signal(&ps->work);
    }
    pthread_mutex_unlock(&ps->lock);
    if (n) curl_multi_wakeup(p->multi); /* when it sits in curl_multi_poll() */
    return 0;
}

bool sh_pool_wait(struct sh_pool *p, struct sh_group *g, int64_t timeout_ns)
{
    struct sh_poster *ps = p->impl;
    if (!ps) return true; /* nothing was ever submitted */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until); /* the condition's clock */
    int64_t ns = (int64_t)until.tv_nsec + (timeout_ns > 0 ? timeout_ns : 0);
    until.tv_sec += (time_t)(ns / 1000000000);
    until.tv_nsec = (long)(ns % 1000000000);
    pthread_mutex_lock(&ps->lock);
    while (g->left > 0) {
        if (timeout_ns < 0)
            pthread_cond_wait(&ps->done, &ps->lock);
        else if (pthread_cond_timedwait(&ps->done, &ps->lock, &until) == ETIMEDOUT)
            break;
    }
    bool done = g->left == 0;
    pthread_mutex_unlock(&ps->lock);
    return done;
}

int sh_pool_post(struct sh_pool *p, const char *url, struct sh_part *parts, size_t n,
                 const char *ctype, bool gzip)
{
    struct sh_group g = {.url = url, .ctype = ctype, .gzip = gzip};
    int rc = sh_pool_submit(p, &g, parts, n);
    if (rc) return rc;
    sh_pool_wait(p, &g, -1);
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
