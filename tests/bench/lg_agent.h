/* Simulated agents for pantala-loadgen: identity, key, a random-walk model
 * of the full metric catalog, and a template encoder that writes exactly the
 * bytes pt_wire_encode() would, at a fraction of its cost.
 *
 * Each agent precomputes the parts of its frame that never change (header
 * up to the epoch, interval, identity, measurement names and tags); a frame
 * is then those segments plus seq, ts and the 54 values, and the HMAC. */
#ifndef LG_AGENT_H
#define LG_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pt/wire.h"

#define LG_NMEAS   6  /* cpu, cpufreq, memory, disk, diskio, network */
#define LG_NVALUES 54 /* the 53 catalog fields plus mem_available */
/* Room for any frame an agent encodes (identity strings are capped). */
#define LG_FRAME_CAP 2048

/* The random-walk state behind one agent's values. */
struct lg_model {
    double user, nice, system, iowait, hintr, sintr, steal, guest, guest_nice;
    double ncpu, uptime0, ctx, run, procs, load1, load5, load15, mhz, mhz_max;
    double mem_total, avail, free_frac, shared, buffers, cached;
    double swap_total, swap_used, pgin, pgout, swin, swout;
    double disk_total, disk_used;
    double rkb, wkb, rops, wops, rtime, wtime;
    double bin, bout, pkt_in_size, pkt_out_size, errin, errout, dropin, dropout;
};

struct lg_agent {
    uint64_t id;
    char *ns, *mcis, *vm, *csp; /* owned; host is the vm name */
    uint8_t key[PT_WIRE_KEY_LEN];
    bool has_key;          /* key holds a registered key */
    bool sign;             /* frames carry the HMAC trailer */
    struct pt_wire_key wk; /* prepared key when sign */
    uint64_t epoch, seq;   /* seq of the last frame encoded */
    uint32_t interval_ms;
    int64_t start_ns; /* wall clock at init, for uptime */
    uint64_t rng;     /* xorshift64* state */
    struct lg_model m;
    double v[LG_NVALUES]; /* current values, frame order */
    uint8_t *tmpl;        /* static segments, back to back */
    uint16_t seg_off[LG_NMEAS + 1], seg_len[LG_NMEAS + 1];
    char disk_dev[32], blk_dev[16], ifname[16];
    /* --pattern: one value driven as a square wave instead of the model */
    bool pat;
    int pat_idx; /* index into v[] */
    double pat_lo, pat_hi;
    int64_t pat_t0, pat_half_ns;
    int pat_phase;    /* 0 low, 1 high; -1 before the first frame */
    bool pat_crossed; /* the last frame is the first of a new phase */
};

/* One-time set-up: resolves symbol ids and checks that the catalog is the
 * one this model was written for. Returns 0 or -EINVAL with a message on
 * stderr. */
int lg_catalog_check(void);

/* Initialises a (caller-allocated). key is PT_WIRE_KEY_LEN bytes or NULL;
 * with sign, frames are signed with it (a random key is drawn when NULL).
 * Copies the strings. Returns 0, -ENOMEM, PT_E_LIMIT (name too long) or
 * -EINVAL. */
int lg_agent_init(struct lg_agent *a, uint64_t id, const char *ns, const char *mcis, const char *vm,
                  const char *csp, const uint8_t *key, bool sign, uint64_t epoch,
                  uint32_t interval_ms, uint64_t seed);
void lg_agent_close(struct lg_agent *a);

/* Advances the model one sample, takes the next seq and encodes the frame
 * stamped ts_ns into out[0..cap). Returns 0 or PT_E_NOSPACE / PT_E_AUTH. */
int lg_agent_next(struct lg_agent *a, int64_t ts_ns, uint8_t *out, size_t cap, size_t *len);

/* Encodes the agent's current sample (seq and values of the last
 * lg_agent_next()) through pt_wire_encode(): the reference the template
 * encoder must match byte for byte. */
int lg_agent_encode_ref(struct lg_agent *a, int64_t ts_ns, uint8_t *out, size_t cap, size_t *len);

/* Encodes one frame both ways and compares the bytes; leaves seq as it
 * was. Returns 0, or -EPROTO (with the first differing byte on stderr). */
int lg_agent_selfcheck(struct lg_agent *a);

/* Index in v[] of measurement.field, or -1 when the model has no such value. */
int lg_value_index(const char *measurement, const char *field);

/* Drives v[idx] as a square wave: lo for half of period_ns, then hi, and so
 * on, phases counted from t0 (wall clock, shared by all agents so they
 * cross together). lo == hi holds the value constant. */
void lg_agent_pattern(struct lg_agent *a, int idx, double lo, double hi, int64_t period_ns,
                      int64_t t0);

/* The frame shape, for tests and summaries. */
size_t lg_values_per_frame(void);

#endif
