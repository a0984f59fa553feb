/* Dry run: replays stored values through a rule's reduction, conditions
 * and state machine (the same code the stream uses) and lists the events
 * it would have produced. Nothing is notified or recorded. */
#include "alert_int.h"
#include "pt/time.h"

#include <stdlib.h>
#include <string.h>

#define DRY_MAX_EVENTS 1000

struct dgroup {
    char key[1024]; /* tag set (reductions) or vm + tag set (each) */
    const char *vm;
    const struct alert_dry_series *first;
    struct alert_state st;
    double vals_sum, vmin, vmax;
    size_t n;
    double *p95;
    size_t np95;
};

static int dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void tags_key(const struct alert_dry_series *s, bool with_vm, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    if (with_vm) o += (size_t)snprintf(out, cap, "%s\x1f", s->vm);
    for (size_t i = 0; i < s->ntags && o < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s=%s\x1f", s->tag_keys[i], s->tag_vals[i]);
}

static json_t *labels_json(const struct alert_rule *r, const struct dgroup *g)
{
    json_t *l = json_pack("{s:s,s:s,s:s}", "alertname", r->name, "ns", r->ns, "mcis", r->mcis);
    if (g->vm) json_object_set_new(l, "vm", json_string(g->vm));
    const struct alert_dry_series *s = g->first;
    for (size_t i = 0; i < s->ntags; i++)
        json_object_set_new(l, s->tag_keys[i], json_string(s->tag_vals[i]));
    for (size_t i = 0; i < r->nlabels; i++)
        json_object_set_new(l, r->lkey[i], json_string(r->lval[i]));
    return l;
}

json_t *alert_dryrun(const struct alert_rule *r, const struct alert_dry_series *s, size_t ns)
{
    bool each = r->reduce == RED_EACH;
    struct dgroup *g = calloc(ns ? ns : 1, sizeof *g);
    size_t *gi = calloc(ns ? ns : 1, sizeof *gi), *pos = calloc(ns ? ns : 1, sizeof *pos);
    json_t *events = json_array();
    size_t ng = 0, nevents = 0, evals = 0;
    bool truncated = false;
    if (!g || !gi || !pos || !events) goto out;
    for (size_t i = 0; i < ns; i++) {
        char key[1024];
        tags_key(&s[i], each, key, sizeof key);
        size_t k = 0;
        while (k < ng && strcmp(g[k].key, key)) k++;
        if (k == ng) {
            snprintf(g[k].key, sizeof g[k].key, "%s", key);
            g[k].vm = each ? s[i].vm : NULL;
            g[k].first = &s[i];
            g[k].st.value = g[k].st.threshold = NAN;
            ng++;
        }
        gi[i] = k;
    }
    for (size_t k = 0; k < ng; k++) {
        g[k].p95 = calloc(ns, sizeof *g[k].p95);
        if (!g[k].p95) goto out;
    }
    struct alert_sm_conf sm = {r->for_ns, r->repeat_ns, 0, 0};
    for (;;) {
        /* The next timestamp of any series. */
        int64_t t = INT64_MAX;
        for (size_t i = 0; i < ns; i++)
            if (pos[i] < s[i].n && s[i].ts[pos[i]] < t) t = s[i].ts[pos[i]];
        if (t == INT64_MAX) break;
        for (size_t k = 0; k < ng; k++) {
            g[k].n = g[k].np95 = 0;
            g[k].vals_sum = 0;
            g[k].vmin = INFINITY;
            g[k].vmax = -INFINITY;
        }
        for (size_t i = 0; i < ns; i++) {
            if (pos[i] >= s[i].n || s[i].ts[pos[i]] != t) continue;
            double v = s[i].vals[pos[i]++];
            if (isnan(v)) continue;
            struct dgroup *d = &g[gi[i]];
            d->n++;
            d->vals_sum += v;
            if (v < d->vmin) d->vmin = v;
            if (v > d->vmax) d->vmax = v;
            d->p95[d->np95++] = v;
        }
        for (size_t k = 0; k < ng; k++) {
            struct dgroup *d = &g[k];
            double v = NAN;
            if (d->n) switch (r->reduce) {
                case RED_EACH:
                case RED_AVG:
                    v = d->vals_sum / (double)d->n;
                    break;
                case RED_SUM:
                    v = d->vals_sum;
                    break;
                case RED_COUNT:
                    v = (double)d->n;
                    break;
                case RED_MIN:
                    v = d->vmin;
                    break;
                case RED_MAX:
                    v = d->vmax;
                    break;
                case RED_P95: {
                    qsort(d->p95, d->np95, sizeof *d->p95, dcmp);
                    size_t rank = (size_t)ceil(0.95 * (double)d->np95);
                    v = d->p95[rank ? rank - 1 : 0];
                    break;
                }
                }
            enum alert_level cur =
                d->st.phase == PH_FIRING ? (enum alert_level)d->st.level : ALERT_OK;
            double thr;
            enum alert_level want = alert_rule_level(r, v, cur, &thr);
            enum alert_level level;
            enum alert_emit what = alert_state_step(&d->st, &sm, want, t, &level);
            evals++;
            if (what == EMIT_NONE) continue;
            if (nevents == DRY_MAX_EVENTS) {
                truncated = true;
                continue;
            }
            char at[48];
            pt_time_format(t, 3, at, sizeof at);
            json_t *ev = json_pack(
                "{s:s,s:s,s:s,s:o,s:o,s:o}", "at", at, "status",
                what == EMIT_RESOLVED ? "resolved" : "firing", "level", alert_level_name(level),
                "value", isnan(v) ? json_null() : json_real(v), "threshold",
                isnan(thr) ? json_null() : json_real(thr), "labels", labels_json(r, d));
            if (ev) json_array_append_new(events, ev);
            nevents++;
        }
    }
out:;
    json_t *res = NULL;
    if (events) {
        json_t *firing = json_array();
        for (size_t k = 0; k < ng; k++)
            if (g[k].st.phase == PH_FIRING) json_array_append_new(firing, labels_json(r, &g[k]));
        res = json_pack("{s:o,s:I,s:I,s:b,s:o}", "events", events, "evaluations", (json_int_t)evals,
                        "series", (json_int_t)ng, "truncated", truncated, "firing_at_end", firing);
    }
    for (size_t k = 0; g && k < ng; k++) free(g[k].p95);
    free(g);
    free(gi);
    free(pos);
    return res;
}
