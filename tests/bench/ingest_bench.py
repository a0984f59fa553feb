#!/usr/bin/env python3
"""Ingest benchmark: drives pantalad with pantala-loadgen at rising rates.

Starts pantalad on a temporary data directory and free loopback ports,
registers agents through its API (with the load generator), then sends
full-catalog frames at each target rate for a few seconds and reads the
collector's own counters (/metrics) and /proc to print, per step: the rate
achieved, frames accepted per second, values per second, loss, the
collector's CPU and memory, and what its writer wrote and dropped.

It is a benchmark: it prints figures, it does not pass or fail (the exit
status is non-zero only when it could not run). See tests/bench/README.md.
Python 3 standard library only.
"""

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

DEFAULT_RATES = [25000, 50000, 100000, 150000, 200000, 250000, 300000]
QUICK_RATES = [5000, 20000]
CLK_TCK = os.sysconf("SC_CLK_TCK")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def log(msg):
    print(f"ingest_bench: {msg}", file=sys.stderr, flush=True)


def die(msg):
    log(msg)
    sys.exit(2)


# ---- finding things -----------------------------------------------------------


def find_binary(explicit, build_dir, relpath, name):
    """The executable given, else the first build directory that has it."""
    if explicit:
        if not os.access(explicit, os.X_OK):
            die(f"{name}: {explicit} is not an executable")
        return os.path.abspath(explicit)
    dirs = [build_dir] if build_dir else [
        os.path.join(REPO, d) for d in ("build-bench", "build", "build-release")]
    for d in dirs:
        path = os.path.join(d, relpath)
        if os.access(path, os.X_OK):
            return path
    die(f"cannot find {name} (looked for {relpath} under {', '.join(dirs)}); "
        f"build it (cmake --build <dir> --target {name}) or pass its path")


def free_port(kind):
    """A loopback port nobody uses right now (TCP or UDP)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def read_sysctl(name):
    try:
        with open("/proc/sys/" + name.replace(".", "/")) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError):
        return None


# ---- the collector --------------------------------------------------------------


class Collector:
    def __init__(self, binary, workdir, token, insecure, pin, log_level, acks=True):
        self.binary = binary
        self.workdir = workdir
        self.token = token
        self.udp_port = free_port("udp")
        self.http_port = free_port("tcp")
        self.api = f"http://127.0.0.1:{self.http_port}"
        self.log_path = os.path.join(workdir, "pantalad.log")
        self.config_path = os.path.join(workdir, "pantalad.json")
        config = {
            "data_dir": os.path.join(workdir, "data"),
            "listen": {"udp": f"127.0.0.1:{self.udp_port}",
                       "http": f"127.0.0.1:{self.http_port}"},
            "api": {"tokens": [token]},
            "ingest": {"insecure": insecure, "max_age": "2h", "max_future": "5m",
                       "rcvbuf": 33554432, "acks": acks},
            "store": {"url": "sqlite:", "retention": "30d"},
            "writer": {"queue": 64, "batch": 2048, "flush": "200ms"},  # the defaults
            "log": {"level": log_level},
        }
        os.makedirs(config["data_dir"], exist_ok=True)
        with open(self.config_path, "w") as f:
            json.dump(config, f, indent=2)
        cmd = [binary, "--config", self.config_path]
        self.pin = pin
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid  # taskset execs pantalad: same pid

    def log_tail(self, lines=20):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read().decode(errors="replace").splitlines()
            return "\n".join(data[-lines:])
        except OSError:
            return ""

    def get(self, path, timeout=5):
        req = urllib.request.Request(self.api + path,
                                     headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")

    def wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                die(f"pantalad exited with status {self.proc.returncode} during start-up:\n"
                    + self.log_tail())
            try:
                status, _ = self.get("/metrics", timeout=2)
                if status == 200:
                    return
            except (urllib.error.URLError, OSError) as e:
                last = e
            time.sleep(0.1)
        die(f"pantalad did not answer on {self.api}/metrics within {timeout} s ({last}):\n"
            + self.log_tail())

    def metrics(self):
        _, text = self.get("/metrics")
        return Metrics(text)

    def cpu_seconds(self, tid=None):
        """CPU seconds of the whole process, or of one thread."""
        path = f"/proc/{self.pid}/stat" if tid is None else f"/proc/{self.pid}/task/{tid}/stat"
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime

    def ingest_cpu_seconds(self):
        """The ingest path runs on the libuv loop: the main thread."""
        return self.cpu_seconds(self.pid)

    def pin_threads(self):
        """DESIGN §13 measures ingest on one core: the ingest (main) thread
        gets CPU 0 to itself; the writer and API threads share CPU 1 with
        the load generator."""
        for tid in os.listdir(f"/proc/{self.pid}/task"):
            os.sched_setaffinity(int(tid), {0} if int(tid) == self.pid else {1})

    def memory_kib(self):
        rss = hwm = 0
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
        return rss, hwm

    def stop(self, timeout=60):
        """SIGTERM, then SIGKILL after timeout s (a writer may have a queue
        to flush). Returns the exit status and the seconds it took."""
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log(f"pantalad did not stop within {timeout} s of SIGTERM: killing it")
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        return self.proc.returncode, time.monotonic() - t0


class Metrics:
    """A scrape of the Prometheus text format: name -> [(labels, value)]."""

    LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)')
    LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

    def __init__(self, text):
        self.series = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            m = self.LINE.match(line)
            if not m:
                continue
            labels = dict(self.LABEL.findall(m.group(3) or ""))
            try:
                value = float(m.group(4))
            except ValueError:
                continue
            self.series.setdefault(m.group(1), []).append((labels, value))

    def has(self, name):
        return name in self.series

    def get(self, name, **want):
        """Sum of the series of name whose labels include want (0 if none)."""
        return sum(v for labels, v in self.series.get(name, [])
                   if all(labels.get(k) == w for k, w in want.items()))


# ---- one step ---------------------------------------------------------------------


class Sampler(threading.Thread):
    """Polls the collector while a step runs: the deepest write queue seen."""

    def __init__(self, coll, period=0.5):
        super().__init__(daemon=True)
        self.coll, self.period = coll, period
        self.stop_event = threading.Event()
        self.queue_max = 0.0

    def run(self):
        while not self.stop_event.wait(self.period):
            try:
                self.queue_max = max(self.queue_max,
                                     self.coll.metrics().get("pantala_write_queue_depth"))
            except (urllib.error.URLError, OSError):
                pass


def drain(coll, settle_max):
    """Waits until the collector has taken in everything (received count and
    write queue stable); returns the last scrape."""
    deadline = time.monotonic() + settle_max
    prev = None
    stable = 0
    while True:
        m = coll.metrics()
        cur = (m.get("pantala_frames_received_total"), m.get("pantala_points_written_total"))
        quiet = prev == cur and m.get("pantala_write_queue_depth") == 0
        stable = stable + 1 if quiet else 0
        if stable >= 2 or time.monotonic() > deadline:
            return m
        prev = cur
        time.sleep(0.25)


def run_step(args, coll, loadgen, agents_file, rate, seconds, epoch):
    m0 = coll.metrics()
    cpu0, t0 = coll.cpu_seconds(), time.monotonic()
    icpu0 = coll.ingest_cpu_seconds()
    sampler = Sampler(coll)
    sampler.start()
    cmd = [loadgen, "--agents-file", agents_file, "--target", f"127.0.0.1:{coll.udp_port}",
           "--rate", str(rate), "--duration", str(seconds), "--epoch", str(epoch),
           "--json", "--quiet"]
    if args.unsigned:
        cmd.append("--unsigned")
    if args.no_gso:
        cmd.append("--no-gso")
    if args.pin:
        cmd = ["taskset", "-c", "1"] + cmd
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cpu1, t1 = coll.cpu_seconds(), time.monotonic()
    icpu1 = coll.ingest_cpu_seconds()
    sampler.stop_event.set()
    sampler.join()
    if out.returncode != 0:
        die(f"pantala-loadgen failed ({out.returncode}): {out.stderr.strip()}")
    lg = json.loads(out.stdout.strip().splitlines()[-1])
    rss, hwm = coll.memory_kib()
    m_end = coll.metrics()  # the writer's progress while frames came in
    t_drain = time.monotonic()
    m1 = drain(coll, args.settle)
    drain_s = time.monotonic() - t_drain
    rss_after, hwm = coll.memory_kib()
    if coll.proc.poll() is not None:
        die(f"pantalad exited ({coll.proc.returncode}) during the {rate}/s step:\n"
            + coll.log_tail())

    def d(name, **labels):
        return m1.get(name, **labels) - m0.get(name, **labels)

    elapsed = lg["elapsed_s"] or 1e-9
    sent = lg["frames"]
    accepted = d("pantala_frames_total", outcome="accepted")
    duplicate = d("pantala_frames_total", outcome="duplicate")
    rejected = d("pantala_frames_total", outcome="rejected")
    received = d("pantala_frames_received_total")
    reasons = {}
    for labels, v in m1.series.get("pantala_frames_rejected_total", []):
        delta = v - m0.get("pantala_frames_rejected_total", **labels)
        if delta:
            reasons[labels.get("reason", "?")] = int(delta)
    lost = sent - accepted - duplicate
    return {
        "target_rate": rate,
        "sent": sent,
        "sent_rate": sent / elapsed,
        "send_errors": lg["send_errors"],
        "received": int(received),
        "accepted": int(accepted),
        "duplicate": int(duplicate),
        "rejected": int(rejected),
        "rejected_reasons": reasons,
        "accepted_rate": accepted / elapsed,
        "values_rate": d("pantala_values_accepted_total") / elapsed,
        "loss_pct": 100.0 * lost / sent if sent else 0.0,
        "kernel_drops": int(max(0, sent - received)),
        "cpu_pct": 100.0 * (cpu1 - cpu0) / (t1 - t0),
        "ingest_cpu_pct": 100.0 * (icpu1 - icpu0) / (t1 - t0),
        "rss_mib": max(rss, rss_after) / 1024.0,
        "hwm_mib": hwm / 1024.0,
        "points_written": int(d("pantala_points_written_total")),
        # during the send window only: the writer under load
        "points_written_rate": (m_end.get("pantala_points_written_total")
                                - m0.get("pantala_points_written_total")) / (t1 - t0),
        "drain_s": drain_s,
        "points_dropped": int(d("pantala_points_dropped_total")),
        "queue_max": int(max(sampler.queue_max, m1.get("pantala_write_queue_depth"))),
        "queue_left": int(m1.get("pantala_write_queue_depth")),
        "loadgen_cpu_pct": 100.0 * lg["cpu_s"] / elapsed,
        "elapsed_s": elapsed,
    }


HEADER = ("{:>8} {:>9} {:>10} {:>9} {:>7} {:>8} {:>6} {:>7} {:>7} {:>7} {:>10} {:>9} {:>6}"
          .format("target", "sent/s", "accepted/s", "values/s", "loss%", "rejected",
                  "CPU%", "ingest%", "RSS MiB", "HWM MiB", "written/s", "dropped", "qmax"))


def fmt_row(r):
    return ("{:>8} {:>9.0f} {:>10.0f} {:>8.2f}M {:>7.3f} {:>8} {:>6.1f} {:>7.1f} {:>7.1f} "
            "{:>7.1f} {:>10.0f} {:>9} {:>6}").format(
        r["target_rate"], r["sent_rate"], r["accepted_rate"], r["values_rate"] / 1e6,
        r["loss_pct"], r["rejected"], r["cpu_pct"], r["ingest_cpu_pct"], r["rss_mib"],
        r["hwm_mib"],
        r["points_written_rate"], r["points_dropped"], r["queue_max"])


# ---- main ------------------------------------------------------------------------


def parse_args():
    p = argparse.ArgumentParser(
        description="Drive pantalad with pantala-loadgen at rising rates and print what it "
                    "ingests (see tests/bench/README.md).")
    p.add_argument("--pantalad", help="pantalad executable (default: <build>/collector/pantalad)")
    p.add_argument("--loadgen",
                   help="pantala-loadgen executable (default: <build>/tests/bench/pantala-loadgen)")
    p.add_argument("--build-dir", help="build directory to take both from (default: the first "
                                       "of build-bench, build, build-release that has them)")
    p.add_argument("--agents", type=int, help="simulated agents (default 1000; --quick: 50)")
    p.add_argument("--rates", help="comma-separated frames/s per step (default "
                                   + ",".join(map(str, DEFAULT_RATES)) + ")")
    p.add_argument("--step-seconds", type=float, default=5, help="seconds per step (default 5)")
    p.add_argument("--warmup", type=float, default=2,
                   help="seconds at the first rate before measuring (default 2; 0 = none)")
    p.add_argument("--settle", type=float, default=15,
                   help="most seconds to wait for the collector to drain after a step")
    p.add_argument("--pin", action="store_true",
                   help="pin pantalad's ingest thread to CPU 0, its other threads and the load "
                        "generator to CPU 1")
    p.add_argument("--unsigned", action="store_true",
                   help="unsigned frames, collector in insecure mode")
    p.add_argument("--no-gso", action="store_true", help="pass --no-gso to the load generator")
    p.add_argument("--no-acks", action="store_true",
                   help="run pantalad with ingest.acks off (to compare: acks cost the ingest "
                        "thread one signed datagram per agent per ack interval)")
    p.add_argument("--log-level", default="warn", help="pantalad log level (default warn)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 50 agents, 5k and 20k frames/s, 2 s each")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    p.add_argument("--keep", action="store_true",
                   help="keep the temporary directory (config, log, data)")
    args = p.parse_args()
    if args.agents is None:
        args.agents = 50 if args.quick else 1000
    if args.agents < 1:
        p.error("--agents: at least 1")
    if args.quick:
        args.rates = args.rates or ",".join(map(str, QUICK_RATES))
        args.step_seconds = 2
        args.warmup = min(args.warmup, 1)
    try:
        args.rate_list = ([int(float(x)) for x in args.rates.split(",") if x.strip()]
                          if args.rates else DEFAULT_RATES)
    except ValueError:
        p.error("--rates: expected numbers separated by commas")
    if not args.rate_list or min(args.rate_list) <= 0:
        p.error("--rates: expected positive rates")
    if args.pin:
        if not shutil.which("taskset"):
            p.error("--pin needs taskset (util-linux)")
        if os.cpu_count() is None or os.cpu_count() < 2:
            p.error("--pin needs two CPUs")
    return args


def main():
    args = parse_args()
    pantalad = find_binary(args.pantalad, args.build_dir, "collector/pantalad", "pantalad")
    loadgen = find_binary(args.loadgen, args.build_dir, "tests/bench/pantala-loadgen",
                          "pantala-loadgen")
    workdir = tempfile.mkdtemp(prefix="pt-ingest-bench-")
    token = secrets.token_hex(16)
    rmem_max = read_sysctl("net.core.rmem_max")
    log(f"pantalad {pantalad}")
    log(f"loadgen  {loadgen}")
    log(f"workdir  {workdir}; {os.cpu_count()} CPUs; net.core.rmem_max {rmem_max}"
        + (" (pantalad asks 32 MiB: it needs SO_RCVBUFFORCE, i.e. root, to get it)"
           if rmem_max is not None and rmem_max < 33554432 else ""))
    coll = Collector(pantalad, workdir, token, args.unsigned, args.pin, args.log_level,
                     acks=not args.no_acks)
    results = []
    status = 0
    try:
        coll.wait_ready()
        if args.pin:
            coll.pin_threads()
        log(f"pantalad {coll.pid} up: udp 127.0.0.1:{coll.udp_port}, api {coll.api}")
        m = coll.metrics()
        missing = [n for n in ("pantala_frames_received_total", "pantala_frames_total",
                               "pantala_values_accepted_total", "pantala_points_written_total")
                   if not m.has(n)]
        if missing:
            log("warning: /metrics lacks " + ", ".join(missing) + " (counted as 0)")

        agents_file = os.path.join(workdir, "agents.json")
        reg = subprocess.run([loadgen, "--api", coll.api, "--token", token, "--agents",
                              str(args.agents), "--save-agents", agents_file, "--duration", "0"])
        if reg.returncode != 0:
            die("registering the agents failed:\n" + coll.log_tail())

        epoch = int(time.time())
        if args.warmup > 0:
            log(f"warm-up: {args.warmup:g} s at {args.rate_list[0]}/s")
            run_step(args, coll, loadgen, agents_file, args.rate_list[0], args.warmup, epoch)
            epoch = max(epoch + 1, int(time.time()))

        print(f"# pantalad ingest: {args.agents} agents, {'unsigned' if args.unsigned else 'signed'}"
              f" frames of 54 values, {args.step_seconds:g} s per step"
              + (", acks off" if args.no_acks else ", acks on")
              + (", pinned (ingest thread CPU 0; writer, API and loadgen CPU 1)" if args.pin else ""), flush=True)
        print(HEADER, flush=True)
        for rate in args.rate_list:
            r = run_step(args, coll, loadgen, agents_file, rate, args.step_seconds, epoch)
            epoch = max(epoch + 1, int(time.time()))  # each step: a new epoch, seq from 1
            results.append(r)
            print(fmt_row(r), flush=True)
            notes = []
            if r["rejected_reasons"]:
                notes.append("rejected: " + ", ".join(f"{k} {v}" for k, v in
                                                      sorted(r["rejected_reasons"].items())))
            if r["kernel_drops"]:
                notes.append(f"{r['kernel_drops']} frames never reached pantalad (socket "
                             f"buffer overflow)")
            if r["queue_left"]:
                notes.append(f"the writer still had {r['queue_left']} batches queued "
                             f"{args.settle:g} s after the step (the next step starts with them)")
            if r["send_errors"]:
                notes.append(f"{r['send_errors']} send errors in the load generator")
            if r["sent_rate"] < 0.97 * rate:
                notes.append(f"the load generator reached only {r['sent_rate']:.0f}/s "
                             f"({r['loadgen_cpu_pct']:.0f}% of a CPU)")
            for n in notes:
                print(f"#   {n}", flush=True)

        zero = [r for r in results if r["sent"] > 0 and r["accepted"] + r["duplicate"] >= r["sent"]]
        if zero:
            best = max(zero, key=lambda r: r["accepted_rate"])
            print(f"# highest zero-loss step: target {best['target_rate']}/s, "
                  f"{best['accepted_rate']:.0f} frames/s accepted, "
                  f"{best['values_rate'] / 1e6:.2f}M values/s, collector CPU "
                  f"{best['cpu_pct']:.0f}%", flush=True)
        else:
            print("# no step was free of loss", flush=True)
    except KeyboardInterrupt:
        log("interrupted")
        status = 130
    finally:
        try:
            left = coll.metrics().get("pantala_write_queue_depth")
            if left:
                log(f"stopping pantalad with {left:.0f} write batches still queued")
        except (urllib.error.URLError, OSError):
            pass
        rc, took = coll.stop()
        log(f"pantalad stopped in {took:.1f} s (status {rc})")
        if rc not in (0, None, -signal.SIGTERM):
            log(f"last lines of its log:\n" + coll.log_tail())
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"agents": args.agents, "signed": not args.unsigned,
                           "pinned": args.pin, "steps": results}, f, indent=2)
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
