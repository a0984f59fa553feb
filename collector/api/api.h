/* The HTTP API (libmicrohttpd on its own threads), DESIGN §11 and
 * docs/api.md. JSON over HTTP under /api/v1, bearer-token auth (every route
 * but /healthz), errors as {"error": {"code": ..., "message": ...}}. */
#ifndef COLL_API_H
#define COLL_API_H

#include <stddef.h>
#include <stdint.h>

#include "pt/alert.h"
#include "registry.h"
#include "stats.h"
#include "store/store.h"
#include "writer.h"

struct coll_compat;

struct coll_api_ctx {
    struct coll_registry *reg;
    const struct store_ops *ops;
    struct store *store;
    struct coll_stats *stats;
    struct coll_writer *writer; /* for GET /api/v1/store; may be NULL */
    const char *const *tokens;
    size_t ntokens;
    const char *udp_host; /* as configured; 0.0.0.0 means "ask the Host header" */
    uint16_t udp_port;
    int64_t start_ns;
    struct coll_prov *prov;          /* provisioning jobs; NULL when disabled */
    struct agl *agl;                 /* agentless targets; NULL when disabled */
    struct coll_compat *compat;      /* the /dragonfly routes; NULL when disabled */
    struct alert_engine *alerts;     /* NULL: alerting off (its routes answer 503) */
    struct alert_notifier *notifier; /* its outbox, for the counters at /metrics */
};

struct coll_api;
struct coll_prov;
struct agl;
struct coll_compat;

/* Starts serving host:port (port 0: any). On failure returns <0 with a
 * message in err. ctx must outlive the server. */
int coll_api_start(struct coll_api **out, const struct coll_api_ctx *ctx, const char *host,
                   uint16_t port, char *err, size_t errlen);
int coll_api_port(const struct coll_api *a);
void coll_api_stop(struct coll_api *a);

#endif
