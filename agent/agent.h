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

/* Collects, encodes (signed when there is a key) and sends one frame for
 * the tick at ts_ns. Returns 0 or the send error (already logged). */
int agent_tick(struct agent *a, int64_t ts_ns);

/* The first multiple of interval_ns (counted from the Unix epoch) after
 * now_ns. */
int64_t agent_next_tick(int64_t now_ns, int64_t interval_ns);

/* Runs until *stop is set (by a signal handler): sleeps to each tick and
 * calls agent_tick(). A tick missed by more than an interval (suspend,
 * overload) is skipped, not made up. Returns 0. */
int agent_run(struct agent *a, const volatile sig_atomic_t *stop);

/* --once: reads, waits 250 ms (or the interval when shorter), reads again
 * and writes that sample to out as JSON (agent/json.h). Needs neither a
 * collector nor a key. Returns 0, or the number of measurements that could
 * not be read (the JSON has the others). */
int agent_once(const struct agent_config *cfg, FILE *out);

#endif
