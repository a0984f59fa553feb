/* Driver series → wire frames (one per timestamp), see frames.h. */
#include "frames.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "pt/catalog.h"
#include "pt/err.h"
#include "pt/time.h"

#define MEAS_PER_FRAME 32 /* well under PT_WIRE_MAX_MEAS; halved when a frame is too big */

const char *agl_measurement(enum drv_metric m)
{
    switch (m) {
    case DRV_M_CPU:
        return "cpu";
    case DRV_M_MEM:
        return "memory";
    case DRV_M_KB_READ:
    case DRV_M_KB_WRITTEN:
    case DRV_M_OPS_READ:
    case DRV_M_OPS_WRITE:
        return "diskio";
    case DRV_M_BYTES_IN:
    case DRV_M_BYTES_OUT:
        return "network";
    default:
        return NULL;
    }
}

/* The object tag of a measurement: agents send per-object series plus one
 * tagged "total"; an instance-level cloud series is that total. */
static const char *object_tag(const char *meas)
{
    if (!strcmp(meas, "diskio")) return "device";
    if (!strcmp(meas, "network")) return "interface";
    return NULL;
}

/* One measurement with its tag set: the series that share it. */
struct group {
    const char *meas, *tkey, *tval;
    size_t first; /* index of its first field in the scratch field array */
};

static int find_group(struct group *g, size_t *ng, const char *meas, const char *tkey,
                      const char *tval)
{
    for (size_t i = 0; i < *ng; i++)
        if (g[i].meas == meas &&
            ((!tkey && !g[i].tkey) || (tkey && g[i].tkey && !strcmp(g[i].tval, tval))))
            return (int)i;
    g[*ng] = (struct group){meas, tkey, tval, 0};
    return (int)(*ng)++;
}

static int emit(const struct agl_frame_ident *id, struct pt_meas *meas, size_t n, int64_t ts,
                bool feed, agl_frame_cb cb, void *ud)
{
    uint8_t buf[PT_WIRE_MAX_FRAME];
    size_t chunk = n < MEAS_PER_FRAME ? n : MEAS_PER_FRAME;
    for (size_t off = 0; off < n;) {
        size_t k = n - off < chunk ? n - off : chunk;
        struct pt_frame f;
        memset(&f, 0, sizeof f);
        f.kind = PT_WIRE_SAMPLE;
        f.agent_id = id->agent_id;
        f.epoch = 1;
        f.seq = 1;
        f.ts_ns = ts;
        f.interval_ms = id->interval_ms;
        f.nparts = 1;
        f.id = (struct pt_ident){pt_str_c(id->ns), pt_str_c(id->mcis), pt_str_c(id->vm),
                                 pt_str_c(id->csp), pt_str_c(id->host)};
        f.meas = meas + off;
        f.nmeas = (uint16_t)k;
        size_t len;
        int rc = pt_wire_encode(&f, NULL, buf, sizeof buf, &len);
        if (rc == PT_E_NOSPACE) {
            if (chunk == 1) return PT_E_LIMIT;
            chunk /= 2;
            continue;
        }
        if (rc) return rc;
        if ((rc = cb(ud, buf, len, (uint16_t)k, ts, feed))) return rc;
        off += k;
    }
    return 0;
}

/* Scratch of one build. */
struct scratch {
    const struct drv_result *r;
    struct group *g;
    size_t ng;
    int *gi;     /* group of each series, -1: skipped */
    bool *hit;   /* the series has a point at the current timestamp */
    double *val; /* and its value */
    struct pt_meas *meas;
    struct pt_field *fields;
    struct pt_tag *tags;
};

/* The measurements of the current timestamp: every hit, or (only_new) the
 * hits of metrics newer than fed[] for alerting. Returns their count. */
static size_t assemble(struct scratch *x, int64_t ts, const int64_t *fed, bool only_new)
{
    size_t nf = 0, nm = 0, nt = 0;
    for (size_t k = 0; k < x->ng; k++) {
        size_t first = nf;
        for (size_t i = 0; i < x->r->n; i++) {
            if (x->gi[i] != (int)k || !x->hit[i]) continue;
            enum drv_metric m = x->r->series[i].metric;
            if (only_new && ts <= fed[m]) continue;
            x->fields[nf].key = pt_str_c(drv_metric_name(m));
            x->fields[nf].type = PT_F_FLOAT;
            x->fields[nf].v.f = x->val[i];
            nf++;
        }
        if (nf == first) continue;
        struct pt_meas *pm = &x->meas[nm++];
        pm->name = pt_str_c(x->g[k].meas);
        pm->fields = &x->fields[first];
        pm->nfields = (uint16_t)(nf - first);
        pm->tags = &x->tags[nt];
        x->tags[nt++] = (struct pt_tag){PT_STR("driver"), pt_str_c(x->r->driver)};
        x->tags[nt++] = (struct pt_tag){PT_STR("source"), PT_STR("agentless")};
        if (x->g[k].tkey)
            x->tags[nt++] = (struct pt_tag){pt_str_c(x->g[k].tkey), pt_str_c(x->g[k].tval)};
        pm->ntags = (uint16_t)(x->g[k].tkey ? 3 : 2);
    }
    return nm;
}

int agl_frames_build(const struct agl_frame_ident *id, const struct drv_result *r,
                     const int64_t *fed, agl_frame_cb cb, void *ud, size_t *skipped)
{
    *skipped = 0;
    size_t ns = r->n;
    if (!ns) return 0;
    struct scratch x = {r,
                        calloc(ns, sizeof *x.g),
                        0,
                        calloc(ns, sizeof *x.gi),
                        calloc(ns, sizeof *x.hit),
                        calloc(ns, sizeof *x.val),
                        calloc(ns, sizeof *x.meas),
                        calloc(ns, sizeof *x.fields),
                        calloc(ns * 3, sizeof *x.tags)};
    size_t *cur = calloc(ns, sizeof *cur); /* per series: next point */
    int rc = 0;
    if (!x.g || !x.gi || !x.hit || !x.val || !x.meas || !x.fields || !x.tags || !cur) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < ns; i++) {
        const struct drv_series *s = &r->series[i];
        const char *m = agl_measurement(s->metric);
        const char *tkey = m ? object_tag(m) : NULL;
        const char *tval = s->tag_value[0] ? s->tag_value : "total";
        if (!m || (tkey && !pt_wire_name_ok(tval, strlen(tval)))) {
            x.gi[i] = -1;
            (*skipped)++;
            continue;
        }
        x.gi[i] = find_group(x.g, &x.ng, m, tkey, tval);
    }
    for (;;) {
        /* The earliest timestamp not yet sent. */
        int64_t ts = INT64_MAX;
        for (size_t i = 0; i < ns; i++)
            if (x.gi[i] >= 0 && cur[i] < r->series[i].n && r->series[i].points[cur[i]].ts < ts)
                ts = r->series[i].points[cur[i]].ts;
        if (ts == INT64_MAX) break;
        for (size_t i = 0; i < ns; i++) {
            const struct drv_series *s = &r->series[i];
            x.hit[i] = false;
            if (x.gi[i] < 0) continue;
            while (cur[i] < s->n && s->points[cur[i]].ts < ts) cur[i]++; /* duplicates */
            if (cur[i] < s->n && s->points[cur[i]].ts == ts) {
                x.hit[i] = true;
                x.val[i] = s->points[cur[i]++].value;
            }
        }
        size_t nm = assemble(&x, ts, fed, false);
        if (nm && (rc = emit(id, x.meas, nm, ts * PT_NS_PER_SEC, false, cb, ud))) goto out;
        if (fed && (nm = assemble(&x, ts, fed, true)) &&
            (rc = emit(id, x.meas, nm, ts * PT_NS_PER_SEC, true, cb, ud)))
            goto out;
    }
out:
    free(x.g);
    free(x.gi);
    free(x.hit);
    free(x.val);
    free(x.meas);
    free(x.fields);
    free(x.tags);
    free(cur);
    return rc;
}
