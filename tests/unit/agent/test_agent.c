/* Tests of agent/agent.c: the frames on the wire (decoded and verified with
 * libpantala-common's decoder), tick alignment, and --once. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "pt/err.h"
#include "pt/time.h"

#include "agent.h"
#include "agent_test.h"

#define KEY_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static void test_next_tick(void **state)
{
    const int64_t s = PT_NS_PER_SEC, ms = PT_NS_PER_MS;
    assert_int_equal(agent_next_tick(1000 * s, s), 1001 * s); /* on a tick: the next one */
    assert_int_equal(agent_next_tick(1000 * s + 1, s), 1001 * s);
    assert_int_equal(agent_next_tick(1001 * s - 1, s), 1001 * s);
    assert_int_equal(agent_next_tick(1000 * s + 50 * ms, 100 * ms), 1000 * s + 100 * ms);
    assert_int_equal(agent_next_tick(1000 * s + 1, 60 * s), 1020 * s);
    assert_int_equal(agent_next_tick(-1, s), 0);
}

struct wire {
    int fd;
    struct agent_config cfg;
    struct agent a;
    struct pt_wire_dec *dec;
    uint8_t buf[PT_WIRE_MAX_FRAME];
    char roots[2][512];
};

/* An agent sending to a loopback socket of the test's, reading fixture
 * "base" (t0 first). */
static struct wire *wire_setup(bool with_key)
{
    struct wire *w = calloc(1, sizeof *w);
    w->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    assert_int_equal(bind(w->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(w->fd, (struct sockaddr *)&a, &len), 0);

    char text[512], err[512];
    snprintf(text, sizeof text,
             "{\"collector\": \"127.0.0.1:%u\", %s \"ns\": \"ns01\", \"mcis\": \"web\", "
             "\"vm\": \"web-1\", \"csp\": \"aws\", \"host\": \"h1\", \"interval\": \"2s\"}",
             ntohs(a.sin_port), with_key ? "\"agent_id\": 77, \"key\": \"" KEY_HEX "\"," : "");
    agent_config_defaults(&w->cfg);
    if (agent_config_parse(&w->cfg, "test", text, strlen(text), true, err, sizeof err))
        fail_msg("%s", err);
    fixture(w->roots[0], sizeof w->roots[0], "base", "t0");
    fixture(w->roots[1], sizeof w->roots[1], "base", "t1");
    assert_int_equal(agent_init(&w->a, &w->cfg), 0);
    w->a.sample.root = w->roots[0];
    w->dec = pt_wire_dec_new();
    return w;
}

static void wire_teardown(struct wire *w)
{
    agent_close(&w->a);
    pt_wire_dec_free(w->dec);
    close(w->fd);
    free(w);
}

/* Receives and decodes the next frame into f. */
static void wire_recv(struct wire *w, struct pt_frame *f, ssize_t *len)
{
    struct pollfd p = {w->fd, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 1000), 1);
    *len = recv(w->fd, w->buf, sizeof w->buf, 0);
    assert_true(*len > 0);
    assert_int_equal(pt_wire_decode(w->dec, w->buf, (size_t)*len, f), 0);
}

static const struct pt_meas *meas_named(const struct pt_frame *f, const char *name)
{
    for (size_t i = 0; i < f->nmeas; i++)
        if (pt_str_eq(f->meas[i].name, name)) return &f->meas[i];
    fail_msg("no measurement %s", name);
    return NULL;
}

static void test_signed_frames(void **state)
{
    struct wire *w = wire_setup(true);
    struct pt_frame f;
    ssize_t len;
    struct pt_wire_key key;
    uint8_t raw[PT_WIRE_KEY_LEN];
    for (int i = 0; i < PT_WIRE_KEY_LEN; i++) raw[i] = (uint8_t)i;
    assert_int_equal(pt_wire_key_init(&key, raw, sizeof raw), 0);
    const int64_t tick = INT64_C(1795239454) * PT_NS_PER_SEC;

    assert_int_equal(agent_tick(&w->a, tick), 0);
    wire_recv(w, &f, &len);
    assert_int_equal(pt_wire_verify(&f, w->buf, &key), 0);
    assert_true(len < PT_WIRE_TARGET_FRAME); /* one MTU */
    assert_int_equal(f.flags, PT_WIRE_F_SIGNED);
    assert_int_equal(f.agent_id, 77);
    assert_true(f.epoch > UINT64_C(1700000000000) &&
                f.epoch <= (uint64_t)(pt_now_ns() / PT_NS_PER_MS));
    assert_int_equal(f.seq, 1);
    assert_int_equal(f.ts_ns, tick);
    assert_int_equal(f.interval_ms, 2000);
    assert_int_equal(f.part, 0);
    assert_int_equal(f.nparts, 1);
    assert_true(pt_str_eq(f.id.ns, "ns01") && pt_str_eq(f.id.mcis, "web") &&
                pt_str_eq(f.id.vm, "web-1") && pt_str_eq(f.id.csp, "aws") &&
                pt_str_eq(f.id.host, "h1"));
    assert_int_equal(f.nmeas, 3);
    assert_true(pt_str_eq(f.meas[0].name, "cpu") && pt_str_eq(f.meas[1].name, "memory"));
    /* The agent's own measurement, as of before this frame. */
    assert_true(pt_str_eq(f.meas[2].name, "agent"));
    assert_field_uint(meas_named(&f, "agent"), "frames_sent", 0);
    assert_field_uint(meas_named(&f, "agent"), "ring_frames", 0);
    assert_field_uint(meas_named(&f, "agent"), "ring_oldest", 1);
    /* First frame: gauges, no rates. */
    assert_field_uint(meas_named(&f, "cpu"), "cpu_num", 2);
    assert_no_field(meas_named(&f, "cpu"), "cpu_utilization");
    assert_field_uint(meas_named(&f, "memory"), "mem_total", UINT64_C(24684096) * 1024);
    assert_no_field(meas_named(&f, "memory"), "page_in");
    uint64_t epoch = f.epoch;

    /* A tampered frame does not verify. */
    w->buf[len / 2] ^= 1;
    struct pt_frame g;
    if (pt_wire_decode(w->dec, w->buf, (size_t)len, &g) == 0)
        assert_int_equal(pt_wire_verify(&g, w->buf, &key), PT_E_AUTH);

    /* Second frame, from t1: percentages, the next seq, the same epoch. */
    w->a.sample.root = w->roots[1];
    assert_int_equal(agent_tick(&w->a, tick + 2 * PT_NS_PER_SEC), 0);
    wire_recv(w, &f, &len);
    assert_int_equal(pt_wire_verify(&f, w->buf, &key), 0);
    assert_int_equal(f.seq, 2);
    assert_int_equal(f.epoch, epoch);
    assert_int_equal(f.ts_ns, tick + 2 * PT_NS_PER_SEC);
    const struct pt_meas *cpu = meas_named(&f, "cpu");
    assert_int_equal(cpu->nfields, 19);
    assert_field_float(cpu, "cpu_utilization", 44.5);
    assert_field_float(cpu, "cpu_guest", 10.0);
    const struct pt_meas *mem = meas_named(&f, "memory");
    assert_int_equal(mem->nfields, 16);
    assert_true(agent_meas_find(mem, "page_in") != NULL); /* its value depends on real time */
    assert_catalog_types(cpu);
    assert_catalog_types(mem);
    assert_int_equal(w->a.sent, 2);

    pt_wire_key_close(&key);
    wire_teardown(w);
}

static void test_unsigned_frames(void **state)
{
    struct wire *w = wire_setup(false);
    struct pt_frame f;
    ssize_t len;
    assert_true(w->cfg.agent_id_derived);
    assert_int_equal(agent_tick(&w->a, PT_NS_PER_SEC), 0);
    wire_recv(w, &f, &len);
    assert_int_equal(f.flags, 0);
    assert_null(f.mac);
    assert_int_equal(f.agent_id, agent_config_derive_id("ns01", "web", "web-1"));
    wire_teardown(w);
}

static void test_unreadable_proc(void **state)
{
    /* Nothing readable: the frame still goes out (the agent is alive), with
     * no measurements. */
    struct wire *w = wire_setup(false);
    struct pt_frame f;
    ssize_t len;
    char root[512];
    w->a.sample.root = fixture(root, sizeof root, "missing", "t0");
    assert_int_equal(agent_tick(&w->a, PT_NS_PER_SEC), 0);
    wire_recv(w, &f, &len);
    assert_int_equal(f.nmeas, 1); /* the agent's own measurement only */
    assert_true(pt_str_eq(f.meas[0].name, "agent"));
    /* garbled3: cpu is broken (empty uptime), memory is not. */
    w->a.sample.root = fixture(root, sizeof root, "garbled3", "t0");
    assert_int_equal(agent_tick(&w->a, 2 * PT_NS_PER_SEC), 0);
    wire_recv(w, &f, &len);
    assert_int_equal(f.nmeas, 2);
    assert_true(pt_str_eq(f.meas[0].name, "memory"));
    assert_field_uint(meas_named(&f, "agent"), "frames_sent", 1);
    assert_int_equal(f.seq, 2);
    wire_teardown(w);
}

static void test_once(void **state)
{
    struct agent_config cfg;
    char root[512];
    char *text = NULL;
    size_t len = 0;
    agent_config_defaults(&cfg);
    snprintf(cfg.ns, sizeof cfg.ns, "ns01");
    cfg.interval_ns = 100 * PT_NS_PER_MS; /* waits the interval when under 250 ms */
    /* "host" is "base" with every source the agent reads. */
    snprintf(cfg.proc_root, sizeof cfg.proc_root, "%s", fixture(root, sizeof root, "host", "t0"));
    snprintf(cfg.sys_root, sizeof cfg.sys_root, "%s",
             fixture_in(root, sizeof root, "host", "t0", "sys"));
    FILE *out = open_memstream(&text, &len);
    int64_t t0 = pt_mono_ns();
    assert_int_equal(agent_once(&cfg, true, out), 0);
    int64_t took = pt_mono_ns() - t0;
    fclose(out);
    assert_true(took >= 100 * PT_NS_PER_MS && took < 200 * PT_NS_PER_MS);
    assert_non_null(strstr(text, "  \"ns\": \"ns01\",\n"));
    assert_non_null(strstr(text, "  \"interval_ms\": 100,\n"));
    assert_non_null(strstr(text, "\"mem_total\": 25276514304,\n"));
    assert_non_null(strstr(text, "\"contexts\": 0.0,\n")); /* same file twice: a true 0 */
    assert_null(strstr(text, "cpu_utilization"));          /* no tick elapsed */
    assert_non_null(strstr(text, "\"cpu_speed\": 2500.0\n"));
    assert_non_null(strstr(text, "\"tags\": {\"interface\": \"eth0\"}"));
    assert_non_null(strstr(text, "\"bytes_in\": 0.0,\n")); /* same files twice */
    assert_non_null(strstr(text, "\"tags\": {\"device\": \"vda\"}"));
    /* disk: the fixture's mount points, sized by the real statvfs(): "/"
     * at least exists here. */
    assert_non_null(strstr(text, "\"tags\": {\"mount\": \"/\", \"device\": \"vda\", "
                                 "\"fstype\": \"ext4\"}"));
    free(text);
}

static void test_once_table(void **state)
{
    struct agent_config cfg;
    char root[512];
    char *text = NULL;
    size_t len = 0;
    agent_config_defaults(&cfg);
    snprintf(cfg.ns, sizeof cfg.ns, "ns01");
    cfg.interval_ns = 100 * PT_NS_PER_MS;
    snprintf(cfg.proc_root, sizeof cfg.proc_root, "%s", fixture(root, sizeof root, "host", "t0"));
    FILE *out = open_memstream(&text, &len);
    assert_int_equal(agent_once(&cfg, false, out), 0);
    fclose(out);
    assert_non_null(strstr(text, "sample of ns01/"));
    assert_non_null(strstr(text, "MEASUREMENT"));
    /* One row per field, with its unit from the catalog. */
    const char *row = strstr(text, "\nmemory ");
    assert_non_null(row);
    const char *total = strstr(text, "mem_total");
    assert_non_null(total);
    const char *eol = strchr(total, '\n');
    assert_non_null(strstr(total, "25276514304"));
    assert_true(strstr(total, "25276514304") < eol);
    assert_true(eol - 5 >= total && memcmp(eol - 5, "bytes", 5) == 0);
    free(text);
}

/* A fake sample of n disk-like measurements with two tags and four fields. */
struct big_sample {
    struct pt_meas m[200];
    struct pt_tag t[200][2];
    struct pt_field f[200][4];
    char mount[200][48];
};

static void big_sample_fill(struct big_sample *b, size_t n, struct pt_frame *f)
{
    static const char *const keys[4] = {"disk_utilization", "disk_total", "disk_used", "disk_free"};
    memset(f, 0, sizeof *f);
    f->kind = PT_WIRE_SAMPLE;
    f->agent_id = 9;
    f->epoch = 1;
    f->seq = 1;
    f->ts_ns = PT_NS_PER_SEC;
    f->interval_ms = 1000;
    f->part = 0;
    f->nparts = 1;
    f->id.ns = pt_str_c("ns01");
    f->id.mcis = pt_str_c("web");
    f->id.vm = pt_str_c("web-1");
    f->id.csp = pt_str_c("aws");
    f->id.host = pt_str_c("h1");
    for (size_t i = 0; i < n; i++) {
        snprintf(b->mount[i], sizeof b->mount[i], "/srv/volume-with-a-long-name-%03zu", i);
        b->t[i][0] = (struct pt_tag){pt_str_c("mount"), pt_str_c(b->mount[i])};
        b->t[i][1] = (struct pt_tag){pt_str_c("fstype"), pt_str_c("ext4")};
        for (int k = 0; k < 4; k++) {
            b->f[i][k].key = pt_str_c(keys[k]);
            b->f[i][k].type = PT_F_UINT;
            b->f[i][k].v.u = UINT64_C(1) << 40 | (uint64_t)(i * 4 + (size_t)k);
        }
        b->m[i] = (struct pt_meas){pt_str_c("disk"), b->t[i], b->f[i], 2, 4};
    }
    f->meas = b->m;
    f->nmeas = (uint16_t)n;
}

static void test_split(void **state)
{
    struct big_sample *b = calloc(1, sizeof *b);
    struct pt_frame f, g;
    struct agent_parts parts;
    struct pt_wire_dec *dec = pt_wire_dec_new();
    struct pt_wire_key key;
    uint8_t raw[PT_WIRE_KEY_LEN] = {1}, buf[PT_WIRE_MAX_FRAME];
    assert_int_equal(pt_wire_key_init(&key, raw, sizeof raw), 0);

    /* A small sample: one part, the whole of it. */
    big_sample_fill(b, 3, &f);
    assert_int_equal(agent_frame_split(&f, true, &parts), 0);
    assert_int_equal(parts.n, 1);
    assert_int_equal(parts.count[0], 3);
    assert_int_equal(parts.skipped, 0);

    /* 200 file systems: many parts, each within one MTU once signed, every
     * measurement exactly once and in order. */
    big_sample_fill(b, 200, &f);
    assert_int_equal(agent_frame_split(&f, true, &parts), 0);
    assert_true(parts.n > 5 && parts.n <= PT_WIRE_MAX_PARTS);
    assert_int_equal(parts.skipped, 0);
    size_t next = 0;
    struct pt_meas *all = f.meas;
    for (uint16_t p = 0; p < parts.n; p++) {
        size_t len;
        assert_int_equal(parts.first[p], next);
        f.part = p;
        f.nparts = parts.n;
        f.meas = all + parts.first[p];
        f.nmeas = parts.count[p];
        assert_int_equal(pt_wire_encode(&f, &key, buf, sizeof buf, &len), 0);
        assert_true(len <= PT_WIRE_TARGET_FRAME);
        assert_int_equal(pt_wire_decode(dec, buf, len, &g), 0);
        assert_int_equal(pt_wire_verify(&g, buf, &key), 0);
        assert_int_equal(g.part, p);
        assert_int_equal(g.nparts, parts.n);
        for (uint16_t i = 0; i < g.nmeas; i++)
            assert_true(pt_str_eq(g.meas[i].tags[0].val, b->mount[next + i]));
        next += g.nmeas;
    }
    assert_int_equal(next, 200);

    /* Fuller parts when unsigned (32 bytes more room each): never more. */
    struct agent_parts unsigned_parts;
    f.meas = all;
    f.nmeas = 200;
    assert_int_equal(agent_frame_split(&f, false, &unsigned_parts), 0);
    assert_true(unsigned_parts.n <= parts.n);

    pt_wire_key_close(&key);
    pt_wire_dec_free(dec);
    free(b);
}

/* An ack as the collector would send it, signed with key (NULL: unsigned). */
static size_t make_ack(uint8_t *buf, const uint8_t *key, uint64_t agent, uint64_t epoch,
                       uint64_t cum)
{
    struct pt_wire_ack k;
    struct pt_wire_key wk;
    size_t len;
    memset(&k, 0, sizeof k);
    k.agent_id = agent;
    k.epoch = epoch;
    k.cum = k.top = cum;
    if (key) assert_int_equal(pt_wire_key_init(&wk, key, PT_WIRE_KEY_LEN), 0);
    assert_int_equal(pt_wire_ack_encode(&k, key ? &wk : NULL, buf, 256, &len), 0);
    if (key) pt_wire_key_close(&wk);
    return len;
}

static void test_acks_and_resends(void **state)
{
    (void)state;
    struct wire *w = wire_setup(true);
    struct pt_frame f;
    ssize_t len;
    uint8_t good[PT_WIRE_KEY_LEN], bad[PT_WIRE_KEY_LEN], ack[256];
    for (int i = 0; i < PT_WIRE_KEY_LEN; i++) good[i] = (uint8_t)i, bad[i] = (uint8_t)(i + 1);
    const int64_t after = w->cfg.resend_after_ns;
    assert_true(w->a.ring_on);

    assert_int_equal(agent_tick(&w->a, PT_NS_PER_SEC), 0);
    wire_recv(w, &f, &len);
    const int64_t t0 = pt_mono_ns();
    uint64_t epoch = f.epoch;
    assert_int_equal(w->a.ring.unacked, 1);
    /* Nothing due yet: the pump says when. */
    int64_t next = agent_pump(&w->a, t0);
    assert_true(next > 0 && next <= after);

    /* Forged, unsigned, for another agent, malformed: all ignored. */
    agent_on_datagram(&w->a, ack, make_ack(ack, bad, 77, epoch, 1), t0);
    agent_on_datagram(&w->a, ack, make_ack(ack, NULL, 77, epoch, 1), t0);
    agent_on_datagram(&w->a, ack, make_ack(ack, good, 78, epoch, 1), t0);
    agent_on_datagram(&w->a, (const uint8_t *)"\x93\x01\x02", 3, t0);
    assert_int_equal(w->a.acks_rejected, 4);
    assert_int_equal(w->a.acks, 0);
    assert_int_equal(w->a.ring.unacked, 1);

    /* No ack came: after resend_after the oldest frame goes again, same
     * bytes, same seq and timestamp. */
    agent_pump(&w->a, t0 + after + 1);
    wire_recv(w, &f, &len);
    assert_int_equal(f.seq, 1);
    assert_int_equal(f.ts_ns, PT_NS_PER_SEC);
    assert_int_equal(w->a.resent, 1);

    /* A stale ack (older epoch) changes nothing; the real one frees it. */
    agent_on_datagram(&w->a, ack, make_ack(ack, good, 77, epoch - 1, 1), t0);
    assert_int_equal(w->a.acks_stale, 1);
    assert_int_equal(w->a.ring.unacked, 1);
    agent_on_datagram(&w->a, ack, make_ack(ack, good, 77, epoch, 1), t0);
    assert_int_equal(w->a.acks, 1);
    assert_int_equal(w->a.ring.unacked, 0);
    assert_int_equal(w->a.ring.frames, 0);
    assert_int_equal(agent_pump(&w->a, t0 + 10 * after), INT64_MAX);
    wire_teardown(w);
}

int main(void)
{
    pt_log_set_level(PT_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_next_tick),
        cmocka_unit_test(test_signed_frames),
        cmocka_unit_test(test_unsigned_frames),
        cmocka_unit_test(test_unreadable_proc),
        cmocka_unit_test(test_once),
        cmocka_unit_test(test_once_table),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_acks_and_resends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
