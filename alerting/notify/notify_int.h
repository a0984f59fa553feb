/* Private to alerting/notify: the notifier ops table, the request a
 * notifier builds for the delivery thread, and shared helpers. */
#ifndef ALERT_NOTIFY_INT_H
#define ALERT_NOTIFY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <jansson.h>

#include "pt/alert_notify.h"
#include "pt/alert_outbox.h"

#define NOTIFY_BODY_MAX (1024 * 1024) /* payloads above this are refused */
#define NOTIFY_RESP_MAX 4096          /* response body kept for the log */

/* One delivery attempt, built from the stored event and the handler's
 * settings. Owns every pointer (notify_req_free()). */
struct notify_req {
    char *url;
    struct curl_slist *headers; /* HTTP headers (not used for SMTP) */
    char *body;                 /* HTTP body or the whole RFC 5322 message */
    size_t body_len;
    int64_t timeout_ns; /* 0: the notifier's default */
    bool insecure;      /* skip TLS verification (settings "tls_insecure") */
    /* HTTP basic auth or SMTP AUTH, when username is set. */
    char *username, *password;
    /* SMTP only */
    bool smtp;
    char *mail_from;
    struct curl_slist *rcpt;
    long use_ssl; /* CURLUSESSL_NONE / _TRY / _ALL (STARTTLS) */
};

void notify_req_free(struct notify_req *r);

/* A notifier type. ev is the canonical event JSON (notify_event_json()). */
struct notify_ops {
    const char *name;
    /* 0, or -EINVAL with the offending key named in err. */
    int (*validate)(const json_t *settings, char *err, size_t errlen);
    /* Fills req (zeroed by the caller); 0 or <0 with a message in err. */
    int (*build)(const json_t *ev, const char *handler, const json_t *settings,
                 struct notify_req *req, char *err, size_t errlen);
};

extern const struct notify_ops notify_webhook_ops, notify_am_webhook_ops, notify_alertmanager_ops,
    notify_slack_ops, notify_email_ops;

const struct notify_ops *notify_ops_for(enum alert_handler_type t);

/* ---- the canonical event JSON (event.c) --------------------------------
 * The generic webhook body and the form kept in the outbox:
 *   {"id", "rule", "fingerprint", "status", "level", "labels", "annotations",
 *    "value", "threshold", "starts_at", "ends_at", "at", "generator_url",
 *    "starts_at_ns", "ends_at_ns", "at_ns"}  (NaN / 0 / NULL -> null) */
json_t *notify_event_json(const struct alert_event *ev);
const char *notify_status_name(enum alert_status s);
const char *notify_level_name(enum alert_level l);

/* Field accessors on the canonical JSON ("" / 0 / NaN when absent). */
const char *notify_ev_str(const json_t *ev, const char *key);
int64_t notify_ev_ns(const json_t *ev, const char *key);
double notify_ev_num(const json_t *ev, const char *key);

/* Labels for Alertmanager: the event's, plus alertname = rule when the
 * rule did not set one (Alertmanager groups and routes by it). */
json_t *notify_am_labels(const json_t *ev);
/* Annotations for Alertmanager, plus flapping="true" for a flapping event:
 * Alertmanager has no such status, and a label would change the alert's
 * identity there. */
json_t *notify_am_annotations(const json_t *ev);

/* RFC 3339 with milliseconds; "0001-01-01T00:00:00Z" for ns == 0 when
 * zero_time is set (Alertmanager's zero time). */
void notify_rfc3339(int64_t ns, bool zero_time, char *buf, size_t len);

/* ---- settings helpers (notify.c) ---------------------------------------- */
/* Checks that settings is an object whose keys are all in allowed (NULL
 * terminated); names the first unknown key. */
int notify_check_keys(const json_t *settings, const char *const *allowed, char *err, size_t errlen);
/* A required/optional string member; schemes (NULL-terminated prefixes such
 * as "http://") restrict a URL. */
int notify_check_str(const json_t *settings, const char *key, bool required,
                     const char *const *schemes, char *err, size_t errlen);
/* Common HTTP keys: "timeout" (duration), "headers" (object of strings),
 * "tls_insecure" (bool). */
int notify_check_http_common(const json_t *settings, char *err, size_t errlen);
const char *notify_setting(const json_t *settings, const char *key); /* NULL when absent */
/* Starts an HTTP POST of a JSON body: url, Content-Type, User-Agent, the
 * configured extra headers, timeout, tls_insecure. Takes body (malloc'd). */
int notify_http_json(struct notify_req *req, const char *url, const json_t *settings, char *body,
                     char *err, size_t errlen);
/* Dumps j compactly into a malloc'd string (NULL on failure or when larger
 * than NOTIFY_BODY_MAX). */
char *notify_dump(const json_t *j);
/* Appends "name: value" to req->headers; 0, -ENOMEM or PT_E_LIMIT. */
int notify_add_header(struct notify_req *req, const char *name, const char *value);

extern const char *const notify_http_schemes[]; /* "http://", "https://" */

#endif
