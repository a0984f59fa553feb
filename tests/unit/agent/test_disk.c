/* Tests of the disk measurement: agent/platform/linux/disk.c reading
 * /proc/self/mountinfo fixtures, agent/collectors/disk.c choosing the mounts
 * and computing df's figures. statvfs() cannot be replayed from files, so
 * these tests replace the size function with one reading the fixture's
 * "statvfs" file ("total free avail mount" per line). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pt/err.h"

#include "agent_test.h"
#include "collectors/disk.h"

static int calls; /* of fixture_size */

/* The sizes of path from the statvfs file ctx names; -ENOENT when it has
 * none. */
static int fixture_size(void *ctx, const char *path, struct agent_fs_size *out)
{
    calls++;
    FILE *f = fopen(ctx, "r");
    if (!f) return -errno;
    char line[600];
    int rc = -ENOENT;
    while (fgets(line, sizeof line, f)) {
        unsigned long long t, fr, av;
        int off;
        if (line[0] == '#' || sscanf(line, "%llu %llu %llu %n", &t, &fr, &av, &off) != 3) continue;
        line[strcspn(line, "\n")] = '\0';
        if (strcmp(line + off, path) != 0) continue;
        *out = (struct agent_fs_size){t, fr, av};
        rc = 0;
        break;
    }
    fclose(f);
    return rc;
}

static void collect(struct agent_disk *d, const char *name, char *sizes, size_t len)
{
    char proc[512], err[512] = "";
    d->fs_size = fixture_size;
    d->fs_ctx = (void *)fixture_in(sizes, len, name, "t0", "statvfs");
    agent_disk_begin(d);
    int rc = agent_plat_mounts_read(fixture(proc, sizeof proc, name, "t0"), agent_disk_add, d, err,
                                    sizeof err);
    if (rc) fail_msg("%s: %d %s", name, rc, err);
    agent_disk_commit(d);
}

static const struct pt_meas *mount(const struct agent_disk *d, const char *path)
{
    const struct pt_meas *m = meas_tagged(d->out, d->nout, "mount", path);
    if (!m) fail_msg("no series for mount %s", path);
    assert_true(pt_str_eq(m->name, "disk"));
    return m;
}

static void assert_tag(const struct pt_meas *m, const char *key, const char *val)
{
    for (unsigned i = 0; i < m->ntags; i++)
        if (pt_str_eq(m->tags[i].key, key)) {
            if (!pt_str_eq(m->tags[i].val, val))
                fail_msg("tag %s: %.*s, expected %s", key, (int)m->tags[i].val.len,
                         m->tags[i].val.p, val);
            return;
        }
    fail_msg("no tag %s", key);
}

static void test_mounts(void **state)
{
    static struct agent_disk d;
    char sizes[512];
    agent_disk_init(&d);
    calls = 0;
    collect(&d, "host", sizes, sizeof sizes);
    /* /, /boot and "/srv/my data" (unescaped); proc, sysfs, devtmpfs, tmpfs,
     * squashfs, nfs4, overlay and cgroup are skipped, and the bind mount of
     * vda on /var/lib/docker is / again. statvfs only for the three. */
    assert_int_equal(d.nout, 4);
    assert_int_equal(calls, 3);

    const struct pt_meas *root = mount(&d, "/");
    assert_int_equal(root->ntags, 3);
    assert_tag(root, "device", "vda");
    assert_tag(root, "fstype", "ext4");
    assert_int_equal(root->nfields, 4);
    /* As df shows: used = total - free; Use% = used / (used + avail). */
    assert_field_uint(root, "disk_total", 1000000000);
    assert_field_uint(root, "disk_used", 600000000);
    assert_field_uint(root, "disk_free", 350000000); /* available to users */
    assert_field_float(root, "disk_utilization", 600.0 * 100 / 950);
    assert_catalog_types(root);

    const struct pt_meas *boot = mount(&d, "/boot");
    assert_tag(boot, "device", "vda1");
    assert_tag(boot, "fstype", "vfat");
    assert_field_float(boot, "disk_utilization", 20.0);

    const struct pt_meas *srv = mount(&d, "/srv/my data");
    assert_tag(srv, "device", "vdb");
    assert_field_uint(srv, "disk_used", 1000000000);
    assert_field_float(srv, "disk_utilization", 1000.0 * 100 / 1900);

    const struct pt_meas *total = mount(&d, "total");
    assert_int_equal(total->ntags, 1);
    assert_field_uint(total, "disk_total", 3500000000);
    assert_field_uint(total, "disk_used", 1700000000);
    assert_field_uint(total, "disk_free", 1650000000);
    assert_field_float(total, "disk_utilization", 1700.0 * 100 / 3350);
    assert_catalog_types(total);

    assert_null(meas_tagged(d.out, d.nout, "mount", "/var/lib/docker"));
    assert_null(meas_tagged(d.out, d.nout, "mount", "/run"));
    assert_null(meas_tagged(d.out, d.nout, "mount", "/snap/core/1"));
    assert_null(meas_tagged(d.out, d.nout, "mount", "/mnt/nfs"));
}

static void test_filter(void **state)
{
    static struct agent_disk d;
    char sizes[512];
    agent_disk_init(&d);
    assert_int_equal(agent_filter_add(&d.filter.exclude, "/boot"), 0);
    collect(&d, "host", sizes, sizeof sizes);
    assert_int_equal(d.nout, 3); /* / and /srv/my data, total */
    assert_null(meas_tagged(d.out, d.nout, "mount", "/boot"));
    assert_field_uint(mount(&d, "total"), "disk_total", 3000000000);

    agent_disk_init(&d);
    assert_int_equal(agent_filter_add(&d.filter.include, "/srv/*"), 0);
    collect(&d, "host", sizes, sizeof sizes);
    assert_int_equal(d.nout, 2);
    assert_non_null(mount(&d, "/srv/my data"));
}

static void test_size_failure(void **state)
{
    /* A mount whose size cannot be read is left out, counted, and named. */
    static struct agent_disk d;
    char sizes[512];
    agent_disk_init(&d);
    collect(&d, "host", sizes, sizeof sizes);
    d.fs_ctx = (void *)"/nonexistent/statvfs";
    agent_disk_commit(&d);
    assert_int_equal(d.size_fails, 3);
    assert_int_equal(d.size_err, -ENOENT);
    assert_int_equal(d.nout, 1); /* the total alone, of nothing */
    assert_field_uint(mount(&d, "total"), "disk_total", 0);
    assert_field_float(mount(&d, "total"), "disk_utilization", 0.0);
}

static void test_skipped_types(void **state)
{
    const char *skipped[] = {"tmpfs", "devtmpfs", "overlay", "squashfs", "iso9660", "proc",
                             "sysfs", "cgroup",   "cgroup2", "nfs",      "nfs4",    "cifs"};
    for (size_t i = 0; i < sizeof skipped / sizeof skipped[0]; i++)
        assert_true(agent_disk_skipped_fstype(skipped[i]));
    const char *kept[] = {"ext4", "xfs", "btrfs", "vfat", "zfs", "f2fs"};
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
        assert_false(agent_disk_skipped_fstype(kept[i]));
}

static void count(void *ctx, const struct agent_mount_raw *m)
{
    (*(int *)ctx)++;
}

static void test_read_errors(void **state)
{
    char proc[512], err[512] = "";
    int n = 0;
    assert_int_equal(agent_plat_mounts_read(fixture(proc, sizeof proc, "missing", "t0"), count, &n,
                                            err, sizeof err),
                     -ENOENT);
    assert_non_null(strstr(err, "missing/t0/proc/self/mountinfo: cannot open"));
    /* The real one lists at least /. */
    assert_int_equal(agent_plat_mounts_read("/proc", count, &n, err, sizeof err), 0);
    assert_true(n >= 1);
}

static void test_watch(void **state)
{
    /* The live mount table: a change the first time, then none (unless a
     * mount happens within these microseconds). */
    struct agent_mount_watch w = {-1, false};
    assert_true(agent_plat_mounts_changed("/proc", &w));
    assert_true(w.fd >= 0);
    assert_false(agent_plat_mounts_changed("/proc", &w));
    assert_false(agent_plat_mounts_changed("/proc", &w));
    agent_plat_mounts_unwatch(&w);
    assert_int_equal(w.fd, -1);

    /* A fixture's plain file cannot tell: every look is a change. */
    char proc[512];
    fixture(proc, sizeof proc, "host", "t0");
    assert_true(agent_plat_mounts_changed(proc, &w));
    assert_int_equal(w.fd, -1);
    assert_true(agent_plat_mounts_changed(proc, &w));
    agent_plat_mounts_unwatch(&w);

    /* The collector lists again after a failed listing, changed or not. */
    static struct agent_disk d;
    agent_disk_init(&d);
    assert_true(agent_disk_need_listing(&d, "/proc"));
    agent_disk_listed(&d, 0);
    assert_false(agent_disk_need_listing(&d, "/proc"));
    agent_disk_listed(&d, -EIO);
    assert_true(agent_disk_need_listing(&d, "/proc"));
    agent_disk_close(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mounts),       cmocka_unit_test(test_filter),
        cmocka_unit_test(test_size_failure), cmocka_unit_test(test_skipped_types),
        cmocka_unit_test(test_read_errors),  cmocka_unit_test(test_watch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
