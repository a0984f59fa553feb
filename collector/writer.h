/* The write path between ingest and the store.
 *
 * The ingest thread appends each accepted frame, as its raw bytes, to the
 * current batch; a batch is handed to the writer thread when it holds
 * `batch` frames or is older than `flush`. The writer thread decodes the
 * frames again, writes their points with one store write_batch() call, and
 * also runs the periodic chores (registry persistence, retention). The
 * queue between them is bounded: when it is full the batch is dropped,
 * counted (pantala_points_dropped_total{reason="queue_full"}) and logged,
 * so a slow store never stalls the UDP socket.
 *
 * Acknowledged delivery: each batch carries the (agent, epoch, seq) of its
 * frames; after the store wrote it, the writer thread hands them to the
 * registry as durable, and a dropped batch's frames as lost (their seqs are
 * forgotten, so the agents' resends are taken). */
#ifndef COLL_WRITER_H
#define COLL_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "registry.h"
#include "stats.h"
#include "store/store.h"

struct coll_writer;

struct coll_writer_opts {
    size_t queue_batches; /* queue capacity */
    size_t batch_frames;  /* frames per batch */
    int64_t flush_ns;     /* maximum age of a partial batch */
    int64_t retention_ns; /* 0: keep everything */
    int64_t persist_ns;   /* registry persistence period */
    int64_t drain_ns;     /* at shutdown, stop writing queued batches after this */
};

int coll_writer_start(struct coll_writer **out, const struct store_ops *ops, struct store *store,
                      struct coll_registry *reg, struct coll_stats *stats,
                      const struct coll_writer_opts *o);
/* Ingest thread: queues one accepted frame (copied). ref names it (agent,
 * epoch, seq): once its batch is written the writer reports it durable
 * (coll_registry_durable(), which lets the collector acknowledge it), and
 * if the batch is dropped instead, lost (coll_registry_forget()). */
void coll_writer_add(struct coll_writer *w, const void *frame, size_t len, uint16_t npoints,
                     const struct coll_frame_ref *ref);
/* Ingest thread, from a timer: hands over the partial batch when it is old. */
void coll_writer_tick(struct coll_writer *w);
/* Hands over the partial batch, lets the writer drain the queue (for at
 * most drain_ns; what is left then is counted as dropped and logged), joins
 * it and frees w. */
void coll_writer_stop(struct coll_writer *w);

#endif
