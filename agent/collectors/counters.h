/* Sets of named objects (block devices, interfaces) each carrying a few
 * kernel counters, kept for two readings so rates can be matched object by
 * object: an object is compared only with itself, by name, so a device that
 * appears or vanishes between two readings gives no spike.
 *
 * Fixed capacity (AGENT_MAX_OBJECTS objects of AGENT_CTRS_MAX counters):
 * collecting allocates nothing. Private to agent/collectors. */
#ifndef AGENT_COUNTERS_H
#define AGENT_COUNTERS_H

#include <stdbool.h>
#include <stdint.h>

#include "meas.h"

#define AGENT_CTRS_MAX      8
#define AGENT_CTRS_NAME_LEN 32 /* bytes, NUL included: Linux allows 31 for disks, 15 for links */

struct agent_ctrs_obj {
    char name[AGENT_CTRS_NAME_LEN];
    uint64_t v[AGENT_CTRS_MAX];
    bool in_total; /* counted in the total series */
};

struct agent_ctrs_set {
    struct agent_ctrs_obj o[AGENT_MAX_OBJECTS];
    unsigned n;
    int64_t mono_ns; /* when it was read */
};

/* Caller-allocated, zero-initialised or agent_ctrs_init(). */
struct agent_ctrs {
    struct agent_ctrs_set set[2]; /* set[cur] is being filled, set[!cur] the last reading */
    unsigned cur;
    unsigned nread; /* readings committed, saturating at 2 */
    unsigned over;  /* objects of the reading being filled that did not fit */
};

void agent_ctrs_init(struct agent_ctrs *c);
/* Starts filling a new reading. */
void agent_ctrs_begin(struct agent_ctrs *c);
/* Adds an object to the reading being filled, returning its slot (counters
 * 0, in_total false), or NULL (counted in c->over) when the set is full or
 * name does not fit or is no valid tag value. */
struct agent_ctrs_obj *agent_ctrs_add(struct agent_ctrs *c, const char *name);
/* Ends the reading taken at mono_ns: it becomes the last one. */
void agent_ctrs_commit(struct agent_ctrs *c, int64_t mono_ns);

/* The last reading, and the one before it (NULL when there is none). Valid
 * after agent_ctrs_commit(). */
const struct agent_ctrs_set *agent_ctrs_last(const struct agent_ctrs *c);
const struct agent_ctrs_set *agent_ctrs_before(const struct agent_ctrs *c);
/* The object called name in s, or NULL. */
const struct agent_ctrs_obj *agent_ctrs_find(const struct agent_ctrs_set *s, const char *name);

/* One rate field of a series: key, the counter index, and a factor turning
 * counter units into field units (diskio: 512-byte sectors into KiB). */
struct agent_ctrs_field {
    const char *key;
    unsigned idx;
    double scale;
};

/* Where the series are built: room for AGENT_MAX_OBJECTS + 1 measurements
 * of one tag and up to AGENT_CTRS_MAX fields each. */
struct agent_ctrs_out {
    struct pt_meas m[AGENT_MAX_OBJECTS + 1];
    struct pt_tag t[AGENT_MAX_OBJECTS + 1];
    struct pt_field f[AGENT_MAX_OBJECTS + 1][AGENT_CTRS_MAX];
};

/* Builds one measurement per object of the last reading (named name, tagged
 * tag=<object name>), with the rate fields of fields[0..nf) (nf at most
 * AGENT_CTRS_MAX) for objects also in the reading before, then a total
 * series (tag=total) whose fields are the rates of the sums over the
 * objects with in_total present in both readings; a field of the total is
 * absent when one of those counters went backwards. Returns how many were
 * built into out->m. */
unsigned agent_ctrs_series(const struct agent_ctrs *c, const char *name, const char *tag,
                           const struct agent_ctrs_field *fields, unsigned nf,
                           struct agent_ctrs_out *out);

#endif
