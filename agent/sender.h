/* Sending frames to the collector over UDP.
 *
 * The collector's name is resolved with getaddrinfo() on the first send and
 * again, at most every AGENT_RESOLVE_NS, while sending fails; the socket is
 * non-blocking, so a slow or absent collector never stalls collection.
 * Failures are logged through pt_complain(): once, then at a slowing rate,
 * and once more when sending works again. */
#ifndef AGENT_SENDER_H
#define AGENT_SENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pt/log.h"

#define AGENT_RESOLVE_NS (30 * INT64_C(1000000000))

/* Caller-allocated: agent_sender_init() / agent_sender_close(). */
struct agent_sender {
    char target[300]; /* "host:port" as configured, for messages */
    char host[256];   /* for getaddrinfo() */
    char port[8];
    char addr[64];       /* the resolved address, "[::1]:8094", or "" */
    char name[380];      /* for messages: target, and addr when it differs */
    int fd;              /* -1 until resolved */
    bool stale;          /* sending failed: resolve again when allowed */
    int64_t resolved_ns; /* monotonic time of the last resolution attempt */
    uint64_t refused;    /* datagrams the collector's host refused (port closed) */
    bool refused_seen;   /* a refusal read by agent_sender_recv(), not reported yet */
    struct pt_complain fail;
};

/* Checks hostport ("host:port", "[v6]:port"); touches no network. Returns 0
 * or -EINVAL. */
int agent_sender_init(struct agent_sender *s, const char *hostport);
void agent_sender_close(struct agent_sender *s);

/* Sends one datagram, resolving first when needed. Returns 0 when the
 * datagram went out (UDP: handed to the kernel), or a negative errno;
 * failures are also logged (rate-limited). Never blocks on the network
 * (name resolution aside). */
int agent_sender_send(struct agent_sender *s, const void *buf, size_t len);

/* Reads one datagram the collector sent back (the socket is connected: no
 * one else's arrive). Returns its length, -EAGAIN when there is none, or
 * another negative errno (an ICMP error for an earlier send shows up here
 * as -ECONNREFUSED). */
ssize_t agent_sender_recv(struct agent_sender *s, void *buf, size_t cap);

#endif
