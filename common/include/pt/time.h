/* Time helpers: clocks in nanoseconds, RFC 3339 formatting and parsing,
 * durations ("250ms", "10s", "5m", "2h", "30d", "1h30m"). */
#ifndef PT_TIME_H
#define PT_TIME_H

#include <stddef.h>
#include <stdint.h>

#define PT_NS_PER_MS  INT64_C(1000000)
#define PT_NS_PER_SEC INT64_C(1000000000)

/* Wall clock (CLOCK_REALTIME), ns since the Unix epoch. */
int64_t pt_now_ns(void);
/* Monotonic clock (CLOCK_MONOTONIC), ns; only differences are meaningful. */
int64_t pt_mono_ns(void);

/* Formats ns as UTC RFC 3339 ("2026-11-21T10:00:00.123Z") with frac digits
 * of fraction (0, 3, 6 or 9). Returns the length or -PT_E_NOSPACE. */
int pt_time_format(int64_t ns, int frac, char *buf, size_t len);

/* Parses a point in time: RFC 3339 ("2026-11-21T10:00:00Z", fraction and
 * "+09:00" offsets allowed), Unix seconds ("1763719200", "1763719200.5"),
 * "now", or now minus/plus a duration ("now-1h", "-15m").
 * Returns 0 or -EINVAL. */
int pt_time_parse(const char *s, int64_t now_ns, int64_t *out_ns);

/* Parses a duration: one or more <number><unit> with units ns, us, ms, s,
 * m, h, d, w ("1h30m"); a bare number means seconds. Returns 0 or -EINVAL
 * (also for negative or overflowing values). */
int pt_duration_parse(const char *s, int64_t *out_ns);

/* Formats a duration compactly ("1h30m", "250ms", "0s"). */
int pt_duration_format(int64_t ns, char *buf, size_t len);

#endif
