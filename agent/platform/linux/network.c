/* Linux interface counters: /proc/net/dev (of the agent's network
 * namespace). */
#include "collectors/network.h"
#include "procfs.h"

#include <string.h>

/* Columns of /proc/net/dev after "name:", and where each counter is. */
#define NETDEV_COLS 16
static const int netdev_col[AGENT_NET_NCTR] = {
    [AGENT_NET_RX_BYTES] = 0, [AGENT_NET_RX_PACKETS] = 1, [AGENT_NET_RX_ERRS] = 2,
    [AGENT_NET_RX_DROP] = 3,  [AGENT_NET_TX_BYTES] = 8,   [AGENT_NET_TX_PACKETS] = 9,
    [AGENT_NET_TX_ERRS] = 10, [AGENT_NET_TX_DROP] = 11,
};

struct netdev_ctx {
    agent_net_cb cb;
    void *ctx;
};

/* "  eth0: 95443122 2110 0 0 0 0 0 0 110669 1305 0 0 0 0 0 0" (older
 * kernels: "eth0:95443122 ..."), after two header lines. */
static int netdev_line(struct agent_procfs_file *f, void *ctx, char *line, size_t len)
{
    struct netdev_ctx *c = ctx;
    if (f->line <= 2) return 0;
    char *colon = memchr(line, ':', len);
    if (!colon) return agent_procfs_fail(f, "expected \"interface: counters\"");
    *colon = '\0';
    char *name = line;
    while (*name == ' ' || *name == '\t') name++;
    if (!*name) return agent_procfs_fail(f, "no interface name");

    uint64_t col[NETDEV_COLS];
    const char *p = colon + 1;
    for (int i = 0; i < NETDEV_COLS; i++)
        if (agent_procfs_u64(&p, &col[i]))
            return agent_procfs_fail(f, "%s: column %d is not a number", name, i + 1);
    struct agent_net_raw r = {.name = name};
    for (int k = 0; k < AGENT_NET_NCTR; k++) r.v[k] = col[netdev_col[k]];
    c->cb(c->ctx, &r);
    return 0;
}

int agent_plat_net_read(const char *proc, agent_net_cb cb, void *ctx, char *err, size_t errlen)
{
    struct agent_procfs_file f = {proc, "net/dev", err, errlen, 0};
    struct netdev_ctx c = {cb, ctx};
    int rc = agent_procfs_read(&f, netdev_line, &c);
    return rc < 0 ? rc : 0;
}
