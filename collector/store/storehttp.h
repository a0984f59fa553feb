/* HTTP client for the server backends (influxdb, victoriametrics): one
 * libcurl easy handle per caller, gzip request bodies, bounded response
 * bodies, and the one place curl and HTTP failures become store codes.
 *
 * Threads: a struct sh_client is used by one thread at a time (the writer
 * keeps one; each API reader call makes its own), so nothing is shared. A
 * struct sh_pool (parallel writes) is used by one caller thread and runs
 * its requests on a thread of its own. */
#ifndef COLL_STORE_STOREHTTP_H
#define COLL_STORE_STOREHTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where and how to talk to a server; strings owned by the backend. */
struct sh_conf {
    const char *user, *password; /* HTTP basic auth when user is set */
    int64_t timeout_ns;          /* whole request */
    size_t max_resp;             /* response body ceiling (bytes) */
};

struct sh_client {
    const struct sh_conf *conf;
    void *curl; /* CURL *, created on first use, kept for keep-alive */
};

struct sh_resp {
    long status;
    char *body; /* NUL-terminated, may hold NULs; free() it */
    size_t len;
};

/* Process-wide libcurl set-up (idempotent, thread-safe): call from open(). */
int sh_global_init(void);

void sh_client_init(struct sh_client *c, const struct sh_conf *conf);
void sh_client_close(struct sh_client *c);

/* Sends one request and reads the answer into out (whatever its status).
 * body/len NULL/0 sends a GET; else a POST with content type ctype, gzip
 * compressed (Content-Encoding: gzip) when gzip is set. Returns 0 when an
 * answer came, or, with a message in err:
 *   -ECONNREFUSED, -EHOSTUNREACH, -ETIMEDOUT, -ECONNRESET, -EIO   transport
 *   -E2BIG    the answer passed conf->max_resp
 *   -ENOMEM, -EINVAL (bad URL) */
int sh_request(struct sh_client *c, const char *url, const void *body, size_t len,
               const char *ctype, bool gzip, struct sh_resp *out, char *err, size_t errlen);

/* Percent-encodes s for a query string into a new string (free()), or NULL. */
char *sh_escape(const char *s);

/* A growing text buffer for URLs, queries and bodies; ceiling 64 MiB. */
struct sh_str {
    char *p;
    size_t len, cap;
    int err; /* first failure: every later append is a no-op */
};
void sh_str_add(struct sh_str *s, const char *p, size_t n);
void sh_str_addf(struct sh_str *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sh_str_adds(struct sh_str *s, const char *p);
void sh_str_free(struct sh_str *s);

/* The server's error text: a JSON {"error":"..."} or the body, cut to fit. */
void sh_resp_message(const struct sh_resp *r, char *out, size_t len);

/* URL set-up shared by the server backends. A store URL is
 * "<scheme>:<http(s) URL>[?k=v&k=v]"; these split off the parameters. */
struct sh_url {
    char base[1024];   /* the http(s) URL without the query string and final '/' */
    char params[1024]; /* the query string, without '?' */
};
/* Splits url after "scheme:"; err says what is wrong. */
int sh_url_parse(const char *url, const char *scheme, struct sh_url *out, char *err, size_t errlen);
/* Value of parameter key (percent-decoded) into out: 1 found, 0 absent,
 * <0 too long. */
int sh_param(const struct sh_url *u, const char *key, char *out, size_t len);
/* Checks that every parameter is one of known (NULL-terminated list). */
int sh_params_known(const struct sh_url *u, const char *const *known, char *err, size_t errlen);
/* "10s", "500ms", "2m" or a plain number of seconds → ns; <0 when bad. */
int64_t sh_duration(const char *s);

/* Parses a JSON answer like json_loadb(), except that an integer beyond
 * int64 (InfluxDB prints large floats that way: 18446744073709552000),
 * which jansson refuses, is read as a real. NULL with a message in err. */
struct json_t;
struct json_t *sh_json_load(const char *p, size_t len, char *err, size_t errlen);

/* Parallel POSTs to one URL (the writer's requests), up to SH_MAX_PARALLEL
 * at once over kept-alive connections: a server that waits on its disk per
 * request (InfluxDB syncs its WAL) takes more points per second with
 * requests in flight side by side. One pool per writer thread.
 *
 * The requests run on the pool's own thread (the poster, started on first
 * use), so the caller may prepare its next batch while the server works on
 * the previous ones: sh_pool_submit() queues a group of requests and
 * returns; sh_pool_wait() waits until every request of a group is
 * answered. Requests are started in the order they were queued, across
 * groups, and a connection that is done takes the next queued request at
 * once: with several groups queued, `parallel` requests stay in flight
 * continuously rather than only until the slowest of one group answers. */
#define SH_MAX_PARALLEL     16
#define SH_PARALLEL_DEFAULT 4
#define SH_MIN_REQUEST      1000 /* points: smaller requests cost more than they overlap */

struct sh_group;

struct sh_part {
    const char *body; /* not owned; must live until the group is answered */
    size_t len;
    size_t npts; /* the caller's count, for messages */
    /* Results: rc 0 and the HTTP status with the server's message, or a
     * transport code (as sh_request) with its text in msg. */
    int rc;
    long status;
    char msg[320];
    /* the pool's */
    struct sh_group *grp;
    struct sh_part *qnext;
};

/* The requests of one sh_pool_submit(); owned by the caller, who must not
 * touch it (nor its parts) until sh_pool_wait() on it returned. */
struct sh_group {
    const char *url, *ctype; /* not owned, as the parts */
    bool gzip;
    size_t left; /* requests not answered yet (the pool's lock) */
};

struct sh_pool {
    const struct sh_conf *conf;
    size_t parallel;
    void *multi;                 /* CURLM *, the poster's */
    void *easy[SH_MAX_PARALLEL]; /* CURL *, kept for keep-alive */
    void *impl; /* struct sh_poster: the thread, its queue and lock; on first submit */
};

void sh_pool_init(struct sh_pool *p, const struct sh_conf *conf, size_t parallel);
/* Stops the poster: requests still queued or in flight are answered
 * -ECANCELED (callers wait for their groups first). */
void sh_pool_close(struct sh_pool *p);
/* Queues the n parts of g (gzip-compressed by the poster when g->gzip is
 * set, each just before it is sent) and returns. 0, or -ENOMEM when the
 * poster cannot start (nothing queued then). */
int sh_pool_submit(struct sh_pool *p, struct sh_group *g, struct sh_part *parts, size_t n);
/* Waits until every part of g has its result, or at most timeout_ns
 * (< 0: as long as it takes); returns whether they all have. */
bool sh_pool_wait(struct sh_pool *p, struct sh_group *g, int64_t timeout_ns);
/* Both: posts every part and fills its results. Returns 0 when every part
 * got an answer or a transport code, <0 only when nothing could be tried. */
int sh_pool_post(struct sh_pool *p, const char *url, struct sh_part *parts, size_t n,
                 const char *ctype, bool gzip);

#endif
