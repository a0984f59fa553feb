/* The collector's own counters, exported at /metrics in the Prometheus
 * text format. Written by the ingest and writer threads with relaxed
 * atomics, read by API threads; one instance per daemon. */
#ifndef COLL_STATS_H
#define COLL_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Why a datagram was rejected. Keep coll_reject_names[] in step. */
enum coll_reject {
    COLL_REJ_MALFORMED,      /* not a v1 frame: bad msgpack, wrong shape or types */
    COLL_REJ_TRUNCATED,      /* shorter than its own lengths say */
    COLL_REJ_LIMIT,          /* exceeds a size/count ceiling */
    COLL_REJ_VERSION,        /* unsupported protocol version */
    COLL_REJ_UNKNOWN_SYMBOL, /* a symbol id this collector does not know */
    COLL_REJ_UNKNOWN_AGENT,  /* agent id not registered */
    COLL_REJ_UNSIGNED,       /* no HMAC trailer and not in insecure mode */
    COLL_REJ_AUTH,           /* HMAC does not verify under the agent's key */
    COLL_REJ_REPLAY,         /* sequence number or epoch older than the window */
    COLL_REJ_TIME,           /* sample timestamp outside [now-max_age, now+max_future] */
    COLL_REJ_IDENTITY,       /* ns/mcis/vm differ from the registration */
    COLL_REJ_COUNT
};
extern const char *const coll_reject_names[COLL_REJ_COUNT];

/* Maps a pt_wire_decode() error to a rejection reason. */
enum coll_reject coll_reject_from_err(int err);

/* Agentless poller (collector/agentless/): why a poll failed, and the
 * states a target can be in. Keep coll_agl_err_names[] and
 * coll_agl_state_names[] in step. */
enum coll_agl_err {
    COLL_AGL_E_AUTH,        /* credentials rejected */
    COLL_AGL_E_FORBIDDEN,   /* permission missing */
    COLL_AGL_E_NOTFOUND,    /* instance, resource or endpoint unknown */
    COLL_AGL_E_THROTTLED,   /* rate limited by the provider */
    COLL_AGL_E_BADREQUEST,  /* the provider refused the request */
    COLL_AGL_E_TRANSPORT,   /* connect, TLS, timeout, 5xx */
    COLL_AGL_E_PARSE,       /* answer not shaped as documented */
    COLL_AGL_E_CONFIG,      /* the driver refused the target's configuration */
    COLL_AGL_E_CREDENTIALS, /* sealed credentials cannot be opened (key file) */
    COLL_AGL_E_INTERNAL,    /* out of memory and the like */
    COLL_AGL_E_COUNT
};
extern const char *const coll_agl_err_names[COLL_AGL_E_COUNT];
enum coll_agl_state {
    COLL_AGL_PENDING,   /* not polled yet */
    COLL_AGL_OK,        /* last poll succeeded */
    COLL_AGL_ERROR,     /* last poll failed; retried with back-off */
    COLL_AGL_THROTTLED, /* the provider asked us to slow down */
    COLL_AGL_STOPPED,   /* needs the operator (auth, permission, config); not polled */
    COLL_AGL_DISABLED,  /* "enabled": false */
    COLL_AGL_STATE_COUNT
};
extern const char *const coll_agl_state_names[COLL_AGL_STATE_COUNT];

/* Fixed-bucket histogram (cumulative rendering is done at export). */
#define COLL_HIST_MAX 16
struct coll_hist {
    size_t nbounds;
    double bounds[COLL_HIST_MAX];
    _Atomic uint64_t counts[COLL_HIST_MAX + 1]; /* last: +Inf */
    _Atomic uint64_t n;
    _Atomic uint64_t sum_micro; /* sum in millionths, to stay atomic */
};
void coll_hist_observe(struct coll_hist *h, double v);

struct coll_stats {
    int64_t start_ns;
    _Atomic uint64_t datagrams, bytes;
    _Atomic uint64_t accepted, duplicate, rejected;
    _Atomic uint64_t rejected_by[COLL_REJ_COUNT];
    _Atomic uint64_t values_accepted;
    _Atomic uint64_t recv_errors, truncated_datagrams;
    _Atomic uint64_t acks_sent, ack_send_errors; /* acknowledgements to agents */
    _Atomic uint64_t points_written, frames_written, batches_written;
    _Atomic uint64_t frames_dropped_queue, points_dropped_queue;
    _Atomic uint64_t frames_dropped_store, points_dropped_store, store_errors;
    _Atomic uint64_t frames_dropped_shutdown, points_dropped_shutdown;
    _Atomic uint64_t store_retention_deleted;
    /* The outbox (writer.c, outbox.c). */
    _Atomic uint64_t frames_dropped_outbox, points_dropped_outbox;   /* outbox full */
    _Atomic uint64_t frames_dropped_corrupt, points_dropped_corrupt; /* damaged on disk */
    _Atomic uint64_t outbox_dropped_bytes, outbox_corrupt_bytes;
    _Atomic uint64_t outbox_spilled_batches, outbox_spilled_frames;
    _Atomic uint64_t outbox_replayed_batches, outbox_replayed_frames;
    _Atomic int64_t outbox_bytes, outbox_max_bytes, outbox_batches, outbox_frames;
    _Atomic int64_t outbox_oldest_ns; /* wall clock of the oldest batch; 0 when empty */
    _Atomic int64_t store_healthy;    /* 0 while store writes fail */
    /* Server backends: points the server refused (HTTP 4xx; the write then
     * fails and counts in store_errors too), and points line protocol cannot
     * carry (skipped, the rest of the batch is stored). */
    _Atomic uint64_t store_points_refused, store_points_unwritable;
    _Atomic int64_t queue_depth, queue_capacity;
    _Atomic int64_t store_bytes;
    _Atomic int64_t agents_registered;
    /* agentless poller */
    _Atomic uint64_t agl_polls_ok, agl_polls_failed;
    _Atomic uint64_t agl_errors[COLL_AGL_E_COUNT];
    _Atomic uint64_t agl_values, agl_frames;
    _Atomic uint64_t agl_points_dropped_queue, agl_series_skipped, agl_feed_dropped_queue;
    _Atomic uint64_t agl_points_outside; /* values outside the range asked for */
    _Atomic int64_t agl_targets[COLL_AGL_STATE_COUNT];
    /* the /dragonfly routes (collector/compat/): answers by class, and
     * agent jobs by [install, uninstall][ok, failed] */
    _Atomic uint64_t compat_answers[3]; /* 2xx/3xx, 4xx, 5xx */
    _Atomic uint64_t compat_agent_jobs[2][2];
    struct coll_hist batch_points;  /* points per write_batch */
    struct coll_hist write_seconds; /* write_batch latency */
};

void coll_stats_init(struct coll_stats *s);

/* Appends the Prometheus exposition to a heap buffer (*out, *len); the
 * caller frees it. agents_up is computed by the caller from the registry. */
int coll_stats_render(struct coll_stats *s, int64_t agents_up, char **out, size_t *len);

#endif
