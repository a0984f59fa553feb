/* Linux mounts: /proc/self/mountinfo (the agent's mount namespace), and
 * file system sizes from statvfs(). */
#include "collectors/disk.h"
#include "procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* PROC_SUPER_MAGIC from <linux/magic.h>, which musl-gcc's include path
 * (the static build) does not have; the value is kernel ABI. */
#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif

bool agent_plat_mounts_changed(const char *proc, struct agent_mount_watch *w)
{
    if (!w->tried) {
        w->tried = true;
        char path[1024];
        int n = snprintf(path, sizeof path, "%s/self/mountinfo", proc);
        if (n < 0 || (size_t)n >= sizeof path) return true;
        w->fd = open(path, O_RDONLY | O_CLOEXEC);
        /* Only procfs's mountinfo reports changes; a fixture's plain file
         * would always look unchanged. */
        struct statfs sf;
        if (w->fd >= 0 && (fstatfs(w->fd, &sf) != 0 || sf.f_type != PROC_SUPER_MAGIC)) {
            close(w->fd);
            w->fd = -1;
        }
        return true;
    }
    if (w->fd < 0) return true;
    struct pollfd p = {w->fd, POLLPRI, 0};
    if (poll(&p, 1, 0) < 0) return true;
    return (p.revents & (POLLERR | POLLPRI)) != 0;
}

void agent_plat_mounts_unwatch(struct agent_mount_watch *w)
{
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
    w->tried = false;
}

int agent_plat_fs_size(void *ctx, const char *path, struct agent_fs_size *out)
{
    (void)ctx;
    struct statvfs st;
    if (statvfs(path, &st) != 0) return -errno;
    uint64_t unit = st.f_frsize ? st.f_frsize : st.f_bsize;
    out->total = (uint64_t)st.f_blocks * unit;
    out->free = (uint64_t)st.f_bfree * unit;
    out->avail = (uint64_t)st.f_bavail * unit;
    return 0;
}

/* The next space-separated field of *p (NUL-terminated in place), or NULL
 * at the end of the line. */
static char *field(char **p)
{
    char *s = *p;
    while (*s == ' ') s++;
    if (!*s) return NULL;
    char *e = s;
    while (*e && *e != ' ') e++;
    if (*e) *e++ = '\0';
    *p = e;
    return s;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 3;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

struct mountinfo_ctx {
    agent_mount_cb cb;
    void *ctx;
};

/* "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard": id,
 * parent, major:minor, root, mount point, options, optional fields up to
 * "-", type, source, super options. */
static int mountinfo_line(struct agent_procfs_file *f, void *ctx, char *line, size_t len)
{
    struct mountinfo_ctx *c = ctx;
    char *p = line, *dev, *mount, *fstype, *source, *s;
    if (!field(&p) || !field(&p) || !(dev = field(&p)) || !field(&p) || !(mount = field(&p)) ||
        !field(&p))
        return agent_procfs_fail(f, "expected \"id parent major:minor root mount options\"");
    while ((s = field(&p)) && strcmp(s, "-") != 0) {} /* optional fields */
    if (!s || !(fstype = field(&p)) || !(source = field(&p)))
        return agent_procfs_fail(f, "expected \"- type source\" after the options");

    char *colon = strchr(dev, ':');
    const char *d = dev, *d2 = colon ? colon + 1 : "";
    uint64_t major, minor;
    if (colon) *colon = '\0';
    if (!colon || agent_procfs_u64(&d, &major) || *d || agent_procfs_u64(&d2, &minor) || *d2 ||
        major > UINT32_MAX || minor > UINT32_MAX) {
        if (colon) *colon = ':';
        return agent_procfs_fail(f, "\"%s\" is not major:minor", dev);
    }
    unescape(mount);
    unescape(source);
    struct agent_mount_raw m = {mount, source, fstype, (uint32_t)major, (uint32_t)minor};
    c->cb(c->ctx, &m);
    return 0;
}

int agent_plat_mounts_read(const char *proc, agent_mount_cb cb, void *ctx, char *err, size_t errlen)
{
    struct agent_procfs_file f = {proc, "self/mountinfo", err, errlen, 0};
    struct mountinfo_ctx c = {cb, ctx};
    int rc = agent_procfs_read(&f, mountinfo_line, &c);
    return rc < 0 ? rc : 0;
}
