/* E-mail over SMTP through libcurl (smtp:// with optional STARTTLS, or
 * smtps://): a plain-text RFC 5322 message with the rule, level, value,
 * threshold, times, labels and annotations. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "notify_int.h"
#include "pt/err.h"
#include "pt/time.h"

static const char *const email_keys[] = {
    "url",      "from",           "to",      "username",     "password",
    "starttls", "subject_prefix", "timeout", "tls_insecure", NULL};
static const char *const smtp_schemes[] = {"smtp://", "smtps://", NULL};

#define MAIL_MAX_RCPT 100

/* The address part of "Name <addr>" or a bare "addr"; NULL when there is
 * no plausible address. */
static char *addr_of(const char *s)
{
    const char *lt = strrchr(s, '<'), *b = s, *e = s + strlen(s);
    if (lt) {
        const char *gt = strchr(lt, '>');
        if (!gt) return NULL;
        b = lt + 1;
        e = gt;
    }
    while (b < e && *b == ' ') b++;
    while (e > b && e[-1] == ' ') e--;
    if (e - b < 3 || !memchr(b, '@', (size_t)(e - b)) || memchr(b, ' ', (size_t)(e - b)))
        return NULL;
    return strndup(b, (size_t)(e - b));
}

static int check_addr(const json_t *v, const char *key, char *err, size_t errlen)
{
    const char *s = json_string_value(v);
    char *a = s && !strpbrk(s, "\r\n") ? addr_of(s) : NULL;
    if (!a) {
        snprintf(err, errlen,
                 "%s: not an e-mail address (\"ops@example.com\" or \"Ops <ops@example.com>\")",
                 key);
        return -EINVAL;
    }
    free(a);
    return 0;
}

static int email_validate(const json_t *s, char *err, size_t errlen)
{
    int rc = notify_check_keys(s, email_keys, err, errlen);
    if (rc == 0) rc = notify_check_str(s, "url", true, smtp_schemes, err, errlen);
    if (rc == 0) rc = notify_check_str(s, "from", true, NULL, err, errlen);
    if (rc == 0) rc = check_addr(json_object_get(s, "from"), "from", err, errlen);
    if (rc < 0) return rc;
    json_t *to = json_object_get(s, "to");
    if (!to) {
        snprintf(err, errlen, "to: required (an address or an array of addresses)");
        return -EINVAL;
    }
    if (json_is_string(to)) {
        rc = check_addr(to, "to", err, errlen);
    } else if (json_is_array(to) && json_array_size(to) > 0 &&
               json_array_size(to) <= MAIL_MAX_RCPT) {
        size_t i;
        json_t *v;
        json_array_foreach(to, i, v)
        {
            char key[32];
            snprintf(key, sizeof(key), "to[%zu]", i);
            if ((rc = check_addr(v, key, err, errlen)) < 0) break;
        }
    } else {
        snprintf(err, errlen, "to: must be an address or an array of 1 to %d addresses",
                 MAIL_MAX_RCPT);
        rc = -EINVAL;
    }
    if (rc == 0) rc = notify_check_str(s, "username", false, NULL, err, errlen);
    if (rc == 0) rc = notify_check_str(s, "password", false, NULL, err, errlen);
    if (rc == 0) rc = notify_check_str(s, "subject_prefix", false, NULL, err, errlen);
    const char *st = notify_setting(s, "starttls");
    if (rc == 0 && json_object_get(s, "starttls") &&
        (!st || (strcmp(st, "none") && strcmp(st, "try") && strcmp(st, "required")))) {
        snprintf(err, errlen, "starttls: must be \"none\", \"try\" or \"required\"");
        rc = -EINVAL;
    }
    if (rc == 0 && json_object_get(s, "headers")) {
        snprintf(err, errlen, "headers: unknown setting for this handler type");
        rc = -EINVAL;
    }
    if (rc == 0) rc = notify_check_http_common(s, err, errlen);
    return rc;
}

/* A growing message buffer with a ceiling. */
struct mbuf {
    char *p;
    size_t len, cap;
    bool fail;
};

static void mb_printf(struct mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mb_printf(struct mbuf *b, const char *fmt, ...)
{
    if (b->fail) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->fail = true;
            return;
        }
        if (b->p && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 2048;
        while (cap < b->len + (size_t)n + 1) cap *= 2;
        char *np = cap <= NOTIFY_BODY_MAX ? realloc(b->p, cap) : NULL;
        if (!np) {
            b->fail = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

/* A header value: line breaks become spaces (labels are untrusted), and a
 * non-ASCII value is sent as an RFC 2047 encoded word. */
static void mb_header(struct mbuf *b, const char *name, const char *value)
{
    char clean[900];
    snprintf(clean, sizeof(clean), "%s", value);
    bool ascii = true;
    for (char *p = clean; *p; p++) {
        if (*p == '\r' || *p == '\n') *p = ' ';
        if ((unsigned char)*p >= 0x80) ascii = false;
    }
    if (ascii) {
        mb_printf(b, "%s: %s\r\n", name, clean);
        return;
    }
    unsigned char enc[1204];
    EVP_EncodeBlock(enc, (const unsigned char *)clean, (int)strlen(clean));
    mb_printf(b, "%s: =?UTF-8?B?%s?=\r\n", name, enc);
}

static void fmt_num(double v, char *buf, size_t len)
{
    if (isfinite(v))
        snprintf(buf, len, "%g", v);
    else
        snprintf(buf, len, "n/a");
}

/* Body lines: label values are untrusted, so a bare CR or LF in one is
 * replaced and no line can end the message early (curl dot-stuffs). */
static void mb_kv_lines(struct mbuf *b, const json_t *obj)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        char val[900];
        snprintf(val, sizeof(val), "%s", json_string_value(v) ? json_string_value(v) : "");
        for (char *p = val; *p; p++)
            if (*p == '\r' || *p == '\n') *p = ' ';
        mb_printf(b, "  %s = %s\r\n", k, val);
    }
}

static int build_message(const json_t *ev, const char *handler, const json_t *s, struct mbuf *b)
{
    const char *status = notify_ev_str(ev, "status"), *level = notify_ev_str(ev, "level");
    const char *rule = notify_ev_str(ev, "rule");
    int64_t at = notify_ev_ns(ev, "at_ns");
    if (at == 0) at = pt_now_ns();

    char date[64];
    time_t t = (time_t)(at / PT_NS_PER_SEC);
    struct tm tm;
    gmtime_r(&t, &tm);
    /* RFC 5322 wants English day and month names whatever the locale. */
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mons[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    snprintf(date, sizeof(date), "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday],
             tm.tm_mday, mons[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);

    /* One Message-ID per (event, handler): the same event to two mail
     * handlers is two messages. Only [A-Za-z0-9.-] of the name is kept. */
    char hn[64];
    size_t j = 0;
    for (const char *p = handler ? handler : ""; *p && j < sizeof(hn) - 1; p++)
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '.' || *p == '-')
            hn[j++] = *p;
    hn[j] = '\0';
    char msgid[200];
    snprintf(msgid, sizeof(msgid), "<%s.%s@pantala>", notify_ev_str(ev, "id"), j ? hn : "h");

    char to[4096] = "";
    json_t *tov = json_object_get(s, "to");
    if (json_is_string(tov)) {
        snprintf(to, sizeof(to), "%s", json_string_value(tov));
    } else {
        size_t i, off = 0;
        json_t *v;
        json_array_foreach(tov, i, v)
        {
            if (off >= sizeof(to)) break;
            int n =
                snprintf(to + off, sizeof(to) - off, "%s%s", i ? ", " : "", json_string_value(v));
            if (n > 0) off += (size_t)n;
        }
    }

    /* Subject: "[Pantala] CRITICAL firing: cpu_high (vm=vm-1)" */
    char upper[16];
    snprintf(upper, sizeof(upper), "%s", level);
    for (char *p = upper; *p; p++) *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    const char *prefix = notify_setting(s, "subject_prefix");
    const char *vm = json_string_value(json_object_get(json_object_get(ev, "labels"), "vm"));
    char subject[600];
    if (strcmp(status, "resolved") == 0)
        snprintf(subject, sizeof(subject), "%s RESOLVED: %s%s%s%s (was %s)",
                 prefix ? prefix : "[Pantala]", rule, vm ? " (vm=" : "", vm ? vm : "",
                 vm ? ")" : "", level);
    else
        snprintf(subject, sizeof(subject), "%s %s %s: %s%s%s%s", prefix ? prefix : "[Pantala]",
                 upper, status, rule, vm ? " (vm=" : "", vm ? vm : "", vm ? ")" : "");

    mb_header(b, "Date", date);
    mb_header(b, "From", notify_setting(s, "from"));
    mb_header(b, "To", to);
    mb_header(b, "Subject", subject);
    mb_header(b, "Message-ID", msgid);
    mb_header(b, "X-Pantala-Event-Id", notify_ev_str(ev, "id"));
    mb_printf(b, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                 "Content-Transfer-Encoding: 8bit\r\n\r\n");

    char value[32], thr[32], starts[48], ends[48];
    fmt_num(notify_ev_num(ev, "value"), value, sizeof(value));
    fmt_num(notify_ev_num(ev, "threshold"), thr, sizeof(thr));
    notify_rfc3339(notify_ev_ns(ev, "starts_at_ns"), false, starts, sizeof(starts));
    mb_printf(b, "Rule:      %s\r\nStatus:    %s\r\nLevel:     %s\r\n", rule, status, level);
    mb_printf(b, "Value:     %s\r\nThreshold: %s\r\nStarted:   %s\r\n", value, thr, starts);
    if (notify_ev_ns(ev, "ends_at_ns")) {
        notify_rfc3339(notify_ev_ns(ev, "ends_at_ns"), false, ends, sizeof(ends));
        mb_printf(b, "Ended:     %s\r\n", ends);
    }
    mb_printf(b, "\r\nLabels:\r\n");
    mb_kv_lines(b, json_object_get(ev, "labels"));
    json_t *ann = json_object_get(ev, "annotations");
    if (json_object_size(ann)) {
        mb_printf(b, "\r\nAnnotations:\r\n");
        mb_kv_lines(b, ann);
    }
    const char *gen = notify_ev_str(ev, "generator_url");
    mb_printf(b, "\r\nEvent:     %s\r\n", notify_ev_str(ev, "id"));
    if (*gen && !strpbrk(gen, "\r\n")) mb_printf(b, "Rule link: %s\r\n", gen);
    return b->fail ? PT_E_LIMIT : 0;
}

static int add_rcpt(struct notify_req *req, const char *s)
{
    char *a = addr_of(s);
    if (!a) return -EINVAL;
    char buf[600];
    snprintf(buf, sizeof(buf), "<%s>", a);
    free(a);
    struct curl_slist *l = curl_slist_append(req->rcpt, buf);
    if (!l) return -ENOMEM;
    req->rcpt = l;
    return 0;
}

static int email_build(const json_t *ev, const char *handler, const json_t *s,
                       struct notify_req *req, char *err, size_t errlen)
{
    struct mbuf b = {0};
    int rc = build_message(ev, handler, s, &b);
    if (rc < 0) {
        free(b.p);
        snprintf(err, errlen, "message could not be built (over %d bytes)", NOTIFY_BODY_MAX);
        return rc;
    }
    req->smtp = true;
    req->body = b.p;
    req->body_len = b.len;
    req->url = strdup(notify_setting(s, "url"));
    char *from = addr_of(notify_setting(s, "from"));
    if (from) {
        size_t n = strlen(from) + 3;
        req->mail_from = malloc(n);
        if (req->mail_from) snprintf(req->mail_from, n, "<%s>", from);
        free(from);
    }
    if (!req->url || !req->mail_from) return -ENOMEM;
    json_t *to = json_object_get(s, "to");
    if (json_is_string(to)) {
        rc = add_rcpt(req, json_string_value(to));
    } else {
        size_t i;
        json_t *v;
        json_array_foreach(to, i, v)
        {
            if (rc == 0) rc = add_rcpt(req, json_string_value(v));
        }
    }
    if (rc < 0) {
        snprintf(err, errlen, "to: not an e-mail address");
        return rc;
    }
    const char *user = notify_setting(s, "username"), *pass = notify_setting(s, "password");
    if (user) {
        req->username = strdup(user);
        req->password = strdup(pass ? pass : "");
        if (!req->username || !req->password) return -ENOMEM;
    }
    const char *st = notify_setting(s, "starttls");
    /* smtps:// is TLS from the start; for smtp:// "try" upgrades when the
     * server offers STARTTLS, so plain local relays keep working. */
    req->use_ssl = !st || strcmp(st, "try") == 0 ? CURLUSESSL_TRY
                   : strcmp(st, "required") == 0 ? CURLUSESSL_ALL
                                                 : CURLUSESSL_NONE;
    const char *t = notify_setting(s, "timeout");
    if (t) pt_duration_parse(t, &req->timeout_ns);
    req->insecure = json_is_true(json_object_get(s, "tls_insecure"));
    return 0;
}

const struct notify_ops notify_email_ops = {
    .name = "email",
    .validate = email_validate,
    .build = email_build,
};
