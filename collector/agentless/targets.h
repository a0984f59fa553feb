/* Agentless targets: validation of what the API (or a test) gives, their
 * public JSON, the driver configuration built from them, and persistence
 * in data_dir/targets.db (credentials sealed, cred.h).
 *
 * A target is one VM polled through one driver:
 *   {"ns", "mcis", "vm", "csp"?, "driver", "instance", "region"?,
 *    "interval"?, "period"?, "lookback"?, "endpoint"?, "options"?,
 *    "enabled"?, "credentials"?}
 * docs/api.md "Agentless targets" lists each key; docs/drivers.md the
 * driver-specific options and credentials. */
#ifndef AGL_TARGETS_H
#define AGL_TARGETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cred.h"

/* Bounds of the per-target durations (also in docs/api.md). */
#define AGL_INTERVAL_MIN_S 1
#define AGL_INTERVAL_MAX_S 86400
#define AGL_INTERVAL_DEF_S 60
#define AGL_PERIOD_DEF_S   60
#define AGL_LOOKBACK_DEF_S 600
#define AGL_LOOKBACK_MAX_S (7 * 86400)
#define AGL_CRED_MAX       (16 * 1024) /* bytes of the credentials object as JSON */

struct agl_target {
    int64_t id;
    /* The validated target without credentials, defaults filled in, plus
     * "credentials_set": the names of the credential fields given. Owned. */
    json_t *pub;
    /* Quick access, pointing into pub. pub["managed"] is "api", or "config"
     * for a target of agentless.targets (changed only by editing it). */
    const char *ns, *mcis, *vm, *csp, *driver, *instance;
    int64_t interval_s, period_s, lookback_s;
    bool enabled;
    int64_t created_ns, updated_ns;
    uint8_t *blob; /* sealed credentials JSON; NULL when none were given */
    size_t blob_len;
};

/* Validates body (a JSON object) into t (pub, fields) and *creds (the
 * credentials object, or NULL when absent; the caller wipes it with
 * agl_json_wipe()). On a 400-worthy error returns PT_E_CONFIG with a
 * message naming the key. The driver's own create() is run on the result
 * (with a transport that refuses to connect) so its required keys are
 * checked now, not at the first poll. */
int agl_target_parse(const char *body, size_t len, struct agl_target *t, json_t **creds, char *err,
                     size_t errlen);
void agl_target_free(struct agl_target *t); /* the members; not t itself */

/* The public JSON of t (a new reference): pub plus id, created, updated.
 * Never contains a credential value. */
json_t *agl_target_json(const struct agl_target *t);

/* The driver configuration: pub's instance/region/endpoint, options merged
 * in, and creds (may be NULL) as "credentials". A new reference. */
json_t *agl_target_driver_conf(const struct agl_target *t, const json_t *creds);

/* Overwrites every string value under j with zeros (credentials). */
void agl_json_wipe(json_t *j);

/* Seals / opens t's credentials with context "target:<id>". */
int agl_target_seal(struct agl_target *t, const struct agl_key *key, const json_t *creds);
int agl_target_creds(const struct agl_target *t, const struct agl_key *key, json_t **creds);

/* ---- targets.db ---------------------------------------------------------- */

struct agl_db;
int agl_db_open(struct agl_db **out, const char *path, char *err, size_t errlen);
void agl_db_close(struct agl_db *db);
/* Every stored target, by id (*ts heap array of n; free each and it). */
int agl_db_load(struct agl_db *db, struct agl_target **ts, size_t *n, char *err, size_t errlen);
/* The next unused id. */
int agl_db_next_id(struct agl_db *db, int64_t *id);
/* Inserts or replaces t (by id). */
int agl_db_put(struct agl_db *db, const struct agl_target *t);
/* 0, or -ENOENT. */
int agl_db_delete(struct agl_db *db, int64_t id);

#endif
