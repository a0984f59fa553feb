#!/usr/bin/env python3
"""Provisioning end to end: the `pantala` CLI installs the agent over SSH
into a real OpenSSH server (Debian openssh-server) started by this test on a
free loopback port, with its own host key, configuration and authorized key,
and a real pantalad receives the agent's frames.

- the tarball path into an unprivileged user's prefix; re-running is a no-op;
  status; uninstall leaves nothing and unregisters the agent;
- host key mismatch refused with both fingerprints; unknown host key refused
  without --accept-new; a wrong SSH key; a closed port within the timeout;
- a user without sudo asking for a system install: clear error, nothing left;
- a failure after registration (the collector address the agent gets is
  wrong): everything rolled back;
- as root (CI): the DEB path installed for real over SSH as root, frames
  arrive, uninstall purges it (no file, user or init link left).

Environment: PANTALA_CLI, PANTALAD, PANTALA_AGENT, PT_BUILD_DIR, PT_SOURCE_DIR.
Skips (exit 0, with a message) when sshd or ssh-keygen are missing.
"""
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

from harness import AGENT, IS_ROOT, Pantalad, Sshd, free_port, have_sshd, remove_dir, run, \
    stop_process

CLI = os.environ.get("PANTALA_CLI", "build/provisioner/pantala")
BUILD = os.environ.get("PT_BUILD_DIR", "build")
SRC = os.environ.get("PT_SOURCE_DIR", ".")
TOKEN = "provisioning-test-token-0123456789"


class Provision(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="pt-prov-")
        os.chmod(cls.dir, 0o755)
        cls.procs = []
        cls.sshd = None
        cls.start_collector()
        cls.build_packages()
        cls.start_sshd()

    @classmethod
    def tearDownClass(cls):
        for p in cls.procs:
            stop_process(p, timeout=5)
        if cls.sshd:
            cls.sshd.remove_user()
        remove_dir(cls.dir)

    # ---- set-up ---------------------------------------------------------------

    @classmethod
    def start_collector(cls):
        udp = free_port(socket.SOCK_DGRAM)
        cls.pd = Pantalad(cls.dir, TOKEN, {
            "writer": {"flush": "100ms"},
            "provisioning": {"keys_dir": os.path.join(cls.dir, "keys"),
                             "known_hosts": os.path.join(cls.dir, "known_hosts"),
                             "packages": os.path.join(cls.dir, "pkgs"),
                             "collector": "127.0.0.1:%d" % udp}}, udp=udp)
        cls.udp, cls.http, cls.api = cls.pd.udp, cls.pd.http, cls.pd.api
        cls.token_file = os.path.join(cls.dir, "token")
        with open(cls.token_file, "w") as f:
            f.write(TOKEN + "\n")
        cls.procs.append(cls.pd.start().proc)

    @classmethod
    def build_packages(cls):
        cls.pkgs = os.path.join(cls.dir, "pkgs")
        os.makedirs(cls.pkgs)
        r = run(os.path.join(SRC, "packaging", "tarball", "make-tarball.sh"), AGENT, cls.pkgs)
        assert r.returncode == 0, r.stderr
        cls.have_deb = False
        if shutil.which("dpkg-deb") and os.path.exists(os.path.join(BUILD, "CPackConfig.cmake")):
            out = os.path.join(cls.dir, "cpack")
            r = run("cpack", "-G", "DEB", "--config", os.path.join(BUILD, "CPackConfig.cmake"),
                    "-B", out)
            for deb in glob.glob(os.path.join(out, "pantala-agent_*.deb")):
                shutil.copy(deb, cls.pkgs)
                cls.have_deb = True
        for root, dirs, files in os.walk(cls.pkgs):
            for n in dirs + files:
                os.chmod(os.path.join(root, n), 0o755)

    @classmethod
    def start_sshd(cls):
        d = cls.dir
        cls.sshd = Sshd(d, "ptprov", keys=("otherhostkey", "wrong_id"),
                        extra_config=["PermitRootLogin prohibit-password", "LogLevel VERBOSE"])
        cls.procs.append(cls.sshd.proc)
        cls.user, cls.home, cls.port = cls.sshd.user, cls.sshd.home, cls.sshd.port
        os.makedirs(os.path.join(d, "keys"), mode=0o700)
        shutil.copy(os.path.join(d, "id"), os.path.join(d, "keys", "id"))
        cls.known_hosts = os.path.join(d, "known_hosts")

    # ---- helpers --------------------------------------------------------------

    @classmethod
    def get(cls, path, body=None):
        """GET, or POST when there is a body; JSON back."""
        return cls.pd.request("GET" if body is None else "POST", path, body, decode="json")

    def agents(self, vm):
        status, doc = self.get("/api/v1/agents?ns=prov")
        self.assertEqual(status, 200)
        return [a for a in doc["agents"] if a["vm"] == vm]

    def pantala(self, action, *args, user=None, key="id", known_hosts=None, extra=()):
        cmd = [CLI, action, "--host", "127.0.0.1", "--port", str(self.port),
               "--user", user or self.user, "--known-hosts", known_hosts or self.known_hosts,
               "--api", self.api, "--token-file", self.token_file, "--packages", self.pkgs,
               "--collector", "127.0.0.1:%d" % self.udp, "--interval", "200ms",
               "--ns", "prov", "--mcis", "m1", "--connect-timeout", "5", "--wait", "10"]
        if key:
            cmd += ["--key", os.path.join(self.dir, key)]
        r = run(*cmd, *args, *extra)
        return r

    # ---- tests ----------------------------------------------------------------

    def test_1_tarball_into_prefix(self):
        prefix = os.path.join(self.home, "pantala")
        r = self.pantala("install", "--vm", "tgz-1", "--prefix", prefix, "--accept-new")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("tgz-1", r.stdout)
        self.assertRegex(r.stdout, r"tgz-1\s+127\.0\.0\.1\s+ok\s+tgz")
        self.assertIn("upload", r.stderr)  # progress lines
        a = self.agents("tgz-1")
        self.assertEqual(len(a), 1)
        self.assertGreater(a[0]["frames"]["accepted"], 0)
        conf = os.path.join(prefix, "etc", "agent.json")
        self.assertEqual(os.stat(conf).st_mode & 0o777, 0o600)
        # The host key was recorded (trust on first use, because asked).
        with open(self.known_hosts) as f:
            self.assertIn("[127.0.0.1]:%d" % self.port, f.read())

        # Idempotent: a second run changes nothing and keeps the one agent.
        r = self.pantala("install", "--vm", "tgz-1", "--prefix", prefix)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("nothing to do", r.stdout)
        a2 = self.agents("tgz-1")
        self.assertEqual([x["id"] for x in a2], [a[0]["id"]])

        r = self.pantala("status", "--vm", "tgz-1", "--prefix", prefix)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"tgz-1.*ok\s+tgz\s+\S+\s+running\s+up")

        r = self.pantala("uninstall", "--vm", "tgz-1", "--prefix", prefix)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertFalse(os.path.exists(prefix), "prefix removed")
        self.assertEqual(self.agents("tgz-1"), [])

    def test_1b_ssh_agent(self):
        """No --key: the keys of a running ssh-agent are used."""
        if not shutil.which("ssh-agent") or not shutil.which("ssh-add"):
            self.skipTest("ssh-agent/ssh-add not installed (openssh-client)")
        sock = os.path.join(self.dir, "agent.sock")
        agent = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL)
        try:
            for _ in range(50):
                if os.path.exists(sock):
                    break
                time.sleep(0.05)
            env = dict(os.environ, SSH_AUTH_SOCK=sock)
            r = run("ssh-add", os.path.join(self.dir, "id"), env=env)
            self.assertEqual(r.returncode, 0, r.stderr)
            prefix = os.path.join(self.home, "viaagent")
            cmd = [CLI, "status", "--host", "127.0.0.1", "--port", str(self.port), "--user",
                   self.user, "--known-hosts", self.known_hosts, "--accept-new", "--api",
                   self.api, "--token-file", self.token_file, "--ns", "prov", "--mcis", "m1",
                   "--vm", "sa-1", "--prefix", prefix]
            r = run(*cmd, env=env)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertRegex(r.stdout, r"sa-1.*ok.*not installed")
            # Without an agent and without --key: a clear error.
            env.pop("SSH_AUTH_SOCK")
            r = run(*cmd, env=env)
            self.assertEqual(r.returncode, 1)
            self.assertIn("no --key given and no ssh-agent reachable", r.stdout)
        finally:
            agent.terminate()
            agent.wait()

    def test_2_host_key_mismatch(self):
        kh = os.path.join(self.dir, "kh_mismatch")
        with open(os.path.join(self.dir, "otherhostkey.pub")) as f:
            typ, blob = f.read().split()[:2]
        with open(kh, "w") as f:
            f.write("[127.0.0.1]:%d %s %s\n" % (self.port, typ, blob))
        real = run("ssh-keygen", "-lf", os.path.join(self.dir, "hostkey.pub")).stdout.split()[1]
        recorded = run("ssh-keygen", "-lf", os.path.join(self.dir, "otherhostkey.pub")).stdout.split()[1]
        r = self.pantala("install", "--vm", "mm-1", "--prefix", "/tmp/never", "--accept-new",
                         known_hosts=kh)
        self.assertEqual(r.returncode, 1)
        self.assertIn("HOST KEY MISMATCH", r.stdout)
        self.assertIn(real, r.stdout)      # what the server presents
        self.assertIn(recorded, r.stdout)  # what known_hosts says
        self.assertEqual(self.agents("mm-1"), [])

    def test_3_unknown_host_key(self):
        kh = os.path.join(self.dir, "kh_empty")
        open(kh, "w").close()
        r = self.pantala("install", "--vm", "uk-1", "--prefix", "/tmp/never", known_hosts=kh)
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown host key", r.stdout)
        self.assertIn("--accept-new", r.stdout)

    def test_4_wrong_key_and_closed_port(self):
        r = self.pantala("install", "--vm", "wk-1", "--prefix", "/tmp/never", "--accept-new",
                         key="wrong_id")
        self.assertEqual(r.returncode, 1)
        self.assertIn("refused the key", r.stdout)
        closed = free_port()
        t0 = time.time()
        r = run(CLI, "install", "--host", "127.0.0.1", "--port", str(closed), "--user", self.user,
                "--key", os.path.join(self.dir, "id"), "--ns", "prov", "--mcis", "m1", "--vm",
                "cp-1", "--api", self.api, "--token-file", self.token_file, "--connect-timeout",
                "3")
        self.assertEqual(r.returncode, 1)
        self.assertIn("refused", r.stdout)
        self.assertLess(time.time() - t0, 10)

    def test_8_api(self):
        # Host keys are checked by the collector too: record ours first.
        r = self.pantala("status", "--vm", "x", "--prefix", "/tmp/none", "--accept-new")
        prefix = os.path.join(self.home, "api1")
        dflt = {"user": self.user, "key": "id", "ns": "prov", "mcis": "m1", "port": self.port}
        status, doc = self.get("/api/v1/provision", {
            "action": "install", "defaults": dflt, "interval": "200ms",
            "vms": [{"host": "127.0.0.1", "vm": "api-1", "prefix": prefix}]})
        self.assertEqual(status, 202, doc)
        job = doc["job"]
        deadline = time.time() + 60
        while time.time() < deadline:
            status, doc = self.get("/api/v1/provision/%d" % job)
            self.assertEqual(status, 200)
            if doc["state"] == "done":
                break
            time.sleep(0.2)
        self.assertEqual(doc["state"], "done")
        self.assertEqual(doc["summary"]["ok"], 1, doc)
        host = doc["hosts"][0]
        self.assertEqual((host["vm"], host["state"], host["kind"]), ("api-1", "ok", "tgz"))
        self.assertGreater(self.agents("api-1")[0]["frames"]["accepted"], 0)
        status, doc = self.get("/api/v1/provision")
        self.assertIn(job, [j["id"] for j in doc["jobs"]])

        # Uninstall the same way.
        status, doc = self.get("/api/v1/provision", {
            "action": "uninstall", "defaults": dflt,
            "vms": [{"host": "127.0.0.1", "vm": "api-1", "prefix": prefix}]})
        self.assertEqual(status, 202, doc)
        for _ in range(300):
            status, doc = self.get("/api/v1/provision/%d" % doc.get("job", doc.get("id")))
            if doc["state"] == "done":
                break
            time.sleep(0.2)
        self.assertEqual(doc["summary"]["ok"], 1, doc)
        self.assertEqual(self.agents("api-1"), [])
        self.assertFalse(os.path.exists(prefix))

        # Bad requests name the key; keys are only names inside keys_dir.
        status, doc = self.get("/api/v1/provision", {
            "action": "install", "vms": [{"host": "h", "user": "u", "key": "../../etc/shadow",
                                          "ns": "a", "mcis": "b", "vm": "c"}]})
        self.assertEqual(status, 400)
        self.assertIn("key", doc["error"]["message"])
        status, doc = self.get("/api/v1/provision", {"action": "install", "vms": [], "x": 1})
        self.assertEqual(status, 400)
        self.assertIn('"x"', doc["error"]["message"])
        status, doc = self.get("/api/v1/provision", {"action": "reinstall", "vms": []})
        self.assertEqual(status, 400)
        self.assertIn("action", doc["error"]["message"])
        status, doc = self.get("/api/v1/provision/999999")
        self.assertEqual(status, 404)

    @unittest.skipUnless(IS_ROOT, "needs a separate unprivileged user (root only)")
    def test_5_no_sudo(self):
        r = self.pantala("install", "--vm", "ns-1", "--accept-new", "--kind", "tgz")
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot run sudo without a password", r.stdout)
        self.assertEqual(self.agents("ns-1"), [])
        left = [p for p in glob.glob("/tmp/pantala-prov.*")
                if os.stat(p).st_uid == pwd.getpwnam(self.user).pw_uid]
        self.assertEqual(left, [], "no temporary directory left")

    def test_6_rollback(self):
        prefix = os.path.join(self.home, "rb")
        cmd = [CLI, "install", "--host", "127.0.0.1", "--port", str(self.port), "--user",
               self.user, "--key", os.path.join(self.dir, "id"), "--known-hosts",
               self.known_hosts, "--accept-new", "--api", self.api, "--token-file",
               self.token_file, "--packages", self.pkgs, "--ns", "prov", "--mcis", "m1",
               "--vm", "rb-1", "--prefix", prefix, "--collector", "127.0.0.1:%d" % free_port(
                   socket.SOCK_DGRAM), "--interval", "200ms", "--wait", "2"]
        r = run(*cmd)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("accepted no frame", r.stdout)
        self.assertIn("rolled back", r.stdout)
        self.assertEqual(self.agents("rb-1"), [], "registration rolled back")
        self.assertFalse(os.path.exists(os.path.join(prefix, "bin", "pantala-agent")),
                         "tarball install rolled back")

    @unittest.skipUnless(IS_ROOT, "installs a system package (root only; CI)")
    def test_7_deb_as_root(self):
        if not self.have_deb:
            self.skipTest("no DEB built (cpack/dpkg-deb missing)")
        if run("dpkg-query", "-W", "pantala-agent").returncode == 0:
            self.skipTest("pantala-agent is already installed on this machine")
        if os.path.isdir("/run/systemd/system"):
            self.skipTest("this machine runs systemd; the test would start a real service")
        r = self.pantala("install", "--vm", "deb-1", "--accept-new", user="root")
        try:
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertRegex(r.stdout, r"deb-1\s+127\.0\.0\.1\s+ok\s+deb")
            self.assertTrue(os.path.exists("/usr/bin/pantala-agent"))
            st = os.stat("/etc/pantala/agent.json")
            self.assertEqual(st.st_mode & 0o777, 0o600)
            self.assertEqual(pwd.getpwuid(st.st_uid).pw_name, "pantala-agent")
            self.assertGreater(self.agents("deb-1")[0]["frames"]["accepted"], 0)
            r = self.pantala("install", "--vm", "deb-1", user="root")
            self.assertIn("nothing to do", r.stdout)
        finally:
            r = self.pantala("uninstall", "--vm", "deb-1", user="root")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for p in ("/usr/bin/pantala-agent", "/etc/pantala/agent.json",
                  "/lib/systemd/system/pantala-agent.service", "/etc/init.d/pantala-agent"):
            self.assertFalse(os.path.exists(p), p)
        self.assertEqual(glob.glob("/etc/rc?.d/*pantala-agent"), [])
        self.assertNotEqual(run("getent", "passwd", "pantala-agent").returncode, 0)
        self.assertEqual(self.agents("deb-1"), [])


if __name__ == "__main__":
    if not have_sshd():
        print("SKIP: sshd/ssh-keygen not installed (Debian openssh-server, openssh-client)")
        sys.exit(0)
    unittest.main(verbosity=2)
