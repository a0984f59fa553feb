"""Shared by the test_notify_*.py integration tests: runs notify_driver
(built by CMake, path in $NOTIFY_DRIVER) and imports the webhook receiver."""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
from webhook_receiver import Receiver  # noqa: E402,F401
from harness import free_port  # noqa: E402,F401 (the tests' import)

DRIVER = os.environ.get("NOTIFY_DRIVER")
if not DRIVER or not os.access(DRIVER, os.X_OK):
    sys.exit("NOTIFY_DRIVER must name the notify_driver binary (ctest sets it)")


def driver_args(outbox, htype, settings, *extra):
    return [DRIVER, "--outbox", outbox, "--type", htype, "--settings",
            json.dumps(settings)] + [str(x) for x in extra]


def run_driver(outbox, htype, settings, *extra, timeout=60):
    """Submits, waits for the outbox to drain; returns (stats, stderr)."""
    p = subprocess.run(driver_args(outbox, htype, settings, *extra), capture_output=True,
                       text=True, timeout=timeout)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if not lines:
        raise AssertionError("notify_driver printed no stats (rc %d): %s" % (p.returncode, p.stderr))
    return json.loads(lines[-1]), p.stderr


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)
    print("ok:", msg, flush=True)
