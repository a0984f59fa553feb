/* The writer with its outbox against a scripted store: order across an
 * outage, exactly once, permanent errors dropped and counted, shutdown
 * into the outbox and replay after a restart, shutdown without an outbox;
 * the same against a pipelined store (write_submit()/write_wait(), as the
 * server backends), and there: several batches in flight, acks only after
 * the answer, a failure with later batches in flight loses nothing and
 * counts nothing twice. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "outbox.h"
#include "pt/catalog.h"
#include "pt/err.h"
#include "pt/time.h"
#include "registry.h"
#include "writer.h"

/* The scripted store: records the sample time of every point it stores, in
 * order; fails while fail_rc is set, refuses for good a batch holding
 * poison_ts. */
struct store {
    pthread_mutex_t lock;
    int64_t *ts;
    size_t n, cap;
    _Atomic int fail_rc;
    int64_t poison_ts;
    _Atomic unsigned calls;
    /* Pipelined (fake_piped_ops): batches submitted and not yet answered,
     * oldest first; answers wait while gated. */
    struct sub {
        int64_t *ts;
        size_t n;
        unsigned idx; /* 1-based submit number */
    } subs[16];
    size_t shead, stail;
    _Atomic unsigned submits, max_pending;
    unsigned fail_answer; /* the answer to this submit is -EIO (the server did not take it) */
    bool gated;
    pthread_cond_t gate;
};

/* Appends n sample times to what the store holds (lock held). */
static void store_keep(struct store *s, const int64_t *ts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s->n == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 1024;
            s->ts = realloc(s->ts, s->cap * sizeof *s->ts);
        }
        s->ts[s->n++] = ts[i];
    }
}

static int fake_write(struct store *s, const struct store_point *pts, size_t n)
{
    atomic_fetch_add(&s->calls, 1);
    int rc = atomic_load(&s->fail_rc);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++)
        if (s->poison_ts && pts[i].ts_ns == s->poison_ts) return -EINVAL;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < n; i++) store_keep(s, &pts[i].ts_ns, 1);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

/* Takes the points (copied, as the backends encode them) and "sends" them. */
static int fake_submit(struct store *s, const struct store_point *pts, size_t n)
{
    pthread_mutex_lock(&s->lock);
    assert_true(s->stail - s->shead < 16);
    struct sub *b = &s->subs[s->stail++ % 16];
    b->ts = malloc((n ? n : 1) * sizeof *b->ts);
    for (size_t i = 0; i < n; i++) b->ts[i] = pts[i].ts_ns;
    b->n = n;
    b->idx = atomic_fetch_add(&s->submits, 1) + 1;
    unsigned pending = (unsigned)(s->stail - s->shead);
    if (pending > atomic_load(&s->max_pending)) atomic_store(&s->max_pending, pending);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

/* The answer to the oldest submitted batch: the server stores it unless
 * it is down (fail_rc), fails this one answer (fail_answer) or refuses a
 * point for good (poison_ts). */
static int fake_wait(struct store *s, int64_t timeout_ns)
{
    pthread_mutex_lock(&s->lock);
    if (s->gated && timeout_ns >= 0) { /* no answer within the timeout */
        pthread_mutex_unlock(&s->lock);
        struct timespec ts = {0, (long)timeout_ns};
        nanosleep(&ts, NULL);
        return STORE_PENDING;
    }
    atomic_fetch_add(&s->calls, 1);
    while (s->gated) pthread_cond_wait(&s->gate, &s->lock);
    assert_true(s->stail > s->shead); /* a wait only for a submitted batch */
    struct sub b = s->subs[s->shead++ % 16];
    int rc = atomic_load(&s->fail_rc);
    if (!rc && b.idx == s->fail_answer) rc = -EIO;
    for (size_t i = 0; i < b.n && !rc; i++)
        if (s->poison_ts && b.ts[i] == s->poison_ts) rc = -EINVAL;
    if (!rc) store_keep(s, b.ts, b.n);
    pthread_mutex_unlock(&s->lock);
    free(b.ts);
    return rc;
}

static int64_t fake_retention(struct store *s, int64_t cutoff)
{
    (void)s;
    (void)cutoff;
    return 0;
}

static const struct store_ops fake_ops = {
    .name = "fake", .write_batch = fake_write, .retention = fake_retention};
static const struct store_ops fake_piped_ops = {.name = "fake",
                                                .write_batch = fake_write,
                                                .write_submit = fake_submit,
                                                .write_wait = fake_wait,
                                                .retention = fake_retention};

struct fx {
    char dir[64], obdir[96];
    struct store store;
    const struct store_ops *ops; /* fake_ops unless a test sets fake_piped_ops */
    struct coll_stats stats;
    struct coll_registry *reg;
    struct coll_outbox *ob;
    struct coll_writer *w;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/pt-writer-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->obdir, sizeof f->obdir, "%s/outbox", f->dir);
    pthread_mutex_init(&f->store.lock, NULL);
    pthread_cond_init(&f->store.gate, NULL);
    coll_stats_init(&f->stats);
    char db[128], err[256];
    snprintf(db, sizeof db, "%s/state.db", f->dir);
    assert_int_equal(coll_registry_open(&f->reg, db, &f->stats, err, sizeof err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    coll_writer_stop(f->w);
    coll_outbox_close(f->ob);
    coll_registry_close(f->reg);
    free(f->store.ts);
    pthread_mutex_destroy(&f->store.lock);
    pthread_cond_destroy(&f->store.gate);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void open_outbox(struct fx *f)
{
    struct coll_outbox_opts o = {f->obdir, 8 << 20, 0};
    char err[256];
    assert_int_equal(coll_outbox_open(&f->ob, &o, err, sizeof err), 0);
}

static void start(struct fx *f, bool with_outbox)
{
    if (with_outbox && !f->ob) open_outbox(f);
    struct coll_writer_opts o = {.queue_batches = 8,
                                 .batch_frames = 4,
                                 .flush_ns = 10 * PT_NS_PER_MS,
                                 .drain_ns = 1 * PT_NS_PER_SEC,
                                 .outbox = with_outbox ? f->ob : NULL};
    assert_int_equal(
        coll_writer_start(&f->w, f->ops ? f->ops : &fake_ops, &f->store, f->reg, &f->stats, &o), 0);
}

static void stop(struct fx *f)
{
    coll_writer_stop(f->w);
    f->w = NULL;
}

static struct pt_field fields[] = {{PT_STR("cpu_utilization"), PT_F_FLOAT, {.f = 5.0}}};
static struct pt_meas meas[] = {{PT_STR("cpu"), NULL, fields, 0, 1}};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Hands the writer frames with sample times first..last (one point each). */
static void add_frames(struct fx *f, int64_t first, int64_t last)
{
    for (int64_t t = first; t <= last; t++) {
        struct pt_frame fr = {0};
        fr.agent_id = 1;
        fr.epoch = 1;
        fr.seq = (uint64_t)t;
        fr.ts_ns = t;
        fr.interval_ms = 1000;
        fr.nparts = 1;
        fr.id =
            (struct pt_ident){PT_STR("ns"), PT_STR("m"), PT_STR("vm"), PT_STR("aws"), PT_STR("h")};
        fr.meas = meas;
        fr.nmeas = 1;
        uint8_t buf[PT_WIRE_MAX_FRAME];
        size_t len;
        assert_int_equal(pt_wire_encode(&fr, NULL, buf, sizeof buf, &len), 0);
        /* A paced sender, as agents are; and one that waits while the
         * queue is nearly full: what is tested here is order and
         * exactly-once, not whether a starved CI machine schedules the
         * spiller in time (a full queue would drop, counted). */
        if (t % 4 == 0) {
            for (int i = 0; i < 2500 && atomic_load(&f->stats.queue_depth) >= 6; i++) sleep_ms(2);
        }
        coll_writer_add(f->w, buf, len, 1, NULL); /* no agent behind it: nothing to ack */
        if (t % 4 == 0) sleep_ms(2);
    }
}

#define N(x) ((unsigned long long)atomic_load(&(x)))

static void dump(struct fx *f)
{
    fprintf(stderr,
            "outbox frames %lld batches %lld, written %llu, spilled %llu, replayed %llu, "
            "dropped queue %llu outbox %llu shutdown %llu, queue depth %lld\n",
            (long long)atomic_load(&f->stats.outbox_frames),
            (long long)atomic_load(&f->stats.outbox_batches), N(f->stats.frames_written),
            N(f->stats.outbox_spilled_frames), N(f->stats.outbox_replayed_frames),
            N(f->stats.frames_dropped_queue), N(f->stats.frames_dropped_outbox),
            N(f->stats.frames_dropped_shutdown), (long long)atomic_load(&f->stats.queue_depth));
}

/* Ticks the writer (as the loop's timer does) until cond or 10 s. */
#define WAIT_FOR(f, cond)                              \
    do {                                               \
        for (int i_ = 0; i_ < 1000 && !(cond); i_++) { \
            if ((f)->w) coll_writer_tick((f)->w);      \
            sleep_ms(10);                              \
        }                                              \
        if (!(cond)) {                                 \
            dump(f);                                   \
            fail_msg("timed out: %s", #cond);          \
        }                                              \
    } while (0)

/* The store holds exactly first..last, each once, in this order. */
static void assert_stored_in_order(struct fx *f, int64_t first, int64_t last)
{
    pthread_mutex_lock(&f->store.lock);
    assert_int_equal(f->store.n, (size_t)(last - first + 1));
    for (size_t i = 0; i < f->store.n; i++) assert_int_equal(f->store.ts[i], first + (int64_t)i);
    pthread_mutex_unlock(&f->store.lock);
}

static void assert_nothing_dropped(struct fx *f)
{
    assert_int_equal(N(f->stats.frames_dropped_queue), 0);
    assert_int_equal(N(f->stats.frames_dropped_store), 0);
    assert_int_equal(N(f->stats.frames_dropped_shutdown), 0);
    assert_int_equal(N(f->stats.frames_dropped_outbox), 0);
}

static void outage_keeps_order_exactly_once(struct fx *f)
{
    start(f, true);
    add_frames(f, 1, 40); /* written at once */
    WAIT_FOR(f, N(f->stats.frames_written) == 40);
    atomic_store(&f->store.fail_rc, -EBUSY);
    add_frames(f, 41, 400); /* 90 batches, far beyond the queue of 8 */
    WAIT_FOR(f, atomic_load(&f->stats.outbox_frames) >= 360);

    assert_int_equal(atomic_load(&f->stats.store_healthy), 0);
    assert_true(N(f->stats.store_errors) > 0);
    struct coll_writer_status st;
    coll_writer_status(f->w, &st);
    assert_false(st.healthy);
    assert_true(st.outage_since_ns > 0);
    assert_non_null(strstr(st.last_error, "fake: write of 4 points failed"));
    atomic_store(&f->store.fail_rc, 0);
    add_frames(f, 401, 500); /* while the outbox is replayed */
    WAIT_FOR(f, N(f->stats.frames_written) == 500);
    assert_stored_in_order(f, 1, 500);
    assert_nothing_dropped(f);
    assert_true(N(f->stats.outbox_replayed_frames) > 0);
    assert_true(N(f->stats.outbox_spilled_frames) >= 360);
    WAIT_FOR(f, atomic_load(&f->stats.outbox_batches) == 0);
    assert_int_equal(atomic_load(&f->stats.store_healthy), 1);
    coll_writer_status(f->w, &st);
    assert_true(st.healthy);
    assert_int_equal(st.outage_since_ns, 0);
}

static void test_outage_keeps_order_exactly_once(void **state)
{
    outage_keeps_order_exactly_once(*state);
}

static void test_piped_outage_keeps_order_exactly_once(void **state)
{
    struct fx *f = *state;
    f->ops = &fake_piped_ops;
    outage_keeps_order_exactly_once(f);
}

static void permanent_error_drops_one_batch(struct fx *f)
{
    f->store.poison_ts = 10; /* in the third batch of four: 9..12 */
    start(f, true);
    add_frames(f, 1, 20);
    WAIT_FOR(f, N(f->stats.frames_written) + N(f->stats.frames_dropped_store) == 20);
    assert_int_equal(N(f->stats.frames_dropped_store), 4);
    assert_int_equal(N(f->stats.points_dropped_store), 4);
    assert_int_equal(atomic_load(&f->store.calls), 5); /* not retried */
    pthread_mutex_lock(&f->store.lock);
    assert_int_equal(f->store.n, 16);
    for (size_t i = 0; i < f->store.n; i++) assert_true(f->store.ts[i] < 9 || f->store.ts[i] > 12);
    pthread_mutex_unlock(&f->store.lock);
}

static void test_permanent_error_drops_one_batch(void **state)
{
    permanent_error_drops_one_batch(*state);
}

static void test_piped_permanent_error_drops_one_batch(void **state)
{
    struct fx *f = *state;
    f->ops = &fake_piped_ops;
    permanent_error_drops_one_batch(f);
}

/* Frames of a registered agent, admitted as ingest does, so that acks can
 * be watched: seqs first..last at sample times base + seq. */
struct agent {
    struct coll_agent_info info;
    uint8_t key[PT_WIRE_KEY_LEN];
    struct pt_wire_key wkey;
    int64_t base;
};

static void agent_frames(struct fx *f, struct agent *a, uint64_t first, uint64_t last)
{
    static const struct coll_admit_opts opts = {false, 3600 * PT_NS_PER_SEC, 60 * PT_NS_PER_SEC,
                                                100};
    struct pt_wire_dec *dec = pt_wire_dec_new();
    for (uint64_t seq = first; seq <= last; seq++) {
        struct pt_frame fr = {0}, d;
        fr.agent_id = a->info.id;
        fr.epoch = 7;
        fr.seq = seq;
        fr.ts_ns = a->base + (int64_t)seq;
        fr.interval_ms = 1000;
        fr.nparts = 1;
        fr.id =
            (struct pt_ident){PT_STR("ns"), PT_STR("m"), PT_STR("vm"), PT_STR("aws"), PT_STR("h")};
        fr.meas = meas;
        fr.nmeas = 1;
        uint8_t buf[PT_WIRE_MAX_FRAME];
        size_t len;
        enum coll_reject why;
        assert_int_equal(pt_wire_encode(&fr, &a->wkey, buf, sizeof buf, &len), 0);
        assert_int_equal(pt_wire_decode(dec, buf, len, &d), 0);
        assert_int_equal(coll_registry_admit(f->reg, &d, 1, buf, NULL, &opts, pt_now_ns(), &why),
                         COLL_ADMIT_OK);
        struct coll_frame_ref ref = {a->info.id, 7, seq};
        coll_writer_add(f->w, buf, len, 1, &ref);
    }
    pt_wire_dec_free(dec);
}

static uint64_t acked(struct fx *f, struct agent *a)
{
    struct coll_agent_info i;
    assert_int_equal(coll_registry_get(f->reg, a->info.id, &i), 0);
    return i.acked;
}

/* Pipelined: three batches in flight at once, none acknowledged before its
 * answer; the first one's answer is a failure (a 5xx) while the other two
 * were taken by the server: all three are written again, in order, and in
 * the end every frame is stored and counted once, and acknowledged. */
static void test_piped_failure_loses_nothing_counts_once(void **state)
{
    struct fx *f = *state;
    struct agent a = {.base = pt_now_ns() - 600 * PT_NS_PER_SEC};
    assert_int_equal(coll_registry_add(f->reg, "ns", "m", "vm", "aws", &a.info, a.key), 0);
    assert_int_equal(pt_wire_key_init(&a.wkey, a.key, sizeof a.key), 0);
    f->ops = &fake_piped_ops;
    f->store.gated = true; /* no answers yet */
    f->store.fail_answer = 1;
    start(f, false);
    agent_frames(f, &a, 1, 24); /* 6 batches of 4 */
    WAIT_FOR(f, atomic_load(&f->store.submits) == 3);
    sleep_ms(50);
    assert_int_equal(atomic_load(&f->store.submits), 3); /* PIPE_BATCHES, not more */
    assert_int_equal(N(f->stats.frames_written), 0);
    assert_int_equal(acked(f, &a), 0); /* sent is not durable */

    pthread_mutex_lock(&f->store.lock);
    f->store.gated = false;
    pthread_cond_broadcast(&f->store.gate);
    pthread_mutex_unlock(&f->store.lock);
    WAIT_FOR(f, N(f->stats.frames_written) == 24);
    WAIT_FOR(f, acked(f, &a) == 24);
    assert_int_equal(N(f->stats.points_written), 24);
    assert_int_equal(N(f->stats.store_errors), 1);
    assert_nothing_dropped(f);
    assert_int_equal(atomic_load(&f->store.max_pending), 3);
    /* Stored: every frame; batches 2 and 3 twice (taken, then written
     * again after 1), which replaces points with themselves. */
    pthread_mutex_lock(&f->store.lock);
    assert_int_equal(f->store.n, 24 + 8);
    for (int64_t t = 1; t <= 24; t++) {
        size_t seen = 0;
        for (size_t i = 0; i < f->store.n; i++) seen += f->store.ts[i] == a.base + t;
        assert_int_equal(seen, t >= 5 && t <= 12 ? 2 : 1);
    }
    pthread_mutex_unlock(&f->store.lock);
    stop(f);
    pt_wire_key_close(&a.wkey);
}

static void shutdown_into_outbox_and_replay(struct fx *f)
{
    start(f, true);
    atomic_store(&f->store.fail_rc, -ECONNREFUSED);
    add_frames(f, 1, 203); /* the last batch is partial: handed over at stop */
    int64_t t0 = pt_mono_ns();
    stop(f);
    assert_true(pt_mono_ns() - t0 < 3 * PT_NS_PER_SEC); /* no drain wait while failing */
    assert_int_equal(N(f->stats.frames_written), 0);
    assert_nothing_dropped(f);
    coll_outbox_close(f->ob);
    f->ob = NULL;

    /* "restart": a new outbox on the same directory, a working store */
    open_outbox(f);
    struct coll_outbox_info i;
    coll_outbox_info(f->ob, &i);
    assert_int_equal(i.frames, 203);
    atomic_store(&f->store.fail_rc, 0);
    coll_stats_init(&f->stats);
    start(f, true);
    WAIT_FOR(f, N(f->stats.frames_written) == 203);
    WAIT_FOR(f, atomic_load(&f->stats.outbox_batches) == 0);
    assert_stored_in_order(f, 1, 203);
    assert_int_equal(N(f->stats.outbox_replayed_frames), 203);
}

static void test_shutdown_into_outbox_and_replay(void **state)
{
    shutdown_into_outbox_and_replay(*state);
}

static void test_piped_shutdown_into_outbox_and_replay(void **state)
{
    struct fx *f = *state;
    f->ops = &fake_piped_ops;
    shutdown_into_outbox_and_replay(f);
}

static void no_outbox_shutdown_drops_counted(struct fx *f)
{
    start(f, false);
    atomic_store(&f->store.fail_rc, -EIO);
    add_frames(f, 1, 20);
    WAIT_FOR(f, atomic_load(&f->stats.store_healthy) == 0);
    stop(f); /* drain_ns 1 s, then what is left is counted */
    assert_int_equal(N(f->stats.frames_written), 0);
    assert_int_equal(N(f->stats.frames_dropped_queue) + N(f->stats.frames_dropped_shutdown), 20);
    assert_int_equal(N(f->stats.frames_dropped_shutdown), 20);
}

static void test_no_outbox_shutdown_drops_counted(void **state)
{
    no_outbox_shutdown_drops_counted(*state);
}

static void test_piped_no_outbox_shutdown_drops_counted(void **state)
{
    struct fx *f = *state;
    f->ops = &fake_piped_ops;
    no_outbox_shutdown_drops_counted(f);
}

/* A batch as the writer lays it out: per frame u32 length, u16 points, two
 * bytes of padding, the frame, zeros to a multiple of 8. */
static size_t put_record(unsigned char *p, const void *frame, uint32_t len, uint16_t npoints)
{
    memcpy(p, &len, 4);
    memcpy(p + 4, &npoints, 2);
    memset(p + 6, 0, 2);
    memcpy(p + 8, frame, len);
    size_t n = (8 + len + 7) & ~(size_t)7;
    memset(p + 8 + len, 0, n - 8 - len);
    return n;
}

static void test_undecodable_frame_counted(void **state)
{
    struct fx *f = *state;
    /* An outbox left by "another version": one good frame, one that this
     * decoder refuses. */
    open_outbox(f);
    struct pt_frame fr = {0};
    fr.agent_id = 1;
    fr.epoch = 1;
    fr.seq = 1;
    fr.ts_ns = 77;
    fr.interval_ms = 1000;
    fr.nparts = 1;
    fr.id = (struct pt_ident){PT_STR("ns"), PT_STR("m"), PT_STR("vm"), PT_STR("aws"), PT_STR("h")};
    fr.meas = meas;
    fr.nmeas = 1;
    uint8_t frame[PT_WIRE_MAX_FRAME];
    size_t len;
    assert_int_equal(pt_wire_encode(&fr, NULL, frame, sizeof frame, &len), 0);
    static unsigned char batch[2 * (PT_WIRE_MAX_FRAME + 16)];
    size_t used = put_record(batch, frame, (uint32_t)len, 1);
    static const unsigned char junk[] = {0x93, 0xc1, 0xc1, 0xc1};
    used += put_record(batch + used, junk, sizeof junk, 6);
    assert_int_equal(coll_outbox_append(f->ob, batch, used, 2, 7, 1, NULL), 0);
    start(f, true);
    WAIT_FOR(f, N(f->stats.frames_dropped_store) == 1);
    WAIT_FOR(f, atomic_load(&f->stats.outbox_batches) == 0);
    assert_int_equal(N(f->stats.points_dropped_store), 6);
    assert_int_equal(N(f->stats.frames_written), 1);
    assert_stored_in_order(f, 77, 77);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_outage_keeps_order_exactly_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_piped_outage_keeps_order_exactly_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_piped_permanent_error_drops_one_batch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_piped_failure_loses_nothing_counts_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_piped_shutdown_into_outbox_and_replay, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_piped_no_outbox_shutdown_drops_counted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_permanent_error_drops_one_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_into_outbox_and_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_outbox_shutdown_drops_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_undecodable_frame_counted, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
