/* Linux CPU frequency: cpufreq's scaling_cur_freq per CPU in sysfs, else
 * the "cpu MHz" lines of /proc/cpuinfo (x86 without a cpufreq driver, as in
 * most VMs). */
#include "collectors/cpufreq.h"
#include "procfs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CPUFREQ_MAX_CPUS 4096 /* bounds the scan of cpuN directories */

/* "2596134": kHz. */
static int khz_line(struct agent_procfs_file *f, void *ctx, char *line, size_t len)
{
    const char *p = line;
    if (agent_procfs_u64(&p, ctx) || *p) return agent_procfs_fail(f, "expected kHz");
    return 1;
}

/* Sums every CPU's scaling_cur_freq. Offline CPUs and CPUs without a
 * cpufreq driver have no file and are left out; the scan ends at the first
 * cpuN directory that does not exist. When cpu0 has none, there is taken to
 * be no cpufreq driver at all (as in most VMs), sparing a look at every
 * CPU each interval; cpu0 is the CPU most platforms never take offline. */
static int read_sysfs(const char *sys, struct agent_cpufreq_raw *out, char *err, size_t errlen)
{
    char dir[512], name[64];
    int n = snprintf(dir, sizeof dir, "%s/devices/system/cpu", sys);
    if (n < 0 || (size_t)n >= sizeof dir) return 0;
    for (unsigned i = 0; i < CPUFREQ_MAX_CPUS; i++) {
        snprintf(name, sizeof name, "cpu%u/cpufreq/scaling_cur_freq", i);
        struct agent_procfs_file f = {dir, name, err, errlen, 0};
        uint64_t khz = 0;
        int rc = agent_procfs_read(&f, khz_line, &khz);
        if (rc == -ENOENT) {
            if (i == 0) return 0;
            char cpu[600];
            snprintf(cpu, sizeof cpu, "%s/cpu%u", dir, i);
            if (access(cpu, F_OK) != 0) break;
            continue;
        }
        if (rc < 0) return rc;
        if (rc == 0) return agent_procfs_fail(&f, "empty");
        out->sum_mhz += (double)khz / 1000.0;
        out->ncpu++;
    }
    return 0;
}

/* "cpu MHz\t\t: 2596.134" */
static int cpuinfo_line(struct agent_procfs_file *f, void *ctx, char *line, size_t len)
{
    struct agent_cpufreq_raw *out = ctx;
    if (strncmp(line, "cpu MHz", 7) != 0) return 0;
    const char *p = line + 7;
    while (*p == ' ' || *p == '\t') p++;
    if (*p != ':') return 0;
    p++;
    double mhz;
    if (agent_procfs_double(&p, &mhz)) return agent_procfs_fail(f, "\"cpu MHz\" is not a number");
    out->sum_mhz += mhz;
    out->ncpu++;
    return 0;
}

int agent_plat_cpufreq_read(const char *proc, const char *sys, struct agent_cpufreq_raw *out,
                            char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    int rc = read_sysfs(sys, out, err, errlen);
    if (rc < 0) return rc;
    if (out->ncpu) return 0;
    struct agent_procfs_file f = {proc, "cpuinfo", err, errlen, 0};
    rc = agent_procfs_read(&f, cpuinfo_line, out);
    if (rc == -ENOENT) rc = 0; /* no frequency known: the field is absent */
    if (rc < 0) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    return 0;
}
