/* HTTP calls to pantalad's API for the provisioner. */
#include "collector.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#define BODY_MAX (4 * 1024 * 1024)

int prov_coll_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

void prov_agent_reg_free(struct prov_agent_reg *r)
{
    if (!r) return;
    if (r->config_json) {
        memset(r->config_json, 0, strlen(r->config_json)); /* it holds the agent's key */
        free(r->config_json);
    }
    r->config_json = NULL;
}

struct body {
    char *p;
    size_t len;
};

static size_t on_data(char *data, size_t size, size_t n, void *ud)
{
    struct body *b = ud;
    size_t add = size * n;
    if (b->len + add > BODY_MAX) return 0;
    char *p = realloc(b->p, b->len + add + 1);
    if (!p) return 0;
    memcpy(p + b->len, data, add);
    b->p = p;
    b->len += add;
    b->p[b->len] = '\0';
    return add;
}

/* One request; *json gets the parsed body (NULL when not JSON). Returns the
 * HTTP status, or <0 with err when no answer came. */
static long request(const struct prov_collector *c, const char *method, const char *path,
                    const char *body, json_t **json, char *err, size_t errlen)
{
    *json = NULL;
    CURL *h = curl_easy_init();
    if (!h) return -ENOMEM;
    char url[1024], auth[600];
    size_t ulen = strlen(c->api_url);
    while (ulen && c->api_url[ulen - 1] == '/') ulen--;
    snprintf(url, sizeof url, "%.*s%s", (int)ulen, c->api_url, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->token ? c->token : "");
    struct curl_slist *hdr = curl_slist_append(NULL, auth);
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    struct body b = {0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(c->timeout_ms > 0 ? c->timeout_ms : 10000));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    if (body) curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    CURLcode rc = curl_easy_perform(h);
    long status = -EIO;
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "collector API %s: %s", c->api_url, curl_easy_strerror(rc));
    } else {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (b.p) *json = json_loads(b.p, 0, NULL);
        if (status >= 400) {
            json_t *e = *json ? json_object_get(*json, "error") : NULL;
            const char *msg = e ? json_string_value(json_object_get(e, "message")) : NULL;
            snprintf(err, errlen, "collector API %s %s: HTTP %ld: %s", method, path, status,
                     msg ? msg : (b.p ? b.p : ""));
        }
    }
    free(b.p);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return status;
}

int prov_coll_register(const struct prov_collector *c, const char *ns, const char *mcis,
                       const char *vm, const char *csp, const char *interval,
                       const char *collector_udp, struct prov_agent_reg *out, uint64_t *existing,
                       char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    json_t *req =
        json_pack("{s:s,s:s,s:s,s:s}", "ns", ns, "mcis", mcis, "vm", vm, "csp", csp ? csp : "");
    char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!text) return -ENOMEM;
    json_t *resp;
    long st = request(c, "POST", "/api/v1/agents", text, &resp, err, errlen);
    free(text);
    int ret = 0;
    if (st == 409) {
        json_t *e = json_object_get(resp, "error");
        *existing = (uint64_t)json_integer_value(json_object_get(e, "agent_id"));
        ret = -EEXIST;
    } else if (st != 201) {
        ret = st < 0 ? (int)st : -EIO;
    } else {
        json_t *cfg = json_object_get(resp, "agent_config");
        out->id = (uint64_t)json_integer_value(json_object_get(resp, "id"));
        if (!json_is_object(cfg) || !out->id) {
            snprintf(err, errlen, "collector API: the registration answer has no agent_config");
            ret = -EPROTO;
        } else {
            if (interval) json_object_set_new(cfg, "interval", json_string(interval));
            if (collector_udp) json_object_set_new(cfg, "collector", json_string(collector_udp));
            out->config_json = json_dumps(cfg, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            if (!out->config_json) ret = -ENOMEM;
        }
        /* The key is in the answer; do not leave it in freed memory. */
        json_t *key = json_object_get(resp, "key");
        if (json_is_string(key)) memset((char *)json_string_value(key), 0, json_string_length(key));
        if (json_is_object(cfg) && json_is_string(json_object_get(cfg, "key"))) {
            json_t *k = json_object_get(cfg, "key");
            memset((char *)json_string_value(k), 0, json_string_length(k));
        }
    }
    json_decref(resp);
    return ret;
}

static void copy_str(char *dst, size_t cap, json_t *v)
{
    snprintf(dst, cap, "%s", json_is_string(v) ? json_string_value(v) : "");
}

int prov_coll_agent(const struct prov_collector *c, uint64_t id, struct prov_agent_state *out,
                    char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    char path[64];
    snprintf(path, sizeof path, "/api/v1/agents/%" PRIu64, id);
    json_t *resp;
    long st = request(c, "GET", path, NULL, &resp, err, errlen);
    int ret = 0;
    if (st == 200 && json_is_object(resp)) {
        out->exists = true;
        copy_str(out->ns, sizeof out->ns, json_object_get(resp, "ns"));
        copy_str(out->mcis, sizeof out->mcis, json_object_get(resp, "mcis"));
        copy_str(out->vm, sizeof out->vm, json_object_get(resp, "vm"));
        copy_str(out->status, sizeof out->status, json_object_get(resp, "status"));
        out->accepted = (uint64_t)json_integer_value(
            json_object_get(json_object_get(resp, "frames"), "accepted"));
    } else if (st != 404) {
        ret = st < 0 ? (int)st : -EIO;
    }
    json_decref(resp);
    return ret;
}

int prov_coll_find(const struct prov_collector *c, const char *ns, const char *mcis, const char *vm,
                   uint64_t *id, char *err, size_t errlen)
{
    *id = 0;
    char path[600], *ens = curl_easy_escape(NULL, ns, 0), *emcis = curl_easy_escape(NULL, mcis, 0);
    if (!ens || !emcis) {
        curl_free(ens);
        curl_free(emcis);
        return -ENOMEM;
    }
    snprintf(path, sizeof path, "/api/v1/agents?ns=%s&mcis=%s", ens, emcis);
    curl_free(ens);
    curl_free(emcis);
    json_t *resp;
    long st = request(c, "GET", path, NULL, &resp, err, errlen);
    if (st != 200) {
        json_decref(resp);
        return st < 0 ? (int)st : -EIO;
    }
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(resp, "agents"), i, a)
    {
        const char *v = json_string_value(json_object_get(a, "vm"));
        if (v && !strcmp(v, vm)) *id = (uint64_t)json_integer_value(json_object_get(a, "id"));
    }
    json_decref(resp);
    return 0;
}

int prov_coll_delete(const struct prov_collector *c, uint64_t id, char *err, size_t errlen)
{
    char path[64];
    snprintf(path, sizeof path, "/api/v1/agents/%" PRIu64, id);
    json_t *resp;
    long st = request(c, "DELETE", path, NULL, &resp, err, errlen);
    json_decref(resp);
    if (st == 200 || st == 204 || st == 404) return 0;
    return st < 0 ? (int)st : -EIO;
}
