/* bench_alert_eval: the alert engine's evaluation cost without the socket,
 * the store or the rest of the collector — what alerting adds to the
 * ingest thread. Simulates --vms VMs (--vms-per-mcis per MCIS) sending one
 * full-catalog frame per second (the load generator's frames, decoded
 * once each) to an engine holding --rules rules per MCIS (the mix of
 * tests/bench/alert_bench.py: each/avg/max/p95/min/sum on ten fields, a
 * quarter with a 1 min window), with the 100 ms tick, on simulated time.
 * Thresholds are out of reach: this is the cost of evaluating, not of
 * notifying. The built-in rules (agent_down, frames_lost) get a snapshot of
 * every agent once a second, as the collector's registry gives them. Prints
 * the thread CPU time of feed, tick and built-ins per simulated second
 * (= the share of one core), points/s, series and RSS.
 *
 * Usage: bench_alert_eval [--vms N] [--vms-per-mcis K] [--rules R] [--seconds S] */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lg_agent.h"
#include "pt/alert.h"
#include "pt/err.h"
#include "pt/log.h"
#include "pt/time.h"

static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * PT_NS_PER_SEC + ts.tv_nsec;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kib = strtol(line + 6, NULL, 10);
    if (f) fclose(f);
    return kib;
}

static int count_submit(void *ctx, const struct alert_event *ev, const struct alert_handler *h,
                        size_t nh)
{
    (void)ev;
    (void)h;
    (void)nh;
    (*(size_t *)ctx)++;
    return 0;
}

static const char *const metrics[] = {"cpu.cpu_utilization",    "cpu.cpu_system",
                                      "cpu.cpu_iowait",         "cpu.load_avg_1m",
                                      "memory.mem_utilization", "memory.swap_utilization",
                                      "disk.disk_utilization",  "diskio.kb_written",
                                      "network.bytes_in",       "network.bytes_out"};
static const char *const reduces[] = {"each", "each", "each", "avg", "max",
                                      "p95",  "each", "min",  "sum", "each"};

int main(int argc, char **argv)
{
    size_t nvms = 10000, per_mcis = 100, rules = 100, seconds = 10;
    static const struct option opts[] = {{"vms", required_argument, NULL, 'v'},
                                         {"vms-per-mcis", required_argument, NULL, 'k'},
                                         {"rules", required_argument, NULL, 'r'},
                                         {"seconds", required_argument, NULL, 's'},
                                         {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'v':
            nvms = strtoul(optarg, NULL, 10);
            break;
        case 'k':
            per_mcis = strtoul(optarg, NULL, 10);
            break;
        case 'r':
            rules = strtoul(optarg, NULL, 10);
            break;
        case 's':
            seconds = strtoul(optarg, NULL, 10);
            break;
        default:
            fprintf(stderr, "usage: bench_alert_eval [--vms N] [--vms-per-mcis K] [--rules R] "
                            "[--seconds S]\n");
            return 2;
        }
    }
    if (!nvms || !per_mcis || !seconds || lg_catalog_check()) return 2;
    pt_log_set_level(PT_LOG_WARN);
    char dir[] = "/tmp/pt-bench-alert-XXXXXX", db[64];
    if (!mkdtemp(dir)) return 1;
    snprintf(db, sizeof db, "%s/alerts.db", dir);
    size_t events = 0;
    struct alert_engine_opts eo = {.db_path = db,
                                   .submit = count_submit,
                                   .submit_ctx = &events,
                                   .flap_changes = 6,
                                   .flap_window_ns = 600 * PT_NS_PER_SEC,
                                   .agent_down = true,
                                   .agent_down_intervals = 3,
                                   .frames_lost = true,
                                   .frames_lost_ratio = 0.01,
                                   .frames_lost_window_ns = 60 * PT_NS_PER_SEC};
    struct alert_engine *e;
    char err[512];
    if (alert_engine_open(&e, &eo, err, sizeof err)) {
        fprintf(stderr, "bench_alert_eval: %s\n", err);
        return 1;
    }
    size_t nmcis = (nvms + per_mcis - 1) / per_mcis;
    for (size_t m = 0; m < nmcis; m++)
        for (size_t i = 0; i < rules; i++) {
            char js[512];
            snprintf(js, sizeof js,
                     "{\"name\": \"r-%zu-%zu\", \"scope\": {\"ns\": \"bench\", \"mcis\": "
                     "\"m-%zu\"}, \"metric\": \"%s\", \"reduce\": \"%s\", \"window\": \"%s\", "
                     "\"warn\": \"> 1e15\", \"crit\": \"> 1e16\"}",
                     m, i, m, metrics[i % 10], reduces[(i / 10) % 10], i % 4 ? "0s" : "1m");
            if (alert_rules_put(e, js, strlen(js), NULL, true, NULL, err, sizeof err)) {
                fprintf(stderr, "bench_alert_eval: rule: %s\n", err);
                return 1;
            }
        }
    struct lg_agent *ag = calloc(nvms, sizeof *ag);
    struct pt_wire_dec *dec = pt_wire_dec_new();
    uint8_t *buf = malloc(LG_FRAME_CAP);
    if (!ag || !dec || !buf) return 1;
    for (size_t i = 0; i < nvms; i++) {
        char mcis[32], vm[32];
        snprintf(mcis, sizeof mcis, "m-%zu", i / per_mcis);
        snprintf(vm, sizeof vm, "vm-%05zu", i);
        if (lg_agent_init(&ag[i], i + 1, "bench", mcis, vm, "aws", NULL, false, 1, 1000, i + 1))
            return 1;
    }
    /* What the collector's registry snapshot gives the built-in rules. */
    struct alert_agent_sample *smp = calloc(nvms, sizeof *smp);
    if (!smp) return 1;
    for (size_t i = 0; i < nvms; i++)
        smp[i] = (struct alert_agent_sample){ag[i].ns, ag[i].mcis, ag[i].vm, 0, 1000, 0, 0};
    int64_t t0 = pt_now_ns(), feed_ns = 0, tick_ns = 0, warm_feed = 0, warm_tick = 0;
    int64_t agents_ns = 0, warm_agents = 0;
    long rss0 = rss_kib();
    struct alert_stats st0 = {0};
    const int64_t tick_every = 100 * PT_NS_PER_MS;
    int64_t next_tick = t0 + tick_every;
    for (size_t s = 0; s <= seconds; s++) { /* second 0 creates the series: not counted */
        if (s == 1) {
            warm_feed = feed_ns;
            warm_tick = tick_ns;
            warm_agents = agents_ns;
            alert_engine_stats(e, &st0);
        }
        for (size_t i = 0; i < nvms; i++) {
            int64_t now =
                t0 + (int64_t)s * PT_NS_PER_SEC + (int64_t)i * PT_NS_PER_SEC / (int64_t)nvms;
            size_t len;
            struct pt_frame f;
            if (lg_agent_next(&ag[i], now, buf, LG_FRAME_CAP, &len) ||
                pt_wire_decode(dec, buf, len, &f))
                return 1;
            while (now >= next_tick) {
                int64_t c = cpu_ns();
                alert_engine_tick(e, next_tick);
                tick_ns += cpu_ns() - c;
                next_tick += tick_every;
            }
            int64_t c = cpu_ns();
            alert_engine_feed(e, &f, now);
            feed_ns += cpu_ns() - c;
            smp[i].last_seen_ns = now;
            smp[i].accepted++;
        }
        int64_t c = cpu_ns();
        alert_engine_agents(e, smp, nvms, t0 + (int64_t)(s + 1) * PT_NS_PER_SEC);
        agents_ns += cpu_ns() - c;
    }
    struct alert_stats st;
    alert_engine_stats(e, &st);
    double per_s_feed = (double)(feed_ns - warm_feed) / (double)seconds / 1e6;
    double per_s_tick = (double)(tick_ns - warm_tick) / (double)seconds / 1e6;
    double per_s_agents = (double)(agents_ns - warm_agents) / (double)seconds / 1e6;
    double pts = (double)(st.points - st0.points) / (double)seconds;
    printf("# alert evaluation: %zu VMs x 1 frame/s (%zu MCIS), %zu rules per MCIS (%zu rules), "
           "%zu simulated s\n",
           nvms, nmcis, rules, nmcis * rules, seconds);
    printf("feed      %8.1f ms CPU per second  (%.0f ns per frame, %.0f ns per rule point)\n",
           per_s_feed, per_s_feed * 1e6 / (double)nvms, per_s_feed * 1e6 / (pts ? pts : 1));
    printf("tick      %8.1f ms CPU per second  (10 ticks: timers, deferred reductions, sweep)\n",
           per_s_tick);
    printf("built-ins %8.1f ms CPU per second  (agent_down, frames_lost over %zu agents; the "
           "registry snapshot is not included)\n",
           per_s_agents, nvms);
    printf("total     %8.1f %% of one core\n", (per_s_feed + per_s_tick + per_s_agents) / 10.0);
    printf("points/s  %8.0f   series %llu   events %zu   RSS +%.0f MiB (%.0f MiB)\n", pts,
           (unsigned long long)st.series, events, (double)(rss_kib() - rss0) / 1024.0,
           (double)rss_kib() / 1024.0);
    free(smp);
    for (size_t i = 0; i < nvms; i++) lg_agent_close(&ag[i]);
    free(ag);
    free(buf);
    pt_wire_dec_free(dec);
    alert_engine_close(e);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) ? 1 : 0;
}
