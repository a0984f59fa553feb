/* Result assembly for the server backends (influxdb, victoriametrics), not
 * for other components. A server answers one column (field) or one row at
 * a time, keyed by labels; rs_* gathers those values per result series
 * (VM + tag set) and column, reduces raw points client-side where the
 * server's own function differs from docs/storage.md (p95), combines VMs
 * (across) where the server did not, and hands back store_series exactly
 * as the embedded store would shape them. */
#ifndef COLL_STORE_REMOTE_INT_H
#define COLL_STORE_REMOTE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pt/log.h"
#include "store/lineproto.h"
#include "store/store.h"
#include "store/storehttp.h"

struct rs_col {
    int64_t *ts;
    double *v;
    size_t n, cap;
};

struct rs_series {
    char *vm; /* NULL once combined across VMs */
    char **tk, **tv;
    size_t ntags;
    char *canon; /* canonical tag string (docs/storage.md), the sort key */
    struct rs_col *cols;
    size_t ncols;
};

struct rs_set {
    const struct store_query *q;
    char **fields;
    uint8_t *ftypes; /* enum pt_ftype per column, 0: unknown yet */
    size_t nfields, fcap;
    bool fixed; /* columns given by the query */
    struct rs_series *s;
    size_t n, cap;
    size_t values; /* values held, bounded by STORE_MAX_VALUES */
};

/* Checks q against store.h's contract (-EINVAL, -E2BIG) before any request. */
int rs_query_check(const struct store_query *q);

int rs_init(struct rs_set *set, const struct store_query *q);
void rs_free(struct rs_set *set);

/* The column of field name: its index in *idx, or -1 when the query names
 * its fields and not this one. type (0: unknown) records the stored type. */
int rs_column(struct rs_set *set, const char *name, uint8_t type, int *idx);

/* The result series of a VM (NULL for a combined one) and tag set (keys
 * and values, any order; an empty value means the tag is absent). */
int rs_series(struct rs_set *set, const char *vm, char *const *tk, char *const *tv, size_t ntags,
              struct rs_series **out);

/* Adds value v at ts to column col of s; NaN is ignored. -E2BIG past
 * STORE_MAX_VALUES. */
int rs_add(struct rs_set *set, struct rs_series *s, int col, int64_t ts, double v);

/* Raw points held → one value per step bucket, reduced by q->agg exactly
 * as store_int.h's reducer does (points outside [from, to) ignored). */
int rs_reduce(struct rs_set *set);

/* Per-VM bucket values → one series per tag set, each bucket combined
 * across VMs by q->across (a VM without a value in a bucket is left out). */
int rs_across(struct rs_set *set);

/* Builds the result: series sorted by VM then tags, rows in time order,
 * columns as asked or (discovered) catalog order then by name, keeping
 * only those with a value in the series; count's missing values are 0.
 * -E2BIG past max_rows or STORE_MAX_*. out is empty on error. */
int rs_finish(struct rs_set *set, struct store_result *out);

/* Sorts latest entries: by VM, measurements in catalog order, then tags. */
void rs_latest_sort(struct store_result *r);

/* The canonical tag string of sorted tags (heap), or NULL. */
char *rs_canon(char *const *tk, char *const *tv, size_t n);

/* Whether k is one of the identity tags (ns_id, mcis_id, vm_id, csp_type,
 * host) that the line protocol adds to every point. */
bool rs_ident_key(const char *k);

/* ---- the write path of the server backends ------------------------------ */

/* One batch's line protocol, cut into requests for sh_pool_submit(). */
struct rs_batch {
    struct rs_batch *next;
    struct lp_buf buf;
    struct sh_part *parts; /* slices of buf */
    size_t nparts, cap, cut_end;
    struct sh_group grp;
};

/* The batches submitted and not yet waited for, oldest first, and spare
 * ones whose buffers are kept for the next batches. */
struct rs_writes {
    struct rs_batch *head, *tail;
    size_t pending;
    struct rs_batch *spare;
    size_t nspare;
    size_t buf_max; /* body ceiling (lp_buf.max); 0: lineproto's default */
};
void rs_writes_free(struct rs_writes *w);

/* What differs between the server backends' writes. */
struct rs_write_ops {
    const char *name; /* "influxdb", for messages */
    enum lp_dialect dialect;
    const char *unwritable; /* why a point may be impossible to write here */
    /* The verdict on one request's answer: 0, -EINVAL (the server refused
     * its points for good, counted and logged by judge), or a transient
     * error. */
    int (*judge)(struct store *s, const struct sh_part *part);
};

/* Where and how a backend writes. */
struct rs_target {
    struct sh_pool *pool;
    const char *url;
    bool gzip;
    size_t batch, parallel;
};

/* Encodes n points and queues their requests on the pool (store.h's
 * write_submit()): all are encoded first, so an invalid point refuses the
 * whole batch before anything is sent (all or none); points the dialect
 * cannot carry are skipped, logged through c_unwritable and counted in
 * *skipped. Requests hold at most batch points, fewer when that leaves
 * some of the parallel connections idle (but not under SH_MIN_REQUEST).
 * An error means nothing was queued. */
int rs_submit(struct store *s, const struct rs_write_ops *ops, struct rs_writes *w,
              const struct rs_target *t, const struct store_point *pts, size_t n,
              struct pt_complain *c_unwritable, struct pt_complain *complain, size_t *skipped);
/* Waits for the oldest submitted batch (store.h's write_wait()): a
 * transient failure of any request is returned, and the writer retries the
 * batch whole (points sent again replace themselves); else a refused
 * request gives -EINVAL; else 0. STORE_PENDING after timeout_ns (< 0:
 * never); -ENOENT when nothing is pending. */
int rs_wait(struct store *s, const struct rs_write_ops *ops, struct rs_writes *w,
            const struct rs_target *t, int64_t timeout_ns);
/* rs_submit() then rs_wait() (store.h's write_batch()). */
int rs_write(struct store *s, const struct rs_write_ops *ops, struct rs_writes *w,
             const struct rs_target *t, const struct store_point *pts, size_t n,
             struct pt_complain *c_unwritable, struct pt_complain *complain, size_t *skipped);

#endif
