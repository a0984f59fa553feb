/* /api/v1/provision: provisioning jobs (collector/provision.h). */
#include "api_int.h"
#include "provision.h"

#include <errno.h>
#include <stdlib.h>

void api_provision_collection(struct api_req *rq, struct api_resp *rs)
{
    if (!rq->ctx->prov) {
        api_error(rs, 503, "unavailable", "provisioning is not enabled in this collector");
        return;
    }
    if (rq->method[0] == 'G') {
        api_json(rs, 200, coll_prov_jobs(rq->ctx->prov));
        return;
    }
    if (!rq->body_len) {
        api_error(rs, 400, "bad_request",
                  "a JSON body {\"action\", \"vms\": [...], \"collector\"} is required");
        return;
    }
    char err[1024];
    uint64_t id;
    int rc = coll_prov_submit(rq->ctx->prov, rq->body, rq->body_len, &id, err, sizeof err);
    if (rc == -EBUSY) {
        api_error(rs, 503, "busy", "%s", err);
        return;
    }
    if (rc) {
        api_error(rs, 400, "bad_request", "%s", err);
        return;
    }
    char url[64];
    snprintf(url, sizeof url, "/api/v1/provision/%llu", (unsigned long long)id);
    api_json(rs, 202,
             json_pack("{s:I,s:s,s:s}", "job", (json_int_t)id, "state", "running", "url", url));
}

void api_provision_item(struct api_req *rq, struct api_resp *rs, const char *idtext)
{
    if (!rq->ctx->prov) {
        api_error(rs, 503, "unavailable", "provisioning is not enabled in this collector");
        return;
    }
    char *end;
    unsigned long long id = strtoull(idtext, &end, 10);
    json_t *j = *end ? NULL : coll_prov_job(rq->ctx->prov, id);
    if (!j) {
        api_error(rs, 404, "not_found",
                  "no provisioning job %.64s (jobs are kept in memory, the "
                  "last %d)",
                  idtext, COLL_PROV_KEEP);
        return;
    }
    api_json(rs, 200, j);
}
