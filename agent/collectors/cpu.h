/* The cpu measurement (METRICS.md fields 1-19): the raw counters every
 * platform reads, the reader each platform defines, and the platform-neutral
 * arithmetic that turns two readings into percentages and rates. */
#ifndef AGENT_CPU_H
#define AGENT_CPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "meas.h"

/* One reading of the CPU counters, as the platform gives them. */
struct agent_cpu_raw {
    /* Time spent in each state since boot, summed over CPUs, in ticks of a
     * fixed unit (Linux: USER_HZ jiffies); only ratios of differences are
     * used. As on Linux, user includes guest and nice includes guest_nice.
     * States a platform does not have stay 0. */
    uint64_t user, nice, system, idle, iowait, irq, softirq, steal, guest, guest_nice;
    uint64_t ctxt;     /* context switches since boot */
    uint64_t uptime_s; /* seconds since boot */
    uint32_t ncpu;     /* online CPUs */
    uint32_t procs_running;
    uint32_t procs_total;
    double load1, load5, load15;
};

/* Defined once per platform (agent/platform/<os>/cpu.c): reads the counters
 * under root (Linux: a proc mount such as "/proc"; other platforms ignore
 * it). Returns 0, -errno when a source cannot be read, or PT_E_MALFORMED
 * when it says something unexpected; err then says which source and why. */
int agent_plat_cpu_read(const char *root, struct agent_cpu_raw *out, char *err, size_t errlen);

/* Each online CPU's ticks (the tick fields of agent_cpu_raw only), for the
 * optional per-CPU series. At most AGENT_MAX_OBJECTS CPUs; the rest are
 * counted in over. */
struct agent_percpu_raw {
    uint32_t n, over;
    uint32_t id[AGENT_MAX_OBJECTS]; /* N of "cpuN" */
    struct agent_cpu_raw t[AGENT_MAX_OBJECTS];
};

/* agent_plat_cpu_read(), also filling per (when not NULL) from the same
 * pass over the file. */
int agent_plat_cpu_read_percpu(const char *root, struct agent_cpu_raw *out,
                               struct agent_percpu_raw *per, char *err, size_t errlen);

/* The previous reading; caller-allocated, agent_cpu_init() before use. */
struct agent_cpu {
    struct agent_cpu_raw prev;
    int64_t prev_ns; /* monotonic time of prev */
    bool have_prev;
};

void agent_cpu_init(struct agent_cpu *c);

/* Builds the cpu measurement from the reading cur taken at monotonic time
 * mono_ns, and keeps cur for the next call. Percentages and the contexts
 * rate cover the time since the previous reading: the first reading has
 * none, and neither has an interval in which a counter went backwards or
 * no tick elapsed. A decrease of iowait alone is not such a case: the
 * kernel documents that iowait can decrease, so it counts as no iowait. */
void agent_cpu_update(struct agent_cpu *c, const struct agent_cpu_raw *cur, int64_t mono_ns,
                      struct agent_meas *out);

#define AGENT_CPU_PCT_FIELDS 11 /* cpu_utilization ... cpu_guest_nice */

/* The per-CPU series (tag cpu="cpuN"): the eleven percentages of each
 * CPU, from its previous reading. A CPU that was not in the previous
 * reading (brought online) has none yet. Caller-allocated,
 * agent_percpu_init() before use. */
struct agent_percpu {
    struct agent_percpu_raw prev;
    bool have_prev;
    char names[AGENT_MAX_OBJECTS][16];
    struct pt_meas out[AGENT_MAX_OBJECTS]; /* out[0..nout) */
    struct pt_tag out_t[AGENT_MAX_OBJECTS];
    struct pt_field out_f[AGENT_MAX_OBJECTS][AGENT_CPU_PCT_FIELDS];
    unsigned nout;
};

void agent_percpu_init(struct agent_percpu *p);
/* Builds out[0..nout) from cur and keeps cur for the next call. Returns
 * nout. */
unsigned agent_percpu_update(struct agent_percpu *p, const struct agent_percpu_raw *cur);

#endif
