/* pantalad's configuration: defaults, loading from JSON, validation. */
#ifndef COLL_CONFIG_H
#define COLL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pt/conf.h"

#define COLL_DEFAULT_CONFIG "/etc/pantala/pantalad.json"
#define COLL_DEFAULT_UDP    "0.0.0.0:8094"
#define COLL_DEFAULT_HTTP   "127.0.0.1:9090"

struct coll_config {
    struct pt_conf conf; /* owns the strings below */
    const char *path;
    const char *data_dir;
    char udp_host[256], http_host[256];
    uint16_t udp_port, http_port;
    const char **tokens; /* API bearer tokens (heap array) */
    size_t ntokens;
    bool insecure;      /* accept unsigned frames, auto-register agents */
    int64_t max_age_ns; /* oldest sample timestamp accepted (now - max_age) */
    int64_t max_future_ns;
    int64_t rcvbuf; /* SO_RCVBUF bytes requested */
    /* Acknowledgements to agents (docs/protocol.md): on/off, and how often
     * (at most) each agent gets one. */
    bool acks;
    int64_t ack_interval_ns;
    const char *store_url;
    const char *store_read_url;              /* server backends: where queries go (cluster) */
    const char *store_user, *store_password; /* server backends: HTTP basic auth */
    int64_t retention_ns;
    /* How long the 1 m and 1 h roll-ups are kept (store.retention_1m, _1h). */
    int64_t retention_1m_ns, retention_1h_ns;
    int64_t queue_batches; /* writer queue capacity in batches */
    int64_t batch_frames;  /* frames per batch */
    int64_t flush_ns;      /* a partial batch is handed over after this */
    int64_t drain_ns;      /* shutdown: how long to keep writing queued batches */

    const char *outbox_dir;   /* NULL: data_dir/outbox */
    int64_t outbox_max_bytes; /* 0: no outbox */

    int log_level;
    const char *log_file;
    /* provisioning over SSH (POST /api/v1/provision) */
    bool prov_enabled;
    const char *prov_keys_dir, *prov_known_hosts, *prov_packages, *prov_collector;
    bool prov_accept_new;
    int64_t prov_parallel;
    /* agentless polling (collector/agentless/, docs/drivers.md) */
    bool agl_enabled;
    const char *agl_key_file; /* NULL: data_dir/agentless.key */
    int64_t agl_concurrency, agl_rate, agl_max_backoff_ns, agl_queue;
    struct coll_agl_rate {
        char driver[16];
        int per_s;
    } agl_rates[16]; /* agentless.rate_limits overrides */
    size_t nagl_rates;
    const json_t *agl_targets; /* agentless.targets (array), NULL when absent */
    /* CB-Dragonfly compatible routes under /dragonfly (collector/compat/) */
    bool compat_enabled;
    bool compat_open; /* compat.auth "none": no bearer token asked */
    const char *compat_agent_prefix;
    /* alerting.* (docs/alerting.md) */
    bool alert_enabled;
    bool alert_agent_down;
    int64_t alert_agent_down_intervals;
    bool alert_frames_lost;
    double alert_frames_lost_percent;
    int64_t alert_frames_lost_window_ns;
    const char **alert_builtin_handlers; /* heap array */
    size_t nalert_builtin_handlers;
    int64_t alert_flap_changes;
    int64_t alert_flap_window_ns;
    int64_t alert_tick_ns;
    const char *alert_external_url; /* NULL: http://<listen.http> */
};

/* Loads path (which must exist) into cfg, filling defaults. On error returns
 * <0 and pt_conf_error(&cfg->conf) says what and where. */
int coll_config_load(struct coll_config *cfg, const char *path);
void coll_config_close(struct coll_config *cfg);

/* True when name is usable as ns / mcis / vm: 1..128 of [A-Za-z0-9._:@-]. */
bool coll_name_valid(const char *name, size_t len);

#endif
