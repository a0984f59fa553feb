/* network measurement: per-interface and total byte, packet, error and
 * drop rates. */
#include "network.h"

#include <string.h>

static const struct agent_ctrs_field net_fields[] = {
    {"bytes_in", AGENT_NET_RX_BYTES, 1.0},  {"bytes_out", AGENT_NET_TX_BYTES, 1.0},
    {"pkts_in", AGENT_NET_RX_PACKETS, 1.0}, {"pkts_out", AGENT_NET_TX_PACKETS, 1.0},
    {"err_in", AGENT_NET_RX_ERRS, 1.0},     {"err_out", AGENT_NET_TX_ERRS, 1.0},
    {"drop_in", AGENT_NET_RX_DROP, 1.0},    {"drop_out", AGENT_NET_TX_DROP, 1.0},
};

void agent_net_init(struct agent_net *n)
{
    memset(n, 0, sizeof *n);
    agent_ctrs_init(&n->ctrs);
}

void agent_net_begin(struct agent_net *n)
{
    agent_ctrs_begin(&n->ctrs);
}

void agent_net_add(void *ctx, const struct agent_net_raw *ifc)
{
    struct agent_net *n = ctx;
    if (!agent_filter_pass(&n->filter, ifc->name)) return;
    struct agent_ctrs_obj *o = agent_ctrs_add(&n->ctrs, ifc->name);
    if (!o) return;
    memcpy(o->v, ifc->v, sizeof ifc->v);
    /* Loopback traffic never leaves the host: counting it would double
     * every local transfer into "network" use. */
    o->in_total = strcmp(ifc->name, "lo") != 0;
}

unsigned agent_net_commit(struct agent_net *n, int64_t mono_ns)
{
    agent_ctrs_commit(&n->ctrs, mono_ns);
    n->nout = agent_ctrs_series(&n->ctrs, "network", "interface", net_fields,
                                sizeof net_fields / sizeof net_fields[0], &n->out);
    return n->ctrs.over;
}
