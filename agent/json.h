/* A frame as pretty-printed JSON, for `pantala-agent --once`:
 *
 *   {"time": "<RFC 3339>", "ns": ..., "mcis": ..., "vm": ..., "csp": ...,
 *    "host": ..., "interval_ms": ...,
 *    "measurements": [{"name": "cpu", "tags": {}, "fields": {...}}, ...]}
 *
 * Unsigned and signed fields are JSON integers, float fields always carry
 * a fraction or exponent ("12.0"), so a reader can tell the types apart. */
#ifndef AGENT_JSON_H
#define AGENT_JSON_H

#include <stdio.h>

#include "pt/wire.h"

/* Writes f (its time, identity, interval and measurements) to out.
 * Returns 0 or -EIO when out reports an error. */
int agent_json_write(FILE *out, const struct pt_frame *f);

#endif
