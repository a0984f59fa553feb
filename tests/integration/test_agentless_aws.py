#!/usr/bin/env python3
"""The AWS path of the agentless poller end to end: moto_server plays
CloudWatch (seeded with PutMetricData for two EC2 instances), pantalad
polls both through the AWS driver (SigV4, Query protocol, libcurl), and the
values must come back through the query API per VM and at MCIS level.
Skips (exit 77) with a message where moto_server is not installed.

Run by ctest with PANTALAD set. Standard library only (boto3 is used for
seeding when importable, else a plain Query request).
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit",
                                "drivers"))
from test_aws_moto import find_moto, put_metrics  # noqa: E402  (the drivers' seeding helpers)

SKIP = 77
PANTALAD = os.environ.get("PANTALAD", "build/collector/pantalad")
TOKEN = "agentless-aws-token-0123456789"
NS, MCIS = "ns-aws", "ec2-web"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Run:
    def __init__(self, api):
        self.api = api

    def req(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        r = urllib.request.Request(self.api + path, data=data, method=method,
                                   headers={"Authorization": "Bearer " + TOKEN})
        try:
            with urllib.request.urlopen(r, timeout=10) as resp:
                return resp.status, json.loads(resp.read().decode() or "null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read().decode() or "null")


def wait(what, fn, timeout=30):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        ok, last = fn()
        if ok:
            return last
        time.sleep(0.2)
    raise AssertionError("%s: not reached; last: %s" % (what, json.dumps(last)[:2000]))


def main():
    moto = find_moto()
    if not moto:
        print("SKIP: moto_server not found (pip install 'moto[server]' to run the AWS "
              "agentless end-to-end test)")
        return SKIP
    tmp = tempfile.mkdtemp(prefix="pt-agl-aws-")
    mport, hport = free_port(), free_port()
    mlog = open(os.path.join(tmp, "moto.log"), "w")
    motop = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(mport)], stdout=mlog,
                             stderr=subprocess.STDOUT)
    murl = "http://127.0.0.1:%d" % mport
    daemon = None
    ok = False
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(murl + "/moto-api/", timeout=1).read()
                break
            except Exception:
                if motop.poll() is not None:
                    print("moto_server exited:\n" + open(mlog.name).read())
                    return 1
                time.sleep(0.05)
        # Two instances; recent minutes (CloudWatch and moto keep bounded history).
        t0 = (int(time.time()) // 60 - 10) * 60
        data = [("CPUUtilization", 12.0, t0 + 5, "Percent"), ("CPUUtilization", 24.0, t0 + 30, "Percent"),
                ("CPUUtilization", 48.0, t0 + 65, "Percent"),
                ("EBSReadBytes", 61440.0, t0 + 5, "Bytes"), ("NetworkIn", 6000.0, t0 + 5, "Bytes")]
        how = put_metrics(murl, data)
        seed2(murl, t0)

        conf = os.path.join(tmp, "pantalad.json")
        with open(conf, "w") as f:
            json.dump({"data_dir": os.path.join(tmp, "data"),
                       "listen": {"udp": "127.0.0.1:%d" % free_port(), "http": "127.0.0.1:%d" % hport},
                       "api": {"tokens": [TOKEN]}, "writer": {"flush": "50ms"},
                       "agentless": {"rate_limits": {"aws": 10}}}, f)
        log = open(os.path.join(tmp, "pantalad.log"), "ab")
        daemon = subprocess.Popen([PANTALAD, "--config", conf], stdout=log, stderr=subprocess.STDOUT)
        run = Run("http://127.0.0.1:%d" % hport)
        wait("pantalad up", lambda: (safe(run, "/healthz") == 200, None), 15)

        # An MCIS-level rule on the agentless metric, as for agents.
        code, r = run.req("POST", "/api/v1/rules", {
            "name": "ec2-cpu", "scope": {"ns": NS, "mcis": MCIS}, "metric": "cpu.cpu_utilization",
            "reduce": "avg", "crit": "> 50"})
        assert code == 201, r
        ids = []
        for vm, inst in (("vm-1", "i-moto"), ("vm-2", "i-moto2")):
            code, t = run.req("POST", "/api/v1/targets", {
                "ns": NS, "mcis": MCIS, "vm": vm, "driver": "aws", "instance": inst,
                "region": "us-east-1", "endpoint": murl, "interval": "2s", "lookback": "15m",
                "credentials": {"access_key_id": "AKIDMOTO", "secret_access_key": "moto-secret"}})
            assert code == 201, t
            assert "moto-secret" not in json.dumps(t)
            ids.append(t["id"])
        for tid in ids:
            st = wait("target %d polled" % tid,
                      lambda: ok_state(run.req("GET", "/api/v1/targets/%d" % tid)[1]))
            m = st["status"]["metrics"]
            assert m["cpu_utilization"]["status"] == "ok", m
            assert m["mem_utilization"]["status"] == "unsupported", m  # EC2 needs its agent
            assert m["ops_read"]["status"] == "no_data", m             # never put

        rng = "from=%d&to=%d" % (t0 - 600, t0 + 900)
        code, j = run.req("GET", "/api/v1/ns/%s/mcis/%s/vm/vm-1/metrics/cpu?fields=cpu_utilization&%s"
                          % (NS, MCIS, rng))
        assert code == 200, j
        s = j["series"]
        assert len(s) == 1 and s[0]["tags"] == {"source": "agentless", "driver": "aws"}, s
        assert s[0]["values"] == [[iso(t0), 18.0], [iso(t0 + 60), 48.0]], s  # Average per minute
        code, j = run.req("GET", "/api/v1/ns/%s/mcis/%s/vm/vm-1/metrics/diskio?fields=kb_read"
                          "&tag=device:total&%s" % (NS, MCIS, rng))
        assert j["series"][0]["values"] == [[iso(t0), 1.0]], j     # 61440 B / 60 s / 1024
        code, j = run.req("GET", "/api/v1/ns/%s/mcis/%s/vm/vm-1/metrics/network?fields=bytes_in"
                          "&tag=interface:total&%s" % (NS, MCIS, rng))
        assert j["series"][0]["values"] == [[iso(t0), 100.0]], j   # 6000 B / 60 s
        code, j = run.req("GET", "/api/v1/ns/%s/mcis/%s/metrics/cpu?fields=cpu_utilization&step=1m"
                          "&agg=avg&across=avg&%s" % (NS, MCIS, rng))
        assert code == 200, j
        assert j["series"][0]["values"] == [[iso(t0), 24.0], [iso(t0 + 60), 54.0]], j  # (18+30)/2, (48+60)/2
        code, j = run.req("GET", "/api/v1/ns/%s/mcis/%s/metrics/cpu?fields=cpu_utilization&step=1m"
                          "&agg=max&across=max&%s" % (NS, MCIS, rng))
        assert j["series"][0]["values"] == [[iso(t0), 30.0], [iso(t0 + 60), 60.0]], j
        # Both VMs' newest CPU, 48 and 60, average 54 > 50: the rule fires.
        # The two targets are polled independently: when vm-2's poll lands
        # first, the MCIS average of the VMs seen so far is its 60 alone,
        # which fires too (vm-1's 48 alone would not).
        ev = wait("the MCIS rule firing", lambda: firing(run.req(
            "GET", "/api/v1/alerts/history?rule=ec2-cpu")[1]))
        assert ev["level"] == "critical" and ev["value"] in (54.0, 60.0), ev
        assert ev["labels"]["mcis"] == MCIS and ev["labels"]["driver"] == "aws", ev
        print("PASS: moto seeded with %s; per-VM and MCIS values as expected; the rule fired"
              % how)
        ok = True
        return 0
    except AssertionError as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        if daemon:
            daemon.terminate()
            try:
                daemon.wait(20)
            except subprocess.TimeoutExpired:
                daemon.kill()
        motop.terminate()
        try:
            motop.wait(10)
        except subprocess.TimeoutExpired:
            motop.kill()
        mlog.close()
        if not ok:
            try:
                print("---- pantalad.log\n" + open(os.path.join(tmp, "pantalad.log")).read()[-4000:])
            except OSError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)


def safe(run, path):
    try:
        return run.req("GET", path)[0]
    except OSError:
        return 0


def firing(j):
    ev = [e for e in j["events"] if e["status"] == "firing"]
    return bool(ev), (ev[-1] if ev else j)


def ok_state(j):
    return j["status"]["state"] == "ok" and j["status"]["values"] > 0, j


def seed2(url, t0):
    """The second instance, i-moto2: CPU 30 then 60 %."""
    try:
        import boto3
        cw = boto3.client("cloudwatch", endpoint_url=url, region_name="us-east-1",
                          aws_access_key_id="AKIDMOTO", aws_secret_access_key="moto-secret")
        cw.put_metric_data(Namespace="AWS/EC2", MetricData=[
            {"MetricName": "CPUUtilization", "Dimensions": [{"Name": "InstanceId", "Value": "i-moto2"}],
             "Value": v, "Timestamp": ts, "Unit": "Percent"} for v, ts in ((30.0, t0 + 10), (60.0, t0 + 70))])
        return
    except ImportError:
        pass
    import urllib.parse
    form = {"Action": "PutMetricData", "Version": "2010-08-01", "Namespace": "AWS/EC2"}
    for i, (v, ts) in enumerate(((30.0, t0 + 10), (60.0, t0 + 70)), 1):
        p = "MetricData.member.%d." % i
        form.update({p + "MetricName": "CPUUtilization", p + "Value": repr(v), p + "Unit": "Percent",
                     p + "Timestamp": iso(ts), p + "Dimensions.member.1.Name": "InstanceId",
                     p + "Dimensions.member.1.Value": "i-moto2"})
    req = urllib.request.Request(url + "/", data=urllib.parse.urlencode(form).encode(), headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDMOTO/20250101/us-east-1/monitoring/aws4_request, "
                         "SignedHeaders=host, Signature=0"})
    urllib.request.urlopen(req, timeout=10).read()


if __name__ == "__main__":
    sys.exit(main())
