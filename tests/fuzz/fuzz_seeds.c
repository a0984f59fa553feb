/* pantala-fuzz-seeds: writes the wire fuzzer's seed corpus, valid frames of
 * many shapes signed with the fuzzing key (fuzz_key.h), a few field
 * maps and two acknowledgement frames, into a directory. The output is deterministic, so regenerating the
 * committed tests/fuzz/corpus/wire/ changes nothing:
 *
 *   pantala-fuzz-seeds tests/fuzz/corpus/wire
 */
#include "fuzz_key.h"

#include "pt/catalog.h"
#include "pt/err.h"
#include "pt/util.h"
#include "pt/wire.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define TS INT64_C(1763719200123456789) /* 2025-11-21T10:00:00.123456789Z */

static int write_file(const char *dir, const char *name, const void *buf, size_t len)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path) return -1;
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(buf, 1, len, fp) != len || fclose(fp) != 0) {
        fprintf(stderr, "pantala-fuzz-seeds: %s: %s\n", path, strerror(errno));
        return -1;
    }
    printf("%s (%zu bytes)\n", path, len);
    return 0;
}

static struct pt_frame frame(uint64_t seq)
{
    return (struct pt_frame){
        .kind = PT_WIRE_SAMPLE,
        .agent_id = 42,
        .epoch = 1763719000,
        .seq = seq,
        .ts_ns = TS,
        .interval_ms = 1000,
        .nparts = 1,
        .id = {PT_STR("ns01"), PT_STR("mcis-web"), PT_STR("vm-0001"), PT_STR("aws"),
               PT_STR("ip-10-0-0-1")},
    };
}

static int emit(const char *dir, const char *name, const struct pt_frame *f, bool sign,
                struct pt_wire_key *key)
{
    uint8_t buf[PT_WIRE_MAX_FRAME];
    size_t len;
    int rc = pt_wire_encode(f, sign ? key : NULL, buf, sizeof buf, &len);
    if (rc) {
        fprintf(stderr, "pantala-fuzz-seeds: %s: %s\n", name, pt_strerror(rc));
        return -1;
    }
    return write_file(dir, name, buf, len);
}

/* The whole catalog, one measurement per catalog measurement, values that
 * look like a real host's. */
static size_t full_catalog(struct pt_meas *meas, struct pt_field *fields, struct pt_tag *tags)
{
    size_t nm = 0, nf = 0;
    for (size_t i = 0; i < pt_catalog_len; i++) {
        const struct pt_metric *c = &pt_catalog[i];
        if (nm == 0 || !pt_str_eq(meas[nm - 1].name, c->measurement)) {
            meas[nm] = (struct pt_meas){.name = pt_str_c(c->measurement), .fields = &fields[nf]};
            if (strcmp(c->measurement, "disk") == 0) {
                tags[0] = (struct pt_tag){PT_STR("mount"), PT_STR("/")};
                tags[1] = (struct pt_tag){PT_STR("device"), PT_STR("/dev/nvme0n1p1")};
                tags[2] = (struct pt_tag){PT_STR("fstype"), PT_STR("ext4")};
                meas[nm].tags = &tags[0];
                meas[nm].ntags = 3;
            } else if (strcmp(c->measurement, "diskio") == 0) {
                tags[3] = (struct pt_tag){PT_STR("device"), PT_STR("nvme0n1")};
                meas[nm].tags = &tags[3];
                meas[nm].ntags = 1;
            } else if (strcmp(c->measurement, "network") == 0) {
                tags[4] = (struct pt_tag){PT_STR("interface"), PT_STR("ens5")};
                meas[nm].tags = &tags[4];
                meas[nm].ntags = 1;
            }
            nm++;
        }
        struct pt_field *f = &fields[nf++];
        f->key = pt_str_c(c->field);
        f->type = c->type;
        if (c->type == PT_F_UINT)
            f->v.u = (uint64_t)(i + 1) * 1048576u * 37u;
        else
            f->v.f = 0.125 * (double)(i + 1) + 12.5;
        meas[nm - 1].nfields++;
    }
    return nm;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: pantala-fuzz-seeds DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    struct pt_wire_key key;
    if (pt_wire_key_init(&key, fuzz_key, sizeof fuzz_key)) return 1;

    static struct pt_meas meas[PT_WIRE_MAX_MEAS];
    static struct pt_field fields[PT_WIRE_MAX_ALL_FIELDS];
    static struct pt_tag tags[PT_WIRE_MAX_ALL_TAGS];
    int bad = 0;

    /* 1, 2: a full-catalog sample, signed (what agents send) and unsigned. */
    struct pt_frame f = frame(1);
    f.meas = meas;
    f.nmeas = (uint16_t)full_catalog(meas, fields, tags);
    bad |= emit(dir, "01-full-catalog-signed", &f, true, &key);
    f.seq = 2;
    bad |= emit(dir, "02-full-catalog-unsigned", &f, false, &key);

    /* 3: the smallest frame: no measurements, empty csp and host. */
    f = frame(3);
    f.id.csp = PT_STR("");
    f.id.host = PT_STR("");
    bad |= emit(dir, "03-empty", &f, true, &key);

    /* 4: part 2 of 3 of a split sample, a large seq and a 10 s interval. */
    f = frame(UINT64_C(1) << 40);
    f.part = 2;
    f.nparts = 3;
    f.interval_ms = 10000;
    meas[0] = (struct pt_meas){
        .name = PT_STR("network"), .tags = tags, .ntags = 1, .fields = fields, .nfields = 2};
    tags[0] = (struct pt_tag){PT_STR("interface"), PT_STR("eth7")};
    fields[0] = (struct pt_field){PT_STR("bytes_in"), PT_F_FLOAT, {.f = 1234.5}};
    fields[1] = (struct pt_field){PT_STR("bytes_out"), PT_F_FLOAT, {.f = 99.0}};
    f.meas = meas;
    f.nmeas = 1;
    bad |= emit(dir, "04-multipart", &f, true, &key);

    /* 5: names outside the symbol table, string and negative int values
     * (a process row: CB-Dragonfly's process view). */
    f = frame(5);
    tags[0] = (struct pt_tag){PT_STR("pid"), PT_STR("4242")};
    tags[1] = (struct pt_tag){PT_STR("user"), PT_STR("www-data")};
    fields[0] = (struct pt_field){PT_STR("command"), PT_F_STR, {.s = PT_STR("nginx: worker\t")}};
    fields[1] = (struct pt_field){PT_STR("cpu_pct"), PT_F_FLOAT, {.f = 3.25}};
    fields[2] = (struct pt_field){PT_STR("nice"), PT_F_INT, {.i = -5}};
    fields[3] = (struct pt_field){PT_STR("rss"), PT_F_UINT, {.u = 52428800}};
    fields[4] = (struct pt_field){PT_STR("offset"), PT_F_INT, {.i = 300}};
    fields[5] = (struct pt_field){PT_STR("empty"), PT_F_STR, {.s = PT_STR("")}};
    meas[0] = (struct pt_meas){
        .name = PT_STR("process"), .tags = tags, .ntags = 2, .fields = fields, .nfields = 6};
    f.meas = meas;
    f.nmeas = 1;
    bad |= emit(dir, "05-process-strings-ints", &f, true, &key);

    /* 6: a host with 16 disks: many measurements sharing tag keys. */
    f = frame(6);
    static char devs[16][16];
    for (size_t i = 0; i < 16; i++) {
        snprintf(devs[i], sizeof devs[i], "/dev/sd%c1", (char)('a' + i));
        tags[i * 2] = (struct pt_tag){PT_STR("mount"), PT_STR("/data")};
        tags[i * 2 + 1] = (struct pt_tag){PT_STR("device"), pt_str_c(devs[i])};
        fields[i * 2] = (struct pt_field){PT_STR("disk_used"), PT_F_UINT, {.u = i << 30}};
        fields[i * 2 + 1] =
            (struct pt_field){PT_STR("disk_utilization"), PT_F_FLOAT, {.f = (double)i * 6.25}};
        meas[i] = (struct pt_meas){.name = PT_STR("disk"),
                                   .tags = &tags[i * 2],
                                   .ntags = 2,
                                   .fields = &fields[i * 2],
                                   .nfields = 2};
    }
    f.meas = meas;
    f.nmeas = 16;
    bad |= emit(dir, "06-many-disks", &f, true, &key);

    /* 7: identity strings at the 255-byte ceiling. */
    static char longname[PT_WIRE_MAX_STR + 1];
    memset(longname, 'n', PT_WIRE_MAX_STR);
    f = frame(7);
    f.id.ns = f.id.mcis = f.id.vm = f.id.host = pt_str_c(longname);
    bad |= emit(dir, "07-long-identity", &f, true, &key);

    /* 8: UTF-8 identity and tag values. */
    f = frame(8);
    f.id.ns = PT_STR("운영");
    f.id.mcis = PT_STR("mcis-東京");
    f.id.vm = PT_STR("vm-ä-😀");
    tags[0] = (struct pt_tag){PT_STR("interface"), PT_STR("以太网0")};
    fields[0] = (struct pt_field){PT_STR("bytes_in"), PT_F_FLOAT, {.f = 1.0}};
    meas[0] = (struct pt_meas){
        .name = PT_STR("network"), .tags = tags, .ntags = 1, .fields = fields, .nfields = 1};
    f.meas = meas;
    f.nmeas = 1;
    bad |= emit(dir, "08-utf8", &f, true, &key);

    /* 9: edge values: -0.0, the largest and smallest doubles, a denormal,
     * the integer extremes, and every header field at its maximum. */
    f = frame(UINT64_MAX);
    f.agent_id = UINT64_MAX;
    f.epoch = UINT64_MAX;
    f.ts_ns = INT64_MAX;
    f.interval_ms = UINT32_MAX;
    f.part = PT_WIRE_MAX_PARTS - 1;
    f.nparts = PT_WIRE_MAX_PARTS;
    fields[0] = (struct pt_field){PT_STR("a"), PT_F_FLOAT, {.f = -0.0}};
    fields[1] = (struct pt_field){PT_STR("b"), PT_F_FLOAT, {.f = DBL_MAX}};
    fields[2] = (struct pt_field){PT_STR("c"), PT_F_FLOAT, {.f = -DBL_MIN}};
    fields[3] = (struct pt_field){PT_STR("d"), PT_F_FLOAT, {.f = 4.9e-324}};
    fields[4] = (struct pt_field){PT_STR("e"), PT_F_INT, {.i = INT64_MIN}};
    fields[5] = (struct pt_field){PT_STR("f"), PT_F_INT, {.i = INT64_MAX}};
    fields[6] = (struct pt_field){PT_STR("g"), PT_F_UINT, {.u = UINT64_MAX}};
    fields[7] = (struct pt_field){PT_STR("h"), PT_F_UINT, {.u = 0}};
    meas[0] = (struct pt_meas){.name = PT_STR("edge"), .fields = fields, .nfields = 8};
    f.meas = meas;
    f.nmeas = 1;
    bad |= emit(dir, "09-edge-values", &f, true, &key);

    /* 10: a measurement with 128 fields (the per-measurement ceiling). */
    f = frame(10);
    static char fnames[PT_WIRE_MAX_FIELDS][8];
    for (size_t i = 0; i < PT_WIRE_MAX_FIELDS; i++) {
        snprintf(fnames[i], sizeof fnames[i], "f%zu", i);
        fields[i] = (struct pt_field){pt_str_c(fnames[i]), PT_F_UINT, {.u = i * 1000}};
    }
    meas[0] =
        (struct pt_meas){.name = PT_STR("wide"), .fields = fields, .nfields = PT_WIRE_MAX_FIELDS};
    f.meas = meas;
    f.nmeas = 1;
    bad |= emit(dir, "10-wide", &f, false, &key);

    /* 11, 12: field maps as the embedded store keeps them. */
    uint8_t buf[PT_WIRE_MAX_FRAME];
    size_t len;
    full_catalog(meas, fields, tags);
    if (pt_wire_fields_encode(meas[0].fields, meas[0].nfields, buf, sizeof buf, &len) == 0)
        bad |= write_file(dir, "11-fields-cpu", buf, len);
    else
        bad = 1;
    struct pt_field mixed[] = {
        {PT_STR("mem_total"), PT_F_UINT, {.u = 8ull << 30}},
        {PT_STR("note"), PT_F_STR, {.s = PT_STR("ok")}},
        {PT_STR("delta"), PT_F_INT, {.i = -12345678901}},
        {PT_STR("load_avg_1m"), PT_F_FLOAT, {.f = 0.75}},
    };
    if (pt_wire_fields_encode(mixed, PT_ARRAY_LEN(mixed), buf, sizeof buf, &len) == 0)
        bad |= write_file(dir, "12-fields-mixed", buf, len);
    else
        bad = 1;

    /* 13, 14: acknowledgement frames (kind 2), signed: with gaps, and the
     * most gaps one ack carries. */
    struct pt_wire_ack a = {
        .agent_id = 42, .epoch = 1763719200123, .cum = 100, .top = 180, .now_ns = TS, .ngaps = 2};
    a.gaps[0][0] = 103, a.gaps[0][1] = 110;
    a.gaps[1][0] = 150, a.gaps[1][1] = 150;
    if (pt_wire_ack_encode(&a, &key, buf, sizeof buf, &len) == 0)
        bad |= write_file(dir, "13-ack-gaps", buf, len);
    else
        bad = 1;
    a.ngaps = PT_WIRE_ACK_MAX_GAPS;
    a.top = 100 + 3 * PT_WIRE_ACK_MAX_GAPS + 1;
    for (uint16_t i = 0; i < PT_WIRE_ACK_MAX_GAPS; i++)
        a.gaps[i][0] = a.gaps[i][1] = 101 + 3u * i + 1;
    if (pt_wire_ack_encode(&a, &key, buf, sizeof buf, &len) == 0)
        bad |= write_file(dir, "14-ack-max-gaps", buf, len);
    else
        bad = 1;

    pt_wire_key_close(&key);
    return bad ? 1 : 0;
}
