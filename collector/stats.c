/* Collector counters and their Prometheus text rendering. */
#include "stats.h"
#include "pt/err.h"
#include "pt/time.h"
#include "pt/version.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

const char *const coll_reject_names[COLL_REJ_COUNT] = {
    [COLL_REJ_MALFORMED] = "malformed",
    [COLL_REJ_TRUNCATED] = "truncated",
    [COLL_REJ_LIMIT] = "limit",
    [COLL_REJ_VERSION] = "version",
    [COLL_REJ_UNKNOWN_SYMBOL] = "unknown_symbol",
    [COLL_REJ_UNKNOWN_AGENT] = "unknown_agent",
    [COLL_REJ_UNSIGNED] = "unsigned",
    [COLL_REJ_AUTH] = "auth",
    [COLL_REJ_REPLAY] = "replay",
    [COLL_REJ_TIME] = "time",
    [COLL_REJ_IDENTITY] = "identity",
};

const char *const coll_agl_err_names[COLL_AGL_E_COUNT] = {
    [COLL_AGL_E_AUTH] = "auth",
    [COLL_AGL_E_FORBIDDEN] = "forbidden",
    [COLL_AGL_E_NOTFOUND] = "not_found",
    [COLL_AGL_E_THROTTLED] = "throttled",
    [COLL_AGL_E_BADREQUEST] = "bad_request",
    [COLL_AGL_E_TRANSPORT] = "transport",
    [COLL_AGL_E_PARSE] = "parse",
    [COLL_AGL_E_CONFIG] = "config",
    [COLL_AGL_E_CREDENTIALS] = "credentials",
    [COLL_AGL_E_INTERNAL] = "internal",
};

const char *const coll_agl_state_names[COLL_AGL_STATE_COUNT] = {
    [COLL_AGL_PENDING] = "pending", [COLL_AGL_OK] = "ok",
    [COLL_AGL_ERROR] = "error",     [COLL_AGL_THROTTLED] = "throttled",
    [COLL_AGL_STOPPED] = "stopped", [COLL_AGL_DISABLED] = "disabled",
};

enum coll_reject coll_reject_from_err(int err)
{
    switch (err) {
    case PT_E_TRUNCATED:
        return COLL_REJ_TRUNCATED;
    case PT_E_LIMIT:
        return COLL_REJ_LIMIT;
    case PT_E_VERSION:
        return COLL_REJ_VERSION;
    case PT_E_UNKNOWN:
        return COLL_REJ_UNKNOWN_SYMBOL;
    case PT_E_AUTH:
        return COLL_REJ_AUTH;
    case PT_E_UNSIGNED:
        return COLL_REJ_UNSIGNED;
    case PT_E_REPLAY:
        return COLL_REJ_REPLAY;
    case PT_E_TIME:
        return COLL_REJ_TIME;
    case PT_E_IDENTITY:
        return COLL_REJ_IDENTITY;
    default:
        return COLL_REJ_MALFORMED;
    }
}

static void hist_init(struct coll_hist *h, const double *bounds, size_t n)
{
    h->nbounds = n;
    memcpy(h->bounds, bounds, n * sizeof *bounds);
}

void coll_hist_observe(struct coll_hist *h, double v)
{
    size_t i = 0;
    while (i < h->nbounds && v > h->bounds[i]) i++;
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->n, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_micro, (uint64_t)(v * 1e6), memory_order_relaxed);
}

void coll_stats_init(struct coll_stats *s)
{
    memset(s, 0, sizeof *s);
    s->start_ns = pt_now_ns();
    static const double pts[] = {1, 10, 50, 100, 500, 1000, 2500, 5000, 10000, 25000};
    static const double secs[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                  0.05,   0.1,   0.25,   0.5,   1,    2.5};
    hist_init(&s->batch_points, pts, sizeof pts / sizeof pts[0]);
    hist_init(&s->write_seconds, secs, sizeof secs / sizeof secs[0]);
}

/* A growable text buffer with a hard ceiling. */
struct tbuf {
    char *p;
    size_t len, cap;
    int err;
};

static void tb_printf(struct tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_printf(struct tbuf *b, const char *fmt, ...)
{
    if (b->err) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->err = -EINVAL;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = b->cap * 2 + (size_t)n;
        if (ncap > (4u << 20)) {
            b->err = PT_E_NOSPACE;
            return;
        }
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->err = -ENOMEM;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
}

#define LOAD(x) ((unsigned long long)atomic_load_explicit(&(x), memory_order_relaxed))

static void counter(struct tbuf *b, const char *name, const char *help, unsigned long long v)
{
    tb_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name, v);
}

static void gauge(struct tbuf *b, const char *name, const char *help, long long v)
{
    tb_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", name, help, name, name, v);
}

static void hist(struct tbuf *b, const char *name, const char *help, struct coll_hist *h)
{
    tb_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    unsigned long long cum = 0;
    for (size_t i = 0; i < h->nbounds; i++) {
        cum += LOAD(h->counts[i]);
        tb_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[i], cum);
    }
    cum += LOAD(h->counts[h->nbounds]);
    tb_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name, cum, name,
              (double)LOAD(h->sum_micro) / 1e6, name, LOAD(h->n));
}

static long long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long long size = 0, rss = 0;
    if (!f) return 0;
    if (fscanf(f, "%lld %lld", &size, &rss) != 2) rss = 0;
    fclose(f);
    return rss * sysconf(_SC_PAGESIZE);
}

int coll_stats_render(struct coll_stats *s, int64_t agents_up, char **out, size_t *len)
{
    struct tbuf b = {malloc(16384), 0, 16384, 0};
    if (!b.p) return -ENOMEM;

    tb_printf(&b,
              "# HELP pantala_build_info Version of this pantalad.\n"
              "# TYPE pantala_build_info gauge\npantala_build_info{version=\"%s\"} 1\n",
              PT_VERSION_STRING);
    counter(&b, "pantala_datagrams_received_total", "UDP datagrams received.", LOAD(s->datagrams));
    counter(&b, "pantala_frames_received_total", "Frames received (one per datagram).",
            LOAD(s->datagrams));
    counter(&b, "pantala_bytes_received_total", "UDP payload bytes received.", LOAD(s->bytes));
    tb_printf(
        &b,
        "# HELP pantala_frames_total Frames by outcome.\n# TYPE pantala_frames_total counter\n"
        "pantala_frames_total{outcome=\"accepted\"} %llu\n"
        "pantala_frames_total{outcome=\"duplicate\"} %llu\n"
        "pantala_frames_total{outcome=\"rejected\"} %llu\n",
        LOAD(s->accepted), LOAD(s->duplicate), LOAD(s->rejected));
    tb_printf(&b, "# HELP pantala_frames_rejected_total Rejected frames by reason.\n"
                  "# TYPE pantala_frames_rejected_total counter\n");
    for (int i = 0; i < COLL_REJ_COUNT; i++)
        tb_printf(&b, "pantala_frames_rejected_total{reason=\"%s\"} %llu\n", coll_reject_names[i],
                  LOAD(s->rejected_by[i]));
    counter(&b, "pantala_values_accepted_total", "Field values in accepted frames.",
            LOAD(s->values_accepted));
    counter(&b, "pantala_receive_errors_total", "Socket receive errors.", LOAD(s->recv_errors));
    counter(&b, "pantala_acks_sent_total", "Acknowledgements sent to agents.", LOAD(s->acks_sent));
    counter(&b, "pantala_ack_send_errors_total",
            "Acknowledgements the socket did not take (the next one repeats them).",
            LOAD(s->ack_send_errors));
    counter(&b, "pantala_frames_written_total", "Frames whose points reached the store.",
            LOAD(s->frames_written));
    counter(&b, "pantala_points_written_total", "Points (measurements) written to the store.",
            LOAD(s->points_written));
    counter(&b, "pantala_batches_written_total", "Store write batches.", LOAD(s->batches_written));
    tb_printf(&b,
              "# HELP pantala_points_dropped_total Points that were not stored, by reason.\n"
              "# TYPE pantala_points_dropped_total counter\n"
              "pantala_points_dropped_total{reason=\"queue_full\"} %llu\n"
              "pantala_points_dropped_total{reason=\"store_error\"} %llu\n"
              "pantala_points_dropped_total{reason=\"shutdown\"} %llu\n"
              "pantala_points_dropped_total{reason=\"outbox_full\"} %llu\n"
              "pantala_points_dropped_total{reason=\"outbox_corrupt\"} %llu\n",
              LOAD(s->points_dropped_queue), LOAD(s->points_dropped_store),
              LOAD(s->points_dropped_shutdown), LOAD(s->points_dropped_outbox),
              LOAD(s->points_dropped_corrupt));
    tb_printf(&b,
              "# HELP pantala_frames_dropped_total Accepted frames that were not stored, by "
              "reason.\n# TYPE pantala_frames_dropped_total counter\n"
              "pantala_frames_dropped_total{reason=\"queue_full\"} %llu\n"
              "pantala_frames_dropped_total{reason=\"store_error\"} %llu\n"
              "pantala_frames_dropped_total{reason=\"shutdown\"} %llu\n"
              "pantala_frames_dropped_total{reason=\"outbox_full\"} %llu\n"
              "pantala_frames_dropped_total{reason=\"outbox_corrupt\"} %llu\n",
              LOAD(s->frames_dropped_queue), LOAD(s->frames_dropped_store),
              LOAD(s->frames_dropped_shutdown), LOAD(s->frames_dropped_outbox),
              LOAD(s->frames_dropped_corrupt));
    counter(&b, "pantala_store_errors_total", "Failed store writes.", LOAD(s->store_errors));
    counter(&b, "pantala_store_retention_deleted_total", "Points deleted by retention.",
            LOAD(s->store_retention_deleted));
    gauge(&b, "pantala_store_healthy", "1 when the last store write succeeded, 0 during an outage.",
          (long long)atomic_load(&s->store_healthy));
    gauge(&b, "pantala_outbox_bytes", "Bytes of the on-disk outbox (segment files).",
          (long long)atomic_load(&s->outbox_bytes));
    gauge(&b, "pantala_outbox_max_bytes", "outbox.max_bytes (0: no outbox).",
          (long long)atomic_load(&s->outbox_max_bytes));
    gauge(&b, "pantala_outbox_batches", "Batches waiting in the outbox.",
          (long long)atomic_load(&s->outbox_batches));
    gauge(&b, "pantala_outbox_frames", "Frames waiting in the outbox.",
          (long long)atomic_load(&s->outbox_frames));
    int64_t oldest = atomic_load(&s->outbox_oldest_ns);
    tb_printf(&b,
              "# HELP pantala_outbox_oldest_age_seconds Age of the oldest batch in the outbox "
              "(0 when empty).\n# TYPE pantala_outbox_oldest_age_seconds gauge\n"
              "pantala_outbox_oldest_age_seconds %.3f\n",
              oldest > 0 && pt_now_ns() > oldest ? (double)(pt_now_ns() - oldest) / 1e9 : 0.0);
    counter(&b, "pantala_outbox_spilled_batches_total", "Batches written to the outbox.",
            LOAD(s->outbox_spilled_batches));
    counter(&b, "pantala_outbox_spilled_frames_total", "Frames written to the outbox.",
            LOAD(s->outbox_spilled_frames));
    counter(&b, "pantala_outbox_replayed_batches_total",
            "Batches written from the outbox to the store.", LOAD(s->outbox_replayed_batches));
    counter(&b, "pantala_outbox_replayed_frames_total",
            "Frames written from the outbox to the store.", LOAD(s->outbox_replayed_frames));
    counter(&b, "pantala_outbox_dropped_bytes_total",
            "Bytes of the oldest segments deleted because the outbox was full.",
            LOAD(s->outbox_dropped_bytes));
    counter(&b, "pantala_outbox_corrupt_bytes_total",
            "Torn or damaged outbox bytes found and removed.", LOAD(s->outbox_corrupt_bytes));
    tb_printf(&b,
              "# HELP pantala_store_points_refused_total Points a store server did not keep, by "
              "reason.\n# TYPE pantala_store_points_refused_total counter\n"
              "pantala_store_points_refused_total{reason=\"server_4xx\"} %llu\n"
              "pantala_store_points_refused_total{reason=\"unwritable\"} %llu\n",
              LOAD(s->store_points_refused), LOAD(s->store_points_unwritable));
    gauge(&b, "pantala_write_queue_depth", "Batches waiting for the writer thread.",
          (long long)atomic_load(&s->queue_depth));
    gauge(&b, "pantala_write_queue_capacity", "Capacity of the writer queue in batches.",
          (long long)atomic_load(&s->queue_capacity));
    gauge(&b, "pantala_store_bytes", "Size of the embedded store on disk.",
          (long long)atomic_load(&s->store_bytes));
    gauge(&b, "pantala_agents_registered", "Registered agents.",
          (long long)atomic_load(&s->agents_registered));
    gauge(&b, "pantala_agents_up", "Agents that sent a frame within three intervals.",
          (long long)agents_up);
    tb_printf(&b,
              "# HELP pantala_agentless_polls_total Agentless polls (one driver fetch each), by "
              "outcome.\n# TYPE pantala_agentless_polls_total counter\n"
              "pantala_agentless_polls_total{outcome=\"ok\"} %llu\n"
              "pantala_agentless_polls_total{outcome=\"failed\"} %llu\n",
              LOAD(s->agl_polls_ok), LOAD(s->agl_polls_failed));
    tb_printf(&b, "# HELP pantala_agentless_errors_total Failed agentless polls by kind.\n"
                  "# TYPE pantala_agentless_errors_total counter\n");
    for (int i = 0; i < COLL_AGL_E_COUNT; i++)
        tb_printf(&b, "pantala_agentless_errors_total{kind=\"%s\"} %llu\n", coll_agl_err_names[i],
                  LOAD(s->agl_errors[i]));
    counter(&b, "pantala_agentless_values_total", "Field values fetched from cloud APIs.",
            LOAD(s->agl_values));
    counter(&b, "pantala_agentless_frames_total", "Frames built from fetched values.",
            LOAD(s->agl_frames));
    tb_printf(&b,
              "# HELP pantala_agentless_dropped_total Fetched data not stored, by reason.\n"
              "# TYPE pantala_agentless_dropped_total counter\n"
              "pantala_agentless_dropped_total{reason=\"queue_full\"} %llu\n"
              "pantala_agentless_dropped_total{reason=\"invalid_series\"} %llu\n"
              "pantala_agentless_dropped_total{reason=\"out_of_range\"} %llu\n"
              "# HELP pantala_agentless_alert_dropped_total Fetched points not evaluated by "
              "the alert rules (hand-over queue full).\n"
              "# TYPE pantala_agentless_alert_dropped_total counter\n"
              "pantala_agentless_alert_dropped_total %llu\n",
              LOAD(s->agl_points_dropped_queue), LOAD(s->agl_series_skipped),
              LOAD(s->agl_points_outside), LOAD(s->agl_feed_dropped_queue));
    tb_printf(&b, "# HELP pantala_agentless_targets Agentless targets by state.\n"
                  "# TYPE pantala_agentless_targets gauge\n");
    for (int i = 0; i < COLL_AGL_STATE_COUNT; i++)
        tb_printf(&b, "pantala_agentless_targets{state=\"%s\"} %lld\n", coll_agl_state_names[i],
                  (long long)atomic_load(&s->agl_targets[i]));
    tb_printf(&b,
              "# HELP pantala_compat_requests_total Requests to the CB-Dragonfly routes, by "
              "answer.\n# TYPE pantala_compat_requests_total counter\n"
              "pantala_compat_requests_total{class=\"ok\"} %llu\n"
              "pantala_compat_requests_total{class=\"client_error\"} %llu\n"
              "pantala_compat_requests_total{class=\"server_error\"} %llu\n",
              LOAD(s->compat_answers[0]), LOAD(s->compat_answers[1]), LOAD(s->compat_answers[2]));
    tb_printf(&b, "# HELP pantala_compat_agent_jobs_total Agent installs and uninstalls through "
                  "/dragonfly/agent.\n# TYPE pantala_compat_agent_jobs_total counter\n");
    for (int a = 0; a < 2; a++)
        for (int o = 0; o < 2; o++)
            tb_printf(&b, "pantala_compat_agent_jobs_total{action=\"%s\",outcome=\"%s\"} %llu\n",
                      a ? "uninstall" : "install", o ? "failed" : "ok",
                      LOAD(s->compat_agent_jobs[a][o]));
    hist(&b, "pantala_store_batch_points", "Points per store write batch.", &s->batch_points);
    hist(&b, "pantala_store_write_seconds", "Latency of one store write batch.", &s->write_seconds);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    tb_printf(&b,
              "# HELP process_cpu_seconds_total Total user and system CPU time.\n"
              "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.3f\n",
              cpu);
    gauge(&b, "process_resident_memory_bytes", "Resident memory size in bytes.", rss_bytes());
    tb_printf(&b,
              "# HELP process_start_time_seconds Start time of the process since the Unix "
              "epoch.\n# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.3f\n",
              (double)s->start_ns / 1e9);
    if (b.err) {
        free(b.p);
        return b.err;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}
