/* Small helpers: hex, random bytes, constant-time compare, host:port. */
#ifndef PT_UTIL_H
#define PT_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PT_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Writes 2*len lowercase hex digits and a NUL into out (size >= 2*len+1). */
void pt_hex_encode(const uint8_t *in, size_t len, char *out);
/* Decodes exactly 2*len hex digits; returns 0 or -EINVAL. */
int pt_hex_decode(const char *in, uint8_t *out, size_t len);

/* pt_random() and pt_ct_equal() are defined by the crypto backend
 * (common/crypto_openssl.c or crypto_builtin.c), so the agent needs no
 * libcrypto for them. */

/* Fills buf with cryptographically strong random bytes; 0 or -EIO. */
int pt_random(void *buf, size_t len);

/* Constant-time equality of two byte strings (length leaks, content not). */
bool pt_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

/* Splits "host:port", "[v6]:port" or ":port" (host empty) into host and
 * port. Returns 0 or -EINVAL. */
int pt_hostport_split(const char *s, char *host, size_t hostlen, uint16_t *port);

#endif
