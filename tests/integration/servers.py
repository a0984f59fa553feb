"""Real InfluxDB 1.x and VictoriaMetrics servers for tests and benchmarks:
each started from its Debian package's binary in a temporary directory, on
free loopback ports, and stopped (and its directory removed) by stop().

Standard library only. Used by test_store_servers.py and tests/bench."""
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from harness import free_port  # also test_store_servers.py's

INFLUXD = os.environ.get("INFLUXD", shutil.which("influxd") or "/usr/bin/influxd")
VICTORIA = os.environ.get("VICTORIA_METRICS",
                          shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics")


class Server:
    """A child process with a temporary directory, ready when url answers."""

    name = "server"

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="pt-%s-" % self.name)
        self.proc = None
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port

    def _start(self, argv, ready_path):
        self.log = open(os.path.join(self.dir, "server.log"), "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=self.dir)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited at start (%d): %s" %
                                   (self.name, self.proc.returncode, self.log_text()))
            try:
                urllib.request.urlopen(self.url + ready_path, timeout=1).read()
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("%s did not answer %s within 30 s" % (self.name, ready_path))

    def log_text(self):
        try:
            with open(os.path.join(self.dir, "server.log"), "rb") as f:
                return f.read()[-4000:].decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if getattr(self, "log", None):
            self.log.close()
            self.log = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Influx(Server):
    """influxd 1.x with a generated config: every listener on loopback,
    reporting disabled, meta/data/wal under the temporary directory."""

    name = "influxd"

    def start(self):
        d = self.dir
        conf = os.path.join(d, "influxdb.conf")
        with open(conf, "w") as f:
            f.write("""reporting-disabled = true
bind-address = "127.0.0.1:%d"
[meta]
  dir = "%s/meta"
[data]
  dir = "%s/data"
  wal-dir = "%s/wal"
  query-log-enabled = false
  cache-snapshot-write-cold-duration = "10s"
[coordinator]
  max-select-point = 0
  max-select-series = 0
[http]
  enabled = true
  bind-address = "127.0.0.1:%d"
  log-enabled = false
  max-row-limit = 0
  max-body-size = 0
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
""" % (free_port(), d, d, d, self.port))
        return self._start([INFLUXD, "run", "-config", conf], "/ping")

    def query(self, q, db=None, method="POST"):
        params = {"q": q, "epoch": "ns"}
        if db:
            params["db"] = db
        data = urllib.parse.urlencode(params).encode()
        import json
        if method == "GET":
            r = urllib.request.urlopen(self.url + "/query?" + data.decode(), timeout=30)
        else:
            r = urllib.request.urlopen(self.url + "/query", data=data, timeout=30)
        return json.loads(r.read())


class Victoria(Server):
    """victoria-metrics single node; -search.latencyOffset=0 makes fresh
    points queryable at once, -dedup.minScrapeInterval=1ms keeps one point
    per series and millisecond (a resent point is not stored twice)."""

    name = "victoria-metrics"

    def start(self, extra=(), dedup=True):
        return self._start([VICTORIA, "-storageDataPath=" + os.path.join(self.dir, "data"),
                            "-httpListenAddr=127.0.0.1:%d" % self.port,
                            "-retentionPeriod=100y", "-search.latencyOffset=0",
                            "-loggerLevel=ERROR"]
                           + (["-dedup.minScrapeInterval=1ms"] if dedup else []) + list(extra),
                           "/health")

    def flush(self):
        """Makes points written so far visible to queries at once."""
        urllib.request.urlopen(self.url + "/internal/force_flush", timeout=10).read()
