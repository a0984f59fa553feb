#!/usr/bin/env python3
"""The AWS CloudWatch driver end to end against moto_server.

Starts moto_server on a free loopback port, seeds EC2 metrics with
PutMetricData (boto3 when importable, else a hand-signed Query request),
fetches them through the driver (drv_fetch, real libcurl transport, SigV4)
and asserts the normalised values. Skips (exit 77) with a message when
moto_server is not installed (CI machines may lack it).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "integration"))
from harness import free_port, stop_process  # noqa: E402

SKIP = 77
DRV_FETCH = os.environ.get("DRV_FETCH")


def find_moto():
    for c in (shutil.which("moto_server"), "/root/.pyenv/shims/moto_server"):
        if c and os.access(c, os.X_OK):
            return c
    return None


def start_moto(moto, tmp, tries=200):
    """Starts moto_server on a free loopback port, output in tmp/moto.log;
    returns (process, url, log file) once it answers (or after tries polls
    of 50 ms); raises RuntimeError with the log if it exits first."""
    port = free_port()
    log = open(os.path.join(tmp, "moto.log"), "w")
    proc = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)], stdout=log,
                            stderr=subprocess.STDOUT)
    url = "http://127.0.0.1:%d" % port
    for _ in range(tries):
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1).read()
            break
        except Exception:
            if proc.poll() is not None:
                log.close()
                with open(log.name) as f:
                    raise RuntimeError("moto_server exited; log:\n" + f.read())
            time.sleep(0.05)
    return proc, url, log


def put_metrics(url, data, instance="i-moto"):
    """data: list of (name, value, ts, unit) for one instance."""
    try:
        import boto3
        cw = boto3.client("cloudwatch", endpoint_url=url, region_name="us-east-1",
                          aws_access_key_id="AKIDMOTO", aws_secret_access_key="moto-secret")
        cw.put_metric_data(Namespace="AWS/EC2", MetricData=[
            {"MetricName": n, "Dimensions": [{"Name": "InstanceId", "Value": instance}], "Value": v,
             "Timestamp": ts, "Unit": u} for n, v, ts, u in data])
        return "boto3"
    except ImportError:
        pass
    # moto does not verify signatures; the Query form is what matters here.
    form = {"Action": "PutMetricData", "Version": "2010-08-01", "Namespace": "AWS/EC2"}
    for i, (n, v, ts, u) in enumerate(data, 1):
        p = "MetricData.member.%d." % i
        form.update({p + "MetricName": n, p + "Value": repr(v), p + "Unit": u,
                     p + "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)),
                     p + "Dimensions.member.1.Name": "InstanceId", p + "Dimensions.member.1.Value": instance})
    req = urllib.request.Request(url + "/", data=urllib.parse.urlencode(form).encode(), headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDMOTO/20250101/us-east-1/monitoring/aws4_request, "
                         "SignedHeaders=host, Signature=0"})
    urllib.request.urlopen(req, timeout=10).read()
    return "raw Query request"


def main():
    moto = find_moto()
    if not moto:
        print("SKIP: moto_server not found (pip install 'moto[server]' to run the AWS end-to-end test)")
        return SKIP
    if not DRV_FETCH:
        print("DRV_FETCH is not set (run through ctest)")
        return 1
    tmp = tempfile.mkdtemp(prefix="pt-moto-")
    try:
        proc, url, log = start_moto(moto, tmp)
    except RuntimeError as e:
        print(e)
        shutil.rmtree(tmp, ignore_errors=True)
        return 1
    try:
        # Recent timestamps: CloudWatch (and moto) keep a bounded history.
        t0 = (int(time.time()) // 60 - 10) * 60
        data = []
        for k, (cpu, rd, net) in enumerate([(12.0, 61440.0, 6000.0), (48.0, 122880.0, 3000.0)]):
            ts = t0 + 60 * k + 5
            data += [("CPUUtilization", cpu, ts, "Percent"), ("EBSReadBytes", rd, ts, "Bytes"),
                     ("NetworkIn", net, ts, "Bytes")]
        # A second CPU sample in the first minute: the driver asks for the Average.
        data.append(("CPUUtilization", 24.0, t0 + 30, "Percent"))
        how = put_metrics(url, data)

        target = {"driver": "aws", "region": "us-east-1", "instance": "i-moto", "endpoint": url,
                  "credentials": {"access_key_id": "AKIDMOTO", "secret_access_key": "moto-secret"}}
        tpath = os.path.join(tmp, "target.json")
        with open(tpath, "w") as f:
            json.dump(target, f)
        out = subprocess.run([DRV_FETCH, tpath, str(t0), str(t0 + 120), "60",
                              "cpu_utilization,mem_utilization,kb_read,bytes_in,ops_read"],
                             capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            print("drv_fetch failed:\n" + out.stdout + out.stderr)
            return 1
        res = json.loads(out.stdout)
        got = {s["name"]: [(p[0], round(p[1], 6)) for p in s["points"]] for s in res["series"]}
        want = {
            "cpu_utilization": [(t0, 18.0), (t0 + 60, 48.0)],  # mean of 12 and 24, then 48
            "kb_read": [(t0, 1.0), (t0 + 60, 2.0)],            # 61440 B / 60 s / 1024
            "bytes_in": [(t0, 100.0), (t0 + 60, 50.0)],        # 6000 B / 60 s
        }
        ok = True
        for name, pts in want.items():
            if got.get(name) != pts:
                print("FAIL %s: got %s, want %s" % (name, got.get(name), pts))
                ok = False
        for s in res["series"]:
            if s["tags"].get("source") != "agentless" or s["tags"].get("driver") != "aws":
                print("FAIL tags %s" % s["tags"])
                ok = False
        st = res["status"]
        if st.get("mem_utilization", {}).get("status", "").find("unsupported") < 0:
            print("FAIL mem_utilization should be unsupported: %s" % st)
            ok = False
        if "ops_read" not in st or "no data" not in st["ops_read"]["status"]:
            print("FAIL ops_read (never put) should be 'no data': %s" % st)
            ok = False
        if "mem_utilization" in got:
            print("FAIL mem_utilization has points: never zeros")
            ok = False
        print("%s: seeded with %s, fetched %s" % ("PASS" if ok else "FAIL", how, json.dumps(got)))
        return 0 if ok else 1
    finally:
        stop_process(proc, timeout=10)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
