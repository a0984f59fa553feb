/* Runs the collectors for one sample. */
#include "sample.h"

#include <string.h>

#include "pt/err.h"
#include "pt/time.h"

void agent_sample_init(struct agent_sample *s, const struct agent_config *cfg)
{
    s->root = cfg->proc_root;
    s->sys = cfg->sys_root;
    s->per_cpu = cfg->per_cpu;
    s->n = 0;
    s->dropped = 0;
    s->cpu_fail = s->freq_fail = s->mem_fail = (struct pt_complain)PT_COMPLAIN_INIT;
    s->disk_fail = s->dio_fail = s->net_fail = (struct pt_complain)PT_COMPLAIN_INIT;
    s->size_fail = s->full = (struct pt_complain)PT_COMPLAIN_INIT;
    agent_cpu_init(&s->cpu);
    s->percpu.have_prev = false;
    s->percpu.prev.n = 0;
    agent_mem_init(&s->mem);
    agent_disk_init(&s->disk);
    s->disk.filter = cfg->mounts;
    agent_dio_init(&s->dio);
    s->dio.filter = cfg->devices;
    s->dio.sys = cfg->sys_root;
    agent_net_init(&s->net);
    s->net.filter = cfg->interfaces;
}

void agent_sample_close(struct agent_sample *s)
{
    agent_disk_close(&s->disk);
}

/* Appends m[0..n) to the list, but for measurements without a field (an
 * object's first reading, when all its fields are rates): they would carry
 * nothing, and a store such as InfluxDB cannot write a point without one. */
static void list_add(struct agent_sample *s, const struct pt_meas *m, unsigned n)
{
    for (unsigned i = 0; i < n && s->n < AGENT_SAMPLE_MAX_MEAS; i++)
        if (m[i].nfields) s->list[s->n++] = m[i];
}

/* Counts and reports objects a collector had no room for. */
static void note_dropped(struct agent_sample *s, const char *what, unsigned n)
{
    if (!n) return;
    s->dropped += n;
    pt_complain(&s->full, PT_LOG_WARN, "agent",
                "%u %s not reported: more than %d, or a name the wire refuses "
                "(%llu objects dropped since the start; the filters in docs/agent.md "
                "choose which are reported)",
                n, what, AGENT_MAX_OBJECTS, (unsigned long long)s->dropped);
}

/* Reports a failed reading (and returns 1), or the end of one. */
static int outcome(struct pt_complain *c, const char *what, int rc, const char *err)
{
    if (rc) {
        pt_complain(c, PT_LOG_ERROR, what, "%s", err);
        return 1;
    }
    pt_complain_release(c, what, "reading the %s counters works again", what);
    return 0;
}

static int collect_cpu(struct agent_sample *s, char *err, size_t errlen)
{
    struct agent_cpu_raw cpu;
    int rc =
        agent_plat_cpu_read_percpu(s->root, &cpu, s->per_cpu ? &s->percpu_raw : NULL, err, errlen);
    if (rc == 0) {
        agent_cpu_update(&s->cpu, &cpu, pt_mono_ns(), &s->meas[0]);
        list_add(s, &s->meas[0].m, 1);
        if (s->per_cpu) {
            list_add(s, s->percpu.out, agent_percpu_update(&s->percpu, &s->percpu_raw));
            note_dropped(s, "CPUs", s->percpu_raw.over);
        }
    }
    return outcome(&s->cpu_fail, "cpu", rc, err);
}

static int collect_cpufreq(struct agent_sample *s, char *err, size_t errlen)
{
    struct agent_cpufreq_raw r;
    int rc = agent_plat_cpufreq_read(s->root, s->sys, &r, err, errlen);
    if (rc == 0 && agent_cpufreq_update(&r, &s->meas[1])) list_add(s, &s->meas[1].m, 1);
    return outcome(&s->freq_fail, "cpufreq", rc, err);
}

static int collect_mem(struct agent_sample *s, char *err, size_t errlen)
{
    struct agent_mem_raw mem;
    int rc = agent_plat_mem_read(s->root, &mem, err, errlen);
    if (rc == 0) {
        agent_mem_update(&s->mem, &mem, pt_mono_ns(), &s->meas[2]);
        list_add(s, &s->meas[2].m, 1);
    }
    return outcome(&s->mem_fail, "memory", rc, err);
}

static int collect_disk(struct agent_sample *s, char *err, size_t errlen)
{
    int rc = 0;
    if (agent_disk_need_listing(&s->disk, s->root)) {
        agent_disk_begin(&s->disk);
        rc = agent_plat_mounts_read(s->root, agent_disk_add, &s->disk, err, errlen);
        agent_disk_listed(&s->disk, rc);
    }
    if (rc == 0) {
        note_dropped(s, "mounts", agent_disk_commit(&s->disk));
        list_add(s, s->disk.out, s->disk.nout);
        if (s->disk.size_fails)
            pt_complain(&s->size_fail, PT_LOG_WARN, "disk",
                        "cannot read the size of %u file system%s, the last %s: %s",
                        s->disk.size_fails, s->disk.size_fails == 1 ? "" : "s",
                        s->disk.size_err_mount, pt_strerror(s->disk.size_err));
        else
            pt_complain_release(&s->size_fail, "disk", "file system sizes are readable again");
    }
    return outcome(&s->disk_fail, "disk", rc, err);
}

static int collect_diskio(struct agent_sample *s, char *err, size_t errlen)
{
    agent_dio_begin(&s->dio);
    int rc = agent_plat_dio_read(s->root, agent_dio_add, &s->dio, err, errlen);
    if (rc == 0) {
        note_dropped(s, "block devices", agent_dio_commit(&s->dio, pt_mono_ns()));
        list_add(s, s->dio.out.m, s->dio.nout);
    }
    return outcome(&s->dio_fail, "diskio", rc, err);
}

static int collect_net(struct agent_sample *s, char *err, size_t errlen)
{
    agent_net_begin(&s->net);
    int rc = agent_plat_net_read(s->root, agent_net_add, &s->net, err, errlen);
    if (rc == 0) {
        note_dropped(s, "interfaces", agent_net_commit(&s->net, pt_mono_ns()));
        list_add(s, s->net.out.m, s->net.nout);
    }
    return outcome(&s->net_fail, "network", rc, err);
}

int agent_sample_collect(struct agent_sample *s)
{
    char err[512];
    s->n = 0;
    return collect_cpu(s, err, sizeof err) + collect_cpufreq(s, err, sizeof err) +
           collect_mem(s, err, sizeof err) + collect_disk(s, err, sizeof err) +
           collect_diskio(s, err, sizeof err) + collect_net(s, err, sizeof err);
}
