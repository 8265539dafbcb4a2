"""dispatchlib.py - what the dispatcher tests share: a Receiver (t/receiver.py
run as a real HTTP server process, verifying signatures with
docs/examples/verify-signature.py), running luckydice-dispatch, and
making wins through the API."""
import atexit
import json
import os
import subprocess
import sys
import tempfile
import time
import http.client
from harness import BUILD, Stack, promo

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from receiver import load_example  # noqa: E402

example = load_example()


class Receiver:
    def __init__(self, mode="ok", host="127.0.0.1", **kw):
        """host: the address to listen on (one that other network
        namespaces reach, for a cluster's hosts)."""
        self.dir = tempfile.mkdtemp(prefix="ld-recv-")
        self.log = os.path.join(self.dir, "requests.jsonl")
        self.host = host
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "receiver.py"),
                                      "--log", self.log, "--mode", mode, "--host", host],
                                     stdout=subprocess.PIPE, text=True)
        atexit.register(self.stop)
        self.port = int(self.proc.stdout.readline())
        self.url = "http://%s:%d" % (host, self.port)
        if kw:
            self.mode(mode, **kw)

    def mode(self, mode, **kw):
        return self.control(dict(kw, mode=mode))

    def control(self, settings):
        c = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            c.request("POST", "/_control", body=json.dumps(settings))
            return json.loads(c.getresponse().read())
        finally:
            c.close()

    def verify_with(self, secret_file):
        """From now on the receiver checks signatures with this secret."""
        return self.control({"secret_file": secret_file})

    def send(self, path, headers, body):
        """One request to the receiver as it is, for replaying what it got:
        (status, answer)."""
        c = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            c.request("POST", path, body=body, headers=headers)
            r = c.getresponse()
            return r.status, json.loads(r.read() or b"null")
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
    s = Stack(promos=[promo(pid, prizes=[{"id": "gift", "name": "기프티콘",
                                          "daily_stock": stock, "probability": 1}])],
              extra_config={"reward_url": recv.url + "/reward",
                            "notify_url": recv.url + "/notify", "dispatch": d})
    recv.verify_with(os.path.join(s.dir, "signing.secret"))
    return s


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
    return example.read_secret(os.path.join(s.dir, "signing.secret"))


def signed_ok(key, req, now=None):
    """Whether a request the receiver recorded verifies under key, by the
    example's own check."""
    return example.verify(key, req["headers"].get("x-luckydice-signature", ""),
                          req["headers"].get("idempotency-key", ""),
                          req["body"].encode(), now) is None
