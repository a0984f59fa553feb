/* Helpers shared by the store backends (not for other components): bucket
 * alignment and the per-bucket reducer behind every aggregation, so that
 * min/max/avg/last/sum/count/p95 mean exactly the same on each backend that
 * reduces points itself. */
#ifndef COLL_STORE_INT_H
#define COLL_STORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* Start of the bucket holding ts: the greatest multiple of step (> 0) since
 * the Unix epoch that is <= ts (also for negative ts). */
int64_t store_bucket(int64_t ts, int64_t step);

/* The values of one field within one bucket, fed in time order. Zero
 * initialise; store_acc_reset() between buckets keeps the p95 buffer. */
struct store_acc {
    double min, max, sum, last;
    size_t n;     /* values added since the last reset */
    double *vals; /* every value, for p95 only */
    size_t cap;
};

void store_acc_reset(struct store_acc *a);
/* Adds v; returns 0, -ENOMEM, or -E2BIG past STORE_MAX_BUCKET values (p95). */
int store_acc_add(struct store_acc *a, enum store_agg agg, double v);
/* The reduction of the values added: NaN when there are none, except for
 * count which is then 0. p95 is the nearest-rank 95th percentile (the value
 * of rank ceil(0.95 n) in ascending order); it reorders a->vals. */
/* Adds the summary of values that came before any later add or merge (in
 * time order): n values with these min, max, sum and last. This is how a
 * backend with pre-aggregated buckets (roll-ups) feeds the same reducer;
 * not usable for p95, which needs every value. */
void store_acc_merge(struct store_acc *a, double min, double max, double sum, size_t n,
                     double last);
double store_acc_result(struct store_acc *a, enum store_agg agg);
void store_acc_free(struct store_acc *a);

#endif
