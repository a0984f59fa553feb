/* Alertmanager-compatible webhook payload (version "4"), for receivers
 * written against Alertmanager's webhook_config. One alert per message:
 * Pantala notifies per event, so the "group" is that alert. */
#include <errno.h>
#include <string.h>

#include "notify_int.h"

static const char *const amw_keys[] = {
    "url", "receiver", "external_url", "headers", "timeout", "tls_insecure", NULL};

static int amw_validate(const json_t *s, char *err, size_t errlen)
{
    int rc = notify_check_keys(s, amw_keys, err, errlen);
    if (rc == 0) rc = notify_check_str(s, "url", true, notify_http_schemes, err, errlen);
    if (rc == 0) rc = notify_check_str(s, "receiver", false, NULL, err, errlen);
    if (rc == 0) rc = notify_check_str(s, "external_url", false, notify_http_schemes, err, errlen);
    if (rc == 0) rc = notify_check_http_common(s, err, errlen);
    return rc;
}

/* Flapping is reported as firing: Alertmanager knows only these two. */
static const char *am_status(const json_t *ev)
{
    return strcmp(notify_ev_str(ev, "status"), "resolved") == 0 ? "resolved" : "firing";
}

static json_t *am_alert(const json_t *ev, const char *status)
{
    char starts[48], ends[48];
    notify_rfc3339(notify_ev_ns(ev, "starts_at_ns"), true, starts, sizeof(starts));
    int64_t end_ns = 0;
    if (strcmp(status, "resolved") == 0) {
        end_ns = notify_ev_ns(ev, "ends_at_ns");
        if (end_ns == 0) end_ns = notify_ev_ns(ev, "at_ns");
    }
    /* While firing Alertmanager sends its zero time, not null. */
    notify_rfc3339(end_ns, true, ends, sizeof(ends));
    return json_pack("{s:s, s:o, s:o, s:s, s:s, s:s, s:s}", "status", status, "labels",
                     notify_am_labels(ev), "annotations", notify_am_annotations(ev), "startsAt",
                     starts, "endsAt", ends, "generatorURL", notify_ev_str(ev, "generator_url"),
                     "fingerprint", notify_ev_str(ev, "fingerprint"));
}

static int amw_build(const json_t *ev, const char *handler, const json_t *s, struct notify_req *req,
                     char *err, size_t errlen)
{
    const char *status = am_status(ev);
    const char *receiver = notify_setting(s, "receiver");
    if (!receiver) receiver = handler ? handler : "pantala";
    const char *ext = notify_setting(s, "external_url");
    const char *rule = notify_ev_str(ev, "rule");

    json_t *alert = am_alert(ev, status);
    if (!alert) return -ENOMEM;
    /* One alert: its labels and annotations are the common ones. */
    json_t *common_labels = json_deep_copy(json_object_get(alert, "labels"));
    json_t *common_ann = json_deep_copy(json_object_get(alert, "annotations"));
    /* Alertmanager's group key is "<route matchers>:<group labels>"; for
     * its root route grouping by alertname that is this. */
    char gk[512];
    snprintf(gk, sizeof(gk), "{}:{alertname=\"%s\"}", rule);
    json_t *body =
        json_pack("{s:s, s:s, s:s, s:s, s:{s:s}, s:o, s:o, s:s, s:i, s:[o]}", "version", "4",
                  "groupKey", gk, "status", status, "receiver", receiver, "groupLabels",
                  "alertname", rule, "commonLabels", common_labels, "commonAnnotations", common_ann,
                  "externalURL", ext ? ext : "", "truncatedAlerts", 0, "alerts", alert);
    if (!body) return -ENOMEM;
    int rc = notify_http_json(req, notify_setting(s, "url"), s, notify_dump(body), err, errlen);
    json_decref(body);
    if (rc == 0) rc = notify_add_header(req, "Idempotency-Key", notify_ev_str(ev, "id"));
    return rc;
}

const struct notify_ops notify_am_webhook_ops = {
    .name = "alertmanager_webhook",
    .validate = amw_validate,
    .build = amw_build,
};
