/* The agent registry: who may send, with which key, and how each agent is
 * doing. Agents live in memory (a hash by id, used by the ingest thread for
 * every frame) and in the state database (state.db in the data directory),
 * which survives restarts.
 *
 * Thread use: the ingest thread calls coll_registry_admit() per frame and
 * coll_registry_acks() from its ack timer; API threads add, remove, get and
 * list; the writer thread calls coll_registry_durable() / _forget() per
 * batch and coll_registry_persist() every few seconds. An internal mutex guards the
 * in-memory table and is never held across database I/O. */
#ifndef COLL_REGISTRY_H
#define COLL_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "pt/wire.h"
#include "stats.h"

struct coll_registry;

/* A consistent snapshot of one agent, for the API. */
struct coll_agent_info {
    uint64_t id;
    char ns[129], mcis[129], vm[129], csp[129], host[256];
    bool has_key; /* false: registered by an unsigned frame in insecure mode */
    int64_t created_ns, first_seen_ns, last_seen_ns; /* 0: never */
    int64_t last_ts_ns;                              /* timestamp of the newest accepted sample */
    uint32_t interval_ms;
    uint64_t accepted, rejected, duplicate, missing, values;
    uint64_t epoch, last_seq;
    char addr[64]; /* source address of the last accepted frame */
    /* Acknowledged delivery (docs/protocol.md): frames durable in the store
     * up to acked (contiguously, in epoch), accepted frames not yet
     * acknowledged (ack_lag), acks sent and when the last one was. */
    uint64_t acked, ack_lag, acks_sent;
    int64_t last_ack_ns;
    /* The agent's own figures, from its measurement "agent" (0 until it
     * reports them; agent_reports says whether it did). */
    bool agent_reports;
    uint64_t agent_sent, agent_resent, agent_ring_dropped, agent_ring_frames;
};

/* One accepted frame, as the writer reports it back: durable, or lost on
 * the way to the store. */
struct coll_frame_ref {
    uint64_t agent_id, epoch, seq;
};

/* Opens (creating) the state database at path and loads every agent.
 * On failure returns <0 with a message in err. */
int coll_registry_open(struct coll_registry **out, const char *path, struct coll_stats *stats,
                       char *err, size_t errlen);
void coll_registry_close(struct coll_registry *r);

/* Registers a new agent with a fresh random id and key. Returns 0 and fills
 * info and key; -EEXIST (info = the existing agent) when ns/mcis/vm is
 * already registered; -EINVAL for invalid names; PT_E_STORE on a database
 * failure. */
int coll_registry_add(struct coll_registry *r, const char *ns, const char *mcis, const char *vm,
                      const char *csp, struct coll_agent_info *info, uint8_t key[PT_WIRE_KEY_LEN]);
/* Forgets an agent: 0 or -ENOENT. Its frames are refused from then on. */
int coll_registry_remove(struct coll_registry *r, uint64_t id);
int coll_registry_get(struct coll_registry *r, uint64_t id, struct coll_agent_info *info);
/* The agent registered as ns/mcis/vm: 0 or -ENOENT. */
int coll_registry_find_name(struct coll_registry *r, const char *ns, const char *mcis,
                            const char *vm, struct coll_agent_info *info);
/* Snapshot of all agents sorted by (ns, mcis, vm); free(*out). */
int coll_registry_list(struct coll_registry *r, struct coll_agent_info **out, size_t *n);
/* Agents whose last frame is younger than three of their intervals. */
size_t coll_registry_count_up(struct coll_registry *r, int64_t now_ns);

/* Admission of a decoded frame (ingest thread). */
struct coll_admit_opts {
    bool insecure;
    int64_t max_age_ns, max_future_ns;
    size_t max_auto_agents; /* ceiling for agents registered by insecure frames */
};
enum coll_admit {
    COLL_ADMIT_OK,
    COLL_ADMIT_BACKFILL, /* accepted, but older than the agent's newest sample: a resend */
    COLL_ADMIT_DUPLICATE,
    COLL_ADMIT_REJECT
};
/* Checks key, signature, identity, timestamp and sequence of f (decoded
 * from buf, carrying values field values in all) and updates the agent's
 * counters. On COLL_ADMIT_REJECT *reason says why. */
enum coll_admit coll_registry_admit(struct coll_registry *r, const struct pt_frame *f,
                                    uint64_t values, const void *buf, const struct sockaddr *from,
                                    const struct coll_admit_opts *o, int64_t now_ns,
                                    enum coll_reject *reason);

/* Writer: the frames refs[0..n) are durable in the store (or the outbox):
 * they enter their agents' durable windows, and those agents get an ack
 * at the next coll_registry_acks(). */
void coll_registry_durable(struct coll_registry *r, const struct coll_frame_ref *refs, size_t n);

/* Writer or ingest: the frames refs[0..n) were accepted but will never be
 * stored (dropped, counted elsewhere): their seqs are forgotten by the
 * duplicate window so the agents' resends are accepted. */
void coll_registry_forget(struct coll_registry *r, const struct coll_frame_ref *refs, size_t n);

/* Ingest thread, from a timer: for every agent with news since the last
 * call (frames became durable, or a duplicate arrived), encodes an ack of
 * its durable window (signed with its key; unsigned for agents registered
 * without one) and calls send(ctx, address, ack, len) under the registry's
 * lock. Returns the number of acks made. */
size_t coll_registry_acks(struct coll_registry *r, int64_t now_ns,
                          void (*send)(void *ctx, const struct sockaddr *to, const void *buf,
                                       size_t len),
                          void *ctx);

/* Writes changed runtime state (counters, sequence window tops, agents
 * registered by insecure frames) to the database. */
int coll_registry_persist(struct coll_registry *r);

#endif
