/* Batches accepted frames and writes them to the store on its own thread;
 * spills what the store cannot take yet to the outbox on another.
 *
 * Order invariant: the outbox holds batches older than every batch in the
 * queue. The spiller only ever moves the queue's head to the outbox's tail;
 * the writer takes from the queue only when the outbox is empty and no
 * append is under way (spill_busy), and otherwise replays the outbox's
 * head. The queued batches the writer holds (held, oldest first) are older
 * than the queue, so the spiller copies them first, in order.
 *
 * Pipeline (backends with write_submit(), docs/storage.md "Writer"): the
 * writer holds up to PIPE_BATCHES batches submitted to the store at once,
 * and prepares the next while the server works on the previous ones. They
 * are committed in order: a batch counts as written (acknowledged, its
 * outbox copy removed) only when its own answer and those of every older
 * held batch were successes. After a transient failure the later held
 * batches are answered, then written again one at a time, in order, on the
 * synchronous path (retries, back-off, outbox), exactly as if they had not
 * been sent yet: sending a point again only replaces it with itself. */
#include "writer.h"
#include "pt/err.h"
#include "pt/log.h"
#include "pt/time.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECORD_HDR      8 /* u32 length, u16 points, u16 padding */
#define RETAIN_FREE     4 /* spare batches kept for reuse */
#define RETENTION_EVERY (600 * PT_NS_PER_SEC)
#define SYNC_EVERY      (50 * PT_NS_PER_MS) /* outbox appends are synced in groups this long */
/* Batches submitted to a pipelined store at once: one being answered, one
 * queued behind it so that the server's connections never wait for the
 * writer, one being prepared. */
#define PIPE_BATCHES 3
#define NOT_TRIED    1 /* write_queued(): no write attempt made yet */
/* While the pipeline has room, the writer waits for an answer at most this
 * long before it looks at the queue again. */
#define PIPE_POLL (20 * PT_NS_PER_MS)

/* What decode_batch() found in a batch: the (agent, epoch, seq) of the
 * frames it decoded (durable once the store took them: acks,
 * coll_registry_durable(); taken from the frames themselves, so batches
 * replayed from the outbox have them too), and what it refused. */
struct decoded {
    struct coll_frame_ref *refs;
    size_t nrefs, cap;
    size_t bad_frames, bad_points;
    long npts;
};

struct batch {
    struct batch *next;
    size_t nframes, npoints, used, cap;
    int64_t born_ns;      /* monotonic time of the first frame */
    int64_t born_wall_ns; /* the same on the wall clock, kept in the outbox */
    unsigned char *data;
    /* (agent, epoch, seq) of each frame, batch_frames of room: what a
     * dropped batch makes the registry forget (coll_registry_forget()). */
    struct coll_frame_ref *refs;

    /* While the writer holds it (taken from the queue, not yet written nor
     * left in the outbox), linked by next in w->held. The spiller's marks,
     * under w->lock: */
    bool on_disk;     /* the spiller copied it to the outbox ... */
    bool unspillable; /* (it is larger than the whole outbox) */
    uint64_t disk_id; /* ... as this record */
    /* Its pipelined write (writer thread only): */
    bool submitted;         /* write_submit() took it: a write_wait() is owed */
    bool decoded;           /* d is this batch's */
    int src;                /* else why it was not submitted */
    int64_t t_mono, t_wall; /* when its write began */
    struct decoded d;
};

/* Frames written to the outbox, waiting for its sync: then they are durable
 * and may be acknowledged (coll_registry_durable()). */
struct spilled {
    struct spilled *next;
    uint64_t id; /* the outbox record */
    size_t n;
    struct coll_frame_ref refs[];
};

struct coll_writer {
    struct coll_writer_opts o;
    const struct store_ops *ops;
    struct store *store;
    struct coll_registry *reg;
    struct coll_stats *stats;

    struct batch *cur; /* ingest thread only */

    /* Guards everything below. The ingest thread takes it (hand_over), so
     * it is never held across disk I/O: outbox calls that may read or
     * write are made with it released (coll_outbox_records() and
     * coll_outbox_sync_soon() do not touch the disk). */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct batch *head, *tail; /* queue */
    size_t depth;
    struct batch *spare; /* free list */
    size_t nspare;
    int stopping;
    int64_t drain_deadline; /* monotonic; set with stopping */

    pthread_t thread;
    struct pt_complain c_full, c_store, c_outage, c_spill;

    /* The outbox and the spiller thread (under lock, up to rng). */
    struct coll_outbox *ob;
    pthread_t spill_thread;
    pthread_cond_t spill_cond; /* wakes the spiller */
    size_t spill_at;           /* queue depth that starts spilling */
    bool spill_started, spill_stop;
    bool spill_busy;                     /* an append to the outbox is under way */
    int64_t spill_pause_until;           /* monotonic; after a failed append */
    bool outage;                         /* the store fails: spill everything */
    struct batch *held_head, *held_tail; /* queued batches the writer is writing, oldest first */
    size_t nheld;                        /* (changed by the writer only) */
    struct spilled *sp_head, *sp_tail;   /* spilled, not yet known synced, oldest first */
    int64_t outage_mono, outage_wall, last_error_ns;
    char last_error[256];

    /* Writer thread only, or atomic. */
    uint64_t rng;                            /* back-off jitter */
    _Atomic uint64_t big_frames, big_points; /* batches larger than the outbox */
    /* Batches counted as dropped by a full outbox while the writer was
     * writing them, and then stored after all: not lost, so not counted. */
    _Atomic uint64_t rescued_frames, rescued_points;
    uint64_t replayed_run;              /* batches replayed since the outbox was last empty */
    int64_t attempt_mono, attempt_wall; /* when the last write attempt began */

    /* writer thread scratch */
    struct pt_wire_dec *dec;
    struct store_point *pts;
    struct pt_meas *meas;
    struct pt_tag *tags;
    struct pt_field *fields;
    struct pt_ident *ids;
    struct point_idx {
        size_t tag, field, id;
    } * idx; /* where each point's tags, fields and identity start */
    size_t cap_pts, cap_meas, cap_tags, cap_fields, cap_ids, cap_idx;
    struct decoded d; /* of the last decode_batch() */
};

static size_t batch_bytes(const struct coll_writer *w)
{
    size_t b = w->o.batch_frames * 1200;
    if (b < 256 * 1024) b = 256 * 1024;
    if (b > 16u << 20) b = 16u << 20;
    return b;
}

static struct batch *batch_get(struct coll_writer *w)
{
    struct batch *b = NULL;
    pthread_mutex_lock(&w->lock);
    if (w->spare) {
        b = w->spare;
        w->spare = b->next;
        w->nspare--;
    }
    pthread_mutex_unlock(&w->lock);
    if (!b) {
        b = calloc(1, sizeof *b);
        if (!b) return NULL;
        b->cap = batch_bytes(w);
        b->data = malloc(b->cap);
        b->refs = malloc(w->o.batch_frames * sizeof *b->refs);
        if (!b->data || !b->refs) {
            free(b->data);
            free(b->refs);
            free(b);
            return NULL;
        }
    }
    b->next = NULL;
    b->nframes = b->npoints = b->used = 0;
    b->born_ns = b->born_wall_ns = 0;
    return b;
}

static void batch_free(struct batch *b)
{
    if (!b) return;
    free(b->data);
    free(b->refs);
    free(b->d.refs);
    free(b);
}

/* Returns a written batch to the free list (writer thread). */
static void batch_put(struct coll_writer *w, struct batch *b)
{
    pthread_mutex_lock(&w->lock);
    if (w->nspare < RETAIN_FREE) {
        b->next = w->spare;
        w->spare = b;
        w->nspare++;
        b = NULL;
    }
    pthread_mutex_unlock(&w->lock);
    batch_free(b);
}

/* Ingest thread: moves the current batch to the queue, or drops it. */
static void hand_over(struct coll_writer *w)
{
    struct batch *b = w->cur;
    if (!b || b->nframes == 0) return;
    pthread_mutex_lock(&w->lock);
    bool full = w->depth >= w->o.queue_batches;
    if (!full) {
        if (w->tail)
            w->tail->next = b;
        else
            w->head = b;
        w->tail = b;
        w->depth++;
        atomic_store(&w->stats->queue_depth, (int64_t)w->depth);
        pthread_cond_signal(&w->cond);
        if (w->ob && (w->depth >= w->spill_at || w->outage)) pthread_cond_signal(&w->spill_cond);
    }
    pthread_mutex_unlock(&w->lock);
    if (full) {
        coll_registry_forget(w->reg, b->refs, b->nframes); /* the agents resend them */
        atomic_fetch_add(&w->stats->frames_dropped_queue, b->nframes);
        atomic_fetch_add(&w->stats->points_dropped_queue, b->npoints);
        pt_complain(&w->c_full, PT_LOG_ERROR, "writer",
                    "write queue full (%zu batches): dropped %zu frames / %zu points; the store "
                    "is slower than ingest%s",
                    w->o.queue_batches, b->nframes, b->npoints,
                    w->ob ? " and the outbox cannot take batches fast enough" : "");
        b->nframes = b->npoints = b->used = 0; /* reuse it */
        b->born_ns = 0;
        return;
    }
    pt_complain_release(&w->c_full, "writer", "write queue has room again");
    w->cur = batch_get(w);
}

/* Bytes a frame of len bytes takes in a batch: header, frame, padding to 8. */
static size_t record_size(size_t len)
{
    return (RECORD_HDR + len + 7) & ~(size_t)7;
}

void coll_writer_add(struct coll_writer *w, const void *frame, size_t len, uint16_t npoints,
                     const struct coll_frame_ref *ref)
{
    size_t rec = record_size(len);
    if (!w->cur) w->cur = batch_get(w);
    struct batch *b = w->cur;
    if (b && b->used + rec > b->cap) {
        hand_over(w);
        b = w->cur;
    }
    if (!b || b->used + rec > b->cap) {
        if (ref) coll_registry_forget(w->reg, ref, 1);
        atomic_fetch_add(&w->stats->frames_dropped_queue, 1);
        atomic_fetch_add(&w->stats->points_dropped_queue, npoints);
        pt_complain(&w->c_full, PT_LOG_ERROR, "writer", "out of memory for write batches");
        return;
    }
    unsigned char *p = b->data + b->used;
    uint32_t l32 = (uint32_t)len;
    memcpy(p, &l32, 4);
    memcpy(p + 4, &npoints, 2);
    memset(p + 6, 0, 2);
    memcpy(p + RECORD_HDR, frame, len);
    b->used += rec;
    b->refs[b->nframes] = ref ? *ref : (struct coll_frame_ref){0, 0, 0};
    if (b->nframes++ == 0) {
        b->born_ns = pt_mono_ns();
        b->born_wall_ns = pt_now_ns();
    }
    b->npoints += npoints;
    if (b->nframes >= w->o.batch_frames) hand_over(w);
}

void coll_writer_tick(struct coll_writer *w)
{
    struct batch *b = w->cur;
    if (b && b->nframes && pt_mono_ns() - b->born_ns >= w->o.flush_ns) hand_over(w);
}

/* ---- writer thread ------------------------------------------------------- */

#define GROW(arr, cap, need)                                   \
    do {                                                       \
        if ((need) > (cap)) {                                  \
            size_t ncap_ = (cap) ? (cap) : 1024;               \
            while (ncap_ < (need)) ncap_ *= 2;                 \
            void *np_ = realloc((arr), ncap_ * sizeof *(arr)); \
            if (!np_) return -ENOMEM;                          \
            (arr) = np_;                                       \
            (cap) = ncap_;                                     \
        }                                                      \
    } while (0)

/* Decodes every frame of b into w->pts. Strings point into b, which stays
 * alive until the write is done. The arrays may move while they grow, so
 * each point's tags, fields and identity are kept as indexes (w->idx) and
 * turned into pointers at the end. Returns the number of points or <0. */
static long decode_batch(struct coll_writer *w, struct batch *b)
{
    size_t npts = 0, ntags = 0, nfields = 0, nids = 0;
    GROW(w->ids, w->cap_ids, b->nframes);
    GROW(w->d.refs, w->d.cap, b->nframes);
    w->d.nrefs = 0;
    w->d.npts = 0;
    size_t off = 0;
    struct pt_frame f;
    w->d.bad_frames = w->d.bad_points = 0;
    for (size_t k = 0; k < b->nframes; k++) {
        uint32_t len;
        uint16_t np;
        /* A batch read back from the outbox passed its CRC, but check
         * anyway: a wrong count must not read past the data. */
        if (off + RECORD_HDR > b->used) {
            w->d.bad_frames += b->nframes - k; /* their points are unknown */
            break;
        }
        memcpy(&len, b->data + off, 4);
        if (len > b->used - off - RECORD_HDR) {
            w->d.bad_frames += b->nframes - k;
            break;
        }
        const unsigned char *frame = b->data + off + RECORD_HDR;
        memcpy(&np, b->data + off + 4, 2);
        off += record_size(len);
        /* Frames were checked on arrival, but one replayed from the outbox
         * meets this pantalad's decoder (after an upgrade, say): count
         * what it refuses, never skip it silently. */
        if (pt_wire_decode(w->dec, frame, len, &f) != 0) {
            w->d.bad_frames++;
            w->d.bad_points += np;
            continue;
        }
        w->ids[nids] = f.id;
        w->d.refs[w->d.nrefs++] = (struct coll_frame_ref){f.agent_id, f.epoch, f.seq};
        for (size_t m = 0; m < f.nmeas; m++) {
            const struct pt_meas *src = &f.meas[m];
            GROW(w->pts, w->cap_pts, npts + 1);
            GROW(w->meas, w->cap_meas, npts + 1);
            GROW(w->idx, w->cap_idx, npts + 1);
            if (src->ntags) {
                GROW(w->tags, w->cap_tags, ntags + src->ntags);
                memcpy(&w->tags[ntags], src->tags, src->ntags * sizeof *src->tags);
            }
            if (src->nfields) {
                GROW(w->fields, w->cap_fields, nfields + src->nfields);
                memcpy(&w->fields[nfields], src->fields, src->nfields * sizeof *src->fields);
            }
            w->meas[npts] = *src;
            w->idx[npts] = (struct point_idx){ntags, nfields, nids};
            w->pts[npts].ts_ns = f.ts_ns;
            ntags += src->ntags;
            nfields += src->nfields;
            npts++;
        }
        nids++;
    }
    for (size_t i = 0; i < npts; i++) {
        w->meas[i].tags = w->meas[i].ntags ? w->tags + w->idx[i].tag : NULL;
        w->meas[i].fields = w->meas[i].nfields ? w->fields + w->idx[i].field : NULL;
        w->pts[i].id = &w->ids[w->idx[i].id];
        w->pts[i].m = &w->meas[i];
    }
    w->d.npts = (long)npts;
    return (long)npts;
}

static void chores(struct coll_writer *w, int64_t *next_persist, int64_t *next_retention)
{
    int64_t now = pt_mono_ns();
    if (now >= *next_persist) {
        coll_registry_persist(w->reg);
        if (w->ops->size) atomic_store(&w->stats->store_bytes, w->ops->size(w->store));
        *next_persist = now + w->o.persist_ns;
    }
    if (w->o.retention_ns > 0 && now >= *next_retention) {
        int64_t cutoff = pt_now_ns() - w->o.retention_ns;
        int64_t del = w->ops->retention(w->store, cutoff);
        if (del > 0) {
            atomic_fetch_add(&w->stats->store_retention_deleted, (uint64_t)del);
            PT_INFO("writer", "retention: deleted %lld points older than the retention period",
                    (long long)del);
        } else if (del < 0) {
            PT_ERROR("writer", "retention failed: %s", pt_strerror((int)del));
        }
        *next_retention = now + RETENTION_EVERY;
    }
}

/* ---- store writes ------------------------------------------------------- */

static bool is_permanent(int rc)
{
    return rc == -EINVAL || rc == PT_E_LIMIT; /* an invalid point: retrying cannot help */
}

static void note_error(struct coll_writer *w, int rc, long npoints)
{
    pthread_mutex_lock(&w->lock);
    snprintf(w->last_error, sizeof w->last_error, "%s: write of %ld points failed: %s",
             w->ops->name, npoints, pt_strerror(rc));
    w->last_error_ns = w->attempt_wall; /* when the failed attempt began */
    pthread_mutex_unlock(&w->lock);
}

/* Accounts for the store's verdict rc on batch b (decoded as d, written in
 * secs): counters, acks (coll_registry_durable()) or, when it was refused
 * for good, dropped (coll_registry_forget()); a failure is remembered for
 * the API. Returns rc. */
static int conclude(struct coll_writer *w, const struct batch *b, const struct decoded *d, int rc,
                    double secs)
{
    long n = d->npts;
    if (d->bad_frames && (rc == 0 || is_permanent(rc))) { /* once, not per retry */
        atomic_fetch_add(&w->stats->frames_dropped_store, d->bad_frames);
        atomic_fetch_add(&w->stats->points_dropped_store, d->bad_points);
        pt_complain(&w->c_store, PT_LOG_ERROR, "writer",
                    "%zu frames of a batch no longer decode (damaged, or from another pantalad "
                    "version): dropped them and their %zu points",
                    d->bad_frames, d->bad_points);
    }
    if (rc == 0) {
        coll_hist_observe(&w->stats->write_seconds, secs);
        coll_hist_observe(&w->stats->batch_points, (double)n);
        atomic_fetch_add(&w->stats->points_written, (uint64_t)n);
        atomic_fetch_add(&w->stats->frames_written, b->nframes - d->bad_frames);
        atomic_fetch_add(&w->stats->batches_written, 1);
        coll_registry_durable(w->reg, d->refs, d->nrefs); /* now they may be acked */
        return 0;
    }
    atomic_fetch_add(&w->stats->store_errors, 1);
    note_error(w, rc, n);
    if (is_permanent(rc)) {
        /* Splitting the batch to isolate the bad point is not worth it: the
         * decoder already refuses what the stores refuse, so this is a bug
         * or a backend limit, and the whole batch is dropped (counted). */
        coll_registry_forget(w->reg, d->refs, d->nrefs); /* the agents resend them */
        atomic_fetch_add(&w->stats->frames_dropped_store, b->nframes - d->bad_frames);
        atomic_fetch_add(&w->stats->points_dropped_store, (uint64_t)n);
        pt_complain(&w->c_store, PT_LOG_ERROR, "writer",
                    "the store refused a batch for good (%s): dropped %ld points of %zu frames",
                    pt_strerror(rc), n, b->nframes);
    }
    return rc;
}

/* Decodes and writes one batch, once, with write_batch(). Returns 0, or
 * the store's error (counted and remembered for the API). An undecodable
 * batch (out of memory) is reported as -ENOMEM, which the caller treats as
 * transient. */
static int write_once(struct coll_writer *w, struct batch *b)
{
    long n = decode_batch(w, b);
    if (n < 0) {
        pt_complain(&w->c_store, PT_LOG_ERROR, "writer", "out of memory decoding a batch");
        return (int)n;
    }
    int64_t t0 = pt_mono_ns();
    w->attempt_mono = t0;
    w->attempt_wall = pt_now_ns();
    int rc = w->ops->write_batch(w->store, w->pts, (size_t)n);
    return conclude(w, b, &w->d, rc, (double)(pt_mono_ns() - t0) / 1e9);
}

/* Records a transient failure: the first one of an outage is logged (and
 * then at a slowing rate) and turns spilling on. */
static void outage_begin(struct coll_writer *w, int rc)
{
    pthread_mutex_lock(&w->lock);
    bool first = !w->outage;
    if (first) {
        /* From the start of the failed attempt: a store that hangs (a
         * lock, a timeout) is out from then on. */
        w->outage = true;
        w->outage_mono = w->attempt_mono ? w->attempt_mono : pt_mono_ns();
        w->outage_wall = w->attempt_wall ? w->attempt_wall : pt_now_ns();
        pthread_cond_signal(&w->spill_cond);
    }
    atomic_store(&w->stats->store_healthy, 0);
    pthread_mutex_unlock(&w->lock);
    pt_complain(&w->c_outage, PT_LOG_ERROR, "writer",
                "store write failed (%s): %s and retrying with back-off", pt_strerror(rc),
                w->ob ? "keeping batches in the outbox" : "holding the batch (no outbox)");
}

static void outage_end(struct coll_writer *w)
{
    pthread_mutex_lock(&w->lock);
    bool was = w->outage;
    int64_t since = w->outage_mono;
    w->outage = false;
    w->outage_wall = 0;
    atomic_store(&w->stats->store_healthy, 1);
    pthread_mutex_unlock(&w->lock);
    if (!was) return;
    uint64_t left = w->ob ? coll_outbox_records(w->ob) : 0;
    PT_INFO("writer", "store is back after %.1f s, replaying %llu batches from the outbox",
            (double)(pt_mono_ns() - since) / 1e9, (unsigned long long)left);
    w->c_outage = (struct pt_complain)PT_COMPLAIN_INIT;
}

/* Sleeps the back-off before retry number attempt (0-based): 100 ms
 * doubling to 5 s, +-25 % jitter so many collectors do not retry at once.
 * Returns early when the writer is told to stop, and waits only 100 ms
 * once it is stopping. */
static void backoff(struct coll_writer *w, unsigned attempt)
{
    int64_t ms = 100;
    for (unsigned i = 0; i < attempt && ms < 5000; i++) ms *= 2;
    if (ms > 5000) ms = 5000;
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    ms = ms * 3 / 4 + (int64_t)(w->rng % (uint64_t)(ms / 2 + 1));
    pthread_mutex_lock(&w->lock);
    if (w->stopping) ms = 100; /* still retrying until the drain deadline, but not for long */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t until = (int64_t)ts.tv_sec * PT_NS_PER_SEC + ts.tv_nsec + ms * PT_NS_PER_MS;
    ts.tv_sec = (time_t)(until / PT_NS_PER_SEC);
    ts.tv_nsec = (long)(until % PT_NS_PER_SEC);
    while (!w->stopping && pthread_cond_timedwait(&w->cond, &w->lock, &ts) != ETIMEDOUT) {}
    pthread_mutex_unlock(&w->lock);
}

/* ---- the outbox ------------------------------------------------------- */

/* Copies the outbox's state into the /metrics counters. */
static void outbox_stats(struct coll_writer *w)
{
    struct coll_outbox_info i;
    coll_outbox_info(w->ob, &i);
    struct coll_stats *s = w->stats;
    atomic_store(&s->outbox_bytes, (int64_t)i.bytes);
    atomic_store(&s->outbox_batches, (int64_t)i.records);
    atomic_store(&s->outbox_frames, (int64_t)i.frames);
    atomic_store(&s->outbox_oldest_ns, i.oldest_born_ns);
    atomic_store(&s->frames_dropped_outbox,
                 i.dropped_frames + atomic_load(&w->big_frames) - atomic_load(&w->rescued_frames));
    atomic_store(&s->points_dropped_outbox,
                 i.dropped_points + atomic_load(&w->big_points) - atomic_load(&w->rescued_points));
    atomic_store(&s->frames_dropped_corrupt, i.corrupt_frames);
    atomic_store(&s->points_dropped_corrupt, i.corrupt_points);
    atomic_store(&s->outbox_dropped_bytes, i.dropped_bytes);
    atomic_store(&s->outbox_corrupt_bytes, i.corrupt_bytes);
}

/* Appends b to the outbox. Called with w->lock held and spill_busy set by
 * the caller; the lock is dropped during the disk write. A batch that can
 * never fit (PT_E_LIMIT) is counted as dropped (reason outbox_full). */
static int spill_locked(struct coll_writer *w, struct batch *b, uint64_t *id)
{
    pthread_mutex_unlock(&w->lock);
    int rc = coll_outbox_append(w->ob, b->data, b->used, (uint32_t)b->nframes, (uint32_t)b->npoints,
                                b->born_wall_ns, id);
    /* Its frames become durable with the outbox's next sync: remember
     * them (without memory they are acknowledged when replayed instead). */
    struct spilled *sp = NULL;
    if (rc == 0 && (sp = malloc(sizeof *sp + b->nframes * sizeof sp->refs[0]))) {
        sp->next = NULL;
        sp->id = *id;
        sp->n = b->nframes;
        memcpy(sp->refs, b->refs, b->nframes * sizeof sp->refs[0]);
    }
    if (rc == 0) {
        atomic_fetch_add(&w->stats->outbox_spilled_batches, 1);
        atomic_fetch_add(&w->stats->outbox_spilled_frames, b->nframes);
        pt_complain_release(&w->c_spill, "writer", "the outbox takes batches again");
    } else if (rc == PT_E_LIMIT) {
        atomic_fetch_add(&w->big_frames, b->nframes);
        atomic_fetch_add(&w->big_points, b->npoints);
        pt_complain(&w->c_spill, PT_LOG_ERROR, "writer",
                    "a batch of %zu bytes can never fit the outbox (outbox.max_bytes too "
                    "small): DROPPED %zu frames / %zu points",
                    b->used, b->nframes, b->npoints);
    } else {
        pt_complain(&w->c_spill, PT_LOG_ERROR, "writer",
                    "cannot write to the outbox (%s): batches stay in memory while there is "
                    "room",
                    pt_strerror(rc));
    }
    outbox_stats(w);
    pthread_mutex_lock(&w->lock);
    if (sp) {
        if (w->sp_tail)
            w->sp_tail->next = sp;
        else
            w->sp_head = sp;
        w->sp_tail = sp;
    }
    return rc;
}

/* Spiller thread, w->lock held (dropped meanwhile): the spilled frames the
 * outbox has synced are durable; tells the registry, so agents get their
 * acks while the store is still down. */
static void spilled_durable(struct coll_writer *w)
{
    uint64_t synced = coll_outbox_synced(w->ob);
    struct spilled *done = NULL, **tail = &done;
    while (w->sp_head && w->sp_head->id <= synced) {
        *tail = w->sp_head;
        tail = &w->sp_head->next;
        w->sp_head = w->sp_head->next;
        *tail = NULL;
    }
    if (!w->sp_head) w->sp_tail = NULL;
    if (!done) return;
    pthread_mutex_unlock(&w->lock);
    while (done) {
        struct spilled *n = done->next;
        coll_registry_durable(w->reg, done->refs, done->n);
        free(done);
        done = n;
    }
    pthread_mutex_lock(&w->lock);
}

static bool spill_wanted(struct coll_writer *w)
{
    if (!w->ob || w->spill_busy || !w->head) return false;
    if (w->spill_pause_until && pt_mono_ns() < w->spill_pause_until) return false;
    return w->outage || w->depth >= w->spill_at;
}

/* The spiller thread: moves the oldest queued batches to the outbox while
 * the queue is above its high-water mark or the store fails. The batches
 * the writer is writing at that moment are older than the queue, so they
 * are copied first, oldest first (they stay with the writer; see
 * held_release() and write_queued()). Appends are
 * synced in groups, SYNC_EVERY after the first unsynced one, by the
 * outbox's own thread, so a slow fdatasync never holds up spilling. */
static void *spill_main(void *arg)
{
    struct coll_writer *w = arg;
    int64_t unsynced_since = 0; /* monotonic time of the first append not synced, or 0 */
    pthread_mutex_lock(&w->lock);
    for (;;) {
        if (w->sp_head) spilled_durable(w);
        if (!w->spill_stop && !spill_wanted(w)) {
            int64_t now = pt_mono_ns();
            if (unsynced_since && now - unsynced_since >= SYNC_EVERY) {
                coll_outbox_sync_soon(w->ob); /* never waits for the disk */
                unsynced_since = 0;
                continue;
            }
            /* Wait for work, or until the group of appends is due for its
             * sync; at most a second (that also ends a pause after a
             * failed append). */
            int64_t until = unsynced_since ? unsynced_since + SYNC_EVERY : now + PT_NS_PER_SEC;
            if (w->sp_head && until > now + SYNC_EVERY) until = now + SYNC_EVERY; /* acks due */
            int64_t left = until - now;
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t abs_ns = (int64_t)ts.tv_sec * PT_NS_PER_SEC + ts.tv_nsec + left;
            ts.tv_sec = (time_t)(abs_ns / PT_NS_PER_SEC);
            ts.tv_nsec = (long)(abs_ns % PT_NS_PER_SEC);
            pthread_cond_timedwait(&w->spill_cond, &w->lock, &ts);
            continue;
        }
        if (w->spill_stop) break;
        struct batch *b, *done = NULL, *infl = NULL;
        for (struct batch *x = w->held_head; x && !infl; x = x->next)
            if (!x->on_disk && !x->unspillable) infl = x;
        if (infl) {
            b = infl;
        } else {
            b = w->head;
            w->head = b->next;
            if (!w->head) w->tail = NULL;
            w->depth--;
            atomic_store(&w->stats->queue_depth, (int64_t)w->depth);
        }
        w->spill_busy = true;
        uint64_t id = 0;
        int rc = spill_locked(w, b, &id);
        w->spill_busy = false;
        if (rc == 0) {
            if (!unsynced_since) unsynced_since = pt_mono_ns();
            if (infl) {
                infl->on_disk = true;
                infl->disk_id = id;
            } else {
                done = b;
            }
        } else if (rc == PT_E_LIMIT) {
            if (infl)
                infl->unspillable = true; /* the writer keeps it; spill the rest */
            else
                done = b; /* counted as dropped */
        } else {
            if (!infl) { /* the disk fails: put the batch back, try again in a while */
                b->next = w->head;
                w->head = b;
                if (!w->tail) w->tail = b;
                w->depth++;
                atomic_store(&w->stats->queue_depth, (int64_t)w->depth);
            }
            w->spill_pause_until = pt_mono_ns() + PT_NS_PER_SEC;
        }
        if (done) {
            pthread_mutex_unlock(&w->lock);
            batch_put(w, done);
            pthread_mutex_lock(&w->lock);
        }
        pthread_cond_broadcast(&w->cond); /* the writer may wait for spill_busy */
    }
    pthread_mutex_unlock(&w->lock);
    if (unsynced_since) coll_outbox_sync(w->ob);
    return NULL;
}

/* ---- the writer thread -------------------------------------------------- */

/* Writes the oldest outbox record to the store; pops it when it is stored
 * (or refused for good). */
static void replay_one(struct coll_writer *w, unsigned *attempt)
{
    struct coll_outbox_rec r;
    if (coll_outbox_peek(w->ob, &r)) {
        outbox_stats(w); /* it found only damage, now counted */
        return;
    }
    struct batch v = {.data = (unsigned char *)(uintptr_t)r.data,
                      .nframes = r.nframes,
                      .npoints = r.npoints,
                      .used = r.len,
                      .cap = r.len};
    int rc = write_once(w, &v);
    if (rc != 0 && !is_permanent(rc)) {
        outage_begin(w, rc);
        backoff(w, (*attempt)++);
        return;
    }
    if (coll_outbox_pop(w->ob, r.id) == -ENOENT && rc == 0) {
        /* A full outbox dropped (and counted) it while it was written. */
        atomic_fetch_add(&w->rescued_frames, r.nframes);
        atomic_fetch_add(&w->rescued_points, r.npoints);
    }
    if (rc == 0) {
        atomic_fetch_add(&w->stats->outbox_replayed_batches, 1);
        atomic_fetch_add(&w->stats->outbox_replayed_frames, r.nframes);
        w->replayed_run++;
        outage_end(w);
        *attempt = 0;
    }
    outbox_stats(w);
    if (coll_outbox_records(w->ob) == 0 && w->replayed_run) {
        PT_INFO("writer",
                "outbox replayed: %llu batches written to the store, the outbox is "
                "empty again",
                (unsigned long long)w->replayed_run);
        w->replayed_run = 0;
    }
}

/* The writer's held batches (w->lock held): b, the oldest, is done with. */
static void held_unlink_locked(struct coll_writer *w, struct batch *b)
{
    if (w->held_head != b) { /* cannot happen: batches are committed in order */
        PT_ERROR("writer", "internal error: a held batch was not the oldest");
        return;
    }
    w->held_head = b->next;
    if (!w->held_head) w->held_tail = NULL;
    b->next = NULL;
    w->nheld--;
}

/* Removes the outbox copy of a batch the store took or refused for good:
 * it is the outbox's head (nothing older is there). */
static void drop_copy(struct coll_writer *w, const struct batch *b, uint64_t id, int rc)
{
    if (coll_outbox_pop(w->ob, id) == -ENOENT && rc == 0) {
        /* A full outbox dropped (and counted) the copy. */
        atomic_fetch_add(&w->rescued_frames, b->nframes);
        atomic_fetch_add(&w->rescued_points, b->npoints);
    }
    outbox_stats(w);
}

/* Writes a batch the writer holds (the oldest, taken from the queue) with
 * write_batch(), starting from the outcome rc of an attempt already made
 * (NOT_TRIED: none). On a transient failure it goes to the outbox and the
 * writer carries on from there; the spiller may have copied it already
 * (then it is the outbox's head record, as nothing was in the outbox when
 * the writer took it from the queue). Without a usable outbox it is retried
 * here. Returns whether the batch was left in the outbox (to be replayed)
 * rather than stored or dropped. */
static bool write_queued(struct coll_writer *w, struct batch *b, unsigned *attempt, int rc)
{
    bool left = false;
    for (;;) {
        if (rc == NOT_TRIED) rc = write_once(w, b);
        pthread_mutex_lock(&w->lock);
        while (w->spill_busy) pthread_cond_wait(&w->cond, &w->lock);
        bool on_disk = b->on_disk;
        uint64_t id = b->disk_id;
        if (rc == 0 || is_permanent(rc)) held_unlink_locked(w, b);
        pthread_mutex_unlock(&w->lock);
        if (rc == 0 || is_permanent(rc)) {
            if (on_disk) drop_copy(w, b, id, rc); /* already stored: remove the copy */
            if (rc == 0) {
                outage_end(w);
                *attempt = 0;
            }
            break;
        }
        outage_begin(w, rc);
        bool keep = true, synced = false;
        pthread_mutex_lock(&w->lock);
        while (w->spill_busy) pthread_cond_wait(&w->cond, &w->lock);
        if (b->on_disk) {
            keep = false;
        } else if (w->ob && !b->unspillable) {
            w->spill_busy = true;
            uint64_t nid;
            int src = spill_locked(w, b, &nid);
            w->spill_busy = false;
            pthread_cond_broadcast(&w->cond);
            if (src == 0) keep = false, synced = true;
            if (src == PT_E_LIMIT) b->unspillable = true; /* counted once */
        }
        bool late = w->stopping && pt_mono_ns() > w->drain_deadline;
        if (!keep || late) held_unlink_locked(w, b);
        pthread_mutex_unlock(&w->lock);
        if (synced) coll_outbox_sync_soon(w->ob);
        if (!keep) {
            left = true;
            break;
        }
        if (late) {
            atomic_fetch_add(&w->stats->frames_dropped_shutdown, b->nframes);
            atomic_fetch_add(&w->stats->points_dropped_shutdown, b->npoints);
            PT_ERROR("writer", "shutdown: the store still fails; dropped %zu frames / %zu points",
                     b->nframes, b->npoints);
            break;
        }
        backoff(w, (*attempt)++);
        rc = NOT_TRIED;
    }
    batch_put(w, b);
    return left;
}

/* ---- the pipeline (stores with write_submit()) ---------------------------- */

/* Decodes b (held) and submits its points; the answer is collected by
 * pipe_next(). */
static void pipe_submit(struct coll_writer *w, struct batch *b)
{
    b->submitted = b->decoded = false;
    b->t_mono = pt_mono_ns();
    b->t_wall = pt_now_ns();
    long n = decode_batch(w, b);
    if (n < 0) {
        pt_complain(&w->c_store, PT_LOG_ERROR, "writer", "out of memory decoding a batch");
        b->src = (int)n;
        return;
    }
    /* The frame refs stay with the batch until its answer; the points
     * were copied by write_submit(), so the scratch is free again. */
    struct decoded t = b->d;
    b->d = w->d;
    w->d = t;
    b->decoded = true;
    b->src = w->ops->write_submit(w->store, w->pts, (size_t)n);
    b->submitted = b->src == 0;
}

/* The oldest held batch is stored (or refused for good): counted, its
 * outbox copy removed, released. */
static void held_release(struct coll_writer *w, struct batch *b, int rc)
{
    pthread_mutex_lock(&w->lock);
    while (w->spill_busy) pthread_cond_wait(&w->cond, &w->lock); /* it may be copying b */
    bool on_disk = b->on_disk;
    uint64_t id = b->disk_id;
    held_unlink_locked(w, b);
    pthread_mutex_unlock(&w->lock);
    if (on_disk) drop_copy(w, b, id, rc);
    batch_put(w, b);
}

/* Puts held batch b (the oldest) in the outbox, behind an older one that
 * was left there, without writing it to the store first. Returns false when
 * it cannot go there (no outbox, disk error, too large). */
static bool held_to_outbox(struct coll_writer *w, struct batch *b)
{
    bool ok, synced = false;
    pthread_mutex_lock(&w->lock);
    while (w->spill_busy) pthread_cond_wait(&w->cond, &w->lock);
    ok = b->on_disk;
    if (!ok && w->ob && !b->unspillable) {
        w->spill_busy = true;
        uint64_t id;
        int src = spill_locked(w, b, &id);
        w->spill_busy = false;
        pthread_cond_broadcast(&w->cond);
        if (src == PT_E_LIMIT) b->unspillable = true;
        ok = synced = src == 0;
    }
    if (ok) held_unlink_locked(w, b);
    pthread_mutex_unlock(&w->lock);
    if (synced) coll_outbox_sync_soon(w->ob);
    if (ok) batch_put(w, b);
    return ok;
}

/* Collects the answer to the oldest held batch (or returns without one
 * after PIPE_POLL when more batches could be submitted). A success or a permanent
 * refusal commits it. A transient failure stops the pipeline: the later
 * batches' answers are collected and ignored, then every held batch is
 * written again in order on the synchronous path (write_queued()); once one
 * is left in the outbox, the later ones follow it there, so that the outbox
 * stays older than anything the writer writes after it. */
static void pipe_next(struct coll_writer *w, unsigned *attempt, bool room)
{
    struct batch *b = w->held_head;
    int rc = b->submitted ? w->ops->write_wait(w->store, room ? PIPE_POLL : -1) : b->src;
    if (rc == STORE_PENDING) return; /* the queue may have a batch to submit */
    b->submitted = false;
    w->attempt_mono = b->t_mono;
    w->attempt_wall = b->t_wall;
    if (b->decoded) rc = conclude(w, b, &b->d, rc, (double)(pt_mono_ns() - b->t_mono) / 1e9);
    if (rc == 0 || is_permanent(rc)) {
        held_release(w, b, rc);
        if (rc == 0) {
            outage_end(w);
            *attempt = 0;
        }
        return;
    }
    for (struct batch *x = b->next; x; x = x->next)
        if (x->submitted) {
            (void)w->ops->write_wait(w->store, -1); /* written again below */
            x->submitted = false;
        }
    bool to_outbox = false;
    while ((b = w->held_head)) {
        if (to_outbox && held_to_outbox(w, b)) continue;
        to_outbox = write_queued(w, b, attempt, rc);
        rc = NOT_TRIED;
    }
}

/* Shutdown with the outbox: writes every queued batch to it, in order.
 * Called with w->lock held. */
static void final_spill(struct coll_writer *w, const char *why)
{
    size_t n = 0, frames = 0, lost = 0;
    while (w->spill_busy) pthread_cond_wait(&w->cond, &w->lock);
    struct batch *b;
    while ((b = w->head)) {
        w->head = b->next;
        if (!w->head) w->tail = NULL;
        w->depth--;
        w->spill_busy = true;
        uint64_t id;
        int rc = spill_locked(w, b, &id);
        w->spill_busy = false;
        if (rc == 0) {
            n++;
            frames += b->nframes;
        } else {
            lost += b->nframes;
            if (rc != PT_E_LIMIT) { /* PT_E_LIMIT was counted as outbox_full */
                atomic_fetch_add(&w->stats->frames_dropped_shutdown, b->nframes);
                atomic_fetch_add(&w->stats->points_dropped_shutdown, b->npoints);
            }
        }
        pthread_mutex_unlock(&w->lock);
        batch_put(w, b);
        pthread_mutex_lock(&w->lock);
    }
    atomic_store(&w->stats->queue_depth, 0);
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    coll_outbox_sync(w->ob);
    outbox_stats(w);
    uint64_t total = coll_outbox_records(w->ob);
    if (n || total)
        PT_INFO("writer",
                "shutdown (%s): wrote %zu queued batches (%zu frames) to the outbox, which now "
                "holds %llu batches; they are written to the store at the next start",
                why, n, frames, (unsigned long long)total);
    if (lost)
        PT_ERROR("writer", "shutdown: %zu frames could not be written to the outbox: DROPPED",
                 lost);
    pthread_mutex_lock(&w->lock);
}

/* Shutdown without an outbox, after the deadline: counts what is left. */
static void final_drop(struct coll_writer *w)
{
    size_t n = 0;
    struct batch *b;
    while ((b = w->head)) {
        w->head = b->next;
        if (!w->head) w->tail = NULL;
        w->depth--;
        n++;
        atomic_fetch_add(&w->stats->frames_dropped_shutdown, b->nframes);
        atomic_fetch_add(&w->stats->points_dropped_shutdown, b->npoints);
        pthread_mutex_unlock(&w->lock);
        batch_put(w, b);
        pthread_mutex_lock(&w->lock);
    }
    atomic_store(&w->stats->queue_depth, 0);
    if (n)
        PT_ERROR("writer",
                 "shutdown: the store did not take the queue in time; dropped %zu queued "
                 "batches (no outbox configured)",
                 n);
}

static void *writer_main(void *arg)
{
    struct coll_writer *w = arg;
    int64_t next_persist = pt_mono_ns() + w->o.persist_ns, next_retention = 0;
    unsigned attempt = 0;
    size_t pipe_max = w->ops->write_submit && w->ops->write_wait ? PIPE_BATCHES : 1;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        for (;;) {
            bool pending = w->ob && (w->spill_busy || coll_outbox_records(w->ob) > 0);
            if (w->head || pending || w->stopping || w->nheld) break;
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += 1; /* chores run at least once a second */
            if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) == ETIMEDOUT) break;
        }
        bool from_ob = w->ob && coll_outbox_records(w->ob) > 0;
        bool late = w->stopping && pt_mono_ns() > w->drain_deadline;
        if (w->stopping && !w->nheld) {
            if (w->ob && (late || w->outage || from_ob)) {
                /* Nothing is lost by stopping now: what is queued goes to
                 * the outbox behind what is there already. */
                final_spill(w, late        ? "drain deadline"
                               : w->outage ? "store failing"
                                           : "outbox not empty");
                pthread_mutex_unlock(&w->lock);
                break;
            }
            if (!w->ob && late) {
                final_drop(w);
                pthread_mutex_unlock(&w->lock);
                break;
            }
        }
        /* A queued batch is taken while the outbox is empty and no append
         * may be moving the queue's head there; into the pipeline while the
         * store works, else on its own (synchronous path). */
        bool take = !from_ob && !w->spill_busy && w->head &&
                    (w->nheld == 0 || (w->nheld < pipe_max && !w->outage && !late));
        if (!take && !w->nheld && !from_ob && w->spill_busy) {
            pthread_cond_wait(&w->cond, &w->lock); /* it may be the oldest batch */
            pthread_mutex_unlock(&w->lock);
            continue;
        }
        struct batch *b = NULL;
        if (take) {
            b = w->head;
            w->head = b->next;
            if (!w->head) w->tail = NULL;
            w->depth--;
            atomic_store(&w->stats->queue_depth, (int64_t)w->depth);
            b->next = NULL;
            b->on_disk = b->unspillable = b->submitted = b->decoded = false;
            if (w->held_tail)
                w->held_tail->next = b;
            else
                w->held_head = b;
            w->held_tail = b;
            w->nheld++;
        }
        bool piped = take && pipe_max > 1 && !w->outage;
        bool room = w->nheld < pipe_max && !w->outage && !late;
        bool stop = w->stopping && !b && !from_ob && !w->head && !w->nheld;
        pthread_mutex_unlock(&w->lock);
        if (b && piped)
            pipe_submit(w, b);
        else if (b)
            write_queued(w, b, &attempt, NOT_TRIED);
        else if (w->nheld)
            pipe_next(w, &attempt, room);
        else if (from_ob)
            replay_one(w, &attempt);
        chores(w, &next_persist, &next_retention);
        if (stop) break;
    }
    coll_registry_persist(w->reg);
    return NULL;
}

int coll_writer_start(struct coll_writer **out, const struct store_ops *ops, struct store *store,
                      struct coll_registry *reg, struct coll_stats *stats,
                      const struct coll_writer_opts *o)
{
    struct coll_writer *w = calloc(1, sizeof *w);
    if (!w) return -ENOMEM;
    w->o = *o;
    if (w->o.persist_ns <= 0) w->o.persist_ns = 5 * PT_NS_PER_SEC;
    if (w->o.drain_ns <= 0) w->o.drain_ns = 30 * PT_NS_PER_SEC;
    w->ops = ops;
    w->store = store;
    w->reg = reg;
    w->stats = stats;
    w->ob = o->outbox;
    w->spill_at = o->queue_batches / 2 ? o->queue_batches / 2 : 1;
    w->rng = (uint64_t)pt_now_ns() | 1;
    w->dec = pt_wire_dec_new();
    if (!w->dec) {
        free(w);
        return -ENOMEM;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &ca);
    pthread_cond_init(&w->spill_cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&w->lock, NULL);
    atomic_store(&stats->queue_capacity, (int64_t)o->queue_batches);
    atomic_store(&stats->store_healthy, 1);
    if (w->ob) outbox_stats(w);
    int rc = pthread_create(&w->thread, NULL, writer_main, w);
    if (rc == 0 && w->ob) {
        rc = pthread_create(&w->spill_thread, NULL, spill_main, w);
        if (rc) {
            pthread_mutex_lock(&w->lock);
            w->stopping = 1;
            pthread_cond_signal(&w->cond);
            pthread_mutex_unlock(&w->lock);
            pthread_join(w->thread, NULL);
        } else {
            w->spill_started = true;
            pthread_setname_np(w->spill_thread, "pt-spill");
        }
    }
    if (rc) {
        pt_wire_dec_free(w->dec);
        pthread_cond_destroy(&w->cond);
        pthread_cond_destroy(&w->spill_cond);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return -rc;
    }
    pthread_setname_np(w->thread, "pt-writer"); /* shows in top -H, ps -L */
    *out = w;
    return 0;
}

void coll_writer_status(struct coll_writer *w, struct coll_writer_status *st)
{
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&w->lock);
    st->healthy = !w->outage;
    st->outage_since_ns = w->outage ? w->outage_wall : 0;
    st->last_error_ns = w->last_error_ns;
    snprintf(st->last_error, sizeof st->last_error, "%s", w->last_error);
    st->queue_depth = w->depth;
    st->queue_capacity = w->o.queue_batches;
    pthread_mutex_unlock(&w->lock);
}

void coll_writer_stop(struct coll_writer *w)
{
    if (!w) return;
    struct batch *b = w->cur;
    if (b && b->nframes) {
        /* Shutdown: wait (a while) for room rather than drop what is
         * already accepted. */
        int64_t until = pt_mono_ns() + w->o.drain_ns;
        while (pt_mono_ns() < until) {
            pthread_mutex_lock(&w->lock);
            bool room = w->depth < w->o.queue_batches;
            pthread_mutex_unlock(&w->lock);
            if (room) break;
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        hand_over(w);
    }
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    w->drain_deadline = pt_mono_ns() + w->o.drain_ns;
    if (w->depth)
        PT_INFO("writer", "writing %zu queued batches before exiting (at most %llds%s)", w->depth,
                (long long)(w->o.drain_ns / PT_NS_PER_SEC),
                w->ob ? "; then the rest goes to the outbox" : "");
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    if (w->spill_started) {
        pthread_mutex_lock(&w->lock);
        w->spill_stop = true;
        pthread_cond_signal(&w->spill_cond);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->spill_thread, NULL);
        outbox_stats(w);
    }
    batch_free(w->cur);
    while (w->spare) {
        struct batch *n = w->spare->next;
        batch_free(w->spare);
        w->spare = n;
    }
    pt_wire_dec_free(w->dec);
    free(w->pts);
    free(w->meas);
    free(w->tags);
    free(w->fields);
    free(w->ids);
    free(w->d.refs);
    while (w->sp_head) { /* never acknowledged: the agents resend them */
        struct spilled *n = w->sp_head->next;
        free(w->sp_head);
        w->sp_head = n;
    }
    free(w->idx);
    pthread_cond_destroy(&w->cond);
    pthread_cond_destroy(&w->spill_cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
