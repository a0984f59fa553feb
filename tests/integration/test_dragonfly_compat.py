#!/usr/bin/env python3
"""The CB-Dragonfly compatible API (/dragonfly, docs/cb-dragonfly-compat.md)
driven the way CB-Tumblebug drives CB-Dragonfly, against a real pantalad:

- GET /dragonfly/healthcheck and /dragonfly/config (CheckDragonflyEndpoint),
  PUT /dragonfly/config as form fields and as JSON, reset, persistence;
- POST /dragonfly/agent with the private key in the body, for a VM that is a
  real OpenSSH server started here on loopback (its own host key, a test
  user, the tarball installed into that user's prefix, no root): the answer
  comes when the collector has the agent's first frame, and no copy of the
  key is left behind;
- GET .../ondemand-monitoring-info for cpu, mem, disk, net, reading what
  CB-Tumblebug reads (values.cpu_utilization, mem_utilization,
  disk_utilization, bytes_out), checked against Pantala's own /latest;
- GET .../metric/{metric}/info for every periodType and statisticsCriteria,
  bucket by bucket against Pantala's own range query; duration < 2m is 400;
- agent metadata; auth; DELETE /dragonfly/agent uninstalls;
- alert tasks through /dragonfly/alert: one with alert_event_type "post"
  fires to a local receiver, warning then critical after the counts of
  consecutive samples; its events; a slack event handler used by a task;
- a second daemon with compat.auth "none" (open) and compat.enabled false.

Shapes are asserted field by field. Environment: PANTALAD, PANTALA_AGENT,
PT_SOURCE_DIR. Skips (exit 0) without sshd or ssh-keygen.
"""
import glob
import json
import os
import shutil
import socket
import sys
import tempfile
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
from webhook_receiver import Receiver  # noqa: E402

import harness  # noqa: E402
from harness import AGENT, Pantalad, Sshd, free_port, have_sshd, remove_dir, run, \
    stop_process  # noqa: E402

SRC = os.environ.get("PT_SOURCE_DIR", ".")
TOKEN = "dragonfly-compat-test-token-0123456789"
NS, MCIS, VM, CSP = "tb-ns", "tb-mcis", "tb-vm-1", "aws"

CONFIG_KEYS = {"mcis_agent_interval": int, "mcis_collector_interval": int,
               "mck8s_agent_interval": int, "mck8s_collector_interval": int,
               "max_host_count": int, "monitoring_policy": str, "default_policy": str,
               "puller_interval": int, "puller_aggregate_interval": int,
               "aggregate_type": str, "deploy_type": str}
# CB-Dragonfly's value names per metric (pkg/core/metric/ondemand_metric.go).
ONDEMAND = {
    "cpu": ("cpu", "cpu", ["cpu_utilization", "cpu_system", "cpu_idle", "cpu_iowait",
                           "cpu_hintr", "cpu_sintr", "cpu_user", "cpu_nice", "cpu_steal",
                           "cpu_guest", "cpu_guest_nice"]),
    "mem": ("mem", "memory", ["mem_utilization", "mem_total", "mem_used", "mem_free",
                              "mem_shared", "mem_buffers", "mem_cached"]),
    "disk": ("disk", "disk", ["disk_utilization", "disk_total", "disk_used", "disk_free",
                              "kb_read", "kb_written", "ops_read", "ops_write"]),
    "net": ("net", "network", ["bytes_in", "bytes_out", "pkts_in", "pkts_out"]),
}
# where each value lives in Pantala: measurement and series tag
SOURCE = {"cpu_": ("cpu", None), "mem_": ("memory", None), "disk_": ("disk", ("mount", "total")),
          "kb_": ("diskio", ("device", "total")), "ops_": ("diskio", ("device", "total")),
          "bytes_": ("network", ("interface", "total")), "pkts_": ("network", ("interface", "total"))}


def source(field):
    for prefix, src in SOURCE.items():
        if field.startswith(prefix):
            return src
    raise KeyError(field)


def http(base, method, path, body=None, token=TOKEN, form=False, timeout=10):
    """harness.http with this test's token; JSON back (None when empty)."""
    return harness.http(base, method, path, body, token=token, form=form, timeout=timeout,
                        decode="json")


class DragonflyCompat(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="pt-df-")
        os.chmod(cls.dir, 0o755)
        cls.procs = []
        cls.sshd = None
        cls.start_sshd()
        cls.prefix = os.path.join(cls.home, "pantala-df")
        cls.pkgs = os.path.join(cls.dir, "pkgs")
        os.makedirs(cls.pkgs)
        r = run(os.path.join(SRC, "packaging", "tarball", "make-tarball.sh"), AGENT, cls.pkgs)
        assert r.returncode == 0, r.stderr
        for root, dirs, files in os.walk(cls.pkgs):
            for n in dirs + files:
                os.chmod(os.path.join(root, n), 0o755)
        cls.udp = free_port(socket.SOCK_DGRAM)
        cls.pd = Pantalad(cls.dir, TOKEN, {
            "writer": {"flush": "100ms"},
            "provisioning": {"known_hosts": os.path.join(cls.dir, "known_hosts"),
                             "packages": cls.pkgs, "accept_new": True,
                             "collector": "127.0.0.1:%d" % cls.udp},
            "compat": {"agent_prefix": cls.prefix}}, udp=cls.udp)
        cls.api, cls.data = cls.pd.api, cls.pd.data
        cls.procs.append(cls.pd.start().proc)

    @classmethod
    def start_sshd(cls):
        cls.sshd = Sshd(cls.dir, "ptdf")
        cls.procs.append(cls.sshd.proc)
        cls.user, cls.home, cls.ssh_port = cls.sshd.user, cls.sshd.home, cls.sshd.port

    @classmethod
    def tearDownClass(cls):
        # The agent runs as the test user from the prefix: stop it if a test
        # failed before uninstalling.
        if os.path.exists(os.path.join(cls.prefix, "bin")):
            cls.call("DELETE", "/dragonfly/agent", cls.agent_body(), timeout=120)
        for p in cls.procs:
            stop_process(p, timeout=10)
        if cls.sshd:
            cls.sshd.remove_user()
        remove_dir(cls.dir)

    # ---- helpers --------------------------------------------------------------

    @classmethod
    def call(cls, method, path, body=None, **kw):
        return http(cls.api, method, path, body, **kw)

    @classmethod
    def agent_body(cls):
        with open(os.path.join(cls.dir, "id")) as f:
            pem = f.read()
        # exactly the members CB-Tumblebug sends (monAgentInstallReq)
        return {"ns_id": NS, "mcis_id": MCIS, "vm_id": VM, "public_ip": "127.0.0.1",
                "port": str(cls.ssh_port), "user_name": cls.user, "ssh_key": pem,
                "cspType": CSP, "service_type": "mcis"}

    def assert_message(self, doc):
        self.assertIsInstance(doc, dict)
        self.assertEqual(list(doc.keys()), ["message"], doc)
        self.assertIsInstance(doc["message"], str)
        self.assertTrue(doc["message"])

    def ondemand(self, metric):
        return self.call("GET", "/dragonfly/ns/%s/mcis/%s/vm/%s/agent_ip/127.0.0.1/metric/%s/"
                                "ondemand-monitoring-info" % (NS, MCIS, VM, metric))

    def latest(self):
        status, doc = self.call("GET", "/api/v1/ns/%s/mcis/%s/vm/%s/latest" % (NS, MCIS, VM))
        self.assertEqual(status, 200, doc)
        return doc

    # ---- the sequence ---------------------------------------------------------

    def test_1_config(self):
        status, doc = self.call("GET", "/dragonfly/healthcheck")
        self.assertEqual((status, doc), (204, None))
        status, doc = self.call("GET", "/dragonfly/config")
        self.assertEqual(status, 200, doc)
        self.assertEqual(set(doc), set(CONFIG_KEYS))
        for k, t in CONFIG_KEYS.items():
            self.assertIsInstance(doc[k], t, k)
        self.assertEqual(doc["mcis_agent_interval"], 1)  # Pantala's agent default, 1 s

        # CB-Dragonfly's PUT takes form fields; JSON works too. Echoed whole.
        status, doc = self.call("PUT", "/dragonfly/config",
                                {"mcis_agent_interval": "2", "max_host_count": "50"}, form=True)
        self.assertEqual(status, 200, doc)
        self.assertEqual((doc["mcis_agent_interval"], doc["max_host_count"]), (2, 50))
        self.assertEqual(set(doc), set(CONFIG_KEYS))
        status, doc = self.call("PUT", "/dragonfly/config", {"aggregate_type": "max"})
        self.assertEqual((status, doc["aggregate_type"], doc["mcis_agent_interval"]),
                         (200, "max", 2))
        with open(os.path.join(self.data, "dragonfly.json")) as f:
            saved = json.load(f)["config"]
        self.assertEqual((saved["mcis_agent_interval"], saved["aggregate_type"]), (2, "max"))
        self.assertEqual(os.stat(os.path.join(self.data, "dragonfly.json")).st_mode & 0o777, 0o600)

        # Bad values are refused, naming the key, and change nothing.
        for bad in ({"mcis_agent_interval": "0"}, {"mcis_agent_interval": "fast"},
                    {"agent_intervall": "5"}):
            status, doc = self.call("PUT", "/dragonfly/config", bad, form=True)
            self.assertEqual(status, 400, doc)
            self.assert_message(doc)
            self.assertIn(list(bad)[0], doc["message"])
        status, doc = self.call("GET", "/dragonfly/config")
        self.assertEqual(doc["mcis_agent_interval"], 2)

        status, doc = self.call("PUT", "/dragonfly/config/reset")
        self.assertEqual((status, doc["mcis_agent_interval"], doc["aggregate_type"]),
                         (200, 1, "avg"))

        # Auth follows the API: no token, no answer.
        status, doc = self.call("GET", "/dragonfly/config", token=None)
        self.assertEqual(status, 401)
        self.assert_message(doc)
        status, doc = self.call("GET", "/dragonfly/nothing")
        self.assertEqual(status, 404)
        self.assert_message(doc)
        status, doc = self.call("POST", "/dragonfly/config", {"x": 1})
        self.assertEqual(status, 405)
        self.assert_message(doc)

    def test_2_install(self):
        # Bad requests first: each names what is wrong, nothing is installed.
        body = self.agent_body()
        del body["ssh_key"]
        status, doc = self.call("POST", "/dragonfly/agent", body)
        self.assertEqual(status, 400, doc)
        self.assertIn("ssh_key", doc["message"])
        body = dict(self.agent_body(), vm_id="bad vm")
        status, doc = self.call("POST", "/dragonfly/agent", body)
        self.assertEqual(status, 400, doc)
        self.assertIn("vm_id", doc["message"])

        # A key the VM does not accept: 500 naming the cause, rolled back.
        with open(os.path.join(self.dir, "wrong_id")) as f:
            body = dict(self.agent_body(), ssh_key=f.read())
        status, doc = self.call("POST", "/dragonfly/agent", body, timeout=120)
        self.assertEqual(status, 500, doc)
        self.assert_message(doc)
        self.assertIn("agent installation failed", doc["message"])
        self.assertIn("refused the key", doc["message"])
        self.assertEqual(glob.glob(os.path.join(self.data, ".dragonfly-key-*")), [])

        t0 = time.time()
        status, doc = self.call("POST", "/dragonfly/agent", self.agent_body(), timeout=480)
        took = time.time() - t0
        if status != 200:
            with open(os.path.join(self.dir, "pantalad.log")) as f:
                self.fail("install failed: %s\n%s" % (doc, f.read()[-3000:]))
        self.assertEqual(doc, {"message": "agent installation is finished"})
        # It answered once the collector had the agent's first frame.
        status, doc = self.call("GET", "/api/v1/agents?ns=" + NS)
        agents = [a for a in doc["agents"] if a["vm"] == VM]
        self.assertEqual(len(agents), 1)
        self.assertEqual((agents[0]["mcis"], agents[0]["csp"]), (MCIS, CSP))
        self.assertGreater(agents[0]["frames"]["accepted"], 0)
        self.assertTrue(os.path.exists(os.path.join(self.prefix, "bin", "pantala-agent")))
        self.assertLess(took, 120)
        # The key was only a temporary file for the job.
        self.assertEqual(glob.glob(os.path.join(self.data, ".dragonfly-key-*")), [])
        # Counted at /metrics.
        status, text = self.pd.request("GET", "/metrics", decode="text")
        self.assertEqual(status, 200, text)
        self.assertIn('pantala_compat_agent_jobs_total{action="install",outcome="ok"} 1\n', text)
        self.assertIn('pantala_compat_agent_jobs_total{action="install",outcome="failed"} 1\n',
                      text)
        self.assertRegex(text, r'pantala_compat_requests_total\{class="client_error"\} [1-9]')

    def test_3_ondemand(self):
        # Rates need two readings: wait until the network rates are there.
        deadline = time.time() + 20
        while time.time() < deadline:
            status, doc = self.ondemand("net")
            if status == 200 and doc["values"]["bytes_out"] is not None:
                break
            time.sleep(0.5)
        for metric, (name, _, fields) in ONDEMAND.items():
            for attempt in range(5):  # a new sample may land between two reads
                before = self.latest()
                status, doc = self.ondemand(metric)
                after = self.latest()
                if before == after:
                    break
            self.assertEqual(status, 200, doc)
            self.assertEqual(set(doc), {"name", "tags", "values", "time"})
            self.assertEqual(doc["name"], name)
            self.assertEqual(doc["tags"], {"nsId": NS, "mcisId": MCIS, "vmId": VM,
                                           "osType": doc["tags"]["osType"], "cspType": CSP})
            self.assertRegex(doc["tags"]["osType"], r"^linux|debian|ubuntu")
            self.assertEqual(set(doc["values"]), set(fields))
            # Each value is Pantala's own latest value of the same field.
            by = {(m["name"], tuple(sorted(m["tags"].items()))): m for m in after["measurements"]}
            for f in fields:
                meas, tag = source(f)
                m = by[(meas, (tag,) if tag else ())]
                self.assertEqual(doc["values"][f], m["fields"][f], f)
                self.assertIsInstance(doc["values"][f], (int, float), f)
            self.assertRegex(doc["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        # What CB-Tumblebug reads.
        for metric, key in (("cpu", "cpu_utilization"), ("mem", "mem_utilization"),
                            ("disk", "disk_utilization"), ("net", "bytes_out")):
            status, doc = self.ondemand(metric)
            v = doc["values"][key]
            self.assertIsInstance(v, (int, float))
            self.assertGreaterEqual(v, 0)
            if key != "bytes_out":
                self.assertLessEqual(v, 100)
        self.assertGreater(self.ondemand("mem")[1]["values"]["mem_total"], 0)
        # The long names are accepted too; cpufreq where the VM has it.
        self.assertEqual(self.ondemand("memory")[0], 200)
        self.assertEqual(self.ondemand("network")[0], 200)
        # An empty agent_ip (CB-Tumblebug without the VM's address) works.
        status, doc = self.call("GET", "/dragonfly/ns/%s/mcis/%s/vm/%s/agent_ip//metric/cpu/"
                                       "ondemand-monitoring-info" % (NS, MCIS, VM))
        self.assertEqual(status, 200, doc)
        status, doc = self.ondemand("gpu")
        self.assertEqual(status, 404)
        self.assert_message(doc)
        status, doc = self.call("GET", "/dragonfly/ns/%s/mcis/%s/vm/nope/agent_ip/1.2.3.4/metric/"
                                       "cpu/ondemand-monitoring-info" % (NS, MCIS))
        self.assertEqual(status, 404)
        self.assert_message(doc)

    def info(self, metric, period, crit, duration):
        return self.call("GET", "/dragonfly/ns/%s/mcis/%s/vm/%s/metric/%s/info?periodType=%s"
                                "&statisticsCriteria=%s&duration=%s"
                         % (NS, MCIS, VM, metric, period, crit, duration))

    def pantala_range(self, meas, tag, field, step, agg, t_from, t_to):
        q = {"fields": field, "from": t_from, "to": t_to, "step": step, "agg": agg}
        if tag:
            q["tag"] = "%s:%s" % tag
        status, doc = self.call("GET", "/api/v1/ns/%s/mcis/%s/vm/%s/metrics/%s?%s"
                                % (NS, MCIS, VM, meas, urllib.parse.urlencode(q)))
        self.assertEqual(status, 200, doc)
        series = [s for s in doc["series"] if (s["tags"] == ({tag[0]: tag[1]} if tag else {}))]
        return {row[0]: row[1] for row in series[0]["values"]} if series else {}

    def test_4_info(self):
        step = {"m": 60, "h": 3600, "d": 86400}
        duration = {"m": "10m", "h": "3h", "d": "2d"}
        for period in "mhd":
            for crit in ("min", "max", "avg", "last"):
                for metric, (_, name, fields) in ONDEMAND.items():
                    for attempt in range(5):  # equal twice in a row: no sample landed between
                        status, doc = self.info(metric, period, crit, duration[period])
                        self.assertEqual(status, 200, (metric, period, crit, doc))
                        now = time.time()
                        expect = {}
                        first, last = doc["values"][0]["time"], doc["values"][-1]["time"]
                        to = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                           time.gmtime(int(now) // step[period] * step[period]
                                                       + step[period]))
                        for f in fields:
                            meas, tag = source(f)
                            expect[f] = self.pantala_range(meas, tag, f, "%ds" % step[period],
                                                           crit, first, to)
                        status2, doc2 = self.info(metric, period, crit, duration[period])
                        if doc2 == doc:
                            break
                    self.assertEqual(doc["name"], name)
                    self.assertEqual(doc["tags"], {"vmId": VM})
                    rows = doc["values"]
                    # every bucket of the range, oldest first, aligned to the period
                    secs = [time.mktime(time.strptime(r["time"], "%Y-%m-%dT%H:%M:%SZ")) for r in rows]
                    self.assertTrue(all(b - a == step[period] for a, b in zip(secs, secs[1:])))
                    self.assertTrue(all(s % step[period] == 0 for s in
                                        [int(x - time.mktime(time.gmtime(0))) for x in secs]))
                    self.assertGreaterEqual(len(rows), {"m": 10, "h": 3, "d": 2}[period])
                    self.assertLessEqual(len(rows), {"m": 12, "h": 5, "d": 4}[period])
                    for r in rows:
                        self.assertEqual(set(r), {"time"} | set(fields))
                        for f in fields:
                            # Pantala's own figure for the bucket, or 0 for an empty one
                            want = expect[f].get(r["time"])
                            self.assertAlmostEqual(r[f], want if want is not None else 0,
                                                   places=6, msg=(metric, period, crit, f, r["time"]))
                    # The agent has reported in the last bucket of every period.
                    self.assertIsNotNone(expect[fields[0]].get(rows[-1]["time"]),
                                         (metric, period, crit))
                    if period == "m":  # the agent is minutes old: the first buckets are empty
                        self.assertTrue(all(rows[0][f] == 0 for f in fields))
        # What CB-Dragonfly refuses too.
        for query, word in (("periodType=m&statisticsCriteria=avg&duration=1m", "duration"),
                            ("periodType=s&statisticsCriteria=avg&duration=10m", "periodType"),
                            ("periodType=m&statisticsCriteria=p99&duration=10m",
                             "statisticsCriteria"),
                            ("periodType=m&statisticsCriteria=avg", "duration")):
            status, doc = self.call("GET", "/dragonfly/ns/%s/mcis/%s/vm/%s/metric/cpu/info?%s"
                                    % (NS, MCIS, VM, query))
            self.assertEqual(status, 400, query)
            self.assert_message(doc)
            self.assertIn(word, doc["message"])

    def test_5_metadata(self):
        uuid = "%s_mcis_%s_%s_%s" % (NS, MCIS, VM, CSP)
        status, doc = self.call("GET", "/dragonfly/agents/metadata")
        self.assertEqual(status, 200, doc)
        self.assertIn(uuid, doc)
        info = doc[uuid]
        self.assertEqual(set(info), {"service_type", "ns_id", "mcis_id", "vm_id", "cspType",
                                     "agent_type", "agent_state", "agent_health",
                                     "agent_unhealthy_resp_cnt", "public_ip", "mck8s_id"})
        self.assertEqual((info["service_type"], info["ns_id"], info["mcis_id"], info["vm_id"],
                          info["cspType"], info["agent_state"], info["agent_health"],
                          info["public_ip"]),
                         ("mcis", NS, MCIS, VM, CSP, "enable", "healthy", "127.0.0.1"))
        for ns_key in ("ns", "ns_id"):
            status, one = self.call("GET", "/dragonfly/agent/metadata?%s=%s&service_type=mcis"
                                           "&service_id=%s&vm_id=%s&csp_type=%s"
                                    % (ns_key, NS, MCIS, VM, CSP))
            self.assertEqual((status, one), (200, info))
        status, doc = self.call("PUT", "/dragonfly/agent/metadata",
                                {"ns_id": NS, "mcis_id": MCIS, "vm_id": VM, "cspType": CSP,
                                 "service_type": "mcis", "public_ip": "10.0.0.7"})
        self.assertEqual((status, doc["public_ip"]), (200, "10.0.0.7"))
        status, doc = self.call("GET", "/dragonfly/agent/metadata?ns=%s&service_type=mcis"
                                       "&service_id=%s&vm_id=nope&csp_type=%s" % (NS, MCIS, CSP))
        self.assertEqual(status, 404)
        self.assert_message(doc)
        status, doc = self.call("GET", "/dragonfly/agent/metadata?ns=%s" % NS)
        self.assertEqual(status, 400)
        self.assert_message(doc)

    def test_6_alerts(self):
        task_keys = {"name", "measurement", "target_type", "target_id", "event_duration", "metric",
                     "alert_math_expression", "alert_threshold", "warn_event_cnt",
                     "critic_event_cnt", "alert_event_type", "alert_event_name",
                     "alert_event_message", "alert_post_url"}
        with Receiver() as rcv:
            # As CB-Dragonfly reads it: form fields. cpu_utilization >= 0
            # holds for every sample: warning after 1 more matching sample,
            # critical after 3 (Kapacitor's state_count > N).
            task = {"name": "cpu-busy", "measurement": "cpu", "target_type": "vm",
                    "target_id": VM, "event_duration": "1s", "metric": "cpu_utilization",
                    "alert_math_expression": "equalgreater", "alert_threshold": "0",
                    "warn_event_cnt": "1", "critic_event_cnt": "3", "alert_event_type": "post",
                    "alert_event_name": "tb", "alert_event_message": "CPU is busy",
                    "alert_post_url": rcv.url + "/hook"}
            t0 = time.time()
            status, doc = self.call("POST", "/dragonfly/alert/task", task, form=True)
            self.assertEqual(status, 200, doc)
            self.assertEqual(set(doc), task_keys)
            self.assertEqual((doc["name"], doc["measurement"], doc["target_id"],
                              doc["alert_threshold"], doc["warn_event_cnt"],
                              doc["critic_event_cnt"], doc["alert_event_type"]),
                             ("cpu-busy", "cpu", VM, 0.0, 1, 3, "post"))
            status, again = self.call("POST", "/dragonfly/alert/task", task, form=True)
            self.assertEqual(status, 409)
            self.assert_message(again)

            def fired(level):
                return [q for q in rcv.requests if q.json and q.json.get("status") == "firing"
                        and q.json.get("level") == level]
            self.assertTrue(rcv.wait_for(lambda reqs: fired("critical"), timeout=20),
                            [q.json for q in rcv.requests])
            warn, crit = fired("warning")[0], fired("critical")[0]
            self.assertEqual(warn.path, "/hook")
            self.assertEqual(warn.json["rule"], "dragonfly-cpu-busy-warning")
            self.assertEqual(crit.json["rule"], "dragonfly-cpu-busy-critical")
            self.assertEqual(crit.json["labels"]["vm"], VM)
            self.assertIn("CPU is busy", crit.json["annotations"]["summary"])
            # warning after ~1 interval of matching samples, critical after ~3
            self.assertLess(warn.t, crit.t)
            self.assertGreaterEqual(crit.t - t0, 2.0)

            status, doc = self.call("GET", "/dragonfly/alert/task/cpu-busy")
            self.assertEqual((status, doc["name"], set(doc)), (200, "cpu-busy", task_keys))
            status, doc = self.call("GET", "/dragonfly/alert/tasks")
            self.assertEqual((status, [t["name"] for t in doc]), (200, ["cpu-busy"]))
            status, events = self.call("GET", "/dragonfly/alert/task/cpu-busy/events")
            self.assertEqual(status, 200, events)
            self.assertGreaterEqual(len(events), 2)
            for e in events:
                self.assertEqual(set(e), {"id", "time", "level", "message"})
                self.assertIn(e["level"], ("OK", "INFO", "WARNING", "CRITICAL"))
            self.assertEqual({e["level"] for e in events}, {"WARNING", "CRITICAL"})
            self.assertEqual([e["time"] for e in events],
                             sorted((e["time"] for e in events), reverse=True))
            status, crit_only = self.call("GET",
                                          "/dragonfly/alert/task/cpu-busy/events?level=CRITICAL")
            self.assertEqual({e["level"] for e in crit_only}, {"CRITICAL"})
            self.assertIn(crit.json["id"], [e["id"] for e in crit_only])

            # A Slack event handler, used by a second task (JSON body).
            status, h = self.call("POST", "/dragonfly/alert/eventhandler",
                                  {"name": "ops", "type": "slack", "url": rcv.url + "/slack",
                                   "channel": "#ops"})
            self.assertEqual(status, 200, h)
            self.assertEqual(set(h), {"id", "name", "type", "options"})
            self.assertEqual((h["name"], h["type"], h["options"]),
                             ("ops", "slack", {"url": rcv.url + "/slack", "channel": "#ops"}))
            status, hs = self.call("GET", "/dragonfly/alert/eventhandlers?eventType=slack")
            self.assertEqual((status, hs), (200, [h]))
            status, hs = self.call("GET", "/dragonfly/alert/eventhandlers?eventType=smtp")
            self.assertEqual((status, hs), (200, []))
            status, one = self.call("GET", "/dragonfly/alert/eventhandler/type/slack/event/ops")
            self.assertEqual((status, one), (200, h))
            status, doc = self.call("POST", "/dragonfly/alert/task",
                                    dict(task, name="mem-used", measurement="mem",
                                         metric="mem_utilization", alert_event_type="slack",
                                         alert_event_name="ops", alert_post_url="",
                                         warn_event_cnt=0, critic_event_cnt=100))
            self.assertEqual(status, 200, doc)
            self.assertTrue(rcv.wait_for(lambda reqs: any(q.path == "/slack" for q in reqs),
                                         timeout=20))
            slack = [q for q in rcv.requests if q.path == "/slack"][0]
            self.assertEqual(slack.json["channel"], "#ops")
            self.assertIn("dragonfly-mem-used-warning", slack.json["text"])
            # The handler is in use: not deleted.
            status, doc = self.call("DELETE", "/dragonfly/alert/eventhandler/type/slack/event/ops")
            self.assertEqual(status, 409, doc)
            self.assert_message(doc)

            # Bad tasks name what is wrong.
            for bad, word in ((dict(task, name="x1", alert_math_expression="bigger"),
                               "alert_math_expression"),
                              (dict(task, name="x2", target_id="no-such-vm"), "target_id"),
                              (dict(task, name="x3", measurement="gpu"), "measurement"),
                              (dict(task, name="x4", alert_threshold="high"), "alert_threshold")):
                status, doc = self.call("POST", "/dragonfly/alert/task", bad, form=True)
                self.assertEqual(status, 400, bad)
                self.assertIn(word, doc["message"])

            # PUT replaces a task (the rules follow); a refused PUT keeps the old one.
            status, doc = self.call("PUT", "/dragonfly/alert/task/cpu-busy",
                                    dict(task, alert_threshold="200"), form=True)
            self.assertEqual((status, doc["alert_threshold"]), (200, 200.0), doc)
            status, rule = self.call("GET", "/api/v1/rules/dragonfly-cpu-busy-warning")
            self.assertEqual(status, 200, rule)
            self.assertIn("200", json.dumps(rule["warn"]))
            status, doc = self.call("PUT", "/dragonfly/alert/task/cpu-busy",
                                    dict(task, alert_math_expression="around"), form=True)
            self.assertEqual(status, 400)
            self.assertEqual(self.call("GET", "/dragonfly/alert/task/cpu-busy")[1]
                             ["alert_threshold"], 200.0)
            self.assertEqual(self.call("GET", "/api/v1/rules/dragonfly-cpu-busy-critical")[0],
                             200)

            # An smtp handler: CB-Dragonfly's options, the password hidden; PUT replaces.
            status, h = self.call("POST", "/dragonfly/alert/eventhandler",
                                  {"name": "mail", "type": "smtp", "host": "127.0.0.1",
                                   "port": 2525, "from": "df@example.com",
                                   "to": ["ops@example.com"], "username": "u",
                                   "password": "secret"})
            self.assertEqual(status, 200, h)
            self.assertEqual(h["options"], {"host": "127.0.0.1", "port": 2525,
                                            "from": "df@example.com", "to": ["ops@example.com"],
                                            "username": "u", "password": "********"})
            status, h = self.call("PUT", "/dragonfly/alert/eventhandler/type/smtp/event/mail",
                                  {"host": "127.0.0.1", "port": 2526, "from": "df@example.com",
                                   "to": ["dev@example.com"]})
            self.assertEqual((status, h["options"]["to"], h["options"]["port"]),
                             (200, ["dev@example.com"], 2526), h)
            self.assertEqual(self.call("DELETE", "/dragonfly/alert/eventhandler/type/smtp/"
                                                 "event/mail")[0], 200)
            self.assertEqual(self.call("GET", "/dragonfly/alert/eventhandler/type/smtp/"
                                              "event/mail")[0], 404)

            # Deleting a task removes its rules.
            for name in ("cpu-busy", "mem-used"):
                status, doc = self.call("DELETE", "/dragonfly/alert/task/" + name)
                self.assertEqual(status, 200, doc)
                for level in ("warning", "critical"):
                    self.assertEqual(self.call("GET", "/api/v1/rules/dragonfly-%s-%s"
                                               % (name, level))[0], 404)
            status, doc = self.call("GET", "/dragonfly/alert/task/cpu-busy")
            self.assertEqual(status, 404)
            self.assert_message(doc)
            status, doc = self.call("DELETE", "/dragonfly/alert/eventhandler/type/slack/event/ops")
            self.assertEqual(status, 200, doc)
            self.assertEqual(self.call("GET", "/dragonfly/alert/eventhandlers")[1], [])

    def test_9_uninstall(self):
        status, doc = self.call("DELETE", "/dragonfly/agent", self.agent_body(), timeout=300)
        self.assertEqual((status, doc), (200, {"message": "agent uninstallation is finished"}))
        status, doc = self.call("GET", "/api/v1/agents?ns=" + NS)
        self.assertEqual([a for a in doc["agents"] if a["vm"] == VM], [])
        self.assertFalse(os.path.exists(self.prefix))
        self.assertEqual(glob.glob(os.path.join(self.data, ".dragonfly-key-*")), [])
        status, doc = self.call("GET", "/dragonfly/agents/metadata")
        self.assertEqual(doc, {})


class DragonflyCompatSettings(unittest.TestCase):
    """compat.auth "none" and compat.enabled false, on daemons of their own."""

    def daemon(self, compat):
        d = tempfile.mkdtemp(prefix="pt-df2-")
        self.addCleanup(shutil.rmtree, d, True)
        pd = Pantalad(d, TOKEN, {"compat": compat}).start()
        self.addCleanup(pd.stop, timeout=10)
        return pd.api, d

    def test_open(self):
        base, d = self.daemon({"auth": "none"})
        status, doc = http(base, "GET", "/dragonfly/config", token=None)
        self.assertEqual(status, 200)
        self.assertEqual(doc["mcis_agent_interval"], 1)
        # Only /dragonfly is open.
        self.assertEqual(http(base, "GET", "/api/v1/agents", token=None)[0], 401)
        with open(os.path.join(d, "pantalad.log")) as f:
            self.assertIn("WITHOUT A TOKEN", f.read())

    def test_disabled(self):
        base, _ = self.daemon({"enabled": False})
        status, doc = http(base, "GET", "/dragonfly/config")
        self.assertEqual(status, 404)
        self.assertEqual(doc["error"]["code"], "not_found")


if __name__ == "__main__":
    if not have_sshd():
        print("SKIP: sshd/ssh-keygen not installed (Debian openssh-server, openssh-client)")
        sys.exit(0)
    unittest.main(verbosity=2)
