/* The stream evaluator: rules indexed by (ns, mcis), input series with
 * compact windows, reductions across VMs, the timers, the built-in rules,
 * and turning state changes into events (silences, history, outbox). */
#include "engine_int.h"
#include "pt/catalog.h"
#include "pt/err.h"
#include "pt/log.h"
#include "pt/time.h"
#include "pt/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEP        '\x1f' /* between key parts: never valid in a name */
#define KEY_MAX    4096
#define SWEEP_NS   PT_NS_PER_SEC
#define DEFER_OVER 64 /* min/max/p95 over more VMs than this wait for the tick */

/* ---- active and dirty lists -------------------------------------------------- */

static void active_set(struct alert_engine *e, struct aseries *a)
{
    bool want = alert_state_active(&a->st);
    if (want == a->in_active) return;
    if (want) {
        a->aprev = NULL;
        a->anext = e->active;
        if (e->active) e->active->aprev = a;
        e->active = a;
    } else {
        if (a->aprev)
            a->aprev->anext = a->anext;
        else
            e->active = a->anext;
        if (a->anext) a->anext->aprev = a->aprev;
        a->anext = a->aprev = NULL;
    }
    a->in_active = want;
}

/* ---- events --------------------------------------------------------------------- */

static int kv_cmp(const void *x, const void *y)
{
    return strcmp(((const struct alert_kv *)x)->key, ((const struct alert_kv *)y)->key);
}

/* A series' VM and tags are not stored apart: they are its key, "vm SEP
 * k=v SEP ..." ("k=v SEP ..." without a VM), split here into scratch
 * (KEY_MAX bytes) when labels are needed, which is rare (events, API). */
static size_t key_split(const struct aseries *a, char *scratch, const char **vm,
                        struct alert_kv *tags, size_t max)
{
    snprintf(scratch, KEY_MAX, "%s", a->key);
    char *p = scratch;
    *vm = NULL;
    if (a->has_vm) {
        char *sep = strchr(p, SEP);
        *vm = p;
        if (!sep) return 0;
        *sep = '\0';
        p = sep + 1;
    }
    size_t n = 0;
    while (*p && n < max) {
        char *sep = strchr(p, SEP), *eq;
        if (sep) *sep = '\0';
        if ((eq = strchr(p, '='))) {
            *eq = '\0';
            tags[n++] = (struct alert_kv){p, eq + 1};
        }
        if (!sep) break;
        p = sep + 1;
    }
    return n;
}

/* Labels of a series, sorted by key; with_severity adds severity=level.
 * They point into scratch (KEY_MAX bytes) and the rule. */
static size_t series_labels(const struct aseries *a, enum alert_level level, bool with_severity,
                            struct alert_kv *out, size_t cap, char *scratch)
{
    const struct alert_rule *r = a->ar->r;
    struct alert_kv tags[PT_WIRE_MAX_TAGS + 2];
    const char *vm;
    size_t nt = key_split(a, scratch, &vm, tags, PT_ARRAY_LEN(tags));
    size_t n = 0;
    out[n++] = (struct alert_kv){"alertname", r->name};
    if (r->ns) out[n++] = (struct alert_kv){"ns", r->ns};
    if (r->mcis) out[n++] = (struct alert_kv){"mcis", r->mcis};
    if (vm) out[n++] = (struct alert_kv){"vm", vm};
    if (with_severity) out[n++] = (struct alert_kv){"severity", alert_level_name(level)};
    for (size_t i = 0; i < nt && n < cap; i++) {
        bool dup = false; /* built-ins put ns/mcis in tags */
        for (size_t k = 0; k < n; k++)
            if (!strcmp(out[k].key, tags[i].key)) dup = true;
        if (!dup) out[n++] = tags[i];
    }
    for (size_t i = 0; i < r->nlabels && n < cap; i++)
        out[n++] = (struct alert_kv){r->lkey[i], r->lval[i]};
    qsort(out, n, sizeof *out, kv_cmp);
    return n;
}

static bool silenced(struct alert_engine *e, const struct alert_kv *l, size_t n, int64_t now)
{
    for (size_t s = 0; s < e->nsilences; s++) {
        const struct silence *si = e->silences[s];
        if (now < si->starts_ns || now >= si->ends_ns) continue;
        bool all = true;
        for (size_t m = 0; m < si->nmatch && all; m++) {
            bool hit = false;
            for (size_t i = 0; i < n && !hit; i++)
                hit = !strcmp(l[i].key, si->mkey[m]) && !strcmp(l[i].value, si->mval[m]);
            all = hit;
        }
        if (all) return true;
    }
    return false;
}

static void fmt_num(double v, char *b, size_t len)
{
    if (isnan(v))
        snprintf(b, len, "absent");
    else
        snprintf(b, len, "%.6g", v);
}

static void emit(struct alert_engine *e, struct aseries *a, enum alert_emit what,
                 enum alert_level level, int64_t now)
{
    const struct alert_rule *r = a->ar->r;
    enum alert_status status = what == EMIT_RESOLVED   ? ALERT_RESOLVED
                               : what == EMIT_FLAPPING ? ALERT_FLAPPING
                                                       : ALERT_FIRING;
    struct alert_kv labels[ALERT_MAX_KV + ALERT_MAX_MATCH + 16];
    char scratch[KEY_MAX];
    size_t nl = series_labels(a, level, true, labels, PT_ARRAY_LEN(labels), scratch);
    a->st.seq++;
    char id[65];
    alert_event_id(r->name, a->fp, level, status, a->st.starts_at, a->st.seq, id);

    char val[32], thr[32], metric[300];
    fmt_num(a->value, val, sizeof val);
    fmt_num(a->threshold, thr, sizeof thr);
    snprintf(metric, sizeof metric, "%s.%s", r->measurement ? r->measurement : r->name,
             r->field ? r->field : "");
    struct alert_kv vars[PT_ARRAY_LEN(labels) + 8];
    size_t nv = 0;
    for (size_t i = 0; i < nl; i++) vars[nv++] = labels[i];
    vars[nv++] = (struct alert_kv){"rule", r->name};
    vars[nv++] = (struct alert_kv){"value", val};
    vars[nv++] = (struct alert_kv){"threshold", thr};
    vars[nv++] = (struct alert_kv){"level", alert_level_name(level)};
    vars[nv++] = (struct alert_kv){"status", alert_status_name(status)};
    vars[nv++] = (struct alert_kv){"metric", metric};
    vars[nv++] = (struct alert_kv){"reduce", alert_reduce_name(r->reduce)};
    if (!a->has_vm) vars[nv++] = (struct alert_kv){"vm", "(all VMs)"};
    struct alert_kv ann[ALERT_MAX_KV];
    char *abuf = malloc((size_t)r->nannotations * ALERT_MAX_TEXT * 2 + 1);
    size_t na = 0;
    for (size_t i = 0; abuf && i < r->nannotations; i++) {
        char *o = abuf + i * ALERT_MAX_TEXT * 2;
        alert_template(r->aval[i], vars, nv, o, ALERT_MAX_TEXT * 2);
        ann[na++] = (struct alert_kv){r->akey[i], o};
    }
    char gen[1024] = "";
    if (e->external_url) snprintf(gen, sizeof gen, "%s/api/v1/rules/%s", e->external_url, r->name);
    struct alert_event ev = {
        .id = id,
        .rule = r->name,
        .fingerprint = a->fp,
        .status = status,
        .level = level,
        .labels = labels,
        .nlabels = nl,
        .annotations = ann,
        .nannotations = na,
        .value = a->value,
        .threshold = a->threshold,
        .starts_at_ns = a->st.starts_at,
        .ends_at_ns = status == ALERT_RESOLVED ? a->st.ends_at : 0,
        .at_ns = now,
        .generator_url = gen[0] ? gen : NULL,
    };
    e->st.events++;
    bool mute = silenced(e, labels, nl, now);
    if (mute) {
        e->st.silenced++;
    } else {
        struct alert_handler hs[ALERT_MAX_HANDLERS];
        size_t nh = 0;
        for (size_t i = 0; i < r->nhandlers; i++) {
            struct handler *h = amap_get(&e->handlers, r->handlers[i], strlen(r->handlers[i]),
                                         amap_hash(r->handlers[i], strlen(r->handlers[i]), 0));
            if (h)
                hs[nh++] = (struct alert_handler){h->name, h->type, h->settings};
            else
                PT_WARN("alert",
                        "rule %s: handler \"%s\" does not exist (deleted?); event %s "
                        "kept in history only",
                        r->name, r->handlers[i], id);
        }
        int rc = e->o.submit ? e->o.submit(e->o.submit_ctx, &ev, hs, nh) : 0;
        if (rc) {
            e->st.submit_errors++;
            PT_ERROR("alert", "rule %s: the outbox refused event %s: %s", r->name, id,
                     pt_strerror(rc));
        } else if (nh) {
            e->st.notified++;
        }
    }
    if (alert_db_history_add(&e->db, &ev, mute, false)) e->st.db_errors++;
    PT_INFO("alert", "%s %s %s fp=%s value=%s%s", r->name, alert_status_name(status),
            alert_level_name(level), a->fp, val, mute ? " (silenced)" : "");
    free(abuf);
}

static void persist(struct alert_engine *e, struct aseries *a)
{
    const struct alert_rule *r = a->ar->r;
    int rc;
    if (alert_state_active(&a->st)) {
        char scratch[KEY_MAX];
        struct alert_kv tags[PT_WIRE_MAX_TAGS + 2];
        const char *vm;
        size_t nt = key_split(a, scratch, &vm, tags, PT_ARRAY_LEN(tags));
        json_t *j = json_object(), *t = json_object();
        if (vm) json_object_set_new(j, "vm", json_string(vm));
        for (size_t i = 0; i < nt; i++)
            json_object_set_new(t, tags[i].key, json_string(tags[i].value));
        json_object_set_new(j, "tags",
                            t); /* for people reading alerts.db; the key is authoritative */
        char *s = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        rc = alert_db_state_put(&e->db, r->name, a->key, &a->st, s ? s : "{}");
        free(s);
    } else {
        rc = alert_db_state_del(&e->db, r->name, a->key);
    }
    if (rc) e->st.db_errors++;
}

/* Runs what the state machine said; keeps the active list and the stored
 * state in step. before: the phase/level/flapping before the step. */
static void after_step(struct alert_engine *e, struct aseries *a, enum alert_emit what,
                       enum alert_level level, struct alert_state before, int64_t now)
{
    bool changed = before.phase != a->st.phase || before.level != a->st.level ||
                   before.flapping != a->st.flapping;
    if (what != EMIT_NONE) {
        emit(e, a, what, level, now);
    } else if (changed && a->st.flapping && before.flapping) {
        e->st.held++;
    }
    if (what != EMIT_NONE || (changed && (a->st.phase != PH_PENDING || before.phase != PH_OK)))
        persist(e, a);
    active_set(e, a);
}

static void evaluate(struct alert_engine *e, struct aseries *a, double v, int64_t now)
{
    const struct alert_rule *r = a->ar->r;
    enum alert_level cur = a->st.phase == PH_FIRING ? (enum alert_level)a->st.level : ALERT_OK;
    double thr;
    enum alert_level want = alert_rule_level(r, v, cur, &thr);
    a->value = v;
    a->threshold = thr;
    struct alert_state before = a->st;
    enum alert_level level;
    enum alert_emit what = alert_state_step(&a->st, &a->ar->sm, want, now, &level);
    if (what == EMIT_RESOLVED) a->threshold = before.threshold;
    a->st.value = v;
    if (!isnan(thr)) a->st.threshold = thr;
    after_step(e, a, what, level, before, now);
}

/* An absent series asks for the rule's most severe level, value NaN. */
static void evaluate_absent(struct alert_engine *e, struct aseries *a, int64_t now)
{
    const struct alert_rule *r = a->ar->r;
    enum alert_level want = r->crit.set || !r->warn.set ? ALERT_CRITICAL : ALERT_WARNING;
    a->value = NAN;
    a->threshold = NAN;
    struct alert_state before = a->st;
    enum alert_level level;
    enum alert_emit what = alert_state_step(&a->st, &a->ar->sm, want, now, &level);
    after_step(e, a, what, level, before, now);
}

/* ---- reductions --------------------------------------------------------------------- */

static int dbl_cmp(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static double group_value(struct alert_engine *e, struct aseries *a)
{
    const struct alert_rule *r = a->ar->r;
    if (!a->nval) return NAN;
    switch (r->reduce) {
    case RED_AVG:
        return a->sum / (double)a->nval;
    case RED_SUM:
        return a->sum;
    case RED_COUNT:
        return (double)a->nval;
    default:
        break;
    }
    if (r->reduce == RED_P95 && e->capscratch < a->nmem) {
        double *s = realloc(e->scratch, a->nmem * sizeof *s);
        if (!s) return NAN;
        e->scratch = s;
        e->capscratch = a->nmem;
    }
    double acc = r->reduce == RED_MIN ? INFINITY : -INFINITY;
    size_t k = 0;
    for (size_t i = 0; i < a->nmem; i++) {
        const struct iseries *is = a->members[i];
        if (!is->has) continue;
        if (r->reduce == RED_MIN && is->cur < acc) acc = is->cur;
        if (r->reduce == RED_MAX && is->cur > acc) acc = is->cur;
        if (r->reduce == RED_P95) e->scratch[k++] = is->cur;
    }
    if (r->reduce != RED_P95) return acc;
    if (!k) return NAN;
    qsort(e->scratch, k, sizeof *e->scratch, dbl_cmp);
    size_t rank = (size_t)ceil(0.95 * (double)k); /* nearest rank, as the store's p95 */
    return e->scratch[rank ? rank - 1 : 0];
}

static void evaluate_group(struct alert_engine *e, struct aseries *a, int64_t now)
{
    evaluate(e, a, group_value(e, a), now);
}

static void mark_dirty(struct alert_engine *e, struct aseries *a)
{
    if (a->in_dirty) return;
    a->in_dirty = true;
    a->dnext = e->dirty;
    e->dirty = a;
}

/* The VM's value changed (or went away: has false): keep the group's sums. */
static void member_update(struct iseries *is, bool has, double v)
{
    struct aseries *a = is->out;
    if (is->has) {
        a->sum -= is->cur;
        a->nval--;
    }
    is->has = has;
    is->cur = has ? v : NAN;
    if (has) {
        a->sum += v;
        a->nval++;
    }
    if (!a->nval) a->sum = 0; /* no drift survives an empty group */
}

static void input_changed(struct alert_engine *e, struct iseries *is, int64_t now)
{
    struct aseries *a = is->out;
    if (a->ar->r->reduce == RED_EACH) {
        evaluate(e, a, is->has ? is->cur : NAN, now);
        return;
    }
    enum alert_reduce red = a->ar->r->reduce;
    if ((red == RED_MIN || red == RED_MAX || red == RED_P95) && a->nmem > DEFER_OVER)
        mark_dirty(e, a); /* O(VMs) per point would be quadratic: evaluate at the tick */
    else
        evaluate_group(e, a, now);
}

/* ---- windows ------------------------------------------------------------------------ */

static double window_value(const struct alert_rule *r, const struct iseries *is, int64_t now)
{
    int64_t width = r->window_ns / ALERT_WIN_BUCKETS;
    if (width <= 0) width = 1;
    int64_t cur = now / width;
    double sum = 0;
    uint64_t n = 0;
    for (int i = 0; i < ALERT_WIN_BUCKETS; i++) {
        const struct wbucket *b = &is->wb[i];
        if (b->n && b->idx > cur - ALERT_WIN_BUCKETS && b->idx <= cur) {
            sum += b->sum;
            n += b->n;
        }
    }
    return n ? sum / (double)n : NAN;
}

static void window_add(const struct alert_rule *r, struct iseries *is, double v, int64_t now)
{
    int64_t width = r->window_ns / ALERT_WIN_BUCKETS;
    if (width <= 0) width = 1;
    int64_t idx = now / width;
    struct wbucket *b = &is->wb[idx % ALERT_WIN_BUCKETS];
    if (b->idx != idx) *b = (struct wbucket){idx, 0, 0};
    b->sum += v;
    b->n++;
}

/* ---- series creation ------------------------------------------------------------------ */

static void aseries_free(struct aseries *a)
{
    if (!a) return;
    free(a->key);
    free(a->members);
    free(a->lost);
    free(a);
}

/* key: "vm SEP k=v SEP ..." when has_vm, else "k=v SEP ...". */
static struct aseries *aseries_new(struct arule *ar, const char *key, size_t klen, bool has_vm,
                                   int64_t now)
{
    if (klen >= KEY_MAX) return NULL;
    struct aseries *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->ar = ar;
    a->has_vm = has_vm;
    if (!(a->key = strndup(key, klen))) goto fail;
    a->value = a->threshold = NAN;
    a->st.value = a->st.threshold = NAN;
    a->last_input_ns = now;
    struct alert_kv l[ALERT_MAX_KV + ALERT_MAX_MATCH + 16];
    char scratch[KEY_MAX];
    size_t nl = series_labels(a, ALERT_OK, false, l, PT_ARRAY_LEN(l), scratch);
    alert_fingerprint(ar->r->name, l, nl, a->fp);
    if (amap_put(&ar->amap, key, klen, amap_hash(key, klen, 1), a)) goto fail;
    return a;
fail:
    aseries_free(a);
    return NULL;
}

static void member_add(struct aseries *a, struct iseries *is)
{
    if (a->nmem == a->capmem) {
        size_t cap = a->capmem ? a->capmem * 2 : 4;
        struct iseries **m = realloc(a->members, cap * sizeof *m);
        if (!m) return; /* the member still counts in sum/nval; only min/max/p95 miss it */
        a->members = m;
        a->capmem = cap;
    }
    is->midx = a->nmem;
    a->members[a->nmem++] = is;
}

static void member_remove(struct aseries *a, struct iseries *is)
{
    if (is->midx < a->nmem && a->members[is->midx] == is) {
        a->members[is->midx] = a->members[--a->nmem];
        a->members[is->midx]->midx = is->midx;
    }
}

/* key: vm SEP tags... for the input series; the alert series key drops the
 * VM when the rule reduces across VMs. */
static size_t tag_key(char *buf, size_t cap, size_t o, const struct pt_meas *m)
{
    for (size_t t = 0; t < m->ntags && o < cap; t++) {
        const struct pt_tag *g = &m->tags[t];
        if (o + g->key.len + g->val.len + 2 >= cap) return cap;
        memcpy(buf + o, g->key.p, g->key.len);
        o += g->key.len;
        buf[o++] = '=';
        memcpy(buf + o, g->val.p, g->val.len);
        o += g->val.len;
        buf[o++] = SEP;
    }
    return o;
}

/* The input series of (rule, VM, tag set); key is "vm SEP tags", tstart
 * where the tags begin (the alert series key of a reduction), h its hash:
 * computed once per measurement of a frame, shared by every rule. */
static struct iseries *input_get(struct alert_engine *e, struct arule *ar, const struct pt_frame *f,
                                 const struct pt_meas *m, const char *key, size_t o, size_t tstart,
                                 uint64_t h, int64_t now)
{
    struct iseries *is = amap_get(&ar->imap, key, o, h);
    if (is) return is;
    if (ar->imap.n >= ALERT_MAX_SERIES) {
        e->st.series_dropped++;
        return NULL;
    }
    bool each = ar->r->reduce == RED_EACH;
    const char *akey = each ? key : key + tstart;
    size_t aklen = each ? o : o - tstart;
    uint64_t ah = amap_hash(akey, aklen, 1);
    struct aseries *a = amap_get(&ar->amap, akey, aklen, ah);
    if (!a) {
        a = aseries_new(ar, akey, aklen, each, now);
        if (!a) return NULL;
        e->st.series++;
    }
    is = calloc(1, sizeof *is + o + 1);
    if (!is) return NULL;
    memcpy(is->key, key, o);
    is->out = a;
    is->cur = NAN;
    if (ar->r->window_ns > 0 && !(is->wb = calloc(ALERT_WIN_BUCKETS, sizeof *is->wb))) {
        free(is);
        return NULL;
    }
    if (amap_put(&ar->imap, key, o, h, is)) {
        free(is->wb);
        free(is);
        return NULL;
    }
    member_add(a, is);
    return is;
}

static void input_free(struct arule *ar, struct iseries *is)
{
    amap_del(&ar->imap, is->key, strlen(is->key), amap_hash(is->key, strlen(is->key), 0));
    member_remove(is->out, is);
    free(is->wb);
    free(is);
}

/* Drops an alert series that is ok and has no input. */
static void aseries_drop(struct alert_engine *e, struct aseries *a)
{
    if (a->in_active || a->nmem || a->in_dirty) return;
    struct arule *ar = a->ar;
    amap_del(&ar->amap, a->key, strlen(a->key), amap_hash(a->key, strlen(a->key), 1));
    e->st.series--;
    aseries_free(a);
}

/* ---- the feed ------------------------------------------------------------------------------ */

/* a == s, where n is strlen(s) (kept in the rule: no strlen per point) */
static inline bool str_is(struct pt_str a, const char *s, size_t n)
{
    return a.len == n && memcmp(a.p, s, n) == 0;
}

static bool field_value(const struct pt_meas *m, const char *field, size_t flen, double *v)
{
    for (size_t i = 0; i < m->nfields; i++) {
        const struct pt_field *fl = &m->fields[i];
        if (!str_is(fl->key, field, flen)) continue;
        switch (fl->type) {
        case PT_F_FLOAT:
            *v = fl->v.f;
            break;
        case PT_F_INT:
            *v = (double)fl->v.i;
            break;
        case PT_F_UINT:
            *v = (double)fl->v.u;
            break;
        default:
            return false;
        }
        return isfinite(*v);
    }
    return false;
}

static bool tags_match(const struct alert_rule *r, const struct pt_meas *m)
{
    for (size_t k = 0; k < r->nmatch; k++) {
        bool hit = false;
        for (size_t t = 0; t < m->ntags && !hit; t++)
            hit = pt_str_eq(m->tags[t].key, r->mkey[k]) && pt_str_eq(m->tags[t].val, r->mval[k]);
        if (!hit) return false;
    }
    return true;
}

static void point(struct alert_engine *e, struct arule *ar, struct iseries *is,
                  const struct pt_frame *f, double v, int64_t now)
{
    const struct alert_rule *r = ar->r;
    e->st.points++;
    is->last_ns = now;
    is->interval_ms = f->interval_ms;
    is->out->last_input_ns = now;
    double nv = v;
    if (r->window_ns > 0) {
        window_add(r, is, v, now);
        nv = window_value(r, is, now);
    }
    member_update(is, !isnan(nv), nv);
    input_changed(e, is, now);
}

/* "ns SEP mcis" into key (cap >= 2 * PT_WIRE_MAX_STR + 2); its length. */
static size_t mcis_key(const struct pt_frame *f, char *key)
{
    memcpy(key, f->id.ns.p, f->id.ns.len);
    key[f->id.ns.len] = SEP;
    memcpy(key + f->id.ns.len + 1, f->id.mcis.p, f->id.mcis.len);
    return f->id.ns.len + 1 + f->id.mcis.len;
}

/* The rules of one measurement of the frame. */
static void feed_meas(struct alert_engine *e, const struct ixent *x, const struct pt_frame *f,
                      const struct pt_meas *m, int64_t now)
{
    char key[KEY_MAX];
    if (f->id.vm.len + 1 >= sizeof key) return;
    memcpy(key, f->id.vm.p, f->id.vm.len);
    size_t o = f->id.vm.len;
    key[o++] = SEP;
    size_t tstart = o;
    o = tag_key(key, sizeof key, o, m);
    if (o >= sizeof key) return;
    uint64_t h = amap_hash(key, o, 0);
    for (size_t i = 0; i < x->n; i++) {
        struct arule *ar = x->rules[i];
        const struct alert_rule *r = ar->r;
        double v;
        if (r->vm && !str_is(f->id.vm, r->vm, r->vm_len)) continue;
        if (r->nmatch && !tags_match(r, m)) continue;
        if (!field_value(m, r->field, r->field_len, &v)) continue;
        struct iseries *is = input_get(e, ar, f, m, key, o, tstart, h, now);
        if (is) point(e, ar, is, f, v, now);
    }
}

void alert_engine_feed(struct alert_engine *e, const struct pt_frame *f, int64_t now)
{
    if (!atomic_load_explicit(&e->nindexed, memory_order_relaxed)) return;
    if (f->id.ns.len > PT_WIRE_MAX_STR || f->id.mcis.len > PT_WIRE_MAX_STR) return;
    char key[3 * PT_WIRE_MAX_STR + 3];
    size_t k2 = mcis_key(f, key);
    uint64_t h2 = amap_hash(key, k2, 3);
    pthread_mutex_lock(&e->mu);
    e->st.frames++;
    /* One lookup for the MCIS: a frame no rule watches stops here. */
    if (amap_get(&e->ixm, key, k2, h2)) {
        key[k2] = SEP;
        for (size_t mi = 0; mi < f->nmeas; mi++) {
            const struct pt_meas *m = &f->meas[mi];
            if (m->name.len > PT_WIRE_MAX_STR) continue;
            memcpy(key + k2 + 1, m->name.p, m->name.len);
            size_t k3 = k2 + 1 + m->name.len;
            struct ixent *x = amap_get(&e->ix, key, k3, amap_hash(key, k3, 2));
            if (x) feed_meas(e, x, f, m, now);
        }
    }
    pthread_mutex_unlock(&e->mu);
}

/* ---- timers -------------------------------------------------------------------------------------- */

static int64_t stale_after(const struct alert_rule *r, const struct iseries *is)
{
    int64_t iv = is->interval_ms ? (int64_t)is->interval_ms * PT_NS_PER_MS : 10 * PT_NS_PER_SEC;
    int64_t s = r->window_ns + 3 * iv;
    return s < 3 * PT_NS_PER_SEC ? 3 * PT_NS_PER_SEC : s;
}

/* Once a second: windows age, silent inputs leave their group (or are
 * absent), alert series without input resolve or fire for absence. */
static void sweep_rule(struct alert_engine *e, struct arule *ar, int64_t now)
{
    const struct alert_rule *r = ar->r;
    if (r->kind != KIND_METRIC) return;
    for (size_t i = 0; i < ar->imap.cap; i++) {
        struct iseries *is = ar->imap.e[i].val;
        if (!ar->imap.e[i].key) continue;
        int64_t silent = now - is->last_ns;
        if (silent > stale_after(r, is)) {
            struct aseries *a = is->out;
            member_update(is, false, NAN);
            input_free(ar, is);
            i--; /* backward shift moved an entry into slot i */
            if (r->reduce == RED_EACH || a->nval == 0) {
                if (!r->absent_ns) evaluate(e, a, NAN, now); /* went away: resolves */
            } else {
                evaluate_group(e, a, now);
            }
            if (!r->absent_ns) aseries_drop(e, a); /* else kept: absence is what it watches */
            continue;
        }
        if (r->window_ns > 0 && is->has) {
            double nv = window_value(r, is, now);
            if (nv != is->cur && !(isnan(nv) && isnan(is->cur))) {
                member_update(is, !isnan(nv), nv);
                input_changed(e, is, now);
            }
        }
    }
}

/* Alert series of a rule with no input left: absence fires (rules with
 * `absent`); restored states resolve once nothing came back for a while. */
static void sweep_absent(struct alert_engine *e, struct arule *ar, int64_t now)
{
    const struct alert_rule *r = ar->r;
    if (r->kind != KIND_METRIC) return;
    for (size_t i = 0; i < ar->amap.cap; i++) {
        struct aseries *a = ar->amap.e[i].val;
        if (!ar->amap.e[i].key || a->nval) continue;
        int64_t silent = now - a->last_input_ns;
        if (r->absent_ns) {
            if (silent >= r->absent_ns && !(a->st.phase == PH_FIRING && isnan(a->value)))
                evaluate_absent(e, a, now);
        } else if (a->st.phase != PH_OK && silent > r->window_ns + 30 * PT_NS_PER_SEC) {
            evaluate(e, a, NAN, now);
            size_t before = ar->amap.n;
            aseries_drop(e, a);
            if (ar->amap.n < before) i--;
        }
    }
}

void alert_engine_tick(struct alert_engine *e, int64_t now)
{
    pthread_mutex_lock(&e->mu);
    for (struct aseries *a = e->dirty, *next; a; a = next) {
        next = a->dnext;
        a->in_dirty = false;
        a->dnext = NULL;
        evaluate_group(e, a, now);
    }
    e->dirty = NULL;
    for (struct aseries *a = e->active, *next; a; a = next) {
        next = a->anext;
        struct alert_state before = a->st;
        enum alert_level level;
        enum alert_emit what = alert_state_timer(&a->st, &a->ar->sm, now, &level);
        if (what != EMIT_NONE || before.phase != a->st.phase || before.flapping != a->st.flapping)
            after_step(e, a, what, level, before, now);
    }
    /* Every rule is swept about once per SWEEP_NS, a slice of them per
     * tick, so a million series never stall the ingest thread at once. */
    int64_t dt = now - e->last_sweep_ns;
    e->last_sweep_ns = now;
    size_t k = e->nrules;
    if (dt > 0 && dt < SWEEP_NS)
        k = (size_t)(((double)e->nrules * (double)dt + (double)SWEEP_NS - 1) / (double)SWEEP_NS);
    for (size_t j = 0; j < k && e->nrules; j++) {
        struct arule *ar = e->rules[e->sweep_next++ % e->nrules];
        sweep_rule(e, ar, now);
        sweep_absent(e, ar, now);
    }
    if (alert_db_commit(&e->db)) e->st.db_errors++;
    pthread_mutex_unlock(&e->mu);
}

/* ---- built-in rules ------------------------------------------------------------------------------- */

static struct aseries *agent_series(struct alert_engine *e, struct arule *ar,
                                    const struct alert_agent_sample *s, int64_t now)
{
    char key[3 * 130 + 16];
    int n = snprintf(key, sizeof key, "%s%cns=%s%cmcis=%s%c", s->vm, SEP, s->ns, SEP, s->mcis, SEP);
    if (n < 0 || (size_t)n >= sizeof key) return NULL;
    struct aseries *a = amap_get(&ar->amap, key, (size_t)n, amap_hash(key, (size_t)n, 1));
    if (a) return a;
    a = aseries_new(ar, key, (size_t)n, true, now);
    if (a) e->st.series++;
    return a;
}

static double lost_ratio(struct aseries *a, const struct alert_agent_sample *s, int64_t win,
                         int64_t now)
{
    struct lostwin *w = a->lost;
    unsigned last = (w->head + LOST_SAMPLES - 1) % LOST_SAMPLES;
    if (!w->n || now - w->t[last] >= win / (LOST_SAMPLES - 1)) {
        w->t[w->head] = now;
        w->acc[w->head] = s->accepted;
        w->miss[w->head] = s->missing;
        w->head = (w->head + 1) % LOST_SAMPLES;
        if (w->n < LOST_SAMPLES) w->n++;
    }
    /* The oldest sample still inside the window. */
    unsigned oldest = (w->head + LOST_SAMPLES - w->n) % LOST_SAMPLES;
    for (unsigned k = 0; k < w->n; k++) {
        unsigned i = (oldest + k) % LOST_SAMPLES;
        if (now - w->t[i] > win) continue;
        if (s->accepted < w->acc[i] || s->missing < w->miss[i]) return 0; /* agent re-registered */
        double da = (double)(s->accepted - w->acc[i]), dm = (double)(s->missing - w->miss[i]);
        return da + dm > 0 ? 100.0 * dm / (da + dm) : 0;
    }
    return 0;
}

void alert_engine_agents(struct alert_engine *e, const struct alert_agent_sample *s, size_t n,
                         int64_t now)
{
    pthread_mutex_lock(&e->mu);
    uint64_t gen = ++e->gen;
    for (size_t i = 0; i < n; i++) {
        if (e->agent_down && s[i].last_seen_ns) {
            struct aseries *a = agent_series(e, e->agent_down, &s[i], now);
            if (a) {
                int64_t iv = s[i].interval_ms ? (int64_t)s[i].interval_ms * PT_NS_PER_MS
                                              : 10 * PT_NS_PER_SEC;
                /* whole intervals missed, so "3" means three frames did not come */
                double missed = (double)((now - s[i].last_seen_ns) / iv);
                a->gen = gen;
                evaluate(e, a, missed < 0 ? 0 : missed, now);
            }
        }
        if (e->frames_lost) {
            struct aseries *a = agent_series(e, e->frames_lost, &s[i], now);
            if (a && !a->lost) a->lost = calloc(1, sizeof *a->lost);
            if (a && a->lost) {
                a->gen = gen;
                double r = lost_ratio(a, &s[i], e->frames_lost->r->window_ns, now);
                evaluate(e, a, round(r * 100) / 100, now);
            }
        }
    }
    /* Agents no longer registered: resolve and forget. */
    struct arule *bs[2] = {e->agent_down, e->frames_lost};
    for (int b = 0; b < 2; b++) {
        struct arule *ar = bs[b];
        if (!ar) continue;
        for (size_t i = 0; i < ar->amap.cap; i++) {
            struct aseries *a = ar->amap.e[i].val;
            if (!ar->amap.e[i].key || a->gen == gen) continue;
            evaluate(e, a, NAN, now);
            if (a->in_active) continue;
            amap_del(&ar->amap, a->key, strlen(a->key), amap_hash(a->key, strlen(a->key), 1));
            e->st.series--;
            aseries_free(a);
            i--;
        }
    }
    pthread_mutex_unlock(&e->mu);
}

/* ---- rules in the engine ------------------------------------------------------------------------- */

struct arule *eng_rule_new(struct alert_rule *r, const struct alert_engine_opts *o)
{
    struct arule *ar = calloc(1, sizeof *ar);
    if (!ar) return NULL;
    ar->r = r;
    ar->sm = (struct alert_sm_conf){r->for_ns, r->repeat_ns, o->flap_changes, o->flap_window_ns};
    return ar;
}

/* "ns SEP mcis" (with_meas false) or "ns SEP mcis SEP measurement". */
static int ix_key(const struct alert_rule *r, bool with_meas, char *key, size_t cap)
{
    int n = with_meas ? snprintf(key, cap, "%s%c%s%c%s", r->ns, SEP, r->mcis, SEP, r->measurement)
                      : snprintf(key, cap, "%s%c%s", r->ns, SEP, r->mcis);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* Adds ar to (or, ar NULL, counts in) the entry of key in map. */
static int ix_add(struct amap *map, const char *key, size_t kl, uint64_t h, struct arule *ar)
{
    struct ixent *x = amap_get(map, key, kl, h);
    if (!x) {
        if (!(x = calloc(1, sizeof *x))) return -ENOMEM;
        if (amap_put(map, key, kl, h, x)) {
            free(x);
            return -ENOMEM;
        }
    }
    if (ar && x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 4;
        struct arule **n = realloc(x->rules, cap * sizeof *n);
        if (!n) return -ENOMEM;
        x->rules = n;
        x->cap = cap;
    }
    if (ar) x->rules[x->n] = ar;
    x->n++;
    return 0;
}

static void ix_del(struct amap *map, const char *key, size_t kl, uint64_t h, struct arule *ar)
{
    struct ixent *x = amap_get(map, key, kl, h);
    if (!x) return;
    if (ar) {
        for (size_t i = 0; i < x->n; i++)
            if (x->rules[i] == ar) {
                x->rules[i] = x->rules[--x->n];
                break;
            }
    } else {
        x->n--;
    }
    if (!x->n) {
        amap_del(map, key, kl, h);
        free(x->rules);
        free(x);
    }
}

int eng_rule_add(struct alert_engine *e, struct arule *ar)
{
    if (e->nrules == e->caprules) {
        size_t cap = e->caprules ? e->caprules * 2 : 16;
        struct arule **n = realloc(e->rules, cap * sizeof *n);
        if (!n) return -ENOMEM;
        e->rules = n;
        e->caprules = cap;
    }
    const struct alert_rule *r = ar->r;
    if (r->kind == KIND_METRIC && r->enabled) {
        char k3[600], k2[300];
        int l3 = ix_key(r, true, k3, sizeof k3), l2 = ix_key(r, false, k2, sizeof k2);
        if (l3 < 0 || l2 < 0) return -EINVAL;
        int rc = ix_add(&e->ix, k3, (size_t)l3, amap_hash(k3, (size_t)l3, 2), ar);
        if (!rc && (rc = ix_add(&e->ixm, k2, (size_t)l2, amap_hash(k2, (size_t)l2, 3), NULL)))
            ix_del(&e->ix, k3, (size_t)l3, amap_hash(k3, (size_t)l3, 2), ar);
        if (rc) return rc;
        atomic_fetch_add(&e->nindexed, 1);
    }
    e->rules[e->nrules++] = ar;
    e->st.rules = e->nrules;
    return 0;
}

struct arule *eng_rule_find(struct alert_engine *e, const char *name)
{
    for (size_t i = 0; i < e->nrules; i++)
        if (!strcmp(e->rules[i]->r->name, name)) return e->rules[i];
    return NULL;
}

static void arule_free(struct alert_engine *e, struct arule *ar)
{
    for (size_t i = 0; i < ar->imap.cap; i++) {
        struct iseries *is = ar->imap.e[i].val;
        if (!ar->imap.e[i].key) continue;
        free(is->wb);
        free(is);
    }
    for (size_t i = 0; i < ar->amap.cap; i++) {
        struct aseries *a = ar->amap.e[i].val;
        if (!ar->amap.e[i].key) continue;
        if (a->in_active) { /* shutdown, or resolved just before: off the list */
            a->st.phase = PH_OK;
            a->st.flapping = false;
            active_set(e, a);
        }
        aseries_free(a);
        e->st.series--;
    }
    amap_free(&ar->imap);
    amap_free(&ar->amap);
    alert_rule_free(ar->r);
    free(ar->json);
    free(ar);
}

void eng_rule_remove(struct alert_engine *e, struct arule *ar, int64_t now)
{
    /* Tell receivers that what this rule fired is over, then forget it. */
    for (size_t i = 0; i < ar->amap.cap; i++) {
        struct aseries *a = ar->amap.e[i].val;
        if (!ar->amap.e[i].key) continue;
        if (a->in_dirty) { /* unlink from the dirty list */
            struct aseries **pp = &e->dirty;
            while (*pp && *pp != a) pp = &(*pp)->dnext;
            if (*pp) *pp = a->dnext;
            a->in_dirty = false;
        }
        if (a->st.phase == PH_FIRING || a->st.flapping) {
            struct alert_state before = a->st;
            a->st.flapping = false;
            enum alert_level level;
            a->value = NAN;
            enum alert_emit what = alert_state_step(&a->st, &ar->sm, ALERT_OK, now, &level);
            after_step(e, a, what == EMIT_NONE && before.phase == PH_FIRING ? EMIT_RESOLVED : what,
                       level, before, now);
        }
        alert_db_state_del(&e->db, ar->r->name, a->key);
    }
    if (ar->r->kind == KIND_METRIC && ar->r->enabled) {
        char k3[600], k2[300];
        int l3 = ix_key(ar->r, true, k3, sizeof k3), l2 = ix_key(ar->r, false, k2, sizeof k2);
        if (l3 >= 0 && l2 >= 0) {
            ix_del(&e->ix, k3, (size_t)l3, amap_hash(k3, (size_t)l3, 2), ar);
            ix_del(&e->ixm, k2, (size_t)l2, amap_hash(k2, (size_t)l2, 3), NULL);
            atomic_fetch_sub(&e->nindexed, 1);
        }
    }
    for (size_t i = 0; i < e->nrules; i++)
        if (e->rules[i] == ar) {
            memmove(&e->rules[i], &e->rules[i + 1], (e->nrules - i - 1) * sizeof *e->rules);
            e->nrules--;
            break;
        }
    e->st.rules = e->nrules;
    arule_free(e, ar);
}

void eng_restore_state(struct alert_engine *e, const char *rule, const char *key,
                       const struct alert_state *s, const char *labels_json, int64_t now)
{
    struct arule *ar = eng_rule_find(e, rule);
    if (!ar) return;
    json_t *j = json_loads(labels_json, 0, NULL);
    bool has_vm = json_is_string(json_object_get(j, "vm"));
    json_decref(j);
    struct aseries *a = amap_get(&ar->amap, key, strlen(key), amap_hash(key, strlen(key), 1));
    if (!a && (a = aseries_new(ar, key, strlen(key), has_vm, now))) e->st.series++;
    if (!a) return;
    a->st = *s;
    a->value = s->value;
    a->threshold = s->threshold;
    a->last_input_ns = now; /* give its inputs time to come back */
    active_set(e, a);
}

static void series_json(struct aseries *a, json_t *arr)
{
    const struct alert_rule *r = a->ar->r;
    struct alert_kv l[ALERT_MAX_KV + ALERT_MAX_MATCH + 16];
    enum alert_level lv = a->st.phase == PH_FIRING    ? (enum alert_level)a->st.level
                          : a->st.phase == PH_PENDING ? (enum alert_level)a->st.pending_level
                                                      : ALERT_OK;
    char scratch[KEY_MAX];
    size_t nl = series_labels(a, lv, lv != ALERT_OK, l, PT_ARRAY_LEN(l), scratch);
    const char *vm = NULL;
    for (size_t i = 0; i < nl; i++)
        if (!strcmp(l[i].key, "vm")) vm = l[i].value;
    json_t *labels = json_object();
    for (size_t i = 0; i < nl; i++) json_object_set_new(labels, l[i].key, json_string(l[i].value));
    json_t *j =
        json_pack("{s:s,s:s,s:s,s:s,s:o}", "rule", r->name, "fingerprint", a->fp, "state",
                  alert_state_name(&a->st), "level", alert_level_name(lv), "labels", labels);
    if (!j) return;
    json_object_set_new(j, "value", isnan(a->value) ? json_null() : json_real(a->value));
    json_object_set_new(j, "threshold",
                        isnan(a->st.threshold) ? json_null() : json_real(a->st.threshold));
    json_object_set_new(j, "vm", vm && a->has_vm ? json_string(vm) : json_null());
    char b[48];
    int64_t since = a->st.phase == PH_FIRING ? a->st.starts_at : a->st.since;
    if (pt_time_format(since, 3, b, sizeof b) > 0) json_object_set_new(j, "since", json_string(b));
    json_object_set_new(j, "events", json_integer(a->st.seq));
    json_array_append_new(arr, j);
}

void eng_active_json(struct alert_engine *e, json_t *arr)
{
    for (struct aseries *a = e->active; a; a = a->anext) series_json(a, arr);
}

/* ---- open / close ---------------------------------------------------------------------------------- */

void alert_engine_close(struct alert_engine *e)
{
    if (!e) return;
    while (e->nrules) {
        struct arule *ar = e->rules[--e->nrules];
        arule_free(e, ar);
    }
    free(e->rules);
    for (size_t i = 0; i < e->ix.cap; i++) {
        struct ixent *x = e->ix.e[i].val;
        if (!e->ix.e[i].key) continue;
        free(x->rules);
        free(x);
    }
    amap_free(&e->ix);
    for (size_t i = 0; i < e->ixm.cap; i++)
        if (e->ixm.e[i].key) free(e->ixm.e[i].val);
    amap_free(&e->ixm);
    for (size_t i = 0; i < e->handlers.cap; i++) {
        struct handler *h = e->handlers.e[i].val;
        if (!e->handlers.e[i].key) continue;
        free(h->name);
        free(h->settings);
        free(h);
    }
    amap_free(&e->handlers);
    for (size_t i = 0; i < e->nsilences; i++) {
        struct silence *s = e->silences[i];
        for (size_t k = 0; k < s->nmatch; k++) {
            free(s->mkey[k]);
            free(s->mval[k]);
        }
        free(s->mkey);
        free(s->mval);
        free(s->json);
        free(s);
    }
    free(e->silences);
    free(e->scratch);
    alert_db_close(&e->db);
    free(e->external_url);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

void alert_engine_stats(struct alert_engine *e, struct alert_stats *s)
{
    pthread_mutex_lock(&e->mu);
    *s = e->st;
    s->active = 0;
    for (struct aseries *a = e->active; a; a = a->anext) s->active++;
    pthread_mutex_unlock(&e->mu);
}

int alert_stats_render(const struct alert_stats *s, char *buf, size_t cap)
{
    int n = snprintf(
        buf, cap,
        "# HELP pantala_alert_rules Alert rules loaded (built-ins included).\n"
        "# TYPE pantala_alert_rules gauge\npantala_alert_rules %llu\n"
        "# HELP pantala_alert_series Alert series tracked.\n"
        "# TYPE pantala_alert_series gauge\npantala_alert_series %llu\n"
        "# HELP pantala_alert_active Alert series pending, firing or flapping.\n"
        "# TYPE pantala_alert_active gauge\npantala_alert_active %llu\n"
        "# HELP pantala_alert_points_total Points that reached a rule.\n"
        "# TYPE pantala_alert_points_total counter\npantala_alert_points_total %llu\n"
        "# HELP pantala_alert_events_total Alert events by outcome.\n"
        "# TYPE pantala_alert_events_total counter\n"
        "pantala_alert_events_total{outcome=\"generated\"} %llu\n"
        "pantala_alert_events_total{outcome=\"notified\"} %llu\n"
        "pantala_alert_events_total{outcome=\"silenced\"} %llu\n"
        "pantala_alert_events_total{outcome=\"held_flapping\"} %llu\n"
        "pantala_alert_events_total{outcome=\"submit_error\"} %llu\n"
        "# HELP pantala_alert_db_errors_total Alert state/history writes that failed.\n"
        "# TYPE pantala_alert_db_errors_total counter\npantala_alert_db_errors_total %llu\n"
        "# HELP pantala_alert_series_dropped_total New series refused at the per-rule ceiling.\n"
        "# TYPE pantala_alert_series_dropped_total counter\n"
        "pantala_alert_series_dropped_total %llu\n",
        (unsigned long long)s->rules, (unsigned long long)s->series, (unsigned long long)s->active,
        (unsigned long long)s->points, (unsigned long long)s->events,
        (unsigned long long)s->notified, (unsigned long long)s->silenced,
        (unsigned long long)s->held, (unsigned long long)s->submit_errors,
        (unsigned long long)s->db_errors, (unsigned long long)s->series_dropped);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}
