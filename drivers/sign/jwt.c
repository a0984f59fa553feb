/* JWT RS256 (RFC 7515/7519) for a Google service account's OAuth2 assertion
 * (https://developers.google.com/identity/protocols/oauth2/service-account):
 * RSASSA-PKCS1-v1_5 over SHA-256 with OpenSSL EVP. */
#include <errno.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "sign.h"

int drv_jwt_rs256(const char *pem, const char *header_json, const char *claims_json,
                  struct drv_buf *out)
{
    int rc = drv_base64(out, (const unsigned char *)header_json, strlen(header_json), true);
    if (rc == 0) rc = drv_buf_add(out, ".", 1);
    if (rc == 0)
        rc = drv_base64(out, (const unsigned char *)claims_json, strlen(claims_json), true);
    if (rc < 0) return rc;

    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (!key || EVP_PKEY_base_id(key) != EVP_PKEY_RSA) {
        EVP_PKEY_free(key);
        return DRV_E_CONFIG;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char sig[1024];
    size_t siglen = sizeof sig;
    rc = -EINVAL;
    if (ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
        EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)out->p, out->len) == 1) {
        rc = drv_buf_add(out, ".", 1);
        if (rc == 0) rc = drv_base64(out, sig, siglen, true);
    }
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(key);
    return rc;
}
