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
