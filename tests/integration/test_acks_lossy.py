#!/usr/bin/env python3
"""Acknowledged delivery over a bad network: a real agent and a real
pantalad talk through a relay that drops 10 % of the datagrams both ways,
duplicates and reorders some. After the run, every sample the agent took is
in the store exactly once, with its original timestamp.

PT_ACK_LOSSY_SECONDS sets how long the agent runs (default 40 s; ctest runs 180 s in the gcc build; at a 100 ms
interval: about 400 samples; the issue asks for minutes: set it to 300 for
that).
"""
import os
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ack_common as ac  # noqa: E402

SECONDS = float(os.environ.get("PT_ACK_LOSSY_SECONDS", "40"))


class Lossy(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pt-acks-lossy-")
        self.c = ac.Collector(self.tmp)
        self.c.start()
        self.relay = None
        self.agent = None

    def tearDown(self):
        if self.agent:
            self.agent.stop()
        if self.relay:
            self.relay.stop()
        self.c.stop()
        if os.environ.get("PT_KEEP_TMP"):
            print("kept", self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def test_every_sample_once_through_a_lossy_relay(self):
        reg = self.c.register("lossy-1")
        self.relay = ac.Relay(self.c.udp, drop=0.10, dup=0.05, reorder=0.05, seed=8)
        self.relay.start()
        self.agent = ac.Agent(self.tmp, reg, self.relay.port, "agent", interval="100ms",
                              ring={"resend_after": "500ms"})
        self.agent.start()
        time.sleep(SECONDS)

        # Everything the agent sent so far must end up acknowledged: the
        # agent resends until the collector's acks (through the lossy
        # relay) cover it.
        upto = max(self.relay.sent_frames(self.agent.id))

        def all_acked():
            a = self.relay.last_ack(self.agent.id)
            return a and all(a.covers(s) for s in range(1, upto + 1))
        ac.wait_until("acks covering seqs 1..%d" % upto, all_acked, 60, self.c.read_log)
        self.agent.stop()

        frames = self.relay.sent_frames(self.agent.id)
        self.assertEqual(sorted(s for s in frames if s <= upto), list(range(1, upto + 1)),
                         "the agent numbered its frames 1, 2, 3, ...")
        # A sample whose parts are all <= upto is complete: its points must
        # all be in the store, once (a point is (series, ts): a second copy
        # would replace the first, so counting points per ts is exact).
        done = {f.ts for s, f in frames.items() if s <= upto}
        done -= {f.ts for s, f in frames.items() if s > upto}
        expected = ac.expected_points(frames)
        got = self.c.points("lossy-1")
        wrong = {ts: (expected[ts], got.get(ts)) for ts in done if got.get(ts) != expected[ts]}
        self.assertEqual(wrong, {}, "ts: (points sent, points stored)")
        # (a loaded CI machine may make the agent skip late ticks: at least half)
        self.assertGreaterEqual(len(done), SECONDS * 10 * 0.5, "samples taken at 100 ms")
        self.assertEqual(set(got) - set(expected), set(), "nothing the agent did not send")

        # The relay did its job, and the loss was repaired by resends.
        counts = self.relay.counts
        self.assertGreater(counts["dropped"], 0.05 * len(self.relay.frames), counts)
        self.assertGreater(counts["duplicated"], 0, counts)
        self.assertGreater(counts["reordered"], 0, counts)
        resent = sum(1 for _, f in self.relay.frames if f.agent_id == self.agent.id) - len(frames)
        self.assertGreater(resent, 0, "frames were resent")

        # Each seq accepted exactly once: what the collector accepted and
        # what it still counts as missing add up to the highest seq, and
        # duplicates (from the relay and from resends) were counted.
        info = ac.wait_until("the collector to settle", lambda: self._settled(), 10)
        fr = info["frames"]
        self.assertEqual(fr["accepted"] + fr["missing"], info["last_seq"], fr)
        self.assertGreater(fr["duplicate"], 0, fr)
        m = self.c.metrics()
        self.assertGreater(m['pantala_frames_total{outcome="duplicate"}'], 0)
        self.assertGreater(m["pantala_acks_sent_total"], 0)
        label = 'agent="%d",ns="ns01",mcis="acks",vm="lossy-1"' % self.agent.id
        self.assertGreaterEqual(m["pantala_agent_acked_seq{%s}" % label], upto)
        self.assertGreater(m["pantala_agent_resent_total{%s}" % label], 0)
        self.assertEqual(m['pantala_agent_frames_total{%s,outcome="accepted"}' % label],
                         fr["accepted"])
        d = info["delivery"]
        self.assertGreater(d["acks_sent"], 0)
        self.assertGreaterEqual(d["acked_seq"], upto)
        self.assertGreater(d["agent_resent"], 0, d)
        self.assertEqual(d["agent_ring_dropped"], 0, d)
        log = self.agent.read_log()
        self.assertIn("stopping:", log)
        self.assertNotIn("ring full", log)

    def _settled(self):
        a = self.c.agent_info(self.agent.id)
        time.sleep(0.3)
        b = self.c.agent_info(self.agent.id)
        return b if a["frames"] == b["frames"] else None


if __name__ == "__main__":
    unittest.main(verbosity=2)
