/* Handler types, settings validation and the helpers the notifiers share
 * (settings checks, the JSON-over-HTTP request). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notify_int.h"
#include "pt/err.h"
#include "pt/time.h"
#include "pt/version.h"

const char *const notify_http_schemes[] = {"http://", "https://", NULL};

static const struct notify_ops *const ops_by_type[ALERT_H_NTYPES] = {
    [ALERT_H_WEBHOOK] = &notify_webhook_ops,
    [ALERT_H_AM_WEBHOOK] = &notify_am_webhook_ops,
    [ALERT_H_ALERTMANAGER] = &notify_alertmanager_ops,
    [ALERT_H_SLACK] = &notify_slack_ops,
    [ALERT_H_EMAIL] = &notify_email_ops,
};

const struct notify_ops *notify_ops_for(enum alert_handler_type t)
{
    if ((int)t < 0 || (int)t >= ALERT_H_NTYPES) return NULL;
    return ops_by_type[t];
}

int alert_handler_type_parse(const char *s)
{
    if (!s) return -1;
    for (int t = 0; t < ALERT_H_NTYPES; t++)
        if (strcmp(s, ops_by_type[t]->name) == 0) return t;
    return -1;
}

const char *alert_handler_type_name(enum alert_handler_type t)
{
    const struct notify_ops *ops = notify_ops_for(t);
    return ops ? ops->name : "unknown";
}

int alert_handler_validate(enum alert_handler_type type, const char *settings_json, char *err,
                           size_t errlen)
{
    const struct notify_ops *ops = notify_ops_for(type);
    if (!ops) {
        snprintf(err, errlen, "type: unknown handler type %d", (int)type);
        return -EINVAL;
    }
    if (!settings_json) {
        snprintf(err, errlen, "settings: missing (a JSON object is required)");
        return -EINVAL;
    }
    json_error_t jerr;
    json_t *s = json_loads(settings_json, JSON_REJECT_DUPLICATES, &jerr);
    if (!s) {
        snprintf(err, errlen, "settings: not valid JSON: %s (line %d, column %d)", jerr.text,
                 jerr.line, jerr.column);
        return -EINVAL;
    }
    int rc;
    if (!json_is_object(s)) {
        snprintf(err, errlen, "settings: must be a JSON object");
        rc = -EINVAL;
    } else {
        rc = ops->validate(s, err, errlen);
    }
    json_decref(s);
    return rc;
}

/* ---- settings helpers --------------------------------------------------- */

int notify_check_keys(const json_t *settings, const char *const *allowed, char *err, size_t errlen)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)settings, key, v)
    {
        bool ok = false;
        for (size_t i = 0; allowed[i]; i++)
            if (strcmp(key, allowed[i]) == 0) ok = true;
        if (!ok) {
            snprintf(err, errlen, "%s: unknown setting for this handler type", key);
            return -EINVAL;
        }
    }
    return 0;
}

int notify_check_str(const json_t *settings, const char *key, bool required,
                     const char *const *schemes, char *err, size_t errlen)
{
    json_t *v = json_object_get(settings, key);
    if (!v) {
        if (!required) return 0;
        snprintf(err, errlen, "%s: required", key);
        return -EINVAL;
    }
    if (!json_is_string(v) || json_string_length(v) == 0) {
        snprintf(err, errlen, "%s: must be a non-empty string", key);
        return -EINVAL;
    }
    const char *s = json_string_value(v);
    if (strpbrk(s, "\r\n")) {
        snprintf(err, errlen, "%s: must not contain line breaks", key);
        return -EINVAL;
    }
    if (schemes) {
        bool ok = false;
        for (size_t i = 0; schemes[i]; i++)
            if (strncmp(s, schemes[i], strlen(schemes[i])) == 0 && s[strlen(schemes[i])]) ok = true;
        if (!ok) {
            snprintf(err, errlen, "%s: must be a URL starting with %s%s%s", key, schemes[0],
                     schemes[1] ? " or " : "", schemes[1] ? schemes[1] : "");
            return -EINVAL;
        }
    }
    return 0;
}

int notify_check_http_common(const json_t *settings, char *err, size_t errlen)
{
    json_t *t = json_object_get(settings, "timeout");
    if (t) {
        int64_t ns;
        if (!json_is_string(t) || pt_duration_parse(json_string_value(t), &ns) < 0 || ns <= 0) {
            snprintf(err, errlen, "timeout: must be a positive duration such as \"5s\"");
            return -EINVAL;
        }
    }
    json_t *h = json_object_get(settings, "headers");
    if (h) {
        if (!json_is_object(h)) {
            snprintf(err, errlen, "headers: must be an object of header name to string value");
            return -EINVAL;
        }
        const char *k;
        json_t *v;
        json_object_foreach(h, k, v)
        {
            /* A header name is a token; CR/LF in either part would let a
             * setting inject headers. */
            bool bad = !*k || strpbrk(k, " \t\r\n:") != NULL;
            if (bad || !json_is_string(v) || strpbrk(json_string_value(v), "\r\n")) {
                snprintf(err, errlen,
                         "headers.%s: must be a header name with a one-line string value", k);
                return -EINVAL;
            }
        }
    }
    json_t *ins = json_object_get(settings, "tls_insecure");
    if (ins && !json_is_boolean(ins)) {
        snprintf(err, errlen, "tls_insecure: must be true or false");
        return -EINVAL;
    }
    return 0;
}

const char *notify_setting(const json_t *settings, const char *key)
{
    return json_string_value(json_object_get(settings, key));
}

/* 15 significant digits: 0.1 stays "0.1" (17 would print
 * 0.10000000000000001), and no metric is that precise. */
char *notify_dump(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15));
    if (s && strlen(s) > NOTIFY_BODY_MAX) {
        free(s);
        return NULL;
    }
    return s;
}

void notify_req_free(struct notify_req *r)
{
    if (!r) return;
    free(r->url);
    curl_slist_free_all(r->headers);
    free(r->body);
    free(r->username);
    free(r->password);
    free(r->mail_from);
    curl_slist_free_all(r->rcpt);
    memset(r, 0, sizeof(*r));
}

static int add_header(struct notify_req *req, const char *name, const char *value)
{
    char line[1024];
    int n = snprintf(line, sizeof(line), "%s: %s", name, value);
    if (n < 0 || (size_t)n >= sizeof(line)) return PT_E_LIMIT;
    struct curl_slist *l = curl_slist_append(req->headers, line);
    if (!l) return -ENOMEM;
    req->headers = l;
    return 0;
}

int notify_http_json(struct notify_req *req, const char *url, const json_t *settings, char *body,
                     char *err, size_t errlen)
{
    req->body = body;
    if (!body) {
        snprintf(err, errlen, "payload could not be encoded (over %d bytes or invalid UTF-8)",
                 NOTIFY_BODY_MAX);
        return PT_E_LIMIT;
    }
    req->body_len = strlen(body);
    req->url = strdup(url);
    if (!req->url) return -ENOMEM;
    int rc = add_header(req, "Content-Type", "application/json");
    if (rc == 0) rc = add_header(req, "User-Agent", "pantala/" PT_VERSION_STRING);
    /* libcurl would otherwise send "Expect: 100-continue" for bodies over
     * 1 KiB and wait for the server's go-ahead: one round trip for nothing. */
    if (rc == 0) rc = add_header(req, "Expect", "");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)json_object_get(settings, "headers"), k, v)
    {
        if (rc == 0 && json_is_string(v)) rc = add_header(req, k, json_string_value(v));
    }
    if (rc < 0) {
        snprintf(err, errlen, "headers: a header line is over 1 KiB");
        return rc;
    }
    const char *t = notify_setting(settings, "timeout");
    if (t) pt_duration_parse(t, &req->timeout_ns);
    req->insecure = json_is_true(json_object_get(settings, "tls_insecure"));
    return 0;
}

int notify_add_header(struct notify_req *req, const char *name, const char *value)
{
    return add_header(req, name, value);
}
