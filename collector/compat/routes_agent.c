/* Agents the CB-Dragonfly way:
 *
 *   POST|DELETE /dragonfly/agent  {ns_id, mcis_id, vm_id, public_ip, port,
 *       user_name, ssh_key, cspType, service_type}
 *     installs (removes) the agent over SSH with libpantala-prov and answers
 *     when it is done: for an install, once the collector has accepted the
 *     agent's first frame. CB-Tumblebug waits up to 8 minutes
 *     (src/core/mcis/monitoring.go CallMonitoringAsync); the connection is
 *     suspended meanwhile, holding no HTTP thread. ssh_key is the private
 *     key itself: it lives in a 0600 file in data_dir for the job only,
 *     then is overwritten and removed.
 *
 *   GET /dragonfly/agents/metadata, GET|PUT|DELETE /dragonfly/agent/metadata
 *     CB-Dragonfly's AgentInfo (pkg/api/core/agent/common/metadata.go) by
 *     UUID {ns}_{service_type}_{mcis}_{vm}_{csp}: what it records at install
 *     (public IP, service type) is kept in dragonfly.json, the health comes
 *     from the registry (healthy while frames arrive). */
#include "compat_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "pt/log.h"
#include "pt/prov.h"
#include "pt/time.h"

#define MAX_FIRST_FRAME_MS (7 * 60 * 1000) /* CB-Tumblebug gives up after 8 minutes */

struct job {
    struct coll_compat *c;
    struct api_req *rq;
    enum prov_action action;
    int slot;
    char ns[129], mcis[129], vm[129], csp[129], service_type[65], ip[256], user[129];
    uint16_t port;
    char key_path[1100];
};

/* ---- the request --------------------------------------------------------- */

/* A member as a string: JSON strings, and numbers for "port". */
static const char *str_member(json_t *o, const char *k, char *num, size_t numlen)
{
    json_t *v = json_object_get(o, k);
    if (json_is_integer(v)) {
        snprintf(num, numlen, "%lld", (long long)json_integer_value(v));
        return num;
    }
    return json_string_value(v);
}

static bool copy_field(struct api_resp *rs, const char *what, const char *v, char *dst, size_t cap,
                       bool required, bool name)
{
    if (!v || !*v) {
        if (!required) {
            dst[0] = '\0';
            return true;
        }
        compat_error(rs, 400, "request body: \"%s\" is required", what);
        return false;
    }
    if (strlen(v) >= cap || (name && !coll_name_valid(v, strlen(v)))) {
        compat_error(
            rs, 400,
            name ? "request body: \"%s\" must be 1 to 128 characters of A-Z a-z 0-9 . _ - : @"
                 : "request body: \"%s\" is too long",
            what);
        return false;
    }
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p <= ' ') {
            compat_error(rs, 400, "request body: \"%s\" holds a blank or control character", what);
            return false;
        }
    snprintf(dst, cap, "%s", v);
    return true;
}

/* Parses the install/uninstall body into j; the key PEM goes to *key. */
static bool parse_agent_body(struct api_req *rq, struct api_resp *rs, struct job *j, json_t **doc,
                             const char **key)
{
    *doc = compat_body(rq, rs);
    if (!*doc) return false;
    static const char *const known[] = {"ns_id",     "mcis_id", "vm_id",   "public_ip",    "port",
                                        "user_name", "ssh_key", "cspType", "service_type", NULL};
    const char *k;
    json_t *v;
    json_object_foreach(*doc, k, v)
    {
        bool ok = false;
        for (int i = 0; known[i] && !ok; i++) ok = !strcmp(k, known[i]);
        if (!ok) {
            compat_error(rs, 400,
                         "request body: unknown key \"%.64s\" (expected ns_id, mcis_id, vm_id, "
                         "public_ip, port, user_name, ssh_key, cspType, service_type)",
                         k);
            return false;
        }
    }
    char num[32];
    const char *port = str_member(*doc, "port", num, sizeof num);
    if (!copy_field(rs, "ns_id", json_string_value(json_object_get(*doc, "ns_id")), j->ns,
                    sizeof j->ns, true, true) ||
        !copy_field(rs, "mcis_id", json_string_value(json_object_get(*doc, "mcis_id")), j->mcis,
                    sizeof j->mcis, true, true) ||
        !copy_field(rs, "vm_id", json_string_value(json_object_get(*doc, "vm_id")), j->vm,
                    sizeof j->vm, true, true) ||
        !copy_field(rs, "cspType", json_string_value(json_object_get(*doc, "cspType")), j->csp,
                    sizeof j->csp, false, true) ||
        !copy_field(rs, "service_type", json_string_value(json_object_get(*doc, "service_type")),
                    j->service_type, sizeof j->service_type, false, true) ||
        !copy_field(rs, "public_ip", json_string_value(json_object_get(*doc, "public_ip")), j->ip,
                    sizeof j->ip, true, false) ||
        !copy_field(rs, "user_name", json_string_value(json_object_get(*doc, "user_name")), j->user,
                    sizeof j->user, true, false))
        return false;
    if (!j->service_type[0]) snprintf(j->service_type, sizeof j->service_type, "mcis");
    j->port = 22;
    if (port && *port) {
        char *end;
        long p = strtol(port, &end, 10);
        if (*end || p < 1 || p > 65535) {
            compat_error(rs, 400, "request body: \"port\": expected 1 to 65535, got \"%.16s\"",
                         port);
            return false;
        }
        j->port = (uint16_t)p;
    }
    *key = json_string_value(json_object_get(*doc, "ssh_key"));
    if (!*key || !strstr(*key, "PRIVATE KEY")) {
        compat_error(rs, 400, "request body: \"ssh_key\": expected the SSH private key (PEM)");
        return false;
    }
    return true;
}

/* Writes the key to a fresh 0600 file in data_dir. */
static int key_write(struct coll_compat *c, const char *pem, char *path, size_t cap)
{
    snprintf(path, cap, "%s/.dragonfly-key-XXXXXX", c->o.data_dir);
    int fd = mkstemp(path); /* 0600 */
    if (fd < 0) return -errno;
    size_t len = strlen(pem), off = 0;
    while (off < len) {
        ssize_t w = write(fd, pem + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            close(fd);
            unlink(path);
            return -e;
        }
        off += (size_t)w;
    }
    /* libssh2 wants the PEM to end with a newline */
    if (len && pem[len - 1] != '\n' && write(fd, "\n", 1) != 1) {
        close(fd);
        unlink(path);
        return -EIO;
    }
    close(fd);
    return 0;
}

/* Overwrites the key file with zeros, then removes it. */
static void key_wipe(const char *path)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        off_t size = lseek(fd, 0, SEEK_END);
        char zero[512] = {0};
        lseek(fd, 0, SEEK_SET);
        for (off_t o = 0; o < size; o += (off_t)sizeof zero)
            if (write(fd, zero, sizeof zero) < 0) break;
        fsync(fd);
        close(fd);
    }
    if (unlink(path) && errno != ENOENT)
        PT_ERROR("compat", "cannot remove the temporary key file %s: %s", path, strerror(errno));
}

/* ---- the job ------------------------------------------------------------- */

static void metadata_record(struct job *j, const struct prov_result *r)
{
    struct coll_compat *c = j->c;
    char uuid[700];
    compat_agent_uuid(uuid, sizeof uuid, j->ns, j->service_type, j->mcis, j->vm, j->csp);
    pthread_mutex_lock(&c->mu);
    if (j->action == PROV_UNINSTALL) {
        json_object_del(c->agents, uuid);
    } else {
        json_object_set_new(c->agents, uuid,
                            json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "service_type",
                                      j->service_type, "ns_id", j->ns, "mcis_id", j->mcis, "vm_id",
                                      j->vm, "cspType", j->csp, "public_ip", j->ip, "os_type",
                                      r->os));
    }
    compat_save(c);
    pthread_mutex_unlock(&c->mu);
}

static void *job_main(void *arg)
{
    struct job *j = arg;
    struct coll_compat *c = j->c;
    long iv = compat_agent_interval(c);
    char interval[32], api_url[300];
    snprintf(interval, sizeof interval, "%lds", iv);
    pthread_mutex_lock(&c->mu);
    snprintf(api_url, sizeof api_url, "%s", c->api_url);
    pthread_mutex_unlock(&c->mu);
    long wait_ms = 2 * iv * 1000 + 30000;
    struct prov_host h = {
        .host = j->ip,
        .port = j->port,
        .user = j->user,
        .key = j->key_path,
        .ns = j->ns,
        .mcis = j->mcis,
        .vm = j->vm,
        .csp = j->csp,
        .prefix = c->o.prefix,
    };
    struct prov_opts po = {
        .api_url = api_url,
        .token = c->o.token,
        .collector_udp = c->o.collector,
        .interval = interval,
        .package_dir = c->o.packages,
        .known_hosts = c->o.known_hosts,
        .accept_new = c->o.accept_new,
        .first_frame_timeout_ms =
            (int)(wait_ms < MAX_FIRST_FRAME_MS ? wait_ms : MAX_FIRST_FRAME_MS),
        .parallel = 1,
    };
    struct prov_result *r = calloc(1, sizeof *r);
    int rc = r ? prov_run_one(j->action, &h, &po, r, NULL, NULL, 0) : -ENOMEM;
    key_wipe(j->key_path);
    const char *what = j->action == PROV_INSTALL ? "installation" : "uninstallation";
    json_t *body;
    int status;
    if (rc == 0) {
        metadata_record(j, r);
        PT_INFO("compat", "agent %s on %s/%s/%s (%s) finished in %.1f s%s", what, j->ns, j->mcis,
                j->vm, j->ip, r->seconds, r->changed ? "" : " (nothing to do)");
        status = 200;
        body = compat_message("agent %s is finished", what);
    } else {
        PT_WARN("compat", "agent %s on %s/%s/%s (%s) failed at %s: %s", what, j->ns, j->mcis, j->vm,
                j->ip, r ? r->step : "start", r ? r->detail : "out of memory");
        status = 500;
        body = compat_message("agent %s failed at step \"%s\": %s", what, r ? r->step : "start",
                              r ? r->detail : "out of memory");
    }
    if (r) memset(r, 0, sizeof *r);
    free(r);
    struct coll_stats *stats = j->rq->ctx->stats;
    atomic_fetch_add_explicit(&stats->compat_agent_jobs[j->action == PROV_UNINSTALL][rc != 0], 1,
                              memory_order_relaxed);
    compat_count(j->rq, status);
    api_resume(j->rq, status, body); /* rq is not ours any more */
    pthread_mutex_lock(&c->mu);
    c->busy[j->slot][0] = '\0';
    c->running--;
    if (!c->running) pthread_cond_broadcast(&c->idle);
    pthread_mutex_unlock(&c->mu);
    free(j);
    return NULL;
}

void compat_agent(struct api_req *rq, struct api_resp *rs)
{
    struct coll_compat *c = rq->ctx->compat;
    if (!c->o.packages) {
        compat_error(rs, 503,
                     "agent installation is off: provisioning.enabled is false in pantalad's "
                     "configuration");
        return;
    }
    struct job *j = calloc(1, sizeof *j);
    json_t *doc = NULL;
    const char *pem = NULL;
    if (!j) {
        compat_error(rs, 500, "out of memory");
        return;
    }
    if (!parse_agent_body(rq, rs, j, &doc, &pem)) {
        json_decref(doc);
        free(j);
        return;
    }
    j->c = c;
    j->rq = rq;
    j->action = !strcmp(rq->method, "DELETE") ? PROV_UNINSTALL : PROV_INSTALL;
    char id[400];
    snprintf(id, sizeof id, "%s/%s/%s", j->ns, j->mcis, j->vm);

    /* One job per VM at a time, a bounded number in all. */
    pthread_mutex_lock(&c->mu);
    int slot = -1;
    bool dup = false;
    for (int i = 0; i < COMPAT_MAX_JOBS; i++) {
        if (!strcmp(c->busy[i], id)) dup = true;
        if (!c->busy[i][0] && slot < 0) slot = i;
    }
    if (c->closing || dup || slot < 0) {
        pthread_mutex_unlock(&c->mu);
        if (dup)
            compat_error(rs, 409, "an agent job for vm %s is already running", id);
        else
            compat_error(rs, 503, "%s",
                         c->closing ? "pantalad is shutting down"
                                    : "too many agent jobs are running; retry later");
        goto out;
    }
    snprintf(c->busy[slot], sizeof c->busy[slot], "%s", id);
    c->running++;
    pthread_mutex_unlock(&c->mu);
    j->slot = slot;

    int rc = key_write(c, pem, j->key_path, sizeof j->key_path);
    memset((char *)pem, 0, strlen(pem)); /* the body's copy; rq->body below */
    if (rq->body) memset(rq->body, 0, rq->body_len);
    pthread_t t;
    pthread_attr_t attr;
    if (rc == 0) {
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        api_defer(rq);
        if (pthread_create(&t, &attr, job_main, j)) {
            rc = -EAGAIN;
            key_wipe(j->key_path);
            compat_count(rq, 500);
            api_resume(rq, 500, compat_message("cannot start a thread for the agent job"));
        }
        pthread_attr_destroy(&attr);
    } else {
        compat_error(rs, 500, "cannot write the SSH key to a temporary file in %s: %s",
                     c->o.data_dir, strerror(-rc));
    }
    if (rc) {
        pthread_mutex_lock(&c->mu);
        c->busy[slot][0] = '\0';
        if (!--c->running) pthread_cond_broadcast(&c->idle);
        pthread_mutex_unlock(&c->mu);
        goto out;
    }
    j = NULL; /* the thread's now */
out:
    json_decref(doc);
    free(j);
}

/* ---- metadata ------------------------------------------------------------ */

/* AgentInfo as CB-Dragonfly shows it, for an agent of the registry (reg
 * set) and/or a record kept at install (rec set). Where no record says
 * otherwise, public_ip is the address the agent's frames come from. */
static json_t *agent_info(const struct coll_agent_info *reg, json_t *rec, int64_t now)
{
#define REC(k, dflt) (json_string_value(json_object_get(rec, k)) ?: (dflt))
    const char *ns = reg ? reg->ns : REC("ns_id", ""), *mcis = reg ? reg->mcis : REC("mcis_id", ""),
               *vm = reg ? reg->vm : REC("vm_id", ""), *csp = reg ? reg->csp : REC("cspType", "");
    char addr[64] = "";
    if (reg) { /* "1.2.3.4:5678" -> "1.2.3.4" */
        snprintf(addr, sizeof addr, "%s", reg->addr[0] == '[' ? reg->addr + 1 : reg->addr);
        char *end = reg->addr[0] == '[' ? strchr(addr, ']') : strrchr(addr, ':');
        if (end) *end = '\0';
    }
    bool healthy = false;
    if (reg && reg->last_seen_ns) {
        int64_t iv =
            reg->interval_ms ? (int64_t)reg->interval_ms * PT_NS_PER_MS : 10 * PT_NS_PER_SEC;
        healthy = now - reg->last_seen_ns <= 3 * iv;
    }
    json_t *j =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:s,s:s}", "service_type",
                  REC("service_type", "mcis"), "ns_id", ns, "mcis_id", mcis, "vm_id", vm, "cspType",
                  csp, "agent_type", "push", "agent_state", reg ? "enable" : "disable",
                  "agent_health", healthy ? "healthy" : "unhealthy", "agent_unhealthy_resp_cnt",
                  healthy ? 0 : 1, "public_ip", REC("public_ip", addr), "mck8s_id", "");
#undef REC
    return j;
}

static json_t *record_for(json_t *agents, const char *ns, const char *mcis, const char *vm)
{
    const char *k;
    json_t *v;
    json_object_foreach(agents, k, v)
    {
        if (!strcmp(json_string_value(json_object_get(v, "ns_id")) ?: "", ns) &&
            !strcmp(json_string_value(json_object_get(v, "mcis_id")) ?: "", mcis) &&
            !strcmp(json_string_value(json_object_get(v, "vm_id")) ?: "", vm))
            return v;
    }
    return NULL;
}

void compat_agents_metadata(struct api_req *rq, struct api_resp *rs)
{
    struct coll_compat *c = rq->ctx->compat;
    struct coll_agent_info *all;
    size_t n;
    if (coll_registry_list(rq->ctx->reg, &all, &n)) {
        compat_error(rs, 500, "failed to get metadata list: out of memory");
        return;
    }
    int64_t now = pt_now_ns();
    json_t *out = json_object();
    pthread_mutex_lock(&c->mu);
    json_t *recs = json_deep_copy(c->agents);
    pthread_mutex_unlock(&c->mu);
    /* Every registered agent, then records of agents no longer registered. */
    for (size_t i = 0; i < n; i++) {
        json_t *rec = record_for(recs, all[i].ns, all[i].mcis, all[i].vm);
        char uuid[700];
        compat_agent_uuid(uuid, sizeof uuid, all[i].ns,
                          json_string_value(json_object_get(rec, "service_type")) ?: "mcis",
                          all[i].mcis, all[i].vm, all[i].csp);
        json_object_set_new(out, uuid, agent_info(&all[i], rec, now));
    }
    const char *k;
    json_t *v;
    json_object_foreach(recs, k, v) if (!json_object_get(out, k))
        json_object_set_new(out, k, agent_info(NULL, v, now));
    json_decref(recs);
    free(all);
    api_json(rs, 200, out);
}

static enum MHD_Result count_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    (void)key;
    (void)value;
    ++*(size_t *)cls;
    return MHD_YES;
}

void compat_agent_metadata(struct api_req *rq, struct api_resp *rs)
{
    struct coll_compat *c = rq->ctx->compat;
    const char *ns, *st, *mcis, *vm, *csp, *ip = NULL;
    size_t nargs = 0;
    MHD_get_connection_values(rq->conn, MHD_GET_ARGUMENT_KIND, count_arg, &nargs);
    if (!strcmp(rq->method, "GET") && nargs == 0) {
        /* CB-Dragonfly 0.4 listed every agent here (ListAgentMetadata) */
        compat_agents_metadata(rq, rs);
        return;
    }
    json_t *doc = NULL;
    if (!strcmp(rq->method, "PUT")) {
        if (!(doc = compat_body(rq, rs))) return;
        ns = json_string_value(json_object_get(doc, "ns_id"));
        st = json_string_value(json_object_get(doc, "service_type"));
        mcis = json_string_value(json_object_get(doc, "mcis_id"));
        vm = json_string_value(json_object_get(doc, "vm_id"));
        csp = json_string_value(json_object_get(doc, "cspType"));
        ip = json_string_value(json_object_get(doc, "public_ip"));
    } else {
        /* CB-Dragonfly reads "ns" and "service_id"; ns_id and mcis_id too. */
        ns = api_arg(rq, "ns_id") ? api_arg(rq, "ns_id") : api_arg(rq, "ns");
        st = api_arg(rq, "service_type");
        mcis = api_arg(rq, "service_id") ? api_arg(rq, "service_id") : api_arg(rq, "mcis_id");
        vm = api_arg(rq, "vm_id");
        csp = api_arg(rq, "csp_type") ? api_arg(rq, "csp_type") : api_arg(rq, "cspType");
    }
    const char *verb = rq->method[0] == 'G' ? "get" : rq->method[0] == 'P' ? "update" : "delete";
    if (!st || !*st || !coll_name_valid(st, strlen(st))) {
        compat_error(rs, 400, "empty agent type parameter (service_type)");
        goto out;
    }
    if (!ns || !mcis || !vm || !coll_name_valid(ns, strlen(ns)) ||
        !coll_name_valid(mcis, strlen(mcis)) || !coll_name_valid(vm, strlen(vm)) ||
        (csp && *csp && !coll_name_valid(csp, strlen(csp)))) {
        compat_error(rs, 400,
                     "bad request parameter to %s mcis agent metadata: ns (or ns_id), "
                     "service_id (or mcis_id) and vm_id are required",
                     verb);
        goto out;
    }
    if (ip && (strlen(ip) > 255 || !*ip)) {
        compat_error(rs, 400, "bad request parameter: public_ip");
        goto out;
    }
    struct coll_agent_info reg;
    bool have_reg = coll_registry_find_name(rq->ctx->reg, ns, mcis, vm, &reg) == 0;
    if (have_reg && csp && *csp && strcmp(csp, reg.csp)) have_reg = false;
    const char *ucsp = have_reg ? reg.csp : csp ? csp : "";
    char uuid[700];
    compat_agent_uuid(uuid, sizeof uuid, ns, st, mcis, vm, ucsp);
    pthread_mutex_lock(&c->mu);
    json_t *rec = json_object_get(c->agents, uuid);
    if (!rec && !have_reg) {
        pthread_mutex_unlock(&c->mu);
        compat_error(rs, 404, "failed to get agent with UUID %s", uuid);
        goto out;
    }
    int rc = 0;
    if (!strcmp(rq->method, "DELETE")) {
        /* Only the metadata: the agent stays registered (DELETE
         * /dragonfly/agent removes it). */
        if (rec) {
            json_object_del(c->agents, uuid);
            rc = compat_save(c);
        }
        pthread_mutex_unlock(&c->mu);
        if (rc)
            compat_error(rs, 500, "failed to delete metadata: %s", strerror(-rc));
        else
            api_json(rs, 200, compat_message("success to delete agent metadata %s", uuid));
        goto out;
    }
    if (!strcmp(rq->method, "PUT")) {
        if (!rec) {
            rec = json_pack("{s:s,s:s,s:s,s:s,s:s}", "service_type", st, "ns_id", ns, "mcis_id",
                            mcis, "vm_id", vm, "cspType", ucsp);
            json_object_set_new(c->agents, uuid, rec);
        }
        if (ip) json_object_set_new(rec, "public_ip", json_string(ip));
        rc = compat_save(c);
    }
    json_t *copy = rec ? json_deep_copy(rec) : NULL;
    pthread_mutex_unlock(&c->mu);
    if (rc)
        compat_error(rs, 500, "failed to update metadata: %s", strerror(-rc));
    else
        api_json(rs, 200, agent_info(have_reg ? &reg : NULL, copy, pt_now_ns()));
    json_decref(copy);
out:
    json_decref(doc);
}
