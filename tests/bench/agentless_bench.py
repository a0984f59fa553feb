#!/usr/bin/env python3
"""Agentless poller cost: pantalad polling many CB-Spider-shaped targets
served by the drivers' loopback mock (tests/unit/drivers/mock_csp.py).

Prints polls/s reached, pantalad CPU per poll (each poll is 8 HTTP
requests through libcurl, JSON parsing, frames to the writer, a store
write) and the daemon's RSS. The mock is Python and usually the bottleneck
of the rate; the CPU per poll is the figure that matters. A figure, not a
test: nothing passes or fails.

--slow serves every request 0.4 s late (the mock's "slow" scenario), as a
distant cloud API would: a poll then takes 8 x 0.4 = 3.2 s, and only
concurrent polls (libcurl multi, agentless.concurrency) keep up with many
targets; the polls/s reached is compared with what the targets ask for.

  tests/bench/agentless_bench.py [--pantalad build/collector/pantalad]
                                 [--targets 50] [--seconds 10] [--concurrency 64]
                                 [--slow [--interval 5]]
"""
import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

TOKEN = "agentless-bench-token-0123456789"
HERE = os.path.dirname(os.path.abspath(__file__))
MOCK = os.path.join(HERE, "..", "unit", "drivers", "mock_csp.py")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def req(api, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    r = urllib.request.Request(api + path, data=data, method=method,
                               headers={"Authorization": "Bearer " + TOKEN})
    with urllib.request.urlopen(r, timeout=10) as resp:
        return resp.read().decode()


def scrape(api):
    text = req(api, "GET", "/metrics")

    def one(pattern):
        m = re.search(pattern + r" ([0-9.e+]+)", text)
        return float(m.group(1)) if m else 0.0
    return {"ok": one(r'pantala_agentless_polls_total\{outcome="ok"\}'),
            "failed": one(r'pantala_agentless_polls_total\{outcome="failed"\}'),
            "cpu": one("process_cpu_seconds_total"), "rss": one("process_resident_memory_bytes"),
            "values": one("pantala_agentless_values_total")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pantalad", default=None)
    ap.add_argument("--targets", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--slow", action="store_true", help="answers 0.4 s late")
    ap.add_argument("--interval", type=int, default=None,
                    help="poll interval, s (default 1, or 5 with --slow)")
    a = ap.parse_args()
    if a.interval is None:
        a.interval = 5 if a.slow else 1
    pd = a.pantalad
    if not pd:
        for b in ("build-bench", "build", "build-release"):
            if os.path.exists(os.path.join(b, "collector", "pantalad")):
                pd = os.path.join(b, "collector", "pantalad")
                break
    if not pd:
        sys.exit("pantalad not found; give --pantalad")
    tmp = tempfile.mkdtemp(prefix="pt-agl-bench-")
    t0 = (int(time.time()) // 60) * 60 - 180
    mock = subprocess.Popen([sys.executable, MOCK], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env=dict(os.environ, MOCK_CSP_T0=str(t0)))
    murl = "http://127.0.0.1:%d" % int(mock.stdout.readline())
    http = free_port()
    api = "http://127.0.0.1:%d" % http
    conf = os.path.join(tmp, "pantalad.json")
    with open(conf, "w") as f:
        json.dump({"data_dir": os.path.join(tmp, "data"),
                   "listen": {"udp": "127.0.0.1:%d" % free_port(), "http": "127.0.0.1:%d" % http},
                   "api": {"tokens": [TOKEN]},
                   "agentless": {"concurrency": a.concurrency, "rate_limit": 1000}}, f)
    log = open(os.path.join(tmp, "pantalad.log"), "ab")
    d = subprocess.Popen([pd, "--config", conf], stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):
            try:
                req(api, "GET", "/healthz")
                break
            except OSError:
                time.sleep(0.05)
        for i in range(a.targets):
            req(api, "POST", "/api/v1/targets", {
                "ns": "bench", "mcis": "m%d" % (i % 10), "vm": "vm-%d" % i, "driver": "cbspider",
                "instance": "web-1", "endpoint": murl + ("/cb/slow" if a.slow else "/cb/normal"),
                "interval": "%ds" % a.interval,
                "options": {"connection_name": "aws-conn"},
                "credentials": {"username": "admin", "password": "cbpw"}})
        time.sleep(2 + (4 if a.slow else 0))  # first polls
        s0, w0 = scrape(api), time.time()
        time.sleep(a.seconds)
        s1, w1 = scrape(api), time.time()
        polls = s1["ok"] + s1["failed"] - s0["ok"] - s0["failed"]
        cpu = s1["cpu"] - s0["cpu"]
        print("targets %d, concurrency %d, interval %ds%s: %.1f polls/s (targets ask %.1f; "
              "%.0f failed), %.0f values/s, pantalad CPU %.1f%% = %.3f ms per poll, RSS %.1f MiB"
              % (a.targets, a.concurrency, a.interval, ", 0.4 s per request" if a.slow else "",
                 polls / (w1 - w0), a.targets / a.interval, s1["failed"] - s0["failed"],
                 (s1["values"] - s0["values"]) / (w1 - w0), 100 * cpu / (w1 - w0),
                 1000 * cpu / polls if polls else float("nan"), s1["rss"] / 2**20))
    finally:
        d.terminate()
        d.wait(30)
        mock.stdin.close()
        mock.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
