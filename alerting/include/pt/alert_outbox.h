/* The notify side's knobs and counters beyond the evaluator contract in
 * alert_notify.h: delivery options for alert_notifier_open_opts() and the
 * per-handler-type counters the collector renders into /metrics. */
#ifndef PT_ALERT_OUTBOX_H
#define PT_ALERT_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "pt/alert_notify.h"

#define ALERT_H_NTYPES 5 /* handler types, ALERT_H_WEBHOOK .. ALERT_H_EMAIL */

struct alert_notifier_opts {
    unsigned max_inflight;    /* deliveries in flight at once (default 8) */
    int64_t timeout_ns;       /* one attempt, connect to last byte (default 10 s) */
    int64_t retry_initial_ns; /* first back-off (default 1 s), doubling per attempt */
    int64_t retry_max_ns;     /* back-off cap (default 5 min) */
    int64_t give_up_after_ns; /* age at which an undelivered row is dropped as expired (24 h) */
    /* false (default): a submitted row survives the process being killed
     * (SQLite WAL, synchronous=NORMAL); true: also a power loss, at the
     * cost of one fsync per alert_notify_submit(). */
    int fsync_submit;
};

void alert_notifier_opts_default(struct alert_notifier_opts *o);

/* alert_notifier_open() with explicit options (o may be NULL: defaults). */
int alert_notifier_open_opts(struct alert_notifier **out, const char *path,
                             const struct alert_notifier_opts *o, char *err, size_t errlen);

/* A snapshot of the counters, indexed by enum alert_handler_type. */
struct alert_notify_stats {
    uint64_t submitted[ALERT_H_NTYPES]; /* (event, handler) pairs queued */
    uint64_t delivered[ALERT_H_NTYPES]; /* 2xx (SMTP: accepted) */
    uint64_t retried[ALERT_H_NTYPES];   /* attempts that failed and were rescheduled */
    uint64_t failed[ALERT_H_NTYPES];    /* permanent failures (4xx, bad settings) */
    uint64_t expired[ALERT_H_NTYPES];   /* given up: older than give_up_after */
    int64_t pending;                    /* rows waiting in the outbox (incl. in flight) */
    int64_t inflight;                   /* transfers running now */
};

void alert_notify_stats_get(struct alert_notifier *n, struct alert_notify_stats *out);

/* Writes the counters in the Prometheus text format into buf. Returns the
 * length written or PT_E_NOSPACE when buf is too small. */
int alert_notify_stats_render(const struct alert_notify_stats *s, char *buf, size_t len);

#endif
