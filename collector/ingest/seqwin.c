/* Sliding-window duplicate and replay detection (cf. IPsec anti-replay). */
#include "seqwin.h"

#include <string.h>

#define WORDS (SEQWIN_BITS / 64)

static bool test_bit(const struct seqwin *w, uint64_t i)
{
    return (w->bits[i / 64] >> (i % 64)) & 1u;
}

static void set_bit(struct seqwin *w, uint64_t i)
{
    w->bits[i / 64] |= UINT64_C(1) << (i % 64);
}

/* Shifts the window so that bit i becomes bit i + d. */
static void shift(struct seqwin *w, uint64_t d)
{
    if (d >= SEQWIN_BITS) {
        memset(w->bits, 0, sizeof w->bits);
        return;
    }
    uint64_t words = d / 64, bitsh = d % 64;
    for (int k = WORDS - 1; k >= 0; k--) {
        uint64_t v = 0;
        if ((uint64_t)k >= words) {
            v = w->bits[k - words] << bitsh;
            if (bitsh && (uint64_t)k > words) v |= w->bits[k - words - 1] >> (64 - bitsh);
        }
        w->bits[k] = v;
    }
}

enum seqwin_verdict seqwin_check(struct seqwin *w, uint64_t epoch, uint64_t seq)
{
    if (epoch < w->epoch) return SEQWIN_REPLAY;
    if (epoch > w->epoch || w->top == 0) {
        w->epoch = epoch;
        memset(w->bits, 0, sizeof w->bits);
        w->missing += seq - 1; /* frames of the new epoch before this one */
        w->top = seq;
        set_bit(w, 0);
        return SEQWIN_NEW;
    }
    if (seq > w->top) {
        uint64_t d = seq - w->top;
        shift(w, d);
        w->missing += d - 1;
        w->top = seq;
        set_bit(w, 0);
        return SEQWIN_NEW;
    }
    uint64_t i = w->top - seq;
    if (i >= SEQWIN_BITS) return SEQWIN_REPLAY;
    if (test_bit(w, i)) return SEQWIN_DUPLICATE;
    set_bit(w, i);
    if (w->missing) w->missing--;
    return SEQWIN_NEW;
}

void seqwin_restore(struct seqwin *w, uint64_t epoch, uint64_t top, uint64_t missing)
{
    w->epoch = epoch;
    w->top = top;
    w->missing = missing;
    memset(w->bits, top ? 0xff : 0, sizeof w->bits);
}

bool seqwin_has(const struct seqwin *w, uint64_t epoch, uint64_t seq)
{
    if (epoch != w->epoch || w->top == 0 || seq > w->top || seq == 0) return false;
    uint64_t i = w->top - seq;
    return i < SEQWIN_BITS && test_bit(w, i);
}

bool seqwin_forget(struct seqwin *w, uint64_t epoch, uint64_t seq)
{
    if (!seqwin_has(w, epoch, seq)) return false;
    uint64_t i = w->top - seq;
    w->bits[i / 64] &= ~(UINT64_C(1) << (i % 64));
    w->missing++;
    return true;
}

/* The highest index <= i (so the lowest seq from top - i up) whose bit is
 * not want, or -1; a word at a time, as acks scan the window for every
 * agent several times a second. */
static int64_t scan_down(const struct seqwin *w, int64_t i, bool want)
{
    while (i >= 0) {
        uint64_t word = w->bits[i / 64];
        if (!want) word = ~word;
        unsigned b = (unsigned)(i % 64);
        uint64_t mask = b == 63 ? ~UINT64_C(0) : (UINT64_C(1) << (b + 1)) - 1;
        uint64_t diff = ~word & mask; /* bits <= b that are not want */
        if (diff) return (i / 64) * 64 + (63 - __builtin_clzll(diff));
        i = (i / 64) * 64 - 1;
    }
    return -1;
}

size_t seqwin_ack(const struct seqwin *w, uint64_t *cum, uint64_t *top, uint64_t (*gaps)[2],
                  size_t max)
{
    *cum = *top = w->top;
    if (w->top == 0) return 0;
    /* Bit i is seq top - i; walk from the oldest seq the window holds (seqs
     * older than the window count as held: nothing can fill them). */
    int64_t i = (int64_t)(w->top < SEQWIN_BITS ? w->top - 1 : SEQWIN_BITS - 1);
    i = scan_down(w, i, true); /* the first missing seq */
    if (i < 0) return 0;       /* everything held: cum = top */
    *cum = w->top - (uint64_t)i - 1;
    size_t n = 0;
    while (i >= 0) {
        uint64_t first = w->top - (uint64_t)i;
        int64_t j = scan_down(w, i, false); /* the next held seq */
        if (j < 0 || n == max) {            /* (top itself is always held) */
            *top = first - 1;
            break;
        }
        gaps[n][0] = first;
        gaps[n][1] = w->top - (uint64_t)j - 1;
        n++;
        i = scan_down(w, j, true);
    }
    return n;
}
