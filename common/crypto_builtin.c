/* Crypto backend of pantala-common-agent (the agent): the frame MAC with the
 * built-in HMAC-SHA256 (sha256.c), random bytes from getrandom(2) and a
 * constant-time compare in plain C, so the agent links no libcrypto.
 * pt/sha256.h gives the measured reason; the collector keeps OpenSSL
 * (crypto_openssl.c), and both define the same functions. */
#include "pt/err.h"
#include "pt/sha256.h"
#include "pt/util.h"
#include "pt/wire.h"

#include <errno.h>
#include <stdlib.h>

#include <sys/random.h>

int pt_wire_key_init(struct pt_wire_key *k, const uint8_t *key, size_t len)
{
    k->mac_ctx = NULL;
    if (!key || len == 0) return -EINVAL;
    struct pt_hmac_sha256 *h = malloc(sizeof *h);
    if (!h) return -ENOMEM;
    pt_hmac_sha256_init(h, key, len);
    k->mac_ctx = h;
    return 0;
}

void pt_wire_key_close(struct pt_wire_key *k)
{
    if (k->mac_ctx) {
        pt_hmac_sha256_wipe(k->mac_ctx);
        free(k->mac_ctx);
    }
    k->mac_ctx = NULL;
}

int pt_wire_mac(struct pt_wire_key *k, const void *data, size_t len, uint8_t *out)
{
    if (!k->mac_ctx) return PT_E_AUTH;
    pt_hmac_sha256(k->mac_ctx, data, len, out);
    return 0;
}

int pt_random(void *buf, size_t len)
{
    /* getrandom() returns at most 32 MiB at once and may be interrupted
     * before the pool is ready; loop until the buffer is full. */
    unsigned char *p = buf;
    while (len) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -EIO;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

bool pt_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    if (alen != blen) return false;
    /* Every byte is read whatever the first difference; volatile keeps the
     * compiler from turning the loop into an early-exit memcmp. */
    const volatile unsigned char *x = a, *y = b;
    unsigned char d = 0;
    for (size_t i = 0; i < alen; i++) d |= x[i] ^ y[i];
    return d == 0;
}
