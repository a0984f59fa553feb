/* The cpufreq measurement (METRICS.md field 20): cpu_speed, the current
 * frequency in MHz averaged over CPUs. Absent (no measurement at all) where
 * the platform exposes no frequency, as in many VMs and containers. */
#ifndef AGENT_CPUFREQ_H
#define AGENT_CPUFREQ_H

#include <stddef.h>
#include <stdint.h>

#include "meas.h"

struct agent_cpufreq_raw {
    double sum_mhz; /* over the CPUs counted */
    uint32_t ncpu;  /* CPUs with a frequency; 0: none known */
};

/* Defined once per platform (agent/platform/<os>/cpufreq.c). Linux: each
 * CPU's <sys>/devices/system/cpu/cpuN/cpufreq/scaling_cur_freq (kHz), else
 * the "cpu MHz" lines of <proc>/cpuinfo; neither is no error (ncpu 0).
 * Returns 0, -errno when a source exists but cannot be read, or
 * PT_E_MALFORMED; err says which and why. */
int agent_plat_cpufreq_read(const char *proc, const char *sys, struct agent_cpufreq_raw *out,
                            char *err, size_t errlen);

/* Builds the cpufreq measurement from r into out. Returns 1 when there is
 * one (r->ncpu > 0), 0 when the frequency is unknown. */
int agent_cpufreq_update(const struct agent_cpufreq_raw *r, struct agent_meas *out);

#endif
