/* libFuzzer target for configuration files (common/conf.c): arbitrary text
 * through pt_conf_parse(), the getters pantalad and the agent use, getters
 * of every type on the keys the document itself holds (so odd keys reach
 * the lookup and the line finder), then pt_conf_finish(). Errors must come
 * with a message; nothing may crash or leak. */
#include "pt/conf.h"
#include "pt/err.h"
#include "pt/time.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond, what)                                                         \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "fuzz_conf: %s (%s:%d)\n", what, __FILE__, __LINE__); \
            abort();                                                              \
        }                                                                         \
    } while (0)

/* A getter's result: 0, or PT_E_CONFIG with a message, or -ENOMEM. */
static void check_rc(const struct pt_conf *c, int rc)
{
    CHECK(rc == 0 || rc == PT_E_CONFIG || rc < 0, "getter result");
    if (rc == PT_E_CONFIG) CHECK(pt_conf_error(c)[0] != '\0', "error without a message");
}

/* Every getter on key, chosen by sel. */
static int get_any(struct pt_conf *c, const char *key, unsigned sel)
{
    const char *s;
    int64_t i;
    bool b;
    const char **list;
    size_t n;
    int rc = 0;
    switch (sel % 6) {
    case 0:
        rc = pt_conf_str(c, key, "default", &s);
        if (!rc) CHECK(s != NULL, "string getter gave NULL");
        break;
    case 1:
        rc = pt_conf_int(c, key, -100, 1 << 20, 7, &i);
        if (!rc) CHECK(i >= -100 && i <= 1 << 20, "int out of range");
        break;
    case 2:
        rc = pt_conf_bool(c, key, false, &b);
        break;
    case 3:
        rc =
            pt_conf_duration(c, key, PT_NS_PER_MS, 3650 * 86400 * PT_NS_PER_SEC, PT_NS_PER_SEC, &i);
        if (!rc) CHECK(i >= PT_NS_PER_MS && i <= 3650 * 86400 * PT_NS_PER_SEC, "duration range");
        break;
    case 4:
        rc = pt_conf_strlist(c, key, &list, &n);
        if (!rc) {
            for (size_t k = 0; k < n; k++) CHECK(list[k] && list[k][0], "empty list element");
            free(list);
        }
        break;
    case 5:
        (void)pt_conf_json(c, key);
        (void)pt_conf_line(c, key);
        break;
    }
    return rc;
}

/* What pantalad reads (tests/bench/README.md has the file). */
static const char *const daemon_keys[] = {
    "data_dir",       "listen.udp",        "listen.http",   "api.tokens", "ingest.insecure",
    "ingest.max_age", "ingest.max_future", "ingest.rcvbuf", "store.url",  "store.retention",
    "writer.queue",   "writer.batch",      "writer.flush",  "log.level",  "log.file",
};
static const unsigned daemon_sel[] = {0, 0, 0, 4, 2, 3, 3, 1, 0, 3, 1, 1, 3, 0, 0};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pt_conf c;
    int rc = pt_conf_parse(&c, "fuzz.json", (const char *)data, size);
    if (rc) {
        CHECK(rc == PT_E_CONFIG || rc == -ENOMEM, "parse result");
        CHECK(pt_conf_error(&c)[0] != '\0', "parse error without a message");
        pt_conf_close(&c);
        return 0;
    }
    unsigned sel = size ? data[size - 1] : 0;
    for (size_t i = 0; i < sizeof daemon_keys / sizeof *daemon_keys; i++) {
        rc = get_any(&c, daemon_keys[i], daemon_sel[i]);
        check_rc(&c, rc);
        if (rc) break;
    }
    /* The document's own keys, one and two levels deep, with a getter
     * picked from the input. */
    const char *k1, *k2;
    json_t *v1, *v2;
    json_object_foreach(c.root, k1, v1)
    {
        char path[600];
        check_rc(&c, get_any(&c, k1, sel++));
        if (!json_is_object(v1)) continue;
        json_object_foreach(v1, k2, v2)
        {
            snprintf(path, sizeof path, "%s.%s", k1, k2);
            check_rc(&c, get_any(&c, path, sel++));
        }
    }
    check_rc(&c, pt_conf_fail(&c, "listen.udp", "must be %s", "host:port"));
    rc = pt_conf_finish(&c);
    check_rc(&c, rc);
    pt_conf_close(&c);
    return 0;
}
