#!/usr/bin/env python3
"""Issue 5's alerting benchmarks on pantalad (figures only, no pass/fail).

latency: sample-to-webhook latency with `for: 0`. pantala-loadgen drives
    cpu.cpu_utilization of every agent as a square wave across a threshold
    (--pattern ...=10,90/PERIOD) and logs the send time of every frame that
    starts a new phase (--pattern-log); one `each` rule (crit > 50) with a
    generic webhook handler fires and resolves per VM; the receiver
    (webhook_receiver.py) stamps arrivals. Latency = arrival - send time of
    the crossing frame (both CLOCK_REALTIME on this host), firing and
    resolved, p50/p90/p99/max over all of them.

        tests/bench/alert_bench.py latency --agents 200 --seconds 24

cost: evaluation cost. --agents simulated VMs (default 10 000, 100 per
    MCIS) send full-catalog frames at 1 s; first without rules (baseline),
    then with --rules rules per MCIS (default 100: each/avg/max/p95 on
    several fields, some with windows) so every VM is evaluated by that
    many rules. Collector CPU (% of one core) and RSS for both phases.

        tests/bench/alert_bench.py cost --agents 10000 --rules 100 --seconds 20

pantalad is found in build-bench, build or build-release (or --pantalad),
pantala-loadgen next to it (or --loadgen). Everything runs on loopback in a
temporary directory (--keep keeps it)."""
import argparse
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

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
from webhook_receiver import Receiver  # noqa: E402

TOKEN = "alert-bench-token-0123456789abcdef"


def log(msg):
    print("# " + msg, file=sys.stderr, flush=True)


def find(explicit, rel):
    if explicit:
        return explicit
    for b in ("build-bench", "build", "build-release"):
        p = os.path.join(ROOT, b, rel)
        if os.access(p, os.X_OK):
            return p
    sys.exit("cannot find %s: build it or pass its path" % rel)


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Collector:
    def __init__(self, binary, workdir, alerting):
        self.udp = free_port(socket.SOCK_DGRAM)
        self.http = free_port()
        self.api = "http://127.0.0.1:%d" % self.http
        self.dir = workdir
        conf = os.path.join(workdir, "pantalad.json")
        with open(conf, "w") as f:
            json.dump({"data_dir": os.path.join(workdir, "data"),
                       "listen": {"udp": "127.0.0.1:%d" % self.udp,
                                  "http": "127.0.0.1:%d" % self.http},
                       "api": {"tokens": [TOKEN]},
                       "alerting": alerting,
                       "log": {"level": "warn"}}, f)
        self.logf = open(os.path.join(workdir, "pantalad.log"), "ab")
        self.p = subprocess.Popen([binary, "--config", conf], stdout=self.logf,
                                  stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.api + "/healthz", timeout=2)
                return
            except OSError:
                time.sleep(0.05)
        sys.exit("pantalad did not start; see %s/pantalad.log" % workdir)

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.api + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + TOKEN)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def metric_values(self):
        req = urllib.request.Request(self.api + "/metrics")
        req.add_header("Authorization", "Bearer " + TOKEN)
        out = {}
        for line in urllib.request.urlopen(req, timeout=10).read().decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def cpu_s(self):
        with open("/proc/%d/stat" % self.p.pid) as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mib(self):
        with open("/proc/%d/status" % self.p.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
        return 0.0

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.p.kill()
        self.logf.close()


def loadgen(args, coll, *extra, timeout=600):
    cmd = [args.loadgen, "--target", "127.0.0.1:%d" % coll.udp, "--quiet"] + [str(x) for x in extra]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode:
        sys.exit("pantala-loadgen failed: " + p.stderr)
    return p


def pct(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[max(0, min(len(xs) - 1, int(round(q / 100.0 * len(xs) + 0.5)) - 1))]


def latency(args, work):
    hook = Receiver()
    coll = Collector(args.pantalad, work, {"flap": {"changes": 0}, "tick": "100ms",
                                           "agent_down": {"enabled": False}})
    try:
        agents = os.path.join(work, "agents.json")
        log("registering %d agents" % args.agents)
        loadgen(args, coll, "--api", coll.api, "--token", TOKEN, "--agents", args.agents,
                "--vms-per-mcis", args.agents, "--ns", "bench", "--mcis", "lat",
                "--save-agents", agents, "--duration", 0)
        st, body = coll.call("POST", "/api/v1/handlers", {
            "name": "hook", "type": "webhook",
            "settings": {"url": hook.url + "/hook", "secret": "bench-secret"}})
        assert st == 201, body
        st, body = coll.call("POST", "/api/v1/rules", {
            "name": "lat", "scope": {"ns": "bench", "mcis": "lat-000"},
            "metric": "cpu.cpu_utilization", "crit": "> 50", "handlers": ["hook"]})
        assert st == 201, body
        plog = os.path.join(work, "pattern.log")
        rate = args.agents * 1000.0 / args.interval_ms
        log("driving %d agents at %.0f frames/s for %d s, period %s" %
            (args.agents, rate, args.seconds, args.period))
        loadgen(args, coll, "--agents-file", agents, "--rate", rate, "--interval-ms",
                args.interval_ms, "--duration", args.seconds, "--pattern",
                "cpu.cpu_utilization=10,90/%s" % args.period, "--pattern-log", plog,
                *(["--pattern-spread"] if not args.burst else []))
        crossings = {}
        with open(plog) as f:
            for line in f:
                vm, ts, phase, _ = line.split()
                crossings.setdefault((vm, "firing" if phase == "high" else "resolved"),
                                     []).append(int(ts) / 1e9)
        want = sum(len(v) for v in crossings.values())
        hook.wait_for(lambda r: len(r) >= want, timeout=15)
        lat = {"firing": [], "resolved": []}
        gen = []  # send -> event generated in pantalad (at_ns): evaluation's share
        seen = set()
        unmatched = 0
        for q in hook.snapshot():
            ev = q.json
            if not ev or ev["id"] in seen:
                continue
            seen.add(ev["id"])
            sends = [t for t in crossings.get((ev["labels"]["vm"], ev["status"]), []) if t <= q.t]
            if not sends:
                unmatched += 1
                continue
            lat[ev["status"]].append((q.t - max(sends)) * 1000.0)
            gen.append((ev["at_ns"] / 1e9 - max(sends)) * 1000.0)
        out = {"agents": args.agents, "crossings_sent": want, "events_received": len(seen),
               "unmatched": unmatched}
        print("# pantala sample -> webhook latency, `for: 0`, %d agents, period %s, "
              "interval %d ms, crossings %s" % (args.agents, args.period, args.interval_ms,
                                                "all at once (--burst)" if args.burst
                                                else "spread over the period"))
        print("%-9s %7s %8s %8s %8s %8s" % ("status", "n", "p50 ms", "p90 ms", "p99 ms", "max ms"))
        allv = lat["firing"] + lat["resolved"]
        for name, xs in (("firing", lat["firing"]), ("resolved", lat["resolved"]), ("all", allv)):
            print("%-9s %7d %8.2f %8.2f %8.2f %8.2f" % (name, len(xs), pct(xs, 50), pct(xs, 90),
                                                        pct(xs, 99), max(xs) if xs else 0))
            out[name] = {"n": len(xs), "p50_ms": pct(xs, 50), "p90_ms": pct(xs, 90),
                         "p99_ms": pct(xs, 99), "max_ms": max(xs) if xs else None}
        print("%-9s %7d %8.2f %8.2f %8.2f %8.2f   (send -> event generated: the evaluator's "
              "share)" % ("generated", len(gen), pct(gen, 50), pct(gen, 90), pct(gen, 99),
                          max(gen) if gen else 0))
        out["generated"] = {"n": len(gen), "p50_ms": pct(gen, 50), "p99_ms": pct(gen, 99)}
        print("# crossings sent %d, events received %d (unique ids), unmatched %d; "
              "load average %.1f" % (want, len(seen), unmatched, os.getloadavg()[0]))
        return out
    finally:
        coll.stop()
        hook.close()


def cost_rules(nmcis, per):
    """per rules for each MCIS, mixing reducers, fields and windows."""
    metrics = ["cpu.cpu_utilization", "cpu.cpu_system", "cpu.cpu_iowait", "cpu.load_avg_1m",
               "memory.mem_utilization", "memory.swap_utilization", "disk.disk_utilization",
               "diskio.kb_written", "network.bytes_in", "network.bytes_out"]
    reduces = ["each", "each", "each", "avg", "max", "p95", "each", "min", "sum", "each"]
    for m in range(nmcis):
        for i in range(per):
            yield {"name": "r-%03d-%03d" % (m, i),
                   "scope": {"ns": "bench", "mcis": "cost-%03d" % m},
                   "metric": metrics[i % len(metrics)],
                   "reduce": reduces[(i // len(metrics)) % len(reduces)],
                   "window": "1m" if i % 4 == 0 else "0s",
                   # thresholds no value reaches: the cost of evaluating, not of notifying
                   "warn": "> 1e15", "crit": "> 1e16"}


def cost(args, work):
    coll = Collector(args.pantalad, work, {"agent_down": {"enabled": True}, "tick": "100ms"})
    try:
        agents = os.path.join(work, "agents.json")
        nmcis = (args.agents + 99) // 100
        log("registering %d agents (%d MCIS of 100 VMs)" % (args.agents, nmcis))
        loadgen(args, coll, "--api", coll.api, "--token", TOKEN, "--agents", args.agents,
                "--vms-per-mcis", 100, "--ns", "bench", "--mcis", "cost", "--parallel", 32,
                "--save-agents", agents, "--duration", 0)

        def phase(label):
            p = subprocess.Popen([args.loadgen, "--target", "127.0.0.1:%d" % coll.udp, "--quiet",
                                  "--agents-file", agents, "--rate", str(args.agents),
                                  "--interval-ms", "1000", "--duration",
                                  str(args.seconds + 4)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(3)  # warm-up: every series exists
            m0 = coll.metric_values()
            c0, t0 = coll.cpu_s(), time.time()
            rss = 0.0
            while time.time() - t0 < args.seconds:
                time.sleep(0.5)
                rss = max(rss, coll.rss_mib())
            dt = time.time() - t0
            cpu = (coll.cpu_s() - c0) / dt * 100
            m1 = coll.metric_values()
            _, lg_err = p.communicate(timeout=60)
            log("loadgen: " + " | ".join(lg_err.strip().splitlines()[-3:]))

            def rate(name):
                return (m1.get(name, 0) - m0.get(name, 0)) / dt

            return {"phase": label, "cpu_pct": cpu, "rss_mib": rss,
                    "frames_per_s": rate('pantala_frames_total{outcome="accepted"}'),
                    "datagrams_per_s": rate("pantala_datagrams_received_total"),
                    "rejected_per_s": rate('pantala_frames_total{outcome="rejected"}'),
                    "rule_points_per_s": rate("pantala_alert_points_total")}

        base = phase("no rules")
        log("creating %d rules" % (nmcis * args.rules))
        t = time.time()
        n = 0
        for r in cost_rules(nmcis, args.rules):
            st, body = coll.call("POST", "/api/v1/rules", r)
            if st != 201:
                sys.exit("rule refused: %r" % (body,))
            n += 1
        log("%d rules in %.1f s" % (n, time.time() - t))
        with_rules = phase("%d rules/VM" % args.rules)
        req = urllib.request.Request(coll.api + "/metrics")
        req.add_header("Authorization", "Bearer " + TOKEN)
        text = urllib.request.urlopen(req, timeout=10).read().decode()
        points = [l for l in text.splitlines() if l.startswith("pantala_alert_points_total")]
        series = [l for l in text.splitlines() if l.startswith("pantala_alert_series ")]
        print("# pantalad evaluation cost: %d VMs at 1 s (%d MCIS x 100 VMs), %d rules per MCIS "
              "(%d rules), full-catalog frames" % (args.agents, nmcis, args.rules, n))
        print("%-16s %8s %8s %10s %10s %10s %14s" % ("phase", "CPU %", "RSS MiB", "recv/s",
                                                      "accept/s", "reject/s", "rule points/s"))
        for r in (base, with_rules):
            print("%-16s %8.1f %8.1f %10.0f %10.0f %10.0f %14.0f" % (
                r["phase"], r["cpu_pct"], r["rss_mib"], r["datagrams_per_s"], r["frames_per_s"],
                r["rejected_per_s"], r["rule_points_per_s"]))
        print("# " + "; ".join(points + series) + "; load average %.1f" % os.getloadavg()[0])
        return {"agents": args.agents, "rules": n, "baseline": base, "with_rules": with_rules}
    finally:
        coll.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["latency", "cost"])
    ap.add_argument("--pantalad")
    ap.add_argument("--loadgen")
    ap.add_argument("--agents", type=int)
    ap.add_argument("--seconds", type=int)
    ap.add_argument("--period", default="4s", help="latency: square-wave period")
    ap.add_argument("--interval-ms", type=int, default=500, help="latency: agents' interval")
    ap.add_argument("--burst", action="store_true",
                    help="latency: every agent crosses at the same moment (default: spread)")
    ap.add_argument("--rules", type=int, default=100, help="cost: rules per MCIS")
    ap.add_argument("--json")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    args.pantalad = find(args.pantalad, "collector/pantalad")
    args.loadgen = find(args.loadgen, "tests/bench/pantala-loadgen")
    if args.agents is None:
        args.agents = 200 if args.what == "latency" else 10000
    if args.seconds is None:
        args.seconds = 24 if args.what == "latency" else 20
    work = tempfile.mkdtemp(prefix="pt-alert-bench-")
    try:
        out = latency(args, work) if args.what == "latency" else cost(args, work)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=1)
    finally:
        if args.keep:
            log("kept " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
