#!/usr/bin/env python3
"""Checks of the static pantala-agent (PT_AGENT_STATIC, cmake/PtStatic.cmake).

usage: test_agent_static.py <pantala-agent> <version> [<tests/data>]

The binary is a static ELF executable (no PT_INTERP, no PT_DYNAMIC: nothing
for a dynamic loader to do, so it runs on any Linux whatever its libc), `ldd`
agrees, `--version` prints the project's version, `--once` reads this
machine's counters with an empty environment, and the daemon, signing frames
with the built-in HMAC-SHA256, stays within DESIGN.md's 2 MiB RSS. As root, it
also runs in an empty chroot: the binary and a /proc fixture, no loader, no
library, no /etc. Prints the binary's size stripped. The full protocol checks run against the same
binary in test_agent_e2e_static (tests/unit/agent/test_agent_e2e.py).
"""
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

AGENT, VERSION = sys.argv[1], sys.argv[2]
DATA = sys.argv[3] if len(sys.argv) > 3 else None
KEY = bytes(range(32))
RSS_LIMIT_KB = 2048          # DESIGN.md section 13: agent RSS <= 2 MiB
STRIPPED_LIMIT = 1024 * 1024  # a regression guard; today about 160 KB

PT_INTERP, PT_DYNAMIC = 3, 2


def check(cond, what):
    if not cond:
        print("FAIL: " + what, file=sys.stderr)
        sys.exit(1)
    print("ok: " + what.splitlines()[0])


def program_headers(path):
    """The p_type of every program header of a 64- or 32-bit ELF file."""
    with open(path, "rb") as f:
        data = f.read()
    check(data[:4] == b"\x7fELF", "%s is an ELF file" % path)
    is64, end = data[4] == 2, "<" if data[5] == 1 else ">"
    if is64:
        e_phoff, = struct.unpack_from(end + "Q", data, 32)
        e_phentsize, e_phnum = struct.unpack_from(end + "HH", data, 54)
    else:
        e_phoff, = struct.unpack_from(end + "I", data, 28)
        e_phentsize, e_phnum = struct.unpack_from(end + "HH", data, 42)
    types = [struct.unpack_from(end + "I", data, e_phoff + i * e_phentsize)[0]
             for i in range(e_phnum)]
    return types


def test_static_elf():
    types = program_headers(AGENT)
    check(PT_INTERP not in types, "no PT_INTERP: no dynamic loader named")
    check(PT_DYNAMIC not in types, "no PT_DYNAMIC: no shared library needed")
    ldd = shutil.which("ldd")
    if ldd:
        r = subprocess.run([ldd, AGENT], capture_output=True, text=True)
        out = r.stdout + r.stderr
        check("not a dynamic executable" in out or "statically linked" in out,
              "ldd says it is not dynamic: " + out.strip())


def test_size():
    strip = shutil.which("strip")
    size = os.path.getsize(AGENT)
    if not strip:
        print("note: strip not found; %d bytes unstripped" % size)
        return
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "agent")
        subprocess.run([strip, "-o", out, AGENT], check=True)
        stripped = os.path.getsize(out)
        # The stripped binary still runs (strip removed nothing it needs).
        r = subprocess.run([out, "--version"], capture_output=True, text=True, timeout=10)
        check(r.returncode == 0, "the stripped binary runs")
    print("size: %d bytes unstripped, %d bytes stripped" % (size, stripped))
    check(stripped < STRIPPED_LIMIT, "stripped size %d < %d" % (stripped, STRIPPED_LIMIT))


def test_version():
    r = subprocess.run([AGENT, "--version"], capture_output=True, text=True, timeout=10, env={})
    check(r.returncode == 0, "--version exits 0")
    check(r.stdout.strip() == "pantala-agent " + VERSION, "--version: %r" % r.stdout)


def meminfo_total():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return None


def test_once():
    # No environment at all: no PATH, no LD_LIBRARY_PATH, no locale.
    # An empty configuration, not /etc/pantala/agent.json of an installed agent.
    with tempfile.NamedTemporaryFile("w", suffix=".json") as cfg:
        cfg.write("{}\n")
        cfg.flush()
        r = subprocess.run([AGENT, "--once", "--json", "--config", cfg.name], capture_output=True,
                           text=True, timeout=20, env={})
    check(r.returncode == 0, "--once exits 0: " + r.stderr)
    s = json.loads(r.stdout)
    meas = {m["name"]: m["fields"] for m in s["measurements"]}
    check("cpu" in meas and "memory" in meas, "--once has cpu and memory: %s" % sorted(meas))
    check(meas["memory"]["mem_total"] == meminfo_total(),
          "mem_total is /proc/meminfo's MemTotal: %s" % meas["memory"]["mem_total"])
    with open("/proc/stat") as f:
        ncpu = sum(1 for line in f if line.startswith("cpu") and line[3].isdigit())
    check(meas["cpu"]["cpu_num"] == ncpu, "cpu_num %s is /proc/stat's %d cpuN lines"
          % (meas["cpu"]["cpu_num"], ncpu))
    check(0.0 <= meas["cpu"]["cpu_utilization"] <= 100.0, "cpu_utilization is a percentage")


def test_empty_chroot():
    """The binary alone in an otherwise empty root directory, as on a
    system with nothing installed. A dynamic executable fails here: its
    loader is missing."""
    if os.geteuid() != 0 or not DATA:
        print("skipped: the empty-chroot check needs root and tests/data")
        return
    fixture = os.path.join(DATA, "linux", "host", "t0", "proc")
    with tempfile.TemporaryDirectory() as root:
        shutil.copy(AGENT, os.path.join(root, "pantala-agent"))
        shutil.copytree(fixture, os.path.join(root, "fixture"))
        check(sorted(os.listdir(root)) == ["fixture", "pantala-agent"], "the root holds two entries")

        def run(*args):
            return subprocess.run(["/pantala-agent", *args], capture_output=True, text=True,
                                  timeout=20, env={}, cwd="/",
                                  preexec_fn=lambda: os.chroot(root))
        r = run("--version")
        check(r.returncode == 0 and r.stdout.strip() == "pantala-agent " + VERSION,
              "--version in an empty chroot: %r %r" % (r.stdout, r.stderr))
        r = run("--once", "--json", "--root", "/fixture")
        check(r.returncode == 0, "--once from a fixture in an empty chroot: " + r.stderr)
        s = json.loads(r.stdout)
        cpu = {m["name"]: m["fields"] for m in s["measurements"]}["cpu"]
        with open(os.path.join(fixture, "uptime")) as f:
            uptime = int(float(f.read().split()[0]))
        check(cpu["uptime"] == uptime, "uptime %d is the fixture's" % uptime)


def vm_hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def test_daemon_rss():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(3)
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "agent.json")
        with open(cfg, "w") as f:
            json.dump({"collector": "127.0.0.1:%d" % sock.getsockname()[1], "agent_id": 9,
                       "key": KEY.hex(), "ns": "ns", "mcis": "m", "vm": "v",
                       "interval": "100ms"}, f)
        os.chmod(cfg, 0o600)
        p = subprocess.Popen([AGENT, "--config", cfg], stderr=subprocess.PIPE, text=True)
        try:
            n = 0
            while n < 5:
                data = sock.recv(9000)
                body, mac = data[:-32], data[-32:]
                check(hmac.compare_digest(hmac.new(KEY, body, hashlib.sha256).digest(), mac),
                      "frame %d carries a valid HMAC-SHA256" % n)
                n += 1
            hwm = vm_hwm_kb(p.pid)
        finally:
            p.send_signal(signal.SIGTERM)
            try:
                rc = p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = p.wait()
            p.stderr.close()
    sock.close()
    print("peak RSS (VmHWM) after 5 signed frames: %d kB" % hwm)
    check(hwm <= RSS_LIMIT_KB, "VmHWM %d kB <= %d kB" % (hwm, RSS_LIMIT_KB))
    check(rc == 0, "SIGTERM exits 0 (%d)" % rc)


def main():
    test_static_elf()
    test_version()
    test_size()
    test_once()
    test_empty_chroot()
    test_daemon_rss()
    print("all static-agent checks passed")


if __name__ == "__main__":
    main()
