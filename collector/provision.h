/* Provisioning jobs for the API (POST /api/v1/provision): each job runs
 * libpantala-prov over its hosts on a thread of its own, and its per-host
 * progress and results are kept in memory for GET /api/v1/provision/{job}
 * (the last COLL_PROV_KEEP jobs).
 *
 * SSH keys are given by reference: a file name inside keys_dir on the
 * collector host, never the key itself, and never a path outside that
 * directory. Registration goes through the collector's own API on
 * loopback, exactly as the CLI does. */
#ifndef COLL_PROVISION_H
#define COLL_PROVISION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define COLL_PROV_KEEP 100

struct coll_prov_opts {
    const char *keys_dir;    /* SSH private keys the API may use */
    const char *known_hosts; /* host keys */
    const char *packages;    /* the agent packages */
    const char *collector;   /* UDP address VMs send to; NULL: must be in each request */
    bool accept_new;         /* trust unknown host keys */
    int parallel;
    const char *token; /* one of this collector's API tokens, for registration */
};

struct coll_prov;

int coll_prov_open(struct coll_prov **out, const struct coll_prov_opts *o);

/* The URL of this collector's own API (known once it listens), which jobs
 * use to register agents. */
void coll_prov_set_api(struct coll_prov *p, const char *url);

/* Validates a request body and starts the job: 0 with *id, or -EINVAL with a
 * message naming the bad key in err. */
int coll_prov_submit(struct coll_prov *p, const char *body, size_t len, uint64_t *id, char *err,
                     size_t errlen);

/* The job as JSON (new reference), NULL when unknown. */
json_t *coll_prov_job(struct coll_prov *p, uint64_t id);
/* Every kept job, newest first, without per-host details. */
json_t *coll_prov_jobs(struct coll_prov *p);

/* Waits for running jobs (their SSH and HTTP timeouts bound the wait) and
 * frees p. */
void coll_prov_close(struct coll_prov *p);

#endif
