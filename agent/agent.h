/* The agent: one frame per interval, at wall-clock multiples of the
 * interval, sent to the collector; and --once, one sample printed as JSON. */
#ifndef AGENT_AGENT_H
#define AGENT_AGENT_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "pt/log.h"
#include "pt/wire.h"

#include "config.h"
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
    struct pt_complain encode_fail, late;
};

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

/* The first multiple of interval_ns (counted from the Unix epoch) after
 * now_ns. */
int64_t agent_next_tick(int64_t now_ns, int64_t interval_ns);

/* Runs until *stop is set (by a signal handler): sleeps to each tick and
 * calls agent_tick(). A tick missed by more than an interval (suspend,
 * overload) is skipped, not made up. Returns 0. */
int agent_run(struct agent *a, const volatile sig_atomic_t *stop);

/* --once: reads, waits 250 ms (or the interval when shorter), reads again
 * and writes that sample to out as a table (agent/table.h), or as JSON
 * (agent/json.h) when json is set. Needs neither a collector nor a key.
 * Returns 0, or the number of measurements that could not be read (the
 * output has the others). */
int agent_once(const struct agent_config *cfg, bool json, FILE *out);

#endif
