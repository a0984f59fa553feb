/* The state machine of one alert series: ok -> pending -> warning/critical
 * -> resolved (ok again), with `for`, repeat and flap suppression. Pure: no
 * clock, no I/O; the engine and the dry run drive it with their own time. */
#include "alert_int.h"

bool alert_state_active(const struct alert_state *s)
{
    return s->phase != PH_OK || s->flapping;
}

const char *alert_state_name(const struct alert_state *s)
{
    if (s->flapping) return "flapping";
    switch (s->phase) {
    case PH_PENDING:
        return "pending";
    case PH_FIRING:
        return alert_level_name((enum alert_level)s->level);
    default:
        return "ok";
    }
}

/* Counts a state change and says whether the series starts flapping now. */
static bool note_change(struct alert_state *s, const struct alert_sm_conf *c, int64_t now)
{
    s->last_change = now;
    if (!c->flap_changes) return false;
    unsigned ring = c->flap_changes + 1 < ALERT_FLAP_RING ? c->flap_changes + 1 : ALERT_FLAP_RING;
    s->changes[s->chead] = now;
    s->chead = (uint8_t)((s->chead + 1) % ring);
    if (s->nchanges < ring) s->nchanges++;
    unsigned recent = 0;
    for (unsigned i = 0; i < s->nchanges; i++)
        if (now - s->changes[i] < c->flap_window_ns) recent++;
    return recent > c->flap_changes;
}

/* After a change: emit it, or start holding, or stay held. */
static enum alert_emit after_change(struct alert_state *s, const struct alert_sm_conf *c,
                                    int64_t now, enum alert_emit what)
{
    bool flap = note_change(s, c, now);
    if (s->flapping) return EMIT_NONE; /* held: counted by the caller as such */
    if (flap) {
        s->flapping = true;
        s->last_notify = now;
        return EMIT_FLAPPING;
    }
    s->last_notify = now;
    s->notified_firing = what == EMIT_FIRING;
    return what;
}

static enum alert_emit fire(struct alert_state *s, const struct alert_sm_conf *c,
                            enum alert_level want, int64_t now, enum alert_level *level)
{
    if (s->phase != PH_FIRING) {
        s->starts_at = now;
        s->ends_at = 0;
    }
    s->phase = PH_FIRING;
    s->level = (uint8_t)want;
    s->since = now;
    *level = want;
    return after_change(s, c, now, EMIT_FIRING);
}

enum alert_emit alert_state_step(struct alert_state *s, const struct alert_sm_conf *c,
                                 enum alert_level want, int64_t now, enum alert_level *level)
{
    *level = (enum alert_level)s->level;
    switch (s->phase) {
    case PH_OK:
        if (want == ALERT_OK) return EMIT_NONE;
        if (c->for_ns > 0) {
            s->phase = PH_PENDING;
            s->pending_level = (uint8_t)want;
            s->since = now;
            return EMIT_NONE;
        }
        return fire(s, c, want, now, level);
    case PH_PENDING:
        if (want == ALERT_OK) {
            s->phase = PH_OK; /* never fired: nothing to say */
            return EMIT_NONE;
        }
        s->pending_level = (uint8_t)want;
        if (now - s->since >= c->for_ns) return fire(s, c, want, now, level);
        return EMIT_NONE;
    case PH_FIRING:
        if (want == ALERT_OK) {
            s->phase = PH_OK;
            s->ends_at = now;
            /* level stays: a resolved event names the level it was at */
            return after_change(s, c, now, EMIT_RESOLVED);
        }
        if (want != s->level) return fire(s, c, want, now, level);
        if (c->repeat_ns > 0 && !s->flapping && now - s->last_notify >= c->repeat_ns) {
            s->last_notify = now;
            return EMIT_FIRING;
        }
        return EMIT_NONE;
    }
    return EMIT_NONE;
}

enum alert_emit alert_state_timer(struct alert_state *s, const struct alert_sm_conf *c, int64_t now,
                                  enum alert_level *level)
{
    *level = (enum alert_level)s->level;
    if (s->flapping) {
        if (now - s->last_change < c->flap_window_ns) return EMIT_NONE;
        /* Quiet for a whole window: release, and say where it ended up. */
        s->flapping = false;
        s->nchanges = 0;
        s->chead = 0;
        s->last_notify = now;
        if (s->phase == PH_FIRING) {
            s->notified_firing = true;
            return EMIT_FIRING;
        }
        s->notified_firing = false;
        if (s->phase == PH_PENDING) s->phase = PH_OK;
        if (!s->ends_at) s->ends_at = now;
        return EMIT_RESOLVED;
    }
    if (s->phase == PH_PENDING && now - s->since >= c->for_ns)
        return fire(s, c, (enum alert_level)s->pending_level, now, level);
    if (s->phase == PH_FIRING && c->repeat_ns > 0 && now - s->last_notify >= c->repeat_ns) {
        s->last_notify = now;
        return EMIT_FIRING;
    }
    return EMIT_NONE;
}
