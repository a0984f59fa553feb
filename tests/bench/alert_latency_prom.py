#!/usr/bin/env python3
"""Issue 5's latency benchmark, reference side: Prometheus + Alertmanager
from Debian at their fastest settings, measured from the moment a gauge
crosses its threshold to the webhook's arrival.

    tests/bench/alert_latency_prom.py                # 20 crossings
    tests/bench/alert_latency_prom.py --crossings 5 --json out.json

Setup (all on loopback, free ports, a temporary directory):
  - a target (Python http.server) exposing `pt_bench_value` at /metrics;
  - prometheus: scrape_interval 1s, evaluation_interval 1s, one rule
    `pt_bench_value > 50` with `for: 0s`, Alertmanager as its alerter;
  - prometheus-alertmanager: group_wait 0s, group_interval 1s,
    send_resolved, a webhook to webhook_receiver.Receiver.
Each crossing switches the gauge to 100, waits for the firing webhook,
then switches it to 0 and waits for the resolved one, each switch after a
random pause (0.2-1.2 s) so it falls at a random phase of the 1 s cycles. Latency = arrival
time - switch time (both time.time() on this host). Prints the raw figures
and p50/p99 for firing and resolved. Figures only, no pass/fail."""
import argparse
import http.server
import json
import math
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from webhook_receiver import Receiver  # noqa: E402


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Target:
    """Serves `pt_bench_value <v>`; set() records when the value changed."""

    def __init__(self):
        self.value = 0.0
        target = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                body = ("# TYPE pt_bench_value gauge\npt_bench_value %g\n" % target.value).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def set(self, v):
        self.value = v
        return time.time()


def wait_http(url, proc, name, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit("%s exited (%d); see its log with --keep" % (name, proc.returncode))
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    sys.exit("%s not ready after %d s" % (name, timeout))


def pct(xs, p):
    s = sorted(xs)
    if not s:
        return float("nan")
    k = max(0, math.ceil(p / 100.0 * len(s)) - 1)  # nearest rank
    return s[k]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crossings", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=30, help="per notification, seconds")
    ap.add_argument("--seed", type=int, default=1, help="of the random switch phases")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    for b in ("prometheus", "prometheus-alertmanager"):
        if not shutil.which(b):
            sys.exit("%s not found: sudo apt-get install %s" % (b, b))

    tmp = tempfile.mkdtemp(prefix="pt-bench-prom-")
    procs = []
    target = Target()
    hook = Receiver()
    try:
        am_port, prom_port = free_port(), free_port()
        with open(os.path.join(tmp, "am.yml"), "w") as f:
            f.write("""route:
  receiver: hook
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: %s/hook
        send_resolved: true
""" % hook.url)
        with open(os.path.join(tmp, "rules.yml"), "w") as f:
            f.write("""groups:
  - name: bench
    interval: 1s
    rules:
      - alert: BenchHigh
        expr: pt_bench_value > 50
        for: 0s
""")
        with open(os.path.join(tmp, "prom.yml"), "w") as f:
            f.write("""global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%s/rules.yml]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:%d']
scrape_configs:
  - job_name: bench
    static_configs:
      - targets: ['127.0.0.1:%d']
""" % (tmp, am_port, target.port))
        am_log = open(os.path.join(tmp, "am.log"), "w")
        prom_log = open(os.path.join(tmp, "prom.log"), "w")
        am = subprocess.Popen(["prometheus-alertmanager", "--config.file=%s/am.yml" % tmp,
                               "--storage.path=%s/am" % tmp,
                               "--web.listen-address=127.0.0.1:%d" % am_port,
                               "--cluster.listen-address="], stdout=am_log, stderr=am_log)
        procs.append(am)
        prom = subprocess.Popen(["prometheus", "--config.file=%s/prom.yml" % tmp,
                                 "--storage.tsdb.path=%s/prom" % tmp,
                                 "--web.listen-address=127.0.0.1:%d" % prom_port],
                                stdout=prom_log, stderr=prom_log)
        procs.append(prom)
        wait_http("http://127.0.0.1:%d/-/ready" % am_port, am, "alertmanager")
        wait_http("http://127.0.0.1:%d/-/ready" % prom_port, prom, "prometheus")
        time.sleep(2.5)  # a first scrape of the low value, so the first crossing is a change

        rng = random.Random(args.seed)
        firing, resolved = [], []
        for i in range(args.crossings):
            for value, status, out in ((100.0, "firing", firing), (0.0, "resolved", resolved)):
                # Switch at a random phase of the 1 s scrape/evaluation/
                # group cycles: switching right after a webhook arrives
                # would lock onto them and always measure the same delay.
                time.sleep(rng.uniform(0.2, 1.2))
                seen = len(hook.snapshot())
                t0 = target.set(value)
                ok = hook.wait_for(lambda rs: any(q.json and q.json.get("status") == status
                                                  for q in rs[seen:]), args.timeout)
                if not ok:
                    sys.exit("crossing %d: no %s webhook within %g s" % (i, status, args.timeout))
                q = [q for q in hook.snapshot()[seen:] if q.json.get("status") == status][0]
                out.append(q.t - t0)
            print("crossing %2d: firing %.3f s, resolved %.3f s" % (i, firing[-1], resolved[-1]),
                  flush=True)

        res = {"crossings": args.crossings,
               "prometheus": "scrape 1s, eval 1s, for 0s",
               "alertmanager": "group_wait 0s, group_interval 1s",
               "firing_s": firing, "resolved_s": resolved,
               "firing_p50_s": pct(firing, 50), "firing_p99_s": pct(firing, 99),
               "resolved_p50_s": pct(resolved, 50), "resolved_p99_s": pct(resolved, 99)}
        print("firing:   p50 %.3f s  p99 %.3f s  (min %.3f, max %.3f)"
              % (res["firing_p50_s"], res["firing_p99_s"], min(firing), max(firing)))
        print("resolved: p50 %.3f s  p99 %.3f s  (min %.3f, max %.3f)"
              % (res["resolved_p50_s"], res["resolved_p99_s"], min(resolved), max(resolved)))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(res, f, indent=1)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        hook.close()
        if args.keep:
            print("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
