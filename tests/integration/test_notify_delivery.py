#!/usr/bin/env python3
"""Outbox delivery against a live local webhook receiver: retries until 2xx
with one accepted event per idempotency key, Retry-After respected, the
HMAC signature verified here with Python's hmac, permanent 4xx failures,
concurrent transfers, and no loss when the process is killed (-9)."""
import hashlib
import hmac
import os
import signal
import subprocess
import tempfile
import time
from collections import defaultdict

from notify_common import Receiver, check, driver_args, run_driver

SECRET = "test-secret-\u00e9"  # non-ASCII on purpose: the key is the UTF-8 bytes


def key(req):
    return req.headers.get("Idempotency-Key")


def test_retries(tmp):
    """Each key fails 3 times (500, 503, 429 + Retry-After: 1), then 200."""
    seen = defaultdict(int)

    def policy(req, _r):
        seen[key(req)] += 1
        n = seen[key(req)]
        if n == 1:
            return (500, {}, b"boom")
        if n == 2:
            return (503, {}, b"busy")
        if n == 3:
            return (429, {"Retry-After": "1"}, b"slow down")
        return None

    with Receiver(policy=policy) as r:
        stats, err = run_driver(os.path.join(tmp, "retry.db"), "webhook",
                                {"url": r.url + "/hook", "secret": SECRET}, "--count", 5,
                                "--id-prefix", "r1", "--retry-initial-ms", 50, "--label",
                                "vm=vm-7", "--wait", 30)
        reqs = r.snapshot()
    check(stats["delivered"] == 5 and stats["pending"] == 0 and stats["failed"] == 0,
          "5 events delivered after retries: %s" % stats)
    check(stats["retried"] == 15, "3 retries per event counted (%d)" % stats["retried"])
    by_key = defaultdict(list)
    for q in reqs:
        by_key[key(q)].append(q)
    check(len(by_key) == 5, "5 distinct idempotency keys (%d)" % len(by_key))
    for k, qs in by_key.items():
        ok = [q for q in qs if q.status == 200]
        check(len(qs) == 4 and len(ok) == 1,
              "key %s..: 4 attempts, exactly one accepted (%s)" % (k[:10], [q.status for q in qs]))
        gap = qs[3].t - qs[2].t
        check(gap >= 0.95, "Retry-After: 1 respected (%.2f s after the 429)" % gap)
        q = ok[0]
        check(q.json["id"] == k and len(k) == 64, "body id equals the Idempotency-Key")
        check(q.json["labels"]["vm"] == "vm-7" and q.json["status"] == "firing"
              and q.json["level"] == "critical" and q.json["value"] == 93.5,
              "body carries labels, status, level, value")
        want = "sha256=" + hmac.new(SECRET.encode(), q.body, hashlib.sha256).hexdigest()
        check(hmac.compare_digest(q.headers.get("X-Pantala-Signature", ""), want),
              "X-Pantala-Signature verifies with hmac/sha256 over the raw body")
        tampered = q.body.replace(b"vm-7", b"vm-8")
        bad = "sha256=" + hmac.new(SECRET.encode(), tampered, hashlib.sha256).hexdigest()
        check(bad != want, "a changed body would not verify")


def test_permanent(tmp):
    """A 400 is final: one attempt, counted failed, body in the log."""
    with Receiver(policy=lambda q, r: (400, {}, b"unknown field 'x'")) as r:
        stats, err = run_driver(os.path.join(tmp, "perm.db"), "webhook", {"url": r.url + "/h"},
                                "--count", 2, "--retry-initial-ms", 50, "--wait", 10)
        time.sleep(0.3)  # a wrong retry would show up here
        reqs = r.snapshot()
    check(stats["failed"] == 2 and stats["delivered"] == 0 and stats["retried"] == 0,
          "400 counted as permanent failure: %s" % stats)
    check(len(reqs) == 2, "one attempt per event on 400 (%d)" % len(reqs))
    check("unknown field 'x'" in err and "HTTP 400" in err,
          "the failure is logged with the response body")


def test_concurrent(tmp):
    """A slow receiver sees several transfers at once: the thread does not
    send one at a time."""
    with Receiver(policy=lambda q, r: time.sleep(0.4)) as r:
        t0 = time.time()
        stats, _ = run_driver(os.path.join(tmp, "conc.db"), "webhook", {"url": r.url + "/h"},
                              "--count", 8, "--wait", 20)
        took = time.time() - t0
        check(stats["delivered"] == 8, "8 delivered to a slow receiver")
        check(r.max_inflight >= 4, "at least 4 requests in flight at once (%d)" % r.max_inflight)
        check(took < 8 * 0.4, "faster than one at a time (%.2f s)" % took)


def test_no_duplicates(tmp):
    """Submits racing the delivery thread (500 events, 1 ms apart): each
    key arrives exactly once when the receiver always accepts."""
    with Receiver() as r:
        stats, _ = run_driver(os.path.join(tmp, "dup.db"), "webhook", {"url": r.url + "/h"},
                              "--count", 500, "--interval-ms", 1, "--wait", 30)
        counts = defaultdict(int)
        for q in r.snapshot():
            counts[key(q)] += 1
    check(stats["delivered"] == 500 and stats["pending"] == 0, "500 delivered: %s" % stats)
    check(len(counts) == 500 and max(counts.values()) == 1,
          "500 keys, none twice (max %d)" % max(counts.values()))


def test_kill9(tmp):
    """Killed with everything undelivered; the next process delivers it all."""
    accept = [False]
    with Receiver(policy=lambda q, r: None if accept[0] else (503, {}, b"down")) as r:
        outbox = os.path.join(tmp, "kill.db")
        settings = {"url": r.url + "/hook", "secret": "k"}
        p = subprocess.Popen(driver_args(outbox, "webhook", settings, "--count", 20, "--id-prefix",
                                         "c9", "--retry-initial-ms", 100, "--hold"),
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = p.stdout.readline()
        check(line.strip() == "submitted 20", "first process queued 20 events")
        r.wait_for(lambda reqs: len({key(q) for q in reqs}) >= 20, timeout=10)
        p.send_signal(signal.SIGKILL)
        p.wait()
        refused = {key(q) for q in r.snapshot()}
        check(all(q.status == 503 for q in r.snapshot()) and len(refused) == 20,
              "all 20 refused before the kill")
        accept[0] = True
        stats, _ = run_driver(outbox, "webhook", settings, "--count", 0, "--wait", 20)
        delivered = defaultdict(int)
        for q in r.snapshot():
            if q.status == 200:
                delivered[key(q)] += 1
    check(stats["pending"] == 0 and stats["delivered"] == 20,
          "after restart the outbox drained: %s" % stats)
    check(set(delivered) == refused, "every event queued before the kill arrived after it")
    check(all(v == 1 for v in delivered.values()), "each exactly once after the restart")


def main():
    with tempfile.TemporaryDirectory(prefix="pt-notify-") as tmp:
        test_retries(tmp)
        test_permanent(tmp)
        test_concurrent(tmp)
        test_no_duplicates(tmp)
        test_kill9(tmp)
    print("integration_notify_delivery: all passed")


if __name__ == "__main__":
    main()
