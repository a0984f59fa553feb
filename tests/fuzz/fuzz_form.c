/* libFuzzer target for the form bodies of the /dragonfly routes
 * (collector/compat/form.c): arbitrary bytes through compat_form_parse().
 * A refusal must say why; an accepted body must be an object of strings
 * with non-empty names, and must survive a round trip: encoding the object
 * back to a form and parsing that gives the same object. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "form.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond, what)                                                         \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "fuzz_form: %s (%s:%d)\n", what, __FILE__, __LINE__); \
            abort();                                                              \
        }                                                                         \
    } while (0)

/* Percent-encodes s (every byte but unreserved ones) onto out at *n. */
static void encode(char *out, size_t *n, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            out[(*n)++] = (char)*p;
        } else {
            out[(*n)++] = '%';
            out[(*n)++] = hex[*p >> 4];
            out[(*n)++] = hex[*p & 15];
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[160] = "";
    json_t *o = compat_form_parse((const char *)data, size, err, sizeof err);
    if (!o) {
        CHECK(err[0] != '\0', "refused without a reason");
        return 0;
    }
    CHECK(json_is_object(o), "not an object");
    /* Decoded text is never longer than its form: 3x covers the re-encoding. */
    char *form = malloc(3 * size + 2);
    CHECK(form != NULL, "out of memory");
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        CHECK(k[0] != '\0', "empty name accepted");
        CHECK(json_is_string(v), "value not a string");
        if (n) form[n++] = '&';
        encode(form, &n, k);
        form[n++] = '=';
        encode(form, &n, json_string_value(v));
    }
    json_t *again = compat_form_parse(form, n, err, sizeof err);
    CHECK(again != NULL, "re-encoded form refused");
    CHECK(json_equal(o, again), "round trip changed the fields");
    json_decref(again);
    json_decref(o);
    free(form);
    return 0;
}
