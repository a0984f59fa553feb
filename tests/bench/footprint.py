#!/usr/bin/env python3
"""Footprint benchmark: pantala-agent beside collectd and node_exporter.

DESIGN.md section 13: agent RSS <= 2 MiB with the full catalog at 1 s, and
<= 0.5 ms of CPU per collection. This runs, side by side on this machine
and at the same interval:

  * pantala-agent, the static build (build-static, PT_AGENT_STATIC) and the
    dynamic one when found, each with its whole catalog, sending signed
    frames through a counting UDP relay of ours to a real pantalad (when
    one is built; registered through its API, so every frame is verified)
    or to the relay alone (--no-pantalad);
  * collectd (Debian collectd-core) with cpu, memory, disk, interface,
    load, df, swap, processes and network -> our UDP port, Interval 1;
  * prometheus-node-exporter with its default collectors, scraped by us
    once per interval.

For each: peak RSS (VmHWM), CPU per collection over the measured window
(utime + stime from /proc/<pid>/stat, all threads; the stat clock ticks
every 10 ms, so the same figure is also given from schedstat, in ns, for
the threads alive at the end), the number of collections (frames received,
collectd's read cycles seen on the wire, scrapes), values per collection,
and the size of the binary. Then the ratios collectd/agent and
node_exporter/agent.

  tests/bench/footprint.py                 # the full run: 60 s
  tests/bench/footprint.py --seconds 5     # smoke run (ctest bench_footprint_smoke)
  tests/bench/footprint.py --json out.json

Exits non-zero when a subject does not work (no frames, frames the
collector rejects, no collectd packets, failed scrapes); the figures
themselves never fail it. Standard library only.
"""
import argparse
import glob
import json
import os
import secrets
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD_DIRS = ["build-test", "build", "build-bench", "build-release"]
CLK_TCK = os.sysconf("SC_CLK_TCK")
COLLECTD_PLUGINS = ["cpu", "memory", "disk", "interface", "load", "df", "swap", "processes",
                    "network"]


def die(msg):
    print("footprint: " + msg, file=sys.stderr)
    sys.exit(2)


def free_port(kind):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def is_dynamic(path):
    """True when the ELF file has a PT_INTERP program header."""
    with open(path, "rb") as f:
        data = f.read(65536)
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return None
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    return any(struct.unpack_from("<I", data, phoff + i * phentsize)[0] == 3
               for i in range(phnum))


def newest(paths):
    found = [p for p in paths if os.path.isfile(p) and os.access(p, os.X_OK)]
    return max(found, key=os.path.getmtime) if found else None


def stripped_size(path):
    strip = shutil.which("strip")
    if not strip:
        return None
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "bin")
        if subprocess.run([strip, "-o", out, path], capture_output=True).returncode:
            return None
        return os.path.getsize(out)


# ---- /proc ------------------------------------------------------------------

def cpu_ticks(pid):
    """utime + stime of the whole process (all threads, dead ones too)."""
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])  # fields 14 and 15


def cpu_ns(pid):
    """Run time of the live threads in ns (schedstat), or None."""
    total = 0
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, t)) as f:
                total += int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return total


def status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


# ---- msgpack, enough for the agent's frames -----------------------------------

def mp_unpack(b, i=0):
    t = b[i]
    if t <= 0x7f:
        return t, i + 1
    if t >= 0xe0:
        return t - 0x100, i + 1
    if 0x80 <= t <= 0x8f or t in (0xde, 0xdf):
        if t <= 0x8f:
            n, i = t & 0x0f, i + 1
        else:
            w = ">H" if t == 0xde else ">I"
            n, i = struct.unpack_from(w, b, i + 1)[0], i + 1 + struct.calcsize(w)
        out = {}
        for _ in range(n):
            k, i = mp_unpack(b, i)
            out[k], i = mp_unpack(b, i)
        return out, i
    if 0x90 <= t <= 0x9f or t in (0xdc, 0xdd):
        if t <= 0x9f:
            n, i = t & 0x0f, i + 1
        else:
            w = ">H" if t == 0xdc else ">I"
            n, i = struct.unpack_from(w, b, i + 1)[0], i + 1 + struct.calcsize(w)
        out = []
        for _ in range(n):
            v, i = mp_unpack(b, i)
            out.append(v)
        return out, i
    if 0xa0 <= t <= 0xbf or t in (0xd9, 0xda, 0xdb):
        if t <= 0xbf:
            n, i = t & 0x1f, i + 1
        else:
            w = {0xd9: ">B", 0xda: ">H", 0xdb: ">I"}[t]
            n, i = struct.unpack_from(w, b, i + 1)[0], i + 1 + struct.calcsize(w)
        return b[i:i + n].decode("utf-8", "replace"), i + n
    fixed = {0xcc: ">B", 0xcd: ">H", 0xce: ">I", 0xcf: ">Q", 0xd0: ">b", 0xd1: ">h",
             0xd2: ">i", 0xd3: ">q", 0xca: ">f", 0xcb: ">d"}
    if t in fixed:
        return struct.unpack_from(fixed[t], b, i + 1)[0], i + 1 + struct.calcsize(fixed[t])
    if t == 0xd7:  # fixext 8: the wire's int64
        return struct.unpack_from(">q", b, i + 2)[0], i + 10
    if t == 0xc0:
        return None, i + 1
    if t in (0xc2, 0xc3):
        return t == 0xc3, i + 1
    raise ValueError("msgpack type 0x%02x" % t)


def frame_shape(data):
    """(measurements, values, part, nparts) of a signed protocol-v1 frame. A
    large sample comes as several parts (docs/protocol.md): one collection."""
    f, _ = mp_unpack(data[:-32])
    meas = f[11]
    return len(meas), sum(len(m[2]) for m in meas), f[8], f[9]


# ---- collectd's binary network protocol -------------------------------------

def collectd_parts(data):
    """Yields (plugin, time) for every value list of a collectd packet."""
    i, plugin, t = 0, None, None
    while i + 4 <= len(data):
        ptype, plen = struct.unpack_from(">HH", data, i)
        if plen < 4 or i + plen > len(data):
            return
        body = data[i + 4:i + plen]
        if ptype == 0x0002:
            plugin = body.rstrip(b"\0").decode("ascii", "replace")
        elif ptype == 0x0001:
            t = float(struct.unpack(">Q", body)[0])
        elif ptype == 0x0008:
            t = struct.unpack(">Q", body)[0] / 2 ** 30
        elif ptype == 0x0006:
            yield plugin, t
        i += plen


# ---- the subjects ----------------------------------------------------------------

class Subject:
    def __init__(self, name, binary, size_note=""):
        self.name, self.binary, self.size_note = name, binary, size_note
        self.proc = None
        self.collections = 0      # in the measured window
        self.values = 0           # values seen in the measured window
        self.errors = []
        self.counting = False
        self.lock = threading.Lock()
        self.size = os.path.getsize(binary)
        self.stripped = stripped_size(binary)

    def count(self, n=1, values=0):
        with self.lock:
            if self.counting:
                self.collections += n
                self.values += values
                self.frames = getattr(self, "frames", 0) + 1


class Relay(threading.Thread):
    """UDP sockets of ours, one per agent: counts each agent's frames and
    their values, and forwards them to pantalad when there is one."""

    def __init__(self, target):
        super().__init__(daemon=True)
        self.target = target
        self.socks = {}
        self.running = True
        # Per agent, a socket towards pantalad, so its acknowledgements find
        # their way back to the agent (else the agent would keep its frames
        # and resend them, and be measured doing so).
        self.outs = {}  # agent-facing socket -> pantalad-facing socket
        self.back = {}  # pantalad-facing socket -> (agent-facing socket, agent address)

    def add(self, subject):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        self.socks[s] = subject
        o = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        o.bind(("127.0.0.1", 0))
        self.outs[s] = o
        self.back[o] = (s, None)
        subject.shape = None
        return s.getsockname()[1]

    def run(self):
        while self.running:
            ready, _, _ = select.select(list(self.socks) + list(self.back), [], [], 0.2)
            for s in ready:
                if s in self.back:  # an ack from pantalad
                    ack = s.recv(65536)
                    front, addr = self.back[s]
                    if addr:
                        front.sendto(ack, addr)
                    continue
                data, addr = s.recvfrom(65536)
                self.back[self.outs[s]] = (s, addr)
                subj = self.socks[s]
                try:
                    shape = frame_shape(data)
                except (ValueError, IndexError, struct.error) as e:
                    subj.errors.append("undecodable frame: %s" % e)
                    continue
                nmeas, nvalues, part, nparts = shape
                if part == 0:
                    subj.sample = [0, 0, 0]
                cur = getattr(subj, "sample", [0, 0, 0])
                cur[0] += nmeas
                cur[1] += nvalues
                cur[2] += 1
                if part == nparts - 1:
                    subj.shape = (cur[0], cur[1], cur[2])
                subj.count(1 if part == 0 else 0, nvalues)
                if self.target:
                    self.outs[s].sendto(data, self.target)


class CollectdSink(threading.Thread):
    """collectd's network plugin sends here: a read cycle is counted once
    per distinct timestamp of the load plugin (one value list per read)."""

    def __init__(self, subject):
        super().__init__(daemon=True)
        self.subject = subject
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.packets = 0
        self.seen = set()
        self.plugins = set()
        self.running = True

    def run(self):
        while self.running:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            self.packets += 1
            values, cycles = 0, 0
            for plugin, t in collectd_parts(data):
                values += 1
                self.plugins.add(plugin)
                if plugin == "load" and t not in self.seen:
                    self.seen.add(t)
                    cycles += 1
            self.subject.count(cycles, values)


class Scraper(threading.Thread):
    """Scrapes node_exporter once per interval, on the interval's
    boundaries; each scrape is one collection of every collector."""

    def __init__(self, subject, url, interval):
        super().__init__(daemon=True)
        self.subject, self.url, self.interval = subject, url, interval
        self.running = True
        self.failures = 0

    def run(self):
        while self.running:
            time.sleep(self.interval - time.time() % self.interval)
            try:
                with urllib.request.urlopen(self.url, timeout=5) as r:
                    text = r.read().decode("utf-8", "replace")
                samples = sum(1 for line in text.splitlines() if line and line[0] != "#")
                self.subject.count(1, samples)
            except (OSError, urllib.error.URLError) as e:
                if self.subject.counting:
                    self.failures += 1
                    self.subject.errors.append("scrape failed: %s" % e)


# ---- pantalad ------------------------------------------------------------------

class Pantalad:
    def __init__(self, binary, tmp):
        self.binary, self.tmp = binary, tmp
        self.udp = free_port(socket.SOCK_DGRAM)
        self.http = free_port(socket.SOCK_STREAM)
        self.token = secrets.token_hex(24)
        conf = os.path.join(tmp, "pantalad.json")
        with open(conf, "w") as f:
            json.dump({"data_dir": os.path.join(tmp, "pantalad-data"),
                       "listen": {"udp": "127.0.0.1:%d" % self.udp,
                                  "http": "127.0.0.1:%d" % self.http},
                       "api": {"tokens": [self.token]}, "log": {"level": "warn"}}, f)
        self.log = os.path.join(tmp, "pantalad.log")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([binary, "--config", conf], stdout=log,
                                         stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        die("pantalad did not start; its log:\n" + open(self.log).read()[-2000:])

    def request(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.http, path), data=data,
                                     method=method)
        req.add_header("Authorization", "Bearer " + self.token)
        if data:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def register(self, vm):
        status, body = self.request("POST", "/api/v1/agents",
                                    {"ns": "bench", "mcis": "footprint", "vm": vm})
        if status != 201:
            die("registering %s with pantalad: %d %s" % (vm, status, body))
        return json.loads(body)["agent_config"]

    def frames(self):
        status, text = self.request("GET", "/metrics")
        out = {}
        for line in text.splitlines():
            if line.startswith("pantala_frames_total{"):
                name, value = line.rsplit(" ", 1)
                out[name.split('"')[1]] = int(float(value))
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---- the run -------------------------------------------------------------------

def find_defaults(args):
    if not args.agent:
        args.agent = newest([os.path.join(ROOT, "build-static", "agent", "pantala-agent")])
    if not args.agent_dynamic:
        cands = [os.path.join(ROOT, d, "agent", "pantala-agent") for d in BUILD_DIRS]
        args.agent_dynamic = newest([c for c in cands if os.path.isfile(c) and is_dynamic(c)])
    if not args.pantalad and not args.no_pantalad:
        args.pantalad = newest([os.path.join(ROOT, d, "collector", "pantalad")
                                for d in BUILD_DIRS])


def start_agent(subj, tmp, relay, pantalad, interval, tag):
    port = relay.add(subj)
    if pantalad:
        conf = pantalad.register("agent-" + tag)
    else:
        conf = {"agent_id": 1000 + len(relay.socks), "key": secrets.token_hex(32),
                "ns": "bench", "mcis": "footprint", "vm": "agent-" + tag}
    conf["collector"] = "127.0.0.1:%d" % port
    conf["interval"] = "%gs" % interval
    path = os.path.join(tmp, "agent-%s.json" % tag)
    with open(path, "w") as f:
        json.dump(conf, f)
    os.chmod(path, 0o600)
    log = open(os.path.join(tmp, "agent-%s.log" % tag), "ab")
    subj.proc = subprocess.Popen([subj.binary, "--config", path], stdout=log,
                                 stderr=subprocess.STDOUT)
    subj.log = log.name


def start_collectd(subj, tmp, sink, interval):
    conf = os.path.join(tmp, "collectd.conf")
    lines = ['Hostname "footprint-bench"', "FQDNLookup false", "Interval %g" % interval,
             'BaseDir "%s"' % tmp, 'PIDFile "%s/collectd.pid"' % tmp,
             'PluginDir "/usr/lib/collectd"', 'TypesDB "/usr/share/collectd/types.db"',
             "LoadPlugin logfile",
             '<Plugin logfile>\n  LogLevel "warning"\n  File "%s/collectd.log"\n</Plugin>' % tmp]
    lines += ["LoadPlugin %s" % p for p in COLLECTD_PLUGINS]
    lines.append('<Plugin network>\n  Server "127.0.0.1" "%d"\n</Plugin>' % sink.port)
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    log = open(os.path.join(tmp, "collectd.out"), "ab")
    subj.proc = subprocess.Popen([subj.binary, "-f", "-C", conf], stdout=log,
                                 stderr=subprocess.STDOUT)
    subj.log = os.path.join(tmp, "collectd.log")


def start_node_exporter(subj, tmp):
    port = free_port(socket.SOCK_STREAM)
    log = open(os.path.join(tmp, "node_exporter.log"), "ab")
    subj.proc = subprocess.Popen([subj.binary, "--web.listen-address=127.0.0.1:%d" % port],
                                 stdout=log, stderr=subprocess.STDOUT)
    subj.log = log.name
    url = "http://127.0.0.1:%d/metrics" % port
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return url
        except OSError:
            if subj.proc.poll() is not None:
                break
            time.sleep(0.1)
    die("node_exporter did not answer on %s; its log:\n%s" % (url, open(log.name).read()[-2000:]))


def fmt_size(n):
    return "-" if n is None else "%.0f KB" % (n / 1000.0) if n < 10 ** 6 else "%.1f MB" % (n / 1e6)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60, help="measured window (default 60)")
    ap.add_argument("--warmup", type=float, default=3, help="seconds before measuring (3)")
    ap.add_argument("--interval", type=float, default=1, help="collection interval, s (1)")
    ap.add_argument("--agent", help="static pantala-agent (default build-static/agent/)")
    ap.add_argument("--agent-dynamic", help="dynamic pantala-agent (default: build*/agent/)")
    ap.add_argument("--pantalad", help="pantalad to send to (default: build*/collector/)")
    ap.add_argument("--no-pantalad", action="store_true", help="count frames, send nowhere")
    ap.add_argument("--collectd", default=shutil.which("collectd") or "/usr/sbin/collectd")
    ap.add_argument("--node-exporter", default=shutil.which("prometheus-node-exporter")
                    or shutil.which("node_exporter"))
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    find_defaults(args)

    subjects = []
    for path in (args.agent, args.agent_dynamic):
        if path:
            dyn = is_dynamic(path)
            subjects.append(Subject("pantala-agent (%s)" % ("dynamic" if dyn else "static"), path,
                                    "+ shared libraries" if dyn else ""))
    if not subjects:
        die("no pantala-agent found: build one (cmake -S . -B build-static -DPT_AGENT_STATIC=ON)"
            " or give --agent")
    agents = list(subjects)
    collectd = node = None
    if args.collectd and os.path.isfile(args.collectd):
        plugins = sum(os.path.getsize(p) for p in
                      ("/usr/lib/collectd/%s.so" % n for n in COLLECTD_PLUGINS + ["logfile"])
                      if os.path.isfile(p))
        collectd = Subject("collectd", args.collectd,
                           "+ %s of plugins + shared libraries" % fmt_size(plugins))
        subjects.append(collectd)
    else:
        print("note: collectd not found (Debian: collectd-core); not compared")
    if args.node_exporter and os.path.isfile(args.node_exporter):
        node = Subject("node_exporter", args.node_exporter)
        subjects.append(node)
    else:
        print("note: node_exporter not found (Debian: prometheus-node-exporter); not compared")

    tmp = tempfile.mkdtemp(prefix="pt-footprint-")
    pantalad = Pantalad(args.pantalad, tmp) if args.pantalad else None
    relay = Relay(("127.0.0.1", pantalad.udp) if pantalad else None)
    threads = [relay]
    ok = True
    try:
        for i, subj in enumerate(agents):
            start_agent(subj, tmp, relay, pantalad, args.interval, "%d" % (i + 1))
        if collectd:
            sink = CollectdSink(collectd)
            threads.append(sink)
            start_collectd(collectd, tmp, sink, args.interval)
        if node:
            url = start_node_exporter(node, tmp)
            threads.append(Scraper(node, url, args.interval))
        for t in threads:
            t.start()

        print("footprint: %d subjects, %g s interval, %g s warm-up, %g s measured%s"
              % (len(subjects), args.interval, args.warmup, args.seconds,
                 ", agents -> pantalad" if pantalad else ", agents -> a UDP sink"))
        time.sleep(args.warmup)
        before = pantalad.frames() if pantalad else None
        t0 = time.time()
        for s in subjects:
            if s.proc.poll() is not None:
                die("%s exited during warm-up (status %s); see %s"
                    % (s.name, s.proc.returncode, s.log))
            s.cpu0, s.ns0 = cpu_ticks(s.proc.pid), cpu_ns(s.proc.pid)
            s.counting = True
        time.sleep(args.seconds)
        for s in subjects:
            s.counting = False
            s.cpu1, s.ns1 = cpu_ticks(s.proc.pid), cpu_ns(s.proc.pid)
            s.hwm, s.rss = status_kb(s.proc.pid, "VmHWM"), status_kb(s.proc.pid, "VmRSS")
            s.threads = len(os.listdir("/proc/%d/task" % s.proc.pid))
        elapsed = time.time() - t0
        time.sleep(0.3)  # frames in flight reach pantalad
        after = pantalad.frames() if pantalad else None
    finally:
        for t in threads:
            t.running = False
        for s in subjects:
            if s.proc and s.proc.poll() is None:
                s.proc.send_signal(signal.SIGTERM)
        for s in subjects:
            if s.proc:
                try:
                    s.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    s.proc.kill()
                    s.proc.wait()
        if pantalad:
            pantalad.stop()

    # ---- results
    rows = []
    for s in subjects:
        cpu_s = (s.cpu1 - s.cpu0) / CLK_TCK
        ns = (s.ns1 - s.ns0) if s.ns0 is not None and s.ns1 is not None else None
        n = s.collections
        r = {"name": s.name, "binary": s.binary, "size": s.size, "stripped": s.stripped,
             "size_note": s.size_note, "peak_rss_kb": s.hwm, "rss_kb": s.rss,
             "threads": s.threads, "collections": n, "seconds": elapsed,
             "cpu_s": cpu_s, "cpu_ms_per_collection": 1000 * cpu_s / n if n else None,
             "sched_ms_per_collection": ns / 1e6 / n if n and ns is not None else None,
             "values_per_collection": s.values / n if n else None, "errors": s.errors[:5]}
        if getattr(s, "shape", None):
            r["measurements"], r["parts"] = s.shape[0], s.shape[2]
        rows.append(r)
        if n == 0:
            ok = False
            r["errors"].append("no collections seen in %.0f s" % elapsed)
        if s.errors:
            ok = False

    print()
    hdr = "%-24s %10s %11s %11s %6s %7s %8s  %s" % (
        "", "peak RSS", "CPU/coll", "(schedstat)", "colls", "values", "threads", "binary")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        cpu = "%.3f ms" % r["cpu_ms_per_collection"] if r["collections"] else "-"
        sched = "%.3f ms" % r["sched_ms_per_collection"] if r["sched_ms_per_collection"] \
            is not None else "-"
        size = fmt_size(r["size"])
        if r["stripped"] is not None and r["stripped"] < r["size"]:
            size += " (%s stripped)" % fmt_size(r["stripped"])
        print("%-24s %7.2f MiB %11s %11s %6d %7s %8d  %s %s" % (
            r["name"], r["peak_rss_kb"] / 1024.0, cpu, sched, r["collections"],
            "%.0f" % r["values_per_collection"] if r["collections"] else "-",
            r["threads"], size, r["size_note"]))
    print("\nCPU/coll: utime+stime of all threads (/proc/<pid>/stat, %d ticks/s) over the %.0f s"
          " window, divided by the collections seen in it;\n(schedstat): the same from the live"
          " threads' schedstat, in ns. values: fields per sample (agent), value lists per read"
          " cycle\n(collectd), samples per scrape (node_exporter)." % (CLK_TCK, elapsed))
    for r in rows:
        if r["collections"] and r["cpu_s"] * CLK_TCK < 100:
            print("  %s: %.0f ticks in the window, so CPU/coll is +-%.0f %%; the schedstat column"
                  " is exact" % (r["name"], r["cpu_s"] * CLK_TCK,
                                 100.0 / max(r["cpu_s"] * CLK_TCK, 1)))
    agent_rows = [r for r in rows if r["name"].startswith("pantala-agent")]
    if agent_rows and "measurements" in agent_rows[0]:
        print("agent samples: %d measurements, %.0f values each, sent as %d frame(s)"
              % (agent_rows[0]["measurements"], agent_rows[0]["values_per_collection"] or 0,
                 agent_rows[0]["parts"]))
    base = next((r for r in agent_rows if r["name"].endswith("(static)")), agent_rows[0])
    print("\nratios to %s:" % base["name"])
    for r in rows:
        if r is base or not r["collections"] or not base["collections"]:
            continue
        def ratio(key):
            if not base.get(key) or r.get(key) is None:
                return "n/a"
            return "x%.1f" % (r[key] / base[key])
        print("  %-30s RSS %s   CPU/collection %s (schedstat %s)" % (
            r["name"] + " / agent", ratio("peak_rss_kb"), ratio("cpu_ms_per_collection"),
            ratio("sched_ms_per_collection")))
    targets = "DESIGN.md targets: agent RSS <= 2 MiB, CPU <= 0.5 ms per collection"
    print("\n" + targets + ": " + ", ".join(
        "%s %s/%s" % (r["name"], "ok" if r["peak_rss_kb"] <= 2048 else "OVER",
                      "ok" if (r["sched_ms_per_collection"] or r["cpu_ms_per_collection"]
                               or 0) <= 0.5 else "OVER") for r in agent_rows))

    if pantalad:
        acc = after.get("accepted", 0) - before.get("accepted", 0)
        rej = after.get("rejected", 0) - before.get("rejected", 0)
        sent = sum(getattr(s, "frames", 0) for s in agents)
        print("pantalad: %d frames accepted, %d rejected in the window (agents sent %d)"
              % (acc, rej, sent))
        if rej or acc < sent - 2 * len(agent_rows):
            ok = False
            print("footprint: pantalad did not accept every agent frame", file=sys.stderr)
    if collectd:
        print("collectd: %d packets, plugins seen: %s" % (sink.packets, ", ".join(
            sorted(p for p in sink.plugins if p))))
    for r in rows:
        for e in r["errors"]:
            print("footprint: %s: %s" % (r["name"], e), file=sys.stderr)

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"interval": args.interval, "rows": rows}, f, indent=1)
    if args.keep:
        print("kept", tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
