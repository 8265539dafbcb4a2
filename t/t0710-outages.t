#!/usr/bin/env python3
# Outages: Redis killed, restarted and frozen under load (no request
# fails; the cache never shows a balance newer or different from the
# ledger's at the same version), and the database held locked by another
# process past the busy timeout (on PostgreSQL, another connection's lock
# on every table past the statement timeout): 503 with Retry-After and a
# JSON body, never a 500, nothing half-written; and the writer process
# frozen (503 after the timeout; what the workers gave up on is not run
# later).
import os, signal, sqlite3, subprocess, threading, time
from harness import BACKEND, Stack, ok, is_, diag, done, promo, stopped, timed

P = "t-out"
s = Stack(workers=3, promos=[promo(P, prizes=[
    {"id": "coffee", "name": "coffee", "daily_stock": 100000, "probability": 0.3}])],
    extra_config={"busy_timeout_ms": 200})

# -- Redis down under load ---------------------------------------------
THREADS, USERS = 4, 1500
toks = s.tokens(*["u%d-%d" % (t, i) for t in range(THREADS) for i in range(USERS)])
stop = threading.Event()
seen = []  # (what, status, error)
lock = threading.Lock()
last = [0.0] * THREADS


def client(t):
    i = 0
    while not stop.is_set():
        fresh = i < USERS  # out of fresh users, go on reading balances
        tok = toks[t * USERS + (i if fresh else i % USERS)]
        i += 1
        got = []
        steps = (("visit", "POST", "visit", None, {200}),
                 ("draw", "POST", "draws", {"request_id": "rq-%d-%d-a" % (t, i)}, {200}),
                 ("draw", "POST", "draws", {"request_id": "rq-%d-%d-b" % (t, i)}, {409}),
                 ("balance", "GET", "balance", None, {200}))
        for what, method, ep, body, want in (steps if fresh else steps[3:]):
            try:
                r = s.api(method, P, ep, body, token=tok)
                got.append((what, r.status, r.json and r.json.get("error"), r.status in want))
            except OSError as e:
                got.append((what, 0, str(e), False))
        with lock:
            seen.extend(got)
    last[t] = time.monotonic()


def redis_start():
    d = s.dir
    subprocess.run(["redis-server", "--port", "0", "--unixsocket", d + "/redis.sock",
                    "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
                    "--daemonize", "yes", "--pidfile", d + "/redis.pid",
                    "--logfile", d + "/log/redis.log", "--dir", d], check=True)
    for _ in range(100):
        if s.redis_cli("ping") == "PONG":
            return True
        time.sleep(0.05)
    return False


threads = [threading.Thread(target=client, args=(t,)) for t in range(THREADS)]
for th in threads:
    th.start()
events = []
time.sleep(1.0)
pid = s.redis_pid()
os.kill(pid, signal.SIGKILL)
events.append("killed")
time.sleep(1.0)
while os.path.exists("/proc/%d" % pid):
    time.sleep(0.05)
ok(redis_start(), "Redis restarts on the same socket under load")
events.append("restarted")
time.sleep(1.0)
pid = s.redis_pid()
os.kill(pid, signal.SIGSTOP)
events.append("stopped")
time.sleep(1.5)
os.kill(pid, signal.SIGCONT)
events.append("continued")
time.sleep(1.0)
os.kill(pid, signal.SIGKILL)
time.sleep(0.5)
ok(redis_start(), "and once more after a freeze and a second kill")
time.sleep(0.5)
end_of_outages = time.monotonic()
stop.set()
for th in threads:
    th.join()

bad = [x for x in seen if not x[3]]
diag("%d requests through %s" % (len(seen), ", ".join(events)))
ok(len(seen) > 200 and min(last) >= end_of_outages,
   "the load ran through all the outages (%d requests)" % len(seen))
is_(bad[:5], [], "every answer was the expected one (visit/draw 200, a draw with no dice 409, balance 200)")
is_(sum(1 for x in seen if x[1] >= 500), 0, "no 5xx at all")
led = {uid: (ver, bal) for uid, ver, bal in
       s.query("SELECT uid, version, granted - spent FROM balances WHERE promo=?", P)}
newer = wrong = stale = 0
for key in s.redis_cli("--scan", "--pattern", "ld:b:%s:%s:*" % (s.ledger_id(), P)).split():
    uid = key.split(":", 4)[4]
    v, b = map(int, s.redis_cli("get", key).split(":"))
    lv, lb = led.get(uid, (0, 0))
    newer += v > lv
    wrong += v == lv and b != lb
    stale += v < lv
diag("cache after the outages: %d keys, %d behind the ledger" % (len(led), stale))
is_((newer, wrong), (0, 0), "no cached balance is ahead of the ledger or differs at the same version")
time.sleep(1.2)  # past the workers' pause after a Redis error
for _ in range(16):  # workers repair what they missed between requests
    s.request("GET", "/healthz")
r = s.ctl("cache", "verify", P, check=False)
is_(r.returncode, 0, "luckydicectl cache verify is clean afterwards")
if r.returncode:
    diag(r.stdout[-2000:] + r.stderr[-500:])
is_(s.scalar("SELECT count(*) FROM balances WHERE promo=? AND granted - spent < 0", P), 0,
    "no balance is negative")
is_(s.scalar("SELECT count(*) FROM draws WHERE promo=?", P),
    s.scalar("SELECT coalesce(sum(spent), 0) FROM balances WHERE promo=?", P),
    "draws = dice spent")

# -- the database locked past the busy timeout --------------------------
a, b, c = s.tokens("lock-a", "lock-b", "lock-c")
s.api("POST", P, "visit", token=a)
code = s.api("GET", P, "invite", token=a).json["code"]
before = s.dump()
if BACKEND == "sqlite":
    holder = sqlite3.connect(os.path.join(s.dir, "luckydice.db"), isolation_level=None, timeout=5)
    holder.execute("BEGIN EXCLUSIVE")
else:
    # PostgreSQL: another connection holds every ledger table; the busy
    # timeout is the statement timeout.
    holder = s.pg_holding("LOCK TABLE balances, grants, invites, invite_codes, claim_refusals,"
                          " draws, stock, outbox IN ACCESS EXCLUSIVE MODE")
    holder.__enter__()
held = time.monotonic()
writes = [
    ("visit", "POST", "visit", None, b),
    ("draw", "POST", "draws", {"request_id": "locked-draw-1"}, a),
    ("claim", "POST", "invite/claim", {"code": code}, c),
    ("invite code", "GET", "invite", None, b),
]
for what, method, ep, body, tok in writes:
    r = s.api(method, P, ep, body, token=tok)
    ok(r.status == 503 and r.headers.get("Retry-After") == "1" and r.json and
       r.json.get("error") == "unavailable" and r.json.get("message") and
       r.headers.get("Cache-Control") == "no-store",
       "%s while the database is locked -> 503, Retry-After, JSON" % what) or diag(repr(r))
r = s.api("GET", P, "balance", token=a)
ok(r.status in (200, 503) and r.json, "a read while locked answers %d (%s)"
   % (r.status, "WAL readers go on" if BACKEND == "sqlite" else "or waits no longer than a write"))
ok(time.monotonic() - held < 10, "the refusals came after the busy timeout, not a hang")
if BACKEND == "sqlite":
    holder.execute("ROLLBACK")
    holder.close()
else:
    holder.__exit__(None, None, None)
is_(s.dump(), before, "nothing was half-written while the database was locked")
r = s.api("POST", P, "invite/claim", {"code": code}, token=c)
is_(r.status, 200, "after the lock is released a claim succeeds")
r = s.api("POST", P, "draws", {"request_id": "locked-draw-1"}, token=a)
is_(r.status, 200, "and the draw refused while locked runs now")
log = open(os.path.join(s.dir, "log", "fcgi.log"), errors="replace").read()
ok("database is locked" in log or "busy" in log or "statement timeout" in log,
   "the busy refusals are in the log")

# -- the writer frozen (SIGSTOP) -----------------------------------------
fcgi = int(open(os.path.join(s.dir, "fcgi.pid")).read())
writer = [int(p) for p in subprocess.run(["pgrep", "-P", str(fcgi), "-x", "ld-writer"],
                                         capture_output=True, text=True).stdout.split()]
is_(len(writer), 1, "the writer runs")
f1, f2 = s.tokens("frozen-1", "frozen-2")
with stopped(writer[0]):
    r, took = timed(lambda: s.api("POST", P, "visit", token=f1))
    ok(r.status == 503 and r.json and r.json.get("error") == "unavailable",
       "a visit while the writer is frozen -> 503 JSON") or diag(repr(r))
    ok(took < 8, "after the writer's timeout, not a hang (%.1f s)" % took)
time.sleep(0.5)
is_(s.scalar("SELECT count(*) FROM grants WHERE promo=? AND uid='frozen-1'", P), 0,
    "the thawed writer did not run the visit its worker gave up on")
is_(s.api("POST", P, "visit", token=f1).json, {"granted": True, "balance": 1},
    "the retried visit is granted once")
is_(s.api("POST", P, "visit", token=f2).status, 200, "and the writer serves again")
done()
