#!/usr/bin/env python3
"""Against a real Alertmanager (Debian prometheus-alertmanager) started here
on loopback: alerts pushed through the "alertmanager" handler appear in its
GET /api/v2/alerts with the expected labels and annotations, and resolve.
Alertmanager's own webhook to a local receiver is then the reference for
our "alertmanager_webhook" payload: same members, same formats."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

from notify_common import Receiver, check, free_port, run_driver

AM = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
if not AM:
    sys.exit("prometheus-alertmanager not found: sudo apt-get install prometheus-alertmanager")

LABELS = {"ns": "default", "mcis": "web", "vm": "vm-1", "severity": "critical"}
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def wait_ready(base, proc, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError("alertmanager exited with %d" % proc.returncode)
        try:
            with urllib.request.urlopen(base + "/-/ready", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("alertmanager not ready after %d s" % timeout)


def ours(alerts):
    return [a for a in alerts if a["labels"].get("alertname") == "cpu_high"
            and a["labels"].get("vm") == "vm-1"]


def main():
    with tempfile.TemporaryDirectory(prefix="pt-notify-am-") as tmp, Receiver() as hook:
        port = free_port()
        base = "http://127.0.0.1:%d" % port
        cfg = os.path.join(tmp, "am.yml")
        with open(cfg, "w") as f:
            f.write("""route:
  receiver: hook
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: %s/am
        send_resolved: true
""" % hook.url)
        log = open(os.path.join(tmp, "am.log"), "w")
        am = subprocess.Popen([AM, "--config.file=" + cfg, "--storage.path=" + tmp,
                               "--web.listen-address=127.0.0.1:%d" % port,
                               "--cluster.listen-address="], stdout=log, stderr=log)
        try:
            wait_ready(base, am)
            labels = []
            for k, v in LABELS.items():
                labels += ["--label", "%s=%s" % (k, v)]
            starts = str(time.time_ns() - 5 * 10**9)
            outbox = os.path.join(tmp, "outbox.db")

            # Firing: pushed to /api/v2/alerts.
            stats, err = run_driver(outbox, "alertmanager", {"url": base}, "--id-prefix", "f1",
                                    "--starts-at-ns", starts, *labels, "--wait", 15)
            check(stats["delivered"] == 1, "firing alert accepted by Alertmanager: %s %s"
                  % (stats, err))
            alerts = ours(get_json(base + "/api/v2/alerts"))
            check(len(alerts) == 1, "Alertmanager lists the alert")
            a = alerts[0]
            check(all(a["labels"].get(k) == v for k, v in LABELS.items()),
                  "with the labels ns, mcis, vm, severity: %s" % a["labels"])
            check(a["annotations"].get("summary") == "CPU above 90% on the test VM",
                  "and the summary annotation")
            check(a["status"]["state"] == "active", "state active")
            check(a["generatorURL"] == "http://127.0.0.1:8080/api/v1/rules/cpu_high",
                  "generatorURL kept")
            check(hook.wait_for(lambda rs: any(q.path == "/am" and q.json["status"] == "firing"
                                               for q in rs), 10),
                  "Alertmanager notified its own webhook (firing)")

            # Resolved: endsAt at resolve time; the alert leaves the active list.
            stats, err = run_driver(outbox, "alertmanager", {"url": base + "/"}, "--id-prefix",
                                    "f2", "--status", "resolved", "--starts-at-ns", starts,
                                    *labels, "--wait", 15)
            check(stats["delivered"] == 1, "resolve accepted: %s" % stats)
            deadline = time.time() + 10
            while ours(get_json(base + "/api/v2/alerts")) and time.time() < deadline:
                time.sleep(0.2)
            check(not ours(get_json(base + "/api/v2/alerts")), "the alert is resolved in Alertmanager")
            check(hook.wait_for(lambda rs: any(q.path == "/am" and q.json["status"] == "resolved"
                                               for q in rs), 10),
                  "Alertmanager notified its own webhook (resolved)")

            # Our alertmanager_webhook payload next to Alertmanager's own.
            for status in ("firing", "resolved"):
                run_driver(outbox, "alertmanager_webhook", {"url": hook.url + "/ours",
                                                            "external_url": base},
                           "--id-prefix", "f3" if status == "firing" else "f4", "--status", status,
                           "--starts-at-ns", starts, *labels, "--wait", 15)
                ref = [q.json for q in hook.snapshot() if q.path == "/am"
                       and q.json["status"] == status][0]
                got = [q.json for q in hook.snapshot() if q.path == "/ours"
                       and q.json["status"] == status][-1]
                check(set(got) == set(ref), "%s: same top-level members as Alertmanager (%s)"
                      % (status, sorted(set(got) ^ set(ref))))
                check(got["version"] == ref["version"] == "4", "%s: version 4" % status)
                ra, ga = ref["alerts"][0], got["alerts"][0]
                check(set(ga) == set(ra), "%s: same alert members (%s)"
                      % (status, sorted(set(ga) ^ set(ra))))
                check(ga["labels"] == ra["labels"], "%s: same labels as Alertmanager sent" % status)
                check(got["groupLabels"] == ref["groupLabels"], "%s: same groupLabels" % status)
                check(got["groupKey"] == ref["groupKey"],
                      "%s: same groupKey %s" % (status, got["groupKey"]))
                check(got["commonLabels"] == ref["commonLabels"], "%s: same commonLabels" % status)
                check(RFC3339.match(ga["startsAt"]) and RFC3339.match(ga["endsAt"]),
                      "%s: RFC 3339 times" % status)
                if status == "firing":
                    check(ga["endsAt"] == ra["endsAt"] == "0001-01-01T00:00:00Z",
                          "firing: endsAt is Alertmanager's zero time in both")
                else:
                    check(not ga["endsAt"].startswith("0001"), "resolved: a real endsAt")
        finally:
            am.terminate()
            try:
                am.wait(10)
            except subprocess.TimeoutExpired:
                am.kill()
            log.close()
    print("integration_notify_alertmanager: all passed")


if __name__ == "__main__":
    main()
