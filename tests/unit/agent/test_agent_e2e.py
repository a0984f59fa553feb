#!/usr/bin/env python3
"""End-to-end checks of the pantala-agent binary.

usage: test_agent_e2e.py <pantala-agent> <tests/data>

--once against the real /proc and a fixture, --help/--version, a bad
configuration, and the daemon sending signed frames to a UDP socket of ours
(decoded here and checked against the HMAC), then the daemon facing a
collector that is down. Uses only the standard library: python3-msgpack is
not a dependency, so frames are decoded by the small reader in
tests/integration/harness.py.
"""
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

# the msgpack reader shared with the integration tests
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "integration"))
from harness import unpack  # noqa: E402

AGENT, DATA = sys.argv[1], sys.argv[2]
KEY = bytes(range(32))

# Symbol ids of protocol v1 (common/catalog.c): append-only, fixed forever.
SYM_CPU, SYM_MEMORY, SYM_CPU_UTILIZATION, SYM_MEM_TOTAL = 1, 3, 12, 33

CPU_FIELDS = {
    "cpu_utilization": float, "cpu_user": float, "cpu_nice": float, "cpu_system": float,
    "cpu_idle": float, "cpu_iowait": float, "cpu_hintr": float, "cpu_sintr": float,
    "cpu_steal": float, "cpu_guest": float, "cpu_guest_nice": float, "cpu_num": int,
    "uptime": int, "contexts": float, "proc_run": int, "proc_total": int,
    "load_avg_1m": float, "load_avg_5m": float, "load_avg_15m": float,
}
MEM_FIELDS = {
    "mem_utilization": float, "mem_total": int, "mem_used": int, "mem_free": int,
    "mem_shared": int, "mem_buffers": int, "mem_cached": int, "swap_utilization": float,
    "swap_total": int, "swap_used": int, "swap_free": int, "page_in": float,
    "page_out": float, "swap_in": float, "swap_out": float, "mem_available": int,
}
PERCENT = [k for k in CPU_FIELDS if k.startswith("cpu_") and k != "cpu_num"]


def check(cond, what):
    if not cond:
        raise AssertionError(what)


# --once without --config reads /etc/pantala/agent.json when it exists (a
# machine with the agent installed): give it an empty configuration instead,
# so the tests see the defaults on every machine.
EMPTY_CONFIG = None


def run(*args, **kw):
    global EMPTY_CONFIG
    if "--once" in args and "--config" not in args:
        if EMPTY_CONFIG is None:
            fd, EMPTY_CONFIG = tempfile.mkstemp(suffix=".json")
            os.write(fd, b"{}\n")
            os.close(fd)
        args = args + ("--config", EMPTY_CONFIG)
    return subprocess.run([AGENT, *args], capture_output=True, text=True, timeout=20, **kw)


def write_config(d, obj):
    path = os.path.join(d, "agent.json")
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
    os.chmod(path, 0o600)
    return path


def test_help_version():
    r = run("--help")
    check(r.returncode == 0, "--help exits 0")
    for word in ("--config", "--once", "--json", "--check-config", "--root", "--version",
                 "collector", "agent_id", "key", "interval", "proc_root", "sys_root", "per_cpu",
                 "mounts.include", "devices.exclude", "interfaces.include", "log.level",
                 "log.file", "Example"):
        check(word in r.stdout, "--help mentions %s" % word)
    r = run("--version")
    check(r.returncode == 0 and r.stdout.startswith("pantala-agent "), "--version")
    r = run("--bogus")
    check(r.returncode == 2, "an unknown option exits 2")


def test_once_real_proc():
    r = run("--once", "--json")
    check(r.returncode == 0, "--once on /proc exits 0: %s" % r.stderr)
    doc = json.loads(r.stdout)
    for k in ("time", "ns", "mcis", "vm", "csp", "host", "interval_ms", "measurements"):
        check(k in doc, "--once has %s" % k)
    check(doc["interval_ms"] == 250, "--once waits 250 ms")
    # The host-wide series (no tags); disk, diskio and network add one per
    # object (test_agent_live.py checks those against other tools).
    meas = {m["name"]: m for m in doc["measurements"] if not m["tags"]}
    names = {m["name"] for m in doc["measurements"]}
    check(names >= {"cpu", "memory", "disk", "diskio", "network"} and
          names <= {"cpu", "cpufreq", "memory", "disk", "diskio", "network"},
          "every measurement: %s" % sorted(names))
    for name, want in (("cpu", CPU_FIELDS), ("memory", MEM_FIELDS)):
        fields = meas[name]["fields"]
        check(meas[name]["tags"] == {}, "no tags on %s" % name)
        check(set(fields) == set(want), "%s fields: %s" % (name, sorted(set(fields) ^ set(want))))
        for k, typ in want.items():
            check(type(fields[k]) is typ, "%s.%s is %s: %r" % (name, k, typ.__name__, fields[k]))
            check(fields[k] >= 0, "%s.%s >= 0" % (name, k))
    cpu, mem = meas["cpu"]["fields"], meas["memory"]["fields"]
    for k in PERCENT:
        check(0 <= cpu[k] <= 100, "%s in 0..100: %r" % (k, cpu[k]))
    parts = sum(cpu[k] for k in PERCENT if k != "cpu_utilization")
    check(abs(parts - 100) < 1e-6, "cpu states add up to 100: %r" % parts)
    check(cpu["cpu_num"] == os.cpu_count(), "cpu_num is the online CPUs")
    with open("/proc/meminfo") as f:
        total = int(f.readline().split()[1]) * 1024
    check(mem["mem_total"] == total, "mem_total is MemTotal in bytes")
    check(mem["mem_used"] == mem["mem_total"] - mem["mem_available"], "used = total - available")


def test_once_fixture():
    # "host" is "base" with every file the agent reads under proc.
    r = run("--once", "--json", "--root", os.path.join(DATA, "linux", "host", "t0", "proc"))
    check(r.returncode == 0, "--once --root exits 0: %s" % r.stderr)
    meas = {m["name"]: m["fields"] for m in json.loads(r.stdout)["measurements"] if not m["tags"]}
    cpu, mem = meas["cpu"], meas["memory"]
    # The same files read twice: no tick elapsed, so no percentage; counters
    # unchanged, so rates of exactly 0.
    check("cpu_utilization" not in cpu, "no percentages without a tick")
    check(cpu["contexts"] == 0.0 and mem["page_in"] == 0.0, "rates of 0")
    check(cpu["cpu_num"] == 2 and cpu["proc_total"] == 85 and cpu["uptime"] == 463, "cpu gauges")
    check(cpu["load_avg_5m"] == 0.06, "load")
    check(mem["mem_total"] == 24684096 * 1024, "mem_total")
    check(mem["mem_cached"] == (144168 + 144208) * 1024, "mem_cached")
    check(mem["swap_utilization"] == 0.0 and mem["swap_total"] == 0, "no swap")

    r = run("--once", "--json", "--root", os.path.join(DATA, "linux", "missing", "t0", "proc"))
    check(r.returncode == 1, "--once with nothing readable exits 1")
    check("missing/t0/proc/stat: cannot open" in r.stderr, "says which file: %s" % r.stderr)
    check(json.loads(r.stdout)["measurements"] == [], "and prints what it has")


def test_once_table():
    root = os.path.join(DATA, "linux", "host", "t0", "proc")
    r = run("--once", "--root", root)
    check(r.returncode == 0, "--once (table) exits 0: %s" % r.stderr)
    lines = r.stdout.splitlines()
    check(lines[0].startswith("sample of "), "a heading line: %r" % lines[0])
    header = next((l for l in lines if l.startswith("MEASUREMENT")), None)
    check(header is not None and header.split() == ["MEASUREMENT", "TAGS", "FIELD", "VALUE", "UNIT"],
          "column headings: %r" % header)
    # MEASUREMENT, TAGS and UNIT start where their headings start; FIELD and
    # VALUE (right-aligned) are the two words after TAGS.
    t, f, u = (header.index(w) for w in ("TAGS", "FIELD", "UNIT"))
    rows = {}
    for l in lines[lines.index(header) + 1:]:
        field, value = l[f:].split()[:2]
        rows[(l[:t].strip(), l[t:f].strip(), field)] = (value, l[u:].strip())
    # Every field of the JSON output is a row of the table, with its unit.
    doc = json.loads(run("--once", "--json", "--root", root).stdout)
    for m in doc["measurements"]:
        tags = " ".join("%s=%s" % kv for kv in m["tags"].items())
        for k in m["fields"]:
            check((m["name"], tags, k) in rows, "row for %s{%s}.%s" % (m["name"], tags, k))
    check(rows.get(("memory", "", "mem_total")) == (str(24684096 * 1024), "bytes"),
          "mem_total row: %r" % (rows.get(("memory", "", "mem_total")),))
    check(rows.get(("cpu", "", "load_avg_5m")) == ("0.06", ""), "unitless load row")
    r = run("--json")
    check(r.returncode == 2 and "--json goes with --once" in r.stderr, "--json alone is refused")


def test_bad_config(d):
    path = os.path.join(d, "bad.json")
    with open(path, "w") as f:
        f.write('{\n  "ns": "a", "mcis": "b", "vm": "c",\n  "interval": "1s",\n  "colector": "x:1"\n}\n')
    r = run("--config", path)
    check(r.returncode == 2, "a bad configuration exits 2")
    check('%s:4: key "colector": unknown key' % path in r.stderr, "names file:line:key: " + r.stderr)
    r = run("--config", path, "--check-config")
    check(r.returncode == 2 and "unknown key" in r.stderr, "--check-config refuses it too")
    r = run("--config", os.path.join(d, "absent.json"), "--once")
    check(r.returncode == 2 and "cannot open" in r.stderr, "an explicit missing file is an error")
    r = run("--config", write_config(d, {"ns": "a"}))
    check(r.returncode == 2 and 'key "mcis": required' in r.stderr, "identity required")


def test_example_config(d):
    example = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "agent",
                           "agent.json.example")
    # Verbatim, the placeholder key makes it unusable: nobody deploys it by mistake.
    r = run("--once", "--config", example)
    check(r.returncode == 2 and 'key "key": expected 64 hex digits' in r.stderr,
          "the example's placeholder key is refused: " + r.stderr)
    with open(example) as f:
        cfg = json.load(f)
    cfg["key"] = KEY.hex()
    root = os.path.join(DATA, "linux", "host", "t0", "proc")
    r = run("--once", "--json", "--config", write_config(d, cfg), "--root", root)
    check(r.returncode == 0, "the example, with a key, loads: " + r.stderr)
    doc = json.loads(r.stdout)
    check((doc["ns"], doc["csp"]) == (cfg["ns"], cfg["csp"]), "identity from the example")
    r = run("--check-config", "--config", write_config(d, cfg))
    check(r.returncode == 0 and "configuration is valid" in r.stdout, "--check-config: " + r.stderr)


def wait_exit(p, what):
    try:
        return p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        p.kill()
        raise AssertionError("%s: did not exit on SIGTERM" % what)


def test_daemon(d):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(3)
    port = sock.getsockname()[1]
    cfg = write_config(d, {"collector": "127.0.0.1:%d" % port, "agent_id": 7,
                           "key": KEY.hex(), "ns": "ns01", "mcis": "web", "vm": "web-1",
                           "csp": "aws", "interval": "100ms", "log": {"level": "info"}})
    p = subprocess.Popen([AGENT, "--config", cfg], stderr=subprocess.PIPE, text=True)
    frames = []
    samples = {}  # ts -> frames of that sample (a large one comes in parts)
    try:
        start = time.time()
        while sum(1 for v in samples.values() if len(v) == v[0][9]) < 4:
            data = sock.recv(9000)
            body, mac = data[:-32], data[-32:]
            check(hmac.compare_digest(hmac.new(KEY, body, hashlib.sha256).digest(), mac),
                  "frame %d verifies" % len(frames))
            check(len(data) <= 1400, "each frame fits one MTU: %d bytes" % len(data))
            f, end = unpack(body)
            check(end == len(body), "one msgpack array before the MAC")
            frames.append(f)
            samples.setdefault(f[6], []).append(f)
        check(time.time() - start < 2, "four samples at 100 ms")
    finally:
        p.send_signal(signal.SIGTERM)
        rc = wait_exit(p, "daemon")
        err = p.stderr.read()
    check(rc == 0, "SIGTERM exits 0: %d\n%s" % (rc, err))
    check("sending to 127.0.0.1:%d every 100ms as ns01/web/web-1 (agent 7)" % port in err,
          "start line: " + err)
    check("unsigned" not in err, "no insecure warning with a key")

    seqs = [f[5] for f in frames]
    check(seqs == list(range(seqs[0], seqs[0] + len(seqs))), "seq +1 per frame: %s" % seqs)
    check(seqs[0] == 1, "seq starts at 1: %s" % seqs)
    for f in frames:
        version, kind, flags, agent_id, epoch, seq, ts, interval, part, nparts, ident, meas = f
        check((version, kind, flags, agent_id) == (1, 1, 1, 7), "header %s" % f[:4])
        check(abs(epoch / 1000.0 - time.time()) < 30, "epoch is the start time in ms")
        check(ts % 100_000_000 == 0, "ts on a 100 ms boundary: %d" % ts)
        check(abs(ts / 1e9 - time.time()) < 30, "ts is wall-clock time")
        check(interval == 100 and 0 <= part < nparts, "interval, part < nparts: %s" % f[7:10])
        check(ident == ["ns01", "web", "web-1", "aws", socket.gethostname()], "identity %s" % ident)
    # Whole samples: the parts of one ts, numbered 0..nparts-1, in order.
    whole = []
    for ts in sorted(samples):
        parts = samples[ts]
        if len(parts) != parts[0][9]:
            continue  # the last sample may be cut by SIGTERM
        check([f[8] for f in parts] == list(range(len(parts))), "parts in order: %s" %
              [f[8] for f in parts])
        whole.append((ts, [m for f in parts for m in f[11]]))
    check(len(whole) >= 4, "four whole samples")
    for i, (ts, meas) in enumerate(whole):
        # cpu, (cpufreq,) memory, then per-object series; diskio and network
        # (all rates) from the second sample on.
        names = [m[0] for m in meas]
        want = {4} if i == 0 else {4, 5, 6}
        check(names[0] == SYM_CPU and SYM_MEMORY in names[1:3] and set(names) >= want,
              "cpu, memory, disk, diskio, network: %s" % names)
        check(meas[names.index(SYM_MEMORY)][2][SYM_MEM_TOTAL] > 0, "mem_total")
    check(all(b[0] - a[0] == 100_000_000 for a, b in zip(whole, whole[1:])), "consecutive ticks")
    check(SYM_CPU_UTILIZATION not in whole[0][1][0][2], "first sample: no percentages")
    check(0 <= whole[1][1][0][2][SYM_CPU_UTILIZATION] <= 100, "then percentages")
    sock.close()


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_collector_down(d):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nobody listens there now
    cfg = write_config(d, {"collector": "127.0.0.1:%d" % port, "ns": "ns01", "mcis": "web",
                           "vm": "web-1", "interval": "100ms"})
    p = subprocess.Popen([AGENT, "--config", cfg], stderr=subprocess.PIPE, text=True)
    time.sleep(2)
    check(p.poll() is None, "still running with the collector down")
    used = cpu_seconds(p.pid)
    p.send_signal(signal.SIGTERM)
    rc = wait_exit(p, "daemon without collector")
    err = p.stderr.read()
    check(rc == 0, "SIGTERM exits 0")
    check(used < 0.2, "no busy loop: %.3f s of CPU in 2 s" % used)
    check("frames are sent unsigned" in err, "insecure mode is announced")
    check("(agent %d, derived id)" % 1539565833372595 in err, "derived id logged: " + err)
    refused = [l for l in err.splitlines() if "refused" in l]
    check(len(refused) == 1, "the refusal is logged once, not per frame: %s" % refused)


def main():
    with tempfile.TemporaryDirectory() as d:
        for t in (test_help_version, test_once_real_proc, test_once_fixture, test_once_table,
                  lambda: test_bad_config(d), lambda: test_example_config(d),
                  lambda: test_daemon(d),
                  lambda: test_collector_down(d)):
            t()
    print("ok")


if __name__ == "__main__":
    main()
