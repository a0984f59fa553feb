/* Agentless targets: validation, public JSON, driver configuration and
 * targets.db. */
#include "targets.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "config.h"
#include "drv.h"
#include "pt/conf.h"
#include "pt/err.h"
#include "pt/time.h"

/* ---- validation ---------------------------------------------------------- */

static bool printable(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return false;
    return true;
}

static bool region_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

static bool url_ok(const char *s)
{
    if (strncmp(s, "http://", 7) && strncmp(s, "https://", 8)) return false;
    if (!printable(s, 1024) || strchr(s, ' ')) return false;
    /* No user:password@ in the authority: it would be shown by GET and
     * logged with errors. Credentials go in "credentials". */
    const char *auth = strstr(s, "://") + 3;
    size_t alen = strcspn(auth, "/?#");
    return !memchr(auth, '@', alen);
}

/* A transport that never connects: create() must not need the network. */
static int no_request(struct drv_http *h, const struct drv_http_req *req,
                      struct drv_http_resp *resp, struct drv_error *err)
{
    (void)h;
    (void)req;
    memset(resp, 0, sizeof *resp);
    err->code = DRV_E_TRANSPORT;
    snprintf(err->message, sizeof err->message, "validation only: no network");
    return DRV_E_TRANSPORT;
}

void agl_json_wipe(json_t *j)
{
    if (!j) return;
    if (json_is_string(j)) {
        agl_wipe((char *)json_string_value(j), json_string_length(j));
    } else if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) agl_json_wipe(v);
    } else if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) agl_json_wipe(v);
    }
}

/* Points t's quick-access fields into t->pub. */
static void target_fill(struct agl_target *t)
{
    const json_t *p = t->pub;
    t->ns = json_string_value(json_object_get(p, "ns"));
    t->mcis = json_string_value(json_object_get(p, "mcis"));
    t->vm = json_string_value(json_object_get(p, "vm"));
    t->csp = json_string_value(json_object_get(p, "csp"));
    t->driver = json_string_value(json_object_get(p, "driver"));
    t->instance = json_string_value(json_object_get(p, "instance"));
    t->interval_s = json_integer_value(json_object_get(p, "interval_s"));
    t->period_s = json_integer_value(json_object_get(p, "period_s"));
    t->lookback_s = json_integer_value(json_object_get(p, "lookback_s"));
    t->enabled = json_is_true(json_object_get(p, "enabled"));
}

/* Keys of GET's answer that a body may carry back; ignored. */
static const char *const read_only[] = {"id",      "created",         "updated", "status",
                                        "managed", "credentials_set", NULL};

/* key as a duration ("5m", or seconds), or key_s ("interval_s", as GET
 * shows it) as whole seconds; not both. Bounds in seconds; *out in ns. */
static int get_secs(struct pt_conf *c, const char *key, int64_t min, int64_t max, int64_t def,
                    int64_t *out)
{
    char key_s[32];
    snprintf(key_s, sizeof key_s, "%s_s", key);
    if (!pt_conf_json(c, key_s))
        return pt_conf_duration(c, key, min * PT_NS_PER_SEC, max * PT_NS_PER_SEC,
                                def * PT_NS_PER_SEC, out);
    if (pt_conf_json(c, key))
        return pt_conf_fail(c, key_s, "give either \"%s\" or \"%s\", not both", key, key_s);
    int64_t v;
    int rc = pt_conf_int(c, key_s, min, max, def, &v);
    *out = v * PT_NS_PER_SEC;
    return rc;
}

static const char *const reserved_options[] = {"instance",    "region", "endpoint",
                                               "credentials", "driver", NULL};

static int check_driver(const struct agl_target *t, const json_t *creds, char *err, size_t errlen)
{
    const struct drv_ops *ops = drv_lookup(t->driver);
    struct drv_http h = {no_request, NULL, NULL};
    struct drv_env env = {&h, NULL};
    struct drv *d = NULL;
    struct drv_error e;
    memset(&e, 0, sizeof e);
    json_t *conf = agl_target_driver_conf(t, creds);
    if (!conf) return -ENOMEM;
    int rc = ops->create(conf, &env, &d, &e);
    agl_json_wipe(json_object_get(conf, "credentials"));
    json_decref(conf);
    if (rc < 0) {
        snprintf(err, errlen, "driver \"%s\" refuses this target: %s", t->driver,
                 e.message[0] ? e.message : drv_strerror(rc));
        return PT_E_CONFIG;
    }
    ops->destroy(d);
    return 0;
}

int agl_target_parse(const char *body, size_t len, struct agl_target *t, json_t **creds, char *err,
                     size_t errlen)
{
    memset(t, 0, sizeof *t);
    *creds = NULL;
    struct pt_conf c;
    const char *ns = NULL, *mcis = NULL, *vm = NULL, *csp = NULL, *driver = NULL, *instance = NULL,
               *region = NULL, *endpoint = NULL;
    int64_t interval = 0, period = 0, lookback = 0;
    bool enabled = true;
    json_t *options = NULL, *cr = NULL;
    int rc = pt_conf_parse(&c, "request body", body, len);
    /* GET shows an unset region or endpoint as null: null means absent. */
    for (const char *const *k = (const char *const[]){"region", "endpoint", NULL}; !rc && *k; k++)
        if (json_is_null(json_object_get(c.root, *k))) json_object_del(c.root, *k);
    if (!rc && !(rc = pt_conf_str(&c, "ns", NULL, &ns)) &&
        !(rc = pt_conf_str(&c, "mcis", NULL, &mcis)) && !(rc = pt_conf_str(&c, "vm", NULL, &vm)) &&
        !(rc = pt_conf_str(&c, "csp", NULL, &csp)) &&
        !(rc = pt_conf_str(&c, "driver", NULL, &driver)) &&
        !(rc = pt_conf_str(&c, "instance", NULL, &instance)) &&
        !(rc = pt_conf_str(&c, "region", NULL, &region)) &&
        !(rc = pt_conf_str(&c, "endpoint", NULL, &endpoint)) &&
        !(rc = get_secs(&c, "interval", AGL_INTERVAL_MIN_S, AGL_INTERVAL_MAX_S, AGL_INTERVAL_DEF_S,
                        &interval)) &&
        !(rc = get_secs(&c, "period", 1, 86400, AGL_PERIOD_DEF_S, &period)) &&
        !(rc = get_secs(&c, "lookback", 1, AGL_LOOKBACK_MAX_S, AGL_LOOKBACK_DEF_S, &lookback)) &&
        !(rc = pt_conf_bool(&c, "enabled", true, &enabled))) {
        options = pt_conf_json(&c, "options");
        cr = pt_conf_json(&c, "credentials");
        /* What GET adds is accepted back and ignored, so a GET, edit, PUT
         * round trip works. */
        for (const char *const *k = read_only; *k; k++) pt_conf_json(&c, *k);
        rc = pt_conf_finish(&c);
    }
    const char *names[] = {"ns", "mcis", "vm"};
    const char *vals[] = {ns, mcis, vm};
    for (int i = 0; i < 3 && !rc; i++) {
        if (!vals[i])
            rc = pt_conf_fail(&c, names[i], "is required");
        else if (!coll_name_valid(vals[i], strlen(vals[i])))
            rc = pt_conf_fail(&c, names[i], "must be 1 to 128 characters of A-Z a-z 0-9 . _ - : @");
    }
    if (!rc && !driver)
        rc = pt_conf_fail(&c, "driver",
                          "is required: aws, azure, gcp, alibaba, tencent, openstack, ncp or "
                          "cbspider");
    if (!rc && !drv_lookup(driver))
        rc = pt_conf_fail(&c, "driver",
                          "unknown driver \"%.40s\" (known: aws, azure, gcp, alibaba, tencent, "
                          "openstack, ncp, cbspider)",
                          driver);
    if (!rc && csp && !coll_name_valid(csp, strlen(csp)))
        rc = pt_conf_fail(&c, "csp", "must be 1 to 128 characters of A-Z a-z 0-9 . _ - : @");
    if (!rc && !instance)
        rc = pt_conf_fail(&c, "instance", "is required: the cloud's id of the VM");
    if (!rc && !printable(instance, 1024))
        rc = pt_conf_fail(&c, "instance", "must be 1 to 1024 printable characters");
    if (!rc && region && !region_ok(region))
        rc = pt_conf_fail(&c, "region", "must be 1 to 64 characters of A-Z a-z 0-9 - _ .");
    if (!rc && endpoint && !url_ok(endpoint))
        rc = pt_conf_fail(&c, "endpoint",
                          "expected an http:// or https:// URL of at most 1024 characters, "
                          "without user:password@ (credentials go in \"credentials\")");
    if (!rc && (period % PT_NS_PER_SEC || interval % PT_NS_PER_SEC || lookback % PT_NS_PER_SEC))
        rc = pt_conf_fail(&c,
                          period % PT_NS_PER_SEC     ? "period"
                          : interval % PT_NS_PER_SEC ? "interval"
                                                     : "lookback",
                          "must be a whole number of seconds");
    if (!rc && lookback < period)
        rc = pt_conf_fail(&c, "lookback", "must be at least the period (%llds)",
                          (long long)(period / PT_NS_PER_SEC));
    if (!rc && options && !json_is_object(options))
        rc = pt_conf_fail(&c, "options", "expected an object of driver keys (docs/drivers.md)");
    for (int i = 0; !rc && options && reserved_options[i]; i++)
        if (json_object_get(options, reserved_options[i]))
            rc = pt_conf_fail(&c, "options", "\"%s\" is a target key of its own, not an option",
                              reserved_options[i]);
    if (!rc && cr && !json_is_object(cr))
        rc = pt_conf_fail(&c, "credentials",
                          "expected an object, e.g. {\"access_key_id\": ..., "
                          "\"secret_access_key\": ...} (docs/drivers.md)");
    if (!rc && cr) {
        char *s = json_dumps(cr, JSON_COMPACT);
        size_t n = s ? strlen(s) : 0;
        if (s) {
            agl_wipe(s, n);
            free(s);
        }
        if (n > AGL_CRED_MAX)
            rc = pt_conf_fail(&c, "credentials", "larger than %d bytes", AGL_CRED_MAX);
    }
    if (rc) {
        snprintf(err, errlen, "%s", pt_conf_error(&c));
        agl_json_wipe(cr);
        pt_conf_close(&c);
        return PT_E_CONFIG;
    }
    json_t *pub = json_object();
    json_t *set = json_array();
    if (cr) {
        const char *k;
        json_t *v;
        json_object_foreach(cr, k, v) json_array_append_new(set, json_string(k));
        *creds = json_deep_copy(cr);
        agl_json_wipe(cr);
    }
    json_object_set_new(pub, "ns", json_string(ns));
    json_object_set_new(pub, "mcis", json_string(mcis));
    json_object_set_new(pub, "vm", json_string(vm));
    json_object_set_new(pub, "csp", json_string(csp ? csp : driver));
    json_object_set_new(pub, "driver", json_string(driver));
    json_object_set_new(pub, "instance", json_string(instance));
    json_object_set_new(pub, "region", region ? json_string(region) : json_null());
    json_object_set_new(pub, "endpoint", endpoint ? json_string(endpoint) : json_null());
    json_object_set_new(pub, "interval_s", json_integer(interval / PT_NS_PER_SEC));
    json_object_set_new(pub, "period_s", json_integer(period / PT_NS_PER_SEC));
    json_object_set_new(pub, "lookback_s", json_integer(lookback / PT_NS_PER_SEC));
    json_object_set_new(pub, "enabled", json_boolean(enabled));
    json_object_set_new(pub, "options", options ? json_deep_copy(options) : json_object());
    json_object_set_new(pub, "credentials_set", set);
    json_object_set_new(pub, "managed", json_string("api")); /* "config": agentless.targets */
    pt_conf_close(&c);
    if (cr && !*creds) {
        json_decref(pub);
        return -ENOMEM;
    }
    t->pub = pub;
    target_fill(t);
    if ((rc = check_driver(t, *creds, err, errlen))) {
        agl_json_wipe(*creds);
        json_decref(*creds);
        *creds = NULL;
        agl_target_free(t);
        return rc;
    }
    return 0;
}

void agl_target_free(struct agl_target *t)
{
    if (!t) return;
    json_decref(t->pub);
    if (t->blob) agl_wipe(t->blob, t->blob_len);
    free(t->blob);
    memset(t, 0, sizeof *t);
}

static json_t *time_json(int64_t ns)
{
    char buf[64];
    if (!ns || pt_time_format(ns, 9, buf, sizeof buf) < 0) return json_null();
    return json_string(buf);
}

json_t *agl_target_json(const struct agl_target *t)
{
    json_t *j = json_deep_copy(t->pub);
    if (!j) return NULL;
    json_object_set_new(j, "id", json_integer((json_int_t)t->id));
    json_object_set_new(j, "created", time_json(t->created_ns));
    json_object_set_new(j, "updated", time_json(t->updated_ns));
    return j;
}

json_t *agl_target_driver_conf(const struct agl_target *t, const json_t *creds)
{
    json_t *conf = json_deep_copy(json_object_get(t->pub, "options"));
    if (!conf) conf = json_object();
    if (!conf) return NULL;
    json_object_set_new(conf, "instance", json_string(t->instance));
    json_t *r = json_object_get(t->pub, "region"), *e = json_object_get(t->pub, "endpoint");
    if (json_is_string(r)) json_object_set(conf, "region", r);
    if (json_is_string(e)) json_object_set(conf, "endpoint", e);
    if (creds) json_object_set_new(conf, "credentials", json_deep_copy(creds));
    return conf;
}

int agl_target_seal(struct agl_target *t, const struct agl_key *key, const json_t *creds)
{
    if (t->blob) agl_wipe(t->blob, t->blob_len);
    free(t->blob);
    t->blob = NULL;
    t->blob_len = 0;
    if (!creds) return 0;
    char ctx[40];
    snprintf(ctx, sizeof ctx, "target:%lld", (long long)t->id);
    char *s = json_dumps(creds, JSON_COMPACT);
    if (!s) return -ENOMEM;
    size_t n = strlen(s);
    int rc = agl_cred_seal(key, ctx, s, n, &t->blob, &t->blob_len);
    agl_wipe(s, n);
    free(s);
    return rc;
}

int agl_target_creds(const struct agl_target *t, const struct agl_key *key, json_t **creds)
{
    *creds = NULL;
    if (!t->blob) return 0;
    char ctx[40], *s;
    size_t n;
    snprintf(ctx, sizeof ctx, "target:%lld", (long long)t->id);
    int rc = agl_cred_open(key, ctx, t->blob, t->blob_len, &s, &n);
    if (rc) return rc;
    *creds = json_loadb(s, n, 0, NULL);
    agl_wipe(s, n);
    free(s);
    return *creds ? 0 : AGL_E_FORMAT;
}

/* ---- targets.db ---------------------------------------------------------- */

struct agl_db {
    sqlite3 *db;
    pthread_mutex_t lock; /* API threads write one at a time */
};

int agl_db_open(struct agl_db **out, const char *path, char *err, size_t errlen)
{
    struct agl_db *d = calloc(1, sizeof *d);
    if (!d) return -ENOMEM;
    int rc = sqlite3_open_v2(
        path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(d->db,
                          "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=5000;"
                          "CREATE TABLE IF NOT EXISTS targets(id INTEGER PRIMARY KEY AUTOINCREMENT,"
                          " conf TEXT NOT NULL, cred BLOB, created INTEGER NOT NULL,"
                          " updated INTEGER NOT NULL)",
                          NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "targets database %s: %s", path,
                 d->db ? sqlite3_errmsg(d->db) : "cannot open");
        sqlite3_close(d->db);
        free(d);
        return PT_E_STORE;
    }
    chmod(path, 0600); /* sealed, but nobody else needs even the target list */
    pthread_mutex_init(&d->lock, NULL);
    *out = d;
    return 0;
}

void agl_db_close(struct agl_db *db)
{
    if (!db) return;
    sqlite3_close(db->db);
    pthread_mutex_destroy(&db->lock);
    free(db);
}

int agl_db_load(struct agl_db *db, struct agl_target **ts, size_t *n, char *err, size_t errlen)
{
    *ts = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->db,
                           "SELECT id, conf, cred, created, updated FROM targets ORDER BY id", -1,
                           &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "targets database: %s", sqlite3_errmsg(db->db));
        return PT_E_STORE;
    }
    int rc = 0, s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        struct agl_target *nt = realloc(*ts, (*n + 1) * sizeof **ts);
        if (!nt) {
            rc = -ENOMEM;
            break;
        }
        *ts = nt;
        struct agl_target *t = &nt[*n];
        memset(t, 0, sizeof *t);
        t->id = sqlite3_column_int64(st, 0);
        t->pub = json_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);
        if (!json_is_object(t->pub)) {
            json_decref(t->pub);
            snprintf(err, errlen, "targets database: target %lld is not valid JSON",
                     (long long)t->id);
            rc = PT_E_STORE;
            break;
        }
        int bl = sqlite3_column_bytes(st, 2);
        if (bl > 0) {
            t->blob = malloc((size_t)bl);
            if (!t->blob) {
                json_decref(t->pub);
                rc = -ENOMEM;
                break;
            }
            memcpy(t->blob, sqlite3_column_blob(st, 2), (size_t)bl);
            t->blob_len = (size_t)bl;
        }
        t->created_ns = sqlite3_column_int64(st, 3);
        t->updated_ns = sqlite3_column_int64(st, 4);
        target_fill(t);
        (*n)++;
    }
    if (!rc && s != SQLITE_DONE) {
        snprintf(err, errlen, "targets database: %s", sqlite3_errmsg(db->db));
        rc = PT_E_STORE;
    }
    sqlite3_finalize(st);
    if (rc) {
        for (size_t i = 0; i < *n; i++) agl_target_free(&(*ts)[i]);
        free(*ts);
        *ts = NULL;
        *n = 0;
    }
    return rc;
}

int agl_db_next_id(struct agl_db *db, int64_t *id)
{
    sqlite3_stmt *st;
    pthread_mutex_lock(&db->lock);
    /* Ids are never reused: AUTOINCREMENT's sqlite_sequence remembers the
     * largest id ever stored, so a deleted target's id stays retired. */
    int rc = sqlite3_prepare_v2(db->db,
                                "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name ="
                                " 'targets'), 0), coalesce((SELECT max(id) FROM targets), 0)) + 1",
                                -1, &st, NULL);
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        *id = sqlite3_column_int64(st, 0);
    else
        rc = SQLITE_ERROR;
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->lock);
    return rc == SQLITE_OK ? 0 : PT_E_STORE;
}

int agl_db_put(struct agl_db *db, const struct agl_target *t)
{
    char *conf = json_dumps(t->pub, JSON_COMPACT);
    if (!conf) return -ENOMEM;
    sqlite3_stmt *st;
    pthread_mutex_lock(&db->lock);
    int rc = sqlite3_prepare_v2(db->db,
                                "INSERT OR REPLACE INTO targets(id, conf, cred, created, updated)"
                                " VALUES(?, ?, ?, ?, ?)",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, t->id);
        sqlite3_bind_text(st, 2, conf, -1, SQLITE_STATIC);
        if (t->blob)
            sqlite3_bind_blob(st, 3, t->blob, (int)t->blob_len, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 3);
        sqlite3_bind_int64(st, 4, t->created_ns);
        sqlite3_bind_int64(st, 5, t->updated_ns);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->lock);
    free(conf);
    return rc == SQLITE_OK ? 0 : PT_E_STORE;
}

int agl_db_delete(struct agl_db *db, int64_t id)
{
    sqlite3_stmt *st;
    pthread_mutex_lock(&db->lock);
    int rc = sqlite3_prepare_v2(db->db, "DELETE FROM targets WHERE id = ?", -1, &st, NULL), n = 0;
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, id);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        n = sqlite3_changes(db->db);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->lock);
    if (rc != SQLITE_OK) return PT_E_STORE;
    return n ? 0 : -ENOENT;
}
