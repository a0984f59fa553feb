#!/usr/bin/env python3
"""Server store benchmark (InfluxDB 1.x, VictoriaMetrics): prints figures,
does not pass or fail. See tests/bench/README.md ("Server stores").

1. Write rate into InfluxDB: pantalad with store.url influxdb: is driven by
   pantala-loadgen above what InfluxDB takes, and its sustained write rate
   (Δ pantala_points_written_total over the run) is compared with InfluxDB's
   own ceiling measured in the same run: pre-built, gzip-compressed line
   protocol requests of the same size (5000 points, the same 6 measurements
   and 54 values per frame) posted back to back on one connection, as the
   collector's one writer thread does. Prints the ratio (target >= 0.9).
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


def frame_lines(vm, ts, rnd):
    """One full-catalog frame as pantalad writes it: 6 lines, 54 values."""
    ident = "ns_id=ns01,mcis_id=bench,vm_id=%s,csp_type=aws,host=%s" % (vm, vm)
    cpu = ",".join("%s=%.2f" % (k, rnd.uniform(0, 100)) for k in (
        "cpu_utilization", "cpu_user", "cpu_nice", "cpu_system", "cpu_idle", "cpu_iowait",
        "cpu_hintr", "cpu_sintr", "cpu_steal", "cpu_guest", "cpu_guest_nice"))
    cpu += ",cpu_num=2i,uptime=%di,contexts=%.2f,proc_run=%di,proc_total=%di" % (
        rnd.randint(1, 10**6), rnd.uniform(0, 1e4), rnd.randint(0, 9), rnd.randint(90, 300))
    cpu += ",load_avg_1m=%.2f,load_avg_5m=%.2f,load_avg_15m=%.2f" % (
        rnd.random(), rnd.random(), rnd.random())
    mem = ",".join("%s=%di" % (k, rnd.randint(0, 8 << 30)) for k in (
        "mem_total", "mem_used", "mem_free", "mem_shared", "mem_buffers", "mem_cached",
        "swap_total", "swap_used", "swap_free", "mem_available"))
    mem += "," + ",".join("%s=%.2f" % (k, rnd.uniform(0, 100)) for k in (
        "mem_utilization", "swap_utilization", "page_in", "page_out", "swap_in", "swap_out"))
    return [
        "cpu,%s %s %d" % (ident, cpu, ts),
        "cpufreq,%s cpu_speed=%.2f %d" % (ident, rnd.uniform(2000, 3000), ts),
        "memory,%s %s %d" % (ident, mem, ts),
        "disk,%s,mount=/,device=nvme0n1p1,fstype=ext4 disk_utilization=%.2f,disk_total=%di,"
        "disk_used=%di,disk_free=%di %d" % (ident, rnd.uniform(0, 100), 8 << 30,
                                            rnd.randint(0, 8 << 30), rnd.randint(0, 8 << 30), ts),
        "diskio,%s,device=nvme0n1 kb_read=%.2f,kb_written=%.2f,ops_read=%.2f,ops_write=%.2f,"
        "read_time=%.2f,write_time=%.2f %d" % ((ident,) + tuple(rnd.uniform(0, 1e3)
                                                                  for _ in range(6)) + (ts,)),
        "network,%s,interface=ens5 bytes_in=%.2f,bytes_out=%.2f,pkts_in=%.2f,pkts_out=%.2f,"
        "err_in=0,err_out=0,drop_in=0,drop_out=0 %d" % ((ident,) + tuple(
            rnd.uniform(0, 1e6) for _ in range(4)) + (ts,)),
    ]


def direct_ceiling(influx, seconds, batch, agents):
    """InfluxDB's own ingest rate: pre-built gzip requests of batch points,
    posted back to back on one keep-alive connection."""
    q = urllib.parse.urlencode({"q": "CREATE DATABASE direct"}).encode()
    urllib.request.urlopen(influx.url + "/query", data=q).read()
    rnd = random.Random(1)
    t0 = (int(time.time()) - 3600) * S
    bodies, frames, k = [], 0, 0
    nreq = max(20, int(seconds * 20))  # enough distinct requests for the run
    log("building %d requests of %d points" % (nreq, batch))
    for r in range(nreq):
        lines = []
        while len(lines) < batch:
            vm = "vm-%05d" % (k % agents)
            lines += frame_lines(vm, t0 + (k // agents) * S, rnd)
            k += 1
        bodies.append(gzip.compress(("\n".join(lines[:batch]) + "\n").encode(), 1))
    conn = http.client.HTTPConnection("127.0.0.1", influx.port, timeout=60)
    path = "/write?db=direct&precision=ns"
    hdr = {"Content-Encoding": "gzip", "Content-Type": "text/plain"}
    sent = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds and sent < len(bodies):
        conn.request("POST", path, body=bodies[sent], headers=hdr)
        r = conn.getresponse()
        r.read()
        if r.status != 204:
            raise RuntimeError("direct write: HTTP %d" % r.status)
        sent += 1
    elapsed = time.monotonic() - start
    conn.close()
    return sent * batch / elapsed, elapsed


def pantalad_rate(args, influx, workdir):
    pantalad = ib.find_binary(args.pantalad, args.build_dir, "collector/pantalad", "pantalad")
    loadgen = ib.find_binary(args.loadgen, args.build_dir, "tests/bench/pantala-loadgen",
                             "pantala-loadgen")
    token = secrets.token_hex(16)
    url = "influxdb:%s/pantala?batch=%d" % (influx.url, args.batch)
    # writer.batch: frames per write_batch(); 6 points each.
    coll = Collector(pantalad, workdir, token, url,
                     {"queue": 64, "batch": 2048, "flush": "200ms"})
    try:
        coll.wait_ready()
        agents_file = os.path.join(workdir, "agents.json")
        reg = subprocess.run([loadgen, "--api", coll.api, "--token", token, "--agents",
                              str(args.agents), "--save-agents", agents_file, "--duration", "0"])
        if reg.returncode != 0:
            ib.die("registering the agents failed:\n" + coll.log_tail())
        m0 = coll.metrics()
        t0 = time.monotonic()
        lg = subprocess.run([loadgen, "--agents-file", agents_file, "--target",
                             "127.0.0.1:%d" % coll.udp_port, "--rate", str(args.rate),
                             "--duration", str(args.seconds), "--epoch", str(int(time.time())),
                             "--json", "--quiet"], capture_output=True, text=True)
        if lg.returncode != 0:
            ib.die("pantala-loadgen failed: " + lg.stderr)
        m1 = coll.metrics()
        t1 = time.monotonic()
        written = m1.get("pantala_points_written_total") - m0.get("pantala_points_written_total")
        dropped = m1.get("pantala_points_dropped_total") - m0.get("pantala_points_dropped_total")
        errors = m1.get("pantala_store_errors_total") - m0.get("pantala_store_errors_total")
        refused = m1.get("pantala_store_points_refused_total")
        accepted = m1.get("pantala_frames_total", outcome="accepted") - \
            m0.get("pantala_frames_total", outcome="accepted")
        return {"points_per_s": written / (t1 - t0), "accepted_frames_per_s": accepted / (t1 - t0),
                "dropped_points": int(dropped), "store_errors": int(errors),
                "refused": int(refused), "seconds": t1 - t0}
    finally:
        coll.stop()


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
    p.add_argument("--rate", type=int, default=30000, help="frames/s sent to pantalad")
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--batch", type=int, default=5000, help="points per request")
    p.add_argument("--vms", type=int, default=100)
    p.add_argument("--hours", type=float, default=1)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--skip-write", action="store_true")
    p.add_argument("--skip-query", action="store_true")
    args = p.parse_args()
    workdir = tempfile.mkdtemp(prefix="pt-store-bench-")
    if not args.skip_write:
        with Influx().start() as influx:
            log("pantalad -> InfluxDB: %d agents at %d frames/s for %g s" %
                (args.agents, args.rate, args.seconds))
            r = pantalad_rate(args, influx, workdir)
            log("InfluxDB alone: requests of %d points for %g s" % (args.batch, args.seconds))
            direct, el = direct_ceiling(influx, args.seconds, args.batch, args.agents)
        print("# write into InfluxDB 1.6 (%d points per gzip request, one connection)" % args.batch)
        print("pantalad sustained:  %9.0f points/s  %6.2fM values/s  (accepted %.0f frames/s, "
              "%d points dropped, %d store errors)" % (
                  r["points_per_s"], r["points_per_s"] * 9 / 1e6, r["accepted_frames_per_s"],
                  r["dropped_points"], r["store_errors"]))
        print("InfluxDB ceiling:    %9.0f points/s  %6.2fM values/s  (pre-built requests, %.1f s)" %
              (direct, direct * 9 / 1e6, el))
        print("ratio pantalad / ceiling: %.2f (target >= 0.9)" % (r["points_per_s"] / direct))
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
