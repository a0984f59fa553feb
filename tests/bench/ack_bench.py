#!/usr/bin/env python3
"""Acknowledged delivery, agent side: the agent's memory with a full ring,
and how long a full ring takes to drain once the collector is back.

Starts pantalad on a temporary data directory, registers one agent and runs
the real pantala-agent against it; stops pantalad until the agent logs that
its ring is full (it keeps sampling), reads the agent's RSS (VmRSS, VmHWM
from /proc), starts pantalad again and times the backfill: until the
collector has acknowledged every frame the agent sent before the restart
(GET /api/v1/agents/{id}: delivery: the agent's own ring_frames, and
acked_seq).

A benchmark: it prints figures and does not pass or fail. See
tests/bench/README.md ("Acknowledged delivery"). Python 3 standard library
only.

  python3 tests/bench/ack_bench.py [--build-dir build] [--interval 100ms]
          [--ring-bytes 1048576] [--resend-rate 50]
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import ack_common as ac  # noqa: E402


def status_kib(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build-dir", default=os.path.join(HERE, "..", "..", "build"))
    p.add_argument("--agent", help="pantala-agent to run (default: <build-dir>/agent/pantala-agent;"
                   " e.g. the static build's)")
    p.add_argument("--interval", default="100ms", help="agent interval (fills the ring fast)")
    p.add_argument("--ring-bytes", type=int, default=1048576)
    p.add_argument("--resend-rate", type=int, default=50)
    args = p.parse_args()
    ac.PANTALAD = os.path.join(args.build_dir, "collector", "pantalad")
    ac.AGENT = args.agent or os.path.join(args.build_dir, "agent", "pantala-agent")
    tmp = tempfile.mkdtemp(prefix="pt-ack-bench-")
    c = ac.Collector(tmp)
    agent = None
    try:
        c.start()
        reg = c.register("bench-1")
        agent = ac.Agent(tmp, reg, c.udp, "agent", interval=args.interval,
                         ring={"bytes": args.ring_bytes, "resend_rate": args.resend_rate})
        agent.start()
        ac.wait_until("the agent's first acks",
                      lambda: c.agent_info(agent.id)["delivery"]["acked_seq"] > 5, 30)
        time.sleep(2)
        rss_empty = status_kib(agent.proc.pid, "VmRSS")
        c.stop()
        down = time.time()
        ac.wait_until("the ring to fill", lambda: "ring full" in agent.read_log(), 600)
        filled = time.time() - down
        time.sleep(1)
        rss_full = status_kib(agent.proc.pid, "VmRSS")
        hwm = status_kib(agent.proc.pid, "VmHWM")
        c.start()
        up = time.time()
        # Drained: the agent reports (in its newest sample) that it owes no
        # more than a sample's frames, and the collector has acknowledged
        # everything it accepted.
        def drained():
            i = c.agent_info(agent.id)
            d = i["delivery"]
            if d["agent_ring_frames"] is not None and d["agent_ring_frames"] <= 4 \
                    and d["acked_seq"] + 4 >= i["last_seq"] and time.time() - up > 2:
                return d
            return None
        d = ac.wait_until("the backfill", drained, 600)
        took = time.time() - up
        info = c.agent_info(agent.id)
        print("# acknowledged delivery, agent side: %s, interval %s, ring.bytes %d, "
              "ring.resend_rate %d/s" % (ac.AGENT, args.interval, args.ring_bytes,
                                        args.resend_rate))
        print("ring filled after %.1f s of outage; dropped so far: %s frames"
              % (filled, d["agent_ring_dropped"]))
        print("agent VmRSS: %.2f MiB with an empty ring, %.2f MiB with a full ring "
              "(VmHWM %.2f MiB)" % (rss_empty / 1024, rss_full / 1024, hwm / 1024))
        print("drain: %.1f s from the collector's restart until the ring was empty again "
              "(acknowledged up to seq %d); frames resent %s, duplicates at the collector %d"
              % (took, d["acked_seq"], d["agent_resent"], info["frames"]["duplicate"]))
    finally:
        if agent:
            agent.stop()
        c.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
