/* Include/exclude glob filters over object names (mount points, block
 * devices, interfaces), as the agent's configuration gives them.
 *
 * A name passes when the include list is empty or one of its patterns
 * matches, and no exclude pattern matches. Patterns are fnmatch(3) globs
 * without flags: a star also matches a slash, so "/mnt/" followed by a star
 * covers every mount below /mnt. */
#ifndef AGENT_FILTER_H
#define AGENT_FILTER_H

#include <stdbool.h>

#define AGENT_FILTER_MAX_PATTERNS 16
#define AGENT_FILTER_PATTERN_LEN  128 /* bytes, NUL included */

struct agent_filter_list {
    char pat[AGENT_FILTER_MAX_PATTERNS][AGENT_FILTER_PATTERN_LEN];
    unsigned n;
};

/* Caller-allocated, zero-initialised: an empty filter passes everything. */
struct agent_filter {
    struct agent_filter_list include, exclude;
};

/* Appends pattern to l. Returns 0, -E2BIG when l is full, -ENAMETOOLONG
 * when pattern does not fit, -EINVAL when it is empty. */
int agent_filter_add(struct agent_filter_list *l, const char *pattern);

bool agent_filter_pass(const struct agent_filter *f, const char *name);

#endif
