/* The durable outbox: order, bounds, restart, torn and corrupt data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "outbox.h"
#include "pt/err.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/pt-outbox-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[PATH_MAX];
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(dir);
    return 0;
}

static struct coll_outbox *open_ob(uint64_t max_bytes, uint64_t seg_bytes)
{
    struct coll_outbox_opts o = {dir, max_bytes, seg_bytes};
    struct coll_outbox *ob = NULL;
    char err[256] = "";
    int rc = coll_outbox_open(&ob, &o, err, sizeof err);
    if (rc) fprintf(stderr, "open: %s\n", err);
    assert_int_equal(rc, 0);
    return ob;
}

/* Record k: len bytes of a pattern derived from k, so content is checked. */
static void fill(unsigned char *buf, size_t len, unsigned k)
{
    for (size_t i = 0; i < len; i++) buf[i] = (unsigned char)(k * 31 + i * 7);
}

static uint64_t append_k(struct coll_outbox *ob, unsigned k, size_t len)
{
    unsigned char buf[65536];
    assert_true(len <= sizeof buf);
    fill(buf, len, k);
    uint64_t id = 0;
    assert_int_equal(coll_outbox_append(ob, buf, len, k, 10 * k, 1000 + k, &id), 0);
    return id;
}

/* Peeks, checks it is record k (content, counts, born), pops it. */
static void expect_pop(struct coll_outbox *ob, unsigned k, size_t len)
{
    struct coll_outbox_rec r;
    assert_int_equal(coll_outbox_peek(ob, &r), 0);
    assert_int_equal(r.len, len);
    assert_int_equal(r.nframes, k);
    assert_int_equal(r.npoints, 10 * k);
    assert_int_equal(r.born_ns, 1000 + k);
    unsigned char buf[65536];
    fill(buf, len, k);
    assert_memory_equal(r.data, buf, len);
    assert_int_equal(coll_outbox_pop(ob, r.id), 0);
}

static size_t count_segments(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".seg")) n++;
    closedir(d);
    return n;
}

/* The path of the only (or last, by name) segment file. */
static void last_segment(char *out, size_t n)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char best[64] = "";
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".seg") && strcmp(e->d_name, best) > 0)
            snprintf(best, sizeof best, "%s", e->d_name);
    closedir(d);
    assert_true(best[0]);
    snprintf(out, n, "%s/%s", dir, best);
}

static void test_fifo_order_and_counts(void **state)
{
    (void)state;
    struct coll_outbox *ob = open_ob(1 << 20, 0);
    struct coll_outbox_rec r;
    assert_int_equal(coll_outbox_peek(ob, &r), -ENOENT);
    uint64_t prev = 0;
    for (unsigned k = 1; k <= 20; k++) {
        uint64_t id = append_k(ob, k, 100 + k);
        assert_true(id > prev);
        prev = id;
    }
    struct coll_outbox_info i;
    coll_outbox_info(ob, &i);
    assert_int_equal(i.records, 20);
    assert_int_equal(i.frames, 210); /* 1 + ... + 20 */
    assert_int_equal(i.points, 2100);
    assert_int_equal(i.oldest_born_ns, 1001);
    assert_true(i.bytes > 20 * 100);
    /* peek does not consume; pop of another id is refused */
    assert_int_equal(coll_outbox_peek(ob, &r), 0);
    assert_int_equal(coll_outbox_pop(ob, r.id + 1), -ENOENT);
    for (unsigned k = 1; k <= 20; k++) expect_pop(ob, k, 100 + k);
    assert_int_equal(coll_outbox_peek(ob, &r), -ENOENT);
    coll_outbox_info(ob, &i);
    assert_int_equal(i.records, 0);
    assert_int_equal(i.oldest_born_ns, 0);
    assert_int_equal(i.dropped_records, 0);
    assert_int_equal(count_segments(), 0); /* consumed segments are deleted */
    coll_outbox_close(ob);
}

/* coll_outbox_synced(): what a sync made durable (acks of spilled frames
 * wait for it), also through the sync thread. */
static void test_synced_ids(void **state)
{
    (void)state;
    struct coll_outbox *ob = open_ob(1 << 20, 0);
    assert_int_equal(coll_outbox_synced(ob), 0);
    uint64_t a = append_k(ob, 1, 100), b = append_k(ob, 2, 100);
    assert_true(coll_outbox_synced(ob) < a); /* appended, not synced */
    assert_int_equal(coll_outbox_sync(ob), 0);
    assert_int_equal(coll_outbox_synced(ob), b);
    uint64_t c = append_k(ob, 3, 100);
    assert_int_equal(coll_outbox_synced(ob), b);
    coll_outbox_sync_soon(ob);
    for (int i = 0; i < 500 && coll_outbox_synced(ob) < c; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(coll_outbox_synced(ob), c);
    /* Popping does not move it back. */
    expect_pop(ob, 1, 100);
    assert_int_equal(coll_outbox_synced(ob), c);
    coll_outbox_close(ob);
}

static void test_segments_roll_and_are_deleted(void **state)
{
    (void)state;
    /* 64 KiB segments (the minimum), 10 KB records: 6 per segment */
    struct coll_outbox *ob = open_ob(4 << 20, 64 * 1024);
    for (unsigned k = 1; k <= 30; k++) append_k(ob, k, 10000);
    assert_int_equal(count_segments(), 5);
    for (unsigned k = 1; k <= 13; k++) expect_pop(ob, k, 10000);
    assert_int_equal(count_segments(), 3);
    for (unsigned k = 14; k <= 30; k++) expect_pop(ob, k, 10000);
    assert_int_equal(count_segments(), 0);
    coll_outbox_close(ob);
}

static void test_full_drops_oldest_segments(void **state)
{
    (void)state;
    const uint64_t max = 256 * 1024;
    struct coll_outbox *ob = open_ob(max, 64 * 1024);
    for (unsigned k = 1; k <= 100; k++) {
        append_k(ob, k, 10000);
        struct coll_outbox_info i;
        coll_outbox_info(ob, &i);
        assert_true(i.bytes <= max);
    }
    struct coll_outbox_info i;
    coll_outbox_info(ob, &i);
    /* everything appended is either held or counted as dropped */
    assert_true(i.dropped_records > 0);
    assert_int_equal(i.records + i.dropped_records, 100);
    assert_int_equal(i.frames + i.dropped_frames, 5050);
    assert_int_equal(i.points + i.dropped_points, 50500);
    /* the oldest went; what is left is the newest, in order */
    unsigned first = (unsigned)i.dropped_records + 1;
    for (unsigned k = first; k <= 100; k++) expect_pop(ob, k, 10000);
    coll_outbox_close(ob);
}

static void test_record_larger_than_the_outbox(void **state)
{
    (void)state;
    struct coll_outbox *ob = open_ob(COLL_OUTBOX_MIN_BYTES, 0);
    unsigned char *big = calloc(1, COLL_OUTBOX_MIN_BYTES);
    assert_int_equal(coll_outbox_append(ob, big, COLL_OUTBOX_MIN_BYTES, 1, 1, 1, NULL), PT_E_LIMIT);
    free(big);
    struct coll_outbox_info i;
    coll_outbox_info(ob, &i);
    assert_int_equal(i.records, 0);
    coll_outbox_close(ob);
}

static void test_reopen_resumes(void **state)
{
    (void)state;
    struct coll_outbox *ob = open_ob(4 << 20, 64 * 1024);
    uint64_t last = 0;
    for (unsigned k = 1; k <= 20; k++) last = append_k(ob, k, 5000);
    for (unsigned k = 1; k <= 7; k++) expect_pop(ob, k, 5000);
    coll_outbox_close(ob);

    ob = open_ob(4 << 20, 64 * 1024);
    struct coll_outbox_info i;
    coll_outbox_info(ob, &i);
    assert_int_equal(i.records, 13); /* popped records are not replayed */
    assert_int_equal(i.oldest_born_ns, 1008);
    assert_int_equal(i.corrupt_bytes, 0);
    assert_true(append_k(ob, 21, 5000) > last); /* ids keep increasing */
    for (unsigned k = 8; k <= 21; k++) expect_pop(ob, k, 5000);
    coll_outbox_close(ob);
    assert_int_equal(count_segments(), 0);
}

static void test_torn_tail_is_truncated(void **state)
{
    (void)state;
    struct coll_outbox *ob = open_ob(1 << 20, 0);
    for (unsigned k = 1; k <= 3; k++) append_k(ob, k, 1000);
    coll_outbox_close(ob);
    char seg[PATH_MAX];
    last_segment(seg, sizeof seg);
    struct stat st;
    assert_int_equal(stat(seg, &st), 0);
    /* a crash in the middle of the third record */
    assert_int_equal(truncate(seg, st.st_size - 500), 0);

    ob = open_ob(1 << 20, 0);
    struct coll_outbox_info i;
    coll_outbox_info(ob, &i);
    assert_int_equal(i.records, 2);
    assert_true(i.corrupt_bytes > 0);
    /* appending after the truncation point works and reads back */
    append_k(ob, 4, 1000);
    expect_pop(ob, 1, 1000);
    expect_pop(ob, 2, 1000);
    expect_pop(ob, 4, 1000);
    coll_outbox_close(ob);
}

static void flip_byte(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char c;
    assert_int_equal(pread(fd, &c, 1, off), 1);
    c ^= 0x5a;
    assert_int_equal(pwrite(fd, &c, 1, off), 1);
    close(fd);
}

static void test_corrupt_record_found_at_open(void **state)
{
    (void)state;
    struct coll_outbox *ob = open_ob(1 << 20, 0);
    for (unsigned k = 1; k <= 4; k++) append_k(ob, k, 1000);
    coll_outbox_close(ob);
    char seg[PATH_MAX];
    last_segment(seg, sizeof seg);
    /* a payload byte of the second record: 16-byte file header, 40-byte
     * record header, 1000 bytes padded to 1040 */
    flip_byte(seg, 16 + 1040 + 40 + 100);

    ob = open_ob(1 << 20, 0);
    struct coll_outbox_info i;
    coll_outbox_info(ob, &i);
    assert_int_equal(i.records, 1); /* the rest of the segment cannot be trusted */
    assert_int_equal(i.corrupt_bytes, 3 * 1040);
    expect_pop(ob, 1, 1000);
    struct coll_outbox_rec r;
    assert_int_equal(coll_outbox_peek(ob, &r), -ENOENT);
    coll_outbox_close(ob);
}

static void test_corruption_found_at_peek(void **state)
{
    (void)state;
    struct coll_outbox *ob = open_ob(1 << 20, 64 * 1024);
    for (unsigned k = 1; k <= 8; k++) append_k(ob, k, 10000); /* two segments: 6 + 2 */
    assert_int_equal(count_segments(), 2);
    char first[PATH_MAX];
    DIR *d = opendir(dir);
    struct dirent *e;
    char best[64] = "~";
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".seg") && strcmp(e->d_name, best) < 0)
            snprintf(best, sizeof best, "%s", e->d_name);
    closedir(d);
    snprintf(first, sizeof first, "%s/%s", dir, best);
    expect_pop(ob, 1, 10000);
    /* damage record 2 while the outbox is open */
    flip_byte(first, 16 + 10040 + 40 + 5);
    expect_pop(ob, 7, 10000); /* records 2..6 are skipped with their segment */
    expect_pop(ob, 8, 10000);
    struct coll_outbox_info i;
    coll_outbox_info(ob, &i);
    assert_int_equal(i.corrupt_frames, 2 + 3 + 4 + 5 + 6);
    assert_int_equal(i.corrupt_points, 200);
    coll_outbox_close(ob);
}

static void test_foreign_files(void **state)
{
    (void)state;
    char p[PATH_MAX];
    /* not a segment: ignored */
    snprintf(p, sizeof p, "%s/README", dir);
    FILE *f = fopen(p, "w");
    fputs("hello", f);
    fclose(f);
    /* named like one but garbage: removed, counted */
    snprintf(p, sizeof p, "%s/0000000000000001.seg", dir);
    f = fopen(p, "w");
    fputs("garbage garbage garbage", f);
    fclose(f);
    struct coll_outbox *ob = open_ob(1 << 20, 0);
    struct coll_outbox_info i;
    coll_outbox_info(ob, &i);
    assert_int_equal(i.records, 0);
    assert_int_equal(i.corrupt_bytes, 23);
    append_k(ob, 1, 10);
    expect_pop(ob, 1, 10);
    coll_outbox_close(ob);
    snprintf(p, sizeof p, "%s/README", dir);
    assert_int_equal(unlink(p), 0);
}

static void test_bad_options(void **state)
{
    (void)state;
    struct coll_outbox_opts o = {dir, 1000, 0};
    struct coll_outbox *ob = NULL;
    char err[256] = "";
    assert_int_equal(coll_outbox_open(&ob, &o, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "max_bytes"));
    o = (struct coll_outbox_opts){"/proc/no/such/dir", 1 << 20, 0};
    assert_true(coll_outbox_open(&ob, &o, err, sizeof err) < 0);
    assert_non_null(strstr(err, "/proc/no/such/dir"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fifo_order_and_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_synced_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_segments_roll_and_are_deleted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_drops_oldest_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_larger_than_the_outbox, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_is_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_record_found_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corruption_found_at_peek, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_options, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
