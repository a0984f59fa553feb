/* pantala: the operator's CLI. Today: provisioning the agent over SSH. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pt/prov.h"
#include "pt/version.h"

#define EXIT_USAGE 2

static const char *const summaries[] = {
    "install the agent, register it and wait until it reports",
    "upgrade an installed agent to the package's version",
    "stop, remove and unregister the agent",
    "show what is installed, whether it runs and what the collector sees",
};

static void usage_main(FILE *out)
{
    fprintf(out,
            "Usage: pantala <command> [options]\n"
            "\n"
            "Pantala's operator tool. Commands (each has --help):\n"
            "  install     %s\n"
            "  upgrade     %s\n"
            "  uninstall   %s\n"
            "  status      %s\n"
            "\n"
            "Hosts are given one at a time (--host ... --vm ...) or as an inventory file\n"
            "(--inventory FILE); many hosts run in parallel. See docs/provisioning.md.\n"
            "\n"
            "  -h, --help      this text       -V, --version   the version\n",
            summaries[0], summaries[1], summaries[2], summaries[3]);
}

static void usage_cmd(FILE *out, enum prov_action a)
{
    fprintf(out,
            "Usage: pantala %s (--host HOST --user USER --ns NS --mcis MCIS --vm VM | --inventory "
            "FILE) [options]\n"
            "\n"
            "%c%s, over SSH, on one host or on every host of an inventory.\n"
            "\n"
            "Host (or the defaults for every inventory entry):\n"
            "  --host HOST          address or name of the VM\n"
            "  --port PORT          SSH port (22)\n"
            "  --user USER          SSH user: root, or a user with password-less sudo; any user\n"
            "                       with --prefix\n"
            "  --key FILE           SSH private key (default: ssh-agent via SSH_AUTH_SOCK)\n"
            "  --ns, --mcis, --vm   the VM's identity in Pantala (required)\n"
            "  --csp CSP            its cloud (aws, azure, gcp, ...)\n"
            "  --prefix DIR         install the static agent under DIR as USER, no root needed\n"
            "                       (no start at boot); default: a system install\n"
            "  --inventory FILE     JSON array of VMs: {\"host\", \"port\", \"user\", \"key\", "
            "\"ns\",\n"
            "                       \"mcis\", \"vm\", \"csp\", \"prefix\"}; options above are "
            "defaults\n"
            "\n"
            "Collector:\n"
            "  --api URL            its HTTP API ($PANTALA_API, default http://127.0.0.1:9090)\n"
            "  --token-file FILE    file holding an API token (default: $PANTALA_TOKEN)\n"
            "  --collector H:P      UDP address the agents send to (default: what the collector\n"
            "                       answers, from the API's host name)\n"
            "  --interval DUR       the agents' collection interval (default 1s)\n"
            "\n"
            "Packages and SSH:\n"
            "  --packages DIR       .deb/.rpm/.tar.gz of the agent ($PANTALA_PACKAGES, default\n"
            "                       /usr/share/pantala/packages)\n"
            "  --kind deb|rpm|tgz   force a package kind (default: by the host's OS)\n"
            "  --known-hosts FILE   host keys (default ~/.ssh/known_hosts); a changed key is\n"
            "                       always refused\n"
            "  --accept-new         trust and record unknown host keys\n"
            "  --parallel N         hosts at once (8)\n"
            "  --connect-timeout S  per host, TCP + SSH handshake + login (10)\n"
            "  --command-timeout S  longest silence of a remote command (120)\n"
            "  --wait S             for the collector to accept the agent's first frame (30)\n"
            "  -q, --quiet          no progress lines, only the summary\n"
            "\n"
            "Exit status: 0 when every host succeeded, 1 when any failed, 2 on a usage error.\n",
            prov_action_name(a), summaries[a][0] - 32, summaries[a] + 1);
}

struct progress {
    pthread_mutex_t mu;
    size_t n;
    int quiet;
};

static void on_progress(void *ud, size_t idx, const struct prov_host *h, const char *step,
                        const char *msg)
{
    struct progress *p = ud;
    if (p->quiet && strcmp(step, "failed")) return;
    pthread_mutex_lock(&p->mu);
    fprintf(stderr, "[%*zu/%zu] %s (%s): %s%s%s\n", p->n >= 10 ? 2 : 1, idx + 1, p->n, h->vm,
            h->host, step, msg && *msg ? " " : "", msg ? msg : "");
    pthread_mutex_unlock(&p->mu);
}

static void summary(const struct prov_host *hosts, const struct prov_result *r, size_t n)
{
    printf("%-20s %-16s %-7s %-4s %-8s %-8s %-7s %6s  %s\n", "VM", "HOST", "RESULT", "KIND",
           "VERSION", "SERVICE", "STATUS", "TIME", "DETAIL");
    for (size_t i = 0; i < n; i++)
        printf("%-20s %-16s %-7s %-4s %-8s %-8s %-7s %5.1fs  %s\n", hosts[i].vm, hosts[i].host,
               prov_state_name(r[i].state), r[i].kind[0] ? r[i].kind : "-",
               r[i].version[0] ? r[i].version : "-", r[i].service[0] ? r[i].service : "-",
               r[i].collector[0] ? r[i].collector : "-", r[i].seconds, r[i].detail);
}

static char *read_token(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char buf[512];
    char *t = fgets(buf, sizeof buf, f) ? strdup(buf) : NULL;
    fclose(f);
    if (t) t[strcspn(t, "\r\n")] = '\0';
    return t;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage_main(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage_main(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
        printf("pantala %s\n", PT_VERSION_STRING);
        return 0;
    }
    int act = prov_action_parse(argv[1]);
    if (act < 0) {
        fprintf(stderr, "pantala: unknown command '%s'\nTry 'pantala --help'.\n", argv[1]);
        return EXIT_USAGE;
    }

    enum {
        O_HOST = 256,
        O_PORT,
        O_USER,
        O_KEY,
        O_NS,
        O_MCIS,
        O_VM,
        O_CSP,
        O_PREFIX,
        O_INV,
        O_API,
        O_TOKENF,
        O_COLL,
        O_INTERVAL,
        O_PKGS,
        O_KIND,
        O_KH,
        O_ACCEPT,
        O_PAR,
        O_CTO,
        O_XTO,
        O_WAIT
    };
    static const struct option longopts[] = {
        {"host", 1, NULL, O_HOST},
        {"port", 1, NULL, O_PORT},
        {"user", 1, NULL, O_USER},
        {"key", 1, NULL, O_KEY},
        {"ns", 1, NULL, O_NS},
        {"mcis", 1, NULL, O_MCIS},
        {"vm", 1, NULL, O_VM},
        {"csp", 1, NULL, O_CSP},
        {"prefix", 1, NULL, O_PREFIX},
        {"inventory", 1, NULL, O_INV},
        {"api", 1, NULL, O_API},
        {"token-file", 1, NULL, O_TOKENF},
        {"collector", 1, NULL, O_COLL},
        {"interval", 1, NULL, O_INTERVAL},
        {"packages", 1, NULL, O_PKGS},
        {"kind", 1, NULL, O_KIND},
        {"known-hosts", 1, NULL, O_KH},
        {"accept-new", 0, NULL, O_ACCEPT},
        {"parallel", 1, NULL, O_PAR},
        {"connect-timeout", 1, NULL, O_CTO},
        {"command-timeout", 1, NULL, O_XTO},
        {"wait", 1, NULL, O_WAIT},
        {"quiet", 0, NULL, 'q'},
        {"help", 0, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct prov_host d = {0};
    struct prov_opts o = {0};
    const char *inventory = NULL, *token_file = NULL;
    struct progress pr = {.quiet = 0};
    int opt;
    char *end;
    optind = 2;
    while ((opt = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
        long v;
        switch (opt) {
        case O_HOST:
            d.host = optarg;
            break;
        case O_PORT:
            v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 65535) goto bad_number;
            d.port = (uint16_t)v;
            break;
        case O_USER:
            d.user = optarg;
            break;
        case O_KEY:
            d.key = optarg;
            break;
        case O_NS:
            d.ns = optarg;
            break;
        case O_MCIS:
            d.mcis = optarg;
            break;
        case O_VM:
            d.vm = optarg;
            break;
        case O_CSP:
            d.csp = optarg;
            break;
        case O_PREFIX:
            if (optarg[0] != '/') {
                fprintf(stderr, "pantala: --prefix must be an absolute path on the host\n");
                return EXIT_USAGE;
            }
            d.prefix = optarg;
            break;
        case O_INV:
            inventory = optarg;
            break;
        case O_API:
            o.api_url = optarg;
            break;
        case O_TOKENF:
            token_file = optarg;
            break;
        case O_COLL:
            o.collector_udp = optarg;
            break;
        case O_INTERVAL:
            o.interval = optarg;
            break;
        case O_PKGS:
            o.package_dir = optarg;
            break;
        case O_KIND:
            if (strcmp(optarg, "deb") && strcmp(optarg, "rpm") && strcmp(optarg, "tgz")) {
                fprintf(stderr, "pantala: --kind must be deb, rpm or tgz\n");
                return EXIT_USAGE;
            }
            o.kind = optarg;
            break;
        case O_KH:
            o.known_hosts = optarg;
            break;
        case O_ACCEPT:
            o.accept_new = true;
            break;
        case O_PAR:
        case O_CTO:
        case O_XTO:
        case O_WAIT:
            v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 86400) goto bad_number;
            if (opt == O_PAR) o.parallel = (int)v;
            if (opt == O_CTO) o.connect_timeout_ms = (int)v * 1000;
            if (opt == O_XTO) o.command_timeout_ms = (int)v * 1000;
            if (opt == O_WAIT) o.first_frame_timeout_ms = (int)v * 1000;
            break;
        case 'q':
            pr.quiet = 1;
            break;
        case 'h':
            usage_cmd(stdout, (enum prov_action)act);
            return 0;
        default:
            fprintf(stderr, "Try 'pantala %s --help'.\n", argv[1]);
            return EXIT_USAGE;
        }
        continue;
    bad_number:
        fprintf(stderr, "pantala: %s: '%s' is not a valid number\n", argv[optind - 2], optarg);
        return EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "pantala: unexpected argument '%s'\nTry 'pantala %s --help'.\n",
                argv[optind], argv[1]);
        return EXIT_USAGE;
    }
    if (!o.api_url)
        o.api_url = getenv("PANTALA_API") ? getenv("PANTALA_API") : "http://127.0.0.1:9090";
    if (!o.package_dir)
        o.package_dir =
            getenv("PANTALA_PACKAGES") ? getenv("PANTALA_PACKAGES") : "/usr/share/pantala/packages";
    char *token = NULL;
    if (token_file && !(token = read_token(token_file))) {
        fprintf(stderr, "pantala: cannot read a token from %s\n", token_file);
        return EXIT_USAGE;
    }
    o.token = token ? token : getenv("PANTALA_TOKEN");
    if (!o.token || !*o.token) {
        fprintf(stderr, "pantala: the collector API needs a token: --token-file FILE or "
                        "PANTALA_TOKEN (one of pantalad's api.tokens)\n");
        return EXIT_USAGE;
    }

    struct prov_inventory inv = {0};
    char err[1024];
    if (inventory) {
        if (prov_inventory_load(inventory, &d, &inv, err, sizeof err)) {
            fprintf(stderr, "pantala: %s\n", err);
            free(token);
            return EXIT_USAGE;
        }
    } else {
        const char *need[] = {"--host", "--user", "--ns", "--mcis", "--vm"};
        const char *val[] = {d.host, d.user, d.ns, d.mcis, d.vm};
        for (int i = 0; i < 5; i++)
            if (!val[i]) {
                fprintf(stderr,
                        "pantala: %s is required (or --inventory FILE)\nTry 'pantala %s "
                        "--help'.\n",
                        need[i], argv[1]);
                free(token);
                return EXIT_USAGE;
            }
        inv.hosts = &d;
        inv.n = 1;
    }
    if (prov_global_init()) {
        fprintf(stderr, "pantala: cannot initialise libssh2/libcurl\n");
        return 1;
    }
    pthread_mutex_init(&pr.mu, NULL);
    pr.n = inv.n;
    struct prov_result *res = calloc(inv.n, sizeof *res);
    if (!res) return 1;
    size_t failed =
        prov_run_many((enum prov_action)act, inv.hosts, inv.n, &o, res, on_progress, &pr);
    summary(inv.hosts, res, inv.n);
    printf("%zu host%s: %zu ok, %zu failed\n", inv.n, inv.n == 1 ? "" : "s", inv.n - failed,
           failed);
    free(res);
    if (inventory) prov_inventory_free(&inv);
    free(token);
    return failed ? 1 : 0;
}
