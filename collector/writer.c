/* Batches accepted frames and writes them to the store on its own thread. */
#include "writer.h"
#include "pt/err.h"
#include "pt/log.h"
#include "pt/time.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define RECORD_HDR      8 /* u32 length, u16 points, u16 padding */
#define RETAIN_FREE     4 /* spare batches kept for reuse */
#define RETENTION_EVERY (600 * PT_NS_PER_SEC)

struct batch {
    struct batch *next;
    size_t nframes, npoints, used, cap;
    int64_t born_ns; /* monotonic time of the first frame */
    unsigned char *data;
    struct coll_frame_ref *refs; /* one per frame (batch_frames of room) */
};

struct coll_writer {
    struct coll_writer_opts o;
    const struct store_ops *ops;
    struct store *store;
    struct coll_registry *reg;
    struct coll_stats *stats;

    struct batch *cur; /* ingest thread only */

    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t cond;
    struct batch *head, *tail; /* queue */
    size_t depth;
    struct batch *spare; /* free list */
    size_t nspare;
    int stopping;
    int64_t drain_deadline; /* monotonic; set with stopping */

    pthread_t thread;
    struct pt_complain c_full, c_store;

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
    b->born_ns = 0;
    return b;
}

static void batch_free(struct batch *b)
{
    if (!b) return;
    free(b->data);
    free(b->refs);
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
    }
    pthread_mutex_unlock(&w->lock);
    if (full) {
        coll_registry_forget(w->reg, b->refs, b->nframes);
        atomic_fetch_add(&w->stats->frames_dropped_queue, b->nframes);
        atomic_fetch_add(&w->stats->points_dropped_queue, b->npoints);
        pt_complain(&w->c_full, PT_LOG_ERROR, "writer",
                    "write queue full (%zu batches): dropped %zu frames / %zu points; the store "
                    "is slower than ingest",
                    w->o.queue_batches, b->nframes, b->npoints);
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
    if (b->nframes++ == 0) b->born_ns = pt_mono_ns();
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
    size_t off = 0;
    struct pt_frame f;
    for (size_t k = 0; k < b->nframes; k++) {
        uint32_t len;
        memcpy(&len, b->data + off, 4);
        const unsigned char *frame = b->data + off + RECORD_HDR;
        off += record_size(len);
        if (pt_wire_decode(w->dec, frame, len, &f) != 0) continue; /* cannot happen: checked */
        w->ids[nids] = f.id;
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
    return (long)npts;
}

static void write_batch(struct coll_writer *w, struct batch *b)
{
    long n = decode_batch(w, b);
    if (n < 0) {
        coll_registry_forget(w->reg, b->refs, b->nframes);
        atomic_fetch_add(&w->stats->frames_dropped_store, b->nframes);
        atomic_fetch_add(&w->stats->points_dropped_store, b->npoints);
        pt_complain(&w->c_store, PT_LOG_ERROR, "writer", "out of memory decoding a batch");
        return;
    }
    static const int64_t backoff_ms[] = {100, 500, 2000};
    int rc = 0;
    for (size_t attempt = 0;; attempt++) {
        int64_t t0 = pt_mono_ns();
        rc = w->ops->write_batch(w->store, w->pts, (size_t)n);
        double secs = (double)(pt_mono_ns() - t0) / 1e9;
        if (rc == 0) {
            coll_hist_observe(&w->stats->write_seconds, secs);
            coll_hist_observe(&w->stats->batch_points, (double)n);
            atomic_fetch_add(&w->stats->points_written, (uint64_t)n);
            atomic_fetch_add(&w->stats->frames_written, b->nframes);
            atomic_fetch_add(&w->stats->batches_written, 1);
            coll_registry_durable(w->reg, b->refs, b->nframes); /* now they may be acked */
            pt_complain_release(&w->c_store, "writer", "store writes succeed again");
            return;
        }
        atomic_fetch_add(&w->stats->store_errors, 1);
        /* An invalid point can never be stored: retrying cannot help. */
        bool permanent = rc == -EINVAL || rc == PT_E_LIMIT;
        if (permanent || attempt >= sizeof backoff_ms / sizeof backoff_ms[0]) break;
        PT_WARN("writer", "store write of %ld points failed (%s); retrying in %lld ms", n,
                pt_strerror(rc), (long long)backoff_ms[attempt]);
        struct timespec ts = {0, (long)(backoff_ms[attempt] % 1000) * 1000000L};
        ts.tv_sec = backoff_ms[attempt] / 1000;
        nanosleep(&ts, NULL);
    }
    coll_registry_forget(w->reg, b->refs, b->nframes);
    atomic_fetch_add(&w->stats->frames_dropped_store, b->nframes);
    atomic_fetch_add(&w->stats->points_dropped_store, (uint64_t)n);
    pt_complain(&w->c_store, PT_LOG_ERROR, "writer",
                "store write failed after retries (%s): dropped %ld points of %zu frames",
                pt_strerror(rc), n, b->nframes);
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

static void *writer_main(void *arg)
{
    struct coll_writer *w = arg;
    int64_t next_persist = pt_mono_ns() + w->o.persist_ns, next_retention = 0;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        while (!w->head && !w->stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += 1;
            if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) == ETIMEDOUT) break;
        }
        struct batch *b = w->head;
        if (b) {
            w->head = b->next;
            if (!w->head) w->tail = NULL;
            w->depth--;
            atomic_store(&w->stats->queue_depth, (int64_t)w->depth);
        }
        int stop = w->stopping && !b;
        bool late = w->stopping && pt_mono_ns() > w->drain_deadline;
        size_t left = w->depth;
        pthread_mutex_unlock(&w->lock);
        if (b && late) {
            coll_registry_forget(w->reg, b->refs, b->nframes);
            atomic_fetch_add(&w->stats->frames_dropped_shutdown, b->nframes);
            atomic_fetch_add(&w->stats->points_dropped_shutdown, b->npoints);
            pt_complain(&w->c_store, PT_LOG_ERROR, "writer",
                        "shutdown: the store did not take the queue in time; dropping %zu "
                        "queued batches",
                        left + 1);
            batch_put(w, b);
            continue;
        }
        if (b) {
            write_batch(w, b);
            batch_put(w, b);
        }
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
    w->dec = pt_wire_dec_new();
    if (!w->dec) {
        free(w);
        return -ENOMEM;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&w->lock, NULL);
    atomic_store(&stats->queue_capacity, (int64_t)o->queue_batches);
    int rc = pthread_create(&w->thread, NULL, writer_main, w);
    if (rc) {
        pt_wire_dec_free(w->dec);
        free(w);
        return -rc;
    }
    pthread_setname_np(w->thread, "pt-writer"); /* shows in top -H, ps -L */
    *out = w;
    return 0;
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
        PT_INFO("writer", "writing %zu queued batches before exiting (at most %llds)", w->depth,
                (long long)(w->o.drain_ns / PT_NS_PER_SEC));
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
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
    free(w->idx);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
