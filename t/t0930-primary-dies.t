#!/usr/bin/env python3
# The database primary dies: under a mixed load through the front, kill -9
# of every process of the PostgreSQL primary at once (its machine gone);
# after a pause (the time a failover manager takes to decide), the
# synchronous standby is promoted (pg_ctl promote). The hosts' multi-host
# connection strings (target_session_attrs=read-write) find the new
# primary by themselves: no host is restarted or reconfigured. During the
# gap writes answer 503 with Retry-After, never a 500 and never no answer,
# and balance reads go on answering from the cache; every write a client
# saw acknowledged (2xx) is on the promoted server; the invariants hold;
# every host writes again. The time from the kill to the first successful
# write is printed. Last, the old primary is made the new one's
# synchronous standby (pg_rewind), and writes go on.
import threading
import time
from clusterlib import Cluster, Load, check_acked, check_invariants, fmt_statuses
from harness import ok, is_, diag, done, promo

P = "t-pgdies"
CAP, STOCK = 3, 40
DECIDE = 2.0  # seconds between the kill and the promotion
c = Cluster(hosts=3, promos=[promo(
    P, invites={"max_credited_per_inviter": CAP, "invitee_new_within_hours": 24},
    prizes=[{"id": "coffee", "name": "coffee", "daily_stock": STOCK, "probability": 0.4},
            {"id": "cake", "name": "cake", "daily_stock": 5, "probability": 0.1}])])
is_(c.scalar("SELECT sync_state FROM pg_stat_replication"), "sync",
    "the standby is synchronous: a commit acknowledged is on both servers")
inviters = c.tokens(*["inviter%d" % i for i in range(6)])
codes = {c.api("GET", P, "invite", token=t).json["code"]: "inviter%d" % i
         for i, t in enumerate(inviters)}
access_lines = {}

load = Load(c, P, threads=6, codes=codes).start()
# A reader beside the writers: one user's balance, again and again, so
# that what reads answer during the gap is seen too.
reader_tok = c.token("reader")
c.api("POST", P, "visit", token=reader_tok)


def read_balance():
    while not load.stop_ev.is_set():
        load._call("GET", "balance", None, reader_tok)
        time.sleep(0.05)


reader = threading.Thread(target=read_balance, daemon=True)
reader.start()
time.sleep(4)
pids = c.kill_pg("pga")
t_kill = c.killed_at
diag("killed the primary: %d processes" % len(pids))
time.sleep(DECIDE)
t_promote = time.monotonic()
new = c.promote()
t_promoted = time.monotonic()
diag("promoted %s in %.2f s" % (new, t_promoted - t_promote))
for h in c.hosts:
    with open("%s/log/access.log" % h["dir"]) as f:
        access_lines[h["name"]] = sum(1 for _ in f)
t_first = None
while time.monotonic() - t_kill < 90 and t_first is None:
    time.sleep(0.2)
    t_first = load.first_ok(t_kill)
time.sleep(3)
load.stop()
reader.join(30)

gap = (t_first - t_kill) if t_first else None
diag("from the kill to the first successful write: %s"
     % ("%.2f s" % gap if gap is not None else "none within 90 s"))
if t_first:
    diag("from the promote command to the first successful write: %.2f s"
         % (t_first - t_promote))
ok(gap is not None and gap < 60, "writes resumed within 60 s of the kill")
before = load.statuses(until=t_kill)
during_w = load.statuses(since=t_kill, until=t_first or time.monotonic(), method="POST")
during_r = load.statuses(since=t_kill, until=t_first or time.monotonic(), method="GET")
after = load.statuses(since=t_first) if t_first else {}
diag("answers before the kill: %s" % fmt_statuses(before))
diag("writes sent during the gap: %s" % fmt_statuses(during_w))
diag("reads sent during the gap (balance, from the cache): %s" % fmt_statuses(during_r))
diag("answers after writes resumed: %s" % fmt_statuses(after))
bad = {s: n for s, n in during_w.items() if s not in (200, 409, 503)}
is_(bad, {}, "during the gap a write answered 503 (or went through), never a 500 or no answer")
no_retry = sum(1 for t0, _, m, _, st, ra in load.log
               if st == 503 and not ra and t_kill <= t0)
is_(no_retry, 0, "every 503 said Retry-After")
is_(sorted(during_r), [200],
    "during the gap every balance read was answered 200 (from Redis; the ledger was down)")
ok(during_w.get(503, 0) > 0, "the clients saw the gap as 503s (%d)" % during_w.get(503, 0))
is_(sorted(s for s in after if s not in (200, 409, 503)), [],
    "once writes resumed, every answer was 200, a refusal or 503 (a host still reconnecting)")

# Every host writes again through its own connection to the new primary.
for h in c.hosts:
    with open("%s/log/access.log" % h["dir"]) as f:
        lines = f.readlines()[access_lines[h["name"]]:]
    n = sum(1 for line in lines if '"POST ' in line and '" 200 ' in line)
    ok(n > 0, "host %s wrote again after the promotion (%d writes)" % (h["name"], n))

# Nothing acknowledged is lost: checked on the promoted server.
is_(c.primary, new, "the ledger is read on the promoted server")
is_(c.scalar("SELECT pg_is_in_recovery()"), False, "which takes writes")
lost = check_acked(c, P, load.acked)
diag("acknowledged writes lost: %d" % lost)
check_invariants(c, P, cap=CAP, stocks={"coffee": STOCK, "cake": 5})

# The old primary comes back as the new one's synchronous standby, and
# what is written now is on both.
t0 = time.monotonic()
old = c.rejoin()
diag("%s rewound and following %s in %.1f s" % (old, new, time.monotonic() - t0))
is_(c.scalar("SELECT sync_state FROM pg_stat_replication"), "sync",
    "the old primary is the new one's synchronous standby")
tok = c.token("after-failover")
r = c.api("POST", P, "visit", token=tok)
is_((r.status, r.json and r.json["granted"]), (200, True), "a visit after the rejoin is granted")
for _ in range(50):
    if c.scalar("SELECT count(*) FROM grants WHERE promo=? AND uid='after-failover'", P,
                server=old) == 1:
        break
    time.sleep(0.1)
is_(c.scalar("SELECT count(*) FROM grants WHERE promo=? AND uid='after-failover'", P, server=old),
    1, "and is on the rejoined standby")
is_(c.scalar("SELECT count(*) FROM draws WHERE promo=?", P, server=old),
    c.scalar("SELECT count(*) FROM draws WHERE promo=?", P), "which has every draw of the primary")
done()
