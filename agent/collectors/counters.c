/* Named counter sets and their per-object and total rate series. */
#include "counters.h"

#include <string.h>

#include "pt/time.h"
#include "pt/wire.h"

void agent_ctrs_init(struct agent_ctrs *c)
{
    memset(c, 0, sizeof *c);
}

void agent_ctrs_begin(struct agent_ctrs *c)
{
    c->set[c->cur].n = 0;
    c->over = 0;
}

struct agent_ctrs_obj *agent_ctrs_add(struct agent_ctrs *c, const char *name)
{
    struct agent_ctrs_set *s = &c->set[c->cur];
    size_t len = strlen(name);
    /* A name the wire would refuse as a tag value (control characters,
     * invalid UTF-8) would make the whole frame unsendable. */
    if (s->n >= AGENT_MAX_OBJECTS || len >= AGENT_CTRS_NAME_LEN || !pt_wire_name_ok(name, len)) {
        c->over++;
        return NULL;
    }
    struct agent_ctrs_obj *o = &s->o[s->n++];
    memcpy(o->name, name, len + 1);
    memset(o->v, 0, sizeof o->v);
    o->in_total = false;
    return o;
}

void agent_ctrs_commit(struct agent_ctrs *c, int64_t mono_ns)
{
    c->set[c->cur].mono_ns = mono_ns;
    c->cur = !c->cur;
    if (c->nread < 2) c->nread++;
}

const struct agent_ctrs_set *agent_ctrs_last(const struct agent_ctrs *c)
{
    return &c->set[!c->cur];
}

const struct agent_ctrs_set *agent_ctrs_before(const struct agent_ctrs *c)
{
    /* After a commit, set[cur] holds the reading before the last, until the
     * next agent_ctrs_begin() reuses it. */
    return c->nread >= 2 ? &c->set[c->cur] : NULL;
}

const struct agent_ctrs_obj *agent_ctrs_find(const struct agent_ctrs_set *s, const char *name)
{
    for (unsigned i = 0; i < s->n; i++)
        if (strcmp(s->o[i].name, name) == 0) return &s->o[i];
    return NULL;
}

/* The object of s at index hint when it is called name (the kernel lists
 * objects in a stable order, so this is the usual case), else by search. */
static const struct agent_ctrs_obj *find_hint(const struct agent_ctrs_set *s, unsigned hint,
                                              const char *name)
{
    if (hint < s->n && strcmp(s->o[hint].name, name) == 0) return &s->o[hint];
    return agent_ctrs_find(s, name);
}

unsigned agent_ctrs_series(const struct agent_ctrs *c, const char *name, const char *tag,
                           const struct agent_ctrs_field *fields, unsigned nf,
                           struct agent_ctrs_out *out)
{
    const struct agent_ctrs_set *last = agent_ctrs_last(c), *before = agent_ctrs_before(c);
    int64_t elapsed = before ? last->mono_ns - before->mono_ns : 0;
    uint64_t sum_prev[AGENT_CTRS_MAX] = {0}, sum_cur[AGENT_CTRS_MAX] = {0};
    bool back[AGENT_CTRS_MAX] = {false};
    unsigned n = 0;

    for (unsigned i = 0; i < last->n; i++) {
        const struct agent_ctrs_obj *o = &last->o[i];
        const struct agent_ctrs_obj *p = before ? find_hint(before, i, o->name) : NULL;
        struct pt_meas *am = &out->m[n];
        agent_pm_init(am, name, out->f[n], &out->t[n]);
        agent_pm_tag(am, 1, tag, o->name);
        n++;
        if (!p) continue; /* new: no rate yet, and nothing for the total */
        for (unsigned k = 0; k < nf; k++) {
            unsigned x = fields[k].idx;
            agent_pm_rate_scaled(am, AGENT_CTRS_MAX, fields[k].key, p->v[x], o->v[x], elapsed,
                                 fields[k].scale);
            if (!o->in_total) continue;
            if (o->v[x] < p->v[x]) back[x] = true;
            sum_prev[x] += p->v[x];
            sum_cur[x] += o->v[x];
        }
    }

    struct pt_meas *t = &out->m[n];
    agent_pm_init(t, name, out->f[n], &out->t[n]);
    agent_pm_tag(t, 1, tag, "total");
    n++;
    if (before)
        for (unsigned k = 0; k < nf; k++) {
            unsigned x = fields[k].idx;
            if (!back[x])
                agent_pm_rate_scaled(t, AGENT_CTRS_MAX, fields[k].key, sum_prev[x], sum_cur[x],
                                     elapsed, fields[k].scale);
        }
    return n;
}
