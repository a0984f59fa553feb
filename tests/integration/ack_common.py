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
import struct
import subprocess
import threading
import time
import urllib.error
import urllib.request

PANTALAD = os.environ.get("PANTALAD", "build/collector/pantalad")
AGENT = os.environ.get("PANTALA_AGENT", "build/agent/pantala-agent")
TOKEN = "ack-test-token-0123456789abcdef"


def free_port(kind=socket.SOCK_DGRAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------- msgpack

def unpack(b, i=0):
    """Decodes one msgpack object at b[i:]; returns (object, next index)."""
    t = b[i]
    if t <= 0x7f:
        return t, i + 1
    if t >= 0xe0:
        return t - 0x100, i + 1
    if 0x80 <= t <= 0x8f:
        return _map(b, i + 1, t & 0x0f)
    if 0x90 <= t <= 0x9f:
        return _array(b, i + 1, t & 0x0f)
    if 0xa0 <= t <= 0xbf:
        n = t & 0x1f
        return b[i + 1:i + 1 + n].decode(), i + 1 + n
    fixed = {0xcc: ">B", 0xcd: ">H", 0xce: ">I", 0xcf: ">Q", 0xd0: ">b", 0xd1: ">h",
             0xd2: ">i", 0xd3: ">q", 0xca: ">f", 0xcb: ">d"}
    if t in fixed:
        n = struct.calcsize(fixed[t])
        return struct.unpack_from(fixed[t], b, i + 1)[0], i + 1 + n
    if t in (0xd9, 0xda, 0xdb):
        w = {0xd9: ">B", 0xda: ">H", 0xdb: ">I"}[t]
        n = struct.unpack_from(w, b, i + 1)[0]
        j = i + 1 + struct.calcsize(w)
        return b[j:j + n].decode(), j + n
    if t in (0xdc, 0xdd):
        w = ">H" if t == 0xdc else ">I"
        return _array(b, i + 1 + struct.calcsize(w), struct.unpack_from(w, b, i + 1)[0])
    if t in (0xde, 0xdf):
        w = ">H" if t == 0xde else ">I"
        return _map(b, i + 1 + struct.calcsize(w), struct.unpack_from(w, b, i + 1)[0])
    if t == 0xd7:  # fixext 8: the wire's int64
        return struct.unpack_from(">q", b, i + 2)[0], i + 10
    raise ValueError("msgpack type 0x%02x not expected" % t)


def _array(b, i, n):
    out = []
    for _ in range(n):
        v, i = unpack(b, i)
        out.append(v)
    return out, i


def _map(b, i, n):
    out = {}
    for _ in range(n):
        k, i = unpack(b, i)
        v, i = unpack(b, i)
        out[k] = v
    return out, i


def pack_uint(v):
    if v < 0x80:
        return bytes([v])
    if v < 1 << 8:
        return b"\xcc" + struct.pack(">B", v)
    if v < 1 << 16:
        return b"\xcd" + struct.pack(">H", v)
    if v < 1 << 32:
        return b"\xce" + struct.pack(">I", v)
    return b"\xcf" + struct.pack(">Q", v)


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

class Collector:
    """A pantalad in its own temp dir (data kept across restarts)."""

    def __init__(self, tmp, extra=None, udp_port=None):
        self.dir = tmp
        self.udp = udp_port or free_port()
        self.http = free_port(socket.SOCK_STREAM)
        self.api = "http://127.0.0.1:%d" % self.http
        self.data = os.path.join(tmp, "data")
        self.conf = os.path.join(tmp, "pantalad.json")
        self.log = os.path.join(tmp, "pantalad.log")
        conf = {
            "data_dir": self.data,
            "listen": {"udp": "127.0.0.1:%d" % self.udp, "http": "127.0.0.1:%d" % self.http},
            "api": {"tokens": [TOKEN]},
            "writer": {"flush": "100ms"},
            "log": {"level": "info"},
        }
        for k, v in (extra or {}).items():
            conf.setdefault(k, {}).update(v)
        with open(self.conf, "w") as f:
            json.dump(conf, f, indent=1)
        self.proc = None

    def start(self):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([PANTALAD, "--config", self.conf],
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("pantalad exited: " + self.read_log()[-2000:])
            time.sleep(0.05)
        raise RuntimeError("pantalad did not answer: " + self.read_log()[-2000:])

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def read_log(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def request(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.api + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + TOKEN)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                raw, status, ctype = r.read(), r.status, r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            raw, status, ctype = e.read(), e.code, e.headers.get("Content-Type", "")
        if ctype.startswith("application/json") and raw:
            return status, json.loads(raw)
        return status, raw.decode(errors="replace")

    def register(self, vm):
        status, body = self.request("POST", "/api/v1/agents",
                                    {"ns": "ns01", "mcis": "acks", "vm": vm, "csp": "aws"})
        assert status == 201, body
        return body

    def agent_info(self, agent_id):
        status, body = self.request("GET", "/api/v1/agents/%d" % agent_id)
        assert status == 200, body
        return body

    def metrics(self):
        status, text = self.request("GET", "/metrics")
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

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


def wait_until(what, fn, timeout, log=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what + ("\n" + log()[-3000:] if log else ""))
