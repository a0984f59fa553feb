/* Linux CPU counters: /proc/stat (CPU ticks, CPUs, context switches,
 * runnable tasks), /proc/loadavg (load, task count) and /proc/uptime. */
#include "collectors/cpu.h"
#include "procfs.h"

#include <errno.h>
#include <string.h>

#define STAT_CPU_COLS 10 /* user nice system idle iowait irq softirq steal guest guest_nice */
#define STAT_MIN_COLS 4  /* Linux 2.4 had user nice system idle only */

struct stat_ctx {
    struct agent_cpu_raw *out;
    struct agent_percpu_raw *per; /* NULL: per-CPU lines only counted */
    unsigned seen;                /* STAT_* bits */
};
#define STAT_CPU     1u
#define STAT_CTXT    2u
#define STAT_RUNNING 4u

/* "cpu  2266 0 2666 86269 982 0 56 17 0 0": older kernels have fewer
 * columns (the missing states stay 0), newer ones may have more. */
static int stat_cpu_line(struct agent_procfs_file *f, const char *p, struct agent_cpu_raw *out)
{
    uint64_t *cols[STAT_CPU_COLS] = {&out->user,   &out->nice,      &out->system,  &out->idle,
                                     &out->iowait, &out->irq,       &out->softirq, &out->steal,
                                     &out->guest,  &out->guest_nice};
    int n = 0;
    for (; n < STAT_CPU_COLS; n++) {
        int rc = agent_procfs_u64(&p, cols[n]);
        if (rc == -ENOENT) break;
        if (rc) return agent_procfs_fail(f, "column %d of \"cpu\" is not a number", n + 1);
    }
    if (n < STAT_MIN_COLS)
        return agent_procfs_fail(f, "\"cpu\" has %d columns, expected at least %d", n,
                                 STAT_MIN_COLS);
    return 0;
}

static int stat_value(struct agent_procfs_file *f, const char *key, const char *p, uint64_t *v)
{
    if (agent_procfs_u64(&p, v))
        return agent_procfs_fail(f, "\"%s\" is not followed by a number", key);
    return 0;
}

static int stat_line(struct agent_procfs_file *f, void *ctx, char *line, size_t len)
{
    struct stat_ctx *s = ctx;
    uint64_t v;
    int rc;
    if (strncmp(line, "cpu", 3) == 0) {
        if (line[3] == ' ') {
            if (s->seen & STAT_CPU) return agent_procfs_fail(f, "a second \"cpu\" line");
            s->seen |= STAT_CPU;
            return stat_cpu_line(f, line + 3, s->out);
        }
        if (line[3] < '0' || line[3] > '9') return 0;
        s->out->ncpu++; /* one line per online CPU */
        if (!s->per) return 0;
        const char *p = line + 3;
        uint64_t id;
        if (agent_procfs_u64(&p, &id) || id > UINT32_MAX)
            return agent_procfs_fail(f, "\"cpu\" is followed by no CPU number");
        if (s->per->n >= AGENT_MAX_OBJECTS) {
            s->per->over++;
            return 0;
        }
        struct agent_cpu_raw *t = &s->per->t[s->per->n];
        memset(t, 0, sizeof *t);
        if ((rc = stat_cpu_line(f, p, t))) return rc;
        s->per->id[s->per->n++] = (uint32_t)id;
        return 0;
    }
    if (strncmp(line, "ctxt ", 5) == 0) {
        if ((rc = stat_value(f, "ctxt", line + 5, &s->out->ctxt))) return rc;
        s->seen |= STAT_CTXT;
    } else if (strncmp(line, "procs_running ", 14) == 0) {
        if ((rc = stat_value(f, "procs_running", line + 14, &v))) return rc;
        s->out->procs_running = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
        s->seen |= STAT_RUNNING;
    }
    return 0;
}

/* "0.52 0.31 0.12 3/87 5426": three loads, running/total tasks, last pid. */
static int loadavg_line(struct agent_procfs_file *f, void *ctx, char *line, size_t len)
{
    struct agent_cpu_raw *out = ctx;
    const char *p = line;
    uint64_t running, total;
    if (agent_procfs_double(&p, &out->load1) || agent_procfs_double(&p, &out->load5) ||
        agent_procfs_double(&p, &out->load15))
        return agent_procfs_fail(f, "expected three load averages");
    if (agent_procfs_u64(&p, &running) || *p != '/' || (p++, agent_procfs_u64(&p, &total)))
        return agent_procfs_fail(f, "expected running/total tasks after the load averages");
    out->procs_total = total > UINT32_MAX ? UINT32_MAX : (uint32_t)total;
    return 1;
}

/* "465.90 866.67": seconds since boot, idle seconds. */
static int uptime_line(struct agent_procfs_file *f, void *ctx, char *line, size_t len)
{
    struct agent_cpu_raw *out = ctx;
    const char *p = line;
    double up;
    if (agent_procfs_double(&p, &up) || up >= 18446744073709551616.0)
        return agent_procfs_fail(f, "expected the seconds since boot");
    out->uptime_s = (uint64_t)up;
    return 1;
}

/* The result of reading a file of which only the first line matters. */
static int first_line(struct agent_procfs_file *f, int rc)
{
    if (rc != 0) return rc < 0 ? rc : 0;
    return agent_procfs_fail(f, "empty");
}

int agent_plat_cpu_read(const char *root, struct agent_cpu_raw *out, char *err, size_t errlen)
{
    return agent_plat_cpu_read_percpu(root, out, NULL, err, errlen);
}

int agent_plat_cpu_read_percpu(const char *root, struct agent_cpu_raw *out,
                               struct agent_percpu_raw *per, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (per) per->n = per->over = 0;
    struct agent_procfs_file f = {root, "stat", err, errlen, 0};
    struct stat_ctx s = {out, per, 0};
    int rc = agent_procfs_read(&f, stat_line, &s);
    if (rc < 0) return rc;
    f.line = 0;
    if (!(s.seen & STAT_CPU)) return agent_procfs_fail(&f, "no \"cpu\" line");
    if (!(s.seen & STAT_CTXT)) return agent_procfs_fail(&f, "no \"ctxt\" line");
    if (!(s.seen & STAT_RUNNING)) return agent_procfs_fail(&f, "no \"procs_running\" line");
    if (out->ncpu == 0) return agent_procfs_fail(&f, "no \"cpuN\" lines");

    f = (struct agent_procfs_file){root, "loadavg", err, errlen, 0};
    if ((rc = first_line(&f, agent_procfs_read(&f, loadavg_line, out)))) return rc;
    f = (struct agent_procfs_file){root, "uptime", err, errlen, 0};
    return first_line(&f, agent_procfs_read(&f, uptime_line, out));
}
