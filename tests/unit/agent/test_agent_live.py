#!/usr/bin/env python3
"""Live accuracy of the agent's catalog on this machine, against independent
tools and known transfers.

    test_agent_live.py <pantala-agent> <sample_probe>

- `pantala-agent --once`: mem_total against `free -b`, disk_total/used/free
  of / against `df -B1` (free space moves while the test runs: the agent's
  figures must lie within df's before and after, widened by 0.5 % of the
  disk, which still tells "available to users" from "free" and any unit
  slip), cpu_num against `nproc`, uptime and load against /proc read before
  and after.
- sample_probe (a reading, then a second one when told): 8 MB sent through
  a loopback TCP socket between the two readings must show in lo's
  bytes_in; a 16 MiB file written and fsynced between them must show in the
  backing device's kb_written. Each is bounded below by what the test
  moved and above by the kernel counter's change over a window enclosing
  both readings (other processes add traffic, never remove it). The disk
  check is skipped, with a message, when the file system has no block
  device (overlay or tmpfs in a container).
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading

AGENT, PROBE = sys.argv[1], sys.argv[2]
CHECKS = 0


def check(cond, what):
    global CHECKS
    CHECKS += 1
    if not cond:
        raise AssertionError(what)


def run(*args):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=20)


def once():
    # An empty configuration: not /etc/pantala/agent.json of an installed agent.
    with tempfile.NamedTemporaryFile("w", suffix=".json") as cfg:
        cfg.write("{}\n")
        cfg.flush()
        r = run(AGENT, "--once", "--json", "--config", cfg.name)
    check(r.returncode == 0, "--once exits 0: %s" % r.stderr)
    return json.loads(r.stdout)["measurements"]


def series(meas, name, **tags):
    """The fields of the measurement name with exactly these tags, or None."""
    for m in meas:
        if m["name"] == name and m["tags"] == tags:
            return m["fields"]
    return None


def test_memory_cpu_uptime_load():
    with open("/proc/uptime") as f:
        up0 = float(f.read().split()[0])
    with open("/proc/loadavg") as f:
        load0 = float(f.read().split()[0])
    meas = once()
    with open("/proc/uptime") as f:
        up1 = float(f.read().split()[0])
    with open("/proc/loadavg") as f:
        load1 = float(f.read().split()[0])
    cpu, mem = series(meas, "cpu"), series(meas, "memory")

    free = run("free", "-b").stdout.splitlines()
    total = [int(l.split()[1]) for l in free if l.startswith("Mem:")][0]
    check(mem["mem_total"] == total, "mem_total %d, free -b says %d" % (mem["mem_total"], total))

    nproc = int(run("nproc").stdout)
    online = os.sysconf("SC_NPROCESSORS_ONLN")
    # nproc counts the CPUs this process may use; cpu_num the online ones.
    # They agree unless the test runs under a CPU affinity mask.
    want = nproc if len(os.sched_getaffinity(0)) == online else online
    check(cpu["cpu_num"] == want, "cpu_num %d, nproc says %d" % (cpu["cpu_num"], want))

    check(int(up0) <= cpu["uptime"] <= int(up1), "uptime %d not within /proc/uptime %.2f..%.2f"
          % (cpu["uptime"], up0, up1))
    lo, hi = min(load0, load1), max(load0, load1)
    check(lo <= cpu["load_avg_1m"] <= hi, "load_avg_1m %r not within /proc/loadavg %r..%r"
          % (cpu["load_avg_1m"], lo, hi))
    print("ok memory, cpu_num, uptime, load: mem_total %d, cpu_num %d" %
          (total, cpu["cpu_num"]))


def df_root():
    out = run("df", "-B1", "--output=size,used,avail,target", "/").stdout.splitlines()[1].split()
    return int(out[0]), int(out[1]), int(out[2])


def root_fstype():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            if left.split()[4] == "/":
                fstype = right.split()[0]
    return fstype


def test_disk_root():
    before = df_root()
    meas = once()
    after = df_root()
    disks = [m for m in meas if m["name"] == "disk" and m["tags"].get("mount") == "/"]
    if not disks:
        fstype = root_fstype()
        check(fstype in ("overlay", "tmpfs", "aufs", "squashfs"),
              "no disk series for / although it is %s" % fstype)
        print("skip disk /: / is %s, which the agent skips by design" % fstype)
        return
    d = disks[0]["fields"]
    size = before[0]
    tol = size // 200  # 0.5 % of the disk
    check(d["disk_total"] == size and after[0] == size,
          "disk_total %d, df says %d" % (d["disk_total"], size))
    for i, key in ((1, "disk_used"), (2, "disk_free")):
        lo, hi = min(before[i], after[i]) - tol, max(before[i], after[i]) + tol
        check(lo <= d[key] <= hi, "%s %d, df says %d..%d (+-%d)" %
              (key, d[key], before[i], after[i], tol))
    pct = 100.0 * before[1] / (before[1] + before[2])
    check(abs(d["disk_utilization"] - pct) < 1.0,
          "disk_utilization %.2f, df's figures give %.2f" % (d["disk_utilization"], pct))
    total = series(meas, "disk", mount="total")
    check(total is not None and total["disk_total"] >= d["disk_total"], "mount=total covers /")
    print("ok disk /: total %d, free %d (df %d)" % (d["disk_total"], d["disk_free"], before[2]))


class Probe:
    """sample_probe: first reading at start, the second on go()."""

    def __init__(self):
        self.p = subprocess.Popen([PROBE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        check(self.p.stdout.readline() == "ready\n", "sample_probe is ready")

    def go(self):
        out, err = self.p.communicate("go\n", timeout=20)
        check(self.p.returncode == 0, "sample_probe exits 0: %s" % err)
        doc, _, tail = out.rpartition("}\n")
        check(tail.startswith("elapsed_ns "), "elapsed line: %r" % tail)
        return json.loads(doc + "}")["measurements"], int(tail.split()[1]) / 1e9


def lo_rx_bytes():
    with open("/proc/net/dev") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name.strip() == "lo":
                return int(rest.split()[0])
    raise AssertionError("no lo in /proc/net/dev")


def test_loopback_transfer():
    n = 8 * 1000 * 1000
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    got = []

    def receive():
        c, _ = srv.accept()
        total = 0
        while True:
            b = c.recv(1 << 20)
            if not b:
                break
            total += len(b)
        got.append(total)
        c.close()

    a = lo_rx_bytes()
    probe = Probe()
    t = threading.Thread(target=receive)
    t.start()
    s = socket.create_connection(srv.getsockname())
    s.sendall(b"\0" * n)
    s.close()
    t.join(10)
    srv.close()
    check(got == [n], "the receiver got %r bytes" % got)
    meas, elapsed = probe.go()
    b = lo_rx_bytes()
    lo = series(meas, "network", interface="lo")
    check(lo is not None, "a series for lo")
    moved = lo["bytes_in"] * elapsed
    check(moved >= n, "lo bytes_in x %.3f s = %d, but %d bytes were sent" % (elapsed, moved, n))
    check(moved <= (b - a) * 1.01, "lo bytes_in x %.3f s = %d, more than the counter moved (%d)"
          % (elapsed, moved, b - a))
    print("ok loopback: %d bytes sent, the agent saw %d (the counter moved %d)" %
          (n, moved, b - a))


def whole_device(path):
    """The whole block device holding path (name, "major:minor"), or None."""
    st = os.stat(path)
    dev = "%d:%d" % (os.major(st.st_dev), os.minor(st.st_dev))
    sysdir = "/sys/dev/block/" + dev
    if not os.path.exists(sysdir):
        return None, dev
    real = os.path.realpath(sysdir)
    if os.path.exists(os.path.join(real, "partition")):
        real = os.path.dirname(real)
    return os.path.basename(real), dev


def sectors_written(name):
    with open("/proc/diskstats") as f:
        for line in f:
            p = line.split()
            if p[2] == name:
                return int(p[9])
    raise AssertionError("no %s in /proc/diskstats" % name)


def test_fsync_write():
    d = tempfile.mkdtemp(prefix="pt-live-", dir=os.getcwd())
    try:
        name, dev = whole_device(d)
        if name is None:
            print("skip kb_written: %s is on device %s, which is no block device (overlay, "
                  "tmpfs?)" % (d, dev))
            return
        size = 16 * 1024 * 1024
        data = os.urandom(size)  # incompressible, in case the file system compresses
        a = sectors_written(name)
        probe = Probe()
        fd = os.open(os.path.join(d, "f"), os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
        meas, elapsed = probe.go()
        b = sectors_written(name)
        io = series(meas, "diskio", device=name)
        check(io is not None, "a diskio series for %s" % name)
        kib = io["kb_written"] * elapsed
        check(kib >= size / 1024, "%s kb_written x %.3f s = %.0f KiB, but %d KiB were fsynced"
              % (name, elapsed, kib, size // 1024))
        check(kib <= (b - a) / 2 * 1.01, "%s kb_written x %.3f s = %.0f KiB, more than the "
              "counter moved (%d KiB)" % (name, elapsed, kib, (b - a) // 2))
        print("ok kb_written: %d KiB fsynced to %s, the agent saw %.0f KiB (the counter moved %d)"
              % (size // 1024, name, kib, (b - a) // 2))
    finally:
        shutil.rmtree(d)


def main():
    for t in (test_memory_cpu_uptime_load, test_disk_root, test_loopback_transfer,
              test_fsync_write):
        t()
    print("test_agent_live: %d checks passed" % CHECKS)


if __name__ == "__main__":
    main()
