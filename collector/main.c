/* pantalad: the Pantala collector daemon. Wires config, store, registry,
 * writer, UDP ingest and the HTTP API together and runs the libuv loop. */
#include "agentless/poller.h"
#include "api/api.h"
#include "compat/compat.h"
#include "config.h"
#include "ingest/ingest.h"
#include "provision.h"
#include "outbox.h"
#include "registry.h"
#include "stats.h"
#include "store/store.h"
#include "writer.h"

#include "pt/alert.h"
#include "pt/err.h"
#include "pt/log.h"
#include "pt/time.h"
#include "pt/version.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

static const char usage[] =
    "Usage: pantalad [--config FILE] [--check-config] [--version] [--help]\n"
    "\n"
    "The Pantala collector: receives agents' msgpack/UDP frames, verifies them,\n"
    "stores their metrics and answers the HTTP API.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE   configuration file (default " COLL_DEFAULT_CONFIG ")\n"
    "      --check-config  validate the configuration, print a summary and exit\n"
    "  -V, --version       print the version and exit\n"
    "  -h, --help          print this help and exit\n"
    "\n"
    "Configuration (JSON; whole-line # or // comments allowed; every key optional\n"
    "except api.tokens; unknown keys are errors):\n"
    "  data_dir           where state.db and metrics.db live   (/var/lib/pantala)\n"
    "  listen.udp         agents' frames                        (" COLL_DEFAULT_UDP ")\n"
    "  listen.http        the HTTP API                          (" COLL_DEFAULT_HTTP ")\n"
    "  api.tokens         bearer tokens accepted by the API (at least one, 16+ chars)\n"
    "  ingest.insecure    accept unsigned frames, auto-register (false; labs only)\n"
    "  ingest.max_age     oldest sample timestamp accepted      (2h)\n"
    "  ingest.max_future  newest sample timestamp accepted      (5m)\n"
    "  ingest.rcvbuf      UDP receive buffer in bytes            (33554432)\n"
    "  ingest.acks        acknowledge durable frames to agents   (true)\n"
    "  ingest.ack_interval  at most one ack per agent this often (100ms)\n"
    "  store.url          metric store                          (sqlite: = data_dir/metrics.db)\n"
    "                     or influxdb:http://host:8086/db[?rp=&batch=&parallel=&timeout=&gzip=]\n"
    "                     or victoriametrics:http://host:8428[/insert/<tenant>][?batch=...]\n"
    "  store.read_url     VictoriaMetrics cluster: the vmselect .../select/<tenant>/prometheus\n"
    "  store.user         InfluxDB / VictoriaMetrics basic auth user (none)\n"
    "  store.password     its password\n"
    "  store.retention    raw points older than this are deleted (30d; 0 keeps all)\n"
    "  store.retention_1m 1-minute roll-ups kept this long        (90d; 0 keeps all)\n"
    "  store.retention_1h 1-hour roll-ups kept this long          (400d; 0 keeps all)\n"
    "  writer.queue       batches waiting for the store at most (64, ~2.5 MB each)\n"
    "  writer.batch       frames per store write                 (2048)\n"
    "  writer.flush       hand over a partial batch after        (200ms)\n"
    "  writer.drain       at shutdown, keep writing queued data  (30s)\n"
    "  alerting.enabled   evaluate alert rules (alerts.db, outbox.db) (true)\n"
    "  alerting.agent_down.enabled, .intervals  built-in: agent silent N intervals (true, 3)\n"
    "  alerting.frames_lost.enabled, .percent, .window  built-in: frames lost (true, 1, 1m)\n"
    "  alerting.builtin_handlers  handlers the built-in rules notify      ([])\n"
    "  alerting.flap.changes, .window  hold a series changing state more often (6, 10m)\n"
    "  alerting.tick      timers: for, repeat, absence, windows   (100ms)\n"
    "  alerting.external_url  base of links in events       (http://<listen.http>)\n"
    "  writer.drain       at shutdown, keep writing queued data  (30s; the rest goes\n"
    "                     to the outbox)\n"
    "  outbox.max_bytes   on-disk outbox for batches the store cannot take yet\n"
    "                     (1073741824; 0 = none: a full queue drops)\n"
    "  outbox.dir         where its segment files go            (data_dir/outbox;\n"
    "                     a relative path is relative to data_dir)\n"
    "  log.level          error | warn | info | debug           (info)\n"
    "  log.file           log to this file instead of stderr\n"
    "  provisioning.enabled     POST /api/v1/provision               (true)\n"
    "  provisioning.keys_dir    SSH keys jobs may name               (data_dir/ssh)\n"
    "  provisioning.known_hosts host keys                  (keys_dir/known_hosts)\n"
    "  provisioning.packages    agent packages        (/usr/share/pantala/packages)\n"
    "  provisioning.collector   host:port the VMs send to (else per request)\n"
    "  provisioning.accept_new  trust unknown host keys              (false)\n"
    "  provisioning.parallel    hosts at once per job                (8)\n"
    "  agentless.enabled        poll cloud monitoring APIs, /api/v1/targets (true)\n"
    "  agentless.key_file       seals targets' credentials, mode 0600 (data_dir/agentless.key)\n"
    "  agentless.concurrency    polls in flight at once (libcurl multi) (64)\n"
    "  agentless.rate_limit     polls per second per driver           (5)\n"
    "  agentless.rate_limits    per-driver overrides, e.g. {\"aws\": 10}\n"
    "  agentless.max_backoff    longest wait after failures           (15m)\n"
    "  agentless.queue          fetched frames waiting for the writer (4096)\n"
    "  agentless.targets        targets defined here, credentials in credentials_file\n"
    "  compat.enabled           the CB-Dragonfly routes under /dragonfly (true)\n"
    "  compat.auth              api (the bearer tokens) | none (open) (api)\n"
    "  compat.agent_prefix      /dragonfly/agent installs the tarball here as\n"
    "                           the SSH user, no root (else the system package)\n"
    "\n"
    "Signals: SIGTERM/SIGINT stop after writing what was accepted.\n"
    "Docs: docs/api.md (HTTP API), docs/protocol.md (wire format), docs/storage.md,\n"
    "docs/drivers.md (agentless targets), docs/alerting.md (rules, handlers, silences).\n";

struct daemon {
    struct coll_config cfg;
    struct coll_stats stats;
    const struct store_ops *ops;
    struct store *store;
    struct coll_registry *reg;
    struct coll_outbox *outbox;
    struct coll_writer *writer;
    struct coll_ingest ingest;
    struct coll_api *api;
    struct coll_prov *prov;
    struct agl *agl;
    struct coll_compat *compat;
    char compat_kh[1100];
    struct alert_notifier *notifier;
    struct alert_engine *alerts;
    uv_loop_t *loop;
    uv_timer_t tick, alert_tick;
    int64_t alert_agents_ns; /* when the built-ins last saw the registry */
    uv_signal_t sigint, sigterm;
};

static void on_tick(uv_timer_t *t)
{
    struct daemon *d = t->data;
    coll_writer_tick(d->writer);
}

/* Alert timers on the ingest loop; once a second the built-in rules get a
 * registry snapshot (last frame, interval, frame counters per agent). */
static void on_alert_tick(uv_timer_t *t)
{
    struct daemon *d = t->data;
    int64_t now = pt_now_ns();
    alert_engine_tick(d->alerts, now);
    if (now - d->alert_agents_ns < PT_NS_PER_SEC && now >= d->alert_agents_ns) return;
    d->alert_agents_ns = now;
    struct coll_agent_info *ag;
    size_t n;
    if (coll_registry_list(d->reg, &ag, &n)) return;
    struct alert_agent_sample *s = calloc(n ? n : 1, sizeof *s);
    if (s) {
        for (size_t i = 0; i < n; i++)
            s[i] = (struct alert_agent_sample){
                ag[i].ns,          ag[i].mcis,     ag[i].vm,     ag[i].last_seen_ns,
                ag[i].interval_ms, ag[i].accepted, ag[i].missing};
        alert_engine_agents(d->alerts, s, n, now);
    }
    free(s);
    free(ag);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct daemon *d = s->data;
    PT_INFO("pantalad", "received %s, shutting down", signum == SIGINT ? "SIGINT" : "SIGTERM");
    coll_ingest_stop(&d->ingest);
    agl_stop_loop(d->agl);
    uv_timer_stop(&d->tick);
    uv_close((uv_handle_t *)&d->tick, NULL);
    if (d->alerts) {
        uv_timer_stop(&d->alert_tick);
        uv_close((uv_handle_t *)&d->alert_tick, NULL);
    }
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
}

static int mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0750) && errno != EEXIST) return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0750) && errno != EEXIST) return -errno;
    return 0;
}

static void feed_alerts(void *engine, const struct pt_frame *f, int64_t now_ns)
{
    alert_engine_feed(engine, f, now_ns);
}

/* The agentless poller: targets.db and the credentials' key file in
 * data_dir (or agentless.key_file); its frames go to the writer. */
static int start_agentless(struct daemon *d)
{
    struct coll_config *c = &d->cfg;
    char db[PATH_MAX], key[PATH_MAX], err[512] = "";
    snprintf(db, sizeof db, "%s/targets.db", c->data_dir);
    snprintf(key, sizeof key, "%s/agentless.key", c->data_dir);
    struct agl_rate rates[sizeof c->agl_rates / sizeof c->agl_rates[0]];
    for (size_t i = 0; i < c->nagl_rates; i++) {
        snprintf(rates[i].driver, sizeof rates[i].driver, "%s", c->agl_rates[i].driver);
        rates[i].per_s = c->agl_rates[i].per_s;
    }
    struct agl_opts o = {
        .db_path = db,
        .key_file = c->agl_key_file ? c->agl_key_file : key,
        .concurrency = (int)c->agl_concurrency,
        .rate_per_s = (int)c->agl_rate,
        .rates = rates,
        .nrates = c->nagl_rates,
        .max_backoff_ns = c->agl_max_backoff_ns,
        .queue_frames = (size_t)c->agl_queue,
        .config_targets = c->agl_targets,
        .writer = d->writer,
        .stats = &d->stats,
        /* Agentless points reach the alert rules as agents' do: on the
         * loop thread, one decoded frame at a time. */
        .feed = d->alerts ? feed_alerts : NULL,
        .feed_ctx = d->alerts,
    };
    int rc = agl_open(&d->agl, d->loop, &o, err, sizeof err);
    if (rc) PT_ERROR("pantalad", "%s", err);
    return rc;
}

/* The notification outbox (outbox.db) and the alert engine (alerts.db). */
static int start_alerting(struct daemon *d)
{
    struct coll_config *c = &d->cfg;
    char path[PATH_MAX], err[512] = "", url[300];
    int rc;
    snprintf(path, sizeof path, "%s/outbox.db", c->data_dir);
    if ((rc = alert_notifier_open(&d->notifier, path, err, sizeof err))) {
        PT_ERROR("pantalad", "alerting outbox: %s", err);
        return rc;
    }
    snprintf(url, sizeof url, "http://%s:%u", c->http_host, c->http_port);
    snprintf(path, sizeof path, "%s/alerts.db", c->data_dir);
    struct alert_engine_opts o = {
        .db_path = path,
        .submit_ctx = d->notifier,
        .external_url = c->alert_external_url ? c->alert_external_url : url,
        .flap_changes = (unsigned)c->alert_flap_changes,
        .flap_window_ns = c->alert_flap_window_ns,
        .agent_down = c->alert_agent_down,
        .agent_down_intervals = (unsigned)c->alert_agent_down_intervals,
        .frames_lost = c->alert_frames_lost,
        .frames_lost_ratio = c->alert_frames_lost_percent / 100.0,
        .frames_lost_window_ns = c->alert_frames_lost_window_ns,
        .builtin_handlers = c->alert_builtin_handlers,
        .nbuiltin_handlers = c->nalert_builtin_handlers,
    };
    if ((rc = alert_engine_open(&d->alerts, &o, err, sizeof err))) {
        PT_ERROR("pantalad", "alerting: %s", err);
        return rc;
    }
    d->alert_agents_ns = pt_now_ns(); /* first snapshot after a second: agents' frames first */
    return 0;
}

static int start(struct daemon *d)
{
    struct coll_config *c = &d->cfg;
    char err[512] = "";
    int rc;
    if ((rc = mkdir_p(c->data_dir))) {
        PT_ERROR("pantalad", "cannot create data_dir %s: %s", c->data_dir, pt_strerror(rc));
        return rc;
    }
    d->ops = store_ops_for_url(c->store_url);
    if (!d->ops) {
        PT_ERROR("pantalad",
                 "store.url \"%s\": unknown backend (supported: sqlite:, influxdb:, "
                 "victoriametrics:)",
                 c->store_url);
        return -EINVAL;
    }
    struct store_conf sc = {.url = c->store_url,
                            .data_dir = c->data_dir,
                            .retention_ns = c->retention_ns,
                            .retention_1m_ns = c->retention_1m_ns,
                            .retention_1h_ns = c->retention_1h_ns,
                            .read_url = c->store_read_url,
                            .user = c->store_user,
                            .password = c->store_password,
                            .points_refused = &d->stats.store_points_refused,
                            .points_unwritable = &d->stats.store_points_unwritable};
    if ((rc = d->ops->open(&sc, &d->store, err, sizeof err))) {
        PT_ERROR("pantalad", "store: %s", err);
        return rc;
    }
    char state[PATH_MAX];
    snprintf(state, sizeof state, "%s/state.db", c->data_dir);
    if ((rc = coll_registry_open(&d->reg, state, &d->stats, err, sizeof err))) {
        PT_ERROR("pantalad", "%s", err);
        return rc;
    }
    if (c->outbox_max_bytes > 0) {
        char obdir[PATH_MAX];
        if (c->outbox_dir && c->outbox_dir[0] == '/')
            snprintf(obdir, sizeof obdir, "%s", c->outbox_dir);
        else if (c->outbox_dir) /* relative: to data_dir, like sqlite:file.db */
            snprintf(obdir, sizeof obdir, "%s/%s", c->data_dir, c->outbox_dir);
        else
            snprintf(obdir, sizeof obdir, "%s/outbox", c->data_dir);
        struct coll_outbox_opts oo = {obdir, (uint64_t)c->outbox_max_bytes, 0};
        if ((rc = coll_outbox_open(&d->outbox, &oo, err, sizeof err))) {
            PT_ERROR("pantalad", "%s", err);
            return rc;
        }
        atomic_store(&d->stats.outbox_max_bytes, c->outbox_max_bytes);
    } else {
        PT_WARN("pantalad", "outbox.max_bytes is 0: no outbox, batches the store cannot take "
                            "in time are dropped (counted)");
    }
    struct coll_writer_opts wo = {
        .queue_batches = (size_t)c->queue_batches,
        .batch_frames = (size_t)c->batch_frames,
        .flush_ns = c->flush_ns,
        .retention_ns = c->retention_ns,
        .persist_ns = 5 * PT_NS_PER_SEC,
        .drain_ns = c->drain_ns,
        .outbox = d->outbox,
    };
    if ((rc = coll_writer_start(&d->writer, d->ops, d->store, d->reg, &d->stats, &wo))) {
        PT_ERROR("pantalad", "cannot start the writer thread: %s", pt_strerror(rc));
        return rc;
    }
    if (c->alert_enabled && (rc = start_alerting(d))) return rc;
    struct coll_admit_opts ao = {c->insecure, c->max_age_ns, c->max_future_ns, 100000};
    if ((rc = coll_ingest_init(&d->ingest, d->reg, d->writer, &d->stats, &ao))) return rc;
    d->ingest.alerts = d->alerts;
    if ((rc = coll_ingest_start(&d->ingest, d->loop, c->udp_host, c->udp_port, (int)c->rcvbuf))) {
        PT_ERROR("pantalad", "cannot listen for UDP on %s:%u: %s", c->udp_host, c->udp_port,
                 uv_strerror(rc));
        return rc;
    }
    if (c->acks && (rc = coll_ingest_start_acks(&d->ingest, c->ack_interval_ns))) {
        PT_ERROR("pantalad", "cannot start the acknowledgement timer: %s", uv_strerror(rc));
        return rc;
    }
    if (c->prov_enabled) {
        char keys[1024], kh[1100];
        snprintf(keys, sizeof keys, "%s/ssh", c->data_dir);
        snprintf(kh, sizeof kh, "%s/known_hosts", c->prov_keys_dir ? c->prov_keys_dir : keys);
        struct coll_prov_opts po = {
            .keys_dir = c->prov_keys_dir ? c->prov_keys_dir : keys,
            .known_hosts = c->prov_known_hosts ? c->prov_known_hosts : kh,
            .packages = c->prov_packages,
            .collector = c->prov_collector,
            .accept_new = c->prov_accept_new,
            .parallel = (int)c->prov_parallel,
            .token = c->tokens[0],
        };
        if ((rc = coll_prov_open(&d->prov, &po))) {
            PT_ERROR("pantalad", "cannot set up provisioning: %s", pt_strerror(rc));
            return rc;
        }
    }
    if (c->agl_enabled && (rc = start_agentless(d))) return rc;
    if (c->compat_enabled) {
        char keys[1024], kh[1100];
        snprintf(keys, sizeof keys, "%s/ssh", c->data_dir);
        snprintf(kh, sizeof kh, "%s/known_hosts", c->prov_keys_dir ? c->prov_keys_dir : keys);
        /* Installs use the provisioning settings; the strings must live as
         * long as compat: known_hosts is kept in the daemon. */
        snprintf(d->compat_kh, sizeof d->compat_kh, "%s",
                 c->prov_known_hosts ? c->prov_known_hosts : kh);
        struct coll_compat_opts co = {
            .data_dir = c->data_dir,
            .open = c->compat_open,
            .packages = c->prov_enabled ? c->prov_packages : NULL,
            .known_hosts = d->compat_kh,
            .collector = c->prov_collector,
            .prefix = c->compat_agent_prefix,
            .accept_new = c->prov_accept_new,
            .token = c->tokens[0],
        };
        if ((rc = coll_compat_open(&d->compat, &co, err, sizeof err))) {
            PT_ERROR("pantalad", "compat: %s", err);
            return rc;
        }
    }
    struct coll_api_ctx actx = {
        .reg = d->reg,
        .ops = d->ops,
        .store = d->store,
        .stats = &d->stats,
        .writer = d->writer,
        .tokens = c->tokens,
        .ntokens = c->ntokens,
        .udp_host = c->udp_host,
        .udp_port = (uint16_t)coll_ingest_port(&d->ingest),
        .start_ns = d->stats.start_ns,
        .prov = d->prov,
        .agl = d->agl,
        .compat = d->compat,
        .alerts = d->alerts,
        .notifier = d->notifier,
    };
    if ((rc = coll_api_start(&d->api, &actx, c->http_host, c->http_port, err, sizeof err))) {
        PT_ERROR("pantalad", "%s", err);
        return rc;
    }
    if (d->prov) {
        char url[300];
        const char *h = c->http_host;
        if (!strcmp(h, "0.0.0.0") || !strcmp(h, "::")) h = "127.0.0.1";
        snprintf(url, sizeof url, strchr(h, ':') ? "http://[%s]:%d" : "http://%s:%d", h,
                 coll_api_port(d->api));
        coll_prov_set_api(d->prov, url);
    }
    if (d->compat) {
        char url[300];
        const char *h = c->http_host;
        if (!strcmp(h, "0.0.0.0") || !strcmp(h, "::")) h = "127.0.0.1";
        snprintf(url, sizeof url, strchr(h, ':') ? "http://[%s]:%d" : "http://%s:%d", h,
                 coll_api_port(d->api));
        coll_compat_set_api(d->compat, url);
    }
    uv_timer_init(d->loop, &d->tick);
    d->tick.data = d;
    uint64_t every = (uint64_t)(c->flush_ns / PT_NS_PER_MS / 4);
    uv_timer_start(&d->tick, on_tick, every ? every : 1, every ? every : 1);
    if (d->alerts) {
        uv_timer_init(d->loop, &d->alert_tick);
        d->alert_tick.data = d;
        uint64_t ams = (uint64_t)(c->alert_tick_ns / PT_NS_PER_MS);
        uv_timer_start(&d->alert_tick, on_alert_tick, ams, ams);
    }
    uv_signal_init(d->loop, &d->sigint);
    uv_signal_init(d->loop, &d->sigterm);
    d->sigint.data = d->sigterm.data = d;
    uv_signal_start(&d->sigint, on_signal, SIGINT);
    uv_signal_start(&d->sigterm, on_signal, SIGTERM);

    if (c->insecure)
        PT_WARN("pantalad", "ingest.insecure is on: UNSIGNED FRAMES ARE ACCEPTED and unknown "
                            "agents are registered from their frames. Use only in a lab.");
    PT_INFO("pantalad",
            "pantalad %s ready: udp %s:%d, http %s:%d, store %s, data_dir %s, retention %llds",
            PT_VERSION_STRING, c->udp_host, coll_ingest_port(&d->ingest), c->http_host,
            coll_api_port(d->api), c->store_url, c->data_dir,
            (long long)(c->retention_ns / PT_NS_PER_SEC));
    return 0;
}

static void stop(struct daemon *d)
{
    coll_compat_close(d->compat); /* answers waiting installs first */
    d->compat = NULL;
    coll_api_stop(d->api);
    d->api = NULL;
    coll_prov_close(d->prov); /* waits for running provisioning jobs */
    d->prov = NULL;
    agl_close(d->agl); /* before the writer: its last frames are handed over */
    d->agl = NULL;
    if (d->writer) {
        coll_writer_stop(d->writer); /* drains what was accepted */
        d->writer = NULL;
    }
    coll_outbox_close(d->outbox); /* what it holds is replayed at the next start */
    d->outbox = NULL;
    coll_ingest_close(&d->ingest);
    alert_engine_close(d->alerts); /* after the API and ingest: nothing calls it any more */
    d->alerts = NULL;
    alert_notifier_close(d->notifier);
    d->notifier = NULL;
    coll_registry_close(d->reg);
    d->reg = NULL;
    if (d->store) d->ops->close(d->store);
    d->store = NULL;
    unsigned long long acc = atomic_load(&d->stats.accepted),
                       wr = atomic_load(&d->stats.frames_written),
                       dq = atomic_load(&d->stats.frames_dropped_queue),
                       ds = atomic_load(&d->stats.frames_dropped_store) +
                            atomic_load(&d->stats.frames_dropped_shutdown) +
                            atomic_load(&d->stats.frames_dropped_outbox) +
                            atomic_load(&d->stats.frames_dropped_corrupt);
    long long ob = (long long)atomic_load(&d->stats.outbox_frames);
    PT_INFO("pantalad",
            "stopped: %llu frames accepted, %llu written, %llu dropped, %lld in the outbox", acc,
            wr, dq + ds, ob);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 'k'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = COLL_DEFAULT_CONFIG;
    int check = 0, o;
    while ((o = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
        switch (o) {
        case 'c':
            path = optarg;
            break;
        case 'k':
            check = 1;
            break;
        case 'V':
            printf("pantalad %s\n", PT_VERSION_STRING);
            return 0;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs("Try 'pantalad --help'.\n", stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "pantalad: unexpected argument \"%s\"\nTry 'pantalad --help'.\n",
                argv[optind]);
        return 2;
    }

    static struct daemon d;
    int rc = coll_config_load(&d.cfg, path);
    if (rc) {
        fprintf(stderr, "pantalad: %s\n", pt_conf_error(&d.cfg.conf));
        coll_config_close(&d.cfg);
        return 2;
    }
    if (check) {
        char err[1024];
        if (d.cfg.agl_enabled && agl_config_check(d.cfg.agl_targets, err, sizeof err)) {
            fprintf(stderr, "pantalad: %s: %s\n", path, err);
            coll_config_close(&d.cfg);
            return 2;
        }
        printf("%s: OK (udp %s:%u, http %s:%u, store %s, data_dir %s, %zu API token(s)%s)\n", path,
               d.cfg.udp_host, d.cfg.udp_port, d.cfg.http_host, d.cfg.http_port, d.cfg.store_url,
               d.cfg.data_dir, d.cfg.ntokens, d.cfg.insecure ? ", INSECURE" : "");
        coll_config_close(&d.cfg);
        return 0;
    }
    pt_log_set_level(d.cfg.log_level);
    if (d.cfg.log_file && (rc = pt_log_open(d.cfg.log_file))) {
        fprintf(stderr, "pantalad: log.file %s: %s\n", d.cfg.log_file, pt_strerror(rc));
        coll_config_close(&d.cfg);
        return 2;
    }
    coll_stats_init(&d.stats);
    d.loop = uv_default_loop();
    rc = start(&d);
    if (rc == 0) uv_run(d.loop, UV_RUN_DEFAULT);
    if (rc) {
        /* Close whatever handles did open, then the rest. */
        coll_ingest_stop(&d.ingest);
        agl_stop_loop(d.agl);
        if (uv_is_active((uv_handle_t *)&d.tick)) uv_close((uv_handle_t *)&d.tick, NULL);
        if (uv_is_active((uv_handle_t *)&d.alert_tick))
            uv_close((uv_handle_t *)&d.alert_tick, NULL);
        uv_run(d.loop, UV_RUN_NOWAIT);
    }
    stop(&d);
    uv_loop_close(d.loop);
    coll_config_close(&d.cfg);
    return rc ? 1 : 0;
}
