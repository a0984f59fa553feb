/* The --once table: widths measured first, then one row per field. */
#include "table.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "pt/catalog.h"
#include "pt/time.h"

#define NAME_MAX_LEN 64 /* catalog names are shorter; longer ones are cut in the table only */

/* "k=v k=v": the tags of m, at most cap - 1 bytes. */
static void tags_text(const struct pt_meas *m, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < m->ntags && n < cap; i++) {
        int w = snprintf(out + n, cap - n, "%s%.*s=%.*s", i ? " " : "", (int)m->tags[i].key.len,
                         m->tags[i].key.p, (int)m->tags[i].val.len, m->tags[i].val.p);
        if (w < 0) break;
        n += (size_t)w;
    }
}

static void value_text(const struct pt_field *fl, char *out, size_t cap)
{
    switch (fl->type) {
    case PT_F_FLOAT:
        /* Two decimals read well for percentages and rates; large gauges
         * keep every digit of their integer part. */
        snprintf(out, cap, isfinite(fl->v.f) ? "%.2f" : "-", fl->v.f);
        break;
    case PT_F_UINT:
        snprintf(out, cap, "%" PRIu64, fl->v.u);
        break;
    case PT_F_INT:
        snprintf(out, cap, "%" PRId64, fl->v.i);
        break;
    case PT_F_STR:
        snprintf(out, cap, "%.*s", (int)fl->v.s.len, fl->v.s.p);
        break;
    default:
        snprintf(out, cap, "?");
    }
}

static const char *unit_of(const struct pt_meas *m, const struct pt_field *fl)
{
    char meas[NAME_MAX_LEN + 1], field[NAME_MAX_LEN + 1];
    snprintf(meas, sizeof meas, "%.*s", (int)m->name.len, m->name.p);
    snprintf(field, sizeof field, "%.*s", (int)fl->key.len, fl->key.p);
    const struct pt_metric *c = pt_catalog_find(meas, field);
    return c ? c->unit : "";
}

static int max_int(int a, int b)
{
    return a > b ? a : b;
}

int agent_table_write(FILE *out, const struct pt_frame *f)
{
    char ts[40], tags[256], val[64];
    if (pt_time_format(f->ts_ns, 3, ts, sizeof ts) < 0) ts[0] = '\0';
    if (f->id.ns.len)
        fprintf(out, "sample of %.*s/%.*s/%.*s (%.*s, host %.*s)", (int)f->id.ns.len, f->id.ns.p,
                (int)f->id.mcis.len, f->id.mcis.p, (int)f->id.vm.len, f->id.vm.p,
                (int)(f->id.csp.len ? f->id.csp.len : 1), f->id.csp.len ? f->id.csp.p : "-",
                (int)f->id.host.len, f->id.host.p);
    else /* --once without a configuration */
        fprintf(out, "sample of host %.*s (no ns/mcis/vm configured)", (int)f->id.host.len,
                f->id.host.p);
    fprintf(out, " at %s, over %" PRIu32 " ms\n\n", ts, f->interval_ms);

    int wm = (int)strlen("MEASUREMENT"), wt = (int)strlen("TAGS"), wf = (int)strlen("FIELD");
    int wv = (int)strlen("VALUE");
    for (size_t i = 0; i < f->nmeas; i++) {
        const struct pt_meas *m = &f->meas[i];
        wm = max_int(wm, (int)m->name.len);
        tags_text(m, tags, sizeof tags);
        wt = max_int(wt, (int)strlen(tags));
        for (size_t j = 0; j < m->nfields; j++) {
            wf = max_int(wf, (int)m->fields[j].key.len);
            value_text(&m->fields[j], val, sizeof val);
            wv = max_int(wv, (int)strlen(val));
        }
    }

    fprintf(out, "%-*s  %-*s  %-*s  %*s  %s\n", wm, "MEASUREMENT", wt, "TAGS", wf, "FIELD", wv,
            "VALUE", "UNIT");
    for (size_t i = 0; i < f->nmeas; i++) {
        const struct pt_meas *m = &f->meas[i];
        tags_text(m, tags, sizeof tags);
        for (size_t j = 0; j < m->nfields; j++) {
            const struct pt_field *fl = &m->fields[j];
            value_text(fl, val, sizeof val);
            fprintf(out, "%-*.*s  %-*s  %-*.*s  %*s  %s\n", wm, (int)m->name.len, m->name.p, wt,
                    tags, wf, (int)fl->key.len, fl->key.p, wv, val, unit_of(m, fl));
        }
        if (m->nfields == 0)
            fprintf(out, "%-*.*s  %-*s  (no fields)\n", wm, (int)m->name.len, m->name.p, wt, tags);
    }
    return fflush(out) == 0 && !ferror(out) ? 0 : -EIO;
}
