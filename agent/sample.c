/* Runs the collectors for one sample. */
#include "sample.h"

#include <string.h>

#include "pt/time.h"

void agent_sample_init(struct agent_sample *s, const char *root)
{
    memset(s, 0, sizeof *s);
    s->root = root;
    agent_cpu_init(&s->cpu);
    agent_mem_init(&s->mem);
}

int agent_sample_collect(struct agent_sample *s)
{
    char err[512];
    int failed = 0;
    s->n = 0;

    struct agent_cpu_raw cpu;
    if (agent_plat_cpu_read(s->root, &cpu, err, sizeof err) == 0) {
        agent_cpu_update(&s->cpu, &cpu, pt_mono_ns(), &s->meas[0]);
        s->list[s->n++] = s->meas[0].m;
        pt_complain_release(&s->cpu_fail, "cpu", "reading the CPU counters works again");
    } else {
        pt_complain(&s->cpu_fail, PT_LOG_ERROR, "cpu", "%s", err);
        failed++;
    }

    struct agent_mem_raw mem;
    if (agent_plat_mem_read(s->root, &mem, err, sizeof err) == 0) {
        agent_mem_update(&s->mem, &mem, pt_mono_ns(), &s->meas[1]);
        s->list[s->n++] = s->meas[1].m;
        pt_complain_release(&s->mem_fail, "memory", "reading the memory counters works again");
    } else {
        pt_complain(&s->mem_fail, PT_LOG_ERROR, "memory", "%s", err);
        failed++;
    }
    return failed;
}
