/* The agentless poller: targets, a scheduler thread, concurrent polls on
 * libcurl's multi interface (drv_multi), per-driver rate limits, back-off,
 * and the hand-over of fetched data to the loop thread. */
#include "poller.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cred.h"
#include "drv.h"
#include "frames.h"
#include "pt/err.h"
#include "pt/log.h"
#include "pt/time.h"
#include "targets.h"

#define LOG                "agentless"
#define NEVER              INT64_MAX
#define MAX_LIMITS         16
#define THROTTLE_DEFAULT_S 10 /* when a provider throttles without saying how long */

/* One target at run time. Its configuration (t) never changes: an update
 * replaces the entry, so a poll under way needs no lock to read t. */
struct entry {
    struct agl_target t;
    bool busy;    /* a poll of it is under way (and owns drv) */
    bool removed; /* deleted or replaced: freed by whoever holds it last */
    struct drv *drv;
    const struct drv_ops *ops;
    int limit; /* index into agl.lim */

    /* Guarded by agl.lock. */
    enum coll_agl_state state;
    int64_t next_ns; /* wall clock; NEVER when not scheduled */
    uint64_t polls, failures, values;
    unsigned consecutive;
    int64_t last_poll_ns, last_success_ns, backoff_ns;
    int err_kind; /* enum coll_agl_err, -1 when none yet */
    struct drv_error err;
    int64_t err_at_ns;
    bool have_metrics;
    int mstatus[DRV_M_COUNT];
    struct drv_error merr[DRV_M_COUNT];
    int64_t fed_s[DRV_M_COUNT]; /* per metric, newest sample time fed to alerting */
    int64_t newest_s;           /* newest sample time fetched */
    struct pt_complain complain;
};

/* A token bucket per driver; burst = rate. Throttling blocks the driver
 * until the provider's retry-after: throttles are usually per account or
 * region, so the other targets of that cloud would only be refused too. */
struct limit {
    char driver[16];
    double rate, tokens;
    int64_t last_mono_ns;
    int64_t blocked_until_ns; /* wall clock */
};

struct qframe {
    struct qframe *next;
    size_t len;
    uint16_t nmeas;
    bool feed; /* for the alert engine only (else: for the writer only) */
    uint8_t data[];
};

struct agl {
    struct agl_opts o;
    struct agl_key key;
    struct agl_db *db;
    pthread_mutex_t api_lock; /* one create/update/delete at a time (ids) */

    pthread_mutex_t lock; /* entries, limits, stopping */
    pthread_cond_t cond;
    struct entry **e;
    size_t n, cap;
    struct limit lim[MAX_LIMITS];
    size_t nlim;
    bool stopping;
    pthread_t sched;
    bool sched_started;
    int inflight; /* polls submitted to multi, not yet done */
    struct drv_multi *multi;

    pthread_mutex_t qlock; /* the frame queue */
    struct qframe *qhead, *qtail;
    size_t qlen;
    bool async_closed;
    uv_async_t async;
    bool async_init;
    struct pt_wire_dec *dec; /* loop thread */
    struct pt_complain c_queue;
};

/* ---- helpers ------------------------------------------------------------- */

static enum coll_agl_err err_kind(int code)
{
    switch (code) {
    case DRV_E_AUTH:
        return COLL_AGL_E_AUTH;
    case DRV_E_FORBIDDEN:
        return COLL_AGL_E_FORBIDDEN;
    case DRV_E_NOTFOUND:
        return COLL_AGL_E_NOTFOUND;
    case DRV_E_THROTTLED:
        return COLL_AGL_E_THROTTLED;
    case DRV_E_BADREQUEST:
    case DRV_E_UNSUPPORTED:
    case DRV_E_NODATA:
        return COLL_AGL_E_BADREQUEST;
    case DRV_E_TRANSPORT:
        return COLL_AGL_E_TRANSPORT;
    case DRV_E_PARSE:
        return COLL_AGL_E_PARSE;
    case DRV_E_CONFIG:
        return COLL_AGL_E_CONFIG;
    default:
        return COLL_AGL_E_INTERNAL;
    }
}

/* Failures an unchanged target cannot recover from: stop polling until the
 * operator updates it (or asks for a poll), as docs/drivers.md says. */
static bool needs_operator(enum coll_agl_err k)
{
    return k == COLL_AGL_E_AUTH || k == COLL_AGL_E_FORBIDDEN || k == COLL_AGL_E_NOTFOUND ||
           k == COLL_AGL_E_CONFIG || k == COLL_AGL_E_CREDENTIALS;
}

static void entry_free(struct entry *e)
{
    if (!e) return;
    if (e->drv) e->ops->destroy(e->drv); /* wipes its copy of the credentials */
    agl_target_free(&e->t);
    free(e);
}

static int find_limit(struct agl *a, const char *driver)
{
    for (size_t i = 0; i < a->nlim; i++)
        if (!strcmp(a->lim[i].driver, driver)) return (int)i;
    return 0;
}

/* Recounts the targets per state for /metrics (a->lock held). */
static void recount(struct agl *a)
{
    int64_t c[COLL_AGL_STATE_COUNT] = {0};
    for (size_t i = 0; i < a->n; i++) c[a->e[i]->state]++;
    for (int s = 0; s < COLL_AGL_STATE_COUNT; s++) atomic_store(&a->o.stats->agl_targets[s], c[s]);
}

static struct entry *entry_new(struct agl *a, struct agl_target *t)
{
    struct entry *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->t = *t; /* takes the members */
    memset(t, 0, sizeof *t);
    e->ops = drv_lookup(e->t.driver);
    e->limit = find_limit(a, e->t.driver);
    e->err_kind = -1;
    e->state = e->t.enabled ? COLL_AGL_PENDING : COLL_AGL_DISABLED;
    e->next_ns = e->t.enabled ? pt_now_ns() : NEVER;
    return e;
}

/* a->lock held. */
static int entries_add(struct agl *a, struct entry *e)
{
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 16;
        struct entry **ne = realloc(a->e, nc * sizeof *ne);
        if (!ne) return -ENOMEM;
        a->e = ne;
        a->cap = nc;
    }
    a->e[a->n++] = e;
    return 0;
}

static struct entry *entries_find(struct agl *a, int64_t id, size_t *idx)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->e[i]->t.id == id) {
            if (idx) *idx = i;
            return a->e[i];
        }
    return NULL;
}

/* Takes entry idx out of the list; frees it unless a poll holds it. */
static void entries_remove(struct agl *a, size_t idx)
{
    struct entry *e = a->e[idx];
    memmove(&a->e[idx], &a->e[idx + 1], (a->n - idx - 1) * sizeof *a->e);
    a->n--;
    if (e->busy)
        e->removed = true;
    else
        entry_free(e);
}

/* ---- frames to the loop thread ------------------------------------------- */

struct build_ctx {
    struct agl *a;
    size_t queued;
};

static int queue_frame(void *ud, const uint8_t *buf, size_t len, uint16_t nmeas, int64_t ts_ns,
                       bool feed)
{
    struct build_ctx *bc = ud;
    struct agl *a = bc->a;
    (void)ts_ns;
    struct qframe *q = malloc(sizeof *q + len);
    bool full;
    if (q) {
        q->next = NULL;
        q->len = len;
        q->nmeas = nmeas;
        q->feed = feed;
        memcpy(q->data, buf, len);
    }
    pthread_mutex_lock(&a->qlock);
    full = !q || a->qlen >= a->o.queue_frames;
    if (!full) {
        if (a->qtail)
            a->qtail->next = q;
        else
            a->qhead = q;
        a->qtail = q;
        a->qlen++;
    }
    if (full) /* under qlock: polls complain concurrently */
        pt_complain(&a->c_queue, PT_LOG_ERROR, LOG,
                    "hand-over queue full (%zu frames): dropped %u points fetched from a cloud "
                    "(%s); the loop thread or the writer is behind",
                    a->o.queue_frames, (unsigned)nmeas,
                    feed ? "their alert evaluation" : "not stored");
    pthread_mutex_unlock(&a->qlock);
    if (full) {
        free(q);
        atomic_fetch_add(feed ? &a->o.stats->agl_feed_dropped_queue
                              : &a->o.stats->agl_points_dropped_queue,
                         nmeas);
        return 0; /* the rest of the poll may still fit */
    }
    if (!feed) atomic_fetch_add(&a->o.stats->agl_frames, 1);
    bc->queued++;
    return 0;
}

/* Hands queued frames to the writer and the alert hook (loop thread, or
 * the main thread at shutdown once the loop is gone). */
static void drain(struct agl *a)
{
    pthread_mutex_lock(&a->qlock);
    struct qframe *q = a->qhead;
    a->qhead = a->qtail = NULL;
    a->qlen = 0;
    pthread_mutex_unlock(&a->qlock);
    int64_t now = pt_now_ns();
    while (q) {
        struct qframe *next = q->next;
        struct pt_frame f;
        if (!q->feed && a->o.writer)
            coll_writer_add(a->o.writer, q->data, q->len, q->nmeas, NULL); /* no agent acks it */
        else if (q->feed && a->o.feed && pt_wire_decode(a->dec, q->data, q->len, &f) == 0)
            a->o.feed(a->o.feed_ctx, &f, now);
        free(q);
        q = next;
    }
}

static void on_async(uv_async_t *h)
{
    drain(h->data);
}

static void wake_loop(struct agl *a)
{
    pthread_mutex_lock(&a->qlock);
    if (!a->async_closed && a->async_init) uv_async_send(&a->async);
    pthread_mutex_unlock(&a->qlock);
}

/* ---- one poll (without a->lock) ------------------------------------------- */

struct poll_out {
    int rc;
    enum coll_agl_err kind;
    struct drv_error err;
    int mstatus[DRV_M_COUNT];
    struct drv_error merr[DRV_M_COUNT];
    bool have_metrics;
    uint64_t values;
    int64_t fed_s[DRV_M_COUNT], newest_s; /* after this poll */
};

/* The drivers' env.http: the poller runs every fetch as a drv_call on
 * drv_multi, never through a driver's synchronous fetch(); this transport
 * only says so if anything ever tried. */
static int no_request(struct drv_http *h, const struct drv_http_req *req,
                      struct drv_http_resp *resp, struct drv_error *err)
{
    (void)h;
    memset(resp, 0, sizeof *resp);
    memset(err, 0, sizeof *err);
    err->code = DRV_E_TRANSPORT;
    snprintf(err->message, sizeof err->message, "%s: the poller performs requests on drv_multi",
             req->url);
    return DRV_E_TRANSPORT;
}
static struct drv_http no_http = {no_request, NULL, NULL};

static int poll_fail(struct poll_out *po, int rc, enum coll_agl_err kind, const char *what)
{
    po->kind = kind;
    po->err.code = rc;
    snprintf(po->err.message, sizeof po->err.message, "%s", what);
    return rc;
}

/* Creates e's driver from its sealed credentials when it has none yet. */
static int ensure_driver(struct agl *a, struct entry *e, struct poll_out *po)
{
    if (e->drv) return 0;
    json_t *creds = NULL;
    int rc = agl_target_creds(&e->t, &a->key, &creds);
    if (rc) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "cannot open the target's sealed credentials: %s (is agentless.key_file the "
                 "file they were sealed with?)",
                 agl_cred_strerror(rc));
        return poll_fail(po, rc, COLL_AGL_E_CREDENTIALS, msg);
    }
    json_t *conf = agl_target_driver_conf(&e->t, creds);
    agl_json_wipe(creds);
    json_decref(creds);
    if (!conf) return poll_fail(po, -ENOMEM, COLL_AGL_E_INTERNAL, "out of memory");
    struct drv_env env = {&no_http, NULL};
    rc = e->ops->create(conf, &env, &e->drv, &po->err);
    agl_json_wipe(json_object_get(conf, "credentials"));
    json_decref(conf);
    if (rc < 0) {
        e->drv = NULL;
        po->kind = err_kind(rc);
        po->err.code = rc;
        return rc;
    }
    return 0;
}

static void poll_done(void *ud, struct drv_call *c, int rc);

/* One poll under way: what its done() needs. */
struct poll {
    struct agl *a;
    struct entry *e;
    struct drv_query q;
    int64_t started;
    struct poll_out po; /* po.fed_s: the entry's fed_s[] when the poll started */
};

/* Starts polling e (e->busy set, without a->lock): creates its driver when
 * needed and submits the fetch to drv_multi. 0 when submitted (done() will
 * run), else po holds the failure. */
static int poll_begin(struct agl *a, struct poll *p)
{
    struct entry *e = p->e;
    struct poll_out *po = &p->po;
    if ((po->rc = ensure_driver(a, e, po))) return po->rc;
    /* Whole periods only, aligned as the clouds align their buckets; the
     * period in progress is left for a later poll (its value would still
     * change). The look-back re-reads late data; the store replaces the
     * points it already has. */
    int64_t per = e->t.period_s, to = pt_now_ns() / PT_NS_PER_SEC / per * per;
    p->q = (struct drv_query){.metrics = DRV_MASK_ALL,
                              .from = (to - e->t.lookback_s) / per * per,
                              .to = to,
                              .period_s = (int)e->t.period_s};
    struct drv_call *c = drv_call_new(e->ops, e->drv, &p->q);
    if (!c) return (po->rc = poll_fail(po, -ENOMEM, COLL_AGL_E_INTERNAL, "out of memory"));
    int rc = drv_multi_submit(a->multi, c, poll_done, p);
    if (rc) {
        drv_call_free(c);
        return (po->rc = poll_fail(po, rc, COLL_AGL_E_INTERNAL, "pantalad is shutting down"));
    }
    return 0;
}

/* The fetched series into frames for the loop thread (drv_multi's thread). */
static void poll_take(struct agl *a, struct poll *p, struct drv_result *r)
{
    struct entry *e = p->e;
    struct poll_out *po = &p->po;
    /* A cloud's answer is input like any other: points outside the range
     * asked for (a clock gone wrong, a mock, a proxy's cache) are not
     * stored under this VM's name. */
    uint64_t outside = 0;
    for (size_t i = 0; i < r->n; i++) {
        struct drv_series *sr = &r->series[i];
        size_t k = 0;
        for (size_t j = 0; j < sr->n; j++)
            if (sr->points[j].ts >= p->q.from && sr->points[j].ts < p->q.to)
                sr->points[k++] = sr->points[j];
        outside += sr->n - k;
        sr->n = k;
    }
    if (outside) atomic_fetch_add(&a->o.stats->agl_points_outside, outside);
    po->have_metrics = true;
    memcpy(po->mstatus, r->status, sizeof po->mstatus);
    memcpy(po->merr, r->metric_error, sizeof po->merr);
    for (size_t i = 0; i < r->n; i++) po->values += r->series[i].n;
    char host[PT_WIRE_MAX_STR + 1];
    snprintf(host, sizeof host, "%s",
             strlen(e->t.instance) <= PT_WIRE_MAX_STR ? e->t.instance : "");
    struct agl_frame_ident id = {e->t.ns,
                                 e->t.mcis,
                                 e->t.vm,
                                 e->t.csp,
                                 host,
                                 AGL_AGENT_ID(e->t.id),
                                 (uint32_t)(e->t.period_s * 1000)};
    struct build_ctx bc = {a, 0};
    size_t skipped = 0;
    int64_t fed[DRV_M_COUNT];
    memcpy(fed, po->fed_s, sizeof fed);
    int rc = agl_frames_build(&id, r, a->o.feed ? fed : NULL, queue_frame, &bc, &skipped);
    if (skipped) atomic_fetch_add(&a->o.stats->agl_series_skipped, skipped);
    if (rc) {
        po->rc = rc;
        po->kind = COLL_AGL_E_INTERNAL;
        snprintf(po->err.message, sizeof po->err.message, "cannot build frames: %s",
                 pt_strerror(rc));
    }
    for (size_t i = 0; i < r->n; i++) {
        const struct drv_series *sr = &r->series[i];
        if (!sr->n) continue;
        int64_t last = sr->points[sr->n - 1].ts;
        if (last > po->fed_s[sr->metric]) po->fed_s[sr->metric] = last;
        if (last > po->newest_s) po->newest_s = last;
    }
    if (bc.queued) wake_loop(a);
}

/* Records a poll's outcome and schedules the next (a->lock held). */
static void finish(struct agl *a, struct entry *e, const struct poll_out *po, int64_t started)
{
    int64_t now = pt_now_ns(), iv = e->t.interval_s * PT_NS_PER_SEC;
    struct coll_stats *st = a->o.stats;
    e->polls++;
    e->last_poll_ns = started;
    if (po->have_metrics) {
        e->have_metrics = true;
        memcpy(e->mstatus, po->mstatus, sizeof e->mstatus);
        memcpy(e->merr, po->merr, sizeof e->merr);
    }
    for (int m = 0; m < DRV_M_COUNT; m++)
        if (po->fed_s[m] > e->fed_s[m]) e->fed_s[m] = po->fed_s[m];
    if (po->newest_s > e->newest_s) e->newest_s = po->newest_s;
    if (po->rc == 0) {
        atomic_fetch_add(&st->agl_polls_ok, 1);
        atomic_fetch_add(&st->agl_values, po->values);
        e->values += po->values;
        e->last_success_ns = started;
        e->consecutive = 0;
        e->backoff_ns = 0;
        e->state = COLL_AGL_OK;
        e->next_ns = started + iv > now ? started + iv : now;
        pt_complain_release(&e->complain, LOG, "target %lld (%s/%s/%s): polls succeed again",
                            (long long)e->t.id, e->t.ns, e->t.mcis, e->t.vm);
        return;
    }
    atomic_fetch_add(&st->agl_polls_failed, 1);
    atomic_fetch_add(&st->agl_errors[po->kind], 1);
    e->failures++;
    e->err_kind = (int)po->kind;
    e->err = po->err;
    e->err_at_ns = now;
    if (e->consecutive < 30) e->consecutive++;
    int64_t wait;
    if (needs_operator(po->kind)) {
        e->state = COLL_AGL_STOPPED;
        e->next_ns = NEVER;
        wait = 0;
    } else {
        /* interval, 2x, 4x ... up to max_backoff; the first retry is simply
         * the next interval ("log, retry next interval"). */
        wait = iv;
        for (unsigned i = 1; i < e->consecutive && wait < a->o.max_backoff_ns; i++) wait *= 2;
        if (wait > a->o.max_backoff_ns) wait = a->o.max_backoff_ns;
        e->state = COLL_AGL_ERROR;
        if (po->kind == COLL_AGL_E_THROTTLED) {
            int64_t ra =
                (int64_t)(po->err.retry_after_s > 0 ? po->err.retry_after_s : THROTTLE_DEFAULT_S) *
                PT_NS_PER_SEC;
            if (wait < ra) wait = ra; /* never sooner than the provider asked */
            struct limit *l = &a->lim[e->limit];
            if (l->blocked_until_ns < now + ra) l->blocked_until_ns = now + ra;
            e->state = COLL_AGL_THROTTLED;
        }
        e->next_ns = now + wait;
    }
    e->backoff_ns = wait;
    char next[48], detail[256] = "";
    if (wait)
        snprintf(next, sizeof next, "next poll in %llds", (long long)(wait / PT_NS_PER_SEC));
    else
        snprintf(next, sizeof next, "stopped until updated or polled");
    /* The provider's own words, for a support ticket: [HTTP, code, request id]. */
    const struct drv_error *pe = &po->err;
    if (pe->http_status || pe->provider_code[0] || pe->request_id[0])
        snprintf(detail, sizeof detail, " [HTTP %d%s%s%s%s]", pe->http_status,
                 pe->provider_code[0] ? ", code " : "", pe->provider_code,
                 pe->request_id[0] ? ", request id " : "", pe->request_id);
    pt_complain(&e->complain, needs_operator(po->kind) ? PT_LOG_ERROR : PT_LOG_WARN, LOG,
                "target %lld (%s/%s/%s, %s %s): %s: %s%s; %s", (long long)e->t.id, e->t.ns,
                e->t.mcis, e->t.vm, e->t.driver, e->t.instance, coll_agl_err_names[po->kind],
                pe->message, detail, next);
}

/* ---- scheduling ---------------------------------------------------------- */

/* Picks the due entry with the oldest deadline whose driver has a token
 * (a->lock held); else sets *wake to when something may become due. */
static struct entry *pick(struct agl *a, int64_t now, int64_t *wake)
{
    struct entry *best = NULL;
    int64_t mono = pt_mono_ns();
    for (size_t i = 0; i < a->n; i++) {
        struct entry *e = a->e[i];
        if (e->busy || e->next_ns == NEVER) continue;
        if (e->next_ns > now) {
            if (e->next_ns < *wake) *wake = e->next_ns;
            continue;
        }
        struct limit *l = &a->lim[e->limit];
        if (l->blocked_until_ns > now) {
            if (l->blocked_until_ns < *wake) *wake = l->blocked_until_ns;
            continue;
        }
        double tokens = l->tokens + (double)(mono - l->last_mono_ns) / 1e9 * l->rate;
        if (tokens > l->rate) tokens = l->rate;
        if (tokens < 1.0) {
            int64_t in = (int64_t)((1.0 - tokens) / l->rate * 1e9) + 1;
            if (now + in < *wake) *wake = now + in;
            continue;
        }
        if (!best || e->next_ns < best->next_ns) best = e;
    }
    if (best) {
        struct limit *l = &a->lim[best->limit];
        l->tokens += (double)(mono - l->last_mono_ns) / 1e9 * l->rate;
        if (l->tokens > l->rate) l->tokens = l->rate;
        l->tokens -= 1.0;
        l->last_mono_ns = mono;
    }
    return best;
}

/* Ends a poll (a->lock held): records it, or frees a removed entry. */
static void poll_end(struct agl *a, struct poll *p, bool record)
{
    struct entry *e = p->e;
    e->busy = false;
    if (e->removed)
        entry_free(e);
    else if (record) {
        finish(a, e, &p->po, p->started);
        recount(a);
    }
    free(p);
}

/* drv_multi's thread, when a fetch has ended (rc -ECANCELED: at shutdown,
 * not a failure of the target's). */
static void poll_done(void *ud, struct drv_call *c, int rc)
{
    struct poll *p = ud;
    struct agl *a = p->a;
    struct poll_out *po = &p->po;
    if (rc == 0) {
        poll_take(a, p, drv_call_result(c));
    } else if (rc != -ECANCELED) {
        po->rc = rc;
        po->err = *drv_call_error(c);
        po->kind = err_kind(rc);
    }
    pthread_mutex_lock(&a->lock);
    a->inflight--;
    poll_end(a, p, rc != -ECANCELED);
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);
}

/* The scheduler: starts every due poll the rate limits allow, up to
 * agentless.concurrency at once, and sleeps until the next is due or a
 * poll ends. The polls themselves run on drv_multi's thread. */
static void *sched_main(void *arg)
{
    struct agl *a = arg;
    pthread_mutex_lock(&a->lock);
    while (!a->stopping) {
        int64_t now = pt_now_ns(), wake = now + PT_NS_PER_SEC;
        struct entry *e = a->inflight < a->o.concurrency ? pick(a, now, &wake) : NULL;
        if (!e) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t d = wake - now;
            if (d < PT_NS_PER_MS) d = PT_NS_PER_MS;
            int64_t ns = ts.tv_nsec + d % PT_NS_PER_SEC;
            ts.tv_sec += (time_t)(d / PT_NS_PER_SEC + ns / PT_NS_PER_SEC);
            ts.tv_nsec = (long)(ns % PT_NS_PER_SEC);
            pthread_cond_timedwait(&a->cond, &a->lock, &ts);
            continue;
        }
        struct poll *p = calloc(1, sizeof *p);
        if (!p) {
            /* Try again in a moment; nothing is lost but time. */
            e->next_ns = now + PT_NS_PER_SEC;
            continue;
        }
        e->busy = true;
        a->inflight++;
        p->a = a;
        p->e = e;
        p->started = now;
        memcpy(p->po.fed_s, e->fed_s, sizeof p->po.fed_s);
        pthread_mutex_unlock(&a->lock);
        int rc = poll_begin(a, p);
        pthread_mutex_lock(&a->lock);
        if (rc) {
            /* Never reached drv_multi: the failure is recorded here. */
            a->inflight--;
            poll_end(a, p, true);
        }
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

/* ---- agentless.targets ---------------------------------------------------- */

static bool is_config(const struct agl_target *t)
{
    const char *m = json_string_value(json_object_get(t->pub, "managed"));
    return m && !strcmp(m, "config");
}

/* Reads a credentials file: a JSON object in a file others may not read. */
static int read_cred_file(const char *path, json_t **out, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st)) {
        snprintf(err, errlen, "credentials_file %s: %s", path, strerror(errno));
        return -errno;
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 007)) {
        snprintf(err, errlen,
                 "credentials_file %s: must be a regular file that others may not read "
                 "(chmod 600, or 640 with the daemon's group)",
                 path);
        return -EPERM;
    }
    json_error_t je;
    *out = json_load_file(path, 0, &je);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        snprintf(err, errlen, "credentials_file %s: line %d: %s", path, je.line,
                 je.text[0] ? je.text : "expected a JSON object");
        return -EINVAL;
    }
    return 0;
}

/* One element of agentless.targets into a validated target (creds set). */
static int config_target(const json_t *elem, struct agl_target *t, json_t **creds, char *err,
                         size_t errlen)
{
    if (!json_is_object(elem)) {
        snprintf(err, errlen, "expected an object like the body of POST /api/v1/targets");
        return -EINVAL;
    }
    if (json_object_get(elem, "credentials")) {
        snprintf(err, errlen,
                 "credentials do not belong in the config file: put them in a "
                 "\"credentials_file\" (mode 0600) or add the target through the API");
        return -EINVAL;
    }
    json_t *obj = json_deep_copy(elem), *cf = json_object_get(obj, "credentials_file");
    if (!obj) return -ENOMEM;
    int rc = 0;
    if (cf) {
        json_t *c = NULL;
        rc = json_is_string(cf)
                 ? read_cred_file(json_string_value(cf), &c, err, errlen)
                 : (snprintf(err, errlen, "credentials_file: expected a path"), -EINVAL);
        if (!rc) json_object_set_new(obj, "credentials", c);
        json_object_del(obj, "credentials_file");
    }
    char *body = rc ? NULL : json_dumps(obj, JSON_COMPACT);
    agl_json_wipe(json_object_get(obj, "credentials"));
    json_decref(obj);
    if (rc) return rc;
    if (!body) return -ENOMEM;
    size_t n = strlen(body);
    rc = agl_target_parse(body, n, t, creds, err, errlen);
    agl_wipe(body, n);
    free(body);
    if (rc) return rc == PT_E_CONFIG ? -EINVAL : rc;
    json_object_set_new(t->pub, "managed", json_string("config"));
    return 0;
}

int agl_config_check(const json_t *targets, char *err, size_t errlen)
{
    if (targets && !json_is_array(targets)) {
        snprintf(err, errlen, "agentless.targets: expected an array of targets");
        return -EINVAL;
    }
    for (size_t i = 0; i < json_array_size(targets); i++) {
        struct agl_target t;
        json_t *creds = NULL;
        char msg[768] = "";
        int rc = config_target(json_array_get(targets, i), &t, &creds, msg, sizeof msg);
        if (rc) {
            snprintf(err, errlen, "agentless.targets[%zu]: %s", i, msg);
            return rc;
        }
        agl_json_wipe(creds);
        json_decref(creds);
        agl_target_free(&t);
    }
    return 0;
}

static bool same_vm(const struct agl_target *a, const struct agl_target *b)
{
    return !strcmp(a->ns, b->ns) && !strcmp(a->mcis, b->mcis) && !strcmp(a->vm, b->vm) &&
           !strcmp(a->driver, b->driver);
}

static int put_target(struct agl *a, struct agl_target *t, const json_t *creds, json_t **out,
                      char *err, size_t errlen);

/* Makes targets.db hold exactly the configured targets among its config
 * ones (at open, before the scheduler starts). */
static int sync_config(struct agl *a, const json_t *arr, char *err, size_t errlen)
{
    if (arr && !json_is_array(arr)) {
        snprintf(err, errlen, "agentless.targets: expected an array of targets");
        return -EINVAL;
    }
    size_t n = json_array_size(arr), nkept = 0;
    int64_t *kept = calloc(n + 1, sizeof *kept);
    if (!kept) return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        struct agl_target t;
        json_t *creds = NULL, *out = NULL;
        char msg[768] = "";
        if ((rc = config_target(json_array_get(arr, i), &t, &creds, msg, sizeof msg))) {
            snprintf(err, errlen, "agentless.targets[%zu]: %s", i, msg);
            break;
        }
        /* The same VM through the same driver keeps its id (and history). */
        const struct entry *old = NULL;
        for (size_t k = 0; k < a->n && !old; k++) {
            const struct entry *e = a->e[k];
            bool taken = false;
            for (size_t q = 0; q < nkept; q++) taken |= kept[q] == e->t.id;
            if (!taken && is_config(&e->t) && same_vm(&e->t, &t)) old = e;
        }
        if (old) {
            t.id = old->t.id;
            t.created_ns = old->t.created_ns;
        } else {
            rc = agl_db_next_id(a->db, &t.id);
            t.created_ns = pt_now_ns();
        }
        t.updated_ns = pt_now_ns();
        int64_t id = t.id; /* put_target takes t's members */
        if (!rc) rc = put_target(a, &t, creds, &out, msg, sizeof msg);
        if (rc)
            snprintf(err, errlen, "agentless.targets[%zu]: %s", i, msg);
        else
            kept[nkept++] = id;
        json_decref(out);
        agl_json_wipe(creds);
        json_decref(creds);
        agl_target_free(&t);
    }
    for (size_t k = a->n; !rc && k-- > 0;) {
        int64_t id = a->e[k]->t.id;
        bool keep = !is_config(&a->e[k]->t);
        for (size_t q = 0; q < nkept; q++) keep |= kept[q] == id;
        if (keep) continue;
        if (agl_db_delete(a->db, id) == 0)
            PT_INFO(LOG, "target %lld removed: no longer in agentless.targets", (long long)id);
        entries_remove(a, k);
    }
    free(kept);
    return rc;
}

/* ---- open / close -------------------------------------------------------- */

int agl_open(struct agl **out, uv_loop_t *loop, const struct agl_opts *o, char *err, size_t errlen)
{
    struct agl *a = calloc(1, sizeof *a);
    if (!a) return -ENOMEM;
    a->o = *o;
    if (a->o.concurrency < 1) a->o.concurrency = 1;
    if (a->o.rate_per_s < 1) a->o.rate_per_s = 1;
    if (a->o.max_backoff_ns <= 0) a->o.max_backoff_ns = 900 * PT_NS_PER_SEC;
    if (!a->o.queue_frames) a->o.queue_frames = 4096;
    pthread_mutex_init(&a->api_lock, NULL);
    pthread_mutex_init(&a->lock, NULL);
    pthread_mutex_init(&a->qlock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->cond, &ca);
    pthread_condattr_destroy(&ca);
    int64_t mono = pt_mono_ns();
    for (size_t i = 0; drv_all[i] && a->nlim < MAX_LIMITS; i++) {
        struct limit *l = &a->lim[a->nlim++];
        snprintf(l->driver, sizeof l->driver, "%s", drv_all[i]->name);
        l->rate = a->o.rate_per_s;
        for (size_t k = 0; k < o->nrates; k++)
            if (!strcmp(o->rates[k].driver, l->driver)) l->rate = o->rates[k].per_s;
        l->tokens = l->rate;
        l->last_mono_ns = mono;
    }
    int rc;
    if ((rc = agl_key_load(&a->key, o->key_file, err, errlen))) goto fail;
    if ((rc = agl_db_open(&a->db, o->db_path, err, errlen))) goto fail;
    struct agl_target *ts;
    size_t n;
    if ((rc = agl_db_load(a->db, &ts, &n, err, errlen))) goto fail;
    for (size_t i = 0; i < n; i++) {
        struct entry *e = rc ? NULL : entry_new(a, &ts[i]);
        if (!rc && (!e || entries_add(a, e))) {
            entry_free(e);
            rc = -ENOMEM;
        }
        agl_target_free(&ts[i]);
    }
    free(ts);
    if (rc) {
        snprintf(err, errlen, "agentless: out of memory loading targets");
        goto fail;
    }
    if ((rc = sync_config(a, o->config_targets, err, errlen))) goto fail;
    recount(a);
    if (!(a->dec = pt_wire_dec_new())) {
        rc = -ENOMEM;
        goto fail;
    }
    if ((rc = uv_async_init(loop, &a->async, on_async))) {
        snprintf(err, errlen, "agentless: %s", uv_strerror(rc));
        goto fail;
    }
    a->async.data = a;
    a->async_init = true;
    /* A poll has one request in flight at a time: at most concurrency
     * connections, all to one endpoint when the targets share a cloud. */
    struct drv_multi_opts mo = {.max_host_conns = a->o.concurrency,
                                .max_total_conns = a->o.concurrency,
                                .thread_name = "pt-agl-curl"};
    if ((rc = drv_multi_new(&a->multi, &mo)) == 0) {
        if ((rc = -pthread_create(&a->sched, NULL, sched_main, a)) == 0) {
            a->sched_started = true;
            pthread_setname_np(a->sched, "pt-agentless");
        }
    }
    if (rc) {
        snprintf(err, errlen, "agentless: cannot start the poller's threads: %s", pt_strerror(rc));
        agl_stop_loop(a);
        uv_run(loop, UV_RUN_NOWAIT);
        agl_close(a);
        return rc;
    }
    PT_INFO(LOG,
            "agentless poller: %zu target(s), up to %d poll(s) at once on libcurl multi, key %s "
            "(id %s)",
            a->n, a->o.concurrency, o->key_file, a->key.id_hex);
    *out = a;
    return 0;
fail:
    agl_close(a);
    return rc;
}

void agl_stop_loop(struct agl *a)
{
    if (!a) return;
    pthread_mutex_lock(&a->qlock);
    bool close = a->async_init && !a->async_closed;
    a->async_closed = true;
    pthread_mutex_unlock(&a->qlock);
    if (close) uv_close((uv_handle_t *)&a->async, NULL);
}

void agl_close(struct agl *a)
{
    if (!a) return;
    pthread_mutex_lock(&a->lock);
    a->stopping = true;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
    if (a->sched_started) pthread_join(a->sched, NULL);
    /* Polls under way end now (cancelled, not failed): their entries are
     * released before they are freed below. */
    drv_multi_free(a->multi);
    if (a->dec) drain(a); /* what the last polls fetched still reaches the writer */
    for (size_t i = 0; i < a->n; i++) entry_free(a->e[i]);
    free(a->e);
    pt_wire_dec_free(a->dec);
    agl_db_close(a->db);
    agl_key_close(&a->key);
    pthread_cond_destroy(&a->cond);
    pthread_mutex_destroy(&a->lock);
    pthread_mutex_destroy(&a->qlock);
    pthread_mutex_destroy(&a->api_lock);
    free(a);
}

/* ---- API ----------------------------------------------------------------- */

static json_t *time_or_null(int64_t ns)
{
    char buf[64];
    if (!ns || ns == NEVER || pt_time_format(ns, 3, buf, sizeof buf) < 0) return json_null();
    return json_string(buf);
}

static json_t *error_json(const struct drv_error *e)
{
    return json_pack("{s:i,s:s,s:s,s:s}", "http_status", e->http_status, "provider_code",
                     e->provider_code, "message", e->message, "request_id", e->request_id);
}

static const char *metric_status(int st)
{
    switch (st) {
    case 0:
        return "ok";
    case DRV_E_UNSUPPORTED:
        return "unsupported";
    case DRV_E_NODATA:
        return "no_data";
    default:
        return "error";
    }
}

/* The target's public JSON plus its run-time status (a->lock held). */
static json_t *entry_json(const struct entry *e)
{
    json_t *j = agl_target_json(&e->t);
    if (!j) return NULL;
    json_t *s = json_object();
    json_object_set_new(s, "state", json_string(coll_agl_state_names[e->state]));
    json_object_set_new(s, "polls", json_integer((json_int_t)e->polls));
    json_object_set_new(s, "failures", json_integer((json_int_t)e->failures));
    json_object_set_new(s, "consecutive_failures", json_integer(e->consecutive));
    json_object_set_new(s, "values", json_integer((json_int_t)e->values));
    json_object_set_new(s, "last_poll", time_or_null(e->last_poll_ns));
    json_object_set_new(s, "last_success", time_or_null(e->last_success_ns));
    json_object_set_new(s, "next_poll", time_or_null(e->busy ? 0 : e->next_ns));
    json_object_set_new(s, "polling", json_boolean(e->busy));
    json_object_set_new(s, "backoff_s", json_integer((json_int_t)(e->backoff_ns / PT_NS_PER_SEC)));
    json_object_set_new(s, "newest_sample", time_or_null(e->newest_s * PT_NS_PER_SEC));
    if (e->err_kind >= 0) {
        json_t *le = error_json(&e->err);
        json_object_set_new(le, "kind", json_string(coll_agl_err_names[e->err_kind]));
        json_object_set_new(le, "at", time_or_null(e->err_at_ns));
        if (e->err_kind == COLL_AGL_E_THROTTLED)
            json_object_set_new(le, "retry_after_s", json_integer(e->err.retry_after_s));
        json_object_set_new(s, "last_error", le);
    } else {
        json_object_set_new(s, "last_error", json_null());
    }
    json_t *m = json_object();
    for (int k = 0; e->have_metrics && k < DRV_M_COUNT; k++) {
        json_t *mj = json_pack("{s:s}", "status", metric_status(e->mstatus[k]));
        if (e->mstatus[k] && e->mstatus[k] != DRV_E_UNSUPPORTED && e->mstatus[k] != DRV_E_NODATA)
            json_object_set_new(mj, "error", error_json(&e->merr[k]));
        json_object_set_new(m, drv_metric_name((enum drv_metric)k), mj);
    }
    json_object_set_new(s, "metrics", m);
    json_object_set_new(j, "status", s);
    return j;
}

int agl_api_list(struct agl *a, const char *ns, const char *mcis, json_t **out)
{
    json_t *arr = json_array();
    if (!arr) return -ENOMEM;
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < a->n; i++) {
        const struct entry *e = a->e[i];
        if ((ns && strcmp(ns, e->t.ns)) || (mcis && strcmp(mcis, e->t.mcis))) continue;
        json_array_append_new(arr, entry_json(e));
    }
    pthread_mutex_unlock(&a->lock);
    *out = arr;
    return 0;
}

int agl_api_get(struct agl *a, int64_t id, json_t **out)
{
    pthread_mutex_lock(&a->lock);
    struct entry *e = entries_find(a, id, NULL);
    *out = e ? entry_json(e) : NULL;
    pthread_mutex_unlock(&a->lock);
    return e ? (*out ? 0 : -ENOMEM) : -ENOENT;
}

/* Seals creds into t, stores t and puts it in place of any entry with
 * its id (a->api_lock held). */
static int put_target(struct agl *a, struct agl_target *t, const json_t *creds, json_t **out,
                      char *err, size_t errlen)
{
    int rc = agl_target_seal(t, &a->key, creds);
    if (rc) {
        snprintf(err, errlen, "cannot seal the credentials: %s", agl_cred_strerror(rc));
        return rc;
    }
    if ((rc = agl_db_put(a->db, t))) {
        snprintf(err, errlen, "cannot store the target in targets.db: %s", pt_strerror(rc));
        return rc;
    }
    struct entry *e = entry_new(a, t);
    if (!e) return -ENOMEM;
    pthread_mutex_lock(&a->lock);
    size_t idx;
    if (entries_find(a, e->t.id, &idx)) entries_remove(a, idx);
    rc = entries_add(a, e);
    if (rc) {
        entry_free(e);
    } else {
        *out = entry_json(e);
        recount(a);
        pthread_cond_broadcast(&a->cond);
    }
    pthread_mutex_unlock(&a->lock);
    return rc;
}

int agl_api_create(struct agl *a, const char *body, size_t len, json_t **out, char *err,
                   size_t errlen)
{
    struct agl_target t;
    json_t *creds;
    int rc = agl_target_parse(body, len, &t, &creds, err, errlen);
    if (rc) return rc == PT_E_CONFIG ? -EINVAL : rc;
    pthread_mutex_lock(&a->api_lock);
    if ((rc = agl_db_next_id(a->db, &t.id)) == 0) {
        t.created_ns = t.updated_ns = pt_now_ns();
        rc = put_target(a, &t, creds, out, err, errlen);
    } else {
        snprintf(err, errlen, "targets.db: cannot allocate an id");
    }
    pthread_mutex_unlock(&a->api_lock);
    agl_json_wipe(creds);
    json_decref(creds);
    agl_target_free(&t);
    if (!rc)
        PT_INFO(LOG, "target %lld added: %s/%s/%s via %s (%s)",
                (long long)json_integer_value(json_object_get(*out, "id")),
                json_string_value(json_object_get(*out, "ns")),
                json_string_value(json_object_get(*out, "mcis")),
                json_string_value(json_object_get(*out, "vm")),
                json_string_value(json_object_get(*out, "driver")),
                json_string_value(json_object_get(*out, "instance")));
    return rc;
}

static int update_locked(struct agl *a, int64_t id, const char *body, size_t len, json_t **out,
                         char *err, size_t errlen)
{
    struct agl_target t;
    json_t *creds = NULL, *stored = NULL;
    char *merged = NULL;
    int rc = 0;
    pthread_mutex_lock(&a->lock);
    struct entry *old = entries_find(a, id, NULL);
    int64_t created = old ? old->t.created_ns : 0;
    json_t *j = NULL;
    /* A body without "credentials" keeps the stored ones: they are put in
     * before validation, so the driver sees the target it will poll. */
    if (old && old->t.blob && (j = json_loadb(body, len, 0, NULL)) && json_is_object(j) &&
        !json_object_get(j, "credentials"))
        rc = agl_target_creds(&old->t, &a->key, &stored);
    pthread_mutex_unlock(&a->lock);
    if (!old) {
        json_decref(j);
        return -ENOENT;
    }
    if (is_config(&old->t)) {
        json_decref(j);
        snprintf(err, errlen,
                 "target %lld is defined in agentless.targets of the collector's "
                 "configuration: change it there",
                 (long long)id);
        return -EPERM;
    }
    if (rc) {
        json_decref(j);
        snprintf(err, errlen, "cannot open the stored credentials: %s", agl_cred_strerror(rc));
        return rc;
    }
    if (stored) {
        json_object_set(j, "credentials", stored);
        merged = json_dumps(j, JSON_COMPACT);
        agl_json_wipe(stored);
        json_decref(stored);
        if (!merged) {
            json_decref(j);
            return -ENOMEM;
        }
    }
    json_decref(j);
    rc = merged ? agl_target_parse(merged, strlen(merged), &t, &creds, err, errlen)
                : agl_target_parse(body, len, &t, &creds, err, errlen);
    if (merged) {
        agl_wipe(merged, strlen(merged));
        free(merged);
    }
    if (rc) return rc == PT_E_CONFIG ? -EINVAL : rc;
    t.id = id;
    t.created_ns = created;
    t.updated_ns = pt_now_ns();
    rc = put_target(a, &t, creds, out, err, errlen);
    agl_json_wipe(creds);
    json_decref(creds);
    agl_target_free(&t);
    if (!rc) PT_INFO(LOG, "target %lld updated", (long long)id);
    return rc;
}

int agl_api_update(struct agl *a, int64_t id, const char *body, size_t len, json_t **out, char *err,
                   size_t errlen)
{
    pthread_mutex_lock(&a->api_lock); /* a concurrent DELETE cannot be undone by this PUT */
    int rc = update_locked(a, id, body, len, out, err, errlen);
    pthread_mutex_unlock(&a->api_lock);
    return rc;
}

int agl_api_delete(struct agl *a, int64_t id)
{
    pthread_mutex_lock(&a->api_lock);
    pthread_mutex_lock(&a->lock);
    const struct entry *e = entries_find(a, id, NULL);
    bool config = e && is_config(&e->t);
    pthread_mutex_unlock(&a->lock);
    if (config) {
        pthread_mutex_unlock(&a->api_lock);
        return -EPERM;
    }
    int rc = agl_db_delete(a->db, id);
    if (rc == 0) {
        pthread_mutex_lock(&a->lock);
        size_t idx;
        if (entries_find(a, id, &idx)) entries_remove(a, idx);
        recount(a);
        pthread_mutex_unlock(&a->lock);
        PT_INFO(LOG, "target %lld deleted (its data stays in the store)", (long long)id);
    }
    pthread_mutex_unlock(&a->api_lock);
    return rc;
}

int agl_api_poll_now(struct agl *a, int64_t id, json_t **out)
{
    pthread_mutex_lock(&a->lock);
    struct entry *e = entries_find(a, id, NULL);
    if (e && e->t.enabled) {
        e->next_ns = pt_now_ns();
        if (e->state == COLL_AGL_STOPPED) e->state = COLL_AGL_PENDING;
        recount(a);
        pthread_cond_broadcast(&a->cond);
    }
    *out = e ? entry_json(e) : NULL;
    pthread_mutex_unlock(&a->lock);
    return e ? (*out ? 0 : -ENOMEM) : -ENOENT;
}
