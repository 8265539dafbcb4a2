#!/usr/bin/env python3
# Redis, shared by every host, fails under a mixed load through the front
# (visits, claims, draws, balance reads, which on PostgreSQL come from the
# cache first): first it hangs (SIGSTOP) for a few seconds and comes back
# with its data, then it is killed with SIGKILL and started again, empty.
# Nothing fails: every answer is a 2xx or a refusal, never a 5xx or no
# answer, and what a client saw acknowledged is in the ledger. Once Redis
# is back the hosts use it again, and `luckydicectl cache verify` finds
# no balance in the cache that differs from the ledger: the keys a host
# could not write while Redis was away were repaired. The longest time
# without a 2xx during each outage is printed.
import json
import os
import signal
import threading
import time
from clusterlib import Cluster, Load, check_acked, check_invariants, fmt_statuses
from harness import ok, is_, diag, done, promo

P = "t-redisdies"
CAP, STOCK = 3, 40
HANG, DEAD = 3.0, 5.0
c = Cluster(hosts=3, promos=[promo(
    P, invites={"max_credited_per_inviter": CAP, "invitee_new_within_hours": 24},
    prizes=[{"id": "coffee", "name": "coffee", "daily_stock": STOCK, "probability": 0.4}])])
inviters = c.tokens(*["inviter%d" % i for i in range(6)])
codes = {c.api("GET", P, "invite", token=t).json["code"]: "inviter%d" % i
         for i, t in enumerate(inviters)}

load = Load(c, P, threads=6, codes=codes, draws=3).start()
# A reader beside the writers: balances of users the load already wrote,
# the reads the cache serves.


def read_balances():
    rnd = 0
    while not load.stop_ev.is_set():
        with load.lock:
            seen = load.users[:load.next]
        if seen:
            rnd = (rnd + 7) % len(seen)
            load._call("GET", "balance", None, seen[rnd][1])
        time.sleep(0.02)


readers = [threading.Thread(target=read_balances, daemon=True) for _ in range(2)]
for t in readers:
    t.start()
time.sleep(3)

pid = c.redis_pid()
os.kill(pid, signal.SIGSTOP)
t_stop = time.monotonic()
time.sleep(HANG)
os.kill(pid, signal.SIGCONT)
t_cont = time.monotonic()
time.sleep(3)

os.kill(pid, signal.SIGKILL)
t_kill = time.monotonic()
for _ in range(100):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        break
    time.sleep(0.05)
time.sleep(DEAD)
c.start_redis()
t_back = time.monotonic()
time.sleep(4)
load.stop()
for t in readers:
    t.join(30)

phases = [("before", None, t_stop), ("Redis hung (%.0f s)" % HANG, t_stop, t_cont),
          ("between", t_cont, t_kill), ("Redis dead (%.0f s)" % DEAD, t_kill, t_back),
          ("after it came back", t_back, None)]
for name, a, b in phases:
    diag("answers %s: writes %s; reads %s" % (name, fmt_statuses(load.statuses(a, b, "POST")),
                                              fmt_statuses(load.statuses(a, b, "GET"))))
for name, a, b in phases[1:4:2]:
    st = load.statuses(a, b)
    ok(sum(n for s, n in st.items() if s == 200) > 20, "the load ran while %s" % name)
    diag("longest time without a 2xx while %s: %.2f s (writes %.2f s, reads %.2f s)"
         % (name, load.longest_gap(a, b), load.longest_gap(a, b, "POST"),
            load.longest_gap(a, b, "GET")))
bad = {s: n for s, n in load.statuses().items() if s is None or s >= 500}
is_(bad, {}, "nothing failed: no 5xx and no request without an answer, all along")
is_(sorted(s for s in load.statuses() if s not in (200, 409, 422)), [],
    "every answer was 200 or a refusal")

lost = check_acked(c, P, load.acked)
diag("acknowledged writes lost: %d" % lost)
check_invariants(c, P, cap=CAP, stocks={"coffee": STOCK})

# Redis in use again: the started one was empty; the hosts filled it.
keys = int(c.redis_cli("DBSIZE") or 0)
diag("keys in Redis since it came back: %d" % keys)
ok(keys > 0, "the hosts use Redis again once it is back")
r = c.ctl("cache", "verify", P, "--json", check=False)
v = json.loads(r.stdout) if r.stdout.strip().startswith("{") else {}
diag("cache verify: %s" % {k: v.get(k) for k in ("users", "same", "cold", "stale", "ahead",
                                                 "wrong")})
is_((r.returncode, v.get("stale"), v.get("ahead"), v.get("wrong")), (0, 0, 0, 0),
    "cache verify is clean: no balance in Redis differs from the ledger")
ok(v.get("same", 0) > 0, "and it compared cached balances (%s the same)" % v.get("same"))
done()
