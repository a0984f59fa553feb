/* Generic webhook: the canonical event JSON POSTed as is, signed with
 * X-Pantala-Signature (HMAC-SHA256 of the body under the handler's secret)
 * and carrying the event id as Idempotency-Key. Payload: docs/alerting-notifiers.md. */
#include <errno.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "notify_int.h"
#include "pt/util.h"

static const char *const webhook_keys[] = {"url",     "secret",       "headers",
                                           "timeout", "tls_insecure", NULL};

static int webhook_validate(const json_t *s, char *err, size_t errlen)
{
    int rc = notify_check_keys(s, webhook_keys, err, errlen);
    if (rc == 0) rc = notify_check_str(s, "url", true, notify_http_schemes, err, errlen);
    if (rc == 0) rc = notify_check_str(s, "secret", false, NULL, err, errlen);
    if (rc == 0) rc = notify_check_http_common(s, err, errlen);
    return rc;
}

/* "sha256=" + 64 hex digits + NUL */
#define SIG_LEN (7 + 64 + 1)

static int sign(const char *secret, const char *body, size_t len, char out[SIG_LEN])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, len, mac,
              &maclen) ||
        maclen != 32)
        return -EIO;
    memcpy(out, "sha256=", 7);
    pt_hex_encode(mac, maclen, out + 7);
    return 0;
}

static int webhook_build(const json_t *ev, const char *handler, const json_t *s,
                         struct notify_req *req, char *err, size_t errlen)
{
    json_t *body = json_deep_copy(ev);
    if (!body) return -ENOMEM;
    json_object_set_new(body, "handler", json_string(handler ? handler : ""));
    int rc = notify_http_json(req, notify_setting(s, "url"), s, notify_dump(body), err, errlen);
    json_decref(body);
    if (rc < 0) return rc;
    rc = notify_add_header(req, "Idempotency-Key", notify_ev_str(ev, "id"));
    const char *secret = notify_setting(s, "secret");
    if (rc == 0 && secret) {
        char sig[SIG_LEN];
        rc = sign(secret, req->body, req->body_len, sig);
        if (rc == 0) rc = notify_add_header(req, "X-Pantala-Signature", sig);
    }
    if (rc < 0) snprintf(err, errlen, "could not sign or add headers");
    return rc;
}

const struct notify_ops notify_webhook_ops = {
    .name = "webhook",
    .validate = webhook_validate,
    .build = webhook_build,
};
