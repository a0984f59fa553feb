/* Fixed-capacity field lists for measurements. */
#include "meas.h"

#include <math.h>
#include <string.h>

#include "pt/catalog.h"
#include "pt/time.h"

void agent_pm_init(struct pt_meas *m, const char *name, struct pt_field *f, struct pt_tag *t)
{
    m->name = pt_str_c(name);
    m->tags = t;
    m->ntags = 0;
    m->fields = f;
    m->nfields = 0;
}

void agent_pm_tag(struct pt_meas *m, unsigned tcap, const char *key, const char *val)
{
    if (m->ntags >= tcap) return;
    m->tags[m->ntags++] = (struct pt_tag){pt_str_c(key), pt_str_c(val)};
}

static struct pt_field *pm_next(struct pt_meas *m, unsigned cap, const char *key)
{
    if (m->nfields >= cap) return NULL;
    struct pt_field *fl = &m->fields[m->nfields++];
    fl->key = pt_str_c(key);
    return fl;
}

void agent_pm_float(struct pt_meas *m, unsigned cap, const char *key, double v)
{
    if (!isfinite(v)) return;
    struct pt_field *fl = pm_next(m, cap, key);
    if (!fl) return;
    fl->type = PT_F_FLOAT;
    fl->v.f = v;
}

void agent_pm_uint(struct pt_meas *m, unsigned cap, const char *key, uint64_t v)
{
    struct pt_field *fl = pm_next(m, cap, key);
    if (!fl) return;
    fl->type = PT_F_UINT;
    fl->v.u = v;
}

void agent_pm_rate_scaled(struct pt_meas *m, unsigned cap, const char *key, uint64_t prev,
                          uint64_t cur, int64_t elapsed_ns, double scale)
{
    if (cur < prev || elapsed_ns <= 0) return;
    agent_pm_float(m, cap, key,
                   (double)(cur - prev) * scale * (double)PT_NS_PER_SEC / (double)elapsed_ns);
}

void agent_meas_init(struct agent_meas *am, const char *name)
{
    agent_pm_init(&am->m, name, am->f, am->t);
}

void agent_meas_tag(struct agent_meas *am, const char *key, const char *val)
{
    agent_pm_tag(&am->m, AGENT_MEAS_MAX_TAGS, key, val);
}

void agent_meas_float(struct agent_meas *am, const char *key, double v)
{
    agent_pm_float(&am->m, AGENT_MEAS_MAX_FIELDS, key, v);
}

void agent_meas_uint(struct agent_meas *am, const char *key, uint64_t v)
{
    agent_pm_uint(&am->m, AGENT_MEAS_MAX_FIELDS, key, v);
}

void agent_meas_rate(struct agent_meas *am, const char *key, uint64_t prev, uint64_t cur,
                     int64_t elapsed_ns)
{
    agent_pm_rate_scaled(&am->m, AGENT_MEAS_MAX_FIELDS, key, prev, cur, elapsed_ns, 1.0);
}

void agent_meas_rate_scaled(struct agent_meas *am, const char *key, uint64_t prev, uint64_t cur,
                            int64_t elapsed_ns, double scale)
{
    agent_pm_rate_scaled(&am->m, AGENT_MEAS_MAX_FIELDS, key, prev, cur, elapsed_ns, scale);
}

const struct pt_field *agent_meas_find(const struct pt_meas *m, const char *key)
{
    for (size_t i = 0; i < m->nfields; i++)
        if (pt_str_eq(m->fields[i].key, key)) return &m->fields[i];
    return NULL;
}
