#!/usr/bin/env python3
# An application host dies: under a mixed load through the front (visits,
# invite claims, draws, balance reads from six clients), kill -9 of one
# host's whole stack at once (its nginx, the FastCGI supervisor and all
# its children). The front goes on answering through the other hosts.
# What a client saw is printed: the answers around the kill, the longest
# time without a 2xx. Afterwards every write a client saw acknowledged
# (2xx) is in the ledger, the invariants hold, and the host, started
# again, takes requests again.
import time
from clusterlib import Cluster, Load, check_acked, check_invariants, fmt_statuses
from harness import ok, is_, diag, done, promo

P = "t-hostdies"
CAP, STOCK = 3, 40
c = Cluster(hosts=3, promos=[promo(
    P, invites={"max_credited_per_inviter": CAP, "invitee_new_within_hours": 24},
    prizes=[{"id": "coffee", "name": "coffee", "daily_stock": STOCK, "probability": 0.4},
            {"id": "cake", "name": "cake", "daily_stock": 5, "probability": 0.1}])])
VICTIM = 1
inviters = c.tokens(*["inviter%d" % i for i in range(6)])
codes = {c.api("GET", P, "invite", token=t).json["code"]: "inviter%d" % i
         for i, t in enumerate(inviters)}

load = Load(c, P, threads=6, codes=codes).start()
time.sleep(4)
t_kill = time.monotonic()
pids = c.kill_host(VICTIM)
diag("killed host %s: %d processes" % (c.host(VICTIM)["name"], len(pids)))
time.sleep(8)
t_back = time.monotonic()
access = "%s/log/access.log" % c.host(VICTIM)["dir"]
served_before = sum(1 for _ in open(access))
c.start_host(VICTIM)
t_started = time.monotonic()
time.sleep(4)
load.stop()
t_end = time.monotonic()

before = load.statuses(until=t_kill)
during = load.statuses(since=t_kill, until=t_back)
after = load.statuses(since=t_started)
diag("answers before the kill: %s" % fmt_statuses(before))
diag("answers while the host was dead (%.1f s): %s" % (t_back - t_kill, fmt_statuses(during)))
diag("answers once it was back: %s" % fmt_statuses(after))
gap = load.longest_gap(t_kill - 1, t_back)
gap_w = load.longest_gap(t_kill - 1, t_back, method="POST")
diag("longest time without a 2xx around the kill: %.2f s (writes: %.2f s)" % (gap, gap_w))
ok(sum(n for s, n in before.items() if s and s < 300) > 50, "the load ran before the kill")
ok(sum(n for s, n in during.items() if s and s < 300) > 50,
   "the front kept answering 2xx through the other hosts while one was dead")
ok(gap < 30, "no stop of service longer than 30 s (it was %.2f s)" % gap)
failed = sum(n for s, n in during.items() if s is None or s >= 500)
diag("answers 5xx or none while the host was dead: %d (POSTs in flight on the dead host,"
     " which the front does not send twice; the client sends them again)" % failed)
is_(load.statuses(method="POST").get(None, 0) + load.statuses(method="GET").get(None, 0), 0,
    "every request got an answer (the front answers 503 itself for one it lost)")
is_(sorted(s for s in load.statuses() if s not in (200, 409, 422, 404, 503)), [],
    "no answer other than 200, a refusal, or 503 with Retry-After")

# The host came back: the front sends it requests again.
with open(access) as f:
    back = sum(1 for line in f) - served_before
diag("requests the host served since it came back: %d" % back)
ok(back > 0, "the host, started again, takes requests again")

lost = check_acked(c, P, load.acked)
diag("acknowledged writes lost: %d" % lost)
check_invariants(c, P, cap=CAP, stocks={"coffee": STOCK, "cake": 5})
done()
