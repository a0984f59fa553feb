/* The datagram pipeline with a real registry (state.db in a temp dir):
 * acceptance, every rejection reason counted, duplicates, replays, time
 * window, identity, insecure mode, persistence across a reopen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "ingest/ingest.h"
#include "ingest/seqwin.h"
#include "pt/catalog.h"
#include "pt/err.h"
#include "pt/time.h"
#include "pt/util.h"

struct fx {
    char dir[64], db[128];
    struct coll_stats stats;
    struct coll_registry *reg;
    struct coll_ingest in;
    struct coll_agent_info agent;
    uint8_t key[PT_WIRE_KEY_LEN];
    struct pt_wire_key wkey;
    int64_t now;
};

static const struct coll_admit_opts secure = {false, 3600 * PT_NS_PER_SEC, 60 * PT_NS_PER_SEC, 100};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/pt-ingest-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof f->db, "%s/state.db", f->dir);
    coll_stats_init(&f->stats);
    char err[256];
    assert_int_equal(coll_registry_open(&f->reg, f->db, &f->stats, err, sizeof err), 0);
    assert_int_equal(coll_registry_add(f->reg, "ns1", "mcis1", "vm1", "aws", &f->agent, f->key), 0);
    assert_int_equal(pt_wire_key_init(&f->wkey, f->key, sizeof f->key), 0);
    assert_int_equal(coll_ingest_init(&f->in, f->reg, NULL, &f->stats, &secure), 0);
    f->now = pt_now_ns();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    coll_ingest_close(&f->in);
    coll_registry_close(f->reg);
    pt_wire_key_close(&f->wkey);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static struct pt_field fields[] = {{PT_STR("cpu_utilization"), PT_F_FLOAT, {.f = 5.0}},
                                   {PT_STR("cpu_num"), PT_F_UINT, {.u = 2}}};
static struct pt_meas meas[] = {{PT_STR("cpu"), NULL, fields, 0, 2}};

/* Sends one frame for the fixture's agent; overrides via arguments. */
static void send_frame(struct fx *f, uint64_t seq, int64_t ts, const char *vm, bool sign,
                       struct pt_wire_key *key)
{
    struct pt_frame fr = {0};
    fr.agent_id = f->agent.id;
    fr.epoch = 1000;
    fr.seq = seq;
    fr.ts_ns = ts;
    fr.interval_ms = 1000;
    fr.nparts = 1;
    fr.id =
        (struct pt_ident){PT_STR("ns1"), PT_STR("mcis1"), pt_str_c(vm), PT_STR("aws"), PT_STR("h")};
    fr.meas = meas;
    fr.nmeas = 1;
    uint8_t buf[PT_WIRE_MAX_FRAME];
    size_t len;
    assert_int_equal(
        pt_wire_encode(&fr, sign ? (key ? key : &f->wkey) : NULL, buf, sizeof buf, &len), 0);
    coll_ingest_datagram(&f->in, buf, len, NULL, f->now);
}

#define N(x) ((unsigned long long)atomic_load(&(x)))

static void test_accept_duplicate_replay(void **state)
{
    struct fx *f = *state;
    for (uint64_t s = 1; s <= 10; s++) send_frame(f, s, f->now, "vm1", true, NULL);
    assert_int_equal(N(f->stats.accepted), 10);
    assert_int_equal(N(f->stats.values_accepted), 20);
    send_frame(f, 5, f->now, "vm1", true, NULL); /* the same frame again */
    assert_int_equal(N(f->stats.duplicate), 1);
    send_frame(f, 10 + SEQWIN_BITS + 1, f->now, "vm1", true, NULL);
    send_frame(f, 3, f->now, "vm1", true, NULL); /* long gone: replay */
    assert_int_equal(N(f->stats.rejected_by[COLL_REJ_REPLAY]), 1);
    struct coll_agent_info a;
    assert_int_equal(coll_registry_get(f->reg, f->agent.id, &a), 0);
    assert_int_equal((int)a.accepted, 11);
    assert_int_equal((int)a.duplicate, 1);
    assert_int_equal((int)a.rejected, 1);
    assert_int_equal((int)a.missing, SEQWIN_BITS);
    assert_int_equal((int)a.last_seq, 10 + SEQWIN_BITS + 1);
    assert_true(a.last_seen_ns == f->now);
}

static void test_every_rejection_reason(void **state)
{
    struct fx *f = *state;
    /* timestamp too old and too far ahead */
    send_frame(f, 1, f->now - 3601 * PT_NS_PER_SEC, "vm1", true, NULL);
    send_frame(f, 2, f->now + 61 * PT_NS_PER_SEC, "vm1", true, NULL);
    assert_int_equal(N(f->stats.rejected_by[COLL_REJ_TIME]), 2);
    /* a rejected frame did not advance the window: seq 1 is still new */
    send_frame(f, 1, f->now, "vm1", true, NULL);
    assert_int_equal(N(f->stats.accepted), 1);
    /* identity does not match the registration */
    send_frame(f, 2, f->now, "vm2", true, NULL);
    assert_int_equal(N(f->stats.rejected_by[COLL_REJ_IDENTITY]), 1);
    /* unsigned while secure */
    send_frame(f, 3, f->now, "vm1", false, NULL);
    assert_int_equal(N(f->stats.rejected_by[COLL_REJ_UNSIGNED]), 1);
    /* wrong key */
    uint8_t other[PT_WIRE_KEY_LEN] = {1, 2, 3};
    struct pt_wire_key ok;
    assert_int_equal(pt_wire_key_init(&ok, other, sizeof other), 0);
    send_frame(f, 4, f->now, "vm1", true, &ok);
    pt_wire_key_close(&ok);
    assert_int_equal(N(f->stats.rejected_by[COLL_REJ_AUTH]), 1);
    /* unknown agent */
    f->agent.id += 1;
    send_frame(f, 5, f->now, "vm1", true, NULL);
    f->agent.id -= 1;
    assert_int_equal(N(f->stats.rejected_by[COLL_REJ_UNKNOWN_AGENT]), 1);
    /* garbage, truncated, version */
    coll_ingest_datagram(&f->in, "\xc1garbage", 8, NULL, f->now);
    coll_ingest_datagram(&f->in, "\x9c\x01", 2, NULL, f->now);
    coll_ingest_datagram(&f->in, "\x91\x02", 2, NULL, f->now);
    coll_ingest_datagram(&f->in, "", 0, NULL, f->now);
    assert_int_equal(N(f->stats.rejected_by[COLL_REJ_MALFORMED]), 1);
    assert_int_equal(N(f->stats.rejected_by[COLL_REJ_TRUNCATED]), 2);
    assert_int_equal(N(f->stats.rejected_by[COLL_REJ_VERSION]), 1);
    /* 2 time + identity + unsigned + auth + unknown + 4 bad datagrams */
    assert_int_equal(N(f->stats.rejected), 10);
    assert_int_equal(N(f->stats.datagrams), 11);
    /* and a good frame still goes through */
    send_frame(f, 6, f->now, "vm1", true, NULL);
    assert_int_equal(N(f->stats.accepted), 2);
}

static void test_insecure_mode(void **state)
{
    struct fx *f = *state;
    struct coll_admit_opts o = secure;
    o.insecure = true;
    o.max_auto_agents = 1;
    coll_ingest_close(&f->in);
    assert_int_equal(coll_ingest_init(&f->in, f->reg, NULL, &f->stats, &o), 0);
    /* the registered agent may now send unsigned frames */
    send_frame(f, 1, f->now, "vm1", false, NULL);
    assert_int_equal(N(f->stats.accepted), 1);
    /* an unknown id is registered from its frame */
    uint64_t real = f->agent.id;
    f->agent.id = 4242;
    send_frame(f, 1, f->now, "vm9", false, NULL);
    assert_int_equal(N(f->stats.accepted), 2);
    struct coll_agent_info a;
    assert_int_equal(coll_registry_get(f->reg, 4242, &a), 0);
    assert_string_equal(a.vm, "vm9");
    assert_false(a.has_key);
    /* but not beyond the ceiling, and never a name already taken */
    f->agent.id = 4243;
    send_frame(f, 1, f->now, "vm10", false, NULL);
    assert_int_equal(N(f->stats.rejected_by[COLL_REJ_UNKNOWN_AGENT]), 1);
    f->agent.id = real;
}

static void test_persisted_across_reopen(void **state)
{
    struct fx *f = *state;
    for (uint64_t s = 1; s <= 6; s++) send_frame(f, s, f->now, "vm1", true, NULL);
    /* 1-5 reach the store; 6 is still in the write queue when the
     * collector dies. */
    struct coll_agent_info cur;
    assert_int_equal(coll_registry_get(f->reg, f->agent.id, &cur), 0);
    struct coll_frame_ref refs[5];
    for (uint64_t s = 1; s <= 5; s++)
        refs[s - 1] = (struct coll_frame_ref){f->agent.id, cur.epoch, s};
    coll_registry_durable(f->reg, refs, 5);
    assert_int_equal(coll_registry_get(f->reg, f->agent.id, &cur), 0);
    assert_int_equal((int)cur.acked, 5);
    assert_int_equal((int)cur.ack_lag, 1);
    assert_int_equal(coll_registry_persist(f->reg), 0);
    coll_ingest_close(&f->in);
    coll_registry_close(f->reg);
    char err[256];
    assert_int_equal(coll_registry_open(&f->reg, f->db, &f->stats, err, sizeof err), 0);
    assert_int_equal(coll_ingest_init(&f->in, f->reg, NULL, &f->stats, &secure), 0);
    struct coll_agent_info a;
    assert_int_equal(coll_registry_get(f->reg, f->agent.id, &a), 0);
    assert_int_equal((int)a.accepted, 6);
    assert_int_equal((int)a.last_seq, 5); /* what is durable */
    assert_string_equal(a.csp, "aws");
    /* The key survived: signed frames still verify; durable seqs are not
     * new, the one lost in the crash is (the agent resends it). */
    send_frame(f, 5, f->now, "vm1", true, NULL);
    assert_int_equal(N(f->stats.duplicate), 1);
    send_frame(f, 6, f->now, "vm1", true, NULL);
    assert_int_equal(N(f->stats.accepted), 7);
}

struct acks_seen {
    int n;
    uint8_t buf[256];
    size_t len;
    struct sockaddr_in to;
};

static void capture_ack(void *ctx, const struct sockaddr *to, const void *buf, size_t len)
{
    struct acks_seen *a = ctx;
    a->n++;
    memcpy(a->buf, buf, len);
    a->len = len;
    memcpy(&a->to, to, sizeof a->to);
}

/* Acks: only for durable frames, to the frame's source, signed with the
 * agent's key, with the gaps; a frame lost on the way to the store is
 * forgotten so its resend is taken. */
static void test_acks_follow_durability(void **state)
{
    struct fx *f = *state;
    struct sockaddr_in from = {.sin_family = AF_INET, .sin_port = htons(4242)};
    from.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct pt_frame fr = {0};
    fr.agent_id = f->agent.id;
    fr.epoch = 1000;
    fr.ts_ns = f->now;
    fr.interval_ms = 1000;
    fr.nparts = 1;
    fr.id = (struct pt_ident){PT_STR("ns1"), PT_STR("mcis1"), PT_STR("vm1"), PT_STR("aws"),
                              PT_STR("h")};
    fr.meas = meas;
    fr.nmeas = 1;
    uint8_t buf[PT_WIRE_MAX_FRAME];
    size_t len;
    for (uint64_t s = 1; s <= 8; s++) {
        fr.seq = s;
        assert_int_equal(pt_wire_encode(&fr, &f->wkey, buf, sizeof buf, &len), 0);
        coll_ingest_datagram(&f->in, buf, len, (struct sockaddr *)&from, f->now);
    }
    struct acks_seen seen = {0};
    /* Accepted, not durable: no ack yet. */
    assert_int_equal(coll_registry_acks(f->reg, f->now, capture_ack, &seen), 0);
    /* 1-3 and 5-6 written; 7 dropped; 4 and 8 still queued. */
    struct coll_frame_ref refs[] = {{f->agent.id, 1000, 1},
                                    {f->agent.id, 1000, 2},
                                    {f->agent.id, 1000, 3},
                                    {f->agent.id, 1000, 5},
                                    {f->agent.id, 1000, 6}};
    coll_registry_durable(f->reg, refs, 5);
    struct coll_frame_ref lost = {f->agent.id, 1000, 7};
    coll_registry_forget(f->reg, &lost, 1);
    assert_int_equal(coll_registry_acks(f->reg, f->now, capture_ack, &seen), 1);
    assert_int_equal(ntohs(seen.to.sin_port), 4242);
    struct pt_wire_ack k;
    assert_int_equal(pt_wire_ack_decode(seen.buf, seen.len, &k), 0);
    assert_int_equal(pt_wire_ack_verify(&k, seen.buf, &f->wkey), 0);
    assert_true(k.agent_id == f->agent.id && k.epoch == 1000);
    assert_true(k.cum == 3 && k.top == 6 && k.ngaps == 1);
    assert_true(k.gaps[0][0] == 4 && k.gaps[0][1] == 4);
    /* No news: no ack. A duplicate is news (the agent missed an ack). */
    assert_int_equal(coll_registry_acks(f->reg, f->now, capture_ack, &seen), 0);
    fr.seq = 2;
    assert_int_equal(pt_wire_encode(&fr, &f->wkey, buf, sizeof buf, &len), 0);
    coll_ingest_datagram(&f->in, buf, len, (struct sockaddr *)&from, f->now);
    assert_int_equal(N(f->stats.duplicate), 1);
    assert_int_equal(coll_registry_acks(f->reg, f->now, capture_ack, &seen), 1);
    /* The dropped frame's resend is accepted, not a duplicate. */
    fr.seq = 7;
    assert_int_equal(pt_wire_encode(&fr, &f->wkey, buf, sizeof buf, &len), 0);
    coll_ingest_datagram(&f->in, buf, len, (struct sockaddr *)&from, f->now);
    assert_int_equal(N(f->stats.accepted), 9);
    assert_int_equal(N(f->stats.duplicate), 1);
}

/* A resend older than the agent's newest sample is accepted as backfill
 * (stored, not fed to alerting); the agent's own figures ("agent") are
 * taken from the newest sample only, and ring_oldest lets the durable
 * window stop waiting for frames the agent gave up. */
static void test_backfill_and_agent_report(void **state)
{
    struct fx *f = *state;
    struct pt_wire_dec *dec = pt_wire_dec_new();
    struct pt_field agent_fields[] = {
        {PT_STR("frames_sent"), PT_F_UINT, {.u = 40}},
        {PT_STR("frames_resent"), PT_F_UINT, {.u = 7}},
        {PT_STR("ring_dropped"), PT_F_UINT, {.u = 3}},
        {PT_STR("ring_frames"), PT_F_UINT, {.u = 2}},
        {PT_STR("ring_oldest"), PT_F_UINT, {.u = 10}},
    };
    struct pt_meas two[] = {meas[0], {PT_STR("agent"), NULL, agent_fields, 0, 5}};
    struct pt_frame fr = {0}, d;
    fr.agent_id = f->agent.id;
    fr.epoch = 1000;
    fr.interval_ms = 1000;
    fr.nparts = 1;
    fr.id = (struct pt_ident){PT_STR("ns1"), PT_STR("mcis1"), PT_STR("vm1"), PT_STR("aws"),
                              PT_STR("h")};
    uint8_t buf[PT_WIRE_MAX_FRAME];
    size_t len;
    enum coll_reject why;
    struct {
        uint64_t seq;
        int64_t ts;
        bool report;
        enum coll_admit want;
    } steps[] = {
        {11, f->now, true, COLL_ADMIT_OK},                        /* newest */
        {12, f->now - PT_NS_PER_SEC, false, COLL_ADMIT_BACKFILL}, /* older ts */
        {13, f->now, false, COLL_ADMIT_OK},                       /* same ts: a part */
        {12, f->now - PT_NS_PER_SEC, false, COLL_ADMIT_DUPLICATE},
    };
    for (size_t i = 0; i < PT_ARRAY_LEN(steps); i++) {
        fr.seq = steps[i].seq;
        fr.ts_ns = steps[i].ts;
        fr.meas = steps[i].report ? two : meas;
        fr.nmeas = steps[i].report ? 2 : 1;
        assert_int_equal(pt_wire_encode(&fr, &f->wkey, buf, sizeof buf, &len), 0);
        assert_int_equal(pt_wire_decode(dec, buf, len, &d), 0);
        assert_int_equal(coll_registry_admit(f->reg, &d, 2, buf, NULL, &secure, f->now, &why),
                         steps[i].want);
    }
    struct coll_agent_info a;
    assert_int_equal(coll_registry_get(f->reg, f->agent.id, &a), 0);
    assert_true(a.agent_reports);
    assert_true(a.agent_sent == 40 && a.agent_resent == 7 && a.agent_ring_dropped == 3 &&
                a.agent_ring_frames == 2);
    /* ring_oldest 10: seqs 1-9 are given up or acknowledged; nothing of
     * 11-13 is durable yet. */
    assert_int_equal((int)a.acked, 9);
    struct coll_frame_ref refs[] = {{f->agent.id, 1000, 11}, {f->agent.id, 1000, 13}};
    coll_registry_durable(f->reg, refs, 2);
    assert_int_equal(coll_registry_get(f->reg, f->agent.id, &a), 0);
    assert_int_equal((int)a.acked, 9); /* 10 and 12 still owed */
    assert_int_equal((int)a.ack_lag, 4);
    pt_wire_dec_free(dec);
}

static void test_register_conflict_and_remove(void **state)
{
    struct fx *f = *state;
    struct coll_agent_info a;
    uint8_t key[PT_WIRE_KEY_LEN];
    assert_int_equal(coll_registry_add(f->reg, "ns1", "mcis1", "vm1", "", &a, key), -EEXIST);
    assert_true(a.id == f->agent.id);
    assert_int_equal(coll_registry_add(f->reg, "ns 1", "mcis1", "vmX", "", &a, key), -EINVAL);
    assert_int_equal(coll_registry_add(f->reg, "ns1", "mcis1", "vm2", "gcp", &a, key), 0);
    assert_true(a.id != f->agent.id && a.id < (UINT64_C(1) << 53));
    struct coll_agent_info *all;
    size_t n;
    assert_int_equal(coll_registry_list(f->reg, &all, &n), 0);
    assert_int_equal((int)n, 2);
    assert_string_equal(all[0].vm, "vm1");
    assert_string_equal(all[1].vm, "vm2");
    free(all);
    assert_int_equal(coll_registry_remove(f->reg, f->agent.id), 0);
    assert_int_equal(coll_registry_remove(f->reg, f->agent.id), -ENOENT);
    send_frame(f, 1, f->now, "vm1", true, NULL);
    assert_int_equal(N(f->stats.rejected_by[COLL_REJ_UNKNOWN_AGENT]), 1);
}

static void test_many_agents_hash(void **state)
{
    struct fx *f = *state;
    /* Grow the table past its initial size and remove half: lookups stay right. */
    uint64_t ids[1500];
    for (int i = 0; i < 1500; i++) {
        char vm[32];
        snprintf(vm, sizeof vm, "v%d", i);
        struct coll_agent_info a;
        uint8_t key[PT_WIRE_KEY_LEN];
        assert_int_equal(coll_registry_add(f->reg, "ns", "m", vm, "", &a, key), 0);
        ids[i] = a.id;
    }
    for (int i = 0; i < 1500; i += 2) assert_int_equal(coll_registry_remove(f->reg, ids[i]), 0);
    for (int i = 0; i < 1500; i++) {
        struct coll_agent_info a;
        assert_int_equal(coll_registry_get(f->reg, ids[i], &a), i % 2 ? 0 : -ENOENT);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_accept_duplicate_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_rejection_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insecure_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persisted_across_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acks_follow_durability, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backfill_and_agent_report, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_conflict_and_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_agents_hash, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
