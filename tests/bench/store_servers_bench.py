#!/usr/bin/env python3
"""Server store benchmark (InfluxDB 1.x, VictoriaMetrics): prints figures,
does not pass or fail. See tests/bench/README.md ("Server stores").

1. Write rate into InfluxDB: pantalad with store.url influxdb: is driven by
   pantala-loadgen at what InfluxDB alone takes, and its sustained write rate
   (Δ pantala_points_written_total over the run) is compared with InfluxDB's
   own ceiling measured in the same run: pre-built, gzip-compressed line
   protocol requests of the same size (5000 points, the same 6 measurements
   and 54 values per frame) posted back to back on as many connections as
   the collector's writer keeps in flight (4). Alternating rounds, the first
   not counted; prints the ratio (target >= 0.9) and where the CPU went.
   --split-cores gives influxd CPU 1 and everything else CPU 0 in both
   turns, so InfluxDB has the same CPU whoever feeds it (separate hosts).
2. MCIS query: 100 VMs x 1 h at 1 s of cpu written into each server, then
   the MCIS-level aggregate (across VMs, step 60 s) timed through the
   backend (pt_store_tool), for avg and for p95 (reduced client-side).

Standard library only; the servers come from servers.py (Debian binaries,
temporary directories, loopback).
"""
import argparse
import gzip
import http.client
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import ingest_bench as ib  # noqa: E402
from servers import Influx, Victoria  # noqa: E402

S = 10**9


def log(msg):
    print("store_servers_bench: " + msg, file=sys.stderr, flush=True)


def cpu_of(pid, tid=None):
    """CPU seconds (user + system) of a process, or of one of its threads."""
    path = "/proc/%d/stat" % pid if tid is None else "/proc/%d/task/%d/stat" % (pid, tid)
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / ib.CLK_TCK


def threads_cpu(pid):
    """CPU seconds of each thread of a process, summed by thread name."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                name = f.read().strip()
            out[name] = out.get(name, 0) + cpu_of(pid, int(tid))
        except OSError:
            pass  # ended meanwhile
    return out


def machine_busy():
    """CPU seconds the whole machine spent not idle (every process)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / ib.CLK_TCK  # all but idle and iowait


class Cpu:
    """CPU used over an interval by the processes that matter and by the
    whole machine, in cores (1.0 = one core busy all along)."""

    def __init__(self, **pids):
        self.pids = pids
        self.t0, self.c0 = time.monotonic(), self.sample()

    def sample(self):
        c = {k: cpu_of(p) for k, p in self.pids.items()}
        c["machine"] = machine_busy()
        c["self"] = sum(os.times()[:2])  # this script (the ceiling's poster)
        return c

    def stop(self):
        c1, el = self.sample(), time.monotonic() - self.t0
        return {k: (c1[k] - self.c0[k]) / el for k in c1}


class Collector(ib.Collector):
    """ingest_bench's collector, on a given store URL."""

    def __init__(self, binary, workdir, token, store_url, writer):
        self.binary, self.workdir, self.token = binary, workdir, token
        self.udp_port = ib.free_port("udp")
        self.http_port = ib.free_port("tcp")
        self.api = "http://127.0.0.1:%d" % self.http_port
        self.log_path = os.path.join(workdir, "pantalad.log")
        self.config_path = os.path.join(workdir, "pantalad.json")
        config = {
            "data_dir": os.path.join(workdir, "data"),
            "listen": {"udp": "127.0.0.1:%d" % self.udp_port,
                       "http": "127.0.0.1:%d" % self.http_port},
            "api": {"tokens": [token]},
            "ingest": {"max_age": "2h", "max_future": "5m", "rcvbuf": 33554432},
            "store": {"url": store_url, "retention": "30d"},
            "writer": writer,
            "log": {"level": "warn"},
        }
        os.makedirs(config["data_dir"], exist_ok=True)
        with open(self.config_path, "w") as f:
            json.dump(config, f, indent=2)
        self.pin = False
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen([binary, "--config", self.config_path], stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        self.pid = self.proc.pid


# ---- 1. write rate ------------------------------------------------------------------


def frame_lines(vm, ts, rnd, short=False):
    """One full-catalog frame as pantalad writes it: 6 lines, 54 values.
    Floats have full precision (up to 17 digits, as pantalad prints the
    agents' doubles: 320 bytes per line on average, as measured from its
    requests); short: two decimals instead (260 bytes per line), the
    ceiling this benchmark used first, cheaper for InfluxDB to parse than
    what pantalad sends."""
    f = (lambda x: "%.2f" % x) if short else repr  # repr: the shortest exact text
    ident = "ns_id=ns01,mcis_id=bench,vm_id=%s,csp_type=aws,host=%s" % (vm, vm)
    cpu = ",".join("%s=%s" % (k, f(rnd.uniform(0, 100))) for k in (
        "cpu_utilization", "cpu_user", "cpu_nice", "cpu_system", "cpu_idle", "cpu_iowait",
        "cpu_hintr", "cpu_sintr", "cpu_steal", "cpu_guest", "cpu_guest_nice"))
    cpu += ",cpu_num=2i,uptime=%di,contexts=%s,proc_run=%di,proc_total=%di" % (
        rnd.randint(1, 10**6), f(rnd.uniform(0, 1e4)), rnd.randint(0, 9), rnd.randint(90, 300))
    cpu += ",load_avg_1m=%s,load_avg_5m=%s,load_avg_15m=%s" % (
        f(rnd.random()), f(rnd.random()), f(rnd.random()))
    mem = ",".join("%s=%di" % (k, rnd.randint(0, 8 << 30)) for k in (
        "mem_total", "mem_used", "mem_free", "mem_shared", "mem_buffers", "mem_cached",
        "swap_total", "swap_used", "swap_free", "mem_available"))
    mem += "," + ",".join("%s=%s" % (k, f(rnd.uniform(0, 100))) for k in (
        "mem_utilization", "swap_utilization", "page_in", "page_out", "swap_in", "swap_out"))
    return [
        "cpu,%s %s %d" % (ident, cpu, ts),
        "cpufreq,%s cpu_speed=%s %d" % (ident, f(rnd.uniform(2000, 3000)), ts),
        "memory,%s %s %d" % (ident, mem, ts),
        "disk,%s,mount=/,device=nvme0n1p1,fstype=ext4 disk_utilization=%s,disk_total=%di,"
        "disk_used=%di,disk_free=%di %d" % (ident, f(rnd.uniform(0, 100)), 8 << 30,
                                            rnd.randint(0, 8 << 30), rnd.randint(0, 8 << 30), ts),
        "diskio,%s,device=nvme0n1 kb_read=%s,kb_written=%s,ops_read=%s,ops_write=%s,"
        "read_time=%s,write_time=%s %d" % ((ident,) + tuple(f(rnd.uniform(0, 1e3))
                                                              for _ in range(6)) + (ts,)),
        "network,%s,interface=ens5 bytes_in=%s,bytes_out=%s,pkts_in=%s,pkts_out=%s,"
        "err_in=0,err_out=0,drop_in=0,drop_out=0 %d" % ((ident,) + tuple(
            f(rnd.uniform(0, 1e6)) for _ in range(4)) + (ts,)),
    ]


def direct_ceiling(influx, seconds, batch, agents, parallel, short=False):
    """InfluxDB's own ingest rate: pre-built gzip requests of batch points,
    posted back to back on `parallel` keep-alive connections at once.
    Returns points/s, seconds, and the CPU used while posting (Cpu)."""
    q = urllib.parse.urlencode({"q": "CREATE DATABASE direct"}).encode()
    urllib.request.urlopen(influx.url + "/query", data=q).read()
    rnd = random.Random(1)
    t0 = (int(time.time()) - 3600 - random.randint(0, 3600)) * S
    bodies, k = [], 0
    nreq = max(20, int(seconds * 10 * parallel))  # enough distinct requests for the run
    log("building %d requests of %d points" % (nreq, batch))
    for r in range(nreq):
        lines = []
        while len(lines) < batch:
            vm = "vm-%05d" % (k % agents)
            # agents sample at their own sub-second offsets, as pantalad's do
            off = (k % agents) * 7919 * 10**5 % S
            lines += frame_lines(vm, t0 + (k // agents) * S + off, rnd, short)
            k += 1
        bodies.append(gzip.compress(("\n".join(lines[:batch]) + "\n").encode(), 1))
    path = "/write?db=direct&precision=ns"
    hdr = {"Content-Encoding": "gzip", "Content-Type": "text/plain"}
    lock = threading.Lock()
    state = {"next": 0, "done": 0, "error": None}
    cpu = Cpu(influxd=influx.proc.pid)
    start = time.monotonic()

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", influx.port, timeout=60)
        while time.monotonic() - start < seconds:
            with lock:
                i = state["next"]
                if i >= len(bodies):
                    break
                state["next"] += 1
            conn.request("POST", path, body=bodies[i], headers=hdr)
            r = conn.getresponse()
            r.read()
            with lock:
                if r.status != 204:
                    state["error"] = "direct write: HTTP %d" % r.status
                state["done"] += 1
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    used = cpu.stop()
    if state["error"]:
        raise RuntimeError(state["error"])
    return state["done"] * batch / elapsed, elapsed, used


def write_rounds(args, influx, workdir):
    """Alternates, args.rounds times: InfluxDB alone for args.seconds, then
    pantalad under load for args.seconds (after 5 s of warm-up, and once its
    queue has drained again). The machine is shared and InfluxDB's own
    compactions follow what was written before, so alternating is what
    makes the two comparable."""
    pantalad = ib.find_binary(args.pantalad, args.build_dir, "collector/pantalad", "pantalad")
    loadgen = ib.find_binary(args.loadgen, args.build_dir, "tests/bench/pantala-loadgen",
                             "pantala-loadgen")
    token = secrets.token_hex(16)
    url = "influxdb:%s/pantala?batch=%d&parallel=%d" % (influx.url, args.batch, args.parallel)
    # A batch is parallel x batch points at most (frames of 6 points): one
    # full request per connection. Rounded down: rounded up (3334 frames,
    # 20004 points, as at first) it was 4 requests of 5000 and one of 4
    # points, a fifth request (and WAL sync) per batch that the ceiling
    # does not have.
    frames = args.parallel * args.batch // 6
    coll = Collector(pantalad, workdir, token, url,
                     {"queue": 64, "batch": frames, "flush": "1s"})
    rounds = []
    try:
        coll.wait_ready()
        agents_file = os.path.join(workdir, "agents.json")
        reg = subprocess.run([loadgen, "--api", coll.api, "--token", token, "--agents",
                              str(args.agents), "--save-agents", agents_file, "--duration", "0"])
        if reg.returncode != 0:
            ib.die("registering the agents failed:\n" + coll.log_tail())
        # creates the series: not counted
        direct_ceiling(influx, 5, args.batch, args.agents, args.parallel)
        epoch = int(time.time())
        # Each turn also pays for InfluxDB compacting what the turn before it
        # wrote (20 s of the other kind); the first pantalad turn follows
        # a full ceiling turn, the first ceiling turn only the 5 s above.
        # So the first round (args.warmup) is not counted: after it, each
        # turn follows a turn of the other kind.
        for k in range(args.warmup + args.rounds):
            d, _, dcpu = direct_ceiling(influx, args.seconds, args.batch, args.agents,
                                        args.parallel, args.short_values)
            # args.load (1.0) times what InfluxDB just took (6 points per
            # frame): while pantalad writes less than the ceiling, its
            # writer always has work and its queue grows (64 batches, room
            # for the run); once it writes as much, the ratio reads 1.0,
            # the most this benchmark needs to show. No more than that, so
            # that pantalad's ingest and the load generator take little
            # more CPU than a collector in a steady state would (ingest =
            # writes): on 2 cores, every frame offered beyond what is
            # written costs influxd CPU. (It was 1.3 at first.)
            rate = args.rate or int(args.load * d / 6)
            warm = 5.0
            lg = subprocess.Popen([loadgen, "--agents-file", agents_file, "--target",
                                   "127.0.0.1:%d" % coll.udp_port, "--rate", str(rate),
                                   "--duration", str(args.seconds + warm + 0.5),
                                   "--epoch", str(epoch + k), "--json", "--quiet"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(warm)
            m0, t0 = coll.metrics(), time.monotonic()
            th0 = threads_cpu(coll.pid)
            cpu = Cpu(influxd=influx.proc.pid, pantalad=coll.pid, loadgen=lg.pid)
            time.sleep(args.seconds)
            pcpu = cpu.stop()
            m1, t1 = coll.metrics(), time.monotonic()
            th1 = threads_cpu(coll.pid)
            _, err = lg.communicate()
            if lg.returncode != 0:
                ib.die("pantala-loadgen failed: " + err)
            ib.drain(coll, 120)

            def delta(name, **kw):
                return m1.get(name, **kw) - m0.get(name, **kw)

            p = delta("pantala_points_written_total") / (t1 - t0)
            batches = delta("pantala_store_write_seconds_count")
            threads = {n: (th1.get(n, 0) - th0.get(n, 0)) / (t1 - t0) for n in th1}
            r = {"direct": d, "pantalad": p, "rate": rate,
                 # from the start of a batch's write to its answer (batches
                 # overlap: up to 3 are in flight)
                 "latency": delta("pantala_store_write_seconds_sum") / max(batches, 1),
                 "batch_points": delta("pantala_store_batch_points_sum") / max(batches, 1),
                 "cpu_alone": dcpu, "cpu": pcpu,
                 "threads": {"ingest": threads.get("pantalad", 0),
                             "writer": threads.get("pt-writer", 0),
                             "post": threads.get("pt-post", 0)},
                 "dropped": int(delta("pantala_points_dropped_total")),
                 "errors": int(delta("pantala_store_errors_total"))}
            if k < args.warmup:
                log("warm-up round, not counted: %s" % round_text(r))
                continue
            log("round %d: %s" % (k + 1 - args.warmup, round_text(r)))
            rounds.append(r)
        return rounds
    finally:
        coll.stop()


def round_text(r):
    a, c, t = r["cpu_alone"], r["cpu"], r["threads"]
    return ("InfluxDB alone %7.0f points/s, pantalad %7.0f points/s (%.2f); %d frames/s offered, "
            "%d dropped, %d store errors, %.0f points/batch, %.2f s per batch write\n"
            "  CPU in cores, alone: influxd %.2f, poster %.2f, machine %.2f; with pantalad: "
            "influxd %.2f, pantalad %.2f (ingest %.2f, writer %.2f, post %.2f), loadgen %.2f, "
            "machine %.2f" % (
                r["direct"], r["pantalad"], r["pantalad"] / r["direct"], r["rate"], r["dropped"],
                r["errors"], r["batch_points"], r["latency"], a["influxd"], a["self"],
                a["machine"], c["influxd"], c["pantalad"], t["ingest"], t["writer"], t["post"],
                c["loadgen"], c["machine"]))


# ---- 2. MCIS query ---------------------------------------------------------------------


def load_mcis(server, kind, vms, seconds):
    """cpu of vms VMs every second for seconds, written as line protocol."""
    rnd = random.Random(2)
    t0 = (int(time.time()) // 3600 * 3600 - 2 * 3600) * S
    path = "/write?db=pantala&precision=ns" if kind == "influxdb" else "/write"
    if kind == "influxdb":
        urllib.request.urlopen(server.url + "/query", data=b"q=CREATE+DATABASE+pantala").read()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    lines = []
    for i in range(seconds):
        for v in range(vms):
            lines.append("cpu,ns_id=ns01,mcis_id=web,vm_id=vm-%03d,csp_type=aws,host=h%d "
                         "cpu_utilization=%.2f,cpu_user=%.2f,cpu_system=%.2f %d" % (
                             v, v, rnd.uniform(0, 100), rnd.uniform(0, 50), rnd.uniform(0, 50),
                             t0 + i * S))
            if len(lines) == 10000:
                conn.request("POST", path, body=gzip.compress(("\n".join(lines)).encode(), 1),
                             headers={"Content-Encoding": "gzip"})
                r = conn.getresponse()
                r.read()
                assert r.status == 204, r.status
                lines = []
    if lines:
        conn.request("POST", path, body="\n".join(lines).encode())
        conn.getresponse().read()
    conn.close()
    if kind == "victoriametrics":
        server.flush()
    return t0


def time_queries(tool, url, t0, seconds, runs):
    base = {"op": "query", "ns": "ns01", "mcis": "web", "measurement": "cpu",
            "from": t0, "to": t0 + seconds * S, "step": 60 * S, "across": "avg"}
    cases = [("avg of cpu_utilization, step 60 s, across avg",
              dict(base, agg="avg", fields=["cpu_utilization"])),
             ("avg of 3 fields", dict(base, agg="avg")),
             ("p95 of cpu_utilization (client-side)",
              dict(base, agg="p95", fields=["cpu_utilization"]))]
    out = []
    for name, q in cases:
        p = subprocess.run([tool, url], input="\n".join(json.dumps(q) for _ in range(runs)) + "\n",
                           capture_output=True, text=True, timeout=600)
        res = [json.loads(x) for x in p.stdout.splitlines()]
        if len(res) != runs or any(r["rc"] != 0 for r in res):
            raise RuntimeError("query failed: %s %s" % (p.stdout[-300:], p.stderr[-300:]))
        rows = len(res[0]["series"][0]["ts"]) if res[0]["series"] else 0
        ms = [r["ms"] for r in res]
        out.append((name, rows, statistics.median(ms), max(ms)))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pantalad")
    p.add_argument("--loadgen")
    p.add_argument("--tool", help="pt_store_tool (default <build>/tests/integration/pt_store_tool)")
    p.add_argument("--build-dir")
    p.add_argument("--agents", type=int, default=1000)
    p.add_argument("--rate", type=int, default=0,
                   help="frames/s sent to pantalad (default: --load x the ceiling just measured)")
    p.add_argument("--short-values", action="store_true",
                   help="the ceiling's floats with two decimals (260 bytes per line rather "
                        "than pantalad's 320)")
    p.add_argument("--load", type=float, default=1.0,
                   help="offered load, times the ceiling just measured (default 1.0)")
    p.add_argument("--seconds", type=float, default=10, help="seconds per measurement")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1, help="rounds run first and not counted")
    p.add_argument("--batch", type=int, default=5000, help="points per request")
    p.add_argument("--parallel", type=int, default=4, help="requests in flight")
    p.add_argument("--vms", type=int, default=100)
    p.add_argument("--hours", type=float, default=1)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--skip-write", action="store_true")
    p.add_argument("--skip-query", action="store_true")
    p.add_argument("--split-cores", action="store_true",
                   help="influxd on CPU 1, everything else (this script's poster, pantalad, "
                        "the load generator) on CPU 0, in both turns: InfluxDB gets the same "
                        "CPU whoever feeds it, as on separate hosts")
    args = p.parse_args()
    workdir = tempfile.mkdtemp(prefix="pt-store-bench-")
    if not args.skip_write:
        with Influx().start() as influx:
            if args.split_cores:
                # -a: every thread influxd has; those it makes later inherit.
                subprocess.run(["taskset", "-a", "-cp", "1", str(influx.proc.pid)], check=True,
                               capture_output=True)
                os.sched_setaffinity(0, {0})  # this thread; children and threads inherit
                log("split cores: influxd on CPU 1, the rest on CPU 0")
            log("InfluxDB alone vs pantalad under load, %d rounds of %g s" %
                (args.rounds, args.seconds))
            rounds = write_rounds(args, influx, workdir)
        d = sum(r["direct"] for r in rounds) / len(rounds)
        p = sum(r["pantalad"] for r in rounds) / len(rounds)
        print("# write into InfluxDB 1.6: %d points per gzip request, %d in parallel, %d rounds "
              "of %g s%s" % (args.batch, args.parallel, args.rounds, args.seconds,
                             ", influxd alone on CPU 1" if args.split_cores else ""))
        for i, r in enumerate(rounds):
            print("round %d: %s" % (i + 1, round_text(r)))
        print("mean: InfluxDB alone %.0f points/s (%.2fM values/s), pantalad %.0f points/s "
              "(%.2fM values/s)" % (d, d * 9 / 1e6, p, p * 9 / 1e6))
        print("ratio pantalad / InfluxDB ceiling: %.2f (target >= 0.9)" % (p / d))
    if not args.skip_query:
        tool = args.tool or ib.find_binary(None, args.build_dir, "tests/integration/pt_store_tool",
                                           "pt_store_tool")
        seconds = int(args.hours * 3600)
        print("# MCIS query: %d VMs x %g h at 1 s of cpu (3 fields), %d runs" %
              (args.vms, args.hours, args.runs))
        for kind, cls in (("influxdb", Influx), ("victoriametrics", Victoria)):
            with cls().start() as srv:
                t = time.monotonic()
                t0 = load_mcis(srv, kind, args.vms, seconds)
                log("%s: loaded %d points in %.1f s" % (kind, args.vms * seconds,
                                                       time.monotonic() - t))
                url = ("influxdb:%s/pantala" % srv.url if kind == "influxdb"
                       else "victoriametrics:%s" % srv.url)
                for name, rows, med, worst in time_queries(tool, url, t0, seconds, args.runs):
                    print("%-16s %-48s %4d rows  median %7.1f ms  max %7.1f ms" %
                          (kind, name, rows, med, worst))


if __name__ == "__main__":
    main()
