/* Helpers shared by the agent's unit tests: fixture paths and assertions on
 * measurement fields. Include after <cmocka.h>. */
#ifndef AGENT_TEST_H
#define AGENT_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pt/catalog.h"
#include "pt/wire.h"

#include "collectors/meas.h"

/* "<PT_TEST_DATA>/linux/<name>/<t>/proc", the proc root of a fixture. */
static inline const char *fixture(char *buf, size_t len, const char *name, const char *t)
{
    const char *data = getenv("PT_TEST_DATA");
    snprintf(buf, len, "%s/linux/%s/%s/proc", data ? data : "tests/data", name, t);
    return buf;
}

/* "<PT_TEST_DATA>/linux/<name>/<t>/<sub>": a fixture's sys tree or other
 * file ("sys", "statvfs"). */
static inline const char *fixture_in(char *buf, size_t len, const char *name, const char *t,
                                     const char *sub)
{
    const char *data = getenv("PT_TEST_DATA");
    snprintf(buf, len, "%s/linux/%s/%s/%s", data ? data : "tests/data", name, t, sub);
    return buf;
}

/* The measurement of out[0..n) tagged key=val, or NULL. */
static inline const struct pt_meas *meas_tagged(const struct pt_meas *out, unsigned n,
                                                const char *key, const char *val)
{
    for (unsigned i = 0; i < n; i++)
        for (unsigned j = 0; j < out[i].ntags; j++)
            if (pt_str_eq(out[i].tags[j].key, key) && pt_str_eq(out[i].tags[j].val, val))
                return &out[i];
    return NULL;
}

/* The field must exist, be a float, and equal want to 1e-9 relative. */
#define assert_field_float(m, key, want) assert_field_float_((m), (key), (want), __FILE__, __LINE__)
static inline void assert_field_float_(const struct pt_meas *m, const char *key, double want,
                                       const char *file, int line)
{
    const struct pt_field *fl = agent_meas_find(m, key);
    if (!fl) {
        print_error("%s: no field, expected %.17g\n", key, want);
        _fail(file, line);
    }
    if (fl->type != PT_F_FLOAT) {
        print_error("%s: type %d, expected a float\n", key, fl->type);
        _fail(file, line);
    }
    double tol = 1e-9 * (fabs(want) > 1 ? fabs(want) : 1);
    if (!(fabs(fl->v.f - want) <= tol)) {
        print_error("%s: %.17g, expected %.17g\n", key, fl->v.f, want);
        _fail(file, line);
    }
}

/* The field must exist, be unsigned, and equal want. */
#define assert_field_uint(m, key, want) assert_field_uint_((m), (key), (want), __FILE__, __LINE__)
static inline void assert_field_uint_(const struct pt_meas *m, const char *key, uint64_t want,
                                      const char *file, int line)
{
    const struct pt_field *fl = agent_meas_find(m, key);
    if (!fl || fl->type != PT_F_UINT || fl->v.u != want) {
        if (fl)
            print_error("%s: type %d value %llu, expected uint %llu\n", key, fl->type,
                        (unsigned long long)fl->v.u, (unsigned long long)want);
        else
            print_error("%s: no field, expected %llu\n", key, (unsigned long long)want);
        _fail(file, line);
    }
}

#define assert_no_field(m, key)                                                           \
    do {                                                                                  \
        if (agent_meas_find((m), (key))) fail_msg("%s: present, expected absent", (key)); \
    } while (0)

/* Every field has the type the catalog gives it (mem_available, beyond the
 * catalog, is bytes: unsigned). */
static inline void assert_catalog_types(const struct pt_meas *m)
{
    char meas[64], key[64];
    snprintf(meas, sizeof meas, "%.*s", (int)m->name.len, m->name.p);
    for (size_t i = 0; i < m->nfields; i++) {
        snprintf(key, sizeof key, "%.*s", (int)m->fields[i].key.len, m->fields[i].key.p);
        const struct pt_metric *c = pt_catalog_find(meas, key);
        int want = c ? c->type : PT_F_UINT;
        if (!c && strcmp(key, "mem_available") != 0)
            fail_msg("%s.%s: not in the catalog", meas, key);
        if (m->fields[i].type != want)
            fail_msg("%s.%s: type %d, catalog says %d", meas, key, m->fields[i].type, want);
    }
}

#endif
