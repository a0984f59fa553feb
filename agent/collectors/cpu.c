/* cpu measurement: percentages of CPU time from tick deltas, the context
 * switch rate, and the gauges (CPUs, uptime, tasks, load). */
#include "cpu.h"

#include <stdio.h>
#include <string.h>

void agent_cpu_init(struct agent_cpu *c)
{
    memset(c, 0, sizeof *c);
}

/* part of total in percent, multiplied before dividing so that all of
 * total is exactly 100 (100.0 / 3 * 3 is 100.00000000000001). */
static double pct_of(uint64_t total, uint64_t part)
{
    return (double)part * 100.0 / (double)total;
}

/* Appends the 11 percentage fields for the interval a..b to out (which has
 * room for cap fields), or nothing. */
static void cpu_percentages(const struct agent_cpu_raw *a, const struct agent_cpu_raw *b,
                            struct pt_meas *out, unsigned cap)
{
    if (b->user < a->user || b->nice < a->nice || b->system < a->system || b->idle < a->idle ||
        b->irq < a->irq || b->softirq < a->softirq || b->steal < a->steal || b->guest < a->guest ||
        b->guest_nice < a->guest_nice)
        return;
    uint64_t user = b->user - a->user, nice = b->nice - a->nice;
    uint64_t guest = b->guest - a->guest, guest_nice = b->guest_nice - a->guest_nice;
    uint64_t idle = b->idle - a->idle;
    uint64_t iowait = b->iowait >= a->iowait ? b->iowait - a->iowait : 0;
    uint64_t system = b->system - a->system, irq = b->irq - a->irq;
    uint64_t softirq = b->softirq - a->softirq, steal = b->steal - a->steal;
    /* Guest time is also counted in user (guest_nice in nice). The kernel
     * adds to both, but a reader can catch it between the two additions. */
    if (guest > user) guest = user;
    if (guest_nice > nice) guest_nice = nice;

    /* Guest time is inside user and nice, so it is not added again. */
    uint64_t total = user + nice + system + idle + iowait + irq + softirq + steal;
    if (total == 0) return; /* less than a tick: no basis for a percentage */

    /* 100 - idle% - iowait%, from the integers so it is never below 0. */
    agent_pm_float(out, cap, "cpu_utilization", pct_of(total, total - idle - iowait));
    agent_pm_float(out, cap, "cpu_user", pct_of(total, user - guest));
    agent_pm_float(out, cap, "cpu_nice", pct_of(total, nice - guest_nice));
    agent_pm_float(out, cap, "cpu_system", pct_of(total, system));
    agent_pm_float(out, cap, "cpu_idle", pct_of(total, idle));
    agent_pm_float(out, cap, "cpu_iowait", pct_of(total, iowait));
    agent_pm_float(out, cap, "cpu_hintr", pct_of(total, irq));
    agent_pm_float(out, cap, "cpu_sintr", pct_of(total, softirq));
    agent_pm_float(out, cap, "cpu_steal", pct_of(total, steal));
    agent_pm_float(out, cap, "cpu_guest", pct_of(total, guest));
    agent_pm_float(out, cap, "cpu_guest_nice", pct_of(total, guest_nice));
}

void agent_cpu_update(struct agent_cpu *c, const struct agent_cpu_raw *cur, int64_t mono_ns,
                      struct agent_meas *out)
{
    agent_meas_init(out, "cpu");
    if (c->have_prev) cpu_percentages(&c->prev, cur, &out->m, AGENT_MEAS_MAX_FIELDS);
    agent_meas_uint(out, "cpu_num", cur->ncpu);
    agent_meas_uint(out, "uptime", cur->uptime_s);
    if (c->have_prev)
        agent_meas_rate(out, "contexts", c->prev.ctxt, cur->ctxt, mono_ns - c->prev_ns);
    agent_meas_uint(out, "proc_run", cur->procs_running);
    agent_meas_uint(out, "proc_total", cur->procs_total);
    agent_meas_float(out, "load_avg_1m", cur->load1);
    agent_meas_float(out, "load_avg_5m", cur->load5);
    agent_meas_float(out, "load_avg_15m", cur->load15);
    c->prev = *cur;
    c->prev_ns = mono_ns;
    c->have_prev = true;
}

void agent_percpu_init(struct agent_percpu *p)
{
    memset(p, 0, sizeof *p);
}

unsigned agent_percpu_update(struct agent_percpu *p, const struct agent_percpu_raw *cur)
{
    unsigned n = 0;
    for (uint32_t i = 0; i < cur->n; i++) {
        struct pt_meas *am = &p->out[n];
        snprintf(p->names[n], sizeof p->names[n], "cpu%u", (unsigned)cur->id[i]);
        agent_pm_init(am, "cpu", p->out_f[n], &p->out_t[n]);
        agent_pm_tag(am, 1, "cpu", p->names[n]);
        n++;
        if (!p->have_prev) continue;
        /* The same CPU in the previous reading: usually at the same index,
         * unless one went offline or came back. */
        const struct agent_cpu_raw *prev = NULL;
        if (i < p->prev.n && p->prev.id[i] == cur->id[i]) prev = &p->prev.t[i];
        for (uint32_t j = 0; !prev && j < p->prev.n; j++)
            if (p->prev.id[j] == cur->id[i]) prev = &p->prev.t[j];
        if (prev) cpu_percentages(prev, &cur->t[i], am, AGENT_CPU_PCT_FIELDS);
    }
    p->prev = *cur;
    p->have_prev = true;
    p->nout = n;
    return n;
}
