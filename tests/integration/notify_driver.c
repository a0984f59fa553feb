/* Test driver for the notify integration tests: opens an outbox, submits
 * events for one handler, then waits until the outbox is empty (or holds,
 * to be killed), and prints the counters as one JSON line.
 *
 *   notify_driver --outbox F --type webhook --settings '{"url":...}'
 *                 [--count N] [--id-prefix HEX] [--status firing|resolved|flapping]
 *                 [--level warning|critical] [--label k=v ...] [--starts-at-ns NS]
 *                 [--retry-initial-ms MS] [--wait S] [--hold]
 *                 [--interval-ms MS] [--times]   (spacing; print "t <id> <wall ns> <submit ns>") */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pt/alert_outbox.h"
#include "pt/log.h"
#include "pt/time.h"

#define MAX_LABELS 16

static void usage(void)
{
    fprintf(stderr, "usage: notify_driver --outbox FILE --type TYPE --settings JSON [options]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *outbox = NULL, *type = NULL, *settings = NULL, *prefix = "a0", *status = "firing";
    const char *level = "critical", *handler = "test-handler";
    struct alert_kv labels[MAX_LABELS];
    char *lbuf[MAX_LABELS];
    size_t nlabels = 0;
    int count = 1, hold = 0, times = 0, interval_ms = 0;
    double wait_s = 30;
    int64_t starts_at = 0;
    struct alert_notifier_opts o;
    alert_notifier_opts_default(&o);
    o.timeout_ns = 5 * PT_NS_PER_SEC;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--hold") == 0 || strcmp(a, "--times") == 0) {
            *(a[2] == 'h' ? &hold : &times) = 1;
            continue;
        }
        if (!v) usage();
        i++;
        if (strcmp(a, "--outbox") == 0)
            outbox = v;
        else if (strcmp(a, "--type") == 0)
            type = v;
        else if (strcmp(a, "--settings") == 0)
            settings = v;
        else if (strcmp(a, "--handler") == 0)
            handler = v;
        else if (strcmp(a, "--count") == 0)
            count = atoi(v);
        else if (strcmp(a, "--id-prefix") == 0)
            prefix = v;
        else if (strcmp(a, "--status") == 0)
            status = v;
        else if (strcmp(a, "--level") == 0)
            level = v;
        else if (strcmp(a, "--starts-at-ns") == 0)
            starts_at = strtoll(v, NULL, 10);
        else if (strcmp(a, "--retry-initial-ms") == 0)
            o.retry_initial_ns = atoll(v) * PT_NS_PER_MS;
        else if (strcmp(a, "--wait") == 0)
            wait_s = atof(v);
        else if (strcmp(a, "--interval-ms") == 0)
            interval_ms = atoi(v);
        else if (strcmp(a, "--label") == 0 && nlabels < MAX_LABELS) {
            char *eq = strchr(v, '=');
            if (!eq) usage();
            lbuf[nlabels] = strndup(v, (size_t)(eq - v));
            labels[nlabels].key = lbuf[nlabels];
            labels[nlabels].value = eq + 1;
            nlabels++;
        } else
            usage();
    }
    if (!outbox || !type || !settings) usage();
    int t = alert_handler_type_parse(type);
    char err[256];
    if (t < 0) {
        fprintf(stderr, "notify_driver: unknown type %s\n", type);
        return 2;
    }
    if (alert_handler_validate((enum alert_handler_type)t, settings, err, sizeof(err)) < 0) {
        fprintf(stderr, "notify_driver: settings: %s\n", err);
        return 2;
    }
    pt_log_set_level(PT_LOG_INFO);
    struct alert_notifier *n;
    if (alert_notifier_open_opts(&n, outbox, &o, err, sizeof(err)) < 0) {
        fprintf(stderr, "notify_driver: %s\n", err);
        return 1;
    }
    struct alert_handler h = {handler, (enum alert_handler_type)t, settings};
    int64_t now = pt_now_ns();
    for (int i = 0; i < count; i++) {
        char id[65];
        /* 64 hex digits: the prefix, then the index in decimal digits. */
        snprintf(id, sizeof(id), "%-8.8s%056d", prefix, i);
        for (size_t k = 0; k < 8; k++)
            if (id[k] == ' ') id[k] = '0';
        struct alert_event ev = {
            .id = id,
            .rule = "cpu_high",
            .fingerprint = "0123456789abcdef",
            .status = strcmp(status, "resolved") == 0   ? ALERT_RESOLVED
                      : strcmp(status, "flapping") == 0 ? ALERT_FLAPPING
                                                        : ALERT_FIRING,
            .level = strcmp(level, "warning") == 0 ? ALERT_WARNING : ALERT_CRITICAL,
            .labels = labels,
            .nlabels = nlabels,
            .value = 93.5,
            .threshold = 90,
            .starts_at_ns = starts_at ? starts_at : now,
            .ends_at_ns = strcmp(status, "resolved") == 0 ? now : 0,
            .at_ns = now,
            .generator_url = "http://127.0.0.1:8080/api/v1/rules/cpu_high",
        };
        struct alert_kv ann[] = {{"summary", "CPU above 90% on the test VM"}};
        ev.annotations = ann;
        ev.nannotations = 1;
        if (interval_ms && i) usleep((useconds_t)interval_ms * 1000);
        int64_t t0 = pt_now_ns(), m0 = pt_mono_ns();
        if (alert_notify_submit(n, &ev, &h, 1) < 0) {
            fprintf(stderr, "notify_driver: submit %d failed\n", i);
            return 1;
        }
        if (times) printf("t %s %lld %lld\n", id, (long long)t0, (long long)(pt_mono_ns() - m0));
    }
    printf("submitted %d\n", count);
    fflush(stdout);
    while (hold) pause(); /* the test kills us (-9) */

    struct alert_notify_stats s;
    int64_t deadline = pt_mono_ns() + (int64_t)(wait_s * 1e9);
    do {
        usleep(20000);
        alert_notify_stats_get(n, &s);
    } while (s.pending > 0 && pt_mono_ns() < deadline);
    alert_notifier_close(n);
    printf("{\"submitted\":%llu,\"delivered\":%llu,\"retried\":%llu,\"failed\":%llu,"
           "\"expired\":%llu,\"pending\":%lld}\n",
           (unsigned long long)s.submitted[t], (unsigned long long)s.delivered[t],
           (unsigned long long)s.retried[t], (unsigned long long)s.failed[t],
           (unsigned long long)s.expired[t], (long long)s.pending);
    for (size_t i = 0; i < nlabels; i++) free(lbuf[i]);
    return s.pending == 0 ? 0 : 1;
}
