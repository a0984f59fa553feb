/* Request signing of the cloud APIs, one file each: AWS Signature V4
 * (sigv4.c), Tencent TC3-HMAC-SHA256 (tc3.c), Alibaba RPC signature v1
 * (aliyun.c), NCP API gateway signature v2 (ncp.c), JWT RS256 for Google
 * service accounts (jwt.c). Pure functions of their inputs (the time is an
 * input), so the tests check them against the providers' published vectors.
 * Intermediate strings are returned so tests (and debug logs) can show them;
 * they never contain the secret. */
#ifndef DRV_SIGN_H
#define DRV_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "../drv_int.h"

/* ---- AWS Signature Version 4 -------------------------------------------- */
struct drv_sigv4_header {
    const char *name; /* any case; lower-cased for signing */
    const char *value;
};
struct drv_sigv4_in {
    const char *method;
    const char *path;  /* canonical URI, already percent-encoded ("/" when empty) */
    const char *query; /* canonical query string (sorted, encoded) or "" */
    const struct drv_sigv4_header *headers; /* must include host and x-amz-date */
    size_t nheaders;
    const void *payload;
    size_t payload_len;
    const char *region, *service;
    const char *access_key, *secret_key;
    const char *amz_date; /* "20150830T123600Z" */
};
struct drv_sigv4_out {
    struct drv_buf canonical_request, string_to_sign;
    char signature[65];
    char authorization[512];
};
/* Fills out (free with drv_sigv4_out_free). 0 or -errno. */
int drv_sigv4_sign(const struct drv_sigv4_in *in, struct drv_sigv4_out *out);
void drv_sigv4_out_free(struct drv_sigv4_out *out);

/* ---- Tencent Cloud API 3.0, TC3-HMAC-SHA256 ----------------------------- */
struct drv_tc3_in {
    const char *secret_id, *secret_key;
    const char *service;      /* "monitor" */
    const char *host;         /* "monitor.tencentcloudapi.com" */
    const char *content_type; /* "application/json; charset=utf-8" */
    const void *payload;
    size_t payload_len;
    int64_t timestamp; /* Unix seconds; the credential scope uses its UTC date */
};
struct drv_tc3_out {
    struct drv_buf canonical_request, string_to_sign;
    char date[16];
    char signature[65];
    char authorization[512];
};
int drv_tc3_sign(const struct drv_tc3_in *in, struct drv_tc3_out *out);
void drv_tc3_out_free(struct drv_tc3_out *out);

/* ---- Alibaba Cloud RPC signature v1 (HMAC-SHA1) ------------------------- */
struct drv_aliyun_param {
    const char *key, *value;
};
/* Sorts params by key (byte order), builds the canonicalized query string
 * (query, "k=v&..." percent-encoded) and the string to sign
 * "METHOD&%2F&" + encode(query), and signs it with HMAC-SHA1 under
 * secret + "&" (base64 in signature). params is sorted in place. */
int drv_aliyun_sign(const char *method, struct drv_aliyun_param *params, size_t n,
                    const char *secret, struct drv_buf *query, struct drv_buf *string_to_sign,
                    char signature[64]);

/* ---- NCP API gateway signature v2 --------------------------------------- */
/* base64(HMAC-SHA256(secret, METHOD + " " + uri + "\n" + timestamp_ms + "\n"
 * + access_key)), uri = path with its query string. */
int drv_ncp_sign(const char *method, const char *uri, const char *timestamp_ms,
                 const char *access_key, const char *secret_key, char signature[64]);

/* ---- JWT RS256 (Google service account assertion) ----------------------- */
/* base64url(header).base64url(claims).base64url(RS256 signature) into out.
 * pem: the service account's PKCS#8 private key. 0, DRV_E_CONFIG (bad key)
 * or -errno. */
int drv_jwt_rs256(const char *pem, const char *header_json, const char *claims_json,
                  struct drv_buf *out);

#endif
