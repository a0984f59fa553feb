/* NAVER Cloud Platform API gateway signature v2
 * (https://api.ncloud-docs.com/docs/en/common-ncpapi): the message is
 * "METHOD URI\nTIMESTAMP\nACCESSKEY" where URI is the path with its query
 * string and TIMESTAMP the x-ncp-apigw-timestamp header (Unix ms);
 * HMAC-SHA256 under the secret key, base64. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sign.h"

int drv_ncp_sign(const char *method, const char *uri, const char *timestamp_ms,
                 const char *access_key, const char *secret_key, char signature[64])
{
    struct drv_buf msg, b64;
    drv_buf_init(&msg, 0);
    drv_buf_init(&b64, 64);
    int rc = drv_buf_addf(&msg, "%s %s\n%s\n%s", method, uri, timestamp_ms, access_key);
    if (rc == 0) {
        unsigned char mac[32];
        drv_hmac_sha256(secret_key, strlen(secret_key), msg.p, msg.len, mac);
        rc = drv_base64(&b64, mac, sizeof mac, false);
    }
    if (rc == 0) snprintf(signature, 64, "%s", b64.p);
    drv_buf_free(&msg);
    drv_buf_free(&b64);
    return rc;
}
