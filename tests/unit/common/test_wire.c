/* Wire protocol v1: round trips, hostile input, ceilings, authentication. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <msgpack.h>
#include <string.h>

#include "pt/catalog.h"
#include "pt/err.h"
#include "pt/wire.h"

static const uint8_t key_a[PT_WIRE_KEY_LEN] = "0123456789abcdef0123456789abcde";
static const uint8_t key_b[PT_WIRE_KEY_LEN] = "fedcba9876543210fedcba987654321";

struct fixture {
    struct pt_wire_dec *dec;
    struct pt_wire_key ka, kb;
};

static int setup(void **state)
{
    static struct fixture f;
    f.dec = pt_wire_dec_new();
    assert_non_null(f.dec);
    assert_int_equal(pt_wire_key_init(&f.ka, key_a, sizeof key_a), 0);
    assert_int_equal(pt_wire_key_init(&f.kb, key_b, sizeof key_b), 0);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    pt_wire_dec_free(f->dec);
    pt_wire_key_close(&f->ka);
    pt_wire_key_close(&f->kb);
    return 0;
}

/* A frame using every field type, symbol and non-symbol names, tags. */
static struct pt_tag tags[] = {{PT_STR("device"), PT_STR("sda")}, {PT_STR("rack"), PT_STR("r1")}};
static struct pt_field fields[] = {
    {PT_STR("cpu_utilization"), PT_F_FLOAT, {.f = 12.375}},
    {PT_STR("mem_total"), PT_F_UINT, {.u = UINT64_MAX}},
    {PT_STR("custom_negative"), PT_F_INT, {.i = INT64_MIN}},
    {PT_STR("custom_positive_int"), PT_F_INT, {.i = 42}},
    {PT_STR("note"), PT_F_STR, {.s = {"héllo", 6}}},
    {PT_STR("empty"), PT_F_STR, {.s = {"", 0}}},
    {PT_STR("tiny"), PT_F_FLOAT, {.f = -0.0}},
};
static struct pt_meas meas[] = {
    {PT_STR("cpu"), NULL, fields, 0, 7},
    {PT_STR("my_measurement"), tags, fields, 2, 1},
};

static struct pt_frame sample_frame(void)
{
    struct pt_frame f = {0};
    f.agent_id = 0x1234567890abcULL;
    f.epoch = 1763700000;
    f.seq = 77;
    f.ts_ns = INT64_C(1763719200123456789);
    f.interval_ms = 1000;
    f.part = 0;
    f.nparts = 1;
    f.id = (struct pt_ident){PT_STR("ns01"), PT_STR("mcis01"), PT_STR("vm-1"), PT_STR("aws"),
                             PT_STR("host.example")};
    f.meas = meas;
    f.nmeas = 2;
    return f;
}

static void assert_str(struct pt_str s, const char *want)
{
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.p, want, s.len);
}

static void test_round_trip_every_type(void **state)
{
    struct fixture *fx = *state;
    struct pt_frame in = sample_frame(), out;
    uint8_t buf[PT_WIRE_MAX_FRAME];
    size_t len;
    assert_int_equal(pt_wire_encode(&in, &fx->ka, buf, sizeof buf, &len), 0);
    assert_int_equal(pt_wire_decode(fx->dec, buf, len, &out), 0);
    assert_int_equal(pt_wire_verify(&out, buf, &fx->ka), 0);
    assert_int_equal(out.version, PT_WIRE_VERSION);
    assert_int_equal(out.kind, PT_WIRE_SAMPLE);
    assert_true(out.flags & PT_WIRE_F_SIGNED);
    assert_int_equal(out.body_len + PT_WIRE_MAC_LEN, len);
    assert_true(out.agent_id == in.agent_id);
    assert_true(out.epoch == in.epoch);
    assert_true(out.seq == in.seq);
    assert_true(out.ts_ns == in.ts_ns);
    assert_int_equal(out.interval_ms, 1000);
    assert_int_equal(out.part, 0);
    assert_int_equal(out.nparts, 1);
    assert_str(out.id.ns, "ns01");
    assert_str(out.id.mcis, "mcis01");
    assert_str(out.id.vm, "vm-1");
    assert_str(out.id.csp, "aws");
    assert_str(out.id.host, "host.example");
    assert_int_equal(out.nmeas, 2);
    assert_str(out.meas[0].name, "cpu");
    assert_int_equal(out.meas[0].ntags, 0);
    assert_int_equal(out.meas[0].nfields, 7);
    const struct pt_field *g = out.meas[0].fields;
    assert_str(g[0].key, "cpu_utilization");
    assert_int_equal(g[0].type, PT_F_FLOAT);
    assert_true(g[0].v.f == 12.375);
    assert_int_equal(g[1].type, PT_F_UINT);
    assert_true(g[1].v.u == UINT64_MAX);
    assert_int_equal(g[2].type, PT_F_INT);
    assert_true(g[2].v.i == INT64_MIN);
    assert_int_equal(g[3].type, PT_F_INT); /* a positive int stays an int */
    assert_true(g[3].v.i == 42);
    assert_int_equal(g[4].type, PT_F_STR);
    assert_str(g[4].v.s, "héllo");
    assert_int_equal(g[5].type, PT_F_STR);
    assert_int_equal(g[5].v.s.len, 0);
    assert_int_equal(g[6].type, PT_F_FLOAT);
    assert_true(signbit(g[6].v.f));
    assert_str(out.meas[1].name, "my_measurement");
    assert_int_equal(out.meas[1].ntags, 2);
    assert_str(out.meas[1].tags[0].key, "device");
    assert_str(out.meas[1].tags[0].val, "sda");
    assert_str(out.meas[1].tags[1].key, "rack");
    assert_str(out.meas[1].tags[1].val, "r1");
}

static void test_unsigned_round_trip(void **state)
{
    struct fixture *fx = *state;
    struct pt_frame in = sample_frame(), out;
    uint8_t buf[PT_WIRE_MAX_FRAME];
    size_t len;
    assert_int_equal(pt_wire_encode(&in, NULL, buf, sizeof buf, &len), 0);
    assert_int_equal(pt_wire_decode(fx->dec, buf, len, &out), 0);
    assert_false(out.flags & PT_WIRE_F_SIGNED);
    assert_null(out.mac);
    assert_int_equal(out.body_len, len);
    assert_int_equal(pt_wire_verify(&out, buf, &fx->ka), PT_E_UNSIGNED);
}

static void test_symbols_keep_frames_small(void **state)
{
    (void)state;
    /* Catalog names travel as one-byte symbol ids. */
    struct pt_field f = {PT_STR("cpu_utilization"), PT_F_FLOAT, {.f = 1.0}};
    uint8_t buf[64];
    size_t len;
    assert_int_equal(pt_wire_fields_encode(&f, 1, buf, sizeof buf, &len), 0);
    assert_int_equal(len, 1 + 1 + 9); /* fixmap, fixint id, float64 */
    assert_int_not_equal(pt_sym_find("cpu_utilization", 15), 0);
    uint32_t l;
    assert_string_equal(pt_sym_name(pt_sym_find("drop_out", 8), &l), "drop_out");
    assert_int_equal(pt_sym_find("no_such_symbol", 14), 0);
    /* Ids are part of protocol v1 (docs/protocol.md): pinned. */
    assert_int_equal(pt_sym_find("cpu", 3), 1);
    assert_int_equal(pt_sym_find("total", 5), 11);
    assert_int_equal(pt_sym_find("cpu_utilization", 15), 12);
    assert_int_equal(pt_sym_find("drop_out", 8), 64);
    assert_int_equal(pt_sym_find("mem_available", 13), 65);
    /* Every catalog field has a symbol. */
    for (size_t i = 0; i < pt_catalog_len; i++)
        assert_int_not_equal(pt_sym_find(pt_catalog[i].field, strlen(pt_catalog[i].field)), 0);
}

static void test_truncated_at_every_offset(void **state)
{
    struct fixture *fx = *state;
    struct pt_frame in = sample_frame(), out;
    uint8_t buf[PT_WIRE_MAX_FRAME];
    size_t len;
    assert_int_equal(pt_wire_encode(&in, &fx->ka, buf, sizeof buf, &len), 0);
    size_t body = len - PT_WIRE_MAC_LEN;
    for (size_t cut = 0; cut < len; cut++) {
        int rc = pt_wire_decode(fx->dec, buf, cut, &out);
        assert_int_not_equal(rc, 0);
        if (cut < body || cut > body) assert_int_equal(rc, PT_E_TRUNCATED);
    }
    /* Unsigned: every prefix of the body is truncated too. */
    assert_int_equal(pt_wire_encode(&in, NULL, buf, sizeof buf, &len), 0);
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(pt_wire_decode(fx->dec, buf, cut, &out), PT_E_TRUNCATED);
}

static void test_bad_mac_and_wrong_key(void **state)
{
    struct fixture *fx = *state;
    struct pt_frame in = sample_frame(), out;
    uint8_t buf[PT_WIRE_MAX_FRAME];
    size_t len;
    assert_int_equal(pt_wire_encode(&in, &fx->ka, buf, sizeof buf, &len), 0);
    /* wrong key */
    assert_int_equal(pt_wire_decode(fx->dec, buf, len, &out), 0);
    assert_int_equal(pt_wire_verify(&out, buf, &fx->kb), PT_E_AUTH);
    /* a flipped bit anywhere in the trailer */
    for (size_t i = len - PT_WIRE_MAC_LEN; i < len; i++) {
        buf[i] ^= 0x01;
        assert_int_equal(pt_wire_decode(fx->dec, buf, len, &out), 0);
        assert_int_equal(pt_wire_verify(&out, buf, &fx->ka), PT_E_AUTH);
        buf[i] ^= 0x01;
    }
    /* a changed value inside the body (seq 77 -> 78) under the old MAC */
    struct pt_frame tampered = sample_frame();
    tampered.seq = 78;
    uint8_t buf2[PT_WIRE_MAX_FRAME];
    size_t len2;
    assert_int_equal(pt_wire_encode(&tampered, &fx->ka, buf2, sizeof buf2, &len2), 0);
    assert_int_equal(len2, len);
    memcpy(buf2 + len2 - PT_WIRE_MAC_LEN, buf + len - PT_WIRE_MAC_LEN, PT_WIRE_MAC_LEN);
    assert_int_equal(pt_wire_decode(fx->dec, buf2, len2, &out), 0);
    assert_true(out.seq == 78);
    assert_int_equal(pt_wire_verify(&out, buf2, &fx->ka), PT_E_AUTH);
}

/* ---- hand-built frames for shapes the encoder never makes ---------------- */

struct hdr {
    uint64_t version, kind, flags, agent, epoch, seq, ts, interval, part, nparts;
    uint32_t count;
};

static struct hdr good_hdr(void)
{
    return (struct hdr){1, 1, 0, 99, 1, 1, 1763719200000000000ULL, 1000, 0, 1, 12};
}

static void pack_hdr(msgpack_packer *pk, struct hdr h)
{
    msgpack_pack_array(pk, h.count);
    uint64_t v[] = {h.version, h.kind, h.flags,    h.agent, h.epoch,
                    h.seq,     h.ts,   h.interval, h.part,  h.nparts};
    for (size_t i = 0; i < 10 && i < h.count; i++) msgpack_pack_uint64(pk, v[i]);
}

static void pack_s(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void pack_ident(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 5);
    pack_s(pk, "ns", 2);
    pack_s(pk, "m", 1);
    pack_s(pk, "v", 1);
    pack_s(pk, "", 0);
    pack_s(pk, "h", 1);
}

static int decode_sbuf(struct fixture *fx, msgpack_sbuffer *sb)
{
    struct pt_frame out;
    int rc = pt_wire_decode(fx->dec, sb->data, sb->size, &out);
    msgpack_sbuffer_clear(sb);
    return rc;
}

/* One measurement "cpu" with one field given by the callback. */
static void pack_one_meas(msgpack_packer *pk, void (*val)(msgpack_packer *))
{
    msgpack_pack_array(pk, 1);
    msgpack_pack_array(pk, 3);
    pack_s(pk, "cpu", 3);
    msgpack_pack_map(pk, 0);
    msgpack_pack_map(pk, 1);
    pack_s(pk, "f", 1);
    val(pk);
}

static void v_float(msgpack_packer *pk)
{
    msgpack_pack_double(pk, 1.5);
}
static void v_bool(msgpack_packer *pk)
{
    msgpack_pack_true(pk);
}
static void v_nan(msgpack_packer *pk)
{
    msgpack_pack_double(pk, NAN);
}
static void v_array(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 0);
}
static void v_bad_ext(msgpack_packer *pk)
{
    msgpack_pack_ext(pk, 4, PT_WIRE_EXT_INT);
    msgpack_pack_ext_body(pk, "abcd", 4);
}
static void v_bad_utf8(msgpack_packer *pk)
{
    pack_s(pk, "\xff\xfe", 2);
}

static void test_hand_built_frames(void **state)
{
    struct fixture *fx = *state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    struct hdr h;

    /* The reference shape decodes. */
    pack_hdr(&pk, good_hdr());
    pack_ident(&pk);
    pack_one_meas(&pk, v_float);
    assert_int_equal(decode_sbuf(fx, &sb), 0);

    /* Version 2 is reported as such, whatever follows. */
    h = good_hdr();
    h.version = 2;
    h.count = 3;
    pack_hdr(&pk, h);
    assert_int_equal(decode_sbuf(fx, &sb), PT_E_VERSION);

    /* Wrong types. */
    msgpack_pack_map(&pk, 0);
    assert_int_equal(decode_sbuf(fx, &sb), PT_E_TYPE); /* root not an array */
    msgpack_pack_array(&pk, 12);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 0);
    pack_s(&pk, "agent", 5); /* agent id as string, the rest well-formed */
    for (int i = 0; i < 6; i++) msgpack_pack_uint8(&pk, 1);
    pack_ident(&pk);
    msgpack_pack_array(&pk, 0);
    assert_int_equal(decode_sbuf(fx, &sb), PT_E_TYPE);
    pack_hdr(&pk, good_hdr());
    pack_ident(&pk);
    pack_one_meas(&pk, v_bool);
    assert_int_equal(decode_sbuf(fx, &sb), PT_E_TYPE);
    pack_hdr(&pk, good_hdr());
    pack_ident(&pk);
    pack_one_meas(&pk, v_array);
    assert_int_equal(decode_sbuf(fx, &sb), PT_E_TYPE);
    pack_hdr(&pk, good_hdr());
    pack_ident(&pk);
    pack_one_meas(&pk, v_bad_ext);
    assert_int_equal(decode_sbuf(fx, &sb), PT_E_TYPE);
    pack_hdr(&pk, good_hdr());
    msgpack_pack_map(&pk, 0); /* identity not an array */
    msgpack_pack_array(&pk, 0);
    assert_int_equal(decode_sbuf(fx, &sb), PT_E_TYPE);

    /* Values that are well-typed but invalid. */
    pack_hdr(&pk, good_hdr());
    pack_ident(&pk);
    pack_one_meas(&pk, v_nan);
    assert_int_equal(decode_sbuf(fx, &sb), PT_E_MALFORMED);
    pack_hdr(&pk, good_hdr());
    pack_ident(&pk);
    pack_one_meas(&pk, v_bad_utf8);
    assert_int_equal(decode_sbuf(fx, &sb), PT_E_MALFORMED);
    h = good_hdr();
    h.seq = 0;
    pack_hdr(&pk, h);
    pack_ident(&pk);
    pack_one_meas(&pk, v_float);
    assert_int_equal(decode_sbuf(fx, &sb), PT_E_MALFORMED);
    h = good_hdr();
    h.flags = 0x80; /* unknown flag */
    pack_hdr(&pk, h);
    pack_ident(&pk);
    pack_one_meas(&pk, v_float);
    assert_int_equal(decode_sbuf(fx, &sb), PT_E_MALFORMED);
    h = good_hdr();
    h.part = 3; /* part >= nparts */
    h.nparts = 2;
    pack_hdr(&pk, h);
    pack_ident(&pk);
    pack_one_meas(&pk, v_float);
    assert_int_equal(decode_sbuf(fx, &sb), PT_E_MALFORMED);
    h = good_hdr();
    h.kind = PT_WIRE_ACK; /* agents never send acks */
    pack_hdr(&pk, h);
    pack_ident(&pk);
    pack_one_meas(&pk, v_float);
    assert_int_equal(decode_sbuf(fx, &sb), PT_E_MALFORMED);
    h = good_hdr();
    h.count = 13; /* an extra element */
    pack_hdr(&pk, h);
    pack_ident(&pk);
    pack_one_meas(&pk, v_float);
    msgpack_pack_nil(&pk);
    assert_int_equal(decode_sbuf(fx, &sb), PT_E_MALFORMED);
    /* trailing bytes after an unsigned body */
    pack_hdr(&pk, good_hdr());
    pack_ident(&pk);
    pack_one_meas(&pk, v_float);
    msgpack_pack_nil(&pk);
    assert_int_equal(decode_sbuf(fx, &sb), PT_E_MALFORMED);
    /* unknown symbol id as a measurement name */
    pack_hdr(&pk, good_hdr());
    pack_ident(&pk);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint32(&pk, 60000);
    msgpack_pack_map(&pk, 0);
    msgpack_pack_map(&pk, 0);
    assert_int_equal(decode_sbuf(fx, &sb), PT_E_UNKNOWN);
    /* empty vm name */
    pack_hdr(&pk, good_hdr());
    msgpack_pack_array(&pk, 5);
    pack_s(&pk, "ns", 2);
    pack_s(&pk, "m", 1);
    pack_s(&pk, "", 0);
    pack_s(&pk, "", 0);
    pack_s(&pk, "", 0);
    msgpack_pack_array(&pk, 0);
    assert_int_equal(decode_sbuf(fx, &sb), PT_E_MALFORMED);
    /* not msgpack at all (0xc1 is never used) */
    msgpack_sbuffer_write(&sb, "\xc1\xc1\xc1", 3);
    assert_int_equal(decode_sbuf(fx, &sb), PT_E_TYPE);
    msgpack_sbuffer_destroy(&sb);
}

static void test_ceilings(void **state)
{
    struct fixture *fx = *state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

    /* too many measurements */
    pack_hdr(&pk, good_hdr());
    pack_ident(&pk);
    msgpack_pack_array(&pk, PT_WIRE_MAX_MEAS + 1);
    for (int i = 0; i < PT_WIRE_MAX_MEAS + 1; i++) {
        msgpack_pack_array(&pk, 3);
        msgpack_pack_uint8(&pk, 1);
        msgpack_pack_map(&pk, 0);
        msgpack_pack_map(&pk, 0);
    }
    assert_int_equal(decode_sbuf(fx, &sb), PT_E_LIMIT);
    /* too many tags */
    pack_hdr(&pk, good_hdr());
    pack_ident(&pk);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_map(&pk, PT_WIRE_MAX_TAGS + 1);
    for (int i = 0; i < PT_WIRE_MAX_TAGS + 1; i++) {
        char k[8];
        int n = snprintf(k, sizeof k, "t%d", i);
        pack_s(&pk, k, (size_t)n);
        pack_s(&pk, "v", 1);
    }
    msgpack_pack_map(&pk, 0);
    assert_int_equal(decode_sbuf(fx, &sb), PT_E_LIMIT);
    /* too many fields */
    pack_hdr(&pk, good_hdr());
    pack_ident(&pk);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_map(&pk, 0);
    msgpack_pack_map(&pk, PT_WIRE_MAX_FIELDS + 1);
    for (int i = 0; i < PT_WIRE_MAX_FIELDS + 1; i++) {
        msgpack_pack_uint8(&pk, 12);
        msgpack_pack_uint8(&pk, 1);
    }
    assert_int_equal(decode_sbuf(fx, &sb), PT_E_LIMIT);
    /* an over-long string */
    char longs[PT_WIRE_MAX_STR + 1];
    memset(longs, 'a', sizeof longs);
    pack_hdr(&pk, good_hdr());
    msgpack_pack_array(&pk, 5);
    pack_s(&pk, longs, sizeof longs);
    for (int i = 0; i < 4; i++) pack_s(&pk, "x", 1);
    msgpack_pack_array(&pk, 0);
    assert_int_equal(decode_sbuf(fx, &sb), PT_E_LIMIT);
    /* a datagram over the frame ceiling is refused before parsing */
    static char big[PT_WIRE_MAX_FRAME + 1];
    struct pt_frame out;
    assert_int_equal(pt_wire_decode(fx->dec, big, sizeof big, &out), PT_E_LIMIT);
    /* nparts beyond the ceiling */
    struct hdr h = good_hdr();
    h.nparts = PT_WIRE_MAX_PARTS + 1;
    pack_hdr(&pk, h);
    pack_ident(&pk);
    msgpack_pack_array(&pk, 0);
    assert_int_equal(decode_sbuf(fx, &sb), PT_E_LIMIT);

    /* The encoder refuses the same. */
    struct pt_frame f = sample_frame();
    uint8_t buf[PT_WIRE_MAX_FRAME];
    size_t len;
    struct pt_meas many[PT_WIRE_MAX_MEAS + 1];
    for (size_t i = 0; i < sizeof many / sizeof many[0]; i++) many[i] = meas[0];
    f.meas = many;
    f.nmeas = PT_WIRE_MAX_MEAS + 1;
    assert_int_equal(pt_wire_encode(&f, NULL, buf, sizeof buf, &len), PT_E_LIMIT);
    f = sample_frame();
    f.id.vm = (struct pt_str){longs, sizeof longs};
    assert_int_equal(pt_wire_encode(&f, NULL, buf, sizeof buf, &len), PT_E_LIMIT);
    /* and a buffer too small */
    f = sample_frame();
    assert_int_equal(pt_wire_encode(&f, &fx->ka, buf, 40, &len), PT_E_NOSPACE);
    msgpack_sbuffer_destroy(&sb);
}

static void test_fields_blob(void **state)
{
    struct fixture *fx = *state;
    uint8_t buf[1024];
    size_t len;
    assert_int_equal(pt_wire_fields_encode(fields, 7, buf, sizeof buf, &len), 0);
    struct pt_field *out;
    uint16_t n;
    assert_int_equal(pt_wire_fields_decode(fx->dec, buf, len, &out, &n), 0);
    assert_int_equal(n, 7);
    assert_str(out[0].key, "cpu_utilization");
    assert_true(out[0].v.f == 12.375);
    assert_int_equal(out[3].type, PT_F_INT);
    assert_true(out[3].v.i == 42);
    for (size_t cut = 0; cut < len; cut++)
        assert_int_not_equal(pt_wire_fields_decode(fx->dec, buf, cut, &out, &n), 0);
}

/* Found by fuzzing: a container header claiming 2^32 elements made
 * msgpack-c allocate ~100 GB before anything was checked. The decoder now
 * compares every count with its ceiling before reading on, and allocates
 * nothing, so such input is refused at once. */
static void test_huge_claimed_counts(void **state)
{
    struct fixture *fx = *state;
    struct pt_frame out;
    struct pt_field *fl;
    uint16_t n;
    /* a root array claiming 0xdd000000 elements, then nothing */
    assert_int_equal(pt_wire_decode(fx->dec, "\xdd\xdd\x00\x00\x00", 5, &out), PT_E_TRUNCATED);
    assert_int_equal(pt_wire_fields_decode(fx->dec, "\xdd\xdd\x00\x00\x00", 5, &fl, &n), PT_E_TYPE);
    /* a map claiming 2^32-1 pairs */
    assert_int_equal(pt_wire_decode(fx->dec, "\xdf\xff\xff\xff\xff", 5, &out), PT_E_TYPE);
    assert_int_equal(pt_wire_fields_decode(fx->dec, "\xdf\xff\xff\xff\xff", 5, &fl, &n),
                     PT_E_LIMIT);
    /* inside a frame: measurements claiming 2^28 entries */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_hdr(&pk, good_hdr());
    pack_ident(&pk);
    msgpack_sbuffer_write(&sb, "\xdd\x10\x00\x00\x00", 5);
    assert_int_equal(decode_sbuf(fx, &sb), PT_E_LIMIT);
    /* a field map claiming one pair more than follow */
    msgpack_pack_map(&pk, 2);
    msgpack_pack_uint8(&pk, 12);
    msgpack_pack_double(&pk, 1.0);
    assert_int_equal(pt_wire_fields_decode(fx->dec, sb.data, sb.size, &fl, &n), PT_E_TRUNCATED);
    msgpack_sbuffer_destroy(&sb);
}

/* Found by fuzzing: msgpack-c hands out NULL for an empty first string. */
static void test_empty_string_field(void **state)
{
    struct fixture *fx = *state;
    struct pt_field *fl;
    uint16_t n;
    assert_int_equal(pt_wire_fields_decode(fx->dec, "\x81\x2b\xa0", 3, &fl, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(fl[0].type, PT_F_STR);
    assert_int_equal(fl[0].v.s.len, 0);
    assert_non_null(fl[0].v.s.p);
    uint8_t buf[16];
    size_t len;
    assert_int_equal(pt_wire_fields_encode(fl, n, buf, sizeof buf, &len), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(buf, "\x81\x2b\xa0", 3);
}

static void test_utf8(void **state)
{
    (void)state;
    assert_true(pt_utf8_ok("abc", 3, false));
    assert_true(pt_utf8_ok("日本", 6, false));
    assert_false(pt_utf8_ok("a\nb", 3, false));
    assert_true(pt_utf8_ok("a\nb", 3, true));
    assert_false(pt_utf8_ok("\xc0\x80", 2, true));     /* overlong NUL */
    assert_false(pt_utf8_ok("\xed\xa0\x80", 3, true)); /* surrogate */
    assert_false(pt_utf8_ok("\xe6\x97", 2, true));     /* cut short */
    assert_false(pt_wire_name_ok("", 0));
}

/* ---- acknowledgement frames ---- */

static struct pt_wire_ack sample_ack(void)
{
    struct pt_wire_ack a;
    memset(&a, 0, sizeof a);
    a.agent_id = 77;
    a.epoch = UINT64_C(1763700000123);
    a.cum = 100;
    a.top = 140;
    a.now_ns = INT64_C(1763700000123456789);
    a.ngaps = 2;
    a.gaps[0][0] = 102, a.gaps[0][1] = 104;
    a.gaps[1][0] = 130, a.gaps[1][1] = 130;
    return a;
}

static void test_ack_round_trip(void **state)
{
    struct fixture *fx = *state;
    struct pt_wire_ack a = sample_ack(), b;
    uint8_t buf[PT_WIRE_MAX_FRAME];
    size_t len;
    assert_int_equal(pt_wire_ack_encode(&a, &fx->ka, buf, sizeof buf, &len), 0);
    assert_true(len < 120); /* a small datagram */
    assert_int_equal(pt_wire_ack_decode(buf, len, &b), 0);
    assert_int_equal(b.agent_id, 77);
    assert_true(b.epoch == a.epoch && b.cum == 100 && b.top == 140 && b.now_ns == a.now_ns);
    assert_int_equal(b.ngaps, 2);
    assert_true(b.gaps[0][0] == 102 && b.gaps[0][1] == 104 && b.gaps[1][0] == 130 &&
                b.gaps[1][1] == 130);
    assert_non_null(b.mac);
    assert_int_equal(b.body_len + PT_WIRE_MAC_LEN, len);
    assert_int_equal(pt_wire_ack_verify(&b, buf, &fx->ka), 0);
    /* A wrong key, or any altered byte, fails. */
    assert_int_equal(pt_wire_ack_verify(&b, buf, &fx->kb), PT_E_AUTH);
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x01;
        struct pt_wire_ack c;
        if (pt_wire_ack_decode(buf, len, &c) == 0)
            assert_int_not_equal(pt_wire_ack_verify(&c, buf, &fx->ka), 0);
        buf[i] ^= 0x01;
    }
    /* Which seqs the ack covers. */
    assert_true(pt_wire_ack_covers(&b, 1) && pt_wire_ack_covers(&b, 100));
    assert_true(pt_wire_ack_covers(&b, 101) && pt_wire_ack_covers(&b, 105));
    assert_false(pt_wire_ack_covers(&b, 102) || pt_wire_ack_covers(&b, 104));
    assert_false(pt_wire_ack_covers(&b, 130) || pt_wire_ack_covers(&b, 141));
    assert_true(pt_wire_ack_covers(&b, 131) && pt_wire_ack_covers(&b, 140));

    /* Unsigned: no trailer, verify says so. */
    assert_int_equal(pt_wire_ack_encode(&a, NULL, buf, sizeof buf, &len), 0);
    assert_int_equal(pt_wire_ack_decode(buf, len, &b), 0);
    assert_null(b.mac);
    assert_int_equal(pt_wire_ack_verify(&b, buf, &fx->ka), PT_E_UNSIGNED);
}

static void test_ack_hostile(void **state)
{
    struct fixture *fx = *state;
    struct pt_wire_ack a = sample_ack(), b;
    uint8_t buf[PT_WIRE_MAX_FRAME];
    size_t len;
    assert_int_equal(pt_wire_ack_encode(&a, &fx->ka, buf, sizeof buf, &len), 0);
    /* Cut short anywhere: never accepted. */
    for (size_t cut = 0; cut < len; cut++)
        assert_int_not_equal(pt_wire_ack_decode(buf, cut, &b), 0);
    /* A byte too many. */
    buf[len] = 0;
    assert_int_equal(pt_wire_ack_decode(buf, len + 1, &b), PT_E_MALFORMED);
    /* Too small an output buffer. */
    assert_int_equal(pt_wire_ack_encode(&a, &fx->ka, buf, 20, &len), PT_E_NOSPACE);

    /* Invalid gap lists are refused by the encoder and the decoder. */
    struct pt_wire_ack bad = a;
    bad.gaps[1][0] = 103; /* overlaps the first */
    assert_int_equal(pt_wire_ack_encode(&bad, NULL, buf, sizeof buf, &len), PT_E_MALFORMED);
    bad = a;
    bad.gaps[0][0] = 100; /* not above cum */
    assert_int_equal(pt_wire_ack_encode(&bad, NULL, buf, sizeof buf, &len), PT_E_MALFORMED);
    bad = a;
    bad.gaps[1][1] = 140; /* reaches top */
    assert_int_equal(pt_wire_ack_encode(&bad, NULL, buf, sizeof buf, &len), PT_E_MALFORMED);
    bad = a;
    bad.top = 50; /* below cum */
    bad.ngaps = 0;
    assert_int_equal(pt_wire_ack_encode(&bad, NULL, buf, sizeof buf, &len), PT_E_MALFORMED);

    /* Hand-built with msgpack-c: a sample frame's kind, a gap count beyond
     * the ceiling, an odd gap list, another version. */
    struct {
        unsigned version, kind, ngaps_raw;
        int want;
    } cases[] = {
        {1, 1, 0, PT_E_MALFORMED},
        {1, 2, 2 * PT_WIRE_ACK_MAX_GAPS + 2, PT_E_LIMIT},
        {1, 2, 1, PT_E_MALFORMED},
        {2, 2, 0, PT_E_VERSION},
        {1, 2, 0, 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 9);
        msgpack_pack_uint8(&pk, (uint8_t)cases[c].version);
        msgpack_pack_uint8(&pk, (uint8_t)cases[c].kind);
        msgpack_pack_uint8(&pk, 0);
        msgpack_pack_uint64(&pk, 5);
        msgpack_pack_uint64(&pk, 9);
        msgpack_pack_uint64(&pk, 10);
        msgpack_pack_uint64(&pk, 1000);
        msgpack_pack_array(&pk, cases[c].ngaps_raw);
        for (unsigned g = 0; g < cases[c].ngaps_raw; g++) msgpack_pack_uint64(&pk, 20 + g);
        msgpack_pack_uint64(&pk, 123);
        assert_int_equal(pt_wire_ack_decode(sb.data, sb.size, &b), cases[c].want);
        msgpack_sbuffer_destroy(&sb);
    }
    /* A sample frame is not an ack, and an ack is not a sample frame. */
    struct pt_frame f = sample_frame(), g;
    assert_int_equal(pt_wire_encode(&f, &fx->ka, buf, sizeof buf, &len), 0);
    assert_int_equal(pt_wire_ack_decode(buf, len, &b), PT_E_MALFORMED);
    assert_int_equal(pt_wire_ack_encode(&a, &fx->ka, buf, sizeof buf, &len), 0);
    assert_int_equal(pt_wire_decode(fx->dec, buf, len, &g), PT_E_MALFORMED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_type),
        cmocka_unit_test(test_unsigned_round_trip),
        cmocka_unit_test(test_symbols_keep_frames_small),
        cmocka_unit_test(test_truncated_at_every_offset),
        cmocka_unit_test(test_bad_mac_and_wrong_key),
        cmocka_unit_test(test_hand_built_frames),
        cmocka_unit_test(test_ceilings),
        cmocka_unit_test(test_fields_blob),
        cmocka_unit_test(test_huge_claimed_counts),
        cmocka_unit_test(test_empty_string_field),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_ack_round_trip),
        cmocka_unit_test(test_ack_hostile),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
