/* drv_fetch: runs one driver fetch from a JSON target and prints the
 * normalised result as JSON. Used by test_aws_moto.py (the AWS driver end to
 * end against moto_server), and handy to try a target's credentials by hand:
 *
 *   drv_fetch target.json FROM TO PERIOD [metric,...]
 *
 * target.json: {"driver": "aws", ...the driver's keys (docs/drivers.md)}.
 * Exit status 0 when fetch() returned 0, 1 otherwise (the error is printed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drv.h"

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s target.json FROM TO PERIOD [metric,...]\n", argv[0]);
        return 2;
    }
    json_error_t je;
    json_t *conf = json_load_file(argv[1], 0, &je);
    if (!conf) {
        fprintf(stderr, "%s: %s (line %d)\n", argv[1], je.text, je.line);
        return 2;
    }
    const struct drv_ops *ops = drv_lookup(json_string_value(json_object_get(conf, "driver")));
    if (!ops) {
        fprintf(stderr,
                "%s: \"driver\" must name a driver (aws, azure, gcp, alibaba, tencent, openstack, "
                "ncp, cbspider)\n",
                argv[1]);
        json_decref(conf);
        return 2;
    }
    struct drv_query q = {0, strtoll(argv[2], NULL, 10), strtoll(argv[3], NULL, 10), atoi(argv[4]),
                          NULL};
    if (argc > 5) {
        char *list = strdup(argv[5]), *save = NULL;
        for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            int m = drv_metric_parse(t);
            if (m < 0) {
                fprintf(stderr, "unknown metric \"%s\"\n", t);
                free(list);
                json_decref(conf);
                return 2;
            }
            q.metrics |= DRV_MASK(m);
        }
        free(list);
    } else {
        q.metrics = DRV_MASK_ALL;
    }
    struct drv_http *http = drv_http_curl_new(0);
    struct drv_env env = {http, NULL};
    struct drv *d = NULL;
    struct drv_error e;
    struct drv_result r;
    int rc = ops->create(conf, &env, &d, &e);
    json_decref(conf);
    json_t *out = json_object();
    if (rc == 0) rc = ops->fetch(d, &q, &r, &e);
    json_object_set_new(out, "rc", json_integer(rc));
    if (rc < 0) {
        json_object_set_new(out, "error",
                            json_pack("{s:s, s:s, s:s, s:s, s:i, s:i}", "code", drv_strerror(rc),
                                      "provider_code", e.provider_code, "message", e.message,
                                      "request_id", e.request_id, "http_status", e.http_status,
                                      "retry_after_s", e.retry_after_s));
    }
    if (d) {
        json_t *series = json_array(), *status = json_object();
        for (size_t i = 0; rc == 0 && i < r.n; i++) {
            const struct drv_series *s = &r.series[i];
            json_t *tags = json_pack("{s:s, s:s}", "source", "agentless", "driver", r.driver);
            if (s->tag_key[0]) json_object_set_new(tags, s->tag_key, json_string(s->tag_value));
            json_t *pts = json_array();
            for (size_t k = 0; k < s->n; k++)
                json_array_append_new(
                    pts, json_pack("[I, f]", (json_int_t)s->points[k].ts, s->points[k].value));
            json_array_append_new(series, json_pack("{s:s, s:s, s:o, s:o}", "name", s->name, "unit",
                                                    s->unit, "tags", tags, "points", pts));
        }
        for (int m = 0; rc == 0 && m < DRV_M_COUNT; m++)
            if ((q.metrics & DRV_MASK(m)) && r.status[m])
                json_object_set_new(status, drv_metric_name(m),
                                    json_pack("{s:s, s:s}", "status", drv_strerror(r.status[m]),
                                              "message", r.metric_error[m].message));
        json_object_set_new(out, "series", series);
        json_object_set_new(out, "status", status);
        drv_result_free(&r);
        ops->destroy(d);
    }
    char *text = json_dumps(out, JSON_INDENT(1) | JSON_SORT_KEYS);
    puts(text);
    free(text);
    json_decref(out);
    http->free(http);
    return rc == 0 ? 0 : 1;
}
