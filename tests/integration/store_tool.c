/* pt_store_tool: drives one store backend from JSON lines on stdin, one JSON
 * line of answer per command on stdout, so the integration tests can write
 * the same points through every backend and compare the answers with a
 * reference computed from those points (test_store_servers.py).
 *
 *   pt_store_tool <store URL> [read URL] < commands
 *   {"op":"write","points":[{"ns","mcis","vm","csp","host","m","ts",
 *      "tags":[[k,v],...],"fields":[[k,"f"|"i"|"u"|"s",value],...]}]}
 *   {"op":"query","ns","mcis","vm"?,"measurement","fields"?,"tags"?,
 *      "from","to","step","agg","across","group_by_vm","max_rows"}
 *   {"op":"latest","ns","mcis","vm"?,"measurement"?}
 * Answers carry "rc" (0 or the negative code) and "err" (its name), plus
 * "refused"/"unwritable" counters after writes. Integers too large for
 * JSON numbers may be given as strings. Every answer has "ms", the time
 * the command took. STORE_USER/STORE_PASSWORD set
 * basic auth; STORE_DATA_DIR the data_dir (sqlite:). */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pt/catalog.h"
#include "pt/err.h"
#include "pt/log.h"
#include "store/store.h"

static _Atomic uint64_t refused, unwritable;

static struct pt_str jstr(json_t *j)
{
    const char *s = json_string_value(j);
    return s ? (struct pt_str){s, (uint32_t)json_string_length(j)} : (struct pt_str){NULL, 0};
}

static int64_t jint(json_t *j)
{
    if (json_is_string(j)) return strtoll(json_string_value(j), NULL, 10);
    return (int64_t)json_integer_value(j);
}

static json_t *do_write(const struct store_ops *ops, struct store *st, json_t *cmd)
{
    json_t *pts = json_object_get(cmd, "points");
    size_t n = json_array_size(pts);
    struct store_point *p = calloc(n + 1, sizeof *p);
    struct pt_ident *ids = calloc(n + 1, sizeof *ids);
    struct pt_meas *ms = calloc(n + 1, sizeof *ms);
    for (size_t i = 0; i < n; i++) {
        json_t *j = json_array_get(pts, i);
        ids[i] = (struct pt_ident){jstr(json_object_get(j, "ns")), jstr(json_object_get(j, "mcis")),
                                   jstr(json_object_get(j, "vm")), jstr(json_object_get(j, "csp")),
                                   jstr(json_object_get(j, "host"))};
        struct pt_meas *m = &ms[i];
        m->name = jstr(json_object_get(j, "m"));
        json_t *tags = json_object_get(j, "tags"), *fields = json_object_get(j, "fields");
        m->ntags = (uint16_t)json_array_size(tags);
        m->nfields = (uint16_t)json_array_size(fields);
        m->tags = calloc(m->ntags + 1, sizeof *m->tags);
        m->fields = calloc(m->nfields + 1, sizeof *m->fields);
        for (size_t t = 0; t < m->ntags; t++) {
            m->tags[t].key = jstr(json_array_get(json_array_get(tags, t), 0));
            m->tags[t].val = jstr(json_array_get(json_array_get(tags, t), 1));
        }
        for (size_t f = 0; f < m->nfields; f++) {
            json_t *fj = json_array_get(fields, f);
            struct pt_field *d = &m->fields[f];
            const char *type = json_string_value(json_array_get(fj, 1));
            json_t *v = json_array_get(fj, 2);
            d->key = jstr(json_array_get(fj, 0));
            if (!type || type[0] == 'f') {
                d->type = PT_F_FLOAT;
                d->v.f =
                    json_is_string(v) ? strtod(json_string_value(v), NULL) : json_number_value(v);
            } else if (type[0] == 'i') {
                d->type = PT_F_INT;
                d->v.i = jint(v);
            } else if (type[0] == 'u') {
                d->type = PT_F_UINT;
                d->v.u = json_is_string(v) ? strtoull(json_string_value(v), NULL, 10)
                                           : (uint64_t)json_integer_value(v);
            } else {
                d->type = PT_F_STR;
                d->v.s = jstr(v);
            }
        }
        p[i] = (struct store_point){&ids[i], m, jint(json_object_get(j, "ts"))};
    }
    int rc = ops->write_batch(st, p, n);
    for (size_t i = 0; i < n; i++) {
        free(ms[i].tags);
        free(ms[i].fields);
    }
    free(p);
    free(ids);
    free(ms);
    return json_pack("{s:i,s:s,s:I,s:I}", "rc", rc, "err", pt_strerror(rc), "refused",
                     (json_int_t)refused, "unwritable", (json_int_t)unwritable);
}

static json_t *jnum(double v)
{
    return isnan(v) ? json_null() : json_real(v);
}

static json_t *tags_obj(char **k, char **v, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++) json_object_set_new(o, k[i], json_string(v[i]));
    return o;
}

static const char **strv(json_t *a, size_t *n)
{
    *n = json_array_size(a);
    const char **v = calloc(*n + 1, sizeof *v);
    for (size_t i = 0; i < *n; i++) v[i] = json_string_value(json_array_get(a, i));
    return v;
}

static json_t *do_query(const struct store_ops *ops, struct store *st, json_t *cmd)
{
    struct store_query q = {0};
    q.ns = json_string_value(json_object_get(cmd, "ns"));
    q.mcis = json_string_value(json_object_get(cmd, "mcis"));
    q.vm = json_string_value(json_object_get(cmd, "vm"));
    q.measurement = json_string_value(json_object_get(cmd, "measurement"));
    size_t nf = 0, nt = json_array_size(json_object_get(cmd, "tags"));
    const char **fields =
        json_object_get(cmd, "fields") ? strv(json_object_get(cmd, "fields"), &nf) : NULL;
    const char **tk = calloc(nt + 1, sizeof *tk), **tv = calloc(nt + 1, sizeof *tv);
    for (size_t i = 0; i < nt; i++) {
        json_t *pair = json_array_get(json_object_get(cmd, "tags"), i);
        tk[i] = json_string_value(json_array_get(pair, 0));
        tv[i] = json_string_value(json_array_get(pair, 1));
    }
    q.fields = fields;
    q.nfields = nf;
    q.tag_keys = tk;
    q.tag_vals = tv;
    q.ntag_filters = nt;
    q.from_ns = jint(json_object_get(cmd, "from"));
    q.to_ns = jint(json_object_get(cmd, "to"));
    q.step_ns = jint(json_object_get(cmd, "step"));
    const char *agg = json_string_value(json_object_get(cmd, "agg"));
    const char *across = json_string_value(json_object_get(cmd, "across"));
    q.agg = agg ? (enum store_agg)store_agg_parse(agg) : STORE_AGG_NONE;
    q.across = across ? (enum store_agg)store_agg_parse(across) : STORE_AGG_NONE;
    q.group_by_vm = json_is_true(json_object_get(cmd, "group_by_vm"));
    q.max_rows = (size_t)json_integer_value(json_object_get(cmd, "max_rows"));
    struct store_result r;
    int rc = ops->query(st, &q, &r);
    json_t *out = json_pack("{s:i,s:s}", "rc", rc, "err", pt_strerror(rc)), *series = json_array();
    for (size_t i = 0; rc == 0 && i < r.nseries; i++) {
        struct store_series *s = &r.series[i];
        json_t *js = json_object(), *f = json_array(), *ft = json_array(), *ts = json_array(),
               *vals = json_array();
        json_object_set_new(js, "vm", s->vm ? json_string(s->vm) : json_null());
        json_object_set_new(js, "measurement", json_string(s->measurement));
        json_object_set_new(js, "tags", tags_obj(s->tag_keys, s->tag_vals, s->ntags));
        for (size_t c = 0; c < s->nfields; c++) {
            json_array_append_new(f, json_string(s->fields[c]));
            json_array_append_new(ft, json_integer(s->ftypes[c]));
        }
        for (size_t row = 0; row < s->nrows; row++) {
            json_array_append_new(ts, json_integer(s->ts[row]));
            json_t *jr = json_array();
            for (size_t c = 0; c < s->nfields; c++)
                json_array_append_new(jr, jnum(s->vals[row * s->nfields + c]));
            json_array_append_new(vals, jr);
        }
        json_object_set_new(js, "fields", f);
        json_object_set_new(js, "ftypes", ft);
        json_object_set_new(js, "ts", ts);
        json_object_set_new(js, "vals", vals);
        json_array_append_new(series, js);
    }
    json_object_set_new(out, "series", series);
    store_result_free(&r);
    free(fields);
    free(tk);
    free(tv);
    return out;
}

static json_t *do_latest(const struct store_ops *ops, struct store *st, json_t *cmd)
{
    struct store_result r;
    int rc = ops->latest(st, json_string_value(json_object_get(cmd, "ns")),
                         json_string_value(json_object_get(cmd, "mcis")),
                         json_string_value(json_object_get(cmd, "vm")),
                         json_string_value(json_object_get(cmd, "measurement")), &r);
    json_t *out = json_pack("{s:i,s:s}", "rc", rc, "err", pt_strerror(rc)), *arr = json_array();
    for (size_t i = 0; rc == 0 && i < r.nlatest; i++) {
        struct store_latest *l = &r.latest[i];
        json_t *f = json_object();
        for (size_t j = 0; j < l->nfields; j++) {
            struct pt_field *d = &l->fields[j];
            json_t *v;
            char buf[32];
            switch (d->type) {
            case PT_F_INT:
                v = json_pack("[s,I]", "i", (json_int_t)d->v.i);
                break;
            case PT_F_UINT:
                snprintf(buf, sizeof buf, "%" PRIu64, d->v.u);
                v = json_pack("[s,s]", "u", buf);
                break;
            case PT_F_STR:
                v = json_pack("[s,s%]", "s", d->v.s.p, (size_t)d->v.s.len);
                break;
            default:
                v = json_pack("[s,o]", "f", jnum(d->v.f));
            }
            json_object_set_new(f, d->key.p, v);
        }
        json_array_append_new(arr, json_pack("{s:s?,s:s,s:o,s:I,s:o}", "vm", l->vm, "measurement",
                                             l->measurement, "tags",
                                             tags_obj(l->tag_keys, l->tag_vals, l->ntags), "ts",
                                             (json_int_t)l->ts_ns, "fields", f));
    }
    json_object_set_new(out, "latest", arr);
    store_result_free(&r);
    return out;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s <store URL> [read URL] < commands\n", argv[0]);
        return 2;
    }
    const struct store_ops *ops = store_ops_for_url(argv[1]);
    if (!ops) {
        fprintf(stderr, "no backend for %s\n", argv[1]);
        return 2;
    }
    const char *dir = getenv("STORE_DATA_DIR");
    struct store_conf conf = {.url = argv[1],
                              .data_dir = dir ? dir : ".",
                              .read_url = argc > 2 ? argv[2] : NULL,
                              .user = getenv("STORE_USER"),
                              .password = getenv("STORE_PASSWORD"),
                              .points_refused = &refused,
                              .points_unwritable = &unwritable};
    char err[512];
    struct store *st;
    int rc = ops->open(&conf, &st, err, sizeof err);
    if (rc) {
        printf("{\"rc\":%d,\"err\":\"open\"}\n", rc);
        fprintf(stderr, "open: %s\n", err);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, stdin) > 0) {
        json_error_t je;
        json_t *cmd = json_loads(line, 0, &je);
        if (!cmd) {
            fprintf(stderr, "bad command: %s\n", je.text);
            continue;
        }
        const char *op = json_string_value(json_object_get(cmd, "op"));
        json_t *out = NULL;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (op && strcmp(op, "write") == 0)
            out = do_write(ops, st, cmd);
        else if (op && strcmp(op, "query") == 0)
            out = do_query(ops, st, cmd);
        else if (op && strcmp(op, "latest") == 0)
            out = do_latest(ops, st, cmd);
        else
            out = json_pack("{s:i,s:s}", "rc", -EINVAL, "err", "unknown op");
        clock_gettime(CLOCK_MONOTONIC, &t1);
        /* For the benchmarks: the time of the backend call and its output. */
        json_object_set_new(out, "ms",
                            json_real((double)(t1.tv_sec - t0.tv_sec) * 1e3 +
                                      (double)(t1.tv_nsec - t0.tv_nsec) / 1e6));
        char *s = json_dumps(out, JSON_COMPACT);
        printf("%s\n", s);
        fflush(stdout);
        free(s);
        json_decref(out);
        json_decref(cmd);
    }
    free(line);
    ops->close(st);
    return 0;
}
