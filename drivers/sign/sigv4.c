/* AWS Signature Version 4 (https://docs.aws.amazon.com/IAM/latest/UserGuide/
 * create-signed-request.html): canonical request, string to sign, derived
 * signing key, Authorization header. Checked against the SigV4 test suite. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sign.h"

#define SIGV4_MAX_HEADERS 16

struct hdr {
    char name[64];
    const char *value;
};

static int hdr_cmp(const void *a, const void *b)
{
    return strcmp(((const struct hdr *)a)->name, ((const struct hdr *)b)->name);
}

void drv_sigv4_out_free(struct drv_sigv4_out *out)
{
    drv_buf_free(&out->canonical_request);
    drv_buf_free(&out->string_to_sign);
}

int drv_sigv4_sign(const struct drv_sigv4_in *in, struct drv_sigv4_out *out)
{
    memset(out, 0, sizeof *out);
    drv_buf_init(&out->canonical_request, 0);
    drv_buf_init(&out->string_to_sign, 0);
    if (in->nheaders > SIGV4_MAX_HEADERS || strlen(in->amz_date) != 16) return -EINVAL;

    struct hdr h[SIGV4_MAX_HEADERS];
    for (size_t i = 0; i < in->nheaders; i++) {
        size_t n = strlen(in->headers[i].name);
        if (n >= sizeof h[i].name) return -EINVAL;
        for (size_t j = 0; j <= n; j++)
            h[i].name[j] = (char)tolower((unsigned char)in->headers[i].name[j]);
        h[i].value = in->headers[i].value;
    }
    qsort(h, in->nheaders, sizeof *h, hdr_cmp);

    char payload_hash[65];
    drv_sha256_hex(in->payload ? in->payload : "", in->payload ? in->payload_len : 0, payload_hash);

    struct drv_buf *cr = &out->canonical_request, signed_h;
    drv_buf_init(&signed_h, 4096);
    int rc = drv_buf_addf(cr, "%s\n%s\n%s\n", in->method, in->path && *in->path ? in->path : "/",
                          in->query ? in->query : "");
    for (size_t i = 0; rc == 0 && i < in->nheaders; i++) {
        /* Trim the value and squeeze inner runs of spaces, as the spec says. */
        const char *v = h[i].value;
        while (*v == ' ' || *v == '\t') v++;
        rc = drv_buf_addf(cr, "%s:", h[i].name);
        bool space = false;
        for (; rc == 0 && *v; v++) {
            if (*v == ' ' || *v == '\t') {
                space = true;
                continue;
            }
            if (space) rc = drv_buf_add(cr, " ", 1);
            space = false;
            if (rc == 0) rc = drv_buf_add(cr, v, 1);
        }
        if (rc == 0) rc = drv_buf_add(cr, "\n", 1);
        if (rc == 0) rc = drv_buf_addf(&signed_h, "%s%s", i ? ";" : "", h[i].name);
    }
    if (rc == 0) rc = drv_buf_addf(cr, "\n%s\n%s", drv_buf_str(&signed_h), payload_hash);

    char date[9];
    memcpy(date, in->amz_date, 8);
    date[8] = '\0';
    char cr_hash[65];
    if (rc == 0) {
        drv_sha256_hex(cr->p, cr->len, cr_hash);
        rc = drv_buf_addf(&out->string_to_sign, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s",
                          in->amz_date, date, in->region, in->service, cr_hash);
    }
    if (rc == 0) {
        unsigned char k[32];
        char k0[256];
        int n = snprintf(k0, sizeof k0, "AWS4%s", in->secret_key);
        if (n < 0 || (size_t)n >= sizeof k0) {
            rc = -EINVAL;
        } else {
            drv_hmac_sha256(k0, (size_t)n, date, 8, k);
            drv_hmac_sha256(k, 32, in->region, strlen(in->region), k);
            drv_hmac_sha256(k, 32, in->service, strlen(in->service), k);
            drv_hmac_sha256(k, 32, "aws4_request", 12, k);
            unsigned char sig[32];
            drv_hmac_sha256(k, 32, out->string_to_sign.p, out->string_to_sign.len, sig);
            drv_hex(sig, 32, out->signature);
            n = snprintf(out->authorization, sizeof out->authorization,
                         "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, "
                         "Signature=%s",
                         in->access_key, date, in->region, in->service, drv_buf_str(&signed_h),
                         out->signature);
            if (n < 0 || (size_t)n >= sizeof out->authorization) rc = -E2BIG;
            memset(k0, 0, sizeof k0);
        }
    }
    drv_buf_free(&signed_h);
    return rc;
}
