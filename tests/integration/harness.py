"""The pieces every Python integration test needs, written once: a free
loopback port, an HTTP request to the API with the bearer token, a pantalad
in a temp dir (config dict -> file, start, wait for /healthz, read its log,
stop), a test sshd with its keys and user, a UDP relay, the msgpack reader
the tests decode frames with, and small waiting and clean-up helpers.

Tests import it the way they import ack_common.py or servers.py: from their
own directory (Python puts a script's directory first on sys.path); tests
elsewhere (tests/unit, tests/bench) add tests/integration to sys.path.

Where tests differ on purpose (what a response decodes to, timeouts, extra
config), the difference is a parameter here, not a copy there.

Standard library only.
"""
import json
import os
import pwd
import random
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

PANTALAD = os.environ.get("PANTALAD", "build/collector/pantalad")
AGENT = os.environ.get("PANTALA_AGENT", "build/agent/pantala-agent")
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
IS_ROOT = os.geteuid() == 0
OWN_TOKEN = object()  # Pantalad.request's default: the daemon's own token


def free_port(kind=socket.SOCK_STREAM):
    """A port on 127.0.0.1 free right now (TCP, or UDP with SOCK_DGRAM)."""
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run(*cmd, **kw):
    """subprocess.run with the arguments made strings, output captured as
    text and a 120 s timeout unless told otherwise."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 120)
    return subprocess.run([str(c) for c in cmd], **kw)


# ---------------------------------------------------------------- HTTP

def http(base, method, path, body=None, token=None, form=False, timeout=10, decode="auto"):
    """One request to base + path; returns (status, body), HTTP errors
    included (a 4xx is an answer, not an exception).

    body: a dict or list is sent as JSON (as form fields with form=True);
    bytes or str as they are, labelled JSON. token: sent as a bearer token.
    decode says what the answer's body becomes:
      "auto": JSON when the server says application/json and the body is
              not empty, else text;
      "json": JSON whatever the type, None when empty;
      "text": text, undecoded."""
    headers = {}
    if isinstance(body, (dict, list)):
        if form:
            data = urllib.parse.urlencode(body).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            data = json.dumps(body).encode()
    else:
        data = body.encode() if isinstance(body, str) else body
    if data is not None and "Content-Type" not in headers:
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw, status, ctype = r.read(), r.status, r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        raw, status, ctype = e.read(), e.code, e.headers.get("Content-Type", "")
    if decode == "json":
        return status, (json.loads(raw) if raw else None)
    if decode == "text":
        return status, raw.decode(errors="replace")
    if ctype.startswith("application/json") and raw:
        return status, json.loads(raw)
    return status, raw.decode(errors="replace")


def parse_metrics(text):
    """Prometheus text exposition -> {'name{labels}': value}."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


# ---------------------------------------------------------------- UDP, msgpack

class UdpTee(threading.Thread):
    """A UDP relay on a free loopback port (.port): every datagram it
    receives goes on to each of the target ports, counted in .count and,
    with keep, kept in .frames (to replay real frames). rcvbuf: SO_RCVBUF
    for a fast sender; poll: how often .running is looked at. Stop it with
    running = False."""

    def __init__(self, targets, keep=False, rcvbuf=None, poll=0.1):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(poll)
        self.port = self.sock.getsockname()[1]
        self.targets = list(targets)
        self.keep = keep
        self.frames = []
        self.count = 0
        self.running = True

    def run(self):
        out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        while self.running:
            try:
                data, _ = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            self.count += 1
            if self.keep:
                self.frames.append(data)
            for t in self.targets:
                out.sendto(data, ("127.0.0.1", t))
        out.close()
        self.sock.close()


def pack_uint(v):
    """msgpack's smallest encoding of a non-negative int."""
    if v < 0x80:
        return bytes([v])
    if v < 1 << 8:
        return b"\xcc" + struct.pack(">B", v)
    if v < 1 << 16:
        return b"\xcd" + struct.pack(">H", v)
    if v < 1 << 32:
        return b"\xce" + struct.pack(">I", v)
    return b"\xcf" + struct.pack(">Q", v)


def unpack(b, i=0):
    """Decodes one msgpack object at b[i:]; returns (object, next index).
    The subset the wire protocol uses (docs/protocol.md): ints, floats,
    strings, arrays, maps, nil, booleans and fixext 8 (the wire's int64)."""
    t = b[i]
    if t <= 0x7f:
        return t, i + 1
    if t >= 0xe0:
        return t - 0x100, i + 1
    if 0x80 <= t <= 0x8f:
        return _unpack_map(b, i + 1, t & 0x0f)
    if 0x90 <= t <= 0x9f:
        return _unpack_array(b, i + 1, t & 0x0f)
    if 0xa0 <= t <= 0xbf:
        n = t & 0x1f
        return b[i + 1:i + 1 + n].decode(), i + 1 + n
    if t == 0xc0:
        return None, i + 1
    if t in (0xc2, 0xc3):
        return t == 0xc3, i + 1
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
        return _unpack_array(b, i + 1 + struct.calcsize(w), struct.unpack_from(w, b, i + 1)[0])
    if t in (0xde, 0xdf):
        w = ">H" if t == 0xde else ">I"
        return _unpack_map(b, i + 1 + struct.calcsize(w), struct.unpack_from(w, b, i + 1)[0])
    if t == 0xd7:  # fixext 8: the wire's int64
        return struct.unpack_from(">q", b, i + 2)[0], i + 10
    raise ValueError("msgpack type 0x%02x not expected" % t)


def _unpack_array(b, i, n):
    out = []
    for _ in range(n):
        v, i = unpack(b, i)
        out.append(v)
    return out, i


def _unpack_map(b, i, n):
    out = {}
    for _ in range(n):
        k, i = unpack(b, i)
        v, i = unpack(b, i)
        out[k] = v
    return out, i


# ---------------------------------------------------------------- waiting, clean-up

def wait_until(what, fn, timeout, log=None, interval=0.2):
    """Calls fn until it returns something true, which is returned; after
    timeout seconds fails naming what, with the tail of log() if given."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError("timed out waiting for " + what + ("\n" + log()[-3000:] if log else ""))


def stop_process(proc, timeout=10, sig=signal.SIGTERM):
    """Sends sig (SIGTERM) to a running child, waits up to timeout seconds,
    then kills it; returns its exit status (None if never started)."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def remove_dir(path):
    """Removes a test's temp dir, or keeps it (and says where) when
    PT_KEEP_TMP is set, to look at logs after a failure."""
    if os.environ.get("PT_KEEP_TMP"):
        print("kept", path)
    else:
        shutil.rmtree(path, ignore_errors=True)


def read_text(path):
    """A log file's text ("" when it does not exist yet)."""
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


# ---------------------------------------------------------------- pantalad

class Pantalad:
    """A pantalad in directory dir: the config written at construction,
    data in dir/data, output appended to dir/pantalad.log (kept across
    restarts), UDP and HTTP on free loopback ports unless given.

    config is merged into the minimum (data_dir, listen, api.tokens): a
    dict value updates the dict of the same key, anything else replaces
    it. header is a line written before the JSON (a '#' comment), indent
    as json.dump's."""

    def __init__(self, dir, token, config=None, udp=None, http=None, header=None, indent=None):
        self.dir = dir
        self.token = token
        self.udp = udp or free_port(socket.SOCK_DGRAM)
        self.http = http or free_port()
        self.api = "http://127.0.0.1:%d" % self.http
        self.data = os.path.join(dir, "data")
        self.conf = os.path.join(dir, "pantalad.json")
        self.log = os.path.join(dir, "pantalad.log")
        conf = {
            "data_dir": self.data,
            "listen": {"udp": "127.0.0.1:%d" % self.udp, "http": "127.0.0.1:%d" % self.http},
            "api": {"tokens": [token]},
        }
        for k, v in (config or {}).items():
            if isinstance(v, dict) and isinstance(conf.get(k), dict):
                conf[k].update(v)
            else:
                conf[k] = v
        self.config = conf
        self.header, self.indent = header, indent
        self.binary = None  # PANTALAD unless set (a bench's own build)
        self.proc = None
        self.write_config()

    def write_config(self):
        """(Re)writes the config file from self.config (read at start)."""
        with open(self.conf, "w") as f:
            if self.header:
                f.write(self.header + "\n")
            json.dump(self.config, f, indent=self.indent)

    def start(self, timeout=15):
        """Starts the daemon and waits until /healthz answers 200; raises
        with the log when it exits first ("pantalad exited: ...") or does
        not answer in time."""
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([self.binary or PANTALAD, "--config", self.conf],
                                         stdout=log, stderr=subprocess.STDOUT)
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout=15):
        """Polls /healthz (no token) every 50 ms; see start()."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if self.request("GET", "/healthz", token=None)[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("pantalad exited: " + self.read_log()[-4000:])
            time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        raise RuntimeError("pantalad did not answer /healthz in %g s (killed): %s"
                           % (timeout, self.read_log()[-4000:]))

    def request(self, method, path, body=None, token=OWN_TOKEN, **kw):
        """http() against this daemon, with its token unless token is given
        (None: no token). Keyword arguments as http()'s."""
        return http(self.api, method, path, body,
                    token=self.token if token is OWN_TOKEN else token, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def metrics(self):
        """/metrics parsed: {'name{labels}': value}."""
        status, text = self.request("GET", "/metrics", decode="text")
        assert status == 200, text
        return parse_metrics(text)

    def read_log(self):
        return read_text(self.log)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=30, kill_on_timeout=False):
        """Sends sig and waits; returns the exit status (negative: killed
        by that signal; None: never started). A daemon that does not exit
        in time is killed when kill_on_timeout, else TimeoutExpired is
        raised (a hang a test should see)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                if not kill_on_timeout:
                    raise
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self):
        """kill -9 and wait."""
        return self.stop(signal.SIGKILL)


# ---------------------------------------------------------------- sshd

def run_account_tool(*cmd):
    """useradd/usermod/userdel, retried while another test holds the lock on
    /etc/passwd or /etc/shadow (they fail at once rather than wait): an
    unchecked usermod losing that race left the account locked and sshd
    refusing the key. Returns the last result."""
    for _ in range(100):
        r = run(*cmd)
        if r.returncode == 0 or "lock" not in (r.stderr or "").lower():
            return r
        time.sleep(0.1)
    return r


class Sshd:
    """A real OpenSSH server on a free loopback port, configured from dir:
    ed25519 keys made with ssh-keygen (hostkey, id, and any others named in
    keys), id.pub authorized, and a login user. As root (CI) the user is a
    fresh one named user_prefix + digits with home dir/home (remove it with
    remove_user()); otherwise it is the current user. extra_config: more
    sshd_config lines. Log in dir/sshd.log."""

    def __init__(self, dir, user_prefix, keys=("wrong_id",), extra_config=()):
        self.dir = dir
        d = dir
        for k in ("hostkey", "id") + tuple(keys):
            run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(d, k))
        for k in ("id",) + tuple(keys):
            os.chmod(os.path.join(d, k), 0o600)
        self.auth = os.path.join(d, "authorized_keys")
        shutil.copy(os.path.join(d, "id.pub"), self.auth)
        os.chmod(self.auth, 0o644)
        self.home = os.path.join(d, "home")
        self.made_user = False
        if IS_ROOT:
            self.user = "%s%d" % (user_prefix, random.randint(10000, 99999))
            r = run_account_tool("useradd", "-M", "-d", self.home, "-s", "/bin/sh", self.user)
            assert r.returncode == 0, r.stderr
            self.made_user = True
            # No password, but not locked: sshd refuses every login to a
            # locked account when PAM is off.
            r = run_account_tool("usermod", "-p", "*", self.user)
            assert r.returncode == 0, r.stderr
            os.makedirs(self.home)
            pw = pwd.getpwnam(self.user)
            os.chown(self.home, pw.pw_uid, pw.pw_gid)
            os.makedirs("/run/sshd", exist_ok=True)
        else:
            self.user = pwd.getpwuid(os.getuid()).pw_name
            os.makedirs(self.home)
        self.port = free_port()
        cfg = os.path.join(d, "sshd_config")
        with open(cfg, "w") as f:
            f.write("\n".join([
                "Port %d" % self.port, "ListenAddress 127.0.0.1",
                "HostKey %s" % os.path.join(d, "hostkey"),
                "PidFile %s" % os.path.join(d, "sshd.pid"),
                "AuthorizedKeysFile %s" % self.auth, "StrictModes no", "UsePAM no",
                "PasswordAuthentication no", "KbdInteractiveAuthentication no",
                "Subsystem sftp internal-sftp"] + list(extra_config) + [""]))
        with open(os.path.join(d, "sshd.log"), "ab") as log:
            self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", cfg], stdout=log,
                                         stderr=subprocess.STDOUT)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)

    def stop(self):
        return stop_process(self.proc, timeout=10)

    def remove_user(self):
        """Ends the test user's processes and deletes the user (as root)."""
        if self.made_user:
            run("pkill", "-u", self.user)
            time.sleep(0.2)
            run_account_tool("userdel", self.user)
            self.made_user = False


def have_sshd():
    """True when sshd and ssh-keygen are installed (the SSH tests skip
    otherwise)."""
    return os.path.exists(SSHD) and bool(shutil.which("ssh-keygen"))
