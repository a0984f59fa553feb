/* Metric storage: one ops table, one file per backend (DESIGN §7).
 *
 * The writer thread calls write_batch(); API threads call query() and
 * latest() concurrently with it and with each other, so every backend must
 * be safe for one writer plus many readers at once. Only the embedded
 * SQLite backend is the default; InfluxDB 1.x and VictoriaMetrics are the
 * server backends. */
#ifndef COLL_STORE_H
#define COLL_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pt/wire.h"

struct store; /* a backend instance, opaque */

struct store_conf {
    const char *url;      /* "sqlite:///var/lib/pantala/metrics.db" or "sqlite:" + relative */
    const char *data_dir; /* where relative paths and default files go */
    int64_t retention_ns; /* raw points older than this are deleted; 0 keeps all */
    /* Backends with roll-up tiers (sqlite): how long the 1 m and 1 h
     * summaries are kept; 0 keeps them all. retention(cutoff) applies them
     * as cutoff + retention_ns - retention_1m_ns (resp. _1h_ns). */
    int64_t retention_1m_ns, retention_1h_ns;
    /* Server backends only (influxdb:, victoriametrics:, docs/storage.md). */
    const char *read_url;        /* where queries go, when not to url (a cluster) */
    const char *user, *password; /* HTTP basic auth; NULL: none */
    /* Counters the backend adds to (may be NULL): points the server refused
     * as invalid (HTTP 4xx), and points line protocol cannot carry. */
    _Atomic uint64_t *points_refused, *points_unwritable;
};

/* One measurement of one sample: what write_batch() stores. The strings
 * belong to the caller and live only for the call. */
struct store_point {
    const struct pt_ident *id; /* ns, mcis, vm (csp, host kept as metadata) */
    const struct pt_meas *m;   /* name, tags, typed fields */
    int64_t ts_ns;
};

enum store_agg {
    STORE_AGG_NONE = 0, /* raw points */
    STORE_AGG_MIN,
    STORE_AGG_MAX,
    STORE_AGG_AVG,
    STORE_AGG_LAST,
    STORE_AGG_SUM,
    STORE_AGG_COUNT,
    STORE_AGG_P95,
};
/* "min" ... "p95" → enum, -1 when unknown; and back. */
int store_agg_parse(const char *s);
const char *store_agg_name(enum store_agg a);

/* A range query for one measurement: every series (tag set) of it, each
 * field reduced per step bucket.
 *
 * Per VM (vm set): one result series per tag set of that VM.
 *
 * MCIS level (vm NULL): the VMs of ns/mcis.
 *  - group_by_vm: one result series per (VM, tag set), each reduced by agg
 *    exactly as a per-VM query would; store_series.vm names the VM.
 *  - otherwise across (MIN, MAX, AVG or SUM) combines the VMs at each step:
 *    first every VM's values in the bucket are reduced by agg (as per VM),
 *    then those per-VM results are combined by across. One result series
 *    per tag set (device=sda of every VM together, device=total together);
 *    store_series.vm is NULL. step must be > 0 and agg set.
 *
 * Tag filters (ntag_filters pairs) keep only series that have every listed
 * tag with exactly that value (e.g. device=total). */
struct store_query {
    const char *ns, *mcis, *vm; /* vm NULL: MCIS level */
    const char *measurement;
    const char *const *fields; /* NULL/0: every numeric field seen */
    size_t nfields;
    const char *const *tag_keys, *const *tag_vals; /* filters, ntag_filters each */
    size_t ntag_filters;
    int64_t from_ns, to_ns; /* [from, to) */
    int64_t step_ns;        /* 0: raw points; else buckets aligned to multiples of step */
    enum store_agg agg;     /* ignored when step is 0 */
    enum store_agg across;  /* MCIS level without group_by_vm: MIN, MAX, AVG or SUM */
    bool group_by_vm;       /* MCIS level: one series per VM */
    size_t max_rows;        /* per series; the query fails with -E2BIG beyond it */
};

/* Ceilings of one query, so that no request can exhaust memory: max_rows 0,
 * or above STORE_MAX_ROWS, means STORE_MAX_ROWS; more than STORE_MAX_COLS
 * columns in a series (requested, or discovered when fields is NULL), more
 * than STORE_MAX_VALUES cells in the whole result (or values held for p95),
 * or more than STORE_MAX_BUCKET values of one field in one p95 bucket fail
 * the query with -E2BIG. */
#define STORE_MAX_ROWS   1000000
#define STORE_MAX_COLS   256
#define STORE_MAX_VALUES (1 << 24)
#define STORE_MAX_BUCKET (1 << 22)

/* One series of a result. Rows are in time order; a bucket with no point
 * for any requested field is omitted. vals[row * nfields + col] is NaN
 * where a field had no value. */
struct store_series {
    char *vm; /* the VM of the series; NULL for an across-VM aggregate */
    char *measurement;
    char **tag_keys, **tag_vals; /* sorted by key */
    size_t ntags;
    char **fields;   /* column names */
    uint8_t *ftypes; /* enum pt_ftype of each column as stored (for rendering); PT_F_FLOAT
                      * for every column of an across=AVG result (an average of integers
                      * is not one) */
    size_t nfields;
    int64_t *ts; /* bucket start, or point time when raw */
    double *vals;
    size_t nrows;
};

/* Latest values of one series. */
struct store_latest {
    char *vm; /* always set */
    char *measurement;
    char **tag_keys, **tag_vals;
    size_t ntags;
    int64_t ts_ns;
    struct pt_field *fields; /* keys and string values heap-allocated */
    size_t nfields;
};

struct store_result {
    struct store_series *series;
    size_t nseries;
    struct store_latest *latest;
    size_t nlatest;
};
void store_result_free(struct store_result *r);

#define STORE_PENDING 1 /* write_wait(): no verdict yet */

struct store_ops {
    const char *name; /* URL scheme */
    /* Opens the backend; on failure returns <0 and a message in err. */
    int (*open)(const struct store_conf *conf, struct store **out, char *err, size_t errlen);
    /* Stores n points atomically (all or none). A point at the time of an
     * existing one of the same series replaces it; a measurement without
     * fields is skipped. -EINVAL or PT_E_LIMIT: a point is invalid (what
     * the wire decoder would refuse: bad names, non-finite floats, ...) and
     * the batch can never be stored, so do not retry it; other errors
     * (-EBUSY, -EIO, -ENOSPC, PT_E_STORE, ...) may be transient. */
    int (*write_batch)(struct store *s, const struct store_point *pts, size_t n);
    /* Optional (the server backends): write_batch() in two halves, so that
     * the writer can prepare its next batch while the server works on this
     * one. write_submit() checks and encodes the n points (copying what it
     * needs: pts may go once it returns) and starts sending them; an error
     * from it (as write_batch()'s) means nothing was sent and no
     * write_wait() is owed. write_wait() waits for the oldest batch
     * submitted and not yet waited for and returns write_batch()'s verdict
     * on it. Several batches may be submitted before the first wait;
     * write_batch() only while none is pending. Both NULL: the writer calls
     * write_batch(). write_wait() gives up after timeout_ns (< 0: never)
     * with STORE_PENDING, the batch still pending. */
    int (*write_submit)(struct store *s, const struct store_point *pts, size_t n);
    int (*write_wait)(struct store *s, int64_t timeout_ns);
    /* Fills out (overwritten; empty on error). A VM or measurement without
     * data gives nseries 0, not an error; only series with a row in the
     * range are returned, sorted by tags. Columns, when fields is NULL, are
     * the numeric fields seen, catalog fields first in catalog order, then
     * the others by name; string fields are never columns. -EINVAL for a
     * bad query (from >= to, step < 0, step without agg, ...), -E2BIG past
     * max_rows or a STORE_MAX_* ceiling. */
    int (*query)(struct store *s, const struct store_query *q, struct store_result *out);
    /* Newest point of every series of one VM (measurement NULL: all), in
     * catalog order of measurements, then by tags; nlatest 0 when none.
     * vm NULL: of every VM of the MCIS, ordered by VM first. */
    int (*latest)(struct store *s, const char *ns, const char *mcis, const char *vm,
                  const char *measurement, struct store_result *out);
    /* Deletes raw points older than cutoff_ns (and, in a backend with
     * roll-ups, tier rows past their own retention, see store_conf);
     * returns the count of raw points (>=0) or <0. */
    int64_t (*retention)(struct store *s, int64_t cutoff_ns);
    /* Bytes on disk (0 if unknown), for /metrics. */
    int64_t (*size)(struct store *s);
    void (*close)(struct store *s);
};

extern const struct store_ops store_sqlite_ops;
extern const struct store_ops store_influxdb_ops;
extern const struct store_ops store_victoriametrics_ops;

/* The backend for a URL ("sqlite:..."), or NULL. */
const struct store_ops *store_ops_for_url(const char *url);

#endif
