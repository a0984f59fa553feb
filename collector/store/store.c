/* Backend-neutral parts of the store: aggregation names, the per-bucket
 * reducer, result ownership and picking a backend by URL scheme. */
#include "store/store_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pt/catalog.h"

static const char *const agg_names[] = {
    [STORE_AGG_NONE] = "none",   [STORE_AGG_MIN] = "min",   [STORE_AGG_MAX] = "max",
    [STORE_AGG_AVG] = "avg",     [STORE_AGG_LAST] = "last", [STORE_AGG_SUM] = "sum",
    [STORE_AGG_COUNT] = "count", [STORE_AGG_P95] = "p95",
};
#define NAGG (sizeof agg_names / sizeof agg_names[0])

int store_agg_parse(const char *s)
{
    if (!s) return -1;
    for (size_t i = STORE_AGG_MIN; i < NAGG; i++)
        if (strcmp(s, agg_names[i]) == 0) return (int)i;
    return -1;
}

const char *store_agg_name(enum store_agg a)
{
    if ((size_t)a >= NAGG) return "?";
    return agg_names[a];
}

/* Backends by URL scheme. */
static const struct store_ops *const backends[] = {&store_sqlite_ops, &store_influxdb_ops,
                                                   &store_victoriametrics_ops};

const struct store_ops *store_ops_for_url(const char *url)
{
    if (!url) return NULL;
    const char *colon = strchr(url, ':');
    if (!colon) return NULL;
    size_t len = (size_t)(colon - url);
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
        if (strlen(backends[i]->name) == len && memcmp(backends[i]->name, url, len) == 0)
            return backends[i];
    return NULL;
}

/* ---- results --------------------------------------------------------------- */

static void free_strv(char **v, size_t n)
{
    if (!v) return;
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

void store_result_free(struct store_result *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->nseries; i++) {
        struct store_series *s = &r->series[i];
        free(s->vm);
        free(s->measurement);
        free_strv(s->tag_keys, s->ntags);
        free_strv(s->tag_vals, s->ntags);
        free_strv(s->fields, s->nfields);
        free(s->ftypes);
        free(s->ts);
        free(s->vals);
    }
    free(r->series);
    for (size_t i = 0; i < r->nlatest; i++) {
        struct store_latest *l = &r->latest[i];
        free(l->vm);
        free(l->measurement);
        free_strv(l->tag_keys, l->ntags);
        free_strv(l->tag_vals, l->ntags);
        for (size_t j = 0; l->fields && j < l->nfields; j++) {
            free((char *)l->fields[j].key.p);
            if (l->fields[j].type == PT_F_STR) free((char *)l->fields[j].v.s.p);
        }
        free(l->fields);
    }
    free(r->latest);
    memset(r, 0, sizeof *r);
}

/* ---- buckets and reduction ------------------------------------------------- */

int64_t store_bucket(int64_t ts, int64_t step)
{
    int64_t r = ts % step;
    if (r < 0) r += step;
    return ts - r;
}

void store_acc_reset(struct store_acc *a)
{
    a->n = 0;
    a->sum = 0;
}

int store_acc_add(struct store_acc *a, enum store_agg agg, double v)
{
    if (agg == STORE_AGG_P95) {
        if (a->n == a->cap) {
            if (a->cap >= STORE_MAX_BUCKET) return -E2BIG;
            size_t cap = a->cap ? a->cap * 2 : 64;
            double *p = realloc(a->vals, cap * sizeof *p);
            if (!p) return -ENOMEM;
            a->vals = p;
            a->cap = cap;
        }
        a->vals[a->n] = v;
    }
    if (a->n == 0 || v < a->min) a->min = v;
    if (a->n == 0 || v > a->max) a->max = v;
    a->sum += v;
    a->last = v;
    a->n++;
    return 0;
}

static int cmp_double(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;
    return (a > b) - (a < b);
}

double store_acc_result(struct store_acc *a, enum store_agg agg)
{
    if (agg == STORE_AGG_COUNT) return (double)a->n;
    if (a->n == 0) return NAN;
    switch (agg) {
    case STORE_AGG_MIN:
        return a->min;
    case STORE_AGG_MAX:
        return a->max;
    case STORE_AGG_AVG:
        return a->sum / (double)a->n;
    case STORE_AGG_SUM:
        return a->sum;
    case STORE_AGG_P95: {
        /* Nearest rank in integers: ceil(95 n / 100), 1-based. */
        size_t rank = (95 * a->n + 99) / 100;
        qsort(a->vals, a->n, sizeof *a->vals, cmp_double);
        return a->vals[rank - 1];
    }
    case STORE_AGG_LAST:
    default:
        return a->last;
    }
}

void store_acc_free(struct store_acc *a)
{
    free(a->vals);
    memset(a, 0, sizeof *a);
}
