/* The agent's main loop, frame building and --once. */
#include "agent.h"

#include <string.h>
#include <time.h>

#include "pt/err.h"
#include "pt/time.h"

#include "json.h"
#include "table.h"

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

/* Encoded size of f without a trailer, or -1 when it cannot be encoded at
 * all (a ceiling broken, or larger than a datagram). */
static long frame_size(const struct pt_frame *f, uint8_t *buf)
{
    size_t len;
    if (pt_wire_encode(f, NULL, buf, PT_WIRE_MAX_FRAME, &len)) return -1;
    return (long)len;
}

int agent_frame_split(const struct pt_frame *f, bool signed_, struct agent_parts *out)
{
    uint8_t buf[PT_WIRE_MAX_FRAME];
    const long trailer = signed_ ? PT_WIRE_MAC_LEN : 0;
    struct pt_frame t = *f;
    memset(out, 0, sizeof *out);

    /* The common case: the whole sample fits one frame, one encoding. */
    long whole = f->nmeas <= PT_WIRE_MAX_MEAS ? frame_size(f, buf) : -1;
    if (whole >= 0 && whole + trailer <= PT_WIRE_TARGET_FRAME) {
        out->first[0] = 0;
        out->count[0] = f->nmeas;
        out->n = 1;
        return 0;
    }

    /* A frame's size is its size without measurements plus the size of
     * each measurement; the measurement array's header grows from 1 byte
     * (fixarray, up to 15) to 3 bytes (array 16), hence 2 bytes of slack.
     * part and nparts stay below 128: 1 byte each whatever their value. */
    t.nmeas = 0;
    const long empty = frame_size(&t, buf);
    if (empty < 0) return PT_E_LIMIT;
    const long base = empty + trailer + 2;

    size_t fields = 0, tags = 0;
    long size = base;
    for (uint16_t i = 0; i < f->nmeas; i++) {
        const struct pt_meas *m = &f->meas[i];
        t.meas = (struct pt_meas *)m;
        t.nmeas = 1;
        long one = frame_size(&t, buf);
        long msize = one < 0 ? -1 : one - empty;
        if (msize < 0 || base + msize > PT_WIRE_MAX_FRAME) {
            out->skipped++; /* cannot travel even alone: the caller logs it */
            continue;
        }
        uint16_t last = out->n ? (uint16_t)(out->n - 1) : 0;
        bool fits = out->n > 0 && size + msize <= PT_WIRE_TARGET_FRAME &&
                    out->count[last] < PT_WIRE_MAX_MEAS &&
                    fields + m->nfields <= PT_WIRE_MAX_ALL_FIELDS &&
                    tags + m->ntags <= PT_WIRE_MAX_ALL_TAGS &&
                    out->first[last] + out->count[last] == i; /* nothing skipped between */
        if (!fits) {
            if (out->n == PT_WIRE_MAX_PARTS) {
                out->skipped = (uint16_t)(out->skipped + f->nmeas - i);
                break;
            }
            out->first[out->n] = i;
            out->count[out->n] = 0;
            out->n++;
            size = base;
            fields = tags = 0;
        }
        out->count[out->n - 1]++;
        size += msize;
        fields += m->nfields;
        tags += m->ntags;
    }
    return 0;
}

/* Encodes (signed when there is a key) and sends one frame. */
static int send_frame(struct agent *a, struct pt_frame *f, uint8_t *buf)
{
    size_t len;
    f->agent_id = a->cfg->agent_id;
    f->epoch = a->epoch;
    f->seq = ++a->seq;
    int rc = pt_wire_encode(f, a->cfg->has_key ? &a->key : NULL, buf, PT_WIRE_MAX_FRAME, &len);
    if (rc) {
        pt_complain(&a->encode_fail, PT_LOG_ERROR, "agent", "cannot encode frame %llu: %s",
                    (unsigned long long)f->seq, pt_strerror(rc));
        a->unsent++;
        return rc;
    }
    rc = agent_sender_send(&a->sender, buf, len);
    if (rc) {
        a->unsent++;
        return rc;
    }
    if (a->sent++ == 0) PT_INFO("agent", "first frame sent to %s (%zu bytes)", a->sender.name, len);
    PT_DEBUG("agent", "frame %llu (part %u of %u): %u measurements, %zu bytes",
             (unsigned long long)f->seq, (unsigned)f->part + 1, (unsigned)f->nparts,
             (unsigned)f->nmeas, len);
    return 0;
}

int agent_tick(struct agent *a, int64_t ts_ns)
{
    uint8_t buf[PT_WIRE_MAX_FRAME];
    struct pt_frame f;
    struct agent_parts parts;

    agent_sample_collect(&a->sample);
    agent_frame_fill(&f, a->cfg, &a->sample, ts_ns, (uint32_t)(a->cfg->interval_ns / PT_NS_PER_MS));
    int rc = agent_frame_split(&f, a->cfg->has_key, &parts);
    if (rc) {
        pt_complain(&a->encode_fail, PT_LOG_ERROR, "agent", "cannot encode the sample: %s",
                    pt_strerror(rc));
        a->unsent++;
        return rc;
    }
    if (parts.skipped) {
        a->skipped += parts.skipped;
        pt_complain(&a->encode_fail, PT_LOG_ERROR, "agent",
                    "%u measurement%s of this sample cannot be sent: too large for %d parts of "
                    "at most %d bytes",
                    (unsigned)parts.skipped, parts.skipped == 1 ? "" : "s", PT_WIRE_MAX_PARTS,
                    PT_WIRE_MAX_FRAME);
    }
    struct pt_meas *all = f.meas;
    int first_rc = 0;
    for (uint16_t p = 0; p < parts.n; p++) {
        f.part = p;
        f.nparts = parts.n;
        f.meas = all + parts.first[p];
        f.nmeas = parts.count[p];
        rc = send_frame(a, &f, buf);
        if (rc && !first_rc) first_rc = rc;
    }
    return first_rc;
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

int agent_once(const struct agent_config *cfg, bool json, FILE *out)
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
    if (json ? agent_json_write(out, &f) : agent_table_write(out, &f)) {
        PT_ERROR("agent", "cannot write the sample to standard output");
        return failed + 1;
    }
    return failed;
}
