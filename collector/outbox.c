/* The durable outbox: segment files of CRC-checked, length-prefixed records.
 *
 * Layout (little-endian, docs/storage.md "Outbox"):
 *   segment  = file header, records
 *   header   = "PTOUTBX1" (8 bytes), u64 segment sequence number
 *   record   = u32 magic "PTRC", u32 len, u32 crc, u32 state, u64 id,
 *              i64 born_ns, u32 nframes, u32 npoints, payload (len bytes),
 *              zero padding to a multiple of 8
 * crc is CRC-32 (zlib) of len, id, born_ns, nframes, npoints and the payload.
 * state is 0 while the record is pending and REC_DONE once it was written to
 * the store; it is outside the CRC because it is rewritten in place, one
 * pwrite of four bytes per pop, and not synced on its own: after a crash a
 * few records may be replayed twice, which the stores tolerate (a point at
 * the time of an existing one of the same series replaces it).
 *
 * Records are consumed in order, so a segment is: done records, then
 * pending ones. A segment without pending records is deleted. */
#include "outbox.h"
#include "pt/err.h"
#include "pt/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#define SEG_MAGIC    "PTOUTBX1"
#define SEG_HDR      16
#define REC_MAGIC    0x43525450u /* "PTRC" */
#define REC_DONE     0x454e4f44u /* "DONE" */
#define REC_HDR      40
#define STATE_OFF    12
#define SEG_MIN      (64u * 1024)
#define SEG_MAX      (64u << 20)
#define MAX_SEGMENTS 100000 /* a directory with more is not ours */

struct seg {
    struct seg *next;
    uint64_t seq;
    int fd;
    uint64_t size;                 /* file bytes: where the next record goes */
    uint64_t head;                 /* offset of the first pending record */
    uint64_t nrec, frames, points; /* pending */
    struct coll_outbox_rec h;      /* header of the record at head (data unset) */
    bool hvalid;                   /* h was read and looked sane */
    bool dirty;                    /* written since the last sync */
};

struct coll_outbox {
    char dir[PATH_MAX - 32];
    uint64_t max_bytes, seg_bytes;
    pthread_mutex_t lock;
    struct seg *head, *tail;
    uint64_t bytes, nrec, frames, points;
    uint64_t next_id, next_seq;
    bool dir_dirty;
    unsigned char *buf; /* the consumer's copy of the peeked record */
    size_t bufcap;
    struct coll_outbox_info lost; /* cumulative dropped_* and corrupt_* */
    struct pt_complain c_full;
    /* The sync thread: fdatasync can take long on a busy disk, and the
     * appender must not wait for it (coll_outbox_sync_soon()). */
    pthread_t syncer;
    pthread_mutex_t sync_lock; /* guards the three flags; never held during I/O */
    pthread_cond_t sync_cond;
    bool sync_started, sync_req, sync_stop;
    /* nrec for readers that must not wait for the lock, which is held
     * during disk reads and writes (coll_outbox_records()). */
    _Atomic uint64_t nrec_pub;
    /* Every record appended with an id up to this is on disk (synced):
     * coll_outbox_synced(). One sync at a time (sync_run), so a sync that
     * finds nothing left to do cannot claim what another one is still
     * syncing. */
    _Atomic uint64_t synced_id;
    pthread_mutex_t sync_run;
};

/* ---- little-endian fields ------------------------------------------------ */

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static uint64_t rec_size(uint64_t len)
{
    return (REC_HDR + len + 7) & ~(uint64_t)7;
}

static uint32_t rec_crc(const unsigned char *hdr, const void *payload, size_t len)
{
    uLong c = crc32(0L, Z_NULL, 0);
    c = crc32(c, hdr + 4, 4);             /* len */
    c = crc32(c, hdr + 16, REC_HDR - 16); /* id, born, nframes, npoints */
    /* zlib takes uInt lengths; records are far below 4 GiB (MAX_RECORD). */
    c = crc32(c, payload, (uInt)len);
    return (uint32_t)c;
}

/* Parses a record header; false when it cannot be one. */
static bool hdr_parse(const unsigned char *p, struct coll_outbox_rec *r, uint32_t *crc,
                      uint32_t *state)
{
    if (get32(p) != REC_MAGIC) return false;
    r->len = get32(p + 4);
    *crc = get32(p + 8);
    *state = get32(p + 12);
    r->id = get64(p + 16);
    r->born_ns = (int64_t)get64(p + 24);
    r->nframes = get32(p + 32);
    r->npoints = get32(p + 36);
    r->data = NULL;
    return r->len <= COLL_OUTBOX_MAX_RECORD && (*state == 0 || *state == REC_DONE);
}

/* pread() of exactly n bytes; -EIO on a short read (file shorter). */
static int pread_all(int fd, void *buf, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -errno;
        if (r == 0) return -EIO;
        got += (size_t)r;
    }
    return 0;
}

static int grow_buf(struct coll_outbox *ob, size_t need)
{
    if (need <= ob->bufcap) return 0;
    size_t cap = ob->bufcap ? ob->bufcap : 64 * 1024;
    while (cap < need) cap *= 2;
    unsigned char *nb = realloc(ob->buf, cap);
    if (!nb) return -ENOMEM;
    ob->buf = nb;
    ob->bufcap = cap;
    return 0;
}

static void seg_path(const struct coll_outbox *ob, uint64_t seq, char *out, size_t n)
{
    snprintf(out, n, "%s/%016" PRIx64 ".seg", ob->dir, seq);
}

/* Removes s (the head segment) from the list and deletes its file. */
static void seg_delete(struct coll_outbox *ob, struct seg *s)
{
    char path[PATH_MAX];
    seg_path(ob, s->seq, path, sizeof path);
    if (unlink(path) && errno != ENOENT)
        PT_ERROR("outbox", "cannot delete %s: %s", path, strerror(errno));
    close(s->fd);
    ob->bytes -= s->size;
    ob->nrec -= s->nrec;
    ob->frames -= s->frames;
    ob->points -= s->points;
    if (ob->head == s) ob->head = s->next;
    if (ob->tail == s) ob->tail = NULL;
    ob->dir_dirty = true;
    free(s);
}

/* Reads the header at s->head into s->h (s->hvalid says whether it is sane). */
static void seg_read_head(struct seg *s)
{
    unsigned char hdr[REC_HDR];
    uint32_t crc, state;
    s->hvalid = s->head + REC_HDR <= s->size && pread_all(s->fd, hdr, REC_HDR, s->head) == 0 &&
                hdr_parse(hdr, &s->h, &crc, &state) && state == 0 &&
                s->head + rec_size(s->h.len) <= s->size;
}

/* ---- open: scan what a previous run left --------------------------------- */

/* Scans one segment: counts pending records, finds the head, truncates a
 * damaged tail. Returns 0, or <0 when the file is unusable (then it is
 * removed by the caller). */
static int seg_scan(struct coll_outbox *ob, struct seg *s, const char *path)
{
    struct stat st;
    unsigned char hdr[REC_HDR];
    if (fstat(s->fd, &st)) return -errno;
    uint64_t fsize = (uint64_t)st.st_size;
    if (fsize < SEG_HDR || pread_all(s->fd, hdr, SEG_HDR, 0) || memcmp(hdr, SEG_MAGIC, 8) != 0 ||
        get64(hdr + 8) != s->seq) {
        PT_ERROR("outbox", "%s is not an outbox segment (bad header); removing it", path);
        ob->lost.corrupt_bytes += fsize;
        return -EINVAL;
    }
    uint64_t off = SEG_HDR;
    bool seen_pending = false;
    const char *why = NULL;
    s->head = SEG_HDR;
    while (off < fsize) {
        struct coll_outbox_rec r;
        uint32_t crc, state;
        if (off + REC_HDR > fsize) {
            why = "torn record header";
            break;
        }
        int rc = pread_all(s->fd, hdr, REC_HDR, off);
        if (rc) return rc;
        if (!hdr_parse(hdr, &r, &crc, &state)) {
            why = "bad record header";
            break;
        }
        if (off + rec_size(r.len) > fsize) {
            why = "torn record (shorter than its length)";
            break;
        }
        if (r.id >= ob->next_id) ob->next_id = r.id + 1;
        if (state == REC_DONE && !seen_pending) {
            off += rec_size(r.len);
            s->head = off;
            continue;
        }
        if ((rc = grow_buf(ob, r.len ? r.len : 1))) return rc;
        if ((rc = pread_all(s->fd, ob->buf, r.len, off + REC_HDR))) return rc;
        if (rec_crc(hdr, ob->buf, r.len) != crc) {
            why = "CRC mismatch";
            break;
        }
        if (!seen_pending) {
            s->h = r;
            s->hvalid = true;
        }
        seen_pending = true;
        s->nrec++;
        s->frames += r.nframes;
        s->points += r.npoints;
        off += rec_size(r.len);
    }
    if (why) {
        PT_ERROR("outbox",
                 "%s: %s at offset %" PRIu64 "; truncating %" PRIu64
                 " bytes (a crash while writing, or damage)",
                 path, why, off, fsize - off);
        if (ftruncate(s->fd, (off_t)off)) return -errno;
        ob->lost.corrupt_bytes += fsize - off;
        s->dirty = true;
    }
    s->size = off;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Lists the segment sequence numbers in dir, sorted. */
static int list_segments(const char *dir, uint64_t **out, size_t *n)
{
    DIR *d = opendir(dir);
    if (!d) return -errno;
    uint64_t *v = NULL;
    size_t cnt = 0, cap = 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        char *end;
        size_t l = strlen(e->d_name);
        if (l != 20 || strcmp(e->d_name + 16, ".seg") != 0) continue;
        uint64_t seq = strtoull(e->d_name, &end, 16);
        if (end != e->d_name + 16) continue;
        if (cnt == cap) {
            if (cap >= MAX_SEGMENTS) {
                rc = PT_E_LIMIT;
                break;
            }
            cap = cap ? cap * 2 : 16;
            uint64_t *nv = realloc(v, cap * sizeof *v);
            if (!nv) {
                rc = -ENOMEM;
                break;
            }
            v = nv;
        }
        v[cnt++] = seq;
    }
    closedir(d);
    if (rc) {
        free(v);
        return rc;
    }
    if (cnt) qsort(v, cnt, sizeof *v, cmp_u64);
    *out = v;
    *n = cnt;
    return 0;
}

int coll_outbox_open(struct coll_outbox **out, const struct coll_outbox_opts *o, char *err,
                     size_t errlen)
{
    if (o->max_bytes < COLL_OUTBOX_MIN_BYTES) {
        snprintf(err, errlen, "outbox: max_bytes %" PRIu64 " is below the minimum %u", o->max_bytes,
                 COLL_OUTBOX_MIN_BYTES);
        return -EINVAL;
    }
    struct coll_outbox *ob = calloc(1, sizeof *ob);
    if (!ob) return -ENOMEM;
    if ((size_t)snprintf(ob->dir, sizeof ob->dir, "%s", o->dir) >= sizeof ob->dir) {
        snprintf(err, errlen, "outbox: directory name too long: %.200s...", o->dir);
        free(ob);
        return -ENAMETOOLONG;
    }
    ob->max_bytes = o->max_bytes;
    ob->seg_bytes = o->segment_bytes ? o->segment_bytes : o->max_bytes / 16;
    if (ob->seg_bytes < SEG_MIN) ob->seg_bytes = SEG_MIN;
    if (ob->seg_bytes > SEG_MAX) ob->seg_bytes = SEG_MAX;
    ob->next_seq = 1;
    ob->next_id = 1;
    pthread_mutex_init(&ob->lock, NULL);
    pthread_mutex_init(&ob->sync_lock, NULL);
    pthread_mutex_init(&ob->sync_run, NULL);
    pthread_cond_init(&ob->sync_cond, NULL);
    if (mkdir(ob->dir, 0750) && errno != EEXIST) {
        int e = errno;
        snprintf(err, errlen, "outbox: cannot create directory %s: %s", ob->dir, strerror(e));
        coll_outbox_close(ob);
        return -e;
    }
    uint64_t *seqs = NULL;
    size_t nseq = 0;
    int rc = list_segments(ob->dir, &seqs, &nseq);
    if (rc) {
        snprintf(err, errlen, "outbox: cannot list %s: %s", ob->dir, pt_strerror(rc));
        coll_outbox_close(ob);
        return rc;
    }
    for (size_t i = 0; i < nseq; i++) {
        char path[PATH_MAX];
        seg_path(ob, seqs[i], path, sizeof path);
        ob->next_seq = seqs[i] + 1;
        struct seg *s = calloc(1, sizeof *s);
        if (!s) {
            rc = -ENOMEM;
            break;
        }
        s->seq = seqs[i];
        s->fd = open(path, O_RDWR | O_CLOEXEC);
        if (s->fd < 0) {
            rc = -errno;
            snprintf(err, errlen, "outbox: cannot open %s: %s", path, strerror(errno));
            free(s);
            break;
        }
        rc = seg_scan(ob, s, path);
        if (rc == -EINVAL || (rc == 0 && s->nrec == 0)) { /* unusable or fully consumed */
            close(s->fd);
            if (unlink(path)) PT_ERROR("outbox", "cannot delete %s: %s", path, strerror(errno));
            ob->dir_dirty = true;
            free(s);
            rc = 0;
            continue;
        }
        if (rc) {
            snprintf(err, errlen, "outbox: cannot read %s: %s", path, pt_strerror(rc));
            close(s->fd);
            free(s);
            break;
        }
        if (ob->tail)
            ob->tail->next = s;
        else
            ob->head = s;
        ob->tail = s;
        ob->bytes += s->size;
        ob->nrec += s->nrec;
        ob->frames += s->frames;
        ob->points += s->points;
    }
    free(seqs);
    if (rc) {
        coll_outbox_close(ob);
        return rc;
    }
    atomic_store(&ob->nrec_pub, ob->nrec);
    if (ob->nrec)
        PT_INFO("outbox",
                "%s holds %" PRIu64 " batches (%" PRIu64 " frames, %" PRIu64 " points, %" PRIu64
                " bytes) from a previous run; they will be written first",
                ob->dir, ob->nrec, ob->frames, ob->points, ob->bytes);
    *out = ob;
    return 0;
}

/* ---- append ------------------------------------------------------------- */

static int seg_create(struct coll_outbox *ob, struct seg **out)
{
    char path[PATH_MAX];
    struct seg *s = calloc(1, sizeof *s);
    if (!s) return -ENOMEM;
    s->seq = ob->next_seq;
    seg_path(ob, s->seq, path, sizeof path);
    s->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (s->fd < 0) {
        int e = -errno;
        free(s);
        return e;
    }
    unsigned char hdr[SEG_HDR];
    memcpy(hdr, SEG_MAGIC, 8);
    put64(hdr + 8, s->seq);
    if (pwrite(s->fd, hdr, SEG_HDR, 0) != SEG_HDR) {
        int e = errno ? -errno : -EIO;
        close(s->fd);
        unlink(path);
        free(s);
        return e;
    }
    ob->next_seq++;
    s->size = s->head = SEG_HDR;
    s->dirty = true;
    ob->dir_dirty = true;
    ob->bytes += SEG_HDR;
    if (ob->tail)
        ob->tail->next = s;
    else
        ob->head = s;
    ob->tail = s;
    *out = s;
    return 0;
}

/* Drops the oldest segment to make room, counting what it held. */
static void drop_oldest(struct coll_outbox *ob)
{
    struct seg *s = ob->head;
    ob->lost.dropped_records += s->nrec;
    ob->lost.dropped_frames += s->frames;
    ob->lost.dropped_points += s->points;
    ob->lost.dropped_bytes += s->size;
    pt_complain(&ob->c_full, PT_LOG_ERROR, "outbox",
                "outbox %s is full (max_bytes %" PRIu64 "): DROPPED its oldest %" PRIu64
                " batches (%" PRIu64 " frames, %" PRIu64
                " points); the store has been unreachable or slow for too long "
                "(see docs/storage.md, Outbox sizing)",
                ob->dir, ob->max_bytes, s->nrec, s->frames, s->points);
    seg_delete(ob, s);
}

int coll_outbox_append(struct coll_outbox *ob, const void *data, size_t len, uint32_t nframes,
                       uint32_t npoints, int64_t born_ns, uint64_t *id)
{
    uint64_t rs = rec_size(len);
    if (len > COLL_OUTBOX_MAX_RECORD || rs + SEG_HDR > ob->max_bytes) return PT_E_LIMIT;
    pthread_mutex_lock(&ob->lock);
    for (;;) {
        struct seg *t = ob->tail;
        bool fits_tail = t && (t->size + rs <= ob->seg_bytes || t->size == SEG_HDR);
        uint64_t need = rs + (fits_tail ? 0 : SEG_HDR);
        if (ob->bytes + need <= ob->max_bytes || !ob->head) break;
        drop_oldest(ob);
        atomic_store(&ob->nrec_pub, ob->nrec);
    }
    int rc = 0;
    struct seg *s = ob->tail;
    if (!s || !(s->size + rs <= ob->seg_bytes || s->size == SEG_HDR)) rc = seg_create(ob, &s);
    if (rc) {
        pthread_mutex_unlock(&ob->lock);
        return rc;
    }
    unsigned char hdr[REC_HDR];
    static const unsigned char pad[8];
    put32(hdr, REC_MAGIC);
    put32(hdr + 4, (uint32_t)len);
    put32(hdr + 12, 0);
    put64(hdr + 16, ob->next_id);
    put64(hdr + 24, (uint64_t)born_ns);
    put32(hdr + 32, nframes);
    put32(hdr + 36, npoints);
    put32(hdr + 8, rec_crc(hdr, data, len));
    struct iovec iov[3] = {
        {hdr, REC_HDR}, {(void *)(uintptr_t)data, len}, {(void *)pad, rs - REC_HDR - len}};
    uint64_t off = s->size;
    size_t done = 0;
    while (done < rs) {
        /* Retry a short write from where it stopped. */
        struct iovec v[3];
        int nv = 0;
        size_t skip = done;
        for (int i = 0; i < 3; i++) {
            if (skip >= iov[i].iov_len) {
                skip -= iov[i].iov_len;
                continue;
            }
            v[nv].iov_base = (char *)iov[i].iov_base + skip;
            v[nv].iov_len = iov[i].iov_len - skip;
            skip = 0;
            nv++;
        }
        ssize_t w = pwritev(s->fd, v, nv, (off_t)(off + done));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            rc = w < 0 ? -errno : -EIO;
            /* Leave no half record behind for the next append to follow. */
            if (ftruncate(s->fd, (off_t)off)) PT_ERROR("outbox", "truncate: %s", strerror(errno));
            pthread_mutex_unlock(&ob->lock);
            return rc;
        }
        done += (size_t)w;
    }
    s->size += rs;
    s->dirty = true;
    if (s->nrec == 0) {
        s->head = off;
        s->h = (struct coll_outbox_rec){ob->next_id, born_ns, nframes, npoints, NULL, len};
        s->hvalid = true;
    }
    s->nrec++;
    s->frames += nframes;
    s->points += npoints;
    ob->bytes += rs;
    ob->nrec++;
    ob->frames += nframes;
    ob->points += npoints;
    if (id) *id = ob->next_id;
    ob->next_id++;
    atomic_store(&ob->nrec_pub, ob->nrec);
    pthread_mutex_unlock(&ob->lock);
    return 0;
}

/* Syncs what was written so far. The file descriptors are duplicated under
 * the lock and synced outside it, so appends, peeks and pops go on
 * meanwhile (a segment deleted in between is synced for nothing). */
int coll_outbox_sync(struct coll_outbox *ob)
{
    int fds[64], nfd = 0, rc = 0;
    bool more = true, dir;
    uint64_t upto = 0;
    pthread_mutex_lock(&ob->sync_run);
    while (more) {
        more = false;
        nfd = 0;
        pthread_mutex_lock(&ob->lock);
        if (!upto) upto = ob->next_id - 1; /* appended so far: written, to be synced */
        for (struct seg *s = ob->head; s; s = s->next) {
            if (!s->dirty) continue;
            if (nfd == (int)(sizeof fds / sizeof fds[0])) {
                more = true;
                break;
            }
            int fd = dup(s->fd);
            if (fd < 0) {
                if (!rc) rc = -errno;
                continue;
            }
            fds[nfd++] = fd;
            s->dirty = false;
        }
        dir = ob->dir_dirty;
        ob->dir_dirty = false;
        pthread_mutex_unlock(&ob->lock);
        for (int i = 0; i < nfd; i++) {
            if (fdatasync(fds[i]) && !rc) rc = -errno;
            close(fds[i]);
        }
        if (dir) {
            int dfd = open(ob->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd >= 0) {
                if (fsync(dfd) && !rc) rc = -errno;
                close(dfd);
            }
        }
    }
    if (!rc && upto > atomic_load(&ob->synced_id)) atomic_store(&ob->synced_id, upto);
    pthread_mutex_unlock(&ob->sync_run);
    if (rc) PT_ERROR("outbox", "sync of %s failed: %s", ob->dir, pt_strerror(rc));
    return rc;
}

uint64_t coll_outbox_synced(struct coll_outbox *ob)
{
    return atomic_load(&ob->synced_id);
}

static void *sync_main(void *arg)
{
    struct coll_outbox *ob = arg;
    pthread_mutex_lock(&ob->sync_lock);
    while (!ob->sync_stop) {
        if (!ob->sync_req) {
            pthread_cond_wait(&ob->sync_cond, &ob->sync_lock);
            continue;
        }
        ob->sync_req = false;
        pthread_mutex_unlock(&ob->sync_lock);
        coll_outbox_sync(ob);
        pthread_mutex_lock(&ob->sync_lock);
    }
    pthread_mutex_unlock(&ob->sync_lock);
    return NULL;
}

void coll_outbox_sync_soon(struct coll_outbox *ob)
{
    pthread_mutex_lock(&ob->sync_lock);
    if (!ob->sync_started) {
        /* Started on first use, so a read-only user (a test, a tool) has
         * no thread. */
        if (pthread_create(&ob->syncer, NULL, sync_main, ob) == 0) {
            ob->sync_started = true;
            pthread_setname_np(ob->syncer, "pt-outbox-sync");
        }
    }
    if (!ob->sync_started) {
        /* Not here: the caller may hold a lock ingest needs. The kernel
         * writes the pages back anyway; close() syncs. */
        pthread_mutex_unlock(&ob->sync_lock);
        PT_WARN("outbox", "cannot start the sync thread; appends are synced at close only");
        return;
    }
    ob->sync_req = true;
    pthread_cond_signal(&ob->sync_cond);
    pthread_mutex_unlock(&ob->sync_lock);
}

/* ---- consume ------------------------------------------------------------ */

/* The head segment is damaged at its head: count and drop all of it. */
static void drop_damaged(struct coll_outbox *ob, struct seg *s, const char *why)
{
    char path[PATH_MAX];
    seg_path(ob, s->seq, path, sizeof path);
    PT_ERROR("outbox",
             "%s: %s at offset %" PRIu64 "; dropping the rest of the segment (%" PRIu64
             " batches, %" PRIu64 " frames, %" PRIu64 " points)",
             path, why, s->head, s->nrec, s->frames, s->points);
    ob->lost.corrupt_bytes += s->size - s->head;
    ob->lost.corrupt_frames += s->frames;
    ob->lost.corrupt_points += s->points;
    seg_delete(ob, s);
}

int coll_outbox_peek(struct coll_outbox *ob, struct coll_outbox_rec *rec)
{
    pthread_mutex_lock(&ob->lock);
    int rc = -ENOENT;
    struct seg *s;
    while ((s = ob->head)) { /* each failed round deletes a segment: this ends */
        if (s->nrec == 0) {  /* created, then its first append failed */
            seg_delete(ob, s);
            continue;
        }
        unsigned char hdr[REC_HDR];
        struct coll_outbox_rec r;
        uint32_t crc, state;
        if (s->head + REC_HDR > s->size || pread_all(s->fd, hdr, REC_HDR, s->head) ||
            !hdr_parse(hdr, &r, &crc, &state) || state != 0 ||
            s->head + rec_size(r.len) > s->size) {
            drop_damaged(ob, s, "unreadable record header");
            continue;
        }
        if ((rc = grow_buf(ob, r.len ? r.len : 1))) break;
        if (pread_all(s->fd, ob->buf, r.len, s->head + REC_HDR) ||
            rec_crc(hdr, ob->buf, r.len) != crc) {
            drop_damaged(ob, s, "record fails its CRC");
            rc = -ENOENT;
            continue;
        }
        r.data = ob->buf;
        s->h = r;
        s->hvalid = true;
        *rec = r;
        rc = 0;
        break;
    }
    atomic_store(&ob->nrec_pub, ob->nrec);
    pthread_mutex_unlock(&ob->lock);
    return rc;
}

int coll_outbox_pop(struct coll_outbox *ob, uint64_t id)
{
    pthread_mutex_lock(&ob->lock);
    struct seg *s = ob->head;
    if (!s || !s->hvalid || s->h.id != id) {
        pthread_mutex_unlock(&ob->lock);
        return -ENOENT;
    }
    unsigned char done[4];
    put32(done, REC_DONE);
    if (pwrite(s->fd, done, 4, (off_t)(s->head + STATE_OFF)) != 4)
        PT_WARN("outbox", "cannot mark a record written (%s); it may be written twice",
                strerror(errno));
    s->dirty = true;
    s->head += rec_size(s->h.len);
    s->nrec--;
    s->frames -= s->h.nframes;
    s->points -= s->h.npoints;
    ob->nrec--;
    ob->frames -= s->h.nframes;
    ob->points -= s->h.npoints;
    if (s->nrec == 0)
        seg_delete(ob, s);
    else
        seg_read_head(s);
    if (ob->bytes < ob->max_bytes / 2) /* not at every pop while it is nearly full */
        pt_complain_release(&ob->c_full, "outbox", "outbox %s is below half full again", ob->dir);
    atomic_store(&ob->nrec_pub, ob->nrec);
    pthread_mutex_unlock(&ob->lock);
    return 0;
}

void coll_outbox_info(struct coll_outbox *ob, struct coll_outbox_info *info)
{
    pthread_mutex_lock(&ob->lock);
    *info = ob->lost;
    info->bytes = ob->bytes;
    info->records = ob->nrec;
    info->frames = ob->frames;
    info->points = ob->points;
    info->oldest_born_ns = ob->head && ob->head->hvalid ? ob->head->h.born_ns : 0;
    pthread_mutex_unlock(&ob->lock);
}

uint64_t coll_outbox_records(struct coll_outbox *ob)
{
    return atomic_load(&ob->nrec_pub);
}

void coll_outbox_close(struct coll_outbox *ob)
{
    if (!ob) return;
    if (ob->sync_started) {
        pthread_mutex_lock(&ob->sync_lock);
        ob->sync_stop = true;
        pthread_cond_signal(&ob->sync_cond);
        pthread_mutex_unlock(&ob->sync_lock);
        pthread_join(ob->syncer, NULL);
    }
    coll_outbox_sync(ob);
    while (ob->head) {
        struct seg *s = ob->head;
        ob->head = s->next;
        close(s->fd);
        free(s);
    }
    free(ob->buf);
    pthread_cond_destroy(&ob->sync_cond);
    pthread_mutex_destroy(&ob->sync_lock);
    pthread_mutex_destroy(&ob->sync_run);
    pthread_mutex_destroy(&ob->lock);
    free(ob);
}
