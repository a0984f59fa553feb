/* Agent registrations for pantala-loadgen: registering agents through the
 * collector's API (POST /api/v1/agents, many at once over libcurl's multi
 * interface) and loading/saving them as a JSON file so runs can reuse them:
 *
 *   [{"id": 1, "key": "<64 hex>", "ns": "bench", "mcis": "m-000",
 *     "vm": "vm-00000", "csp": "aws"}, ...]
 */
#ifndef LG_REGISTER_H
#define LG_REGISTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pt/wire.h"

struct lg_reg {
    uint64_t id;                  /* 0 until registered */
    char *ns, *mcis, *vm, *csp;   /* owned, NUL-terminated */
    uint8_t key[PT_WIRE_KEY_LEN]; /* valid when has_key */
    bool has_key;
};

/* Sets r's names (copies them). Returns 0 or -ENOMEM. */
int lg_reg_set(struct lg_reg *r, const char *ns, const char *mcis, const char *vm, const char *csp);
/* Frees the names of regs[0..n) and the array itself. */
void lg_regs_free(struct lg_reg *regs, size_t n);

/* Registers regs[0..n) (names set) through api ("http://host:port") with
 * the bearer token, up to parallel requests in flight, filling id and key.
 * Progress lines go to stderr when progress. Returns 0, or a negative code
 * with the reason in err (the first failure stops the run). */
int lg_register_api(const char *api, const char *token, struct lg_reg *regs, size_t n,
                    unsigned parallel, bool progress, char *err, size_t errlen);

/* Loads registrations from path into a new array (*regs, *n). A missing
 * "key" (or an empty one) leaves has_key false; a missing "csp" reads as
 * "aws". Returns 0 or a negative code with the reason in err. */
int lg_agents_load(const char *path, struct lg_reg **regs, size_t *n, char *err, size_t errlen);

/* Writes regs[0..n) to path (mode 0600: it holds keys). */
int lg_agents_save(const char *path, const struct lg_reg *regs, size_t n, char *err, size_t errlen);

#endif
