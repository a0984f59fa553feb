/* The outbox without a receiver: rows survive close/reopen, are retried
 * with back-off against a refused port, and expire after the give-up age.
 * (Delivery to live receivers: tests/integration/test_notify_*.py.) */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "pt/alert_outbox.h"
#include "pt/time.h"

static char dir[64], path[96];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/pt-notify-XXXXXX");
    if (!mkdtemp(dir)) return -1;
    snprintf(path, sizeof(path), "%s/outbox.db", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char p[128];
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
        unlink(p);
    }
    rmdir(dir);
    return 0;
}

static struct alert_event ev(const char *id)
{
    static const struct alert_kv l[] = {{"vm", "vm-1"}};
    struct alert_event e = {.id = id,
                            .rule = "r",
                            .fingerprint = "0123456789abcdef",
                            .labels = l,
                            .nlabels = 1,
                            .value = 1,
                            .threshold = 0,
                            .starts_at_ns = pt_now_ns(),
                            .at_ns = pt_now_ns()};
    return e;
}

/* Port 1 on loopback: nothing listens, the connection is refused at once. */
static const struct alert_handler refused = {"dead", ALERT_H_WEBHOOK,
                                             "{\"url\":\"http://127.0.0.1:1/hook\"}"};

static struct alert_notify_stats wait_for(struct alert_notifier *n,
                                          int (*done)(const struct alert_notify_stats *))
{
    struct alert_notify_stats s;
    for (int i = 0; i < 500; i++) {
        alert_notify_stats_get(n, &s);
        if (done(&s)) return s;
        usleep(10000);
    }
    fail_msg("timed out waiting for the outbox");
    return s;
}

static int retried_twice(const struct alert_notify_stats *s)
{
    return s->retried[ALERT_H_WEBHOOK] >= 2;
}

static int expired_one(const struct alert_notify_stats *s)
{
    return s->expired[ALERT_H_WEBHOOK] >= 1 && s->pending == 0;
}

static int64_t count_rows(const char *where)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM outbox WHERE %s", where);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t c = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return c;
}

static void test_retry_survive_expire(void **state)
{
    (void)state;
    struct alert_notifier_opts o;
    alert_notifier_opts_default(&o);
    o.retry_initial_ns = 20 * PT_NS_PER_MS;
    o.retry_max_ns = 40 * PT_NS_PER_MS;
    char err[256];
    struct alert_notifier *n;
    assert_int_equal(alert_notifier_open_opts(&n, path, &o, err, sizeof(err)), 0);

    struct alert_event e = ev("aa01");
    assert_int_equal(alert_notify_submit(n, &e, &refused, 1), 0);
    assert_int_equal(alert_notify_submit(n, &e, NULL, 0), 0); /* nothing to queue */
    struct alert_event bad = ev(NULL);
    assert_int_equal(alert_notify_submit(n, &bad, &refused, 1), -EINVAL);
    struct alert_notify_stats s = wait_for(n, retried_twice);
    assert_int_equal(s.submitted[ALERT_H_WEBHOOK], 1);
    assert_int_equal(s.delivered[ALERT_H_WEBHOOK], 0);
    assert_int_equal(s.pending, 1);
    alert_notifier_close(n);

    /* Still there after close, with its attempts and the reason. */
    assert_int_equal(count_rows("state=0 AND event_id='aa01' AND attempts>=2 AND leased=0 "
                                "AND last_error LIKE '%onnect%'"),
                     1);

    /* Reopened with a give-up age the row has passed: expired, not sent. */
    o.give_up_after_ns = 1;
    assert_int_equal(alert_notifier_open_opts(&n, path, &o, err, sizeof(err)), 0);
    alert_notify_stats_get(n, &s);
    s = wait_for(n, expired_one);
    assert_int_equal(s.expired[ALERT_H_WEBHOOK], 1);
    alert_notifier_close(n);
    assert_int_equal(count_rows("state=1 AND last_error LIKE 'expired%'"), 1);
}

static void test_bad_open(void **state)
{
    (void)state;
    char err[256] = "";
    struct alert_notifier *n = (void *)1;
    assert_true(alert_notifier_open(&n, "/nonexistent-dir/x/outbox.db", err, sizeof(err)) < 0);
    assert_null(n);
    assert_non_null(strstr(err, "/nonexistent-dir/x/outbox.db"));
    struct alert_notifier_opts o;
    alert_notifier_opts_default(&o);
    o.max_inflight = 0;
    assert_true(alert_notifier_open_opts(&n, path, &o, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "max_inflight"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_retry_survive_expire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_open, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
