/* Inventory files: a JSON array of VMs to provision. */
#include "pt/prov.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

static const char *const keys[] = {"host", "port", "user", "key",    "ns",
                                   "mcis", "vm",   "csp",  "prefix", NULL};

static int entry(json_t *e, size_t i, const char *name, const struct prov_host *d,
                 struct prov_host *h, char *err, size_t errlen)
{
    if (!json_is_object(e)) {
        snprintf(err, errlen, "%s: entry %zu: expected an object", name, i + 1);
        return -EINVAL;
    }
    const char *k;
    json_t *v;
    json_object_foreach(e, k, v)
    {
        int known = 0;
        for (int j = 0; keys[j]; j++) known |= !strcmp(k, keys[j]);
        if (!known) {
            snprintf(err, errlen, "%s: entry %zu: unknown key \"%s\"", name, i + 1, k);
            return -EINVAL;
        }
        if (strcmp(k, "port") && !json_is_string(v)) {
            snprintf(err, errlen, "%s: entry %zu: key \"%s\": expected a string", name, i + 1, k);
            return -EINVAL;
        }
    }
    *h = *d;
#define STR(f) \
    if (json_object_get(e, #f)) h->f = json_string_value(json_object_get(e, #f))
    STR(host);
    STR(user);
    STR(key);
    STR(ns);
    STR(mcis);
    STR(vm);
    STR(csp);
    STR(prefix);
#undef STR
    json_t *port = json_object_get(e, "port");
    if (port) {
        json_int_t p = json_integer_value(port);
        if (!json_is_integer(port) || p < 1 || p > 65535) {
            snprintf(err, errlen, "%s: entry %zu: key \"port\": expected 1..65535", name, i + 1);
            return -EINVAL;
        }
        h->port = (uint16_t)p;
    }
    const char *req[] = {"host", "user", "ns", "mcis", "vm"};
    const char *val[] = {h->host, h->user, h->ns, h->mcis, h->vm};
    for (int j = 0; j < 5; j++)
        if (!val[j] || !*val[j]) {
            char where[300];
            if (h->host)
                snprintf(where, sizeof where, "entry %zu (%s)", i + 1, h->host);
            else
                snprintf(where, sizeof where, "entry %zu", i + 1);
            snprintf(err, errlen, "%s: %s: key \"%s\" is required", name, where, req[j]);
            return -EINVAL;
        }
    return 0;
}

int prov_inventory_parse(const char *text, size_t len, const char *name,
                         const struct prov_host *dflt, struct prov_inventory *out, char *err,
                         size_t errlen)
{
    memset(out, 0, sizeof *out);
    json_error_t je;
    json_t *doc = json_loadb(text, len, 0, &je);
    if (!doc) {
        snprintf(err, errlen, "%s:%d: %s", name, je.line, je.text);
        return -EINVAL;
    }
    json_t *list = json_is_object(doc) ? json_object_get(doc, "vms") : doc;
    if (!json_is_array(list) || json_array_size(list) == 0) {
        snprintf(err, errlen, "%s: expected a non-empty JSON array of VMs (or {\"vms\": [...]})",
                 name);
        json_decref(doc);
        return -EINVAL;
    }
    size_t n = json_array_size(list);
    struct prov_host none = {0};
    out->hosts = calloc(n, sizeof *out->hosts);
    if (!out->hosts) {
        json_decref(doc);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = entry(json_array_get(list, i), i, name, dflt ? dflt : &none, &out->hosts[i], err,
                       errlen);
        if (rc) {
            free(out->hosts);
            out->hosts = NULL;
            json_decref(doc);
            return rc;
        }
    }
    out->n = n;
    out->json = doc;
    return 0;
}

int prov_inventory_load(const char *path, const struct prov_host *dflt, struct prov_inventory *out,
                        char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -errno;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    size_t r;
    do {
        if (len + 4096 > cap) {
            char *nb = realloc(buf, cap = cap ? cap * 2 : 8192);
            if (!nb) {
                free(buf);
                fclose(f);
                return -ENOMEM;
            }
            buf = nb;
        }
        r = fread(buf + len, 1, cap - len, f);
        len += r;
    } while (r > 0 && len < (size_t)16 << 20);
    fclose(f);
    int rc = prov_inventory_parse(buf ? buf : "", len, path, dflt, out, err, errlen);
    free(buf);
    return rc;
}

void prov_inventory_free(struct prov_inventory *inv)
{
    free(inv->hosts);
    json_decref(inv->json);
    memset(inv, 0, sizeof *inv);
}
