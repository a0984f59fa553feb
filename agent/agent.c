/* The agent's main loop, frame building and --once. */
#include "agent.h"

#include <string.h>
#include <time.h>

#include "pt/err.h"
#include "pt/time.h"

#include "json.h"

#define ONCE_WAIT_NS (250 * PT_NS_PER_MS)

int agent_init(struct agent *a, const struct agent_config *cfg)
{
    memset(a, 0, sizeof *a);
    a->cfg = cfg;
    agent_sample_init(&a->sample, cfg);
    int rc = agent_sender_init(&a->sender, cfg->collector);
    if (rc) return rc;
    if (cfg->has_key && (rc = pt_wire_key_init(&a->key, cfg->key, sizeof cfg->key))) return rc;
    /* Milliseconds, so an agent restarted within the same second still
     * starts a new, larger epoch (docs/protocol.md). */
    a->epoch = (uint64_t)(pt_now_ns() / PT_NS_PER_MS);
    return 0;
}

void agent_close(struct agent *a)
{
    agent_sender_close(&a->sender);
    if (a->cfg && a->cfg->has_key) pt_wire_key_close(&a->key);
}

void agent_frame_fill(struct pt_frame *f, const struct agent_config *cfg,
                      const struct agent_sample *s, int64_t ts_ns, uint32_t interval_ms)
{
    memset(f, 0, sizeof *f);
    f->version = PT_WIRE_VERSION;
    f->kind = PT_WIRE_SAMPLE;
    f->ts_ns = ts_ns;
    f->interval_ms = interval_ms;
    f->part = 0;
    f->nparts = 1;
    f->id.ns = pt_str_c(cfg->ns);
    f->id.mcis = pt_str_c(cfg->mcis);
    f->id.vm = pt_str_c(cfg->vm);
    f->id.csp = pt_str_c(cfg->csp);
    f->id.host = pt_str_c(cfg->host);
    f->meas = (struct pt_meas *)s->list; /* pt_frame has no const view; encoding only reads */
    f->nmeas = s->n;
}

int agent_tick(struct agent *a, int64_t ts_ns)
{
    uint8_t buf[PT_WIRE_MAX_FRAME];
    struct pt_frame f;
    size_t len;

    agent_sample_collect(&a->sample);
    agent_frame_fill(&f, a->cfg, &a->sample, ts_ns, (uint32_t)(a->cfg->interval_ns / PT_NS_PER_MS));
    f.agent_id = a->cfg->agent_id;
    f.epoch = a->epoch;
    f.seq = ++a->seq;
    int rc = pt_wire_encode(&f, a->cfg->has_key ? &a->key : NULL, buf, sizeof buf, &len);
    if (rc) {
        pt_complain(&a->encode_fail, PT_LOG_ERROR, "agent", "cannot encode frame %llu: %s",
                    (unsigned long long)f.seq, pt_strerror(rc));
        a->unsent++;
        return rc;
    }
    rc = agent_sender_send(&a->sender, buf, len);
    if (rc) {
        a->unsent++;
        return rc;
    }
    if (a->sent++ == 0) PT_INFO("agent", "first frame sent to %s (%zu bytes)", a->sender.name, len);
    PT_DEBUG("agent", "frame %llu: %u measurements, %zu bytes", (unsigned long long)f.seq,
             (unsigned)f.nmeas, len);
    return 0;
}

int64_t agent_next_tick(int64_t now_ns, int64_t interval_ns)
{
    int64_t q = now_ns / interval_ns;
    if (now_ns < 0 && now_ns % interval_ns) q--; /* floor, for completeness */
    return (q + 1) * interval_ns;
}

/* Sleeps for ns, at most a second, on the monotonic clock; a signal ends
 * it early. The cap bounds how long a signal that lands just before the
 * sleep goes unnoticed. */
static void sleep_ns(int64_t ns)
{
    if (ns > PT_NS_PER_SEC) ns = PT_NS_PER_SEC;
    struct timespec ts = {(time_t)(ns / PT_NS_PER_SEC), (long)(ns % PT_NS_PER_SEC)};
    clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
}

int agent_run(struct agent *a, const volatile sig_atomic_t *stop)
{
    const int64_t iv = a->cfg->interval_ns;
    int64_t next = agent_next_tick(pt_now_ns(), iv);
    /* Ticks are wall-clock times (so every VM samples at the same instants),
     * but the waiting is done on the monotonic clock, one short sleep at a
     * time, re-reading the wall clock after each: an absolute
     * CLOCK_REALTIME sleep would stretch by however far the clock is set
     * back while it sleeps (an hour's NTP correction: an hour of silence). */
    while (!*stop) {
        int64_t now = pt_now_ns();
        if (next - now > iv) {
            pt_complain(&a->late, PT_LOG_WARN, "agent",
                        "the wall clock went back by %.3f s: realigning the ticks",
                        (double)(next - iv - now) / 1e9);
            next = agent_next_tick(now, iv);
            continue;
        }
        if (now < next) {
            sleep_ns(next - now);
            continue;
        }
        if (now - next >= iv) {
            /* Suspended, stopped or starved: skip to the next boundary
             * rather than burst out the missed ticks. */
            int64_t missed = (now - next) / iv + 1;
            pt_complain(&a->late, PT_LOG_WARN, "agent",
                        "woke %.3f s late (suspended or overloaded?): skipping %lld collection%s",
                        (double)(now - next) / 1e9, (long long)missed, missed == 1 ? "" : "s");
            next = agent_next_tick(now, iv);
            continue;
        }
        agent_tick(a, next);
        next += iv;
    }
    return 0;
}

int agent_once(const struct agent_config *cfg, FILE *out)
{
    struct agent_sample s;
    struct pt_frame f;
    int64_t wait = cfg->interval_ns < ONCE_WAIT_NS ? cfg->interval_ns : ONCE_WAIT_NS;

    agent_sample_init(&s, cfg);
    agent_sample_collect(&s);
    int64_t until = pt_mono_ns() + wait;
    for (int64_t left = wait; left > 0; left = until - pt_mono_ns()) sleep_ns(left);
    int failed = agent_sample_collect(&s);
    agent_frame_fill(&f, cfg, &s, pt_now_ns(), (uint32_t)(wait / PT_NS_PER_MS));
    f.agent_id = cfg->agent_id;
    f.seq = 1;
    if (agent_json_write(out, &f)) {
        PT_ERROR("agent", "cannot write the sample to standard output");
        return failed + 1;
    }
    return failed;
}
