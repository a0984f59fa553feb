/* The agent's ring of unacknowledged frames (agent/ring.c): order, acks
 * with gaps, resend iteration, wrap-around, and dropping the oldest when
 * full. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "ring.h"

/* A frame whose bytes say its seq, of len bytes. */
static size_t frame(uint64_t seq, size_t len, uint8_t *buf)
{
    for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)(seq + i);
    return len;
}

static bool frame_ok(const struct agent_ring_frame *f)
{
    for (size_t i = 0; i < f->len; i++)
        if (f->data[i] != (uint8_t)(f->seq + i)) return false;
    return true;
}

static struct pt_wire_ack ack(uint64_t cum, uint64_t top)
{
    struct pt_wire_ack a;
    memset(&a, 0, sizeof a);
    a.agent_id = 1;
    a.cum = cum;
    a.top = top;
    return a;
}

/* The seqs of the unacknowledged frames, oldest first, checking bytes. */
static size_t owed(const struct agent_ring *r, uint64_t *out, size_t max)
{
    struct agent_ring_iter it;
    struct agent_ring_frame f;
    size_t n = 0;
    agent_ring_iter(r, &it);
    while (agent_ring_next(r, &it, &f)) {
        assert_true(frame_ok(&f));
        if (n < max) out[n] = f.seq;
        n++;
    }
    return n;
}

static void test_acks_with_gaps(void **state)
{
    (void)state;
    struct agent_ring r;
    uint8_t buf[2000];
    uint64_t seqs[16];
    assert_int_equal(agent_ring_init(&r, 0), 0); /* raised to the minimum */
    assert_int_equal(r.cap, AGENT_RING_MIN_BYTES);
    for (uint64_t s = 1; s <= 10; s++)
        assert_int_equal(agent_ring_push(&r, s, buf, frame(s, 700, buf), 1, NULL), 0);
    assert_int_equal(r.frames, 10);
    assert_int_equal(agent_ring_oldest(&r), 1);

    /* cum 3, top 9, gaps 5-6: 1-3, 4, 7-9 acknowledged; 5, 6, 10 owed. */
    struct pt_wire_ack a = ack(3, 9);
    a.ngaps = 1;
    a.gaps[0][0] = 5, a.gaps[0][1] = 6;
    assert_int_equal(agent_ring_ack(&r, &a), 7);
    assert_int_equal(owed(&r, seqs, 16), 3);
    assert_true(seqs[0] == 5 && seqs[1] == 6 && seqs[2] == 10);
    assert_int_equal(r.unacked, 3);
    assert_int_equal(r.frames, 6); /* 1-4 freed; 7-9 wait behind 5 and 6 */
    assert_int_equal(agent_ring_oldest(&r), 5);
    /* The same ack again changes nothing. */
    assert_int_equal(agent_ring_ack(&r, &a), 0);
    /* Then everything. */
    a = ack(10, 10);
    assert_int_equal(agent_ring_ack(&r, &a), 3);
    assert_int_equal(r.frames, 0);
    assert_int_equal(r.bytes, 0);
    assert_int_equal(agent_ring_oldest(&r), 0);
    assert_int_equal(r.acked, 10);
    assert_int_equal(r.dropped, 0);
    agent_ring_close(&r);
}

static void test_full_drops_oldest_and_wraps(void **state)
{
    (void)state;
    struct agent_ring r;
    uint8_t buf[4000];
    uint64_t seqs[200];
    assert_int_equal(agent_ring_init(&r, AGENT_RING_MIN_BYTES), 0);
    /* Frames of varying sizes, far more than fit: the ring keeps the
     * newest, drops the oldest, counts them, and wraps around. */
    uint64_t dropped_total = 0;
    for (uint64_t s = 1; s <= 500; s++) {
        uint64_t d = 0;
        size_t len = 300 + (s * 37) % 1200;
        assert_int_equal(agent_ring_push(&r, s, buf, frame(s, len, buf), 1, &d), 0);
        dropped_total += d;
        assert_true(r.bytes <= r.cap);
    }
    size_t n = owed(&r, seqs, 200);
    assert_int_equal(n, r.frames);
    assert_int_equal(dropped_total, r.dropped);
    assert_int_equal(r.dropped + r.frames, 500);
    for (size_t i = 0; i < n; i++) assert_int_equal(seqs[i], 500 - n + 1 + i); /* the newest */
    assert_true(r.frames > 30);

    /* Acknowledged frames are dropped without counting. */
    struct pt_wire_ack a = ack(500, 500);
    agent_ring_ack(&r, &a);
    uint64_t before = r.dropped;
    for (uint64_t s = 501; s <= 700; s++) {
        a = ack(s - 1, s - 1);
        agent_ring_ack(&r, &a);
        assert_int_equal(agent_ring_push(&r, s, buf, frame(s, 900, buf), 1, NULL), 0);
    }
    assert_int_equal(r.dropped, before);
    assert_int_equal(r.frames, 1);

    /* Larger than the whole ring: refused, nothing lost. */
    static uint8_t huge[AGENT_RING_MIN_BYTES + 8];
    assert_int_equal(agent_ring_push(&r, 701, huge, sizeof huge, 1, NULL), -E2BIG);
    assert_int_equal(r.frames, 1);
    agent_ring_close(&r);
}

static void test_sent_marks(void **state)
{
    (void)state;
    struct agent_ring r;
    uint8_t buf[100];
    assert_int_equal(agent_ring_init(&r, AGENT_RING_MIN_BYTES), 0);
    agent_ring_push(&r, 1, buf, frame(1, 50, buf), 0, NULL); /* held back */
    agent_ring_push(&r, 2, buf, frame(2, 50, buf), 77, NULL);
    struct agent_ring_iter it;
    struct agent_ring_frame f;
    agent_ring_iter(&r, &it);
    assert_true(agent_ring_next(&r, &it, &f));
    assert_true(f.seq == 1 && f.sent_ns == 0 && f.sends == 0);
    agent_ring_sent(&r, f.at, 100);
    assert_true(agent_ring_next(&r, &it, &f));
    assert_true(f.seq == 2 && f.sent_ns == 77 && f.sends == 1);
    agent_ring_sent(&r, f.at, 200);
    assert_false(agent_ring_next(&r, &it, &f));
    agent_ring_iter(&r, &it);
    assert_true(agent_ring_next(&r, &it, &f));
    assert_true(f.sent_ns == 100 && f.sends == 1);
    assert_true(agent_ring_next(&r, &it, &f));
    assert_true(f.sent_ns == 200 && f.sends == 2);
    agent_ring_close(&r);
}

/* Acks keeping up: the ring stays in its first pages (RSS), whatever the
 * traffic. */
static void test_steady_state_stays_small(void **state)
{
    (void)state;
    struct agent_ring r;
    uint8_t buf[2000];
    assert_int_equal(agent_ring_init(&r, 1024 * 1024), 0);
    size_t high = 0;
    for (uint64_t s = 1; s <= 20000; s++) {
        assert_int_equal(agent_ring_push(&r, s, buf, frame(s, 1400, buf), 1, NULL), 0);
        if (s > 3) { /* three frames in flight */
            struct pt_wire_ack a = ack(s - 3, s - 3);
            agent_ring_ack(&r, &a);
        }
        if (r.tail > high) high = r.tail;
        if (r.wrapped && r.wrap_end > high) high = r.wrap_end;
    }
    assert_true(high <= 64 * 1024 + 2 * 1432);
    uint64_t seqs[8];
    assert_int_equal(owed(&r, seqs, 8), 3);
    assert_true(seqs[0] == 19998 && seqs[2] == 20000);
    assert_int_equal(r.dropped, 0);
    agent_ring_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_acks_with_gaps),
        cmocka_unit_test(test_full_drops_oldest_and_wraps),
        cmocka_unit_test(test_sent_marks),
        cmocka_unit_test(test_steady_state_stays_small),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
