/* diskio measurement: per-device and total read/write rates, and the rules
 * saying which devices are reported and which are summed. */
#include "diskio.h"

#include <string.h>

static const struct agent_ctrs_field dio_fields[] = {
    {"kb_read", AGENT_DIO_RD_SECTORS, 0.5}, /* 512-byte sectors: KiB = sectors / 2 */
    {"kb_written", AGENT_DIO_WR_SECTORS, 0.5}, {"ops_read", AGENT_DIO_RD_IOS, 1.0},
    {"ops_write", AGENT_DIO_WR_IOS, 1.0},      {"read_time", AGENT_DIO_RD_MS, 1.0},
    {"write_time", AGENT_DIO_WR_MS, 1.0},
};

void agent_dio_init(struct agent_dio *d)
{
    memset(d, 0, sizeof *d);
    agent_ctrs_init(&d->ctrs);
}

void agent_dio_begin(struct agent_dio *d)
{
    agent_ctrs_begin(&d->ctrs);
    d->nseen = 0;
    d->kcur = !d->kcur;
    d->known[d->kcur].n = 0;
}

/* The kind of dev: from the last reading when the same device was in it
 * (usually at the same index), else asked of the platform; remembered for
 * the next reading. */
static enum agent_dio_kind dio_kind(struct agent_dio *d, const struct agent_dio_raw *dev)
{
    const struct agent_dio_known_set *old = &d->known[!d->kcur];
    struct agent_dio_known_set *now = &d->known[d->kcur];
    enum agent_dio_kind kind = AGENT_DIO_UNKNOWN;
    bool found = false;
    for (unsigned j = 0; j < old->n && !found; j++) {
        unsigned i = (now->n + j) % old->n; /* start where this device was last time */
        const struct agent_dio_known *k = &old->k[i];
        if (k->major == dev->major && k->minor == dev->minor && strcmp(k->name, dev->name) == 0) {
            kind = (enum agent_dio_kind)k->kind;
            found = true;
        }
    }
    if (!found) kind = d->sys ? agent_plat_dio_kind(d->sys, dev->name) : AGENT_DIO_UNKNOWN;
    size_t len = strlen(dev->name);
    if (now->n < AGENT_DIO_KNOWN_MAX && len < AGENT_CTRS_NAME_LEN) {
        struct agent_dio_known *k = &now->k[now->n++];
        memcpy(k->name, dev->name, len + 1);
        k->major = dev->major;
        k->minor = dev->minor;
        k->kind = (uint8_t)kind;
    }
    return kind;
}

static bool prefixed(const char *name, const char *prefix)
{
    return strncmp(name, prefix, strlen(prefix)) == 0;
}

bool agent_dio_virtual(const char *name)
{
    /* loop and ram hold files and memory; zram is compressed memory; dm-*
     * and md* are built on top of disks that are already counted. */
    return prefixed(name, "loop") || prefixed(name, "ram") || prefixed(name, "zram") ||
           prefixed(name, "dm-") || prefixed(name, "md");
}

/* Without sysfs: a name ending in digits is a partition when what is left
 * (less a "p" after a digit, as in nvme0n1p2 and mmcblk0p1) is a device
 * seen before it; the kernel lists a disk before its partitions. */
static bool looks_like_partition(const struct agent_dio *d, const char *name)
{
    size_t len = strlen(name), end = len;
    while (end > 0 && name[end - 1] >= '0' && name[end - 1] <= '9') end--;
    if (end == len || end == 0) return false;
    if (end >= 2 && name[end - 1] == 'p' && name[end - 2] >= '0' && name[end - 2] <= '9') end--;
    for (unsigned i = 0; i < d->nseen; i++)
        if (strlen(d->seen[i]) == end && memcmp(d->seen[i], name, end) == 0) return true;
    return false;
}

void agent_dio_add(void *ctx, const struct agent_dio_raw *dev)
{
    struct agent_dio *d = ctx;
    enum agent_dio_kind kind = dev->kind == AGENT_DIO_PART ? AGENT_DIO_PART : dio_kind(d, dev);
    if (kind == AGENT_DIO_PART) return;
    if (kind == AGENT_DIO_UNKNOWN) {
        if (looks_like_partition(d, dev->name)) return;
        size_t len = strlen(dev->name);
        if (d->nseen < AGENT_MAX_OBJECTS && len < AGENT_CTRS_NAME_LEN)
            memcpy(d->seen[d->nseen++], dev->name, len + 1);
    }
    if (!agent_filter_pass(&d->filter, dev->name)) return;
    struct agent_ctrs_obj *o = agent_ctrs_add(&d->ctrs, dev->name);
    if (!o) return;
    memcpy(o->v, dev->v, sizeof dev->v);
    o->in_total = !agent_dio_virtual(dev->name);
}

unsigned agent_dio_commit(struct agent_dio *d, int64_t mono_ns)
{
    agent_ctrs_commit(&d->ctrs, mono_ns);
    d->nout = agent_ctrs_series(&d->ctrs, "diskio", "device", dio_fields,
                                sizeof dio_fields / sizeof dio_fields[0], &d->out);
    return d->ctrs.over;
}
