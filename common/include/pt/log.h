/* Logging: one macro family with levels and a component prefix.
 *
 *   PT_WARN("ingest", "dropped %u frames", n);
 *
 * The arguments are evaluated only when the level is enabled. Lines go to
 * stderr (or the file given to pt_log_open()) as
 *   2026-11-21T10:00:00.123Z warn  ingest: dropped 3 frames
 * written with one write(2) so concurrent threads do not interleave.
 *
 * A failure that repeats every interval goes through pt_complain(): logged
 * once, then again only after a doubling delay (10 s, 20 s, ... up to 1 h)
 * with the number of repeats in between, and pt_complain_release() logs once
 * when it stops. The log threshold and output are process-wide, set once at
 * start-up. */
#ifndef PT_LOG_H
#define PT_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum pt_log_level { PT_LOG_ERROR = 0, PT_LOG_WARN, PT_LOG_INFO, PT_LOG_DEBUG };

extern int pt_log_threshold;

/* Parses "error", "warn", "info", "debug"; returns the level or -1. */
int pt_log_level_parse(const char *name);
void pt_log_set_level(int level);
/* Appends to path instead of stderr; returns 0 or -errno. */
int pt_log_open(const char *path);

#if defined(__GNUC__)
#define PT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define PT_PRINTF(a, b)
#endif

void pt_log_write(int level, const char *component, const char *fmt, ...) PT_PRINTF(3, 4);

#define PT_LOG(level, comp, ...)                                                     \
    do {                                                                             \
        if ((level) <= pt_log_threshold) pt_log_write((level), (comp), __VA_ARGS__); \
    } while (0)
#define PT_ERROR(comp, ...) PT_LOG(PT_LOG_ERROR, comp, __VA_ARGS__)
#define PT_WARN(comp, ...)  PT_LOG(PT_LOG_WARN, comp, __VA_ARGS__)
#define PT_INFO(comp, ...)  PT_LOG(PT_LOG_INFO, comp, __VA_ARGS__)
#define PT_DEBUG(comp, ...) PT_LOG(PT_LOG_DEBUG, comp, __VA_ARGS__)

/* Rate-limited complaint state; zero-initialise (PT_COMPLAIN_INIT). */
struct pt_complain {
    int64_t next_ns;     /* monotonic time before which repeats are only counted */
    int64_t backoff_ns;  /* current delay, doubles up to one hour */
    uint64_t suppressed; /* repeats not logged since the last line */
    bool active;
};
#define PT_COMPLAIN_INIT \
    {                    \
        0, 0, 0, false   \
    }

void pt_complain(struct pt_complain *c, int level, const char *component, const char *fmt, ...)
    PT_PRINTF(4, 5);
/* True when pt_complain(c, ...) would log now: lets a caller skip building
 * an expensive message that would only be counted. */
bool pt_complain_due(const struct pt_complain *c);
/* Logs fmt at info level once if c was complaining, and resets it. */
void pt_complain_release(struct pt_complain *c, const char *component, const char *fmt, ...)
    PT_PRINTF(3, 4);

#endif
