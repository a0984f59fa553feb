#!/usr/bin/env python3
"""Provisioning benchmark (issue 6): install the agent on N hosts in
parallel and report the wall time and the time per host.

Each "host" is a real OpenSSH server of its own (Debian openssh-server) on a
loopback port with its own host key, so every install does the full work: TCP
connect, SSH handshake, host key check, key auth, OS detection, SFTP upload of
the static agent's tarball with its SHA-256 checked, registration at a real
pantalad, configuration, start, and the wait for the collector's first
accepted frame. The installs go into per-host prefixes (no root needed).

  tests/bench/provision_bench.py --hosts 20 --parallel 20 \\
      [--build build] [--agent build-static/agent/pantala-agent]

Prints a table per host and the summary. Standard library only.
"""
import argparse
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def run(*cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run([str(c) for c in cmd], **kw)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--parallel", type=int, default=20)
    ap.add_argument("--build", default="build")
    ap.add_argument("--agent", default=None, help="agent binary for the tarball "
                    "(default: BUILD/agent/pantala-agent)")
    args = ap.parse_args()
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cli = os.path.join(args.build, "provisioner", "pantala")
    pantalad = os.path.join(args.build, "collector", "pantalad")
    agent = args.agent or os.path.join(args.build, "agent", "pantala-agent")
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    d = tempfile.mkdtemp(prefix="pt-provbench-")
    os.chmod(d, 0o755)
    procs = []
    user = pwd.getpwuid(os.getuid()).pw_name
    token = "provision-bench-token-0123456789"
    try:
        udp, http = free_port(socket.SOCK_DGRAM), free_port()
        with open(os.path.join(d, "pantalad.json"), "w") as f:
            json.dump({"data_dir": os.path.join(d, "data"),
                       "listen": {"udp": "127.0.0.1:%d" % udp, "http": "127.0.0.1:%d" % http},
                       "api": {"tokens": [token]}}, f)
        with open(os.path.join(d, "token"), "w") as f:
            f.write(token)
        procs.append(subprocess.Popen([pantalad, "--config", os.path.join(d, "pantalad.json")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        pkgs = os.path.join(d, "pkgs")
        r = run(os.path.join(src, "packaging", "tarball", "make-tarball.sh"), agent, pkgs)
        assert r.returncode == 0, r.stderr
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(d, "id"))
        auth = os.path.join(d, "authorized_keys")
        shutil.copy(os.path.join(d, "id.pub"), auth)
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", exist_ok=True)
        inventory = []
        for i in range(args.hosts):
            hk = os.path.join(d, "hostkey%d" % i)
            run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hk)
            port = free_port()
            cfg = os.path.join(d, "sshd%d.conf" % i)
            with open(cfg, "w") as f:
                f.write("Port %d\nListenAddress 127.0.0.1\nHostKey %s\nPidFile %s/sshd%d.pid\n"
                        "AuthorizedKeysFile %s\nStrictModes no\nUsePAM no\n"
                        "PasswordAuthentication no\nPermitRootLogin prohibit-password\n"
                        "Subsystem sftp internal-sftp\nMaxStartups 100\n" % (port, hk, d, i, auth))
            procs.append(subprocess.Popen([sshd, "-D", "-f", cfg], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
            inventory.append({"host": "127.0.0.1", "port": port, "vm": "bench-%02d" % i,
                              "prefix": os.path.join(d, "hosts", "h%02d" % i)})
        with open(os.path.join(d, "inventory.json"), "w") as f:
            json.dump(inventory, f)
        time.sleep(0.5)
        for _ in range(100):
            try:
                urllib_ok = socket.create_connection(("127.0.0.1", http), 0.2)
                urllib_ok.close()
                break
            except OSError:
                time.sleep(0.05)
        t0 = time.time()
        r = run(cli, "install", "--inventory", os.path.join(d, "inventory.json"), "--user", user,
                "--key", os.path.join(d, "id"), "--ns", "bench", "--mcis", "prov",
                "--api", "http://127.0.0.1:%d" % http, "--token-file", os.path.join(d, "token"),
                "--packages", pkgs, "--collector", "127.0.0.1:%d" % udp, "--interval", "1s",
                "--known-hosts", os.path.join(d, "known_hosts"), "--accept-new",
                "--parallel", args.parallel, "--quiet")
        wall = time.time() - t0
        print(r.stdout)
        if r.returncode != 0:
            print(r.stderr, file=sys.stderr)
        times = [float(m) for m in re.findall(r"\s(\d+\.\d)s\s", r.stdout)]
        ok = r.stdout.count(" ok ")
        print("hosts %d, parallel %d: %d ok; wall %.1f s; per host: mean %.2f s, max %.2f s; "
              "%.2f s of wall time per host" % (args.hosts, args.parallel, ok, wall,
                                                sum(times) / max(len(times), 1),
                                                max(times or [0]), wall / args.hosts))
        # Uninstall (stops the agents) so nothing is left running.
        run(cli, "uninstall", "--inventory", os.path.join(d, "inventory.json"), "--user", user,
            "--key", os.path.join(d, "id"), "--ns", "bench", "--mcis", "prov",
            "--api", "http://127.0.0.1:%d" % http, "--token-file", os.path.join(d, "token"),
            "--known-hosts", os.path.join(d, "known_hosts"), "--parallel", args.parallel,
            "--quiet")
        return 0 if r.returncode == 0 else 1
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
