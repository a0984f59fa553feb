/* The metric catalog and the protocol-v1 symbol table (append-only). */
#include "pt/catalog.h"

#include <pthread.h>
#include <string.h>

#define F PT_F_FLOAT
#define U PT_F_UINT

const struct pt_metric pt_catalog[] = {
    {"cpu", "cpu_utilization", "%", F, 0, "100 - idle - iowait over the interval"},
    {"cpu", "cpu_user", "%", F, 0, "user time excluding guest"},
    {"cpu", "cpu_nice", "%", F, 0, "nice time excluding guest_nice"},
    {"cpu", "cpu_system", "%", F, 0, "system time"},
    {"cpu", "cpu_idle", "%", F, 0, "idle time"},
    {"cpu", "cpu_iowait", "%", F, 0, "I/O wait"},
    {"cpu", "cpu_hintr", "%", F, 0, "hardware interrupt time"},
    {"cpu", "cpu_sintr", "%", F, 0, "software interrupt time"},
    {"cpu", "cpu_steal", "%", F, 0, "time stolen by the hypervisor"},
    {"cpu", "cpu_guest", "%", F, 0, "running a guest"},
    {"cpu", "cpu_guest_nice", "%", F, 0, "running a niced guest"},
    {"cpu", "cpu_num", "count", U, 0, "online CPUs"},
    {"cpu", "uptime", "s", U, 0, "seconds since boot"},
    {"cpu", "contexts", "/s", F, 1, "context switches per second"},
    {"cpu", "proc_run", "count", U, 0, "runnable tasks"},
    {"cpu", "proc_total", "count", U, 0, "processes"},
    {"cpu", "load_avg_1m", "", F, 0, "load average, 1 minute"},
    {"cpu", "load_avg_5m", "", F, 0, "load average, 5 minutes"},
    {"cpu", "load_avg_15m", "", F, 0, "load average, 15 minutes"},
    {"cpufreq", "cpu_speed", "MHz", F, 0, "current frequency averaged over CPUs"},
    {"memory", "mem_utilization", "%", F, 0, "(total - available) / total"},
    {"memory", "mem_total", "bytes", U, 0, "MemTotal"},
    {"memory", "mem_used", "bytes", U, 0, "total - available"},
    {"memory", "mem_free", "bytes", U, 0, "MemFree"},
    {"memory", "mem_shared", "bytes", U, 0, "Shmem"},
    {"memory", "mem_buffers", "bytes", U, 0, "Buffers"},
    {"memory", "mem_cached", "bytes", U, 0, "Cached + SReclaimable"},
    {"memory", "swap_utilization", "%", F, 0, "swap used / swap total (0 without swap)"},
    {"memory", "swap_total", "bytes", U, 0, "SwapTotal"},
    {"memory", "swap_used", "bytes", U, 0, "SwapTotal - SwapFree"},
    {"memory", "swap_free", "bytes", U, 0, "SwapFree"},
    {"memory", "page_in", "pages/s", F, 1, "pgpgin per second"},
    {"memory", "page_out", "pages/s", F, 1, "pgpgout per second"},
    {"memory", "swap_in", "pages/s", F, 1, "pswpin per second"},
    {"memory", "swap_out", "pages/s", F, 1, "pswpout per second"},
    {"disk", "disk_utilization", "%", F, 0, "used / (used + available), as df shows"},
    {"disk", "disk_total", "bytes", U, 0, "file system size"},
    {"disk", "disk_used", "bytes", U, 0, "used"},
    {"disk", "disk_free", "bytes", U, 0, "available to unprivileged users"},
    {"diskio", "kb_read", "KiB/s", F, 1, "sectors read x 512 / 1024 per second"},
    {"diskio", "kb_written", "KiB/s", F, 1, "sectors written x 512 / 1024 per second"},
    {"diskio", "ops_read", "ops/s", F, 1, "reads completed per second"},
    {"diskio", "ops_write", "ops/s", F, 1, "writes completed per second"},
    {"diskio", "read_time", "ms/s", F, 1, "time spent reading"},
    {"diskio", "write_time", "ms/s", F, 1, "time spent writing"},
    {"network", "bytes_in", "bytes/s", F, 1, "received bytes per second"},
    {"network", "bytes_out", "bytes/s", F, 1, "sent bytes per second"},
    {"network", "pkts_in", "packets/s", F, 1, "received packets per second"},
    {"network", "pkts_out", "packets/s", F, 1, "sent packets per second"},
    {"network", "err_in", "/s", F, 1, "receive errors per second"},
    {"network", "err_out", "/s", F, 1, "send errors per second"},
    {"network", "drop_in", "/s", F, 1, "received packets dropped per second"},
    {"network", "drop_out", "/s", F, 1, "sent packets dropped per second"},
};
const size_t pt_catalog_len = sizeof pt_catalog / sizeof pt_catalog[0];

#undef F
#undef U

/* Symbol ids are 1 + the index in this table. Append only: protocol v1
 * frames and stored rows refer to these ids forever. Lengths are computed
 * at compile time so lookups by id need no initialisation. */
#define SYM(s)           \
    {                    \
        s, sizeof(s) - 1 \
    }
static const struct {
    const char *name;
    uint8_t len;
} symbols[] = {
    /* 1: measurements */
    SYM("cpu"),
    SYM("cpufreq"),
    SYM("memory"),
    SYM("disk"),
    SYM("diskio"),
    SYM("network"),
    /* 7: tag keys and values */
    SYM("device"),
    SYM("mount"),
    SYM("fstype"),
    SYM("interface"),
    SYM("total"),
    /* 12: the 53 catalog fields, in catalog order */
    SYM("cpu_utilization"),
    SYM("cpu_user"),
    SYM("cpu_nice"),
    SYM("cpu_system"),
    SYM("cpu_idle"),
    SYM("cpu_iowait"),
    SYM("cpu_hintr"),
    SYM("cpu_sintr"),
    SYM("cpu_steal"),
    SYM("cpu_guest"),
    SYM("cpu_guest_nice"),
    SYM("cpu_num"),
    SYM("uptime"),
    SYM("contexts"),
    SYM("proc_run"),
    SYM("proc_total"),
    SYM("load_avg_1m"),
    SYM("load_avg_5m"),
    SYM("load_avg_15m"),
    SYM("cpu_speed"),
    SYM("mem_utilization"),
    SYM("mem_total"),
    SYM("mem_used"),
    SYM("mem_free"),
    SYM("mem_shared"),
    SYM("mem_buffers"),
    SYM("mem_cached"),
    SYM("swap_utilization"),
    SYM("swap_total"),
    SYM("swap_used"),
    SYM("swap_free"),
    SYM("page_in"),
    SYM("page_out"),
    SYM("swap_in"),
    SYM("swap_out"),
    SYM("disk_utilization"),
    SYM("disk_total"),
    SYM("disk_used"),
    SYM("disk_free"),
    SYM("kb_read"),
    SYM("kb_written"),
    SYM("ops_read"),
    SYM("ops_write"),
    SYM("read_time"),
    SYM("write_time"),
    SYM("bytes_in"),
    SYM("bytes_out"),
    SYM("pkts_in"),
    SYM("pkts_out"),
    SYM("err_in"),
    SYM("err_out"),
    SYM("drop_in"),
    SYM("drop_out"),
    /* 65: beyond the 53 */
    SYM("mem_available"),
};
#undef SYM
#define NSYM (sizeof symbols / sizeof symbols[0])

/* Open-addressing hash from string to id, built once. */
#define HSIZE 256
static uint16_t htab[HSIZE];
static pthread_once_t hash_once = PTHREAD_ONCE_INIT;

static uint32_t fnv1a(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static void build_hash(void)
{
    for (uint32_t i = 0; i < NSYM; i++) {
        uint32_t h = fnv1a(symbols[i].name, symbols[i].len) & (HSIZE - 1);
        while (htab[h]) h = (h + 1) & (HSIZE - 1);
        htab[h] = (uint16_t)(i + 1);
    }
}

uint32_t pt_sym_find(const char *s, size_t len)
{
    pthread_once(&hash_once, build_hash);
    uint32_t h = fnv1a(s, len) & (HSIZE - 1);
    while (htab[h]) {
        uint32_t i = htab[h] - 1u;
        if (symbols[i].len == len && memcmp(symbols[i].name, s, len) == 0) return i + 1;
        h = (h + 1) & (HSIZE - 1);
    }
    return 0;
}

const char *pt_sym_name(uint32_t id, uint32_t *len)
{
    if (id == 0 || id > NSYM) return NULL;
    if (len) *len = symbols[id - 1].len;
    return symbols[id - 1].name;
}

uint32_t pt_sym_count(void)
{
    return (uint32_t)NSYM;
}

const struct pt_metric *pt_catalog_find(const char *measurement, const char *field)
{
    for (size_t i = 0; i < pt_catalog_len; i++)
        if (strcmp(pt_catalog[i].field, field) == 0 &&
            strcmp(pt_catalog[i].measurement, measurement) == 0)
            return &pt_catalog[i];
    return NULL;
}
