/* The agent's main loop, frame building and --once. */
#include "agent.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>

#include "pt/catalog.h"
#include "pt/err.h"
#include "pt/time.h"
#include "pt/util.h"

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
    if (cfg->ring_bytes) {
        if ((rc = agent_ring_init(&a->ring, cfg->ring_bytes))) return rc;
        a->ring_on = true;
        a->tokens = 1;
    }
    /* Milliseconds, so an agent restarted within the same second still
     * starts a new, larger epoch (docs/protocol.md). */
    a->epoch = (uint64_t)(pt_now_ns() / PT_NS_PER_MS);
    return 0;
}

void agent_close(struct agent *a)
{
    agent_sender_close(&a->sender);
    if (a->cfg && a->cfg->has_key) pt_wire_key_close(&a->key);
    if (a->ring_on) agent_ring_close(&a->ring);
    a->ring_on = false;
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

/* Logs frames the ring dropped for room since the last time (rate-limited). */
static void log_ring_drops(struct agent *a)
{
    if (a->ring.dropped == a->dropped_logged) return;
    char every[32];
    pt_duration_format(a->cfg->interval_ns, every, sizeof every);
    pt_complain(&a->ring_full, PT_LOG_WARN, "agent",
                "ring full (%zu bytes, ring.bytes): dropped the oldest %llu unacknowledged "
                "frame%s (%llu in all); the collector has not acknowledged frames for a while",
                a->ring.cap, (unsigned long long)(a->ring.dropped - a->dropped_logged),
                a->ring.dropped - a->dropped_logged == 1 ? "" : "s",
                (unsigned long long)a->ring.dropped);
    a->dropped_logged = a->ring.dropped;
}

/* Encodes (signed when there is a key) and sends one frame, keeping it in
 * the ring; while the agent owes AGENT_SEND_SPAN frames or more it is only
 * kept, agent_pump() sends it in its turn. */
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
    int64_t now = pt_mono_ns();
    if (a->ring_on) {
        uint64_t oldest = agent_ring_oldest(&a->ring);
        bool hold = oldest && f->seq - oldest >= AGENT_SEND_SPAN;
        agent_ring_push(&a->ring, f->seq, buf, len, hold ? 0 : now, NULL);
        log_ring_drops(a);
        if (hold) return 0;
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

/* The agent's own measurement, "agent": what it sent and what it owes. */
static void self_measurement(struct agent *a, struct pt_meas *m)
{
    static const char *const names[] = {"frames_sent",   "frames_resent", "ring_dropped",
                                        "ring_frames",   "ring_bytes",    "ring_oldest",
                                        "acks_received", "acks_rejected"};
    /* ring_oldest: every seq below it is acknowledged or given up (dropped
     * from the full ring, or never kept without one), so the collector
     * stops waiting for it (docs/protocol.md). */
    uint64_t oldest = a->ring_on ? agent_ring_oldest(&a->ring) : 0;
    uint64_t v[] = {a->sent,         a->resent,       a->ring.dropped,
                    a->ring.unacked, a->ring.bytes,   oldest ? oldest : a->seq + 1,
                    a->acks,         a->acks_rejected};
    for (size_t i = 0; i < PT_ARRAY_LEN(names); i++) {
        a->self_fields[i].key = pt_str_c(names[i]);
        a->self_fields[i].type = PT_F_UINT;
        a->self_fields[i].v.u = v[i];
    }
    memset(m, 0, sizeof *m);
    m->name = PT_STR("agent");
    m->fields = a->self_fields;
    m->nfields = (uint16_t)PT_ARRAY_LEN(names);
}

int agent_tick(struct agent *a, int64_t ts_ns)
{
    uint8_t buf[PT_WIRE_MAX_FRAME];
    struct pt_frame f;
    struct agent_parts parts;

    agent_sample_collect(&a->sample);
    agent_frame_fill(&f, a->cfg, &a->sample, ts_ns, (uint32_t)(a->cfg->interval_ns / PT_NS_PER_MS));
    /* The sample, then the agent's own figures as of this tick. */
    memcpy(a->all, a->sample.list, a->sample.n * sizeof a->all[0]);
    self_measurement(a, &a->all[a->sample.n]);
    f.meas = a->all;
    f.nmeas = (uint16_t)(a->sample.n + 1);
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

void agent_on_datagram(struct agent *a, const uint8_t *buf, size_t len, int64_t now_ns)
{
    struct pt_wire_ack k;
    int rc = pt_wire_ack_decode(buf, len, &k);
    const char *why = rc ? pt_strerror(rc) : NULL;
    if (!rc && k.agent_id != a->cfg->agent_id) why = "for another agent";
    if (!why && a->cfg->has_key && (rc = pt_wire_ack_verify(&k, buf, &a->key)))
        why = rc == PT_E_UNSIGNED ? "unsigned" : "signature does not verify under the agent's key";
    if (why) {
        a->acks_rejected++;
        pt_complain(&a->ack_fail, PT_LOG_WARN, "agent",
                    "ignored a datagram from collector %s: not a valid acknowledgement (%s); "
                    "%llu ignored so far",
                    a->sender.name, why, (unsigned long long)a->acks_rejected);
        return;
    }
    if (k.epoch != a->epoch) {
        a->acks_stale++; /* for a previous run of this agent: nothing to do */
        return;
    }
    a->acks++;
    a->last_ack_ns = now_ns;
    if (a->ring_on) agent_ring_ack(&a->ring, &k);
}

int64_t agent_pump(struct agent *a, int64_t now_ns)
{
    if (!a->ring_on || a->ring.unacked == 0) return INT64_MAX;
    const int64_t after = a->cfg->resend_after_ns;
    const double rate = a->cfg->resend_rate;
    a->tokens += (double)(now_ns - a->tokens_ns) * rate / 1e9;
    if (a->tokens > rate) a->tokens = rate; /* a burst of one second at most */
    a->tokens_ns = now_ns;
    bool alive = a->last_ack_ns && now_ns - a->last_ack_ns < 3 * after;

    int64_t next = INT64_MAX;
    struct agent_ring_iter it;
    struct agent_ring_frame fr;
    agent_ring_iter(&a->ring, &it);
    while (agent_ring_next(&a->ring, &it, &fr)) {
        int64_t due = fr.sent_ns ? fr.sent_ns + after : now_ns;
        if (!alive) due = fr.sent_ns + after; /* probing: the oldest, every resend_after */
        if (due > now_ns) {
            if (due < next) next = due;
            if (!alive) break;
            continue;
        }
        if (a->tokens < 1) {
            int64_t wait = (int64_t)((1 - a->tokens) * 1e9 / rate) + 1;
            if (now_ns + wait < next) next = now_ns + wait;
            break;
        }
        a->tokens -= 1;
        bool first = fr.sent_ns == 0;
        agent_ring_sent(&a->ring, fr.at, now_ns);
        if (agent_sender_send(&a->sender, fr.data, fr.len) == 0) {
            if (first)
                a->sent++;
            else
                a->resent++;
        }
        PT_DEBUG("agent", "%s frame %llu (%zu bytes)", first ? "sent held" : "resent",
                 (unsigned long long)fr.seq, fr.len);
        if (!alive) {
            next = now_ns + after;
            break;
        }
    }
    return next == INT64_MAX ? INT64_MAX : next - now_ns;
}

/* Waits up to ns (at most a second) for datagrams from the collector and
 * takes them; without a socket yet, just sleeps. A signal ends the wait. */
static void wait_ns(struct agent *a, int64_t ns)
{
    if (ns > PT_NS_PER_SEC) ns = PT_NS_PER_SEC;
    if (ns < 0) ns = 0;
    if (a->sender.fd < 0) {
        sleep_ns(ns);
        return;
    }
    struct pollfd p = {.fd = a->sender.fd, .events = POLLIN};
    int ms = (int)((ns + PT_NS_PER_MS - 1) / PT_NS_PER_MS);
    if (poll(&p, 1, ms) <= 0) return;
    uint8_t buf[PT_WIRE_MAX_FRAME];
    for (int i = 0; i < 64; i++) { /* bounded: ticks must not starve */
        ssize_t n = agent_sender_recv(&a->sender, buf, sizeof buf);
        if (n == -EAGAIN) break;
        if (n < 0) continue; /* an ICMP error for an earlier send, or oversized */
        agent_on_datagram(a, buf, (size_t)n, pt_mono_ns());
    }
}

int agent_run(struct agent *a, const volatile sig_atomic_t *stop)
{
    const int64_t iv = a->cfg->interval_ns;
    int64_t next = agent_next_tick(pt_now_ns(), iv);
    a->tokens_ns = pt_mono_ns();
    /* Ticks are wall-clock times (so every VM samples at the same instants),
     * but the waiting is done on the monotonic clock (poll()), one short
     * wait at a time, re-reading the wall clock after each: an absolute
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
            int64_t resend = agent_pump(a, pt_mono_ns());
            wait_ns(a, resend < next - now ? resend : next - now);
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
