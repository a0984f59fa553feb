/* One collection of every measurement this platform offers, and the state
 * their rates need from one collection to the next. Read failures are
 * logged through pt_complain(), so a broken /proc file is reported once and
 * then at a slowing rate, while the other measurements go on. */
#ifndef AGENT_SAMPLE_H
#define AGENT_SAMPLE_H

#include <stdint.h>

#include "pt/log.h"
#include "pt/wire.h"

#include "collectors/cpu.h"
#include "collectors/memory.h"

#define AGENT_SAMPLE_MAX_MEAS 2

/* Caller-allocated; agent_sample_init() before use, nothing to close. */
struct agent_sample {
    const char *root; /* borrowed: where the platform reads counters */
    struct agent_cpu cpu;
    struct agent_mem mem;
    struct agent_meas meas[AGENT_SAMPLE_MAX_MEAS];
    /* The measurements of the last collection, in catalog order; those that
     * could not be read are left out. Points into meas. */
    struct pt_meas list[AGENT_SAMPLE_MAX_MEAS];
    uint16_t n;
    struct pt_complain cpu_fail, mem_fail;
};

void agent_sample_init(struct agent_sample *s, const char *root);

/* Reads every measurement now. Returns how many could not be read (0 when
 * all were); s->list and s->n hold the others. */
int agent_sample_collect(struct agent_sample *s);

#endif
