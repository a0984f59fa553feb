/* Leveled, component-prefixed logging and collectd-style rate limiting. */
#include "pt/log.h"
#include "pt/time.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int pt_log_threshold = PT_LOG_INFO;
static int pt_log_fd = 2;

static const char *const level_names[] = {"error", "warn ", "info ", "debug"};

int pt_log_level_parse(const char *name)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcmp(name, names[i]) == 0) return i;
    if (strcmp(name, "warning") == 0) return PT_LOG_WARN;
    return -1;
}

void pt_log_set_level(int level)
{
    if (level >= PT_LOG_ERROR && level <= PT_LOG_DEBUG) pt_log_threshold = level;
}

int pt_log_open(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) return -errno;
    if (pt_log_fd > 2) close(pt_log_fd);
    pt_log_fd = fd;
    return 0;
}

static void log_vwrite(int level, const char *component, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void log_vwrite(int level, const char *component, const char *fmt, va_list ap)
{
    char line[2048];
    char ts[40];
    pt_time_format(pt_now_ns(), 3, ts, sizeof ts);
    int n = snprintf(line, sizeof line, "%s %s %s: ", ts, level_names[level], component);
    if (n < 0) return;
    if ((size_t)n < sizeof line) {
        int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
        if (m > 0) n += m;
    }
    if ((size_t)n >= sizeof line - 1) n = (int)sizeof line - 2; /* truncated message */
    line[n++] = '\n';
    ssize_t w;
    do {
        w = write(pt_log_fd, line, (size_t)n);
    } while (w < 0 && errno == EINTR);
}

void pt_log_write(int level, const char *component, const char *fmt, ...)
{
    if (level < PT_LOG_ERROR) level = PT_LOG_ERROR;
    if (level > PT_LOG_DEBUG) level = PT_LOG_DEBUG;
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, component, fmt, ap);
    va_end(ap);
}

#define COMPLAIN_FIRST_NS (10 * PT_NS_PER_SEC)
#define COMPLAIN_MAX_NS   (3600 * PT_NS_PER_SEC)

void pt_complain(struct pt_complain *c, int level, const char *component, const char *fmt, ...)
{
    int64_t now = pt_mono_ns();
    if (c->active && now < c->next_ns) {
        c->suppressed++;
        return;
    }
    if (level > pt_log_threshold) return;
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->suppressed)
        pt_log_write(level, component, "%s (repeated %llu times since last report)", msg,
                     (unsigned long long)c->suppressed);
    else
        pt_log_write(level, component, "%s", msg);
    c->backoff_ns = c->active ? c->backoff_ns * 2 : COMPLAIN_FIRST_NS;
    if (c->backoff_ns > COMPLAIN_MAX_NS) c->backoff_ns = COMPLAIN_MAX_NS;
    c->next_ns = now + c->backoff_ns;
    c->suppressed = 0;
    c->active = true;
}

void pt_complain_release(struct pt_complain *c, const char *component, const char *fmt, ...)
{
    if (!c->active) return;
    c->active = false;
    c->suppressed = 0;
    c->backoff_ns = 0;
    if (PT_LOG_INFO > pt_log_threshold) return;
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(PT_LOG_INFO, component, fmt, ap);
    va_end(ap);
}

bool pt_complain_due(const struct pt_complain *c)
{
    return !c->active || pt_mono_ns() >= c->next_ns;
}
