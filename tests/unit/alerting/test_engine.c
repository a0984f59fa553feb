/* The stream engine with an injected clock and a capture in place of the
 * outbox: `each` per VM, `avg` once per MCIS, hysteresis, `for` on the
 * timer, windows, silences, absent and vanished series, the built-in
 * rules, idempotency keys, and states surviving a reopen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pt/alert.h"
#include "pt/catalog.h"
#include "pt/time.h"

#define S  PT_NS_PER_SEC
#define T0 (INT64_C(1763700000) * S)

struct cap_ev {
    char id[65], rule[64], status[16], level[16], vm[64], summary[256];
    double value;
    size_t nhandlers;
};
struct capture {
    struct cap_ev ev[64];
    size_t n;
};

static int capture_submit(void *ctx, const struct alert_event *ev, const struct alert_handler *h,
                          size_t nh)
{
    struct capture *c = ctx;
    assert_true(c->n < 64);
    struct cap_ev *e = &c->ev[c->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->id, sizeof e->id, "%s", ev->id);
    snprintf(e->rule, sizeof e->rule, "%s", ev->rule);
    snprintf(e->status, sizeof e->status, "%s",
             ev->status == ALERT_RESOLVED   ? "resolved"
             : ev->status == ALERT_FLAPPING ? "flapping"
                                            : "firing");
    snprintf(e->level, sizeof e->level, "%s",
             ev->level == ALERT_CRITICAL  ? "critical"
             : ev->level == ALERT_WARNING ? "warning"
                                          : "ok");
    for (size_t i = 0; i < ev->nlabels; i++)
        if (!strcmp(ev->labels[i].key, "vm"))
            snprintf(e->vm, sizeof e->vm, "%s", ev->labels[i].value);
    for (size_t i = 0; i < ev->nannotations; i++)
        if (!strcmp(ev->annotations[i].key, "summary"))
            snprintf(e->summary, sizeof e->summary, "%s", ev->annotations[i].value);
    e->value = ev->value;
    e->nhandlers = nh;
    /* labels come sorted by key, and an id is 64 hex digits */
    for (size_t i = 1; i < ev->nlabels; i++)
        assert_true(strcmp(ev->labels[i - 1].key, ev->labels[i].key) < 0);
    assert_int_equal(strlen(ev->id), 64);
    return 0;
}

struct fx {
    struct alert_engine *e;
    struct capture cap;
    char dir[64], db[128];
};

static struct alert_engine *open_engine(struct fx *f, bool builtins)
{
    struct alert_engine_opts o = {
        .db_path = f->db,
        .submit = capture_submit,
        .submit_ctx = &f->cap,
        .external_url = "http://pantala.example:9090/",
        .flap_changes = 6,
        .flap_window_ns = 600 * S,
        .agent_down = builtins,
        .agent_down_intervals = 3,
        .frames_lost = builtins,
        .frames_lost_ratio = 0.05,
        .frames_lost_window_ns = 60 * S,
    };
    char err[256] = "";
    struct alert_engine *e;
    int rc = alert_engine_open(&e, &o, err, sizeof err);
    if (rc) fail_msg("open: %s", err);
    return e;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/pt-alert-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof f->db, "%s/alerts.db", f->dir);
    f->e = open_engine(f, true);
    const char *h = "{\"name\": \"ops\", \"type\": \"webhook\", \"settings\": {\"url\": "
                    "\"http://127.0.0.1:1/hook\"}}";
    char err[256];
    assert_int_equal(alert_handlers_put(f->e, h, strlen(h), NULL, true, NULL, err, sizeof err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    alert_engine_close(f->e);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void add_rule(struct fx *f, const char *json)
{
    char err[512] = "";
    int rc = alert_rules_put(f->e, json, strlen(json), NULL, true, NULL, err, sizeof err);
    if (rc) fail_msg("rule: %d %s", rc, err);
}

/* One frame of measurement `meas` with one field and optional tag. */
static void feed(struct fx *f, const char *mcis, const char *vm, const char *meas,
                 const char *field, double v, const char *tagk, const char *tagv, int64_t now)
{
    struct pt_field fl = {.key = pt_str_c(field), .type = PT_F_FLOAT, .v.f = v};
    struct pt_tag tg = {pt_str_c(tagk), pt_str_c(tagv)};
    struct pt_meas m = {.name = pt_str_c(meas),
                        .tags = tagk ? &tg : NULL,
                        .fields = &fl,
                        .ntags = tagk ? 1 : 0,
                        .nfields = 1};
    struct pt_frame fr = {.version = 1,
                          .kind = 1,
                          .agent_id = 1,
                          .seq = 1,
                          .ts_ns = now,
                          .interval_ms = 1000,
                          .nparts = 1,
                          .meas = &m,
                          .nmeas = 1};
    fr.id.ns = pt_str_c("ns01");
    fr.id.mcis = pt_str_c(mcis);
    fr.id.vm = pt_str_c(vm);
    alert_engine_feed(f->e, &fr, now);
}

static void cpu(struct fx *f, const char *vm, double v, int64_t now)
{
    feed(f, "web01", vm, "cpu", "cpu_utilization", v, NULL, NULL, now);
}

static void test_each_per_vm(void **state)
{
    struct fx *f = *state;
    add_rule(
        f, "{\"name\": \"cpu-each\", \"scope\": {\"ns\": \"ns01\", \"mcis\": \"web01\"},"
           " \"metric\": \"cpu.cpu_utilization\", \"warn\": \"> 80\", \"crit\": \"> 95\","
           " \"handlers\": [\"ops\"],"
           " \"annotations\": {\"summary\": \"{{vm}} {{level}} at {{value}} (> {{threshold}})\"}}");
    cpu(f, "vm1", 10, T0);
    cpu(f, "vm2", 10, T0);
    feed(f, "other", "vm9", "cpu", "cpu_utilization", 99, NULL, NULL, T0); /* another MCIS */
    assert_int_equal(f->cap.n, 0);
    cpu(f, "vm1", 85, T0 + S);
    assert_int_equal(f->cap.n, 1);
    assert_string_equal(f->cap.ev[0].status, "firing");
    assert_string_equal(f->cap.ev[0].level, "warning");
    assert_string_equal(f->cap.ev[0].vm, "vm1");
    assert_true(f->cap.ev[0].value == 85);
    assert_int_equal(f->cap.ev[0].nhandlers, 1);
    assert_string_equal(f->cap.ev[0].summary, "vm1 warning at 85 (> 80)");
    cpu(f, "vm2", 99, T0 + S);
    assert_int_equal(f->cap.n, 2);
    assert_string_equal(f->cap.ev[1].vm, "vm2");
    assert_string_equal(f->cap.ev[1].level, "critical");
    json_t *act = alert_active(f->e);
    assert_int_equal(json_array_size(act), 2);
    json_decref(act);
    cpu(f, "vm1", 20, T0 + 2 * S);
    assert_int_equal(f->cap.n, 3);
    assert_string_equal(f->cap.ev[2].status, "resolved");
    assert_string_equal(f->cap.ev[2].level, "warning");
    assert_string_equal(f->cap.ev[2].vm, "vm1");
    assert_string_not_equal(f->cap.ev[0].id, f->cap.ev[2].id);
    /* history, newest first, filtered by level */
    struct alert_history_query q = {.rule = "cpu-each", .level = ALERT_WARNING};
    json_t *h;
    assert_int_equal(alert_history(f->e, &q, &h), 0);
    assert_int_equal(json_array_size(h), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(h, 0), "status")),
                        "resolved");
    json_decref(h);
}

static void test_avg_once_per_mcis(void **state)
{
    struct fx *f = *state;
    add_rule(f, "{\"name\": \"cpu-avg\", \"scope\": {\"ns\": \"ns01\", \"mcis\": \"web01\"},"
                " \"metric\": \"cpu.cpu_utilization\", \"reduce\": \"avg\", \"crit\": \"> 50\","
                " \"recover\": 30}");
    cpu(f, "vm1", 90, T0); /* avg of one VM: 90 */
    assert_int_equal(f->cap.n, 1);
    assert_string_equal(f->cap.ev[0].vm, ""); /* no vm label: the MCIS */
    cpu(f, "vm2", 0, T0 + S);                 /* avg 45: below 50 but above recover 30 */
    cpu(f, "vm3", 30, T0 + S);                /* avg 40 */
    assert_int_equal(f->cap.n, 1);
    cpu(f, "vm1", 60, T0 + 2 * S); /* avg 30: recovered (not > 30) */
    assert_int_equal(f->cap.n, 2);
    assert_string_equal(f->cap.ev[1].status, "resolved");
    assert_true(f->cap.ev[1].value == 30);
    cpu(f, "vm2", 100, T0 + 3 * S); /* avg (60+100+30)/3 > 50 */
    assert_int_equal(f->cap.n, 3);
    assert_string_equal(f->cap.ev[2].status, "firing");
}

static void test_max_and_p95(void **state)
{
    struct fx *f = *state;
    add_rule(f, "{\"name\": \"cpu-p95\", \"scope\": {\"ns\": \"ns01\", \"mcis\": \"web01\"},"
                " \"metric\": \"cpu.cpu_utilization\", \"reduce\": \"p95\", \"crit\": \">= 95\"}");
    char vm[16];
    for (int i = 1; i <= 20; i++) {
        snprintf(vm, sizeof vm, "vm%d", i);
        cpu(f, vm, i * 5, T0); /* 5..100: nearest-rank p95 of 20 values = the 19th = 95 */
    }
    assert_int_equal(f->cap.n, 1);
    assert_true(f->cap.ev[0].value == 95);
}

static void test_for_on_timer(void **state)
{
    struct fx *f = *state;
    add_rule(f, "{\"name\": \"cpu-for\", \"scope\": {\"ns\": \"ns01\", \"mcis\": \"web01\", "
                "\"vm\": \"vm1\"},"
                " \"metric\": \"cpu.cpu_utilization\", \"warn\": \"> 80\", \"for\": \"10s\"}");
    for (int i = 0; i <= 5; i++) {
        cpu(f, "vm1", 90, T0 + i * S);
        cpu(f, "vm2", 90, T0 + i * S); /* not in scope */
        alert_engine_tick(f->e, T0 + i * S);
    }
    assert_int_equal(f->cap.n, 0);
    json_t *act = alert_active(f->e);
    assert_int_equal(json_array_size(act), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(act, 0), "state")),
                        "pending");
    json_decref(act);
    for (int i = 6; i <= 9; i++) cpu(f, "vm1", 90, T0 + i * S);
    alert_engine_tick(f->e, T0 + 9 * S + S / 2);
    assert_int_equal(f->cap.n, 0);
    alert_engine_tick(f->e, T0 + 10 * S); /* `for` elapses on the timer, between points */
    assert_int_equal(f->cap.n, 1);
    assert_string_equal(f->cap.ev[0].vm, "vm1");
}

static void test_window_avg(void **state)
{
    struct fx *f = *state;
    add_rule(f, "{\"name\": \"cpu-win\", \"scope\": {\"ns\": \"ns01\", \"mcis\": \"web01\"},"
                " \"metric\": \"cpu.cpu_utilization\", \"window\": \"8s\", \"warn\": \"> 50\"}");
    cpu(f, "vm1", 0, T0);
    cpu(f, "vm1", 0, T0 + S);
    cpu(f, "vm1", 100, T0 + 2 * S); /* avg 33 */
    assert_int_equal(f->cap.n, 0);
    cpu(f, "vm1", 100, T0 + 3 * S); /* avg 50: not > 50 */
    assert_int_equal(f->cap.n, 0);
    cpu(f, "vm1", 100, T0 + 4 * S); /* avg 60 */
    assert_int_equal(f->cap.n, 1);
    /* the zeros age out of the window; then the hundreds do once it is quiet */
    cpu(f, "vm1", 100, T0 + 9 * S);
    assert_int_equal(f->cap.n, 1);
    cpu(f, "vm1", 10, T0 + 10 * S); /* window: 100 x3 (8,9 s... ) and 10 */
    assert_int_equal(f->cap.n, 1);
}

static void test_silence(void **state)
{
    struct fx *f = *state;
    add_rule(f,
             "{\"name\": \"cpu-s\", \"scope\": {\"ns\": \"ns01\", \"mcis\": \"web01\"},"
             " \"metric\": \"cpu.cpu_utilization\", \"warn\": \"> 80\", \"handlers\": [\"ops\"]}");
    char err[256] = "";
    const char *sil = "{\"matchers\": {\"alertname\": \"cpu-s\", \"vm\": \"vm1\"}, \"ends_at\": "
                      "\"now+1h\", \"comment\": \"maintenance\"}";
    json_t *out = NULL;
    int64_t now = pt_now_ns();
    assert_int_equal(alert_silences_add(f->e, sil, strlen(sil), now, &out, err, sizeof err), 0);
    assert_string_equal(json_string_value(json_object_get(out, "state")), "active");
    json_int_t id = json_integer_value(json_object_get(out, "id"));
    json_decref(out);
    cpu(f, "vm1", 90, now);
    assert_int_equal(f->cap.n, 0); /* muted */
    cpu(f, "vm2", 90, now);
    assert_int_equal(f->cap.n, 1); /* vm2 is not matched */
    assert_string_equal(f->cap.ev[0].vm, "vm2");
    struct alert_history_query q = {.rule = "cpu-s", .level = -1};
    json_t *h;
    assert_int_equal(alert_history(f->e, &q, &h), 0);
    assert_int_equal(json_array_size(h), 2); /* muted events are still history */
    size_t muted = 0;
    for (size_t i = 0; i < 2; i++)
        muted += json_is_true(json_object_get(json_array_get(h, i), "silenced"));
    assert_int_equal(muted, 1);
    json_decref(h);
    /* a silence that has ended mutes nothing */
    assert_int_equal(alert_silences_delete(f->e, id), 0);
    cpu(f, "vm1", 10, now + S);
    assert_int_equal(f->cap.n, 2);
    assert_string_equal(f->cap.ev[1].status, "resolved");
    const char *badsil = "{\"matchers\": {}, \"ends_at\": \"now+1h\"}";
    assert_int_equal(alert_silences_add(f->e, badsil, strlen(badsil), now, NULL, err, sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "\"matchers\""));
}

static void test_absent_and_vanished(void **state)
{
    struct fx *f = *state;
    add_rule(f, "{\"name\": \"cpu-absent\", \"scope\": {\"ns\": \"ns01\", \"mcis\": \"web01\"},"
                " \"metric\": \"cpu.cpu_utilization\", \"warn\": \"> 80\", \"absent\": \"10s\"}");
    add_rule(f, "{\"name\": \"cpu-plain\", \"scope\": {\"ns\": \"ns01\", \"mcis\": \"web01\"},"
                " \"metric\": \"cpu.cpu_utilization\", \"warn\": \"> 80\"}");
    cpu(f, "vm1", 90, T0); /* both fire */
    assert_int_equal(f->cap.n, 2);
    cpu(f, "vm1", 10, T0 + S); /* both resolve */
    assert_int_equal(f->cap.n, 4);
    for (int64_t t = T0 + 2 * S; t <= T0 + 12 * S; t += S) alert_engine_tick(f->e, t);
    /* silent 11 s: the absent rule fires critical... wait: warn-only rule fires at warning */
    assert_int_equal(f->cap.n, 5);
    assert_string_equal(f->cap.ev[4].rule, "cpu-absent");
    assert_string_equal(f->cap.ev[4].status, "firing");
    assert_true(isnan(f->cap.ev[4].value));
    assert_string_equal(f->cap.ev[4].vm, "vm1");
    /* data returns: resolves */
    cpu(f, "vm1", 10, T0 + 13 * S);
    assert_int_equal(f->cap.n, 6);
    assert_string_equal(f->cap.ev[5].status, "resolved");
    /* a firing series of a rule without absent resolves when it goes away */
    cpu(f, "vm2", 95, T0 + 14 * S);
    size_t n = f->cap.n;
    for (int64_t t = T0 + 15 * S; t <= T0 + 40 * S; t += S) alert_engine_tick(f->e, t);
    int resolved_plain = 0;
    for (size_t i = n; i < f->cap.n; i++)
        if (!strcmp(f->cap.ev[i].rule, "cpu-plain") && !strcmp(f->cap.ev[i].status, "resolved") &&
            !strcmp(f->cap.ev[i].vm, "vm2"))
            resolved_plain++;
    assert_int_equal(resolved_plain, 1);
}

static void test_repeat_and_flapping(void **state)
{
    struct fx *f = *state;
    add_rule(f, "{\"name\": \"cpu-rep\", \"scope\": {\"ns\": \"ns01\", \"mcis\": \"web01\"},"
                " \"metric\": \"cpu.cpu_utilization\", \"warn\": \"> 80\", \"repeat\": \"1m\"}");
    for (int i = 0; i < 60; i++) {
        cpu(f, "vm1", 90, T0 + i * S);
        alert_engine_tick(f->e, T0 + i * S + S / 2);
    }
    assert_int_equal(f->cap.n, 1);
    alert_engine_tick(f->e, T0 + 61 * S);
    assert_int_equal(f->cap.n, 2);
    assert_string_equal(f->cap.ev[1].status, "firing");
    assert_string_not_equal(f->cap.ev[0].id, f->cap.ev[1].id); /* a repeat is a new event */
    /* flapping: more than 6 changes in 10 min */
    size_t n0 = f->cap.n;
    for (int i = 0; i < 12; i++) cpu(f, "vm2", i % 2 ? 10 : 90, T0 + (70 + i) * S);
    size_t flapping = 0, after = 0;
    for (size_t i = n0; i < f->cap.n; i++) {
        if (!strcmp(f->cap.ev[i].status, "flapping")) flapping++;
        if (flapping && strcmp(f->cap.ev[i].status, "flapping")) after++;
    }
    assert_int_equal(flapping, 1);
    assert_int_equal(after, 0);
    assert_int_equal(f->cap.n - n0, 7); /* 6 changes reported, then flapping once */
}

static void test_agent_down_and_lost(void **state)
{
    struct fx *f = *state;
    struct alert_agent_sample a = {"ns01", "web01", "vm7", T0, 1000, 100, 0};
    alert_engine_agents(f->e, &a, 1, T0 + S);
    assert_int_equal(f->cap.n, 0);
    alert_engine_agents(f->e, &a, 1, T0 + 3 * S); /* 3 intervals without a frame */
    assert_int_equal(f->cap.n, 1);
    assert_string_equal(f->cap.ev[0].rule, "agent_down");
    assert_string_equal(f->cap.ev[0].level, "critical");
    assert_string_equal(f->cap.ev[0].vm, "vm7");
    a.last_seen_ns = T0 + 4 * S; /* it is back */
    alert_engine_agents(f->e, &a, 1, T0 + 4 * S);
    assert_int_equal(f->cap.n, 2);
    assert_string_equal(f->cap.ev[1].status, "resolved");
    /* frames_lost: 10 % lost over the window (threshold 5 %) */
    for (int i = 5; i <= 40; i += 5) {
        a.last_seen_ns = T0 + i * S;
        a.accepted += 45;
        a.missing += 5;
        alert_engine_agents(f->e, &a, 1, T0 + i * S);
    }
    assert_int_equal(f->cap.n, 3);
    assert_string_equal(f->cap.ev[2].rule, "frames_lost");
    assert_true(fabs(f->cap.ev[2].value - 10) < 0.01);
    /* no more losses: once the window has passed, resolved */
    for (int i = 45; i <= 120; i += 5) {
        a.last_seen_ns = T0 + i * S;
        a.accepted += 50;
        alert_engine_agents(f->e, &a, 1, T0 + i * S);
    }
    assert_int_equal(f->cap.n, 4);
    assert_string_equal(f->cap.ev[3].status, "resolved");
}

static void test_persistence(void **state)
{
    struct fx *f = *state;
    add_rule(f,
             "{\"name\": \"cpu-p\", \"scope\": {\"ns\": \"ns01\", \"mcis\": \"web01\"},"
             " \"metric\": \"cpu.cpu_utilization\", \"crit\": \"> 80\", \"handlers\": [\"ops\"]}");
    int64_t now = pt_now_ns();
    cpu(f, "vm1", 90, now);
    assert_int_equal(f->cap.n, 1);
    char first[65];
    snprintf(first, sizeof first, "%s", f->cap.ev[0].id);
    alert_engine_close(f->e);
    f->e = open_engine(f, true);
    json_t *j;
    assert_int_equal(alert_rules_get(f->e, "cpu-p", &j), 0);
    json_decref(j);
    assert_int_equal(alert_handlers_get(f->e, "ops", &j), 0);
    json_decref(j);
    json_t *act = alert_active(f->e);
    assert_int_equal(json_array_size(act), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(act, 0), "state")),
                        "critical");
    json_decref(act);
    /* still firing after the restart: no second firing, and it resolves */
    cpu(f, "vm1", 95, now + S);
    assert_int_equal(f->cap.n, 1);
    cpu(f, "vm1", 10, now + 2 * S);
    assert_int_equal(f->cap.n, 2);
    assert_string_equal(f->cap.ev[1].status, "resolved");
    assert_string_not_equal(first, f->cap.ev[1].id);
    /* a handler in use cannot go; a rule change resolves nothing when ok */
    char err[256];
    assert_int_equal(alert_handlers_delete(f->e, "ops", err, sizeof err), -EBUSY);
    assert_non_null(strstr(err, "cpu-p"));
    assert_int_equal(alert_rules_delete(f->e, "cpu-p"), 0);
    assert_int_equal(alert_rules_get(f->e, "cpu-p", &j), -ENOENT);
    assert_int_equal(alert_handlers_delete(f->e, "ops", err, sizeof err), 0);
    /* a rule naming a missing handler is refused */
    const char *r = "{\"name\": \"x\", \"scope\": {\"ns\": \"a\", \"mcis\": \"b\"}, \"metric\": "
                    "\"cpu.cpu_user\", \"warn\": \"> 1\", \"handlers\": [\"ops\"]}";
    assert_int_equal(alert_rules_put(f->e, r, strlen(r), NULL, true, NULL, err, sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "\"handlers\""));
}

/* Replacing or deleting a rule resolves what it fired; a disabled rule
 * is kept but not evaluated. */
static void test_rule_replace_delete(void **state)
{
    struct fx *f = *state;
    const char *v1 = "{\"name\": \"cpu-r\", \"scope\": {\"ns\": \"ns01\", \"mcis\": \"web01\"},"
                     " \"metric\": \"cpu.cpu_utilization\", \"crit\": \"> 80\"}";
    add_rule(f, v1);
    cpu(f, "vm1", 90, T0);
    assert_int_equal(f->cap.n, 1);
    char err[512] = "";
    const char *v2 = "{\"scope\": {\"ns\": \"ns01\", \"mcis\": \"web01\"},"
                     " \"metric\": \"cpu.cpu_utilization\", \"crit\": \"> 95\"}";
    assert_int_equal(alert_rules_put(f->e, v2, strlen(v2), "cpu-r", false, NULL, err, sizeof err),
                     0);
    assert_int_equal(f->cap.n, 2);
    assert_string_equal(f->cap.ev[1].status, "resolved");
    cpu(f, "vm1", 90, T0 + S); /* below the new threshold */
    assert_int_equal(f->cap.n, 2);
    cpu(f, "vm1", 99, T0 + 2 * S);
    assert_int_equal(f->cap.n, 3);
    assert_int_equal(alert_rules_delete(f->e, "cpu-r"), 0);
    assert_int_equal(f->cap.n, 4);
    assert_string_equal(f->cap.ev[3].status, "resolved");
    json_t *act = alert_active(f->e);
    assert_int_equal(json_array_size(act), 0);
    json_decref(act);
    const char *off =
        "{\"name\": \"cpu-off\", \"enabled\": false, \"scope\": {\"ns\": \"ns01\","
        " \"mcis\": \"web01\"}, \"metric\": \"cpu.cpu_utilization\", \"crit\": \"> 1\"}";
    add_rule(f, off);
    cpu(f, "vm1", 99, T0 + 3 * S);
    assert_int_equal(f->cap.n, 4);
    /* PUT of a new name creates nothing here: create is explicit */
    assert_int_equal(alert_rules_put(f->e, v2, strlen(v2), "nope", false, NULL, err, sizeof err),
                     -ENOENT);
    assert_int_equal(alert_rules_put(f->e, off, strlen(off), NULL, true, NULL, err, sizeof err),
                     -EEXIST);
    assert_int_equal(alert_rules_delete(f->e, "agent_down"), -EPERM);
}

static void test_dryrun(void **state)
{
    (void)state;
    const char *js = "{\"name\": \"d\", \"scope\": {\"ns\": \"a\", \"mcis\": \"b\"}, \"metric\": "
                     "\"cpu.cpu_user\", \"reduce\": \"avg\", \"warn\": \"> 50\", \"for\": \"2s\"}";
    struct alert_rule *r;
    char err[256];
    assert_int_equal(alert_rule_parse(NULL, js, strlen(js), &r, err, sizeof err), 0);
    int64_t ts[6] = {T0, T0 + S, T0 + 2 * S, T0 + 3 * S, T0 + 4 * S, T0 + 5 * S};
    double v1[6] = {10, 90, 90, 90, 90, 10}, v2[6] = {10, 30, 30, 30, 30, 10};
    struct alert_dry_series s[2] = {{"vm1", NULL, NULL, 0, ts, v1, 6},
                                    {"vm2", NULL, NULL, 0, ts, v2, 6}};
    json_t *out = alert_dryrun(r, s, 2);
    json_t *ev = json_object_get(out, "events");
    assert_int_equal(json_array_size(ev), 2);
    /* avg 60 from 1 s; `for` 2 s: fires at 3 s, resolves at 5 s */
    assert_string_equal(json_string_value(json_object_get(json_array_get(ev, 0), "status")),
                        "firing");
    assert_true(json_number_value(json_object_get(json_array_get(ev, 0), "value")) == 60);
    const char *at = json_string_value(json_object_get(json_array_get(ev, 0), "at"));
    char want[48];
    pt_time_format(T0 + 3 * S, 3, want, sizeof want);
    assert_string_equal(at, want);
    assert_string_equal(json_string_value(json_object_get(json_array_get(ev, 1), "status")),
                        "resolved");
    json_decref(out);
    alert_rule_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_each_per_vm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_avg_once_per_mcis, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_and_p95, setup, teardown),
        cmocka_unit_test_setup_teardown(test_for_on_timer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_avg, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_absent_and_vanished, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeat_and_flapping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_down_and_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persistence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rule_replace_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dryrun, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
