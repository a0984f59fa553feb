/* The contract between the alert evaluator and the notifiers.
 *
 * The evaluator (rules, states) produces one alert_event per state change
 * of one alert series that is not silenced, and, while firing, one per
 * `repeat` interval. It hands the event to alert_notify_submit() together
 * with the handlers of the rule; the notify side keeps it in a persistent
 * outbox and delivers it to every handler with retries (at least once,
 * deduplicated by the receiver through event id). Submitting never blocks
 * on the network.
 *
 * Everything an event points at is owned by the caller and only needs to
 * live for the alert_notify_submit() call: the outbox copies what it keeps. */
#ifndef PT_ALERT_NOTIFY_H
#define PT_ALERT_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

enum alert_level {
    ALERT_OK = 0,
    ALERT_WARNING,
    ALERT_CRITICAL,
};

enum alert_status {
    ALERT_FIRING = 0, /* entered or still in warning/critical (repeat) */
    ALERT_RESOLVED,   /* back to ok */
    ALERT_FLAPPING,   /* held: changed state too often, reported once */
};

struct alert_kv {
    const char *key, *value;
};

struct alert_event {
    /* Idempotency key: 64 lowercase hex digits, unique per event (the same
     * event retried keeps it; a repeat notification gets a new one). */
    const char *id;
    const char *rule;        /* rule name */
    const char *fingerprint; /* 16 hex digits identifying the alert series (rule + labels) */
    enum alert_status status;
    enum alert_level level; /* for RESOLVED: the level it was at */
    const struct alert_kv
        *labels; /* alertname, ns, mcis, vm (each VM), severity, rule labels, tags */
    size_t nlabels;
    const struct alert_kv *annotations; /* templated already */
    size_t nannotations;
    double value;              /* the value that caused the change (NaN for absence) */
    double threshold;          /* of the level's condition (NaN when none) */
    int64_t starts_at_ns;      /* when the alert series started firing */
    int64_t ends_at_ns;        /* when it resolved; 0 while firing */
    int64_t at_ns;             /* when this event was generated */
    const char *generator_url; /* link to the rule in the API, may be NULL */
};

/* A handler as configured through /api/v1/handlers: a name, a type and its
 * JSON settings (URL, secret, recipients, ... per type; the notify side
 * validates them). */
enum alert_handler_type {
    ALERT_H_WEBHOOK = 0,  /* generic JSON, X-Pantala-Signature */
    ALERT_H_AM_WEBHOOK,   /* Alertmanager-compatible webhook payload */
    ALERT_H_ALERTMANAGER, /* Alertmanager's POST /api/v2/alerts */
    ALERT_H_SLACK,        /* Slack incoming webhook */
    ALERT_H_EMAIL,        /* SMTP via libcurl */
};

struct alert_handler {
    const char *name;
    enum alert_handler_type type;
    const char *settings_json; /* the handler's JSON object as stored */
};

struct alert_notifier; /* the outbox and its delivery thread */

/* Parses "webhook", "alertmanager_webhook", "alertmanager", "slack", "email";
 * -1 when unknown. And back. */
int alert_handler_type_parse(const char *s);
const char *alert_handler_type_name(enum alert_handler_type t);

/* Checks a handler's settings before it is stored: 0, or -EINVAL with a
 * message naming the bad key in err. */
int alert_handler_validate(enum alert_handler_type type, const char *settings_json, char *err,
                           size_t errlen);

/* Opens (creating) the outbox database at path and starts delivering what it
 * holds, including what a previous process left undelivered. Returns 0 or
 * <0 with a message in err. */
int alert_notifier_open(struct alert_notifier **out, const char *path, char *err, size_t errlen);

/* Queues ev for every handler (a copy is made; nhandlers may be 0, then
 * nothing is queued). Durable when this returns 0. */
int alert_notify_submit(struct alert_notifier *n, const struct alert_event *ev,
                        const struct alert_handler *handlers, size_t nhandlers);

/* Stops the delivery thread (undelivered events stay in the outbox) and
 * frees n. */
void alert_notifier_close(struct alert_notifier *n);

#endif
