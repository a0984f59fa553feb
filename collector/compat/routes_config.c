/* /dragonfly/healthcheck's neighbours: GET|PUT /dragonfly/config and
 * PUT /dragonfly/config/reset, CB-Dragonfly's monitoring config object
 * (pkg/api/rest/config/config.go; fields as cm-butterfly's
 * frameworkmodel/dragonfly/MonitoringConfigReg.go lists them).
 *
 * mcis_agent_interval has a meaning in Pantala: the collection interval
 * (seconds) written into the agents that POST /dragonfly/agent installs
 * from then on. The others describe CB-Dragonfly's own collectors and
 * Kafka/puller deployment, which Pantala does not have: they are checked
 * for type, kept in dragonfly.json and echoed, and change nothing. */
#include "compat_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct cfg_key {
    const char *name;
    bool is_int;
    json_int_t def_i, min_i, max_i;
    const char *def_s;
};

/* mcis_agent_interval defaults to Pantala's agent default (1 s); the rest
 * to the values CB-Dragonfly's sample configuration carries. */
static const struct cfg_key keys[] = {
    {"mcis_agent_interval", true, 1, 1, 3600, NULL},
    {"mcis_collector_interval", true, 10, 1, 86400, NULL},
    {"mck8s_agent_interval", true, 60, 1, 86400, NULL},
    {"mck8s_collector_interval", true, 10, 1, 86400, NULL},
    {"max_host_count", true, 5, 1, 1000000, NULL},
    {"monitoring_policy", false, 0, 0, 0, "agentCount"},
    {"default_policy", false, 0, 0, 0, "push"},
    {"puller_interval", true, 10, 1, 86400, NULL},
    {"puller_aggregate_interval", true, 30, 1, 86400, NULL},
    {"aggregate_type", false, 0, 0, 0, "avg"},
    {"deploy_type", false, 0, 0, 0, "compose"},
};
#define NKEYS (sizeof keys / sizeof keys[0])

json_t *compat_config_defaults(void)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < NKEYS; i++)
        json_object_set_new(o, keys[i].name,
                            keys[i].is_int ? json_integer(keys[i].def_i)
                                           : json_string(keys[i].def_s));
    return o;
}

static const struct cfg_key *key_find(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (!strcmp(keys[i].name, name)) return &keys[i];
    return NULL;
}

/* Checks every key of upd against the table and converts form strings of
 * integer keys; builds the new values in out. false with a 400 set. */
static bool config_check(json_t *upd, json_t *out, struct api_resp *rs)
{
    const char *k;
    json_t *v;
    json_object_foreach(upd, k, v)
    {
        const struct cfg_key *ck = key_find(k);
        if (!ck) {
            compat_error(rs, 400,
                         "unknown config key \"%.64s\" (known: mcis_agent_interval, "
                         "mcis_collector_interval, mck8s_agent_interval, "
                         "mck8s_collector_interval, max_host_count, monitoring_policy, "
                         "default_policy, puller_interval, puller_aggregate_interval, "
                         "aggregate_type, deploy_type)",
                         k);
            return false;
        }
        if (ck->is_int) {
            json_int_t iv = 0;
            bool ok = false;
            if (json_is_integer(v)) {
                iv = json_integer_value(v);
                ok = true;
            } else if (json_is_string(v)) { /* form fields are strings */
                char *end;
                errno = 0;
                long long ll = strtoll(json_string_value(v), &end, 10);
                ok = !errno && end != json_string_value(v) && !*end;
                iv = (json_int_t)ll;
            }
            if (!ok || iv < ck->min_i || iv > ck->max_i) {
                compat_error(rs, 400,
                             "Invalid parameter values, %s: expected an integer from %lld to "
                             "%lld",
                             k, (long long)ck->min_i, (long long)ck->max_i);
                return false;
            }
            json_object_set_new(out, k, json_integer(iv));
        } else {
            const char *sv = json_string_value(v);
            if (!sv || !*sv || strlen(sv) > 64) {
                compat_error(rs, 400,
                             "Invalid parameter values, %s: expected a string of 1 to 64 "
                             "characters",
                             k);
                return false;
            }
            json_object_set_new(out, k, json_string(sv));
        }
    }
    return true;
}

void compat_config(struct api_req *rq, struct api_resp *rs, bool reset)
{
    struct coll_compat *c = rq->ctx->compat;
    if (!strcmp(rq->method, "GET")) {
        pthread_mutex_lock(&c->mu);
        json_t *copy = json_deep_copy(c->config);
        pthread_mutex_unlock(&c->mu);
        api_json(rs, 200, copy);
        return;
    }
    json_t *next;
    if (reset) {
        next = compat_config_defaults();
    } else {
        json_t *upd = compat_body(rq, rs);
        if (!upd) return;
        if (json_object_size(upd) == 0) {
            json_decref(upd);
            compat_error(rs, 400, "Invalid parameter, parameter not defined");
            return;
        }
        pthread_mutex_lock(&c->mu);
        next = json_deep_copy(c->config);
        pthread_mutex_unlock(&c->mu);
        bool ok = next && config_check(upd, next, rs);
        json_decref(upd);
        if (!ok) {
            json_decref(next);
            return;
        }
    }
    pthread_mutex_lock(&c->mu);
    json_t *old = c->config;
    c->config = next;
    int rc = compat_save(c);
    if (rc) { /* keep memory and disk the same */
        c->config = old;
        pthread_mutex_unlock(&c->mu);
        json_decref(next);
        compat_error(rs, 500, "cannot save the config to %s: %s", c->path, strerror(-rc));
        return;
    }
    json_t *copy = json_deep_copy(c->config);
    pthread_mutex_unlock(&c->mu);
    json_decref(old);
    api_json(rs, 200, copy);
}
