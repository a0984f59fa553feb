/* /api/v1/targets: agentless targets (collector/agentless/poller.h). The
 * credentials in a request body are wiped as soon as they are sealed;
 * responses never carry them, only the names of the fields that are set. */
#include "agentless/cred.h"
#include "agentless/poller.h"
#include "api_int.h"
#include "config.h"
#include "pt/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool enabled(struct api_req *rq, struct api_resp *rs)
{
    if (rq->ctx->agl) return true;
    api_error(rs, 503, "unavailable",
              "agentless polling is not enabled in this collector "
              "(agentless.enabled)");
    return false;
}

static bool parse_id(const char *text, struct api_resp *rs, int64_t *id)
{
    char *end;
    long long v = strtoll(text, &end, 10);
    if (*text < '1' || *text > '9' || *end || v <= 0) {
        api_error(rs, 400, "bad_request", "target id \"%.64s\": expected a positive integer", text);
        return false;
    }
    *id = v;
    return true;
}

/* Maps an agl_api_* result to a response. */
static void answer(struct api_resp *rs, int rc, int ok_status, json_t *j, const char *err,
                   const char *idtext)
{
    if (rc == 0) {
        api_json(rs, ok_status, j);
    } else if (rc == -EINVAL) {
        api_error(rs, 400, "bad_request", "%s", err);
    } else if (rc == -EPERM) {
        api_error(rs, 409, "conflict", "%s",
                  err && err[0] ? err
                                : "the target is defined in agentless.targets of the collector's "
                                  "configuration: change it there");
    } else if (rc == -ENOENT) {
        api_error(rs, 404, "not_found", "no agentless target %.64s", idtext ? idtext : "");
    } else {
        api_error(rs, 500, "internal", "%s", err && err[0] ? err : pt_strerror(rc));
    }
}

/* Secrets arrive in the body: gone from memory once handled. */
static void wipe_body(struct api_req *rq)
{
    if (rq->body) agl_wipe(rq->body, rq->body_len);
}

void api_targets_collection(struct api_req *rq, struct api_resp *rs)
{
    if (!enabled(rq, rs)) return;
    if (rq->method[0] == 'G') {
        static const char *const allowed[] = {"ns", "mcis", NULL};
        if (!api_args_known(rq, rs, allowed)) return;
        json_t *arr;
        int rc = agl_api_list(rq->ctx->agl, api_arg(rq, "ns"), api_arg(rq, "mcis"), &arr);
        answer(rs, rc, 200, rc ? NULL : json_pack("{s:o}", "targets", arr), NULL, NULL);
        return;
    }
    if (!rq->body_len) {
        api_error(rs, 400, "bad_request",
                  "a JSON body {\"ns\", \"mcis\", \"vm\", \"driver\", \"instance\", "
                  "\"credentials\", ...} is required (docs/api.md)");
        return;
    }
    char err[1024] = "";
    json_t *j = NULL;
    int rc = agl_api_create(rq->ctx->agl, rq->body, rq->body_len, &j, err, sizeof err);
    wipe_body(rq);
    answer(rs, rc, 201, j, err, NULL);
}

void api_targets_item(struct api_req *rq, struct api_resp *rs, const char *idtext)
{
    if (!enabled(rq, rs)) return;
    int64_t id;
    if (!parse_id(idtext, rs, &id)) {
        wipe_body(rq);
        return;
    }
    char err[1024] = "";
    json_t *j = NULL;
    int rc;
    switch (rq->method[0]) {
    case 'G':
        rc = agl_api_get(rq->ctx->agl, id, &j);
        answer(rs, rc, 200, j, NULL, idtext);
        return;
    case 'P':
        if (!rq->body_len) {
            api_error(rs, 400, "bad_request",
                      "a JSON body with the whole target is required (credentials may be "
                      "left out to keep the stored ones)");
            return;
        }
        rc = agl_api_update(rq->ctx->agl, id, rq->body, rq->body_len, &j, err, sizeof err);
        wipe_body(rq);
        answer(rs, rc, 200, j, err, idtext);
        return;
    default: /* DELETE */
        rc = agl_api_delete(rq->ctx->agl, id);
        if (rc == 0) {
            rs->status = 204;
            return;
        }
        answer(rs, rc, 204, NULL, rc == -EPERM ? NULL : "cannot delete the target from targets.db",
               idtext);
    }
}

void api_targets_poll(struct api_req *rq, struct api_resp *rs, const char *idtext)
{
    if (!enabled(rq, rs)) return;
    int64_t id;
    if (!parse_id(idtext, rs, &id)) return;
    json_t *j = NULL;
    int rc = agl_api_poll_now(rq->ctx->agl, id, &j);
    answer(rs, rc, 202, j, NULL, idtext);
}
