/* Sequence window: new, duplicate, replay, gaps, epochs, restore. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "ingest/seqwin.h"

static void test_in_order_and_duplicates(void **state)
{
    (void)state;
    struct seqwin w;
    memset(&w, 0, sizeof w);
    for (uint64_t s = 1; s <= 100; s++) assert_int_equal(seqwin_check(&w, 7, s), SEQWIN_NEW);
    assert_int_equal(seqwin_check(&w, 7, 100), SEQWIN_DUPLICATE);
    assert_int_equal(seqwin_check(&w, 7, 1), SEQWIN_DUPLICATE);
    assert_int_equal((int)w.missing, 0);
    assert_int_equal((int)w.top, 100);
}

static void test_gaps_and_late_arrivals(void **state)
{
    (void)state;
    struct seqwin w;
    memset(&w, 0, sizeof w);
    assert_int_equal(seqwin_check(&w, 1, 1), SEQWIN_NEW);
    assert_int_equal(seqwin_check(&w, 1, 5), SEQWIN_NEW); /* 2,3,4 missing */
    assert_int_equal((int)w.missing, 3);
    assert_int_equal(seqwin_check(&w, 1, 3), SEQWIN_NEW); /* late, fills a gap */
    assert_int_equal((int)w.missing, 2);
    assert_int_equal(seqwin_check(&w, 1, 3), SEQWIN_DUPLICATE);
    assert_int_equal((int)w.missing, 2);
    /* Beyond the window: refused as a replay. */
    assert_int_equal(seqwin_check(&w, 1, 5 + SEQWIN_BITS + 10), SEQWIN_NEW);
    assert_int_equal(seqwin_check(&w, 1, 5), SEQWIN_REPLAY);
    assert_int_equal(seqwin_check(&w, 1, 2), SEQWIN_REPLAY);
    /* Exactly at the edge of the window is still decidable. */
    uint64_t top = w.top;
    assert_int_equal(seqwin_check(&w, 1, top - (SEQWIN_BITS - 1)), SEQWIN_NEW);
    assert_int_equal(seqwin_check(&w, 1, top - SEQWIN_BITS), SEQWIN_REPLAY);
}

static void test_shift_keeps_history(void **state)
{
    (void)state;
    struct seqwin w;
    memset(&w, 0, sizeof w);
    /* Every other seq, across several 64-bit words and shifts by odd amounts. */
    for (uint64_t s = 1; s <= 700; s += 3) assert_int_equal(seqwin_check(&w, 1, s), SEQWIN_NEW);
    for (uint64_t s = 1; s <= 700; s++) {
        enum seqwin_verdict want = (s - 1) % 3 == 0 ? SEQWIN_DUPLICATE : SEQWIN_NEW;
        assert_int_equal(seqwin_check(&w, 1, s), want);
    }
    assert_int_equal((int)w.missing, 0);
}

static void test_epochs(void **state)
{
    (void)state;
    struct seqwin w;
    memset(&w, 0, sizeof w);
    assert_int_equal(seqwin_check(&w, 100, 50), SEQWIN_NEW);
    assert_int_equal((int)w.missing, 49);
    /* The agent restarted: new epoch, numbering from 1 again. */
    assert_int_equal(seqwin_check(&w, 200, 1), SEQWIN_NEW);
    assert_int_equal(seqwin_check(&w, 200, 2), SEQWIN_NEW);
    /* Frames of the old epoch are replays now. */
    assert_int_equal(seqwin_check(&w, 100, 51), SEQWIN_REPLAY);
}

static void test_restore_treats_past_as_seen(void **state)
{
    (void)state;
    struct seqwin w;
    memset(&w, 0, sizeof w);
    seqwin_restore(&w, 5, 5000, 3);
    assert_int_equal(seqwin_check(&w, 5, 5000), SEQWIN_DUPLICATE);
    assert_int_equal(seqwin_check(&w, 5, 4990), SEQWIN_DUPLICATE);
    assert_int_equal(seqwin_check(&w, 5, 1), SEQWIN_REPLAY);
    assert_int_equal(seqwin_check(&w, 4, 6000), SEQWIN_REPLAY);
    assert_int_equal(seqwin_check(&w, 5, 5001), SEQWIN_NEW);
    assert_int_equal((int)w.missing, 3);
}

/* The ack summary of a window: cum, gaps, top; and forgetting. */
static void test_ack_summary_and_forget(void **state)
{
    (void)state;
    struct seqwin w;
    uint64_t cum, top, gaps[4][2];
    memset(&w, 0, sizeof w);
    assert_int_equal(seqwin_ack(&w, &cum, &top, gaps, 4), 0); /* empty */
    assert_true(cum == 0 && top == 0);
    for (uint64_t s = 1; s <= 20; s++)
        if (s != 5 && s != 6 && s != 9 && s != 15) seqwin_check(&w, 3, s);
    size_t n = seqwin_ack(&w, &cum, &top, gaps, 4);
    assert_int_equal(n, 3);
    assert_true(cum == 4 && top == 20);
    assert_true(gaps[0][0] == 5 && gaps[0][1] == 6);
    assert_true(gaps[1][0] == 9 && gaps[1][1] == 9);
    assert_true(gaps[2][0] == 15 && gaps[2][1] == 15);
    /* Room for one gap only: top drops below the second. */
    n = seqwin_ack(&w, &cum, &top, gaps, 1);
    assert_int_equal(n, 1);
    assert_true(cum == 4 && top == 8);
    /* Late arrivals close gaps; cum moves up. */
    seqwin_check(&w, 3, 5);
    seqwin_check(&w, 3, 6);
    n = seqwin_ack(&w, &cum, &top, gaps, 4);
    assert_true(n == 2 && cum == 8 && top == 20);
    /* Forgetting (a frame lost on its way to the store) reopens it. */
    uint64_t missing = w.missing;
    assert_true(seqwin_forget(&w, 3, 7));
    assert_false(seqwin_forget(&w, 3, 7));
    assert_false(seqwin_forget(&w, 2, 8)); /* another epoch */
    assert_int_equal(w.missing, missing + 1);
    assert_false(seqwin_has(&w, 3, 7));
    assert_int_equal(seqwin_check(&w, 3, 7), SEQWIN_NEW); /* accepted again */
    /* Seqs older than the window count as held: nothing can fill them. */
    seqwin_check(&w, 3, 20 + SEQWIN_BITS + 5);
    n = seqwin_ack(&w, &cum, &top, gaps, 4);
    assert_int_equal(n, 1);
    assert_int_equal(cum, 20 + 5);
    assert_true(gaps[0][0] == 26 && gaps[0][1] == 20 + SEQWIN_BITS + 4);
}

/* seqwin_ack() (word at a time) against a plain model, on random windows. */
static void test_ack_summary_random(void **state)
{
    (void)state;
    uint64_t seed = 12345;
    for (int round = 0; round < 300; round++) {
        struct seqwin w;
        memset(&w, 0, sizeof w);
        static bool held[4000];
        memset(held, 0, sizeof held);
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        uint64_t top = 1 + (seed >> 33) % 3000;
        unsigned density = (unsigned)(seed >> 20) % 100;
        for (uint64_t q = 1; q < top; q++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            if ((seed >> 40) % 100 < density) {
                held[q] = true;
                seqwin_check(&w, 1, q);
            }
        }
        held[top] = true;
        seqwin_check(&w, 1, top);
        /* The model: below the window counts as held. */
        uint64_t lo = top >= SEQWIN_BITS ? top - SEQWIN_BITS + 1 : 1;
        for (uint64_t q = 1; q < lo; q++) held[q] = true;
        for (uint64_t q = lo; q <= top; q++) held[q] = held[q] && seqwin_has(&w, 1, q);
        uint64_t cum = 0;
        while (cum < top && held[cum + 1]) cum++;
        uint64_t gaps[8][2], got_cum, got_top;
        size_t n = seqwin_ack(&w, &got_cum, &got_top, gaps, 8);
        assert_int_equal(got_cum, cum);
        uint64_t q = cum + 1;
        size_t k = 0;
        while (q <= got_top) {
            if (held[q]) {
                q++;
                continue;
            }
            uint64_t first = q;
            while (!held[q]) q++;
            assert_true(k < n);
            assert_int_equal(gaps[k][0], first);
            assert_int_equal(gaps[k][1], q - 1);
            k++;
        }
        assert_int_equal(k, n);
        if (n < 8) assert_int_equal(got_top, top);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order_and_duplicates),
        cmocka_unit_test(test_gaps_and_late_arrivals),
        cmocka_unit_test(test_shift_keeps_history),
        cmocka_unit_test(test_epochs),
        cmocka_unit_test(test_restore_treats_past_as_seen),
        cmocka_unit_test(test_ack_summary_and_forget),
        cmocka_unit_test(test_ack_summary_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
