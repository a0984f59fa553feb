/* Payloads of every notifier type, parsed back and checked field by field,
 * and settings validation naming the bad key. No network. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "notify_int.h"
#include "pt/err.h"
#include "pt/time.h"
#include "pt/util.h"

#define EV_ID "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

static const struct alert_kv labels[] = {
    {"ns", "default"}, {"mcis", "web"}, {"vm", "vm-1"}, {"severity", "critical"}};
static const struct alert_kv annotations[] = {{"summary", "CPU 93.5% on vm-1"}};

static int64_t at(const char *rfc3339)
{
    int64_t ns = 0;
    assert_int_equal(pt_time_parse(rfc3339, 0, &ns), 0);
    return ns;
}

static struct alert_event event(enum alert_status st)
{
    struct alert_event ev = {
        .id = EV_ID,
        .rule = "cpu_high",
        .fingerprint = "0123456789abcdef",
        .status = st,
        .level = ALERT_CRITICAL,
        .labels = labels,
        .nlabels = 4,
        .annotations = annotations,
        .nannotations = 1,
        .value = 93.5,
        .threshold = 90,
        .starts_at_ns = at("2026-11-21T10:00:00Z"),
        .ends_at_ns = st == ALERT_RESOLVED ? at("2026-11-21T10:05:30.250Z") : 0,
        .at_ns = st == ALERT_RESOLVED ? at("2026-11-21T10:05:30.250Z") : at("2026-11-21T10:00:00Z"),
        .generator_url = "http://pantala:8080/api/v1/rules/cpu_high",
    };
    return ev;
}

/* Builds the request for ev through the type's ops; the settings must
 * validate first, as the API would insist. */
static void build(enum alert_handler_type t, const char *settings, const struct alert_event *ev,
                  struct notify_req *req)
{
    char err[256] = "";
    int rc = alert_handler_validate(t, settings, err, sizeof(err));
    if (rc != 0) fail_msg("settings rejected: %s", err);
    json_t *s = json_loads(settings, 0, NULL), *j = notify_event_json(ev);
    assert_non_null(s);
    assert_non_null(j);
    memset(req, 0, sizeof(*req));
    rc = notify_ops_for(t)->build(j, "ops-team", s, req, err, sizeof(err));
    if (rc != 0) fail_msg("build failed: %s", err);
    json_decref(s);
    json_decref(j);
}

static json_t *body_json(const struct notify_req *req)
{
    json_error_t e;
    json_t *j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &e);
    if (!j) fail_msg("body is not JSON: %s", e.text);
    return j;
}

/* The value of header name in req, or NULL. */
static const char *header(const struct notify_req *req, const char *name)
{
    size_t n = strlen(name);
    for (struct curl_slist *h = req->headers; h; h = h->next)
        if (strncasecmp(h->data, name, n) == 0 && h->data[n] == ':')
            return h->data + n + (h->data[n + 1] == ' ' ? 2 : 1);
    return NULL;
}

#define S(j, k) json_string_value(json_object_get((j), (k)))

static void test_type_names(void **state)
{
    (void)state;
    const char *names[] = {"webhook", "alertmanager_webhook", "alertmanager", "slack", "email"};
    for (int t = 0; t < ALERT_H_NTYPES; t++) {
        assert_int_equal(alert_handler_type_parse(names[t]), t);
        assert_string_equal(alert_handler_type_name((enum alert_handler_type)t), names[t]);
    }
    assert_int_equal(alert_handler_type_parse("pagerduty"), -1);
    assert_int_equal(alert_handler_type_parse(NULL), -1);
}

static void test_webhook(void **state)
{
    (void)state;
    struct alert_event ev = event(ALERT_FIRING);
    struct notify_req req;
    build(ALERT_H_WEBHOOK,
          "{\"url\":\"http://hooks.example/x\",\"secret\":\"s3cret\","
          "\"headers\":{\"X-Team\":\"ops\"}}",
          &ev, &req);
    assert_string_equal(req.url, "http://hooks.example/x");
    json_t *b = body_json(&req);
    assert_string_equal(S(b, "id"), EV_ID);
    assert_string_equal(S(b, "rule"), "cpu_high");
    assert_string_equal(S(b, "fingerprint"), "0123456789abcdef");
    assert_string_equal(S(b, "status"), "firing");
    assert_string_equal(S(b, "level"), "critical");
    assert_string_equal(S(b, "handler"), "ops-team");
    assert_string_equal(S(json_object_get(b, "labels"), "vm"), "vm-1");
    assert_string_equal(S(json_object_get(b, "labels"), "mcis"), "web");
    assert_string_equal(S(json_object_get(b, "annotations"), "summary"), "CPU 93.5% on vm-1");
    assert_true(json_number_value(json_object_get(b, "value")) == 93.5);
    assert_true(json_number_value(json_object_get(b, "threshold")) == 90.0);
    assert_string_equal(S(b, "starts_at"), "2026-11-21T10:00:00.000Z");
    assert_true(json_is_null(json_object_get(b, "ends_at")));
    assert_int_equal(json_integer_value(json_object_get(b, "starts_at_ns")), ev.starts_at_ns);
    assert_string_equal(S(b, "generator_url"), "http://pantala:8080/api/v1/rules/cpu_high");
    json_decref(b);

    assert_string_equal(header(&req, "Content-Type"), "application/json");
    assert_string_equal(header(&req, "Idempotency-Key"), EV_ID);
    assert_string_equal(header(&req, "X-Team"), "ops");
    /* The signature, recomputed here with OpenSSL's EVP_MAC API over the
     * exact bytes that go on the wire. */
    unsigned char mac[32];
    size_t maclen = 0;
    assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, "s3cret", 6,
                              (const unsigned char *)req.body, req.body_len, mac, sizeof(mac),
                              &maclen));
    char want[7 + 65] = "sha256=";
    pt_hex_encode(mac, maclen, want + 7);
    assert_string_equal(header(&req, "X-Pantala-Signature"), want);
    notify_req_free(&req);

    /* No secret, no signature; an absent value is null, not NaN. */
    ev.value = NAN;
    ev.threshold = NAN;
    build(ALERT_H_WEBHOOK, "{\"url\":\"https://hooks.example/y\"}", &ev, &req);
    assert_null(header(&req, "X-Pantala-Signature"));
    b = body_json(&req);
    assert_true(json_is_null(json_object_get(b, "value")));
    assert_true(json_is_null(json_object_get(b, "threshold")));
    json_decref(b);
    notify_req_free(&req);
}

static void test_am_webhook(void **state)
{
    (void)state;
    struct alert_event ev = event(ALERT_FIRING);
    struct notify_req req;
    build(ALERT_H_AM_WEBHOOK,
          "{\"url\":\"http://r.example/am\",\"external_url\":\"http://pantala:8080\"}", &ev, &req);
    json_t *b = body_json(&req);
    assert_string_equal(S(b, "version"), "4");
    assert_string_equal(S(b, "status"), "firing");
    assert_string_equal(S(b, "receiver"), "ops-team");
    assert_string_equal(S(b, "externalURL"), "http://pantala:8080");
    assert_string_equal(S(json_object_get(b, "groupLabels"), "alertname"), "cpu_high");
    assert_non_null(S(b, "groupKey"));
    json_t *alerts = json_object_get(b, "alerts");
    assert_int_equal(json_array_size(alerts), 1);
    json_t *a = json_array_get(alerts, 0);
    assert_string_equal(S(a, "status"), "firing");
    assert_string_equal(S(json_object_get(a, "labels"), "alertname"), "cpu_high");
    assert_string_equal(S(json_object_get(a, "labels"), "vm"), "vm-1");
    assert_string_equal(S(json_object_get(a, "annotations"), "summary"), "CPU 93.5% on vm-1");
    assert_string_equal(S(a, "startsAt"), "2026-11-21T10:00:00.000Z");
    assert_string_equal(S(a, "endsAt"), "0001-01-01T00:00:00Z");
    assert_string_equal(S(a, "generatorURL"), "http://pantala:8080/api/v1/rules/cpu_high");
    assert_string_equal(S(a, "fingerprint"), "0123456789abcdef");
    /* One alert: the common labels/annotations are its own. */
    assert_true(json_equal(json_object_get(b, "commonLabels"), json_object_get(a, "labels")));
    assert_true(
        json_equal(json_object_get(b, "commonAnnotations"), json_object_get(a, "annotations")));
    json_decref(b);
    notify_req_free(&req);

    ev = event(ALERT_RESOLVED);
    build(ALERT_H_AM_WEBHOOK, "{\"url\":\"http://r.example/am\",\"receiver\":\"team-x\"}", &ev,
          &req);
    b = body_json(&req);
    assert_string_equal(S(b, "status"), "resolved");
    assert_string_equal(S(b, "receiver"), "team-x");
    assert_string_equal(S(b, "externalURL"), "");
    a = json_array_get(json_object_get(b, "alerts"), 0);
    assert_string_equal(S(a, "status"), "resolved");
    assert_string_equal(S(a, "endsAt"), "2026-11-21T10:05:30.250Z");
    json_decref(b);
    notify_req_free(&req);
}

static void test_alertmanager(void **state)
{
    (void)state;
    struct alert_event ev = event(ALERT_FIRING);
    struct notify_req req;
    build(ALERT_H_ALERTMANAGER, "{\"url\":\"http://am.example:9093/\"}", &ev, &req);
    assert_string_equal(req.url, "http://am.example:9093/api/v2/alerts");
    json_t *b = body_json(&req);
    assert_true(json_is_array(b));
    assert_int_equal(json_array_size(b), 1);
    json_t *a = json_array_get(b, 0);
    assert_string_equal(S(json_object_get(a, "labels"), "alertname"), "cpu_high");
    assert_string_equal(S(json_object_get(a, "labels"), "severity"), "critical");
    assert_string_equal(S(a, "startsAt"), "2026-11-21T10:00:00.000Z");
    assert_null(json_object_get(a, "endsAt")); /* firing: Alertmanager's resolve_timeout */
    assert_string_equal(S(a, "generatorURL"), "http://pantala:8080/api/v1/rules/cpu_high");
    json_decref(b);
    notify_req_free(&req);

    ev = event(ALERT_RESOLVED);
    build(
        ALERT_H_ALERTMANAGER,
        "{\"url\":\"http://am.example:9093/api/v2/alerts\",\"username\":\"u\",\"password\":\"p\"}",
        &ev, &req);
    assert_string_equal(req.url, "http://am.example:9093/api/v2/alerts");
    assert_string_equal(req.username, "u");
    b = body_json(&req);
    assert_string_equal(S(json_array_get(b, 0), "endsAt"), "2026-11-21T10:05:30.250Z");
    json_decref(b);
    notify_req_free(&req);

    /* Flapping: no such status in Alertmanager; an annotation says so and
     * the labels (the alert's identity there) stay the same. */
    ev = event(ALERT_FLAPPING);
    build(ALERT_H_ALERTMANAGER, "{\"url\":\"http://am.example:9093\"}", &ev, &req);
    b = body_json(&req);
    a = json_array_get(b, 0);
    assert_string_equal(S(json_object_get(a, "annotations"), "flapping"), "true");
    assert_null(json_object_get(json_object_get(a, "labels"), "flapping"));
    json_decref(b);
    notify_req_free(&req);
}

static void test_slack(void **state)
{
    (void)state;
    struct alert_event ev = event(ALERT_FIRING);
    struct notify_req req;
    build(ALERT_H_SLACK,
          "{\"url\":\"https://hooks.slack.com/services/T/B/X\",\"channel\":\"#ops\"}", &ev, &req);
    json_t *b = body_json(&req);
    assert_non_null(strstr(S(b, "text"), "[FIRING:CRITICAL] cpu_high"));
    assert_non_null(strstr(S(b, "text"), "vm=vm-1"));
    assert_string_equal(S(b, "channel"), "#ops");
    json_t *att = json_array_get(json_object_get(b, "attachments"), 0);
    assert_string_equal(S(att, "color"), "#d50200");
    assert_string_equal(S(att, "text"), "CPU 93.5% on vm-1");
    json_t *f = json_object_get(att, "fields");
    assert_string_equal(S(json_array_get(f, 0), "value"), "93.5");
    assert_string_equal(S(json_array_get(f, 1), "value"), "90");
    json_decref(b);
    notify_req_free(&req);

    ev = event(ALERT_RESOLVED);
    ev.level = ALERT_WARNING;
    build(ALERT_H_SLACK, "{\"url\":\"https://hooks.slack.com/services/T/B/X\"}", &ev, &req);
    b = body_json(&req);
    assert_non_null(strstr(S(b, "text"), "[RESOLVED:WARNING] cpu_high"));
    assert_string_equal(S(json_array_get(json_object_get(b, "attachments"), 0), "color"),
                        "#2eb886");
    json_decref(b);
    notify_req_free(&req);
}

/* True when the message has a header line that is exactly "line". */
static bool has_line(const char *msg, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = msg; p; p = strstr(p, "\r\n")) {
        if (p != msg) p += 2;
        if (strncmp(p, line, n) == 0 && p[n] == '\r') return true;
        if (p[0] == '\r') break; /* end of headers */
    }
    return false;
}

static void test_email(void **state)
{
    (void)state;
    struct alert_event ev = event(ALERT_FIRING);
    struct notify_req req;
    build(ALERT_H_EMAIL,
          "{\"url\":\"smtp://mail.example:25\",\"from\":\"Pantala <alerts@example.com>\","
          "\"to\":[\"ops@example.com\",\"Oncall <oncall@example.com>\"],\"starttls\":\"required\"}",
          &ev, &req);
    assert_true(req.smtp);
    assert_string_equal(req.url, "smtp://mail.example:25");
    assert_string_equal(req.mail_from, "<alerts@example.com>");
    assert_string_equal(req.rcpt->data, "<ops@example.com>");
    assert_string_equal(req.rcpt->next->data, "<oncall@example.com>");
    assert_int_equal(req.use_ssl, CURLUSESSL_ALL);
    char *m = strndup(req.body, req.body_len);
    assert_true(has_line(m, "Subject: [Pantala] CRITICAL firing: cpu_high (vm=vm-1)"));
    assert_true(has_line(m, "Date: Sat, 21 Nov 2026 10:00:00 +0000"));
    assert_true(has_line(m, "From: Pantala <alerts@example.com>"));
    assert_true(has_line(m, "To: ops@example.com, Oncall <oncall@example.com>"));
    assert_true(has_line(m, "Message-ID: <" EV_ID ".ops-team@pantala>"));
    assert_true(has_line(m, "Content-Type: text/plain; charset=utf-8"));
    const char *body = strstr(m, "\r\n\r\n");
    assert_non_null(body);
    assert_non_null(strstr(body, "Value:     93.5\r\n"));
    assert_non_null(strstr(body, "Threshold: 90\r\n"));
    assert_non_null(strstr(body, "Started:   2026-11-21T10:00:00.000Z\r\n"));
    assert_non_null(strstr(body, "  vm = vm-1\r\n"));
    assert_non_null(strstr(body, "  summary = CPU 93.5% on vm-1\r\n"));
    free(m);
    notify_req_free(&req);

    /* A label cannot add a header (Bcc) or end the headers early. */
    ev = event(ALERT_RESOLVED);
    struct alert_kv evil[] = {{"vm", "vm-1\r\nBcc: attacker@example.com"}};
    ev.labels = evil;
    ev.nlabels = 1;
    build(ALERT_H_EMAIL,
          "{\"url\":\"smtps://mail.example\",\"from\":\"a@example.com\",\"to\":\"b@example.com\"}",
          &ev, &req);
    m = strndup(req.body, req.body_len);
    assert_null(strstr(m, "\r\nBcc:"));
    assert_true(has_line(m, "Subject: [Pantala] RESOLVED: cpu_high (vm=vm-1  Bcc: "
                            "attacker@example.com) (was critical)"));
    assert_non_null(strstr(m, "Ended:     2026-11-21T10:05:30.250Z\r\n"));
    free(m);
    notify_req_free(&req);
}

/* Each bad setting is refused with an error that starts with its key. */
static void expect_bad(enum alert_handler_type t, const char *settings, const char *key)
{
    char err[256] = "";
    int rc = alert_handler_validate(t, settings, err, sizeof(err));
    if (rc != -EINVAL) fail_msg("%s accepted for %s", settings, alert_handler_type_name(t));
    if (strncmp(err, key, strlen(key)) != 0)
        fail_msg("%s: error \"%s\" does not name %s", settings, err, key);
}

static void test_validate(void **state)
{
    (void)state;
    expect_bad(ALERT_H_WEBHOOK, "not json", "settings");
    expect_bad(ALERT_H_WEBHOOK, "[1]", "settings");
    expect_bad(ALERT_H_WEBHOOK, "{}", "url");
    expect_bad(ALERT_H_WEBHOOK, "{\"url\":\"ftp://x\"}", "url");
    expect_bad(ALERT_H_WEBHOOK, "{\"url\":\"http://x\",\"secret\":5}", "secret");
    expect_bad(ALERT_H_WEBHOOK, "{\"url\":\"http://x\",\"sekret\":\"a\"}", "sekret");
    expect_bad(ALERT_H_WEBHOOK, "{\"url\":\"http://x\",\"timeout\":\"soon\"}", "timeout");
    expect_bad(ALERT_H_WEBHOOK, "{\"url\":\"http://x\",\"headers\":{\"A\":\"b\\r\\nC: d\"}}",
               "headers.A");
    expect_bad(ALERT_H_AM_WEBHOOK, "{\"url\":\"http://x\",\"external_url\":\"x\"}", "external_url");
    expect_bad(ALERT_H_ALERTMANAGER, "{\"url\":\"http://x\",\"password\":\"p\"}", "username");
    expect_bad(ALERT_H_SLACK, "{\"url\":\"http://x\",\"headers\":{}}", "headers");
    expect_bad(ALERT_H_EMAIL, "{\"url\":\"http://x\",\"from\":\"a@b.c\",\"to\":\"d@e.f\"}", "url");
    expect_bad(ALERT_H_EMAIL, "{\"url\":\"smtp://x\",\"to\":\"d@e.f\"}", "from");
    expect_bad(ALERT_H_EMAIL, "{\"url\":\"smtp://x\",\"from\":\"a@b.c\"}", "to");
    expect_bad(ALERT_H_EMAIL,
               "{\"url\":\"smtp://x\",\"from\":\"a@b.c\",\"to\":[\"d@e.f\",\"nobody\"]}", "to[1]");
    expect_bad(ALERT_H_EMAIL,
               "{\"url\":\"smtp://x\",\"from\":\"a@b.c\",\"to\":\"d@e.f\",\"starttls\":\"yes\"}",
               "starttls");

    char err[256];
    assert_int_equal(alert_handler_validate(ALERT_H_WEBHOOK,
                                            "{\"url\":\"https://x/y\",\"secret\":\"k\","
                                            "\"timeout\":\"5s\",\"tls_insecure\":false}",
                                            err, sizeof(err)),
                     0);
    assert_int_equal(alert_handler_validate((enum alert_handler_type)9, "{}", err, sizeof(err)),
                     -EINVAL);
}

static void test_stats_render(void **state)
{
    (void)state;
    struct alert_notify_stats s = {0};
    s.delivered[ALERT_H_SLACK] = 7;
    s.failed[ALERT_H_EMAIL] = 2;
    s.pending = 3;
    char buf[8192];
    int n = alert_notify_stats_render(&s, buf, sizeof(buf));
    assert_true(n > 0);
    assert_non_null(
        strstr(buf, "pantala_alert_notifications_total{type=\"slack\",result=\"delivered\"} 7\n"));
    assert_non_null(
        strstr(buf, "pantala_alert_notifications_total{type=\"email\",result=\"failed\"} 2\n"));
    assert_non_null(strstr(buf, "pantala_alert_outbox_pending 3\n"));
    assert_int_equal(alert_notify_stats_render(&s, buf, 100), PT_E_NOSPACE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_names), cmocka_unit_test(test_webhook),
        cmocka_unit_test(test_am_webhook), cmocka_unit_test(test_alertmanager),
        cmocka_unit_test(test_slack),      cmocka_unit_test(test_email),
        cmocka_unit_test(test_validate),   cmocka_unit_test(test_stats_render),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
