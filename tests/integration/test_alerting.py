#!/usr/bin/env python3
"""End-to-end alerting: a real pantalad, the load generator driving
cpu.cpu_utilization across a threshold (--pattern), a real pantala-agent
killed and restarted, and a local webhook receiver (the generic webhook
notifier) that must get firing then resolved with the right labels, value
and level. Also: bad rules get 400 naming the key, the dry run finds the
crossings in stored data, active alerts and history through the API.

Run by ctest with PANTALAD, PANTALA_AGENT and PANTALA_LOADGEN set.
Standard library only.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
from webhook_receiver import Receiver  # noqa: E402

from harness import AGENT, PANTALAD, Pantalad, remove_dir  # noqa: E402

LOADGEN = os.environ.get("PANTALA_LOADGEN", "build/tests/bench/pantala-loadgen")
TOKEN = "alerting-test-token-0123456789"


class Alerting(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="pt-alerting-")
        cls.hook = Receiver()
        cls.pd = Pantalad(cls.dir, TOKEN, {
            "writer": {"flush": "100ms"},
            "alerting": {
                "agent_down": {"enabled": True, "intervals": 3},
                # the square wave changes state every 2 s: no flap hold here
                "flap": {"changes": 0},
                "builtin_handlers": ["hook"],
                "tick": "50ms",
            },
        }, indent=1)
        cls.udp, cls.http, cls.api = cls.pd.udp, cls.pd.http, cls.pd.api
        cls.daemon = None
        cls.agent = None
        cls.start_daemon()
        status, body = cls.request("POST", "/api/v1/handlers", {
            "name": "hook", "type": "webhook",
            "settings": {"url": cls.hook.url + "/hook", "secret": "s3cret-s3cret"}})
        if status != 201:
            raise RuntimeError("cannot create the webhook handler: %r" % (body,))

    @classmethod
    def tearDownClass(cls):
        for p in (cls.agent, cls.daemon):
            if p and p.poll() is None:
                p.kill()
                p.wait()
        cls.hook.close()
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
        return cls.pd.request(method, path, body, token=token, decode="json")

    @staticmethod
    def unique(reqs, pred):
        # Delivery is at least once: a receiver dedupes by the event id.
        seen, out = set(), []
        for q in reqs:
            if q.json and q.json["id"] not in seen and pred(q.json):
                seen.add(q.json["id"])
                out.append(q.json)
        return out

    def events(self, pred=lambda ev: True):
        return self.unique(self.hook.snapshot(), pred)

    def wait_events(self, what, pred, count, timeout=20):
        ok = self.hook.wait_for(lambda reqs: len(self.unique(reqs, pred)) >= count, timeout)
        if not ok:
            self.fail("timed out waiting for %s; got %s\n%s" % (
                what, json.dumps(self.events(), indent=1)[-3000:], self.read_log()[-3000:]))
        return self.events(pred)

    def loadgen(self, *args):
        cmd = [LOADGEN, "--target", "127.0.0.1:%d" % self.udp, "--quiet"] + list(args)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)

    # ------------------------------------------------------------------ tests

    def test_01_bad_rules(self):
        base = {"name": "r1", "scope": {"ns": "e2e", "mcis": "web"},
                "metric": "cpu.cpu_utilization", "crit": "> 50"}
        cases = [
            ({"metric": "cpu"}, '"metric"'),
            ({"metric": "cpu.no_such_field"}, '"metric"'),
            ({"window": "five minutes"}, '"window"'),
            ({"for": "10x"}, '"for"'),
            ({"handlers": ["nobody"]}, '"handlers"'),
            ({"crit": "=> 5"}, '"crit"'),
            ({"reduce": "median"}, '"reduce"'),
            ({"colour": "red"}, '"colour"'),
        ]
        for change, key in cases:
            rule = dict(base, **change)
            status, body = self.request("POST", "/api/v1/rules", rule)
            self.assertEqual(status, 400, (change, body))
            self.assertEqual(body["error"]["code"], "bad_request")
            self.assertIn(key, body["error"]["message"], change)
        status, body = self.request("POST", "/api/v1/rules", b"{not json")
        self.assertEqual(status, 400)
        # built-ins are configured, not edited
        status, body = self.request("PUT", "/api/v1/rules/agent_down", base)
        self.assertEqual(status, 403, body)
        status, body = self.request("GET", "/api/v1/rules")
        names = [r["name"] for r in body["rules"]]
        self.assertIn("agent_down", names)
        self.assertNotIn("r1", names)
        # a handler with bad settings names the key
        status, body = self.request("POST", "/api/v1/handlers",
                                    {"name": "h2", "type": "webhook", "settings": {"url": "ftp://x"}})
        self.assertEqual(status, 400, body)
        self.assertIn("url", body["error"]["message"])
        status, body = self.request("POST", "/api/v1/handlers", {"name": "h2", "type": "pager"})
        self.assertEqual(status, 400, body)
        self.assertIn('"type"', body["error"]["message"])
        # the handler in use cannot be deleted while a rule names it
        status, _ = self.request("POST", "/api/v1/rules", dict(base, handlers=["hook"]))
        self.assertEqual(status, 201)
        status, body = self.request("DELETE", "/api/v1/handlers/hook")
        self.assertEqual(status, 409, body)  # r1 and the built-ins use it
        self.assertIn('uses handler "hook"', body["error"]["message"])
        status, _ = self.request("DELETE", "/api/v1/rules/r1")
        self.assertEqual(status, 204)
        status, _ = self.request("GET", "/api/v1/rules/r1")
        self.assertEqual(status, 404)

    def test_02_each_and_avg(self):
        cls = type(self)
        agents = os.path.join(cls.dir, "agents.json")
        self.loadgen("--api", self.api, "--token", TOKEN, "--agents", "3", "--ns", "e2e",
                     "--mcis", "web", "--vms-per-mcis", "3", "--save-agents", agents,
                     "--duration", "0")
        common = {"scope": {"ns": "e2e", "mcis": "web-000"}, "metric": "cpu.cpu_utilization",
                  "crit": "> 50", "warn": "> 40", "handlers": ["hook"],
                  "labels": {"team": "web"},
                  "annotations": {"summary": "{{vm}} {{level}} at {{value}}"}}
        for name, reduce in (("cpu-each", "each"), ("cpu-avg", "avg")):
            status, body = self.request("POST", "/api/v1/rules",
                                        dict(common, name=name, reduce=reduce))
            self.assertEqual(status, 201, body)
        # two of three VMs go 10 -> 90 -> 10 (2 s per phase); the third stays at 10:
        # avg (90 + 90 + 10) / 3 = 63.3 crosses too
        self.loadgen("--agents-file", agents, "--rate", "6", "--interval-ms", "500",
                     "--duration", "5.5", "--pattern", "cpu.cpu_utilization=10,90/4s",
                     "--pattern-agents", "2")

        def of(rule, status):
            return lambda ev: ev["rule"] == rule and ev["status"] == status

        firing = self.wait_events("each: 2 firing", of("cpu-each", "firing"), 2)
        resolved = self.wait_events("each: 2 resolved", of("cpu-each", "resolved"), 2)
        self.assertEqual(sorted(ev["labels"]["vm"] for ev in firing), ["vm-00000", "vm-00001"],
                         json.dumps(self.events(lambda e: e["rule"] == "cpu-each"), indent=1)
                         + self.read_log()[-4000:])
        self.assertEqual(sorted(ev["labels"]["vm"] for ev in resolved), ["vm-00000", "vm-00001"])
        for ev in firing:
            self.assertEqual(ev["level"], "critical")
            self.assertEqual(ev["value"], 90)
            self.assertEqual(ev["threshold"], 50)
            self.assertEqual(ev["labels"]["alertname"], "cpu-each")
            self.assertEqual(ev["labels"]["severity"], "critical")
            self.assertEqual(ev["labels"]["ns"], "e2e")
            self.assertEqual(ev["labels"]["mcis"], "web-000")
            self.assertEqual(ev["labels"]["team"], "web")
            self.assertEqual(ev["annotations"]["summary"],
                             "%s critical at 90" % ev["labels"]["vm"])
            self.assertEqual(len(ev["id"]), 64)
        for ev in resolved:
            self.assertEqual(ev["value"], 10)
            self.assertEqual(ev["level"], "critical")  # the level it was at
        # per VM: firing strictly before resolved, same fingerprint
        for vm in ("vm-00000", "vm-00001"):
            seq = [ev for ev in self.events(lambda e: e["rule"] == "cpu-each"
                                            and e["labels"].get("vm") == vm)]
            self.assertEqual([e["status"] for e in seq][:2], ["firing", "resolved"], seq)
            self.assertEqual(seq[0]["fingerprint"], seq[1]["fingerprint"])
        # avg: once for the MCIS, no vm label
        afire = self.wait_events("avg firing", of("cpu-avg", "firing"), 1)
        self.wait_events("avg resolved", of("cpu-avg", "resolved"), 1)
        self.assertEqual(len(afire), 1, afire)
        self.assertNotIn("vm", afire[0]["labels"])
        self.assertAlmostEqual(afire[0]["value"], (90 + 90 + 10) / 3, places=6)
        # the webhook is signed
        q = [q for q in self.hook.snapshot() if q.json and q.json["rule"] == "cpu-avg"][0]
        self.assertTrue(q.headers.get("X-Pantala-Signature"))
        # history through the API
        status, body = self.request("GET", "/api/v1/alerts/history?rule=cpu-each&level=critical")
        self.assertEqual(status, 200)
        st = sorted(e["status"] for e in body["events"])
        self.assertGreaterEqual(st.count("firing"), 2)
        self.assertGreaterEqual(st.count("resolved"), 2)
        status, body = self.request("GET", "/api/v1/alerts/history?level=loud")
        self.assertEqual(status, 400)
        # the dry run over the stored data sees the same crossings
        status, body = self.request("POST", "/api/v1/rules/cpu-each/dry-run?from=now-2m")
        self.assertEqual(status, 200, body)
        fired = sorted(set(e["labels"]["vm"] for e in body["events"] if e["status"] == "firing"))
        self.assertEqual(fired, ["vm-00000", "vm-00001"], body)
        status, body = self.request("POST", "/api/v1/rules/dry-run?from=now-2m",
                                    dict(common, name="what-if", reduce="max", crit="> 95", warn=None))
        self.assertEqual(status, 200, body)
        self.assertEqual(body["events"], [])  # 90 never passed 95

    def test_03_silence(self):
        status, body = self.request("POST", "/api/v1/silences", {
            "matchers": {"alertname": "cpu-each", "vm": "vm-00000"}, "ends_at": "now+1h",
            "comment": "maintenance", "created_by": "test"})
        self.assertEqual(status, 201, body)
        sid = body["id"]
        self.assertEqual(body["state"], "active")
        n0 = len(self.events(lambda e: e["rule"] == "cpu-each"))
        agents = os.path.join(type(self).dir, "agents.json")
        self.loadgen("--agents-file", agents, "--rate", "6", "--interval-ms", "500",
                     "--duration", "3.5", "--pattern", "cpu.cpu_utilization=10,90/4s",
                     "--pattern-agents", "2")
        self.wait_events("vm-00001 firing again",
                         lambda e: e["rule"] == "cpu-each" and e["status"] == "firing"
                         and e["labels"]["vm"] == "vm-00001", 2)
        time.sleep(1)
        muted = [e for e in self.events(lambda e: e["rule"] == "cpu-each")[n0:]
                 if e["labels"]["vm"] == "vm-00000"]
        self.assertEqual(muted, [])
        status, body = self.request("GET", "/api/v1/alerts/history?rule=cpu-each&from=now-10s")
        self.assertTrue(any(e["silenced"] and e["labels"]["vm"] == "vm-00000"
                            for e in body["events"]), body)
        status, _ = self.request("DELETE", "/api/v1/silences/%d" % sid)
        self.assertEqual(status, 204)

    def test_04_agent_down(self):
        cls = type(self)
        status, body = self.request("POST", "/api/v1/agents",
                                    {"ns": "e2e", "mcis": "db", "vm": "db-1", "csp": "aws"})
        self.assertEqual(status, 201, body)
        conf = dict(body["agent_config"])
        conf["interval"] = "1s"
        path = os.path.join(cls.dir, "agent.json")
        with open(path, "w") as f:
            json.dump(conf, f)
        os.chmod(path, 0o600)

        def start():
            with open(os.path.join(cls.dir, "agent.log"), "ab") as log:
                cls.agent = subprocess.Popen([AGENT, "--config", path], stdout=log,
                                             stderr=subprocess.STDOUT)

        def down(status):
            return lambda e: (e["rule"] == "agent_down" and e["status"] == status
                              and e["labels"].get("vm") == "db-1")

        start()
        # reporting for a few seconds: nothing fires
        deadline = time.time() + 15
        while time.time() < deadline:
            status, body = self.request("GET", "/api/v1/agents/%d" % conf["agent_id"])
            if body.get("frames", {}).get("accepted", 0) >= 3:
                break
            time.sleep(0.2)
        self.assertEqual(self.events(down("firing")), [])
        cls.agent.send_signal(signal.SIGKILL)
        cls.agent.wait()
        killed = time.time()
        ev = self.wait_events("agent_down firing", down("firing"), 1, timeout=15)[0]
        self.assertGreaterEqual(time.time() - killed, 2.0)  # 3 intervals, not at once
        self.assertEqual(ev["level"], "critical")
        self.assertEqual(ev["labels"]["mcis"], "db")
        self.assertGreaterEqual(ev["value"], 3)
        status, body = self.request("GET", "/api/v1/alerts")
        self.assertTrue(any(a["rule"] == "agent_down" and a["vm"] == "db-1"
                            for a in body["alerts"]), body)
        start()
        self.wait_events("agent_down resolved", down("resolved"), 1, timeout=15)
        cls.agent.terminate()
        cls.agent.wait()

    def test_05_metrics_and_restart(self):
        status, text = self.request_text("/metrics")
        self.assertEqual(status, 200)
        self.assertIn("pantala_alert_events_total{outcome=\"notified\"}", text)
        self.assertIn("pantala_alert_notifications_total{type=\"webhook\",result=\"delivered\"}", text)
        # rules and handlers survive a restart
        cls = type(self)
        cls.daemon.send_signal(signal.SIGTERM)
        cls.daemon.wait(timeout=30)
        cls.start_daemon()
        status, body = self.request("GET", "/api/v1/rules/cpu-each")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["reduce"], "each")
        status, body = self.request("GET", "/api/v1/handlers/hook")
        self.assertEqual(status, 200, body)
        status, body = self.request("GET", "/api/v1/alerts/history?rule=cpu-avg")
        self.assertGreaterEqual(len(body["events"]), 2)

    @classmethod
    def request_text(cls, path):
        return cls.pd.request("GET", path, decode="text")


if __name__ == "__main__":
    for path in (PANTALAD, AGENT, LOADGEN):
        if not os.access(path, os.X_OK):
            sys.exit("missing executable %s (set PANTALAD / PANTALA_AGENT / PANTALA_LOADGEN)"
                     % path)
    unittest.main(verbosity=2)
