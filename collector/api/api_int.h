/* Private to collector/api/: the request/response model the route files
 * share. */
#ifndef COLL_API_INT_H
#define COLL_API_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <microhttpd.h>

#include "api.h"

#define API_MAX_BODY (1u << 20)
#define API_MAX_SEGS 12

struct api_resp;

struct api_req {
    struct MHD_Connection *conn;
    const struct coll_api_ctx *ctx;
    const char *method;
    const char *url;
    char *body;
    size_t body_len;
    bool body_too_large;
    char path[1024];
    char *seg[API_MAX_SEGS];
    size_t nseg;
    /* An answer given later, from another thread (api_defer/api_resume):
     * late is what that thread leaves before it resumes the connection. */
    bool deferred;
    struct api_resp *late;
};

struct api_resp {
    int status;
    json_t *json; /* rendered as the body when set */
    char *text;   /* else this heap text */
    size_t text_len;
    const char *ctype;
    const char *allow; /* Allow header for 405 */
};

/* Sets an error response: {"error": {"code": code, "message": ...}}. */
void api_error(struct api_resp *rs, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Sets a JSON response (takes the reference). */
void api_json(struct api_resp *rs, int status, json_t *j);

/* The value of query parameter name, or NULL. */
const char *api_arg(struct api_req *rq, const char *name);
/* Fails with 400 naming the first query parameter not in allowed (NULL
 * terminated); returns false then. */
bool api_args_known(struct api_req *rq, struct api_resp *rs, const char *const *allowed);

/* Whether the request carries one of the API's bearer tokens. */
bool api_authorized(struct api_req *rq);

/* Answering later: a handler calls api_defer() (and leaves rs alone), hands
 * rq to a thread of its own, which calls api_resume() exactly once with the
 * answer (status and a JSON body, whose reference it takes) and touches rq
 * no more. The connection waits meanwhile without holding an HTTP thread.
 * Whoever defers must see every api_resume() done before coll_api_stop(). */
void api_defer(struct api_req *rq);
void api_resume(struct api_req *rq, int status, json_t *body);

/* Formats a time for JSON (RFC 3339 UTC, fraction only when non-zero). */
json_t *api_time(int64_t ns);
/* A stored field's value as JSON (an unsigned beyond int64 as a real). */
struct pt_field;
json_t *api_field_json(const struct pt_field *f);

/* Appends the per-agent delivery series (routes_agents.c) to the /metrics
 * text *text of *len bytes, growing it. */
int api_agents_prometheus(struct coll_registry *reg, char **text, size_t *len);

/* Route handlers. */
void api_agents_collection(struct api_req *rq, struct api_resp *rs);
void api_agents_item(struct api_req *rq, struct api_resp *rs, const char *id);
void api_vm_metrics(struct api_req *rq, struct api_resp *rs, const char *ns, const char *mcis,
                    const char *vm, const char *measurement);
void api_vm_latest(struct api_req *rq, struct api_resp *rs, const char *ns, const char *mcis,
                   const char *vm);
void api_mcis_metrics(struct api_req *rq, struct api_resp *rs, const char *ns, const char *mcis,
                      const char *measurement);
void api_mcis_latest(struct api_req *rq, struct api_resp *rs, const char *ns, const char *mcis);
void api_healthz(struct api_req *rq, struct api_resp *rs);
void api_provision_collection(struct api_req *rq, struct api_resp *rs);
void api_provision_item(struct api_req *rq, struct api_resp *rs, const char *id);
/* routes_alerts.c */
void api_rules_collection(struct api_req *rq, struct api_resp *rs);
void api_rules_item(struct api_req *rq, struct api_resp *rs, const char *name);
void api_rules_dryrun(struct api_req *rq, struct api_resp *rs, const char *name); /* NULL: body */
void api_handlers_collection(struct api_req *rq, struct api_resp *rs);
void api_handlers_item(struct api_req *rq, struct api_resp *rs, const char *name);
void api_silences_collection(struct api_req *rq, struct api_resp *rs);
void api_silences_item(struct api_req *rq, struct api_resp *rs, const char *id);
void api_alerts_active(struct api_req *rq, struct api_resp *rs);
void api_alerts_history(struct api_req *rq, struct api_resp *rs);
void api_prometheus(struct api_req *rq, struct api_resp *rs);
void api_store(struct api_req *rq, struct api_resp *rs);
void api_targets_collection(struct api_req *rq, struct api_resp *rs);
void api_targets_item(struct api_req *rq, struct api_resp *rs, const char *id);
void api_targets_poll(struct api_req *rq, struct api_resp *rs, const char *id);
/* Everything under /dragonfly (collector/compat/). */
void api_compat(struct api_req *rq, struct api_resp *rs);

#endif
