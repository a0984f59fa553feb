/* Tencent Cloud API 3.0 signature, TC3-HMAC-SHA256
 * (https://www.tencentcloud.com/document/api/213/33224): the credential
 * scope carries the UTC date of X-TC-Timestamp, so a request signed just
 * after midnight UTC uses the new day whatever the local zone. Signed
 * headers are content-type;host, as in the documentation's example. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sign.h"

void drv_tc3_out_free(struct drv_tc3_out *out)
{
    drv_buf_free(&out->canonical_request);
    drv_buf_free(&out->string_to_sign);
}

int drv_tc3_sign(const struct drv_tc3_in *in, struct drv_tc3_out *out)
{
    memset(out, 0, sizeof *out);
    drv_buf_init(&out->canonical_request, 0);
    drv_buf_init(&out->string_to_sign, 0);
    if (drv_fmt_time(in->timestamp, "%Y-%m-%d", out->date, sizeof out->date) < 0) return -EINVAL;

    char payload_hash[65], cr_hash[65];
    drv_sha256_hex(in->payload ? in->payload : "", in->payload ? in->payload_len : 0, payload_hash);
    int rc = drv_buf_addf(&out->canonical_request,
                          "POST\n/\n\ncontent-type:%s\nhost:%s\n\ncontent-type;host\n%s",
                          in->content_type, in->host, payload_hash);
    if (rc < 0) return rc;
    drv_sha256_hex(out->canonical_request.p, out->canonical_request.len, cr_hash);
    rc = drv_buf_addf(&out->string_to_sign, "TC3-HMAC-SHA256\n%lld\n%s/%s/tc3_request\n%s",
                      (long long)in->timestamp, out->date, in->service, cr_hash);
    if (rc < 0) return rc;

    char k0[256];
    int n = snprintf(k0, sizeof k0, "TC3%s", in->secret_key);
    if (n < 0 || (size_t)n >= sizeof k0) return -EINVAL;
    unsigned char k[32], sig[32];
    drv_hmac_sha256(k0, (size_t)n, out->date, strlen(out->date), k);
    drv_hmac_sha256(k, 32, in->service, strlen(in->service), k);
    drv_hmac_sha256(k, 32, "tc3_request", 11, k);
    drv_hmac_sha256(k, 32, out->string_to_sign.p, out->string_to_sign.len, sig);
    memset(k0, 0, sizeof k0);
    drv_hex(sig, 32, out->signature);
    n = snprintf(out->authorization, sizeof out->authorization,
                 "TC3-HMAC-SHA256 Credential=%s/%s/%s/tc3_request, "
                 "SignedHeaders=content-type;host, Signature=%s",
                 in->secret_id ? in->secret_id : "", out->date, in->service, out->signature);
    return (n < 0 || (size_t)n >= sizeof out->authorization) ? -E2BIG : 0;
}
