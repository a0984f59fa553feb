/* UDP ingest on the libuv loop: receive (recvmmsg), decode, admit through
 * the registry, count, and hand accepted frames to the writer. */
#ifndef COLL_INGEST_H
#define COLL_INGEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "pt/alert.h"
#include "pt/log.h"

#include "registry.h"
#include "stats.h"
#include "writer.h"

struct coll_ingest {
    uv_udp_t udp;
    struct pt_wire_dec *dec;
    struct coll_registry *reg;
    struct coll_writer *writer;  /* NULL: accepted frames are only counted */
    struct alert_engine *alerts; /* NULL: no alerting; else fed every accepted frame */
    struct coll_stats *stats;
    struct coll_admit_opts opts;
    char *rbuf; /* recvmmsg buffer, reused */
    size_t rbuf_len;
    struct pt_complain c_reject[COLL_REJ_COUNT];
    struct pt_complain c_recv;
};

/* Initialises in (decoder, counters); no socket yet. */
int coll_ingest_init(struct coll_ingest *in, struct coll_registry *reg, struct coll_writer *w,
                     struct coll_stats *stats, const struct coll_admit_opts *opts);
/* Binds host:port on loop and starts receiving; rcvbuf is SO_RCVBUF. */
int coll_ingest_start(struct coll_ingest *in, uv_loop_t *loop, const char *host, uint16_t port,
                      int rcvbuf);
/* The port actually bound (useful with port 0). */
int coll_ingest_port(struct coll_ingest *in);
/* Stops receiving and closes the socket (the loop finishes the close). */
void coll_ingest_stop(struct coll_ingest *in);
void coll_ingest_close(struct coll_ingest *in);

/* Processes one datagram: the whole pipeline minus the socket. */
void coll_ingest_datagram(struct coll_ingest *in, const void *buf, size_t len,
                          const struct sockaddr *from, int64_t now_ns);

#endif
