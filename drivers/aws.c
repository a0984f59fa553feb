/* AWS CloudWatch driver: GetMetricData over the Query protocol (form-encoded
 * POST, XML response; API reference "GetMetricData", Query API version
 * 2010-08-01), signed with SigV4, NextToken paging.
 *
 * Mapping (AWS/EC2 namespace, InstanceId dimension):
 *   cpu_utilization  CPUUtilization, Average, already %
 *   kb_read/written  EBSReadBytes/EBSWriteBytes (disk "ebs", Nitro), or
 *                    DiskReadBytes/DiskWriteBytes (disk "instance-store"), or
 *                    AWS/EBS VolumeReadBytes/VolumeWriteBytes per VolumeId
 *                    ("volumes": [...], tagged disk=<volume id>); Sum per
 *                    period / period / 1024
 *   ops_read/write   EBSReadOps.. / DiskReadOps.. / VolumeReadOps.., Sum / period
 *   bytes_in/out     NetworkIn/NetworkOut, Sum / period
 *   mem_utilization  unsupported: EC2 publishes memory only through the
 *                    CloudWatch agent (CWAgent namespace) installed on the VM. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drv_int.h"
#include "sign/sign.h"
#include "xml.h"

#define AWS_MAX_VOLUMES       16
#define AWS_MAX_QUERIES       (4 + 4 * AWS_MAX_VOLUMES + 2)
#define AWS_MAX_PAGES         50
#define AWS_MAX_SESSION_TOKEN 8192

enum aws_disk { AWS_DISK_EBS, AWS_DISK_INSTANCE_STORE, AWS_DISK_VOLUMES };

struct drv {
    struct drv_env env;
    char *access_key, *secret_key, *session_token;
    char *region, *endpoint, *instance;
    enum aws_disk disk;
    char *volumes[AWS_MAX_VOLUMES];
    size_t nvolumes;
    long min_period, timeout_ms;
};
DRV_ENV_FIRST(struct drv);

extern const struct drv_ops drv_aws_ops;

struct aws_q {
    enum drv_metric m;
    const char *ns, *name, *dim, *stat;
    const char *dim_value;
    const char *device; /* disk tag or NULL */
    bool per_period;    /* Sum over the period: divide by it */
    double scale;
};

static void aws_destroy(struct drv *d)
{
    if (!d) return;
    free(d->access_key);
    free(d->secret_key);
    free(d->session_token);
    free(d->region);
    free(d->endpoint);
    free(d->instance);
    for (size_t i = 0; i < d->nvolumes; i++) free(d->volumes[i]);
    free(d);
}

static int aws_create(const json_t *conf, const struct drv_env *env, struct drv **out,
                      struct drv_error *err)
{
    *out = NULL;
    struct drv *d = calloc(1, sizeof *d);
    if (!d) return drv_err_set(err, -ENOMEM, 0, NULL, NULL, "out of memory");
    d->env = *env;
    const json_t *cred = json_object_get(conf, "credentials");
    char *disk = NULL;
    int rc = drv_conf_str(cred, "access_key_id", true, NULL, &d->access_key, err);
    if (rc == 0) rc = drv_conf_str(cred, "secret_access_key", true, NULL, &d->secret_key, err);
    if (rc == 0) rc = drv_conf_str(cred, "session_token", false, NULL, &d->session_token, err);
    if (rc == 0) rc = drv_conf_str(conf, "region", true, NULL, &d->region, err);
    if (rc == 0) rc = drv_conf_str(conf, "instance", false, NULL, &d->instance, err);
    if (rc == 0) rc = drv_conf_str(conf, "endpoint", false, NULL, &d->endpoint, err);
    if (rc == 0) rc = drv_conf_str(conf, "disk", false, "ebs", &disk, err);
    if (rc == 0) rc = drv_conf_int(conf, "min_period", 60, &d->min_period, err);
    if (rc == 0) rc = drv_conf_int(conf, "timeout_ms", 30000, &d->timeout_ms, err);
    if (rc == 0 && !d->endpoint) {
        char url[256];
        snprintf(url, sizeof url, "https://monitoring.%s.amazonaws.com", d->region);
        d->endpoint = strdup(url);
        if (!d->endpoint) rc = drv_err_set(err, -ENOMEM, 0, NULL, NULL, "out of memory");
    }
    if (rc == 0) {
        drv_trim_slash(d->endpoint);
        if (strcmp(disk, "ebs") == 0)
            d->disk = AWS_DISK_EBS;
        else if (strcmp(disk, "instance-store") == 0)
            d->disk = AWS_DISK_INSTANCE_STORE;
        else if (strcmp(disk, "volumes") == 0)
            d->disk = AWS_DISK_VOLUMES;
        else
            rc = drv_err_set(err, DRV_E_CONFIG, 0, NULL, NULL,
                             "aws: \"disk\" must be ebs, instance-store or volumes, not \"%s\"",
                             disk);
    }
    const json_t *vols = json_object_get(conf, "volumes");
    if (rc == 0 && d->disk == AWS_DISK_VOLUMES) {
        if (!json_is_array(vols) || json_array_size(vols) == 0 ||
            json_array_size(vols) > AWS_MAX_VOLUMES)
            rc = drv_err_set(err, DRV_E_CONFIG, 0, NULL, NULL,
                             "aws: disk \"volumes\" needs \"volumes\": 1 to %d EBS volume ids",
                             AWS_MAX_VOLUMES);
        for (size_t i = 0; rc == 0 && i < json_array_size(vols); i++) {
            const char *v = json_string_value(json_array_get(vols, i));
            if (!v || !*v) {
                rc = drv_err_set(err, DRV_E_CONFIG, 0, NULL, NULL,
                                 "aws: volumes[%zu] must be a volume id string", i);
            } else if (!(d->volumes[d->nvolumes++] = strdup(v))) {
                rc = drv_err_set(err, -ENOMEM, 0, NULL, NULL, "out of memory");
            }
        }
    }
    /* AWS documents no fixed size for STS session tokens, and the request
     * headers are sized to their content; the ceiling only keeps a wrongly
     * pasted file out of every request. */
    if (rc == 0 && d->session_token && strlen(d->session_token) > AWS_MAX_SESSION_TOKEN)
        rc = drv_err_set(err, DRV_E_CONFIG, 0, NULL, NULL,
                         "aws: credentials.session_token longer than %d bytes",
                         AWS_MAX_SESSION_TOKEN);
    if (rc == 0 && (d->min_period < 1 || (d->min_period > 60 && d->min_period % 60)))
        rc = drv_err_set(err, DRV_E_CONFIG, 0, NULL, NULL,
                         "aws: min_period must be 1..60 or a multiple of 60");
    free(disk);
    if (rc < 0) {
        aws_destroy(d);
        return rc;
    }
    *out = d;
    return 0;
}

static int aws_supports(const struct drv *d, enum drv_metric m)
{
    (void)d;
    return m != DRV_M_MEM && (unsigned)m < DRV_M_COUNT;
}

/* The CloudWatch queries for the requested metrics. */
static size_t aws_plan(const struct drv *d, unsigned metrics, const char *instance, struct aws_q *q)
{
    static const char *const names[3][4] = {
        {"EBSReadBytes", "EBSWriteBytes", "EBSReadOps", "EBSWriteOps"},
        {"DiskReadBytes", "DiskWriteBytes", "DiskReadOps", "DiskWriteOps"},
        {"VolumeReadBytes", "VolumeWriteBytes", "VolumeReadOps", "VolumeWriteOps"},
    };
    static const enum drv_metric disk_m[4] = {DRV_M_KB_READ, DRV_M_KB_WRITTEN, DRV_M_OPS_READ,
                                              DRV_M_OPS_WRITE};
    size_t n = 0;
    if (metrics & DRV_MASK(DRV_M_CPU))
        q[n++] = (struct aws_q){DRV_M_CPU,    "AWS/EC2", "CPUUtilization",
                                "InstanceId", "Average", instance,
                                NULL,         false,     1};
    for (int i = 0; i < 4; i++) {
        if (!(metrics & DRV_MASK(disk_m[i]))) continue;
        double scale = i < 2 ? 1.0 / 1024 : 1.0;
        if (d->disk == AWS_DISK_VOLUMES) {
            for (size_t v = 0; v < d->nvolumes; v++)
                q[n++] =
                    (struct aws_q){disk_m[i],     "AWS/EBS",     names[2][i], "VolumeId", "Sum",
                                   d->volumes[v], d->volumes[v], true,        scale};
        } else {
            q[n++] = (struct aws_q){disk_m[i],    "AWS/EC2", names[d->disk][i],
                                    "InstanceId", "Sum",     instance,
                                    NULL,         true,      scale};
        }
    }
    if (metrics & DRV_MASK(DRV_M_BYTES_IN))
        q[n++] = (struct aws_q){
            DRV_M_BYTES_IN, "AWS/EC2", "NetworkIn", "InstanceId", "Sum", instance, NULL, true, 1};
    if (metrics & DRV_MASK(DRV_M_BYTES_OUT))
        q[n++] = (struct aws_q){
            DRV_M_BYTES_OUT, "AWS/EC2", "NetworkOut", "InstanceId", "Sum", instance, NULL, true, 1};
    return n;
}

static int add_param(struct drv_buf *b, const char *k, const char *v)
{
    return drv_form_add(b, k, v);
}
static int build_body(const struct aws_q *q, size_t nq, int64_t from, int64_t to, long period,
                      const char *token, struct drv_buf *b)
{
    char t0[32], t1[32], key[128], val[32];
    drv_fmt_time(from, "%Y-%m-%dT%H:%M:%SZ", t0, sizeof t0);
    drv_fmt_time(to, "%Y-%m-%dT%H:%M:%SZ", t1, sizeof t1);
    int rc = add_param(b, "Action", "GetMetricData");
    if (rc == 0) rc = add_param(b, "Version", "2010-08-01");
    if (rc == 0) rc = add_param(b, "StartTime", t0);
    if (rc == 0) rc = add_param(b, "EndTime", t1);
    if (rc == 0) rc = add_param(b, "ScanBy", "TimestampAscending");
    for (size_t i = 0; rc == 0 && i < nq; i++) {
        const char *pre = "MetricDataQueries.member";
        size_t k = i + 1;
        snprintf(val, sizeof val, "q%zu", i);
        snprintf(key, sizeof key, "%s.%zu.Id", pre, k);
        rc = add_param(b, key, val);
        snprintf(key, sizeof key, "%s.%zu.MetricStat.Metric.Namespace", pre, k);
        if (rc == 0) rc = add_param(b, key, q[i].ns);
        snprintf(key, sizeof key, "%s.%zu.MetricStat.Metric.MetricName", pre, k);
        if (rc == 0) rc = add_param(b, key, q[i].name);
        snprintf(key, sizeof key, "%s.%zu.MetricStat.Metric.Dimensions.member.1.Name", pre, k);
        if (rc == 0) rc = add_param(b, key, q[i].dim);
        snprintf(key, sizeof key, "%s.%zu.MetricStat.Metric.Dimensions.member.1.Value", pre, k);
        if (rc == 0) rc = add_param(b, key, q[i].dim_value);
        snprintf(key, sizeof key, "%s.%zu.MetricStat.Period", pre, k);
        snprintf(val, sizeof val, "%ld", period);
        if (rc == 0) rc = add_param(b, key, val);
        snprintf(key, sizeof key, "%s.%zu.MetricStat.Stat", pre, k);
        if (rc == 0) rc = add_param(b, key, q[i].stat);
        snprintf(key, sizeof key, "%s.%zu.ReturnData", pre, k);
        if (rc == 0) rc = add_param(b, key, "true");
    }
    if (rc == 0 && token) rc = add_param(b, "NextToken", token);
    return rc;
}

/* AWS error codes (CloudWatch "Common Errors") → the common set, once. */
static int map_aws_error(long status, const char *code)
{
    static const struct {
        const char *code;
        int err;
    } map[] = {
        {"Throttling", DRV_E_THROTTLED},
        {"ThrottlingException", DRV_E_THROTTLED},
        {"RequestLimitExceeded", DRV_E_THROTTLED},
        {"InvalidClientTokenId", DRV_E_AUTH},
        {"SignatureDoesNotMatch", DRV_E_AUTH},
        {"ExpiredToken", DRV_E_AUTH},
        {"IncompleteSignature", DRV_E_AUTH},
        {"MissingAuthenticationToken", DRV_E_AUTH},
        {"AccessDenied", DRV_E_FORBIDDEN},
        {"AccessDeniedException", DRV_E_FORBIDDEN},
        {"UnauthorizedOperation", DRV_E_FORBIDDEN},
        {"ResourceNotFound", DRV_E_NOTFOUND},
        {"InvalidParameterValue", DRV_E_BADREQUEST},
        {"InvalidParameterCombination", DRV_E_BADREQUEST},
        {"MissingParameter", DRV_E_BADREQUEST},
        {"ValidationError", DRV_E_BADREQUEST},
        {"InvalidNextToken", DRV_E_BADREQUEST},
        {"ServiceUnavailable", DRV_E_TRANSPORT},
        {"InternalFailure", DRV_E_TRANSPORT},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(code, map[i].code) == 0) return map[i].err;
    int e = drv_err_from_status(status);
    return e ? e : DRV_E_PARSE;
}

static int aws_error(const struct drv *d, const struct drv_http_resp *resp, struct drv_error *err)
{
    struct drv_xml doc = {resp->body, resp->body + resp->body_len}, e;
    char code[64] = "", msg[200] = "", rid[96] = "";
    if (drv_xml_child(doc, "Error", &e)) {
        drv_xml_text(e, "Code", code, sizeof code);
        drv_xml_text(e, "Message", msg, sizeof msg);
    }
    drv_xml_text(doc, "RequestId", rid, sizeof rid);
    if (!rid[0]) drv_http_resp_header(resp, "x-amzn-RequestId", rid, sizeof rid);
    int rc = drv_err_set(err, map_aws_error(resp->status, code), (int)resp->status, code, rid,
                         "CloudWatch GetMetricData: HTTP %ld %s: %s", resp->status,
                         code[0] ? code : "(no code)", msg[0] ? msg : "(no message)");
    if (rc == DRV_E_THROTTLED) err->retry_after_s = drv_retry_after(resp, &d->env, 5);
    return rc;
}

/* One page of results into res; the next token into cursor (empty at the end). */
static int parse_page(const struct drv_http_resp *resp, const struct aws_q *q, size_t nq,
                      long period, struct drv_result *res, struct drv_buf *cursor,
                      struct drv_error *err)
{
    struct drv_xml doc = {resp->body, resp->body + resp->body_len}, result, list, member;
    if (!drv_xml_child(doc, "GetMetricDataResult", &result) ||
        !drv_xml_child(result, "MetricDataResults", &list))
        return drv_err_set(
            err, DRV_E_PARSE, (int)resp->status, NULL, NULL,
            "CloudWatch GetMetricData: no GetMetricDataResult/MetricDataResults in the response");
    /* NextToken of the result, not of a member (members have none). */
    char token[2048] = "";
    struct drv_xml tok;
    const char *after = list.end;
    if (drv_xml_next(result, "NextToken", &after, &tok)) drv_xml_value(tok, token, sizeof token);
    cursor->len = 0;
    if (cursor->p) cursor->p[0] = '\0';
    if (token[0] && drv_buf_adds(cursor, token) < 0)
        return drv_err_set(err, -ENOMEM, 0, NULL, NULL, "out of memory");

    const char *from = NULL;
    while (drv_xml_next(list, "member", &from, &member)) {
        char id[16], status[32];
        drv_xml_text(member, "Id", id, sizeof id);
        drv_xml_text(member, "StatusCode", status, sizeof status);
        char *end;
        unsigned long k = (id[0] == 'q') ? strtoul(id + 1, &end, 10) : (unsigned long)-1;
        if (id[0] != 'q' || *end || k >= nq)
            return drv_err_set(err, DRV_E_PARSE, (int)resp->status, NULL, NULL,
                               "CloudWatch: unknown query id \"%s\"", id);
        const struct aws_q *qq = &q[k];
        if (strcmp(status, "Forbidden") == 0 || strcmp(status, "InternalError") == 0) {
            struct drv_error me;
            drv_err_set(&me, strcmp(status, "Forbidden") == 0 ? DRV_E_FORBIDDEN : DRV_E_TRANSPORT,
                        (int)resp->status, status, NULL, "CloudWatch %s/%s: StatusCode %s", qq->ns,
                        qq->name, status);
            drv_result_metric_error(res, qq->m, &me);
            continue;
        }
        struct drv_xml ts, vs, t, v;
        if (!drv_xml_child(member, "Timestamps", &ts) || !drv_xml_child(member, "Values", &vs))
            return drv_err_set(err, DRV_E_PARSE, (int)resp->status, NULL, NULL,
                               "CloudWatch: result %s without Timestamps/Values", id);
        struct drv_series *s =
            drv_result_series(res, qq->m, qq->device ? "disk" : NULL, qq->device);
        if (!s) return drv_err_set(err, -ENOMEM, 0, NULL, NULL, "out of memory");
        const char *ft = NULL, *fv = NULL;
        while (drv_xml_next(ts, "member", &ft, &t)) {
            if (!drv_xml_next(vs, "member", &fv, &v))
                return drv_err_set(err, DRV_E_PARSE, (int)resp->status, NULL, NULL,
                                   "CloudWatch: result %s has more Timestamps than Values", id);
            char tbuf[48], vbuf[48];
            drv_xml_value(t, tbuf, sizeof tbuf);
            drv_xml_value(v, vbuf, sizeof vbuf);
            int64_t when;
            double val = strtod(vbuf, &end);
            if (drv_parse_time(tbuf, &when) < 0 || end == vbuf)
                return drv_err_set(err, DRV_E_PARSE, (int)resp->status, NULL, NULL,
                                   "CloudWatch: result %s has a bad point (\"%s\", \"%s\")", id,
                                   tbuf, vbuf);
            if (qq->per_period) val /= (double)period;
            int rc = drv_series_push(s, when, val * qq->scale);
            if (rc < 0) return drv_err_set(err, rc, 0, NULL, NULL, "CloudWatch: too many points");
        }
    }
    return 0;
}

/* The period CloudWatch will aggregate to: at least min_period, and a
 * multiple of 60 above a minute. */
static long aws_period(const struct drv *d, const struct drv_query *q)
{
    long period = q->period_s > 0 ? q->period_s : 60;
    if (period < d->min_period) period = d->min_period;
    if (period > 60 && period % 60) period += 60 - period % 60;
    return period;
}

/* The endpoint's authority and path, which SigV4 signs. */
static int aws_endpoint(const struct drv *d, char *host, size_t hostlen, char *path, size_t pathlen,
                        struct drv_error *err)
{
    if (drv_url_split(d->endpoint, host, hostlen, path, pathlen) < 0)
        return drv_err_set(err, DRV_E_CONFIG, 0, NULL, NULL, "aws: bad endpoint \"%s\"",
                           d->endpoint);
    return 0;
}

/* Builds the request for one page of GetMetricData (the first, or the one
 * after c->cursor's NextToken), signed now by the injected clock. */
static int aws_send_page(struct drv *d, struct drv_call *c, const struct aws_q *q, size_t nq)
{
    char host[256], path[256];
    int rc = aws_endpoint(d, host, sizeof host, path, sizeof path, &c->err);
    if (rc < 0) return rc;
    drv_call_req(c, "POST", d->timeout_ms);
    rc = drv_buf_adds(&c->url, d->endpoint);
    if (rc == 0)
        rc = build_body(q, nq, c->q.from, c->q.to, c->period,
                        c->cursor.len ? drv_buf_str(&c->cursor) : NULL, &c->body);
    if (rc < 0) return drv_call_send(c, rc, "aws");

    char amz_date[20];
    drv_fmt_time(drv_now_ms(&d->env) / 1000, "%Y%m%dT%H%M%SZ", amz_date, sizeof amz_date);
    const char *ctype = "application/x-www-form-urlencoded; charset=utf-8";
    struct drv_sigv4_header sh[4] = {{"Content-Type", ctype},
                                     {"Host", host},
                                     {"X-Amz-Date", amz_date},
                                     {"X-Amz-Security-Token", d->session_token}};
    struct drv_sigv4_in in = {.method = "POST",
                              .path = path,
                              .query = "",
                              .headers = sh,
                              .nheaders = d->session_token ? 4u : 3u,
                              .payload = c->body.p,
                              .payload_len = c->body.len,
                              .region = d->region,
                              .service = "monitoring",
                              .access_key = d->access_key,
                              .secret_key = d->secret_key,
                              .amz_date = amz_date};
    struct drv_sigv4_out so;
    rc = drv_sigv4_sign(&in, &so);
    if (rc < 0) {
        drv_sigv4_out_free(&so);
        return drv_err_set(&c->err, rc, 0, NULL, NULL, "aws: signing failed");
    }
    rc = drv_call_header(c, "Content-Type: %s", ctype);
    if (rc == 0) rc = drv_call_header(c, "Host: %s", host);
    if (rc == 0) rc = drv_call_header(c, "X-Amz-Date: %s", amz_date);
    if (rc == 0) rc = drv_call_header(c, "Authorization: %s", so.authorization);
    if (rc == 0 && d->session_token)
        rc = drv_call_header(c, "X-Amz-Security-Token: %s", d->session_token);
    drv_sigv4_out_free(&so);
    return drv_call_send(c, rc, "aws");
}

/* GetMetricData, page after page (at most AWS_MAX_PAGES): c->index counts
 * the pages taken, c->cursor holds the NextToken, c->period the period. The
 * plan of queries is a pure function of the query and the config, so each
 * step recomputes it rather than keeping it in the call. */
static int aws_step(struct drv *d, struct drv_call *c, const struct drv_http_resp *resp)
{
    const char *instance = c->q.instance ? c->q.instance : d->instance;
    if (!instance)
        return drv_err_set(&c->err, DRV_E_CONFIG, 0, NULL, NULL,
                           "aws: no instance id in the query or the config");
    unsigned supported = DRV_MASK_ALL & ~DRV_MASK(DRV_M_MEM);
    struct aws_q q[AWS_MAX_QUERIES];
    size_t nq = aws_plan(d, c->q.metrics & supported, instance, q);
    if (!resp) {
        /* A bad endpoint fails the fetch even when nothing is to be asked. */
        char host[256], path[256];
        int rc = aws_endpoint(d, host, sizeof host, path, sizeof path, &c->err);
        if (rc < 0) return rc;
        c->period = aws_period(d, &c->q);
    } else {
        int rc = resp->status != 200
                     ? aws_error(d, resp, &c->err)
                     : parse_page(resp, q, nq, c->period, &c->res, &c->cursor, &c->err);
        if (rc < 0) return rc;
        c->index++;
    }
    if (nq > 0 && c->index < AWS_MAX_PAGES && (c->index == 0 || c->cursor.len))
        return aws_send_page(d, c, q, nq);
    drv_result_finish(&c->res, c->q.metrics, supported);
    return 0;
}

static int aws_fetch(struct drv *d, const struct drv_query *q, struct drv_result *res,
                     struct drv_error *err)
{
    return drv_fetch_steps(&drv_aws_ops, d, q, res, err);
}

const struct drv_ops drv_aws_ops = {"aws",     aws_create, aws_supports,
                                    aws_fetch, aws_step,   aws_destroy};
