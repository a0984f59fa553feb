/* GET /api/v1/store: is the store taking writes, and what waits in the
 * outbox (docs/api.md, docs/storage.md "Outbox"). */
#include "api_int.h"
#include "pt/time.h"

#define LOADU(x) ((json_int_t)atomic_load(&(x)))

void api_store(struct api_req *rq, struct api_resp *rs)
{
    const struct coll_api_ctx *c = rq->ctx;
    static const char *const none[] = {NULL};
    if (!api_args_known(rq, rs, none)) return;
    struct coll_writer_status st = {0};
    st.healthy = true;
    if (c->writer) coll_writer_status(c->writer, &st);
    struct coll_stats *s = c->stats;
    int64_t now = pt_now_ns(), oldest = atomic_load(&s->outbox_oldest_ns);
    json_int_t max_bytes = LOADU(s->outbox_max_bytes);
    json_t *ob = json_pack(
        "{s:b,s:I,s:I,s:I,s:I,s:f,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "enabled", max_bytes > 0, "bytes",
        LOADU(s->outbox_bytes), "max_bytes", max_bytes, "batches", LOADU(s->outbox_batches),
        "frames", LOADU(s->outbox_frames), "oldest_age_s",
        oldest > 0 && now > oldest ? (double)(now - oldest) / 1e9 : 0.0, "spilled_batches",
        LOADU(s->outbox_spilled_batches), "spilled_frames", LOADU(s->outbox_spilled_frames),
        "replayed_batches", LOADU(s->outbox_replayed_batches), "replayed_frames",
        LOADU(s->outbox_replayed_frames), "dropped_frames", LOADU(s->frames_dropped_outbox),
        "dropped_points", LOADU(s->points_dropped_outbox), "corrupt_frames",
        LOADU(s->frames_dropped_corrupt));
    json_t *err = json_null();
    if (st.last_error_ns)
        err = json_pack("{s:s,s:o}", "message", st.last_error, "at", api_time(st.last_error_ns));
    json_t *j = json_pack(
        "{s:s,s:b,s:o,s:o,s:{s:I,s:I},s:{s:I,s:I,s:I},s:o}", "backend", c->ops->name, "healthy",
        st.healthy, "outage_since", st.outage_since_ns ? api_time(st.outage_since_ns) : json_null(),
        "last_error", err, "queue", "depth", (json_int_t)st.queue_depth, "capacity",
        (json_int_t)st.queue_capacity, "written", "batches", LOADU(s->batches_written), "frames",
        LOADU(s->frames_written), "points", LOADU(s->points_written), "outbox", ob);
    if (!j) {
        api_error(rs, 500, "internal", "cannot build the store status");
        return;
    }
    api_json(rs, 200, j);
}
