/* Include/exclude glob filters. */
#include "filter.h"

#include <errno.h>
#include <fnmatch.h>
#include <string.h>

int agent_filter_add(struct agent_filter_list *l, const char *pattern)
{
    size_t n = strlen(pattern);
    if (n == 0) return -EINVAL;
    if (n >= AGENT_FILTER_PATTERN_LEN) return -ENAMETOOLONG;
    if (l->n >= AGENT_FILTER_MAX_PATTERNS) return -E2BIG;
    memcpy(l->pat[l->n++], pattern, n + 1);
    return 0;
}

static bool list_match(const struct agent_filter_list *l, const char *name)
{
    for (unsigned i = 0; i < l->n; i++)
        if (fnmatch(l->pat[i], name, 0) == 0) return true;
    return false;
}

bool agent_filter_pass(const struct agent_filter *f, const char *name)
{
    if (f->include.n && !list_match(&f->include, name)) return false;
    return !list_match(&f->exclude, name);
}
