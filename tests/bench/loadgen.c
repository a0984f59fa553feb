/* pantala-loadgen: many simulated agents sending full-catalog frames to a
 * collector over UDP at a precisely paced rate, from one process (see
 * tests/bench/README.md). */
#include "lg_agent.h"
#include "lg_register.h"

#include "pt/err.h"
#include "pt/time.h"
#include "pt/util.h"
#include "pt/wire.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <netinet/in.h>
#include <netinet/udp.h>

#define MAX_BATCH     1024
#define EXTRA_SLOTS   16 /* garbage/replay datagrams a batch may carry */
#define MAX_SLOTS     (MAX_BATCH + EXTRA_SLOTS)
#define REPLAY_RING   256 /* recent frames kept for --replay */
#define GHOST_ID      (UINT64_C(1) << 62)
#define GSO_MAX_SEGS  64    /* the kernel's UDP_MAX_SEGMENTS */
#define GSO_MAX_BYTES 65000 /* one IP datagram before segmentation */

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* linux/udp.h, Linux 4.18 */
#endif

struct opts {
    const char *target, *api, *token, *agents_file, *save_agents;
    const char *ns, *mcis, *csp;
    size_t agents, vms_per_mcis, batch;
    unsigned parallel;
    double rate, duration;
    uint64_t frames, garbage, replay, epoch, seed;
    uint32_t interval_ms;
    bool sink, unsigned_, json, quiet, agents_set, no_gso;
    /* --pattern MEAS.FIELD=LO,HI/PERIOD */
    int pat_idx; /* -1: none */
    double pat_lo, pat_hi;
    int64_t pat_period_ns;
    size_t pat_agents; /* the first N agents follow it; the others stay at LO */
    bool pat_spread;   /* agent i's phases shifted by i/N of the period */
    const char *pat_log;
};

/* Datagram kinds in a batch. */
enum slot_kind { SLOT_FRAME, SLOT_GARBAGE, SLOT_REPLAY };

struct run {
    int fd, sink_fd;
    struct lg_agent *agents;
    size_t nagents, cursor;
    size_t *order;         /* round-robin order: agents sorted by frame length */
    uint16_t *alen;        /* length of each agent's latest frame */
    bool gso;              /* UDP segmentation offload in use */
    struct lg_agent ghost; /* an unregistered agent, for garbage */
    bool have_ghost;
    uint64_t rng;

    /* A batch: one buffer and iovec per datagram ("slot"); messages group
     * consecutive slots of equal length into one GSO send. */
    uint8_t (*bufs)[LG_FRAME_CAP];
    struct iovec iov[MAX_SLOTS];
    uint8_t kind[MAX_SLOTS];
    struct mmsghdr msgs[MAX_SLOTS];
    uint16_t msg_first[MAX_SLOTS], msg_count[MAX_SLOTS];
    union {
        char buf[CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } cmsg[MAX_SLOTS];

    uint8_t (*ring)[LG_FRAME_CAP]; /* recent frames, for --replay */
    uint16_t ring_len[REPLAY_RING];
    size_t ring_fill, ring_pos;
    uint8_t last[LG_FRAME_CAP]; /* the latest frame, for corrupt garbage */
    size_t last_len;

    uint64_t garbage_made; /* picks the kind of the next bad datagram */
    int64_t pat_t0;        /* --pattern phases count from here */
    FILE *pat_log;

    /* results */
    uint64_t frames, garbage, replays, send_errors, bytes;
    int last_errno;
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void usage(FILE *fp)
{
    fputs("Usage: pantala-loadgen [OPTIONS]\n"
          "\n"
          "Simulates many agents sending full-catalog frames (6 measurements, 54 values:\n"
          "the 53 catalog fields plus mem_available) over UDP to a collector, paced at a\n"
          "target total rate with sendmmsg(), and prints what it sent.\n"
          "\n"
          "Where to send:\n"
          "  --target HOST:PORT   the collector's UDP ingest address\n"
          "  --sink               send to a UDP socket of our own that is never read\n"
          "                       (measures the load generator's own ceiling)\n"
          "\n"
          "Agents:\n"
          "  --api URL            register agents through the collector's API\n"
          "                       (e.g. http://127.0.0.1:8080), needs --token and --agents\n"
          "  --token TOKEN        API bearer token\n"
          "  --agents N           number of agents (default 100); with --agents-file, use\n"
          "                       the first N of the file; with neither --api nor a file,\n"
          "                       N made-up agents (ids 1..N, random keys) the collector\n"
          "                       does not know: only useful with --sink or --unsigned\n"
          "  --parallel P         registrations in flight (default 16)\n"
          "  --agents-file FILE   load registrations saved earlier\n"
          "  --save-agents FILE   save the registrations (JSON, mode 0600: holds keys)\n"
          "  --ns NAME            namespace of the agents (default bench)\n"
          "  --mcis PREFIX        MCIS name prefix: PREFIX-000, PREFIX-001 ... (default mcis)\n"
          "  --vms-per-mcis K     VMs per MCIS (default 100); VMs are named vm-00000 ...\n"
          "  --csp NAME           cloud of every agent (default: aws, azure, gcp, alibaba,\n"
          "                       tencent, openstack, ncp in turn)\n"
          "\n"
          "Load:\n"
          "  --rate R             total frames per second (default 1000; 0 = as fast as\n"
          "                       possible)\n"
          "  --duration S         seconds to send (default 10; 0 = only register/save)\n"
          "  --frames N           stop after N frames (no time limit unless --duration)\n"
          "  --interval-ms MS     collection interval written into frames (default 1000)\n"
          "  --epoch E            agent epoch written into frames (default: now, Unix ms)\n"
          "  --unsigned           send unsigned frames (collector in insecure mode)\n"
          "  --batch N            most frames per sendmmsg() (default 256)\n"
          "  --no-gso             one datagram per message; by default frames of equal\n"
          "                       length go out as one UDP GSO message (UDP_SEGMENT) that\n"
          "                       the kernel splits: the collector receives the same\n"
          "                       datagrams either way, the sender spends less per frame\n"
          "  --seed N             seed of the value model (default: from the clock)\n"
          "  --pattern M.F=LO,HI/PERIOD\n"
          "                       drive field F of measurement M as a square wave instead\n"
          "                       of the model: LO for half of PERIOD, then HI, and so on,\n"
          "                       every agent switching at the same moments (e.g.\n"
          "                       cpu.cpu_utilization=10,90/4s): drives alert rules across\n"
          "                       their thresholds\n"
          "  --pattern-agents N   only the first N agents follow the pattern; the others\n"
          "                       hold LO (default: all)\n"
          "  --pattern-spread     shift agent i's phases by i/N of the period, so crossings\n"
          "                       are spread evenly instead of all at once\n"
          "  --pattern-log FILE   append one line per frame that starts a new phase:\n"
          "                       \"<vm> <send time ns> <low|high> <value>\" (for latency\n"
          "                       measurements)\n"
          "\n"
          "Fault injection (spread over the run):\n"
          "  --garbage N          also send N bad datagrams: random bytes, truncated,\n"
          "                       bit-flipped, bad MAC, wrong version, unknown agent\n"
          "  --replay N           also resend N frames already sent (duplicates)\n"
          "\n"
          "Output:\n"
          "  --json               print the summary as one JSON object on stdout\n"
          "  --quiet              no progress lines\n"
          "  --help               this text\n"
          "\n"
          "Exit status: 0 when the run completed (send errors are counted, not fatal),\n"
          "1 on a usage or set-up error.\n",
          fp);
}

/* ---- options ---------------------------------------------------------------- */

static int parse_num(const char *name, const char *s, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < min || v > max) {
        fprintf(stderr, "pantala-loadgen: %s: expected a number from %g to %g, got \"%s\"\n", name,
                min, max, s);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int parse_u64(const char *name, const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v > max) {
        fprintf(stderr,
                "pantala-loadgen: %s: expected an integer from 0 to %" PRIu64 ", got \"%s\"\n",
                name, max, s);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

/* "cpu.cpu_utilization=10,90/4s" */
static int parse_pattern(const char *s, struct opts *o)
{
    char meas[64], field[64], per[32];
    double lo, hi;
    int n = 0;
    if (sscanf(s, "%63[^.].%63[^=]=%lf,%lf/%31s%n", meas, field, &lo, &hi, per, &n) != 5 || s[n] ||
        pt_duration_parse(per, &o->pat_period_ns) || o->pat_period_ns < 2 * PT_NS_PER_MS ||
        !isfinite(lo) || !isfinite(hi)) {
        fprintf(stderr,
                "pantala-loadgen: --pattern: expected MEASUREMENT.FIELD=LOW,HIGH/PERIOD such as "
                "cpu.cpu_utilization=10,90/4s, got \"%s\"\n",
                s);
        return -EINVAL;
    }
    if ((o->pat_idx = lg_value_index(meas, field)) < 0) {
        fprintf(stderr, "pantala-loadgen: --pattern: the load generator sends no %s.%s\n", meas,
                field);
        return -EINVAL;
    }
    o->pat_lo = lo;
    o->pat_hi = hi;
    return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    enum {
        O_TARGET = 256,
        O_SINK,
        O_API,
        O_TOKEN,
        O_AGENTS,
        O_PARALLEL,
        O_AGENTS_FILE,
        O_SAVE,
        O_NS,
        O_MCIS,
        O_VPM,
        O_CSP,
        O_RATE,
        O_DURATION,
        O_FRAMES,
        O_INTERVAL,
        O_EPOCH,
        O_UNSIGNED,
        O_BATCH,
        O_NO_GSO,
        O_SEED,
        O_GARBAGE,
        O_REPLAY,
        O_PATTERN,
        O_PATTERN_AGENTS,
        O_PATTERN_LOG,
        O_PATTERN_SPREAD,
        O_JSON,
        O_QUIET,
        O_HELP,
    };
    static const struct option lopts[] = {
        {"target", required_argument, NULL, O_TARGET},
        {"sink", no_argument, NULL, O_SINK},
        {"api", required_argument, NULL, O_API},
        {"token", required_argument, NULL, O_TOKEN},
        {"agents", required_argument, NULL, O_AGENTS},
        {"parallel", required_argument, NULL, O_PARALLEL},
        {"agents-file", required_argument, NULL, O_AGENTS_FILE},
        {"save-agents", required_argument, NULL, O_SAVE},
        {"ns", required_argument, NULL, O_NS},
        {"mcis", required_argument, NULL, O_MCIS},
        {"vms-per-mcis", required_argument, NULL, O_VPM},
        {"csp", required_argument, NULL, O_CSP},
        {"rate", required_argument, NULL, O_RATE},
        {"duration", required_argument, NULL, O_DURATION},
        {"frames", required_argument, NULL, O_FRAMES},
        {"interval-ms", required_argument, NULL, O_INTERVAL},
        {"epoch", required_argument, NULL, O_EPOCH},
        {"unsigned", no_argument, NULL, O_UNSIGNED},
        {"batch", required_argument, NULL, O_BATCH},
        {"no-gso", no_argument, NULL, O_NO_GSO},
        {"seed", required_argument, NULL, O_SEED},
        {"garbage", required_argument, NULL, O_GARBAGE},
        {"replay", required_argument, NULL, O_REPLAY},
        {"pattern", required_argument, NULL, O_PATTERN},
        {"pattern-agents", required_argument, NULL, O_PATTERN_AGENTS},
        {"pattern-log", required_argument, NULL, O_PATTERN_LOG},
        {"pattern-spread", no_argument, NULL, O_PATTERN_SPREAD},
        {"json", no_argument, NULL, O_JSON},
        {"quiet", no_argument, NULL, O_QUIET},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    bool duration_set = false;
    uint64_t u;
    int c, rc = 0;

    *o = (struct opts){.ns = "bench",
                       .mcis = "mcis",
                       .agents = 100,
                       .vms_per_mcis = 100,
                       .batch = 256,
                       .parallel = 16,
                       .rate = 1000,
                       .duration = 10,
                       .interval_ms = 1000,
                       .epoch = (uint64_t)(pt_now_ns() / PT_NS_PER_MS),
                       .seed = (uint64_t)pt_mono_ns(),
                       .pat_idx = -1,
                       .pat_agents = SIZE_MAX};
    while (!rc && (c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
        switch (c) {
        case O_TARGET:
            o->target = optarg;
            break;
        case O_SINK:
            o->sink = true;
            break;
        case O_API:
            o->api = optarg;
            break;
        case O_TOKEN:
            o->token = optarg;
            break;
        case O_AGENTS:
            if (!(rc = parse_u64("--agents", optarg, 10000000, &u))) o->agents = (size_t)u;
            if (!rc && u == 0) {
                fprintf(stderr, "pantala-loadgen: --agents: at least 1\n");
                rc = -EINVAL;
            }
            o->agents_set = true;
            break;
        case O_PARALLEL:
            if (!(rc = parse_u64("--parallel", optarg, 1024, &u))) o->parallel = (unsigned)u;
            break;
        case O_AGENTS_FILE:
            o->agents_file = optarg;
            break;
        case O_SAVE:
            o->save_agents = optarg;
            break;
        case O_NS:
            o->ns = optarg;
            break;
        case O_MCIS:
            o->mcis = optarg;
            break;
        case O_VPM:
            if (!(rc = parse_u64("--vms-per-mcis", optarg, 1000000, &u))) o->vms_per_mcis = u;
            if (!rc && u == 0) o->vms_per_mcis = 1;
            break;
        case O_CSP:
            o->csp = optarg;
            break;
        case O_RATE:
            rc = parse_num("--rate", optarg, 0, 1e8, &o->rate);
            break;
        case O_DURATION:
            rc = parse_num("--duration", optarg, 0, 1e7, &o->duration);
            duration_set = true;
            break;
        case O_FRAMES:
            rc = parse_u64("--frames", optarg, UINT64_MAX / 2, &o->frames);
            break;
        case O_INTERVAL:
            if (!(rc = parse_u64("--interval-ms", optarg, UINT32_MAX, &u)))
                o->interval_ms = (uint32_t)u;
            break;
        case O_EPOCH:
            rc = parse_u64("--epoch", optarg, UINT64_MAX, &o->epoch);
            break;
        case O_UNSIGNED:
            o->unsigned_ = true;
            break;
        case O_BATCH:
            if (!(rc = parse_u64("--batch", optarg, MAX_BATCH, &u))) o->batch = u ? u : 1;
            break;
        case O_NO_GSO:
            o->no_gso = true;
            break;
        case O_SEED:
            rc = parse_u64("--seed", optarg, UINT64_MAX, &o->seed);
            break;
        case O_GARBAGE:
            rc = parse_u64("--garbage", optarg, UINT64_MAX / 2, &o->garbage);
            break;
        case O_REPLAY:
            rc = parse_u64("--replay", optarg, UINT64_MAX / 2, &o->replay);
            break;
        case O_PATTERN:
            rc = parse_pattern(optarg, o);
            break;
        case O_PATTERN_AGENTS:
            if (!(rc = parse_u64("--pattern-agents", optarg, 10000000, &u))) o->pat_agents = u;
            break;
        case O_PATTERN_LOG:
            o->pat_log = optarg;
            break;
        case O_PATTERN_SPREAD:
            o->pat_spread = true;
            break;
        case O_JSON:
            o->json = true;
            break;
        case O_QUIET:
            o->quiet = true;
            break;
        case O_HELP:
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -EINVAL;
        }
    }
    if (rc) return rc;
    if (optind < argc) {
        fprintf(stderr, "pantala-loadgen: unexpected argument \"%s\" (see --help)\n", argv[optind]);
        return -EINVAL;
    }
    if (o->frames && !duration_set) o->duration = 0; /* only the frame count limits */
    bool sending = o->duration > 0 || o->frames > 0;
    if (sending && !o->target && !o->sink) {
        fprintf(stderr, "pantala-loadgen: give --target HOST:PORT or --sink (see --help)\n");
        return -EINVAL;
    }
    if (o->target && o->sink) {
        fprintf(stderr, "pantala-loadgen: --target and --sink exclude each other\n");
        return -EINVAL;
    }
    if (o->api && !o->token) {
        fprintf(stderr, "pantala-loadgen: --api needs --token\n");
        return -EINVAL;
    }
    if (o->api && o->agents_file) {
        fprintf(stderr, "pantala-loadgen: --api registers new agents, --agents-file reuses "
                        "saved ones: give one of them\n");
        return -EINVAL;
    }
    return 0;
}

/* ---- agents ----------------------------------------------------------------- */

static const char *const csps[] = {"aws", "azure", "gcp", "alibaba", "tencent", "openstack", "ncp"};

/* Registrations for this run: from the file, from the API, or made up. */
static int get_registrations(const struct opts *o, struct lg_reg **out, size_t *nout)
{
    char err[512] = "";
    struct lg_reg *regs = NULL;
    size_t n = 0;
    int rc;

    if (o->agents_file) {
        if ((rc = lg_agents_load(o->agents_file, &regs, &n, err, sizeof err))) {
            fprintf(stderr, "pantala-loadgen: %s\n", err);
            return rc;
        }
        if (o->agents_set) {
            if (o->agents > n) {
                fprintf(stderr, "pantala-loadgen: --agents %zu but %s holds %zu agents\n",
                        o->agents, o->agents_file, n);
                lg_regs_free(regs, n);
                return -EINVAL;
            }
            for (size_t i = o->agents; i < n; i++) {
                free(regs[i].ns);
                free(regs[i].mcis);
                free(regs[i].vm);
                free(regs[i].csp);
            }
            n = o->agents;
        }
    } else {
        n = o->agents;
        regs = calloc(n, sizeof *regs);
        if (!regs) return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
            char mcis[300], vm[32];
            snprintf(mcis, sizeof mcis, "%s-%03zu", o->mcis, i / o->vms_per_mcis);
            snprintf(vm, sizeof vm, "vm-%05zu", i);
            const char *csp = o->csp ? o->csp : csps[i % PT_ARRAY_LEN(csps)];
            if ((rc = lg_reg_set(&regs[i], o->ns, mcis, vm, csp))) {
                lg_regs_free(regs, n);
                return rc;
            }
            regs[i].id = i + 1; /* made up unless registered below */
        }
        if (o->api) {
            if (!o->quiet)
                fprintf(stderr, "pantala-loadgen: registering %zu agents at %s\n", n, o->api);
            rc =
                lg_register_api(o->api, o->token, regs, n, o->parallel, !o->quiet, err, sizeof err);
            if (rc) {
                fprintf(stderr, "pantala-loadgen: registration failed: %s\n", err);
                lg_regs_free(regs, n);
                return rc;
            }
        }
    }
    if (o->save_agents && (rc = lg_agents_save(o->save_agents, regs, n, err, sizeof err))) {
        fprintf(stderr, "pantala-loadgen: cannot save agents: %s\n", err);
        lg_regs_free(regs, n);
        return rc;
    }
    *out = regs;
    *nout = n;
    return 0;
}

static int init_agents(const struct opts *o, struct run *r, const struct lg_reg *regs, size_t n)
{
    bool sign = !o->unsigned_;
    r->agents = calloc(n, sizeof *r->agents);
    r->order = calloc(n, sizeof *r->order);
    r->alen = calloc(n, sizeof *r->alen);
    if (!r->agents || !r->order || !r->alen) return -ENOMEM;
    for (size_t i = 0; i < n; i++) r->order[i] = i;
    for (size_t i = 0; i < n; i++) {
        const struct lg_reg *g = &regs[i];
        if (sign && !g->has_key && (o->agents_file || o->api)) {
            fprintf(stderr,
                    "pantala-loadgen: agent %s/%s/%s has no key: signed frames need "
                    "one (or use --unsigned)\n",
                    g->ns, g->mcis, g->vm);
            return -EINVAL;
        }
        int rc =
            lg_agent_init(&r->agents[i], g->id, g->ns, g->mcis, g->vm, g->csp,
                          g->has_key ? g->key : NULL, sign, o->epoch, o->interval_ms, o->seed + i);
        if (!rc) rc = lg_agent_selfcheck(&r->agents[i]);
        if (rc) {
            fprintf(stderr, "pantala-loadgen: agent %s/%s/%s: %s\n", g->ns, g->mcis, g->vm,
                    pt_strerror(rc));
            return rc;
        }
        if (o->pat_idx >= 0)
            lg_agent_pattern(&r->agents[i], o->pat_idx, o->pat_lo,
                             i < o->pat_agents ? o->pat_hi : o->pat_lo, o->pat_period_ns,
                             r->pat_t0 + (o->pat_spread ? (int64_t)((double)o->pat_period_ns *
                                                                    (double)i / (double)n)
                                                        : 0));
        r->nagents++;
    }
    if (o->garbage) {
        int rc = lg_agent_init(&r->ghost, GHOST_ID, o->ns, "ghost", "ghost-vm", "aws", NULL, sign,
                               o->epoch, o->interval_ms, o->seed ^ GHOST_ID);
        if (rc) return rc;
        r->have_ghost = true;
    }
    return 0;
}

/* ---- the socket --------------------------------------------------------------- */

static int open_socket(const struct opts *o, struct run *r)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (o->sink) {
        /* A socket that is never read: the kernel drops what does not fit
         * its small buffer, after doing all the sending work. */
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t slen = sizeof sin;
        int small = 4096;
        r->sink_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (r->sink_fd < 0 ||
            setsockopt(r->sink_fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small) < 0 ||
            bind(r->sink_fd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
            getsockname(r->sink_fd, (struct sockaddr *)&sin, &slen) < 0) {
            perror("pantala-loadgen: sink socket");
            return -errno;
        }
        memcpy(&ss, &sin, sizeof sin);
        sslen = sizeof sin;
    } else {
        char host[256];
        uint16_t port;
        if (pt_hostport_split(o->target, host, sizeof host, &port) || port == 0) {
            fprintf(stderr, "pantala-loadgen: --target: expected HOST:PORT, got \"%s\"\n",
                    o->target);
            return -EINVAL;
        }
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM}, *ai;
        char portstr[8];
        snprintf(portstr, sizeof portstr, "%u", port);
        int gai = getaddrinfo(*host ? host : "127.0.0.1", portstr, &hints, &ai);
        if (gai) {
            fprintf(stderr, "pantala-loadgen: --target %s: %s\n", o->target, gai_strerror(gai));
            return -EINVAL;
        }
        memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
        sslen = ai->ai_addrlen;
        freeaddrinfo(ai);
    }
    r->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (r->fd < 0) {
        perror("pantala-loadgen: socket");
        return -errno;
    }
    int sndbuf = 4 << 20;
    setsockopt(r->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    /* Connected: no per-datagram address, the route is looked up once. */
    if (connect(r->fd, (struct sockaddr *)&ss, sslen) < 0) {
        perror("pantala-loadgen: connect");
        return -errno;
    }
    /* GSO where the kernel has it (Linux >= 4.18). */
    int seg = 0;
    socklen_t seglen = sizeof seg;
    r->gso = !o->no_gso && getsockopt(r->fd, SOL_UDP, UDP_SEGMENT, &seg, &seglen) == 0;
    return 0;
}

/* ---- garbage and replays ------------------------------------------------------ */

static uint64_t rnd64(uint64_t *s)
{
    *s += 0x9e3779b97f4a7c15ull;
    uint64_t z = *s;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Writes one bad datagram into out; returns its length. Kinds in turn:
 * random bytes, a truncated frame, a bit flip, a bad MAC (or trailing
 * junk when unsigned), a future version, an agent nobody registered. */
static size_t make_garbage(struct run *r, uint8_t *out, int64_t ts)
{
    uint64_t x = rnd64(&r->rng);
    size_t len = r->last_len;
    switch (r->garbage_made++ % 6) {
    case 5:
        if (r->have_ghost && lg_agent_next(&r->ghost, ts, out, LG_FRAME_CAP, &len) == 0) return len;
        __attribute__((fallthrough)); /* random bytes instead */
    case 0:
    default:
        len = 1 + (size_t)(x % PT_WIRE_TARGET_FRAME);
        for (size_t i = 0; i < len; i += 8) {
            uint64_t b = rnd64(&r->rng);
            memcpy(out + i, &b, len - i < 8 ? len - i : 8);
        }
        return len;
    case 1:
        memcpy(out, r->last, len);
        return 1 + (size_t)(x % (len - 1));
    case 2:
        memcpy(out, r->last, len);
        out[(x >> 8) % len] ^= (uint8_t)(1u << (x % 8));
        return len;
    case 3:
        memcpy(out, r->last, len);
        if (out[3] & PT_WIRE_F_SIGNED) {
            out[len - 1] ^= 0x5a;
            return len;
        }
        out[len] = 0xc0; /* nil after the frame: trailing bytes */
        return len + 1;
    case 4:
        memcpy(out, r->last, len);
        out[1] = PT_WIRE_VERSION + 1;
        return len;
    }
}

/* How many of total extra datagrams should have gone out by progress
 * frac (0..1). */
static uint64_t due(uint64_t total, double frac)
{
    double d = ceil((double)total * (frac > 1 ? 1 : frac));
    return d >= (double)total ? total : (uint64_t)d;
}

/* ---- sending ------------------------------------------------------------------ */

/* Groups slots [0, n) into messages: with GSO, a run of frames of equal
 * length (and one shorter frame after it, which the kernel allows as the
 * last segment) becomes one message the kernel splits into datagrams. */
static size_t group_slots(struct run *r, size_t n)
{
    size_t m = 0;
    for (size_t i = 0; i < n; m++) {
        size_t len = r->iov[i].iov_len, j = i + 1, bytes = len;
        if (r->gso && r->kind[i] == SLOT_FRAME) {
            while (j < n && r->kind[j] == SLOT_FRAME && j - i < GSO_MAX_SEGS &&
                   r->iov[j].iov_len == len && bytes + len <= GSO_MAX_BYTES) {
                bytes += len;
                j++;
            }
            if (j < n && r->kind[j] == SLOT_FRAME && j - i < GSO_MAX_SEGS &&
                r->iov[j].iov_len < len && bytes + r->iov[j].iov_len <= GSO_MAX_BYTES)
                j++;
        }
        struct msghdr *h = &r->msgs[m].msg_hdr;
        memset(h, 0, sizeof *h);
        h->msg_iov = &r->iov[i];
        h->msg_iovlen = j - i;
        if (j - i > 1) {
            h->msg_control = r->cmsg[m].buf;
            h->msg_controllen = sizeof r->cmsg[m].buf;
            struct cmsghdr *c = CMSG_FIRSTHDR(h);
            c->cmsg_level = SOL_UDP;
            c->cmsg_type = UDP_SEGMENT;
            c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            uint16_t seg = (uint16_t)len;
            memcpy(CMSG_DATA(c), &seg, sizeof seg);
        }
        r->msg_first[m] = (uint16_t)i;
        r->msg_count[m] = (uint16_t)(j - i);
        i = j;
    }
    return m;
}

static void count_sent(struct run *r, size_t slot)
{
    r->bytes += r->iov[slot].iov_len;
    if (r->kind[slot] == SLOT_FRAME)
        r->frames++;
    else if (r->kind[slot] == SLOT_GARBAGE)
        r->garbage++;
    else
        r->replays++;
}

static void send_batch(struct run *r, size_t n)
{
    size_t nmsg = group_slots(r, n), off = 0;
    while (off < nmsg) {
        int s = sendmmsg(r->fd, r->msgs + off, (unsigned)(nmsg - off), 0);
        if (s < 0 && errno == EINTR) continue;
        size_t upto = s > 0 ? off + (size_t)s : off;
        for (size_t m = off; m < upto; m++)
            for (size_t i = 0; i < r->msg_count[m]; i++) count_sent(r, r->msg_first[m] + i);
        if (s <= 0) {
            /* The message at off failed (ECONNREFUSED from an earlier ICMP
             * port unreachable, ENOBUFS...): count its datagrams, go on. */
            r->send_errors += r->msg_count[off];
            r->last_errno = s < 0 ? errno : EIO;
            upto = off + 1;
        }
        off = upto;
    }
}

static int cmp_len(const void *a, const void *b, void *arg)
{
    const uint16_t *alen = arg;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    if (alen[x] != alen[y]) return alen[x] < alen[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Builds k frames (round robin over the agents) plus the extra datagrams
 * due, and sends them. */
static int fill_and_send(const struct opts *o, struct run *r, size_t k, double frac)
{
    int64_t ts = pt_now_ns();
    size_t n = 0;
    for (size_t i = 0; i < k; i++, n++) {
        size_t idx = r->order[r->cursor];
        size_t len;
        int rc = lg_agent_next(&r->agents[idx], ts, r->bufs[n], LG_FRAME_CAP, &len);
        if (rc) return rc;
        const struct lg_agent *ag = &r->agents[idx];
        if (r->pat_log && ag->pat_crossed && ag->pat_hi != ag->pat_lo)
            fprintf(r->pat_log, "%s %lld %s %g\n", ag->vm, (long long)ts,
                    ag->pat_phase ? "high" : "low", ag->v[ag->pat_idx]);
        r->alen[idx] = (uint16_t)len;
        if (++r->cursor == r->nagents) {
            /* Each round visits the agents in order of frame length, so
             * frames of equal length follow each other and share a GSO
             * message. Lengths rarely change: the order is nearly stable. */
            r->cursor = 0;
            if (r->gso) qsort_r(r->order, r->nagents, sizeof *r->order, cmp_len, r->alen);
        }
        r->iov[n].iov_len = len;
        r->kind[n] = SLOT_FRAME;
        if (o->replay) {
            memcpy(r->ring[r->ring_pos], r->bufs[n], len);
            r->ring_len[r->ring_pos] = (uint16_t)len;
            r->ring_pos = (r->ring_pos + 1) % REPLAY_RING;
            if (r->ring_fill < REPLAY_RING) r->ring_fill++;
        }
    }
    if (n > 0 && (o->garbage || o->replay)) {
        memcpy(r->last, r->bufs[n - 1], r->iov[n - 1].iov_len);
        r->last_len = r->iov[n - 1].iov_len;
    }
    /* Extras go after the frames so a replay can repeat one just built. */
    uint64_t g_sent = r->garbage, p_sent = r->replays;
    uint64_t g_due = due(o->garbage, frac), p_due = due(o->replay, frac);
    for (size_t e = 0; e < EXTRA_SLOTS && r->last_len > 0; e++) {
        size_t len = 0;
        if (g_sent < g_due) {
            len = make_garbage(r, r->bufs[n], ts);
            r->kind[n] = SLOT_GARBAGE;
            g_sent++;
        } else if (p_sent < p_due && r->ring_fill > 0) {
            size_t at = (size_t)(rnd64(&r->rng) % r->ring_fill);
            len = r->ring_len[at];
            memcpy(r->bufs[n], r->ring[at], len);
            r->kind[n] = SLOT_REPLAY;
            p_sent++;
        } else {
            break;
        }
        r->iov[n++].iov_len = len;
    }
    send_batch(r, n);
    return 0;
}

static void sleep_until(int64_t mono_ns)
{
    struct timespec ts = {.tv_sec = mono_ns / PT_NS_PER_SEC, .tv_nsec = mono_ns % PT_NS_PER_SEC};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

/* Token bucket on CLOCK_MONOTONIC: tokens accrue at the rate; a batch goes
 * out when a batch's worth is there, else the loop sleeps until it will
 * be. The bucket holds 20 ms of frames: a short stall (being preempted) is
 * caught up, a long one is not turned into a burst the collector would not
 * see from real agents; the summary then shows the rate fell short. */
static int run_load(const struct opts *o, struct run *r, double *elapsed_s)
{
    size_t batch = o->batch;
    double rate = o->rate;
    size_t step = batch;
    double burst = 0;
    if (rate > 0) {
        /* At most ~2000 wake-ups a second: small batches at low rates. */
        step = (size_t)fmin((double)batch, fmax(1.0, floor(rate / 2000.0)));
        burst = fmax(2.0 * (double)step, rate * 0.02);
    }
    int64_t t0 = pt_mono_ns(), last = t0;
    int64_t end = o->duration > 0 ? t0 + (int64_t)(o->duration * 1e9) : INT64_MAX;
    double tokens = 0;
    int rc = 0;

    while (!stop_flag) {
        int64_t now = pt_mono_ns();
        if (now >= end || (o->frames && r->frames + r->send_errors >= o->frames)) break;
        size_t k = batch;
        if (rate > 0) {
            tokens = fmin(burst, tokens + (double)(now - last) * rate / 1e9);
            last = now;
            if (tokens < (double)step) {
                int64_t wake = now + (int64_t)ceil(((double)step - tokens) / rate * 1e9);
                sleep_until(wake < end ? wake : end);
                continue;
            }
            k = (size_t)fmin((double)batch, floor(tokens));
            tokens -= (double)k;
        }
        if (o->frames && o->frames - r->frames - r->send_errors < k)
            k = (size_t)(o->frames - r->frames - r->send_errors);
        double frac = o->duration > 0 ? (double)(now - t0) / (o->duration * 1e9) : 0;
        if (o->frames) frac = fmax(frac, (double)(r->frames + k) / (double)o->frames);
        if ((rc = fill_and_send(o, r, k, frac))) break;
    }
    /* Whatever garbage and replays are still owed go out now. */
    while (!rc && (r->garbage < o->garbage || r->replays < o->replay) && r->last_len > 0) {
        uint64_t before = r->garbage + r->replays;
        if ((rc = fill_and_send(o, r, 0, 1.0))) break;
        if (r->garbage + r->replays == before) break; /* every send failed */
    }
    *elapsed_s = (double)(pt_mono_ns() - t0) / 1e9;
    return rc;
}

/* ---- main -------------------------------------------------------------------- */

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void report(const struct opts *o, const struct run *r, double elapsed, double cpu)
{
    double rate = elapsed > 0 ? (double)r->frames / elapsed : 0;
    uint64_t values = r->frames * lg_values_per_frame();
    double avg = r->frames ? (double)r->bytes / (double)(r->frames + r->garbage + r->replays) : 0;
    double us = r->frames ? cpu * 1e6 / (double)r->frames : 0;
    FILE *human = o->json ? stderr : stdout;
    if (!o->quiet || !o->json) {
        fprintf(human,
                "pantala-loadgen: %" PRIu64 " frames in %.2f s = %.0f frames/s (target %s%.0f), "
                "%" PRIu64 " values (%.2fM values/s)\n"
                "pantala-loadgen: %zu agents, %s%s, %.0f bytes/datagram, %" PRIu64
                " garbage, %" PRIu64 " replays, %" PRIu64 " send errors%s%s%s\n"
                "pantala-loadgen: own CPU %.2f s = %.2f us/frame (%.0f%% of a core)\n",
                r->frames, elapsed, rate, o->rate > 0 ? "" : "max ", o->rate, values,
                elapsed > 0 ? (double)values / elapsed / 1e6 : 0.0, r->nagents,
                o->unsigned_ ? "unsigned" : "signed", r->gso ? ", GSO" : "", avg, r->garbage,
                r->replays, r->send_errors, r->send_errors ? " (last: " : "",
                r->send_errors ? strerror(r->last_errno) : "", r->send_errors ? ")" : "", cpu, us,
                elapsed > 0 ? 100 * cpu / elapsed : 0.0);
    }
    if (o->json)
        printf("{\"frames\": %" PRIu64 ", \"garbage\": %" PRIu64 ", \"replays\": %" PRIu64
               ", \"send_errors\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"values\": %" PRIu64
               ", \"values_per_frame\": %zu, \"agents\": %zu, \"elapsed_s\": %.6f, "
               "\"rate\": %.1f, \"target_rate\": %.1f, \"cpu_s\": %.3f, \"signed\": %s, "
               "\"gso\": %s, \"epoch\": %" PRIu64 "}\n",
               r->frames, r->garbage, r->replays, r->send_errors, r->bytes, values,
               lg_values_per_frame(), r->nagents, elapsed, rate, o->rate, cpu,
               o->unsigned_ ? "false" : "true", r->gso ? "true" : "false", o->epoch);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    struct opts o;
    struct run *r = NULL;
    struct lg_reg *regs = NULL;
    size_t nregs = 0;
    int rc;

    if (parse_opts(argc, argv, &o)) return 1;
    if (lg_catalog_check()) return 1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "pantala-loadgen: libcurl initialisation failed\n");
        return 1;
    }
    rc = get_registrations(&o, &regs, &nregs);
    if (rc || (o.duration <= 0 && o.frames == 0)) goto out;

    r = calloc(1, sizeof *r);
    if (r) r->fd = r->sink_fd = -1;
    if (!r || !(r->bufs = calloc(MAX_SLOTS, LG_FRAME_CAP)) ||
        (o.replay && !(r->ring = calloc(REPLAY_RING, LG_FRAME_CAP)))) {
        rc = -ENOMEM;
        fprintf(stderr, "pantala-loadgen: out of memory\n");
        goto out;
    }
    r->rng = o.seed;
    for (size_t i = 0; i < MAX_SLOTS; i++) r->iov[i].iov_base = r->bufs[i];
    r->pat_t0 = pt_now_ns();
    if (o.pat_log) {
        if (!(r->pat_log = fopen(o.pat_log, "a"))) {
            rc = -errno;
            fprintf(stderr, "pantala-loadgen: --pattern-log %s: %s\n", o.pat_log, strerror(errno));
            goto out;
        }
        setvbuf(r->pat_log, NULL, _IOLBF, 0); /* whole lines, readable while running */
    }
    if ((rc = init_agents(&o, r, regs, nregs)) || (rc = open_socket(&o, r))) goto out;

    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: wakes the sleep */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    prctl(PR_SET_TIMERSLACK, 1000UL); /* 1 us: wake-ups on time at low rates */

    if (!o.quiet)
        fprintf(stderr, "pantala-loadgen: %zu agents, %s, rate %s, %s, to %s\n", r->nagents,
                o.unsigned_ ? "unsigned" : "signed", o.rate > 0 ? "paced" : "unlimited",
                r->gso ? "GSO" : "no GSO", o.sink ? "a local sink" : o.target);
    double elapsed = 0, cpu0 = cpu_seconds();
    rc = run_load(&o, r, &elapsed);
    double cpu = cpu_seconds() - cpu0;
    if (rc)
        fprintf(stderr, "pantala-loadgen: encoding failed: %s\n", pt_strerror(rc));
    else
        report(&o, r, elapsed, cpu);
out:
    if (r) {
        for (size_t i = 0; i < r->nagents; i++) lg_agent_close(&r->agents[i]);
        if (r->have_ghost) lg_agent_close(&r->ghost);
        free(r->agents);
        free(r->order);
        free(r->alen);
        free(r->bufs);
        free(r->ring);
        if (r->fd >= 0) close(r->fd);
        if (r->sink_fd >= 0) close(r->sink_fd);
        if (r->pat_log) fclose(r->pat_log);
        free(r);
    }
    lg_regs_free(regs, nregs);
    curl_global_cleanup();
    return rc ? 1 : 0;
}
