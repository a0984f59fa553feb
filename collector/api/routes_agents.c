/* /api/v1/agents: register, list, show and remove agents. */
#include "api_int.h"
#include "config.h"
#include "pt/conf.h"
#include "pt/err.h"
#include "pt/time.h"
#include "pt/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *agent_status(const struct coll_agent_info *a, int64_t now)
{
    if (!a->last_seen_ns) return "never";
    int64_t iv = a->interval_ms ? (int64_t)a->interval_ms * PT_NS_PER_MS : 10 * PT_NS_PER_SEC;
    return now - a->last_seen_ns <= 3 * iv ? "up" : "down";
}

static json_t *agent_json(const struct coll_agent_info *a, int64_t now)
{
    json_t *j = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:b,s:s}", "id", (json_int_t)a->id, "ns", a->ns,
                          "mcis", a->mcis, "vm", a->vm, "csp", a->csp, "host", a->host, "signed",
                          a->has_key, "status", agent_status(a, now));
    if (!j) return NULL;
    json_object_set_new(j, "created", api_time(a->created_ns));
    json_object_set_new(j, "first_seen", api_time(a->first_seen_ns));
    json_object_set_new(j, "last_seen", api_time(a->last_seen_ns));
    json_object_set_new(j, "last_sample", api_time(a->last_ts_ns));
    json_object_set_new(j, "address", a->addr[0] ? json_string(a->addr) : json_null());
    json_object_set_new(j, "interval_ms", json_integer(a->interval_ms));
    json_object_set_new(j, "epoch", json_integer((json_int_t)a->epoch));
    json_object_set_new(j, "last_seq", json_integer((json_int_t)a->last_seq));
    json_object_set_new(j, "values", json_integer((json_int_t)a->values));
    json_object_set_new(j, "frames",
                        json_pack("{s:I,s:I,s:I,s:I}", "accepted", (json_int_t)a->accepted,
                                  "rejected", (json_int_t)a->rejected, "duplicate",
                                  (json_int_t)a->duplicate, "missing", (json_int_t)a->missing));
    /* Acknowledged delivery (docs/protocol.md): what the collector has
     * acknowledged, and the agent's own figures from its "agent"
     * measurement (null until it reports them). */
    json_t *d = json_pack("{s:I,s:I,s:I}", "acked_seq", (json_int_t)a->acked, "ack_lag_frames",
                          (json_int_t)a->ack_lag, "acks_sent", (json_int_t)a->acks_sent);
    if (d) {
        json_object_set_new(d, "last_ack", api_time(a->last_ack_ns));
        json_object_set_new(d, "agent_sent",
                            a->agent_reports ? json_integer((json_int_t)a->agent_sent)
                                             : json_null());
        json_object_set_new(d, "agent_resent",
                            a->agent_reports ? json_integer((json_int_t)a->agent_resent)
                                             : json_null());
        json_object_set_new(d, "agent_ring_dropped",
                            a->agent_reports ? json_integer((json_int_t)a->agent_ring_dropped)
                                             : json_null());
        json_object_set_new(d, "agent_ring_frames",
                            a->agent_reports ? json_integer((json_int_t)a->agent_ring_frames)
                                             : json_null());
        json_object_set_new(j, "delivery", d);
    }
    return j;
}

/* The collector address an agent should send to: the configured UDP
 * address, with a wildcard replaced by the host the client used for HTTP. */
static void collector_addr(struct api_req *rq, char *buf, size_t len)
{
    const char *host = rq->ctx->udp_host;
    char h[256];
    if (!strcmp(host, "0.0.0.0") || !strcmp(host, "::")) {
        const char *hh = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "Host");
        snprintf(h, sizeof h, "%s", hh ? hh : "127.0.0.1");
        char *colon = h[0] == '[' ? strchr(h, ']') : strrchr(h, ':');
        if (colon && h[0] == '[')
            colon[1] = '\0';
        else if (colon)
            *colon = '\0';
        host = h;
    }
    snprintf(buf, len, "%s:%u", host, rq->ctx->udp_port);
}

static void agents_register(struct api_req *rq, struct api_resp *rs)
{
    struct pt_conf c;
    const char *ns, *mcis, *vm, *csp;
    if (!rq->body_len) {
        api_error(rs, 400, "bad_request",
                  "a JSON body {\"ns\", \"mcis\", \"vm\", \"csp\"} is required");
        return;
    }
    int rc = pt_conf_parse(&c, "request body", rq->body, rq->body_len);
    if (!rc && !(rc = pt_conf_str(&c, "ns", NULL, &ns)) &&
        !(rc = pt_conf_str(&c, "mcis", NULL, &mcis)) && !(rc = pt_conf_str(&c, "vm", NULL, &vm)) &&
        !(rc = pt_conf_str(&c, "csp", "", &csp)))
        rc = pt_conf_finish(&c);
    if (!rc) {
        const char *req[] = {"ns", "mcis", "vm"};
        const char *val[] = {ns, mcis, vm};
        for (int i = 0; i < 3 && !rc; i++) {
            if (!val[i])
                rc = pt_conf_fail(&c, req[i], "is required");
            else if (!coll_name_valid(val[i], strlen(val[i])))
                rc = pt_conf_fail(&c, req[i],
                                  "must be 1 to 128 characters of A-Z a-z 0-9 . _ - : @");
        }
        if (!rc && csp[0] && !coll_name_valid(csp, strlen(csp)))
            rc = pt_conf_fail(&c, "csp", "must be up to 128 characters of A-Z a-z 0-9 . _ - : @");
    }
    if (rc) {
        api_error(rs, 400, "bad_request", "%s", pt_conf_error(&c));
        pt_conf_close(&c);
        return;
    }
    struct coll_agent_info info;
    uint8_t key[PT_WIRE_KEY_LEN];
    rc = coll_registry_add(rq->ctx->reg, ns, mcis, vm, csp, &info, key);
    pt_conf_close(&c);
    if (rc == -EEXIST) {
        api_error(rs, 409, "conflict",
                  "an agent is already registered as %s/%s/%s (id %llu); delete it first to "
                  "issue a new key",
                  info.ns, info.mcis, info.vm, (unsigned long long)info.id);
        json_object_set_new(json_object_get(rs->json, "error"), "agent_id",
                            json_integer((json_int_t)info.id));
        return;
    }
    if (rc) {
        api_error(rs, 500, "internal", "cannot register the agent: %s", pt_strerror(rc));
        return;
    }
    char hex[2 * PT_WIRE_KEY_LEN + 1], addr[300];
    pt_hex_encode(key, sizeof key, hex);
    collector_addr(rq, addr, sizeof addr);
    json_t *j = agent_json(&info, pt_now_ns());
    if (j) {
        json_object_set_new(j, "key", json_string(hex));
        json_object_set_new(j, "agent_config",
                            json_pack("{s:s,s:I,s:s,s:s,s:s,s:s,s:s}", "collector", addr,
                                      "agent_id", (json_int_t)info.id, "key", hex, "ns", info.ns,
                                      "mcis", info.mcis, "vm", info.vm, "csp", info.csp));
    }
    memset(key, 0, sizeof key);
    memset(hex, 0, sizeof hex);
    api_json(rs, 201, j);
}

static void agents_list(struct api_req *rq, struct api_resp *rs)
{
    static const char *const allowed[] = {"ns", "mcis", "status", NULL};
    if (!api_args_known(rq, rs, allowed)) return;
    const char *ns = api_arg(rq, "ns"), *mcis = api_arg(rq, "mcis"),
               *status = api_arg(rq, "status");
    if (status && strcmp(status, "up") && strcmp(status, "down") && strcmp(status, "never")) {
        api_error(rs, 400, "bad_request", "query parameter \"status\" must be up, down or never");
        return;
    }
    struct coll_agent_info *all;
    size_t n;
    if (coll_registry_list(rq->ctx->reg, &all, &n)) {
        api_error(rs, 500, "internal", "out of memory listing agents");
        return;
    }
    int64_t now = pt_now_ns();
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        if ((ns && strcmp(ns, all[i].ns)) || (mcis && strcmp(mcis, all[i].mcis))) continue;
        if (status && strcmp(status, agent_status(&all[i], now))) continue;
        json_array_append_new(arr, agent_json(&all[i], now));
    }
    free(all);
    api_json(rs, 200, json_pack("{s:o}", "agents", arr));
}

void api_agents_collection(struct api_req *rq, struct api_resp *rs)
{
    if (!strcmp(rq->method, "POST"))
        agents_register(rq, rs);
    else
        agents_list(rq, rs);
}

void api_agents_item(struct api_req *rq, struct api_resp *rs, const char *idstr)
{
    char *end;
    errno = 0;
    unsigned long long id = strtoull(idstr, &end, 10);
    if (errno || *end || end == idstr || idstr[0] == '-' || id == 0) {
        api_error(rs, 400, "bad_request", "agent id must be a positive integer, got \"%.64s\"",
                  idstr);
        return;
    }
    if (!strcmp(rq->method, "DELETE")) {
        int rc = coll_registry_remove(rq->ctx->reg, id);
        if (rc == -ENOENT)
            api_error(rs, 404, "not_found", "no agent with id %llu", id);
        else if (rc)
            api_error(rs, 500, "internal", "cannot remove agent %llu: %s", id, pt_strerror(rc));
        else
            rs->status = 204;
        return;
    }
    struct coll_agent_info info;
    if (coll_registry_get(rq->ctx->reg, id, &info)) {
        api_error(rs, 404, "not_found", "no agent with id %llu", id);
        return;
    }
    api_json(rs, 200, agent_json(&info, pt_now_ns()));
}

/* ---- /metrics: per-agent delivery series ---------------------------------- */

/* At most this many agents get series of their own in /metrics (sorted by
 * ns/mcis/vm): beyond that the scrape would be larger than useful; the API
 * (GET /api/v1/agents) has every agent. */
#define PROM_MAX_AGENTS 1000

int api_agents_prometheus(struct coll_registry *reg, char **text, size_t *len)
{
    struct coll_agent_info *all;
    size_t n;
    int rc = coll_registry_list(reg, &all, &n);
    if (rc) return rc;
    size_t shown = n < PROM_MAX_AGENTS ? n : PROM_MAX_AGENTS;
    size_t cap = *len + 4096 + shown * 6144; /* 11 lines of at most ~530 bytes */
    char *t = realloc(*text, cap);
    if (!t) {
        free(all);
        return -ENOMEM;
    }
    *text = t;
    size_t at = *len;
#define OUT(...)                                                             \
    do {                                                                     \
        if (at < cap) at += (size_t)snprintf(t + at, cap - at, __VA_ARGS__); \
    } while (0)
    static const char *const help[][3] = {
        {"pantala_agent_frames_total", "counter",
         "Frames of one agent by outcome (missing: seqs never received)."},
        {"pantala_agent_acked_seq", "gauge",
         "Every frame of the current epoch up to this seq is durable and acknowledged."},
        {"pantala_agent_ack_lag_frames", "gauge",
         "Frames accepted beyond the acknowledged seq (not yet durable, or gaps)."},
        {"pantala_agent_acks_sent_total", "counter", "Acknowledgements sent to one agent."},
        {"pantala_agent_sent_total", "counter", "Frames the agent says it sent (first sends)."},
        {"pantala_agent_resent_total", "counter", "Frames the agent says it resent."},
        {"pantala_agent_ring_dropped_total", "counter",
         "Unacknowledged frames the agent dropped because its ring was full."},
        {"pantala_agent_ring_frames", "gauge", "Frames the agent holds unacknowledged."},
    };
    for (size_t h = 0; h < PT_ARRAY_LEN(help); h++) {
        OUT("# HELP %s %s\n# TYPE %s %s\n", help[h][0], help[h][2], help[h][0], help[h][1]);
        for (size_t i = 0; i < shown; i++) {
            const struct coll_agent_info *a = &all[i];
            /* ns, mcis and vm are [A-Za-z0-9._:@-] (coll_name_valid()): no
             * escaping needed in a label value. */
            char lab[480];
            snprintf(lab, sizeof lab, "agent=\"%llu\",ns=\"%s\",mcis=\"%s\",vm=\"%s\"",
                     (unsigned long long)a->id, a->ns, a->mcis, a->vm);
            switch (h) {
            case 0:
                OUT("%s{%s,outcome=\"accepted\"} %llu\n", help[h][0], lab,
                    (unsigned long long)a->accepted);
                OUT("%s{%s,outcome=\"duplicate\"} %llu\n", help[h][0], lab,
                    (unsigned long long)a->duplicate);
                OUT("%s{%s,outcome=\"rejected\"} %llu\n", help[h][0], lab,
                    (unsigned long long)a->rejected);
                OUT("%s{%s,outcome=\"missing\"} %llu\n", help[h][0], lab,
                    (unsigned long long)a->missing);
                break;
            case 1:
                OUT("%s{%s} %llu\n", help[h][0], lab, (unsigned long long)a->acked);
                break;
            case 2:
                OUT("%s{%s} %llu\n", help[h][0], lab, (unsigned long long)a->ack_lag);
                break;
            case 3:
                OUT("%s{%s} %llu\n", help[h][0], lab, (unsigned long long)a->acks_sent);
                break;
            default: { /* the agent's own figures, when it reports them */
                if (!a->agent_reports) break;
                uint64_t v[] = {a->agent_sent, a->agent_resent, a->agent_ring_dropped,
                                a->agent_ring_frames};
                OUT("%s{%s} %llu\n", help[h][0], lab, (unsigned long long)v[h - 4]);
            }
            }
        }
    }
#undef OUT
    free(all);
    if (at >= cap) return -ENOSPC; /* cannot happen: see cap */
    *len = at;
    return 0;
}
