/* Crypto backend of pantala-common (the collector): the frame MAC, random
 * bytes and constant-time compare through OpenSSL's libcrypto, which the
 * collector links anyway. The agent's build uses crypto_builtin.c instead;
 * both define the same functions (pt/wire.h, pt/util.h). */
#include "pt/err.h"
#include "pt/util.h"
#include "pt/wire.h"

#include <errno.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

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

int pt_random(void *buf, size_t len)
{
    return RAND_bytes(buf, (int)len) == 1 ? 0 : -EIO;
}

bool pt_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    if (alen != blen) return false;
    return CRYPTO_memcmp(a, b, alen) == 0;
}
