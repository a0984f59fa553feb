/* Agent registry: in-memory hash by id, persisted in state.db (SQLite). */
#include "registry.h"
#include "config.h"
#include "ingest/seqwin.h"
#include "pt/catalog.h"
#include "pt/err.h"
#include "pt/log.h"
#include "pt/time.h"
#include "pt/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#define SCHEMA_VERSION 1

struct agent {
    struct coll_agent_info info; /* identity, counters (missing/epoch/seq from win) */
    uint8_t key[PT_WIRE_KEY_LEN];
    struct pt_wire_key wkey;
    struct seqwin win;  /* admission: accepted frames (duplicates, replays) */
    struct seqwin dwin; /* durable frames: what acks say */
    struct sockaddr_storage addr;
    int64_t report_ts; /* sample time of the "agent" figures in info */
    bool ack_due;      /* news for the agent: queued in ackq */
    bool dirty;        /* runtime state changed since the last persist */
    bool unsaved;      /* registered by an insecure frame, not in the database yet */
    /* Lengths of the names in info, so admission needs no strlen(). */
    uint16_t ns_len, mcis_len, vm_len, host_len;
};

struct coll_registry {
    pthread_mutex_t lock;  /* the table and every agent in it */
    pthread_mutex_t admin; /* serialises database use */
    struct agent **slots;  /* open addressing by id, linear probing */
    size_t cap, count, auto_count;
    sqlite3 *db;
    struct coll_stats *stats;
    uint64_t *ackq; /* ids of agents with ack_due, in the order they got news */
    size_t nackq, cap_ackq;
};

/* ---- database boundary --------------------------------------------------- */

static int sql_fail(struct coll_registry *r, const char *what)
{
    PT_ERROR("registry", "state database: %s: %s", what, sqlite3_errmsg(r->db));
    return PT_E_STORE;
}

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS agents("
    " id INTEGER PRIMARY KEY, ns TEXT NOT NULL, mcis TEXT NOT NULL, vm TEXT NOT NULL,"
    " csp TEXT NOT NULL DEFAULT '', key BLOB, created INTEGER NOT NULL,"
    " host TEXT NOT NULL DEFAULT '', first_seen INTEGER NOT NULL DEFAULT 0,"
    " last_seen INTEGER NOT NULL DEFAULT 0, last_ts INTEGER NOT NULL DEFAULT 0,"
    " interval_ms INTEGER NOT NULL DEFAULT 0, epoch INTEGER NOT NULL DEFAULT 0,"
    " top_seq INTEGER NOT NULL DEFAULT 0, missing INTEGER NOT NULL DEFAULT 0,"
    " accepted INTEGER NOT NULL DEFAULT 0, rejected INTEGER NOT NULL DEFAULT 0,"
    " duplicate INTEGER NOT NULL DEFAULT 0, vals INTEGER NOT NULL DEFAULT 0,"
    " addr TEXT NOT NULL DEFAULT '',"
    " UNIQUE(ns, mcis, vm));";

/* Added with acknowledged delivery: the durable window's bitmap (epoch and
 * top_seq are the durable window's too), so a restart recognises exactly
 * the seqs already stored. */
static const char schema_dbits[] = "ALTER TABLE agents ADD COLUMN dbits BLOB;";

/* ---- hash table ---------------------------------------------------------- */

static size_t slot_of(const struct coll_registry *r, uint64_t id)
{
    uint64_t h = id * UINT64_C(0x9e3779b97f4a7c15);
    return (size_t)(h >> 32) & (r->cap - 1);
}

static struct agent *find(const struct coll_registry *r, uint64_t id)
{
    for (size_t i = slot_of(r, id);; i = (i + 1) & (r->cap - 1)) {
        struct agent *a = r->slots[i];
        if (!a) return NULL;
        if (a->info.id == id) return a;
    }
}

static int table_insert(struct coll_registry *r, struct agent *a)
{
    if ((r->count + 1) * 2 > r->cap) {
        size_t ncap = r->cap * 2;
        struct agent **old = r->slots, **ns = calloc(ncap, sizeof *ns);
        if (!ns) return -ENOMEM;
        size_t ocap = r->cap;
        r->slots = ns;
        r->cap = ncap;
        for (size_t i = 0; i < ocap; i++)
            if (old[i]) {
                size_t j = slot_of(r, old[i]->info.id);
                while (r->slots[j]) j = (j + 1) & (r->cap - 1);
                r->slots[j] = old[i];
            }
        free(old);
    }
    size_t j = slot_of(r, a->info.id);
    while (r->slots[j]) j = (j + 1) & (r->cap - 1);
    r->slots[j] = a;
    r->count++;
    atomic_store(&r->stats->agents_registered, (int64_t)r->count);
    return 0;
}

/* Removes by backward-shift deletion so probe chains stay intact. */
static struct agent *table_remove(struct coll_registry *r, uint64_t id)
{
    size_t i = slot_of(r, id);
    while (r->slots[i] && r->slots[i]->info.id != id) i = (i + 1) & (r->cap - 1);
    struct agent *a = r->slots[i];
    if (!a) return NULL;
    r->slots[i] = NULL;
    for (size_t j = (i + 1) & (r->cap - 1); r->slots[j]; j = (j + 1) & (r->cap - 1)) {
        size_t home = slot_of(r, r->slots[j]->info.id);
        /* Move j back to i when its home is not in (i, j]. */
        bool between = (i < j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            r->slots[i] = r->slots[j];
            r->slots[j] = NULL;
            i = j;
        }
    }
    r->count--;
    atomic_store(&r->stats->agents_registered, (int64_t)r->count);
    return a;
}

static void agent_free(struct agent *a)
{
    if (!a) return;
    pt_wire_key_close(&a->wkey);
    memset(a->key, 0, sizeof a->key);
    free(a);
}

/* Syncs the sequence fields of the snapshot from the window. */
static void fill_info(const struct agent *a, struct coll_agent_info *out)
{
    *out = a->info;
    out->missing = a->win.missing;
    out->epoch = a->win.epoch;
    out->last_seq = a->win.top;
    uint64_t cum = 0, top = 0;
    seqwin_ack(&a->dwin, &cum, &top, NULL, 0);
    if (a->dwin.epoch != a->win.epoch) cum = 0; /* nothing durable in this epoch yet */
    out->acked = cum;
    out->ack_lag = a->win.top > cum ? a->win.top - cum : 0;
    out->addr[0] = '\0';
    if (a->addr.ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)&a->addr;
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &s->sin_addr, ip, sizeof ip);
        snprintf(out->addr, sizeof out->addr, "%s:%u", ip, ntohs(s->sin_port));
    } else if (a->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&a->addr;
        char ip[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof ip);
        snprintf(out->addr, sizeof out->addr, "[%s]:%u", ip, ntohs(s->sin6_port));
    }
}

static struct agent *agent_new(uint64_t id, const char *ns, const char *mcis, const char *vm,
                               const char *csp, const uint8_t *key)
{
    struct agent *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->info.id = id;
    snprintf(a->info.ns, sizeof a->info.ns, "%s", ns);
    snprintf(a->info.mcis, sizeof a->info.mcis, "%s", mcis);
    snprintf(a->info.vm, sizeof a->info.vm, "%s", vm);
    snprintf(a->info.csp, sizeof a->info.csp, "%s", csp ? csp : "");
    a->ns_len = (uint16_t)strlen(a->info.ns);
    a->mcis_len = (uint16_t)strlen(a->info.mcis);
    a->vm_len = (uint16_t)strlen(a->info.vm);
    if (key) {
        memcpy(a->key, key, PT_WIRE_KEY_LEN);
        a->info.has_key = true;
        if (pt_wire_key_init(&a->wkey, a->key, PT_WIRE_KEY_LEN)) {
            free(a);
            return NULL;
        }
    }
    return a;
}

/* ---- open / load --------------------------------------------------------- */

static const char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

static int load_agents(struct coll_registry *r)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(r->db,
                           "SELECT id, ns, mcis, vm, csp, key, created, host, first_seen, "
                           "last_seen, last_ts, interval_ms, epoch, top_seq, missing, accepted, "
                           "rejected, duplicate, vals, dbits FROM agents",
                           -1, &st, NULL) != SQLITE_OK)
        return sql_fail(r, "loading agents");
    int rc = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const void *key = sqlite3_column_blob(st, 5);
        if (key && sqlite3_column_bytes(st, 5) != PT_WIRE_KEY_LEN) key = NULL;
        struct agent *a = agent_new((uint64_t)sqlite3_column_int64(st, 0), col_text(st, 1),
                                    col_text(st, 2), col_text(st, 3), col_text(st, 4), key);
        if (!a) {
            rc = -ENOMEM;
            break;
        }
        struct coll_agent_info *i = &a->info;
        i->created_ns = sqlite3_column_int64(st, 6);
        snprintf(i->host, sizeof i->host, "%s", col_text(st, 7));
        a->host_len = (uint16_t)strlen(i->host);
        i->first_seen_ns = sqlite3_column_int64(st, 8);
        i->last_seen_ns = sqlite3_column_int64(st, 9);
        i->last_ts_ns = sqlite3_column_int64(st, 10);
        i->interval_ms = (uint32_t)sqlite3_column_int64(st, 11);
        uint64_t epoch = (uint64_t)sqlite3_column_int64(st, 12),
                 top = (uint64_t)sqlite3_column_int64(st, 13),
                 missing = (uint64_t)sqlite3_column_int64(st, 14);
        seqwin_restore(&a->win, epoch, top, missing);
        if (sqlite3_column_bytes(st, 19) == (int)sizeof a->win.bits)
            /* Exactly the durable seqs: frames accepted but lost in a crash
             * before reaching the store are accepted again when resent. */
            memcpy(a->win.bits, sqlite3_column_blob(st, 19), sizeof a->win.bits);
        a->dwin = a->win;
        i->accepted = (uint64_t)sqlite3_column_int64(st, 15);
        i->rejected = (uint64_t)sqlite3_column_int64(st, 16);
        i->duplicate = (uint64_t)sqlite3_column_int64(st, 17);
        i->values = (uint64_t)sqlite3_column_int64(st, 18);
        if (!a->info.has_key) r->auto_count++;
        if ((rc = table_insert(r, a))) {
            agent_free(a);
            break;
        }
    }
    if (!rc && step != SQLITE_DONE) rc = sql_fail(r, "loading agents");
    sqlite3_finalize(st);
    return rc;
}

int coll_registry_open(struct coll_registry **out, const char *path, struct coll_stats *stats,
                       char *err, size_t errlen)
{
    struct coll_registry *r = calloc(1, sizeof *r);
    if (!r) return -ENOMEM;
    r->stats = stats;
    r->cap = 1024;
    r->slots = calloc(r->cap, sizeof *r->slots);
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutex_init(&r->admin, NULL);
    if (!r->slots) {
        coll_registry_close(r);
        return -ENOMEM;
    }
    int src = sqlite3_open_v2(
        path, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
    if (src != SQLITE_OK) {
        snprintf(err, errlen, "cannot open state database %s: %s", path,
                 r->db ? sqlite3_errmsg(r->db) : sqlite3_errstr(src));
        coll_registry_close(r);
        return PT_E_STORE;
    }
    sqlite3_busy_timeout(r->db, 5000);
    char *emsg = NULL;
    if (sqlite3_exec(r->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL,
                     &emsg) != SQLITE_OK ||
        sqlite3_exec(r->db, schema, NULL, NULL, &emsg) != SQLITE_OK ||
        (sqlite3_exec(r->db, "SELECT dbits FROM agents LIMIT 0", NULL, NULL, NULL) != SQLITE_OK &&
         sqlite3_exec(r->db, schema_dbits, NULL, NULL, &emsg) != SQLITE_OK)) {
        snprintf(err, errlen, "state database %s: %s", path, emsg ? emsg : "error");
        sqlite3_free(emsg);
        coll_registry_close(r);
        return PT_E_STORE;
    }
    int rc = load_agents(r);
    if (rc) {
        snprintf(err, errlen, "state database %s: cannot load agents: %s", path,
                 sqlite3_errmsg(r->db));
        coll_registry_close(r);
        return rc;
    }
    PT_INFO("registry", "%zu agents loaded from %s", r->count, path);
    *out = r;
    return 0;
}

void coll_registry_close(struct coll_registry *r)
{
    if (!r) return;
    if (r->db) {
        coll_registry_persist(r);
        sqlite3_close(r->db);
    }
    for (size_t i = 0; r->slots && i < r->cap; i++) agent_free(r->slots[i]);
    free(r->slots);
    free(r->ackq);
    pthread_mutex_destroy(&r->lock);
    pthread_mutex_destroy(&r->admin);
    free(r);
}

/* ---- administration (API threads) ---------------------------------------- */

static struct agent *find_by_name(const struct coll_registry *r, const char *ns, const char *mcis,
                                  const char *vm)
{
    for (size_t i = 0; i < r->cap; i++) {
        struct agent *a = r->slots[i];
        if (a && !strcmp(a->info.ns, ns) && !strcmp(a->info.mcis, mcis) && !strcmp(a->info.vm, vm))
            return a;
    }
    return NULL;
}

int coll_registry_add(struct coll_registry *r, const char *ns, const char *mcis, const char *vm,
                      const char *csp, struct coll_agent_info *info, uint8_t key[PT_WIRE_KEY_LEN])
{
    if (!coll_name_valid(ns, strlen(ns)) || !coll_name_valid(mcis, strlen(mcis)) ||
        !coll_name_valid(vm, strlen(vm)) || (csp && *csp && !coll_name_valid(csp, strlen(csp))))
        return -EINVAL;
    pthread_mutex_lock(&r->admin);
    pthread_mutex_lock(&r->lock);
    struct agent *old = find_by_name(r, ns, mcis, vm);
    if (old) fill_info(old, info);
    pthread_mutex_unlock(&r->lock);
    if (old) {
        pthread_mutex_unlock(&r->admin);
        return -EEXIST;
    }

    uint64_t id;
    int rc = 0;
    /* 53-bit ids stay exact in every JSON client. */
    do {
        if (pt_random(&id, sizeof id) || pt_random(key, PT_WIRE_KEY_LEN)) {
            pthread_mutex_unlock(&r->admin);
            return -EIO;
        }
        id &= (UINT64_C(1) << 53) - 1;
        pthread_mutex_lock(&r->lock);
        if (find(r, id)) id = 0;
        pthread_mutex_unlock(&r->lock);
    } while (id == 0);

    struct agent *a = agent_new(id, ns, mcis, vm, csp, key);
    if (!a) {
        pthread_mutex_unlock(&r->admin);
        return -ENOMEM;
    }
    a->info.created_ns = pt_now_ns();
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(r->db,
                           "INSERT INTO agents(id, ns, mcis, vm, csp, key, created) "
                           "VALUES(?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = sql_fail(r, "registering an agent");
    } else {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
        sqlite3_bind_text(st, 2, ns, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, mcis, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, vm, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, csp ? csp : "", -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 6, key, PT_WIRE_KEY_LEN, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, a->info.created_ns);
        int s = sqlite3_step(st);
        if (s == SQLITE_CONSTRAINT)
            rc = -EEXIST; /* an insecure agent with this name is in the database */
        else if (s != SQLITE_DONE)
            rc = sql_fail(r, "registering an agent");
    }
    sqlite3_finalize(st);
    if (!rc) {
        pthread_mutex_lock(&r->lock);
        rc = table_insert(r, a);
        if (!rc) fill_info(a, info);
        pthread_mutex_unlock(&r->lock);
    }
    pthread_mutex_unlock(&r->admin);
    if (rc) {
        agent_free(a);
        return rc;
    }
    PT_INFO("registry", "registered agent %llu as %s/%s/%s", (unsigned long long)id, ns, mcis, vm);
    return 0;
}

int coll_registry_remove(struct coll_registry *r, uint64_t id)
{
    pthread_mutex_lock(&r->admin);
    sqlite3_stmt *st = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(r->db, "DELETE FROM agents WHERE id=?", -1, &st, NULL) != SQLITE_OK) {
        rc = sql_fail(r, "removing an agent");
    } else {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
        if (sqlite3_step(st) != SQLITE_DONE) rc = sql_fail(r, "removing an agent");
    }
    sqlite3_finalize(st);
    struct agent *a = NULL;
    if (!rc) {
        pthread_mutex_lock(&r->lock);
        a = table_remove(r, id);
        if (a && !a->info.has_key) r->auto_count--;
        pthread_mutex_unlock(&r->lock);
        if (!a) rc = -ENOENT;
    }
    pthread_mutex_unlock(&r->admin);
    if (a) {
        PT_INFO("registry", "removed agent %llu (%s/%s/%s)", (unsigned long long)id, a->info.ns,
                a->info.mcis, a->info.vm);
        agent_free(a);
    }
    return rc;
}

int coll_registry_get(struct coll_registry *r, uint64_t id, struct coll_agent_info *info)
{
    pthread_mutex_lock(&r->lock);
    struct agent *a = find(r, id);
    if (a) fill_info(a, info);
    pthread_mutex_unlock(&r->lock);
    return a ? 0 : -ENOENT;
}

int coll_registry_find_name(struct coll_registry *r, const char *ns, const char *mcis,
                            const char *vm, struct coll_agent_info *info)
{
    pthread_mutex_lock(&r->lock);
    struct agent *a = find_by_name(r, ns, mcis, vm);
    if (a) fill_info(a, info);
    pthread_mutex_unlock(&r->lock);
    return a ? 0 : -ENOENT;
}

static int info_cmp(const void *pa, const void *pb)
{
    const struct coll_agent_info *a = pa, *b = pb;
    int c = strcmp(a->ns, b->ns);
    if (!c) c = strcmp(a->mcis, b->mcis);
    if (!c) c = strcmp(a->vm, b->vm);
    return c;
}

int coll_registry_list(struct coll_registry *r, struct coll_agent_info **out, size_t *n)
{
    pthread_mutex_lock(&r->lock);
    struct coll_agent_info *arr = malloc((r->count ? r->count : 1) * sizeof *arr);
    size_t k = 0;
    for (size_t i = 0; arr && i < r->cap; i++)
        if (r->slots[i]) fill_info(r->slots[i], &arr[k++]);
    pthread_mutex_unlock(&r->lock);
    if (!arr) return -ENOMEM;
    qsort(arr, k, sizeof *arr, info_cmp);
    *out = arr;
    *n = k;
    return 0;
}

size_t coll_registry_count_up(struct coll_registry *r, int64_t now_ns)
{
    size_t up = 0;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->cap; i++) {
        const struct agent *a = r->slots[i];
        if (!a || !a->info.last_seen_ns) continue;
        int64_t iv =
            a->info.interval_ms ? (int64_t)a->info.interval_ms * PT_NS_PER_MS : 10 * PT_NS_PER_SEC;
        if (now_ns - a->info.last_seen_ns <= 3 * iv) up++;
    }
    pthread_mutex_unlock(&r->lock);
    return up;
}

/* ---- admission (ingest thread) ------------------------------------------- */

static void set_addr(struct agent *a, const struct sockaddr *from)
{
    if (!from) return;
    size_t alen =
        from->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    memcpy(&a->addr, from, alen);
}

/* Queues a for an ack at the next coll_registry_acks() (lock held). */
static void ack_news(struct coll_registry *r, struct agent *a)
{
    if (a->ack_due) return;
    if (r->nackq == r->cap_ackq) {
        size_t ncap = r->cap_ackq ? 2 * r->cap_ackq : 256;
        uint64_t *q = realloc(r->ackq, ncap * sizeof *q);
        if (!q) return; /* the next news tries again; acks are cumulative */
        r->ackq = q;
        r->cap_ackq = ncap;
    }
    r->ackq[r->nackq++] = a->info.id;
    a->ack_due = true;
}

/* The agent says it owes nothing below seq oldest any more (acknowledged,
 * or dropped from its full ring): the durable window stops waiting for
 * those, so acks move on past frames that will never come. They stay
 * counted as missing. */
static void give_up_below(struct coll_registry *r, struct agent *a, uint64_t epoch, uint64_t oldest)
{
    if (epoch < a->dwin.epoch || oldest < 2) return;
    uint64_t cum = 0, top = 0;
    if (epoch == a->dwin.epoch) seqwin_ack(&a->dwin, &cum, &top, NULL, 0);
    if (oldest - 1 <= cum) return;
    uint64_t from = cum + 1;
    if (oldest - from > SEQWIN_BITS) from = oldest - SEQWIN_BITS;
    for (uint64_t s = from; s < oldest; s++) seqwin_check(&a->dwin, epoch, s);
    ack_news(r, a);
}

/* The agent's own figures from its measurement "agent" (agent/agent.c),
 * when the frame carries it; the newest sample's figures win. */
static void take_report(struct coll_registry *r, struct agent *a, const struct pt_frame *f)
{
    for (size_t m = 0; m < f->nmeas; m++) {
        const struct pt_meas *ms = &f->meas[m];
        if (!pt_str_eq(ms->name, "agent") || ms->ntags) continue;
        for (size_t k = 0; k < ms->nfields; k++) {
            const struct pt_field *fl = &ms->fields[k];
            if (fl->type != PT_F_UINT) continue;
            if (pt_str_eq(fl->key, "frames_sent"))
                a->info.agent_sent = fl->v.u;
            else if (pt_str_eq(fl->key, "frames_resent"))
                a->info.agent_resent = fl->v.u;
            else if (pt_str_eq(fl->key, "ring_dropped"))
                a->info.agent_ring_dropped = fl->v.u;
            else if (pt_str_eq(fl->key, "ring_frames"))
                a->info.agent_ring_frames = fl->v.u;
            else if (pt_str_eq(fl->key, "ring_oldest"))
                give_up_below(r, a, f->epoch, fl->v.u);
        }
        a->info.agent_reports = true;
        a->report_ts = f->ts_ns;
        return;
    }
}

static bool same(struct pt_str s, const char *name, uint16_t len)
{
    return s.len == len && memcmp(s.p, name, len) == 0;
}

static bool ident_matches(const struct agent *a, const struct pt_ident *id)
{
    return same(id->ns, a->info.ns, a->ns_len) && same(id->mcis, a->info.mcis, a->mcis_len) &&
           same(id->vm, a->info.vm, a->vm_len);
}

/* Registers an agent announced by an unsigned frame (insecure mode only). */
static struct agent *auto_register(struct coll_registry *r, const struct pt_frame *f,
                                   const struct coll_admit_opts *o)
{
    if (r->auto_count >= o->max_auto_agents) return NULL;
    const struct pt_ident *id = &f->id;
    if (!coll_name_valid(id->ns.p, id->ns.len) || !coll_name_valid(id->mcis.p, id->mcis.len) ||
        !coll_name_valid(id->vm.p, id->vm.len))
        return NULL;
    char ns[129], mcis[129], vm[129], csp[129];
    snprintf(ns, sizeof ns, "%.*s", (int)id->ns.len, id->ns.p);
    snprintf(mcis, sizeof mcis, "%.*s", (int)id->mcis.len, id->mcis.p);
    snprintf(vm, sizeof vm, "%.*s", (int)id->vm.len, id->vm.p);
    snprintf(csp, sizeof csp, "%.*s", (int)id->csp.len, id->csp.p);
    if (find_by_name(r, ns, mcis, vm)) return NULL; /* name taken by another id */
    struct agent *a = agent_new(f->agent_id, ns, mcis, vm, csp, NULL);
    if (!a) return NULL;
    a->info.created_ns = pt_now_ns();
    a->unsaved = true;
    if (table_insert(r, a)) {
        agent_free(a);
        return NULL;
    }
    r->auto_count++;
    PT_WARN("registry", "insecure mode: registered unsigned agent %llu as %s/%s/%s",
            (unsigned long long)f->agent_id, ns, mcis, vm);
    return a;
}

enum coll_admit coll_registry_admit(struct coll_registry *r, const struct pt_frame *f,
                                    uint64_t values, const void *buf, const struct sockaddr *from,
                                    const struct coll_admit_opts *o, int64_t now_ns,
                                    enum coll_reject *reason)
{
    enum coll_admit verdict = COLL_ADMIT_REJECT;
    pthread_mutex_lock(&r->lock);
    struct agent *a = find(r, f->agent_id);
    if (!a && o->insecure && !f->mac) a = auto_register(r, f, o);
    if (!a) {
        *reason = COLL_REJ_UNKNOWN_AGENT;
        goto out;
    }
    /* Authenticity first: nothing below may change state for a forged frame. */
    if (f->mac) {
        if (!a->info.has_key || pt_wire_verify(f, buf, &a->wkey) != 0) {
            *reason = COLL_REJ_AUTH;
            goto reject;
        }
    } else if (!o->insecure) {
        *reason = COLL_REJ_UNSIGNED;
        goto reject;
    }
    if (!ident_matches(a, &f->id)) {
        *reason = COLL_REJ_IDENTITY;
        goto reject;
    }
    if (f->ts_ns < now_ns - o->max_age_ns || f->ts_ns > now_ns + o->max_future_ns) {
        *reason = COLL_REJ_TIME;
        goto reject;
    }
    switch (seqwin_check(&a->win, f->epoch, f->seq)) {
    case SEQWIN_DUPLICATE:
        /* A resend: the agent missed an ack (or it is still in the write
         * queue). Answer with the durable window once more. */
        a->info.duplicate++;
        a->dirty = true;
        set_addr(a, from);
        ack_news(r, a);
        verdict = COLL_ADMIT_DUPLICATE;
        goto out;
    case SEQWIN_REPLAY:
        *reason = COLL_REJ_REPLAY;
        goto reject;
    case SEQWIN_NEW:
        break;
    }
    struct coll_agent_info *i = &a->info;
    if (!i->first_seen_ns) i->first_seen_ns = now_ns;
    i->last_seen_ns = now_ns;
    bool backfill = f->ts_ns < i->last_ts_ns;
    if (f->ts_ns > i->last_ts_ns) i->last_ts_ns = f->ts_ns;
    i->interval_ms = f->interval_ms;
    if (!same(f->id.host, i->host, a->host_len)) {
        snprintf(i->host, sizeof i->host, "%.*s", (int)f->id.host.len, f->id.host.p);
        a->host_len = (uint16_t)strlen(i->host);
    }
    i->accepted++;
    i->values += values;
    set_addr(a, from);
    if (f->ts_ns >= a->report_ts) take_report(r, a, f);
    a->dirty = true;
    verdict = backfill ? COLL_ADMIT_BACKFILL : COLL_ADMIT_OK;
    goto out;
reject:
    a->info.rejected++;
    a->dirty = true;
out:
    pthread_mutex_unlock(&r->lock);
    return verdict;
}

/* ---- acknowledged delivery ----------------------------------------------- */

/* Looks up the agent of each ref, remembering the last (a batch holds runs
 * of frames from the same agent). Lock held. */
static struct agent *ref_agent(struct coll_registry *r, const struct coll_frame_ref *ref,
                               struct agent **last)
{
    if (!*last || (*last)->info.id != ref->agent_id) *last = find(r, ref->agent_id);
    return *last;
}

void coll_registry_durable(struct coll_registry *r, const struct coll_frame_ref *refs, size_t n)
{
    struct agent *last = NULL;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < n; i++) {
        struct agent *a = ref_agent(r, &refs[i], &last);
        if (!a) continue; /* removed meanwhile */
        /* The durable window follows the admission window's epochs: a frame
         * of an older epoch than the durable window's is already beyond
         * acknowledging (the agent restarted). */
        if (seqwin_check(&a->dwin, refs[i].epoch, refs[i].seq) != SEQWIN_NEW) continue;
        a->dirty = true;
        ack_news(r, a);
    }
    pthread_mutex_unlock(&r->lock);
}

void coll_registry_forget(struct coll_registry *r, const struct coll_frame_ref *refs, size_t n)
{
    struct agent *last = NULL;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < n; i++) {
        struct agent *a = ref_agent(r, &refs[i], &last);
        if (a && seqwin_forget(&a->win, refs[i].epoch, refs[i].seq)) a->dirty = true;
    }
    pthread_mutex_unlock(&r->lock);
}

size_t coll_registry_acks(struct coll_registry *r, int64_t now_ns,
                          void (*send)(void *ctx, const struct sockaddr *to, const void *buf,
                                       size_t len),
                          void *ctx)
{
    uint8_t buf[256];
    size_t made = 0;
    pthread_mutex_lock(&r->lock);
    for (size_t q = 0; q < r->nackq; q++) {
        struct agent *a = find(r, r->ackq[q]);
        if (!a || !a->ack_due) continue;
        a->ack_due = false;
        if (!a->addr.ss_family || a->dwin.top == 0) continue;
        struct pt_wire_ack k;
        memset(&k, 0, sizeof k);
        k.agent_id = a->info.id;
        k.epoch = a->dwin.epoch;
        k.now_ns = now_ns;
        k.ngaps = (uint16_t)seqwin_ack(&a->dwin, &k.cum, &k.top, k.gaps, PT_WIRE_ACK_MAX_GAPS);
        size_t len;
        if (pt_wire_ack_encode(&k, a->info.has_key ? &a->wkey : NULL, buf, sizeof buf, &len))
            continue; /* cannot happen: seqwin_ack keeps the gap rules */
        send(ctx, (const struct sockaddr *)&a->addr, buf, len);
        a->info.acks_sent++;
        a->info.last_ack_ns = now_ns;
        made++;
    }
    r->nackq = 0;
    pthread_mutex_unlock(&r->lock);
    return made;
}

/* ---- persistence (writer thread) ----------------------------------------- */

struct snap {
    struct coll_agent_info info;
    bool unsaved;
    struct seqwin dwin; /* saved in place of the admission window */
};

int coll_registry_persist(struct coll_registry *r)
{
    pthread_mutex_lock(&r->admin);
    pthread_mutex_lock(&r->lock);
    size_t n = 0;
    for (size_t i = 0; i < r->cap; i++)
        if (r->slots[i] && r->slots[i]->dirty) n++;
    struct snap *s = n ? malloc(n * sizeof *s) : NULL;
    size_t k = 0;
    for (size_t i = 0; s && i < r->cap; i++) {
        struct agent *a = r->slots[i];
        if (!a || !a->dirty) continue;
        fill_info(a, &s[k].info);
        s[k].unsaved = a->unsaved;
        s[k].dwin = a->dwin;
        a->dirty = a->unsaved = false;
        k++;
    }
    pthread_mutex_unlock(&r->lock);
    int rc = 0;
    if (k) {
        sqlite3_stmt *ins = NULL, *upd = NULL;
        if (sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(r->db,
                               "INSERT OR IGNORE INTO agents(id, ns, mcis, vm, csp, created) "
                               "VALUES(?,?,?,?,?,?)",
                               -1, &ins, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(r->db,
                               "UPDATE agents SET host=?, first_seen=?, last_seen=?, last_ts=?, "
                               "interval_ms=?, epoch=?, top_seq=?, missing=?, accepted=?, "
                               "rejected=?, duplicate=?, vals=?, addr=?, dbits=? WHERE id=?",
                               -1, &upd, NULL) != SQLITE_OK) {
            rc = sql_fail(r, "saving agent state");
        }
        for (size_t i = 0; !rc && i < k; i++) {
            const struct coll_agent_info *a = &s[i].info;
            if (s[i].unsaved) {
                sqlite3_reset(ins);
                sqlite3_bind_int64(ins, 1, (sqlite3_int64)a->id);
                sqlite3_bind_text(ins, 2, a->ns, -1, SQLITE_STATIC);
                sqlite3_bind_text(ins, 3, a->mcis, -1, SQLITE_STATIC);
                sqlite3_bind_text(ins, 4, a->vm, -1, SQLITE_STATIC);
                sqlite3_bind_text(ins, 5, a->csp, -1, SQLITE_STATIC);
                sqlite3_bind_int64(ins, 6, a->created_ns);
                if (sqlite3_step(ins) != SQLITE_DONE) rc = sql_fail(r, "saving agent state");
            }
            sqlite3_reset(upd);
            sqlite3_bind_text(upd, 1, a->host, -1, SQLITE_STATIC);
            sqlite3_bind_int64(upd, 2, a->first_seen_ns);
            sqlite3_bind_int64(upd, 3, a->last_seen_ns);
            sqlite3_bind_int64(upd, 4, a->last_ts_ns);
            sqlite3_bind_int64(upd, 5, a->interval_ms);
            /* The durable window: after a restart, a seq counts as seen
             * only if its points were stored. */
            const struct seqwin *dw = &s[i].dwin;
            sqlite3_bind_int64(upd, 6, (sqlite3_int64)dw->epoch);
            sqlite3_bind_int64(upd, 7, (sqlite3_int64)dw->top);
            sqlite3_bind_int64(upd, 8, (sqlite3_int64)a->missing);
            sqlite3_bind_int64(upd, 9, (sqlite3_int64)a->accepted);
            sqlite3_bind_int64(upd, 10, (sqlite3_int64)a->rejected);
            sqlite3_bind_int64(upd, 11, (sqlite3_int64)a->duplicate);
            sqlite3_bind_int64(upd, 12, (sqlite3_int64)a->values);
            sqlite3_bind_text(upd, 13, a->addr, -1, SQLITE_STATIC);
            sqlite3_bind_blob(upd, 14, dw->bits, sizeof dw->bits, SQLITE_STATIC);
            sqlite3_bind_int64(upd, 15, (sqlite3_int64)a->id);
            if (!rc && sqlite3_step(upd) != SQLITE_DONE) rc = sql_fail(r, "saving agent state");
        }
        sqlite3_finalize(ins);
        sqlite3_finalize(upd);
        sqlite3_exec(r->db, rc ? "ROLLBACK" : "COMMIT", NULL, NULL, NULL);
    }
    pthread_mutex_unlock(&r->admin);
    if (rc) {
        /* Try again next time: mark everything we failed to save. */
        pthread_mutex_lock(&r->lock);
        for (size_t i = 0; i < k; i++) {
            struct agent *a = find(r, s[i].info.id);
            if (a) {
                a->dirty = true;
                a->unsaved |= s[i].unsaved;
            }
        }
        pthread_mutex_unlock(&r->lock);
    }
    free(s);
    return rc;
}
