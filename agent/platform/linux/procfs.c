/* procfs line reader and number parsing for the Linux counter readers. */
#include "procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pt/err.h"

int agent_procfs_fail(struct agent_procfs_file *f, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (f->line)
        snprintf(f->err, f->errlen, "%s/%s:%u: %s", f->root, f->name, f->line, msg);
    else
        snprintf(f->err, f->errlen, "%s/%s: %s", f->root, f->name, msg);
    return PT_E_MALFORMED;
}

static int procfs_errno(struct agent_procfs_file *f, const char *what, int e)
{
    f->line = 0;
    agent_procfs_fail(f, "cannot %s: %s", what, strerror(e));
    return -e;
}

int agent_procfs_read(struct agent_procfs_file *f, agent_procfs_cb cb, void *ctx)
{
    char buf[AGENT_PROCFS_BUF];
    int n = snprintf(buf, sizeof buf, "%s/%s", f->root, f->name);
    f->line = 0;
    if (n < 0 || (size_t)n >= sizeof buf) return procfs_errno(f, "open", ENAMETOOLONG);
    int fd = open(buf, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return procfs_errno(f, "open", errno);

    /* buf holds have bytes of unfinished line; skipping is set while the
     * tail of an over-long line is being thrown away. */
    size_t have = 0;
    int rc = 0;
    int skipping = 0;
    for (;;) {
        ssize_t r = read(fd, buf + have, sizeof buf - 1 - have);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            rc = procfs_errno(f, "read", errno);
            break;
        }
        if (r == 0) { /* end of file; the last line may lack its newline */
            if (have && !skipping) {
                buf[have] = '\0';
                f->line++;
                rc = cb(f, ctx, buf, have);
            }
            break;
        }
        char *start = buf, *end = buf + have + (size_t)r, *nl;
        while ((nl = memchr(start, '\n', (size_t)(end - start))) != NULL) {
            *nl = '\0';
            if (!skipping) {
                f->line++;
                if ((rc = cb(f, ctx, start, (size_t)(nl - start))) != 0) goto out;
            }
            skipping = 0;
            start = nl + 1;
        }
        have = (size_t)(end - start);
        if (have == sizeof buf - 1) { /* a line longer than buf: its head only */
            buf[have] = '\0';
            if (!skipping) {
                f->line++;
                if ((rc = cb(f, ctx, buf, have)) != 0) break;
            }
            skipping = 1;
            have = 0;
        } else if (have) {
            memmove(buf, start, have);
        }
    }
out:
    close(fd);
    return rc > 0 ? 1 : rc;
}

static const char *skip_blanks(const char *p)
{
    while (*p == ' ' || *p == '\t') p++;
    return p;
}

int agent_procfs_u64(const char **p, uint64_t *out)
{
    const char *s = skip_blanks(*p);
    if (*s == '\0') return -ENOENT;
    if (*s < '0' || *s > '9') return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || (*end != '\0' && *end != ' ' && *end != '\t' && *end != '/')) return -EINVAL;
    *out = v;
    *p = end;
    return 0;
}

int agent_procfs_double(const char **p, double *out)
{
    const char *s = skip_blanks(*p);
    if (*s == '\0') return -ENOENT;
    if (*s < '0' || *s > '9' || s[1] == 'x' || s[1] == 'X') return -EINVAL;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || !isfinite(v) || (*end != '\0' && *end != ' ' && *end != '\t')) return -EINVAL;
    *out = v;
    *p = end;
    return 0;
}
