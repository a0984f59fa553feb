/* Credentials of agentless targets at rest: AES-256-GCM under a key file
 * that only the daemon reads (docs/drivers.md "Credentials at rest").
 *
 * The key file holds exactly AGL_KEY_LEN random bytes. agl_key_load()
 * creates it (mode 0600, O_EXCL) when absent and refuses one that group or
 * others may read, that is not a regular file, or that has the wrong size.
 *
 * A sealed blob is: "PTC1" | key id (8) | nonce (12) | ciphertext | tag (16).
 * The key id (first 8 bytes of SHA-256 of the key) lets a blob sealed under
 * another key file be named as such instead of as "tampered"; the header
 * and a caller-chosen context (the target id) are authenticated as AAD, so
 * a blob copied to another target's row does not open either.
 *
 * Plaintext passed in and out is the caller's: wipe it with
 * agl_wipe() when done. Nothing here logs. */
#ifndef AGL_CRED_H
#define AGL_CRED_H

#include <stddef.h>
#include <stdint.h>

#define AGL_KEY_LEN   32
#define AGL_KEYID_LEN 8
#define AGL_SEAL_OVER (4 + AGL_KEYID_LEN + 12 + 16) /* bytes a blob adds to the plaintext */
#define AGL_SEAL_MAX  (64 * 1024)                   /* plaintext ceiling */

/* Errors beyond -errno, in their own range. */
enum agl_cred_err {
    AGL_E_BASE = -4300,
    AGL_E_KEYPERM,  /* key file readable by group/others, or not a regular file */
    AGL_E_KEYSIZE,  /* key file does not hold exactly AGL_KEY_LEN bytes */
    AGL_E_WRONGKEY, /* blob sealed under another key file */
    AGL_E_TAMPERED, /* blob fails authentication: altered, truncated or another target's */
    AGL_E_FORMAT,   /* not a blob of this format */
};
const char *agl_cred_strerror(int code);

struct agl_key {
    uint8_t k[AGL_KEY_LEN];
    uint8_t id[AGL_KEYID_LEN];
    char id_hex[2 * AGL_KEYID_LEN + 1];
};

/* Loads path into key, creating it first when absent. On failure returns
 * <0 with a message naming the file and the fix in err. */
int agl_key_load(struct agl_key *key, const char *path, char *err, size_t errlen);
void agl_key_close(struct agl_key *key); /* wipes it */

/* Seals pt[0..n) for context ctx; *out (heap, *outlen bytes) is the blob. */
int agl_cred_seal(const struct agl_key *key, const char *ctx, const void *pt, size_t n,
                  uint8_t **out, size_t *outlen);
/* Opens a blob sealed for ctx; *out is a heap, NUL-terminated plaintext of
 * *outlen bytes (wipe and free it). AGL_E_WRONGKEY, AGL_E_TAMPERED,
 * AGL_E_FORMAT or -ENOMEM. */
int agl_cred_open(const struct agl_key *key, const char *ctx, const uint8_t *blob, size_t n,
                  char **out, size_t *outlen);

/* Zeroes n bytes in a way the compiler keeps. */
void agl_wipe(void *p, size_t n);

#endif
