/* The canonical JSON of an alert event: what the outbox keeps (so a row can
 * be delivered by a later process) and the generic webhook's body. */
#include <math.h>
#include <string.h>

#include "notify_int.h"
#include "pt/time.h"

const char *notify_status_name(enum alert_status s)
{
    switch (s) {
    case ALERT_FIRING:
        return "firing";
    case ALERT_RESOLVED:
        return "resolved";
    case ALERT_FLAPPING:
        return "flapping";
    }
    return "unknown";
}

const char *notify_level_name(enum alert_level l)
{
    switch (l) {
    case ALERT_OK:
        return "ok";
    case ALERT_WARNING:
        return "warning";
    case ALERT_CRITICAL:
        return "critical";
    }
    return "unknown";
}

void notify_rfc3339(int64_t ns, bool zero_time, char *buf, size_t len)
{
    if (ns == 0 && zero_time) {
        snprintf(buf, len, "0001-01-01T00:00:00Z");
        return;
    }
    if (pt_time_format(ns, 3, buf, len) < 0 && len) buf[0] = '\0';
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* JSON has no NaN: an absent value or threshold is null. */
static json_t *num_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *time_or_null(int64_t ns)
{
    char buf[48];
    if (ns == 0) return json_null();
    notify_rfc3339(ns, false, buf, sizeof(buf));
    return json_string(buf);
}

static json_t *kv_object(const struct alert_kv *kv, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < n; i++) {
        if (!kv[i].key || !kv[i].value) continue;
        /* Strings that are not valid UTF-8 are dropped by jansson (NULL);
         * keep the rest of the labels rather than fail the event. */
        json_t *v = json_string(kv[i].value);
        if (v) json_object_set_new(o, kv[i].key, v);
    }
    return o;
}

json_t *notify_event_json(const struct alert_event *ev)
{
    if (!ev || !ev->id || !ev->rule) return NULL;
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "id", json_string(ev->id));
    json_object_set_new(o, "rule", json_string(ev->rule));
    json_object_set_new(o, "fingerprint", str_or_null(ev->fingerprint));
    json_object_set_new(o, "status", json_string(notify_status_name(ev->status)));
    json_object_set_new(o, "level", json_string(notify_level_name(ev->level)));
    json_object_set_new(o, "labels", kv_object(ev->labels, ev->nlabels));
    json_object_set_new(o, "annotations", kv_object(ev->annotations, ev->nannotations));
    json_object_set_new(o, "value", num_or_null(ev->value));
    json_object_set_new(o, "threshold", num_or_null(ev->threshold));
    json_object_set_new(o, "starts_at", time_or_null(ev->starts_at_ns));
    json_object_set_new(o, "ends_at", time_or_null(ev->ends_at_ns));
    json_object_set_new(o, "at", time_or_null(ev->at_ns));
    json_object_set_new(o, "generator_url", str_or_null(ev->generator_url));
    json_object_set_new(o, "starts_at_ns", json_integer(ev->starts_at_ns));
    json_object_set_new(o, "ends_at_ns", json_integer(ev->ends_at_ns));
    json_object_set_new(o, "at_ns", json_integer(ev->at_ns));
    /* json_string() returns NULL for invalid UTF-8 and set_new then fails
     * silently: the required members must be there. */
    if (!json_is_string(json_object_get(o, "id")) || !json_is_string(json_object_get(o, "rule"))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

const char *notify_ev_str(const json_t *ev, const char *key)
{
    const char *s = json_string_value(json_object_get(ev, key));
    return s ? s : "";
}

int64_t notify_ev_ns(const json_t *ev, const char *key)
{
    json_t *v = json_object_get(ev, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

double notify_ev_num(const json_t *ev, const char *key)
{
    json_t *v = json_object_get(ev, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

json_t *notify_am_labels(const json_t *ev)
{
    json_t *l = json_deep_copy(json_object_get(ev, "labels"));
    if (!json_is_object(l)) {
        json_decref(l);
        l = json_object();
    }
    if (l && !json_object_get(l, "alertname"))
        json_object_set_new(l, "alertname", json_string(notify_ev_str(ev, "rule")));
    return l;
}

json_t *notify_am_annotations(const json_t *ev)
{
    json_t *a = json_deep_copy(json_object_get(ev, "annotations"));
    if (!json_is_object(a)) {
        json_decref(a);
        a = json_object();
    }
    if (a && strcmp(notify_ev_str(ev, "status"), "flapping") == 0)
        json_object_set_new(a, "flapping", json_string("true"));
    return a;
}
