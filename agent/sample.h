/* One collection of every measurement this platform offers, and the state
 * their rates need from one collection to the next. Read failures are
 * logged through pt_complain(), so a broken /proc file is reported once and
 * then at a slowing rate, while the other measurements go on; so are
 * objects dropped because a collector's fixed capacity is full. */
#ifndef AGENT_SAMPLE_H
#define AGENT_SAMPLE_H

#include <stdbool.h>
#include <stdint.h>

#include "pt/log.h"
#include "pt/wire.h"

#include "collectors/cpu.h"
#include "collectors/cpufreq.h"
#include "collectors/disk.h"
#include "collectors/diskio.h"
#include "collectors/memory.h"
#include "collectors/network.h"
#include "config.h"

/* cpu, cpufreq and memory, the per-CPU series, and disk, diskio and
 * network with their totals. */
#define AGENT_SAMPLE_MAX_MEAS (3 + AGENT_MAX_OBJECTS + 3 * (AGENT_MAX_OBJECTS + 1))

/* Caller-allocated; agent_sample_init() before use. It holds one file open
 * (the mount table's watch, collectors/disk.h) until agent_sample_close()
 * or the end of the process. */
struct agent_sample {
    const char *root; /* borrowed: where procfs is (Linux: "/proc") */
    const char *sys;  /* borrowed: where sysfs is (Linux: "/sys") */
    bool per_cpu;
    struct agent_cpu cpu;
    struct agent_percpu percpu;
    struct agent_percpu_raw percpu_raw;
    struct agent_mem mem;
    struct agent_disk disk;
    struct agent_dio dio;
    struct agent_net net;
    struct agent_meas meas[3]; /* cpu, cpufreq, memory */
    /* The measurements of the last collection, in catalog order; those that
     * could not be read are left out. Points into meas and the collectors. */
    struct pt_meas list[AGENT_SAMPLE_MAX_MEAS];
    uint16_t n;
    /* Objects dropped for want of room, since the start. */
    uint64_t dropped;
    struct pt_complain cpu_fail, freq_fail, mem_fail, disk_fail, dio_fail, net_fail;
    struct pt_complain size_fail, full;
};

/* Reads under cfg's proc_root and sys_root, with its filters and per_cpu
 * (cfg is borrowed and must outlive s). */
void agent_sample_init(struct agent_sample *s, const struct agent_config *cfg);

void agent_sample_close(struct agent_sample *s);

/* Reads every measurement now. Returns how many could not be read (0 when
 * all were); s->list and s->n hold the others. */
int agent_sample_collect(struct agent_sample *s);

#endif
