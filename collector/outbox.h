/* The durable outbox: an on-disk FIFO of write batches (DESIGN §6, "when
 * full, it spills to an on-disk outbox that is replayed in order").
 *
 * Records are opaque byte strings (the writer's raw frame batches) with
 * their frame and point counts and the wall-clock time of their first
 * frame. They live in segment files <dir>/<seq>.seg (docs/storage.md,
 * "Outbox"): each record is length-prefixed and CRC-32 checked, so a torn or
 * corrupt tail after a crash is found at open, logged and truncated away.
 *
 * The outbox is bounded in bytes on disk: an append that would pass
 * max_bytes first deletes the oldest segments (whole files), and reports
 * what they held so the caller can count it.
 *
 * Threads: any number of appenders, ONE consumer (peek/pop); every call
 * takes the outbox's own lock (held during disk reads and writes) except
 * coll_outbox_records() and coll_outbox_sync_soon(), and none calls back.
 * Syncs run outside that lock. */
#ifndef COLL_OUTBOX_H
#define COLL_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#define COLL_OUTBOX_MIN_BYTES  (256 * 1024)
#define COLL_OUTBOX_MAX_RECORD (64u << 20) /* payload ceiling of one record */

struct coll_outbox;

struct coll_outbox_opts {
    const char *dir;        /* created if missing */
    uint64_t max_bytes;     /* >= COLL_OUTBOX_MIN_BYTES */
    uint64_t segment_bytes; /* 0: max_bytes / 16, clamped to [64 KiB, 64 MiB] */
};

/* One record, as peek() returns it. */
struct coll_outbox_rec {
    uint64_t id; /* increases by one per append, also across restarts */
    int64_t born_ns;
    uint32_t nframes, npoints;
    const unsigned char *data; /* the outbox's buffer: valid until the next peek or close */
    size_t len;
};

/* What the outbox holds and what it lost; cumulative counters since open. */
struct coll_outbox_info {
    uint64_t bytes; /* on disk, headers included */
    uint64_t records, frames, points;
    int64_t oldest_born_ns; /* born_ns of the head record, 0 when empty */
    uint64_t dropped_records, dropped_frames, dropped_points, dropped_bytes; /* full */
    uint64_t corrupt_bytes;                  /* torn or damaged bytes removed */
    uint64_t corrupt_frames, corrupt_points; /* pending data lost to damage, when known */
};

/* Opens (creating) the outbox in o->dir and scans what is there: damaged
 * tails are truncated (logged), consumed segments deleted. On failure returns
 * <0 with a message in err. */
int coll_outbox_open(struct coll_outbox **out, const struct coll_outbox_opts *o, char *err,
                     size_t errlen);
/* Appends a record (not yet durable: see sync). Returns 0 and its id, or
 * PT_E_LIMIT when it could never fit (len beyond COLL_OUTBOX_MAX_RECORD or
 * the whole outbox), or -errno from the disk (nothing appended then). */
int coll_outbox_append(struct coll_outbox *ob, const void *data, size_t len, uint32_t nframes,
                       uint32_t npoints, int64_t born_ns, uint64_t *id);
/* Makes every append so far durable (fdatasync of the written segments and
 * of the directory when a segment was created). */
int coll_outbox_sync(struct coll_outbox *ob);
/* Every record with an id up to the value returned is durable (appended
 * and synced); 0 before the first sync. Lock-free. */
uint64_t coll_outbox_synced(struct coll_outbox *ob);
/* Asks for a sync and returns at once: a thread of the outbox (started on
 * first use) does it, so an appender never waits for the disk's flush. */
void coll_outbox_sync_soon(struct coll_outbox *ob);
/* The oldest record, or -ENOENT when empty. Damaged records found here are
 * logged, counted and skipped (with the rest of their segment). */
int coll_outbox_peek(struct coll_outbox *ob, struct coll_outbox_rec *rec);
/* Removes the oldest record if its id is id; -ENOENT when it is no longer
 * there (dropped because the outbox was full). */
int coll_outbox_pop(struct coll_outbox *ob, uint64_t id);
void coll_outbox_info(struct coll_outbox *ob, struct coll_outbox_info *info);
/* Records held, without taking the lock (which disk I/O may hold): safe to
 * call while holding locks that other threads need quickly. */
uint64_t coll_outbox_records(struct coll_outbox *ob);
/* Syncs, closes and frees (NULL is fine). What is pending stays on disk. */
void coll_outbox_close(struct coll_outbox *ob);

#endif
