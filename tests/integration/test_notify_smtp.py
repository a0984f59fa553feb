#!/usr/bin/env python3
"""The e-mail notifier against a minimal SMTP sink started here (ESMTP with
AUTH PLAIN, written with socketserver: Python's smtpd is gone in 3.12):
the message arrives with its subject, headers and body; a refused
recipient (550) or bad password (535) is a permanent failure after one
attempt, one bad recipient among good ones is skipped; a 451 is retried."""
import base64
import email
import email.policy
import email.utils
import os
import socketserver
import tempfile
import threading

from notify_common import check, run_driver


class Sink(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), SmtpHandler)
        self.messages = []     # (mail_from, [rcpt], auth, bytes)
        self.transactions = 0  # DATA commands seen
        self.deferred = set()  # recipients already answered 451 once
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_forever, daemon=True).start()
        self.url = "smtp://127.0.0.1:%d" % self.server_address[1]


class SmtpHandler(socketserver.StreamRequestHandler):
    def reply(self, line):
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self):
        srv = self.server
        mail_from, rcpts, auth = None, [], None
        self.reply("220 sink ESMTP")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.decode().rstrip("\r\n")
            verb = cmd.split(" ")[0].upper()
            if verb == "EHLO":
                self.reply("250-sink")
                self.reply("250-AUTH PLAIN")
                self.reply("250 8BITMIME")
            elif verb == "HELO":
                self.reply("250 sink")
            elif verb == "AUTH":
                parts = cmd.split(" ")
                if len(parts) < 3:
                    self.reply("334 ")
                    parts.append(self.rfile.readline().decode().strip())
                _, user, pw = base64.b64decode(parts[2]).split(b"\0")
                auth = (user.decode(), pw.decode())
                self.reply("235 ok" if pw == b"hunter2" else "535 authentication failed")
            elif verb == "MAIL":
                mail_from, rcpts = cmd[10:].strip(), []
                self.reply("250 ok")
            elif verb == "RCPT":
                to = cmd[8:].strip()
                if to.startswith("<nobody@"):
                    self.reply("550 no such user here")
                else:
                    rcpts.append(to)
                    self.reply("250 ok")
            elif verb == "DATA":
                self.reply("354 go ahead")
                data = []
                while True:
                    l = self.rfile.readline()
                    if l in (b".\r\n", b""):
                        break
                    data.append(l[1:] if l.startswith(b"..") else l)
                with srv.lock:
                    srv.transactions += 1
                    if "<retry@example.com>" in rcpts and "retry" not in srv.deferred:
                        srv.deferred.add("retry")
                        self.reply("451 try again later")
                        continue
                    srv.messages.append((mail_from, rcpts, auth, b"".join(data)))
                self.reply("250 queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 ok")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")


def main():
    sink = Sink()
    with tempfile.TemporaryDirectory(prefix="pt-notify-smtp-") as tmp:
        outbox = os.path.join(tmp, "outbox.db")
        settings = {"url": sink.url, "from": "Pantala <alerts@example.com>",
                    "to": ["ops@example.com", "Oncall <oncall@example.com>"],
                    "username": "pantala", "password": "hunter2", "starttls": "none"}
        stats, err = run_driver(outbox, "email", settings, "--label", "vm=vm-1", "--label",
                                "mcis=web", "--id-prefix", "e1", "--wait", 15)
        check(stats["delivered"] == 1, "mail accepted by the sink: %s %s" % (stats, err))
        check(len(sink.messages) == 1, "one message for two recipients")
        mail_from, rcpts, auth, raw = sink.messages[0]
        check(mail_from == "<alerts@example.com>", "envelope sender")
        check(rcpts == ["<ops@example.com>", "<oncall@example.com>"], "envelope recipients")
        check(auth == ("pantala", "hunter2"), "AUTH PLAIN with the configured credentials")
        m = email.message_from_bytes(raw, policy=email.policy.default)
        check(m["Subject"] == "[Pantala] CRITICAL firing: cpu_high (vm=vm-1)",
              "subject names level, status, rule and VM: %r" % m["Subject"])
        check(m["From"] == "Pantala <alerts@example.com>", "From header")
        check("oncall@example.com" in m["To"] and "ops@example.com" in m["To"], "To header")
        check(email.utils.parsedate_to_datetime(m["Date"]) is not None, "Date header parses")
        check(m["Message-ID"].startswith("<e1000000") and m["Message-ID"].endswith("@pantala>"),
              "Message-ID from the event id")
        body = m.get_content()
        for want in ("Rule:      cpu_high", "Level:     critical", "Value:     93.5",
                     "Threshold: 90", "vm = vm-1", "mcis = web",
                     "summary = CPU above 90% on the test VM"):
            check(want in body, "body has %r" % want)

        n0 = sink.transactions
        bad = dict(settings, to="nobody@example.com")
        stats, err = run_driver(outbox, "email", bad, "--id-prefix", "e2", "--wait", 10)
        check(stats["failed"] == 1 and stats["retried"] == 0,
              "550 recipient: permanent failure %s" % stats)
        check("550" in err, "logged with the server's reply")

        mixed = dict(settings, to=["nobody@example.com", "ops@example.com"])
        stats, err = run_driver(outbox, "email", mixed, "--id-prefix", "e5", "--wait", 10)
        check(stats["delivered"] == 1, "one refused recipient does not stop the others %s" % stats)
        check(sink.messages[-1][1] == ["<ops@example.com>"], "delivered to the accepted one")
        n0 = sink.transactions

        wrong = dict(settings, password="wrong")
        stats, err = run_driver(outbox, "email", wrong, "--id-prefix", "e3", "--wait", 10)
        check(stats["failed"] == 1 and stats["retried"] == 0,
              "535 authentication failed: permanent failure %s" % stats)
        check(sink.transactions == n0, "no message data sent on refused recipient or login")

        later = dict(settings, to="retry@example.com")
        stats, err = run_driver(outbox, "email", later, "--id-prefix", "e4",
                                "--retry-initial-ms", 50, "--wait", 10)
        check(stats["delivered"] == 1 and stats["retried"] == 1, "451 retried, then delivered %s"
              % stats)
        check(len(sink.messages) == 3, "the deferred message arrived once")
    sink.shutdown()
    print("integration_notify_smtp: all passed")


if __name__ == "__main__":
    main()
