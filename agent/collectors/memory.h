/* The memory measurement (METRICS.md fields 21-35, plus mem_available): the
 * raw sizes and paging counters every platform reads, the reader each
 * platform defines, and the platform-neutral arithmetic. */
#ifndef AGENT_MEMORY_H
#define AGENT_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "meas.h"

/* One reading. Sizes are in bytes; the paging counters count since boot in
 * the platform's unit (Linux: /proc/vmstat's pgpgin/pgpgout, which the
 * kernel keeps in KiB, and pswpin/pswpout in pages). */
struct agent_mem_raw {
    uint64_t total;     /* usable RAM (MemTotal); never 0 in a valid reading */
    uint64_t free;      /* MemFree */
    uint64_t available; /* MemAvailable, or the platform's best estimate */
    uint64_t buffers;
    uint64_t cached; /* page cache plus reclaimable kernel caches */
    uint64_t shared; /* Shmem */
    uint64_t swap_total, swap_free;
    uint64_t page_in, page_out, swap_in, swap_out;
};

/* Defined once per platform (agent/platform/<os>/memory.c): reads under
 * root (Linux: "/proc"). Returns 0, -errno when a source cannot be read, or
 * PT_E_MALFORMED when it says something unexpected; err says which and
 * why. */
int agent_plat_mem_read(const char *root, struct agent_mem_raw *out, char *err, size_t errlen);

/* The previous reading; caller-allocated, agent_mem_init() before use. */
struct agent_mem {
    struct agent_mem_raw prev;
    int64_t prev_ns; /* monotonic time of prev */
    bool have_prev;
};

void agent_mem_init(struct agent_mem *m);

/* Builds the memory measurement from cur, read at monotonic time mono_ns,
 * and keeps cur for the next call. The four paging rates need a previous
 * reading; each is absent for an interval in which its counter went
 * backwards. Sizes are always present; swap_utilization is 0 without
 * swap. */
void agent_mem_update(struct agent_mem *m, const struct agent_mem_raw *cur, int64_t mono_ns,
                      struct agent_meas *out);

#endif
