/* The disk measurement (METRICS.md fields 36-39): one series per mounted
 * file system (tags mount, device, fstype) and mount=total. Pseudo, image
 * and network file systems are skipped, so are file systems of size 0 and
 * second mounts of a device already reported (bind mounts). Sizes are as
 * df(1) shows them. The platform reader hands each mount to a callback; a
 * size function, replaceable by tests, gives each kept mount's sizes. */
#ifndef AGENT_DISK_H
#define AGENT_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "filter.h"
#include "meas.h"

#define AGENT_DISK_MOUNT_LEN  256 /* bytes, NUL included (the wire's 255) */
#define AGENT_DISK_DEVICE_LEN 128
#define AGENT_DISK_FSTYPE_LEN 32

/* One mount, as the platform lists it. Strings are borrowed for the call. */
struct agent_mount_raw {
    const char *mount;  /* mount point, unescaped */
    const char *source; /* "/dev/vda1", "tmpfs", "server:/export" */
    const char *fstype;
    uint32_t major, minor; /* the device the kernel backs it with */
};

typedef void (*agent_mount_cb)(void *ctx, const struct agent_mount_raw *m);

/* Defined once per platform (agent/platform/<os>/disk.c): calls cb with
 * every mount (Linux: <proc>/self/mountinfo). Returns 0, -errno or
 * PT_E_MALFORMED; err says which source and why. */
int agent_plat_mounts_read(const char *proc, agent_mount_cb cb, void *ctx, char *err,
                           size_t errlen);

/* Whether the mount table may have changed since the last look, so the list
 * is re-read only then: listing mounts is the dearest read of a sample
 * (Linux formats every mount's line), and mounts rarely change. Linux:
 * poll() on an open <proc>/self/mountinfo reports POLLPRI after any mount,
 * unmount or remount. Caller-allocated, set up by agent_disk_init(). */
struct agent_mount_watch {
    int fd;     /* -1: nothing open */
    bool tried; /* the platform tried to watch; where it cannot, every look is a change */
};

/* Defined once per platform. Returns true the first time, true where the
 * platform cannot tell (a fixture's plain file), and afterwards true when
 * the mounts listed under proc may have changed since the last call. */
bool agent_plat_mounts_changed(const char *proc, struct agent_mount_watch *w);
/* Releases what the watch holds (an open file). */
void agent_plat_mounts_unwatch(struct agent_mount_watch *w);

/* A file system's sizes in bytes, as statvfs(3) gives them. */
struct agent_fs_size {
    uint64_t total; /* f_blocks * f_frsize */
    uint64_t free;  /* f_bfree: free, including the root-reserved blocks */
    uint64_t avail; /* f_bavail: free for unprivileged users */
};

/* Gives path's sizes. Returns 0 or -errno. */
typedef int (*agent_fs_size_fn)(void *ctx, const char *path, struct agent_fs_size *out);

/* The platform's size function (Linux: statvfs()); ctx is unused. */
int agent_plat_fs_size(void *ctx, const char *path, struct agent_fs_size *out);

struct agent_disk_mount {
    char mount[AGENT_DISK_MOUNT_LEN];
    char device[AGENT_DISK_DEVICE_LEN]; /* source without "/dev/" */
    char fstype[AGENT_DISK_FSTYPE_LEN];
    uint32_t major, minor;
};

/* Caller-allocated: agent_disk_init(), then set filter (and, in tests,
 * fs_size and fs_ctx); agent_disk_close() releases the watch. */
struct agent_disk {
    struct agent_filter filter; /* on mount points */
    agent_fs_size_fn fs_size;   /* agent_plat_fs_size unless replaced */
    void *fs_ctx;
    struct agent_mount_watch watch;
    bool listed; /* mounts holds a complete listing, still current unless the watch says */
    struct agent_disk_mount mounts[AGENT_MAX_OBJECTS];
    unsigned n;
    unsigned over;       /* mounts of this reading that did not fit */
    unsigned size_fails; /* mounts whose sizes could not be read */
    int size_err;        /* the last of those errors (-errno) */
    char size_err_mount[AGENT_DISK_MOUNT_LEN];
    /* out[0..nout), and the storage of their tags and four fields */
    struct pt_meas out[AGENT_MAX_OBJECTS + 1];
    struct pt_tag out_t[AGENT_MAX_OBJECTS + 1][3];
    struct pt_field out_f[AGENT_MAX_OBJECTS + 1][4];
    unsigned nout;
};

void agent_disk_init(struct agent_disk *d);
void agent_disk_close(struct agent_disk *d);
/* A reading: when agent_disk_need_listing() says so, agent_disk_begin(),
 * agent_plat_mounts_read() with agent_disk_add() (an agent_mount_cb) and
 * agent_disk_listed() with its result; then, when there is a listing,
 * agent_disk_commit(), which sizes the mounts anew every time. */
bool agent_disk_need_listing(struct agent_disk *d, const char *proc);
void agent_disk_listed(struct agent_disk *d, int rc);
void agent_disk_begin(struct agent_disk *d);
void agent_disk_add(void *d, const struct agent_mount_raw *m);
/* Reads each kept mount's sizes and builds out[0..nout): one series per
 * mount whose sizes could be read, then total. Returns how many mounts did
 * not fit (dropped). */
unsigned agent_disk_commit(struct agent_disk *d);

/* The skipping rule, exposed for the tests: true for pseudo, image and
 * network file system types. */
bool agent_disk_skipped_fstype(const char *fstype);

#endif
