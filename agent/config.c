/* The agent's configuration: defaults, loading, checks. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pt/conf.h"
#include "pt/err.h"
#include "pt/log.h"
#include "pt/time.h"
#include "pt/util.h"

#include "ring.h"

void agent_config_defaults(struct agent_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->collector, sizeof cfg->collector, "%s", AGENT_DEFAULT_COLLECTOR);
    snprintf(cfg->proc_root, sizeof cfg->proc_root, "%s", AGENT_DEFAULT_PROC_ROOT);
    snprintf(cfg->sys_root, sizeof cfg->sys_root, "%s", AGENT_DEFAULT_SYS_ROOT);
    cfg->interval_ns = PT_NS_PER_SEC;
    cfg->log_level = PT_LOG_INFO;
    cfg->ring_bytes = AGENT_DEFAULT_RING_BYTES;
    cfg->resend_rate = AGENT_DEFAULT_RESEND_RATE;
    cfg->resend_after_ns = AGENT_DEFAULT_RESEND_AFTER;
    char host[256];
    if (gethostname(host, sizeof host) == 0) {
        host[sizeof host - 1] = '\0';
        if (pt_utf8_ok(host, strlen(host), false))
            snprintf(cfg->host, sizeof cfg->host, "%s", host);
    }
}

uint64_t agent_config_derive_id(const char *ns, const char *mcis, const char *vm)
{
    const char *parts[] = {ns, mcis, vm};
    const uint64_t prime = UINT64_C(1099511628211);
    uint64_t h = UINT64_C(14695981039346656037);
    for (size_t i = 0; i < PT_ARRAY_LEN(parts); i++) {
        if (i) h *= prime; /* the NUL between parts (h ^ 0 is h) */
        for (const unsigned char *p = (const unsigned char *)parts[i]; *p; p++)
            h = (h ^ *p) * prime;
    }
    h &= (UINT64_C(1) << 53) - 1;
    return h ? h : 1;
}

/* A string key copied into dst[cap]. With required, it must be present;
 * with nonempty, not "". Identity strings must also pass the wire's rules. */
static int conf_copy(struct pt_conf *c, const char *key, bool required, bool nonempty,
                     bool identity, char *dst, size_t cap)
{
    const char *v;
    int rc = pt_conf_str(c, key, NULL, &v);
    if (rc) return rc;
    if (!v) return required ? pt_conf_fail(c, key, "required, but missing") : 0;
    size_t n = strlen(v);
    if (nonempty && n == 0) return pt_conf_fail(c, key, "must not be empty");
    if (n >= cap) return pt_conf_fail(c, key, "longer than %zu bytes", cap - 1);
    if (identity && !pt_utf8_ok(v, n, false))
        return pt_conf_fail(c, key, "must be UTF-8 without control characters");
    memcpy(dst, v, n + 1);
    return 0;
}

/* The glob list at key (an array of strings) appended to l. */
static int conf_globs(struct pt_conf *c, const char *key, struct agent_filter_list *l)
{
    const char **v;
    size_t n;
    int rc = pt_conf_strlist(c, key, &v, &n);
    if (rc) return rc;
    for (size_t i = 0; i < n && rc == 0; i++) {
        int e = agent_filter_add(l, v[i]);
        if (e == -E2BIG)
            rc = pt_conf_fail(c, key, "more than %d patterns", AGENT_FILTER_MAX_PATTERNS);
        else if (e == -ENAMETOOLONG)
            rc = pt_conf_fail(c, key, "pattern %zu is longer than %d bytes", i + 1,
                              AGENT_FILTER_PATTERN_LEN - 1);
        else if (e)
            rc = pt_conf_fail(c, key, "pattern %zu is empty", i + 1);
    }
    free(v);
    return rc;
}

/* "<name>.include" and "<name>.exclude" into f. */
static int conf_filter(struct pt_conf *c, const char *name, struct agent_filter *f)
{
    char key[64];
    snprintf(key, sizeof key, "%s.include", name);
    int rc = conf_globs(c, key, &f->include);
    if (rc) return rc;
    snprintf(key, sizeof key, "%s.exclude", name);
    return conf_globs(c, key, &f->exclude);
}

static int config_read(struct agent_config *cfg, struct pt_conf *c, bool need_identity)
{
    int rc;
    char host[256];
    uint16_t port;
    if ((rc = conf_copy(c, "collector", false, true, false, cfg->collector, sizeof cfg->collector)))
        return rc;
    if (pt_hostport_split(cfg->collector, host, sizeof host, &port) || host[0] == '\0')
        return pt_conf_fail(c, "collector", "expected \"host:port\", such as \"10.0.0.5:8094\"");

    int64_t id;
    if ((rc = pt_conf_int(c, "agent_id", 1, INT64_MAX, 0, &id))) return rc;
    cfg->agent_id = (uint64_t)id;

    const char *key;
    if ((rc = pt_conf_str(c, "key", NULL, &key))) return rc;
    if (key) {
        /* Never echo the key: the message goes to logs. */
        if (strlen(key) != 2 * PT_WIRE_KEY_LEN)
            return pt_conf_fail(c, "key",
                                "expected %d hex digits (a %d-byte key), got %zu characters",
                                2 * PT_WIRE_KEY_LEN, PT_WIRE_KEY_LEN, strlen(key));
        if (pt_hex_decode(key, cfg->key, PT_WIRE_KEY_LEN))
            return pt_conf_fail(c, "key", "expected hex digits only (0-9, a-f)");
        cfg->has_key = true;
    }

    const size_t idcap = PT_WIRE_MAX_STR + 1;
    if ((rc = conf_copy(c, "ns", need_identity, true, true, cfg->ns, idcap)) ||
        (rc = conf_copy(c, "mcis", need_identity, true, true, cfg->mcis, idcap)) ||
        (rc = conf_copy(c, "vm", need_identity, true, true, cfg->vm, idcap)) ||
        (rc = conf_copy(c, "csp", false, false, true, cfg->csp, idcap)) ||
        (rc = conf_copy(c, "host", false, false, true, cfg->host, idcap)))
        return rc;
    if (!cfg->agent_id) {
        /* The collector finds an agent's key by its id: a key without the
         * id it was issued with cannot be checked. */
        if (cfg->has_key)
            return pt_conf_fail(c, "agent_id",
                                "required with \"key\": give the id the key was issued for");
        cfg->agent_id = agent_config_derive_id(cfg->ns, cfg->mcis, cfg->vm);
        cfg->agent_id_derived = true;
    }

    if ((rc = pt_conf_duration(c, "interval", 100 * PT_NS_PER_MS, 3600 * PT_NS_PER_SEC,
                               cfg->interval_ns, &cfg->interval_ns)))
        return rc;
    if ((rc = conf_copy(c, "proc_root", false, true, false, cfg->proc_root, sizeof cfg->proc_root)))
        return rc;
    if ((rc = conf_copy(c, "sys_root", false, true, false, cfg->sys_root, sizeof cfg->sys_root)))
        return rc;
    if ((rc = pt_conf_bool(c, "per_cpu", cfg->per_cpu, &cfg->per_cpu))) return rc;
    if ((rc = conf_filter(c, "mounts", &cfg->mounts)) ||
        (rc = conf_filter(c, "devices", &cfg->devices)) ||
        (rc = conf_filter(c, "interfaces", &cfg->interfaces)))
        return rc;

    int64_t v;
    if ((rc = pt_conf_int(c, "ring.bytes", 0, INT64_C(1) << 30, (int64_t)cfg->ring_bytes, &v)))
        return rc;
    if (v > 0 && v < AGENT_RING_MIN_BYTES)
        return pt_conf_fail(c, "ring.bytes", "expected 0 (no ring) or at least %d bytes",
                            AGENT_RING_MIN_BYTES);
    cfg->ring_bytes = (size_t)v;
    if ((rc = pt_conf_int(c, "ring.resend_rate", 1, 100000, cfg->resend_rate, &v))) return rc;
    cfg->resend_rate = (uint32_t)v;
    if ((rc = pt_conf_duration(c, "ring.resend_after", 100 * PT_NS_PER_MS, 600 * PT_NS_PER_SEC,
                               cfg->resend_after_ns, &cfg->resend_after_ns)))
        return rc;

    const char *level;
    if ((rc = pt_conf_str(c, "log.level", NULL, &level))) return rc;
    if (level && (cfg->log_level = pt_log_level_parse(level)) < 0)
        return pt_conf_fail(c, "log.level",
                            "expected \"error\", \"warn\", \"info\" or \"debug\", got \"%s\"",
                            level);
    if ((rc = conf_copy(c, "log.file", false, true, false, cfg->log_file, sizeof cfg->log_file)))
        return rc;
    return pt_conf_finish(c);
}

static int config_done(struct pt_conf *c, int rc, char *err, size_t errlen)
{
    if (rc) snprintf(err, errlen, "%s", pt_conf_error(c));
    pt_conf_close(c);
    return rc;
}

int agent_config_load(struct agent_config *cfg, const char *path, bool need_identity, char *err,
                      size_t errlen)
{
    struct pt_conf c;
    int rc = pt_conf_load(&c, path);
    if (rc == 0) rc = config_read(cfg, &c, need_identity);
    return config_done(&c, rc, err, errlen);
}

int agent_config_parse(struct agent_config *cfg, const char *name, const char *text, size_t len,
                       bool need_identity, char *err, size_t errlen)
{
    struct pt_conf c;
    int rc = pt_conf_parse(&c, name, text, len);
    if (rc == 0) rc = config_read(cfg, &c, need_identity);
    return config_done(&c, rc, err, errlen);
}
