/* The agent: one frame per interval, at wall-clock multiples of the
 * interval, sent to the collector and kept in the ring until the collector
 * acknowledges it (resent otherwise, agent/ring.h); and --once, one sample
 * printed as a table or JSON. */
#ifndef AGENT_AGENT_H
#define AGENT_AGENT_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "pt/log.h"
#include "pt/wire.h"

#include "config.h"
#include "ring.h"
#include "sample.h"
#include "sender.h"

/* Caller-allocated: agent_init() / agent_close(). cfg is borrowed and must
 * outlive the agent. */
struct agent {
    const struct agent_config *cfg;
    struct agent_sample sample;
    struct agent_sender sender;
    struct pt_wire_key key; /* used when cfg->has_key */
    uint64_t epoch;         /* start time, Unix milliseconds */
    uint64_t seq;           /* of the last frame built; the first is 1 */
    uint64_t sent, unsent;  /* frames handed to the kernel, frames not */
    uint64_t skipped;       /* measurements too large to send */
    /* Acknowledged delivery (cfg->ring_bytes > 0). */
    bool ring_on;
    struct agent_ring ring;
    uint64_t resent;              /* frames sent again from the ring */
    uint64_t acks, acks_rejected; /* acks taken; acks ignored as invalid or forged */
    uint64_t acks_stale;          /* valid acks for an older epoch */
    int64_t last_ack_ns;          /* monotonic; 0: none yet */
    double tokens;                /* resend budget (frames) */
    int64_t tokens_ns;            /* monotonic time of the last refill */
    uint64_t dropped_logged;      /* ring drops already logged */
    struct pt_complain ack_fail, ring_full;
    /* The sample plus the agent's own measurement "agent" (self_fields). */
    struct pt_meas all[AGENT_SAMPLE_MAX_MEAS + 1];
    struct pt_field self_fields[8];
    struct pt_complain encode_fail, late;
};

/* The agent holds new frames back in the ring (instead of sending them at
 * once) while it owes this many older ones, so that every frame in flight
 * stays inside the collector's 1024-seq duplicate window (docs/protocol.md,
 * "Resend rules"). */
#define AGENT_SEND_SPAN 512

/* Prepares the key and the sender; touches no network. Returns 0, -EINVAL
 * for a bad collector address, or the key set-up's error. */
int agent_init(struct agent *a, const struct agent_config *cfg);
void agent_close(struct agent *a);

/* Describes the last collection of s as a frame: identity from cfg, the
 * sample time ts_ns, interval_ms, part 0 of 1. agent_id, epoch and seq are
 * left 0 for the caller. f points into cfg and s. */
void agent_frame_fill(struct pt_frame *f, const struct agent_config *cfg,
                      const struct agent_sample *s, int64_t ts_ns, uint32_t interval_ms);

/* How one sample is cut into frames: part p carries the measurements
 * first[p] .. first[p] + count[p] - 1 of the sample. */
struct agent_parts {
    uint16_t first[PT_WIRE_MAX_PARTS], count[PT_WIRE_MAX_PARTS];
    uint16_t n;       /* parts; 0 when nothing can be sent */
    uint16_t skipped; /* measurements too large to travel even alone */
};

/* Splits the sample of f (identity, header, measurements) into parts that
 * each encode to at most PT_WIRE_TARGET_FRAME bytes (trailer included when
 * signed_), keeping the measurements in order and whole, and within the
 * wire ceilings (PT_WIRE_MAX_MEAS, _ALL_FIELDS, _ALL_TAGS per frame). A
 * measurement larger than the target on its own gets a part of its own (up
 * to PT_WIRE_MAX_FRAME); one larger still, or beyond PT_WIRE_MAX_PARTS
 * parts, is counted in skipped. Most samples fit one frame: that costs one
 * trial encoding. Returns 0 or PT_E_LIMIT when even the identity breaks a
 * ceiling. */
int agent_frame_split(const struct pt_frame *f, bool signed_, struct agent_parts *out);

/* Collects, encodes (signed when there is a key) and sends the sample for
 * the tick at ts_ns: one frame, or several parts when it is larger than
 * PT_WIRE_TARGET_FRAME (agent_frame_split()), each with its own seq.
 * Returns 0 or the first send error (already logged). */
int agent_tick(struct agent *a, int64_t ts_ns);

/* Takes one datagram received from the collector: an ack is checked
 * (decoded, agent id, signature under the agent's key when it has one,
 * epoch) and the frames it covers leave the ring. Anything else is counted
 * in acks_rejected and logged (rate-limited). now_ns is monotonic. */
void agent_on_datagram(struct agent *a, const uint8_t *buf, size_t len, int64_t now_ns);

/* Sends from the ring what is due: frames held back, and frames not
 * acknowledged resend_after after their last send, oldest first, within
 * the resend rate; while no ack has come for 3 x resend_after, only the
 * oldest one, as a probe. Returns the nanoseconds until it next has
 * something to do (INT64_MAX: nothing owed). now_ns is monotonic. */
int64_t agent_pump(struct agent *a, int64_t now_ns);

/* The first multiple of interval_ns (counted from the Unix epoch) after
 * now_ns. */
int64_t agent_next_tick(int64_t now_ns, int64_t interval_ns);

/* Runs until *stop is set (by a signal handler): waits in poll() on the
 * socket for acks until each tick, calls agent_tick(), and agent_pump()
 * when resends are due. A tick missed by more than an interval (suspend,
 * overload) is skipped, not made up. Returns 0. */
int agent_run(struct agent *a, const volatile sig_atomic_t *stop);

/* --once: reads, waits 250 ms (or the interval when shorter), reads again
 * and writes that sample to out as a table (agent/table.h), or as JSON
 * (agent/json.h) when json is set. Needs neither a collector nor a key.
 * Returns 0, or the number of measurements that could not be read (the
 * output has the others). */
int agent_once(const struct agent_config *cfg, bool json, FILE *out);

#endif
