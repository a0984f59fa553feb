/* pantalad configuration: every key, its default and its bounds. */
#include "config.h"
#include "outbox.h"
#include "drv.h"
#include "pt/err.h"
#include "pt/log.h"
#include "pt/time.h"
#include "pt/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool coll_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > 128) return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == ':' || c == '@'))
            return false;
    }
    return true;
}

static int get_addr(struct pt_conf *c, const char *key, const char *def, char *host, size_t hl,
                    uint16_t *port)
{
    const char *s;
    int rc = pt_conf_str(c, key, def, &s);
    if (rc) return rc;
    if (pt_hostport_split(s, host, hl, port))
        return pt_conf_fail(c, key,
                            "expected \"host:port\" with a port from 1 to 65535, got \"%s\"", s);
    if (!host[0]) snprintf(host, hl, "0.0.0.0");
    return 0;
}

/* provisioning.*: the API's SSH provisioning (collector/provision.h). */
static int load_provisioning(struct pt_conf *c, struct coll_config *cfg)
{
    int rc;
    if ((rc = pt_conf_bool(c, "provisioning.enabled", true, &cfg->prov_enabled)) ||
        (rc = pt_conf_str(c, "provisioning.keys_dir", NULL, &cfg->prov_keys_dir)) ||
        (rc = pt_conf_str(c, "provisioning.known_hosts", NULL, &cfg->prov_known_hosts)) ||
        (rc = pt_conf_str(c, "provisioning.packages", "/usr/share/pantala/packages",
                          &cfg->prov_packages)) ||
        (rc = pt_conf_str(c, "provisioning.collector", NULL, &cfg->prov_collector)) ||
        (rc = pt_conf_bool(c, "provisioning.accept_new", false, &cfg->prov_accept_new)) ||
        (rc = pt_conf_int(c, "provisioning.parallel", 1, 256, 8, &cfg->prov_parallel)))
        return rc;
    if (cfg->prov_keys_dir && cfg->prov_keys_dir[0] != '/')
        return pt_conf_fail(c, "provisioning.keys_dir", "expected an absolute path");
    if (cfg->prov_collector) {
        char host[256];
        uint16_t port;
        if (pt_hostport_split(cfg->prov_collector, host, sizeof host, &port) || !host[0])
            return pt_conf_fail(c, "provisioning.collector",
                                "expected the \"host:port\" the VMs send to");
    }
    return 0;
}

/* agentless.*: the poller of cloud monitoring APIs (collector/agentless/). */
static int load_agentless(struct pt_conf *c, struct coll_config *cfg)
{
    int rc;
    if ((rc = pt_conf_bool(c, "agentless.enabled", true, &cfg->agl_enabled)) ||
        (rc = pt_conf_str(c, "agentless.key_file", NULL, &cfg->agl_key_file)) ||
        (rc = pt_conf_int(c, "agentless.concurrency", 1, 4096, 64, &cfg->agl_concurrency)) ||
        (rc = pt_conf_int(c, "agentless.rate_limit", 1, 1000, 5, &cfg->agl_rate)) ||
        (rc = pt_conf_duration(c, "agentless.max_backoff", PT_NS_PER_SEC, 86400 * PT_NS_PER_SEC,
                               900 * PT_NS_PER_SEC, &cfg->agl_max_backoff_ns)) ||
        (rc = pt_conf_int(c, "agentless.queue", 16, 1 << 20, 4096, &cfg->agl_queue)))
        return rc;
    if (cfg->agl_key_file && cfg->agl_key_file[0] != '/')
        return pt_conf_fail(c, "agentless.key_file", "expected an absolute path");
    /* Checked in depth (drivers, credentials files) when the poller opens. */
    cfg->agl_targets = pt_conf_json(c, "agentless.targets");
    if (cfg->agl_targets && !json_is_array(cfg->agl_targets))
        return pt_conf_fail(c, "agentless.targets",
                            "expected an array of targets (docs/drivers.md)");
    json_t *rl = pt_conf_json(c, "agentless.rate_limits");
    if (rl && !json_is_object(rl))
        return pt_conf_fail(c, "agentless.rate_limits",
                            "expected an object of driver name to polls per second, e.g. "
                            "{\"aws\": 10}");
    const char *k;
    json_t *v;
    json_object_foreach(rl, k, v)
    {
        if (!drv_lookup(k) || cfg->nagl_rates >= sizeof cfg->agl_rates / sizeof cfg->agl_rates[0])
            return pt_conf_fail(c, "agentless.rate_limits", "unknown driver \"%.40s\"", k);
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1000)
            return pt_conf_fail(c, "agentless.rate_limits",
                                "\"%s\": expected polls per second from 1 to 1000", k);
        struct coll_agl_rate *r = &cfg->agl_rates[cfg->nagl_rates++];
        snprintf(r->driver, sizeof r->driver, "%s", k);
        r->per_s = (int)json_integer_value(v);
    }
    return 0;
}

/* compat.*: the CB-Dragonfly compatible routes (docs/cb-dragonfly-compat.md). */
static int load_compat(struct pt_conf *c, struct coll_config *cfg)
{
    const char *auth;
    int rc;
    if ((rc = pt_conf_bool(c, "compat.enabled", true, &cfg->compat_enabled)) ||
        (rc = pt_conf_str(c, "compat.auth", "api", &auth)) ||
        (rc = pt_conf_str(c, "compat.agent_prefix", NULL, &cfg->compat_agent_prefix)))
        return rc;
    if (strcmp(auth, "api") && strcmp(auth, "none"))
        return pt_conf_fail(c, "compat.auth",
                            "expected \"api\" (the API's bearer tokens) or \"none\" (open)");
    cfg->compat_open = !strcmp(auth, "none");
    if (cfg->compat_agent_prefix &&
        (cfg->compat_agent_prefix[0] != '/' || strstr(cfg->compat_agent_prefix, "..")))
        return pt_conf_fail(c, "compat.agent_prefix", "expected an absolute path without \"..\"");
    return 0;
}

/* alerting.*: the built-in rules, flap suppression, links in events. */
static int load_alerting(struct coll_config *cfg)
{
    struct pt_conf *c = &cfg->conf;
    int rc;
    if ((rc = pt_conf_bool(c, "alerting.enabled", true, &cfg->alert_enabled)) ||
        (rc = pt_conf_bool(c, "alerting.agent_down.enabled", true, &cfg->alert_agent_down)) ||
        (rc = pt_conf_int(c, "alerting.agent_down.intervals", 2, 1000, 3,
                          &cfg->alert_agent_down_intervals)) ||
        (rc = pt_conf_bool(c, "alerting.frames_lost.enabled", true, &cfg->alert_frames_lost)) ||
        (rc = pt_conf_duration(c, "alerting.frames_lost.window", 10 * PT_NS_PER_SEC,
                               86400 * PT_NS_PER_SEC, 60 * PT_NS_PER_SEC,
                               &cfg->alert_frames_lost_window_ns)) ||
        (rc = pt_conf_strlist(c, "alerting.builtin_handlers", &cfg->alert_builtin_handlers,
                              &cfg->nalert_builtin_handlers)) ||
        (rc = pt_conf_int(c, "alerting.flap.changes", 0, 15, 6, &cfg->alert_flap_changes)) ||
        (rc = pt_conf_duration(c, "alerting.flap.window", PT_NS_PER_SEC, 86400 * PT_NS_PER_SEC,
                               600 * PT_NS_PER_SEC, &cfg->alert_flap_window_ns)) ||
        (rc = pt_conf_duration(c, "alerting.tick", 10 * PT_NS_PER_MS, 10 * PT_NS_PER_SEC,
                               100 * PT_NS_PER_MS, &cfg->alert_tick_ns)) ||
        (rc = pt_conf_str(c, "alerting.external_url", NULL, &cfg->alert_external_url)))
        return rc;
    json_t *pct = pt_conf_json(c, "alerting.frames_lost.percent");
    cfg->alert_frames_lost_percent = 1.0;
    if (pct) {
        if (!json_is_number(pct) || !(json_number_value(pct) > 0) || json_number_value(pct) > 100)
            return pt_conf_fail(c, "alerting.frames_lost.percent",
                                "expected a number above 0 and at most 100 (percent of frames)");
        cfg->alert_frames_lost_percent = json_number_value(pct);
    }
    if (cfg->alert_external_url && strncmp(cfg->alert_external_url, "http://", 7) &&
        strncmp(cfg->alert_external_url, "https://", 8))
        return pt_conf_fail(c, "alerting.external_url", "expected an http:// or https:// URL");
    return 0;
}

int coll_config_load(struct coll_config *cfg, const char *path)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->path = path;
    struct pt_conf *c = &cfg->conf;
    int rc = pt_conf_load(c, path);
    if (rc) return rc;
    const char *level;
    if ((rc = pt_conf_str(c, "data_dir", "/var/lib/pantala", &cfg->data_dir)) ||
        (rc = get_addr(c, "listen.udp", COLL_DEFAULT_UDP, cfg->udp_host, sizeof cfg->udp_host,
                       &cfg->udp_port)) ||
        (rc = get_addr(c, "listen.http", COLL_DEFAULT_HTTP, cfg->http_host, sizeof cfg->http_host,
                       &cfg->http_port)) ||
        (rc = pt_conf_strlist(c, "api.tokens", &cfg->tokens, &cfg->ntokens)) ||
        (rc = pt_conf_bool(c, "ingest.insecure", false, &cfg->insecure)) ||
        (rc = pt_conf_duration(c, "ingest.max_age", PT_NS_PER_SEC, 30 * 86400 * PT_NS_PER_SEC,
                               2 * 3600 * PT_NS_PER_SEC, &cfg->max_age_ns)) ||
        (rc = pt_conf_duration(c, "ingest.max_future", PT_NS_PER_SEC, 86400 * PT_NS_PER_SEC,
                               300 * PT_NS_PER_SEC, &cfg->max_future_ns)) ||
        (rc = pt_conf_int(c, "ingest.rcvbuf", 65536, INT32_MAX, 32 << 20, &cfg->rcvbuf)) ||
        (rc = pt_conf_bool(c, "ingest.acks", true, &cfg->acks)) ||
        (rc = pt_conf_duration(c, "ingest.ack_interval", 10 * PT_NS_PER_MS, 5 * PT_NS_PER_SEC,
                               100 * PT_NS_PER_MS, &cfg->ack_interval_ns)) ||
        (rc = pt_conf_str(c, "store.url", "sqlite:", &cfg->store_url)) ||
        (rc = pt_conf_str(c, "store.read_url", NULL, &cfg->store_read_url)) ||
        (rc = pt_conf_str(c, "store.user", NULL, &cfg->store_user)) ||
        (rc = pt_conf_str(c, "store.password", NULL, &cfg->store_password)) ||
        (rc = pt_conf_duration(c, "store.retention", 0, 3650 * 86400 * PT_NS_PER_SEC,
                               30 * 86400 * PT_NS_PER_SEC, &cfg->retention_ns)) ||
        (rc = pt_conf_duration(c, "store.retention_1m", 0, 3650 * 86400 * PT_NS_PER_SEC,
                               90 * 86400 * PT_NS_PER_SEC, &cfg->retention_1m_ns)) ||
        (rc = pt_conf_duration(c, "store.retention_1h", 0, 3650 * 86400 * PT_NS_PER_SEC,
                               400 * 86400 * PT_NS_PER_SEC, &cfg->retention_1h_ns)) ||
        (rc = pt_conf_int(c, "writer.queue", 2, 65536, 64, &cfg->queue_batches)) ||
        (rc = pt_conf_int(c, "writer.batch", 1, 65536, 2048, &cfg->batch_frames)) ||
        (rc = pt_conf_duration(c, "writer.flush", PT_NS_PER_MS, 60 * PT_NS_PER_SEC,
                               200 * PT_NS_PER_MS, &cfg->flush_ns)) ||
        (rc = pt_conf_duration(c, "writer.drain", PT_NS_PER_SEC, 3600 * PT_NS_PER_SEC,
                               30 * PT_NS_PER_SEC, &cfg->drain_ns)) ||
        (rc = pt_conf_str(c, "outbox.dir", NULL, &cfg->outbox_dir)) ||
        (rc = pt_conf_int(c, "outbox.max_bytes", 0, INT64_C(1) << 50, INT64_C(1) << 30,
                          &cfg->outbox_max_bytes)) ||
        (rc = pt_conf_str(c, "log.level", "info", &level)) ||
        (rc = pt_conf_str(c, "log.file", NULL, &cfg->log_file)) || (rc = load_alerting(cfg)))
        return rc;
    if ((rc = load_provisioning(c, cfg))) return rc;
    if ((rc = load_agentless(c, cfg))) return rc;
    if ((rc = load_compat(c, cfg))) return rc;
    cfg->log_level = pt_log_level_parse(level);
    if (cfg->log_level < 0)
        return pt_conf_fail(c, "log.level", "expected \"error\", \"warn\", \"info\" or \"debug\"");
    if (!cfg->data_dir[0]) return pt_conf_fail(c, "data_dir", "must not be empty");
    if (cfg->outbox_max_bytes && cfg->outbox_max_bytes < COLL_OUTBOX_MIN_BYTES)
        return pt_conf_fail(c, "outbox.max_bytes",
                            "must be 0 (no outbox: a full write queue drops) or at least %d",
                            COLL_OUTBOX_MIN_BYTES);
    if (cfg->outbox_dir && !cfg->outbox_dir[0])
        return pt_conf_fail(c, "outbox.dir",
                            "must not be empty (leave it out for data_dir/outbox)");
    for (size_t i = 0; i < cfg->ntokens; i++)
        if (strstr(cfg->tokens[i], "CHANGE-ME"))
            return pt_conf_fail(c, "api.tokens",
                                "token %zu is the placeholder of the example file; replace it "
                                "with a secret, e.g. `openssl rand -hex 24`",
                                i);
        else if (strlen(cfg->tokens[i]) < 16)
            return pt_conf_fail(c, "api.tokens",
                                "token %zu is shorter than 16 characters; use e.g. "
                                "`openssl rand -hex 24`",
                                i);
    if (cfg->ntokens == 0)
        return pt_conf_fail(c, "api.tokens",
                            "at least one API token is required (the API is never open); "
                            "generate one with `openssl rand -hex 24`");
    return pt_conf_finish(c);
}

void coll_config_close(struct coll_config *cfg)
{
    free(cfg->tokens);
    free(cfg->alert_builtin_handlers);
    pt_conf_close(&cfg->conf);
}
