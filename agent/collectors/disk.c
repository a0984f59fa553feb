/* disk measurement: which mounts are reported, and their sizes as df(1)
 * shows them. */
#include "disk.h"

#include <stdio.h>
#include <string.h>

#include "pt/wire.h"

/* File systems that hold no user data on a disk of this host: kernel and
 * memory file systems, read-only images (whose "free" is always 0), and
 * network file systems, whose statvfs() can block for minutes on a dead
 * server and whose space belongs to another host. */
static const char *const skipped_fstypes[] = {
    "autofs",  "binfmt_misc", "bpf",        "cgroup",   "cgroup2",    "configfs",   "debugfs",
    "devpts",  "devtmpfs",    "efivarfs",   "fusectl",  "hugetlbfs",  "mqueue",     "nsfs",
    "overlay", "proc",        "pstore",     "ramfs",    "rpc_pipefs", "securityfs", "selinuxfs",
    "sysfs",   "tmpfs",       "tracefs",    "squashfs", "iso9660",    "erofs",      "cramfs",
    "romfs",   "fuse.lxcfs",  "nfs",        "nfs4",     "cifs",       "smb3",       "smbfs",
    "ceph",    "9p",          "fuse.sshfs", "afs",      "glusterfs",
};

bool agent_disk_skipped_fstype(const char *fstype)
{
    for (size_t i = 0; i < sizeof skipped_fstypes / sizeof skipped_fstypes[0]; i++)
        if (strcmp(fstype, skipped_fstypes[i]) == 0) return true;
    return false;
}

void agent_disk_init(struct agent_disk *d)
{
    memset(d, 0, sizeof *d);
    d->fs_size = agent_plat_fs_size;
    d->watch.fd = -1;
}

void agent_disk_close(struct agent_disk *d)
{
    agent_plat_mounts_unwatch(&d->watch);
}

bool agent_disk_need_listing(struct agent_disk *d, const char *proc)
{
    /* Asked every time, so the watch's news is consumed even when a failed
     * listing must be retried anyway. */
    bool changed = agent_plat_mounts_changed(proc, &d->watch);
    return changed || !d->listed;
}

void agent_disk_listed(struct agent_disk *d, int rc)
{
    d->listed = rc == 0;
}

void agent_disk_begin(struct agent_disk *d)
{
    d->n = 0;
    d->over = 0;
}

/* A tag value must fit its buffer and pass the wire's rules (UTF-8, no
 * control characters), or the whole frame would be refused. */
static bool tag_ok(const char *v, size_t cap)
{
    size_t n = strlen(v);
    return n > 0 && n < cap && pt_wire_name_ok(v, n);
}

void agent_disk_add(void *ctx, const struct agent_mount_raw *m)
{
    struct agent_disk *d = ctx;
    if (agent_disk_skipped_fstype(m->fstype)) return;
    if (!agent_filter_pass(&d->filter, m->mount)) return;
    const char *dev = m->source;
    if (strncmp(dev, "/dev/", 5) == 0 && dev[5]) dev += 5;
    struct agent_disk_mount *slot = NULL;
    if (!tag_ok(m->mount, sizeof slot->mount) || !tag_ok(dev, sizeof slot->device) ||
        !tag_ok(m->fstype, sizeof slot->fstype)) {
        d->over++;
        return;
    }
    /* One device mounted twice (bind mounts, containers' /etc/hosts) is one
     * file system: report it once, under its shortest mount point, as df
     * does. Device 0:N is anonymous (a btrfs subvolume, a FUSE mount) and
     * matches nothing. */
    for (unsigned i = 0; m->major && i < d->n; i++) {
        if (d->mounts[i].major != m->major || d->mounts[i].minor != m->minor) continue;
        if (strlen(m->mount) >= strlen(d->mounts[i].mount)) return;
        slot = &d->mounts[i];
        break;
    }
    if (!slot) {
        if (d->n >= AGENT_MAX_OBJECTS) {
            d->over++;
            return;
        }
        slot = &d->mounts[d->n++];
    }
    snprintf(slot->mount, sizeof slot->mount, "%s", m->mount);
    snprintf(slot->device, sizeof slot->device, "%s", dev);
    snprintf(slot->fstype, sizeof slot->fstype, "%s", m->fstype);
    slot->major = m->major;
    slot->minor = m->minor;
}

/* Appends the four fields for total bytes, of which avail are free to
 * users and used in use. */
static void disk_fields(struct pt_meas *am, uint64_t total, uint64_t used, uint64_t avail)
{
    /* df's Use%: used over what users could have, so a disk whose reserved
     * blocks are all that is left shows 100 %. */
    double pct = used + avail ? (double)used * 100.0 / (double)(used + avail) : 0.0;
    agent_pm_float(am, 4, "disk_utilization", pct);
    agent_pm_uint(am, 4, "disk_total", total);
    agent_pm_uint(am, 4, "disk_used", used);
    agent_pm_uint(am, 4, "disk_free", avail);
}

unsigned agent_disk_commit(struct agent_disk *d)
{
    uint64_t sum_total = 0, sum_used = 0, sum_avail = 0;
    unsigned n = 0;
    d->size_fails = 0;
    for (unsigned i = 0; i < d->n; i++) {
        const struct agent_disk_mount *mt = &d->mounts[i];
        struct agent_fs_size sz;
        int rc = d->fs_size(d->fs_ctx, mt->mount, &sz);
        if (rc) {
            d->size_fails++;
            d->size_err = rc;
            memcpy(d->size_err_mount, mt->mount, sizeof mt->mount);
            continue;
        }
        if (sz.total == 0) continue; /* nothing to measure; df hides these too */
        uint64_t used = sz.total > sz.free ? sz.total - sz.free : 0;
        struct pt_meas *am = &d->out[n];
        agent_pm_init(am, "disk", d->out_f[n], d->out_t[n]);
        n++;
        agent_pm_tag(am, 3, "mount", mt->mount);
        agent_pm_tag(am, 3, "device", mt->device);
        agent_pm_tag(am, 3, "fstype", mt->fstype);
        disk_fields(am, sz.total, used, sz.avail);
        sum_total += sz.total;
        sum_used += used;
        sum_avail += sz.avail;
    }
    struct pt_meas *t = &d->out[n];
    agent_pm_init(t, "disk", d->out_f[n], d->out_t[n]);
    n++;
    agent_pm_tag(t, 3, "mount", "total");
    disk_fields(t, sum_total, sum_used, sum_avail);
    d->nout = n;
    return d->over;
}
