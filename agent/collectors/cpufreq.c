/* cpufreq measurement: the mean current frequency. */
#include "cpufreq.h"

int agent_cpufreq_update(const struct agent_cpufreq_raw *r, struct agent_meas *out)
{
    if (r->ncpu == 0) return 0;
    agent_meas_init(out, "cpufreq");
    agent_meas_float(out, "cpu_speed", r->sum_mhz / (double)r->ncpu);
    return 1;
}
