/* Fixed-capacity field lists for measurements. */
#include "meas.h"

#include <math.h>
#include <string.h>

#include "pt/catalog.h"
#include "pt/time.h"

void agent_meas_init(struct agent_meas *am, const char *name)
{
    am->m.name = pt_str_c(name);
    am->m.tags = am->t;
    am->m.ntags = 0;
    am->m.fields = am->f;
    am->m.nfields = 0;
}

void agent_meas_tag(struct agent_meas *am, const char *key, const char *val)
{
    if (am->m.ntags >= AGENT_MEAS_MAX_TAGS) return;
    am->t[am->m.ntags++] = (struct pt_tag){pt_str_c(key), pt_str_c(val)};
}

static struct pt_field *meas_next(struct agent_meas *am, const char *key)
{
    if (am->m.nfields >= AGENT_MEAS_MAX_FIELDS) return NULL;
    struct pt_field *fl = &am->f[am->m.nfields++];
    fl->key = pt_str_c(key);
    return fl;
}

void agent_meas_float(struct agent_meas *am, const char *key, double v)
{
    if (!isfinite(v)) return;
    struct pt_field *fl = meas_next(am, key);
    if (!fl) return;
    fl->type = PT_F_FLOAT;
    fl->v.f = v;
}

void agent_meas_uint(struct agent_meas *am, const char *key, uint64_t v)
{
    struct pt_field *fl = meas_next(am, key);
    if (!fl) return;
    fl->type = PT_F_UINT;
    fl->v.u = v;
}

void agent_meas_rate(struct agent_meas *am, const char *key, uint64_t prev, uint64_t cur,
                     int64_t elapsed_ns)
{
    if (cur < prev || elapsed_ns <= 0) return;
    agent_meas_float(am, key, (double)(cur - prev) * (double)PT_NS_PER_SEC / (double)elapsed_ns);
}

void agent_meas_rate_scaled(struct agent_meas *am, const char *key, uint64_t prev, uint64_t cur,
                            int64_t elapsed_ns, double scale)
{
    if (cur < prev || elapsed_ns <= 0) return;
    agent_meas_float(am, key,
                     (double)(cur - prev) * scale * (double)PT_NS_PER_SEC / (double)elapsed_ns);
}

const struct pt_field *agent_meas_find(const struct pt_meas *m, const char *key)
{
    for (size_t i = 0; i < m->nfields; i++)
        if (pt_str_eq(m->fields[i].key, key)) return &m->fields[i];
    return NULL;
}
