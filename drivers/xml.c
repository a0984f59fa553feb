/* The bounded XML element finder of xml.h (AWS Query protocol responses). */
#include <string.h>

#include "xml.h"

/* Is p (inside [p, end)) an opening "<tag" followed by '>', '/' or space? */
static bool is_open(const char *p, const char *end, const char *tag, size_t tl)
{
    if ((size_t)(end - p) < tl + 2 || p[0] != '<' || memcmp(p + 1, tag, tl) != 0) return false;
    char c = p[1 + tl];
    return c == '>' || c == '/' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_close(const char *p, const char *end, const char *tag, size_t tl)
{
    return (size_t)(end - p) >= tl + 3 && p[0] == '<' && p[1] == '/' &&
           memcmp(p + 2, tag, tl) == 0 && p[2 + tl] == '>';
}

bool drv_xml_next(struct drv_xml in, const char *tag, const char **from, struct drv_xml *out)
{
    size_t tl = strlen(tag);
    const char *p = (from && *from) ? *from : in.p;
    for (; p < in.end; p++) {
        if (*p != '<' || !is_open(p, in.end, tag, tl)) continue;
        const char *gt = memchr(p, '>', (size_t)(in.end - p));
        if (!gt) return false;
        if (gt[-1] == '/') { /* <tag/> */
            out->p = out->end = gt + 1;
            if (from) *from = gt + 1;
            return true;
        }
        const char *q = gt + 1;
        int depth = 1;
        for (; q < in.end; q++) {
            if (*q != '<') continue;
            if (is_close(q, in.end, tag, tl)) {
                if (--depth == 0) break;
            } else if (is_open(q, in.end, tag, tl)) {
                const char *g2 = memchr(q, '>', (size_t)(in.end - q));
                if (g2 && g2[-1] != '/') depth++;
            }
        }
        if (q >= in.end) return false; /* unterminated */
        out->p = gt + 1;
        out->end = q;
        if (from) *from = q + tl + 3;
        return true;
    }
    return false;
}

bool drv_xml_child(struct drv_xml in, const char *tag, struct drv_xml *out)
{
    const char *from = NULL;
    return drv_xml_next(in, tag, &from, out);
}

void drv_xml_value(struct drv_xml el, char *buf, size_t buflen)
{
    static const struct {
        const char *ent;
        char c;
    } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    size_t w = 0;
    for (const char *p = el.p; p < el.end && w + 1 < buflen; p++) {
        char c = *p;
        if (c == '&') {
            for (size_t i = 0; i < sizeof ents / sizeof ents[0]; i++) {
                size_t n = strlen(ents[i].ent);
                if ((size_t)(el.end - p) >= n && memcmp(p, ents[i].ent, n) == 0) {
                    c = ents[i].c;
                    p += n - 1;
                    break;
                }
            }
        }
        buf[w++] = c;
    }
    if (buflen) buf[w] = '\0';
}

bool drv_xml_text(struct drv_xml in, const char *tag, char *buf, size_t buflen)
{
    struct drv_xml el;
    if (!drv_xml_child(in, tag, &el)) {
        if (buflen) buf[0] = '\0';
        return false;
    }
    drv_xml_value(el, buf, buflen);
    return true;
}
