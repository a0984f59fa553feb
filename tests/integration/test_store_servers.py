#!/usr/bin/env python3
"""The server store backends (InfluxDB 1.x, VictoriaMetrics) against real
servers: the same points written through each backend (and through the
embedded SQLite store) must give the same answers as a reference computed
here from the raw points, for every aggregation, several steps, ranges
that cut buckets, MCIS-level across and group-by-VM queries, tag filters and
latest. Also: hostile names round-trip, what line protocol cannot carry is
counted, a refused write (HTTP 4xx) is permanent and counted, and an
unreachable, failing or hanging server is a transient error.

Run by ctest with PT_STORE_TOOL pointing at the pt_store_tool binary, which
drives one backend from JSON lines (store_tool.c). Standard library only.
"""
import http.server
import json
import math
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from servers import Influx, Victoria, free_port  # noqa: E402
from harness import AGENT, Pantalad  # noqa: E402

TOOL = os.environ.get("PT_STORE_TOOL", "build/tests/integration/pt_store_tool")
S = 10**9
# Ten minutes ago, on a multiple of 60 s: recent, so that latest finds it.
T0 = (int(time.time()) // 60 * 60 - 600) * S
NS, MCIS = "ns01", "web"
# VM names and tag values with what line protocol must escape; none of them
# has a backslash before ',', ' ' or '=' (InfluxDB 1.x cannot carry that,
# tested on its own below).
VMS = ["vm-a", "vm b,=\"q\"", "vm-ü"]
EINVAL, ECONNREFUSED, ETIMEDOUT, EIO = -22, -111, -110, -5
ENOTSUP = -95

# Catalog order of the fields used (the order a query without fields lists).
CATALOG = ["cpu_utilization", "cpu_user", "cpu_num", "proc_total",
           "disk_utilization", "disk_total", "disk_used"]


def run_tool(url, cmds, read_url=None):
    """Runs the commands through one backend; answers in order. The
    embedded store (before its MCIS work lands) leaves vm unset in per-VM
    answers: it is filled in from the command, for sqlite only."""
    argv = [TOOL, url] + ([read_url] if read_url else [])
    env = dict(os.environ)
    p = subprocess.run(argv, input="".join(json.dumps(c) + "\n" for c in cmds),
                       capture_output=True, text=True, errors="replace", timeout=120, env=env)
    if p.returncode != 0:
        raise AssertionError("pt_store_tool %s failed (%d): %s" % (url, p.returncode, p.stderr))
    out = [json.loads(line) for line in p.stdout.splitlines()]
    if len(out) != len(cmds):
        raise AssertionError("pt_store_tool answered %d of %d: %s" % (len(out), len(cmds), p.stderr))
    if url.startswith("sqlite:"):
        for c, r in zip(cmds, out):
            for s in r.get("series", []) + r.get("latest", []):
                if s["vm"] is None and c.get("vm") is not None:
                    s["vm"] = c["vm"]
    return out


def make_points():
    """Three VMs, 200 s at 1 s: cpu (with gaps and a field that comes and
    goes) and disk with two mounts, ms-aligned times."""
    rnd = random.Random(7)
    pts = []
    for vi, vm in enumerate(VMS):
        for i in range(200):
            ts = T0 + i * S + vi * 1000 * 1000  # VMs 1 ms apart
            if (i + vi) % 17 == 0:
                continue  # a lost sample
            f = [["cpu_utilization", "f", round(rnd.uniform(0, 100), 2)],
                 ["cpu_num", "u", 2 + vi],
                 ["proc_total", "u", rnd.randint(100, 300)]]
            if i % 3 == 0:
                f.append(["cpu_user", "f", round(rnd.uniform(0, 50), 2)])
            pts.append({"ns": NS, "mcis": MCIS, "vm": vm, "csp": "aws", "host": "h" + vm,
                        "m": "cpu", "tags": [], "fields": f, "ts": ts})
            for mount, dev in (("/", "vda1"), ("/data x", "vdb,1")):
                used = rnd.randint(10**9, 10**10)
                pts.append({"ns": NS, "mcis": MCIS, "vm": vm, "csp": "aws", "host": "h" + vm,
                            "m": "disk", "tags": [["mount", mount], ["device", dev]],
                            "fields": [["disk_used", "u", used],
                                       ["disk_utilization", "f", round(used / 2e8, 2)]],
                            "ts": ts})
    return pts


# ---- the reference ---------------------------------------------------------

def bucket(ts, step):
    return ts - ts % step


def reduce(vals, agg):
    if agg == "count":
        return float(len(vals))
    if not vals:
        return None
    if agg == "min":
        return min(vals)
    if agg == "max":
        return max(vals)
    if agg == "avg":
        return sum(vals) / len(vals)
    if agg == "sum":
        return sum(vals)
    if agg == "last":
        return vals[-1]
    if agg == "p95":
        s = sorted(vals)
        return s[math.ceil(0.95 * len(s) - 1e-9) - 1]
    raise ValueError(agg)


def series_key(p):
    return tuple(sorted((k, v) for k, v in p["tags"]))


def reference(points, q):
    """What docs/storage.md says a query answers: {(vm, tags): {field: {ts: v}}}."""
    sel = {}
    for p in points:
        if p["ns"] != q["ns"] or p["mcis"] != q["mcis"] or p["m"] != q["measurement"]:
            continue
        if q.get("vm") is not None and p["vm"] != q["vm"]:
            continue
        tags = dict(p["tags"])
        if any(tags.get(k) != v for k, v in q.get("tags", [])):
            continue
        if not (q["from"] <= p["ts"] < q["to"]):
            continue
        s = sel.setdefault((p["vm"], series_key(p)), {})
        for k, t, v in p["fields"]:
            if t == "s" or (q.get("fields") and k not in q["fields"]):
                continue
            s.setdefault(k, []).append((p["ts"], float(v)))
    step, agg = q.get("step", 0), q.get("agg")
    out = {}
    for key, cols in sel.items():
        res = {}
        for f, tv in cols.items():
            tv.sort()
            if step == 0:
                res[f] = dict(tv)
            else:
                b = {}
                for t, v in tv:
                    b.setdefault(bucket(t, step), []).append(v)
                res[f] = {t: reduce(vs, agg) for t, vs in b.items()}
        out[key] = res
    if q.get("vm") is None and not q.get("group_by_vm"):
        across = {}
        for (vm, tags), cols in out.items():
            for f, tv in cols.items():
                for t, v in tv.items():
                    across.setdefault((None, tags), {}).setdefault(f, {}).setdefault(t, []).append(v)
        out = {k: {f: {t: reduce(vs, q["across"]) for t, vs in tv.items()}
                   for f, tv in cols.items()} for k, cols in across.items()}
    return out


def as_map(res, q):
    """A tool answer in the reference's shape, checking the row and column
    rules on the way: no row without a value, count 0 where missing."""
    out = {}
    count = q.get("step", 0) and q.get("agg") == "count"
    for s in res["series"]:
        key = (s["vm"], tuple(sorted(s["tags"].items())))
        assert key not in out, "series twice: %r" % (key,)
        cols = {}
        for c, f in enumerate(s["fields"]):
            cols[f] = {t: row[c] for t, row in zip(s["ts"], s["vals"])
                       if row[c] is not None and not (count and row[c] == 0)}
        for t, row in zip(s["ts"], s["vals"]):
            assert any(v is not None for v in row), "an empty row at %d" % t
        out[key] = {f: v for f, v in cols.items() if v or q.get("fields")}
    return out


def close(a, b):
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


# ---- fakes for failure modes only -----------------------------------------

class Failing(http.server.BaseHTTPRequestHandler):
    """An HTTP server answering 503 to everything: a real server's overload
    cannot be produced on demand, and only the status matters here."""

    def do_POST(self):
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"error":"overloaded"}')

    do_GET = do_POST

    def log_message(self, *a):
        pass


class StoreServers(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pt-store-servers-")
        cls.influx = Influx().start()
        cls.victoria = Victoria().start()
        cls.points = make_points()
        # Small requests, so one write_batch is split into several.
        cls.urls = {
            "sqlite": "sqlite:///%s/metrics.db" % cls.tmp,
            "influxdb": "influxdb:%s/pantala?rp=pt&batch=700" % cls.influx.url,
            "victoriametrics": "victoriametrics:%s?batch=700" % cls.victoria.url,
        }
        for name, url in cls.urls.items():
            cmds = [{"op": "write", "points": cls.points[i:i + 1500]}
                    for i in range(0, len(cls.points), 1500)]
            for r in run_tool(url, cmds):
                assert r["rc"] == 0, (name, r)
        cls.victoria.flush()

    @classmethod
    def tearDownClass(cls):
        cls.influx.stop()
        cls.victoria.stop()

    def queries(self):
        base = {"op": "query", "ns": NS, "mcis": MCIS}
        ranges = [(T0, T0 + 200 * S), (T0 + 3 * S + 500 * 10**6, T0 + 150 * S + 250 * 10**6)]
        qs = []
        for fr, to in ranges:
            for vm in VMS[:2]:
                qs.append(dict(base, vm=vm, measurement="cpu", **{"from": fr, "to": to}, step=0))
                qs.append(dict(base, vm=vm, measurement="disk", **{"from": fr, "to": to}, step=0,
                               fields=["disk_used", "nosuch"]))
                for agg in ("min", "max", "avg", "last", "sum", "count", "p95"):
                    for step in (10 * S, 7 * S, 60 * S):
                        qs.append(dict(base, vm=vm, measurement="cpu",
                                       **{"from": fr, "to": to}, step=step, agg=agg))
                qs.append(dict(base, vm=vm, measurement="disk", **{"from": fr, "to": to},
                               step=30 * S, agg="max", tags=[["mount", "/data x"]]))
            for agg in ("min", "max", "avg", "last", "sum", "count", "p95"):
                qs.append(dict(base, measurement="cpu", **{"from": fr, "to": to}, step=20 * S,
                               agg=agg, group_by_vm=True))
                for across in ("min", "max", "avg", "sum"):
                    qs.append(dict(base, measurement="cpu", **{"from": fr, "to": to},
                                   step=30 * S, agg=agg, across=across))
            qs.append(dict(base, measurement="disk", **{"from": fr, "to": to}, step=60 * S,
                           agg="avg", across="sum", fields=["disk_used"]))
            qs.append(dict(base, measurement="disk", **{"from": fr, "to": to}, step=60 * S,
                           agg="p95", across="max", tags=[["device", "vdb,1"]]))
        return qs

    def check_against_reference(self, name):
        qs = self.queries()
        res = run_tool(self.urls[name], qs)
        mcis_unsupported = 0
        for q, r in zip(qs, res):
            what = "%s: %s" % (name, json.dumps({k: v for k, v in q.items() if k != "op"}))
            if name == "sqlite" and (q.get("vm") is None or q.get("tags")) and \
                    r["rc"] == ENOTSUP:
                # MCIS-level queries and tag filters on sqlite are being
                # written elsewhere; the moment they exist they are compared
                # like the rest.
                mcis_unsupported += 1
                continue
            self.assertEqual(r["rc"], 0, what + " -> " + r["err"])
            want, got = reference(self.points, q), as_map(r, q)
            self.assertTrue(want, "every query of the test has data: " + what)
            self.assertEqual(sorted(want), sorted(got), what)
            for key in want:
                wf = {f: v for f, v in want[key].items() if v}
                self.assertEqual(sorted(wf), sorted(f for f, v in got[key].items()
                                                    if v or not q.get("fields")), what)
                for f in wf:
                    self.assertEqual(sorted(wf[f]), sorted(got[key][f]), "%s %r %s" % (what, key, f))
                    for t in wf[f]:
                        self.assertTrue(close(wf[f][t], got[key][f][t]),
                                        "%s %r %s at %d: want %r got %r" %
                                        (what, key, f, t, wf[f][t], got[key][f][t]))
            # Field order without fields: catalog order, then by name.
            for s in r["series"]:
                if not q.get("fields"):
                    self.assertEqual(s["fields"], sorted(s["fields"], key=CATALOG.index), what)
        return res, mcis_unsupported

    def test_influxdb_matches_reference(self):
        self.check_against_reference("influxdb")

    def test_victoriametrics_matches_reference(self):
        self.check_against_reference("victoriametrics")

    def test_server_backends_match_sqlite(self):
        qs = self.queries()
        ref = run_tool(self.urls["sqlite"], qs)
        for name in ("influxdb", "victoriametrics"):
            got = run_tool(self.urls[name], qs)
            for q, a, b in zip(qs, ref, got):
                if a["rc"] == ENOTSUP:
                    continue  # see check_against_reference
                what = "%s vs sqlite: %s" % (name, json.dumps(q))
                self.assertEqual(a["rc"], b["rc"], what)
                self.assertEqual([(s["vm"], s["tags"], s["fields"], s["ts"]) for s in a["series"]],
                                 [(s["vm"], s["tags"], s["fields"], s["ts"]) for s in b["series"]],
                                 what)
                for sa, sb in zip(a["series"], b["series"]):
                    for t, ra, rb in zip(sa["ts"], sa["vals"], sb["vals"]):
                        if q.get("agg") == "count":
                            # sqlite leaves NaN for count in rows before a
                            # column first appears; storage.md says 0.
                            ra = [0.0 if x is None else x for x in ra]
                        self.assertTrue(all(close(x, y) for x, y in zip(ra, rb)),
                                        "%s at %d: %r %r" % (what, t, ra, rb))
                    if name == "influxdb" or q.get("fields"):
                        self.assertEqual(sa["ftypes"], sb["ftypes"], what)

    def test_sqlite_reference(self):
        """The embedded store agrees with the reference too (per VM; MCIS
        level as soon as it is implemented)."""
        self.check_against_reference("sqlite")

    def latest_ref(self, vm, m):
        newest = {}
        for p in self.points:
            if (vm and p["vm"] != vm) or (m and p["m"] != m):
                continue
            k = (p["vm"], p["m"], series_key(p))
            if k not in newest or p["ts"] > newest[k]["ts"]:
                newest[k] = p
        return newest

    def test_latest(self):
        cmds = [{"op": "latest", "ns": NS, "mcis": MCIS, "vm": VMS[1], "measurement": None},
                {"op": "latest", "ns": NS, "mcis": MCIS, "vm": VMS[0], "measurement": "disk"},
                {"op": "latest", "ns": NS, "mcis": MCIS, "vm": None, "measurement": "cpu"}]
        for name in ("influxdb", "victoriametrics", "sqlite"):
            res = run_tool(self.urls[name], cmds)
            for c, r in zip(cmds, res):
                if name == "sqlite" and c["vm"] is None and r["rc"] != 0:
                    continue  # MCIS-level latest on sqlite: being written elsewhere
                self.assertEqual(r["rc"], 0, "%s %r" % (name, c))
                want = self.latest_ref(c["vm"], c["measurement"])
                got = {(l["vm"], l["measurement"], tuple(sorted(l["tags"].items()))): l
                       for l in r["latest"]}
                self.assertEqual(sorted(want), sorted(got), name)
                # Order: by VM, catalog order of measurements, then tags.
                order = [(l["vm"], ["cpu", "disk"].index(l["measurement"])) for l in r["latest"]]
                self.assertEqual(order, sorted(order), name)
                for k, p in want.items():
                    l = got[k]
                    self.assertEqual(l["ts"], p["ts"], "%s %r" % (name, k))
                    wf = {f: (t, v) for f, t, v in p["fields"]}
                    self.assertEqual(sorted(wf), sorted(l["fields"]), "%s %r" % (name, k))
                    for f, (t, v) in wf.items():
                        gt, gv = l["fields"][f]
                        self.assertEqual(gt, t, "%s %r %s type" % (name, k, f))
                        self.assertTrue(close(float(v), float(gv)), "%s %r %s" % (name, k, f))

    # ---- names, escaping and what cannot be carried --------------------------

    def hostile_points(self, ts):
        names = ["sp ace", "com,ma", "eq=ual", "quo\"te", "back\\slash", "ünï©ødé 測試", "a\\b,c d=e"]
        pts = []
        for i, n in enumerate(names):
            pts.append({"ns": "ns " + n, "mcis": "m,=" + n, "vm": n, "csp": "c " + n,
                        "host": "h=" + n, "m": "me as,ure" + n,
                        "tags": [["k " + n, "v," + n], ["t=" + n, n]],
                        "fields": [["f " + n, "f", 1.5 + i], ["s,=" + n, "s", "x\"y\\z\n" + n],
                                   ["i" + n, "i", -2**63 + i], ["u" + n, "u", "18446744073709551615"],
                                   ["u2", "u", str(2**63 - 1)]],
                        "ts": ts + i * S})
        return pts

    def test_hostile_names_round_trip_influxdb(self):
        url = "influxdb:%s/hostile" % self.influx.url
        pts = self.hostile_points(T0)
        cmds = [{"op": "write", "points": pts}]
        for p in pts:
            cmds.append({"op": "latest", "ns": p["ns"], "mcis": p["mcis"], "vm": p["vm"],
                         "measurement": p["m"]})
            cmds.append({"op": "query", "ns": p["ns"], "mcis": p["mcis"], "vm": p["vm"],
                         "measurement": p["m"], "from": T0 - S, "to": T0 + 60 * S, "step": 0,
                         "tags": [p["tags"][0]]})
        res = run_tool(url, cmds)
        self.assertEqual(res[0]["rc"], 0, res[0])
        self.assertEqual(res[0]["unwritable"], 0)
        for i, p in enumerate(pts):
            lat, q = res[1 + 2 * i], res[2 + 2 * i]
            self.assertEqual(lat["rc"], 0)
            self.assertEqual(len(lat["latest"]), 1, p["vm"])
            l = lat["latest"][0]
            self.assertEqual((l["vm"], l["measurement"], l["ts"]), (p["vm"], p["m"], p["ts"]))
            self.assertEqual(l["tags"], dict(p["tags"]))
            f = {k: (t, v) for k, t, v in p["fields"]}
            s_key = [k for k in f if k.startswith("s,=")][0]
            # Line protocol has no escape for a line feed: it becomes a space.
            self.assertEqual(l["fields"][s_key], ["s", f[s_key][1].replace("\n", " ")])
            i_key = [k for k in f if k.startswith("i")][0]
            self.assertEqual(l["fields"][i_key], ["i", f[i_key][1]])
            f_key = [k for k in f if k.startswith("f ")][0]
            self.assertEqual(l["fields"][f_key], ["f", f[f_key][1]])
            # Unsigned: above INT64_MAX a float (no "u" in InfluxDB 1.x).
            u_key = [k for k in f if k.startswith("u") and k != "u2"][0]
            self.assertEqual(l["fields"][u_key][0], "f")
            self.assertEqual(l["fields"]["u2"][0], "i")  # not in the catalog: stays signed
            self.assertEqual(l["fields"]["u2"][1], 2**63 - 1)
            self.assertEqual(q["rc"], 0)
            self.assertEqual(len(q["series"]), 1)
            self.assertEqual(q["series"][0]["tags"], dict(p["tags"]))
            self.assertEqual(q["series"][0]["ts"], [p["ts"]])

    def test_hostile_names_round_trip_victoriametrics(self):
        url = "victoriametrics:%s" % self.victoria.url
        pts = self.hostile_points(T0)
        # VictoriaMetrics escapes backslashes, so these work there too.
        pts.append(dict(pts[0], vm="ends\\", tags=[["k", "x\\,y\\"]], m="bs"))
        res = run_tool(url, [{"op": "write", "points": pts}])
        self.assertEqual(res[0]["rc"], 0, res[0])
        # A '"' in a field name makes VictoriaMetrics lose the line (and
        # answer 204): such a point is skipped and counted instead.
        self.assertEqual(res[0]["unwritable"], 1)
        pts = [p for p in pts if '"' not in p["vm"]]
        self.victoria.flush()
        cmds = []
        for p in pts:
            cmds.append({"op": "query", "ns": p["ns"], "mcis": p["mcis"], "vm": p["vm"],
                         "measurement": p["m"], "from": T0 - S, "to": T0 + 60 * S, "step": 0,
                         "tags": [p["tags"][0]]})
        for p, q in zip(pts, run_tool(url, cmds)):
            self.assertEqual(q["rc"], 0, q)
            self.assertEqual(len(q["series"]), 1, p["vm"])
            s = q["series"][0]
            self.assertEqual((s["vm"], s["tags"], s["ts"]), (p["vm"], dict(p["tags"]), [p["ts"]]))
            f = {k: v for k, t, v in p["fields"] if t == "f"}
            for k, v in f.items():
                self.assertEqual(s["vals"][0][s["fields"].index(k)], v)
            self.assertFalse(any(k.startswith("s,=") for k in s["fields"]),
                             "string fields are not written to VictoriaMetrics")

    def test_influxdb_unwritable_and_invalid(self):
        url = "influxdb:%s/edge" % self.influx.url
        ok = {"ns": "n", "mcis": "m", "vm": "v", "m": "cpu", "tags": [],
              "fields": [["cpu_utilization", "f", 1.0]], "ts": T0}
        ends = dict(ok, vm="v2", tags=[["mount", "c:\\"]], ts=T0 + S)
        before = dict(ok, vm="v3", tags=[["mount", "a\\,b"]], ts=T0 + 2 * S)
        newline = dict(ok, vm="v4", tags=[["mount", "a\nb"]])
        res = run_tool(url, [
            {"op": "write", "points": [ok, ends, before]},
            {"op": "latest", "ns": "n", "mcis": "m", "vm": None, "measurement": "cpu"},
            {"op": "write", "points": [ok, newline]},
        ])
        # Backslash before ',' or at the end: skipped and counted, the rest stored.
        self.assertEqual(res[0]["rc"], 0)
        self.assertEqual(res[0]["unwritable"], 2)
        self.assertEqual([l["vm"] for l in res[1]["latest"]], ["v"])
        # A control character in a name is invalid everywhere: the batch is refused.
        self.assertEqual(res[2]["rc"], EINVAL)

    def test_influxdb_refused_write_is_permanent_and_counted(self):
        url = "influxdb:%s/conflict" % self.influx.url
        a = {"ns": "n", "mcis": "m", "vm": "v", "m": "x", "tags": [],
             "fields": [["f", "f", 1.0]], "ts": T0}
        b = dict(a, fields=[["f", "s", "text"]], ts=T0 + S)  # field type conflict
        res = run_tool(url, [{"op": "write", "points": [a]}, {"op": "write", "points": [b]},
                             {"op": "write", "points": [dict(a, ts=T0 + 2 * S)]}])
        self.assertEqual(res[0]["rc"], 0)
        self.assertEqual(res[1]["rc"], EINVAL, "a 4xx must be permanent (-EINVAL)")
        self.assertEqual(res[1]["refused"], 1)
        self.assertEqual(res[2]["rc"], 0)
        self.assertEqual(res[2]["refused"], 1)

    def test_transient_errors(self):
        closed = free_port()
        pt = {"ns": "n", "mcis": "m", "vm": "v", "m": "x", "tags": [],
              "fields": [["f", "f", 1.0]], "ts": T0}
        for scheme in ("influxdb", "victoriametrics"):
            path = "/db" if scheme == "influxdb" else ""
            r = run_tool("%s:http://127.0.0.1:%d%s?timeout=2s" % (scheme, closed, path),
                         [{"op": "write", "points": [pt]}])
            self.assertEqual(r[0]["rc"], ECONNREFUSED, scheme)
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Failing)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        try:
            for scheme in ("influxdb", "victoriametrics"):
                path = "/db" if scheme == "influxdb" else ""
                r = run_tool("%s:http://127.0.0.1:%d%s" % (scheme, srv.server_port, path),
                             [{"op": "write", "points": [pt]}])
                self.assertEqual(r[0]["rc"], EIO, scheme)
                self.assertEqual(r[0]["refused"], 0)
        finally:
            srv.shutdown()
        # A server that accepts and never answers: the timeout.
        hang = socket.socket()
        hang.bind(("127.0.0.1", 0))
        hang.listen(8)
        try:
            r = run_tool("victoriametrics:http://127.0.0.1:%d?timeout=300ms" %
                         hang.getsockname()[1], [{"op": "write", "points": [pt]}])
            self.assertEqual(r[0]["rc"], ETIMEDOUT)
        finally:
            hang.close()

    def test_victoriametrics_resent_point_stored_once(self):
        url = "victoriametrics:%s" % self.victoria.url
        p = {"ns": "n", "mcis": "dup", "vm": "v", "m": "x", "tags": [],
             "fields": [["f", "f", 3.25]], "ts": T0}
        run_tool(url, [{"op": "write", "points": [p]}])
        run_tool(url, [{"op": "write", "points": [p, p]}])
        self.victoria.flush()
        r = run_tool(url, [{"op": "query", "ns": "n", "mcis": "dup", "vm": "v", "measurement": "x",
                            "from": T0, "to": T0 + S, "step": S, "agg": "count"},
                           {"op": "query", "ns": "n", "mcis": "dup", "vm": "v", "measurement": "x",
                            "from": T0, "to": T0 + S, "step": 0}])
        self.assertEqual(r[0]["series"][0]["vals"], [[1.0]])
        self.assertEqual(r[1]["series"][0]["vals"], [[3.25]])
        # Why docs/storage.md requires the flag: without it, twice.
        with Victoria().start(dedup=False) as plain:
            url = "victoriametrics:%s" % plain.url
            run_tool(url, [{"op": "write", "points": [p]}, {"op": "write", "points": [p]}])
            plain.flush()
            r = run_tool(url, [{"op": "query", "ns": "n", "mcis": "dup", "vm": "v",
                                "measurement": "x", "from": T0, "to": T0 + S, "step": S,
                                "agg": "count"}])
            self.assertEqual(r[0]["series"][0]["vals"], [[2.0]])


API_TOKEN = "store-servers-test-token-0123456789"


class EndToEnd(unittest.TestCase):
    """pantalad on each server backend with a real agent: what the agent
    sends comes back through the HTTP API, and /metrics has the counters."""

    def run_daemon(self, store_url):
        d = tempfile.mkdtemp(prefix="pt-e2e-")
        pd = Pantalad(d, API_TOKEN, {"writer": {"flush": "100ms"}, "store": {"url": store_url}})
        pd.start(timeout=20)
        self.addCleanup(pd.stop, timeout=10)

        def call(method, path, body=None):
            status, text = pd.request(method, path, body or None, decode="text")
            if status < 400 and text.startswith(("{", "[")):
                return status, json.loads(text)
            return status, text

        status, body = call("POST", "/api/v1/agents", {"ns": "ns01", "mcis": "e2e", "vm": "vm-1"})
        self.assertEqual(status, 201, body)
        aconf = dict(body["agent_config"], interval="1s")
        apath = os.path.join(d, "agent.json")
        with open(apath, "w") as f:
            json.dump(aconf, f)
        os.chmod(apath, 0o600)
        alog = open(os.path.join(d, "agent.log"), "wb")
        agent = subprocess.Popen([AGENT, "--config", apath], stdout=alog, stderr=subprocess.STDOUT)
        self.addCleanup(lambda: (agent.terminate(), agent.wait(10), alog.close()))
        return call

    def check(self, call, flush=None):
        vm = "/api/v1/ns/ns01/mcis/e2e/vm/vm-1"
        deadline = time.monotonic() + 30
        while True:
            if flush:
                flush()
            status, body = call("GET", vm + "/metrics/cpu?fields=cpu_utilization&from=now-5m")
            if status == 200 and body["series"] and len(body["series"][0]["values"]) >= 2:
                break
            self.assertLess(time.monotonic(), deadline, "no cpu samples: %r" % (body,))
            time.sleep(0.3)
        for t, v in body["series"][0]["values"]:
            self.assertTrue(0.0 <= v <= 100.0)
        status, body = call("GET", vm + "/latest")
        self.assertEqual(status, 200, body)
        by = {m["name"]: m["fields"] for m in body["measurements"]}
        with open("/proc/meminfo") as f:
            total = int(next(l for l in f if l.startswith("MemTotal:")).split()[1]) * 1024
        self.assertEqual(by["memory"]["mem_total"], total)
        self.assertIsInstance(by["memory"]["mem_total"], int)
        self.assertEqual(by["cpu"]["cpu_num"], os.cpu_count())
        status, text = call("GET", "/metrics")
        self.assertIn('pantala_store_points_refused_total{reason="server_4xx"} 0', text)
        self.assertIn('pantala_store_points_refused_total{reason="unwritable"} 0', text)
        self.assertIn("pantala_store_errors_total 0", text)

    def test_influxdb(self):
        with Influx().start() as srv:
            self.check(self.run_daemon("influxdb:%s/pantala?rp=week" % srv.url))
            # The retention policy was created with store.retention (30 d).
            rps = srv.query('SHOW RETENTION POLICIES ON "pantala"')
            self.assertIn(["week", "720h0m0s"],
                          [r[:2] for r in rps["results"][0]["series"][0]["values"]])

    def test_victoriametrics(self):
        with Victoria().start() as srv:
            self.check(self.run_daemon("victoriametrics:%s" % srv.url), flush=srv.flush)


if __name__ == "__main__":
    unittest.main(verbosity=2)
