/* Agent registrations for pantala-loadgen: the collector's agents API over
 * libcurl's multi interface, and the agents file. */
#include "lg_register.h"

#include "pt/time.h"
#include "pt/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#define RESP_MAX 65536 /* a registration answer is ~200 bytes */

int lg_reg_set(struct lg_reg *r, const char *ns, const char *mcis, const char *vm, const char *csp)
{
    memset(r, 0, sizeof *r);
    r->ns = strdup(ns);
    r->mcis = strdup(mcis);
    r->vm = strdup(vm);
    r->csp = strdup(csp);
    return r->ns && r->mcis && r->vm && r->csp ? 0 : -ENOMEM;
}

void lg_regs_free(struct lg_reg *regs, size_t n)
{
    if (!regs) return;
    for (size_t i = 0; i < n; i++) {
        free(regs[i].ns);
        free(regs[i].mcis);
        free(regs[i].vm);
        free(regs[i].csp);
    }
    free(regs);
}

/* ---- the API -------------------------------------------------------------- */

/* One request in flight. */
struct xfer {
    CURL *easy;
    size_t idx; /* into regs */
    char body[1200];
    char resp[RESP_MAX];
    size_t resp_len;
    bool too_big;
};

/* libcurl errors, converted once. */
static int curl_err(CURLcode c)
{
    switch (c) {
    case CURLE_OK:
        return 0;
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_COULDNT_CONNECT:
        return -ECONNREFUSED;
    case CURLE_COULDNT_RESOLVE_HOST:
        return -EHOSTUNREACH;
    default:
        return -EIO;
    }
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct xfer *x = userdata;
    size_t n = size * nmemb;
    if (n > sizeof x->resp - 1 - x->resp_len) {
        x->too_big = true;
        return 0; /* aborts the transfer */
    }
    memcpy(x->resp + x->resp_len, ptr, n);
    x->resp_len += n;
    x->resp[x->resp_len] = '\0';
    return n;
}

static int json_body(const struct lg_reg *r, char *out, size_t cap)
{
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s}", "ns", r->ns, "mcis", r->mcis, "vm", r->vm, "csp", r->csp);
    if (!o) return -ENOMEM;
    size_t n = json_dumpb(o, out, cap - 1, JSON_COMPACT);
    json_decref(o);
    if (n == 0 || n >= cap - 1) return -ENAMETOOLONG;
    out[n] = '\0';
    return 0;
}

static int start(CURLM *multi, struct xfer *x, const char *url, struct curl_slist *hdrs,
                 struct lg_reg *r, size_t idx)
{
    int rc = json_body(r, x->body, sizeof x->body);
    if (rc) return rc;
    x->idx = idx;
    x->resp_len = 0;
    x->resp[0] = '\0';
    x->too_big = false;
    curl_easy_reset(x->easy);
    curl_easy_setopt(x->easy, CURLOPT_URL, url);
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->body);
    curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
    curl_easy_setopt(x->easy, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
    return curl_multi_add_handle(multi, x->easy) == CURLM_OK ? 0 : -EIO;
}

/* Reads the answer to one registration into r. */
static int finish(struct xfer *x, CURLcode cc, struct lg_reg *r, char *err, size_t errlen)
{
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    if (x->too_big) {
        snprintf(err, errlen, "agent %s/%s/%s: answer larger than %d bytes", r->ns, r->mcis, r->vm,
                 RESP_MAX);
        return -EMSGSIZE;
    }
    if (cc != CURLE_OK) {
        snprintf(err, errlen, "agent %s/%s/%s: %s", r->ns, r->mcis, r->vm, curl_easy_strerror(cc));
        return curl_err(cc);
    }
    if (status == 409) {
        snprintf(err, errlen,
                 "agent %s/%s/%s is already registered (409): reuse an --agents-file saved by "
                 "an earlier run, or pick another --ns",
                 r->ns, r->mcis, r->vm);
        return -EEXIST;
    }
    if (status != 201 && status != 200) {
        snprintf(err, errlen, "agent %s/%s/%s: HTTP %ld: %.300s", r->ns, r->mcis, r->vm, status,
                 x->resp);
        return status == 401 || status == 403 ? -EACCES : -EPROTO;
    }
    json_error_t je;
    json_t *o = json_loadb(x->resp, x->resp_len, 0, &je);
    json_t *id = json_object_get(o, "id"), *key = json_object_get(o, "key");
    int rc = 0;
    if (!json_is_integer(id) || json_integer_value(id) <= 0 || !json_is_string(key) ||
        pt_hex_decode(json_string_value(key), r->key, PT_WIRE_KEY_LEN)) {
        snprintf(err, errlen, "agent %s/%s/%s: unexpected answer: %.300s", r->ns, r->mcis, r->vm,
                 x->resp);
        rc = -EPROTO;
    } else {
        r->id = (uint64_t)json_integer_value(id);
        r->has_key = true;
    }
    json_decref(o);
    return rc;
}

int lg_register_api(const char *api, const char *token, struct lg_reg *regs, size_t n,
                    unsigned parallel, bool progress, char *err, size_t errlen)
{
    char url[1024], auth[1024];
    size_t alen = strlen(api);
    while (alen > 0 && api[alen - 1] == '/') alen--;
    if ((size_t)snprintf(url, sizeof url, "%.*s/api/v1/agents", (int)alen, api) >= sizeof url ||
        (size_t)snprintf(auth, sizeof auth, "Authorization: Bearer %s", token) >= sizeof auth) {
        snprintf(err, errlen, "API address or token too long");
        return -ENAMETOOLONG;
    }
    if (parallel == 0) parallel = 1;
    if (parallel > n) parallel = (unsigned)(n ? n : 1);

    struct curl_slist *hdrs = NULL, *h;
    if (!(h = curl_slist_append(hdrs, auth)) || !(hdrs = h) ||
        !(h = curl_slist_append(hdrs, "Content-Type: application/json")) || !(hdrs = h) ||
        !(h = curl_slist_append(hdrs, "Expect:")) || !(hdrs = h)) {
        curl_slist_free_all(hdrs);
        return -ENOMEM;
    }
    CURLM *multi = curl_multi_init();
    struct xfer *xs = calloc(parallel, sizeof *xs);
    int rc = (!multi || !xs) ? -ENOMEM : 0;
    for (unsigned i = 0; !rc && i < parallel; i++)
        if (!(xs[i].easy = curl_easy_init())) rc = -ENOMEM;
    if (rc) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)parallel);

    size_t next = 0, done = 0, running = 0;
    int64_t t0 = pt_mono_ns(), last_report = t0;
    for (unsigned i = 0; i < parallel && next < n; i++, next++, running++)
        if ((rc = start(multi, &xs[i], url, hdrs, &regs[next], next))) goto out;

    while (running > 0) {
        int still;
        if (curl_multi_perform(multi, &still) != CURLM_OK) {
            snprintf(err, errlen, "libcurl multi interface failed");
            rc = -EIO;
            goto out;
        }
        /* Completions first, then wait: a finished transfer must not sit
         * out a poll timeout before the next one starts. */
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            struct xfer *x = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            CURLcode cc = msg->data.result;
            curl_multi_remove_handle(multi, x->easy);
            running--;
            if ((rc = finish(x, cc, &regs[x->idx], err, errlen))) goto out;
            done++;
            if (next < n) {
                if ((rc = start(multi, x, url, hdrs, &regs[next], next))) goto out;
                next++;
                running++;
            }
        }
        int64_t now = pt_mono_ns();
        if (progress && (now - last_report >= PT_NS_PER_SEC || done == n)) {
            double s = (double)(now - t0) / 1e9;
            fprintf(stderr, "pantala-loadgen: registered %zu/%zu agents (%.0f/s)\n", done, n,
                    s > 0 ? (double)done / s : 0.0);
            last_report = now;
        }
        if (running > 0 && curl_multi_poll(multi, NULL, 0, 1000, NULL) != CURLM_OK) {
            snprintf(err, errlen, "libcurl multi interface failed");
            rc = -EIO;
            goto out;
        }
    }
out:
    if (xs) {
        for (unsigned i = 0; i < parallel; i++) {
            if (!xs[i].easy) continue;
            curl_multi_remove_handle(multi, xs[i].easy);
            curl_easy_cleanup(xs[i].easy);
        }
        free(xs);
    }
    if (multi) curl_multi_cleanup(multi);
    curl_slist_free_all(hdrs);
    return rc;
}

/* ---- the agents file ------------------------------------------------------ */

static const char *str_or(json_t *o, const char *k, const char *def)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : def;
}

int lg_agents_load(const char *path, struct lg_reg **out, size_t *nout, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    *out = NULL;
    *nout = 0;
    if (!root) {
        if (je.line > 0)
            snprintf(err, errlen, "%s:%d: %s", path, je.line, je.text);
        else
            snprintf(err, errlen, "%s", je.text);
        return -EINVAL;
    }
    if (!json_is_array(root) || json_array_size(root) == 0) {
        snprintf(err, errlen, "%s: expected a non-empty array of agents", path);
        json_decref(root);
        return -EINVAL;
    }
    size_t n = json_array_size(root);
    struct lg_reg *regs = calloc(n, sizeof *regs);
    int rc = regs ? 0 : -ENOMEM;
    size_t i;
    for (i = 0; !rc && i < n; i++) {
        json_t *a = json_array_get(root, i), *id = json_object_get(a, "id");
        const char *ns = str_or(a, "ns", NULL), *mcis = str_or(a, "mcis", NULL),
                   *vm = str_or(a, "vm", NULL), *key = str_or(a, "key", "");
        if (!json_is_integer(id) || json_integer_value(id) <= 0 || !ns || !mcis || !vm) {
            snprintf(err, errlen,
                     "%s: agent %zu: needs a positive \"id\", \"ns\", \"mcis\" and "
                     "\"vm\"",
                     path, i);
            rc = -EINVAL;
            break;
        }
        if ((rc = lg_reg_set(&regs[i], ns, mcis, vm, str_or(a, "csp", "aws")))) break;
        regs[i].id = (uint64_t)json_integer_value(id);
        if (*key) {
            if (pt_hex_decode(key, regs[i].key, PT_WIRE_KEY_LEN)) {
                snprintf(err, errlen, "%s: agent %zu: \"key\" must be %d hex digits", path, i,
                         2 * PT_WIRE_KEY_LEN);
                rc = -EINVAL;
                break;
            }
            regs[i].has_key = true;
        }
    }
    json_decref(root);
    if (rc) {
        if (rc == -ENOMEM) snprintf(err, errlen, "out of memory");
        lg_regs_free(regs, regs ? n : 0);
        return rc;
    }
    *out = regs;
    *nout = n;
    return 0;
}

int lg_agents_save(const char *path, const struct lg_reg *regs, size_t n, char *err, size_t errlen)
{
    json_t *root = json_array();
    int rc = root ? 0 : -ENOMEM;
    for (size_t i = 0; !rc && i < n; i++) {
        char hex[2 * PT_WIRE_KEY_LEN + 1] = "";
        if (regs[i].has_key) pt_hex_encode(regs[i].key, PT_WIRE_KEY_LEN, hex);
        json_t *a =
            json_pack("{s:I, s:s, s:s, s:s, s:s, s:s}", "id", (json_int_t)regs[i].id, "key", hex,
                      "ns", regs[i].ns, "mcis", regs[i].mcis, "vm", regs[i].vm, "csp", regs[i].csp);
        if (!a || json_array_append_new(root, a)) rc = -ENOMEM;
    }
    if (rc) {
        json_decref(root);
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *fp = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!fp) {
        rc = -errno;
        if (fd >= 0) close(fd);
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        json_decref(root);
        return rc;
    }
    /* One agent per line: readable, and diffs of saved files stay small. */
    fputs("[\n", fp);
    for (size_t i = 0; i < n; i++) {
        char *line = json_dumps(json_array_get(root, i), JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!line) {
            rc = -ENOMEM;
            break;
        }
        fprintf(fp, "  %s%s\n", line, i + 1 < n ? "," : "");
        free(line);
    }
    fputs("]\n", fp);
    json_decref(root);
    if (fclose(fp) != 0 && !rc) rc = -errno;
    if (rc) snprintf(err, errlen, "%s: %s", path, strerror(-rc));
    return rc;
}
