/* JSON configuration with located, key-naming errors. */
#include "pt/conf.h"
#include "pt/err.h"
#include "pt/time.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CONF_BYTES (4u << 20)

static void conf_reset(struct pt_conf *c, const char *name)
{
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
}

/* Whole-line comments ("# ..." or "// ..." after optional blanks) become
 * spaces, so commented files parse and line numbers stay right. A JSON
 * string cannot span lines, so no string is touched. */
static void blank_comments(char *t, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && (t[j] == ' ' || t[j] == '\t')) j++;
        bool comment = j < len && (t[j] == '#' || (t[j] == '/' && j + 1 < len && t[j + 1] == '/'));
        while (i < len && t[i] != '\n') {
            if (comment) t[i] = ' ';
            i++;
        }
        i++;
    }
}

int pt_conf_parse(struct pt_conf *c, const char *name, const char *text, size_t len)
{
    conf_reset(c, name);
    c->text = malloc(len + 1);
    if (!c->text) return -ENOMEM;
    memcpy(c->text, text, len);
    c->text[len] = '\0';
    blank_comments(c->text, len);
    json_error_t je;
    c->root = json_loadb(c->text, len, JSON_REJECT_DUPLICATES, &je);
    if (!c->root) {
        snprintf(c->err, sizeof c->err, "%s:%d:%d: invalid JSON: %s", c->name, je.line, je.column,
                 je.text);
        return PT_E_CONFIG;
    }
    if (!json_is_object(c->root)) {
        snprintf(c->err, sizeof c->err, "%s:1: expected a JSON object at the top level", c->name);
        return PT_E_CONFIG;
    }
    return 0;
}

int pt_conf_load(struct pt_conf *c, const char *path)
{
    conf_reset(c, path);
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        int e = errno;
        snprintf(c->err, sizeof c->err, "%s: cannot open: %s", path, strerror(e));
        return -e;
    }
    char *buf = malloc(MAX_CONF_BYTES + 1);
    size_t n = buf ? fread(buf, 1, MAX_CONF_BYTES + 1, fp) : 0;
    int rerr = ferror(fp);
    fclose(fp);
    if (!buf) return -ENOMEM;
    if (rerr || n > MAX_CONF_BYTES) {
        free(buf);
        snprintf(c->err, sizeof c->err, "%s: %s", path,
                 rerr ? "read error" : "file larger than 4 MiB");
        return rerr ? -EIO : -EFBIG;
    }
    int rc = pt_conf_parse(c, path, buf, n);
    free(buf);
    return rc;
}

void pt_conf_close(struct pt_conf *c)
{
    json_decref(c->root);
    /* The text may hold secrets (agent keys, API tokens). */
    if (c->text) explicit_bzero(c->text, strlen(c->text));
    free(c->text);
    for (size_t i = 0; i < c->nknown; i++) free(c->known[i]);
    free(c->known);
    c->root = NULL;
    c->text = NULL;
    c->known = NULL;
    c->nknown = c->capknown = 0;
}

const char *pt_conf_error(const struct pt_conf *c)
{
    return c->err;
}

/* ---- locating a key in the source ---------------------------------------- */

int pt_conf_line(const struct pt_conf *c, const char *key)
{
    if (!c->text) return 0;
    size_t base[64];
    int depth = 0;
    char path[512];
    size_t plen = 0;
    int line = 1;
    const char *p = c->text;
    base[0] = 0;
    while (*p) {
        char ch = *p;
        if (ch == '\n') {
            line++;
            p++;
        } else if (ch == '{' || ch == '[') {
            if (depth < 63) base[++depth] = plen;
            p++;
        } else if (ch == '}' || ch == ']') {
            if (depth > 0) plen = base[depth--];
            path[plen] = '\0';
            p++;
        } else if (ch == '"') {
            const char *s = ++p;
            while (*p && *p != '"') p += (*p == '\\' && p[1]) ? 2 : 1;
            size_t slen = (size_t)(p - s);
            if (*p) p++;
            const char *q = p;
            while (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n') q++;
            if (*q == ':') { /* an object key */
                plen = base[depth];
                int w = snprintf(path + plen, sizeof path - plen, "%s%.*s", plen ? "." : "",
                                 (int)slen, s);
                if (w < 0 || (size_t)w >= sizeof path - plen) return 0;
                plen += (size_t)w;
                if (strcmp(path, key) == 0) return line;
            }
        } else {
            p++;
        }
    }
    return 0;
}

int pt_conf_fail(struct pt_conf *c, const char *key, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line = pt_conf_line(c, key);
    if (line)
        snprintf(c->err, sizeof c->err, "%s:%d: key \"%s\": %s", c->name, line, key, msg);
    else
        snprintf(c->err, sizeof c->err, "%s: key \"%s\": %s", c->name, key, msg);
    return PT_E_CONFIG;
}

/* ---- lookup and known keys ----------------------------------------------- */

static void mark_known(struct pt_conf *c, const char *key)
{
    for (size_t i = 0; i < c->nknown; i++)
        if (strcmp(c->known[i], key) == 0) return;
    if (c->nknown == c->capknown) {
        size_t cap = c->capknown ? c->capknown * 2 : 32;
        char **k = realloc(c->known, cap * sizeof *k);
        if (!k) return;
        c->known = k;
        c->capknown = cap;
    }
    char *dup = strdup(key);
    if (dup) c->known[c->nknown++] = dup;
}

/* Resolves a dotted path; NULL when any step is absent. An intermediate
 * value that is not an object is reported as an error in c->err. */
static json_t *lookup(struct pt_conf *c, const char *key, int *rc)
{
    *rc = 0;
    mark_known(c, key);
    json_t *cur = c->root;
    const char *p = key;
    char part[256];
    while (cur) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n >= sizeof part) return NULL;
        memcpy(part, p, n);
        part[n] = '\0';
        json_t *next = json_object_get(cur, part);
        if (!dot || !next) return next;
        if (!json_is_object(next)) {
            char parent[256];
            snprintf(parent, sizeof parent, "%.*s", (int)(dot - key), key);
            *rc = pt_conf_fail(c, parent, "expected an object");
            return NULL;
        }
        cur = next;
        p = dot + 1;
    }
    return NULL;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "something else";
}

int pt_conf_str(struct pt_conf *c, const char *key, const char *def, const char **out)
{
    int rc;
    json_t *v = lookup(c, key, &rc);
    *out = def;
    if (rc || !v) return rc;
    if (!json_is_string(v)) return pt_conf_fail(c, key, "expected a string, got %s", type_name(v));
    *out = json_string_value(v);
    return 0;
}

int pt_conf_int(struct pt_conf *c, const char *key, int64_t min, int64_t max, int64_t def,
                int64_t *out)
{
    int rc;
    json_t *v = lookup(c, key, &rc);
    *out = def;
    if (rc || !v) return rc;
    if (!json_is_integer(v))
        return pt_conf_fail(c, key, "expected an integer, got %s", type_name(v));
    json_int_t i = json_integer_value(v);
    if (i < min || i > max)
        return pt_conf_fail(c, key, "expected an integer from %lld to %lld, got %lld",
                            (long long)min, (long long)max, (long long)i);
    *out = i;
    return 0;
}

int pt_conf_bool(struct pt_conf *c, const char *key, bool def, bool *out)
{
    int rc;
    json_t *v = lookup(c, key, &rc);
    *out = def;
    if (rc || !v) return rc;
    if (!json_is_boolean(v))
        return pt_conf_fail(c, key, "expected true or false, got %s", type_name(v));
    *out = json_is_true(v);
    return 0;
}

int pt_conf_duration(struct pt_conf *c, const char *key, int64_t min, int64_t max, int64_t def,
                     int64_t *out)
{
    int rc;
    json_t *v = lookup(c, key, &rc);
    *out = def;
    if (rc || !v) return rc;
    int64_t ns;
    if (json_is_integer(v) && json_integer_value(v) >= 0 &&
        json_integer_value(v) <= INT64_MAX / PT_NS_PER_SEC) {
        ns = (int64_t)json_integer_value(v) * PT_NS_PER_SEC;
    } else if (!json_is_string(v) || pt_duration_parse(json_string_value(v), &ns)) {
        if (json_is_string(v))
            return pt_conf_fail(c, key, "expected a duration such as \"10s\" or \"2h\", got \"%s\"",
                                json_string_value(v));
        return pt_conf_fail(c, key, "expected a duration such as \"10s\" or \"2h\", got %s",
                            type_name(v));
    }
    if (ns < min || ns > max) {
        char a[32], b[32];
        pt_duration_format(min, a, sizeof a);
        pt_duration_format(max, b, sizeof b);
        return pt_conf_fail(c, key, "expected a duration from %s to %s", a, b);
    }
    *out = ns;
    return 0;
}

int pt_conf_strlist(struct pt_conf *c, const char *key, const char ***out, size_t *n)
{
    int rc;
    json_t *v = lookup(c, key, &rc);
    *out = NULL;
    *n = 0;
    if (rc || !v) return rc;
    if (!json_is_array(v))
        return pt_conf_fail(c, key, "expected an array of strings, got %s", type_name(v));
    size_t len = json_array_size(v);
    if (len == 0) return 0;
    const char **arr = calloc(len, sizeof *arr);
    if (!arr) return -ENOMEM;
    for (size_t i = 0; i < len; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_string(e) || json_string_length(e) == 0) {
            free(arr);
            return pt_conf_fail(c, key, "element %zu: expected a non-empty string, got %s", i,
                                json_is_string(e) ? "an empty string" : type_name(e));
        }
        arr[i] = json_string_value(e);
    }
    *out = arr;
    *n = len;
    return 0;
}

json_t *pt_conf_json(struct pt_conf *c, const char *key)
{
    int rc;
    return lookup(c, key, &rc);
}

/* ---- unknown keys -------------------------------------------------------- */

static bool is_known(const struct pt_conf *c, const char *path, bool *prefix)
{
    size_t n = strlen(path);
    *prefix = false;
    for (size_t i = 0; i < c->nknown; i++) {
        if (strcmp(c->known[i], path) == 0) return true;
        if (strncmp(c->known[i], path, n) == 0 && c->known[i][n] == '.') *prefix = true;
    }
    return false;
}

static int check_object(struct pt_conf *c, json_t *obj, const char *base)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        char path[512];
        snprintf(path, sizeof path, "%s%s%s", base, *base ? "." : "", k);
        bool prefix;
        if (is_known(c, path, &prefix)) continue;
        if (prefix && json_is_object(v)) {
            int rc = check_object(c, v, path);
            if (rc) return rc;
            continue;
        }
        return pt_conf_fail(c, path, "unknown key (misspelt, or not valid here)");
    }
    return 0;
}

int pt_conf_finish(struct pt_conf *c)
{
    if (!c->root) return PT_E_CONFIG;
    return check_object(c, c->root, "");
}
