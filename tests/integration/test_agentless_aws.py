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
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit",
                                "drivers"))
# the drivers' moto helpers
from test_aws_moto import find_moto, put_metrics, start_moto  # noqa: E402
from harness import Pantalad, stop_process  # noqa: E402

SKIP = 77
TOKEN = "agentless-aws-token-0123456789"
NS, MCIS = "ns-aws", "ec2-web"


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Run(Pantalad):
    def req(self, method, path, body=None):
        return self.request(method, path, body, decode="json")


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
    try:
        motop, murl, mlog = start_moto(moto, tmp, tries=300)
    except RuntimeError as e:
        print(e)
        shutil.rmtree(tmp, ignore_errors=True)
        return 1
    run = None
    ok = False
    try:
        # Two instances; recent minutes (CloudWatch and moto keep bounded history).
        t0 = (int(time.time()) // 60 - 10) * 60
        data = [("CPUUtilization", 12.0, t0 + 5, "Percent"), ("CPUUtilization", 24.0, t0 + 30, "Percent"),
                ("CPUUtilization", 48.0, t0 + 65, "Percent"),
                ("EBSReadBytes", 61440.0, t0 + 5, "Bytes"), ("NetworkIn", 6000.0, t0 + 5, "Bytes")]
        how = put_metrics(murl, data)
        seed2(murl, t0)

        run = Run(tmp, TOKEN, {"writer": {"flush": "50ms"},
                               "agentless": {"rate_limits": {"aws": 10}}})
        run.start(timeout=15)

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
        if run:
            run.stop(timeout=20, kill_on_timeout=True)
        stop_process(motop, timeout=10)
        mlog.close()
        if not ok:
            try:
                print("---- pantalad.log\n" + open(os.path.join(tmp, "pantalad.log")).read()[-4000:])
            except OSError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)


def firing(j):
    ev = [e for e in j["events"] if e["status"] == "firing"]
    return bool(ev), (ev[-1] if ev else j)


def ok_state(j):
    return j["status"]["state"] == "ok" and j["status"]["values"] > 0, j


def seed2(url, t0):
    """The second instance, i-moto2: CPU 30 then 60 %."""
    put_metrics(url, [("CPUUtilization", 30.0, t0 + 10, "Percent"),
                      ("CPUUtilization", 60.0, t0 + 70, "Percent")], instance="i-moto2")


if __name__ == "__main__":
    sys.exit(main())
