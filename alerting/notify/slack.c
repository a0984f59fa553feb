/* Slack incoming webhook: a one-line text (shown in notifications) and an
 * attachment coloured by level with the labels, value and threshold. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "notify_int.h"

static const char *const slack_keys[] = {"url",     "channel",      "username", "icon_emoji",
                                         "timeout", "tls_insecure", NULL};

static int slack_validate(const json_t *s, char *err, size_t errlen)
{
    int rc = notify_check_keys(s, slack_keys, err, errlen);
    if (rc == 0) rc = notify_check_str(s, "url", true, notify_http_schemes, err, errlen);
    if (rc == 0) rc = notify_check_str(s, "channel", false, NULL, err, errlen);
    if (rc == 0) rc = notify_check_str(s, "username", false, NULL, err, errlen);
    if (rc == 0) rc = notify_check_str(s, "icon_emoji", false, NULL, err, errlen);
    if (rc == 0) rc = notify_check_http_common(s, err, errlen);
    return rc;
}

/* Slack's own palette: danger, warning, good. */
static const char *colour(const char *status, const char *level)
{
    if (strcmp(status, "resolved") == 0) return "#2eb886";
    if (strcmp(level, "critical") == 0) return "#d50200";
    return "#daa038";
}

static void fmt_num(double v, char *buf, size_t len)
{
    if (isfinite(v))
        snprintf(buf, len, "%g", v);
    else
        snprintf(buf, len, "n/a");
}

static int slack_build(const json_t *ev, const char *handler, const json_t *s,
                       struct notify_req *req, char *err, size_t errlen)
{
    const char *status = notify_ev_str(ev, "status"), *level = notify_ev_str(ev, "level");
    const char *rule = notify_ev_str(ev, "rule");

    /* "vm=vm-1, mcis=web" from the labels, bounded. */
    char labels[1024] = "";
    size_t off = 0;
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(ev, "labels"), k, v)
    {
        if (off >= sizeof(labels)) break;
        int n = snprintf(labels + off, sizeof(labels) - off, "%s%s=%s", off ? ", " : "", k,
                         json_string_value(v) ? json_string_value(v) : "");
        if (n < 0) break;
        off += (size_t)n;
    }
    char upper[16];
    snprintf(upper, sizeof(upper), "%s", level);
    for (char *p = upper; *p; p++) *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);

    char text[1400];
    snprintf(text, sizeof(text), "[%s:%s] %s (%s)",
             strcmp(status, "resolved") == 0   ? "RESOLVED"
             : strcmp(status, "flapping") == 0 ? "FLAPPING"
                                               : "FIRING",
             upper, rule, labels);
    char value[32], thr[32], starts[48];
    fmt_num(notify_ev_num(ev, "value"), value, sizeof(value));
    fmt_num(notify_ev_num(ev, "threshold"), thr, sizeof(thr));
    notify_rfc3339(notify_ev_ns(ev, "starts_at_ns"), false, starts, sizeof(starts));
    const char *summary =
        json_string_value(json_object_get(json_object_get(ev, "annotations"), "summary"));

    json_t *fields = json_pack("[{s:s,s:s,s:b}, {s:s,s:s,s:b}, {s:s,s:s,s:b}]", "title", "Value",
                               "value", value, "short", 1, "title", "Threshold", "value", thr,
                               "short", 1, "title", "Since", "value", starts, "short", 1);
    json_t *att =
        json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:I}", "color", colour(status, level), "fallback",
                  text, "title", rule, "text", summary ? summary : labels, "fields", fields,
                  "footer", "pantala", "ts", (json_int_t)(notify_ev_ns(ev, "at_ns") / 1000000000));
    json_t *body = att ? json_pack("{s:s, s:[o]}", "text", text, "attachments", att) : NULL;
    if (!body) return -ENOMEM;
    static const char *const opt[] = {"channel", "username", "icon_emoji"};
    for (size_t i = 0; i < 3; i++) {
        const char *o = notify_setting(s, opt[i]);
        if (o) json_object_set_new(body, opt[i], json_string(o));
    }
    int rc = notify_http_json(req, notify_setting(s, "url"), s, notify_dump(body), err, errlen);
    json_decref(body);
    return rc;
}

const struct notify_ops notify_slack_ops = {
    .name = "slack",
    .validate = slack_validate,
    .build = slack_build,
};
