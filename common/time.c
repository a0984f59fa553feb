/* Clocks, RFC 3339 and duration parsing/formatting. */
#include "pt/time.h"
#include "pt/err.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t pt_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * PT_NS_PER_SEC + ts.tv_nsec;
}

int64_t pt_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * PT_NS_PER_SEC + ts.tv_nsec;
}

/* Floor division so times before 1970 format correctly too. */
static int64_t floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
    return q;
}

int pt_time_format(int64_t ns, int frac, char *buf, size_t len)
{
    int64_t sec = floordiv(ns, PT_NS_PER_SEC);
    int64_t sub = ns - sec * PT_NS_PER_SEC;
    time_t t = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) return -EINVAL;
    char fr[24] = "";
    if (frac == 3)
        snprintf(fr, sizeof fr, ".%03lld", (long long)(sub / 1000000));
    else if (frac == 6)
        snprintf(fr, sizeof fr, ".%06lld", (long long)(sub / 1000));
    else if (frac == 9)
        snprintf(fr, sizeof fr, ".%09lld", (long long)sub);
    int n = snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d%sZ", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, fr);
    if (n < 0 || (size_t)n >= len) return PT_E_NOSPACE;
    return n;
}

/* Reads exactly n digits. */
static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i])) return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int parse_rfc3339(const char *s, int64_t *out)
{
    int Y, M, D, h, m, sec;
    const char *p = s;
    if (digits(&p, 4, &Y) || *p++ != '-' || digits(&p, 2, &M) || *p++ != '-' || digits(&p, 2, &D))
        return -EINVAL;
    if (*p != 'T' && *p != 't' && *p != ' ') return -EINVAL;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &m) || *p++ != ':' || digits(&p, 2, &sec))
        return -EINVAL;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60) return -EINVAL;
    int64_t frac = 0;
    if (*p == '.') {
        p++;
        int nd = 0;
        while (isdigit((unsigned char)*p)) {
            if (nd < 9) {
                frac = frac * 10 + (*p - '0');
                nd++;
            }
            p++;
        }
        if (nd == 0) return -EINVAL;
        for (; nd < 9; nd++) frac *= 10;
    }
    int64_t off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om;
        p++;
        if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om)) return -EINVAL;
        off = sign * ((int64_t)oh * 3600 + om * 60);
    } else {
        return -EINVAL;
    }
    if (*p) return -EINVAL;
    struct tm tm = {0};
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    *out = ((int64_t)t - off) * PT_NS_PER_SEC + frac;
    return 0;
}

int pt_time_parse(const char *s, int64_t now_ns, int64_t *out_ns)
{
    if (!s || !*s) return -EINVAL;
    if (strncmp(s, "now", 3) == 0 || s[0] == '-' || s[0] == '+') {
        const char *p = s[0] == 'n' ? s + 3 : s;
        if (!*p) {
            *out_ns = now_ns;
            return 0;
        }
        if (*p != '-' && *p != '+') return -EINVAL;
        int64_t d;
        if (pt_duration_parse(p + 1, &d)) return -EINVAL;
        *out_ns = *p == '-' ? now_ns - d : now_ns + d;
        return 0;
    }
    if (strlen(s) >= 10 && s[4] == '-') return parse_rfc3339(s, out_ns);
    /* Unix seconds with an optional fraction. */
    char *end;
    errno = 0;
    long long whole = strtoll(s, &end, 10);
    if (end == s || errno || whole < 0 || whole > INT64_MAX / PT_NS_PER_SEC - 1) return -EINVAL;
    int64_t ns = (int64_t)whole * PT_NS_PER_SEC;
    if (*end == '.') {
        const char *p = end + 1;
        int64_t scale = PT_NS_PER_SEC / 10;
        if (!isdigit((unsigned char)*p)) return -EINVAL;
        while (isdigit((unsigned char)*p)) {
            ns += (*p - '0') * scale;
            scale /= 10;
            p++;
        }
        end = (char *)p;
    }
    if (*end) return -EINVAL;
    *out_ns = ns;
    return 0;
}

static const struct {
    const char *name;
    int64_t ns;
} units[] = {
    {"ns", 1},
    {"us", 1000},
    {"ms", PT_NS_PER_MS},
    {"s", PT_NS_PER_SEC},
    {"m", 60 * PT_NS_PER_SEC},
    {"h", 3600 * PT_NS_PER_SEC},
    {"d", 86400 * PT_NS_PER_SEC},
    {"w", 7 * 86400 * PT_NS_PER_SEC},
};

int pt_duration_parse(const char *s, int64_t *out_ns)
{
    if (!s || !*s) return -EINVAL;
    const char *p = s;
    int64_t total = 0;
    while (*p) {
        if (!isdigit((unsigned char)*p)) return -EINVAL;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno) return -EINVAL;
        p = end;
        size_t ul = 0;
        while (isalpha((unsigned char)p[ul])) ul++;
        int64_t mult = -1;
        if (ul == 0) {
            if (p != s + strlen(s) || total) return -EINVAL; /* bare number only alone */
            mult = PT_NS_PER_SEC;
        }
        for (size_t i = 0; ul && i < sizeof units / sizeof units[0]; i++)
            if (strlen(units[i].name) == ul && strncmp(p, units[i].name, ul) == 0)
                mult = units[i].ns;
        if (mult < 0) return -EINVAL;
        if (v > (unsigned long long)(INT64_MAX / mult)) return -EINVAL;
        int64_t add = (int64_t)v * mult;
        if (total > INT64_MAX - add) return -EINVAL;
        total += add;
        p += ul;
    }
    *out_ns = total;
    return 0;
}

int pt_duration_format(int64_t ns, char *buf, size_t len)
{
    size_t n = 0;
    if (ns <= 0) return snprintf(buf, len, "0s");
    for (int i = (int)(sizeof units / sizeof units[0]) - 1; i >= 0 && ns > 0; i--) {
        if (ns < units[i].ns || units[i].ns == 7 * 86400 * PT_NS_PER_SEC) continue;
        int64_t q = ns / units[i].ns;
        ns -= q * units[i].ns;
        int w = snprintf(buf + n, n < len ? len - n : 0, "%lld%s", (long long)q, units[i].name);
        if (w < 0) return -EINVAL;
        n += (size_t)w;
    }
    if (n >= len) return PT_E_NOSPACE;
    return (int)n;
}
