/* The four glibc fortify entry points that Debian's static libjansson.a and
 * libmsgpuck.a call and musl does not have, for the static agent only
 * (PT_AGENT_STATIC, cmake/PtStatic.cmake).
 *
 * Debian compiles its libraries with -D_FORTIFY_SOURCE=2, which turns
 * snprintf(buf, n, ...) with a buffer of known size into
 * __snprintf_chk(buf, n, flag, sizeof buf, ...). The contract (glibc's
 * debug/ directory, and the LSB) is: abort when the length given exceeds the
 * object's size, otherwise behave as the plain function. That is what is
 * implemented here, on musl's plain functions, so the checks those libraries
 * were built with still hold. Everything else they call is in musl with the
 * same ABI (checked with `nm -u`; see docs/agent.md, "Static build"). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int __snprintf_chk(char *s, size_t maxlen, int flag, size_t slen, const char *fmt, ...);
int __vsnprintf_chk(char *s, size_t maxlen, int flag, size_t slen, const char *fmt, va_list ap);
int __fprintf_chk(FILE *fp, int flag, const char *fmt, ...);
char *__strncpy_chk(char *dst, const char *src, size_t len, size_t dstlen);

/* glibc's __chk_fail() prints "*** buffer overflow detected ***" and
 * aborts; so does this, without stdio (the state may be corrupt). */
static _Noreturn void chk_fail(void)
{
    static const char msg[] = "*** buffer overflow detected ***: terminated\n";
    ssize_t n = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)n; /* nothing better to do when even this fails */
    abort();
}

int __vsnprintf_chk(char *s, size_t maxlen, int flag, size_t slen, const char *fmt, va_list ap)
{
    if (maxlen > slen) chk_fail();
    return vsnprintf(s, maxlen, fmt, ap);
}

int __snprintf_chk(char *s, size_t maxlen, int flag, size_t slen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = __vsnprintf_chk(s, maxlen, flag, slen, fmt, ap);
    va_end(ap);
    return n;
}

/* flag asks glibc to refuse %n in writable formats; musl's printf has no
 * such mode, and these libraries' formats are string literals. */
int __fprintf_chk(FILE *fp, int flag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vfprintf(fp, fmt, ap);
    va_end(ap);
    return n;
}

char *__strncpy_chk(char *dst, const char *src, size_t len, size_t dstlen)
{
    if (len > dstlen) chk_fail();
    return strncpy(dst, src, len);
}
