/* Reading procfs files with a small fixed buffer: line by line, numbers
 * parsed by hand, failures described as "<root>/<name>:<line>: why".
 *
 * Private to agent/platform/linux. */
#ifndef AGENT_PROCFS_H
#define AGENT_PROCFS_H

#include <stddef.h>
#include <stdint.h>

#include "pt/log.h"

/* Lines are cut to this many bytes minus one; longer ones (the "intr" line
 * of /proc/stat on a large host runs to tens of kB) are passed cut, and the
 * rest skipped, so a file never needs to fit in memory whole. */
#define AGENT_PROCFS_BUF 4096

struct agent_procfs_file {
    const char *root, *name; /* the file is <root>/<name> */
    char *err;               /* where a failure is described */
    size_t errlen;
    unsigned line; /* 1-based number of the line being parsed, 0 before */
};

/* Called with each line, NUL-terminated, without its newline. Returns 0 to
 * go on, 1 to stop reading (all needed lines seen), or a negative code
 * (after agent_procfs_fail()) to stop with that error. */
typedef int (*agent_procfs_cb)(struct agent_procfs_file *f, void *ctx, char *line, size_t len);

/* Reads f's file and calls cb with each line. Returns 0 when every line
 * went by, 1 when cb stopped early, -errno when the file cannot be opened
 * or read (described in f->err), or cb's error. */
int agent_procfs_read(struct agent_procfs_file *f, agent_procfs_cb cb, void *ctx);

/* Describes a problem with f (at its current line, when there is one) in
 * f->err and returns PT_E_MALFORMED. */
int agent_procfs_fail(struct agent_procfs_file *f, const char *fmt, ...) PT_PRINTF(2, 3);

/* Skips blanks at *p, then parses an unsigned decimal integer (no sign) and
 * moves *p past it. Returns 0, -ENOENT at the end of the line, or -EINVAL
 * for anything else (including overflow). */
int agent_procfs_u64(const char **p, uint64_t *out);
/* The same for a non-negative decimal fraction such as "0.52". */
int agent_procfs_double(const char **p, double *out);

#endif
