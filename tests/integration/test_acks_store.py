#!/usr/bin/env python3
"""Acks never run ahead of durability: pantalad on a real InfluxDB (the
Debian package's influxd, started here on loopback), a real agent through a
relay that records every frame and ack. influxd is frozen (SIGSTOP) for a
few seconds: the collector keeps accepting the agent's frames but
acknowledges none sent after the freeze; once influxd runs again the acks
catch up, and InfluxDB holds every sample once, at its original time.
"""
import os
import shutil
import signal
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ack_common as ac  # noqa: E402
import servers  # noqa: E402

FREEZE = float(os.environ.get("PT_ACK_FREEZE_SECONDS", "6"))


@unittest.skipUnless(os.access(servers.INFLUXD, os.X_OK), "influxd not installed")
class StoreFrozen(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pt-acks-store-")
        self.influx = servers.Influx().start()
        self.c = ac.Collector(self.tmp, extra={
            "store": {"url": "influxdb:%s/acks?timeout=60s" % self.influx.url}})
        self.c.start()
        self.relay = ac.Relay(self.c.udp)
        self.relay.start()
        self.agent = None

    def tearDown(self):
        if self.influx.proc and self.influx.proc.poll() is None:
            self.influx.proc.send_signal(signal.SIGCONT)
        if self.agent:
            self.agent.stop()
        self.relay.stop()
        self.c.stop(signal.SIGKILL)
        self.influx.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start_agent(self, vm):
        """Registers and starts an agent through the relay; returns its id
        once acks flow (more than five samples acknowledged)."""
        reg = self.c.register(vm)
        self.agent = ac.Agent(self.tmp, reg, self.relay.port, "agent", interval="200ms",
                              ring={"resend_after": "1s"})
        self.agent.start()
        aid = self.agent.id

        def acks_flow():
            k = self.relay.last_ack(aid)
            return k and k.cum > 5
        ac.wait_until("acks", acks_flow, 30, self.c.read_log)
        return aid

    def test_no_ack_while_the_store_is_frozen(self):
        aid = self.start_agent("frozen-1")

        self.influx.proc.send_signal(signal.SIGSTOP)
        frozen = time.time()
        time.sleep(0.3)  # a write under way at the freeze may still complete
        before = max(self.relay.sent_frames(aid))
        accepted0 = self.c.agent_info(aid)["frames"]["accepted"]
        time.sleep(FREEZE)
        info = self.c.agent_info(aid)
        self.assertGreater(info["frames"]["accepted"], accepted0 + 5,
                           "frames keep being accepted while the store is frozen")
        self.assertGreater(info["delivery"]["ack_lag_frames"], 5)
        late = [k for t, k in self.relay.acks if k.agent_id == aid and t > frozen + 0.3]
        self.assertTrue(late, "acks still go out (repeating the durable state)")
        for k in late:
            self.assertLessEqual(k.top, before, "an ack covered a frame that was not durable")

        self.influx.proc.send_signal(signal.SIGCONT)
        upto = max(self.relay.sent_frames(aid))

        def caught_up():
            k = self.relay.last_ack(aid)
            return k and all(k.covers(s) for s in range(1, upto + 1))
        ac.wait_until("acks after the freeze", caught_up, 60, self.c.read_log)

        # InfluxDB has each sample once, at its original time: the agent's
        # own measurement is one point per sample.
        frames = self.relay.sent_frames(aid)
        want = {f.ts for s, f in frames.items() if s <= upto and f.self_report() is not None}
        r = self.influx.query("SELECT frames_sent FROM agent WHERE vm_id = 'frozen-1'", db="acks")
        series = r["results"][0].get("series", [])
        got = [row[0] for row in series[0]["values"]] if series else []
        self.assertEqual(len(got), len(set(got)), "no sample twice")
        self.assertEqual(want - set(got), set(), "every sample up to seq %d stored" % upto)


    def test_acks_from_the_outbox_while_the_store_is_down(self):
        aid = self.start_agent("down-1")

        self.influx.proc.kill()  # connection refused from now on
        self.influx.proc.wait()
        time.sleep(FREEZE)
        upto = max(self.relay.sent_frames(aid)) - 2  # all but the newest sample

        def acked_while_down():
            k = self.relay.last_ack(aid)
            return k and all(k.covers(s) for s in range(1, upto + 1))
        ac.wait_until("acks of frames kept in the outbox", acked_while_down, 20,
                      self.c.read_log)
        m = self.c.metrics()
        self.assertGreater(m.get("pantala_outbox_spilled_frames_total", 0), 0, m)
        self.assertEqual(m.get("pantala_store_healthy", 0), 0)

        self.influx.log.close()
        self.influx.start()  # the same port and data directory
        frames = self.relay.sent_frames(aid)
        want = {f.ts for s, f in frames.items() if s <= upto and f.self_report() is not None}

        def stored():
            r = self.influx.query("SELECT frames_sent FROM agent WHERE vm_id = 'down-1'",
                                  db="acks")
            series = r["results"][0].get("series", [])
            got = [row[0] for row in series[0]["values"]] if series else []
            return got if want <= set(got) else None
        got = ac.wait_until("the outbox replayed into InfluxDB", stored, 60, self.c.read_log)
        self.assertEqual(len(got), len(set(got)), "no sample twice")


if __name__ == "__main__":
    unittest.main(verbosity=2)
