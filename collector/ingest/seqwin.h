/* Per-agent sequence window: detects duplicates, replays and gaps.
 *
 * Frames are ordered by (epoch, seq): an agent starts a new epoch when it
 * restarts and numbers its frames 1, 2, 3... within it. The window remembers
 * which of the last SEQWIN_BITS sequence numbers below the highest one were
 * seen, so a late frame inside the window is accepted once and a second copy
 * is a duplicate; anything older than the window, or from an older epoch, is
 * refused as a replay. */
#ifndef COLL_SEQWIN_H
#define COLL_SEQWIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SEQWIN_BITS 1024

struct seqwin {
    uint64_t epoch;
    uint64_t top;                    /* highest seq seen in epoch; 0 = none yet */
    uint64_t bits[SEQWIN_BITS / 64]; /* bit i: seq (top - i) was seen */
    uint64_t missing;                /* seqs skipped and not (yet) filled, over all epochs */
};

enum seqwin_verdict {
    SEQWIN_NEW,       /* first time seen: accept */
    SEQWIN_DUPLICATE, /* seen before within the window */
    SEQWIN_REPLAY,    /* older than the window or than the epoch */
};

/* Classifies (epoch, seq) and, for SEQWIN_NEW, records it. seq must be >= 1. */
enum seqwin_verdict seqwin_check(struct seqwin *w, uint64_t epoch, uint64_t seq);

/* Restores state persisted as (epoch, top): everything up to top counts as
 * seen, since which of those arrived is not known any more. */
void seqwin_restore(struct seqwin *w, uint64_t epoch, uint64_t top, uint64_t missing);

/* Whether (epoch, seq) is recorded in the window. */
bool seqwin_has(const struct seqwin *w, uint64_t epoch, uint64_t seq);

/* Forgets (epoch, seq) if the window holds it, so that it is accepted again
 * (its frame was lost on the way to the store): counted as missing again.
 * Returns whether it was forgotten. */
bool seqwin_forget(struct seqwin *w, uint64_t epoch, uint64_t seq);

/* What an acknowledgement says about a window of durable frames: every seq
 * up to *cum held (contiguously, as far as the window knows: seqs older than
 * the window count as held), and the runs of seqs missing between cum and
 * top, at most max of them, as [first, last] pairs; *top is lowered below
 * the first run that did not fit. Returns the number of runs. */
size_t seqwin_ack(const struct seqwin *w, uint64_t *cum, uint64_t *top, uint64_t (*gaps)[2],
                  size_t max);

#endif
