/* Provisioning jobs: validation, one thread per job, progress in memory. */
#include "provision.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "pt/log.h"
#include "pt/prov.h"
#include "pt/time.h"

struct job {
    uint64_t id;
    enum prov_action action;
    int64_t created_ns, finished_ns;
    bool done;
    json_t *req;  /* the request: owns the defaults' strings */
    json_t *body; /* the parsed VMs: own the host strings */
    struct prov_host *hosts;
    struct prov_result *results;
    char (*keys)[PATH_MAX];
    size_t n, failed;
    struct prov_opts opts;
    char collector[300], interval[32], kind[8], api_url[300];
    pthread_t thread;
    bool joined;
    struct coll_prov *owner;
};

struct coll_prov {
    struct coll_prov_opts o;
    char api_url[300];
    pthread_mutex_t mu;
    struct job *jobs[COLL_PROV_KEEP];
    size_t njobs;
    uint64_t next_id;
};

int coll_prov_open(struct coll_prov **out, const struct coll_prov_opts *o)
{
    struct coll_prov *p = calloc(1, sizeof *p);
    if (!p) return -ENOMEM;
    p->o = *o;
    p->next_id = 1;
    pthread_mutex_init(&p->mu, NULL);
    *out = p;
    return prov_global_init();
}

void coll_prov_set_api(struct coll_prov *p, const char *url)
{
    pthread_mutex_lock(&p->mu);
    snprintf(p->api_url, sizeof p->api_url, "%s", url);
    pthread_mutex_unlock(&p->mu);
}

static void job_free(struct job *j)
{
    if (!j) return;
    if (!j->joined) pthread_join(j->thread, NULL);
    json_decref(j->req);
    json_decref(j->body);
    free(j->hosts);
    free(j->results);
    free(j->keys);
    free(j);
}

/* Progress lands in results[idx] (prov_run_one writes step and detail as
 * it goes); this only logs it. API readers look at those fixed-size,
 * always NUL-terminated strings without a lock: at worst a line of text
 * mixes two updates for one request. */
static void on_progress(void *ud, size_t idx, const struct prov_host *h, const char *step,
                        const char *msg)
{
    struct job *j = ud;
    PT_INFO("provision", "job %llu, %s (%s): %s%s%s", (unsigned long long)j->id, h->vm, h->host,
            step, msg && *msg ? " " : "", msg ? msg : "");
    (void)idx;
}

static void *job_main(void *arg)
{
    struct job *j = arg;
    j->failed = prov_run_many(j->action, j->hosts, j->n, &j->opts, j->results, on_progress, j);
    pthread_mutex_lock(&j->owner->mu);
    j->done = true;
    j->finished_ns = pt_now_ns();
    pthread_mutex_unlock(&j->owner->mu);
    PT_INFO("provision", "job %llu (%s, %zu host%s) finished: %zu ok, %zu failed",
            (unsigned long long)j->id, prov_action_name(j->action), j->n, j->n == 1 ? "" : "s",
            j->n - j->failed, j->failed);
    return NULL;
}

/* keys_dir/name, refusing anything that leaves keys_dir. */
static int key_path(const struct coll_prov *p, const char *name, char *out, size_t cap, char *err,
                    size_t errlen, size_t i)
{
    if (!p->o.keys_dir) {
        snprintf(err, errlen, "vms[%zu]: key: provisioning.keys_dir is not configured", i);
        return -EINVAL;
    }
    if (!*name || strstr(name, "..") || strchr(name, '/')) {
        snprintf(err, errlen,
                 "vms[%zu]: key: expected the name of a key file in %s (no directories), got "
                 "\"%s\"",
                 i, p->o.keys_dir, name);
        return -EINVAL;
    }
    snprintf(out, cap, "%s/%s", p->o.keys_dir, name);
    return 0;
}

int coll_prov_submit(struct coll_prov *p, const char *body, size_t len, uint64_t *id, char *err,
                     size_t errlen)
{
    json_error_t je;
    json_t *doc = json_loadb(body, len, 0, &je);
    if (!json_is_object(doc)) {
        snprintf(err, errlen, "request body: %s", doc ? "expected a JSON object" : je.text);
        json_decref(doc);
        return -EINVAL;
    }
    static const char *const known[] = {"action",   "vms",  "defaults", "collector",
                                        "interval", "kind", NULL};
    const char *k;
    json_t *v;
    json_object_foreach(doc, k, v)
    {
        int ok = 0;
        for (int i = 0; known[i]; i++) ok |= !strcmp(k, known[i]);
        if (!ok) {
            snprintf(err, errlen, "request body: unknown key \"%s\"", k);
            json_decref(doc);
            return -EINVAL;
        }
    }
    const char *action = json_string_value(json_object_get(doc, "action"));
    int act = action ? prov_action_parse(action) : PROV_INSTALL;
    const char *coll = json_string_value(json_object_get(doc, "collector"));
    const char *interval = json_string_value(json_object_get(doc, "interval"));
    const char *kind = json_string_value(json_object_get(doc, "kind"));
    int rc = 0;
    if (act < 0) {
        snprintf(err, errlen,
                 "request body: key \"action\": expected install, upgrade, "
                 "uninstall or status");
        rc = -EINVAL;
    } else if (kind && strcmp(kind, "deb") && strcmp(kind, "rpm") && strcmp(kind, "tgz")) {
        snprintf(err, errlen, "request body: key \"kind\": expected deb, rpm or tgz");
        rc = -EINVAL;
    } else if (!coll && !p->o.collector && (act == PROV_INSTALL || act == PROV_UPGRADE)) {
        snprintf(err, errlen,
                 "request body: key \"collector\": required (the \"host:port\" the VMs send to; "
                 "or set provisioning.collector in pantalad's configuration)");
        rc = -EINVAL;
    }
    if (rc) {
        json_decref(doc);
        return rc;
    }

    /* The VMs: an inventory, with "defaults" filling what entries omit. */
    json_t *dflt = json_object_get(doc, "defaults");
    struct prov_host d = {0};
    if (dflt && !json_is_object(dflt)) {
        snprintf(err, errlen, "request body: key \"defaults\": expected an object");
        json_decref(doc);
        return -EINVAL;
    }
#define DSTR(f) d.f = json_string_value(json_object_get(dflt, #f))
    DSTR(user);
    DSTR(key);
    DSTR(ns);
    DSTR(mcis);
    DSTR(csp);
    DSTR(prefix);
#undef DSTR
    json_t *port = json_object_get(dflt, "port");
    if (json_is_integer(port) && json_integer_value(port) > 0 && json_integer_value(port) < 65536)
        d.port = (uint16_t)json_integer_value(port);
    char *vms = json_dumps(json_object_get(doc, "vms"), 0);
    struct prov_inventory inv;
    rc = prov_inventory_parse(vms ? vms : "", vms ? strlen(vms) : 0, "vms", &d, &inv, err, errlen);
    free(vms);
    if (rc) {
        json_decref(doc);
        return rc;
    }

    struct job *j = calloc(1, sizeof *j);
    if (!j) {
        prov_inventory_free(&inv);
        json_decref(doc);
        return -ENOMEM;
    }
    j->owner = p;
    j->action = (enum prov_action)act;
    j->n = inv.n;
    j->hosts = inv.hosts; /* strings point into inv.json, kept below */
    j->body = inv.json;
    j->req = doc; /* the defaults' strings live in it */
    j->results = calloc(j->n, sizeof *j->results);
    j->keys = calloc(j->n, sizeof *j->keys);
    if (!j->results || !j->keys) {
        j->joined = true;
        job_free(j);
        return -ENOMEM;
    }
    for (size_t i = 0; i < j->n; i++) {
        if (!j->hosts[i].key) {
            snprintf(err, errlen, "vms[%zu]: key: required (a key file name in %s)", i,
                     p->o.keys_dir ? p->o.keys_dir : "provisioning.keys_dir");
            rc = -EINVAL;
        } else {
            rc = key_path(p, j->hosts[i].key, j->keys[i], sizeof j->keys[i], err, errlen, i);
        }
        if (rc) {
            j->joined = true;
            job_free(j);
            return rc;
        }
        j->hosts[i].key = j->keys[i];
        if (!j->hosts[i].csp) j->hosts[i].csp = "";
    }
    snprintf(j->collector, sizeof j->collector, "%s",
             coll             ? coll
             : p->o.collector ? p->o.collector
                              : "");
    snprintf(j->interval, sizeof j->interval, "%s", interval ? interval : "");
    snprintf(j->kind, sizeof j->kind, "%s", kind ? kind : "");
    j->opts = (struct prov_opts){
        .api_url = j->api_url,
        .token = p->o.token,
        .collector_udp = j->collector[0] ? j->collector : NULL,
        .interval = j->interval[0] ? j->interval : NULL,
        .package_dir = p->o.packages,
        .kind = j->kind[0] ? j->kind : NULL,
        .known_hosts = p->o.known_hosts,
        .accept_new = p->o.accept_new,
        .parallel = p->o.parallel,
    };
    j->created_ns = pt_now_ns();

    pthread_mutex_lock(&p->mu);
    snprintf(j->api_url, sizeof j->api_url, "%s", p->api_url);
    j->id = p->next_id++;
    if (p->njobs == COLL_PROV_KEEP) {
        /* Forget the oldest finished job; if none is finished, refuse. */
        size_t old_i = 0;
        while (old_i < p->njobs && !p->jobs[old_i]->done) old_i++;
        if (old_i == p->njobs) {
            pthread_mutex_unlock(&p->mu);
            snprintf(err, errlen, "%d provisioning jobs are running; wait for one to finish",
                     COLL_PROV_KEEP);
            j->joined = true;
            job_free(j);
            return -EBUSY;
        }
        struct job *old = p->jobs[old_i];
        memmove(&p->jobs[old_i], &p->jobs[old_i + 1], (p->njobs - old_i - 1) * sizeof p->jobs[0]);
        p->njobs--;
        pthread_mutex_unlock(&p->mu);
        job_free(old);
        pthread_mutex_lock(&p->mu);
    }
    p->jobs[p->njobs++] = j;
    if (pthread_create(&j->thread, NULL, job_main, j)) {
        p->njobs--;
        pthread_mutex_unlock(&p->mu);
        j->joined = true;
        job_free(j);
        snprintf(err, errlen, "cannot start a thread for the job");
        return -EAGAIN;
    }
    pthread_mutex_unlock(&p->mu);
    PT_INFO("provision", "job %llu: %s on %zu host%s", (unsigned long long)j->id,
            prov_action_name(j->action), j->n, j->n == 1 ? "" : "s");
    *id = j->id;
    return 0;
}

static json_t *job_json(const struct job *j, bool hosts)
{
    size_t ok = 0, failed = 0, running = 0;
    for (size_t i = 0; i < j->n; i++) {
        enum prov_state s = j->results[i].state;
        ok += s == PROV_OK;
        failed += s == PROV_FAILED;
        running += s == PROV_RUNNING;
    }
    json_t *o = json_pack("{s:I,s:s,s:s,s:{s:I,s:I,s:I,s:I}}", "id", (json_int_t)j->id, "action",
                          prov_action_name(j->action), "state", j->done ? "done" : "running",
                          "summary", "hosts", (json_int_t)j->n, "ok", (json_int_t)ok, "failed",
                          (json_int_t)failed, "running", (json_int_t)running);
    if (!o) return NULL;
    char ts[40];
    pt_time_format(j->created_ns, 3, ts, sizeof ts);
    json_object_set_new(o, "created", json_string(ts));
    if (j->done) {
        pt_time_format(j->finished_ns, 3, ts, sizeof ts);
        json_object_set_new(o, "finished", json_string(ts));
    }
    if (!hosts) return o;
    json_t *arr = json_array();
    for (size_t i = 0; i < j->n; i++) {
        const struct prov_host *h = &j->hosts[i];
        const struct prov_result *r = &j->results[i];
        json_t *e = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "host", h->host, "ns", h->ns, "mcis",
                              h->mcis, "vm", h->vm, "state", prov_state_name(r->state), "step",
                              r->step, "detail", r->detail);
        if (!e) continue;
        json_object_set_new(e, "os", json_string(r->os));
        json_object_set_new(e, "kind", json_string(r->kind));
        json_object_set_new(e, "version", json_string(r->version));
        json_object_set_new(e, "agent_id", json_integer((json_int_t)r->agent_id));
        json_object_set_new(e, "changed", json_boolean(r->changed));
        json_object_set_new(e, "seconds", json_real(r->seconds));
        json_array_append_new(arr, e);
    }
    json_object_set_new(o, "hosts", arr);
    return o;
}

json_t *coll_prov_job(struct coll_prov *p, uint64_t id)
{
    json_t *out = NULL;
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->njobs; i++)
        if (p->jobs[i]->id == id) out = job_json(p->jobs[i], true);
    pthread_mutex_unlock(&p->mu);
    return out;
}

json_t *coll_prov_jobs(struct coll_prov *p)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&p->mu);
    for (size_t i = p->njobs; i-- > 0;) json_array_append_new(arr, job_json(p->jobs[i], false));
    pthread_mutex_unlock(&p->mu);
    return json_pack("{s:o}", "jobs", arr);
}

void coll_prov_close(struct coll_prov *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->njobs; i++) job_free(p->jobs[i]);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
