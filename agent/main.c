/* pantala-agent: options, configuration, logging, signals. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pt/err.h"
#include "pt/log.h"
#include "pt/time.h"
#include "pt/version.h"

#include "agent.h"
#include "config.h"

#define EXIT_USAGE 2 /* bad option or configuration */

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *out)
{
    fprintf(
        out,
        "Usage: pantala-agent [--config FILE] [--once [--json]]\n"
        "\n"
        "The Pantala agent runs on each VM. Every interval, at wall-clock multiples of\n"
        "it, it reads the operating system's counters (cpu, cpufreq, memory, disk,\n"
        "diskio and network: the metric catalog of docs/metrics.md) and\n"
        "sends them to the Pantala collector as one UDP datagram, signed with the\n"
        "agent's key. It keeps every frame in a ring until the collector acknowledges\n"
        "it and resends what was not, so a collector outage loses nothing the ring\n"
        "can hold. It keeps running when the collector is down; failures are\n"
        "logged, then at a slowing rate.\n"
        "\n"
        "Options:\n"
        "  -c, --config FILE  configuration file (default " AGENT_CONFIG_PATH ")\n"
        "      --once         read one sample (two readings 250 ms apart, so rates and\n"
        "                     percentages are present), print it as a table (one row\n"
        "                     per field, with units) and exit; needs no collector and\n"
        "                     no key, and no configuration file unless --config is\n"
        "                     given\n"
        "      --json         with --once: print the sample as JSON instead\n"
        "      --check-config check the configuration file and exit (0 when valid,\n"
        "                     2 with the reason otherwise)\n"
        "      --root DIR     read counters under DIR instead of /proc (for tests;\n"
        "                     the same as \"proc_root\")\n"
        "  -h, --help         show this help and exit\n"
        "  -V, --version      show the version and exit\n"
        "\n"
        "Configuration file (JSON; unknown keys are errors):\n"
        "  collector   \"host:port\" of the collector      default \"" AGENT_DEFAULT_COLLECTOR
        "\"\n"
        "  agent_id    the id the collector issued       default: derived from ns/mcis/vm\n"
        "  key         64 hex digits, the agent's key    default: none, frames unsigned\n"
        "              (insecure, lab use only; with a key, agent_id is required)\n"
        "  ns          namespace                         required\n"
        "  mcis        MCIS                              required\n"
        "  vm          VM                                required\n"
        "  csp         cloud (\"aws\", \"gcp\", ...)         default \"\"\n"
        "  host        host name                         default: gethostname()\n"
        "  interval    collection interval, 100ms..1h    default \"1s\"\n"
        "  proc_root   where /proc is mounted            default \"" AGENT_DEFAULT_PROC_ROOT "\"\n"
        "  sys_root    where /sys is mounted             default \"" AGENT_DEFAULT_SYS_ROOT "\"\n"
        "  per_cpu     also a cpu series per CPU         default false\n"
        "  mounts.include, mounts.exclude          glob lists (fnmatch) choosing the\n"
        "  devices.include, devices.exclude        mount points, block devices and\n"
        "  interfaces.include, interfaces.exclude  interfaces reported; default: all\n"
        "  ring.bytes  frames kept until the collector   default 1048576 (1 MiB);\n"
        "              acknowledges them; 0: no ring,    65536 or more\n"
        "              frames are sent once\n"
        "  ring.resend_after  resend an unacknowledged   default \"2s\"\n"
        "              frame after this long\n"
        "  ring.resend_rate   resends per second, at     default 50\n"
        "              most (so a returning collector is not flooded)\n"
        "  log.level   error, warn, info or debug        default \"info\"\n"
        "  log.file    append the log to this file       default: standard error\n"
        "\n"
        "Example:\n"
        "  {\"collector\": \"10.0.0.5:8094\", \"agent_id\": 123,\n"
        "   \"key\": \"<64 hex digits>\", \"ns\": \"ns01\", \"mcis\": \"web\", \"vm\": \"web-1\",\n"
        "   \"csp\": \"aws\", \"interval\": \"1s\"}\n"
        "\n"
        "  pantala-agent --once                      # what would be sent, as a table\n"
        "  pantala-agent --once --json               # the same as JSON\n"
        "  pantala-agent --config /etc/pantala/agent.json\n"
        "\n"
        "Signals: SIGTERM and SIGINT stop the agent (exit 0); SIGHUP is ignored.\n"
        "Exit status: 0 on success, 1 on a runtime failure, 2 on a usage or\n"
        "configuration error. See docs/agent.md.\n");
}

static int install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop; /* no SA_RESTART: the sleep returns at once */
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) || sigaction(SIGINT, &sa, NULL)) return -errno;
    sa.sa_handler = SIG_IGN; /* reloading the configuration is not done yet */
    if (sigaction(SIGHUP, &sa, NULL) || sigaction(SIGPIPE, &sa, NULL)) return -errno;
    return 0;
}

/* A key in a file others can read is a key others have. */
static void check_key_file(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && (st.st_mode & 077))
        PT_WARN("agent",
                "%s holds the agent's key but is readable by others (mode %03o): "
                "chmod 600 it",
                path, (unsigned)(st.st_mode & 0777));
}

int main(int argc, char **argv)
{
    enum { OPT_ONCE = 256, OPT_ROOT, OPT_JSON, OPT_CHECK };
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"once", no_argument, NULL, OPT_ONCE},
        {"root", required_argument, NULL, OPT_ROOT},
        {"json", no_argument, NULL, OPT_JSON},
        {"check-config", no_argument, NULL, OPT_CHECK},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = AGENT_CONFIG_PATH, *root = NULL;
    int explicit_config = 0, once = 0, json = 0, check = 0, opt;
    while ((opt = getopt_long(argc, argv, "c:hV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            explicit_config = 1;
            break;
        case OPT_ONCE:
            once = 1;
            break;
        case OPT_ROOT:
            root = optarg;
            break;
        case OPT_JSON:
            json = 1;
            break;
        case OPT_CHECK:
            check = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("pantala-agent %s\n", PT_VERSION_STRING);
            return 0;
        default:
            fprintf(stderr, "Try 'pantala-agent --help'.\n");
            return EXIT_USAGE;
        }
    }
    if (json && !once) {
        fprintf(stderr, "pantala-agent: --json goes with --once\nTry 'pantala-agent --help'.\n");
        return EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "pantala-agent: unexpected argument '%s'\nTry 'pantala-agent --help'.\n",
                argv[optind]);
        return EXIT_USAGE;
    }

    static struct agent_config cfg;
    char err[1024];
    agent_config_defaults(&cfg);
    int rc = agent_config_load(&cfg, config_path, !once, err, sizeof err);
    if (rc == -ENOENT && once && !explicit_config) {
        agent_config_defaults(&cfg); /* --once runs without a configuration */
        cfg.agent_id = agent_config_derive_id("", "", "");
        cfg.agent_id_derived = true;
    } else if (rc) {
        fprintf(stderr, "pantala-agent: %s\n", err);
        return EXIT_USAGE;
    }
    if (root) {
        if (!*root || strlen(root) >= sizeof cfg.proc_root) {
            fprintf(stderr, "pantala-agent: --root: expected a directory\n");
            return EXIT_USAGE;
        }
        snprintf(cfg.proc_root, sizeof cfg.proc_root, "%s", root);
    }
    if (check) {
        printf("%s: configuration is valid (%s/%s/%s, collector %s)\n", config_path, cfg.ns,
               cfg.mcis, cfg.vm, cfg.collector);
        return 0;
    }
    pt_log_set_level(cfg.log_level);
    if (cfg.log_file[0] && (rc = pt_log_open(cfg.log_file))) {
        fprintf(stderr, "pantala-agent: cannot open log file %s: %s\n", cfg.log_file,
                pt_strerror(rc));
        return EXIT_FAILURE;
    }

    if (once) return agent_once(&cfg, json, stdout) ? EXIT_FAILURE : 0;

    if ((rc = install_signals())) {
        PT_ERROR("agent", "cannot install signal handlers: %s", pt_strerror(rc));
        return EXIT_FAILURE;
    }
    static struct agent a;
    if ((rc = agent_init(&a, &cfg))) {
        PT_ERROR("agent", "cannot start: %s", pt_strerror(rc));
        agent_close(&a);
        return EXIT_FAILURE;
    }
    char every[32];
    pt_duration_format(cfg.interval_ns, every, sizeof every);
    PT_INFO("agent", "pantala-agent %s: sending to %s every %s as %s/%s/%s (agent %llu%s)",
            PT_VERSION_STRING, cfg.collector, every, cfg.ns, cfg.mcis, cfg.vm,
            (unsigned long long)cfg.agent_id, cfg.agent_id_derived ? ", derived id" : "");
    if (cfg.has_key)
        check_key_file(config_path);
    else
        PT_WARN("agent",
                "no \"key\" in %s: frames are sent unsigned; a collector accepts them "
                "only in its insecure lab mode",
                config_path);

    agent_run(&a, &stop_requested);
    PT_INFO("agent",
            "stopping: %llu frames sent, %llu not sent, %llu refusals from the collector; "
            "%llu resent, %llu acknowledgements (%llu ignored), %zu frames still "
            "unacknowledged, %llu dropped from the full ring",
            (unsigned long long)a.sent, (unsigned long long)a.unsent,
            (unsigned long long)a.sender.refused, (unsigned long long)a.resent,
            (unsigned long long)a.acks, (unsigned long long)a.acks_rejected, a.ring.unacked,
            (unsigned long long)a.ring.dropped);
    agent_close(&a);
    return 0;
}
