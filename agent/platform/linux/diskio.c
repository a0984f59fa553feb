/* Linux block device counters: /proc/diskstats, and /sys/block to tell
 * whole devices from partitions. */
#include "collectors/diskio.h"
#include "procfs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Counters after "major minor name": reads, reads merged, sectors read, ms
 * reading, writes, writes merged, sectors written, ms writing, then more we
 * do not use. Partitions of 2.6 kernels had 4 (reads, sectors, writes,
 * sectors). */
#define DISKSTATS_COLS 8

struct diskstats_ctx {
    agent_dio_cb cb;
    void *ctx;
};

enum agent_dio_kind agent_plat_dio_kind(const char *sys, const char *name)
{
    /* /sys/block lists whole devices only; a "/" in a kernel name (e.g.
     * cciss/c0d0) is a "!" in sysfs. */
    char path[512];
    int n = snprintf(path, sizeof path, "%s/block/%s", sys, name);
    if (n < 0 || (size_t)n >= sizeof path) return AGENT_DIO_UNKNOWN;
    for (char *p = path + strlen(sys) + strlen("/block/"); *p; p++)
        if (*p == '/') *p = '!';
    if (access(path, F_OK) == 0) return AGENT_DIO_DISK;
    snprintf(path, sizeof path, "%s/block", sys);
    return access(path, F_OK) == 0 ? AGENT_DIO_PART : AGENT_DIO_UNKNOWN;
}

/* "   8       0 sda 1183 52 88578 542 ..." */
static int diskstats_line(struct agent_procfs_file *f, void *ctx, char *line, size_t len)
{
    struct diskstats_ctx *c = ctx;
    const char *p = line;
    uint64_t major, minor;
    if (agent_procfs_u64(&p, &major) || agent_procfs_u64(&p, &minor) || major > UINT32_MAX ||
        minor > UINT32_MAX)
        return agent_procfs_fail(f, "expected \"major minor name counters\"");
    while (*p == ' ' || *p == '\t') p++;
    char *name = (char *)line + (p - line), *end = name;
    while (*end && *end != ' ' && *end != '\t') end++;
    if (end == name || !*end) return agent_procfs_fail(f, "expected a device name and counters");
    *end = '\0';
    p = end + 1;

    uint64_t col[DISKSTATS_COLS];
    int n = 0;
    for (; n < DISKSTATS_COLS; n++) {
        int rc = agent_procfs_u64(&p, &col[n]);
        if (rc == -ENOENT) break;
        if (rc) return agent_procfs_fail(f, "%s: column %d is not a number", name, n + 4);
    }
    struct agent_dio_raw r = {.name = name, .major = (uint32_t)major, .minor = (uint32_t)minor};
    if (n == 4) { /* a 2.6 kernel's partition */
        r.kind = AGENT_DIO_PART;
        r.v[AGENT_DIO_RD_IOS] = col[0];
        r.v[AGENT_DIO_RD_SECTORS] = col[1];
        r.v[AGENT_DIO_WR_IOS] = col[2];
        r.v[AGENT_DIO_WR_SECTORS] = col[3];
    } else if (n == DISKSTATS_COLS) {
        r.kind = AGENT_DIO_UNKNOWN; /* the collector asks agent_plat_dio_kind() */
        r.v[AGENT_DIO_RD_IOS] = col[0];
        r.v[AGENT_DIO_RD_SECTORS] = col[2];
        r.v[AGENT_DIO_RD_MS] = col[3];
        r.v[AGENT_DIO_WR_IOS] = col[4];
        r.v[AGENT_DIO_WR_SECTORS] = col[6];
        r.v[AGENT_DIO_WR_MS] = col[7];
    } else {
        return agent_procfs_fail(f, "%s: %d counters, expected at least %d", name, n,
                                 DISKSTATS_COLS);
    }
    c->cb(c->ctx, &r);
    return 0;
}

int agent_plat_dio_read(const char *proc, agent_dio_cb cb, void *ctx, char *err, size_t errlen)
{
    struct diskstats_ctx c = {cb, ctx};
    struct agent_procfs_file f = {proc, "diskstats", err, errlen, 0};
    int rc = agent_procfs_read(&f, diskstats_line, &c);
    return rc < 0 ? rc : 0;
}
