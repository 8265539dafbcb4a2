#!/usr/bin/env python3
# The Redis cache: written after every commit with a version
# compare-and-set, never the cause of a failed request, repaired after an
# outage, and never showing an older balance than one it has shown.
import os, signal, subprocess, threading, time
from harness import Stack, ok, is_, done, promo

P = "t-cache"
s = Stack(balance_read="cache", promos=[promo(P)])


def cached(uid):
    v = s.redis_cli("GET", s.cache_key(P, uid))
    return tuple(int(x) for x in v.split(":")) if v else None


def ledger(uid):
    rows = s.query("SELECT version, granted - spent FROM balances WHERE promo=? AND uid=?", P, uid)
    return rows[0] if rows else None


t = dict(zip(["u1", "u2", "u3", "u4"], s.tokens("u1", "u2", "u3", "u4")))
s.api("POST", P, "visit", token=t["u1"])
is_(cached("u1"), ledger("u1"), "a grant writes (version, balance) to Redis after commit")
s.redis_cli("DEL", s.cache_key(P, "u2"))
r = s.api("GET", P, "balance", token=t["u2"])
is_(r.json, {"balance": 0}, "a miss reads the ledger")

# Redis hangs (SIGSTOP): every request still answers correctly.
pid = s.redis_pid()
os.kill(pid, signal.SIGSTOP)
try:
    t0 = time.time()
    rs = [s.api("POST", P, "visit", token=t[u]) for u in ("u2", "u3")]
    rs += [s.api("GET", P, "balance", token=t[u]) for u in ("u1", "u2", "u3")]
    took = time.time() - t0
    is_([r.status for r in rs], [200] * 5, "with Redis hung, visits and balances answer 200")
    is_([r.json["balance"] for r in rs], [1, 1, 1, 1, 1], "with the right balances (from the ledger)")
    ok(took < 3, "and quickly (%.2f s for 5 requests; the cache gives up after its timeout)" % took)
finally:
    os.kill(pid, signal.SIGCONT)
time.sleep(1.3)  # past the workers' pause after a Redis error
for _ in range(6):  # requests let every worker run its repair between requests
    s.request("GET", "/healthz")
is_((cached("u2"), cached("u3")), (ledger("u2"), ledger("u3")),
    "after Redis is back, the writes it missed are repaired from the ledger")

# Redis killed: requests still answer; restarted empty: the cache fills again.
subprocess.run(["redis-cli", "-s", os.path.join(s.dir, "redis.sock"), "shutdown", "nosave"],
               capture_output=True)
time.sleep(0.2)
rs = [s.api("POST", P, "visit", token=t["u4"]), s.api("GET", P, "balance", token=t["u1"])]
is_([(r.status, r.json) for r in rs], [(200, {"granted": True, "balance": 1}), (200, {"balance": 1})],
    "with Redis stopped, a visit and a balance read answer correctly")
subprocess.run(["redis-server", "--port", "0", "--unixsocket", os.path.join(s.dir, "redis.sock"),
                "--save", "", "--appendonly", "no", "--daemonize", "yes",
                "--pidfile", os.path.join(s.dir, "redis.pid"), "--dir", s.dir], check=True)
time.sleep(1.3)
for _ in range(6):
    s.request("GET", "/healthz")
is_(cached("u4"), ledger("u4"), "after a restart the missed write is repaired")
r = s.api("GET", P, "balance", token=t["u1"])
is_((r.json, cached("u1")), ({"balance": 1}, ledger("u1")), "a read miss refills the cache")

# Concurrency: grants for one inviter while readers poll its balance; no
# reader ever sees the balance go down (grants only add).
code = s.api("GET", P, "invite", token=t["u1"]).json["code"]
invitees = s.tokens(*["n%d" % i for i in range(40)])
stop = threading.Event()
went_back = []


def reader():
    last = -1
    while not stop.is_set():
        b = s.api("GET", P, "balance", token=t["u1"]).json["balance"]
        if b < last:
            went_back.append((last, b))
        last = max(last, b)


readers = [threading.Thread(target=reader) for _ in range(6)]
for th in readers:
    th.start()
writers = []
for chunk in (invitees[i::4] for i in range(4)):
    th = threading.Thread(target=lambda c=chunk: [s.api("POST", P, "invite/claim", {"code": code}, token=x) for x in c])
    th.start()
    writers.append(th)
for th in writers:
    th.join()
stop.set()
for th in readers:
    th.join()
is_(went_back, [], "6 readers during 40 concurrent credits never saw the balance go back")
is_(cached("u1"), ledger("u1"), "the cache converged to the ledger (version and balance)")
is_(s.api("GET", P, "balance", token=t["u1"]).json["balance"], 31, "u1 holds 1 + 30 dice (the inviter cap is 30)")


def metric(stack, name):
    r = stack.request("GET", "/metrics")
    for line in r.raw.splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    return None


def writer_requests(stack):
    r = stack.request("GET", "/metrics")
    for line in r.raw.splitlines():
        if line.startswith("luckydice_writer_requests_total "):
            return int(line.split()[1])
    return None


ok(writer_requests(s) >= 40, "the writer process ran the writes (%s)" % writer_requests(s))
s.stop()

# "writes": "direct": no group commit; each worker writes the ledger and
# the cache itself, with the same answers.
d = Stack(balance_read="cache", promos=[promo(P)], extra_config={"writes": "direct"})
s = d
dt = dict(zip(["d1", "d2"], d.tokens("d1", "d2")))
is_(d.api("POST", P, "visit", token=dt["d1"]).json, {"granted": True, "balance": 1},
    "with writes direct, a visit is granted")
code = d.api("GET", P, "invite", token=dt["d1"]).json["code"]
is_(d.api("POST", P, "invite/claim", {"code": code}, token=dt["d2"]).json,
    {"granted": True, "balance": 2}, "a claim credits the invitee")
r = d.api("POST", P, "draws", {"request_id": "direct-0001"}, token=dt["d2"])
is_((r.status, r.json["balance"]), (200, 1), "a draw spends a die")
is_((cached("d1"), cached("d2")), (ledger("d1"), ledger("d2")),
    "and the workers wrote the cache after each commit")
is_(writer_requests(d), 0, "no request went through a writer")
d.stop()

# balance_read ledger: the writer answers first and writes the cache
# right after (nobody reads it on the request path).
s = Stack(balance_read="ledger", promos=[promo(P)])
lt = s.tokens("l1")[0]
is_(s.api("POST", P, "visit", token=lt).json, {"granted": True, "balance": 1},
    "with reads from the ledger, a visit is granted")
for _ in range(100):
    if cached("l1") == ledger("l1"):
        break
    time.sleep(0.01)
is_(cached("l1"), ledger("l1"), "and the writer wrote the cache after answering")
ok(writer_requests(s) >= 1, "through the writer")

# Redis frozen under the writer alone (reads come from the ledger): the
# writer's Redis errors show in /metrics, and the visits are unharmed.
errors = 'luckydice_cache_requests_total{result="error"}'
before = metric(s, errors)
l2, l3 = s.tokens("l2", "l3")
rpid = s.redis_pid()
os.kill(rpid, signal.SIGSTOP)
try:
    is_(s.api("POST", P, "visit", token=l2).status, 200, "a visit with Redis frozen answers 200")
    time.sleep(1.3)  # the writer reads Redis' answer when idle: a timeout
finally:
    os.kill(rpid, signal.SIGCONT)
is_(s.api("POST", P, "visit", token=l3).status, 200, "and after Redis is back")
ok(metric(s, errors) > before, "the writer's Redis error is counted (%s -> %s)"
   % (before, metric(s, errors)))
done()
