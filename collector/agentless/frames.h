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

#include <stdbool.h>
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
 * measurements, ts_ns its sample time. feed false: a frame to store, with
 * every value of that timestamp; feed true: a frame for the alert engine
 * only, with just the values newer than what it was already fed. A
 * non-zero return stops the build and is returned by agl_frames_build(). */
typedef int (*agl_frame_cb)(void *ud, const uint8_t *buf, size_t len, uint16_t nmeas, int64_t ts_ns,
                            bool feed);

/* fed[DRV_M_COUNT]: per metric, the newest sample time (Unix s) the alert
 * engine already has; NULL builds store frames only. Clouds publish each
 * metric with its own delay, so a timestamp re-read in a later poll may
 * bring a metric's first value next to values already fed: only the new
 * ones go to alerting, so no point is evaluated twice.
 *
 * Returns 0, the callback's code, -ENOMEM, or PT_E_LIMIT. A series whose
 * tag the wire cannot carry is skipped (*skipped counts them), the rest
 * still sent. */
int agl_frames_build(const struct agl_frame_ident *id, const struct drv_result *r,
                     const int64_t *fed, agl_frame_cb cb, void *ud, size_t *skipped);

/* Measurement and field of a normalised metric ("cpu", "cpu_utilization"). */
const char *agl_measurement(enum drv_metric m);

#endif
