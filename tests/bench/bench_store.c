/* Benchmark of the embedded SQLite store: sustained write rate of realistic
 * agent frames (53 fields in 5 series: cpu 19, memory 16, disk 4, diskio 6,
 * network 8), bytes per stored value, and query latency for one VM over one
 * hour of 1 s data (cpu, raw and 60 s avg), bytes per tier of the 1 m and 1 h
 * roll-ups, and the MCIS-level query of every VM over one hour (step 60 s,
 * avg per VM, avg across VMs), from the roll-ups and, for comparison, from
 * the raw points.
 *
 *   bench_store [--vms N] [--seconds S] [--flush SEC] [--batch FRAMES]
 *               [--dir DIR] [--keep]
 *
 * Frames arrive second by second, VM by VM, and are written the way the
 * collector's writer hands them over: a batch holds what arrives in SEC
 * seconds (writer.flush, default 0.2) but at most FRAMES frames
 * (writer.batch, default 2048). How many seconds of each series one commit
 * holds is what decides the write rate (docs/storage.md). Prints one figure
 * per line. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sqlite3.h>
#include <unistd.h>

#include "pt/catalog.h"
#include "pt/time.h"
#include "store/store.h"

#define NMEAS     5
#define NVALUES   53
#define MAXFIELDS 19

static const struct store_ops *ops = &store_sqlite_ops;

/* ---- one VM's frame -------------------------------------------------------------- */

struct vm {
    char name[32], host[32];
    struct pt_ident id;
    struct pt_meas m[NMEAS];
    struct pt_tag tags[NMEAS][3];
    struct pt_field f[NMEAS][MAXFIELDS];
    uint64_t uptime, mem_used, disk_used;
    double cpu;
};

static uint64_t rng = 88172645463325252u;

static uint64_t xorshift(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Uniform in [0, 1). */
static double frand(void)
{
    return (double)(xorshift() >> 11) / 9007199254740992.0;
}

/* A value as an agent reports it: percentages and rates with two decimals. */
static double dec2(double v)
{
    return round(v * 100) / 100;
}

static void field_names(struct vm *v, int mi, const char *meas)
{
    size_t n = 0;
    for (size_t i = 0; i < pt_catalog_len; i++)
        if (strcmp(pt_catalog[i].measurement, meas) == 0) {
            v->f[mi][n].key = pt_str_c(pt_catalog[i].field);
            v->f[mi][n].type = pt_catalog[i].type;
            n++;
        }
    if (strcmp(meas, "memory") == 0) {
        v->f[mi][n].key = pt_str_c("mem_available");
        v->f[mi][n++].type = PT_F_UINT;
    }
    v->m[mi].name = pt_str_c(meas);
    v->m[mi].fields = v->f[mi];
    v->m[mi].nfields = (uint16_t)n;
    v->m[mi].tags = v->tags[mi];
}

static void vm_init(struct vm *v, int i)
{
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "vm-%05d", i);
    snprintf(v->host, sizeof v->host, "host-%05d", i);
    v->id.ns = pt_str_c("bench");
    v->id.mcis = pt_str_c("mcis-bench");
    v->id.vm = pt_str_c(v->name);
    v->id.csp = pt_str_c(i % 3 == 0 ? "aws" : i % 3 == 1 ? "azure" : "gcp");
    v->id.host = pt_str_c(v->host);
    field_names(v, 0, "cpu");
    field_names(v, 1, "memory");
    field_names(v, 2, "disk");
    v->tags[2][0] = (struct pt_tag){PT_STR("device"), PT_STR("vda1")};
    v->tags[2][1] = (struct pt_tag){PT_STR("fstype"), PT_STR("ext4")};
    v->tags[2][2] = (struct pt_tag){PT_STR("mount"), PT_STR("/")};
    v->m[2].ntags = 3;
    field_names(v, 3, "diskio");
    v->tags[3][0] = (struct pt_tag){PT_STR("device"), PT_STR("vda")};
    v->m[3].ntags = 1;
    field_names(v, 4, "network");
    v->tags[4][0] = (struct pt_tag){PT_STR("interface"), PT_STR("eth0")};
    v->m[4].ntags = 1;
    v->uptime = 100000 + (uint64_t)i * 37;
    v->mem_used = UINT64_C(2) << 30;
    v->disk_used = UINT64_C(12) << 30;
    v->cpu = 20 + 40 * frand();
}

/* Fills the next second's values: random walks and noise, zeros where a
 * real idle VM has them (steal, guest, swap, errors, drops). */
static void vm_sample(struct vm *v)
{
    v->cpu += (frand() - 0.5) * 4;
    if (v->cpu < 1) v->cpu = 1;
    if (v->cpu > 99) v->cpu = 99;
    v->uptime++;
    struct pt_field *c = v->f[0];
    double user = dec2(v->cpu * 0.7), sys = dec2(v->cpu * 0.25), iow = dec2(frand());
    double vals[] = {dec2(v->cpu),        user, 0, sys, dec2(100 - v->cpu - iow), iow, 0,
                     dec2(frand() * 0.3), 0,    0, 0};
    for (int i = 0; i < 11; i++) c[i].v.f = vals[i];
    c[11].v.u = 4;
    c[12].v.u = v->uptime;
    c[13].v.f = dec2(1500 + frand() * 800);
    c[14].v.u = 1 + xorshift() % 4;
    c[15].v.u = 180 + xorshift() % 5;
    c[16].v.f = dec2(v->cpu / 25);
    c[17].v.f = dec2(v->cpu / 27);
    c[18].v.f = dec2(v->cpu / 30);

    struct pt_field *m = v->f[1];
    uint64_t total = UINT64_C(8) << 30;
    v->mem_used += (xorshift() % 8193) * 4096 - 4096 * 4096;
    m[0].v.f = dec2(100.0 * (double)v->mem_used / (double)total);
    m[1].v.u = total;
    m[2].v.u = v->mem_used;
    m[3].v.u = total - v->mem_used - (UINT64_C(3) << 30);
    m[4].v.u = 64 << 20;
    m[5].v.u = 180 << 20;
    m[6].v.u = UINT64_C(3) << 30;
    m[7].v.f = 0;
    m[8].v.u = 0;
    m[9].v.u = 0;
    m[10].v.u = 0;
    m[11].v.f = dec2(frand() * 40);
    m[12].v.f = dec2(frand() * 400);
    m[13].v.f = 0;
    m[14].v.f = 0;
    m[15].v.u = total - v->mem_used;

    struct pt_field *d = v->f[2];
    uint64_t dtotal = UINT64_C(50) << 30;
    v->disk_used += xorshift() % 65536;
    d[0].v.f = dec2(100.0 * (double)v->disk_used / (double)dtotal);
    d[1].v.u = dtotal;
    d[2].v.u = v->disk_used;
    d[3].v.u = dtotal - v->disk_used;

    struct pt_field *io = v->f[3];
    for (int i = 0; i < 6; i++) io[i].v.f = dec2(frand() * (i < 2 ? 800 : 40));

    struct pt_field *n = v->f[4];
    n[0].v.f = dec2(20000 + frand() * 50000);
    n[1].v.f = dec2(10000 + frand() * 30000);
    n[2].v.f = dec2(30 + frand() * 60);
    n[3].v.f = dec2(20 + frand() * 40);
    for (int i = 4; i < 8; i++) n[i].v.f = 0;
}

/* A frame queued in a batch: its own copy of the values, because a batch
 * may hold several seconds of one VM. */
struct slot {
    struct pt_meas m[NMEAS];
    struct pt_field f[NMEAS][MAXFIELDS];
};

static void slot_fill(struct slot *sl, const struct vm *v, struct store_point *pts, int64_t ts)
{
    for (int m = 0; m < NMEAS; m++) {
        sl->m[m] = v->m[m];
        memcpy(sl->f[m], v->f[m], v->m[m].nfields * sizeof sl->f[m][0]);
        sl->m[m].fields = sl->f[m];
        pts[m] = (struct store_point){&v->id, &sl->m[m], ts};
    }
}

/* ---- measuring -------------------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : 0;
}

/* Bytes (pages) and rows of each table of the closed store at path, from
 * SQLite's dbstat table; prints bytes per value of raw points and tiers. */
static void table_sizes(const char *path, uint64_t nvalues)
{
    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) return;
    const char *tabs[] = {"points", "rollup_1m", "rollup_1h", "series"};
    int64_t raw_rows = 0, raw_bytes = 0;
    for (int i = 0; i < 4; i++) {
        char sql[160];
        sqlite3_stmt *st;
        int64_t bytes = 0, rows = 0;
        snprintf(sql, sizeof sql, "SELECT sum(pgsize) FROM dbstat WHERE name='%s'", tabs[i]);
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW) bytes = sqlite3_column_int64(st, 0);
            sqlite3_finalize(st);
        }
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", tabs[i]);
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW) rows = sqlite3_column_int64(st, 0);
            sqlite3_finalize(st);
        }
        if (i == 0) {
            raw_rows = rows;
            raw_bytes = bytes;
        }
        /* A tier row summarises every value of its bucket: per raw value
         * stored, and per value of a bucket (a field's 5 numbers). */
        double per_row = rows ? (double)bytes / (double)rows : 0;
        double vals_per_row = raw_rows ? (double)nvalues / (double)raw_rows : 0;
        printf("size: %-9s %8.1f MiB  %10lld rows  %6.1f bytes/row", tabs[i],
               (double)bytes / 1048576.0, (long long)rows, per_row);
        if (i == 0 && nvalues)
            printf("  %.2f bytes/value", (double)bytes / (double)nvalues);
        else if (i < 3 && rows && vals_per_row > 0)
            printf("  %.1f bytes per field-bucket  = %.1f%% of raw", per_row / vals_per_row,
                   100.0 * (double)bytes / (double)(raw_bytes ? raw_bytes : 1));
        printf("\n");
    }
    sqlite3_close(db);
}

/* Runs one query reps times; prints median, p90 and max latency. */
static void time_query(struct store *s, const char *label, const struct store_query *q, int reps)
{
    int64_t *lat = calloc((size_t)reps, sizeof *lat);
    size_t rows = 0, cols = 0;
    for (int i = 0; i < reps; i++) {
        struct store_result r;
        int64_t t = pt_mono_ns();
        int rc = ops->query(s, q, &r);
        lat[i] = pt_mono_ns() - t;
        if (rc) {
            fprintf(stderr, "query %s failed: %d\n", label, rc);
            exit(1);
        }
        rows = r.nseries ? r.series[0].nrows : 0;
        cols = r.nseries ? r.series[0].nfields : 0;
        store_result_free(&r);
    }
    qsort(lat, (size_t)reps, sizeof *lat, cmp_i64);
    printf("query %-28s rows %5zu x %2zu cols   median %7.3f ms  p90 %7.3f ms  max %7.3f ms\n",
           label, rows, cols, (double)lat[reps / 2] / 1e6, (double)lat[reps * 9 / 10] / 1e6,
           (double)lat[reps - 1] / 1e6);
    free(lat);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_store [--vms N] [--seconds S] [--flush SEC] [--batch FRAMES] [--dir DIR]"
            " [--keep]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    long nvm = 1000, seconds = 3600, batch = 2048;
    double flush = 0.2;
    const char *dir = NULL;
    int keep = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--vms") == 0 && i + 1 < argc)
            nvm = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--flush") == 0 && i + 1 < argc)
            flush = strtod(argv[++i], NULL);
        else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
            batch = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--keep") == 0)
            keep = 1;
        else
            usage();
    }
    if (nvm < 1 || seconds < 1 || batch < 1 || !(flush > 0)) usage();
    if ((double)nvm * flush < (double)batch) batch = (long)ceil((double)nvm * flush);
    if (batch < 1) batch = 1;

    char tmp[64];
    if (!dir) {
        snprintf(tmp, sizeof tmp, "/tmp/pt-bench-store-XXXXXX");
        if (!mkdtemp(tmp)) {
            perror("mkdtemp");
            return 1;
        }
        dir = tmp;
    }
    char path[512], wal[520];
    snprintf(path, sizeof path, "%s/metrics.db", dir);
    snprintf(wal, sizeof wal, "%s-wal", path);
    struct store_conf conf = {.url = "sqlite:", .data_dir = dir};
    struct store *s;
    char err[512];
    if (ops->open(&conf, &s, err, sizeof err)) {
        fprintf(stderr, "open: %s\n", err);
        return 1;
    }

    struct vm *vms = calloc((size_t)nvm, sizeof *vms);
    struct store_point *pts = calloc((size_t)batch * NMEAS, sizeof *pts);
    struct slot *slots = calloc((size_t)batch, sizeof *slots);
    size_t nbatches_max = (size_t)(nvm * seconds / batch + 2);
    int64_t *blat = calloc(nbatches_max, sizeof *blat);
    if (!vms || !pts || !slots || !blat) return 1;
    for (long i = 0; i < nvm; i++) vm_init(&vms[i], (int)i);

    /* Data ends "now" (a whole minute) so the last hour is the range queried. */
    int64_t t0 = (pt_now_ns() / PT_NS_PER_SEC / 60 * 60 - seconds) * PT_NS_PER_SEC;
    printf("store bench: %ld VMs x %ld s at 1 s, %d values in %d series per frame\n", nvm, seconds,
           NVALUES, NMEAS);
    printf("batches of %ld frames = %.2f s of arrivals (flush %.2f s, at most %ld frames)\n", batch,
           (double)batch / (double)nvm, flush, batch);
    size_t nb = 0, n = 0;
    uint64_t npoints = 0;
    int64_t busy = 0, start = pt_mono_ns();
    /* Frames in arrival order (second by second, VM by VM), a batch every
     * FRAMES frames: a batch larger than the VM count spans seconds, as the
     * collector's writer batches do at low frame rates. */
    for (long t = 0; t < seconds; t++) {
        int64_t ts = t0 + t * PT_NS_PER_SEC;
        for (long v = 0; v < nvm; v++) {
            vm_sample(&vms[v]);
            slot_fill(&slots[n / NMEAS], &vms[v], &pts[n], ts);
            n += NMEAS;
            if (n < (size_t)batch * NMEAS && !(t == seconds - 1 && v == nvm - 1)) continue;
            int64_t b0 = pt_mono_ns();
            int rc = ops->write_batch(s, pts, n);
            int64_t dt = pt_mono_ns() - b0;
            if (rc) {
                fprintf(stderr, "write_batch: %d\n", rc);
                return 1;
            }
            busy += dt;
            blat[nb++] = dt;
            npoints += n;
            n = 0;
        }
        if (t > 0 && t % 600 == 0) {
            printf("  %6ld s written: %.0f points/s so far, db+wal %.1f MiB\n", t,
                   (double)npoints / ((double)busy / 1e9), (double)ops->size(s) / 1048576.0);
            fflush(stdout);
        }
    }
    int64_t wall = pt_mono_ns() - start;
    uint64_t nvalues = npoints / NMEAS * NVALUES;
    qsort(blat, nb, sizeof *blat, cmp_i64);
    double secs = (double)busy / 1e9;
    printf("write: %llu points, %llu values in %.2f s of write_batch (%.2f s wall incl. "
           "generating)\n",
           (unsigned long long)npoints, (unsigned long long)nvalues, secs, (double)wall / 1e9);
    printf("write: %.0f points/s  %.0f values/s  %.0f frames/s  => %.0f VMs at 1 s per core\n",
           (double)npoints / secs, (double)nvalues / secs, (double)npoints / NMEAS / secs,
           (double)npoints / NMEAS / secs);
    printf("write: batch latency median %.2f ms  p99 %.2f ms  max %.2f ms (%zu batches)\n",
           (double)blat[nb / 2] / 1e6, (double)blat[nb * 99 / 100] / 1e6,
           (double)blat[nb - 1] / 1e6, nb);

    /* Size once the WAL is folded in: close (the last connection
     * checkpoints) and reopen. */
    ops->close(s);
    int64_t bytes = file_size(path) + file_size(wal);
    printf("size: %.1f MiB for %llu values = %.2f bytes/value (%.1f bytes/point); "
           "1 VM-day = %.1f MiB\n",
           (double)bytes / 1048576.0, (unsigned long long)nvalues, (double)bytes / (double)nvalues,
           (double)bytes / (double)npoints,
           (double)bytes / (double)nvalues * NVALUES * 86400 / 1048576.0);
    table_sizes(path, nvalues);
    if (ops->open(&conf, &s, err, sizeof err)) {
        fprintf(stderr, "reopen: %s\n", err);
        return 1;
    }

    int64_t qto = t0 + seconds * PT_NS_PER_SEC;
    int64_t qfrom = qto - 3600 * PT_NS_PER_SEC;
    if (seconds < 3600)
        printf("note: only %ld s of data: the hour queried is partly empty\n", seconds);
    char vm[32];
    snprintf(vm, sizeof vm, "vm-%05ld", nvm / 2);
    struct store_query q = {.ns = "bench",
                            .mcis = "mcis-bench",
                            .vm = vm,
                            .measurement = "cpu",
                            .from_ns = qfrom,
                            .to_ns = qto};
    time_query(s, "cpu 1 h raw", &q, 50);
    q.step_ns = 60 * PT_NS_PER_SEC;
    q.agg = STORE_AGG_AVG;
    time_query(s, "cpu 1 h step 60 s avg", &q, 50);
    q.agg = STORE_AGG_P95;
    time_query(s, "cpu 1 h step 60 s p95", &q, 50);
    const char *const one[] = {"cpu_utilization"};
    q.fields = one;
    q.nfields = 1;
    q.agg = STORE_AGG_AVG;
    time_query(s, "cpu_utilization 1 h 60 s avg", &q, 50);
    q.step_ns = 0;
    time_query(s, "cpu_utilization 1 h raw", &q, 50);

    /* MCIS level: every VM of the bench MCIS, avg per VM per minute, avg
     * across VMs. The range ends on a whole minute (1 m roll-ups, no raw
     * edges); the shifted range reads raw points for its two partial
     * minutes; p95 cannot use a roll-up and reads every raw point. */
    struct store_query mq = {.ns = "bench",
                             .mcis = "mcis-bench",
                             .measurement = "cpu",
                             .from_ns = qfrom,
                             .to_ns = qto,
                             .step_ns = 60 * PT_NS_PER_SEC,
                             .agg = STORE_AGG_AVG,
                             .across = STORE_AGG_AVG};
    printf("MCIS queries over %ld VMs:\n", nvm);
    time_query(s, "MCIS cpu 1 h 60 s avg/avg", &mq, 20);
    mq.from_ns += 17 * PT_NS_PER_SEC;
    mq.to_ns -= 43 * PT_NS_PER_SEC;
    time_query(s, "  same, unaligned range", &mq, 20);
    mq.from_ns = qfrom;
    mq.to_ns = qto;
    mq.fields = one;
    mq.nfields = 1;
    time_query(s, "  same, cpu_utilization", &mq, 20);
    mq.fields = NULL;
    mq.nfields = 0;
    mq.across = STORE_AGG_NONE;
    mq.group_by_vm = true;
    time_query(s, "  groupBy vm (series 1)", &mq, 20);
    mq.group_by_vm = false;
    mq.across = STORE_AGG_AVG;
    mq.agg = STORE_AGG_P95;
    time_query(s, "  p95/avg (raw points)", &mq, 3);

    int64_t lat[50];
    for (int i = 0; i < 50; i++) {
        struct store_result r;
        int64_t t = pt_mono_ns();
        if (ops->latest(s, "bench", "mcis-bench", vm, NULL, &r)) return 1;
        lat[i] = pt_mono_ns() - t;
        store_result_free(&r);
    }
    qsort(lat, 50, sizeof *lat, cmp_i64);
    printf("latest (5 series of one VM): median %.3f ms\n", (double)lat[25] / 1e6);

    int64_t r0 = pt_mono_ns();
    int64_t del = ops->retention(s, qto - 600 * PT_NS_PER_SEC);
    printf("retention: deleted %lld points (all but the last 10 min) in %.2f s\n", (long long)del,
           (double)(pt_mono_ns() - r0) / 1e9);
    ops->close(s);
    free(vms);
    free(pts);
    free(slots);
    free(blat);
    if (!keep) {
        unlink(path);
        unlink(wal);
        char shm[520];
        snprintf(shm, sizeof shm, "%s-shm", path);
        unlink(shm);
        if (dir == tmp) rmdir(tmp);
    }
    return 0;
}
