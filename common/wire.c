/* Wire protocol v1: frame encoder, hardened decoder and HMAC trailer. */
#include "pt/wire.h"
#include "pt/catalog.h"
#include "pt/err.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

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

/* Zone chunk big enough that a maximal frame never needs a second chunk:
 * after msgpack_plausible() each msgpack byte yields at most one 24-byte
 * object. */
#define ZONE_CHUNK (PT_WIRE_MAX_FRAME * sizeof(msgpack_object) + 4096)

struct pt_wire_dec {
    msgpack_zone zone;
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

int pt_wire_key_init(struct pt_wire_key *k, const uint8_t *key, size_t len)
{
    k->mac_ctx = NULL;
    if (!key || len == 0) return -EINVAL;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!mac) return -ENOSYS;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac); /* the context keeps its own reference */
    if (!ctx) return -ENOMEM;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (!EVP_MAC_init(ctx, key, len, params)) {
        EVP_MAC_CTX_free(ctx);
        return -EINVAL;
    }
    k->mac_ctx = ctx;
    return 0;
}

void pt_wire_key_close(struct pt_wire_key *k)
{
    EVP_MAC_CTX_free(k->mac_ctx);
    k->mac_ctx = NULL;
}

int pt_wire_mac(struct pt_wire_key *k, const void *data, size_t len, uint8_t *out)
{
    EVP_MAC_CTX *ctx = k->mac_ctx;
    size_t outl = 0;
    /* A NULL key re-initialises with the key already set: no re-hashing of
     * the key, no allocation. */
    if (!ctx || !EVP_MAC_init(ctx, NULL, 0, NULL) || !EVP_MAC_update(ctx, data, len) ||
        !EVP_MAC_final(ctx, out, &outl, PT_WIRE_MAC_LEN) || outl != PT_WIRE_MAC_LEN)
        return PT_E_AUTH;
    return 0;
}

int pt_wire_verify(const struct pt_frame *f, const void *buf, struct pt_wire_key *key)
{
    uint8_t mac[PT_WIRE_MAC_LEN];
    if (!f->mac) return PT_E_UNSIGNED;
    if (pt_wire_mac(key, buf, f->body_len, mac)) return PT_E_AUTH;
    return CRYPTO_memcmp(mac, f->mac, PT_WIRE_MAC_LEN) == 0 ? 0 : PT_E_AUTH;
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

/* ---- decoder ------------------------------------------------------------- */

/* msgpack-c reserves room for every element a container header claims before
 * it reads any of them, so five bytes claiming 2^32 elements would make it
 * allocate about 100 GB, before any signature could be checked. This pass
 * walks the encoding once, allocating nothing, and refuses input that owes
 * more objects than it has bytes left (every object takes at least one
 * byte). That bounds msgpack-c's allocations by the input's length, which
 * PT_WIRE_MAX_FRAME bounds. Returns 0, PT_E_TRUNCATED or PT_E_MALFORMED. */
/* What a msgpack lead byte announces: the bytes of payload that follow it
 * directly (fixed), or the width of a length (str, bin, ext) or count
 * (array, map) field. */
enum { MP_SCALAR, MP_LEN, MP_EXTLEN, MP_ARRAY, MP_MAP, MP_BAD };
struct mp_lead {
    uint8_t kind, n; /* MP_SCALAR: payload bytes; else: width of the field */
};

static struct mp_lead mp_leads[256];
static pthread_once_t mp_once = PTHREAD_ONCE_INIT;

static void mp_leads_init(void)
{
    static const struct {
        uint8_t b;
        struct mp_lead l;
    } special[] = {
        {0xc0, {MP_SCALAR, 0}},  {0xc1, {MP_BAD, 0}},    {0xc2, {MP_SCALAR, 0}},
        {0xc3, {MP_SCALAR, 0}},  {0xc4, {MP_LEN, 1}},    {0xc5, {MP_LEN, 2}},
        {0xc6, {MP_LEN, 4}},     {0xc7, {MP_EXTLEN, 1}}, {0xc8, {MP_EXTLEN, 2}},
        {0xc9, {MP_EXTLEN, 4}},  {0xca, {MP_SCALAR, 4}}, {0xcb, {MP_SCALAR, 8}},
        {0xcc, {MP_SCALAR, 1}},  {0xcd, {MP_SCALAR, 2}}, {0xce, {MP_SCALAR, 4}},
        {0xcf, {MP_SCALAR, 8}},  {0xd0, {MP_SCALAR, 1}}, {0xd1, {MP_SCALAR, 2}},
        {0xd2, {MP_SCALAR, 4}},  {0xd3, {MP_SCALAR, 8}}, {0xd4, {MP_SCALAR, 2}},
        {0xd5, {MP_SCALAR, 3}},  {0xd6, {MP_SCALAR, 5}}, {0xd7, {MP_SCALAR, 9}},
        {0xd8, {MP_SCALAR, 17}}, {0xd9, {MP_LEN, 1}},    {0xda, {MP_LEN, 2}},
        {0xdb, {MP_LEN, 4}},     {0xdc, {MP_ARRAY, 2}},  {0xdd, {MP_ARRAY, 4}},
        {0xde, {MP_MAP, 2}},     {0xdf, {MP_MAP, 4}},
    };
    for (unsigned b = 0; b < 256; b++) {
        if (b <= 0x7f || b >= 0xe0)
            mp_leads[b] = (struct mp_lead){MP_SCALAR, 0};
        else if (b <= 0x8f)
            mp_leads[b] = (struct mp_lead){MP_MAP, 0}; /* fixmap */
        else if (b <= 0x9f)
            mp_leads[b] = (struct mp_lead){MP_ARRAY, 0}; /* fixarray */
        else if (b <= 0xbf)
            mp_leads[b] = (struct mp_lead){MP_SCALAR, (uint8_t)(b & 0x1f)};
    }
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
        mp_leads[special[i].b] = special[i].l;
}

/* The table is built by pt_wire_dec_new(), which every decode needs. */
static int msgpack_plausible(const unsigned char *p, size_t n)
{
    uint64_t owed = 1; /* objects still to come before the root is complete */
    size_t i = 0;
    while (owed) {
        if (i >= n) return PT_E_TRUNCATED;
        unsigned b = p[i++];
        struct mp_lead l = mp_leads[b];
        owed--;
        if (l.kind == MP_SCALAR) {
            if (l.n > n - i) return PT_E_TRUNCATED;
            i += l.n;
            continue;
        }
        if (l.kind == MP_BAD) return PT_E_MALFORMED;
        uint64_t v;
        if (l.n == 0) { /* fixmap, fixarray: the count is in the lead byte */
            v = b & 0x0f;
        } else {
            if (n - i < l.n) return PT_E_TRUNCATED;
            v = 0;
            for (unsigned k = 0; k < l.n; k++) v = v << 8 | p[i + k];
            i += l.n;
        }
        if (l.kind == MP_ARRAY || l.kind == MP_MAP) {
            owed += l.kind == MP_MAP ? 2 * v : v;
            if (owed > n - i) return PT_E_TRUNCATED;
        } else { /* MP_LEN, MP_EXTLEN (one type byte more) */
            uint64_t len = v + (l.kind == MP_EXTLEN);
            if (len > n - i) return PT_E_TRUNCATED;
            i += (size_t)len;
        }
    }
    return 0;
}

struct pt_wire_dec *pt_wire_dec_new(void)
{
    pthread_once(&mp_once, mp_leads_init);
    struct pt_wire_dec *d = malloc(sizeof *d);
    if (!d) return NULL;
    if (!msgpack_zone_init(&d->zone, ZONE_CHUNK)) {
        free(d);
        return NULL;
    }
    return d;
}

void pt_wire_dec_free(struct pt_wire_dec *d)
{
    if (!d) return;
    msgpack_zone_destroy(&d->zone);
    free(d);
}

static int get_u64(const msgpack_object *o, uint64_t max, uint64_t *out)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) return PT_E_TYPE;
    if (o->via.u64 > max) return PT_E_LIMIT;
    *out = o->via.u64;
    return 0;
}

/* A string of 0..PT_WIRE_MAX_STR bytes (at least one when !empty_ok) of
 * UTF-8; control characters only when ctrl. */
static int get_str(const msgpack_object *o, bool empty_ok, bool ctrl, struct pt_str *out)
{
    if (o->type != MSGPACK_OBJECT_STR) return PT_E_TYPE;
    uint32_t n = o->via.str.size;
    if (n > PT_WIRE_MAX_STR) return PT_E_LIMIT;
    if (n == 0 && !empty_ok) return PT_E_MALFORMED;
    if (!pt_utf8_ok(o->via.str.ptr, n, ctrl)) return PT_E_MALFORMED;
    out->p = n ? o->via.str.ptr : ""; /* msgpack-c may give NULL for "" */
    out->len = n;
    return 0;
}

/* A name: a symbol id or a non-empty string. */
static int get_name(const msgpack_object *o, struct pt_str *out)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > UINT32_MAX) return PT_E_UNKNOWN;
        out->p = pt_sym_name((uint32_t)o->via.u64, &out->len);
        return out->p ? 0 : PT_E_UNKNOWN;
    }
    return get_str(o, false, false, out);
}

static int get_value(const msgpack_object *o, struct pt_field *fl)
{
    switch (o->type) {
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (!isfinite(o->via.f64)) return PT_E_MALFORMED;
        fl->type = PT_F_FLOAT;
        fl->v.f = o->via.f64;
        return 0;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        fl->type = PT_F_UINT;
        fl->v.u = o->via.u64;
        return 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        fl->type = PT_F_INT;
        fl->v.i = o->via.i64;
        return 0;
    case MSGPACK_OBJECT_EXT: {
        if (o->via.ext.type != PT_WIRE_EXT_INT || o->via.ext.size != 8) return PT_E_TYPE;
        const unsigned char *b = (const unsigned char *)o->via.ext.ptr;
        uint64_t u = 0;
        for (int i = 0; i < 8; i++) u = (u << 8) | b[i];
        fl->type = PT_F_INT;
        fl->v.i = (int64_t)u;
        return 0;
    }
    case MSGPACK_OBJECT_STR:
        fl->type = PT_F_STR;
        return get_str(o, true, true, &fl->v.s);
    default:
        return PT_E_TYPE;
    }
}

static int decode_fields(const msgpack_object *o, struct pt_field *out);

static int decode_ident(const msgpack_object *o, struct pt_ident *id)
{
    if (o->type != MSGPACK_OBJECT_ARRAY) return PT_E_TYPE;
    if (o->via.array.size != IDENT_COUNT) return PT_E_MALFORMED;
    const msgpack_object *e = o->via.array.ptr;
    int rc;
    if ((rc = get_str(&e[0], false, false, &id->ns)) ||
        (rc = get_str(&e[1], false, false, &id->mcis)) ||
        (rc = get_str(&e[2], false, false, &id->vm)) ||
        (rc = get_str(&e[3], true, false, &id->csp)) ||
        (rc = get_str(&e[4], true, false, &id->host)))
        return rc;
    return 0;
}

static int decode_meas(struct pt_wire_dec *d, const msgpack_object *o, struct pt_frame *f)
{
    if (o->type != MSGPACK_OBJECT_ARRAY) return PT_E_TYPE;
    if (o->via.array.size > PT_WIRE_MAX_MEAS) return PT_E_LIMIT;
    size_t ntag = 0, nfield = 0;
    f->nmeas = (uint16_t)o->via.array.size;
    f->meas = d->meas;
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        const msgpack_object *mo = &o->via.array.ptr[i];
        struct pt_meas *m = &d->meas[i];
        int rc;
        if (mo->type != MSGPACK_OBJECT_ARRAY) return PT_E_TYPE;
        if (mo->via.array.size != 3) return PT_E_MALFORMED;
        const msgpack_object *tags = &mo->via.array.ptr[1], *fields = &mo->via.array.ptr[2];
        if ((rc = get_name(&mo->via.array.ptr[0], &m->name))) return rc;
        if (tags->type != MSGPACK_OBJECT_MAP || fields->type != MSGPACK_OBJECT_MAP)
            return PT_E_TYPE;
        if (tags->via.map.size > PT_WIRE_MAX_TAGS || fields->via.map.size > PT_WIRE_MAX_FIELDS)
            return PT_E_LIMIT;
        if (ntag + tags->via.map.size > PT_WIRE_MAX_ALL_TAGS ||
            nfield + fields->via.map.size > PT_WIRE_MAX_ALL_FIELDS)
            return PT_E_LIMIT;
        m->tags = &d->tags[ntag];
        m->ntags = (uint16_t)tags->via.map.size;
        for (uint32_t j = 0; j < tags->via.map.size; j++) {
            const msgpack_object_kv *kv = &tags->via.map.ptr[j];
            if ((rc = get_name(&kv->key, &m->tags[j].key)) ||
                (rc = get_str(&kv->val, false, false, &m->tags[j].val)))
                return rc;
        }
        m->fields = &d->fields[nfield];
        m->nfields = (uint16_t)fields->via.map.size;
        if ((rc = decode_fields(fields, m->fields))) return rc;
        ntag += m->ntags;
        nfield += m->nfields;
    }
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

static int decode_fields(const msgpack_object *o, struct pt_field *out)
{
    int rc;
    for (uint32_t j = 0; j < o->via.map.size; j++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[j];
        if ((rc = get_name(&kv->key, &out[j].key)) || (rc = get_value(&kv->val, &out[j])))
            return rc;
    }
    return 0;
}

int pt_wire_fields_decode(struct pt_wire_dec *d, const void *buf, size_t len,
                          struct pt_field **fields, uint16_t *n)
{
    if (len == 0) return PT_E_TRUNCATED;
    if (len > PT_WIRE_MAX_FRAME) return PT_E_LIMIT;
    int rc = msgpack_plausible(buf, len);
    if (rc) return rc;
    msgpack_zone_clear(&d->zone);
    msgpack_object o;
    size_t off = 0;
    int ur = msgpack_unpack(buf, len, &off, &d->zone, &o);
    if (ur == MSGPACK_UNPACK_CONTINUE) return PT_E_TRUNCATED;
    if (ur != MSGPACK_UNPACK_SUCCESS) return PT_E_MALFORMED;
    if (o.type != MSGPACK_OBJECT_MAP) return PT_E_TYPE;
    if (o.via.map.size > PT_WIRE_MAX_FIELDS) return PT_E_LIMIT;
    rc = decode_fields(&o, d->fields);
    if (rc) return rc;
    *fields = d->fields;
    *n = (uint16_t)o.via.map.size;
    return 0;
}

int pt_wire_decode(struct pt_wire_dec *d, const void *buf, size_t len, struct pt_frame *f)
{
    memset(f, 0, sizeof *f);
    if (len == 0) return PT_E_TRUNCATED;
    if (len > PT_WIRE_MAX_FRAME) return PT_E_LIMIT;
    int rc = msgpack_plausible(buf, len);
    if (rc) return rc;

    msgpack_zone_clear(&d->zone);
    msgpack_object root;
    size_t off = 0;
    switch (msgpack_unpack(buf, len, &off, &d->zone, &root)) {
    case MSGPACK_UNPACK_SUCCESS:
    case MSGPACK_UNPACK_EXTRA_BYTES:
        break;
    case MSGPACK_UNPACK_CONTINUE:
        return PT_E_TRUNCATED;
    case MSGPACK_UNPACK_NOMEM_ERROR:
        return -ENOMEM;
    default:
        return PT_E_MALFORMED;
    }
    if (root.type != MSGPACK_OBJECT_ARRAY) return PT_E_TYPE;
    const msgpack_object *e = root.via.array.ptr;
    uint32_t n = root.via.array.size;
    uint64_t v;

    /* Version first, so a future version is reported as such whatever its
     * shape. */
    if (n < 1) return PT_E_MALFORMED;
    if ((rc = get_u64(&e[E_VERSION], UINT8_MAX, &v))) return rc;
    if (v != PT_WIRE_VERSION) return PT_E_VERSION;
    f->version = (uint8_t)v;
    if (n < E_AGENT + 1) return PT_E_MALFORMED;
    if ((rc = get_u64(&e[E_KIND], UINT8_MAX, &v))) return rc;
    if (v != PT_WIRE_SAMPLE) return PT_E_MALFORMED; /* acks come from the collector only */
    f->kind = (uint8_t)v;
    if ((rc = get_u64(&e[E_FLAGS], UINT8_MAX, &v))) return rc;
    if (v & ~(uint64_t)PT_WIRE_F_KNOWN) return PT_E_MALFORMED;
    f->flags = (uint8_t)v;
    if ((rc = get_u64(&e[E_AGENT], UINT64_MAX, &f->agent_id))) return rc;
    if (f->agent_id == 0) return PT_E_MALFORMED;
    if (n != E_SAMPLE_COUNT) return PT_E_MALFORMED;

    /* The trailer: exactly a MAC when signed, nothing when not. */
    size_t rest = len - off;
    if (f->flags & PT_WIRE_F_SIGNED) {
        if (rest < PT_WIRE_MAC_LEN) return PT_E_TRUNCATED;
        if (rest > PT_WIRE_MAC_LEN) return PT_E_MALFORMED;
        f->mac = (const uint8_t *)buf + off;
    } else if (rest) {
        return PT_E_MALFORMED;
    }
    f->body_len = off;

    if ((rc = get_u64(&e[E_EPOCH], UINT64_MAX, &f->epoch)) ||
        (rc = get_u64(&e[E_SEQ], UINT64_MAX, &f->seq)))
        return rc;
    if ((rc = get_u64(&e[E_TS], INT64_MAX, &v))) return rc;
    f->ts_ns = (int64_t)v;
    if ((rc = get_u64(&e[E_INTERVAL], UINT32_MAX, &v))) return rc;
    f->interval_ms = (uint32_t)v;
    if ((rc = get_u64(&e[E_NPARTS], PT_WIRE_MAX_PARTS, &v))) return rc;
    f->nparts = (uint16_t)v;
    if ((rc = get_u64(&e[E_PART], PT_WIRE_MAX_PARTS, &v))) return rc;
    f->part = (uint16_t)v;
    if (f->nparts == 0 || f->part >= f->nparts || f->seq == 0) return PT_E_MALFORMED;
    if ((rc = decode_ident(&e[E_IDENT], &f->id))) return rc;
    return decode_meas(d, &e[E_MEAS], f);
}
