#!/usr/bin/env python3
# cache verify reports drift written into Redis by hand; cache rebuild
# repairs it while 20 clients keep reading balances from the cache, and
# none of them ever sees an older value than one it saw after the repair.
import os, pty, re, select, subprocess, threading, time
from concurrent.futures import ThreadPoolExecutor
from harness import Stack, ok, is_, done, promo, diag, BUILD

P = "t-cache"
s = Stack(balance_read="cache", workers=4, promos=[promo(P)])
N = 1200  # more than one page of balances (1000)
uids = ["u%04d" % i for i in range(N)]
toks = dict(zip(uids, s.tokens(*uids)))
with ThreadPoolExecutor(32) as ex:
    rs = list(ex.map(lambda u: s.api("POST", P, "visit", token=toks[u]).status, uids))
is_(set(rs), {200}, "%d users visited" % N)
for uid in ("X", "Y", "W", "Z"):
    toks[uid] = s.token(uid)
    s.api("POST", P, "visit", token=toks[uid])
for i in range(3):
    s.ctl("grant", P, "Y", 1, "--reason", "setup", "--ticket", "setup-y-%d" % i)
s.ctl("grant", P, "W", 2, "--reason", "setup", "--ticket", "setup-w")
key = lambda u: s.cache_key(P, u)
is_(s.ctl("cache", "verify", P).returncode, 0, "verify is clean before any drift")

# Drift by hand: X ahead of the ledger, Y stale, W same version but wrong, Z gone.
s.redis_cli("SET", key("X"), "100:999")
s.redis_cli("SET", key("Y"), "1:0")
wv = s.scalar("SELECT version FROM balances WHERE promo=? AND uid='W'", P)
s.redis_cli("SET", key("W"), "%d:50" % wv)
s.redis_cli("DEL", key("Z"))
r = s.ctl("cache", "verify", P, check=False)
is_(r.returncode, 1, "verify exits 1 on drift")
drifted = sorted(re.findall(r"^DRIFT (\S+):", r.stdout, re.M))
is_(drifted, ["W", "X", "Y"], "verify names exactly the drifted users")
ok(re.search(r"^DRIFT X: ledger 1 \(version 1\), cache 999 \(version 100\), ahead$", r.stdout, re.M),
   "X is reported ahead with both values") or diag(r.stdout)
ok(re.search(r"^DRIFT Y: ledger 4 \(version 4\), cache 0 \(version 1\), stale$", r.stdout, re.M),
   "Y is reported stale")
ok(re.search(r"%d users, \d+ same, 1 cold \(no key: not drift\), 3 drift" % (N + 4), r.stdout),
   "the summary counts every user across pages; a missing key is cold, not drift") or diag(r.stdout)

# Progress on a terminal.
master, slave = pty.openpty()
p = subprocess.Popen([os.path.join(BUILD, "luckydicectl"), "cache", "verify", P], env=s.env,
                     stdout=subprocess.DEVNULL, stderr=slave)
os.close(slave)
p.wait(timeout=60)
buf = b""
while select.select([master], [], [], 0.2)[0]:
    try:
        chunk = os.read(master, 65536)
    except OSError:
        break
    if not chunk:
        break
    buf += chunk
os.close(master)
ok(b"verify: 1000/%d users" % (N + 4) in buf, "on a terminal verify shows progress per page")

# 20 readers through the API while the rebuild runs and Y keeps getting grants.
stop = threading.Event()
seen = {u: [] for u in ("X", "Y", "W")}
lock = threading.Lock()
errors = []


def reader(i):
    local = {u: [] for u in seen}
    while not stop.is_set():
        for u in seen:
            r = s.api("GET", P, "balance", token=toks[u])
            if r.status != 200:
                errors.append(r.status)
                continue
            local[u].append(r.json["balance"])
    with lock:
        for u in seen:
            seen[u].append(local[u])


def writer():
    for i in range(10):
        s.ctl("grant", P, "Y", 1, "--reason", "live", "--ticket", "live-y-%d" % i)
        time.sleep(0.03)


threads = [threading.Thread(target=reader, args=(i,)) for i in range(20)]
for t in threads:
    t.start()
time.sleep(0.5)
w = threading.Thread(target=writer)
w.start()
r = s.ctl("cache", "rebuild", P, check=False)
w.join()
time.sleep(0.5)
stop.set()
for t in threads:
    t.join()
is_(r.returncode, 0, "rebuild exits 0")
ok(re.search(r"rebuilt '%s': %d users" % (P, N + 4), r.stdout), "rebuild walked every user") or diag(r.stdout)
is_(errors, [], "every read during the rebuild answered 200")
x_ledger = s.scalar("SELECT granted - spent FROM balances WHERE promo=? AND uid='X'", P)
y_ledger = s.scalar("SELECT granted - spent FROM balances WHERE promo=? AND uid='Y'", P)
w_ledger = s.scalar("SELECT granted - spent FROM balances WHERE promo=? AND uid='W'", P)
is_(y_ledger, 14, "Y got its 10 live grants (1 visit + 3 + 10)")


def after_repair(vals, bad):
    """The values a client saw from its first correct one on."""
    for i, v in enumerate(vals):
        if v != bad:
            return vals[i:]
    return []


ok(all(seq and seq[0] == 999 for seq in seen["X"]), "every client saw X's wrong value before the repair")
ok(all(after_repair(seq, 999) and set(after_repair(seq, 999)) == {x_ledger} for seq in seen["X"]),
   "after the repair every client saw only X's ledger value, never the wrong one again")
ok(all(set(after_repair(seq, 50)) == {w_ledger} for seq in seen["W"]),
   "W: never the wrong value again after the repair")
mono = all(all(a <= b for a, b in zip(seq, seq[1:])) for seq in seen["Y"])
ok(mono, "Y (stale, then granted during the rebuild): no client ever saw its balance go back")
is_(sorted(set(seq[-1] for seq in seen["Y"])), [y_ledger], "every client ends on Y's ledger balance")
diag("reads per client: %d" % (sum(len(q) for q in seen["X"]) // 20))

r = s.ctl("cache", "verify", P, check=False)
is_(r.returncode, 0, "verify exits 0 after the rebuild")
ok(" 0 cold" in r.stdout, "the rebuild also filled the cold key") or diag(r.stdout)
for u in ("X", "Y", "W", "Z"):
    v, b = s.query("SELECT version, granted - spent FROM balances WHERE promo=? AND uid=?", P, u)[0]
    is_(s.redis_cli("GET", key(u)), "%d:%d" % (v, b), "%s's key holds the ledger's version:balance" % u)

# Redis down: verify says so and exits 2.
os.kill(s.redis_pid(), 19)  # SIGSTOP: a hanging Redis
try:
    r = s.ctl("cache", "verify", P, check=False)
finally:
    os.kill(s.redis_pid(), 18)
ok(r.returncode == 2 and "redis unavailable" in r.stderr, "a hanging Redis: verify says redis unavailable")
done()
