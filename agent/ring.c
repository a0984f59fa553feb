/* The agent's ring of unacknowledged frames: a byte ring of variable-size
 * records that never wrap around the end of the buffer. */
#include "ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A record: this header, then the frame, padded to 8 bytes. */
struct rec {
    uint64_t seq;
    int64_t sent_ns;
    uint32_t len;
    uint16_t sends;
    uint8_t acked;
    uint8_t pad;
};

static size_t rec_size(size_t len)
{
    return (sizeof(struct rec) + len + 7) & ~(size_t)7;
}

static struct rec *rec_at(const struct agent_ring *r, size_t at)
{
    return (struct rec *)(void *)(r->buf + at);
}

/* The offset of the record after the one at `at`. */
static size_t rec_next(const struct agent_ring *r, size_t at)
{
    size_t next = at + rec_size(rec_at(r, at)->len);
    if (r->wrapped && next == r->wrap_end && at >= r->head) return 0;
    return next;
}

int agent_ring_init(struct agent_ring *r, size_t cap)
{
    memset(r, 0, sizeof *r);
    if (cap < AGENT_RING_MIN_BYTES) cap = AGENT_RING_MIN_BYTES;
    cap &= ~(size_t)7;
    /* malloc, not calloc: pages are touched (and count in the RSS) only
     * as frames fill them. */
    r->buf = malloc(cap);
    if (!r->buf) return -ENOMEM;
    r->cap = cap;
    return 0;
}

void agent_ring_close(struct agent_ring *r)
{
    free(r->buf);
    r->buf = NULL;
}

static void reset_if_empty(struct agent_ring *r)
{
    if (r->frames) return;
    r->head = r->tail = r->wrap_end = 0;
    r->wrapped = false;
    r->bytes = 0;
}

/* Removes the oldest record. */
static void pop(struct agent_ring *r)
{
    struct rec *h = rec_at(r, r->head);
    size_t sz = rec_size(h->len);
    if (!h->acked) {
        r->unacked--;
        r->dropped++;
    }
    r->bytes -= sz;
    r->frames--;
    r->head += sz;
    if (r->wrapped && r->head == r->wrap_end) {
        r->head = 0;
        r->wrapped = false;
    }
    reset_if_empty(r);
}

/* In steady state a few frames are in flight and acks free them soon: then
 * the live records are moved back to offset 0 once the tail passes
 * COMPACT_AT, so the agent keeps touching the same few pages instead of
 * walking through (and making resident) the whole ring. */
#define COMPACT_AT  (64 * 1024)
#define COMPACT_MAX (16 * 1024)

static void compact(struct agent_ring *r)
{
    if (r->wrapped || r->frames == 0 || r->tail < COMPACT_AT || r->bytes > COMPACT_MAX) return;
    memmove(r->buf, r->buf + r->head, r->tail - r->head);
    r->tail -= r->head;
    r->head = 0;
}

/* Where a record of sz bytes goes, or SIZE_MAX when it does not fit now. */
static size_t place(struct agent_ring *r, size_t sz)
{
    if (r->frames == 0) return sz <= r->cap ? 0 : SIZE_MAX;
    if (r->wrapped) return r->head - r->tail >= sz ? r->tail : SIZE_MAX;
    if (r->cap - r->tail >= sz) return r->tail;
    if (r->head >= sz) { /* wrap: the records above end at tail */
        r->wrap_end = r->tail;
        r->wrapped = true;
        return 0;
    }
    return SIZE_MAX;
}

int agent_ring_push(struct agent_ring *r, uint64_t seq, const void *data, size_t len,
                    int64_t sent_ns, uint64_t *dropped_unacked)
{
    size_t sz = rec_size(len);
    uint64_t before = r->dropped;
    if (sz > r->cap || len > UINT32_MAX) return -E2BIG;
    compact(r);
    size_t at;
    while ((at = place(r, sz)) == SIZE_MAX) pop(r);
    struct rec *h = rec_at(r, at);
    h->seq = seq;
    h->sent_ns = sent_ns;
    h->len = (uint32_t)len;
    h->sends = sent_ns ? 1 : 0;
    h->acked = 0;
    h->pad = 0;
    memcpy(h + 1, data, len);
    r->tail = at + sz;
    r->frames++;
    r->unacked++;
    r->bytes += sz;
    if (dropped_unacked) *dropped_unacked = r->dropped - before;
    return 0;
}

size_t agent_ring_ack(struct agent_ring *r, const struct pt_wire_ack *a)
{
    size_t n = 0, at = r->head;
    for (size_t i = 0; i < r->frames; i++, at = rec_next(r, at)) {
        struct rec *h = rec_at(r, at);
        if (h->seq > a->top) break; /* seqs ascend: nothing further is covered */
        if (!h->acked && pt_wire_ack_covers(a, h->seq)) {
            h->acked = 1;
            r->unacked--;
            r->acked++;
            n++;
        }
    }
    while (r->frames && rec_at(r, r->head)->acked) pop(r);
    return n;
}

void agent_ring_iter(const struct agent_ring *r, struct agent_ring_iter *it)
{
    it->at = r->head;
    it->left = r->frames;
}

bool agent_ring_next(const struct agent_ring *r, struct agent_ring_iter *it,
                     struct agent_ring_frame *out)
{
    while (it->left) {
        size_t at = it->at;
        const struct rec *h = rec_at(r, at);
        it->left--;
        if (it->left) it->at = rec_next(r, at);
        if (h->acked) continue;
        out->seq = h->seq;
        out->sent_ns = h->sent_ns;
        out->sends = h->sends;
        out->data = (const uint8_t *)(h + 1);
        out->len = h->len;
        out->at = at;
        return true;
    }
    return false;
}

void agent_ring_sent(struct agent_ring *r, size_t at, int64_t now_ns)
{
    struct rec *h = rec_at(r, at);
    h->sent_ns = now_ns;
    if (h->sends < UINT16_MAX) h->sends++;
}

uint64_t agent_ring_oldest(const struct agent_ring *r)
{
    size_t at = r->head;
    for (size_t i = 0; i < r->frames; i++, at = rec_next(r, at)) {
        const struct rec *h = rec_at(r, at);
        if (!h->acked) return h->seq;
    }
    return 0;
}
