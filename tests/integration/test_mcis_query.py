#!/usr/bin/env python3
"""End-to-end test of the MCIS-level query routes: a real pantalad on
loopback receives signed frames with values chosen by the test (three VMs of
one MCIS), and the HTTP API must answer the numbers worked out by hand:
across-VM aggregates, per-VM series (groupBy=vm), tag filters, the latest
values of every VM, and 400s naming the bad parameter.

Run by ctest with PANTALAD pointing at the binary. Standard library only.
"""
import hashlib
import hmac
import shutil
import signal
import socket
import struct
import tempfile
import time
import unittest
import urllib.parse

from harness import Pantalad, pack_uint

TOKEN = "integration-test-token-0123456789"
NS, MCIS = "ns9", "web"
VMS = ("vm-a", "vm-b", "vm-c")


# ---- a minimal MessagePack encoder (the subset the wire protocol uses) ----

def mp(v):
    if isinstance(v, bool) or v is None:
        raise TypeError("not used by the protocol")
    if isinstance(v, int):
        if v < 0:
            raise TypeError("negative ints are sent as ext 1")
        return pack_uint(v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        if len(b) < 32:
            return bytes([0xa0 | len(b)]) + b
        return b"\xd9" + bytes([len(b)]) + b
    if isinstance(v, (list, tuple)):
        assert len(v) < 16
        return bytes([0x90 | len(v)]) + b"".join(mp(x) for x in v)
    if isinstance(v, dict):
        assert len(v) < 16
        return bytes([0x80 | len(v)]) + b"".join(mp(k) + mp(x) for k, x in v.items())
    raise TypeError(type(v))


def frame(agent_id, key, epoch, seq, ts_ns, vm, measurements):
    body = mp([1, 1, 1, agent_id, epoch, seq, ts_ns, 1000, 0, 1,
               [NS, MCIS, vm, "aws", vm], measurements])
    return body + hmac.new(key, body, hashlib.sha256).digest()


# ---- the data set ----------------------------------------------------------
#
# At BASE + k s, k = 0..19 (BASE a multiple of 60 s, ten minutes ago):
#   cpu  cpu_utilization: vm-a 10 + k, vm-b 20 + 2k, vm-c 30 (k < 10 only)
#   disk device=sda  disk_used: 1, 2, 3 (vm-a, vm-b, vm-c)
#   disk device=total disk_used: 100, 200, 300

def cpu_value(v, k):
    return [10.0 + k, 20.0 + 2 * k, 30.0][v]


class McisQuery(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="pt-mcis-")
        cls.pd = Pantalad(cls.dir, TOKEN, {
            "writer": {"flush": "50ms"},
            "store": {"retention_1m": "30d", "retention_1h": "60d"},
        })
        cls.udp, cls.api = cls.pd.udp, cls.pd.api
        cls.pd.start()
        cls.base = (int(time.time()) // 60) * 60 - 600
        cls.send_data()

    @classmethod
    def tearDownClass(cls):
        cls.pd.stop(signal.SIGKILL)
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def read_log(cls):
        return cls.pd.read_log()[-3000:]

    @classmethod
    def get(cls, path, params=None):
        if params:
            path += "?" + urllib.parse.urlencode(params)
        return cls.pd.request("GET", path, decode="json")

    @classmethod
    def send_data(cls):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        epoch = int(time.time() * 1000)
        for v, vm in enumerate(VMS):
            status, reg = cls.pd.request("POST", "/api/v1/agents",
                                         {"ns": NS, "mcis": MCIS, "vm": vm, "csp": "aws"})
            assert status < 400, reg
            key = bytes.fromhex(reg["key"])
            for k in range(20):
                meas = [["disk", {"device": "sda"}, {"disk_used": v + 1}],
                        ["disk", {"device": "total"}, {"disk_used": 100 * (v + 1)}]]
                if v < 2 or k < 10:
                    meas.insert(0, ["cpu", {}, {"cpu_utilization": cpu_value(v, k)}])
                ts = (cls.base + k) * 10 ** 9
                sock.sendto(frame(reg["id"], key, epoch, k + 1, ts, vm, meas),
                            ("127.0.0.1", cls.udp))
        sock.close()
        # Stored when every VM's last disk point can be read back.
        deadline = time.time() + 15
        while time.time() < deadline:
            st, body = cls.get("/api/v1/ns/%s/mcis/%s/latest" % (NS, MCIS),
                               {"measurement": "disk"})
            if st == 200 and len(body["measurements"]) == 6 and all(
                    m["time"] == cls.iso(cls.base + 19) for m in body["measurements"]):
                return
            time.sleep(0.1)
        raise RuntimeError("frames were not stored: " + cls.read_log())

    @staticmethod
    def iso(t):
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))

    def mcis(self, measurement, **params):
        return self.get("/api/v1/ns/%s/mcis/%s/metrics/%s" % (NS, MCIS, measurement), params)

    def rng(self, a, b):
        return {"from": str(self.base + a), "to": str(self.base + b)}

    # ------------------------------------------------------------------ tests

    def test_across_each_combiner(self):
        # avg per VM over 10 s: [0,10) a 14.5 b 29 c 30; [10,20) a 24.5 b 49
        want = {"avg": (24.5, 36.75), "min": (14.5, 24.5), "max": (30, 49), "sum": (73.5, 73.5)}
        for across, (w0, w1) in want.items():
            st, body = self.mcis("cpu", step="10s", agg="avg", across=across, **self.rng(0, 20))
            self.assertEqual(st, 200, body)
            self.assertEqual(body["across"], across)
            self.assertEqual(body["agg"], "avg")
            self.assertIsNone(body["groupBy"])
            self.assertEqual(len(body["series"]), 1)
            s = body["series"][0]
            self.assertNotIn("vm", s)
            self.assertEqual(s["columns"], ["time", "cpu_utilization"])
            self.assertEqual(s["values"], [[self.iso(self.base), w0],
                                           [self.iso(self.base + 10), w1]])

    def test_across_defaults_and_minute_buckets(self):
        # No step, agg or across: 1 minute buckets, avg per VM, avg across.
        # The minute [0, 60): a 19.5, b 39, c 30 -> 29.5. Served by the
        # 1 m roll-ups for an aligned range, with raw edges for an unaligned
        # one; both must agree.
        for a, b in ((0, 60), (-7, 73)):
            st, body = self.mcis("cpu", **self.rng(a, b))
            self.assertEqual(st, 200, body)
            self.assertEqual(body["step"], "1m")
            self.assertEqual(body["across"], "avg")
            self.assertEqual(body["series"][0]["values"], [[self.iso(self.base), 29.5]])
        # count per VM summed across VMs stays an integer: 20 + 20 + 10
        st, body = self.mcis("cpu", step="1m", agg="count", across="sum", **self.rng(0, 60))
        self.assertEqual(body["series"][0]["values"], [[self.iso(self.base), 50]])

    def test_group_by_vm(self):
        st, body = self.mcis("cpu", step="10s", agg="max", groupBy="vm", **self.rng(0, 20))
        self.assertEqual(st, 200, body)
        self.assertEqual(body["groupBy"], "vm")
        self.assertIsNone(body["across"])
        got = {s["vm"]: s["values"] for s in body["series"]}
        self.assertEqual(got, {
            "vm-a": [[self.iso(self.base), 19.0], [self.iso(self.base + 10), 29.0]],
            "vm-b": [[self.iso(self.base), 38.0], [self.iso(self.base + 10), 58.0]],
            "vm-c": [[self.iso(self.base), 30.0]],
        })
        # raw points per VM
        st, body = self.mcis("cpu", groupBy="vm", **self.rng(0, 20))
        self.assertEqual([len(s["values"]) for s in body["series"]], [20, 20, 10])
        self.assertIsNone(body["step"])

    def test_tag_filters(self):
        st, body = self.mcis("disk", step="20s", agg="last", across="sum", **self.rng(0, 20))
        self.assertEqual(st, 200, body)
        got = {s["tags"]["device"]: s["values"] for s in body["series"]}
        self.assertEqual(got, {"sda": [[self.iso(self.base), 6]],
                               "total": [[self.iso(self.base), 600]]})
        st, body = self.mcis("disk", step="20s", agg="last", across="avg",
                             tag="device:total", **self.rng(0, 20))
        self.assertEqual(len(body["series"]), 1)
        self.assertEqual(body["series"][0]["tags"], {"device": "total"})
        self.assertEqual(body["series"][0]["values"], [[self.iso(self.base), 200.0]])
        # the per-VM route takes tag filters too
        st, body = self.get("/api/v1/ns/%s/mcis/%s/vm/vm-c/metrics/disk" % (NS, MCIS),
                            dict(tag="device:sda", **self.rng(0, 20)))
        self.assertEqual(st, 200, body)
        self.assertEqual(len(body["series"]), 1)
        self.assertEqual(body["series"][0]["tags"], {"device": "sda"})
        self.assertEqual(len(body["series"][0]["values"]), 20)
        # repeated tag= parameters must all match
        url = ("/api/v1/ns/%s/mcis/%s/metrics/disk?tag=device:sda&tag=device:total&from=%d&to=%d"
               % (NS, MCIS, self.base, self.base + 20))
        st, body = self.get(url)
        self.assertEqual((st, body["series"]), (200, []))

    def test_latest_of_every_vm(self):
        st, body = self.get("/api/v1/ns/%s/mcis/%s/latest" % (NS, MCIS))
        self.assertEqual(st, 200, body)
        ms = body["measurements"]
        self.assertEqual([(m["vm"], m["name"]) for m in ms],
                         [(vm, n) for vm in VMS for n in ("cpu", "disk", "disk")])
        self.assertEqual(ms[0]["fields"], {"cpu_utilization": 29.0})
        self.assertEqual(ms[6]["fields"], {"cpu_utilization": 30.0})
        self.assertEqual(ms[6]["time"], self.iso(self.base + 9))
        self.assertEqual(ms[8]["tags"], {"device": "total"})
        self.assertEqual(ms[8]["fields"], {"disk_used": 300})
        self.assertEqual(body["time"], self.iso(self.base + 19))

    def test_errors_name_the_parameter(self):
        for params, name in (({"across": "p95"}, '"across"'),
                             ({"groupBy": "host"}, '"groupBy"'),
                             ({"groupBy": "vm", "across": "sum"}, '"across"'),
                             ({"tag": "nocolon"}, '"tag"'),
                             ({"tag": "device:"}, '"tag"'),
                             ({"step": "soon"}, '"step"'),
                             ({"agg": "median", "step": "1m"}, '"agg"'),
                             ({"colour": "red"}, '"colour"')):
            st, body = self.mcis("cpu", **params)
            self.assertEqual(st, 400, params)
            self.assertIn(name, body["error"]["message"], params)
        st, body = self.get("/api/v1/ns/%s/mcis/%s/latest" % (NS, MCIS), {"measurement": "x" * 300})
        self.assertEqual(st, 400)
        self.assertIn('"measurement"', body["error"]["message"])
        st, body = self.get("/api/v1/ns/%s/mcis/nosuch/metrics/cpu" % NS)
        self.assertEqual(st, 404)
        st, body = self.get("/api/v1/ns/%s/mcis/nosuch/latest" % NS)
        self.assertEqual(st, 404)


if __name__ == "__main__":
    unittest.main(verbosity=2)
