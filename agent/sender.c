/* UDP sender with lazy, rate-limited re-resolution of the collector. */
#include "sender.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "pt/time.h"
#include "pt/util.h"

int agent_sender_init(struct agent_sender *s, const char *hostport)
{
    uint16_t port;
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->resolved_ns = INT64_MIN / 2; /* "long ago": the first send resolves */
    if (pt_hostport_split(hostport, s->host, sizeof s->host, &port) || s->host[0] == '\0')
        return -EINVAL;
    snprintf(s->port, sizeof s->port, "%u", (unsigned)port);
    snprintf(s->target, sizeof s->target, "%s", hostport);
    snprintf(s->name, sizeof s->name, "%s", hostport);
    return 0;
}

void agent_sender_close(struct agent_sender *s)
{
    if (s->fd >= 0) close(s->fd);
    s->fd = -1;
}

static void format_addr(const struct sockaddr *sa, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        port = ntohs(a->sin6_port);
        snprintf(buf, len, "[%s]:%u", ip, port);
        return;
    }
    const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
    port = ntohs(a->sin_port);
    snprintf(buf, len, "%s:%u", ip, port);
}

/* Resolves the collector and connects a new socket to the first address
 * that takes it; the old socket is kept when nothing works. A connected UDP
 * socket is what makes the kernel report ICMP errors (ECONNREFUSED, ...) to
 * send(), and it only accepts datagrams from the collector. */
static int sender_resolve(struct agent_sender *s, int64_t now)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICSERV;
    s->resolved_ns = now;
    int gai = getaddrinfo(s->host, s->port, &hints, &res);
    if (gai) {
        int e = gai == EAI_SYSTEM ? errno : EHOSTUNREACH;
        pt_complain(&s->fail, PT_LOG_WARN, "send", "cannot resolve collector %s: %s", s->target,
                    gai == EAI_SYSTEM ? strerror(e) : gai_strerror(gai));
        return -e;
    }
    int rc = -EHOSTUNREACH;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            rc = -errno;
            close(fd);
            continue;
        }
        agent_sender_close(s);
        s->fd = fd;
        s->stale = false;
        format_addr(ai->ai_addr, s->addr, sizeof s->addr);
        if (strcmp(s->addr, s->target) == 0)
            snprintf(s->name, sizeof s->name, "%s", s->target);
        else
            snprintf(s->name, sizeof s->name, "%s (%s)", s->target, s->addr);
        PT_DEBUG("send", "collector %s", s->name);
        rc = 0;
        break;
    }
    freeaddrinfo(res);
    if (rc)
        pt_complain(&s->fail, PT_LOG_WARN, "send", "cannot reach collector %s: %s", s->target,
                    strerror(-rc));
    return rc;
}

static int send_once(int fd, const void *buf, size_t len)
{
    ssize_t n;
    do {
        /* Connected socket: no address here. */
        n = sendto(fd, buf, len, 0, NULL, 0);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : 0;
}

int agent_sender_send(struct agent_sender *s, const void *buf, size_t len)
{
    int64_t now = pt_mono_ns();
    if ((s->fd < 0 || s->stale) && now - s->resolved_ns >= AGENT_RESOLVE_NS) {
        int rc = sender_resolve(s, now);
        if (rc && s->fd < 0) return rc;
    }
    if (s->fd < 0) return -ENOTCONN; /* already complained about */

    int rc = send_once(s->fd, buf, len);
    bool seen = s->refused_seen; /* a refusal agent_sender_recv() found */
    s->refused_seen = false;
    if (rc == -ECONNREFUSED || (rc == 0 && seen)) {
        /* The refusal is the ICMP answer to an earlier datagram, reported
         * now: the collector was down then. Say so, and send this frame
         * anyway (unless it went already), as it may well be up again. */
        s->refused++;
        pt_complain(&s->fail, PT_LOG_WARN, "send", "collector %s refused frames: %s", s->name,
                    strerror(ECONNREFUSED));
        s->stale = true;
        return rc == 0 ? 0 : send_once(s->fd, buf, len);
    }
    if (rc == -EAGAIN || rc == -EWOULDBLOCK || rc == -ENOBUFS) {
        pt_complain(&s->fail, PT_LOG_WARN, "send", "frame to collector %s dropped: %s", s->name,
                    strerror(-rc));
        return rc;
    }
    if (rc) {
        pt_complain(&s->fail, PT_LOG_WARN, "send", "sending to collector %s failed: %s", s->name,
                    strerror(-rc));
        s->stale = true;
        return rc;
    }
    /* Sent, and no error left over from the previous datagram either. */
    pt_complain_release(&s->fail, "send", "sending to collector %s works again", s->name);
    return 0;
}

ssize_t agent_sender_recv(struct agent_sender *s, void *buf, size_t cap)
{
    if (s->fd < 0) return -EAGAIN;
    ssize_t n;
    do {
        n = recv(s->fd, buf, cap, MSG_DONTWAIT | MSG_TRUNC);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == ECONNREFUSED) {
        /* The ICMP answer to an earlier datagram: the collector was down.
         * The next send reports it, as if it had seen it itself. */
        s->refused_seen = true;
        return -ECONNREFUSED;
    }
    if (n < 0) return errno == EWOULDBLOCK || errno == EAGAIN ? -EAGAIN : -errno;
    if ((size_t)n > cap) return -EMSGSIZE; /* larger than any ack: not one */
    return n;
}
