/* The metric catalog (shared/METRICS.md) and the wire symbol table.
 *
 * Every measurement name, field name and common tag key has a small symbol
 * id; frames may carry the id instead of the string to stay small. Ids are
 * part of protocol v1: the table is append-only, an id never changes
 * meaning. */
#ifndef PT_CATALOG_H
#define PT_CATALOG_H

#include <stddef.h>
#include <stdint.h>

enum pt_ftype { PT_F_FLOAT = 1, PT_F_INT = 2, PT_F_UINT = 3, PT_F_STR = 4 };

struct pt_metric {
    const char *measurement;
    const char *field;
    const char *unit; /* "%", "bytes", "/s", "KiB/s", ... or "" */
    uint8_t type;     /* enum pt_ftype */
    uint8_t rate;     /* 1 when computed from two counter readings */
    const char *desc;
};

/* The 53 required metrics of METRICS.md, in catalog order. */
extern const struct pt_metric pt_catalog[];
extern const size_t pt_catalog_len;

/* Looks up field in measurement; NULL when not in the catalog. */
const struct pt_metric *pt_catalog_find(const char *measurement, const char *field);

/* Symbol id of the string s[0..len), or 0 when it has none. Thread-safe. */
uint32_t pt_sym_find(const char *s, size_t len);
/* The string of symbol id (and its length), or NULL for an unknown id. */
const char *pt_sym_name(uint32_t id, uint32_t *len);
/* Number of symbols (ids run from 1 to pt_sym_count()). */
uint32_t pt_sym_count(void);

#endif
