/* AES-256-GCM sealing of target credentials under the daemon's key file. */
#include "cred.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "pt/err.h"
#include "pt/util.h"

#define MAGIC     "PTC1"
#define NONCE_LEN 12
#define TAG_LEN   16
#define HDR_LEN   (4 + AGL_KEYID_LEN + NONCE_LEN)

const char *agl_cred_strerror(int code)
{
    switch (code) {
    case AGL_E_KEYPERM:
        return "key file is not a private regular file";
    case AGL_E_KEYSIZE:
        return "key file has the wrong size";
    case AGL_E_WRONGKEY:
        return "sealed under another key file";
    case AGL_E_TAMPERED:
        return "fails authentication (altered, truncated, or another target's)";
    case AGL_E_FORMAT:
        return "not a sealed credentials blob";
    default:
        return pt_strerror(code);
    }
}

void agl_wipe(void *p, size_t n)
{
    if (p && n) OPENSSL_cleanse(p, n);
}

static void key_derive_id(struct agl_key *key)
{
    uint8_t h[SHA256_DIGEST_LENGTH];
    SHA256(key->k, AGL_KEY_LEN, h);
    memcpy(key->id, h, AGL_KEYID_LEN);
    pt_hex_encode(key->id, AGL_KEYID_LEN, key->id_hex);
}

/* Creates path with fresh random bytes; -EEXIST when someone was first. */
static int key_create(const char *path, char *err, size_t errlen)
{
    uint8_t k[AGL_KEY_LEN];
    if (RAND_bytes(k, sizeof k) != 1) {
        snprintf(err, errlen, "key file %s: no randomness available to create it", path);
        return -EIO;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        agl_wipe(k, sizeof k);
        if (e != EEXIST) snprintf(err, errlen, "cannot create key file %s: %s", path, strerror(e));
        return -e;
    }
    ssize_t w = write(fd, k, sizeof k);
    int e = (w == (ssize_t)sizeof k && fsync(fd) == 0) ? 0 : (errno ? errno : EIO);
    close(fd);
    agl_wipe(k, sizeof k);
    if (e) {
        unlink(path);
        snprintf(err, errlen, "cannot write key file %s: %s", path, strerror(e));
        return -e;
    }
    return 0;
}

int agl_key_load(struct agl_key *key, const char *path, char *err, size_t errlen)
{
    memset(key, 0, sizeof *key);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        int rc = key_create(path, err, errlen);
        if (rc && rc != -EEXIST) return rc;
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot open key file %s: %s", path, strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        snprintf(err, errlen, "key file %s is not a regular file", path);
        return AGL_E_KEYPERM;
    }
    if (st.st_mode & 077) {
        close(fd);
        snprintf(err, errlen,
                 "key file %s has mode %04o: other users could read the credentials' key; "
                 "chmod 600 it (and check who read it)",
                 path, (unsigned)(st.st_mode & 07777));
        return AGL_E_KEYPERM;
    }
    if (st.st_uid != geteuid()) {
        close(fd);
        snprintf(err, errlen, "key file %s belongs to uid %u, not to this daemon's uid %u", path,
                 (unsigned)st.st_uid, (unsigned)geteuid());
        return AGL_E_KEYPERM;
    }
    uint8_t buf[AGL_KEY_LEN + 1];
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n != AGL_KEY_LEN) {
        agl_wipe(buf, sizeof buf);
        snprintf(err, errlen,
                 "key file %s holds %zd bytes, expected exactly %d random bytes (create one with "
                 "`head -c %d /dev/urandom > %s; chmod 600 %s`, or restore the original: "
                 "credentials sealed under another key cannot be opened)",
                 path, n, AGL_KEY_LEN, AGL_KEY_LEN, path, path);
        return AGL_E_KEYSIZE;
    }
    memcpy(key->k, buf, AGL_KEY_LEN);
    agl_wipe(buf, sizeof buf);
    key_derive_id(key);
    return 0;
}

void agl_key_close(struct agl_key *key)
{
    agl_wipe(key, sizeof *key);
}

/* One GCM operation; enc 1 seals, 0 opens (tag checked). */
static int gcm(const struct agl_key *key, int enc, const uint8_t *nonce, const uint8_t *aad1,
               size_t aad1_len, const char *ctx, const uint8_t *in, size_t n, uint8_t *out,
               uint8_t *tag)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c) return -ENOMEM;
    int len = 0, ok = EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1 &&
                      EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
                      EVP_CipherInit_ex(c, NULL, NULL, key->k, nonce, enc) == 1 &&
                      EVP_CipherUpdate(c, NULL, &len, aad1, (int)aad1_len) == 1 &&
                      EVP_CipherUpdate(c, NULL, &len, (const uint8_t *)ctx, (int)strlen(ctx)) == 1;
    if (ok && n) ok = EVP_CipherUpdate(c, out, &len, in, (int)n) == 1;
    if (ok && !enc) ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1;
    int fin = ok ? EVP_CipherFinal_ex(c, out + (n ? len : 0), &len) : 0;
    if (ok && fin == 1 && enc) ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok) return -EIO;
    return fin == 1 ? 0 : AGL_E_TAMPERED;
}

int agl_cred_seal(const struct agl_key *key, const char *ctx, const void *pt, size_t n,
                  uint8_t **out, size_t *outlen)
{
    if (n > AGL_SEAL_MAX) return PT_E_LIMIT;
    uint8_t *b = malloc(HDR_LEN + n + TAG_LEN);
    if (!b) return -ENOMEM;
    memcpy(b, MAGIC, 4);
    memcpy(b + 4, key->id, AGL_KEYID_LEN);
    uint8_t *nonce = b + 4 + AGL_KEYID_LEN;
    /* 96-bit random nonces: collisions are negligible for the handful of
     * seals a collector does (one per target change). */
    if (RAND_bytes(nonce, NONCE_LEN) != 1) {
        free(b);
        return -EIO;
    }
    int rc = gcm(key, 1, nonce, b, HDR_LEN, ctx, pt, n, b + HDR_LEN, b + HDR_LEN + n);
    if (rc) {
        free(b);
        return rc;
    }
    *out = b;
    *outlen = HDR_LEN + n + TAG_LEN;
    return 0;
}

int agl_cred_open(const struct agl_key *key, const char *ctx, const uint8_t *blob, size_t n,
                  char **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    if (!blob || n < HDR_LEN + TAG_LEN || memcmp(blob, MAGIC, 4)) return AGL_E_FORMAT;
    if (memcmp(blob + 4, key->id, AGL_KEYID_LEN)) return AGL_E_WRONGKEY;
    size_t len = n - HDR_LEN - TAG_LEN;
    char *p = malloc(len + 1);
    if (!p) return -ENOMEM;
    uint8_t tag[TAG_LEN];
    memcpy(tag, blob + HDR_LEN + len, TAG_LEN);
    int rc = gcm(key, 0, blob + 4 + AGL_KEYID_LEN, blob, HDR_LEN, ctx, blob + HDR_LEN, len,
                 (uint8_t *)p, tag);
    if (rc) {
        agl_wipe(p, len + 1);
        free(p);
        return rc;
    }
    p[len] = '\0';
    *out = p;
    *outlen = len;
    return 0;
}
