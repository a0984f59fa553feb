/* Alertmanager's own API: POST <url>/api/v2/alerts with one postableAlert.
 * Firing alerts are sent without endsAt, so Alertmanager applies its
 * resolve_timeout (default 5 min): a rule's `repeat` should be shorter, as
 * Prometheus re-sends its firing alerts. Resolved = endsAt at resolve time,
 * which is in the past when it arrives. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "notify_int.h"

static const char *const am_keys[] = {"url",     "username",     "password", "headers",
                                      "timeout", "tls_insecure", NULL};

static int am_validate(const json_t *s, char *err, size_t errlen)
{
    int rc = notify_check_keys(s, am_keys, err, errlen);
    if (rc == 0) rc = notify_check_str(s, "url", true, notify_http_schemes, err, errlen);
    if (rc == 0) rc = notify_check_str(s, "username", false, NULL, err, errlen);
    if (rc == 0) rc = notify_check_str(s, "password", false, NULL, err, errlen);
    if (rc == 0 && json_object_get(s, "password") && !json_object_get(s, "username")) {
        snprintf(err, errlen, "username: required when password is set");
        rc = -EINVAL;
    }
    if (rc == 0) rc = notify_check_http_common(s, err, errlen);
    return rc;
}

/* "http://am:9093" and "http://am:9093/" -> ".../api/v2/alerts"; a URL that
 * already names the endpoint is kept. */
static char *endpoint(const char *base)
{
    static const char path[] = "/api/v2/alerts";
    size_t n = strlen(base), pl = sizeof(path) - 1;
    if (n >= pl && strcmp(base + n - pl, path) == 0) return strdup(base);
    while (n > 0 && base[n - 1] == '/') n--;
    char *u = malloc(n + pl + 1);
    if (!u) return NULL;
    memcpy(u, base, n);
    memcpy(u + n, path, pl + 1);
    return u;
}

static int am_build(const json_t *ev, const char *handler, const json_t *s, struct notify_req *req,
                    char *err, size_t errlen)
{
    char starts[48], ends[48];
    notify_rfc3339(notify_ev_ns(ev, "starts_at_ns"), false, starts, sizeof(starts));
    json_t *alert =
        json_pack("{s:o, s:o, s:s}", "labels", notify_am_labels(ev), "annotations",
                  notify_am_annotations(ev), "generatorURL", notify_ev_str(ev, "generator_url"));
    if (!alert) return -ENOMEM;
    if (notify_ev_ns(ev, "starts_at_ns") != 0)
        json_object_set_new(alert, "startsAt", json_string(starts));
    if (strcmp(notify_ev_str(ev, "status"), "resolved") == 0) {
        int64_t end_ns = notify_ev_ns(ev, "ends_at_ns");
        if (end_ns == 0) end_ns = notify_ev_ns(ev, "at_ns");
        notify_rfc3339(end_ns, false, ends, sizeof(ends));
        json_object_set_new(alert, "endsAt", json_string(ends));
    }
    json_t *body = json_pack("[o]", alert);
    if (!body) return -ENOMEM;
    char *url = endpoint(notify_setting(s, "url"));
    int rc = url ? notify_http_json(req, url, s, notify_dump(body), err, errlen) : -ENOMEM;
    free(url);
    json_decref(body);
    if (rc < 0) return rc;
    const char *user = notify_setting(s, "username"), *pass = notify_setting(s, "password");
    if (user) {
        req->username = strdup(user);
        req->password = strdup(pass ? pass : "");
        if (!req->username || !req->password) return -ENOMEM;
    }
    return notify_add_header(req, "Idempotency-Key", notify_ev_str(ev, "id"));
}

const struct notify_ops notify_alertmanager_ops = {
    .name = "alertmanager",
    .validate = am_validate,
    .build = am_build,
};
