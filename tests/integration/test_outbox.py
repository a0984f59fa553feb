#!/usr/bin/env python3
"""The durable outbox, end to end: a real pantalad whose embedded SQLite store
is made unavailable for real while pantala-loadgen streams frames at it.

Another process (this test, through Python's sqlite3) holds a
`BEGIN EXCLUSIVE` transaction on metrics.db, so every write of pantalad gets
SQLITE_BUSY once its busy_timeout (5 s) runs out: a transient error, so the
batches go to the outbox and are replayed when the lock is released.

How "every point present exactly once, with its values" is checked: a UDP
relay sends every datagram of the load generator to two collectors, the one
under test and a control whose store is never blocked. Afterwards both
metrics.db files must hold exactly the same rows (series, timestamp and the
encoded field values), and as many as the control accepted frames times the
six measurements of a loadgen frame. The store's primary key (series, ts)
makes a duplicate impossible to hide as an extra row; the comparison makes a
lost or altered point visible.

Run by ctest with PANTALAD and PANTALA_LOADGEN set; one ctest entry per test
(argument: the test name), each well under a minute. PT_OUTAGE_S sets how
long the store is blocked (default 8 s; at least 6 so that a write really
times out). Standard library only.
"""
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

from harness import PANTALAD, Pantalad, UdpTee

LOADGEN = os.environ.get("PANTALA_LOADGEN", "build/tests/bench/pantala-loadgen")
TOKEN = "integration-test-token-0123456789"
OUTAGE_S = float(os.environ.get("PT_OUTAGE_S", "8"))
MEAS_PER_FRAME = 6  # pantala-loadgen's full-catalog frame


class Daemon(Pantalad):
    """One pantalad in a directory of its own, taking unsigned frames."""

    def __init__(self, root, name, outbox_max_bytes=None, writer=None, store_url=None):
        d = os.path.join(root, name)
        os.makedirs(d)
        conf = {
            "ingest": {"insecure": True},
            "writer": dict({"flush": "100ms", "drain": "3s"}, **(writer or {})),
        }
        if outbox_max_bytes is not None:
            conf["outbox"] = {"max_bytes": outbox_max_bytes}
        if store_url:
            conf["store"] = {"url": store_url}
        super().__init__(d, TOKEN, conf)
        self.db = os.path.join(self.data, "metrics.db")

    def start(self):
        # this module's PANTALAD: tests/bench/outbox_bench.py sets it
        self.binary = PANTALAD
        return super().start()

    def rows(self):
        """Every stored point: (ns, mcis, vm, measurement, tags, ts, fields)."""
        con = sqlite3.connect("file:%s?mode=ro" % self.db, uri=True)
        try:
            return con.execute(
                "SELECT s.ns, s.mcis, s.vm, s.measurement, s.tags, p.ts, p.fields "
                "FROM points p JOIN series s ON s.id = p.series").fetchall()
        finally:
            con.close()


class StoreLock:
    """Holds a write lock on an SQLite database from this process."""

    def __init__(self, path):
        self.con = sqlite3.connect(path, timeout=10, isolation_level=None)
        self.con.execute("BEGIN EXCLUSIVE")

    def release(self):
        self.con.execute("ROLLBACK")
        self.con.close()


class Harness(unittest.TestCase):
    """Daemons, the relay, the load generator and the checks; no tests."""

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="pt-outbox-")
        self.daemons = []
        self.relay = None
        self.loadgen = None

    def tearDown(self):
        if self.loadgen and self.loadgen.poll() is None:
            self.loadgen.kill()
            self.loadgen.wait()
        if self.relay:
            self.relay.running = False
        # A clean exit is part of the test (under ASan it also checks leaks).
        bad = []
        for d in self.daemons:
            if d.proc and d.proc.poll() is None:
                try:
                    rc = d.stop(signal.SIGTERM, timeout=30)
                except subprocess.TimeoutExpired:
                    d.proc.kill()
                    d.proc.wait()
                    rc = "timeout"
                if rc != 0:
                    bad.append("%s exited with %s:\n%s" % (d.dir, rc, d.read_log()[-3000:]))
        if os.environ.get("PT_KEEP_TMP"):
            print("kept", self.root)
        else:
            shutil.rmtree(self.root, ignore_errors=True)
        if bad:
            raise AssertionError("\n".join(bad))

    # ---------------------------------------------------------------- helpers

    def daemon(self, name, **kw):
        d = Daemon(self.root, name, **kw)
        self.daemons.append(d)
        d.start()
        return d

    def stream(self, targets, rate, seconds, agents=20):
        """Starts pantala-loadgen sending unsigned frames through a relay."""
        self.relay = UdpTee([d.udp for d in targets], rcvbuf=8 << 20)
        self.relay.start()
        self.loadgen = subprocess.Popen(
            [LOADGEN, "--target", "127.0.0.1:%d" % self.relay.port, "--unsigned",
             "--agents", str(agents), "--rate", str(rate), "--duration", str(seconds),
             "--no-gso", "--json", "--quiet", "--seed", "42"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish_stream(self):
        out, err = self.loadgen.communicate(timeout=120)
        self.assertEqual(self.loadgen.returncode, 0, err)
        time.sleep(0.5)  # the relay's last datagrams
        self.relay.running = False
        summary = json.loads(out.strip().splitlines()[-1])
        self.assertGreater(summary["frames"], 0)
        return summary

    def wait_for(self, what, fn, timeout=30, d=None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            v = fn()
            if v:
                return v
            time.sleep(0.1)
        m = {k: v for k, v in (d or self.daemons[0]).metrics().items()
             if k.startswith(("pantala_frames", "pantala_outbox", "pantala_write", "pantala_store"))}
        self.fail("timed out waiting for " + what + "\n" + json.dumps(m, indent=1) + "\n" +
                  "\n".join(x.read_log()[-3000:] for x in ([d] if d else self.daemons)))

    def settled(self, d):
        """True when everything d accepted is in its store."""
        m = d.metrics()
        acc = m['pantala_frames_total{outcome="accepted"}']
        return (acc > 0 and m["pantala_outbox_batches"] == 0 and
                m["pantala_write_queue_depth"] == 0 and m["pantala_frames_written_total"] == acc)

    def assert_same_points(self, d, control):
        """d's store holds exactly the control's points, each once."""
        self.wait_for("the control to store everything", lambda: self.settled(control))
        acc = control.metrics()['pantala_frames_total{outcome="accepted"}']
        want = control.rows()
        self.assertEqual(len(want), acc * MEAS_PER_FRAME)
        got = d.rows()
        self.assertEqual(len(got), len(want), "point count differs from the control")
        self.assertEqual(set(got), set(want), "stored points differ from the control")

    def assert_nothing_dropped(self, m):
        for reason in ("queue_full", "store_error", "shutdown", "outbox_full", "outbox_corrupt"):
            self.assertEqual(m['pantala_points_dropped_total{reason="%s"}' % reason], 0, reason)



class Outbox(Harness):
    def test_outage_replayed_in_full(self):
        """The store is blocked for OUTAGE_S while frames stream; afterwards
        every point is there exactly once, with its values."""
        d = self.daemon("subject")
        control = self.daemon("control")
        self.stream([d, control], rate=1000, seconds=OUTAGE_S + 5)
        time.sleep(1.5)
        lock = StoreLock(d.db)
        t0 = time.time()
        # the queue passes its high-water mark, then the writer's first
        # write times out after 5 s: the outbox fills
        self.wait_for("a failed write and batches in the outbox",
                      lambda: d.metrics()["pantala_store_healthy"] == 0 and
                      d.metrics()["pantala_outbox_batches"] > 0, d=d)
        status, st = d.get("/api/v1/store")
        self.assertEqual(status, 200)
        self.assertEqual(st["backend"], "sqlite")
        self.assertFalse(st["healthy"])
        self.assertIsNotNone(st["outage_since"])
        self.assertIn("busy", st["last_error"]["message"].lower())
        self.assertTrue(st["outbox"]["enabled"])
        self.assertGreater(st["outbox"]["batches"], 0)
        self.assertGreater(st["outbox"]["bytes"], 0)
        time.sleep(max(0, OUTAGE_S - (time.time() - t0)))
        m = d.metrics()
        self.assertEqual(m["pantala_store_healthy"], 0)
        self.assertGreater(m["pantala_outbox_oldest_age_seconds"], 1)
        lock.release()
        self.finish_stream()
        self.wait_for("the outbox to be replayed", lambda: self.settled(d), d=d)
        m = d.metrics()
        self.assertGreater(m["pantala_store_errors_total"], 0)
        self.assertGreater(m["pantala_outbox_spilled_batches_total"], 0)
        self.assertGreater(m["pantala_outbox_replayed_batches_total"], 0)
        self.assertEqual(m["pantala_outbox_bytes"], 0)
        self.assertEqual(m["pantala_store_healthy"], 1)
        self.assert_nothing_dropped(m)
        self.assert_same_points(d, control)
        log = d.read_log()
        self.assertIn("store write failed", log)
        self.assertIn("store is back after", log)
        self.assertLessEqual(log.count("store write failed"), 2, "rate-limited, not per retry")
        status, st = d.get("/api/v1/store")
        self.assertTrue(st["healthy"])
        self.assertEqual(st["outbox"]["batches"], 0)

    def test_outbox_full_drops_oldest_counted(self):
        """A tiny outbox during an outage: the oldest batches are dropped,
        counted and logged; everything else arrives, the accounts balance."""
        d = self.daemon("subject", outbox_max_bytes=256 * 1024, writer={"batch": 64})
        lock = StoreLock(d.db)
        self.stream([d], rate=1000, seconds=4)
        self.finish_stream()
        self.wait_for("outbox_full drops", lambda: d.metrics()[
            'pantala_points_dropped_total{reason="outbox_full"}'] > 0, d=d)
        lock.release()

        def balanced():
            m = d.metrics()
            acc = m['pantala_frames_total{outcome="accepted"}']
            return (m["pantala_outbox_batches"] == 0 and m["pantala_write_queue_depth"] == 0 and
                    m["pantala_frames_written_total"] +
                    m['pantala_frames_dropped_total{reason="outbox_full"}'] == acc)
        self.wait_for("written + dropped = accepted", balanced, d=d)
        m = d.metrics()
        self.assertLessEqual(m["pantala_outbox_max_bytes"], 256 * 1024)
        self.assertGreater(m["pantala_outbox_dropped_bytes_total"], 0)
        self.assertGreater(m["pantala_frames_written_total"], 0)
        for reason in ("queue_full", "store_error", "shutdown"):
            self.assertEqual(m['pantala_points_dropped_total{reason="%s"}' % reason], 0, reason)
        # what was written is in the store, once
        self.assertEqual(len(d.rows()), m["pantala_points_written_total"])
        self.assertEqual(m["pantala_points_written_total"],
                         m["pantala_frames_written_total"] * MEAS_PER_FRAME)
        log = d.read_log()
        self.assertIn("error outbox: outbox", log)
        self.assertIn("DROPPED its oldest", log)

    def restart_with_outbox(self, sig):
        d = self.daemon("subject")
        control = self.daemon("control")
        lock = StoreLock(d.db)
        self.stream([d, control], rate=1000, seconds=4)
        self.finish_stream()
        self.wait_for("the control to store everything", lambda: self.settled(control))
        acc = control.metrics()['pantala_frames_total{outcome="accepted"}']

        def spilled():
            m = d.metrics()
            return (m['pantala_frames_total{outcome="accepted"}'] == acc and
                    m["pantala_write_queue_depth"] == 0 and m["pantala_outbox_frames"] == acc)
        self.wait_for("every accepted frame in the outbox", spilled, d=d)
        t0 = time.time()
        rc = d.stop(sig)
        stop_s = time.time() - t0
        if sig == signal.SIGTERM:
            self.assertEqual(rc, 0)
            self.assertLess(stop_s, 10, "a failing store must not hold up the shutdown")
            log = d.read_log()
            self.assertIn("to the outbox", log)
            self.assertIn("they are written to the store at the next start", log)
        else:
            self.assertEqual(rc, -signal.SIGKILL)
        lock.release()
        outbox = os.path.join(d.data, "outbox")
        self.assertTrue(any(n.endswith(".seg") for n in os.listdir(outbox)))
        d.start()
        self.assertIn("from a previous run", d.read_log())
        self.wait_for("the outbox to be replayed", lambda: d.metrics()[
            "pantala_outbox_batches"] == 0 and d.metrics()[
            "pantala_outbox_replayed_frames_total"] == acc, d=d)
        self.assert_nothing_dropped(d.metrics())
        self.assert_same_points(d, control)
        self.assertFalse(any(n.endswith(".seg") for n in os.listdir(outbox)))

    def test_restart_after_sigterm(self):
        """SIGTERM while the store is blocked: the queue goes to the outbox,
        the next start replays it."""
        self.restart_with_outbox(signal.SIGTERM)

    def test_restart_after_kill9(self):
        """kill -9 after the spill: the next start replays the outbox."""
        self.restart_with_outbox(signal.SIGKILL)


if __name__ == "__main__":
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        sys.argv[1] = "Outbox." + sys.argv[1]
    unittest.main(verbosity=2)
