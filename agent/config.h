/* The agent's configuration file (JSON, docs/agent.md):
 *
 *   {"collector": "10.0.0.5:8094", "agent_id": 123, "key": "<64 hex>",
 *    "ns": "ns01", "mcis": "web", "vm": "web-1", "csp": "aws",
 *    "interval": "1s", "log": {"level": "info"}}
 *
 * Unknown keys are errors, and every error names the file, the line and the
 * key. The key itself is never echoed into a message. */
#ifndef AGENT_CONFIG_H
#define AGENT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pt/wire.h"

#include "collectors/filter.h"

#define AGENT_CONFIG_PATH       "/etc/pantala/agent.json"
#define AGENT_DEFAULT_COLLECTOR "127.0.0.1:8094"
#define AGENT_DEFAULT_PROC_ROOT "/proc"
#define AGENT_DEFAULT_SYS_ROOT  "/sys"
/* The ring of unacknowledged frames (agent/ring.h, docs/agent.md). */
#define AGENT_DEFAULT_RING_BYTES   (1024 * 1024)
#define AGENT_DEFAULT_RESEND_RATE  50
#define AGENT_DEFAULT_RESEND_AFTER (2 * INT64_C(1000000000))

struct agent_config {
    char collector[300]; /* "host:port", checked by pt_hostport_split() */
    uint64_t agent_id;   /* never 0 after a load */
    bool agent_id_derived;
    bool has_key; /* false: frames go unsigned (insecure lab mode) */
    uint8_t key[PT_WIRE_KEY_LEN];
    /* Identity: ns, mcis and vm are 1-255 bytes (empty only with --once);
     * csp and host 0-255; all UTF-8 without control characters. */
    char ns[PT_WIRE_MAX_STR + 1], mcis[PT_WIRE_MAX_STR + 1], vm[PT_WIRE_MAX_STR + 1];
    char csp[PT_WIRE_MAX_STR + 1], host[PT_WIRE_MAX_STR + 1];
    int64_t interval_ns; /* 100 ms .. 1 h */
    char proc_root[1024];
    char sys_root[1024];
    bool per_cpu; /* a cpu series per CPU besides the host's */
    /* Which objects are reported (docs/agent.md): mount points, block
     * device names, interface names. */
    struct agent_filter mounts, devices, interfaces;
    /* Acknowledged delivery: ring_bytes 0 turns it off (frames are sent
     * once, acks ignored); else 64 KiB .. 1 GiB. */
    size_t ring_bytes;
    uint32_t resend_rate;    /* frames per second, 1 .. 100000 */
    int64_t resend_after_ns; /* 100 ms .. 10 min */
    int log_level;           /* enum pt_log_level */
    char log_file[1024];
};

/* Fills cfg with the defaults (host from gethostname()). */
void agent_config_defaults(struct agent_config *cfg);

/* Loads the file at path over cfg's defaults. need_identity requires ns,
 * mcis and vm (everything but --once needs them). Returns 0, -errno when the
 * file cannot be read, or PT_E_CONFIG; err then holds the reason, as
 * "path:line: key \"name\": what was expected". */
int agent_config_load(struct agent_config *cfg, const char *path, bool need_identity, char *err,
                      size_t errlen);

/* The same for a document in memory; name stands for the file in messages. */
int agent_config_parse(struct agent_config *cfg, const char *name, const char *text, size_t len,
                       bool need_identity, char *err, size_t errlen);

/* The agent id used when the file has none: FNV-1a 64 of
 * "ns\0mcis\0vm", kept to 53 bits (exact in a JSON number), never 0. */
uint64_t agent_config_derive_id(const char *ns, const char *mcis, const char *vm);

#endif
