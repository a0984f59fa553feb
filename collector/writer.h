/* The write path between ingest and the store.
 *
 * The ingest thread appends each accepted frame, as its raw bytes, to the
 * current batch; a batch is handed to the writer thread when it holds
 * `batch` frames or is older than `flush`. The writer thread decodes the
 * frames again, writes their points with one store write_batch() call, and
 * also runs the periodic chores (registry persistence, retention).
 *
 * The queue between them is bounded. With an outbox (collector/outbox.h) a
 * third thread, the spiller, moves the oldest queued batches to disk when
 * the queue passes its high-water mark (half its capacity) or while the
 * store fails; the writer then replays the outbox, oldest first, before
 * anything newer in memory, so batches reach the store in the order they
 * were accepted. Only when the queue is full in spite of that (the disk is
 * slower than ingest) is a batch dropped, counted
 * (pantala_points_dropped_total{reason="queue_full"}) and logged: the
 * ingest thread never waits for the store or the disk.
 *
 * Acknowledged delivery: every batch the store took, from the queue or
 * replayed from the outbox, is reported to the registry as durable, frame
 * by frame (coll_registry_durable(): only then may agents get an ack for
 * them); a batch dropped instead is reported lost (coll_registry_forget()),
 * so the agents' resends are taken. A batch spilled to the outbox is
 * reported durable once the outbox has synced it (coll_outbox_synced(),
 * checked by the spiller), while the store may still be down.
 *
 * Transient store errors are retried with capped, jittered exponential
 * back-off (100 ms doubling to 5 s); permanent ones (-EINVAL, PT_E_LIMIT:
 * the batch can never be stored) drop the batch, counted as store_error. */
#ifndef COLL_WRITER_H
#define COLL_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outbox.h"
#include "registry.h"
#include "stats.h"
#include "store/store.h"

struct coll_writer;

struct coll_writer_opts {
    size_t queue_batches;       /* queue capacity */
    size_t batch_frames;        /* frames per batch */
    int64_t flush_ns;           /* maximum age of a partial batch */
    int64_t retention_ns;       /* 0: keep everything */
    int64_t persist_ns;         /* registry persistence period */
    int64_t drain_ns;           /* at shutdown, stop writing queued batches after this */
    struct coll_outbox *outbox; /* NULL: no outbox (a full queue drops); owned by the caller,
                                   closed after coll_writer_stop() */
};

/* The write path's health, for GET /api/v1/store. */
struct coll_writer_status {
    bool healthy;            /* the last store write succeeded (or none failed yet) */
    int64_t outage_since_ns; /* wall clock of the first failure of the current outage, or 0 */
    int64_t last_error_ns;   /* wall clock of the last failed write, or 0 */
    char last_error[256];    /* its message, "" if none */
    size_t queue_depth, queue_capacity;
};
void coll_writer_status(struct coll_writer *w, struct coll_writer_status *st);

int coll_writer_start(struct coll_writer **out, const struct store_ops *ops, struct store *store,
                      struct coll_registry *reg, struct coll_stats *stats,
                      const struct coll_writer_opts *o);
/* Ingest thread: queues one accepted frame (copied). ref names it (agent,
 * epoch, seq): once its points are written the writer reports it durable
 * (coll_registry_durable(), which lets the collector acknowledge it), and
 * if it is dropped instead, lost (coll_registry_forget(): the agent's
 * resend is taken). ref may be NULL (a frame no agent waits for). */
void coll_writer_add(struct coll_writer *w, const void *frame, size_t len, uint16_t npoints,
                     const struct coll_frame_ref *ref);
/* Ingest thread, from a timer: hands over the partial batch when it is old. */
void coll_writer_tick(struct coll_writer *w);
/* Hands over the partial batch, lets the writer drain the queue, joins the
 * threads and frees w. With an outbox, what the store did not take within
 * drain_ns (at once when the store is failing or the outbox already holds
 * data) is written to the outbox, to be replayed at the next start; without
 * one it is counted as dropped (reason "shutdown") and logged. */
void coll_writer_stop(struct coll_writer *w);

#endif
