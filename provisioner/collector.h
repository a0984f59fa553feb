/* The provisioner's calls to the collector's HTTP API (docs/api.md):
 * register an agent (which issues its id and key), look at it, delete it.
 * libcurl does HTTP, jansson JSON. Thread-safe (one curl handle per call);
 * prov_coll_global_init() once per process first. */
#ifndef PROV_COLLECTOR_H
#define PROV_COLLECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct prov_collector {
    const char *api_url; /* e.g. http://10.0.0.5:9090 */
    const char *token;   /* bearer token (api.tokens of pantalad) */
    int timeout_ms;      /* per request; 10 s when 0 */
};

int prov_coll_global_init(void);

/* What POST /api/v1/agents returns that the host needs. */
struct prov_agent_reg {
    uint64_t id;
    char *config_json; /* the ready-made agent configuration (malloc'ed) */
};
void prov_agent_reg_free(struct prov_agent_reg *r);

/* Registers ns/mcis/vm. interval ("10s", NULL: the agent's default) and
 * collector_udp ("host:port", NULL: what the collector says) are written
 * into the configuration. Returns 0, -EEXIST with *existing set when the
 * VM already has an agent, or <0 with err. */
int prov_coll_register(const struct prov_collector *c, const char *ns, const char *mcis,
                       const char *vm, const char *csp, const char *interval,
                       const char *collector_udp, struct prov_agent_reg *out, uint64_t *existing,
                       char *err, size_t errlen);

/* One agent as the collector sees it. */
struct prov_agent_state {
    bool exists;
    char ns[130], mcis[130], vm[130];
    char status[16];   /* up, down, never */
    uint64_t accepted; /* frames accepted */
};

/* GET /api/v1/agents/{id}: 0 (exists false on 404) or <0 with err. */
int prov_coll_agent(const struct prov_collector *c, uint64_t id, struct prov_agent_state *out,
                    char *err, size_t errlen);

/* The id of the agent registered as ns/mcis/vm, 0 when none; <0 on error. */
int prov_coll_find(const struct prov_collector *c, const char *ns, const char *mcis, const char *vm,
                   uint64_t *id, char *err, size_t errlen);

/* DELETE /api/v1/agents/{id}; a missing agent is not an error. */
int prov_coll_delete(const struct prov_collector *c, uint64_t id, char *err, size_t errlen);

#endif
