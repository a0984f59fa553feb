/* Form bodies (form.h): split on '&', then '=', then %XX and '+' decoded
 * in place; everything checked before it becomes a JSON string. */
#include "form.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes %XX and '+' of a form name or value in place; false on a bad
 * escape or %00 (a NUL would cut the string short). */
static bool form_decode(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (*p == '+') {
            *o++ = ' ';
        } else if (*p == '%') {
            int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return false;
            *o++ = (char)(hi * 16 + lo);
            p += 2;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return true;
}

static json_t *refuse(json_t *obj, char *copy, char *err, size_t errlen, const char *why)
{
    snprintf(err, errlen, "request body: %s", why);
    json_decref(obj);
    free(copy);
    return NULL;
}

json_t *compat_form_parse(const char *body, size_t len, char *err, size_t errlen)
{
    char *copy = strndup(body, len);
    json_t *obj = json_object();
    if (!copy || !obj) return refuse(obj, copy, err, errlen, "out of memory reading it");
    if (strlen(copy) != len) return refuse(obj, copy, err, errlen, "a NUL byte in the form fields");
    char *save = NULL;
    for (char *kv = strtok_r(copy, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        char *v = eq ? eq + 1 : kv + strlen(kv);
        if (eq) *eq = '\0';
        if (!form_decode(kv) || !form_decode(v) || !*kv)
            return refuse(obj, copy, err, errlen,
                          "a malformed form field (bad %-escape or no name)");
        /* jansson takes UTF-8 only; say so rather than lose the field. */
        json_t *s = json_string(v);
        if (!s || json_object_set_new(obj, kv, s))
            return refuse(obj, copy, err, errlen, "a form field that is not UTF-8");
    }
    free(copy);
    return obj;
}
