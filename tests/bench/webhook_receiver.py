#!/usr/bin/env python3
"""A webhook receiver for tests and benchmarks (stdlib only).

Records every POST with its arrival time (time.time(), so it can be compared
with a send time taken in another process) and answers with what a policy
function says, so a test can make it fail, throttle or stall:

    from webhook_receiver import Receiver
    with Receiver() as r:                      # 127.0.0.1, free port
        ... point a notifier at r.url + "/hook" ...
        r.wait_for(lambda reqs: len(reqs) >= 3, timeout=10)
        for q in r.requests: print(q.t, q.path, q.headers["Idempotency-Key"], q.json)

    Receiver(policy=fn): fn(req, receiver) -> None (200) or (status, headers, body)

Run alone it prints one JSON line per arrival:
    python3 webhook_receiver.py --port 9099
"""
import http.server
import json
import threading
import time


class Request:
    """One received request. status is what the receiver answered."""

    def __init__(self, t, method, path, headers, body):
        self.t = t
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.status = None
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None


class Receiver:
    def __init__(self, host="127.0.0.1", port=0, policy=None):
        self.policy = policy
        self.requests = []
        self.inflight = 0
        self.max_inflight = 0
        self.cond = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real endpoint
            # Headers and body go out in two writes: with Nagle on, the body
            # waits for the client's delayed ACK (40 ms on Linux), which
            # would be measured as notification latency.
            disable_nagle_algorithm = True

            def log_message(self, *a):
                pass

            def do_POST(self):
                t = time.time()
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                req = Request(t, "POST", self.path, dict(self.headers.items()), body)
                with receiver.cond:
                    receiver.inflight += 1
                    receiver.max_inflight = max(receiver.max_inflight, receiver.inflight)
                try:
                    ans = receiver.policy(req, receiver) if receiver.policy else None
                finally:
                    with receiver.cond:
                        receiver.inflight -= 1
                status, headers, out = ans if ans else (200, {}, b"ok")
                req.status = status
                with receiver.cond:
                    receiver.requests.append(req)
                    receiver.cond.notify_all()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128  # listen backlog; 5 drops SYNs under bursts (1 s retransmit)

            def handle_error(self, request, client_address):
                pass  # a client killed mid-answer (the kill -9 test) is not news

        self.server = Server((host, port), Handler)
        self.port = self.server.server_address[1]
        self.url = "http://%s:%d" % (host, self.port)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, pred, timeout=10.0):
        """Waits until pred(requests) is true; returns it (False on timeout)."""
        deadline = time.time() + timeout
        with self.cond:
            while True:
                ok = pred(self.requests)
                left = deadline - time.time()
                if ok or left <= 0:
                    return ok
                self.cond.wait(min(left, 0.2))

    def snapshot(self):
        with self.cond:
            return list(self.requests)

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def main():
    import argparse
    import sys

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()

    def show(req, _r):
        print(json.dumps({"t": req.t, "path": req.path, "body": req.json}), flush=True)

    r = Receiver(args.host, args.port, policy=show)
    print("listening on %s" % r.url, file=sys.stderr, flush=True)
    try:
        r.thread.join()
    except KeyboardInterrupt:
        r.close()


if __name__ == "__main__":
    main()
