"""dispatchlib.py - what the dispatcher tests share: a Receiver (t/receiver.py
run as a real HTTP server process), running luckydice-dispatch, making
wins through the API, and checking signatures."""
import atexit
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
import time
import http.client
from harness import BUILD, Stack, promo

HERE = os.path.dirname(os.path.abspath(__file__))


class Receiver:
    def __init__(self, mode="ok", **kw):
        self.dir = tempfile.mkdtemp(prefix="ld-recv-")
        self.log = os.path.join(self.dir, "requests.jsonl")
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "receiver.py"),
                                      "--log", self.log, "--mode", mode],
                                     stdout=subprocess.PIPE, text=True)
        atexit.register(self.stop)
        self.port = int(self.proc.stdout.readline())
        self.url = "http://127.0.0.1:%d" % self.port
        if kw:
            self.mode(mode, **kw)

    def mode(self, mode, **kw):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.request("POST", "/_control", body=json.dumps(dict(kw, mode=mode)))
            return json.loads(c.getresponse().read())
        finally:
            c.close()

    def requests(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [json.loads(line) for line in f if line.endswith("\n")]

    def keys(self, modes=None):
        return [r["headers"].get("idempotency-key") for r in self.requests()
                if modes is None or r["mode"] in modes]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


FAST = {"lease_seconds": 2, "backoff_base_seconds": 1, "backoff_max_seconds": 2,
        "max_attempts": 5, "timeout_ms": 500, "concurrency": 4, "batch": 50}


def stack_for(recv, pid, dispatch=None, stock=1000):
    """A stack whose reward and notify URLs point to recv, with a promotion
    pid whose one prize is won by every draw."""
    d = dict(FAST, **(dispatch or {}))
    return Stack(promos=[promo(pid, prizes=[{"id": "gift", "name": "기프티콘",
                                             "daily_stock": stock, "probability": 1}])],
                 extra_config={"reward_url": recv.url + "/reward",
                               "notify_url": recv.url + "/notify", "dispatch": d})


def make_wins(s, pid, uids):
    """Each user visits and draws once: one win, two outbox events each."""
    toks = s.tokens(*uids)
    for u, t in zip(uids, toks):
        s.api("POST", pid, "visit", token=t)
        r = s.api("POST", pid, "draws", {"request_id": "req-" + u + "-1"}, token=t)
        assert r.status == 200 and r.json["draw"]["prize"], r
    return toks


def dispatch(s, *args, env=None, timeout=120):
    return subprocess.run([os.path.join(BUILD, "luckydice-dispatch")] + [str(a) for a in args],
                          env=env or s.env, capture_output=True, text=True, timeout=timeout)


def dispatch_until_done(s, limit=30):
    """Runs the dispatcher until nothing is pending (or limit seconds)."""
    end = time.time() + limit
    r = None
    while time.time() < end:
        r = dispatch(s, "--max-seconds", 10)
        if s.scalar("SELECT count(*) FROM outbox WHERE state='pending'") == 0:
            break
        time.sleep(0.3)
    return r


def signing_key(s):
    with open(os.path.join(s.dir, "signing.secret"), "rb") as f:
        k = f.read()
    return k[:-1] if k.endswith(b"\n") else k


def signed_ok(key, req):
    want = "sha256=" + hmac.new(key, req["body"].encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(req["headers"].get("x-luckydice-signature", ""), want)
