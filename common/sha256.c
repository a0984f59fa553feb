/* SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104); pt/sha256.h says why the
 * agent has its own. Written for clarity over speed: one frame of ~1 KB is
 * 17 blocks, a few microseconds. */
#include "pt/sha256.h"

#include <string.h>

/* FIPS 180-4 section 4.2.2: the first 32 bits of the fractional parts of the
 * cube roots of the first 64 primes. */
static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t ror(uint32_t x, unsigned n)
{
    return (x >> n) | (x << (32 - n));
}

static uint32_t load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* FIPS 180-4 section 6.2.2: one 64-byte block into the state. */
static void compress(uint32_t h[8], const uint8_t *block)
{
    uint32_t w[64];
    for (int t = 0; t < 16; t++) w[t] = load_be32(block + 4 * t);
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = ror(w[t - 15], 7) ^ ror(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = ror(w[t - 2], 17) ^ ror(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int t = 0; t < 64; t++) {
        uint32_t t1 =
            k + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + w[t];
        uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += k;
}

void pt_sha256_init(struct pt_sha256 *s)
{
    /* Section 5.3.3: the fractional parts of the square roots of the first
     * eight primes. */
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, iv, sizeof iv);
    s->bytes = 0;
    s->nbuf = 0;
}

void pt_sha256_update(struct pt_sha256 *s, const void *data, size_t len)
{
    const uint8_t *p = data;
    if (len == 0) return; /* data may be NULL then */
    s->bytes += len;
    if (s->nbuf) { /* complete the partial block first */
        size_t take = PT_SHA256_BLOCK - s->nbuf;
        if (take > len) take = len;
        memcpy(s->buf + s->nbuf, p, take);
        s->nbuf += take;
        p += take;
        len -= take;
        if (s->nbuf < PT_SHA256_BLOCK) return;
        compress(s->h, s->buf);
        s->nbuf = 0;
    }
    for (; len >= PT_SHA256_BLOCK; p += PT_SHA256_BLOCK, len -= PT_SHA256_BLOCK) compress(s->h, p);
    if (len) memcpy(s->buf, p, len);
    s->nbuf = len;
}

void pt_sha256_final(struct pt_sha256 *s, uint8_t out[PT_SHA256_LEN])
{
    /* Section 5.1.1: a 1 bit, zeros up to 56 mod 64 bytes, the length in
     * bits as a 64-bit big-endian number. */
    uint64_t bits = s->bytes * 8;
    s->buf[s->nbuf++] = 0x80;
    if (s->nbuf > PT_SHA256_BLOCK - 8) {
        memset(s->buf + s->nbuf, 0, PT_SHA256_BLOCK - s->nbuf);
        compress(s->h, s->buf);
        s->nbuf = 0;
    }
    memset(s->buf + s->nbuf, 0, PT_SHA256_BLOCK - 8 - s->nbuf);
    store_be32(s->buf + 56, (uint32_t)(bits >> 32));
    store_be32(s->buf + 60, (uint32_t)bits);
    compress(s->h, s->buf);
    for (int i = 0; i < 8; i++) store_be32(out + 4 * i, s->h[i]);
}

void pt_sha256(const void *data, size_t len, uint8_t out[PT_SHA256_LEN])
{
    struct pt_sha256 s;
    pt_sha256_init(&s);
    pt_sha256_update(&s, data, len);
    pt_sha256_final(&s, out);
}

void pt_hmac_sha256_init(struct pt_hmac_sha256 *h, const void *key, size_t len)
{
    uint8_t k[PT_SHA256_BLOCK] = {0}, pad[PT_SHA256_BLOCK];
    if (len > PT_SHA256_BLOCK)
        pt_sha256(key, len, k); /* RFC 2104: a long key is hashed first */
    else if (len)
        memcpy(k, key, len);
    for (int i = 0; i < PT_SHA256_BLOCK; i++) pad[i] = k[i] ^ 0x36;
    pt_sha256_init(&h->inner);
    pt_sha256_update(&h->inner, pad, sizeof pad);
    for (int i = 0; i < PT_SHA256_BLOCK; i++) pad[i] = k[i] ^ 0x5c;
    pt_sha256_init(&h->outer);
    pt_sha256_update(&h->outer, pad, sizeof pad);
    /* Key material on the stack goes too. */
    volatile uint8_t *vk = k, *vp = pad;
    for (int i = 0; i < PT_SHA256_BLOCK; i++) vk[i] = vp[i] = 0;
}

void pt_hmac_sha256(const struct pt_hmac_sha256 *h, const void *data, size_t len,
                    uint8_t out[PT_SHA256_LEN])
{
    struct pt_sha256 s = h->inner;
    uint8_t inner[PT_SHA256_LEN];
    pt_sha256_update(&s, data, len);
    pt_sha256_final(&s, inner);
    s = h->outer;
    pt_sha256_update(&s, inner, sizeof inner);
    pt_sha256_final(&s, out);
}

void pt_hmac_sha256_wipe(struct pt_hmac_sha256 *h)
{
    volatile uint8_t *p = (volatile uint8_t *)h;
    for (size_t i = 0; i < sizeof *h; i++) p[i] = 0;
}
