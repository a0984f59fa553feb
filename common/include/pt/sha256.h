/* SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104) without OpenSSL.
 *
 * The agent signs every frame with HMAC-SHA256 and needs nothing else from
 * a crypto library. Linking OpenSSL 3's libcrypto for that one function cost
 * the agent 3.4 MB of its 5.4 MB RSS (the provider machinery is mapped and
 * initialised whatever is used), four times the 2 MiB budget of DESIGN.md
 * section 13, and its static archive does not link against musl. So the
 * agent uses this ~150-line implementation (common/crypto_builtin.c), while
 * the collector keeps OpenSSL (common/crypto_openssl.c), which it needs for
 * TLS, AEAD and RSA anyway. tests/unit/common/test_sha256.c checks it
 * against the FIPS 180-4 and RFC 4231 vectors and against OpenSSL's HMAC on
 * random inputs.
 *
 * Plain C, no allocation, no global state; every context is the caller's. */
#ifndef PT_SHA256_H
#define PT_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define PT_SHA256_LEN   32 /* digest bytes */
#define PT_SHA256_BLOCK 64 /* block bytes */

struct pt_sha256 {
    uint32_t h[8];                /* chaining state */
    uint64_t bytes;               /* message length so far */
    uint8_t buf[PT_SHA256_BLOCK]; /* a partial block */
    size_t nbuf;                  /* bytes in buf, < PT_SHA256_BLOCK */
};

void pt_sha256_init(struct pt_sha256 *s);
void pt_sha256_update(struct pt_sha256 *s, const void *data, size_t len);
/* Writes the digest to out and leaves s unusable until the next init. */
void pt_sha256_final(struct pt_sha256 *s, uint8_t out[PT_SHA256_LEN]);
/* One-shot digest of data[0..len). */
void pt_sha256(const void *data, size_t len, uint8_t out[PT_SHA256_LEN]);

/* An HMAC-SHA256 key, prepared once: the states after hashing the inner and
 * outer padded key, so each message costs its own blocks plus two, and the
 * key is never hashed again. */
struct pt_hmac_sha256 {
    struct pt_sha256 inner, outer;
};

/* Prepares h for key[0..len) (any length; longer than a block is hashed
 * first, as RFC 2104 says). */
void pt_hmac_sha256_init(struct pt_hmac_sha256 *h, const void *key, size_t len);
/* HMAC of data[0..len) under h into out; h is unchanged and reusable. */
void pt_hmac_sha256(const struct pt_hmac_sha256 *h, const void *data, size_t len,
                    uint8_t out[PT_SHA256_LEN]);
/* Overwrites h (key material) with zeros in a way the compiler keeps. */
void pt_hmac_sha256_wipe(struct pt_hmac_sha256 *h);

#endif
