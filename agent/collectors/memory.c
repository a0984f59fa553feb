/* memory measurement: used and utilisation from total and available, swap
 * usage, and paging rates from counter deltas. */
#include "memory.h"

#include <string.h>

void agent_mem_init(struct agent_mem *m)
{
    memset(m, 0, sizeof *m);
}

/* a - b, or 0 when a sampling race makes b the larger. */
static uint64_t sub0(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

void agent_mem_update(struct agent_mem *m, const struct agent_mem_raw *cur, int64_t mono_ns,
                      struct agent_meas *out)
{
    uint64_t used = sub0(cur->total, cur->available);
    uint64_t swap_used = sub0(cur->swap_total, cur->swap_free);
    int64_t elapsed = mono_ns - m->prev_ns;

    agent_meas_init(out, "memory");
    if (cur->total)
        agent_meas_float(out, "mem_utilization", (double)used * 100.0 / (double)cur->total);
    agent_meas_uint(out, "mem_total", cur->total);
    agent_meas_uint(out, "mem_used", used);
    agent_meas_uint(out, "mem_free", cur->free);
    agent_meas_uint(out, "mem_shared", cur->shared);
    agent_meas_uint(out, "mem_buffers", cur->buffers);
    agent_meas_uint(out, "mem_cached", cur->cached);
    agent_meas_float(out, "swap_utilization",
                     cur->swap_total ? (double)swap_used * 100.0 / (double)cur->swap_total : 0.0);
    agent_meas_uint(out, "swap_total", cur->swap_total);
    agent_meas_uint(out, "swap_used", swap_used);
    agent_meas_uint(out, "swap_free", cur->swap_free);
    if (m->have_prev) {
        agent_meas_rate(out, "page_in", m->prev.page_in, cur->page_in, elapsed);
        agent_meas_rate(out, "page_out", m->prev.page_out, cur->page_out, elapsed);
        agent_meas_rate(out, "swap_in", m->prev.swap_in, cur->swap_in, elapsed);
        agent_meas_rate(out, "swap_out", m->prev.swap_out, cur->swap_out, elapsed);
    }
    agent_meas_uint(out, "mem_available", cur->available);
    m->prev = *cur;
    m->prev_ns = mono_ns;
    m->have_prev = true;
}
