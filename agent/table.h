/* A frame as a table for people, for `pantala-agent --once`:
 *
 *   sample of ns01/web01/web01-vm1 (aws, host web-1) at 2026-11-21T07:50:01.123Z, over 250 ms
 *
 *   MEASUREMENT  TAGS           FIELD            VALUE  UNIT
 *   cpu                         cpu_utilization  12.50  %
 *   disk         mount=/ ...    disk_total       ...    bytes
 *
 * One row per field, measurements in the order sent. Units come from the
 * catalog (pt/catalog.h); fields outside it have none. */
#ifndef AGENT_TABLE_H
#define AGENT_TABLE_H

#include <stdio.h>

#include "pt/wire.h"

/* Writes f to out. Returns 0 or -EIO when out reports an error. */
int agent_table_write(FILE *out, const struct pt_frame *f);

#endif
