/* Configuration files (JSON, via jansson) with errors that name the file,
 * the line, the key and what was expected:
 *
 *   /etc/pantala/pantalad.json:12: key "ingest.max_age": expected a
 *   duration such as "2h", got 7
 *
 * Keys are dotted paths into nested objects ("store.retention"). Every
 * getter marks its key as known; pt_conf_finish() then rejects keys nobody
 * asked for, so a typo is an error instead of a silently ignored setting.
 * A missing key takes the getter's default. The first error stops the load:
 * getters return PT_E_CONFIG and pt_conf_error() says why.
 *
 * Files may hold whole-line comments starting with "#" or "//". */
#ifndef PT_CONF_H
#define PT_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct pt_conf {
    char name[256]; /* file name used in messages */
    char *text;     /* the source, NUL-terminated, for locating keys */
    json_t *root;   /* an object */
    char **known;   /* dotted paths asked for */
    size_t nknown, capknown;
    char err[768];
};

/* Reads and parses path. Returns 0, -errno (message in c->err), or
 * PT_E_CONFIG for a syntax error or a root that is not an object. */
int pt_conf_load(struct pt_conf *c, const char *path);
/* Parses text[0..len) as if it came from a file called name. */
int pt_conf_parse(struct pt_conf *c, const char *name, const char *text, size_t len);
void pt_conf_close(struct pt_conf *c);
const char *pt_conf_error(const struct pt_conf *c);

/* Getters. *out is set to def when the key is absent. Strings returned
 * point into the document and live until pt_conf_close(). */
int pt_conf_str(struct pt_conf *c, const char *key, const char *def, const char **out);
int pt_conf_int(struct pt_conf *c, const char *key, int64_t min, int64_t max, int64_t def,
                int64_t *out);
int pt_conf_bool(struct pt_conf *c, const char *key, bool def, bool *out);
/* A duration string ("10s", "2h") or a number of seconds; min/max in ns. */
int pt_conf_duration(struct pt_conf *c, const char *key, int64_t min, int64_t max, int64_t def,
                     int64_t *out);
/* An array of non-empty strings; *out is NULL and *n 0 when absent. The
 * array (not the strings) is heap-allocated: free() it. */
int pt_conf_strlist(struct pt_conf *c, const char *key, const char ***out, size_t *n);
/* The raw JSON value (or NULL), marked known with everything below it. */
json_t *pt_conf_json(struct pt_conf *c, const char *key);

/* Fails on the first key present in the document that no getter asked for. */
int pt_conf_finish(struct pt_conf *c);

/* Sets c->err to "name:line: key "key": msg" and returns PT_E_CONFIG;
 * for checks done by the caller (e.g. "must be host:port"). */
int pt_conf_fail(struct pt_conf *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Line (1-based) where key is defined in the source, or 0 if not found. */
int pt_conf_line(const struct pt_conf *c, const char *key);

#endif
