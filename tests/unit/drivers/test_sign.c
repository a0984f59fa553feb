/* Signing against the providers' published vectors (tests/data/vectors/,
 * a copy of shared/vectors/signing.json): exact canonical requests, strings
 * to sign and signatures; JWT RS256 verified with OpenSSL and the public key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "sign/sign.h"

static json_t *vectors;

static json_t *load_json(const char *rel)
{
    char path[512];
    const char *dir = getenv("PT_TEST_DATA");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/data", rel);
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    if (!j) fail_msg("cannot load %s: %s", path, e.text);
    return j;
}

static const char *str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    if (!s) fail_msg("vector key %s missing", k);
    return s;
}

/* Splits "Name:value" lines of the raw test-suite request into headers. */
static void sigv4_case(const json_t *top, const json_t *c)
{
    const char *raw = str(c, "request");
    char *copy = strdup(raw);
    struct drv_sigv4_header h[8];
    size_t nh = 0;
    const char *body = "";
    char *line = strchr(copy, '\n') + 1; /* skip the request line */
    while (line && *line) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        char *colon = strchr(line, ':');
        assert_non_null(colon);
        *colon = '\0';
        h[nh].name = line;
        h[nh].value = colon + 1;
        nh++;
        if (!nl) break;
        if (nl[1] == '\n') { /* blank line: body follows */
            body = nl + 2;
            break;
        }
        line = nl + 1;
    }
    const char *method = strncmp(raw, "POST", 4) == 0 ? "POST" : "GET";
    struct drv_sigv4_in in = {method,
                              "/",
                              "",
                              h,
                              nh,
                              body,
                              strlen(body),
                              str(top, "region"),
                              str(top, "service"),
                              str(top, "access_key"),
                              str(top, "secret_key"),
                              str(top, "amz_date")};
    struct drv_sigv4_out out;
    assert_int_equal(drv_sigv4_sign(&in, &out), 0);
    assert_string_equal(out.canonical_request.p, str(c, "canonical_request"));
    char h2[65];
    drv_sha256_hex(out.canonical_request.p, out.canonical_request.len, h2);
    assert_string_equal(h2, str(c, "canonical_request_sha256"));
    if (json_object_get(c, "string_to_sign"))
        assert_string_equal(out.string_to_sign.p, str(c, "string_to_sign"));
    assert_string_equal(out.signature, str(c, "signature"));
    if (json_object_get(c, "authorization"))
        assert_string_equal(out.authorization, str(c, "authorization"));
    drv_sigv4_out_free(&out);
    free(copy);
}

static void test_sigv4(void **state)
{
    (void)state;
    const json_t *top = json_object_get(vectors, "aws_sigv4");
    const json_t *cases = json_object_get(top, "cases");
    assert_true(json_array_size(cases) >= 2);
    for (size_t i = 0; i < json_array_size(cases); i++) sigv4_case(top, json_array_get(cases, i));
}

/* A wrong secret must give a different signature (the test can fail). */
static void test_sigv4_secret_matters(void **state)
{
    (void)state;
    struct drv_sigv4_header h[2] = {{"Host", "example.amazonaws.com"},
                                    {"X-Amz-Date", "20150830T123600Z"}};
    struct drv_sigv4_in in = {"GET",
                              "/",
                              "",
                              h,
                              2,
                              "",
                              0,
                              "us-east-1",
                              "service",
                              "AKIDEXAMPLE",
                              "other-secret",
                              "20150830T123600Z"};
    struct drv_sigv4_out out;
    assert_int_equal(drv_sigv4_sign(&in, &out), 0);
    assert_string_not_equal(out.signature,
                            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    drv_sigv4_out_free(&out);
}

static void test_tc3(void **state)
{
    (void)state;
    const json_t *v = json_object_get(vectors, "tencent_tc3");
    const char *payload = str(v, "payload");
    struct drv_tc3_in in = {"AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
                            str(v, "secret_key"),
                            str(v, "service"),
                            str(v, "host"),
                            str(v, "content_type"),
                            payload,
                            strlen(payload),
                            (int64_t)json_integer_value(json_object_get(v, "timestamp"))};
    struct drv_tc3_out out;
    assert_int_equal(drv_tc3_sign(&in, &out), 0);
    assert_string_equal(out.date, str(v, "utc_date"));
    assert_string_equal(out.canonical_request.p, str(v, "canonical_request"));
    char h[65];
    drv_sha256_hex(payload, strlen(payload), h);
    assert_string_equal(h, str(v, "payload_sha256"));
    drv_sha256_hex(out.canonical_request.p, out.canonical_request.len, h);
    assert_string_equal(h, str(v, "canonical_request_sha256"));
    assert_string_equal(out.signature, str(v, "signature"));
    assert_non_null(
        strstr(out.authorization,
               "Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request"));
    drv_tc3_out_free(&out);
}

/* The credential scope uses the UTC date: 23:30 UTC on 2019-02-25 is the
 * 26th in Beijing, and must still sign as 2019-02-25. */
static void test_tc3_utc_date(void **state)
{
    (void)state;
    struct drv_tc3_in in = {"id", "key", "cvm",     "cvm.tencentcloudapi.com", "application/json",
                            "{}", 2,     1551137400 /* 2019-02-25T23:30:00Z */};
    struct drv_tc3_out out;
    assert_int_equal(drv_tc3_sign(&in, &out), 0);
    assert_string_equal(out.date, "2019-02-25");
    assert_non_null(strstr(out.string_to_sign.p, "\n2019-02-25/cvm/tc3_request\n"));
    drv_tc3_out_free(&out);
}

static void test_aliyun(void **state)
{
    (void)state;
    const json_t *v = json_object_get(vectors, "aliyun_rpc_v1");
    const json_t *params = json_object_get(v, "params");
    struct drv_aliyun_param p[16];
    size_t n = 0;
    const char *k;
    json_t *val;
    /* Fed in reverse order so the sort is exercised. */
    json_object_foreach((json_t *)params, k, val)
    {
        p[n++] = (struct drv_aliyun_param){k, json_string_value(val)};
    }
    for (size_t i = 0; i < n / 2; i++) {
        struct drv_aliyun_param t = p[i];
        p[i] = p[n - 1 - i];
        p[n - 1 - i] = t;
    }
    struct drv_buf q, sts;
    drv_buf_init(&q, 0);
    drv_buf_init(&sts, 0);
    char sig[64];
    assert_int_equal(drv_aliyun_sign(str(v, "method"), p, n, str(v, "secret"), &q, &sts, sig), 0);
    assert_string_equal(sts.p, str(v, "string_to_sign"));
    assert_string_equal(sig, str(v, "signature"));
    drv_buf_free(&q);
    drv_buf_free(&sts);
}

/* RFC 3986 encoding as Alibaba requires: space %20 (not '+'), '*' %2A, '~' kept. */
static void test_pct_encode(void **state)
{
    (void)state;
    struct drv_buf b;
    drv_buf_init(&b, 0);
    assert_int_equal(drv_pct_encode(&b, "a b*c~d/e:f+é", false), 0);
    assert_string_equal(b.p, "a%20b%2Ac~d%2Fe%3Af%2B%C3%A9");
    drv_buf_free(&b);
}

static void test_ncp(void **state)
{
    (void)state;
    json_t *v = load_json("vectors/ncp_v2.json");
    char sig[64];
    assert_int_equal(drv_ncp_sign(str(v, "method"), str(v, "uri"), str(v, "timestamp"),
                                  str(v, "access_key"), str(v, "secret_key"), sig),
                     0);
    assert_string_equal(sig, str(v, "signature"));
    json_decref(v);
}

static char *slurp(const char *rel)
{
    char path[512];
    const char *dir = getenv("PT_TEST_DATA");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/data", rel);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

static size_t b64url_decode(const char *in, size_t n, unsigned char *out)
{
    char tmp[2048];
    assert_true(n + 4 < sizeof tmp);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) tmp[w++] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
    while (w % 4) tmp[w++] = '=';
    int len = EVP_DecodeBlock(out, (unsigned char *)tmp, (int)w);
    assert_true(len >= 0);
    size_t pad = 0;
    while (pad < w && tmp[w - 1 - pad] == '=') pad++;
    return (size_t)len - pad;
}

static void test_jwt(void **state)
{
    (void)state;
    char *key = slurp("drivers/TEST-ONLY-rsa-key.pem"),
         *pub = slurp("drivers/TEST-ONLY-rsa-pub.pem");
    const char *header = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
    const char *claims = "{\"iss\":\"svc@test.iam.gserviceaccount.com\",\"aud\":\"https://"
                         "oauth2.googleapis.com/token\","
                         "\"iat\":1700000000,\"exp\":1700003600}";
    struct drv_buf jwt;
    drv_buf_init(&jwt, 0);
    assert_int_equal(drv_jwt_rs256(key, header, claims, &jwt), 0);
    char *dot1 = strchr(jwt.p, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    assert_non_null(dot2);
    unsigned char dec[2048];
    size_t n = b64url_decode(jwt.p, (size_t)(dot1 - jwt.p), dec);
    assert_int_equal(n, strlen(header));
    assert_memory_equal(dec, header, n);
    n = b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), dec);
    assert_int_equal(n, strlen(claims));
    assert_memory_equal(dec, claims, n);
    assert_null(strpbrk(jwt.p, "+/=")); /* base64url, unpadded */

    unsigned char sig[1024];
    size_t siglen = b64url_decode(dot2 + 1, strlen(dot2 + 1), sig);
    BIO *bio = BIO_new_mem_buf(pub, -1);
    EVP_PKEY *pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(pk);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pk), 1);
    assert_int_equal(
        EVP_DigestVerify(ctx, sig, siglen, (unsigned char *)jwt.p, (size_t)(dot2 - jwt.p)), 1);
    /* A tampered payload must not verify. */
    jwt.p[dot1 - jwt.p + 3] ^= 1;
    EVP_MD_CTX_reset(ctx);
    assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pk), 1);
    assert_int_not_equal(
        EVP_DigestVerify(ctx, sig, siglen, (unsigned char *)jwt.p, (size_t)(dot2 - jwt.p)), 1);
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pk);
    drv_buf_free(&jwt);

    /* A key that is not a PEM private key is a configuration error. */
    drv_buf_init(&jwt, 0);
    assert_int_equal(drv_jwt_rs256("not a key", header, claims, &jwt), DRV_E_CONFIG);
    drv_buf_free(&jwt);
    free(key);
    free(pub);
}

static void test_parse_time(void **state)
{
    (void)state;
    int64_t t;
    assert_int_equal(drv_parse_time("2019-02-25T23:30:00Z", &t), 0);
    assert_int_equal(t, 1551137400);
    assert_int_equal(drv_parse_time("2019-02-26T07:30:00+08:00", &t), 0);
    assert_int_equal(t, 1551137400);
    assert_int_equal(drv_parse_time("2019-02-25T23:30:00.123456Z", &t), 0);
    assert_int_equal(t, 1551137400);
    assert_int_equal(drv_parse_time("2019-02-25 23:30:00", &t), 0);
    assert_int_equal(t, 1551137400);
    assert_int_equal(drv_parse_time("yesterday", &t), -EINVAL);
}

int main(void)
{
    vectors = load_json("vectors/signing.json");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigv4),      cmocka_unit_test(test_sigv4_secret_matters),
        cmocka_unit_test(test_tc3),        cmocka_unit_test(test_tc3_utc_date),
        cmocka_unit_test(test_aliyun),     cmocka_unit_test(test_pct_encode),
        cmocka_unit_test(test_ncp),        cmocka_unit_test(test_jwt),
        cmocka_unit_test(test_parse_time),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    json_decref(vectors);
    return rc;
}
