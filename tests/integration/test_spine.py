#!/usr/bin/env python3
"""End-to-end test of the spine: a real pantalad and a real pantala-agent on
loopback, talking msgpack/UDP, checked through the HTTP API.

Run by ctest with PANTALAD and PANTALA_AGENT pointing at the binaries.
Standard library only.
"""
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

from harness import AGENT, PANTALAD, Pantalad, UdpTee, remove_dir, wait_until

TOKEN = "integration-test-token-0123456789"


class Spine(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="pt-spine-")
        cls.pd = Pantalad(cls.dir, TOKEN, {"writer": {"flush": "100ms"}, "log": {"level": "info"}},
                          header="# written by test_spine.py", indent=1)
        cls.udp, cls.http, cls.api = cls.pd.udp, cls.pd.http, cls.pd.api
        cls.daemon = None
        cls.agent = None
        cls.start_daemon()
        # between agent and collector, keeping every datagram to replay real frames
        cls.recorder = UdpTee([cls.udp], keep=True, poll=0.2)
        cls.recorder.start()

    @classmethod
    def tearDownClass(cls):
        cls.recorder.running = False
        for p in (cls.agent, cls.daemon):
            if p and p.poll() is None:
                p.kill()
                p.wait()
        remove_dir(cls.dir)

    @classmethod
    def start_daemon(cls):
        cls.pd.start()
        cls.daemon = cls.pd.proc

    @classmethod
    def read_log(cls):
        return cls.pd.read_log()

    @classmethod
    def request(cls, method, path, body=None, token=TOKEN):
        return cls.pd.request(method, path, body, token=token)

    @classmethod
    def get(cls, path, token=TOKEN):
        return cls.request("GET", path, token=token)

    def metrics(self):
        return self.pd.metrics()

    def wait_for(self, what, fn, timeout=15):
        return wait_until(what, fn, timeout, self.read_log, interval=0.1)

    # ------------------------------------------------------------------ tests

    def test_01_health_and_auth(self):
        status, body = self.get("/healthz", token=None)
        self.assertEqual(status, 200)
        self.assertEqual(body["status"], "ok")
        self.assertEqual(body["store"], "sqlite")
        for token in (None, "wrong-token-wrong-token-wrong"):
            status, body = self.get("/api/v1/agents", token=token)
            self.assertEqual(status, 401)
            self.assertEqual(body["error"]["code"], "unauthorized")
        status, _ = self.get("/metrics", token=None)
        self.assertEqual(status, 401)
        status, body = self.get("/api/v1/nope")
        self.assertEqual(status, 404)
        self.assertEqual(body["error"]["code"], "not_found")
        status, body = self.request("PUT", "/api/v1/agents", {})
        self.assertEqual(status, 405)

    def test_02_register(self):
        cls = type(self)
        vm = "vm-%d" % random.randint(1, 10 ** 6)
        status, body = self.request("POST", "/api/v1/agents",
                                    {"ns": "ns01", "mcis": "mcis01", "vm": vm, "csp": "aws"})
        self.assertEqual(status, 201, body)
        self.assertEqual(len(body["key"]), 64)
        self.assertEqual(body["status"], "never")
        cls.agent_id = body["id"]
        cls.vm = vm
        cls.agent_conf = dict(body["agent_config"])
        self.assertEqual(cls.agent_conf["collector"], "127.0.0.1:%d" % cls.udp)
        # the same VM again: conflict, naming the existing id
        status, body = self.request("POST", "/api/v1/agents",
                                    {"ns": "ns01", "mcis": "mcis01", "vm": vm})
        self.assertEqual(status, 409)
        self.assertEqual(body["error"]["agent_id"], cls.agent_id)
        # bad bodies: 400 naming the key
        for bad, key in (({"ns": "a", "mcis": "b"}, '"vm"'),
                         ({"ns": "a", "mcis": "b", "vm": 5}, '"vm"'),
                         ({"ns": "a b", "mcis": "b", "vm": "c"}, '"ns"'),
                         ({"ns": "a", "mcis": "b", "vm": "c", "colour": "red"}, '"colour"')):
            status, body = self.request("POST", "/api/v1/agents", bad)
            self.assertEqual(status, 400, bad)
            self.assertIn(key, body["error"]["message"])
        status, body = self.request("POST", "/api/v1/agents", b"{not json")
        self.assertEqual(status, 400)
        self.assertIn("invalid JSON", body["error"]["message"])
        # the key is never shown again
        status, body = self.get("/api/v1/agents/%d" % cls.agent_id)
        self.assertEqual(status, 200)
        self.assertNotIn("key", body)

    def test_03_agent_reports(self):
        cls = type(self)
        conf = dict(cls.agent_conf)
        conf["collector"] = "127.0.0.1:%d" % cls.recorder.port  # through the recorder
        conf["interval"] = "1s"
        path = os.path.join(cls.dir, "agent.json")
        with open(path, "w") as f:
            json.dump(conf, f)
        os.chmod(path, 0o600)
        with open(os.path.join(cls.dir, "agent.log"), "ab") as log:
            cls.agent = subprocess.Popen([AGENT, "--config", path], stdout=log,
                                         stderr=subprocess.STDOUT)
        vm_path = "/api/v1/ns/ns01/mcis/mcis01/vm/%s" % cls.vm
        cls.vm_path = vm_path

        def has_two_samples():
            status, body = self.get(vm_path + "/metrics/cpu?fields=cpu_utilization&from=now-5m")
            if status != 200 or not body["series"]:
                return None
            rows = body["series"][0]["values"]
            return body if len(rows) >= 2 else None

        body = self.wait_for("two cpu samples", has_two_samples, timeout=20)
        for t, v in body["series"][0]["values"]:
            self.assertIsInstance(v, float)
            self.assertGreaterEqual(v, 0.0)
            self.assertLessEqual(v, 100.0)
        # latest: cpu and memory with plausible values
        status, body = self.get(vm_path + "/latest")
        self.assertEqual(status, 200, body)
        by_name = {m["name"]: m for m in body["measurements"]}
        self.assertIn("cpu", by_name)
        self.assertIn("memory", by_name)
        cpu = by_name["cpu"]["fields"]
        mem = by_name["memory"]["fields"]
        self.assertTrue(0.0 <= cpu["cpu_utilization"] <= 100.0)
        self.assertEqual(cpu["cpu_num"], os.cpu_count())
        with open("/proc/meminfo") as f:
            memtotal_kib = int(next(l for l in f if l.startswith("MemTotal:")).split()[1])
        self.assertEqual(mem["mem_total"], memtotal_kib * 1024)
        self.assertIsInstance(mem["mem_total"], int)
        self.assertTrue(0.0 <= mem["mem_utilization"] <= 100.0)
        self.assertLessEqual(mem["mem_used"], mem["mem_total"])
        # aggregation over the range
        status, body = self.get(vm_path + "/metrics/memory?fields=mem_total,mem_utilization"
                                "&from=now-5m&step=1h&agg=max")
        self.assertEqual(status, 200, body)
        row = body["series"][0]["values"][-1]
        self.assertEqual(body["series"][0]["columns"], ["time", "mem_total", "mem_utilization"])
        self.assertEqual(row[1], memtotal_kib * 1024)
        # the agent is up and counted
        status, a = self.get("/api/v1/agents/%d" % cls.agent_id)
        self.assertEqual(a["status"], "up")
        self.assertGreaterEqual(a["frames"]["accepted"], 2)
        self.assertTrue(a["address"].startswith("127.0.0.1:"))

    # The 53 required names of METRICS.md, by measurement.
    CATALOG = {
        "cpu": ["cpu_utilization", "cpu_user", "cpu_nice", "cpu_system", "cpu_idle", "cpu_iowait",
                "cpu_hintr", "cpu_sintr", "cpu_steal", "cpu_guest", "cpu_guest_nice", "cpu_num",
                "uptime", "contexts", "proc_run", "proc_total", "load_avg_1m", "load_avg_5m",
                "load_avg_15m"],
        "cpufreq": ["cpu_speed"],
        "memory": ["mem_utilization", "mem_total", "mem_used", "mem_free", "mem_shared",
                   "mem_buffers", "mem_cached", "swap_utilization", "swap_total", "swap_used",
                   "swap_free", "page_in", "page_out", "swap_in", "swap_out"],
        "disk": ["disk_utilization", "disk_total", "disk_used", "disk_free"],
        "diskio": ["kb_read", "kb_written", "ops_read", "ops_write", "read_time", "write_time"],
        "network": ["bytes_in", "bytes_out", "pkts_in", "pkts_out", "err_in", "err_out",
                    "drop_in", "drop_out"],
    }
    TOTAL_TAG = {"disk": "mount", "diskio": "device", "network": "interface"}

    def test_03b_full_catalog_through_the_collector(self):
        """Every one of the 53 names arrives from the real agent and can be
        queried, per object and as the total series."""
        cls = type(self)
        self.assertEqual(sum(len(v) for v in self.CATALOG.values()), 53)

        def complete():
            status, body = self.get(cls.vm_path + "/latest")
            if status != 200:
                return None
            got = {}
            for m in body["measurements"]:
                got.setdefault(m["name"], set()).update(m["fields"])
            missing = [(n, f) for n, fs in self.CATALOG.items() for f in fs
                       if f not in got.get(n, ())]
            return body if not missing else None

        body = self.wait_for("all 53 names in latest", complete, timeout=20)
        for name, key in self.TOTAL_TAG.items():
            series = [m for m in body["measurements"] if m["name"] == name]
            totals = [m for m in series if m["tags"].get(key) == "total"]
            self.assertEqual(len(totals), 1, "%s has a %s=total series" % (name, key))
            self.assertGreaterEqual(len(series), 2, "%s: per-object series and total" % name)
            # Every field of the total is also queryable over a range.
            for field in self.CATALOG[name]:
                status, r = self.get(cls.vm_path + "/metrics/%s?fields=%s&tag=%s:total&from=now-5m"
                                     % (name, field, key))
                self.assertEqual(status, 200, r)
                self.assertEqual(len(r["series"]), 1, "%s.%s total" % (name, field))
                self.assertTrue(r["series"][0]["values"], "%s.%s has values" % (name, field))
        units = {m["name"]: m for m in body["measurements"]}
        self.assertGreater(units["cpufreq"]["fields"]["cpu_speed"], 0)

    def test_04_garbage_and_replays_are_counted(self):
        cls = type(self)
        before = self.metrics()
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        dest = ("127.0.0.1", cls.udp)
        rnd = random.Random(7)
        for _ in range(50):
            s.sendto(bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 300))), dest)
        real = cls.recorder.frames[-1]
        for cut in (1, 5, len(real) // 2, len(real) - 1):
            s.sendto(real[:cut], dest)
        tampered = bytearray(real)
        tampered[-1] ^= 0xFF
        s.sendto(bytes(tampered), dest)
        s.sendto(b"\x91\x07", dest)  # version 7
        s.sendto(b"", dest)
        replays = cls.recorder.frames[:3]
        for frame in replays:
            s.sendto(frame, dest)

        def settled():
            m = self.metrics()
            got = m['pantala_datagrams_received_total'] - before['pantala_datagrams_received_total']
            return m if got >= 50 + 4 + 1 + 1 + 1 + len(replays) else None

        after = self.wait_for("garbage to be counted", settled)
        d = lambda k: after[k] - before.get(k, 0)  # noqa: E731
        rejected = d('pantala_frames_total{outcome="rejected"}')
        self.assertGreaterEqual(rejected, 50 + 4 + 1 + 1 + 1)
        self.assertGreaterEqual(d('pantala_frames_rejected_total{reason="auth"}'), 1)
        self.assertGreaterEqual(d('pantala_frames_rejected_total{reason="truncated"}'), 3)
        self.assertGreaterEqual(d('pantala_frames_rejected_total{reason="version"}'), 1)
        self.assertEqual(d('pantala_frames_total{outcome="duplicate"}'), len(replays))
        reasons = sum(v for k, v in after.items()
                      if k.startswith("pantala_frames_rejected_total"))
        self.assertEqual(reasons, after['pantala_frames_total{outcome="rejected"}'])
        status, body = self.get("/healthz", token=None)
        self.assertEqual(status, 200)
        status, a = self.get("/api/v1/agents/%d" % cls.agent_id)
        self.assertGreaterEqual(a["frames"]["duplicate"], len(replays))
        self.assertGreaterEqual(a["frames"]["rejected"], 1)  # the tampered frame

    def test_05_bad_query_parameters(self):
        p = type(self).vm_path + "/metrics/cpu"
        for q, word in (("?step=abc", "step"), ("?agg=median&step=1m", "agg"),
                        ("?from=yesterday", "from"), ("?to=soon", "to"),
                        ("?from=now&to=now-1h", "before"), ("?agg=max", "step"),
                        ("?stepp=1m", "stepp"), ("?fields=", "fields"),
                        ("?fields=" + ",".join(["cpu_utilization"] * 200), "fields"),
                        ("?step=0s", "step")):
            status, body = self.get(p + q)
            self.assertEqual(status, 400, q)
            self.assertEqual(body["error"]["code"], "bad_request")
            self.assertIn(word, body["error"]["message"], q)
        status, body = self.get("/api/v1/ns/ns01/mcis/mcis01/vm/no-such-vm/latest")
        self.assertEqual(status, 404)
        status, body = self.get("/api/v1/agents/abc")
        self.assertEqual(status, 400)
        status, body = self.get("/api/v1/agents/999")
        self.assertEqual(status, 404)
        # a path too long to route is refused, never cut short
        status, body = self.get("/api/v1/agents/" + "1" * 2000)
        self.assertEqual(status, 414)
        self.assertEqual(body["error"]["code"], "uri_too_long")

    def test_06_prometheus_text(self):
        status, text = self.get("/metrics")
        self.assertEqual(status, 200)
        for name in ("pantala_frames_total", "pantala_write_queue_depth",
                     "pantala_store_batch_points_bucket", "pantala_store_write_seconds_count",
                     "process_resident_memory_bytes"):
            self.assertIn(name, text)
        m = self.metrics()
        self.assertGreater(m["pantala_points_written_total"], 0)
        self.assertEqual(m['pantala_points_dropped_total{reason="queue_full"}'], 0)

    def test_07_agent_survives_collector_outage(self):
        cls = type(self)
        status, a = self.get("/api/v1/agents/%d" % cls.agent_id)
        accepted_before = a["frames"]["accepted"]
        cls.daemon.send_signal(signal.SIGTERM)
        self.assertEqual(cls.daemon.wait(timeout=15), 0)
        self.assertIn("stopped:", self.read_log())
        # the agent keeps running without spinning while nobody listens
        def cpu_seconds(pid):
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        c0 = cpu_seconds(cls.agent.pid)
        time.sleep(3)
        self.assertIsNone(cls.agent.poll(), "agent died while the collector was down")
        self.assertLess(cpu_seconds(cls.agent.pid) - c0, 0.3, "agent busy-loops")
        cls.start_daemon()
        # state survived the restart and new frames are accepted again
        def resumed():
            status, a2 = self.get("/api/v1/agents/%d" % cls.agent_id)
            return a2 if a2["frames"]["accepted"] > accepted_before + 1 else None
        a2 = self.wait_for("frames after the restart", resumed, timeout=20)
        self.assertGreaterEqual(a2["frames"]["missing"], 1)  # the outage shows as a gap
        def stored():
            status, body = self.get(cls.vm_path + "/metrics/cpu?fields=cpu_num&from=now-5m")
            return body if len(body["series"][0]["values"]) >= 4 else None
        self.wait_for("samples stored after the restart", stored, timeout=10)

    def test_08_delete_agent(self):
        cls = type(self)
        before = self.metrics()
        status, _ = self.request("DELETE", "/api/v1/agents/%d" % cls.agent_id)
        self.assertEqual(status, 204)
        status, _ = self.get("/api/v1/agents/%d" % cls.agent_id)
        self.assertEqual(status, 404)

        def refused():
            m = self.metrics()
            k = 'pantala_frames_rejected_total{reason="unknown_agent"}'
            return m if m[k] > before[k] else None
        self.wait_for("frames of the deleted agent to be refused", refused)
        # its data stays queryable
        status, body = self.get(cls.vm_path + "/latest")
        self.assertEqual(status, 200)
        self.assertTrue(body["measurements"])


if __name__ == "__main__":
    for path in (PANTALAD, AGENT):
        if not os.access(path, os.X_OK):
            sys.exit("missing executable %s (set PANTALAD / PANTALA_AGENT)" % path)
    unittest.main(verbosity=2)
