/* libpantala-prov: installs, upgrades, removes and inspects the Pantala
 * agent on hosts over SSH (DESIGN §9, docs/provisioning.md).
 *
 * One host's work is a sequence of steps (connect, detect, upload, install,
 * register, configure, start, verify); each step that changes the host or
 * the collector records how to undo it, and a failing step undoes what the
 * earlier ones did, so a host is left either provisioned or as it was. Many
 * hosts run in parallel, with bounded concurrency. Used by the `pantala`
 * CLI and by pantalad's provisioning API. */
#ifndef PT_PROV_H
#define PT_PROV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum prov_action { PROV_INSTALL, PROV_UPGRADE, PROV_UNINSTALL, PROV_STATUS };

/* "install" ... "status" -> action, -1 when unknown; and back. */
int prov_action_parse(const char *s);
const char *prov_action_name(enum prov_action a);

/* One VM. Strings are owned by whoever filled the struct. */
struct prov_host {
    const char *host;
    uint16_t port; /* 22 when 0 */
    const char *user;
    const char *key; /* private key file; NULL: ssh-agent */
    const char *ns, *mcis, *vm, *csp;
    const char
        *prefix; /* install the tarball into this directory as user (no root); NULL: system */
};

struct prov_opts {
    const char *api_url;        /* collector API, e.g. http://10.0.0.5:9090 */
    const char *token;          /* its bearer token */
    const char *collector_udp;  /* host:port agents send to; NULL: the collector's answer */
    const char *interval;       /* agent interval ("1s"); NULL: the agent's default */
    const char *package_dir;    /* where the .deb/.rpm/.tar.gz files are */
    const char *kind;           /* "deb", "rpm", "tgz" to force one; NULL: by OS */
    const char *known_hosts;    /* NULL: ~/.ssh/known_hosts */
    bool accept_new;            /* trust unknown host keys (never changed ones) */
    int connect_timeout_ms;     /* 10 s when 0 */
    int command_timeout_ms;     /* 120 s when 0 */
    int first_frame_timeout_ms; /* wait for the collector to accept a frame; 30 s when 0 */
    int parallel;               /* hosts at once; 8 when 0 */
};

enum prov_state { PROV_PENDING = 0, PROV_RUNNING, PROV_OK, PROV_FAILED };

struct prov_result {
    enum prov_state state;
    char step[24];      /* the step running, or the one that failed */
    char detail[1536];  /* what happened, or the error and what was rolled back */
    char os[96];        /* "debian 12 x86_64" */
    char kind[8];       /* deb, rpm, tgz */
    char version[32];   /* installed agent version */
    char service[16];   /* status: running, stopped, absent */
    char collector[16]; /* status: up, down, never, unknown */
    uint64_t agent_id;
    bool changed; /* false: nothing needed doing */
    double seconds;
};

const char *prov_state_name(enum prov_state s);

/* Called from worker threads (serialise inside if needed): host idx
 * entered step, with a short message. */
typedef void (*prov_progress_fn)(void *ud, size_t idx, const struct prov_host *h, const char *step,
                                 const char *msg);

/* prov_global_init() once per process before any of the below. */
int prov_global_init(void);

/* Does action on one host; fills r. Returns 0 when it succeeded. */
int prov_run_one(enum prov_action a, const struct prov_host *h, const struct prov_opts *o,
                 struct prov_result *r, prov_progress_fn fn, void *ud, size_t idx);

/* Does action on n hosts, o->parallel at a time; results[i] for hosts[i].
 * Returns how many failed. */
size_t prov_run_many(enum prov_action a, const struct prov_host *hosts, size_t n,
                     const struct prov_opts *o, struct prov_result *results, prov_progress_fn fn,
                     void *ud);

/* An inventory: a JSON array of VMs, each
 * {"host", "port", "user", "key", "ns", "mcis", "vm", "csp", "prefix"}
 * (port, key, csp, prefix optional; defaults may come from dflt, whose
 * non-NULL fields fill what an entry leaves out). */
struct prov_inventory {
    struct prov_host *hosts;
    size_t n;
    void *json; /* owns the strings */
};
int prov_inventory_parse(const char *text, size_t len, const char *name,
                         const struct prov_host *dflt, struct prov_inventory *out, char *err,
                         size_t errlen);
int prov_inventory_load(const char *path, const struct prov_host *dflt, struct prov_inventory *out,
                        char *err, size_t errlen);
void prov_inventory_free(struct prov_inventory *inv);

#endif
