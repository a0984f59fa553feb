/* The persistent outbox: every (event, handler) pair is a row of an SQLite
 * table from alert_notify_submit() until it is delivered (row deleted) or
 * given up (row kept, state failed). One delivery thread drives up to
 * max_inflight transfers with the libcurl multi interface; submitters only
 * insert and wake it, so they never wait on the network.
 *
 * At least once: a row is deleted only after the receiver said 2xx (SMTP:
 * accepted the message). A crash between that answer and the delete sends
 * the event again with the same id, which receivers use as idempotency key. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "notify_int.h"
#include "pt/err.h"
#include "pt/log.h"
#include "pt/time.h"
#include "pt/util.h"

#define LOG "notify"

/* libcurl before 8.2 spells it with three Ls (Debian 12 has 7.88). */
#if LIBCURL_VERSION_NUM < 0x080200
#define CURLOPT_MAIL_RCPT_ALLOWFAILS CURLOPT_MAIL_RCPT_ALLLOWFAILS
#endif

enum row_state { ROW_PENDING = 0, ROW_FAILED = 1 };

/* Failed rows are kept this long for inspection, then pruned at open. */
#define FAILED_KEEP_NS (7 * 24 * 3600 * PT_NS_PER_SEC)
/* The delivery thread rechecks the table at least this often. */
#define IDLE_WAIT_MS 1000

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS outbox("
    " id INTEGER PRIMARY KEY,"
    " event_id TEXT NOT NULL,"
    " handler TEXT NOT NULL,"
    " type INTEGER NOT NULL,"
    " settings TEXT NOT NULL,"
    " event TEXT NOT NULL," /* canonical event JSON (event.c) */
    " created_ns INTEGER NOT NULL,"
    " next_ns INTEGER NOT NULL," /* not before: back-off, Retry-After */
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " state INTEGER NOT NULL DEFAULT 0,"
    " leased INTEGER NOT NULL DEFAULT 0," /* 1 while a transfer is running */
    " last_error TEXT);"
    "CREATE INDEX IF NOT EXISTS outbox_due ON outbox(state, leased, next_ns);";

/* One running transfer. */
struct xfer {
    bool used;
    int64_t row;
    CURL *easy;
    struct notify_req req;
    size_t upload_off;
    char resp[NOTIFY_RESP_MAX + 1];
    size_t resp_len;
    char errbuf[CURL_ERROR_SIZE];
    int type;
    int attempts; /* including this one */
    int64_t created_ns;
    char handler[128];
    char event_id[80];
};

struct alert_notifier {
    struct alert_notifier_opts o;
    /* Submitters' connection, one at a time. */
    pthread_mutex_t submit_mu;
    sqlite3 *sdb;
    sqlite3_stmt *ins;
    /* Delivery thread's connection and statements. */
    sqlite3 *db;
    sqlite3_stmt *sel_due, *sel_next, *lease, *del, *retry, *fail;
    CURLM *multi;
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
    struct xfer *x;
    unsigned nx;
    uint64_t rng;
    struct pt_complain retry_complain[ALERT_H_NTYPES];
    _Atomic uint64_t submitted[ALERT_H_NTYPES], delivered[ALERT_H_NTYPES], retried[ALERT_H_NTYPES],
        failed[ALERT_H_NTYPES], expired[ALERT_H_NTYPES];
    _Atomic int64_t pending, inflight;
};

void alert_notifier_opts_default(struct alert_notifier_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->max_inflight = 8;
    o->timeout_ns = 10 * PT_NS_PER_SEC;
    o->retry_initial_ns = 1 * PT_NS_PER_SEC;
    o->retry_max_ns = 300 * PT_NS_PER_SEC;
    o->give_up_after_ns = 24 * 3600 * PT_NS_PER_SEC;
}

/* SQLite result codes -> ours, once, with the detail in the log/err. */
static int db_err(sqlite3 *db, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "outbox: %s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
    return PT_E_STORE;
}

static int db_open(const char *path, bool fsync_each, sqlite3 **out, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(
        path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = db_err(db, path, err, errlen);
        sqlite3_close(db);
        return rc;
    }
    sqlite3_busy_timeout(db, 5000);
    char sql[160];
    snprintf(sql, sizeof(sql), "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s;",
             fsync_each ? "FULL" : "NORMAL");
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, schema, NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_err(db, path, err, errlen);
        sqlite3_close(db);
        return rc;
    }
    *out = db;
    return 0;
}

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st, char *err, size_t errlen)
{
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
        return db_err(db, "prepare", err, errlen);
    return 0;
}

/* Runs a prepared UPDATE/DELETE once; a failure is logged (the row then
 * stays as it was and is retried later: never lost, maybe sent twice). */
static bool step_once(struct alert_notifier *n, sqlite3_stmt *st, const char *what)
{
    bool ok = sqlite3_step(st) == SQLITE_DONE;
    if (!ok) PT_ERROR(LOG, "outbox %s failed: %s", what, sqlite3_errmsg(n->db));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ok;
}

/* ---- delivery ------------------------------------------------------------ */

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nmemb, room = NOTIFY_RESP_MAX - x->resp_len;
    memcpy(x->resp + x->resp_len, p, n < room ? n : room); /* keep the head, drop the rest */
    x->resp_len += n < room ? n : room;
    x->resp[x->resp_len] = '\0';
    return n;
}

static size_t on_read(char *p, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t left = x->req.body_len - x->upload_off, n = size * nmemb;
    if (n > left) n = left;
    memcpy(p, x->req.body + x->upload_off, n);
    x->upload_off += n;
    return n;
}

static void xfer_release(struct alert_notifier *n, struct xfer *x)
{
    if (x->easy) {
        curl_multi_remove_handle(n->multi, x->easy);
        curl_easy_cleanup(x->easy);
    }
    notify_req_free(&x->req);
    memset(x, 0, sizeof(*x));
}

/* Response bodies go into the log: printable ASCII only, one line. */
static void printable(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e) *s = ' ';
}

static void mark_failed(struct alert_notifier *n, int64_t row, int type, const char *why,
                        bool expired)
{
    sqlite3_bind_text(n->fail, 1, why, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(n->fail, 2, row);
    step_once(n, n->fail, "mark failed");
    if (expired)
        atomic_fetch_add(&n->expired[type], 1);
    else
        atomic_fetch_add(&n->failed[type], 1);
    atomic_fetch_sub(&n->pending, 1);
}

static uint64_t rng_next(struct alert_notifier *n)
{
    /* xorshift64*: jitter only needs to spread receivers' load. */
    n->rng ^= n->rng >> 12;
    n->rng ^= n->rng << 25;
    n->rng ^= n->rng >> 27;
    return n->rng * UINT64_C(2685821657736338717);
}

/* Exponential back-off with jitter: the attempt-th delay is drawn from
 * [d/2, d] with d = initial * 2^(attempt-1) capped at retry_max, so many
 * events failing together do not retry in lock-step. */
static int64_t backoff(struct alert_notifier *n, int attempt)
{
    int64_t d = n->o.retry_initial_ns;
    for (int i = 1; i < attempt && d < n->o.retry_max_ns; i++) d *= 2;
    if (d > n->o.retry_max_ns) d = n->o.retry_max_ns;
    int64_t half = d / 2;
    return half + (half > 0 ? (int64_t)(rng_next(n) % (uint64_t)(half + 1)) : 0);
}

static void schedule_retry(struct alert_notifier *n, struct xfer *x, int64_t retry_after_ns,
                           const char *why)
{
    int64_t now = pt_now_ns();
    int64_t delay = backoff(n, x->attempts);
    if (retry_after_ns > delay) delay = retry_after_ns; /* the receiver asked for more */
    if (now + delay - x->created_ns > n->o.give_up_after_ns) {
        char msg[512];
        snprintf(msg, sizeof(msg), "expired after %d attempts: %s", x->attempts, why);
        PT_WARN(LOG, "giving up on event %s to handler '%s' (%s): %s", x->event_id, x->handler,
                alert_handler_type_name(x->type), msg);
        mark_failed(n, x->row, x->type, msg, true);
        return;
    }
    sqlite3_bind_int64(n->retry, 1, now + delay);
    sqlite3_bind_int(n->retry, 2, x->attempts);
    sqlite3_bind_text(n->retry, 3, why, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(n->retry, 4, x->row);
    step_once(n, n->retry, "reschedule");
    atomic_fetch_add(&n->retried[x->type], 1);
    char d[32];
    pt_duration_format(delay / PT_NS_PER_MS * PT_NS_PER_MS, d, sizeof(d)); /* ms are enough */
    pt_complain(&n->retry_complain[x->type], PT_LOG_WARN, LOG,
                "delivery of event %s to handler '%s' (%s) failed (attempt %d): %s; retrying in %s",
                x->event_id, x->handler, alert_handler_type_name(x->type), x->attempts, why, d);
}

static void finish(struct alert_notifier *n, struct xfer *x, CURLcode cc)
{
    long code = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
    char why[NOTIFY_RESP_MAX + 128];
    printable(x->resp);

    bool ok, permanent = false;
    if (x->req.smtp) {
        /* libcurl checks every SMTP reply; a 5xx one is the server's final
         * word (unknown mailbox, relay denied), a 4xx or a broken connection
         * is worth another try. */
        ok = cc == CURLE_OK;
        permanent = !ok && code >= 500 && code < 600;
        snprintf(why, sizeof(why), "SMTP %ld: %s", code,
                 x->errbuf[0] ? x->errbuf : curl_easy_strerror(cc));
    } else if (cc != CURLE_OK) {
        ok = false;
        snprintf(why, sizeof(why), "%s", x->errbuf[0] ? x->errbuf : curl_easy_strerror(cc));
    } else {
        ok = code >= 200 && code < 300;
        permanent = !ok && code != 429 && code != 408 && code < 500;
        snprintf(why, sizeof(why), "HTTP %ld: %s", code, x->resp_len ? x->resp : "(empty body)");
    }

    if (ok) {
        sqlite3_bind_int64(n->del, 1, x->row);
        step_once(n, n->del, "delete delivered");
        atomic_fetch_add(&n->delivered[x->type], 1);
        atomic_fetch_sub(&n->pending, 1);
        pt_complain_release(&n->retry_complain[x->type], LOG,
                            "deliveries to %s handlers work again",
                            alert_handler_type_name(x->type));
        PT_DEBUG(LOG, "event %s delivered to handler '%s' (attempt %d)", x->event_id, x->handler,
                 x->attempts);
    } else if (permanent) {
        PT_ERROR(LOG, "event %s to handler '%s' (%s) failed permanently: %s", x->event_id,
                 x->handler, alert_handler_type_name(x->type), why);
        mark_failed(n, x->row, x->type, why, false);
    } else {
        curl_off_t ra = 0;
        if (!x->req.smtp) curl_easy_getinfo(x->easy, CURLINFO_RETRY_AFTER, &ra);
        schedule_retry(n, x, ra > 0 ? (int64_t)ra * PT_NS_PER_SEC : 0, why);
    }
    xfer_release(n, x);
    atomic_fetch_sub(&n->inflight, 1);
}

/* Copies a row (id, event_id, handler, type, settings, event, created_ns,
 * attempts) into x; settings and event are parsed into *settings, *ev. */
static void load_row(struct xfer *x, sqlite3_stmt *row, json_t **settings, json_t **ev)
{
    x->row = sqlite3_column_int64(row, 0);
    snprintf(x->event_id, sizeof(x->event_id), "%s", (const char *)sqlite3_column_text(row, 1));
    snprintf(x->handler, sizeof(x->handler), "%s", (const char *)sqlite3_column_text(row, 2));
    x->type = sqlite3_column_int(row, 3);
    *settings = json_loads((const char *)sqlite3_column_text(row, 4), 0, NULL);
    *ev = json_loads((const char *)sqlite3_column_text(row, 5), 0, NULL);
    x->created_ns = sqlite3_column_int64(row, 6);
    x->attempts = sqlite3_column_int(row, 7) + 1;
}

/* Builds the request for a loaded row and adds it to the multi handle; a
 * row whose request cannot be built (settings changed format, ...) fails.
 * Called with no statement active: its writes must not run inside a read
 * transaction (WAL would refuse them with SQLITE_BUSY_SNAPSHOT once a
 * submitter has committed, without waiting). Takes settings and ev. */
static void start(struct alert_notifier *n, struct xfer *x, json_t *settings, json_t *ev)
{
    const struct notify_ops *ops = notify_ops_for((enum alert_handler_type)x->type);
    if (!ops) x->type = 0; /* keep the counters' index in range */

    char err[256] = "";
    if (pt_now_ns() - x->created_ns > n->o.give_up_after_ns) {
        snprintf(err, sizeof(err), "expired after %d attempts", x->attempts - 1);
        PT_WARN(LOG, "giving up on event %s to handler '%s': %s", x->event_id, x->handler, err);
        mark_failed(n, x->row, x->type, err, true);
        json_decref(settings);
        json_decref(ev);
        memset(x, 0, sizeof(*x));
        return;
    }
    int rc = -EINVAL;
    if (!ops)
        snprintf(err, sizeof(err), "unknown handler type %d", x->type);
    else if (!settings || !ev)
        snprintf(err, sizeof(err), "stored settings or event are not valid JSON");
    else
        rc = ops->build(ev, x->handler, settings, &x->req, err, sizeof(err));
    json_decref(settings);
    json_decref(ev);
    if (rc == 0 && !(x->easy = curl_easy_init())) {
        snprintf(err, sizeof(err), "curl_easy_init failed");
        rc = -ENOMEM;
    }
    if (rc < 0) {
        PT_ERROR(LOG, "event %s to handler '%s': cannot build the notification: %s", x->event_id,
                 x->handler, err);
        mark_failed(n, x->row, x->type, err, false);
        xfer_release(n, x);
        return;
    }

    CURL *e = x->easy;
    struct notify_req *r = &x->req;
    int64_t t = r->timeout_ns ? r->timeout_ns : n->o.timeout_ns;
    curl_easy_setopt(e, CURLOPT_URL, r->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(t / PT_NS_PER_MS));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(t / PT_NS_PER_MS));
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    if (r->insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (r->username) {
        curl_easy_setopt(e, CURLOPT_USERNAME, r->username);
        curl_easy_setopt(e, CURLOPT_PASSWORD, r->password);
    }
    if (r->smtp) {
        /* Settings are validated, but a stored URL must not be able to
         * reach another protocol. */
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
        curl_easy_setopt(e, CURLOPT_MAIL_FROM, r->mail_from);
        curl_easy_setopt(e, CURLOPT_MAIL_RCPT, r->rcpt);
        /* One mistyped address must not keep the alert from the others; when
         * every recipient is refused the transfer fails with the reply. */
        curl_easy_setopt(e, CURLOPT_MAIL_RCPT_ALLOWFAILS, 1L);
        curl_easy_setopt(e, CURLOPT_USE_SSL, r->use_ssl);
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(e, CURLOPT_READDATA, x);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
    } else {
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
        if (r->username) curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    }
    /* Without the lease the row would be picked again while in flight. */
    sqlite3_bind_int64(n->lease, 1, x->row);
    if (!step_once(n, n->lease, "lease")) {
        xfer_release(n, x);
        return;
    }
    if (curl_multi_add_handle(n->multi, e) != CURLM_OK) {
        /* Unleased again below by the retry path. */
        schedule_retry(n, x, 0, "curl_multi_add_handle failed");
        xfer_release(n, x);
        return;
    }
    x->used = true;
    atomic_fetch_add(&n->inflight, 1);
}

/* Starts due rows while there are free slots. */
static void start_due(struct alert_notifier *n)
{
    unsigned free_slots = 0;
    for (unsigned i = 0; i < n->nx; i++) free_slots += !n->x[i].used;
    if (!free_slots) return;
    sqlite3_bind_int64(n->sel_due, 1, pt_now_ns());
    sqlite3_bind_int(n->sel_due, 2, (int)free_slots);
    /* Collect first, start after: starting writes the table (lease). */
    int64_t rows[64];
    unsigned nrows = 0;
    while (nrows < free_slots && nrows < PT_ARRAY_LEN(rows) &&
           sqlite3_step(n->sel_due) == SQLITE_ROW)
        rows[nrows++] = sqlite3_column_int64(n->sel_due, 0);
    sqlite3_reset(n->sel_due);
    sqlite3_clear_bindings(n->sel_due);

    sqlite3_stmt *one = NULL;
    if (nrows && sqlite3_prepare_v2(n->db,
                                    "SELECT id, event_id, handler, type, settings, event, "
                                    "created_ns, attempts FROM outbox WHERE id=?",
                                    -1, &one, NULL) != SQLITE_OK) {
        PT_ERROR(LOG, "outbox read failed: %s", sqlite3_errmsg(n->db));
        return;
    }
    unsigned slot = 0;
    for (unsigned i = 0; i < nrows; i++) {
        while (slot < n->nx && n->x[slot].used) slot++;
        if (slot == n->nx) break;
        sqlite3_bind_int64(one, 1, rows[i]);
        json_t *settings = NULL, *ev = NULL;
        bool found = sqlite3_step(one) == SQLITE_ROW;
        if (found) load_row(&n->x[slot], one, &settings, &ev);
        sqlite3_reset(one); /* ends the read before start() writes */
        if (found) start(n, &n->x[slot], settings, ev);
    }
    sqlite3_finalize(one);
}

/* Milliseconds until the next row is due (capped at IDLE_WAIT_MS). */
static int next_wait_ms(struct alert_notifier *n)
{
    int ms = IDLE_WAIT_MS;
    if (sqlite3_step(n->sel_next) == SQLITE_ROW &&
        sqlite3_column_type(n->sel_next, 0) != SQLITE_NULL) {
        int64_t d = sqlite3_column_int64(n->sel_next, 0) - pt_now_ns();
        if (d <= 0)
            ms = 0;
        else if (d / PT_NS_PER_MS < ms)
            ms = (int)(d / PT_NS_PER_MS) + 1;
    }
    sqlite3_reset(n->sel_next);
    return ms;
}

static void *delivery_main(void *arg)
{
    struct alert_notifier *n = arg;
    pthread_setname_np(pthread_self(), "pt-notify");
    while (!atomic_load(&n->stop)) {
        int running = 0;
        curl_multi_perform(n->multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(n->multi, &left))) {
            if (m->msg != CURLMSG_DONE) continue;
            struct xfer *x = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            if (x) finish(n, x, m->data.result);
        }
        start_due(n);
        bool full = true;
        for (unsigned i = 0; i < n->nx; i++) full = full && n->x[i].used;
        /* With every slot busy only a transfer's end (a socket event) or a
         * stop can change anything. */
        int ms = full ? IDLE_WAIT_MS : next_wait_ms(n);
        if (atomic_load(&n->stop)) break;
        curl_multi_poll(n->multi, NULL, 0, ms, NULL);
    }
    /* Interrupted transfers go back to the queue, due now: the next open
     * sends them again (same id). */
    for (unsigned i = 0; i < n->nx; i++)
        if (n->x[i].used) {
            xfer_release(n, &n->x[i]);
            atomic_fetch_sub(&n->inflight, 1);
        }
    sqlite3_exec(n->db, "UPDATE outbox SET leased=0 WHERE leased=1", NULL, NULL, NULL);
    return NULL;
}

/* ---- public -------------------------------------------------------------- */

static void notifier_free(struct alert_notifier *n)
{
    sqlite3_stmt *sts[] = {n->ins, n->sel_due, n->sel_next, n->lease, n->del, n->retry, n->fail};
    for (size_t i = 0; i < PT_ARRAY_LEN(sts); i++) sqlite3_finalize(sts[i]);
    sqlite3_close(n->sdb);
    sqlite3_close(n->db);
    if (n->multi) curl_multi_cleanup(n->multi);
    free(n->x);
    pthread_mutex_destroy(&n->submit_mu);
    free(n);
    curl_global_cleanup();
}

int alert_notifier_open_opts(struct alert_notifier **out, const char *path,
                             const struct alert_notifier_opts *o, char *err, size_t errlen)
{
    *out = NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "notify: libcurl initialisation failed");
        return PT_E_CONFIG;
    }
    struct alert_notifier *n = calloc(1, sizeof(*n));
    if (!n) {
        curl_global_cleanup();
        snprintf(err, errlen, "notify: out of memory");
        return -ENOMEM;
    }
    pthread_mutex_init(&n->submit_mu, NULL);
    if (o)
        n->o = *o;
    else
        alert_notifier_opts_default(&n->o);
    if (n->o.max_inflight == 0 || n->o.max_inflight > 64 || n->o.timeout_ns <= 0 ||
        n->o.retry_initial_ns <= 0 || n->o.retry_max_ns < n->o.retry_initial_ns ||
        n->o.give_up_after_ns <= 0) {
        snprintf(err, errlen,
                 "notify: options out of range (max_inflight 1..64, positive timeout and "
                 "give-up age, retry_max >= retry_initial > 0)");
        notifier_free(n);
        return PT_E_CONFIG;
    }
    int rc = db_open(path, n->o.fsync_submit, &n->db, err, errlen);
    if (rc == 0) rc = db_open(path, n->o.fsync_submit, &n->sdb, err, errlen);
    /* Checkpoints (copying the WAL into the database, with an fsync) are
     * left to the delivery thread's connection, which writes after every
     * transfer: a submitter, the evaluator, must not stall on one. */
    if (rc == 0 &&
        sqlite3_exec(n->sdb, "PRAGMA wal_autocheckpoint=0", NULL, NULL, NULL) != SQLITE_OK)
        rc = db_err(n->sdb, "wal_autocheckpoint", err, errlen);
    if (rc == 0)
        rc = prep(n->sdb,
                  "INSERT INTO outbox(event_id, handler, type, settings, event, created_ns, "
                  "next_ns) VALUES(?,?,?,?,?,?,?)",
                  &n->ins, err, errlen);
    if (rc == 0)
        rc = prep(n->db,
                  "SELECT id FROM outbox WHERE state=0 AND leased=0 AND next_ns<=? "
                  "ORDER BY next_ns LIMIT ?",
                  &n->sel_due, err, errlen);
    if (rc == 0)
        rc = prep(n->db, "SELECT min(next_ns) FROM outbox WHERE state=0 AND leased=0", &n->sel_next,
                  err, errlen);
    if (rc == 0) rc = prep(n->db, "UPDATE outbox SET leased=1 WHERE id=?", &n->lease, err, errlen);
    if (rc == 0) rc = prep(n->db, "DELETE FROM outbox WHERE id=?", &n->del, err, errlen);
    if (rc == 0)
        rc = prep(n->db,
                  "UPDATE outbox SET next_ns=?, attempts=?, last_error=?, leased=0 WHERE id=?",
                  &n->retry, err, errlen);
    if (rc == 0)
        rc = prep(n->db,
                  "UPDATE outbox SET state=1, attempts=attempts+1, last_error=?, leased=0 "
                  "WHERE id=?",
                  &n->fail, err, errlen);
    /* A previous process that died mid-transfer left rows leased: they are
     * due now. Old failed rows are pruned. */
    if (rc == 0) {
        char sql[200];
        snprintf(sql, sizeof(sql),
                 "UPDATE outbox SET leased=0 WHERE leased=1;"
                 "DELETE FROM outbox WHERE state=1 AND created_ns < %" PRId64 ";",
                 pt_now_ns() - FAILED_KEEP_NS);
        if (sqlite3_exec(n->db, sql, NULL, NULL, NULL) != SQLITE_OK)
            rc = db_err(n->db, "recovery", err, errlen);
    }
    if (rc == 0) {
        sqlite3_stmt *c = NULL;
        if (sqlite3_prepare_v2(n->db, "SELECT count(*) FROM outbox WHERE state=0", -1, &c, NULL) ==
                SQLITE_OK &&
            sqlite3_step(c) == SQLITE_ROW)
            atomic_store(&n->pending, sqlite3_column_int64(c, 0));
        sqlite3_finalize(c);
    }
    if (rc == 0) {
        n->nx = n->o.max_inflight;
        n->x = calloc(n->nx, sizeof(*n->x));
        n->multi = curl_multi_init();
        if (!n->x || !n->multi) {
            snprintf(err, errlen, "notify: out of memory");
            rc = -ENOMEM;
        }
    }
    if (rc == 0) {
        curl_multi_setopt(n->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)n->nx);
        /* Keep that many idle connections for reuse: the default scales with
         * the handles added, which come and go here. */
        curl_multi_setopt(n->multi, CURLMOPT_MAXCONNECTS, (long)n->nx);
        if (pt_random(&n->rng, sizeof(n->rng)) < 0 || n->rng == 0)
            n->rng = (uint64_t)pt_now_ns() | 1;
        if (pthread_create(&n->thread, NULL, delivery_main, n) != 0) {
            snprintf(err, errlen, "notify: cannot start the delivery thread");
            rc = -EAGAIN;
        } else {
            n->thread_started = true;
        }
    }
    if (rc < 0) {
        notifier_free(n);
        return rc;
    }
    if (atomic_load(&n->pending) > 0)
        PT_INFO(LOG, "outbox %s: %" PRId64 " notifications to deliver from before", path,
                (int64_t)atomic_load(&n->pending));
    *out = n;
    return 0;
}

int alert_notifier_open(struct alert_notifier **out, const char *path, char *err, size_t errlen)
{
    return alert_notifier_open_opts(out, path, NULL, err, errlen);
}

int alert_notify_submit(struct alert_notifier *n, const struct alert_event *ev,
                        const struct alert_handler *handlers, size_t nhandlers)
{
    if (!n || !ev) return -EINVAL;
    if (nhandlers == 0) return 0;
    json_t *j = notify_event_json(ev);
    char *event = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(j);
    if (!event) {
        PT_ERROR(LOG, "event %s of rule %s cannot be encoded (missing id/rule or bad UTF-8)",
                 ev->id ? ev->id : "(null)", ev->rule ? ev->rule : "(null)");
        return -EINVAL;
    }
    for (size_t i = 0; i < nhandlers; i++)
        if (!notify_ops_for(handlers[i].type) || !handlers[i].name || !handlers[i].settings_json) {
            PT_ERROR(LOG, "event %s: handler %zu is incomplete (name, type, settings)", ev->id, i);
            free(event);
            return -EINVAL;
        }

    int64_t now = pt_now_ns();
    int rc = 0;
    /* Counted before the commit: the delivery thread may deliver and count
     * down before this thread would get to count up. */
    atomic_fetch_add(&n->pending, (int64_t)nhandlers);
    pthread_mutex_lock(&n->submit_mu);
    /* One transaction: all handlers of the event are queued or none. */
    if (sqlite3_exec(n->sdb, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) rc = PT_E_STORE;
    for (size_t i = 0; rc == 0 && i < nhandlers; i++) {
        sqlite3_bind_text(n->ins, 1, ev->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(n->ins, 2, handlers[i].name, -1, SQLITE_STATIC);
        sqlite3_bind_int(n->ins, 3, (int)handlers[i].type);
        sqlite3_bind_text(n->ins, 4, handlers[i].settings_json, -1, SQLITE_STATIC);
        sqlite3_bind_text(n->ins, 5, event, -1, SQLITE_STATIC);
        sqlite3_bind_int64(n->ins, 6, now);
        sqlite3_bind_int64(n->ins, 7, now);
        if (sqlite3_step(n->ins) != SQLITE_DONE) rc = PT_E_STORE;
        sqlite3_reset(n->ins);
        sqlite3_clear_bindings(n->ins);
    }
    if (rc == 0 && sqlite3_exec(n->sdb, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) rc = PT_E_STORE;
    if (rc < 0) {
        PT_ERROR(LOG, "event %s not queued: outbox write failed: %s", ev->id,
                 sqlite3_errmsg(n->sdb));
        sqlite3_exec(n->sdb, "ROLLBACK", NULL, NULL, NULL);
    }
    pthread_mutex_unlock(&n->submit_mu);
    free(event);
    if (rc < 0) {
        atomic_fetch_sub(&n->pending, (int64_t)nhandlers);
        return rc;
    }
    for (size_t i = 0; i < nhandlers; i++) atomic_fetch_add(&n->submitted[handlers[i].type], 1);
    curl_multi_wakeup(n->multi);
    return 0;
}

void alert_notifier_close(struct alert_notifier *n)
{
    if (!n) return;
    if (n->thread_started) {
        atomic_store(&n->stop, true);
        curl_multi_wakeup(n->multi);
        pthread_join(n->thread, NULL);
    }
    notifier_free(n);
}

void alert_notify_stats_get(struct alert_notifier *n, struct alert_notify_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (int t = 0; t < ALERT_H_NTYPES; t++) {
        out->submitted[t] = atomic_load(&n->submitted[t]);
        out->delivered[t] = atomic_load(&n->delivered[t]);
        out->retried[t] = atomic_load(&n->retried[t]);
        out->failed[t] = atomic_load(&n->failed[t]);
        out->expired[t] = atomic_load(&n->expired[t]);
    }
    out->pending = atomic_load(&n->pending);
    out->inflight = atomic_load(&n->inflight);
}

int alert_notify_stats_render(const struct alert_notify_stats *s, char *buf, size_t len)
{
    size_t off = 0;
    int w;
#define EMIT(...)                                                 \
    do {                                                          \
        w = snprintf(buf + off, len - off, __VA_ARGS__);          \
        if (w < 0 || (size_t)w >= len - off) return PT_E_NOSPACE; \
        off += (size_t)w;                                         \
    } while (0)
    if (!len) return PT_E_NOSPACE;
    EMIT("# HELP pantala_alert_notifications_total Notifications by handler type and outcome "
         "(submitted, delivered, retried attempt, failed permanently, expired).\n"
         "# TYPE pantala_alert_notifications_total counter\n");
    const struct {
        const char *name;
        const uint64_t *v;
    } rows[] = {{"submitted", s->submitted},
                {"delivered", s->delivered},
                {"retried", s->retried},
                {"failed", s->failed},
                {"expired", s->expired}};
    for (size_t r = 0; r < PT_ARRAY_LEN(rows); r++)
        for (int t = 0; t < ALERT_H_NTYPES; t++)
            EMIT("pantala_alert_notifications_total{type=\"%s\",result=\"%s\"} %" PRIu64 "\n",
                 alert_handler_type_name((enum alert_handler_type)t), rows[r].name, rows[r].v[t]);
    EMIT("# HELP pantala_alert_outbox_pending Notifications waiting in the outbox.\n"
         "# TYPE pantala_alert_outbox_pending gauge\npantala_alert_outbox_pending %" PRId64 "\n"
         "# HELP pantala_alert_notifications_inflight Deliveries in progress.\n"
         "# TYPE pantala_alert_notifications_inflight gauge\n"
         "pantala_alert_notifications_inflight %" PRId64 "\n",
         s->pending, s->inflight);
#undef EMIT
    return (int)off;
}
