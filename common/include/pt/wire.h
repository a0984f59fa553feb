/* Wire protocol v1: one msgpack frame per UDP datagram, authenticated by an
 * HMAC-SHA256 trailer under the agent's key. docs/protocol.md is the byte
 * layout; this header is its C face.
 *
 * Decoding is zero-copy: strings in a decoded frame point into the datagram
 * and the arrays point into the decoder, so both must outlive the frame.
 * Every length and type is checked before use, and the PT_WIRE_MAX_*
 * ceilings below bound all work a hostile datagram can cause. */
#ifndef PT_WIRE_H
#define PT_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PT_WIRE_VERSION 1

/* Frame kinds (element 1). */
enum pt_wire_kind { PT_WIRE_SAMPLE = 1, PT_WIRE_ACK = 2 };

/* Flags (element 2). Unknown bits make the frame invalid in v1. */
#define PT_WIRE_F_SIGNED 0x01u /* a PT_WIRE_MAC_LEN-byte HMAC trailer follows */
#define PT_WIRE_F_KNOWN  PT_WIRE_F_SIGNED

/* Hard ceilings. A frame breaking any of them is rejected whole. */
#define PT_WIRE_MAX_FRAME      8192 /* datagram bytes, trailer included */
#define PT_WIRE_TARGET_FRAME   1400 /* what encoders aim for (fits one MTU) */
#define PT_WIRE_MAX_MEAS       64   /* measurements per frame */
#define PT_WIRE_MAX_TAGS       8    /* tags per measurement */
#define PT_WIRE_MAX_FIELDS     128  /* fields per measurement */
#define PT_WIRE_MAX_ALL_TAGS   256  /* tags per frame */
#define PT_WIRE_MAX_ALL_FIELDS 1024 /* fields per frame */
#define PT_WIRE_MAX_STR        255  /* bytes of any string */
#define PT_WIRE_MAX_PARTS      64   /* parts of one multi-part sample */
#define PT_WIRE_MAC_LEN        32   /* HMAC-SHA256 */
#define PT_WIRE_KEY_LEN        32   /* agent keys are 32 random bytes */

/* Extension type carrying a signed 64-bit integer field (8 bytes, big endian). */
#define PT_WIRE_EXT_INT 1

struct pt_str {
    const char *p; /* not NUL-terminated */
    uint32_t len;
};
#define PT_STR(lit) ((struct pt_str){(lit), (uint32_t)(sizeof(lit) - 1)})
struct pt_str pt_str_c(const char *s); /* wraps a C string (may be NULL) */
bool pt_str_eq(struct pt_str a, const char *s);

struct pt_tag {
    struct pt_str key, val;
};

struct pt_field {
    struct pt_str key;
    uint8_t type; /* enum pt_ftype (pt/catalog.h) */
    union {
        double f;
        int64_t i;
        uint64_t u;
        struct pt_str s;
    } v;
};

struct pt_meas {
    struct pt_str name;
    struct pt_tag *tags;
    struct pt_field *fields;
    uint16_t ntags, nfields;
};

struct pt_ident {
    struct pt_str ns, mcis, vm, csp, host;
};

struct pt_frame {
    uint8_t version, kind, flags;
    uint64_t agent_id;     /* assigned at registration, never 0 */
    uint64_t epoch;        /* agent start (Unix s): a restart begins a new epoch */
    uint64_t seq;          /* per agent and epoch, +1 per frame, from 1 */
    int64_t ts_ns;         /* sample time, ns since the Unix epoch (agent clock) */
    uint32_t interval_ms;  /* collection interval */
    uint16_t part, nparts; /* part index (0-based) and count of one sample */
    struct pt_ident id;
    struct pt_meas *meas;
    uint16_t nmeas;
    /* Set by pt_wire_decode(): */
    size_t body_len;    /* bytes covered by the MAC */
    const uint8_t *mac; /* the trailer, or NULL when unsigned */
};

/* HMAC key, prepared once per agent. Not thread-safe: one user at a time.
 * The crypto backend the library is built with defines these three
 * functions: OpenSSL in pantala-common (common/crypto_openssl.c), the
 * built-in HMAC-SHA256 in pantala-common-agent (common/crypto_builtin.c). */
struct pt_wire_key {
    void *mac_ctx; /* EVP_MAC_CTX, or struct pt_hmac_sha256 (pt/sha256.h) */
};
int pt_wire_key_init(struct pt_wire_key *k, const uint8_t *key, size_t len);
void pt_wire_key_close(struct pt_wire_key *k);

/* Computes HMAC-SHA256 of data under k into out[PT_WIRE_MAC_LEN]. */
int pt_wire_mac(struct pt_wire_key *k, const void *data, size_t len, uint8_t *out);

/* Encodes f (header, identity, measurements) into out. With key, sets the
 * SIGNED flag and appends the trailer; without, the frame is unsigned.
 * f->version, flags, body_len and mac are ignored. Returns 0,
 * -PT_E_NOSPACE when cap is too small, or PT_E_LIMIT when f breaks a
 * ceiling. */
int pt_wire_encode(const struct pt_frame *f, struct pt_wire_key *key, void *out, size_t cap,
                   size_t *outlen);

/* Decoder state: the arrays a decoded frame points into. One per thread. */
struct pt_wire_dec;
struct pt_wire_dec *pt_wire_dec_new(void);
void pt_wire_dec_free(struct pt_wire_dec *d);

/* Decodes buf[0..len) into f. On success f's strings point into buf and its
 * arrays into d, both valid until the next decode with d. The signature is
 * not checked here: call pt_wire_verify() with the agent's key. Returns 0 or
 * PT_E_TRUNCATED, PT_E_TYPE, PT_E_LIMIT, PT_E_VERSION, PT_E_MALFORMED,
 * PT_E_UNKNOWN (unknown symbol id). */
int pt_wire_decode(struct pt_wire_dec *d, const void *buf, size_t len, struct pt_frame *f);

/* Checks the trailer of a decoded frame under key: 0, PT_E_UNSIGNED when the
 * frame has none, PT_E_AUTH when it does not verify. Constant time. */
int pt_wire_verify(const struct pt_frame *f, const void *buf, struct pt_wire_key *key);

/* A field map on its own, in the frame's encoding (names as symbol ids
 * where they have one): the embedded store keeps fields this way.
 * pt_wire_fields_decode() gives fields that point into buf and into d,
 * valid until the next decode with d. */
int pt_wire_fields_encode(const struct pt_field *fields, size_t n, void *out, size_t cap,
                          size_t *outlen);
int pt_wire_fields_decode(struct pt_wire_dec *d, const void *buf, size_t len,
                          struct pt_field **fields, uint16_t *n);

/* Validates a string for identity, names and tags: 1..PT_WIRE_MAX_STR bytes
 * of UTF-8 without control characters. */
bool pt_wire_name_ok(const char *p, size_t len);
/* Validates p[0..len) as UTF-8; with ctrl false, also refuses C0 controls
 * and DEL. */
bool pt_utf8_ok(const char *p, size_t len, bool ctrl);

/* ---- acknowledgement frames (kind 2, collector -> agent) -----------------
 *
 * An ack tells an agent which of its frames of one epoch are durable at the
 * collector: every seq <= cum, and every seq in (cum, top] except the gap
 * ranges listed. docs/protocol.md, "Acknowledgement frame", is the layout. */
#define PT_WIRE_ACK_MAX_GAPS 32 /* gap ranges one ack lists at most */

struct pt_wire_ack {
    uint64_t agent_id;
    uint64_t epoch;
    uint64_t cum;   /* every seq 1..cum is acknowledged; 0: none yet */
    uint64_t top;   /* the ack speaks for seqs up to top (top >= cum) */
    int64_t now_ns; /* collector wall clock when the ack was made */
    uint16_t ngaps;
    /* Not acknowledged: gaps[i][0]..gaps[i][1] (inclusive), ascending,
     * disjoint, each within (cum, top). */
    uint64_t gaps[PT_WIRE_ACK_MAX_GAPS][2];
    /* Set by pt_wire_ack_decode(): */
    size_t body_len;
    const uint8_t *mac;
};

/* Encodes a (checked: the gap rules above) signed with key (which may be
 * NULL for an unsigned ack, used only by tests and insecure labs). Returns
 * 0, PT_E_MALFORMED for an invalid a, or PT_E_NOSPACE. */
int pt_wire_ack_encode(const struct pt_wire_ack *a, struct pt_wire_key *key, void *out, size_t cap,
                       size_t *outlen);

/* Decodes an ack datagram into a, with every length, type and the gap
 * rules checked; allocates nothing. Returns 0 or PT_E_TRUNCATED, PT_E_TYPE,
 * PT_E_LIMIT, PT_E_VERSION, PT_E_MALFORMED (also: not an ack). */
int pt_wire_ack_decode(const void *buf, size_t len, struct pt_wire_ack *a);

/* Checks the trailer of a decoded ack: 0, PT_E_UNSIGNED or PT_E_AUTH. */
int pt_wire_ack_verify(const struct pt_wire_ack *a, const void *buf, struct pt_wire_key *key);

/* Whether the ack a covers seq: seq <= cum, or within (cum, top] and in no
 * gap. */
bool pt_wire_ack_covers(const struct pt_wire_ack *a, uint64_t seq);

#endif
