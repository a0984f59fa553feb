/* Private to collector/compat/: the shared state and the route files'
 * entry points. Every answer here is CB-Dragonfly's: JSON bodies, errors as
 * {"message": "..."} (pkg/api/rest/common.go SetMessage). */
#ifndef COLL_COMPAT_INT_H
#define COLL_COMPAT_INT_H

#include <pthread.h>
#include <stdbool.h>

#include <jansson.h>

#include "api/api_int.h"
#include "compat.h"
#include "form.h"

#define COMPAT_MAX_JOBS 64

struct coll_compat {
    struct coll_compat_opts o;
    char path[1024]; /* data_dir/dragonfly.json */
    pthread_mutex_t mu;
    pthread_cond_t idle;
    json_t *config;   /* the monitoring config object, as GET /dragonfly/config shows it */
    json_t *agents;   /* agent metadata by CB-Dragonfly UUID, see compat_agent_uuid() */
    json_t *tasks;    /* alert tasks by name, as CB-Dragonfly shows them */
    json_t *handlers; /* event handlers' options by "type/name" */
    char api_url[300];
    size_t running;                  /* agent install/uninstall jobs */
    char busy[COMPAT_MAX_JOBS][400]; /* ns/mcis/vm of each running job, "" when free */
    bool closing;
};

/* Sets {"message": ...} with status. */
void compat_error(struct api_resp *rs, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A {"message": ...} body (new reference). */
json_t *compat_message(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Writes config and agents to dragonfly.json (tmp file, then rename).
 * Call with mu held. */
int compat_save(struct coll_compat *c);
/* The body as a JSON object: JSON, or application/x-www-form-urlencoded
 * (CB-Dragonfly's echo handlers read form values); NULL with a 400 set. */
json_t *compat_body(struct api_req *rq, struct api_resp *rs);
/* Counts an answer of the /dragonfly routes (pantala_compat_requests_total). */
void compat_count(struct api_req *rq, int status);
/* Method check: false with a 405 set. */
bool compat_method(struct api_req *rq, struct api_resp *rs, const char *allow);

/* CB-Dragonfly's agent UUID: {ns}_{service_type}_{mcis}_{vm}_{csp}
 * (pkg/api/core/agent/common/metadata.go MakeAgentUUID). */
void compat_agent_uuid(char *buf, size_t len, const char *ns, const char *service_type,
                       const char *mcis, const char *vm, const char *csp);
/* The agent interval installs use, from mcis_agent_interval (seconds). */
long compat_agent_interval(struct coll_compat *c);

/* routes_config.c */
void compat_config(struct api_req *rq, struct api_resp *rs, bool reset);
json_t *compat_config_defaults(void);

/* routes_agent.c */
void compat_agent(struct api_req *rq, struct api_resp *rs);
void compat_agents_metadata(struct api_req *rq, struct api_resp *rs);
void compat_agent_metadata(struct api_req *rq, struct api_resp *rs);

/* routes_metric.c */
void compat_ondemand(struct api_req *rq, struct api_resp *rs, const char *ns, const char *mcis,
                     const char *vm, const char *metric);
void compat_info(struct api_req *rq, struct api_resp *rs, const char *ns, const char *mcis,
                 const char *vm, const char *metric);

/* routes_alert.c (alerting: the rules engine of rq->ctx->alerts) */
void compat_alert_tasks(struct api_req *rq, struct api_resp *rs);
void compat_alert_task(struct api_req *rq, struct api_resp *rs, const char *id, bool events);
void compat_eventhandlers(struct api_req *rq, struct api_resp *rs);
void compat_eventhandler(struct api_req *rq, struct api_resp *rs, const char *type,
                         const char *name);

#endif
