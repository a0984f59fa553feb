#!/usr/bin/env python3
"""The agentless poller end to end, without moto: a real pantalad polls
CB-Spider-shaped targets served by the drivers' loopback mock
(tests/unit/drivers/mock_csp.py, which checks basic auth, path and query of
every request) and the values must come back through the query API, per VM
and at MCIS level, tagged source=agentless and driver=cbspider.

Also: target validation (400s naming the key), credentials never returned
by the API nor stored in clear, the key file created 0600, throttling ->
back-off visible in the target's status and in /metrics, update keeping the
stored credentials, poll-now, delete, persistence across a restart, and a
wrong key file named as such after a restart.

Run by ctest with PANTALAD and MOCK_CSP set. Standard library only.
"""
import json
import os
import re
import stat
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

from harness import PANTALAD, Pantalad, remove_dir

MOCK_CSP = os.environ.get("MOCK_CSP", os.path.join(os.path.dirname(__file__), "..", "unit",
                                                   "drivers", "mock_csp.py"))
TOKEN = "agentless-test-token-0123456789"
NS, MCIS = "ns-agl", "mc1"
SECRET = "cbpw"  # the mock's CB-Spider password: must never come back


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Agentless(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="pt-agl-")
        # The mock's points sit at T0-60, T0, T0+60: put them a few minutes back,
        # inside every target's look-back window and all in the past.
        cls.t0 = (int(time.time()) // 60) * 60 - 180
        env = dict(os.environ, MOCK_CSP_T0=str(cls.t0))
        cls.mock = subprocess.Popen([sys.executable, MOCK_CSP], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, env=env)
        cls.mock_url = "http://127.0.0.1:%d" % int(cls.mock.stdout.readline())
        cls.pd = Pantalad(cls.dir, TOKEN, {
            "writer": {"flush": "50ms"},
            "agentless": {"concurrency": 6, "rate_limit": 20, "max_backoff": "30s"},
        })
        cls.http, cls.api, cls.data, cls.conf = cls.pd.http, cls.pd.api, cls.pd.data, cls.pd.conf
        cls.start_daemon()

    @classmethod
    def start_daemon(cls):
        cls.daemon = cls.pd.start().proc

    @classmethod
    def stop_daemon(cls):
        cls.pd.stop(timeout=20, kill_on_timeout=True)

    @classmethod
    def tearDownClass(cls):
        cls.stop_daemon()
        cls.mock.stdin.close()
        cls.mock.wait(10)
        remove_dir(cls.dir)

    @classmethod
    def read_log(cls):
        return cls.pd.read_log()

    @classmethod
    def req(cls, method, path, body=None):
        return cls.pd.request(method, path, body, decode="text")

    def jreq(self, method, path, body=None):
        code, raw = self.req(method, path, body)
        return code, (json.loads(raw) if raw.strip() else None), raw

    def target(self, vm, scen="normal", **kw):
        t = {"ns": NS, "mcis": MCIS, "vm": vm, "driver": "cbspider", "instance": "web-1",
             "endpoint": "%s/cb/%s" % (self.mock_url, scen), "interval": "1s", "period": "60s",
             "lookback": "10m", "options": {"connection_name": "aws-conn"},
             "credentials": {"username": "admin", "password": SECRET}}
        t.update(kw)
        return t

    def create(self, body):
        code, j, raw = self.jreq("POST", "/api/v1/targets", body)
        self.assertEqual(code, 201, raw)
        self.assertNotIn(SECRET, raw)
        return j

    def wait_status(self, tid, cond, what, timeout=15):
        deadline = time.time() + timeout
        while True:
            code, j, raw = self.jreq("GET", "/api/v1/targets/%d" % tid)
            self.assertEqual(code, 200, raw)
            if cond(j["status"]):
                return j
            if time.time() > deadline:
                self.fail("target %d: %s not reached; status %s\n%s" % (tid, what, j["status"],
                                                                       self.read_log()[-3000:]))
            time.sleep(0.1)

    def series(self, path):
        code, j, raw = self.jreq("GET", path)
        self.assertEqual(code, 200, raw)
        return j["series"]

    # ---- tests ---------------------------------------------------------------

    def test_1_validation_names_the_key(self):
        cases = [
            ({k: v for k, v in self.target("v").items() if k != "driver"}, "\"driver\""),
            (self.target("v", driver="nimbus"), "unknown driver"),
            (self.target("v", interval="0s"), "\"interval\""),
            (self.target("bad name"), "\"vm\""),
            (self.target("v", endpoint="ftp://x"), "\"endpoint\""),
            (self.target("v", options={"instance": "x"}), "\"options\""),
            (self.target("v", credentials="admin:cbpw"), "\"credentials\""),
            (self.target("v", lookback="30s"), "\"lookback\""),
            (dict(self.target("v"), colour="blue"), "\"colour\""),
            # the driver's own check: CB-Spider needs a connection name
            (self.target("v", options={}), "connection_name"),
        ]
        for body, needle in cases:
            code, j, raw = self.jreq("POST", "/api/v1/targets", body)
            self.assertEqual(code, 400, raw)
            self.assertEqual(j["error"]["code"], "bad_request")
            self.assertIn(needle, j["error"]["message"])
            self.assertNotIn(SECRET, raw)
        code, j, raw = self.jreq("GET", "/api/v1/targets/abc")
        self.assertEqual(code, 400, raw)
        code, j, raw = self.jreq("GET", "/api/v1/targets/999999")
        self.assertEqual(code, 404, raw)

    def test_2_poll_store_query(self):
        a = self.create(self.target("vm-a"))
        b = self.create(self.target("vm-b"))
        self.assertEqual(sorted(a["credentials_set"]), ["password", "username"])
        self.assertNotIn("credentials", a)
        self.assertEqual(a["csp"], "cbspider")
        for t in (a, b):
            st = self.wait_status(t["id"], lambda s: s["state"] == "ok" and s["values"] >= 9,
                                  "a successful poll")
            self.assertIsNone(st["status"]["last_error"])
            m = st["status"]["metrics"]
            self.assertEqual(m["cpu_utilization"]["status"], "ok")
            self.assertEqual(m["mem_utilization"]["status"], "error")  # the mock refuses memory
            self.assertIn("memory_usage", m["mem_utilization"]["error"]["message"])
            self.assertEqual(m["kb_written"]["status"], "no_data")
            self.assertIsNotNone(st["status"]["last_success"])
            self.assertIsNotNone(st["status"]["next_poll"])
        t0 = self.t0
        rng = "from=%d&to=%d" % (t0 - 600, t0 + 600)
        # A poll is "ok" once its frames are on their way to the writer; they
        # are stored at its next flush (50 ms here): wait for both VMs' last.
        for vm in ("vm-a", "vm-b"):
            deadline = time.time() + 10
            while True:
                code, j, raw = self.jreq("GET", "/api/v1/ns/%s/mcis/%s/vm/%s/latest" % (NS, MCIS, vm))
                # One frame per timestamp, stored in order: the newest in all
                # three measurements means every point is in.
                if code == 200 and len(j["measurements"]) >= 3 and all(
                        m["time"] == iso(t0 + 60) for m in j["measurements"]):
                    break
                self.assertLess(time.time(), deadline, "%s's points never stored: %s" % (vm, raw))
                time.sleep(0.05)
        # Per VM: raw points, exactly the mock's values converted by the driver.
        s = self.series("/api/v1/ns/%s/mcis/%s/vm/vm-a/metrics/cpu?fields=cpu_utilization&%s"
                        % (NS, MCIS, rng))
        self.assertEqual(len(s), 1, s)
        self.assertEqual(s[0]["tags"], {"source": "agentless", "driver": "cbspider"})
        self.assertEqual(s[0]["values"], [[iso(t0 - 60), 1.5], [iso(t0), 2.5], [iso(t0 + 60), 3.5]])
        # Disk and network as the agent names them, instance totals tagged total.
        s = self.series("/api/v1/ns/%s/mcis/%s/vm/vm-a/metrics/diskio?fields=kb_read&tag=device:total&%s"
                        % (NS, MCIS, rng))
        self.assertEqual(s[0]["values"], [[iso(t0 - 60), 1.0], [iso(t0), 2.0], [iso(t0 + 60), 0.0]])
        s = self.series("/api/v1/ns/%s/mcis/%s/vm/vm-b/metrics/network?fields=bytes_in&tag=interface:total&%s"
                        % (NS, MCIS, rng))
        self.assertEqual(s[0]["values"], [[iso(t0 - 60), 100.0], [iso(t0), 10.0], [iso(t0 + 60), 1.0]])
        # MCIS level: both VMs summed per minute, and side by side.
        s = self.series("/api/v1/ns/%s/mcis/%s/metrics/cpu?fields=cpu_utilization&step=1m&agg=avg"
                        "&across=sum&tag=source:agentless&%s" % (NS, MCIS, rng))
        self.assertEqual(s[0]["values"], [[iso(t0 - 60), 3.0], [iso(t0), 5.0], [iso(t0 + 60), 7.0]])
        s = self.series("/api/v1/ns/%s/mcis/%s/metrics/cpu?fields=cpu_utilization&step=1m&agg=max"
                        "&groupBy=vm&%s" % (NS, MCIS, rng))
        self.assertEqual(sorted(x["vm"] for x in s), ["vm-a", "vm-b"])
        code, j, raw = self.jreq("GET", "/api/v1/ns/%s/mcis/%s/vm/vm-a/latest" % (NS, MCIS))
        self.assertEqual(code, 200, raw)
        cpu = [m for m in j["measurements"] if m["name"] == "cpu"][0]
        self.assertEqual(cpu["fields"]["cpu_utilization"], 3.5)
        # The list filters by MCIS and never carries a secret.
        code, j, raw = self.jreq("GET", "/api/v1/targets?ns=%s&mcis=%s" % (NS, MCIS))
        self.assertEqual(code, 200, raw)
        self.assertNotIn(SECRET, raw)
        self.assertTrue({a["id"], b["id"]} <= {t["id"] for t in j["targets"]})
        code, j, raw = self.jreq("GET", "/api/v1/targets?ns=nobody")
        self.assertEqual(j["targets"], [])
        # /metrics counts polls and values.
        code, raw = self.req("GET", "/metrics")
        self.assertRegex(raw, r'pantala_agentless_polls_total\{outcome="ok"\} [1-9]')
        self.assertRegex(raw, r"pantala_agentless_values_total [1-9]")

    def test_3_secrets_at_rest(self):
        self.create(self.target("vm-c"))
        key = os.path.join(self.data, "agentless.key")
        st = os.stat(key)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(st.st_size, 32)
        for name in os.listdir(self.data):
            if name.startswith("targets.db"):
                with open(os.path.join(self.data, name), "rb") as f:
                    self.assertNotIn(SECRET.encode(), f.read(), name)
        with open(os.path.join(self.dir, "pantalad.log"), "rb") as f:
            self.assertNotIn(SECRET.encode(), f.read())

    def test_4_throttling_backs_off(self):
        t = self.create(self.target("vm-throttled", "throttle"))
        j = self.wait_status(t["id"], lambda s: s["state"] == "throttled", "throttled")
        s = j["status"]
        self.assertEqual(s["last_error"]["kind"], "throttled")
        self.assertEqual(s["last_error"]["http_status"], 429)
        self.assertEqual(s["last_error"]["retry_after_s"], 2)
        self.assertIn("rate exceeded", s["last_error"]["message"])
        # The next poll waits for the provider's Retry-After, not the 1 s interval.
        self.assertGreaterEqual(s["backoff_s"], 2)
        polls = s["polls"]
        time.sleep(1.5)
        code, j, raw = self.jreq("GET", "/api/v1/targets/%d" % t["id"])
        self.assertEqual(j["status"]["polls"], polls, "polled again before Retry-After")
        # Back-off grows with consecutive throttles (2 s, then at least 2 s again...).
        j = self.wait_status(t["id"], lambda s: s["consecutive_failures"] >= 2, "a second throttle")
        code, raw = self.req("GET", "/metrics")
        self.assertRegex(raw, r'pantala_agentless_errors_total\{kind="throttled"\} [1-9]')
        self.assertRegex(raw, r'pantala_agentless_targets\{state="throttled"\} [1-9]')
        self.assertEqual(self.req("DELETE", "/api/v1/targets/%d" % t["id"])[0], 204)

    def test_5_update_poll_now_delete(self):
        t = self.create(self.target("vm-d", interval="1h"))
        self.wait_status(t["id"], lambda s: s["polls"] == 1, "the first poll")
        # Update without credentials: the stored ones are kept (polls still succeed).
        body = self.target("vm-d", interval="2h")
        del body["credentials"]
        code, j, raw = self.jreq("PUT", "/api/v1/targets/%d" % t["id"], body)
        self.assertEqual(code, 200, raw)
        self.assertEqual(j["interval_s"], 7200)
        self.assertEqual(sorted(j["credentials_set"]), ["password", "username"])
        self.wait_status(t["id"], lambda s: s["state"] == "ok", "a poll with the kept credentials")
        # GET, edit, PUT: what GET adds is accepted back (read-only keys ignored).
        code, j, raw = self.jreq("GET", "/api/v1/targets/%d" % t["id"])
        j["interval_s"] = 5400
        code, j, raw = self.jreq("PUT", "/api/v1/targets/%d" % t["id"], j)
        self.assertEqual(code, 200, raw)
        self.assertEqual(j["interval_s"], 5400)
        self.assertEqual(j["period_s"], 60)
        self.assertEqual(sorted(j["credentials_set"]), ["password", "username"])
        j["interval"] = "1h"
        code, e, raw = self.jreq("PUT", "/api/v1/targets/%d" % t["id"], j)
        self.assertEqual(code, 400, raw)
        self.assertIn("not both", e["error"]["message"])
        # Poll now.
        code, j, raw = self.jreq("GET", "/api/v1/targets/%d" % t["id"])
        polls = j["status"]["polls"]
        code, j, raw = self.jreq("POST", "/api/v1/targets/%d/poll" % t["id"])
        self.assertEqual(code, 202, raw)
        self.wait_status(t["id"], lambda s: s["polls"] > polls, "the requested poll")
        # Delete.
        self.assertEqual(self.req("DELETE", "/api/v1/targets/%d" % t["id"])[0], 204)
        self.assertEqual(self.req("GET", "/api/v1/targets/%d" % t["id"])[0], 404)
        self.assertEqual(self.req("DELETE", "/api/v1/targets/%d" % t["id"])[0], 404)
        # A deleted target's id is never given to another.
        n = self.create(self.target("vm-f", interval="1h"))
        self.assertGreater(n["id"], t["id"])
        self.assertEqual(self.req("DELETE", "/api/v1/targets/%d" % n["id"])[0], 204)
        self.assertEqual(self.req("PATCH", "/api/v1/targets/1")[0], 405)

    def test_6_alert_rule_fires(self):
        # A rule on an agentless metric, exactly as for agents' metrics.
        rule = {"name": "agl-cpu", "scope": {"ns": NS, "mcis": "mc-alert"},
                "metric": "cpu.cpu_utilization", "crit": "> 3"}
        code, j, raw = self.jreq("POST", "/api/v1/rules", rule)
        self.assertEqual(code, 201, raw)
        self.create(self.target("vm-al", mcis="mc-alert"))
        deadline = time.time() + 15
        while True:
            code, j, raw = self.jreq("GET", "/api/v1/alerts/history?rule=agl-cpu")
            self.assertEqual(code, 200, raw)
            fired = [e for e in j["events"] if e["status"] == "firing"]
            if fired:
                break
            if time.time() > deadline:
                self.fail("no firing event for the agentless rule: %s\n%s"
                          % (raw, self.read_log()[-3000:]))
            time.sleep(0.1)
        e = fired[-1]  # the first event (newest first)
        self.assertEqual(e["level"], "critical")
        self.assertEqual(e["value"], 3.5)  # the mock's newest CPU point
        self.assertEqual(e["labels"]["vm"], "vm-al")
        self.assertEqual(e["labels"]["mcis"], "mc-alert")
        self.assertEqual(e["labels"]["source"], "agentless")
        self.assertEqual(e["labels"]["driver"], "cbspider")
        # Later polls re-read the same periods: no second firing event.
        time.sleep(2.5)
        code, j, raw = self.jreq("GET", "/api/v1/alerts/history?rule=agl-cpu")
        self.assertEqual(len([x for x in j["events"] if x["status"] == "firing"]), 1, raw)

    def test_7_rate_limit_per_driver(self):
        def set_rate(rl):
            with open(self.conf) as f:
                c = json.load(f)
            c["agentless"]["rate_limits"] = rl
            with open(self.conf, "w") as f:
                json.dump(c, f)
        # An unknown driver is a configuration error naming the key.
        set_rate({"nimbus": 3})
        out = subprocess.run([PANTALAD, "--config", self.conf, "--check-config"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 2)
        self.assertIn('key "agentless.rate_limits": unknown driver "nimbus"', out.stderr)
        # Several 1 s targets of one driver, at most 2 polls/s for that driver.
        for vm in ("vm-r1", "vm-r2", "vm-r3", "vm-r4"):
            self.create(self.target(vm))
        type(self).stop_daemon()
        set_rate({"cbspider": 2})
        type(self).start_daemon()
        time.sleep(1.5)  # past the first burst
        def polls():
            code, raw = self.req("GET", "/metrics")
            return sum(float(x) for x in re.findall(
                r'pantala_agentless_polls_total\{outcome="[a-z]+"\} ([0-9]+)', raw))
        p0, t0 = polls(), time.time()
        time.sleep(4)
        rate = (polls() - p0) / (time.time() - t0)
        # 8+ targets due every second would poll 8+ times a second unlimited.
        self.assertLessEqual(rate, 2.6, "rate limit not applied")
        self.assertGreater(rate, 0.5, "polling stalled")
        type(self).stop_daemon()
        set_rate({})
        type(self).start_daemon()

    def write_conf(self, targets=None):
        with open(self.conf) as f:
            c = json.load(f)
        if targets is None:
            c["agentless"].pop("targets", None)
        else:
            c["agentless"]["targets"] = targets
        with open(self.conf, "w") as f:
            json.dump(c, f)

    def test_8_config_targets(self):
        creds = os.path.join(self.dir, "cb-creds.json")
        with open(creds, "w") as f:
            json.dump({"username": "admin", "password": SECRET}, f)
        os.chmod(creds, 0o644)
        t = self.target("vm-conf")
        del t["credentials"]
        t["credentials_file"] = creds
        type(self).stop_daemon()
        # A credentials file others may read: refused at start, naming it,
        # and by --check-config already.
        self.write_conf([t])
        out = subprocess.run([PANTALAD, "--config", self.conf], capture_output=True, text=True,
                             timeout=30)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("agentless.targets[0]: credentials_file " + creds, out.stdout + out.stderr)
        out = subprocess.run([PANTALAD, "--config", self.conf, "--check-config"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 2)
        self.assertIn("agentless.targets[0]: credentials_file " + creds, out.stderr)
        os.chmod(creds, 0o600)
        bad = dict(t, driver="nimbus")
        self.write_conf([bad])
        out = subprocess.run([PANTALAD, "--config", self.conf, "--check-config"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 2)
        self.assertIn('agentless.targets[0]: request body:', out.stderr)
        self.assertIn('unknown driver "nimbus"', out.stderr)
        # Credentials inline in the config file: refused too.
        inline = self.target("vm-conf")
        self.write_conf([inline])
        out = subprocess.run([PANTALAD, "--config", self.conf], capture_output=True, text=True,
                             timeout=30)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("do not belong in the config file", out.stdout + out.stderr)
        self.assertNotIn(SECRET, out.stdout + out.stderr)
        os.chmod(creds, 0o600)
        self.write_conf([t])
        type(self).start_daemon()
        code, j, raw = self.jreq("GET", "/api/v1/targets?mcis=%s" % MCIS)
        conf_t = [x for x in j["targets"] if x["vm"] == "vm-conf"]
        self.assertEqual(len(conf_t), 1, raw)
        self.assertEqual(conf_t[0]["managed"], "config")
        self.assertEqual(sorted(conf_t[0]["credentials_set"]), ["password", "username"])
        self.assertNotIn(SECRET, raw)
        tid = conf_t[0]["id"]
        self.wait_status(tid, lambda s: s["state"] == "ok", "a poll of the configured target")
        # Changed only through the config.
        body = self.target("vm-conf", interval="5m")
        code, j, raw = self.jreq("PUT", "/api/v1/targets/%d" % tid, body)
        self.assertEqual(code, 409, raw)
        self.assertIn("agentless.targets", j["error"]["message"])
        self.assertEqual(self.req("DELETE", "/api/v1/targets/%d" % tid)[0], 409)
        # Restarted with the same config: same id. Without it: removed.
        type(self).stop_daemon()
        type(self).start_daemon()
        self.assertEqual(self.req("GET", "/api/v1/targets/%d" % tid)[0], 200)
        type(self).stop_daemon()
        self.write_conf(None)
        type(self).start_daemon()
        self.assertEqual(self.req("GET", "/api/v1/targets/%d" % tid)[0], 404)

    def mock_stats(self):
        with urllib.request.urlopen(self.mock_url + "/_failures", timeout=10) as r:
            return json.loads(r.read())

    def test_8b_concurrent_polls_prompt_shutdown(self):
        # Five targets whose cloud answers each request 0.4 s late (a poll:
        # 8 requests, 3.2 s): polled at once on libcurl multi, the mock sees
        # five requests open together; polled one after another, one.
        ids = [self.create(self.target("vm-slow%d" % i, "slow", interval="1h"))["id"]
               for i in range(5)]
        for tid in ids:
            j = self.wait_status(tid, lambda s: s["state"] == "ok", "a slow poll")
            self.assertEqual(j["status"]["values"], 9, j)  # cpu, disk_read, network_in: 3 each
        self.assertGreaterEqual(self.mock_stats()["max_inflight"], 5)
        # Shutdown does not wait for a cloud that does not answer (the
        # mock's "hold" answers after 30 s): the poll is cancelled.
        held = self.create(self.target("vm-held", "hold", interval="1h"))
        deadline = time.time() + 15
        while self.mock_stats()["inflight"] < 1:
            self.assertLess(time.time(), deadline, "the held poll never started")
            time.sleep(0.1)
        t0 = time.time()
        type(self).stop_daemon()
        self.assertEqual(self.daemon.returncode, 0, self.read_log()[-3000:])
        self.assertLess(time.time() - t0, 10, "shutdown waited for the held request")
        type(self).start_daemon()
        for tid in ids + [held["id"]]:
            self.assertEqual(self.req("DELETE", "/api/v1/targets/%d" % tid)[0], 204)

    def test_9_restart_and_wrong_key(self):
        t = self.create(self.target("vm-e"))
        self.wait_status(t["id"], lambda s: s["state"] == "ok", "a poll before the restart")
        type(self).stop_daemon()
        # A clean exit: workers joined, fetched frames handed over, nothing
        # leaked (the sanitizer build's LeakSanitizer would fail the exit).
        self.assertEqual(self.daemon.returncode, 0, self.read_log()[-3000:])
        self.assertNotIn("Sanitizer", self.read_log())
        type(self).start_daemon()
        j = self.wait_status(t["id"], lambda s: s["state"] == "ok", "a poll after the restart")
        self.assertEqual(j["vm"], "vm-e")
        # Another key file: the sealed credentials are named as sealed under
        # another key, and the target waits for the operator.
        type(self).stop_daemon()
        key = os.path.join(self.data, "agentless.key")
        with open(key, "wb") as f:
            f.write(os.urandom(32))
        type(self).start_daemon()
        j = self.wait_status(t["id"], lambda s: s["state"] == "stopped", "stopped")
        self.assertEqual(j["status"]["last_error"]["kind"], "credentials")
        self.assertIn("another key file", j["status"]["last_error"]["message"])
        self.assertIsNone(j["status"]["next_poll"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
