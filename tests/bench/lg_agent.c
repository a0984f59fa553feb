/* Simulated agents for pantala-loadgen: a random-walk model of the metric
 * catalog and a template encoder byte-identical to pt_wire_encode(). */
#include "lg_agent.h"

#include "pt/catalog.h"
#include "pt/err.h"
#include "pt/time.h"
#include "pt/util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Values in frame order: the catalog order, with mem_available at the end
 * of the memory measurement. */
enum {
    V_CPU_UTIL,
    V_CPU_USER,
    V_CPU_NICE,
    V_CPU_SYSTEM,
    V_CPU_IDLE,
    V_CPU_IOWAIT,
    V_CPU_HINTR,
    V_CPU_SINTR,
    V_CPU_STEAL,
    V_CPU_GUEST,
    V_CPU_GUEST_NICE,
    V_CPU_NUM,
    V_UPTIME,
    V_CONTEXTS,
    V_PROC_RUN,
    V_PROC_TOTAL,
    V_LOAD1,
    V_LOAD5,
    V_LOAD15,
    V_CPU_SPEED,
    V_MEM_UTIL,
    V_MEM_TOTAL,
    V_MEM_USED,
    V_MEM_FREE,
    V_MEM_SHARED,
    V_MEM_BUFFERS,
    V_MEM_CACHED,
    V_SWAP_UTIL,
    V_SWAP_TOTAL,
    V_SWAP_USED,
    V_SWAP_FREE,
    V_PAGE_IN,
    V_PAGE_OUT,
    V_SWAP_IN,
    V_SWAP_OUT,
    V_MEM_AVAILABLE,
    V_DISK_UTIL,
    V_DISK_TOTAL,
    V_DISK_USED,
    V_DISK_FREE,
    V_KB_READ,
    V_KB_WRITTEN,
    V_OPS_READ,
    V_OPS_WRITE,
    V_READ_TIME,
    V_WRITE_TIME,
    V_BYTES_IN,
    V_BYTES_OUT,
    V_PKTS_IN,
    V_PKTS_OUT,
    V_ERR_IN,
    V_ERR_OUT,
    V_DROP_IN,
    V_DROP_OUT,
    V_COUNT
};
_Static_assert(V_COUNT == LG_NVALUES, "value table and LG_NVALUES disagree");

static const char *const value_names[LG_NVALUES] = {
    "cpu_utilization", "cpu_user",         "cpu_nice",         "cpu_system",   "cpu_idle",
    "cpu_iowait",      "cpu_hintr",        "cpu_sintr",        "cpu_steal",    "cpu_guest",
    "cpu_guest_nice",  "cpu_num",          "uptime",           "contexts",     "proc_run",
    "proc_total",      "load_avg_1m",      "load_avg_5m",      "load_avg_15m", "cpu_speed",
    "mem_utilization", "mem_total",        "mem_used",         "mem_free",     "mem_shared",
    "mem_buffers",     "mem_cached",       "swap_utilization", "swap_total",   "swap_used",
    "swap_free",       "page_in",          "page_out",         "swap_in",      "swap_out",
    "mem_available",   "disk_utilization", "disk_total",       "disk_used",    "disk_free",
    "kb_read",         "kb_written",       "ops_read",         "ops_write",    "read_time",
    "write_time",      "bytes_in",         "bytes_out",        "pkts_in",      "pkts_out",
    "err_in",          "err_out",          "drop_in",          "drop_out",
};

/* Measurements in frame order and the slice of values each carries. */
static const struct meas_def {
    const char *name;
    uint8_t first, count;
} meas_defs[LG_NMEAS] = {
    {"cpu", V_CPU_UTIL, V_CPU_SPEED - V_CPU_UTIL},
    {"cpufreq", V_CPU_SPEED, 1},
    {"memory", V_MEM_UTIL, V_DISK_UTIL - V_MEM_UTIL},
    {"disk", V_DISK_UTIL, V_KB_READ - V_DISK_UTIL},
    {"diskio", V_KB_READ, V_BYTES_IN - V_KB_READ},
    {"network", V_BYTES_IN, V_COUNT - V_BYTES_IN},
};

static uint8_t value_types[LG_NVALUES]; /* enum pt_ftype, from the catalog */
/* Each value's key as encoded on the wire (a symbol id), resolved once. */
static uint8_t value_keys[LG_NVALUES][3];
static uint8_t value_key_len[LG_NVALUES];

static uint8_t *put_uint(uint8_t *p, uint64_t u);

int lg_catalog_check(void)
{
    size_t ci = 0;
    for (size_t m = 0; m < LG_NMEAS; m++) {
        const struct meas_def *md = &meas_defs[m];
        for (size_t i = md->first; i < (size_t)md->first + md->count; i++) {
            if (i == V_MEM_AVAILABLE) {
                value_types[i] = PT_F_UINT;
                continue;
            }
            if (ci >= pt_catalog_len || strcmp(pt_catalog[ci].field, value_names[i]) != 0 ||
                strcmp(pt_catalog[ci].measurement, md->name) != 0) {
                fprintf(stderr,
                        "pantala-loadgen: the metric catalog changed (entry %zu is %s.%s, the "
                        "model expects %s.%s): update tests/bench/lg_agent.c\n",
                        ci, ci < pt_catalog_len ? pt_catalog[ci].measurement : "-",
                        ci < pt_catalog_len ? pt_catalog[ci].field : "-", md->name, value_names[i]);
                return -EINVAL;
            }
            value_types[i] = pt_catalog[ci].type;
            ci++;
        }
    }
    if (ci != pt_catalog_len) {
        fprintf(stderr, "pantala-loadgen: the catalog has %zu metrics, the model %zu\n",
                pt_catalog_len, ci);
        return -EINVAL;
    }
    for (size_t i = 0; i < LG_NVALUES; i++) {
        uint32_t id = pt_sym_find(value_names[i], strlen(value_names[i]));
        if (id == 0 || id > UINT16_MAX) {
            fprintf(stderr, "pantala-loadgen: field %s has no symbol id\n", value_names[i]);
            return -EINVAL;
        }
        value_key_len[i] = (uint8_t)(put_uint(value_keys[i], id) - value_keys[i]);
    }
    return 0;
}

size_t lg_values_per_frame(void)
{
    return LG_NVALUES;
}

/* ---- random numbers and walks -------------------------------------------- */

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t rnd(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* Uniform in [0, 1). */
static double unif(uint64_t *s)
{
    return (double)(rnd(s) >> 11) * 0x1.0p-53;
}

static double clamp(double x, double lo, double hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

/* Additive step of at most step, reflected into [lo, hi]. */
static void walk(uint64_t *s, double *x, double step, double lo, double hi)
{
    double y = *x + step * (2 * unif(s) - 1);
    if (y < lo) y = 2 * lo - y;
    if (y > hi) y = 2 * hi - y;
    *x = clamp(y, lo, hi);
}

/* Relative step of at most frac, kept in [lo, hi]. */
static void mwalk(uint64_t *s, double *x, double frac, double lo, double hi)
{
    *x = clamp(*x * (1 + frac * (2 * unif(s) - 1)), lo, hi);
}

static double pick(uint64_t *s, const double *choices, size_t n)
{
    return choices[rnd(s) % n];
}

#define GIB (1024.0 * 1024.0 * 1024.0)

static void model_init(struct lg_agent *a)
{
    static const double ncpus[] = {1, 2, 2, 4, 4, 8, 16, 32};
    static const double mhzs[] = {2400, 2500, 2900, 3100, 3500};
    static const double mems[] = {1, 2, 4, 8, 8, 16, 32, 64};
    static const double disks[] = {8, 20, 30, 50, 100, 200, 500};
    struct lg_model *m = &a->m;
    uint64_t *s = &a->rng;

    m->ncpu = pick(s, ncpus, PT_ARRAY_LEN(ncpus));
    m->mhz_max = pick(s, mhzs, PT_ARRAY_LEN(mhzs));
    m->mhz = m->mhz_max * (0.6 + 0.4 * unif(s));
    m->uptime0 = 3600 + unif(s) * 90 * 86400;
    m->user = 5 + 35 * unif(s);
    m->system = 2 + 8 * unif(s);
    m->nice = unif(s);
    m->iowait = 3 * unif(s);
    m->hintr = 0.3 * unif(s);
    m->sintr = unif(s);
    m->steal = 0.5 * unif(s);
    m->guest = 0;
    m->guest_nice = 0;
    m->ctx = (500 + 20000 * unif(s)) * m->ncpu;
    m->run = 1 + m->ncpu * unif(s);
    m->procs = 100 + 300 * unif(s);
    m->load1 = m->load5 = m->load15 = m->run;

    m->mem_total = floor(pick(s, mems, PT_ARRAY_LEN(mems)) * GIB * 0.97 / 4096) * 4096;
    m->avail = m->mem_total * (0.4 + 0.4 * unif(s));
    m->free_frac = 0.2 + 0.4 * unif(s);
    m->shared = m->mem_total * 0.01;
    m->buffers = m->mem_total * (0.01 + 0.02 * unif(s));
    m->swap_total = (rnd(s) & 1) ? 2 * GIB : 0;
    m->swap_used = m->swap_total * 0.1 * unif(s);
    m->pgin = 100 * unif(s);
    m->pgout = 400 * unif(s);
    m->swin = m->swout = 0;

    m->disk_total = floor(pick(s, disks, PT_ARRAY_LEN(disks)) * GIB / 4096) * 4096;
    m->disk_used = m->disk_total * (0.1 + 0.6 * unif(s));

    m->rkb = 50 + 500 * unif(s);
    m->wkb = 100 + 2000 * unif(s);
    m->rops = m->rkb / 16;
    m->wops = m->wkb / 32;
    m->rtime = m->wtime = 0;

    m->bin = 1e4 + 1e6 * unif(s);
    m->bout = 1e4 + 1e6 * unif(s);
    m->pkt_in_size = 600 + 800 * unif(s);
    m->pkt_out_size = 300 + 1100 * unif(s);
    m->errin = m->errout = m->dropin = m->dropout = 0;
}

/* One sample: walk the state and derive every value from it, keeping the
 * relations an operator would check (idle + busy = 100, used + available =
 * total, pkts ~ bytes / size). */
static void model_step(struct lg_agent *a, int64_t ts_ns)
{
    struct lg_model *m = &a->m;
    uint64_t *s = &a->rng;
    double *v = a->v;

    walk(s, &m->user, 1.5, 0.5, 90);
    walk(s, &m->system, 0.5, 0.2, 30);
    walk(s, &m->nice, 0.05, 0, 5);
    walk(s, &m->iowait, 0.3, 0, 20);
    walk(s, &m->hintr, 0.02, 0, 2);
    walk(s, &m->sintr, 0.1, 0, 5);
    walk(s, &m->steal, 0.05, 0, 10);
    double busy =
        m->user + m->nice + m->system + m->iowait + m->hintr + m->sintr + m->steal + m->guest;
    if (busy > 100) {
        m->user -= busy - 100;
        busy = 100;
    }
    v[V_CPU_USER] = m->user;
    v[V_CPU_NICE] = m->nice;
    v[V_CPU_SYSTEM] = m->system;
    v[V_CPU_IOWAIT] = m->iowait;
    v[V_CPU_HINTR] = m->hintr;
    v[V_CPU_SINTR] = m->sintr;
    v[V_CPU_STEAL] = m->steal;
    v[V_CPU_GUEST] = m->guest;
    v[V_CPU_GUEST_NICE] = m->guest_nice;
    v[V_CPU_IDLE] = 100 - busy;
    v[V_CPU_UTIL] = 100 - v[V_CPU_IDLE] - m->iowait;
    v[V_CPU_NUM] = m->ncpu;
    v[V_UPTIME] = m->uptime0 + (double)((ts_ns - a->start_ns) / PT_NS_PER_SEC);
    mwalk(s, &m->ctx, 0.05, 100, 5e5 * m->ncpu);
    v[V_CONTEXTS] = m->ctx;
    walk(s, &m->run, 0.5, 0, 2 * m->ncpu);
    v[V_PROC_RUN] = round(m->run);
    walk(s, &m->procs, 2, 50, 3000);
    v[V_PROC_TOTAL] = round(m->procs);
    m->load1 += (m->run - m->load1) * 0.08;
    m->load5 += (m->run - m->load5) * 0.0166;
    m->load15 += (m->run - m->load15) * 0.0055;
    v[V_LOAD1] = m->load1;
    v[V_LOAD5] = m->load5;
    v[V_LOAD15] = m->load15;

    walk(s, &m->mhz, 30, 0.5 * m->mhz_max, m->mhz_max);
    v[V_CPU_SPEED] = m->mhz;

    walk(s, &m->avail, 0.002 * m->mem_total, 0.05 * m->mem_total, 0.95 * m->mem_total);
    walk(s, &m->free_frac, 0.01, 0.05, 0.9);
    walk(s, &m->buffers, 0.0005 * m->mem_total, 0.002 * m->mem_total, 0.03 * m->mem_total);
    double freeb = floor(m->avail * m->free_frac / 1024) * 1024;
    double avail = floor(m->avail / 1024) * 1024;
    v[V_MEM_TOTAL] = m->mem_total;
    v[V_MEM_AVAILABLE] = avail;
    v[V_MEM_USED] = m->mem_total - avail;
    v[V_MEM_UTIL] = 100 * (m->mem_total - avail) / m->mem_total;
    v[V_MEM_FREE] = freeb;
    v[V_MEM_SHARED] = floor(m->shared / 1024) * 1024;
    v[V_MEM_BUFFERS] = floor(m->buffers / 1024) * 1024;
    v[V_MEM_CACHED] = floor((avail - freeb) * 0.95 / 1024) * 1024;
    if (m->swap_total > 0) {
        walk(s, &m->swap_used, 0.001 * m->swap_total, 0, 0.5 * m->swap_total);
        double used = floor(m->swap_used / 1024) * 1024;
        v[V_SWAP_USED] = used;
        v[V_SWAP_FREE] = m->swap_total - used;
        v[V_SWAP_UTIL] = 100 * used / m->swap_total;
        if (unif(s) < 0.02) {
            m->swin = 10 + 500 * unif(s);
            m->swout = 10 + 500 * unif(s);
        } else {
            m->swin *= 0.5;
            m->swout *= 0.5;
        }
    } else {
        v[V_SWAP_USED] = v[V_SWAP_FREE] = v[V_SWAP_UTIL] = 0;
    }
    v[V_SWAP_TOTAL] = m->swap_total;
    mwalk(s, &m->pgin, 0.2, 0.5, 2e4);
    mwalk(s, &m->pgout, 0.2, 0.5, 4e4);
    v[V_PAGE_IN] = m->pgin;
    v[V_PAGE_OUT] = m->pgout;
    v[V_SWAP_IN] = m->swin;
    v[V_SWAP_OUT] = m->swout;

    m->disk_used = clamp(m->disk_used + 65536 * (unif(s) - 0.3) * 16, 0, 0.95 * m->disk_total);
    double dused = floor(m->disk_used / 4096) * 4096;
    double dfree = floor((0.95 * m->disk_total - dused) / 4096) * 4096;
    v[V_DISK_TOTAL] = m->disk_total;
    v[V_DISK_USED] = dused;
    v[V_DISK_FREE] = dfree;
    v[V_DISK_UTIL] = 100 * dused / (dused + dfree);

    mwalk(s, &m->rkb, 0.15, 1, 5e5);
    mwalk(s, &m->wkb, 0.15, 1, 5e5);
    walk(s, &m->rops, 2, m->rkb / 256, m->rkb / 4);
    walk(s, &m->wops, 2, m->wkb / 256, m->wkb / 4);
    v[V_KB_READ] = m->rkb;
    v[V_KB_WRITTEN] = m->wkb;
    v[V_OPS_READ] = m->rops;
    v[V_OPS_WRITE] = m->wops;
    v[V_READ_TIME] = clamp(m->rops * (0.1 + 0.3 * unif(s)), 0, 1000);
    v[V_WRITE_TIME] = clamp(m->wops * (0.2 + 0.6 * unif(s)), 0, 1000);

    mwalk(s, &m->bin, 0.1, 200, 1.2e9);
    mwalk(s, &m->bout, 0.1, 200, 1.2e9);
    v[V_BYTES_IN] = m->bin;
    v[V_BYTES_OUT] = m->bout;
    v[V_PKTS_IN] = m->bin / m->pkt_in_size;
    v[V_PKTS_OUT] = m->bout / m->pkt_out_size;
    m->errin = unif(s) < 0.001 ? 1 : 0;
    m->errout = 0;
    m->dropin = unif(s) < 0.01 ? floor(1 + 5 * unif(s)) : 0;
    m->dropout = 0;
    v[V_ERR_IN] = m->errin;
    v[V_ERR_OUT] = m->errout;
    v[V_DROP_IN] = m->dropin;
    v[V_DROP_OUT] = m->dropout;
}

/* ---- msgpack, written the way msgpack-c packs (smallest form) ------------- */

static uint8_t *put_be(uint8_t *p, uint64_t u, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--) *p++ = (uint8_t)(u >> (8 * i));
    return p;
}

static uint8_t *put_uint(uint8_t *p, uint64_t u)
{
    if (u < 128) {
        *p++ = (uint8_t)u;
    } else if (u < 256) {
        *p++ = 0xcc;
        *p++ = (uint8_t)u;
    } else if (u < 65536) {
        *p++ = 0xcd;
        p = put_be(p, u, 2);
    } else if (u < (UINT64_C(1) << 32)) {
        *p++ = 0xce;
        p = put_be(p, u, 4);
    } else {
        *p++ = 0xcf;
        p = put_be(p, u, 8);
    }
    return p;
}

static uint8_t *put_double(uint8_t *p, double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    *p++ = 0xcb;
    return put_be(p, u, 8);
}

/* Container header: fix form below 16, else 16-bit (a frame never needs
 * the 32-bit form). */
static uint8_t *put_hdr(uint8_t *p, uint8_t fix, uint8_t b16, uint32_t n)
{
    if (n < 16) {
        *p++ = (uint8_t)(fix | n);
    } else {
        *p++ = b16;
        p = put_be(p, n, 2);
    }
    return p;
}

static uint8_t *put_str(uint8_t *p, const char *s)
{
    size_t n = strlen(s); /* <= PT_WIRE_MAX_STR, checked at init */
    if (n < 32) {
        *p++ = (uint8_t)(0xa0 | n);
    } else {
        *p++ = 0xd9;
        *p++ = (uint8_t)n;
    }
    memcpy(p, s, n);
    return p + n;
}

static uint8_t *put_name(uint8_t *p, const char *s)
{
    uint32_t id = pt_sym_find(s, strlen(s));
    return id ? put_uint(p, id) : put_str(p, s);
}

static uint64_t to_uint(double x)
{
    return x <= 0 ? 0 : (uint64_t)(x + 0.5);
}

/* ---- agents --------------------------------------------------------------- */

static void devices_for(struct lg_agent *a)
{
    const char *blk = "vda", *ifn = "eth0";
    if (strcmp(a->csp, "aws") == 0) {
        blk = "nvme0n1";
        ifn = "ens5";
    } else if (strcmp(a->csp, "azure") == 0) {
        blk = "sda";
    } else if (strcmp(a->csp, "gcp") == 0) {
        blk = "sda";
        ifn = "ens4";
    }
    snprintf(a->blk_dev, sizeof a->blk_dev, "%s", blk);
    snprintf(a->ifname, sizeof a->ifname, "%s", ifn);
    snprintf(a->disk_dev, sizeof a->disk_dev, "/dev/%s%s", blk,
             strncmp(blk, "nvme", 4) == 0 ? "p1" : "1");
}

/* Tags of measurement m, in the order both encoders write them. */
static size_t meas_tags(const struct lg_agent *a, size_t m, struct pt_tag *t)
{
    switch (m) {
    case 3: /* disk */
        t[0] = (struct pt_tag){PT_STR("mount"), PT_STR("/")};
        t[1] = (struct pt_tag){PT_STR("device"), pt_str_c(a->disk_dev)};
        t[2] = (struct pt_tag){PT_STR("fstype"), PT_STR("ext4")};
        return 3;
    case 4: /* diskio */
        t[0] = (struct pt_tag){PT_STR("device"), pt_str_c(a->blk_dev)};
        return 1;
    case 5: /* network */
        t[0] = (struct pt_tag){PT_STR("interface"), pt_str_c(a->ifname)};
        return 1;
    }
    return 0;
}

/* Writes the static segments: [0] the header up to the epoch; [1] interval,
 * part, nparts, identity, the measurement array header and measurement 0
 * up to its field map header; [m+1] measurement m up to its field map
 * header. */
static int build_template(struct lg_agent *a)
{
    uint8_t buf[LG_FRAME_CAP], *p = buf;
    struct pt_tag tags[PT_WIRE_MAX_TAGS];

    a->seg_off[0] = 0;
    *p++ = 0x90 | 12; /* E_SAMPLE_COUNT elements */
    *p++ = PT_WIRE_VERSION;
    *p++ = PT_WIRE_SAMPLE;
    *p++ = a->sign ? PT_WIRE_F_SIGNED : 0;
    p = put_uint(p, a->id);
    p = put_uint(p, a->epoch);
    a->seg_len[0] = (uint16_t)(p - buf);

    a->seg_off[1] = (uint16_t)(p - buf);
    p = put_uint(p, a->interval_ms);
    p = put_uint(p, 0); /* part */
    p = put_uint(p, 1); /* nparts */
    *p++ = 0x90 | 5;
    p = put_str(p, a->ns);
    p = put_str(p, a->mcis);
    p = put_str(p, a->vm);
    p = put_str(p, a->csp);
    p = put_str(p, a->vm); /* host */
    p = put_hdr(p, 0x90, 0xdc, LG_NMEAS);
    for (size_t m = 0; m < LG_NMEAS; m++) {
        if (m > 0) {
            a->seg_len[m] = (uint16_t)(p - buf - a->seg_off[m]);
            a->seg_off[m + 1] = (uint16_t)(p - buf);
        }
        *p++ = 0x90 | 3;
        p = put_name(p, meas_defs[m].name);
        size_t nt = meas_tags(a, m, tags);
        p = put_hdr(p, 0x80, 0xde, (uint32_t)nt);
        for (size_t t = 0; t < nt; t++) {
            p = put_name(p, tags[t].key.p);
            p = put_str(p, tags[t].val.p);
        }
        p = put_hdr(p, 0x80, 0xde, meas_defs[m].count);
    }
    a->seg_len[LG_NMEAS] = (uint16_t)(p - buf - a->seg_off[LG_NMEAS]);
    a->tmpl = malloc((size_t)(p - buf));
    if (!a->tmpl) return -ENOMEM;
    memcpy(a->tmpl, buf, (size_t)(p - buf));
    return 0;
}

int lg_agent_init(struct lg_agent *a, uint64_t id, const char *ns, const char *mcis, const char *vm,
                  const char *csp, const uint8_t *key, bool sign, uint64_t epoch,
                  uint32_t interval_ms, uint64_t seed)
{
    memset(a, 0, sizeof *a);
    if (id == 0) return -EINVAL;
    if (!pt_wire_name_ok(ns, strlen(ns)) || !pt_wire_name_ok(mcis, strlen(mcis)) ||
        !pt_wire_name_ok(vm, strlen(vm)) || strlen(csp) > PT_WIRE_MAX_STR)
        return PT_E_LIMIT;
    a->id = id;
    a->epoch = epoch;
    a->interval_ms = interval_ms;
    a->sign = sign;
    a->start_ns = pt_now_ns();
    a->rng = splitmix64(seed ^ (id * 0x9e3779b97f4a7c15ull)) | 1;
    a->ns = strdup(ns);
    a->mcis = strdup(mcis);
    a->vm = strdup(vm);
    a->csp = strdup(csp);
    int rc = -ENOMEM;
    if (!a->ns || !a->mcis || !a->vm || !a->csp) goto fail;
    if (key) {
        memcpy(a->key, key, PT_WIRE_KEY_LEN);
        a->has_key = true;
    } else if (sign) {
        for (size_t i = 0; i < PT_WIRE_KEY_LEN; i++) a->key[i] = (uint8_t)rnd(&a->rng);
    }
    if (sign && (rc = pt_wire_key_init(&a->wk, a->key, PT_WIRE_KEY_LEN))) goto fail;
    devices_for(a);
    model_init(a);
    if ((rc = build_template(a))) goto fail;
    return 0;
fail:
    lg_agent_close(a);
    return rc;
}

void lg_agent_close(struct lg_agent *a)
{
    if (a->wk.mac_ctx) pt_wire_key_close(&a->wk);
    free(a->ns);
    free(a->mcis);
    free(a->vm);
    free(a->csp);
    free(a->tmpl);
    memset(a, 0, sizeof *a);
}

/* Bytes the dynamic parts may add: seq and ts (9 each), per value a key
 * (a symbol id, at most 3 bytes) and 9 bytes, the MAC. */
#define DYN_MAX (2 * 9 + LG_NVALUES * (3 + 9) + PT_WIRE_MAC_LEN)

int lg_value_index(const char *measurement, const char *field)
{
    for (size_t m = 0; m < LG_NMEAS; m++) {
        if (strcmp(meas_defs[m].name, measurement)) continue;
        for (size_t i = meas_defs[m].first; i < (size_t)meas_defs[m].first + meas_defs[m].count;
             i++)
            if (!strcmp(value_names[i], field)) return (int)i;
    }
    return -1;
}

void lg_agent_pattern(struct lg_agent *a, int idx, double lo, double hi, int64_t period_ns,
                      int64_t t0)
{
    a->pat = idx >= 0 && idx < LG_NVALUES;
    a->pat_idx = idx;
    a->pat_lo = lo;
    a->pat_hi = hi;
    a->pat_t0 = t0;
    a->pat_half_ns = period_ns / 2 > 0 ? period_ns / 2 : 1;
    a->pat_phase = -1;
}

int lg_agent_next(struct lg_agent *a, int64_t ts_ns, uint8_t *out, size_t cap, size_t *len)
{
    size_t stat = (size_t)a->seg_off[LG_NMEAS] + a->seg_len[LG_NMEAS];
    if (cap < stat + DYN_MAX) return PT_E_NOSPACE;
    a->seq++;
    model_step(a, ts_ns);
    if (a->pat) {
        int64_t d = ts_ns - a->pat_t0;
        int ph = d < 0 ? 0 : (int)((d / a->pat_half_ns) & 1);
        a->pat_crossed = a->pat_phase >= 0 && ph != a->pat_phase;
        a->pat_phase = ph;
        a->v[a->pat_idx] = ph ? a->pat_hi : a->pat_lo;
    }

    uint8_t *p = out;
    memcpy(p, a->tmpl, a->seg_len[0]);
    p += a->seg_len[0];
    p = put_uint(p, a->seq);
    p = put_uint(p, (uint64_t)ts_ns);
    for (size_t m = 0; m < LG_NMEAS; m++) {
        memcpy(p, a->tmpl + a->seg_off[m + 1], a->seg_len[m + 1]);
        p += a->seg_len[m + 1];
        const struct meas_def *md = &meas_defs[m];
        for (size_t i = md->first; i < (size_t)md->first + md->count; i++) {
            memcpy(p, value_keys[i], value_key_len[i]);
            p += value_key_len[i];
            if (value_types[i] == PT_F_UINT)
                p = put_uint(p, to_uint(a->v[i]));
            else
                p = put_double(p, a->v[i]);
        }
    }
    size_t body = (size_t)(p - out);
    if (a->sign) {
        if (pt_wire_mac(&a->wk, out, body, p)) return PT_E_AUTH;
        body += PT_WIRE_MAC_LEN;
    }
    *len = body;
    return 0;
}

int lg_agent_encode_ref(struct lg_agent *a, int64_t ts_ns, uint8_t *out, size_t cap, size_t *len)
{
    struct pt_field fields[LG_NVALUES];
    struct pt_tag tags[LG_NMEAS][PT_WIRE_MAX_TAGS];
    struct pt_meas meas[LG_NMEAS];
    for (size_t i = 0; i < LG_NVALUES; i++) {
        fields[i].key = pt_str_c(value_names[i]);
        fields[i].type = value_types[i];
        if (value_types[i] == PT_F_UINT)
            fields[i].v.u = to_uint(a->v[i]);
        else
            fields[i].v.f = a->v[i];
    }
    for (size_t m = 0; m < LG_NMEAS; m++) {
        meas[m].name = pt_str_c(meas_defs[m].name);
        meas[m].ntags = (uint16_t)meas_tags(a, m, tags[m]);
        meas[m].tags = tags[m];
        meas[m].fields = &fields[meas_defs[m].first];
        meas[m].nfields = meas_defs[m].count;
    }
    struct pt_frame f = {
        .kind = PT_WIRE_SAMPLE,
        .agent_id = a->id,
        .epoch = a->epoch,
        .seq = a->seq,
        .ts_ns = ts_ns,
        .interval_ms = a->interval_ms,
        .part = 0,
        .nparts = 1,
        .id = {pt_str_c(a->ns), pt_str_c(a->mcis), pt_str_c(a->vm), pt_str_c(a->csp),
               pt_str_c(a->vm)},
        .meas = meas,
        .nmeas = LG_NMEAS,
    };
    return pt_wire_encode(&f, a->sign ? &a->wk : NULL, out, cap, len);
}

int lg_agent_selfcheck(struct lg_agent *a)
{
    uint8_t fast[LG_FRAME_CAP], ref[LG_FRAME_CAP];
    size_t flen = 0, rlen = 0;
    int64_t ts = pt_now_ns();
    int rc = lg_agent_next(a, ts, fast, sizeof fast, &flen);
    if (!rc) rc = lg_agent_encode_ref(a, ts, ref, sizeof ref, &rlen);
    a->seq--; /* the check does not use up a sequence number */
    if (rc) return rc;
    if (flen == rlen && memcmp(fast, ref, flen) == 0) return 0;
    size_t at = 0;
    while (at < flen && at < rlen && fast[at] == ref[at]) at++;
    fprintf(stderr,
            "pantala-loadgen: template encoder differs from pt_wire_encode() for agent %llu "
            "at byte %zu (lengths %zu and %zu)\n",
            (unsigned long long)a->id, at, flen, rlen);
    return -EPROTO;
}
