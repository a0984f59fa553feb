/* The agentless poller inside pantalad (issue 7, docs/drivers.md
 * "Agentless targets in pantalad").
 *
 * Owns the targets (targets.db, credentials sealed under the key file),
 * polls each at its interval -- a scheduler thread starts the due polls,
 * and every poll runs as a drv_call on one drv_multi (libcurl's multi
 * interface, drv.h), all at once on one thread --, keeps a token bucket per driver and
 * backs off on throttling (the provider's Retry-After at least) and on
 * failures, and hands what it fetched to the libuv loop thread as wire
 * frames (frames.h): there they go to the writer exactly like accepted
 * agent frames, and to the alert engine through the feed hook.
 *
 * Threads: agl_open/agl_close and the loop callbacks on the loop thread;
 * the agl_api_* functions from API threads; the scheduler and drv_multi's
 * thread internally. */
#ifndef AGL_POLLER_H
#define AGL_POLLER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "pt/wire.h"
#include "stats.h"
#include "writer.h"

struct agl;

/* Called on the loop thread with every frame of fetched data newer than
 * what the target already delivered (re-fetched overlap is re-stored, never
 * re-fed). The alert engine plugs in here (alert_engine_feed). */
typedef void (*agl_feed_fn)(void *ctx, const struct pt_frame *f, int64_t now_ns);

struct agl_rate {
    char driver[16];
    int per_s;
};

struct agl_opts {
    const char *db_path;          /* targets.db */
    const char *key_file;         /* created 0600 when absent */
    int concurrency;              /* polls in flight at once */
    int rate_per_s;               /* polls per second per driver (token bucket, burst = rate) */
    const struct agl_rate *rates; /* per-driver overrides, nrates of them */
    size_t nrates;
    int64_t max_backoff_ns; /* ceiling of failure/throttle back-off */
    size_t queue_frames;    /* frames waiting for the loop thread at most */
    /* agentless.targets: objects like POST bodies, with "credentials_file"
     * (a JSON file others may not read) instead of "credentials". Synced
     * into targets.db at open: same ns/mcis/vm/driver keeps its id; config
     * targets no longer listed are deleted. NULL: none. */
    const json_t *config_targets;
    struct coll_writer *writer;
    struct coll_stats *stats;
    agl_feed_fn feed; /* NULL: no alerting */
    void *feed_ctx;
};

/* Loads the key and the targets, starts the threads, registers its async
 * handle on loop. On failure returns <0 with a message in err. */
int agl_open(struct agl **out, uv_loop_t *loop, const struct agl_opts *o, char *err, size_t errlen);
/* Loop thread, when shutting down: closes the async handle so the loop can
 * end. Frames fetched after this are delivered by agl_close(). */
void agl_stop_loop(struct agl *a);
/* Stops the threads (polls under way are cancelled), hands the remaining frames to the writer (call before
 * coll_writer_stop) and frees a. */
void agl_close(struct agl *a);

/* Validates agentless.targets as agl_open() would (drivers, credentials
 * files) without touching targets.db: for --check-config. 0, or <0 with
 * "agentless.targets[i]: ..." in err. */
int agl_config_check(const json_t *targets, char *err, size_t errlen);

/* ---- for the API (routes_targets.c); thread-safe ------------------------- */

/* Results: 0 with *out (a new reference), or an HTTP-ish error: -EINVAL
 * (400, message in err), -ENOENT (404), -EPERM (409: the target comes from
 * agentless.targets), other <0 (500, message in err). */
int agl_api_list(struct agl *a, const char *ns, const char *mcis, json_t **out);
int agl_api_get(struct agl *a, int64_t id, json_t **out);
int agl_api_create(struct agl *a, const char *body, size_t len, json_t **out, char *err,
                   size_t errlen);
/* Replaces target id; credentials omitted keep the stored ones. */
int agl_api_update(struct agl *a, int64_t id, const char *body, size_t len, json_t **out, char *err,
                   size_t errlen);
int agl_api_delete(struct agl *a, int64_t id);
/* Polls id as soon as the concurrency limit and its driver's rate allow, also when it
 * was stopped (after the operator fixed a permission on the cloud side). */
int agl_api_poll_now(struct agl *a, int64_t id, json_t **out);

#endif
