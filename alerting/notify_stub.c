/* Stand-in for the notify side (alerting/notify/, pt/alert_notify.h) while
 * it is not in this tree: handler types and a light settings check, and an
 * "outbox" that only logs. CMake builds this file only when
 * alerting/notify/ does not exist, so the real notifiers replace it. */
#include "pt/alert_notify.h"
#include "pt/log.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[] = {"webhook", "alertmanager_webhook", "alertmanager", "slack",
                                         "email"};

int alert_handler_type_parse(const char *s)
{
    for (int i = 0; i < 5; i++)
        if (s && !strcmp(s, type_names[i])) return i;
    return -1;
}

const char *alert_handler_type_name(enum alert_handler_type t)
{
    return (unsigned)t < 5 ? type_names[t] : "unknown";
}

int alert_handler_validate(enum alert_handler_type type, const char *settings_json, char *err,
                           size_t errlen)
{
    json_t *j = json_loads(settings_json, 0, NULL);
    int rc = 0;
    const char *key = type == ALERT_H_EMAIL ? "to" : "url";
    if (!json_is_object(j)) {
        snprintf(err, errlen, "expected an object");
        rc = -EINVAL;
    } else if (!json_is_string(json_object_get(j, key)) &&
               !json_is_array(json_object_get(j, key))) {
        snprintf(err, errlen, "\"%s\" is required", key);
        rc = -EINVAL;
    }
    json_decref(j);
    return rc;
}

struct alert_notifier {
    int unused;
};

int alert_notifier_open(struct alert_notifier **out, const char *path, char *err, size_t errlen)
{
    (void)path;
    (void)err;
    (void)errlen;
    *out = calloc(1, sizeof **out);
    PT_WARN("alert", "notifiers are not built in: events are only kept in the alert history");
    return *out ? 0 : -ENOMEM;
}

int alert_notify_submit(struct alert_notifier *n, const struct alert_event *ev,
                        const struct alert_handler *handlers, size_t nhandlers)
{
    (void)n;
    (void)handlers;
    PT_INFO("alert", "event %s (%s) for %zu handler(s): no notifier built in", ev->id, ev->rule,
            nhandlers);
    return 0;
}

void alert_notifier_close(struct alert_notifier *n)
{
    free(n);
}
