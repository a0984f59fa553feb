/* Wire protocol v1: frame encoder, hardened decoder and the HMAC trailer
 * (the MAC itself comes from the crypto backend, see below). */
#include "pt/wire.h"
#include "pt/catalog.h"
#include "pt/err.h"
#include "pt/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>
#include <msgpuck.h>

/* Elements of a v1 sample frame (docs/protocol.md). */
enum {
    E_VERSION,
    E_KIND,
    E_FLAGS,
    E_AGENT,
    E_EPOCH,
    E_SEQ,
    E_TS,
    E_INTERVAL,
    E_PART,
    E_NPARTS,
    E_IDENT,
    E_MEAS,
    E_SAMPLE_COUNT
};
#define IDENT_COUNT 5

struct pt_wire_dec {
    struct pt_meas meas[PT_WIRE_MAX_MEAS];
    struct pt_tag tags[PT_WIRE_MAX_ALL_TAGS];
    struct pt_field fields[PT_WIRE_MAX_ALL_FIELDS];
};

struct pt_str pt_str_c(const char *s)
{
    return (struct pt_str){s ? s : "", s ? (uint32_t)strlen(s) : 0};
}

bool pt_str_eq(struct pt_str a, const char *s)
{
    size_t n = strlen(s);
    return a.len == n && memcmp(a.p, s, n) == 0;
}

bool pt_utf8_ok(const char *s, size_t len, bool ctrl)
{
    if (len == 0) return true; /* s may be NULL then */
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = *p;
        if (c < 0x80) {
            if (!ctrl && (c < 0x20 || c == 0x7f)) return false;
            if (c == 0) return false;
            p++;
            continue;
        }
        size_t n;
        unsigned min;
        if ((c & 0xe0) == 0xc0) {
            n = 1, min = 0x80, c &= 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, min = 0x800, c &= 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, min = 0x10000, c &= 0x07;
        } else {
            return false;
        }
        if ((size_t)(end - p) <= n) return false;
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80) return false;
            c = (c << 6) | (p[i] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return false;
        p += n + 1;
    }
    return true;
}

bool pt_wire_name_ok(const char *p, size_t len)
{
    return len > 0 && len <= PT_WIRE_MAX_STR && pt_utf8_ok(p, len, false);
}

/* ---- HMAC ---------------------------------------------------------------- */

/* pt_wire_key_init(), pt_wire_key_close() and pt_wire_mac() live in the
 * crypto backend this library is built with: common/crypto_openssl.c
 * (pantala-common, the collector) or common/crypto_builtin.c
 * (pantala-common-agent, the agent; pt/sha256.h says why). */

int pt_wire_verify(const struct pt_frame *f, const void *buf, struct pt_wire_key *key)
{
    uint8_t mac[PT_WIRE_MAC_LEN];
    if (!f->mac) return PT_E_UNSIGNED;
    if (pt_wire_mac(key, buf, f->body_len, mac)) return PT_E_AUTH;
    return pt_ct_equal(mac, sizeof mac, f->mac, PT_WIRE_MAC_LEN) ? 0 : PT_E_AUTH;
}

/* ---- encoder ------------------------------------------------------------- */

struct wbuf {
    char *p;
    size_t cap, len;
};

static int wbuf_write(void *data, const char *buf, size_t len)
{
    struct wbuf *w = data;
    if (len == 0) return 0;
    if (len > w->cap - w->len) return -1;
    memcpy(w->p + w->len, buf, len);
    w->len += len;
    return 0;
}

/* Packs a name as its symbol id when it has one, else as a string. */
static int pack_name(msgpack_packer *pk, struct pt_str s)
{
    uint32_t id = pt_sym_find(s.p, s.len);
    if (id) return msgpack_pack_uint32(pk, id);
    if (msgpack_pack_str(pk, s.len)) return -1;
    return msgpack_pack_str_body(pk, s.p, s.len);
}

static int pack_str(msgpack_packer *pk, struct pt_str s)
{
    if (msgpack_pack_str(pk, s.len)) return -1;
    return msgpack_pack_str_body(pk, s.p, s.len);
}

static int pack_field(msgpack_packer *pk, const struct pt_field *fl)
{
    if (pack_name(pk, fl->key)) return -1;
    switch (fl->type) {
    case PT_F_FLOAT:
        return msgpack_pack_double(pk, fl->v.f);
    case PT_F_UINT:
        return msgpack_pack_uint64(pk, fl->v.u);
    case PT_F_INT: {
        uint64_t u = (uint64_t)fl->v.i;
        char be[8];
        for (int i = 0; i < 8; i++) be[i] = (char)(u >> (56 - 8 * i));
        if (msgpack_pack_ext(pk, 8, PT_WIRE_EXT_INT)) return -1;
        return msgpack_pack_ext_body(pk, be, 8);
    }
    case PT_F_STR:
        return pack_str(pk, fl->v.s);
    }
    return -1;
}

static int check_limits(const struct pt_frame *f)
{
    size_t tags = 0, fields = 0;
    if (f->nmeas > PT_WIRE_MAX_MEAS || f->nparts == 0 || f->nparts > PT_WIRE_MAX_PARTS ||
        f->part >= f->nparts)
        return PT_E_LIMIT;
    for (size_t i = 0; i < f->nmeas; i++) {
        const struct pt_meas *m = &f->meas[i];
        if (m->ntags > PT_WIRE_MAX_TAGS || m->nfields > PT_WIRE_MAX_FIELDS) return PT_E_LIMIT;
        tags += m->ntags;
        fields += m->nfields;
        if (m->name.len > PT_WIRE_MAX_STR) return PT_E_LIMIT;
        for (size_t j = 0; j < m->ntags; j++)
            if (m->tags[j].key.len > PT_WIRE_MAX_STR || m->tags[j].val.len > PT_WIRE_MAX_STR)
                return PT_E_LIMIT;
        for (size_t j = 0; j < m->nfields; j++)
            if (m->fields[j].key.len > PT_WIRE_MAX_STR ||
                (m->fields[j].type == PT_F_STR && m->fields[j].v.s.len > PT_WIRE_MAX_STR))
                return PT_E_LIMIT;
    }
    if (tags > PT_WIRE_MAX_ALL_TAGS || fields > PT_WIRE_MAX_ALL_FIELDS) return PT_E_LIMIT;
    const struct pt_str *ids[] = {&f->id.ns, &f->id.mcis, &f->id.vm, &f->id.csp, &f->id.host};
    for (size_t i = 0; i < IDENT_COUNT; i++)
        if (ids[i]->len > PT_WIRE_MAX_STR) return PT_E_LIMIT;
    return 0;
}

static int pack_sample(msgpack_packer *pk, const struct pt_frame *f, unsigned flags)
{
    if (msgpack_pack_array(pk, E_SAMPLE_COUNT) || msgpack_pack_uint8(pk, PT_WIRE_VERSION) ||
        msgpack_pack_uint8(pk, PT_WIRE_SAMPLE) || msgpack_pack_uint8(pk, (uint8_t)flags) ||
        msgpack_pack_uint64(pk, f->agent_id) || msgpack_pack_uint64(pk, f->epoch) ||
        msgpack_pack_uint64(pk, f->seq) || msgpack_pack_uint64(pk, (uint64_t)f->ts_ns) ||
        msgpack_pack_uint32(pk, f->interval_ms) || msgpack_pack_uint16(pk, f->part) ||
        msgpack_pack_uint16(pk, f->nparts))
        return -1;
    if (msgpack_pack_array(pk, IDENT_COUNT) || pack_str(pk, f->id.ns) || pack_str(pk, f->id.mcis) ||
        pack_str(pk, f->id.vm) || pack_str(pk, f->id.csp) || pack_str(pk, f->id.host))
        return -1;
    if (msgpack_pack_array(pk, f->nmeas)) return -1;
    for (size_t i = 0; i < f->nmeas; i++) {
        const struct pt_meas *m = &f->meas[i];
        if (msgpack_pack_array(pk, 3) || pack_name(pk, m->name) || msgpack_pack_map(pk, m->ntags))
            return -1;
        for (size_t j = 0; j < m->ntags; j++)
            if (pack_name(pk, m->tags[j].key) || pack_str(pk, m->tags[j].val)) return -1;
        if (msgpack_pack_map(pk, m->nfields)) return -1;
        for (size_t j = 0; j < m->nfields; j++)
            if (pack_field(pk, &m->fields[j])) return -1;
    }
    return 0;
}

int pt_wire_encode(const struct pt_frame *f, struct pt_wire_key *key, void *out, size_t cap,
                   size_t *outlen)
{
    int rc = check_limits(f);
    if (rc) return rc;
    size_t room = cap > PT_WIRE_MAX_FRAME ? PT_WIRE_MAX_FRAME : cap;
    size_t trailer = key ? PT_WIRE_MAC_LEN : 0;
    if (room < trailer) return PT_E_NOSPACE;
    struct wbuf w = {out, room - trailer, 0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &w, wbuf_write);
    if (pack_sample(&pk, f, key ? PT_WIRE_F_SIGNED : 0)) return PT_E_NOSPACE;
    if (key) {
        if (pt_wire_mac(key, out, w.len, (uint8_t *)out + w.len)) return PT_E_AUTH;
        w.len += PT_WIRE_MAC_LEN;
    }
    *outlen = w.len;
    return 0;
}

int pt_wire_fields_encode(const struct pt_field *fields, size_t n, void *out, size_t cap,
                          size_t *outlen)
{
    if (n > PT_WIRE_MAX_FIELDS) return PT_E_LIMIT;
    struct wbuf w = {out, cap, 0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &w, wbuf_write);
    if (msgpack_pack_map(&pk, n)) return PT_E_NOSPACE;
    for (size_t i = 0; i < n; i++)
        if (pack_field(&pk, &fields[i])) return PT_E_NOSPACE;
    *outlen = w.len;
    return 0;
}

/* ---- decoder ------------------------------------------------------------- */

struct pt_wire_dec *pt_wire_dec_new(void)
{
    return malloc(sizeof(struct pt_wire_dec));
}

void pt_wire_dec_free(struct pt_wire_dec *d)
{
    free(d);
}

/* A bounded reader over untrusted bytes. Every rd_*() checks the type and
 * that the whole object lies before end (msgpuck's mp_check_*()) before
 * decoding it with msgpuck's mp_decode_*(), and consumes exactly one
 * object. Counts are compared with the PT_WIRE_MAX_* ceilings before any
 * loop runs, and nothing is allocated, so a header claiming 2^32 elements
 * costs no more than any other byte. Strings point into the datagram. */
struct rd {
    const char *p, *end;
};

#define NEED(r)                                        \
    do {                                               \
        if ((r)->p >= (r)->end) return PT_E_TRUNCATED; \
    } while (0)

/* An unsigned integer, also when sent in a signed format (msgpack allows
 * a non-negative value in int8..int64). */
static int rd_uint(struct rd *r, uint64_t max, uint64_t *out)
{
    uint64_t v;
    NEED(r);
    switch (mp_typeof(*r->p)) {
    case MP_UINT:
        if (mp_check_uint(r->p, r->end) > 0) return PT_E_TRUNCATED;
        v = mp_decode_uint(&r->p);
        break;
    case MP_INT: {
        if (mp_check_int(r->p, r->end) > 0) return PT_E_TRUNCATED;
        int64_t i = mp_decode_int(&r->p);
        if (i < 0) return PT_E_TYPE;
        v = (uint64_t)i;
        break;
    }
    default:
        return PT_E_TYPE;
    }
    if (v > max) return PT_E_LIMIT;
    *out = v;
    return 0;
}

/* A string of 0..PT_WIRE_MAX_STR bytes (at least one when !empty_ok) of
 * UTF-8; control characters only when ctrl. */
static int rd_str(struct rd *r, bool empty_ok, bool ctrl, struct pt_str *out)
{
    NEED(r);
    if (mp_typeof(*r->p) != MP_STR) return PT_E_TYPE;
    if (mp_check_strl(r->p, r->end) > 0) return PT_E_TRUNCATED;
    uint32_t n = mp_decode_strl(&r->p);
    if (n > (size_t)(r->end - r->p)) return PT_E_TRUNCATED;
    const char *s = r->p;
    r->p += n;
    if (n > PT_WIRE_MAX_STR) return PT_E_LIMIT;
    if (n == 0 && !empty_ok) return PT_E_MALFORMED;
    if (!pt_utf8_ok(s, n, ctrl)) return PT_E_MALFORMED;
    out->p = n ? s : "";
    out->len = n;
    return 0;
}

/* A name: a symbol id or a non-empty string. */
static int rd_name(struct rd *r, struct pt_str *out)
{
    NEED(r);
    enum mp_type t = mp_typeof(*r->p);
    if (t == MP_UINT || t == MP_INT) {
        uint64_t id;
        int rc = rd_uint(r, UINT32_MAX, &id);
        if (rc == PT_E_TRUNCATED) return rc;
        if (rc) return PT_E_UNKNOWN;
        out->p = pt_sym_name((uint32_t)id, &out->len);
        return out->p ? 0 : PT_E_UNKNOWN;
    }
    return rd_str(r, false, false, out);
}

static int rd_value(struct rd *r, struct pt_field *fl)
{
    NEED(r);
    switch (mp_typeof(*r->p)) {
    case MP_FLOAT:
        if (mp_check_float(r->p, r->end) > 0) return PT_E_TRUNCATED;
        fl->type = PT_F_FLOAT;
        fl->v.f = mp_decode_float(&r->p);
        return isfinite(fl->v.f) ? 0 : PT_E_MALFORMED;
    case MP_DOUBLE:
        if (mp_check_double(r->p, r->end) > 0) return PT_E_TRUNCATED;
        fl->type = PT_F_FLOAT;
        fl->v.f = mp_decode_double(&r->p);
        return isfinite(fl->v.f) ? 0 : PT_E_MALFORMED;
    case MP_UINT:
        if (mp_check_uint(r->p, r->end) > 0) return PT_E_TRUNCATED;
        fl->type = PT_F_UINT;
        fl->v.u = mp_decode_uint(&r->p);
        return 0;
    case MP_INT: { /* a non-negative value in a signed format is a uint */
        if (mp_check_int(r->p, r->end) > 0) return PT_E_TRUNCATED;
        int64_t i = mp_decode_int(&r->p);
        fl->type = i < 0 ? PT_F_INT : PT_F_UINT;
        if (i < 0)
            fl->v.i = i;
        else
            fl->v.u = (uint64_t)i;
        return 0;
    }
    case MP_EXT: { /* only fixext 8 of type PT_WIRE_EXT_INT: an int64 */
        const unsigned char *b = (const unsigned char *)r->p;
        if (b[0] != 0xd7) return PT_E_TYPE;
        if (r->end - r->p < 10) return PT_E_TRUNCATED;
        if (b[1] != PT_WIRE_EXT_INT) return PT_E_TYPE;
        uint64_t u = 0;
        for (int i = 0; i < 8; i++) u = (u << 8) | b[2 + i];
        r->p += 10;
        fl->type = PT_F_INT;
        fl->v.i = (int64_t)u;
        return 0;
    }
    case MP_STR:
        fl->type = PT_F_STR;
        return rd_str(r, true, true, &fl->v.s);
    default:
        return PT_E_TYPE;
    }
}

/* A container header of type want (MP_ARRAY or MP_MAP) with at most max
 * entries: its size in *n. */
static int rd_container(struct rd *r, enum mp_type want, uint32_t max, uint32_t *n)
{
    NEED(r);
    if (mp_typeof(*r->p) != want) return PT_E_TYPE;
    if (want == MP_ARRAY) {
        if (mp_check_array(r->p, r->end) > 0) return PT_E_TRUNCATED;
        *n = mp_decode_array(&r->p);
    } else {
        if (mp_check_map(r->p, r->end) > 0) return PT_E_TRUNCATED;
        *n = mp_decode_map(&r->p);
    }
    return *n > max ? PT_E_LIMIT : 0;
}

static int rd_fields(struct rd *r, uint32_t n, struct pt_field *out)
{
    int rc;
    for (uint32_t j = 0; j < n; j++)
        if ((rc = rd_name(r, &out[j].key)) || (rc = rd_value(r, &out[j]))) return rc;
    return 0;
}

static int rd_ident(struct rd *r, struct pt_ident *id)
{
    uint32_t n;
    int rc = rd_container(r, MP_ARRAY, UINT32_MAX, &n);
    if (rc) return rc;
    if (n != IDENT_COUNT) return PT_E_MALFORMED;
    if ((rc = rd_str(r, false, false, &id->ns)) || (rc = rd_str(r, false, false, &id->mcis)) ||
        (rc = rd_str(r, false, false, &id->vm)) || (rc = rd_str(r, true, false, &id->csp)) ||
        (rc = rd_str(r, true, false, &id->host)))
        return rc;
    return 0;
}

static int rd_meas(struct pt_wire_dec *d, struct rd *r, struct pt_frame *f)
{
    uint32_t n;
    int rc = rd_container(r, MP_ARRAY, PT_WIRE_MAX_MEAS, &n);
    if (rc) return rc;
    size_t ntag = 0, nfield = 0;
    f->nmeas = (uint16_t)n;
    f->meas = d->meas;
    for (uint32_t i = 0; i < n; i++) {
        struct pt_meas *m = &d->meas[i];
        uint32_t parts, nt, nf;
        if ((rc = rd_container(r, MP_ARRAY, UINT32_MAX, &parts))) return rc;
        if (parts != 3) return PT_E_MALFORMED;
        if ((rc = rd_name(r, &m->name))) return rc;
        if ((rc = rd_container(r, MP_MAP, PT_WIRE_MAX_TAGS, &nt))) return rc;
        if (ntag + nt > PT_WIRE_MAX_ALL_TAGS) return PT_E_LIMIT;
        m->tags = &d->tags[ntag];
        m->ntags = (uint16_t)nt;
        for (uint32_t j = 0; j < nt; j++)
            if ((rc = rd_name(r, &m->tags[j].key)) ||
                (rc = rd_str(r, false, false, &m->tags[j].val)))
                return rc;
        if ((rc = rd_container(r, MP_MAP, PT_WIRE_MAX_FIELDS, &nf))) return rc;
        if (nfield + nf > PT_WIRE_MAX_ALL_FIELDS) return PT_E_LIMIT;
        m->fields = &d->fields[nfield];
        m->nfields = (uint16_t)nf;
        if ((rc = rd_fields(r, nf, m->fields))) return rc;
        ntag += nt;
        nfield += nf;
    }
    return 0;
}

int pt_wire_fields_decode(struct pt_wire_dec *d, const void *buf, size_t len,
                          struct pt_field **fields, uint16_t *n)
{
    if (len == 0) return PT_E_TRUNCATED;
    if (len > PT_WIRE_MAX_FRAME) return PT_E_LIMIT;
    struct rd r = {buf, (const char *)buf + len};
    uint32_t nf;
    int rc = rd_container(&r, MP_MAP, PT_WIRE_MAX_FIELDS, &nf);
    if (rc) return rc;
    if ((rc = rd_fields(&r, nf, d->fields))) return rc;
    if (r.p != r.end) return PT_E_MALFORMED;
    *fields = d->fields;
    *n = (uint16_t)nf;
    return 0;
}

int pt_wire_decode(struct pt_wire_dec *d, const void *buf, size_t len, struct pt_frame *f)
{
    memset(f, 0, sizeof *f);
    if (len == 0) return PT_E_TRUNCATED;
    if (len > PT_WIRE_MAX_FRAME) return PT_E_LIMIT;
    struct rd r = {buf, (const char *)buf + len};
    uint32_t n;
    uint64_t v;
    int rc = rd_container(&r, MP_ARRAY, UINT32_MAX, &n);
    if (rc) return rc;
    /* Version first, so a future version is reported as such whatever its
     * shape. */
    if (n < 1) return PT_E_MALFORMED;
    if ((rc = rd_uint(&r, UINT8_MAX, &v))) return rc;
    if (v != PT_WIRE_VERSION) return PT_E_VERSION;
    f->version = (uint8_t)v;
    if (n != E_SAMPLE_COUNT) return PT_E_MALFORMED;
    if ((rc = rd_uint(&r, UINT8_MAX, &v))) return rc;
    if (v != PT_WIRE_SAMPLE) return PT_E_MALFORMED; /* acks come from the collector only */
    f->kind = (uint8_t)v;
    if ((rc = rd_uint(&r, UINT8_MAX, &v))) return rc;
    if (v & ~(uint64_t)PT_WIRE_F_KNOWN) return PT_E_MALFORMED;
    f->flags = (uint8_t)v;
    if ((rc = rd_uint(&r, UINT64_MAX, &f->agent_id))) return rc;
    if (f->agent_id == 0) return PT_E_MALFORMED;
    if ((rc = rd_uint(&r, UINT64_MAX, &f->epoch)) || (rc = rd_uint(&r, UINT64_MAX, &f->seq)))
        return rc;
    if ((rc = rd_uint(&r, INT64_MAX, &v))) return rc;
    f->ts_ns = (int64_t)v;
    if ((rc = rd_uint(&r, UINT32_MAX, &v))) return rc;
    f->interval_ms = (uint32_t)v;
    uint64_t part, nparts;
    if ((rc = rd_uint(&r, PT_WIRE_MAX_PARTS, &part)) ||
        (rc = rd_uint(&r, PT_WIRE_MAX_PARTS, &nparts)))
        return rc;
    f->part = (uint16_t)part;
    f->nparts = (uint16_t)nparts;
    if (f->nparts == 0 || f->part >= f->nparts || f->seq == 0) return PT_E_MALFORMED;
    if ((rc = rd_ident(&r, &f->id)) || (rc = rd_meas(d, &r, f))) return rc;

    /* The trailer: exactly a MAC when signed, nothing when not. */
    f->body_len = (size_t)(r.p - (const char *)buf);
    size_t rest = len - f->body_len;
    if (f->flags & PT_WIRE_F_SIGNED) {
        if (rest < PT_WIRE_MAC_LEN) return PT_E_TRUNCATED;
        if (rest > PT_WIRE_MAC_LEN) return PT_E_MALFORMED;
        f->mac = (const uint8_t *)buf + f->body_len;
    } else if (rest) {
        return PT_E_MALFORMED;
    }
    return 0;
}

/* ---- acknowledgement frames ---------------------------------------------- */

/* Elements of a v1 ack frame (docs/protocol.md). */
enum { A_VERSION, A_KIND, A_FLAGS, A_AGENT, A_EPOCH, A_CUM, A_TOP, A_GAPS, A_NOW, E_ACK_COUNT };

/* The gap rules: ascending, disjoint, not adjacent to cum, within
 * (cum, top). */
static bool ack_gaps_ok(const struct pt_wire_ack *a)
{
    if (a->top < a->cum || a->ngaps > PT_WIRE_ACK_MAX_GAPS) return false;
    uint64_t after = a->cum; /* each gap starts above this */
    for (uint16_t i = 0; i < a->ngaps; i++) {
        uint64_t first = a->gaps[i][0], last = a->gaps[i][1];
        if (first <= after || last < first || last >= a->top) return false;
        after = last;
    }
    return true;
}

int pt_wire_ack_encode(const struct pt_wire_ack *a, struct pt_wire_key *key, void *out, size_t cap,
                       size_t *outlen)
{
    if (!ack_gaps_ok(a) || a->agent_id == 0) return PT_E_MALFORMED;
    size_t trailer = key ? PT_WIRE_MAC_LEN : 0;
    if (cap < trailer) return PT_E_NOSPACE;
    struct wbuf w = {out, cap - trailer, 0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &w, wbuf_write);
    if (msgpack_pack_array(&pk, E_ACK_COUNT) || msgpack_pack_uint8(&pk, PT_WIRE_VERSION) ||
        msgpack_pack_uint8(&pk, PT_WIRE_ACK) ||
        msgpack_pack_uint8(&pk, key ? PT_WIRE_F_SIGNED : 0) ||
        msgpack_pack_uint64(&pk, a->agent_id) || msgpack_pack_uint64(&pk, a->epoch) ||
        msgpack_pack_uint64(&pk, a->cum) || msgpack_pack_uint64(&pk, a->top) ||
        msgpack_pack_array(&pk, 2u * a->ngaps))
        return PT_E_NOSPACE;
    for (uint16_t i = 0; i < a->ngaps; i++)
        if (msgpack_pack_uint64(&pk, a->gaps[i][0]) || msgpack_pack_uint64(&pk, a->gaps[i][1]))
            return PT_E_NOSPACE;
    if (msgpack_pack_uint64(&pk, a->now_ns < 0 ? 0 : (uint64_t)a->now_ns)) return PT_E_NOSPACE;
    if (key) {
        if (pt_wire_mac(key, out, w.len, (uint8_t *)out + w.len)) return PT_E_AUTH;
        w.len += PT_WIRE_MAC_LEN;
    }
    *outlen = w.len;
    return 0;
}

int pt_wire_ack_decode(const void *buf, size_t len, struct pt_wire_ack *a)
{
    memset(a, 0, sizeof *a);
    if (len == 0) return PT_E_TRUNCATED;
    if (len > PT_WIRE_MAX_FRAME) return PT_E_LIMIT;
    struct rd r = {buf, (const char *)buf + len};
    uint32_t n, ng;
    uint64_t v, flags;
    int rc = rd_container(&r, MP_ARRAY, UINT32_MAX, &n);
    if (rc) return rc;
    if (n < 1) return PT_E_MALFORMED;
    if ((rc = rd_uint(&r, UINT8_MAX, &v))) return rc;
    if (v != PT_WIRE_VERSION) return PT_E_VERSION;
    if (n != E_ACK_COUNT) return PT_E_MALFORMED;
    if ((rc = rd_uint(&r, UINT8_MAX, &v))) return rc;
    if (v != PT_WIRE_ACK) return PT_E_MALFORMED;
    if ((rc = rd_uint(&r, UINT8_MAX, &flags))) return rc;
    if (flags & ~(uint64_t)PT_WIRE_F_KNOWN) return PT_E_MALFORMED;
    if ((rc = rd_uint(&r, UINT64_MAX, &a->agent_id)) || (rc = rd_uint(&r, UINT64_MAX, &a->epoch)) ||
        (rc = rd_uint(&r, UINT64_MAX, &a->cum)) || (rc = rd_uint(&r, UINT64_MAX, &a->top)))
        return rc;
    if (a->agent_id == 0) return PT_E_MALFORMED;
    if ((rc = rd_container(&r, MP_ARRAY, 2 * PT_WIRE_ACK_MAX_GAPS, &ng))) return rc;
    if (ng % 2) return PT_E_MALFORMED;
    a->ngaps = (uint16_t)(ng / 2);
    for (uint16_t i = 0; i < a->ngaps; i++)
        if ((rc = rd_uint(&r, UINT64_MAX, &a->gaps[i][0])) ||
            (rc = rd_uint(&r, UINT64_MAX, &a->gaps[i][1])))
            return rc;
    if ((rc = rd_uint(&r, INT64_MAX, &v))) return rc;
    a->now_ns = (int64_t)v;
    if (!ack_gaps_ok(a)) return PT_E_MALFORMED;

    a->body_len = (size_t)(r.p - (const char *)buf);
    size_t rest = len - a->body_len;
    if (flags & PT_WIRE_F_SIGNED) {
        if (rest < PT_WIRE_MAC_LEN) return PT_E_TRUNCATED;
        if (rest > PT_WIRE_MAC_LEN) return PT_E_MALFORMED;
        a->mac = (const uint8_t *)buf + a->body_len;
    } else if (rest) {
        return PT_E_MALFORMED;
    }
    return 0;
}

int pt_wire_ack_verify(const struct pt_wire_ack *a, const void *buf, struct pt_wire_key *key)
{
    uint8_t mac[PT_WIRE_MAC_LEN];
    if (!a->mac) return PT_E_UNSIGNED;
    if (pt_wire_mac(key, buf, a->body_len, mac)) return PT_E_AUTH;
    return pt_ct_equal(mac, sizeof mac, a->mac, PT_WIRE_MAC_LEN) ? 0 : PT_E_AUTH;
}

bool pt_wire_ack_covers(const struct pt_wire_ack *a, uint64_t seq)
{
    if (seq <= a->cum) return true;
    if (seq > a->top) return false;
    for (uint16_t i = 0; i < a->ngaps; i++) {
        if (seq < a->gaps[i][0]) return true; /* gaps ascend: none further holds seq */
        if (seq <= a->gaps[i][1]) return false;
    }
    return true;
}
