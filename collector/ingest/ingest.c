/* Datagram pipeline: decode → registry admission → writer, every outcome
 * counted. Runs on the libuv loop thread only. */
#include "ingest.h"
#include "pt/err.h"
#include "pt/log.h"
#include "pt/time.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* libuv hands recvmmsg 64 KiB per message, up to 20 messages a call. */
#define RBUF_MSGS 20
#define RBUF_MSG  (64 * 1024)

int coll_ingest_init(struct coll_ingest *in, struct coll_registry *reg, struct coll_writer *w,
                     struct coll_stats *stats, const struct coll_admit_opts *opts)
{
    memset(in, 0, sizeof *in);
    in->reg = reg;
    in->writer = w;
    in->stats = stats;
    in->opts = *opts;
    in->dec = pt_wire_dec_new();
    if (!in->dec) return -ENOMEM;
    return 0;
}

static void fmt_addr(const struct sockaddr *sa, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s->sin_addr, ip, sizeof ip);
        port = ntohs(s->sin_port);
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof ip);
        port = ntohs(s->sin6_port);
    }
    snprintf(buf, len, "%s:%u", ip, port);
}

static void reject(struct coll_ingest *in, enum coll_reject why, uint64_t agent,
                   const struct sockaddr *from)
{
    atomic_fetch_add_explicit(&in->stats->rejected, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&in->stats->rejected_by[why], 1, memory_order_relaxed);
    struct pt_complain *c = &in->c_reject[why];
    if (PT_LOG_WARN > pt_log_threshold) return;
    if (!pt_complain_due(c)) {
        c->suppressed++; /* skip formatting the address for a line not logged */
        return;
    }
    char addr[64];
    fmt_addr(from, addr, sizeof addr);
    pt_complain(c, PT_LOG_WARN, "ingest", "rejected frame from %s (agent %llu): %s", addr,
                (unsigned long long)agent, coll_reject_names[why]);
}

void coll_ingest_datagram(struct coll_ingest *in, const void *buf, size_t len,
                          const struct sockaddr *from, int64_t now_ns)
{
    struct pt_frame f;
    atomic_fetch_add_explicit(&in->stats->datagrams, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&in->stats->bytes, len, memory_order_relaxed);
    int rc = pt_wire_decode(in->dec, buf, len, &f);
    if (rc) {
        reject(in, coll_reject_from_err(rc), f.agent_id, from);
        return;
    }
    enum coll_reject why = COLL_REJ_MALFORMED;
    uint64_t values = 0;
    for (size_t m = 0; m < f.nmeas; m++) values += f.meas[m].nfields;
    switch (coll_registry_admit(in->reg, &f, values, buf, from, &in->opts, now_ns, &why)) {
    case COLL_ADMIT_OK: {
        atomic_fetch_add_explicit(&in->stats->accepted, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&in->stats->values_accepted, values, memory_order_relaxed);
        if (in->writer) coll_writer_add(in->writer, buf, len, f.nmeas);
        /* Same thread, same decoded frame: alerting reads it in place. */
        if (in->alerts) alert_engine_feed(in->alerts, &f, now_ns);
        break;
    }
    case COLL_ADMIT_DUPLICATE:
        atomic_fetch_add_explicit(&in->stats->duplicate, 1, memory_order_relaxed);
        break;
    case COLL_ADMIT_REJECT:
        reject(in, why, f.agent_id, from);
        break;
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct coll_ingest *in = h->data;
    (void)suggested;
    *buf = uv_buf_init(in->rbuf, (unsigned)in->rbuf_len);
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                    unsigned flags)
{
    struct coll_ingest *in = h->data;
    (void)buf;
    if (nread < 0) {
        atomic_fetch_add(&in->stats->recv_errors, 1);
        pt_complain(&in->c_recv, PT_LOG_ERROR, "ingest", "UDP receive error: %s",
                    uv_strerror((int)nread));
        return;
    }
    if (!addr) return; /* nothing to read, or the end of a recvmmsg batch */
    /* nread == 0 with an address is an empty datagram: counted and rejected
     * like any other malformed input. */
    if (flags & UV_UDP_PARTIAL) {
        atomic_fetch_add(&in->stats->datagrams, 1);
        atomic_fetch_add(&in->stats->rejected, 1);
        atomic_fetch_add(&in->stats->rejected_by[COLL_REJ_LIMIT], 1);
        return;
    }
    coll_ingest_datagram(in, buf->base, (size_t)nread, addr, pt_now_ns());
}

int coll_ingest_start(struct coll_ingest *in, uv_loop_t *loop, const char *host, uint16_t port,
                      int rcvbuf)
{
    struct sockaddr_storage ss;
    int rc;
    if (strchr(host, ':'))
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
    else
        rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
    if (rc) return rc;
    in->rbuf_len = (size_t)RBUF_MSGS * RBUF_MSG;
    in->rbuf = malloc(in->rbuf_len);
    if (!in->rbuf) return -ENOMEM;
    if ((rc = uv_udp_init_ex(loop, &in->udp, AF_UNSPEC | UV_UDP_RECVMMSG))) return rc;
    in->udp.data = in;
    if ((rc = uv_udp_bind(&in->udp, (const struct sockaddr *)&ss, 0))) return rc;
    int want = rcvbuf;
    uv_recv_buffer_size((uv_handle_t *)&in->udp, &want);
    int got = 0;
    uv_recv_buffer_size((uv_handle_t *)&in->udp, &got);
    /* Linux reports twice the value it grants; net.core.rmem_max caps it. */
    if (got / 2 < rcvbuf)
        PT_WARN("ingest",
                "UDP receive buffer is %d bytes, %d requested: raise net.core.rmem_max "
                "(sysctl -w net.core.rmem_max=%d) to absorb bursts without loss",
                got / 2, rcvbuf, rcvbuf);
    return uv_udp_recv_start(&in->udp, on_alloc, on_recv);
}

int coll_ingest_port(struct coll_ingest *in)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_udp_getsockname(&in->udp, (struct sockaddr *)&ss, &len)) return -1;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

void coll_ingest_stop(struct coll_ingest *in)
{
    if (uv_is_active((uv_handle_t *)&in->udp)) uv_udp_recv_stop(&in->udp);
    if (in->udp.type == UV_UDP && !uv_is_closing((uv_handle_t *)&in->udp))
        uv_close((uv_handle_t *)&in->udp, NULL);
}

void coll_ingest_close(struct coll_ingest *in)
{
    pt_wire_dec_free(in->dec);
    in->dec = NULL;
    free(in->rbuf);
    in->rbuf = NULL;
}
