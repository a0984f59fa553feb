/* The diskio measurement (METRICS.md fields 40-45): one series per whole
 * block device (tag device) and device=total. Partitions get no series of
 * their own (their I/O is inside their disk's); loop, ram, zram and stacked
 * devices (dm-*, md*) get a series but stay out of the total, so nothing is
 * counted twice. The platform reader hands each device's counters to a
 * callback; the rules and rates are here. */
#ifndef AGENT_DISKIO_H
#define AGENT_DISKIO_H

#include <stddef.h>
#include <stdint.h>

#include "counters.h"
#include "filter.h"
#include "meas.h"

enum {
    AGENT_DIO_RD_IOS,     /* reads completed */
    AGENT_DIO_RD_SECTORS, /* 512-byte sectors read */
    AGENT_DIO_RD_MS,      /* milliseconds spent reading */
    AGENT_DIO_WR_IOS,
    AGENT_DIO_WR_SECTORS,
    AGENT_DIO_WR_MS,
    AGENT_DIO_NCTR
};

/* What the platform knows about a device being whole or a partition. */
enum agent_dio_kind {
    AGENT_DIO_UNKNOWN, /* not known yet, or no sysfs to ask (a container) */
    AGENT_DIO_DISK,    /* a whole device (Linux: in /sys/block) */
    AGENT_DIO_PART,    /* a partition */
};

struct agent_dio_raw {
    const char *name; /* kernel name ("vda", "nvme0n1p1"); borrowed for the call */
    uint32_t major, minor;
    enum agent_dio_kind kind; /* PART when the source says so, else UNKNOWN */
    uint64_t v[AGENT_DIO_NCTR];
};

typedef void (*agent_dio_cb)(void *ctx, const struct agent_dio_raw *dev);

/* Defined once per platform (agent/platform/<os>/diskio.c): calls cb with
 * every block device (Linux: <proc>/diskstats). Returns 0, -errno or
 * PT_E_MALFORMED; err says which source and why. */
int agent_plat_dio_read(const char *proc, agent_dio_cb cb, void *ctx, char *err, size_t errlen);

/* Whether the device called name is whole or a partition (Linux: whether
 * <sys>/block/<name> exists); UNKNOWN when the platform cannot tell (no
 * /sys/block). A few system calls: the collector asks once per device. */
enum agent_dio_kind agent_plat_dio_kind(const char *sys, const char *name);

/* What agent_plat_dio_kind() said about a device, kept while the device
 * stays (a device number identifies it: a name can be reused). */
struct agent_dio_known {
    char name[AGENT_CTRS_NAME_LEN];
    uint32_t major, minor;
    uint8_t kind;
};
#define AGENT_DIO_KNOWN_MAX (2 * AGENT_MAX_OBJECTS) /* partitions count too */

/* Caller-allocated: agent_dio_init(), then set sys and filter. */
struct agent_dio {
    const char *sys;            /* borrowed: where sysfs is (Linux: "/sys") */
    struct agent_filter filter; /* on device names */
    struct agent_dio_known_set {
        struct agent_dio_known k[AGENT_DIO_KNOWN_MAX];
        unsigned n;
    } known[2]; /* known[kcur] is being filled, the other is the last reading's */
    unsigned kcur;
    struct agent_ctrs ctrs;
    /* Whole-device names of the reading being filled, filtered or not: how
     * a partition is recognised by name when the kind is unknown. */
    char seen[AGENT_MAX_OBJECTS][AGENT_CTRS_NAME_LEN];
    unsigned nseen;
    struct agent_ctrs_out out; /* out.m[0..nout) */
    unsigned nout;
};

void agent_dio_init(struct agent_dio *d);
/* A reading: agent_dio_begin(), agent_dio_add() for each device (it is an
 * agent_dio_cb), then agent_dio_commit() when the reading succeeded. */
void agent_dio_begin(struct agent_dio *d);
void agent_dio_add(void *d, const struct agent_dio_raw *dev);
/* Builds out[0..nout): per-device series, then total. Returns how many
 * devices of this reading did not fit (dropped). */
unsigned agent_dio_commit(struct agent_dio *d, int64_t mono_ns);

/* The naming rules, exposed for the tests: true for loop, ram, zram, dm-*
 * and md* devices (not in the total). */
bool agent_dio_virtual(const char *name);

#endif
