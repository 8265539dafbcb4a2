#!/usr/bin/env python3
"""receiver.py - a stand-in for the reward and notification services: a
real HTTP/1.1 server (keep-alive, one thread per connection) that records
every request to a JSONL file and answers as its mode says.

    receiver.py --log FILE [--host ADDR] [--port N] [--mode MODE]
                [--retry-after S] [--delay S] [--fail-every N]

Listens on ADDR (127.0.0.1 by default) and prints its port on stdout once
listening (--port 0, the default, picks a free one). Modes:
    ok        200 {"ok":true}
    fail500   500
    fail400   400 {"error":"bad_request",...}
    429       429 with Retry-After: --retry-after seconds
    slow      sleeps --delay seconds, then 200
    hang      reads the request, sleeps --delay seconds (past the client's
              timeout), then answers 200 to whoever is still there
    drop      starts a 200 answer and closes the connection mid-body
    okdrop    takes the request (records it as processed) and closes the
              connection without answering: succeed-then-drop
    flaky     500 to every --fail-every'th request (3 by default), after
              --delay seconds; 200 to the others, after --delay seconds
POST /_control {"mode":..., "retry_after":..., "delay":..., "fail_every":...,
"secret_file":...}
changes them; GET /_control shows them. Control requests are not
recorded.

With a secret_file (the dispatcher's signing secret), every request is
first checked the way docs/examples/verify-signature.py shows a service
to (this imports it, so the example is what the tests run): a bad or
stale signature is answered 401 whatever the mode, and each request is
recorded with "verified" (true or the reason) and "duplicate" (its
Idempotency-Key was processed before).
"""
import argparse
import importlib.util
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "docs", "examples", "verify-signature.py")


def load_example():
    """docs/examples/verify-signature.py as a module."""
    spec = importlib.util.spec_from_file_location("verify_signature", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


example = load_example()
state = {"mode": "ok", "retry_after": 1, "delay": 2.0, "fail_every": 3, "secret_file": None}
served = [0]  # requests recorded, for the flaky mode
lock = threading.Lock()
log = None
verifier = None  # an example.Receiver once secret_file is set


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def handle(self):
        try:
            super().handle()
        except OSError:  # the client reset the connection (killed)
            self.close_connection = True

    def answer(self, status, body=b"", headers=()):
        """Answers; a client gone meanwhile (a dispatcher killed, or past
        its timeout) is not an error of the receiver's."""
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        if self.path == "/_control":
            with lock:
                return self.answer(200, json.dumps(state).encode())
        self.answer(404, b'{"error":"not_found"}')

    def do_POST(self):
        global verifier
        body = self.read_body()
        if self.path == "/_control":
            with lock:
                state.update(json.loads(body))
                if state["secret_file"]:
                    verifier = example.Receiver(example.read_secret(state["secret_file"]))
                return self.answer(200, json.dumps(state).encode())
        with lock:
            status, why = verifier.check(self.headers, body) if verifier else (None, None)
            mode, retry_after, delay = state["mode"], state["retry_after"], state["delay"]
            served[0] += 1
            flaky = mode == "flaky"
            if flaky:
                mode = "fail500" if served[0] % max(1, int(state["fail_every"])) == 0 else "ok"
                # processed now, before the delay: a copy that arrives
                # meanwhile is a duplicate (a service's unique constraint)
                if verifier and status is None and mode == "ok":
                    verifier.processed(self.headers.get("Idempotency-Key"))
            log.write(json.dumps({
                "t": time.time(), "method": self.command, "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"), "mode": mode,
                "verified": True if status != 401 else why, "duplicate": why == "duplicate",
            }) + "\n")
            log.flush()
        if flaky:
            time.sleep(delay)
        if status == 401:
            return self.answer(401, json.dumps({"error": "bad_signature", "message": why}).encode())
        if verifier and mode in ("ok", "slow", "hang", "drop", "okdrop"):
            verifier.processed(self.headers.get("Idempotency-Key"))
        if mode == "ok":
            self.answer(200, b'{"ok":true}')
        elif mode == "fail500":
            self.answer(500, b'{"error":"internal"}')
        elif mode == "fail400":
            self.answer(400, b'{"error":"bad_coupon","message":"coupon template unknown"}')
        elif mode == "429":
            self.answer(429, b'{"error":"slow_down"}', [("Retry-After", str(retry_after))])
        elif mode in ("slow", "hang"):
            time.sleep(delay)
            try:
                self.answer(200, b'{"ok":true}')
            except OSError:
                self.close_connection = True
        elif mode == "drop":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 100\r\n\r\n{\"ok\"")
            self.wfile.flush()
            self.close_connection = True
        elif mode == "okdrop":
            self.close_connection = True
        else:
            self.answer(500, b'{"error":"unknown mode"}')


def main():
    global log
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--mode", default="ok")
    ap.add_argument("--retry-after", type=int, default=1)
    ap.add_argument("--delay", type=float, default=2.0)
    ap.add_argument("--fail-every", type=int, default=3)
    ap.add_argument("--host", default="127.0.0.1")
    a = ap.parse_args()
    state.update(mode=a.mode, retry_after=a.retry_after, delay=a.delay, fail_every=a.fail_every)
    log = open(a.log, "a")
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 128
    srv = ThreadingHTTPServer((a.host, a.port), Handler)
    print(srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
