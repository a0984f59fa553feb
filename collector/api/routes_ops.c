/* /healthz and /metrics (the daemon's own counters, Prometheus text). */
#include "api_int.h"
#include "pt/alert_outbox.h"
#include "pt/time.h"
#include "pt/version.h"

#include <stdlib.h>
#include <string.h>

void api_healthz(struct api_req *rq, struct api_resp *rs)
{
    const struct coll_api_ctx *c = rq->ctx;
    int64_t now = pt_now_ns();
    api_json(rs, 200,
             json_pack("{s:s,s:s,s:I,s:s,s:{s:I,s:I},s:{s:i}}", "status", "ok", "version",
                       PT_VERSION_STRING, "uptime_s",
                       (json_int_t)((now - c->start_ns) / PT_NS_PER_SEC), "store", c->ops->name,
                       "agents", "registered",
                       (json_int_t)atomic_load(&c->stats->agents_registered), "up",
                       (json_int_t)coll_registry_count_up(c->reg, now), "ingest", "udp_port",
                       (int)c->udp_port));
}

void api_prometheus(struct api_req *rq, struct api_resp *rs)
{
    const struct coll_api_ctx *c = rq->ctx;
    char *text;
    size_t len;
    if (coll_stats_render(c->stats, (int64_t)coll_registry_count_up(c->reg, pt_now_ns()), &text,
                          &len)) {
        api_error(rs, 500, "internal", "cannot render metrics");
        return;
    }
    if (c->alerts) { /* alerting's counters follow the collector's */
        struct alert_stats as;
        struct alert_notify_stats ns;
        alert_engine_stats(c->alerts, &as);
        alert_notify_stats_get(c->notifier, &ns);
        char buf[16384];
        int n = alert_stats_render(&as, buf, sizeof buf);
        int m = n > 0 ? alert_notify_stats_render(&ns, buf + n, sizeof buf - (size_t)n) : -1;
        if (m > 0) n += m;
        char *t = n > 0 ? realloc(text, len + (size_t)n + 1) : NULL;
        if (t) {
            memcpy(t + len, buf, (size_t)n + 1);
            text = t;
            len += (size_t)n;
        }
    }
    rs->status = 200;
    rs->text = text;
    rs->text_len = len;
    rs->ctype = "text/plain; version=0.0.4; charset=utf-8";
}
