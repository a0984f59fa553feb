/* Linux memory counters: /proc/meminfo (sizes) and /proc/vmstat (paging). */
#include "collectors/memory.h"
#include "procfs.h"

#include <string.h>

/* The /proc/meminfo lines used. */
enum {
    MI_TOTAL,
    MI_FREE,
    MI_AVAILABLE,
    MI_BUFFERS,
    MI_CACHED,
    MI_SRECLAIMABLE,
    MI_SHMEM,
    MI_SWAP_TOTAL,
    MI_SWAP_FREE,
    MI_COUNT
};

static const struct {
    const char *key;
    int required; /* 0: absent from older kernels */
} meminfo_keys[MI_COUNT] = {
    [MI_TOTAL] = {"MemTotal", 1},
    [MI_FREE] = {"MemFree", 1},
    [MI_AVAILABLE] = {"MemAvailable", 0}, /* Linux 3.14 */
    [MI_BUFFERS] = {"Buffers", 1},
    [MI_CACHED] = {"Cached", 1},
    [MI_SRECLAIMABLE] = {"SReclaimable", 0}, /* 2.6.19 */
    [MI_SHMEM] = {"Shmem", 0},               /* 2.6.32 */
    [MI_SWAP_TOTAL] = {"SwapTotal", 1},
    [MI_SWAP_FREE] = {"SwapFree", 1},
};

struct meminfo {
    uint64_t v[MI_COUNT]; /* bytes */
    unsigned seen;        /* bit i: v[i] was read */
};

/* "MemTotal:       24684096 kB" */
static int meminfo_line(struct agent_procfs_file *f, void *ctx, char *line, size_t len)
{
    struct meminfo *mi = ctx;
    const char *colon = memchr(line, ':', len);
    if (!colon) return 0;
    size_t klen = (size_t)(colon - line);
    for (unsigned i = 0; i < MI_COUNT; i++) {
        if (strlen(meminfo_keys[i].key) != klen || memcmp(line, meminfo_keys[i].key, klen) != 0)
            continue;
        const char *p = colon + 1;
        uint64_t v;
        if (agent_procfs_u64(&p, &v) || strcmp(p, " kB") != 0 || v > UINT64_MAX / 1024)
            return agent_procfs_fail(f, "\"%s\" is not a size in kB", meminfo_keys[i].key);
        mi->v[i] = v * 1024;
        mi->seen |= 1u << i;
        return mi->seen == (1u << MI_COUNT) - 1; /* the rest of the file is not needed */
    }
    return 0;
}

static const char *const vmstat_keys[] = {"pgpgin", "pgpgout", "pswpin", "pswpout"};
#define NVMSTAT (sizeof vmstat_keys / sizeof vmstat_keys[0])

struct vmstat {
    uint64_t v[NVMSTAT];
    unsigned seen;
};

/* "pgpgin 1558969" */
static int vmstat_line(struct agent_procfs_file *f, void *ctx, char *line, size_t len)
{
    struct vmstat *vs = ctx;
    const char *sp = memchr(line, ' ', len);
    if (!sp) return 0;
    size_t klen = (size_t)(sp - line);
    for (unsigned i = 0; i < NVMSTAT; i++) {
        if (strlen(vmstat_keys[i]) != klen || memcmp(line, vmstat_keys[i], klen) != 0) continue;
        const char *p = sp;
        if (agent_procfs_u64(&p, &vs->v[i]) || *p != '\0')
            return agent_procfs_fail(f, "\"%s\" is not followed by a number", vmstat_keys[i]);
        vs->seen |= 1u << i;
        return vs->seen == (1u << NVMSTAT) - 1;
    }
    return 0;
}

int agent_plat_mem_read(const char *root, struct agent_mem_raw *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    struct meminfo mi;
    memset(&mi, 0, sizeof mi);
    struct agent_procfs_file f = {root, "meminfo", err, errlen, 0};
    int rc = agent_procfs_read(&f, meminfo_line, &mi);
    if (rc < 0) return rc;
    f.line = 0;
    for (unsigned i = 0; i < MI_COUNT; i++)
        if (meminfo_keys[i].required && !(mi.seen & (1u << i)))
            return agent_procfs_fail(&f, "no \"%s\" line", meminfo_keys[i].key);
    if (mi.v[MI_TOTAL] == 0) return agent_procfs_fail(&f, "\"MemTotal\" is 0");

    out->total = mi.v[MI_TOTAL];
    out->free = mi.v[MI_FREE];
    out->buffers = mi.v[MI_BUFFERS];
    out->cached = mi.v[MI_CACHED] + mi.v[MI_SRECLAIMABLE];
    out->shared = mi.v[MI_SHMEM];
    out->swap_total = mi.v[MI_SWAP_TOTAL];
    out->swap_free = mi.v[MI_SWAP_FREE];
    if (mi.seen & (1u << MI_AVAILABLE)) {
        out->available = mi.v[MI_AVAILABLE];
    } else {
        /* Before Linux 3.14: what free(1) then called "-/+ buffers/cache". */
        out->available = out->free + out->buffers + out->cached;
        if (out->available > out->total) out->available = out->total;
    }

    struct vmstat vs;
    memset(&vs, 0, sizeof vs);
    f = (struct agent_procfs_file){root, "vmstat", err, errlen, 0};
    if ((rc = agent_procfs_read(&f, vmstat_line, &vs)) < 0) return rc;
    f.line = 0;
    for (unsigned i = 0; i < NVMSTAT; i++)
        if (!(vs.seen & (1u << i))) return agent_procfs_fail(&f, "no \"%s\" line", vmstat_keys[i]);
    out->page_in = vs.v[0];
    out->page_out = vs.v[1];
    out->swap_in = vs.v[2];
    out->swap_out = vs.v[3];
    return 0;
}
