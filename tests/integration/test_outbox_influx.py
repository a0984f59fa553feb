#!/usr/bin/env python3
"""The outbox across an InfluxDB outage: pantala-loadgen streams into a
pantalad writing to a real InfluxDB 1.x (Debian's influxd, started by the
test on a free loopback port); InfluxDB is stopped for PT_INFLUX_OUTAGE_S
seconds (default 15; the issue's figure is 30) and started again. Afterwards
every point is there exactly once with its values.

How: the same datagrams also go to a control pantalad on the embedded store
(see test_outbox.py). Every series of every VM is read back through both
daemons' query API (raw points) and must be identical: same timestamps, same
values; the control holds accepted frames x 6 points, and so does InfluxDB
by its own count (InfluxQL COUNT).

PT_INFLUX_STOP chooses how InfluxDB is stopped: "sigstop" (default: the
process freezes, requests hang until pantalad's timeout, like a network
partition) or "kill" (SIGKILL, then started again on its data: refused
connections, like a crash). Standard library only.
"""
import os
import signal
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servers  # noqa: E402
from test_outbox import MEAS_PER_FRAME, Daemon, Harness  # noqa: E402

OUTAGE_S = float(os.environ.get("PT_INFLUX_OUTAGE_S", "15"))
MODE = os.environ.get("PT_INFLUX_STOP", "sigstop")


class InfluxOutbox(Harness):
    def setUp(self):
        super().setUp()
        self.influx = None
        if not os.access(servers.INFLUXD, os.X_OK):
            self.skipTest("influxd not found (apt-get install influxdb)")
        self.influx = servers.Influx().start()

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            if self.influx:
                if self.influx.proc and self.influx.proc.poll() is None:
                    self.influx.proc.send_signal(signal.SIGCONT)
                self.influx.stop()

    def influx_daemon(self, name):
        d = Daemon(self.root, name, store_url="influxdb:%s/pantala?timeout=3s" % self.influx.url)
        self.daemons.append(d)
        d.start()
        return d

    def series(self, d, ns, mcis, vm, meas, t_from, t_to):
        """Raw points of every series: {tags: [(time, values...)]}."""
        q = urllib.parse.urlencode({"from": t_from, "to": t_to})
        status, body = d.get("/api/v1/ns/%s/mcis/%s/vm/%s/metrics/%s?%s" %
                             (ns, mcis, vm, meas, q))
        self.assertEqual(status, 200, body)
        out = {}
        for s in body["series"]:
            key = tuple(sorted(s["tags"].items()))
            cols = s["columns"]
            out[key] = {(row[0], c): v for row in s["values"] for c, v in zip(cols[1:], row[1:])}
        return out

    def assert_same_values(self, got, want, where):
        self.assertEqual(set(got), set(want), "series differ: " + where)
        for key in want:
            g, w = got[key], want[key]
            self.assertEqual(len(g), len(w), "point count differs: %s %s" % (where, key))
            self.assertEqual(set(g), set(w), "timestamps/fields differ: %s %s" % (where, key))
            for k, wv in w.items():
                gv = g[k]
                if isinstance(wv, float) or isinstance(gv, float):
                    self.assertAlmostEqual(gv, wv, delta=abs(wv) * 1e-12 + 1e-12,
                                           msg="%s %s %s" % (where, key, k))
                else:
                    self.assertEqual(gv, wv, "%s %s %s" % (where, key, k))

    def test_influx_outage(self):
        d = self.influx_daemon("subject")
        control = self.daemon("control")
        t_from = int(time.time()) - 60
        self.stream([d, control], rate=1000, seconds=OUTAGE_S + 10)
        time.sleep(3)
        proc = self.influx.proc
        if MODE == "kill":
            proc.kill()
            proc.wait()
            self.influx.log.close()
        else:
            proc.send_signal(signal.SIGSTOP)
        t_stop = time.time()
        self.wait_for("the outage to be noticed and spilled",
                      lambda: d.metrics()["pantala_store_healthy"] == 0 and
                      d.metrics()["pantala_outbox_batches"] > 0, timeout=OUTAGE_S + 10, d=d)
        status, st = d.get("/api/v1/store")
        self.assertEqual(st["backend"], "influxdb")
        self.assertFalse(st["healthy"])
        self.assertGreater(st["outbox"]["frames"], 0)
        time.sleep(max(0, OUTAGE_S - (time.time() - t_stop)))
        if MODE == "kill":
            self.influx.start()
        else:
            proc.send_signal(signal.SIGCONT)
        self.finish_stream()
        self.wait_for("the outbox to be replayed into InfluxDB", lambda: self.settled(d),
                      timeout=90, d=d)
        self.wait_for("the control to store everything", lambda: self.settled(control))
        m = d.metrics()
        self.assertGreater(m["pantala_store_errors_total"], 0)
        self.assertGreater(m["pantala_outbox_replayed_batches_total"], 0)
        self.assertEqual(m["pantala_store_healthy"], 1)
        self.assert_nothing_dropped(m)
        self.assertIn("store is back after", d.read_log())

        acc = control.metrics()['pantala_frames_total{outcome="accepted"}']
        self.assertEqual(len(control.rows()), acc * MEAS_PER_FRAME)
        t_to = int(time.time()) + 60
        vms = control.get("/api/v1/agents")[1]["agents"]
        self.assertEqual(len(vms), 20)
        meas = sorted({r[3] for r in control.rows()})
        self.assertEqual(len(meas), MEAS_PER_FRAME)
        total = 0
        for a in vms:
            for mname in meas:
                args = (a["ns"], a["mcis"], a["vm"], mname, t_from, t_to)
                want = self.series(control, *args)
                got = self.series(d, *args)
                self.assert_same_values(got, want, "%s/%s" % (a["vm"], mname))
                total += sum(len({t for (t, _) in s}) for s in want.values())
        self.assertEqual(total, acc * MEAS_PER_FRAME)
        # and counted by InfluxDB itself, not through pantalad's read path:
        # per measurement, the largest per-field count is its point count
        res = self.influx.query("SELECT COUNT(*) FROM /.*/", db="pantala")
        in_influx = 0
        for s in res["results"][0]["series"]:
            counts = [v for c, v in zip(s["columns"], s["values"][0])
                      if c.startswith("count_") and v is not None]
            in_influx += max(counts)
        self.assertEqual(in_influx, acc * MEAS_PER_FRAME)


if __name__ == "__main__":
    unittest.main(verbosity=2)
