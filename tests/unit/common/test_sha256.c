/* The built-in SHA-256 and HMAC-SHA256 the agent signs frames with
 * (common/sha256.c, common/crypto_builtin.c): FIPS 180-4 and RFC 4231
 * vectors, every split of incremental input, and a cross-check against
 * OpenSSL on random inputs. Links pantala-common-agent (the built-in
 * backend) and, for the cross-check only, libcrypto. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "pt/catalog.h"
#include "pt/sha256.h"
#include "pt/util.h"
#include "pt/wire.h"

static void assert_digest(const uint8_t *got, const char *want_hex)
{
    char hex[2 * PT_SHA256_LEN + 1];
    pt_hex_encode(got, strlen(want_hex) / 2, hex);
    assert_string_equal(hex, want_hex);
}

/* FIPS 180-4 examples (NIST CSRC "SHA256.pdf", "SHA2_Additional.pdf"). */
static void test_fips_vectors(void **state)
{
    static const struct {
        const char *msg, *digest;
    } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmno"
         "pqrlmnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    };
    uint8_t d[PT_SHA256_LEN];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        pt_sha256(v[i].msg, strlen(v[i].msg), d);
        assert_digest(d, v[i].digest);
    }
}

/* One million 'a', fed in uneven pieces (FIPS 180-4's long message). */
static void test_fips_million_a(void **state)
{
    static char chunk[997];
    memset(chunk, 'a', sizeof chunk);
    struct pt_sha256 s;
    uint8_t d[PT_SHA256_LEN];
    pt_sha256_init(&s);
    size_t left = 1000000;
    while (left) {
        size_t n = left < sizeof chunk ? left : sizeof chunk;
        pt_sha256_update(&s, chunk, n);
        left -= n;
    }
    pt_sha256_final(&s, d);
    assert_digest(d, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* Lengths around the padding boundaries (55, 56, 63, 64, 119, 120 bytes),
 * each fed at every split point: the one-shot and the incremental digest
 * agree with OpenSSL's. */
static void test_padding_boundaries_and_splits(void **state)
{
    uint8_t msg[130];
    for (size_t i = 0; i < sizeof msg; i++) msg[i] = (uint8_t)(i * 7 + 3);
    for (size_t len = 0; len <= sizeof msg; len++) {
        uint8_t want[PT_SHA256_LEN], got[PT_SHA256_LEN];
        unsigned int wl = 0;
        assert_int_equal(EVP_Digest(msg, len, want, &wl, EVP_sha256(), NULL), 1);
        pt_sha256(msg, len, got);
        assert_memory_equal(got, want, PT_SHA256_LEN);
        for (size_t cut = 0; cut <= len; cut++) {
            struct pt_sha256 s;
            pt_sha256_init(&s);
            pt_sha256_update(&s, msg, cut);
            pt_sha256_update(&s, NULL, 0);
            pt_sha256_update(&s, msg + cut, len - cut);
            pt_sha256_final(&s, got);
            assert_memory_equal(got, want, PT_SHA256_LEN);
        }
    }
}

/* RFC 4231 section 4, test cases 1 to 7 (5 is truncated to 128 bits). */
static void test_rfc4231_vectors(void **state)
{
    uint8_t k20_0b[20], k20_0c[20], k20_aa[20], k25[25], k131[131], d50_dd[50], d50_cd[50];
    memset(k20_0b, 0x0b, sizeof k20_0b);
    memset(k20_0c, 0x0c, sizeof k20_0c);
    memset(k20_aa, 0xaa, sizeof k20_aa);
    memset(k131, 0xaa, sizeof k131);
    memset(d50_dd, 0xdd, sizeof d50_dd);
    memset(d50_cd, 0xcd, sizeof d50_cd);
    for (size_t i = 0; i < sizeof k25; i++) k25[i] = (uint8_t)(i + 1);
    static const char big_key[] = "Test Using Larger Than Block-Size Key - Hash Key First";
    static const char big_both[] =
        "This is a test using a larger than block-size key and a larger than block-size data. "
        "The key needs to be hashed before being used by the HMAC algorithm.";
    const struct {
        const void *key;
        size_t klen;
        const void *data;
        size_t dlen;
        const char *mac;
    } v[] = {
        {k20_0b, 20, "Hi There", 8,
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {"Jefe", 4, "what do ya want for nothing?", 28,
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {k20_aa, 20, d50_dd, 50,
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
        {k25, 25, d50_cd, 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
        {k20_0c, 20, "Test With Truncation", 20, "a3b6167473100ee06e0c796c2955552b"},
        {k131, 131, big_key, sizeof big_key - 1,
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
        {k131, 131, big_both, sizeof big_both - 1,
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        struct pt_hmac_sha256 h;
        uint8_t mac[PT_SHA256_LEN];
        pt_hmac_sha256_init(&h, v[i].key, v[i].klen);
        pt_hmac_sha256(&h, v[i].data, v[i].dlen, mac);
        assert_digest(mac, v[i].mac);
        /* The prepared key is reusable: the same MAC a second time. */
        uint8_t again[PT_SHA256_LEN];
        pt_hmac_sha256(&h, v[i].data, v[i].dlen, again);
        assert_memory_equal(again, mac, PT_SHA256_LEN);
        pt_hmac_sha256_wipe(&h);
    }
    /* And through the agent's wire API (crypto_builtin.c), which takes
     * keys of any length too. */
    struct pt_wire_key wk;
    uint8_t mac[PT_WIRE_MAC_LEN];
    assert_int_equal(pt_wire_key_init(&wk, k131, sizeof k131), 0);
    assert_int_equal(pt_wire_mac(&wk, big_both, sizeof big_both - 1, mac), 0);
    assert_digest(mac, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
    pt_wire_key_close(&wk);
}

/* A small deterministic generator, so a failure can be replayed. */
static uint64_t rng_state;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* 2000 random keys (0..200 bytes) and messages (0..3000 bytes): the
 * built-in HMAC equals OpenSSL's HMAC() byte for byte, one-shot and through
 * pt_wire_mac(). The seed is printed when it fails. */
static void test_random_against_openssl(void **state)
{
    static uint8_t key[200], msg[3000];
    rng_state = 0x9e3779b97f4a7c15u;
    for (int iter = 0; iter < 2000; iter++) {
        uint64_t seed = rng_state;
        size_t klen = (size_t)(rng() % (sizeof key + 1));
        size_t mlen = iter < 1000 ? (size_t)(rng() % 1500) : (size_t)(rng() % (sizeof msg + 1));
        for (size_t i = 0; i < klen; i++) key[i] = (uint8_t)rng();
        for (size_t i = 0; i < mlen; i++) msg[i] = (uint8_t)rng();
        uint8_t want[EVP_MAX_MD_SIZE], got[PT_SHA256_LEN];
        unsigned int wl = 0;
        assert_non_null(HMAC(EVP_sha256(), key, (int)klen, msg, mlen, want, &wl));
        assert_int_equal(wl, PT_SHA256_LEN);
        struct pt_hmac_sha256 h;
        pt_hmac_sha256_init(&h, key, klen);
        pt_hmac_sha256(&h, msg, mlen, got);
        if (memcmp(got, want, PT_SHA256_LEN) != 0)
            fail_msg("HMAC differs from OpenSSL at iteration %d (state %#llx, key %zu bytes, "
                     "message %zu bytes)",
                     iter, (unsigned long long)seed, klen, mlen);
        if (klen) { /* pt_wire_key_init() refuses an empty key */
            struct pt_wire_key wk;
            assert_int_equal(pt_wire_key_init(&wk, key, klen), 0);
            assert_int_equal(pt_wire_mac(&wk, msg, mlen, got), 0);
            assert_memory_equal(got, want, PT_SHA256_LEN);
            pt_wire_key_close(&wk);
        }
    }
}

/* A frame the agent signs carries OpenSSL's HMAC of its body, and verifies;
 * one flipped bit anywhere fails. */
static void test_signed_frame_matches_openssl(void **state)
{
    uint8_t key[PT_WIRE_KEY_LEN];
    for (size_t i = 0; i < sizeof key; i++) key[i] = (uint8_t)(0xa5 ^ i);
    struct pt_field fields[] = {{PT_STR("cpu_utilization"), PT_F_FLOAT, {.f = 12.5}},
                                {PT_STR("mem_total"), PT_F_UINT, {.u = 1u << 30}}};
    struct pt_meas meas[] = {{PT_STR("cpu"), NULL, fields, 0, 2}};
    struct pt_frame f = {
        .kind = PT_WIRE_SAMPLE,
        .agent_id = 7,
        .epoch = 1700000000000,
        .seq = 1,
        .ts_ns = 1700000000000000000,
        .interval_ms = 1000,
        .nparts = 1,
        .id = {PT_STR("ns"), PT_STR("m"), PT_STR("vm"), PT_STR("aws"), PT_STR("h")},
        .meas = meas,
        .nmeas = 1};
    struct pt_wire_key wk;
    uint8_t buf[PT_WIRE_TARGET_FRAME], want[EVP_MAX_MD_SIZE];
    size_t n = 0;
    unsigned int wl = 0;
    assert_int_equal(pt_wire_key_init(&wk, key, sizeof key), 0);
    assert_int_equal(pt_wire_encode(&f, &wk, buf, sizeof buf, &n), 0);
    assert_true(n > PT_WIRE_MAC_LEN);
    assert_non_null(HMAC(EVP_sha256(), key, sizeof key, buf, n - PT_WIRE_MAC_LEN, want, &wl));
    assert_memory_equal(buf + n - PT_WIRE_MAC_LEN, want, PT_WIRE_MAC_LEN);

    struct pt_wire_dec *d = pt_wire_dec_new();
    struct pt_frame out;
    assert_non_null(d);
    assert_int_equal(pt_wire_decode(d, buf, n, &out), 0);
    assert_int_equal(pt_wire_verify(&out, buf, &wk), 0);
    for (size_t bit = 0; bit < 8 * (n - PT_WIRE_MAC_LEN); bit += 13) {
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        /* Some flips break the msgpack; those that decode must not verify. */
        if (pt_wire_decode(d, buf, n, &out) == 0)
            assert_int_not_equal(pt_wire_verify(&out, buf, &wk), 0);
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    pt_wire_dec_free(d);
    pt_wire_key_close(&wk);
}

/* The built-in backend's other two functions. */
static void test_ct_equal_and_random(void **state)
{
    assert_true(pt_ct_equal("abc", 3, "abc", 3));
    assert_false(pt_ct_equal("abc", 3, "abd", 3));
    assert_false(pt_ct_equal("abc", 3, "ab", 2));
    assert_true(pt_ct_equal("", 0, "", 0));
    uint8_t a[32] = {0}, b[32] = {0}, zero[32] = {0};
    assert_int_equal(pt_random(a, sizeof a), 0);
    assert_int_equal(pt_random(b, sizeof b), 0);
    /* 2^-256 chances of a false failure. */
    assert_memory_not_equal(a, zero, sizeof a);
    assert_memory_not_equal(a, b, sizeof a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fips_vectors),
        cmocka_unit_test(test_fips_million_a),
        cmocka_unit_test(test_padding_boundaries_and_splits),
        cmocka_unit_test(test_rfc4231_vectors),
        cmocka_unit_test(test_random_against_openssl),
        cmocka_unit_test(test_signed_frame_matches_openssl),
        cmocka_unit_test(test_ct_equal_and_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
