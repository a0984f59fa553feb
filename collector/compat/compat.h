/* The CB-Dragonfly compatible REST API: the routes CB-Tumblebug calls under
 * /dragonfly, answered with CB-Dragonfly's JSON shapes from Pantala's own
 * registry, store, provisioner and alerting, so an operator swaps
 * CB-Dragonfly for pantalad by changing one URL
 * (docs/cb-dragonfly-compat.md).
 *
 * What CB-Dragonfly keeps and Pantala has no place for (its monitoring
 * config object, the agents' public IP and service type) is kept here, in
 * data_dir/dragonfly.json. Agent installs run the provisioner on a thread
 * per request while the HTTP connection waits, suspended. */
#ifndef COLL_COMPAT_H
#define COLL_COMPAT_H

#include <stdbool.h>
#include <stddef.h>

struct coll_compat;

struct coll_compat_opts {
    const char *data_dir;
    bool open; /* compat.auth "none": no bearer token asked */
    /* Agent installs (POST/DELETE /dragonfly/agent) through libpantala-prov;
     * packages NULL: provisioning is disabled and installs are refused. */
    const char *packages, *known_hosts;
    const char *collector; /* host:port the VMs send to; NULL: the registration's answer */
    const char *prefix;    /* tarball into this directory as the SSH user; NULL: system */
    bool accept_new;
    const char *token; /* one of this collector's API tokens, for registration */
};

/* Loads data_dir/dragonfly.json (absent: CB-Dragonfly's defaults). The
 * strings of o must outlive the returned object. On failure returns <0 with
 * a message in err. */
int coll_compat_open(struct coll_compat **out, const struct coll_compat_opts *o, char *err,
                     size_t errlen);
/* The URL of this collector's own API, once it listens (registrations). */
void coll_compat_set_api(struct coll_compat *c, const char *url);
/* Refuses new installs, waits for running ones (each has answered its
 * client when this returns; bounded by the provisioner's timeouts) and
 * frees c. Call before coll_api_stop(). */
void coll_compat_close(struct coll_compat *c);

#endif
