/* The agent's ring: encoded frames kept until the collector acknowledges
 * them, so an outage or a lost datagram loses nothing (docs/agent.md,
 * "Acknowledged delivery").
 *
 * One buffer of a fixed number of bytes, allocated once by
 * agent_ring_init(); frames are copied in, in seq order, and nothing is
 * allocated per frame. Acknowledged frames are marked, and their room is
 * reused once every older frame is acknowledged too. When a new frame does
 * not fit, the oldest frames are dropped, acknowledged or not: the ones
 * never acknowledged are counted in `dropped`, the caller logs it.
 *
 * While acks keep up, the few frames in flight are kept near the start of
 * the buffer, so only its first pages become resident: the ring costs RSS
 * only when an outage fills it. */
#ifndef AGENT_RING_H
#define AGENT_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pt/wire.h"

#define AGENT_RING_MIN_BYTES (64 * 1024)

/* Caller-allocated: agent_ring_init() / agent_ring_close(). */
struct agent_ring {
    unsigned char *buf;
    size_t cap;
    size_t head, tail; /* byte offsets of the oldest record and of the next one */
    size_t wrap_end;   /* with wrapped: where the records before offset 0 end */
    bool wrapped;      /* tail is below head: records run head..wrap_end, 0..tail */
    size_t frames;     /* records held, acknowledged or not */
    size_t unacked;    /* of which not acknowledged */
    size_t bytes;      /* of the records held, headers included */
    uint64_t dropped;  /* unacknowledged frames dropped for room, since the start */
    uint64_t acked;    /* frames acknowledged, since the start */
};

/* One frame as agent_ring_next() shows it; data points into the ring. */
struct agent_ring_frame {
    uint64_t seq;
    int64_t sent_ns; /* monotonic time of the last send; 0: never sent */
    uint32_t sends;  /* how often it was sent */
    const uint8_t *data;
    size_t len;
    size_t at; /* where it is, for agent_ring_sent() */
};

/* Allocates cap bytes (at least AGENT_RING_MIN_BYTES). Returns 0 or -ENOMEM. */
int agent_ring_init(struct agent_ring *r, size_t cap);
void agent_ring_close(struct agent_ring *r);

/* Copies a frame in (seqs must ascend). Makes room by dropping the oldest
 * frames; *dropped_unacked (may be NULL) says how many of them were never
 * acknowledged. sent_ns is the send time, 0 when the frame is held back.
 * Returns 0, or -E2BIG when the frame is larger than the whole ring (it is
 * not kept then). */
int agent_ring_push(struct agent_ring *r, uint64_t seq, const void *data, size_t len,
                    int64_t sent_ns, uint64_t *dropped_unacked);

/* Marks every frame the ack covers as acknowledged and frees the room of
 * the acknowledged frames at the old end. Returns how many frames this ack
 * acknowledged that were not before. The caller checks agent, epoch and
 * signature first. */
size_t agent_ring_ack(struct agent_ring *r, const struct pt_wire_ack *a);

/* Iterates over the unacknowledged frames, oldest first:
 *   struct agent_ring_iter it; agent_ring_iter(r, &it);
 *   while (agent_ring_next(r, &it, &f)) ...
 * A push or an ack ends an iteration. */
struct agent_ring_iter {
    size_t at, left;
};
void agent_ring_iter(const struct agent_ring *r, struct agent_ring_iter *it);
bool agent_ring_next(const struct agent_ring *r, struct agent_ring_iter *it,
                     struct agent_ring_frame *out);

/* Records that the frame agent_ring_next() showed at `at` was sent at
 * now_ns (once more). Valid until the next push or ack. */
void agent_ring_sent(struct agent_ring *r, size_t at, int64_t now_ns);

/* The seq of the oldest unacknowledged frame, or 0 when there is none. */
uint64_t agent_ring_oldest(const struct agent_ring *r);

#endif
