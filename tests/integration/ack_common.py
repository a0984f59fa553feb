"""Shared pieces of the acknowledged-delivery tests (test_acks_*.py): a real
pantalad in a temp dir, real agents, a lossy UDP relay between them that
records what it forwards, a small msgpack reader for frames and acks, and
read-only queries of the embedded store (metrics.db).

Standard library only.
"""
import hashlib
import hmac
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import threading
import time

from harness import AGENT, PANTALAD, Pantalad, pack_uint, unpack, wait_until  # noqa: F401

TOKEN = "ack-test-token-0123456789abcdef"


# ---------------------------------------------------------------- msgpack

def make_ack(key, agent_id, epoch, cum, top, gaps=(), now_ns=0):
    """An ack frame (docs/protocol.md), signed with key (bytes) or unsigned."""
    flat = [v for g in gaps for v in g]
    body = bytes([0x99]) + pack_uint(1) + pack_uint(2) + pack_uint(1 if key else 0)
    body += pack_uint(agent_id) + pack_uint(epoch) + pack_uint(cum) + pack_uint(top)
    body += bytes([0x90 | len(flat)]) + b"".join(pack_uint(v) for v in flat)
    body += pack_uint(now_ns)
    if key:
        body += hmac.new(key, body, hashlib.sha256).digest()
    return body


class Frame:
    """The parts of an agent's sample frame the tests look at."""

    def __init__(self, data):
        obj, end = unpack(data)
        self.kind = obj[1]
        self.agent_id, self.epoch, self.seq, self.ts = obj[3], obj[4], obj[5], obj[6]
        self.part, self.nparts = obj[8], obj[9]
        self.meas = obj[11]
        self.nmeas = len(obj[11])

    def self_report(self):
        """The agent's own figures (measurement "agent"), or None."""
        for m in self.meas:
            if m[0] == "agent":
                return m[2]
        return None


class Ack:
    def __init__(self, data):
        obj, end = unpack(data)
        assert obj[1] == 2, "not an ack"
        self.agent_id, self.epoch, self.cum, self.top = obj[3], obj[4], obj[5], obj[6]
        g = obj[7]
        self.gaps = [(g[i], g[i + 1]) for i in range(0, len(g), 2)]

    def covers(self, seq):
        if seq <= self.cum:
            return True
        if seq > self.top:
            return False
        return not any(a <= seq <= b for a, b in self.gaps)


# ---------------------------------------------------------------- relay

class Relay(threading.Thread):
    """A UDP relay between agents and a collector on loopback. Every
    datagram from an agent is recorded (first copies and resends alike),
    then forwarded to the collector unless dropped; answers from the
    collector go back to the agent they are for, likewise lossy. Drops,
    duplicates and reorders (a delayed copy) are random with the given
    rates, the same both ways."""

    def __init__(self, target_port, drop=0.0, dup=0.0, reorder=0.0, seed=1):
        super().__init__(daemon=True)
        self.rng = random.Random(seed)
        self.drop, self.dup, self.reorder = drop, dup, reorder
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.port = self.front.getsockname()[1]
        self.target = ("127.0.0.1", target_port)
        self.back = {}  # agent address -> socket facing the collector
        self.agent_of = {}  # that socket -> the agent's address
        self.lock = threading.Lock()
        self.frames = []  # (time, Frame) from agents
        self.acks = []  # (time, Ack) from the collector
        self.delayed = []  # (due, sock, data, addr)
        self.running = True
        self.counts = {"dropped": 0, "duplicated": 0, "reordered": 0}

    def _emit(self, sock, data, addr):
        r = self.rng.random()
        if r < self.drop:
            self.counts["dropped"] += 1
            return
        if self.rng.random() < self.reorder:
            self.counts["reordered"] += 1
            self.delayed.append((time.time() + self.rng.uniform(0.05, 0.3), sock, data, addr))
            return
        sock.sendto(data, addr)
        if self.rng.random() < self.dup:
            self.counts["duplicated"] += 1
            sock.sendto(data, addr)

    def run(self):
        import select
        while self.running:
            socks = [self.front] + list(self.back.values())
            ready, _, _ = select.select(socks, [], [], 0.02)
            now = time.time()
            for due in [d for d in self.delayed if d[0] <= now]:
                self.delayed.remove(due)
                try:
                    due[1].sendto(due[2], due[3])
                except OSError:
                    pass
            for s in ready:
                try:
                    data, addr = s.recvfrom(65536)
                except OSError:
                    continue  # an ICMP error (collector down): nothing to relay
                if s is self.front:
                    with self.lock:
                        try:
                            self.frames.append((now, Frame(data)))
                        except Exception:
                            pass
                        b = self.back.get(addr)
                        if b is None:
                            b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                            b.bind(("127.0.0.1", 0))
                            self.agent_of[b] = addr
                            self.back[addr] = b
                    self._emit(b, data, self.target)
                else:
                    with self.lock:
                        try:
                            self.acks.append((now, Ack(data)))
                        except Exception:
                            pass
                    self._emit(self.front, data, self.agent_of[s])

    def stop(self):
        self.running = False
        self.join(timeout=2)
        for sock in [self.front] + list(self.back.values()):
            sock.close()

    def sent_frames(self, agent_id):
        """Distinct frames of one agent, by seq (the first copy)."""
        with self.lock:
            out = {}
            for _, f in self.frames:
                if f.agent_id == agent_id and f.seq not in out:
                    out[f.seq] = f
            return out

    def last_ack(self, agent_id, before=None):
        """The newest ack for agent_id the collector sent (before a time)."""
        with self.lock:
            best = None
            for t, a in self.acks:
                if a.agent_id == agent_id and (before is None or t < before):
                    best = a
            return best


# ---------------------------------------------------------------- daemon

class Collector(Pantalad):
    """A pantalad in its own temp dir (data kept across restarts); extra:
    config sections merged into the defaults."""

    def __init__(self, tmp, extra=None, udp_port=None):
        conf = {"writer": {"flush": "100ms"}, "log": {"level": "info"}}
        for k, v in (extra or {}).items():
            conf.setdefault(k, {}).update(v)
        super().__init__(tmp, TOKEN, conf, udp=udp_port, indent=1)

    def start(self):
        self.binary = PANTALAD  # this module's: tests/bench/ack_bench.py sets it
        return super().start(timeout=20)

    def register(self, vm):
        status, body = self.request("POST", "/api/v1/agents",
                                    {"ns": "ns01", "mcis": "acks", "vm": vm, "csp": "aws"})
        assert status == 201, body
        return body

    def agent_info(self, agent_id):
        status, body = self.request("GET", "/api/v1/agents/%d" % agent_id)
        assert status == 200, body
        return body

    def points(self, vm):
        """{ts: number of points} of one VM, read from metrics.db read-only
        (the points table's primary key is (series, ts): a point stored
        twice would replace itself, so counts per ts are what was kept)."""
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.data, "metrics.db"),
                             uri=True, timeout=10)
        try:
            rows = db.execute("SELECT p.ts, count(*) FROM points p JOIN series s "
                              "ON s.id = p.series WHERE s.vm = ? GROUP BY p.ts", (vm,)).fetchall()
        finally:
            db.close()
        return dict(rows)


class Agent:
    def __init__(self, tmp, reg, collector_port, name, **extra):
        self.id = reg["id"]
        self.key = bytes.fromhex(reg["key"])
        self.vm = reg["vm"]
        conf = dict(reg["agent_config"])
        conf["collector"] = "127.0.0.1:%d" % collector_port
        conf.update(extra)
        self.conf = os.path.join(tmp, name + ".json")
        self.log = os.path.join(tmp, name + ".log")
        with open(self.conf, "w") as f:
            json.dump(conf, f)
        os.chmod(self.conf, 0o600)
        self.proc = None

    def start(self):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([AGENT, "--config", self.conf],
                                         stdout=log, stderr=subprocess.STDOUT)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def read_log(self):
        with open(self.log, errors="replace") as f:
            return f.read()


def expected_points(frames):
    """{ts: points} the frames of one agent carry, summed over the parts of
    each sample (every measurement is one point)."""
    out = {}
    for f in frames.values():
        out[f.ts] = out.get(f.ts, 0) + f.nmeas
    return out
