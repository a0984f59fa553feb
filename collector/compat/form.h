/* application/x-www-form-urlencoded bodies (CB-Dragonfly's clients send
 * form fields to some of its routes). Depends on jansson only, so the
 * fuzzer (tests/fuzz/fuzz_form.c) builds it on its own. */
#ifndef COMPAT_FORM_H
#define COMPAT_FORM_H

#include <stddef.h>

#include <jansson.h>

/* len bytes of form text as an object of strings (the last of a repeated
 * name wins; empty pairs "&&" are skipped; "flag" alone is flag=""). NULL
 * with a message in err for a NUL byte, a bad %-escape, %00, a field
 * without a name, or a name or value that is not UTF-8 once decoded. */
json_t *compat_form_parse(const char *body, size_t len, char *err, size_t errlen);

#endif
