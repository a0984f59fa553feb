/* One measurement being built: its name and a fixed-capacity field list,
 * so collecting allocates nothing.
 *
 * Field keys are borrowed (string literals in practice) and must outlive the
 * measurement. A float that is not finite is dropped rather than sent: a
 * field is either a real value or absent. */
#ifndef AGENT_MEAS_H
#define AGENT_MEAS_H

#include <stddef.h>
#include <stdint.h>

#include "pt/wire.h"

/* cpu has 19 fields and memory 16; room for what comes next. */
#define AGENT_MEAS_MAX_FIELDS 24
/* disk has three tags (mount, device, fstype). */
#define AGENT_MEAS_MAX_TAGS 3

/* How many objects (mounts, block devices, interfaces, CPUs) one collector
 * reports at most; the excess is dropped, counted and logged, so a sample
 * has a fixed size and collecting allocates nothing. */
#define AGENT_MAX_OBJECTS 64

struct agent_meas {
    struct pt_meas m; /* m.fields points at f, m.tags at t */
    struct pt_field f[AGENT_MEAS_MAX_FIELDS];
    struct pt_tag t[AGENT_MEAS_MAX_TAGS];
};

/* Empties am and names it (name is borrowed). */
void agent_meas_init(struct agent_meas *am, const char *name);
/* Appends the tag key=val (both borrowed: they must outlive the
 * measurement). Beyond AGENT_MEAS_MAX_TAGS the tag is dropped (a
 * programming error, caught by the unit tests). */
void agent_meas_tag(struct agent_meas *am, const char *key, const char *val);
/* Append a field. Beyond AGENT_MEAS_MAX_FIELDS the field is dropped (a
 * programming error, caught by the unit tests' field counts). */
void agent_meas_float(struct agent_meas *am, const char *key, double v);
void agent_meas_uint(struct agent_meas *am, const char *key, uint64_t v);

/* Appends key = (cur - prev) / elapsed seconds, the per-second rate of a
 * counter read twice elapsed_ns apart (monotonic). Appends nothing when the
 * counter went backwards (wrap, reset) or no time elapsed: no value is
 * better than a made-up one. */
void agent_meas_rate(struct agent_meas *am, const char *key, uint64_t prev, uint64_t cur,
                     int64_t elapsed_ns);

/* The same, times scale (a unit conversion, such as sectors to KiB). */
void agent_meas_rate_scaled(struct agent_meas *am, const char *key, uint64_t prev, uint64_t cur,
                            int64_t elapsed_ns, double scale);

/* The same operations on a measurement whose storage a collector sizes to
 * what it sends (a series per object: 64 mounts need 4 fields each, not
 * AGENT_MEAS_MAX_FIELDS): m->fields has room for cap fields, m->tags for
 * tcap tags. */
void agent_pm_init(struct pt_meas *m, const char *name, struct pt_field *f, struct pt_tag *t);
void agent_pm_tag(struct pt_meas *m, unsigned tcap, const char *key, const char *val);
void agent_pm_float(struct pt_meas *m, unsigned cap, const char *key, double v);
void agent_pm_uint(struct pt_meas *m, unsigned cap, const char *key, uint64_t v);
void agent_pm_rate_scaled(struct pt_meas *m, unsigned cap, const char *key, uint64_t prev,
                          uint64_t cur, int64_t elapsed_ns, double scale);

/* The field called key in m, or NULL when m has none. */
const struct pt_field *agent_meas_find(const struct pt_meas *m, const char *key);

#endif
