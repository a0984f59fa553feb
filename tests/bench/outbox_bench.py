#!/usr/bin/env python3
"""Outbox benchmark: pantala-loadgen streams at a fixed rate into pantalad
while its embedded store is held locked (another process holds BEGIN
EXCLUSIVE on metrics.db) for --outage seconds; prints how much went to the
outbox, how fast, whether anything was dropped, and how fast it was replayed
once the lock was released.

    tests/bench/outbox_bench.py --rate 20000 --seconds 20 --outage 10

Not run by ctest (it loads the machine); see tests/bench/README.md.
"""
import argparse
import json
import os
import sys
import tempfile
import shutil
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import test_outbox as T  # noqa: E402  (Daemon, StoreLock)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build-dir", default="build")
    p.add_argument("--rate", type=int, default=20000, help="frames per second")
    p.add_argument("--seconds", type=float, default=20, help="how long to send")
    p.add_argument("--outage", type=float, default=10, help="seconds the store is locked")
    p.add_argument("--agents", type=int, default=1000)
    args = p.parse_args()
    T.PANTALAD = os.path.join(args.build_dir, "collector/pantalad")
    loadgen = os.path.join(args.build_dir, "tests/bench/pantala-loadgen")
    root = tempfile.mkdtemp(prefix="pt-outbox-bench-")
    d = T.Daemon(root, "subject")
    try:
        d.start()
        import subprocess
        lg = subprocess.Popen(
            [loadgen, "--target", "127.0.0.1:%d" % d.udp, "--unsigned", "--agents",
             str(args.agents), "--rate", str(args.rate), "--duration", str(args.seconds),
             "--json", "--quiet"], stdout=subprocess.PIPE, text=True)
        time.sleep(1)
        lock = T.StoreLock(d.db)
        t_lock = time.monotonic()
        peak_bytes = peak_frames = 0
        while time.monotonic() - t_lock < args.outage:
            m = d.metrics()
            peak_bytes = max(peak_bytes, m["pantala_outbox_bytes"])
            peak_frames = max(peak_frames, m["pantala_outbox_frames"])
            time.sleep(0.2)
        m_release = d.metrics()
        lock.release()
        t_release = time.monotonic()
        replayed0 = m_release["pantala_outbox_replayed_frames_total"]
        out, _ = lg.communicate()
        summary = json.loads(out.strip().splitlines()[-1])

        def caught_up():
            m = d.metrics()
            return (m["pantala_outbox_batches"] == 0 and m["pantala_write_queue_depth"] == 0 and
                    m["pantala_frames_written_total"] ==
                    m['pantala_frames_total{outcome="accepted"}'])
        while not caught_up() and time.monotonic() - t_release < 900:
            time.sleep(0.1)
        replay_s = time.monotonic() - t_release
        m = d.metrics()
        dropped = {r: m['pantala_frames_dropped_total{reason="%s"}' % r]
                   for r in ("queue_full", "store_error", "shutdown", "outbox_full",
                             "outbox_corrupt")}
        replayed = m["pantala_outbox_replayed_frames_total"] - replayed0
        res = {
            "rate": args.rate, "outage_s": args.outage,
            "sent": summary["frames"],
            "accepted": m['pantala_frames_total{outcome="accepted"}'],
            "written": m["pantala_frames_written_total"],
            "spilled_frames": m["pantala_outbox_spilled_frames_total"],
            "peak_outbox_bytes": peak_bytes, "peak_outbox_frames": peak_frames,
            "bytes_per_frame": round(peak_bytes / peak_frames, 1) if peak_frames else None,
            "release_to_caught_up_s": round(replay_s, 2),
            "replayed_frames": replayed,
            "stored_frames_per_s_after_release":
                round((m["pantala_frames_written_total"] - m_release["pantala_frames_written_total"])
                      / replay_s) if replay_s else None,
            "dropped": dropped,
        }
        print(json.dumps(res, indent=1))
        d.stop()
    finally:
        if d.proc:
            d.proc.kill()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
