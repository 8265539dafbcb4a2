#!/usr/bin/env python3
# Dispatchers on every host: a backlog of events (wins made through the
# front) and luckydice-dispatch started on each of three hosts at once,
# taking leases on the shared outbox (SKIP LOCKED); the receiver fails
# every fourth request with a 500; the dispatcher of one host is killed
# with SIGKILL in the middle of its batch. Then the dispatchers run again
# on every host, as cron runs them, until nothing is due. Every event is
# delivered; the receiver processed each Idempotency-Key exactly once
# (the copies a crash or a 500 made came with the same key and were
# answered as duplicates or failed); the killed run's leased events went
# out once its lease ran out. What was lost (nothing) and how long the
# killed run's events waited are printed.
import os
import signal
import threading
import time
from collections import Counter
from clusterlib import Cluster
from dispatchlib import Receiver, FAST
from harness import ok, is_, diag, done, promo

P = "t-dispatchhosts"
USERS = 75  # one win each: a reward.issue and a notify.win
LEASE = 4
VICTIM = 1
c = Cluster(hosts=3, promos=[promo(P, prizes=[{"id": "gift", "name": "gift",
                                               "daily_stock": 1000, "probability": 1}])])
rv = Receiver("flaky", host=c.info["gateway"], delay=0.1, fail_every=4)
rv.verify_with(os.path.join(c.dir, "signing.secret"))
# Each host posts to a path of its own on the one receiver, so that what
# each host's dispatcher sent can be told apart on any network.
for i, h in enumerate(c.hosts):
    c.edit_configs(host=i, reward_url="%s/%s/reward" % (rv.url, h["name"]),
                   notify_url="%s/%s/notify" % (rv.url, h["name"]),
                   dispatch=dict(FAST, lease_seconds=LEASE, max_attempts=10, timeout_ms=2000,
                                 concurrency=2, batch=10))


def sender(q):
    return q["path"].split("/")[1]


# The backlog: wins made through the front, so over every host.
uids = ["d%03d" % i for i in range(USERS)]
toks = c.tokens(*uids)


def win(part):
    for u, t in part:
        c.api("POST", P, "visit", token=t)
        r = c.api("POST", P, "draws", {"request_id": "draw-" + u}, token=t)
        assert r.status == 200 and r.json["draw"]["prize"], r


ths = [threading.Thread(target=win, args=(list(zip(uids, toks))[k::4],)) for k in range(4)]
for t in ths:
    t.start()
for t in ths:
    t.join()
events = {k for (k,) in c.query("SELECT key FROM outbox WHERE promo=?", P)}
is_(len(events), 2 * USERS, "%d wins wrote %d events" % (USERS, 2 * USERS))

# A dispatcher on every host at once; the victim's is killed once it has
# sent three events of its first batch of ten (whose outcomes it records
# only at the batch's end).
victim = c.host(VICTIM)["name"]
procs = [c.dispatch(i) for i in range(len(c.hosts))]
end = time.time() + 30
while time.time() < end and sum(1 for q in rv.requests() if sender(q) == victim) < 3:
    time.sleep(0.01)
procs[VICTIM].send_signal(signal.SIGKILL)
t_kill = time.time()
procs[VICTIM].wait()
by_victim = [q for q in rv.requests() if sender(q) == victim]
victim_keys = {q["headers"].get("idempotency-key") for q in by_victim}
t_claimed = min(q["t"] for q in by_victim) if by_victim else t_kill
diag("killed %s's dispatcher after it sent %d events" % (victim, len(victim_keys)))
ok(len(victim_keys) >= 3, "the dispatcher was killed in the middle of its batch")
outs = {}
for i, pr in enumerate(procs):
    if i != VICTIM:
        outs[i] = pr.communicate(timeout=60)
        ok(pr.returncode in (0, 1), "the dispatcher on %s ran (exit %d: 1 when some"
           " deliveries were retried)" % (c.host(i)["name"], pr.returncode))
diag("the dispatchers' runs: %s" % "; ".join("%s: %s" % (c.host(i)["name"], o.strip())
                                             for i, (o, _) in sorted(outs.items())))

# Cron: a run on every host at once, again and again, until nothing is due.
rounds = 0
while time.time() < t_kill + 60:
    rounds += 1
    runs = [c.dispatch(i, "--max-seconds", 10) for i in range(len(c.hosts))]
    for pr in runs:
        pr.communicate(timeout=60)
    if c.scalar("SELECT count(*) FROM outbox WHERE promo=? AND state='pending'", P) == 0:
        break
    time.sleep(0.5)
t_done = time.time()
diag("every host ran the dispatcher %d more times; all done %.1f s after the kill"
     % (rounds, t_done - t_kill))

states = dict(c.query("SELECT state, count(*) FROM outbox WHERE promo=? GROUP BY state", P))
is_(states, {"delivered": 2 * USERS}, "every event is delivered, none dead or pending")
reqs = rv.requests()
is_([q for q in reqs if q["verified"] is not True][:3], [], "every request was signed right")
seen = {q["headers"].get("idempotency-key") for q in reqs}
lost = events - seen
is_(sorted(lost)[:5], [], "the receiver got every event")
diag("events lost: %d" % len(lost))
taken = Counter(q["headers"].get("idempotency-key") for q in reqs
                if q["mode"] == "ok" and not q["duplicate"])
is_(sorted(k for k in events if taken[k] != 1)[:5], [],
    "each event was taken (answered 200, not a duplicate) exactly once")
is_(set(taken) - events, set(), "and nothing else was")
fails = sum(1 for q in reqs if q["mode"] == "fail500")
dups = sum(1 for q in reqs if q["duplicate"])
diag("requests: %d for %d events; answered 500: %d; duplicates answered 200: %d"
     % (len(reqs), len(events), fails, dups))
ok(fails > 0, "the receiver failed some posts (%d), which were sent again" % fails)
ok(len(reqs) > len(events), "so some events were sent more than once, each with its one key")
by_host = Counter(sender(q) for q in reqs)
diag("requests per host: %s" % ", ".join("%s %d" % kv for kv in sorted(by_host.items())))
ok(all(by_host.get(h["name"], 0) > 0 for h in c.hosts), "every host's dispatcher sent some")
# What the killed run had sent went out again from another host, with
# the same key, once its lease ran out (and not before).
again = {}
for q in rv.requests():
    k = q["headers"].get("idempotency-key")
    if k in victim_keys and sender(q) != victim and q["t"] > t_kill:
        again.setdefault(k, q["t"])
is_(sorted(victim_keys - set(again)), [],
    "every event the killed run sent was sent again by another host with its key")
if again:
    first, last = min(again.values()), max(again.values())
    diag("the killed run's events went out again %.1f to %.1f s after the kill"
         " (%.1f s after it claimed them; the lease is %d s)"
         % (first - t_kill, last - t_kill, first - t_claimed, LEASE))
    ok(first - t_claimed >= LEASE - 0.5, "no other run took them before the lease ran out")
done()
