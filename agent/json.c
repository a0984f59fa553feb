/* Pretty JSON output of a frame. */
#include "json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "pt/catalog.h"
#include "pt/time.h"

static void json_str(FILE *out, struct pt_str s)
{
    putc('"', out);
    for (uint32_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            fprintf(out, "\\u%04x", c);
        else
            putc(c, out);
    }
    putc('"', out);
}

static void json_float(FILE *out, double v)
{
    char b[40];
    if (!isfinite(v)) { /* JSON has no NaN; agent_meas_float() never adds one */
        fputs("null", out);
        return;
    }
    snprintf(b, sizeof b, "%.15g", v);
    fputs(b, out);
    if (!strpbrk(b, ".e")) fputs(".0", out); /* "12" would read as an integer */
}

static void json_field(FILE *out, const struct pt_field *fl)
{
    switch (fl->type) {
    case PT_F_FLOAT:
        json_float(out, fl->v.f);
        break;
    case PT_F_UINT:
        fprintf(out, "%" PRIu64, fl->v.u);
        break;
    case PT_F_INT:
        fprintf(out, "%" PRId64, fl->v.i);
        break;
    case PT_F_STR:
        json_str(out, fl->v.s);
        break;
    default:
        fputs("null", out);
    }
}

static void json_meas(FILE *out, const struct pt_meas *m)
{
    fputs("    {\n      \"name\": ", out);
    json_str(out, m->name);
    fputs(",\n      \"tags\": {", out);
    for (size_t i = 0; i < m->ntags; i++) {
        fputs(i ? ", " : "", out);
        json_str(out, m->tags[i].key);
        fputs(": ", out);
        json_str(out, m->tags[i].val);
    }
    fputs("},\n      \"fields\": {", out);
    for (size_t i = 0; i < m->nfields; i++) {
        fputs(i ? ",\n        " : "\n        ", out);
        json_str(out, m->fields[i].key);
        fputs(": ", out);
        json_field(out, &m->fields[i]);
    }
    fputs(m->nfields ? "\n      }\n    }" : "}\n    }", out);
}

int agent_json_write(FILE *out, const struct pt_frame *f)
{
    char ts[40];
    if (pt_time_format(f->ts_ns, 3, ts, sizeof ts) < 0) ts[0] = '\0';
    fprintf(out, "{\n  \"time\": \"%s\",\n  \"ns\": ", ts);
    json_str(out, f->id.ns);
    fputs(",\n  \"mcis\": ", out);
    json_str(out, f->id.mcis);
    fputs(",\n  \"vm\": ", out);
    json_str(out, f->id.vm);
    fputs(",\n  \"csp\": ", out);
    json_str(out, f->id.csp);
    fputs(",\n  \"host\": ", out);
    json_str(out, f->id.host);
    fprintf(out, ",\n  \"interval_ms\": %" PRIu32 ",\n  \"measurements\": [", f->interval_ms);
    for (size_t i = 0; i < f->nmeas; i++) {
        fputs(i ? ",\n" : "\n", out);
        json_meas(out, &f->meas[i]);
    }
    fputs(f->nmeas ? "\n  ]\n}\n" : "]\n}\n", out);
    return fflush(out) == 0 && !ferror(out) ? 0 : -EIO;
}
