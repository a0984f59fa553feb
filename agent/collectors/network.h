/* The network measurement (METRICS.md fields 46-53): one series per
 * interface (tag interface) and interface=total, the sum over every
 * interface but loopback. The platform reader hands each interface's
 * counters to a callback; the rates, the total and the filter are computed
 * here. */
#ifndef AGENT_NETWORK_H
#define AGENT_NETWORK_H

#include <stddef.h>
#include <stdint.h>

#include "counters.h"
#include "filter.h"
#include "meas.h"

/* Counters of one interface, since it came up. */
enum {
    AGENT_NET_RX_BYTES,
    AGENT_NET_RX_PACKETS,
    AGENT_NET_RX_ERRS,
    AGENT_NET_RX_DROP,
    AGENT_NET_TX_BYTES,
    AGENT_NET_TX_PACKETS,
    AGENT_NET_TX_ERRS,
    AGENT_NET_TX_DROP,
    AGENT_NET_NCTR
};

struct agent_net_raw {
    const char *name; /* borrowed for the call */
    uint64_t v[AGENT_NET_NCTR];
};

typedef void (*agent_net_cb)(void *ctx, const struct agent_net_raw *ifc);

/* Defined once per platform (agent/platform/<os>/network.c): calls cb with
 * every interface (Linux: <proc>/net/dev). Returns 0, -errno, or
 * PT_E_MALFORMED; err says which source and why. */
int agent_plat_net_read(const char *proc, agent_net_cb cb, void *ctx, char *err, size_t errlen);

/* Caller-allocated: agent_net_init(), then set filter. */
struct agent_net {
    struct agent_filter filter; /* on interface names */
    struct agent_ctrs ctrs;
    struct agent_ctrs_out out; /* out.m[0..nout) */
    unsigned nout;
};

void agent_net_init(struct agent_net *n);
/* A reading: agent_net_begin(), agent_net_add() for each interface (it is
 * an agent_net_cb), then agent_net_commit() when the reading succeeded. */
void agent_net_begin(struct agent_net *n);
void agent_net_add(void *n, const struct agent_net_raw *ifc);
/* Builds out[0..nout): per-interface series in the platform's order, then
 * total. Returns how many interfaces of this reading did not fit (dropped). */
unsigned agent_net_commit(struct agent_net *n, int64_t mono_ns);

#endif
