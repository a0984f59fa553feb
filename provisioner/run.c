/* Many hosts at once: a fixed pool of threads taking hosts in order. */
#include "pt/prov.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "ssh.h"

static const char *const action_names[] = {"install", "upgrade", "uninstall", "status"};

int prov_action_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (s && !strcmp(s, action_names[i])) return i;
    return -1;
}

const char *prov_action_name(enum prov_action a)
{
    return (unsigned)a < 4 ? action_names[a] : "?";
}

const char *prov_state_name(enum prov_state s)
{
    static const char *const n[] = {"pending", "running", "ok", "failed"};
    return (unsigned)s < 4 ? n[s] : "?";
}

int prov_global_init(void)
{
    int rc = prov_ssh_global_init();
    return rc ? rc : prov_coll_global_init();
}

struct pool {
    pthread_mutex_t mu;
    size_t next, n, failed;
    enum prov_action a;
    const struct prov_host *hosts;
    const struct prov_opts *o;
    struct prov_result *results;
    prov_progress_fn fn;
    void *ud;
};

static void *worker(void *arg)
{
    struct pool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        size_t i = p->next < p->n ? p->next++ : p->n;
        pthread_mutex_unlock(&p->mu);
        if (i == p->n) return NULL;
        if (prov_run_one(p->a, &p->hosts[i], p->o, &p->results[i], p->fn, p->ud, i)) {
            pthread_mutex_lock(&p->mu);
            p->failed++;
            pthread_mutex_unlock(&p->mu);
        }
    }
}

size_t prov_run_many(enum prov_action a, const struct prov_host *hosts, size_t n,
                     const struct prov_opts *o, struct prov_result *results, prov_progress_fn fn,
                     void *ud)
{
    struct pool p = {
        .n = n, .a = a, .hosts = hosts, .o = o, .results = results, .fn = fn, .ud = ud};
    pthread_mutex_init(&p.mu, NULL);
    for (size_t i = 0; i < n; i++) memset(&results[i], 0, sizeof results[i]);
    size_t nt = o->parallel > 0 ? (size_t)o->parallel : 8;
    if (nt > n) nt = n;
    pthread_t *t = calloc(nt ? nt : 1, sizeof *t);
    size_t started = 0;
    for (; t && started < nt; started++)
        if (pthread_create(&t[started], NULL, worker, &p)) break;
    if (started == 0) worker(&p); /* no thread could start: do it here */
    for (size_t i = 0; i < started; i++) pthread_join(t[i], NULL);
    free(t);
    pthread_mutex_destroy(&p.mu);
    return p.failed;
}
