/* InfluxDB line protocol encoder, shared by the influxdb and victoriametrics
 * backends: one store_point becomes one line
 *   measurement,tag=v,... field=value,... timestamp_ns\n
 * with the identity tags of METRICS.md (ns_id, mcis_id, vm_id, csp_type,
 * host) before the measurement's own tags. docs/storage.md ("Line protocol")
 * lists every escaping rule and the choices for what the protocol cannot
 * carry. */
#ifndef COLL_STORE_LINEPROTO_H
#define COLL_STORE_LINEPROTO_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* The two servers read the protocol slightly differently:
 * - LP_INFLUX (InfluxDB 1.x): a backslash in a name or tag is kept as is
 *   and cannot be escaped, so one right before ',', ' ', '=' or at the end
 *   cannot be written at all (-ERANGE). Unsigned integers up to INT64_MAX
 *   are written as integers ("i"); above, as floats (1.x has no "u").
 * - LP_VICTORIA: a backslash is escaped as "\\"; string fields are left
 *   out (VictoriaMetrics would store them as 0) and a point with nothing
 *   but strings is skipped; every number becomes a float there anyway, so
 *   integers are written with "i" all the same. */
enum lp_dialect { LP_INFLUX, LP_VICTORIA };

/* A growing output buffer with a ceiling (max; 0: 64 MiB). */
struct lp_buf {
    char *p;
    size_t len, cap, max;
};
void lp_buf_free(struct lp_buf *b);

/* Appends the line of p to b. Returns
 *   0          appended (*nvalues: fields written)
 *   LP_SKIPPED nothing to write: no fields (store.h skips those), or only
 *              string fields on LP_VICTORIA
 *   -EINVAL    invalid as the wire decoder sees it: a name not 1..255 bytes
 *              of UTF-8 without control characters, a non-finite float,
 *              a tag named like an identity tag, no identity
 *   -ERANGE    valid, but this dialect cannot express it: LP_INFLUX and a
 *              backslash before ',', ' ', '=' or at the end of a name;
 *              LP_VICTORIA and a '"' in a field key
 *   PT_E_LIMIT too many tags or fields, or b would pass its ceiling
 *   -ENOMEM
 * On any error b is left as it was. String field values have '"' and '\'
 * escaped; a line feed or carriage return in one (line protocol has no
 * escape for them) is replaced by a space. */
#define LP_SKIPPED 1
int lp_point(struct lp_buf *b, enum lp_dialect d, const struct store_point *p, size_t *nvalues);

/* The identity tag keys, in the order they are written. */
extern const char *const lp_ident_keys[5];

#endif
