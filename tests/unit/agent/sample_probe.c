/* A test and benchmark driver for agent/sample.c on the live host.
 *
 *   sample_probe             reads a sample, prints "ready", waits for a
 *                            line on standard input, reads again and prints
 *                            that sample as JSON (agent/json.h) followed by
 *                            a line "elapsed_ns N": so a test can make a
 *                            known transfer between the two readings.
 *   sample_probe --bench N   collects N samples back to back and prints the
 *                            CPU time (user + system) per collection.
 *
 * Both read /proc and /sys with the default configuration (per_cpu on with
 * --bench --per-cpu). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "pt/log.h"
#include "pt/time.h"

#include "agent.h"
#include "json.h"
#include "sample.h"

static struct agent_config cfg;
static struct agent_sample s;

static double cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static int bench(long n)
{
    agent_sample_collect(&s); /* warm: first reading, page faults */
    double t0 = cpu_us();
    int64_t w0 = pt_mono_ns();
    for (long i = 0; i < n; i++) agent_sample_collect(&s);
    double per = (cpu_us() - t0) / (double)n;
    printf("%u measurements; %.1f us CPU and %.1f us wall per collection (%ld collections)\n",
           (unsigned)s.n, per, (double)(pt_mono_ns() - w0) / 1e3 / (double)n, n);
    return 0;
}

int main(int argc, char **argv)
{
    pt_log_set_level(PT_LOG_WARN);
    agent_config_defaults(&cfg);
    if (argc >= 3 && strcmp(argv[1], "--bench") == 0) {
        cfg.per_cpu = argc >= 4 && strcmp(argv[3], "--per-cpu") == 0;
        agent_sample_init(&s, &cfg);
        return bench(strtol(argv[2], NULL, 10));
    }
    agent_sample_init(&s, &cfg);
    agent_sample_collect(&s);
    int64_t t0 = pt_mono_ns();
    printf("ready\n");
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin)) return 1;
    int failed = agent_sample_collect(&s);
    int64_t elapsed = pt_mono_ns() - t0;
    struct pt_frame f;
    agent_frame_fill(&f, &cfg, &s, pt_now_ns(), (uint32_t)(elapsed / PT_NS_PER_MS));
    if (agent_json_write(stdout, &f)) return 1;
    printf("elapsed_ns %lld\n", (long long)elapsed);
    return failed ? 1 : 0;
}
