/* A driver's result turned into wire frames, so agentless points take the
 * very path agent points take (writer batch → store, and the alert engine
 * on the loop thread) without a second write path to keep in step.
 *
 * One frame per timestamp (split when it would break a wire ceiling), with
 * the target's identity and, per METRICS.md:
 *   cpu_utilization            → cpu.cpu_utilization
 *   mem_utilization            → memory.mem_utilization
 *   kb_read/kb_written/ops_*   → diskio.*, tag device=<disk> or device=total
 *   bytes_in/bytes_out         → network.*, tag interface=<name> or interface=total
 * every measurement also tagged source=agentless and driver=<driver>. The
 * frames are unsigned (they never cross a network) and carry agent_id
 * AGL_AGENT_ID(target id), which no registered agent has. */
#ifndef AGL_FRAMES_H
#define AGL_FRAMES_H

#include <stddef.h>
#include <stdint.h>

#include "drv.h"
#include "pt/wire.h"

#define AGL_AGENT_ID(target_id) ((uint64_t)1 << 62 | (uint64_t)(target_id))

struct agl_frame_ident {
    const char *ns, *mcis, *vm, *csp, *host;
    uint64_t agent_id;
    uint32_t interval_ms;
};

/* Called once per frame: buf[0..len) is the encoded frame, nmeas its
 * measurements, ts_ns its sample time. A non-zero return stops the build
 * and is returned by agl_frames_build(). */
typedef int (*agl_frame_cb)(void *ud, const uint8_t *buf, size_t len, uint16_t nmeas,
                            int64_t ts_ns);

/* Returns 0, the callback's code, -ENOMEM, or PT_E_LIMIT for a series tag
 * the wire cannot carry (such a series is skipped, the rest still sent:
 * *skipped counts them). */
int agl_frames_build(const struct agl_frame_ident *id, const struct drv_result *r, agl_frame_cb cb,
                     void *ud, size_t *skipped);

/* Measurement and field of a normalised metric ("cpu", "cpu_utilization"). */
const char *agl_measurement(enum drv_metric m);

#endif
