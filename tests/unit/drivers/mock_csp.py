#!/usr/bin/env python3
"""Loopback mock of the eight cloud monitoring APIs the drivers speak to.

Started by test_drivers (cmocka): prints its port on stdout, serves until its
stdin closes. Every request is checked the way the real service would check
it -- path, query, headers, and the signature recomputed here independently
(SigV4, TC3, Alibaba RPC v1, NCP v2) -- and answered with a response shaped
as the provider documents it (references next to each handler). A failed
check answers HTTP 418 and is recorded; GET /_failures lists them so the C
test can assert there were none. Scenario names in the path choose normal
data, pagination, empty data, throttling, auth failures and per-metric errors.

Test-only: fixed credentials, fixed data; T0 is the start of the test range.
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# A multiple of 60. MOCK_CSP_T0 moves it (the poller's integration test wants
# recent points); the drivers' own test relies on the default.
T0 = int(os.environ.get("MOCK_CSP_T0", "1700000040"))
FAILURES = []
COUNTS = {}
# Requests being answered right now, and the most at once: the "slow" and
# "hold" CB-Spider scenarios answer late so that concurrency shows here.
LOCK = threading.Lock()
INFLIGHT = [0, 0]  # now, max
DELAY = {"slow": 0.4, "hold": 30.0}


def iso(t):
    import time
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Check(Exception):
    pass


def need(cond, what):
    if not cond:
        raise Check(what)


def hmac256(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


# ---- AWS CloudWatch GetMetricData, Query protocol ---------------------------
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html
AWS_VALUES = {  # per-period Sum (or Average for CPU) of the first two periods
    "CPUUtilization": [10.0, 20.0, 30.0],
    "EBSReadBytes": [61440.0, 122880.0, 184320.0],
    "EBSWriteBytes": [6144.0, 12288.0, 18432.0],
    "EBSReadOps": [600.0, 1200.0, 1800.0],
    "EBSWriteOps": [60.0, 120.0, 180.0],
    "NetworkIn": [6000.0, 12000.0, 18000.0],
    "NetworkOut": [600.0, 1200.0, 1800.0],
    "VolumeReadBytes": [61440.0, 61440.0, 61440.0],
}


def check_sigv4(h, body, region, service):
    auth = h.headers.get("Authorization", "")
    need(auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDTEST/"), "sigv4: Authorization " + auth[:60])
    parts = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
    cred = parts["Credential"].split("/")
    amz = h.headers.get("X-Amz-Date", "")
    need(cred[1] == amz[:8] and cred[2] == region and cred[3] == service, "sigv4: scope " + parts["Credential"])
    names = parts["SignedHeaders"].split(";")
    need("host" in names and "x-amz-date" in names, "sigv4: signed headers " + parts["SignedHeaders"])
    canon = "".join("%s:%s\n" % (n, " ".join(h.headers.get(n, "").split())) for n in names)
    path = urllib.parse.urlsplit(h.path).path or "/"
    creq = "\n".join([h.command, path, "", canon, parts["SignedHeaders"], hashlib.sha256(body).hexdigest()])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz, "/".join(cred[1:]), hashlib.sha256(creq.encode()).hexdigest()])
    k = hmac256(b"AWS4" + b"secret/TEST", cred[1])
    for part in (region, service, "aws4_request"):
        k = hmac256(k, part)
    need(hmac.new(k, sts.encode(), hashlib.sha256).hexdigest() == parts["Signature"], "sigv4: signature mismatch")


def aws(h, scen, body):
    if h.command != "POST":
        raise Check("aws: method " + h.command)
    need(h.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"), "aws: content type")
    check_sigv4(h, body, "us-east-1", "monitoring")
    form = dict(urllib.parse.parse_qsl(body.decode()))
    need(form.get("Action") == "GetMetricData" and form.get("Version") == "2010-08-01", "aws: action/version")
    need(form.get("StartTime") == iso(T0) and form.get("EndTime") == iso(T0 + 180), "aws: range %s" % form.get("StartTime"))
    rid = "c5d7-aws-%s" % scen
    if scen == "throttle":
        return 400, {"Content-Type": "text/xml"}, (
            '<ErrorResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><Error><Type>Sender</Type>'
            "<Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>%s</RequestId></ErrorResponse>" % rid)
    if scen == "auth":
        return 403, {"Content-Type": "text/xml"}, (
            "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code><Message>The security token "
            "included in the request is invalid.</Message></Error><RequestId>%s</RequestId></ErrorResponse>" % rid)
    token = form.get("NextToken")
    members = []
    i = 1
    while "MetricDataQueries.member.%d.Id" % i in form:
        pre = "MetricDataQueries.member.%d." % i
        qid, name = form[pre + "Id"], form[pre + "MetricStat.Metric.MetricName"]
        need(form[pre + "MetricStat.Period"] == "60", "aws: period")
        need(form[pre + "MetricStat.Metric.Dimensions.member.1.Value"] in ("i-0abc", "vol-1", "vol-2"), "aws: dimension")
        need(form[pre + "MetricStat.Stat"] == ("Average" if name == "CPUUtilization" else "Sum"), "aws: stat " + name)
        vals = AWS_VALUES.get(name, [])
        if scen == "empty":
            sel = []
        elif token is None:
            sel = [0, 1]
        else:
            need(token == "tok-page-2", "aws: NextToken " + token)
            sel = [2]
        status = "Complete"
        if scen == "partial" and name == "NetworkOut":
            status, sel = "Forbidden", []
        ts = "".join("<member>%s</member>" % iso(T0 + 60 * k) for k in sel)
        vs = "".join("<member>%s</member>" % vals[k] for k in sel)
        members.append("<member><Timestamps>%s</Timestamps><Label>%s</Label><Values>%s</Values><Id>%s</Id>"
                       "<StatusCode>%s</StatusCode></member>" % (ts, name, vs, qid, status))
        i += 1
    next_tok = "<NextToken>tok-page-2</NextToken>" if (scen == "normal" and token is None) else ""
    return 200, {"Content-Type": "text/xml"}, (
        '<GetMetricDataResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><GetMetricDataResult>'
        "<MetricDataResults>%s</MetricDataResults>%s<Messages/></GetMetricDataResult><ResponseMetadata>"
        "<RequestId>%s</RequestId></ResponseMetadata></GetMetricDataResponse>" % ("".join(members), next_tok, rid))


# ---- Azure Monitor metrics + Entra ID token ---------------------------------
# https://learn.microsoft.com/en-us/rest/api/monitor/metrics/list (api-version 2018-01-01)
# https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow
AZ_VALUES = {
    "Percentage CPU": ("average", "Percent", [12.5, 13.5]),
    "Available Memory Percentage": ("average", "Percent", [40.0, 30.0]),
    "Disk Read Bytes": ("total", "Bytes", [61440.0, 122880.0]),
    "Disk Write Bytes": ("total", "Bytes", [6144.0, 0.0]),
    "Disk Read Operations/Sec": ("average", "CountPerSecond", [5.0, 6.0]),
    "Disk Write Operations/Sec": ("average", "CountPerSecond", [1.5, 2.5]),
    "Network In Total": ("total", "Bytes", [6000.0, 12000.0]),
    "Network Out Total": ("total", "Bytes", [600.0, 1200.0]),
}


def azure(h, scen, body):
    u = urllib.parse.urlsplit(h.path)
    if "/oauth2/v2.0/token" in u.path:
        need(h.command == "POST" and u.path.startswith("/azure/login/tenant-1/"), "azure token path " + u.path)
        f = dict(urllib.parse.parse_qsl(body.decode()))
        need(f.get("grant_type") == "client_credentials" and f.get("client_id") == "app-1", "azure token form")
        need(f.get("scope") == "https://management.azure.com/.default", "azure scope")
        COUNTS["azure_token"] = COUNTS.get("azure_token", 0) + 1
        if f.get("client_secret") != "s3cret":
            return 401, {"Content-Type": "application/json"}, json.dumps({
                "error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided.",
                "error_codes": [7000215], "trace_id": "t-1", "correlation_id": "corr-1"})
        return 200, {"Content-Type": "application/json"}, json.dumps({
            "token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
            "access_token": "az-token-%d" % COUNTS["azure_token"]})
    need(h.headers.get("Authorization", "").startswith("Bearer az-token-"), "azure bearer")
    q = dict(urllib.parse.parse_qsl(u.query))
    res = "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Compute/virtualMachines/vm-1"
    need(u.path == "/azure/arm/%s%s/providers/Microsoft.Insights/metrics" % (scen, res), "azure path " + u.path)
    need(q.get("api-version") == "2018-01-01" and q.get("interval") == "PT1M", "azure api-version/interval")
    need(q.get("timespan") == "%s/%s" % (iso(T0), iso(T0 + 120)), "azure timespan " + str(q.get("timespan")))
    need(q.get("aggregation") == "Average,Total", "azure aggregation")
    rid = "az-req-1"
    if scen == "throttle":
        return 429, {"Retry-After": "17", "x-ms-request-id": rid, "Content-Type": "application/json"}, json.dumps(
            {"error": {"code": "TooManyRequests", "message": "The request is throttled."}})
    value = []
    for name in q["metricnames"].split(","):
        agg, unit, vals = AZ_VALUES[name]
        m = {"id": res + "/providers/Microsoft.Insights/metrics/" + name, "type": "Microsoft.Insights/metrics",
             "name": {"value": name, "localizedValue": name}, "unit": unit, "errorCode": "Success", "timeseries": []}
        if scen == "metricerror" and name == "Available Memory Percentage":
            m["errorCode"] = "MetricUnavailable"
            m["errorMessage"] = "Metric is not available for this VM size"
        else:
            data = [{"timeStamp": iso(T0 + 60 * k), agg: v} for k, v in enumerate(vals)]
            data.append({"timeStamp": iso(T0 + 120)})  # an interval without data: no aggregate
            m["timeseries"] = [{"metadatavalues": [], "data": data}]
        value.append(m)
    return 200, {"x-ms-request-id": rid, "Content-Type": "application/json"}, json.dumps({
        "cost": 0, "timespan": q["timespan"], "interval": "PT1M", "value": value,
        "namespace": "Microsoft.Compute/virtualMachines", "resourceregion": "westeurope"})


# ---- Google Cloud Monitoring timeSeries.list + OAuth2 JWT bearer -----------
# https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.timeSeries/list
def b64url_json(s):
    return json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))


def gcp(h, scen, body, port):
    u = urllib.parse.urlsplit(h.path)
    if u.path.endswith("/token"):
        f = dict(urllib.parse.parse_qsl(body.decode()))
        need(f.get("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer", "gcp grant_type")
        parts = f.get("assertion", "").split(".")
        need(len(parts) == 3, "gcp assertion is not a JWT")
        hdr, claims = b64url_json(parts[0]), b64url_json(parts[1])
        need(hdr == {"alg": "RS256", "typ": "JWT"}, "gcp JWT header")
        need(claims["iss"] == "svc@proj-1.iam.gserviceaccount.com", "gcp iss")
        need(claims["aud"] == "http://127.0.0.1:%d%s" % (port, u.path), "gcp aud " + claims["aud"])
        need(claims["scope"] == "https://www.googleapis.com/auth/monitoring.read", "gcp scope")
        need(claims["exp"] - claims["iat"] == 3600, "gcp exp")
        if scen == "auth":
            return 400, {"Content-Type": "application/json"}, json.dumps(
                {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
        return 200, {"Content-Type": "application/json"}, json.dumps(
            {"access_token": "ya29.test", "expires_in": 3599, "token_type": "Bearer"})
    need(h.headers.get("Authorization") == "Bearer ya29.test", "gcp bearer")
    need(u.path == "/gcp/%s/api/v3/projects/proj-1/timeSeries" % scen, "gcp path " + u.path)
    q = dict(urllib.parse.parse_qsl(u.query))
    need(q["interval.startTime"] == iso(T0) and q["interval.endTime"] == iso(T0 + 120), "gcp interval")
    need(q["aggregation.alignmentPeriod"] == "60s", "gcp alignment")
    flt = q["filter"]
    need('resource.labels.instance_id = "4567"' in flt, "gcp filter " + flt)
    mtype = flt.split('"')[1].split("/instance/")[1]
    if scen == "throttle":
        return 429, {"Content-Type": "application/json"}, json.dumps(
            {"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}})

    def pt(t, v):
        return {"interval": {"startTime": iso(t), "endTime": iso(t + 60)}, "value": v}

    def series(labels, pts, kind="GAUGE", vt="DOUBLE"):
        return {"metric": {"type": "compute.googleapis.com/instance/" + mtype, "labels": labels},
                "resource": {"type": "gce_instance", "labels": {"instance_id": "4567", "project_id": "proj-1"}},
                "metricKind": kind, "valueType": vt, "points": pts}

    out = {}
    if mtype == "cpu/utilization":
        need(q["aggregation.perSeriesAligner"] == "ALIGN_MEAN", "gcp cpu aligner")
        if q.get("pageToken") is None:  # newest first; the older point is on page 2
            out = {"timeSeries": [series({}, [pt(T0 + 60, {"doubleValue": 0.25})])], "nextPageToken": "pg2"}
        else:
            need(q["pageToken"] == "pg2", "gcp pageToken")
            out = {"timeSeries": [series({}, [pt(T0, {"doubleValue": 0.125})])]}
    elif mtype.startswith("disk/"):
        need(q["aggregation.perSeriesAligner"] == "ALIGN_RATE" and q["aggregation.crossSeriesReducer"] == "REDUCE_SUM",
             "gcp disk aggregation")
        need(q.get("aggregation.groupByFields") == "metric.labels.device_name", "gcp groupBy")
        if mtype == "disk/read_ops_count":
            out = {"timeSeries": [series({"device_name": "sda"}, [pt(T0 + 60, {"int64Value": "7"}),
                                                                   pt(T0, {"int64Value": "3"})], "GAUGE", "INT64")]}
        elif mtype == "disk/read_bytes_count":
            out = {"timeSeries": [series({"device_name": "sda"}, [pt(T0 + 60, {"doubleValue": 2048.0}),
                                                                   pt(T0, {"doubleValue": 1024.0})]),
                                  series({"device_name": "sdb"}, [pt(T0, {"doubleValue": 512.0})])]}
        # write metrics: an empty answer ({}), as the API gives when no data
    elif mtype == "network/received_bytes_count":
        out = {"timeSeries": [series({}, [pt(T0, {"doubleValue": 100.0})])]}
    return 200, {"Content-Type": "application/json"}, json.dumps(out)


# ---- Alibaba CloudMonitor DescribeMetricList, RPC v1 ------------------------
# https://www.alibabacloud.com/help/en/cms/developer-reference/api-cms-2019-01-01-describemetriclist
def ali_enc(s):
    return urllib.parse.quote(s, safe="-_.~")


def alibaba(h, scen):
    u = urllib.parse.urlsplit(h.path)
    pairs = urllib.parse.parse_qsl(u.query, keep_blank_values=True)
    q = dict(pairs)
    sig = q.pop("Signature", None)
    need(sig is not None, "alibaba: no Signature")
    canon = "&".join("%s=%s" % (ali_enc(k), ali_enc(v)) for k, v in sorted(q.items()))
    sts = "GET&%2F&" + ali_enc(canon)
    want = base64.b64encode(hmac.new(b"ali-secret&", sts.encode(), hashlib.sha1).digest()).decode()
    need(sig == want, "alibaba: signature mismatch")
    need(q["Action"] == "DescribeMetricList" and q["Version"] == "2019-01-01" and q["Format"] == "JSON", "alibaba action")
    need(q["Namespace"] == "acs_ecs_dashboard" and json.loads(q["Dimensions"]) == [{"instanceId": "i-ali"}], "alibaba dims")
    need(q["StartTime"] == str(T0 * 1000) and q["SignatureMethod"] == "HMAC-SHA1" and q["AccessKeyId"] == "ali-id",
         "alibaba params")
    need(len(q["SignatureNonce"]) == 32, "alibaba nonce")
    rid = "ali-req-%s" % scen
    if scen == "throttle":
        return 400, {"Content-Type": "application/json"}, json.dumps({
            "RequestId": rid, "HostId": "metrics.cn-hangzhou.aliyuncs.com", "Code": "Throttling.User",
            "Message": "Request was denied due to user flow control."})
    if scen == "auth":
        return 404, {"Content-Type": "application/json"}, json.dumps({
            "RequestId": rid, "Code": "InvalidAccessKeyId.NotFound", "Message": "Specified access key is not found."})
    name = q["MetricName"]
    vals = {"CPUUtilization": [(T0, 11.0), (T0 + 60, 22.0)], "DiskReadBPS": [(T0, 2048.0)],
            "DiskWriteIOPS": [(T0, 3.0)], "InternetInRate": [(T0, 8000.0)], "InternetOutRate": [(T0, 800.0)]}.get(name, [])
    if scen == "empty":
        vals = []
    token = None
    if name == "CPUUtilization" and scen == "normal":
        if q.get("NextToken") is None:
            vals, token = vals[:1], "ali-next"
        else:
            need(q["NextToken"] == "ali-next", "alibaba NextToken")
            vals = vals[1:]
    dps = [{"timestamp": t * 1000, "userId": "1234567", "instanceId": "i-ali", "Minimum": v, "Maximum": v, "Average": v}
           for t, v in vals]
    out = {"RequestId": rid, "Success": True, "Code": "200", "Period": q["Period"], "Datapoints": json.dumps(dps)}
    if token:
        out["NextToken"] = token
    return 200, {"Content-Type": "application/json"}, json.dumps(out)


# ---- Tencent Cloud Monitor GetMonitorData, TC3 -------------------------------
# https://www.tencentcloud.com/document/api/248/33881 and the TC3 signing page
def tencent(h, scen, body):
    auth = h.headers.get("Authorization", "")
    need(auth.startswith("TC3-HMAC-SHA256 Credential=tc-id/"), "tencent Authorization")
    ts = int(h.headers["X-TC-Timestamp"])
    import time
    date = time.strftime("%Y-%m-%d", time.gmtime(ts))
    need("Credential=tc-id/%s/monitor/tc3_request" % date in auth, "tencent scope (UTC date)")
    creq = "POST\n/\n\ncontent-type:%s\nhost:%s\n\ncontent-type;host\n%s" % (
        h.headers["Content-Type"], h.headers["Host"], hashlib.sha256(body).hexdigest())
    sts = "TC3-HMAC-SHA256\n%d\n%s/monitor/tc3_request\n%s" % (ts, date, hashlib.sha256(creq.encode()).hexdigest())
    k = hmac256(b"TC3tc-secret", date)
    k = hmac256(k, "monitor")
    k = hmac256(k, "tc3_request")
    need(auth.endswith("Signature=" + hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()), "tencent signature")
    need(h.headers.get("X-TC-Action") == "GetMonitorData" and h.headers.get("X-TC-Version") == "2018-07-24", "tencent action")
    need(h.headers.get("X-TC-Region") == "ap-guangzhou", "tencent region")
    b = json.loads(body)
    need(b["Namespace"] == "QCE/CVM" and b["Period"] == 60, "tencent namespace/period")
    need(b["Instances"] == [{"Dimensions": [{"Name": "InstanceId", "Value": "ins-tc"}]}], "tencent instances")
    rid = "tc-req-%s" % scen
    if scen == "auth":
        return 200, {}, json.dumps({"Response": {"Error": {"Code": "AuthFailure.SignatureFailure",
                                                           "Message": "The provided credentials could not be validated."},
                                                 "RequestId": rid}})
    if scen == "throttle":
        return 200, {}, json.dumps({"Response": {"Error": {"Code": "RequestLimitExceeded",
                                                           "Message": "Your current request times exceeds the limit."},
                                                 "RequestId": rid}})
    name = b["MetricName"]
    if name == "DiskReadIops":
        return 200, {}, json.dumps({"Response": {"Error": {"Code": "InvalidParameterValue.MetricNotExist",
                                                           "Message": "metric DiskReadIops not exist"},
                                                 "RequestId": rid}})
    vals = {"CPUUsage": [3.5, None, 4.5], "WanIntraffic": [0.008, 0.016, 0.024], "DiskReadTraffic": [12.0, 13.0, 14.0]}
    v = vals.get(name, [])
    return 200, {}, json.dumps({"Response": {
        "StartTime": b["StartTime"], "EndTime": b["EndTime"], "Period": 60, "MetricName": name,
        "DataPoints": [{"Dimensions": [{"Name": "InstanceId", "Value": "ins-tc"}],
                        "Timestamps": [T0 + 60 * i for i in range(len(v))], "Values": v}],
        "Msg": "", "RequestId": rid}})


# ---- OpenStack Keystone v3 + Gnocchi -----------------------------------------
# https://docs.openstack.org/api-ref/identity/v3/ (Password authentication with scoped authorization)
# https://gnocchi.osci.io/rest.html (measures, search resource)
OS_METRICS = {"cpu": "m-cpu", "vcpus": "m-vcpus", "memory.usage": "m-memu", "memory": "m-mem"}
OS_MEASURES = {
    "m-cpu": [0, 30e9, 60e9, 90e9],  # cumulative ns; 2 vCPUs -> 25 %
    "m-vcpus": [2, 2, 2, 2],
    "m-memu": [512, 1024, 1536, 1024],
    "m-mem": [2048, 2048, 2048, 2048],
    "m-vda-rb": [0, 61440, 122880, 184320],  # 1 KiB/s
    "m-vda-rr": [0, 60, 180, 300],
    "m-tap-in": [1000, 7000, 500, 6500],  # reset after the second step
}


def openstack(h, scen, body, port):
    u = urllib.parse.urlsplit(h.path)
    base = "/os/%s" % scen
    if u.path == base + "/v3/auth/tokens":
        b = json.loads(body)
        ident = b["auth"]["identity"]
        need(ident["methods"] == ["password"], "keystone methods")
        user = ident["password"]["user"]
        need(user["name"] == "demo" and user["domain"] == {"name": "Default"}, "keystone user")
        need(b["auth"]["scope"]["project"] == {"name": "demo", "domain": {"name": "Default"}}, "keystone scope")
        COUNTS["keystone"] = COUNTS.get("keystone", 0) + 1
        if user["password"] != "pw" or scen == "auth":
            return 401, {"Content-Type": "application/json", "x-openstack-request-id": "req-ks-1"}, json.dumps(
                {"error": {"code": 401, "message": "The request you have made requires authentication.",
                           "title": "Unauthorized"}})
        catalog = [{"type": "identity", "name": "keystone", "endpoints": []},
                   {"type": "metric", "name": "gnocchi", "endpoints": [
                       {"interface": "internal", "region_id": "RegionOne", "url": "http://10.0.0.1:8041"},
                       {"interface": "public", "region_id": "RegionOne", "region": "RegionOne",
                        "url": "http://127.0.0.1:%d%s/gnocchi" % (port, base)}]}]
        return 201, {"X-Subject-Token": "gAAAA-token", "Content-Type": "application/json"}, json.dumps(
            {"token": {"methods": ["password"], "expires_at": iso(T0 + 3600 * 10), "catalog": catalog}})
    need(h.headers.get("X-Auth-Token") == "gAAAA-token", "gnocchi token")
    g = base + "/gnocchi/v1"
    if u.path == g + "/resource/instance/srv-1":
        return 200, {}, json.dumps({"id": "srv-1", "type": "instance", "metrics": OS_METRICS})
    if u.path == g + "/search/resource/instance_disk":
        need(json.loads(body) == {"=": {"instance_id": "srv-1"}}, "gnocchi disk search")
        return 200, {}, json.dumps([{"id": "d-1", "type": "instance_disk", "name": "vda", "instance_id": "srv-1",
                                     "metrics": {"disk.device.read.bytes": "m-vda-rb",
                                                 "disk.device.read.requests": "m-vda-rr"}}])
    if u.path == g + "/search/resource/instance_network_interface":
        return 200, {}, json.dumps([{"id": "n-1", "type": "instance_network_interface", "name": "tap0",
                                     "instance_id": "srv-1", "metrics": {"network.incoming.bytes": "m-tap-in"}}])
    if u.path.startswith(g + "/metric/") and u.path.endswith("/measures"):
        mid = u.path[len(g + "/metric/"):-len("/measures")]
        q = dict(urllib.parse.parse_qsl(u.query))
        need(q.get("granularity") == "60", "gnocchi granularity")
        need(q.get("start") == iso(T0 - 60) and q.get("stop") == iso(T0 + 180), "gnocchi range " + str(q.get("start")))
        vals = OS_MEASURES.get(mid)
        if vals is None:
            return 404, {}, json.dumps({"code": 404, "title": "Not Found", "description": "Metric %s does not exist" % mid})
        ts = [T0 - 60 + 60 * i for i in range(len(vals))]
        return 200, {}, json.dumps([[iso(t).replace("Z", "+00:00"), 60.0, v] for t, v in zip(ts, vals)])
    raise Check("openstack: unexpected " + u.path)


# ---- NCP Cloud Insight QueryData, API gateway signature v2 -------------------
# https://api.ncloud-docs.com/docs/en/management-cloudinsight-querydata
def ncp(h, scen, body):
    ts = h.headers.get("x-ncp-apigw-timestamp", "")
    need(h.headers.get("x-ncp-iam-access-key") == "ncp-ak", "ncp access key")
    msg = "%s %s\n%s\n%s" % (h.command, h.path, ts, "ncp-ak")
    want = base64.b64encode(hmac.new(b"ncp-sk", msg.encode(), hashlib.sha256).digest()).decode()
    need(h.headers.get("x-ncp-apigw-signature-v2") == want, "ncp signature")
    b = json.loads(body)
    need(b["cw_key"] == "460438474722512896" and b["productName"] == "System/Server(VPC)", "ncp product")
    need(b["dimensions"] == {"instanceNo": "9876"} and b["interval"] == "Min1", "ncp dims")
    need(b["timeStart"] == T0 * 1000 and b["timeEnd"] == (T0 + 120) * 1000, "ncp range")
    if scen == "auth":
        return 401, {"Content-Type": "application/json"}, json.dumps(
            {"error": {"errorCode": "200", "message": "Authentication Failed",
                       "details": "Invalid authentication information."}})
    if scen == "throttle":
        return 429, {"Content-Type": "application/json", "Retry-After": "3"}, json.dumps(
            {"error": {"errorCode": "420", "message": "Rate Limited"}})
    vals = {"avg_cpu_used_rto": [5.0, 6.0], "mem_usert": [50.0, 55.0], "avg_rcv_bps": [8000.0, 16000.0]}
    v = vals.get(b["metric"], [])
    return 200, {"Content-Type": "application/json"}, json.dumps([[(T0 + 60 * i) * 1000, x] for i, x in enumerate(v)])


# ---- CB-Spider monitoring ---------------------------------------------------
# GET /spider/monitoring/vm/{VMName}/{MetricType} (CB-Spider REST, VM monitoring)
def cbspider(h, scen):
    u = urllib.parse.urlsplit(h.path)
    need(h.headers.get("Authorization") == "Basic " + base64.b64encode(b"admin:cbpw").decode(), "cbspider basic auth")
    pre = "/cb/%s/spider/monitoring/vm/web-1/" % scen
    need(u.path.startswith(pre), "cbspider path " + u.path)
    mtype = u.path[len(pre):]
    q = dict(urllib.parse.parse_qsl(u.query))
    need(q == {"ConnectionName": "aws-conn", "IntervalMinute": "1", "TimeBeforeHour": "1"}, "cbspider query %s" % q)
    if scen == "throttle":  # CB-Spider passes the cloud's rate limiting on as 429
        return 429, {"Content-Type": "application/json", "Retry-After": "2"}, json.dumps(
            {"message": "rate exceeded, retry later"})
    if mtype == "memory_usage":
        return 500, {"Content-Type": "application/json"}, json.dumps(
            {"message": "AWS Cloud Driver: memory_usage is not supported without the CloudWatch agent"})
    vals = {"cpu_usage": ["1.5", "2.5", "3.5"], "disk_read": ["61440", "122880", "0"], "network_in": ["6000", "600", "60"]}
    v = vals.get(mtype, [])
    if scen == "empty":
        v = []
    # Points start one interval before the range: the driver drops what is outside it.
    return 200, {"Content-Type": "application/json"}, json.dumps({
        "metricName": mtype, "metricUnit": "Percent" if mtype == "cpu_usage" else "Bytes",
        "timestampValues": [{"timestamp": iso(T0 - 60 + 60 * i), "value": x} for i, x in enumerate(v)]})


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        parts = self.path.split("/")
        cloud, scen = (parts[1], parts[2].split("?")[0]) if len(parts) > 2 else ("", "")
        port = self.server.server_address[1]
        try:
            if self.path == "/_failures":
                with LOCK:
                    stats = {"failures": FAILURES, "counts": COUNTS,
                             "inflight": INFLIGHT[0], "max_inflight": INFLIGHT[1]}
                code, hdrs, out = 200, {}, json.dumps(stats)
            elif cloud == "aws":
                code, hdrs, out = aws(self, scen, body)
            elif cloud == "azure":
                scen = parts[3] if parts[2] == "arm" else "login"
                code, hdrs, out = azure(self, scen, body)
            elif cloud == "gcp":
                code, hdrs, out = gcp(self, scen, body, port)
            elif cloud == "ali":
                code, hdrs, out = alibaba(self, scen)
            elif cloud == "tc":
                code, hdrs, out = tencent(self, scen, body)
            elif cloud == "os":
                code, hdrs, out = openstack(self, scen, body, port)
            elif cloud == "ncp":
                code, hdrs, out = ncp(self, scen, body)
            elif cloud == "cb" and scen in DELAY:
                with LOCK:
                    INFLIGHT[0] += 1
                    INFLIGHT[1] = max(INFLIGHT)
                try:
                    import time
                    time.sleep(DELAY[scen])
                    code, hdrs, out = cbspider(self, scen)
                finally:
                    with LOCK:
                        INFLIGHT[0] -= 1
            elif cloud == "cb":
                code, hdrs, out = cbspider(self, scen)
            else:
                raise Check("unknown path " + self.path)
        except Exception as e:  # noqa: BLE001 -- every failure is recorded, never a dropped connection
            FAILURES.append("%s %s: %s" % (self.command, self.path[:120], e))
            code, hdrs, out = 418, {}, json.dumps({"mock_failure": str(e)})
        data = out.encode()
        self.send_response(code)
        for k, v in hdrs.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = handle_any


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    try:  # one write: the test reads up to the newline
        sys.stdout.write("%d\n" % srv.server_address[1])
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    sys.stdin.read()  # the test closes our stdin (or dies): stop
    srv.shutdown()


if __name__ == "__main__":
    main()
