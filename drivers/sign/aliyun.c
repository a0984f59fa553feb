/* Alibaba Cloud RPC-style signature v1
 * (https://www.alibabacloud.com/help/en/sdk/product-overview/rpc-mechanism):
 * parameters sorted by name, each name and value percent-encoded per
 * RFC 3986 (so space is %20, '*' is %2A and '~' stays), joined with '&';
 * StringToSign = METHOD "&" encode("/") "&" encode(that query); the key is
 * AccessKeySecret + "&"; HMAC-SHA1, base64. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sign.h"

static int param_cmp(const void *a, const void *b)
{
    return strcmp(((const struct drv_aliyun_param *)a)->key,
                  ((const struct drv_aliyun_param *)b)->key);
}

int drv_aliyun_sign(const char *method, struct drv_aliyun_param *params, size_t n,
                    const char *secret, struct drv_buf *query, struct drv_buf *string_to_sign,
                    char signature[64])
{
    qsort(params, n, sizeof *params, param_cmp);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (i) rc = drv_buf_add(query, "&", 1);
        if (rc == 0) rc = drv_pct_encode(query, params[i].key, false);
        if (rc == 0) rc = drv_buf_add(query, "=", 1);
        if (rc == 0) rc = drv_pct_encode(query, params[i].value, false);
    }
    if (rc == 0) rc = drv_buf_addf(string_to_sign, "%s&%%2F&", method);
    if (rc == 0) rc = drv_pct_encode(string_to_sign, drv_buf_str(query), false);
    if (rc < 0) return rc;

    char key[256];
    int kn = snprintf(key, sizeof key, "%s&", secret);
    if (kn < 0 || (size_t)kn >= sizeof key) return -EINVAL;
    unsigned char mac[20];
    drv_hmac_sha1(key, (size_t)kn, string_to_sign->p, string_to_sign->len, mac);
    memset(key, 0, sizeof key);
    struct drv_buf b64;
    drv_buf_init(&b64, 64);
    rc = drv_base64(&b64, mac, sizeof mac, false);
    if (rc == 0) snprintf(signature, 64, "%s", b64.p);
    drv_buf_free(&b64);
    return rc;
}
