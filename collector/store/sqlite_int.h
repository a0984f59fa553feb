/* Private to the SQLite backend (sqlite.c, rollup.c): the roll-up tiers and
 * the one SQLite-error mapping they share. docs/storage.md describes both. */
#ifndef COLL_STORE_SQLITE_INT_H
#define COLL_STORE_SQLITE_INT_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pt/log.h"
#include "pt/wire.h"

/* Logs what failed with SQLite's message (through c when given) and maps
 * rc to a Pantala code (sqlite.c). */
int store_sq_error(struct pt_complain *c, sqlite3 *db, int rc, const char *what);

/* Roll-up tiers: per series and bucket of the tier's width, per numeric
 * field the count, min, max, sum and last value (with the time of that
 * last point). Tier 0 is 1 minute, tier 1 is 1 hour. */
#define ROLLUP_NTIERS 2
extern const int64_t rollup_width[ROLLUP_NTIERS];
extern const char *const rollup_name[ROLLUP_NTIERS]; /* "1m", "1h" */
/* Fields of one roll-up row at most; fields beyond are left out of the
 * tiers (the raw points keep them) and logged. */
#define ROLLUP_MAX_FIELDS 256

/* The summary of one field in one bucket. name points into the point, the
 * stored row or the tier's scratch space: valid as long as that is. */
struct ragg {
    const char *name;
    uint8_t nlen;
    uint8_t type; /* enum pt_ftype of the values (float when mixed) */
    uint32_t n;
    double min, max, sum, last;
    int64_t last_ts;
};

/* The CREATE TABLE statements of the tiers (schema version 2). */
extern const char rollup_schema_sql[];

/* A row's blob, per field: a flags byte (type in the low nibble; 0x10 the
 * name is a catalog symbol id; 0x20 min = max = last, one value stored),
 * the name (u16 LE symbol id, or u8 length and bytes), varint n, f64 min
 * (and unless constant max, sum, last; little-endian), zigzag varint of
 * last_ts - base (the bucket start). Decoded names point into blob or the
 * catalog. Both return 0 or PT_E_LIMIT / PT_E_STORE (corrupt). */
#define ROLLUP_FIELD_MAX (1 + 1 + PT_WIRE_MAX_STR + 10 + 32 + 10)
int rollup_encode(const struct ragg *f, size_t nf, int64_t base, uint8_t *out, size_t cap,
                  size_t *len);
int rollup_decode(const void *blob, size_t len, int64_t base, struct ragg *f, size_t cap,
                  size_t *nf);

/* The writer side: roll-up changes of one write batch, kept in memory
 * while the batch's points are inserted and applied to the tier tables by
 * rollup_flush() inside the same transaction. */
struct rollup;
/* Prepares statements on the writer connection db (the tables exist). */
int rollup_open(sqlite3 *db, struct pt_complain *complain, struct rollup **out);
void rollup_close(struct rollup *r);
/* Forgets the pending changes (after a rollback, or after a flush). */
void rollup_reset(struct rollup *r);
/* A new point (not stored before) of series at ts: adds its numeric fields
 * to the 1 m and 1 h buckets holding ts. */
int rollup_add(struct rollup *r, int64_t series, int64_t ts, const struct pt_field *f, uint16_t nf);
/* A point of series at ts was replaced by different values: the buckets
 * holding ts are recomputed at flush (1 m from the raw points, then 1 h
 * from the 1 m rows), so nothing is counted twice. */
int rollup_replaced(struct rollup *r, int64_t series, int64_t ts);
/* Writes the pending changes into the tier tables. */
int rollup_flush(struct rollup *r);
/* Deletes the rows of series in tier t whose bucket starts before cutoff;
 * returns the count or <0. */
int64_t rollup_retention(struct rollup *r, int t, int64_t series, int64_t cutoff_ns);
/* Rebuilds every tier row of series from its raw points (the migration
 * from schema version 1, which had no tiers). */
int rollup_rebuild(struct rollup *r, int64_t series);

#endif
