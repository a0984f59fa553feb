/* libFuzzer target for the wire decoder (common/wire.c): arbitrary bytes
 * through pt_wire_decode(), pt_wire_fields_decode() and pt_wire_ack_decode(),
 * and for whatever
 * decodes, the round trip encode -> decode must give back the same frame
 * (same header, identity, tags and typed values; floats bit for bit). */
#include "fuzz_key.h"

#include "pt/catalog.h"
#include "pt/err.h"
#include "pt/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond, what)                                                                 \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "fuzz_wire: round trip broken: %s (%s:%d)\n", what, __FILE__, \
                    __LINE__);                                                            \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

static struct pt_wire_dec *dec1, *dec2;
static struct pt_wire_key key;

static void init_once(void)
{
    if (dec1) return;
    dec1 = pt_wire_dec_new();
    dec2 = pt_wire_dec_new();
    if (!dec1 || !dec2 || pt_wire_key_init(&key, fuzz_key, sizeof fuzz_key)) abort();
}

static bool str_same(struct pt_str a, struct pt_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static void check_fields(const struct pt_field *a, const struct pt_field *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        CHECK(str_same(a[i].key, b[i].key), "field key");
        CHECK(a[i].type == b[i].type, "field type");
        switch (a[i].type) {
        case PT_F_FLOAT:
            CHECK(memcmp(&a[i].v.f, &b[i].v.f, sizeof(double)) == 0, "float bits");
            break;
        case PT_F_INT:
            CHECK(a[i].v.i == b[i].v.i, "int value");
            break;
        case PT_F_UINT:
            CHECK(a[i].v.u == b[i].v.u, "uint value");
            break;
        case PT_F_STR:
            CHECK(str_same(a[i].v.s, b[i].v.s), "string value");
            break;
        default:
            CHECK(0, "unknown field type");
        }
    }
}

static void check_frames(const struct pt_frame *a, const struct pt_frame *b)
{
    CHECK(a->version == b->version && a->kind == b->kind, "version/kind");
    CHECK(a->agent_id == b->agent_id && a->epoch == b->epoch && a->seq == b->seq, "agent/seq");
    CHECK(a->ts_ns == b->ts_ns && a->interval_ms == b->interval_ms, "ts/interval");
    CHECK(a->part == b->part && a->nparts == b->nparts, "parts");
    CHECK(str_same(a->id.ns, b->id.ns) && str_same(a->id.mcis, b->id.mcis) &&
              str_same(a->id.vm, b->id.vm) && str_same(a->id.csp, b->id.csp) &&
              str_same(a->id.host, b->id.host),
          "identity");
    CHECK(a->nmeas == b->nmeas, "measurement count");
    for (size_t m = 0; m < a->nmeas; m++) {
        const struct pt_meas *x = &a->meas[m], *y = &b->meas[m];
        CHECK(str_same(x->name, y->name), "measurement name");
        CHECK(x->ntags == y->ntags && x->nfields == y->nfields, "tag/field counts");
        for (size_t t = 0; t < x->ntags; t++)
            CHECK(str_same(x->tags[t].key, y->tags[t].key) &&
                      str_same(x->tags[t].val, y->tags[t].val),
                  "tag");
        check_fields(x->fields, y->fields, x->nfields);
    }
}

static void fuzz_frame(const uint8_t *data, size_t size)
{
    static uint8_t out[PT_WIRE_MAX_FRAME];
    struct pt_frame f, g;
    if (pt_wire_decode(dec1, data, size, &f) != 0) return;
    CHECK(f.version == PT_WIRE_VERSION && f.kind == PT_WIRE_SAMPLE, "decoded header");
    CHECK(f.body_len <= size, "body length");
    CHECK((f.mac != NULL) == ((f.flags & PT_WIRE_F_SIGNED) != 0), "mac presence");
    int v = pt_wire_verify(&f, data, &key);
    CHECK(v == 0 || v == PT_E_AUTH || v == PT_E_UNSIGNED, "verify result");

    /* Re-encode signed with the fixed key, decode with a second decoder
     * (the first one's arrays hold f). A frame whose re-encoding grows past
     * the ceiling (float32 values become float64) may not fit: that is the
     * only acceptable failure. */
    size_t len = 0;
    int rc = pt_wire_encode(&f, &key, out, sizeof out, &len);
    if (rc == PT_E_NOSPACE) return;
    CHECK(rc == 0, "re-encode");
    CHECK(pt_wire_decode(dec2, out, len, &g) == 0, "decode of re-encoded frame");
    CHECK(g.flags == PT_WIRE_F_SIGNED && g.mac != NULL, "re-encoded flags");
    CHECK(pt_wire_verify(&g, out, &key) == 0, "re-encoded frame verifies");
    check_frames(&f, &g);

    /* And unsigned: same content, no trailer. */
    rc = pt_wire_encode(&f, NULL, out, sizeof out, &len);
    CHECK(rc == 0, "unsigned re-encode");
    CHECK(pt_wire_decode(dec2, out, len, &g) == 0, "decode of unsigned re-encoding");
    CHECK(g.flags == 0 && g.mac == NULL, "unsigned flags");
    CHECK(pt_wire_verify(&g, out, &key) == PT_E_UNSIGNED, "unsigned verify");
    check_frames(&f, &g);
}

static void fuzz_fields(const uint8_t *data, size_t size)
{
    static uint8_t out[2 * PT_WIRE_MAX_FRAME];
    struct pt_field *a, *b;
    uint16_t na, nb;
    if (pt_wire_fields_decode(dec1, data, size, &a, &na) != 0) return;
    CHECK(na <= PT_WIRE_MAX_FIELDS, "field count");
    size_t len = 0;
    int rc = pt_wire_fields_encode(a, na, out, sizeof out, &len);
    CHECK(rc == 0, "fields re-encode");
    if (len > PT_WIRE_MAX_FRAME) return; /* float32 grew to float64 */
    CHECK(pt_wire_fields_decode(dec2, out, len, &b, &nb) == 0, "fields decode of re-encoding");
    CHECK(na == nb, "fields count after round trip");
    check_fields(a, b, na);
}

/* Acks: whatever decodes follows the gap rules, and re-encodes (signed)
 * to an ack that decodes, verifies and says the same. */
static void fuzz_ack(const uint8_t *data, size_t size)
{
    static uint8_t out[PT_WIRE_MAX_FRAME];
    struct pt_wire_ack a, b;
    if (pt_wire_ack_decode(data, size, &a) != 0) return;
    CHECK(a.ngaps <= PT_WIRE_ACK_MAX_GAPS && a.cum <= a.top && a.agent_id != 0, "ack header");
    CHECK(a.body_len <= size, "ack body length");
    int v = pt_wire_ack_verify(&a, data, &key);
    CHECK(v == 0 || v == PT_E_AUTH || v == PT_E_UNSIGNED, "ack verify result");
    for (uint16_t i = 0; i < a.ngaps; i++) {
        CHECK(a.gaps[i][0] > a.cum && a.gaps[i][1] < a.top, "gap within (cum, top)");
        CHECK(!pt_wire_ack_covers(&a, a.gaps[i][0]) && !pt_wire_ack_covers(&a, a.gaps[i][1]),
              "gap not covered");
    }
    CHECK(pt_wire_ack_covers(&a, a.cum) &&
              (a.top == UINT64_MAX || !pt_wire_ack_covers(&a, a.top + 1)),
          "cum covered, beyond top not");
    size_t len = 0;
    CHECK(pt_wire_ack_encode(&a, &key, out, sizeof out, &len) == 0, "ack re-encode");
    CHECK(pt_wire_ack_decode(out, len, &b) == 0, "decode of re-encoded ack");
    CHECK(pt_wire_ack_verify(&b, out, &key) == 0, "re-encoded ack verifies");
    CHECK(a.agent_id == b.agent_id && a.epoch == b.epoch && a.cum == b.cum && a.top == b.top &&
              a.now_ns == b.now_ns && a.ngaps == b.ngaps &&
              memcmp(a.gaps, b.gaps, sizeof a.gaps[0] * a.ngaps) == 0,
          "ack round trip");
}

#ifdef FUZZ_WIRE_SKIP_HUGE
/* Known issue (tests/fuzz/README.md, regressions/wire/): msgpack-c allocates
 * 24 bytes per element a container header claims before reading any, so a
 * 5-byte datagram can ask for gigabytes. Built with -DFUZZ_WIRE_SKIP_HUGE,
 * the target skips such inputs to keep looking for other bugs until the
 * decoder checks counts itself. Returns true when every container header of
 * the first object claims no more elements than bytes remain. */
static bool counts_plausible(const uint8_t *p, size_t n)
{
    static const uint8_t fixed[32] = {
        /* 0xc0..0xdf: bytes after the type byte (0xff: length-prefixed or
         * container, handled below) */
        0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 4,    8,    1,    2,    4,    8,
        1, 2, 4, 8, 2,    3,    5,    9,    17,   0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    };
    uint64_t objects = 1;
    size_t i = 0;
    while (objects > 0 && i < n) {
        uint8_t b = p[i++];
        uint64_t count = 0, len = 0;
        objects--;
        if (b <= 0x7f || b >= 0xe0) continue;
        if (b <= 0x8f) {
            count = 2u * (b & 0x0f);
        } else if (b <= 0x9f) {
            count = b & 0x0f;
        } else if (b <= 0xbf) {
            len = b & 0x1f;
        } else if (fixed[b - 0xc0] != 0xff) {
            len = fixed[b - 0xc0];
        } else {
            /* bin/ext/str 8/16/32, array/map 16/32 */
            static const uint8_t width[32] = {
                [0x04] = 1, [0x05] = 2, [0x06] = 4, [0x07] = 1, [0x08] = 2, [0x09] = 4, [0x19] = 1,
                [0x1a] = 2, [0x1b] = 4, [0x1c] = 2, [0x1d] = 4, [0x1e] = 2, [0x1f] = 4,
            };
            size_t w = width[b - 0xc0];
            if (w == 0 || n - i < w) return true; /* msgpack fails on its own */
            uint64_t v = 0;
            for (size_t k = 0; k < w; k++) v = v << 8 | p[i + k];
            i += w;
            if (b >= 0xdc) {
                count = b >= 0xde ? 2 * v : v;
            } else {
                len = v + (b >= 0xc7 && b <= 0xc9); /* ext: the type byte */
            }
        }
        if (count > n - i) return false;
        objects += count;
        if (len > n - i) return true;
        i += (size_t)len;
    }
    return true;
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
#ifdef FUZZ_WIRE_SKIP_HUGE
    if (!counts_plausible(data, size)) return 0;
#endif
    fuzz_frame(data, size);
    fuzz_fields(data, size);
    fuzz_ack(data, size);
    return 0;
}
