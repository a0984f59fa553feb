#!/usr/bin/env python3
"""Checks of what packaging/ produces, the way an operator or a distribution
would check them:

- the DEBs (cpack -G DEB): file lists and modes (dpkg-deb -c), control fields,
  maintainer scripts, and lintian without errors;
- the RPMs (cpack -G RPM; skipped with a message without rpmbuild): file lists,
  modes and scriptlets (rpm -qlpv, rpm -qp --scripts);
- the agent tarball (make-tarball.sh): installed by install.sh into an
  unprivileged user's prefix, the agent runs and its frames reach a UDP
  socket of the test, re-running is an upgrade that keeps the configuration,
  and --uninstall leaves nothing behind;
- as root only (CI), the agent DEB installed for real with dpkg: system user,
  files, the SysV script starts it (no systemd in a container) and frames
  arrive; dpkg --purge leaves no file, user or init link behind.

Environment: PT_BUILD_DIR (a configured and built tree), PT_SOURCE_DIR,
PANTALA_AGENT. Standard library only.
"""
import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("PT_BUILD_DIR", "build")
SRC = os.environ.get("PT_SOURCE_DIR", ".")
AGENT = os.environ.get("PANTALA_AGENT", os.path.join(BUILD, "agent", "pantala-agent"))
IS_ROOT = os.geteuid() == 0
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)
    return cond


def run(*cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run(list(cmd), **kw)


def listing(deb):
    """{path: (mode string, owner)} of a DEB's data."""
    out = {}
    for line in run("dpkg-deb", "-c", deb).stdout.splitlines():
        cols = line.split()
        path = cols[5][1:]  # "./usr/bin/x" -> "/usr/bin/x"
        out[path.rstrip("/") or "/"] = (cols[0], cols[1])
    return out


AGENT_FILES = {
    "/usr/bin/pantala-agent": "-rwxr-xr-x",
    "/lib/systemd/system/pantala-agent.service": "-rw-r--r--",
    "/etc/init.d/pantala-agent": "-rwxr-xr-x",
    "/usr/share/pantala/agent.json.example": "-rw-r--r--",
    "/usr/share/doc/pantala-agent/copyright": "-rw-r--r--",
    "/usr/share/doc/pantala-agent/changelog.gz": "-rw-r--r--",
}
COLLECTOR_FILES = {
    "/usr/sbin/pantalad": "-rwxr-xr-x",
    "/lib/systemd/system/pantalad.service": "-rw-r--r--",
    "/usr/share/pantala/pantalad.json": "-rw-r--r--",
    "/usr/share/doc/pantalad/copyright": "-rw-r--r--",
    "/usr/share/doc/pantalad/changelog.gz": "-rw-r--r--",
}


def cpack(gen, out):
    r = run("cpack", "-G", gen, "--config", os.path.join(BUILD, "CPackConfig.cmake"), "-B", out)
    check(r.returncode == 0, "cpack -G %s: %s%s" % (gen, r.stdout[-2000:], r.stderr[-2000:]))


def test_debs(tmp):
    out = os.path.join(tmp, "deb")
    cpack("DEB", out)
    agent = glob.glob(os.path.join(out, "pantala-agent_*.deb"))
    coll = glob.glob(os.path.join(out, "pantalad_*.deb"))
    if not check(len(agent) == 1 and len(coll) == 1, "two DEBs: %s" % os.listdir(out)):
        return None
    for deb, files in ((agent[0], AGENT_FILES), (coll[0], COLLECTOR_FILES)):
        got = listing(deb)
        for path, mode in files.items():
            check(path in got, "%s has %s" % (os.path.basename(deb), path))
            if path in got:
                check(got[path] == (mode, "root/root"),
                      "%s: %s is %s %s" % (os.path.basename(deb), path, *got[path]))
        check(not any(p.startswith("/etc/pantala") for p in got),
              "the live configuration is not shipped (upgrades never touch it)")
    # The agent's binary is the only executable besides the init script, and
    # the init script is a conffile (local edits survive upgrades).
    ctl = os.path.join(tmp, "ctl")
    run("dpkg-deb", "-e", agent[0], ctl)
    check(os.path.exists(os.path.join(ctl, "conffiles"))
          and "/etc/init.d/pantala-agent" in open(os.path.join(ctl, "conffiles")).read(),
          "the init script is a conffile")
    for s in ("postinst", "prerm", "postrm"):
        p = os.path.join(ctl, s)
        check(os.path.exists(p) and os.stat(p).st_mode & 0o777 == 0o755, "agent %s, mode 0755" % s)
    postrm = open(os.path.join(ctl, "postrm")).read()
    check("purge" in postrm and "deluser" in postrm and "agent.json" in postrm,
          "purge removes the config and the user")
    fields = run("dpkg-deb", "-f", agent[0], "Package", "Depends", "Description").stdout
    check("Package: pantala-agent" in fields and "adduser" in fields, "agent control: %s" % fields)
    check("Description: Pantala monitoring agent" in fields, "a real synopsis: %s" % fields)

    if shutil.which("lintian"):
        r = run("lintian", "--no-tag-display-limit", agent[0], coll[0])
        errors = [l for l in r.stdout.splitlines() if l.startswith("E:")]
        check(not errors, "lintian reports no errors: %s" % errors)
        print("lintian:", len(r.stdout.splitlines()), "tags (warnings/info), 0 errors" if not errors else "")
    else:
        print("SKIP lintian: not installed (Debian package lintian)")
    return agent[0]


def test_rpms(tmp):
    if not shutil.which("rpmbuild"):
        print("SKIP RPM: rpmbuild not installed (Debian package rpm)")
        return
    out = os.path.join(tmp, "rpm")
    cpack("RPM", out)
    agent = glob.glob(os.path.join(out, "pantala-agent-*.rpm"))
    coll = glob.glob(os.path.join(out, "pantalad-*.rpm"))
    if not check(len(agent) == 1 and len(coll) == 1, "two RPMs: %s" % os.listdir(out)):
        return
    for rpm, files in ((agent[0], AGENT_FILES), (coll[0], COLLECTOR_FILES)):
        got = {}
        for line in run("rpm", "-qlpv", rpm).stdout.splitlines():
            cols = line.split()
            got[cols[-1] if cols[0][0] != "l" else cols[-3]] = cols[0]
        for path, mode in files.items():
            check(got.get(path) == mode, "%s: %s %s" % (os.path.basename(rpm), path, got.get(path)))
        scripts = run("rpm", "-qp", "--scripts", rpm).stdout
        for s in ("postinstall", "preuninstall", "postuninstall"):
            check(s + " scriptlet" in scripts, "%s has a %s scriptlet" % (os.path.basename(rpm), s))
        check(not any(p.startswith("/etc/pantala") for p in got), "RPM ships no live config")


class Sink:
    """A UDP socket the agent sends to; counts Pantala frames (msgpack
    arrays of 12 elements, first byte 0x9c)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def frames(self, wait):
        n, end = 0, time.time() + wait
        self.sock.settimeout(0.2)
        while time.time() < end:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if data[:1] == b"\x9c":
                n += 1
        return n


def agent_config(path, port, vm):
    with open(path, "w") as f:
        json.dump({"collector": "127.0.0.1:%d" % port, "ns": "pkgtest", "mcis": "m1", "vm": vm,
                   "interval": "200ms"}, f)
    os.chmod(path, 0o644)  # install.sh must tighten this


def test_tarball(tmp):
    r = run(os.path.join(SRC, "packaging", "tarball", "make-tarball.sh"), AGENT, tmp)
    if not check(r.returncode == 0, "make-tarball.sh: " + r.stderr):
        return
    tarball = r.stdout.strip().splitlines()[-1]
    names = run("tar", "tzf", tarball).stdout.split()
    top = names[0].split("/")[0]
    for f in ("bin/pantala-agent", "install.sh", "pantala-agent.service", "pantala-agent.init",
              "agent.json.example", "README.md", "copyright"):
        check("%s/%s" % (top, f) in names, "tarball has %s" % f)

    # Install as an unprivileged user into a prefix of its own.
    home = os.path.join(tmp, "home")
    os.makedirs(home)
    run("tar", "xzf", tarball, "-C", home)
    prefix = os.path.join(home, "pantala")
    sink = Sink()
    cfg = os.path.join(home, "agent.json")
    agent_config(cfg, sink.port, "tarball-vm")
    as_user = []
    if IS_ROOT:
        nobody = pwd.getpwnam("nobody")
        for root, dirs, files in os.walk(home):
            for n in dirs + files + [""]:
                os.chown(os.path.join(root, n), nobody.pw_uid, nobody.pw_gid)
        as_user = ["setpriv", "--reuid=%d" % nobody.pw_uid, "--regid=%d" % nobody.pw_gid,
                   "--clear-groups", "env", "HOME=" + home]
    inst = os.path.join(home, top, "install.sh")
    r = run(*as_user, inst, "--prefix", prefix, "--config", cfg, "--start")
    check(r.returncode == 0, "install.sh as a user: %s %s" % (r.stdout, r.stderr))
    check("installed in %s" % prefix in r.stdout, "install.sh says where: " + r.stdout)
    conf = os.path.join(prefix, "etc", "agent.json")
    check(os.path.exists(conf) and os.stat(conf).st_mode & 0o777 == 0o600, "config installed 0600")
    check(sink.frames(2.0) >= 3, "the installed agent's frames arrive")
    ctl = os.path.join(prefix, "bin", "pantala-agentctl")
    r = run(*as_user, ctl, "status")
    check(r.returncode == 0 and "is running" in r.stdout, "pantala-agentctl status: " + r.stdout)

    # Re-running is an upgrade: same prefix, configuration kept, still running once.
    with open(conf) as f:
        before = f.read()
    r = run(*as_user, inst, "--prefix", prefix, "--start")
    check(r.returncode == 0, "re-running install.sh: " + r.stderr)
    with open(conf) as f:
        check(f.read() == before, "the configuration survives an upgrade")
    pids = run("pgrep", "-f", "%s/bin/pantala-agent --config" % prefix).stdout.split()
    check(len(pids) == 1, "exactly one agent runs after re-install: %s" % pids)
    check(sink.frames(1.0) >= 2, "frames still arrive after the upgrade")

    # A bad configuration is refused before anything is installed.
    bad = os.path.join(home, "bad.json")
    with open(bad, "w") as f:
        f.write('{"ns": "x"}')
    os.chmod(bad, 0o644)
    r = run(*as_user, inst, "--prefix", prefix, "--config", bad)
    check(r.returncode != 0 and "not a valid agent configuration" in r.stderr,
          "a bad --config is refused: " + r.stderr)

    r = run(*as_user, inst, "--uninstall", "--prefix", prefix)
    check(r.returncode == 0, "install.sh --uninstall: " + r.stderr)
    check(not os.path.exists(prefix), "nothing left in the prefix: %s" %
          (list(os.walk(prefix)) if os.path.exists(prefix) else ""))
    time.sleep(0.3)
    sink.frames(0.3)  # what was queued before the agent stopped
    check(sink.frames(1.0) == 0, "the agent stopped")


def test_deb_install(deb):
    if not IS_ROOT or not shutil.which("dpkg"):
        print("SKIP DEB install: needs root and dpkg (CI runs it)")
        return
    if run("dpkg-query", "-W", "pantala-agent").returncode == 0:
        print("SKIP DEB install: pantala-agent is already installed on this machine")
        return
    if os.path.isdir("/run/systemd/system"):
        print("SKIP DEB install: this machine runs systemd; the test would start a real service")
        return
    r = run("dpkg", "-i", deb)
    try:
        check(r.returncode == 0, "dpkg -i: %s %s" % (r.stdout, r.stderr))
        check(run("getent", "passwd", "pantala-agent").returncode == 0, "system user created")
        sink = Sink()
        agent_config("/etc/pantala/agent.json", sink.port, "deb-vm")
        # What the provisioner does after writing the config: re-run the
        # package's configuration step, which secures it, then start.
        r = run("dpkg-reconfigure", "pantala-agent")
        check(r.returncode == 0, "dpkg-reconfigure: " + r.stderr)
        st = os.stat("/etc/pantala/agent.json")
        check(st.st_mode & 0o777 == 0o600 and pwd.getpwuid(st.st_uid).pw_name == "pantala-agent",
              "config 0600 and owned by pantala-agent")
        r = run("/etc/init.d/pantala-agent", "start")
        check(r.returncode == 0, "init script starts the agent: %s %s" % (r.stdout, r.stderr))
        check(sink.frames(2.0) >= 3, "the packaged agent's frames arrive")
        pid = open("/run/pantala-agent.pid").read().strip()
        user = run("ps", "-o", "user=", "-p", pid).stdout.strip()
        check(user == "pantala-agent", "runs as pantala-agent: %r" % user)

        # An upgrade keeps the configuration (content, mode, owner) and the user.
        with open("/etc/pantala/agent.json") as f:
            conf = f.read()
        up = os.path.join(os.path.dirname(deb), "upgrade")
        r = run("cpack", "-G", "DEB", "--config", os.path.join(BUILD, "CPackConfig.cmake"), "-B",
                up, "-D", "CPACK_PACKAGE_VERSION=99.0.0")
        newer = glob.glob(os.path.join(up, "pantala-agent_99.0.0_*.deb"))
        if check(len(newer) == 1, "an upgrade package: %s" % r.stdout[-500:]):
            r = run("dpkg", "-i", newer[0])
            check(r.returncode == 0, "dpkg -i (upgrade): " + r.stderr)
            v = run("dpkg-query", "-W", "-f", "${Version}", "pantala-agent").stdout
            check(v == "99.0.0", "upgraded to 99.0.0: %r" % v)
            st = os.stat("/etc/pantala/agent.json")
            with open("/etc/pantala/agent.json") as f:
                check(f.read() == conf, "the upgrade kept the configuration")
            check(st.st_mode & 0o777 == 0o600 and pwd.getpwuid(st.st_uid).pw_name == "pantala-agent",
                  "still 0600, owned by pantala-agent")
    finally:
        r = run("dpkg", "--purge", "pantala-agent")
    check(r.returncode == 0, "dpkg --purge: " + r.stderr)
    for path in list(AGENT_FILES) + ["/etc/pantala/agent.json", "/etc/pantala"]:
        check(not os.path.exists(path), "%s removed by purge" % path)
    check(not glob.glob("/etc/rc?.d/*pantala-agent"), "no init links left")
    check(run("getent", "passwd", "pantala-agent").returncode != 0, "user removed by purge")
    check(not run("pgrep", "-f", "^/usr/bin/pantala-agent --config /etc/pantala/agent.json").stdout,
          "no packaged agent left running")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        deb = test_debs(tmp)
        test_rpms(tmp)
        test_tarball(tmp)
        if deb:
            test_deb_install(deb)
    if failures:
        print("%d check(s) failed" % len(failures))
        sys.exit(1)
    print("all package checks passed")


if __name__ == "__main__":
    main()
