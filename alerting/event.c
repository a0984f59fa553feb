/* Event identity: the idempotency key of an event and the fingerprint of an
 * alert series, both from SHA-256 (OpenSSL libcrypto). */
#include "alert_int.h"
#include "pt/util.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

static void sha256_parts(const char *const *parts, size_t n, unsigned char out[32])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned len = 32;
    memset(out, 0, 32);
    if (!ctx) return;
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (size_t i = 0; i < n; i++) {
        /* Each part with its NUL, so ("ab","c") and ("a","bc") differ. */
        EVP_DigestUpdate(ctx, parts[i], strlen(parts[i]) + 1);
    }
    EVP_DigestFinal_ex(ctx, out, &len);
    EVP_MD_CTX_free(ctx);
}

void alert_event_id(const char *rule, const char *fingerprint, enum alert_level level,
                    enum alert_status status, int64_t starts_at, uint32_t seq, char out[65])
{
    char lv[8], st[8], sa[24], sq[16];
    snprintf(lv, sizeof lv, "%d", (int)level);
    snprintf(st, sizeof st, "%d", (int)status);
    snprintf(sa, sizeof sa, "%lld", (long long)starts_at);
    snprintf(sq, sizeof sq, "%u", seq);
    const char *parts[] = {rule, fingerprint, lv, st, sa, sq};
    unsigned char d[32];
    sha256_parts(parts, 6, d);
    pt_hex_encode(d, 32, out);
}

void alert_fingerprint(const char *rule, const struct alert_kv *labels, size_t n, char out[17])
{
    /* Labels arrive sorted by key (the engine builds them that way). */
    const char *parts[1 + 2 * (ALERT_MAX_KV + ALERT_MAX_MATCH + 8)];
    size_t np = 0;
    parts[np++] = rule;
    for (size_t i = 0; i < n && np + 2 <= sizeof parts / sizeof parts[0]; i++) {
        parts[np++] = labels[i].key;
        parts[np++] = labels[i].value;
    }
    unsigned char d[32];
    sha256_parts(parts, np, d);
    pt_hex_encode(d, 8, out);
}
